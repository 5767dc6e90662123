/*
 * test_net_conn.c — ig_net_conn over real loopback TCP sockets: messages arrive
 * parsed, pings are answered, a malformed frame closes only that connection with
 * the reason logged and sent to the peer, an oversized header is refused before its
 * payload, a silent peer is declared dead after 3 heartbeats, a refused connect is
 * reported through on_close, and freeing inside callbacks is safe.
 */
#include "net.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    ig_net_conn *conn;
    int n_msgs;
    ig_msg_type types[32];
    char last_error[512]; /* message of a received error frame */
    bool closed;
    ig_err close_reason;
    bool opened;
    bool free_on_close;
} side;

typedef struct {
    struct event_base *base;
    ig_net_listener *listener;
    side server;
    side client;
    side extra; /* the server end of a second client */
    ig_net_conn_opts server_opts;
} fixture;

static void on_open(ig_net_conn *c, void *user)
{
    (void)c;
    ((side *)user)->opened = true;
}

static void on_msg(ig_net_conn *c, ig_msg *m, void *user)
{
    (void)c;
    side *s = user;
    if (s->n_msgs < 32)
        s->types[s->n_msgs] = m->type;
    s->n_msgs++;
    if (m->type == IG_MSG_ERROR)
        snprintf(s->last_error, sizeof s->last_error, "%s", m->error.message);
    ig_msg_deinit(m);
}

static void on_close(ig_net_conn *c, const ig_err *reason, void *user)
{
    side *s = user;
    s->closed = true;
    s->close_reason = *reason;
    if (s->free_on_close) {
        ig_net_conn_free(c);
        s->conn = NULL;
    }
}

static const ig_net_callbacks CALLBACKS = {on_open, on_msg, on_close, NULL};

static void on_accept(int fd, const char *peer, void *user)
{
    (void)peer;
    fixture *f = user;
    ig_err err;
    side *s = f->server.conn ? &f->extra : &f->server;
    assert_null(s->conn);
    s->conn = ig_net_conn_accept(f->base, fd, &f->server_opts, &CALLBACKS, s, &err);
    assert_non_null(s->conn);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    ig_err err;
    f->listener = ig_net_listener_new(f->base, "127.0.0.1:0", on_accept, f, &err);
    assert_non_null(f->listener);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ig_net_conn_free(f->server.conn);
    ig_net_conn_free(f->extra.conn);
    ig_net_conn_free(f->client.conn);
    ig_net_listener_free(f->listener);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void dial(fixture *f)
{
    ig_err err;
    f->client.conn = ig_net_conn_dial(f->base, "127.0.0.1", ig_net_listener_port(f->listener),
                                      NULL, &CALLBACKS, &f->client, &err);
    assert_non_null(f->client.conn);
}

/* Runs the loop until cond holds or 5 s pass. */
#define RUN_UNTIL(f, cond)                                                                     \
    do {                                                                                       \
        int64_t until_ = ig_net_now_ms() + 5000;                                               \
        while (!(cond) && ig_net_now_ms() < until_)                                            \
            event_base_loop((f)->base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(200);            \
        if (!(cond))                                                                           \
            fail_msg("timed out waiting for %s", #cond);                                       \
    } while (0)

static void test_messages_arrive_parsed_and_pings_are_answered(void **state)
{
    fixture *f = *state;
    dial(f);
    RUN_UNTIL(f, f->client.opened && f->server.opened);
    ig_msg m;
    ig_msg_init(&m, IG_MSG_ACCEPT);
    m.accept.job_id = "job-9";
    assert_int_equal(ig_net_conn_send(f->client.conn, &m, NULL), IG_OK);
    ig_msg_init(&m, IG_MSG_PING);
    m.ping.t = 77;
    assert_int_equal(ig_net_conn_send(f->client.conn, &m, NULL), IG_OK);
    RUN_UNTIL(f, f->server.n_msgs == 2 && f->client.n_msgs == 1);
    assert_int_equal(f->server.types[0], IG_MSG_ACCEPT);
    assert_int_equal(f->server.types[1], IG_MSG_PING);
    assert_int_equal(f->client.types[0], IG_MSG_PONG);
    assert_true(ig_net_conn_is_open(f->client.conn));
    /* a clean local close: on_close with IG_OK here, EOF on the other side */
    ig_net_conn_close(f->client.conn, IG_OK, "done");
    assert_true(f->client.closed);
    assert_int_equal(f->client.close_reason.code, IG_OK);
    RUN_UNTIL(f, f->server.closed);
    assert_non_null(strstr(f->server.close_reason.msg, "peer closed the connection"));
}

static void test_bad_json_closes_only_that_connection_with_reason(void **state)
{
    fixture *f = *state;
    dial(f);
    RUN_UNTIL(f, f->client.opened && f->server.opened);
    /* a second, well-behaved client on the same listener */
    side other = {0};
    ig_err err;
    other.conn = ig_net_conn_dial(f->base, "127.0.0.1", ig_net_listener_port(f->listener), NULL,
                                  &CALLBACKS, &other, &err);
    RUN_UNTIL(f, other.opened);
    ig_net_conn *first_server = f->server.conn;
    const char bad[] = "\x00\x00\x00\x05{\"typ";
    assert_int_equal(ig_net_conn_send_raw(f->client.conn, bad, sizeof bad - 1, NULL), IG_OK);
    RUN_UNTIL(f, f->client.closed);
    /* the offender got the reason in an error frame before the close */
    assert_non_null(strstr(f->client.last_error, "not valid JSON"));
    assert_true(!ig_net_conn_is_open(first_server) || f->server.closed);
    /* the other connection still works */
    ig_msg m;
    ig_msg_init(&m, IG_MSG_PING);
    m.ping.t = 1;
    assert_int_equal(ig_net_conn_send(other.conn, &m, NULL), IG_OK);
    RUN_UNTIL(f, other.n_msgs == 1);
    assert_int_equal(other.types[0], IG_MSG_PONG);
    assert_false(other.closed);
    ig_net_conn_free(other.conn);
}

static void test_server_reports_protocol_reason_on_close(void **state)
{
    fixture *f = *state;
    dial(f);
    RUN_UNTIL(f, f->server.opened);
    const char unknown[] = "\x00\x00\x00\x11{\"type\":\"launch\"}";
    ig_net_conn_send_raw(f->client.conn, unknown, sizeof unknown - 1, NULL);
    RUN_UNTIL(f, f->server.closed);
    assert_int_equal(f->server.close_reason.code, IG_ERR_PROTOCOL);
    assert_non_null(strstr(f->server.close_reason.msg, "unknown message type 'launch'"));
}

static void test_oversized_header_is_refused_before_the_payload(void **state)
{
    fixture *f = *state;
    f->server_opts.max_frame = 64;
    dial(f);
    RUN_UNTIL(f, f->server.opened);
    const char hdr[] = "\x00\x00\x00\x41"; /* 65 bytes announced, none sent */
    ig_net_conn_send_raw(f->client.conn, hdr, 4, NULL);
    RUN_UNTIL(f, f->server.closed);
    assert_int_equal(f->server.close_reason.code, IG_ERR_PROTOCOL);
    assert_non_null(strstr(f->server.close_reason.msg, "frame length 65 exceeds the limit of 64"));
    RUN_UNTIL(f, f->client.closed);
    assert_non_null(strstr(f->client.last_error, "exceeds the limit"));
}

static void test_zero_length_and_bad_utf8_frames_are_refused(void **state)
{
    fixture *f = *state;
    dial(f);
    RUN_UNTIL(f, f->server.opened);
    ig_net_conn_send_raw(f->client.conn, "\0\0\0\0", 4, NULL);
    RUN_UNTIL(f, f->server.closed);
    assert_non_null(strstr(f->server.close_reason.msg, "frame length is 0"));
    RUN_UNTIL(f, f->client.closed);
    ig_net_conn_free(f->client.conn);
    ig_net_conn_free(f->server.conn);
    memset(&f->client, 0, sizeof f->client);
    memset(&f->server, 0, sizeof f->server);
    dial(f);
    RUN_UNTIL(f, f->server.opened);
    const char bad[] = "\x00\x00\x00\x0d{\"type\":\"a\xff\"}";
    ig_net_conn_send_raw(f->client.conn, bad, sizeof bad - 1, NULL);
    RUN_UNTIL(f, f->server.closed);
    assert_non_null(strstr(f->server.close_reason.msg, "not valid UTF-8 at byte 10"));
}

static void test_peer_closing_mid_frame_is_reported(void **state)
{
    fixture *f = *state;
    dial(f);
    RUN_UNTIL(f, f->server.opened && f->client.opened);
    ig_net_conn_send_raw(f->client.conn, "\x00\x00\x00\x20{\"ty", 8, NULL);
    /* let the bytes leave, then close the client */
    for (int i = 0; i < 20; i++)
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ig_net_conn_close(f->client.conn, IG_OK, "test");
    RUN_UNTIL(f, f->server.closed);
    assert_non_null(strstr(f->server.close_reason.msg, "mid-frame (8 bytes"));
}

/* A raw TCP client that connects and then says nothing. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
static void test_silent_peer_is_declared_dead_after_three_heartbeats(void **state)
{
    fixture *f = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)ig_net_listener_port(f->listener));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    RUN_UNTIL(f, f->server.opened);
    int64_t t0 = ig_net_now_ms();
    ig_net_conn_set_heartbeat(f->server.conn, 50);
    RUN_UNTIL(f, f->server.closed);
    int64_t waited = ig_net_now_ms() - t0;
    assert_int_equal(f->server.close_reason.code, IG_ERR_TIMEOUT);
    assert_non_null(strstr(f->server.close_reason.msg, "peer silent for"));
    assert_true(waited >= 150 && waited < 3000);
    /* the server pinged the silent peer meanwhile */
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    assert_true(n > 4);
    assert_non_null(memmem(buf, (size_t)n, "\"type\":\"ping\"", 13));
    close(fd);
}

static void test_refused_connect_is_reported_through_on_close(void **state)
{
    fixture *f = *state;
    int port = ig_net_listener_port(f->listener);
    ig_net_listener_free(f->listener);
    f->listener = NULL;
    ig_err err;
    f->client.conn = ig_net_conn_dial(f->base, "127.0.0.1", port, NULL, &CALLBACKS, &f->client, &err);
    assert_non_null(f->client.conn);
    RUN_UNTIL(f, f->client.closed);
    assert_false(f->client.opened);
    assert_int_equal(f->client.close_reason.code, IG_ERR_IO);
    assert_non_null(strstr(f->client.close_reason.msg, "connect to 127.0.0.1:"));
    f->listener = ig_net_listener_new(f->base, "127.0.0.1:0", on_accept, f, &err);
}

static void test_free_inside_on_close_is_safe(void **state)
{
    fixture *f = *state;
    f->server.free_on_close = true;
    dial(f);
    RUN_UNTIL(f, f->server.opened);
    ig_net_conn_send_raw(f->client.conn, "\0\0\0\0", 4, NULL);
    RUN_UNTIL(f, f->server.closed);
    assert_null(f->server.conn);
}

/* ---- TLS ---- */

#include "test_net_tls.h"

typedef struct {
    char dir[64], cert[96], key[96];
    SSL_CTX *server, *client;
} tls_files;

static void tls_setup(fixture *f, tls_files *t, bool verify)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/ig-net-tls-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->cert, sizeof t->cert, "%s/cert.pem", t->dir);
    snprintf(t->key, sizeof t->key, "%s/key.pem", t->dir);
    assert_true(test_net_make_cert(t->cert, t->key));
    ig_err err;
    t->server = ig_net_tls_server_ctx(t->cert, t->key, &err);
    if (!t->server)
        fail_msg("%s", err.msg);
    t->client = ig_net_tls_client_ctx(t->cert, verify, &err);
    if (!t->client)
        fail_msg("%s", err.msg);
    f->server_opts.tls = t->server;
}

static void tls_teardown(tls_files *t)
{
    ig_net_tls_free(t->server);
    ig_net_tls_free(t->client);
    unlink(t->cert);
    unlink(t->key);
    rmdir(t->dir);
}

static void test_tls_link_carries_messages_and_checks_the_certificate(void **state)
{
    fixture *f = *state;
    tls_files t;
    tls_setup(f, &t, true);
    ig_net_conn_opts copts = {0};
    copts.tls = t.client;
    copts.tls_hostname = "127.0.0.1";
    ig_err err;
    f->client.conn = ig_net_conn_dial(f->base, "127.0.0.1", ig_net_listener_port(f->listener), &copts,
                                      &CALLBACKS, &f->client, &err);
    assert_non_null(f->client.conn);
    RUN_UNTIL(f, f->client.opened && f->server.opened);
    ig_msg m;
    ig_msg_init(&m, IG_MSG_PING);
    m.ping.t = 5;
    assert_int_equal(ig_net_conn_send(f->client.conn, &m, NULL), IG_OK);
    RUN_UNTIL(f, f->server.n_msgs == 1 && f->client.n_msgs == 1);
    assert_int_equal(f->server.types[0], IG_MSG_PING);
    assert_int_equal(f->client.types[0], IG_MSG_PONG);
    ig_net_conn_free(f->client.conn);
    ig_net_conn_free(f->server.conn);
    memset(&f->client, 0, sizeof f->client);
    memset(&f->server, 0, sizeof f->server);

    /* a name the certificate does not hold: the handshake fails, nothing opens */
    copts.tls_hostname = "example.org";
    f->client.conn = ig_net_conn_dial(f->base, "127.0.0.1", ig_net_listener_port(f->listener), &copts,
                                      &CALLBACKS, &f->client, &err);
    RUN_UNTIL(f, f->client.closed);
    assert_false(f->client.opened);
    if (!strstr(f->client.close_reason.msg, "certificate verify failed"))
        fail_msg("close reason: %s", f->client.close_reason.msg);
    RUN_UNTIL(f, f->server.closed || !f->server.conn);
    ig_net_conn_free(f->client.conn);
    ig_net_conn_free(f->server.conn);
    memset(&f->client, 0, sizeof f->client);
    memset(&f->server, 0, sizeof f->server);

    /* a plain-TCP peer on a TLS listener: closed, never opened */
    dial(f);
    RUN_UNTIL(f, f->client.opened);
    ig_msg_init(&m, IG_MSG_PING);
    m.ping.t = 6;
    ig_net_conn_send(f->client.conn, &m, NULL);
    RUN_UNTIL(f, f->server.closed);
    assert_false(f->server.opened);
    assert_int_equal(f->server.n_msgs, 0);
    tls_teardown(&t);
}

int main(void)
{
    ig_net_log_set_level(IG_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_messages_arrive_parsed_and_pings_are_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_json_closes_only_that_connection_with_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_reports_protocol_reason_on_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_header_is_refused_before_the_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_length_and_bad_utf8_frames_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_closing_mid_frame_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_peer_is_declared_dead_after_three_heartbeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_connect_is_reported_through_on_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_on_close_is_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_link_carries_messages_and_checks_the_certificate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
