/*
 * conn.c — one framed connection of the node link over a libevent bufferevent
 * (plain TCP or OpenSSL), for both ends: read frames → parsed messages, write
 * messages → frames, automatic pongs, heartbeats with a liveness deadline, and a
 * close that always logs why and calls on_close exactly once.
 *
 * Re-entrancy: callbacks may send, close or free their own connection. `depth`
 * counts callbacks in progress; ig_net_conn_free inside one only marks the object,
 * and the outermost frame frees it on the way out. Closes requested where calling
 * on_close at once would surprise the caller (a send that overflows the output
 * limit) are deferred to `task_ev`, which also delivers on_open after accept.
 *
 * Writing. A frame is written to the socket at once (send(2) from the calling thread)
 * when nothing is waiting before it; only what the kernel does not take goes to the
 * bufferevent's output, and while anything waits there, later frames queue behind it.
 * This keeps a frame from waiting for the event loop's next turn, and lets another
 * thread (a node's engine worker, ig_net_conn_send_threadsafe) put a token on the wire
 * without waking the loop's thread: on a core the engine keeps busy, that thread can
 * be scheduled milliseconds late. The state shared with such threads (the fields
 * under `wmu`) is the socket, whether frames may still be written, whether anything
 * waits (`w_backlog`), and `w_side`: frames from other threads that arrived while
 * something waited, moved into the bufferevent by the loop (task_ev). TLS links
 * (no socket to write to directly) always go through the bufferevent.
 */
#include "net.h"

#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_OUTPUT (16u << 20)
#define FAIL_FLUSH_MS 1000

struct ig_net_conn {
    struct event_base *base;
    struct bufferevent *bev;
    ig_net_callbacks cb;
    void *user;
    size_t max_frame;
    size_t max_output;
    char label[160];
    bool quiet;
    bool dialed;
    bool opened;        /* on_open delivered */
    bool closed;        /* the link is over; no callback after on_close */
    bool failing;       /* an error frame is being flushed before the close */
    bool pending_open;  /* task_ev: deliver on_open */
    bool pending_close; /* task_ev: close with pending_reason */
    bool free_pending;
    int depth;
    struct event *task_ev;
    struct event *hb_ev;
    struct event *fail_ev;
    int32_t hb_ms;
    int64_t last_rx_ms;
    bool tls;
    ig_err pending_reason;

    /* shared with threads sending through ig_net_conn_send_threadsafe */
    pthread_mutex_t wmu;
    bool w_open;            /* frames may be written */
    bool w_backlog;         /* bytes wait in the bufferevent's output or in w_side */
    bool w_overflow;        /* w_side passed max_output: the loop closes the link */
    int w_fd;               /* the socket for direct writes; -1 with TLS / before connect */
    struct evbuffer *w_side;
};

int64_t ig_net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void really_free(ig_net_conn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->w_side)
        evbuffer_free(c->w_side);
    pthread_mutex_destroy(&c->wmu);
    if (c->task_ev)
        event_free(c->task_ev);
    if (c->hb_ev)
        event_free(c->hb_ev);
    if (c->fail_ev)
        event_free(c->fail_ev);
    free(c);
}

static void leave(ig_net_conn *c)
{
    assert(c->depth > 0);
    if (--c->depth == 0 && c->free_pending)
        really_free(c);
}

/* No more frames from other threads (closing, failing); their unsent ones are dropped. */
static void w_stop(ig_net_conn *c)
{
    pthread_mutex_lock(&c->wmu);
    c->w_open = false;
    c->w_fd = -1;
    if (c->w_side)
        evbuffer_drain(c->w_side, evbuffer_get_length(c->w_side));
    pthread_mutex_unlock(&c->wmu);
}

/* Writes as much of bytes as the socket takes now; returns the count (0 on EAGAIN or
 * an error, which the bufferevent then meets and reports). Caller holds wmu. */
static size_t w_direct(ig_net_conn *c, const void *bytes, size_t len)
{
    if (c->w_fd < 0 || c->w_backlog || len == 0)
        return 0;
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(c->w_fd, (const char *)bytes + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    return done;
}

/* Loop thread, wmu held: frames other threads queued go into the bufferevent, in order. */
static void w_move_side(ig_net_conn *c)
{
    if (c->w_side && evbuffer_get_length(c->w_side) > 0 && c->bev)
        bufferevent_write_buffer(c->bev, c->w_side);
}

/* Ends the link: logs, releases the socket, calls on_close (unless suppressed). */
static void close_now(ig_net_conn *c, ig_code code, const char *reason, bool notify)
{
    if (c->closed)
        return;
    c->closed = true;
    c->failing = false;
    c->pending_close = false;
    w_stop(c);
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->hb_ev)
        event_del(c->hb_ev);
    if (c->fail_ev)
        event_del(c->fail_ev);
    ig_log_level lvl = (code == IG_OK || c->quiet) ? (c->quiet ? IG_LOG_DEBUG : IG_LOG_INFO)
                                                   : IG_LOG_WARN;
    json_t *f = json_object();
    json_object_set_new(f, "peer", json_string(c->label));
    json_object_set_new(f, "code", json_string(ig_code_name(code)));
    json_t *r = json_string(reason);
    json_object_set_new(f, "reason", r ? r : json_string("(reason not valid UTF-8)"));
    ig_net_log(lvl, "link_closed", f);
    if (notify && c->cb.on_close) {
        ig_err e;
        ig_err_clear(&e);
        e.code = code;
        snprintf(e.msg, sizeof e.msg, "%s", reason);
        c->depth++;
        c->cb.on_close(c, &e, c->user);
        leave(c);
    }
}

static void close_fmt(ig_net_conn *c, ig_code code, const char *fmt, va_list ap)
{
    char reason[512];
    vsnprintf(reason, sizeof reason, fmt, ap);
    c->depth++;
    close_now(c, code, reason, true);
    leave(c);
}

void ig_net_conn_close(ig_net_conn *c, ig_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    close_fmt(c, code, fmt, ap);
    va_end(ap);
}

static void schedule_task(ig_net_conn *c)
{
    event_active(c->task_ev, EV_TIMEOUT, 0);
}

static void close_later(ig_net_conn *c, ig_code code, const char *reason)
{
    if (c->closed || c->pending_close)
        return;
    c->pending_close = true;
    c->pending_reason.code = code;
    snprintf(c->pending_reason.msg, sizeof c->pending_reason.msg, "%s", reason);
    w_stop(c);
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ);
    schedule_task(c);
}

static void task_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ig_net_conn *c = arg;
    c->depth++;
    pthread_mutex_lock(&c->wmu);
    bool overflow = c->w_overflow;
    if (!c->closed)
        w_move_side(c);
    pthread_mutex_unlock(&c->wmu);
    if (overflow && !c->closed && !c->pending_close) {
        char reason[160];
        snprintf(reason, sizeof reason, "peer is not reading: more than %zu bytes unsent", c->max_output);
        close_now(c, IG_ERR_BUSY, reason, true);
    } else if (c->pending_close) {
        close_now(c, c->pending_reason.code, c->pending_reason.msg, true);
    } else if (c->pending_open && !c->closed) {
        c->pending_open = false;
        c->opened = true;
        if (c->cb.on_open)
            c->cb.on_open(c, c->user);
    }
    leave(c);
}

/* Loop thread. direct: the frame may go straight to the socket (not for the error
 * frame of a failing link, which is flushed through the bufferevent before the close). */
static ig_code queue_bytes(ig_net_conn *c, const void *bytes, size_t len, bool direct, ig_err *err)
{
    if (c->closed || c->failing || c->pending_close || !c->bev)
        return ig_err_set(err, IG_ERR_IO, "link to %s is closed", c->label);
    pthread_mutex_lock(&c->wmu);
    size_t done = direct ? w_direct(c, bytes, len) : 0;
    int rc = 0;
    if (done < len) {
        w_move_side(c); /* what other threads queued earlier goes first */
        rc = bufferevent_write(c->bev, (const char *)bytes + done, len - done);
        c->w_backlog = true;
    }
    pthread_mutex_unlock(&c->wmu);
    if (rc != 0)
        return ig_err_set(err, IG_ERR_NOMEM, "link to %s: cannot queue %zu bytes", c->label, len);
    size_t pending = evbuffer_get_length(bufferevent_get_output(c->bev));
    if (pending > c->max_output) {
        char reason[160];
        snprintf(reason, sizeof reason, "peer is not reading: %zu bytes unsent (limit %zu)",
                 pending, c->max_output);
        close_later(c, IG_ERR_BUSY, reason);
    }
    return IG_OK;
}

ig_code ig_net_conn_send_raw(ig_net_conn *c, const void *bytes, size_t len, ig_err *err)
{
    return queue_bytes(c, bytes, len, true, err);
}

ig_code ig_net_conn_send_json(ig_net_conn *c, const json_t *j, ig_err *err)
{
    size_t n = 0;
    unsigned char *buf = ig_net_frame_encode(j, c->max_frame, &n, err);
    if (!buf)
        return err ? err->code : IG_ERR_INVALID;
    ig_code rc = queue_bytes(c, buf, n, true, err);
    free(buf);
    return rc;
}

ig_code ig_net_conn_send(ig_net_conn *c, const ig_msg *m, ig_err *err)
{
    if (c->closed || c->failing || c->pending_close)
        return ig_err_set(err, IG_ERR_IO, "link to %s is closed", c->label);
    size_t n = 0;
    unsigned char *buf = ig_net_msg_frame_encode(m, c->max_frame, &n, err);
    if (!buf)
        return err ? err->code : IG_ERR_INVALID;
    ig_code rc = queue_bytes(c, buf, n, true, err);
    free(buf);
    return rc;
}

static void fail_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ig_net_conn *c = arg;
    c->depth++;
    close_now(c, c->pending_reason.code, c->pending_reason.msg, true);
    leave(c);
}

static void fail_reason(ig_net_conn *c, ig_code code, const char *reason)
{
    if (c->closed || c->failing || c->pending_close)
        return;
    /* The error frame must get through even when the reason is long or our limit is
     * small: the reason is cut to 256 bytes and framed with a limit of at least 4 KiB. */
    char shown[260];
    size_t rl = strlen(reason);
    if (rl > 256) {
        rl = 256;
        while (rl > 0 && ((unsigned char)reason[rl] & 0xC0) == 0x80)
            rl--;
    }
    memcpy(shown, reason, rl);
    shown[rl] = '\0';
    ig_msg m;
    ig_msg_init(&m, IG_MSG_ERROR);
    m.error.message = shown;
    bool sent = false;
    if (c->bev && c->opened) {
        json_t *j = ig_msg_to_json(&m, NULL);
        size_t n = 0;
        unsigned char *buf = j ? ig_net_frame_encode(j, c->max_frame > 4096 ? c->max_frame : 4096, &n, NULL) : NULL;
        json_decref(j);
        sent = buf && queue_bytes(c, buf, n, false, NULL) == IG_OK;
        free(buf);
    }
    c->pending_reason.code = code;
    snprintf(c->pending_reason.msg, sizeof c->pending_reason.msg, "%s", reason);
    if (!sent || c->pending_close) {
        c->pending_close = false;
        c->depth++;
        close_now(c, code, reason, true);
        leave(c);
        return;
    }
    c->failing = true;
    w_stop(c);
    bufferevent_disable(c->bev, EV_READ);
    struct timeval tv = {FAIL_FLUSH_MS / 1000, (FAIL_FLUSH_MS % 1000) * 1000};
    event_add(c->fail_ev, &tv);
}

void ig_net_conn_shutdown(ig_net_conn *c, const char *reason)
{
    if (c->closed || c->failing || c->pending_close)
        return;
    c->pending_reason.code = IG_OK;
    snprintf(c->pending_reason.msg, sizeof c->pending_reason.msg, "%s", reason);
    if (!c->bev || ig_net_conn_pending_output(c) == 0) {
        c->depth++;
        close_now(c, IG_OK, reason, true);
        leave(c);
        return;
    }
    c->failing = true;
    w_stop(c);
    bufferevent_disable(c->bev, EV_READ);
    struct timeval tv = {FAIL_FLUSH_MS / 1000, (FAIL_FLUSH_MS % 1000) * 1000};
    event_add(c->fail_ev, &tv);
}

void ig_net_conn_fail(ig_net_conn *c, ig_code code, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    fail_reason(c, code, reason);
}

static void answer_ping(ig_net_conn *c, const ig_msg *ping)
{
    ig_msg pong;
    ig_msg_init(&pong, IG_MSG_PONG);
    pong.pong.t = ping->ping.t;
    ig_net_conn_send(c, &pong, NULL);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    ig_net_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->depth++;
    c->last_rx_ms = ig_net_now_ms();
    if (c->pending_open && !c->closed) {
        /* bytes can beat the deferred on_open: open first, messages after */
        c->pending_open = false;
        c->opened = true;
        if (c->cb.on_open)
            c->cb.on_open(c, c->user);
    }
    while (!c->closed && !c->failing && !c->pending_close && !c->free_pending) {
        size_t avail = evbuffer_get_length(in);
        if (avail < IG_NET_FRAME_HEADER)
            break;
        unsigned char hdr[IG_NET_FRAME_HEADER];
        evbuffer_copyout(in, hdr, sizeof hdr);
        size_t need = IG_NET_FRAME_HEADER + (((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) |
                                             ((size_t)hdr[2] << 8) | hdr[3]);
        ig_err e;
        ig_err_clear(&e);
        json_t *j = NULL;
        size_t used = 0;
        ig_code rc;
        if (need - IG_NET_FRAME_HEADER == 0 || need - IG_NET_FRAME_HEADER > c->max_frame) {
            rc = ig_net_frame_decode(hdr, sizeof hdr, c->max_frame, &used, &j, &e);
            assert(rc != IG_OK);
        } else {
            if (avail < need)
                break;
            unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)need);
            rc = ig_net_frame_decode(p, need, c->max_frame, &used, &j, &e);
            evbuffer_drain(in, need);
        }
        if (rc != IG_OK) {
            fail_reason(c, IG_ERR_PROTOCOL, e.msg);
            break;
        }
        ig_msg m;
        rc = ig_msg_parse(j, &m, &e);
        json_decref(j);
        if (rc != IG_OK) {
            fail_reason(c, IG_ERR_PROTOCOL, e.msg);
            break;
        }
        if (m.type == IG_MSG_PING)
            answer_ping(c, &m);
        if (c->cb.on_msg)
            c->cb.on_msg(c, &m, c->user);
        else
            ig_msg_deinit(&m);
    }
    leave(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    ig_net_conn *c = arg;
    /* the output is empty: direct writes may resume, unless other threads queued more */
    pthread_mutex_lock(&c->wmu);
    if (c->w_side && evbuffer_get_length(c->w_side) > 0)
        w_move_side(c);
    else if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        c->w_backlog = false;
    pthread_mutex_unlock(&c->wmu);
    if (c->failing) {
        c->depth++;
        close_now(c, c->pending_reason.code, c->pending_reason.msg, true);
        leave(c);
    }
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* libevent moves OpenSSL's error queue into the bufferevent; read it from there. */
static void describe_ssl_errors(struct bufferevent *bev, bool tls, char *out, size_t cap)
{
    unsigned long e;
    out[0] = '\0';
    size_t used = 0;
    while (tls && (e = bufferevent_get_openssl_error(bev)) != 0 && used + 8 < cap) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        int n = snprintf(out + used, cap - used, "%s%s", used ? "; " : "", buf);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    ig_net_conn *c = arg;
    c->depth++;
    if (what & BEV_EVENT_CONNECTED) {
        evutil_socket_t fd = bufferevent_getfd(bev);
        if (fd >= 0)
            set_nodelay((int)fd);
        if (fd >= 0 && !c->tls) {
            pthread_mutex_lock(&c->wmu);
            if (c->w_open)
                c->w_fd = (int)fd;
            pthread_mutex_unlock(&c->wmu);
        }
        c->last_rx_ms = ig_net_now_ms();
        if (!c->opened && !c->closed) {
            c->opened = true;
            c->pending_open = false;
            if (c->cb.on_open)
                c->cb.on_open(c, c->user);
        }
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        char reason[512];
        if (what & BEV_EVENT_EOF) {
            size_t left = evbuffer_get_length(bufferevent_get_input(bev));
            if (left)
                snprintf(reason, sizeof reason,
                         "peer closed the connection mid-frame (%zu bytes of an incomplete frame)",
                         left);
            else
                snprintf(reason, sizeof reason, "peer closed the connection");
            close_now(c, IG_ERR_IO, reason, true);
        } else {
            int e = EVUTIL_SOCKET_ERROR();
            char ssl[256];
            describe_ssl_errors(bev, c->tls, ssl, sizeof ssl);
            if (!ssl[0])
                ERR_clear_error();
            if (!c->opened && c->dialed)
                snprintf(reason, sizeof reason, "connect to %s failed: %s%s%s", c->label,
                         e ? evutil_socket_error_to_string(e) : "error", ssl[0] ? "; TLS: " : "",
                         ssl);
            else
                snprintf(reason, sizeof reason, "connection error: %s%s%s",
                         e ? evutil_socket_error_to_string(e) : "error", ssl[0] ? "; TLS: " : "",
                         ssl);
            close_now(c, IG_ERR_IO, reason, true);
        }
    }
    leave(c);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ig_net_conn *c = arg;
    if (c->closed || !c->opened || c->hb_ms <= 0)
        return;
    c->depth++;
    int64_t now = ig_net_now_ms();
    int64_t silent = now - c->last_rx_ms;
    if (silent > 3 * (int64_t)c->hb_ms) {
        char reason[128];
        snprintf(reason, sizeof reason, "peer silent for %lld ms (heartbeat every %d ms)",
                 (long long)silent, c->hb_ms);
        close_now(c, IG_ERR_TIMEOUT, reason, true);
    } else if (!c->failing && !c->pending_close) {
        if (c->cb.on_heartbeat) {
            c->cb.on_heartbeat(c, c->user);
        } else {
            ig_msg ping;
            ig_msg_init(&ping, IG_MSG_PING);
            ping.ping.t = now;
            ig_net_conn_send(c, &ping, NULL);
        }
    }
    leave(c);
}

void ig_net_conn_set_heartbeat(ig_net_conn *c, int32_t interval_ms)
{
    c->hb_ms = interval_ms;
    event_del(c->hb_ev);
    if (interval_ms > 0 && !c->closed) {
        c->last_rx_ms = ig_net_now_ms();
        struct timeval tv = {interval_ms / 1000, (interval_ms % 1000) * 1000};
        event_add(c->hb_ev, &tv);
    }
}

static ig_net_conn *conn_alloc(struct event_base *base, const ig_net_conn_opts *opts,
                               const ig_net_callbacks *cb, void *user, ig_err *err)
{
    ig_net_conn *c = calloc(1, sizeof *c);
    if (!c) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->base = base;
    if (cb)
        c->cb = *cb;
    c->user = user;
    c->max_frame = opts && opts->max_frame ? opts->max_frame : IG_NET_FRAME_MAX_DEFAULT;
    c->max_output = opts && opts->max_output ? opts->max_output : DEFAULT_MAX_OUTPUT;
    c->quiet = opts && opts->quiet;
    c->tls = opts && opts->tls;
    pthread_mutex_init(&c->wmu, NULL);
    c->w_open = true;
    c->w_fd = -1;
    c->w_side = evbuffer_new();
    if (opts && opts->label)
        snprintf(c->label, sizeof c->label, "%s", opts->label);
    c->task_ev = event_new(base, -1, 0, task_cb, c);
    c->hb_ev = event_new(base, -1, EV_PERSIST, heartbeat_cb, c);
    c->fail_ev = event_new(base, -1, 0, fail_timeout_cb, c);
    if (!c->task_ev || !c->hb_ev || !c->fail_ev || !c->w_side) {
        really_free(c);
        ig_err_set(err, IG_ERR_NOMEM, "out of memory (events)");
        return NULL;
    }
    return c;
}

static void peer_name(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
    else
        snprintf(out, cap, "fd %d", fd);
}

ig_net_conn *ig_net_conn_accept(struct event_base *base, int fd, const ig_net_conn_opts *opts,
                                const ig_net_callbacks *cb, void *user, ig_err *err)
{
    ig_net_conn *c = conn_alloc(base, opts, cb, user, err);
    if (!c) {
        close(fd);
        return NULL;
    }
    if (!c->label[0])
        peer_name(fd, c->label, sizeof c->label);
    evutil_make_socket_nonblocking(fd);
    set_nodelay(fd);
    if (opts && opts->tls) {
        SSL *ssl = SSL_new(opts->tls);
        if (!ssl) {
            close(fd);
            really_free(c);
            ig_err_set(err, IG_ERR_NOMEM, "SSL_new failed");
            return NULL;
        }
        c->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev)
            SSL_free(ssl);
    } else {
        c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        close(fd);
        really_free(c);
        ig_err_set(err, IG_ERR_NOMEM, "cannot create a bufferevent");
        return NULL;
    }
    if (opts && opts->tls)
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->last_rx_ms = ig_net_now_ms();
    if (!(opts && opts->tls)) {
        c->w_fd = fd;
        /* Plain TCP is usable at once; TLS reports BEV_EVENT_CONNECTED after the handshake. */
        c->pending_open = true;
        schedule_task(c);
    }
    return c;
}

ig_net_conn *ig_net_conn_dial(struct event_base *base, const char *host, int port,
                              const ig_net_conn_opts *opts, const ig_net_callbacks *cb,
                              void *user, ig_err *err)
{
    ig_net_conn *c = conn_alloc(base, opts, cb, user, err);
    if (!c)
        return NULL;
    c->dialed = true;
    if (!c->label[0])
        snprintf(c->label, sizeof c->label, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0 || !res) {
        ig_err_set(err, IG_ERR_IO, "resolving %s: %s", host, gai_strerror(gai));
        really_free(c);
        return NULL;
    }
    if (opts && opts->tls) {
        SSL *ssl = SSL_new(opts->tls);
        if (ssl && opts->tls_hostname) {
            /* An IP literal is checked against the certificate's IP addresses and
             * sent without SNI; a name is checked against its DNS names. */
            unsigned char ip[16];
            if (inet_pton(AF_INET, opts->tls_hostname, ip) == 1 ||
                inet_pton(AF_INET6, opts->tls_hostname, ip) == 1) {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), opts->tls_hostname);
            } else {
                SSL_set_tlsext_host_name(ssl, opts->tls_hostname);
                SSL_set1_host(ssl, opts->tls_hostname);
            }
        }
        c->bev = ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (!c->bev && ssl)
            SSL_free(ssl);
        if (c->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        freeaddrinfo(res);
        really_free(c);
        ig_err_set(err, IG_ERR_NOMEM, "cannot create a bufferevent");
        return NULL;
    }
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    int rc = bufferevent_socket_connect(c->bev, res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0) {
        char reason[256];
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(reason, sizeof reason, "connect to %s failed: %s", c->label,
                 e ? evutil_socket_error_to_string(e) : "error");
        close_later(c, IG_ERR_IO, reason);
    }
    return c;
}

void ig_net_conn_free(ig_net_conn *c)
{
    if (!c)
        return;
    if (!c->closed) {
        c->depth++;
        close_now(c, IG_OK, "closed locally", false);
        c->depth--;
    }
    if (c->depth > 0) {
        c->free_pending = true;
        return;
    }
    really_free(c);
}

bool ig_net_conn_is_open(const ig_net_conn *c)
{
    return c && !c->closed && !c->failing && !c->pending_close && c->opened;
}

const char *ig_net_conn_label(const ig_net_conn *c) { return c->label; }
void ig_net_conn_set_label(ig_net_conn *c, const char *label)
{
    snprintf(c->label, sizeof c->label, "%s", label ? label : "");
}
void *ig_net_conn_user(const ig_net_conn *c) { return c->user; }
void ig_net_conn_set_user(ig_net_conn *c, void *user) { c->user = user; }
size_t ig_net_conn_pending_output(const ig_net_conn *c)
{
    ig_net_conn *m = (ig_net_conn *)c; /* the lock, not the state, changes */
    pthread_mutex_lock(&m->wmu);
    size_t side = c->w_side ? evbuffer_get_length(c->w_side) : 0;
    pthread_mutex_unlock(&m->wmu);
    return side + (c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0);
}

ig_code ig_net_conn_send_threadsafe(ig_net_conn *c, const ig_msg *m, bool *written, ig_err *err)
{
    if (written)
        *written = false;
    size_t n = 0;
    unsigned char *buf = ig_net_msg_frame_encode(m, c->max_frame, &n, err);
    if (!buf)
        return err ? err->code : IG_ERR_INVALID;
    ig_code rc = IG_OK;
    bool wake = false;
    pthread_mutex_lock(&c->wmu);
    if (!c->w_open) {
        rc = ig_err_set(err, IG_ERR_IO, "link to %s is closed", c->label);
    } else {
        size_t done = w_direct(c, buf, n);
        if (done == n) {
            if (written)
                *written = true;
        } else if (evbuffer_get_length(c->w_side) + (n - done) > c->max_output) {
            c->w_overflow = true;
            c->w_open = false;
            wake = true;
            rc = ig_err_set(err, IG_ERR_BUSY, "link to %s: peer is not reading", c->label);
        } else if (evbuffer_add(c->w_side, buf + done, n - done) != 0) {
            rc = ig_err_set(err, IG_ERR_NOMEM, "link to %s: cannot queue %zu bytes", c->label, n - done);
        } else {
            c->w_backlog = true;
            wake = true;
        }
    }
    pthread_mutex_unlock(&c->wmu);
    free(buf);
    if (wake)
        event_active(c->task_ev, EV_TIMEOUT, 0); /* thread-safe: evthread_use_pthreads */
    return rc;
}

/* ---- listener ---- */

struct ig_net_listener {
    struct evconnlistener *l;
    ig_net_accept_fn fn;
    void *user;
    int port;
};

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l;
    ig_net_listener *nl = arg;
    char host[NI_MAXHOST], port[NI_MAXSERV], peer[NI_MAXHOST + NI_MAXSERV + 4];
    if (getnameinfo(sa, (socklen_t)len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(peer, sizeof peer, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
    else
        snprintf(peer, sizeof peer, "fd %d", (int)fd);
    evutil_make_socket_nonblocking(fd);
    set_nodelay((int)fd);
    nl->fn((int)fd, peer, nl->user);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    int e = EVUTIL_SOCKET_ERROR();
    /* EMFILE and friends: the listener keeps going; the log says why accepts fail. */
    ig_net_logf(IG_LOG_ERROR, "accept_failed", "accept: %s", evutil_socket_error_to_string(e));
}

ig_code ig_net_parse_host_port(const char *s, char *host, size_t host_cap, int *port,
                               bool allow_zero, ig_err *err)
{
    if (!s || !*s)
        return ig_err_set(err, IG_ERR_INVALID, "empty address (expected HOST:PORT)");
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close_b = strchr(s, ']');
        if (!close_b || close_b[1] != ':')
            return ig_err_set(err, IG_ERR_INVALID, "address '%s': expected [IPv6]:PORT", s);
        h = s + 1;
        hlen = (size_t)(close_b - h);
        colon = close_b + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return ig_err_set(err, IG_ERR_INVALID, "address '%s': expected HOST:PORT", s);
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0)
        return ig_err_set(err, IG_ERR_INVALID, "address '%s': empty host", s);
    if (hlen >= host_cap)
        return ig_err_set(err, IG_ERR_INVALID, "address '%s': host too long", s);
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < (allow_zero ? 0 : 1) || p > 65535)
        return ig_err_set(err, IG_ERR_INVALID, "address '%s': port must be %d..65535", s,
                          allow_zero ? 0 : 1);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return IG_OK;
}

ig_net_listener *ig_net_listener_new(struct event_base *base, const char *host_port,
                                     ig_net_accept_fn fn, void *user, ig_err *err)
{
    char host[256];
    int port;
    if (ig_net_parse_host_port(host_port, host, sizeof host, &port, true, err))
        return NULL;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0 || !res) {
        ig_err_set(err, IG_ERR_IO, "resolving %s: %s", host, gai_strerror(gai));
        return NULL;
    }
    ig_net_listener *nl = calloc(1, sizeof *nl);
    if (!nl) {
        freeaddrinfo(res);
        ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        return NULL;
    }
    nl->fn = fn;
    nl->user = user;
    nl->l = evconnlistener_new_bind(base, accept_cb, nl,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                        LEV_OPT_CLOSE_ON_EXEC,
                                    4096, res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (!nl->l) {
        int e = EVUTIL_SOCKET_ERROR();
        free(nl);
        ig_err_set(err, IG_ERR_IO, "listening on %s: %s", host_port,
                   evutil_socket_error_to_string(e));
        return NULL;
    }
    evconnlistener_set_error_cb(nl->l, accept_error_cb);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    nl->port = port;
    if (getsockname(evconnlistener_get_fd(nl->l), (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            nl->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            nl->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return nl;
}

int ig_net_listener_port(const ig_net_listener *l) { return l->port; }

void ig_net_listener_free(ig_net_listener *l)
{
    if (!l)
        return;
    evconnlistener_free(l->l);
    free(l);
}
