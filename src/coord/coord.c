/*
 * coord.c — the coordinator service's lifecycle: opens the store, binds the buyer
 * API and the node listener on the caller's event_base, and tears everything down in
 * the order that leaves no buyer without an answer (jobs first, then nodes, then
 * the HTTP server and the store).
 */
#include "coord_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t coord_now_ms(void)
{
    return ig_net_now_ms();
}

ig_coord *ig_coord_new(struct event_base *base, const ig_coord_config *cfg, ig_err *err)
{
    ig_coord *c = calloc(1, sizeof *c);
    if (!c) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->base = base;
    c->cfg = *cfg;
    if (!c->cfg.api_host)
        c->cfg.api_host = "127.0.0.1";
    if (!c->cfg.node_host)
        c->cfg.node_host = "127.0.0.1";
    if (c->cfg.heartbeat_ms <= 0)
        c->cfg.heartbeat_ms = 2000;
    if (c->cfg.default_deadline_ms <= 0)
        c->cfg.default_deadline_ms = 120000;
    if (c->cfg.max_pending <= 0 || c->cfg.max_pending > IG_SCHED_MAX_PENDING)
        c->cfg.max_pending = 1024;
    c->started_ms = (int64_t)time(NULL) * 1000;
    c->queue = malloc(sizeof *c->queue);
    c->keys = calloc(MAX_KEY_STATES, sizeof *c->keys);
    c->job_buckets = calloc(JOB_BUCKETS, sizeof *c->job_buckets);
    if (!c->queue || !c->keys || !c->job_buckets) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        ig_coord_free(c);
        return NULL;
    }
    ig_sched_queue_init(c->queue);
    if (ig_net_crypto_init(err) != IG_OK) {
        ig_coord_free(c);
        return NULL;
    }
    c->store = ig_coord_store_open(c->cfg.data_dir, err);
    if (!c->store || coord_api_start(c, err) != IG_OK || coord_nodes_start(c, err) != IG_OK) {
        ig_coord_free(c);
        return NULL;
    }
    return c;
}

void ig_coord_free(ig_coord *c)
{
    if (!c)
        return;
    jobs_free_all(c);
    /* Let those final replies (error events, 503s) reach their buyers before the
     * connections close: a few non-blocking turns of the loop flush them. Called after
     * the loop has stopped, never from inside one of its callbacks. */
    if (c->http)
        for (int i = 0; i < 8; i++)
            event_base_loop(c->base, EVLOOP_NONBLOCK);
    jobs_free_all(c); /* any request that arrived meanwhile */
    coord_nodes_stop(c);
    coord_api_stop(c);
    if (c->pump_ev)
        event_free(c->pump_ev);
    if (c->tls)
        ig_net_tls_free(c->tls);
    ig_coord_store_close(c->store);
    free(c->snapshot);
    free(c->queue);
    free(c->keys);
    free(c->job_buckets);
    free(c);
}

int ig_coord_api_port(const ig_coord *c) { return c->api_port; }
int ig_coord_node_port(const ig_coord *c) { return c->listener ? ig_net_listener_port(c->listener) : 0; }
ig_coord_store *ig_coord_get_store(ig_coord *c) { return c->store; }
int ig_coord_connected_nodes(const ig_coord *c) { return c->n_ready; }
