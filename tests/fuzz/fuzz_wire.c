/*
 * fuzz_wire.c - libFuzzer target for the wire decoder (runtime/wire.c).
 *
 * Any input: sl_wire_kind, sl_wire_decode and sl_wire_decode_ref must return
 * without crashing, leaking or reading out of bounds. A message that decodes
 * must also re-encode and decode to the same events (the decoder accepted
 * nothing the encoder cannot represent), and every decoded value must format.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "value_text.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_value(int type, const struct sluice_value *a, const struct sluice_value *b)
{
    if (a->state != b->state)
        return false;
    if (a->state != SLUICE_PRESENT)
        return true;
    if (sluice_type_is_varlen(type))
        return a->len == b->len && (a->len == 0 || memcmp(a->u.ptr, b->u.ptr, a->len) == 0);
    if (type == SLUICE_T_FLOAT32 || type == SLUICE_T_FLOAT64)
        return memcmp(&a->u.f64, &b->u.f64, sizeof(double)) == 0;
    return a->u.i64 == b->u.i64;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sl_batch *b, *again;
    static struct sl_buf msg;
    char err[512];
    struct sl_wire_ref ref;

    if (!b) {
        b = sl_batch_new(0, 0);
        again = sl_batch_new(0, 0);
    }
    (void)sl_wire_kind(data, size);
    (void)sl_wire_decode_ref(data, size, &ref, err, sizeof err);
    if (sl_wire_decode(data, size, b, err, sizeof err) != 0) {
        if (b->pub.nevents != 0 || err[0] == '\0')
            abort(); /* a failed decode leaves an empty batch and a reason */
        return 0;
    }
    char text[256];
    for (size_t i = 0; i < b->pub.nevents; i++) {
        const struct sluice_event *ev = &b->pub.events[i];
        for (uint32_t c = 0; c < ev->entity->ncolumns; c++)
            if (ev->values[c].state == SLUICE_PRESENT)
                sl_value_format(&ev->entity->columns[c], &ev->values[c], text, sizeof text);
        (void)sl_event_key_hash(ev);
    }
    sl_buf_reset(&msg);
    if (sl_wire_encode(&b->pub, NULL, b->pub.partition, &msg) != 0 ||
        sl_wire_decode(msg.data, msg.len, again, err, sizeof err) != 0) {
        fprintf(stderr, "re-encoding a decoded message failed: %s\n", err);
        abort();
    }
    if (again->pub.nevents != b->pub.nevents)
        abort();
    for (size_t i = 0; i < b->pub.nevents; i++) {
        const struct sluice_event *x = &b->pub.events[i], *y = &again->pub.events[i];
        if (x->op != y->op || x->version != y->version || x->txid != y->txid ||
            sl_entity_fingerprint(x->entity) != sl_entity_fingerprint(y->entity))
            abort();
        for (uint32_t c = 0; c < x->entity->ncolumns; c++)
            if (!same_value(x->entity->columns[c].type, &x->values[c], &y->values[c]))
                abort();
    }
    return 0;
}
