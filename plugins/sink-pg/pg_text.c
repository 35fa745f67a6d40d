/*
 * pg_text.c - values in PostgreSQL's text input syntax, escaped for COPY.
 *
 * Every logical type has one text form PostgreSQL reads back to the same
 * value. Numbers, dates, times and uuids come from the shared SQL layer
 * (sluice_sql_value_text, PostgreSQL dialect: shortest round-tripping floats,
 * microseconds and an explicit UTC offset, +-infinity spelled PostgreSQL's
 * way); this file adds what COPY needs on top: text, json and decimals with
 * COPY's escapes, bytes as \x hex. See docs/sink-pg.md.
 */
#include <stdint.h>
#include <string.h>

#include "pg_sink.h"

static const char hexdigits[] = "0123456789abcdef";

/* true when p holds no byte COPY text escapes (backslash, tab, newline, CR),
 * eight bytes at a time: a byte below 0x0e or a backslash sends the text to
 * the exact loop (other control bytes are rare false alarms) */
static bool copy_plain(const char *p, size_t len)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t bs = w ^ (ones * '\\');
        if (((w - ones * 0x0e) & ~w & highs) | ((bs - ones) & ~bs & highs))
            return false;
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\\' || c < 0x0e)
            return false;
    }
    return true;
}

/* text bytes with COPY's escapes (the only characters COPY text treats specially) */
static void put_text(struct sluice_sql_buf *b, const char *p, size_t len, bool copy_escape)
{
    if (!copy_escape || copy_plain(p, len)) {
        sluice_sql_buf_append(b, p, len);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        char esc = 0;
        switch (p[i]) {
        case '\\': esc = '\\'; break;
        case '\n': esc = 'n'; break;
        case '\r': esc = 'r'; break;
        case '\t': esc = 't'; break;
        default: continue;
        }
        sluice_sql_buf_append(b, p + start, i - start);
        sluice_sql_buf_putc(b, '\\');
        sluice_sql_buf_putc(b, esc);
        start = i + 1;
    }
    sluice_sql_buf_append(b, p + start, len - start);
}

static void put_hex(struct sluice_sql_buf *b, const uint8_t *p, size_t len)
{
    char chunk[256];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        chunk[n++] = hexdigits[p[i] >> 4];
        chunk[n++] = hexdigits[p[i] & 15];
        if (n == sizeof(chunk)) {
            sluice_sql_buf_append(b, chunk, n);
            n = 0;
        }
    }
    sluice_sql_buf_append(b, chunk, n);
}

int pg_value_text(struct sluice_sql_buf *b, const struct sluice_column *col,
                  const struct sluice_value *v, bool copy_escape)
{
    switch (col->type) {
    case SLUICE_T_DECIMAL: /* canonical text: digits, NaN, Infinity, -Infinity */
    case SLUICE_T_TEXT:
    case SLUICE_T_JSON:
        put_text(b, v->u.ptr, v->len, copy_escape);
        return 0;
    case SLUICE_T_BYTES:
        /* bytea hex format; in COPY text the backslash itself is escaped */
        sluice_sql_buf_puts(b, copy_escape ? "\\\\x" : "\\x");
        put_hex(b, (const uint8_t *)v->u.ptr, v->len);
        return 0;
    default:
        /* numbers, dates, times, uuids: the shared PostgreSQL text, which
         * never needs COPY escaping */
        return sluice_sql_value_text(b, SLUICE_SQL_POSTGRESQL, col, v) == 0 ? 0 : -1;
    }
}
