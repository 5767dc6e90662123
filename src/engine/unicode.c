/*
 * unicode.c — UTF-8 decoding for the tokenizers, character classes from the generated
 * tables, and the byte-level BPE pre-tokenizers as scanners (see unicode.h).
 *
 * The scanners follow the regex engines' semantics alternative by alternative: at a
 * position the first alternative that matches wins, quantifiers are greedy, and the
 * lookahead \s+(?!\S) gives back one whitespace character when a non-space follows.
 */
#include "unicode.h"

#include <assert.h>
#include <stdbool.h>

uint32_t ig_unicode_flags(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z'))
            return IG_UNICODE_LETTER | IG_UNICODE_LOWER;
        if ((cp >= 'A' && cp <= 'Z'))
            return IG_UNICODE_LETTER | IG_UNICODE_UPPER;
        if (cp >= '0' && cp <= '9')
            return IG_UNICODE_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D))
            return IG_UNICODE_SPACE;
        return 0;
    }
    if (cp > 0x10FFFF)
        return 0;
    size_t lo = 0, hi = ig_unicode_n_ranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const ig_unicode_range *r = &ig_unicode_ranges[mid];
        if (cp < r->first)
            hi = mid;
        else if (cp > r->last)
            lo = mid + 1;
        else
            return r->flags;
    }
    return 0;
}

size_t ig_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    assert(n >= 1);
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else {
        *cp = IG_UTF8_INVALID;
        return 1;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        *cp = IG_UTF8_INVALID;
        return 1;
    }
    v = (v << 6) | (s[1] & 0x3Fu);
    for (size_t k = 2; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            *cp = IG_UTF8_INVALID;
            return 1;
        }
        v = (v << 6) | (s[k] & 0x3Fu);
    }
    *cp = v;
    return len;
}

size_t ig_utf8_encode(uint32_t cp, unsigned char out[4])
{
    assert(cp < 0x110000);
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ------------------------------------------------------------------------- */
/* Pre-tokenizer scanners.                                                     */

static bool is_letter(uint32_t cp) { return ig_unicode_flags(cp) & IG_UNICODE_LETTER; }
static bool is_number(uint32_t cp) { return ig_unicode_flags(cp) & IG_UNICODE_NUMBER; }
static bool is_space(uint32_t cp) { return ig_unicode_flags(cp) & IG_UNICODE_SPACE; }
static bool is_newline(uint32_t cp) { return cp == '\r' || cp == '\n'; }
/* [^\s\p{L}\p{N}] */
static bool is_other(uint32_t cp)
{
    return !(ig_unicode_flags(cp) & (IG_UNICODE_LETTER | IG_UNICODE_NUMBER | IG_UNICODE_SPACE));
}

static size_t run_of(bool (*pred)(uint32_t), const uint32_t *cps, size_t n, size_t i)
{
    while (i < n && pred(cps[i]))
        i++;
    return i;
}

/* 's|'t|'re|'ve|'m|'ll|'d at i, optionally ignoring ASCII case (and ſ for s, as
 * Unicode case folding does). Returns the end, or 0 when none matches. */
static size_t contraction(const uint32_t *cps, size_t n, size_t i, bool ignore_case)
{
    if (cps[i] != '\'' || i + 1 >= n)
        return 0;
    uint32_t a = cps[i + 1];
    uint32_t b = i + 2 < n ? cps[i + 2] : 0;
    if (ignore_case) {
        if (a >= 'A' && a <= 'Z')
            a += 'a' - 'A';
        if (b >= 'A' && b <= 'Z')
            b += 'a' - 'A';
        if (a == 0x17F)
            a = 's';
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return i + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return i + 3;
    return 0;
}

/* \s+(?!\S)|\s+ at i (cps[i] is whitespace): the whole run when it reaches the end
 * or is one character long; otherwise all but its last character, which then starts
 * the next pre-token (" word" and the like). */
static size_t trailing_space(const uint32_t *cps, size_t n, size_t i)
{
    size_t j = run_of(is_space, cps, n, i);
    assert(j > i);
    if (j == n || j - i == 1)
        return j;
    return j - 1;
}

static size_t gpt2_next(const uint32_t *cps, size_t n, size_t i)
{
    size_t end = contraction(cps, n, i, false);
    if (end)
        return end;
    uint32_t c = cps[i];
    /* " ?X+" for X in L, N, other: the optional space is taken when X follows it. */
    size_t k = (c == ' ' && i + 1 < n) ? i + 1 : i;
    uint32_t x = cps[k];
    if (is_letter(x))
        return run_of(is_letter, cps, n, k);
    if (is_number(x))
        return run_of(is_number, cps, n, k);
    if (is_other(x))
        return run_of(is_other, cps, n, k);
    /* A space followed by whitespace, or any other whitespace. */
    assert(is_space(c));
    return trailing_space(cps, n, i);
}

static size_t llama3_next(const uint32_t *cps, size_t n, size_t i, size_t max_digits)
{
    size_t end = contraction(cps, n, i, true);
    if (end)
        return end;
    uint32_t c = cps[i];
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (is_letter(c))
        return run_of(is_letter, cps, n, i);
    if (!is_newline(c) && !is_number(c) && i + 1 < n && is_letter(cps[i + 1]))
        return run_of(is_letter, cps, n, i + 1);
    /* \p{N}{1,max_digits} */
    if (is_number(c)) {
        size_t j = i;
        while (j < n && j - i < max_digits && is_number(cps[j]))
            j++;
        return j;
    }
    /* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t k = (c == ' ' && i + 1 < n && is_other(cps[i + 1])) ? i + 1 : i;
    if (is_other(cps[k])) {
        size_t j = run_of(is_other, cps, n, k);
        while (j < n && is_newline(cps[j]))
            j++;
        return j;
    }
    assert(is_space(c));
    /* \s*[\r\n]+ : the whitespace run up to and including its last line break. */
    size_t j = run_of(is_space, cps, n, i);
    for (size_t q = j; q > i; q--)
        if (is_newline(cps[q - 1]))
            return q;
    return trailing_space(cps, n, i);
}

size_t ig_pretok_next(ig_pretok kind, const uint32_t *cps, size_t n, size_t i)
{
    assert(i < n);
    size_t end;
    switch (kind) {
    case IG_PRETOK_GPT2:
        end = gpt2_next(cps, n, i);
        break;
    case IG_PRETOK_LLAMA3:
        end = llama3_next(cps, n, i, 3);
        break;
    case IG_PRETOK_QWEN2:
        end = llama3_next(cps, n, i, 1);
        break;
    default:
        end = i + 1;
        break;
    }
    assert(end > i && end <= n);
    return end;
}
