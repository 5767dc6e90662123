/*
 * store.c — the coordinator's durable state in one SQLite file (WAL): buyer API keys,
 * node enrolment tokens, enrolled nodes and job records.
 *
 * Secrets are never stored: a key is "ig-<id>-<secret>" and the row keeps the id, a
 * random salt and BLAKE2b(secret, key = salt); an enrolment token keeps only its hash.
 * Every statement is prepared with bound parameters; errors come back as IG_ERR_STORE
 * with SQLite's message.
 */
#include "coord.h"

#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SALT_BYTES 16
#define HASH_BYTES 32
#define SECRET_HEX 48

struct ig_coord_store {
    sqlite3 *db;
};

static const char *SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA busy_timeout=5000;"
    "CREATE TABLE IF NOT EXISTS api_keys ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, salt BLOB NOT NULL, hash BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0,"
    "  rate_per_min INTEGER NOT NULL, max_concurrent INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS enroll_tokens ("
    "  hash BLOB PRIMARY KEY, created_at INTEGER NOT NULL, used_at INTEGER NOT NULL DEFAULT 0,"
    "  node_key TEXT);"
    "CREATE TABLE IF NOT EXISTS nodes ("
    "  node_key TEXT PRIMARY KEY, name TEXT, enrolled_at INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs ("
    "  job_id TEXT PRIMARY KEY, key_id TEXT, model TEXT, kind TEXT, stream INTEGER,"
    "  nodes TEXT, failovers INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER,"
    "  accepted_ms INTEGER, first_token_ms INTEGER, finished_ms INTEGER, outcome TEXT,"
    "  finish_reason TEXT, error TEXT);"
    "CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs(key_id, accepted_ms);";

static ig_code db_fail(ig_coord_store *s, ig_err *err, const char *what)
{
    return ig_err_set(err, IG_ERR_STORE, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

ig_coord_store *ig_coord_store_open(const char *data_dir, ig_err *err)
{
    if (!data_dir || !*data_dir) {
        ig_err_set(err, IG_ERR_INVALID, "store: no data directory given");
        return NULL;
    }
    if (sodium_init() < 0) {
        ig_err_set(err, IG_ERR_INTERNAL, "store: libsodium failed to initialise");
        return NULL;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        ig_err_set(err, IG_ERR_IO, "store: cannot create directory %s: %s", data_dir, strerror(errno));
        return NULL;
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/coordinator.db", data_dir) >= sizeof path) {
        ig_err_set(err, IG_ERR_INVALID, "store: data directory path too long");
        return NULL;
    }
    ig_coord_store *s = calloc(1, sizeof *s);
    if (!s) {
        ig_err_set(err, IG_ERR_NOMEM, "store: out of memory");
        return NULL;
    }
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        ig_err_set(err, IG_ERR_STORE, "store: cannot open %s: %s", path,
                   s->db ? sqlite3_errmsg(s->db) : "out of memory");
        ig_coord_store_close(s);
        return NULL;
    }
    char *msg = NULL;
    if (sqlite3_exec(s->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        ig_err_set(err, IG_ERR_STORE, "store: schema in %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        ig_coord_store_close(s);
        return NULL;
    }
    return s;
}

void ig_coord_store_close(ig_coord_store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

/* ---- API keys --------------------------------------------------------------- */

static void hex(const unsigned char *b, size_t n, char *out)
{
    sodium_bin2hex(out, n * 2 + 1, b, n);
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* Splits "ig-<id>-<secret>" into its id and secret. A custom key (idlegrid up --key)
 * that lacks the shape gets a derived id: the first hex of its hash. */
static bool split_key(const char *key, char id[IG_COORD_KEY_ID_LEN + 1], const char **secret)
{
    size_t len = strlen(key);
    if (len == 3 + IG_COORD_KEY_ID_LEN + 1 + SECRET_HEX && strncmp(key, "ig-", 3) == 0 &&
        key[3 + IG_COORD_KEY_ID_LEN] == '-' && is_hex(key + 3, IG_COORD_KEY_ID_LEN) &&
        is_hex(key + 4 + IG_COORD_KEY_ID_LEN, SECRET_HEX)) {
        memcpy(id, key + 3, IG_COORD_KEY_ID_LEN);
        id[IG_COORD_KEY_ID_LEN] = '\0';
        *secret = key + 4 + IG_COORD_KEY_ID_LEN;
        return true;
    }
    if (len < 16 || len >= IG_COORD_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (key[i] <= ' ' || key[i] > '~')
            return false;
    unsigned char h[8];
    crypto_generichash(h, sizeof h, (const unsigned char *)key, len, NULL, 0);
    char full[17];
    hex(h, sizeof h, full);
    memcpy(id, full, IG_COORD_KEY_ID_LEN);
    id[IG_COORD_KEY_ID_LEN] = '\0';
    *secret = key;
    return true;
}

static void key_hash(const char *secret, const unsigned char salt[SALT_BYTES],
                     unsigned char out[HASH_BYTES])
{
    crypto_generichash(out, HASH_BYTES, (const unsigned char *)secret, strlen(secret), salt,
                       SALT_BYTES);
}

ig_code ig_coord_key_create(ig_coord_store *s, const char *name, int32_t rate_per_min,
                            int32_t max_concurrent, const char *fixed_key,
                            char key_out[IG_COORD_KEY_MAX], ig_coord_key_info *info,
                            ig_err *err)
{
    if (rate_per_min < 0 || max_concurrent < 0)
        return ig_err_set(err, IG_ERR_INVALID, "keys: limits must not be negative");
    char key[IG_COORD_KEY_MAX];
    if (fixed_key) {
        if (strlen(fixed_key) >= sizeof key)
            return ig_err_set(err, IG_ERR_INVALID, "keys: key too long (at most %d characters)",
                              IG_COORD_KEY_MAX - 1);
        snprintf(key, sizeof key, "%s", fixed_key);
    } else {
        unsigned char idb[IG_COORD_KEY_ID_LEN / 2], sec[SECRET_HEX / 2];
        randombytes_buf(idb, sizeof idb);
        randombytes_buf(sec, sizeof sec);
        char idh[IG_COORD_KEY_ID_LEN + 1], sech[SECRET_HEX + 1];
        hex(idb, sizeof idb, idh);
        hex(sec, sizeof sec, sech);
        snprintf(key, sizeof key, "ig-%s-%s", idh, sech);
    }
    char id[IG_COORD_KEY_ID_LEN + 1];
    const char *secret;
    if (!split_key(key, id, &secret))
        return ig_err_set(err, IG_ERR_INVALID,
                          "keys: a key must be 16 to %d printable characters without spaces",
                          IG_COORD_KEY_MAX - 1);
    unsigned char salt[SALT_BYTES], hash[HASH_BYTES];
    randombytes_buf(salt, sizeof salt);
    key_hash(secret, salt, hash);
    int64_t now = (int64_t)time(NULL);
    sqlite3_stmt *st = NULL;
    /* A fixed key given again (idlegrid up --key K on every start) replaces its row. */
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO api_keys(id,name,salt,hash,created_at,revoked_at,"
                           "rate_per_min,max_concurrent) VALUES(?,?,?,?,?,0,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "create key");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name ? name : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 3, salt, sizeof salt, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 4, hash, sizeof hash, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int(st, 6, rate_per_min);
    sqlite3_bind_int(st, 7, max_concurrent);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "create key");
    memcpy(key_out, key, strlen(key) + 1);
    if (info) {
        memset(info, 0, sizeof *info);
        memcpy(info->id, id, sizeof info->id);
        snprintf(info->name, sizeof info->name, "%s", name ? name : "");
        info->created_at = now;
        info->rate_per_min = rate_per_min;
        info->max_concurrent = max_concurrent;
    }
    return IG_OK;
}

static void row_to_info(sqlite3_stmt *st, ig_coord_key_info *k)
{
    memset(k, 0, sizeof *k);
    const unsigned char *id = sqlite3_column_text(st, 0);
    const unsigned char *name = sqlite3_column_text(st, 1);
    snprintf(k->id, sizeof k->id, "%s", id ? (const char *)id : "");
    snprintf(k->name, sizeof k->name, "%s", name ? (const char *)name : "");
    k->created_at = sqlite3_column_int64(st, 2);
    k->revoked_at = sqlite3_column_int64(st, 3);
    k->rate_per_min = sqlite3_column_int(st, 4);
    k->max_concurrent = sqlite3_column_int(st, 5);
}

ig_code ig_coord_key_list(ig_coord_store *s,
                          void (*cb)(void *user, const ig_coord_key_info *k), void *user,
                          ig_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id,name,created_at,revoked_at,rate_per_min,max_concurrent "
                           "FROM api_keys ORDER BY created_at, rowid",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "list keys");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ig_coord_key_info k;
        row_to_info(st, &k);
        cb(user, &k);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "list keys");
    return IG_OK;
}

ig_code ig_coord_key_revoke(ig_coord_store *s, const char *id_or_key, ig_err *err)
{
    char id[IG_COORD_KEY_ID_LEN + 1];
    const char *secret;
    if (strlen(id_or_key) == IG_COORD_KEY_ID_LEN)
        snprintf(id, sizeof id, "%s", id_or_key);
    else if (!split_key(id_or_key, id, &secret))
        return ig_err_set(err, IG_ERR_NOT_FOUND, "keys: '%s' is neither a key nor a key id",
                          id_or_key);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at=0", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "revoke key");
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "revoke key");
    if (sqlite3_changes(s->db) != 1)
        return ig_err_set(err, IG_ERR_NOT_FOUND, "keys: no active key with id %s", id);
    return IG_OK;
}

ig_code ig_coord_key_verify(ig_coord_store *s, const char *key, ig_coord_key_info *info,
                            ig_err *err)
{
    char id[IG_COORD_KEY_ID_LEN + 1];
    const char *secret;
    if (!key || !split_key(key, id, &secret))
        return ig_err_set(err, IG_ERR_AUTH, "Incorrect API key provided");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id,name,created_at,revoked_at,rate_per_min,max_concurrent,salt,hash "
                           "FROM api_keys WHERE id=?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "verify key");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    ig_code code = ig_err_set(err, IG_ERR_AUTH, "Incorrect API key provided");
    if (sqlite3_step(st) == SQLITE_ROW) {
        const void *salt = sqlite3_column_blob(st, 6);
        const void *stored = sqlite3_column_blob(st, 7);
        if (salt && stored && sqlite3_column_bytes(st, 6) == SALT_BYTES &&
            sqlite3_column_bytes(st, 7) == HASH_BYTES) {
            unsigned char h[HASH_BYTES];
            key_hash(secret, salt, h);
            if (sodium_memcmp(h, stored, HASH_BYTES) == 0) {
                ig_coord_key_info k;
                row_to_info(st, &k);
                if (k.revoked_at) {
                    code = ig_err_set(err, IG_ERR_AUTH, "This API key has been revoked");
                } else {
                    if (info)
                        *info = k;
                    ig_err_clear(err);
                    code = IG_OK;
                }
            }
        }
    }
    sqlite3_finalize(st);
    return code;
}

/* ---- enrolment tokens and nodes ------------------------------------------------ */

static void token_hash(const char *token, unsigned char out[HASH_BYTES])
{
    crypto_generichash(out, HASH_BYTES, (const unsigned char *)token, strlen(token), NULL, 0);
}

ig_code ig_coord_enroll_token_create(ig_coord_store *s, char token_out[IG_COORD_TOKEN_MAX],
                                     ig_err *err)
{
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    char h[33];
    hex(raw, sizeof raw, h);
    char token[IG_COORD_TOKEN_MAX];
    snprintf(token, sizeof token, "igenroll-%s", h);
    unsigned char th[HASH_BYTES];
    token_hash(token, th);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO enroll_tokens(hash,created_at) VALUES(?,?)", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, err, "create enrolment token");
    sqlite3_bind_blob(st, 1, th, sizeof th, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "create enrolment token");
    memcpy(token_out, token, strlen(token) + 1);
    return IG_OK;
}

static ig_code upsert_node(ig_coord_store *s, const char *node_key, const char *name,
                           bool enrol, ig_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = enrol
        ? "INSERT INTO nodes(node_key,name,enrolled_at,last_seen) VALUES(?1,?2,?3,?3) "
          "ON CONFLICT(node_key) DO UPDATE SET name=?2, last_seen=?3"
        : "UPDATE nodes SET name=?2, last_seen=?3 WHERE node_key=?1";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "record node");
    sqlite3_bind_text(st, 1, node_key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name ? name : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "record node");
    return IG_OK;
}

ig_code ig_coord_enroll_token_consume(ig_coord_store *s, const char *token,
                                      const char *node_key, const char *name, ig_err *err)
{
    unsigned char th[HASH_BYTES];
    token_hash(token, th);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE enroll_tokens SET used_at=?, node_key=? WHERE hash=? AND used_at=0",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "use enrolment token");
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
    sqlite3_bind_text(st, 2, node_key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 3, th, sizeof th, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "use enrolment token");
    if (sqlite3_changes(s->db) != 1)
        return ig_err_set(err, IG_ERR_AUTH, "enrolment token unknown or already used");
    return upsert_node(s, node_key, name, true, err);
}

bool ig_coord_node_enrolled(ig_coord_store *s, const char *node_key)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM nodes WHERE node_key=?", -1, &st, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, node_key, -1, SQLITE_TRANSIENT);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

ig_code ig_coord_node_seen(ig_coord_store *s, const char *node_key, const char *name,
                           ig_err *err)
{
    return upsert_node(s, node_key, name, false, err);
}

/* ---- job records ---------------------------------------------------------------- */

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

ig_code ig_coord_job_record_put(ig_coord_store *s, const ig_coord_job_record *r, ig_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO jobs(job_id,key_id,model,kind,stream,nodes,failovers,"
                           "prompt_tokens,completion_tokens,accepted_ms,first_token_ms,finished_ms,"
                           "outcome,finish_reason,error) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "record job");
    bind_opt_text(st, 1, r->job_id);
    bind_opt_text(st, 2, r->key_id);
    bind_opt_text(st, 3, r->model);
    bind_opt_text(st, 4, r->kind);
    sqlite3_bind_int(st, 5, r->stream ? 1 : 0);
    bind_opt_text(st, 6, r->nodes_json);
    sqlite3_bind_int(st, 7, r->failovers);
    sqlite3_bind_int(st, 8, r->prompt_tokens);
    sqlite3_bind_int(st, 9, r->completion_tokens);
    sqlite3_bind_int64(st, 10, r->accepted_ms);
    sqlite3_bind_int64(st, 11, r->first_token_ms);
    sqlite3_bind_int64(st, 12, r->finished_ms);
    bind_opt_text(st, 13, r->outcome);
    bind_opt_text(st, 14, r->finish_reason);
    bind_opt_text(st, 15, r->error);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "record job");
    return IG_OK;
}

int64_t ig_coord_job_count(ig_coord_store *s, const char *outcome)
{
    sqlite3_stmt *st = NULL;
    const char *sql = outcome ? "SELECT COUNT(*) FROM jobs WHERE outcome=?" : "SELECT COUNT(*) FROM jobs";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (outcome)
        sqlite3_bind_text(st, 1, outcome, -1, SQLITE_TRANSIENT);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}
