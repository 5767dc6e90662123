/*
 * fuzz_gguf.c — libFuzzer target for the GGUF reader: any input either fails with a
 * format/unsupported error that names an offset, or opens into a reader whose every
 * getter works and whose strings and tensors all lie inside the input.
 */
#include "engine.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void touch(const void *p, size_t n, const uint8_t *base, size_t size)
{
    const uint8_t *b = p;
    REQUIRE(n == 0 || (b >= base && n <= size && (size_t)(b - base) <= size - n));
    /* Reading the first and last byte lets ASan check the bounds. */
    if (n > 0) {
        volatile uint8_t x = b[0];
        x = b[n - 1];
        (void)x;
    }
}

/* Whatever the reader accepts, the writer reproduces: copy every key and tensor,
 * write, reopen, and find the same keys, values and tensor bytes. */
static void rewrite_and_compare(const ig_gguf *g)
{
    ig_gguf_writer *w = ig_gguf_writer_new();
    REQUIRE(w);
    ig_err err = {0};
    for (int64_t i = 0; i < ig_gguf_n_kv(g); i++)
        ig_gguf_writer_copy_kv(w, g, i);
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++) {
        const ig_tensor *t = ig_gguf_tensor_at(g, i);
        REQUIRE(ig_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, t->data, t->size,
                                          &err) == IG_OK);
    }
    void *buf = NULL;
    size_t size = 0;
    REQUIRE(ig_gguf_writer_to_buffer(w, &buf, &size, &err) == IG_OK);
    ig_gguf_writer_free(w);
    ig_gguf *h = ig_gguf_open_buffer(buf, size, &err);
    REQUIRE(h);
    REQUIRE(ig_gguf_n_kv(h) == ig_gguf_n_kv(g) && ig_gguf_n_tensors(h) == ig_gguf_n_tensors(g));
    REQUIRE(ig_gguf_alignment(h) == ig_gguf_alignment(g));
    for (int64_t i = 0; i < ig_gguf_n_kv(g); i++) {
        ig_str a = ig_gguf_kv_key(g, i), b = ig_gguf_kv_key(h, i);
        REQUIRE(a.len == b.len && memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
        REQUIRE(ig_gguf_kv_type(g, i) == ig_gguf_kv_type(h, i));
    }
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++) {
        const ig_tensor *t = ig_gguf_tensor_at(g, i), *u = ig_gguf_tensor_at(h, i);
        REQUIRE(strcmp(t->name, u->name) == 0 && t->type == u->type && t->size == u->size);
        REQUIRE(memcmp(t->ne, u->ne, sizeof t->ne) == 0 && memcmp(t->data, u->data, t->size) == 0);
    }
    ig_gguf_free(h);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ig_err err = {0};
    ig_gguf *g = ig_gguf_open_buffer(data, size, &err);
    if (!g) {
        REQUIRE(err.code == IG_ERR_FORMAT || err.code == IG_ERR_UNSUPPORTED || err.code == IG_ERR_NOMEM);
        REQUIRE(strstr(err.msg, "gguf: offset ") != NULL);
        return 0;
    }
    REQUIRE(ig_gguf_file_size(g) == size);
    uint32_t a = ig_gguf_alignment(g);
    REQUIRE(a != 0 && (a & (a - 1)) == 0);
    REQUIRE(ig_gguf_version(g) == 2 || ig_gguf_version(g) == 3);
    char key[4097];
    for (int64_t i = 0; i < ig_gguf_n_kv(g); i++) {
        ig_str k = ig_gguf_kv_key(g, i);
        REQUIRE(k.len > 0 && k.len < sizeof key);
        touch(k.ptr, (size_t)k.len, data, size);
        memcpy(key, k.ptr, (size_t)k.len);
        key[k.len] = '\0';
        REQUIRE(ig_gguf_find_key(g, key) == i);
        (void)ig_gguf_kv_type(g, i);
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
            touch(s.ptr, (size_t)s.len, data, size);
        if (ig_gguf_get_arr_info(g, key, &et, &n)) {
            for (uint64_t j = 0; j < n; j++) {
                if (et == IG_GGUF_STRING) {
                    REQUIRE(ig_gguf_get_arr_str(g, key, j, &s));
                    touch(s.ptr, (size_t)s.len, data, size);
                } else {
                    (void)ig_gguf_get_arr_f32(g, key, j, &f);
                    (void)ig_gguf_get_arr_i64(g, key, j, &v);
                }
            }
            REQUIRE(!ig_gguf_get_arr_str(g, key, n, &s));
        }
    }
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++) {
        const ig_tensor *t = ig_gguf_tensor_at(g, i);
        REQUIRE(t && ig_gguf_tensor_find(g, t->name) == t);
        REQUIRE(t->n_dims >= 1 && t->n_dims <= 4 && ig_type_is_supported(t->type));
        REQUIRE(t->offset % a == 0);
        size_t rows = 1;
        for (int d = 1; d < 4; d++)
            rows *= (size_t)t->ne[d];
        REQUIRE(t->size == ig_type_row_bytes(t->type, t->ne[0]) * rows);
        touch(t->data, t->size, data, size);
    }
    REQUIRE(ig_gguf_tensor_at(g, ig_gguf_n_tensors(g)) == NULL);
    REQUIRE(ig_gguf_find_key(g, "") == -1);
    rewrite_and_compare(g);
    ig_gguf_free(g);
    return 0;
}
