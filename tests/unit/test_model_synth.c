/*
 * test_model_synth.c — the forward pass, sampler and generation loop on random-weight
 * models written by ig_model_synth: both architectures, tied and untied, GQA and not,
 * several weight types. Each test's name says what it proves.
 */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_failures;
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            g_failures++;                                                  \
        }                                                                  \
    } while (0)

static char g_dir[256];

typedef struct {
    const char *label;
    const char *arch;
    bool tied;
    int n_head, n_head_kv;
    int n_embd, n_ff;
    ig_type type;
} synth_case;

static ig_model *make_model(const synth_case *sc, int idx)
{
    ig_synth_params p = ig_synth_default_params();
    p.arch = sc->arch;
    p.tied_output = sc->tied;
    p.n_head = sc->n_head;
    p.n_head_kv = sc->n_head_kv;
    p.n_embd = sc->n_embd;
    p.n_ff = sc->n_ff;
    p.n_layer = 2;
    p.n_vocab = 320;
    p.n_ctx = 128;
    p.type = sc->type;
    p.seed = 1000 + (uint64_t)idx;
    char path[320];
    snprintf(path, sizeof path, "%s/synth-%d.gguf", g_dir, idx);
    ig_err err = {0};
    if (ig_model_synth(path, &p, &err)) {
        CHECK(0, "%s: synth: %s", sc->label, err.msg);
        return NULL;
    }
    ig_model *m = ig_model_load(path, &err);
    CHECK(m, "%s: load: %s", sc->label, err.msg);
    unlink(path);
    return m;
}

static ig_ctx *make_ctx(const ig_model *m, const char *kernels, int threads)
{
    ig_ctx_params cp = ig_ctx_default_params();
    cp.kernels = kernels;
    cp.n_threads = threads;
    cp.n_batch = 16; /* small, so prompts cross batch boundaries */
    ig_err err = {0};
    ig_ctx *c = ig_ctx_new(m, &cp, &err);
    CHECK(c, "ctx: %s", err.msg);
    return c;
}

static void fill_tokens(int32_t *t, int n, int32_t n_vocab, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    t[0] = 1; /* BOS */
    for (int i = 1; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        t[i] = 3 + (int32_t)((x >> 8) % (uint32_t)(n_vocab - 3));
    }
}

/* ---- fast kernels vs the scalar reference ------------------------------------ */

static void test_fast_kernels_equal_scalar_reference_on_logits(const ig_model *m, const char *label)
{
    enum { N = 40 };
    const int32_t n_vocab = ig_model_get_info(m)->n_vocab;
    int32_t toks[N];
    fill_tokens(toks, N, n_vocab, 7);
    ig_ctx *ref = make_ctx(m, "scalar", 1), *fast = make_ctx(m, NULL, 2);
    if (!ref || !fast)
        goto out;
    ig_err err = {0};
    CHECK(!ig_ctx_decode(ref, toks, N, true, &err), "%s", err.msg);
    CHECK(!ig_ctx_decode(fast, toks, N, true, &err), "%s", err.msg);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        const float *a = ig_ctx_logits(ref, i), *b = ig_ctx_logits(fast, i);
        double amax = 0.0, dmax = 0.0;
        for (int32_t v = 0; v < n_vocab; v++) {
            amax = fmax(amax, fabs(a[v]));
            dmax = fmax(dmax, fabs((double)a[v] - b[v]));
        }
        worst = fmax(worst, dmax / (amax > 0 ? amax : 1));
    }
    printf("  %-28s %s vs scalar: max relative logit difference %.2e\n", label, ig_ctx_kernels(fast), worst);
    CHECK(worst <= 1e-5, "%s: %s kernels differ from scalar by %.3e relative", label, ig_ctx_kernels(fast), worst);
out:
    ig_ctx_free(ref);
    ig_ctx_free(fast);
}

/* ---- a batch computes what one token at a time computes, bit for bit ------------ */

/* Resuming a job re-prefills prompt + generated tokens in one batch on another node and
 * must continue with the tokens the first node would have drawn, so the logits of a
 * position may not depend on how the tokens were batched or how many threads ran:
 * every kernel set (each of whose gemm tiles must equal its vec_dot) and every KV type
 * is held to identical bits here, not to a tolerance. */
static ig_ctx *make_ctx_full(const ig_model *m, const char *kernels, int threads, int batch,
                             ig_type kv)
{
    ig_ctx_params cp = ig_ctx_default_params();
    cp.kernels = kernels;
    cp.n_threads = threads;
    cp.n_batch = batch;
    cp.kv_type = kv;
    ig_err err = {0};
    ig_ctx *c = ig_ctx_new(m, &cp, &err);
    CHECK(c, "ctx: %s", err.msg);
    return c;
}

static void test_batched_prefill_equals_one_token_at_a_time(const ig_model *m, const char *label)
{
    enum { N = 37 };
    const int32_t n_vocab = ig_model_get_info(m)->n_vocab;
    int32_t toks[N];
    fill_tokens(toks, N, n_vocab, 5);
    /* the reference, the fastest set, and on x86 also avx2 (the fastest is avx512 on
     * CPUs that have it) */
    const char *sets[] = {"scalar", NULL, "avx2"};
    size_t n_sets = 2;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("avx512f"))
        n_sets = 3;
#endif
    const ig_type kvs[] = {IG_TYPE_F32, IG_TYPE_F16};
    float *one = malloc(sizeof(float) * (size_t)n_vocab * N);
    for (size_t s = 0; s < n_sets; s++)
        for (size_t kv = 0; kv < 2; kv++) {
            /* reference: one token per decode, one thread */
            ig_ctx *c = make_ctx_full(m, sets[s], 1, 16, kvs[kv]);
            if (!c)
                continue;
            ig_err err = {0};
            const char *isa = ig_ctx_kernels(c);
            for (int i = 0; i < N; i++) {
                CHECK(!ig_ctx_decode(c, &toks[i], 1, false, &err), "%s", err.msg);
                memcpy(one + (size_t)i * n_vocab, ig_ctx_logits(c, 0), sizeof(float) * (size_t)n_vocab);
            }
            ig_ctx_free(c);
            /* batches of 64 (one batch), 16 and 5 (several, with a short last one), 1 and 2
             * threads; and a prefix batched, then the rest one by one */
            const int shapes[][3] = {{64, 2, N}, {16, 2, N}, {5, 1, N}, {64, 2, 20}};
            for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
                const int batch = shapes[k][0], threads = shapes[k][1], prefix = shapes[k][2];
                ig_ctx *b = make_ctx_full(m, sets[s], threads, batch, kvs[kv]);
                if (!b)
                    continue;
                CHECK(!ig_ctx_decode(b, toks, prefix, true, &err), "%s", err.msg);
                int bad = -1;
                for (int i = 0; i < prefix && bad < 0; i++)
                    if (memcmp(ig_ctx_logits(b, i), one + (size_t)i * n_vocab,
                               sizeof(float) * (size_t)n_vocab) != 0)
                        bad = i;
                for (int i = prefix; i < N && bad < 0; i++) {
                    CHECK(!ig_ctx_decode(b, &toks[i], 1, false, &err), "%s", err.msg);
                    if (memcmp(ig_ctx_logits(b, 0), one + (size_t)i * n_vocab,
                               sizeof(float) * (size_t)n_vocab) != 0)
                        bad = i;
                }
                CHECK(bad < 0,
                      "%s: %s kernels, %s KV, batch %d, %d threads, %d batched: logits of position "
                      "%d differ from one token at a time",
                      label, isa, ig_type_name(kvs[kv]), batch, threads, prefix, bad);
                ig_ctx_free(b);
            }
        }
    free(one);
}

/* ---- KV cache reuse --------------------------------------------------------- */

static void test_truncated_cache_continues_like_a_full_pass(const ig_model *m, const char *label)
{
    enum { N = 30, KEEP = 12 };
    const int32_t n_vocab = ig_model_get_info(m)->n_vocab;
    int32_t toks[N];
    fill_tokens(toks, N, n_vocab, 11);
    ig_ctx *c = make_ctx(m, "scalar", 1);
    if (!c)
        return;
    ig_err err = {0};
    float *full = malloc(sizeof(float) * (size_t)n_vocab);
    CHECK(!ig_ctx_decode(c, toks, N, false, &err), "%s", err.msg);
    memcpy(full, ig_ctx_logits(c, N - 1), sizeof(float) * (size_t)n_vocab);
    ig_ctx_truncate(c, KEEP);
    CHECK(ig_ctx_n_past(c) == KEEP, "truncate");
    for (int i = KEEP; i < N; i++)
        CHECK(!ig_ctx_decode(c, &toks[i], 1, false, &err), "%s", err.msg);
    double d = 0.0;
    const float *again = ig_ctx_logits(c, 0);
    for (int32_t v = 0; v < n_vocab; v++)
        d = fmax(d, fabs((double)full[v] - again[v]));
    CHECK(d <= 1e-4, "%s: decoding one by one after truncate differs by %.3e", label, d);
    /* a decode that would overflow the context is refused */
    int32_t many[200];
    fill_tokens(many, 200, n_vocab, 3);
    CHECK(ig_ctx_decode(c, many, 200, false, &err) == IG_ERR_RANGE, "overflow not refused");
    free(full);
    ig_ctx_free(c);
}

/* ---- generation --------------------------------------------------------------- */

#define MAX_EV 64
typedef struct {
    int n;
    int32_t token[MAX_EV];
    int32_t index[MAX_EV];
    int64_t position[MAX_EV];
    float logprob[MAX_EV];
    char text[MAX_EV][64];
    size_t text_len[MAX_EV];
    char all[4096];
    size_t all_len;
} recording;

static bool record(void *user, const ig_gen_event *ev)
{
    recording *r = user;
    if (r->n < MAX_EV) {
        r->token[r->n] = ev->token;
        r->index[r->n] = ev->index;
        r->position[r->n] = ev->position;
        r->logprob[r->n] = ev->logprob;
        size_t n = ev->text_len < 63 ? ev->text_len : 63;
        memcpy(r->text[r->n], ev->text, n);
        r->text_len[r->n] = ev->text_len;
        r->n++;
    }
    if (r->all_len + ev->text_len < sizeof r->all) {
        memcpy(r->all + r->all_len, ev->text, ev->text_len);
        r->all_len += ev->text_len;
    }
    return true;
}

static ig_gen_params sampled_params(uint64_t seed, int max_tokens)
{
    ig_gen_params gp = ig_gen_default_params();
    gp.max_tokens = max_tokens;
    gp.sampler.temperature = 0.9f;
    gp.sampler.top_k = 50;
    gp.sampler.top_p = 0.95f;
    gp.sampler.min_p = 0.01f;
    gp.sampler.repeat_penalty = 1.1f;
    gp.sampler.seed = seed;
    gp.ignore_eos = true;
    return gp;
}

static void test_generation_scores_resumes_and_stops(const ig_model *m, const char *label)
{
    enum { NP = 6, NG = 40, CUT = 17 };
    const int32_t n_vocab = ig_model_get_info(m)->n_vocab;
    int32_t prompt[NP];
    fill_tokens(prompt, NP, n_vocab, 5);
    ig_ctx *c = make_ctx(m, NULL, 2);
    if (!c)
        return;
    ig_err err = {0};
    ig_finish fin;
    static recording a, b, r, s;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&r, 0, sizeof r);
    memset(&s, 0, sizeof s);
    ig_gen_params gp = sampled_params(42, NG);

    /* test_same_seed_generates_identical_tokens */
    CHECK(!ig_generate(c, prompt, NP, NULL, 0, &gp, record, &a, &fin, &err), "%s", err.msg);
    CHECK(fin == IG_FINISH_LENGTH && a.n == NG, "%s: finish %s after %d tokens", label, ig_finish_name(fin), a.n);
    CHECK(!ig_generate(c, prompt, NP, NULL, 0, &gp, record, &b, &fin, &err), "%s", err.msg);
    CHECK(a.n == b.n && memcmp(a.token, b.token, sizeof a.token) == 0, "%s: same seed, different tokens", label);
    CHECK(memcmp(a.logprob, b.logprob, sizeof a.logprob) == 0, "%s: same seed, different logprobs", label);
    CHECK(a.all_len == b.all_len && memcmp(a.all, b.all, a.all_len) == 0, "%s: same seed, different text", label);
    for (int i = 0; i < a.n; i++)
        CHECK(a.index[i] == i && a.position[i] == NP + i, "%s: event %d index/position", label, i);

    /* test_score_of_generated_sequence_equals_generation_logprobs */
    int32_t seq[NP + NG];
    memcpy(seq, prompt, sizeof prompt);
    memcpy(seq + NP, a.token, sizeof(int32_t) * NG);
    float lps[NP + NG];
    CHECK(!ig_score(c, seq, NP + NG, lps, &err), "%s", err.msg);
    double worst = 0.0;
    for (int i = 0; i < NG; i++)
        worst = fmax(worst, fabs((double)lps[NP + i] - a.logprob[i]));
    CHECK(lps[0] == 0.0f, "logprobs[0] must be 0");
    CHECK(worst <= 1e-4, "%s: score differs from generation logprobs by %.3e", label, worst);

    /* test_resumed_generation_continues_with_the_same_tokens */
    CHECK(!ig_generate(c, prompt, NP, a.token, CUT, &gp, record, &r, &fin, &err), "%s", err.msg);
    CHECK(r.n == NG - CUT, "%s: resumed run reported %d events, expected %d", label, r.n, NG - CUT);
    for (int i = 0; i < r.n && CUT + i < NG; i++) {
        CHECK(r.token[i] == a.token[CUT + i] && r.index[i] == CUT + i && r.position[i] == a.position[CUT + i],
              "%s: resumed event %d differs (token %d vs %d)", label, i, r.token[i], a.token[CUT + i]);
        CHECK(r.text_len[i] == a.text_len[CUT + i] && memcmp(r.text[i], a.text[CUT + i], r.text_len[i] < 63 ? r.text_len[i] : 63) == 0,
              "%s: resumed event %d text differs", label, i);
        CHECK(fabsf(r.logprob[i] - a.logprob[CUT + i]) <= 1e-4f, "%s: resumed logprob %d", label, i);
    }

    /* test_a_different_seed_changes_the_sample */
    recording *d = calloc(1, sizeof *d);
    ig_gen_params gp2 = sampled_params(43, NG);
    CHECK(!ig_generate(c, prompt, NP, NULL, 0, &gp2, record, d, &fin, &err), "%s", err.msg);
    CHECK(memcmp(d->token, a.token, sizeof a.token) != 0, "%s: seed 43 produced seed 42's tokens", label);
    free(d);

    /* test_stop_string_ends_generation_before_it_and_is_not_emitted */
    CHECK(a.all_len >= 12, "%s: only %zu bytes of text generated", label, a.all_len);
    if (a.all_len >= 12) {
        size_t at = a.all_len / 2;
        char stop[4];
        memcpy(stop, a.all + at, 3);
        stop[3] = '\0';
        if (strlen(stop) == 3) {
            const char *first = memmem(a.all, a.all_len, stop, 3);
            size_t want = (size_t)(first - a.all);
            gp.stop[0] = stop;
            gp.n_stop = 1;
            CHECK(!ig_generate(c, prompt, NP, NULL, 0, &gp, record, &s, &fin, &err), "%s", err.msg);
            CHECK(fin == IG_FINISH_STOP, "%s: finish %s, expected stop", label, ig_finish_name(fin));
            printf("  %-28s stop string at byte %zu of %zu: %zu bytes emitted\n", label, want, a.all_len, s.all_len);
            CHECK(s.all_len == want && memcmp(s.all, a.all, want) == 0,
                  "%s: stop output %zu bytes, expected the %zu before \"%s\"", label, s.all_len, want, stop);
            /* resumed past the point where the stop string was partly held back */
            int cut = s.n > 1 ? s.n - 1 : 0;
            static recording rs;
            memset(&rs, 0, sizeof rs);
            CHECK(!ig_generate(c, prompt, NP, s.token, cut, &gp, record, &rs, &fin, &err), "%s", err.msg);
            CHECK(fin == IG_FINISH_STOP, "%s: resumed stop run finished %s", label, ig_finish_name(fin));
            size_t before = 0;
            for (int i = 0; i < cut; i++)
                before += s.text_len[i];
            CHECK(before + rs.all_len == s.all_len && memcmp(rs.all, s.all + before, rs.all_len) == 0,
                  "%s: resumed stop run text differs", label);
        }
    }

    /* test_greedy_generation_picks_the_argmax */
    ig_gen_params greedy = ig_gen_default_params();
    greedy.max_tokens = 1;
    greedy.sampler.temperature = 0.0f;
    greedy.ignore_eos = true;
    static recording g;
    memset(&g, 0, sizeof g);
    CHECK(!ig_generate(c, prompt, NP, NULL, 0, &greedy, record, &g, &fin, &err), "%s", err.msg);
    ig_token_prob top[1];
    ig_ctx_truncate(c, 0);
    CHECK(!ig_ctx_decode(c, prompt, NP, false, &err), "%s", err.msg);
    ig_top_logprobs(ig_ctx_logits(c, NP - 1), n_vocab, 1, top);
    CHECK(g.n == 1 && g.token[0] == top[0].id, "%s: greedy token %d, argmax %d", label, g.token[0], top[0].id);
    ig_ctx_free(c);
}

/* ---- the sampler alone --------------------------------------------------------- */

static void test_sampler_draw_is_a_pure_function_of_seed_and_position(void)
{
    const float logits[4] = {2.0f, 1.0f, 0.5f, -1.0f};
    ig_token_prob scratch[4];
    ig_sampler_params p = ig_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 9;
    double probs[4], z = 0;
    for (int i = 0; i < 4; i++)
        z += exp(logits[i]);
    for (int i = 0; i < 4; i++)
        probs[i] = exp(logits[i]) / z;
    int counts[4] = {0};
    enum { DRAWS = 20000 };
    for (int64_t pos = 0; pos < DRAWS; pos++) {
        float lp;
        int32_t t = ig_sample(&p, logits, 4, NULL, 0, pos, &lp, scratch);
        int32_t again = ig_sample(&p, logits, 4, NULL, 0, pos, &lp, scratch);
        CHECK(t == again, "position %lld drew %d then %d", (long long)pos, t, again);
        CHECK(fabs(lp - log(probs[t])) < 1e-5, "logprob of the chosen token");
        counts[t]++;
    }
    for (int i = 0; i < 4; i++)
        CHECK(fabs((double)counts[i] / DRAWS - probs[i]) < 0.015, "token %d drawn %.3f of the time, p = %.3f", i,
              (double)counts[i] / DRAWS, probs[i]);

    /* top-p 0.9 keeps the three most likely (0.61 + 0.22 + 0.14 >= 0.9), renormalised */
    p.top_p = 0.9f;
    int kept_counts[4] = {0};
    for (int64_t pos = 0; pos < DRAWS; pos++) {
        float lp2;
        kept_counts[ig_sample(&p, logits, 4, NULL, 0, pos, &lp2, scratch)]++;
    }
    CHECK(kept_counts[3] == 0, "top_p 0.9 drew the least likely token %d times", kept_counts[3]);
    for (int i = 0; i < 3; i++) {
        double want = probs[i] / (probs[0] + probs[1] + probs[2]);
        CHECK(fabs((double)kept_counts[i] / DRAWS - want) < 0.015, "top_p: token %d drawn %.3f, want %.3f", i,
              (double)kept_counts[i] / DRAWS, want);
    }
    p.top_p = 1.0f;

    /* filters that leave one candidate make sampling greedy */
    float lp;
    p.top_k = 1;
    for (int64_t pos = 0; pos < 100; pos++)
        CHECK(ig_sample(&p, logits, 4, NULL, 0, pos, &lp, scratch) == 0, "top_k 1 is greedy");
    p.top_k = 0;
    p.top_p = 0.01f;
    for (int64_t pos = 0; pos < 100; pos++)
        CHECK(ig_sample(&p, logits, 4, NULL, 0, pos, &lp, scratch) == 0, "tiny top_p is greedy");
    p.top_p = 1.0f;
    p.min_p = 0.9f;
    for (int64_t pos = 0; pos < 100; pos++)
        CHECK(ig_sample(&p, logits, 4, NULL, 0, pos, &lp, scratch) == 0, "min_p 0.9 is greedy");
    /* top-k 2 never draws the third or fourth token */
    p.min_p = 0.0f;
    p.top_k = 2;
    for (int64_t pos = 0; pos < 2000; pos++)
        CHECK(ig_sample(&p, logits, 4, NULL, 0, pos, &lp, scratch) < 2, "top_k 2 drew outside the top 2");
    /* repetition penalty: a penalised favourite loses to the runner-up under greedy */
    ig_sampler_params g = p;
    g.temperature = 0.0f;
    g.repeat_penalty = 3.0f;
    g.repeat_last_n = 8;
    const int32_t recent[2] = {0, 0};
    CHECK(ig_sample(&g, logits, 4, recent, 2, 5, &lp, scratch) == 1, "repeat penalty should demote token 0");
    CHECK(fabs(lp - log(probs[1])) < 1e-5, "logprob stays that of the raw distribution");
}

static void test_top_logprobs_are_sorted_and_normalised(void)
{
    float logits[50];
    for (int i = 0; i < 50; i++)
        logits[i] = (float)((i * 37) % 50) / 7.0f;
    ig_token_prob top[5];
    ig_top_logprobs(logits, 50, 5, top);
    double z = 0;
    for (int i = 0; i < 50; i++)
        z += exp(logits[i]);
    for (int i = 0; i < 5; i++) {
        CHECK(i == 0 || top[i].logprob <= top[i - 1].logprob, "top logprobs not sorted");
        CHECK(fabs(top[i].logprob - (logits[top[i].id] - log(z))) < 1e-5, "top logprob value");
        CHECK(fabs(ig_logprob_of(logits, 50, top[i].id) - top[i].logprob) < 1e-6, "logprob_of");
    }
    CHECK(top[0].id == 27, "the best of 50 is id 27 ((27*37)%%50 = 49), got %d", top[0].id);
}

static void test_plain_chat_template_renders_user_and_assistant(const ig_model *m)
{
    ig_chat_message msgs[] = {{"user", "hi there"}};
    int32_t a[64], b[64];
    ig_err err = {0};
    int64_t na = ig_chat_tokenize(m, msgs, 1, true, a, 64, &err);
    const char *text = "User: hi there\nAssistant:";
    int64_t nb = ig_tokenize(ig_model_tokenizer(m), text, strlen(text), true, false, b, 64, &err);
    CHECK(strcmp(ig_model_get_info(m)->chat_template_family, "plain") == 0, "family %s",
          ig_model_get_info(m)->chat_template_family);
    CHECK(na > 0 && na == nb && memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0,
          "plain chat tokens differ from the rendered text's (%lld vs %lld)", (long long)na, (long long)nb);
}

/* A model whose GGUF carries a chat template: llama3's vocabulary plus a template
 * with its markers, written through the GGUF writer. */
static ig_model *model_with_template(const char *vocab, const char *tmpl, const char *name)
{
    char base[320], path[320];
    snprintf(base, sizeof base, "%s/%s-vocab.gguf", g_dir, name);
    snprintf(path, sizeof path, "%s/%s.gguf", g_dir, name);
    ig_err err = {0};
    ig_gguf *src = ig_gguf_open(vocab, &err);
    CHECK(src, "%s: %s", vocab, err.msg);
    if (!src)
        return NULL;
    ig_gguf_writer *w = ig_gguf_writer_new();
    for (int64_t i = 0; i < ig_gguf_n_kv(src); i++)
        ig_gguf_writer_copy_kv(w, src, i);
    ig_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl);
    CHECK(!ig_gguf_writer_write(w, base, &err), "%s", err.msg);
    ig_gguf_writer_free(w);
    ig_gguf_free(src);
    ig_synth_params p = ig_synth_default_params();
    p.n_embd = 32;
    p.n_ff = 32;
    p.n_layer = 1;
    p.type = IG_TYPE_Q8_0;
    p.tokenizer_from = base;
    CHECK(!ig_model_synth(path, &p, &err), "%s", err.msg);
    ig_model *m = ig_model_load(path, &err);
    CHECK(m, "%s", err.msg);
    unlink(base);
    unlink(path);
    return m;
}

static int32_t special_id(const ig_model *m, const char *text)
{
    int32_t id[4];
    ig_err err = {0};
    int64_t n = ig_tokenize(ig_model_tokenizer(m), text, strlen(text), false, true, id, 4, &err);
    CHECK(n == 1, "'%s' is not one special token (%lld tokens)", text, (long long)n);
    return n == 1 ? id[0] : -1;
}

static int count_id(const int32_t *t, int64_t n, int32_t id)
{
    int c = 0;
    for (int64_t i = 0; i < n; i++)
        c += t[i] == id;
    return c;
}

static void test_chat_templates_use_control_tokens_but_never_parse_content(void)
{
    char vocab[256];
    const char *data = getenv("IG_TEST_DATA");
    snprintf(vocab, sizeof vocab, "%s/tokenizers/vocab-llama3.gguf", data ? data : "tests/data");
    ig_model *m = model_with_template(vocab,
        "{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
        "{{ message['content'] }}<|eot_id|>{% endfor %}", "llama3-chat");
    if (!m)
        return;
    CHECK(strcmp(ig_model_get_info(m)->chat_template_family, "llama3") == 0, "family %s",
          ig_model_get_info(m)->chat_template_family);
    const int32_t start = special_id(m, "<|start_header_id|>"), eot = special_id(m, "<|eot_id|>");
    ig_chat_message msgs[] = {{"system", "Be brief."}, {"user", "Say <|eot_id|> please"}};
    int32_t toks[256];
    ig_err err = {0};
    int64_t n = ig_chat_tokenize(m, msgs, 2, true, toks, 256, &err);
    CHECK(n > 0 && n < 256, "chat tokenize: %s", err.msg);
    if (n > 0 && n < 256) {
        const ig_tokenizer *tok = ig_model_tokenizer(m);
        CHECK(toks[0] == ig_tokenizer_bos(tok), "llama3 chat starts with BOS");
        CHECK(count_id(toks, n, start) == 3, "3 headers (system, user, assistant), got %d", count_id(toks, n, start));
        CHECK(count_id(toks, n, eot) == 2, "2 <|eot_id|> (the one in the content is text), got %d",
              count_id(toks, n, eot));
        /* a shorter buffer gets the same count back, and the prefix that fits */
        int32_t few[4];
        CHECK(ig_chat_tokenize(m, msgs, 2, true, few, 4, &err) == n && memcmp(few, toks, sizeof few) == 0,
              "truncated chat tokenize");
    }
    ig_model_free(m);
}

/* Groups, so CTest can name each behaviour: sampler, chat, kernels, batch, cache, generation
 * (no argument: all). */
static bool want(int argc, char **argv, const char *group)
{
    return argc < 2 || strcmp(argv[1], group) == 0;
}

int main(int argc, char **argv)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/ig-test-model-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (want(argc, argv, "sampler")) {
        test_sampler_draw_is_a_pure_function_of_seed_and_position();
        test_top_logprobs_are_sorted_and_normalised();
    }
    if (want(argc, argv, "chat"))
        test_chat_templates_use_control_tokens_but_never_parse_content();
    if (argc >= 2 && (strcmp(argv[1], "sampler") == 0 || strcmp(argv[1], "chat") == 0))
        goto done;

    const synth_case cases[] = {
        {"llama untied MHA f32", "llama", false, 4, 4, 64, 128, IG_TYPE_F32},
        {"llama tied GQA f16", "llama", true, 4, 2, 64, 128, IG_TYPE_F16},
        {"llama untied GQA q8_0", "llama", false, 8, 2, 64, 96, IG_TYPE_Q8_0},
        {"qwen2 untied GQA f32", "qwen2", false, 4, 2, 64, 128, IG_TYPE_F32},
        {"qwen2 tied MHA q8_0", "qwen2", true, 4, 4, 64, 128, IG_TYPE_Q8_0},
        {"qwen2 tied GQA bf16", "qwen2", true, 4, 1, 64, 128, IG_TYPE_BF16},
        {"llama untied GQA q4_0", "llama", false, 4, 2, 64, 128, IG_TYPE_Q4_0},
        {"llama untied GQA q4_k", "llama", false, 4, 2, 256, 256, IG_TYPE_Q4_K},
        {"qwen2 tied GQA q6_k", "qwen2", true, 4, 2, 256, 256, IG_TYPE_Q6_K},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ig_model *m = make_model(&cases[i], (int)i);
        if (!m)
            continue;
        printf("%s\n", cases[i].label);
        CHECK(ig_model_get_info(m)->tied_output == cases[i].tied, "tied flag");
        if (want(argc, argv, "kernels"))
            test_fast_kernels_equal_scalar_reference_on_logits(m, cases[i].label);
        if (want(argc, argv, "cache"))
            test_truncated_cache_continues_like_a_full_pass(m, cases[i].label);
        if (want(argc, argv, "batch"))
            test_batched_prefill_equals_one_token_at_a_time(m, cases[i].label);
        if (want(argc, argv, "generation"))
            test_generation_scores_resumes_and_stops(m, cases[i].label);
        if (i == 0 && want(argc, argv, "chat"))
            test_plain_chat_template_renders_user_and_assistant(m);
        ig_model_free(m);
    }
done:
    rmdir(g_dir);
    if (g_failures)
        fprintf(stderr, "%d failures\n", g_failures);
    else
        printf("all model tests passed\n");
    return g_failures ? 1 : 0;
}
