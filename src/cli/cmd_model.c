/*
 * cmd_model.c — `idlegrid model info | synth | quantize | compare`: inspect a GGUF
 * model, write a random-weight one, re-encode one's weights, and measure how far two
 * models' next-token distributions are apart over a text (quantization quality).
 */
#include "cli.h"
#include "engine.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- info ---------------------------------------------------------------------- */

static int model_info(int argc, char **argv)
{
    bool as_json = false;
    const ig_flag flags[] = {{"json", 0, IG_FLAG_BOOL, &as_json, NULL, "print one JSON object"}};
    const ig_cli_spec spec = {"idlegrid model info MODEL [--json]",
                              "Prints a model's architecture, shapes, weight types, tokenizer and sizes.",
                              flags, 1, 1, 1};
    const char **pos;
    int npos;
    bool done;
    int rc = ig_cli_parse(&spec, argc, argv, &pos, &npos, &done);
    if (rc || done)
        return rc;
    ig_err err = {0};
    ig_model *m = ig_model_load(pos[0], &err);
    if (!m) {
        ig_cli_fail("%s", err.msg);
        return 1;
    }
    const ig_model_info *in = ig_model_get_info(m);
    const ig_tokenizer *tok = ig_model_tokenizer(m);
    const ig_gguf *g = ig_model_gguf(m);
    /* tensors and bytes per weight type */
    int64_t count[IG_TYPE_COUNT] = {0};
    uint64_t bytes[IG_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++) {
        const ig_tensor *t = ig_gguf_tensor_at(g, i);
        if ((unsigned)t->type < IG_TYPE_COUNT) {
            count[t->type]++;
            bytes[t->type] += t->size;
        }
    }
    if (as_json) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(pos[0]));
        json_object_set_new(o, "name", json_string(in->name));
        json_object_set_new(o, "architecture", json_string(in->arch));
        json_object_set_new(o, "gguf_version", json_integer(ig_gguf_version(g)));
        json_object_set_new(o, "n_vocab", json_integer(in->n_vocab));
        json_object_set_new(o, "n_ctx_train", json_integer(in->n_ctx_train));
        json_object_set_new(o, "n_embd", json_integer(in->n_embd));
        json_object_set_new(o, "n_layer", json_integer(in->n_layer));
        json_object_set_new(o, "n_head", json_integer(in->n_head));
        json_object_set_new(o, "n_head_kv", json_integer(in->n_head_kv));
        json_object_set_new(o, "n_ff", json_integer(in->n_ff));
        json_object_set_new(o, "head_dim", json_integer(in->head_dim));
        json_object_set_new(o, "rope_freq_base", json_real(in->rope_freq_base));
        json_object_set_new(o, "rope_freq_scale", json_real(in->rope_freq_scale));
        json_object_set_new(o, "norm_eps", json_real(in->norm_eps));
        json_object_set_new(o, "tied_output", json_boolean(in->tied_output));
        json_object_set_new(o, "main_type", json_string(ig_type_name(in->main_type)));
        json_object_set_new(o, "n_params", json_integer((json_int_t)in->n_params));
        json_object_set_new(o, "weight_bytes", json_integer((json_int_t)in->weight_bytes));
        json_object_set_new(o, "file_bytes", json_integer((json_int_t)in->file_bytes));
        json_object_set_new(o, "chat_template", json_string(in->chat_template_family));
        json_t *types = json_object();
        for (int t = 0; t < IG_TYPE_COUNT; t++)
            if (count[t]) {
                json_t *e = json_object();
                json_object_set_new(e, "tensors", json_integer(count[t]));
                json_object_set_new(e, "bytes", json_integer((json_int_t)bytes[t]));
                json_object_set_new(types, ig_type_name((uint32_t)t), e);
            }
        json_object_set_new(o, "types", types);
        json_t *tk = json_object();
        json_object_set_new(tk, "model", json_string(ig_tokenizer_model(tok)));
        json_object_set_new(tk, "pre", json_string(ig_tokenizer_pre(tok)));
        json_object_set_new(tk, "n_vocab", json_integer(ig_tokenizer_n_vocab(tok)));
        json_object_set_new(tk, "bos", json_integer(ig_tokenizer_bos(tok)));
        json_object_set_new(tk, "eos", json_integer(ig_tokenizer_eos(tok)));
        json_object_set_new(tk, "adds_bos", json_boolean(ig_tokenizer_adds_bos(tok)));
        json_object_set_new(o, "tokenizer", tk);
        char *s = json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(9));
        puts(s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        printf("%s: %s (GGUF v%u)\n", pos[0], in->name, ig_gguf_version(g));
        printf("  architecture   %s\n", in->arch);
        printf("  shape          vocab %d, dim %d, layers %d, heads %d (kv %d, head dim %d), ffn %d\n",
               in->n_vocab, in->n_embd, in->n_layer, in->n_head, in->n_head_kv, in->head_dim, in->n_ff);
        printf("  context        %d (training)\n", in->n_ctx_train);
        printf("  rope           base %g, scale %g\n", (double)in->rope_freq_base, (double)in->rope_freq_scale);
        printf("  norm eps       %g\n", (double)in->norm_eps);
        printf("  output         %s\n", in->tied_output ? "tied to token_embd" : "output.weight");
        printf("  parameters     %.2f M\n", (double)in->n_params / 1e6);
        printf("  weights        %.2f MB, mostly %s\n", (double)in->weight_bytes / 1e6, ig_type_name(in->main_type));
        for (int t = 0; t < IG_TYPE_COUNT; t++)
            if (count[t])
                printf("    %-6s       %lld tensors, %.2f MB\n", ig_type_name((uint32_t)t),
                       (long long)count[t], (double)bytes[t] / 1e6);
        printf("  file           %.2f MB\n", (double)in->file_bytes / 1e6);
        printf("  tokenizer      %s (pre %s), %d tokens, bos %d, eos %d%s\n", ig_tokenizer_model(tok),
               ig_tokenizer_pre(tok), ig_tokenizer_n_vocab(tok), ig_tokenizer_bos(tok), ig_tokenizer_eos(tok),
               ig_tokenizer_adds_bos(tok) ? ", adds BOS" : "");
        printf("  chat template  %s\n", in->chat_template_family);
    }
    ig_model_free(m);
    return 0;
}

/* ---- synth --------------------------------------------------------------------- */

static bool parse_type(const char *s, ig_type *out)
{
    static const ig_type types[] = {IG_TYPE_F32, IG_TYPE_F16, IG_TYPE_BF16, IG_TYPE_Q8_0,
                                    IG_TYPE_Q4_0, IG_TYPE_Q4_K, IG_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(s, ig_type_name(types[i])) == 0) {
            *out = types[i];
            return true;
        }
    return false;
}

static int model_synth(int argc, char **argv)
{
    ig_synth_params p = ig_synth_default_params();
    const char *arch = NULL, *type = "f32", *tok_from = NULL;
    int vocab = p.n_vocab, dim = p.n_embd, layers = p.n_layer, heads = p.n_head, kv_heads = -1,
        ffn = p.n_ff, ctx = p.n_ctx;
    float rope_base = p.rope_freq_base;
    bool tied = false;
    uint64_t seed = p.seed;
    const ig_flag flags[] = {
        {"arch", 0, IG_FLAG_STRING, &arch, "A", "llama or qwen2 (required)"},
        {"vocab", 0, IG_FLAG_INT, &vocab, "N", "vocabulary size (default 512; ignored with --tokenizer-from)"},
        {"dim", 0, IG_FLAG_INT, &dim, "N", "embedding size (default 64)"},
        {"layers", 0, IG_FLAG_INT, &layers, "N", "layers (default 2)"},
        {"heads", 0, IG_FLAG_INT, &heads, "N", "attention heads (default 4)"},
        {"kv-heads", 0, IG_FLAG_INT, &kv_heads, "N", "key/value heads (default: = heads)"},
        {"ffn", 0, IG_FLAG_INT, &ffn, "N", "feed-forward size (default 128)"},
        {"ctx", 0, IG_FLAG_INT, &ctx, "N", "training context (default 256)"},
        {"rope-base", 0, IG_FLAG_FLOAT, &rope_base, "F", "RoPE frequency base (default 10000)"},
        {"tied", 0, IG_FLAG_BOOL, &tied, NULL, "tie the output to the token embeddings"},
        {"type", 0, IG_FLAG_STRING, &type, "T", "weight type: f32 f16 bf16 q8_0 q4_0 q4_k q6_k (default f32)"},
        {"seed", 0, IG_FLAG_U64, &seed, "S", "random seed (default 1)"},
        {"tokenizer-from", 0, IG_FLAG_STRING, &tok_from, "GGUF", "copy the tokenizer of this model"},
    };
    const ig_cli_spec spec = {"idlegrid model synth OUT --arch llama|qwen2 [options]",
                              "Writes a random-weight model of the given shape to OUT (test and benchmark fixtures).",
                              flags, (int)(sizeof flags / sizeof flags[0]), 1, 1};
    const char **pos;
    int npos;
    bool done;
    int rc = ig_cli_parse(&spec, argc, argv, &pos, &npos, &done);
    if (rc || done)
        return rc;
    if (!arch) {
        ig_cli_fail("synth: --arch llama|qwen2 is required");
        return 2;
    }
    if (!parse_type(type, &p.type)) {
        ig_cli_fail("synth: --type: '%s' is not one of f32 f16 bf16 q8_0 q4_0 q4_k q6_k", type);
        return 2;
    }
    p.arch = arch;
    p.n_vocab = vocab;
    p.n_embd = dim;
    p.n_layer = layers;
    p.n_head = heads;
    p.n_head_kv = kv_heads < 0 ? heads : kv_heads;
    p.n_ff = ffn;
    p.n_ctx = ctx;
    p.rope_freq_base = rope_base;
    p.tied_output = tied;
    p.seed = seed;
    p.tokenizer_from = tok_from;
    ig_err err = {0};
    if (ig_model_synth(pos[0], &p, &err)) {
        ig_cli_fail("synth: %s", err.msg);
        return err.code == IG_ERR_INVALID || err.code == IG_ERR_UNSUPPORTED ? 2 : 1;
    }
    return 0;
}

/* ---- quantize ------------------------------------------------------------------ */

static int model_quantize(int argc, char **argv)
{
    const ig_cli_spec spec = {"idlegrid model quantize IN OUT TYPE",
                              "Re-encodes IN's weight matrices as TYPE (f16, bf16, q8_0, q4_0, q4_k, q6_k,\n"
                              "q4_k_m) and writes OUT; metadata and 1-D tensors are kept.",
                              NULL, 0, 3, 3};
    const char **pos;
    int npos;
    bool done;
    int rc = ig_cli_parse(&spec, argc, argv, &pos, &npos, &done);
    if (rc || done)
        return rc;
    ig_err err = {0};
    if (ig_model_quantize(pos[0], pos[1], pos[2], &err)) {
        ig_cli_fail("quantize: %s", err.msg);
        return err.code == IG_ERR_INVALID ? 2 : 1;
    }
    return 0;
}

/* ---- compare ------------------------------------------------------------------- */

/* log-softmax of n logits into out, in double */
static void log_softmax(const float *logits, int32_t n, double *out)
{
    double max = -INFINITY, sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        if (logits[i] > max)
            max = logits[i];
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)logits[i] - max);
    double lse = max + log(sum);
    for (int32_t i = 0; i < n; i++)
        out[i] = (double)logits[i] - lse;
}

static int32_t argmax_of(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static char *read_text(const char *path, long offset, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ig_cli_fail("compare: cannot open %s", path);
        return NULL;
    }
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size < 0 || offset > size) {
            ig_cli_fail("compare: --offset %ld is past the end of %s (%ld bytes)", offset, path, size);
        } else if (fseek(f, offset, SEEK_SET) == 0 && (buf = malloc((size_t)(size - offset) + 1))) {
            *len = fread(buf, 1, (size_t)(size - offset), f);
            buf[*len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static int model_compare(int argc, char **argv)
{
    const char *text_path = NULL, *kernels = NULL;
    int64_t offset = 0;
    int n_tokens = 256, threads = 0;
    bool as_json = false;
    const ig_flag flags[] = {
        {"text", 0, IG_FLAG_STRING, &text_path, "FILE", "UTF-8 text to run both models over (required)"},
        {"offset", 0, IG_FLAG_I64, &offset, "N", "start at this byte of the text (default 0)"},
        {"tokens", 0, IG_FLAG_INT, &n_tokens, "N", "tokens to use, BOS included (default 256)"},
        {"threads", 't', IG_FLAG_INT, &threads, "N", "threads; 0 = all CPUs"},
        {"kernels", 0, IG_FLAG_STRING, &kernels, "ISA", "kernel set (default: fastest)"},
        {"json", 0, IG_FLAG_BOOL, &as_json, NULL, "print one JSON object"},
    };
    const ig_cli_spec spec = {
        "idlegrid model compare A B --text FILE [--offset N] [--tokens N] [--json]",
        "Runs models A and B teacher-forced over the first N tokens of the text (tokenized by A,\n"
        "with BOS) and reports, over every position, how often their next-token argmax agrees\n"
        "and the mean KL divergence KL(A || B) of their next-token distributions.",
        flags, (int)(sizeof flags / sizeof flags[0]), 2, 2};
    const char **pos;
    int npos;
    bool done;
    int rc = ig_cli_parse(&spec, argc, argv, &pos, &npos, &done);
    if (rc || done)
        return rc;
    if (!text_path) {
        ig_cli_fail("compare: --text FILE is required");
        return 2;
    }
    if (n_tokens < 2 || offset < 0 || threads < 0) {
        ig_cli_fail("compare: %s", n_tokens < 2 ? "--tokens must be at least 2"
                                   : offset < 0 ? "--offset must be >= 0"
                                                : "--threads must be >= 0");
        return 2;
    }
    int status = 1;
    ig_err err = {0};
    ig_model *ma = NULL, *mb = NULL;
    ig_ctx *ca = NULL, *cb = NULL;
    int32_t *tokens = NULL;
    double *la = NULL, *lb = NULL;
    size_t len = 0;
    char *text = read_text(text_path, (long)offset, &len);
    if (!text)
        goto out;
    if (!(ma = ig_model_load(pos[0], &err)) || !(mb = ig_model_load(pos[1], &err))) {
        ig_cli_fail("%s", err.msg);
        goto out;
    }
    const int32_t n_vocab = ig_model_get_info(ma)->n_vocab;
    if (ig_model_get_info(mb)->n_vocab != n_vocab) {
        ig_cli_fail("compare: the models' vocabularies differ (%d and %d)", n_vocab, ig_model_get_info(mb)->n_vocab);
        goto out;
    }
    const ig_tokenizer *tok = ig_model_tokenizer(ma);
    tokens = malloc(sizeof(int32_t) * (size_t)n_tokens);
    la = malloc(sizeof(double) * (size_t)n_vocab);
    lb = malloc(sizeof(double) * (size_t)n_vocab);
    if (!tokens || !la || !lb) {
        ig_cli_fail("compare: out of memory");
        goto out;
    }
    int64_t n = ig_tokenize(tok, text, len, ig_tokenizer_adds_bos(tok), false, tokens, n_tokens, &err);
    if (n < 0) {
        ig_cli_fail("compare: tokenizing %s: %s", text_path, err.msg);
        goto out;
    }
    if (n < n_tokens) {
        ig_cli_fail("compare: the text has only %lld tokens, %d asked for", (long long)n, n_tokens);
        goto out;
    }
    ig_ctx_params cp = ig_ctx_default_params();
    cp.n_ctx = n_tokens;
    cp.n_threads = threads;
    cp.kernels = kernels;
    if (!(ca = ig_ctx_new(ma, &cp, &err)) || !(cb = ig_ctx_new(mb, &cp, &err)) ||
        ig_ctx_decode(ca, tokens, n_tokens, true, &err) || ig_ctx_decode(cb, tokens, n_tokens, true, &err)) {
        ig_cli_fail("compare: %s", err.msg);
        goto out;
    }
    int agree = 0;
    double kl_sum = 0.0, kl_max = 0.0;
    for (int32_t i = 0; i < n_tokens; i++) {
        const float *a = ig_ctx_logits(ca, i), *b = ig_ctx_logits(cb, i);
        agree += argmax_of(a, n_vocab) == argmax_of(b, n_vocab);
        log_softmax(a, n_vocab, la);
        log_softmax(b, n_vocab, lb);
        double kl = 0.0;
        for (int32_t v = 0; v < n_vocab; v++)
            kl += exp(la[v]) * (la[v] - lb[v]);
        kl_sum += kl;
        if (kl > kl_max)
            kl_max = kl;
    }
    double agreement = (double)agree / n_tokens, mean_kl = kl_sum / n_tokens;
    if (as_json)
        printf("{\"positions\":%d,\"argmax_agreement\":%.6f,\"mean_kl\":%.8f,\"max_kl\":%.8f}\n", n_tokens,
               agreement, mean_kl, kl_max);
    else
        printf("%d positions: argmax agreement %.2f %%, mean KL(A||B) %.6f, max %.6f\n", n_tokens,
               agreement * 100.0, mean_kl, kl_max);
    status = 0;
out:
    free(text);
    free(tokens);
    free(la);
    free(lb);
    ig_ctx_free(ca);
    ig_ctx_free(cb);
    ig_model_free(ma);
    ig_model_free(mb);
    return status;
}

/* ---- dispatch ------------------------------------------------------------------ */

int ig_cmd_model(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
        const char *summary;
    } subs[] = {
        {"info", model_info, "architecture, shapes, types, tokenizer and sizes of a GGUF model"},
        {"synth", model_synth, "write a random-weight model of any shape"},
        {"quantize", model_quantize, "re-encode a model's weights (f16, bf16, q8_0, q4_0, q4_k, q6_k, q4_k_m)"},
        {"compare", model_compare, "argmax agreement and KL divergence of two models over a text"},
    };
    const size_t n_subs = sizeof subs / sizeof subs[0];
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *out = argc < 2 ? stderr : stdout;
        fprintf(out, "usage: idlegrid model SUBCOMMAND ...   (idlegrid model SUBCOMMAND --help)\n\n");
        for (size_t i = 0; i < n_subs; i++)
            fprintf(out, "  %-9s %s\n", subs[i].name, subs[i].summary);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < n_subs; i++)
        if (strcmp(argv[1], subs[i].name) == 0) {
            char shown[32]; /* messages name the command as typed: "model info" */
            snprintf(shown, sizeof shown, "model %s", subs[i].name);
            argv[1] = shown;
            return subs[i].run(argc - 1, argv + 1);
        }
    ig_cli_fail("model: unknown subcommand '%s' (info, synth, quantize, compare)", argv[1]);
    return 2;
}
