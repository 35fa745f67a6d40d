/*
 * sluice/types.h - the data model: logical types, values, entity schemas,
 * change events and batches.
 *
 * These structs are plain data with a documented layout: sinks read them
 * directly (no call per value on the hot path). Sources never allocate them
 * themselves; they obtain them from the host (sluice_host.batch_new,
 * batch_append, batch_alloc) so that every byte of a batch lives in one
 * host-owned arena that is reset, not freed per record.
 */
#ifndef SLUICE_TYPES_H
#define SLUICE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sluice/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Logical types (DESIGN.md section 4) and how a present value is held in
 * struct sluice_value:
 *
 *  BOOL         u.i64: 0 or 1
 *  INT16/32/64  u.i64
 *  FLOAT32/64   u.f64 (float32 is widened exactly; NaN and +-inf allowed)
 *  DECIMAL      u.ptr/len: canonical decimal text, exact, never a double:
 *               [-]digits[.digits], or "NaN", "Infinity", "-Infinity".
 *               Column precision/scale say p,s (precision 0 = unconstrained).
 *  TEXT         u.ptr/len: UTF-8, may be empty, no NUL bytes
 *  BYTES        u.ptr/len: any bytes, NUL included
 *  DATE         u.i64: days since 1970-01-01 (proleptic Gregorian)
 *  TIME         u.i64: microseconds since midnight, 0..86400000000
 *  TIMESTAMP    u.i64: microseconds since 1970-01-01 00:00:00, no zone
 *  TIMESTAMPTZ  u.i64: microseconds since 1970-01-01 00:00:00 UTC
 *  UUID         u.ptr/len: exactly 16 bytes, network order
 *  JSON         u.ptr/len: JSON text, UTF-8
 *
 * DATE, TIMESTAMP and TIMESTAMPTZ use SLUICE_INFINITY / SLUICE_NEG_INFINITY
 * for +-infinity (a sink whose target has no infinity documents what it does).
 */
enum sluice_type {
    SLUICE_T_BOOL = 1,
    SLUICE_T_INT16 = 2,
    SLUICE_T_INT32 = 3,
    SLUICE_T_INT64 = 4,
    SLUICE_T_FLOAT32 = 5,
    SLUICE_T_FLOAT64 = 6,
    SLUICE_T_DECIMAL = 7,
    SLUICE_T_TEXT = 8,
    SLUICE_T_BYTES = 9,
    SLUICE_T_DATE = 10,
    SLUICE_T_TIME = 11,
    SLUICE_T_TIMESTAMP = 12,
    SLUICE_T_TIMESTAMPTZ = 13,
    SLUICE_T_UUID = 14,
    SLUICE_T_JSON = 15
};
#define SLUICE_T_MAX 15

#define SLUICE_INFINITY INT64_MAX
#define SLUICE_NEG_INFINITY INT64_MIN

/* Name of a logical type as used in schema files and docs ("int64"), or NULL. */
static inline const char *sluice_type_name(int type)
{
    static const char *const names[] = {
        NULL,   "bool",  "int16", "int32",     "int64",       "float32",
        "float64", "decimal", "text", "bytes", "date",        "time",
        "timestamp", "timestamptz", "uuid", "json"};
    return (type >= 1 && type <= SLUICE_T_MAX) ? names[type] : NULL;
}

/* Type carried in u.ptr/len rather than u.i64/u.f64. */
static inline bool sluice_type_is_varlen(int type)
{
    return type == SLUICE_T_DECIMAL || type == SLUICE_T_TEXT ||
           type == SLUICE_T_BYTES || type == SLUICE_T_UUID ||
           type == SLUICE_T_JSON;
}

/*
 * The state of one column in one event.
 *
 *  ABSENT   no value travels: in a DELETE every non-key column; in an UPDATE
 *           a column whose value did not change and was not sent (PostgreSQL's
 *           unchanged TOAST). A sink keeps the target's current value.
 *  NULL     SQL NULL (distinct from an empty string)
 *  PRESENT  a value, held as described for its logical type
 */
enum sluice_value_state {
    SLUICE_ABSENT = 0,
    SLUICE_NULL = 1,
    SLUICE_PRESENT = 2
};

struct sluice_value {
    uint8_t state; /* enum sluice_value_state */
    uint8_t reserved[3];
    uint32_t len; /* varlen types: byte length of u.ptr */
    union {
        int64_t i64;
        double f64;
        const char *ptr; /* batch-arena memory, never NUL-terminated by contract */
    } u;
};

/* Column flags. */
#define SLUICE_COL_NULLABLE 0x1u
#define SLUICE_COL_KEY 0x2u

struct sluice_column {
    const char *name;
    uint16_t type;      /* enum sluice_type */
    uint16_t flags;     /* SLUICE_COL_* */
    int32_t precision;  /* DECIMAL: total digits, 0 = unconstrained */
    int32_t scale;      /* DECIMAL: digits after the point */
    int32_t max_length; /* TEXT/BYTES: advisory maximum, 0 = unlimited */
};

/*
 * The schema of one entity (a source table). Owned by the host: a source
 * builds a description (any memory it likes) and passes it to
 * sluice_host.entity_declare(), which copies it and returns the host's copy.
 * The host's copy stays valid until the plugin instance is destroyed.
 *
 * key_columns lists the indexes of the key columns in key order. Every entity
 * that receives updates or deletes must have a key (nkeys >= 1).
 */
struct sluice_entity {
    const char *ns;   /* namespace: source schema, folder, database ("" if none) */
    const char *name; /* entity name, e.g. "accounts" */
    uint32_t ncolumns;
    const struct sluice_column *columns;
    uint32_t nkeys;
    const uint32_t *key_columns;
    uint32_t id;             /* host-assigned, stable within a profile run */
    uint32_t schema_version; /* host-assigned: grows when the columns change */
};

enum sluice_op {
    SLUICE_OP_READ = 1,     /* a row of the initial sync (snapshot) */
    SLUICE_OP_INSERT = 2,
    SLUICE_OP_UPDATE = 3,
    SLUICE_OP_DELETE = 4,   /* only key columns are PRESENT */
    SLUICE_OP_TRUNCATE = 5  /* no values; removes every row of the entity */
};

static inline const char *sluice_op_name(int op)
{
    switch (op) {
    case SLUICE_OP_READ: return "read";
    case SLUICE_OP_INSERT: return "insert";
    case SLUICE_OP_UPDATE: return "update";
    case SLUICE_OP_DELETE: return "delete";
    case SLUICE_OP_TRUNCATE: return "truncate";
    default: return NULL;
    }
}

/*
 * One change event.
 *
 * version orders the changes of ONE record: a target keeps, per record, the
 * version it last applied and never lets a smaller or equal version overwrite
 * it (so a replayed batch changes nothing and an out-of-date change is
 * ignored). Sources guarantee versions grow per key (a file's version column,
 * a WAL LSN).
 */
struct sluice_event {
    const struct sluice_entity *entity;
    uint8_t op; /* enum sluice_op */
    uint8_t reserved[7];
    uint64_t version;
    int64_t commit_time_us; /* source commit time, us since epoch UTC; 0 unknown */
    uint64_t txid;          /* source transaction id, 0 if none */
    struct sluice_value *values; /* entity->ncolumns values */
};

/* Batch flags. */
#define SLUICE_BATCH_SNAPSHOT 0x1u /* every event is OP_READ */

/*
 * A batch: what a source emits, what travels on the transport (encoded, see
 * docs/wire-format.md) and what a sink applies in one transaction.
 *
 * position is the source position reached after the last event; a sink
 * stores it, as the checkpoint of `partition`, in the same transaction as the
 * events. position.len == 0: apply without touching the checkpoint.
 *
 * A batch may hold events of several entities; events of one record are in
 * source order. Batches are borrowed: valid only for the duration of the call
 * they are passed to.
 */
struct sluice_batch {
    size_t nevents;
    struct sluice_event *events;
    uint32_t partition;
    uint32_t flags; /* SLUICE_BATCH_* */
    struct sluice_position position;
    uint64_t seq; /* host-assigned sequence number within a run */
};

/* ---- value setters: inline, they only touch the public layout ---------- */

static inline void sluice_value_set_null(struct sluice_value *v)
{
    v->state = SLUICE_NULL;
    v->len = 0;
    v->u.i64 = 0;
}

static inline void sluice_value_set_int(struct sluice_value *v, int64_t x)
{
    v->state = SLUICE_PRESENT;
    v->len = 0;
    v->u.i64 = x;
}

static inline void sluice_value_set_float(struct sluice_value *v, double x)
{
    v->state = SLUICE_PRESENT;
    v->len = 0;
    v->u.f64 = x;
}

/* ptr must already live in the batch arena (see sluice_host.batch_copy). */
static inline void sluice_value_set_ref(struct sluice_value *v, const void *ptr,
                                        uint32_t len)
{
    v->state = SLUICE_PRESENT;
    v->len = len;
    v->u.ptr = (const char *)ptr;
}

#ifdef __cplusplus
}
#endif

#endif
