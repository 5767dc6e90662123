/*
 * frame.c — the frame codec: a 4-byte big-endian payload length, then that many
 * bytes of UTF-8 JSON holding one object with a string "type". Every rejection says
 * what was wrong and where (byte offset, limit), as IG_ERR_PROTOCOL. Also the whole
 * frame of a message (ig_net_msg_frame_encode), with `tokens` written directly.
 */
#include "net.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Offset of the first byte that breaks UTF-8 (overlongs, surrogates and code points
 * above U+10FFFF included), or len when all is well. */
static size_t utf8_bad_offset(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (len - i <= n)
            return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n + 1;
    }
    return len;
}

json_t *ig_net_payload_parse(const void *payload, size_t len, ig_err *err)
{
    const unsigned char *p = payload;
    size_t bad = utf8_bad_offset(p, len);
    if (bad != len) {
        ig_err_set(err, IG_ERR_PROTOCOL, "frame payload is not valid UTF-8 at byte %zu (0x%02x)",
                   bad, p[bad]);
        return NULL;
    }
    json_error_t je;
    /* NULs inside strings are allowed (token text may hold one); the message parsers
     * refuse them in identifiers. */
    json_t *root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root) {
        ig_err_set(err, IG_ERR_PROTOCOL,
                   "frame payload is not valid JSON: %s (line %d, column %d, byte %d)", je.text,
                   je.line, je.column, je.position);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        ig_err_set(err, IG_ERR_PROTOCOL, "frame payload is not a JSON object");
        return NULL;
    }
    json_t *type = json_object_get(root, "type");
    if (!type) {
        json_decref(root);
        ig_err_set(err, IG_ERR_PROTOCOL, "message has no field 'type'");
        return NULL;
    }
    if (!json_is_string(type)) {
        json_decref(root);
        ig_err_set(err, IG_ERR_PROTOCOL, "message field 'type' must be a string");
        return NULL;
    }
    return root;
}

static uint32_t read_be32(const unsigned char *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

ig_code ig_net_frame_decode(const void *buf, size_t len, size_t max_payload, size_t *consumed,
                            json_t **out, ig_err *err)
{
    const unsigned char *b = buf;
    *consumed = 0;
    *out = NULL;
    if (max_payload == 0)
        max_payload = IG_NET_FRAME_MAX_DEFAULT;
    if (len < IG_NET_FRAME_HEADER)
        return IG_OK;
    uint32_t n = read_be32(b);
    if (n == 0)
        return ig_err_set(err, IG_ERR_PROTOCOL, "frame length is 0 (empty frames are not allowed)");
    if (n > max_payload)
        return ig_err_set(err, IG_ERR_PROTOCOL, "frame length %u exceeds the limit of %zu bytes",
                          n, max_payload);
    if (len - IG_NET_FRAME_HEADER < n)
        return IG_OK;
    json_t *j = ig_net_payload_parse(b + IG_NET_FRAME_HEADER, n, err);
    if (!j)
        return err ? err->code : IG_ERR_PROTOCOL;
    *consumed = IG_NET_FRAME_HEADER + (size_t)n;
    *out = j;
    return IG_OK;
}

ig_code ig_net_frame_decode_exact(const void *buf, size_t len, size_t max_payload, json_t **out,
                                  ig_err *err)
{
    size_t used = 0;
    *out = NULL;
    ig_code rc = ig_net_frame_decode(buf, len, max_payload, &used, out, err);
    if (rc != IG_OK)
        return rc;
    if (used == 0) {
        if (len < IG_NET_FRAME_HEADER)
            return ig_err_set(err, IG_ERR_PROTOCOL,
                              "truncated frame: %zu of the %d header bytes present", len,
                              IG_NET_FRAME_HEADER);
        return ig_err_set(err, IG_ERR_PROTOCOL,
                          "truncated frame: header announces %u bytes, %zu present",
                          read_be32(buf), len - IG_NET_FRAME_HEADER);
    }
    if (used != len) {
        json_decref(*out);
        *out = NULL;
        return ig_err_set(err, IG_ERR_PROTOCOL, "%zu trailing bytes after the frame", len - used);
    }
    return IG_OK;
}

unsigned char *ig_net_frame_encode(const json_t *j, size_t max_payload, size_t *out_len,
                                   ig_err *err)
{
    if (max_payload == 0)
        max_payload = IG_NET_FRAME_MAX_DEFAULT;
    if (!json_is_object(j)) {
        ig_err_set(err, IG_ERR_INVALID, "a frame holds a JSON object");
        return NULL;
    }
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    if (n == 0) {
        ig_err_set(err, IG_ERR_INVALID, "message cannot be serialised");
        return NULL;
    }
    if (n > max_payload) {
        ig_err_set(err, IG_ERR_RANGE, "message of %zu bytes exceeds the frame limit of %zu bytes",
                   n, max_payload);
        return NULL;
    }
    unsigned char *buf = malloc(IG_NET_FRAME_HEADER + n);
    if (!buf) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory framing %zu bytes", n);
        return NULL;
    }
    size_t w = json_dumpb(j, (char *)buf + IG_NET_FRAME_HEADER, n, JSON_COMPACT);
    assert(w == n);
    (void)w;
    buf[0] = (unsigned char)(n >> 24);
    buf[1] = (unsigned char)(n >> 16);
    buf[2] = (unsigned char)(n >> 8);
    buf[3] = (unsigned char)n;
    *out_len = IG_NET_FRAME_HEADER + n;
    return buf;
}

/* ---- the tokens frame, written directly ----
 * A node sends one `tokens` frame per generated token, from its engine's thread: that
 * frame is written here byte by byte (no JSON tree, one allocation), with the same
 * fields, order and escaping as ig_msg_to_json + ig_net_frame_encode produce. */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void w_reserve(wbuf *b, size_t more)
{
    if (b->oom || b->n + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more)
        cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q) {
        b->oom = true;
        return;
    }
    b->p = q;
    b->cap = cap;
}

static void w_bytes(wbuf *b, const void *s, size_t n)
{
    w_reserve(b, n);
    if (!b->oom) {
        memcpy(b->p + b->n, s, n);
        b->n += n;
    }
}

static void w_lit(wbuf *b, const char *s) { w_bytes(b, s, strlen(s)); }

static void w_i64(wbuf *b, int64_t v)
{
    char t[24];
    int k = snprintf(t, sizeof t, "%lld", (long long)v);
    w_bytes(b, t, (size_t)k);
}

/* A float logprob: 9 significant digits give back the same float; non-finite values
 * travel as -1e30 (as blogprob in msg.c). */
static void w_logprob(wbuf *b, float x)
{
    char t[32];
    int k = isfinite(x) ? snprintf(t, sizeof t, "%.9g", (double)x) : snprintf(t, sizeof t, "-1e30");
    w_bytes(b, t, (size_t)k);
}

char *ig_net_json_escape(char *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    return out;
}

/* A JSON string; false when s is not valid UTF-8. */
static bool w_str(wbuf *b, const char *s, size_t n)
{
    if (utf8_bad_offset((const unsigned char *)s, n) != n)
        return false;
    w_reserve(b, 6 * n + 2);
    if (b->oom)
        return true; /* reported by the caller */
    b->p[b->n++] = '"';
    b->n = (size_t)((unsigned char *)ig_net_json_escape((char *)b->p + b->n, s, n) - b->p);
    b->p[b->n++] = '"';
    return true;
}

unsigned char *ig_net_msg_frame_encode(const ig_msg *m, size_t max_payload, size_t *out_len,
                                       ig_err *err)
{
    if (max_payload == 0)
        max_payload = IG_NET_FRAME_MAX_DEFAULT;
    if (m->type != IG_MSG_TOKENS) {
        json_t *j = ig_msg_to_json(m, err);
        if (!j)
            return NULL;
        unsigned char *buf = ig_net_frame_encode(j, max_payload, out_len, err);
        json_decref(j);
        return buf;
    }
    const ig_msg_tokens *t = &m->tokens;
    if (!t->job_id) {
        ig_err_set(err, IG_ERR_INVALID, "tokens: field 'job_id' cannot be encoded (not valid UTF-8?)");
        return NULL;
    }
    wbuf b = {0};
    w_reserve(&b, 64 + 96 * (size_t)(t->n_items > 0 ? t->n_items : 1));
    w_bytes(&b, "\0\0\0\0", IG_NET_FRAME_HEADER);
    w_lit(&b, "{\"type\":\"tokens\",\"job_id\":");
    const char *bad = NULL;
    if (!w_str(&b, t->job_id, strlen(t->job_id)))
        bad = "job_id";
    w_lit(&b, ",\"index\":");
    w_i64(&b, t->index);
    w_lit(&b, ",\"items\":[");
    for (int32_t i = 0; i < t->n_items && !bad; i++) {
        const ig_net_token *it = &t->items[i];
        w_lit(&b, i ? ",{\"id\":" : "{\"id\":");
        w_i64(&b, it->id);
        w_lit(&b, ",\"text\":");
        if (!w_str(&b, it->text ? it->text : "", it->text ? it->text_len : 0))
            bad = "items.text";
        w_lit(&b, ",\"logprob\":");
        w_logprob(&b, it->logprob);
        if (it->n_top > 0) {
            w_lit(&b, ",\"top\":[");
            for (int32_t k = 0; k < it->n_top && k < IG_MAX_TOP_LOGPROBS; k++) {
                w_lit(&b, k ? ",{\"id\":" : "{\"id\":");
                w_i64(&b, it->top[k].id);
                w_lit(&b, ",\"text\":");
                if (!w_str(&b, it->top[k].text ? it->top[k].text : "",
                           it->top[k].text ? it->top[k].text_len : 0))
                    bad = "items.top.text";
                w_lit(&b, ",\"logprob\":");
                w_logprob(&b, it->top[k].logprob);
                w_lit(&b, "}");
            }
            w_lit(&b, "]");
        }
        w_lit(&b, "}");
    }
    w_lit(&b, "]}");
    if (bad || b.oom) {
        free(b.p);
        if (bad)
            ig_err_set(err, IG_ERR_INVALID, "tokens: field '%s' cannot be encoded (not valid UTF-8?)", bad);
        else
            ig_err_set(err, IG_ERR_NOMEM, "out of memory framing a tokens message");
        return NULL;
    }
    size_t n = b.n - IG_NET_FRAME_HEADER;
    if (n > max_payload) {
        free(b.p);
        ig_err_set(err, IG_ERR_RANGE, "message of %zu bytes exceeds the frame limit of %zu bytes", n,
                   max_payload);
        return NULL;
    }
    b.p[0] = (unsigned char)(n >> 24);
    b.p[1] = (unsigned char)(n >> 16);
    b.p[2] = (unsigned char)(n >> 8);
    b.p[3] = (unsigned char)n;
    *out_len = b.n;
    return b.p;
}
