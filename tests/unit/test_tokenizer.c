/*
 * test_tokenizer.c — the tokenizers (src/engine/tokenizer.c, unicode.c) against real
 * vocabularies: the conformance vectors in tests/data/tokenizers (in-process and through
 * the real `idlegrid tokenize` command), the bundled models' expected prompt ids and
 * continuations, special tokens, streaming detokenization, invalid UTF-8, long inputs,
 * load time and malformed tokenizer metadata.
 *
 *   test_tokenizer                          the unit tests
 *   test_tokenizer conformance VOCAB [BIN]  one vocabulary's vectors, in-process and,
 *                                           given the idlegrid binary, through the CLI
 *   test_tokenizer cli-usage BIN            the command's --help and error exits
 *   test_tokenizer load-time                prints how long Llama 3's vocabulary takes to load
 *
 * Data comes from $IG_TEST_DATA and $IG_MODELS (set by CTest).
 */
#include "engine.h"
#include "ig_check.h"
#include "unicode.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define IG_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IG_SANITIZED 1
#endif
#endif
#ifndef IG_SANITIZED
#define IG_SANITIZED 0
#endif

static const char *data_dir(void)
{
    const char *d = getenv("IG_TEST_DATA");
    return d ? d : "tests/data";
}

static const char *models_dir(void)
{
    const char *d = getenv("IG_MODELS");
    return d ? d : "models";
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of this thread: a loaded machine (CI runs tests in parallel) stretches
 * wall time but not this. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* A tokenizer with its file. */
typedef struct {
    ig_gguf *g;
    ig_tokenizer *t;
} vocab;

static bool vocab_open(vocab *v, const char *path)
{
    ig_err err = {0};
    v->t = NULL;
    v->g = ig_gguf_open(path, &err);
    IG_CHECK(v->g != NULL, "%s: %s", path, err.msg);
    if (!v->g)
        return false;
    v->t = ig_tokenizer_new(v->g, &err);
    IG_CHECK(v->t != NULL, "%s: %s", path, err.msg);
    if (!v->t) {
        ig_gguf_free(v->g);
        return false;
    }
    return true;
}

static bool vocab_open_named(vocab *v, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/%s", data_dir(), name);
    return vocab_open(v, path);
}

static void vocab_close(vocab *v)
{
    ig_tokenizer_free(v->t);
    ig_gguf_free(v->g);
}

/* Tokenizes into a fresh array (*n tokens); NULL on error. */
static int32_t *tokenize(const ig_tokenizer *t, const char *text, size_t len, bool bos, bool special,
                         int64_t *n)
{
    ig_err err = {0};
    int64_t count = ig_tokenize(t, text, len, bos, special, NULL, 0, &err);
    IG_CHECK(count >= 0, "%s", err.msg);
    if (count < 0)
        return NULL;
    int32_t *ids = malloc((size_t)(count + 1) * sizeof *ids);
    int64_t again = ig_tokenize(t, text, len, bos, special, ids, count, &err);
    IG_CHECK(again == count, "second pass gave %lld, first %lld", (long long)again, (long long)count);
    *n = count;
    return ids;
}

static void ids_to_string(const int32_t *ids, int64_t n, char *out, size_t cap)
{
    size_t m = 0;
    out[0] = 0;
    for (int64_t i = 0; i < n && m + 16 < cap; i++)
        m += (size_t)snprintf(out + m, cap - m, i ? " %d" : "%d", ids[i]);
}

/* Streams ids through a fresh detokenizer (then flushes); returns malloc'ed text. */
static char *detokenize(const ig_tokenizer *t, const int32_t *ids, int64_t n, size_t *len)
{
    size_t step = ig_detok_max_bytes(t);
    char *out = malloc((size_t)n * step + 8);
    size_t m = 0;
    ig_detok d;
    ig_detok_init(&d);
    for (int64_t i = 0; i < n; i++) {
        size_t got = ig_detok_push(t, &d, ids[i], out + m, step);
        IG_CHECK(got <= step, "push wrote %zu > max %zu", got, step);
        m += got;
    }
    m += ig_detok_flush(&d, out + m, 8);
    out[m] = 0;
    *len = m;
    return out;
}

/* ------------------------------------------------------------------------- */
/* Conformance vectors.                                                        */

#define SEPARATOR "\n__ggml_vocab_test__\n"
#define MAX_CASES 256

typedef struct {
    char *inp, *out; /* file contents */
    const char *text[MAX_CASES];
    size_t len[MAX_CASES];
    const char *expected[MAX_CASES]; /* NUL-terminated lines (in out, modified) */
    int n;
} vectors;

static bool vectors_load(vectors *v, const char *vocab_path)
{
    char path[1100];
    size_t ninp, nout;
    memset(v, 0, sizeof *v);
    snprintf(path, sizeof path, "%s.inp", vocab_path);
    v->inp = read_file(path, &ninp);
    snprintf(path, sizeof path, "%s.out", vocab_path);
    v->out = read_file(path, &nout);
    IG_CHECK(v->inp && v->out, "cannot read %s.inp/.out", vocab_path);
    if (!v->inp || !v->out)
        return false;
    /* Inputs are separated (not terminated) by the separator line. */
    const char *p = v->inp, *end = v->inp + ninp;
    for (;;) {
        const char *sep = strstr(p, SEPARATOR);
        IG_CHECK(v->n < MAX_CASES, "too many cases");
        if (v->n >= MAX_CASES)
            return false;
        v->text[v->n] = p;
        v->len[v->n] = (size_t)((sep ? sep : end) - p);
        v->n++;
        if (!sep)
            break;
        p = sep + strlen(SEPARATOR);
    }
    int lines = 0;
    for (char *q = v->out; lines < MAX_CASES;) {
        char *nl = strchr(q, '\n');
        v->expected[lines++] = q;
        if (!nl)
            break;
        *nl = 0;
        q = nl + 1;
        if (!*q)
            break;
    }
    IG_CHECK(lines == v->n, "%d expected lines for %d inputs", lines, v->n);
    return lines == v->n;
}

static void vectors_free(vectors *v)
{
    free(v->inp);
    free(v->out);
}

/* Runs `BIN tokenize -m VOCAB` with text on stdin; returns its stdout (malloc'ed). */
static char *run_cli(const char *bin, const char *const *args, const char *text, size_t len,
                     int *status, char **err_text)
{
    char in_path[] = "/tmp/ig_tok_inXXXXXX", out_path[] = "/tmp/ig_tok_outXXXXXX",
         err_path[] = "/tmp/ig_tok_errXXXXXX";
    int in = mkstemp(in_path), out = mkstemp(out_path), errfd = mkstemp(err_path);
    IG_CHECK(in >= 0 && out >= 0 && errfd >= 0, "mkstemp failed");
    IG_CHECK(write(in, text, len) == (ssize_t)len, "write failed");
    lseek(in, 0, SEEK_SET);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in, 0);
        dup2(out, 1);
        dup2(errfd, 2);
        const char *argv[16];
        int argc = 0;
        argv[argc++] = bin;
        for (int i = 0; args[i] && argc < 15; i++)
            argv[argc++] = args[i];
        argv[argc] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    close(in);
    close(out);
    close(errfd);
    size_t n;
    char *result = read_file(out_path, &n);
    if (err_text)
        *err_text = read_file(err_path, &n);
    unlink(in_path);
    unlink(out_path);
    unlink(err_path);
    return result;
}

static int conformance(const char *vocab_path, const char *bin)
{
    vocab v;
    vectors vec;
    if (!vocab_open(&v, vocab_path) || !vectors_load(&vec, vocab_path))
        return 1;
    int ok = 0, ok_cli = 0, roundtrip = 0;
    char got[65536];
    for (int i = 0; i < vec.n; i++) {
        int64_t n;
        int32_t *ids = tokenize(v.t, vec.text[i], vec.len[i], false, false, &n);
        if (!ids)
            continue;
        ids_to_string(ids, n, got, sizeof got);
        if (strcmp(got, vec.expected[i]) == 0)
            ok++;
        else
            IG_CHECK(false, "case %d (%.40s): expected [%.200s] got [%.200s]", i, vec.text[i],
                     vec.expected[i], got);
        /* Both tokenizers are lossless on valid UTF-8: decoding gives the text back. */
        size_t dlen;
        char *text = detokenize(v.t, ids, n, &dlen);
        if (dlen == vec.len[i] && memcmp(text, vec.text[i], dlen) == 0)
            roundtrip++;
        else
            IG_CHECK(false, "case %d (%.40s) decodes to (%.60s)", i, vec.text[i], text);
        free(text);
        free(ids);
        if (bin) {
            const char *args[] = {"tokenize", "-m", vocab_path, NULL};
            int status;
            char *out = run_cli(bin, args, vec.text[i], vec.len[i], &status, NULL);
            IG_CHECK(status == 0, "case %d: idlegrid tokenize exited %d", i, status);
            if (out) {
                char *nl = strchr(out, '\n');
                IG_CHECK(nl && nl[1] == 0, "case %d: output is not one line", i);
                if (nl)
                    *nl = 0;
                if (strcmp(out, vec.expected[i]) == 0)
                    ok_cli++;
                else
                    IG_CHECK(false, "case %d via CLI: expected [%.200s] got [%.200s]", i,
                             vec.expected[i], out);
            }
            free(out);
        }
    }
    printf("%s: %d/%d in-process, %d/%d round trips", vocab_path, ok, vec.n, roundtrip, vec.n);
    if (bin)
        printf(", %d/%d through '%s tokenize'", ok_cli, vec.n, bin);
    printf("\n");
    vectors_free(&vec);
    vocab_close(&v);
    return ig_check_test_failures ? 1 : 0;
}

/* ------------------------------------------------------------------------- */
/* The bundled models' expected.json: prompt ids and the greedy continuation text.  */

/* Parses the JSON string at p (at its opening quote) into out; returns the char after. */
static const char *json_string(const char *p, char *out, size_t cap)
{
    size_t m = 0;
    if (*p != '"')
        return NULL;
    p++;
    while (*p && *p != '"' && m + 8 < cap) {
        if (*p != '\\') {
            out[m++] = *p++;
            continue;
        }
        p++;
        char c = *p++;
        switch (c) {
        case 'n': out[m++] = '\n'; break;
        case 't': out[m++] = '\t'; break;
        case 'r': out[m++] = '\r'; break;
        case 'b': out[m++] = '\b'; break;
        case 'f': out[m++] = '\f'; break;
        case 'u': {
            unsigned cp = (unsigned)strtoul((char[5]){p[0], p[1], p[2], p[3], 0}, NULL, 16);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = (unsigned)strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            m += ig_utf8_encode(cp, (unsigned char *)out + m);
            break;
        }
        default: out[m++] = c; break;
        }
    }
    out[m] = 0;
    return *p == '"' ? p + 1 : NULL;
}

static const char *json_ints(const char *p, int32_t *out, int cap, int *n)
{
    *n = 0;
    p = strchr(p, '[');
    if (!p)
        return NULL;
    p++;
    while (*p && *p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        if (*n < cap)
            out[(*n)++] = (int32_t)v;
        p = end;
    }
    return p;
}

static const char *json_field(const char *p, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(p, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == '\n')
        p++;
    return p;
}

static void check_expected_json(const char *model)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.gguf", models_dir(), model);
    vocab v;
    if (!vocab_open(&v, path))
        return;
    snprintf(path, sizeof path, "%s/%s.expected.json", models_dir(), model);
    size_t len;
    char *json = read_file(path, &len);
    IG_CHECK(json != NULL, "cannot read %s", path);
    int cases = 0;
    for (const char *p = json; json && (p = json_field(p, "prompt"));) {
        char prompt[4096], greedy[8192];
        int32_t want[512], cont[512];
        int n_want, n_cont;
        p = json_string(p, prompt, sizeof prompt);
        const char *q = json_field(p, "prompt_ids");
        IG_CHECK(p && q, "malformed %s", path);
        if (!p || !q)
            break;
        p = json_ints(q, want, 512, &n_want);
        p = json_ints(json_field(p, "greedy_ids"), cont, 512, &n_cont);
        p = json_string(json_field(p, "greedy"), greedy, sizeof greedy);
        IG_CHECK(p != NULL, "malformed %s", path);
        if (!p)
            break;
        cases++;

        /* Tokenizing the prompt with BOS gives exactly the listed ids. */
        int64_t n;
        int32_t *ids = tokenize(v.t, prompt, strlen(prompt), true, false, &n);
        char a[4096], b[4096];
        ids_to_string(ids, n, a, sizeof a);
        ids_to_string(want, n_want, b, sizeof b);
        IG_CHECK(strcmp(a, b) == 0, "%s prompt %s: expected [%s] got [%s]", model, prompt, b, a);
        free(ids);

        /* Streaming prompt then continuation through one detokenizer: what the
         * continuation releases is the expected text (its leading space kept). */
        size_t step = ig_detok_max_bytes(v.t);
        char *text = malloc((size_t)(n_want + n_cont) * step + 8);
        ig_detok d;
        ig_detok_init(&d);
        size_t m = 0, prompt_bytes = 0;
        for (int i = 0; i < n_want; i++)
            prompt_bytes += ig_detok_push(v.t, &d, want[i], text + prompt_bytes, step);
        IG_CHECK(prompt_bytes == strlen(prompt) && memcmp(text, prompt, prompt_bytes) == 0,
                 "%s: prompt decodes to (%.*s)", model, (int)prompt_bytes, text);
        m = prompt_bytes;
        for (int i = 0; i < n_cont; i++)
            m += ig_detok_push(v.t, &d, cont[i], text + m, step);
        m += ig_detok_flush(&d, text + m, 8);
        IG_CHECK(m - prompt_bytes == strlen(greedy) && memcmp(text + prompt_bytes, greedy, m - prompt_bytes) == 0,
                 "%s prompt %s: continuation decodes to (%.*s), expected (%s)", model, prompt,
                 (int)(m - prompt_bytes), text + prompt_bytes, greedy);
        free(text);
    }
    IG_CHECK(cases >= 6, "%s: only %d cases found", path, cases);
    free(json);
    vocab_close(&v);
}

static void test_edge_model_prompt_ids_and_continuations_match_expected_json(void)
{
    check_expected_json("edge");
}

static void test_cloud_model_prompt_ids_and_continuations_match_expected_json(void)
{
    check_expected_json("cloud");
}

/* ------------------------------------------------------------------------- */
/* Special tokens.                                                             */

static bool contains(const int32_t *ids, int64_t n, int32_t id)
{
    for (int64_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void test_special_token_text_stays_text_unless_parse_special(void)
{
    vocab v;
    if (vocab_open_named(&v, "vocab-llama3.gguf")) {
        const char *text = "<|begin_of_text|>Hi<|eot_id|>";
        int64_t n;
        int32_t *ids = tokenize(v.t, text, strlen(text), false, false, &n);
        IG_CHECK(n > 4 && !contains(ids, n, 128000) && !contains(ids, n, 128009),
                 "plain text produced special ids (%lld tokens)", (long long)n);
        free(ids);
        ids = tokenize(v.t, text, strlen(text), false, true, &n);
        IG_CHECK(n == 3 && ids[0] == 128000 && ids[2] == 128009, "parse_special: %lld tokens", (long long)n);
        int64_t n_hi;
        int32_t *hi = tokenize(v.t, "Hi", 2, false, false, &n_hi);
        IG_CHECK(n == 3 && n_hi == 1 && ids[1] == hi[0], "text between specials is tokenized alone");
        free(hi);
        free(ids);
        /* Longest first: "<|eot_id|>" must not be taken as a shorter prefix. */
        IG_CHECK(ig_tokenizer_is_eog(v.t, 128009) && ig_tokenizer_is_eog(v.t, 128001),
                 "<|eot_id|> and <|end_of_text|> end generation");
        IG_CHECK(!ig_tokenizer_is_eog(v.t, 128000), "BOS does not end generation");
        vocab_close(&v);
    }
    if (vocab_open_named(&v, "vocab-llama2-spm.gguf")) {
        const char *text = "<s>Hello</s>";
        int64_t n;
        int32_t *ids = tokenize(v.t, text, strlen(text), false, false, &n);
        IG_CHECK(!contains(ids, n, 1) && !contains(ids, n, 2), "plain <s> became a control token");
        free(ids);
        ids = tokenize(v.t, text, strlen(text), true, true, &n);
        /* BOS, <s>, then "Hello" with the prefix space a fragment after a special gets. */
        IG_CHECK(n == 4 && ids[0] == 1 && ids[1] == 1 && ids[2] == 15043 && ids[3] == 2,
                 "parse_special on Llama 2: %lld tokens", (long long)n);
        free(ids);
        vocab_close(&v);
    }
}

/* ------------------------------------------------------------------------- */
/* Streaming detokenizer.                                                      */

static int32_t find_piece(const ig_tokenizer *t, const char *piece)
{
    for (int32_t id = 0; id < ig_tokenizer_n_vocab(t); id++) {
        ig_str s = ig_token_piece(t, id);
        if (s.len == strlen(piece) && memcmp(s.ptr, piece, s.len) == 0)
            return id;
    }
    return -1;
}

static void test_detok_holds_a_character_split_over_byte_tokens(void)
{
    vocab v;
    if (!vocab_open_named(&v, "vocab-llama2-spm.gguf"))
        return;
    /* U+1F642 (slightly smiling face) is not in Llama 2's vocabulary: byte fallback. */
    const char *emoji = "\xF0\x9F\x99\x82";
    int64_t n;
    int32_t *ids = tokenize(v.t, emoji, 4, false, false, &n);
    int32_t bytes[4] = {find_piece(v.t, "<0xF0>"), find_piece(v.t, "<0x9F>"), find_piece(v.t, "<0x99>"),
                        find_piece(v.t, "<0x82>")};
    IG_CHECK(n == 5 && ids[1] == bytes[0] && ids[4] == bytes[3], "emoji falls back to 4 byte tokens");
    free(ids);
    char out[256];
    ig_detok d;
    ig_detok_init(&d);
    size_t m = ig_detok_push(v.t, &d, ig_tokenizer_bos(v.t), out, sizeof out);
    IG_CHECK(m == 0, "BOS decodes to nothing");
    m = ig_detok_push(v.t, &d, find_piece(v.t, "▁Hi"), out, sizeof out);
    IG_CHECK(m == 2 && memcmp(out, "Hi", 2) == 0, "first piece after BOS loses its prefix space");
    for (int i = 0; i < 3; i++) {
        m = ig_detok_push(v.t, &d, bytes[i], out, sizeof out);
        IG_CHECK(m == 0, "byte %d of 4 released %zu bytes early", i + 1, m);
    }
    m = ig_detok_push(v.t, &d, bytes[3], out, sizeof out);
    IG_CHECK(m == 4 && memcmp(out, emoji, 4) == 0, "the completed emoji comes out whole (%zu bytes)", m);
    m = ig_detok_push(v.t, &d, find_piece(v.t, "▁there"), out, sizeof out);
    IG_CHECK(m == 6 && memcmp(out, " there", 6) == 0, "later pieces keep their space");

    /* A broken sequence becomes U+FFFD and decoding goes on. */
    ig_detok_push(v.t, &d, bytes[0], out, sizeof out);
    m = ig_detok_push(v.t, &d, find_piece(v.t, "a"), out, sizeof out);
    IG_CHECK(m == 4 && memcmp(out, "\xEF\xBF\xBD" "a", 4) == 0, "truncated char then 'a' -> U+FFFD a");
    m = ig_detok_push(v.t, &d, bytes[3], out, sizeof out);
    IG_CHECK(m == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0, "a lone continuation byte -> U+FFFD");
    ig_detok_push(v.t, &d, bytes[0], out, sizeof out);
    m = ig_detok_flush(&d, out, sizeof out);
    IG_CHECK(m == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0, "flush of a held prefix -> U+FFFD");
    IG_CHECK(ig_detok_flush(&d, out, sizeof out) == 0, "flush again: nothing held");
    vocab_close(&v);

    /* Byte-level BPE: an emoji spread over several tokens. */
    if (!vocab_open_named(&v, "vocab-gpt2.gguf"))
        return;
    const char *text = "a\xF0\x9F\xA6\x99z";
    ids = tokenize(v.t, text, strlen(text), false, false, &n);
    IG_CHECK(n >= 4, "GPT-2 splits the emoji over tokens (%lld)", (long long)n);
    ig_detok_init(&d);
    size_t total = 0;
    char all[64];
    for (int64_t i = 0; i < n; i++) {
        m = ig_detok_push(v.t, &d, ids[i], all + total, sizeof all - total);
        for (size_t k = 0; k < m; k++)
            IG_CHECK(all[total + k] != (char)0xEF, "no replacement character in a valid stream");
        total += m;
    }
    IG_CHECK(total == strlen(text) && memcmp(all, text, total) == 0, "GPT-2 stream decodes exactly");
    free(ids);
    vocab_close(&v);
}

/* ------------------------------------------------------------------------- */
/* Invalid UTF-8 and long inputs.                                              */

static void test_invalid_utf8_tokenizes_losslessly(void)
{
    const char *names[] = {"vocab-llama2-spm.gguf", "vocab-gpt2.gguf", "vocab-llama3.gguf"};
    ig_rng rng = {0x1234567ULL};
    for (int k = 0; k < 3; k++) {
        vocab v;
        if (!vocab_open_named(&v, names[k]))
            continue;
        bool spm = strcmp(ig_tokenizer_model(v.t), "llama") == 0;
        for (int round = 0; round < 300; round++) {
            unsigned char text[64];
            size_t len = 1 + ig_rng_next(&rng) % sizeof text;
            for (size_t i = 0; i < len; i++) {
                unsigned r = (unsigned)ig_rng_next(&rng);
                /* Mostly bytes >= 0x80 (broken sequences), some ASCII and spaces. */
                text[i] = r % 4 == 0 ? (unsigned char)" a'1\n"[r % 5] : (unsigned char)(0x80 + (r >> 8) % 128);
            }
            int64_t n;
            int32_t *ids = tokenize(v.t, (const char *)text, len, false, round % 2, &n);
            if (!ids)
                continue;
            /* The tokens' bytes put together are the input (SentencePiece adds the
             * prefix space that its decoder drops). */
            char back[512];
            size_t m = 0;
            for (int64_t i = 0; i < n && m < sizeof back - 64; i++)
                m += ig_token_bytes(v.t, ids[i], back + m, sizeof back - m);
            size_t skip = spm ? 1 : 0;
            IG_CHECK(m == len + skip && memcmp(back + skip, text, len) == 0,
                     "%s round %d: %zu bytes back from %zu", names[k], round, m, len);
            free(ids);
        }
        vocab_close(&v);
    }
}

static void test_100kb_inputs_tokenize_in_reasonable_time(void)
{
    size_t len = 100 * 1024;
    char *word = malloc(len), *prose = malloc(len);
    for (size_t i = 0; i < len; i++)
        word[i] = "abcab"[i % 5]; /* one 100 KB pre-token */
    char path[1024];
    snprintf(path, sizeof path, "%s/corpus/tinyshakespeare.txt", data_dir());
    size_t clen;
    char *corpus = read_file(path, &clen);
    IG_CHECK(corpus && clen >= len, "cannot read %s", path);
    if (corpus)
        memcpy(prose, corpus, len);
    free(corpus);
    const char *names[] = {"vocab-llama2-spm.gguf", "vocab-gpt2.gguf", "vocab-llama3.gguf"};
    /* Generous (it also runs under ASan and qemu): a quadratic merge would take
     * minutes on 100 KB, not seconds. */
    double limit = IG_SANITIZED ? 8000 : 3000;
    for (int k = 0; k < 3; k++) {
        vocab v;
        if (!vocab_open_named(&v, names[k]))
            continue;
        for (int which = 0; which < 2; which++) {
            const char *text = which ? prose : word;
            double t0 = cpu_ms();
            int64_t n;
            int32_t *ids = tokenize(v.t, text, len, false, false, &n);
            double ms = cpu_ms() - t0;
            printf("  %s: 100 KB of %s -> %lld tokens in %.1f ms\n", names[k],
                   which ? "Shakespeare" : "one word", (long long)n, ms);
            IG_CHECK(ms < limit, "%s took %.0f ms", names[k], ms);
            size_t dlen;
            char *back = ids ? detokenize(v.t, ids, n, &dlen) : NULL;
            IG_CHECK(back && dlen == len && memcmp(back, text, len) == 0, "100 KB round trip");
            free(back);
            free(ids);
        }
        vocab_close(&v);
    }
    free(word);
    free(prose);
}

/* ------------------------------------------------------------------------- */
/* Smaller properties.                                                         */

static void test_tokenize_reports_full_count_when_cap_is_small(void)
{
    vocab v;
    if (!vocab_open_named(&v, "vocab-gpt2.gguf"))
        return;
    const char *text = "The quick brown fox jumps over the lazy dog.";
    int64_t n;
    int32_t *all = tokenize(v.t, text, strlen(text), false, false, &n);
    int32_t few[3] = {-7, -7, -7};
    ig_err err = {0};
    int64_t got = ig_tokenize(v.t, text, strlen(text), false, false, few, 2, &err);
    IG_CHECK(got == n && n == 10, "full count %lld (of %lld)", (long long)got, (long long)n);
    IG_CHECK(few[0] == all[0] && few[1] == all[1] && few[2] == -7, "only cap ids written");
    IG_CHECK(ig_tokenize(v.t, NULL, 5, false, false, few, 2, &err) == -1 && err.code == IG_ERR_INVALID,
             "NULL text is refused");
    IG_CHECK(ig_tokenize(v.t, "", 0, false, false, few, 2, &err) == 0, "empty text: no tokens");
    IG_CHECK(!ig_tokenizer_adds_bos(v.t) && strcmp(ig_tokenizer_pre(v.t), "gpt-2") == 0 &&
             strcmp(ig_tokenizer_model(v.t), "gpt2") == 0, "GPT-2 metadata");
    char buf[8];
    IG_CHECK(ig_token_bytes(v.t, find_piece(v.t, "Ġthe"), buf, sizeof buf) == 4 &&
             memcmp(buf, " the", 4) == 0, "Ġthe decodes to ' the'");
    free(all);
    vocab_close(&v);
}

typedef struct {
    ig_pretok kind;
    const char *text;
    const char *split; /* pre-tokens joined by '|' */
} pretok_case;

static void test_pretokenizers_split_like_the_reference_regexes(void)
{
    static const pretok_case cases[] = {
        {IG_PRETOK_GPT2, "Hello world", "Hello| world"},
        {IG_PRETOK_GPT2, "I'm  here   now", "I|'m| | here|  | now"},
        {IG_PRETOK_GPT2, "x  \n y", "x|  \n| y"},
        {IG_PRETOK_GPT2, "ab  ", "ab|  "},
        {IG_PRETOK_GPT2, "'S 12345", "'|S| 12345"},
        {IG_PRETOK_GPT2, "\tfoo!!", "\t|foo|!!"},
        {IG_PRETOK_LLAMA3, "'S 12345", "'S| |123|45"},
        {IG_PRETOK_LLAMA3, "don'T stop", "don|'T| stop"},
        {IG_PRETOK_LLAMA3, "a\n\n  b", "a|\n\n| | b"},
        {IG_PRETOK_LLAMA3, "\tfoo", "\tfoo"},
        {IG_PRETOK_LLAMA3, "x = {\n\n}", "x| =| {\n\n|}"},
        {IG_PRETOK_LLAMA3, "  \n  x", "  \n| | x"},
        {IG_PRETOK_LLAMA3, "end   ", "end|   "},
        {IG_PRETOK_QWEN2, "abc 2024!", "abc| |2|0|2|4|!"},
        {IG_PRETOK_LLAMA3, "Привет мир", "Привет| мир"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const pretok_case *pc = &cases[c];
        uint32_t cps[64];
        size_t offs[65], n = 0, len = strlen(pc->text);
        for (size_t i = 0; i < len && n < 64;) {
            offs[n] = i;
            i += ig_utf8_decode((const unsigned char *)pc->text + i, len - i, &cps[n]);
            n++;
        }
        offs[n] = len;
        char got[256];
        size_t m = 0;
        for (size_t i = 0; i < n;) {
            size_t j = ig_pretok_next(pc->kind, cps, n, i);
            if (i)
                got[m++] = '|';
            memcpy(got + m, pc->text + offs[i], offs[j] - offs[i]);
            m += offs[j] - offs[i];
            i = j;
        }
        got[m] = 0;
        IG_CHECK(strcmp(got, pc->split) == 0, "case %zu: expected [%s] got [%s]", c, pc->split, got);
    }
    IG_CHECK(ig_unicode_flags(0x3000) == IG_UNICODE_SPACE, "ideographic space is \\s");
    IG_CHECK(ig_unicode_flags(0xBD) == IG_UNICODE_NUMBER, "½ is \\p{N}");
    IG_CHECK(ig_unicode_flags(0x4E2D) == IG_UNICODE_LETTER, "中 is \\p{L}");
    IG_CHECK(ig_unicode_flags(0x1F600) == 0, "an emoji is neither");
    IG_CHECK(ig_unicode_flags(IG_UTF8_INVALID) == 0, "an invalid byte is neither");
}

static void test_utf8_decoder_refuses_overlongs_and_surrogates(void)
{
    uint32_t cp;
    IG_CHECK(ig_utf8_decode((const unsigned char *)"\xC0\xAF", 2, &cp) == 1 && cp == IG_UTF8_INVALID, "overlong");
    IG_CHECK(ig_utf8_decode((const unsigned char *)"\xED\xA0\x80", 3, &cp) == 1 && cp == IG_UTF8_INVALID, "surrogate");
    IG_CHECK(ig_utf8_decode((const unsigned char *)"\xF4\x90\x80\x80", 4, &cp) == 1 && cp == IG_UTF8_INVALID, "> U+10FFFF");
    IG_CHECK(ig_utf8_decode((const unsigned char *)"\xE2\x82", 2, &cp) == 1 && cp == IG_UTF8_INVALID, "truncated");
    IG_CHECK(ig_utf8_decode((const unsigned char *)"\xE2\x82\xAC", 3, &cp) == 3 && cp == 0x20AC, "euro sign");
    IG_CHECK(ig_utf8_decode((const unsigned char *)"\xF0\x9F\x98\x81", 4, &cp) == 4 && cp == 0x1F601, "emoji");
}

/* ------------------------------------------------------------------------- */
/* Malformed metadata: written with the project's GGUF writer, refused by name.  */

static char tmp_dir[64];

static ig_tokenizer *load_written(ig_gguf_writer *w, const char *name, ig_err *err, ig_gguf **g)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.gguf", tmp_dir, name);
    ig_err werr = {0};
    IG_CHECK(ig_gguf_writer_write(w, path, &werr) == IG_OK, "write %s: %s", path, werr.msg);
    ig_gguf_writer_free(w);
    *g = ig_gguf_open(path, &werr);
    IG_CHECK(*g != NULL, "open %s: %s", path, werr.msg);
    unlink(path);
    return *g ? ig_tokenizer_new(*g, err) : NULL;
}

static ig_gguf_writer *small_vocab(const char *model, const char *pre)
{
    static const char *const tokens[] = {"a", "b", "ab", "<|x|>"};
    static const int32_t types[] = {1, 1, 1, 3};
    static const char *const merges[] = {"a b"};
    ig_gguf_writer *w = ig_gguf_writer_new();
    ig_gguf_writer_set_str(w, "general.architecture", "llama");
    if (model)
        ig_gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    if (pre)
        ig_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    ig_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, 4);
    ig_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, 4);
    ig_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    return w;
}

static void test_bad_tokenizer_metadata_is_refused_by_name(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ig_tok_XXXXXX");
    IG_CHECK(mkdtemp(tmp_dir) != NULL, "mkdtemp");
    ig_err err = {0};
    ig_gguf *g;
    ig_tokenizer *t = load_written(small_vocab("gpt2", "qwen2"), "ok", &err, &g);
    IG_CHECK(t != NULL, "a small gpt2 vocabulary loads: %s", err.msg);
    if (t) {
        int32_t ids[4];
        int64_t n = ig_tokenize(t, "ab<|x|>", 7, false, true, ids, 4, &err);
        IG_CHECK(n == 2 && ids[0] == 2 && ids[1] == 3, "merge and special on a small vocabulary");
        n = ig_tokenize(t, "abc", 3, false, false, ids, 4, &err);
        IG_CHECK(n == 1 && ids[0] == 2, "a byte without a token is dropped when there is no <unk>");
    }
    ig_tokenizer_free(t);
    ig_gguf_free(g);

    struct {
        const char *model, *pre, *expect;
        ig_code code;
    } bad[] = {
        {NULL, NULL, "tokenizer.ggml.model", IG_ERR_FORMAT},
        {"bert", NULL, "\"bert\"", IG_ERR_UNSUPPORTED},
        {"gpt2", "tekken", "\"tekken\"", IG_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ig_err_clear(&err);
        t = load_written(small_vocab(bad[i].model, bad[i].pre), "bad", &err, &g);
        IG_CHECK(t == NULL && err.code == bad[i].code && strstr(err.msg, bad[i].expect),
                 "case %zu: %s", i, err.msg);
        ig_tokenizer_free(t);
        ig_gguf_free(g);
    }

    /* Scores that do not match the vocabulary in length. */
    ig_gguf_writer *w = small_vocab("llama", NULL);
    float scores[3] = {0, 0, 0};
    ig_gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, 3);
    ig_err_clear(&err);
    t = load_written(w, "scores", &err, &g);
    IG_CHECK(t == NULL && strstr(err.msg, "tokenizer.ggml.scores"), "scores: %s", err.msg);
    ig_tokenizer_free(t);
    ig_gguf_free(g);

    /* A BOS id past the vocabulary. */
    w = small_vocab("llama", NULL);
    ig_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 99);
    ig_err_clear(&err);
    t = load_written(w, "bos", &err, &g);
    IG_CHECK(t == NULL && strstr(err.msg, "bos_token_id"), "bos: %s", err.msg);
    ig_tokenizer_free(t);
    ig_gguf_free(g);
    rmdir(tmp_dir);
}

/* ------------------------------------------------------------------------- */
/* The command line.                                                           */

static int cli_usage(const char *bin)
{
    char vocab_path[1024];
    snprintf(vocab_path, sizeof vocab_path, "%s/tokenizers/vocab-llama3.gguf", data_dir());
    char gpt2_path[1024];
    snprintf(gpt2_path, sizeof gpt2_path, "%s/tokenizers/vocab-gpt2.gguf", data_dir());
    /* Without --special the text is tokenized as text: as the library does it. */
    char plain[256] = "?";
    vocab v;
    if (vocab_open(&v, vocab_path)) {
        int64_t n;
        int32_t *ids = tokenize(v.t, "<|begin_of_text|>", 17, false, false, &n);
        IG_CHECK(ids && n > 1, "plain special text is several tokens");
        if (ids)
            ids_to_string(ids, n, plain, sizeof plain);
        free(ids);
        vocab_close(&v);
    }
    struct {
        const char *args[6];
        int status; /* expected: 0 or non-zero (-1) */
        const char *in, *out;
    } runs[] = {
        {{"tokenize", "--help", NULL}, 0, "", "usage: idlegrid tokenize"},
        {{"tokenize", "--bogus", NULL}, -1, "", NULL},
        {{"tokenize", NULL}, -1, "", NULL},
        {{"tokenize", "-m", "/nonexistent/model.gguf", NULL}, -1, "", NULL},
        {{"tokenize", "-m", vocab_path, NULL}, 0, "<|begin_of_text|>", plain},
        {{"tokenize", "-m", vocab_path, "--special", NULL}, 0, "<|begin_of_text|>", "128000"},
        {{"tokenize", "-m", vocab_path, "--bos", NULL}, 0, "Hello", "128000 9906"},
        {{"tokenize", "-m", vocab_path, NULL}, 0, "", ""},
        /* GPT-2 does not add BOS (tokenizer.ggml.add_bos_token false), --bos or not. */
        {{"tokenize", "-m", gpt2_path, "--bos", NULL}, 0, "Hello", "15496"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        int status;
        char *err_text = NULL;
        char *out = run_cli(bin, runs[i].args, runs[i].in, strlen(runs[i].in), &status, &err_text);
        if (runs[i].status == 0) {
            IG_CHECK(status == 0, "run %zu exited %d: %s", i, status, err_text ? err_text : "");
            IG_CHECK(out && strncmp(out, runs[i].out, strlen(runs[i].out)) == 0 &&
                         (runs[i].args[1][1] == '-' || out[strlen(runs[i].out)] == '\n'),
                     "run %zu printed [%s], expected [%s]", i, out ? out : "", runs[i].out);
        } else {
            IG_CHECK(status != 0, "run %zu exited 0", i);
            /* One line that says why. */
            char *nl = err_text ? strchr(err_text, '\n') : NULL;
            IG_CHECK(err_text && nl && nl[1] == 0 && strncmp(err_text, "idlegrid: ", 10) == 0,
                     "run %zu: stderr [%s]", i, err_text ? err_text : "");
        }
        free(out);
        free(err_text);
    }
    return ig_check_test_failures ? 1 : 0;
}

/* ------------------------------------------------------------------------- */
/* Load time.                                                                  */

static int load_time(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/vocab-llama3.gguf", data_dir());
    ig_err err = {0};
    ig_gguf *g = ig_gguf_open(path, &err);
    IG_CHECK(g != NULL, "%s", err.msg);
    if (!g)
        return 1;
    double best = 1e9, best_wall = 1e9;
    for (int i = 0; i < 3; i++) {
        double t0 = cpu_ms(), w0 = now_ms();
        ig_tokenizer *t = ig_tokenizer_new(g, &err);
        double ms = cpu_ms() - t0, wall = now_ms() - w0;
        if (wall < best_wall)
            best_wall = wall;
        IG_CHECK(t != NULL, "%s", err.msg);
        ig_tokenizer_free(t);
        if (ms < best)
            best = ms;
    }
    ig_gguf_free(g);
    printf("Llama 3 tokenizer (128256 tokens, 280147 merges) built in %.1f ms of CPU, %.1f ms wall "
           "(best of 3)\n", best, best_wall);
    return ig_check_test_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "conformance") == 0)
        return conformance(argv[2], argc >= 4 ? argv[3] : NULL);
    if (argc >= 3 && strcmp(argv[1], "cli-usage") == 0)
        return cli_usage(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "load-time") == 0)
        return load_time();
    IG_RUN(test_pretokenizers_split_like_the_reference_regexes);
    IG_RUN(test_utf8_decoder_refuses_overlongs_and_surrogates);
    IG_RUN(test_edge_model_prompt_ids_and_continuations_match_expected_json);
    IG_RUN(test_cloud_model_prompt_ids_and_continuations_match_expected_json);
    IG_RUN(test_special_token_text_stays_text_unless_parse_special);
    IG_RUN(test_detok_holds_a_character_split_over_byte_tokens);
    IG_RUN(test_invalid_utf8_tokenizes_losslessly);
    IG_RUN(test_100kb_inputs_tokenize_in_reasonable_time);
    IG_RUN(test_tokenize_reports_full_count_when_cap_is_small);
    IG_RUN(test_bad_tokenizer_metadata_is_refused_by_name);
    return ig_check_exit();
}
