/*
 * cmd_up.c — `idlegrid up`: a whole grid on one machine for a first run. The
 * coordinator runs in this process; three edge nodes (models/edge.gguf) and one cloud
 * node (models/cloud.gguf) run as child processes of this same binary, enrolled with
 * tokens created here and dialing the coordinator over loopback. Once they are
 * connected it prints the API URL and a demo key. A node process that dies is started
 * again (after 1 s, doubling up to 30 s while it keeps dying within a minute of its
 * start); its key is enrolled by then, so it rejoins as the same node. Ctrl-C or
 * SIGTERM stops the children, reaps them and shuts the coordinator down.
 */
#include "cli.h"
#include "coord.h"
#include "net.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UP_EDGE_NODES 3
#define UP_NODES (UP_EDGE_NODES + 1)
#define UP_READY_TIMEOUT_MS 120000
/* Restart delays: UP_RESTART_MIN_MS doubling to UP_RESTART_MAX_MS while a node dies
 * within UP_RESTART_STABLE_MS of its start; a node that ran longer starts again at once
 * (after the minimum). */
#define UP_RESTART_MIN_MS 1000
#define UP_RESTART_MAX_MS 30000
#define UP_RESTART_STABLE_MS 60000

typedef struct {
    char name[32];
    pid_t pid;
    bool exited;
    /* how to start it again */
    char model[PATH_MAX + 16];
    const char *cls;
    char node_dir[PATH_MAX + 64];
    char log_path[PATH_MAX + 64];
    char token[IG_COORD_TOKEN_MAX];
    int64_t started_ms;
    int64_t restart_at_ms; /* when exited: when to start it again (0: not to) */
    int quick_deaths;      /* deaths in a row within UP_RESTART_STABLE_MS of a start */
    int restarts;
} child;

typedef struct {
    struct event_base *base;
    ig_coord *coord;
    child children[UP_NODES];
    int n_children;
    bool announced;
    int64_t started_ms;
    const char *key;
    int port;
    struct event *tick;
    char coord_addr[64];
    int threads, slots;
} up_state;

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* --models, else ./models, else <dir of the binary>/../models. */
static bool find_models(const char *flag, char *out, size_t cap)
{
    char probe[PATH_MAX + 32];
    if (flag) {
        snprintf(out, cap, "%s", flag);
        return true;
    }
    if (file_exists("models/edge.gguf")) {
        snprintf(out, cap, "models");
        return true;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(probe, sizeof probe, "%s/../models/edge.gguf", exe);
            if (file_exists(probe)) {
                probe[strlen(probe) - strlen("/edge.gguf")] = '\0';
                snprintf(out, cap, "%s", probe);
                return true;
            }
        }
    }
    return false;
}

static pid_t spawn_node(const char *name, const char *model, const char *cls, const char *coord_addr,
                        const char *node_dir, const char *token, const char *log_path, int threads,
                        int slots)
{
    char threads_s[16], slots_s[16];
    snprintf(threads_s, sizeof threads_s, "%d", threads);
    snprintf(slots_s, sizeof slots_s, "%d", slots);
    const char *args[32];
    int a = 0;
    args[a++] = "idlegrid";
    args[a++] = "node";
    args[a++] = "--coordinator";
    args[a++] = coord_addr;
    args[a++] = "--model";
    args[a++] = model;
    args[a++] = "--class";
    args[a++] = cls;
    args[a++] = "--data";
    args[a++] = node_dir;
    args[a++] = "--enroll-token";
    args[a++] = token;
    args[a++] = "--name";
    args[a++] = name;
    if (threads > 0) {
        args[a++] = "--threads";
        args[a++] = threads_s;
    }
    if (slots > 0) {
        args[a++] = "--slots";
        args[a++] = slots_s;
    }
    args[a] = NULL;
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* child: dies with its parent, logs to its own file */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1)
        _exit(1);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    signal(SIGPIPE, SIG_DFL);
    execv("/proc/self/exe", (char *const *)args);
    fprintf(stderr, "idlegrid up: cannot start node: %s\n", strerror(errno));
    _exit(127);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    up_state *u = arg;
    fprintf(stderr, "\nidlegrid up: signal %d, stopping\n", (int)sig);
    event_base_loopexit(u->base, NULL);
}

/* Reaps exited children. While the grid runs (`restart`), each one is scheduled to
 * start again; while it stops, they are only counted. */
static void reap(up_state *u, bool restart)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < u->n_children; i++) {
            child *ch = &u->children[i];
            if (ch->pid != pid)
                continue;
            ch->exited = true;
            if (!restart)
                continue;
            int64_t now = ig_net_now_ms();
            ch->quick_deaths = now - ch->started_ms < UP_RESTART_STABLE_MS ? ch->quick_deaths + 1 : 1;
            int64_t delay = UP_RESTART_MIN_MS;
            for (int k = 1; k < ch->quick_deaths && delay < UP_RESTART_MAX_MS; k++)
                delay *= 2;
            if (delay > UP_RESTART_MAX_MS)
                delay = UP_RESTART_MAX_MS;
            ch->restart_at_ms = now + delay;
            fprintf(stderr, "idlegrid up: node %s (pid %d) exited (%s %d); restarting in %.0f s "
                            "(log: %s)\n",
                    ch->name, (int)pid, WIFSIGNALED(status) ? "signal" : "status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), delay / 1000.0,
                    ch->log_path);
        }
    }
}

static pid_t start_child(up_state *u, child *ch)
{
    ch->started_ms = ig_net_now_ms();
    ch->exited = false;
    ch->restart_at_ms = 0;
    ch->pid = spawn_node(ch->name, ch->model, ch->cls, u->coord_addr, ch->node_dir, ch->token,
                         ch->log_path, u->threads, u->slots);
    if (ch->pid < 0)
        ch->exited = true;
    return ch->pid;
}

static void restart_due(up_state *u)
{
    int64_t now = ig_net_now_ms();
    for (int i = 0; i < u->n_children; i++) {
        child *ch = &u->children[i];
        if (!ch->exited || !ch->restart_at_ms || now < ch->restart_at_ms)
            continue;
        if (start_child(u, ch) < 0) {
            fprintf(stderr, "idlegrid up: cannot start node %s again: %s; retrying\n", ch->name,
                    strerror(errno));
            ch->restart_at_ms = now + UP_RESTART_MAX_MS;
            continue;
        }
        ch->restarts++;
        fprintf(stderr, "idlegrid up: node %s started again (pid %d, restart %d)\n", ch->name,
                (int)ch->pid, ch->restarts);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    up_state *u = arg;
    reap(u, true);
    restart_due(u);
    if (u->announced)
        return;
    int connected = ig_coord_connected_nodes(u->coord);
    bool timeout = ig_net_now_ms() - u->started_ms > UP_READY_TIMEOUT_MS;
    if (connected >= u->n_children || timeout) {
        u->announced = true;
        if (connected < u->n_children)
            fprintf(stderr, "idlegrid up: only %d of %d nodes connected (see the logs in the data "
                            "directory)\n", connected, u->n_children);
        printf("idlegrid is up: %d nodes connected (%d edge, 1 cloud)\n", connected, UP_EDGE_NODES);
        printf("  API  http://127.0.0.1:%d/v1\n", u->port);
        printf("  key  %s\n", u->key);
        printf("  try  curl http://127.0.0.1:%d/v1/chat/completions -H 'Authorization: Bearer %s' "
               "-H 'Content-Type: application/json' -d '{\"model\":\"edge\",\"messages\":[{\"role\":"
               "\"user\",\"content\":\"Hello\"}]}'\n", u->port, u->key);
        printf("Ctrl-C stops the grid.\n");
        fflush(stdout);
    }
}

static void stop_children(up_state *u)
{
    for (int i = 0; i < u->n_children; i++)
        if (!u->children[i].exited && u->children[i].pid > 0)
            kill(u->children[i].pid, SIGTERM);
    /* Give them 5 s to leave cleanly, then insist. */
    for (int waited = 0; waited < 500; waited++) {
        reap(u, false);
        bool all = true;
        for (int i = 0; i < u->n_children; i++)
            if (!u->children[i].exited)
                all = false;
        if (all)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < u->n_children; i++)
        if (!u->children[i].exited) {
            kill(u->children[i].pid, SIGKILL);
            waitpid(u->children[i].pid, NULL, 0);
            u->children[i].exited = true;
        }
}

int ig_cmd_up(int argc, char **argv)
{
    int port = 8080;
    const char *key_flag = NULL;
    const char *data = "./idlegrid-data";
    const char *models_flag = NULL;
    int threads = 1, slots = 0;
    const ig_flag flags[] = {
        {"port", 'p', IG_FLAG_INT, &port, "P", "API port on 127.0.0.1 (default 8080; 0 = any free port)"},
        {"key", 'k', IG_FLAG_STRING, &key_flag, "KEY", "the demo API key to accept (default: a new one)"},
        {"data", 'd', IG_FLAG_STRING, &data, "DIR", "state directory (default ./idlegrid-data)"},
        {"models", 'm', IG_FLAG_STRING, &models_flag, "DIR", "where edge.gguf and cloud.gguf are (default ./models, then <binary>/../models)"},
        {"threads", 't', IG_FLAG_INT, &threads, "N", "engine threads per node (default 1)"},
        {"slots", 0, IG_FLAG_INT, &slots, "N", "jobs each node runs at once (default: the node's)"},
    };
    const ig_cli_spec spec = {
        "idlegrid up [--port P] [--key KEY] [--data DIR] [--models DIR]",
        "Runs a whole grid on this machine: the coordinator, three edge nodes with "
        "models/edge.gguf and one cloud node with models/cloud.gguf on loopback. Prints the "
        "API URL and a demo key once the nodes are connected; Ctrl-C stops everything.",
        flags, (int)(sizeof flags / sizeof flags[0]), 0, 0};
    bool done;
    int rc = ig_cli_parse(&spec, argc, argv, NULL, NULL, &done);
    if (rc || done)
        return rc;
    if (port < 0 || port > 65535 || threads < 0 || slots < 0) {
        ig_cli_fail("up: --port must be 0..65535, --threads and --slots not negative");
        return 2;
    }
    char models[PATH_MAX];
    if (!find_models(models_flag, models, sizeof models)) {
        ig_cli_fail("up: cannot find models/edge.gguf (looked in ./models and next to the binary; "
                    "use --models DIR)");
        return 1;
    }
    char edge_path[PATH_MAX + 16], cloud_path[PATH_MAX + 16];
    snprintf(edge_path, sizeof edge_path, "%s/edge.gguf", models);
    snprintf(cloud_path, sizeof cloud_path, "%s/cloud.gguf", models);
    if (!file_exists(edge_path) || !file_exists(cloud_path)) {
        ig_cli_fail("up: %s needs edge.gguf and cloud.gguf", models);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    up_state u;
    memset(&u, 0, sizeof u);
    u.base = event_base_new();
    if (!u.base) {
        ig_cli_fail("up: cannot create the event loop");
        return 1;
    }
    ig_coord_config cfg = {.data_dir = data, .api_host = "127.0.0.1", .api_port = port,
                           .node_host = "127.0.0.1", .node_port = 0};
    ig_err err;
    ig_err_clear(&err);
    u.coord = ig_coord_new(u.base, &cfg, &err);
    if (!u.coord) {
        ig_cli_fail("up: %s", err.msg);
        event_base_free(u.base);
        return 1;
    }
    u.port = ig_coord_api_port(u.coord);
    ig_coord_store *store = ig_coord_get_store(u.coord);
    char key[IG_COORD_KEY_MAX];
    if (ig_coord_key_create(store, "demo (idlegrid up)", 0, 256, key_flag, key, NULL, &err) != IG_OK) {
        ig_cli_fail("up: %s", err.msg);
        ig_coord_free(u.coord);
        event_base_free(u.base);
        return 1;
    }
    u.key = key;
    snprintf(u.coord_addr, sizeof u.coord_addr, "127.0.0.1:%d", ig_coord_node_port(u.coord));
    u.threads = threads;
    u.slots = slots;
    char nodes_dir[PATH_MAX], logs_dir[PATH_MAX];
    snprintf(nodes_dir, sizeof nodes_dir, "%s/nodes", data);
    snprintf(logs_dir, sizeof logs_dir, "%s/logs", data);
    mkdir(nodes_dir, 0700);
    mkdir(logs_dir, 0700);
    u.started_ms = ig_net_now_ms();
    for (int i = 0; i < UP_NODES; i++) {
        child *ch = &u.children[u.n_children];
        bool cloud = i == UP_EDGE_NODES;
        char name[sizeof ch->name];
        if (cloud)
            snprintf(name, sizeof name, "cloud-1");
        else
            snprintf(name, sizeof name, "edge-%d", i + 1);
        memcpy(ch->name, name, sizeof name);
        /* The token enrols the node's key on its first connection; a restarted node is
         * enrolled by then and is let in by its key (the spent token is ignored). */
        if (ig_coord_enroll_token_create(store, ch->token, &err) != IG_OK) {
            ig_cli_fail("up: %s", err.msg);
            break;
        }
        snprintf(ch->model, sizeof ch->model, "%s", cloud ? cloud_path : edge_path);
        ch->cls = cloud ? "cloud" : "edge";
        snprintf(ch->node_dir, sizeof ch->node_dir, "%s/%s", nodes_dir, name);
        snprintf(ch->log_path, sizeof ch->log_path, "%s/%s.log", logs_dir, name);
        if (start_child(&u, ch) < 0) {
            ig_cli_fail("up: cannot start node %s: %s", ch->name, strerror(errno));
            break;
        }
        u.n_children++;
    }
    fprintf(stderr, "idlegrid up: coordinator on 127.0.0.1:%d, starting %d nodes (logs in %s)\n",
            u.port, u.n_children, logs_dir);
    struct event *sigint = evsignal_new(u.base, SIGINT, on_signal, &u);
    struct event *sigterm = evsignal_new(u.base, SIGTERM, on_signal, &u);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    u.tick = event_new(u.base, -1, EV_PERSIST, on_tick, &u);
    struct timeval tv = {0, 100 * 1000};
    event_add(u.tick, &tv);
    if (u.n_children == UP_NODES)
        event_base_dispatch(u.base);
    stop_children(&u);
    ig_coord_free(u.coord);
    event_free(u.tick);
    event_free(sigint);
    event_free(sigterm);
    event_base_free(u.base);
    return u.n_children == UP_NODES ? 0 : 1;
}
