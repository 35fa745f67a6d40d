/*
 * gen_corpus.c - writes the seed corpora the fuzz targets start from:
 * <dir>/wire/ (encoded batches and spill references made by the real
 * encoder) and <dir>/value_text/ (type byte, precision byte, text).
 * Fixtures are generated, never committed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batch.h"
#include "util.h"
#include "value_text.h"
#include "wire.h"

static int write_file(const char *dir, const char *name, int n, const void *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%03d", dir, name, n);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static const struct {
    int type;
    const char *text;
} values[] = {
    {SLUICE_T_BOOL, "true"},
    {SLUICE_T_BOOL, "no"},
    {SLUICE_T_INT16, "-32768"},
    {SLUICE_T_INT32, "2147483647"},
    {SLUICE_T_INT64, "-9223372036854775808"},
    {SLUICE_T_FLOAT32, "3.4028235e+38"},
    {SLUICE_T_FLOAT64, "-2.2250738585072014e-308"},
    {SLUICE_T_FLOAT64, "NaN"},
    {SLUICE_T_DECIMAL, "-12345678901234567890123456789.012345678"},
    {SLUICE_T_DECIMAL, "1.5e-3"},
    {SLUICE_T_DECIMAL, "-Infinity"},
    {SLUICE_T_TEXT, "caf\xc3\xa9 \xf0\x9f\x98\x80"},
    {SLUICE_T_TEXT, ""},
    {SLUICE_T_BYTES, "\\x00ff10"},
    {SLUICE_T_DATE, "2024-02-29"},
    {SLUICE_T_DATE, "-infinity"},
    {SLUICE_T_TIME, "24:00:00"},
    {SLUICE_T_TIME, "13:14:15.000001"},
    {SLUICE_T_TIMESTAMP, "1969-12-31 23:59:59.999999"},
    {SLUICE_T_TIMESTAMPTZ, "2024-01-01T05:30:00+05:30"},
    {SLUICE_T_TIMESTAMPTZ, "infinity"},
    {SLUICE_T_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
    {SLUICE_T_JSON, "{\"a\": [1, 2.5, null, \"x\"]}"},
};
#define NVALUES (sizeof values / sizeof values[0])

int main(int argc, char **argv)
{
    char wdir[4096], vdir[4096], err[256];
    int rc = 1, n = 0;
    struct sl_buf msg = {0};
    struct sl_batch *b = sl_batch_new(0, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        goto out;
    }
    snprintf(wdir, sizeof wdir, "%s/wire", argv[1]);
    snprintf(vdir, sizeof vdir, "%s/value_text", argv[1]);
    if (sl_mkdir_p(wdir, 0755) != 0 || sl_mkdir_p(vdir, 0755) != 0) {
        fprintf(stderr, "gen_corpus: cannot create %s: %s\n", argv[1], strerror(errno));
        goto out;
    }

    /* value_text: byte 0 type, byte 1 precision flags (0: unconstrained) */
    for (size_t i = 0; i < NVALUES; i++) {
        char in[256];
        size_t len = strlen(values[i].text);
        in[0] = (char)(values[i].type - 1);
        in[1] = 0;
        memcpy(in + 2, values[i].text, len);
        if (write_file(vdir, "seed", (int)i, in, len + 2) != 0)
            goto out;
    }

    /* wire: one entity with a column per value above, rows of edge values */
    struct sluice_column cols[NVALUES + 1];
    cols[0] = (struct sluice_column){.name = "id", .type = SLUICE_T_INT64};
    char names[NVALUES][8];
    for (size_t i = 0; i < NVALUES; i++) {
        snprintf(names[i], sizeof names[i], "c%zu", i);
        cols[i + 1] = (struct sluice_column){.name = names[i], .type = (uint16_t)values[i].type,
                                             .flags = SLUICE_COL_NULLABLE};
    }
    uint32_t key[1] = {0};
    struct sluice_entity e = {.ns = "public", .name = "t", .ncolumns = NVALUES + 1,
                              .columns = cols, .nkeys = 1, .key_columns = key, .id = 1,
                              .schema_version = 1};
    struct sluice_column kcols[2] = {{.name = "k", .type = SLUICE_T_TEXT},
                                     {.name = "n", .type = SLUICE_T_INT32, .flags = 1}};
    struct sluice_entity e2 = {.ns = "", .name = "kv", .ncolumns = 2, .columns = kcols,
                               .nkeys = 1, .key_columns = key, .id = 2, .schema_version = 1};
    for (int variant = 0; variant < 4; variant++) {
        sl_batch_reset(b);
        for (int r = 0; r < 3; r++) {
            int op = variant == 3 ? SLUICE_OP_DELETE : SLUICE_OP_INSERT;
            struct sluice_event *ev = sl_batch_append(b, &e, op);
            ev->version = (uint64_t)r + 1;
            ev->txid = 77;
            ev->commit_time_us = 1700000000000000 + r;
            sluice_value_set_int(&ev->values[0], r);
            for (size_t i = 0; i < NVALUES && op != SLUICE_OP_DELETE; i++) {
                if (variant == 1 && r == 1) {
                    sluice_value_set_null(&ev->values[i + 1]);
                    continue;
                }
                if (sl_value_parse(&cols[i + 1], values[i].text, strlen(values[i].text), b,
                                   &ev->values[i + 1], err, sizeof err) != 0) {
                    fprintf(stderr, "gen_corpus: %s: %s\n", values[i].text, err);
                    goto out;
                }
            }
            if (variant == 2) {
                ev = sl_batch_append(b, &e2, SLUICE_OP_UPDATE);
                sluice_value_set_ref(&ev->values[0], sl_batch_copy(b, "key", 3), 3);
                sluice_value_set_int(&ev->values[1], r);
            }
        }
        b->pub.seq = (uint64_t)variant;
        b->pub.position.len = 8;
        sluice_put_be64(b->pub.position.bytes, 0x1000 + (uint64_t)variant);
        sl_buf_reset(&msg);
        if (sl_wire_encode(&b->pub, NULL, (uint32_t)variant, &msg) != 0 ||
            write_file(wdir, "batch", n++, msg.data, msg.len) != 0)
            goto out;
    }
    sl_batch_reset(b); /* an empty batch that only carries a position */
    b->pub.position.len = 1;
    b->pub.position.bytes[0] = 9;
    sl_buf_reset(&msg);
    if (sl_wire_encode(&b->pub, NULL, 0, &msg) != 0 ||
        write_file(wdir, "batch", n++, msg.data, msg.len) != 0)
        goto out;
    struct sl_wire_ref ref = {.len = 4096, .partition = 2, .seq = 9};
    strcpy(ref.id, "p2/000009");
    ref.position.len = 8;
    sluice_put_be64(ref.position.bytes, 42);
    sl_buf_reset(&msg);
    if (sl_wire_encode_ref(&ref, &msg) != 0 || write_file(wdir, "ref", 0, msg.data, msg.len) != 0)
        goto out;
    rc = 0;
out:
    sl_buf_free(&msg);
    sl_batch_free(b);
    return rc;
}
