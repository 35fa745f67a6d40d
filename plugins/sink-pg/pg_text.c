/*
 * pg_text.c - values in PostgreSQL's text input syntax.
 *
 * Every logical type has one text form PostgreSQL reads back to the same
 * value: floats in the shortest form that round-trips to the same bits,
 * decimals as their exact canonical text, timestamps with microseconds and
 * an explicit UTC offset, +-infinity spelled the way PostgreSQL spells it,
 * bytes as \x hex. See docs/sink-pg.md.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_sink.h"

static const char hexdigits[] = "0123456789abcdef";

static void put_i64(struct sluice_sql_buf *b, int64_t v)
{
    sluice_sql_buf_put_int(b, v);
}

/* v in exactly n digits, zero-padded (v < 10^n) */
static void put_fixed(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* civil date from days since 1970-01-01 (Howard Hinnant's algorithm) */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* PostgreSQL writes years <= 0 as "<1 - year> BC" (there is no year 0) */
static void put_date(struct sluice_sql_buf *b, int64_t days, bool *bc)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    *bc = y <= 0;
    if (*bc)
        y = 1 - y;
    char out[6];
    if (y < 10000) {
        put_fixed(out, (unsigned)y, 4);
        sluice_sql_buf_append(b, out, 4);
    } else {
        put_i64(b, y);
    }
    out[0] = '-';
    put_fixed(out + 1, m, 2);
    out[3] = '-';
    put_fixed(out + 4, d, 2);
    sluice_sql_buf_append(b, out, 6);
}

/* HH:MM:SS.ffffff (us in [0, 24h]) */
static void put_time_of_day(struct sluice_sql_buf *b, int64_t us)
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    char out[15];
    put_fixed(out, (unsigned)(secs / 3600), 2);
    out[2] = ':';
    put_fixed(out + 3, (unsigned)(secs / 60 % 60), 2);
    out[5] = ':';
    put_fixed(out + 6, (unsigned)(secs % 60), 2);
    out[8] = '.';
    put_fixed(out + 9, (unsigned)frac, 6);
    sluice_sql_buf_append(b, out, 15);
}

static void put_timestamp(struct sluice_sql_buf *b, int64_t us, bool tz)
{
    if (us == SLUICE_INFINITY) {
        sluice_sql_buf_puts(b, "infinity");
        return;
    }
    if (us == SLUICE_NEG_INFINITY) {
        sluice_sql_buf_puts(b, "-infinity");
        return;
    }
    int64_t days = us / 86400000000LL, rem = us % 86400000000LL;
    if (rem < 0) {
        rem += 86400000000LL;
        days--;
    }
    bool bc;
    put_date(b, days, &bc);
    sluice_sql_buf_putc(b, ' ');
    put_time_of_day(b, rem);
    if (tz)
        sluice_sql_buf_puts(b, "+00");
    if (bc)
        sluice_sql_buf_puts(b, " BC");
}

/* shortest text that reads back to the same double / float */
static void put_float(struct sluice_sql_buf *b, double x, bool single)
{
    char tmp[40];
    if (isnan(x)) {
        sluice_sql_buf_puts(b, "NaN");
        return;
    }
    if (isinf(x)) {
        sluice_sql_buf_puts(b, x > 0 ? "Infinity" : "-Infinity");
        return;
    }
    int lo = single ? 6 : 15, hi = single ? 9 : 17;
    for (int prec = lo; prec <= hi; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, x);
        if (single ? strtof(tmp, NULL) == (float)x : strtod(tmp, NULL) == x)
            break;
    }
    sluice_sql_buf_puts(b, tmp);
}

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
    case SLUICE_T_BOOL:
        sluice_sql_buf_putc(b, v->u.i64 ? 't' : 'f');
        return 0;
    case SLUICE_T_INT16:
    case SLUICE_T_INT32:
    case SLUICE_T_INT64:
        put_i64(b, v->u.i64);
        return 0;
    case SLUICE_T_FLOAT32:
    case SLUICE_T_FLOAT64:
        put_float(b, v->u.f64, col->type == SLUICE_T_FLOAT32);
        return 0;
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
    case SLUICE_T_DATE: {
        if (v->u.i64 == SLUICE_INFINITY) {
            sluice_sql_buf_puts(b, "infinity");
            return 0;
        }
        if (v->u.i64 == SLUICE_NEG_INFINITY) {
            sluice_sql_buf_puts(b, "-infinity");
            return 0;
        }
        bool bc;
        put_date(b, v->u.i64, &bc);
        if (bc)
            sluice_sql_buf_puts(b, " BC");
        return 0;
    }
    case SLUICE_T_TIME:
        if (v->u.i64 < 0 || v->u.i64 > 86400000000LL)
            return -1;
        put_time_of_day(b, v->u.i64);
        return 0;
    case SLUICE_T_TIMESTAMP:
    case SLUICE_T_TIMESTAMPTZ:
        put_timestamp(b, v->u.i64, col->type == SLUICE_T_TIMESTAMPTZ);
        return 0;
    case SLUICE_T_UUID: {
        if (v->len != 16)
            return -1;
        const uint8_t *u = (const uint8_t *)v->u.ptr;
        char out[37];
        size_t n = 0;
        for (int i = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10)
                out[n++] = '-';
            out[n++] = hexdigits[u[i] >> 4];
            out[n++] = hexdigits[u[i] & 15];
        }
        sluice_sql_buf_append(b, out, n);
        return 0;
    }
    default:
        return -1;
    }
}
