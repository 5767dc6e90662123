/*
 * fuzz_frames.c — libFuzzer target for the node link's input side: the input is a
 * byte stream as a peer would send it, decoded frame by frame (with a small limit
 * so oversized frames are reached too), each frame parsed as a message; a message
 * that parses is built back to JSON, framed and parsed again, and must come back
 * as the same type (the builders accept everything the parsers accept).
 */
#include "net.h"

#include <stdint.h>
#include <stdlib.h>

static void check_rebuild(const ig_msg *m)
{
    ig_err err;
    json_t *j = ig_msg_to_json(m, &err);
    if (!j)
        abort(); /* a parsed message must always be buildable */
    size_t n = 0;
    unsigned char *buf = ig_net_frame_encode(j, 1u << 22, &n, &err);
    json_decref(j);
    if (!buf)
        abort();
    json_t *back = NULL;
    if (ig_net_frame_decode_exact(buf, n, 1u << 22, &back, &err) != IG_OK)
        abort();
    free(buf);
    ig_msg again;
    if (ig_msg_parse(back, &again, &err) != IG_OK || again.type != m->type)
        abort();
    json_decref(back);
    ig_msg_deinit(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        ig_net_log_set_level(IG_LOG_OFF);
        quiet = 1;
    }
    size_t off = 0;
    for (int frames = 0; frames < 64 && off < size; frames++) {
        size_t used = 0;
        json_t *j = NULL;
        ig_err err;
        ig_code rc = ig_net_frame_decode(data + off, size - off, 4096, &used, &j, &err);
        if (rc != IG_OK || used == 0)
            break;
        off += used;
        ig_msg m;
        if (ig_msg_parse(j, &m, &err) == IG_OK) {
            check_rebuild(&m);
            ig_msg_deinit(&m);
        }
        json_decref(j);
    }
    return 0;
}
