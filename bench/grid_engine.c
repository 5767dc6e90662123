/* bench/grid_engine.c — the engine-alone side of the gateway-overhead benchmark
 * (bench/grid_bench.sh). Does what a node does for one completion job — tokenize the
 * prompt with the model's BOS, then ig_generate greedily into a context created
 * beforehand — with no network in between, and times it the way bench/grid_load.c
 * times a stream through the coordinator: time to the first token that releases text
 * (from just before tokenizing), and the decode rate between the first and the last
 * text-releasing tokens over all generated tokens. One warm-up run, then --runs timed
 * runs; one JSON object on stdout. With --stdin, for each line read on stdin: one
 * warm-up run of --warmup-tokens tokens, then one timed run, printed as one JSON line
 * (the benchmark alternates these with streams through the grid, and a process that
 * stays loaded keeps the two sides' runs seconds apart). */
#include "engine.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RUNS 100
#define PROMPT_CAP 4096

typedef struct {
    double t_first, t_last;
    long generated, with_text;
} timing;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool on_event(void *user, const ig_gen_event *ev)
{
    timing *t = user;
    double now = now_s();
    if (ev->token >= 0)
        t->generated++;
    if (ev->text_len > 0) {
        if (t->with_text == 0)
            t->t_first = now;
        t->t_last = now;
        t->with_text++;
    }
    return true;
}

static void usage(void)
{
    fprintf(stderr, "usage: grid_engine -m MODEL [--prompt TEXT] [--max-tokens N] [--threads N] [--runs R]\n"
                    "                   [--stdin] [--warmup-tokens N]\n");
    exit(2);
}

typedef struct {
    ig_ctx *ctx;
    const ig_tokenizer *tok;
    const char *text;
    ig_gen_params p;
} runner;

/* One run; prints its JSON object (after `sep`) when `print`. */
static bool run_once(runner *rn, int max_tokens, bool print, const char *sep)
{
    static int32_t prompt[PROMPT_CAP];
    ig_err err;
    ig_err_clear(&err);
    timing t = {0};
    double t0 = now_s();
    int64_t np = ig_tokenize(rn->tok, rn->text, strlen(rn->text), ig_tokenizer_adds_bos(rn->tok),
                             false, prompt, PROMPT_CAP, &err);
    if (np < 0 || np >= PROMPT_CAP) {
        fprintf(stderr, "grid_engine: tokenizing: %s\n", err.msg);
        return false;
    }
    ig_gen_params p = rn->p;
    p.max_tokens = max_tokens;
    ig_finish fin;
    if (ig_generate(rn->ctx, prompt, (int32_t)np, NULL, 0, &p, on_event, &t, &fin, &err) != IG_OK) {
        fprintf(stderr, "grid_engine: %s\n", err.msg);
        return false;
    }
    if (!print)
        return true;
    double dec = t.generated > 1 && t.t_last > t.t_first
                     ? (double)(t.generated - 1) / (t.t_last - t.t_first)
                     : NAN;
    printf("%s{\"prompt_tokens\":%lld,\"tokens\":%ld,\"ttft_ms\":%.4f,\"total_ms\":%.4f,"
           "\"decode_tok_s\":%.4f,\"finish\":\"%s\"}",
           sep, (long long)np, t.generated, (t.t_first - t0) * 1e3, (t.t_last - t0) * 1e3, dec,
           ig_finish_name(fin));
    return true;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *text = "ROMEO:";
    int max_tokens = 64, threads = 1, runs = 5, warmup_tokens = 0;
    bool from_stdin = false;
    static const struct option lo[] = {{"model", 1, 0, 'm'},   {"prompt", 1, 0, 'p'},
                                       {"max-tokens", 1, 0, 'n'}, {"threads", 1, 0, 't'},
                                       {"runs", 1, 0, 'r'},    {"stdin", 0, 0, 's'},
                                       {"warmup-tokens", 1, 0, 'w'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:p:n:t:r:sw:", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'p': text = optarg; break;
        case 'n': max_tokens = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'r': runs = atoi(optarg); break;
        case 's': from_stdin = true; break;
        case 'w': warmup_tokens = atoi(optarg); break;
        default: usage();
        }
    }
    if (warmup_tokens == 0)
        warmup_tokens = max_tokens;
    if (!model || max_tokens < 1 || threads < 1 || runs < 1 || runs > MAX_RUNS || warmup_tokens < 1)
        usage();

    ig_err err;
    ig_err_clear(&err);
    ig_model *m = ig_model_load(model, &err);
    if (!m) {
        fprintf(stderr, "grid_engine: %s\n", err.msg);
        return 1;
    }
    const ig_model_info *info = ig_model_get_info(m);
    ig_ctx_params cp = ig_ctx_default_params();
    /* as the node sizes its slot contexts */
    cp.n_ctx = info->n_ctx_train < 4096 ? info->n_ctx_train : 4096;
    cp.n_threads = threads;
    ig_ctx *ctx = ig_ctx_new(m, &cp, &err);
    if (!ctx) {
        fprintf(stderr, "grid_engine: %s\n", err.msg);
        return 1;
    }
    runner rn = {.ctx = ctx, .tok = ig_model_tokenizer(m), .text = text,
                 .p = ig_gen_default_params()};
    /* what the coordinator sends for {"temperature":0} with OpenAI's defaults */
    rn.p.sampler.temperature = 0;
    rn.p.sampler.top_k = 0;
    rn.p.sampler.top_p = 1;
    rn.p.sampler.min_p = 0;
    rn.p.sampler.repeat_penalty = 1;

    if (from_stdin) {
        char line[256];
        while (fgets(line, sizeof line, stdin)) {
            if (!run_once(&rn, warmup_tokens, false, "") || !run_once(&rn, max_tokens, true, ""))
                return 1;
            printf("\n");
            fflush(stdout);
        }
        ig_ctx_free(ctx);
        ig_model_free(m);
        return 0;
    }
    printf("{\"model\":\"%s\",\"threads\":%d,\"kernels\":\"%s\",\"runs\":[", model, threads,
           ig_ctx_kernels(ctx));
    if (!run_once(&rn, warmup_tokens, false, ""))
        return 1;
    for (int r = 0; r < runs; r++)
        if (!run_once(&rn, max_tokens, true, r ? "," : ""))
            return 1;
    printf("]}\n");
    ig_ctx_free(ctx);
    ig_model_free(m);
    return 0;
}
