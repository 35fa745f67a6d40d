#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static int g_level = SLUICE_LOG_INFO;
static int g_format = SL_LOG_FORMAT_TEXT;

void sl_log_set_format(int format) { g_format = format; }

int sl_log_format_parse(const char *name)
{
    if (strcmp(name, "text") == 0)
        return SL_LOG_FORMAT_TEXT;
    if (strcmp(name, "json") == 0)
        return SL_LOG_FORMAT_JSON;
    return -1;
}

/* {"time":"2024-05-01T12:00:00.123Z","level":"info","msg":"..."} - jansson
 * escapes the message. */
static void write_json_line(int level, const char *tag, const char *msg)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40], stamp[64];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp, sizeof stamp, "%s.%03ldZ", when, ts.tv_nsec / 1000000L);
    json_t *o = json_pack("{s:s, s:s, s:s}", "time", stamp, "level", tag, "msg", msg);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    if (text) {
        static const int prio[] = {3, 4, 6, 7};
        char line[8192];
        char pri[8] = "";
        if (getenv("JOURNAL_STREAM"))
            snprintf(pri, sizeof pri, "<%d>", prio[level]);
        int n = snprintf(line, sizeof line, "%s%s\n", pri, text);
        if (n > 0) {
            size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
            ssize_t w = write(STDERR_FILENO, line, len);
            (void)w;
        }
    }
    free(text);
    json_decref(o);
}

void sl_log_set_level(int level) { g_level = level; }
int sl_log_level(void) { return g_level; }

int sl_log_level_parse(const char *name)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

void sl_vlog(int level, const char *prefix, const char *fmt, va_list ap)
{
    static const char *const tags[] = {"error", "warning", "info", "debug"};
    if (level > g_level)
        return;
    char line[4096];
    /* <N> lets journald assign the priority: 3 err, 4 warning, 6 info, 7 debug */
    static const int prio[] = {3, 4, 6, 7};
    int n = snprintf(line, sizeof line, "<%d>sluice: %s: %s", prio[level], tags[level],
                     prefix ? prefix : "");
    if (n < 0)
        return;
    if ((size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (g_format == SL_LOG_FORMAT_JSON) {
        const char *msg = strstr(line, ": ") + 2; /* after "<N>sluice" */
        msg = strstr(msg, ": ") + 2;                /* after the level tag */
        write_json_line(level, tags[level], msg);
        return;
    }
    size_t len = strnlen(line, sizeof line - 2);
    line[len++] = '\n';
    /* The <N> prefix is only for journald, which sets JOURNAL_STREAM. */
    const char *out = line;
    if (!getenv("JOURNAL_STREAM")) {
        out = strchr(line, '>') + 1;
        len -= (size_t)(out - line);
    }
    ssize_t w = write(STDERR_FILENO, out, len);
    (void)w;
}

void sl_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_vlog(level, NULL, fmt, ap);
    va_end(ap);
}
