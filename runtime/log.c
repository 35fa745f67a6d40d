#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_level = SLUICE_LOG_INFO;

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
