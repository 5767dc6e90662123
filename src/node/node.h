/*
 * node.h — the node agent: the interface of src/node (`idlegrid node`).
 *
 * A node loads one model, measures its own decode speed, dials the coordinator over
 * the node link (src/net), authenticates with its ed25519 key (enrolling with a
 * one-time token on first start), then serves jobs: each of its slots is one engine
 * context driven by its own worker thread, which sends each generated token as a
 * `tokens` frame the moment it exists (straight to the socket when the link is not
 * behind). When the link drops it reconnects with capped, jittered exponential
 * backoff. SIGTERM/SIGINT hand running jobs back and close.
 *
 * --synthetic (load tests only): no model; jobs produce deterministic tokens at a
 * configured rate from timers on the link thread, and one process can host many
 * simulated nodes (--count), each with its own key and connection.
 */
#ifndef IG_NODE_H
#define IG_NODE_H

#include "net.h"

#include <stdbool.h>
#include <stdint.h>

/* Default token flush interval (ms): see ig_node_config.flush_ms, docs/PROTOCOL.md. */
#define IG_NODE_FLUSH_MS 50

typedef struct {
    const char *coordinator;   /* "HOST:PORT" */
    const char *model_path;    /* GGUF file; in synthetic mode only its stem is used */
    ig_node_class cls;
    int32_t slots;             /* concurrent jobs; 0 = 1 (synthetic: 4) */
    int32_t threads;           /* engine threads per slot; 0 = online CPUs / slots */
    int32_t n_ctx;             /* context per slot; 0 = min(model's, 4096) */
    const char *data_dir;      /* key pair and enrolment record; NULL = "./idlegrid-node" */
    const char *enroll_token;  /* sent until the first welcome */
    const char *enroll_token_file; /* one token per line: simulated node i presents line i
                                      (--count with one-time tokens); overrides enroll_token */
    const char *name;          /* NULL = hostname */
    bool synthetic;
    double rate;               /* synthetic tokens per second per job; 0 = 50 */
    int32_t count;             /* synthetic: simulated nodes in this process; 0 = 1 */
    bool tls;                  /* dial with TLS */
    const char *tls_ca;        /* verify the coordinator against this CA file */
    bool tls_insecure;         /* TLS without certificate checks (loopback, tests) */
    int32_t backoff_min_ms;    /* first reconnect delay; 0 = 500 */
    int32_t backoff_max_ms;    /* cap; 0 = 30000 */
    int32_t measure_tokens;    /* tokens decoded for the start-up speed measurement; 0 = 16 */
    int32_t flush_ms;          /* a job's later tokens go out together, one frame per this many
                                  ms (first token, full frames and the last at once);
                                  0 = IG_NODE_FLUSH_MS, < 0 = every token at once */
} ig_node_config;

typedef struct ig_node ig_node;

/* Loads the model (unless synthetic), the key pair (created on first start), and
 * measures tokens/s. Nothing is dialed yet. */
ig_node *ig_node_new(const ig_node_config *cfg, ig_err *err);
/* Runs the event loop until ig_node_stop or SIGTERM/SIGINT (handled here): connects,
 * serves, reconnects. Returns IG_OK after a graceful stop. */
ig_code ig_node_run(ig_node *n, ig_err *err);
/* Asks a running node to hand its jobs back and stop. Thread-safe. */
void ig_node_stop(ig_node *n);
void ig_node_free(ig_node *n);

/* The measured decode speed of one slot (0 in synthetic mode: the configured rate). */
double ig_node_tokens_per_second(const ig_node *n);

#endif /* IG_NODE_H */
