/*
 * error.c — the project's one error type (ig_err) and the small conversions every
 * engine file shares: type names and sizes, fp16 and bf16.
 */
#include "engine.h"
#include "kernels.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ig_code ig_err_set(ig_err *err, ig_code code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

ig_code ig_err_wrap(ig_err *err, const char *fmt, ...)
{
    if (!err)
        return IG_ERR_INTERNAL;
    char prefix[sizeof err->msg];
    char old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3;
    size_t m = strlen(old);
    if (m > room)
        m = room;
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = '\0';
    return err->code;
}

void ig_err_clear(ig_err *err)
{
    if (err) {
        err->code = IG_OK;
        err->msg[0] = '\0';
    }
}

const char *ig_code_name(ig_code code)
{
    switch (code) {
    case IG_OK: return "ok";
    case IG_ERR_IO: return "io";
    case IG_ERR_FORMAT: return "format";
    case IG_ERR_UNSUPPORTED: return "unsupported";
    case IG_ERR_INVALID: return "invalid";
    case IG_ERR_NOMEM: return "nomem";
    case IG_ERR_RANGE: return "range";
    case IG_ERR_NOT_FOUND: return "not_found";
    case IG_ERR_AUTH: return "auth";
    case IG_ERR_BUSY: return "busy";
    case IG_ERR_TIMEOUT: return "timeout";
    case IG_ERR_CANCELLED: return "cancelled";
    case IG_ERR_PROTOCOL: return "protocol";
    case IG_ERR_STORE: return "store";
    case IG_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

/* ---- types --------------------------------------------------------------- */

typedef struct {
    const char *name;
    int64_t block_size;
    size_t block_bytes;
    bool weight; /* may hold model weights */
} type_desc;

static const type_desc TYPES[IG_TYPE_COUNT] = {
    [IG_TYPE_F32] = {"f32", 1, 4, true},
    [IG_TYPE_F16] = {"f16", 1, 2, true},
    [IG_TYPE_Q4_0] = {"q4_0", IG_QK4_0, sizeof(ig_block_q4_0), true},
    [IG_TYPE_Q8_0] = {"q8_0", IG_QK8_0, sizeof(ig_block_q8_0), true},
    [IG_TYPE_Q4_K] = {"q4_k", IG_QK_K, sizeof(ig_block_q4_K), true},
    [IG_TYPE_Q6_K] = {"q6_k", IG_QK_K, sizeof(ig_block_q6_K), true},
    [IG_TYPE_Q8_K] = {"q8_k", IG_QK_K, sizeof(ig_block_q8_K), false},
    [IG_TYPE_BF16] = {"bf16", 1, 2, true},
};

/* ggml's names for the ids idlegrid does not run, so a refusal can name the type. */
static const char *const GGML_NAMES[] = {
    [3] = "q4_1", [4] = "q4_2", [5] = "q4_3", [6] = "q5_0", [7] = "q5_1", [9] = "q8_1",
    [10] = "q2_k", [11] = "q3_k", [13] = "q5_k", [16] = "iq2_xxs", [17] = "iq2_xs",
    [18] = "iq3_xxs", [19] = "iq1_s", [20] = "iq4_nl", [21] = "iq3_s", [22] = "iq2_s",
    [23] = "iq4_xs", [24] = "i8", [25] = "i16", [26] = "i32", [27] = "i64", [28] = "f64",
    [29] = "iq1_m", [34] = "tq1_0", [35] = "tq2_0", [39] = "mxfp4",
};

const char *ig_type_name(uint32_t type)
{
    if (type < IG_TYPE_COUNT && TYPES[type].name)
        return TYPES[type].name;
    if (type < sizeof GGML_NAMES / sizeof GGML_NAMES[0] && GGML_NAMES[type])
        return GGML_NAMES[type];
    return "unknown";
}

bool ig_type_is_supported(uint32_t type)
{
    return type < IG_TYPE_COUNT && TYPES[type].name && TYPES[type].weight;
}

int64_t ig_type_block_size(ig_type type)
{
    return (unsigned)type < IG_TYPE_COUNT ? TYPES[type].block_size : 0;
}

size_t ig_type_block_bytes(ig_type type)
{
    return (unsigned)type < IG_TYPE_COUNT ? TYPES[type].block_bytes : 0;
}

size_t ig_type_row_bytes(ig_type type, int64_t n)
{
    int64_t bs = ig_type_block_size(type);
    if (bs <= 0)
        return 0;
    return (size_t)(n / bs) * ig_type_block_bytes(type);
}

/* ---- fp16 / bf16 ----------------------------------------------------------- */

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float ig_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0)
            return bits_f32(sign);
        /* subnormal: value = mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (exp == 31)
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t ig_fp32_to_fp16(float f)
{
    /* Round to nearest even, with overflow to infinity and gradual underflow. */
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float v = bits_f32(ax) * 16777216.0f; /* in units of 2^-24 */
        uint32_t m = (uint32_t)v;
        float rem = v - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1)))
            m++;
        return (uint16_t)(sign | m);
    }
    uint32_t mant = ax & 0x7fffff;
    uint32_t exp = (ax >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

float ig_bf16_to_fp32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t ig_fp32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* nan: keep it quiet */
        return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}
