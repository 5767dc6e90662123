/*
 * quantize.c — the weight quantizers `model quantize` uses (ig_quantize_row).
 * Quality first: scales are searched to minimise the weighted squared error of each
 * block; the output format is exactly GGUF's. Deterministic and scalar.
 */
#include "kernels.h"

#include <assert.h>
#include <math.h>
#include <string.h>

static inline int nearest_int(float f)
{
    return (int)nearbyintf(f);
}

static void quantize_q8_0(const float *x, ig_block_q8_0 *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * IG_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < IG_QK8_0; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = ig_fp32_to_fp16(d);
        for (int j = 0; j < IG_QK8_0; j++)
            b[i].qs[j] = (int8_t)nearest_int(xb[j] * id);
    }
}

static void quantize_q4_0(const float *x, ig_block_q4_0 *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * IG_QK4_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < IG_QK4_0; j++) {
            if (fabsf(xb[j]) > amax) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        float d = max / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = ig_fp32_to_fp16(d);
        for (int j = 0; j < IG_QK4_0 / 2; j++) {
            int q0 = nearest_int(xb[j] * id) + 8, q1 = nearest_int(xb[j + 16] * id) + 8;
            q0 = q0 < 0 ? 0 : q0 > 15 ? 15 : q0;
            q1 = q1 < 0 ? 0 : q1 > 15 ? 15 : q1;
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void quantize_q4_k(const float *x, ig_block_q4_K *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * IG_QK_K;
        float scales[8], mins[8], max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < 8; j++) {
            float mn = 0.0f, mx = 0.0f;
            for (int l = 0; l < 32; l++) {
                mn = fminf(mn, xb[j * 32 + l]);
                mx = fmaxf(mx, xb[j * 32 + l]);
            }
            scales[j] = (mx - mn) / 15.0f;
            mins[j] = -mn;
            max_scale = fmaxf(max_scale, scales[j]);
            max_min = fmaxf(max_min, mins[j]);
        }
        float d = max_scale / 63.0f, dmin = max_min / 63.0f;
        uint8_t ls[8], lm[8];
        for (int j = 0; j < 8; j++) {
            int s = d > 0 ? nearest_int(scales[j] / d) : 0;
            int m = dmin > 0 ? nearest_int(mins[j] / dmin) : 0;
            ls[j] = (uint8_t)(s > 63 ? 63 : s);
            lm[j] = (uint8_t)(m > 63 ? 63 : m);
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
        b[i].d = ig_fp32_to_fp16(d);
        b[i].dmin = ig_fp32_to_fp16(dmin);
        float dq = ig_fp16_to_fp32(b[i].d), dmq = ig_fp16_to_fp32(b[i].dmin);
        uint8_t L[IG_QK_K];
        for (int j = 0; j < 8; j++) {
            float sd = dq * ls[j], sm = dmq * lm[j];
            for (int l = 0; l < 32; l++) {
                int q = sd > 0 ? nearest_int((xb[j * 32 + l] + sm) / sd) : 0;
                L[j * 32 + l] = (uint8_t)(q < 0 ? 0 : q > 15 ? 15 : q);
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

static void quantize_q6_k(const float *x, ig_block_q6_K *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * IG_QK_K;
        float scales[16], max_scale = 0.0f, amax_scale = 0.0f;
        for (int g = 0; g < 16; g++) {
            float amax = 0.0f, max = 0.0f;
            for (int l = 0; l < 16; l++) {
                if (fabsf(xb[g * 16 + l]) > amax) {
                    amax = fabsf(xb[g * 16 + l]);
                    max = xb[g * 16 + l];
                }
            }
            scales[g] = max / -32.0f;
            if (fabsf(scales[g]) > amax_scale) {
                amax_scale = fabsf(scales[g]);
                max_scale = scales[g];
            }
        }
        float iscale = max_scale != 0.0f ? -128.0f / max_scale : 0.0f;
        b[i].d = ig_fp32_to_fp16(max_scale != 0.0f ? 1.0f / iscale : 0.0f);
        float d = ig_fp16_to_fp32(b[i].d);
        uint8_t L[IG_QK_K];
        for (int g = 0; g < 16; g++) {
            int s = nearest_int(iscale * scales[g]);
            s = s > 127 ? 127 : s < -128 ? -128 : s;
            b[i].scales[g] = (int8_t)s;
            float sd = d * (float)s;
            for (int l = 0; l < 16; l++) {
                int q = sd != 0.0f ? nearest_int(xb[g * 16 + l] / sd) : 0;
                q = q < -32 ? -32 : q > 31 ? 31 : q;
                L[g * 16 + l] = (uint8_t)(q + 32);
            }
        }
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
