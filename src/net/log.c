/*
 * log.c — structured log lines: one JSON object per line on stderr, written with a
 * single write(2) so lines from threads and processes never interleave.
 */
#include "net.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = -1; /* -1: not read from the environment yet */

static ig_log_level level_from_env(void)
{
    const char *s = getenv("IG_LOG");
    if (!s)
        return IG_LOG_INFO;
    if (strcasecmp(s, "debug") == 0)
        return IG_LOG_DEBUG;
    if (strcasecmp(s, "warn") == 0)
        return IG_LOG_WARN;
    if (strcasecmp(s, "error") == 0)
        return IG_LOG_ERROR;
    if (strcasecmp(s, "off") == 0)
        return IG_LOG_OFF;
    return IG_LOG_INFO;
}

ig_log_level ig_net_log_get_level(void)
{
    int l = atomic_load(&log_level);
    if (l < 0) {
        l = (int)level_from_env();
        atomic_store(&log_level, l);
    }
    return (ig_log_level)l;
}

void ig_net_log_set_level(ig_log_level level) { atomic_store(&log_level, (int)level); }

static const char *level_name(ig_log_level l)
{
    switch (l) {
    case IG_LOG_DEBUG: return "debug";
    case IG_LOG_INFO: return "info";
    case IG_LOG_WARN: return "warn";
    case IG_LOG_ERROR: return "error";
    default: return "off";
    }
}

void ig_net_log(ig_log_level level, const char *event, json_t *fields)
{
    if (level < ig_net_log_get_level() || level >= IG_LOG_OFF) {
        json_decref(fields);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    json_t *line = json_object();
    if (!line) {
        json_decref(fields);
        return;
    }
    json_object_set_new(line, "ts", json_string(when));
    json_object_set_new(line, "level", json_string(level_name(level)));
    json_object_set_new(line, "event", json_string(event ? event : "log"));
    if (json_is_object(fields))
        json_object_update(line, fields);
    json_decref(fields);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text)
        return;
    size_t n = strlen(text);
    text[n] = '\n'; /* overwrite the NUL: one write for the whole line */
    ssize_t w = write(STDERR_FILENO, text, n + 1);
    (void)w;
    free(text);
}

void ig_net_logf(ig_log_level level, const char *event, const char *fmt, ...)
{
    if (level < ig_net_log_get_level())
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *f = json_object();
    /* A message may carry bytes that are not UTF-8 (peer input): fall back to a note. */
    json_t *s = json_string(msg);
    json_object_set_new(f, "msg", s ? s : json_string("(message not valid UTF-8)"));
    ig_net_log(level, event, f);
}
