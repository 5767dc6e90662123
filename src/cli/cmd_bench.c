/*
 * cmd_bench.c — `idlegrid bench`: how fast the engine runs a model on this machine,
 * and how close decode comes to the memory-bandwidth roofline.
 *
 * One run measures, in this order:
 *   1. prefill: a prompt of N tokens in one batched ig_ctx_decode from an empty cache;
 *   2. decode: N tokens one at a time from an empty cache, each the argmax of the
 *      last logits (greedy), as llama.cpp's llama-bench "tg" test does;
 *   3. the peak resident set of the process so far (getrusage), which therefore
 *      covers generation and nothing the bandwidth probe allocates afterwards;
 *   4. the machine's streaming-read bandwidth (ig_measure_read_bandwidth).
 * Each of 1 and 2 runs once to warm up (page the weights in, settle the clocks), then
 * --repeat times; the median is reported, every run is kept in the JSON.
 *
 * Bytes per decoded token = the weights it reads (every matrix incl. the output, one
 * embedding row) + the KV cache read at the mean context length of the decode run.
 * roofline tok/s = bandwidth / bytes per token; roofline_fraction = decode / that.
 * roofline_fraction_file uses the whole file size per token instead, the convention
 * behind llama.cpp's published "84 % of the roofline" (see docs/BENCHMARKS.md).
 */
#include "cli.h"
#include "engine.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_TOKENS 65536
#define BENCH_MAX_REPEAT 100
#define BENCH_MAX_BATCH 512
#define BENCH_RSS_SLACK ((uint64_t)64 << 20)

typedef struct {
    const char *model;
    int threads, prompt, gen, repeat, batch;
    const char *kv, *kernels;
    int bw_mb;
    float bw_seconds;
    bool json;
} bench_opts;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[BENCH_MAX_REPEAT];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static int32_t argmax(const float *v, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* The prompt: BOS (when the vocabulary has one) then ids from a fixed pseudo-random
 * sequence, so every run and every type sees the same tokens. */
static void make_prompt(int32_t *tokens, int n, int32_t n_vocab, int32_t bos)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++) {
        s += 0x9e3779b97f4a7c15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        tokens[i] = (int32_t)(z % (uint64_t)n_vocab);
    }
    if (bos >= 0 && n > 0)
        tokens[0] = bos;
}

/* Tokens per second of one prefill of the whole prompt from an empty cache. */
static ig_code run_prefill(ig_ctx *c, const int32_t *prompt, int n, double *tok_s, ig_err *err)
{
    ig_ctx_truncate(c, 0);
    double t0 = now_seconds();
    if (ig_ctx_decode(c, prompt, n, false, err))
        return err->code;
    double dt = now_seconds() - t0;
    *tok_s = dt > 0 ? n / dt : 0;
    return IG_OK;
}

/* Tokens per second of n greedy single-token decodes from an empty cache. */
static ig_code run_decode(ig_ctx *c, int32_t first, int n, int32_t n_vocab, double *tok_s,
                          ig_err *err)
{
    ig_ctx_truncate(c, 0);
    int32_t tok = first;
    double t0 = now_seconds();
    for (int i = 0; i < n; i++) {
        if (ig_ctx_decode(c, &tok, 1, false, err))
            return err->code;
        tok = argmax(ig_ctx_logits(c, 0), n_vocab);
    }
    double dt = now_seconds() - t0;
    *tok_s = dt > 0 ? n / dt : 0;
    return IG_OK;
}

static uint64_t peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_maxrss * 1024; /* Linux reports kilobytes */
}

static json_t *json_runs(const double *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static int bench(const bench_opts *o)
{
    ig_err err = {0};
    ig_ctx_params cp = ig_ctx_default_params();
    if (o->kv) {
        if (strcmp(o->kv, "f32") == 0)
            cp.kv_type = IG_TYPE_F32;
        else if (strcmp(o->kv, "f16") == 0)
            cp.kv_type = IG_TYPE_F16;
        else {
            ig_cli_fail("bench: --kv: '%s' is not f32 or f16", o->kv);
            return 2;
        }
    }
    ig_model *m = ig_model_load(o->model, &err);
    if (!m) {
        ig_cli_fail("bench: %s", err.msg);
        return 1;
    }
    const ig_model_info *in = ig_model_get_info(m);
    const ig_tokenizer *tok = ig_model_tokenizer(m);
    int rc = 1;
    ig_ctx *c = NULL;
    int32_t *prompt = NULL;

    /* Both runs start from an empty cache, so the context only needs the longer. */
    int n_ctx = o->prompt > o->gen ? o->prompt : o->gen;
    cp.n_ctx = n_ctx;
    cp.n_threads = o->threads;
    cp.n_batch = o->batch > 0 ? o->batch : (o->prompt < BENCH_MAX_BATCH ? o->prompt : BENCH_MAX_BATCH);
    cp.kernels = o->kernels;
    if (!(c = ig_ctx_new(m, &cp, &err))) {
        ig_cli_fail("bench: %s", err.msg);
        goto out;
    }
    int threads = cp.n_threads;
    if (threads <= 0) {
        /* The context chose; the engine's rule is one thread per online CPU. */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (!(prompt = malloc((size_t)o->prompt * sizeof *prompt))) {
        ig_cli_fail("bench: out of memory");
        goto out;
    }
    int32_t bos = ig_tokenizer_bos(tok);
    make_prompt(prompt, o->prompt, in->n_vocab, bos);
    int32_t first = bos >= 0 ? bos : prompt[0];

    double prefill[BENCH_MAX_REPEAT], decode[BENCH_MAX_REPEAT], warm;
    if (!o->json)
        fprintf(stderr, "idlegrid bench: warming up...\n");
    if (run_prefill(c, prompt, o->prompt, &warm, &err) ||
        run_decode(c, first, o->gen, in->n_vocab, &warm, &err)) {
        ig_cli_fail("bench: %s", err.msg);
        goto out;
    }
    for (int r = 0; r < o->repeat; r++)
        if (run_prefill(c, prompt, o->prompt, &prefill[r], &err)) {
            ig_cli_fail("bench: prefill: %s", err.msg);
            goto out;
        }
    for (int r = 0; r < o->repeat; r++)
        if (run_decode(c, first, o->gen, in->n_vocab, &decode[r], &err)) {
            ig_cli_fail("bench: decode: %s", err.msg);
            goto out;
        }
    uint64_t rss = peak_rss_bytes();

    double bw = ig_measure_read_bandwidth(threads, (size_t)o->bw_mb << 20, o->bw_seconds, &err);
    if (bw <= 0) {
        ig_cli_fail("bench: %s", err.msg);
        goto out;
    }

    const double prefill_tok_s = median(prefill, o->repeat);
    const double decode_tok_s = median(decode, o->repeat);
    /* A decode of gen tokens from an empty cache reads 1, 2, ..., gen positions. */
    const double mean_ctx = (o->gen + 1) / 2.0;
    const uint64_t weight_bytes = ig_model_decode_weight_bytes(m);
    const uint64_t kv_pos = ig_model_kv_position_bytes(m, cp.kv_type);
    const double kv_read = (double)kv_pos * mean_ctx;
    const double bytes_per_token = (double)weight_bytes + kv_read;
    const double roofline = bw * 1e9 / bytes_per_token;
    const double roofline_file = bw * 1e9 / ((double)in->file_bytes + kv_read);
    const uint64_t kv_cache = kv_pos * (uint64_t)n_ctx;
    const uint64_t rss_limit = in->file_bytes + kv_cache + BENCH_RSS_SLACK;

    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(o->model));
        json_object_set_new(j, "arch", json_string(in->arch));
        json_object_set_new(j, "type", json_string(ig_type_name(in->main_type)));
        json_object_set_new(j, "n_params", json_integer((json_int_t)in->n_params));
        json_object_set_new(j, "file_bytes", json_integer((json_int_t)in->file_bytes));
        json_object_set_new(j, "threads", json_integer(threads));
        json_object_set_new(j, "kernels", json_string(ig_ctx_kernels(c)));
        json_object_set_new(j, "kv_type", json_string(ig_type_name(cp.kv_type)));
        json_object_set_new(j, "n_batch", json_integer(cp.n_batch));
        json_object_set_new(j, "prompt_tokens", json_integer(o->prompt));
        json_object_set_new(j, "gen_tokens", json_integer(o->gen));
        json_object_set_new(j, "repeat", json_integer(o->repeat));
        json_object_set_new(j, "prefill_tok_s", json_real(prefill_tok_s));
        json_object_set_new(j, "decode_tok_s", json_real(decode_tok_s));
        json_object_set_new(j, "prefill_runs_tok_s", json_runs(prefill, o->repeat));
        json_object_set_new(j, "decode_runs_tok_s", json_runs(decode, o->repeat));
        json_object_set_new(j, "weight_bytes_per_token", json_integer((json_int_t)weight_bytes));
        json_object_set_new(j, "kv_bytes_per_token", json_real(kv_read));
        json_object_set_new(j, "bytes_per_token", json_real(bytes_per_token));
        json_object_set_new(j, "bandwidth_gb_s", json_real(bw));
        json_object_set_new(j, "roofline_tok_s", json_real(roofline));
        json_object_set_new(j, "roofline_fraction", json_real(decode_tok_s / roofline));
        json_object_set_new(j, "roofline_fraction_file", json_real(decode_tok_s / roofline_file));
        json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)rss));
        json_object_set_new(j, "kv_cache_bytes", json_integer((json_int_t)kv_cache));
        json_object_set_new(j, "ctx_memory_bytes", json_integer((json_int_t)ig_ctx_memory_bytes(c)));
        json_object_set_new(j, "rss_limit_bytes", json_integer((json_int_t)rss_limit));
        json_object_set_new(j, "rss_within_limit", json_boolean(rss <= rss_limit));
        char *s = json_dumps(j, JSON_INDENT(1) | JSON_REAL_PRECISION(6));
        json_decref(j);
        if (!s) {
            ig_cli_fail("bench: out of memory");
            goto out;
        }
        puts(s);
        free(s);
    } else {
        printf("model        %s (%s, mostly %s, %.1f M params, %.1f MB file)\n", o->model, in->arch,
               ig_type_name(in->main_type), (double)in->n_params / 1e6, (double)in->file_bytes / 1e6);
        printf("threads      %d, %s kernels, KV cache %s\n", threads, ig_ctx_kernels(c),
               ig_type_name(cp.kv_type));
        printf("prefill      %8.1f tok/s  (%d-token prompt, batch %d, median of %d)\n", prefill_tok_s,
               o->prompt, cp.n_batch, o->repeat);
        printf("decode       %8.1f tok/s  (%d tokens from an empty cache, median of %d)\n", decode_tok_s,
               o->gen, o->repeat);
        printf("bytes/token  %8.2f MB     (weights %.2f MB + KV %.2f MB at mean context %.1f)\n",
               bytes_per_token / 1e6, (double)weight_bytes / 1e6, kv_read / 1e6, mean_ctx);
        printf("bandwidth    %8.2f GB/s   (streaming read, %d threads, best pass over %d MiB)\n", bw,
               threads, o->bw_mb);
        printf("roofline     %8.1f tok/s  decode at %.1f %% of it (%.1f %% counting the whole file)\n",
               roofline, 100 * decode_tok_s / roofline, 100 * decode_tok_s / roofline_file);
        printf("memory       peak RSS %.1f MB; file + KV %.1f MB + 64 MiB = %.1f MB (%s)\n", rss / 1e6,
               (double)(in->file_bytes + kv_cache) / 1e6, rss_limit / 1e6,
               rss <= rss_limit ? "within" : "OVER");
    }
    rc = 0;
out:
    free(prompt);
    ig_ctx_free(c);
    ig_model_free(m);
    return rc;
}

int ig_cmd_bench(int argc, char **argv)
{
    bench_opts o = {.threads = 0, .prompt = 313, .gen = 128, .repeat = 3, .batch = 0,
                    .bw_mb = 512, .bw_seconds = 1.0f};
    const ig_flag flags[] = {
        {"model", 'm', IG_FLAG_STRING, &o.model, "MODEL", "GGUF model to measure (required)"},
        {"threads", 't', IG_FLAG_INT, &o.threads, "N", "threads (default: one per online CPU)"},
        {"prompt", 'p', IG_FLAG_INT, &o.prompt, "N", "prompt tokens for prefill (default 313)"},
        {"gen", 'n', IG_FLAG_INT, &o.gen, "N", "tokens to decode (default 128)"},
        {"repeat", 'r', IG_FLAG_INT, &o.repeat, "R", "timed runs of each, median reported (default 3)"},
        {"batch", 0, IG_FLAG_INT, &o.batch, "N", "most tokens per forward pass (default: the prompt, at most 512)"},
        {"kv", 0, IG_FLAG_STRING, &o.kv, "T", "KV cache type: f32 or f16 (default: the engine's)"},
        {"kernels", 0, IG_FLAG_STRING, &o.kernels, "ISA", "kernel set: scalar, avx2, avx512, amx, neon (default: fastest)"},
        {"bw-mb", 0, IG_FLAG_INT, &o.bw_mb, "MB", "bandwidth probe buffer in MiB (default 512)"},
        {"bw-seconds", 0, IG_FLAG_FLOAT, &o.bw_seconds, "S", "bandwidth probe duration (default 1)"},
        {"json", 0, IG_FLAG_BOOL, &o.json, NULL, "print one JSON object"},
    };
    const ig_cli_spec spec = {
        "idlegrid bench -m MODEL [--threads N] [--prompt N] [--gen N] [--repeat R] [--json]",
        "Measures prefill and decode tokens/s, the bytes a decoded token reads, this machine's\n"
        "read bandwidth, and decode as a fraction of the bandwidth roofline; also the peak\n"
        "resident memory against the model file + KV cache + 64 MiB.",
        flags, (int)(sizeof flags / sizeof flags[0]), 0, 0};
    const char **pos;
    int npos;
    bool done;
    int rc = ig_cli_parse(&spec, argc, argv, &pos, &npos, &done);
    if (rc || done)
        return rc;
    if (!o.model) {
        ig_cli_fail("bench: -m MODEL is required");
        return 2;
    }
    if (o.threads < 0 || o.threads > 256) {
        ig_cli_fail("bench: --threads %d is outside 0..256", o.threads);
        return 2;
    }
    if (o.prompt < 1 || o.prompt > BENCH_MAX_TOKENS || o.gen < 1 || o.gen > BENCH_MAX_TOKENS) {
        ig_cli_fail("bench: --prompt and --gen must be within 1..%d", BENCH_MAX_TOKENS);
        return 2;
    }
    if (o.repeat < 1 || o.repeat > BENCH_MAX_REPEAT) {
        ig_cli_fail("bench: --repeat %d is outside 1..%d", o.repeat, BENCH_MAX_REPEAT);
        return 2;
    }
    if (o.batch < 0 || o.batch > BENCH_MAX_TOKENS) {
        ig_cli_fail("bench: --batch %d is outside 0..%d", o.batch, BENCH_MAX_TOKENS);
        return 2;
    }
    if (o.bw_mb < 1 || o.bw_mb > 65536 || !(o.bw_seconds >= 0 && o.bw_seconds <= 600)) {
        ig_cli_fail("bench: --bw-mb must be within 1..65536 and --bw-seconds within 0..600");
        return 2;
    }
    return bench(&o);
}
