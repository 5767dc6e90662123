/*
 * test_node_link.c — the node agent as a real process (`idlegrid node`) against a
 * small test peer built on net.h: a real TCP listener in this binary that plays the
 * coordinator's side of the link (no coordinator logic). Proves: the handshake
 * (hello fields, a signature that verifies over our nonce), enrolment token on the
 * first start then key-only reconnects (also across restarts), reconnection with
 * growing, capped backoff after the peer closes, malformed frames from the peer
 * (logged, link closed, node reconnects), synthetic jobs (accept, indexed tokens,
 * done, reject, cancel), many simulated nodes from one process, and SIGTERM handing
 * running jobs back. With a real model: the node's stream equals the engine's own
 * generation, and a job resumed from k tokens continues exactly where it left off.
 */
#include "net.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QMAX 4096

typedef struct {
    ig_msg msg;
    int conn_no; /* which accepted connection it came on (1-based) */
} queued;

typedef struct {
    struct event_base *base;
    ig_net_listener *listener;
    int port;
    ig_net_conn *cur;
    int n_accepts;
    int64_t accept_ms[256];
    int n_closes;
    ig_err last_close;
    queued q[QMAX];
    int qh, qt;
    int n_pings_with_load;
    ig_msg last_ping;
    char dir[64];
    char log_path[128];
    pid_t pid;
    bool keep_all;          /* keep every accepted connection (many simulated nodes) */
    ig_net_conn *all[128];
    int n_all;
    struct event *ticker;
    struct ssl_ctx_st *tls;  /* serve the link over TLS */
} peer;

static void on_msg(ig_net_conn *c, ig_msg *m, void *user)
{
    peer *p = user;
    (void)c;
    if (m->type == IG_MSG_PING || m->type == IG_MSG_PONG) {
        if (m->type == IG_MSG_PING && m->ping.has_load) {
            p->n_pings_with_load++;
            p->last_ping = *m;
            p->last_ping.root = NULL;
        }
        ig_msg_deinit(m);
        return;
    }
    if ((p->qt + 1) % QMAX == p->qh)
        fail_msg("test peer queue full");
    p->q[p->qt].msg = *m;
    p->q[p->qt].conn_no = p->n_accepts;
    p->qt = (p->qt + 1) % QMAX;
}

static void on_close(ig_net_conn *c, const ig_err *reason, void *user)
{
    peer *p = user;
    p->n_closes++;
    p->last_close = *reason;
    if (p->cur == c)
        p->cur = NULL;
    for (int i = 0; i < p->n_all; i++)
        if (p->all[i] == c)
            p->all[i] = NULL;
    ig_net_conn_free(c);
}

static const ig_net_callbacks PEER_CB = {NULL, on_msg, on_close, NULL};

static void on_accept(int fd, const char *peer_name, void *user)
{
    (void)peer_name;
    peer *p = user;
    if (p->cur && !p->keep_all)
        ig_net_conn_free(p->cur);
    ig_err err;
    ig_net_conn_opts opts = {0};
    opts.tls = p->tls;
    p->cur = ig_net_conn_accept(p->base, fd, &opts, &PEER_CB, p, &err);
    if (p->keep_all && p->n_all < 128)
        p->all[p->n_all++] = p->cur;
    if (p->n_accepts < 256)
        p->accept_ms[p->n_accepts] = ig_net_now_ms();
    p->n_accepts++;
}

/* Runs the loop until cond holds; EVLOOP_ONCE returns right after the events that
 * arrived (so timings are not rounded up), and a 2 ms ticker bounds each wait. */
#define PUMP_UNTIL(p, cond, ms)                                                                \
    do {                                                                                       \
        int64_t until_ = ig_net_now_ms() + (ms);                                               \
        while (!(cond) && ig_net_now_ms() < until_)                                            \
            event_base_loop((p)->base, EVLOOP_ONCE);                                           \
        if (!(cond))                                                                           \
            fail_msg("timed out after %d ms waiting for %s", (int)(ms), #cond);                \
    } while (0)

/* The next queued message (pings/pongs are consumed by on_msg), waiting up to ms. */
static ig_msg next_msg(peer *p, int ms, int *conn_no)
{
    PUMP_UNTIL(p, p->qh != p->qt, ms);
    queued q = p->q[p->qh];
    p->qh = (p->qh + 1) % QMAX;
    if (conn_no)
        *conn_no = q.conn_no;
    return q.msg;
}

static ig_msg expect_msg(peer *p, ig_msg_type type, int ms)
{
    ig_msg m = next_msg(p, ms, NULL);
    if (m.type != type)
        fail_msg("expected %s, got %s", ig_msg_type_name(type), ig_msg_type_name(m.type));
    return m;
}

static void send_msg(peer *p, const ig_msg *m)
{
    ig_err err;
    assert_non_null(p->cur);
    if (ig_net_conn_send(p->cur, m, &err) != IG_OK)
        fail_msg("send %s: %s", ig_msg_type_name(m->type), err.msg);
}

/* ---- the node process ---- */

static const char *bin_path(void)
{
    static char path[1024];
    const char *b = getenv("IG_BUILD");
    snprintf(path, sizeof path, "%s/idlegrid", b ? b : "build");
    return path;
}

static void spawn_node(peer *p, const char *const *extra)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", p->port);
    const char *argv[64];
    int n = 0;
    argv[n++] = bin_path();
    argv[n++] = "node";
    argv[n++] = "--coordinator";
    argv[n++] = addr;
    argv[n++] = "--data";
    argv[n++] = p->dir;
    argv[n++] = "--reconnect-min-ms";
    argv[n++] = "100";
    argv[n++] = "--reconnect-max-ms";
    argv[n++] = "400";
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 2);
        close(fd);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
}

static int stop_node(peer *p, int sig)
{
    if (p->pid <= 0)
        return -1;
    if (sig)
        kill(p->pid, sig);
    int status = 0;
    /* keep serving the link while the node says goodbye */
    int64_t until = ig_net_now_ms() + 5000;
    pid_t r = 0;
    while ((r = waitpid(p->pid, &status, WNOHANG)) == 0 && ig_net_now_ms() < until)
        event_base_loop(p->base, EVLOOP_ONCE);
    if (r == 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
        p->pid = -1;
        fail_msg("node did not exit within 5 s of signal %d", sig);
    }
    p->pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *read_log(peer *p)
{
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int setup(void **state)
{
    peer *p = calloc(1, sizeof *p);
    p->base = event_base_new();
    ig_err err;
    p->listener = ig_net_listener_new(p->base, "127.0.0.1:0", on_accept, p, &err);
    assert_non_null(p->listener);
    p->port = ig_net_listener_port(p->listener);
    p->ticker = event_new(p->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tick = {0, 2000};
    event_add(p->ticker, &tick);
    snprintf(p->dir, sizeof p->dir, "/tmp/ig-node-test-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->log_path, sizeof p->log_path, "%s.log", p->dir);
    p->pid = -1;
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    peer *p = *state;
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    while (p->qh != p->qt) {
        ig_msg_deinit(&p->q[p->qh].msg);
        p->qh = (p->qh + 1) % QMAX;
    }
    if (p->keep_all) {
        for (int i = 0; i < p->n_all; i++)
            ig_net_conn_free(p->all[i]);
    } else if (p->cur) {
        ig_net_conn_free(p->cur);
    }
    ig_net_listener_free(p->listener);
    event_free(p->ticker);
    event_base_free(p->base);
    if (p->tls)
        ig_net_tls_free(p->tls);
    char cmd[256];
    if (getenv("IG_KEEP_LOGS"))
        fprintf(stderr, "node log: %s\n", p->log_path);
    else {
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", p->dir, p->log_path);
        if (system(cmd) != 0)
            fprintf(stderr, "cleanup failed\n");
    }
    free(p);
    return 0;
}

/* Plays the coordinator's side of the handshake; returns the hello (caller deinits). */
static ig_msg handshake(peer *p, const char *node_id, int heartbeat_ms)
{
    ig_msg hello = expect_msg(p, IG_MSG_HELLO, 15000);
    assert_int_equal(hello.hello.version, IG_NET_PROTOCOL_VERSION);
    ig_msg ch;
    ig_msg_init(&ch, IG_MSG_CHALLENGE);
    ig_net_random_nonce(ch.challenge.nonce);
    send_msg(p, &ch);
    ig_msg auth = expect_msg(p, IG_MSG_AUTH, 5000);
    assert_true(ig_net_auth_verify(hello.hello.node_key, ch.challenge.nonce, auth.auth.signature));
    /* the same signature does not verify for another nonce */
    uint8_t other[IG_NET_NONCE_BYTES];
    ig_net_random_nonce(other);
    assert_false(ig_net_auth_verify(hello.hello.node_key, other, auth.auth.signature));
    ig_msg_deinit(&auth);
    ig_msg w;
    ig_msg_init(&w, IG_MSG_WELCOME);
    w.welcome.node_id = node_id;
    w.welcome.heartbeat_ms = heartbeat_ms;
    send_msg(p, &w);
    return hello;
}

static void test_first_start_enrols_with_token_then_reconnects_with_key_alone(void **state)
{
    peer *p = *state;
    const char *args[] = {"--synthetic", "--slots", "2", "--enroll-token", "tok-first", "--name", "car-1", NULL};
    spawn_node(p, args);
    ig_msg hello = handshake(p, "node-1", 100);
    assert_non_null(hello.hello.enroll_token);
    assert_string_equal(hello.hello.enroll_token, "tok-first");
    assert_string_equal(hello.hello.name, "car-1");
    assert_int_equal(hello.hello.slots, 2);
    assert_int_equal(hello.hello.n_models, 1);
    assert_string_equal(hello.hello.models[0].id, "edge");
    assert_true(hello.hello.tokens_per_second > 0);
    uint8_t key[IG_NET_KEY_BYTES];
    memcpy(key, hello.hello.node_key, sizeof key);
    ig_msg_deinit(&hello);

    /* heartbeats carry the load */
    PUMP_UNTIL(p, p->n_pings_with_load >= 2, 2000);
    assert_int_equal(p->last_ping.ping.active, 0);
    assert_int_equal(p->last_ping.ping.free_slots, 2);

    /* the key file is private */
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/node.key", p->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* drop the link: the node comes back with its key alone */
    int64_t closed_at = ig_net_now_ms();
    ig_net_conn_close(p->cur, IG_OK, "test drops the link");
    hello = handshake(p, "node-1", 100);
    int64_t back_after = p->accept_ms[1] - closed_at;
    assert_null(hello.hello.enroll_token);
    assert_memory_equal(hello.hello.node_key, key, sizeof key);
    assert_true(back_after >= 70); /* backoff: 100 ms ± 25 % */
    ig_msg_deinit(&hello);

    /* and after a restart too: the enrolment was recorded in --data */
    assert_int_equal(stop_node(p, SIGTERM), 0);
    spawn_node(p, args);
    hello = handshake(p, "node-1", 100);
    assert_null(hello.hello.enroll_token);
    assert_memory_equal(hello.hello.node_key, key, sizeof key);
    ig_msg_deinit(&hello);
    assert_int_equal(stop_node(p, SIGTERM), 0);

    /* a new key (the old one deleted) is a new identity: it enrols again */
    assert_int_equal(unlink(path), 0);
    spawn_node(p, args);
    hello = handshake(p, "node-2", 100);
    assert_non_null(hello.hello.enroll_token);
    assert_memory_not_equal(hello.hello.node_key, key, sizeof key);
    ig_msg_deinit(&hello);
    assert_int_equal(stop_node(p, SIGTERM), 0);
}

static void test_reconnects_with_growing_capped_backoff_after_peer_closes(void **state)
{
    peer *p = *state;
    const char *args[] = {"--synthetic", NULL};
    spawn_node(p, args);
    int64_t closed_at[8];
    for (int i = 0; i < 6; i++) {
        ig_msg hello = expect_msg(p, IG_MSG_HELLO, 5000);
        ig_msg_deinit(&hello);
        closed_at[i] = ig_net_now_ms();
        ig_net_conn_close(p->cur, IG_OK, "test closes before the challenge");
    }
    PUMP_UNTIL(p, p->n_accepts >= 7, 5000);
    /* delays: ~100, ~200, ~400, then capped at 400 (jitter ±25 %, cap applies after) */
    int64_t d[6];
    for (int i = 0; i < 6; i++)
        d[i] = p->accept_ms[i + 1] - closed_at[i];
    print_message("reconnect delays: %lld %lld %lld %lld %lld %lld ms\n", (long long)d[0],
                  (long long)d[1], (long long)d[2], (long long)d[3], (long long)d[4], (long long)d[5]);
    /* Timers never fire early, so the lower bounds are exact; a loaded machine can
     * only delay them, so upper bounds are loose, and the cap is shown by the
     * quickest of the last three (uncapped they would all be >= 600 ms). */
    assert_true(d[0] >= 70 && d[0] <= 600);
    assert_true(d[1] >= 145);
    assert_true(d[2] >= 295);
    int64_t quickest = d[3];
    for (int i = 3; i < 6; i++) {
        assert_true(d[i] >= 295 && d[i] <= 1500);
        if (d[i] < quickest)
            quickest = d[i];
    }
    assert_true(quickest <= 480);
    assert_true(d[2] > d[0]);
    assert_int_equal(stop_node(p, SIGTERM), 0);
}

/* Frames a payload as is (no validation), for deliberately bad frames. */
static size_t raw(const char *payload, char *out)
{
    size_t n = strlen(payload);
    out[0] = (char)(n >> 24);
    out[1] = (char)(n >> 16);
    out[2] = (char)(n >> 8);
    out[3] = (char)n;
    memcpy(out + 4, payload, n);
    return n + 4;
}

/* Sends bytes on the current link; the node must send an error naming the problem,
 * close, log it, and reconnect. */
static void expect_node_rejects(peer *p, const void *bytes, size_t n, const char *reason)
{
    int accepts = p->n_accepts;
    ig_err err;
    assert_int_equal(ig_net_conn_send_raw(p->cur, bytes, n, &err), IG_OK);
    ig_msg e = expect_msg(p, IG_MSG_ERROR, 5000);
    if (!strstr(e.error.message, reason))
        fail_msg("node's error '%s' does not mention '%s'", e.error.message, reason);
    ig_msg_deinit(&e);
    PUMP_UNTIL(p, p->n_accepts > accepts, 5000);
    ig_msg hello = handshake(p, "node-1", 1000);
    ig_msg_deinit(&hello);
    char *log = read_log(p);
    bool logged = strstr(log, "\"event\":\"link_closed\"") && strstr(log, reason);
    free(log);
    if (!logged)
        fail_msg("node log has no link_closed line with '%s'", reason);
}

static void test_malformed_frames_from_peer_are_logged_closed_and_node_reconnects(void **state)
{
    peer *p = *state;
    const char *args[] = {"--synthetic", NULL};
    spawn_node(p, args);
    ig_msg hello = handshake(p, "node-1", 1000);
    ig_msg_deinit(&hello);
    char buf[256];
    size_t n = raw("{\"type\":", buf);
    expect_node_rejects(p, buf, n, "not valid JSON");
    expect_node_rejects(p, "\x7f\xff\xff\xff", 4, "exceeds the limit of 1048576");
    expect_node_rejects(p, "\x00\x00\x00\x00", 4, "frame length is 0");
    n = raw("{\"type\":\"\xc3\x28\"}", buf);
    expect_node_rejects(p, buf, n, "not valid UTF-8 at byte 9");
    n = raw("{\"type\":\"launch\"}", buf);
    expect_node_rejects(p, buf, n, "unknown message type 'launch'");
    n = raw("{\"type\":\"cancel\",\"job_id\":true}", buf);
    expect_node_rejects(p, buf, n, "cancel: field 'job_id' must be a string");
    n = raw("{\"type\":\"job\",\"job_id\":\"j\",\"model\":\"edge\",\"kind\":\"completion\","
            "\"prompt\":\"x\",\"params\":{\"seed\":1}}", buf);
    expect_node_rejects(p, buf, n, "job: missing field 'params.max_tokens'");
    /* well-formed but out of place: a coordinator does not send accept */
    n = raw("{\"type\":\"accept\",\"job_id\":\"j\"}", buf);
    expect_node_rejects(p, buf, n, "unexpected accept");
    assert_int_equal(stop_node(p, SIGTERM), 0);
}

static void send_job(peer *p, const char *job_id, const char *model, int max_tokens,
                     const int32_t *resume, int n_resume, uint64_t seed)
{
    ig_msg j;
    ig_msg_init(&j, IG_MSG_JOB);
    j.job.job_id = job_id;
    j.job.model = model;
    j.job.kind = IG_JOB_COMPLETION;
    j.job.prompt = "Once upon a time";
    j.job.prompt_len = strlen(j.job.prompt);
    j.job.params = ig_net_default_gen_params();
    j.job.params.max_tokens = max_tokens;
    j.job.params.sampler.temperature = 0;
    j.job.params.sampler.seed = seed;
    j.job.resume = (int32_t *)resume;
    j.job.n_resume = n_resume;
    send_msg(p, &j);
}

/* Collects a job's tokens until done; checks indexes are contiguous from first_index. */
static int collect(peer *p, const char *job_id, int64_t first_index, int32_t *ids, int cap,
                   char *text, size_t text_cap, ig_msg *done_out)
{
    int n = 0;
    size_t tl = 0;
    if (text)
        text[0] = '\0';
    for (;;) {
        ig_msg m = next_msg(p, 30000, NULL);
        if (m.type == IG_MSG_TOKENS) {
            assert_string_equal(m.tokens.job_id, job_id);
            assert_int_equal(m.tokens.index, first_index + n);
            for (int i = 0; i < m.tokens.n_items; i++) {
                if (n < cap)
                    ids[n] = m.tokens.items[i].id;
                n++;
                if (text && tl + m.tokens.items[i].text_len < text_cap) {
                    memcpy(text + tl, m.tokens.items[i].text, m.tokens.items[i].text_len);
                    tl += m.tokens.items[i].text_len;
                    text[tl] = '\0';
                }
            }
            ig_msg_deinit(&m);
            continue;
        }
        if (m.type != IG_MSG_DONE)
            fail_msg("expected tokens or done for %s, got %s%s%s", job_id, ig_msg_type_name(m.type),
                     m.type == IG_MSG_JOB_ERROR ? ": " : "",
                     m.type == IG_MSG_JOB_ERROR ? m.job_error.reason : "");
        assert_string_equal(m.done.job_id, job_id);
        *done_out = m;
        return n;
    }
}

static void test_synthetic_jobs_accept_stream_indexed_tokens_and_finish(void **state)
{
    peer *p = *state;
    const char *args[] = {"--synthetic", "--rate", "400", "--slots", "1", NULL};
    spawn_node(p, args);
    ig_msg hello = handshake(p, "node-1", 1000);
    ig_msg_deinit(&hello);

    send_job(p, "job-a", "edge", 12, NULL, 0, 7);
    ig_msg m = expect_msg(p, IG_MSG_ACCEPT, 5000);
    assert_string_equal(m.accept.job_id, "job-a");
    ig_msg_deinit(&m);
    int32_t ids_a[16], ids_b[16];
    ig_msg done;
    assert_int_equal(collect(p, "job-a", 0, ids_a, 16, NULL, 0, &done), 12);
    assert_int_equal(done.done.finish, IG_FINISH_LENGTH);
    assert_int_equal(done.done.completion_tokens, 12);
    ig_msg_deinit(&done);

    /* resumed from 5 tokens: the same seed continues with the same tokens */
    send_job(p, "job-b", "edge", 12, ids_a, 5, 7);
    m = expect_msg(p, IG_MSG_ACCEPT, 5000);
    ig_msg_deinit(&m);
    assert_int_equal(collect(p, "job-b", 5, ids_b, 16, NULL, 0, &done), 7);
    assert_memory_equal(ids_b, ids_a + 5, 7 * sizeof(int32_t));
    assert_int_equal(done.done.completion_tokens, 12);
    ig_msg_deinit(&done);

    /* a model this node does not serve */
    send_job(p, "job-c", "cloud", 4, NULL, 0, 1);
    m = expect_msg(p, IG_MSG_REJECT, 5000);
    assert_string_equal(m.reject.job_id, "job-c");
    assert_non_null(strstr(m.reject.reason, "model 'cloud' is not served here"));
    ig_msg_deinit(&m);

    /* one slot: a second concurrent job is rejected; a cancel frees the slot */
    send_job(p, "job-long", "edge", 100000, NULL, 0, 1);
    m = expect_msg(p, IG_MSG_ACCEPT, 5000);
    ig_msg_deinit(&m);
    send_job(p, "job-d", "edge", 4, NULL, 0, 1);
    bool rejected = false;
    while (!rejected) {
        m = next_msg(p, 5000, NULL);
        if (m.type == IG_MSG_REJECT) {
            assert_string_equal(m.reject.job_id, "job-d");
            assert_non_null(strstr(m.reject.reason, "no free slot"));
            rejected = true;
        } else {
            assert_int_equal(m.type, IG_MSG_TOKENS);
        }
        ig_msg_deinit(&m);
    }
    PUMP_UNTIL(p, p->n_pings_with_load > 0 && p->last_ping.ping.active == 1, 3000);
    ig_msg c;
    ig_msg_init(&c, IG_MSG_CANCEL);
    c.cancel.job_id = "job-long";
    send_msg(p, &c);
    /* after the cancel: at most tokens already in flight, then nothing for job-long */
    send_job(p, "job-e", "edge", 3, NULL, 0, 1);
    for (;;) {
        m = next_msg(p, 5000, NULL);
        if (m.type == IG_MSG_TOKENS && strcmp(m.tokens.job_id, "job-long") == 0) {
            ig_msg_deinit(&m);
            continue;
        }
        if (m.type == IG_MSG_REJECT) { /* the slot was still winding down: retry */
            ig_msg_deinit(&m);
            send_job(p, "job-e", "edge", 3, NULL, 0, 1);
            continue;
        }
        assert_int_equal(m.type, IG_MSG_ACCEPT);
        assert_string_equal(m.accept.job_id, "job-e");
        ig_msg_deinit(&m);
        break;
    }
    assert_int_equal(collect(p, "job-e", 0, ids_a, 16, NULL, 0, &done), 3);
    ig_msg_deinit(&done);
    assert_int_equal(stop_node(p, SIGTERM), 0);
}

static void test_sigterm_hands_running_jobs_back_and_exits(void **state)
{
    peer *p = *state;
    const char *args[] = {"--synthetic", "--rate", "50", NULL};
    spawn_node(p, args);
    ig_msg hello = handshake(p, "node-1", 1000);
    ig_msg_deinit(&hello);
    send_job(p, "job-h", "edge", 100000, NULL, 0, 3);
    ig_msg m = expect_msg(p, IG_MSG_ACCEPT, 5000);
    ig_msg_deinit(&m);
    m = expect_msg(p, IG_MSG_TOKENS, 5000);
    ig_msg_deinit(&m);
    int closes = p->n_closes;
    kill(p->pid, SIGTERM);
    for (;;) {
        m = next_msg(p, 5000, NULL);
        if (m.type == IG_MSG_TOKENS) {
            ig_msg_deinit(&m);
            continue;
        }
        assert_int_equal(m.type, IG_MSG_HANDBACK);
        assert_string_equal(m.handback.job_id, "job-h");
        assert_non_null(strstr(m.handback.reason, "shutting down"));
        ig_msg_deinit(&m);
        break;
    }
    PUMP_UNTIL(p, p->n_closes > closes, 5000);
    assert_int_equal(stop_node(p, 0), 0); /* it exits by itself, with status 0 */
}

static void test_one_process_hosts_many_synthetic_nodes_with_distinct_keys(void **state)
{
    peer *p = *state;
    const char *args[] = {"--synthetic", "--count", "40", "--enroll-token", "bulk", NULL};
    p->keep_all = true;
    spawn_node(p, args);
    uint8_t keys[40][IG_NET_KEY_BYTES];
    int n_hellos = 0;
    /* answer each hello on the connection it came from */
    while (n_hellos < 40) {
        ig_msg m = next_msg(p, 10000, NULL);
        assert_int_equal(m.type, IG_MSG_HELLO);
        for (int k = 0; k < n_hellos; k++)
            assert_memory_not_equal(keys[k], m.hello.node_key, IG_NET_KEY_BYTES);
        memcpy(keys[n_hellos++], m.hello.node_key, IG_NET_KEY_BYTES);
        assert_string_equal(m.hello.enroll_token, "bulk");
        ig_msg_deinit(&m);
    }
    assert_true(p->n_accepts >= 40);
    assert_int_equal(stop_node(p, SIGTERM), 0);
}

static void test_token_file_gives_each_simulated_node_its_own_token(void **state)
{
    peer *p = *state;
    char path[128];
    snprintf(path, sizeof path, "%s.tokens", p->dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 12; i++)
        fprintf(f, "tok-%02d\n", i);
    fclose(f);
    const char *args[] = {"--synthetic", "--count", "12", "--enroll-token-file", path, NULL};
    p->keep_all = true;
    spawn_node(p, args);
    bool seen[12] = {false};
    for (int n = 0; n < 12; n++) {
        ig_msg m = next_msg(p, 10000, NULL);
        assert_int_equal(m.type, IG_MSG_HELLO);
        assert_non_null(m.hello.enroll_token);
        int k = -1;
        assert_int_equal(sscanf(m.hello.enroll_token, "tok-%d", &k), 1);
        assert_true(k >= 0 && k < 12);
        assert_false(seen[k]);
        seen[k] = true;
        ig_msg_deinit(&m);
    }
    assert_int_equal(stop_node(p, SIGTERM), 0);
    unlink(path);
}

#include "test_net_tls.h"

static void test_node_dials_over_tls_and_checks_the_coordinator_certificate(void **state)
{
    peer *p = *state;
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s.cert.pem", p->dir);
    snprintf(key, sizeof key, "%s.key.pem", p->dir);
    assert_true(test_net_make_cert(cert, key));
    ig_err err;
    p->tls = ig_net_tls_server_ctx(cert, key, &err);
    assert_non_null(p->tls);
    const char *args[] = {"--synthetic", "--tls", "--tls-ca", cert, NULL};
    spawn_node(p, args);
    ig_msg hello = handshake(p, "node-tls", 1000);
    ig_msg_deinit(&hello);
    send_job(p, "job-t", "edge", 3, NULL, 0, 1);
    ig_msg m = expect_msg(p, IG_MSG_ACCEPT, 5000);
    ig_msg_deinit(&m);
    int32_t ids[8];
    ig_msg done;
    assert_int_equal(collect(p, "job-t", 0, ids, 8, NULL, 0, &done), 3);
    ig_msg_deinit(&done);
    assert_int_equal(stop_node(p, SIGTERM), 0);

    /* a node trusting another CA refuses this coordinator and keeps retrying */
    char cert2[128], key2[128];
    snprintf(cert2, sizeof cert2, "%s.cert2.pem", p->dir);
    snprintf(key2, sizeof key2, "%s.key2.pem", p->dir);
    assert_true(test_net_make_cert(cert2, key2));
    const char *args2[] = {"--synthetic", "--tls", "--tls-ca", cert2, NULL};
    int accepts = p->n_accepts;
    spawn_node(p, args2);
    PUMP_UNTIL(p, p->n_accepts >= accepts + 2, 5000);
    assert_true(p->qh == p->qt); /* no hello ever arrived */
    assert_int_equal(stop_node(p, SIGTERM), 0);
    char *log = read_log(p);
    bool refused = strstr(log, "certificate verify failed") != NULL;
    free(log);
    assert_true(refused);
    unlink(cert);
    unlink(key);
    unlink(cert2);
    unlink(key2);
}

/* Runs `idlegrid node ARGS...` to completion; returns its exit status and output. */
static int run_cli(const char *const *args, char *out, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char *argv[32];
    int n = 0;
    argv[n++] = bin_path();
    argv[n++] = "node";
    for (int i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t used = 0;
    ssize_t r;
    while ((r = read(fds[0], out + used, cap - 1 - used)) > 0)
        used += (size_t)r;
    out[used] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void expect_cli(const char *const *args, int status, const char *text)
{
    char out[8192];
    int got = run_cli(args, out, sizeof out);
    if (got != status || !strstr(out, text))
        fail_msg("idlegrid node %s...: expected exit %d with '%s', got %d: %s", args[0], status, text,
                 got, out);
}

static void test_cli_refuses_bad_usage_with_one_line_reason(void **state)
{
    (void)state;
    expect_cli((const char *[]){"--help", NULL}, 0, "usage: idlegrid node --coordinator HOST:PORT");
    expect_cli((const char *[]){"--synthetic", NULL}, 2, "--coordinator HOST:PORT is required");
    expect_cli((const char *[]){"--coordinator", "127.0.0.1:7070", NULL}, 2, "--model FILE is required");
    expect_cli((const char *[]){"--coordinator", "h:1", "--synthetic", "--class", "phone", NULL}, 2,
               "--class must be edge or cloud");
    expect_cli((const char *[]){"--coordinator", "h:1", "--model", "m.gguf", "--count", "3", NULL}, 2,
               "--count needs --synthetic");
    expect_cli((const char *[]){"--coordinator", "h:1", "--synthetic", "--rate", "0", NULL}, 2,
               "--rate must be in");
    expect_cli((const char *[]){"--coordinator", "nohost", "--synthetic", "--data", "/tmp", NULL}, 1,
               "expected HOST:PORT");
    expect_cli((const char *[]){"--coordinator", "h:1", "--model", "/nonexistent/edge.gguf", "--data",
                                "/tmp/ig-node-cli-test", NULL},
               1, "/nonexistent/edge.gguf");
    if (system("rm -rf /tmp/ig-node-cli-test") != 0)
        fprintf(stderr, "cleanup failed\n");
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ---- real model ---- */

static const char *edge_model(void)
{
    static char path[1024];
    const char *m = getenv("IG_MODELS");
    snprintf(path, sizeof path, "%s/edge.gguf", m ? m : "models");
    return access(path, R_OK) == 0 ? path : NULL;
}

typedef struct {
    int32_t ids[256];
    char text[4096];
    size_t len;
    int n;
    double first_us;
} ref_run;

static bool ref_event(void *user, const ig_gen_event *ev)
{
    ref_run *r = user;
    if (r->n == 0)
        r->first_us = now_us();
    if (r->n < 256)
        r->ids[r->n] = ev->token;
    r->n++;
    if (r->len + ev->text_len < sizeof r->text) {
        memcpy(r->text + r->len, ev->text, ev->text_len);
        r->len += ev->text_len;
        r->text[r->len] = '\0';
    }
    return true;
}

static void test_model_node_streams_the_engines_tokens_and_resumes_exactly(void **state)
{
    peer *p = *state;
    const char *model_path = edge_model();
    if (!model_path)
        skip();
    /* the reference: the engine alone, in this process */
    ig_err err;
    ig_model *model = ig_model_load(model_path, &err);
    if (!model)
        fail_msg("%s", err.msg);
    ig_ctx_params cp = ig_ctx_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 1;
    ig_ctx *ctx = ig_ctx_new(model, &cp, &err);
    assert_non_null(ctx);
    const ig_tokenizer *tok = ig_model_tokenizer(model);
    const char *prompt = "Once upon a time";
    int32_t ptoks[64];
    int64_t np = ig_tokenize(tok, prompt, strlen(prompt), ig_tokenizer_adds_bos(tok), false, ptoks, 64, &err);
    assert_true(np > 0 && np < 64);
    ig_gen_params gp = ig_net_default_gen_params();
    gp.max_tokens = 24;
    gp.sampler.temperature = 0;
    gp.sampler.seed = 5;
    ref_run ref = {0};
    ig_finish fin;
    double t_ref = now_us();
    assert_int_equal(ig_generate(ctx, ptoks, (int32_t)np, NULL, 0, &gp, ref_event, &ref, &fin, &err), IG_OK);
    double ttft_engine = ref.first_us - t_ref;
    /* and a chat with the model's template */
    ig_chat_message chat[2] = {{"system", "You are brief."}, {"user", "Hello there"}};
    int32_t ctoks[256];
    int64_t nc = ig_chat_tokenize(model, chat, 2, true, ctoks, 256, &err);
    assert_true(nc > 0 && nc < 256);
    ref_run chat_ref = {0};
    gp.max_tokens = 12;
    assert_int_equal(ig_generate(ctx, ctoks, (int32_t)nc, NULL, 0, &gp, ref_event, &chat_ref, &fin, &err), IG_OK);
    gp.max_tokens = 24;
    ig_ctx_free(ctx);
    ig_model_free(model);

    const char *args[] = {"--model", model_path, "--slots", "1", "--threads", "1", "--ctx", "512", NULL};
    spawn_node(p, args);
    ig_msg hello = handshake(p, "node-1", 1000);
    assert_string_equal(hello.hello.models[0].id, "edge");
    assert_true(hello.hello.tokens_per_second > 0);
    assert_int_equal(hello.hello.models[0].n_ctx, 512);
    ig_msg_deinit(&hello);

    double t_job = now_us();
    send_job(p, "job-m", "edge", 24, NULL, 0, 5);
    ig_msg m = expect_msg(p, IG_MSG_ACCEPT, 5000);
    ig_msg_deinit(&m);
    PUMP_UNTIL(p, p->qh != p->qt, 5000);
    double ttft_node = now_us() - t_job;
    print_message("time to first token: engine alone %.0f us, through the node link %.0f us\n",
                  ttft_engine, ttft_node);
    int32_t ids[256];
    char text[4096];
    ig_msg done;
    int n = collect(p, "job-m", 0, ids, 256, text, sizeof text, &done);
    assert_int_equal(n, ref.n);
    assert_memory_equal(ids, ref.ids, (size_t)n * sizeof(int32_t));
    assert_string_equal(text, ref.text);
    assert_int_equal(done.done.completion_tokens, ref.n);
    assert_int_equal(done.done.prompt_tokens, (int)np);
    ig_msg_deinit(&done);

    /* resumed after 10 tokens: the rest of the same stream, no gap, no repeat */
    send_job(p, "job-r", "edge", 24, ref.ids, 10, 5);
    m = expect_msg(p, IG_MSG_ACCEPT, 5000);
    ig_msg_deinit(&m);
    n = collect(p, "job-r", 10, ids, 256, NULL, 0, &done);
    assert_int_equal(n, ref.n - 10);
    assert_memory_equal(ids, ref.ids + 10, (size_t)n * sizeof(int32_t));
    ig_msg_deinit(&done);

    /* chat with logprobs: the engine's tokens; greedy picks the most likely, so the
     * first alternative is the chosen token with the same logprob */
    ig_msg cj;
    ig_msg_init(&cj, IG_MSG_JOB);
    cj.job.job_id = "job-chat";
    cj.job.model = "edge";
    cj.job.kind = IG_JOB_CHAT;
    cj.job.messages = chat;
    cj.job.n_messages = 2;
    cj.job.params = ig_net_default_gen_params();
    cj.job.params.max_tokens = 12;
    cj.job.params.sampler.temperature = 0;
    cj.job.params.sampler.seed = 5;
    cj.job.params.top_logprobs = 3;
    cj.job.logprobs = true;
    send_msg(p, &cj);
    m = expect_msg(p, IG_MSG_ACCEPT, 5000);
    ig_msg_deinit(&m);
    int got = 0;
    for (;;) {
        m = next_msg(p, 30000, NULL);
        if (m.type == IG_MSG_DONE)
            break;
        assert_int_equal(m.type, IG_MSG_TOKENS);
        for (int i = 0; i < m.tokens.n_items; i++, got++) {
            const ig_net_token *t = &m.tokens.items[i];
            assert_int_equal(t->id, chat_ref.ids[got]);
            assert_int_equal(t->n_top, 3);
            assert_int_equal(t->top[0].id, t->id);
            assert_true(fabsf(t->top[0].logprob - t->logprob) < 1e-4f);
            assert_true(t->top[1].logprob <= t->top[0].logprob);
        }
        ig_msg_deinit(&m);
    }
    assert_int_equal(got, chat_ref.n);
    assert_int_equal(m.done.prompt_tokens, (int)nc);
    ig_msg_deinit(&m);

    /* a prompt longer than the context: job_error naming the problem, node still serves */
    size_t big = 6000;
    char *longp = malloc(big + 1);
    for (size_t i = 0; i < big; i += 6)
        memcpy(longp + i, "words ", 6);
    longp[big] = '\0';
    ig_msg lj;
    ig_msg_init(&lj, IG_MSG_JOB);
    lj.job.job_id = "job-long-prompt";
    lj.job.model = "edge";
    lj.job.kind = IG_JOB_COMPLETION;
    lj.job.prompt = longp;
    lj.job.prompt_len = big;
    lj.job.params = ig_net_default_gen_params();
    lj.job.params.max_tokens = 4;
    send_msg(p, &lj);
    free(longp);
    m = expect_msg(p, IG_MSG_ACCEPT, 5000);
    ig_msg_deinit(&m);
    m = expect_msg(p, IG_MSG_JOB_ERROR, 10000);
    assert_string_equal(m.job_error.job_id, "job-long-prompt");
    assert_non_null(strstr(m.job_error.reason, "does not fit the context of 512"));
    ig_msg_deinit(&m);
    send_job(p, "job-after", "edge", 24, NULL, 0, 5);
    m = expect_msg(p, IG_MSG_ACCEPT, 5000);
    ig_msg_deinit(&m);
    n = collect(p, "job-after", 0, ids, 256, NULL, 0, &done);
    assert_memory_equal(ids, ref.ids, (size_t)ref.n * sizeof(int32_t));
    ig_msg_deinit(&done);
    assert_int_equal(stop_node(p, SIGTERM), 0);
}

int main(void)
{
    ig_net_log_set_level(IG_LOG_OFF);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_refuses_bad_usage_with_one_line_reason),
        cmocka_unit_test_setup_teardown(test_first_start_enrols_with_token_then_reconnects_with_key_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnects_with_growing_capped_backoff_after_peer_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_frames_from_peer_are_logged_closed_and_node_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_synthetic_jobs_accept_stream_indexed_tokens_and_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_hands_running_jobs_back_and_exits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_process_hosts_many_synthetic_nodes_with_distinct_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_file_gives_each_simulated_node_its_own_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_dials_over_tls_and_checks_the_coordinator_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_node_streams_the_engines_tokens_and_resumes_exactly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
