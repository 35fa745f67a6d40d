/*
 * sink_conformance.c - the sink contract (sdk/include/sluice/sink.h) checked
 * against a real target through the real loader, instance and batch code.
 *
 * Environment: SLUICE_CONFORMANCE_TARGET (e.g. "pg"), SLUICE_CONFORMANCE_CONNINFO,
 * SLUICE_PLUGIN_PATH (folder holding sink-<plugin>.so). Each test uses its
 * own target schema, so tests are independent. Started by run_<target>.sh.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libconfig.h>

#include <sluice_sql/dialect.h>

#include "batch.h"
#include "config.h"
#include "instance.h"
#include "loader.h"

#include "conformance.h"

static const struct conf_target *target;
static const char *conninfo;
static struct sl_plugin plugin;

/* ---- one sink instance per test ---------------------------------------------- */

struct fx {
    config_t cfg;
    struct sl_profile profile;
    struct sl_instance in;
    const struct sluice_sink_ops *ops;
    char schema[64];
    char prefix[32];
    struct sl_batch *b;
};

/* init only; returns start's status with its message in err */
static int sink_try_start(struct fx *f, const char *schema, const char *prefix, bool delete_log,
                          const char *conn, struct sl_err *err);

static void sink_open(struct fx *f, const char *schema, const char *prefix, bool delete_log)
{
    struct sl_err err = {{0}};
    if (sink_try_start(f, schema, prefix, delete_log, conninfo, &err) != SLUICE_OK)
        fail_msg("start: %s", err.msg);
    f->ops = sl_sink_ops(&f->in);
    f->b = sl_batch_new(100000, 1u << 30);
    assert_non_null(f->b);
}

static int sink_try_start(struct fx *f, const char *schema, const char *prefix, bool delete_log,
                          const char *conn, struct sl_err *err)
{
    char *section = target->sink_section(conn);
    memset(f, 0, sizeof(*f));
    snprintf(f->schema, sizeof(f->schema), "%s", schema);
    snprintf(f->prefix, sizeof(f->prefix), "%s", prefix);
    config_init(&f->cfg);
    assert_non_null(section);
    assert_int_equal(config_read_string(&f->cfg, section), CONFIG_TRUE);
    free(section);
    static char *entities[] = {"t"};
    f->profile.name = "conformance";
    f->profile.file = "conformance";
    f->profile.line = 1;
    f->profile.entities = entities;
    f->profile.nentities = 1;
    f->profile.batch_rows = 100000;
    f->profile.batch_bytes = 1u << 30;
    f->profile.workers = 1;
    f->profile.target_schema = f->schema;
    f->profile.table_prefix = f->prefix;
    f->profile.delete_log = delete_log;
    f->profile.sink.name = (char *)target->plugin;
    f->profile.sink.section = config_lookup(&f->cfg, "sink");
    f->profile.sink.file = "conformance";
    f->profile.sink.line = 1;
    struct sl_instance_opts opts = {.run_mode = SLUICE_RUN_ONCE, .partitions = 1, .worker = 0};
    if (sl_instance_init(&f->in, &plugin, &f->profile, &f->profile.sink, &opts, err) != 0)
        fail_msg("init: %s", err->msg);
    return sl_instance_start(&f->in, err);
}

static void sink_close(struct fx *f)
{
    sl_batch_free(f->b);
    sl_instance_stop(&f->in);
    sl_instance_destroy(&f->in);
    config_destroy(&f->cfg);
}

static void prepare(struct fx *f, const struct sluice_entity *e)
{
    int rc = f->ops->prepare(f->in.inst, e);
    if (rc != SLUICE_OK)
        fail_msg("prepare: %s", f->in.ctx.error);
}

/* apply the batch being built, then reset it; returns the status */
static int apply_rc(struct fx *f, size_t *failed)
{
    size_t dummy;
    int rc = f->ops->apply(f->in.inst, &f->b->pub, failed ? failed : &dummy);
    if (rc != SLUICE_OK && !failed)
        print_error("apply: %s\n", f->in.ctx.error);
    return rc;
}

static void apply_ok(struct fx *f)
{
    assert_int_equal(apply_rc(f, NULL), SLUICE_OK);
    sl_batch_reset(f->b);
}

static struct sluice_event *ev(struct fx *f, const struct sluice_entity *e, int op,
                               uint64_t version)
{
    struct sluice_event *x = sl_batch_append(f->b, e, op);
    assert_non_null(x);
    x->version = version;
    return x;
}

static void set_int(struct sluice_event *x, uint32_t c, int64_t v)
{
    sluice_value_set_int(&x->values[c], v);
}

static void set_f(struct sluice_event *x, uint32_t c, double v)
{
    sluice_value_set_float(&x->values[c], v);
}

static void set_bytes(struct fx *f, struct sluice_event *x, uint32_t c, const void *p, size_t n)
{
    sluice_value_set_ref(&x->values[c], sl_batch_copy(f->b, p, n), (uint32_t)n);
}

static void set_str(struct fx *f, struct sluice_event *x, uint32_t c, const char *s)
{
    set_bytes(f, x, c, s, strlen(s));
}

/* rows of the entity's table as text, ordered by the first column */
static char *dump(struct fx *f, const char *table, const char *cols)
{
    struct sluice_sql_buf q = {0};
    struct sluice_sql_table t = {.schema = f->schema, .prefix = f->prefix, .name = table};
    sluice_sql_buf_printf(&q, "SELECT %s FROM ", cols);
    sluice_sql_table_name(&q, target->dialect, &t);
    sluice_sql_buf_puts(&q, " ORDER BY 1");
    char *out = target->query(sluice_sql_buf_str(&q));
    sluice_sql_buf_free(&q);
    return out;
}

static void expect_rows(struct fx *f, const char *table, const char *cols, const char *expected)
{
    char *got = dump(f, table, cols);
    assert_non_null(got);
    assert_string_equal(got, expected);
    free(got);
}

/* ---- a simple entity: t(id int64 key, name text, qty int32) ----------------------- */

static const struct sluice_column simple_cols[] = {
    {.name = "id", .type = SLUICE_T_INT64, .flags = SLUICE_COL_KEY},
    {.name = "name", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE},
    {.name = "qty", .type = SLUICE_T_INT32, .flags = SLUICE_COL_NULLABLE},
};
static const uint32_t key0[] = {0};
static const struct sluice_entity simple = {.ns = "", .name = "t", .ncolumns = 3,
                                            .columns = simple_cols, .nkeys = 1,
                                            .key_columns = key0, .id = 1,
                                            .schema_version = 1};

static void row(struct fx *f, int op, uint64_t version, int64_t id, const char *name, int qty)
{
    struct sluice_event *x = ev(f, &simple, op, version);
    set_int(x, 0, id);
    if (op == SLUICE_OP_DELETE)
        return;
    if (name)
        set_str(f, x, 1, name);
    else
        sluice_value_set_null(&x->values[1]);
    set_int(x, 2, qty);
}

static void position(struct fx *f, uint64_t pos)
{
    f->b->pub.position.len = 8;
    sluice_put_be64(f->b->pub.position.bytes, pos);
}

/* ---- target-parametric pieces ----------------------------------------------------- */

static const char *epoch_text(void)
{
    return target->tstz_epoch ? target->tstz_epoch : "1970-01-01 00:00:00+00";
}

/* a CHECK constraint named name on schema.table */
static int add_check(const char *schema, const char *table, const char *name, const char *expr)
{
    if (target->add_check)
        return target->add_check(schema, table, name, expr);
    char sql[256];
    snprintf(sql, sizeof(sql), "ALTER TABLE %s.%s ADD CONSTRAINT %s CHECK (%s)", schema, table,
             name, expr);
    return target->exec(sql);
}

/* ---- cases ------------------------------------------------------------------------ */

static void every_type_round_trips_exactly(void **state)
{
    (void)state;
    static const struct sluice_column cols[] = {
        {.name = "id", .type = SLUICE_T_INT64, .flags = SLUICE_COL_KEY},
        {.name = "b", .type = SLUICE_T_BOOL, .flags = SLUICE_COL_NULLABLE},
        {.name = "i16", .type = SLUICE_T_INT16, .flags = SLUICE_COL_NULLABLE},
        {.name = "i32", .type = SLUICE_T_INT32, .flags = SLUICE_COL_NULLABLE},
        {.name = "i64", .type = SLUICE_T_INT64, .flags = SLUICE_COL_NULLABLE},
        {.name = "f32", .type = SLUICE_T_FLOAT32, .flags = SLUICE_COL_NULLABLE},
        {.name = "f64", .type = SLUICE_T_FLOAT64, .flags = SLUICE_COL_NULLABLE},
        {.name = "dec", .type = SLUICE_T_DECIMAL, .flags = SLUICE_COL_NULLABLE,
         .precision = 38, .scale = 10},
        {.name = "num", .type = SLUICE_T_DECIMAL, .flags = SLUICE_COL_NULLABLE},
        {.name = "txt", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE},
        {.name = "bin", .type = SLUICE_T_BYTES, .flags = SLUICE_COL_NULLABLE},
        {.name = "d", .type = SLUICE_T_DATE, .flags = SLUICE_COL_NULLABLE},
        {.name = "tm", .type = SLUICE_T_TIME, .flags = SLUICE_COL_NULLABLE},
        {.name = "ts", .type = SLUICE_T_TIMESTAMP, .flags = SLUICE_COL_NULLABLE},
        {.name = "tstz", .type = SLUICE_T_TIMESTAMPTZ, .flags = SLUICE_COL_NULLABLE},
        {.name = "u", .type = SLUICE_T_UUID, .flags = SLUICE_COL_NULLABLE},
        {.name = "j", .type = SLUICE_T_JSON, .flags = SLUICE_COL_NULLABLE},
    };
    static const struct sluice_entity types = {.ns = "", .name = "types", .ncolumns = 17,
                                               .columns = cols, .nkeys = 1, .key_columns = key0};
    static const uint8_t bin1[] = {0x00, 0xff, '\\', '\t', '\n', 0x00};
    static const uint8_t uuid1[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                      0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    static const uint8_t uuid2[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const int64_t ts = 1709208000000001LL; /* 2024-02-29 12:00:00.000001 UTC */
    const int64_t bc_day = -719528;        /* 0001-01-01 BC */
    struct fx f;
    sink_open(&f, "conf_types", "", false);
    prepare(&f, &types);
    for (int op = SLUICE_OP_READ; op <= SLUICE_OP_INSERT; op++) {
        /* READ goes through the snapshot fast path, INSERT (a newer
         * version of the same rows) through staging + upsert */
        uint64_t v = (uint64_t)op;
        struct sluice_event *x = ev(&f, &types, op, v);
        set_int(x, 0, 1), set_int(x, 1, 1), set_int(x, 2, INT16_MIN), set_int(x, 3, INT32_MAX);
        set_int(x, 4, INT64_MIN), set_f(x, 5, (double)3.4028235e38f), set_f(x, 6, 0.1);
        set_str(&f, x, 7, "1234567890123456789012345678.0123456789");
        set_str(&f, x, 8, "12345678901234567890123456789012345678");
        set_str(&f, x, 9, ""), set_bytes(&f, x, 10, bin1, sizeof(bin1));
        set_int(x, 11, 19782), set_int(x, 12, 43200000001LL), set_int(x, 13, ts);
        set_int(x, 14, ts), set_bytes(&f, x, 15, uuid1, 16);
        set_str(&f, x, 16, "{\"a\": [1, 2.5, \"x\"]}");

        x = ev(&f, &types, op, v);
        set_int(x, 0, 2), set_int(x, 1, 0), set_int(x, 2, INT16_MAX), set_int(x, 3, INT32_MIN);
        set_int(x, 4, INT64_MAX), set_f(x, 5, (double)(float)-1.5e-45), set_f(x, 6, 1e-300);
        set_str(&f, x, 7, "-0.0000000001"), set_str(&f, x, 8, "Infinity");
        set_str(&f, x, 9, "tab\there\nnew\\line \xf0\x9f\x98\x80 \xc3\xbc");
        set_bytes(&f, x, 10, "", 0);
        set_int(x, 11, SLUICE_INFINITY), set_int(x, 12, 86400000000LL);
        set_int(x, 13, SLUICE_INFINITY), set_int(x, 14, SLUICE_NEG_INFINITY);
        set_bytes(&f, x, 15, uuid2, 16), set_str(&f, x, 16, "\"\xf0\x9f\x98\x80\"");

        x = ev(&f, &types, op, v);
        set_int(x, 0, 3);
        for (uint32_t c = 1; c < 17; c++)
            sluice_value_set_null(&x->values[c]);
        set_f(x, 5, 0.0 / 0.0), set_f(x, 6, -1.0 / 0.0), set_str(&f, x, 8, "NaN");
        set_int(x, 11, bc_day), set_int(x, 12, 0), set_int(x, 13, -1);
        set_int(x, 14, bc_day * 86400000000LL), set_str(&f, x, 16, "null");
        apply_ok(&f);

        char *got = dump(&f, "types",
                         target->type_columns ? target->type_columns
                                              : "id, b, i16, i32, i64, f32, f64, dec, num, txt, "
                                                "bin, d, tm, ts, tstz, u, j");
        assert_non_null(got);
        /* values may hold newlines: compare the whole text */
        struct sluice_sql_buf want = {0};
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 17; c++) {
                if (c)
                    sluice_sql_buf_putc(&want, '|');
                sluice_sql_buf_puts(&want, target->type_rows[r][c]);
            }
            sluice_sql_buf_putc(&want, '\n');
        }
        if (strcmp(got, sluice_sql_buf_str(&want)) != 0)
            fail_msg("%s rows differ:\nexpected:\n%s\ngot:\n%s", sluice_op_name(op),
                     sluice_sql_buf_str(&want), got);
        sluice_sql_buf_free(&want);
        free(got);
    }
    sink_close(&f);
}

static void insert_update_delete_apply(void **state)
{
    (void)state;
    struct fx f;
    sink_open(&f, "conf_iud", "", false);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_INSERT, 1, 1, "one", 1);
    row(&f, SLUICE_OP_INSERT, 1, 2, "two", 2);
    row(&f, SLUICE_OP_INSERT, 1, 3, "three", 3);
    apply_ok(&f);
    row(&f, SLUICE_OP_UPDATE, 2, 1, "uno", 10);
    row(&f, SLUICE_OP_DELETE, 2, 2, NULL, 0);
    /* several events of one key in one batch collapse to the last */
    row(&f, SLUICE_OP_INSERT, 1, 4, "four", 4);
    row(&f, SLUICE_OP_UPDATE, 2, 4, "vier", 40);
    row(&f, SLUICE_OP_DELETE, 3, 4, NULL, 0);
    row(&f, SLUICE_OP_INSERT, 4, 4, "quatre", 44);
    row(&f, SLUICE_OP_INSERT, 1, 5, "five", 5);
    row(&f, SLUICE_OP_DELETE, 2, 5, NULL, 0);
    apply_ok(&f);
    expect_rows(&f, "t", "id, name, qty, _sluice_version",
                "1|uno|10|2\n3|three|3|1\n4|quatre|44|4\n");
    sink_close(&f);
}

static void replayed_batch_changes_nothing(void **state)
{
    (void)state;
    struct fx f;
    sink_open(&f, "conf_replay", "", false);
    prepare(&f, &simple);
    for (int pass = 0; pass < 2; pass++) {
        row(&f, SLUICE_OP_READ, 1, 1, "a", 1);
        row(&f, SLUICE_OP_READ, 1, 2, "b", 2);
        apply_ok(&f);
    }
    row(&f, SLUICE_OP_UPDATE, 5, 1, "a2", 11);
    row(&f, SLUICE_OP_DELETE, 6, 2, NULL, 0);
    row(&f, SLUICE_OP_INSERT, 7, 3, "c", 3);
    position(&f, 10);
    apply_ok(&f);
    char *before = dump(&f, "t", "*");
    assert_non_null(before);
    /* the same batch again, and the snapshot again */
    row(&f, SLUICE_OP_UPDATE, 5, 1, "a2", 11);
    row(&f, SLUICE_OP_DELETE, 6, 2, NULL, 0);
    row(&f, SLUICE_OP_INSERT, 7, 3, "c", 3);
    position(&f, 10);
    apply_ok(&f);
    row(&f, SLUICE_OP_READ, 1, 1, "a", 1);
    row(&f, SLUICE_OP_READ, 1, 2, "b", 2);
    apply_ok(&f);
    char *after = dump(&f, "t", "*");
    assert_string_equal(before, after);
    free(before);
    free(after);
    sink_close(&f);
}

static void older_version_never_overwrites_newer(void **state)
{
    (void)state;
    struct fx f;
    sink_open(&f, "conf_older", "", false);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_INSERT, 10, 1, "new", 10);
    apply_ok(&f);
    row(&f, SLUICE_OP_UPDATE, 9, 1, "old", 9);
    apply_ok(&f);
    row(&f, SLUICE_OP_UPDATE, 10, 1, "same version", 10);
    apply_ok(&f);
    row(&f, SLUICE_OP_DELETE, 5, 1, NULL, 0);
    apply_ok(&f);
    expect_rows(&f, "t", "id, name, qty, _sluice_version", "1|new|10|10\n");
    row(&f, SLUICE_OP_UPDATE, 11, 1, "newer", 11);
    apply_ok(&f);
    expect_rows(&f, "t", "id, name, qty, _sluice_version", "1|newer|11|11\n");
    sink_close(&f);
}

static void delete_then_older_insert_does_not_resurrect(void **state)
{
    (void)state;
    struct fx f;
    sink_open(&f, "conf_resurrect", "", false);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_INSERT, 1, 1, "a", 1);
    row(&f, SLUICE_OP_INSERT, 1, 2, "b", 2);
    apply_ok(&f);
    row(&f, SLUICE_OP_DELETE, 5, 1, NULL, 0);
    apply_ok(&f);
    /* late or replayed events older than the delete, also as a snapshot */
    row(&f, SLUICE_OP_INSERT, 3, 1, "zombie", 3);
    apply_ok(&f);
    row(&f, SLUICE_OP_READ, 4, 1, "zombie", 4);
    apply_ok(&f);
    row(&f, SLUICE_OP_UPDATE, 5, 1, "zombie", 5);
    apply_ok(&f);
    expect_rows(&f, "t", "id, name", "2|b\n");
    /* a genuinely newer insert does come back */
    row(&f, SLUICE_OP_INSERT, 6, 1, "reborn", 6);
    apply_ok(&f);
    expect_rows(&f, "t", "id, name, _sluice_version", "1|reborn|6\n2|b|1\n");
    sink_close(&f);
}

static void partial_update_keeps_absent_columns(void **state)
{
    (void)state;
    struct fx f;
    sink_open(&f, "conf_partial", "", false);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_INSERT, 1, 1, "keep me", 1);
    row(&f, SLUICE_OP_INSERT, 1, 2, "keep too", 2);
    apply_ok(&f);
    /* name ABSENT: only qty changes */
    struct sluice_event *x = ev(&f, &simple, SLUICE_OP_UPDATE, 2);
    set_int(x, 0, 1), set_int(x, 2, 100);
    /* within one batch: a full update then a partial one merge */
    x = ev(&f, &simple, SLUICE_OP_UPDATE, 2);
    set_int(x, 0, 2), set_str(&f, x, 1, "changed"), set_int(x, 2, 20);
    x = ev(&f, &simple, SLUICE_OP_UPDATE, 3);
    set_int(x, 0, 2), set_int(x, 2, 200);
    /* a partial update of a record the target never saw */
    x = ev(&f, &simple, SLUICE_OP_UPDATE, 3);
    set_int(x, 0, 3), set_int(x, 2, 300);
    apply_ok(&f);
    expect_rows(&f, "t", "id, name, qty, _sluice_version",
                "1|keep me|100|2\n2|changed|200|3\n3|<null>|300|3\n");
    /* a replay of the partial update changes nothing */
    x = ev(&f, &simple, SLUICE_OP_UPDATE, 2);
    set_int(x, 0, 1), set_int(x, 2, 7);
    apply_ok(&f);
    expect_rows(&f, "t", "id, name, qty", "1|keep me|100\n2|changed|200\n3|<null>|300\n");
    sink_close(&f);
}

static void column_added_mid_stream(void **state)
{
    (void)state;
    static const struct sluice_column cols2[] = {
        {.name = "id", .type = SLUICE_T_INT64, .flags = SLUICE_COL_KEY},
        {.name = "name", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE},
        {.name = "qty", .type = SLUICE_T_INT32, .flags = SLUICE_COL_NULLABLE},
        {.name = "added at", .type = SLUICE_T_TIMESTAMPTZ, .flags = SLUICE_COL_NULLABLE},
    };
    static const struct sluice_entity simple2 = {.ns = "", .name = "t", .ncolumns = 4,
                                                 .columns = cols2, .nkeys = 1,
                                                 .key_columns = key0, .schema_version = 2};
    struct fx f;
    sink_open(&f, "conf_addcol", "", false);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_INSERT, 1, 1, "before", 1);
    apply_ok(&f);
    prepare(&f, &simple2);
    prepare(&f, &simple2); /* idempotent */
    struct sluice_event *x = ev(&f, &simple2, SLUICE_OP_INSERT, 1);
    set_int(x, 0, 2), set_str(&f, x, 1, "after"), set_int(x, 2, 2), set_int(x, 3, 0);
    apply_ok(&f);
    char want[160];
    snprintf(want, sizeof(want), "1|before|<null>\n2|after|%s\n", epoch_text());
    expect_rows(&f, "t", "id, name, \"added at\"", want);
    /* the old shape (column gone from the source) still applies; the column stays */
    prepare(&f, &simple);
    row(&f, SLUICE_OP_UPDATE, 2, 2, "old shape", 3);
    apply_ok(&f);
    snprintf(want, sizeof(want), "1|before|<null>\n2|old shape|%s\n", epoch_text());
    expect_rows(&f, "t", "id, name, \"added at\"", want);
    sink_close(&f);
}

static void identifiers_with_spaces_quotes_reserved_words(void **state)
{
    (void)state;
    static const struct sluice_column cols[] = {
        {.name = "order", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_KEY},
        {.name = "a\"b", .type = SLUICE_T_INT32, .flags = SLUICE_COL_NULLABLE},
        {.name = "my table", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE},
    };
    static const struct sluice_entity odd = {.ns = "", .name = "my \"odd\" table",
                                             .ncolumns = 3, .columns = cols, .nkeys = 1,
                                             .key_columns = key0};
    struct fx f;
    sink_open(&f, "conf \"odd\" schema", "p'x_", true);
    prepare(&f, &odd);
    for (int op = SLUICE_OP_READ; op <= SLUICE_OP_DELETE; op++) {
        struct sluice_event *x = ev(&f, &odd, op, (uint64_t)op);
        set_str(&f, x, 0, "k,\\1\t");
        if (op != SLUICE_OP_DELETE)
            set_int(x, 1, op), set_str(&f, x, 2, "select");
        x = ev(&f, &odd, op == SLUICE_OP_DELETE ? SLUICE_OP_UPDATE : op, (uint64_t)op);
        set_str(&f, x, 0, "k2"), set_int(x, 1, op), set_str(&f, x, 2, "from");
        apply_ok(&f);
    }
    expect_rows(&f, "my \"odd\" table", "\"order\", \"a\"\"b\", \"my table\"", "k2|4|from\n");
    expect_rows(&f, "_sluice_delete_log", "entity, record_id, version",
                "my \"odd\" table|k,\\1\t|4\n");
    sink_close(&f);
}

static void one_mib_value_round_trips(void **state)
{
    (void)state;
    struct fx f;
    size_t n = 1u << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    static const char pattern[] = "abcd\\\t\n\xc3\xa9"; /* 9 bytes, ends whole at 1 MiB */
    for (size_t i = 0; i < n; i++)
        big[i] = pattern[i % 9];
    big[n] = '\0';
    sink_open(&f, "conf_big", "", false);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_READ, 1, 1, big, 1);
    apply_ok(&f);
    row(&f, SLUICE_OP_UPDATE, 2, 2, big, 1);
    apply_ok(&f);
    char *got = dump(&f, "t", "name");
    assert_non_null(got);
    assert_int_equal(strlen(got), 2 * (n + 1));
    assert_memory_equal(got, big, n);
    assert_memory_equal(got + n + 1, big, n);
    free(got);
    free(big);
    sink_close(&f);
}

struct ckpt_seen {
    int n;
    uint32_t partition;
    struct sluice_position pos;
};

static int ckpt_cb(void *arg, uint32_t partition, const struct sluice_position *pos)
{
    struct ckpt_seen *s = arg;
    s->n++;
    s->partition = partition;
    s->pos = *pos;
    return SLUICE_OK;
}

static void checkpoint_written_atomically_with_data(void **state)
{
    (void)state;
    struct fx f;
    struct ckpt_seen seen = {0};
    sink_open(&f, "conf_ckpt", "", false);
    assert_int_equal(f.ops->checkpoint_list(f.in.inst, ckpt_cb, &seen), SLUICE_OK);
    assert_int_equal(seen.n, 0);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_INSERT, 1, 1, "a", 1);
    f.b->pub.partition = 3;
    position(&f, 100);
    apply_ok(&f);
    /* a batch without position moves nothing */
    row(&f, SLUICE_OP_INSERT, 1, 2, "b", 2);
    f.b->pub.partition = 3;
    apply_ok(&f);
    assert_int_equal(f.ops->checkpoint_list(f.in.inst, ckpt_cb, &seen), SLUICE_OK);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.partition, 3);
    assert_int_equal(seen.pos.len, 8);
    assert_int_equal(sluice_get_be64(seen.pos.bytes), 100);
    /* a batch that fails permanently (a CHECK constraint on the target
     * refuses one row) leaves neither rows nor checkpoint */
    assert_int_equal(add_check("conf_ckpt", "t", "qty_small", "qty < 1000"), 0);
    row(&f, SLUICE_OP_INSERT, 1, 3, "c", 3);
    row(&f, SLUICE_OP_INSERT, 1, 4, "d", 1000);
    f.b->pub.partition = 3;
    position(&f, 200);
    size_t failed = 0;
    assert_int_equal(apply_rc(&f, &failed), SLUICE_ERR);
    sl_batch_reset(f.b);
    seen.n = 0;
    assert_int_equal(f.ops->checkpoint_list(f.in.inst, ckpt_cb, &seen), SLUICE_OK);
    assert_int_equal(seen.n, 1);
    assert_int_equal(sluice_get_be64(seen.pos.bytes), 100);
    expect_rows(&f, "t", "id", "1\n2\n");
    /* an empty batch only moves the checkpoint */
    f.b->pub.partition = 3;
    position(&f, 300);
    apply_ok(&f);
    seen.n = 0;
    assert_int_equal(f.ops->checkpoint_list(f.in.inst, ckpt_cb, &seen), SLUICE_OK);
    assert_int_equal(sluice_get_be64(seen.pos.bytes), 300);
    sink_close(&f);
}

static void delete_log_on_records_deletes(void **state)
{
    (void)state;
    struct fx f;
    sink_open(&f, "conf_dlog_on", "pre_", true);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_INSERT, 1, 1, "a", 1);
    row(&f, SLUICE_OP_INSERT, 1, 2, "b", 2);
    apply_ok(&f);
    row(&f, SLUICE_OP_DELETE, 2, 1, NULL, 0);
    apply_ok(&f);
    row(&f, SLUICE_OP_DELETE, 2, 1, NULL, 0); /* replay: logged once */
    apply_ok(&f);
    expect_rows(&f, "t", "id", "2\n");
    expect_rows(&f, "_sluice_delete_log", "entity, record_id, version", "t|1|2\n");
    sink_close(&f);
}

static void delete_log_off_writes_no_log(void **state)
{
    (void)state;
    struct fx f;
    sink_open(&f, "conf_dlog_off", "pre_", false);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_INSERT, 1, 1, "a", 1);
    apply_ok(&f);
    row(&f, SLUICE_OP_DELETE, 2, 1, NULL, 0);
    apply_ok(&f);
    expect_rows(&f, "t", "id", "");
    char *log = dump(&f, "_sluice_delete_log", "*");
    assert_null(log); /* no such table */
    sink_close(&f);
}

static void poison_record_gives_err_and_commits_nothing(void **state)
{
    (void)state;
    struct fx f;
    sink_open(&f, "conf_poison", "", false);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_INSERT, 1, 1, "a", 1);
    apply_ok(&f);
    assert_int_equal(add_check("conf_poison", "t", "no_poison", "name <> 'poison'"), 0);
    for (int op = SLUICE_OP_READ; op <= SLUICE_OP_UPDATE; op++) {
        row(&f, op, 5, 1, "changed", 5);
        row(&f, op, 5, 2, "poison", 5);
        row(&f, op, 5, 3, "fine", 5);
        size_t failed = 0;
        int rc = apply_rc(&f, &failed);
        assert_int_equal(rc, SLUICE_ERR);
        /* the sink names the record when it can; otherwise the host bisects */
        assert_true(failed == 1 || failed == SIZE_MAX);
        assert_non_null(strstr(f.in.ctx.error, "no_poison"));
        sl_batch_reset(f.b);
        expect_rows(&f, "t", "id, name, _sluice_version", "1|a|1\n");
    }
    sink_close(&f);
}

static void truncate_applies_in_order(void **state)
{
    (void)state;
    struct fx f;
    sink_open(&f, "conf_truncate", "", false);
    prepare(&f, &simple);
    row(&f, SLUICE_OP_INSERT, 1, 1, "a", 1);
    row(&f, SLUICE_OP_INSERT, 1, 2, "b", 2);
    apply_ok(&f);
    row(&f, SLUICE_OP_DELETE, 2, 2, NULL, 0);
    row(&f, SLUICE_OP_INSERT, 1, 3, "c", 3);
    ev(&f, &simple, SLUICE_OP_TRUNCATE, 3);
    row(&f, SLUICE_OP_INSERT, 4, 4, "d", 4);
    apply_ok(&f);
    expect_rows(&f, "t", "id, name", "4|d\n");
    sink_close(&f);
}

static void unreachable_target_is_transient(void **state)
{
    (void)state;
    struct fx f;
    struct sl_err err = {{0}};
    if (target->serverless)
        skip(); /* an embedded database has no server to be unreachable */
    char *bad = target->bad_conninfo(conninfo, true);
    assert_int_equal(sink_try_start(&f, "public", "", false, bad, &err), SLUICE_RETRY);
    assert_non_null(strstr(err.msg, "cannot connect"));
    sl_instance_destroy(&f.in);
    config_destroy(&f.cfg);
    free(bad);
}

static void refused_login_is_permanent_and_names_the_target(void **state)
{
    (void)state;
    struct fx f;
    struct sl_err err = {{0}};
    char *bad = target->bad_conninfo(conninfo, false);
    assert_int_equal(sink_try_start(&f, "public", "", false, bad, &err), SLUICE_ERR);
    assert_non_null(strstr(err.msg, "no_such_db_sluice"));
    sl_instance_destroy(&f.in);
    config_destroy(&f.cfg);
    free(bad);
}

static void wrong_password_is_permanent_and_names_profile_and_target(void **state)
{
    (void)state;
    struct fx f;
    struct sl_err err = {{0}};
    if (!target->wrong_password)
        skip(); /* the target's test server does not check passwords */
    char *bad = target->wrong_password(conninfo);
    assert_int_equal(sink_try_start(&f, "public", "", false, bad, &err), SLUICE_ERR);
    /* names the profile and the target, never the password */
    assert_non_null(strstr(err.msg, "profile \"conformance\""));
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    assert_null(strstr(err.msg, "not-the-password"));
    sl_instance_destroy(&f.in);
    config_destroy(&f.cfg);
    free(bad);
}

int main(void)
{
    const char *name = getenv("SLUICE_CONFORMANCE_TARGET");
    const char *dir = getenv("SLUICE_PLUGIN_PATH");
    struct sl_err err = {{0}};
    static const struct conf_target *const targets[] = {
        &conf_target_pg, &conf_target_mariadb, &conf_target_odbc_sqlite, &conf_target_odbc_pg,
        &conf_target_odbc_mariadb};

    conninfo = getenv("SLUICE_CONFORMANCE_CONNINFO");
    for (size_t i = 0; name && i < sizeof(targets) / sizeof(targets[0]); i++)
        if (strcmp(targets[i]->name, name) == 0)
            target = targets[i];
    if (!target || !conninfo || !dir) {
        fprintf(stderr, "sink_conformance: set SLUICE_CONFORMANCE_TARGET (pg, mariadb, "
                        "odbc_sqlite, odbc_pg, odbc_mariadb), "
                        "SLUICE_CONFORMANCE_CONNINFO and SLUICE_PLUGIN_PATH; run through "
                        "tests/conformance/run_<target>.sh\n");
        return 2;
    }
    if (sl_plugin_load(dir, SLUICE_KIND_SINK, target->plugin, &plugin, &err) != 0) {
        fprintf(stderr, "sink_conformance: %s\n", err.msg);
        return 2;
    }
    if (target->connect(conninfo) != 0)
        return 2;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_round_trips_exactly),
        cmocka_unit_test(insert_update_delete_apply),
        cmocka_unit_test(replayed_batch_changes_nothing),
        cmocka_unit_test(older_version_never_overwrites_newer),
        cmocka_unit_test(delete_then_older_insert_does_not_resurrect),
        cmocka_unit_test(partial_update_keeps_absent_columns),
        cmocka_unit_test(column_added_mid_stream),
        cmocka_unit_test(identifiers_with_spaces_quotes_reserved_words),
        cmocka_unit_test(one_mib_value_round_trips),
        cmocka_unit_test(checkpoint_written_atomically_with_data),
        cmocka_unit_test(delete_log_on_records_deletes),
        cmocka_unit_test(delete_log_off_writes_no_log),
        cmocka_unit_test(poison_record_gives_err_and_commits_nothing),
        cmocka_unit_test(truncate_applies_in_order),
        cmocka_unit_test(unreachable_target_is_transient),
        cmocka_unit_test(refused_login_is_permanent_and_names_the_target),
        cmocka_unit_test(wrong_password_is_permanent_and_names_profile_and_target),
    };
    int rc = cmocka_run_group_tests_name(target->name, tests, NULL, NULL);
    target->disconnect();
    sl_plugin_unload(&plugin);
    return rc;
}
