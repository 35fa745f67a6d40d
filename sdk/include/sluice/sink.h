/*
 * sluice/sink.h - the sink plugin ops table.
 *
 * A sink writes batches into a target database. The host creates one sink
 * instance per apply worker (partition), so an instance is only ever called
 * from one thread at a time; prepare() calls of a profile are serialized by
 * the host across its instances.
 *
 * What every sink guarantees (the sink conformance suite checks it):
 *  - apply() writes the batch and the partition's checkpoint in ONE
 *    transaction: both or neither.
 *  - writes are version-guarded: a record's version in the target only
 *    grows; an event whose version is <= the stored one changes nothing, so
 *    a replayed batch changes nothing; a delete leaves a tombstone so that an
 *    older insert or update cannot resurrect the record.
 *  - each target row carries sync metadata: source version, first and last
 *    sync time.
 */
#ifndef SLUICE_SINK_H
#define SLUICE_SINK_H

#include <sluice/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*sluice_checkpoint_cb)(void *arg, uint32_t partition,
                                    const struct sluice_position *pos);

struct sluice_sink_ops {
    uint32_t struct_size; /* sizeof(struct sluice_sink_ops) */

    /*
     * prepare - required. Make the target ready for events of entity e:
     * create the table (and the sink's metadata tables) if missing, add
     * columns that appeared. Never drops a column or a table: a column gone
     * from the source stays in the target (new rows leave it NULL). Called
     * before the first batch holding this entity's schema_version.
     * SLUICE_OK, SLUICE_RETRY or SLUICE_ERR.
     */
    int (*prepare)(void *inst, const struct sluice_entity *e);

    /*
     * apply - required. Write one batch to the target in a single
     * transaction, together with batch->position as the checkpoint of
     * batch->partition (unless position.len == 0). Called from this
     * instance's apply worker thread; the batch is borrowed and valid only
     * until apply returns. A batch with no events only moves the checkpoint.
     *
     * Returns SLUICE_OK, SLUICE_RETRY (transient: connection, deadlock,
     * timeout; nothing was committed) or SLUICE_ERR (permanent; nothing was
     * committed). On SLUICE_ERR, *failed is the index of the record the
     * target refused when the sink knows it, else SIZE_MAX; the host then
     * isolates the bad records by applying parts of the batch.
     */
    int (*apply)(void *inst, const struct sluice_batch *batch, size_t *failed);

    /*
     * checkpoint_list - required. Call cb for every partition checkpoint of
     * this profile stored in the target. SLUICE_OK (also when there are
     * none), SLUICE_RETRY or SLUICE_ERR.
     */
    int (*checkpoint_list)(void *inst, sluice_checkpoint_cb cb, void *arg);

    /* drop_profile - optional. Remove this profile's checkpoints and
     * tombstones from the target (profile delete). Target tables stay. */
    int (*drop_profile)(void *inst);

    /* drop_metadata - optional. Drop the sink's metadata tables for this
     * profile's target (uninstall --drop-target-metadata). */
    int (*drop_metadata)(void *inst);
};

#ifdef __cplusplus
}
#endif

#endif
