/*
 * test_coord_scheduler.c — the pure scheduler: placement by model, route, free slots
 * and speed; deadlines; excluded nodes last; fairness between API keys in the queue.
 */
#include "coord.h"
#include "ig_check.h"

#include <string.h>

static ig_sched_node node(uint64_t h, const char *model, bool cloud, int slots, int active, double tps)
{
    ig_sched_node n;
    memset(&n, 0, sizeof n);
    n.handle = h;
    n.models[0] = model;
    n.n_models = 1;
    n.cloud = cloud;
    n.slots = slots;
    n.active = active;
    n.tokens_per_second = tps;
    n.available = true;
    return n;
}

static ig_sched_job job(uint64_t h, uint64_t key, const char *model, int tokens, int64_t deadline)
{
    ig_sched_job j;
    memset(&j, 0, sizeof j);
    j.handle = h;
    j.key = key;
    j.seq = h;
    snprintf(j.model, sizeof j.model, "%s", model);
    j.tokens_left = tokens;
    j.deadline_ms = deadline;
    return j;
}

static void test_places_on_node_with_model_and_free_slot(void)
{
    ig_sched_node nodes[3] = {node(1, "cloud", true, 4, 0, 100), node(2, "edge", false, 2, 2, 100),
                              node(3, "edge", false, 2, 1, 100)};
    ig_sched_job j = job(10, 1, "edge", 10, 100000);
    size_t idx = 99;
    IG_CHECK(ig_sched_place(nodes, 3, &j, 0, &idx) == IG_SCHED_PLACED, "placed");
    IG_CHECK(idx == 2, "the edge node with a free slot, got %zu", idx);
    nodes[2].active = 2;
    IG_CHECK(ig_sched_place(nodes, 3, &j, 0, &idx) == IG_SCHED_WAIT, "all edge slots busy: wait");
    ig_sched_job unknown = job(11, 1, "nope", 10, 100000);
    IG_CHECK(ig_sched_place(nodes, 3, &unknown, 0, &idx) == IG_SCHED_NO_MODEL, "unknown model");
}

static void test_prefers_faster_and_less_loaded_node(void)
{
    ig_sched_node nodes[3] = {node(1, "edge", false, 4, 2, 100), node(2, "edge", false, 4, 0, 50),
                              node(3, "edge", false, 4, 0, 100)};
    ig_sched_job j = job(10, 1, "edge", 100, 1000000);
    size_t idx = 99;
    IG_CHECK(ig_sched_place(nodes, 3, &j, 0, &idx) == IG_SCHED_PLACED && idx == 2, "idle fast node, got %zu", idx);
    nodes[2].active = 3; /* 100/4 = 25 tok/s per stream now; the idle 50 tok/s node wins */
    IG_CHECK(ig_sched_place(nodes, 3, &j, 0, &idx) == IG_SCHED_PLACED && idx == 1, "got %zu", idx);
}

static void test_refuses_when_no_node_can_meet_deadline(void)
{
    ig_sched_node nodes[1] = {node(1, "edge", false, 4, 0, 10)};
    ig_sched_job j = job(10, 1, "edge", 100, 5000); /* needs 10 s at 10 tok/s */
    size_t idx;
    IG_CHECK(ig_sched_place(nodes, 1, &j, 0, &idx) == IG_SCHED_TOO_SLOW, "too slow");
    j.deadline_ms = 20000;
    IG_CHECK(ig_sched_place(nodes, 1, &j, 0, &idx) == IG_SCHED_PLACED, "in time");
    /* time is an argument: the same job later misses its deadline */
    IG_CHECK(ig_sched_place(nodes, 1, &j, 15000, &idx) == IG_SCHED_TOO_SLOW, "later: too slow");
}

static void test_route_restricts_node_class(void)
{
    ig_sched_node nodes[2] = {node(1, "m", false, 4, 0, 100), node(2, "m", true, 4, 3, 100)};
    ig_sched_job j = job(10, 1, "m", 10, 100000);
    size_t idx;
    j.route = IG_ROUTE_CLOUD;
    IG_CHECK(ig_sched_place(nodes, 2, &j, 0, &idx) == IG_SCHED_PLACED && idx == 1, "cloud route");
    j.route = IG_ROUTE_EDGE;
    IG_CHECK(ig_sched_place(nodes, 2, &j, 0, &idx) == IG_SCHED_PLACED && idx == 0, "edge route");
    nodes[0].cloud = true;
    IG_CHECK(ig_sched_place(nodes, 2, &j, 0, &idx) == IG_SCHED_NO_MODEL, "no edge node");
}

static void test_excluded_nodes_are_used_last(void)
{
    ig_sched_node nodes[2] = {node(1, "edge", false, 4, 0, 100), node(2, "edge", false, 4, 3, 10)};
    ig_sched_job j = job(10, 1, "edge", 10, 100000);
    j.exclude[0] = 1;
    j.n_exclude = 1;
    size_t idx;
    IG_CHECK(ig_sched_place(nodes, 2, &j, 0, &idx) == IG_SCHED_PLACED && idx == 1, "the other node");
    nodes[1].active = 4;
    IG_CHECK(ig_sched_place(nodes, 2, &j, 0, &idx) == IG_SCHED_PLACED && idx == 0, "excluded as last resort");
}

static uint64_t running_counts[4];
static uint64_t running(void *user, uint64_t key)
{
    (void)user;
    return running_counts[key];
}

static void test_queue_is_fair_between_keys(void)
{
    static ig_sched_queue q;
    ig_sched_queue_init(&q);
    /* key 1 floods the queue first, key 2 arrives later with one job */
    for (uint64_t i = 1; i <= 5; i++) {
        ig_sched_job j = job(i, 1, "edge", 10, 100000);
        IG_CHECK(ig_sched_queue_push(&q, &j) == IG_OK, "push");
    }
    ig_sched_job late = job(6, 2, "edge", 10, 100000);
    ig_sched_queue_push(&q, &late);
    ig_sched_node nodes[1] = {node(1, "edge", false, 1, 0, 100)};
    running_counts[1] = 3; /* key 1 already runs 3 jobs, key 2 none */
    running_counts[2] = 0;
    ig_sched_job out;
    size_t idx;
    IG_CHECK(ig_sched_next(&q, nodes, 1, running, NULL, 0, &out, &idx), "one starts");
    IG_CHECK(out.handle == 6, "the key with nothing running goes first, got %llu", (unsigned long long)out.handle);
    running_counts[2] = 1;
    running_counts[1] = 1;
    IG_CHECK(ig_sched_next(&q, nodes, 1, running, NULL, 0, &out, &idx) && out.handle == 1,
             "then FIFO within the key, got %llu", (unsigned long long)out.handle);
    IG_CHECK(q.n == 4, "queue shrank to %zu", q.n);
    nodes[0].active = 1;
    IG_CHECK(!ig_sched_next(&q, nodes, 1, running, NULL, 0, &out, &idx), "no slot: nothing starts");
    IG_CHECK(ig_sched_queue_remove(&q, 3) && q.n == 3, "remove");
}

static void test_queue_skips_jobs_that_cannot_start(void)
{
    static ig_sched_queue q;
    ig_sched_queue_init(&q);
    ig_sched_job a = job(1, 1, "cloud", 10, 100000);
    ig_sched_job b = job(2, 1, "edge", 10, 100000);
    ig_sched_queue_push(&q, &a);
    ig_sched_queue_push(&q, &b);
    ig_sched_node nodes[1] = {node(1, "edge", false, 1, 0, 100)};
    ig_sched_job out;
    size_t idx;
    IG_CHECK(ig_sched_next(&q, nodes, 1, NULL, NULL, 0, &out, &idx) && out.handle == 2,
             "a job for a busy model does not block another model");
}

static void test_queue_is_bounded(void)
{
    static ig_sched_queue q;
    ig_sched_queue_init(&q);
    ig_sched_job j = job(1, 1, "edge", 10, 1);
    for (int i = 0; i < IG_SCHED_MAX_PENDING; i++)
        ig_sched_queue_push(&q, &j);
    IG_CHECK(ig_sched_queue_push(&q, &j) == IG_ERR_BUSY, "full queue refuses");
}

int main(void)
{
    IG_RUN(test_places_on_node_with_model_and_free_slot);
    IG_RUN(test_prefers_faster_and_less_loaded_node);
    IG_RUN(test_refuses_when_no_node_can_meet_deadline);
    IG_RUN(test_route_restricts_node_class);
    IG_RUN(test_excluded_nodes_are_used_last);
    IG_RUN(test_queue_is_fair_between_keys);
    IG_RUN(test_queue_skips_jobs_that_cannot_start);
    IG_RUN(test_queue_is_bounded);
    return ig_check_exit();
}
