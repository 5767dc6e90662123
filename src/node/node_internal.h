/*
 * node_internal.h — shared between the node agent's files (not an interface:
 * everything outside src/node uses node.h).
 *
 *   node.c   configuration, key, model, the event loop, links: dial, handshake,
 *            heartbeats, reconnect with backoff, dispatch of coordinator messages,
 *            graceful stop
 *   job.c    running jobs: engine slots (one worker thread + ig_ctx each; the worker
 *            sends its token frames itself, the link thread the job's end) and
 *            synthetic jobs (timers on the link thread)
 *
 * Threads: everything is owned by the link thread (the event loop) except the
 * fields of a slot marked "worker", which are guarded by slot.mu.
 */
#ifndef IG_NODE_INTERNAL_H
#define IG_NODE_INTERNAL_H

#include "node.h"

#include <pthread.h>
#include <stdatomic.h>

struct event;
struct event_base;

#define NODE_FRAME_ITEMS 256      /* items per tokens frame (top logprobs make items big) */
#define NODE_HANDSHAKE_MS 10000   /* hello → welcome must finish within this */
#define NODE_MAX_COUNT 100000     /* simulated nodes per process */

typedef struct node_link node_link;

typedef struct {
    ig_node *node;
    node_link *link;
    int index;

    /* link thread */
    bool busy;            /* from accept until the job's end is processed */
    bool discard;         /* output unwanted: cancelled, handed back, link lost */
    uint64_t epoch;       /* link epoch the job arrived on */
    int64_t next_index;   /* generated-token index of the next item to send (engine: mu) */
    char job_id[IG_NET_MAX_ID + 1];
    int64_t started_ms;
    struct event *wake_ev;  /* engine: worker → link thread */
    struct event *synth_ev; /* synthetic: the token timer */
    int64_t synth_pos;      /* synthetic: generated-token index of the next token */
    int32_t synth_max;
    uint64_t synth_seed;
    int32_t synth_prompt_tokens;
    double synth_start_us;

    /* worker (guarded by mu) */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* worker waits for a job */
    ig_msg job;               /* the job message; its JSON holds every string */
    bool has_job;
    bool quit;
    ig_net_conn *send_conn;   /* where the worker sends tokens; NULL = output stopped
                                 (set and cleared by the link thread) */
    bool accept_pending;      /* the link thread has not sent `accept` yet: the worker
                                 waits before its first frame */
    bool finished;            /* the worker is done with job */
    ig_code job_rc;
    char job_error[512];
    ig_finish finish;
    int32_t prompt_tokens;
    int32_t completion_tokens;
    double prefill_ms, decode_ms;
    int32_t frames;           /* tokens frames the job's worker sent */
    atomic_bool cancel;
    ig_ctx *ctx;
} slot;

typedef enum { LINK_IDLE, LINK_CONNECTING, LINK_HELLO, LINK_AUTH, LINK_READY } link_state;

struct node_link {
    ig_node *node;
    int index;
    ig_net_conn *conn;
    link_state state;
    uint64_t epoch;
    ig_net_keypair kp;
    char name[IG_NET_MAX_ID + 1];
    char node_id[IG_NET_MAX_ID + 1];
    char *enroll_token;   /* from the token file, or NULL: the configured one */
    bool enrolled;
    int32_t backoff_ms;
    int32_t heartbeat_ms;
    struct event *reconnect_ev;
    struct event *handshake_ev;
    slot *slots;
    int n_slots;
};

struct ig_node {
    ig_node_config cfg;
    char host[256];
    int port;
    char data_dir[1024];
    char model_id[IG_NET_MAX_ID + 1];
    char chat_family[32];
    ig_model *model;
    int32_t n_ctx;
    int32_t threads;
    int32_t flush_ms;     /* engine jobs: ms per tokens frame (0: every token at once) */
    double tokens_per_second;
    struct event_base *base;
    struct ssl_ctx_st *tls;
    node_link *links;
    int n_links;
    struct event *sig_ev[2];
    struct event *stop_ev;
    struct event *stop_check_ev;
    bool stopping;
    int64_t stop_deadline_ms;
    ig_net_keypair base_key;
};

/* job.c */
ig_code node_slot_init(ig_node *n, node_link *l, slot *s, int index, ig_err *err);
void node_slot_deinit(slot *s);
/* Starts a job on a free slot; takes ownership of *job. The engine worker starts at
 * once, but holds its first token frame until node_job_accepted: the link thread sends
 * `accept` while the engine already computes, and `accept` still precedes `tokens`. */
void node_job_start(slot *s, ig_msg *job);
/* The job's `accept` frame has been sent (or will never be): its tokens may follow. */
void node_job_accepted(slot *s);
/* Stops a job's output: the worker is told to stop; the slot frees itself when it has. */
void node_job_cancel(slot *s);
/* Stops the worker's token frames at once (before a handback); returns the number of
 * tokens sent (the generated-token index of the next one). */
int64_t node_job_stop_output(slot *s);
/* Measures one slot's decode speed with a short real generation. */
double node_measure_speed(ig_node *n, ig_err *err);

/* node.c */
/* Sends m on the slot's link if the job's output is still wanted there. */
bool node_slot_can_send(const slot *s);
void node_slot_send(slot *s, const ig_msg *m);
/* Called when a slot becomes free (for stop bookkeeping). */
void node_slot_freed(slot *s);

#endif /* IG_NODE_INTERNAL_H */
