/*
 * synth.c — random-weight models of any shape (`idlegrid model synth`): test fixtures
 * and benchmark models. Deterministic in the seed: the same parameters always write
 * the same bytes.
 *
 * The weights are scaled so activations stay O(1) through the layers (each matrix's
 * entries, the embeddings' too, have standard deviation 1/sqrt(fan-in), which keeps
 * the logits O(1) and the sampled distributions broad); norms are near 1. The vocabulary
 * is either copied from another GGUF (tokenizer_from) or a synthetic SentencePiece
 * vocabulary: control tokens, the 256 byte tokens, then short pieces.
 */
#include "engine.h"
#include "kernels.h"
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNTH_MIN_VOCAB 260 /* <unk> <s> </s>, 256 bytes, one more piece */
#define SYNTH_MAX_VOCAB (1 << 20)
#define SYNTH_MAX_DIM (1 << 16)

ig_synth_params ig_synth_default_params(void)
{
    ig_synth_params p;
    memset(&p, 0, sizeof p);
    p.arch = "llama";
    p.n_vocab = 512;
    p.n_embd = 64;
    p.n_layer = 2;
    p.n_head = 4;
    p.n_head_kv = 2;
    p.n_ff = 128;
    p.n_ctx = 256;
    p.tied_output = false;
    p.type = IG_TYPE_F32;
    p.rope_freq_base = 10000.0f;
    p.seed = 1;
    p.tokenizer_from = NULL;
    return p;
}

/* ---- deterministic random numbers -------------------------------------------- */

typedef struct {
    uint64_t state;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t x = (r->state += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static double rng_uniform(rng *r) /* (0, 1) */
{
    return ((double)(rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static float rng_normal(rng *r)
{
    double u = rng_uniform(r), v = rng_uniform(r);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* ---- encoding rows of floats as a weight type ---------------------------------- */

ig_code ig_encode_rows(ig_type type, const float *src, int64_t rows, int64_t cols, void **out,
                       size_t *size, ig_err *err)
{
    int64_t bs = ig_type_block_size(type);
    if (bs <= 0 || !ig_type_is_supported(type))
        return ig_err_set(err, IG_ERR_UNSUPPORTED, "weight type %s is not supported", ig_type_name(type));
    if (cols % bs != 0)
        return ig_err_set(err, IG_ERR_INVALID, "rows of %lld are not a multiple of the %s block of %lld",
                          (long long)cols, ig_type_name(type), (long long)bs);
    size_t row_bytes = ig_type_row_bytes(type, cols);
    *size = row_bytes * (size_t)rows;
    *out = malloc(*size ? *size : 1);
    if (!*out)
        return ig_err_set(err, IG_ERR_NOMEM, "out of memory for %zu bytes of %s", *size, ig_type_name(type));
    for (int64_t r = 0; r < rows; r++)
        ig_quantize_row(type, src + r * cols, (char *)*out + (size_t)r * row_bytes, cols);
    return IG_OK;
}

uint32_t ig_file_type_of(ig_type t)
{
    switch (t) {
    case IG_TYPE_F32: return 0;
    case IG_TYPE_F16: return 1;
    case IG_TYPE_Q4_0: return 2;
    case IG_TYPE_Q8_0: return 7;
    case IG_TYPE_Q4_K: return 14; /* Q4_K_S: all Q4_K */
    case IG_TYPE_Q6_K: return 18;
    case IG_TYPE_BF16: return 32;
    default: return 0;
    }
}

/* ---- synthetic vocabulary ------------------------------------------------------ */

static ig_code synth_vocab(ig_gguf_writer *w, int32_t n_vocab, ig_err *err)
{
    char **pieces = calloc((size_t)n_vocab, sizeof *pieces);
    float *scores = calloc((size_t)n_vocab, sizeof *scores);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    ig_code rc = IG_OK;
    if (!pieces || !scores || !types) {
        rc = ig_err_set(err, IG_ERR_NOMEM, "out of memory for a vocabulary of %d", n_vocab);
        goto done;
    }
    int32_t n = 0;
    char buf[32];
#define ADD(str, type_)                                             \
    do {                                                            \
        if (n < n_vocab) {                                          \
            if (!(pieces[n] = strdup(str))) {                       \
                rc = ig_err_set(err, IG_ERR_NOMEM, "out of memory"); \
                goto done;                                          \
            }                                                       \
            types[n] = (type_);                                     \
            scores[n] = -(float)n;                                  \
            n++;                                                    \
        }                                                           \
    } while (0)
    ADD("<unk>", 2);
    ADD("<s>", 3);
    ADD("</s>", 3);
    for (int b = 0; b < 256; b++) {
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        ADD(buf, 6);
    }
    ADD("\xe2\x96\x81", 1); /* "▁", the SentencePiece space */
    for (int ch = 0x21; ch < 0x7f; ch++) {
        buf[0] = (char)ch;
        buf[1] = '\0';
        ADD(buf, 1);
    }
    /* then "▁a".."▁z", "aa".."zz", "▁aa".."▁zz", "aaa".. until the vocabulary is full */
    for (int len = 1; n < n_vocab && len <= 6; len++) {
        for (int space = 1; space >= 0 && n < n_vocab; space--) {
            if (len == 1 && !space)
                continue; /* single letters are already in */
            long combos = 1;
            for (int i = 0; i < len; i++)
                combos *= 26;
            for (long c = 0; c < combos && n < n_vocab; c++) {
                int o = 0;
                if (space) {
                    memcpy(buf, "\xe2\x96\x81", 3);
                    o = 3;
                }
                long v = c;
                for (int i = len - 1; i >= 0; i--) {
                    buf[o + i] = (char)('a' + v % 26);
                    v /= 26;
                }
                buf[o + len] = '\0';
                ADD(buf, 1);
            }
        }
    }
#undef ADD
    if (n < n_vocab) {
        rc = ig_err_set(err, IG_ERR_INVALID, "cannot build a synthetic vocabulary of %d", n_vocab);
        goto done;
    }
    ig_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    ig_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)pieces, (size_t)n_vocab);
    ig_gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, (size_t)n_vocab);
    ig_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, (size_t)n_vocab);
    ig_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    ig_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    ig_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    ig_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    ig_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
done:
    if (pieces)
        for (int32_t i = 0; i < n_vocab; i++)
            free(pieces[i]);
    free(pieces);
    free(scores);
    free(types);
    return rc;
}

/* Copies tokenizer.* from another GGUF; returns its vocabulary size or -1. */
static int32_t copy_vocab(ig_gguf_writer *w, const char *path, ig_err *err)
{
    ig_gguf *g = ig_gguf_open(path, err);
    if (!g) {
        ig_err_wrap(err, "tokenizer from %s", path);
        return -1;
    }
    ig_gguf_vtype et;
    uint64_t n = 0;
    if (!ig_gguf_get_arr_info(g, "tokenizer.ggml.tokens", &et, &n) || et != IG_GGUF_STRING || n < 1 ||
        n > SYNTH_MAX_VOCAB) {
        ig_err_set(err, IG_ERR_FORMAT, "%s: no usable tokenizer.ggml.tokens array", path);
        ig_gguf_free(g);
        return -1;
    }
    for (int64_t i = 0; i < ig_gguf_n_kv(g); i++) {
        ig_str k = ig_gguf_kv_key(g, i);
        if (k.len > 10 && memcmp(k.ptr, "tokenizer.", 10) == 0)
            ig_gguf_writer_copy_kv(w, g, i);
    }
    ig_gguf_free(g);
    return (int32_t)n;
}

/* ---- tensors --------------------------------------------------------------------- */

typedef enum { INIT_MATRIX, INIT_NORM, INIT_BIAS, INIT_EMBED } init_kind;

static ig_code add_random(ig_gguf_writer *w, rng *r, const char *name, int64_t n0, int64_t n1,
                          ig_type type, init_kind kind, float *buf, ig_err *err)
{
    const int64_t n = n0 * (n1 ? n1 : 1);
    const float std = kind == INIT_MATRIX || kind == INIT_EMBED ? 1.0f / sqrtf((float)n0) : 0.1f;
    for (int64_t i = 0; i < n; i++)
        buf[i] = (kind == INIT_NORM ? 1.0f : 0.0f) + std * rng_normal(r);
    const int64_t ne[2] = {n0, n1 ? n1 : 1};
    if (!n1) /* 1-D tensors (norms, biases) stay F32 */
        return ig_gguf_writer_add_tensor(w, name, 1, ne, IG_TYPE_F32, buf, (size_t)n * sizeof(float), err);
    void *data;
    size_t size;
    ig_code rc = ig_encode_rows(type, buf, n1, n0, &data, &size, err);
    if (rc)
        return ig_err_wrap(err, "tensor '%s'", name);
    rc = ig_gguf_writer_add_tensor(w, name, 2, ne, type, data, size, err);
    free(data);
    return rc;
}

static ig_code check_params(const ig_synth_params *p, ig_err *err)
{
    if (!p->arch || (strcmp(p->arch, "llama") != 0 && strcmp(p->arch, "qwen2") != 0))
        return ig_err_set(err, IG_ERR_UNSUPPORTED, "architecture '%s' is not supported (llama, qwen2)",
                          p->arch ? p->arch : "(null)");
    if (p->n_embd < 2 || p->n_embd > SYNTH_MAX_DIM || p->n_ff < 1 || p->n_ff > 4 * SYNTH_MAX_DIM ||
        p->n_layer < 1 || p->n_layer > IG_MAX_LAYERS || p->n_head < 1 || p->n_head_kv < 1 ||
        p->n_ctx < 1 || p->n_ctx > (1 << 20))
        return ig_err_set(err, IG_ERR_INVALID, "a shape parameter is out of range (dim, ffn, layers, heads, ctx)");
    if (!p->tokenizer_from && (p->n_vocab < SYNTH_MIN_VOCAB || p->n_vocab > SYNTH_MAX_VOCAB))
        return ig_err_set(err, IG_ERR_INVALID, "the synthetic vocabulary needs %d to %d tokens, not %d",
                          SYNTH_MIN_VOCAB, SYNTH_MAX_VOCAB, p->n_vocab);
    if (p->n_embd % p->n_head != 0 || (p->n_embd / p->n_head) % 2 != 0)
        return ig_err_set(err, IG_ERR_INVALID, "dim %d must be an even multiple of heads %d", p->n_embd, p->n_head);
    if (p->n_head % p->n_head_kv != 0)
        return ig_err_set(err, IG_ERR_INVALID, "heads %d must be a multiple of kv-heads %d", p->n_head, p->n_head_kv);
    if (!ig_type_is_supported(p->type) || !ig_kernels_scalar()->vec_dot[p->type])
        return ig_err_set(err, IG_ERR_UNSUPPORTED, "weight type %s is not supported", ig_type_name(p->type));
    int64_t bs = ig_type_block_size(p->type);
    if (p->n_embd % bs != 0 || p->n_ff % bs != 0)
        return ig_err_set(err, IG_ERR_INVALID, "dim %d and ffn %d must be multiples of the %s block of %lld",
                          p->n_embd, p->n_ff, ig_type_name(p->type), (long long)bs);
    if (!(p->rope_freq_base > 0.0f))
        return ig_err_set(err, IG_ERR_INVALID, "the RoPE base must be positive");
    return IG_OK;
}

ig_code ig_model_synth(const char *path, const ig_synth_params *p, ig_err *err)
{
    ig_code rc = check_params(p, err);
    if (rc)
        return rc;
    ig_gguf_writer *w = ig_gguf_writer_new();
    if (!w)
        return ig_err_set(err, IG_ERR_NOMEM, "out of memory");
    float *buf = NULL;
    int32_t n_vocab = p->n_vocab;
    if (p->tokenizer_from) {
        if ((n_vocab = copy_vocab(w, p->tokenizer_from, err)) < 0) {
            rc = err ? err->code : IG_ERR_FORMAT;
            goto done;
        }
    } else if ((rc = synth_vocab(w, n_vocab, err))) {
        goto done;
    }

    const char *a = p->arch;
    char key[128], name[128];
#define ARCH_U32(suffix, v) (snprintf(key, sizeof key, "%s." suffix, a), ig_gguf_writer_set_u32(w, key, (uint32_t)(v)))
#define ARCH_F32(suffix, v) (snprintf(key, sizeof key, "%s." suffix, a), ig_gguf_writer_set_f32(w, key, (v)))
    ig_gguf_writer_set_str(w, "general.architecture", a);
    snprintf(name, sizeof name, "synth-%s-%dx%d-%s", a, p->n_embd, p->n_layer, ig_type_name(p->type));
    ig_gguf_writer_set_str(w, "general.name", name);
    ig_gguf_writer_set_u32(w, "general.file_type", ig_file_type_of(p->type));
    ARCH_U32("context_length", p->n_ctx);
    ARCH_U32("embedding_length", p->n_embd);
    ARCH_U32("block_count", p->n_layer);
    ARCH_U32("feed_forward_length", p->n_ff);
    ARCH_U32("attention.head_count", p->n_head);
    ARCH_U32("attention.head_count_kv", p->n_head_kv);
    ARCH_U32("rope.dimension_count", p->n_embd / p->n_head);
    ARCH_U32("vocab_size", n_vocab);
    ARCH_F32("rope.freq_base", p->rope_freq_base);
    ARCH_F32("attention.layer_norm_rms_epsilon", strcmp(a, "qwen2") == 0 ? 1e-6f : 1e-5f);
#undef ARCH_U32
#undef ARCH_F32

    const int64_t E = p->n_embd, F = p->n_ff, HD = p->n_embd / p->n_head;
    const int64_t QD = p->n_head * HD, KVD = p->n_head_kv * HD;
    int64_t biggest = (int64_t)n_vocab * E;
    if (E * F > biggest)
        biggest = E * F;
    buf = malloc(sizeof(float) * (size_t)biggest);
    if (!buf) {
        rc = ig_err_set(err, IG_ERR_NOMEM, "out of memory for a %lld-element tensor", (long long)biggest);
        goto done;
    }
    rng r = {p->seed};
    bool qwen = strcmp(a, "qwen2") == 0;
    if ((rc = add_random(w, &r, "token_embd.weight", E, n_vocab, p->type, INIT_EMBED, buf, err)))
        goto done;
    for (int il = 0; il < p->n_layer && !rc; il++) {
        const struct {
            const char *what;
            int64_t n0, n1;
            init_kind kind;
            bool only_qwen;
        } parts[] = {
            {"attn_norm.weight", E, 0, INIT_NORM, false},
            {"attn_q.weight", E, QD, INIT_MATRIX, false},
            {"attn_q.bias", QD, 0, INIT_BIAS, true},
            {"attn_k.weight", E, KVD, INIT_MATRIX, false},
            {"attn_k.bias", KVD, 0, INIT_BIAS, true},
            {"attn_v.weight", E, KVD, INIT_MATRIX, false},
            {"attn_v.bias", KVD, 0, INIT_BIAS, true},
            {"attn_output.weight", QD, E, INIT_MATRIX, false},
            {"ffn_norm.weight", E, 0, INIT_NORM, false},
            {"ffn_gate.weight", E, F, INIT_MATRIX, false},
            {"ffn_up.weight", E, F, INIT_MATRIX, false},
            {"ffn_down.weight", F, E, INIT_MATRIX, false},
        };
        for (size_t i = 0; i < sizeof parts / sizeof parts[0] && !rc; i++) {
            if (parts[i].only_qwen && !qwen)
                continue;
            snprintf(name, sizeof name, "blk.%d.%s", il, parts[i].what);
            rc = add_random(w, &r, name, parts[i].n0, parts[i].n1, p->type, parts[i].kind, buf, err);
        }
    }
    if (rc || (rc = add_random(w, &r, "output_norm.weight", E, 0, p->type, INIT_NORM, buf, err)))
        goto done;
    if (!p->tied_output &&
        (rc = add_random(w, &r, "output.weight", E, n_vocab, p->type, INIT_MATRIX, buf, err)))
        goto done;
    rc = ig_gguf_writer_write(w, path, err);
done:
    free(buf);
    ig_gguf_writer_free(w);
    return rc;
}
