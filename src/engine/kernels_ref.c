/*
 * kernels_ref.c — the scalar reference kernels: block-format conversions and dot
 * products for every weight type. These define the results; the SIMD kernels
 * (kernels_avx2.c, kernels_neon.c) are tested against them.
 *
 * Conventions every implementation follows so results can be compared honestly:
 *   - Activation quantizers (Q8_0, Q8_K) use d = amax / 127, id = d ? 1 / d : 0 and
 *     round q = x * id to nearest, ties to even (nearbyintf in the default mode).
 *   - Integer dot products form each block's (or sub-block's) integer sum exactly;
 *     only the float combination of those sums may differ in order between kernels.
 *   - Float dot products (F32, F16, BF16) may differ only in summation order.
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

/* ---- conversions --------------------------------------------------------- */

static void f32_to_float(const void *x, float *y, int64_t n)
{
    memcpy(y, x, (size_t)n * sizeof(float));
}

static void f32_from_float(const float *x, void *y, int64_t n)
{
    memcpy(y, x, (size_t)n * sizeof(float));
}

static void f16_to_float(const void *x, float *y, int64_t n)
{
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++)
        y[i] = ig_fp16_to_fp32(h[i]);
}

static void f16_from_float(const float *x, void *y, int64_t n)
{
    uint16_t *h = y;
    for (int64_t i = 0; i < n; i++)
        h[i] = ig_fp32_to_fp16(x[i]);
}

static void bf16_to_float(const void *x, float *y, int64_t n)
{
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++)
        y[i] = ig_bf16_to_fp32(h[i]);
}

static void bf16_from_float(const float *x, void *y, int64_t n)
{
    uint16_t *h = y;
    for (int64_t i = 0; i < n; i++)
        h[i] = ig_fp32_to_bf16(x[i]);
}

static void q8_0_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q8_0 *b = x;
    for (int64_t i = 0; i < n / IG_QK8_0; i++) {
        float d = ig_fp16_to_fp32(b[i].d);
        for (int j = 0; j < IG_QK8_0; j++)
            y[i * IG_QK8_0 + j] = d * (float)b[i].qs[j];
    }
}

void ig_ref_q8_0_from_float(const float *x, void *y, int64_t n)
{
    ig_block_q8_0 *b = y;
    for (int64_t i = 0; i < n / IG_QK8_0; i++) {
        const float *xb = x + i * IG_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < IG_QK8_0; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = ig_fp32_to_fp16(d);
        for (int j = 0; j < IG_QK8_0; j++)
            b[i].qs[j] = (int8_t)nearbyintf(xb[j] * id);
    }
}

static void q4_0_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q4_0 *b = x;
    for (int64_t i = 0; i < n / IG_QK4_0; i++) {
        float d = ig_fp16_to_fp32(b[i].d);
        for (int j = 0; j < IG_QK4_0 / 2; j++) {
            y[i * IG_QK4_0 + j] = d * (float)((b[i].qs[j] & 0x0f) - 8);
            y[i * IG_QK4_0 + j + 16] = d * (float)((b[i].qs[j] >> 4) - 8);
        }
    }
}

/* The 6-bit scale and min of sub-block j of a Q4_K block (ggml's packing: sub-blocks
 * 0-3 in the low 6 bits of bytes 0-3 / 4-7; 4-7 split over bytes 8-11 and the top
 * two bits of bytes 0-7). */
static inline void q4_k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void ig_q4_k_unpack_scales(const uint8_t *scales, uint8_t sc[8], uint8_t m[8])
{
    for (int j = 0; j < 8; j++)
        q4_k_scale_min(j, scales, &sc[j], &m[j]);
}

static void q4_k_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q4_K *b = x;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        float d = ig_fp16_to_fp32(b[i].d);
        float dmin = ig_fp16_to_fp32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        float *out = y + i * IG_QK_K;
        for (int j = 0; j < IG_QK_K; j += 64) {
            uint8_t sc, m;
            q4_k_scale_min(j / 32, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            q4_k_scale_min(j / 32 + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++)
                out[j + l] = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++)
                out[j + 32 + l] = d2 * (float)(q[l] >> 4) - m2;
            q += 32;
        }
    }
}

/* Q6_K value l of a block as a signed integer in [-32, 31]. */
static inline int q6_k_value(const ig_block_q6_K *b, int idx)
{
    int half = idx / 128, r = idx % 128, quarter = r / 32, l = r % 32;
    const uint8_t *ql = b->ql + half * 64;
    const uint8_t *qh = b->qh + half * 32;
    int lo = (quarter & 1) ? ql[l + 32] : ql[l];
    lo = (quarter & 2) ? (lo >> 4) : (lo & 0x0f);
    int hi = (qh[l] >> (2 * quarter)) & 3;
    return (lo | (hi << 4)) - 32;
}

static void q6_k_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q6_K *b = x;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        float d = ig_fp16_to_fp32(b[i].d);
        for (int j = 0; j < IG_QK_K; j++)
            y[i * IG_QK_K + j] = d * (float)b[i].scales[j / 16] * (float)q6_k_value(&b[i], j);
    }
}

static void q8_k_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q8_K *b = x;
    for (int64_t i = 0; i < n / IG_QK_K; i++)
        for (int j = 0; j < IG_QK_K; j++)
            y[i * IG_QK_K + j] = b[i].d * (float)b[i].qs[j];
}

void ig_ref_q8_k_from_float(const float *x, void *y, int64_t n)
{
    ig_block_q8_K *b = y;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        const float *xb = x + i * IG_QK_K;
        float amax = 0.0f;
        for (int j = 0; j < IG_QK_K; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = d;
        for (int j = 0; j < IG_QK_K; j++)
            b[i].qs[j] = (int8_t)nearbyintf(xb[j] * id);
        for (int g = 0; g < IG_QK_K / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += b[i].qs[g * 16 + j];
            b[i].bsums[g] = (int16_t)s;
        }
    }
}

/* ---- dot products ------------------------------------------------------- */

/* Float dot products accumulate in double: the reference is the exact-ish value the
 * SIMD kernels' float accumulators are compared against. */
static void f32_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const float *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)a[i] * (double)b[i];
    *s = (float)sum;
}

static void f16_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const uint16_t *a = w;
    const float *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)ig_fp16_to_fp32(a[i]) * (double)b[i];
    *s = (float)sum;
}

static void bf16_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const uint16_t *a = w;
    const float *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)ig_bf16_to_fp32(a[i]) * (double)b[i];
    *s = (float)sum;
}

static void q8_0_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q8_0 *a = w, *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK8_0; i++) {
        int isum = 0;
        for (int j = 0; j < IG_QK8_0; j++)
            isum += a[i].qs[j] * b[i].qs[j];
        sum += (float)isum * (ig_fp16_to_fp32(a[i].d) * ig_fp16_to_fp32(b[i].d));
    }
    *s = sum;
}

static void q4_0_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q4_0 *a = w;
    const ig_block_q8_0 *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK4_0; i++) {
        int isum = 0;
        for (int j = 0; j < IG_QK4_0 / 2; j++) {
            isum += ((a[i].qs[j] & 0x0f) - 8) * b[i].qs[j];
            isum += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + 16];
        }
        sum += (float)isum * (ig_fp16_to_fp32(a[i].d) * ig_fp16_to_fp32(b[i].d));
    }
    *s = sum;
}

/* Per block: d * dx * sum_j sc_j * <q_j, x_j>  -  dmin * dx * sum_j m_j * sum(x_j),
 * the second sum taken from the activation's bsums. */
static void q4_k_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q4_K *a = w;
    const ig_block_q8_K *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        uint8_t sc[8], m[8];
        ig_q4_k_unpack_scales(a[i].scales, sc, m);
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = a[i].qs + (j / 2) * 32;
            const int8_t *y = b[i].qs + j * 32;
            int dot = 0;
            for (int l = 0; l < 32; l++)
                dot += ((j & 1) ? (q[l] >> 4) : (q[l] & 0x0f)) * y[l];
            isum += sc[j] * dot;
            msum += m[j] * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
        }
        float dx = b[i].d;
        sum += ig_fp16_to_fp32(a[i].d) * dx * (float)isum -
               ig_fp16_to_fp32(a[i].dmin) * dx * (float)msum;
    }
    *s = sum;
}

static void q6_k_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q6_K *a = w;
    const ig_block_q8_K *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        int isum = 0;
        for (int g = 0; g < 16; g++) {
            int dot = 0;
            for (int l = 0; l < 16; l++)
                dot += q6_k_value(&a[i], g * 16 + l) * b[i].qs[g * 16 + l];
            isum += a[i].scales[g] * dot;
        }
        sum += ig_fp16_to_fp32(a[i].d) * b[i].d * (float)isum;
    }
    *s = sum;
}

/* ---- the set ------------------------------------------------------------- */

static void q4_0_from_float(const float *x, void *y, int64_t n)
{
    ig_quantize_row(IG_TYPE_Q4_0, x, y, n);
}

static void q4_k_from_float(const float *x, void *y, int64_t n)
{
    ig_quantize_row(IG_TYPE_Q4_K, x, y, n);
}

static void q6_k_from_float(const float *x, void *y, int64_t n)
{
    ig_quantize_row(IG_TYPE_Q6_K, x, y, n);
}

void ig_kernels_fill_ref(ig_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->isa = "scalar";
    k->vec_dot[IG_TYPE_F32] = f32_vec_dot;
    k->vec_dot[IG_TYPE_F16] = f16_vec_dot;
    k->vec_dot[IG_TYPE_BF16] = bf16_vec_dot;
    k->vec_dot[IG_TYPE_Q8_0] = q8_0_vec_dot;
    k->vec_dot[IG_TYPE_Q4_0] = q4_0_vec_dot;
    k->vec_dot[IG_TYPE_Q4_K] = q4_k_vec_dot;
    k->vec_dot[IG_TYPE_Q6_K] = q6_k_vec_dot;

    k->from_float[IG_TYPE_F32] = f32_from_float;
    k->from_float[IG_TYPE_F16] = f16_from_float;
    k->from_float[IG_TYPE_BF16] = bf16_from_float;
    k->from_float[IG_TYPE_Q8_0] = ig_ref_q8_0_from_float;
    k->from_float[IG_TYPE_Q4_0] = q4_0_from_float;
    k->from_float[IG_TYPE_Q4_K] = q4_k_from_float;
    k->from_float[IG_TYPE_Q6_K] = q6_k_from_float;
    k->from_float[IG_TYPE_Q8_K] = ig_ref_q8_k_from_float;

    k->to_float[IG_TYPE_F32] = f32_to_float;
    k->to_float[IG_TYPE_F16] = f16_to_float;
    k->to_float[IG_TYPE_BF16] = bf16_to_float;
    k->to_float[IG_TYPE_Q8_0] = q8_0_to_float;
    k->to_float[IG_TYPE_Q4_0] = q4_0_to_float;
    k->to_float[IG_TYPE_Q4_K] = q4_k_to_float;
    k->to_float[IG_TYPE_Q6_K] = q6_k_to_float;
    k->to_float[IG_TYPE_Q8_K] = q8_k_to_float;
}
