/*
 * unicode.h — engine-private Unicode pieces the tokenizers need: UTF-8 decoding that
 * never fails (an invalid byte becomes one IG_UTF8_INVALID unit, so any byte string
 * can be tokenized), the character classes \p{L}, \p{N} and \s from generated tables
 * (unicode_data.c), and the pre-tokenizers of byte-level BPE written as hand-made
 * scanners that split text exactly where the reference regular expressions do.
 */
#ifndef IG_UNICODE_H
#define IG_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Character class bits. */
#define IG_UNICODE_LETTER 1u /* general category L* */
#define IG_UNICODE_NUMBER 2u /* general category N* */
#define IG_UNICODE_SPACE 4u  /* White_Space: what \s matches */
#define IG_UNICODE_UPPER 8u  /* Lu */
#define IG_UNICODE_LOWER 16u /* Ll */

typedef struct {
    uint32_t first, last;
    uint32_t flags;
} ig_unicode_range;

extern const ig_unicode_range ig_unicode_ranges[];
extern const size_t ig_unicode_n_ranges;
extern const char ig_unicode_version[];

/* Class bits of a code point (0 for IG_UTF8_INVALID and unassigned code points). */
uint32_t ig_unicode_flags(uint32_t cp);

/* Stands for one byte that does not begin a valid UTF-8 sequence. */
#define IG_UTF8_INVALID 0xFFFFFFFFu

/* Decodes the character at s[0..n) (n >= 1). Returns its length in bytes (1..4) and
 * sets *cp; an invalid or truncated sequence, an overlong form or a surrogate yields
 * length 1 and IG_UTF8_INVALID. */
size_t ig_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Writes cp (< 0x110000) as UTF-8; returns 1..4. */
size_t ig_utf8_encode(uint32_t cp, unsigned char out[4]);

/* Pre-tokenizers of byte-level BPE, by the regex each reference uses:
 *   GPT2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   LLAMA3 (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   QWEN2  as LLAMA3 with \p{N} (one digit at a time) for \p{N}{1,3} */
typedef enum {
    IG_PRETOK_GPT2,
    IG_PRETOK_LLAMA3,
    IG_PRETOK_QWEN2,
} ig_pretok;

/* Given code points cps[0..n) and a start i < n, returns the end (exclusive, > i) of
 * the pre-token that the regex matches at i. */
size_t ig_pretok_next(ig_pretok kind, const uint32_t *cps, size_t n, size_t i);

#endif /* IG_UNICODE_H */
