/*
 * job.c — running jobs on a node.
 *
 * Engine jobs: each slot has one worker thread and one ig_ctx. The link thread
 * hands a job over (slot.job, has_job, send_conn) and the worker tokenizes the prompt
 * and runs ig_generate. The worker sends the `tokens` frames itself (the first token
 * at once, later ones coalesced per node.flush_ms: see on_event)
 * (ig_net_conn_send_threadsafe): on plain TCP with nothing waiting, that is one
 * send(2) from the worker, so a token never waits for the link thread to be scheduled
 * — which, on a node whose engine keeps every core busy, took up to several ms per
 * token. When the link is behind (or TLS) the frame queues in the connection and the
 * link thread sends it; the worker then yields once so that a link thread sharing its
 * core gets to run. The worker records the finish and activates slot.wake_ev
 * (event_active is thread-safe with evthread pthreads); the link thread then sends
 * `done` or `job_error`, after every token frame. The link thread stops the output by
 * clearing send_conn under slot.mu (cancel, handback, link lost) before anything else,
 * so no token follows a handback and the connection is never used after it is freed.
 *
 * Synthetic jobs (load tests): no worker; a per-slot timer on the link thread emits
 * one deterministic token per 1/rate seconds.
 */
#include "node_internal.h"

#include <event2/event.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ---- UTF-8 clean-up for alternative tokens' bytes ---- */

/* Copies src into dst (cap ≥ 3*len+1) replacing every byte that does not start a valid
 * UTF-8 sequence with U+FFFD. Returns the bytes written. */
static size_t utf8_sanitize(const char *src, size_t len, char *dst)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0, i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            dst[o++] = (char)c;
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            goto bad;
        }
        if (i + n >= len)
            goto bad;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            goto bad;
        memcpy(dst + o, s + i, n + 1);
        o += n + 1;
        i += n + 1;
        continue;
    bad:
        dst[o++] = (char)0xEF;
        dst[o++] = (char)0xBF;
        dst[o++] = (char)0xBD;
        i++;
    }
    dst[o] = '\0';
    return o;
}

/* ---- the worker ---- */

/* Where a pending token's texts start in the job's text buffer (offsets, since the
 * buffer grows; the token's pointers are set when its frame is sent). */
typedef struct {
    size_t text, top[IG_MAX_TOP_LOGPROBS];
} pend_offsets;

#define PEND_TEXT_MAX (64 * 1024) /* a frame's texts, before JSON escaping (limit 1 MiB) */

typedef struct {
    slot *s;
    int64_t first_ms;
    int64_t deadline_ms; /* absolute, 0 = none */
    int32_t generated;
    bool deadline_hit;
    bool send_failed;    /* a token frame could not be built: the job fails */
    bool link_lost;      /* the link is going: the link thread cancels the job */
    char send_error[600];
    /* tokens not sent yet (coalesced: see flush_pending) */
    ig_net_token *items; /* NODE_FRAME_ITEMS */
    pend_offsets *offs;  /* NODE_FRAME_ITEMS */
    int32_t n_items;
    char *text;
    size_t text_len, text_cap;
    double last_flush_us;
    int32_t frames;      /* tokens frames sent */
} gen_state;

/* Sends the pending tokens as one frame (nothing when the output is stopped). Returns
 * false when the job must end (link going, or a frame we cannot build). */
static bool flush_pending(gen_state *g)
{
    slot *s = g->s;
    if (g->n_items == 0)
        return true;
    for (int32_t i = 0; i < g->n_items; i++) {
        g->items[i].text = g->text + g->offs[i].text;
        for (int32_t k = 0; k < g->items[i].n_top; k++)
            g->items[i].top[k].text = g->text + g->offs[i].top[k];
    }
    ig_msg m;
    ig_msg_init(&m, IG_MSG_TOKENS);
    m.tokens.job_id = s->job_id;
    m.tokens.items = g->items;
    m.tokens.n_items = g->n_items;
    ig_err err;
    ig_err_clear(&err);
    ig_code rc = IG_OK;
    bool written = true;
    pthread_mutex_lock(&s->mu);
    /* `accept` first: the link thread sends it right after starting us, so this waits
     * only if the prefill took less time than that send */
    while (s->accept_pending && s->send_conn && !atomic_load(&s->cancel) && !s->quit)
        pthread_cond_wait(&s->cv, &s->mu);
    if (!atomic_load(&s->cancel) && !s->quit && s->send_conn) {
        m.tokens.index = s->next_index;
        rc = ig_net_conn_send_threadsafe(s->send_conn, &m, &written, &err);
        if (rc == IG_OK) {
            s->next_index += g->n_items;
            g->frames++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    g->n_items = 0;
    g->text_len = 0;
    g->last_flush_us = now_us();
    if (rc == IG_ERR_IO || rc == IG_ERR_BUSY) {
        g->link_lost = true;
        return false;
    }
    if (rc != IG_OK) {
        /* A frame we cannot build is our bug, not the peer's: fail the job. */
        g->send_failed = true;
        snprintf(g->send_error, sizeof g->send_error, "cannot send tokens up to %d: %s",
                 g->generated - 1, err.msg);
        return false;
    }
    if (!written)
        sched_yield(); /* queued for the link thread: let it run if it shares our core */
    return true;
}

/* Room for `need` more bytes of text in the pending buffer. */
static bool pend_reserve(gen_state *g, size_t need)
{
    if (g->text_len + need <= g->text_cap)
        return true;
    size_t cap = g->text_cap ? g->text_cap : 4096;
    while (cap < g->text_len + need)
        cap *= 2;
    char *t = realloc(g->text, cap);
    if (!t)
        return false;
    g->text = t;
    g->text_cap = cap;
    return true;
}

/* Each token joins the pending frame; the frame goes out with the job's first token
 * (time to first token), with the first token produced once the node's flush interval
 * (--flush-ms; 0 sends every token at once) has passed since the previous frame, when
 * it is full, and at the end of the job. A token thus waits at most the interval plus
 * one token's time. On a link where a send is costly (on a VM, one loopback send that
 * wakes the coordinator on another vCPU took ~0.1-1 ms) this bounds the link's share
 * of the engine's time, while the time to first token and the order, indices and
 * bytes of the tokens stay what they were. */
static bool on_event(void *user, const ig_gen_event *ev)
{
    gen_state *g = user;
    slot *s = g->s;
    ig_node *n = s->node;
    const ig_tokenizer *tok = ig_model_tokenizer(n->model);
    int64_t now = ig_net_now_ms();
    if (g->generated == 0)
        g->first_ms = now;
    g->generated++;

    char bytes[256];
    size_t need = 3 * ev->text_len + 1;
    for (int32_t k = 0; k < ev->n_top; k++) {
        size_t nb = ig_token_bytes(tok, ev->top[k].id, bytes, sizeof bytes);
        need += 3 * (nb < sizeof bytes ? nb : sizeof bytes) + 1;
    }
    if (!pend_reserve(g, need)) {
        g->send_failed = true;
        snprintf(g->send_error, sizeof g->send_error, "out of memory for a token of %zu bytes", need);
        return false;
    }
    ig_net_token *t = &g->items[g->n_items];
    pend_offsets *off = &g->offs[g->n_items++];
    memset(t, 0, sizeof *t);
    t->id = ev->token;
    t->logprob = ev->logprob;
    off->text = g->text_len;
    t->text_len = utf8_sanitize(ev->text ? ev->text : "", ev->text ? ev->text_len : 0,
                                g->text + g->text_len);
    g->text_len += t->text_len + 1;
    t->n_top = ev->n_top < IG_MAX_TOP_LOGPROBS ? ev->n_top : IG_MAX_TOP_LOGPROBS;
    for (int32_t k = 0; k < t->n_top; k++) {
        size_t nb = ig_token_bytes(tok, ev->top[k].id, bytes, sizeof bytes);
        if (nb > sizeof bytes)
            nb = sizeof bytes;
        ig_net_top_token *tt = &t->top[k];
        tt->id = ev->top[k].id;
        tt->logprob = ev->top[k].logprob;
        off->top[k] = g->text_len;
        tt->text_len = utf8_sanitize(bytes, nb, g->text + g->text_len);
        g->text_len += tt->text_len + 1;
    }

    const double flush_us = (double)n->flush_ms * 1000.0;
    if (g->generated == 1 || g->n_items == NODE_FRAME_ITEMS || g->text_len >= PEND_TEXT_MAX ||
        now_us() - g->last_flush_us >= flush_us) {
        if (!flush_pending(g))
            return false;
    }
    if (g->deadline_ms && now > g->deadline_ms) {
        g->deadline_hit = true;
        return false;
    }
    return !atomic_load(&s->cancel);
}

static void run_job(slot *s, ig_msg_job *j)
{
    ig_node *n = s->node;
    ig_err err;
    ig_err_clear(&err);
    int64_t t0 = ig_net_now_ms();
    int32_t cap = n->n_ctx;
    int32_t *prompt = malloc(sizeof(int32_t) * (size_t)cap);
    ig_code rc = IG_OK;
    int64_t n_prompt = -1;
    ig_finish finish = IG_FINISH_NONE;
    gen_state g = {.s = s, .deadline_ms = j->deadline_ms > 0 ? t0 + j->deadline_ms : 0};
    g.items = malloc(sizeof *g.items * NODE_FRAME_ITEMS);
    g.offs = malloc(sizeof *g.offs * NODE_FRAME_ITEMS);
    if (!g.items || !g.offs) {
        free(prompt);
        prompt = NULL;
    }
    if (!prompt) {
        rc = ig_err_set(&err, IG_ERR_NOMEM, "out of memory for the prompt and its tokens");
        goto out;
    }
    if (j->kind == IG_JOB_CHAT) {
        n_prompt = ig_chat_tokenize(n->model, j->messages, j->n_messages, true, prompt, cap, &err);
    } else {
        const ig_tokenizer *tok = ig_model_tokenizer(n->model);
        n_prompt = ig_tokenize(tok, j->prompt, j->prompt_len, ig_tokenizer_adds_bos(tok), false,
                               prompt, cap, &err);
    }
    if (n_prompt < 0) {
        rc = err.code ? err.code : IG_ERR_INVALID;
        ig_err_wrap(&err, "tokenizing the prompt");
        goto out;
    }
    if (n_prompt + j->n_resume >= cap) {
        rc = ig_err_set(&err, IG_ERR_RANGE,
                        "prompt of %lld tokens (+%d resumed) does not fit the context of %d",
                        (long long)n_prompt, j->n_resume, cap);
        goto out;
    }
    ig_gen_params p = j->params;
    if (!j->logprobs)
        p.top_logprobs = 0;
    rc = ig_generate(s->ctx, prompt, (int32_t)n_prompt, j->resume, j->n_resume, &p, on_event, &g,
                     &finish, &err);
    /* the tokens still pending go out before the link thread sends `done` */
    if (!g.send_failed && !g.link_lost)
        flush_pending(&g);
    if (rc == IG_OK && g.send_failed)
        rc = ig_err_set(&err, IG_ERR_INTERNAL, "%s", g.send_error);
    if (rc == IG_OK && g.deadline_hit)
        rc = ig_err_set(&err, IG_ERR_TIMEOUT, "deadline of %lld ms passed", (long long)j->deadline_ms);
out:;
    int64_t t1 = ig_net_now_ms();
    free(prompt);
    pthread_mutex_lock(&s->mu);
    s->finished = true;
    s->job_rc = rc;
    snprintf(s->job_error, sizeof s->job_error, "%s", err.msg);
    s->finish = finish;
    s->prompt_tokens = n_prompt > 0 ? (int32_t)n_prompt : 0;
    s->completion_tokens = j->n_resume + g.generated;
    s->prefill_ms = (double)((g.generated ? g.first_ms : t1) - t0);
    s->decode_ms = g.generated ? (double)(t1 - g.first_ms) : 0;
    s->frames = g.frames;
    pthread_mutex_unlock(&s->mu);
    free(g.items);
    free(g.offs);
    free(g.text);
    event_active(s->wake_ev, EV_READ, 0);
}

static void *worker_main(void *arg)
{
    slot *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->has_job && !s->quit)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->quit)
            break;
        s->has_job = false;
        ig_msg_job *j = &s->job.job; /* stays put until finished is seen by the link thread */
        pthread_mutex_unlock(&s->mu);
        run_job(s, j);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- link thread: deliver what the worker produced ---- */

static void finish_job(slot *s, ig_code rc, const char *error, ig_finish finish, int32_t prompt_tokens,
                       int32_t completion_tokens, double prefill_ms, double decode_ms, int32_t frames)
{
    bool wanted = node_slot_can_send(s);
    json_t *f = json_object();
    json_object_set_new(f, "job_id", json_string(s->job_id));
    json_object_set_new(f, "node", json_string(s->link->name));
    json_object_set_new(f, "slot", json_integer(s->index));
    if (!wanted) {
        json_object_set_new(f, "outcome", json_string("dropped"));
    } else if (rc == IG_OK && finish != IG_FINISH_CANCELLED && finish != IG_FINISH_NONE) {
        ig_msg m;
        ig_msg_init(&m, IG_MSG_DONE);
        m.done.job_id = s->job_id;
        m.done.finish = finish;
        m.done.prompt_tokens = prompt_tokens;
        m.done.completion_tokens = completion_tokens;
        m.done.prefill_ms = prefill_ms;
        m.done.decode_ms = decode_ms;
        node_slot_send(s, &m);
        json_object_set_new(f, "outcome", json_string(ig_finish_name(finish)));
    } else {
        ig_msg m;
        ig_msg_init(&m, IG_MSG_JOB_ERROR);
        m.job_error.job_id = s->job_id;
        m.job_error.reason = rc != IG_OK ? error : "generation ended without a finish reason";
        node_slot_send(s, &m);
        json_object_set_new(f, "outcome", json_string("error"));
        json_t *e = json_string(m.job_error.reason);
        json_object_set_new(f, "error", e ? e : json_string("?"));
    }
    json_object_set_new(f, "prompt_tokens", json_integer(prompt_tokens));
    json_object_set_new(f, "completion_tokens", json_integer(completion_tokens));
    json_object_set_new(f, "prefill_ms", json_real(prefill_ms));
    json_object_set_new(f, "decode_ms", json_real(decode_ms));
    if (frames >= 0)
        json_object_set_new(f, "token_frames", json_integer(frames));
    ig_net_log(s->node->cfg.synthetic ? IG_LOG_DEBUG : IG_LOG_INFO, "job_end", f);
    s->busy = false;
    s->discard = false;
    node_slot_freed(s);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slot *s = arg;
    if (!s->busy)
        return;
    pthread_mutex_lock(&s->mu);
    bool finished = s->finished;
    ig_code rc = s->job_rc;
    char error[512];
    snprintf(error, sizeof error, "%s", s->job_error);
    ig_finish finish = s->finish;
    int32_t pt = s->prompt_tokens, ct = s->completion_tokens;
    double pre = s->prefill_ms, dec = s->decode_ms;
    int32_t frames = s->frames;
    if (finished) {
        s->finished = false;
        s->send_conn = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (finished) {
        finish_job(s, rc, error, finish, pt, ct, pre, dec, frames);
        pthread_mutex_lock(&s->mu);
        ig_msg_deinit(&s->job);
        pthread_mutex_unlock(&s->mu);
    }
}

/* ---- synthetic jobs ---- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static const char *const WORDS[] = {" the", " grid", " car", " idle", " token", " night",
                                    " charge", " road", " quiet", " light", " and", " of"};

/* Emits every token due by now: (elapsed time × rate) since the job started, so the
 * rate holds even when ticks run late (a loaded machine), in one frame per tick. */
static void synth_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slot *s = arg;
    if (!s->busy)
        return;
    double rate = s->node->cfg.rate > 0 ? s->node->cfg.rate : 50;
    double elapsed_us = now_us() - s->synth_start_us;
    int64_t due = s->job.job.n_resume + (int64_t)(elapsed_us * rate / 1e6);
    if (due > s->synth_max)
        due = s->synth_max;
    if (due > s->synth_pos && node_slot_can_send(s)) {
        ig_net_token items[NODE_FRAME_ITEMS];
        int k = 0;
        while (s->synth_pos + k < due && k < NODE_FRAME_ITEMS) {
            uint64_t h = mix64(s->synth_seed ^ mix64((uint64_t)(s->synth_pos + k)));
            ig_net_token *t = &items[k++];
            t->id = (int32_t)(h % 1000) + 3;
            const char *w = WORDS[(h >> 20) % (sizeof WORDS / sizeof WORDS[0])];
            t->text = w;
            t->text_len = strlen(w);
            t->logprob = -(float)((h >> 40) % 1000) / 500.0f;
            t->n_top = 0;
        }
        ig_msg m;
        ig_msg_init(&m, IG_MSG_TOKENS);
        m.tokens.job_id = s->job_id;
        m.tokens.index = s->synth_pos;
        m.tokens.items = items;
        m.tokens.n_items = k;
        node_slot_send(s, &m);
        s->synth_pos += k;
        s->next_index = s->synth_pos;
    }
    if (s->synth_pos >= s->synth_max || !node_slot_can_send(s)) {
        event_del(s->synth_ev);
        double elapsed = (double)(ig_net_now_ms() - s->started_ms);
        finish_job(s, IG_OK, "", IG_FINISH_LENGTH, s->synth_prompt_tokens, s->synth_max, 0, elapsed, -1);
        ig_msg_deinit(&s->job);
    }
}

/* ---- slots ---- */

ig_code node_slot_init(ig_node *n, node_link *l, slot *s, int index, ig_err *err)
{
    memset(s, 0, sizeof *s);
    s->node = n;
    s->link = l;
    s->index = index;
    atomic_init(&s->cancel, false);
    if (n->cfg.synthetic) {
        s->synth_ev = event_new(n->base, -1, EV_PERSIST, synth_tick, s);
        if (!s->synth_ev)
            return ig_err_set(err, IG_ERR_NOMEM, "out of memory (timer)");
        return IG_OK;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->wake_ev = event_new(n->base, -1, 0, wake_cb, s);
    if (!s->wake_ev)
        return ig_err_set(err, IG_ERR_NOMEM, "out of memory (slot %d)", index);
    ig_ctx_params cp = ig_ctx_default_params();
    cp.n_ctx = n->n_ctx;
    cp.n_threads = n->threads;
    s->ctx = ig_ctx_new(n->model, &cp, err);
    if (!s->ctx)
        return ig_err_wrap(err, "slot %d context", index);
    if (pthread_create(&s->thread, NULL, worker_main, s) != 0)
        return ig_err_set(err, IG_ERR_INTERNAL, "cannot start the worker of slot %d", index);
    s->thread_started = true;
    return IG_OK;
}

void node_slot_deinit(slot *s)
{
    if (s->node && s->node->cfg.synthetic) {
        if (s->synth_ev)
            event_free(s->synth_ev);
        ig_msg_deinit(&s->job);
        return;
    }
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->quit = true;
        atomic_store(&s->cancel, true);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    if (s->wake_ev)
        event_free(s->wake_ev);
    ig_ctx_free(s->ctx);
    ig_msg_deinit(&s->job);
    if (s->node) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
    }
}

void node_job_start(slot *s, ig_msg *job)
{
    ig_node *n = s->node;
    s->busy = true;
    s->discard = false;
    s->epoch = s->link->epoch;
    s->next_index = job->job.n_resume;
    s->started_ms = ig_net_now_ms();
    snprintf(s->job_id, sizeof s->job_id, "%s", job->job.job_id);
    if (n->cfg.synthetic) {
        s->job = *job;
        memset(job, 0, sizeof *job);
        s->synth_pos = s->job.job.n_resume;
        s->synth_max = s->job.job.params.max_tokens;
        s->synth_seed = s->job.job.params.sampler.seed;
        s->synth_start_us = now_us();
        size_t chars = s->job.job.prompt_len;
        for (int32_t i = 0; i < s->job.job.n_messages; i++)
            chars += strlen(s->job.job.messages[i].content) + 8;
        s->synth_prompt_tokens = (int32_t)(chars / 4 + 1);
        double rate = n->cfg.rate > 0 ? n->cfg.rate : 50;
        int64_t us = (int64_t)(1e6 / rate);
        if (us < 1)
            us = 1;
        struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
        event_add(s->synth_ev, &tv);
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->job = *job;
    memset(job, 0, sizeof *job);
    s->has_job = true;
    s->finished = false;
    s->send_conn = node_slot_can_send(s) ? s->link->conn : NULL;
    s->accept_pending = true;
    atomic_store(&s->cancel, false);
    pthread_mutex_unlock(&s->mu);
    /* after unlocking: a worker woken on this core would otherwise run only to wait
     * for the lock we still hold */
    pthread_cond_broadcast(&s->cv);
}

void node_job_accepted(slot *s)
{
    if (s->node->cfg.synthetic)
        return;
    pthread_mutex_lock(&s->mu);
    s->accept_pending = false;
    pthread_mutex_unlock(&s->mu);
    pthread_cond_broadcast(&s->cv);
}

int64_t node_job_stop_output(slot *s)
{
    if (s->node->cfg.synthetic)
        return s->next_index;
    pthread_mutex_lock(&s->mu);
    s->send_conn = NULL;
    int64_t sent = s->next_index;
    pthread_mutex_unlock(&s->mu);
    pthread_cond_broadcast(&s->cv); /* a worker waiting for `accept` sends nothing now */
    return sent;
}

void node_job_cancel(slot *s)
{
    if (!s->busy)
        return;
    s->discard = true;
    if (s->node->cfg.synthetic) {
        /* the next tick sees discard and ends the job without sending */
        event_active(s->synth_ev, EV_TIMEOUT, 0);
        return;
    }
    atomic_store(&s->cancel, true);
    pthread_mutex_lock(&s->mu);
    s->send_conn = NULL;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- start-up speed measurement ---- */

typedef struct {
    double first_us, last_us;
    int32_t n;
} speed_state;

static bool speed_event(void *user, const ig_gen_event *ev)
{
    (void)ev;
    speed_state *st = user;
    double now = now_us();
    if (st->n == 0)
        st->first_us = now;
    st->last_us = now;
    st->n++;
    return true;
}

double node_measure_speed(ig_node *n, ig_err *err)
{
    slot *s = &n->links[0].slots[0];
    const ig_tokenizer *tok = ig_model_tokenizer(n->model);
    int32_t prompt[64];
    const char *text = "The quick brown fox jumps over the lazy dog.";
    int64_t np = ig_tokenize(tok, text, strlen(text), ig_tokenizer_adds_bos(tok), false, prompt, 64, err);
    if (np < 1 || np > 64) {
        prompt[0] = ig_tokenizer_bos(tok) >= 0 ? ig_tokenizer_bos(tok) : 0;
        np = 1;
    }
    ig_gen_params p = ig_gen_default_params();
    p.max_tokens = n->cfg.measure_tokens > 0 ? n->cfg.measure_tokens : 16;
    if (p.max_tokens + np >= n->n_ctx)
        p.max_tokens = (int32_t)(n->n_ctx - np - 1);
    if (p.max_tokens < 2)
        p.max_tokens = 2;
    p.sampler.temperature = 0;
    p.ignore_eos = true;
    speed_state st = {0, 0, 0};
    ig_finish finish;
    double t0 = now_us();
    if (ig_generate(s->ctx, prompt, (int32_t)np, NULL, 0, &p, speed_event, &st, &finish, err) != IG_OK)
        return -1;
    /* Decode speed: tokens after the first over the time they took (prefill excluded). */
    if (st.n >= 2 && st.last_us > st.first_us)
        return (double)(st.n - 1) * 1e6 / (st.last_us - st.first_us);
    double total = now_us() - t0;
    return total > 0 ? (double)st.n * 1e6 / total : 0;
}
