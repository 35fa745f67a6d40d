/*
 * lifecycle.h - removing what a profile created, shared by `sluice profile
 * delete` (profile_cmd.c, offline or inside the service through run.c) and
 * `sluice uninstall` (uninstall.c).
 *
 * Each step loads the profile's plugin, inits and starts one instance on
 * the calling thread, calls the op, stops and destroys it. Every step writes
 * one line to *report saying what it removed (or would remove, dry_run) or
 * why it could not.
 */
#ifndef SL_LIFECYCLE_H
#define SL_LIFECYCLE_H

#include <stdbool.h>

#include "config.h"
#include "state.h"
#include "util.h"

enum sl_drop_what {
    SL_DROP_SOURCE,        /* source drop: replication slot, publication */
    SL_DROP_SINK_PROFILE,  /* sink drop_profile: checkpoints, tombstones */
    SL_DROP_SINK_METADATA, /* sink drop_metadata: the sink's metadata tables */
    SL_DROP_SPILL_BLOBS    /* spill list + del: the profile's blobs */
};
/* 0, or -1 (the reason is in report). */
int sl_profile_drop(const struct sl_config *cfg, const struct sl_profile *p, int what,
                    bool dry_run, struct sl_buf *report);

/* Remove a folder tree (rm -rf). 0, or -1 with errno. Missing is fine. */
int sl_remove_tree(const char *path);

/*
 * Delete profile `name` (p: its config, NULL when no drop-in defines it any
 * more): checkpoints and tombstones in the target, the source's slot and
 * publication, spill blobs, its failed-record log, counters and plugin
 * folder; then mark it deleted in the state store, so that a drop-in still
 * naming it does not silently bring it back. The profile must not be
 * running. 0, or -1 when a step failed (report says which; the profile is
 * still marked deleted, run the command again to retry the steps).
 */
int sl_profile_purge(const struct sl_config *cfg, const struct sl_profile *p, const char *name,
                     struct sl_state *st, struct sl_buf *report);

#endif
