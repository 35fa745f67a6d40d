/* Batch arena and schemas: memory is aligned and reused, appended events keep
 * their values while the event array grows, thresholds trip, schemas clone
 * deeply and validate strictly, and equal keys hash equal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "value_text.h"
#include "wire.h"

static void arena_is_aligned_and_reused_after_reset(void **state)
{
    struct sl_arena a = {0};
    void *first[64];
    for (int i = 0; i < 64; i++) {
        first[i] = sl_arena_alloc(&a, (size_t)(i * 37 % 1000) + 1);
        assert_non_null(first[i]);
        assert_int_equal((uintptr_t)first[i] % 16, 0);
    }
    for (int i = 1; i < 64; i++)
        assert_ptr_not_equal(first[i - 1], first[i]);
    /* write everything: ASan would see overlap or overflow */
    for (int i = 0; i < 64; i++)
        memset(first[i], i, (size_t)(i * 37 % 1000) + 1);
    for (int i = 0; i < 64; i++)
        assert_int_equal(((unsigned char *)first[i])[0], i);

    sl_arena_reset(&a);
    assert_int_equal(a.used_total, 0);
    void *again = sl_arena_alloc(&a, 100);
    /* the same chunk comes back: the first allocation lands where it did */
    assert_ptr_equal(again, first[0]);

    /* a big allocation gets its own chunk and does not disturb the current one */
    char *small1 = sl_arena_alloc(&a, 10);
    char *big = sl_arena_alloc(&a, 1 << 20);
    char *small2 = sl_arena_alloc(&a, 10);
    assert_non_null(big);
    memset(big, 0xab, 1 << 20);
    assert_ptr_equal(small2, small1 + 16);
    sl_arena_free(&a);
}

static void arena_reset_frees_a_huge_chunk_once_use_shrinks(void **state)
{
    struct sl_arena a = {0};
    char *huge = sl_arena_alloc(&a, 10u << 20);
    assert_non_null(huge);
    memset(huge, 1, 10u << 20);
    sl_arena_reset(&a); /* kept: the last use was 10 MiB */
    assert_true(sl_arena_reserved(&a) >= 10u << 20);
    assert_ptr_equal(sl_arena_alloc(&a, 10u << 20), huge);
    sl_arena_reset(&a);
    assert_non_null(sl_arena_alloc(&a, 100));
    sl_arena_reset(&a); /* last use was tiny: the 10 MiB chunk goes */
    assert_true(sl_arena_reserved(&a) < 1u << 20);
    sl_arena_free(&a);
}

static struct sluice_column cols[] = {
    {.name = "id", .type = SLUICE_T_INT64},
    {.name = "code", .type = SLUICE_T_TEXT},
    {.name = "note", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE},
    {.name = "price", .type = SLUICE_T_DECIMAL, .precision = 12, .scale = 2,
     .flags = SLUICE_COL_NULLABLE},
};
static uint32_t keys[] = {0, 1};
static struct sluice_entity ent = {.ns = "crm", .name = "accounts", .ncolumns = 4,
                                   .columns = cols, .nkeys = 2, .key_columns = keys};

static void append_grows_events_and_keeps_values(void **state)
{
    struct sl_batch *b = sl_batch_new(0, 0);
    struct sluice_value *vals[1000];
    for (int i = 0; i < 1000; i++) {
        struct sluice_event *ev = sl_batch_append(b, &ent, SLUICE_OP_INSERT);
        assert_non_null(ev);
        for (uint32_t c = 0; c < ent.ncolumns; c++)
            assert_int_equal(ev->values[c].state, SLUICE_ABSENT);
        ev->version = (uint64_t)i;
        sluice_value_set_int(&ev->values[0], i);
        char txt[16];
        int n = snprintf(txt, sizeof txt, "c%d", i);
        sluice_value_set_ref(&ev->values[1], sl_batch_copy(b, txt, (size_t)n), (uint32_t)n);
        vals[i] = ev->values;
    }
    assert_int_equal(b->pub.nevents, 1000);
    for (int i = 0; i < 1000; i++) {
        const struct sluice_event *ev = &b->pub.events[i];
        char txt[16];
        int n = snprintf(txt, sizeof txt, "c%d", i);
        assert_ptr_equal(ev->values, vals[i]); /* values never move */
        assert_int_equal(ev->version, i);
        assert_int_equal(ev->values[0].u.i64, i);
        assert_int_equal(ev->values[1].len, n);
        assert_memory_equal(ev->values[1].u.ptr, txt, (size_t)n);
        assert_int_equal(ev->values[2].state, SLUICE_ABSENT);
    }
    assert_true(sl_batch_bytes(b) >= 1000 * 4 * sizeof(struct sluice_value));
    sl_batch_reset(b);
    assert_int_equal(b->pub.nevents, 0);
    assert_int_equal(sl_batch_bytes(b), 0);
    sl_batch_free(b);
}

static void full_trips_at_row_and_byte_thresholds(void **state)
{
    struct sl_batch *b = sl_batch_new(3, 0);
    for (int i = 0; i < 2; i++)
        sl_batch_append(b, &ent, SLUICE_OP_READ);
    assert_false(sl_batch_full(b));
    sl_batch_append(b, &ent, SLUICE_OP_READ);
    assert_true(sl_batch_full(b));
    sl_batch_free(b);

    b = sl_batch_new(0, 4096);
    sl_batch_append(b, &ent, SLUICE_OP_READ);
    assert_false(sl_batch_full(b));
    sl_batch_alloc(b, 4096);
    assert_true(sl_batch_full(b));
    sl_batch_reset(b);
    assert_false(sl_batch_full(b));
    sl_batch_free(b);

    b = sl_batch_new(0, 0); /* no limits */
    for (int i = 0; i < 10000; i++)
        sl_batch_append(b, &ent, SLUICE_OP_READ);
    assert_false(sl_batch_full(b));
    sl_batch_free(b);
}

static void clone_is_deep_and_fingerprint_tracks_schema(void **state)
{
    struct sl_arena a = {0};
    char name[] = "accounts";
    struct sluice_column c2[4];
    memcpy(c2, cols, sizeof cols);
    char colname[] = "code";
    c2[1].name = colname;
    struct sluice_entity d = ent;
    d.name = name;
    d.columns = c2;
    d.id = 7;
    d.schema_version = 3;
    struct sluice_entity *e = sl_entity_clone(&a, &d);
    assert_non_null(e);
    uint64_t fp = sl_entity_fingerprint(e);
    assert_int_equal(fp, sl_entity_fingerprint(&d));
    /* the clone owns its memory */
    name[0] = 'X';
    colname[0] = 'X';
    assert_string_equal(e->name, "accounts");
    assert_string_equal(e->columns[1].name, "code");
    assert_ptr_not_equal(e->key_columns, keys);
    assert_int_equal(e->nkeys, 2);
    assert_int_equal(e->key_columns[1], 1);
    assert_int_equal(e->id, 7);
    assert_int_equal(e->schema_version, 3);
    assert_int_equal(e->columns[3].precision, 12);

    /* id and version do not matter; every schema change does */
    struct sluice_entity x = *e;
    x.id = 99;
    assert_int_equal(sl_entity_fingerprint(&x), fp);
    struct sluice_column c3[4];
    memcpy(c3, e->columns, sizeof c3);
    x.columns = c3;
    c3[3].scale = 3;
    assert_int_not_equal(sl_entity_fingerprint(&x), fp);
    c3[3].scale = 2;
    c3[2].flags = 0;
    assert_int_not_equal(sl_entity_fingerprint(&x), fp);
    c3[2].flags = SLUICE_COL_NULLABLE;
    assert_int_equal(sl_entity_fingerprint(&x), fp);
    x.nkeys = 1;
    assert_int_not_equal(sl_entity_fingerprint(&x), fp);
    x.nkeys = 2;
    x.ns = "crm2";
    assert_int_not_equal(sl_entity_fingerprint(&x), fp);
    sl_arena_free(&a);
}

static void validate_refuses_malformed_schemas(void **state)
{
    char err[256];
    assert_int_equal(sl_entity_validate(&ent, err, sizeof err), 0);

    struct sluice_column c[4];
    uint32_t k[2];
    struct sluice_entity d;
#define RESET()                                                                                    \
    do {                                                                                           \
        memcpy(c, cols, sizeof c);                                                                 \
        memcpy(k, keys, sizeof k);                                                                 \
        d = ent;                                                                                   \
        d.columns = c;                                                                             \
        d.key_columns = k;                                                                         \
    } while (0)
#define REFUSED()                                                                                  \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        assert_int_equal(sl_entity_validate(&d, err, sizeof err), -1);                             \
        assert_true(err[0] != '\0');                                                               \
    } while (0)
    RESET();
    d.name = "";
    REFUSED();
    RESET();
    d.name = NULL;
    REFUSED();
    RESET();
    c[2].name = "";
    REFUSED();
    RESET();
    c[2].type = 0;
    REFUSED();
    RESET();
    c[2].type = SLUICE_T_MAX + 1;
    REFUSED();
    RESET();
    k[1] = 4;
    REFUSED();
    RESET();
    k[1] = 0; /* key listed twice */
    REFUSED();
    RESET();
    k[1] = 2; /* nullable key column */
    REFUSED();
    RESET();
    c[2].name = "code"; /* duplicate column */
    REFUSED();
    RESET();
    c[3].precision = 1001;
    REFUSED();
    RESET();
    c[3].scale = 13;
    REFUSED();
    RESET();
    c[3].scale = -1;
    REFUSED();
    RESET();
    d.ncolumns = 0;
    REFUSED();
    RESET();
    c[3].precision = 1000;
    c[3].scale = 1000;
    assert_int_equal(sl_entity_validate(&d, err, sizeof err), 0);
#undef RESET
#undef REFUSED
}

/* equal keys hash equal however they got into the batch: set directly,
 * parsed from text, or decoded from the wire */
static void equal_keys_hash_equal_across_types_and_wire(void **state)
{
    static const struct {
        int type;
        const char *text;
    } cases[] = {
        {SLUICE_T_BOOL, "true"},
        {SLUICE_T_INT16, "-7"},
        {SLUICE_T_INT32, "123456"},
        {SLUICE_T_INT64, "-9223372036854775808"},
        {SLUICE_T_FLOAT32, "0.5"},
        {SLUICE_T_FLOAT64, "-0.1"},
        {SLUICE_T_DECIMAL, "12345678901234567890.12"},
        {SLUICE_T_TEXT, "k\xc3\xa9y"},
        {SLUICE_T_BYTES, "\\x00ff00"},
        {SLUICE_T_DATE, "2024-02-29"},
        {SLUICE_T_TIME, "24:00:00"},
        {SLUICE_T_TIMESTAMP, "2024-02-29 12:00:00.000001"},
        {SLUICE_T_TIMESTAMPTZ, "2024-02-29 12:00:00+05:30"},
        {SLUICE_T_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
        {SLUICE_T_JSON, "{\"k\": 1}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sluice_column kc[2] = {{.name = "k", .type = (uint16_t)cases[i].type},
                                      {.name = "v", .type = SLUICE_T_INT64}};
        uint32_t kk[1] = {0};
        struct sluice_entity e = {.ns = "", .name = "t", .ncolumns = 2, .columns = kc,
                                  .nkeys = 1, .key_columns = kk};
        char err[256];
        struct sl_batch *b1 = sl_batch_new(0, 0), *b2 = sl_batch_new(0, 0);
        struct sl_buf msg = {0};
        /* two events with the same key but different non-key values */
        for (int j = 0; j < 2; j++) {
            struct sluice_event *ev = sl_batch_append(b1, &e, SLUICE_OP_UPDATE);
            size_t len = strlen(cases[i].text);
            if (sl_value_parse(&kc[0], cases[i].text, len, b1, &ev->values[0], err, sizeof err))
                fail_msg("%s: %s", cases[i].text, err);
            sluice_value_set_int(&ev->values[1], j);
        }
        uint64_t h = sl_event_key_hash(&b1->pub.events[0]);
        assert_int_equal(h, sl_event_key_hash(&b1->pub.events[1]));
        assert_int_equal(sl_wire_encode(&b1->pub, NULL, 0, &msg), 0);
        if (sl_wire_decode(msg.data, msg.len, b2, err, sizeof err) != 0)
            fail_msg("%s: %s", cases[i].text, err);
        assert_int_equal(sl_event_key_hash(&b2->pub.events[0]), h);
        /* a different entity name changes the hash */
        struct sluice_entity other = e;
        other.name = "u";
        struct sluice_event ev2 = b1->pub.events[0];
        ev2.entity = &other;
        assert_int_not_equal(sl_event_key_hash(&ev2), h);
        sl_buf_free(&msg);
        sl_batch_free(b1);
        sl_batch_free(b2);
    }
    /* -0.0 and 0.0 are the same key */
    struct sluice_column fc[1] = {{.name = "k", .type = SLUICE_T_FLOAT64}};
    uint32_t fk[1] = {0};
    struct sluice_entity fe = {.ns = "", .name = "f", .ncolumns = 1, .columns = fc, .nkeys = 1,
                               .key_columns = fk};
    struct sluice_value v1 = {.state = SLUICE_PRESENT}, v2 = {.state = SLUICE_PRESENT};
    v1.u.f64 = 0.0;
    v2.u.f64 = -0.0;
    struct sluice_event a = {.entity = &fe, .values = &v1}, c = {.entity = &fe, .values = &v2};
    assert_int_equal(sl_event_key_hash(&a), sl_event_key_hash(&c));
    v2.u.f64 = 1.0;
    assert_int_not_equal(sl_event_key_hash(&a), sl_event_key_hash(&c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_is_aligned_and_reused_after_reset),
        cmocka_unit_test(arena_reset_frees_a_huge_chunk_once_use_shrinks),
        cmocka_unit_test(append_grows_events_and_keeps_values),
        cmocka_unit_test(full_trips_at_row_and_byte_thresholds),
        cmocka_unit_test(clone_is_deep_and_fingerprint_tracks_schema),
        cmocka_unit_test(validate_refuses_malformed_schemas),
        cmocka_unit_test(equal_keys_hash_equal_across_types_and_wire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
