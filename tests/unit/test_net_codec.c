/*
 * test_net_codec.c — the node-link frame codec, message parsers/builders and the
 * ed25519 challenge/response: round trips, every kind of malformed frame rejected
 * with the reason naming the problem, signatures that verify and tampered ones
 * that do not, and the key file's 0600 mode.
 */
#include "net.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Frames a raw payload (no JSON validation) with the given header length. */
static unsigned char *raw_frame(uint32_t hdr_len, const char *payload, size_t n, size_t *out_len)
{
    unsigned char *b = malloc(4 + n + 1);
    b[0] = (unsigned char)(hdr_len >> 24);
    b[1] = (unsigned char)(hdr_len >> 16);
    b[2] = (unsigned char)(hdr_len >> 8);
    b[3] = (unsigned char)hdr_len;
    memcpy(b + 4, payload, n);
    *out_len = 4 + n;
    return b;
}

/* Decodes one exact frame of `payload` and parses it as a message; returns the
 * code and leaves the reason in err. */
static ig_code decode_payload(const char *payload, size_t n, ig_err *err)
{
    size_t len;
    unsigned char *b = raw_frame((uint32_t)n, payload, n, &len);
    json_t *j = NULL;
    ig_code rc = ig_net_frame_decode_exact(b, len, 0, &j, err);
    free(b);
    if (rc != IG_OK)
        return rc;
    ig_msg m;
    rc = ig_msg_parse(j, &m, err);
    json_decref(j);
    ig_msg_deinit(&m);
    return rc;
}

static void expect_reject(const char *payload, const char *reason_part)
{
    ig_err err;
    ig_err_clear(&err);
    ig_code rc = decode_payload(payload, strlen(payload), &err);
    if (rc != IG_ERR_PROTOCOL || !strstr(err.msg, reason_part))
        fail_msg("payload %s: expected a protocol error containing \"%s\", got %s \"%s\"",
                 payload, reason_part, ig_code_name(rc), err.msg);
}

/* Round trip: build → frame → decode → parse. */
static ig_msg roundtrip(const ig_msg *in)
{
    ig_err err;
    json_t *j = ig_msg_to_json(in, &err);
    assert_non_null(j);
    size_t n = 0;
    unsigned char *buf = ig_net_frame_encode(j, 0, &n, &err);
    json_decref(j);
    assert_non_null(buf);
    json_t *back = NULL;
    size_t used = 0;
    /* Fed byte by byte, the decoder asks for more until the whole frame is there. */
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(ig_net_frame_decode(buf, k, 0, &used, &back, &err), IG_OK);
        assert_int_equal(used, 0);
        assert_null(back);
    }
    assert_int_equal(ig_net_frame_decode(buf, n, 0, &used, &back, &err), IG_OK);
    assert_int_equal(used, n);
    free(buf);
    ig_msg out;
    if (ig_msg_parse(back, &out, &err) != IG_OK)
        fail_msg("parse of a built %s failed: %s", ig_msg_type_name(in->type), err.msg);
    json_decref(back);
    assert_int_equal(out.type, in->type);
    return out;
}

static void test_hello_roundtrip_keeps_every_field(void **state)
{
    (void)state;
    ig_msg m;
    ig_msg_init(&m, IG_MSG_HELLO);
    m.hello.version = 1;
    for (int i = 0; i < IG_NET_KEY_BYTES; i++)
        m.hello.node_key[i] = (uint8_t)(i * 7 + 1);
    m.hello.enroll_token = "tok-123";
    m.hello.n_models = 2;
    m.hello.models[0] = (ig_net_model){"edge", IG_NODE_CLASS_EDGE, 2048, "chatml", NULL};
    m.hello.models[1] = (ig_net_model){"cloud", IG_NODE_CLASS_CLOUD, 4096, "llama3", "abcd"};
    m.hello.slots = 3;
    m.hello.tokens_per_second = 42.5;
    m.hello.threads = 2;
    m.hello.name = "car-7 ünïcode";
    ig_msg out = roundtrip(&m);
    assert_int_equal(out.hello.version, 1);
    assert_memory_equal(out.hello.node_key, m.hello.node_key, IG_NET_KEY_BYTES);
    assert_string_equal(out.hello.enroll_token, "tok-123");
    assert_int_equal(out.hello.n_models, 2);
    assert_string_equal(out.hello.models[1].id, "cloud");
    assert_int_equal(out.hello.models[1].cls, IG_NODE_CLASS_CLOUD);
    assert_int_equal(out.hello.models[1].n_ctx, 4096);
    assert_string_equal(out.hello.models[1].chat_family, "llama3");
    assert_string_equal(out.hello.models[1].file_sha, "abcd");
    assert_null(out.hello.models[0].file_sha);
    assert_int_equal(out.hello.slots, 3);
    assert_true(out.hello.tokens_per_second == 42.5);
    assert_string_equal(out.hello.name, "car-7 ünïcode");
    ig_msg_deinit(&out);

    m.hello.enroll_token = NULL;
    out = roundtrip(&m);
    assert_null(out.hello.enroll_token);
    ig_msg_deinit(&out);
}

static void test_job_roundtrip_keeps_params_messages_and_resume(void **state)
{
    (void)state;
    ig_msg m;
    ig_msg_init(&m, IG_MSG_JOB);
    ig_msg_job *j = &m.job;
    j->job_id = "job-1";
    j->model = "edge";
    j->kind = IG_JOB_CHAT;
    ig_chat_message msgs[2] = {{"system", "be brief"}, {"user", "hi \"there\"\n"}};
    j->messages = msgs;
    j->n_messages = 2;
    j->params = ig_net_default_gen_params();
    j->params.max_tokens = 17;
    j->params.sampler.temperature = 0.5f;
    j->params.sampler.top_p = 0.9f;
    j->params.sampler.top_k = 40;
    j->params.sampler.min_p = 0.05f;
    j->params.sampler.repeat_penalty = 1.1f;
    j->params.sampler.seed = 1234567890123ULL;
    j->params.stop[0] = "\n\n";
    j->params.stop[1] = "END";
    j->params.n_stop = 2;
    j->params.top_logprobs = 3;
    j->logprobs = true;
    int32_t resume[3] = {5, 0, 70000};
    j->resume = resume;
    j->n_resume = 3;
    j->deadline_ms = 30000;
    ig_msg out = roundtrip(&m);
    const ig_msg_job *o = &out.job;
    assert_string_equal(o->job_id, "job-1");
    assert_int_equal(o->kind, IG_JOB_CHAT);
    assert_int_equal(o->n_messages, 2);
    assert_string_equal(o->messages[1].role, "user");
    assert_string_equal(o->messages[1].content, "hi \"there\"\n");
    assert_int_equal(o->params.max_tokens, 17);
    assert_true(o->params.sampler.temperature == 0.5f);
    assert_true(o->params.sampler.top_p == 0.9f);
    assert_int_equal(o->params.sampler.top_k, 40);
    assert_true(o->params.sampler.min_p == 0.05f);
    assert_true(o->params.sampler.repeat_penalty == 1.1f);
    assert_true(o->params.sampler.seed == 1234567890123ULL);
    assert_int_equal(o->params.n_stop, 2);
    assert_string_equal(o->params.stop[1], "END");
    assert_int_equal(o->params.top_logprobs, 3);
    assert_true(o->logprobs);
    assert_int_equal(o->n_resume, 3);
    assert_int_equal(o->resume[2], 70000);
    assert_int_equal(o->deadline_ms, 30000);
    ig_msg_deinit(&out);

    /* A completion prompt may carry a NUL byte; its length survives. */
    ig_msg c;
    ig_msg_init(&c, IG_MSG_JOB);
    c.job.job_id = "job-2";
    c.job.model = "edge";
    c.job.kind = IG_JOB_COMPLETION;
    c.job.prompt = "a\0b";
    c.job.prompt_len = 3;
    c.job.params = ig_net_default_gen_params();
    c.job.params.max_tokens = 1;
    out = roundtrip(&c);
    assert_int_equal(out.job.prompt_len, 3);
    assert_memory_equal(out.job.prompt, "a\0b", 3);
    assert_int_equal(out.job.n_resume, 0);
    ig_msg_deinit(&out);
}

static void test_tokens_and_done_roundtrip(void **state)
{
    (void)state;
    ig_net_token items[2];
    memset(items, 0, sizeof items);
    items[0].id = 11;
    items[0].text = "Hel";
    items[0].text_len = 3;
    items[0].logprob = -0.25f;
    items[0].n_top = 2;
    items[0].top[0] = (ig_net_top_token){11, "Hel", 3, -0.25f};
    items[0].top[1] = (ig_net_top_token){12, "\xef\xbf\xbd", 3, -1.0f / 0.0f}; /* -inf */
    items[1].id = 0;
    items[1].text = "";
    items[1].text_len = 0;
    items[1].logprob = -3.5f;
    ig_msg m;
    ig_msg_init(&m, IG_MSG_TOKENS);
    m.tokens.job_id = "j";
    m.tokens.index = 7;
    m.tokens.items = items;
    m.tokens.n_items = 2;
    ig_msg out = roundtrip(&m);
    assert_int_equal(out.tokens.index, 7);
    assert_int_equal(out.tokens.n_items, 2);
    assert_string_equal(out.tokens.items[0].text, "Hel");
    assert_int_equal(out.tokens.items[0].n_top, 2);
    assert_true(out.tokens.items[0].top[1].logprob < -1e29f);
    assert_int_equal(out.tokens.items[1].text_len, 0);
    assert_true(out.tokens.items[1].logprob == -3.5f);
    ig_msg_deinit(&out);

    ig_msg d;
    ig_msg_init(&d, IG_MSG_DONE);
    d.done.job_id = "j";
    d.done.finish = IG_FINISH_EOS;
    d.done.prompt_tokens = 5;
    d.done.completion_tokens = 9;
    d.done.prefill_ms = 1.5;
    d.done.decode_ms = 20;
    out = roundtrip(&d);
    assert_int_equal(out.done.finish, IG_FINISH_EOS);
    assert_int_equal(out.done.completion_tokens, 9);
    assert_true(out.done.prefill_ms == 1.5);
    ig_msg_deinit(&out);

    /* done with a finish reason that is not a wire value cannot be built */
    d.done.finish = IG_FINISH_CANCELLED;
    ig_err err;
    assert_null(ig_msg_to_json(&d, &err));
    assert_non_null(strstr(err.msg, "finish_reason"));
}

/* A node writes each tokens frame directly (ig_net_msg_frame_encode, no JSON tree):
 * it must carry exactly what the JSON-built frame carries — escapes, control bytes,
 * NUL, multi-byte UTF-8, alternatives, non-finite logprobs — and refuse what the JSON
 * builder refuses (invalid UTF-8). */
static void test_direct_tokens_frame_equals_the_json_built_one(void **state)
{
    (void)state;
    static const char weird[] = "q\"uo\\te\n\t\r\b\f\x01\x1f\x7f/\0end \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    ig_net_token items[3];
    memset(items, 0, sizeof items);
    items[0].id = 17;
    items[0].text = weird;
    items[0].text_len = sizeof weird - 1;
    items[0].logprob = -0.1f;
    items[0].n_top = 3;
    items[0].top[0] = (ig_net_top_token){17, weird, sizeof weird - 1, -0.1f};
    items[0].top[1] = (ig_net_top_token){3, "", 0, -INFINITY};
    items[0].top[2] = (ig_net_top_token){999999, "x", 1, -12345.678f};
    items[1].id = -1; /* a text-only flush item */
    items[1].text = "tail";
    items[1].text_len = 4;
    items[1].logprob = NAN;
    items[2].id = 5;
    items[2].text = NULL; /* "" */
    items[2].logprob = 0.0f;
    ig_msg m;
    ig_msg_init(&m, IG_MSG_TOKENS);
    m.tokens.job_id = "cmpl-\"1\"";
    m.tokens.index = 2147483647;
    m.tokens.items = items;
    m.tokens.n_items = 3;

    ig_err err;
    size_t n_direct = 0, n_json = 0;
    unsigned char *direct = ig_net_msg_frame_encode(&m, 0, &n_direct, &err);
    assert_non_null(direct);
    json_t *j = ig_msg_to_json(&m, &err);
    assert_non_null(j);
    unsigned char *built = ig_net_frame_encode(j, 0, &n_json, &err);
    json_decref(j);
    assert_non_null(built);

    json_t *a = NULL, *b = NULL;
    size_t used;
    assert_int_equal(ig_net_frame_decode(direct, n_direct, 0, &used, &a, &err), IG_OK);
    assert_int_equal(used, n_direct);
    assert_int_equal(ig_net_frame_decode(built, n_json, 0, &used, &b, &err), IG_OK);
    ig_msg x, y;
    if (ig_msg_parse(a, &x, &err) != IG_OK)
        fail_msg("direct frame: %s", err.msg);
    assert_int_equal(ig_msg_parse(b, &y, &err), IG_OK);
    assert_string_equal(x.tokens.job_id, y.tokens.job_id);
    assert_true(x.tokens.index == y.tokens.index);
    assert_int_equal(x.tokens.n_items, y.tokens.n_items);
    for (int32_t i = 0; i < x.tokens.n_items; i++) {
        const ig_net_token *p = &x.tokens.items[i], *q = &y.tokens.items[i];
        assert_int_equal(p->id, q->id);
        assert_int_equal(p->text_len, q->text_len);
        assert_memory_equal(p->text, q->text, p->text_len);
        assert_true(p->logprob == q->logprob);
        assert_int_equal(p->n_top, q->n_top);
        for (int32_t k = 0; k < p->n_top; k++) {
            assert_int_equal(p->top[k].id, q->top[k].id);
            assert_int_equal(p->top[k].text_len, q->top[k].text_len);
            assert_memory_equal(p->top[k].text, q->top[k].text, p->top[k].text_len);
            assert_true(p->top[k].logprob == q->top[k].logprob);
        }
    }
    assert_int_equal(x.tokens.items[0].text_len, sizeof weird - 1);
    assert_true(x.tokens.items[0].logprob == -0.1f);
    /* apart from how reals are printed, the JSON is the same, key order included */
    json_t *ia = json_object_get(json_array_get(json_object_get(a, "items"), 0), "top");
    json_t *ib = json_object_get(json_array_get(json_object_get(b, "items"), 0), "top");
    json_object_del(json_array_get(ia, 0), "logprob");
    json_object_del(json_array_get(ib, 0), "logprob");
    for (size_t i = 0; i < 3; i++) {
        json_object_del(json_array_get(json_object_get(a, "items"), i), "logprob");
        json_object_del(json_array_get(json_object_get(b, "items"), i), "logprob");
    }
    json_object_del(json_array_get(ia, 1), "logprob");
    json_object_del(json_array_get(ib, 1), "logprob");
    json_object_del(json_array_get(ia, 2), "logprob");
    json_object_del(json_array_get(ib, 2), "logprob");
    assert_true(json_equal(a, b));
    char *sa = json_dumps(a, JSON_COMPACT), *sb = json_dumps(b, JSON_COMPACT);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
    ig_msg_deinit(&x);
    ig_msg_deinit(&y);
    json_decref(a);
    json_decref(b);
    free(direct);
    free(built);

    /* invalid UTF-8 is refused by both, naming the field */
    items[2].text = "\xff";
    items[2].text_len = 1;
    assert_null(ig_net_msg_frame_encode(&m, 0, &n_direct, &err));
    assert_non_null(strstr(err.msg, "items.text"));
    assert_null(ig_msg_to_json(&m, &err));
    /* a frame over the limit is refused */
    items[2].text = "ok";
    items[2].text_len = 2;
    assert_null(ig_net_msg_frame_encode(&m, 64, &n_direct, &err));
    assert_int_equal(err.code, IG_ERR_RANGE);
}

static void test_small_messages_roundtrip(void **state)
{
    (void)state;
    ig_msg m, out;
    ig_msg_init(&m, IG_MSG_CHALLENGE);
    ig_net_random_nonce(m.challenge.nonce);
    out = roundtrip(&m);
    assert_memory_equal(out.challenge.nonce, m.challenge.nonce, IG_NET_NONCE_BYTES);
    ig_msg_deinit(&out);

    ig_msg_init(&m, IG_MSG_WELCOME);
    m.welcome.node_id = "n-1";
    m.welcome.heartbeat_ms = 5000;
    out = roundtrip(&m);
    assert_string_equal(out.welcome.node_id, "n-1");
    assert_int_equal(out.welcome.heartbeat_ms, 5000);
    ig_msg_deinit(&out);

    ig_msg_init(&m, IG_MSG_PING);
    m.ping.t = 123456789;
    m.ping.has_load = true;
    m.ping.active = 1;
    m.ping.free_slots = 2;
    out = roundtrip(&m);
    assert_true(out.ping.has_load);
    assert_int_equal(out.ping.free_slots, 2);
    ig_msg_deinit(&out);

    ig_msg_init(&m, IG_MSG_JOB_ERROR);
    m.job_error.job_id = "j";
    m.job_error.reason = "context full";
    out = roundtrip(&m);
    assert_string_equal(out.job_error.reason, "context full");
    ig_msg_deinit(&out);

    const ig_msg_type simple[] = {IG_MSG_ACCEPT, IG_MSG_CANCEL, IG_MSG_REJECT, IG_MSG_HANDBACK};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        ig_msg_init(&m, simple[i]);
        if (simple[i] == IG_MSG_REJECT || simple[i] == IG_MSG_HANDBACK) {
            m.reject.job_id = "job-x";
            m.reject.reason = "busy";
        } else {
            m.accept.job_id = "job-x";
        }
        out = roundtrip(&m);
        assert_string_equal(out.accept.job_id, "job-x");
        ig_msg_deinit(&out);
    }
}

static void test_frame_of_length_zero_is_rejected(void **state)
{
    (void)state;
    ig_err err;
    unsigned char b[4] = {0, 0, 0, 0};
    json_t *j;
    size_t used;
    assert_int_equal(ig_net_frame_decode(b, 4, 0, &used, &j, &err), IG_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "frame length is 0"));
}

static void test_frame_over_the_limit_is_rejected_from_its_header(void **state)
{
    (void)state;
    ig_err err;
    json_t *j;
    size_t used;
    unsigned char b[4] = {0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */
    assert_int_equal(ig_net_frame_decode(b, 4, 0, &used, &j, &err), IG_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "exceeds the limit of 1048576"));
    unsigned char big[4] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(ig_net_frame_decode(big, 4, 0, &used, &j, &err), IG_ERR_PROTOCOL);
    /* and a smaller configured limit applies */
    unsigned char b100[4] = {0, 0, 0, 100};
    assert_int_equal(ig_net_frame_decode(b100, 4, 99, &used, &j, &err), IG_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "limit of 99"));
    /* encoding refuses what the peer would refuse */
    json_t *o = json_pack("{s:s,s:s%}", "type", "error", "message", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", (size_t)51);
    size_t n;
    assert_null(ig_net_frame_encode(o, 20, &n, &err));
    assert_int_equal(err.code, IG_ERR_RANGE);
    json_decref(o);
}

static void test_truncated_frame_is_rejected(void **state)
{
    (void)state;
    ig_err err;
    json_t *j;
    const char *p = "{\"type\":\"ping\",\"t\":1}";
    size_t len;
    unsigned char *b = raw_frame((uint32_t)strlen(p), p, strlen(p), &len);
    assert_int_equal(ig_net_frame_decode_exact(b, len - 3, 0, &j, &err), IG_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "truncated frame: header announces 21 bytes, 18 present"));
    assert_int_equal(ig_net_frame_decode_exact(b, 2, 0, &j, &err), IG_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "truncated frame: 2 of the 4 header bytes"));
    free(b);
    /* trailing garbage after an exact frame */
    b = raw_frame((uint32_t)strlen(p), p, strlen(p), &len);
    unsigned char *b2 = malloc(len + 2);
    memcpy(b2, b, len);
    b2[len] = 0;
    b2[len + 1] = 0;
    assert_int_equal(ig_net_frame_decode_exact(b2, len + 2, 0, &j, &err), IG_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "2 trailing bytes"));
    free(b);
    free(b2);
}

static void test_bad_json_is_rejected_with_position(void **state)
{
    (void)state;
    expect_reject("{\"type\":\"ping\",", "not valid JSON");
    expect_reject("{\"type\":\"ping\",\"t\":1} x", "not valid JSON");
    expect_reject("[1,2]", "not a JSON object");
    expect_reject("\"ping\"", "not valid JSON"); /* jansson: a bare string is refused too */
    expect_reject("{\"type\":\"ping\",\"t\":1,\"t\":2}", "duplicate");
}

static void test_bad_utf8_is_rejected_with_offset(void **state)
{
    (void)state;
    expect_reject("{\"type\":\"error\",\"message\":\"\xff\"}", "not valid UTF-8 at byte 27");
    expect_reject("{\"type\":\"error\",\"message\":\"\xc0\xaf\"}", "not valid UTF-8 at byte 27");
    expect_reject("{\"type\":\"error\",\"message\":\"\xed\xa0\x80\"}", "not valid UTF-8"); /* surrogate */
    expect_reject("{\"type\":\"error\",\"message\":\"\xe2\x82\"}", "not valid UTF-8");     /* cut */
}

static void test_missing_or_unknown_type_is_rejected(void **state)
{
    (void)state;
    expect_reject("{\"t\":1}", "no field 'type'");
    expect_reject("{\"type\":7}", "field 'type' must be a string");
    expect_reject("{\"type\":\"launch\"}", "unknown message type 'launch'");
}

static void test_wrong_or_missing_fields_are_named(void **state)
{
    (void)state;
    const char *key = "\"node_key\":\"0000000000000000000000000000000000000000000000000000000000000000\"";
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"type\":\"hello\",\"version\":1,%s,\"models\":[{\"id\":\"edge\",\"class\":\"edge\","
             "\"n_ctx\":2048,\"chat_family\":\"plain\"}],\"slots\":\"2\",\"tokens_per_second\":1,"
             "\"threads\":1,\"name\":\"n\"}",
             key);
    expect_reject(buf, "hello: field 'slots' must be an integer");
    snprintf(buf, sizeof buf,
             "{\"type\":\"hello\",\"version\":1,%s,\"models\":[{\"id\":\"edge\",\"class\":\"phone\","
             "\"n_ctx\":2048,\"chat_family\":\"plain\"}],\"slots\":2,\"tokens_per_second\":1,"
             "\"threads\":1,\"name\":\"n\"}",
             key);
    expect_reject(buf, "hello: field 'models[0].class' must be \"edge\" or \"cloud\"");
    expect_reject("{\"type\":\"hello\",\"version\":1,\"node_key\":\"zz\"}", "hello: field 'node_key'");
    expect_reject("{\"type\":\"challenge\",\"nonce\":\"0123\"}", "challenge: field 'nonce' must be 64 hex digits");
    expect_reject("{\"type\":\"welcome\",\"node_id\":\"n\"}", "welcome: missing field 'heartbeat_ms'");
    expect_reject("{\"type\":\"job\",\"job_id\":\"j\",\"model\":\"edge\",\"kind\":\"completion\","
                  "\"prompt\":\"x\",\"params\":{\"seed\":1}}",
                  "job: missing field 'params.max_tokens'");
    expect_reject("{\"type\":\"job\",\"job_id\":\"j\",\"model\":\"edge\",\"kind\":\"completion\","
                  "\"prompt\":\"x\",\"params\":{\"max_tokens\":4,\"seed\":1,\"temperature\":\"hot\"}}",
                  "job: field 'params.temperature' must be a number");
    expect_reject("{\"type\":\"job\",\"job_id\":\"j\",\"model\":\"edge\",\"kind\":\"chat\","
                  "\"messages\":[{\"role\":\"user\",\"content\":5}],\"params\":{\"max_tokens\":4,\"seed\":1}}",
                  "job: field 'messages[0].content' must be a string");
    expect_reject("{\"type\":\"job\",\"job_id\":\"j\",\"model\":\"edge\",\"kind\":\"completion\","
                  "\"prompt\":\"x\",\"resume\":[1,-2],\"params\":{\"max_tokens\":4,\"seed\":1}}",
                  "job: field 'resume[1]'");
    expect_reject("{\"type\":\"tokens\",\"job_id\":\"j\",\"index\":0,\"items\":[{\"id\":1,\"text\":\"a\"}]}",
                  "tokens: missing field 'items[0].logprob'");
    expect_reject("{\"type\":\"tokens\",\"job_id\":\"j\",\"index\":0,\"items\":[]}",
                  "tokens: field 'items' must hold at least one token");
    expect_reject("{\"type\":\"done\",\"job_id\":\"j\",\"finish_reason\":\"tired\",\"prompt_tokens\":1,"
                  "\"completion_tokens\":1}",
                  "done: field 'finish_reason'");
    expect_reject("{\"type\":\"accept\",\"job_id\":\"\"}", "accept: field 'job_id' must not be empty");
    expect_reject("{\"type\":\"cancel\",\"job_id\":\"a\\u0000b\"}", "must not contain a NUL");
    expect_reject("{\"type\":\"ping\",\"t\":1.5}", "ping: field 't' must be an integer");
}

static void test_signature_verifies_and_tampering_fails(void **state)
{
    (void)state;
    ig_net_keypair kp, other;
    assert_int_equal(ig_net_keypair_generate(&kp, NULL), IG_OK);
    assert_int_equal(ig_net_keypair_generate(&other, NULL), IG_OK);
    uint8_t nonce[IG_NET_NONCE_BYTES], sig[IG_NET_SIG_BYTES];
    ig_net_random_nonce(nonce);
    ig_net_auth_sign(&kp, nonce, sig);
    assert_true(ig_net_auth_verify(kp.pk, nonce, sig));
    /* a flipped bit in the signature, the nonce or the key: rejected */
    sig[10] ^= 1;
    assert_false(ig_net_auth_verify(kp.pk, nonce, sig));
    sig[10] ^= 1;
    nonce[0] ^= 0x80;
    assert_false(ig_net_auth_verify(kp.pk, nonce, sig));
    nonce[0] ^= 0x80;
    assert_false(ig_net_auth_verify(other.pk, nonce, sig));
    assert_true(ig_net_auth_verify(kp.pk, nonce, sig));
    /* a signature survives the auth message's hex encoding */
    ig_msg m;
    ig_msg_init(&m, IG_MSG_AUTH);
    memcpy(m.auth.signature, sig, sizeof sig);
    ig_msg out = roundtrip(&m);
    assert_true(ig_net_auth_verify(kp.pk, nonce, out.auth.signature));
    ig_msg_deinit(&out);
}

static void test_key_file_is_private_and_reloads(void **state)
{
    (void)state;
    char dir[] = "/tmp/ig-net-keys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[256], path[300];
    snprintf(sub, sizeof sub, "%s/data", dir);
    snprintf(path, sizeof path, "%s/node.key", sub);
    ig_net_keypair a, b;
    bool created = false;
    ig_err err;
    assert_int_equal(ig_net_keypair_load_or_create(sub, &a, &created, &err), IG_OK);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ig_net_keypair_load_or_create(sub, &b, &created, &err), IG_OK);
    assert_false(created);
    assert_memory_equal(a.pk, b.pk, IG_NET_KEY_BYTES);
    assert_memory_equal(a.sk, b.sk, IG_NET_SECRET_BYTES);
    /* a key file others can read is refused */
    chmod(path, 0644);
    assert_int_equal(ig_net_keypair_load(path, &b, &err), IG_ERR_AUTH);
    assert_non_null(strstr(err.msg, "0644"));
    chmod(path, 0600);
    /* a corrupt one too */
    FILE *f = fopen(path, "w");
    fputs("not hex\n", f);
    fclose(f);
    assert_int_equal(ig_net_keypair_load(path, &b, &err), IG_ERR_FORMAT);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

static void test_host_port_parsing(void **state)
{
    (void)state;
    char host[64];
    int port;
    ig_err err;
    assert_int_equal(ig_net_parse_host_port("127.0.0.1:7070", host, sizeof host, &port, false, &err), IG_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 7070);
    assert_int_equal(ig_net_parse_host_port("[::1]:80", host, sizeof host, &port, false, &err), IG_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(ig_net_parse_host_port("host", host, sizeof host, &port, false, &err), IG_ERR_INVALID);
    assert_int_equal(ig_net_parse_host_port("h:0", host, sizeof host, &port, false, &err), IG_ERR_INVALID);
    assert_int_equal(ig_net_parse_host_port("h:0", host, sizeof host, &port, true, &err), IG_OK);
    assert_int_equal(ig_net_parse_host_port("h:70000", host, sizeof host, &port, false, &err), IG_ERR_INVALID);
}

int main(void)
{
    ig_net_log_set_level(IG_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_roundtrip_keeps_every_field),
        cmocka_unit_test(test_job_roundtrip_keeps_params_messages_and_resume),
        cmocka_unit_test(test_tokens_and_done_roundtrip),
        cmocka_unit_test(test_direct_tokens_frame_equals_the_json_built_one),
        cmocka_unit_test(test_small_messages_roundtrip),
        cmocka_unit_test(test_frame_of_length_zero_is_rejected),
        cmocka_unit_test(test_frame_over_the_limit_is_rejected_from_its_header),
        cmocka_unit_test(test_truncated_frame_is_rejected),
        cmocka_unit_test(test_bad_json_is_rejected_with_position),
        cmocka_unit_test(test_bad_utf8_is_rejected_with_offset),
        cmocka_unit_test(test_missing_or_unknown_type_is_rejected),
        cmocka_unit_test(test_wrong_or_missing_fields_are_named),
        cmocka_unit_test(test_signature_verifies_and_tampering_fails),
        cmocka_unit_test(test_key_file_is_private_and_reloads),
        cmocka_unit_test(test_host_port_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
