/*
 * tokenizer.c — the tokenizers built from a GGUF file's tokenizer.ggml.* metadata:
 * loading, the getters, and decoding (ig_token_bytes, the streaming detokenizer).
 * Encoding is in tokenizer_encode.c.
 *
 *   "llama" (SentencePiece BPE): pieces with scores, byte-fallback <0xXX> tokens.
 *   "gpt2" (byte-level BPE): pieces in GPT-2's byte-to-character alphabet and the
 *     merges in rank order; the pre-tokenizer named by tokenizer.ggml.pre.
 *
 * Loading copies what it needs out of the GGUF file (the tokenizer does not keep the
 * file) and builds hash tables: string -> id for the vocabulary and (left id, right id)
 * -> (rank, merged id) for the merges; every token's decoded bytes are computed once.
 * After ig_tokenizer_new the object is read-only, so one tokenizer serves any number of
 * threads.
 */
#include "tokenizer_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The hash tables are probed at random: with 4 KB pages nearly every probe of Llama 3's
 * 12 MB of tables is also a TLB miss (costly under virtualisation). Tables of 2 MB and
 * more are mapped on their own and asked for transparent huge pages. Zero-filled. */
#define HUGE_PAGE ((size_t)2 << 20)

static void *table_alloc(size_t bytes)
{
    if (bytes < HUGE_PAGE)
        return calloc(1, bytes);
    size_t len = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    /* Over-map by one huge page to align the table to one. */
    char *p = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *aligned = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (aligned > p)
        munmap(p, (size_t)(aligned - p));
    munmap(aligned + len, (size_t)(p + HUGE_PAGE - aligned));
#ifdef MADV_HUGEPAGE
    madvise(aligned, len, MADV_HUGEPAGE); /* advice only: fine if refused */
#endif
    return aligned;
}

static void table_free(void *p, size_t bytes)
{
    if (!p)
        return;
    if (bytes < HUGE_PAGE) {
        free(p);
        return;
    }
    munmap(p, (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
}

static uint64_t table_size_for(uint64_t n)
{
    uint64_t cap = 16;
    while (cap < n + n / 2) /* load factor at most 2/3 */
        cap <<= 1;
    return cap;
}


static ig_code vocab_build(ig_tokenizer *t, ig_err *err)
{
    uint64_t cap = table_size_for((uint64_t)t->n_vocab);
    t->vocab.slots = table_alloc(cap * sizeof *t->vocab.slots);
    if (!t->vocab.slots)
        return ig_err_set(err, IG_ERR_NOMEM, "tokenizer: no memory for the vocabulary index");
    for (uint64_t i = 0; i < cap; i++)
        t->vocab.slots[i].id = -1;
    t->vocab.mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = piece_ptr(t, id);
        uint32_t n = piece_len(t, id);
        uint64_t h = hash_mix(hash_bytes(HASH_SEED, s, n));
        uint32_t tag = (uint32_t)(h >> 32);
        for (uint64_t i = h & t->vocab.mask;; i = (i + 1) & t->vocab.mask) {
            vocab_slot *slot = &t->vocab.slots[i];
            if (slot->id < 0) {
                slot->id = id;
                slot->tag = tag;
                slot->off = t->piece_off[id];
                slot->len = n;
                break;
            }
            /* A duplicate piece keeps its first id. */
            if (slot->tag == tag && slot_holds(t, slot, s, n, "", 0))
                break;
        }
    }
    return IG_OK;
}

/* ------------------------------------------------------------------------- */
/* Loading.                                                                    */

void ig_tokenizer_free(ig_tokenizer *t)
{
    if (!t)
        return;
    free(t->pieces);
    free(t->piece_off);
    free(t->decoded);
    free(t->decoded_off);
    free(t->scores);
    free(t->types);
    table_free(t->vocab.slots, (t->vocab.mask + 1) * sizeof *t->vocab.slots);
    table_free(t->merges.slots, (t->merges.mask + 1) * sizeof *t->merges.slots);
    free(t->special);
    free(t);
}

static ig_code load_pieces(ig_tokenizer *t, const ig_gguf *g, ig_err *err)
{
    ig_gguf_vtype et;
    uint64_t n;
    if (!ig_gguf_get_arr_info(g, "tokenizer.ggml.tokens", &et, &n))
        return ig_err_set(err, IG_ERR_FORMAT, "tokenizer: key tokenizer.ggml.tokens is missing");
    if (et != IG_GGUF_STRING)
        return ig_err_set(err, IG_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens is not an array of strings");
    if (n == 0 || n > MAX_VOCAB)
        return ig_err_set(err, IG_ERR_FORMAT,
                          "tokenizer: tokenizer.ggml.tokens has %llu entries (1..%d allowed)",
                          (unsigned long long)n, MAX_VOCAB);
    t->n_vocab = (int32_t)n;
    t->piece_off = malloc((n + 1) * sizeof *t->piece_off);
    if (!t->piece_off)
        return ig_err_set(err, IG_ERR_NOMEM, "tokenizer: no memory for %llu pieces", (unsigned long long)n);
    /* One pass, growing the buffer: every getter call costs a key lookup. */
    size_t cap = 16 * (size_t)n, off = 0;
    t->pieces = malloc(cap + 1);
    if (!t->pieces)
        return ig_err_set(err, IG_ERR_NOMEM, "tokenizer: no memory for the vocabulary");
    for (uint64_t i = 0; i < n; i++) {
        ig_str s;
        if (!ig_gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &s))
            return ig_err_set(err, IG_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens[%llu] is unreadable",
                              (unsigned long long)i);
        if (s.len > MAX_PIECE_BYTES)
            return ig_err_set(err, IG_ERR_FORMAT,
                              "tokenizer: tokenizer.ggml.tokens[%llu] is %llu bytes long (limit %d)",
                              (unsigned long long)i, (unsigned long long)s.len, MAX_PIECE_BYTES);
        if (off + s.len > UINT32_MAX / 2)
            return ig_err_set(err, IG_ERR_FORMAT, "tokenizer: the vocabulary's pieces exceed %u bytes",
                              UINT32_MAX / 2);
        if (off + s.len > cap) {
            size_t ncap = 2 * cap > off + s.len ? 2 * cap : off + s.len;
            char *p = realloc(t->pieces, ncap + 1);
            if (!p)
                return ig_err_set(err, IG_ERR_NOMEM, "tokenizer: no memory for the vocabulary");
            t->pieces = p;
            cap = ncap;
        }
        t->piece_off[i] = (uint32_t)off;
        memcpy(t->pieces + off, s.ptr, s.len);
        off += s.len;
    }
    t->piece_off[n] = (uint32_t)off;
    t->pieces[off] = 0;
    return IG_OK;
}

static ig_code load_types_and_scores(ig_tokenizer *t, const ig_gguf *g, ig_err *err)
{
    size_t n = (size_t)t->n_vocab;
    t->types = malloc(n);
    if (!t->types)
        return ig_err_set(err, IG_ERR_NOMEM, "tokenizer: no memory for token types");
    memset(t->types, TT_NORMAL, n);
    ig_gguf_vtype et;
    uint64_t count;
    if (ig_gguf_get_arr_info(g, "tokenizer.ggml.token_type", &et, &count)) {
        if (count != n)
            return ig_err_set(err, IG_ERR_FORMAT,
                              "tokenizer: tokenizer.ggml.token_type has %llu entries, the vocabulary %zu",
                              (unsigned long long)count, n);
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            if (!ig_gguf_get_arr_i64(g, "tokenizer.ggml.token_type", i, &v) || v < 0 || v > 6)
                return ig_err_set(err, IG_ERR_FORMAT,
                                  "tokenizer: tokenizer.ggml.token_type[%zu] is not a token type (0..6)", i);
            t->types[i] = (uint8_t)(v == 0 ? TT_NORMAL : v);
        }
    }
    if (t->kind == KIND_SPM) {
        t->scores = calloc(n, sizeof *t->scores);
        if (!t->scores)
            return ig_err_set(err, IG_ERR_NOMEM, "tokenizer: no memory for scores");
        if (ig_gguf_get_arr_info(g, "tokenizer.ggml.scores", &et, &count)) {
            if (count != n)
                return ig_err_set(err, IG_ERR_FORMAT,
                                  "tokenizer: tokenizer.ggml.scores has %llu entries, the vocabulary %zu",
                                  (unsigned long long)count, n);
            for (size_t i = 0; i < n; i++) {
                float v;
                if (!ig_gguf_get_arr_f32(g, "tokenizer.ggml.scores", i, &v) || v != v)
                    return ig_err_set(err, IG_ERR_FORMAT,
                                      "tokenizer: tokenizer.ggml.scores[%zu] is not a number", i);
                t->scores[i] = v;
            }
        }
    }
    return IG_OK;
}

/* One merge rule on its way through load_merges' pipeline. */
typedef struct {
    const char *left, *right;
    uint32_t n_left, n_right;
    uint64_t hash[3];    /* left, right, left + right */
    const vocab_slot *candidate[3]; /* first slot whose tag agrees, or NULL */
} merge_job;

#define PREFETCH(p) __builtin_prefetch(p)
#define MERGE_PIPE 32    /* jobs in flight (a power of two) */
#define MERGE_DISTANCE 8 /* steps between the pipeline's stages */

/* Stage 1: the first slot of each probe sequence whose tag agrees (slots prefetched in
 * stage 0), and a prefetch of the pieces stage 2 compares. */
static void merge_probe(const ig_tokenizer *t, merge_job *j)
{
    for (int k = 0; k < 3; k++) {
        uint64_t h = j->hash[k];
        uint32_t tag = (uint32_t)(h >> 32);
        j->candidate[k] = NULL;
        for (uint64_t i = h & t->vocab.mask;; i = (i + 1) & t->vocab.mask) {
            const vocab_slot *slot = &t->vocab.slots[i];
            if (slot->id < 0)
                break;
            if (slot->tag == tag) {
                j->candidate[k] = slot;
                PREFETCH(t->pieces + slot->off);
                break;
            }
        }
    }
    /* The merge table's slot too, assuming the tags did not lie (they rarely do). */
    if (j->candidate[0] && j->candidate[1])
        __builtin_prefetch(&t->merges.slots[hash_mix(merge_key(j->candidate[0]->id, j->candidate[1]->id)) &
                                            t->merges.mask], 1);
}

/* Stage 2: the ids, checked against the pieces (a tag collision takes the slow path). */
static int32_t merge_resolve(const ig_tokenizer *t, const merge_job *j, int k)
{
    const char *a = k == 1 ? j->right : j->left;
    size_t na = k == 1 ? j->n_right : j->n_left;
    const char *b = k == 2 ? j->right : "";
    size_t nb = k == 2 ? j->n_right : 0;
    const vocab_slot *c = j->candidate[k];
    if (!c)
        return -1;
    if (slot_holds(t, c, a, na, b, nb))
        return c->id;
    return vocab_find_hashed(t, j->hash[k], a, na, b, nb);
}

static void merge_insert(ig_tokenizer *t, int32_t left, int32_t right, int32_t merged, int32_t rank)
{
    uint64_t key = merge_key(left, right);
    for (uint64_t i = hash_mix(key) & t->merges.mask;; i = (i + 1) & t->merges.mask) {
        merge_slot *slot = &t->merges.slots[i];
        if (slot->key == key)
            return; /* a repeated merge keeps its first rank */
        if (slot->key == 0) {
            slot->key = key;
            slot->rank = rank;
            slot->result = merged;
            return;
        }
    }
}

/* The merges are 280k random lookups for Llama 3: done one after the other, each
 * waits for memory three times. A small software pipeline (parse and prefetch the
 * slots, probe and prefetch the pieces, compare and insert) keeps many in flight. */
static ig_code load_merges(ig_tokenizer *t, const ig_gguf *g, ig_err *err)
{
    ig_gguf_vtype et;
    uint64_t n;
    if (!ig_gguf_get_arr_info(g, "tokenizer.ggml.merges", &et, &n))
        return IG_OK; /* no merges: every byte stays its own token */
    if (et != IG_GGUF_STRING)
        return ig_err_set(err, IG_ERR_FORMAT, "tokenizer: tokenizer.ggml.merges is not an array of strings");
    if (n > MAX_MERGES)
        return ig_err_set(err, IG_ERR_FORMAT, "tokenizer: tokenizer.ggml.merges has %llu entries (limit %d)",
                          (unsigned long long)n, MAX_MERGES);
    uint64_t cap = table_size_for(n);
    t->merges.slots = table_alloc(cap * sizeof *t->merges.slots);
    if (!t->merges.slots)
        return ig_err_set(err, IG_ERR_NOMEM, "tokenizer: no memory for %llu merges", (unsigned long long)n);
    t->merges.mask = cap - 1;

    merge_job jobs[MERGE_PIPE];
    const uint64_t d = MERGE_DISTANCE;
    for (uint64_t step = 0; step < n + 2 * d; step++) {
        if (step < n) {
            /* Stage 0: parse "left right" and prefetch the three home slots. */
            merge_job *j = &jobs[step % MERGE_PIPE];
            ig_str s;
            if (!ig_gguf_get_arr_str(g, "tokenizer.ggml.merges", step, &s))
                return ig_err_set(err, IG_ERR_FORMAT, "tokenizer: tokenizer.ggml.merges[%llu] is unreadable",
                                  (unsigned long long)step);
            /* The separator is the first space after the first byte (a byte-level
             * piece never holds a raw space, but a left piece may be " "). */
            const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
            if (!sp)
                return ig_err_set(err, IG_ERR_FORMAT,
                                  "tokenizer: tokenizer.ggml.merges[%llu] is not \"left right\"",
                                  (unsigned long long)step);
            j->left = s.ptr;
            j->n_left = (uint32_t)(sp - s.ptr);
            j->right = sp + 1;
            j->n_right = (uint32_t)(s.len - j->n_left - 1);
            uint64_t state = hash_bytes(HASH_SEED, j->left, j->n_left);
            j->hash[0] = hash_mix(state);
            j->hash[1] = hash_mix(hash_bytes(HASH_SEED, j->right, j->n_right));
            j->hash[2] = hash_mix(hash_bytes(state, j->right, j->n_right));
            for (int k = 0; k < 3; k++)
                PREFETCH(&t->vocab.slots[j->hash[k] & t->vocab.mask]);
        }
        if (step >= d && step - d < n)
            merge_probe(t, &jobs[(step - d) % MERGE_PIPE]);
        if (step >= 2 * d) {
            uint64_t r = step - 2 * d;
            const merge_job *j = &jobs[r % MERGE_PIPE];
            int32_t left = merge_resolve(t, j, 0);
            int32_t right = merge_resolve(t, j, 1);
            int32_t merged = merge_resolve(t, j, 2);
            /* A merge whose parts or result are not tokens can never apply. */
            if (left >= 0 && right >= 0 && merged >= 0)
                merge_insert(t, left, right, merged, (int32_t)r);
        }
    }
    return IG_OK;
}

static int32_t get_token_id(const ig_tokenizer *t, const ig_gguf *g, const char *key, ig_err *err,
                            bool *bad)
{
    int64_t v;
    if (ig_gguf_find_key(g, key) < 0)
        return -1;
    bool ok = ig_gguf_get_i64(g, key, &v);
    if (ok && v == UINT32_MAX)
        return -1; /* -1 written as a u32: "none" */
    if (!ok || v < -1 || v >= t->n_vocab) {
        /* Any other id outside the vocabulary is refused: a wrong BOS would silently
         * corrupt every prompt. */
        *bad = true;
        ig_err_set(err, IG_ERR_FORMAT, "tokenizer: %s is not a token id (vocabulary %d)", key,
                   t->n_vocab);
        return -1;
    }
    return (int32_t)v;
}

/* What each token decodes to, computed once so that decoding is a copy. */
static ig_code build_decoded(ig_tokenizer *t, ig_err *err)
{
    uint32_t char_to_byte_n = 0x100 + 68;
    int16_t char_to_byte[0x100 + 68];
    for (uint32_t c = 0; c < char_to_byte_n; c++)
        char_to_byte[c] = -1;
    for (unsigned b = 0; b < 256; b++)
        char_to_byte[byte_to_char(b)] = (int16_t)b;

    /* Decoding never grows a piece except the unknown token's " ⁇ " (5 bytes). */
    size_t cap = (size_t)t->piece_off[t->n_vocab] + 8 * (size_t)t->n_vocab + 1;
    t->decoded = malloc(cap);
    t->decoded_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->decoded_off);
    if (!t->decoded || !t->decoded_off)
        return ig_err_set(err, IG_ERR_NOMEM, "tokenizer: no memory for decoded pieces");
    size_t off = 0;
    t->max_decoded = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        t->decoded_off[id] = (uint32_t)off;
        const unsigned char *p = (const unsigned char *)piece_ptr(t, id);
        size_t n = piece_len(t, id);
        char *out = t->decoded + off;
        size_t m = 0;
        uint8_t type = t->types[id];
        unsigned hex;
        char tail;
        if (type == TT_CONTROL) {
            /* nothing */
        } else if (type == TT_BYTE && n == 6 &&
                   sscanf((const char *)p, "<0x%2X%c", &hex, &tail) == 2 && tail == '>') {
            out[m++] = (char)hex;
        } else if (t->kind == KIND_SPM && type == TT_UNKNOWN) {
            memcpy(out, " \xE2\x81\x87 ", 5); /* SentencePiece's unknown surface " ⁇ " */
            m = 5;
        } else if (t->kind == KIND_SPM) {
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81) {
                    out[m++] = ' ';
                    i += 3;
                } else {
                    out[m++] = (char)p[i++];
                }
            }
        } else if (type == TT_USER_DEFINED) {
            memcpy(out, p, n); /* added tokens are stored as plain text */
            m = n;
        } else {
            for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t len = ig_utf8_decode(p + i, n - i, &cp);
                if (cp < char_to_byte_n && char_to_byte[cp] >= 0) {
                    out[m++] = (char)char_to_byte[cp];
                } else {
                    memcpy(out + m, p + i, len); /* not a byte-level character: as is */
                    m += len;
                }
                i += len;
            }
        }
        assert(off + m <= cap);
        off += m;
        if (m > t->max_decoded)
            t->max_decoded = m;
    }
    t->decoded_off[t->n_vocab] = (uint32_t)off;
    return IG_OK;
}

/* Longest first, then by id (deterministic). */
static bool special_before(const ig_tokenizer *t, int32_t a, int32_t b)
{
    uint32_t la = piece_len(t, a), lb = piece_len(t, b);
    return la != lb ? la > lb : a < b;
}

static ig_code build_specials(ig_tokenizer *t, ig_err *err)
{
    size_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->types[id];
        if ((ty == TT_CONTROL || ty == TT_USER_DEFINED || ty == TT_UNKNOWN) && piece_len(t, id) > 0)
            n++;
    }
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!t->special)
        return ig_err_set(err, IG_ERR_NOMEM, "tokenizer: no memory for special tokens");
    /* Counting sort by first byte, then longest first inside each group. */
    uint32_t count[256] = {0};
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->types[id];
        if ((ty == TT_CONTROL || ty == TT_USER_DEFINED || ty == TT_UNKNOWN) && piece_len(t, id) > 0)
            count[(unsigned char)piece_ptr(t, id)[0]]++;
    }
    t->special_start[0] = 0;
    for (int b = 0; b < 256; b++)
        t->special_start[b + 1] = t->special_start[b] + count[b];
    uint32_t fill[256];
    memcpy(fill, t->special_start, sizeof fill);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->types[id];
        if ((ty == TT_CONTROL || ty == TT_USER_DEFINED || ty == TT_UNKNOWN) && piece_len(t, id) > 0)
            t->special[fill[(unsigned char)piece_ptr(t, id)[0]]++] = id;
    }
    for (int b = 0; b < 256; b++) {
        /* Insertion sort: groups are small (Llama 3's 256 specials all start with '<'). */
        int32_t *grp = t->special + t->special_start[b];
        uint32_t m = t->special_start[b + 1] - t->special_start[b];
        for (uint32_t i = 1; i < m; i++) {
            int32_t v = grp[i];
            uint32_t j = i;
            while (j > 0 && special_before(t, v, grp[j - 1])) {
                grp[j] = grp[j - 1];
                j--;
            }
            grp[j] = v;
        }
    }
    return IG_OK;
}

static void add_eog(ig_tokenizer *t, int32_t id)
{
    if (id < 0 || t->n_eog >= MAX_EOG)
        return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return;
    t->eog[t->n_eog++] = id;
}

static void find_eog(ig_tokenizer *t, const ig_gguf *g, ig_err *err, bool *bad)
{
    add_eog(t, t->eos);
    add_eog(t, get_token_id(t, g, "tokenizer.ggml.eot_token_id", err, bad));
    add_eog(t, get_token_id(t, g, "tokenizer.ggml.eom_token_id", err, bad));
    /* Chat models end a turn with a control token the metadata does not always name. */
    static const char *const ends[] = {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>",
                                       "<end_of_turn>", "<|endoftext|>", "<EOT>",
                                       "<|end_of_text|>"};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        int32_t id = vocab_find(t, ends[i], strlen(ends[i]));
        if (id >= 0 && (t->types[id] == TT_CONTROL || t->types[id] == TT_USER_DEFINED))
            add_eog(t, id);
    }
}

ig_tokenizer *ig_tokenizer_new(const ig_gguf *g, ig_err *err)
{
    ig_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        ig_err_set(err, IG_ERR_NOMEM, "tokenizer: no memory");
        return NULL;
    }
    ig_str model;
    if (!ig_gguf_get_str(g, "tokenizer.ggml.model", &model)) {
        ig_err_set(err, IG_ERR_FORMAT, "tokenizer: key tokenizer.ggml.model is missing");
        goto fail;
    }
    if (model.len == 5 && memcmp(model.ptr, "llama", 5) == 0) {
        t->kind = KIND_SPM;
        snprintf(t->model, sizeof t->model, "llama");
    } else if (model.len == 4 && memcmp(model.ptr, "gpt2", 4) == 0) {
        t->kind = KIND_BPE;
        snprintf(t->model, sizeof t->model, "gpt2");
    } else {
        ig_err_set(err, IG_ERR_UNSUPPORTED, "tokenizer: tokenizer.ggml.model \"%.*s\" is not supported (llama, gpt2)",
                   (int)(model.len > 64 ? 64 : model.len), model.ptr);
        goto fail;
    }

    ig_str pre;
    bool has_pre = ig_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    if (!has_pre || pre.len >= sizeof t->pre) {
        if (has_pre) {
            ig_err_set(err, IG_ERR_UNSUPPORTED, "tokenizer: tokenizer.ggml.pre \"%.*s\" is not supported",
                       (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
            goto fail;
        }
        snprintf(t->pre, sizeof t->pre, "default");
    } else {
        memcpy(t->pre, pre.ptr, pre.len);
        t->pre[pre.len] = 0;
    }
    if (t->kind == KIND_BPE) {
        if (strcmp(t->pre, "default") == 0 || strcmp(t->pre, "gpt-2") == 0) {
            t->pretok = IG_PRETOK_GPT2;
        } else if (strcmp(t->pre, "llama-bpe") == 0) {
            t->pretok = IG_PRETOK_LLAMA3;
            t->ignore_merges = true;
        } else if (strcmp(t->pre, "qwen2") == 0) {
            t->pretok = IG_PRETOK_QWEN2;
        } else {
            ig_err_set(err, IG_ERR_UNSUPPORTED,
                       "tokenizer: pre-tokenizer tokenizer.ggml.pre \"%s\" is not supported "
                       "(default, gpt-2, llama-bpe, qwen2)", t->pre);
            goto fail;
        }
    }

    if (load_pieces(t, g, err) || load_types_and_scores(t, g, err) || vocab_build(t, err))
        goto fail;
    if (t->kind == KIND_BPE && load_merges(t, g, err))
        goto fail;

    bool bad = false;
    t->bos = get_token_id(t, g, "tokenizer.ggml.bos_token_id", err, &bad);
    t->eos = get_token_id(t, g, "tokenizer.ggml.eos_token_id", err, &bad);
    t->unk = get_token_id(t, g, "tokenizer.ggml.unknown_token_id", err, &bad);
    if (bad)
        goto fail;
    if (t->unk < 0)
        for (int32_t id = 0; id < t->n_vocab; id++)
            if (t->types[id] == TT_UNKNOWN) {
                t->unk = id;
                break;
            }
    t->add_bos = t->kind == KIND_SPM;
    bool b;
    if (ig_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b))
        t->add_bos = b;
    if (t->bos < 0)
        t->add_bos = false;
    t->add_space_prefix = t->kind == KIND_SPM;
    if (ig_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b))
        t->add_space_prefix = b;
    find_eog(t, g, err, &bad);
    if (bad)
        goto fail;

    for (int i = 0; i < 256; i++)
        t->byte_token[i] = -1;
    for (unsigned i = 0; i < 256; i++) {
        char buf[8];
        if (t->kind == KIND_SPM) {
            snprintf(buf, sizeof buf, "<0x%02X>", i);
            int32_t id = vocab_find(t, buf, 6);
            if (id >= 0 && t->types[id] == TT_BYTE)
                t->byte_token[i] = id;
        } else {
            unsigned char u[4];
            size_t n = ig_utf8_encode(byte_to_char(i), u);
            assert(n <= 2);
            memcpy(t->byte_utf8[i], u, n);
            t->byte_utf8_len[i] = (uint8_t)n;
            t->byte_token[i] = vocab_find(t, (const char *)u, n);
        }
    }
    if (build_decoded(t, err) || build_specials(t, err))
        goto fail;
    return t;
fail:
    ig_tokenizer_free(t);
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* Getters.                                                                    */

int32_t ig_tokenizer_n_vocab(const ig_tokenizer *t) { return t->n_vocab; }
int32_t ig_tokenizer_bos(const ig_tokenizer *t) { return t->bos; }
int32_t ig_tokenizer_eos(const ig_tokenizer *t) { return t->eos; }
bool ig_tokenizer_adds_bos(const ig_tokenizer *t) { return t->add_bos; }
const char *ig_tokenizer_model(const ig_tokenizer *t) { return t->model; }
const char *ig_tokenizer_pre(const ig_tokenizer *t) { return t->pre; }

bool ig_tokenizer_is_eog(const ig_tokenizer *t, int32_t id)
{
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return true;
    return false;
}

ig_str ig_token_piece(const ig_tokenizer *t, int32_t id)
{
    ig_str s = {"", 0};
    if (id >= 0 && id < t->n_vocab) {
        s.ptr = piece_ptr(t, id);
        s.len = piece_len(t, id);
    }
    return s;
}

size_t ig_token_bytes(const ig_tokenizer *t, int32_t id, char *buf, size_t cap)
{
    if (id < 0 || id >= t->n_vocab)
        return 0;
    size_t n = t->decoded_off[id + 1] - t->decoded_off[id];
    if (buf && cap)
        memcpy(buf, t->decoded + t->decoded_off[id], n < cap ? n : cap);
    return n;
}

/* ------------------------------------------------------------------------- */
/* Streaming detokenizer.                                                      */

void ig_detok_init(ig_detok *d)
{
    memset(d, 0, sizeof *d);
    d->at_start = true;
}

size_t ig_detok_max_bytes(const ig_tokenizer *t)
{
    /* Every byte may become U+FFFD (3 bytes), held bytes included. */
    return 3 * (t->max_decoded + sizeof ((ig_detok *)0)->pending) + 4;
}

typedef struct {
    char *out;
    size_t cap, n;
} sink;

static void put(sink *k, const void *p, size_t n)
{
    for (size_t i = 0; i < n && k->n < k->cap; i++)
        k->out[k->n++] = ((const char *)p)[i];
}

static size_t utf8_need(unsigned char lead)
{
    if (lead >= 0xC2 && lead <= 0xDF)
        return 2;
    if (lead >= 0xE0 && lead <= 0xEF)
        return 3;
    if (lead >= 0xF0 && lead <= 0xF4)
        return 4;
    return 0;
}

/* Whether b may follow the held bytes (the second byte's range depends on the lead). */
static bool continues(const unsigned char *held, int n_held, unsigned char b)
{
    if ((b & 0xC0) != 0x80)
        return false;
    if (n_held == 1) {
        unsigned char lead = held[0];
        if (lead == 0xE0)
            return b >= 0xA0;
        if (lead == 0xED)
            return b <= 0x9F;
        if (lead == 0xF0)
            return b >= 0x90;
        if (lead == 0xF4)
            return b <= 0x8F;
    }
    return true;
}

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* Feeds one byte: complete characters go out, a broken sequence becomes U+FFFD. */
static void feed(ig_detok *d, unsigned char b, sink *k)
{
    if (d->n_pending > 0) {
        if (continues(d->pending, d->n_pending, b)) {
            d->pending[d->n_pending++] = b;
            if ((size_t)d->n_pending == utf8_need(d->pending[0])) {
                put(k, d->pending, (size_t)d->n_pending);
                d->n_pending = 0;
            }
            return;
        }
        put(k, REPLACEMENT, 3);
        d->n_pending = 0;
    }
    if (b < 0x80) {
        put(k, &b, 1);
    } else if (utf8_need(b)) {
        d->pending[0] = b;
        d->n_pending = 1;
    } else {
        put(k, REPLACEMENT, 3);
    }
}

size_t ig_detok_push(const ig_tokenizer *t, ig_detok *d, int32_t id, char *out, size_t cap)
{
    if (id < 0 || id >= t->n_vocab)
        return 0;
    const unsigned char *p = (const unsigned char *)t->decoded + t->decoded_off[id];
    size_t n = t->decoded_off[id + 1] - t->decoded_off[id];
    if (d->at_start) {
        /* SentencePiece drops the space its encoder added before the first piece;
         * control tokens (BOS) before it do not count. */
        if (t->types[id] == TT_CONTROL)
            return 0;
        d->at_start = false;
        if (t->kind == KIND_SPM && t->add_space_prefix && t->types[id] != TT_BYTE && n > 0 &&
            p[0] == ' ' && piece_len(t, id) >= 3 && memcmp(piece_ptr(t, id), "\xE2\x96\x81", 3) == 0) {
            p++;
            n--;
        }
    }
    sink k = {out, cap, 0};
    for (size_t i = 0; i < n; i++)
        feed(d, p[i], &k);
    return k.n;
}

size_t ig_detok_flush(ig_detok *d, char *out, size_t cap)
{
    sink k = {out, cap, 0};
    if (d->n_pending > 0)
        put(&k, REPLACEMENT, 3);
    d->n_pending = 0;
    return k.n;
}
