/*
 * fuzz_value_text.c - libFuzzer target for the canonical text parser
 * (runtime/value_text.c).
 *
 * Input byte 0 picks the logical type, byte 1 a decimal precision/scale; the
 * rest is the text. Parsing must never crash; text that parses must format to
 * a canonical form that parses back to the same value and formats the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "value_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sl_batch *b;
    static char *f1, *f2;
    static size_t cap;
    char err[512];
    if (size < 2)
        return 0;
    if (!b)
        b = sl_batch_new(0, 0);
    sl_batch_reset(b);
    struct sluice_column col = {.name = "v", .type = (uint16_t)(1 + data[0] % SLUICE_T_MAX)};
    if (data[1] & 0x80) {
        col.precision = 1 + (data[1] & 0x3f);
        col.scale = (data[1] & 0x40) ? col.precision / 2 : 0;
    }
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    struct sluice_value v = {0}, w = {0};
    if (sl_value_parse(&col, text, len, b, &v, err, sizeof err) != 0)
        return 0;
    size_t n = sl_value_format(&col, &v, NULL, 0);
    if (n + 1 > cap) {
        cap = n + 1;
        f1 = realloc(f1, cap);
        f2 = realloc(f2, cap);
    }
    sl_value_format(&col, &v, f1, cap);
    if (sl_value_parse(&col, f1, n, b, &w, err, sizeof err) != 0) {
        fprintf(stderr, "%s: canonical text does not parse back: %s\n",
                sluice_type_name(col.type), err);
        abort();
    }
    if (sl_value_format(&col, &w, f2, cap) != n || memcmp(f1, f2, n) != 0) {
        fprintf(stderr, "%s: canonical text is not a fixpoint\n", sluice_type_name(col.type));
        abort();
    }
    return 0;
}
