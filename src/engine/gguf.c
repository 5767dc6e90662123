/*
 * gguf.c — the GGUF v2/v3 reader: validates a whole file up front, then serves keys,
 * arrays and tensors from the mapping without copying.
 *
 * File layout (little-endian throughout):
 *   "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *   n_kv x      { string key, u32 type, value }
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   padding to general.alignment (default 32), then the tensor data; a tensor's offset
 *   is relative to the start of the data and a multiple of the alignment.
 *   string = u64 length + bytes (UTF-8, no NUL terminator)
 *   array  = u32 element type + u64 count + elements
 *
 * Invariants once ig_gguf_open* returns a reader (everything is checked there, so the
 * getters need no checks beyond their arguments):
 *   - every key, string value, string element and tensor name is valid UTF-8 and lies
 *     inside the buffer; keys and tensor names are unique and hold no NUL byte;
 *   - every value's bytes lie inside the buffer; nested arrays are refused;
 *   - every tensor has 1..4 dims, each > 0, a supported type, ne[0] a multiple of the
 *     type's block size, its data aligned, inside the buffer and not overlapping others.
 * Every multi-byte read goes through memcpy: the buffer has no alignment guarantee.
 * Reads are bounded against the bytes that remain before they happen, with checks
 * written as `n > remaining` (never `pos + n > size`) so that nothing overflows.
 */
#include "engine.h"
#include "gguf_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_BYTES 24
/* The smallest possible encodings, used to bound counts by the bytes left. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)             /* 1-byte key, u8 value */
#define MIN_TENSOR_INFO_BYTES (8 + 1 + 4 + 8 + 4 + 8) /* 1-byte name, 1 dim */

typedef struct {
    ig_str key;
    uint64_t key_off;     /* where the key's length field starts */
    ig_gguf_vtype type;
    uint64_t value_off;   /* first byte after the type field */
    uint64_t value_end;   /* one past the value's last byte */
    /* arrays */
    ig_gguf_vtype elem_type;
    uint64_t n;
    uint64_t elems_off;   /* first element */
    uint64_t *str_off;    /* string arrays: offset of each element's length field */
} kv_entry;

struct ig_gguf {
    const uint8_t *base;
    uint64_t size;
    void *map;            /* non-NULL when ig_gguf_open mapped the file */
    size_t map_len;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_off;
    int64_t n_kv;
    kv_entry *kv;
    int64_t n_tensors;
    ig_tensor *tensors;
    char *names;          /* the tensors' NUL-terminated names, back to back */
    /* open-addressing hash tables of indices (-1 = empty), capacity a power of two */
    int32_t *kv_slots;
    uint32_t kv_cap;
    int32_t *tensor_slots;
    uint32_t tensor_cap;
};

/* ---- helpers ------------------------------------------------------------- */

/* A word-at-a-time hash for the key and name tables: the tokenizer looks its arrays
 * up by key hundreds of thousands of times, so a byte-serial hash would show. The
 * value only lives in memory, so the host's byte order does not matter. */
static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    uint64_t w = 0;
    if (n >= 8) {
        /* Whole words, then the last 8 bytes (overlapping) rather than a byte tail. */
        const char *end = s + n;
        for (; end - s > 8; s += 8) {
            memcpy(&w, s, 8);
            h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
            h ^= h >> 31;
        }
        memcpy(&w, end - 8, 8);
    } else {
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    }
    h = (h ^ w) * 0x94d049bb133111ebull;
    return h ^ (h >> 29);
}

static uint32_t table_cap(int64_t n)
{
    uint32_t cap = 16;
    while ((int64_t)cap < 2 * n)
        cap <<= 1;
    return cap;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

size_t ig_gguf_vtype_size(uint32_t t)
{
    switch (t) {
    case IG_GGUF_U8: case IG_GGUF_I8: case IG_GGUF_BOOL: return 1;
    case IG_GGUF_U16: case IG_GGUF_I16: return 2;
    case IG_GGUF_U32: case IG_GGUF_I32: case IG_GGUF_F32: return 4;
    case IG_GGUF_U64: case IG_GGUF_I64: case IG_GGUF_F64: return 8;
    default: return 0;
    }
}

static const char *vtype_name(uint32_t t)
{
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "invalid";
}

/* UTF-8 validation as a shift-based automaton. Bytes fall into 12 classes (the
 * classes of Bjoern Hoehrmann's decoder: ASCII, continuation ranges 80-8f / 90-9f /
 * a0-bf, the lead bytes with special second-byte ranges e0, ed, f0, f4, invalid
 * c0-c1 and f5-ff). There are 9 states (accept = 0, reject = 6, and the partial
 * sequences), each 6 bits wide; UTF8_NEXT[class] holds, at bit 6*k, the next state
 * (times 6) from state k. The step is one shift, so the loop runs near a byte per
 * cycle; reject is absorbing, so only the final state needs checking. Overlongs,
 * surrogates and code points above U+10FFFF are rejected. */
static const uint8_t UTF8_CLASS[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    8, 8, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    10, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3, 11, 6, 6, 6, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
};

static const uint64_t UTF8_NEXT[12] = {
    0x0006186186186180ull, 0x0012486306300186ull, 0x000618618618618cull,
    0x0006186186186192ull, 0x000618618618619eull, 0x00061861861861b0ull,
    0x00061861861861aaull, 0x000649218c300186ull, 0x0006186186186186ull,
    0x0006492306300186ull, 0x0006186186186198ull, 0x00061861861861a4ull,
};

bool ig_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    uint64_t state = 0;
    size_t i = 0;
    /* ASCII runs 8 bytes at a time while between characters. */
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
            break;
        i += 8;
    }
    for (; i < n; i++)
        state = (UTF8_NEXT[UTF8_CLASS[s[i]]] >> state) & 63;
    return state == 0;
}

/* A printable, bounded rendering of a key or name for error messages. */
static const char *quote(char *buf, size_t cap, const char *s, uint64_t n)
{
    size_t j = 0;
    for (uint64_t i = 0; i < n && j + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (j + 4 >= cap && n > j) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
    return buf;
}

/* ---- the parser ---------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    ig_err *err;
    ig_code code;
} cursor;

static bool failv(cursor *c, ig_code code, uint64_t off, const char *fmt, va_list ap)
{
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    c->code = ig_err_set(c->err, code, "gguf: offset %" PRIu64 ": %s", off, msg);
    return false;
}

__attribute__((format(printf, 4, 5)))
static bool fail(cursor *c, ig_code code, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(c, code, off, fmt, ap);
    va_end(ap);
    return false;
}

static uint64_t remaining(const cursor *c) { return c->size - c->pos; }

/* Ensures n more bytes exist; `what` names the field for the message. */
static bool need(cursor *c, uint64_t n, const char *what)
{
    if (n > remaining(c))
        return fail(c, IG_ERR_FORMAT, c->pos,
                    "file ends inside %s (needs %" PRIu64 " bytes, %" PRIu64 " left)", what, n,
                    remaining(c));
    return true;
}

static bool read_u32(cursor *c, uint32_t *v, const char *what)
{
    if (!need(c, 4, what))
        return false;
    *v = rd32(c->p + c->pos);
    c->pos += 4;
    return true;
}

static bool read_u64(cursor *c, uint64_t *v, const char *what)
{
    if (!need(c, 8, what))
        return false;
    *v = rd64(c->p + c->pos);
    c->pos += 8;
    return true;
}

/* Reads a string's length and bytes; `what` names it ("key", "tensor name", ...).
 * Checks the length against the bytes left and max_len (0 = no limit beyond that). */
static bool read_str(cursor *c, ig_str *s, uint64_t max_len, const char *what, const char *ctx)
{
    uint64_t off = c->pos;
    uint64_t len;
    if (!read_u64(c, &len, what))
        return false;
    if (len > remaining(c))
        return fail(c, IG_ERR_FORMAT, off,
                    "%s%s length %" PRIu64 " exceeds the %" PRIu64 " bytes left in the file",
                    ctx, what, len, remaining(c));
    if (max_len && len > max_len)
        return fail(c, IG_ERR_FORMAT, off, "%s%s length %" PRIu64 " exceeds the limit of %" PRIu64,
                    ctx, what, len, max_len);
    s->ptr = (const char *)c->p + c->pos;
    s->len = len;
    if (!ig_utf8_valid(s->ptr, (size_t)len))
        return fail(c, IG_ERR_FORMAT, off, "%s%s is not valid UTF-8", ctx, what);
    c->pos += len;
    return true;
}

/* Inserts index idx (whose name is s) into a table; returns the index already there
 * under the same name, or -1. */
static int64_t table_insert(int32_t *slots, uint32_t cap, const char *s, size_t n,
                            int32_t idx, const char *(*name_of)(const ig_gguf *, int32_t, size_t *),
                            const ig_gguf *g)
{
    uint32_t mask = cap - 1;
    for (uint32_t h = (uint32_t)hash_name(s, n) & mask;; h = (h + 1) & mask) {
        if (slots[h] < 0) {
            slots[h] = idx;
            return -1;
        }
        size_t m;
        const char *t = name_of(g, slots[h], &m);
        if (m == n && memcmp(s, t, n) == 0)
            return slots[h];
    }
}

static const char *kv_name(const ig_gguf *g, int32_t i, size_t *n)
{
    *n = (size_t)g->kv[i].key.len;
    return g->kv[i].key.ptr;
}

static const char *tensor_name(const ig_gguf *g, int32_t i, size_t *n)
{
    *n = strlen(g->tensors[i].name);
    return g->tensors[i].name;
}

static int64_t table_find(const int32_t *slots, uint32_t cap, const char *s, size_t n,
                          const char *(*name_of)(const ig_gguf *, int32_t, size_t *),
                          const ig_gguf *g)
{
    if (!slots)
        return -1;
    uint32_t mask = cap - 1;
    for (uint32_t h = (uint32_t)hash_name(s, n) & mask;; h = (h + 1) & mask) {
        if (slots[h] < 0)
            return -1;
        size_t m;
        const char *t = name_of(g, slots[h], &m);
        if (m == n && memcmp(s, t, n) == 0)
            return slots[h];
    }
}

static bool check_bool_byte(cursor *c, uint64_t off, uint8_t b, const char *kq)
{
    if (b > 1)
        return fail(c, IG_ERR_FORMAT, off, "key '%s': bool value %u is neither 0 nor 1", kq, b);
    return true;
}

static bool parse_value(cursor *c, kv_entry *e, const char *kq)
{
    uint64_t off = c->pos;
    if (e->type == IG_GGUF_STRING) {
        ig_str s;
        char ctx[160];
        snprintf(ctx, sizeof ctx, "key '%s': ", kq);
        return read_str(c, &s, 0, "string value", ctx);
    }
    if (e->type != IG_GGUF_ARRAY) {
        size_t n = ig_gguf_vtype_size(e->type);
        assert(n > 0);
        if (!need(c, n, "a value"))
            return false;
        if (e->type == IG_GGUF_BOOL && !check_bool_byte(c, off, c->p[off], kq))
            return false;
        c->pos += n;
        return true;
    }
    uint32_t et;
    if (!read_u32(c, &et, "an array's element type"))
        return false;
    if (et == IG_GGUF_ARRAY)
        return fail(c, IG_ERR_UNSUPPORTED, off, "key '%s' holds an array of arrays, which idlegrid does not read", kq);
    if (et > IG_GGUF_F64)
        return fail(c, IG_ERR_FORMAT, off,
                    "key '%s': array element type %" PRIu32 " is not a GGUF type (0..12)", kq, et);
    e->elem_type = (ig_gguf_vtype)et;
    uint64_t n_off = c->pos;
    if (!read_u64(c, &e->n, "an array's length"))
        return false;
    e->elems_off = c->pos;
    if (et == IG_GGUF_STRING) {
        if (e->n > remaining(c) / 8)
            return fail(c, IG_ERR_FORMAT, n_off,
                        "key '%s': array length %" PRIu64 " exceeds what the %" PRIu64
                        " bytes left in the file can hold",
                        kq, e->n, remaining(c));
        if (e->n > 0) {
            e->str_off = malloc((size_t)e->n * sizeof *e->str_off);
            if (!e->str_off)
                return fail(c, IG_ERR_NOMEM, n_off, "key '%s': out of memory for %" PRIu64 " strings", kq, e->n);
        }
        for (uint64_t i = 0; i < e->n; i++) {
            e->str_off[i] = c->pos;
            /* The same checks as read_str without building its message context:
             * this loop runs 400k times for a Llama 3 vocabulary. On failure,
             * read_str repeats the checks and words the message. */
            if (remaining(c) >= 8) {
                uint64_t len = rd64(c->p + c->pos);
                if (len <= remaining(c) - 8 &&
                    ig_utf8_valid((const char *)c->p + c->pos + 8, (size_t)len)) {
                    c->pos += 8 + len;
                    continue;
                }
            }
            char ctx[200];
            snprintf(ctx, sizeof ctx, "key '%s': element %" PRIu64 ": ", kq, i);
            ig_str s;
            bool ok = read_str(c, &s, 0, "string", ctx);
            assert(!ok);
            return ok;
        }
        return true;
    }
    size_t esz = ig_gguf_vtype_size(et);
    if (e->n > remaining(c) / esz)
        return fail(c, IG_ERR_FORMAT, n_off,
                    "key '%s': array of %" PRIu64 " %s exceeds the %" PRIu64 " bytes left in the file",
                    kq, e->n, vtype_name(et), remaining(c));
    if (et == IG_GGUF_BOOL)
        for (uint64_t i = 0; i < e->n; i++)
            if (!check_bool_byte(c, c->pos + i, c->p[c->pos + i], kq))
                return false;
    c->pos += e->n * esz;
    return true;
}

static bool parse_kvs(cursor *c, ig_gguf *g)
{
    if (g->n_kv == 0)
        return true;
    g->kv = calloc((size_t)g->n_kv, sizeof *g->kv);
    g->kv_cap = table_cap(g->n_kv);
    g->kv_slots = malloc(g->kv_cap * sizeof *g->kv_slots);
    if (!g->kv || !g->kv_slots)
        return fail(c, IG_ERR_NOMEM, c->pos, "out of memory for %" PRId64 " keys", g->n_kv);
    memset(g->kv_slots, 0xff, g->kv_cap * sizeof *g->kv_slots);
    for (int64_t i = 0; i < g->n_kv; i++) {
        kv_entry *e = &g->kv[i];
        e->key_off = c->pos;
        char what[48];
        snprintf(what, sizeof what, "key %" PRId64, i);
        if (!read_str(c, &e->key, IG_GGUF_MAX_KEY_LEN, what, ""))
            return false;
        char kq[128];
        quote(kq, sizeof kq, e->key.ptr, e->key.len);
        if (e->key.len == 0)
            return fail(c, IG_ERR_FORMAT, e->key_off, "key %" PRId64 " is empty", i);
        if (memchr(e->key.ptr, 0, (size_t)e->key.len))
            return fail(c, IG_ERR_FORMAT, e->key_off, "key '%s' contains a NUL byte", kq);
        int64_t prev = table_insert(g->kv_slots, g->kv_cap, e->key.ptr, (size_t)e->key.len,
                                    (int32_t)i, kv_name, g);
        if (prev >= 0)
            return fail(c, IG_ERR_FORMAT, e->key_off,
                        "duplicate key '%s' (first at offset %" PRIu64 ")", kq, g->kv[prev].key_off);
        uint64_t type_off = c->pos;
        uint32_t t;
        if (!read_u32(c, &t, "a value type"))
            return false;
        if (t > IG_GGUF_F64)
            return fail(c, IG_ERR_FORMAT, type_off,
                        "key '%s' has value type %" PRIu32 ", which is not a GGUF type (0..12)", kq, t);
        e->type = (ig_gguf_vtype)t;
        e->value_off = c->pos;
        if (!parse_value(c, e, kq))
            return false;
        e->value_end = c->pos;
    }
    return true;
}

static bool parse_alignment(cursor *c, ig_gguf *g)
{
    g->alignment = IG_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = ig_gguf_find_key(g, "general.alignment");
    if (i < 0)
        return true;
    const kv_entry *e = &g->kv[i];
    if (e->type != IG_GGUF_U32)
        return fail(c, IG_ERR_FORMAT, e->value_off - 4,
                    "general.alignment has type %s; GGUF requires u32", vtype_name(e->type));
    uint32_t a = rd32(g->base + e->value_off);
    if (a == 0 || (a & (a - 1)) != 0)
        return fail(c, IG_ERR_FORMAT, e->value_off,
                    "general.alignment %" PRIu32 " is not a power of two", a);
    if (a > IG_GGUF_MAX_ALIGNMENT)
        return fail(c, IG_ERR_FORMAT, e->value_off,
                    "general.alignment %" PRIu32 " exceeds the limit of %u", a, IG_GGUF_MAX_ALIGNMENT);
    g->alignment = a;
    return true;
}

/* Tensor info i; offsets of its fields are kept for the later data checks. */
static bool parse_tensor_info(cursor *c, ig_gguf *g, int64_t i, char **name_out,
                              uint64_t *offset_field)
{
    ig_tensor *t = &g->tensors[i];
    uint64_t name_off = c->pos;
    ig_str name;
    char ctx[48];
    snprintf(ctx, sizeof ctx, "tensor %" PRId64 ": ", i);
    if (!read_str(c, &name, IG_GGUF_MAX_NAME_LEN, "name", ctx))
        return false;
    char nq[128];
    quote(nq, sizeof nq, name.ptr, name.len);
    if (name.len == 0)
        return fail(c, IG_ERR_FORMAT, name_off, "tensor %" PRId64 " has an empty name", i);
    if (memchr(name.ptr, 0, (size_t)name.len))
        return fail(c, IG_ERR_FORMAT, name_off, "tensor name '%s' contains a NUL byte", nq);
    memcpy(*name_out, name.ptr, (size_t)name.len);
    (*name_out)[name.len] = '\0';
    t->name = *name_out;
    *name_out += name.len + 1;
    int64_t prev = table_insert(g->tensor_slots, g->tensor_cap, t->name, (size_t)name.len,
                                (int32_t)i, tensor_name, g);
    if (prev >= 0)
        return fail(c, IG_ERR_FORMAT, name_off, "duplicate tensor name '%s' (tensors %" PRId64
                    " and %" PRId64 ")", nq, prev, i);

    uint64_t dims_off = c->pos;
    uint32_t n_dims;
    if (!read_u32(c, &n_dims, "a tensor's dimension count"))
        return false;
    if (n_dims == 0 || n_dims > 4)
        return fail(c, IG_ERR_FORMAT, dims_off, "tensor '%s' has %" PRIu32 " dimensions (1..4 allowed)",
                    nq, n_dims);
    t->n_dims = n_dims;
    int64_t n_elem = 1;
    for (uint32_t d = 0; d < 4; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne_off = c->pos;
        uint64_t v;
        if (!read_u64(c, &v, "a tensor's shape"))
            return false;
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return fail(c, IG_ERR_FORMAT, ne_off, "tensor '%s': ne[%" PRIu32 "] = %" PRId64
                        " is not positive", nq, d, (int64_t)v);
        if ((int64_t)v > INT64_MAX / n_elem)
            return fail(c, IG_ERR_FORMAT, ne_off,
                        "tensor '%s': element count overflows at ne[%" PRIu32 "] = %" PRIu64, nq, d, v);
        t->ne[d] = (int64_t)v;
        n_elem *= (int64_t)v;
    }
    uint64_t type_off = c->pos;
    uint32_t type;
    if (!read_u32(c, &type, "a tensor's type"))
        return false;
    if (!ig_type_is_supported(type))
        return fail(c, IG_ERR_UNSUPPORTED, type_off,
                    "tensor '%s' has type %s (%" PRIu32 "), which idlegrid does not support", nq,
                    ig_type_name(type), type);
    t->type = (ig_type)type;
    int64_t bs = ig_type_block_size(t->type);
    if (t->ne[0] % bs != 0)
        return fail(c, IG_ERR_FORMAT, dims_off + 4,
                    "tensor '%s': ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRId64,
                    nq, t->ne[0], ig_type_name(type), bs);
    /* bytes = (ne0 / bs) * block_bytes * ne1 * ne2 * ne3, each step checked. */
    uint64_t bytes = (uint64_t)(t->ne[0] / bs);
    uint64_t bb = ig_type_block_bytes(t->type);
    bool overflow = bytes > UINT64_MAX / bb;
    bytes *= bb;
    for (uint32_t d = 1; d < 4 && !overflow; d++) {
        overflow = bytes > UINT64_MAX / (uint64_t)t->ne[d];
        bytes *= (uint64_t)t->ne[d];
    }
    if (overflow || bytes > SIZE_MAX)
        return fail(c, IG_ERR_FORMAT, dims_off, "tensor '%s': data size overflows", nq);
    t->size = (size_t)bytes;
    *offset_field = c->pos;
    if (!read_u64(c, &t->offset, "a tensor's data offset"))
        return false;
    if (t->offset % g->alignment != 0)
        return fail(c, IG_ERR_FORMAT, *offset_field,
                    "tensor '%s': data offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                    nq, t->offset, g->alignment);
    return true;
}

typedef struct {
    uint64_t start;
    int64_t index;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static bool parse_tensors(cursor *c, ig_gguf *g)
{
    uint64_t *offset_fields = NULL;
    span *spans = NULL;
    bool ok = false;
    if (g->n_tensors > 0) {
        size_t n = (size_t)g->n_tensors;
        g->tensors = calloc(n, sizeof *g->tensors);
        /* Names take at most the bytes left, and at most the longest name each, plus a
         * NUL each; n is bounded by the bytes left, so neither sum overflows. */
        uint64_t names_cap = remaining(c) + n;
        if (names_cap > (uint64_t)n * (IG_GGUF_MAX_NAME_LEN + 1))
            names_cap = (uint64_t)n * (IG_GGUF_MAX_NAME_LEN + 1);
        g->names = malloc((size_t)names_cap);
        g->tensor_cap = table_cap(g->n_tensors);
        g->tensor_slots = malloc(g->tensor_cap * sizeof *g->tensor_slots);
        offset_fields = malloc(n * sizeof *offset_fields);
        spans = malloc(n * sizeof *spans);
        if (!g->tensors || !g->names || !g->tensor_slots || !offset_fields || !spans) {
            fail(c, IG_ERR_NOMEM, c->pos, "out of memory for %" PRId64 " tensors", g->n_tensors);
            goto out;
        }
        memset(g->tensor_slots, 0xff, g->tensor_cap * sizeof *g->tensor_slots);
    }
    char *names = g->names;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (!parse_tensor_info(c, g, i, &names, &offset_fields[i]))
            goto out;

    /* The data section starts at the next multiple of the alignment. A file without
     * tensors may end before that (some writers omit the final padding). */
    uint64_t a = g->alignment;
    g->data_off = (c->pos + a - 1) / a * a;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        ig_tensor *t = &g->tensors[i];
        uint64_t avail = g->data_off <= g->size ? g->size - g->data_off : 0;
        if (t->offset > avail || t->size > avail - t->offset) {
            char nq[128];
            fail(c, IG_ERR_FORMAT, offset_fields[i],
                 "tensor '%s': data at %" PRIu64 "+%" PRIu64 " (%zu bytes) lies past the end of the %" PRIu64
                 "-byte file", quote(nq, sizeof nq, t->name, strlen(t->name)), g->data_off, t->offset, t->size, g->size);
            goto out;
        }
        t->data = g->base + g->data_off + t->offset;
        spans[i].start = t->offset;
        spans[i].index = i;
    }
    if (g->n_tensors > 1) {
        qsort(spans, (size_t)g->n_tensors, sizeof *spans, span_cmp);
        for (int64_t k = 1; k < g->n_tensors; k++) {
            const ig_tensor *p = &g->tensors[spans[k - 1].index];
            const ig_tensor *t = &g->tensors[spans[k].index];
            if (p->offset + p->size > t->offset) {
                char tq[128], pq[128];
                fail(c, IG_ERR_FORMAT, offset_fields[spans[k].index],
                     "tensor '%s': data [%" PRIu64 ", %" PRIu64 ") overlaps tensor '%s' [%" PRIu64
                     ", %" PRIu64 ")", quote(tq, sizeof tq, t->name, strlen(t->name)), t->offset,
                     t->offset + t->size, quote(pq, sizeof pq, p->name, strlen(p->name)), p->offset,
                     p->offset + p->size);
                goto out;
            }
        }
    }
    ok = true;
out:
    free(offset_fields);
    free(spans);
    return ok;
}

static bool parse(cursor *c, ig_gguf *g)
{
    if (c->size < 4)
        return fail(c, IG_ERR_FORMAT, 0, "file of %" PRIu64 " bytes is too short to hold the GGUF magic", c->size);
    if (memcmp(c->p, "GGUF", 4) != 0) {
        char mq[16];
        quote(mq, sizeof mq, (const char *)c->p, 4);
        return fail(c, IG_ERR_FORMAT, 0, "bad magic '%s' (expected 'GGUF'): not a GGUF file", mq);
    }
    c->pos = 4;
    uint32_t version;
    if (!read_u32(c, &version, "the version"))
        return false;
    if (version == 1)
        return fail(c, IG_ERR_UNSUPPORTED, 4,
                    "GGUF version 1 is not supported (only versions 2 and 3); convert the file again");
    if (version == 0x02000000u || version == 0x03000000u)
        return fail(c, IG_ERR_UNSUPPORTED, 4, "big-endian GGUF files are not supported");
    if (version != 2 && version != 3)
        return fail(c, IG_ERR_FORMAT, 4, "unknown GGUF version %" PRIu32 " (expected 2 or 3)", version);
    g->version = version;
    uint64_t n_tensors, n_kv;
    if (!read_u64(c, &n_tensors, "the tensor count") || !read_u64(c, &n_kv, "the key count"))
        return false;
    uint64_t left = remaining(c);
    if (n_tensors > left / MIN_TENSOR_INFO_BYTES)
        return fail(c, IG_ERR_FORMAT, 8, "tensor count %" PRIu64 " exceeds what a %" PRIu64 "-byte file can hold",
                    n_tensors, c->size);
    if (n_tensors > IG_GGUF_MAX_TENSORS)
        return fail(c, IG_ERR_FORMAT, 8, "tensor count %" PRIu64 " exceeds the limit of %d",
                    n_tensors, IG_GGUF_MAX_TENSORS);
    if (n_kv > left / MIN_KV_BYTES)
        return fail(c, IG_ERR_FORMAT, 16, "key count %" PRIu64 " exceeds what a %" PRIu64 "-byte file can hold",
                    n_kv, c->size);
    if (n_kv > IG_GGUF_MAX_KV)
        return fail(c, IG_ERR_FORMAT, 16, "key count %" PRIu64 " exceeds the limit of %d", n_kv, IG_GGUF_MAX_KV);
    g->n_tensors = (int64_t)n_tensors;
    g->n_kv = (int64_t)n_kv;
    return parse_kvs(c, g) && parse_alignment(c, g) && parse_tensors(c, g);
}

static ig_gguf *open_common(const uint8_t *data, uint64_t size, void *map, size_t map_len,
                            ig_err *err)
{
    ig_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (map)
            munmap(map, map_len);
        ig_err_set(err, IG_ERR_NOMEM, "gguf: out of memory");
        return NULL;
    }
    g->base = data;
    g->size = size;
    g->map = map;
    g->map_len = map_len;
    cursor c = {.p = data, .size = size, .pos = 0, .err = err, .code = IG_OK};
    if (!parse(&c, g)) {
        assert(c.code != IG_OK);
        ig_gguf_free(g);
        return NULL;
    }
    return g;
}

ig_gguf *ig_gguf_open_buffer(const void *data, size_t size, ig_err *err)
{
    if (!data && size > 0) {
        ig_err_set(err, IG_ERR_INVALID, "gguf: NULL buffer of %zu bytes", size);
        return NULL;
    }
    static const uint8_t empty[1];
    return open_common(data ? data : empty, size, NULL, 0, err);
}

ig_gguf *ig_gguf_open(const char *path, ig_err *err)
{
    if (!path) {
        ig_err_set(err, IG_ERR_INVALID, "gguf: NULL path");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ig_err_set(err, IG_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ig_err_set(err, IG_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        ig_err_set(err, IG_ERR_IO, "%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        ig_err_set(err, IG_ERR_RANGE, "%s: %" PRIu64 " bytes do not fit this machine's address space",
                   path, (uint64_t)st.st_size);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            ig_err_set(err, IG_ERR_IO, "cannot map %s: %s", path, strerror(errno));
            close(fd);
            return NULL;
        }
    }
    close(fd);
    return open_common(map, size, map, size, err);
}

void ig_gguf_free(ig_gguf *g)
{
    if (!g)
        return;
    for (int64_t i = 0; g->kv && i < g->n_kv; i++)
        free(g->kv[i].str_off);
    free(g->kv);
    free(g->kv_slots);
    free(g->tensors);
    free(g->names);
    free(g->tensor_slots);
    if (g->map)
        munmap(g->map, g->map_len);
    free(g);
}

/* ---- getters ------------------------------------------------------------- */

uint32_t ig_gguf_version(const ig_gguf *g) { return g->version; }
uint64_t ig_gguf_file_size(const ig_gguf *g) { return g->size; }
uint32_t ig_gguf_alignment(const ig_gguf *g) { return g->alignment; }
int64_t ig_gguf_n_kv(const ig_gguf *g) { return g->n_kv; }

ig_str ig_gguf_kv_key(const ig_gguf *g, int64_t i)
{
    if (i < 0 || i >= g->n_kv)
        return (ig_str){NULL, 0};
    return g->kv[i].key;
}

ig_gguf_vtype ig_gguf_kv_type(const ig_gguf *g, int64_t i)
{
    if (i < 0 || i >= g->n_kv)
        return IG_GGUF_U8; /* documented precondition; a safe value rather than a crash */
    return g->kv[i].type;
}

int64_t ig_gguf_find_key(const ig_gguf *g, const char *key)
{
    if (!key)
        return -1;
    return table_find(g->kv_slots, g->kv_cap, key, strlen(key), kv_name, g);
}

bool ig_gguf_kv_raw(const ig_gguf *g, int64_t i, ig_gguf_vtype *type, const void **bytes,
                    size_t *len)
{
    if (i < 0 || i >= g->n_kv)
        return false;
    const kv_entry *e = &g->kv[i];
    *type = e->type;
    *bytes = g->base + e->value_off;
    *len = (size_t)(e->value_end - e->value_off);
    return true;
}

/* A numeric value of type t at p, as an integer (signed or unsigned) or a double.
 * kind: 0 = not numeric, 1 = signed integer in *s, 2 = unsigned in *u, 3 = float in *f. */
typedef struct {
    int kind;
    int64_t s;
    uint64_t u;
    double f;
} number;

static number read_number(const uint8_t *p, ig_gguf_vtype t)
{
    number n = {0, 0, 0, 0.0};
    switch (t) {
    case IG_GGUF_U8: n.kind = 2; n.u = p[0]; break;
    case IG_GGUF_I8: n.kind = 1; n.s = (int8_t)p[0]; break;
    case IG_GGUF_U16: n.kind = 2; n.u = rd16(p); break;
    case IG_GGUF_I16: n.kind = 1; n.s = (int16_t)rd16(p); break;
    case IG_GGUF_U32: n.kind = 2; n.u = rd32(p); break;
    case IG_GGUF_I32: n.kind = 1; n.s = (int32_t)rd32(p); break;
    case IG_GGUF_U64: n.kind = 2; n.u = rd64(p); break;
    case IG_GGUF_I64: n.kind = 1; n.s = (int64_t)rd64(p); break;
    case IG_GGUF_BOOL: n.kind = 2; n.u = p[0]; break;
    case IG_GGUF_F32: {
        uint32_t b = rd32(p);
        float f;
        memcpy(&f, &b, 4);
        n.kind = 3;
        n.f = f;
        break;
    }
    case IG_GGUF_F64: {
        uint64_t b = rd64(p);
        memcpy(&n.f, &b, 8);
        n.kind = 3;
        break;
    }
    default: break;
    }
    return n;
}

static bool number_to_i64(number n, int64_t *out)
{
    if (n.kind == 1) {
        *out = n.s;
        return true;
    }
    if (n.kind == 2 && n.u <= (uint64_t)INT64_MAX) {
        *out = (int64_t)n.u;
        return true;
    }
    return false;
}

static bool number_to_f32(number n, float *out)
{
    switch (n.kind) {
    case 1: *out = (float)n.s; return true;
    case 2: *out = (float)n.u; return true;
    case 3:
        /* A finite f64 beyond float's range does not fit; inf and nan carry over. */
        if (n.f == n.f && (n.f > FLT_MAX || n.f < -FLT_MAX) && n.f - n.f == 0.0)
            return false;
        *out = (float)n.f;
        return true;
    default: return false;
    }
}

static const kv_entry *find(const ig_gguf *g, const char *key)
{
    int64_t i = ig_gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kv[i];
}

static bool scalar_number(const ig_gguf *g, const char *key, number *n)
{
    const kv_entry *e = find(g, key);
    if (!e || e->type == IG_GGUF_BOOL || ig_gguf_vtype_size(e->type) == 0)
        return false;
    *n = read_number(g->base + e->value_off, e->type);
    return true;
}

bool ig_gguf_get_u32(const ig_gguf *g, const char *key, uint32_t *out)
{
    number n;
    int64_t v;
    if (!scalar_number(g, key, &n))
        return false;
    if (n.kind == 2) {
        if (n.u > UINT32_MAX)
            return false;
        *out = (uint32_t)n.u;
        return true;
    }
    if (n.kind != 1 || !number_to_i64(n, &v) || v < 0 || v > (int64_t)UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

bool ig_gguf_get_i64(const ig_gguf *g, const char *key, int64_t *out)
{
    number n;
    if (!scalar_number(g, key, &n) || n.kind == 3)
        return false;
    return number_to_i64(n, out);
}

bool ig_gguf_get_f32(const ig_gguf *g, const char *key, float *out)
{
    number n;
    return scalar_number(g, key, &n) && number_to_f32(n, out);
}

bool ig_gguf_get_bool(const ig_gguf *g, const char *key, bool *out)
{
    const kv_entry *e = find(g, key);
    if (!e || e->type != IG_GGUF_BOOL)
        return false;
    *out = g->base[e->value_off] != 0;
    return true;
}

bool ig_gguf_get_str(const ig_gguf *g, const char *key, ig_str *out)
{
    const kv_entry *e = find(g, key);
    if (!e || e->type != IG_GGUF_STRING)
        return false;
    out->len = rd64(g->base + e->value_off);
    out->ptr = (const char *)g->base + e->value_off + 8;
    return true;
}

bool ig_gguf_get_arr_info(const ig_gguf *g, const char *key, ig_gguf_vtype *elem_type, uint64_t *n)
{
    const kv_entry *e = find(g, key);
    if (!e || e->type != IG_GGUF_ARRAY)
        return false;
    if (elem_type)
        *elem_type = e->elem_type;
    if (n)
        *n = e->n;
    return true;
}

bool ig_gguf_get_arr_str(const ig_gguf *g, const char *key, uint64_t i, ig_str *out)
{
    const kv_entry *e = find(g, key);
    if (!e || e->type != IG_GGUF_ARRAY || e->elem_type != IG_GGUF_STRING || i >= e->n)
        return false;
    const uint8_t *p = g->base + e->str_off[i];
    out->len = rd64(p);
    out->ptr = (const char *)p + 8;
    return true;
}

static bool arr_number(const ig_gguf *g, const char *key, uint64_t i, number *n)
{
    const kv_entry *e = find(g, key);
    if (!e || e->type != IG_GGUF_ARRAY || i >= e->n)
        return false;
    size_t esz = ig_gguf_vtype_size(e->elem_type);
    if (esz == 0)
        return false;
    *n = read_number(g->base + e->elems_off + i * esz, e->elem_type);
    return true;
}

bool ig_gguf_get_arr_f32(const ig_gguf *g, const char *key, uint64_t i, float *out)
{
    number n;
    return arr_number(g, key, i, &n) && number_to_f32(n, out);
}

bool ig_gguf_get_arr_i64(const ig_gguf *g, const char *key, uint64_t i, int64_t *out)
{
    number n;
    return arr_number(g, key, i, &n) && n.kind != 3 && number_to_i64(n, out);
}

int64_t ig_gguf_n_tensors(const ig_gguf *g) { return g->n_tensors; }

const ig_tensor *ig_gguf_tensor_at(const ig_gguf *g, int64_t i)
{
    if (i < 0 || i >= g->n_tensors)
        return NULL;
    return &g->tensors[i];
}

const ig_tensor *ig_gguf_tensor_find(const ig_gguf *g, const char *name)
{
    if (!name)
        return NULL;
    int64_t i = table_find(g->tensor_slots, g->tensor_cap, name, strlen(name), tensor_name, g);
    return i < 0 ? NULL : &g->tensors[i];
}
