/*
 * cli.h — the command line's own pieces: the subcommand table and a small flag
 * parser every subcommand uses, so that `--help`, unknown flags and missing values
 * behave the same everywhere (a one-line reason on stderr, exit status 2).
 *
 * The command line is the top layer: it may include every layer's header, and it is
 * the only place that calls exit().
 */
#ifndef IG_CLI_H
#define IG_CLI_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    IG_FLAG_STRING, /* const char ** */
    IG_FLAG_INT,    /* int * */
    IG_FLAG_I64,    /* int64_t * */
    IG_FLAG_U64,    /* uint64_t * */
    IG_FLAG_FLOAT,  /* float * */
    IG_FLAG_BOOL,   /* bool *: present = true, takes no value */
    IG_FLAG_MULTI,  /* ig_cli_multi *: may repeat, values collected */
} ig_flag_kind;

#define IG_CLI_MULTI_MAX 16
typedef struct {
    const char *values[IG_CLI_MULTI_MAX];
    int n;
} ig_cli_multi;

typedef struct {
    const char *name;    /* long name without dashes: "temp" for --temp */
    char short_name;     /* 'm' for -m, or 0 */
    ig_flag_kind kind;
    void *dest;
    const char *metavar; /* "N", "FILE" ... */
    const char *help;
} ig_flag;

typedef struct {
    const char *usage;   /* "idlegrid generate -m MODEL -p PROMPT [options]" */
    const char *summary; /* one paragraph */
    const ig_flag *flags;
    int n_flags;
    int min_positional;
    int max_positional;  /* -1: unbounded */
} ig_cli_spec;

/* Parses argv[1..argc) (argv[0] is the subcommand name). Positional arguments are
 * returned in order through positional (pointing into argv). Returns 0 to go on,
 * or an exit status: 0 after --help was printed (*done = true), 2 on a usage error
 * (message already printed). */
int ig_cli_parse(const ig_cli_spec *spec, int argc, char **argv, const char ***positional,
                 int *n_positional, bool *done);

/* Prints "idlegrid: <msg>" to stderr. */
void ig_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Subcommands: each returns the process exit status. */
int ig_cmd_generate(int argc, char **argv);
int ig_cmd_tokenize(int argc, char **argv);
int ig_cmd_score(int argc, char **argv);
int ig_cmd_model(int argc, char **argv);
int ig_cmd_bench(int argc, char **argv);
int ig_cmd_serve(int argc, char **argv);
int ig_cmd_node(int argc, char **argv);
int ig_cmd_up(int argc, char **argv);
int ig_cmd_keys(int argc, char **argv);
int ig_cmd_nodes(int argc, char **argv);

#endif /* IG_CLI_H */
