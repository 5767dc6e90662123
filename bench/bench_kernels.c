/*
 * bench_kernels.c — micro-benchmark of ig_matmul per weight type against the
 * machine's read bandwidth measured in the same run.
 *
 * Decode reads every weight once per token, so for n_tok = 1 the figure of merit is
 * GB/s of weight bytes, next to the bandwidth of a plain parallel read of a buffer
 * larger than any cache. The weights are a stack of 2816 x 1024 matrices (an FFN of
 * the benchmark model) totalling ~256 MB, walked in order as a forward pass would.
 * Prefill (n_tok = 64) is reported in GFLOP/s on one matrix set.
 *
 * Each figure is the best of --passes runs (other processes on the machine only ever
 * make a run slower); the load average is printed so a reader can judge the noise.
 *
 * usage: bench_kernels [--threads N] [--kernels ISA] [--mb MB] [--passes N]
 *                      [--types q8_0,q4_0,...]
 */
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const uint64_t *buf;
    size_t n;
    uint64_t sums[64];
} read_job;

/* A plain streaming read: 8 independent xor chains per thread, no stores. */
static void read_fn(void *arg, int ith, int nth)
{
    read_job *j = arg;
    size_t a = j->n * (size_t)ith / (size_t)nth, b = j->n * (size_t)(ith + 1) / (size_t)nth;
    uint64_t s[8] = {0};
    for (size_t i = a; i + 8 <= b; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] ^= j->buf[i + k];
    j->sums[ith] = s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4] ^ s[5] ^ s[6] ^ s[7];
}

static double read_bandwidth(ig_pool *pool, size_t bytes)
{
    uint64_t *buf = malloc(bytes);
    memset(buf, 1, bytes);
    read_job j = {buf, bytes / 8, {0}};
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        ig_pool_run(pool, read_fn, &j);
        double gbs = bytes / (now_s() - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    free(buf);
    return best;
}

static double memcpy_bandwidth(size_t bytes)
{
    char *a = malloc(bytes), *b = malloc(bytes);
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        memcpy(b, a, bytes);
        double gbs = bytes / (now_s() - t0) / 1e9; /* bytes read */
        best = gbs > best ? gbs : best;
    }
    free(a);
    free(b);
    return best;
}

int main(int argc, char **argv)
{
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *isa = NULL;
    size_t mb = 256;
    int passes = 6;
    char types_arg[256] = "f32,f16,bf16,q8_0,q4_0,q4_k,q6_k";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kernels") && i + 1 < argc)
            isa = argv[++i];
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--passes") && i + 1 < argc)
            passes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc)
            snprintf(types_arg, sizeof types_arg, "%s", argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--kernels ISA] [--mb MB] [--passes N] [--types LIST]\n",
                    argv[0]);
            return 2;
        }
    }
    const ig_kernels *k = isa ? ig_kernels_by_name(isa) : ig_kernels_best();
    if (!k) {
        fprintf(stderr, "bench_kernels: kernel set %s is not available here\n", isa);
        return 1;
    }
    ig_err err;
    ig_pool *pool = ig_pool_new(threads, &err);
    if (!pool) {
        fprintf(stderr, "bench_kernels: %s\n", err.msg);
        return 1;
    }
    const int64_t rows = 2816, cols = 1024;
    double rd = read_bandwidth(pool, mb << 20);
    double mc = memcpy_bandwidth(mb << 19);
    printf("kernels %s, %d threads, matrices %lld x %lld, weights ~%zu MB per type\n", k->isa,
           threads, (long long)rows, (long long)cols, mb);
    printf("read bandwidth (parallel read, %zu MB): %.2f GB/s; memcpy (1 thread): %.2f GB/s\n",
           mb, rd, mc);
    FILE *la = fopen("/proc/loadavg", "r");
    char load[64] = "?";
    if (la) {
        if (!fgets(load, sizeof load, la))
            snprintf(load, sizeof load, "?");
        fclose(la);
    }
    printf("load average (other work on this machine): %s", load);
    printf("%-6s %10s %10s %12s %14s\n", "type", "decode GB/s", "of read", "decode ms/GB",
           "prefill GFLOP/s");

    float *x = malloc(64 * cols * sizeof(float)), *y = malloc(64 * rows * sizeof(float));
    for (int64_t i = 0; i < 64 * cols; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    float *wf = malloc(rows * cols * sizeof(float));
    for (int64_t i = 0; i < rows * cols; i++)
        wf[i] = (float)((i * 40503u) % 2000) / 40000.0f - 0.025f;

    char *save = NULL;
    for (char *name = strtok_r(types_arg, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        ig_type t = IG_TYPE_COUNT;
        for (int id = 0; id < IG_TYPE_COUNT; id++)
            if (ig_type_is_supported((uint32_t)id) && !strcmp(ig_type_name((uint32_t)id), name))
                t = (ig_type)id;
        if (t == IG_TYPE_COUNT) {
            fprintf(stderr, "bench_kernels: unknown type %s\n", name);
            continue;
        }
        size_t mat_bytes = ig_type_row_bytes(t, cols) * rows;
        int n_mats = (int)((mb << 20) / mat_bytes);
        if (n_mats < 2)
            n_mats = 2;
        uint8_t *w = malloc(mat_bytes * n_mats);
        for (int64_t r = 0; r < rows; r++)
            ig_quantize_row(t, wf + r * cols, w + r * ig_type_row_bytes(t, cols), cols);
        for (int m = 1; m < n_mats; m++)
            memcpy(w + m * mat_bytes, w, mat_bytes);
        void *scratch = malloc(ig_matmul_scratch_bytes(t, cols, 64) + 64);

        /* decode: one token through every matrix, several passes, best pass */
        double best = 1e30;
        for (int pass = 0; pass < passes; pass++) {
            double t0 = now_s();
            for (int m = 0; m < n_mats; m++)
                ig_matmul(pool, k, y, w + m * mat_bytes, t, rows, cols, x, 1, scratch);
            double dt = now_s() - t0;
            best = dt < best ? dt : best;
        }
        double gbs = (double)mat_bytes * n_mats / best / 1e9;

        /* prefill: 64 tokens against a few matrices, best of `passes` */
        int pm = n_mats < 4 ? n_mats : 4;
        double dt = 1e30;
        for (int pass = 0; pass < passes; pass++) {
            double t0 = now_s();
            for (int m = 0; m < pm; m++)
                ig_matmul(pool, k, y, w + m * mat_bytes, t, rows, cols, x, 64, scratch);
            double d = now_s() - t0;
            dt = d < dt ? d : dt;
        }
        double gflops = 2.0 * rows * cols * 64 * pm / dt / 1e9;
        printf("%-6s %10.2f %9.0f%% %12.1f %14.1f\n", name, gbs, 100.0 * gbs / rd, 1e3 / gbs,
               gflops);
        fflush(stdout);
        free(w);
        free(scratch);
    }
    free(x);
    free(y);
    free(wf);
    /* The machine may be shared: measure the read bandwidth again and keep the best. */
    double rd2 = read_bandwidth(pool, mb << 20);
    printf("read bandwidth measured again after the runs: %.2f GB/s%s\n", rd2,
           rd2 > rd * 1.1 ? " (higher: the first probe was disturbed; fractions above used it)"
                          : "");
    ig_pool_free(pool);
    return 0;
}
