/*
 * quantize.c — the weight quantizers `model quantize` uses (ig_quantize_row).
 * Quality first: scales are searched to minimise the weighted squared error of each
 * block; the output format is exactly GGUF's. Deterministic and scalar.
 */
#include "kernels.h"

#include <assert.h>
#include <math.h>
#include <string.h>

/* Round to nearest, ties to even (as nearbyintf in the default mode), for |f| < 2^22:
 * adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits. */
static inline int nearest_int(float f)
{
    assert(fabsf(f) < 4194303.0f);
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/*
 * Symmetric search (Q8_0, Q4_0, Q6_K groups): q_i in [-nmax, nmax - 1], x_i ~ s * q_i.
 * For each candidate inverse scale around -nmax / max (max: the element of largest
 * magnitude), round, then take the least-squares s for those q; keep the candidate
 * with the smallest weighted error sum_i w_i (x_i - s q_i)^2. The plain amax scale is
 * one of the candidates, so the result is never worse than it.
 */
static float search_symmetric(int n, int nmax, int qlo, int qhi, const float *x, const float *w,
                              int8_t *q, int n_steps, float step)
{
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < 1e-30f) {
        memset(q, 0, (size_t)n);
        return 0.0f;
    }
    float best_scale = 0.0f;
    double best_err = INFINITY;
    int8_t cand[256];
    assert(n <= 256);
    for (int is = -n_steps; is <= n_steps; is++) {
        float iscale = -((float)nmax + step * (float)is) / max;
        float sumlx = 0.0f, suml2 = 0.0f; /* float: these only rank candidates */
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = l < qlo ? qlo : l > qhi ? qhi : l;
            cand[i] = (int8_t)l;
            sumlx += w[i] * x[i] * (float)l;
            suml2 += w[i] * (float)(l * l);
        }
        if (suml2 <= 0.0f)
            continue;
        float scale = sumlx / suml2;
        /* sum w (x - s q)^2 at the least-squares s, less the constant sum w x^2 */
        double err = -(double)sumlx * sumlx / suml2;
        if (err < best_err) {
            best_err = err;
            best_scale = scale;
            memcpy(q, cand, (size_t)n);
        }
    }
    return best_scale;
}

/* Re-rounds x against a fixed (already stored) scale: the final codes must be those
 * that are best for the scale the file holds, not for the unrounded one. */
static void round_to_scale(int n, int qlo, int qhi, const float *x, float scale, int8_t *q)
{
    float id = scale != 0.0f ? 1.0f / scale : 0.0f;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(x[i] * id);
        q[i] = (int8_t)(l < qlo ? qlo : l > qhi ? qhi : l);
    }
}

/* Importance of each element: llama.cpp's choice for models without an importance
 * matrix (errors on large weights matter more), never zero. */
static void element_weights(int n, const float *x, float *w)
{
    double s2 = 0.0;
    for (int i = 0; i < n; i++)
        s2 += (double)x[i] * x[i];
    float sigma2 = (float)(2.0 * s2 / n);
    for (int i = 0; i < n; i++)
        w[i] = sqrtf(sigma2 + x[i] * x[i]);
}

static void quantize_q8_0(const float *x, ig_block_q8_0 *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * IG_QK8_0;
        float w[IG_QK8_0];
        int8_t q[IG_QK8_0];
        for (int j = 0; j < IG_QK8_0; j++)
            w[j] = 1.0f;
        /* Codes stay in [-127, 127], as every Q8_0 writer produces. */
        float scale = search_symmetric(IG_QK8_0, 127, -127, 127, xb, w, q, 4, 0.25f);
        b[i].d = ig_fp32_to_fp16(scale);
        round_to_scale(IG_QK8_0, -127, 127, xb, ig_fp16_to_fp32(b[i].d), q);
        memcpy(b[i].qs, q, sizeof q);
    }
}

static void quantize_q4_0(const float *x, ig_block_q4_0 *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * IG_QK4_0;
        float w[IG_QK4_0];
        int8_t q[IG_QK4_0];
        element_weights(IG_QK4_0, xb, w);
        float scale = search_symmetric(IG_QK4_0, 8, -8, 7, xb, w, q, 12, 0.1f);
        b[i].d = ig_fp32_to_fp16(scale);
        round_to_scale(IG_QK4_0, -8, 7, xb, ig_fp16_to_fp32(b[i].d), q);
        for (int j = 0; j < IG_QK4_0 / 2; j++)
            b[i].qs[j] = (uint8_t)((q[j] + 8) | ((q[j + 16] + 8) << 4));
    }
}

/*
 * Asymmetric search for a Q4_K sub-block: x_i ~ scale * l_i - min, l_i in [0, nmax].
 * Candidates for the inverse scale around nmax / (max - min); for each, the weighted
 * least-squares (scale, min) pair for those codes (min clamped so 0 is representable).
 * Returns the scale; *the_min receives min (>= 0, subtracted).
 */
/* sum_i w_i (s l_i + m - x_i)^2 less the constant sum_i w_i x_i^2, from the sums. */
static inline double asym_error(double s, double m, double sum_w, double sum_x, double sl,
                                double sl2, double sxl)
{
    return s * s * sl2 + m * m * sum_w + 2.0 * s * m * sl - 2.0 * s * sxl - 2.0 * m * sum_x;
}

static float search_asymmetric(int n, int nmax, const float *x, const float *w, uint8_t *L,
                               float *the_min)
{
    float mn = x[0], mx = x[0];
    double sum_w = 0.0, sum_x = 0.0;
    for (int i = 0; i < n; i++) {
        mn = fminf(mn, x[i]);
        mx = fmaxf(mx, x[i]);
        sum_w += w[i];
        sum_x += (double)w[i] * x[i];
    }
    if (mn > 0.0f)
        mn = 0.0f;
    if (mx <= mn) {
        memset(L, 0, (size_t)n);
        *the_min = -mn;
        return 0.0f;
    }
    float best_scale = (mx - mn) / (float)nmax, best_min = mn;
    double best_err = INFINITY;
    uint8_t cand[32];
    assert(n <= 32);
    for (int is = -10; is <= 20; is++) {
        float iscale = ((float)nmax + 0.1f * (float)is) / (mx - mn);
        float slf = 0.0f, sl2f = 0.0f, sxlf = 0.0f; /* float inside a 32-element block */
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - mn));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            cand[i] = (uint8_t)l;
            slf += w[i] * (float)l;
            sl2f += w[i] * (float)(l * l);
            sxlf += w[i] * (float)l * x[i];
        }
        double sl = slf, sl2 = sl2f, sxl = sxlf;
        double D = sum_w * sl2 - sl * sl;
        if (D <= 0.0)
            continue;
        double scale = (sum_w * sxl - sum_x * sl) / D;
        double min = (sl2 * sum_x - sl * sxl) / D;
        if (min > 0.0) {
            min = 0.0;
            scale = sl2 > 0 ? sxl / sl2 : 0.0;
        }
        double err = asym_error(scale, min, sum_w, sum_x, sl, sl2, sxl);
        if (err < best_err) {
            best_err = err;
            best_scale = (float)scale;
            best_min = (float)min;
            memcpy(L, cand, (size_t)n);
        }
    }
    /* Lloyd-style refinement: re-round against the fitted pair, refit, keep if better. */
    for (int iter = 0; iter < 4 && best_scale > 0.0f; iter++) {
        double sl = 0.0, sl2 = 0.0, sxl = 0.0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int((x[i] - best_min) / best_scale);
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            cand[i] = (uint8_t)l;
            sl += (double)w[i] * l;
            sl2 += (double)w[i] * l * l;
            sxl += (double)w[i] * l * x[i];
        }
        double D = sum_w * sl2 - sl * sl;
        if (D <= 0.0)
            break;
        double scale = (sum_w * sxl - sum_x * sl) / D;
        double min = (sl2 * sum_x - sl * sxl) / D;
        if (min > 0.0) {
            min = 0.0;
            scale = sl2 > 0 ? sxl / sl2 : 0.0;
        }
        double err = asym_error(scale, min, sum_w, sum_x, sl, sl2, sxl);
        if (!(err < best_err))
            break;
        best_err = err;
        best_scale = (float)scale;
        best_min = (float)min;
        memcpy(L, cand, (size_t)n);
    }
    *the_min = -best_min;
    return best_scale;
}

/* Weighted error of a Q4_K sub-block coded with effective scale d and min m. */
static double q4_k_sub_error(const float *x, const float *w, float d, float m, uint8_t *L)
{
    float id = d > 0.0f ? 1.0f / d : 0.0f;
    float err = 0.0f;
    for (int l = 0; l < 32; l++) {
        int q = nearest_int((x[l] + m) * id);
        q = q < 0 ? 0 : q > 15 ? 15 : q;
        if (L)
            L[l] = (uint8_t)q;
        float e = d * (float)q - m - x[l];
        err += w[l] * e * e;
    }
    return err;
}

static void quantize_q4_k(const float *x, ig_block_q4_K *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * IG_QK_K;
        float w[IG_QK_K], scales[8], mins[8], max_scale = 0.0f, max_min = 0.0f;
        uint8_t L[IG_QK_K];
        for (int j = 0; j < 8; j++) {
            const float *xs = xb + 32 * j;
            double s2 = 0.0;
            for (int l = 0; l < 32; l++)
                s2 += (double)xs[l] * xs[l];
            float av = sqrtf((float)(s2 / 32));
            for (int l = 0; l < 32; l++)
                w[32 * j + l] = av + fabsf(xs[l]);
            scales[j] = search_asymmetric(32, 15, xs, w + 32 * j, L + 32 * j, &mins[j]);
            max_scale = fmaxf(max_scale, scales[j]);
            max_min = fmaxf(max_min, mins[j]);
        }
        b[i].d = ig_fp32_to_fp16(max_scale / 63.0f);
        b[i].dmin = ig_fp32_to_fp16(max_min / 63.0f);
        float d = ig_fp16_to_fp32(b[i].d), dmin = ig_fp16_to_fp32(b[i].dmin);
        uint8_t ls[8], lm[8];
        for (int j = 0; j < 8; j++) {
            int s = d > 0.0f ? nearest_int(scales[j] / d) : 0;
            int m = dmin > 0.0f ? nearest_int(mins[j] / dmin) : 0;
            s = s < 0 ? 0 : s > 63 ? 63 : s;
            m = m < 0 ? 0 : m > 63 ? 63 : m;
            /* The 6-bit codes are rounded; their neighbours sometimes fit better. */
            const float *xs = xb + 32 * j;
            const float *ws = w + 32 * j;
            double best = q4_k_sub_error(xs, ws, d * s, dmin * m, NULL);
            int bs = s, bm = m;
            for (int ds = -1; ds <= 1; ds++) {
                for (int dm = -1; dm <= 1; dm++) {
                    int s2 = s + ds, m2 = m + dm;
                    if ((ds == 0 && dm == 0) || s2 < 0 || s2 > 63 || m2 < 0 || m2 > 63)
                        continue;
                    double e = q4_k_sub_error(xs, ws, d * s2, dmin * m2, NULL);
                    if (e < best) {
                        best = e;
                        bs = s2;
                        bm = m2;
                    }
                }
            }
            ls[j] = (uint8_t)bs;
            lm[j] = (uint8_t)bm;
            q4_k_sub_error(xs, ws, d * bs, dmin * bm, L + 32 * j);
        }
        memset(b[i].scales, 0, sizeof b[i].scales);
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                b[i].scales[j] = ls[j];
                b[i].scales[j + 4] = lm[j];
            } else {
                b[i].scales[j + 4] = (uint8_t)((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
                b[i].scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
                b[i].scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
            }
        }
        uint8_t *q = b[i].qs;
        for (int j = 0; j < IG_QK_K; j += 64) {
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
    }
}

static double q6_k_group_error(const float *x, const float *w, float d, int8_t *q)
{
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    float err = 0.0f;
    for (int l = 0; l < 16; l++) {
        int v = nearest_int(x[l] * id);
        v = v < -32 ? -32 : v > 31 ? 31 : v;
        if (q)
            q[l] = (int8_t)v;
        float e = d * (float)v - x[l];
        err += w[l] * e * e;
    }
    return err;
}

static void quantize_q6_k(const float *x, ig_block_q6_K *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * IG_QK_K;
        float w[IG_QK_K], scales[16], max_scale = 0.0f, amax_scale = 0.0f;
        int8_t q[IG_QK_K];
        for (int j = 0; j < IG_QK_K; j++)
            w[j] = xb[j] * xb[j] + 1e-30f;
        for (int g = 0; g < 16; g++) {
            scales[g] = search_symmetric(16, 32, -32, 31, xb + 16 * g, w + 16 * g, q + 16 * g, 9, 0.1f);
            if (fabsf(scales[g]) > amax_scale) {
                amax_scale = fabsf(scales[g]);
                max_scale = scales[g];
            }
        }
        if (amax_scale == 0.0f) {
            memset(b[i].ql, 0x00, sizeof b[i].ql);
            memset(b[i].qh, 0xaa, sizeof b[i].qh); /* every code 32: value 0 */
            memset(b[i].scales, 0, sizeof b[i].scales);
            b[i].d = 0;
            continue;
        }
        float iscale = -128.0f / max_scale;
        b[i].d = ig_fp32_to_fp16(1.0f / iscale);
        float d = ig_fp16_to_fp32(b[i].d);
        for (int g = 0; g < 16; g++) {
            int s = nearest_int(iscale * scales[g]);
            s = s > 127 ? 127 : s < -128 ? -128 : s;
            const float *xs = xb + 16 * g, *ws = w + 16 * g;
            double best = q6_k_group_error(xs, ws, d * s, NULL);
            int bs = s;
            for (int ds = -1; ds <= 1; ds += 2) {
                int s2 = s + ds;
                if (s2 < -128 || s2 > 127)
                    continue;
                double e = q6_k_group_error(xs, ws, d * s2, NULL);
                if (e < best) {
                    best = e;
                    bs = s2;
                }
            }
            b[i].scales[g] = (int8_t)bs;
            q6_k_group_error(xs, ws, d * bs, q + 16 * g);
        }
        uint8_t L[IG_QK_K];
        for (int j = 0; j < IG_QK_K; j++)
            L[j] = (uint8_t)(q[j] + 32);
        uint8_t *ql = b[i].ql, *qh = b[i].qh;
        for (int j = 0; j < IG_QK_K; j += 128) {
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((L[j + l] & 0x0f) | ((L[j + l + 64] & 0x0f) << 4));
                ql[l + 32] = (uint8_t)((L[j + l + 32] & 0x0f) | ((L[j + l + 96] & 0x0f) << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
}

void ig_quantize_row(ig_type t, const float *x, void *y, int64_t n)
{
    int64_t bs = ig_type_block_size(t);
    assert(bs > 0 && n % bs == 0);
    switch (t) {
    case IG_TYPE_F32:
        memcpy(y, x, (size_t)n * sizeof(float));
        break;
    case IG_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)y)[i] = ig_fp32_to_fp16(x[i]);
        break;
    case IG_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)y)[i] = ig_fp32_to_bf16(x[i]);
        break;
    case IG_TYPE_Q8_0:
        quantize_q8_0(x, y, n / bs);
        break;
    case IG_TYPE_Q4_0:
        quantize_q4_0(x, y, n / bs);
        break;
    case IG_TYPE_Q4_K:
        quantize_q4_k(x, y, n / bs);
        break;
    case IG_TYPE_Q6_K:
        quantize_q6_k(x, y, n / bs);
        break;
    case IG_TYPE_Q8_K:
        ig_kernels_scalar()->from_float[IG_TYPE_Q8_K](x, y, n);
        break;
    default:
        assert(!"ig_quantize_row: unsupported type");
    }
}
