/*
 * net.h — the node link: the one interface of the net layer (docs/PROTOCOL.md).
 *
 * Used by both ends of the link: the coordinator (listener side) and the node agent
 * (dialing side). Pieces, bottom up:
 *   log        structured JSON log lines on stderr, shared by every layer above
 *   frames     4-byte big-endian length + UTF-8 JSON object, size-limited
 *   messages   typed parse/build of every message (ig_msg), field by field validated
 *   keys/auth  ed25519 node keys (libsodium), challenge/response signatures, hex
 *   conn       one framed connection over a libevent bufferevent (plain TCP or TLS):
 *              read/write frames, heartbeats, liveness, close with a logged reason
 *   listener   accept side (coordinator); dial side (node)
 *
 * Threads: everything here except the codec, message and key functions (and
 * ig_net_conn_send_threadsafe) belongs to the thread running the event_base the
 * connection was created on.
 *
 * Every rejection of peer input is an IG_ERR_PROTOCOL whose message names the problem
 * (byte offset, field name, limit), so a log line says exactly why a link was closed.
 */
#ifndef IG_NET_H
#define IG_NET_H

#include "engine.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;
struct ssl_ctx_st;

/* ------------------------------------------------------------------------- */
/* Logging: one JSON object per line on stderr:                               */
/* {"ts":"2026-01-01T00:00:00.123Z","level":"info","event":"...",...fields}   */

typedef enum { IG_LOG_DEBUG = 0, IG_LOG_INFO, IG_LOG_WARN, IG_LOG_ERROR, IG_LOG_OFF } ig_log_level;

/* Lines below this level are dropped (default IG_LOG_INFO; IG_LOG env var: debug,
 * info, warn, error, off, read on first use). Thread-safe. */
void ig_net_log_set_level(ig_log_level level);
ig_log_level ig_net_log_get_level(void);
/* Writes one line. fields (may be NULL) is a JSON object whose members are added to
 * the line; the reference is stolen. Thread-safe (one write(2) per line). */
void ig_net_log(ig_log_level level, const char *event, json_t *fields);
/* The same with a "msg" field formatted printf-style. */
void ig_net_logf(ig_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------- */
/* Frames.                                                                     */

#define IG_NET_PROTOCOL_VERSION 1
#define IG_NET_FRAME_HEADER 4                   /* big-endian payload length */
#define IG_NET_FRAME_MAX_DEFAULT (1u << 20)     /* payload bytes */

/* Parses and validates one payload: UTF-8 (offset of the first bad byte), one JSON
 * value (jansson's reason, line, column, position), an object, with a string "type".
 * Returns a new reference, or NULL with err set (IG_ERR_PROTOCOL). */
json_t *ig_net_payload_parse(const void *payload, size_t len, ig_err *err);

/* Decodes the frame at the start of buf[0..len). Returns IG_OK with *consumed = 0
 * and *out = NULL when buf holds less than a whole frame (call again with more);
 * IG_OK with *consumed > 0 and *out set on a frame; or IG_ERR_PROTOCOL: zero length,
 * length over max_payload (known from the header alone), or a bad payload. */
ig_code ig_net_frame_decode(const void *buf, size_t len, size_t max_payload, size_t *consumed,
                            json_t **out, ig_err *err);
/* buf must hold exactly one frame: fewer bytes are "truncated frame", more are
 * "trailing bytes". For tests and tools. */
ig_code ig_net_frame_decode_exact(const void *buf, size_t len, size_t max_payload, json_t **out,
                                  ig_err *err);
/* Serialises j compactly and frames it. Returns a malloc'd buffer of *out_len bytes
 * (header included), or NULL with err set (IG_ERR_RANGE when over max_payload). */
unsigned char *ig_net_frame_encode(const json_t *j, size_t max_payload, size_t *out_len,
                                   ig_err *err);

/* ------------------------------------------------------------------------- */
/* Messages (GRID.md / docs/PROTOCOL.md). In a parsed ig_msg every string      */
/* points into msg->root (the frame's JSON) and every array was allocated by   */
/* the parser: both are released by ig_msg_deinit. To build one, fill the      */
/* struct with your own pointers (root = NULL) and call ig_msg_to_json.        */

typedef enum {
    IG_MSG_NONE = 0,
    IG_MSG_HELLO,     /* node → coord */
    IG_MSG_CHALLENGE, /* coord → node */
    IG_MSG_AUTH,      /* node → coord */
    IG_MSG_WELCOME,   /* coord → node */
    IG_MSG_ERROR,     /* either; the sender closes afterwards */
    IG_MSG_PING,      /* either */
    IG_MSG_PONG,      /* either */
    IG_MSG_JOB,       /* coord → node */
    IG_MSG_ACCEPT,    /* node → coord */
    IG_MSG_REJECT,    /* node → coord */
    IG_MSG_TOKENS,    /* node → coord */
    IG_MSG_DONE,      /* node → coord */
    IG_MSG_JOB_ERROR, /* node → coord, wire type "job_error" */
    IG_MSG_HANDBACK,  /* node → coord */
    IG_MSG_CANCEL,    /* coord → node */
    IG_MSG_COUNT
} ig_msg_type;

/* Wire name ("hello", "job_error"); "none" for IG_MSG_NONE / out of range. */
const char *ig_msg_type_name(ig_msg_type t);
/* IG_MSG_NONE when unknown. */
ig_msg_type ig_msg_type_from_name(const char *name);

/* Limits enforced by the parsers (and asserted by the builders). */
#define IG_NET_MAX_MODELS 16           /* models in a hello */
#define IG_NET_MAX_ID 128              /* bytes of ids: job_id, node_id, model id, names */
#define IG_NET_MAX_MESSAGES 1024       /* chat messages in a job */
#define IG_NET_MAX_RESUME 65536        /* resume tokens in a job */
#define IG_NET_MAX_TOKEN_ITEMS 1024    /* items in one tokens frame */
#define IG_NET_MAX_SLOTS 4096
#define IG_NET_KEY_BYTES 32            /* ed25519 public key */
#define IG_NET_SECRET_BYTES 64         /* ed25519 secret key (libsodium layout) */
#define IG_NET_SIG_BYTES 64
#define IG_NET_NONCE_BYTES 32
#define IG_NET_AUTH_CONTEXT "idlegrid-node-auth-v1"

typedef enum { IG_NODE_CLASS_EDGE = 0, IG_NODE_CLASS_CLOUD = 1 } ig_node_class;
const char *ig_node_class_name(ig_node_class c); /* "edge", "cloud" */

typedef struct {
    const char *id;          /* "edge": the model file's stem */
    ig_node_class cls;
    int32_t n_ctx;           /* context length each slot serves */
    const char *chat_family; /* ig_model_info.chat_template_family */
    const char *file_sha;    /* optional (NULL): hex sha256 of the GGUF file */
} ig_net_model;

typedef struct {
    int32_t version;                     /* IG_NET_PROTOCOL_VERSION */
    uint8_t node_key[IG_NET_KEY_BYTES];  /* wire: 64 hex chars */
    const char *enroll_token;            /* optional (NULL) */
    ig_net_model models[IG_NET_MAX_MODELS];
    int32_t n_models;                    /* >= 1 */
    int32_t slots;                       /* 1..IG_NET_MAX_SLOTS */
    double tokens_per_second;            /* measured at start, per slot, >= 0 */
    int32_t threads;                     /* >= 1 */
    const char *name;
} ig_msg_hello;

typedef struct { uint8_t nonce[IG_NET_NONCE_BYTES]; } ig_msg_challenge;
typedef struct { uint8_t signature[IG_NET_SIG_BYTES]; } ig_msg_auth;
typedef struct { const char *node_id; int32_t heartbeat_ms; } ig_msg_welcome;
typedef struct { const char *message; } ig_msg_error;

/* ping: t is the sender's clock in ms (echoed in the pong). A node's ping also
 * carries its load (has_load = true); a coordinator's does not. */
typedef struct {
    int64_t t;
    bool has_load;
    int32_t active;
    int32_t free_slots;
} ig_msg_ping;
typedef struct { int64_t t; } ig_msg_pong;

typedef enum { IG_JOB_COMPLETION = 0, IG_JOB_CHAT = 1 } ig_job_kind;

typedef struct {
    const char *job_id;
    const char *model;
    ig_job_kind kind;
    const char *prompt;              /* completion; may hold NULs, hence prompt_len */
    size_t prompt_len;
    ig_chat_message *messages;       /* chat; content is cut at an embedded NUL */
    int32_t n_messages;
    /* params: max_tokens, sampler.{temperature, top_p, top_k, min_p, repeat_penalty,
     * repeat_last_n, seed}, stop/n_stop, top_logprobs, ignore_eos. The parser starts
     * from ig_net_default_gen_params() and requires max_tokens and seed; the rest are
     * optional. */
    ig_gen_params params;
    bool logprobs;
    int32_t *resume;                 /* tokens already sent to the buyer */
    int32_t n_resume;
    int64_t deadline_ms;             /* ms from receipt the node has to finish; 0 = none */
} ig_msg_job;

typedef struct { const char *job_id; } ig_msg_job_ref; /* accept, cancel */
typedef struct { const char *job_id; const char *reason; } ig_msg_job_reason; /* reject, handback, job_error (reason = message) */

typedef struct {
    int32_t id;
    const char *text; /* valid UTF-8, may be "" */
    size_t text_len;
    float logprob;    /* non-finite values travel as -1e30 */
} ig_net_top_token;

typedef struct {
    int32_t id;
    const char *text; /* the UTF-8 text this token releases (ig_gen_event.text), may be "" */
    size_t text_len;
    float logprob;
    int32_t n_top;    /* 0..IG_MAX_TOP_LOGPROBS; sent only when the job asked for logprobs */
    ig_net_top_token top[IG_MAX_TOP_LOGPROBS];
} ig_net_token;

typedef struct {
    const char *job_id;
    int64_t index;        /* generated-token index of items[0] (counts resume tokens) */
    ig_net_token *items;
    int32_t n_items;      /* 1..IG_NET_MAX_TOKEN_ITEMS */
} ig_msg_tokens;

typedef struct {
    const char *job_id;
    ig_finish finish;     /* STOP, LENGTH, EOS or CONTEXT */
    int32_t prompt_tokens;
    int32_t completion_tokens; /* all generated tokens, resume included */
    double prefill_ms;
    double decode_ms;
} ig_msg_done;

typedef struct {
    ig_msg_type type;
    json_t *root;   /* parsed messages: the owning JSON; NULL when built by hand */
    void *owned;    /* parser allocations (arrays), freed by ig_msg_deinit */
    union {
        ig_msg_hello hello;
        ig_msg_challenge challenge;
        ig_msg_auth auth;
        ig_msg_welcome welcome;
        ig_msg_error error;
        ig_msg_ping ping;
        ig_msg_pong pong;
        ig_msg_job job;
        ig_msg_job_ref accept;
        ig_msg_job_ref cancel;
        ig_msg_job_reason reject;
        ig_msg_job_reason handback;
        ig_msg_job_reason job_error;
        ig_msg_tokens tokens;
        ig_msg_done done;
    };
} ig_msg;

/* The wire defaults of a job's optional params (OpenAI's): temperature 1, top_p 1,
 * top_k 0 (off), min_p 0 (off), repeat_penalty 1 (off), repeat_last_n 64, no stop
 * strings, top_logprobs 0, ignore_eos false; max_tokens 16 and seed 0 (both are
 * required on the wire, so these only seed a struct being built). */
ig_gen_params ig_net_default_gen_params(void);

/* Zeroes m and sets its type (for building). */
void ig_msg_init(ig_msg *m, ig_msg_type type);
/* Parses a frame's JSON into m (takes its own reference to root). On error m is
 * left deinitialised and err names the message type and field:
 * "job: field 'params.max_tokens' must be an integer". */
ig_code ig_msg_parse(json_t *root, ig_msg *m, ig_err *err);
/* Builds the wire JSON of m (a new reference), or NULL with err (a field that
 * breaks a limit or is not valid UTF-8). */
json_t *ig_msg_to_json(const ig_msg *m, ig_err *err);
/* Releases what parsing took; safe on a built or zeroed message. */
void ig_msg_deinit(ig_msg *m);

/* Writes the n bytes at s escaped as the inside of a JSON string, exactly as jansson's
 * compact output escapes them (", \\, \b \f \n \r \t, other bytes below 0x20 as
 * \u00xx; everything else as is), at out, which has room for 6 * n bytes; returns the
 * end. s is taken to be valid UTF-8. */
char *ig_net_json_escape(char *out, const char *s, size_t n);

/* The frame of m (header included), as ig_net_frame_encode(ig_msg_to_json(m)) makes
 * it, with the same errors. A `tokens` message (one per generated token) is written
 * directly, without a JSON tree: the same fields, order and escaping; logprobs with
 * the 9 significant digits that give back the same float. malloc'd; *out_len bytes. */
unsigned char *ig_net_msg_frame_encode(const ig_msg *m, size_t max_payload, size_t *out_len,
                                       ig_err *err);

/* ------------------------------------------------------------------------- */
/* Keys and the challenge/response.                                            */

typedef struct {
    uint8_t pk[IG_NET_KEY_BYTES];
    uint8_t sk[IG_NET_SECRET_BYTES];
} ig_net_keypair;

/* Calls sodium_init once; every function below calls it itself. */
ig_code ig_net_crypto_init(ig_err *err);
ig_code ig_net_keypair_generate(ig_net_keypair *kp, ig_err *err);
/* Key file: the 32-byte seed as 64 hex chars and a newline, mode 0600 (written to a
 * temporary file and renamed). Loading refuses a file readable by group or others. */
ig_code ig_net_keypair_save(const ig_net_keypair *kp, const char *path, ig_err *err);
ig_code ig_net_keypair_load(const char *path, ig_net_keypair *kp, ig_err *err);
/* Loads DIR/node.key, or creates DIR (0700) and the key when absent (*created). */
ig_code ig_net_keypair_load_or_create(const char *dir, ig_net_keypair *kp, bool *created,
                                      ig_err *err);

void ig_net_random_nonce(uint8_t nonce[IG_NET_NONCE_BYTES]);
/* Signs / verifies IG_NET_AUTH_CONTEXT || nonce || node_key (raw bytes, 21+32+32). */
void ig_net_auth_sign(const ig_net_keypair *kp, const uint8_t nonce[IG_NET_NONCE_BYTES],
                      uint8_t sig[IG_NET_SIG_BYTES]);
bool ig_net_auth_verify(const uint8_t node_key[IG_NET_KEY_BYTES],
                        const uint8_t nonce[IG_NET_NONCE_BYTES],
                        const uint8_t sig[IG_NET_SIG_BYTES]);

/* Lower-case hex; out holds 2*n+1 bytes. */
void ig_net_hex_encode(const uint8_t *in, size_t n, char *out);
/* Exactly 2*n hex digits (either case). */
bool ig_net_hex_decode(const char *hex, uint8_t *out, size_t n);

/* ------------------------------------------------------------------------- */
/* Connections.                                                                */

typedef struct ig_net_conn ig_net_conn;

typedef struct {
    /* Called once the link is usable: at once for accepted sockets (after the TLS
     * handshake when TLS is on), on connect for dialed ones. May be NULL. */
    void (*on_open)(ig_net_conn *c, void *user);
    /* One parsed, validated message. The callee owns msg (ig_msg_deinit it).
     * Pings are answered with a pong by the connection itself, then delivered. */
    void (*on_msg)(ig_net_conn *c, ig_msg *msg, void *user);
    /* Called exactly once when the link ends for any reason (peer closed, I/O error,
     * protocol violation, silence, ig_net_conn_close). reason->code is IG_OK for a
     * local close without error. After it returns no other callback runs; the
     * connection object stays valid until ig_net_conn_free. */
    void (*on_close)(ig_net_conn *c, const ig_err *reason, void *user);
    /* Heartbeat tick (see ig_net_conn_set_heartbeat): send your ping here (e.g. with
     * load). When NULL the connection sends a plain ping {t}. */
    void (*on_heartbeat)(ig_net_conn *c, void *user);
} ig_net_callbacks;

typedef struct {
    size_t max_frame;          /* payload limit; 0 = IG_NET_FRAME_MAX_DEFAULT */
    size_t max_output;         /* unsent bytes before the peer counts as stuck; 0 = 16 MiB */
    struct ssl_ctx_st *tls;    /* NULL = plain TCP; else server ctx (accept) / client ctx (dial) */
    const char *tls_hostname;  /* dial: SNI and certificate name check (NULL = none) */
    const char *label;         /* shown in log lines; NULL = the peer address */
    bool quiet;                /* log the close at debug level only (load tests) */
} ig_net_conn_opts;

/* Takes ownership of an accepted socket fd (closed on every path). */
ig_net_conn *ig_net_conn_accept(struct event_base *base, int fd, const ig_net_conn_opts *opts,
                                const ig_net_callbacks *cb, void *user, ig_err *err);
/* Starts a non-blocking connect to host:port (resolved synchronously). A failed
 * connect is reported through on_close, never through on_open. */
ig_net_conn *ig_net_conn_dial(struct event_base *base, const char *host, int port,
                              const ig_net_conn_opts *opts, const ig_net_callbacks *cb,
                              void *user, ig_err *err);

/* Builds, frames and sends a message: straight to the socket when nothing waits
 * before it (no wait for the loop's next turn), else queued behind what waits. Fails
 * (and closes nothing) when the message breaks a limit; returns IG_ERR_IO when the
 * connection is already closed. */
ig_code ig_net_conn_send(ig_net_conn *c, const ig_msg *m, ig_err *err);
/* The one send that may be called from a thread other than the event loop's (a node's
 * engine worker), while the connection is alive: the caller guarantees that
 * ig_net_conn_free does not run meanwhile (the node clears its pointer under a lock
 * before the link thread frees the connection). The event_base must have been made
 * after evthread_use_pthreads(). On plain TCP with nothing waiting the frame goes to
 * the socket at once from the calling thread (*written = true); otherwise it queues
 * behind what waits and the loop's thread sends it. IG_ERR_IO when the link is closed
 * or failing; IG_ERR_BUSY when the peer stopped reading (the loop then closes it).
 * Frames keep their order with those sent by the loop's thread. */
ig_code ig_net_conn_send_threadsafe(ig_net_conn *c, const ig_msg *m, bool *written, ig_err *err);
/* Sends any JSON object as a frame (tests use it to send deliberately bad frames). */
ig_code ig_net_conn_send_json(ig_net_conn *c, const json_t *j, ig_err *err);
/* Queues raw bytes as they are (tests of malformed frames). */
ig_code ig_net_conn_send_raw(ig_net_conn *c, const void *bytes, size_t len, ig_err *err);

/* Heartbeat: every interval_ms on_heartbeat (or a plain ping) is sent, and a peer
 * that sent nothing for 3 intervals is closed ("peer silent for N ms"). 0 = off. */
void ig_net_conn_set_heartbeat(ig_net_conn *c, int32_t interval_ms);

/* Closes now: logs {"event":"link_closed","peer":label,"reason":...}, drops unsent
 * data, calls on_close. code IG_OK = normal close. Idempotent. */
void ig_net_conn_close(ig_net_conn *c, ig_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sends error{message} (when possible), stops reading, closes once it is flushed
 * (or after 1 s); on_close gets code/message. */
void ig_net_conn_fail(ig_net_conn *c, ig_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Stops reading and closes once everything queued is written (or after 1 s);
 * on_close then gets IG_OK and the reason. For graceful goodbyes (after handbacks). */
void ig_net_conn_shutdown(ig_net_conn *c, const char *reason);
/* Frees the object (closing it first, without calling on_close again). Safe inside
 * any callback of this connection: the free then happens when the callback returns. */
void ig_net_conn_free(ig_net_conn *c);

bool ig_net_conn_is_open(const ig_net_conn *c);
const char *ig_net_conn_label(const ig_net_conn *c);
void ig_net_conn_set_label(ig_net_conn *c, const char *label);
void *ig_net_conn_user(const ig_net_conn *c);
void ig_net_conn_set_user(ig_net_conn *c, void *user);
/* Bytes queued but not yet written. */
size_t ig_net_conn_pending_output(const ig_net_conn *c);

/* ------------------------------------------------------------------------- */
/* Listener and addresses.                                                     */

typedef struct ig_net_listener ig_net_listener;
/* fd: a non-blocking accepted socket (TCP_NODELAY set); the callback owns it (pass
 * it to ig_net_conn_accept). peer: "ip:port". */
typedef void (*ig_net_accept_fn)(int fd, const char *peer, void *user);

/* Listens on "HOST:PORT" (port 0 = any; see ig_net_listener_port). */
ig_net_listener *ig_net_listener_new(struct event_base *base, const char *host_port,
                                     ig_net_accept_fn fn, void *user, ig_err *err);
int ig_net_listener_port(const ig_net_listener *l);
void ig_net_listener_free(ig_net_listener *l);

/* "host:port", "[v6]:port" → host (without brackets) and port (1..65535, or 0 when
 * allow_zero). */
ig_code ig_net_parse_host_port(const char *s, char *host, size_t host_cap, int *port,
                               bool allow_zero, ig_err *err);

/* TLS contexts for opts.tls (OpenSSL, TLS 1.2+). Free with ig_net_tls_free. */
struct ssl_ctx_st *ig_net_tls_server_ctx(const char *cert_file, const char *key_file,
                                         ig_err *err);
/* ca_file NULL = the system store; verify false = encrypt without checking the
 * certificate (loopback and tests only). */
struct ssl_ctx_st *ig_net_tls_client_ctx(const char *ca_file, bool verify, ig_err *err);
void ig_net_tls_free(struct ssl_ctx_st *ctx);

/* Milliseconds of a monotonic clock (heartbeats, timings). */
int64_t ig_net_now_ms(void);

#ifdef __cplusplus
}
#endif

#endif /* IG_NET_H */
