/*
 * testpeer.c — a deterministic node for the coordinator's integration tests: speaks
 * the real node link (net.h: hello, challenge/auth, enrolment, job, tokens, done,
 * cancel) but produces tokens from a hash instead of a model, at a fixed rate.
 *
 * Token i of a job is a pure function of (prompt, seed, temperature, i), exactly the
 * property the engine's sampler has, so a job resumed on another peer continues with
 * the tokens an undisturbed run would have produced. That lets the tests check the
 * coordinator's failover and fairness independently of the engine.
 *
 *   ig_testpeer --coordinator HOST:PORT --model ID [--class edge|cloud] --data DIR
 *               [--enroll-token T] [--name N] [--rate TOK_PER_S] [--slots N] [--tls 1]
 */
#include "net.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JOBS 64

typedef struct peer peer;
typedef struct {
    peer *p;
    bool used;
    char id[IG_NET_MAX_ID];
    uint64_t base_hash;
    int32_t index, max_tokens, top;
    bool logprobs;
    int32_t prompt_tokens;
    struct event *ev;
} pjob;

struct peer {
    struct event_base *base;
    ig_net_conn *conn;
    ig_net_keypair kp;
    const char *model, *cls, *token, *name;
    double rate;
    int slots;
    pjob jobs[MAX_JOBS];
};

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t hash_str(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = mix(h ^ (unsigned char)s[i]);
    return h;
}

static void send_msg(peer *p, ig_msg *m)
{
    ig_err err;
    ig_err_clear(&err);
    if (ig_net_conn_send(p->conn, m, &err) != IG_OK)
        fprintf(stderr, "testpeer: send: %s\n", err.msg);
}

static void job_end(pjob *j)
{
    if (j->ev)
        event_free(j->ev);
    j->ev = NULL;
    j->used = false;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pjob *j = arg;
    peer *p = j->p;
    if (j->index >= j->max_tokens) {
        ig_msg m;
        ig_msg_init(&m, IG_MSG_DONE);
        m.done.job_id = j->id;
        m.done.finish = IG_FINISH_LENGTH;
        m.done.prompt_tokens = j->prompt_tokens;
        m.done.completion_tokens = j->max_tokens;
        send_msg(p, &m);
        job_end(j);
        return;
    }
    uint64_t h = mix(j->base_hash ^ mix((uint64_t)j->index));
    ig_net_token t;
    memset(&t, 0, sizeof t);
    t.id = (int32_t)(100 + h % 900);
    char text[32], tops[IG_MAX_TOP_LOGPROBS][32];
    snprintf(text, sizeof text, " t%d", t.id);
    t.text = text;
    t.text_len = strlen(text);
    t.logprob = -(float)(h % 50) / 10.0f;
    if (j->logprobs) {
        t.n_top = j->top;
        for (int k = 0; k < j->top; k++) {
            t.top[k].id = t.id + k;
            snprintf(tops[k], sizeof tops[k], " t%d", t.id + k);
            t.top[k].text = tops[k];
            t.top[k].text_len = strlen(tops[k]);
            t.top[k].logprob = t.logprob - (float)k;
        }
    }
    ig_msg m;
    ig_msg_init(&m, IG_MSG_TOKENS);
    m.tokens.job_id = j->id;
    m.tokens.index = j->index;
    m.tokens.items = &t;
    m.tokens.n_items = 1;
    send_msg(p, &m);
    j->index++;
}

static void on_job(peer *p, const ig_msg_job *mj)
{
    int active = 0;
    pjob *slot = NULL;
    for (int i = 0; i < MAX_JOBS; i++) {
        if (p->jobs[i].used)
            active++;
        else if (!slot)
            slot = &p->jobs[i];
    }
    if (active >= p->slots || !slot) {
        ig_msg m;
        ig_msg_init(&m, IG_MSG_REJECT);
        m.reject.job_id = mj->job_id;
        m.reject.reason = "no free slot";
        send_msg(p, &m);
        return;
    }
    memset(slot, 0, sizeof *slot);
    slot->p = p;
    slot->used = true;
    snprintf(slot->id, sizeof slot->id, "%s", mj->job_id);
    uint64_t h = hash_str(7, mj->model, strlen(mj->model));
    size_t plen = 0;
    if (mj->kind == IG_JOB_COMPLETION) {
        h = hash_str(h, mj->prompt, mj->prompt_len);
        plen = mj->prompt_len;
    } else {
        for (int32_t i = 0; i < mj->n_messages; i++) {
            h = hash_str(h, mj->messages[i].role, strlen(mj->messages[i].role));
            h = hash_str(h, mj->messages[i].content, strlen(mj->messages[i].content));
            plen += strlen(mj->messages[i].content) + 8;
        }
    }
    /* greedy ignores the seed, as the engine's argmax does */
    if (mj->params.sampler.temperature > 0)
        h = mix(h ^ mj->params.sampler.seed ^ (uint64_t)(mj->params.sampler.temperature * 1000));
    slot->base_hash = h;
    slot->index = mj->n_resume;
    slot->max_tokens = mj->params.max_tokens;
    slot->logprobs = mj->logprobs;
    slot->top = mj->params.top_logprobs;
    slot->prompt_tokens = (int32_t)(plen / 4 + 1);
    ig_msg m;
    ig_msg_init(&m, IG_MSG_ACCEPT);
    m.accept.job_id = mj->job_id;
    send_msg(p, &m);
    slot->ev = event_new(p->base, -1, EV_PERSIST, tick, slot);
    long us = (long)(1e6 / (p->rate > 0 ? p->rate : 100));
    struct timeval tv = {us / 1000000, us % 1000000};
    event_add(slot->ev, &tv);
}

static void on_open(ig_net_conn *c, void *user)
{
    (void)c;
    peer *p = user;
    ig_msg m;
    ig_msg_init(&m, IG_MSG_HELLO);
    m.hello.version = IG_NET_PROTOCOL_VERSION;
    memcpy(m.hello.node_key, p->kp.pk, sizeof p->kp.pk);
    m.hello.enroll_token = p->token;
    m.hello.models[0].id = p->model;
    m.hello.models[0].cls = strcmp(p->cls, "cloud") == 0 ? IG_NODE_CLASS_CLOUD : IG_NODE_CLASS_EDGE;
    m.hello.models[0].n_ctx = 2048;
    m.hello.models[0].chat_family = "plain";
    m.hello.n_models = 1;
    m.hello.slots = p->slots;
    m.hello.tokens_per_second = p->rate;
    m.hello.threads = 1;
    m.hello.name = p->name;
    send_msg(p, &m);
}

static void on_msg(ig_net_conn *c, ig_msg *m, void *user)
{
    (void)c;
    peer *p = user;
    switch (m->type) {
    case IG_MSG_CHALLENGE: {
        ig_msg a;
        ig_msg_init(&a, IG_MSG_AUTH);
        ig_net_auth_sign(&p->kp, m->challenge.nonce, a.auth.signature);
        send_msg(p, &a);
        break;
    }
    case IG_MSG_WELCOME:
        fprintf(stderr, "testpeer %s: welcome as %s\n", p->name, m->welcome.node_id);
        ig_net_conn_set_heartbeat(p->conn, m->welcome.heartbeat_ms);
        break;
    case IG_MSG_JOB:
        on_job(p, &m->job);
        break;
    case IG_MSG_CANCEL:
        for (int i = 0; i < MAX_JOBS; i++)
            if (p->jobs[i].used && strcmp(p->jobs[i].id, m->cancel.job_id) == 0)
                job_end(&p->jobs[i]);
        break;
    default:
        break;
    }
    ig_msg_deinit(m);
}

static void quit_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopexit(((peer *)arg)->base, NULL);
}

/* SIGTERM: leave gracefully, handing every running job back with its progress (as
 * a node does when its owner's rules end its window), then quit once sent. */
static void on_sigterm(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    peer *p = arg;
    for (int i = 0; i < MAX_JOBS; i++) {
        if (!p->jobs[i].used)
            continue;
        ig_msg m;
        ig_msg_init(&m, IG_MSG_HANDBACK);
        m.handback.job_id = p->jobs[i].id;
        m.handback.reason = "node stopping";
        send_msg(p, &m);
        job_end(&p->jobs[i]);
    }
    struct timeval tv = {0, 200 * 1000};
    event_base_once(p->base, -1, EV_TIMEOUT, quit_cb, p, &tv);
}

static void on_close(ig_net_conn *c, const ig_err *reason, void *user)
{
    (void)c;
    peer *p = user;
    fprintf(stderr, "testpeer %s: link closed: %s\n", p->name, reason->msg);
    event_base_loopexit(p->base, NULL);
}

int main(int argc, char **argv)
{
    peer p;
    memset(&p, 0, sizeof p);
    const char *coord = NULL, *data = NULL;
    bool tls = false;
    p.model = "edge";
    p.cls = "edge";
    p.name = "testpeer";
    p.rate = 100;
    p.slots = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--coordinator")) coord = v;
        else if (!strcmp(k, "--model")) p.model = v;
        else if (!strcmp(k, "--class")) p.cls = v;
        else if (!strcmp(k, "--data")) data = v;
        else if (!strcmp(k, "--enroll-token")) p.token = v;
        else if (!strcmp(k, "--name")) p.name = v;
        else if (!strcmp(k, "--rate")) p.rate = atof(v);
        else if (!strcmp(k, "--slots")) p.slots = atoi(v);
        else if (!strcmp(k, "--tls")) tls = strcmp(v, "1") == 0; /* TLS without certificate checks */
        else {
            fprintf(stderr, "testpeer: unknown option %s\n", k);
            return 2;
        }
    }
    if (!coord || !data || p.slots < 1 || p.slots > MAX_JOBS) {
        fprintf(stderr, "usage: ig_testpeer --coordinator HOST:PORT --data DIR [options]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    ig_err err;
    ig_err_clear(&err);
    bool created;
    if (ig_net_keypair_load_or_create(data, &p.kp, &created, &err) != IG_OK) {
        fprintf(stderr, "testpeer: %s\n", err.msg);
        return 1;
    }
    char host[256];
    int port;
    if (ig_net_parse_host_port(coord, host, sizeof host, &port, false, &err) != IG_OK) {
        fprintf(stderr, "testpeer: %s\n", err.msg);
        return 2;
    }
    p.base = event_base_new();
    static const ig_net_callbacks cb = {.on_open = on_open, .on_msg = on_msg, .on_close = on_close};
    ig_net_conn_opts opts = {.label = "coordinator"};
    if (tls) {
        opts.tls = ig_net_tls_client_ctx(NULL, false, &err);
        if (!opts.tls) {
            fprintf(stderr, "testpeer: %s\n", err.msg);
            return 1;
        }
    }
    p.conn = ig_net_conn_dial(p.base, host, port, &opts, &cb, &p, &err);
    if (!p.conn) {
        fprintf(stderr, "testpeer: %s\n", err.msg);
        return 1;
    }
    struct event *term = evsignal_new(p.base, SIGTERM, on_sigterm, &p);
    event_add(term, NULL);
    event_base_dispatch(p.base);
    event_free(term);
    for (int i = 0; i < MAX_JOBS; i++)
        if (p.jobs[i].used)
            job_end(&p.jobs[i]);
    ig_net_conn_free(p.conn);
    event_base_free(p.base);
    if (opts.tls)
        ig_net_tls_free(opts.tls);
    return 0;
}
