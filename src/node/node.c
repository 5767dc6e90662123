/*
 * node.c — the node agent's life: configuration, key pair, model and speed
 * measurement, the event loop, and its links to the coordinator.
 *
 * A link (one per simulated node; one in normal mode) goes
 *   IDLE → CONNECTING (dial) → HELLO (hello sent) → AUTH (auth sent) → READY (welcome)
 * and back to IDLE whenever the connection ends, after which it redials with
 * exponential backoff (backoff_min doubling to backoff_max, ±25 % jitter, reset by a
 * welcome). Jobs running when a link drops are cancelled: the coordinator has
 * already re-offered them elsewhere with the tokens it forwarded.
 */
#include "node_internal.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define STOP_GRACE_MS 3000

static void link_dial(node_link *l);

/* ---- small helpers ---- */

static void log_link(ig_log_level lvl, const node_link *l, const char *event, json_t *f)
{
    if (!f)
        f = json_object();
    json_object_set_new(f, "node", json_string(l->name));
    if (l->node_id[0])
        json_object_set_new(f, "node_id", json_string(l->node_id));
    /* many simulated nodes: only the first one's routine lines at info */
    if (l->node->n_links > 1 && l->index > 0 && lvl == IG_LOG_INFO)
        lvl = IG_LOG_DEBUG;
    ig_net_log(lvl, event, f);
}

static int count_busy(const node_link *l)
{
    int busy = 0;
    for (int i = 0; i < l->n_slots; i++)
        busy += l->slots[i].busy;
    return busy;
}

bool node_slot_can_send(const slot *s)
{
    const node_link *l = s->link;
    return s->busy && !s->discard && l->state == LINK_READY && s->epoch == l->epoch && l->conn &&
           ig_net_conn_is_open(l->conn);
}

void node_slot_send(slot *s, const ig_msg *m)
{
    ig_err err;
    if (!node_slot_can_send(s))
        return;
    if (ig_net_conn_send(s->link->conn, m, &err) != IG_OK) {
        /* A message we cannot build is our bug, not the peer's: fail the job. */
        ig_net_logf(IG_LOG_ERROR, "send_failed", "job %s: %s", s->job_id, err.msg);
        s->discard = true;
        if (m->type == IG_MSG_TOKENS) {
            ig_msg e;
            ig_msg_init(&e, IG_MSG_JOB_ERROR);
            e.job_error.job_id = s->job_id;
            e.job_error.reason = err.msg;
            ig_net_conn_send(s->link->conn, &e, NULL);
            node_job_cancel(s);
        }
    }
}

static void check_stopped(ig_node *n);

void node_slot_freed(slot *s)
{
    if (s->node->stopping)
        check_stopped(s->node);
}

/* ---- link: connection callbacks ---- */

static void send_hello(node_link *l)
{
    ig_node *n = l->node;
    ig_msg m;
    ig_msg_init(&m, IG_MSG_HELLO);
    m.hello.version = IG_NET_PROTOCOL_VERSION;
    memcpy(m.hello.node_key, l->kp.pk, IG_NET_KEY_BYTES);
    const char *token = l->enroll_token ? l->enroll_token : n->cfg.enroll_token;
    m.hello.enroll_token = (!l->enrolled && token) ? token : NULL;
    m.hello.n_models = 1;
    m.hello.models[0].id = n->model_id;
    m.hello.models[0].cls = n->cfg.cls;
    m.hello.models[0].n_ctx = n->n_ctx;
    m.hello.models[0].chat_family = n->chat_family;
    m.hello.slots = l->n_slots;
    m.hello.tokens_per_second = n->tokens_per_second;
    m.hello.threads = n->threads;
    m.hello.name = l->name;
    ig_err err;
    if (ig_net_conn_send(l->conn, &m, &err) != IG_OK)
        ig_net_conn_close(l->conn, IG_ERR_INTERNAL, "cannot send hello: %s", err.msg);
}

static void on_open(ig_net_conn *c, void *user)
{
    node_link *l = user;
    (void)c;
    l->state = LINK_HELLO;
    json_t *f = json_object();
    json_object_set_new(f, "coordinator", json_string(ig_net_conn_label(c)));
    json_object_set_new(f, "enrolling",
                        json_boolean(!l->enrolled && (l->enroll_token || l->node->cfg.enroll_token)));
    log_link(IG_LOG_INFO, l, "link_connected", f);
    send_hello(l);
    struct timeval tv = {NODE_HANDSHAKE_MS / 1000, (NODE_HANDSHAKE_MS % 1000) * 1000};
    event_add(l->handshake_ev, &tv);
}

static void record_enrolment(node_link *l)
{
    if (l->enrolled)
        return;
    l->enrolled = true;
    if (l->index != 0)
        return;
    char path[1200];
    snprintf(path, sizeof path, "%s/enrolled", l->node->data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        ig_net_logf(IG_LOG_WARN, "enrolment_not_recorded", "%s: %s", path, strerror(errno));
        return;
    }
    /* the key it was enrolled with, then the node id: a new key file means a new
     * enrolment, whatever this file says */
    char pk[2 * IG_NET_KEY_BYTES + 1];
    ig_net_hex_encode(l->kp.pk, IG_NET_KEY_BYTES, pk);
    char line[2 * IG_NET_KEY_BYTES + IG_NET_MAX_ID + 4];
    int k = snprintf(line, sizeof line, "%s %s\n", pk, l->node_id);
    ssize_t w = write(fd, line, (size_t)k);
    (void)w;
    close(fd);
}

static void handle_job(node_link *l, ig_msg *m)
{
    ig_node *n = l->node;
    const ig_msg_job *j = &m->job;
    const char *why = NULL;
    char reason[256];
    slot *free_slot = NULL;
    for (int i = 0; i < l->n_slots; i++) {
        slot *s = &l->slots[i];
        if (s->busy && !s->discard && strcmp(s->job_id, j->job_id) == 0) {
            why = "job is already running on this node";
            break;
        }
        if (!s->busy && !free_slot)
            free_slot = s;
    }
    if (!why && n->stopping)
        why = "node shutting down";
    if (!why && strcmp(j->model, n->model_id) != 0) {
        snprintf(reason, sizeof reason, "model '%s' is not served here (this node serves '%s')",
                 j->model, n->model_id);
        why = reason;
    }
    if (!why && !free_slot)
        why = "no free slot";
    if (why) {
        ig_msg r;
        ig_msg_init(&r, IG_MSG_REJECT);
        r.reject.job_id = j->job_id;
        r.reject.reason = why;
        ig_net_conn_send(l->conn, &r, NULL);
        json_t *f = json_object();
        json_object_set_new(f, "job_id", json_string(j->job_id));
        json_object_set_new(f, "reason", json_string(why));
        log_link(IG_LOG_INFO, l, "job_rejected", f);
        ig_msg_deinit(m);
        return;
    }
    json_t *f = json_object();
    json_object_set_new(f, "job_id", json_string(j->job_id));
    json_object_set_new(f, "slot", json_integer(free_slot->index));
    json_object_set_new(f, "kind", json_string(j->kind == IG_JOB_CHAT ? "chat" : "completion"));
    json_object_set_new(f, "resume", json_integer(j->n_resume));
    json_object_set_new(f, "max_tokens", json_integer(j->params.max_tokens));
    /* The engine starts before `accept` goes out: on a VM that send wakes the
     * coordinator's vCPU through the hypervisor (~0.1-1 ms, build/wake_cost), time the
     * worker can spend on the prompt on another core. It holds its first frame until
     * node_job_accepted, so `accept` still precedes the job's `tokens`. */
    node_job_start(free_slot, m); /* takes the message */
    ig_msg a;
    ig_msg_init(&a, IG_MSG_ACCEPT);
    a.accept.job_id = free_slot->job_id;
    ig_net_conn_send(l->conn, &a, NULL);
    node_job_accepted(free_slot);
    log_link(n->cfg.synthetic ? IG_LOG_DEBUG : IG_LOG_INFO, l, "job_start", f);
}

static void handle_cancel(node_link *l, const char *job_id)
{
    for (int i = 0; i < l->n_slots; i++) {
        slot *s = &l->slots[i];
        if (s->busy && !s->discard && strcmp(s->job_id, job_id) == 0) {
            json_t *f = json_object();
            json_object_set_new(f, "job_id", json_string(job_id));
            log_link(l->node->cfg.synthetic ? IG_LOG_DEBUG : IG_LOG_INFO, l, "job_cancelled", f);
            node_job_cancel(s);
            return;
        }
    }
}

static void on_msg(ig_net_conn *c, ig_msg *m, void *user)
{
    node_link *l = user;
    ig_node *n = l->node;
    if (m->type == IG_MSG_ERROR) {
        json_t *f = json_object();
        json_object_set_new(f, "message", json_string(m->error.message));
        json_object_set_new(f, "state", json_string(l->state == LINK_READY ? "ready" : "handshake"));
        log_link(IG_LOG_WARN, l, "coordinator_error", f);
        ig_msg_deinit(m);
        return; /* the coordinator closes; on_close follows */
    }
    switch (l->state) {
    case LINK_HELLO:
        if (m->type != IG_MSG_CHALLENGE) {
            ig_net_conn_fail(c, IG_ERR_PROTOCOL, "expected challenge, got %s", ig_msg_type_name(m->type));
            break;
        }
        {
            ig_msg a;
            ig_msg_init(&a, IG_MSG_AUTH);
            ig_net_auth_sign(&l->kp, m->challenge.nonce, a.auth.signature);
            ig_net_conn_send(c, &a, NULL);
            l->state = LINK_AUTH;
        }
        break;
    case LINK_AUTH:
        if (m->type != IG_MSG_WELCOME) {
            ig_net_conn_fail(c, IG_ERR_PROTOCOL, "expected welcome, got %s", ig_msg_type_name(m->type));
            break;
        }
        event_del(l->handshake_ev);
        l->state = LINK_READY;
        snprintf(l->node_id, sizeof l->node_id, "%s", m->welcome.node_id);
        l->heartbeat_ms = m->welcome.heartbeat_ms;
        l->backoff_ms = n->cfg.backoff_min_ms;
        record_enrolment(l);
        ig_net_conn_set_heartbeat(c, l->heartbeat_ms);
        {
            json_t *f = json_object();
            json_object_set_new(f, "heartbeat_ms", json_integer(l->heartbeat_ms));
            json_object_set_new(f, "slots", json_integer(l->n_slots));
            json_object_set_new(f, "tokens_per_second", json_real(n->tokens_per_second));
            log_link(IG_LOG_INFO, l, "link_ready", f);
        }
        break;
    case LINK_READY:
        switch (m->type) {
        case IG_MSG_JOB:
            handle_job(l, m);
            break;
        case IG_MSG_CANCEL:
            handle_cancel(l, m->cancel.job_id);
            break;
        case IG_MSG_PING:
        case IG_MSG_PONG:
            break; /* pongs are sent by the link; liveness is any traffic */
        default:
            ig_net_conn_fail(c, IG_ERR_PROTOCOL, "unexpected %s from the coordinator",
                             ig_msg_type_name(m->type));
            break;
        }
        break;
    default:
        ig_net_conn_fail(c, IG_ERR_PROTOCOL, "unexpected %s before the handshake",
                         ig_msg_type_name(m->type));
        break;
    }
    ig_msg_deinit(m); /* a no-op when handle_job took it */
}

static void on_heartbeat(ig_net_conn *c, void *user)
{
    node_link *l = user;
    int busy = count_busy(l);
    ig_msg p;
    ig_msg_init(&p, IG_MSG_PING);
    p.ping.t = ig_net_now_ms();
    p.ping.has_load = true;
    p.ping.active = busy;
    p.ping.free_slots = l->n_slots - busy;
    ig_net_conn_send(c, &p, NULL);
}

static void schedule_reconnect(node_link *l)
{
    ig_node *n = l->node;
    int32_t base = l->backoff_ms;
    /* ±25 % jitter so that many nodes cut off together do not return together */
    double jitter = 0.75 + 0.5 * ((double)randombytes_uniform(1000000) / 1e6);
    int64_t delay = (int64_t)(base * jitter);
    if (delay > n->cfg.backoff_max_ms)
        delay = n->cfg.backoff_max_ms;
    if (delay < 1)
        delay = 1;
    int64_t next = (int64_t)base * 2;
    l->backoff_ms = (int32_t)(next > n->cfg.backoff_max_ms ? n->cfg.backoff_max_ms : next);
    json_t *f = json_object();
    json_object_set_new(f, "delay_ms", json_integer(delay));
    log_link(IG_LOG_INFO, l, "reconnect_scheduled", f);
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000)};
    event_add(l->reconnect_ev, &tv);
}

static void on_close(ig_net_conn *c, const ig_err *reason, void *user)
{
    node_link *l = user;
    (void)reason;
    event_del(l->handshake_ev);
    bool was_ready = l->state == LINK_READY;
    l->state = LINK_IDLE;
    l->epoch++;
    for (int i = 0; i < l->n_slots; i++)
        node_job_cancel(&l->slots[i]);
    ig_net_conn_free(c);
    l->conn = NULL;
    (void)was_ready;
    if (l->node->stopping)
        check_stopped(l->node);
    else
        schedule_reconnect(l);
}

static const ig_net_callbacks LINK_CALLBACKS = {on_open, on_msg, on_close, on_heartbeat};

static void handshake_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    node_link *l = arg;
    if (l->conn && l->state != LINK_READY)
        ig_net_conn_close(l->conn, IG_ERR_TIMEOUT, "no welcome within %d ms", NODE_HANDSHAKE_MS);
}

static void link_dial(node_link *l)
{
    ig_node *n = l->node;
    if (n->stopping || l->conn)
        return;
    ig_net_conn_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.tls = n->tls;
    opts.tls_hostname = (n->tls && !n->cfg.tls_insecure) ? n->host : NULL;
    opts.quiet = n->n_links > 1 && l->index > 0;
    l->state = LINK_CONNECTING;
    ig_err err;
    l->conn = ig_net_conn_dial(n->base, n->host, n->port, &opts, &LINK_CALLBACKS, l, &err);
    if (!l->conn) {
        l->state = LINK_IDLE;
        json_t *f = json_object();
        json_object_set_new(f, "reason", json_string(err.msg));
        log_link(IG_LOG_WARN, l, "dial_failed", f);
        schedule_reconnect(l);
    }
}

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_dial(arg);
}

/* ---- stopping ---- */

static void check_stopped(ig_node *n)
{
    if (!n->stopping)
        return;
    bool all_done = true;
    for (int i = 0; i < n->n_links && all_done; i++) {
        node_link *l = &n->links[i];
        if (l->conn || count_busy(l))
            all_done = false;
    }
    if (all_done || ig_net_now_ms() >= n->stop_deadline_ms)
        event_base_loopbreak(n->base);
}

static void stop_check_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    check_stopped(arg);
}

static void begin_stop(ig_node *n, const char *why)
{
    if (n->stopping)
        return;
    n->stopping = true;
    n->stop_deadline_ms = ig_net_now_ms() + STOP_GRACE_MS;
    ig_net_logf(IG_LOG_INFO, "node_stopping", "%s: handing running jobs back", why);
    for (int i = 0; i < n->n_links; i++) {
        node_link *l = &n->links[i];
        event_del(l->reconnect_ev);
        for (int k = 0; k < l->n_slots; k++) {
            slot *s = &l->slots[k];
            if (node_slot_can_send(s)) {
                int64_t sent = node_job_stop_output(s); /* no token after the handback */
                ig_msg h;
                ig_msg_init(&h, IG_MSG_HANDBACK);
                h.handback.job_id = s->job_id;
                h.handback.reason = "node shutting down";
                ig_net_conn_send(l->conn, &h, NULL);
                json_t *f = json_object();
                json_object_set_new(f, "job_id", json_string(s->job_id));
                json_object_set_new(f, "sent_tokens", json_integer(sent));
                log_link(IG_LOG_INFO, l, "job_handed_back", f);
            }
            node_job_cancel(s);
        }
        if (l->conn)
            ig_net_conn_shutdown(l->conn, "node shutting down");
    }
    struct timeval tv = {0, 100 * 1000};
    event_add(n->stop_check_ev, &tv);
    check_stopped(n);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    begin_stop(arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    begin_stop(arg, "stop requested");
}

void ig_node_stop(ig_node *n) { event_active(n->stop_ev, EV_READ, 0); }

/* ---- construction ---- */

static void model_stem(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        len = (size_t)(dot - base);
    if (len >= cap)
        len = cap - 1;
    memcpy(out, base, len);
    out[len] = '\0';
}

static void raise_fd_limit(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t target = (rlim_t)want;
    if (target > rl.rlim_max)
        target = rl.rlim_max;
    if (rl.rlim_cur < target) {
        rl.rlim_cur = target;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Simulated node i > 0 gets its own key, derived from the node's seed and i. */
static void derive_key(const ig_net_keypair *base, int index, ig_net_keypair *out)
{
    if (index == 0) {
        *out = *base;
        return;
    }
    uint8_t in[IG_NET_SECRET_BYTES + 4], seed[crypto_sign_SEEDBYTES];
    memcpy(in, base->sk, IG_NET_SECRET_BYTES);
    in[IG_NET_SECRET_BYTES] = (uint8_t)(index >> 24);
    in[IG_NET_SECRET_BYTES + 1] = (uint8_t)(index >> 16);
    in[IG_NET_SECRET_BYTES + 2] = (uint8_t)(index >> 8);
    in[IG_NET_SECRET_BYTES + 3] = (uint8_t)index;
    crypto_generichash(seed, sizeof seed, in, sizeof in, NULL, 0);
    crypto_sign_seed_keypair(out->pk, out->sk, seed);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(in, sizeof in);
}

/* Gives link i the i-th line of the token file (blank lines skipped). */
static ig_code load_token_file(ig_node *n, const char *path, ig_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return ig_err_set(err, IG_ERR_IO, "enrolment token file %s: %s", path, strerror(errno));
    char line[512];
    int i = 0;
    while (i < n->n_links && fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (len == 0)
            continue;
        n->links[i].enroll_token = strdup(line);
        if (!n->links[i].enroll_token) {
            fclose(f);
            return ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        }
        i++;
    }
    fclose(f);
    if (i < n->n_links)
        return ig_err_set(err, IG_ERR_INVALID, "enrolment token file %s has %d tokens for %d nodes",
                          path, i, n->n_links);
    return IG_OK;
}

ig_node *ig_node_new(const ig_node_config *cfg_in, ig_err *err)
{
    static int threads_ready;
    if (!threads_ready) {
        /* event_active from worker threads needs libevent's locking */
        if (evthread_use_pthreads() != 0) {
            ig_err_set(err, IG_ERR_INTERNAL, "libevent has no pthreads support");
            return NULL;
        }
        threads_ready = 1;
    }
    ig_node *n = calloc(1, sizeof *n);
    if (!n) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        return NULL;
    }
    n->cfg = *cfg_in;
    ig_node_config *cfg = &n->cfg;
    if (cfg->backoff_min_ms <= 0)
        cfg->backoff_min_ms = 500;
    if (cfg->backoff_max_ms <= 0)
        cfg->backoff_max_ms = 30000;
    if (cfg->backoff_max_ms < cfg->backoff_min_ms)
        cfg->backoff_max_ms = cfg->backoff_min_ms;
    if (cfg->count <= 0)
        cfg->count = 1;
    if (cfg->count > 1 && !cfg->synthetic) {
        ig_err_set(err, IG_ERR_INVALID, "--count needs --synthetic");
        goto fail;
    }
    if (cfg->count > NODE_MAX_COUNT) {
        ig_err_set(err, IG_ERR_INVALID, "--count %d is above the limit of %d", cfg->count, NODE_MAX_COUNT);
        goto fail;
    }
    if (cfg->slots <= 0)
        cfg->slots = cfg->synthetic ? 4 : 1;
    if (cfg->slots > IG_NET_MAX_SLOTS) {
        ig_err_set(err, IG_ERR_INVALID, "--slots %d is above the limit of %d", cfg->slots, IG_NET_MAX_SLOTS);
        goto fail;
    }
    if (!cfg->coordinator) {
        ig_err_set(err, IG_ERR_INVALID, "no coordinator address (--coordinator HOST:PORT)");
        goto fail;
    }
    if (ig_net_parse_host_port(cfg->coordinator, n->host, sizeof n->host, &n->port, false, err))
        goto fail;
    if (!cfg->synthetic && !cfg->model_path) {
        ig_err_set(err, IG_ERR_INVALID, "no model (--model FILE)");
        goto fail;
    }
    snprintf(n->data_dir, sizeof n->data_dir, "%s", cfg->data_dir ? cfg->data_dir : "./idlegrid-node");
    if (cfg->model_path)
        model_stem(cfg->model_path, n->model_id, sizeof n->model_id);
    else
        snprintf(n->model_id, sizeof n->model_id, "%s", cfg->cls == IG_NODE_CLASS_CLOUD ? "cloud" : "edge");
    if (!n->model_id[0]) {
        ig_err_set(err, IG_ERR_INVALID, "cannot derive a model id from '%s'", cfg->model_path);
        goto fail;
    }
    snprintf(n->chat_family, sizeof n->chat_family, "plain");

    bool created = false;
    if (ig_net_keypair_load_or_create(n->data_dir, &n->base_key, &created, err)) {
        ig_err_wrap(err, "node key");
        goto fail;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/enrolled", n->data_dir);
    bool enrolled = false;
    {
        char pk[2 * IG_NET_KEY_BYTES + 1], line[2 * IG_NET_KEY_BYTES + IG_NET_MAX_ID + 4];
        ig_net_hex_encode(n->base_key.pk, IG_NET_KEY_BYTES, pk);
        FILE *ef = fopen(path, "r");
        if (ef) {
            enrolled = fgets(line, sizeof line, ef) && strncmp(line, pk, strlen(pk)) == 0;
            fclose(ef);
        }
    }

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    if (!cfg->synthetic) {
        n->model = ig_model_load(cfg->model_path, err);
        if (!n->model) {
            ig_err_wrap(err, "loading %s", cfg->model_path);
            goto fail;
        }
        const ig_model_info *info = ig_model_get_info(n->model);
        snprintf(n->chat_family, sizeof n->chat_family, "%s",
                 info->chat_template_family[0] ? info->chat_template_family : "plain");
        n->n_ctx = cfg->n_ctx > 0 ? cfg->n_ctx : (info->n_ctx_train < 4096 ? info->n_ctx_train : 4096);
        if (n->n_ctx < 8)
            n->n_ctx = 8;
        n->threads = cfg->threads > 0 ? cfg->threads : (int32_t)(cpus / cfg->slots > 0 ? cpus / cfg->slots : 1);
        n->flush_ms = cfg->flush_ms < 0 ? 0 : cfg->flush_ms > 0 ? cfg->flush_ms : IG_NODE_FLUSH_MS;
    } else {
        n->n_ctx = cfg->n_ctx > 0 ? cfg->n_ctx : 4096;
        n->threads = 1;
        raise_fd_limit(cfg->count + 64);
    }

    n->base = event_base_new();
    if (!n->base) {
        ig_err_set(err, IG_ERR_INTERNAL, "cannot create the event loop");
        goto fail;
    }
    if (cfg->tls) {
        n->tls = ig_net_tls_client_ctx(cfg->tls_ca, !cfg->tls_insecure, err);
        if (!n->tls)
            goto fail;
    }
    n->n_links = cfg->count;
    n->links = calloc((size_t)n->n_links, sizeof(node_link));
    if (!n->links) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory for %d links", n->n_links);
        goto fail;
    }
    char host[64] = "node";
    gethostname(host, sizeof host - 1);
    for (int i = 0; i < n->n_links; i++) {
        node_link *l = &n->links[i];
        l->node = n;
        l->index = i;
        l->backoff_ms = cfg->backoff_min_ms;
        l->enrolled = enrolled;
        derive_key(&n->base_key, i, &l->kp);
        const char *name = cfg->name ? cfg->name : host;
        if (n->n_links > 1)
            snprintf(l->name, sizeof l->name, "%.100s-%d", name, i);
        else
            snprintf(l->name, sizeof l->name, "%.120s", name);
        l->reconnect_ev = event_new(n->base, -1, 0, reconnect_cb, l);
        l->handshake_ev = event_new(n->base, -1, 0, handshake_timeout_cb, l);
        l->slots = calloc((size_t)cfg->slots, sizeof(slot));
        if (!l->reconnect_ev || !l->handshake_ev || !l->slots) {
            ig_err_set(err, IG_ERR_NOMEM, "out of memory for link %d", i);
            goto fail;
        }
        l->n_slots = cfg->slots;
        for (int k = 0; k < cfg->slots; k++) {
            if (node_slot_init(n, l, &l->slots[k], k, err))
                goto fail;
        }
    }
    if (cfg->enroll_token_file && load_token_file(n, cfg->enroll_token_file, err))
        goto fail;
    n->stop_ev = event_new(n->base, -1, 0, stop_cb, n);
    n->stop_check_ev = event_new(n->base, -1, EV_PERSIST, stop_check_cb, n);
    n->sig_ev[0] = evsignal_new(n->base, SIGTERM, signal_cb, n);
    n->sig_ev[1] = evsignal_new(n->base, SIGINT, signal_cb, n);
    if (!n->stop_ev || !n->stop_check_ev || !n->sig_ev[0] || !n->sig_ev[1]) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory (events)");
        goto fail;
    }

    if (cfg->synthetic) {
        n->tokens_per_second = cfg->rate > 0 ? cfg->rate : 50;
    } else {
        double tps = node_measure_speed(n, err);
        if (tps < 0) {
            ig_err_wrap(err, "measuring decode speed");
            goto fail;
        }
        n->tokens_per_second = tps;
    }
    char pkhex[2 * IG_NET_KEY_BYTES + 1];
    ig_net_hex_encode(n->base_key.pk, IG_NET_KEY_BYTES, pkhex);
    json_t *f = json_object();
    json_object_set_new(f, "model", json_string(n->model_id));
    json_object_set_new(f, "class", json_string(ig_node_class_name(cfg->cls)));
    json_object_set_new(f, "synthetic", json_boolean(cfg->synthetic));
    json_object_set_new(f, "count", json_integer(n->n_links));
    json_object_set_new(f, "slots", json_integer(cfg->slots));
    json_object_set_new(f, "threads", json_integer(n->threads));
    json_object_set_new(f, "n_ctx", json_integer(n->n_ctx));
    json_object_set_new(f, "tokens_per_second", json_real(n->tokens_per_second));
    json_object_set_new(f, "node_key", json_string(pkhex));
    json_object_set_new(f, "key_created", json_boolean(created));
    json_object_set_new(f, "enrolled", json_boolean(enrolled));
    json_object_set_new(f, "coordinator", json_string(cfg->coordinator));
    ig_net_log(IG_LOG_INFO, "node_start", f);
    return n;
fail:
    ig_node_free(n);
    return NULL;
}

ig_code ig_node_run(ig_node *n, ig_err *err)
{
    (void)err;
    event_add(n->sig_ev[0], NULL);
    event_add(n->sig_ev[1], NULL);
    /* Many simulated nodes connect at 2000 per second, not all in one burst. */
    for (int i = 0; i < n->n_links; i++) {
        if (i == 0) {
            link_dial(&n->links[0]);
        } else {
            int64_t us = (int64_t)i * 500;
            struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
            event_add(n->links[i].reconnect_ev, &tv);
        }
    }
    event_base_dispatch(n->base);
    event_del(n->sig_ev[0]);
    event_del(n->sig_ev[1]);
    ig_net_logf(IG_LOG_INFO, "node_stopped", "node stopped");
    return IG_OK;
}

double ig_node_tokens_per_second(const ig_node *n) { return n->tokens_per_second; }

void ig_node_free(ig_node *n)
{
    if (!n)
        return;
    for (int i = 0; n->links && i < n->n_links; i++) {
        node_link *l = &n->links[i];
        if (l->conn) {
            ig_net_conn_free(l->conn);
            l->conn = NULL;
        }
        for (int k = 0; l->slots && k < l->n_slots; k++)
            node_slot_deinit(&l->slots[k]);
        free(l->enroll_token);
        free(l->slots);
        if (l->reconnect_ev)
            event_free(l->reconnect_ev);
        if (l->handshake_ev)
            event_free(l->handshake_ev);
    }
    free(n->links);
    for (int i = 0; i < 2; i++)
        if (n->sig_ev[i])
            event_free(n->sig_ev[i]);
    if (n->stop_ev)
        event_free(n->stop_ev);
    if (n->stop_check_ev)
        event_free(n->stop_check_ev);
    if (n->tls)
        ig_net_tls_free(n->tls);
    if (n->base)
        event_base_free(n->base);
    ig_model_free(n->model);
    sodium_memzero(&n->base_key, sizeof n->base_key);
    free(n);
}
