/*
 * kernels_avx2.c — AVX2 + FMA + F16C kernels, the x86 baseline. Compiled with
 * -mavx2 -mfma -mf16c; used only when CPUID says the CPU and OS support them.
 *
 * Each kernel keeps the reference's arithmetic (kernels_ref.c): conversions are
 * bit-identical, integer dot products form exact integer sums per block, and only
 * the order of float summation differs. For Q4_K and Q6_K even that order matches
 * (each block's float term is added in block order), so those equal the reference.
 *
 * Integer products use the AVX2 idiom maddubs(|w|, sign(x, w)): u8 x s8 pairs summed
 * to s16, exact because |w| <= 128 and |x| <= 127 (activations never hold -128).
 */
#include "kernels.h"

#include <immintrin.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* a * b + c must stay two roundings, as in the reference */
#endif

/* ---- helpers ------------------------------------------------------------- */

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* Eight int32 partial sums of w[i] * x[i] over 32 signed bytes. */
static inline __m256i dot_i8_32(__m256i w, __m256i x)
{
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* The 32 signed 4-bit values of a Q4_0 block (elements 0..15 low nibbles, 16..31 high). */
static inline __m256i q4_0_unpack(const uint8_t *qs)
{
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0f));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0f));
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

static inline float fp16(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* ---- float types ----------------------------------------------------------- */

static void f32_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const float *a = w, *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++)
        sum += a[i] * b[i];
    *s = sum;
}

static inline __m256 load_f16x8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 load_bf16x8(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static void f16_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const uint16_t *a = w;
    const float *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_f16x8(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(load_f16x8(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_f16x8(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load_f16x8(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(load_f16x8(a + i), _mm256_loadu_ps(b + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++)
        sum += fp16(a[i]) * b[i];
    *s = sum;
}

static void bf16_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const uint16_t *a = w;
    const float *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_bf16x8(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(load_bf16x8(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_bf16x8(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load_bf16x8(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(load_bf16x8(a + i), _mm256_loadu_ps(b + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++)
        sum += ig_bf16_to_fp32(a[i]) * b[i];
    *s = sum;
}

static void f16_to_float(const void *x, float *y, int64_t n)
{
    const uint16_t *h = x;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, load_f16x8(h + i));
    for (; i < n; i++)
        y[i] = ig_fp16_to_fp32(h[i]);
}

static void bf16_to_float(const void *x, float *y, int64_t n)
{
    const uint16_t *h = x;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, load_bf16x8(h + i));
    for (; i < n; i++)
        y[i] = ig_bf16_to_fp32(h[i]);
}

/* F16 conversion: F16C rounds to nearest even like ig_fp32_to_fp16. */
static void f16_from_float(const float *x, void *y, int64_t n)
{
    uint16_t *h = y;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        h[i] = ig_fp32_to_fp16(x[i]);
}

/* ---- block-32 types ------------------------------------------------------- */

/* Quantizes 32 floats to int8 with the reference's rule: q = round_even(x * id). */
static inline void quantize32(const float *x, float id, int8_t *out)
{
    __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid);
        v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q[k] = _mm256_cvtps_epi32(v);
    }
    __m256i p01 = _mm256_packs_epi32(q[0], q[1]);
    __m256i p23 = _mm256_packs_epi32(q[2], q[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    /* undo the lane interleaving of the packs */
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)out, p);
}

static inline float amax32(const float *x)
{
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_and_ps(_mm256_loadu_ps(x), mask);
    for (int k = 1; k < 4; k++)
        m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + 8 * k), mask));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
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

static void q8_0_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q8_0 *b = x;
    for (int64_t i = 0; i < n / IG_QK8_0; i++) {
        __m256 d = _mm256_set1_ps(fp16(b[i].d));
        for (int k = 0; k < 4; k++) {
            __m128i q = _mm_loadl_epi64((const __m128i *)(b[i].qs + 8 * k));
            __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
            _mm256_storeu_ps(y + i * IG_QK8_0 + 8 * k, _mm256_mul_ps(d, v));
        }
    }
}

static void q4_0_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q4_0 *b = x;
    for (int64_t i = 0; i < n / IG_QK4_0; i++) {
        __m256 d = _mm256_set1_ps(fp16(b[i].d));
        int8_t q[32];
        _mm256_storeu_si256((__m256i *)q, q4_0_unpack(b[i].qs));
        for (int k = 0; k < 4; k++) {
            __m128i v8 = _mm_loadl_epi64((const __m128i *)(q + 8 * k));
            __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v8));
            _mm256_storeu_ps(y + i * IG_QK4_0 + 8 * k, _mm256_mul_ps(d, v));
        }
    }
}

/*
 * Block-32 dot products take blocks in pairs: t = d0 * p0 + d1 * p1 (one product, one
 * fma), acc += t. The accumulator's dependency chain is then one add per two blocks.
 * The tile kernels below use exactly this sequence per output, so a tile's results
 * equal vec_dot's bit for bit.
 */
#define BLOCK_PAIR_STEP(acc, d0, p0, d1, p1)                                               \
    acc = _mm256_add_ps(acc, _mm256_fmadd_ps(_mm256_set1_ps(d1), _mm256_cvtepi32_ps(p1),    \
                                             _mm256_mul_ps(_mm256_set1_ps(d0),             \
                                                           _mm256_cvtepi32_ps(p0))))
#define BLOCK_LAST_STEP(acc, d0, p0)                                                       \
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d0), _mm256_cvtepi32_ps(p0), acc)

static void q8_0_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q8_0 *a = w, *b = x;
    int64_t nb = n / IG_QK8_0, i = 0;
    __m256 acc = _mm256_setzero_ps();
    for (; i + 2 <= nb; i += 2) {
        __m256i p0 = dot_i8_32(_mm256_loadu_si256((const __m256i *)a[i].qs),
                               _mm256_loadu_si256((const __m256i *)b[i].qs));
        __m256i p1 = dot_i8_32(_mm256_loadu_si256((const __m256i *)a[i + 1].qs),
                               _mm256_loadu_si256((const __m256i *)b[i + 1].qs));
        BLOCK_PAIR_STEP(acc, fp16(a[i].d) * fp16(b[i].d), p0,
                        fp16(a[i + 1].d) * fp16(b[i + 1].d), p1);
    }
    if (i < nb) {
        __m256i p0 = dot_i8_32(_mm256_loadu_si256((const __m256i *)a[i].qs),
                               _mm256_loadu_si256((const __m256i *)b[i].qs));
        BLOCK_LAST_STEP(acc, fp16(a[i].d) * fp16(b[i].d), p0);
    }
    *s = hsum_ps(acc);
}

static void q4_0_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q4_0 *a = w;
    const ig_block_q8_0 *b = x;
    int64_t nb = n / IG_QK4_0, i = 0;
    __m256 acc = _mm256_setzero_ps();
    for (; i + 2 <= nb; i += 2) {
        __m256i p0 = dot_i8_32(q4_0_unpack(a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        __m256i p1 = dot_i8_32(q4_0_unpack(a[i + 1].qs),
                               _mm256_loadu_si256((const __m256i *)b[i + 1].qs));
        BLOCK_PAIR_STEP(acc, fp16(a[i].d) * fp16(b[i].d), p0,
                        fp16(a[i + 1].d) * fp16(b[i + 1].d), p1);
    }
    if (i < nb) {
        __m256i p0 = dot_i8_32(q4_0_unpack(a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        BLOCK_LAST_STEP(acc, fp16(a[i].d) * fp16(b[i].d), p0);
    }
    *s = hsum_ps(acc);
}

/* ---- K-quants -------------------------------------------------------------- */

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
        /* sums of 16: maddubs with ones gives pair sums, madd with ones quads... */
        for (int g = 0; g < IG_QK_K / 16; g += 2) {
            __m256i q = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b[i].qs + 16 * g)));
            __m256i q2 =
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b[i].qs + 16 * g + 16)));
            __m256i s1 = _mm256_madd_epi16(q, _mm256_set1_epi16(1));
            __m256i s2 = _mm256_madd_epi16(q2, _mm256_set1_epi16(1));
            b[i].bsums[g] = (int16_t)hsum_epi32(s1);
            b[i].bsums[g + 1] = (int16_t)hsum_epi32(s2);
        }
    }
}

/* The 8 scales (bytes 0-7) and 8 mins (bytes 8-15) of a Q4_K block, 6 bits each. */
static inline void q4_k_scales(const uint8_t *packed, uint8_t out[16])
{
    uint32_t u[4];
    memcpy(u, packed, 12);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    uint32_t mins_hi = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
    uint32_t mins_lo = u[1] & m6;
    u[1] = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
    u[0] &= m6;
    u[2] = mins_lo;
    u[3] = mins_hi;
    memcpy(out, u, 16);
}

static void q4_k_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q4_K *a = w;
    const ig_block_q8_K *b = x;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        uint8_t sm[16];
        q4_k_scales(a[i].scales, sm);
        /* mins: sum_j m_j * (bsums[2j] + bsums[2j+1]) */
        __m256i bs = _mm256_loadu_si256((const __m256i *)b[i].bsums);
        __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
        __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
        __m128i mprod = _mm_madd_epi16(pairs, mins);
        mprod = _mm_add_epi32(mprod, _mm_shuffle_epi32(mprod, _MM_SHUFFLE(1, 0, 3, 2)));
        mprod = _mm_add_epi32(mprod, _mm_shuffle_epi32(mprod, _MM_SHUFFLE(2, 3, 0, 1)));
        int msum = _mm_cvtsi128_si32(mprod);

        __m256i acc = _mm256_setzero_si256();
        const uint8_t *q = a[i].qs;
        const int8_t *y = b[i].qs;
        for (int j = 0; j < 4; j++) {
            __m256i q4 = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
            __m256i lo = _mm256_and_si256(q4, low4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), low4);
            __m256i p_lo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y + 64 * j)));
            __m256i p_hi =
                _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y + 64 * j + 32)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p_lo, _mm256_set1_epi16(sm[2 * j])));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p_hi, _mm256_set1_epi16(sm[2 * j + 1])));
        }
        int isum = hsum_epi32(acc);
        float dx = b[i].d;
        sum += fp16(a[i].d) * dx * (float)isum - fp16(a[i].dmin) * dx * (float)msum;
    }
    *s = sum;
}

static void q6_k_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    const ig_block_q6_K *a = w;
    const ig_block_q8_K *b = x;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i m2 = _mm256_set1_epi8(0x03);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a[i].scales));
        /* The -32 offset of every value: 32 * sum_g sc_g * bsum_g. */
        __m256i bs = _mm256_loadu_si256((const __m256i *)b[i].bsums);
        int offset = 32 * hsum_epi32(_mm256_madd_epi16(sc16, bs));

        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = a[i].ql + 64 * h, *qh = a[i].qh + 32 * h;
            const int8_t *y = b[i].qs + 128 * h;
            const int8_t *sc = a[i].scales + 8 * h;
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            __m256i v[4];
            v[0] = _mm256_or_si256(_mm256_and_si256(l0, low4),
                                   _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
            v[1] = _mm256_or_si256(_mm256_and_si256(l1, low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
            v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
            v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(v[k], _mm256_loadu_si256((const __m256i *)(y + 32 * k)));
                __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scv));
            }
        }
        int isum = hsum_epi32(acc) - offset;
        sum += fp16(a[i].d) * b[i].d * (float)isum;
    }
    *s = sum;
}

static void q4_k_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q4_K *b = x;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        uint8_t sm[16];
        q4_k_scales(b[i].scales, sm);
        float d = fp16(b[i].d), dmin = fp16(b[i].dmin);
        for (int j = 0; j < 4; j++) {
            __m256i q4 = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * j));
            uint8_t v[64];
            _mm256_storeu_si256((__m256i *)v, _mm256_and_si256(q4, low4));
            _mm256_storeu_si256((__m256i *)(v + 32), _mm256_and_si256(_mm256_srli_epi16(q4, 4), low4));
            for (int half = 0; half < 2; half++) {
                __m256 dv = _mm256_set1_ps(d * sm[2 * j + half]);
                __m256 mv = _mm256_set1_ps(dmin * sm[8 + 2 * j + half]);
                for (int k = 0; k < 4; k++) {
                    __m128i q8 = _mm_loadl_epi64((const __m128i *)(v + 32 * half + 8 * k));
                    __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q8));
                    _mm256_storeu_ps(y + i * IG_QK_K + 64 * j + 32 * half + 8 * k,
                                     _mm256_sub_ps(_mm256_mul_ps(dv, f), mv));
                }
            }
        }
    }
}

/* ---- the set ------------------------------------------------------------- */

void ig_kernels_fill_avx2(ig_kernels *k)
{
    k->isa = "avx2";
    k->vec_dot[IG_TYPE_F32] = f32_vec_dot;
    k->vec_dot[IG_TYPE_F16] = f16_vec_dot;
    k->vec_dot[IG_TYPE_BF16] = bf16_vec_dot;
    k->vec_dot[IG_TYPE_Q8_0] = q8_0_vec_dot;
    k->vec_dot[IG_TYPE_Q4_0] = q4_0_vec_dot;
    k->vec_dot[IG_TYPE_Q4_K] = q4_k_vec_dot;
    k->vec_dot[IG_TYPE_Q6_K] = q6_k_vec_dot;

    k->from_float[IG_TYPE_F16] = f16_from_float;
    k->from_float[IG_TYPE_Q8_0] = q8_0_from_float;
    k->from_float[IG_TYPE_Q8_K] = q8_k_from_float;

    k->to_float[IG_TYPE_F16] = f16_to_float;
    k->to_float[IG_TYPE_BF16] = bf16_to_float;
    k->to_float[IG_TYPE_Q8_0] = q8_0_to_float;
    k->to_float[IG_TYPE_Q4_0] = q4_0_to_float;
    k->to_float[IG_TYPE_Q4_K] = q4_k_to_float;
}
