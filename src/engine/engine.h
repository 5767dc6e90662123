/*
 * engine.h — the interface of idlegrid's inference engine, the bottom layer.
 *
 * A GGUF language-model runtime in portable C11 (libc, libm, pthreads only) so it
 * builds for a car's ARM computer as well as for x86. Everything above it (node agent,
 * coordinator, command line) reaches the engine through this header alone.
 *
 * Pieces, bottom up:
 *   ig_err        one error type for the whole project (code + message)
 *   ig_gguf       GGUF v2/v3 reader over mmap, every count/offset checked
 *   ig_gguf_writer  GGUF writer (model synth, model quantize, test fixtures)
 *   ig_tokenizer  SentencePiece-style and byte-level BPE tokenizers from GGUF metadata
 *   ig_model      weights (mmapped, never copied) + hyper-parameters
 *   ig_ctx        one sequence: KV cache, scratch, thread pool; decode and score
 *   ig_sample     the sampler; its random draw is a pure function of (seed, position)
 *   ig_generate   the generation loop: streaming UTF-8 text, stop strings, resume
 *
 * Ownership: the _new, _open and _load functions return objects the caller frees
 * with the matching _free. Pointers returned by getters stay owned by the object they came from.
 */
#ifndef IG_ENGINE_H
#define IG_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------- */
/* Errors: one type for the whole project, carried up the stack unchanged.    */

typedef enum {
    IG_OK = 0,
    IG_ERR_IO,          /* a file or socket operation failed */
    IG_ERR_FORMAT,      /* malformed input: a file, a frame, a request */
    IG_ERR_UNSUPPORTED, /* well-formed but not handled (architecture, weight type) */
    IG_ERR_INVALID,     /* a caller passed an invalid argument */
    IG_ERR_NOMEM,       /* an allocation failed */
    IG_ERR_RANGE,       /* a limit was reached (context full, too large) */
    IG_ERR_NOT_FOUND,   /* a named thing does not exist */
    IG_ERR_AUTH,        /* authentication or authorisation failed */
    IG_ERR_BUSY,        /* over a rate, concurrency or capacity limit */
    IG_ERR_TIMEOUT,     /* a deadline passed */
    IG_ERR_CANCELLED,   /* stopped on request */
    IG_ERR_PROTOCOL,    /* a peer broke the node-link protocol */
    IG_ERR_STORE,       /* the database failed */
    IG_ERR_INTERNAL,    /* an invariant broke: a bug */
} ig_code;

typedef struct {
    ig_code code;
    char msg[512];
} ig_err;

/* Sets *err (if err is non-NULL) and returns code, so `return ig_err_set(...)` works. */
ig_code ig_err_set(ig_err *err, ig_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the existing message with more context: "loading x.gguf: <old msg>". */
ig_code ig_err_wrap(ig_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ig_err_clear(ig_err *err);
const char *ig_code_name(ig_code code);

/* ------------------------------------------------------------------------- */
/* Weight types. Values are GGUF's (ggml's) type ids.                         */

typedef enum {
    IG_TYPE_F32 = 0,
    IG_TYPE_F16 = 1,
    IG_TYPE_Q4_0 = 2,
    IG_TYPE_Q8_0 = 8,
    IG_TYPE_Q4_K = 12,
    IG_TYPE_Q6_K = 14,
    IG_TYPE_Q8_K = 15, /* activations only: the partner of the K-quants in dot products */
    IG_TYPE_BF16 = 30,
    IG_TYPE_COUNT = 31, /* one past the largest id; arrays indexed by type use this */
} ig_type;

/* Lower-case name ("f32", "q8_0", "q4_k"); for ids idlegrid does not support, the
 * ggml name when known ("iq2_xxs") or "unknown". Never NULL. */
const char *ig_type_name(uint32_t type);
/* True for the types weights may have (not Q8_K). */
bool ig_type_is_supported(uint32_t type);
/* Elements per block and bytes per block; 0 for unsupported types. */
int64_t ig_type_block_size(ig_type type);
size_t ig_type_block_bytes(ig_type type);
/* Bytes of a row of n elements (n must be a multiple of the block size). */
size_t ig_type_row_bytes(ig_type type, int64_t n);

/* IEEE half and bfloat16 conversions used across the engine. */
float ig_fp16_to_fp32(uint16_t h);
uint16_t ig_fp32_to_fp16(float f);
float ig_bf16_to_fp32(uint16_t h);
uint16_t ig_fp32_to_bf16(float f);

/* ------------------------------------------------------------------------- */
/* GGUF reader. The file is mmapped; strings and tensor data point into it.   */

typedef enum {
    IG_GGUF_U8 = 0, IG_GGUF_I8 = 1, IG_GGUF_U16 = 2, IG_GGUF_I16 = 3,
    IG_GGUF_U32 = 4, IG_GGUF_I32 = 5, IG_GGUF_F32 = 6, IG_GGUF_BOOL = 7,
    IG_GGUF_STRING = 8, IG_GGUF_ARRAY = 9, IG_GGUF_U64 = 10, IG_GGUF_I64 = 11,
    IG_GGUF_F64 = 12,
} ig_gguf_vtype;

/* A GGUF string: UTF-8 (validated on open), not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} ig_str;

typedef struct {
    const char *name; /* NUL-terminated */
    uint32_t n_dims;
    int64_t ne[4];    /* ne[0] is the contiguous row length; unused dims are 1 */
    ig_type type;
    uint64_t offset;  /* byte offset of the data from the start of the file */
    const void *data; /* into the mapping */
    size_t size;      /* bytes */
} ig_tensor;

typedef struct ig_gguf ig_gguf;

/* Opens and validates a file: magic, version (2 or 3), every count, length, offset
 * and size; UTF-8 of every string; tensor types supported; data inside the file.
 * On failure returns NULL and err says what is wrong and at which byte offset. */
ig_gguf *ig_gguf_open(const char *path, ig_err *err);
/* The same over a caller-owned buffer (not copied; must outlive the reader). */
ig_gguf *ig_gguf_open_buffer(const void *data, size_t size, ig_err *err);
void ig_gguf_free(ig_gguf *g);

uint32_t ig_gguf_version(const ig_gguf *g);
uint64_t ig_gguf_file_size(const ig_gguf *g);
uint32_t ig_gguf_alignment(const ig_gguf *g);

int64_t ig_gguf_n_kv(const ig_gguf *g);
ig_str ig_gguf_kv_key(const ig_gguf *g, int64_t i);
ig_gguf_vtype ig_gguf_kv_type(const ig_gguf *g, int64_t i);
/* Index of a key, or -1. */
int64_t ig_gguf_find_key(const ig_gguf *g, const char *key);

/* Typed getters: false when the key is absent or its value does not fit the type
 * (integers of any width convert when the value is in range; f64 converts to f32). */
bool ig_gguf_get_u32(const ig_gguf *g, const char *key, uint32_t *out);
bool ig_gguf_get_i64(const ig_gguf *g, const char *key, int64_t *out);
bool ig_gguf_get_f32(const ig_gguf *g, const char *key, float *out);
bool ig_gguf_get_bool(const ig_gguf *g, const char *key, bool *out);
bool ig_gguf_get_str(const ig_gguf *g, const char *key, ig_str *out);

/* Arrays: element type and length. */
bool ig_gguf_get_arr_info(const ig_gguf *g, const char *key, ig_gguf_vtype *elem_type,
                          uint64_t *n);
/* Element i of a string array. */
bool ig_gguf_get_arr_str(const ig_gguf *g, const char *key, uint64_t i, ig_str *out);
/* Element i of a numeric array, converted. */
bool ig_gguf_get_arr_f32(const ig_gguf *g, const char *key, uint64_t i, float *out);
bool ig_gguf_get_arr_i64(const ig_gguf *g, const char *key, uint64_t i, int64_t *out);

int64_t ig_gguf_n_tensors(const ig_gguf *g);
const ig_tensor *ig_gguf_tensor_at(const ig_gguf *g, int64_t i);
const ig_tensor *ig_gguf_tensor_find(const ig_gguf *g, const char *name);

/* ------------------------------------------------------------------------- */
/* GGUF writer (version 3, alignment 32). Values and tensor data are copied.  */

typedef struct ig_gguf_writer ig_gguf_writer;

ig_gguf_writer *ig_gguf_writer_new(void);
void ig_gguf_writer_free(ig_gguf_writer *w);
/* Setting a key twice replaces the value. */
void ig_gguf_writer_set_u32(ig_gguf_writer *w, const char *key, uint32_t v);
void ig_gguf_writer_set_i32(ig_gguf_writer *w, const char *key, int32_t v);
void ig_gguf_writer_set_u64(ig_gguf_writer *w, const char *key, uint64_t v);
void ig_gguf_writer_set_f32(ig_gguf_writer *w, const char *key, float v);
void ig_gguf_writer_set_bool(ig_gguf_writer *w, const char *key, bool v);
void ig_gguf_writer_set_str(ig_gguf_writer *w, const char *key, const char *v);
void ig_gguf_writer_set_arr_str(ig_gguf_writer *w, const char *key, const char *const *v,
                                size_t n);
void ig_gguf_writer_set_arr_f32(ig_gguf_writer *w, const char *key, const float *v, size_t n);
void ig_gguf_writer_set_arr_i32(ig_gguf_writer *w, const char *key, const int32_t *v, size_t n);
/* Copies key/value i of another file verbatim (model quantize keeps all metadata). */
void ig_gguf_writer_copy_kv(ig_gguf_writer *w, const ig_gguf *src, int64_t i);
/* Adds a tensor; size must equal the row bytes of ne[0] times the other dims. */
ig_code ig_gguf_writer_add_tensor(ig_gguf_writer *w, const char *name, uint32_t n_dims,
                                  const int64_t *ne, ig_type type, const void *data,
                                  size_t size, ig_err *err);
ig_code ig_gguf_writer_write(const ig_gguf_writer *w, const char *path, ig_err *err);
/* The same file in memory (tests, fuzz seeds); *out is malloc'd, the caller frees it. */
ig_code ig_gguf_writer_to_buffer(const ig_gguf_writer *w, void **out, size_t *size, ig_err *err);

/* ------------------------------------------------------------------------- */
/* Tokenizer, built from a GGUF file's tokenizer.ggml.* metadata.             */

typedef struct ig_tokenizer ig_tokenizer;

ig_tokenizer *ig_tokenizer_new(const ig_gguf *g, ig_err *err);
void ig_tokenizer_free(ig_tokenizer *t);

int32_t ig_tokenizer_n_vocab(const ig_tokenizer *t);
int32_t ig_tokenizer_bos(const ig_tokenizer *t); /* -1 when none */
int32_t ig_tokenizer_eos(const ig_tokenizer *t); /* -1 when none */
bool ig_tokenizer_adds_bos(const ig_tokenizer *t);
/* End of generation: EOS, EOT and the like. */
bool ig_tokenizer_is_eog(const ig_tokenizer *t, int32_t id);
/* "llama" or "gpt2"; pre-tokenizer name ("default", "gpt-2", "llama-bpe", "qwen2"). */
const char *ig_tokenizer_model(const ig_tokenizer *t);
const char *ig_tokenizer_pre(const ig_tokenizer *t);

/* Encodes UTF-8 text. Special tokens (control tokens such as <|begin_of_text|>) are
 * recognised in the text only when parse_special is true. Returns the number of
 * tokens; when that exceeds cap, only cap are written and the full count is returned.
 * Returns -1 (with err set) on invalid input. */
int64_t ig_tokenize(const ig_tokenizer *t, const char *text, size_t len, bool add_bos,
                    bool parse_special, int32_t *out, int64_t cap, ig_err *err);

/* The vocabulary string of a token as stored (e.g. "▁the", "<0x0A>", "Ġthe"). */
ig_str ig_token_piece(const ig_tokenizer *t, int32_t id);
/* The bytes a token decodes to (byte tokens to their byte, "▁" to space, byte-level
 * BPE unmapped; control tokens to nothing). Returns the byte count (may exceed cap,
 * then the output is truncated). */
size_t ig_token_bytes(const ig_tokenizer *t, int32_t id, char *buf, size_t cap);

/* Streaming detokenizer: emits only complete UTF-8 characters, holding a character
 * split across tokens until its last byte arrives. SentencePiece's leading space of
 * the first text token after BOS is dropped, as the reference decoder does. */
typedef struct {
    unsigned char pending[8];
    int n_pending;
    bool at_start;
} ig_detok;

void ig_detok_init(ig_detok *d);
/* Appends the token's bytes; writes the text now complete to out (at most cap bytes;
 * a cap of ig_detok_max_bytes always suffices). Returns bytes written. */
size_t ig_detok_push(const ig_tokenizer *t, ig_detok *d, int32_t id, char *out, size_t cap);
/* An upper bound of what one ig_detok_push can write for this vocabulary. */
size_t ig_detok_max_bytes(const ig_tokenizer *t);
/* At the end of a stream: a character still incomplete becomes U+FFFD (3 bytes; a cap
 * of 4 suffices). Returns bytes written. */
size_t ig_detok_flush(ig_detok *d, char *out, size_t cap);

/* ------------------------------------------------------------------------- */
/* Model: hyper-parameters and weights, read-only, shareable across contexts. */

typedef struct {
    char arch[32];          /* "llama" or "qwen2" */
    char name[128];         /* general.name, or the file stem */
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t n_ff;
    int32_t head_dim;
    float rope_freq_base;
    float rope_freq_scale; /* 1 / linear scaling factor */
    float norm_eps;
    bool tied_output;      /* no output.weight: logits use token_embd */
    ig_type main_type;     /* the type holding most weight bytes */
    uint64_t n_params;
    uint64_t weight_bytes; /* bytes of all tensors */
    uint64_t file_bytes;
    char chat_template_family[32]; /* "chatml", "llama3", "llama2", "zephyr", "plain" */
} ig_model_info;

typedef struct ig_model ig_model;

/* Loads a GGUF file; unknown architectures and weight types are refused by name. */
ig_model *ig_model_load(const char *path, ig_err *err);
void ig_model_free(ig_model *m);
const ig_model_info *ig_model_get_info(const ig_model *m);
const ig_tokenizer *ig_model_tokenizer(const ig_model *m);
const ig_gguf *ig_model_gguf(const ig_model *m);

/* Chat: renders messages with the model's chat template family (detected from the
 * GGUF's tokenizer.chat_template; "plain" for base models: "User: ...\nAssistant:")
 * and tokenizes the result. Template scaffolding may hold special tokens (parsed);
 * message content never does. add_generation_prompt opens the assistant's turn.
 * Returns the token count as ig_tokenize does, -1 on error. */
typedef struct {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} ig_chat_message;

int64_t ig_chat_tokenize(const ig_model *m, const ig_chat_message *msgs, int32_t n_msgs,
                         bool add_generation_prompt, int32_t *out, int64_t cap, ig_err *err);

/* Model files for tests and benchmarks: a random-weight model of any shape. */
typedef struct {
    const char *arch;      /* "llama" or "qwen2" */
    int32_t n_vocab;       /* ignored when tokenizer_from is set */
    int32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    bool tied_output;
    ig_type type;          /* type of the 2-D weight matrices (norms stay F32) */
    float rope_freq_base;
    uint64_t seed;
    const char *tokenizer_from; /* copy tokenizer.* metadata from this GGUF, or NULL
                                   for a synthetic byte-level vocabulary of n_vocab */
} ig_synth_params;

ig_synth_params ig_synth_default_params(void);
ig_code ig_model_synth(const char *path, const ig_synth_params *p, ig_err *err);

/* Re-encodes a model's weight matrices: type is a name as `idlegrid model quantize`
 * takes it ("f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m"). Metadata is kept;
 * norms and other 1-D tensors stay F32. */
ig_code ig_model_quantize(const char *in_path, const char *out_path, const char *type,
                          ig_err *err);

/* ------------------------------------------------------------------------- */
/* Context: one sequence's KV cache and working memory.                        */

typedef struct {
    int32_t n_ctx;       /* tokens the KV cache holds; 0 = the model's training context */
    int32_t n_threads;   /* 0 = the number of online CPUs */
    int32_t n_batch;     /* most tokens one forward pass takes (prefill is chunked) */
    ig_type kv_type;     /* IG_TYPE_F32 or IG_TYPE_F16 */
    const char *kernels; /* NULL = the fastest for this CPU; "scalar" = the reference */
} ig_ctx_params;

ig_ctx_params ig_ctx_default_params(void);

typedef struct ig_ctx ig_ctx;

ig_ctx *ig_ctx_new(const ig_model *m, const ig_ctx_params *p, ig_err *err);
void ig_ctx_free(ig_ctx *c);
/* Bytes the context allocated (KV cache + scratch), stated up front. */
size_t ig_ctx_memory_bytes(const ig_ctx *c);
int32_t ig_ctx_n_past(const ig_ctx *c);
int32_t ig_ctx_n_ctx(const ig_ctx *c);
/* Forgets positions >= n_past (n_past <= current), e.g. to reuse a shared prefix. */
void ig_ctx_truncate(ig_ctx *c, int32_t n_past);
/* The kernel set in use ("scalar", "avx2", "avx512", "amx", "neon"). */
const char *ig_ctx_kernels(const ig_ctx *c);

/* Runs tokens[0..n) at positions n_past.. and appends them to the KV cache. Logits are
 * kept for the last token, or for all n when all_logits. Prefill runs in batches. */
ig_code ig_ctx_decode(ig_ctx *c, const int32_t *tokens, int32_t n, bool all_logits,
                      ig_err *err);
/* Logits (n_vocab floats) of token i of the last decode: i = n - 1 always works,
 * any i < n after an all_logits decode. */
const float *ig_ctx_logits(const ig_ctx *c, int32_t i);

/* Teacher-forced scoring in one batched pass from an empty cache:
 * logprobs[i] = log p(tokens[i] | tokens[0..i)) for 1 <= i < n; logprobs[0] = 0. */
ig_code ig_score(ig_ctx *c, const int32_t *tokens, int32_t n, float *logprobs, ig_err *err);

/* ------------------------------------------------------------------------- */
/* Sampling.                                                                   */

typedef struct {
    float temperature;    /* <= 0: greedy (argmax) */
    int32_t top_k;        /* 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int32_t repeat_last_n;/* how many recent tokens the penalty looks at */
    uint64_t seed;
} ig_sampler_params;

ig_sampler_params ig_sampler_default_params(void);

typedef struct {
    int32_t id;
    float logprob;
} ig_token_prob;

/* Chooses the token at absolute sequence position `position` (the index it will
 * have in prompt + generated). The random draw is a pure function of (seed,
 * position). *logprob receives the chosen token's log-probability under the model's
 * raw distribution (log-softmax of the logits). scratch holds n_vocab entries. */
int32_t ig_sample(const ig_sampler_params *p, const float *logits, int32_t n_vocab,
                  const int32_t *recent, int32_t n_recent, int64_t position, float *logprob,
                  ig_token_prob *scratch);
/* The k most likely tokens under log-softmax(logits), most likely first. */
void ig_top_logprobs(const float *logits, int32_t n_vocab, int32_t k, ig_token_prob *out);
/* log-softmax(logits)[id], in double precision internally. */
float ig_logprob_of(const float *logits, int32_t n_vocab, int32_t id);

/* ------------------------------------------------------------------------- */
/* Generation loop.                                                            */

#define IG_MAX_STOP 8
#define IG_MAX_TOP_LOGPROBS 20

typedef struct {
    int32_t max_tokens;
    ig_sampler_params sampler;
    const char *stop[IG_MAX_STOP]; /* stop strings; NULL-terminated or n_stop */
    int32_t n_stop;
    int32_t top_logprobs;          /* 0..IG_MAX_TOP_LOGPROBS alternatives per token */
    bool ignore_eos;
} ig_gen_params;

ig_gen_params ig_gen_default_params(void);

typedef enum {
    IG_FINISH_NONE = 0,
    IG_FINISH_LENGTH,  /* max_tokens reached */
    IG_FINISH_STOP,    /* a stop string matched (it is not emitted) */
    IG_FINISH_EOS,     /* the model ended its answer */
    IG_FINISH_CONTEXT, /* the KV cache is full */
    IG_FINISH_CANCELLED,
} ig_finish;

const char *ig_finish_name(ig_finish f); /* "length", "stop", "eos", "context", "cancelled" */

/* One generated token. text is the UTF-8 text this token releases (possibly empty:
 * an incomplete character or a possible stop-string prefix is held back). The EOS
 * token itself is not reported; when generation ends at EOS with text still held
 * back, that text comes in one final event with token -1 (not a generated token:
 * leave it out of resume lists and token counts). */
typedef struct {
    int32_t token;
    int64_t position;   /* absolute position in prompt + generated */
    int32_t index;      /* 0-based index among generated tokens */
    float logprob;
    const char *text;
    size_t text_len;
    int32_t n_top;
    const ig_token_prob *top;
} ig_gen_event;

/* Return false to stop (finish = IG_FINISH_CANCELLED). */
typedef bool (*ig_gen_callback)(void *user, const ig_gen_event *ev);

/* Generates after prompt. `resume` holds tokens already generated earlier (possibly on
 * another node): they are evaluated, fed through the detokenizer and stop matcher
 * without being reported, and generation continues at index n_resume, so the events
 * that follow are exactly those an undisturbed run would have produced. The context
 * is reset first. */
ig_code ig_generate(ig_ctx *c, const int32_t *prompt, int32_t n_prompt, const int32_t *resume,
                    int32_t n_resume, const ig_gen_params *p, ig_gen_callback cb, void *user,
                    ig_finish *finish, ig_err *err);

/* ------------------------------------------------------------------------- */
/* Benchmark support: the memory-bandwidth roofline of decoding.               */

/* The machine's streaming-read bandwidth in GB/s (1e9 bytes/s): n_threads threads
 * each read their own slice of a buffer of `bytes` (0 = 512 MiB; far larger than the
 * caches), passes repeated for at least `seconds` (and at least 3), the fastest pass
 * kept. The buffer is freed before returning. Returns 0 with err set on failure. */
double ig_measure_read_bandwidth(int n_threads, size_t bytes, double seconds, ig_err *err);
/* Weight bytes one decoded token reads: every weight matrix (the output whole), the
 * norms and biases, and one row of the token embeddings (unless tied to the output). */
uint64_t ig_model_decode_weight_bytes(const ig_model *m);
/* KV-cache bytes of one position: K and V of every layer in kv_type. A token decoded at
 * context length L reads L of these. */
uint64_t ig_model_kv_position_bytes(const ig_model *m, ig_type kv_type);

#ifdef __cplusplus
}
#endif

#endif /* IG_ENGINE_H */
