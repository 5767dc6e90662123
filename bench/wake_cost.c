/* bench/wake_cost.c — the machine's reference for the gateway-overhead benchmark
 * (bench/grid_bench.sh): how long one small send(2) over loopback TCP takes the sender
 * when the receiver sleeps in read(2) on another CPU (the kernel must wake it: on a VM,
 * an inter-processor interrupt through the hypervisor) and when it runs on the same
 * CPU. The sender works as an engine does between tokens: it computes (spins) for
 * --gap-us, then sends one frame-sized message (--bytes) with TCP_NODELAY, --count
 * times; only the send(2) calls are timed. One JSON object on stdout:
 *   {"gap_us":..,"bytes":..,"count":..,"sender_cpu":..,"receiver_cpu":..,
 *    "send_us_mean":..,"send_us_median":..,"send_us_p90":..,"send_us_max":..}
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 100000

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: wake_cost [--sender-cpu N] [--receiver-cpu N] [--gap-us N] [--bytes N] "
               "[--count N]\n");
}

int main(int argc, char **argv)
{
    int sender_cpu = 1, receiver_cpu = 0;
    long gap_us = 2000, bytes = 120, count = 200;
    static const struct option opts[] = {
        {"sender-cpu", required_argument, 0, 's'}, {"receiver-cpu", required_argument, 0, 'r'},
        {"gap-us", required_argument, 0, 'g'},     {"bytes", required_argument, 0, 'b'},
        {"count", required_argument, 0, 'n'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 's': sender_cpu = atoi(optarg); break;
        case 'r': receiver_cpu = atoi(optarg); break;
        case 'g': gap_us = atol(optarg); break;
        case 'b': bytes = atol(optarg); break;
        case 'n': count = atol(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (gap_us < 0 || bytes < 1 || bytes > 65536 || count < 1 || count > MAX_COUNT) {
        fprintf(stderr, "wake_cost: --gap-us >= 0, --bytes 1..65536, --count 1..%d\n", MAX_COUNT);
        return 2;
    }

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(ls, (struct sockaddr *)&addr, &alen) != 0 || listen(ls, 1) != 0) {
        fprintf(stderr, "wake_cost: loopback listener: %s\n", strerror(errno));
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "wake_cost: fork: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0) { /* the receiver: reads until the sender closes */
        if (pin(receiver_cpu) != 0)
            _exit(3);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof addr) != 0)
            _exit(4);
        char buf[65536];
        while (read(c, buf, sizeof buf) > 0) {
        }
        _exit(0);
    }
    if (pin(sender_cpu) != 0) {
        fprintf(stderr, "wake_cost: cannot run on CPU %d: %s\n", sender_cpu, strerror(errno));
        kill(child, SIGKILL);
        return 1;
    }
    int s = accept(ls, NULL, NULL);
    int one = 1;
    if (s < 0 || setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        fprintf(stderr, "wake_cost: accept: %s\n", strerror(errno));
        kill(child, SIGKILL);
        return 1;
    }
    char *msg = malloc((size_t)bytes);
    double *t = malloc(sizeof *t * (size_t)count);
    if (!msg || !t) {
        fprintf(stderr, "wake_cost: out of memory\n");
        kill(child, SIGKILL);
        return 1;
    }
    memset(msg, 'x', (size_t)bytes);
    volatile unsigned long work = 0;
    for (long i = 0; i < count; i++) {
        for (double t0 = now_us(); now_us() - t0 < (double)gap_us;)
            work++; /* the engine computing the next token */
        double a = now_us();
        if (send(s, msg, (size_t)bytes, 0) != (ssize_t)bytes) {
            fprintf(stderr, "wake_cost: send: %s\n", strerror(errno));
            kill(child, SIGKILL);
            return 1;
        }
        t[i] = now_us() - a;
    }
    close(s);
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "wake_cost: the receiver failed (CPU %d)\n", receiver_cpu);
        return 1;
    }
    double sum = 0;
    for (long i = 0; i < count; i++)
        sum += t[i];
    qsort(t, (size_t)count, sizeof *t, cmp_double);
    printf("{\"gap_us\":%ld,\"bytes\":%ld,\"count\":%ld,\"sender_cpu\":%d,\"receiver_cpu\":%d,"
           "\"send_us_mean\":%.1f,\"send_us_median\":%.1f,\"send_us_p90\":%.1f,\"send_us_max\":%.1f}\n",
           gap_us, bytes, count, sender_cpu, receiver_cpu, sum / (double)count, t[count / 2], t[count * 9 / 10],
           t[count - 1]);
    free(msg);
    free(t);
    return 0;
}
