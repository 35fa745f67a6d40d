/* Canonical text form: every logical type reads back exactly what it printed,
 * edge values survive, and malformed or out-of-range text is refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "value_text.h"
#include "util.h"

#include <sluice/record_id.h>

static struct sl_batch *batch;

static int setup(void **state)
{
    batch = sl_batch_new(0, 0);
    return batch ? 0 : -1;
}

static int teardown(void **state)
{
    sl_batch_free(batch);
    return 0;
}

static struct sluice_column col_of(int type)
{
    struct sluice_column c = {.name = "c", .type = (uint16_t)type, .flags = SLUICE_COL_NULLABLE};
    return c;
}

static struct sluice_value parse_ok(const struct sluice_column *c, const char *text, size_t len)
{
    char err[256] = "";
    struct sluice_value v = {0};
    int rc = sl_value_parse(c, text, len, batch, &v, err, sizeof err);
    if (rc != 0)
        fail_msg("parse of %s \"%.*s\" failed: %s", sluice_type_name(c->type), (int)len, text, err);
    assert_int_equal(v.state, SLUICE_PRESENT);
    return v;
}

static void parse_bad(const struct sluice_column *c, const char *text)
{
    char err[256] = "";
    struct sluice_value v = {0};
    if (sl_value_parse(c, text, strlen(text), batch, &v, err, sizeof err) == 0)
        fail_msg("%s \"%s\" was accepted", sluice_type_name(c->type), text);
    assert_true(err[0] != '\0');
}

static char out[4096];

static const char *fmt(const struct sluice_column *c, const struct sluice_value *v)
{
    size_t n = sl_value_format(c, v, out, sizeof out);
    assert_true(n < sizeof out);
    assert_int_equal(strlen(out), n);
    return out;
}

static bool same_value(int type, const struct sluice_value *a, const struct sluice_value *b)
{
    if (a->state != b->state)
        return false;
    if (sluice_type_is_varlen(type))
        return a->len == b->len && memcmp(a->u.ptr, b->u.ptr, a->len) == 0;
    if (type == SLUICE_T_FLOAT32 || type == SLUICE_T_FLOAT64)
        return memcmp(&a->u.f64, &b->u.f64, sizeof(double)) == 0 ||
               (isnan(a->u.f64) && isnan(b->u.f64));
    return a->u.i64 == b->u.i64;
}

/* text -> value -> canonical text (== expect) -> value (== first value) */
static void roundtrip(int type, const char *text, const char *expect)
{
    struct sluice_column c = col_of(type);
    struct sluice_value v = parse_ok(&c, text, strlen(text));
    const char *f = fmt(&c, &v);
    if (strcmp(f, expect) != 0)
        fail_msg("%s \"%s\" formats as \"%s\", expected \"%s\"", sluice_type_name(type), text, f,
                 expect);
    char copy[4096];
    strcpy(copy, f);
    struct sluice_value v2 = parse_ok(&c, copy, strlen(copy));
    assert_true(same_value(type, &v, &v2));
}

static void bool_and_ints_roundtrip_and_check_range(void **state)
{
    roundtrip(SLUICE_T_BOOL, "true", "true");
    roundtrip(SLUICE_T_BOOL, "F", "false");
    roundtrip(SLUICE_T_BOOL, "Yes", "true");
    roundtrip(SLUICE_T_BOOL, "0", "false");
    roundtrip(SLUICE_T_INT16, "-32768", "-32768");
    roundtrip(SLUICE_T_INT16, "+32767", "32767");
    roundtrip(SLUICE_T_INT32, "-2147483648", "-2147483648");
    roundtrip(SLUICE_T_INT64, "9223372036854775807", "9223372036854775807");
    roundtrip(SLUICE_T_INT64, "-9223372036854775808", "-9223372036854775808");
    struct sluice_column c16 = col_of(SLUICE_T_INT16), c64 = col_of(SLUICE_T_INT64),
                         cb = col_of(SLUICE_T_BOOL);
    parse_bad(&c16, "32768");
    parse_bad(&c16, "-32769");
    parse_bad(&c64, "9223372036854775808");
    parse_bad(&c64, "-9223372036854775809");
    parse_bad(&c64, "18446744073709551616"); /* past uint64 too */
    parse_bad(&c64, "99999999999999999999999");
    roundtrip(SLUICE_T_INT64, "-0", "0");
    roundtrip(SLUICE_T_INT32, "0000000000000000000000042", "42");
    parse_bad(&c64, " 1");
    parse_bad(&c64, "1.0");
    parse_bad(&c64, "");
    parse_bad(&c64, "-");
    parse_bad(&cb, "maybe");
}

static void floats_print_shortest_text_that_reads_back(void **state)
{
    roundtrip(SLUICE_T_FLOAT64, "0.1", "0.1");
    roundtrip(SLUICE_T_FLOAT64, "1e300", "1e+300");
    roundtrip(SLUICE_T_FLOAT64, "-0", "-0");
    roundtrip(SLUICE_T_FLOAT64, "NaN", "NaN");
    roundtrip(SLUICE_T_FLOAT64, "inf", "Infinity");
    roundtrip(SLUICE_T_FLOAT64, "-Infinity", "-Infinity");
    roundtrip(SLUICE_T_FLOAT64, "2.2250738585072014e-308", "2.2250738585072014e-308");
    roundtrip(SLUICE_T_FLOAT64, "0.30000000000000004", "0.30000000000000004");
    roundtrip(SLUICE_T_FLOAT32, "0.1", "0.1");
    roundtrip(SLUICE_T_FLOAT32, "3.4028235e38", "3.4028235e+38");
    roundtrip(SLUICE_T_FLOAT32, "16777217", "16777216");
    struct sluice_column c = col_of(SLUICE_T_FLOAT64), c32 = col_of(SLUICE_T_FLOAT32);
    parse_bad(&c, "1e400");
    parse_bad(&c32, "1e39");
    parse_bad(&c, "0x10");
    parse_bad(&c, "nan(1)");
    parse_bad(&c, "1,5");
    parse_bad(&c, "");
    /* every float64 bit pattern prints to text that reads back to the same bits */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (isnan(d))
            continue;
        struct sluice_value v = {.state = SLUICE_PRESENT};
        v.u.f64 = d;
        const char *f = fmt(&c, &v);
        struct sluice_value v2 = parse_ok(&c, f, strlen(f));
        assert_memory_equal(&v.u.f64, &v2.u.f64, sizeof(double));
        float fl = (float)d;
        if (isinf(fl))
            continue;
        v.u.f64 = fl;
        f = fmt(&c32, &v);
        v2 = parse_ok(&c32, f, strlen(f));
        assert_memory_equal(&v.u.f64, &v2.u.f64, sizeof(double));
    }
}

static void decimals_stay_exact_text_and_respect_scale(void **state)
{
    roundtrip(SLUICE_T_DECIMAL, "12345678901234567890123456789012345678",
              "12345678901234567890123456789012345678");
    roundtrip(SLUICE_T_DECIMAL, "-1234567890123456789012345678.9012345678",
              "-1234567890123456789012345678.9012345678");
    roundtrip(SLUICE_T_DECIMAL, "-0.001", "-0.001");
    roundtrip(SLUICE_T_DECIMAL, "+007.50", "7.50");
    roundtrip(SLUICE_T_DECIMAL, ".5", "0.5");
    roundtrip(SLUICE_T_DECIMAL, "5.", "5");
    roundtrip(SLUICE_T_DECIMAL, "-0.00", "0.00");
    roundtrip(SLUICE_T_DECIMAL, "1.5e3", "1500");
    roundtrip(SLUICE_T_DECIMAL, "1.25E-3", "0.00125");
    roundtrip(SLUICE_T_DECIMAL, "-12.5e-1", "-1.25");
    roundtrip(SLUICE_T_DECIMAL, "0e5", "0");
    roundtrip(SLUICE_T_DECIMAL, "nan", "NaN");
    roundtrip(SLUICE_T_DECIMAL, "Infinity", "Infinity");
    roundtrip(SLUICE_T_DECIMAL, "-inf", "-Infinity");

    struct sluice_column c = col_of(SLUICE_T_DECIMAL);
    c.precision = 10;
    c.scale = 2;
    parse_ok(&c, "12345678.91", 11);
    parse_ok(&c, "-0.5", 4);
    parse_bad(&c, "1.234");      /* more fraction digits than scale: never rounded */
    parse_bad(&c, "123456789.1"); /* 9 integer digits > 10-2 */
    struct sluice_column u = col_of(SLUICE_T_DECIMAL);
    parse_bad(&u, "1.2.3");
    parse_bad(&u, "1e");
    parse_bad(&u, "--1");
    parse_bad(&u, ".");
    parse_bad(&u, "1 ");
    parse_bad(&u, "1e999999999");
}

static void text_bytes_uuid_json_keep_every_byte(void **state)
{
    roundtrip(SLUICE_T_TEXT, "", "");
    roundtrip(SLUICE_T_TEXT, "smile \xf0\x9f\x98\x80 end", "smile \xf0\x9f\x98\x80 end");
    struct sluice_column t = col_of(SLUICE_T_TEXT);
    char err[128];
    struct sluice_value v;
    assert_int_equal(sl_value_parse(&t, "a\0b", 3, batch, &v, err, sizeof err), -1);

    roundtrip(SLUICE_T_BYTES, "\\x", "\\x");
    roundtrip(SLUICE_T_BYTES, "\\x00FF0a", "\\x00ff0a");
    struct sluice_column by = col_of(SLUICE_T_BYTES);
    v = parse_ok(&by, "\\x610062", 8);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.u.ptr, "a\0b", 3);
    parse_bad(&by, "00ff");
    parse_bad(&by, "\\x0");
    parse_bad(&by, "\\xzz");
    char small[4];
    assert_int_equal(sl_value_format(&by, &v, small, sizeof small), 8);

    roundtrip(SLUICE_T_UUID, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
              "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    struct sluice_column uu = col_of(SLUICE_T_UUID);
    v = parse_ok(&uu, "00112233-4455-6677-8899-aabbccddeeff", 36);
    assert_int_equal(v.len, 16);
    assert_memory_equal(v.u.ptr, "\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff",
                        16);
    parse_bad(&uu, "a0eebc999c0b4ef8bb6d6bb9bd380a11");
    parse_bad(&uu, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}");
    parse_bad(&uu, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g");
    parse_bad(&uu, "a0eebc99-9c0b-4ef8-bb6d6-bb9bd380a11");

    roundtrip(SLUICE_T_JSON, "{\"a\": [1, 2.5, null]}", "{\"a\": [1, 2.5, null]}");
    roundtrip(SLUICE_T_JSON, "42", "42");
    struct sluice_column j = col_of(SLUICE_T_JSON);
    parse_bad(&j, "{\"a\":");
    parse_bad(&j, "");
}

static void dates_and_times_are_exact_to_the_microsecond(void **state)
{
    roundtrip(SLUICE_T_DATE, "1970-01-01", "1970-01-01");
    roundtrip(SLUICE_T_DATE, "2024-02-29", "2024-02-29");
    roundtrip(SLUICE_T_DATE, "2000-02-29", "2000-02-29");
    roundtrip(SLUICE_T_DATE, "0001-01-01", "0001-01-01");
    roundtrip(SLUICE_T_DATE, "9999-12-31", "9999-12-31");
    roundtrip(SLUICE_T_DATE, "1969-12-31", "1969-12-31");
    roundtrip(SLUICE_T_DATE, "Infinity", "infinity");
    roundtrip(SLUICE_T_DATE, "-infinity", "-infinity");
    struct sluice_column d = col_of(SLUICE_T_DATE);
    struct sluice_value v = parse_ok(&d, "1970-01-02", 10);
    assert_int_equal(v.u.i64, 1);
    v = parse_ok(&d, "1969-12-31", 10);
    assert_int_equal(v.u.i64, -1);
    parse_bad(&d, "2023-02-29");
    parse_bad(&d, "1900-02-29");
    parse_bad(&d, "2024-04-31");
    parse_bad(&d, "2024-13-01");
    parse_bad(&d, "0000-01-01");
    parse_bad(&d, "2024-1-01");
    parse_bad(&d, "20240101");

    roundtrip(SLUICE_T_TIME, "00:00:00", "00:00:00");
    roundtrip(SLUICE_T_TIME, "23:59:59.999999", "23:59:59.999999");
    roundtrip(SLUICE_T_TIME, "12:00:00.500", "12:00:00.5");
    roundtrip(SLUICE_T_TIME, "24:00:00", "24:00:00");
    struct sluice_column t = col_of(SLUICE_T_TIME);
    v = parse_ok(&t, "00:00:00.000001", 15);
    assert_int_equal(v.u.i64, 1);
    parse_bad(&t, "25:00:00");
    parse_bad(&t, "24:00:00.000001");
    parse_bad(&t, "12:60:00");
    parse_bad(&t, "12:00:00.1234567");
    parse_bad(&t, "12:00:00.");
    parse_bad(&t, "12:00");

    roundtrip(SLUICE_T_TIMESTAMP, "2024-02-29 12:34:56.000001", "2024-02-29 12:34:56.000001");
    roundtrip(SLUICE_T_TIMESTAMP, "2024-02-29T12:34:56", "2024-02-29 12:34:56");
    roundtrip(SLUICE_T_TIMESTAMP, "1969-12-31 23:59:59.999999", "1969-12-31 23:59:59.999999");
    roundtrip(SLUICE_T_TIMESTAMP, "0001-01-01 00:00:00", "0001-01-01 00:00:00");
    roundtrip(SLUICE_T_TIMESTAMP, "2023-12-31 24:00:00", "2024-01-01 00:00:00");
    roundtrip(SLUICE_T_TIMESTAMP, "infinity", "infinity");
    roundtrip(SLUICE_T_TIMESTAMP, "-infinity", "-infinity");
    struct sluice_column ts = col_of(SLUICE_T_TIMESTAMP);
    v = parse_ok(&ts, "1969-12-31 23:59:59.999999", 26);
    assert_int_equal(v.u.i64, -1);
    parse_bad(&ts, "2024-02-29");
    parse_bad(&ts, "2024-02-29 12:34:56+00");
    parse_bad(&ts, "2023-02-29 00:00:00");
}

static void timestamptz_offsets_normalise_to_utc(void **state)
{
    roundtrip(SLUICE_T_TIMESTAMPTZ, "2024-01-01 05:30:00+05:30", "2024-01-01 00:00:00+00");
    roundtrip(SLUICE_T_TIMESTAMPTZ, "2023-12-31 16:00:00.25-08", "2024-01-01 00:00:00.25+00");
    roundtrip(SLUICE_T_TIMESTAMPTZ, "2024-01-01T00:00:00Z", "2024-01-01 00:00:00+00");
    roundtrip(SLUICE_T_TIMESTAMPTZ, "2024-01-01 01:00:00+0100", "2024-01-01 00:00:00+00");
    roundtrip(SLUICE_T_TIMESTAMPTZ, "2024-02-29 12:00:00.000001+00",
              "2024-02-29 12:00:00.000001+00");
    roundtrip(SLUICE_T_TIMESTAMPTZ, "infinity", "infinity");
    struct sluice_column c = col_of(SLUICE_T_TIMESTAMPTZ);
    struct sluice_value v = parse_ok(&c, "1970-01-01 00:00:00+00", 22);
    assert_int_equal(v.u.i64, 0);
    parse_bad(&c, "2024-01-01 00:00:00+24");
    parse_bad(&c, "2024-01-01 00:00:00 +00");
    parse_bad(&c, "2024-01-01 00:00:00+5");
    parse_bad(&c, "2024-01-01 00:00:00+05:3");
}

static void format_reports_needed_length_when_buffer_is_small(void **state)
{
    struct sluice_column c = col_of(SLUICE_T_TEXT);
    struct sluice_value v = parse_ok(&c, "hello world", 11);
    char small[6];
    assert_int_equal(sl_value_format(&c, &v, small, sizeof small), 11);
    assert_string_equal(small, "hello");
    struct sluice_column ts = col_of(SLUICE_T_TIMESTAMPTZ);
    v = parse_ok(&ts, "2024-01-01 00:00:00+00", 22);
    assert_int_equal(sl_value_format(&ts, &v, small, sizeof small), 22);
    assert_int_equal(sl_value_format(&ts, &v, NULL, 0), 22);
}

/* record ids: every key value comes back exactly, whatever it holds */
static void record_ids_split_back_into_their_key_values(void **state)
{
    (void)state;
    const char *vals[] = {"a,b", "say \"hi\", twice", "NULL", NULL, "", " lead", "plain", "\""};
    const size_t n = sizeof vals / sizeof vals[0];
    char id[256];
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        assert_true(sluice_record_id_append(id, sizeof id, &used, i == 0, vals[i],
                                            vals[i] ? strlen(vals[i]) : 0));
    assert_string_equal(id, "\"a,b\",\"say \"\"hi\"\", twice\",\"NULL\",NULL,\"\",\" lead\",plain,"
                            "\"\"\"\"");
    const char *p = id;
    struct sl_buf v = {0};
    for (size_t i = 0; i < n; i++) {
        bool is_null = true;
        assert_int_equal(sl_record_id_next(&p, i + 1 == n, &v, &is_null), 0);
        assert_int_equal(is_null, vals[i] == NULL);
        if (vals[i])
            assert_string_equal(v.data, vals[i]);
    }
    assert_string_equal(p, "");
    /* an id of one key written before quoting existed: the rest is the value */
    p = "x,y,z";
    assert_int_equal(sl_record_id_next(&p, true, &v, &(bool){false}), 0);
    assert_string_equal(v.data, "x,y,z");
    /* malformed */
    p = "\"open";
    assert_int_equal(sl_record_id_next(&p, false, &v, &(bool){false}), -1);
    p = "\"a\"b,c";
    assert_int_equal(sl_record_id_next(&p, false, &v, &(bool){false}), -1);
    /* too small a buffer says so */
    char tiny[4];
    used = 0;
    assert_false(sluice_record_id_append(tiny, sizeof tiny, &used, true, "abcdef", 6));
    assert_int_equal(strlen(tiny), 3);
    sl_buf_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bool_and_ints_roundtrip_and_check_range),
        cmocka_unit_test(floats_print_shortest_text_that_reads_back),
        cmocka_unit_test(decimals_stay_exact_text_and_respect_scale),
        cmocka_unit_test(text_bytes_uuid_json_keep_every_byte),
        cmocka_unit_test(dates_and_times_are_exact_to_the_microsecond),
        cmocka_unit_test(timestamptz_offsets_normalise_to_utc),
        cmocka_unit_test(format_reports_needed_length_when_buffer_is_small),
        cmocka_unit_test(record_ids_split_back_into_their_key_values),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
