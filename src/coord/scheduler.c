/*
 * scheduler.c — where a job runs and which waiting job goes next.
 *
 * A pure module: no I/O, no clock reads, no allocation; time is the now_ms argument so
 * the simulator can run the very same code. Placement puts a job on the node expected
 * to finish it first (model present, route's class, free slot, measured tokens/s shared
 * across its running jobs). The queue is fair between API keys: the key with the
 * fewest running jobs starts next, FIFO within a key, so one buyer's burst cannot starve
 * another.
 */
#include "coord.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* A node that has not reported a speed is assumed slow rather than infinitely fast. */
#define UNKNOWN_TOKENS_PER_SECOND 5.0

double ig_sched_estimate_ms(const ig_sched_node *node, int32_t tokens)
{
    double tps = node->tokens_per_second > 0 ? node->tokens_per_second : UNKNOWN_TOKENS_PER_SECOND;
    /* Slots share the node's compute: each running job slows the others down. */
    double share = (double)(node->active + 1);
    if (tokens < 1)
        tokens = 1;
    return (double)tokens * share * 1000.0 / tps;
}

static bool serves(const ig_sched_node *n, const ig_sched_job *job)
{
    if (!n->available)
        return false;
    if (job->route == IG_ROUTE_EDGE && n->cloud)
        return false;
    if (job->route == IG_ROUTE_CLOUD && !n->cloud)
        return false;
    for (int32_t i = 0; i < n->n_models && i < IG_SCHED_MAX_MODELS; i++)
        if (n->models[i] && strcmp(n->models[i], job->model) == 0)
            return true;
    return false;
}

static bool excluded(const ig_sched_job *job, uint64_t handle)
{
    for (int32_t i = 0; i < job->n_exclude && i < IG_SCHED_MAX_EXCLUDE; i++)
        if (job->exclude[i] == handle)
            return true;
    return false;
}

ig_sched_result ig_sched_place(const ig_sched_node *nodes, size_t n_nodes,
                               const ig_sched_job *job, int64_t now_ms, size_t *node_index)
{
    bool any_model = false, any_in_time = false;
    size_t best = n_nodes;
    double best_ms = 0;
    bool best_excluded = true;
    for (size_t i = 0; i < n_nodes; i++) {
        const ig_sched_node *n = &nodes[i];
        if (!serves(n, job))
            continue;
        any_model = true;
        /* Could this node make the deadline if it were idle? */
        ig_sched_node idle = *n;
        idle.active = 0;
        if ((double)now_ms + ig_sched_estimate_ms(&idle, job->tokens_left) > (double)job->deadline_ms)
            continue;
        any_in_time = true;
        if (n->active >= n->slots)
            continue;
        double ms = ig_sched_estimate_ms(n, job->tokens_left);
        bool ex = excluded(job, n->handle);
        /* Any node that did not fail this job beats every one that did. */
        if (best == n_nodes || (best_excluded && !ex) || (ex == best_excluded && ms < best_ms)) {
            best = i;
            best_ms = ms;
            best_excluded = ex;
        }
    }
    if (!any_model)
        return IG_SCHED_NO_MODEL;
    if (!any_in_time)
        return IG_SCHED_TOO_SLOW;
    if (best == n_nodes)
        return IG_SCHED_WAIT;
    *node_index = best;
    return IG_SCHED_PLACED;
}

void ig_sched_queue_init(ig_sched_queue *q)
{
    q->n = 0;
}

ig_code ig_sched_queue_push(ig_sched_queue *q, const ig_sched_job *job)
{
    if (q->n >= IG_SCHED_MAX_PENDING)
        return IG_ERR_BUSY;
    q->jobs[q->n++] = *job;
    return IG_OK;
}

static void remove_at(ig_sched_queue *q, size_t i)
{
    assert(i < q->n);
    memmove(&q->jobs[i], &q->jobs[i + 1], (q->n - i - 1) * sizeof q->jobs[0]);
    q->n--;
}

bool ig_sched_queue_remove(ig_sched_queue *q, uint64_t handle)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->jobs[i].handle == handle) {
            remove_at(q, i);
            return true;
        }
    return false;
}

bool ig_sched_next(ig_sched_queue *q, const ig_sched_node *nodes, size_t n_nodes,
                   uint64_t (*running)(void *user, uint64_t key), void *user, int64_t now_ms,
                   ig_sched_job *job_out, size_t *node_index)
{
    /* Visit waiting jobs in fairness order: (running jobs of its key, arrival). A job
     * that cannot be placed now does not block the ones behind it. The queue is small
     * (bounded), so a selection per round is cheap enough and needs no allocation. */
    static const uint64_t NONE = UINT64_MAX;
    uint64_t last_run = 0, last_seq = 0;
    bool first = true;
    for (size_t round = 0; round < q->n; round++) {
        size_t pick = q->n;
        uint64_t pick_run = NONE, pick_seq = NONE;
        for (size_t i = 0; i < q->n; i++) {
            uint64_t r = running ? running(user, q->jobs[i].key) : 0;
            uint64_t s = q->jobs[i].seq;
            /* strictly after the previous candidate in (run, seq) order */
            if (!first && (r < last_run || (r == last_run && s <= last_seq)))
                continue;
            if (pick == q->n || r < pick_run || (r == pick_run && s < pick_seq)) {
                pick = i;
                pick_run = r;
                pick_seq = s;
            }
        }
        if (pick == q->n)
            return false;
        first = false;
        last_run = pick_run;
        last_seq = pick_seq;
        size_t idx;
        if (ig_sched_place(nodes, n_nodes, &q->jobs[pick], now_ms, &idx) == IG_SCHED_PLACED) {
            *job_out = q->jobs[pick];
            *node_index = idx;
            remove_at(q, pick);
            return true;
        }
    }
    return false;
}
