/*
 * model.c — loads a GGUF model: hyper-parameters from the `<arch>.*` metadata, every
 * weight tensor looked up by name and its shape checked against them, tied or untied
 * output, and the chat template family; ig_chat_tokenize renders a conversation.
 *
 * Nothing is copied: tensors point into the reader's mapping. After ig_model_load
 * succeeds, forward.c may trust every shape recorded here.
 */
#include "engine.h"
#include "kernels.h"
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- metadata helpers ----------------------------------------------------- */

static bool arch_key_u32(const ig_gguf *g, const char *arch, const char *suffix, uint32_t *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return ig_gguf_get_u32(g, key, out);
}

static bool arch_key_f32(const ig_gguf *g, const char *arch, const char *suffix, float *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return ig_gguf_get_f32(g, key, out);
}

static ig_code need_u32(const ig_gguf *g, const char *arch, const char *suffix, uint32_t lo,
                        uint32_t hi, int32_t *out, ig_err *err)
{
    uint32_t v;
    if (!arch_key_u32(g, arch, suffix, &v))
        return ig_err_set(err, IG_ERR_FORMAT, "metadata key '%s.%s' is missing or not an integer",
                          arch, suffix);
    if (v < lo || v > hi)
        return ig_err_set(err, IG_ERR_FORMAT, "metadata key '%s.%s' = %u is outside [%u, %u]", arch,
                          suffix, v, lo, hi);
    *out = (int32_t)v;
    return IG_OK;
}

/* A tensor that must exist with exactly the shape [n0] or [n0, n1]. */
static const ig_tensor *need_tensor(const ig_gguf *g, const char *name, int64_t n0, int64_t n1,
                                    ig_err *err)
{
    const ig_tensor *t = ig_gguf_tensor_find(g, name);
    if (!t) {
        ig_err_set(err, IG_ERR_FORMAT, "tensor '%s' is missing", name);
        return NULL;
    }
    int64_t want_dims = n1 ? 2 : 1;
    bool ok = t->ne[0] == n0 && t->ne[1] == (n1 ? n1 : 1) && t->ne[2] == 1 && t->ne[3] == 1;
    if (!ok) {
        ig_err_set(err, IG_ERR_FORMAT,
                   "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld%s%lld] (%lld-D)",
                   name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                   (long long)t->ne[3], (long long)n0, n1 ? ", " : "", (long long)(n1 ? n1 : 1),
                   (long long)want_dims);
        return NULL;
    }
    if (!n1 && t->type != IG_TYPE_F32) {
        ig_err_set(err, IG_ERR_UNSUPPORTED, "tensor '%s' is %s; 1-D tensors must be f32", name,
                   ig_type_name(t->type));
        return NULL;
    }
    if (n1 && n0 % ig_type_block_size(t->type) != 0) {
        ig_err_set(err, IG_ERR_FORMAT, "tensor '%s': row length %lld is not a multiple of the %s block",
                   name, (long long)n0, ig_type_name(t->type));
        return NULL;
    }
    return t;
}

static const ig_tensor *layer_tensor(const ig_gguf *g, int il, const char *what, int64_t n0,
                                     int64_t n1, ig_err *err)
{
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", il, what);
    return need_tensor(g, name, n0, n1, err);
}

/* ---- chat template family -------------------------------------------------- */

static void detect_chat_family(const ig_gguf *g, char *out, size_t cap)
{
    ig_str tmpl;
    const char *family = "plain";
    if (ig_gguf_get_str(g, "tokenizer.chat_template", &tmpl)) {
        /* Look for each family's distinctive marker inside the Jinja source. */
        static const struct {
            const char *marker, *family;
        } marks[] = {
            {"<|im_start|>", "chatml"},
            {"<|start_header_id|>", "llama3"},
            {"<|user|>", "zephyr"},
            {"[INST]", "llama2"},
        };
        for (size_t i = 0; i < sizeof marks / sizeof marks[0] && strcmp(family, "plain") == 0; i++) {
            size_t ml = strlen(marks[i].marker);
            for (uint64_t k = 0; k + ml <= tmpl.len; k++)
                if (memcmp(tmpl.ptr + k, marks[i].marker, ml) == 0) {
                    family = marks[i].family;
                    break;
                }
        }
    }
    snprintf(out, cap, "%s", family);
}

/* ---- load ----------------------------------------------------------------- */

static ig_code load_hparams(ig_model *m, const char *path, ig_err *err)
{
    const ig_gguf *g = m->gguf;
    ig_model_info *in = &m->info;
    ig_str s;
    if (!ig_gguf_get_str(g, "general.architecture", &s))
        return ig_err_set(err, IG_ERR_FORMAT, "metadata key 'general.architecture' is missing");
    if (s.len >= sizeof in->arch)
        return ig_err_set(err, IG_ERR_UNSUPPORTED, "architecture name too long");
    memcpy(in->arch, s.ptr, s.len);
    in->arch[s.len] = '\0';
    if (strcmp(in->arch, "llama") == 0)
        m->rope_style = IG_ROPE_NORMAL;
    else if (strcmp(in->arch, "qwen2") == 0)
        m->rope_style = IG_ROPE_NEOX;
    else
        return ig_err_set(err, IG_ERR_UNSUPPORTED,
                          "architecture '%s' is not supported (supported: llama, qwen2)", in->arch);

    if (ig_gguf_get_str(g, "general.name", &s) && s.len > 0) {
        size_t n = s.len < sizeof in->name - 1 ? (size_t)s.len : sizeof in->name - 1;
        memcpy(in->name, s.ptr, n);
        in->name[n] = '\0';
    } else {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        snprintf(in->name, sizeof in->name, "%s", base);
        char *dot = strrchr(in->name, '.');
        if (dot)
            *dot = '\0';
    }

    const char *a = in->arch;
    ig_code rc;
    if ((rc = need_u32(g, a, "embedding_length", 1, 1 << 16, &in->n_embd, err)) ||
        (rc = need_u32(g, a, "block_count", 1, IG_MAX_LAYERS, &in->n_layer, err)) ||
        (rc = need_u32(g, a, "feed_forward_length", 1, 1 << 20, &in->n_ff, err)) ||
        (rc = need_u32(g, a, "attention.head_count", 1, 1024, &in->n_head, err)))
        return rc;
    in->n_head_kv = in->n_head;
    {
        char key[160];
        snprintf(key, sizeof key, "%s.attention.head_count_kv", a);
        if (ig_gguf_find_key(g, key) >= 0 &&
            (rc = need_u32(g, a, "attention.head_count_kv", 1, 1024, &in->n_head_kv, err)))
            return rc;
        snprintf(key, sizeof key, "%s.context_length", a);
        in->n_ctx_train = 2048;
        if (ig_gguf_find_key(g, key) >= 0 &&
            (rc = need_u32(g, a, "context_length", 1, 1 << 24, &in->n_ctx_train, err)))
            return rc;
    }
    if (in->n_embd % in->n_head != 0)
        return ig_err_set(err, IG_ERR_FORMAT, "%s.embedding_length %d is not a multiple of head_count %d",
                          a, in->n_embd, in->n_head);
    if (in->n_head % in->n_head_kv != 0)
        return ig_err_set(err, IG_ERR_FORMAT, "%s.attention.head_count %d is not a multiple of head_count_kv %d",
                          a, in->n_head, in->n_head_kv);
    in->head_dim = in->n_embd / in->n_head;
    uint32_t key_len;
    if (arch_key_u32(g, a, "attention.key_length", &key_len) && (int32_t)key_len != in->head_dim)
        return ig_err_set(err, IG_ERR_UNSUPPORTED,
                          "%s.attention.key_length %u differs from embedding_length/head_count %d",
                          a, key_len, in->head_dim);

    uint32_t n_rot = (uint32_t)in->head_dim;
    arch_key_u32(g, a, "rope.dimension_count", &n_rot);
    if (n_rot == 0 || n_rot > (uint32_t)in->head_dim || n_rot % 2)
        return ig_err_set(err, IG_ERR_FORMAT, "%s.rope.dimension_count %u must be even and at most the head size %d",
                          a, n_rot, in->head_dim);
    m->n_rot = (int32_t)n_rot;

    in->rope_freq_base = 10000.0f;
    arch_key_f32(g, a, "rope.freq_base", &in->rope_freq_base);
    if (!(in->rope_freq_base > 0.0f) || !isfinite(in->rope_freq_base))
        return ig_err_set(err, IG_ERR_FORMAT, "%s.rope.freq_base must be positive", a);
    in->rope_freq_scale = 1.0f;
    {
        char key[160];
        snprintf(key, sizeof key, "%s.rope.scaling.type", a);
        ig_str st = {0};
        float factor = 0.0f;
        bool has_type = ig_gguf_get_str(g, key, &st);
        bool has_factor = arch_key_f32(g, a, "rope.scaling.factor", &factor);
        if (has_type && !(st.len == 4 && memcmp(st.ptr, "none", 4) == 0) &&
            !(st.len == 6 && memcmp(st.ptr, "linear", 6) == 0))
            return ig_err_set(err, IG_ERR_UNSUPPORTED, "%s.rope.scaling.type '%.*s' is not supported (none, linear)",
                              a, (int)(st.len > 64 ? 64 : st.len), st.ptr);
        if (!has_factor)
            has_factor = arch_key_f32(g, a, "rope.scale_linear", &factor);
        bool none = has_type && st.len == 4;
        if (has_factor && !none && factor != 0.0f && factor != 1.0f) {
            if (!(factor > 0.0f) || !isfinite(factor))
                return ig_err_set(err, IG_ERR_FORMAT, "%s.rope.scaling.factor must be positive", a);
            in->rope_freq_scale = 1.0f / factor;
        }
    }
    in->norm_eps = 1e-5f;
    if (!arch_key_f32(g, a, "attention.layer_norm_rms_epsilon", &in->norm_eps) &&
        strcmp(a, "qwen2") == 0)
        in->norm_eps = 1e-6f;
    if (!(in->norm_eps > 0.0f) || !(in->norm_eps < 1.0f))
        return ig_err_set(err, IG_ERR_FORMAT, "%s.attention.layer_norm_rms_epsilon %g is out of range",
                          a, (double)in->norm_eps);
    return IG_OK;
}

static ig_code load_tensors(ig_model *m, ig_err *err)
{
    const ig_gguf *g = m->gguf;
    ig_model_info *in = &m->info;
    const int64_t E = in->n_embd, F = in->n_ff, HD = in->head_dim;
    const int64_t QD = (int64_t)in->n_head * HD, KVD = (int64_t)in->n_head_kv * HD;

    const ig_tensor *te = ig_gguf_tensor_find(g, "token_embd.weight");
    if (!te)
        return ig_err_set(err, IG_ERR_FORMAT, "tensor 'token_embd.weight' is missing");
    if (te->ne[1] < 1 || te->ne[1] > (1 << 24))
        return ig_err_set(err, IG_ERR_FORMAT, "tensor 'token_embd.weight' has an absurd vocabulary of %lld rows",
                          (long long)te->ne[1]);
    in->n_vocab = (int32_t)te->ne[1];
    if (!(m->tok_embd = need_tensor(g, "token_embd.weight", E, in->n_vocab, err)) ||
        !(m->output_norm = need_tensor(g, "output_norm.weight", E, 0, err)))
        return err ? err->code : IG_ERR_FORMAT;
    if (ig_gguf_tensor_find(g, "output.weight")) {
        if (!(m->output = need_tensor(g, "output.weight", E, in->n_vocab, err)))
            return err ? err->code : IG_ERR_FORMAT;
        in->tied_output = false;
    } else {
        m->output = m->tok_embd;
        in->tied_output = true;
    }
    const ig_tensor *rf = ig_gguf_tensor_find(g, "rope_freqs.weight");
    if (rf) {
        if (!need_tensor(g, "rope_freqs.weight", m->n_rot / 2, 0, err))
            return err ? err->code : IG_ERR_FORMAT;
        m->rope_freq_factors = rf->data;
    }

    m->layers = calloc((size_t)in->n_layer, sizeof *m->layers);
    if (!m->layers)
        return ig_err_set(err, IG_ERR_NOMEM, "out of memory for %d layers", in->n_layer);
    bool biases = strcmp(in->arch, "qwen2") == 0;
    for (int il = 0; il < in->n_layer; il++) {
        ig_layer *L = &m->layers[il];
        if (!(L->attn_norm = layer_tensor(g, il, "attn_norm.weight", E, 0, err)) ||
            !(L->wq = layer_tensor(g, il, "attn_q.weight", E, QD, err)) ||
            !(L->wk = layer_tensor(g, il, "attn_k.weight", E, KVD, err)) ||
            !(L->wv = layer_tensor(g, il, "attn_v.weight", E, KVD, err)) ||
            !(L->wo = layer_tensor(g, il, "attn_output.weight", QD, E, err)) ||
            !(L->ffn_norm = layer_tensor(g, il, "ffn_norm.weight", E, 0, err)) ||
            !(L->ffn_gate = layer_tensor(g, il, "ffn_gate.weight", E, F, err)) ||
            !(L->ffn_up = layer_tensor(g, il, "ffn_up.weight", E, F, err)) ||
            !(L->ffn_down = layer_tensor(g, il, "ffn_down.weight", F, E, err)))
            return err ? err->code : IG_ERR_FORMAT;
        if (biases) {
            if (!(L->bq = layer_tensor(g, il, "attn_q.bias", QD, 0, err)) ||
                !(L->bk = layer_tensor(g, il, "attn_k.bias", KVD, 0, err)) ||
                !(L->bv = layer_tensor(g, il, "attn_v.bias", KVD, 0, err)))
                return err ? err->code : IG_ERR_FORMAT;
        }
    }

    /* Sizes for `model info` and memory planning. */
    uint64_t bytes_by_type[IG_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++) {
        const ig_tensor *t = ig_gguf_tensor_at(g, i);
        in->n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        in->weight_bytes += t->size;
        if ((unsigned)t->type < IG_TYPE_COUNT)
            bytes_by_type[t->type] += t->size;
    }
    in->main_type = IG_TYPE_F32;
    for (int t = 0; t < IG_TYPE_COUNT; t++)
        if (bytes_by_type[t] > bytes_by_type[in->main_type])
            in->main_type = (ig_type)t;
    in->file_bytes = ig_gguf_file_size(g);
    return IG_OK;
}

ig_model *ig_model_load(const char *path, ig_err *err)
{
    ig_model *m = calloc(1, sizeof *m);
    if (!m) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ig_code rc = IG_OK;
    if (!(m->gguf = ig_gguf_open(path, err))) {
        rc = err ? err->code : IG_ERR_FORMAT;
        goto fail;
    }
    if ((rc = load_hparams(m, path, err)) || (rc = load_tensors(m, err)))
        goto fail;
    if (!(m->tok = ig_tokenizer_new(m->gguf, err))) {
        rc = err ? err->code : IG_ERR_FORMAT;
        goto fail;
    }
    if (ig_tokenizer_n_vocab(m->tok) > m->info.n_vocab) {
        rc = ig_err_set(err, IG_ERR_FORMAT, "the tokenizer has %d tokens but token_embd.weight only %d rows",
                        ig_tokenizer_n_vocab(m->tok), m->info.n_vocab);
        goto fail;
    }
    detect_chat_family(m->gguf, m->info.chat_template_family, sizeof m->info.chat_template_family);
    return m;
fail:
    (void)rc;
    if (err && err->code != IG_OK)
        ig_err_wrap(err, "loading %s", path);
    ig_model_free(m);
    return NULL;
}

void ig_model_free(ig_model *m)
{
    if (!m)
        return;
    ig_tokenizer_free(m->tok);
    free(m->layers);
    ig_gguf_free(m->gguf);
    free(m);
}

const ig_model_info *ig_model_get_info(const ig_model *m) { return &m->info; }
const ig_tokenizer *ig_model_tokenizer(const ig_model *m) { return m->tok; }
const ig_gguf *ig_model_gguf(const ig_model *m) { return m->gguf; }

/* ---- chat ----------------------------------------------------------------- */

/* A rendered conversation: text runs, each either plain text (never parsed for
 * special tokens: message content and template text without control tokens) or
 * exactly one control token of the template. Adjacent plain runs are merged so they
 * tokenize the way the whole rendered string would. */
#define CHAT_MAX_MESSAGES 1024
#define CHAT_MAX_RUNS (CHAT_MAX_MESSAGES * 6 + 8)

typedef struct {
    char *buf;
    size_t len, cap;
    struct {
        size_t off, len;
        bool special;
    } *runs;
    int n_runs;
    bool oom;
} chat_render;

static void chat_add(chat_render *r, const char *s, bool special)
{
    size_t n = strlen(s);
    if (r->oom || n == 0)
        return;
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *b = realloc(r->buf, cap);
        if (!b) {
            r->oom = true;
            return;
        }
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, s, n);
    bool merge = !special && r->n_runs > 0 && !r->runs[r->n_runs - 1].special;
    if (merge) {
        r->runs[r->n_runs - 1].len += n;
    } else {
        if (r->n_runs >= CHAT_MAX_RUNS) {
            r->oom = true;
            return;
        }
        r->runs[r->n_runs].off = r->len;
        r->runs[r->n_runs].len = n;
        r->runs[r->n_runs].special = special;
        r->n_runs++;
    }
    r->len += n;
}

static const char *role_title(const char *role)
{
    if (strcmp(role, "system") == 0)
        return "System";
    if (strcmp(role, "assistant") == 0)
        return "Assistant";
    return "User";
}

static void render_chat(chat_render *r, const char *family, const ig_chat_message *msgs, int32_t n,
                        bool add_gen)
{
    if (strcmp(family, "chatml") == 0) {
        for (int32_t i = 0; i < n; i++) {
            chat_add(r, "<|im_start|>", true);
            chat_add(r, msgs[i].role, false);
            chat_add(r, "\n", false);
            chat_add(r, msgs[i].content, false);
            chat_add(r, "<|im_end|>", true);
            chat_add(r, "\n", false);
        }
        if (add_gen) {
            chat_add(r, "<|im_start|>", true);
            chat_add(r, "assistant\n", false);
        }
    } else if (strcmp(family, "llama3") == 0) {
        for (int32_t i = 0; i < n; i++) {
            chat_add(r, "<|start_header_id|>", true);
            chat_add(r, msgs[i].role, false);
            chat_add(r, "<|end_header_id|>", true);
            chat_add(r, "\n\n", false);
            chat_add(r, msgs[i].content, false);
            chat_add(r, "<|eot_id|>", true);
        }
        if (add_gen) {
            chat_add(r, "<|start_header_id|>", true);
            chat_add(r, "assistant", false);
            chat_add(r, "<|end_header_id|>", true);
            chat_add(r, "\n\n", false);
        }
    } else if (strcmp(family, "zephyr") == 0) {
        for (int32_t i = 0; i < n; i++) {
            const char *tag = strcmp(msgs[i].role, "system") == 0      ? "<|system|>"
                              : strcmp(msgs[i].role, "assistant") == 0 ? "<|assistant|>"
                                                                       : "<|user|>";
            chat_add(r, tag, true);
            chat_add(r, "\n", false);
            chat_add(r, msgs[i].content, false);
            chat_add(r, "</s>", true);
            chat_add(r, "\n", false);
        }
        if (add_gen) {
            chat_add(r, "<|assistant|>", true);
            chat_add(r, "\n", false);
        }
    } else if (strcmp(family, "llama2") == 0) {
        /* [INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] user [/INST] */
        const char *system = NULL;
        bool first_user = true;
        for (int32_t i = 0; i < n; i++) {
            if (strcmp(msgs[i].role, "system") == 0) {
                system = msgs[i].content;
            } else if (strcmp(msgs[i].role, "assistant") == 0) {
                chat_add(r, " ", false);
                chat_add(r, msgs[i].content, false);
                chat_add(r, " ", false);
                chat_add(r, "</s>", true);
            } else {
                if (!first_user)
                    chat_add(r, "<s>", true);
                chat_add(r, "[INST] ", false);
                if (system && first_user) {
                    chat_add(r, "<<SYS>>\n", false);
                    chat_add(r, system, false);
                    chat_add(r, "\n<</SYS>>\n\n", false);
                }
                chat_add(r, msgs[i].content, false);
                chat_add(r, " [/INST]", false);
                first_user = false;
            }
        }
    } else {
        for (int32_t i = 0; i < n; i++) {
            chat_add(r, role_title(msgs[i].role), false);
            chat_add(r, ": ", false);
            chat_add(r, msgs[i].content, false);
            chat_add(r, "\n", false);
        }
        if (add_gen)
            chat_add(r, "Assistant:", false);
    }
}

int64_t ig_chat_tokenize(const ig_model *m, const ig_chat_message *msgs, int32_t n_msgs,
                         bool add_generation_prompt, int32_t *out, int64_t cap, ig_err *err)
{
    if (n_msgs < 0 || n_msgs > CHAT_MAX_MESSAGES) {
        ig_err_set(err, IG_ERR_INVALID, "a conversation holds 0 to %d messages, not %d",
                   CHAT_MAX_MESSAGES, n_msgs);
        return -1;
    }
    for (int32_t i = 0; i < n_msgs; i++)
        if (!msgs[i].role || !msgs[i].content) {
            ig_err_set(err, IG_ERR_INVALID, "message %d has no role or content", i);
            return -1;
        }
    chat_render r = {0};
    r.runs = calloc(CHAT_MAX_RUNS, sizeof *r.runs);
    if (!r.runs) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory rendering a chat");
        return -1;
    }
    render_chat(&r, m->info.chat_template_family, msgs, n_msgs, add_generation_prompt);
    int64_t total = -1;
    if (r.oom) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory rendering a chat");
        goto done;
    }
    total = 0;
    bool bos = ig_tokenizer_adds_bos(m->tok);
    if (r.n_runs == 0 && bos) {
        total = ig_tokenize(m->tok, "", 0, true, false, out, cap, err);
        goto done;
    }
    for (int i = 0; i < r.n_runs; i++) {
        int64_t used = total < cap ? total : cap;
        int64_t n = ig_tokenize(m->tok, r.buf + r.runs[i].off, r.runs[i].len, bos && i == 0,
                                r.runs[i].special, out ? out + used : NULL, cap - used, err);
        if (n < 0) {
            total = -1;
            goto done;
        }
        total += n;
    }
done:
    free(r.buf);
    free(r.runs);
    return total;
}
