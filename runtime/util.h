/*
 * util.h - small helpers every runtime file uses: a growable byte buffer and
 * allocation that treats OOM as fatal where recovering is pointless (config,
 * CLI). Hot paths use the batch arena (batch.h), not these.
 */
#ifndef SL_UTIL_H
#define SL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_buf {
    char *data;
    size_t len;
    size_t cap;
};

void sl_buf_reserve(struct sl_buf *b, size_t extra);
void sl_buf_append(struct sl_buf *b, const void *p, size_t n);
void sl_buf_printf(struct sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void sl_buf_reset(struct sl_buf *b) { b->len = 0; }
void sl_buf_free(struct sl_buf *b);

/* abort with a message on OOM */
void *sl_xmalloc(size_t n);
void *sl_xcalloc(size_t n, size_t size);
void *sl_xrealloc(void *p, size_t n);
char *sl_xstrdup(const char *s);
char *sl_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* monotonic and wall clocks */
uint64_t sl_now_mono_us(void);
int64_t sl_now_wall_us(void);

/* mkdir -p with mode for every created folder; 0 or -1 (errno) */
int sl_mkdir_p(const char *path, unsigned mode);

#endif
