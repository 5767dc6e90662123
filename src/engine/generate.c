/*
 * generate.c — the generation loop: prefill, sample, stream text, stop.
 *
 * Text leaves in two stages. The detokenizer releases only complete UTF-8
 * characters; then the stop matcher holds back the longest tail that could still
 * grow into a stop string, so a stop string is never partly emitted. When the run
 * ends for another reason, whatever is held is released with the last event (or,
 * after EOS, in a final event whose token is -1).
 *
 * Resume: tokens generated earlier (perhaps on another node) are evaluated and fed
 * through the detokenizer and the stop matcher exactly as if they had just been
 * sampled, only without events; since the draw at each position depends only on
 * (seed, position), what follows is what the undisturbed run would have produced.
 */
#include "engine.h"
#include "model_internal.h"

#include <stdlib.h>
#include <string.h>

#define IG_DEFAULT_MAX_TOKENS 256
#define IG_MAX_STOP_LEN 256

ig_gen_params ig_gen_default_params(void)
{
    ig_gen_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = IG_DEFAULT_MAX_TOKENS;
    p.sampler = ig_sampler_default_params();
    return p;
}

const char *ig_finish_name(ig_finish f)
{
    switch (f) {
    case IG_FINISH_NONE: return "none";
    case IG_FINISH_LENGTH: return "length";
    case IG_FINISH_STOP: return "stop";
    case IG_FINISH_EOS: return "eos";
    case IG_FINISH_CONTEXT: return "context";
    case IG_FINISH_CANCELLED: return "cancelled";
    }
    return "unknown";
}

/* ---- text: detokenizer + stop-string hold-back ------------------------------ */

typedef struct {
    const ig_tokenizer *tok;
    ig_detok detok;
    const char *stop[IG_MAX_STOP];
    size_t stop_len[IG_MAX_STOP];
    int n_stop;
    size_t max_stop_len;
    char *held;      /* text released by the detokenizer but not yet emitted */
    size_t held_len, held_cap;
} text_stream;

/* Feeds one token. Sets *emit_len to the number of bytes at the front of held that
 * may be emitted now, and *stopped when a stop string begins at that point. */
static void text_push(text_stream *s, int32_t token, size_t *emit_len, bool *stopped)
{
    s->held_len += ig_detok_push(s->tok, &s->detok, token, s->held + s->held_len,
                                 s->held_cap - s->held_len);
    *stopped = false;
    size_t first = s->held_len;
    for (int i = 0; i < s->n_stop; i++) {
        const char *hit = memmem(s->held, s->held_len, s->stop[i], s->stop_len[i]);
        if (hit && (size_t)(hit - s->held) < first) {
            first = (size_t)(hit - s->held);
            *stopped = true;
        }
    }
    if (*stopped) {
        *emit_len = first;
        return;
    }
    /* hold the longest tail that is a proper prefix of some stop string */
    size_t keep = 0;
    size_t longest = s->max_stop_len ? s->max_stop_len - 1 : 0;
    for (size_t L = s->held_len < longest ? s->held_len : longest; L > 0 && !keep; L--)
        for (int i = 0; i < s->n_stop; i++)
            if (s->stop_len[i] > L && memcmp(s->held + s->held_len - L, s->stop[i], L) == 0) {
                keep = L;
                break;
            }
    *emit_len = s->held_len - keep;
}

/* Moves the first n held bytes to out (NUL-terminated). */
static void text_take(text_stream *s, size_t n, char *out)
{
    memcpy(out, s->held, n);
    out[n] = '\0';
    memmove(s->held, s->held + n, s->held_len - n);
    s->held_len -= n;
}

/* ---- the loop ---------------------------------------------------------------- */

ig_code ig_generate(ig_ctx *c, const int32_t *prompt, int32_t n_prompt, const int32_t *resume,
                    int32_t n_resume, const ig_gen_params *p, ig_gen_callback cb, void *user,
                    ig_finish *finish, ig_err *err)
{
    const ig_model *m = ig_ctx_model(c);
    const ig_tokenizer *tok = ig_model_tokenizer(m);
    const int32_t n_vocab = ig_model_get_info(m)->n_vocab;
    const int32_t n_ctx = ig_ctx_n_ctx(c);
    ig_finish fin = IG_FINISH_NONE;
    if (finish)
        *finish = IG_FINISH_NONE;

    if (n_prompt < 1)
        return ig_err_set(err, IG_ERR_INVALID, "the prompt has no tokens");
    if (n_resume < 0 || (n_resume > 0 && !resume))
        return ig_err_set(err, IG_ERR_INVALID, "bad resume tokens");
    if (n_prompt > n_ctx || n_resume > n_ctx - n_prompt)
        return ig_err_set(err, IG_ERR_RANGE, "prompt of %d tokens (+%d resumed) does not fit the context of %d",
                          n_prompt, n_resume, n_ctx);
    if (p->top_logprobs < 0 || p->top_logprobs > IG_MAX_TOP_LOGPROBS)
        return ig_err_set(err, IG_ERR_INVALID, "top_logprobs must be 0..%d", IG_MAX_TOP_LOGPROBS);

    text_stream ts = {0};
    ts.tok = tok;
    for (int i = 0; i < IG_MAX_STOP && (p->n_stop > 0 ? i < p->n_stop : p->stop[i] != NULL); i++) {
        if (!p->stop[i] || !p->stop[i][0])
            continue;
        size_t len = strlen(p->stop[i]);
        if (len > IG_MAX_STOP_LEN)
            return ig_err_set(err, IG_ERR_INVALID, "stop string %d is longer than %d bytes", i,
                              IG_MAX_STOP_LEN);
        ts.stop[ts.n_stop] = p->stop[i];
        ts.stop_len[ts.n_stop++] = len;
        if (len > ts.max_stop_len)
            ts.max_stop_len = len;
    }
    ts.held_cap = ts.max_stop_len + ig_detok_max_bytes(tok) + 16;

    int32_t *seq = malloc(sizeof(int32_t) * (size_t)n_ctx);        /* prompt + generated */
    ig_token_prob *scratch = malloc(sizeof(ig_token_prob) * (size_t)n_vocab);
    ts.held = malloc(ts.held_cap);
    char *text = malloc(ts.held_cap + 1);
    ig_token_prob top[IG_MAX_TOP_LOGPROBS];
    ig_code rc = IG_OK;
    if (!seq || !scratch || !ts.held || !text) {
        rc = ig_err_set(err, IG_ERR_NOMEM, "out of memory for generation");
        goto done;
    }
    memcpy(seq, prompt, sizeof(int32_t) * (size_t)n_prompt);
    if (n_resume)
        memcpy(seq + n_prompt, resume, sizeof(int32_t) * (size_t)n_resume);

    /* prefill the prompt; the detokenizer sees it so leading-space rules match */
    ig_ctx_truncate(c, 0);
    if ((rc = ig_ctx_decode(c, prompt, n_prompt, false, err)))
        goto done;
    ig_detok_init(&ts.detok);
    for (int32_t i = 0; i < n_prompt; i++) {
        ts.held_len = 0;
        ts.held_len = ig_detok_push(tok, &ts.detok, prompt[i], ts.held, ts.held_cap);
    }
    ts.held_len = 0;

    /* replay resumed tokens: same text state, no events */
    for (int32_t i = 0; i < n_resume; i++) {
        size_t emit;
        bool stopped;
        text_push(&ts, resume[i], &emit, &stopped);
        text_take(&ts, emit, text);
        if (stopped) {
            fin = IG_FINISH_STOP;
            goto done;
        }
    }
    if (n_resume >= p->max_tokens) {
        fin = IG_FINISH_LENGTH;
        goto done;
    }
    if (n_resume > 0 && (rc = ig_ctx_decode(c, resume, n_resume, false, err)))
        goto done;

    for (int32_t i = n_resume;; i++) {
        const int32_t pos = n_prompt + i;
        /* the last decode's final token holds the logits for position pos */
        const float *logits = ig_ctx_logits(c, ig_ctx_n_last(c) - 1);
        float logprob = 0.0f;
        int32_t token = ig_sample(&p->sampler, logits, n_vocab, seq, pos, pos, &logprob, scratch);

        if (ig_tokenizer_is_eog(tok, token) && !p->ignore_eos) {
            fin = IG_FINISH_EOS;
            if (ts.held_len > 0 && cb) { /* release text held for a stop string that never came */
                size_t n = ts.held_len;
                text_take(&ts, n, text);
                ig_gen_event ev = {-1, pos, i, 0.0f, text, n, 0, NULL};
                if (!cb(user, &ev))
                    fin = IG_FINISH_CANCELLED;
            }
            break;
        }
        seq[pos] = token;

        size_t emit;
        bool stopped;
        text_push(&ts, token, &emit, &stopped);
        bool out_of_tokens = i + 1 >= p->max_tokens;
        bool out_of_context = pos + 1 >= n_ctx;
        bool last = stopped || out_of_tokens || out_of_context;
        if (last && !stopped)
            emit = ts.held_len; /* nothing can follow: release the held tail */
        text_take(&ts, emit, text);

        int32_t n_top = p->top_logprobs < n_vocab ? p->top_logprobs : n_vocab;
        if (n_top > 0)
            ig_top_logprobs(logits, n_vocab, n_top, top);
        ig_gen_event ev = {token, pos, i, logprob, text, emit, n_top, n_top ? top : NULL};
        if (cb && !cb(user, &ev)) {
            fin = IG_FINISH_CANCELLED;
            break;
        }
        if (stopped) {
            fin = IG_FINISH_STOP;
            break;
        }
        if (out_of_tokens) {
            fin = IG_FINISH_LENGTH;
            break;
        }
        if (out_of_context) {
            fin = IG_FINISH_CONTEXT;
            break;
        }
        if ((rc = ig_ctx_decode(c, &token, 1, false, err)))
            break;
    }
done:
    free(seq);
    free(scratch);
    free(ts.held);
    free(text);
    if (finish)
        *finish = rc == IG_OK ? fin : IG_FINISH_NONE;
    return rc;
}
