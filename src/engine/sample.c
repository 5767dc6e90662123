/*
 * sample.c — the sampler: greedy, repetition penalty, top-k, top-p, min-p and
 * temperature, in llama.cpp's order (penalties, top-k, top-p, min-p on the untempered
 * distribution, then temperature, then the draw).
 *
 * Reproducibility is the point of this file: the uniform number behind the draw at
 * sequence position i is a pure function of (seed, i) (a splitmix64 hash), and every
 * ordering is total (probability, then token id), so the same logits, seed and
 * position choose the same token on any node. That lets a generation resume elsewhere.
 */
#include "engine.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

ig_sampler_params ig_sampler_default_params(void)
{
    ig_sampler_params p;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = 0;
    return p;
}

/* ---- the random draw: uniform in [0, 1) from (seed, position) -------------- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static double uniform_at(uint64_t seed, int64_t position)
{
    uint64_t h = splitmix64(splitmix64(seed) ^ (uint64_t)position);
    return (double)(h >> 11) * (1.0 / 9007199254740992.0); /* 53 bits */
}

/* ---- log-softmax helpers --------------------------------------------------- */

static double log_sum_exp(const float *logits, int32_t n)
{
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (logits[i] > max)
            max = logits[i];
    /* expf of a non-positive float is accurate to an ulp; the sum is kept in double */
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        sum += expf(logits[i] - max);
    return max + log(sum);
}

float ig_logprob_of(const float *logits, int32_t n_vocab, int32_t id)
{
    if (id < 0 || id >= n_vocab)
        return -INFINITY;
    return (float)((double)logits[id] - log_sum_exp(logits, n_vocab));
}

/* a before b: higher logit first, then lower id (a total order). */
static bool ranks_before(const ig_token_prob *a, const ig_token_prob *b)
{
    return a->logprob > b->logprob || (a->logprob == b->logprob && a->id < b->id);
}

/* Max-heap over ranks_before, used to pull the best candidates in order without
 * sorting the whole vocabulary. */
static void sift_down(ig_token_prob *h, int32_t n, int32_t i)
{
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < n && ranks_before(&h[l], &h[best]))
            best = l;
        if (r < n && ranks_before(&h[r], &h[best]))
            best = r;
        if (best == i)
            return;
        ig_token_prob t = h[i];
        h[i] = h[best];
        h[best] = t;
        i = best;
    }
}

static void heapify(ig_token_prob *h, int32_t n)
{
    for (int32_t i = n / 2 - 1; i >= 0; i--)
        sift_down(h, n, i);
}

/* Pops the best of the heap h[0..n) into h[n-1]; returns the new heap size. */
static int32_t heap_pop(ig_token_prob *h, int32_t n)
{
    ig_token_prob t = h[0];
    h[0] = h[n - 1];
    h[n - 1] = t;
    sift_down(h, n - 1, 0);
    return n - 1;
}

/* Min-heap of size k for the top k of a stream (root = worst of the kept). */
static void sift_down_min(ig_token_prob *h, int32_t n, int32_t i)
{
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, worst = i;
        if (l < n && ranks_before(&h[worst], &h[l]))
            worst = l;
        if (r < n && ranks_before(&h[worst], &h[r]))
            worst = r;
        if (worst == i)
            return;
        ig_token_prob t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

/* Moves the k best of c[0..n) (by logprob field, then id) to c[0..k), best first. */
static void select_top(ig_token_prob *c, int32_t n, int32_t k)
{
    if (k > n)
        k = n;
    if (k <= 0)
        return;
    /* keep a min-heap of the best k seen so far in c[0..k) */
    for (int32_t i = k / 2 - 1; i >= 0; i--)
        sift_down_min(c, k, i);
    for (int32_t i = k; i < n; i++)
        if (ranks_before(&c[i], &c[0])) {
            c[0] = c[i];
            sift_down_min(c, k, 0);
        }
    /* order them best first: a max-heap pop sequence puts the best last, so reverse */
    heapify(c, k);
    for (int32_t m = k; m > 1;)
        m = heap_pop(c, m);
    for (int32_t i = 0, j = k - 1; i < j; i++, j--) {
        ig_token_prob t = c[i];
        c[i] = c[j];
        c[j] = t;
    }
}

void ig_top_logprobs(const float *logits, int32_t n_vocab, int32_t k, ig_token_prob *out)
{
    if (k <= 0)
        return;
    if (k > n_vocab)
        k = n_vocab;
    double lse = log_sum_exp(logits, n_vocab);
    /* stream through the vocabulary keeping a min-heap of the best k in out */
    int32_t n = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        ig_token_prob cand = {i, logits[i]};
        if (n < k) {
            out[n++] = cand;
            if (n == k)
                for (int32_t j = k / 2 - 1; j >= 0; j--)
                    sift_down_min(out, k, j);
        } else if (ranks_before(&cand, &out[0])) {
            out[0] = cand;
            sift_down_min(out, k, 0);
        }
    }
    select_top(out, k, k);
    for (int32_t i = 0; i < k; i++)
        out[i].logprob = (float)((double)out[i].logprob - lse);
}

/* ---- the sampler ------------------------------------------------------------ */

static int32_t argmax(const ig_token_prob *c, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (ranks_before(&c[i], &c[best]))
            best = i;
    return best;
}

/* Divides positive logits by the penalty and multiplies negative ones, once per
 * distinct token among the last repeat_last_n (llama.cpp's rule). cand[i].id == i. */
static void apply_repeat_penalty(ig_token_prob *cand, int32_t n_vocab, const ig_sampler_params *p,
                                 const int32_t *recent, int32_t n_recent)
{
    if (p->repeat_penalty == 1.0f || p->repeat_penalty <= 0.0f || !recent || n_recent <= 0)
        return;
    int32_t window = p->repeat_last_n < 0 ? n_recent : p->repeat_last_n;
    int32_t from = n_recent > window ? n_recent - window : 0;
    for (int32_t i = from; i < n_recent; i++) {
        int32_t id = recent[i];
        if (id < 0 || id >= n_vocab)
            continue;
        bool seen = false; /* earlier in the window: already penalised */
        for (int32_t j = from; j < i && !seen; j++)
            seen = recent[j] == id;
        if (seen)
            continue;
        float *l = &cand[id].logprob;
        *l = *l > 0.0f ? *l / p->repeat_penalty : *l * p->repeat_penalty;
    }
}

int32_t ig_sample(const ig_sampler_params *p, const float *logits, int32_t n_vocab,
                  const int32_t *recent, int32_t n_recent, int64_t position, float *logprob,
                  ig_token_prob *scratch)
{
    assert(n_vocab >= 1);
    /* scratch[i] = (id, logit): the field named logprob holds logits until the end */
    ig_token_prob *cand = scratch;
    for (int32_t i = 0; i < n_vocab; i++) {
        cand[i].id = i;
        cand[i].logprob = isnan(logits[i]) ? -INFINITY : logits[i];
    }
    apply_repeat_penalty(cand, n_vocab, p, recent, n_recent);

    int32_t chosen;
    if (p->temperature <= 0.0f) {
        chosen = cand[argmax(cand, n_vocab)].id;
    } else {
        int32_t n = n_vocab;
        bool sorted = false;
        /* top-k: keep the k most likely */
        if (p->top_k > 0 && p->top_k < n) {
            select_top(cand, n, p->top_k);
            n = p->top_k;
            sorted = true;
        }
        /* probabilities at temperature 1 over the candidates, for top-p and min-p */
        float max = cand[sorted ? 0 : argmax(cand, n)].logprob;
        double total = 0.0;
        for (int32_t i = 0; i < n; i++)
            total += exp((double)cand[i].logprob - max);
        /* top-p: the smallest most-likely prefix whose mass reaches top_p */
        if (p->top_p < 1.0f && p->top_p > 0.0f && n > 1) {
            int32_t heap_n = n;
            if (!sorted)
                heapify(cand, heap_n);
            double cum = 0.0;
            int32_t kept = 0;
            while (kept < n) {
                double pr;
                if (sorted) {
                    pr = exp((double)cand[kept].logprob - max) / total;
                } else {
                    heap_n = heap_pop(cand, heap_n); /* best now at cand[heap_n] */
                    pr = exp((double)cand[heap_n].logprob - max) / total;
                }
                kept++;
                cum += pr;
                if (cum >= p->top_p)
                    break;
            }
            if (!sorted) {
                /* the kept ones sit at cand[n-kept..n), best last: reversing the whole
                 * array puts them at the front, best first */
                for (int32_t i = 0, j = n - 1; i < j; i++, j--) {
                    ig_token_prob t = cand[i];
                    cand[i] = cand[j];
                    cand[j] = t;
                }
                sorted = true;
            }
            n = kept;
        }
        /* min-p: drop candidates less likely than min_p times the most likely */
        if (p->min_p > 0.0f && n > 1) {
            double threshold = (double)max + log((double)p->min_p);
            int32_t kept = 0;
            for (int32_t i = 0; i < n; i++)
                if ((double)cand[i].logprob >= threshold)
                    cand[kept++] = cand[i];
            n = kept > 0 ? kept : 1;
        }
        /* temperature, then the draw over what is left, in candidate order */
        double weights_sum = 0.0;
        for (int32_t i = 0; i < n; i++)
            weights_sum += exp(((double)cand[i].logprob - max) / p->temperature);
        double u = uniform_at(p->seed, position) * weights_sum;
        chosen = cand[n - 1].id;
        double cum = 0.0;
        for (int32_t i = 0; i < n; i++) {
            cum += exp(((double)cand[i].logprob - max) / p->temperature);
            if (u < cum) {
                chosen = cand[i].id;
                break;
            }
        }
    }
    if (logprob)
        *logprob = ig_logprob_of(logits, n_vocab, chosen);
    return chosen;
}
