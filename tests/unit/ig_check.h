/*
 * ig_check.h — a minimal test harness for the engine's unit tests: plain C, no
 * libraries, so the same tests run natively and cross-built for aarch64 under qemu.
 *
 * IG_CHECK(cond, fmt, ...) records a failure with file:line and continues;
 * IG_RUN(test_fn) runs one test and prints PASS/FAIL/SKIP; ig_check_exit() returns
 * the process status (0 only when nothing failed).
 */
#ifndef IG_CHECK_H
#define IG_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int ig_check_failures;
static int ig_check_test_failures;
static int ig_check_skipped;

#define IG_CHECK(cond, ...)                                                                \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            if (ig_check_test_failures < 20) {                                             \
                fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
                fprintf(stderr, __VA_ARGS__);                                              \
                fputc('\n', stderr);                                                       \
            }                                                                              \
            ig_check_test_failures++;                                                      \
        }                                                                                  \
    } while (0)

/* A test calls this when the machine cannot run it; the skip is reported. */
#define IG_SKIP(...)                                                                       \
    do {                                                                                   \
        fprintf(stderr, "  skip: ");                                                       \
        fprintf(stderr, __VA_ARGS__);                                                      \
        fputc('\n', stderr);                                                               \
        ig_check_skipped++;                                                                \
    } while (0)

#define IG_RUN(fn)                                                                         \
    do {                                                                                   \
        ig_check_test_failures = 0;                                                        \
        int skipped_before = ig_check_skipped;                                             \
        fn();                                                                              \
        const char *verdict = ig_check_test_failures ? "FAIL"                              \
                              : ig_check_skipped > skipped_before ? "SKIP" : "PASS";       \
        printf("%s %s\n", verdict, #fn);                                                   \
        fflush(stdout);                                                                    \
        if (ig_check_test_failures)                                                        \
            ig_check_failures++;                                                           \
    } while (0)

static inline int ig_check_exit(void)
{
    if (ig_check_failures)
        printf("%d test(s) failed\n", ig_check_failures);
    return ig_check_failures ? 1 : 0;
}

/* Deterministic pseudo-random numbers (xorshift64*), identical on every platform. */
typedef struct {
    unsigned long long s;
} ig_rng;

static inline unsigned long long ig_rng_next(ig_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

/* Uniform in [-1, 1). */
static inline float ig_rng_float(ig_rng *r)
{
    return (float)((double)(ig_rng_next(r) >> 11) * (1.0 / 4503599627370496.0) - 1.0);
}

/* Roughly normal (sum of uniforms), the shape of real weights and activations. */
static inline float ig_rng_normal(ig_rng *r)
{
    float s = 0.0f;
    for (int i = 0; i < 4; i++)
        s += ig_rng_float(r);
    return s * 0.8660254f;
}

#endif /* IG_CHECK_H */
