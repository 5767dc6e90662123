/*
 * kernels.c — choosing a kernel set for this CPU (run-time detection) and the matrix
 * multiply the forward pass is built on (ig_matmul).
 *
 * ig_matmul converts the activations once to the weight type's vec_dot_type, then
 * the pool's threads take chunks of IG_MM_ROW_TILE-row tiles; within a chunk, the
 * kernel set's gemm processes a block of rows against up to IG_MM_TOK_TILE tokens so
 * the weights are read from memory once per token tile. Results do not depend on the
 * thread count or on which thread takes which chunk: every gemm tile computes each
 * output bit for bit as vec_dot does (tests hold them to it).
 */
#include "kernels.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define IG_X86 1
#elif defined(__aarch64__)
#define IG_ARM64 1
#endif

/* ---- kernel sets ----------------------------------------------------------- */

static ig_kernels g_scalar;
#if IG_X86
static ig_kernels g_avx2, g_avx512, g_amx;
static bool g_has_avx2, g_has_avx512, g_has_amx;
#endif
#if IG_ARM64
static ig_kernels g_neon;
#endif
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if IG_X86
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_x86(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29);
    if (!osxsave)
        return;
    uint64_t xcr0 = xgetbv0();
    bool os_avx = (xcr0 & 0x6) == 0x6;
    bool os_avx512 = (xcr0 & 0xe6) == 0xe6;
    if (__get_cpuid_max(0, NULL) < 7)
        return;
    __cpuid_count(7, 0, a, b, c, d);
    bool avx2 = b & (1u << 5);
    bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
         avx512vl = b & (1u << 31), vnni = c & (1u << 11);
    g_has_avx2 = os_avx && avx2 && fma && f16c;
    g_has_avx512 =
        g_has_avx2 && os_avx512 && avx512f && avx512dq && avx512bw && avx512vl && vnni;
    /* AMX: CPUID.7.0:EDX bits 24 (tile) and 25 (int8), the OS managing the tile
     * configuration and data (XCR0 bits 17, 18), and Linux's per-process permission
     * for the tile data, which is asked for once here (ARCH_REQ_XCOMP_PERM). */
    bool amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
    bool os_amx = (xcr0 & 0x60000) == 0x60000;
    if (g_has_avx512 && amx_tile && amx_int8 && os_amx) {
#if defined(__linux__) && defined(SYS_arch_prctl)
        enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
        g_has_amx = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#endif
    }
}
#endif

static void init_sets(void)
{
    ig_kernels_fill_ref(&g_scalar);
#if IG_X86
    detect_x86();
    g_avx2 = g_scalar;
    ig_kernels_fill_avx2(&g_avx2);
    g_avx512 = g_scalar;
    ig_kernels_fill_avx512(&g_avx512);
    g_amx = g_scalar;
    ig_kernels_fill_amx(&g_amx);
#endif
#if IG_ARM64
    g_neon = g_scalar;
    ig_kernels_fill_neon(&g_neon);
    if (ig_cpu_has_dotprod())
        ig_kernels_fill_neon_dotprod(&g_neon);
#endif
}

const ig_kernels *ig_kernels_scalar(void)
{
    pthread_once(&g_once, init_sets);
    return &g_scalar;
}

const ig_kernels *ig_kernels_by_name(const char *isa)
{
    pthread_once(&g_once, init_sets);
    if (!isa)
        return NULL;
    if (strcmp(isa, "scalar") == 0)
        return &g_scalar;
#if IG_X86
    if (strcmp(isa, "avx2") == 0)
        return g_has_avx2 ? &g_avx2 : NULL;
    if (strcmp(isa, "avx512") == 0)
        return g_has_avx512 ? &g_avx512 : NULL;
    if (strcmp(isa, "amx") == 0)
        return g_has_amx ? &g_amx : NULL;
#endif
#if IG_ARM64
    if (strcmp(isa, "neon") == 0)
        return &g_neon;
#endif
    return NULL;
}

const ig_kernels *ig_kernels_best(void)
{
    pthread_once(&g_once, init_sets);
#if IG_X86
    if (g_has_amx)
        return &g_amx;
    if (g_has_avx512)
        return &g_avx512;
    if (g_has_avx2)
        return &g_avx2;
#endif
#if IG_ARM64
    return &g_neon;
#endif
    return &g_scalar;
}

ig_type ig_vec_dot_type(ig_type t)
{
    switch (t) {
    case IG_TYPE_Q8_0:
    case IG_TYPE_Q4_0:
        return IG_TYPE_Q8_0;
    case IG_TYPE_Q4_K:
    case IG_TYPE_Q6_K:
        return IG_TYPE_Q8_K;
    default:
        return IG_TYPE_F32;
    }
}

/* ---- matrix multiply ------------------------------------------------------ */

/* Rows per unit of work: thread ranges are cut at multiples of this. */
#define IG_MM_ROW_TILE 16
/* Tokens processed against one row tile while its weights sit in cache. */
#define IG_MM_TOK_TILE 64

typedef struct {
    const ig_kernels *k;
    float *y;
    const uint8_t *w;
    ig_type wtype;
    int64_t rows, cols, n_tok;
    size_t w_row_bytes;
    /* activations in vec_dot_type, one row per token */
    const uint8_t *xq;
    size_t xq_row_bytes;
    /* for the conversion pass */
    const float *x;
    uint8_t *scratch;
    ig_type vdt;
    atomic_int_fast64_t next_chunk; /* the first row tile nobody has taken yet */
} mm_job;

static void mm_convert(void *varg, int ith, int nth)
{
    mm_job *j = varg;
    int64_t t0 = j->n_tok * ith / nth, t1 = j->n_tok * (ith + 1) / nth;
    for (int64_t t = t0; t < t1; t++)
        j->k->from_float[j->vdt](j->x + t * j->cols, j->scratch + (size_t)t * j->xq_row_bytes,
                                 j->cols);
}

static void mm_rows(const mm_job *j, int64_t r0, int64_t r1)
{
    ig_vec_dot_fn dot = j->k->vec_dot[j->wtype];
    ig_gemm_fn gemm = j->k->gemm[j->wtype];
    for (int64_t tt = 0; tt < j->n_tok; tt += IG_MM_TOK_TILE) {
        int64_t tend = tt + IG_MM_TOK_TILE < j->n_tok ? tt + IG_MM_TOK_TILE : j->n_tok;
        if (gemm) {
            gemm(j->cols, &j->y[tt * j->rows + r0], j->rows, j->w + (size_t)r0 * j->w_row_bytes,
                 j->w_row_bytes, r1 - r0, j->xq + (size_t)tt * j->xq_row_bytes, j->xq_row_bytes,
                 tend - tt);
            continue;
        }
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wr = j->w + (size_t)r * j->w_row_bytes;
            for (int64_t t = tt; t < tend; t++)
                dot(j->cols, &j->y[t * j->rows + r], wr, j->xq + (size_t)t * j->xq_row_bytes);
        }
    }
}

/* Threads take chunks of row tiles from a shared counter rather than fixed shares, so
 * a thread that runs slower (a little core, or one the OS preempts) does less of the
 * work instead of holding everyone up. Chunks shrink as the work runs out (guided
 * scheduling: a chunk is the remaining tiles / (2 * threads), at least one tile), so
 * the threads finish within about one row tile of each other: with fixed chunks of
 * 1/16 of the matrix, decode spent ~10 % of its time in the pool waiting for the
 * last chunk. Which thread computes a row never changes its value: every output is
 * computed by the same tile arithmetic. */
static void mm_worker(void *varg, int ith, int nth)
{
    (void)ith;
    mm_job *j = varg;
    const int64_t tiles = (j->rows + IG_MM_ROW_TILE - 1) / IG_MM_ROW_TILE;
    const int64_t step = j->n_tok > 1 && j->k->gemm_rows[j->wtype] > IG_MM_ROW_TILE
                             ? j->k->gemm_rows[j->wtype]
                             : IG_MM_ROW_TILE;
    int64_t a = atomic_load_explicit(&j->next_chunk, memory_order_relaxed);
    for (;;) {
        if (a >= tiles)
            break;
        int64_t n = (tiles - a) / (2 * (int64_t)nth);
        if (n < 1)
            n = 1;
        /* On failure `a` is reloaded with the counter's current value. */
        if (!atomic_compare_exchange_weak_explicit(&j->next_chunk, &a, a + n,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        const int64_t b = a + n;
        const int64_t r1 = b * IG_MM_ROW_TILE < j->rows ? b * IG_MM_ROW_TILE : j->rows;
        for (int64_t r = a * IG_MM_ROW_TILE; r < r1; r += step)
            mm_rows(j, r, r + step < r1 ? r + step : r1);
        a = atomic_load_explicit(&j->next_chunk, memory_order_relaxed);
    }
}

size_t ig_matmul_scratch_bytes(ig_type wtype, int64_t cols, int64_t n_tok)
{
    ig_type vdt = ig_vec_dot_type(wtype);
    if (vdt == IG_TYPE_F32)
        return 0; /* the activations are used as they are */
    return ig_type_row_bytes(vdt, cols) * (size_t)n_tok;
}

void ig_matmul(ig_pool *pool, const ig_kernels *k, float *y, const void *w, ig_type wtype,
               int64_t rows, int64_t cols, const float *x, int64_t n_tok, void *scratch)
{
    assert(k && k->vec_dot[wtype]);
    assert(cols % ig_type_block_size(wtype) == 0);
    mm_job j = {
        .k = k, .y = y, .w = w, .wtype = wtype, .rows = rows, .cols = cols, .n_tok = n_tok,
        .w_row_bytes = ig_type_row_bytes(wtype, cols), .x = x, .scratch = scratch,
        .vdt = ig_vec_dot_type(wtype),
    };
    if (j.vdt == IG_TYPE_F32) {
        j.xq = (const uint8_t *)x;
        j.xq_row_bytes = (size_t)cols * sizeof(float);
    } else {
        assert(scratch);
        j.xq = scratch;
        j.xq_row_bytes = ig_type_row_bytes(j.vdt, cols);
        if (n_tok == 1 || ig_pool_size(pool) == 1)
            mm_convert(&j, 0, 1);
        else
            ig_pool_run(pool, mm_convert, &j);
    }
    atomic_init(&j.next_chunk, 0);
    ig_pool_run(pool, mm_worker, &j);
}
