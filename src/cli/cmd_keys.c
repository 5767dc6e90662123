/*
 * cmd_keys.c — credentials in the coordinator's store: `idlegrid keys
 * create|list|revoke` for buyer API keys (a key is shown once, at creation; only a
 * salted hash is kept) and `idlegrid nodes token` for one-time node enrolment tokens.
 */
#include "cli.h"
#include "coord.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static ig_coord_store *open_store(const char *data)
{
    ig_err err;
    ig_err_clear(&err);
    ig_coord_store *s = ig_coord_store_open(data, &err);
    if (!s)
        ig_cli_fail("%s", err.msg);
    return s;
}

static void print_key(void *user, const ig_coord_key_info *k)
{
    int *n = user;
    char when[32] = "-";
    time_t t = (time_t)k->created_at;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (*n == 0)
        printf("%-14s %-20s %-21s %-8s %-10s %s\n", "ID", "NAME", "CREATED", "STATE", "RATE/MIN",
               "CONCURRENT");
    printf("%-14s %-20s %-21s %-8s %-10d %d\n", k->id, k->name[0] ? k->name : "-", when,
           k->revoked_at ? "revoked" : "active", k->rate_per_min, k->max_concurrent);
    (*n)++;
}

int ig_cmd_keys(int argc, char **argv)
{
    const char *data = "./idlegrid-data";
    const char *name = "";
    int rate = 600, concurrency = 64;
    const ig_flag flags[] = {
        {"data", 'd', IG_FLAG_STRING, &data, "DIR", "state directory (default ./idlegrid-data)"},
        {"name", 'n', IG_FLAG_STRING, &name, "NAME", "create: a label for the key"},
        {"rate", 0, IG_FLAG_INT, &rate, "N", "create: requests per minute (default 600, 0 = unlimited)"},
        {"concurrency", 0, IG_FLAG_INT, &concurrency, "N", "create: requests at once (default 64, 0 = unlimited)"},
    };
    const ig_cli_spec spec = {
        "idlegrid keys create [--name NAME] [--rate N] [--concurrency N] | list | revoke ID  [--data DIR]",
        "Manages buyer API keys. 'create' prints the new key once on stdout (only its salted "
        "hash is stored); 'list' shows ids, names and limits; 'revoke' disables a key by id.",
        flags, (int)(sizeof flags / sizeof flags[0]), 1, 2};
    bool done;
    const char **pos;
    int npos;
    int rc = ig_cli_parse(&spec, argc, argv, &pos, &npos, &done);
    if (rc || done)
        return rc;
    const char *action = pos[0];
    if (strcmp(action, "create") && strcmp(action, "list") && strcmp(action, "revoke")) {
        ig_cli_fail("keys: unknown action '%s' (create, list, revoke)", action);
        return 2;
    }
    if ((strcmp(action, "revoke") == 0) != (npos == 2)) {
        ig_cli_fail(strcmp(action, "revoke") == 0 ? "keys revoke: which key? (idlegrid keys revoke ID)"
                                                  : "keys %s: unexpected argument '%s'", action, npos > 1 ? pos[1] : "");
        return 2;
    }
    if (rate < 0 || concurrency < 0) {
        ig_cli_fail("keys: --rate and --concurrency must not be negative");
        return 2;
    }
    ig_coord_store *s = open_store(data);
    if (!s)
        return 1;
    ig_err err;
    ig_err_clear(&err);
    int status = 0;
    if (strcmp(action, "create") == 0) {
        char key[IG_COORD_KEY_MAX];
        ig_coord_key_info info;
        if (ig_coord_key_create(s, name, rate, concurrency, NULL, key, &info, &err) != IG_OK) {
            ig_cli_fail("%s", err.msg);
            status = 1;
        } else {
            printf("%s\n", key);
            fprintf(stderr, "idlegrid: created key %s (%d requests/min, %d at once); it is shown only now\n",
                    info.id, rate, concurrency);
        }
    } else if (strcmp(action, "list") == 0) {
        int n = 0;
        if (ig_coord_key_list(s, print_key, &n, &err) != IG_OK) {
            ig_cli_fail("%s", err.msg);
            status = 1;
        } else if (n == 0) {
            printf("no keys (idlegrid keys create)\n");
        }
    } else {
        if (ig_coord_key_revoke(s, pos[1], &err) != IG_OK) {
            ig_cli_fail("%s", err.msg);
            status = 1;
        } else {
            printf("revoked %s\n", pos[1]);
        }
    }
    ig_coord_store_close(s);
    return status;
}

int ig_cmd_nodes(int argc, char **argv)
{
    const char *data = "./idlegrid-data";
    int count = 1;
    const ig_flag flags[] = {
        {"data", 'd', IG_FLAG_STRING, &data, "DIR", "state directory (default ./idlegrid-data)"},
        {"count", 'n', IG_FLAG_INT, &count, "N", "how many tokens, one a line (default 1; at most 100000)"},
    };
    const ig_cli_spec spec = {
        "idlegrid nodes token [--count N] [--data DIR]",
        "Prints a new one-time enrolment token. A node presents it on its first connection "
        "(idlegrid node --enroll-token TOKEN); its key is then enrolled and the token spent.",
        flags, 2, 1, 1};
    bool done;
    const char **pos;
    int npos;
    int rc = ig_cli_parse(&spec, argc, argv, &pos, &npos, &done);
    if (rc || done)
        return rc;
    if (strcmp(pos[0], "token") != 0) {
        ig_cli_fail("nodes: unknown action '%s' (token)", pos[0]);
        return 2;
    }
    if (count < 1 || count > 100000) {
        ig_cli_fail("nodes token: --count must be 1..100000");
        return 2;
    }
    ig_coord_store *s = open_store(data);
    if (!s)
        return 1;
    ig_err err;
    ig_err_clear(&err);
    char token[IG_COORD_TOKEN_MAX];
    int status = 0;
    for (int i = 0; i < count && status == 0; i++) {
        if (ig_coord_enroll_token_create(s, token, &err) != IG_OK) {
            ig_cli_fail("%s", err.msg);
            status = 1;
        } else {
            printf("%s\n", token);
        }
    }
    ig_coord_store_close(s);
    return status;
}
