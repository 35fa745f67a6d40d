/*
 * batch.h - host-side batches: the arena behind struct sluice_batch, the
 * host's copies of entity schemas, and key hashing for partitioning.
 *
 * A struct sl_batch embeds the public struct sluice_batch as its first
 * member, so the host converts between them with sl_batch_of(). All memory a
 * batch holds (events, values, varlen bytes, decoded schemas) lives in its
 * arena, which sl_batch_reset() rewinds without freeing: a pipeline reuses a
 * few batches for a whole run and allocates nothing per value.
 */
#ifndef SL_BATCH_H
#define SL_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/types.h>

struct sl_arena_chunk;

struct sl_arena {
    struct sl_arena_chunk *head; /* current chunk */
    struct sl_arena_chunk *full; /* chunks filled earlier, reused after reset */
    size_t used_total;           /* bytes handed out since the last reset */
};

void *sl_arena_alloc(struct sl_arena *a, size_t len); /* 16-byte aligned; NULL on OOM */
void sl_arena_reset(struct sl_arena *a);              /* keep memory, forget contents */
void sl_arena_free(struct sl_arena *a);
/* bytes of chunk memory the arena holds, in use or kept for reuse */
size_t sl_arena_reserved(const struct sl_arena *a);

struct sl_batch {
    struct sluice_batch pub; /* must stay first */
    struct sl_arena arena;
    size_t cap_events;       /* capacity of pub.events (malloc'd, not arena) */
    uint32_t max_rows;       /* batch_full() thresholds */
    uint64_t max_bytes;
    uint32_t linger_ms;      /* full once the first event is this old (0: never) */
    uint64_t first_event_us; /* CLOCK_MONOTONIC_COARSE time of the first append since reset */
    void *owner;             /* struct sluice_ctx * of whoever asked for it */
    /* decoded batches: the entity schemas the wire message carried */
    const struct sluice_entity **entities;
    size_t nentities;
    size_t cap_entities;
};

static inline struct sl_batch *sl_batch_of(struct sluice_batch *b)
{
    return (struct sl_batch *)b;
}

struct sl_batch *sl_batch_new(uint32_t max_rows, uint64_t max_bytes);
void sl_batch_reset(struct sl_batch *b);
void sl_batch_free(struct sl_batch *b);
struct sluice_event *sl_batch_append(struct sl_batch *b, const struct sluice_entity *e, int op);
/* Append a copy of the event struct ev (values and bytes stay where they are:
 * a view of another batch) and note its entity in b->entities. Aborts on OOM. */
void sl_batch_push_view(struct sl_batch *b, const struct sluice_event *ev);
void *sl_batch_alloc(struct sl_batch *b, size_t len);
const char *sl_batch_copy(struct sl_batch *b, const void *p, size_t len);
bool sl_batch_full(const struct sl_batch *b);
/* bytes the batch holds (arena use), for batch_bytes and metrics */
size_t sl_batch_bytes(const struct sl_batch *b);

/*
 * Entity schemas. sl_entity_clone copies desc (names, columns, keys) into
 * arena a. sl_entity_validate checks a description (names non-empty, known
 * types, key indexes in range, no duplicate column names) and returns 0 or -1
 * with a message in err. sl_entity_fingerprint hashes namespace, name and
 * every column (name, type, flags, precision, scale) and the keys: equal
 * fingerprints mean a sink needs no new prepare().
 */
struct sluice_entity *sl_entity_clone(struct sl_arena *a, const struct sluice_entity *desc);
int sl_entity_validate(const struct sluice_entity *desc, char *err, size_t errlen);
uint64_t sl_entity_fingerprint(const struct sluice_entity *e);

/* Hash of an event's entity identity and key values (type-aware), used to
 * pick the apply partition so every change of one record goes to the same
 * worker, in order. */
uint64_t sl_event_key_hash(const struct sluice_event *ev);

#endif
