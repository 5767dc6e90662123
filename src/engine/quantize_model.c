/*
 * quantize_model.c — `idlegrid model quantize IN OUT TYPE`: re-encodes a model's
 * weight matrices, keeping every metadata key and every 1-D tensor as it is.
 *
 * The type of each matrix follows llama.cpp's choices so that files compare with
 * published ones:
 *   - output.weight (or token_embd.weight when the output is tied) gets Q6_K for every
 *     quantized type but Q8_0 (rows not a multiple of 256: Q8_0);
 *   - q4_k_m: attn_v and ffn_down of the layers use_more_bits() picks get Q6_K, the
 *     rest Q4_K;
 *   - a matrix whose rows are not a multiple of the chosen type's block falls back to
 *     a block-32 type: Q8_0 (llama.cpp uses Q5_0 for Q4_K, which idlegrid lacks; Q8_0
 *     is the finer choice), or F16 when not even 32 divides the rows.
 * The row quantizer itself is kernels' ig_quantize_row.
 */
#include "engine.h"
#include "kernels.h"
#include "model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { MIX_PLAIN, MIX_Q4_K_M } mix_kind;

static bool parse_target(const char *name, ig_type *type, mix_kind *mix, uint32_t *file_type)
{
    static const struct {
        const char *name;
        ig_type type;
        mix_kind mix;
        uint32_t file_type; /* llama.cpp's general.file_type */
    } targets[] = {
        {"f16", IG_TYPE_F16, MIX_PLAIN, 1},     {"bf16", IG_TYPE_BF16, MIX_PLAIN, 32},
        {"q8_0", IG_TYPE_Q8_0, MIX_PLAIN, 7},   {"q4_0", IG_TYPE_Q4_0, MIX_PLAIN, 2},
        {"q4_k", IG_TYPE_Q4_K, MIX_PLAIN, 14},  {"q6_k", IG_TYPE_Q6_K, MIX_PLAIN, 18},
        {"q4_k_m", IG_TYPE_Q4_K, MIX_Q4_K_M, 15},
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        if (strcmp(name, targets[i].name) == 0) {
            *type = targets[i].type;
            *mix = targets[i].mix;
            *file_type = targets[i].file_type;
            return true;
        }
    return false;
}

static bool is_quantized(ig_type t)
{
    return t != IG_TYPE_F32 && t != IG_TYPE_F16 && t != IG_TYPE_BF16;
}

/* llama.cpp's rule for which layers get more bits: the first and last eighth, and
 * every third layer in between. */
static bool use_more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

typedef struct {
    ig_type base;
    mix_kind mix;
    bool has_output;
    int n_layer;
    int n_attn_v, i_attn_v;
} quant_plan;

static ig_type choose_type(quant_plan *q, const ig_tensor *t)
{
    ig_type type = q->base;
    bool is_output = strcmp(t->name, "output.weight") == 0 ||
                     (!q->has_output && strcmp(t->name, "token_embd.weight") == 0);
    if (is_output) {
        if (is_quantized(type) && type != IG_TYPE_Q8_0)
            type = t->ne[0] % IG_QK_K == 0 ? IG_TYPE_Q6_K : IG_TYPE_Q8_0;
    } else if (ends_with(t->name, "attn_v.weight")) {
        if (q->mix == MIX_Q4_K_M && use_more_bits(q->i_attn_v, q->n_attn_v))
            type = IG_TYPE_Q6_K;
        q->i_attn_v++;
    } else if (ends_with(t->name, "ffn_down.weight")) {
        int layer = 0;
        if (q->mix == MIX_Q4_K_M && sscanf(t->name, "blk.%d.", &layer) == 1 &&
            use_more_bits(layer, q->n_layer))
            type = IG_TYPE_Q6_K;
    }
    if (t->ne[0] % ig_type_block_size(type) != 0)
        type = t->ne[0] % IG_QK8_0 == 0 ? IG_TYPE_Q8_0 : IG_TYPE_F16;
    return type;
}

static ig_code requantize(ig_gguf_writer *w, const ig_tensor *t, ig_type type, ig_err *err)
{
    const ig_kernels *k = ig_kernels_scalar();
    const int64_t cols = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    const size_t src_row = ig_type_row_bytes(t->type, cols), dst_row = ig_type_row_bytes(type, cols);
    if (!k->to_float[t->type])
        return ig_err_set(err, IG_ERR_UNSUPPORTED, "tensor '%s': cannot read %s", t->name, ig_type_name(t->type));
    float *row = malloc(sizeof(float) * (size_t)cols);
    char *out = malloc(dst_row * (size_t)rows);
    ig_code rc = IG_OK;
    if (!row || !out) {
        rc = ig_err_set(err, IG_ERR_NOMEM, "tensor '%s': out of memory", t->name);
    } else {
        for (int64_t r = 0; r < rows; r++) {
            k->to_float[t->type]((const char *)t->data + (size_t)r * src_row, row, cols);
            ig_quantize_row(type, row, out + (size_t)r * dst_row, cols);
        }
        rc = ig_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, type, out, dst_row * (size_t)rows, err);
    }
    free(row);
    free(out);
    return rc;
}

ig_code ig_model_quantize(const char *in_path, const char *out_path, const char *type_name, ig_err *err)
{
    ig_type base;
    mix_kind mix;
    uint32_t file_type;
    if (!type_name || !parse_target(type_name, &base, &mix, &file_type))
        return ig_err_set(err, IG_ERR_INVALID,
                          "unknown type '%s' (f16, bf16, q8_0, q4_0, q4_k, q6_k, q4_k_m)",
                          type_name ? type_name : "");
    /* every type this target may write must have kernels to run it */
    const ig_type needed[] = {base, IG_TYPE_Q6_K, IG_TYPE_Q8_0};
    for (size_t i = 0; i < (is_quantized(base) ? 3u : 1u); i++)
        if (!ig_kernels_scalar()->vec_dot[needed[i]])
            return ig_err_set(err, IG_ERR_UNSUPPORTED, "type %s is not implemented yet (needed for %s)",
                              ig_type_name(needed[i]), type_name);

    ig_gguf *g = ig_gguf_open(in_path, err);
    if (!g)
        return ig_err_wrap(err, "reading %s", in_path);
    ig_gguf_writer *w = ig_gguf_writer_new();
    ig_code rc = IG_OK;
    if (!w) {
        rc = ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        goto done;
    }
    quant_plan plan = {base, mix, ig_gguf_tensor_find(g, "output.weight") != NULL, 0, 0, 0};
    {
        ig_str arch;
        char key[96];
        uint32_t n_layer = 0;
        if (ig_gguf_get_str(g, "general.architecture", &arch) && arch.len < 64) {
            snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
            ig_gguf_get_u32(g, key, &n_layer);
        }
        plan.n_layer = (int)n_layer;
    }
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++)
        if (ends_with(ig_gguf_tensor_at(g, i)->name, "attn_v.weight"))
            plan.n_attn_v++;

    for (int64_t i = 0; i < ig_gguf_n_kv(g); i++)
        ig_gguf_writer_copy_kv(w, g, i);
    ig_gguf_writer_set_u32(w, "general.file_type", file_type);

    for (int64_t i = 0; i < ig_gguf_n_tensors(g) && !rc; i++) {
        const ig_tensor *t = ig_gguf_tensor_at(g, i);
        bool matrix = t->n_dims >= 2 && ends_with(t->name, ".weight") && t->ne[1] > 1;
        if (!matrix) {
            rc = ig_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, t->data, t->size, err);
            continue;
        }
        rc = requantize(w, t, choose_type(&plan, t), err);
    }
    if (!rc)
        rc = ig_gguf_writer_write(w, out_path, err);
done:
    ig_gguf_writer_free(w);
    ig_gguf_free(g);
    return rc;
}
