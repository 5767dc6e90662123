/*
 * test_gguf.c — the GGUF reader and writer (src/engine/gguf.c, gguf_write.c).
 *
 * Files are built with the writer (and, for what the writer never produces — v2,
 * f64, nested arrays, missing padding — with a small independent byte builder here),
 * then corrupted byte-wise: every failure must be IG_ERR_FORMAT or IG_ERR_UNSUPPORTED
 * with a message naming the problem and the byte offset where it was found. The real
 * bundled models and tokenizer vocabularies are opened and checked against known keys.
 *
 * Usage: test_gguf [CASE...]       runs all cases, or those named
 *        test_gguf --write-seeds DIR  writes the fuzzer's seed corpus
 */
#include "engine.h"
#include "gguf_internal.h"
#include "ig_check.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------- */

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static void path_join(char *out, size_t cap, const char *dir, const char *file)
{
    snprintf(out, cap, "%s/%s", dir, file);
}

/* The main fixture: every writer value type and tensors of several types and ranks. */
static const char *const ARR_STR[] = {"a", "bc", "", "日本", "▁the"};
static const float ARR_F32[] = {1.0f, 2.5f, -3.0f, 1e-7f};
static const int32_t ARR_I32[] = {1, -2, 3, INT32_MIN, INT32_MAX};

static float TA[8];     /* t.a  f32  [4, 2] */
static uint16_t TB[8];  /* t.b  f16  [8] */
static uint8_t TC[68];  /* t.c  q8_0 [32, 2]: two 34-byte blocks */
static float TD[8];     /* t.d  f32  [2, 2, 2] */

static void fill_tensor_data(void)
{
    for (int i = 0; i < 8; i++) {
        TA[i] = (float)i * 0.5f - 1.0f;
        TB[i] = ig_fp32_to_fp16((float)i / 8.0f);
        TD[i] = (float)(i * i);
    }
    for (int i = 0; i < 68; i++)
        TC[i] = (uint8_t)(i * 7 + 3);
}

static ig_gguf_writer *fixture_writer(void)
{
    fill_tensor_data();
    ig_gguf_writer *w = ig_gguf_writer_new();
    ig_err err = {0};
    ig_gguf_writer_set_str(w, "general.architecture", "llama");
    ig_gguf_writer_set_u32(w, "test.u32", 7);
    ig_gguf_writer_set_i32(w, "test.i32", -5);
    ig_gguf_writer_set_u64(w, "test.u64", 1ull << 40);
    ig_gguf_writer_set_f32(w, "test.f32", 1.5f);
    ig_gguf_writer_set_bool(w, "test.bool", true);
    ig_gguf_writer_set_str(w, "test.str", "héllo");
    ig_gguf_writer_set_arr_str(w, "test.arr_str", ARR_STR, 5);
    ig_gguf_writer_set_arr_f32(w, "test.arr_f32", ARR_F32, 4);
    ig_gguf_writer_set_arr_i32(w, "test.arr_i32", ARR_I32, 5);
    ig_gguf_writer_set_u32(w, "dup.a", 1);
    ig_gguf_writer_set_u32(w, "dup.b", 2);
    int64_t ne_a[2] = {4, 2}, ne_b[1] = {8}, ne_c[2] = {32, 2}, ne_d[3] = {2, 2, 2};
    ig_gguf_writer_add_tensor(w, "t.a", 2, ne_a, IG_TYPE_F32, TA, sizeof TA, &err);
    ig_gguf_writer_add_tensor(w, "t.b", 1, ne_b, IG_TYPE_F16, TB, sizeof TB, &err);
    ig_gguf_writer_add_tensor(w, "t.c", 2, ne_c, IG_TYPE_Q8_0, TC, sizeof TC, &err);
    ig_gguf_writer_add_tensor(w, "t.d", 3, ne_d, IG_TYPE_F32, TD, sizeof TD, &err);
    return w;
}

static uint8_t *fixture(size_t *size)
{
    ig_gguf_writer *w = fixture_writer();
    void *buf = NULL;
    ig_err err = {0};
    ig_code rc = ig_gguf_writer_to_buffer(w, &buf, size, &err);
    ig_gguf_writer_free(w);
    if (rc != IG_OK) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        abort();
    }
    return buf;
}

/* Offset of the first occurrence of the bytes of s in buf (s must be there). */
static size_t find_bytes(const uint8_t *buf, size_t size, const void *s, size_t n)
{
    for (size_t i = 0; i + n <= size; i++)
        if (memcmp(buf + i, s, n) == 0)
            return i;
    fprintf(stderr, "find_bytes: pattern not found\n");
    abort();
}

/* Offset of the length field of the string str as stored (key or tensor name). */
static size_t find_str(const uint8_t *buf, size_t size, const char *str)
{
    uint8_t enc[300];
    size_t n = strlen(str);
    for (int i = 0; i < 8; i++)
        enc[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(enc + 8, str, n);
    return find_bytes(buf, size, enc, 8 + n);
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

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Parses "gguf: offset N: ..." and returns N, or -1 when the message lacks it. */
static int64_t msg_offset(const char *msg)
{
    const char *p = strstr(msg, "gguf: offset ");
    if (!p)
        return -1;
    char *end;
    unsigned long long v = strtoull(p + 13, &end, 10);
    if (end == p + 13 || *end != ':')
        return -1;
    return (int64_t)v;
}

/* Opens buf and expects failure with code, at byte offset `offset`, with every
 * given phrase in the message. */
#define EXPECT_FAIL(buf, size, code, offset, ...)                                          \
    expect_fail_at(__FILE__, __LINE__, buf, size, code, offset, (const char *[]){__VA_ARGS__, NULL})

static void expect_fail_at(const char *file, int line, const uint8_t *buf, size_t size,
                           ig_code code, int64_t offset, const char **phrases)
{
    ig_err err = {0};
    ig_gguf *g = ig_gguf_open_buffer(buf, size, &err);
    if (g) {
        ig_gguf_free(g);
        IG_CHECK(false, "%s:%d: open succeeded, expected %s", file, line, ig_code_name(code));
        return;
    }
    IG_CHECK(err.code == code, "%s:%d: code %s, expected %s (%s)", file, line,
             ig_code_name(err.code), ig_code_name(code), err.msg);
    IG_CHECK(msg_offset(err.msg) == offset, "%s:%d: expected offset %" PRId64 " in '%s'", file,
             line, offset, err.msg);
    for (const char **p = phrases; *p; p++)
        IG_CHECK(strstr(err.msg, *p) != NULL, "%s:%d: '%s' not in '%s'", file, line, *p, err.msg);
}

/* Calls every getter on an open reader and checks the invariants it promises. */
static void exercise_getters(const ig_gguf *g, size_t size, const uint8_t *base)
{
    IG_CHECK(ig_gguf_file_size(g) == size, "file size");
    uint32_t a = ig_gguf_alignment(g);
    IG_CHECK(a && (a & (a - 1)) == 0, "alignment %u", a);
    for (int64_t i = 0; i < ig_gguf_n_kv(g); i++) {
        ig_str k = ig_gguf_kv_key(g, i);
        char key[4200];
        IG_CHECK(k.len > 0 && k.len < sizeof key, "key length");
        if (k.len == 0 || k.len >= sizeof key)
            continue;
        memcpy(key, k.ptr, (size_t)k.len);
        key[k.len] = '\0';
        IG_CHECK(ig_gguf_find_key(g, key) == i, "find_key(%s)", key);
        uint32_t u;
        int64_t v;
        float f;
        bool b;
        ig_str s;
        ig_gguf_vtype et;
        uint64_t n;
        (void)ig_gguf_get_u32(g, key, &u);
        (void)ig_gguf_get_i64(g, key, &v);
        (void)ig_gguf_get_f32(g, key, &f);
        (void)ig_gguf_get_bool(g, key, &b);
        if (ig_gguf_get_str(g, key, &s))
            IG_CHECK((const uint8_t *)s.ptr >= base && (const uint8_t *)s.ptr + s.len <= base + size,
                     "string inside buffer");
        if (ig_gguf_get_arr_info(g, key, &et, &n))
            for (uint64_t j = 0; j < n; j++) {
                if (et == IG_GGUF_STRING) {
                    IG_CHECK(ig_gguf_get_arr_str(g, key, j, &s), "arr_str %s[%" PRIu64 "]", key, j);
                } else {
                    (void)ig_gguf_get_arr_f32(g, key, j, &f);
                    (void)ig_gguf_get_arr_i64(g, key, j, &v);
                }
            }
    }
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++) {
        const ig_tensor *t = ig_gguf_tensor_at(g, i);
        IG_CHECK(ig_gguf_tensor_find(g, t->name) == t, "tensor_find(%s)", t->name);
        const uint8_t *d = t->data;
        IG_CHECK(d >= base && t->size <= size && d - base <= (ptrdiff_t)(size - t->size),
                 "tensor %s inside buffer", t->name);
        IG_CHECK(t->offset % a == 0, "tensor %s aligned", t->name);
    }
    IG_CHECK(ig_gguf_tensor_at(g, -1) == NULL && ig_gguf_tensor_at(g, ig_gguf_n_tensors(g)) == NULL,
             "tensor_at out of range");
}

/* An independent little-endian byte builder for files the writer never produces. */
typedef struct {
    uint8_t b[4096];
    size_t n;
} raw;

static void raw_u32(raw *r, uint32_t v) { put32(r->b + r->n, v); r->n += 4; }
static void raw_u64(raw *r, uint64_t v) { put64(r->b + r->n, v); r->n += 8; }
static void raw_bytes(raw *r, const void *p, size_t n) { memcpy(r->b + r->n, p, n); r->n += n; }
static void raw_str(raw *r, const char *s) { raw_u64(r, strlen(s)); raw_bytes(r, s, strlen(s)); }
static void raw_header(raw *r, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    r->n = 0;
    raw_bytes(r, "GGUF", 4);
    raw_u32(r, version);
    raw_u64(r, n_tensors);
    raw_u64(r, n_kv);
}
static void raw_pad(raw *r, size_t a)
{
    while (r->n % a)
        r->b[r->n++] = 0;
}

/* ---- round trip and writer ----------------------------------------------- */

static void test_round_trip_preserves_every_key_array_and_tensor(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    ig_err err = {0};
    ig_gguf *g = ig_gguf_open_buffer(buf, size, &err);
    IG_CHECK(g != NULL, "open: %s", err.msg);
    if (!g) {
        free(buf);
        return;
    }
    IG_CHECK(ig_gguf_version(g) == 3, "version %u", ig_gguf_version(g));
    IG_CHECK(ig_gguf_alignment(g) == 32, "alignment");
    IG_CHECK(ig_gguf_find_key(g, "general.alignment") < 0, "default alignment is not written");
    IG_CHECK(ig_gguf_n_kv(g) == 12, "n_kv %" PRId64, ig_gguf_n_kv(g));
    ig_str s;
    IG_CHECK(ig_gguf_get_str(g, "general.architecture", &s) && s.len == 5 && !memcmp(s.ptr, "llama", 5), "arch");
    IG_CHECK(ig_gguf_get_str(g, "test.str", &s) && s.len == strlen("héllo") && !memcmp(s.ptr, "héllo", s.len), "str");
    uint32_t u = 0;
    int64_t v = 0;
    float f = 0;
    bool b = false;
    IG_CHECK(ig_gguf_get_u32(g, "test.u32", &u) && u == 7, "u32");
    IG_CHECK(ig_gguf_get_i64(g, "test.i32", &v) && v == -5, "i32");
    IG_CHECK(ig_gguf_get_i64(g, "test.u64", &v) && v == (int64_t)(1ull << 40), "u64");
    IG_CHECK(ig_gguf_get_f32(g, "test.f32", &f) && f == 1.5f, "f32");
    IG_CHECK(ig_gguf_get_bool(g, "test.bool", &b) && b, "bool");
    ig_gguf_vtype et;
    uint64_t n;
    IG_CHECK(ig_gguf_get_arr_info(g, "test.arr_str", &et, &n) && et == IG_GGUF_STRING && n == 5, "arr_str info");
    for (uint64_t i = 0; i < 5; i++)
        IG_CHECK(ig_gguf_get_arr_str(g, "test.arr_str", i, &s) && s.len == strlen(ARR_STR[i]) &&
                     !memcmp(s.ptr, ARR_STR[i], s.len), "arr_str[%" PRIu64 "]", i);
    IG_CHECK(!ig_gguf_get_arr_str(g, "test.arr_str", 5, &s), "arr_str past end");
    IG_CHECK(ig_gguf_get_arr_info(g, "test.arr_f32", &et, &n) && et == IG_GGUF_F32 && n == 4, "arr_f32 info");
    for (uint64_t i = 0; i < 4; i++)
        IG_CHECK(ig_gguf_get_arr_f32(g, "test.arr_f32", i, &f) && f == ARR_F32[i], "arr_f32[%" PRIu64 "]", i);
    IG_CHECK(ig_gguf_get_arr_info(g, "test.arr_i32", &et, &n) && et == IG_GGUF_I32 && n == 5, "arr_i32 info");
    for (uint64_t i = 0; i < 5; i++)
        IG_CHECK(ig_gguf_get_arr_i64(g, "test.arr_i32", i, &v) && v == ARR_I32[i], "arr_i32[%" PRIu64 "]", i);
    IG_CHECK(ig_gguf_n_tensors(g) == 4, "n_tensors");
    struct { const char *name; uint32_t n_dims; int64_t ne[4]; ig_type type; const void *data; size_t size; } want[] = {
        {"t.a", 2, {4, 2, 1, 1}, IG_TYPE_F32, TA, sizeof TA},
        {"t.b", 1, {8, 1, 1, 1}, IG_TYPE_F16, TB, sizeof TB},
        {"t.c", 2, {32, 2, 1, 1}, IG_TYPE_Q8_0, TC, sizeof TC},
        {"t.d", 3, {2, 2, 2, 1}, IG_TYPE_F32, TD, sizeof TD},
    };
    for (int i = 0; i < 4; i++) {
        const ig_tensor *t = ig_gguf_tensor_at(g, i);
        IG_CHECK(t && !strcmp(t->name, want[i].name), "tensor %d name", i);
        if (!t)
            continue;
        IG_CHECK(ig_gguf_tensor_find(g, want[i].name) == t, "find %s", want[i].name);
        IG_CHECK(t->n_dims == want[i].n_dims && t->type == want[i].type, "%s dims/type", t->name);
        IG_CHECK(!memcmp(t->ne, want[i].ne, sizeof t->ne), "%s ne", t->name);
        IG_CHECK(t->size == want[i].size && !memcmp(t->data, want[i].data, t->size), "%s data", t->name);
        IG_CHECK(t->offset % 32 == 0, "%s offset aligned", t->name);
    }
    IG_CHECK(ig_gguf_tensor_find(g, "t.e") == NULL && ig_gguf_find_key(g, "test.nope") == -1, "absent names");
    exercise_getters(g, size, buf);
    ig_gguf_free(g);
    free(buf);
}

static void test_written_file_opens_from_disk_with_same_content(void)
{
    char path[512];
    path_join(path, sizeof path, env_or("IG_BUILD", "."), "test_gguf_roundtrip.gguf");
    ig_gguf_writer *w = fixture_writer();
    ig_err err = {0};
    IG_CHECK(ig_gguf_writer_write(w, path, &err) == IG_OK, "write: %s", err.msg);
    ig_gguf_writer_free(w);
    size_t size;
    uint8_t *buf = fixture(&size);
    ig_gguf *g = ig_gguf_open(path, &err);
    IG_CHECK(g != NULL, "open: %s", err.msg);
    if (g) {
        IG_CHECK(ig_gguf_file_size(g) == size, "same size as the buffer form");
        const ig_tensor *t = ig_gguf_tensor_find(g, "t.c");
        IG_CHECK(t && t->size == sizeof TC && !memcmp(t->data, TC, sizeof TC), "q8_0 data from disk");
        IG_CHECK(size % 32 == 0, "file ends padded to the alignment");
        ig_gguf_free(g);
    }
    FILE *f = fopen(path, "rb");
    if (f) {
        uint8_t *disk = malloc(size + 1);
        size_t got = fread(disk, 1, size + 1, f);
        fclose(f);
        IG_CHECK(got == size && !memcmp(disk, buf, size), "file bytes equal buffer bytes");
        free(disk);
    }
    remove(path);
    free(buf);
}

static void test_setting_a_key_twice_replaces_its_value_and_type(void)
{
    ig_gguf_writer *w = ig_gguf_writer_new();
    ig_gguf_writer_set_u32(w, "k", 1);
    ig_gguf_writer_set_str(w, "other", "x");
    ig_gguf_writer_set_str(w, "k", "now a string");
    void *buf;
    size_t size;
    ig_err err = {0};
    IG_CHECK(ig_gguf_writer_to_buffer(w, &buf, &size, &err) == IG_OK, "%s", err.msg);
    ig_gguf_writer_free(w);
    ig_gguf *g = ig_gguf_open_buffer(buf, size, &err);
    IG_CHECK(g != NULL, "%s", err.msg);
    if (g) {
        ig_str s;
        IG_CHECK(ig_gguf_n_kv(g) == 2, "two keys");
        IG_CHECK(ig_gguf_find_key(g, "k") == 0, "keeps its position");
        IG_CHECK(ig_gguf_get_str(g, "k", &s) && s.len == 12, "replaced");
        ig_gguf_free(g);
    }
    free(buf);
}

static void test_copy_kv_copies_every_key_of_real_files_verbatim(void)
{
    char files[2][512];
    path_join(files[0], sizeof files[0], env_or("IG_MODELS", "models"), "edge.gguf");
    path_join(files[1], sizeof files[1], env_or("IG_TEST_DATA", "tests/data"), "tokenizers/vocab-llama2-spm.gguf");
    for (int fi = 0; fi < 2; fi++) {
        ig_err err = {0};
        ig_gguf *src = ig_gguf_open(files[fi], &err);
        IG_CHECK(src != NULL, "%s: %s", files[fi], err.msg);
        if (!src)
            continue;
        ig_gguf_writer *w = ig_gguf_writer_new();
        for (int64_t i = 0; i < ig_gguf_n_kv(src); i++)
            ig_gguf_writer_copy_kv(w, src, i);
        void *buf;
        size_t size;
        IG_CHECK(ig_gguf_writer_to_buffer(w, &buf, &size, &err) == IG_OK, "%s", err.msg);
        ig_gguf_writer_free(w);
        ig_gguf *dst = ig_gguf_open_buffer(buf, size, &err);
        IG_CHECK(dst != NULL, "%s", err.msg);
        if (dst) {
            IG_CHECK(ig_gguf_n_kv(dst) == ig_gguf_n_kv(src), "same key count");
            for (int64_t i = 0; i < ig_gguf_n_kv(src); i++) {
                ig_str a = ig_gguf_kv_key(src, i), b = ig_gguf_kv_key(dst, i);
                IG_CHECK(a.len == b.len && !memcmp(a.ptr, b.ptr, a.len), "key %" PRId64, i);
                IG_CHECK(ig_gguf_kv_type(src, i) == ig_gguf_kv_type(dst, i), "type %" PRId64, i);
                /* The key and value bytes follow each other in both files: compare the
                 * whole encoding of the value from the key onwards up to the next key. */
                char key[256];
                snprintf(key, sizeof key, "%.*s", (int)a.len, a.ptr);
                ig_gguf_vtype et;
                uint64_t n;
                if (ig_gguf_get_arr_info(src, key, &et, &n)) {
                    ig_gguf_vtype et2;
                    uint64_t n2;
                    IG_CHECK(ig_gguf_get_arr_info(dst, key, &et2, &n2) && et2 == et && n2 == n, "%s info", key);
                    for (uint64_t j = 0; j < n; j++) {
                        if (et == IG_GGUF_STRING) {
                            ig_str x, y;
                            ig_gguf_get_arr_str(src, key, j, &x);
                            bool ok = ig_gguf_get_arr_str(dst, key, j, &y);
                            if (!ok || x.len != y.len || memcmp(x.ptr, y.ptr, x.len)) {
                                IG_CHECK(false, "%s[%" PRIu64 "] differs", key, j);
                                break;
                            }
                        } else {
                            float x, y;
                            ig_gguf_get_arr_f32(src, key, j, &x);
                            if (!ig_gguf_get_arr_f32(dst, key, j, &y) || memcmp(&x, &y, 4)) {
                                IG_CHECK(false, "%s[%" PRIu64 "] differs", key, j);
                                break;
                            }
                        }
                    }
                } else {
                    ig_str x, y;
                    int64_t p, q;
                    float fx, fy;
                    bool bx, by;
                    if (ig_gguf_get_str(src, key, &x))
                        IG_CHECK(ig_gguf_get_str(dst, key, &y) && x.len == y.len && !memcmp(x.ptr, y.ptr, x.len), "%s", key);
                    else if (ig_gguf_get_i64(src, key, &p))
                        IG_CHECK(ig_gguf_get_i64(dst, key, &q) && p == q, "%s", key);
                    else if (ig_gguf_get_f32(src, key, &fx))
                        IG_CHECK(ig_gguf_get_f32(dst, key, &fy) && !memcmp(&fx, &fy, 4), "%s", key);
                    else if (ig_gguf_get_bool(src, key, &bx))
                        IG_CHECK(ig_gguf_get_bool(dst, key, &by) && bx == by, "%s", key);
                }
            }
            ig_gguf_free(dst);
        }
        free(buf);
        ig_gguf_free(src);
    }
}

static void test_copy_kv_keeps_u64_and_f64_bits_exactly(void)
{
    /* Values the typed getters cannot carry: u64 above INT64_MAX and an f64. */
    raw r;
    raw_header(&r, 3, 0, 2);
    raw_str(&r, "big");
    raw_u32(&r, IG_GGUF_U64);
    raw_u64(&r, UINT64_MAX - 1);
    raw_str(&r, "pi");
    raw_u32(&r, IG_GGUF_F64);
    double pi = 3.141592653589793;
    uint64_t bits;
    memcpy(&bits, &pi, 8);
    raw_u64(&r, bits);
    ig_err err = {0};
    ig_gguf *src = ig_gguf_open_buffer(r.b, r.n, &err);
    IG_CHECK(src != NULL, "%s", err.msg);
    if (!src)
        return;
    ig_gguf_writer *w = ig_gguf_writer_new();
    ig_gguf_writer_copy_kv(w, src, 0);
    ig_gguf_writer_copy_kv(w, src, 1);
    void *buf;
    size_t size;
    IG_CHECK(ig_gguf_writer_to_buffer(w, &buf, &size, &err) == IG_OK, "%s", err.msg);
    ig_gguf_writer_free(w);
    /* Header + the same key/value bytes: the written keys equal the source bytes. */
    IG_CHECK(size >= r.n && !memcmp((uint8_t *)buf + 24, r.b + 24, r.n - 24), "verbatim bytes");
    free(buf);
    ig_gguf_free(src);
}

static void test_writer_rejects_wrong_size_duplicate_and_unsupported_tensors(void)
{
    ig_gguf_writer *w = ig_gguf_writer_new();
    ig_err err = {0};
    float d[64] = {0};
    int64_t ne[2] = {8, 2};
    IG_CHECK(ig_gguf_writer_add_tensor(w, "x", 2, ne, IG_TYPE_F32, d, 60, &err) == IG_ERR_INVALID &&
                 strstr(err.msg, "64"), "size mismatch: %s", err.msg);
    IG_CHECK(ig_gguf_writer_add_tensor(w, "x", 2, ne, IG_TYPE_F32, d, 64, &err) == IG_OK, "%s", err.msg);
    IG_CHECK(ig_gguf_writer_add_tensor(w, "x", 2, ne, IG_TYPE_F32, d, 64, &err) == IG_ERR_INVALID &&
                 strstr(err.msg, "duplicate"), "duplicate: %s", err.msg);
    IG_CHECK(ig_gguf_writer_add_tensor(w, "y", 2, ne, IG_TYPE_Q8_K, d, 64, &err) == IG_ERR_UNSUPPORTED,
             "q8_k: %s", err.msg);
    IG_CHECK(ig_gguf_writer_add_tensor(w, "z", 2, ne, IG_TYPE_Q8_0, d, 64, &err) == IG_ERR_INVALID &&
                 strstr(err.msg, "multiple"), "block size: %s", err.msg);
    IG_CHECK(ig_gguf_writer_add_tensor(w, "z", 5, ne, IG_TYPE_F32, d, 64, &err) == IG_ERR_INVALID, "5 dims");
    ig_gguf_writer_set_str(w, "bad", "\xff");
    void *buf = NULL;
    size_t size;
    IG_CHECK(ig_gguf_writer_to_buffer(w, &buf, &size, &err) == IG_ERR_INVALID && strstr(err.msg, "UTF-8"),
             "invalid string reported at write: %s", err.msg);
    ig_gguf_writer_free(w);
    free(buf);
}

static void test_custom_alignment_is_written_and_honoured(void)
{
    ig_gguf_writer *w = fixture_writer();
    ig_gguf_writer_set_u32(w, "general.alignment", 64);
    void *buf;
    size_t size;
    ig_err err = {0};
    IG_CHECK(ig_gguf_writer_to_buffer(w, &buf, &size, &err) == IG_OK, "%s", err.msg);
    ig_gguf_writer_free(w);
    ig_gguf *g = ig_gguf_open_buffer(buf, size, &err);
    IG_CHECK(g != NULL, "%s", err.msg);
    if (g) {
        IG_CHECK(ig_gguf_alignment(g) == 64, "alignment %u", ig_gguf_alignment(g));
        for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++) {
            const ig_tensor *t = ig_gguf_tensor_at(g, i);
            IG_CHECK(t->offset % 64 == 0 && ((const uint8_t *)t->data - (const uint8_t *)buf) % 64 == 0,
                     "%s at 64", t->name);
        }
        ig_gguf_free(g);
    }
    free(buf);
}

/* ---- header ---------------------------------------------------------------- */

static void test_wrong_magic_fails_at_offset_0(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    memcpy(buf, "GGML", 4);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, 0, "bad magic", "GGML", "not a GGUF file");
    EXPECT_FAIL(buf, 2, IG_ERR_FORMAT, 0, "too short");
    EXPECT_FAIL(buf, 0, IG_ERR_FORMAT, 0, "too short");
    free(buf);
}

static void test_version_1_is_refused_as_unsupported(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    put32(buf + 4, 1);
    EXPECT_FAIL(buf, size, IG_ERR_UNSUPPORTED, 4, "version 1", "not supported");
    put32(buf + 4, 4);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, 4, "unknown GGUF version 4");
    put32(buf + 4, 0x03000000u);
    EXPECT_FAIL(buf, size, IG_ERR_UNSUPPORTED, 4, "big-endian");
    free(buf);
}

static void test_version_2_file_is_read(void)
{
    raw r;
    raw_header(&r, 2, 1, 2);
    raw_str(&r, "general.architecture");
    raw_u32(&r, IG_GGUF_STRING);
    raw_str(&r, "qwen2");
    raw_str(&r, "n");
    raw_u32(&r, IG_GGUF_U16);
    r.b[r.n++] = 0x34;
    r.b[r.n++] = 0x12;
    raw_str(&r, "w");
    raw_u32(&r, 1);
    raw_u64(&r, 4);
    raw_u32(&r, IG_TYPE_F32);
    raw_u64(&r, 0);
    raw_pad(&r, 32);
    float x[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        raw_u32(&r, u);
    }
    ig_err err = {0};
    ig_gguf *g = ig_gguf_open_buffer(r.b, r.n, &err);
    IG_CHECK(g != NULL, "%s", err.msg);
    if (!g)
        return;
    uint32_t u;
    IG_CHECK(ig_gguf_version(g) == 2, "version");
    IG_CHECK(ig_gguf_get_u32(g, "n", &u) && u == 0x1234, "u16 widens to u32");
    const ig_tensor *t = ig_gguf_tensor_find(g, "w");
    float y[4];
    if (t)
        memcpy(y, t->data, 16);
    IG_CHECK(t && t->size == 16 && y[3] == 4.0f, "tensor");
    ig_gguf_free(g);
}

static void test_absurd_tensor_and_key_counts_fail_naming_the_file_size(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    char want[96];
    put64(buf + 8, UINT64_MAX);
    snprintf(want, sizeof want, "exceeds what a %zu-byte file can hold", size);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, 8, "tensor count 18446744073709551615", want);
    put64(buf + 8, 4);
    put64(buf + 16, 1ull << 40);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, 16, "key count 1099511627776", want);
    free(buf);
}

static void test_truncated_file_fails_with_offset_at_every_length(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    int bad = 0;
    for (size_t len = 0; len < size; len++) {
        /* A copy of exactly len bytes, so ASan sees any read past it. */
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, buf, len);
        ig_err err = {0};
        ig_gguf *g = ig_gguf_open_buffer(cut, len, &err);
        int64_t off = g ? -1 : msg_offset(err.msg);
        bool ok = !g && err.code == IG_ERR_FORMAT && off >= 0 && (size_t)off <= len &&
                  (strstr(err.msg, "file ends") || strstr(err.msg, "too short") ||
                   strstr(err.msg, "past the end") || strstr(err.msg, "exceeds"));
        if (!ok && bad++ < 5)
            IG_CHECK(false, "truncated at %zu: %s", len, g ? "opened" : err.msg);
        ig_gguf_free(g);
        free(cut);
    }
    IG_CHECK(bad == 0, "%d truncation points misreported", bad);
    free(buf);
}

/* ---- keys and values ------------------------------------------------------- */

static void test_string_length_past_end_fails_with_bytes_left(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    size_t k = find_str(buf, size, "test.str");
    size_t val = k + 8 + 8 + 4; /* the value's length field */
    put64(buf + val, 1u << 20);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)val, "key 'test.str'", "string value length 1048576",
                "bytes left");
    put64(buf + val, UINT64_MAX);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)val, "length 18446744073709551615");
    put64(buf + k, UINT64_MAX - 7); /* the key's own length: must not overflow to small */
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)k, "key 6 length 18446744073709551608 exceeds");
    free(buf);
}

static void test_value_type_out_of_range_fails(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    size_t k = find_str(buf, size, "test.u32");
    size_t type = k + 8 + 8;
    put32(buf + type, 13);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)type, "key 'test.u32'", "value type 13", "not a GGUF type");
    put32(buf + type, UINT32_MAX);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)type, "value type 4294967295");
    free(buf);
}

static void test_absurd_array_length_fails(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    size_t k = find_str(buf, size, "test.arr_f32");
    size_t n = k + 8 + 12 + 4 + 4;
    put64(buf + n, UINT64_MAX / 2);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)n, "key 'test.arr_f32'", "array of 9223372036854775807 f32",
                "bytes left");
    k = find_str(buf, size, "test.arr_str");
    n = k + 8 + 12 + 4 + 4;
    put64(buf + n, UINT64_MAX);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)n, "key 'test.arr_str'", "array length 18446744073709551615");
    free(buf);
}

static void test_array_element_type_errors_and_nested_arrays_fail(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    size_t k = find_str(buf, size, "test.arr_i32");
    size_t et = k + 8 + 12 + 4;
    put32(buf + et, IG_GGUF_ARRAY);
    EXPECT_FAIL(buf, size, IG_ERR_UNSUPPORTED, (int64_t)et, "key 'test.arr_i32'", "array of arrays");
    put32(buf + et, 77);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)et, "element type 77", "not a GGUF type");
    free(buf);
}

static void test_duplicate_keys_fail_naming_both_offsets(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    size_t a = find_str(buf, size, "dup.a"), b = find_str(buf, size, "dup.b");
    buf[b + 8 + 4] = 'a';
    char first[64];
    snprintf(first, sizeof first, "first at offset %zu", a);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)b, "duplicate key 'dup.a'", first);
    free(buf);
}

static void test_non_utf8_key_string_element_and_name_fail(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    struct { const char *s; size_t at; const char *what; } cases[] = {
        {"test.bool", 0, "key 5 is not valid UTF-8"},
        {"héllo", 1, "string value is not valid UTF-8"}, /* the 2nd byte of é */
        {"日本", 0, "element 3: string is not valid UTF-8"},
        {"t.c", 2, "name is not valid UTF-8"},
    };
    const uint8_t patches[] = {0xff, 0xfe, 0xc0, 0xc1, 0xf5}; /* bytes never valid in UTF-8 */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t p = 0; p < sizeof patches; p++) {
            uint8_t *copy = malloc(size);
            memcpy(copy, buf, size);
            size_t off = find_str(copy, size, cases[c].s);
            copy[off + 8 + cases[c].at] = patches[p];
            EXPECT_FAIL(copy, size, IG_ERR_FORMAT, (int64_t)off, cases[c].what);
            free(copy);
        }
    }
    free(buf);
}

static void test_utf8_validation_rejects_overlongs_surrogates_and_out_of_range(void)
{
    struct { const char *s; bool ok; } v[] = {
        {"plain", true}, {"é", true}, {"€", true}, {"𝄞", true}, {"\xf4\x8f\xbf\xbf", true},
        {"\xc0\xaf", false}, {"\xe0\x80\xaf", false}, {"\xf0\x80\x80\xaf", false},
        {"\xed\xa0\x80", false}, {"\xf4\x90\x80\x80", false}, {"\xf5\x80\x80\x80", false},
        {"\xe2\x82", false}, {"\x80", false}, {"abcdefgh\xff", false}, {"abcdefghijklmnop\xe2\x82\xac", true},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        raw r;
        raw_header(&r, 3, 0, 1);
        raw_str(&r, "k");
        raw_u32(&r, IG_GGUF_STRING);
        raw_str(&r, v[i].s);
        ig_err err = {0};
        ig_gguf *g = ig_gguf_open_buffer(r.b, r.n, &err);
        IG_CHECK((g != NULL) == v[i].ok, "case %zu: %s", i, g ? "accepted" : err.msg);
        ig_gguf_free(g);
    }
}

/* The reference: decode one character by the definition and check its range. */
static bool utf8_reference(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], cp;
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || n - i < len)
            return false;
        cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static void test_utf8_validator_agrees_with_reference_on_all_short_sequences(void)
{
    /* Every 1-, 2- and 3-byte sequence, and 4-byte ones built from boundary bytes. */
    uint8_t b[4];
    long bad = 0;
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        bad += ig_utf8_valid((char *)b, 1) != utf8_reference(b, 1);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            bad += ig_utf8_valid((char *)b, 2) != utf8_reference(b, 2);
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (uint8_t)z;
                bad += ig_utf8_valid((char *)b, 3) != utf8_reference(b, 3);
            }
        }
    }
    static const uint8_t edge[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf4, 0xff};
    for (unsigned x = 0; x < 256; x++)
        for (size_t i = 0; i < sizeof edge; i++)
            for (size_t j = 0; j < sizeof edge; j++)
                for (size_t k = 0; k < sizeof edge; k++) {
                    b[0] = (uint8_t)x, b[1] = edge[i], b[2] = edge[j], b[3] = edge[k];
                    bad += ig_utf8_valid((char *)b, 4) != utf8_reference(b, 4);
                }
    /* Long strings take the 8-byte ASCII path before the automaton. */
    const char *longer[] = {"abcdefgh", "abcdefghé", "abcdefgh\xc3", "abcdefghijklmnop\xed\xa0\x80", "0123456789abcdef"};
    for (size_t i = 0; i < sizeof longer / sizeof longer[0]; i++)
        bad += ig_utf8_valid(longer[i], strlen(longer[i])) != utf8_reference((const uint8_t *)longer[i], strlen(longer[i]));
    IG_CHECK(bad == 0, "%ld sequences judged differently", bad);
}

static void test_fuzz_seed_files_open(void)
{
    const char *seeds[] = {"fixture.gguf", "v2-f64-i16.gguf", "align64-bf16-q4_0.gguf"};
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof path, "tests/fuzz/seeds/gguf/%s", seeds[i]);
        ig_err err = {0};
        ig_gguf *g = ig_gguf_open(path, &err);
        IG_CHECK(g != NULL, "%s: %s", path, err.msg);
        ig_gguf_free(g);
    }
}

static void test_bool_other_than_0_or_1_fails(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    size_t k = find_str(buf, size, "test.bool");
    size_t v = k + 8 + 9 + 4;
    buf[v] = 2;
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)v, "key 'test.bool'", "bool value 2");
    free(buf);
}

static void test_empty_key_and_key_with_nul_fail(void)
{
    raw r;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "");
    raw_u32(&r, IG_GGUF_U32);
    raw_u32(&r, 1);
    EXPECT_FAIL(r.b, r.n, IG_ERR_FORMAT, 24, "key 0 is empty");
    raw_header(&r, 3, 0, 1);
    raw_u64(&r, 3);
    raw_bytes(&r, "a\0b", 3);
    raw_u32(&r, IG_GGUF_U8);
    r.b[r.n++] = 1;
    EXPECT_FAIL(r.b, r.n, IG_ERR_FORMAT, 24, "NUL");
}

/* ---- getters ----------------------------------------------------------------- */

static void test_getters_convert_numbers_only_when_in_range(void)
{
    raw r;
    raw_header(&r, 3, 0, 9);
    raw_str(&r, "u8"); raw_u32(&r, IG_GGUF_U8); r.b[r.n++] = 200;
    raw_str(&r, "i8"); raw_u32(&r, IG_GGUF_I8); r.b[r.n++] = 0x80;
    raw_str(&r, "i16"); raw_u32(&r, IG_GGUF_I16); r.b[r.n++] = 0xff; r.b[r.n++] = 0x7f;
    raw_str(&r, "u64big"); raw_u32(&r, IG_GGUF_U64); raw_u64(&r, UINT64_MAX);
    raw_str(&r, "i64neg"); raw_u32(&r, IG_GGUF_I64); raw_u64(&r, (uint64_t)-3);
    double d = 0.25, huge = 1e300;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    raw_str(&r, "f64"); raw_u32(&r, IG_GGUF_F64); raw_u64(&r, bits);
    memcpy(&bits, &huge, 8);
    raw_str(&r, "f64huge"); raw_u32(&r, IG_GGUF_F64); raw_u64(&r, bits);
    raw_str(&r, "b"); raw_u32(&r, IG_GGUF_BOOL); r.b[r.n++] = 1;
    raw_str(&r, "arr_u64"); raw_u32(&r, IG_GGUF_ARRAY); raw_u32(&r, IG_GGUF_U64); raw_u64(&r, 2);
    raw_u64(&r, 5); raw_u64(&r, UINT64_MAX);
    ig_err err = {0};
    ig_gguf *g = ig_gguf_open_buffer(r.b, r.n, &err);
    IG_CHECK(g != NULL, "%s", err.msg);
    if (!g)
        return;
    uint32_t u;
    int64_t v;
    float f;
    bool b;
    ig_str s;
    IG_CHECK(ig_gguf_get_u32(g, "u8", &u) && u == 200, "u8 -> u32");
    IG_CHECK(ig_gguf_get_i64(g, "i8", &v) && v == -128, "i8 -> i64");
    IG_CHECK(!ig_gguf_get_u32(g, "i8", &u), "negative does not fit u32");
    IG_CHECK(ig_gguf_get_i64(g, "i16", &v) && v == 32767, "i16");
    IG_CHECK(!ig_gguf_get_i64(g, "u64big", &v) && !ig_gguf_get_u32(g, "u64big", &u), "u64 max fits neither");
    IG_CHECK(ig_gguf_get_f32(g, "u64big", &f) && f > 1.8e19f, "integers convert to f32");
    IG_CHECK(ig_gguf_get_i64(g, "i64neg", &v) && v == -3, "i64");
    IG_CHECK(ig_gguf_get_f32(g, "f64", &f) && f == 0.25f, "f64 -> f32");
    IG_CHECK(!ig_gguf_get_f32(g, "f64huge", &f), "f64 beyond float range does not fit");
    IG_CHECK(!ig_gguf_get_i64(g, "f64", &v), "floats are not integers");
    IG_CHECK(ig_gguf_get_bool(g, "b", &b) && b, "bool");
    IG_CHECK(!ig_gguf_get_u32(g, "b", &u) && !ig_gguf_get_bool(g, "u8", &b), "bool is not a number");
    IG_CHECK(!ig_gguf_get_str(g, "u8", &s) && !ig_gguf_get_str(g, "missing", &s), "not a string");
    IG_CHECK(!ig_gguf_get_u32(g, "arr_u64", &u), "array is not a scalar");
    IG_CHECK(ig_gguf_get_arr_i64(g, "arr_u64", 0, &v) && v == 5, "arr u64 element");
    IG_CHECK(!ig_gguf_get_arr_i64(g, "arr_u64", 1, &v), "arr u64 beyond INT64_MAX");
    IG_CHECK(!ig_gguf_get_arr_i64(g, "arr_u64", 2, &v), "index past the end");
    IG_CHECK(!ig_gguf_get_arr_str(g, "arr_u64", 0, &s), "not a string array");
    IG_CHECK(ig_gguf_kv_key(g, 99).ptr == NULL, "kv_key out of range");
    ig_gguf_free(g);
}

/* ---- tensors --------------------------------------------------------------- */

/* Offsets of the fields of tensor info `name` in buf. */
typedef struct {
    size_t name, n_dims, ne, type, offset;
} tinfo;

static tinfo find_tensor(const uint8_t *buf, size_t size, const char *name)
{
    tinfo t;
    t.name = find_str(buf, size, name);
    t.n_dims = t.name + 8 + strlen(name);
    uint32_t nd = buf[t.n_dims];
    t.ne = t.n_dims + 4;
    t.type = t.ne + 8 * nd;
    t.offset = t.type + 4;
    return t;
}

static void test_tensor_dimension_count_outside_1_to_4_fails(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    tinfo t = find_tensor(buf, size, "t.a");
    put32(buf + t.n_dims, 0);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)t.n_dims, "tensor 't.a' has 0 dimensions");
    put32(buf + t.n_dims, 5);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)t.n_dims, "tensor 't.a' has 5 dimensions");
    free(buf);
}

static void test_nonpositive_or_overflowing_shape_fails(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    tinfo t = find_tensor(buf, size, "t.a");
    put64(buf + t.ne + 8, 0);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)(t.ne + 8), "ne[1] = 0 is not positive");
    put64(buf + t.ne + 8, UINT64_MAX);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)(t.ne + 8), "ne[1] = -1 is not positive");
    put64(buf + t.ne, 1ull << 32);
    put64(buf + t.ne + 8, 1ull << 32);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)(t.ne + 8), "element count overflows");
    /* Size fits 64 bits but not the file. */
    put64(buf + t.ne, 1ull << 30);
    put64(buf + t.ne + 8, 1ull << 30);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)t.offset, "past the end");
    /* Elements fit int64 but bytes (4 each) do not fit 64 bits. */
    tinfo d = find_tensor(buf, size, "t.d");
    put64(buf + d.ne, 1ull << 21);
    put64(buf + d.ne + 8, 1ull << 21);
    put64(buf + d.ne + 16, 1ull << 20);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)d.n_dims, "data size overflows");
    free(buf);
}

static void test_ne0_not_a_multiple_of_block_size_fails(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    tinfo t = find_tensor(buf, size, "t.c");
    put64(buf + t.ne, 33);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)t.ne, "ne[0] = 33 is not a multiple of the q8_0 block size 32");
    free(buf);
}

static void test_unsupported_tensor_type_is_refused_by_name(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    tinfo t = find_tensor(buf, size, "t.c");
    put32(buf + t.type, 16);
    EXPECT_FAIL(buf, size, IG_ERR_UNSUPPORTED, (int64_t)t.type,
                "tensor 't.c' has type iq2_xxs (16), which idlegrid does not support");
    put32(buf + t.type, 15);
    EXPECT_FAIL(buf, size, IG_ERR_UNSUPPORTED, (int64_t)t.type, "type q8_k (15)");
    put32(buf + t.type, 3);
    EXPECT_FAIL(buf, size, IG_ERR_UNSUPPORTED, (int64_t)t.type, "type q4_1 (3)");
    put32(buf + t.type, 1000);
    EXPECT_FAIL(buf, size, IG_ERR_UNSUPPORTED, (int64_t)t.type, "type unknown (1000)");
    free(buf);
}

static void test_unaligned_or_out_of_file_tensor_offset_fails(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    tinfo t = find_tensor(buf, size, "t.b");
    uint64_t was = get64(buf + t.offset);
    put64(buf + t.offset, was + 4);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)t.offset, "tensor 't.b'", "not a multiple of the alignment 32");
    put64(buf + t.offset, 1ull << 20);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)t.offset, "tensor 't.b'", "past the end");
    put64(buf + t.offset, UINT64_MAX - 31); /* aligned, and offset + size wraps around */
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)t.offset, "past the end");
    free(buf);
}

static void test_overlapping_tensors_fail(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    tinfo a = find_tensor(buf, size, "t.a"), c = find_tensor(buf, size, "t.c");
    /* t.c (68 bytes) moved onto t.a's data. */
    memcpy(buf + c.offset, buf + a.offset, 8);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)c.offset, "tensor 't.c'", "overlaps tensor 't.a'");
    free(buf);
}

static void test_duplicate_tensor_names_fail(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    /* Elements fit int64 but bytes (4 each) do not fit 64 bits. */
    tinfo d = find_tensor(buf, size, "t.d");
    buf[d.name + 8 + 2] = 'b';
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)d.name, "duplicate tensor name 't.b'");
    free(buf);
}

static void test_bad_alignment_value_or_type_fails(void)
{
    ig_gguf_writer *w = fixture_writer();
    ig_gguf_writer_set_u32(w, "general.alignment", 64);
    void *out;
    size_t size;
    ig_err err = {0};
    IG_CHECK(ig_gguf_writer_to_buffer(w, &out, &size, &err) == IG_OK, "%s", err.msg);
    ig_gguf_writer_free(w);
    uint8_t *buf = out;
    size_t k = find_str(buf, size, "general.alignment");
    size_t v = k + 8 + 17 + 4;
    put32(buf + v, 48);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)v, "general.alignment 48 is not a power of two");
    put32(buf + v, 0);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)v, "general.alignment 0 is not a power of two");
    put32(buf + v, 64);
    put32(buf + v - 4, IG_GGUF_I32);
    EXPECT_FAIL(buf, size, IG_ERR_FORMAT, (int64_t)(v - 4), "general.alignment has type i32");
    free(buf);
}

static void test_vocab_only_file_without_final_padding_opens(void)
{
    raw r;
    raw_header(&r, 3, 0, 1);
    raw_str(&r, "tokenizer.ggml.tokens");
    raw_u32(&r, IG_GGUF_ARRAY);
    raw_u32(&r, IG_GGUF_STRING);
    raw_u64(&r, 2);
    raw_str(&r, "<s>");
    raw_str(&r, "x"); /* ends at 84: not a multiple of 32 */
    ig_err err = {0};
    ig_gguf *g = ig_gguf_open_buffer(r.b, r.n, &err);
    IG_CHECK(g != NULL && r.n % 32 != 0, "%s", err.msg);
    ig_gguf_free(g);
}

static void test_every_single_byte_corruption_fails_cleanly_or_opens(void)
{
    size_t size;
    uint8_t *buf = fixture(&size);
    const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    int opened = 0, failed = 0, bad = 0;
    for (size_t i = 0; i < size; i++) {
        for (size_t k = 0; k < sizeof values; k++) {
            uint8_t *copy = malloc(size);
            memcpy(copy, buf, size);
            if (copy[i] == values[k]) {
                free(copy);
                continue;
            }
            copy[i] = values[k];
            ig_err err = {0};
            ig_gguf *g = ig_gguf_open_buffer(copy, size, &err);
            if (g) {
                opened++;
                exercise_getters(g, size, copy);
                ig_gguf_free(g);
            } else {
                failed++;
                int64_t off = msg_offset(err.msg);
                bool ok = (err.code == IG_ERR_FORMAT || err.code == IG_ERR_UNSUPPORTED) && off >= 0 &&
                          (size_t)off <= size;
                if (!ok && bad++ < 5)
                    IG_CHECK(false, "byte %zu = 0x%02x: %s %s", i, values[k], ig_code_name(err.code), err.msg);
            }
            free(copy);
        }
    }
    IG_CHECK(bad == 0 && failed > 0 && opened > 0, "%d bad, %d failed, %d opened", bad, failed, opened);
    free(buf);
}

/* ---- real files ------------------------------------------------------------ */

static ig_gguf *open_model(const char *file, ig_err *err)
{
    char path[512];
    path_join(path, sizeof path, env_or("IG_MODELS", "models"), file);
    return ig_gguf_open(path, err);
}

static void check_model(const char *file, uint32_t n_embd, uint32_t n_layer, int64_t n_tensors)
{
    ig_err err = {0};
    ig_gguf *g = open_model(file, &err);
    IG_CHECK(g != NULL, "%s: %s", file, err.msg);
    if (!g)
        return;
    uint32_t u;
    ig_str s;
    float f;
    ig_gguf_vtype et;
    uint64_t n;
    IG_CHECK(ig_gguf_get_str(g, "general.architecture", &s) && s.len == 5 && !memcmp(s.ptr, "llama", 5), "arch");
    IG_CHECK(ig_gguf_get_u32(g, "llama.embedding_length", &u) && u == n_embd, "%s n_embd %u", file, u);
    IG_CHECK(ig_gguf_get_u32(g, "llama.block_count", &u) && u == n_layer, "%s n_layer %u", file, u);
    IG_CHECK(ig_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f) && f == 1e-5f, "eps");
    IG_CHECK(ig_gguf_get_arr_info(g, "tokenizer.ggml.tokens", &et, &n) && et == IG_GGUF_STRING && n == 1024,
             "%s vocab", file);
    IG_CHECK(ig_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 1, &s) && s.len == 3 && !memcmp(s.ptr, "<s>", 3),
             "token 1 is <s>");
    IG_CHECK(ig_gguf_n_tensors(g) == n_tensors, "%s tensors %" PRId64, file, ig_gguf_n_tensors(g));
    const ig_tensor *t = ig_gguf_tensor_find(g, "token_embd.weight");
    IG_CHECK(t && t->type == IG_TYPE_F32 && t->ne[0] == n_embd && t->ne[1] == 1024 && t->n_dims == 2,
             "token_embd shape");
    uint64_t total = 0;
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++)
        total += ig_gguf_tensor_at(g, i)->size;
    IG_CHECK(total <= ig_gguf_file_size(g) && total > ig_gguf_file_size(g) / 2, "tensor bytes %" PRIu64, total);
    ig_gguf_free(g);
}

static void test_bundled_models_have_known_keys_and_tensors(void)
{
    check_model("edge.gguf", 96, 3, 29);
    check_model("cloud.gguf", 256, 6, 57);
}

static void test_tokenizer_vocab_files_open_with_known_sizes(void)
{
    struct { const char *file, *model; uint64_t n_tokens, n_merges; } v[] = {
        {"vocab-llama2-spm.gguf", "llama", 32000, 0},
        {"vocab-gpt2.gguf", "gpt2", 50257, 50000},
        {"vocab-llama3.gguf", "gpt2", 128256, 280147},
    };
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        path_join(path, sizeof path, env_or("IG_TEST_DATA", "tests/data"), "tokenizers");
        size_t l = strlen(path);
        snprintf(path + l, sizeof path - l, "/%s", v[i].file);
        ig_err err = {0};
        ig_gguf *g = ig_gguf_open(path, &err);
        IG_CHECK(g != NULL, "%s: %s", v[i].file, err.msg);
        if (!g)
            continue;
        ig_str s;
        uint64_t n = 0;
        ig_gguf_vtype et;
        IG_CHECK(ig_gguf_get_str(g, "tokenizer.ggml.model", &s) && s.len == strlen(v[i].model) &&
                     !memcmp(s.ptr, v[i].model, s.len), "%s model", v[i].file);
        IG_CHECK(ig_gguf_get_arr_info(g, "tokenizer.ggml.tokens", &et, &n) && n == v[i].n_tokens,
                 "%s tokens %" PRIu64, v[i].file, n);
        n = 0;
        if (v[i].n_merges)
            IG_CHECK(ig_gguf_get_arr_info(g, "tokenizer.ggml.merges", &et, &n) && n == v[i].n_merges,
                     "%s merges %" PRIu64, v[i].file, n);
        IG_CHECK(ig_gguf_n_tensors(g) == 0, "vocab only");
        ig_gguf_free(g);
    }
}

static void test_llama3_vocab_strings_are_indexed_for_constant_time_access(void)
{
    char path[512];
    path_join(path, sizeof path, env_or("IG_TEST_DATA", "tests/data"), "tokenizers/vocab-llama3.gguf");
    ig_err err = {0};
    ig_gguf *g = ig_gguf_open(path, &err);
    IG_CHECK(g != NULL, "%s", err.msg);
    if (!g)
        return;
    const char *key = "tokenizer.ggml.tokens";
    ig_str s, prev = {NULL, 0};
    /* Every element sits right after the previous one: the index is exact. */
    bool contiguous = true;
    for (uint64_t i = 0; i < 128256; i++) {
        if (!ig_gguf_get_arr_str(g, key, i, &s)) {
            contiguous = false;
            break;
        }
        if (prev.ptr && s.ptr != prev.ptr + prev.len + 8)
            contiguous = false;
        prev = s;
    }
    IG_CHECK(contiguous, "elements in file order");
    IG_CHECK(ig_gguf_get_arr_str(g, key, 128000, &s) && s.len == 17 && !memcmp(s.ptr, "<|begin_of_text|>", 17),
             "token 128000");
    IG_CHECK(ig_gguf_get_arr_str(g, key, 128255, &s) && s.len == 30 &&
                 !memcmp(s.ptr, "<|reserved_special_token_250|>", 30), "last token");
    /* A million reads of the last element: instant when indexed, minutes when each
     * read walks the array (this bound holds even under the sanitizers). */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t sum = 0;
    for (int i = 0; i < 1000000; i++) {
        ig_gguf_get_arr_str(g, key, 128255 - (uint64_t)(i & 7), &s);
        sum += s.len;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    IG_CHECK(sum > 0 && secs < 5.0, "1e6 lookups took %.2f s", secs);
    ig_gguf_free(g);
}

static void test_open_missing_file_or_directory_fails_with_io_error(void)
{
    ig_err err = {0};
    IG_CHECK(ig_gguf_open("no/such/file.gguf", &err) == NULL && err.code == IG_ERR_IO &&
                 strstr(err.msg, "no/such/file.gguf"), "%s", err.msg);
    IG_CHECK(ig_gguf_open("tests", &err) == NULL && err.code == IG_ERR_IO &&
                 strstr(err.msg, "not a regular file"), "%s", err.msg);
}

/* ---- seeds ----------------------------------------------------------------- */

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        perror(path);
        if (f)
            fclose(f);
        return 1;
    }
    return fclose(f) != 0;
}

/* The fuzzer's seeds: small, valid files covering each value type and tensor type. */
static int write_seeds(const char *dir)
{
    mkdir(dir, 0755);
    size_t size;
    uint8_t *buf = fixture(&size);
    int rc = write_file(dir, "fixture.gguf", buf, size);
    free(buf);
    raw r;
    raw_header(&r, 2, 0, 2);
    raw_str(&r, "a");
    raw_u32(&r, IG_GGUF_F64);
    raw_u64(&r, 0x3ff0000000000000ull);
    raw_str(&r, "b");
    raw_u32(&r, IG_GGUF_ARRAY);
    raw_u32(&r, IG_GGUF_I16);
    raw_u64(&r, 2);
    raw_u32(&r, 0xffff0001u);
    rc |= write_file(dir, "v2-f64-i16.gguf", r.b, r.n);
    ig_gguf_writer *w = ig_gguf_writer_new();
    ig_gguf_writer_set_u32(w, "general.alignment", 64);
    const char *tok[] = {"<s>", "</s>", "▁a"};
    ig_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, 3);
    ig_err err = {0};
    uint16_t h[64] = {0};
    int64_t ne[4] = {2, 2, 2, 2};
    ig_gguf_writer_add_tensor(w, "x", 4, ne, IG_TYPE_BF16, h, 32, &err);
    uint8_t q[2 * 18] = {0};
    int64_t ne_q[1] = {64};
    ig_gguf_writer_add_tensor(w, "q", 1, ne_q, IG_TYPE_Q4_0, q, sizeof q, &err);
    void *out;
    if (ig_gguf_writer_to_buffer(w, &out, &size, &err) == IG_OK) {
        rc |= write_file(dir, "align64-bf16-q4_0.gguf", out, size);
        free(out);
    } else {
        fprintf(stderr, "%s\n", err.msg);
        rc = 1;
    }
    ig_gguf_writer_free(w);
    return rc;
}

/* Corrupted copies of the edge model for the command-line tests (tests/gguf.cmake):
 * each name says the defect; the test expects `model info` to refuse it by name. */
static int write_corrupt(const char *dir)
{
    mkdir(dir, 0755);
    char path[512];
    path_join(path, sizeof path, env_or("IG_MODELS", "models"), "edge.gguf");
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    static uint8_t buf[4u << 20];
    size_t size = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int rc = 0;
    uint8_t *c = malloc(size);
    /* truncated inside the tensor data */
    rc |= write_file(dir, "truncated.gguf", buf, size / 2);
    memcpy(c, buf, size);
    memcpy(c, "GGML", 4);
    rc |= write_file(dir, "bad-magic.gguf", c, size);
    memcpy(c, buf, size);
    put64(c + 8, UINT64_MAX);
    rc |= write_file(dir, "absurd-tensor-count.gguf", c, size);
    memcpy(c, buf, size);
    tinfo t = find_tensor(c, size, "blk.0.attn_q.weight");
    put32(c + t.type, 16);
    rc |= write_file(dir, "iq2_xxs-tensor.gguf", c, size);
    memcpy(c, buf, size);
    size_t k = find_str(c, size, "general.name");
    c[k + 8 + 3] = 0xff;
    rc |= write_file(dir, "non-utf8-key.gguf", c, size);
    free(c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seeds"))
        return write_seeds(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "--write-corrupt"))
        return write_corrupt(argv[2]);
    struct { const char *name; void (*fn)(void); } cases[] = {
#define CASE(f) {#f, f}
        CASE(test_round_trip_preserves_every_key_array_and_tensor),
        CASE(test_written_file_opens_from_disk_with_same_content),
        CASE(test_setting_a_key_twice_replaces_its_value_and_type),
        CASE(test_copy_kv_copies_every_key_of_real_files_verbatim),
        CASE(test_copy_kv_keeps_u64_and_f64_bits_exactly),
        CASE(test_writer_rejects_wrong_size_duplicate_and_unsupported_tensors),
        CASE(test_custom_alignment_is_written_and_honoured),
        CASE(test_wrong_magic_fails_at_offset_0),
        CASE(test_version_1_is_refused_as_unsupported),
        CASE(test_version_2_file_is_read),
        CASE(test_absurd_tensor_and_key_counts_fail_naming_the_file_size),
        CASE(test_truncated_file_fails_with_offset_at_every_length),
        CASE(test_string_length_past_end_fails_with_bytes_left),
        CASE(test_value_type_out_of_range_fails),
        CASE(test_absurd_array_length_fails),
        CASE(test_array_element_type_errors_and_nested_arrays_fail),
        CASE(test_duplicate_keys_fail_naming_both_offsets),
        CASE(test_non_utf8_key_string_element_and_name_fail),
        CASE(test_utf8_validation_rejects_overlongs_surrogates_and_out_of_range),
        CASE(test_utf8_validator_agrees_with_reference_on_all_short_sequences),
        CASE(test_fuzz_seed_files_open),
        CASE(test_bool_other_than_0_or_1_fails),
        CASE(test_empty_key_and_key_with_nul_fail),
        CASE(test_getters_convert_numbers_only_when_in_range),
        CASE(test_tensor_dimension_count_outside_1_to_4_fails),
        CASE(test_nonpositive_or_overflowing_shape_fails),
        CASE(test_ne0_not_a_multiple_of_block_size_fails),
        CASE(test_unsupported_tensor_type_is_refused_by_name),
        CASE(test_unaligned_or_out_of_file_tensor_offset_fails),
        CASE(test_overlapping_tensors_fail),
        CASE(test_duplicate_tensor_names_fail),
        CASE(test_bad_alignment_value_or_type_fails),
        CASE(test_vocab_only_file_without_final_padding_opens),
        CASE(test_every_single_byte_corruption_fails_cleanly_or_opens),
        CASE(test_bundled_models_have_known_keys_and_tensors),
        CASE(test_tokenizer_vocab_files_open_with_known_sizes),
        CASE(test_llama3_vocab_strings_are_indexed_for_constant_time_access),
        CASE(test_open_missing_file_or_directory_fails_with_io_error),
#undef CASE
    };
    size_t n_cases = sizeof cases / sizeof cases[0];
    int matched = 0;
    for (size_t i = 0; i < n_cases; i++) {
        bool run = argc < 2;
        for (int a = 1; a < argc; a++)
            run |= strcmp(argv[a], cases[i].name) == 0;
        if (!run)
            continue;
        matched++;
        ig_check_test_failures = 0;
        int skipped_before = ig_check_skipped;
        cases[i].fn();
        printf("%s %s\n", ig_check_test_failures ? "FAIL" : ig_check_skipped > skipped_before ? "SKIP" : "PASS",
               cases[i].name);
        fflush(stdout);
        if (ig_check_test_failures)
            ig_check_failures++;
    }
    if (matched == 0) {
        fprintf(stderr, "no such test case\n");
        return 2;
    }
    return ig_check_exit();
}
