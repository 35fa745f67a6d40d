/*
 * sluice/source.h - the source plugin ops table.
 *
 * A source produces change events for the entities of one profile: first a
 * consistent snapshot of every entity (SLUICE_OP_READ events, the initial
 * sync), then the change stream (INSERT, UPDATE, DELETE, TRUNCATE), each batch
 * carrying the position reached. One instance serves one profile.
 */
#ifndef SLUICE_SOURCE_H
#define SLUICE_SOURCE_H

#include <sluice/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sluice_source_ops {
    uint32_t struct_size; /* sizeof(struct sluice_source_ops) */

    /*
     * describe - required. Declare every entity the profile exports with
     * host->entity_declare(). Called on the control thread after start and
     * before run. An entity named in the profile that the source cannot find
     * is an error (SLUICE_ERR, naming it).
     */
    int (*describe)(void *inst);

    /*
     * run - required. Emit batches (host->emit) from resume onwards; called
     * on the source thread. resume->len == 0: no checkpoint, start with the
     * initial sync. Otherwise resume is the smallest position the target has
     * durably applied for this profile: everything after it must be emitted
     * again (the target tolerates replays), nothing before it needs to be.
     *
     * mode SLUICE_RUN_ONCE: emit the initial sync if needed and every change
     * committed when run began, then return SLUICE_OK.
     * mode SLUICE_RUN_FOLLOW: keep emitting as changes arrive; emit whatever
     * is pending before blocking; wait with host->wait() or poll at least
     * every 200 ms so that host->stopping() is seen; return SLUICE_OK or
     * SLUICE_STOPPED when stopping.
     *
     * Returns SLUICE_RETRY on a transient failure (connection lost): the host
     * calls stop, start and run again, after backoff, from the last durable
     * position. SLUICE_ERR stops the profile.
     */
    int (*run)(void *inst, const struct sluice_position *resume, int mode);

    /*
     * ack - optional. Every event up to and including `durable` is committed
     * in the target: the source may release what it keeps for them (a
     * replication slot's WAL). Called from an apply thread, concurrently with
     * run: must be thread-safe and must not block.
     */
    void (*ack)(void *inst, const struct sluice_position *durable);

    /*
     * fetch - optional (resync of failed records). Append to out the current
     * state of the record of entity e whose key values are key[0..e->nkeys-1]
     * (in key order): one SLUICE_OP_READ event with every column and the
     * record's current version, or one SLUICE_OP_DELETE event when the
     * record no longer exists. Called on the control thread while run is not
     * running. SLUICE_OK, SLUICE_RETRY or SLUICE_ERR.
     */
    int (*fetch)(void *inst, const struct sluice_entity *e,
                 const struct sluice_value *key, struct sluice_batch *out);

    /*
     * drop - optional. Remove what the source created outside the host for
     * this profile (a replication slot, a publication, saved positions).
     * Called on profile delete and uninstall, after start, never with run.
     */
    int (*drop)(void *inst);
};

#ifdef __cplusplus
}
#endif

#endif
