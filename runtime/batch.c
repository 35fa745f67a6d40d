/*
 * batch.c - the batch arena, host copies of entity schemas and key hashing.
 *
 * The arena hands out 16-byte aligned memory from 64 KiB chunks; an
 * allocation larger than a quarter chunk gets a chunk of its own so it does
 * not waste the rest of the current one. sl_arena_reset() keeps the chunks
 * for the next batch but frees the surplus beyond twice the last use, so one
 * 10 MiB row does not pin 10 MiB for the rest of the run.
 */
#include "batch.h"
#include "util.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The linger clock: batch_full is asked after every appended event, so it
 * reads the coarse clock (no clock source access; a few ms of resolution,
 * enough for linger_ms). */
static uint64_t linger_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#define ARENA_CHUNK (64u * 1024u)
#define ARENA_ALIGN 16u
#define ARENA_BIG (ARENA_CHUNK / 4u)
/* after a reset keep at most max(KEEP_FACTOR * last use, KEEP_MIN) bytes */
#define ARENA_KEEP_FACTOR 2u
#define ARENA_KEEP_MIN (4u * ARENA_CHUNK)

/*
 * head is the chunk being filled; head->next are chunks in use by this
 * generation (filled ones and dedicated big ones). `full` holds spare chunks
 * kept from earlier generations, reused before malloc'ing new ones.
 */
struct sl_arena_chunk {
    struct sl_arena_chunk *next;
    size_t cap;  /* bytes of data[] */
    size_t used; /* bytes handed out from data[] */
    alignas(ARENA_ALIGN) unsigned char data[];
};

static size_t align_up(size_t n)
{
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

static struct sl_arena_chunk *chunk_get(struct sl_arena *a, size_t cap)
{
    /* the smallest spare chunk big enough, else a new one */
    struct sl_arena_chunk **best = NULL;
    for (struct sl_arena_chunk **pp = &a->full; *pp; pp = &(*pp)->next) {
        if ((*pp)->cap >= cap && (!best || (*pp)->cap < (*best)->cap))
            best = pp;
    }
    if (best) {
        struct sl_arena_chunk *c = *best;
        *best = c->next;
        c->next = NULL;
        c->used = 0;
        return c;
    }
    struct sl_arena_chunk *c = malloc(sizeof *c + cap);
    if (!c)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

void *sl_arena_alloc(struct sl_arena *a, size_t len)
{
    if (len == 0)
        len = 1; /* a distinct, valid pointer */
    if (len > SIZE_MAX / 2)
        return NULL;
    size_t need = align_up(len);
    struct sl_arena_chunk *c = a->head;
    if (c && c->cap - c->used >= need) {
        void *p = c->data + c->used;
        c->used += need;
        a->used_total += need;
        return p;
    }
    if (need > ARENA_BIG) {
        /* own chunk, linked behind head so head keeps filling */
        struct sl_arena_chunk *big = chunk_get(a, need);
        if (!big)
            return NULL;
        big->used = need;
        if (c) {
            big->next = c->next;
            c->next = big;
        } else {
            a->head = big;
        }
        a->used_total += need;
        return big->data;
    }
    struct sl_arena_chunk *n = chunk_get(a, ARENA_CHUNK);
    if (!n)
        return NULL;
    n->next = c;
    a->head = n;
    n->used = need;
    a->used_total += need;
    return n->data;
}

void sl_arena_reset(struct sl_arena *a)
{
    size_t budget = a->used_total * ARENA_KEEP_FACTOR;
    if (budget < ARENA_KEEP_MIN)
        budget = ARENA_KEEP_MIN;

    /* all chunks in use and the spares, as one list; keep within budget,
     * preferring standard chunks (reused by every batch) */
    struct sl_arena_chunk *all = a->head;
    if (all) {
        struct sl_arena_chunk *t = all;
        while (t->next)
            t = t->next;
        t->next = a->full;
    } else {
        all = a->full;
    }
    a->head = NULL;
    a->full = NULL;
    a->used_total = 0;

    size_t kept = 0;
    struct sl_arena_chunk *big = NULL;
    while (all) {
        struct sl_arena_chunk *c = all;
        all = c->next;
        c->used = 0;
        if (c->cap == ARENA_CHUNK && kept + c->cap <= budget) {
            c->next = a->full;
            a->full = c;
            kept += c->cap;
        } else {
            c->next = big;
            big = c;
        }
    }
    while (big) {
        struct sl_arena_chunk *c = big;
        big = c->next;
        if (kept + c->cap <= budget) {
            c->next = a->full;
            a->full = c;
            kept += c->cap;
        } else {
            free(c);
        }
    }
}

void sl_arena_free(struct sl_arena *a)
{
    struct sl_arena_chunk *lists[2] = {a->head, a->full};
    for (int i = 0; i < 2; i++) {
        struct sl_arena_chunk *c = lists[i];
        while (c) {
            struct sl_arena_chunk *next = c->next;
            free(c);
            c = next;
        }
    }
    a->head = NULL;
    a->full = NULL;
    a->used_total = 0;
}

size_t sl_arena_reserved(const struct sl_arena *a)
{
    size_t n = 0;
    const struct sl_arena_chunk *lists[2] = {a->head, a->full};
    for (int i = 0; i < 2; i++)
        for (const struct sl_arena_chunk *c = lists[i]; c; c = c->next)
            n += c->cap;
    return n;
}

/* ---- batches ------------------------------------------------------------ */

struct sl_batch *sl_batch_new(uint32_t max_rows, uint64_t max_bytes)
{
    struct sl_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->max_rows = max_rows;
    b->max_bytes = max_bytes;
    return b;
}

void sl_batch_reset(struct sl_batch *b)
{
    sl_arena_reset(&b->arena);
    b->pub.nevents = 0;
    b->pub.partition = 0;
    b->pub.flags = 0;
    b->pub.position.len = 0;
    b->pub.seq = 0;
    b->nentities = 0;
}

void sl_batch_free(struct sl_batch *b)
{
    if (!b)
        return;
    sl_arena_free(&b->arena);
    free(b->pub.events);
    free(b->entities);
    free(b);
}

struct sluice_event *sl_batch_append(struct sl_batch *b, const struct sluice_entity *e, int op)
{
    if (b->pub.nevents == b->cap_events) {
        size_t cap = b->cap_events ? b->cap_events * 2 : 64;
        struct sluice_event *ev = realloc(b->pub.events, cap * sizeof *ev);
        if (!ev)
            return NULL;
        b->pub.events = ev;
        b->cap_events = cap;
    }
    size_t n = e->ncolumns ? e->ncolumns : 1;
    struct sluice_value *vals = sl_arena_alloc(&b->arena, n * sizeof *vals);
    if (!vals)
        return NULL;
    memset(vals, 0, n * sizeof *vals); /* SLUICE_ABSENT */
    if (b->pub.nevents == 0 && b->linger_ms)
        b->first_event_us = linger_now_us();
    struct sluice_event *ev = &b->pub.events[b->pub.nevents++];
    memset(ev, 0, sizeof *ev);
    ev->entity = e;
    ev->op = (uint8_t)op;
    ev->values = vals;
    return ev;
}

void sl_batch_push_view(struct sl_batch *b, const struct sluice_event *ev)
{
    if (b->pub.nevents == b->cap_events) {
        size_t cap = b->cap_events ? b->cap_events * 2 : 64;
        b->pub.events = sl_xrealloc(b->pub.events, cap * sizeof *b->pub.events);
        b->cap_events = cap;
    }
    b->pub.events[b->pub.nevents++] = *ev;
    for (size_t i = b->nentities; i-- > 0;)
        if (b->entities[i] == ev->entity)
            return;
    if (b->nentities == b->cap_entities) {
        size_t cap = b->cap_entities ? b->cap_entities * 2 : 8;
        b->entities = sl_xrealloc(b->entities, cap * sizeof *b->entities);
        b->cap_entities = cap;
    }
    b->entities[b->nentities++] = ev->entity;
}

void *sl_batch_alloc(struct sl_batch *b, size_t len)
{
    return sl_arena_alloc(&b->arena, len);
}

const char *sl_batch_copy(struct sl_batch *b, const void *p, size_t len)
{
    char *dst = sl_arena_alloc(&b->arena, len);
    if (dst && len)
        memcpy(dst, p, len);
    return dst;
}

bool sl_batch_full(const struct sl_batch *b)
{
    if (b->max_rows && b->pub.nevents >= b->max_rows)
        return true;
    if (b->max_bytes && b->arena.used_total >= b->max_bytes)
        return true;
    /* batching by time: a trickle of changes is sent within linger_ms */
    if (b->linger_ms && b->pub.nevents > 0 &&
        linger_now_us() - b->first_event_us >= (uint64_t)b->linger_ms * 1000u)
        return true;
    return false;
}

size_t sl_batch_bytes(const struct sl_batch *b)
{
    return b->arena.used_total;
}

/* ---- entity schemas ----------------------------------------------------- */

static char *arena_strdup(struct sl_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *d = sl_arena_alloc(a, n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

struct sluice_entity *sl_entity_clone(struct sl_arena *a, const struct sluice_entity *desc)
{
    struct sluice_entity *e = sl_arena_alloc(a, sizeof *e);
    struct sluice_column *cols = NULL;
    uint32_t *keys = NULL;
    if (!e)
        return NULL;
    *e = *desc;
    e->ns = arena_strdup(a, desc->ns ? desc->ns : "");
    e->name = arena_strdup(a, desc->name ? desc->name : "");
    if (!e->ns || !e->name)
        return NULL;
    if (desc->ncolumns) {
        cols = sl_arena_alloc(a, desc->ncolumns * sizeof *cols);
        if (!cols)
            return NULL;
        for (uint32_t i = 0; i < desc->ncolumns; i++) {
            cols[i] = desc->columns[i];
            cols[i].name = arena_strdup(a, desc->columns[i].name ? desc->columns[i].name : "");
            if (!cols[i].name)
                return NULL;
        }
    }
    e->columns = cols;
    if (desc->nkeys) {
        keys = sl_arena_alloc(a, desc->nkeys * sizeof *keys);
        if (!keys)
            return NULL;
        memcpy(keys, desc->key_columns, desc->nkeys * sizeof *keys);
    }
    e->key_columns = keys;
    return e;
}

int sl_entity_validate(const struct sluice_entity *desc, char *err, size_t errlen)
{
    if (!desc->name || !desc->name[0]) {
        snprintf(err, errlen, "the entity has no name; give every entity a non-empty name");
        return -1;
    }
    if (desc->ncolumns == 0 || !desc->columns) {
        snprintf(err, errlen, "the entity has no columns; declare at least one column");
        return -1;
    }
    if (desc->nkeys && !desc->key_columns) {
        snprintf(err, errlen, "nkeys is %u but key_columns is NULL", desc->nkeys);
        return -1;
    }
    for (uint32_t i = 0; i < desc->ncolumns; i++) {
        const struct sluice_column *c = &desc->columns[i];
        if (!c->name || !c->name[0]) {
            snprintf(err, errlen, "column %u has no name", i + 1);
            return -1;
        }
        if (c->type < 1 || c->type > SLUICE_T_MAX) {
            snprintf(err, errlen, "column \"%s\" has unknown type %u (known: 1..%d)", c->name,
                     c->type, SLUICE_T_MAX);
            return -1;
        }
        if (c->type == SLUICE_T_DECIMAL &&
            (c->precision < 0 || c->precision > 1000 || c->scale < 0 ||
             (c->precision > 0 && c->scale > c->precision) ||
             (c->precision == 0 && c->scale != 0))) {
            snprintf(err, errlen,
                     "column \"%s\": decimal(%d,%d) is not valid; precision must be 0..1000 "
                     "(0 = unconstrained) and scale 0..precision",
                     c->name, c->precision, c->scale);
            return -1;
        }
        if (c->max_length < 0) {
            snprintf(err, errlen, "column \"%s\": max_length %d is negative", c->name,
                     c->max_length);
            return -1;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(desc->columns[j].name, c->name) == 0) {
                snprintf(err, errlen, "column \"%s\" is declared twice (columns %u and %u)",
                         c->name, j + 1, i + 1);
                return -1;
            }
        }
    }
    for (uint32_t k = 0; k < desc->nkeys; k++) {
        uint32_t idx = desc->key_columns[k];
        if (idx >= desc->ncolumns) {
            snprintf(err, errlen, "key column index %u is out of range (the entity has %u columns)",
                     idx, desc->ncolumns);
            return -1;
        }
        for (uint32_t j = 0; j < k; j++) {
            if (desc->key_columns[j] == idx) {
                snprintf(err, errlen, "column \"%s\" is listed twice in the key",
                         desc->columns[idx].name);
                return -1;
            }
        }
        if (desc->columns[idx].flags & SLUICE_COL_NULLABLE) {
            snprintf(err, errlen, "key column \"%s\" is nullable; key columns must be NOT NULL",
                     desc->columns[idx].name);
            return -1;
        }
    }
    return 0;
}

/* FNV-1a, 64 bit: small, good enough to tell schemas and keys apart */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return fnv(h, b, 8);
}

/* strings with their terminating NUL, so ("ab","c") differs from ("a","bc") */
static uint64_t fnv_str(uint64_t h, const char *s)
{
    s = s ? s : "";
    return fnv(h, s, strlen(s) + 1);
}

uint64_t sl_entity_fingerprint(const struct sluice_entity *e)
{
    uint64_t h = FNV_OFFSET;
    h = fnv_str(h, e->ns);
    h = fnv_str(h, e->name);
    h = fnv_u64(h, e->ncolumns);
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        const struct sluice_column *c = &e->columns[i];
        h = fnv_str(h, c->name);
        h = fnv_u64(h, c->type);
        h = fnv_u64(h, c->flags);
        h = fnv_u64(h, (uint64_t)(uint32_t)c->precision);
        h = fnv_u64(h, (uint64_t)(uint32_t)c->scale);
    }
    h = fnv_u64(h, e->nkeys);
    for (uint32_t k = 0; k < e->nkeys; k++)
        h = fnv_u64(h, e->key_columns[k]);
    return h;
}

uint64_t sl_event_key_hash(const struct sluice_event *ev)
{
    const struct sluice_entity *e = ev->entity;
    uint64_t h = FNV_OFFSET;
    h = fnv_str(h, e->ns);
    h = fnv_str(h, e->name);
    for (uint32_t k = 0; k < e->nkeys; k++) {
        uint32_t idx = e->key_columns[k];
        const struct sluice_value *v = &ev->values[idx];
        if (v->state != SLUICE_PRESENT) {
            h = fnv_u64(h, v->state);
            continue;
        }
        int type = e->columns[idx].type;
        if (sluice_type_is_varlen(type)) {
            h = fnv_u64(h, v->len);
            h = fnv(h, v->u.ptr, v->len);
        } else if (type == SLUICE_T_FLOAT32 || type == SLUICE_T_FLOAT64) {
            double d = v->u.f64 == 0.0 ? 0.0 : v->u.f64; /* -0 == 0 */
            uint64_t bits;
            memcpy(&bits, &d, sizeof bits);
            h = fnv_u64(h, bits);
        } else {
            h = fnv_u64(h, (uint64_t)v->u.i64);
        }
    }
    return h;
}
