/*
 * api.c — the buyer-facing HTTP server (libevent evhttp): routing, API-key auth,
 * per-key rate and concurrency limits, body limits, then hands a validated request to
 * jobs.c. Every refusal is OpenAI's error JSON with the right status; nothing a client
 * sends can take the server down or disturb another client.
 *
 *   GET  /healthz                 liveness + connected nodes (no auth)
 *   GET  /metrics                 Prometheus text (no auth)
 *   GET  /v1/models[/ID]          models the connected nodes serve
 *   POST /v1/completions          legacy completions
 *   POST /v1/chat/completions     chat completions
 */
#include "coord_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

/* Above IG_COORD_MAX_BODY we answer 413 ourselves (in JSON); libevent refuses bodies
 * above this outright, so a huge upload is never buffered. */
#define TRANSPORT_MAX_BODY (8u << 20)
#define MAX_HEADERS_BYTES (64u << 10)
#define API_BACKLOG 4096

static void send_json(struct evhttp_request *req, int status, const char *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    struct evbuffer *b = evbuffer_new();
    if (b && body)
        evbuffer_add(b, body, strlen(body));
    const char *reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : status == 401 ? "Unauthorized"
                       : status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed"
                       : status == 413 ? "Payload Too Large" : status == 429 ? "Too Many Requests"
                       : status == 503 ? "Service Unavailable" : "Error";
    evhttp_send_reply(req, status, reason, b);
    if (b)
        evbuffer_free(b);
}

void coord_send_error(struct evhttp_request *req, const ig_coord_api_error *e)
{
    char *body = ig_coord_api_error_json(e);
    send_json(req, e->status, body ? body : "{\"error\":{\"message\":\"error\"}}");
    free(body);
}

static void reply_error(ig_coord *c, struct evhttp_request *req, int endpoint, int status,
                        const char *type, const char *code, const char *param, const char *msg)
{
    ig_coord_api_error e;
    ig_coord_api_error_set(&e, status, type, code, param, "%s", msg);
    coord_send_error(req, &e);
    metrics_request(c, endpoint, status);
}

key_state *coord_key_state(ig_coord *c, const ig_coord_key_info *k)
{
    for (int32_t i = 0; i < c->n_keys; i++)
        if (strcmp(c->keys[i].id, k->id) == 0)
            return &c->keys[i];
    if (c->n_keys >= MAX_KEY_STATES) {
        /* Reuse the state of a key with nothing running (its window restarts). */
        for (int32_t i = 0; i < c->n_keys; i++)
            if (c->keys[i].running == 0) {
                memset(&c->keys[i], 0, sizeof c->keys[i]);
                snprintf(c->keys[i].id, sizeof c->keys[i].id, "%s", k->id);
                c->keys[i].handle = ++c->next_handle;
                return &c->keys[i];
            }
        return NULL;
    }
    key_state *ks = &c->keys[c->n_keys++];
    memset(ks, 0, sizeof *ks);
    snprintf(ks->id, sizeof ks->id, "%s", k->id);
    ks->handle = ++c->next_handle;
    return ks;
}

/* Bearer auth; on failure the reply is sent and false returned. */
static bool authenticate(ig_coord *c, struct evhttp_request *req, int endpoint, ig_coord_key_info *key)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7]) {
        reply_error(c, req, endpoint, 401, "invalid_request_error", "missing_api_key", NULL,
                    "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.");
        return false;
    }
    const char *k = auth + 7;
    while (*k == ' ')
        k++;
    ig_err err;
    ig_err_clear(&err);
    ig_code rc = ig_coord_key_verify(c->store, k, key, &err);
    if (rc == IG_ERR_AUTH) {
        reply_error(c, req, endpoint, 401, "invalid_request_error", "invalid_api_key", NULL, err.msg);
        return false;
    }
    if (rc != IG_OK) {
        reply_error(c, req, endpoint, 500, "server_error", NULL, NULL, "the key store failed");
        ig_net_logf(IG_LOG_ERROR, "key_verify_failed", "%s", err.msg);
        return false;
    }
    return true;
}

static void too_many(ig_coord *c, struct evhttp_request *req, int endpoint, int retry_after,
                     const char *msg)
{
    char ra[16];
    snprintf(ra, sizeof ra, "%d", retry_after < 1 ? 1 : retry_after);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
    c->m.rejected_429++;
    reply_error(c, req, endpoint, 429, "rate_limit_error", "rate_limit_exceeded", NULL, msg);
}

/* Rate (fixed one-minute windows) and concurrency limits of a key. */
static bool within_limits(ig_coord *c, struct evhttp_request *req, int endpoint,
                          const ig_coord_key_info *key, key_state *ks)
{
    int64_t now = coord_now_ms();
    if (key->max_concurrent > 0 && ks->running >= key->max_concurrent) {
        char msg[160];
        snprintf(msg, sizeof msg, "Too many concurrent requests for this key: the limit is %d at once",
                 key->max_concurrent);
        too_many(c, req, endpoint, 1, msg);
        return false;
    }
    if (key->rate_per_min > 0) {
        if (ks->window_start_ms == 0 || now - ks->window_start_ms >= 60000) {
            ks->window_start_ms = now;
            ks->window_count = 0;
        }
        if (ks->window_count >= key->rate_per_min) {
            int retry = (int)((ks->window_start_ms + 60000 - now + 999) / 1000);
            char msg[160];
            snprintf(msg, sizeof msg, "Rate limit reached for this key: %d requests per minute",
                     key->rate_per_min);
            too_many(c, req, endpoint, retry, msg);
            return false;
        }
        ks->window_count++;
    }
    return true;
}

static void handle_models(ig_coord *c, struct evhttp_request *req, const char *path)
{
    ig_coord_key_info key;
    if (!authenticate(c, req, EP_MODELS, &key))
        return;
    /* models the connected nodes serve */
    json_t *data = json_array();
    for (node_conn *n = c->nodes; n; n = n->next) {
        if (n->state != NODE_READY)
            continue;
        for (int32_t i = 0; i < n->n_models; i++) {
            bool dup = false;
            size_t k;
            json_t *m;
            json_array_foreach(data, k, m)
            {
                if (strcmp(json_string_value(json_object_get(m, "id")), n->models[i]) == 0)
                    dup = true;
            }
            if (!dup)
                json_array_append_new(data, json_pack("{s:s,s:s,s:I,s:s}", "id", n->models[i], "object",
                                                      "model", "created", (json_int_t)(c->started_ms / 1000),
                                                      "owned_by", n->cloud ? "idlegrid-cloud" : "idlegrid-edge"));
        }
    }
    json_t *out;
    const char *one = path[10] == '/' ? path + 11 : NULL; /* "/v1/models/ID" */
    if (one) {
        out = NULL;
        size_t k;
        json_t *m;
        json_array_foreach(data, k, m)
        {
            if (strcmp(json_string_value(json_object_get(m, "id")), one) == 0)
                out = json_incref(m);
        }
        json_decref(data);
        if (!out) {
            char msg[200];
            snprintf(msg, sizeof msg, "The model '%.100s' does not exist or no connected node serves it", one);
            reply_error(c, req, EP_MODELS, 404, "invalid_request_error", "model_not_found", "model", msg);
            return;
        }
    } else {
        out = json_pack("{s:s,s:o}", "object", "list", "data", data);
    }
    char *s = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    send_json(req, 200, s);
    free(s);
    metrics_request(c, EP_MODELS, 200);
}

static void handle_generate(ig_coord *c, struct evhttp_request *req, ig_coord_kind kind)
{
    int ep = kind == IG_COORD_CHAT ? EP_CHAT : EP_COMPLETIONS;
    ig_coord_key_info key;
    if (!authenticate(c, req, ep, &key))
        return;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > IG_COORD_MAX_BODY) {
        char msg[160];
        snprintf(msg, sizeof msg, "Request body is %zu bytes; the limit is %u bytes", len, IG_COORD_MAX_BODY);
        reply_error(c, req, ep, 413, "invalid_request_error", "request_too_large", NULL, msg);
        return;
    }
    const char *body = len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
    ig_coord_request r;
    ig_coord_api_error e;
    if (!ig_coord_request_parse(kind, body, len, &r, &e)) {
        coord_send_error(req, &e);
        metrics_request(c, ep, e.status);
        return;
    }
    if (!coord_model_known(c, r.model)) {
        char msg[200];
        snprintf(msg, sizeof msg, "The model '%s' does not exist or no connected node serves it", r.model);
        ig_coord_request_free(&r);
        reply_error(c, req, ep, 404, "invalid_request_error", "model_not_found", "model", msg);
        return;
    }
    key_state *ks = coord_key_state(c, &key);
    if (!ks) {
        ig_coord_request_free(&r);
        too_many(c, req, ep, 1, "Too many API keys active at once");
        return;
    }
    if (!within_limits(c, req, ep, &key, ks)) {
        ig_coord_request_free(&r);
        return;
    }
    ig_job *j = job_new(c, &r, &key, ks, req);
    if (!j) {
        ig_coord_request_free(&r);
        reply_error(c, req, ep, 500, "server_error", NULL, NULL, "out of memory");
        return;
    }
    job_submit(j);
}

/* Tokens go out as small SSE chunks: without TCP_NODELAY, Nagle's algorithm would hold
 * each one until the previous is acknowledged (up to ~40 ms per token). */
static void no_delay(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

static void handle(struct evhttp_request *req, void *arg)
{
    ig_coord *c = arg;
    no_delay(req);
    const char *uri = evhttp_request_get_uri(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    char path[256];
    size_t n = 0;
    if (uri)
        while (uri[n] && uri[n] != '?' && n < sizeof path - 1) {
            path[n] = uri[n];
            n++;
        }
    path[n] = '\0';
    while (n > 1 && path[n - 1] == '/')
        path[--n] = '\0';
    bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    bool post = cmd == EVHTTP_REQ_POST;
    if (strcmp(path, "/healthz") == 0 && get) {
        char body[160];
        snprintf(body, sizeof body, "{\"status\":\"ok\",\"nodes\":%d,\"jobs\":%d,\"queued\":%zu}", c->n_ready,
                 c->n_jobs, c->queue->n);
        send_json(req, 200, body);
        metrics_request(c, EP_HEALTH, 200);
    } else if (strcmp(path, "/metrics") == 0 && get) {
        char *text = metrics_render(c);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; version=0.0.4");
        struct evbuffer *b = evbuffer_new();
        if (text)
            evbuffer_add(b, text, strlen(text));
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
        free(text);
        metrics_request(c, EP_METRICS, 200);
    } else if ((strcmp(path, "/v1/models") == 0 || strncmp(path, "/v1/models/", 11) == 0) && get) {
        handle_models(c, req, path);
    } else if (strcmp(path, "/v1/completions") == 0 && post) {
        handle_generate(c, req, IG_COORD_COMPLETION);
    } else if (strcmp(path, "/v1/chat/completions") == 0 && post) {
        handle_generate(c, req, IG_COORD_CHAT);
    } else if (strcmp(path, "/v1/completions") == 0 || strcmp(path, "/v1/chat/completions") == 0 ||
               strcmp(path, "/v1/models") == 0 || strcmp(path, "/healthz") == 0 ||
               strcmp(path, "/metrics") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          strncmp(path, "/v1/c", 5) == 0 ? "POST" : "GET");
        reply_error(c, req, EP_OTHER, 405, "invalid_request_error", "method_not_allowed", NULL,
                    "Method not allowed for this URL");
    } else {
        char msg[320];
        snprintf(msg, sizeof msg, "Unknown request URL: %.200s", path);
        reply_error(c, req, EP_OTHER, 404, "invalid_request_error", "unknown_url", NULL, msg);
    }
}

ig_code coord_api_start(ig_coord *c, ig_err *err)
{
    c->http = evhttp_new(c->base);
    if (!c->http)
        return ig_err_set(err, IG_ERR_NOMEM, "cannot create the HTTP server");
    evhttp_set_max_body_size(c->http, TRANSPORT_MAX_BODY);
    evhttp_set_max_headers_size(c->http, MAX_HEADERS_BYTES);
    evhttp_set_timeout(c->http, 300);
    evhttp_set_allowed_methods(c->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(c->http, handle, c);
    /* Our own listening socket: libevent's bind uses a backlog of 128, and a burst of
     * buyers connecting at once would see dropped SYNs and second-long retries. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", c->cfg.api_port);
    int gai = getaddrinfo(c->cfg.api_host, port_s, &hints, &ai);
    if (gai != 0 || !ai)
        return ig_err_set(err, IG_ERR_IO, "API address %s: %s", c->cfg.api_host, gai_strerror(gai));
    evutil_socket_t lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(lfd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(lfd, API_BACKLOG) != 0) {
        int e = errno;
        if (lfd >= 0)
            close(lfd);
        freeaddrinfo(ai);
        return ig_err_set(err, IG_ERR_IO, "cannot listen for the API on %s:%d: %s", c->cfg.api_host,
                          c->cfg.api_port, strerror(e));
    }
    freeaddrinfo(ai);
    c->http_sock = evhttp_accept_socket_with_handle(c->http, lfd);
    if (!c->http_sock) {
        close(lfd);
        return ig_err_set(err, IG_ERR_IO, "cannot serve the API on %s:%d", c->cfg.api_host, c->cfg.api_port);
    }
    evutil_socket_t fd = evhttp_bound_socket_get_fd(c->http_sock);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            c->api_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            c->api_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return IG_OK;
}

void coord_api_stop(ig_coord *c)
{
    if (c->http)
        evhttp_free(c->http);
    c->http = NULL;
}
