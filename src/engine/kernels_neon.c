/*
 * kernels_neon.c — NEON (AArch64 Advanced SIMD) kernels: the ARM computers in cars.
 * Built only for aarch64, where NEON is part of the base architecture; tested under
 * qemu-user against the scalar reference (scripts/test-arm.sh).
 *
 * The integer dot products form each block's exact integer sum with widening
 * multiplies (int8 x int8 -> int16 pairs -> int32), then do the reference's float
 * arithmetic in the reference's order, so they equal the reference bit for bit.
 * The float dot products (F32/F16/BF16) differ from it only in summation order.
 */
#include "kernels.h"

#include <arm_neon.h>
#include <asm/hwcap.h>
#include <string.h>
#include <sys/auxv.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* a * b + c must stay two roundings, as in the reference */
#endif

/* ---- helpers ------------------------------------------------------------- */

/* acc += pairwise sums of a[i] * b[i] over 16 int8 lanes. Exact: each int16 lane
 * holds two products of at most 128 * 127. */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_high_s8(p, a, b);
    return vpadalq_s16(acc, p);
}

static inline int dot32(const int8_t *a, const int8_t *b)
{
    int32x4_t acc = vdupq_n_s32(0);
    acc = dot16(acc, vld1q_s8(a), vld1q_s8(b));
    acc = dot16(acc, vld1q_s8(a + 16), vld1q_s8(b + 16));
    return vaddvq_s32(acc);
}

static inline float fp16(uint16_t h)
{
    return ig_fp16_to_fp32(h);
}

static inline float32x4_t load_f16x4(const uint16_t *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

static inline float32x4_t load_bf16x4(const uint16_t *p)
{
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

/* ---- float types ----------------------------------------------------------- */

static void f32_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const float *a = w, *b = x;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        acc2 = vfmaq_f32(acc2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        acc3 = vfmaq_f32(acc3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++)
        sum += a[i] * b[i];
    *s = sum;
}

static void f16_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const uint16_t *a = w;
    const float *b = x;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = vfmaq_f32(acc0, load_f16x4(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, load_f16x4(a + i + 4), vld1q_f32(b + i + 4));
        acc2 = vfmaq_f32(acc2, load_f16x4(a + i + 8), vld1q_f32(b + i + 8));
        acc3 = vfmaq_f32(acc3, load_f16x4(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        acc0 = vfmaq_f32(acc0, load_f16x4(a + i), vld1q_f32(b + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++)
        sum += fp16(a[i]) * b[i];
    *s = sum;
}

static void bf16_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const uint16_t *a = w;
    const float *b = x;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = vfmaq_f32(acc0, load_bf16x4(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, load_bf16x4(a + i + 4), vld1q_f32(b + i + 4));
        acc2 = vfmaq_f32(acc2, load_bf16x4(a + i + 8), vld1q_f32(b + i + 8));
        acc3 = vfmaq_f32(acc3, load_bf16x4(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        acc0 = vfmaq_f32(acc0, load_bf16x4(a + i), vld1q_f32(b + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++)
        sum += ig_bf16_to_fp32(a[i]) * b[i];
    *s = sum;
}

static void f16_to_float(const void *x, float *y, int64_t n)
{
    const uint16_t *h = x;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, load_f16x4(h + i));
    for (; i < n; i++)
        y[i] = ig_fp16_to_fp32(h[i]);
}

static void bf16_to_float(const void *x, float *y, int64_t n)
{
    const uint16_t *h = x;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, load_bf16x4(h + i));
    for (; i < n; i++)
        y[i] = ig_bf16_to_fp32(h[i]);
}

/* ---- activation quantizers --------------------------------------------------- */

static inline float amax32(const float *x)
{
    float32x4_t m = vabsq_f32(vld1q_f32(x));
    for (int k = 4; k < 32; k += 4)
        m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + k)));
    return vmaxvq_f32(m);
}

/* q = round_to_nearest_even(x * id), as the reference's nearbyintf. */
static inline void quantize32(const float *x, float id, int8_t *out)
{
    for (int k = 0; k < 32; k += 8) {
        int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + k), id));
        int32x4_t b = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + k + 4), id));
        int16x8_t h = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
        vst1_s8(out + k, vqmovn_s16(h));
    }
}

static void q8_0_from_float(const float *x, void *y, int64_t n)
{
    ig_block_q8_0 *b = y;
    for (int64_t i = 0; i < n / IG_QK8_0; i++) {
        const float *xb = x + i * IG_QK8_0;
        float d = amax32(xb) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = ig_fp32_to_fp16(d);
        quantize32(xb, id, b[i].qs);
    }
}

static void q8_k_from_float(const float *x, void *y, int64_t n)
{
    ig_block_q8_K *b = y;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        const float *xb = x + i * IG_QK_K;
        float amax = 0.0f;
        for (int k = 0; k < IG_QK_K; k += 32) {
            float m = amax32(xb + k);
            amax = m > amax ? m : amax;
        }
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = d;
        for (int k = 0; k < IG_QK_K; k += 32)
            quantize32(xb + k, id, b[i].qs + k);
        for (int g = 0; g < IG_QK_K / 16; g++)
            b[i].bsums[g] = (int16_t)vaddlvq_s8(vld1q_s8(b[i].qs + 16 * g));
    }
}

/* ---- block-32 types ------------------------------------------------------- */

static inline int8x16x2_t q4_0_values(const uint8_t *qs)
{
    uint8x16_t v = vld1q_u8(qs);
    int8x16x2_t r;
    r.val[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
    r.val[1] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));
    return r;
}

static void q8_0_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q8_0 *a = w, *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK8_0; i++) {
        int isum = dot32(a[i].qs, b[i].qs);
        sum += (float)isum * (fp16(a[i].d) * fp16(b[i].d));
    }
    *s = sum;
}

static void q4_0_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q4_0 *a = w;
    const ig_block_q8_0 *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK4_0; i++) {
        int8x16x2_t v = q4_0_values(a[i].qs);
        int32x4_t acc = dot16(vdupq_n_s32(0), v.val[0], vld1q_s8(b[i].qs));
        acc = dot16(acc, v.val[1], vld1q_s8(b[i].qs + 16));
        sum += (float)vaddvq_s32(acc) * (fp16(a[i].d) * fp16(b[i].d));
    }
    *s = sum;
}

static void q8_0_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q8_0 *b = x;
    for (int64_t i = 0; i < n / IG_QK8_0; i++) {
        float d = fp16(b[i].d);
        for (int k = 0; k < 32; k += 8) {
            int16x8_t h = vmovl_s8(vld1_s8(b[i].qs + k));
            vst1q_f32(y + i * 32 + k, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))), d));
            vst1q_f32(y + i * 32 + k + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(h)), d));
        }
    }
}

static void q4_0_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q4_0 *b = x;
    for (int64_t i = 0; i < n / IG_QK4_0; i++) {
        float d = fp16(b[i].d);
        int8x16x2_t v = q4_0_values(b[i].qs);
        for (int half = 0; half < 2; half++) {
            int16x8_t lo = vmovl_s8(vget_low_s8(v.val[half]));
            int16x8_t hi = vmovl_high_s8(v.val[half]);
            float *o = y + i * 32 + 16 * half;
            vst1q_f32(o, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
            vst1q_f32(o + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), d));
            vst1q_f32(o + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
            vst1q_f32(o + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), d));
        }
    }
}

/* ---- K-quants -------------------------------------------------------------- */

static void q4_k_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q4_K *a = w;
    const ig_block_q8_K *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        uint8_t sc[8], m[8];
        ig_q4_k_unpack_scales(a[i].scales, sc, m);
        /* mins: sum_j m_j * (bsums[2j] + bsums[2j+1]) */
        int16x8_t pairs = vpaddq_s16(vld1q_s16(b[i].bsums), vld1q_s16(b[i].bsums + 8));
        int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(m)));
        int32x4_t mp = vmull_s16(vget_low_s16(pairs), vget_low_s16(mins));
        mp = vmlal_high_s16(mp, pairs, mins);
        int msum = vaddvq_s32(mp);

        int isum = 0;
        const uint8_t *q = a[i].qs;
        const int8_t *y = b[i].qs;
        for (int j = 0; j < 4; j++) {
            uint8x16_t q0 = vld1q_u8(q + 32 * j), q1 = vld1q_u8(q + 32 * j + 16);
            int8x16_t lo0 = vreinterpretq_s8_u8(vandq_u8(q0, vdupq_n_u8(0x0f)));
            int8x16_t lo1 = vreinterpretq_s8_u8(vandq_u8(q1, vdupq_n_u8(0x0f)));
            int8x16_t hi0 = vreinterpretq_s8_u8(vshrq_n_u8(q0, 4));
            int8x16_t hi1 = vreinterpretq_s8_u8(vshrq_n_u8(q1, 4));
            int32x4_t dl = dot16(vdupq_n_s32(0), lo0, vld1q_s8(y + 64 * j));
            dl = dot16(dl, lo1, vld1q_s8(y + 64 * j + 16));
            int32x4_t dh = dot16(vdupq_n_s32(0), hi0, vld1q_s8(y + 64 * j + 32));
            dh = dot16(dh, hi1, vld1q_s8(y + 64 * j + 48));
            isum += sc[2 * j] * vaddvq_s32(dl) + sc[2 * j + 1] * vaddvq_s32(dh);
        }
        float dx = b[i].d;
        sum += fp16(a[i].d) * dx * (float)isum - fp16(a[i].dmin) * dx * (float)msum;
    }
    *s = sum;
}

/* The 256 signed 6-bit values of a Q6_K block, minus 32, in element order. */
static inline void q6_k_values(const ig_block_q6_K *b, int8_t *out)
{
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        for (int l = 0; l < 32; l += 16) {
            uint8x16_t l0 = vld1q_u8(ql + l), l1 = vld1q_u8(ql + 32 + l);
            uint8x16_t hb = vld1q_u8(qh + l);
            const uint8x16_t m4 = vdupq_n_u8(0x0f), m3 = vdupq_n_u8(0x03);
            uint8x16_t v0 = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4));
            uint8x16_t v1 =
                vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4));
            uint8x16_t v2 = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4));
            uint8x16_t v3 = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4));
            int8_t *o = out + 128 * h + l;
            vst1q_s8(o, vsubq_s8(vreinterpretq_s8_u8(v0), vdupq_n_s8(32)));
            vst1q_s8(o + 32, vsubq_s8(vreinterpretq_s8_u8(v1), vdupq_n_s8(32)));
            vst1q_s8(o + 64, vsubq_s8(vreinterpretq_s8_u8(v2), vdupq_n_s8(32)));
            vst1q_s8(o + 96, vsubq_s8(vreinterpretq_s8_u8(v3), vdupq_n_s8(32)));
        }
    }
}

static void q6_k_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q6_K *a = w;
    const ig_block_q8_K *b = x;
    float sum = 0.0f;
    int8_t v[IG_QK_K];
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        q6_k_values(&a[i], v);
        int32x4_t acc = vdupq_n_s32(0);
        for (int g = 0; g < 16; g += 4) {
            int32x4_t d4;
            int dots[4];
            for (int k = 0; k < 4; k++) {
                int16x8_t p = vmull_s8(vld1_s8(v + 16 * (g + k)), vld1_s8(b[i].qs + 16 * (g + k)));
                p = vmlal_s8(p, vld1_s8(v + 16 * (g + k) + 8), vld1_s8(b[i].qs + 16 * (g + k) + 8));
                dots[k] = vaddlvq_s16(p);
            }
            d4 = vld1q_s32(dots);
            int32x4_t sc4 = vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(a[i].scales + g))));
            acc = vmlaq_s32(acc, d4, sc4);
        }
        int isum = vaddvq_s32(acc);
        sum += fp16(a[i].d) * b[i].d * (float)isum;
    }
    *s = sum;
}

static void q4_k_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q4_K *b = x;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        uint8_t sc[8], m[8];
        ig_q4_k_unpack_scales(b[i].scales, sc, m);
        float d = fp16(b[i].d), dmin = fp16(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            float d1 = d * sc[j], m1 = dmin * m[j];
            const uint8_t *q = b[i].qs + 32 * (j / 2);
            for (int l = 0; l < 32; l += 8) {
                uint8x8_t v = vld1_u8(q + l);
                v = (j & 1) ? vshr_n_u8(v, 4) : vand_u8(v, vdup_n_u8(0x0f));
                uint16x8_t h = vmovl_u8(v);
                float *o = y + i * IG_QK_K + 32 * j + l;
                float32x4_t f0 = vcvtq_f32_u32(vmovl_u16(vget_low_u16(h)));
                float32x4_t f1 = vcvtq_f32_u32(vmovl_high_u16(h));
                vst1q_f32(o, vsubq_f32(vmulq_n_f32(f0, d1), vdupq_n_f32(m1)));
                vst1q_f32(o + 4, vsubq_f32(vmulq_n_f32(f1, d1), vdupq_n_f32(m1)));
            }
        }
    }
}

static void q6_k_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q6_K *b = x;
    int8_t v[IG_QK_K];
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        q6_k_values(&b[i], v);
        float d = fp16(b[i].d);
        for (int g = 0; g < 16; g++) {
            float ds = d * (float)b[i].scales[g];
            for (int l = 0; l < 16; l += 8) {
                int16x8_t h = vmovl_s8(vld1_s8(v + 16 * g + l));
                float *o = y + i * IG_QK_K + 16 * g + l;
                vst1q_f32(o, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))), ds));
                vst1q_f32(o + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(h)), ds));
            }
        }
    }
}

/* ---- ARMv8.2 dot-product instructions (SDOT) ------------------------------------ */

/*
 * SDOT sums four int8 products into each int32 lane in one instruction: the same
 * exact integer sums as the widening multiplies above, three times fewer
 * instructions. Used only when the CPU reports it (HWCAP_ASIMDDP): Cortex-A55/A75
 * and later, which is most car computers of the last years.
 */
#define DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

DOTPROD static inline int dp_dot32(const int8_t *a, const int8_t *b)
{
    int32x4_t acc = vdotq_s32(vdupq_n_s32(0), vld1q_s8(a), vld1q_s8(b));
    acc = vdotq_s32(acc, vld1q_s8(a + 16), vld1q_s8(b + 16));
    return vaddvq_s32(acc);
}

DOTPROD static void dp_q8_0_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q8_0 *a = w, *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK8_0; i++) {
        int isum = dp_dot32(a[i].qs, b[i].qs);
        sum += (float)isum * (fp16(a[i].d) * fp16(b[i].d));
    }
    *s = sum;
}

DOTPROD static void dp_q4_0_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q4_0 *a = w;
    const ig_block_q8_0 *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK4_0; i++) {
        int8x16x2_t v = q4_0_values(a[i].qs);
        int32x4_t acc = vdotq_s32(vdupq_n_s32(0), v.val[0], vld1q_s8(b[i].qs));
        acc = vdotq_s32(acc, v.val[1], vld1q_s8(b[i].qs + 16));
        sum += (float)vaddvq_s32(acc) * (fp16(a[i].d) * fp16(b[i].d));
    }
    *s = sum;
}

DOTPROD static void dp_q4_k_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q4_K *a = w;
    const ig_block_q8_K *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        uint8_t sc[8], m[8];
        ig_q4_k_unpack_scales(a[i].scales, sc, m);
        int16x8_t pairs = vpaddq_s16(vld1q_s16(b[i].bsums), vld1q_s16(b[i].bsums + 8));
        int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(m)));
        int32x4_t mp = vmull_s16(vget_low_s16(pairs), vget_low_s16(mins));
        mp = vmlal_high_s16(mp, pairs, mins);
        int msum = vaddvq_s32(mp);

        int32x4_t acc = vdupq_n_s32(0);
        const uint8_t *q = a[i].qs;
        const int8_t *y = b[i].qs;
        for (int j = 0; j < 4; j++) {
            uint8x16_t q0 = vld1q_u8(q + 32 * j), q1 = vld1q_u8(q + 32 * j + 16);
            int8x16_t lo0 = vreinterpretq_s8_u8(vandq_u8(q0, vdupq_n_u8(0x0f)));
            int8x16_t lo1 = vreinterpretq_s8_u8(vandq_u8(q1, vdupq_n_u8(0x0f)));
            int8x16_t hi0 = vreinterpretq_s8_u8(vshrq_n_u8(q0, 4));
            int8x16_t hi1 = vreinterpretq_s8_u8(vshrq_n_u8(q1, 4));
            int32x4_t dl = vdotq_s32(vdupq_n_s32(0), lo0, vld1q_s8(y + 64 * j));
            dl = vdotq_s32(dl, lo1, vld1q_s8(y + 64 * j + 16));
            int32x4_t dh = vdotq_s32(vdupq_n_s32(0), hi0, vld1q_s8(y + 64 * j + 32));
            dh = vdotq_s32(dh, hi1, vld1q_s8(y + 64 * j + 48));
            acc = vmlaq_n_s32(acc, dl, sc[2 * j]);
            acc = vmlaq_n_s32(acc, dh, sc[2 * j + 1]);
        }
        int isum = vaddvq_s32(acc);
        float dx = b[i].d;
        sum += fp16(a[i].d) * dx * (float)isum - fp16(a[i].dmin) * dx * (float)msum;
    }
    *s = sum;
}

DOTPROD static void dp_q6_k_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q6_K *a = w;
    const ig_block_q8_K *b = x;
    float sum = 0.0f;
    int8_t v[IG_QK_K];
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        q6_k_values(&a[i], v);
        int32x4_t acc = vdupq_n_s32(0);
        for (int g = 0; g < 16; g++) {
            int32x4_t d = vdotq_s32(vdupq_n_s32(0), vld1q_s8(v + 16 * g), vld1q_s8(b[i].qs + 16 * g));
            acc = vmlaq_n_s32(acc, d, a[i].scales[g]);
        }
        int isum = vaddvq_s32(acc);
        sum += fp16(a[i].d) * b[i].d * (float)isum;
    }
    *s = sum;
}

void ig_kernels_fill_neon_dotprod(ig_kernels *k)
{
    k->vec_dot[IG_TYPE_Q8_0] = dp_q8_0_vec_dot;
    k->vec_dot[IG_TYPE_Q4_0] = dp_q4_0_vec_dot;
    k->vec_dot[IG_TYPE_Q4_K] = dp_q4_k_vec_dot;
    k->vec_dot[IG_TYPE_Q6_K] = dp_q6_k_vec_dot;
}

bool ig_cpu_has_dotprod(void)
{
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}

/* ---- the set ------------------------------------------------------------- */

void ig_kernels_fill_neon(ig_kernels *k)
{
    k->isa = "neon";
    k->vec_dot[IG_TYPE_F32] = f32_vec_dot;
    k->vec_dot[IG_TYPE_F16] = f16_vec_dot;
    k->vec_dot[IG_TYPE_BF16] = bf16_vec_dot;
    k->vec_dot[IG_TYPE_Q8_0] = q8_0_vec_dot;
    k->vec_dot[IG_TYPE_Q4_0] = q4_0_vec_dot;
    k->vec_dot[IG_TYPE_Q4_K] = q4_k_vec_dot;
    k->vec_dot[IG_TYPE_Q6_K] = q6_k_vec_dot;

    k->from_float[IG_TYPE_Q8_0] = q8_0_from_float;
    k->from_float[IG_TYPE_Q8_K] = q8_k_from_float;

    k->to_float[IG_TYPE_F16] = f16_to_float;
    k->to_float[IG_TYPE_BF16] = bf16_to_float;
    k->to_float[IG_TYPE_Q8_0] = q8_0_to_float;
    k->to_float[IG_TYPE_Q4_0] = q4_0_to_float;
    k->to_float[IG_TYPE_Q4_K] = q4_k_to_float;
    k->to_float[IG_TYPE_Q6_K] = q6_k_to_float;
}
