/*
 * coord_int.h — the coordinator's private structures, shared by its .c files only
 * (api.c, jobs.c, nodelink.c, metrics.c, sse.c, coord.c). Not part of the layer's
 * interface: the rest of idlegrid includes coord.h.
 *
 * Everything here lives on one thread: the event_base's. Invariants:
 *   - a job is in exactly one state; QUEUED jobs are in c->queue, OFFERED/RUNNING
 *     jobs have node != NULL and count in node->active;
 *   - job->tokens holds exactly the tokens already forwarded to the buyer, in order;
 *     that is what a failover resumes from;
 *   - a buyer's HTTP request gets exactly one final reply (job_finish).
 */
#ifndef IG_COORD_INT_H
#define IG_COORD_INT_H

#include "coord.h"
#include "net.h"

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#define MAX_NODE_HISTORY 8      /* nodes listed per job (failovers beyond still counted) */
#define MAX_JOB_ATTEMPTS 6      /* offers (rejects, handbacks, failures) before giving up */
#define MAX_NODE_METRICS 1024   /* distinct node ids tracked in /metrics */
#define MAX_KEY_STATES 4096     /* API keys with live rate/concurrency state */
#define HANDSHAKE_MS 15000       /* hello → welcome must complete within this */
#define JOB_BUCKETS 8192        /* job id hash table (chained; jobs are bounded by the queue) */

typedef struct ig_job ig_job;
typedef struct node_conn node_conn;
typedef struct node_metrics node_metrics;

struct node_conn {
    ig_coord *c;
    ig_net_conn *link;
    uint64_t handle;
    enum { NODE_HELLO, NODE_AUTH, NODE_READY, NODE_GONE } state;
    char node_key[2 * IG_NET_KEY_BYTES + 1];
    char node_id[32];
    char name[64];
    char enroll_token[IG_COORD_TOKEN_MAX];
    bool has_token;
    uint8_t nonce[IG_NET_NONCE_BYTES];
    char models[IG_SCHED_MAX_MODELS][IG_COORD_MAX_MODEL_ID];
    int32_t n_models;
    bool cloud;
    int32_t slots;
    int32_t active;            /* our count: OFFERED + RUNNING jobs on it */
    double tokens_per_second;
    node_metrics *metrics;     /* its /metrics series (stable: a fixed array) */
    struct event *handshake_ev; /* closes a link that is not welcomed in time */
    node_conn *next, *prev;
};

typedef struct {
    int32_t id;
    float logprob;
    char *text;
    int32_t n_top;
    struct {
        int32_t id;
        float logprob;
        char *text;
    } *top;
} gen_token;

typedef enum { JOB_QUEUED, JOB_OFFERED, JOB_RUNNING, JOB_FINISHED } job_state;

/* Per API key state for limits and fairness. */
typedef struct {
    char id[IG_COORD_KEY_ID_LEN + 1];
    uint64_t handle;
    int32_t running;           /* accepted, unfinished requests */
    int64_t window_start_ms;   /* rate limit: fixed one-minute windows */
    int32_t window_count;
} key_state;

struct ig_job {
    ig_coord *c;
    uint64_t handle;
    char id[48];
    ig_coord_request req;
    uint64_t seed;
    ig_coord_key_info key;
    key_state *ks;
    job_state state;
    node_conn *node;
    int32_t attempts;
    uint64_t exclude[IG_SCHED_MAX_EXCLUDE];
    int32_t n_exclude;
    char nodes[MAX_NODE_HISTORY][32];
    int32_t n_nodes;
    int32_t failovers;
    gen_token *tokens;
    int32_t n_tokens, cap_tokens;
    int32_t prompt_tokens;
    char finish_reason[16];
    int64_t created;           /* unix seconds (OpenAI "created") */
    int64_t accepted_ms;       /* monotonic */
    int64_t accepted_unix_ms;
    int64_t first_token_ms;    /* monotonic, 0 = none yet */
    int64_t deadline_ms;       /* monotonic, absolute */
    uint64_t seq;
    struct event *deadline_ev;
    struct evhttp_request *http;
    bool http_started;         /* stream headers sent */
    bool buyer_gone;
    bool sent_role;            /* chat stream: first delta carried the role */
    bool served_cloud;         /* the last node to work on it is of class cloud */
    ig_job *next, *prev;
    ig_job *bucket_next;       /* chain in c->job_buckets */
};

struct node_metrics {
    char node_id[32];
    uint64_t tokens;
    uint64_t jobs;
    uint64_t failovers_from;
};

#define N_LAT_BUCKETS 12
typedef struct {
    uint64_t requests[6][8];   /* [endpoint][status class index] */
    uint64_t tokens_total;
    uint64_t jobs_ok, jobs_error, jobs_cancelled;
    uint64_t failovers;
    uint64_t rejected_429, rejected_503;
    node_metrics nodes[MAX_NODE_METRICS];
    int32_t n_nodes;
    uint64_t ttft_buckets[N_LAT_BUCKETS + 1];
    double ttft_sum;
    uint64_t ttft_count;
    uint64_t dur_buckets[N_LAT_BUCKETS + 1];
    double dur_sum;
    uint64_t dur_count;
} metrics;

struct ig_coord {
    struct event_base *base;
    ig_coord_config cfg;
    ig_coord_store *store;
    struct evhttp *http;
    struct evhttp_bound_socket *http_sock;
    int api_port;
    ig_net_listener *listener;
    struct ssl_ctx_st *tls;    /* node link TLS context, or NULL */
    uint64_t next_handle;
    uint64_t next_seq;
    node_conn *nodes;
    int32_t n_ready;
    ig_job *jobs;
    int32_t n_jobs;
    ig_job **job_buckets;      /* JOB_BUCKETS chains, by hash of the job id */
    ig_sched_queue *queue;
    ig_sched_node *snapshot;   /* scratch for scheduling */
    size_t snapshot_cap;
    key_state *keys;
    int32_t n_keys;
    /* models seen on any node since start: unknown model → 404, known but no node → 503 */
    char known_models[16][IG_COORD_MAX_MODEL_ID];
    int32_t n_known_models;
    struct event *pump_ev;     /* deferred scheduling pass */
    metrics m;
    int64_t started_ms;
};

/* api.c */
ig_code coord_api_start(ig_coord *c, ig_err *err);
void coord_api_stop(ig_coord *c);
void coord_send_error(struct evhttp_request *req, const ig_coord_api_error *e);

/* jobs.c */
ig_job *job_new(ig_coord *c, ig_coord_request *req, const ig_coord_key_info *key,
                key_state *ks, struct evhttp_request *http);
/* Places or queues a fresh job; on failure answers the buyer itself. */
void job_submit(ig_job *j);
void jobs_pump(ig_coord *c);              /* schedule soon (deferred) */
void jobs_pump_now(ig_coord *c);
void job_on_accept(ig_job *j);
void job_on_reject(ig_job *j, const char *reason);
void job_on_tokens(ig_job *j, const ig_msg_tokens *t);
void job_on_done(ig_job *j, const ig_msg_done *d);
void job_on_node_lost(ig_job *j, const char *why, bool count_failover);
void job_on_node_error(ig_job *j, const char *message);
void job_buyer_gone(ig_job *j);
void job_fail(ig_job *j, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
ig_job *job_find(ig_coord *c, const char *job_id);
void jobs_free_all(ig_coord *c);

/* nodelink.c */
ig_code coord_nodes_start(ig_coord *c, ig_err *err);
void coord_nodes_stop(ig_coord *c);
ig_code node_send_job(node_conn *n, ig_job *j, ig_err *err);
void node_send_cancel(node_conn *n, ig_job *j);
bool coord_model_known(ig_coord *c, const char *model);

/* sse.c — response bodies in OpenAI's shapes */
char *sse_chunk(ig_job *j, int32_t from, int32_t to, const char *finish_reason);
char *sse_usage_chunk(ig_job *j);
char *response_body(ig_job *j);
json_t *response_idlegrid_object(ig_job *j);
const char *finish_reason_openai(const char *engine_reason);
int32_t job_completion_tokens(const ig_job *j);

/* metrics.c */
void metrics_request(ig_coord *c, int endpoint, int status);
enum { EP_COMPLETIONS = 0, EP_CHAT, EP_MODELS, EP_METRICS, EP_HEALTH, EP_OTHER };
node_metrics *metrics_node(ig_coord *c, const char *node_id);
void metrics_job_end(ig_coord *c, ig_job *j, const char *outcome, int64_t now_ms);
void metrics_first_token(ig_coord *c, double seconds);
char *metrics_render(ig_coord *c);

int64_t coord_now_ms(void);
key_state *coord_key_state(ig_coord *c, const ig_coord_key_info *k);

#endif /* IG_COORD_INT_H */
