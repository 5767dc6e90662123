/*
 * cmd_tokenize.c — `idlegrid tokenize -m MODEL [--special] [--bos]`: reads text from
 * stdin and prints its token ids, space-separated, on one line. Only the GGUF reader
 * and the tokenizer are involved, so vocabulary-only GGUF files work too.
 */
#include "cli.h"
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENIZE_MAX_INPUT ((size_t)64 << 20)

/* Reads all of stdin (at most TOKENIZE_MAX_INPUT bytes). Returns NULL on failure. */
static char *read_stdin(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        ig_cli_fail("tokenize: out of memory");
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= TOKENIZE_MAX_INPUT) {
                ig_cli_fail("tokenize: input over %zu MiB", TOKENIZE_MAX_INPUT >> 20);
                free(buf);
                return NULL;
            }
            char *p = realloc(buf, cap * 2);
            if (!p) {
                ig_cli_fail("tokenize: out of memory");
                free(buf);
                return NULL;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin)) {
                ig_cli_fail("tokenize: reading stdin failed");
                free(buf);
                return NULL;
            }
            break;
        }
    }
    *len = n;
    return buf;
}

int ig_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL;
    bool special = false, bos = false;
    const ig_flag flags[] = {
        {"model", 'm', IG_FLAG_STRING, &model, "FILE", "GGUF file (a model or a vocabulary only)"},
        {"special", 0, IG_FLAG_BOOL, &special, NULL,
         "recognise special tokens such as <|begin_of_text|> in the text"},
        {"bos", 0, IG_FLAG_BOOL, &bos, NULL, "start with BOS when the model adds one"},
    };
    const ig_cli_spec spec = {
        .usage = "idlegrid tokenize -m MODEL [--special] [--bos]",
        .summary = "Reads text from stdin and prints its token ids, space-separated, on one\n"
                   "line (without BOS unless --bos). Special-token text stays plain text\n"
                   "unless --special.",
        .flags = flags,
        .n_flags = (int)(sizeof flags / sizeof flags[0]),
        .min_positional = 0,
        .max_positional = 0,
    };
    bool done;
    int rc = ig_cli_parse(&spec, argc, argv, NULL, NULL, &done);
    if (rc || done)
        return rc;
    if (!model) {
        ig_cli_fail("tokenize: -m MODEL is required (see 'idlegrid tokenize --help')");
        return 2;
    }

    ig_err err = {0};
    ig_gguf *g = ig_gguf_open(model, &err);
    if (!g) {
        ig_cli_fail("%s", err.msg);
        return 1;
    }
    ig_tokenizer *t = ig_tokenizer_new(g, &err);
    if (!t) {
        ig_cli_fail("%s: %s", model, err.msg);
        ig_gguf_free(g);
        return 1;
    }
    size_t len = 0;
    char *text = read_stdin(&len);
    int status = 1;
    int32_t *ids = NULL;
    if (!text)
        goto out;
    /* At most one token per byte, plus the space prefix and BOS. */
    int64_t cap = (int64_t)len + 2;
    ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) {
        ig_cli_fail("tokenize: out of memory for %lld tokens", (long long)cap);
        goto out;
    }
    bool add_bos = bos && ig_tokenizer_adds_bos(t);
    int64_t n = ig_tokenize(t, text, len, add_bos, special, ids, cap, &err);
    if (n > cap) {
        ig_cli_fail("tokenize: %lld tokens from %zu bytes", (long long)n, len);
        goto out;
    }
    if (n < 0) {
        ig_cli_fail("tokenize: %s", err.msg);
        goto out;
    }
    for (int64_t i = 0; i < n; i++)
        printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    status = fflush(stdout) == 0 ? 0 : 1;
    if (status)
        ig_cli_fail("tokenize: writing stdout failed");
out:
    free(ids);
    free(text);
    ig_tokenizer_free(t);
    ig_gguf_free(g);
    return status;
}
