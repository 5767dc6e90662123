/*
 * sse.c — what the buyer receives, in OpenAI's shapes: the whole-response JSON of
 * /v1/completions and /v1/chat/completions, and the server-sent-event chunks of their
 * streams ("data: {...}\n\n", the usage chunk, the error event).
 *
 * Built from a job's forwarded tokens only (job->tokens), so a failover is invisible
 * here: the text is the concatenation of the tokens' released text, whichever node
 * produced them. Where it ran goes in the "idlegrid" object.
 */
#include "coord_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *finish_reason_openai(const char *r)
{
    if (!r || !*r)
        return NULL;
    if (strcmp(r, "length") == 0 || strcmp(r, "context") == 0)
        return "length";
    return "stop"; /* "stop" (a stop string) and "eos" (the model ended) */
}

json_t *response_idlegrid_object(ig_job *j)
{
    json_t *o = json_object();
    const char *last = j->n_nodes ? j->nodes[j->n_nodes - 1] : "";
    json_object_set_new(o, "node", json_string(last));
    if (j->n_nodes > 1) {
        json_t *arr = json_array();
        for (int32_t i = 0; i < j->n_nodes; i++)
            json_array_append_new(arr, json_string(j->nodes[i]));
        json_object_set_new(o, "nodes", arr);
    }
    json_object_set_new(o, "model_class", json_string(j->served_cloud ? "cloud" : "edge"));
    json_object_set_new(o, "failovers", json_integer(j->failovers));
    json_object_set_new(o, "seed", json_integer((json_int_t)j->seed));
    return o;
}

static json_t *bytes_array(const char *s)
{
    json_t *a = json_array();
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        json_array_append_new(a, json_integer(*p));
    return a;
}

/* chat: {"content":[{token, logprob, bytes, top_logprobs:[...]}], "refusal":null} */
static json_t *chat_logprobs(ig_job *j, int32_t from, int32_t to)
{
    json_t *content = json_array();
    for (int32_t i = from; i < to; i++) {
        const gen_token *t = &j->tokens[i];
        if (t->id < 0)
            continue;
        json_t *tops = json_array();
        for (int32_t k = 0; k < t->n_top && k < j->req.top_logprobs; k++)
            json_array_append_new(tops, json_pack("{s:s,s:f,s:o}", "token", t->top[k].text, "logprob",
                                                  (double)t->top[k].logprob, "bytes",
                                                  bytes_array(t->top[k].text)));
        json_array_append_new(content, json_pack("{s:s,s:f,s:o,s:o}", "token", t->text, "logprob",
                                                 (double)t->logprob, "bytes", bytes_array(t->text),
                                                 "top_logprobs", tops));
    }
    return json_pack("{s:o,s:n}", "content", content, "refusal");
}

/* completions (legacy): {tokens, token_logprobs, top_logprobs:[{text: logprob}], text_offset} */
static json_t *completion_logprobs(ig_job *j, int32_t from, int32_t to, size_t offset)
{
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    for (int32_t i = from; i < to; i++) {
        const gen_token *t = &j->tokens[i];
        if (t->id < 0) {
            offset += strlen(t->text);
            continue;
        }
        json_array_append_new(tokens, json_string(t->text));
        json_array_append_new(lps, json_real(t->logprob));
        json_t *top = json_object();
        for (int32_t k = 0; k < t->n_top && k < j->req.top_logprobs; k++)
            if (!json_object_get(top, t->top[k].text))
                json_object_set_new(top, t->top[k].text, json_real(t->top[k].logprob));
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer((json_int_t)offset));
        offset += strlen(t->text);
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs",
                     tops, "text_offset", offs);
}

static char *text_of(ig_job *j, int32_t from, int32_t to, size_t *offset_before)
{
    size_t n = 0, before = 0;
    for (int32_t i = 0; i < from; i++)
        before += strlen(j->tokens[i].text);
    for (int32_t i = from; i < to; i++)
        n += strlen(j->tokens[i].text);
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    size_t at = 0;
    for (int32_t i = from; i < to; i++) {
        size_t k = strlen(j->tokens[i].text);
        memcpy(s + at, j->tokens[i].text, k);
        at += k;
    }
    s[at] = '\0';
    if (offset_before)
        *offset_before = before;
    return s;
}

int32_t job_completion_tokens(const ig_job *j)
{
    /* A final item with id -1 only releases held-back text (after EOS): not a token. */
    int32_t n = 0;
    for (int32_t i = 0; i < j->n_tokens; i++)
        n += j->tokens[i].id >= 0;
    return n;
}

static json_t *usage(ig_job *j)
{
    int32_t n = job_completion_tokens(j);
    return json_pack("{s:i,s:i,s:i}", "prompt_tokens", j->prompt_tokens, "completion_tokens", n,
                     "total_tokens", j->prompt_tokens + n);
}

static json_t *envelope(ig_job *j, const char *object)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:n}", "id", j->id, "object", object, "created",
                     (json_int_t)j->created, "model", j->req.model, "system_fingerprint");
}

static char *dump_sse(json_t *o)
{
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!body)
        return NULL;
    size_t n = strlen(body);
    char *s = malloc(n + 9);
    if (s) {
        memcpy(s, "data: ", 6);
        memcpy(s + 6, body, n);
        memcpy(s + 6 + n, "\n\n", 3);
    }
    free(body);
    return s;
}

static char *put_json_string(char *out, const char *s)
{
    *out++ = '"';
    out = ig_net_json_escape(out, s, strlen(s));
    *out++ = '"';
    return out;
}

/* The chunk of a stream's tokens without logprobs and before the finish — one per
 * relayed token, the common case — written directly: the same bytes the JSON tree
 * of sse_chunk produces (the same fields in the same order), without building a tree
 * per token. */
static char *sse_text_chunk(ig_job *j, int32_t from, int32_t to)
{
    bool chat = j->req.kind == IG_COORD_CHAT;
    size_t text_len = 0;
    for (int32_t i = from; i < to; i++)
        text_len += strlen(j->tokens[i].text);
    size_t cap = 6 * (text_len + strlen(j->id) + strlen(j->req.model)) + 256;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    char *w = out;
    w += sprintf(w, "data: {\"id\":");
    w = put_json_string(w, j->id);
    w += sprintf(w, ",\"object\":\"%s\",\"created\":%lld,\"model\":",
                 chat ? "chat.completion.chunk" : "text_completion", (long long)j->created);
    w = put_json_string(w, j->req.model);
    w += sprintf(w, ",\"system_fingerprint\":null,\"choices\":[{\"index\":0,");
    if (chat) {
        w += sprintf(w, "\"delta\":{%s\"content\":\"", j->sent_role ? "" : "\"role\":\"assistant\",");
        j->sent_role = true;
    } else {
        w += sprintf(w, "\"text\":\"");
    }
    for (int32_t i = from; i < to; i++)
        w = ig_net_json_escape(w, j->tokens[i].text, strlen(j->tokens[i].text));
    w += sprintf(w, "\"%s,\"logprobs\":null,\"finish_reason\":null}]}\n\n", chat ? "}" : "");
    assert((size_t)(w - out) < cap);
    return out;
}

char *sse_chunk(ig_job *j, int32_t from, int32_t to, const char *finish_reason)
{
    if (!finish_reason && !j->req.logprobs && to > from)
        return sse_text_chunk(j, from, to);
    size_t before = 0;
    char *text = text_of(j, from, to, &before);
    if (!text)
        return NULL;
    const char *fr = finish_reason_openai(finish_reason);
    json_t *choice;
    json_t *o;
    if (j->req.kind == IG_COORD_CHAT) {
        o = envelope(j, "chat.completion.chunk");
        json_t *delta = json_object();
        if (!j->sent_role) {
            json_object_set_new(delta, "role", json_string("assistant"));
            j->sent_role = true;
        }
        if (!fr || to > from)
            json_object_set_new(delta, "content", json_string(text));
        choice = json_pack("{s:i,s:o}", "index", 0, "delta", delta);
        json_object_set_new(choice, "logprobs",
                            j->req.logprobs && to > from ? chat_logprobs(j, from, to) : json_null());
    } else {
        o = envelope(j, "text_completion");
        choice = json_pack("{s:i,s:s}", "index", 0, "text", text);
        json_object_set_new(choice, "logprobs", j->req.logprobs && to > from
                                                    ? completion_logprobs(j, from, to, before)
                                                    : json_null());
    }
    json_object_set_new(choice, "finish_reason", fr ? json_string(fr) : json_null());
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    if (fr)
        json_object_set_new(o, "idlegrid", response_idlegrid_object(j));
    free(text);
    return dump_sse(o);
}

char *sse_usage_chunk(ig_job *j)
{
    json_t *o = envelope(j, j->req.kind == IG_COORD_CHAT ? "chat.completion.chunk" : "text_completion");
    json_object_set_new(o, "choices", json_array());
    json_object_set_new(o, "usage", usage(j));
    return dump_sse(o);
}

char *response_body(ig_job *j)
{
    char *text = text_of(j, 0, j->n_tokens, NULL);
    if (!text)
        return NULL;
    const char *fr = finish_reason_openai(j->finish_reason);
    json_t *o, *choice;
    if (j->req.kind == IG_COORD_CHAT) {
        o = envelope(j, "chat.completion");
        choice = json_pack("{s:i,s:{s:s,s:s,s:n}}", "index", 0, "message", "role", "assistant",
                           "content", text, "refusal");
        json_object_set_new(choice, "logprobs",
                            j->req.logprobs ? chat_logprobs(j, 0, j->n_tokens) : json_null());
    } else {
        o = envelope(j, "text_completion");
        choice = json_pack("{s:i,s:s}", "index", 0, "text", text);
        json_object_set_new(choice, "logprobs",
                            j->req.logprobs ? completion_logprobs(j, 0, j->n_tokens, 0) : json_null());
    }
    json_object_set_new(choice, "finish_reason", fr ? json_string(fr) : json_null());
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    json_object_set_new(o, "usage", usage(j));
    json_object_set_new(o, "idlegrid", response_idlegrid_object(j));
    free(text);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
