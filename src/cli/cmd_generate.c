/*
 * cmd_generate.c — `idlegrid generate` (continue a prompt, streamed to stdout) and
 * `idlegrid score` (the next-token candidates after a prompt, or the teacher-forced
 * log-probabilities of the prompt's own tokens, as JSON): the engine alone.
 */
#include "cli.h"
#include "engine.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Loads the model and makes a context; prints the reason and returns false on failure. */
static bool open_model(const char *path, int n_threads, int n_ctx, const char *kv, const char *kernels,
                       ig_model **m, ig_ctx **c)
{
    ig_err err = {0};
    ig_ctx_params cp = ig_ctx_default_params();
    cp.n_threads = n_threads;
    cp.n_ctx = n_ctx;
    cp.kernels = kernels;
    if (kv && strcmp(kv, "f16") == 0)
        cp.kv_type = IG_TYPE_F16;
    else if (kv && strcmp(kv, "f32") != 0) {
        ig_cli_fail("--kv-type: '%s' is not f32 or f16", kv);
        return false;
    }
    if (!(*m = ig_model_load(path, &err))) {
        ig_cli_fail("%s", err.msg);
        return false;
    }
    if (!(*c = ig_ctx_new(*m, &cp, &err))) {
        ig_cli_fail("%s: %s", path, err.msg);
        ig_model_free(*m);
        *m = NULL;
        return false;
    }
    return true;
}

/* Tokenizes the prompt with BOS when the tokenizer adds one. Returns the count or -1. */
static int64_t tokenize_prompt(const ig_model *m, const char *prompt, int32_t **out)
{
    ig_err err = {0};
    const ig_tokenizer *tok = ig_model_tokenizer(m);
    size_t len = strlen(prompt);
    int64_t n = ig_tokenize(tok, prompt, len, ig_tokenizer_adds_bos(tok), false, NULL, 0, &err);
    if (n < 0) {
        ig_cli_fail("tokenizing the prompt: %s", err.msg);
        return -1;
    }
    *out = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!*out) {
        ig_cli_fail("out of memory");
        return -1;
    }
    n = ig_tokenize(tok, prompt, len, ig_tokenizer_adds_bos(tok), false, *out, n, &err);
    if (n == 0)
        ig_cli_fail("the prompt has no tokens");
    return n > 0 ? n : -1;
}

/* ---- generate ---------------------------------------------------------------- */

static bool print_event(void *user, const ig_gen_event *ev)
{
    (void)user;
    if (ev->text_len) {
        fwrite(ev->text, 1, ev->text_len, stdout);
        fflush(stdout);
    }
    return true;
}

int ig_cmd_generate(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *kv = "f32", *kernels = NULL;
    int n_predict = 128, top_k = 40, threads = 0, n_ctx = 0, repeat_last_n = 64;
    float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
    uint64_t seed = 0;
    ig_cli_multi stops = {0};
    const ig_flag flags[] = {
        {"model", 'm', IG_FLAG_STRING, &model, "FILE", "GGUF model file (required)"},
        {"prompt", 'p', IG_FLAG_STRING, &prompt, "TEXT", "text to continue (required)"},
        {"n-predict", 'n', IG_FLAG_INT, &n_predict, "N", "tokens to generate at most (default 128)"},
        {"temp", 0, IG_FLAG_FLOAT, &temp, "T", "temperature; 0 = greedy (default 0.8)"},
        {"top-k", 0, IG_FLAG_INT, &top_k, "K", "keep the K most likely tokens; 0 = off (default 40)"},
        {"top-p", 0, IG_FLAG_FLOAT, &top_p, "P", "nucleus: keep the mass P; 1 = off (default 0.95)"},
        {"min-p", 0, IG_FLAG_FLOAT, &min_p, "P", "drop tokens below P x the best; 0 = off (default 0.05)"},
        {"repeat-penalty", 0, IG_FLAG_FLOAT, &repeat_penalty, "R", "penalise recent tokens; 1 = off (default 1)"},
        {"repeat-last-n", 0, IG_FLAG_INT, &repeat_last_n, "N", "window of the repeat penalty (default 64)"},
        {"seed", 0, IG_FLAG_U64, &seed, "S", "random seed (default 0)"},
        {"threads", 't', IG_FLAG_INT, &threads, "N", "threads; 0 = all CPUs (default 0)"},
        {"ctx", 'c', IG_FLAG_INT, &n_ctx, "N", "context size; 0 = the model's (default 0)"},
        {"stop", 0, IG_FLAG_MULTI, &stops, "STR", "stop before this text (repeatable, up to 8)"},
        {"kv-type", 0, IG_FLAG_STRING, &kv, "TYPE", "KV cache type: f32 or f16 (default f32)"},
        {"kernels", 0, IG_FLAG_STRING, &kernels, "ISA", "kernel set: scalar, avx2, avx512, amx, neon (default: fastest)"},
    };
    const ig_cli_spec spec = {
        "idlegrid generate -m MODEL -p PROMPT [options]",
        "Continues PROMPT with MODEL and prints only the continuation to stdout, as it is generated.",
        flags, (int)(sizeof flags / sizeof flags[0]), 0, 0};
    bool done;
    int rc = ig_cli_parse(&spec, argc, argv, NULL, NULL, &done);
    if (rc || done)
        return rc;
    if (!model || !prompt) {
        ig_cli_fail("generate: %s is required (see 'idlegrid generate --help')", !model ? "-m MODEL" : "-p PROMPT");
        return 2;
    }
    const char *bad = n_predict < 0 ? "-n must be >= 0"
                      : temp < 0 ? "--temp must be >= 0"
                      : top_k < 0 ? "--top-k must be >= 0"
                      : !(top_p > 0 && top_p <= 1) ? "--top-p must be in (0, 1]"
                      : !(min_p >= 0 && min_p <= 1) ? "--min-p must be in [0, 1]"
                      : !(repeat_penalty > 0) ? "--repeat-penalty must be > 0"
                      : threads < 0 ? "--threads must be >= 0"
                      : n_ctx < 0 ? "--ctx must be >= 0"
                      : stops.n > IG_MAX_STOP ? "at most 8 --stop strings"
                      : NULL;
    if (bad) {
        ig_cli_fail("generate: %s", bad);
        return 2;
    }

    ig_model *m;
    ig_ctx *c;
    if (!open_model(model, threads, n_ctx, kv, kernels, &m, &c))
        return 1;
    int32_t *tokens = NULL;
    int64_t n = tokenize_prompt(m, prompt, &tokens);
    int status = 1;
    if (n > 0) {
        ig_gen_params gp = ig_gen_default_params();
        gp.max_tokens = n_predict;
        gp.sampler.temperature = temp;
        gp.sampler.top_k = top_k;
        gp.sampler.top_p = top_p;
        gp.sampler.min_p = min_p;
        gp.sampler.repeat_penalty = repeat_penalty;
        gp.sampler.repeat_last_n = repeat_last_n;
        gp.sampler.seed = seed;
        for (int i = 0; i < stops.n; i++)
            gp.stop[i] = stops.values[i];
        gp.n_stop = stops.n;
        ig_err err = {0};
        ig_finish fin;
        if (n > ig_ctx_n_ctx(c)) {
            ig_cli_fail("the prompt's %lld tokens do not fit the context of %d (--ctx)", (long long)n,
                        ig_ctx_n_ctx(c));
        } else if (ig_generate(c, tokens, (int32_t)n, NULL, 0, &gp, print_event, NULL, &fin, &err)) {
            ig_cli_fail("generate: %s", err.msg);
        } else {
            if (isatty(STDOUT_FILENO))
                putchar('\n');
            status = 0;
        }
    }
    free(tokens);
    ig_ctx_free(c);
    ig_model_free(m);
    return status;
}

/* ---- score ------------------------------------------------------------------- */

static json_t *piece_json(const ig_tokenizer *tok, int32_t id)
{
    ig_str s = ig_token_piece(tok, id);
    return json_stringn(s.ptr ? s.ptr : "", s.ptr ? (size_t)s.len : 0);
}

int ig_cmd_score(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *kv = "f32", *kernels = NULL;
    int top = 5, threads = 0, n_ctx = 0;
    bool per_token = false;
    const ig_flag flags[] = {
        {"model", 'm', IG_FLAG_STRING, &model, "FILE", "GGUF model file (required)"},
        {"prompt", 'p', IG_FLAG_STRING, &prompt, "TEXT", "the text (required)"},
        {"top", 0, IG_FLAG_INT, &top, "K", "next-token candidates to list, 0..20 (default 5)"},
        {"tokens", 0, IG_FLAG_BOOL, &per_token, NULL,
         "also list log p(token | tokens before it) for every prompt token (teacher-forced)"},
        {"threads", 't', IG_FLAG_INT, &threads, "N", "threads; 0 = all CPUs (default 0)"},
        {"ctx", 'c', IG_FLAG_INT, &n_ctx, "N", "context size; 0 = the model's (default 0)"},
        {"kv-type", 0, IG_FLAG_STRING, &kv, "TYPE", "KV cache type: f32 or f16 (default f32)"},
        {"kernels", 0, IG_FLAG_STRING, &kernels, "ISA", "kernel set (default: fastest)"},
    };
    const ig_cli_spec spec = {
        "idlegrid score -m MODEL -p PROMPT [--top K] [--tokens]",
        "Prints JSON: the prompt's token ids and the K most likely next tokens with their\n"
        "log-probabilities: {\"prompt_tokens\":[..],\"top\":[{\"id\":..,\"piece\":\"..\",\"logprob\":..}]}.\n"
        "With --tokens, \"token_logprobs\" holds log p(token i | tokens before i) (0 for the first).",
        flags, (int)(sizeof flags / sizeof flags[0]), 0, 0};
    bool done;
    int rc = ig_cli_parse(&spec, argc, argv, NULL, NULL, &done);
    if (rc || done)
        return rc;
    if (!model || !prompt) {
        ig_cli_fail("score: %s is required (see 'idlegrid score --help')", !model ? "-m MODEL" : "-p PROMPT");
        return 2;
    }
    if (top < 0 || top > IG_MAX_TOP_LOGPROBS || threads < 0 || n_ctx < 0) {
        ig_cli_fail("score: %s", top < 0 || top > IG_MAX_TOP_LOGPROBS ? "--top must be 0..20"
                                 : threads < 0                          ? "--threads must be >= 0"
                                                                        : "--ctx must be >= 0");
        return 2;
    }
    ig_model *m;
    ig_ctx *c;
    if (!open_model(model, threads, n_ctx, kv, kernels, &m, &c))
        return 1;
    const ig_tokenizer *tok = ig_model_tokenizer(m);
    const int32_t n_vocab = ig_model_get_info(m)->n_vocab;
    int32_t *tokens = NULL;
    float *lps = NULL;
    int status = 1;
    ig_err err = {0};
    int64_t n = tokenize_prompt(m, prompt, &tokens);
    if (n <= 0)
        goto out;
    if (n > ig_ctx_n_ctx(c)) {
        ig_cli_fail("the prompt's %lld tokens do not fit the context of %d (--ctx)", (long long)n,
                    ig_ctx_n_ctx(c));
        goto out;
    }
    json_t *root = json_object();
    json_t *ids = json_array();
    for (int64_t i = 0; i < n; i++)
        json_array_append_new(ids, json_integer(tokens[i]));
    json_object_set_new(root, "prompt_tokens", ids);
    if (per_token) {
        /* one batched teacher-forced pass; its last logits also give the candidates */
        lps = malloc(sizeof(float) * (size_t)n);
        if (!lps || ig_score(c, tokens, (int32_t)n, lps, &err)) {
            ig_cli_fail("score: %s", lps ? err.msg : "out of memory");
            json_decref(root);
            goto out;
        }
        json_t *arr = json_array();
        for (int64_t i = 0; i < n; i++)
            json_array_append_new(arr, json_real(lps[i]));
        json_object_set_new(root, "token_logprobs", arr);
    } else if (ig_ctx_decode(c, tokens, (int32_t)n, false, &err)) {
        ig_cli_fail("score: %s", err.msg);
        json_decref(root);
        goto out;
    }
    {
        /* ig_score decodes in batches: the last token is the last row with logits */
        const float *logits = NULL;
        for (int32_t i = (int32_t)n - 1; i >= 0 && !logits; i--)
            logits = ig_ctx_logits(c, i);
        ig_token_prob best[IG_MAX_TOP_LOGPROBS];
        ig_top_logprobs(logits, n_vocab, top, best);
        json_t *arr = json_array();
        for (int i = 0; i < top; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "id", json_integer(best[i].id));
            json_object_set_new(o, "piece", piece_json(tok, best[i].id));
            json_object_set_new(o, "logprob", json_real(best[i].logprob));
            json_array_append_new(arr, o);
        }
        json_object_set_new(root, "top", arr);
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (s) {
        puts(s);
        free(s);
        status = 0;
    }
out:
    free(lps);
    free(tokens);
    ig_ctx_free(c);
    ig_model_free(m);
    return status;
}
