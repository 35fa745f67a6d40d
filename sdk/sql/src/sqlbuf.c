/*
 * sqlbuf.c - the growable NUL-terminated buffer the SQL generators write to.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_sql/dialect.h"

void sluice_sql_buf_init(struct sluice_sql_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void sluice_sql_buf_free(struct sluice_sql_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void sluice_sql_buf_reset(struct sluice_sql_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data)
        b->data[0] = '\0';
}

static bool buf_reserve(struct sluice_sql_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void sluice_sql_buf_append(struct sluice_sql_buf *b, const void *p, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sluice_sql_buf_puts(struct sluice_sql_buf *b, const char *s)
{
    sluice_sql_buf_append(b, s, strlen(s));
}

void sluice_sql_buf_putc(struct sluice_sql_buf *b, char c)
{
    sluice_sql_buf_append(b, &c, 1);
}

void sluice_sql_buf_put_uint(struct sluice_sql_buf *b, uint64_t v)
{
    char tmp[24], *end = tmp + sizeof(tmp), *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sluice_sql_buf_append(b, p, (size_t)(end - p));
}

void sluice_sql_buf_put_int(struct sluice_sql_buf *b, int64_t v)
{
    if (v < 0) {
        sluice_sql_buf_putc(b, '-');
        sluice_sql_buf_put_uint(b, 0 - (uint64_t)v);
    } else {
        sluice_sql_buf_put_uint(b, (uint64_t)v);
    }
}

void sluice_sql_buf_printf(struct sluice_sql_buf *b, const char *fmt, ...)
{
    va_list ap;
    if (b->failed)
        return;
    /* one pass when the text fits in the room already there */
    if (b->data && b->cap > b->len + 1) {
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->data[b->len] = '\0';
    }
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *sluice_sql_buf_str(const struct sluice_sql_buf *b)
{
    return b->data ? b->data : "";
}
