/*
 * frame.c — the frame codec: a 4-byte big-endian payload length, then that many
 * bytes of UTF-8 JSON holding one object with a string "type". Every rejection says
 * what was wrong and where (byte offset, limit), as IG_ERR_PROTOCOL.
 */
#include "net.h"

#include <assert.h>
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
