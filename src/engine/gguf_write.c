/*
 * gguf_write.c — the GGUF writer: version 3, little-endian, tensor data aligned to 32
 * bytes (or to a general.alignment the caller set or copied). Used by model synth,
 * model quantize and the tests' fixtures.
 *
 * Keys and tensors are held in memory (values pre-encoded exactly as the file stores
 * them after the type field) and laid out only when written, so setting a key twice
 * replaces it and copy_kv is a byte copy. The set_* functions return nothing: a bad
 * argument or a failed allocation is remembered and reported by the write.
 */
#include "engine.h"
#include "gguf_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *key;
    size_t key_len;
    uint32_t type;
    uint8_t *val; /* the value's encoding after the type field */
    size_t val_len;
} wkv;

typedef struct {
    char *name;
    uint32_t n_dims;
    int64_t ne[4];
    ig_type type;
    void *data;
    size_t size;
} wtensor;

struct ig_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    ig_code failed; /* the first error of a set_* call, reported by the write */
    char fail_msg[300];
};

static void set_failed(ig_gguf_writer *w, ig_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_failed(ig_gguf_writer *w, ig_code code, const char *fmt, ...)
{
    if (w->failed != IG_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->fail_msg, sizeof w->fail_msg, fmt, ap);
    va_end(ap);
    w->failed = code;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

ig_gguf_writer *ig_gguf_writer_new(void)
{
    return calloc(1, sizeof(ig_gguf_writer));
}

void ig_gguf_writer_free(ig_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

/* Takes ownership of val (len bytes) as the value of key. */
static void set_kv(ig_gguf_writer *w, const char *key, uint32_t type, uint8_t *val, size_t len)
{
    if (!key) {
        free(val);
        set_failed(w, IG_ERR_INVALID, "gguf writer: NULL key");
        return;
    }
    size_t kl = strlen(key);
    if (kl == 0 || kl > IG_GGUF_MAX_KEY_LEN || !ig_utf8_valid(key, kl)) {
        free(val);
        set_failed(w, IG_ERR_INVALID, "gguf writer: key '%.64s' is empty, too long or not UTF-8", key);
        return;
    }
    if (!val && len > 0) {
        set_failed(w, IG_ERR_NOMEM, "gguf writer: out of memory for key '%.64s'", key);
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (w->kv[i].key_len == kl && memcmp(w->kv[i].key, key, kl) == 0) {
            free(w->kv[i].val);
            w->kv[i].type = type;
            w->kv[i].val = val;
            w->kv[i].val_len = len;
            return;
        }
    }
    if (w->n_kv >= IG_GGUF_MAX_KV) {
        free(val);
        set_failed(w, IG_ERR_RANGE, "gguf writer: more than %d keys", IG_GGUF_MAX_KV);
        return;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv) {
            free(val);
            set_failed(w, IG_ERR_NOMEM, "gguf writer: out of memory");
            return;
        }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = malloc(kl + 1);
    if (!k) {
        free(val);
        set_failed(w, IG_ERR_NOMEM, "gguf writer: out of memory");
        return;
    }
    memcpy(k, key, kl + 1);
    w->kv[w->n_kv++] = (wkv){k, kl, type, val, len};
}

static void set_scalar(ig_gguf_writer *w, const char *key, uint32_t type, uint64_t bits)
{
    size_t n = ig_gguf_vtype_size(type);
    uint8_t *v = malloc(n);
    if (v)
        for (size_t i = 0; i < n; i++)
            v[i] = (uint8_t)(bits >> (8 * i));
    set_kv(w, key, type, v, n);
}

void ig_gguf_writer_set_u32(ig_gguf_writer *w, const char *key, uint32_t v)
{
    set_scalar(w, key, IG_GGUF_U32, v);
}

void ig_gguf_writer_set_i32(ig_gguf_writer *w, const char *key, int32_t v)
{
    set_scalar(w, key, IG_GGUF_I32, (uint32_t)v);
}

void ig_gguf_writer_set_u64(ig_gguf_writer *w, const char *key, uint64_t v)
{
    set_scalar(w, key, IG_GGUF_U64, v);
}

void ig_gguf_writer_set_f32(ig_gguf_writer *w, const char *key, float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    set_scalar(w, key, IG_GGUF_F32, b);
}

void ig_gguf_writer_set_bool(ig_gguf_writer *w, const char *key, bool v)
{
    set_scalar(w, key, IG_GGUF_BOOL, v ? 1 : 0);
}

void ig_gguf_writer_set_str(ig_gguf_writer *w, const char *key, const char *v)
{
    if (!v) {
        set_failed(w, IG_ERR_INVALID, "gguf writer: NULL string for key '%.64s'", key ? key : "");
        return;
    }
    size_t n = strlen(v);
    if (!ig_utf8_valid(v, n)) {
        set_failed(w, IG_ERR_INVALID, "gguf writer: value of key '%.64s' is not UTF-8", key ? key : "");
        return;
    }
    uint8_t *b = malloc(8 + n);
    if (b) {
        put64(b, n);
        memcpy(b + 8, v, n);
    }
    set_kv(w, key, IG_GGUF_STRING, b, 8 + n);
}

void ig_gguf_writer_set_arr_str(ig_gguf_writer *w, const char *key, const char *const *v, size_t n)
{
    size_t total = 12;
    for (size_t i = 0; i < n; i++) {
        size_t m = v[i] ? strlen(v[i]) : 0;
        if (!v[i] || !ig_utf8_valid(v[i], m)) {
            set_failed(w, IG_ERR_INVALID, "gguf writer: key '%.64s': element %zu is NULL or not UTF-8",
                       key ? key : "", i);
            return;
        }
        total += 8 + m;
    }
    uint8_t *b = malloc(total);
    if (b) {
        put32(b, IG_GGUF_STRING);
        put64(b + 4, n);
        size_t pos = 12;
        for (size_t i = 0; i < n; i++) {
            size_t m = strlen(v[i]);
            put64(b + pos, m);
            memcpy(b + pos + 8, v[i], m);
            pos += 8 + m;
        }
    }
    set_kv(w, key, IG_GGUF_ARRAY, b, total);
}

static void set_arr_fixed(ig_gguf_writer *w, const char *key, uint32_t et, const void *v, size_t n)
{
    size_t esz = ig_gguf_vtype_size(et);
    if (n > (SIZE_MAX - 12) / esz) {
        set_failed(w, IG_ERR_RANGE, "gguf writer: array too long");
        return;
    }
    uint8_t *b = malloc(12 + n * esz);
    if (b) {
        put32(b, et);
        put64(b + 4, n);
        /* Elements are 4-byte words here: encode each little-endian. */
        const uint8_t *src = v;
        for (size_t i = 0; i < n; i++) {
            uint32_t x;
            memcpy(&x, src + 4 * i, 4);
            put32(b + 12 + 4 * i, x);
        }
    }
    set_kv(w, key, IG_GGUF_ARRAY, b, 12 + n * esz);
}

void ig_gguf_writer_set_arr_f32(ig_gguf_writer *w, const char *key, const float *v, size_t n)
{
    set_arr_fixed(w, key, IG_GGUF_F32, v, n);
}

void ig_gguf_writer_set_arr_i32(ig_gguf_writer *w, const char *key, const int32_t *v, size_t n)
{
    set_arr_fixed(w, key, IG_GGUF_I32, v, n);
}

void ig_gguf_writer_copy_kv(ig_gguf_writer *w, const ig_gguf *src, int64_t i)
{
    ig_gguf_vtype type;
    const void *bytes;
    size_t len;
    if (!src || !ig_gguf_kv_raw(src, i, &type, &bytes, &len)) {
        set_failed(w, IG_ERR_INVALID, "gguf writer: copy_kv of key %" PRId64 " out of range", i);
        return;
    }
    ig_str k = ig_gguf_kv_key(src, i);
    /* Keys are validated by the reader and hold no NUL, so a C string is faithful. */
    char *key = malloc((size_t)k.len + 1);
    uint8_t *val = malloc(len ? len : 1);
    if (!key || !val) {
        free(key);
        free(val);
        set_failed(w, IG_ERR_NOMEM, "gguf writer: out of memory");
        return;
    }
    memcpy(key, k.ptr, (size_t)k.len);
    key[k.len] = '\0';
    memcpy(val, bytes, len);
    set_kv(w, key, type, val, len);
    free(key);
}

ig_code ig_gguf_writer_add_tensor(ig_gguf_writer *w, const char *name, uint32_t n_dims,
                                  const int64_t *ne, ig_type type, const void *data,
                                  size_t size, ig_err *err)
{
    if (!name || !ne || (!data && size > 0))
        return ig_err_set(err, IG_ERR_INVALID, "gguf writer: NULL tensor name, shape or data");
    size_t nl = strlen(name);
    if (nl == 0 || nl > IG_GGUF_MAX_NAME_LEN || !ig_utf8_valid(name, nl))
        return ig_err_set(err, IG_ERR_INVALID,
                          "gguf writer: tensor name '%.64s' is empty, longer than %d bytes or not UTF-8",
                          name, IG_GGUF_MAX_NAME_LEN);
    if (n_dims == 0 || n_dims > 4)
        return ig_err_set(err, IG_ERR_INVALID, "gguf writer: tensor '%s' has %" PRIu32 " dims (1..4)",
                          name, n_dims);
    if (!ig_type_is_supported(type))
        return ig_err_set(err, IG_ERR_UNSUPPORTED, "gguf writer: tensor '%s': type %s (%u) is not supported",
                          name, ig_type_name(type), (unsigned)type);
    int64_t bs = ig_type_block_size(type);
    uint64_t bytes = 0;
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] <= 0)
            return ig_err_set(err, IG_ERR_INVALID, "gguf writer: tensor '%s': ne[%" PRIu32 "] = %" PRId64
                              " is not positive", name, d, ne[d]);
    if (ne[0] % bs != 0)
        return ig_err_set(err, IG_ERR_INVALID,
                          "gguf writer: tensor '%s': ne[0] = %" PRId64 " is not a multiple of %" PRId64,
                          name, ne[0], bs);
    bytes = (uint64_t)(ne[0] / bs) * ig_type_block_bytes(type);
    for (uint32_t d = 1; d < n_dims; d++) {
        if (bytes > UINT64_MAX / (uint64_t)ne[d])
            return ig_err_set(err, IG_ERR_RANGE, "gguf writer: tensor '%s' is too large", name);
        bytes *= (uint64_t)ne[d];
    }
    if (bytes != size)
        return ig_err_set(err, IG_ERR_INVALID,
                          "gguf writer: tensor '%s': %zu bytes given, its shape and type need %" PRIu64,
                          name, size, bytes);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return ig_err_set(err, IG_ERR_INVALID, "gguf writer: duplicate tensor name '%s'", name);
    if (w->n_t >= IG_GGUF_MAX_TENSORS)
        return ig_err_set(err, IG_ERR_RANGE, "gguf writer: more than %d tensors", IG_GGUF_MAX_TENSORS);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t)
            return ig_err_set(err, IG_ERR_NOMEM, "gguf writer: out of memory");
        w->t = t;
        w->cap_t = cap;
    }
    wtensor t = {.n_dims = n_dims, .type = type, .size = size};
    for (uint32_t d = 0; d < 4; d++)
        t.ne[d] = d < n_dims ? ne[d] : 1;
    t.name = malloc(nl + 1);
    t.data = malloc(size ? size : 1);
    if (!t.name || !t.data) {
        free(t.name);
        free(t.data);
        return ig_err_set(err, IG_ERR_NOMEM, "gguf writer: out of memory for tensor '%s'", name);
    }
    memcpy(t.name, name, nl + 1);
    if (size)
        memcpy(t.data, data, size);
    w->t[w->n_t++] = t;
    return IG_OK;
}

/* ---- layout and output --------------------------------------------------- */

/* Where bytes go: a preallocated buffer, a file, or nowhere (measuring). */
typedef struct {
    uint8_t *buf;
    FILE *f;
    uint64_t pos;
    bool io_failed;
} sink;

static void emit(sink *s, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (s->buf)
        memcpy(s->buf + s->pos, p, n);
    else if (s->f && !s->io_failed && fwrite(p, 1, n, s->f) != n)
        s->io_failed = true;
    s->pos += n;
}

static void emit_zeros(sink *s, uint64_t n)
{
    static const uint8_t zeros[64];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        emit(s, zeros, k);
        n -= k;
    }
}

static void emit_u32(sink *s, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    emit(s, b, 4);
}

static void emit_u64(sink *s, uint64_t v)
{
    uint8_t b[8];
    put64(b, v);
    emit(s, b, 8);
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* The alignment the file will declare: a general.alignment key if set, else 32. */
static ig_code writer_alignment(const ig_gguf_writer *w, uint32_t *align, ig_err *err)
{
    *align = IG_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0)
            continue;
        uint32_t a = 0;
        if (w->kv[i].type == IG_GGUF_U32)
            a = (uint32_t)w->kv[i].val[0] | ((uint32_t)w->kv[i].val[1] << 8) |
                ((uint32_t)w->kv[i].val[2] << 16) | ((uint32_t)w->kv[i].val[3] << 24);
        if (a == 0 || (a & (a - 1)) || a > IG_GGUF_MAX_ALIGNMENT)
            return ig_err_set(err, IG_ERR_INVALID,
                              "gguf writer: general.alignment must be a u32 power of two <= %u",
                              IG_GGUF_MAX_ALIGNMENT);
        *align = a;
    }
    return IG_OK;
}

/* Writes the whole file to s; returns its total size. Offsets are computed first. */
static uint64_t emit_file(const ig_gguf_writer *w, sink *s, uint32_t align)
{
    emit(s, "GGUF", 4);
    emit_u32(s, 3);
    emit_u64(s, w->n_t);
    emit_u64(s, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        emit_u64(s, w->kv[i].key_len);
        emit(s, w->kv[i].key, w->kv[i].key_len);
        emit_u32(s, w->kv[i].type);
        emit(s, w->kv[i].val, w->kv[i].val_len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        size_t nl = strlen(t->name);
        emit_u64(s, nl);
        emit(s, t->name, nl);
        emit_u32(s, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            emit_u64(s, (uint64_t)t->ne[d]);
        emit_u32(s, (uint32_t)t->type);
        emit_u64(s, off);
        off = align_up(off + t->size, align);
    }
    emit_zeros(s, align_up(s->pos, align) - s->pos);
    for (size_t i = 0; i < w->n_t; i++) {
        /* Every tensor is padded, the last too, as ggml's writer does: some readers
         * size the data section as the sum of padded tensor sizes. */
        emit(s, w->t[i].data, w->t[i].size);
        emit_zeros(s, align_up(w->t[i].size, align) - w->t[i].size);
    }
    return s->pos;
}

static ig_code check_writer(const ig_gguf_writer *w, uint32_t *align, ig_err *err)
{
    if (!w)
        return ig_err_set(err, IG_ERR_INVALID, "gguf writer: NULL writer");
    if (w->failed != IG_OK)
        return ig_err_set(err, w->failed, "%s", w->fail_msg);
    return writer_alignment(w, align, err);
}

ig_code ig_gguf_writer_to_buffer(const ig_gguf_writer *w, void **out, size_t *size, ig_err *err)
{
    uint32_t align;
    ig_code rc = check_writer(w, &align, err);
    if (rc != IG_OK)
        return rc;
    /* A dry run without a destination measures the file. */
    sink count = {.buf = NULL, .f = NULL, .pos = 0, .io_failed = false};
    uint64_t total = emit_file(w, &count, align);
    if (total > SIZE_MAX)
        return ig_err_set(err, IG_ERR_RANGE, "gguf writer: %" PRIu64 " bytes do not fit in memory", total);
    uint8_t *buf = malloc(total ? (size_t)total : 1);
    if (!buf)
        return ig_err_set(err, IG_ERR_NOMEM, "gguf writer: out of memory for %" PRIu64 " bytes", total);
    sink s = {.buf = buf, .f = NULL, .pos = 0, .io_failed = false};
    emit_file(w, &s, align);
    *out = buf;
    *size = (size_t)total;
    return IG_OK;
}

ig_code ig_gguf_writer_write(const ig_gguf_writer *w, const char *path, ig_err *err)
{
    uint32_t align;
    ig_code rc = check_writer(w, &align, err);
    if (rc != IG_OK)
        return rc;
    /* Write beside the target and rename, so a reader never sees half a file. */
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp)
        return ig_err_set(err, IG_ERR_NOMEM, "gguf writer: out of memory");
    snprintf(tmp, pl + 16, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = ig_err_set(err, IG_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    sink s = {.buf = NULL, .f = f, .pos = 0, .io_failed = false};
    emit_file(w, &s, align);
    bool ok = !s.io_failed && fflush(f) == 0;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        rc = ig_err_set(err, IG_ERR_IO, "cannot write %s: %s", path, strerror(saved));
    }
    free(tmp);
    return rc;
}
