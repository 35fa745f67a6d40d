/*
 * value_text.c - canonical text form of every logical type (docs/types.md).
 *
 * Dates and times are computed with Howard Hinnant's days_from_civil /
 * civil_from_days (proleptic Gregorian), never mktime/timegm, so the local
 * zone never leaks in and microseconds stay exact. Decimals stay text.
 */
#include "value_text.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define US_PER_SEC INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_SEC)
#define DECIMAL_MAX_DIGITS 1000 /* per side of the point */
#define FLOAT_TEXT_MAX 1100

/* ---- calendar ----------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

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

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* floor division for negative microsecond counts */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* ---- small scanning helpers (fixed-width fields only) ------------------- */

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool word_is(const char *t, size_t len, const char *w)
{
    return strlen(w) == len && strncasecmp(t, w, len) == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* YYYY-MM-DD at t (exactly 10 bytes) -> days */
static int parse_date10(const char *t, int64_t *days, char *err, size_t errlen)
{
    unsigned y, m, d;
    if (!digits(t, 4, &y) || t[4] != '-' || !digits(t + 5, 2, &m) || t[7] != '-' ||
        !digits(t + 8, 2, &d)) {
        snprintf(err, errlen, "\"%.10s\" is not a date: expected YYYY-MM-DD", t);
        return -1;
    }
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) {
        snprintf(err, errlen,
                 "\"%.10s\" is not a valid date (year 0001..9999, month 01..12, day within the "
                 "month)",
                 t);
        return -1;
    }
    *days = days_from_civil(y, m, d);
    return 0;
}

/* HH:MM:SS[.ffffff] (exactly len bytes) -> microseconds; 24:00:00 allowed */
static int parse_time(const char *t, size_t len, int64_t *us, char *err, size_t errlen)
{
    unsigned hh, mm, ss, frac = 0;
    size_t nfrac = 0;
    if (len < 8 || !digits(t, 2, &hh) || t[2] != ':' || !digits(t + 3, 2, &mm) || t[5] != ':' ||
        !digits(t + 6, 2, &ss))
        goto bad;
    if (len > 8) {
        if (t[8] != '.' || len == 9)
            goto bad;
        nfrac = len - 9;
        if (nfrac > 6) {
            snprintf(err, errlen,
                     "time \"%.*s\" has more than 6 fractional second digits (microseconds are "
                     "the limit)",
                     (int)len, t);
            return -1;
        }
        if (!digits(t + 9, nfrac, &frac))
            goto bad;
        for (size_t i = nfrac; i < 6; i++)
            frac *= 10;
    }
    if (mm > 59 || ss > 59 || hh > 24 || (hh == 24 && (mm || ss || frac))) {
        snprintf(err, errlen, "time \"%.*s\" is out of range (00:00:00 to 24:00:00)", (int)len,
                 t);
        return -1;
    }
    *us = ((int64_t)hh * 3600 + mm * 60 + ss) * US_PER_SEC + frac;
    return 0;
bad:
    snprintf(err, errlen, "\"%.*s\" is not a time: expected HH:MM:SS[.ffffff]", (int)len, t);
    return -1;
}

/* date, separator ' ' or 'T', time -> microseconds since the epoch */
static int parse_timestamp(const char *t, size_t len, int64_t *us, char *err, size_t errlen)
{
    int64_t days, tod;
    if (len < 19 || (t[10] != ' ' && t[10] != 'T')) {
        snprintf(err, errlen,
                 "\"%.*s\" is not a timestamp: expected YYYY-MM-DD HH:MM:SS[.ffffff]",
                 (int)(len > 64 ? 64 : len), t);
        return -1;
    }
    if (parse_date10(t, &days, err, errlen) != 0 ||
        parse_time(t + 11, len - 11, &tod, err, errlen) != 0)
        return -1;
    *us = days * US_PER_DAY + tod;
    return 0;
}

/* ---- parse -------------------------------------------------------------- */

static int parse_int(const struct sluice_column *col, const char *t, size_t len, int64_t *out,
                     char *err, size_t errlen)
{
    char buf[32];
    int64_t lo, hi;
    switch (col->type) {
    case SLUICE_T_INT16: lo = INT16_MIN; hi = INT16_MAX; break;
    case SLUICE_T_INT32: lo = INT32_MIN; hi = INT32_MAX; break;
    default: lo = INT64_MIN; hi = INT64_MAX; break;
    }
    size_t i = (len && (t[0] == '-' || t[0] == '+')) ? 1 : 0;
    if (len == i || len >= sizeof buf)
        goto bad;
    /* digits only, accumulated with an overflow check (no strtoll: this runs
     * for every integer of every row) */
    uint64_t acc = 0;
    bool over = false;
    for (size_t k = i; k < len; k++) {
        if (t[k] < '0' || t[k] > '9')
            goto bad;
        unsigned d = (unsigned)(t[k] - '0');
        if (acc > (UINT64_MAX - d) / 10)
            over = true;
        else
            acc = acc * 10 + d;
    }
    bool neg = t[0] == '-';
    int64_t v = 0;
    if (!over && acc <= (uint64_t)INT64_MAX)
        v = neg ? -(int64_t)acc : (int64_t)acc;
    else if (!over && neg && acc == (uint64_t)INT64_MAX + 1)
        v = INT64_MIN;
    else
        over = true;
    if (over || v < lo || v > hi) {
        memcpy(buf, t, len);
        buf[len] = '\0';
        snprintf(err, errlen, "%s value %s is out of range (%" PRId64 "..%" PRId64 ")",
                 sluice_type_name(col->type), buf, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
bad:
    snprintf(err, errlen, "\"%.*s\" is not an integer: expected [-]digits",
             (int)(len > 40 ? 40 : len), t);
    return -1;
}

static int parse_float(const struct sluice_column *col, const char *t, size_t len, double *out,
                       char *err, size_t errlen)
{
    char buf[FLOAT_TEXT_MAX + 1];
    if (word_is(t, len, "NaN")) {
        *out = NAN;
        return 0;
    }
    if (word_is(t, len, "Infinity") || word_is(t, len, "+Infinity") || word_is(t, len, "inf") ||
        word_is(t, len, "+inf")) {
        *out = INFINITY;
        return 0;
    }
    if (word_is(t, len, "-Infinity") || word_is(t, len, "-inf")) {
        *out = -INFINITY;
        return 0;
    }
    if (len == 0 || len > FLOAT_TEXT_MAX)
        goto bad;
    /* plain decimal notation only: no hex floats, no spaces, no nan(...) */
    bool digit = false;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (c >= '0' && c <= '9')
            digit = true;
        else if (c != '+' && c != '-' && c != '.' && c != 'e' && c != 'E')
            goto bad;
    }
    if (!digit)
        goto bad;
    memcpy(buf, t, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    if (col->type == SLUICE_T_FLOAT32) {
        float f = strtof(buf, &end);
        if (*end)
            goto bad;
        if (isinf(f))
            goto range;
        *out = f;
    } else {
        double d = strtod(buf, &end);
        if (*end)
            goto bad;
        if (isinf(d))
            goto range;
        *out = d;
    }
    return 0; /* underflow to a denormal or zero is fine */
range:
    snprintf(err, errlen, "%s value %.40s is out of range", sluice_type_name(col->type), buf);
    return -1;
bad:
    snprintf(err, errlen,
             "\"%.*s\" is not a %s: expected a decimal number, NaN, Infinity or -Infinity",
             (int)(len > 40 ? 40 : len), t, sluice_type_name(col->type));
    return -1;
}

/* digit k of a decimal's digit run (integer digits then fraction digits);
 * positions outside the run are the zeros an exponent shifts in */
static char decimal_digit(const char *t, size_t int_start, size_t int_len, size_t frac_start,
                          size_t ndig, long k)
{
    if (k < 0 || (size_t)k >= ndig)
        return '0';
    return (size_t)k < int_len ? t[int_start + (size_t)k] : t[frac_start + (size_t)k - int_len];
}

/*
 * Decimal: [+-]digits[.digits][e[+-]digits] -> [-]digits[.digits] with no
 * superfluous leading zeros; fractional digits are kept (they carry the
 * scale). Exact: only digit strings are moved around.
 */
static int parse_decimal(const struct sluice_column *col, const char *t, size_t len,
                         struct sl_batch *b, struct sluice_value *out, char *err, size_t errlen)
{
    const char *special = NULL;
    if (word_is(t, len, "NaN"))
        special = "NaN";
    else if (word_is(t, len, "Infinity") || word_is(t, len, "+Infinity") ||
             word_is(t, len, "inf") || word_is(t, len, "+inf"))
        special = "Infinity";
    else if (word_is(t, len, "-Infinity") || word_is(t, len, "-inf"))
        special = "-Infinity";
    if (special) {
        const char *p = sl_batch_copy(b, special, strlen(special));
        if (!p)
            goto nomem;
        sluice_value_set_ref(out, p, (uint32_t)strlen(special));
        return 0;
    }

    size_t i = 0;
    bool neg = false;
    if (i < len && (t[i] == '+' || t[i] == '-'))
        neg = t[i++] == '-';
    size_t int_start = i;
    while (i < len && t[i] >= '0' && t[i] <= '9')
        i++;
    size_t int_len = i - int_start;
    size_t frac_start = i, frac_len = 0;
    if (i < len && t[i] == '.') {
        frac_start = ++i;
        while (i < len && t[i] >= '0' && t[i] <= '9')
            i++;
        frac_len = i - frac_start;
    }
    if (int_len + frac_len == 0)
        goto bad;
    long exp = 0;
    if (i < len && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < len && (t[i] == '+' || t[i] == '-'))
            eneg = t[i++] == '-';
        size_t es = i;
        while (i < len && t[i] >= '0' && t[i] <= '9') {
            if (exp > 100000)
                goto toolong;
            exp = exp * 10 + (t[i] - '0');
            i++;
        }
        if (i == es)
            goto bad;
        if (eneg)
            exp = -exp;
    }
    if (i != len)
        goto bad;

    /* all digits in one run; the point sits after `point` of them */
    size_t ndig = int_len + frac_len;
    long point = (long)int_len + exp;
    /* skip leading zeros that stay left of the point */
    size_t first = 0;
    while ((long)first < point) {
        char c = decimal_digit(t, int_start, int_len, frac_start, ndig, (long)first);
        if (c != '0')
            break;
        first++;
    }
    long ip = point - (long)first; /* integer digits after stripping */
    long fp = (long)ndig - point;  /* fractional digits */
    if (fp < 0)
        fp = 0;
    if (ip > DECIMAL_MAX_DIGITS || fp > DECIMAL_MAX_DIGITS)
        goto toolong;
    if (col->precision > 0) {
        if (fp > col->scale) {
            snprintf(err, errlen,
                     "decimal \"%.*s\" has %ld fractional digits but the column allows %d "
                     "(decimal(%d,%d)); values are never rounded",
                     (int)(len > 60 ? 60 : len), t, fp, col->scale, col->precision, col->scale);
            return -1;
        }
        if (ip > col->precision - col->scale) {
            snprintf(err, errlen,
                     "decimal \"%.*s\" has %ld integer digits but decimal(%d,%d) allows %d",
                     (int)(len > 60 ? 60 : len), t, ip, col->precision, col->scale,
                     col->precision - col->scale);
            return -1;
        }
    }
    size_t cap = 1 + (size_t)(ip > 0 ? ip : 1) + 1 + (size_t)fp;
    char *o = sl_batch_alloc(b, cap);
    if (!o)
        goto nomem;
    size_t n = 0;
    bool nonzero = false;
    if (neg)
        o[n++] = '-';
    if (ip <= 0)
        o[n++] = '0';
    for (long k = (long)first; k < point; k++) {
        char c = decimal_digit(t, int_start, int_len, frac_start, ndig, k);
        nonzero |= c != '0';
        o[n++] = c;
    }
    if (fp > 0) {
        o[n++] = '.';
        for (long k = point; k < (long)ndig; k++) {
            char c = decimal_digit(t, int_start, int_len, frac_start, ndig, k);
            nonzero |= c != '0';
            o[n++] = c;
        }
    }
    if (!nonzero && neg) { /* -0.00 is 0.00 */
        memmove(o, o + 1, n - 1);
        n--;
    }
    sluice_value_set_ref(out, o, (uint32_t)n);
    return 0;
toolong:
    snprintf(err, errlen, "decimal \"%.*s\" has more than %d digits before or after the point",
             (int)(len > 60 ? 60 : len), t, DECIMAL_MAX_DIGITS);
    return -1;
bad:
    snprintf(err, errlen,
             "\"%.*s\" is not a decimal: expected [-]digits[.digits], NaN, Infinity or -Infinity",
             (int)(len > 60 ? 60 : len), t);
    return -1;
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int parse_bytes(const char *t, size_t len, struct sl_batch *b, struct sluice_value *out,
                       char *err, size_t errlen)
{
    if (len < 2 || t[0] != '\\' || (t[1] != 'x' && t[1] != 'X') || len % 2) {
        snprintf(err, errlen,
                 "bytes must be written in hex form \\x followed by an even number of hex digits "
                 "(\\x00ff)");
        return -1;
    }
    size_t n = (len - 2) / 2;
    if (n > UINT32_MAX) {
        snprintf(err, errlen, "bytes value is larger than 4 GiB");
        return -1;
    }
    unsigned char *o = sl_batch_alloc(b, n);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(t[2 + 2 * i]), lo = hexval(t[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            snprintf(err, errlen, "bytes value has a non-hex character at offset %zu",
                     2 + 2 * i + (hi < 0 ? 0 : 1));
            return -1;
        }
        o[i] = (unsigned char)(hi << 4 | lo);
    }
    sluice_value_set_ref(out, o, (uint32_t)n);
    return 0;
}

static int parse_uuid(const char *t, size_t len, struct sl_batch *b, struct sluice_value *out,
                      char *err, size_t errlen)
{
    unsigned char u[16];
    size_t k = 0;
    if (len != 36)
        goto bad;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (t[i] != '-')
                goto bad;
            i++;
            continue;
        }
        int hi = hexval(t[i]), lo = hexval(t[i + 1]);
        if (hi < 0 || lo < 0)
            goto bad;
        u[k++] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    const char *p = sl_batch_copy(b, u, 16);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sluice_value_set_ref(out, p, 16);
    return 0;
bad:
    snprintf(err, errlen,
             "\"%.*s\" is not a uuid: expected 8-4-4-4-12 hex digits "
             "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
             (int)(len > 40 ? 40 : len), t);
    return -1;
}

static int parse_tz_offset(const char *t, size_t len, int64_t *off_us)
{
    /* Z | +HH | +HHMM | +HH:MM */
    unsigned hh = 0, mm = 0;
    if (len == 1 && (t[0] == 'Z' || t[0] == 'z')) {
        *off_us = 0;
        return 0;
    }
    if (len < 3 || (t[0] != '+' && t[0] != '-') || !digits(t + 1, 2, &hh))
        return -1;
    if (len == 5) {
        if (!digits(t + 3, 2, &mm))
            return -1;
    } else if (len == 6) {
        if (t[3] != ':' || !digits(t + 4, 2, &mm))
            return -1;
    } else if (len != 3) {
        return -1;
    }
    if (hh > 15 || mm > 59)
        return -1;
    int64_t off = ((int64_t)hh * 3600 + mm * 60) * US_PER_SEC;
    *off_us = t[0] == '-' ? -off : off;
    return 0;
}

static int parse_timestamptz(const char *t, size_t len, int64_t *us, char *err, size_t errlen)
{
    /* the offset starts at the first Z/+/- after the time's seconds */
    size_t z = len;
    for (size_t i = 19; i < len; i++) {
        if (t[i] == 'Z' || t[i] == 'z' || t[i] == '+' || t[i] == '-') {
            z = i;
            break;
        }
    }
    int64_t off = 0;
    if (z < len && parse_tz_offset(t + z, len - z, &off) != 0) {
        snprintf(err, errlen,
                 "timestamptz \"%.*s\" has a bad zone offset: use Z, +HH, +HHMM or +HH:MM",
                 (int)(len > 64 ? 64 : len), t);
        return -1;
    }
    if (parse_timestamp(t, z, us, err, errlen) != 0)
        return -1;
    *us -= off;
    return 0;
}

int sl_value_parse(const struct sluice_column *col, const char *text, size_t len,
                   struct sl_batch *b, struct sluice_value *out, char *err, size_t errlen)
{
    int64_t i64;
    double f64;
    const char *p;
    if (!text)
        text = ""; /* an empty value may come without a buffer */
    if (len > UINT32_MAX) {
        snprintf(err, errlen, "value is larger than 4 GiB");
        return -1;
    }
    switch (col->type) {
    case SLUICE_T_BOOL:
        if (word_is(text, len, "true") || word_is(text, len, "t") || word_is(text, len, "1") ||
            word_is(text, len, "yes")) {
            sluice_value_set_int(out, 1);
            return 0;
        }
        if (word_is(text, len, "false") || word_is(text, len, "f") || word_is(text, len, "0") ||
            word_is(text, len, "no")) {
            sluice_value_set_int(out, 0);
            return 0;
        }
        snprintf(err, errlen, "\"%.*s\" is not a bool: expected true or false",
                 (int)(len > 40 ? 40 : len), text);
        return -1;
    case SLUICE_T_INT16:
    case SLUICE_T_INT32:
    case SLUICE_T_INT64:
        if (parse_int(col, text, len, &i64, err, errlen) != 0)
            return -1;
        sluice_value_set_int(out, i64);
        return 0;
    case SLUICE_T_FLOAT32:
    case SLUICE_T_FLOAT64:
        if (parse_float(col, text, len, &f64, err, errlen) != 0)
            return -1;
        sluice_value_set_float(out, f64);
        return 0;
    case SLUICE_T_DECIMAL:
        return parse_decimal(col, text, len, b, out, err, errlen);
    case SLUICE_T_TEXT:
        if (memchr(text, '\0', len)) {
            snprintf(err, errlen, "text contains a NUL byte; use a bytes column for binary data");
            return -1;
        }
        goto copy;
    case SLUICE_T_BYTES:
        return parse_bytes(text, len, b, out, err, errlen);
    case SLUICE_T_DATE:
        if (word_is(text, len, "infinity") || word_is(text, len, "+infinity")) {
            sluice_value_set_int(out, SLUICE_INFINITY);
            return 0;
        }
        if (word_is(text, len, "-infinity")) {
            sluice_value_set_int(out, SLUICE_NEG_INFINITY);
            return 0;
        }
        if (len != 10) {
            snprintf(err, errlen, "\"%.*s\" is not a date: expected YYYY-MM-DD",
                     (int)(len > 40 ? 40 : len), text);
            return -1;
        }
        if (parse_date10(text, &i64, err, errlen) != 0)
            return -1;
        sluice_value_set_int(out, i64);
        return 0;
    case SLUICE_T_TIME:
        if (parse_time(text, len, &i64, err, errlen) != 0)
            return -1;
        sluice_value_set_int(out, i64);
        return 0;
    case SLUICE_T_TIMESTAMP:
    case SLUICE_T_TIMESTAMPTZ:
        if (word_is(text, len, "infinity") || word_is(text, len, "+infinity")) {
            sluice_value_set_int(out, SLUICE_INFINITY);
            return 0;
        }
        if (word_is(text, len, "-infinity")) {
            sluice_value_set_int(out, SLUICE_NEG_INFINITY);
            return 0;
        }
        if ((col->type == SLUICE_T_TIMESTAMP ? parse_timestamp(text, len, &i64, err, errlen)
                                             : parse_timestamptz(text, len, &i64, err, errlen)) !=
            0)
            return -1;
        sluice_value_set_int(out, i64);
        return 0;
    case SLUICE_T_UUID:
        return parse_uuid(text, len, b, out, err, errlen);
    case SLUICE_T_JSON: {
        json_error_t jerr;
        json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
        if (!j) {
            snprintf(err, errlen, "not valid JSON at line %d column %d: %s", jerr.line,
                     jerr.column, jerr.text);
            return -1;
        }
        json_decref(j);
        goto copy;
    }
    default:
        snprintf(err, errlen, "column \"%s\" has unknown type %u", col->name ? col->name : "?",
                 col->type);
        return -1;
    }
copy:
    p = sl_batch_copy(b, text, len);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sluice_value_set_ref(out, p, (uint32_t)len);
    return 0;
}

/* ---- format ------------------------------------------------------------- */

/* copy n bytes of s into buf (cap), NUL-terminate when it fits; returns n */
static size_t put(char *buf, size_t cap, const char *s, size_t n)
{
    if (cap) {
        size_t k = n < cap ? n : cap - 1;
        if (k)
            memcpy(buf, s, k);
        buf[k] = '\0';
    }
    return n;
}

/* ".ffffff" with trailing zeros trimmed, nothing when frac is 0 */
static size_t fmt_frac(char *o, int64_t frac)
{
    if (frac == 0)
        return 0;
    char f[24]; /* frac is 1..999999; room for any int64 keeps -Wformat-truncation quiet */
    snprintf(f, sizeof f, ".%06" PRId64, frac);
    size_t n = 7;
    while (f[n - 1] == '0')
        n--;
    memcpy(o, f, n);
    return n;
}

static size_t fmt_date(char *o, int64_t days)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    return (size_t)sprintf(o, "%04" PRId64 "-%02u-%02u", y, m, d);
}

static size_t fmt_time(char *o, int64_t us)
{
    int64_t s = us / US_PER_SEC;
    size_t n = (size_t)sprintf(o, "%02" PRId64 ":%02" PRId64 ":%02" PRId64, s / 3600,
                               (s / 60) % 60, s % 60);
    return n + fmt_frac(o + n, us % US_PER_SEC);
}

static size_t fmt_timestamp(char *o, int64_t us)
{
    int64_t days = floor_div(us, US_PER_DAY);
    size_t n = fmt_date(o, days);
    o[n++] = ' ';
    return n + fmt_time(o + n, us - days * US_PER_DAY);
}

static size_t fmt_float(char *o, size_t cap, double v, bool single)
{
    if (isnan(v))
        return (size_t)snprintf(o, cap, "NaN");
    if (isinf(v))
        return (size_t)snprintf(o, cap, v > 0 ? "Infinity" : "-Infinity");
    int lo = single ? 6 : 15, hi = single ? 9 : 17;
    size_t n = 0;
    for (int p = lo; p <= hi; p++) {
        n = (size_t)snprintf(o, cap, "%.*g", p, v);
        if (single ? strtof(o, NULL) == (float)v : strtod(o, NULL) == v)
            break;
    }
    return n;
}

size_t sl_value_format(const struct sluice_column *col, const struct sluice_value *v, char *buf,
                       size_t cap)
{
    char tmp[64];
    size_t n;
    if (v->state != SLUICE_PRESENT)
        return put(buf, cap, "", 0);
    switch (col->type) {
    case SLUICE_T_BOOL:
        return v->u.i64 ? put(buf, cap, "true", 4) : put(buf, cap, "false", 5);
    case SLUICE_T_INT16:
    case SLUICE_T_INT32:
    case SLUICE_T_INT64:
        n = (size_t)snprintf(tmp, sizeof tmp, "%" PRId64, v->u.i64);
        return put(buf, cap, tmp, n);
    case SLUICE_T_FLOAT32:
    case SLUICE_T_FLOAT64:
        n = fmt_float(tmp, sizeof tmp, v->u.f64, col->type == SLUICE_T_FLOAT32);
        return put(buf, cap, tmp, n);
    case SLUICE_T_DECIMAL:
    case SLUICE_T_TEXT:
    case SLUICE_T_JSON:
        return put(buf, cap, v->u.ptr, v->len);
    case SLUICE_T_BYTES: {
        static const char hex[] = "0123456789abcdef";
        size_t need = 2 + 2 * (size_t)v->len;
        if (cap > need) {
            const unsigned char *s = (const unsigned char *)v->u.ptr;
            buf[0] = '\\';
            buf[1] = 'x';
            for (uint32_t i = 0; i < v->len; i++) {
                buf[2 + 2 * i] = hex[s[i] >> 4];
                buf[3 + 2 * i] = hex[s[i] & 15];
            }
            buf[need] = '\0';
        } else if (cap) {
            buf[0] = '\0'; /* a truncated hex string would be misleading */
        }
        return need;
    }
    case SLUICE_T_DATE:
        if (v->u.i64 == SLUICE_INFINITY)
            return put(buf, cap, "infinity", 8);
        if (v->u.i64 == SLUICE_NEG_INFINITY)
            return put(buf, cap, "-infinity", 9);
        if (v->u.i64 < -INT64_C(100000000) || v->u.i64 > INT64_C(100000000))
            return put(buf, cap, "?", 1); /* not a date a parser could produce */
        return put(buf, cap, tmp, fmt_date(tmp, v->u.i64));
    case SLUICE_T_TIME:
        if (v->u.i64 < 0 || v->u.i64 > US_PER_DAY)
            return put(buf, cap, "?", 1);
        return put(buf, cap, tmp, fmt_time(tmp, v->u.i64));
    case SLUICE_T_TIMESTAMP:
    case SLUICE_T_TIMESTAMPTZ:
        if (v->u.i64 == SLUICE_INFINITY)
            return put(buf, cap, "infinity", 8);
        if (v->u.i64 == SLUICE_NEG_INFINITY)
            return put(buf, cap, "-infinity", 9);
        if (v->u.i64 < INT64_MIN + US_PER_DAY || v->u.i64 > INT64_MAX - US_PER_DAY)
            return put(buf, cap, "?", 1); /* keeps the day arithmetic from overflowing */
        n = fmt_timestamp(tmp, v->u.i64);
        if (col->type == SLUICE_T_TIMESTAMPTZ) {
            memcpy(tmp + n, "+00", 4);
            n += 3;
        }
        return put(buf, cap, tmp, n);
    case SLUICE_T_UUID: {
        const unsigned char *u = (const unsigned char *)v->u.ptr;
        if (v->len != 16)
            return put(buf, cap, "?", 1);
        n = (size_t)snprintf(tmp, sizeof tmp,
                             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
                             u[11], u[12], u[13], u[14], u[15]);
        return put(buf, cap, tmp, n);
    }
    default:
        return put(buf, cap, "?", 1);
    }
}

int sl_record_id_next(const char **p, bool last, struct sl_buf *out, bool *is_null)
{
    const char *s = *p;
    sl_buf_reset(out);
    *is_null = false;
    if (*s == '"') {
        for (s++;; s++) {
            if (!*s)
                return -1; /* the quote is not closed */
            if (*s == '"') {
                if (s[1] != '"')
                    break;
                s++;
            }
            sl_buf_append(out, s, 1);
        }
        s++;
        if (*s && *s != ',')
            return -1;
    } else {
        /* the last value runs to the end: ids written before quoting existed
         * (one key with a ',' in it) still read back */
        const char *end = last ? NULL : strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        *is_null = len == 4 && memcmp(s, "NULL", 4) == 0;
        sl_buf_append(out, s, len);
        s += len;
    }
    sl_buf_append(out, "", 1);
    out->len--;
    *p = *s == ',' ? s + 1 : s;
    return 0;
}
