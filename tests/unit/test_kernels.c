/*
 * test_kernels.c — the kernels against their scalar reference, the block formats
 * against hand-built blocks, quantization error bounds, and ig_matmul's agreement
 * with plain dot products at every thread count.
 *
 * Tolerance, stated once: activation conversions (from_float) and to_float must be
 * bit-identical to the reference (same rounding rule, same float operations). A dot
 * product may differ from the reference only by float summation order, so
 * |fast - ref| <= 1e-5 * sum_i |w_i * x_i| (the magnitude of the terms; relative to
 * the result itself would be meaningless when the terms cancel).
 */
#include "ig_check.h"
#include "kernels.h"
#include "model_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static const ig_type WEIGHT_TYPES[] = {IG_TYPE_F32,  IG_TYPE_F16,  IG_TYPE_BF16, IG_TYPE_Q8_0,
                                       IG_TYPE_Q4_0, IG_TYPE_Q4_K, IG_TYPE_Q6_K};
#define N_WEIGHT_TYPES (int)(sizeof WEIGHT_TYPES / sizeof WEIGHT_TYPES[0])
static const char *const ISAS[] = {"avx2", "avx512", "amx", "neon"};

/* Every SIMD set this machine runs: the named ones, and on aarch64 also NEON without
 * the dot-product instructions (the named "neon" set uses them when the CPU has them,
 * so both paths are tested here). */
static int simd_sets(const ig_kernels **out)
{
    int n = 0;
    for (size_t s = 0; s < sizeof ISAS / sizeof ISAS[0]; s++)
        if (ig_kernels_by_name(ISAS[s]))
            out[n++] = ig_kernels_by_name(ISAS[s]);
#if defined(__aarch64__)
    static ig_kernels base;
    base = *ig_kernels_scalar();
    ig_kernels_fill_neon(&base);
    base.isa = "neon-without-dotprod";
    out[n++] = &base;
#endif
    return n;
}

static void fill_normal(ig_rng *r, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = ig_rng_normal(r) * scale;
}

/* sum |w_i x_i| over the dequantized operands: the scale of a dot product's error. */
static double dot_magnitude(ig_type wt, const void *w, const void *xq, int64_t n)
{
    const ig_kernels *ref = ig_kernels_scalar();
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    ref->to_float[wt](w, a, n);
    ref->to_float[ig_vec_dot_type(wt)](xq, b, n);
    double m = 0.0;
    for (int64_t i = 0; i < n; i++)
        m += fabs((double)a[i] * (double)b[i]);
    free(a);
    free(b);
    return m;
}

/* One (set, type, size) comparison against the reference. */
static void compare_set(const ig_kernels *k, ig_type wt, const float *wf, const float *xf,
                        int64_t n)
{
    const ig_kernels *ref = ig_kernels_scalar();
    ig_type vdt = ig_vec_dot_type(wt);
    size_t wb = ig_type_row_bytes(wt, n), xb = ig_type_row_bytes(vdt, n);
    uint8_t *w = malloc(wb), *xr = malloc(xb), *xk = malloc(xb);
    float *back_ref = malloc((size_t)n * sizeof(float)), *back_k = malloc((size_t)n * sizeof(float));
    ig_quantize_row(wt, wf, w, n);

    ref->from_float[vdt](xf, xr, n);
    k->from_float[vdt](xf, xk, n);
    IG_CHECK(memcmp(xr, xk, xb) == 0, "%s from_float[%s] n=%lld differs from the reference",
             k->isa, ig_type_name(vdt), (long long)n);

    ref->to_float[wt](w, back_ref, n);
    k->to_float[wt](w, back_k, n);
    IG_CHECK(memcmp(back_ref, back_k, (size_t)n * sizeof(float)) == 0,
             "%s to_float[%s] n=%lld differs from the reference", k->isa, ig_type_name(wt),
             (long long)n);

    float s_ref = 0, s_k = 0;
    ref->vec_dot[wt](n, &s_ref, w, xr);
    k->vec_dot[wt](n, &s_k, w, xr);
    double mag = dot_magnitude(wt, w, xr, n);
    IG_CHECK(fabs((double)s_ref - (double)s_k) <= 1e-5 * mag + 1e-30,
             "%s vec_dot[%s] n=%lld: %.9g vs reference %.9g (magnitude %.3g)", k->isa,
             ig_type_name(wt), (long long)n, s_k, s_ref, mag);
    free(w), free(xr), free(xk), free(back_ref), free(back_k);
}

static void test_every_simd_kernel_equals_scalar_reference_on_random_rows(void)
{
    ig_rng r = {0x1234567ULL};
    const int64_t sizes[] = {256, 512, 768, 1024, 2816, 4096, 5632};
    int n_sets = 0;
    const ig_kernels *sets[8];
    int n_simd = simd_sets(sets);
    for (int s = 0; s < n_simd; s++) {
        const ig_kernels *k = sets[s];
        n_sets++;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            int64_t n = sizes[si];
            float *wf = malloc((size_t)n * sizeof(float)), *xf = malloc((size_t)n * sizeof(float));
            for (int rep = 0; rep < 4; rep++) {
                fill_normal(&r, wf, n, rep == 3 ? 1e-3f : 0.05f);
                fill_normal(&r, xf, n, rep == 2 ? 30.0f : 1.0f);
                for (int ti = 0; ti < N_WEIGHT_TYPES; ti++)
                    compare_set(k, WEIGHT_TYPES[ti], wf, xf, n);
            }
            free(wf), free(xf);
        }
    }
    /* Small sizes of the block-32 and float types (n = 32 .. 224). */
    for (int s = 0; s < n_simd; s++) {
        const ig_kernels *k = sets[s];
        for (int64_t n = 32; n < 256; n += 32) {
            float wf[256], xf[256];
            fill_normal(&r, wf, n, 0.1f);
            fill_normal(&r, xf, n, 1.0f);
            const ig_type small[] = {IG_TYPE_F32, IG_TYPE_F16, IG_TYPE_BF16, IG_TYPE_Q8_0, IG_TYPE_Q4_0};
            for (size_t ti = 0; ti < sizeof small / sizeof small[0]; ti++)
                compare_set(k, small[ti], wf, xf, n);
        }
    }
    if (n_sets == 0)
        IG_SKIP("this CPU runs no SIMD kernel set; only the reference was checked");
}

/* Random weight and activation blocks whose scales are powers of two and whose
 * integer sums stay below 2^24: every float operation of every kernel is then exact,
 * so any integer slip (a wrong nibble, scale or offset) shows as inequality. */
static uint16_t pow2_fp16(ig_rng *r)
{
    return ig_fp32_to_fp16(ldexpf(1.0f, -(int)(ig_rng_next(r) % 2) - 4));
}

static int rand_range(ig_rng *r, int lo, int hi)
{
    return lo + (int)(ig_rng_next(r) % (unsigned)(hi - lo + 1));
}

static void make_exact_operands(ig_rng *r, ig_type wt, int64_t n, void *w, void *x)
{
    int64_t nb = n / ig_type_block_size(wt);
    switch (wt) {
    case IG_TYPE_Q8_0:
    case IG_TYPE_Q4_0:
        for (int64_t i = 0; i < nb; i++) {
            if (wt == IG_TYPE_Q8_0) {
                ig_block_q8_0 *b = (ig_block_q8_0 *)w + i;
                b->d = pow2_fp16(r);
                for (int j = 0; j < 32; j++)
                    b->qs[j] = (int8_t)rand_range(r, -128, 127);
            } else {
                ig_block_q4_0 *b = (ig_block_q4_0 *)w + i;
                b->d = pow2_fp16(r);
                for (int j = 0; j < 16; j++)
                    b->qs[j] = (uint8_t)rand_range(r, 0, 255);
            }
            ig_block_q8_0 *y = (ig_block_q8_0 *)x + i;
            y->d = pow2_fp16(r);
            for (int j = 0; j < 32; j++)
                y->qs[j] = (int8_t)rand_range(r, -127, 127);
        }
        break;
    case IG_TYPE_Q4_K:
    case IG_TYPE_Q6_K:
        for (int64_t i = 0; i < nb; i++) {
            if (wt == IG_TYPE_Q4_K) {
                ig_block_q4_K *b = (ig_block_q4_K *)w + i;
                b->d = pow2_fp16(r);
                b->dmin = pow2_fp16(r);
                for (int j = 0; j < 12; j++)
                    b->scales[j] = (uint8_t)rand_range(r, 0, 255);
                for (int j = 0; j < 128; j++)
                    b->qs[j] = (uint8_t)rand_range(r, 0, 255);
            } else {
                ig_block_q6_K *b = (ig_block_q6_K *)w + i;
                b->d = pow2_fp16(r);
                for (int j = 0; j < 16; j++)
                    b->scales[j] = (int8_t)rand_range(r, -128, 127);
                for (int j = 0; j < 128; j++)
                    b->ql[j] = (uint8_t)rand_range(r, 0, 255);
                for (int j = 0; j < 64; j++)
                    b->qh[j] = (uint8_t)rand_range(r, 0, 255);
            }
            ig_block_q8_K *y = (ig_block_q8_K *)x + i;
            y->d = ldexpf(1.0f, -rand_range(r, 4, 5));
            for (int j = 0; j < 256; j++)
                y->qs[j] = (int8_t)rand_range(r, -20, 20);
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int j = 0; j < 16; j++)
                    s += y->qs[16 * g + j];
                y->bsums[g] = (int16_t)s;
            }
        }
        break;
    default:
        break;
    }
}

static void test_integer_kernels_are_exact_when_float_math_is_exact(void)
{
    ig_rng r = {4242};
    const ig_type types[] = {IG_TYPE_Q8_0, IG_TYPE_Q4_0, IG_TYPE_Q4_K, IG_TYPE_Q6_K};
    const int64_t sizes[] = {256, 512, 1024, 2816};
    int n_sets = 0;
    const ig_kernels *sets[8];
    int n_simd = simd_sets(sets);
    for (int s = 0; s < n_simd; s++) {
        const ig_kernels *k = sets[s];
        n_sets++;
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                ig_type wt = types[ti];
                int64_t n = sizes[si];
                if (n % ig_type_block_size(wt))
                    continue;
                void *w = malloc(ig_type_row_bytes(wt, n));
                void *x = malloc(ig_type_row_bytes(ig_vec_dot_type(wt), n));
                for (int rep = 0; rep < 8; rep++) {
                    make_exact_operands(&r, wt, n, w, x);
                    float a = 0, b = 0;
                    ig_kernels_scalar()->vec_dot[wt](n, &a, w, x);
                    k->vec_dot[wt](n, &b, w, x);
                    IG_CHECK(a == b, "%s vec_dot[%s] n=%lld: %.9g, reference %.9g", k->isa,
                             ig_type_name(wt), (long long)n, b, a);
                    float *fa = malloc(n * sizeof(float)), *fb = malloc(n * sizeof(float));
                    ig_kernels_scalar()->to_float[wt](w, fa, n);
                    k->to_float[wt](w, fb, n);
                    IG_CHECK(memcmp(fa, fb, n * sizeof(float)) == 0, "%s to_float[%s]", k->isa,
                             ig_type_name(wt));
                    free(fa), free(fb);
                }
                free(w), free(x);
            }
        }
    }
    if (n_sets == 0)
        IG_SKIP("this CPU runs no SIMD kernel set");
}

static void test_best_set_is_simd_when_the_cpu_has_it(void)
{
    const ig_kernels *best = ig_kernels_best();
    IG_CHECK(best != NULL, "no best set");
    IG_CHECK(ig_kernels_by_name(best->isa) == best, "best set %s is not found by name",
             best->isa);
    IG_CHECK(ig_kernels_by_name("scalar") == ig_kernels_scalar(), "scalar by name");
    IG_CHECK(ig_kernels_by_name("nonsense") == NULL, "unknown name must give NULL");
#if defined(__aarch64__)
    IG_CHECK(strcmp(best->isa, "neon") == 0, "aarch64 must use neon, got %s", best->isa);
#endif
    for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        ig_type t = WEIGHT_TYPES[ti];
        IG_CHECK(best->vec_dot[t] && best->to_float[t] && best->from_float[ig_vec_dot_type(t)],
                 "%s set lacks a kernel for %s", best->isa, ig_type_name(t));
    }
}

#if defined(__x86_64__)
#include <cpuid.h>

/* Set k's matmul against the scalar reference (quantized types) and the avx2 set
 * (float types), bit for bit, over rows of many block counts and token counts that
 * cover decode, the tiles' remainders and several token tiles. */
static void check_set_equals_reference(const ig_kernels *k)
{
    const ig_kernels *k2 = ig_kernels_by_name("avx2");
    ig_rng r = {512};
    enum { ROWS = 35, NT = 70 };
    const int64_t lens[] = {32, 96, 224, 256, 288, 640, 768, 1024, 2816};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        int64_t n = lens[li];
        float *wf = malloc(sizeof(float) * ROWS * n), *x = malloc(sizeof(float) * NT * n);
        fill_normal(&r, wf, ROWS * n, 0.1f);
        fill_normal(&r, x, NT * n, 1.0f);
        for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
            ig_type wt = WEIGHT_TYPES[ti];
            if (n % ig_type_block_size(wt))
                continue;
            size_t rb = ig_type_row_bytes(wt, n);
            uint8_t *w = malloc(rb * ROWS);
            uint8_t *scratch = malloc(ig_matmul_scratch_bytes(wt, n, NT) + 1);
            float y2[ROWS * NT], y5[ROWS * NT];
            for (int64_t i = 0; i < ROWS; i++)
                ig_quantize_row(wt, wf + i * n, w + i * rb, n);
            const int64_t toks[] = {1, 2, 7, 8, 9, 16, 17, 21, NT};
            for (size_t t = 0; t < sizeof toks / sizeof toks[0]; t++) {
                const bool quantized = ig_vec_dot_type(wt) != IG_TYPE_F32;
                const ig_kernels *want = quantized ? ig_kernels_scalar() : k2;
                ig_matmul(NULL, want, y2, w, wt, ROWS, n, x, toks[t], scratch);
                ig_matmul(NULL, k, y5, w, wt, ROWS, n, x, toks[t], scratch);
                IG_CHECK(memcmp(y2, y5, sizeof(float) * ROWS * toks[t]) == 0,
                         "%s n=%lld, %lld tokens: %s differs from %s", ig_type_name(wt),
                         (long long)n, (long long)toks[t], k->isa, want->isa);
            }
            free(w), free(scratch);
        }
        free(wf), free(x);
    }
}

/* The "avx2" set (every x86-64 CPU with AVX2, FMA and F16C) keeps the reference's
 * arithmetic for every quantized type too: its block-32 prefill puts eight rows in the
 * lanes and forms each block's exact sum (maddubs, whose s16 pair sums cannot saturate
 * on these operands, then madd), then the reference's float expression; decode rows
 * do the same one row at a time. So it equals the scalar reference bit for bit, on
 * every row length and token count, and a job moves between avx2 and avx512 nodes
 * without a change in its numbers. */
static void test_avx2_set_equals_the_reference_bit_for_bit(void)
{
    const ig_kernels *k2 = ig_kernels_by_name("avx2");
    if (!k2) {
        IG_SKIP("this CPU has no AVX2/FMA/F16C: the avx2 set cannot run here");
        return;
    }
    check_set_equals_reference(k2);
}

/* The "avx512" set is offered exactly when the CPU has what it is compiled for
 * (asked here through the compiler's own CPU probe, not the engine's) and is then the
 * best set, unless the amx set is offered. Its matmul - decode rows, prefill tiles,
 * rows of any block count - equals, bit for bit, the scalar reference for every
 * quantized type (the block-32 kernels keep the reference's per-block float
 * expression and order, the K-quants too) and the avx2 set for the float types (the
 * same source): a job can move between such nodes and continue with the same tokens. */
static void test_avx512_set_is_offered_on_avx512_cpus_and_equals_the_reference_bit_for_bit(void)
{
    __builtin_cpu_init();
    bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vnni");
    const ig_kernels *k512 = ig_kernels_by_name("avx512");
    IG_CHECK((k512 != NULL) == has, "avx512 set %s, but the CPU %s AVX-512 VNNI",
             k512 ? "offered" : "not offered", has ? "has" : "lacks");
    if (!k512) {
        IG_SKIP("this CPU has no AVX-512 VNNI: the avx512 set cannot run here");
        return;
    }
    const ig_kernels *amx = ig_kernels_by_name("amx");
    IG_CHECK(ig_kernels_best() == (amx ? amx : k512), "best set is %s, not %s",
             ig_kernels_best()->isa, amx ? "amx" : "avx512");
    IG_CHECK(strcmp(k512->isa, "avx512") == 0, "avx512 set calls itself %s", k512->isa);
    check_set_equals_reference(k512);
}

/* The "amx" set is offered only where the CPU has AMX-TILE and AMX-INT8 (and then, the
 * kernel permitting, it is), and its prefill tiles equal the reference bit for bit. */
static void test_amx_set_is_offered_on_amx_cpus_and_equals_the_reference_bit_for_bit(void)
{
    /* CPUID leaf 7: EDX bit 24 AMX-TILE, bit 25 AMX-INT8 (not every compiler's
     * __builtin_cpu_supports knows them) */
    __builtin_cpu_init();
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_max(0, NULL) >= 7)
        __cpuid_count(7, 0, a, b, c, d);
    (void)a, (void)b, (void)c;
    bool has = __builtin_cpu_supports("avx512vnni") && (d & (1u << 24)) && (d & (1u << 25));
    const ig_kernels *amx = ig_kernels_by_name("amx");
    IG_CHECK(amx == NULL || has, "amx set offered, but the CPU lacks AMX-INT8");
    if (!amx) {
        IG_SKIP(has ? "this CPU has AMX-INT8 but the OS did not grant the tile state"
                    : "this CPU has no AMX-INT8: the amx set cannot run here");
        return;
    }
    IG_CHECK(strcmp(amx->isa, "amx") == 0, "amx set calls itself %s", amx->isa);
    check_set_equals_reference(amx);
}
#endif

/* Rows of a real model (the bundled cloud model's F32 weights), quantized to every
 * type, through every SIMD set: real value distributions, real row lengths. */
static void test_kernels_equal_reference_on_real_model_rows(void)
{
    ig_err err;
    ig_gguf *g = ig_gguf_open("models/cloud.gguf", &err);
    IG_CHECK(g != NULL, "models/cloud.gguf: %s", g ? "" : err.msg);
    if (!g)
        return;
    ig_rng r = {555};
    int rows_checked = 0;
    for (int64_t ti = 0; ti < ig_gguf_n_tensors(g); ti++) {
        const ig_tensor *t = ig_gguf_tensor_at(g, ti);
        if (t->n_dims != 2 || t->type != IG_TYPE_F32 || t->ne[0] % 32 != 0)
            continue;
        int64_t n = t->ne[0];
        const float *data = t->data;
        /* three rows of each matrix, activations from another row scaled like a
         * normalised hidden state */
        for (int k = 0; k < 3; k++) {
            int64_t row = (int64_t)(ig_rng_next(&r) % (uint64_t)t->ne[1]);
            int64_t xrow = (int64_t)(ig_rng_next(&r) % (uint64_t)t->ne[1]);
            float *xf = malloc(n * sizeof(float));
            for (int64_t i = 0; i < n; i++)
                xf[i] = data[xrow * n + i] * 20.0f;
            const ig_kernels *sets[8];
            int n_simd = simd_sets(sets);
            for (int s = 0; s < n_simd; s++) {
                const ig_kernels *ks = sets[s];
                for (int wi = 0; wi < N_WEIGHT_TYPES; wi++)
                    if (n % ig_type_block_size(WEIGHT_TYPES[wi]) == 0)
                        compare_set(ks, WEIGHT_TYPES[wi], data + row * n, xf, n);
            }
            free(xf);
            rows_checked++;
        }
    }
    IG_CHECK(rows_checked >= 20, "only %d rows of cloud.gguf checked", rows_checked);
    ig_gguf_free(g);
}

/* dequantize(quantize(x)) stays within a per-type bound of x, relative to the rms. */
static void test_quantize_roundtrip_error_is_bounded(void)
{
    ig_rng r = {99};
    const int64_t n = 4096;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    uint8_t *q = malloc(ig_type_row_bytes(IG_TYPE_F32, n));
    fill_normal(&r, x, n, 0.02f);
    struct {
        ig_type t;
        double max_rel_rmse;
    } cases[] = {
        /* measured: f16 0.00021, bf16 0.0017, q8_0 0.0048, q4_0 0.078, q4_k 0.069,
         * q6_k 0.017 (normal data); the bounds leave ~20 % room */
        {IG_TYPE_F32, 0.0},    {IG_TYPE_F16, 0.00026}, {IG_TYPE_BF16, 0.0021},
        {IG_TYPE_Q8_0, 0.0058}, {IG_TYPE_Q4_0, 0.094}, {IG_TYPE_Q4_K, 0.083},
        {IG_TYPE_Q6_K, 0.021},
    };
    double rms = 0;
    for (int64_t i = 0; i < n; i++)
        rms += (double)x[i] * x[i];
    rms = sqrt(rms / n);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ig_quantize_row(cases[c].t, x, q, n);
        ig_kernels_scalar()->to_float[cases[c].t](q, y, n);
        double e = 0;
        for (int64_t i = 0; i < n; i++)
            e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        e = sqrt(e / n) / rms;
        if (getenv("IG_VERBOSE"))
            printf("  %s relative rmse %.5f\n", ig_type_name(cases[c].t), e);
        IG_CHECK(e <= cases[c].max_rel_rmse, "%s: relative rmse %.5f > %.5f",
                 ig_type_name(cases[c].t), e, cases[c].max_rel_rmse);
    }
    free(x), free(y), free(q);
}

static void test_q8_0_block_decodes_as_laid_out(void)
{
    ig_block_q8_0 b;
    b.d = ig_fp32_to_fp16(0.5f);
    for (int j = 0; j < 32; j++)
        b.qs[j] = (int8_t)(j * 8 - 128);
    IG_CHECK(sizeof b == 34, "q8_0 block is %zu bytes", sizeof b);
    float y[32];
    ig_kernels_scalar()->to_float[IG_TYPE_Q8_0](&b, y, 32);
    for (int j = 0; j < 32; j++)
        IG_CHECK(y[j] == 0.5f * (float)(j * 8 - 128), "element %d = %g", j, y[j]);
}

static void test_q4_0_block_decodes_as_laid_out(void)
{
    ig_block_q4_0 b;
    IG_CHECK(sizeof b == 18, "q4_0 block is %zu bytes", sizeof b);
    b.d = ig_fp32_to_fp16(0.25f);
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    const ig_kernels *sets[] = {ig_kernels_scalar(), ig_kernels_best()};
    for (int s = 0; s < 2; s++) {
        sets[s]->to_float[IG_TYPE_Q4_0](&b, y, 32);
        for (int j = 0; j < 16; j++) {
            IG_CHECK(y[j] == 0.25f * (j - 8), "%s low nibble %d = %g", sets[s]->isa, j, y[j]);
            IG_CHECK(y[j + 16] == 0.25f * (7 - j), "%s high nibble %d = %g", sets[s]->isa, j,
                     y[j + 16]);
        }
    }
}

/* GGUF's Q4_K: 8 sub-blocks of 32; 6-bit scale s_j and min m_j; sub-blocks 0-3 keep
 * them in the low 6 bits of bytes j and j + 4, sub-blocks 4-7 keep their low 4 bits in
 * byte j + 4 (scale low, min high) and their top 2 bits in the top bits of bytes j - 4
 * (scale) and j (min). Element 64c + 32h + l is nibble h of qs[32c + l]. */
static void test_q4_k_block_decodes_as_laid_out(void)
{
    ig_block_q4_K b;
    IG_CHECK(sizeof b == 144, "q4_K block is %zu bytes", sizeof b);
    b.d = ig_fp32_to_fp16(0.5f);
    b.dmin = ig_fp32_to_fp16(0.25f);
    int s[8], m[8];
    memset(b.scales, 0, sizeof b.scales);
    for (int j = 0; j < 8; j++) {
        s[j] = 9 * j;      /* 0 .. 63 */
        m[j] = 63 - 8 * j; /* 63 .. 7 */
        if (j < 4) {
            b.scales[j] |= (uint8_t)s[j];
            b.scales[j + 4] |= (uint8_t)m[j];
        } else {
            b.scales[j + 4] = (uint8_t)((s[j] & 15) | ((m[j] & 15) << 4));
            b.scales[j - 4] |= (uint8_t)((s[j] >> 4) << 6);
            b.scales[j] |= (uint8_t)((m[j] >> 4) << 6);
        }
    }
    for (int i = 0; i < 128; i++)
        b.qs[i] = (uint8_t)(i * 7 + 3);
    float y[256];
    const ig_kernels *sets[] = {ig_kernels_scalar(), ig_kernels_best()};
    for (int st = 0; st < 2; st++) {
        sets[st]->to_float[IG_TYPE_Q4_K](&b, y, 256);
        for (int e = 0; e < 256; e++) {
            int c = e / 64, h = (e / 32) % 2, l = e % 32, j = e / 32;
            int q = (b.qs[32 * c + l] >> (4 * h)) & 15;
            float want = 0.5f * (float)s[j] * (float)q - 0.25f * (float)m[j];
            IG_CHECK(fabsf(y[e] - want) <= 1e-6f * fabsf(want), "%s element %d = %g, want %g",
                     sets[st]->isa, e, y[e], want);
        }
    }
}

/* GGUF's Q6_K: element 128h + 32q + l has its low 4 bits in nibble (q >> 1) of
 * ql[64h + 32(q & 1) + l], its high 2 bits at bit 2q of qh[32h + l]; value - 32,
 * times the int8 scale of its group of 16 and d. */
static void test_q6_k_block_decodes_as_laid_out(void)
{
    ig_block_q6_K b;
    IG_CHECK(sizeof b == 210, "q6_K block is %zu bytes", sizeof b);
    b.d = ig_fp32_to_fp16(0.125f);
    for (int i = 0; i < 128; i++)
        b.ql[i] = (uint8_t)(i * 13 + 5);
    for (int i = 0; i < 64; i++)
        b.qh[i] = (uint8_t)(i * 29 + 11);
    for (int g = 0; g < 16; g++)
        b.scales[g] = (int8_t)(g * 17 - 128);
    float y[256];
    const ig_kernels *sets[] = {ig_kernels_scalar(), ig_kernels_best()};
    for (int st = 0; st < 2; st++) {
        sets[st]->to_float[IG_TYPE_Q6_K](&b, y, 256);
        for (int e = 0; e < 256; e++) {
            int h = e / 128, q = (e / 32) % 4, l = e % 32;
            int lo = (b.ql[64 * h + 32 * (q & 1) + l] >> (4 * (q >> 1))) & 15;
            int hi = (b.qh[32 * h + l] >> (2 * q)) & 3;
            float want = 0.125f * (float)b.scales[e / 16] * (float)((lo | (hi << 4)) - 32);
            IG_CHECK(y[e] == want, "%s element %d = %g, want %g", sets[st]->isa, e, y[e], want);
        }
    }
}

/* Values on a block's own grid come back exactly: the quantizers find the scale. */
static void test_quantizers_reproduce_values_already_on_their_grid(void)
{
    ig_rng r = {31337};
    float x[256], y[256];
    uint8_t buf[512];
    /* Q8_0 and Q4_0: x = d * k with integer k covering the code range. */
    for (int j = 0; j < 32; j++)
        x[j] = 0.0625f * (float)((j == 0) ? -127 : rand_range(&r, -126, 127));
    ig_quantize_row(IG_TYPE_Q8_0, x, buf, 32);
    ig_kernels_scalar()->to_float[IG_TYPE_Q8_0](buf, y, 32);
    IG_CHECK(memcmp(x, y, 32 * sizeof(float)) == 0, "q8_0 grid values changed");
    for (int j = 0; j < 32; j++)
        x[j] = 0.5f * (float)((j == 0) ? -8 : rand_range(&r, -8, 7));
    ig_quantize_row(IG_TYPE_Q4_0, x, buf, 32);
    ig_kernels_scalar()->to_float[IG_TYPE_Q4_0](buf, y, 32);
    IG_CHECK(memcmp(x, y, 32 * sizeof(float)) == 0, "q4_0 grid values changed");
}

static void test_f16_bf16_rows_decode_ieee_values(void)
{
    const uint16_t h[4] = {0x3c00, 0xc000, 0x3555, 0x0001}; /* 1, -2, ~1/3, 2^-24 */
    const uint16_t bf[4] = {0x3f80, 0xc000, 0x3eab, 0x0000};
    float y[4];
    ig_kernels_scalar()->to_float[IG_TYPE_F16](h, y, 4);
    IG_CHECK(y[0] == 1.0f && y[1] == -2.0f && fabsf(y[2] - 0.333251953f) < 1e-9f &&
                 y[3] == 0x1p-24f,
             "f16 decode %g %g %g %g", y[0], y[1], y[2], y[3]);
    ig_kernels_scalar()->to_float[IG_TYPE_BF16](bf, y, 4);
    IG_CHECK(y[0] == 1.0f && y[1] == -2.0f && fabsf(y[2] - 0.333984375f) < 1e-9f && y[3] == 0,
             "bf16 decode %g %g %g %g", y[0], y[1], y[2], y[3]);
}

/* ig_matmul equals one vec_dot per output, bit for bit, for every thread count. */
static void test_matmul_equals_vec_dot_at_every_thread_count(void)
{
    ig_rng r = {7};
    const int64_t rows = 67, cols = 512;
    const int64_t toks[] = {1, 3, 8, 70};
    float *wf = malloc(rows * cols * sizeof(float));
    fill_normal(&r, wf, rows * cols, 0.05f);
    const ig_kernels *sets[] = {ig_kernels_scalar(), ig_kernels_best()};
    for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        ig_type wt = WEIGHT_TYPES[ti];
        size_t rb = ig_type_row_bytes(wt, cols);
        uint8_t *w = malloc(rb * rows);
        for (int64_t i = 0; i < rows; i++)
            ig_quantize_row(wt, wf + i * cols, w + i * rb, cols);
        for (size_t s = 0; s < 2; s++) {
            const ig_kernels *k = sets[s];
            for (size_t tk = 0; tk < sizeof toks / sizeof toks[0]; tk++) {
                int64_t n_tok = toks[tk];
                float *x = malloc(n_tok * cols * sizeof(float));
                fill_normal(&r, x, n_tok * cols, 1.0f);
                ig_type vdt = ig_vec_dot_type(wt);
                size_t xrb = ig_type_row_bytes(vdt, cols);
                uint8_t *xq = malloc(xrb * n_tok);
                for (int64_t t = 0; t < n_tok; t++)
                    k->from_float[vdt](x + t * cols, xq + t * xrb, cols);
                float *want = malloc(rows * n_tok * sizeof(float));
                float *y = malloc(rows * n_tok * sizeof(float));
                for (int64_t t = 0; t < n_tok; t++)
                    for (int64_t i = 0; i < rows; i++)
                        k->vec_dot[wt](cols, &want[t * rows + i], w + i * rb, xq + t * xrb);
                size_t sb = ig_matmul_scratch_bytes(wt, cols, n_tok);
                void *scratch = sb ? malloc(sb) : NULL;
                for (int nth = 1; nth <= 3; nth++) {
                    ig_err err;
                    ig_pool *p = ig_pool_new(nth, &err);
                    IG_CHECK(p != NULL, "pool: %s", err.msg);
                    memset(y, 0xff, rows * n_tok * sizeof(float));
                    ig_matmul(p, k, y, w, wt, rows, cols, x, n_tok, scratch);
                    ig_pool_free(p);
                    int bad = 0;
                    for (int64_t i = 0; i < rows * n_tok; i++)
                        bad += memcmp(&y[i], &want[i], sizeof(float)) != 0;
                    IG_CHECK(bad == 0, "%s %s n_tok=%lld threads=%d: %d outputs differ", k->isa,
                             ig_type_name(wt), (long long)n_tok, nth, bad);
                }
                free(scratch), free(x), free(xq), free(want), free(y);
            }
        }
        free(w);
    }
    free(wf);
}

/* ig_matmul_n (one pool pass over several products of one input, as a layer's Q, K, V
 * and Q4_K_M's Q4_K/Q6_K mix use it) gives every output exactly what ig_matmul gives
 * it alone, whatever the thread count, with products of different row counts (not
 * multiples of a tile) and of weight types that need different activation types. */
static void test_fused_matmul_equals_separate_products(void)
{
    ig_rng r = {11};
    const int64_t cols = 512;
    const ig_type types[] = {IG_TYPE_Q4_K, IG_TYPE_Q8_0, IG_TYPE_Q6_K, IG_TYPE_F16};
    const int64_t rows[] = {67, 16, 33, 5};
    const int n = 4;
    const int64_t toks[] = {1, 9};
    uint8_t *w[4];
    for (int i = 0; i < n; i++) {
        float *wf = malloc(rows[i] * cols * sizeof(float));
        fill_normal(&r, wf, rows[i] * cols, 0.05f);
        size_t rb = ig_type_row_bytes(types[i], cols);
        w[i] = malloc(rb * rows[i]);
        for (int64_t j = 0; j < rows[i]; j++)
            ig_quantize_row(types[i], wf + j * cols, w[i] + j * rb, cols);
        free(wf);
    }
    const ig_kernels *sets[] = {ig_kernels_scalar(), ig_kernels_best()};
    for (size_t s = 0; s < 2; s++)
        for (size_t tk = 0; tk < sizeof toks / sizeof toks[0]; tk++) {
            const int64_t n_tok = toks[tk];
            float *x = malloc(n_tok * cols * sizeof(float));
            fill_normal(&r, x, n_tok * cols, 1.0f);
            size_t sb = ig_matmul_n_scratch_bytes(n, types, cols, n_tok);
            IG_CHECK(sb == ig_matmul_scratch_bytes(IG_TYPE_Q4_K, cols, n_tok) +
                               ig_matmul_scratch_bytes(IG_TYPE_Q8_0, cols, n_tok),
                     "scratch %zu: one converted input per activation type", sb);
            void *scratch = malloc(sb);
            float *want[4], *got[4];
            ig_matmul_out outs[4];
            for (int i = 0; i < n; i++) {
                want[i] = malloc(rows[i] * n_tok * sizeof(float));
                got[i] = malloc(rows[i] * n_tok * sizeof(float));
                ig_matmul(NULL, sets[s], want[i], w[i], types[i], rows[i], cols, x, n_tok, scratch);
                outs[i] = (ig_matmul_out){.y = got[i], .w = w[i], .wtype = types[i], .rows = rows[i]};
            }
            for (int nth = 1; nth <= 3; nth++) {
                ig_err err;
                ig_pool *p = ig_pool_new(nth, &err);
                IG_CHECK(p != NULL, "pool: %s", err.msg);
                for (int i = 0; i < n; i++)
                    memset(got[i], 0xff, rows[i] * n_tok * sizeof(float));
                ig_matmul_n(p, sets[s], n, outs, cols, x, n_tok, scratch);
                ig_pool_free(p);
                for (int i = 0; i < n; i++) {
                    int bad = 0;
                    for (int64_t j = 0; j < rows[i] * n_tok; j++)
                        bad += memcmp(&got[i][j], &want[i][j], sizeof(float)) != 0;
                    IG_CHECK(bad == 0, "%s product %d (%s) n_tok=%lld threads=%d: %d outputs differ",
                             sets[s]->isa, i, ig_type_name(types[i]), (long long)n_tok, nth, bad);
                }
            }
            for (int i = 0; i < n; i++)
                free(want[i]), free(got[i]);
            free(scratch), free(x);
        }
    for (int i = 0; i < n; i++)
        free(w[i]);
}

/* Float rows of any length (not only multiples of 8 or 16): every set's vec_dot and
 * ig_matmul (whose tiles must equal vec_dot bit for bit) against the reference. */
static void test_float_kernels_handle_every_row_length(void)
{
    ig_rng r = {77};
    const ig_type types[] = {IG_TYPE_F32, IG_TYPE_F16, IG_TYPE_BF16};
    const ig_kernels *sets[8];
    int n_simd = simd_sets(sets);
    sets[n_simd++] = ig_kernels_scalar();
    const int64_t rows = 5, n_tok = 3;
    for (int64_t n = 1; n <= 70; n++) {
        float wf[5 * 70], x[3 * 70], y[15], want[15];
        fill_normal(&r, wf, rows * n, 0.1f);
        fill_normal(&r, x, n_tok * n, 1.0f);
        for (size_t ti = 0; ti < 3; ti++) {
            uint8_t w[5 * 70 * 4];
            size_t rb = ig_type_row_bytes(types[ti], n);
            for (int64_t i = 0; i < rows; i++)
                ig_quantize_row(types[ti], wf + i * n, w + i * rb, n);
            for (int s = 0; s < n_simd; s++) {
                for (int64_t t = 0; t < n_tok; t++)
                    for (int64_t i = 0; i < rows; i++) {
                        sets[s]->vec_dot[types[ti]](n, &want[t * rows + i], w + i * rb, x + t * n);
                        float ref;
                        ig_kernels_scalar()->vec_dot[types[ti]](n, &ref, w + i * rb, x + t * n);
                        double mag = dot_magnitude(types[ti], w + i * rb, x + t * n, n);
                        IG_CHECK(fabs((double)ref - want[t * rows + i]) <= 1e-5 * mag + 1e-30,
                                 "%s %s n=%lld: %g vs %g", sets[s]->isa,
                                 ig_type_name(types[ti]), (long long)n, want[t * rows + i], ref);
                    }
                ig_matmul(NULL, sets[s], y, w, types[ti], rows, n, x, n_tok, NULL);
                IG_CHECK(memcmp(y, want, sizeof(float) * rows * n_tok) == 0,
                         "%s %s n=%lld: matmul differs from vec_dot", sets[s]->isa,
                         ig_type_name(types[ti]), (long long)n);
            }
        }
    }
}

/* Block-32 rows of every length from 1 to 20 blocks: the SIMD tiles take blocks in
 * groups of eight and the rest one by one, so rows that are not a multiple of eight
 * blocks (and rows shorter than one group) must still give, through ig_matmul's tiles
 * of every shape (one token and several; row counts that leave edge rows), exactly
 * what vec_dot gives. */
static void test_block32_tiles_equal_vec_dot_on_rows_of_any_block_count(void)
{
    ig_rng r = {99};
    const ig_type types[] = {IG_TYPE_Q8_0, IG_TYPE_Q4_0};
    const ig_kernels *sets[8];
    int n_sets = simd_sets(sets);
    sets[n_sets++] = ig_kernels_scalar();
    const int64_t rows = 7, n_tok = 6;
    for (int64_t nb = 1; nb <= 20; nb++) {
        int64_t n = nb * 32;
        float wf[7 * 640], x[6 * 640], y[42], want[42];
        fill_normal(&r, wf, rows * n, 0.1f);
        fill_normal(&r, x, n_tok * n, 1.0f);
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            uint8_t w[7 * 680], xq[6 * 680], scratch[6 * 680];
            size_t rb = ig_type_row_bytes(types[ti], n), xb = ig_type_row_bytes(IG_TYPE_Q8_0, n);
            for (int64_t i = 0; i < rows; i++)
                ig_quantize_row(types[ti], wf + i * n, w + i * rb, n);
            for (int s = 0; s < n_sets; s++) {
                for (int64_t t = 0; t < n_tok; t++) {
                    sets[s]->from_float[IG_TYPE_Q8_0](x + t * n, xq + t * xb, n);
                    for (int64_t i = 0; i < rows; i++)
                        sets[s]->vec_dot[types[ti]](n, &want[t * rows + i], w + i * rb, xq + t * xb);
                }
                for (int64_t nt = 1; nt <= n_tok; nt++) {
                    ig_matmul(NULL, sets[s], y, w, types[ti], rows, n, x, nt, scratch);
                    IG_CHECK(memcmp(y, want, sizeof(float) * rows * nt) == 0,
                             "%s %s %lld blocks, %lld tokens: matmul differs from vec_dot",
                             sets[s]->isa, ig_type_name(types[ti]), (long long)nb, (long long)nt);
                }
            }
        }
    }
}

/* K-quant (Q4_K, Q6_K) rows of 1 to 12 blocks against 1 to 17 tokens: every kernel set
 * keeps the reference's arithmetic (exact integer sums per block, the same float
 * expression per block, added in block order), so each output of ig_matmul - whichever
 * tile computes it: a decode row (blocks in groups of four and the rest), a prefill
 * tile of eight tokens, the tokens left over - equals the scalar reference's vec_dot
 * bit for bit. A job resumed on another node (or kernel set) re-prefills what was
 * decoded one token at a time and must get the same numbers. */
static void test_k_quant_tiles_equal_the_reference_bit_for_bit(void)
{
    enum { ROWS = 5, NT = 17, MAXB = 12 };
    ig_rng r = {2024};
    const ig_type types[] = {IG_TYPE_Q4_K, IG_TYPE_Q6_K};
    const ig_kernels *sets[8];
    int n_sets = simd_sets(sets);
    sets[n_sets++] = ig_kernels_scalar();
    float *wf = malloc(sizeof(float) * ROWS * MAXB * 256), *x = malloc(sizeof(float) * NT * MAXB * 256);
    float y[ROWS * NT], want[ROWS * NT];
    size_t xb_max = ig_type_row_bytes(IG_TYPE_Q8_K, MAXB * 256);
    uint8_t *w = malloc(ROWS * ig_type_row_bytes(IG_TYPE_Q6_K, MAXB * 256));
    uint8_t *xq = malloc(NT * xb_max), *scratch = malloc(NT * xb_max);
    for (int64_t nb = 1; nb <= MAXB; nb++) {
        int64_t n = nb * 256;
        fill_normal(&r, wf, ROWS * n, 0.05f);
        fill_normal(&r, x, NT * n, 1.0f);
        size_t xb = ig_type_row_bytes(IG_TYPE_Q8_K, n);
        for (int64_t t = 0; t < NT; t++)
            ig_kernels_scalar()->from_float[IG_TYPE_Q8_K](x + t * n, xq + t * xb, n);
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            size_t rb = ig_type_row_bytes(types[ti], n);
            for (int64_t i = 0; i < ROWS; i++)
                ig_quantize_row(types[ti], wf + i * n, w + i * rb, n);
            for (int64_t t = 0; t < NT; t++)
                for (int64_t i = 0; i < ROWS; i++)
                    ig_kernels_scalar()->vec_dot[types[ti]](n, &want[t * ROWS + i], w + i * rb,
                                                            xq + t * xb);
            for (int s = 0; s < n_sets; s++) {
                for (int64_t nt = 1; nt <= NT; nt += (nt < 9 ? 1 : 8)) {
                    ig_matmul(NULL, sets[s], y, w, types[ti], ROWS, n, x, nt, scratch);
                    int bad = 0;
                    for (int64_t k = 0; k < ROWS * nt; k++)
                        bad += memcmp(&y[k], &want[k], sizeof(float)) != 0;
                    IG_CHECK(bad == 0, "%s %s %lld blocks, %lld tokens: %d outputs differ from the reference",
                             sets[s]->isa, ig_type_name(types[ti]), (long long)nb, (long long)nt, bad);
                }
            }
        }
    }
    free(wf), free(x), free(w), free(xq), free(scratch);
}

#include <pthread.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int hits[8];
    int n_seen;
} pool_probe;

static void probe_fn(void *arg, int ith, int nth)
{
    pool_probe *p = arg;
    __atomic_fetch_add(&p->hits[ith], 1, __ATOMIC_RELAXED);
    p->n_seen = nth;
}

static void test_pool_runs_every_thread_index_once_per_run(void)
{
    for (int nth = 1; nth <= 4; nth++) {
        ig_err err;
        ig_pool *p = ig_pool_new(nth, &err);
        IG_CHECK(p && ig_pool_size(p) == nth, "pool of %d", nth);
        pool_probe probe = {{0}, 0};
        for (int run = 0; run < 1000; run++)
            ig_pool_run(p, probe_fn, &probe);
        for (int i = 0; i < nth; i++)
            IG_CHECK(probe.hits[i] == 1000, "thread %d ran %d times", i, probe.hits[i]);
        IG_CHECK(probe.n_seen == nth, "n_threads passed %d", probe.n_seen);
        ig_pool_free(p);
    }
    ig_err err;
    IG_CHECK(ig_pool_new(0, &err) == NULL && err.code == IG_ERR_INVALID, "0 threads refused");
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void test_idle_pool_sleeps_instead_of_spinning(void)
{
    ig_err err;
    ig_pool *p = ig_pool_new(4, &err);
    pool_probe probe = {{0}, 0};
    ig_pool_run(p, probe_fn, &probe); /* workers have run once, then go idle */
    double c0 = cpu_seconds();
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double used = cpu_seconds() - c0;
    /* Three idle workers for 0.3 s: spinning would burn ~0.9 s of CPU. */
    IG_CHECK(used < 0.05, "idle pool used %.3f s of CPU in 0.3 s", used);
    ig_pool_run(p, probe_fn, &probe);
    IG_CHECK(probe.hits[3] == 2, "pool works after sleeping");
    ig_pool_free(p);
}

#if defined(__aarch64__)
static void test_neon_set_uses_dot_product_instructions_when_the_cpu_has_them(void)
{
    const ig_kernels *neon = ig_kernels_by_name("neon");
    ig_kernels base = *ig_kernels_scalar();
    ig_kernels_fill_neon(&base);
    bool differs = neon->vec_dot[IG_TYPE_Q8_0] != base.vec_dot[IG_TYPE_Q8_0];
    IG_CHECK(differs == ig_cpu_has_dotprod(), "dotprod %d but set differs %d",
             ig_cpu_has_dotprod(), differs);
    if (!ig_cpu_has_dotprod())
        IG_SKIP("this CPU lacks the ARMv8.2 dot-product instructions; SDOT kernels untested");
}
#endif

/* The exponential of the softmax and SwiGLU (forward.c) is its own fixed sequence of
 * float operations, so every kernel set and CPU computes the same attention and FFN:
 * it must still be expf, to within one ulp, over [-87, 88] (the softmax gives it
 * s - max <= 0, SwiGLU -g of either sign), exactly 1 at 0, +0 below -87 (where
 * e^x < 2^-125) and at -inf, +inf above 88. */
static void test_exp_is_expf_within_one_ulp(void)
{
    int worst = 0;
    float worst_x = 0.0f;
    /* every 997th float of each sign, from 0 out to -87 and to 88 (the bit patterns
     * rise as the magnitudes do): ~2.2 M of them, every binade */
    for (int sign = 0; sign < 2; sign++)
        for (uint32_t bits = sign ? 0x80000000u : 0u;; bits += 997) {
            float x;
            memcpy(&x, &bits, 4);
            if (!(x > -87.0f && x <= 88.0f))
                break;
            float v[8] = {x, x, x, x, x, x, x, x}, e = expf(x);
            ig_exp8(v);
            int32_t a, b;
            memcpy(&a, &v[3], 4);
            memcpy(&b, &e, 4);
            int d = a > b ? a - b : b - a;
            if (d > worst)
                worst = d, worst_x = x;
        }
    IG_CHECK(worst <= 1, "ig_exp8 is %d ulp from expf at %.9g", worst, (double)worst_x);
    float v[8] = {0.0f, -0.0f, -87.5f, -1000.0f, -INFINITY, 88.5f, INFINITY, 1e-30f};
    ig_exp8(v);
    IG_CHECK(v[0] == 1.0f && v[1] == 1.0f && v[7] == 1.0f, "e^0 = %g, %g, %g", (double)v[0],
             (double)v[1], (double)v[7]);
    IG_CHECK(v[2] == 0.0f && v[3] == 0.0f && v[4] == 0.0f && !signbit(v[2]), "below -87: %g %g %g",
             (double)v[2], (double)v[3], (double)v[4]);
    IG_CHECK(isinf(v[5]) && v[5] > 0 && isinf(v[6]) && v[6] > 0, "above 88: %g %g", (double)v[5],
             (double)v[6]);
}

int main(void)
{
    IG_RUN(test_best_set_is_simd_when_the_cpu_has_it);
#if defined(__x86_64__)
    IG_RUN(test_avx2_set_equals_the_reference_bit_for_bit);
    IG_RUN(test_avx512_set_is_offered_on_avx512_cpus_and_equals_the_reference_bit_for_bit);
    IG_RUN(test_amx_set_is_offered_on_amx_cpus_and_equals_the_reference_bit_for_bit);
#endif
#if defined(__aarch64__)
    IG_RUN(test_neon_set_uses_dot_product_instructions_when_the_cpu_has_them);
#endif
    IG_RUN(test_q8_0_block_decodes_as_laid_out);
    IG_RUN(test_q4_0_block_decodes_as_laid_out);
    IG_RUN(test_q4_k_block_decodes_as_laid_out);
    IG_RUN(test_q6_k_block_decodes_as_laid_out);
    IG_RUN(test_quantizers_reproduce_values_already_on_their_grid);
    IG_RUN(test_f16_bf16_rows_decode_ieee_values);
    IG_RUN(test_quantize_roundtrip_error_is_bounded);
    IG_RUN(test_every_simd_kernel_equals_scalar_reference_on_random_rows);
    IG_RUN(test_integer_kernels_are_exact_when_float_math_is_exact);
    IG_RUN(test_kernels_equal_reference_on_real_model_rows);
    IG_RUN(test_matmul_equals_vec_dot_at_every_thread_count);
    IG_RUN(test_fused_matmul_equals_separate_products);
    IG_RUN(test_float_kernels_handle_every_row_length);
    IG_RUN(test_block32_tiles_equal_vec_dot_on_rows_of_any_block_count);
    IG_RUN(test_k_quant_tiles_equal_the_reference_bit_for_bit);
    IG_RUN(test_pool_runs_every_thread_index_once_per_run);
    IG_RUN(test_idle_pool_sleeps_instead_of_spinning);
    IG_RUN(test_exp_is_expf_within_one_ulp);
    return ig_check_exit();
}
