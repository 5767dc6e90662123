/*
 * model_internal.h — engine-private: the loaded model's layout, shared by model.c
 * (loading), forward.c (the forward pass) and the files that inspect a model.
 *
 * Every tensor pointer here points into the GGUF mapping (weights are never copied).
 * Shapes are checked once at load time, so the forward pass may trust them.
 */
#ifndef IG_ENGINE_MODEL_INTERNAL_H
#define IG_ENGINE_MODEL_INTERNAL_H

#include "engine.h"

#define IG_MAX_LAYERS 512

typedef enum {
    IG_ROPE_NORMAL, /* rotate adjacent pairs (x[2i], x[2i+1]): llama */
    IG_ROPE_NEOX,   /* rotate halves (x[i], x[i + n_rot/2]): qwen2 */
} ig_rope_style;

typedef struct {
    const ig_tensor *attn_norm;            /* [n_embd] F32 */
    const ig_tensor *wq, *wk, *wv, *wo;    /* [n_embd -> n_head*hd], [.. -> n_kv*hd] x2, [n_head*hd -> n_embd] */
    const ig_tensor *bq, *bk, *bv;         /* qwen2 biases, F32, else NULL */
    const ig_tensor *ffn_norm;             /* [n_embd] F32 */
    const ig_tensor *ffn_gate, *ffn_up;    /* [n_embd -> n_ff] */
    const ig_tensor *ffn_down;             /* [n_ff -> n_embd] */
} ig_layer;

struct ig_model {
    ig_gguf *gguf;
    ig_tokenizer *tok;
    ig_model_info info;
    ig_rope_style rope_style;
    int32_t n_rot;                 /* dimensions of each head that RoPE rotates */
    const float *rope_freq_factors;/* [n_rot/2] or NULL (rope_freqs.weight) */
    const ig_tensor *tok_embd;     /* [n_embd, n_vocab] */
    const ig_tensor *output_norm;  /* [n_embd] F32 */
    const ig_tensor *output;       /* [n_embd, n_vocab]: output.weight or tok_embd when tied */
    ig_layer *layers;              /* [n_layer] */
};

/* forward.c: the model a context runs, and the token count of its last decode. */
const ig_model *ig_ctx_model(const ig_ctx *c);
int32_t ig_ctx_n_last(const ig_ctx *c);

/* forward.c: the exponential of the softmax and SwiGLU, on eight values in place (for
 * tests: within one ulp of expf on [-87, 88], +0 below, +inf above). */
void ig_exp8(float v[8]);

/* synth.c: rows x cols floats encoded as a weight type with ig_quantize_row, into a
 * new buffer (*out, *size; the caller frees); and general.file_type for a type. */
ig_code ig_encode_rows(ig_type type, const float *src, int64_t rows, int64_t cols, void **out,
                       size_t *size, ig_err *err);
uint32_t ig_file_type_of(ig_type t);

#endif /* IG_ENGINE_MODEL_INTERNAL_H */
