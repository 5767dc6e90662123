/*
 * fuzz_http.c — libFuzzer target on the buyer request path: bytes as an HTTP body →
 * UTF-8 check → JSON → validated chat/completions request → error JSON. The first
 * byte picks the endpoint. Any input must end in a parsed request or a 4xx error
 * with a message, never a crash or a leak.
 */
#include "coord.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ig_coord_kind kind = (data[0] & 1) ? IG_COORD_CHAT : IG_COORD_COMPLETION;
    ig_coord_request r;
    ig_coord_api_error e;
    memset(&e, 0, sizeof e);
    if (ig_coord_request_parse(kind, (const char *)data + 1, size - 1, &r, &e)) {
        assert(r.model[0]);
        assert(kind == IG_COORD_CHAT ? r.n_messages >= 1 : r.prompt != NULL);
        assert(r.max_tokens >= 1 && r.max_tokens <= IG_COORD_MAX_TOKENS);
        assert(r.n_stop <= IG_MAX_STOP);
        ig_coord_request_free(&r);
    } else {
        assert(e.status == 400 || e.status == 413);
        assert(e.message[0]);
        char *json = ig_coord_api_error_json(&e);
        assert(json);
        free(json);
    }
    return 0;
}
