/*
 * membw.c — benchmark support: what `idlegrid bench` needs from the engine to judge a
 * decode speed against the machine's memory-bandwidth roofline.
 *
 *   ig_measure_read_bandwidth   streaming-read bandwidth of this machine, measured now
 *   ig_model_decode_weight_bytes  weight bytes one decoded token reads
 *   ig_model_kv_position_bytes    KV-cache bytes of one position (all layers, K and V)
 *
 * Decoding one token reads every weight matrix once, so tokens/s can be at most
 * bandwidth / bytes-per-token. The bandwidth is measured the way decode reads: several
 * threads each stream through their own contiguous slice of a buffer far larger than
 * the last-level cache, with wide loads and several independent accumulators so the
 * loop is limited by memory, not by the adds. The best of several timed passes is
 * kept (the machine's capability, not its worst moment).
 *
 * Touches only libc and pthreads; the buffer is freed before returning.
 */
#include "engine.h"
#include "model_internal.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IG_MEMBW_MAX_THREADS 256
#define IG_MEMBW_DEFAULT_BYTES ((size_t)512 << 20)
#define IG_MEMBW_MIN_BYTES ((size_t)1 << 20)
#define IG_MEMBW_MIN_PASSES 3
#define IG_MEMBW_MAX_PASSES 1000
#define IG_MEMBW_ALIGN 64

/* 16 bytes: one SSE2 or NEON register, which every 64-bit target has. */
typedef uint64_t membw_vec __attribute__((vector_size(16)));

typedef struct {
    unsigned char *buf;
    size_t bytes;        /* multiple of 128 * n_threads */
    int n_threads;
    double seconds;
    /* The start gate: no thread touches the barrier until all were created, so a
     * failed pthread_create can still send the started ones home (abort). */
    pthread_mutex_t mu;
    pthread_cond_t gate;
    bool open, abort;
    pthread_barrier_t barrier;
    bool stop;           /* written by thread 0 between the barriers, read after them */
    double best_seconds; /* fastest pass (thread 0 only) */
    int passes;
    uint64_t sink[IG_MEMBW_MAX_THREADS]; /* keeps the reads from being optimised away */
} membw_job;

typedef struct {
    membw_job *job;
    int index;
} membw_arg;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* XOR of a slice: eight independent 16-byte accumulators, 128 bytes (two cache lines)
 * a step, so enough loads are in flight to keep the memory system busy. */
static uint64_t read_slice(const unsigned char *p, size_t bytes)
{
    assert(bytes % 128 == 0);
    membw_vec acc[8] = {{0}};
    for (size_t i = 0; i < bytes; i += 128)
        for (int k = 0; k < 8; k++) {
            membw_vec x;
            memcpy(&x, p + i + 16 * (size_t)k, 16);
            acc[k] ^= x;
        }
    for (int k = 1; k < 8; k++)
        acc[0] ^= acc[k];
    return acc[0][0] ^ acc[0][1];
}

static void *membw_worker(void *varg)
{
    membw_arg *arg = varg;
    membw_job *job = arg->job;
    pthread_mutex_lock(&job->mu);
    while (!job->open)
        pthread_cond_wait(&job->gate, &job->mu);
    bool abort = job->abort;
    pthread_mutex_unlock(&job->mu);
    if (abort)
        return NULL;

    const size_t slice = job->bytes / (size_t)job->n_threads;
    unsigned char *mine = job->buf + slice * (size_t)arg->index;
    /* First touch by the thread that reads the slice, with non-zero bytes: pages never
     * written would all map the kernel's one zero page and be read from cache. */
    memset(mine, 0x5a + arg->index, slice);
    uint64_t sink = 0;
    double start = 0;
    for (;;) {
        pthread_barrier_wait(&job->barrier);
        if (job->stop)
            break;
        double t0 = 0;
        if (arg->index == 0) {
            t0 = now_seconds();
            if (job->passes == 0)
                start = t0;
        }
        sink ^= read_slice(mine, slice);
        pthread_barrier_wait(&job->barrier);
        if (arg->index == 0) {
            double t1 = now_seconds();
            if (job->passes == 0 || t1 - t0 < job->best_seconds)
                job->best_seconds = t1 - t0;
            job->passes++;
            job->stop = job->passes >= IG_MEMBW_MAX_PASSES ||
                        (job->passes >= IG_MEMBW_MIN_PASSES && t1 - start >= job->seconds);
        }
    }
    job->sink[arg->index] = sink;
    return NULL;
}

static void open_gate(membw_job *job, bool abort)
{
    pthread_mutex_lock(&job->mu);
    job->open = true;
    job->abort = abort;
    pthread_cond_broadcast(&job->gate);
    pthread_mutex_unlock(&job->mu);
}

double ig_measure_read_bandwidth(int n_threads, size_t bytes, double seconds, ig_err *err)
{
    if (n_threads < 1 || n_threads > IG_MEMBW_MAX_THREADS) {
        ig_err_set(err, IG_ERR_INVALID, "bandwidth: %d threads is outside 1..%d", n_threads,
                   IG_MEMBW_MAX_THREADS);
        return 0;
    }
    if (!(seconds >= 0) || seconds > 3600) {
        ig_err_set(err, IG_ERR_INVALID, "bandwidth: %g seconds is outside 0..3600", seconds);
        return 0;
    }
    if (bytes == 0)
        bytes = IG_MEMBW_DEFAULT_BYTES;
    if (bytes < IG_MEMBW_MIN_BYTES)
        bytes = IG_MEMBW_MIN_BYTES;
    /* Every slice a whole number of 128-byte steps. */
    bytes -= bytes % ((size_t)128 * (size_t)n_threads);

    membw_job *job = calloc(1, sizeof *job);
    membw_arg *args = calloc((size_t)n_threads, sizeof *args);
    pthread_t *tids = calloc((size_t)n_threads, sizeof *tids);
    unsigned char *buf = aligned_alloc(IG_MEMBW_ALIGN, bytes);
    double gb_s = 0;
    if (!job || !args || !tids || !buf) {
        ig_err_set(err, IG_ERR_NOMEM, "bandwidth: cannot allocate a %zu-byte buffer", bytes);
        goto out;
    }
    job->buf = buf;
    job->bytes = bytes;
    job->n_threads = n_threads;
    job->seconds = seconds;
    if (pthread_mutex_init(&job->mu, NULL) || pthread_cond_init(&job->gate, NULL) ||
        pthread_barrier_init(&job->barrier, NULL, (unsigned)n_threads)) {
        ig_err_set(err, IG_ERR_NOMEM, "bandwidth: cannot create the thread gate and barrier");
        goto out; /* the process is out of resources; the half-made sync objects hold none */
    }
    int started = 1;
    for (int i = 0; i < n_threads; i++)
        args[i] = (membw_arg){job, i};
    for (int i = 1; i < n_threads && pthread_create(&tids[i], NULL, membw_worker, &args[i]) == 0; i++)
        started++;
    open_gate(job, started < n_threads);
    if (started == n_threads)
        membw_worker(&args[0]);
    for (int i = 1; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_barrier_destroy(&job->barrier);
    pthread_cond_destroy(&job->gate);
    pthread_mutex_destroy(&job->mu);
    if (started < n_threads) {
        ig_err_set(err, IG_ERR_NOMEM, "bandwidth: cannot start %d threads", n_threads);
        goto out;
    }
    assert(job->passes >= IG_MEMBW_MIN_PASSES && job->best_seconds > 0);
    gb_s = (double)bytes / job->best_seconds * 1e-9;
out:
    free(buf);
    free(tids);
    free(args);
    free(job);
    return gb_s;
}

/* ---- bytes a decoded token reads ------------------------------------------------ */

uint64_t ig_model_decode_weight_bytes(const ig_model *m)
{
    const ig_model_info *in = &m->info;
    uint64_t total = 0;
    for (int il = 0; il < in->n_layer; il++) {
        const ig_layer *L = &m->layers[il];
        const ig_tensor *list[] = {L->attn_norm, L->wq, L->wk, L->wv, L->wo, L->bq, L->bk,
                                   L->bv, L->ffn_norm, L->ffn_gate, L->ffn_up, L->ffn_down};
        for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
            if (list[i])
                total += list[i]->size;
    }
    total += m->output_norm->size;
    /* The output matrix is read whole for the logits; of the embedding table only
     * the token's row (when tied they are the same tensor: whole plus nothing). */
    total += m->output->size;
    if (m->output != m->tok_embd)
        total += m->tok_embd->size / (size_t)m->tok_embd->ne[1];
    if (m->rope_freq_factors)
        total += (uint64_t)m->n_rot / 2 * sizeof(float);
    return total;
}

uint64_t ig_model_kv_position_bytes(const ig_model *m, ig_type kv_type)
{
    const ig_model_info *in = &m->info;
    int64_t kv_dim = (int64_t)in->n_head_kv * in->head_dim;
    return 2 * (uint64_t)in->n_layer * ig_type_row_bytes(kv_type, kv_dim);
}
