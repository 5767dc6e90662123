/*
 * test_coord_request.c — request bodies: valid shapes parse into the right fields;
 * each kind of bad body is a 400 (or 413) naming the field and why.
 */
#include "coord.h"
#include "ig_check.h"

#include <stdlib.h>
#include <string.h>

static bool parse(ig_coord_kind kind, const char *body, ig_coord_request *r, ig_coord_api_error *e)
{
    return ig_coord_request_parse(kind, body, strlen(body), r, e);
}

static void expect_bad(ig_coord_kind kind, const char *body, int status, const char *param,
                       const char *needle)
{
    ig_coord_request r;
    ig_coord_api_error e;
    memset(&e, 0, sizeof e);
    bool ok = parse(kind, body, &r, &e);
    IG_CHECK(!ok, "refused: %s", body);
    if (ok) {
        ig_coord_request_free(&r);
        return;
    }
    IG_CHECK(e.status == status, "status %d for %s", e.status, body);
    IG_CHECK(strcmp(e.param, param) == 0, "param '%s' (want '%s') for %s", e.param, param, body);
    IG_CHECK(strstr(e.message, needle) != NULL, "message '%s' lacks '%s'", e.message, needle);
    char *json = ig_coord_api_error_json(&e);
    IG_CHECK(json && strstr(json, "\"error\"") && strstr(json, "\"message\""), "error JSON %s", json);
    free(json);
}

static void test_chat_request_fields_parse(void)
{
    ig_coord_request r;
    ig_coord_api_error e;
    const char *body = "{\"model\":\"edge\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},{\"type\":\"text\","
                       "\"text\":\"there\"}]}],\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                       "\"max_tokens\":5,\"max_completion_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,"
                       "\"seed\":42,\"stop\":[\"\\n\",\"END\"],\"logprobs\":true,\"top_logprobs\":3,\"n\":1,"
                       "\"idlegrid\":{\"route\":\"edge\",\"deadline_ms\":5000}}";
    IG_CHECK(parse(IG_COORD_CHAT, body, &r, &e), "parsed: %s", e.message);
    IG_CHECK(strcmp(r.model, "edge") == 0, "model");
    IG_CHECK(r.n_messages == 2 && strcmp(r.messages[1].content, "Hi there") == 0, "text parts joined");
    IG_CHECK(r.stream && r.include_usage, "stream");
    IG_CHECK(r.max_tokens == 7, "max_completion_tokens wins: %d", r.max_tokens);
    IG_CHECK(r.temperature == 0.5f && r.top_p == 0.9f, "sampling");
    IG_CHECK(r.has_seed && r.seed == 42, "seed");
    IG_CHECK(r.n_stop == 2 && strcmp(r.stop[1], "END") == 0, "stop");
    IG_CHECK(r.logprobs && r.top_logprobs == 3, "logprobs");
    IG_CHECK(r.route == IG_ROUTE_EDGE && r.deadline_ms == 5000, "idlegrid object");
    ig_coord_request_free(&r);
}

static void test_completion_request_defaults_and_legacy_logprobs(void)
{
    ig_coord_request r;
    ig_coord_api_error e;
    IG_CHECK(parse(IG_COORD_COMPLETION, "{\"model\":\"m\",\"prompt\":[\"ab\"],\"logprobs\":2,\"stop\":\"x\"}", &r, &e),
             "parsed: %s", e.message);
    IG_CHECK(strcmp(r.prompt, "ab") == 0 && r.max_tokens == 16 && !r.stream && !r.has_seed, "defaults");
    IG_CHECK(r.logprobs && r.top_logprobs == 2, "legacy logprobs is a count");
    IG_CHECK(r.n_stop == 1, "stop string");
    ig_coord_request_free(&r);
}

static void test_bad_requests_name_field_and_reason(void)
{
    expect_bad(IG_COORD_CHAT, "{\"model\":\"edge\",", 400, "", "not valid JSON");
    expect_bad(IG_COORD_CHAT, "[1,2]", 400, "", "must be a JSON object");
    expect_bad(IG_COORD_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "model", "'model' is required");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"edge\"}", 400, "messages", "'messages' is required");
    expect_bad(IG_COORD_CHAT, "{\"model\":5,\"messages\":[]}", 400, "model", "must be a string");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[]}", 400, "messages", "at least one");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", 400,
               "messages[0].role", "must be one of");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"user\"}]}", 400,
               "messages[0].content", "is required");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", 400,
               "n", "must be 1");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}",
               400, "temperature", "must be a number");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}",
               400, "temperature", "between 0 and 2");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}",
               400, "max_tokens", "between 1 and");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}",
               400, "max_tokens", "must be an integer");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}",
               400, "stop", "must be a string");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}",
               400, "top_logprobs", "requires 'logprobs'");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"bogus\":1}",
               400, "bogus", "unrecognized");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"idlegrid\":{\"route\":\"moon\"}}",
               400, "idlegrid.route", "\"auto\"");
    expect_bad(IG_COORD_CHAT, "{\"model\":\"e\",\"model\":\"f\",\"messages\":[]}", 400, "", "duplicate");
    expect_bad(IG_COORD_COMPLETION, "{\"model\":\"e\",\"prompt\":\"\xff\"}", 400, "", "not valid UTF-8 (byte offset 23)");
    expect_bad(IG_COORD_COMPLETION, "{\"model\":\"e\",\"prompt\":\"\xed\xa0\x80\"}", 400, "", "not valid UTF-8");
    expect_bad(IG_COORD_COMPLETION, "{\"model\":\"e\",\"prompt\":[1,2,3]}", 400, "prompt", "exactly one string");
    expect_bad(IG_COORD_COMPLETION, "{\"model\":\"e\",\"prompt\":\"x\",\"logprobs\":9}", 400, "logprobs", "between 0 and 5");
}

static void test_oversized_body_is_413(void)
{
    size_t n = IG_COORD_MAX_BODY + 10;
    char *big = malloc(n);
    memset(big, ' ', n);
    ig_coord_request r;
    ig_coord_api_error e;
    IG_CHECK(!ig_coord_request_parse(IG_COORD_CHAT, big, n, &r, &e) && e.status == 413, "413");
    free(big);
}

static void test_error_json_is_valid_even_when_quoting_cut_characters(void)
{
    /* jansson quotes the bytes near a syntax error and may cut a 4-byte character. */
    const char body[] = "{\"te\xf2\xac\xac\xb5" "1o\xf2\xac\xac\xb5[op\\\xf2\xac\xac\xa5te\"}";
    ig_coord_request r;
    ig_coord_api_error e;
    IG_CHECK(!ig_coord_request_parse(IG_COORD_CHAT, body, sizeof body - 1, &r, &e), "refused");
    char *json = ig_coord_api_error_json(&e);
    IG_CHECK(json != NULL && strstr(json, "invalid escape"), "error JSON: %s", json ? json : "(null)");
    free(json);
}

static void test_utf8_validator(void)
{
    IG_CHECK(ig_coord_utf8_invalid_at("h\xc3\xa9llo \xf0\x9f\x98\x80", 11) == -1, "valid");
    IG_CHECK(ig_coord_utf8_invalid_at("ab\xc3", 3) == 2, "truncated");
    IG_CHECK(ig_coord_utf8_invalid_at("\xc0\x80", 2) == 0, "overlong");
    IG_CHECK(ig_coord_utf8_invalid_at("a\xf4\x90\x80\x80", 5) == 1, "above U+10FFFF");
}

int main(void)
{
    IG_RUN(test_chat_request_fields_parse);
    IG_RUN(test_completion_request_defaults_and_legacy_logprobs);
    IG_RUN(test_bad_requests_name_field_and_reason);
    IG_RUN(test_oversized_body_is_413);
    IG_RUN(test_error_json_is_valid_even_when_quoting_cut_characters);
    IG_RUN(test_utf8_validator);
    return ig_check_exit();
}
