/*
 * sluice/transport.h - the transport plugin ops table.
 *
 * A transport carries encoded batches (docs/wire-format.md) from the source
 * side of a profile to its apply workers. It has `partitions` independent
 * ordered queues (sluice_init_args.partitions); every message of a partition
 * is delivered in publish order, and a message is redelivered until acked.
 * The default is transport-memory, a bounded in-process queue.
 */
#ifndef SLUICE_TRANSPORT_H
#define SLUICE_TRANSPORT_H

#include <sluice/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A delivered message. data is owned by the transport and valid until the
 * message is acked or nacked. */
struct sluice_message {
    const void *data;
    size_t len;
    uint32_t partition;
    uint32_t attempt; /* 1 on first delivery */
    void *handle;     /* transport-private */
};

struct sluice_transport_ops {
    uint32_t struct_size; /* sizeof(struct sluice_transport_ops) */

    /* max_message_size - required. Largest message publish accepts, in bytes
     * (0: no limit). A larger batch goes to the spill store and only a
     * reference travels (claim check). */
    size_t (*max_message_size)(void *inst);

    /*
     * publish - required. Append a copy of data to partition. Blocks while
     * the partition is full (backpressure), checking host->stopping() at
     * least every 200 ms. When it returns SLUICE_OK the message is accepted
     * (and durable, for a durable transport). SLUICE_STOPPED, SLUICE_RETRY
     * (broker unreachable) or SLUICE_ERR. Called from the source thread.
     */
    int (*publish)(void *inst, uint32_t partition, const void *data, size_t len);

    /*
     * consume - required. Next message of partition, waiting up to
     * timeout_ms. SLUICE_OK with *out filled, SLUICE_AGAIN when nothing came,
     * SLUICE_STOPPED, SLUICE_RETRY or SLUICE_ERR. At most one unacked message
     * per partition at a time; one thread per partition calls consume.
     */
    int (*consume)(void *inst, uint32_t partition, uint32_t timeout_ms,
                   struct sluice_message *out);

    /* ack - required. The message is applied; never deliver it again. */
    int (*ack)(void *inst, struct sluice_message *msg);

    /* nack - required. Deliver msg again, first in its partition, after
     * delay_ms. */
    int (*nack)(void *inst, struct sluice_message *msg, uint32_t delay_ms);

    /* depth - optional. Messages waiting in partition (for metrics). */
    size_t (*depth)(void *inst, uint32_t partition);

    /* ---- since ABI 1.1 (check struct_size before use) ---------------------- */

    /* flags - optional. SLUICE_TRANSPORT_* bits of this instance (after start). */
    uint32_t (*flags)(void *inst);
};

/*
 * SLUICE_TRANSPORT_IN_PROCESS: messages never leave this process; they are
 * consumed by the process that published them and lost with it. The host
 * then publishes small references to the batches it keeps in memory instead
 * of encoded copies (no encoding, no copy, no decoding), and encodes a batch
 * only when it has to park it in the spill store. A transport that crosses a
 * process boundary must never set it.
 */
#define SLUICE_TRANSPORT_IN_PROCESS 0x1u

#ifdef __cplusplus
}
#endif

#endif
