/* bench/grid_load.c — the buyer side of the grid benchmarks (bench/grid_bench.sh).
 *
 * Opens N concurrent streaming /v1/completions requests against a coordinator
 * (libevent's HTTP client, one connection per stream, loopback) and times every
 * server-sent event as it arrives. Repeats that R times (rounds run one after another).
 *
 * Two uses:
 *  - gateway overhead: --streams 1 --rounds R against a node serving a real model; per
 *    round it reports the time to first token (from the moment the request is issued)
 *    and the decode rate between the first and the last token event;
 *  - coordinator capacity: --streams 2000 against `idlegrid node --synthetic` nodes.
 *    A synthetic node emits token k of a job (0-based) at start + (k+1)/rate (the
 *    schedule in docs/PROTOCOL.md), so with --rate the client computes each token's
 *    lateness against that schedule: lateness_k = arrival_k - (k+1)/rate, measured from
 *    the moment the request was issued. Per stream the smallest lateness is the
 *    fastest path that stream saw (dispatch + the node's tick + one hop through the
 *    coordinator); "added" latency is each token's lateness minus that minimum.
 *    Synthetic tokens are single words with one leading space, so the tokens an event
 *    carries are counted by the spaces in its text (--count spaces).
 *
 * With --stdin (gateway benchmark), a round starts for each line read on stdin, whose
 * number is that round's --max-tokens, and prints its run object on one line as soon as
 * it ends: the benchmark alternates these with runs of the engine alone, and a client
 * that stays up keeps its own first-request costs (page faults, lazy binding, on a
 * VM several ms) out of the runs it times.
 *
 * Output: one JSON object on stdout. Limits: at most 20000 streams, 1000 rounds,
 * 1 MiB of unparsed event text per stream. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STREAMS 20000
#define MAX_ROUNDS 1000
#define MAX_PENDING (1u << 20)

typedef struct {
    struct evhttp_connection *conn;
    int round;
    double t_req, t_first, t_last; /* seconds, CLOCK_MONOTONIC */
    long tokens, events, multi;
    int status;
    bool done, ok, saw_done_marker;
    long usage_tokens;
    char *pending; /* event text not yet terminated by a blank line */
    size_t n_pending, cap_pending;
    double *late;    /* per-token lateness against the schedule, seconds */
    double *late_at; /* when that token arrived */
    long n_late, cap_late;
    char err[160];
} stream;

static struct {
    const char *host, *key, *model, *prompt, *path;
    int port, streams, rounds, max_tokens, ramp_ms, timeout_s;
    bool from_stdin;
    double rate;
    bool count_spaces;
} opt;

static struct event_base *base;
static stream *S;
static int n_open, n_started, cur_round;
static struct event *ramp_ev, *timeout_ev;
static FILE *dump; /* --dump: one line per token event (stream, first index, count, ms) */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "grid_load: %s\n", what);
    exit(2);
}

/* Counts the tokens one SSE data payload carries; 0 for the final/usage/[DONE] events. */
static long event_tokens(stream *s, const char *data, size_t len)
{
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        s->saw_done_marker = true;
        return 0;
    }
    const char *u = strstr(data, "\"completion_tokens\":");
    if (u)
        s->usage_tokens = strtol(u + 20, NULL, 10);
    if (strstr(data, "\"error\"") && !strstr(data, "\"choices\"")) {
        snprintf(s->err, sizeof s->err, "error event: %.120s", data);
        return 0;
    }
    const char *t = strstr(data, "\"text\":\"");
    if (!t)
        return 0;
    t += 8;
    long n = 0;
    bool any = false;
    for (; *t && *t != '"'; t++) {
        if (*t == '\\' && t[1]) {
            t++;
            any = true;
            continue;
        }
        any = true;
        if (*t == ' ')
            n++;
    }
    if (!opt.count_spaces)
        return any ? 1 : 0;
    return n;
}

static void add_late(stream *s, double v, double at)
{
    if (s->n_late == s->cap_late) {
        s->cap_late = s->cap_late ? s->cap_late * 2 : 256;
        s->late = realloc(s->late, (size_t)s->cap_late * sizeof *s->late);
        s->late_at = realloc(s->late_at, (size_t)s->cap_late * sizeof *s->late_at);
        if (!s->late || !s->late_at)
            die("out of memory");
    }
    s->late_at[s->n_late] = at;
    s->late[s->n_late++] = v;
}

static void on_event(stream *s, const char *data, size_t len, double t)
{
    long k = event_tokens(s, data, len);
    s->events++;
    if (k <= 0)
        return;
    if (s->tokens == 0)
        s->t_first = t;
    s->t_last = t;
    /* one lateness per event, against the schedule of the newest token it carries,
       counted once per token it carries */
    if (opt.rate > 0)
        for (long j = 0; j < k; j++)
            add_late(s, (t - s->t_req) - (double)(s->tokens + k) / opt.rate, t);
    if (k > 1)
        s->multi++;
    if (dump)
        fprintf(dump, "%ld %ld %ld %.3f\n", (long)(s - S), s->tokens, k, (t - s->t_req) * 1e3);
    s->tokens += k;
}

static void on_chunk(struct evhttp_request *req, void *arg)
{
    stream *s = arg;
    double t = now_s();
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (s->n_pending + n + 1 > MAX_PENDING) {
        snprintf(s->err, sizeof s->err, "more than %u bytes without an event end", MAX_PENDING);
        evbuffer_drain(in, n);
        return;
    }
    if (s->n_pending + n + 1 > s->cap_pending) {
        s->cap_pending = (s->n_pending + n + 1) * 2;
        s->pending = realloc(s->pending, s->cap_pending);
        if (!s->pending)
            die("out of memory");
    }
    evbuffer_remove(in, s->pending + s->n_pending, n);
    s->n_pending += n;
    s->pending[s->n_pending] = 0;
    /* every complete event: "data: ...\n\n" */
    char *p = s->pending;
    char *end;
    while ((end = strstr(p, "\n\n")) != NULL) {
        *end = 0;
        if (strncmp(p, "data: ", 6) == 0)
            on_event(s, p + 6, (size_t)(end - p - 6), t);
        p = end + 2;
    }
    size_t rest = s->n_pending - (size_t)(p - s->pending);
    memmove(s->pending, p, rest);
    s->n_pending = rest;
    s->pending[rest] = 0;
}

static void start_stream(int i);

static void finish(stream *s, const char *why)
{
    if (s->done)
        return;
    s->done = true;
    if (why && !s->err[0])
        snprintf(s->err, sizeof s->err, "%s", why);
    s->ok = !s->err[0] && s->status == 200 && s->saw_done_marker && s->tokens > 0;
    n_open--;
    if (n_open == 0 && n_started == opt.streams * (cur_round + 1))
        event_base_loopbreak(base);
}

static void on_done(struct evhttp_request *req, void *arg)
{
    stream *s = arg;
    if (!req || evhttp_request_get_response_code(req) == 0) {
        finish(s, "connection failed, reset or timed out");
        return;
    }
    s->status = evhttp_request_get_response_code(req);
    if (s->status != 200) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        char body[120] = {0};
        evbuffer_copyout(in, body, sizeof body - 1);
        snprintf(s->err, sizeof s->err, "HTTP %d: %s", s->status, body);
    }
    finish(s, NULL);
}

static void start_stream(int i)
{
    stream *s = &S[(size_t)cur_round * (size_t)opt.streams + (size_t)i];
    s->round = cur_round;
    s->conn = evhttp_connection_base_new(base, NULL, opt.host, (unsigned short)opt.port);
    if (!s->conn)
        die("cannot create a connection");
    evhttp_connection_set_timeout(s->conn, opt.timeout_s);
    struct evhttp_request *req = evhttp_request_new(on_done, s);
    if (!req)
        die("cannot create a request");
    evhttp_request_set_chunked_cb(req, on_chunk);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char auth[256], hostport[80];
    snprintf(auth, sizeof auth, "Bearer %s", opt.key);
    snprintf(hostport, sizeof hostport, "%s:%d", opt.host, opt.port);
    evhttp_add_header(h, "Host", hostport);
    evhttp_add_header(h, "Authorization", auth);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Connection", "close");
    char body[8192];
    int n = snprintf(body, sizeof body,
                     "{\"model\":\"%s\",\"prompt\":\"%s\",\"max_tokens\":%d,\"temperature\":0,"
                     "\"seed\":%d,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
                     opt.model, opt.prompt, opt.max_tokens, 1000 + i);
    if (n <= 0 || (size_t)n >= sizeof body)
        die("request body too long");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, (size_t)n);
    n_open++;
    n_started++;
    s->t_req = now_s();
    if (evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, opt.path) != 0)
        finish(s, "evhttp_make_request failed");
}

static int ramp_next;
static double t_ramp_end; /* when the last stream of the round was opened */

/* Starts the round's streams spread over --ramp-ms (all at once when 0). */
static void on_ramp(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int per_tick = opt.ramp_ms > 0 ? (int)ceil((double)opt.streams / (opt.ramp_ms / 10.0)) : opt.streams;
    for (int k = 0; k < per_tick && ramp_next < opt.streams; k++)
        start_stream(ramp_next++);
    if (ramp_next == opt.streams)
        t_ramp_end = now_s();
    if (ramp_next < opt.streams) {
        struct timeval tv = {0, 10000};
        evtimer_add(ramp_ev, &tv);
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fprintf(stderr, "grid_load: run time limit (%d s) reached\n", opt.timeout_s);
    event_base_loopbreak(base);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, long n, double p)
{
    if (n == 0)
        return NAN;
    long i = (long)ceil(p / 100.0 * (double)n) - 1;
    if (i < 0)
        i = 0;
    if (i >= n)
        i = n - 1;
    return v[i];
}

static void print_num(const char *name, double v, const char *sep)
{
    if (isnan(v))
        printf("\"%s\":null%s", name, sep);
    else
        printf("\"%s\":%.4f%s", name, v, sep);
}

/* The run object of round r's first stream (the gateway benchmark's runs). */
static void print_run(int r, const char *sep)
{
    stream *s = &S[(size_t)r * (size_t)opt.streams];
    /* the usage chunk counts every token, also those that released no text */
    long n = s->usage_tokens > 0 ? s->usage_tokens : s->tokens;
    double dec = n > 1 && s->t_last > s->t_first ? (double)(n - 1) / (s->t_last - s->t_first) : NAN;
    printf("%s{\"ok\":%s,\"tokens\":%ld,\"usage_tokens\":%ld,\"events\":%ld,", sep,
           s->ok ? "true" : "false", s->tokens, s->usage_tokens, s->events);
    print_num("ttft_ms", s->ok ? (s->t_first - s->t_req) * 1e3 : NAN, ",");
    print_num("total_ms", s->ok ? (s->t_last - s->t_req) * 1e3 : NAN, ",");
    print_num("decode_tok_s", dec, ",");
    printf("\"error\":\"");
    for (const char *e = s->err; *e; e++)
        if (*e != '"' && *e != '\\' && (unsigned char)*e >= 0x20)
            putchar(*e);
    printf("\"}");
}

static void usage(void)
{
    fprintf(stderr,
            "usage: grid_load --port P --key KEY [--host H] [--model M] [--prompt TEXT]\n"
            "                 [--streams N] [--rounds R] [--max-tokens T] [--rate TOK_PER_S]\n"
            "                 [--ramp-ms MS] [--timeout-s S] [--count spaces|events] [--dump FILE]\n"
            "                 [--stdin]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opt.host = "127.0.0.1";
    opt.model = "edge";
    opt.prompt = "ROMEO:";
    opt.path = "/v1/completions";
    opt.streams = 1;
    opt.rounds = 1;
    opt.max_tokens = 64;
    opt.timeout_s = 120;
    static const struct option lo[] = {
        {"host", 1, 0, 'H'},    {"port", 1, 0, 'p'},      {"key", 1, 0, 'k'},
        {"model", 1, 0, 'm'},   {"prompt", 1, 0, 'P'},    {"streams", 1, 0, 'n'},
        {"rounds", 1, 0, 'r'},  {"max-tokens", 1, 0, 't'}, {"rate", 1, 0, 'R'},
        {"ramp-ms", 1, 0, 'a'}, {"timeout-s", 1, 0, 'T'}, {"count", 1, 0, 'c'},
        {"dump", 1, 0, 'd'},    {"stdin", 0, 0, 's'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'H': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'k': opt.key = optarg; break;
        case 'm': opt.model = optarg; break;
        case 'P': opt.prompt = optarg; break;
        case 'n': opt.streams = atoi(optarg); break;
        case 'r': opt.rounds = atoi(optarg); break;
        case 't': opt.max_tokens = atoi(optarg); break;
        case 'R': opt.rate = atof(optarg); break;
        case 'a': opt.ramp_ms = atoi(optarg); break;
        case 'T': opt.timeout_s = atoi(optarg); break;
        case 's': opt.from_stdin = true; break;
        case 'd':
            dump = fopen(optarg, "w");
            if (!dump)
                die("cannot open the --dump file");
            break;
        case 'c':
            if (strcmp(optarg, "spaces") == 0)
                opt.count_spaces = true;
            else if (strcmp(optarg, "events") != 0)
                usage();
            break;
        default: usage();
        }
    }
    if (!opt.key || opt.port <= 0 || opt.port > 65535 || opt.streams < 1 || opt.streams > MAX_STREAMS ||
        opt.rounds < 1 || opt.rounds > MAX_ROUNDS || opt.max_tokens < 1 || opt.timeout_s < 1 ||
        opt.ramp_ms < 0 || strpbrk(opt.prompt, "\"\\\n"))
        usage();

    base = event_base_new();
    if (!base)
        die("event_base_new failed");
    S = calloc((size_t)opt.streams * (size_t)opt.rounds, sizeof *S);
    if (!S)
        die("out of memory");
    ramp_ev = evtimer_new(base, on_ramp, NULL);
    timeout_ev = evtimer_new(base, on_timeout, NULL);
    struct timeval tl = {opt.timeout_s, 0};
    evtimer_add(timeout_ev, &tl);
    double t_start = now_s();
    for (cur_round = 0; cur_round < opt.rounds; cur_round++) {
        if (opt.from_stdin) {
            char line[64];
            if (!fgets(line, sizeof line, stdin))
                break;
            opt.max_tokens = atoi(line);
            if (opt.max_tokens < 1)
                die("--stdin: each line must be a token count of at least 1");
            evtimer_add(timeout_ev, &tl); /* the limit is per round here */
        }
        ramp_next = 0;
        event_active(ramp_ev, EV_TIMEOUT, 0);
        event_base_dispatch(base);
        if (opt.from_stdin) {
            print_run(cur_round, "");
            printf("\n");
            fflush(stdout);
        }
        if (n_open > 0)
            break; /* time limit */
    }
    if (opt.from_stdin)
        return n_open > 0 ? 1 : 0;
    double t_end = now_s();

    /* ---- results ---- */
    long total = (long)opt.streams * opt.rounds, n_ok = 0, tokens = 0, n_late = 0;
    for (long i = 0; i < total; i++) {
        n_ok += S[i].ok;
        tokens += S[i].tokens;
        n_late += S[i].n_late;
    }
    double *ttft = calloc((size_t)total + 1, sizeof *ttft);
    double *late = calloc((size_t)n_late + 1, sizeof *late);
    double *added = calloc((size_t)n_late + 1, sizeof *added);
    double *smin = calloc((size_t)total + 1, sizeof *smin);
    double *corr = calloc((size_t)n_late + 1, sizeof *corr);
    double period = opt.rate > 0 ? 1.0 / opt.rate : 1;
    /* The steady window: from 1 s after the last stream was opened (placement work
       done) until the first stream ended (all open): token relay alone. */
    double w_lo = t_ramp_end + 1.0, w_hi = INFINITY;
    for (long i = 0; i < total; i++)
        if (S[i].ok && S[i].t_last < w_hi)
            w_hi = S[i].t_last;
    double *st_corr = calloc((size_t)n_late + 1, sizeof *st_corr);
    double *st_raw = calloc((size_t)n_late + 1, sizeof *st_raw);
    long n_st = 0;
    if (!st_corr || !st_raw)
        die("out of memory");
    long n_slip = 0, n_beyond = 0, n_events = 0, n_multi = 0;
    if (!ttft || !late || !added || !smin || !corr)
        die("out of memory");
    long nt = 0, nl = 0, ns = 0;
    for (long i = 0; i < total; i++) {
        stream *s = &S[i];
        if (!s->ok)
            continue;
        n_events += s->events;
        n_multi += s->multi;
        ttft[nt++] = (s->t_first - s->t_req) * 1e3;
        if (s->n_late == 0)
            continue;
        double mn = s->late[0];
        for (long j = 1; j < s->n_late; j++)
            mn = s->late[j] < mn ? s->late[j] : mn;
        smin[ns++] = mn * 1e3;
        for (long j = 0; j < s->n_late; j++) {
            double r = s->late[j] - mn;
            long ticks = (long)floor(r / period + 0.5);
            if (ticks >= 1)
                n_slip++;
            if (ticks >= 2)
                n_beyond++;
            late[nl] = s->late[j] * 1e3;
            corr[nl] = (r - (double)ticks * period) * 1e3;
            if (s->late_at[j] >= w_lo && s->late_at[j] <= w_hi) {
                st_corr[n_st] = corr[nl];
                st_raw[n_st++] = r * 1e3;
            }
            added[nl++] = r * 1e3;
        }
    }
    qsort(ttft, (size_t)nt, sizeof *ttft, cmp_d);
    qsort(late, (size_t)nl, sizeof *late, cmp_d);
    qsort(added, (size_t)nl, sizeof *added, cmp_d);
    qsort(corr, (size_t)nl, sizeof *corr, cmp_d);
    qsort(st_corr, (size_t)n_st, sizeof *st_corr, cmp_d);
    qsort(st_raw, (size_t)n_st, sizeof *st_raw, cmp_d);
    qsort(smin, (size_t)ns, sizeof *smin, cmp_d);

    printf("{\"streams\":%d,\"rounds\":%d,\"ok\":%ld,\"failed\":%ld,\"tokens\":%ld,", opt.streams,
           opt.rounds, n_ok, total - n_ok, tokens);
    print_num("wall_s", t_end - t_start, ",");
    print_num("client_tok_s", (double)tokens / (t_end - t_start), ",");
    print_num("ttft_ms_p50", pct(ttft, nt, 50), ",");
    print_num("ttft_ms_p99", pct(ttft, nt, 99), ",");
    print_num("ttft_ms_max", pct(ttft, nt, 100), ",");
    printf("\"late_tokens\":%ld,", nl);
    print_num("lateness_ms_p50", pct(late, nl, 50), ",");
    print_num("lateness_ms_p99", pct(late, nl, 99), ",");
    print_num("lateness_ms_max", pct(late, nl, 100), ",");
    print_num("stream_min_lateness_ms_p50", pct(smin, ns, 50), ",");
    print_num("stream_min_lateness_ms_p99", pct(smin, ns, 99), ",");
    print_num("added_ms_p50", pct(added, nl, 50), ",");
    print_num("added_ms_p90", pct(added, nl, 90), ",");
    print_num("added_ms_p99", pct(added, nl, 99), ",");
    print_num("added_ms_p999", pct(added, nl, 99.9), ",");
    print_num("added_ms_max", pct(added, nl, 100), ",");
    print_num("tick_ms", period * 1e3, ",");
    print_num("tick_corrected_ms_p50", pct(corr, nl, 50), ",");
    print_num("tick_corrected_ms_p90", pct(corr, nl, 90), ",");
    print_num("tick_corrected_ms_p99", pct(corr, nl, 99), ",");
    print_num("tick_corrected_ms_p999", pct(corr, nl, 99.9), ",");
    print_num("tick_corrected_ms_max", pct(corr, nl, 100), ",");
    printf("\"steady_tokens\":%ld,", n_st);
    print_num("steady_window_s", n_st ? w_hi - w_lo : NAN, ",");
    print_num("steady_corrected_ms_p50", pct(st_corr, n_st, 50), ",");
    print_num("steady_corrected_ms_p90", pct(st_corr, n_st, 90), ",");
    print_num("steady_corrected_ms_p99", pct(st_corr, n_st, 99), ",");
    print_num("steady_raw_ms_p50", pct(st_raw, n_st, 50), ",");
    print_num("steady_raw_ms_p99", pct(st_raw, n_st, 99), ",");
    printf("\"tokens_one_tick_late\":%ld,\"tokens_two_or_more_ticks_late\":%ld,", n_slip, n_beyond);
    printf("\"events\":%ld,\"multi_token_events\":%ld,", n_events, n_multi);
    /* per round (the gateway benchmark's runs): first stream of each round */
    printf("\"runs\":[");
    for (int r = 0; r < opt.rounds; r++)
        print_run(r, r ? "," : "");
    printf("],\"errors\":[");
    int shown = 0;
    for (long i = 0; i < total && shown < 5; i++) {
        if (S[i].ok)
            continue;
        printf("%s\"", shown ? "," : "");
        const char *e = S[i].err[0] ? S[i].err : "incomplete";
        for (; *e; e++)
            if (*e != '"' && *e != '\\' && (unsigned char)*e >= 0x20)
                putchar(*e);
        printf("\"");
        shown++;
    }
    printf("]}\n");
    if (dump)
        fclose(dump);
    for (long i = 0; i < total; i++) {
        free(S[i].late);
        free(S[i].late_at);
        free(S[i].pending);
        if (S[i].conn)
            evhttp_connection_free(S[i].conn);
    }
    free(S);
    free(ttft);
    free(late);
    free(added);
    free(smin);
    free(corr);
    free(st_corr);
    free(st_raw);
    event_free(ramp_ev);
    event_free(timeout_ev);
    event_base_free(base);
    return n_ok == total ? 0 : 1;
}
