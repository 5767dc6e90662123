/*
 * test_model_run.h — a tiny helper for the model tests that drive the real
 * `idlegrid` binary: runs a command without a shell and captures its stdout and
 * exit status.
 */
#ifndef IG_TEST_MODEL_RUN_H
#define IG_TEST_MODEL_RUN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs argv (argv[0] is a path), returns its stdout (malloc'd, NUL-terminated, may
 * hold NULs) and sets *status to the exit status (-1 when it did not exit). stderr
 * goes to ours, or to the bit bucket when quiet_stderr. */
static char *run_capture(char *const argv[], int *status, size_t *out_len, int quiet_stderr)
{
    int fd[2];
    if (pipe(fd) != 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0)
        return NULL;
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        if (quiet_stderr && !freopen("/dev/null", "w", stderr))
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd[0], buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd[0]);
    buf[len] = '\0';
    int ws = 0;
    waitpid(pid, &ws, 0);
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    if (out_len)
        *out_len = len;
    return buf;
}

#endif /* IG_TEST_MODEL_RUN_H */
