/*
 * sluice/host.h - the host API table: everything a plugin may ask of the host.
 *
 * Modelled on SQLite's sqlite3_api_routines: the host passes a pointer to this
 * table to the plugin's init(); the plugin keeps it and calls through it. The
 * table only grows at the end; a plugin that needs a member added in a later
 * minor checks host->struct_size (or SLUICE_HOST_HAS) before calling it.
 *
 * Every function is thread-safe unless it says otherwise. A struct sluice_ctx
 * is the host's handle for one plugin instance; it is opaque to the plugin.
 */
#ifndef SLUICE_HOST_H
#define SLUICE_HOST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/abi.h>
#include <sluice/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sluice_ctx; /* opaque, host-owned, one per plugin instance */

enum sluice_log_level {
    SLUICE_LOG_ERROR = 0,
    SLUICE_LOG_WARN = 1,
    SLUICE_LOG_INFO = 2,
    SLUICE_LOG_DEBUG = 3
};

/* run modes, passed to a source's run() and in sluice_init_args */
enum sluice_run_mode {
    SLUICE_RUN_ONCE = 1,  /* initial sync + changes present now, then return */
    SLUICE_RUN_FOLLOW = 2 /* keep following changes until the host stops */
};

#if defined(__GNUC__)
#define SLUICE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SLUICE_PRINTF(a, b)
#endif

struct sluice_host {
    uint32_t struct_size; /* sizeof(struct sluice_host) as the host built it */
    uint32_t abi_major;
    uint32_t abi_minor;

    /* ---- messages ------------------------------------------------------ */

    /* log - a line for the operator. The host prefixes profile and plugin
     * ("profile crm: sink pg: ...") and routes it to stderr/journald.
     * Never pass secrets or row data. */
    void (*log)(struct sluice_ctx *ctx, int level, const char *fmt, ...)
        SLUICE_PRINTF(3, 4);

    /* set_error - explain the non-OK status the plugin is about to return.
     * The text goes into a host-owned buffer (the last call wins); the host
     * adds context when it reports it. Never pass secrets or row data. */
    void (*set_error)(struct sluice_ctx *ctx, const char *fmt, ...)
        SLUICE_PRINTF(2, 3);

    /* counter_add - add delta to a named counter of this profile, optionally
     * per entity (entity may be NULL). Names are [a-z0-9_]+. */
    void (*counter_add)(struct sluice_ctx *ctx, const char *entity,
                        const char *name, int64_t delta);

    /* ---- schemas -------------------------------------------------------- */

    /* entity_declare - register (or re-register after a schema change) an
     * entity. desc and everything it points to is copied. Returns the host's
     * copy with id and schema_version set, valid until the instance is
     * destroyed; NULL on a malformed description (error text set). A source
     * calls it from describe() for every entity, and again from run() when
     * the columns of an entity change, before emitting events of the new
     * shape. Declaring an identical schema again returns the existing copy. */
    const struct sluice_entity *(*entity_declare)(struct sluice_ctx *ctx,
                                                  const struct sluice_entity *desc);

    /* ---- batches -------------------------------------------------------- */

    /* batch_new - an empty batch in a host arena. Freed by the host when it
     * is emitted (emit) or discarded (batch_discard). NULL on OOM. */
    struct sluice_batch *(*batch_new)(struct sluice_ctx *ctx);

    /* batch_append - append an event of entity e (a host copy from
     * entity_declare) with op; its values array has e->ncolumns entries, all
     * SLUICE_ABSENT. The caller sets version, commit_time_us, txid and values.
     * The event pointer is valid until the next batch_append on b (the events
     * array may move); values and arena memory never move. NULL on OOM. */
    struct sluice_event *(*batch_append)(struct sluice_batch *b,
                                         const struct sluice_entity *e, int op);

    /* batch_alloc - len bytes of arena memory living as long as the batch. */
    void *(*batch_alloc)(struct sluice_batch *b, size_t len);

    /* batch_copy - copy len bytes into the arena; returns the copy. */
    const char *(*batch_copy)(struct sluice_batch *b, const void *ptr, size_t len);

    /* batch_full - true once the batch reached the profile's batch size (rows
     * or bytes) or its first event is batch_linger_ms old: the source should
     * emit it. */
    bool (*batch_full)(const struct sluice_batch *b);

    /* batch_discard - drop a batch without emitting it. */
    void (*batch_discard)(struct sluice_batch *b);

    /* value_parse - parse the canonical text form of a value of column col
     * (docs/types.md: "true", "42", "2024-02-29 12:00:00.000001+00",
     * "\x00ff", uuid text, ...) into out, copying varlen data into b's arena.
     * SLUICE_OK, or SLUICE_ERR with the error text set. Does not handle NULL:
     * the caller decides what NULL looks like in its format. */
    int (*value_parse)(struct sluice_ctx *ctx, struct sluice_batch *b,
                       const struct sluice_column *col, const char *text,
                       size_t len, struct sluice_value *out);

    /* value_format - write the canonical text form of a PRESENT value into
     * buf (cap bytes, NUL-terminated when it fits). Returns the length the
     * text needs without the NUL; a return >= cap means it did not fit. */
    size_t (*value_format)(const struct sluice_column *col,
                           const struct sluice_value *v, char *buf, size_t cap);

    /* ---- the source run loop --------------------------------------------- */

    /* emit - hand a batch to the pipeline; the host takes it back (the source
     * must not touch b afterwards). Blocks while the pipeline is full
     * (backpressure). Set b->position before emitting. Returns SLUICE_OK, or
     * SLUICE_STOPPED when the host is stopping: return from run() promptly.
     * Threads the source starts during run() may emit too (parallel snapshot
     * readers): calls are serialized, and a batch's place in the stream is
     * the order its call got in. Positions must not decrease in that order;
     * a source emitting from several threads assigns positions and calls
     * emit under one lock of its own. */
    int (*emit)(struct sluice_ctx *ctx, struct sluice_batch *b);

    /* stopping - true once the host wants run() to return. */
    bool (*stopping)(struct sluice_ctx *ctx);

    /* wait - sleep up to ms milliseconds, waking early when stopping.
     * Returns SLUICE_OK, or SLUICE_STOPPED. */
    int (*wait)(struct sluice_ctx *ctx, uint32_t ms);

    /* progress - rows done of an estimate for entity e during the initial
     * sync (estimate 0 = unknown). Cheap; call it once per batch. */
    void (*progress)(struct sluice_ctx *ctx, const struct sluice_entity *e,
                     uint64_t done, uint64_t estimate);

    /* record_failed - a record the plugin could not process (a malformed
     * source line, a value that cannot be decoded) goes to the profile's
     * failed-record log instead of stopping the export. entity may be NULL
     * when unknown; record_id is the record's key as text (NULL if unknown);
     * where says where it came from ("changes/000002.jsonl:17"); reason is
     * the error text. Never pass row data. */
    void (*record_failed)(struct sluice_ctx *ctx, const struct sluice_entity *e,
                          const char *record_id, const char *where,
                          const char *reason);
};

/* True when host provides member (added in a later minor than the plugin). */
#define SLUICE_HOST_HAS(host, member)                                          \
    ((host)->struct_size >= offsetof(struct sluice_host, member) +             \
                                sizeof((host)->member))

#ifdef __cplusplus
}
#endif

#endif
