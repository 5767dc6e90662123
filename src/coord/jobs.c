/*
 * jobs.c — a buyer request's life from accept to its one final reply.
 *
 *   QUEUED ──offer──► OFFERED ──accept──► RUNNING ──done──► reply, record, free
 *     ▲                 │ reject            │ node lost / handback / job_error
 *     └─────────────────┴───────────────────┘ (re-queued with resume = tokens so far)
 *   any state ──deadline / buyer gone / attempts exhausted──► error reply, record, free
 *
 * Accepted means answered: every path ends in job_finish_ok or job_fail, which send
 * exactly one final reply (or an error event on a started stream) and record the job.
 * The seed is fixed at accept time, so a resumed job continues with the very tokens
 * an undisturbed run would have produced; tokens arriving twice (by index) are dropped.
 */
#include "coord_int.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void deadline_cb(evutil_socket_t fd, short what, void *arg);
static size_t bucket_of(const char *id);

ig_job *job_new(ig_coord *c, ig_coord_request *req, const ig_coord_key_info *key,
                key_state *ks, struct evhttp_request *http)
{
    ig_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->c = c;
    j->handle = ++c->next_handle;
    j->seq = ++c->next_seq;
    unsigned char rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    char hex[25];
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(j->id, sizeof j->id, "%s-%s", req->kind == IG_COORD_CHAT ? "chatcmpl" : "cmpl", hex);
    j->req = *req;
    memset(req, 0, sizeof *req); /* ownership moved */
    if (j->req.has_seed) {
        j->seed = j->req.seed;
    } else {
        /* Drawn now so a resumed run samples exactly as the first would have; kept
         * below 2^53 so every JSON reader holds it exactly. */
        uint64_t s;
        randombytes_buf(&s, sizeof s);
        j->seed = s & ((1ull << 53) - 1);
    }
    j->key = *key;
    j->ks = ks;
    ks->running++;
    j->state = JOB_QUEUED;
    j->created = (int64_t)time(NULL);
    j->accepted_ms = coord_now_ms();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    j->accepted_unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t dl = j->req.deadline_ms > 0 ? j->req.deadline_ms : c->cfg.default_deadline_ms;
    j->deadline_ms = j->accepted_ms + dl;
    j->http = http;
    j->deadline_ev = evtimer_new(c->base, deadline_cb, j);
    struct timeval tv = {(time_t)(dl / 1000), (suseconds_t)((dl % 1000) * 1000)};
    evtimer_add(j->deadline_ev, &tv);
    j->next = c->jobs;
    if (c->jobs)
        c->jobs->prev = j;
    c->jobs = j;
    c->n_jobs++;
    size_t b = bucket_of(j->id);
    j->bucket_next = c->job_buckets[b];
    c->job_buckets[b] = j;
    return j;
}

static size_t bucket_of(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h % JOB_BUCKETS);
}

/* Every node message names its job: a hash lookup keeps that O(1) with thousands of
 * streams. */
ig_job *job_find(ig_coord *c, const char *job_id)
{
    for (ig_job *j = c->job_buckets[bucket_of(job_id)]; j; j = j->bucket_next)
        if (strcmp(j->id, job_id) == 0)
            return j;
    return NULL;
}

static ig_job *job_by_handle(ig_coord *c, uint64_t h)
{
    for (ig_job *j = c->jobs; j; j = j->next)
        if (j->handle == h)
            return j;
    return NULL;
}

static void job_free(ig_job *j)
{
    ig_coord *c = j->c;
    if (j->prev)
        j->prev->next = j->next;
    else
        c->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    c->n_jobs--;
    for (ig_job **pp = &c->job_buckets[bucket_of(j->id)]; *pp; pp = &(*pp)->bucket_next)
        if (*pp == j) {
            *pp = j->bucket_next;
            break;
        }
    if (j->ks && j->ks->running > 0)
        j->ks->running--;
    if (j->deadline_ev)
        event_free(j->deadline_ev);
    for (int32_t i = 0; i < j->n_tokens; i++) {
        free(j->tokens[i].text);
        for (int32_t k = 0; k < j->tokens[i].n_top; k++)
            free(j->tokens[i].top[k].text);
        free(j->tokens[i].top);
    }
    free(j->tokens);
    ig_coord_request_free(&j->req);
    free(j);
}

static void closecb(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    job_buyer_gone(arg);
}

/* Before the request is handed back to libevent, so a later close cannot reach a
 * freed job. */
static void detach_http(ig_job *j)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(j->http);
    if (evcon)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
}

void job_watch_buyer(ig_job *j)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(j->http);
    if (evcon)
        evhttp_connection_set_closecb(evcon, closecb, j);
}

static void release_node(ig_job *j)
{
    if (!j->node)
        return;
    if (j->node->active > 0)
        j->node->active--;
    j->node = NULL;
}

static void record(ig_job *j, const char *outcome, const char *error)
{
    ig_coord *c = j->c;
    json_t *nodes = json_array();
    for (int32_t i = 0; i < j->n_nodes; i++)
        json_array_append_new(nodes, json_string(j->nodes[i]));
    char *nodes_json = json_dumps(nodes, JSON_COMPACT);
    json_decref(nodes);
    int64_t now = coord_now_ms();
    ig_coord_job_record r = {
        .job_id = j->id,
        .key_id = j->key.id,
        .model = j->req.model,
        .kind = j->req.kind == IG_COORD_CHAT ? "chat" : "completion",
        .stream = j->req.stream,
        .nodes_json = nodes_json,
        .failovers = j->failovers,
        .prompt_tokens = j->prompt_tokens,
        .completion_tokens = job_completion_tokens(j),
        .accepted_ms = j->accepted_unix_ms,
        .first_token_ms = j->first_token_ms ? j->accepted_unix_ms + (j->first_token_ms - j->accepted_ms) : 0,
        .finished_ms = j->accepted_unix_ms + (now - j->accepted_ms),
        .outcome = outcome,
        .finish_reason = finish_reason_openai(j->finish_reason),
        .error = error,
    };
    ig_err err;
    ig_err_clear(&err);
    if (ig_coord_job_record_put(c->store, &r, &err) != IG_OK)
        ig_net_logf(IG_LOG_ERROR, "job_record_failed", "%s: %s", j->id, err.msg);
    free(nodes_json);
    metrics_job_end(c, j, outcome, now);
    ig_net_log(IG_LOG_INFO, "job_end",
               json_pack("{s:s,s:s,s:s,s:i,s:i,s:I,s:s?}", "job", j->id, "key", j->key.id, "outcome",
                         outcome, "tokens", j->n_tokens, "failovers", j->failovers, "ms",
                         (json_int_t)(now - j->accepted_ms), "error", error));
}

static void send_stream_text(ig_job *j, const char *s)
{
    if (!s || j->buyer_gone)
        return;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, s, strlen(s));
    evhttp_send_reply_chunk(j->http, b);
    evbuffer_free(b);
}

static void start_stream(ig_job *j)
{
    if (j->http_started)
        return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(j->http);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    if (j->n_nodes)
        evhttp_add_header(h, "X-Idlegrid-Node", j->nodes[j->n_nodes - 1]);
    evhttp_send_reply_start(j->http, 200, "OK");
    j->http_started = true;
}

static void job_finish_ok(ig_job *j)
{
    ig_coord *c = j->c;
    release_node(j);
    j->state = JOB_FINISHED;
    detach_http(j);
    if (j->req.stream) {
        start_stream(j);
        char *s = sse_chunk(j, j->n_tokens, j->n_tokens, j->finish_reason[0] ? j->finish_reason : "stop");
        send_stream_text(j, s);
        free(s);
        if (j->req.include_usage) {
            s = sse_usage_chunk(j);
            send_stream_text(j, s);
            free(s);
        }
        send_stream_text(j, "data: [DONE]\n\n");
        evhttp_send_reply_end(j->http);
    } else {
        char *body = response_body(j);
        struct evkeyvalq *h = evhttp_request_get_output_headers(j->http);
        evhttp_add_header(h, "Content-Type", "application/json");
        if (j->n_nodes)
            evhttp_add_header(h, "X-Idlegrid-Node", j->nodes[j->n_nodes - 1]);
        struct evbuffer *b = evbuffer_new();
        if (body)
            evbuffer_add(b, body, strlen(body));
        evhttp_send_reply(j->http, body ? 200 : 500, body ? "OK" : "Internal Server Error", b);
        evbuffer_free(b);
        free(body);
    }
    metrics_request(c, j->req.kind == IG_COORD_CHAT ? EP_CHAT : EP_COMPLETIONS, 200);
    record(j, j->buyer_gone ? "cancelled" : "ok", NULL);
    job_free(j);
    jobs_pump(c);
}

void job_fail(ig_job *j, int status, const char *code, const char *fmt, ...)
{
    ig_coord *c = j->c;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (j->node) {
        node_send_cancel(j->node, j);
        release_node(j);
    }
    if (j->state == JOB_QUEUED)
        ig_sched_queue_remove(c->queue, j->handle);
    j->state = JOB_FINISHED;
    detach_http(j);
    ig_coord_api_error e;
    ig_coord_api_error_set(&e, status, status >= 500 ? "server_error" : "invalid_request_error", code,
                           NULL, "%s", msg);
    if (j->http_started) {
        /* A started stream cannot change its status: an explicit error event ends it. */
        char *body = ig_coord_api_error_json(&e);
        if (body) {
            char *ev = malloc(strlen(body) + 10);
            if (ev) {
                sprintf(ev, "data: %s\n\n", body);
                send_stream_text(j, ev);
                free(ev);
            }
            free(body);
        }
        evhttp_send_reply_end(j->http);
    } else {
        coord_send_error(j->http, &e);
    }
    if (status == 503)
        c->m.rejected_503++;
    metrics_request(c, j->req.kind == IG_COORD_CHAT ? EP_CHAT : EP_COMPLETIONS, status);
    record(j, j->buyer_gone ? "cancelled" : "error", msg);
    job_free(j);
    jobs_pump(c);
}

void job_buyer_gone(ig_job *j)
{
    /* The connection is going away; libevent keeps the request for us to release
     * through the normal reply path (it frees a request without a connection). */
    j->buyer_gone = true;
    job_fail(j, 499, "client_closed", "the client closed the connection");
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ig_job *j = arg;
    if (j->n_tokens == 0)
        job_fail(j, 503, "no_capacity", "no node could run this request before its deadline");
    else
        job_fail(j, 503, "deadline_exceeded",
                 "the deadline passed after %d tokens; no node could finish in time", j->n_tokens);
}

static ig_sched_job sched_job_of(ig_job *j)
{
    ig_sched_job s;
    memset(&s, 0, sizeof s);
    s.handle = j->handle;
    s.key = j->ks->handle;
    s.seq = j->seq;
    snprintf(s.model, sizeof s.model, "%s", j->req.model);
    s.route = j->req.route;
    s.tokens_left = j->req.max_tokens - j->n_tokens;
    if (s.tokens_left < 1)
        s.tokens_left = 1;
    s.deadline_ms = j->deadline_ms;
    s.n_exclude = j->n_exclude;
    memcpy(s.exclude, j->exclude, sizeof s.exclude);
    return s;
}

/* Ready nodes as the scheduler sees them; nodes_out[i] is snapshot[i]'s connection. */
static size_t snapshot(ig_coord *c, node_conn ***nodes_out)
{
    size_t n = 0;
    for (node_conn *nc = c->nodes; nc; nc = nc->next)
        if (nc->state == NODE_READY)
            n++;
    if (n > c->snapshot_cap) {
        size_t cap = n * 2;
        ig_sched_node *s = realloc(c->snapshot, cap * (sizeof *s + sizeof(node_conn *)));
        if (!s)
            return 0;
        c->snapshot = s;
        c->snapshot_cap = cap;
    }
    node_conn **ptrs = (node_conn **)(c->snapshot + c->snapshot_cap);
    size_t i = 0;
    for (node_conn *nc = c->nodes; nc; nc = nc->next) {
        if (nc->state != NODE_READY)
            continue;
        ig_sched_node *s = &c->snapshot[i];
        s->handle = nc->handle;
        for (int32_t k = 0; k < nc->n_models; k++)
            s->models[k] = nc->models[k];
        s->n_models = nc->n_models < IG_SCHED_MAX_MODELS ? nc->n_models : IG_SCHED_MAX_MODELS;
        s->cloud = nc->cloud;
        s->slots = nc->slots;
        s->active = nc->active;
        s->tokens_per_second = nc->tokens_per_second;
        s->available = true;
        ptrs[i++] = nc;
    }
    *nodes_out = ptrs;
    return i;
}

/* Sends the job to n; false when the link refused it (the caller re-queues). */
static bool offer(ig_job *j, node_conn *n)
{
    ig_err err;
    ig_err_clear(&err);
    j->attempts++;
    if (node_send_job(n, j, &err) != IG_OK) {
        ig_net_logf(IG_LOG_WARN, "job_offer_failed", "%s to %s: %s", j->id, n->node_id, err.msg);
        if (j->n_exclude < IG_SCHED_MAX_EXCLUDE)
            j->exclude[j->n_exclude++] = n->handle;
        return false;
    }
    j->state = JOB_OFFERED;
    j->node = n;
    n->active++;
    return true;
}

static void enqueue(ig_job *j)
{
    ig_sched_job s = sched_job_of(j);
    j->state = JOB_QUEUED;
    if (ig_sched_queue_push(j->c->queue, &s) != IG_OK ||
        (int32_t)j->c->queue->n > j->c->cfg.max_pending)
    {
        if (j->c->queue->n && j->c->queue->jobs[j->c->queue->n - 1].handle == j->handle)
            ig_sched_queue_remove(j->c->queue, j->handle);
        job_fail(j, 503, "no_capacity", "the grid is at capacity (queue full); retry later");
    }
}

void job_submit(ig_job *j)
{
    ig_coord *c = j->c;
    job_watch_buyer(j);
    node_conn **ptrs;
    size_t n = snapshot(c, &ptrs);
    ig_sched_job s = sched_job_of(j);
    size_t idx = 0;
    int64_t now = coord_now_ms();
    /* A job arriving while others of its model wait goes behind them (fairness). */
    bool others_waiting = false;
    for (size_t i = 0; i < c->queue->n; i++)
        if (strcmp(c->queue->jobs[i].model, j->req.model) == 0)
            others_waiting = true;
    switch (ig_sched_place(c->snapshot, n, &s, now, &idx)) {
    case IG_SCHED_PLACED:
        if (!others_waiting && offer(j, ptrs[idx]))
            return;
        enqueue(j);
        jobs_pump(c);
        return;
    case IG_SCHED_WAIT:
        enqueue(j);
        return;
    case IG_SCHED_NO_MODEL:
        job_fail(j, 503, "no_capacity", "no connected node serves model '%s'%s", j->req.model,
                 j->req.route == IG_ROUTE_EDGE ? " on route edge"
                 : j->req.route == IG_ROUTE_CLOUD ? " on route cloud" : "");
        return;
    case IG_SCHED_TOO_SLOW:
        job_fail(j, 503, "no_capacity",
                 "no node serving '%s' can produce %d tokens within the %lld ms deadline",
                 j->req.model, s.tokens_left, (long long)(j->deadline_ms - j->accepted_ms));
        return;
    }
}

static uint64_t running_of_key(void *user, uint64_t key)
{
    ig_coord *c = user;
    for (int32_t i = 0; i < c->n_keys; i++)
        if (c->keys[i].handle == key)
            return (uint64_t)c->keys[i].running;
    return 0;
}

void jobs_pump_now(ig_coord *c)
{
    for (int guard = 0; guard < IG_SCHED_MAX_PENDING && c->queue->n; guard++) {
        node_conn **ptrs;
        size_t n = snapshot(c, &ptrs);
        ig_sched_job s;
        size_t idx;
        if (!ig_sched_next(c->queue, c->snapshot, n, running_of_key, c, coord_now_ms(), &s, &idx))
            return;
        ig_job *j = job_by_handle(c, s.handle);
        if (!j)
            continue;
        if (!offer(j, ptrs[idx]))
            enqueue(j);
    }
}

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    jobs_pump_now(arg);
}

void jobs_pump(ig_coord *c)
{
    if (!c->pump_ev)
        c->pump_ev = event_new(c->base, -1, 0, pump_cb, c);
    if (c->pump_ev)
        event_active(c->pump_ev, 0, 0);
}

static void add_history(ig_job *j, node_conn *n)
{
    if (j->n_nodes && strcmp(j->nodes[j->n_nodes - 1], n->node_id) == 0)
        return;
    if (j->n_nodes < MAX_NODE_HISTORY) {
        snprintf(j->nodes[j->n_nodes], sizeof j->nodes[0], "%s", n->node_id);
        j->n_nodes++;
    }
}

void job_on_accept(ig_job *j)
{
    if (j->state != JOB_OFFERED || !j->node)
        return;
    j->state = JOB_RUNNING;
    add_history(j, j->node);
    j->served_cloud = j->node->cloud;
    j->node->metrics->jobs++;
    if (j->req.stream)
        start_stream(j);
}

void job_on_reject(ig_job *j, const char *reason)
{
    node_conn *n = j->node;
    if (n && j->n_exclude < IG_SCHED_MAX_EXCLUDE)
        j->exclude[j->n_exclude++] = n->handle;
    release_node(j);
    ig_net_logf(IG_LOG_INFO, "job_rejected", "%s: %s", j->id, reason ? reason : "");
    if (j->attempts >= MAX_JOB_ATTEMPTS) {
        job_fail(j, 503, "no_capacity", "no node accepted the request after %d offers", j->attempts);
        return;
    }
    enqueue(j);
    jobs_pump(j->c);
}

void job_on_node_lost(ig_job *j, const char *why, bool count_failover)
{
    ig_coord *c = j->c;
    node_conn *n = j->node;
    if (n) {
        if (j->n_exclude < IG_SCHED_MAX_EXCLUDE)
            j->exclude[j->n_exclude++] = n->handle;
        n->metrics->failovers_from++;
    }
    release_node(j);
    if (count_failover) {
        j->failovers++;
        c->m.failovers++;
    }
    ig_net_logf(IG_LOG_WARN, "job_failover", "%s: %s; resuming after %d tokens", j->id, why,
                j->n_tokens);
    if (j->attempts >= MAX_JOB_ATTEMPTS) {
        job_fail(j, 503, "no_capacity", "the request failed on %d nodes (last: %s)", j->attempts, why);
        return;
    }
    if (j->n_tokens >= j->req.max_tokens) {
        /* Every token it asked for is already out: that is a complete answer. */
        snprintf(j->finish_reason, sizeof j->finish_reason, "length");
        job_finish_ok(j);
        return;
    }
    enqueue(j);
    jobs_pump(c);
}

void job_on_node_error(ig_job *j, const char *message)
{
    /* A request no node can run (its prompt does not fit the model's context, or does
     * not tokenize) is the buyer's to fix: 400 now rather than trying every node. The
     * protocol carries only a message, so this is recognised by its wording. */
    if (message && j->n_tokens == 0 &&
        (strstr(message, "does not fit the context") || strstr(message, "tokenizing the prompt"))) {
        job_fail(j, 400, strstr(message, "context") ? "context_length_exceeded" : "invalid_prompt",
                 "the node could not run this request: %s", message);
        return;
    }
    job_on_node_lost(j, message ? message : "node error", true);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s ? s : "", s ? n : 0);
        d[s ? n : 0] = '\0';
    }
    return d;
}

void job_on_tokens(ig_job *j, const ig_msg_tokens *t)
{
    if (j->state != JOB_RUNNING && j->state != JOB_OFFERED)
        return;
    if (j->state == JOB_OFFERED)
        job_on_accept(j);
    int32_t first_new = j->n_tokens;
    for (int32_t k = 0; k < t->n_items; k++) {
        int64_t index = t->index + k;
        if (index < j->n_tokens)
            continue; /* already forwarded (a resumed node's replay) */
        if (index > j->n_tokens) {
            ig_net_logf(IG_LOG_WARN, "job_token_gap", "%s: token %lld arrived, expected %d", j->id,
                        (long long)index, j->n_tokens);
            break;
        }
        if (j->n_tokens >= j->req.max_tokens)
            break;
        if (j->n_tokens == j->cap_tokens) {
            int32_t cap = j->cap_tokens ? j->cap_tokens * 2 : 32;
            gen_token *nt = realloc(j->tokens, (size_t)cap * sizeof *nt);
            if (!nt)
                break;
            j->tokens = nt;
            j->cap_tokens = cap;
        }
        const ig_net_token *it = &t->items[k];
        gen_token *g = &j->tokens[j->n_tokens];
        memset(g, 0, sizeof *g);
        g->id = it->id;
        g->logprob = it->logprob;
        g->text = dup_n(it->text, it->text_len);
        if (!g->text)
            break;
        if (it->n_top > 0) {
            g->top = calloc((size_t)it->n_top, sizeof *g->top);
            if (g->top) {
                for (int32_t q = 0; q < it->n_top; q++) {
                    g->top[q].id = it->top[q].id;
                    g->top[q].logprob = it->top[q].logprob;
                    g->top[q].text = dup_n(it->top[q].text, it->top[q].text_len);
                    if (!g->top[q].text)
                        break;
                    g->n_top = q + 1;
                }
            }
        }
        j->n_tokens++;
    }
    if (j->n_tokens == first_new)
        return;
    if (!j->first_token_ms) {
        j->first_token_ms = coord_now_ms();
        metrics_first_token(j->c, (double)(j->first_token_ms - j->accepted_ms) / 1000.0);
    }
    if (j->node) {
        j->node->metrics->tokens += (uint64_t)(j->n_tokens - first_new);
        j->c->m.tokens_total += (uint64_t)(j->n_tokens - first_new);
    }
    if (j->req.stream) {
        bool any_text = false;
        for (int32_t i = first_new; i < j->n_tokens; i++)
            if (j->tokens[i].text[0])
                any_text = true;
        if (any_text || j->req.logprobs) {
            start_stream(j);
            char *s = sse_chunk(j, first_new, j->n_tokens, NULL);
            send_stream_text(j, s);
            free(s);
        }
    }
}

void job_on_done(ig_job *j, const ig_msg_done *d)
{
    if (j->state == JOB_FINISHED)
        return;
    j->prompt_tokens = d->prompt_tokens;
    snprintf(j->finish_reason, sizeof j->finish_reason, "%s", ig_finish_name(d->finish));
    if (d->completion_tokens > j->n_tokens && j->n_tokens < j->req.max_tokens) {
        /* The node says it made more than we received: a lost frame. Resume elsewhere
         * rather than answer short. */
        job_on_node_lost(j, "done before all tokens arrived", true);
        return;
    }
    job_finish_ok(j);
}

void jobs_free_all(ig_coord *c)
{
    while (c->jobs)
        job_fail(c->jobs, 503, "shutting_down", "the coordinator is shutting down");
}
