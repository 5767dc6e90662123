/*
 * cmd_node.c — `idlegrid node`: run a node agent (src/node) against a coordinator.
 */
#include "cli.h"
#include "node.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

int ig_cmd_node(int argc, char **argv)
{
    const char *coordinator = NULL, *model = NULL, *cls = "edge", *data = "./idlegrid-node";
    const char *token = NULL, *token_file = NULL, *name = NULL, *tls_ca = NULL;
    int slots = 0, threads = 0, n_ctx = 0, count = 1, backoff_min = 0, backoff_max = 0;
    int flush_ms = IG_NODE_FLUSH_MS;
    float rate = 50;
    bool synthetic = false, tls = false, tls_insecure = false;
    const ig_flag flags[] = {
        {"coordinator", 'c', IG_FLAG_STRING, &coordinator, "HOST:PORT", "the coordinator's node-link address"},
        {"model", 'm', IG_FLAG_STRING, &model, "FILE", "the GGUF model to serve (its stem is the model id)"},
        {"class", 0, IG_FLAG_STRING, &cls, "edge|cloud", "the tier this node serves (default edge)"},
        {"slots", 0, IG_FLAG_INT, &slots, "N", "concurrent jobs, one engine context each (default 1; synthetic 4)"},
        {"threads", 't', IG_FLAG_INT, &threads, "N", "engine threads per slot (default: CPUs / slots)"},
        {"ctx", 0, IG_FLAG_INT, &n_ctx, "N", "context length per slot (default: the model's, at most 4096)"},
        {"flush-ms", 0, IG_FLAG_INT, &flush_ms, "MS", "send a job's later tokens together, one frame per MS (default 50; 0: every token at once)"},
        {"data", 0, IG_FLAG_STRING, &data, "DIR", "key pair and enrolment record (default ./idlegrid-node)"},
        {"enroll-token", 0, IG_FLAG_STRING, &token, "T", "one-time enrolment token (first start)"},
        {"enroll-token-file", 0, IG_FLAG_STRING, &token_file, "FILE", "one token per line, one per simulated node (--count)"},
        {"name", 0, IG_FLAG_STRING, &name, "NAME", "this node's name (default: the host name)"},
        {"tls", 0, IG_FLAG_BOOL, &tls, NULL, "dial the coordinator over TLS"},
        {"tls-ca", 0, IG_FLAG_STRING, &tls_ca, "FILE", "verify the coordinator's certificate with this CA"},
        {"tls-insecure", 0, IG_FLAG_BOOL, &tls_insecure, NULL, "TLS without certificate checks (loopback only)"},
        {"synthetic", 0, IG_FLAG_BOOL, &synthetic, NULL, "load-test node: no model, tokens at --rate"},
        {"rate", 0, IG_FLAG_FLOAT, &rate, "TOK_PER_S", "synthetic tokens per second per job (default 50)"},
        {"count", 0, IG_FLAG_INT, &count, "N", "synthetic: simulated nodes in this process (default 1)"},
        {"reconnect-min-ms", 0, IG_FLAG_INT, &backoff_min, "MS", "first reconnect delay (default 500)"},
        {"reconnect-max-ms", 0, IG_FLAG_INT, &backoff_max, "MS", "longest reconnect delay (default 30000)"},
    };
    const ig_cli_spec spec = {
        "idlegrid node --coordinator HOST:PORT --model FILE [options]",
        "Runs a node agent: loads the model, measures its decode speed, dials the\n"
        "coordinator, authenticates with its key (created in --data on first start and\n"
        "enrolled with --enroll-token), serves jobs and reconnects when the link drops.\n"
        "Logs are JSON lines on stderr. SIGTERM/SIGINT hand running jobs back and exit.",
        flags, (int)(sizeof flags / sizeof flags[0]), 0, 0};
    bool done = false;
    int rc = ig_cli_parse(&spec, argc, argv, NULL, NULL, &done);
    if (rc || done)
        return rc;
    if (!coordinator) {
        ig_cli_fail("node: --coordinator HOST:PORT is required");
        return 2;
    }
    if (!model && !synthetic) {
        ig_cli_fail("node: --model FILE is required (or --synthetic for load tests)");
        return 2;
    }
    if (strcmp(cls, "edge") != 0 && strcmp(cls, "cloud") != 0) {
        ig_cli_fail("node: --class must be edge or cloud, not '%s'", cls);
        return 2;
    }
    if (slots < 0 || threads < 0 || n_ctx < 0 || count < 1 || backoff_min < 0 || backoff_max < 0) {
        ig_cli_fail("node: --slots, --threads, --ctx, --reconnect-*-ms must be positive, --count at least 1");
        return 2;
    }
    if (flush_ms < 0 || flush_ms > 1000) {
        ig_cli_fail("node: --flush-ms must be in 0..1000, not %d", flush_ms);
        return 2;
    }
    if (count > 1 && !synthetic) {
        ig_cli_fail("node: --count needs --synthetic");
        return 2;
    }
    if (!(rate > 0) || rate > 1e6) {
        ig_cli_fail("node: --rate must be in (0, 1000000]");
        return 2;
    }
    if ((tls_ca || tls_insecure) && !tls) {
        ig_cli_fail("node: --tls-ca and --tls-insecure need --tls");
        return 2;
    }
    /* A coordinator that goes away mid-write must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    ig_node_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.coordinator = coordinator;
    cfg.model_path = model;
    cfg.cls = strcmp(cls, "cloud") == 0 ? IG_NODE_CLASS_CLOUD : IG_NODE_CLASS_EDGE;
    cfg.slots = slots;
    cfg.threads = threads;
    cfg.n_ctx = n_ctx;
    cfg.flush_ms = flush_ms > 0 ? flush_ms : -1;
    cfg.data_dir = data;
    cfg.enroll_token = token;
    cfg.enroll_token_file = token_file;
    cfg.name = name;
    cfg.synthetic = synthetic;
    cfg.rate = rate;
    cfg.count = count;
    cfg.tls = tls;
    cfg.tls_ca = tls_ca;
    cfg.tls_insecure = tls_insecure;
    cfg.backoff_min_ms = backoff_min;
    cfg.backoff_max_ms = backoff_max;
    ig_err err;
    ig_err_clear(&err);
    ig_node *n = ig_node_new(&cfg, &err);
    if (!n) {
        ig_cli_fail("node: %s", err.msg);
        return 1;
    }
    ig_code code = ig_node_run(n, &err);
    ig_node_free(n);
    if (code != IG_OK) {
        ig_cli_fail("node: %s", err.msg);
        return 1;
    }
    return 0;
}
