/*
 * state.h - the state store: one SQLite database, <state_dir>/state.db.
 *
 * Owns what sluice remembers between runs on this machine: per-profile
 * status (enabled, running/done/failed, last error, last success), per-entity
 * counters and the failed-record log. The target database keeps the
 * checkpoints (in the sink's transaction); the state store never does, so
 * losing it loses statistics, never data.
 *
 * The folder is created 0700, the database (and its -wal/-shm files) 0600.
 * The schema is versioned with PRAGMA user_version (SL_STATE_SCHEMA_VERSION).
 *
 * Counter updates are accumulated in memory (sl_state_counter_add is cheap
 * and thread-safe) and written in one transaction by sl_state_flush, which
 * the run loop calls about once a second and at the end. Everything else
 * writes through at once. One connection guarded by a mutex serves all
 * threads.
 */
#ifndef SL_STATE_H
#define SL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define SL_STATE_SCHEMA_VERSION 2 /* 2: profiles.admin, gauges */
#define SL_STATE_FILE "state.db"

struct sl_state;

/* Open (creating folder and schema if needed). 0, or -1 with err. */
int sl_state_open(const char *state_dir, struct sl_state **out, struct sl_err *err);
/* Flush pending counters and close. NULL is fine. */
void sl_state_close(struct sl_state *st);

/* ---- counters ------------------------------------------------------------ */

/* entity NULL or "" is the profile-level row. In memory until the next flush. */
void sl_state_counter_add(struct sl_state *st, const char *profile, const char *entity,
                          const char *name, int64_t delta);
/* Write pending counters (and last-success times) in one transaction. 0 or -1. */
int sl_state_flush(struct sl_state *st);

/* Counters added in THIS process (not the stored totals), for run summaries. */
typedef void (*sl_state_counter_cb)(void *arg, const char *entity, const char *name,
                                    int64_t value);
void sl_state_run_counters(struct sl_state *st, const char *profile, sl_state_counter_cb cb,
                           void *arg);

/* ---- profiles ------------------------------------------------------------ */

/* Upsert the profile's row: enabled flag and status ("running", "done",
 * "stopped", "failed", "disabled"); last_error NULL clears it. */
int sl_state_profile_set(struct sl_state *st, const char *profile, bool enabled,
                         const char *status, const char *last_error);
/* Remember that the profile applied a batch at wall time us (flushed later). */
void sl_state_profile_success(struct sl_state *st, const char *profile, int64_t us);

/* ---- failed-record log --------------------------------------------------- */

struct sl_failed_record {
    const char *profile;
    const char *entity;    /* NULL if unknown */
    const char *record_id; /* key values as canonical text, ',' joined; NULL if unknown */
    const char *op;        /* "insert", "update", ...; NULL if unknown */
    const char *position;  /* hex; NULL if unknown */
    int64_t sync_time_us;
    const char *error;     /* never row data */
};
int sl_state_failed_add(struct sl_state *st, const struct sl_failed_record *r);
int sl_state_failed_count(struct sl_state *st, const char *profile, int64_t *count);
/* Every failed record of a profile, oldest first (id is the row's key for
 * sl_state_failed_delete). The record's strings are valid during the call
 * only. cb returns non-zero to stop. The store's lock is held during the
 * walk: cb must not call the state store (collect, then act). 0 or -1. */
typedef int (*sl_state_failed_cb)(void *arg, int64_t id, const struct sl_failed_record *r);
int sl_state_failed_list(struct sl_state *st, const char *profile, sl_state_failed_cb cb,
                         void *arg);
/* Remove one failed record (resynced). 0 or -1. */
int sl_state_failed_delete(struct sl_state *st, int64_t id);
/* Remove every failed record of a profile; *removed how many. 0 or -1. */
int sl_state_failed_clear(struct sl_state *st, const char *profile, int64_t *removed);

/* ---- reading (status) ---------------------------------------------------- */

struct sl_state_profile {
    const char *name;
    bool enabled;
    const char *status;     /* NULL if never set */
    const char *last_error; /* NULL if none */
    int64_t last_success_us; /* 0: never */
    int64_t updated_us;
};
typedef void (*sl_state_profile_cb)(void *arg, const struct sl_state_profile *p);
/* Every stored profile, by name. 0 or -1. */
int sl_state_profiles(struct sl_state *st, sl_state_profile_cb cb, void *arg);
/* Stored counters of a profile, by entity then name. 0 or -1. */
int sl_state_counters(struct sl_state *st, const char *profile, sl_state_counter_cb cb,
                      void *arg);

/* ---- lifecycle and gauges (operations: profile_cmd.c, metrics.c) ---------- */

/* The administrator's decision about a profile, kept across restarts and
 * stronger than the drop-in: SL_ADMIN_NONE follows `enabled` in the config. */
enum sl_admin { SL_ADMIN_NONE = 0, SL_ADMIN_DISABLED = 1, SL_ADMIN_DELETED = 2 };
const char *sl_admin_name(int admin); /* "none", "disabled", "deleted" */
int sl_state_admin_set(struct sl_state *st, const char *profile, int admin);
/* SL_ADMIN_* (NONE when the store has no row); *since_us when it was set. */
int sl_state_admin_get(struct sl_state *st, const char *profile, int64_t *since_us);

/* A value that is set, not added (estimate of rows, queue depth). Writes
 * through; callers throttle. entity NULL or "" is the profile level. */
int sl_state_gauge_set(struct sl_state *st, const char *profile, const char *entity,
                       const char *name, int64_t value);
int sl_state_gauges(struct sl_state *st, const char *profile, sl_state_counter_cb cb,
                    void *arg);

/* Forget a deleted profile: its counters (also those not yet flushed),
 * gauges and failed-record log. The profiles row stays (admin = deleted).
 * *failed_removed: how many failed records went. 0 or -1. */
int sl_state_profile_forget(struct sl_state *st, const char *profile, int64_t *failed_removed);

/* The database file (for uninstall's listing). */
const char *sl_state_path(const struct sl_state *st);

#endif
