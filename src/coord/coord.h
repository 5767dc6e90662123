/*
 * coord.h — the interface of idlegrid's coordinator layer (src/coord).
 *
 * The coordinator sells the grid through an OpenAI-compatible HTTP API and runs each
 * request on a node connected over the node link (src/net). Pieces:
 *   store      SQLite (WAL) in --data DIR: API keys (hashed, salted), enrolment tokens,
 *              enrolled nodes, job records
 *   request    parsing and validation of /v1/completions and /v1/chat/completions
 *              bodies (pure: bytes in, a validated request or a named error out)
 *   scheduler  placement and fair queueing (pure: no I/O, time is an argument)
 *   coord      the running service on a libevent base: HTTP API, node listener, jobs
 *              with failover and deadlines, /metrics, /healthz
 *
 * The command line (idlegrid serve, up, keys, nodes) reaches the layer only here.
 */
#ifndef IG_COORD_H
#define IG_COORD_H

#include "engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* ------------------------------------------------------------------------- */
/* Store                                                                      */

typedef struct ig_coord_store ig_coord_store;

/* Opens (creating DIR and the schema if needed) DIR/coordinator.db. */
ig_coord_store *ig_coord_store_open(const char *data_dir, ig_err *err);
void ig_coord_store_close(ig_coord_store *s);

#define IG_COORD_KEY_ID_LEN 12     /* hex characters of a key's public id */
#define IG_COORD_KEY_MAX 96        /* a full key's text, NUL included */

typedef struct {
    char id[IG_COORD_KEY_ID_LEN + 1];
    char name[64];
    int64_t created_at;            /* unix seconds */
    int64_t revoked_at;            /* 0 when active */
    int32_t rate_per_min;          /* requests a minute, 0 = unlimited */
    int32_t max_concurrent;        /* requests at once, 0 = unlimited */
} ig_coord_key_info;

/* Creates a key and writes its text (shown once: only a salted hash is stored) to
 * key_out. When fixed_key is non-NULL it must have the shape of a key ("ig-<12
 * hex>-<48 hex>" or any 16..80 printable characters) and is stored instead of a
 * random one (idlegrid up --key). */
ig_code ig_coord_key_create(ig_coord_store *s, const char *name, int32_t rate_per_min,
                            int32_t max_concurrent, const char *fixed_key,
                            char key_out[IG_COORD_KEY_MAX], ig_coord_key_info *info,
                            ig_err *err);
/* Calls cb for every key, oldest first. */
ig_code ig_coord_key_list(ig_coord_store *s,
                          void (*cb)(void *user, const ig_coord_key_info *k), void *user,
                          ig_err *err);
/* Revokes by id (or by the full key text). IG_ERR_NOT_FOUND when no such key. */
ig_code ig_coord_key_revoke(ig_coord_store *s, const char *id_or_key, ig_err *err);
/* Checks a presented key: IG_OK and *info, or IG_ERR_AUTH (unknown, wrong, revoked). */
ig_code ig_coord_key_verify(ig_coord_store *s, const char *key, ig_coord_key_info *info,
                            ig_err *err);

#define IG_COORD_TOKEN_MAX 64
/* A new one-time node enrolment token (only its hash is stored). */
ig_code ig_coord_enroll_token_create(ig_coord_store *s, char token_out[IG_COORD_TOKEN_MAX],
                                     ig_err *err);
/* Consumes an unused token for node_key (hex) and enrols the key. IG_ERR_AUTH when the
 * token is unknown or used. */
ig_code ig_coord_enroll_token_consume(ig_coord_store *s, const char *token,
                                      const char *node_key, const char *name, ig_err *err);
/* True when node_key (hex) is enrolled. */
bool ig_coord_node_enrolled(ig_coord_store *s, const char *node_key);
ig_code ig_coord_node_seen(ig_coord_store *s, const char *node_key, const char *name,
                           ig_err *err);

typedef struct {
    const char *job_id;
    const char *key_id;
    const char *model;
    const char *kind;          /* "completion" | "chat" */
    bool stream;
    const char *nodes_json;    /* ["n-..", ...] every node that worked on it */
    int32_t failovers;
    int32_t prompt_tokens;
    int32_t completion_tokens;
    int64_t accepted_ms;       /* unix ms */
    int64_t first_token_ms;    /* 0 when none */
    int64_t finished_ms;
    const char *outcome;       /* "ok" | "error" | "cancelled" */
    const char *finish_reason; /* "stop" | "length" | NULL */
    const char *error;         /* NULL when ok */
} ig_coord_job_record;

ig_code ig_coord_job_record_put(ig_coord_store *s, const ig_coord_job_record *r, ig_err *err);
/* Jobs recorded (for tests and the operator). */
int64_t ig_coord_job_count(ig_coord_store *s, const char *outcome);

/* ------------------------------------------------------------------------- */
/* Buyer requests (OpenAI shapes)                                             */

#define IG_COORD_MAX_BODY (1u << 20)       /* larger request bodies: 413 */
#define IG_COORD_MAX_MESSAGES 256
#define IG_COORD_MAX_MODEL_ID 64
#define IG_COORD_MAX_TOKENS 8192           /* max_tokens above this: 400 */
#define IG_COORD_MAX_DEADLINE_MS 600000
#define IG_COORD_MAX_STOP_LEN 128

typedef enum { IG_COORD_COMPLETION = 0, IG_COORD_CHAT = 1 } ig_coord_kind;
typedef enum { IG_ROUTE_AUTO = 0, IG_ROUTE_EDGE, IG_ROUTE_CLOUD } ig_coord_route;

typedef struct {
    char role[16];  /* "system" | "user" | "assistant" */
    char *content;  /* owned */
} ig_coord_message;

typedef struct {
    ig_coord_kind kind;
    char model[IG_COORD_MAX_MODEL_ID];
    char *prompt;                       /* completion: owned */
    ig_coord_message *messages;         /* chat: owned */
    int32_t n_messages;
    bool stream;
    bool include_usage;                 /* stream_options.include_usage */
    int32_t max_tokens;
    float temperature;
    float top_p;
    bool has_seed;
    uint64_t seed;
    char *stop[IG_MAX_STOP];            /* owned */
    int32_t n_stop;
    bool logprobs;
    int32_t top_logprobs;
    ig_coord_route route;
    int64_t deadline_ms;                /* 0 = the coordinator's default */
} ig_coord_request;

/* A buyer-facing error: HTTP status and OpenAI's error object. */
typedef struct {
    int status;
    char type[32];    /* "invalid_request_error", ... */
    char code[48];    /* "invalid_value", "model_not_found", ... or "" */
    char param[64];   /* the offending field, or "" */
    char message[512];
} ig_coord_api_error;

void ig_coord_api_error_set(ig_coord_api_error *e, int status, const char *type,
                            const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* {"error":{"message","type","param","code"}} as a new string (caller frees). */
char *ig_coord_api_error_json(const ig_coord_api_error *e);

/* Parses and validates a request body. On failure returns false with *e set (400 for
 * everything the body itself gets wrong, naming the field and why); *r is then empty.
 * Never reads past len; any bytes are safe input. */
bool ig_coord_request_parse(ig_coord_kind kind, const char *body, size_t len,
                            ig_coord_request *r, ig_coord_api_error *e);
void ig_coord_request_free(ig_coord_request *r);

/* Byte offset of the first invalid UTF-8 sequence, or -1 when all is valid. */
int64_t ig_coord_utf8_invalid_at(const char *s, size_t len);

/* ------------------------------------------------------------------------- */
/* Scheduler (pure: no I/O, no clock reads; `now_ms` is an argument)           */

#define IG_SCHED_MAX_MODELS 4
#define IG_SCHED_MAX_EXCLUDE 8
#define IG_SCHED_MAX_PENDING 4096

typedef struct {
    uint64_t handle;                                     /* the caller's node id */
    const char *models[IG_SCHED_MAX_MODELS];             /* ids (not owned) */
    int32_t n_models;
    bool cloud;                                          /* class "cloud" */
    int32_t slots;                                       /* jobs it runs at once */
    int32_t active;                                      /* jobs on it now (+ offered) */
    double tokens_per_second;                            /* measured, one stream */
    bool available;                                      /* authenticated, not leaving */
} ig_sched_node;

typedef struct {
    uint64_t handle;                   /* the caller's job id */
    uint64_t key;                      /* fairness unit: the API key */
    uint64_t seq;                      /* arrival order */
    char model[IG_COORD_MAX_MODEL_ID];
    ig_coord_route route;
    int32_t tokens_left;               /* max_tokens minus tokens already sent */
    int64_t deadline_ms;               /* absolute */
    uint64_t exclude[IG_SCHED_MAX_EXCLUDE]; /* nodes that failed it (tried last) */
    int32_t n_exclude;
} ig_sched_job;

typedef enum {
    IG_SCHED_PLACED = 0,   /* *node_index chosen */
    IG_SCHED_WAIT,         /* capable nodes exist but are full: queue it */
    IG_SCHED_NO_MODEL,     /* no available node serves the model (on this route) */
    IG_SCHED_TOO_SLOW,     /* no capable node can finish before the deadline */
} ig_sched_result;

/* Places one job on the node expected to finish it first among the nodes with a free
 * slot; nodes in exclude are used only when nothing else can take it. */
ig_sched_result ig_sched_place(const ig_sched_node *nodes, size_t n_nodes,
                               const ig_sched_job *job, int64_t now_ms, size_t *node_index);

/* Expected milliseconds for node to produce `tokens` more tokens with its current load. */
double ig_sched_estimate_ms(const ig_sched_node *node, int32_t tokens);

/* The fair queue: FIFO per API key, keys served so that the one with the fewest jobs
 * running goes first (ties: the longest waiting). Bounded by IG_SCHED_MAX_PENDING. */
typedef struct {
    ig_sched_job jobs[IG_SCHED_MAX_PENDING];
    size_t n;
} ig_sched_queue;

void ig_sched_queue_init(ig_sched_queue *q);
/* IG_ERR_BUSY when full. */
ig_code ig_sched_queue_push(ig_sched_queue *q, const ig_sched_job *job);
bool ig_sched_queue_remove(ig_sched_queue *q, uint64_t handle);
/* Picks the next (job, node) pair to start, honouring fairness: running(key) returns
 * how many jobs key has running. Returns true and removes the job from the queue when
 * one can start now. */
bool ig_sched_next(ig_sched_queue *q, const ig_sched_node *nodes, size_t n_nodes,
                   uint64_t (*running)(void *user, uint64_t key), void *user, int64_t now_ms,
                   ig_sched_job *job_out, size_t *node_index);

/* ------------------------------------------------------------------------- */
/* The coordinator service                                                    */

typedef struct {
    const char *data_dir;        /* store directory */
    const char *api_host;        /* default "127.0.0.1" */
    int api_port;                /* 0 = any free port */
    const char *node_host;       /* default "127.0.0.1" */
    int node_port;               /* 0 = any free port */
    int heartbeat_ms;            /* default 2000; silent 3 intervals = dead */
    int64_t default_deadline_ms; /* default 120000 */
    int32_t max_pending;         /* queued jobs (default 1024) */
    const char *tls_cert;        /* node link over TLS: PEM certificate chain and key */
    const char *tls_key;         /* (both NULL = plain TCP) */
    bool quiet;                  /* no request logs on stderr */
} ig_coord_config;

typedef struct ig_coord ig_coord;

/* Opens the store and binds both listeners on base; serving happens as base runs. */
ig_coord *ig_coord_new(struct event_base *base, const ig_coord_config *cfg, ig_err *err);
/* Cancels running jobs (their buyers get an error), closes every connection. */
void ig_coord_free(ig_coord *c);
int ig_coord_api_port(const ig_coord *c);
int ig_coord_node_port(const ig_coord *c);
ig_coord_store *ig_coord_get_store(ig_coord *c);
/* Authenticated node connections now. */
int ig_coord_connected_nodes(const ig_coord *c);

#endif /* IG_COORD_H */
