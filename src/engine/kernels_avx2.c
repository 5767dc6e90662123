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
#include <stddef.h>
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

/* The 32 signed 4-bit values of a Q4_0 block (elements 0..15 low nibbles, 16..31 high). */
static inline __m256i q4_0_unpack(const uint8_t *qs)
{
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0f));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0f));
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

/*
 * Decode (one token) streams the weights from memory once, rows r..r+R-1 of a tile in
 * lock step, a pattern the hardware prefetchers follow poorly (several slow streams in
 * one page). Every tile with T == 1 therefore prefetches each row's current position
 * plus PF_DIST: the weights are contiguous, so over a tile this covers exactly the
 * bytes PF_DIST ahead. Measured here, one core from DRAM: Q4_0 4.3 -> 9 GB/s, Q8_0
 * 7 -> 10.6 GB/s.
 */
#ifndef PF_DIST
#define PF_DIST 4096
#endif

/* Software prefetch of n bytes (a block) into L1, one line at a time; never faults,
 * even past the end of the mapping. */
static inline void prefetch_bytes(const uint8_t *p, size_t n)
{
    for (size_t off = 0; off < n; off += 64)
        _mm_prefetch((const char *)(p + off), _MM_HINT_T0);
}

static inline float fp16(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* ---- float types ----------------------------------------------------------- */

static inline __m256 load_f16x8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 load_bf16x8(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* Eight weights of a float row type as floats (wt: 0 F32, 1 F16, 2 BF16). */
static inline __m256 load_w8(const int wt, const void *w, int64_t i)
{
    if (wt == 0)
        return _mm256_loadu_ps((const float *)w + i);
    if (wt == 1)
        return load_f16x8((const uint16_t *)w + i);
    return load_bf16x8((const uint16_t *)w + i);
}

static inline float load_w1(const int wt, const void *w, int64_t i)
{
    if (wt == 0)
        return ((const float *)w)[i];
    if (wt == 1)
        return ig_fp16_to_fp32(((const uint16_t *)w)[i]);
    return ig_bf16_to_fp32(((const uint16_t *)w)[i]);
}

/*
 * Float dot products (F32, F16, BF16 weights; F32 activations). Per output: two
 * accumulators over alternate chunks of 8 (acc0: chunks 0, 2, 4, ..; acc1: 1, 3, ..),
 * hsum(acc0 + acc1), then the n % 8 tail added in order. vec_dot is the 1 x 1 tile,
 * so tiles (which share the weight loads and conversions across tokens and the
 * activation loads across rows) give every output bit for bit the same value.
 */
#define FT_MAX_R 2
#define FT_MAX_T 2

static inline __attribute__((always_inline)) void
float_tile(const int wt, const int R, const int T, int64_t n, float *y, int64_t ldy,
           const uint8_t *w, size_t ws, const uint8_t *x, size_t xs)
{
    __m256 acc0[FT_MAX_R][FT_MAX_T], acc1[FT_MAX_R][FT_MAX_T];
    for (int r = 0; r < FT_MAX_R; r++)
        for (int t = 0; t < FT_MAX_T; t++)
            acc0[r][t] = acc1[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0[FT_MAX_R], w1[FT_MAX_R];
        for (int r = 0; r < R; r++) {
            if (T == 1)
                _mm_prefetch((const char *)(w + r * ws + PF_DIST) + i * (wt ? 2 : 4), _MM_HINT_T0);
            w0[r] = load_w8(wt, w + r * ws, i);
            w1[r] = load_w8(wt, w + r * ws, i + 8);
        }
        for (int t = 0; t < T; t++) {
            const float *xt = (const float *)(x + t * xs);
            __m256 x0 = _mm256_loadu_ps(xt + i), x1 = _mm256_loadu_ps(xt + i + 8);
            for (int r = 0; r < R; r++) {
                acc0[r][t] = _mm256_fmadd_ps(w0[r], x0, acc0[r][t]);
                acc1[r][t] = _mm256_fmadd_ps(w1[r], x1, acc1[r][t]);
            }
        }
    }
    if (i + 8 <= n) {
        for (int r = 0; r < R; r++) {
            __m256 w0 = load_w8(wt, w + r * ws, i);
            for (int t = 0; t < T; t++)
                acc0[r][t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps((const float *)(x + t * xs) + i),
                                             acc0[r][t]);
        }
        i += 8;
    }
    for (int r = 0; r < R; r++) {
        for (int t = 0; t < T; t++) {
            const float *xt = (const float *)(x + t * xs);
            float sum = hsum_ps(_mm256_add_ps(acc0[r][t], acc1[r][t]));
            for (int64_t j = i; j < n; j++)
                sum += load_w1(wt, w + r * ws, j) * xt[j];
            y[t * ldy + r] = sum;
        }
    }
}

#define FT_TILE_FN(name, wt, R, T)                                                         \
    static void name(int64_t n, float *y, int64_t ldy, const uint8_t *w, size_t ws,        \
                     const uint8_t *x, size_t xs)                                          \
    {                                                                                      \
        float_tile(wt, R, T, n, y, ldy, w, ws, x, xs);                                     \
    }
FT_TILE_FN(f32_tile_1x1, 0, 1, 1)
FT_TILE_FN(f32_tile_2x1, 0, 2, 1)
FT_TILE_FN(f32_tile_1x2, 0, 1, 2)
FT_TILE_FN(f32_tile_2x2, 0, 2, 2)
FT_TILE_FN(f16_tile_1x1, 1, 1, 1)
FT_TILE_FN(f16_tile_2x1, 1, 2, 1)
FT_TILE_FN(f16_tile_1x2, 1, 1, 2)
FT_TILE_FN(f16_tile_2x2, 1, 2, 2)
FT_TILE_FN(bf16_tile_1x1, 2, 1, 1)
FT_TILE_FN(bf16_tile_2x1, 2, 2, 1)
FT_TILE_FN(bf16_tile_1x2, 2, 1, 2)
FT_TILE_FN(bf16_tile_2x2, 2, 2, 2)

static void f32_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    f32_tile_1x1(n, s, 1, w, 0, x, 0);
}

static void f16_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    f16_tile_1x1(n, s, 1, w, 0, x, 0);
}

static void bf16_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    bf16_tile_1x1(n, s, 1, w, 0, x, 0);
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
 * Block-32 dot products (Q8_0 and Q4_0 weights, Q8_0 activations): per block,
 * acc = fma(s, p, acc) with s = d_w * d_x (one float product) and p the block's eight
 * int32 partial sums, identical whichever way they are formed:
 *   Q8_0: maddubs(|w|, sign(x, w))             (per element w * x)
 *   Q4_0: maddubs(nib, x) - maddubs(8, x)      (per element (nib - 8) * x)
 * vec_dot is the 1 x 1 tile, so every tile size gives each output bit for bit the
 * same value; larger tiles only share loads and conversions (and hide the fma
 * latency behind independent accumulators).
 *
 * Where the instructions go: the dot product itself is 4-5 vector operations per
 * block and (row, token) pair, so converting the fp16 scales one block at a time
 * (load, vcvtph2ps, broadcast, multiply per pair) cost nearly as much again. The
 * tiles therefore take blocks in groups of eight: the eight scales of a row (or
 * token), 34 or 18 bytes apart, are packed in general registers (scalar loads and
 * shifts, which leave the vector pipes alone) into one vcvtph2ps, each pair's eight
 * products d_w * d_x are one vector multiply kept on the stack, and each block's fma
 * takes its product with a broadcast load. The products are the same floats as when
 * formed one at a time, which is how the blocks left over (nb % 8) get theirs.
 */
#define B32_MAX_R 4
#define B32_MAX_T 4
#define B32_GROUP 8
/* Loops over a tile's rows, tokens and blocks are unrolled completely so that the
 * accumulators stay in registers. */
#define B32_UNROLL _Pragma("GCC unroll 8")

#ifndef B32_DECODE_GROUPED
#define B32_DECODE_GROUPED 0
#endif
#ifndef B32_PF_DIST
#define B32_PF_DIST PF_DIST
#endif

/* Rows of the one-token (decode) tile, and rows x tokens of the prefill tile; with
 * B32_DECODE_GROUPED the decode tile takes grouped scales too (kept for measuring). */
#ifndef B32_DR
#define B32_DR 1
#endif
#ifndef B32_PR
#define B32_PR 2
#endif
#ifndef B32_PT
#define B32_PT 4
#endif

/* The fp16 scales at p, p + stride, ..., p + 7 * stride as eight floats. */
static inline __m256 fp16x8_strided(const uint8_t *p, size_t stride)
{
    uint64_t lo = 0, hi = 0;
    B32_UNROLL
    for (int k = 0; k < 4; k++) {
        uint16_t a, b;
        memcpy(&a, p + k * stride, 2);
        memcpy(&b, p + (k + 4) * stride, 2);
        uint64_t a64 = a, b64 = b;
        /* keeps the compiler from turning this into vector inserts */
        __asm__("" : "+r"(a64), "+r"(b64));
        lo |= a64 << (16 * k);
        hi |= b64 << (16 * k);
    }
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

/* One block of every (row, token) pair of a tile: wb[r], xb[t] point at the blocks,
 * sc[(r * T + t) * sc_stride] is the pair's scale product. */
static inline __attribute__((always_inline)) void
b32_block(const int is_q4, const int R, const int T, __m256 acc[B32_MAX_R][B32_MAX_T],
          const uint8_t *const *wb, const uint8_t *const *xb, const float *sc, int sc_stride)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i wv[B32_MAX_R], aw[B32_MAX_R];
    B32_UNROLL
    for (int r = 0; r < R; r++) {
        if (is_q4) {
            /* low nibbles in the low half, high nibbles in the high half */
            __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(wb[r] + 2)));
            b = _mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4));
            wv[r] = _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
            aw[r] = wv[r];
        } else {
            wv[r] = _mm256_loadu_si256((const __m256i *)(wb[r] + 2));
            aw[r] = _mm256_sign_epi8(wv[r], wv[r]);
        }
    }
    B32_UNROLL
    for (int t = 0; t < T; t++) {
        __m256i yv = _mm256_loadu_si256((const __m256i *)(xb[t] + 2));
        __m256i c = is_q4 ? _mm256_maddubs_epi16(_mm256_set1_epi8(8), yv) : yv;
        B32_UNROLL
        for (int r = 0; r < R; r++) {
            __m256i p16 = is_q4 ? _mm256_sub_epi16(_mm256_maddubs_epi16(wv[r], yv), c)
                                : _mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(yv, wv[r]));
            __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
            __m256 s = _mm256_broadcast_ss(sc + (r * T + t) * sc_stride);
            acc[r][t] = _mm256_fmadd_ps(s, f, acc[r][t]);
        }
    }
}

static inline __attribute__((always_inline)) void
b32_tile(const int is_q4, const int R, const int T, int64_t nb, float *y, int64_t ldy,
         const uint8_t *w, size_t ws, const uint8_t *x, size_t xs)
{
    const size_t wbs = is_q4 ? sizeof(ig_block_q4_0) : sizeof(ig_block_q8_0);
    const size_t xbs = sizeof(ig_block_q8_0);
    __m256 acc[B32_MAX_R][B32_MAX_T];
    B32_UNROLL
    for (int r = 0; r < B32_MAX_R; r++)
        B32_UNROLL
        for (int t = 0; t < B32_MAX_T; t++)
            acc[r][t] = _mm256_setzero_ps();
    float sc[B32_MAX_R * B32_MAX_T * B32_GROUP] __attribute__((aligned(32)));
    const uint8_t *wb[B32_MAX_R], *xb[B32_MAX_T];
    int64_t i = 0;
    /* One token (decode): one row at a time (B32_DR = 1), scales block by block.
     * Decode streams the weights from memory, and measured in the full model (mmapped
     * weights, 2 threads, A/B runs alternated on this machine) the 4-row tile in lock
     * step decoded Q8_0 at 68-78 tok/s where one row reached 77-89, Q4_0 83-89 vs
     * 89-102; grouped scales (1.6x faster in cache) decoded ~10 % slower from memory:
     * their bursts of scale loads 272 bytes ahead seem to compete with the
     * prefetches. */
    for (; T == 1 && !B32_DECODE_GROUPED && i < nb; i++) {
        B32_UNROLL
        for (int r = 0; r < R; r++) {
            wb[r] = w + r * ws + i * wbs;
            _mm_prefetch((const char *)(wb[r] + B32_PF_DIST), _MM_HINT_T0);
        }
        xb[0] = x + i * xbs;
        uint16_t dh;
        memcpy(&dh, xb[0], 2);
        float dxf = fp16(dh);
        B32_UNROLL
        for (int r = 0; r < R; r++) {
            memcpy(&dh, wb[r], 2);
            sc[r] = fp16(dh) * dxf;
        }
        b32_block(is_q4, R, T, acc, wb, xb, sc, 1);
    }
    for (; i + B32_GROUP <= nb; i += B32_GROUP) {
        __m256 dw[B32_MAX_R];
        B32_UNROLL
        for (int r = 0; r < R; r++) {
            wb[r] = w + r * ws + i * wbs;
            dw[r] = fp16x8_strided(wb[r], wbs);
        }
        B32_UNROLL
        for (int t = 0; t < T; t++) {
            xb[t] = x + t * xs + i * xbs;
            __m256 dx = fp16x8_strided(xb[t], xbs);
            B32_UNROLL
            for (int r = 0; r < R; r++)
                _mm256_store_ps(sc + (r * T + t) * B32_GROUP, _mm256_mul_ps(dw[r], dx));
        }
        B32_UNROLL
        for (int b = 0; b < B32_GROUP; b++) {
            if (T == 1) {
                B32_UNROLL
                for (int r = 0; r < R; r++)
                    _mm_prefetch((const char *)(wb[r] + B32_PF_DIST), _MM_HINT_T0);
            }
            b32_block(is_q4, R, T, acc, wb, xb, sc + b, B32_GROUP);
            B32_UNROLL
            for (int r = 0; r < R; r++)
                wb[r] += wbs;
            B32_UNROLL
            for (int t = 0; t < T; t++)
                xb[t] += xbs;
        }
    }
    for (; i < nb; i++) {
        B32_UNROLL
        for (int r = 0; r < R; r++)
            wb[r] = w + r * ws + i * wbs;
        B32_UNROLL
        for (int t = 0; t < T; t++)
            xb[t] = x + t * xs + i * xbs;
        B32_UNROLL
        for (int r = 0; r < R; r++) {
            uint16_t dh;
            memcpy(&dh, wb[r], 2);
            float dwr = fp16(dh);
            B32_UNROLL
            for (int t = 0; t < T; t++) {
                memcpy(&dh, xb[t], 2);
                sc[r * T + t] = dwr * fp16(dh);
            }
        }
        b32_block(is_q4, R, T, acc, wb, xb, sc, 1);
    }
    B32_UNROLL
    for (int r = 0; r < R; r++)
        B32_UNROLL
        for (int t = 0; t < T; t++)
            y[t * ldy + r] = hsum_ps(acc[r][t]);
}

#define B32_TILE_FN(name, q4, R, T)                                                        \
    static void name(int64_t nb, float *y, int64_t ldy, const uint8_t *w, size_t ws,       \
                     const uint8_t *x, size_t xs)                                          \
    {                                                                                      \
        b32_tile(q4, R, T, nb, y, ldy, w, ws, x, xs);                                      \
    }
B32_TILE_FN(q8_0_tile_1x1, 0, 1, 1)
B32_TILE_FN(q8_0_tile_Dx1, 0, B32_DR, 1)
B32_TILE_FN(q8_0_tile_1xT, 0, 1, B32_PT)
B32_TILE_FN(q8_0_tile_RxT, 0, B32_PR, B32_PT)
B32_TILE_FN(q4_0_tile_1x1, 1, 1, 1)
B32_TILE_FN(q4_0_tile_Dx1, 1, B32_DR, 1)
B32_TILE_FN(q4_0_tile_1xT, 1, 1, B32_PT)
B32_TILE_FN(q4_0_tile_RxT, 1, B32_PR, B32_PT)

/* A tile kernel: outputs y[t * ldy + r] for its fixed R x T, nb blocks per row. */
typedef void (*tile_fn)(int64_t nb, float *y, int64_t ldy, const uint8_t *w, size_t ws,
                        const uint8_t *x, size_t xs);

typedef struct {
    tile_fn t1x1, tRx1, t1xT, tRxT;
    int r_single; /* rows of tRx1 (one token) */
    int r, t;     /* rows and tokens of tRxT; t1xT has t tokens */
} tile_set;

/* Covers nr x nt with R x T tiles (R' x 1 for the tokens left over), edges with the
 * one-row tiles. Every output is computed by some tile of the same arithmetic. */
static void tiles_gemm(const tile_set *ts, int64_t nb, float *y, int64_t ldy, const uint8_t *w,
                       size_t ws, int64_t nr, const uint8_t *x, size_t xs, int64_t nt)
{
    int64_t tt = 0;
    for (; tt + ts->t <= nt; tt += ts->t) {
        int64_t r = 0;
        for (; r + ts->r <= nr; r += ts->r)
            ts->tRxT(nb, y + tt * ldy + r, ldy, w + r * ws, ws, x + tt * xs, xs);
        for (; r < nr; r++)
            ts->t1xT(nb, y + tt * ldy + r, ldy, w + r * ws, ws, x + tt * xs, xs);
    }
    for (; tt < nt; tt++) {
        int64_t r = 0;
        for (; r + ts->r_single <= nr; r += ts->r_single)
            ts->tRx1(nb, y + tt * ldy + r, ldy, w + r * ws, ws, x + tt * xs, xs);
        for (; r < nr; r++)
            ts->t1x1(nb, y + tt * ldy + r, ldy, w + r * ws, ws, x + tt * xs, xs);
    }
}

static const tile_set Q8_0_TILES = {q8_0_tile_1x1, q8_0_tile_Dx1, q8_0_tile_1xT, q8_0_tile_RxT,
                                    B32_DR, B32_PR, B32_PT};
static const tile_set Q4_0_TILES = {q4_0_tile_1x1, q4_0_tile_Dx1, q4_0_tile_1xT, q4_0_tile_RxT,
                                    B32_DR, B32_PR, B32_PT};

static void q8_0_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    q8_0_tile_1x1(n / IG_QK8_0, s, 1, w, 0, x, 0);
}

static void q4_0_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    q4_0_tile_1x1(n / IG_QK4_0, s, 1, w, 0, x, 0);
}

static void q8_0_gemm(int64_t n, float *y, int64_t ldy, const void *w, size_t ws, int64_t nr,
                      const void *x, size_t xs, int64_t nt)
{
    tiles_gemm(&Q8_0_TILES, n / IG_QK8_0, y, ldy, w, ws, nr, x, xs, nt);
}

static void q4_0_gemm(int64_t n, float *y, int64_t ldy, const void *w, size_t ws, int64_t nr,
                      const void *x, size_t xs, int64_t nt)
{
    tiles_gemm(&Q4_0_TILES, n / IG_QK4_0, y, ldy, w, ws, nr, x, xs, nt);
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

/* The 8 scales (bytes 0-7) and 8 mins (bytes 8-15) of a Q4_K block, 6 bits each.
 * Dwords of the packed 12 bytes u0 u1 u2: scales 0-3 = u0 & 0x3f.., mins 0-3 =
 * u1 & 0x3f.., scales 4-7 = low nibbles of u2 with the top two bits of u0's bytes
 * above them, mins 4-7 = high nibbles of u2 with the top two bits of u1's bytes. */
static inline __m128i q4_k_scales(const uint8_t *packed)
{
    /* 16 bytes from the scales: the 4 past them are the block's first quants */
    __m128i v = _mm_loadu_si128((const __m128i *)packed);
    __m128i lo = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* u0 u2 u1 u2 */
    __m128i hi = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* u0 u0 u1 u1 */
    lo = _mm_and_si128(_mm_srlv_epi32(lo, _mm_setr_epi32(0, 0, 0, 4)),
                       _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    hi = _mm_and_si128(_mm_srli_epi32(hi, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(lo, hi);
}

/*
 * K-quant dot products. Per block and output: exact int32 sums (the scaled
 * sub-block dot products; the mins' or the -32 offsets' correction from the
 * activation's bsums), then the reference's float expression for the block, added
 * to the output's sum in block order. So every tile equals the reference (and so
 * vec_dot) bit for bit; tiles only share work:
 *   - a tile's R x T outputs sit in the lanes of one vector (lane o = t * R + r), so
 *     the per-block horizontal sums are one hadd tree for all of them and the float
 *     expression is evaluated once per block for all outputs (lane-wise IEEE
 *     operations round exactly like the scalar ones);
 *   - decode (T = 1) tiles take 4 rows, prefill tiles 8 tokens of one row, reusing
 *     the row's unpacked weights and scales across the tokens.
 * Sub-block scales are applied with madd(maddubs(q, x), scale) and summed in int32
 * over the block (|sum| < 2^31: 256 products of at most 63 * 127 * 127).
 */
/* pshufb masks: LANE16_PAIR[k] broadcasts int16 lane 2k over the low 128-bit half and
 * lane 2k + 1 over the high half. */
#define B16(k) (char)(2 * (k)), (char)(2 * (k) + 1)
#define B16x8(k) B16(k), B16(k), B16(k), B16(k), B16(k), B16(k), B16(k), B16(k)
static const char LANE16_PAIR[4][32] __attribute__((aligned(32))) = {
    {B16x8(0), B16x8(1)}, {B16x8(2), B16x8(3)}, {B16x8(4), B16x8(5)}, {B16x8(6), B16x8(7)},
};
#undef B16x8
#undef B16

static inline __m256i lane16_pair(int k)
{
    return _mm256_load_si256((const __m256i *)LANE16_PAIR[k]);
}

#define KQ_MAX_R 4
#ifndef KQ_PF_DIST
#define KQ_PF_DIST PF_DIST
#endif
#define KQ_MAX_T 8
#define KQ_MAX_N 8 /* outputs per tile */

/* Lane o (< n <= 8) = the sum of the eight int32 lanes of a[o]; lanes >= n are 0. */
static inline __attribute__((always_inline)) __m256i kq_reduce(const __m256i *a, const int n)
{
    const __m256i z = _mm256_setzero_si256();
    if (n == 1)
        return _mm256_zextsi128_si256(_mm_cvtsi32_si128(hsum_epi32(a[0])));
    __m256i h01 = _mm256_hadd_epi32(a[0], a[1]);
    __m256i h23 = n > 2 ? _mm256_hadd_epi32(a[2], n > 3 ? a[3] : z) : z;
    __m256i h03 = _mm256_hadd_epi32(h01, h23); /* [0L 1L 2L 3L | 0H 1H 2H 3H] */
    if (n <= 4)
        return _mm256_zextsi128_si256(
            _mm_add_epi32(_mm256_castsi256_si128(h03), _mm256_extracti128_si256(h03, 1)));
    __m256i h45 = _mm256_hadd_epi32(a[4], n > 5 ? a[5] : z);
    __m256i h67 = n > 6 ? _mm256_hadd_epi32(a[6], n > 7 ? a[7] : z) : z;
    __m256i h47 = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(h03, h47, 0x20),
                            _mm256_permute2x128_si256(h03, h47, 0x31));
}

/* Lane o = the activation scale d of token o / R of the tile (block i of rows x). */
static inline __attribute__((always_inline)) __m256
kq_token_scales(const int R, const int T, const uint8_t *x, size_t xs, int64_t i)
{
    const ig_block_q8_K *b0 = (const ig_block_q8_K *)x + i;
    if (T == 1)
        return _mm256_broadcast_ss(&b0->d);
    float d[8];
    for (int o = 0; o < 8; o++)
        d[o] = o / R < T ? ((const ig_block_q8_K *)(x + (o / R) * xs) + i)->d : 0.0f;
    return _mm256_setr_ps(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
}

/* Lane o = the fp16 at byte `off` of block i of row o % R, as float. */
static inline __attribute__((always_inline)) __m256
kq_row_scales(const int R, const uint8_t *w, size_t ws, size_t bs, int64_t i, size_t off)
{
    uint16_t h[KQ_MAX_R];
    for (int r = 0; r < R; r++)
        memcpy(&h[r], w + r * ws + i * bs + off, 2);
    if (R == 1)
        return _mm256_set1_ps(fp16(h[0]));
    return _mm256_cvtph_ps(_mm_setr_epi16((short)h[0], (short)h[1 % R], (short)h[2 % R],
                                          (short)h[3 % R], (short)h[4 % R], (short)h[5 % R],
                                          (short)h[6 % R], (short)h[7 % R]));
}

/* Stores lane o of s to y[t * ldy + r] for the tile's outputs o = t * R + r. */
static inline __attribute__((always_inline)) void
kq_store(const int R, const int T, __m256 s, float *y, int64_t ldy)
{
    float out[8];
    _mm256_storeu_ps(out, s);
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++)
            y[t * ldy + r] = out[t * R + r];
}

static inline __attribute__((always_inline)) void
q4_k_tile(const int R, const int T, int64_t nb, float *y, int64_t ldy, const uint8_t *w,
          size_t ws, const uint8_t *x, size_t xs)
{
    const int N = R * T;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const ig_block_q4_K *a[KQ_MAX_R];
        const ig_block_q8_K *b[KQ_MAX_T];
        /* dword j of row r: scale j in both int16 halves, for vpbroadcastd */
        int32_t sct[KQ_MAX_R][8] __attribute__((aligned(32)));
        __m256i mins[KQ_MAX_R]; /* int16: min j at 2j and 2j + 1 (the bsums' pairs) */
        __m256i acc[KQ_MAX_N], macc[KQ_MAX_N];
        for (int r = 0; r < R; r++) {
            a[r] = (const ig_block_q4_K *)(w + r * ws) + i;
            __m128i sm = q4_k_scales(a[r]->scales);
            __m256i s32 = _mm256_cvtepu8_epi32(sm);
            _mm256_store_si256((__m256i *)sct[r], _mm256_or_si256(s32, _mm256_slli_epi32(s32, 16)));
            __m256i m32 = _mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8));
            mins[r] = _mm256_or_si256(m32, _mm256_slli_epi32(m32, 16));
        }
        for (int t = 0; t < T; t++) {
            b[t] = (const ig_block_q8_K *)(x + t * xs) + i;
            for (int r = 0; r < R; r++)
                acc[t * R + r] = _mm256_setzero_si256();
        }
        for (int j = 0; j < 4; j++) {
            __m256i lo[KQ_MAX_R], hi[KQ_MAX_R], sl[KQ_MAX_R], sh[KQ_MAX_R];
            for (int r = 0; r < R; r++) {
                __m256i q4 = _mm256_loadu_si256((const __m256i *)(a[r]->qs + 32 * j));
                lo[r] = _mm256_and_si256(q4, low4);
                hi[r] = _mm256_and_si256(_mm256_srli_epi16(q4, 4), low4);
                sl[r] = _mm256_set1_epi32(sct[r][2 * j]);
                sh[r] = _mm256_set1_epi32(sct[r][2 * j + 1]);
            }
            for (int t = 0; t < T; t++) {
                __m256i y0 = _mm256_loadu_si256((const __m256i *)(b[t]->qs + 64 * j));
                __m256i y1 = _mm256_loadu_si256((const __m256i *)(b[t]->qs + 64 * j + 32));
                for (int r = 0; r < R; r++) {
                    __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo[r], y0), sl[r]);
                    __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi[r], y1), sh[r]);
                    acc[t * R + r] = _mm256_add_epi32(acc[t * R + r], _mm256_add_epi32(p0, p1));
                }
            }
        }
        __m256 isum = _mm256_cvtepi32_ps(kq_reduce(acc, N));
        for (int t = 0; t < T; t++) {
            __m256i bs = _mm256_loadu_si256((const __m256i *)b[t]->bsums);
            for (int r = 0; r < R; r++)
                macc[t * R + r] = _mm256_madd_epi16(bs, mins[r]);
        }
        /* sum += d * dx * isum - dmin * dx * msum, lane-wise for all outputs */
        __m256 msum = _mm256_cvtepi32_ps(kq_reduce(macc, N));
        __m256 dx = kq_token_scales(R, T, x, xs, i);
        __m256 d = kq_row_scales(R, w, ws, sizeof(ig_block_q4_K), i, offsetof(ig_block_q4_K, d));
        __m256 dmin =
            kq_row_scales(R, w, ws, sizeof(ig_block_q4_K), i, offsetof(ig_block_q4_K, dmin));
        __m256 term = _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(d, dx), isum),
                                    _mm256_mul_ps(_mm256_mul_ps(dmin, dx), msum));
        sum = _mm256_add_ps(sum, term);
    }
    kq_store(R, T, sum, y, ldy);
}

/* Half h (128 weights) of a Q6_K block as four vectors of 6-bit values 0..63: value
 * k of each 32-weight quarter takes its 4 low bits from ql and bits 2k, 2k + 1 of qh. */
static inline __attribute__((always_inline)) void q6_k_unpack_half(const ig_block_q6_K *blk,
                                                                   int h, __m256i v[4])
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const uint8_t *ql = blk->ql + 64 * h, *qh = blk->qh + 32 * h;
    __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
    v[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
    v[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
    v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
    v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
}

/* The 16-bit scales of half h of a Q6_K block, in both 128-bit lanes. */
static inline __attribute__((always_inline)) __m256i q6_k_half_scales(__m256i sc16, int h)
{
    return h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
}

static inline __attribute__((always_inline)) void
q6_k_tile(const int R, const int T, int64_t nb, float *y, int64_t ldy, const uint8_t *w,
          size_t ws, const uint8_t *x, size_t xs)
{
    const int N = R * T;
    __m256 sum = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const ig_block_q6_K *a[KQ_MAX_R];
        const ig_block_q8_K *b[KQ_MAX_T];
        __m256i sc16[KQ_MAX_R], acc[KQ_MAX_N];
        for (int r = 0; r < R; r++) {
            a[r] = (const ig_block_q6_K *)(w + r * ws) + i;
            sc16[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a[r]->scales));
        }
        for (int t = 0; t < T; t++) {
            b[t] = (const ig_block_q8_K *)(x + t * xs) + i;
            __m256i bs = _mm256_loadu_si256((const __m256i *)b[t]->bsums);
            /* The -32 offset of every value: minus 32 * sum_g sc_g * bsum_g
             * (32 * sc_g fits int16). */
            for (int r = 0; r < R; r++)
                acc[t * R + r] = _mm256_sub_epi32(
                    _mm256_setzero_si256(), _mm256_madd_epi16(_mm256_slli_epi16(sc16[r], 5), bs));
        }
        for (int h = 0; h < 2; h++) {
            for (int r = 0; r < R; r++) {
                __m256i v[4];
                q6_k_unpack_half(a[r], h, v);
                __m256i half_sc = q6_k_half_scales(sc16[r], h);
                for (int k = 0; k < 4; k++) {
                    __m256i scv = _mm256_shuffle_epi8(half_sc, lane16_pair(k));
                    for (int t = 0; t < T; t++) {
                        __m256i yv =
                            _mm256_loadu_si256((const __m256i *)(b[t]->qs + 128 * h + 32 * k));
                        __m256i p = _mm256_maddubs_epi16(v[k], yv);
                        acc[t * R + r] = _mm256_add_epi32(acc[t * R + r], _mm256_madd_epi16(p, scv));
                    }
                }
            }
        }
        /* sum += d * dx * isum, lane-wise for all outputs */
        __m256 isum = _mm256_cvtepi32_ps(kq_reduce(acc, N));
        __m256 dx = kq_token_scales(R, T, x, xs, i);
        __m256 d = kq_row_scales(R, w, ws, sizeof(ig_block_q6_K), i, offsetof(ig_block_q6_K, d));
        sum = _mm256_add_ps(sum, _mm256_mul_ps(_mm256_mul_ps(d, dx), isum));
    }
    kq_store(R, T, sum, y, ldy);
}

/*
 * Decode (one token) goes one row at a time: the weights then stream strictly in
 * order, which the hardware prefetchers follow; tiles of several rows in lock step
 * (several streams a row apart) measured 30 % slower from DRAM here. The per-block
 * horizontal sums and float terms are batched over KQ_G consecutive blocks of the
 * row instead, then added to the sum in block order.
 */
#define KQ_G 4

/* One group of g <= KQ_G blocks: sum += term[0]; sum += term[1]; ... in order. */
static inline float kq_add_in_order(float sum, __m256 term, int64_t g)
{
    float t[8];
    _mm256_storeu_ps(t, term);
    for (int64_t k = 0; k < g; k++)
        sum += t[k];
    return sum;
}

/* Lane k < g: the fp16 at byte `off` of block k (blocks bs bytes apart), as float. */
static inline __m256 kq_block_scales(const uint8_t *blk, size_t bs, size_t off, int64_t g)
{
    uint16_t h[KQ_G] = {0};
    for (int k = 0; k < KQ_G; k++)
        if (k < g)
            memcpy(&h[k], blk + k * bs + off, 2);
    return _mm256_cvtph_ps(_mm_setr_epi16((short)h[0], (short)h[1], (short)h[2], (short)h[3], 0, 0, 0, 0));
}

/* Lane k < g: the activation scale of block k (built in registers: a vector load of
 * scalars just stored would wait for store forwarding, which fails). */
static inline __m256 kq_act_scales(const ig_block_q8_K *b, int64_t g)
{
    return _mm256_setr_ps(b[0].d, g > 1 ? b[1].d : 0.0f, g > 2 ? b[2].d : 0.0f,
                          g > 3 ? b[3].d : 0.0f, 0.0f, 0.0f, 0.0f, 0.0f);
}

static void q4_k_row(int64_t nb, float *y, int64_t ldy, const uint8_t *w, size_t ws,
                     const uint8_t *x, size_t xs)
{
    (void)ldy, (void)ws, (void)xs;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const ig_block_q4_K *a = (const ig_block_q4_K *)w;
    const ig_block_q8_K *b = (const ig_block_q8_K *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i += KQ_G) {
        int64_t g = nb - i < KQ_G ? nb - i : KQ_G;
        __m256i acc[KQ_G], macc[KQ_G];
        for (int k = 0; k < KQ_G; k++) {
            acc[k] = macc[k] = _mm256_setzero_si256();
            if (k >= g)
                continue;
            const ig_block_q4_K *ab = a + i + k;
            const ig_block_q8_K *bb = b + i + k;
            prefetch_bytes((const uint8_t *)ab + KQ_PF_DIST, sizeof *ab);
            __m128i sm = q4_k_scales(ab->scales);
            __m256i s32 = _mm256_cvtepu8_epi32(sm);
            int32_t sct[8] __attribute__((aligned(32)));
            _mm256_store_si256((__m256i *)sct, _mm256_or_si256(s32, _mm256_slli_epi32(s32, 16)));
            __m256i m32 = _mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8));
            macc[k] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bb->bsums),
                                        _mm256_or_si256(m32, _mm256_slli_epi32(m32, 16)));
            __m256i s = _mm256_setzero_si256();
            for (int j = 0; j < 4; j++) {
                __m256i q4 = _mm256_loadu_si256((const __m256i *)(ab->qs + 32 * j));
                __m256i lo = _mm256_and_si256(q4, low4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), low4);
                __m256i y0 = _mm256_loadu_si256((const __m256i *)(bb->qs + 64 * j));
                __m256i y1 = _mm256_loadu_si256((const __m256i *)(bb->qs + 64 * j + 32));
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0),
                                               _mm256_set1_epi32(sct[2 * j]));
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1),
                                               _mm256_set1_epi32(sct[2 * j + 1]));
                s = _mm256_add_epi32(s, _mm256_add_epi32(p0, p1));
            }
            acc[k] = s;
        }
        __m256 isum = _mm256_cvtepi32_ps(kq_reduce(acc, KQ_G));
        __m256 msum = _mm256_cvtepi32_ps(kq_reduce(macc, KQ_G));
        __m256 dx = kq_act_scales(b + i, g);
        __m256 d = kq_block_scales((const uint8_t *)(a + i), sizeof *a, offsetof(ig_block_q4_K, d), g);
        __m256 dmin =
            kq_block_scales((const uint8_t *)(a + i), sizeof *a, offsetof(ig_block_q4_K, dmin), g);
        __m256 term = _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(d, dx), isum),
                                    _mm256_mul_ps(_mm256_mul_ps(dmin, dx), msum));
        sum = kq_add_in_order(sum, term, g);
    }
    *y = sum;
}

static void q6_k_row(int64_t nb, float *y, int64_t ldy, const uint8_t *w, size_t ws,
                     const uint8_t *x, size_t xs)
{
    (void)ldy, (void)ws, (void)xs;
    const ig_block_q6_K *a = (const ig_block_q6_K *)w;
    const ig_block_q8_K *b = (const ig_block_q8_K *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i += KQ_G) {
        int64_t g = nb - i < KQ_G ? nb - i : KQ_G;
        __m256i acc[KQ_G];
        for (int k = 0; k < KQ_G; k++) {
            acc[k] = _mm256_setzero_si256();
            if (k >= g)
                continue;
            const ig_block_q6_K *ab = a + i + k;
            const ig_block_q8_K *bb = b + i + k;
            prefetch_bytes((const uint8_t *)ab + KQ_PF_DIST, sizeof *ab);
            __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)ab->scales));
            __m256i s = _mm256_sub_epi32(
                _mm256_setzero_si256(),
                _mm256_madd_epi16(_mm256_slli_epi16(sc16, 5),
                                  _mm256_loadu_si256((const __m256i *)bb->bsums)));
            for (int h = 0; h < 2; h++) {
                __m256i v[4];
                q6_k_unpack_half(ab, h, v);
                __m256i half_sc = q6_k_half_scales(sc16, h);
                for (int q = 0; q < 4; q++) {
                    __m256i yv = _mm256_loadu_si256((const __m256i *)(bb->qs + 128 * h + 32 * q));
                    __m256i pr = _mm256_maddubs_epi16(v[q], yv);
                    s = _mm256_add_epi32(
                        s, _mm256_madd_epi16(pr, _mm256_shuffle_epi8(half_sc, lane16_pair(q))));
                }
            }
            acc[k] = s;
        }
        __m256 isum = _mm256_cvtepi32_ps(kq_reduce(acc, KQ_G));
        __m256 dx = kq_act_scales(b + i, g);
        __m256 d = kq_block_scales((const uint8_t *)(a + i), sizeof *a, offsetof(ig_block_q6_K, d), g);
        sum = kq_add_in_order(sum, _mm256_mul_ps(_mm256_mul_ps(d, dx), isum), g);
    }
    *y = sum;
}

#define KQ_TILE_FN(name, body, R, T)                                                       \
    static void name(int64_t nb, float *y, int64_t ldy, const uint8_t *w, size_t ws,       \
                     const uint8_t *x, size_t xs)                                          \
    {                                                                                      \
        body(R, T, nb, y, ldy, w, ws, x, xs);                                              \
    }
KQ_TILE_FN(q4_k_tile_1x8, q4_k_tile, 1, 8)
KQ_TILE_FN(q6_k_tile_1x8, q6_k_tile, 1, 8)

static const tile_set Q4_K_TILES = {q4_k_row, q4_k_row, q4_k_tile_1x8, q4_k_tile_1x8, 1, 1, 8};
static const tile_set Q6_K_TILES = {q6_k_row, q6_k_row, q6_k_tile_1x8, q6_k_tile_1x8, 1, 1, 8};

static void q4_k_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    q4_k_row(n / IG_QK_K, s, 1, w, 0, x, 0);
}

static void q6_k_vec_dot(int64_t n, float *s, const void *w, const void *x)
{
    q6_k_row(n / IG_QK_K, s, 1, w, 0, x, 0);
}

static void q4_k_gemm(int64_t n, float *y, int64_t ldy, const void *w, size_t ws, int64_t nr,
                      const void *x, size_t xs, int64_t nt)
{
    tiles_gemm(&Q4_K_TILES, n / IG_QK_K, y, ldy, w, ws, nr, x, xs, nt);
}

static void q6_k_gemm(int64_t n, float *y, int64_t ldy, const void *w, size_t ws, int64_t nr,
                      const void *x, size_t xs, int64_t nt)
{
    tiles_gemm(&Q6_K_TILES, n / IG_QK_K, y, ldy, w, ws, nr, x, xs, nt);
}

static void q4_k_to_float(const void *x, float *y, int64_t n)
{
    const ig_block_q4_K *b = x;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int64_t i = 0; i < n / IG_QK_K; i++) {
        uint8_t sm[16];
        _mm_storeu_si128((__m128i *)sm, q4_k_scales(b[i].scales));
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

static const tile_set F32_TILES = {f32_tile_1x1, f32_tile_2x1, f32_tile_1x2, f32_tile_2x2, 2, 2, 2};
static const tile_set F16_TILES = {f16_tile_1x1, f16_tile_2x1, f16_tile_1x2, f16_tile_2x2, 2, 2, 2};
static const tile_set BF16_TILES = {bf16_tile_1x1, bf16_tile_2x1, bf16_tile_1x2, bf16_tile_2x2,
                                    2, 2, 2};

static void f32_gemm(int64_t n, float *y, int64_t ldy, const void *w, size_t ws, int64_t nr,
                     const void *x, size_t xs, int64_t nt)
{
    tiles_gemm(&F32_TILES, n, y, ldy, w, ws, nr, x, xs, nt);
}

static void f16_gemm(int64_t n, float *y, int64_t ldy, const void *w, size_t ws, int64_t nr,
                     const void *x, size_t xs, int64_t nt)
{
    tiles_gemm(&F16_TILES, n, y, ldy, w, ws, nr, x, xs, nt);
}

static void bf16_gemm(int64_t n, float *y, int64_t ldy, const void *w, size_t ws, int64_t nr,
                      const void *x, size_t xs, int64_t nt)
{
    tiles_gemm(&BF16_TILES, n, y, ldy, w, ws, nr, x, xs, nt);
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
    k->gemm[IG_TYPE_F32] = f32_gemm;
    k->gemm[IG_TYPE_F16] = f16_gemm;
    k->gemm[IG_TYPE_BF16] = bf16_gemm;
    k->gemm[IG_TYPE_Q8_0] = q8_0_gemm;
    k->gemm[IG_TYPE_Q4_0] = q4_0_gemm;
    k->gemm[IG_TYPE_Q4_K] = q4_k_gemm;
    k->gemm[IG_TYPE_Q6_K] = q6_k_gemm;
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
