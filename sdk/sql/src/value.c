/*
 * value.c - a value's text in a target dialect's input syntax, for sinks that
 * bind values as text parameters (sink-mysql, sink-odbc) and for sink-pg's
 * COPY rows (which escape text and bytes themselves). The mapping, and
 * what each target cannot hold, is in docs/sql-dialects.md ("Values").
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <sluice_sql/dialect.h>

static const char hexdigits[] = "0123456789abcdef";

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

/* the year range a dialect's date/datetime types hold; SQLite: any */
static bool year_fits(int d, int64_t y)
{
    switch (d) {
    case SLUICE_SQL_MYSQL: return y >= 1000 && y <= 9999;
    case SLUICE_SQL_MSSQL: return y >= 1 && y <= 9999;
    default: return true;
    }
}

/* v in exactly n digits, zero-padded (v < 10^n): rows are full of dates and
 * times, so no printf here */
static void put_fixed(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* date part; years <= 0: PostgreSQL "<1-y> BC" (caller appends " BC"),
 * SQLite astronomical "-0001". Returns false when the dialect cannot hold it. */
static bool put_date(struct sluice_sql_buf *b, int d, int64_t days, bool *bc)
{
    int64_t y;
    unsigned m, dd;
    civil_from_days(days, &y, &m, &dd);
    *bc = false;
    if (!year_fits(d, y))
        return false;
    if (y <= 0 && d == SLUICE_SQL_POSTGRESQL) {
        *bc = true;
        y = 1 - y;
    }
    if (y < 0) {
        sluice_sql_buf_putc(b, '-');
        y = -y;
    }
    char out[6];
    if (y < 10000) {
        put_fixed(out, (unsigned)y, 4);
        sluice_sql_buf_append(b, out, 4);
    } else {
        sluice_sql_buf_put_int(b, y);
    }
    out[0] = '-';
    put_fixed(out + 1, m, 2);
    out[3] = '-';
    put_fixed(out + 4, dd, 2);
    sluice_sql_buf_append(b, out, 6);
    return true;
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

static int put_infinity(struct sluice_sql_buf *b, int d, bool positive)
{
    if (d == SLUICE_SQL_MYSQL || d == SLUICE_SQL_MSSQL)
        return 1; /* no infinity: NULL, see docs/sql-dialects.md */
    sluice_sql_buf_puts(b, positive ? "infinity" : "-infinity");
    return 0;
}

static int put_timestamp(struct sluice_sql_buf *b, int d, int64_t us, bool tz)
{
    if (us == SLUICE_INFINITY || us == SLUICE_NEG_INFINITY)
        return put_infinity(b, d, us == SLUICE_INFINITY);
    int64_t days = us / 86400000000LL, rem = us % 86400000000LL;
    if (rem < 0) {
        rem += 86400000000LL;
        days--;
    }
    bool bc;
    size_t mark = b->len;
    if (!put_date(b, d, days, &bc)) {
        b->len = mark;
        return 1;
    }
    sluice_sql_buf_putc(b, ' ');
    put_time_of_day(b, rem);
    if (tz && d == SLUICE_SQL_MSSQL)
        sluice_sql_buf_puts(b, " +00:00");
    else if (tz && d != SLUICE_SQL_MYSQL) /* MySQL: the datetime(6) holds UTC */
        sluice_sql_buf_puts(b, "+00");
    if (bc)
        sluice_sql_buf_puts(b, " BC");
    return 0;
}

/* shortest text that reads back to the same double / float */
static void put_float(struct sluice_sql_buf *b, double x, bool single)
{
    char tmp[40];
    int lo = single ? 6 : 15, hi = single ? 9 : 17;
    for (int prec = lo; prec <= hi; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, x);
        if (single ? strtof(tmp, NULL) == (float)x : strtod(tmp, NULL) == x)
            break;
    }
    sluice_sql_buf_puts(b, tmp);
}

/* a decimal column the dialect keeps as text (every digit and NaN/Infinity) */
static bool decimal_is_text(int d, const struct sluice_column *c)
{
    switch (d) {
    case SLUICE_SQL_MYSQL:
        return !(c->precision > 0 && c->precision <= 65 && c->scale >= 0 && c->scale <= 30 &&
                 c->scale <= c->precision);
    case SLUICE_SQL_MSSQL:
        return !(c->precision > 0 && c->precision <= 38 && c->scale >= 0 &&
                 c->scale <= c->precision);
    case SLUICE_SQL_SQLITE: return true;
    default: return c->precision == 0; /* PostgreSQL: only unconstrained numeric has +-Infinity */
    }
}

int sluice_sql_value_text(struct sluice_sql_buf *b, int dialect, const struct sluice_column *col,
                          const struct sluice_value *v)
{
    const int d = dialect;
    switch (col->type) {
    case SLUICE_T_BOOL:
        if (d == SLUICE_SQL_POSTGRESQL)
            sluice_sql_buf_putc(b, v->u.i64 ? 't' : 'f');
        else
            sluice_sql_buf_putc(b, v->u.i64 ? '1' : '0');
        return 0;
    case SLUICE_T_INT16:
    case SLUICE_T_INT32:
    case SLUICE_T_INT64:
        sluice_sql_buf_put_int(b, v->u.i64);
        return 0;
    case SLUICE_T_FLOAT32:
    case SLUICE_T_FLOAT64:
        if (isnan(v->u.f64) || isinf(v->u.f64)) {
            if (d == SLUICE_SQL_MYSQL || d == SLUICE_SQL_MSSQL)
                return 1;
            sluice_sql_buf_puts(b, isnan(v->u.f64) ? "NaN"
                                   : v->u.f64 > 0  ? "Infinity"
                                                   : "-Infinity");
            return 0;
        }
        /* PostgreSQL's real reads the float's shortest text back to the same
         * float; the others parse into a double first, which must be exact
         * (else FLT_MAX reads as out of range) */
        put_float(b, v->u.f64, col->type == SLUICE_T_FLOAT32 && d == SLUICE_SQL_POSTGRESQL);
        return 0;
    case SLUICE_T_DECIMAL:
        if (v->len > 0 && (v->u.ptr[0] == 'N' || v->u.ptr[0] == 'I' ||
                           (v->len > 1 && v->u.ptr[1] == 'I')) &&
            !decimal_is_text(d, col))
            return 1;
        sluice_sql_buf_append(b, v->u.ptr, v->len);
        return 0;
    case SLUICE_T_TEXT:
    case SLUICE_T_JSON:
    case SLUICE_T_BYTES: /* raw: the caller binds it as binary */
        sluice_sql_buf_append(b, v->u.ptr, v->len);
        return 0;
    case SLUICE_T_DATE: {
        if (v->u.i64 == SLUICE_INFINITY || v->u.i64 == SLUICE_NEG_INFINITY)
            return put_infinity(b, d, v->u.i64 == SLUICE_INFINITY);
        bool bc;
        size_t mark = b->len;
        if (!put_date(b, d, v->u.i64, &bc)) {
            b->len = mark;
            return 1;
        }
        if (bc)
            sluice_sql_buf_puts(b, " BC");
        return 0;
    }
    case SLUICE_T_TIME:
        if (v->u.i64 < 0 || v->u.i64 > 86400000000LL)
            return -1;
        if (v->u.i64 == 86400000000LL && d == SLUICE_SQL_MSSQL)
            return 1; /* time(6) ends at 23:59:59.9999999 */
        put_time_of_day(b, v->u.i64);
        return 0;
    case SLUICE_T_TIMESTAMP:
    case SLUICE_T_TIMESTAMPTZ:
        return put_timestamp(b, d, v->u.i64, col->type == SLUICE_T_TIMESTAMPTZ);
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

int sluice_sql_record_key(struct sluice_sql_buf *b, int dialect, const struct sluice_event *ev,
                          struct sluice_sql_buf *scratch)
{
    const struct sluice_entity *e = ev->entity;
    for (uint32_t k = 0; k < e->nkeys; k++) {
        uint32_t ci = e->key_columns[k];
        const struct sluice_value *v = &ev->values[ci];
        if (v->state != SLUICE_PRESENT)
            return -1;
        sluice_sql_buf_reset(scratch);
        if (e->columns[ci].type == SLUICE_T_BYTES) {
            sluice_sql_buf_puts(scratch, "\\x");
            for (uint32_t i = 0; i < v->len; i++) {
                sluice_sql_buf_putc(scratch, hexdigits[(uint8_t)v->u.ptr[i] >> 4]);
                sluice_sql_buf_putc(scratch, hexdigits[(uint8_t)v->u.ptr[i] & 15]);
            }
        } else if (sluice_sql_value_text(scratch, dialect, &e->columns[ci], v) != 0) {
            return -1;
        }
        if (e->nkeys == 1) {
            sluice_sql_buf_append(b, scratch->data, scratch->len);
            return 0;
        }
        if (k)
            sluice_sql_buf_putc(b, ',');
        for (size_t i = 0; i < scratch->len; i++) {
            char c = scratch->data[i];
            if (c == ',' || c == '\\')
                sluice_sql_buf_putc(b, '\\');
            sluice_sql_buf_putc(b, c);
        }
    }
    return 0;
}
