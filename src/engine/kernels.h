/*
 * kernels.h — engine-private: block formats, quantizers, dot-product kernels, the
 * thread pool and the matrix multiply that the forward pass is built on.
 *
 * Every kernel exists twice or more: a scalar reference (kernels_ref.c) that defines
 * the result, and SIMD versions (kernels_avx2.c, kernels_avx512.c, kernels_neon.c)
 * that tests hold to the reference. The fastest set the CPU supports is chosen at run
 * time (ig_kernels_best).
 *
 * Only files in src/engine and the engine's tests include this header.
 */
#ifndef IG_ENGINE_KERNELS_H
#define IG_ENGINE_KERNELS_H

#include "engine.h"

/* ---- block formats (bit-compatible with GGUF files) ---------------------- */

#define IG_QK4_0 32
#define IG_QK8_0 32
#define IG_QK_K 256
#define IG_K_SCALE_SIZE 12

typedef struct {
    uint16_t d;              /* fp16 scale */
    uint8_t qs[IG_QK4_0 / 2];/* nibbles: low = element j, high = element j + 16 */
} ig_block_q4_0;

typedef struct {
    uint16_t d;              /* fp16 scale */
    int8_t qs[IG_QK8_0];
} ig_block_q8_0;

typedef struct {
    uint16_t d;                       /* fp16 super-block scale for scales */
    uint16_t dmin;                    /* fp16 super-block scale for mins */
    uint8_t scales[IG_K_SCALE_SIZE];  /* 8 x (6-bit scale, 6-bit min) */
    uint8_t qs[IG_QK_K / 2];          /* 4-bit quants */
} ig_block_q4_K;

typedef struct {
    uint8_t ql[IG_QK_K / 2];     /* low 4 bits */
    uint8_t qh[IG_QK_K / 4];     /* high 2 bits */
    int8_t scales[IG_QK_K / 16]; /* 8-bit scales */
    uint16_t d;                  /* fp16 super-block scale */
} ig_block_q6_K;

typedef struct {
    float d;                     /* scale */
    int8_t qs[IG_QK_K];
    int16_t bsums[IG_QK_K / 16]; /* sums of groups of 16 */
} ig_block_q8_K;

/* ---- kernel sets --------------------------------------------------------- */

/* s = dot(w, x) over n elements; w is a row of the weight type, x a row of that
 * type's vec_dot_type (activations quantized by from_float of that type). */
typedef void (*ig_vec_dot_fn)(int64_t n, float *s, const void *w, const void *x);
/* Converts n floats to a row of a type (activation quantizer; n multiple of block). */
typedef void (*ig_from_float_fn)(const float *x, void *y, int64_t n);
/* Converts a row of a type back to floats. */
typedef void (*ig_to_float_fn)(const void *x, float *y, int64_t n);

/* A tile of a matrix product: y[t * ldy + r] = dot(row r of w, row t of x) for
 * r < nr, t < nt. Rows of w are w_stride bytes apart; rows of x (in the vec_dot_type)
 * x_stride bytes. Each output equals vec_dot's bit for bit; the tile only shares loads
 * and conversions between outputs. */
typedef void (*ig_gemm_fn)(int64_t n, float *y, int64_t ldy, const void *w, size_t w_stride,
                           int64_t nr, const void *x, size_t x_stride, int64_t nt);

typedef struct {
    const char *isa; /* "scalar", "avx2", "avx512", "amx", "neon" */
    ig_vec_dot_fn vec_dot[IG_TYPE_COUNT];
    ig_from_float_fn from_float[IG_TYPE_COUNT];
    ig_to_float_fn to_float[IG_TYPE_COUNT];
    ig_gemm_fn gemm[IG_TYPE_COUNT]; /* NULL: ig_matmul calls vec_dot per output */
    /* Rows ig_matmul hands one gemm call at most (a multiple of its 16-row tiles;
     * 0: one tile): a gemm that prepares the activations per call shares that work
     * over more rows. Which rows go together never changes a result. */
    int gemm_rows[IG_TYPE_COUNT];
} ig_kernels;

/* The type activations are converted to before a dot product with weights of type t
 * (F32 for F32/F16/BF16, Q8_0 for Q8_0/Q4_0, Q8_K for Q4_K/Q6_K). */
ig_type ig_vec_dot_type(ig_type t);

const ig_kernels *ig_kernels_scalar(void);
/* The fastest set this CPU runs. */
const ig_kernels *ig_kernels_best(void);
/* A named set, or NULL when unknown or this CPU cannot run it. */
const ig_kernels *ig_kernels_by_name(const char *isa);

/* The quantizer `model quantize` uses: best-quality (searches scales to minimise the
 * weighted squared error), deterministic, scalar. Differs from from_float only in
 * quality, never in format. */
void ig_quantize_row(ig_type t, const float *x, void *y, int64_t n);

/* ---- thread pool --------------------------------------------------------- */

typedef struct ig_pool ig_pool;

/* A pool of n_threads - 1 workers plus the calling thread. Idle workers sleep on a
 * condition variable (no spinning while idle). */
ig_pool *ig_pool_new(int n_threads, ig_err *err);
void ig_pool_free(ig_pool *p);
int ig_pool_size(const ig_pool *p);

typedef void (*ig_pool_fn)(void *arg, int thread_index, int n_threads);
/* Runs fn on every thread of the pool (the caller is thread 0) and returns when all
 * have finished. Not reentrant. */
void ig_pool_run(ig_pool *p, ig_pool_fn fn, void *arg);

/* ---- matrix multiply ------------------------------------------------------ */

/* y[t * rows + r] = sum_k W[r][k] * x[t * cols + k] for t < n_tok, r < rows.
 * W: rows x cols of wtype, rows contiguous (row bytes = ig_type_row_bytes).
 * x: n_tok x cols floats. The activations are converted once per row of x to the
 * weight type's vec_dot_type in `scratch` (ig_matmul_scratch_bytes). Work is split
 * over the pool's threads; the result does not depend on the thread count. */
void ig_matmul(ig_pool *pool, const ig_kernels *k, float *y, const void *w, ig_type wtype,
               int64_t rows, int64_t cols, const float *x, int64_t n_tok, void *scratch);
/* Bytes of scratch ig_matmul needs (0 when the activations are used as floats). */
size_t ig_matmul_scratch_bytes(ig_type wtype, int64_t cols, int64_t n_tok);

/* Several products of one input in one pass of the pool (a layer's Q, K and V; the
 * feed-forward's gate and up): y_i = W_i x for i < n, every W_i with `cols` columns.
 * The input is converted once per distinct vec_dot_type, and the threads share out
 * the rows of all the products together, so the products cost one wait for the
 * slowest thread instead of n. Every output equals what ig_matmul gives it. */
#define IG_MATMUL_MAX_OPS 4
typedef struct {
    float *y;       /* n_tok x rows */
    const void *w;  /* rows x cols of wtype */
    ig_type wtype;
    int64_t rows;
} ig_matmul_out;
void ig_matmul_n(ig_pool *pool, const ig_kernels *k, int n, const ig_matmul_out *outs, int64_t cols,
                 const float *x, int64_t n_tok, void *scratch);
/* Bytes of scratch ig_matmul_n needs for these weight types (one converted copy of the
 * input per distinct vec_dot_type). */
size_t ig_matmul_n_scratch_bytes(int n, const ig_type *wtypes, int64_t cols, int64_t n_tok);

/* ---- for the kernel implementations and their tests ----------------------- */

/* Each fills (or, for the SIMD sets, overrides entries of) a kernel set. */
void ig_kernels_fill_ref(ig_kernels *k);
#if defined(__x86_64__) || defined(__i386__)
void ig_kernels_fill_avx2(ig_kernels *k);
/* AVX-512 F/BW/VL/DQ + VNNI; the "avx512" set is offered when the CPU and OS have them. */
void ig_kernels_fill_avx512(ig_kernels *k);
/* The avx512 set plus AMX-TILE + AMX-INT8 for block-32 prefill; the "amx" set is
 * offered when the CPU has them and the OS grants the process the tile state. */
void ig_kernels_fill_amx(ig_kernels *k);
#endif
#if defined(__aarch64__)
void ig_kernels_fill_neon(ig_kernels *k);
/* Overrides the integer dot products with SDOT versions (ARMv8.2 dotprod); the
 * "neon" set includes them when ig_cpu_has_dotprod(). */
void ig_kernels_fill_neon_dotprod(ig_kernels *k);
bool ig_cpu_has_dotprod(void);
#endif
/* The reference activation quantizers (shared by the SIMD sets' fallbacks). */
void ig_ref_q8_0_from_float(const float *x, void *y, int64_t n);
void ig_ref_q8_k_from_float(const float *x, void *y, int64_t n);
/* Unpacks a Q4_K block's twelve scale bytes into 8 six-bit scales and mins. */
void ig_q4_k_unpack_scales(const uint8_t *scales, uint8_t sc[8], uint8_t m[8]);

#endif /* IG_ENGINE_KERNELS_H */
