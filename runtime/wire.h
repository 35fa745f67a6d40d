/*
 * wire.h - the encoding of batches on the transport (docs/wire-format.md).
 *
 * A message is either a batch, or a reference to a batch parked in the spill
 * store (claim check). Encoding uses msgpack-c; decoding validates every
 * field and never trusts a length, so a damaged or hostile message is an
 * error, never a crash (tests/fuzz/fuzz_wire.c).
 */
#ifndef SL_WIRE_H
#define SL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/types.h>

#include "batch.h"
#include "util.h"

#define SL_WIRE_VERSION 1

enum sl_wire_kind {
    SL_WIRE_BATCH = 1,
    SL_WIRE_SPILL_REF = 2
};

/* event_part[i] for an event that goes to every partition (TRUNCATE) */
#define SL_PART_ALL UINT32_MAX

/*
 * Encode the events of b whose event_part[i] is `part` or SL_PART_ALL
 * (event_part NULL: all events), with b->position, b->flags, b->seq and the
 * given partition number, appending to out. Each distinct entity schema used
 * by the selected events is written once. 0, or -1 (OOM).
 */
int sl_wire_encode(const struct sluice_batch *b, const uint32_t *event_part, uint32_t part,
                   struct sl_buf *out);

/* A claim-check reference: spill blob id, payload length, and the batch's
 * partition, position, seq (so a consumer can checkpoint without the blob). */
struct sl_wire_ref {
    char id[128];
    uint64_t len;
    uint32_t partition;
    uint64_t seq;
    struct sluice_position position;
};
int sl_wire_encode_ref(const struct sl_wire_ref *ref, struct sl_buf *out);

/* Kind of an encoded message, or -1 if it is not a sluice message. */
int sl_wire_kind(const void *data, size_t len);

/*
 * Decode a batch message into b (reset first): events, values and schemas
 * live in b's arena; b->entities lists the schemas. 0, or -1 with err.
 */
int sl_wire_decode(const void *data, size_t len, struct sl_batch *b, char *err, size_t errlen);
int sl_wire_decode_ref(const void *data, size_t len, struct sl_wire_ref *ref, char *err,
                       size_t errlen);

#endif
