/*
 * cmd_serve.c — `idlegrid serve`: the coordinator alone (buyer API, node listener,
 * scheduler, store) until SIGINT or SIGTERM, then a clean shutdown in which every
 * accepted request still gets an answer (an error if it cannot finish).
 */
#include "cli.h"
#include "coord.h"
#include "net.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    ig_net_logf(IG_LOG_INFO, "shutdown", "signal %d: stopping", (int)sig);
    event_base_loopexit(arg, NULL);
}

int ig_cmd_serve(int argc, char **argv)
{
    const char *data = "./idlegrid-data";
    const char *listen = "127.0.0.1:8080";
    const char *node_listen = "127.0.0.1:7070";
    int heartbeat_ms = 2000;
    int deadline_ms = 120000;
    const char *tls_cert = NULL, *tls_key = NULL;
    const ig_flag flags[] = {
        {"data", 'd', IG_FLAG_STRING, &data, "DIR", "state directory (default ./idlegrid-data)"},
        {"listen", 'l', IG_FLAG_STRING, &listen, "HOST:PORT", "buyer API address (default 127.0.0.1:8080; port 0 = any)"},
        {"node-listen", 0, IG_FLAG_STRING, &node_listen, "HOST:PORT", "node link address (default 127.0.0.1:7070)"},
        {"heartbeat-ms", 0, IG_FLAG_INT, &heartbeat_ms, "MS", "node heartbeat interval (default 2000)"},
        {"deadline-ms", 0, IG_FLAG_INT, &deadline_ms, "MS", "default request deadline (default 120000)"},
        {"tls-cert", 0, IG_FLAG_STRING, &tls_cert, "FILE", "node link over TLS: certificate chain (PEM)"},
        {"tls-key", 0, IG_FLAG_STRING, &tls_key, "FILE", "node link over TLS: private key (PEM)"},
    };
    const ig_cli_spec spec = {
        "idlegrid serve [--data DIR] [--listen HOST:PORT] [--node-listen HOST:PORT] [--tls-cert FILE --tls-key FILE]",
        "Runs the coordinator: the OpenAI-compatible API for buyers, the listener nodes dial "
        "into, the scheduler and the store. Stops cleanly on Ctrl-C or SIGTERM.",
        flags, (int)(sizeof flags / sizeof flags[0]), 0, 0};
    bool done;
    int rc = ig_cli_parse(&spec, argc, argv, NULL, NULL, &done);
    if (rc || done)
        return rc;
    char api_host[256], node_host[256];
    int api_port, node_port;
    ig_err err;
    ig_err_clear(&err);
    if (ig_net_parse_host_port(listen, api_host, sizeof api_host, &api_port, true, &err) != IG_OK ||
        ig_net_parse_host_port(node_listen, node_host, sizeof node_host, &node_port, true, &err) != IG_OK) {
        ig_cli_fail("%s", err.msg);
        return 2;
    }
    if (heartbeat_ms < 50 || deadline_ms < 1) {
        ig_cli_fail("--heartbeat-ms must be at least 50 and --deadline-ms positive");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    if (!base) {
        ig_cli_fail("cannot create the event loop");
        return 1;
    }
    ig_coord_config cfg = {
        .data_dir = data, .api_host = api_host, .api_port = api_port, .node_host = node_host,
        .node_port = node_port, .heartbeat_ms = heartbeat_ms, .default_deadline_ms = deadline_ms,
        .tls_cert = tls_cert, .tls_key = tls_key,
    };
    ig_coord *c = ig_coord_new(base, &cfg, &err);
    if (!c) {
        ig_cli_fail("serve: %s", err.msg);
        event_base_free(base);
        return 1;
    }
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    printf("idlegrid serve: API http://%s:%d/v1  nodes %s:%d%s  data %s\n", api_host,
           ig_coord_api_port(c), node_host, ig_coord_node_port(c), tls_cert ? " (TLS)" : "", data);
    fflush(stdout);
    event_base_dispatch(base);
    ig_coord_free(c);
    event_free(sigint);
    event_free(sigterm);
    event_base_free(base);
    return 0;
}
