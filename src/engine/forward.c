/*
 * forward.c — one sequence's context (KV cache, scratch, thread pool) and the
 * transformer forward pass of the Llama family (llama, qwen2), batched over tokens.
 *
 * Read it top to bottom like llama2.c's run.c: every buffer is allocated once in
 * ig_ctx_new with its shape in a comment, and forward_batch() is the model, layer by
 * layer. Every weight matrix goes through ig_matmul (kernels.c picks scalar or SIMD);
 * the small element-wise steps are plain loops here; attention is split across the
 * pool in items of a few tokens x the query heads that share a KV head.
 *
 * Layout conventions: activations are row-major [n_tok][dim] floats; the KV cache is
 * [n_layer][n_ctx][n_head_kv * head_dim] in F32 or F16, so one position of one layer
 * is one contiguous row.
 */
#include "engine.h"
#include "kernels.h"
#include "model_internal.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IG_DEFAULT_BATCH 256
#define IG_MAX_CTX (1 << 20)
#define IG_MAX_THREADS 256
/* Attention work items: at most this many queries, and score rows of at most this many
 * floats per thread (1 MiB), whichever is fewer. */
#define IG_ATT_QUERIES 16
#define IG_ATT_SCORE_FLOATS (256 * 1024)

static int att_max_groups(int32_t n_ctx);
#define ATT_LANES 8

struct ig_ctx {
    const ig_model *m;
    const ig_kernels *k;
    ig_pool *pool;
    int32_t n_ctx;
    int32_t n_batch;
    int32_t n_threads;
    int32_t n_past;   /* positions held in the KV cache */
    int32_t n_last;   /* tokens of the last decode */
    bool last_all_logits;
    ig_type kv_type;
    size_t kv_row_bytes; /* one position of one layer: n_head_kv * head_dim elements */
    size_t kv_head_bytes;/* one head of that row: head_dim elements */

    /* KV cache */
    void *k_cache;       /* [n_layer][n_ctx][n_head_kv * head_dim] of kv_type */
    void *v_cache;       /* [n_layer][n_ctx][n_head_kv * head_dim] of kv_type */

    /* scratch for one batch of up to n_batch tokens */
    float *x;            /* [n_batch][n_embd]  residual stream */
    float *xb;           /* [n_batch][n_embd]  normalised input of a sub-layer */
    float *xo;           /* [n_batch][n_embd]  output of a sub-layer, added to x */
    float *q;            /* [n_batch][n_head * head_dim] */
    float *kcur;         /* [n_batch][n_head_kv * head_dim] */
    float *vcur;         /* [n_batch][n_head_kv * head_dim] */
    float *att;          /* [n_batch][n_head * head_dim]  attention output, heads concatenated */
    float *hb;           /* [n_batch][n_ff]  gate, then silu(gate) * up */
    float *hb2;          /* [n_batch][n_ff]  up */
    float *scores;       /* [n_threads][att_max_groups(n_ctx)][n_ctx][8]  attention weights, 8 queries a row */
    float *att_q;        /* [n_threads][att_max_groups(n_ctx)][head_dim][8]  queries, transposed */
    float *att_o;        /* [n_threads][att_max_groups(n_ctx)][head_dim][8]  outputs, transposed */
    float *rowbuf;       /* [n_threads][rowbuf_rows][head_dim]  K rows (one) or V rows (F16 cache:
                          * positions 0..n_ctx-1 of one KV head) converted to F32 */
    size_t rowbuf_rows;
    double *inv_freq;    /* [n_rot / 2]  RoPE angle per position for each pair */
    float *rope_cos;     /* [n_batch][n_rot / 2]  cos of each token's angles, shared by the layers */
    float *rope_sin;     /* [n_batch][n_rot / 2] */
    void *mm_scratch;    /* ig_matmul's activation buffer, for the largest matrix */
    size_t mm_scratch_bytes;
    float *logits;       /* [n_logits_cap][n_vocab] */
    int32_t n_logits_cap;

    size_t memory_bytes;
};

ig_ctx_params ig_ctx_default_params(void)
{
    ig_ctx_params p = {0};
    p.n_ctx = 0;
    p.n_threads = 0;
    p.n_batch = IG_DEFAULT_BATCH;
    p.kv_type = IG_TYPE_F32;
    p.kernels = NULL;
    return p;
}

/* ---- allocation ------------------------------------------------------------ */

static void *ctx_alloc(ig_ctx *c, size_t n, size_t size, bool *ok)
{
    if (!*ok)
        return NULL;
    if (n == 0)
        n = 1;
    if (size && n > SIZE_MAX / size) {
        *ok = false;
        return NULL;
    }
    void *p = calloc(n, size);
    if (!p)
        *ok = false;
    else
        c->memory_bytes += n * size;
    return p;
}

static bool weight_types_supported(const ig_model *m, const ig_kernels *k, ig_err *err)
{
    const ig_tensor *mats[9];
    for (int il = 0; il < m->info.n_layer; il++) {
        const ig_layer *L = &m->layers[il];
        const ig_tensor *list[] = {L->wq, L->wk, L->wv, L->wo, L->ffn_gate, L->ffn_up, L->ffn_down};
        memcpy(mats, list, sizeof list);
        for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
            if (!k->vec_dot[mats[i]->type]) {
                ig_err_set(err, IG_ERR_UNSUPPORTED, "tensor '%s': the %s kernels cannot multiply %s weights",
                           mats[i]->name, k->isa, ig_type_name(mats[i]->type));
                return false;
            }
    }
    if (!k->vec_dot[m->output->type]) {
        ig_err_set(err, IG_ERR_UNSUPPORTED, "tensor '%s': the %s kernels cannot multiply %s weights",
                   m->output->name, k->isa, ig_type_name(m->output->type));
        return false;
    }
    if (m->tok_embd->type != IG_TYPE_F32 && !k->to_float[m->tok_embd->type]) {
        ig_err_set(err, IG_ERR_UNSUPPORTED, "tensor 'token_embd.weight': no %s row conversion for %s",
                   k->isa, ig_type_name(m->tok_embd->type));
        return false;
    }
    return true;
}

/* Scratch for the largest multiply: the fused ones (Q, K, V; gate, up) convert their
 * input once per distinct vec_dot_type among their weights. */
static size_t max_matmul_scratch(const ig_model *m, int64_t n_tok)
{
    size_t best = ig_matmul_scratch_bytes(m->output->type, m->info.n_embd, n_tok);
    for (int il = 0; il < m->info.n_layer; il++) {
        const ig_layer *L = &m->layers[il];
        const ig_type qkv[] = {L->wq->type, L->wk->type, L->wv->type};
        const ig_type ffn[] = {L->ffn_gate->type, L->ffn_up->type};
        const size_t b[] = {
            ig_matmul_n_scratch_bytes(3, qkv, L->wq->ne[0], n_tok),
            ig_matmul_scratch_bytes(L->wo->type, L->wo->ne[0], n_tok),
            ig_matmul_n_scratch_bytes(2, ffn, L->ffn_gate->ne[0], n_tok),
            ig_matmul_scratch_bytes(L->ffn_down->type, L->ffn_down->ne[0], n_tok),
        };
        for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
            if (b[i] > best)
                best = b[i];
    }
    return best;
}

ig_ctx *ig_ctx_new(const ig_model *m, const ig_ctx_params *params, ig_err *err)
{
    ig_ctx_params p = params ? *params : ig_ctx_default_params();
    const ig_model_info *in = &m->info;
    if (p.n_ctx <= 0)
        p.n_ctx = in->n_ctx_train;
    if (p.n_ctx > IG_MAX_CTX) {
        ig_err_set(err, IG_ERR_RANGE, "n_ctx %d is above the limit of %d", p.n_ctx, IG_MAX_CTX);
        return NULL;
    }
    if (p.n_batch <= 0)
        p.n_batch = IG_DEFAULT_BATCH;
    if (p.n_batch > p.n_ctx)
        p.n_batch = p.n_ctx;
    if (p.n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        p.n_threads = n > 0 ? (int32_t)n : 1;
    }
    if (p.n_threads > IG_MAX_THREADS)
        p.n_threads = IG_MAX_THREADS;
    if (p.kv_type != IG_TYPE_F32 && p.kv_type != IG_TYPE_F16) {
        ig_err_set(err, IG_ERR_INVALID, "the KV cache type must be f32 or f16, not %s",
                   ig_type_name(p.kv_type));
        return NULL;
    }
    const ig_kernels *k = p.kernels ? (strcmp(p.kernels, "scalar") == 0 ? ig_kernels_scalar()
                                                                        : ig_kernels_by_name(p.kernels))
                                    : ig_kernels_best();
    if (!k) {
        ig_err_set(err, IG_ERR_UNSUPPORTED, "kernel set '%s' is unknown or this CPU cannot run it",
                   p.kernels);
        return NULL;
    }
    if (!weight_types_supported(m, k, err))
        return NULL;
    if (p.kv_type == IG_TYPE_F16 && !k->to_float[IG_TYPE_F16]) {
        ig_err_set(err, IG_ERR_UNSUPPORTED, "the %s kernels cannot read an f16 KV cache", k->isa);
        return NULL;
    }

    ig_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->m = m;
    c->k = k;
    c->n_ctx = p.n_ctx;
    c->n_batch = p.n_batch;
    c->n_threads = p.n_threads;
    c->kv_type = p.kv_type;

    const size_t E = (size_t)in->n_embd, HD = (size_t)in->head_dim;
    const size_t QD = (size_t)in->n_head * HD, KVD = (size_t)in->n_head_kv * HD;
    const size_t F = (size_t)in->n_ff, B = (size_t)p.n_batch, T = (size_t)p.n_threads;
    c->kv_row_bytes = ig_type_row_bytes(p.kv_type, (int64_t)KVD);
    c->kv_head_bytes = ig_type_row_bytes(p.kv_type, (int64_t)HD);
    size_t kv_rows = (size_t)in->n_layer * (size_t)p.n_ctx;

    bool ok = true;
    c->k_cache = ctx_alloc(c, kv_rows, c->kv_row_bytes, &ok);
    c->v_cache = ctx_alloc(c, kv_rows, c->kv_row_bytes, &ok);
    c->x = ctx_alloc(c, B * E, sizeof(float), &ok);
    c->xb = ctx_alloc(c, B * E, sizeof(float), &ok);
    c->xo = ctx_alloc(c, B * E, sizeof(float), &ok);
    c->q = ctx_alloc(c, B * QD, sizeof(float), &ok);
    c->kcur = ctx_alloc(c, B * KVD, sizeof(float), &ok);
    c->vcur = ctx_alloc(c, B * KVD, sizeof(float), &ok);
    c->att = ctx_alloc(c, B * QD, sizeof(float), &ok);
    c->hb = ctx_alloc(c, B * F, sizeof(float), &ok);
    c->hb2 = ctx_alloc(c, B * F, sizeof(float), &ok);
    const size_t att_lanes = (size_t)att_max_groups(p.n_ctx) * ATT_LANES;
    c->scores = ctx_alloc(c, T * att_lanes * (size_t)p.n_ctx, sizeof(float), &ok);
    c->att_q = ctx_alloc(c, T * att_lanes * HD, sizeof(float), &ok);
    c->att_o = ctx_alloc(c, T * att_lanes * HD, sizeof(float), &ok);
    c->rowbuf_rows = p.kv_type == IG_TYPE_F32 ? 1 : (size_t)p.n_ctx;
    c->rowbuf = ctx_alloc(c, T * c->rowbuf_rows * HD, sizeof(float), &ok);
    c->inv_freq = ctx_alloc(c, (size_t)m->n_rot / 2, sizeof(double), &ok);
    c->rope_cos = ctx_alloc(c, B * (size_t)m->n_rot / 2, sizeof(float), &ok);
    c->rope_sin = ctx_alloc(c, B * (size_t)m->n_rot / 2, sizeof(float), &ok);
    c->mm_scratch_bytes = max_matmul_scratch(m, (int64_t)B);
    c->mm_scratch = ctx_alloc(c, c->mm_scratch_bytes, 1, &ok);
    c->n_logits_cap = 1;
    c->logits = ctx_alloc(c, (size_t)in->n_vocab, sizeof(float), &ok);
    if (!ok) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory allocating a context of %d positions", p.n_ctx);
        ig_ctx_free(c);
        return NULL;
    }
    /* theta_i = pos * freq_scale * base^(-2i / n_rot) / freq_factor_i */
    for (int32_t i = 0; i < m->n_rot / 2; i++) {
        double f = pow((double)in->rope_freq_base, -2.0 * i / m->n_rot) * in->rope_freq_scale;
        if (m->rope_freq_factors)
            f /= m->rope_freq_factors[i];
        c->inv_freq[i] = f;
    }
    if (!(c->pool = ig_pool_new(p.n_threads, err))) {
        ig_ctx_free(c);
        return NULL;
    }
    return c;
}

void ig_ctx_free(ig_ctx *c)
{
    if (!c)
        return;
    ig_pool_free(c->pool);
    void *bufs[] = {c->k_cache, c->v_cache, c->x,      c->xb,      c->xo,         c->q,
                    c->kcur,    c->vcur,    c->att,    c->hb,      c->hb2,        c->scores,
                    c->rowbuf,  c->inv_freq, c->rope_cos, c->rope_sin, c->mm_scratch, c->logits,
                    c->att_q,   c->att_o};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(c);
}

size_t ig_ctx_memory_bytes(const ig_ctx *c) { return c->memory_bytes; }
int32_t ig_ctx_n_past(const ig_ctx *c) { return c->n_past; }
int32_t ig_ctx_n_ctx(const ig_ctx *c) { return c->n_ctx; }
const char *ig_ctx_kernels(const ig_ctx *c) { return c->k->isa; }
const ig_model *ig_ctx_model(const ig_ctx *c) { return c->m; }
int32_t ig_ctx_n_last(const ig_ctx *c) { return c->n_last; }

void ig_ctx_truncate(ig_ctx *c, int32_t n_past)
{
    if (n_past < 0)
        n_past = 0;
    if (n_past < c->n_past)
        c->n_past = n_past;
    c->n_last = 0;
}

/* ---- the element-wise steps ------------------------------------------------ */

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void add_bias(float *x, const ig_tensor *bias, int n_tok, int dim)
{
    if (!bias)
        return;
    const float *b = bias->data;
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < dim; i++)
            x[(size_t)t * dim + i] += b[i];
}

/* cos and sin of every pair's angle for the batch's tokens, once per batch. */
static void rope_angles(ig_ctx *c, int n_tok, int32_t pos0)
{
    const int half = c->m->n_rot / 2;
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < half; i++) {
            double theta = (double)(pos0 + t) * c->inv_freq[i];
            c->rope_cos[(size_t)t * half + i] = (float)cos(theta);
            c->rope_sin[(size_t)t * half + i] = (float)sin(theta);
        }
}

/* Rotates the first n_rot dimensions of each head of token t of the batch. */
static void rope(const ig_ctx *c, float *vec, int n_heads, int t)
{
    const ig_model *m = c->m;
    const int hd = m->info.head_dim, half = m->n_rot / 2;
    const float *cs = c->rope_cos + (size_t)t * half, *sn = c->rope_sin + (size_t)t * half;
    for (int h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            int a = m->rope_style == IG_ROPE_NORMAL ? 2 * i : i;
            int b = m->rope_style == IG_ROPE_NORMAL ? 2 * i + 1 : i + half;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

static void store_kv_row(const ig_ctx *c, void *dst, const float *src, int n)
{
    if (c->kv_type == IG_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
    } else {
        uint16_t *h = dst;
        for (int i = 0; i < n; i++)
            h[i] = ig_fp32_to_fp16(src[i]);
    }
}

static inline char *kv_row(const ig_ctx *c, void *cache, int layer, int32_t pos)
{
    return (char *)cache + ((size_t)layer * (size_t)c->n_ctx + (size_t)pos) * c->kv_row_bytes;
}

/* ---- attention: softmax(q K^T / sqrt(hd)) V over positions 0..pos, causal ---- */

/* The attention arithmetic is the same plain C for every kernel set, so the kernel
 * sets differ only inside ig_matmul: a last-bit difference here would flip the
 * rounding of quantized activations downstream and magnify itself. The order of
 * every operation is fixed (see attention_worker), eight queries to a vector. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(IG_NO_CLONES)
/* AVX-512 and AVX2 copies of the attention loops, chosen at load time: the same
 * operations in the same order (no FMA contraction), so results do not change. */
#define IG_ATTENTION_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define IG_ATTENTION_CLONES
#endif

typedef struct {
    ig_ctx *c;
    int layer;
    int n_tok;
    int32_t pos0; /* position of the batch's first token */
} attention_job;

/* One head's row of the cache at position j as F32 (converted into buf when F16). */
static inline const float *kv_head(const ig_ctx *c, void *cache, int layer, int32_t j, int kvh,
                                   float *buf)
{
    const char *src = kv_row(c, cache, layer, j) + (size_t)kvh * c->kv_head_bytes;
    if (c->kv_type == IG_TYPE_F32)
        return (const float *)src;
    c->k->to_float[IG_TYPE_F16](src, buf, c->m->info.head_dim); /* exact in every kernel set */
    return buf;
}

/* Positions ahead of the score loop whose K and V rows are asked for. In decode the
 * cache has just been pushed out of every cache level by the weights (the whole model
 * streams through between two visits of a layer), and one item walks its head's rows
 * at a stride of a whole cache row, one position at a time: without asking ahead each
 * row is a miss the loop waits for. The V rows are then in cache for the V pass. */
#define IG_ATT_PREFETCH 8

static inline void kv_prefetch(const ig_ctx *c, int layer, int32_t j, int kvh)
{
    const char *k = kv_row(c, c->k_cache, layer, j) + (size_t)kvh * c->kv_head_bytes;
    const char *v = kv_row(c, c->v_cache, layer, j) + (size_t)kvh * c->kv_head_bytes;
    for (size_t off = 0; off < c->kv_head_bytes; off += 64) {
        __builtin_prefetch(k + off);
        __builtin_prefetch(v + off);
    }
}

/* How the batch's queries are grouped: a work item is up to `tb` consecutive tokens x
 * `hb` query heads that share one KV head, so each K and V row is read (and, for an
 * F16 cache, converted) once for all of them, and eight queries at a time go through
 * the arithmetic as the lanes of one vector. */
typedef struct {
    int tb, hb;        /* tokens and heads per item */
    int n_tblocks;     /* ceil(n_tok / tb) */
    int n_hchunks;     /* ceil(group / hb): head chunks per KV head */
} att_blocking;

typedef float att_vf __attribute__((vector_size(ATT_LANES * sizeof(float))));
typedef int32_t att_vi __attribute__((vector_size(ATT_LANES * sizeof(int32_t))));

static int att_max_queries(int32_t n_ctx)
{
    /* At most IG_ATT_QUERIES queries per item, and their score rows within
     * IG_ATT_SCORE_FLOATS per thread (long contexts get fewer queries per item). */
    int q = IG_ATT_SCORE_FLOATS / (n_ctx > 0 ? n_ctx : 1);
    return q < 1 ? 1 : q > IG_ATT_QUERIES ? IG_ATT_QUERIES : q;
}

/* Vectors of queries per item (score rows and query buffers are sized for this many). */
static int att_max_groups(int32_t n_ctx)
{
    return (att_max_queries(n_ctx) + ATT_LANES - 1) / ATT_LANES;
}

static att_blocking att_blocks(const ig_ctx *c, int n_tok)
{
    const int group = c->m->info.n_head / c->m->info.n_head_kv;
    const int qmax = att_max_queries(c->n_ctx);
    att_blocking b;
    b.hb = group < qmax ? group : qmax;
    b.tb = qmax / b.hb;
    b.n_tblocks = (n_tok + b.tb - 1) / b.tb;
    b.n_hchunks = (group + b.hb - 1) / b.hb;
    return b;
}

/* A vector of 8 floats at any float address (unaligned, may alias floats). */
typedef float att_vfu __attribute__((vector_size(ATT_LANES * sizeof(float)), aligned(4), may_alias));
#define ATT_V(p) (*(att_vfu *)(p))

/* e^x for the eight lanes of x, in float operations whose order is fixed (ISO C: no
 * contraction), so every kernel set, clone and CPU gets the same bits: x = n ln2 + r
 * with n = round(x / ln2) (the 1.5 * 2^23 trick) and ln2 in two parts (Cody-Waite),
 * e^r by the degree-7 polynomial of Cephes' expf (within one ulp of expf over the
 * range, test_kernels), then 2^n put into the exponent. x below -87 (e^x < 2^-125)
 * and NaN give +0, x above 88 gives +inf. In place (a vector passed by value would
 * change the ABI of the attention clones' callers). Used by the softmax and SwiGLU. */
static inline __attribute__((always_inline)) void vexp8(att_vf *v)
{
    const att_vf x = *v;
    const att_vf shifter = {12582912.0f, 12582912.0f, 12582912.0f, 12582912.0f,
                            12582912.0f, 12582912.0f, 12582912.0f, 12582912.0f};
    const att_vi in = (x > -87.0f) & (x <= 88.0f), big = x > 88.0f;
    const att_vf lo = (att_vf)((att_vi)x & in); /* 0 elsewhere: keeps n in [-126, 127] */
    const att_vf t = lo * 1.44269504088896341f + shifter;
    const att_vf n = t - shifter; /* round to nearest, ties to even */
    const att_vf r = (lo - n * 0.693359375f) - n * -2.12194440e-4f;
    att_vf p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = (p * (r * r) + r) + 1.0f;
    /* 2^n from n's bits: t's low bits hold n + 2^22 */
    const att_vi e2 = (((att_vi)t - (att_vi)shifter) + 127) << 23;
    const att_vf y = p * (att_vf)e2;
    const att_vf inf = {INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY};
    *v = (att_vf)(((att_vi)y & in) | ((att_vi)inf & big));
}

void ig_exp8(float v[8])
{
    att_vf e;
    memcpy(&e, v, sizeof e);
    vexp8(&e);
    memcpy(v, &e, sizeof e);
}

/* gate[i] = silu(gate[i]) * up[i] = g / (1 + e^-g) * u, eight at a time (the last
 * few padded): every element goes through the same operations wherever it sits, in
 * every clone. */
IG_ATTENTION_CLONES static void swiglu(float *gate, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i += ATT_LANES) {
        const size_t k = n - i < ATT_LANES ? n - i : ATT_LANES;
        att_vf g = {0}, u = {0};
        if (k == ATT_LANES) {
            memcpy(&g, gate + i, sizeof g);
            memcpy(&u, up + i, sizeof u);
        } else {
            memcpy(&g, gate + i, k * sizeof(float));
            memcpy(&u, up + i, k * sizeof(float));
        }
        att_vf e = -g;
        vexp8(&e);
        const att_vf s = g / (1.0f + e) * u;
        memcpy(gate + i, &s, k * sizeof(float));
    }
}

/* The arithmetic of one query (token t at position pos, head h) is, in this order:
 *   s_j = dot(q, k_j) * scale for j = 0..pos, where dot sums the products of each
 *         dimension class i mod 8 in dimension order, then adds the eight partial sums
 *         as ((0+4)+(1+5))+((2+6)+(3+7));
 *   m = the running maximum of s_j, j = 0..pos (strict >, starting from -inf);
 *   e_j = vexp8(s_j - m), sum = e_0 + ... + e_pos in order; a_j = e_j * (1 / sum);
 *   out = 0, then out += a_j * v_j for j = 0..pos in order (multiply, then add).
 * Each query is one lane of the vectors below, so every lane performs exactly these
 * operations in exactly this order (no contraction into fused multiply-adds: ISO C
 * mode), whatever the item, the batch or the number of threads. A token's output thus
 * does not depend on the batch it came in, which resuming a job relies on. */
IG_ATTENTION_CLONES static void attention_worker(void *arg, int thread, int n_threads)
{
    attention_job *job = arg;
    ig_ctx *c = job->c;
    const ig_model_info *in = &c->m->info;
    const int hd = in->head_dim, n_head = in->n_head, group = in->n_head / in->n_head_kv;
    const size_t QD = (size_t)n_head * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    assert(thread < c->n_threads);
    const att_blocking b = att_blocks(c, job->n_tok);
    const int gmax = att_max_groups(c->n_ctx);
    /* per thread: score rows [group g][position j][lane], queries and outputs
     * [group g][dimension d][lane], one K or V row converted to F32 */
    float *sc = c->scores + (size_t)thread * gmax * ATT_LANES * c->n_ctx;
    float *qt = c->att_q + (size_t)thread * gmax * ATT_LANES * hd;
    float *ot = c->att_o + (size_t)thread * gmax * ATT_LANES * hd;
    float *rowbuf = c->rowbuf + (size_t)thread * c->rowbuf_rows * hd;

    /* Items interleaved across threads: under the causal mask a later token block costs
     * more, so contiguous shares would give the last thread most of the work. */
    const int64_t per_tblock = (int64_t)in->n_head_kv * b.n_hchunks;
    const int64_t items = (int64_t)b.n_tblocks * per_tblock;
    for (int64_t it = thread; it < items; it += n_threads) {
        const int tblock = (int)(it / per_tblock), rest = (int)(it % per_tblock);
        const int kvh = rest / b.n_hchunks, hchunk = rest % b.n_hchunks;
        const int t0 = tblock * b.tb, nt = job->n_tok - t0 < b.tb ? job->n_tok - t0 : b.tb;
        const int h0 = kvh * group + hchunk * b.hb;
        const int nh = group - hchunk * b.hb < b.hb ? group - hchunk * b.hb : b.hb;
        const int nq = nt * nh, ng = (nq + ATT_LANES - 1) / ATT_LANES;
        assert(ng <= gmax);
        /* query qi (lane qi % 8 of group qi / 8) is token t0 + qi / nh, head h0 + qi % nh */
        const int32_t first = job->pos0 + t0, last = job->pos0 + t0 + nt - 1;
        att_vi lane_pos[IG_ATT_QUERIES / ATT_LANES + 1];
        for (int g = 0; g < ng; g++)
            for (int l = 0; l < ATT_LANES; l++) {
                const int qi = g * ATT_LANES + l;
                lane_pos[g][l] = qi < nq ? first + qi / nh : -1;
                for (int d = 0; d < hd; d++)
                    qt[((size_t)g * hd + d) * ATT_LANES + l] =
                        qi < nq ? c->q[(size_t)(t0 + qi / nh) * QD + (size_t)(h0 + qi % nh) * hd + d]
                                : 0.0f;
            }

        /* scores: s_j for every lane (a lane past its own position computes a value
         * nobody reads) */
        const att_vf vscale = {scale, scale, scale, scale, scale, scale, scale, scale};
        for (int32_t j = 0; j <= last; j++) {
            if (j + IG_ATT_PREFETCH <= last)
                kv_prefetch(c, job->layer, j + IG_ATT_PREFETCH, kvh);
            const float *k = kv_head(c, c->k_cache, job->layer, j, kvh, rowbuf);
            for (int g = 0; g < ng; g++) {
                const float *q = qt + (size_t)g * hd * ATT_LANES;
                att_vf acc[8] = {{0}};
                int d = 0;
                for (; d + 8 <= hd; d += 8)
                    for (int p = 0; p < 8; p++)
                        acc[p] += ATT_V(q + (size_t)(d + p) * ATT_LANES) * k[d + p];
                for (; d < hd; d++)
                    acc[0] += ATT_V(q + (size_t)d * ATT_LANES) * k[d];
                att_vf s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
                ATT_V(sc + ((size_t)g * c->n_ctx + j) * ATT_LANES) = s * vscale;
            }
        }

        /* softmax per lane, in position order; a_j replaces s_j, 0 past the lane's
         * position (and in empty lanes). The eight lanes go together: a lane past its
         * position neither takes the maximum nor adds to its sum (it adds +0, which
         * leaves a sum >= +0 unchanged). */
        const att_vf ones = {1, 1, 1, 1, 1, 1, 1, 1};
        for (int g = 0; g < ng; g++) {
            float *rows = sc + (size_t)g * c->n_ctx * ATT_LANES;
            const att_vi lp = lane_pos[g];
            att_vf m = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                        -INFINITY, -INFINITY, -INFINITY, -INFINITY};
            for (int32_t j = 0; j <= last; j++) {
                const att_vf s = ATT_V(rows + (size_t)j * ATT_LANES);
                const att_vi take = (s > m) & (lp >= j);
                m = (att_vf)(((att_vi)s & take) | ((att_vi)m & ~take));
            }
            att_vf sum = {0};
            for (int32_t j = 0; j <= last; j++) {
                float *r = rows + (size_t)j * ATT_LANES;
                att_vf e = ATT_V(r) - m;
                vexp8(&e);
                e = (att_vf)((att_vi)e & (lp >= j));
                ATT_V(r) = e;
                sum = sum + e;
            }
            const att_vf inv_sum = ones / sum;
            for (int32_t j = 0; j <= last; j++) {
                float *r = rows + (size_t)j * ATT_LANES;
                const att_vf a = ATT_V(r) * inv_sum;
                ATT_V(r) = (att_vf)((att_vi)a & (lp >= j));
            }
        }

        /* out += a_j * v_j in position order, eight dimensions at a time in registers
         * (the V rows as F32: the cache's own, or converted once per item); past the
         * first token's position some lanes are done, and keep their value exactly
         * (selected, not added to) */
        const float *vrows = kv_head(c, c->v_cache, job->layer, 0, kvh, rowbuf);
        const size_t vstride = c->kv_type == IG_TYPE_F32 ? c->kv_row_bytes / sizeof(float) : (size_t)hd;
        for (int32_t j = 1; c->kv_type != IG_TYPE_F32 && j <= last; j++)
            kv_head(c, c->v_cache, job->layer, j, kvh, rowbuf + (size_t)j * hd);
        for (int g = 0; g < ng; g++) {
            const float *a_g = sc + (size_t)g * c->n_ctx * ATT_LANES;
            float *o = ot + (size_t)g * hd * ATT_LANES;
            const int32_t full = first < last ? first : last; /* every lane live up to here */
            for (int d0 = 0; d0 < hd; d0 += 8) {
                const int nd = hd - d0 < 8 ? hd - d0 : 8;
                att_vf acc[8] = {{0}};
                int32_t j = 0;
                if (nd == 8) {
                    for (; j <= full; j++) {
                        const att_vf a = ATT_V(a_g + (size_t)j * ATT_LANES);
                        const float *v = vrows + (size_t)j * vstride + d0;
                        for (int dd = 0; dd < 8; dd++)
                            acc[dd] = acc[dd] + a * v[dd];
                    }
                }
                for (; j <= last; j++) {
                    const att_vf a = ATT_V(a_g + (size_t)j * ATT_LANES);
                    const float *v = vrows + (size_t)j * vstride + d0;
                    const att_vi live = lane_pos[g] >= j;
                    for (int dd = 0; dd < nd; dd++) {
                        const att_vf upd = acc[dd] + a * v[dd];
                        acc[dd] = (att_vf)(((att_vi)upd & live) | ((att_vi)acc[dd] & ~live));
                    }
                }
                for (int dd = 0; dd < nd; dd++)
                    ATT_V(o + (size_t)(d0 + dd) * ATT_LANES) = acc[dd];
            }
        }
        for (int qi = 0; qi < nq; qi++) {
            float *out = c->att + (size_t)(t0 + qi / nh) * QD + (size_t)(h0 + qi % nh) * hd;
            const float *o = ot + (size_t)(qi / ATT_LANES) * hd * ATT_LANES + qi % ATT_LANES;
            for (int d = 0; d < hd; d++)
                out[d] = o[(size_t)d * ATT_LANES];
        }
    }
}

/* ---- the forward pass ------------------------------------------------------- */

static void matmul(ig_ctx *c, float *y, const ig_tensor *w, const float *x, int n_tok)
{
    ig_matmul(c->pool, c->k, y, w->data, w->type, w->ne[1], w->ne[0], x, n_tok, c->mm_scratch);
}

/* y_i = x W_i for weights of the same input width, in one pass of the pool. */
static void matmul_n(ig_ctx *c, int n, float *const *y, const ig_tensor *const *w, const float *x,
                     int n_tok)
{
    ig_matmul_out outs[IG_MATMUL_MAX_OPS];
    assert(n <= IG_MATMUL_MAX_OPS);
    for (int i = 0; i < n; i++) {
        assert(w[i]->ne[0] == w[0]->ne[0]);
        outs[i] = (ig_matmul_out){.y = y[i], .w = w[i]->data, .wtype = w[i]->type, .rows = w[i]->ne[1]};
    }
    ig_matmul_n(c->pool, c->k, n, outs, w[0]->ne[0], x, n_tok, c->mm_scratch);
}

static void embed(const ig_ctx *c, float *out, int32_t token)
{
    const ig_tensor *te = c->m->tok_embd;
    const int64_t E = c->m->info.n_embd;
    const char *row = (const char *)te->data + (size_t)token * ig_type_row_bytes(te->type, E);
    if (te->type == IG_TYPE_F32)
        memcpy(out, row, (size_t)E * sizeof(float));
    else
        c->k->to_float[te->type](row, out, E);
}

/* Runs n_tok tokens at positions n_past.. through the model, appending their keys
 * and values to the cache. Writes logits for the last `n_out` tokens of the batch
 * to `logits` ([n_out][n_vocab]); n_out may be 0. */
static void forward_batch(ig_ctx *c, const int32_t *tokens, int n_tok, int n_out, float *logits)
{
    const ig_model *m = c->m;
    const ig_model_info *in = &m->info;
    const int E = in->n_embd, F = in->n_ff, HD = in->head_dim;
    const int QD = in->n_head * HD, KVD = in->n_head_kv * HD;
    const int32_t pos0 = c->n_past;
    assert(n_tok >= 1 && n_tok <= c->n_batch && pos0 + n_tok <= c->n_ctx);
    assert(n_out >= 0 && n_out <= n_tok);

    for (int t = 0; t < n_tok; t++)
        embed(c, c->x + (size_t)t * E, tokens[t]);
    rope_angles(c, n_tok, pos0);

    for (int l = 0; l < in->n_layer; l++) {
        const ig_layer *L = &m->layers[l];

        /* attention: xb = rmsnorm(x); q, k, v = xb Wq, xb Wk, xb Wv (+ bias) */
        for (int t = 0; t < n_tok; t++)
            rmsnorm(c->xb + (size_t)t * E, c->x + (size_t)t * E, L->attn_norm->data, E, in->norm_eps);
        const ig_tensor *qkv[] = {L->wq, L->wk, L->wv};
        matmul_n(c, 3, (float *[]){c->q, c->kcur, c->vcur}, qkv, c->xb, n_tok);
        add_bias(c->q, L->bq, n_tok, QD);
        add_bias(c->kcur, L->bk, n_tok, KVD);
        add_bias(c->vcur, L->bv, n_tok, KVD);

        /* rotate q and k by position, then append k and v to the cache */
        for (int t = 0; t < n_tok; t++) {
            rope(c, c->q + (size_t)t * QD, in->n_head, t);
            rope(c, c->kcur + (size_t)t * KVD, in->n_head_kv, t);
            store_kv_row(c, kv_row(c, c->k_cache, l, pos0 + t), c->kcur + (size_t)t * KVD, KVD);
            store_kv_row(c, kv_row(c, c->v_cache, l, pos0 + t), c->vcur + (size_t)t * KVD, KVD);
        }

        /* att = softmax(q k^T / sqrt(hd)) v per head, each token seeing positions <= its own */
        attention_job job = {c, l, n_tok, pos0};
        ig_pool_run(c->pool, attention_worker, &job);

        /* x += att Wo */
        matmul(c, c->xo, L->wo, c->att, n_tok);
        for (size_t i = 0; i < (size_t)n_tok * E; i++)
            c->x[i] += c->xo[i];

        /* feed-forward: x += (silu(xb Wgate) * (xb Wup)) Wdown, xb = rmsnorm(x) */
        for (int t = 0; t < n_tok; t++)
            rmsnorm(c->xb + (size_t)t * E, c->x + (size_t)t * E, L->ffn_norm->data, E, in->norm_eps);
        const ig_tensor *gate_up[] = {L->ffn_gate, L->ffn_up};
        matmul_n(c, 2, (float *[]){c->hb, c->hb2}, gate_up, c->xb, n_tok);
        swiglu(c->hb, c->hb2, (size_t)n_tok * F);
        matmul(c, c->xo, L->ffn_down, c->hb, n_tok);
        for (size_t i = 0; i < (size_t)n_tok * E; i++)
            c->x[i] += c->xo[i];
    }
    c->n_past += n_tok;

    /* logits = rmsnorm(x) Woutput, only for the rows asked for */
    if (n_out > 0) {
        const int first = n_tok - n_out;
        for (int t = 0; t < n_out; t++)
            rmsnorm(c->xb + (size_t)t * E, c->x + (size_t)(first + t) * E, m->output_norm->data, E,
                    in->norm_eps);
        matmul(c, logits, m->output, c->xb, n_out);
    }
}

ig_code ig_ctx_decode(ig_ctx *c, const int32_t *tokens, int32_t n, bool all_logits, ig_err *err)
{
    const int32_t n_vocab = c->m->info.n_vocab;
    if (n < 1)
        return ig_err_set(err, IG_ERR_INVALID, "decode needs at least one token");
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return ig_err_set(err, IG_ERR_INVALID, "token %d at index %d is outside the vocabulary of %d",
                              tokens[i], i, n_vocab);
    if (n > c->n_ctx - c->n_past)
        return ig_err_set(err, IG_ERR_RANGE, "context full: %d tokens do not fit after %d of %d positions",
                          n, c->n_past, c->n_ctx);
    if (all_logits && n > c->n_logits_cap) {
        /* Logits of every token were asked for: grow once to n rows (at most n_ctx). */
        float *bigger = realloc(c->logits, (size_t)n * n_vocab * sizeof(float));
        if (!bigger)
            return ig_err_set(err, IG_ERR_NOMEM, "out of memory for the logits of %d tokens", n);
        c->memory_bytes += (size_t)(n - c->n_logits_cap) * n_vocab * sizeof(float);
        c->logits = bigger;
        c->n_logits_cap = n;
    }
    c->n_last = 0;
    for (int32_t off = 0; off < n; off += c->n_batch) {
        int32_t nb = n - off < c->n_batch ? n - off : c->n_batch;
        bool last_chunk = off + nb == n;
        if (all_logits)
            forward_batch(c, tokens + off, nb, nb, c->logits + (size_t)off * n_vocab);
        else
            forward_batch(c, tokens + off, nb, last_chunk ? 1 : 0, c->logits);
    }
    c->n_last = n;
    c->last_all_logits = all_logits;
    return IG_OK;
}

const float *ig_ctx_logits(const ig_ctx *c, int32_t i)
{
    if (c->n_last <= 0 || i < 0 || i >= c->n_last)
        return NULL;
    if (c->last_all_logits)
        return c->logits + (size_t)i * c->m->info.n_vocab;
    return i == c->n_last - 1 ? c->logits : NULL;
}

ig_code ig_score(ig_ctx *c, const int32_t *tokens, int32_t n, float *logprobs, ig_err *err)
{
    if (n < 1)
        return ig_err_set(err, IG_ERR_INVALID, "score needs at least one token");
    if (n > c->n_ctx)
        return ig_err_set(err, IG_ERR_RANGE, "%d tokens do not fit a context of %d", n, c->n_ctx);
    ig_ctx_truncate(c, 0);
    const int32_t n_vocab = c->m->info.n_vocab;
    logprobs[0] = 0.0f;
    for (int32_t off = 0; off < n; off += c->n_batch) {
        int32_t nb = n - off < c->n_batch ? n - off : c->n_batch;
        ig_code rc = ig_ctx_decode(c, tokens + off, nb, true, err);
        if (rc)
            return rc;
        for (int32_t j = 0; j < nb && off + j + 1 < n; j++)
            logprobs[off + j + 1] = ig_logprob_of(ig_ctx_logits(c, j), n_vocab, tokens[off + j + 1]);
    }
    return IG_OK;
}
