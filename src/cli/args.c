/*
 * args.c — the flag parser behind every subcommand (see cli.h). Accepts --name VALUE,
 * --name=VALUE and -x VALUE; "--" ends the flags.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ig_cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("idlegrid: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void print_help(const ig_cli_spec *spec)
{
    printf("usage: %s\n\n%s\n", spec->usage, spec->summary);
    if (spec->n_flags)
        printf("\noptions:\n");
    for (int i = 0; i < spec->n_flags; i++) {
        const ig_flag *f = &spec->flags[i];
        char left[64];
        int n = 0;
        if (f->short_name)
            n = snprintf(left, sizeof left, "-%c, --%s", f->short_name, f->name);
        else
            n = snprintf(left, sizeof left, "    --%s", f->name);
        if (f->kind != IG_FLAG_BOOL && n > 0 && (size_t)n < sizeof left)
            snprintf(left + n, sizeof left - (size_t)n, " %s", f->metavar ? f->metavar : "VALUE");
        printf("  %-28s %s\n", left, f->help ? f->help : "");
    }
    printf("  %-28s %s\n", "-h, --help", "show this help and exit");
}

static int set_value(const ig_flag *f, const char *shown, const char *value)
{
    char *end = NULL;
    errno = 0;
    switch (f->kind) {
    case IG_FLAG_STRING:
        *(const char **)f->dest = value;
        return 0;
    case IG_FLAG_MULTI: {
        ig_cli_multi *m = f->dest;
        if (m->n >= IG_CLI_MULTI_MAX) {
            ig_cli_fail("%s: at most %d values", shown, IG_CLI_MULTI_MAX);
            return 2;
        }
        m->values[m->n++] = value;
        return 0;
    }
    case IG_FLAG_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < -2147483647L || v > 2147483647L) {
            ig_cli_fail("%s: '%s' is not an integer", shown, value);
            return 2;
        }
        *(int *)f->dest = (int)v;
        return 0;
    }
    case IG_FLAG_I64: {
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end) {
            ig_cli_fail("%s: '%s' is not an integer", shown, value);
            return 2;
        }
        *(int64_t *)f->dest = v;
        return 0;
    }
    case IG_FLAG_U64: {
        if (value[0] == '-') {
            ig_cli_fail("%s: '%s' is not a non-negative integer", shown, value);
            return 2;
        }
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end) {
            ig_cli_fail("%s: '%s' is not a non-negative integer", shown, value);
            return 2;
        }
        *(uint64_t *)f->dest = v;
        return 0;
    }
    case IG_FLAG_FLOAT: {
        float v = strtof(value, &end);
        if (errno || end == value || *end || v != v) {
            ig_cli_fail("%s: '%s' is not a number", shown, value);
            return 2;
        }
        *(float *)f->dest = v;
        return 0;
    }
    case IG_FLAG_BOOL:
        *(bool *)f->dest = true;
        return 0;
    }
    return 2;
}

int ig_cli_parse(const ig_cli_spec *spec, int argc, char **argv, const char ***positional,
                 int *n_positional, bool *done)
{
    static const char *pos[256];
    int npos = 0;
    bool flags_done = false;
    *done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (flags_done || a[0] != '-' || a[1] == '\0') {
            if (npos >= (int)(sizeof pos / sizeof pos[0])) {
                ig_cli_fail("too many arguments");
                return 2;
            }
            pos[npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            flags_done = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_help(spec);
            *done = true;
            return 0;
        }
        const ig_flag *f = NULL;
        const char *inline_value = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            for (int k = 0; k < spec->n_flags; k++)
                if (strlen(spec->flags[k].name) == len && strncmp(spec->flags[k].name, name, len) == 0)
                    f = &spec->flags[k];
            if (eq)
                inline_value = eq + 1;
        } else if (a[2] == '\0') {
            for (int k = 0; k < spec->n_flags; k++)
                if (spec->flags[k].short_name == a[1])
                    f = &spec->flags[k];
        }
        if (!f) {
            ig_cli_fail("unknown option '%s' (see '%s --help')", a, argv[0]);
            return 2;
        }
        if (f->kind == IG_FLAG_BOOL) {
            if (inline_value) {
                ig_cli_fail("option '--%s' takes no value", f->name);
                return 2;
            }
            *(bool *)f->dest = true;
            continue;
        }
        const char *value = inline_value;
        if (!value) {
            if (i + 1 >= argc) {
                ig_cli_fail("option '%s' needs a value (%s)", a, f->metavar ? f->metavar : "VALUE");
                return 2;
            }
            value = argv[++i];
        }
        int rc = set_value(f, a, value);
        if (rc)
            return rc;
    }
    if (npos < spec->min_positional) {
        ig_cli_fail("missing argument (usage: %s)", spec->usage);
        return 2;
    }
    if (spec->max_positional >= 0 && npos > spec->max_positional) {
        ig_cli_fail("unexpected argument '%s' (usage: %s)", pos[spec->max_positional], spec->usage);
        return 2;
    }
    if (positional)
        *positional = pos;
    if (n_positional)
        *n_positional = npos;
    return 0;
}
