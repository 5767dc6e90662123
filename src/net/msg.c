/*
 * msg.c — typed messages of the node link: parse a frame's JSON into ig_msg with
 * every field checked (missing, wrong type, out of range: the reason names the
 * message and the field), and build the wire JSON back from an ig_msg.
 *
 * Parsed strings point into the frame's JSON, which the message keeps a reference
 * to; arrays come from one arena (msg->owned) freed with the message.
 */
#include "net.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const TYPE_NAMES[IG_MSG_COUNT] = {
    [IG_MSG_NONE] = "none",         [IG_MSG_HELLO] = "hello",
    [IG_MSG_CHALLENGE] = "challenge", [IG_MSG_AUTH] = "auth",
    [IG_MSG_WELCOME] = "welcome",   [IG_MSG_ERROR] = "error",
    [IG_MSG_PING] = "ping",         [IG_MSG_PONG] = "pong",
    [IG_MSG_JOB] = "job",           [IG_MSG_ACCEPT] = "accept",
    [IG_MSG_REJECT] = "reject",     [IG_MSG_TOKENS] = "tokens",
    [IG_MSG_DONE] = "done",         [IG_MSG_JOB_ERROR] = "job_error",
    [IG_MSG_HANDBACK] = "handback", [IG_MSG_CANCEL] = "cancel",
};

const char *ig_msg_type_name(ig_msg_type t)
{
    if ((int)t <= 0 || t >= IG_MSG_COUNT)
        return "none";
    return TYPE_NAMES[t];
}

ig_msg_type ig_msg_type_from_name(const char *name)
{
    for (int t = 1; t < IG_MSG_COUNT; t++)
        if (strcmp(TYPE_NAMES[t], name) == 0)
            return (ig_msg_type)t;
    return IG_MSG_NONE;
}

const char *ig_node_class_name(ig_node_class c) { return c == IG_NODE_CLASS_CLOUD ? "cloud" : "edge"; }

ig_gen_params ig_net_default_gen_params(void)
{
    ig_gen_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = 16;
    p.sampler.temperature = 1.0f;
    p.sampler.top_k = 0;
    p.sampler.top_p = 1.0f;
    p.sampler.min_p = 0.0f;
    p.sampler.repeat_penalty = 1.0f;
    p.sampler.repeat_last_n = 64;
    p.sampler.seed = 0;
    return p;
}

void ig_msg_init(ig_msg *m, ig_msg_type type)
{
    memset(m, 0, sizeof *m);
    m->type = type;
}

void ig_msg_deinit(ig_msg *m)
{
    if (!m)
        return;
    json_decref(m->root);
    free(m->owned);
    memset(m, 0, sizeof *m);
}

/* ---- parsing helpers: each names the message and the field on failure. ---- */

typedef struct {
    const char *msg; /* message type name for the reason */
    ig_err *err;
} pctx;

static ig_code fail(pctx *p, const char *field, const char *what)
{
    return ig_err_set(p->err, IG_ERR_PROTOCOL, "%s: field '%s' %s", p->msg, field, what);
}

static json_t *field(pctx *p, json_t *obj, const char *name, const char *path, bool required,
                     ig_code *rc)
{
    json_t *v = json_object_get(obj, name);
    if ((!v || json_is_null(v)) && required)
        *rc = ig_err_set(p->err, IG_ERR_PROTOCOL, "%s: missing field '%s'", p->msg, path);
    if (v && json_is_null(v))
        return NULL;
    return v;
}

/* An identifier-like string: non-empty (unless allow_empty), no NUL, <= max bytes. */
static ig_code get_str(pctx *p, json_t *obj, const char *name, const char *path, bool required,
                       size_t max, const char **out, size_t *out_len)
{
    ig_code rc = IG_OK;
    json_t *v = field(p, obj, name, path, required, &rc);
    if (rc)
        return rc;
    if (!v) {
        *out = NULL;
        if (out_len)
            *out_len = 0;
        return IG_OK;
    }
    if (!json_is_string(v))
        return fail(p, path, "must be a string");
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (max) {
        if (len == 0)
            return fail(p, path, "must not be empty");
        if (len > max)
            return ig_err_set(p->err, IG_ERR_PROTOCOL, "%s: field '%s' is %zu bytes (limit %zu)",
                              p->msg, path, len, max);
        if (memchr(s, '\0', len))
            return fail(p, path, "must not contain a NUL character");
    }
    *out = s;
    if (out_len)
        *out_len = len;
    return IG_OK;
}

static ig_code get_int(pctx *p, json_t *obj, const char *name, const char *path, bool required,
                       int64_t lo, int64_t hi, int64_t *out)
{
    ig_code rc = IG_OK;
    json_t *v = field(p, obj, name, path, required, &rc);
    if (rc || !v)
        return rc;
    if (!json_is_integer(v))
        return fail(p, path, "must be an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return ig_err_set(p->err, IG_ERR_PROTOCOL, "%s: field '%s' is %lld, outside [%lld, %lld]",
                          p->msg, path, (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return IG_OK;
}

static ig_code get_i32(pctx *p, json_t *obj, const char *name, const char *path, bool required,
                       int32_t lo, int32_t hi, int32_t *out)
{
    int64_t x = *out;
    ig_code rc = get_int(p, obj, name, path, required, lo, hi, &x);
    if (rc == IG_OK)
        *out = (int32_t)x;
    return rc;
}

static ig_code get_num(pctx *p, json_t *obj, const char *name, const char *path, bool required,
                       double lo, double hi, double *out)
{
    ig_code rc = IG_OK;
    json_t *v = field(p, obj, name, path, required, &rc);
    if (rc || !v)
        return rc;
    if (!json_is_number(v))
        return fail(p, path, "must be a number");
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return ig_err_set(p->err, IG_ERR_PROTOCOL, "%s: field '%s' is %g, outside [%g, %g]",
                          p->msg, path, x, lo, hi);
    *out = x;
    return IG_OK;
}

static ig_code get_float(pctx *p, json_t *obj, const char *name, const char *path, bool required,
                         double lo, double hi, float *out)
{
    double x = *out;
    ig_code rc = get_num(p, obj, name, path, required, lo, hi, &x);
    if (rc == IG_OK)
        *out = (float)x;
    return rc;
}

static ig_code get_bool(pctx *p, json_t *obj, const char *name, const char *path, bool required,
                        bool *out)
{
    ig_code rc = IG_OK;
    json_t *v = field(p, obj, name, path, required, &rc);
    if (rc || !v)
        return rc;
    if (!json_is_boolean(v))
        return fail(p, path, "must be a boolean");
    *out = json_is_true(v);
    return IG_OK;
}

static ig_code get_hex(pctx *p, json_t *obj, const char *name, uint8_t *out, size_t n)
{
    const char *s = NULL;
    ig_code rc = get_str(p, obj, name, name, true, 2 * n, &s, NULL);
    if (rc)
        return rc;
    if (!ig_net_hex_decode(s, out, n))
        return ig_err_set(p->err, IG_ERR_PROTOCOL, "%s: field '%s' must be %zu hex digits",
                          p->msg, name, 2 * n);
    return IG_OK;
}

static ig_code get_array(pctx *p, json_t *obj, const char *name, const char *path, bool required,
                         size_t max, json_t **out)
{
    ig_code rc = IG_OK;
    json_t *v = field(p, obj, name, path, required, &rc);
    *out = NULL;
    if (rc || !v)
        return rc;
    if (!json_is_array(v))
        return fail(p, path, "must be an array");
    if (json_array_size(v) > max)
        return ig_err_set(p->err, IG_ERR_PROTOCOL, "%s: field '%s' has %zu elements (limit %zu)",
                          p->msg, path, json_array_size(v), max);
    *out = v;
    return IG_OK;
}

/* ---- per-message parsers ---- */

static ig_code parse_hello(pctx *p, json_t *r, ig_msg_hello *h)
{
    ig_code rc;
    if ((rc = get_i32(p, r, "version", "version", true, 0, INT32_MAX, &h->version)))
        return rc;
    if ((rc = get_hex(p, r, "node_key", h->node_key, IG_NET_KEY_BYTES)))
        return rc;
    if ((rc = get_str(p, r, "enroll_token", "enroll_token", false, 256, &h->enroll_token, NULL)))
        return rc;
    json_t *models;
    if ((rc = get_array(p, r, "models", "models", true, IG_NET_MAX_MODELS, &models)))
        return rc;
    if (json_array_size(models) == 0)
        return fail(p, "models", "must list at least one model");
    h->n_models = (int32_t)json_array_size(models);
    for (int32_t i = 0; i < h->n_models; i++) {
        json_t *m = json_array_get(models, (size_t)i);
        ig_net_model *o = &h->models[i];
        char path[64];
        snprintf(path, sizeof path, "models[%d]", i);
        if (!json_is_object(m))
            return fail(p, path, "must be an object");
        snprintf(path, sizeof path, "models[%d].id", i);
        if ((rc = get_str(p, m, "id", path, true, IG_NET_MAX_ID, &o->id, NULL)))
            return rc;
        const char *cls = NULL;
        snprintf(path, sizeof path, "models[%d].class", i);
        if ((rc = get_str(p, m, "class", path, true, 16, &cls, NULL)))
            return rc;
        if (strcmp(cls, "edge") == 0)
            o->cls = IG_NODE_CLASS_EDGE;
        else if (strcmp(cls, "cloud") == 0)
            o->cls = IG_NODE_CLASS_CLOUD;
        else
            return fail(p, path, "must be \"edge\" or \"cloud\"");
        snprintf(path, sizeof path, "models[%d].n_ctx", i);
        if ((rc = get_i32(p, m, "n_ctx", path, true, 1, INT32_MAX, &o->n_ctx)))
            return rc;
        snprintf(path, sizeof path, "models[%d].chat_family", i);
        if ((rc = get_str(p, m, "chat_family", path, true, 32, &o->chat_family, NULL)))
            return rc;
        snprintf(path, sizeof path, "models[%d].file_sha", i);
        if ((rc = get_str(p, m, "file_sha", path, false, 128, &o->file_sha, NULL)))
            return rc;
    }
    if ((rc = get_i32(p, r, "slots", "slots", true, 1, IG_NET_MAX_SLOTS, &h->slots)))
        return rc;
    if ((rc = get_num(p, r, "tokens_per_second", "tokens_per_second", true, 0, 1e9,
                      &h->tokens_per_second)))
        return rc;
    if ((rc = get_i32(p, r, "threads", "threads", true, 1, 4096, &h->threads)))
        return rc;
    return get_str(p, r, "name", "name", true, IG_NET_MAX_ID, &h->name, NULL);
}

static ig_code parse_stop(pctx *p, json_t *params, ig_gen_params *g)
{
    json_t *stop;
    ig_code rc = get_array(p, params, "stop", "params.stop", false, IG_MAX_STOP, &stop);
    if (rc || !stop)
        return rc;
    g->n_stop = (int32_t)json_array_size(stop);
    for (int32_t i = 0; i < g->n_stop; i++) {
        json_t *s = json_array_get(stop, (size_t)i);
        char path[32];
        snprintf(path, sizeof path, "params.stop[%d]", i);
        if (!json_is_string(s))
            return fail(p, path, "must be a string");
        if (json_string_length(s) == 0)
            return fail(p, path, "must not be empty");
        if (json_string_length(s) > 256)
            return fail(p, path, "is longer than 256 bytes");
        if (memchr(json_string_value(s), '\0', json_string_length(s)))
            return fail(p, path, "must not contain a NUL character");
        g->stop[i] = json_string_value(s);
    }
    return IG_OK;
}

static ig_code parse_job(pctx *p, json_t *r, ig_msg_job *j, void **owned)
{
    ig_code rc;
    if ((rc = get_str(p, r, "job_id", "job_id", true, IG_NET_MAX_ID, &j->job_id, NULL)))
        return rc;
    if ((rc = get_str(p, r, "model", "model", true, IG_NET_MAX_ID, &j->model, NULL)))
        return rc;
    const char *kind = NULL;
    if ((rc = get_str(p, r, "kind", "kind", true, 16, &kind, NULL)))
        return rc;
    json_t *messages = NULL, *resume = NULL;
    if (strcmp(kind, "completion") == 0) {
        j->kind = IG_JOB_COMPLETION;
        if ((rc = get_str(p, r, "prompt", "prompt", true, 0, &j->prompt, &j->prompt_len)))
            return rc;
    } else if (strcmp(kind, "chat") == 0) {
        j->kind = IG_JOB_CHAT;
        if ((rc = get_array(p, r, "messages", "messages", true, IG_NET_MAX_MESSAGES, &messages)))
            return rc;
        if (json_array_size(messages) == 0)
            return fail(p, "messages", "must hold at least one message");
    } else {
        return fail(p, "kind", "must be \"completion\" or \"chat\"");
    }
    if ((rc = get_array(p, r, "resume", "resume", false, IG_NET_MAX_RESUME, &resume)))
        return rc;

    j->params = ig_net_default_gen_params();
    json_t *params = json_object_get(r, "params");
    if (!params || json_is_null(params))
        return ig_err_set(p->err, IG_ERR_PROTOCOL, "%s: missing field 'params'", p->msg);
    if (!json_is_object(params))
        return fail(p, "params", "must be an object");
    ig_gen_params *g = &j->params;
    if ((rc = get_i32(p, params, "max_tokens", "params.max_tokens", true, 1, INT32_MAX,
                      &g->max_tokens)))
        return rc;
    if ((rc = get_float(p, params, "temperature", "params.temperature", false, 0, 100,
                        &g->sampler.temperature)))
        return rc;
    if ((rc = get_float(p, params, "top_p", "params.top_p", false, 0, 1, &g->sampler.top_p)))
        return rc;
    if ((rc = get_i32(p, params, "top_k", "params.top_k", false, 0, INT32_MAX, &g->sampler.top_k)))
        return rc;
    if ((rc = get_float(p, params, "min_p", "params.min_p", false, 0, 1, &g->sampler.min_p)))
        return rc;
    if ((rc = get_float(p, params, "repeat_penalty", "params.repeat_penalty", false, 0.01, 100,
                        &g->sampler.repeat_penalty)))
        return rc;
    if ((rc = get_i32(p, params, "repeat_last_n", "params.repeat_last_n", false, 0, 65536,
                      &g->sampler.repeat_last_n)))
        return rc;
    {
        /* seed: a full uint64 does not fit json_int_t; accept 0..2^63-1 as an integer. */
        int64_t seed = 0;
        if ((rc = get_int(p, params, "seed", "params.seed", true, 0, INT64_MAX, &seed)))
            return rc;
        g->sampler.seed = (uint64_t)seed;
    }
    if ((rc = parse_stop(p, params, g)))
        return rc;
    if ((rc = get_bool(p, params, "logprobs", "params.logprobs", false, &j->logprobs)))
        return rc;
    if ((rc = get_i32(p, params, "top_logprobs", "params.top_logprobs", false, 0,
                      IG_MAX_TOP_LOGPROBS, &g->top_logprobs)))
        return rc;
    if ((rc = get_bool(p, params, "ignore_eos", "params.ignore_eos", false, &g->ignore_eos)))
        return rc;
    if ((rc = get_int(p, r, "deadline_ms", "deadline_ms", false, 0, INT64_MAX / 2, &j->deadline_ms)))
        return rc;

    size_t n_msg = messages ? json_array_size(messages) : 0;
    size_t n_res = resume ? json_array_size(resume) : 0;
    size_t bytes = n_msg * sizeof(ig_chat_message) + n_res * sizeof(int32_t);
    if (bytes) {
        *owned = calloc(1, bytes);
        if (!*owned)
            return ig_err_set(p->err, IG_ERR_NOMEM, "%s: out of memory", p->msg);
    }
    j->messages = n_msg ? (ig_chat_message *)*owned : NULL;
    j->n_messages = (int32_t)n_msg;
    j->resume = n_res ? (int32_t *)((char *)*owned + n_msg * sizeof(ig_chat_message)) : NULL;
    j->n_resume = (int32_t)n_res;
    for (size_t i = 0; i < n_msg; i++) {
        json_t *m = json_array_get(messages, i);
        char path[64];
        snprintf(path, sizeof path, "messages[%zu]", i);
        if (!json_is_object(m))
            return fail(p, path, "must be an object");
        snprintf(path, sizeof path, "messages[%zu].role", i);
        const char *role = NULL;
        if ((rc = get_str(p, m, "role", path, true, 32, &role, NULL)))
            return rc;
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return fail(p, path, "must be \"system\", \"user\" or \"assistant\"");
        snprintf(path, sizeof path, "messages[%zu].content", i);
        const char *content = NULL;
        if ((rc = get_str(p, m, "content", path, true, 0, &content, NULL)))
            return rc;
        j->messages[i].role = role;
        j->messages[i].content = content;
    }
    for (size_t i = 0; i < n_res; i++) {
        json_t *t = json_array_get(resume, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 ||
            json_integer_value(t) > INT32_MAX) {
            char path[48];
            snprintf(path, sizeof path, "resume[%zu]", i);
            return fail(p, path, "must be a token id (a non-negative integer)");
        }
        j->resume[i] = (int32_t)json_integer_value(t);
    }
    return IG_OK;
}

static ig_code parse_logprob(pctx *p, json_t *o, const char *path, float *out)
{
    double x = 0;
    ig_code rc = get_num(p, o, "logprob", path, true, -1e38, 1e-3, &x);
    if (rc == IG_OK)
        *out = (float)x;
    return rc;
}

static ig_code parse_tokens(pctx *p, json_t *r, ig_msg_tokens *t, void **owned)
{
    ig_code rc;
    if ((rc = get_str(p, r, "job_id", "job_id", true, IG_NET_MAX_ID, &t->job_id, NULL)))
        return rc;
    if ((rc = get_int(p, r, "index", "index", true, 0, INT32_MAX, &t->index)))
        return rc;
    json_t *items;
    if ((rc = get_array(p, r, "items", "items", true, IG_NET_MAX_TOKEN_ITEMS, &items)))
        return rc;
    size_t n = json_array_size(items);
    if (n == 0)
        return fail(p, "items", "must hold at least one token");
    *owned = calloc(n, sizeof(ig_net_token));
    if (!*owned)
        return ig_err_set(p->err, IG_ERR_NOMEM, "%s: out of memory", p->msg);
    t->items = *owned;
    t->n_items = (int32_t)n;
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(items, i);
        ig_net_token *o = &t->items[i];
        char path[80];
        snprintf(path, sizeof path, "items[%zu]", i);
        if (!json_is_object(it))
            return fail(p, path, "must be an object");
        snprintf(path, sizeof path, "items[%zu].id", i);
        /* -1: the final item of a job ended at EOS, releasing held-back text only */
        if ((rc = get_i32(p, it, "id", path, true, -1, INT32_MAX, &o->id)))
            return rc;
        snprintf(path, sizeof path, "items[%zu].text", i);
        if ((rc = get_str(p, it, "text", path, true, 0, &o->text, &o->text_len)))
            return rc;
        snprintf(path, sizeof path, "items[%zu].logprob", i);
        if ((rc = parse_logprob(p, it, path, &o->logprob)))
            return rc;
        json_t *top;
        snprintf(path, sizeof path, "items[%zu].top", i);
        if ((rc = get_array(p, it, "top", path, false, IG_MAX_TOP_LOGPROBS, &top)))
            return rc;
        o->n_top = top ? (int32_t)json_array_size(top) : 0;
        for (int32_t k = 0; k < o->n_top; k++) {
            json_t *e = json_array_get(top, (size_t)k);
            ig_net_top_token *ot = &o->top[k];
            snprintf(path, sizeof path, "items[%zu].top[%d]", i, k);
            if (!json_is_object(e))
                return fail(p, path, "must be an object");
            snprintf(path, sizeof path, "items[%zu].top[%d].id", i, k);
            if ((rc = get_i32(p, e, "id", path, true, 0, INT32_MAX, &ot->id)))
                return rc;
            snprintf(path, sizeof path, "items[%zu].top[%d].text", i, k);
            if ((rc = get_str(p, e, "text", path, true, 0, &ot->text, &ot->text_len)))
                return rc;
            snprintf(path, sizeof path, "items[%zu].top[%d].logprob", i, k);
            if ((rc = parse_logprob(p, e, path, &ot->logprob)))
                return rc;
        }
    }
    return IG_OK;
}

static ig_code parse_done(pctx *p, json_t *r, ig_msg_done *d)
{
    ig_code rc;
    if ((rc = get_str(p, r, "job_id", "job_id", true, IG_NET_MAX_ID, &d->job_id, NULL)))
        return rc;
    const char *fr = NULL;
    if ((rc = get_str(p, r, "finish_reason", "finish_reason", true, 16, &fr, NULL)))
        return rc;
    if (strcmp(fr, "stop") == 0)
        d->finish = IG_FINISH_STOP;
    else if (strcmp(fr, "length") == 0)
        d->finish = IG_FINISH_LENGTH;
    else if (strcmp(fr, "eos") == 0)
        d->finish = IG_FINISH_EOS;
    else if (strcmp(fr, "context") == 0)
        d->finish = IG_FINISH_CONTEXT;
    else
        return fail(p, "finish_reason", "must be \"stop\", \"length\", \"eos\" or \"context\"");
    if ((rc = get_i32(p, r, "prompt_tokens", "prompt_tokens", true, 0, INT32_MAX, &d->prompt_tokens)))
        return rc;
    if ((rc = get_i32(p, r, "completion_tokens", "completion_tokens", true, 0, INT32_MAX,
                      &d->completion_tokens)))
        return rc;
    json_t *timings = json_object_get(r, "timings");
    if (timings && !json_is_null(timings)) {
        if (!json_is_object(timings))
            return fail(p, "timings", "must be an object");
        if ((rc = get_num(p, timings, "prefill_ms", "timings.prefill_ms", false, 0, 1e12,
                          &d->prefill_ms)))
            return rc;
        if ((rc = get_num(p, timings, "decode_ms", "timings.decode_ms", false, 0, 1e12,
                          &d->decode_ms)))
            return rc;
    }
    return IG_OK;
}

static ig_code parse_job_reason(pctx *p, json_t *r, ig_msg_job_reason *jr, const char *reason_field)
{
    ig_code rc;
    if ((rc = get_str(p, r, "job_id", "job_id", true, IG_NET_MAX_ID, &jr->job_id, NULL)))
        return rc;
    if ((rc = get_str(p, r, reason_field, reason_field, true, 0, &jr->reason, NULL)))
        return rc;
    return IG_OK;
}

ig_code ig_msg_parse(json_t *root, ig_msg *m, ig_err *err)
{
    memset(m, 0, sizeof *m);
    if (!json_is_object(root))
        return ig_err_set(err, IG_ERR_PROTOCOL, "message is not a JSON object");
    json_t *tv = json_object_get(root, "type");
    if (!tv)
        return ig_err_set(err, IG_ERR_PROTOCOL, "message has no field 'type'");
    if (!json_is_string(tv))
        return ig_err_set(err, IG_ERR_PROTOCOL, "message field 'type' must be a string");
    ig_msg_type type = ig_msg_type_from_name(json_string_value(tv));
    if (type == IG_MSG_NONE) {
        /* Quote at most 64 bytes of the unknown name; it is valid UTF-8 (checked). */
        char shown[72];
        size_t n = json_string_length(tv);
        const char *s = json_string_value(tv);
        size_t k = n < 64 ? n : 64;
        while (k < n && k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--; /* do not cut a character in half */
        memcpy(shown, s, k);
        shown[k] = '\0';
        for (size_t i = 0; i < k; i++)
            if (shown[i] == '\0')
                shown[i] = '?';
        return ig_err_set(err, IG_ERR_PROTOCOL, "unknown message type '%s%s'", shown,
                          k < n ? "..." : "");
    }
    m->type = type;
    pctx p = {ig_msg_type_name(type), err};
    ig_code rc = IG_OK;
    void *owned = NULL;
    switch (type) {
    case IG_MSG_HELLO:
        rc = parse_hello(&p, root, &m->hello);
        break;
    case IG_MSG_CHALLENGE:
        rc = get_hex(&p, root, "nonce", m->challenge.nonce, IG_NET_NONCE_BYTES);
        break;
    case IG_MSG_AUTH:
        rc = get_hex(&p, root, "signature", m->auth.signature, IG_NET_SIG_BYTES);
        break;
    case IG_MSG_WELCOME:
        rc = get_str(&p, root, "node_id", "node_id", true, IG_NET_MAX_ID, &m->welcome.node_id, NULL);
        if (!rc)
            rc = get_i32(&p, root, "heartbeat_ms", "heartbeat_ms", true, 10, 3600 * 1000,
                         &m->welcome.heartbeat_ms);
        break;
    case IG_MSG_ERROR:
        rc = get_str(&p, root, "message", "message", true, 0, &m->error.message, NULL);
        break;
    case IG_MSG_PING: {
        rc = get_int(&p, root, "t", "t", true, INT64_MIN / 2, INT64_MAX / 2, &m->ping.t);
        json_t *a = json_object_get(root, "active"), *f = json_object_get(root, "free_slots");
        if (!rc && (a || f)) {
            m->ping.has_load = true;
            rc = get_i32(&p, root, "active", "active", true, 0, IG_NET_MAX_SLOTS, &m->ping.active);
            if (!rc)
                rc = get_i32(&p, root, "free_slots", "free_slots", true, 0, IG_NET_MAX_SLOTS,
                             &m->ping.free_slots);
        }
        break;
    }
    case IG_MSG_PONG:
        rc = get_int(&p, root, "t", "t", true, INT64_MIN / 2, INT64_MAX / 2, &m->pong.t);
        break;
    case IG_MSG_JOB:
        rc = parse_job(&p, root, &m->job, &owned);
        break;
    case IG_MSG_ACCEPT:
        rc = get_str(&p, root, "job_id", "job_id", true, IG_NET_MAX_ID, &m->accept.job_id, NULL);
        break;
    case IG_MSG_CANCEL:
        rc = get_str(&p, root, "job_id", "job_id", true, IG_NET_MAX_ID, &m->cancel.job_id, NULL);
        break;
    case IG_MSG_REJECT:
        rc = parse_job_reason(&p, root, &m->reject, "reason");
        break;
    case IG_MSG_HANDBACK:
        rc = parse_job_reason(&p, root, &m->handback, "reason");
        break;
    case IG_MSG_JOB_ERROR:
        rc = parse_job_reason(&p, root, &m->job_error, "message");
        break;
    case IG_MSG_TOKENS:
        rc = parse_tokens(&p, root, &m->tokens, &owned);
        break;
    case IG_MSG_DONE:
        rc = parse_done(&p, root, &m->done);
        break;
    default:
        rc = ig_err_set(err, IG_ERR_INTERNAL, "no parser for message type %d", (int)type);
        break;
    }
    if (rc != IG_OK) {
        free(owned);
        memset(m, 0, sizeof *m);
        return rc;
    }
    m->root = json_incref(root);
    m->owned = owned;
    return IG_OK;
}

/* ---- building ---- */

typedef struct {
    json_t *obj;
    ig_err *err;
    const char *msg;
    bool failed;
} bctx;

static void bset(bctx *b, json_t *obj, const char *key, json_t *v, const char *path)
{
    if (b->failed) {
        json_decref(v);
        return;
    }
    if (!v) {
        b->failed = true;
        ig_err_set(b->err, IG_ERR_INVALID, "%s: field '%s' cannot be encoded (not valid UTF-8?)",
                   b->msg, path ? path : key);
        return;
    }
    json_object_set_new(obj, key, v);
}

static json_t *bstr(const char *s) { return s ? json_string(s) : NULL; }
static json_t *bstrn(const char *s, size_t n) { return s ? json_stringn(s, n) : json_string(""); }
static json_t *blogprob(float x) { return json_real(isfinite(x) ? (double)x : -1e30); }
static json_t *bhex(const uint8_t *b, size_t n)
{
    char hex[2 * IG_NET_SIG_BYTES + 1];
    assert(n <= IG_NET_SIG_BYTES);
    ig_net_hex_encode(b, n, hex);
    return json_string(hex);
}

static const char *finish_wire(ig_finish f)
{
    switch (f) {
    case IG_FINISH_STOP: return "stop";
    case IG_FINISH_LENGTH: return "length";
    case IG_FINISH_EOS: return "eos";
    case IG_FINISH_CONTEXT: return "context";
    default: return NULL;
    }
}

static json_t *build_token(bctx *b, const ig_net_token *t)
{
    json_t *o = json_object();
    bset(b, o, "id", json_integer(t->id), "items.id");
    bset(b, o, "text", bstrn(t->text, t->text_len), "items.text");
    bset(b, o, "logprob", blogprob(t->logprob), "items.logprob");
    if (t->n_top > 0) {
        json_t *top = json_array();
        for (int32_t k = 0; k < t->n_top && k < IG_MAX_TOP_LOGPROBS; k++) {
            json_t *e = json_object();
            bset(b, e, "id", json_integer(t->top[k].id), "items.top.id");
            bset(b, e, "text", bstrn(t->top[k].text, t->top[k].text_len), "items.top.text");
            bset(b, e, "logprob", blogprob(t->top[k].logprob), "items.top.logprob");
            json_array_append_new(top, e);
        }
        bset(b, o, "top", top, "items.top");
    }
    return o;
}

json_t *ig_msg_to_json(const ig_msg *m, ig_err *err)
{
    if (m->type <= IG_MSG_NONE || m->type >= IG_MSG_COUNT) {
        ig_err_set(err, IG_ERR_INVALID, "message has no type");
        return NULL;
    }
    json_t *o = json_object();
    if (!o) {
        ig_err_set(err, IG_ERR_NOMEM, "out of memory");
        return NULL;
    }
    bctx b = {o, err, ig_msg_type_name(m->type), false};
    bset(&b, o, "type", json_string(ig_msg_type_name(m->type)), NULL);
    switch (m->type) {
    case IG_MSG_HELLO: {
        const ig_msg_hello *h = &m->hello;
        bset(&b, o, "version", json_integer(h->version), NULL);
        bset(&b, o, "node_key", bhex(h->node_key, IG_NET_KEY_BYTES), NULL);
        if (h->enroll_token)
            bset(&b, o, "enroll_token", bstr(h->enroll_token), NULL);
        json_t *models = json_array();
        for (int32_t i = 0; i < h->n_models && i < IG_NET_MAX_MODELS; i++) {
            const ig_net_model *md = &h->models[i];
            json_t *e = json_object();
            bset(&b, e, "id", bstr(md->id), "models.id");
            bset(&b, e, "class", json_string(ig_node_class_name(md->cls)), NULL);
            bset(&b, e, "n_ctx", json_integer(md->n_ctx), NULL);
            bset(&b, e, "chat_family", bstr(md->chat_family ? md->chat_family : "plain"), NULL);
            if (md->file_sha)
                bset(&b, e, "file_sha", bstr(md->file_sha), NULL);
            json_array_append_new(models, e);
        }
        bset(&b, o, "models", models, NULL);
        bset(&b, o, "slots", json_integer(h->slots), NULL);
        bset(&b, o, "tokens_per_second", json_real(isfinite(h->tokens_per_second) ? h->tokens_per_second : 0), NULL);
        bset(&b, o, "threads", json_integer(h->threads), NULL);
        bset(&b, o, "name", bstr(h->name ? h->name : "node"), NULL);
        break;
    }
    case IG_MSG_CHALLENGE:
        bset(&b, o, "nonce", bhex(m->challenge.nonce, IG_NET_NONCE_BYTES), NULL);
        break;
    case IG_MSG_AUTH:
        bset(&b, o, "signature", bhex(m->auth.signature, IG_NET_SIG_BYTES), NULL);
        break;
    case IG_MSG_WELCOME:
        bset(&b, o, "node_id", bstr(m->welcome.node_id), NULL);
        bset(&b, o, "heartbeat_ms", json_integer(m->welcome.heartbeat_ms), NULL);
        break;
    case IG_MSG_ERROR:
        bset(&b, o, "message", bstr(m->error.message ? m->error.message : ""), NULL);
        break;
    case IG_MSG_PING:
        bset(&b, o, "t", json_integer(m->ping.t), NULL);
        if (m->ping.has_load) {
            bset(&b, o, "active", json_integer(m->ping.active), NULL);
            bset(&b, o, "free_slots", json_integer(m->ping.free_slots), NULL);
        }
        break;
    case IG_MSG_PONG:
        bset(&b, o, "t", json_integer(m->pong.t), NULL);
        break;
    case IG_MSG_JOB: {
        const ig_msg_job *j = &m->job;
        bset(&b, o, "job_id", bstr(j->job_id), NULL);
        bset(&b, o, "model", bstr(j->model), NULL);
        bset(&b, o, "kind", json_string(j->kind == IG_JOB_CHAT ? "chat" : "completion"), NULL);
        if (j->kind == IG_JOB_CHAT) {
            json_t *msgs = json_array();
            for (int32_t i = 0; i < j->n_messages; i++) {
                json_t *e = json_object();
                bset(&b, e, "role", bstr(j->messages[i].role), "messages.role");
                bset(&b, e, "content", bstr(j->messages[i].content), "messages.content");
                json_array_append_new(msgs, e);
            }
            bset(&b, o, "messages", msgs, NULL);
        } else {
            bset(&b, o, "prompt", bstrn(j->prompt, j->prompt_len), NULL);
        }
        const ig_gen_params *g = &j->params;
        json_t *p = json_object();
        bset(&b, p, "max_tokens", json_integer(g->max_tokens), NULL);
        bset(&b, p, "temperature", json_real(g->sampler.temperature), NULL);
        bset(&b, p, "top_p", json_real(g->sampler.top_p), NULL);
        bset(&b, p, "top_k", json_integer(g->sampler.top_k), NULL);
        bset(&b, p, "min_p", json_real(g->sampler.min_p), NULL);
        bset(&b, p, "repeat_penalty", json_real(g->sampler.repeat_penalty), NULL);
        bset(&b, p, "repeat_last_n", json_integer(g->sampler.repeat_last_n), NULL);
        bset(&b, p, "seed", json_integer((json_int_t)(g->sampler.seed & (uint64_t)INT64_MAX)), NULL);
        json_t *stop = json_array();
        for (int32_t i = 0; i < g->n_stop && i < IG_MAX_STOP; i++)
            json_array_append_new(stop, json_string(g->stop[i] ? g->stop[i] : ""));
        bset(&b, p, "stop", stop, NULL);
        bset(&b, p, "logprobs", json_boolean(j->logprobs), NULL);
        bset(&b, p, "top_logprobs", json_integer(g->top_logprobs), NULL);
        bset(&b, p, "ignore_eos", json_boolean(g->ignore_eos), NULL);
        bset(&b, o, "params", p, NULL);
        json_t *res = json_array();
        for (int32_t i = 0; i < j->n_resume; i++)
            json_array_append_new(res, json_integer(j->resume[i]));
        bset(&b, o, "resume", res, NULL);
        bset(&b, o, "deadline_ms", json_integer(j->deadline_ms), NULL);
        break;
    }
    case IG_MSG_ACCEPT:
        bset(&b, o, "job_id", bstr(m->accept.job_id), NULL);
        break;
    case IG_MSG_CANCEL:
        bset(&b, o, "job_id", bstr(m->cancel.job_id), NULL);
        break;
    case IG_MSG_REJECT:
    case IG_MSG_HANDBACK:
        bset(&b, o, "job_id", bstr(m->reject.job_id), NULL);
        bset(&b, o, "reason", bstr(m->reject.reason ? m->reject.reason : ""), NULL);
        break;
    case IG_MSG_JOB_ERROR:
        bset(&b, o, "job_id", bstr(m->job_error.job_id), NULL);
        bset(&b, o, "message", bstr(m->job_error.reason ? m->job_error.reason : ""), NULL);
        break;
    case IG_MSG_TOKENS: {
        const ig_msg_tokens *t = &m->tokens;
        bset(&b, o, "job_id", bstr(t->job_id), NULL);
        bset(&b, o, "index", json_integer(t->index), NULL);
        json_t *items = json_array();
        for (int32_t i = 0; i < t->n_items; i++)
            json_array_append_new(items, build_token(&b, &t->items[i]));
        bset(&b, o, "items", items, NULL);
        break;
    }
    case IG_MSG_DONE: {
        const ig_msg_done *d = &m->done;
        bset(&b, o, "job_id", bstr(d->job_id), NULL);
        bset(&b, o, "finish_reason", bstr(finish_wire(d->finish)), "finish_reason");
        bset(&b, o, "prompt_tokens", json_integer(d->prompt_tokens), NULL);
        bset(&b, o, "completion_tokens", json_integer(d->completion_tokens), NULL);
        json_t *tm = json_object();
        bset(&b, tm, "prefill_ms", json_real(d->prefill_ms), NULL);
        bset(&b, tm, "decode_ms", json_real(d->decode_ms), NULL);
        bset(&b, o, "timings", tm, NULL);
        break;
    }
    default:
        break;
    }
    if (b.failed) {
        json_decref(o);
        return NULL;
    }
    return o;
}
