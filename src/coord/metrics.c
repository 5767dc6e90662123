/*
 * metrics.c — /metrics in the Prometheus text format: requests by endpoint and
 * status, tokens and jobs per node, failovers, refusals, and histograms of time to
 * first token and request duration. Counters only grow; per-node series are kept for
 * up to MAX_NODE_METRICS distinct node ids (later ones fold into node="other").
 */
#include "coord_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double BUCKETS[N_LAT_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                              0.5,   1,    2.5,   5,    10,  30};
static const char *const ENDPOINTS[] = {"completions", "chat_completions", "models",
                                        "metrics", "healthz", "other"};
static const int STATUSES[] = {200, 400, 401, 404, 413, 429, 503, 0};

static int status_index(int status)
{
    for (int i = 0; i < 7; i++)
        if (STATUSES[i] == status)
            return i;
    return 7; /* everything else */
}

void metrics_request(ig_coord *c, int endpoint, int status)
{
    if (endpoint < 0 || endpoint > EP_OTHER)
        endpoint = EP_OTHER;
    c->m.requests[endpoint][status_index(status)]++;
}

node_metrics *metrics_node(ig_coord *c, const char *node_id)
{
    for (int32_t i = 0; i < c->m.n_nodes; i++)
        if (strcmp(c->m.nodes[i].node_id, node_id) == 0)
            return &c->m.nodes[i];
    if (c->m.n_nodes < MAX_NODE_METRICS - 1) {
        node_metrics *n = &c->m.nodes[c->m.n_nodes++];
        memset(n, 0, sizeof *n);
        snprintf(n->node_id, sizeof n->node_id, "%s", node_id);
        return n;
    }
    node_metrics *other = &c->m.nodes[MAX_NODE_METRICS - 1];
    snprintf(other->node_id, sizeof other->node_id, "other");
    return other;
}

static void observe(uint64_t *buckets, double *sum, uint64_t *count, double v)
{
    for (int i = 0; i < N_LAT_BUCKETS; i++)
        if (v <= BUCKETS[i])
            buckets[i]++;
    buckets[N_LAT_BUCKETS]++;
    *sum += v;
    (*count)++;
}

void metrics_first_token(ig_coord *c, double seconds)
{
    observe(c->m.ttft_buckets, &c->m.ttft_sum, &c->m.ttft_count, seconds);
}

void metrics_job_end(ig_coord *c, ig_job *j, const char *outcome, int64_t now_ms)
{
    if (strcmp(outcome, "ok") == 0)
        c->m.jobs_ok++;
    else if (strcmp(outcome, "cancelled") == 0)
        c->m.jobs_cancelled++;
    else
        c->m.jobs_error++;
    observe(c->m.dur_buckets, &c->m.dur_sum, &c->m.dur_count,
            (double)(now_ms - j->accepted_ms) / 1000.0);
}

typedef struct {
    char *s;
    size_t len, cap;
    bool failed;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void histogram(sbuf *b, const char *name, const char *help, const uint64_t *buckets,
                      double sum, uint64_t count)
{
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < N_LAT_BUCKETS; i++)
        put(b, "%s_bucket{le=\"%g\"} %llu\n", name, BUCKETS[i], (unsigned long long)buckets[i]);
    put(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)buckets[N_LAT_BUCKETS]);
    put(b, "%s_sum %.6f\n%s_count %llu\n", name, sum, name, (unsigned long long)count);
}

char *metrics_render(ig_coord *c)
{
    sbuf b = {malloc(8192), 0, 8192, false};
    if (!b.s)
        return NULL;
    b.s[0] = '\0';
    metrics *m = &c->m;
    put(&b, "# HELP idlegrid_http_requests_total Buyer API requests by endpoint and status.\n"
            "# TYPE idlegrid_http_requests_total counter\n");
    for (int e = 0; e <= EP_OTHER; e++)
        for (int s = 0; s < 8; s++)
            if (m->requests[e][s]) {
                char st[8];
                if (STATUSES[s])
                    snprintf(st, sizeof st, "%d", STATUSES[s]);
                else
                    snprintf(st, sizeof st, "other");
                put(&b, "idlegrid_http_requests_total{endpoint=\"%s\",status=\"%s\"} %llu\n",
                    ENDPOINTS[e], st, (unsigned long long)m->requests[e][s]);
            }
    put(&b, "# HELP idlegrid_nodes_connected Authenticated node connections.\n"
            "# TYPE idlegrid_nodes_connected gauge\nidlegrid_nodes_connected %d\n", c->n_ready);
    put(&b, "# HELP idlegrid_jobs_active Accepted jobs not finished yet.\n"
            "# TYPE idlegrid_jobs_active gauge\nidlegrid_jobs_active %d\n", c->n_jobs);
    put(&b, "# HELP idlegrid_jobs_queued Jobs waiting for a slot.\n"
            "# TYPE idlegrid_jobs_queued gauge\nidlegrid_jobs_queued %zu\n", c->queue->n);
    put(&b, "# HELP idlegrid_jobs_total Finished jobs by outcome.\n# TYPE idlegrid_jobs_total counter\n"
            "idlegrid_jobs_total{outcome=\"ok\"} %llu\nidlegrid_jobs_total{outcome=\"error\"} %llu\n"
            "idlegrid_jobs_total{outcome=\"cancelled\"} %llu\n",
        (unsigned long long)m->jobs_ok, (unsigned long long)m->jobs_error,
        (unsigned long long)m->jobs_cancelled);
    put(&b, "# HELP idlegrid_tokens_total Tokens forwarded to buyers.\n"
            "# TYPE idlegrid_tokens_total counter\nidlegrid_tokens_total %llu\n",
        (unsigned long long)m->tokens_total);
    put(&b, "# HELP idlegrid_failovers_total Jobs moved to another node mid-generation.\n"
            "# TYPE idlegrid_failovers_total counter\nidlegrid_failovers_total %llu\n",
        (unsigned long long)m->failovers);
    put(&b, "# HELP idlegrid_rejected_total Requests refused for limits or capacity.\n"
            "# TYPE idlegrid_rejected_total counter\n"
            "idlegrid_rejected_total{reason=\"rate_limit\"} %llu\n"
            "idlegrid_rejected_total{reason=\"no_capacity\"} %llu\n",
        (unsigned long long)m->rejected_429, (unsigned long long)m->rejected_503);
    put(&b, "# HELP idlegrid_node_tokens_total Tokens produced per node.\n"
            "# TYPE idlegrid_node_tokens_total counter\n");
    for (int32_t i = 0; i < m->n_nodes; i++)
        put(&b, "idlegrid_node_tokens_total{node=\"%s\"} %llu\n", m->nodes[i].node_id,
            (unsigned long long)m->nodes[i].tokens);
    put(&b, "# HELP idlegrid_node_jobs_total Jobs started per node.\n"
            "# TYPE idlegrid_node_jobs_total counter\n");
    for (int32_t i = 0; i < m->n_nodes; i++)
        put(&b, "idlegrid_node_jobs_total{node=\"%s\"} %llu\n", m->nodes[i].node_id,
            (unsigned long long)m->nodes[i].jobs);
    put(&b, "# HELP idlegrid_node_failovers_total Jobs that left a node mid-generation.\n"
            "# TYPE idlegrid_node_failovers_total counter\n");
    for (int32_t i = 0; i < m->n_nodes; i++)
        put(&b, "idlegrid_node_failovers_total{node=\"%s\"} %llu\n", m->nodes[i].node_id,
            (unsigned long long)m->nodes[i].failovers_from);
    histogram(&b, "idlegrid_time_to_first_token_seconds", "From accept to the first token.",
              m->ttft_buckets, m->ttft_sum, m->ttft_count);
    histogram(&b, "idlegrid_request_duration_seconds", "From accept to the final reply.",
              m->dur_buckets, m->dur_sum, m->dur_count);
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
