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

/* One product of a fused multiply: its own weights and output, the shared input. */
typedef struct {
    float *y;
    const uint8_t *w;
    ig_type wtype;
    int64_t rows;
    size_t w_row_bytes;
    /* the activations in this weight type's vec_dot_type, one row per token */
    const uint8_t *xq;
    size_t xq_row_bytes;
    int64_t tile0; /* the first row tile of this product in the job's tile count */
} mm_op;

typedef struct {
    const ig_kernels *k;
    const mm_op *ops;
    int n_ops;
    int64_t cols, n_tok, tiles;
    /* for the conversion pass: x into each distinct vec_dot_type's scratch */
    const float *x;
    int n_conv;
    ig_type conv_type[IG_MATMUL_MAX_OPS];
    uint8_t *conv_dst[IG_MATMUL_MAX_OPS];
    atomic_int_fast64_t next_chunk; /* the first row tile nobody has taken yet */
} mm_job;

static void mm_convert(void *varg, int ith, int nth)
{
    mm_job *j = varg;
    int64_t t0 = j->n_tok * ith / nth, t1 = j->n_tok * (ith + 1) / nth;
    for (int v = 0; v < j->n_conv; v++) {
        const size_t rb = ig_type_row_bytes(j->conv_type[v], j->cols);
        for (int64_t t = t0; t < t1; t++)
            j->k->from_float[j->conv_type[v]](j->x + t * j->cols, j->conv_dst[v] + (size_t)t * rb,
                                              j->cols);
    }
}

static void mm_rows(const mm_job *j, const mm_op *o, int64_t r0, int64_t r1)
{
    ig_vec_dot_fn dot = j->k->vec_dot[o->wtype];
    ig_gemm_fn gemm = j->k->gemm[o->wtype];
    for (int64_t tt = 0; tt < j->n_tok; tt += IG_MM_TOK_TILE) {
        int64_t tend = tt + IG_MM_TOK_TILE < j->n_tok ? tt + IG_MM_TOK_TILE : j->n_tok;
        if (gemm) {
            gemm(j->cols, &o->y[tt * o->rows + r0], o->rows, o->w + (size_t)r0 * o->w_row_bytes,
                 o->w_row_bytes, r1 - r0, o->xq + (size_t)tt * o->xq_row_bytes, o->xq_row_bytes,
                 tend - tt);
            continue;
        }
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wr = o->w + (size_t)r * o->w_row_bytes;
            for (int64_t t = tt; t < tend; t++)
                dot(j->cols, &o->y[t * o->rows + r], wr, o->xq + (size_t)t * o->xq_row_bytes);
        }
    }
}

/* Threads take chunks of row tiles from a shared counter rather than fixed shares, so
 * a thread that runs slower (a little core, or one the OS preempts) does less of the
 * work instead of holding everyone up. Chunks shrink as the work runs out (guided
 * scheduling: a chunk is the remaining tiles / (2 * threads), at least one tile), so
 * the threads finish within about one row tile of each other: with fixed chunks of
 * 1/16 of the matrix, decode spent ~10 % of its time in the pool waiting for the
 * last chunk. The products of a fused multiply are one run of tiles, the first
 * product's then the next one's, so a chunk may span two products; each product's
 * tiles start at its own row 0. Which thread computes a row never changes its value:
 * every output is computed by the same tile arithmetic. */
static void mm_worker(void *varg, int ith, int nth)
{
    (void)ith;
    mm_job *j = varg;
    int64_t a = atomic_load_explicit(&j->next_chunk, memory_order_relaxed);
    for (;;) {
        if (a >= j->tiles)
            break;
        int64_t n = (j->tiles - a) / (2 * (int64_t)nth);
        if (n < 1)
            n = 1;
        /* On failure `a` is reloaded with the counter's current value. */
        if (!atomic_compare_exchange_weak_explicit(&j->next_chunk, &a, a + n,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        const int64_t b = a + n;
        for (int i = 0; i < j->n_ops; i++) {
            const mm_op *o = &j->ops[i];
            const int64_t ot = (o->rows + IG_MM_ROW_TILE - 1) / IG_MM_ROW_TILE;
            const int64_t lo = a > o->tile0 ? a - o->tile0 : 0;
            const int64_t hi = b - o->tile0 < ot ? b - o->tile0 : ot;
            if (lo >= hi)
                continue;
            const int64_t step = j->n_tok > 1 && j->k->gemm_rows[o->wtype] > IG_MM_ROW_TILE
                                     ? j->k->gemm_rows[o->wtype]
                                     : IG_MM_ROW_TILE;
            const int64_t r1 = hi * IG_MM_ROW_TILE < o->rows ? hi * IG_MM_ROW_TILE : o->rows;
            for (int64_t r = lo * IG_MM_ROW_TILE; r < r1; r += step)
                mm_rows(j, o, r, r + step < r1 ? r + step : r1);
        }
        a = atomic_load_explicit(&j->next_chunk, memory_order_relaxed);
    }
}

size_t ig_matmul_scratch_bytes(ig_type wtype, int64_t cols, int64_t n_tok)
{
    return ig_matmul_n_scratch_bytes(1, &wtype, cols, n_tok);
}

/* The distinct non-F32 vec_dot_types of the products, in first-seen order. */
static int distinct_vdts(int n, const ig_type *wtypes, ig_type *vdts)
{
    int nv = 0;
    for (int i = 0; i < n; i++) {
        ig_type v = ig_vec_dot_type(wtypes[i]);
        int seen = v == IG_TYPE_F32;
        for (int u = 0; u < nv && !seen; u++)
            seen = vdts[u] == v;
        if (!seen)
            vdts[nv++] = v;
    }
    return nv;
}

size_t ig_matmul_n_scratch_bytes(int n, const ig_type *wtypes, int64_t cols, int64_t n_tok)
{
    assert(n >= 1 && n <= IG_MATMUL_MAX_OPS);
    ig_type vdts[IG_MATMUL_MAX_OPS];
    const int nv = distinct_vdts(n, wtypes, vdts);
    size_t bytes = 0;
    for (int v = 0; v < nv; v++)
        bytes += ig_type_row_bytes(vdts[v], cols) * (size_t)n_tok;
    return bytes;
}

void ig_matmul_n(ig_pool *pool, const ig_kernels *k, int n, const ig_matmul_out *outs, int64_t cols,
                 const float *x, int64_t n_tok, void *scratch)
{
    assert(n >= 1 && n <= IG_MATMUL_MAX_OPS);
    mm_op ops[IG_MATMUL_MAX_OPS];
    ig_type wtypes[IG_MATMUL_MAX_OPS];
    mm_job j = {.k = k, .ops = ops, .n_ops = n, .cols = cols, .n_tok = n_tok, .x = x};
    for (int i = 0; i < n; i++)
        wtypes[i] = outs[i].wtype;
    j.n_conv = distinct_vdts(n, wtypes, j.conv_type);
    uint8_t *dst = scratch;
    for (int v = 0; v < j.n_conv; v++) {
        assert(scratch);
        j.conv_dst[v] = dst;
        dst += ig_type_row_bytes(j.conv_type[v], cols) * (size_t)n_tok;
    }
    for (int i = 0; i < n; i++) {
        const ig_type wt = outs[i].wtype, vdt = ig_vec_dot_type(wt);
        assert(k && k->vec_dot[wt]);
        assert(cols % ig_type_block_size(wt) == 0);
        mm_op *o = &ops[i];
        *o = (mm_op){.y = outs[i].y, .w = outs[i].w, .wtype = wt, .rows = outs[i].rows,
                     .w_row_bytes = ig_type_row_bytes(wt, cols), .tile0 = j.tiles};
        if (vdt == IG_TYPE_F32) {
            o->xq = (const uint8_t *)x;
            o->xq_row_bytes = (size_t)cols * sizeof(float);
        } else {
            for (int v = 0; v < j.n_conv; v++)
                if (j.conv_type[v] == vdt)
                    o->xq = j.conv_dst[v];
            o->xq_row_bytes = ig_type_row_bytes(vdt, cols);
        }
        j.tiles += (o->rows + IG_MM_ROW_TILE - 1) / IG_MM_ROW_TILE;
    }
    if (j.n_conv > 0) {
        if (n_tok == 1 || ig_pool_size(pool) == 1)
            mm_convert(&j, 0, 1);
        else
            ig_pool_run(pool, mm_convert, &j);
    }
    atomic_init(&j.next_chunk, 0);
    ig_pool_run(pool, mm_worker, &j);
}

void ig_matmul(ig_pool *pool, const ig_kernels *k, float *y, const void *w, ig_type wtype,
               int64_t rows, int64_t cols, const float *x, int64_t n_tok, void *scratch)
{
    const ig_matmul_out out = {.y = y, .w = w, .wtype = wtype, .rows = rows};
    ig_matmul_n(pool, k, 1, &out, cols, x, n_tok, scratch);
}
