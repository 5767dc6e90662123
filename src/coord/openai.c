/*
 * openai.c — buyer request bodies in, validated requests out; OpenAI's error shape.
 *
 * Pure: no I/O, no globals. Any byte string is safe input (it is a fuzz target):
 * invalid UTF-8, malformed JSON, wrong types and out-of-range values all end in a
 * 400 whose message names the field and why. Fields OpenAI defines that idlegrid does
 * not implement are accepted only at their neutral value; unknown fields are refused,
 * as OpenAI does, so a typo never silently changes nothing.
 */
#include "coord.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ig_coord_api_error_set(ig_coord_api_error *e, int status, const char *type,
                            const char *code, const char *param, const char *fmt, ...)
{
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", type ? type : "invalid_request_error");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* Messages may quote buyer bytes (jansson's "near '...'" cuts a character in half):
 * every invalid UTF-8 byte becomes '?', so the error itself is always valid JSON. */
static void utf8_sanitize(const char *in, char *out, size_t cap)
{
    size_t n = strnlen(in, cap - 1);
    memcpy(out, in, n);
    out[n] = '\0';
    int64_t at;
    size_t from = 0;
    while ((at = ig_coord_utf8_invalid_at(out + from, n - from)) >= 0) {
        out[from + (size_t)at] = '?';
        from += (size_t)at + 1;
    }
}

char *ig_coord_api_error_json(const ig_coord_api_error *e)
{
    char message[sizeof e->message], param[sizeof e->param];
    utf8_sanitize(e->message, message, sizeof message);
    utf8_sanitize(e->param, param, sizeof param);
    json_t *o = json_pack("{s:{s:s,s:s,s:o,s:o}}", "error", "message", message, "type", e->type,
                          "param", param[0] ? json_string(param) : json_null(), "code",
                          e->code[0] ? json_string(e->code) : json_null());
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

int64_t ig_coord_utf8_invalid_at(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned min;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            min = 0x80;
            c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            min = 0x800;
            c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            min = 0x10000;
            c &= 0x07;
        } else {
            return (int64_t)i;
        }
        if (i + n >= len)
            return (int64_t)i;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return (int64_t)i;
            c = (c << 6) | (p[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return (int64_t)i;
        i += n + 1;
    }
    return -1;
}

static void bad(ig_coord_api_error *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bad(ig_coord_api_error *e, const char *param, const char *fmt, ...)
{
    char msg[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ig_coord_api_error_set(e, 400, "invalid_request_error", "invalid_value", param, "%s", msg);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static bool get_number(const json_t *v, const char *name, double lo, double hi, double *out,
                       ig_coord_api_error *e)
{
    if (!json_is_number(v)) {
        bad(e, name, "'%s' must be a number, got %s", name, type_name(v));
        return false;
    }
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi) {
        bad(e, name, "'%s' must be between %g and %g, got %g", name, lo, hi, d);
        return false;
    }
    *out = d;
    return true;
}

static bool get_int(const json_t *v, const char *name, int64_t lo, int64_t hi, int64_t *out,
                    ig_coord_api_error *e)
{
    if (!json_is_integer(v)) {
        bad(e, name, "'%s' must be an integer, got %s", name, type_name(v));
        return false;
    }
    json_int_t i = json_integer_value(v);
    if (i < lo || i > hi) {
        bad(e, name, "'%s' must be between %lld and %lld, got %lld", name, (long long)lo,
            (long long)hi, (long long)i);
        return false;
    }
    *out = (int64_t)i;
    return true;
}

static bool get_bool(const json_t *v, const char *name, bool *out, ig_coord_api_error *e)
{
    if (!json_is_boolean(v)) {
        bad(e, name, "'%s' must be a boolean, got %s", name, type_name(v));
        return false;
    }
    *out = json_is_true(v);
    return true;
}

static char *dup_str(const json_t *v)
{
    size_t n = json_string_length(v);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, json_string_value(v), n);
        s[n] = '\0';
    }
    return s;
}

static bool parse_stop(const json_t *v, ig_coord_request *r, ig_coord_api_error *e)
{
    if (json_is_null(v))
        return true;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0 || json_string_length(v) > IG_COORD_MAX_STOP_LEN) {
            bad(e, "stop", "'stop' strings must be 1 to %d bytes", IG_COORD_MAX_STOP_LEN);
            return false;
        }
        r->stop[r->n_stop++] = dup_str(v);
        return true;
    }
    if (!json_is_array(v)) {
        bad(e, "stop", "'stop' must be a string or an array of strings, got %s", type_name(v));
        return false;
    }
    if (json_array_size(v) > 4) {
        bad(e, "stop", "'stop' holds at most 4 strings, got %zu", json_array_size(v));
        return false;
    }
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s)) {
            bad(e, "stop", "'stop[%zu]' must be a string, got %s", i, type_name(s));
            return false;
        }
        if (json_string_length(s) == 0 || json_string_length(s) > IG_COORD_MAX_STOP_LEN) {
            bad(e, "stop", "'stop[%zu]' must be 1 to %d bytes", i, IG_COORD_MAX_STOP_LEN);
            return false;
        }
        r->stop[r->n_stop++] = dup_str(s);
    }
    return true;
}

/* message content: a string, or an array of {type:"text", text} parts joined. */
static bool parse_content(const json_t *v, size_t idx, char **out, ig_coord_api_error *e)
{
    char param[48];
    snprintf(param, sizeof param, "messages[%zu].content", idx);
    if (json_is_string(v)) {
        *out = dup_str(v);
        return *out != NULL;
    }
    if (!json_is_array(v)) {
        bad(e, param, "'%s' must be a string or an array of text parts, got %s", param,
            type_name(v));
        return false;
    }
    size_t total = 0, i;
    json_t *part;
    json_array_foreach(v, i, part)
    {
        json_t *type = json_object_get(part, "type");
        json_t *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type) ||
            strcmp(json_string_value(type), "text") != 0 || !json_is_string(text)) {
            bad(e, param, "'%s[%zu]' must be {\"type\":\"text\",\"text\":string} (only text parts "
                "are supported)", param, i);
            return false;
        }
        total += json_string_length(text);
    }
    char *s = malloc(total + 1);
    if (!s)
        return false;
    size_t at = 0;
    json_array_foreach(v, i, part)
    {
        json_t *text = json_object_get(part, "text");
        size_t n = json_string_length(text);
        memcpy(s + at, json_string_value(text), n);
        at += n;
    }
    s[at] = '\0';
    *out = s;
    return true;
}

static bool parse_messages(const json_t *v, ig_coord_request *r, ig_coord_api_error *e)
{
    if (!json_is_array(v)) {
        bad(e, "messages", "'messages' must be an array, got %s", type_name(v));
        return false;
    }
    size_t n = json_array_size(v);
    if (n == 0) {
        bad(e, "messages", "'messages' must hold at least one message");
        return false;
    }
    if (n > IG_COORD_MAX_MESSAGES) {
        bad(e, "messages", "'messages' holds at most %d messages, got %zu", IG_COORD_MAX_MESSAGES, n);
        return false;
    }
    r->messages = calloc(n, sizeof *r->messages);
    if (!r->messages) {
        ig_coord_api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        return false;
    }
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m)
    {
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m)) {
            bad(e, param, "'%s' must be an object, got %s", param, type_name(m));
            return false;
        }
        json_t *role = json_object_get(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!json_is_string(role)) {
            bad(e, param, "'%s' must be a string", param);
            return false;
        }
        const char *rs = json_string_value(role);
        if (strcmp(rs, "developer") == 0)
            rs = "system";
        if (strcmp(rs, "system") != 0 && strcmp(rs, "user") != 0 && strcmp(rs, "assistant") != 0) {
            bad(e, param, "'%s' must be one of system, developer, user, assistant; got '%.32s'",
                param, json_string_value(role));
            return false;
        }
        snprintf(r->messages[i].role, sizeof r->messages[i].role, "%s", rs);
        const char *k;
        json_t *val;
        json_object_foreach(m, k, val)
        {
            if (strcmp(k, "role") != 0 && strcmp(k, "content") != 0 && strcmp(k, "name") != 0) {
                char field[24];
                snprintf(field, sizeof field, "%.20s", k);
                snprintf(param, sizeof param, "messages[%zu].%s", i, field);
                bad(e, param, "unrecognized field '%s' (tool calls are not supported)", param);
                return false;
            }
        }
        json_t *content = json_object_get(m, "content");
        if (!content) {
            snprintf(param, sizeof param, "messages[%zu].content", i);
            bad(e, param, "'%s' is required", param);
            return false;
        }
        if (!parse_content(content, i, &r->messages[i].content, e))
            return false;
        r->n_messages = (int32_t)(i + 1);
    }
    return true;
}

static bool parse_prompt(const json_t *v, ig_coord_request *r, ig_coord_api_error *e)
{
    if (json_is_array(v)) {
        if (json_array_size(v) != 1 || !json_is_string(json_array_get(v, 0))) {
            bad(e, "prompt", "'prompt' must be a string or an array holding exactly one string");
            return false;
        }
        v = json_array_get(v, 0);
    }
    if (!json_is_string(v)) {
        bad(e, "prompt", "'prompt' must be a string, got %s", type_name(v));
        return false;
    }
    r->prompt = dup_str(v);
    return r->prompt != NULL;
}

static bool parse_idlegrid(const json_t *v, ig_coord_request *r, ig_coord_api_error *e)
{
    if (json_is_null(v))
        return true;
    if (!json_is_object(v)) {
        bad(e, "idlegrid", "'idlegrid' must be an object, got %s", type_name(v));
        return false;
    }
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)v, k, val)
    {
        if (strcmp(k, "route") == 0) {
            const char *s = json_is_string(val) ? json_string_value(val) : NULL;
            if (s && strcmp(s, "auto") == 0)
                r->route = IG_ROUTE_AUTO;
            else if (s && strcmp(s, "edge") == 0)
                r->route = IG_ROUTE_EDGE;
            else if (s && strcmp(s, "cloud") == 0)
                r->route = IG_ROUTE_CLOUD;
            else {
                bad(e, "idlegrid.route", "'idlegrid.route' must be \"auto\", \"edge\" or \"cloud\"");
                return false;
            }
        } else if (strcmp(k, "deadline_ms") == 0) {
            int64_t d;
            if (!get_int(val, "idlegrid.deadline_ms", 1, IG_COORD_MAX_DEADLINE_MS, &d, e))
                return false;
            r->deadline_ms = d;
        } else if (strcmp(k, "privacy") == 0) {
            if (!json_is_string(val) || strcmp(json_string_value(val), "any") != 0) {
                bad(e, "idlegrid.privacy", "'idlegrid.privacy' supports only \"any\" so far");
                return false;
            }
        } else {
            char param[64];
            snprintf(param, sizeof param, "idlegrid.%.40s", k);
            bad(e, param, "unrecognized field '%s'", param);
            return false;
        }
    }
    return true;
}

/* Fields OpenAI defines whose only supported value is the neutral one. */
static bool neutral_field(const char *k, const json_t *v, ig_coord_api_error *e, bool *handled)
{
    *handled = true;
    if (json_is_null(v))
        return true;
    if (strcmp(k, "frequency_penalty") == 0 || strcmp(k, "presence_penalty") == 0) {
        if (json_is_number(v) && json_number_value(v) == 0)
            return true;
        bad(e, k, "'%s' is not supported (only 0)", k);
        return false;
    }
    if (strcmp(k, "user") == 0) {
        if (json_is_string(v))
            return true;
        bad(e, k, "'user' must be a string, got %s", type_name(v));
        return false;
    }
    if (strcmp(k, "logit_bias") == 0) {
        if (json_is_object(v) && json_object_size(v) == 0)
            return true;
        bad(e, k, "'logit_bias' is not supported");
        return false;
    }
    if (strcmp(k, "echo") == 0) {
        if (json_is_false(v))
            return true;
        bad(e, k, "'echo' is not supported (only false)");
        return false;
    }
    if (strcmp(k, "best_of") == 0) {
        if (json_is_integer(v) && json_integer_value(v) == 1)
            return true;
        bad(e, k, "'best_of' must be 1");
        return false;
    }
    if (strcmp(k, "suffix") == 0) {
        bad(e, k, "'suffix' is not supported");
        return false;
    }
    if (strcmp(k, "response_format") == 0) {
        json_t *t = json_object_get(v, "type");
        if (json_is_object(v) && json_is_string(t) && strcmp(json_string_value(t), "text") == 0)
            return true;
        bad(e, k, "'response_format' supports only {\"type\":\"text\"}");
        return false;
    }
    if (strcmp(k, "parallel_tool_calls") == 0 || strcmp(k, "store") == 0 ||
        strcmp(k, "metadata") == 0 || strcmp(k, "service_tier") == 0)
        return true;
    if (strcmp(k, "tools") == 0 || strcmp(k, "tool_choice") == 0 || strcmp(k, "functions") == 0 ||
        strcmp(k, "function_call") == 0) {
        if (json_is_array(v) && json_array_size(v) == 0)
            return true;
        if (json_is_string(v) && strcmp(json_string_value(v), "none") == 0)
            return true;
        bad(e, k, "'%s' is not supported (no tool calling)", k);
        return false;
    }
    *handled = false;
    return true;
}

bool ig_coord_request_parse(ig_coord_kind kind, const char *body, size_t len,
                            ig_coord_request *r, ig_coord_api_error *e)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->temperature = 1.0f;
    r->top_p = 1.0f;
    r->max_tokens = kind == IG_COORD_CHAT ? 256 : 16;
    r->route = IG_ROUTE_AUTO;
    if (len > IG_COORD_MAX_BODY) {
        ig_coord_api_error_set(e, 413, "invalid_request_error", "request_too_large", NULL,
                               "request body is %zu bytes; the limit is %u", len, IG_COORD_MAX_BODY);
        return false;
    }
    int64_t at = ig_coord_utf8_invalid_at(body, len);
    if (at >= 0) {
        bad(e, NULL, "request body is not valid UTF-8 (byte offset %lld)", (long long)at);
        return false;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        ig_coord_api_error_set(e, 400, "invalid_request_error", "invalid_json", NULL,
                               "request body is not valid JSON: %s (line %d, column %d, byte %d)",
                               je.text, je.line, je.column, je.position);
        return false;
    }
    bool ok = false;
    bool seen_model = false, seen_input = false, seen_max_completion = false;
    bool logprobs_set = false;
    int64_t top_logprobs = -1;
    if (!json_is_object(root)) {
        bad(e, NULL, "request body must be a JSON object, got %s", type_name(root));
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        double d;
        int64_t i;
        bool handled;
        if (strcmp(k, "model") == 0) {
            if (!json_is_string(v)) {
                bad(e, "model", "'model' must be a string, got %s", type_name(v));
                goto out;
            }
            if (json_string_length(v) == 0 || json_string_length(v) >= sizeof r->model) {
                bad(e, "model", "'model' must be 1 to %zu bytes", sizeof r->model - 1);
                goto out;
            }
            snprintf(r->model, sizeof r->model, "%s", json_string_value(v));
            seen_model = true;
        } else if (kind == IG_COORD_COMPLETION && strcmp(k, "prompt") == 0) {
            if (!parse_prompt(v, r, e))
                goto out;
            seen_input = true;
        } else if (kind == IG_COORD_CHAT && strcmp(k, "messages") == 0) {
            if (!parse_messages(v, r, e))
                goto out;
            seen_input = true;
        } else if (strcmp(k, "stream") == 0) {
            if (!json_is_null(v) && !get_bool(v, k, &r->stream, e))
                goto out;
        } else if (strcmp(k, "stream_options") == 0) {
            if (json_is_null(v))
                continue;
            json_t *iu = json_object_get(v, "include_usage");
            if (!json_is_object(v) || (iu && !json_is_boolean(iu))) {
                bad(e, k, "'stream_options' must be {\"include_usage\": boolean}");
                goto out;
            }
            r->include_usage = json_is_true(iu);
        } else if (strcmp(k, "max_tokens") == 0 ||
                   (kind == IG_COORD_CHAT && strcmp(k, "max_completion_tokens") == 0)) {
            if (json_is_null(v))
                continue;
            if (!get_int(v, k, 1, IG_COORD_MAX_TOKENS, &i, e))
                goto out;
            /* max_completion_tokens wins over the deprecated max_tokens */
            if (strcmp(k, "max_completion_tokens") == 0 || !seen_max_completion)
                r->max_tokens = (int32_t)i;
            if (strcmp(k, "max_completion_tokens") == 0)
                seen_max_completion = true;
        } else if (strcmp(k, "temperature") == 0) {
            if (json_is_null(v))
                continue;
            if (!get_number(v, k, 0, 2, &d, e))
                goto out;
            r->temperature = (float)d;
        } else if (strcmp(k, "top_p") == 0) {
            if (json_is_null(v))
                continue;
            if (!get_number(v, k, 0, 1, &d, e))
                goto out;
            if (d <= 0) {
                bad(e, k, "'top_p' must be greater than 0");
                goto out;
            }
            r->top_p = (float)d;
        } else if (strcmp(k, "n") == 0) {
            if (json_is_null(v))
                continue;
            if (!json_is_integer(v) || json_integer_value(v) != 1) {
                bad(e, "n", "'n' must be 1 (one choice per request)");
                goto out;
            }
        } else if (strcmp(k, "seed") == 0) {
            if (json_is_null(v))
                continue;
            if (!json_is_integer(v)) {
                bad(e, "seed", "'seed' must be an integer, got %s", type_name(v));
                goto out;
            }
            r->has_seed = true;
            r->seed = (uint64_t)json_integer_value(v);
        } else if (strcmp(k, "stop") == 0) {
            if (!parse_stop(v, r, e))
                goto out;
        } else if (strcmp(k, "logprobs") == 0) {
            if (json_is_null(v))
                continue;
            if (kind == IG_COORD_CHAT) {
                if (!get_bool(v, k, &r->logprobs, e))
                    goto out;
            } else {
                /* legacy completions: logprobs is how many alternatives (0..5) */
                if (!get_int(v, k, 0, 5, &i, e))
                    goto out;
                r->logprobs = true;
                r->top_logprobs = (int32_t)i;
            }
            logprobs_set = true;
        } else if (kind == IG_COORD_CHAT && strcmp(k, "top_logprobs") == 0) {
            if (json_is_null(v))
                continue;
            if (!get_int(v, k, 0, IG_MAX_TOP_LOGPROBS, &top_logprobs, e))
                goto out;
        } else if (strcmp(k, "idlegrid") == 0) {
            if (!parse_idlegrid(v, r, e))
                goto out;
        } else if (!neutral_field(k, v, e, &handled)) {
            goto out;
        } else if (!handled) {
            char param[64];
            snprintf(param, sizeof param, "%.60s", k);
            bad(e, param, "unrecognized request field '%s'", param);
            goto out;
        }
    }
    if (!seen_model) {
        ig_coord_api_error_set(e, 400, "invalid_request_error", "missing_required_parameter",
                               "model", "'model' is required");
        goto out;
    }
    if (!seen_input) {
        const char *what = kind == IG_COORD_CHAT ? "messages" : "prompt";
        ig_coord_api_error_set(e, 400, "invalid_request_error", "missing_required_parameter", what,
                               "'%s' is required", what);
        goto out;
    }
    if (top_logprobs >= 0) {
        if (!r->logprobs && top_logprobs > 0) {
            bad(e, "top_logprobs", "'top_logprobs' requires 'logprobs': true");
            goto out;
        }
        r->top_logprobs = (int32_t)top_logprobs;
    }
    (void)logprobs_set;
    if (r->include_usage && !r->stream) {
        bad(e, "stream_options", "'stream_options' is only allowed when 'stream' is true");
        goto out;
    }
    ok = true;
out:
    json_decref(root);
    if (!ok)
        ig_coord_request_free(r);
    return ok;
}

void ig_coord_request_free(ig_coord_request *r)
{
    free(r->prompt);
    for (int32_t i = 0; i < r->n_messages; i++)
        free(r->messages[i].content);
    free(r->messages);
    for (int32_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    ig_coord_kind kind = r->kind;
    memset(r, 0, sizeof *r);
    r->kind = kind;
}
