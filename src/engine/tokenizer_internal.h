/*
 * tokenizer_internal.h — engine-private: the tokenizer object shared by tokenizer.c
 * (loading, lookups, decoding) and tokenizer_encode.c (text to tokens), with the
 * vocabulary's hash lookups inline because encoding calls them per symbol pair.
 */
#ifndef IG_TOKENIZER_INTERNAL_H
#define IG_TOKENIZER_INTERNAL_H

#include "engine.h"
#include "unicode.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Limits: a vocabulary, a piece, the merges, and one call's input. */
#define MAX_VOCAB (1 << 22)
#define MAX_PIECE_BYTES 65536
#define MAX_MERGES (1 << 23)
#define MAX_INPUT_BYTES ((size_t)256 << 20)
#define MAX_EOG 16

/* GGUF token types. */
enum {
    TT_NORMAL = 1,
    TT_UNKNOWN = 2,
    TT_CONTROL = 3,
    TT_USER_DEFINED = 4,
    TT_UNUSED = 5,
    TT_BYTE = 6,
};

typedef enum { KIND_SPM, KIND_BPE } tok_kind;

/* Open-addressing hash set of token ids keyed by their piece strings. A slot keeps
 * 32 bits of the hash and where the piece is, so that a lookup touches the slot and,
 * only when the tags agree, the piece itself: two memory accesses, not three. */
typedef struct {
    uint32_t tag;
    int32_t id; /* -1: empty */
    uint32_t off, len;
} vocab_slot;

typedef struct {
    vocab_slot *slots;
    uint64_t mask;
} vocab_map;

/* Open-addressing hash map (left id, right id) -> (rank, merged id): one slot is one
 * cache line's quarter, so a lookup costs one miss. */
typedef struct {
    uint64_t key; /* (left << 32 | right) + 1; 0 for empty */
    int32_t rank;
    int32_t result;
} merge_slot;

typedef struct {
    merge_slot *slots;
    uint64_t mask;
} merge_map;

struct ig_tokenizer {
    tok_kind kind;
    ig_pretok pretok;
    bool ignore_merges;
    char model[16];
    char pre[32];

    int32_t n_vocab;
    char *pieces;         /* all pieces, concatenated */
    uint32_t *piece_off;  /* n_vocab + 1 offsets into pieces */
    char *decoded;        /* what each token decodes to, concatenated */
    uint32_t *decoded_off;/* n_vocab + 1 */
    size_t max_decoded;
    float *scores;        /* SentencePiece scores; NULL for BPE */
    uint8_t *types;

    vocab_map vocab;
    merge_map merges;
    int32_t byte_token[256]; /* SPM: <0xXX>; BPE: the token of the byte's character */
    unsigned char byte_utf8[256][2]; /* BPE: each byte's character in UTF-8 (1-2 bytes) */
    uint8_t byte_utf8_len[256];

    int32_t bos, eos, unk;
    bool add_bos;
    bool add_space_prefix;
    int32_t eog[MAX_EOG];
    int n_eog;

    /* Special tokens, grouped by first byte, longest first within a group. */
    int32_t *special;
    uint32_t special_start[257];
};

/* ------------------------------------------------------------------------- */
/* Hashing.                                                                    */

static inline uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
    /* FNV-1a, then a final mix (below) so that the low bits used as slots spread. */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static inline uint64_t hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

#define HASH_SEED 0xcbf29ce484222325ULL

static inline const char *piece_ptr(const ig_tokenizer *t, int32_t id)
{
    return t->pieces + t->piece_off[id];
}

static inline uint32_t piece_len(const ig_tokenizer *t, int32_t id)
{
    return t->piece_off[id + 1] - t->piece_off[id];
}

static inline uint64_t hash2(const char *a, size_t na, const char *b, size_t nb)
{
    return hash_mix(hash_bytes(hash_bytes(HASH_SEED, a, na), b, nb));
}

static inline bool slot_holds(const ig_tokenizer *t, const vocab_slot *slot, const char *a,
                              size_t na, const char *b, size_t nb)
{
    return slot->len == na + nb && memcmp(t->pieces + slot->off, a, na) == 0 &&
           (nb == 0 || memcmp(t->pieces + slot->off + na, b, nb) == 0);
}

/* Id of the piece a (+ b) whose hash2 is h, or -1. */
static inline int32_t vocab_find_hashed(const ig_tokenizer *t, uint64_t h, const char *a, size_t na,
                                 const char *b, size_t nb)
{
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = h & t->vocab.mask;; i = (i + 1) & t->vocab.mask) {
        const vocab_slot *slot = &t->vocab.slots[i];
        if (slot->id < 0)
            return -1;
        if (slot->tag == tag && slot_holds(t, slot, a, na, b, nb))
            return slot->id;
    }
}

/* Id of the piece a (+ b), or -1. */
static inline int32_t vocab_find2(const ig_tokenizer *t, const char *a, size_t na, const char *b,
                           size_t nb)
{
    return vocab_find_hashed(t, hash2(a, na, b, nb), a, na, b, nb);
}

static inline int32_t vocab_find(const ig_tokenizer *t, const char *s, size_t n)
{
    return vocab_find2(t, s, n, "", 0);
}

static inline uint64_t merge_key(int32_t left, int32_t right)
{
    return (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
}

/* Rank and merged id of the pair, or false. */
static inline bool merge_find(const ig_tokenizer *t, int32_t left, int32_t right, int32_t *rank,
                       int32_t *result)
{
    if (!t->merges.slots || left < 0 || right < 0)
        return false;
    uint64_t key = merge_key(left, right);
    for (uint64_t i = hash_mix(key) & t->merges.mask;; i = (i + 1) & t->merges.mask) {
        const merge_slot *slot = &t->merges.slots[i];
        if (slot->key == 0)
            return false;
        if (slot->key == key) {
            *rank = slot->rank;
            *result = slot->result;
            return true;
        }
    }
}

/* ------------------------------------------------------------------------- */
/* GPT-2's byte <-> character table: printable Latin-1 bytes stand for themselves,
 * the other 68 bytes map to U+0100.. in byte order. */

static inline uint32_t byte_to_char(unsigned b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))
        return b;
    unsigned n = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE)))
            n++;
    return 0x100 + n;
}

#endif /* IG_TOKENIZER_INTERNAL_H */
