/* Wire format: every logical type and edge value survives encode/decode
 * exactly, the partition filter picks the right events, references round-trip,
 * and damaged messages (truncated, flipped bytes, wrong version) are refused
 * without crashing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "value_text.h"
#include "wire.h"

/* one column per logical type, plus extra text columns for ABSENT/NULL/"" */
static struct sluice_column all_cols[] = {
    {.name = "id", .type = SLUICE_T_INT64},
    {.name = "b", .type = SLUICE_T_BOOL, .flags = SLUICE_COL_NULLABLE},
    {.name = "i16", .type = SLUICE_T_INT16, .flags = SLUICE_COL_NULLABLE},
    {.name = "i32", .type = SLUICE_T_INT32, .flags = SLUICE_COL_NULLABLE},
    {.name = "f32", .type = SLUICE_T_FLOAT32, .flags = SLUICE_COL_NULLABLE},
    {.name = "f64", .type = SLUICE_T_FLOAT64, .flags = SLUICE_COL_NULLABLE},
    {.name = "dec", .type = SLUICE_T_DECIMAL, .precision = 38, .scale = 10,
     .flags = SLUICE_COL_NULLABLE},
    {.name = "txt", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE, .max_length = 100},
    {.name = "bin", .type = SLUICE_T_BYTES, .flags = SLUICE_COL_NULLABLE},
    {.name = "d", .type = SLUICE_T_DATE, .flags = SLUICE_COL_NULLABLE},
    {.name = "t", .type = SLUICE_T_TIME, .flags = SLUICE_COL_NULLABLE},
    {.name = "ts", .type = SLUICE_T_TIMESTAMP, .flags = SLUICE_COL_NULLABLE},
    {.name = "tstz", .type = SLUICE_T_TIMESTAMPTZ, .flags = SLUICE_COL_NULLABLE},
    {.name = "u", .type = SLUICE_T_UUID, .flags = SLUICE_COL_NULLABLE},
    {.name = "j", .type = SLUICE_T_JSON, .flags = SLUICE_COL_NULLABLE},
};
#define NALL (sizeof all_cols / sizeof all_cols[0])
static uint32_t all_keys[] = {0};
static struct sluice_entity all_ent = {.ns = "public", .name = "everything", .ncolumns = NALL,
                                       .columns = all_cols, .nkeys = 1,
                                       .key_columns = all_keys, .id = 3, .schema_version = 2};

static struct sluice_column small_cols[] = {
    {.name = "k", .type = SLUICE_T_TEXT},
    {.name = "n", .type = SLUICE_T_INT32, .flags = SLUICE_COL_NULLABLE},
};
static uint32_t small_keys[] = {0};
static struct sluice_entity small_ent = {.ns = "", .name = "small", .ncolumns = 2,
                                         .columns = small_cols, .nkeys = 1,
                                         .key_columns = small_keys, .id = 4, .schema_version = 1};

/* rows of canonical text; NULL pointer = SQL NULL, "~" = ABSENT */
static const char *rows[][NALL] = {
    {"1", "true", "-32768", "2147483647", "3.4028235e+38", "-0", "1234567890123456789012345678",
     "", "\\x00", "2024-02-29", "24:00:00", "2024-02-29 23:59:59.999999",
     "1969-12-31 23:59:59.000001+00", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{\"a\": [1, 2]}"},
    {"2", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"3", "~", "~", "~", "~", "~", "~", "~", "~", "~", "~", "~", "~", "~", "~"},
    {"-9223372036854775808", "false", "0", "-1", "NaN", "Infinity", "-0.0000000001",
     "\xf0\x9f\x98\x80 emoji", "\\x610062ff00", "infinity", "00:00:00.000001", "-infinity",
     "infinity", "00000000-0000-0000-0000-000000000000", "null"},
    {"9223372036854775807", "true", "32767", "-2147483648", "-Infinity", "1e-320", "NaN",
     "~", "\\x", "-infinity", "12:34:56.5", "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999+00",
     "ffffffff-ffff-ffff-ffff-ffffffffffff", "\"str\""},
};
#define NROWS (sizeof rows / sizeof rows[0])

static void fill_row(struct sl_batch *b, struct sluice_event *ev, const char *const *row)
{
    char err[256];
    for (size_t c = 0; c < NALL; c++) {
        if (!row[c]) {
            sluice_value_set_null(&ev->values[c]);
            continue;
        }
        if (strcmp(row[c], "~") == 0)
            continue; /* ABSENT */
        if (sl_value_parse(&all_cols[c], row[c], strlen(row[c]), b, &ev->values[c], err,
                           sizeof err) != 0)
            fail_msg("column %s \"%s\": %s", all_cols[c].name, row[c], err);
    }
}

static bool same_value(int type, const struct sluice_value *a, const struct sluice_value *b)
{
    if (a->state != b->state)
        return false;
    if (a->state != SLUICE_PRESENT)
        return true;
    if (sluice_type_is_varlen(type))
        return a->len == b->len && memcmp(a->u.ptr, b->u.ptr, a->len) == 0;
    if (type == SLUICE_T_FLOAT32 || type == SLUICE_T_FLOAT64)
        return memcmp(&a->u.f64, &b->u.f64, sizeof(double)) == 0;
    return a->u.i64 == b->u.i64;
}

static bool same_entity(const struct sluice_entity *a, const struct sluice_entity *b)
{
    if (strcmp(a->ns, b->ns) || strcmp(a->name, b->name) || a->ncolumns != b->ncolumns ||
        a->nkeys != b->nkeys || a->id != b->id || a->schema_version != b->schema_version)
        return false;
    for (uint32_t i = 0; i < a->ncolumns; i++) {
        const struct sluice_column *x = &a->columns[i], *y = &b->columns[i];
        if (strcmp(x->name, y->name) || x->type != y->type || x->flags != y->flags ||
            x->precision != y->precision || x->scale != y->scale ||
            x->max_length != y->max_length)
            return false;
    }
    for (uint32_t k = 0; k < a->nkeys; k++)
        if (a->key_columns[k] != b->key_columns[k])
            return false;
    return true;
}

static void assert_same_event(const struct sluice_event *a, const struct sluice_event *b)
{
    assert_true(same_entity(a->entity, b->entity));
    assert_int_equal(a->op, b->op);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->commit_time_us, b->commit_time_us);
    assert_int_equal(a->txid, b->txid);
    for (uint32_t c = 0; c < a->entity->ncolumns; c++) {
        if (!same_value(a->entity->columns[c].type, &a->values[c], &b->values[c]))
            fail_msg("column %s differs after the round trip", a->entity->columns[c].name);
    }
}

/* a batch of every row, plus a `small` event between them */
static struct sl_batch *sample_batch(void)
{
    struct sl_batch *b = sl_batch_new(0, 0);
    for (size_t r = 0; r < NROWS; r++) {
        struct sluice_event *ev = sl_batch_append(b, &all_ent, r == 2 ? SLUICE_OP_DELETE
                                                                        : SLUICE_OP_INSERT);
        ev->version = 1000 + r;
        ev->commit_time_us = -5 + (int64_t)r;
        ev->txid = UINT64_MAX - r;
        fill_row(b, ev, rows[r]);
        ev = sl_batch_append(b, &small_ent, SLUICE_OP_UPDATE);
        ev->version = r;
        char k[16];
        int n = snprintf(k, sizeof k, "k%zu", r);
        sluice_value_set_ref(&ev->values[0], sl_batch_copy(b, k, (size_t)n), (uint32_t)n);
        if (r % 2)
            sluice_value_set_null(&ev->values[1]);
        else
            sluice_value_set_int(&ev->values[1], (int64_t)r);
    }
    b->pub.flags = 0;
    b->pub.seq = 42;
    b->pub.position.len = 9;
    memcpy(b->pub.position.bytes, "\x00\x01pos\x00\xff\x7f!", 9);
    return b;
}

static void every_type_and_edge_value_round_trips(void **state)
{
    struct sl_batch *b = sample_batch(), *d = sl_batch_new(0, 0);
    struct sl_buf msg = {0};
    char err[256];
    assert_int_equal(sl_wire_encode(&b->pub, NULL, 5, &msg), 0);
    assert_int_equal(sl_wire_kind(msg.data, msg.len), SL_WIRE_BATCH);
    if (sl_wire_decode(msg.data, msg.len, d, err, sizeof err) != 0)
        fail_msg("decode: %s", err);
    assert_int_equal(d->pub.nevents, b->pub.nevents);
    assert_int_equal(d->pub.partition, 5);
    assert_int_equal(d->pub.seq, 42);
    assert_int_equal(d->pub.position.len, 9);
    assert_memory_equal(d->pub.position.bytes, b->pub.position.bytes, 9);
    assert_int_equal(d->nentities, 2); /* each schema once */
    for (size_t i = 0; i < b->pub.nevents; i++)
        assert_same_event(&b->pub.events[i], &d->pub.events[i]);
    /* ABSENT, NULL and "" stay distinct */
    assert_int_equal(d->pub.events[0].values[7].state, SLUICE_PRESENT);
    assert_int_equal(d->pub.events[0].values[7].len, 0);
    assert_int_equal(d->pub.events[2].values[7].state, SLUICE_NULL);
    assert_int_equal(d->pub.events[4].values[7].state, SLUICE_ABSENT);
    /* bytes with NUL inside */
    assert_int_equal(d->pub.events[6].values[8].len, 5);
    assert_memory_equal(d->pub.events[6].values[8].u.ptr, "a\0b\xff\0", 5);
    /* the decoded batch owns its memory: wipe the message, values stay */
    memset(msg.data, 0, msg.len);
    assert_memory_equal(d->pub.events[6].values[7].u.ptr, "\xf0\x9f\x98\x80", 4);
    assert_true(same_entity(d->entities[0], &all_ent));
    assert_int_equal(sl_entity_fingerprint(d->entities[0]), sl_entity_fingerprint(&all_ent));

    /* decoding again into the same batch replaces the contents */
    sl_buf_reset(&msg);
    assert_int_equal(sl_wire_encode(&b->pub, NULL, 1, &msg), 0);
    assert_int_equal(sl_wire_decode(msg.data, msg.len, d, err, sizeof err), 0);
    assert_int_equal(d->pub.nevents, b->pub.nevents);
    sl_buf_free(&msg);
    sl_batch_free(b);
    sl_batch_free(d);
}

static void one_mib_text_survives(void **state)
{
    struct sl_batch *b = sl_batch_new(0, 0), *d = sl_batch_new(0, 0);
    struct sl_buf msg = {0};
    char err[256];
    size_t n = 1u << 20;
    char *big = sl_batch_alloc(b, n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    struct sluice_event *ev = sl_batch_append(b, &small_ent, SLUICE_OP_INSERT);
    sluice_value_set_ref(&ev->values[0], big, (uint32_t)n);
    sluice_value_set_int(&ev->values[1], -1);
    assert_int_equal(sl_wire_encode(&b->pub, NULL, 0, &msg), 0);
    assert_int_equal(sl_wire_decode(msg.data, msg.len, d, err, sizeof err), 0);
    assert_int_equal(d->pub.events[0].values[0].len, n);
    assert_memory_equal(d->pub.events[0].values[0].u.ptr, big, n);
    sl_buf_free(&msg);
    sl_batch_free(b);
    sl_batch_free(d);
}

static void partition_filter_selects_events_and_their_schemas(void **state)
{
    struct sl_batch *b = sample_batch(), *d = sl_batch_new(0, 0);
    struct sl_buf msg = {0};
    char err[256];
    size_t n = b->pub.nevents;
    uint32_t *part = calloc(n, sizeof *part);
    /* all `small` events to partition 1, all-type rows to 0, one TRUNCATE-like to all */
    for (size_t i = 0; i < n; i++)
        part[i] = b->pub.events[i].entity == &small_ent ? 1 : 0;
    part[4] = SL_PART_ALL;

    assert_int_equal(sl_wire_encode(&b->pub, part, 1, &msg), 0);
    assert_int_equal(sl_wire_decode(msg.data, msg.len, d, err, sizeof err), 0);
    assert_int_equal(d->pub.partition, 1);
    assert_int_equal(d->pub.nevents, NROWS + 1);
    assert_int_equal(d->nentities, 2);
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (part[i] == 1 || part[i] == SL_PART_ALL)
            assert_same_event(&b->pub.events[i], &d->pub.events[j++]);
    assert_int_equal(j, d->pub.nevents);

    sl_buf_reset(&msg);
    assert_int_equal(sl_wire_encode(&b->pub, part, 0, &msg), 0);
    assert_int_equal(sl_wire_decode(msg.data, msg.len, d, err, sizeof err), 0);
    assert_int_equal(d->pub.nevents, NROWS);
    assert_int_equal(d->nentities, 1);
    for (size_t i = 0; i < d->pub.nevents; i++)
        assert_ptr_equal(d->pub.events[i].entity, d->entities[0]);

    /* any other partition still gets the SL_PART_ALL event */
    sl_buf_reset(&msg);
    assert_int_equal(sl_wire_encode(&b->pub, part, 7, &msg), 0);
    assert_int_equal(sl_wire_decode(msg.data, msg.len, d, err, sizeof err), 0);
    assert_int_equal(d->pub.nevents, 1);
    assert_same_event(&b->pub.events[4], &d->pub.events[0]);

    /* a partition with no events: a valid, empty batch with the position */
    part[4] = 0;
    sl_buf_reset(&msg);
    assert_int_equal(sl_wire_encode(&b->pub, part, 7, &msg), 0);
    assert_int_equal(sl_wire_decode(msg.data, msg.len, d, err, sizeof err), 0);
    assert_int_equal(d->pub.nevents, 0);
    assert_int_equal(d->nentities, 0);
    assert_int_equal(d->pub.position.len, 9);
    free(part);
    sl_buf_free(&msg);
    sl_batch_free(b);
    sl_batch_free(d);
}

static void spill_refs_round_trip_and_kinds_are_told_apart(void **state)
{
    struct sl_wire_ref ref = {.len = 123456789012ull, .partition = 3, .seq = 77}, back;
    struct sl_buf msg = {0};
    char err[256];
    strcpy(ref.id, "p3/000000000077-deadbeef");
    ref.position.len = 8;
    sluice_put_be64(ref.position.bytes, 0x0102030405060708ull);
    assert_int_equal(sl_wire_encode_ref(&ref, &msg), 0);
    assert_int_equal(sl_wire_kind(msg.data, msg.len), SL_WIRE_SPILL_REF);
    assert_int_equal(sl_wire_decode_ref(msg.data, msg.len, &back, err, sizeof err), 0);
    assert_string_equal(back.id, ref.id);
    assert_int_equal(back.len, ref.len);
    assert_int_equal(back.partition, 3);
    assert_int_equal(back.seq, 77);
    assert_int_equal(back.position.len, 8);
    assert_memory_equal(back.position.bytes, ref.position.bytes, 8);

    /* a ref is not a batch and a batch is not a ref */
    struct sl_batch *d = sl_batch_new(0, 0);
    assert_int_equal(sl_wire_decode(msg.data, msg.len, d, err, sizeof err), -1);
    struct sl_batch *b = sample_batch();
    sl_buf_reset(&msg);
    sl_wire_encode(&b->pub, NULL, 0, &msg);
    assert_int_equal(sl_wire_decode_ref(msg.data, msg.len, &back, err, sizeof err), -1);
    /* not sluice at all */
    assert_int_equal(sl_wire_kind("hello", 5), -1);
    assert_int_equal(sl_wire_kind("", 0), -1);
    assert_int_equal(sl_wire_kind("\x93\xa6sluicX\x01\x01", 10), -1);
    sl_buf_free(&msg);
    sl_batch_free(b);
    sl_batch_free(d);
}

static void unknown_version_and_kind_are_refused_with_a_reason(void **state)
{
    struct sl_batch *b = sample_batch(), *d = sl_batch_new(0, 0);
    struct sl_buf msg = {0};
    char err[256];
    sl_wire_encode(&b->pub, NULL, 0, &msg);
    /* header is 0x93 0xa6 "sluice" <version> <kind> as positive fixints */
    assert_int_equal((unsigned char)msg.data[8], SL_WIRE_VERSION);
    msg.data[8] = 2;
    assert_int_equal(sl_wire_decode(msg.data, msg.len, d, err, sizeof err), -1);
    assert_non_null(strstr(err, "version 2"));
    assert_int_equal(d->pub.nevents, 0);
    msg.data[8] = SL_WIRE_VERSION;
    msg.data[9] = 9;
    assert_int_equal(sl_wire_kind(msg.data, msg.len), 9);
    assert_int_equal(sl_wire_decode(msg.data, msg.len, d, err, sizeof err), -1);
    msg.data[9] = SL_WIRE_BATCH;
    /* trailing garbage */
    sl_buf_append(&msg, "\xc0", 1);
    assert_int_equal(sl_wire_decode(msg.data, msg.len, d, err, sizeof err), -1);
    assert_non_null(strstr(err, "garbage"));
    sl_buf_free(&msg);
    sl_batch_free(b);
    sl_batch_free(d);
}

static void truncated_messages_fail_at_every_length(void **state)
{
    struct sl_batch *b = sample_batch(), *d = sl_batch_new(0, 0);
    struct sl_buf msg = {0};
    char err[256];
    sl_wire_encode(&b->pub, NULL, 0, &msg);
    for (size_t n = 0; n < msg.len; n++) {
        /* a fresh copy of exactly n bytes, so ASan catches any read past it */
        char *cut = malloc(n ? n : 1);
        memcpy(cut, msg.data, n);
        err[0] = '\0';
        if (sl_wire_decode(cut, n, d, err, sizeof err) != -1)
            fail_msg("a message cut to %zu of %zu bytes was accepted", n, msg.len);
        assert_true(err[0] != '\0');
        assert_int_equal(d->pub.nevents, 0);
        free(cut);
    }
    struct sl_wire_ref ref = {.len = 1, .partition = 0, .seq = 1}, back;
    strcpy(ref.id, "x");
    sl_buf_reset(&msg);
    sl_wire_encode_ref(&ref, &msg);
    for (size_t n = 0; n < msg.len; n++) {
        char *cut = malloc(n ? n : 1);
        memcpy(cut, msg.data, n);
        assert_int_equal(sl_wire_decode_ref(cut, n, &back, err, sizeof err), -1);
        free(cut);
    }
    sl_buf_free(&msg);
    sl_batch_free(b);
    sl_batch_free(d);
}

static void random_byte_flips_never_crash(void **state)
{
    struct sl_batch *b = sample_batch(), *d = sl_batch_new(0, 0);
    struct sl_buf msg = {0};
    char err[256];
    sl_wire_encode(&b->pub, NULL, 0, &msg);
    char *m = malloc(msg.len);
    uint64_t x = 88172645463325252ull;
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(m, msg.data, msg.len);
        int flips = 1 + iter % 4;
        for (int f = 0; f < flips; f++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            m[x % msg.len] = (char)(x >> 32);
        }
        if (sl_wire_decode(m, msg.len, d, err, sizeof err) == 0) {
            accepted++;
            /* whatever got through is internally consistent */
            for (size_t i = 0; i < d->pub.nevents; i++) {
                const struct sluice_event *ev = &d->pub.events[i];
                assert_non_null(ev->entity);
                char buf[64];
                for (uint32_t c = 0; c < ev->entity->ncolumns; c++)
                    if (ev->values[c].state == SLUICE_PRESENT)
                        sl_value_format(&ev->entity->columns[c], &ev->values[c], buf, sizeof buf);
            }
        } else {
            assert_int_equal(d->pub.nevents, 0);
        }
    }
    print_message("%d of 20000 mutated messages still decoded (flips inside values)\n", accepted);
    free(m);
    sl_buf_free(&msg);
    sl_batch_free(b);
    sl_batch_free(d);
}

static void hostile_counts_are_refused(void **state)
{
    struct sl_batch *d = sl_batch_new(0, 0);
    char err[256];
    /* header, then a batch header claiming 4 billion events with no bytes behind it */
    static const unsigned char lie[] = {0x93, 0xa6, 's', 'l', 'u', 'i', 'c', 'e', 0x01, 0x01,
                                        0x96, 0x00, 0x00, 0x00, 0xc4, 0x00, 0x00,
                                        0xce, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(sl_wire_decode(lie, sizeof lie, d, err, sizeof err), -1);
    /* an event array header claiming 2^32-1 elements */
    static const unsigned char huge_array[] = {0x93, 0xa6, 's',  'l',  'u',  'i',  'c',  'e',
                                               0x01, 0x01, 0x96, 0x00, 0x00, 0x00, 0xc4, 0x00,
                                               0x00, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(sl_wire_decode(huge_array, sizeof huge_array, d, err, sizeof err), -1);
    /* deep nesting */
    unsigned char deep[10 + 5000];
    memcpy(deep, lie, 10);
    memset(deep + 10, 0x91, 5000);
    assert_int_equal(sl_wire_decode(deep, sizeof deep, d, err, sizeof err), -1);
    sl_batch_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_and_edge_value_round_trips),
        cmocka_unit_test(one_mib_text_survives),
        cmocka_unit_test(partition_filter_selects_events_and_their_schemas),
        cmocka_unit_test(spill_refs_round_trip_and_kinds_are_told_apart),
        cmocka_unit_test(unknown_version_and_kind_are_refused_with_a_reason),
        cmocka_unit_test(truncated_messages_fail_at_every_length),
        cmocka_unit_test(random_byte_flips_never_crash),
        cmocka_unit_test(hostile_counts_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
