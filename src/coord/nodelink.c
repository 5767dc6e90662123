/*
 * nodelink.c — the coordinator's end of the node link (docs/PROTOCOL.md, net.h).
 *
 * Accepts node connections, runs the handshake (hello → challenge → auth → welcome:
 * the node proves it holds its ed25519 key; an unknown key needs a valid one-time
 * enrolment token, consumed only after the signature checks out), then routes job
 * messages to their jobs. A node that breaks the protocol loses its connection, not
 * the coordinator; the jobs it held continue on other nodes (jobs.c).
 */
#include "coord_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static node_conn *node_by_link(ig_net_conn *link)
{
    return ig_net_conn_user(link);
}

bool coord_model_known(ig_coord *c, const char *model)
{
    for (int32_t i = 0; i < c->n_known_models; i++)
        if (strcmp(c->known_models[i], model) == 0)
            return true;
    return false;
}

static void remember_model(ig_coord *c, const char *model)
{
    if (coord_model_known(c, model))
        return;
    if (c->n_known_models < (int32_t)(sizeof c->known_models / sizeof c->known_models[0]))
        snprintf(c->known_models[c->n_known_models++], IG_COORD_MAX_MODEL_ID, "%s", model);
}

static void on_hello(node_conn *n, const ig_msg_hello *h)
{
    ig_coord *c = n->c;
    if (h->version != IG_NET_PROTOCOL_VERSION) {
        ig_net_conn_fail(n->link, IG_ERR_PROTOCOL, "unsupported protocol version %d", h->version);
        return;
    }
    ig_net_hex_encode(h->node_key, IG_NET_KEY_BYTES, n->node_key);
    snprintf(n->node_id, sizeof n->node_id, "n-%.12s", n->node_key);
    snprintf(n->name, sizeof n->name, "%s", h->name ? h->name : "");
    n->has_token = h->enroll_token != NULL;
    if (h->enroll_token)
        snprintf(n->enroll_token, sizeof n->enroll_token, "%s", h->enroll_token);
    n->n_models = 0;
    n->cloud = false;
    for (int32_t i = 0; i < h->n_models && n->n_models < IG_SCHED_MAX_MODELS; i++) {
        if (!h->models[i].id || strlen(h->models[i].id) >= IG_COORD_MAX_MODEL_ID)
            continue;
        snprintf(n->models[n->n_models++], IG_COORD_MAX_MODEL_ID, "%s", h->models[i].id);
        if (h->models[i].cls == IG_NODE_CLASS_CLOUD)
            n->cloud = true;
    }
    n->slots = h->slots > 0 ? h->slots : 1;
    n->tokens_per_second = h->tokens_per_second;
    if (!n->has_token && !ig_coord_node_enrolled(c->store, n->node_key)) {
        ig_net_conn_fail(n->link, IG_ERR_AUTH,
                         "node key %s is not enrolled; start the node with --enroll-token "
                         "(idlegrid nodes token)", n->node_id);
        return;
    }
    ig_net_random_nonce(n->nonce);
    ig_msg m;
    ig_msg_init(&m, IG_MSG_CHALLENGE);
    memcpy(m.challenge.nonce, n->nonce, sizeof n->nonce);
    ig_err err;
    ig_err_clear(&err);
    if (ig_net_conn_send(n->link, &m, &err) != IG_OK) {
        ig_net_conn_close(n->link, err.code, "sending challenge: %s", err.msg);
        return;
    }
    n->state = NODE_AUTH;
}

static void on_auth(node_conn *n, const ig_msg_auth *a)
{
    ig_coord *c = n->c;
    uint8_t key[IG_NET_KEY_BYTES];
    if (!ig_net_hex_decode(n->node_key, key, sizeof key) || !ig_net_auth_verify(key, n->nonce, a->signature)) {
        ig_net_conn_fail(n->link, IG_ERR_AUTH, "bad signature for node key %s", n->node_id);
        return;
    }
    ig_err err;
    ig_err_clear(&err);
    if (!ig_coord_node_enrolled(c->store, n->node_key)) {
        if (!n->has_token ||
            ig_coord_enroll_token_consume(c->store, n->enroll_token, n->node_key, n->name, &err) != IG_OK) {
            ig_net_conn_fail(n->link, IG_ERR_AUTH, "enrolment refused: %s",
                             n->has_token ? err.msg : "no enrolment token");
            return;
        }
    } else {
        ig_coord_node_seen(c->store, n->node_key, n->name, &err);
    }
    ig_msg m;
    ig_msg_init(&m, IG_MSG_WELCOME);
    m.welcome.node_id = n->node_id;
    m.welcome.heartbeat_ms = c->cfg.heartbeat_ms;
    if (ig_net_conn_send(n->link, &m, &err) != IG_OK) {
        ig_net_conn_close(n->link, err.code, "sending welcome: %s", err.msg);
        return;
    }
    char label[112];
    snprintf(label, sizeof label, "%s(%s)", n->node_id, n->name);
    ig_net_conn_set_label(n->link, label);
    ig_net_conn_set_heartbeat(n->link, c->cfg.heartbeat_ms);
    if (n->handshake_ev)
        event_del(n->handshake_ev);
    n->state = NODE_READY;
    c->n_ready++;
    for (int32_t i = 0; i < n->n_models; i++)
        remember_model(c, n->models[i]);
    n->metrics = metrics_node(c, n->node_id);
    ig_net_log(IG_LOG_INFO, "node_ready",
               json_pack("{s:s,s:s,s:s,s:i,s:f,s:b}", "node", n->node_id, "name", n->name, "model",
                         n->n_models ? n->models[0] : "", "slots", n->slots, "tokens_per_second",
                         n->tokens_per_second, "cloud", n->cloud));
    jobs_pump(c);
}

/* The job a node message is about, if it is still this node's. */
static ig_job *job_of(node_conn *n, const char *job_id)
{
    ig_job *j = job_id ? job_find(n->c, job_id) : NULL;
    if (!j || j->node != n)
        return NULL;
    return j;
}

static void on_msg(ig_net_conn *link, ig_msg *m, void *user)
{
    (void)user;
    node_conn *n = node_by_link(link);
    ig_job *j;
    if (!n)
        goto out;
    /* The node's link layer may answer or send heartbeats at any time: never an error. */
    if (n->state != NODE_READY && (m->type == IG_MSG_PING || m->type == IG_MSG_PONG))
        goto out;
    if (n->state == NODE_HELLO) {
        if (m->type != IG_MSG_HELLO)
            ig_net_conn_fail(link, IG_ERR_PROTOCOL, "expected hello, got %s", ig_msg_type_name(m->type));
        else
            on_hello(n, &m->hello);
        goto out;
    }
    if (n->state == NODE_AUTH) {
        if (m->type != IG_MSG_AUTH)
            ig_net_conn_fail(link, IG_ERR_PROTOCOL, "expected auth, got %s", ig_msg_type_name(m->type));
        else
            on_auth(n, &m->auth);
        goto out;
    }
    if (n->state != NODE_READY)
        goto out;
    switch (m->type) {
    case IG_MSG_PING:
    case IG_MSG_PONG:
        break;
    case IG_MSG_ACCEPT:
        if ((j = job_of(n, m->accept.job_id)))
            job_on_accept(j);
        break;
    case IG_MSG_REJECT:
        if ((j = job_of(n, m->reject.job_id)))
            job_on_reject(j, m->reject.reason);
        break;
    case IG_MSG_TOKENS:
        if ((j = job_of(n, m->tokens.job_id)))
            job_on_tokens(j, &m->tokens);
        break;
    case IG_MSG_DONE:
        if ((j = job_of(n, m->done.job_id)))
            job_on_done(j, &m->done);
        break;
    case IG_MSG_JOB_ERROR:
        if ((j = job_of(n, m->job_error.job_id)))
            job_on_node_error(j, m->job_error.reason);
        break;
    case IG_MSG_HANDBACK:
        if ((j = job_of(n, m->handback.job_id)))
            job_on_node_lost(j, m->handback.reason ? m->handback.reason : "handed back", true);
        break;
    case IG_MSG_ERROR:
        ig_net_conn_close(link, IG_ERR_PROTOCOL, "node reported: %s",
                          m->error.message ? m->error.message : "error");
        break;
    default:
        ig_net_conn_fail(link, IG_ERR_PROTOCOL, "unexpected message '%s' from a node",
                         ig_msg_type_name(m->type));
        break;
    }
out:
    ig_msg_deinit(m);
}

static void on_close(ig_net_conn *link, const ig_err *reason, void *user)
{
    (void)user;
    node_conn *n = node_by_link(link);
    if (!n)
        return;
    ig_coord *c = n->c;
    bool was_ready = n->state == NODE_READY;
    n->state = NODE_GONE;
    if (was_ready)
        c->n_ready--;
    /* Every job it held continues elsewhere from the tokens already sent. */
    for (ig_job *j = c->jobs, *next; j; j = next) {
        next = j->next;
        if (j->node == n) {
            job_on_node_lost(j, reason && reason->msg[0] ? reason->msg : "node disconnected", true);
            next = c->jobs; /* the list may have changed; restart (bounded: n holds fewer) */
        }
    }
    if (n->prev)
        n->prev->next = n->next;
    else
        c->nodes = n->next;
    if (n->next)
        n->next->prev = n->prev;
    ig_net_conn_set_user(link, NULL);
    ig_net_conn_free(link);
    if (n->handshake_ev)
        event_free(n->handshake_ev);
    free(n);
    jobs_pump(c);
}

static void handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    node_conn *n = arg;
    if (n->state != NODE_READY)
        ig_net_conn_close(n->link, IG_ERR_TIMEOUT, "no completed handshake within %d ms", HANDSHAKE_MS);
}

static void on_accept(int fd, const char *peer, void *user)
{
    ig_coord *c = user;
    node_conn *n = calloc(1, sizeof *n);
    if (!n) {
        close(fd);
        return;
    }
    n->c = c;
    n->handle = ++c->next_handle;
    n->state = NODE_HELLO;
    static const ig_net_callbacks cb = {.on_msg = on_msg, .on_close = on_close};
    ig_net_conn_opts opts = {.label = peer, .tls = c->tls};
    ig_err err;
    ig_err_clear(&err);
    n->link = ig_net_conn_accept(c->base, fd, &opts, &cb, n, &err);
    if (!n->link) {
        ig_net_logf(IG_LOG_WARN, "node_accept_failed", "%s: %s", peer, err.msg);
        free(n);
        return;
    }
    /* No heartbeats before welcome (the node's handshake expects only challenge and
     * welcome); a deadline instead, so a silent or slow dialer cannot hold a socket. */
    n->handshake_ev = evtimer_new(c->base, handshake_timeout, n);
    if (n->handshake_ev) {
        struct timeval tv = {HANDSHAKE_MS / 1000, (HANDSHAKE_MS % 1000) * 1000};
        evtimer_add(n->handshake_ev, &tv);
    }
    n->next = c->nodes;
    if (c->nodes)
        c->nodes->prev = n;
    c->nodes = n;
}

ig_code coord_nodes_start(ig_coord *c, ig_err *err)
{
    if (c->cfg.tls_cert || c->cfg.tls_key) {
        if (!c->cfg.tls_cert || !c->cfg.tls_key)
            return ig_err_set(err, IG_ERR_INVALID, "node link TLS needs both a certificate and a key");
        c->tls = ig_net_tls_server_ctx(c->cfg.tls_cert, c->cfg.tls_key, err);
        if (!c->tls)
            return ig_err_wrap(err, "node link TLS");
    }
    char hp[300];
    /* IPv6 literals need brackets in HOST:PORT */
    snprintf(hp, sizeof hp, strchr(c->cfg.node_host, ':') ? "[%s]:%d" : "%s:%d", c->cfg.node_host,
             c->cfg.node_port);
    c->listener = ig_net_listener_new(c->base, hp, on_accept, c, err);
    if (!c->listener)
        return ig_err_wrap(err, "node listener on %s", hp);
    return IG_OK;
}

void coord_nodes_stop(ig_coord *c)
{
    ig_net_listener_free(c->listener);
    c->listener = NULL;
    while (c->nodes) {
        node_conn *n = c->nodes;
        ig_net_conn_close(n->link, IG_OK, "coordinator shutting down"); /* on_close frees n */
        if (c->nodes == n) { /* on_close did not run (already closed): free here */
            c->nodes = n->next;
            if (c->nodes)
                c->nodes->prev = NULL;
            ig_net_conn_set_user(n->link, NULL);
            ig_net_conn_free(n->link);
            if (n->handshake_ev)
                event_free(n->handshake_ev);
            free(n);
        }
    }
}

ig_code node_send_job(node_conn *n, ig_job *j, ig_err *err)
{
    ig_msg m;
    ig_msg_init(&m, IG_MSG_JOB);
    ig_msg_job *mj = &m.job;
    mj->job_id = j->id;
    mj->model = j->req.model;
    ig_chat_message *msgs = NULL;
    if (j->req.kind == IG_COORD_CHAT) {
        mj->kind = IG_JOB_CHAT;
        msgs = calloc((size_t)j->req.n_messages, sizeof *msgs);
        if (!msgs)
            return ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        for (int32_t i = 0; i < j->req.n_messages; i++) {
            msgs[i].role = j->req.messages[i].role;
            msgs[i].content = j->req.messages[i].content;
        }
        mj->messages = msgs;
        mj->n_messages = j->req.n_messages;
    } else {
        mj->kind = IG_JOB_COMPLETION;
        mj->prompt = j->req.prompt;
        mj->prompt_len = strlen(j->req.prompt);
    }
    ig_gen_params *p = &mj->params;
    memset(p, 0, sizeof *p);
    p->max_tokens = j->req.max_tokens;
    p->sampler.temperature = j->req.temperature;
    p->sampler.top_k = 0;
    p->sampler.top_p = j->req.top_p;
    p->sampler.min_p = 0;
    p->sampler.repeat_penalty = 1.0f;
    p->sampler.repeat_last_n = 64;
    p->sampler.seed = j->seed;
    for (int32_t i = 0; i < j->req.n_stop && i < IG_MAX_STOP; i++)
        p->stop[i] = j->req.stop[i];
    p->n_stop = j->req.n_stop;
    p->top_logprobs = j->req.logprobs ? j->req.top_logprobs : 0;
    p->ignore_eos = false;
    mj->logprobs = j->req.logprobs;
    int32_t *resume = NULL;
    if (j->n_tokens) {
        resume = malloc((size_t)j->n_tokens * sizeof *resume);
        if (!resume) {
            free(msgs);
            return ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        }
        for (int32_t i = 0; i < j->n_tokens; i++)
            resume[i] = j->tokens[i].id;
    }
    int32_t n_resume = j->n_tokens;
    while (n_resume > 0 && resume[n_resume - 1] < 0) /* a text-only flush item ends a stream */
        n_resume--;
    mj->resume = resume;
    mj->n_resume = n_resume;
    int64_t left = j->deadline_ms - coord_now_ms();
    mj->deadline_ms = left > 1 ? left : 1;
    ig_code rc = ig_net_conn_send(n->link, &m, err);
    free(resume);
    free(msgs);
    return rc;
}

void node_send_cancel(node_conn *n, ig_job *j)
{
    if (!n->link || !ig_net_conn_is_open(n->link))
        return;
    ig_msg m;
    ig_msg_init(&m, IG_MSG_CANCEL);
    m.cancel.job_id = j->id;
    ig_err err;
    ig_err_clear(&err);
    ig_net_conn_send(n->link, &m, &err);
}
