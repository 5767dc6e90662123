/*
 * pool.c — the engine's thread pool: n_threads - 1 workers plus the calling thread
 * run one function together (ig_pool_run), once per matrix multiply.
 *
 * A decode step runs a hundred or more jobs back to back, so a worker that has just
 * finished one polls briefly (bounded, IG_POOL_SPIN_NS) for the next before it goes
 * to sleep on the condition variable; a pool with no work sleeps and costs no CPU.
 *
 * Invariants: `generation` only grows, and only ig_pool_run changes it (under mu);
 * `pending` counts the workers still running the current job.
 */
#include "kernels.h"

#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define IG_POOL_MAX_THREADS 256
/* How long a worker polls for the next job after finishing one (and the caller for the
 * workers) before sleeping; after the first IG_POOL_PAUSE_NS it yields the CPU between
 * polls, so on a busy machine a polling worker gives its core to whoever else is
 * runnable (often our own caller). Waking a sleeper costs more than the wait on a VM:
 * the futex wake-up of a thread whose vCPU has halted is an inter-processor interrupt
 * through the hypervisor, measured at 0.1-1 ms here (bench/wake_cost.c). With 0.2 ms
 * of polling, a 2-thread decode on such a VM, whose vCPUs are also descheduled for
 * milliseconds at a time, ran at 15-27 tok/s on the Q4_0 benchmark model against
 * 66-83 with 5 ms (alternated runs, same minutes; bench/PROFILE.md): the pauses between a decode step's
 * jobs (sampling, a stolen vCPU) outlast 0.2 ms and every one then paid a wake-up. An
 * idle pool still sleeps after 5 ms. */
#ifndef IG_POOL_SPIN_NS
#define IG_POOL_SPIN_NS 5000000L
#endif
#define IG_POOL_PAUSE_NS 20000L

struct ig_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* workers wait here for a new generation */
    pthread_cond_t done; /* the caller waits here for pending == 0 */
    atomic_uint_fast64_t generation;
    atomic_int pending;
    bool stop;
    ig_pool_fn fn;
    void *arg;
};

typedef struct {
    ig_pool *pool;
    int index;
} worker_arg;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Polls until *gen differs from seen (or *count reaches zero when gen is NULL), at
 * most IG_POOL_SPIN_NS. Returns true when the condition was met. */
static bool poll_briefly(const atomic_uint_fast64_t *gen, uint64_t seen, const atomic_int *count)
{
    int64_t start = now_ns();
    for (int spins = 1;; spins++) {
        if (gen ? atomic_load_explicit(gen, memory_order_acquire) != seen
                : atomic_load_explicit(count, memory_order_acquire) == 0)
            return true;
        if (spins % 64 == 0) {
            int64_t waited = now_ns() - start;
            if (waited > IG_POOL_SPIN_NS)
                return false;
            if (waited > IG_POOL_PAUSE_NS)
                sched_yield();
        }
        cpu_relax();
    }
}

static void finish_job(ig_pool *p)
{
    if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
        /* The last worker out wakes the caller if it went to sleep. */
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

static void *worker_main(void *varg)
{
    worker_arg *wa = varg;
    ig_pool *p = wa->pool;
    int index = wa->index;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        /* Poll for a short while: the next job usually follows within microseconds. */
        poll_briefly(&p->generation, seen, NULL);
        pthread_mutex_lock(&p->mu);
        while (!p->stop && atomic_load_explicit(&p->generation, memory_order_acquire) == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        ig_pool_fn fn = p->fn;
        void *arg = p->arg;
        pthread_mutex_unlock(&p->mu);
        fn(arg, index, p->n_threads);
        finish_job(p);
    }
}

ig_pool *ig_pool_new(int n_threads, ig_err *err)
{
    if (n_threads < 1 || n_threads > IG_POOL_MAX_THREADS) {
        ig_err_set(err, IG_ERR_INVALID, "thread pool: %d threads (allowed 1..%d)", n_threads,
                   IG_POOL_MAX_THREADS);
        return NULL;
    }
    ig_pool *p = calloc(1, sizeof *p);
    if (!p) {
        ig_err_set(err, IG_ERR_NOMEM, "thread pool: out of memory");
        return NULL;
    }
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            ig_pool_free(p);
            ig_err_set(err, IG_ERR_NOMEM, "thread pool: out of memory");
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa)
            *wa = (worker_arg){p, i};
        int rc = wa ? pthread_create(&p->threads[i - 1], NULL, worker_main, wa) : -1;
        if (rc != 0) {
            free(wa);
            p->n_threads = i; /* only the started workers are joined */
            ig_pool_free(p);
            ig_err_set(err, IG_ERR_NOMEM, "thread pool: cannot start thread %d of %d", i,
                       n_threads);
            return NULL;
        }
    }
    return p;
}

void ig_pool_free(ig_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++)
        pthread_join(p->threads[i - 1], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int ig_pool_size(const ig_pool *p)
{
    return p ? p->n_threads : 1;
}

void ig_pool_run(ig_pool *p, ig_pool_fn fn, void *arg)
{
    if (!p || p->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    assert(atomic_load(&p->pending) == 0);
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    fn(arg, 0, p->n_threads);

    /* The workers run jobs of the same size: poll first, then sleep. */
    poll_briefly(NULL, 0, &p->pending);
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
