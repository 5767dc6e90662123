/*
 * gguf_internal.h — engine-private access to a GGUF reader's raw bytes, shared by the
 * reader (gguf.c) and the writer (gguf_write.c) so that copy_kv can copy a value
 * verbatim (u64 above INT64_MAX, f64, nested layouts) without going through getters.
 */
#ifndef IG_ENGINE_GGUF_INTERNAL_H
#define IG_ENGINE_GGUF_INTERNAL_H

#include "engine.h"

/* Limits of what the reader accepts (and the writer produces). */
#define IG_GGUF_MAX_KV 65536            /* metadata keys per file */
#define IG_GGUF_MAX_TENSORS 1048576     /* tensors per file */
#define IG_GGUF_MAX_KEY_LEN 4096        /* bytes of a key */
#define IG_GGUF_MAX_NAME_LEN 255        /* bytes of a tensor name */
#define IG_GGUF_MAX_ALIGNMENT (1u << 24)
#define IG_GGUF_DEFAULT_ALIGNMENT 32u

/* Bytes of one value of a fixed-size GGUF type; 0 for string, array and invalid. */
size_t ig_gguf_vtype_size(uint32_t t);

/* The encoding of value i exactly as stored after its type field (for an array: the
 * element type, the count and the elements). False when i is out of range. */
bool ig_gguf_kv_raw(const ig_gguf *g, int64_t i, ig_gguf_vtype *type, const void **bytes,
                    size_t *len);

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool ig_utf8_valid(const char *s, size_t n);

#endif /* IG_ENGINE_GGUF_INTERNAL_H */
