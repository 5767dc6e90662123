/*
 * test_coord_store.c — the SQLite store: keys are shown once and stored hashed
 * (the secret is nowhere in the file), verify/revoke, one-time enrolment tokens, job
 * records survive reopening.
 */
#include "coord.h"
#include "ig_check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/ig-store-XXXXXX";

static void count_key(void *user, const ig_coord_key_info *k)
{
    (void)k;
    (*(int *)user)++;
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(buf + i, needle, k) == 0)
            return true;
    return false;
}

static void test_keys_are_hashed_verified_and_revocable(void)
{
    ig_err err;
    ig_coord_store *s = ig_coord_store_open(dir, &err);
    IG_CHECK(s != NULL, "open: %s", err.msg);
    if (!s)
        return;
    char key[IG_COORD_KEY_MAX];
    ig_coord_key_info info, got;
    IG_CHECK(ig_coord_key_create(s, "alice", 10, 2, NULL, key, &info, &err) == IG_OK, "create: %s", err.msg);
    IG_CHECK(strncmp(key, "ig-", 3) == 0 && strlen(key) == 3 + 12 + 1 + 48, "key shape %s", key);
    IG_CHECK(ig_coord_key_verify(s, key, &got, &err) == IG_OK, "verify: %s", err.msg);
    IG_CHECK(strcmp(got.id, info.id) == 0 && got.rate_per_min == 10 && got.max_concurrent == 2, "info");
    char wrong[IG_COORD_KEY_MAX];
    memcpy(wrong, key, sizeof wrong);
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == '0' ? '1' : '0';
    IG_CHECK(ig_coord_key_verify(s, wrong, &got, &err) == IG_ERR_AUTH, "wrong secret refused");
    IG_CHECK(ig_coord_key_verify(s, "garbage", &got, &err) == IG_ERR_AUTH, "garbage refused");
    char fixed[IG_COORD_KEY_MAX];
    IG_CHECK(ig_coord_key_create(s, "demo", 0, 0, "my-demo-key-123456", fixed, NULL, &err) == IG_OK, "fixed key");
    IG_CHECK(ig_coord_key_verify(s, "my-demo-key-123456", &got, &err) == IG_OK, "fixed key verifies");
    int n = 0;
    ig_coord_key_list(s, count_key, &n, &err);
    IG_CHECK(n == 2, "two keys listed, got %d", n);
    IG_CHECK(ig_coord_key_revoke(s, info.id, &err) == IG_OK, "revoke: %s", err.msg);
    IG_CHECK(ig_coord_key_verify(s, key, &got, &err) == IG_ERR_AUTH && strstr(err.msg, "revoked"), "revoked key refused");
    IG_CHECK(ig_coord_key_revoke(s, info.id, &err) == IG_ERR_NOT_FOUND, "second revoke: not found");
    ig_coord_store_close(s);
    char path[256];
    snprintf(path, sizeof path, "%s/coordinator.db", dir);
    IG_CHECK(!file_contains(path, key + 16), "the secret is not in the database file");
}

static void test_enrolment_tokens_are_one_time(void)
{
    ig_err err;
    ig_coord_store *s = ig_coord_store_open(dir, &err);
    if (!s)
        return;
    char tok[IG_COORD_TOKEN_MAX];
    IG_CHECK(ig_coord_enroll_token_create(s, tok, &err) == IG_OK, "token");
    IG_CHECK(!ig_coord_node_enrolled(s, "aa"), "not enrolled yet");
    IG_CHECK(ig_coord_enroll_token_consume(s, tok, "aa", "n1", &err) == IG_OK, "consume: %s", err.msg);
    IG_CHECK(ig_coord_node_enrolled(s, "aa"), "enrolled");
    IG_CHECK(ig_coord_enroll_token_consume(s, tok, "bb", "n2", &err) == IG_ERR_AUTH, "reuse refused");
    IG_CHECK(ig_coord_enroll_token_consume(s, "igenroll-nope", "bb", "n2", &err) == IG_ERR_AUTH, "unknown refused");
    IG_CHECK(!ig_coord_node_enrolled(s, "bb"), "bb not enrolled");
    ig_coord_store_close(s);
}

static void test_job_records_persist(void)
{
    ig_err err;
    ig_coord_store *s = ig_coord_store_open(dir, &err);
    if (!s)
        return;
    ig_coord_job_record r = {.job_id = "cmpl-1", .key_id = "k", .model = "edge", .kind = "completion",
                             .nodes_json = "[\"n-a\",\"n-b\"]", .failovers = 1, .prompt_tokens = 3,
                             .completion_tokens = 9, .accepted_ms = 1, .finished_ms = 2, .outcome = "ok",
                             .finish_reason = "length"};
    IG_CHECK(ig_coord_job_record_put(s, &r, &err) == IG_OK, "put: %s", err.msg);
    ig_coord_store_close(s);
    s = ig_coord_store_open(dir, &err);
    IG_CHECK(ig_coord_job_count(s, "ok") == 1 && ig_coord_job_count(s, "error") == 0, "persisted");
    ig_coord_store_close(s);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    IG_RUN(test_keys_are_hashed_verified_and_revocable);
    IG_RUN(test_enrolment_tokens_are_one_time);
    IG_RUN(test_job_records_persist);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return ig_check_exit();
}
