/*
 * tokenizer_encode.c — text to tokens (ig_tokenize). Both tokenizers merge with a
 * binary heap over a linked list of symbols, O(n log n) per word:
 *
 *   SentencePiece ("llama"): the text gets a "▁" prefix and every space becomes "▁";
 *     adjacent symbols merge into the piece with the highest score (ties: leftmost),
 *     as SentencePiece's bpe_model does; a piece missing from the vocabulary falls
 *     back to <0xXX> byte tokens, and an unused piece is split back into its parts.
 *   Byte-level BPE ("gpt2"): a pre-tokenizer (unicode.c) splits the text, each
 *     pre-token's bytes become GPT-2's printable characters and merge by rank (lowest
 *     first, ties leftmost); Llama 3 first looks the whole pre-token up.
 *
 * Special tokens are matched in the text, longest first, only when asked. All state
 * is per call: one tokenizer serves any number of threads.
 */
#include "tokenizer_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* Encoding.                                                                   */

/* The output of one ig_tokenize call: grows as needed. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
    bool oom;
} id_vec;

static void emit(id_vec *v, int32_t id)
{
    if (v->oom)
        return;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p) {
            v->oom = true;
            return;
        }
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
}

/* A symbol in the merge list: a run of bytes of the word. */
typedef struct {
    uint32_t start, len;
    int32_t id;   /* token of this run (-1: none) */
    int32_t prev, next;
    uint32_t node;/* SentencePiece: the merge tree node, for re-segmenting unused pieces */
} symbol;

/* A candidate merge of symbols left and left's successor right. */
typedef struct {
    float score;  /* SentencePiece: higher first */
    int32_t rank; /* BPE: lower first */
    uint32_t left, right;
    uint32_t len; /* combined length when proposed: stale when it changed */
    int32_t id;   /* the merged token */
} candidate;

typedef struct {
    uint32_t start, len;
    int32_t id;
    int32_t child[2];
} tree_node;

/* Scratch buffers of one call, reused across words. */
typedef struct {
    symbol *sym;
    size_t sym_cap;
    candidate *heap;
    size_t heap_n, heap_cap;
    tree_node *nodes;
    size_t nodes_n, nodes_cap;
    char *buf;
    size_t buf_cap;
    bool oom;
} scratch;

static void *grow(void *p, size_t *cap, size_t need, size_t elem, bool *oom)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) {
        *oom = true;
        return p;
    }
    *cap = c;
    return q;
}

static bool better(const ig_tokenizer *t, const candidate *a, const candidate *b)
{
    if (t->kind == KIND_SPM) {
        if (a->score != b->score)
            return a->score > b->score;
    } else if (a->rank != b->rank) {
        return a->rank < b->rank;
    }
    return a->left < b->left;
}

static void heap_push(const ig_tokenizer *t, scratch *s, candidate c)
{
    s->heap = grow(s->heap, &s->heap_cap, s->heap_n + 1, sizeof *s->heap, &s->oom);
    if (s->oom)
        return;
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!better(t, &c, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = c;
}

static candidate heap_pop(const ig_tokenizer *t, scratch *s)
{
    assert(s->heap_n > 0);
    candidate top = s->heap[0];
    candidate last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const candidate *bc = &last;
        if (l < n && better(t, &s->heap[l], bc)) {
            best = l;
            bc = &s->heap[l];
        }
        if (r < n && better(t, &s->heap[r], bc))
            best = r;
        if (best == i)
            break;
        s->heap[i] = s->heap[best];
        i = best;
    }
    if (n)
        s->heap[i] = last;
    return top;
}

/* SentencePiece merges only into normal, user-defined and unused pieces. */
static int32_t spm_piece(const ig_tokenizer *t, const char *s, size_t n)
{
    int32_t id = vocab_find(t, s, n);
    if (id < 0)
        return -1;
    uint8_t ty = t->types[id];
    return (ty == TT_NORMAL || ty == TT_USER_DEFINED || ty == TT_UNUSED) ? id : -1;
}

static void propose(const ig_tokenizer *t, scratch *s, const char *text, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return;
    const symbol *a = &s->sym[left], *b = &s->sym[right];
    candidate c = {0};
    c.left = (uint32_t)left;
    c.right = (uint32_t)right;
    c.len = a->len + b->len;
    if (t->kind == KIND_SPM) {
        c.id = spm_piece(t, text + a->start, c.len);
        if (c.id < 0)
            return;
        c.score = t->scores[c.id];
    } else if (!merge_find(t, a->id, b->id, &c.rank, &c.id)) {
        return;
    }
    heap_push(t, s, c);
}

/* Merges the symbols s->sym[0..n) of text until no candidate is left. */
static void merge_symbols(const ig_tokenizer *t, scratch *s, const char *text, size_t n)
{
    s->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        propose(t, s, text, (int32_t)i, (int32_t)i + 1);
    while (s->heap_n > 0 && !s->oom) {
        candidate c = heap_pop(t, s);
        symbol *a = &s->sym[c.left], *b = &s->sym[c.right];
        if (a->len == 0 || b->len == 0 || a->len + b->len != c.len || a->next != (int32_t)c.right)
            continue; /* stale: one side changed since it was proposed */
        if (t->kind == KIND_SPM) {
            s->nodes = grow(s->nodes, &s->nodes_cap, s->nodes_n + 1, sizeof *s->nodes, &s->oom);
            if (s->oom)
                return;
            tree_node *nd = &s->nodes[s->nodes_n];
            nd->start = a->start;
            nd->len = c.len;
            nd->id = c.id;
            nd->child[0] = (int32_t)a->node;
            nd->child[1] = (int32_t)b->node;
            a->node = (uint32_t)s->nodes_n++;
        }
        a->len = c.len;
        a->id = c.id;
        a->next = b->next;
        if (b->next >= 0)
            s->sym[b->next].prev = (int32_t)c.left;
        b->len = 0;
        propose(t, s, text, a->prev, (int32_t)c.left);
        propose(t, s, text, (int32_t)c.left, a->next);
    }
}

/* Bytes of text[start..start+len) as <0xXX> tokens, or one unknown token. */
static void spm_byte_fallback(const ig_tokenizer *t, const char *text, uint32_t start,
                              uint32_t len, id_vec *out)
{
    bool all = true;
    for (uint32_t i = 0; i < len; i++)
        all = all && t->byte_token[(unsigned char)text[start + i]] >= 0;
    if (all) {
        for (uint32_t i = 0; i < len; i++)
            emit(out, t->byte_token[(unsigned char)text[start + i]]);
    } else if (t->unk >= 0) {
        emit(out, t->unk);
    }
}

/* Emits a merged piece; an unused piece is split back into what formed it. */
static void spm_emit_node(const ig_tokenizer *t, const scratch *s, const char *text, uint32_t node,
                          id_vec *out)
{
    const tree_node *nd = &s->nodes[node];
    if (nd->id >= 0 && t->types[nd->id] != TT_UNUSED) {
        emit(out, nd->id);
    } else if (nd->child[0] >= 0) {
        spm_emit_node(t, s, text, (uint32_t)nd->child[0], out);
        spm_emit_node(t, s, text, (uint32_t)nd->child[1], out);
    } else if (nd->id >= 0) {
        emit(out, nd->id);
    } else {
        spm_byte_fallback(t, text, nd->start, nd->len, out);
    }
}

/* SentencePiece: text[0..n) is already escaped ("▁" for spaces, prefix added). */
static void spm_encode(const ig_tokenizer *t, scratch *s, const char *text, size_t n, id_vec *out)
{
    if (n == 0)
        return;
    s->sym = grow(s->sym, &s->sym_cap, n, sizeof *s->sym, &s->oom);
    s->nodes = grow(s->nodes, &s->nodes_cap, n, sizeof *s->nodes, &s->oom);
    if (s->oom)
        return;
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = ig_utf8_decode((const unsigned char *)text + i, n - i, &cp);
        symbol *sy = &s->sym[count];
        sy->start = (uint32_t)i;
        sy->len = (uint32_t)len;
        sy->prev = (int32_t)count - 1;
        sy->next = (int32_t)count + 1;
        sy->node = (uint32_t)count;
        /* A single character: any piece but control and byte tokens counts. */
        int32_t id = vocab_find(t, text + i, len);
        if (id >= 0 && (t->types[id] == TT_CONTROL || t->types[id] == TT_BYTE))
            id = -1;
        sy->id = id;
        tree_node *nd = &s->nodes[count];
        nd->start = sy->start;
        nd->len = sy->len;
        nd->id = id;
        nd->child[0] = nd->child[1] = -1;
        count++;
        i += len;
    }
    s->sym[count - 1].next = -1;
    s->nodes_n = count;
    merge_symbols(t, s, text, count);
    for (int32_t i = 0; i >= 0 && !s->oom; i = s->sym[i].next)
        spm_emit_node(t, s, text, s->sym[i].node, out);
}

/* Byte-level BPE of one pre-token. */
static void bpe_encode_word(const ig_tokenizer *t, scratch *s, const char *word, size_t n, id_vec *out)
{
    if (n == 1) {
        int32_t id = t->byte_token[(unsigned char)word[0]];
        emit(out, id >= 0 ? id : t->unk);
        return;
    }
    if (t->ignore_merges) {
        s->buf = grow(s->buf, &s->buf_cap, 2 * n, 1, &s->oom);
        if (s->oom)
            return;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned b = (unsigned char)word[i];
            memcpy(s->buf + m, t->byte_utf8[b], t->byte_utf8_len[b]);
            m += t->byte_utf8_len[b];
        }
        /* Only a normal token: a control token spelled like a word stays text. */
        int32_t id = vocab_find(t, s->buf, m);
        if (id >= 0 && t->types[id] == TT_NORMAL) {
            emit(out, id);
            return;
        }
    }
    s->sym = grow(s->sym, &s->sym_cap, n, sizeof *s->sym, &s->oom);
    if (s->oom)
        return;
    for (size_t i = 0; i < n; i++) {
        symbol *sy = &s->sym[i];
        sy->start = (uint32_t)i;
        sy->len = 1;
        sy->id = t->byte_token[(unsigned char)word[i]];
        sy->prev = (int32_t)i - 1;
        sy->next = i + 1 < n ? (int32_t)i + 1 : -1;
        sy->node = 0;
    }
    merge_symbols(t, s, word, n);
    for (int32_t i = 0; i >= 0; i = s->sym[i].next) {
        int32_t id = s->sym[i].id;
        if (id >= 0)
            emit(out, id);
        else if (t->unk >= 0)
            emit(out, t->unk);
    }
}

static void bpe_encode(const ig_tokenizer *t, scratch *s, const char *text, size_t n, id_vec *out)
{
    if (n == 0)
        return;
    /* Code points with their byte offsets (invalid bytes are one unit each). */
    uint32_t *cps = malloc((n + 1) * sizeof *cps);
    uint32_t *offs = malloc((n + 1) * sizeof *offs);
    if (!cps || !offs) {
        free(cps);
        free(offs);
        s->oom = true;
        return;
    }
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        offs[count] = (uint32_t)i;
        i += ig_utf8_decode((const unsigned char *)text + i, n - i, &cps[count]);
        count++;
    }
    offs[count] = (uint32_t)n;
    for (size_t i = 0; i < count && !s->oom;) {
        size_t j = ig_pretok_next(t->pretok, cps, count, i);
        bpe_encode_word(t, s, text + offs[i], offs[j] - offs[i], out);
        i = j;
    }
    free(cps);
    free(offs);
}

/* Encodes plain text (no special tokens in it). */
static void encode_text(const ig_tokenizer *t, scratch *s, const char *text, size_t n, bool prefix,
                        id_vec *out)
{
    if (t->kind == KIND_BPE) {
        bpe_encode(t, s, text, n, out);
        return;
    }
    if (n == 0)
        return;
    /* Escape: a "▁" prefix and "▁" for every space (each 1 byte -> 3). */
    s->buf = grow(s->buf, &s->buf_cap, 3 * n + 3, 1, &s->oom);
    if (s->oom)
        return;
    size_t m = 0;
    if (prefix) {
        memcpy(s->buf, "\xE2\x96\x81", 3);
        m = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (text[i] == ' ') {
            memcpy(s->buf + m, "\xE2\x96\x81", 3);
            m += 3;
        } else {
            s->buf[m++] = text[i];
        }
    }
    /* spm_encode reads the escaped text while it may grow other scratch buffers. */
    char *escaped = s->buf;
    s->buf = NULL;
    s->buf_cap = 0;
    spm_encode(t, s, escaped, m, out);
    free(escaped);
}

/* The longest special token at text[i..n), or -1. */
static int32_t match_special(const ig_tokenizer *t, const char *text, size_t n, size_t i)
{
    unsigned b = (unsigned char)text[i];
    for (uint32_t k = t->special_start[b]; k < t->special_start[b + 1]; k++) {
        int32_t id = t->special[k];
        uint32_t len = piece_len(t, id);
        if (len <= n - i && memcmp(text + i, piece_ptr(t, id), len) == 0)
            return id;
    }
    return -1;
}

int64_t ig_tokenize(const ig_tokenizer *t, const char *text, size_t len, bool add_bos,
                    bool parse_special, int32_t *out, int64_t cap, ig_err *err)
{
    if (!t || (!text && len > 0) || cap < 0 || (!out && cap > 0)) {
        ig_err_set(err, IG_ERR_INVALID, "tokenize: invalid arguments");
        return -1;
    }
    if (len > MAX_INPUT_BYTES) {
        ig_err_set(err, IG_ERR_RANGE, "tokenize: input of %zu bytes is over the limit of %zu", len,
                   MAX_INPUT_BYTES);
        return -1;
    }
    id_vec v = {0};
    scratch s = {0};
    if (add_bos && t->bos >= 0)
        emit(&v, t->bos);
    /* SentencePiece (as llama.cpp splits it): a text fragment gets the space prefix at
     * the start and after a special token. */
    bool prefix = t->add_space_prefix;
    size_t seg = 0;
    if (parse_special) {
        for (size_t i = 0; i < len;) {
            int32_t id = match_special(t, text, len, i);
            if (id < 0) {
                i++;
                continue;
            }
            if (i > seg) {
                encode_text(t, &s, text + seg, i - seg, prefix, &v);
                prefix = false;
            }
            emit(&v, id);
            prefix = t->add_space_prefix;
            i += piece_len(t, id);
            seg = i;
        }
    }
    if (len > seg)
        encode_text(t, &s, text + seg, len - seg, prefix, &v);
    free(s.sym);
    free(s.heap);
    free(s.nodes);
    free(s.buf);
    if (v.oom || s.oom) {
        free(v.ids);
        ig_err_set(err, IG_ERR_NOMEM, "tokenize: out of memory on %zu bytes of input", len);
        return -1;
    }
    int64_t n = (int64_t)v.n;
    if (out && cap > 0 && n > 0)
        memcpy(out, v.ids, (size_t)(n < cap ? n : cap) * sizeof *out);
    free(v.ids);
    return n;
}
