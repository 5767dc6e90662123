/* bench/bench_greedy.c — idlegrid's side of the agreement check between idlegrid and
 * llama.cpp in `make bench` (bench/run.sh, bench/llamacpp/bench.mjs): reads token ids
 * (whitespace-separated) on stdin, prefills them in one batch from an empty cache, then
 * decodes --gen tokens greedily (each the argmax of the last logits, fed back one at a
 * time, as `idlegrid bench` does). Prints one JSON object: the tokens, and per step the
 * gap between the best and the second-best logit, which tells whether a disagreement
 * with another engine is a near-tie (random weights make small gaps common) or a real
 * difference in the computation. Not a test: CI does not have llama.cpp. */
#include "engine.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROMPT 4096
#define MAX_GEN 1024

static void usage(void)
{
    fprintf(stderr, "usage: bench_greedy -m MODEL [--gen N] [--threads N] [--kv-type f32|f16] < ids\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL, *kv = "f32";
    int gen = 16, threads = 0;
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"gen", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'}, {"kv-type", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "m:n:t:k:", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': path = optarg; break;
        case 'n': gen = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'k': kv = optarg; break;
        default: usage(); return 2;
        }
    }
    if (!path || gen < 1 || gen > MAX_GEN || threads < 0) {
        usage();
        return 2;
    }
    ig_ctx_params cp = ig_ctx_default_params();
    if (strcmp(kv, "f32") == 0)
        cp.kv_type = IG_TYPE_F32;
    else if (strcmp(kv, "f16") == 0)
        cp.kv_type = IG_TYPE_F16;
    else {
        fprintf(stderr, "bench_greedy: --kv-type: '%s' is not f32 or f16\n", kv);
        return 2;
    }

    static int32_t prompt[MAX_PROMPT];
    int n = 0;
    long v;
    while (scanf("%ld", &v) == 1) {
        if (n == MAX_PROMPT) {
            fprintf(stderr, "bench_greedy: more than %d prompt ids\n", MAX_PROMPT);
            return 2;
        }
        prompt[n++] = (int32_t)v;
    }
    if (n == 0) {
        fprintf(stderr, "bench_greedy: no token ids on stdin\n");
        return 2;
    }

    ig_err err = {0};
    ig_model *m = ig_model_load(path, &err);
    if (!m) {
        fprintf(stderr, "bench_greedy: %s\n", err.msg);
        return 1;
    }
    const int32_t n_vocab = ig_model_get_info(m)->n_vocab;
    for (int i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= n_vocab) {
            fprintf(stderr, "bench_greedy: prompt id %d (position %d) is outside the vocabulary of %d\n",
                    prompt[i], i, n_vocab);
            ig_model_free(m);
            return 2;
        }
    cp.n_ctx = n + gen;
    cp.n_batch = n;
    cp.n_threads = threads;
    ig_ctx *c = ig_ctx_new(m, &cp, &err);
    if (!c) {
        fprintf(stderr, "bench_greedy: %s\n", err.msg);
        ig_model_free(m);
        return 1;
    }
    int rc = 1;
    int32_t out[MAX_GEN];
    double gap[MAX_GEN];
    if (ig_ctx_decode(c, prompt, n, false, &err))
        goto fail;
    for (int i = 0; i < gen; i++) {
        const float *lg = ig_ctx_logits(c, i == 0 ? n - 1 : 0);
        int32_t best = 0, second = -1;
        for (int32_t t = 1; t < n_vocab; t++) {
            if (lg[t] > lg[best]) {
                second = best;
                best = t;
            } else if (second < 0 || lg[t] > lg[second]) {
                second = t;
            }
        }
        out[i] = best;
        gap[i] = second >= 0 ? (double)lg[best] - (double)lg[second] : 0;
        if (i + 1 < gen && ig_ctx_decode(c, &out[i], 1, false, &err))
            goto fail;
    }
    printf("{\"kernels\":\"%s\",\"kv_type\":\"%s\",\"tokens\":[", ig_ctx_kernels(c), kv);
    for (int i = 0; i < gen; i++)
        printf("%s%d", i ? "," : "", out[i]);
    printf("],\"top2_gap\":[");
    for (int i = 0; i < gen; i++)
        printf("%s%.5g", i ? "," : "", gap[i]);
    printf("]}\n");
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "bench_greedy: %s\n", err.msg);
out:
    ig_ctx_free(c);
    ig_model_free(m);
    return rc;
}
