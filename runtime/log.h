/*
 * log.h - operator-facing log lines on stderr (journald picks them up).
 * Owns the global log level. Thread-safe: one write(2) per line.
 */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdarg.h>
#include <sluice/host.h> /* SLUICE_LOG_* levels */

/* Line format: plain text (default) or one JSON object per line. */
enum { SL_LOG_FORMAT_TEXT = 0, SL_LOG_FORMAT_JSON = 1 };
void sl_log_set_format(int format);
/* Parse "text|json"; -1 if unknown. */
int sl_log_format_parse(const char *name);

void sl_log_set_level(int level);
int sl_log_level(void);
/* Parse "error|warn|info|debug"; -1 if unknown. */
int sl_log_level_parse(const char *name);

void sl_log(int level, const char *fmt, ...) SLUICE_PRINTF(2, 3);
void sl_vlog(int level, const char *prefix, const char *fmt, va_list ap);

#define sl_error(...) sl_log(SLUICE_LOG_ERROR, __VA_ARGS__)
#define sl_warn(...) sl_log(SLUICE_LOG_WARN, __VA_ARGS__)
#define sl_info(...) sl_log(SLUICE_LOG_INFO, __VA_ARGS__)
#define sl_debug(...) sl_log(SLUICE_LOG_DEBUG, __VA_ARGS__)

#endif
