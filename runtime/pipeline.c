#include "pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sluice/sluice.h>

#include "batch.h"
#include "instance.h"
#include "log.h"
#include "metrics.h"
#include "progress.h"
#include "util.h"
#include "value_text.h"
#include "wire.h"

#define CONSUME_TIMEOUT_MS 25 /* also how long stopping waits for an idle worker */
#define BACKOFF_CAP_MS (300u * 1000u)
#define PROGRESS_LOG_US (10u * 1000000u)
#define TALLY_SLOTS 16

struct pos_entry {
    uint64_t seq;
    struct sluice_position pos;
};

/* Counters of one entity gathered over a batch, written to the state store
 * once per batch rather than once per event. */
struct tally {
    const struct sluice_entity *entity;
    int64_t inserts, updates, deletes, applied, rows_read, failed;
};

/*
 * In-process transport (SLUICE_TRANSPORT_IN_PROCESS): one emitted batch is
 * shared by every partition. Each partition's message is a struct local_msg
 * naming it; a worker applies a view of its own events (the event structs
 * copied, values and bytes still the batch's) and releases it once the
 * message is applied or parked. The last release frees the batch; whatever
 * is left when the pipeline ends (a failed run) is freed at teardown.
 */
struct local_batch {
    struct sl_batch *b;
    uint32_t *event_part;
    uint32_t refs; /* partitions not done with it, under pl->local_lock */
    struct local_batch *prev, *next;
};

#define LOCAL_MAGIC "SLLOCAL1"
struct local_msg {
    char magic[8];
    struct local_batch *lb;
};

struct worker {
    struct sl_pipeline *pl;
    uint32_t part;
    struct sl_instance sink;
    bool sink_inited;
    pthread_t thread;
    bool thread_started;
    struct sl_batch *batch; /* decode target, reused for every message */
    unsigned rand_seed;     /* backoff jitter */
    struct sl_buf text;     /* record ids */
    char error[2048];       /* the sink's text for the last refused apply */
    struct tally tally[TALLY_SLOTS];
    size_t ntally;
    struct sl_lag_hist lag; /* source commit -> applied, flushed with the tally */
    /* spill store: the message being handled, its blob (claim check or
     * parked batch; "" none) and the ids of a parked batch's records */
    struct sluice_message *cur_msg;
    bool msg_acked; /* acked early because the batch is parked */
    char blob_id[SLUICE_SPILL_ID_MAX];
    struct sl_buf parked_ids; /* entity\0record id\0op\0 ... */
    struct sluice_position parked_pos;
    struct local_batch *local; /* the shared batch w->batch is a view of, or NULL */
    struct sl_buf park_msg;    /* a local batch encoded for the spill store */
};

struct sl_pipeline {
    const struct sl_config *cfg;
    const struct sl_profile *profile;
    struct sl_pipeline_opts opts;
    char *plugin_state_dir;
    uint32_t nparts;
    /* each partition's own checkpoint at start; skip_own: the partition
     * layout is the one that wrote them, so a message at or below its
     * partition's checkpoint was applied there already */
    struct sluice_position *own_cp;
    bool skip_own;

    struct sl_plugin loaded[3]; /* source, transport, sink (when loaded by name) */
    bool is_loaded[3];
    const struct sl_plugin *src_plugin, *tr_plugin, *sink_plugin;
    struct sl_instance source, transport;
    bool source_inited, transport_inited;
    struct worker *workers;

    pthread_mutex_t lock;
    pthread_cond_t cond; /* any change below, or a stop request */
    atomic_bool stop_source, stop_workers, aborted, failed, finished;
    char error[1024];

    /* source thread only */
    pthread_t source_thread;
    bool source_thread_started;
    uint64_t next_seq;
    uint32_t *event_part;
    size_t cap_event_part;
    struct sl_buf msg;
    size_t max_message;
    bool local; /* the transport is in-process: messages are struct local_msg */
    pthread_mutex_t local_lock;
    struct local_batch *locals; /* shared batches not yet freed */
    uint64_t last_progress_log_us;

    /* under lock */
    bool source_finished, source_completed;
    uint64_t published_seq;
    uint64_t *applied; /* per partition: seq of the last applied message */
    struct pos_entry *ring; /* published, not yet applied everywhere; FIFO */
    size_t ring_head, ring_count, ring_cap;
    struct sluice_position resume;  /* where the source started */
    struct sluice_position durable; /* largest position acked to the source */

    pthread_mutex_t prepare_lock;
    uint64_t *prepared; /* entity fingerprints the sink has prepared */
    size_t nprepared, cap_prepared;

    uint64_t started_us, ended_us;
    atomic_size_t queue_depth; /* transport messages waiting, all partitions (metrics) */

    /* spill store (claim check, parked batches); optional */
    struct sl_plugin spill_loaded;
    bool spill_is_loaded, spill_inited;
    struct sl_instance spill;
    pthread_mutex_t spill_lock; /* one call at a time: the error buffer is shared */
    pthread_mutex_t emit_lock;  /* emit is thread-safe (host.h): one batch at a time */
    struct sl_buf ref_msg;      /* source thread: an encoded claim-check reference */
};

/* ---- failing and stopping ---------------------------------------------- */

static void wake_all(struct sl_pipeline *pl)
{
    pthread_mutex_lock(&pl->lock);
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->lock);
}

/* Record the first reason the profile fails and stop everything. msg is
 * complete (carries the profile). */
static void fail_msg(struct sl_pipeline *pl, const char *msg)
{
    pthread_mutex_lock(&pl->lock);
    bool first = !atomic_load(&pl->failed);
    if (first)
        snprintf(pl->error, sizeof pl->error, "%s", msg);
    atomic_store(&pl->failed, true);
    atomic_store(&pl->stop_source, true);
    atomic_store(&pl->stop_workers, true);
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->lock);
    if (first)
        sl_error("%s", msg);
}

static void fail(struct sl_pipeline *pl, const char *fmt, ...) SLUICE_PRINTF(2, 3);
static void fail(struct sl_pipeline *pl, const char *fmt, ...)
{
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "profile \"%s\": ", pl->profile->name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    fail_msg(pl, msg);
}

/* Fail with an instance's error text: `profile "crm": sink pg: apply: ...`. */
static void fail_instance(struct sl_pipeline *pl, struct sl_instance *in, const char *what)
{
    struct sl_err err;
    sl_instance_error(in, what, &err);
    fail_msg(pl, err.msg);
}

static bool source_stopping(struct sl_pipeline *pl)
{
    return atomic_load(&pl->stop_source) || atomic_load(&pl->failed) ||
           atomic_load(&pl->aborted);
}

static bool apply_interrupted(struct sl_pipeline *pl)
{
    return atomic_load(&pl->failed) || atomic_load(&pl->aborted);
}

/* Sleep up to ms on the pipeline's condvar; returns early when stop() says so. */
static void timed_wait(struct sl_pipeline *pl, uint64_t ms, bool (*done)(struct sl_pipeline *))
{
    uint64_t deadline = sl_now_mono_us() + ms * 1000u;
    pthread_mutex_lock(&pl->lock);
    while (!done(pl)) {
        uint64_t now = sl_now_mono_us();
        if (now >= deadline)
            break;
        struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000u),
                              .tv_nsec = (long)(deadline % 1000000u) * 1000};
        pthread_cond_timedwait(&pl->cond, &pl->lock, &ts);
    }
    pthread_mutex_unlock(&pl->lock);
}

/* Backoff before retry `attempt` (1-based): retry_interval doubling per
 * attempt, capped, with +-20% jitter so workers do not retry in lockstep. */
static uint64_t backoff_ms(const struct sl_profile *p, unsigned attempt, unsigned *seed)
{
    uint64_t ms = (uint64_t)p->retry_interval_s * 1000u;
    for (unsigned i = 1; i < attempt && ms < BACKOFF_CAP_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_CAP_MS)
        ms = BACKOFF_CAP_MS > (uint64_t)p->retry_interval_s * 1000u
                 ? BACKOFF_CAP_MS
                 : (uint64_t)p->retry_interval_s * 1000u;
    double jitter = 0.8 + 0.4 * ((double)rand_r(seed) / (double)RAND_MAX);
    return (uint64_t)((double)ms * jitter);
}

static void count(struct sl_pipeline *pl, const char *entity, const char *name, int64_t d)
{
    if (d)
        sl_state_counter_add(pl->opts.state, pl->profile->name, entity, name, d);
}

/* ---- host hooks --------------------------------------------------------- */

static bool hook_source_stopping(void *arg)
{
    return source_stopping(arg);
}

static bool hook_apply_stopping(void *arg)
{
    return apply_interrupted(arg);
}

static int hook_source_wait(void *arg, uint32_t ms)
{
    struct sl_pipeline *pl = arg;
    timed_wait(pl, ms, source_stopping);
    return source_stopping(pl) ? SLUICE_STOPPED : SLUICE_OK;
}

static int hook_apply_wait(void *arg, uint32_t ms)
{
    struct sl_pipeline *pl = arg;
    timed_wait(pl, ms, apply_interrupted);
    return apply_interrupted(pl) ? SLUICE_STOPPED : SLUICE_OK;
}

static void hook_counter_add(void *arg, const char *entity, const char *name, int64_t delta)
{
    count(arg, entity, name, delta);
}

static void hook_progress(void *arg, const struct sluice_entity *e, uint64_t done,
                          uint64_t estimate)
{
    struct sl_pipeline *pl = arg;
    uint64_t now = sl_now_mono_us();
    sl_progress_update(pl->profile->name, e->name, done, estimate);
    if (sl_progress_terminal())
        return; /* drawn in place by the run loop instead */
    if (now - pl->last_progress_log_us < PROGRESS_LOG_US)
        return;
    pl->last_progress_log_us = now;
    if (estimate)
        sl_info("profile \"%s\": initial sync of %s: %llu of about %llu rows (%.0f%%)",
                pl->profile->name, e->name, (unsigned long long)done,
                (unsigned long long)estimate, 100.0 * (double)done / (double)estimate);
    else
        sl_info("profile \"%s\": initial sync of %s: %llu rows", pl->profile->name, e->name,
                (unsigned long long)done);
}

static void hook_record_failed(void *arg, const struct sluice_entity *e, const char *record_id,
                               const char *where, const char *reason)
{
    struct sl_pipeline *pl = arg;
    char error[2048];
    snprintf(error, sizeof error, "%s%s%s", where ? where : "", where ? ": " : "",
             reason ? reason : "unknown reason");
    struct sl_failed_record r = {.profile = pl->profile->name,
                                 .entity = e ? e->name : NULL,
                                 .record_id = record_id,
                                 .op = NULL,
                                 .position = NULL,
                                 .sync_time_us = sl_now_wall_us(),
                                 .error = error};
    sl_state_failed_add(pl->opts.state, &r);
    count(pl, e ? e->name : NULL, "failed", 1);
    sl_warn("profile \"%s\": %s%s%s: record %s could not be read and is in the failed-record "
            "log: %s",
            pl->profile->name, e ? "entity " : "", e ? e->name : "", e ? "" : "source",
            record_id ? record_id : "(unknown id)", error);
}

static void hook_entity_declared(void *arg, const struct sluice_entity *e)
{
    struct sl_pipeline *pl = arg;
    sl_debug("profile \"%s\": entity %s%s%s declared, schema version %u, %u columns",
             pl->profile->name, e->ns, *e->ns ? "." : "", e->name, e->schema_version,
             e->ncolumns);
}

static int hook_emit(void *arg, struct sl_batch *b);
static void advance_durable_locked(struct sl_pipeline *pl);

/* ---- the source side ---------------------------------------------------- */

static int ring_push(struct sl_pipeline *pl, uint64_t seq, const struct sluice_position *pos)
{
    if (pl->ring_count == pl->ring_cap) {
        size_t cap = pl->ring_cap ? pl->ring_cap * 2 : 16;
        struct pos_entry *r = sl_xcalloc(cap, sizeof *r);
        for (size_t i = 0; i < pl->ring_count; i++)
            r[i] = pl->ring[(pl->ring_head + i) % pl->ring_cap];
        free(pl->ring);
        pl->ring = r;
        pl->ring_cap = cap;
        pl->ring_head = 0;
    }
    pl->ring[(pl->ring_head + pl->ring_count) % pl->ring_cap] =
        (struct pos_entry){.seq = seq, .pos = *pos};
    pl->ring_count++;
    return 0;
}

/*
 * Put one encoded message on the transport. A message larger than the
 * transport's limit (or the profile's spill_threshold) goes to the spill
 * store first and only its reference travels (claim_check).
 */
static bool needs_claim_check(const struct sl_pipeline *pl, size_t len);
static int claim_check(struct sl_pipeline *pl, uint32_t part, const struct sl_batch *b);

static int publish_bytes(struct sl_pipeline *pl, uint32_t part, const struct sl_batch *b,
                         const void *data, size_t len)
{
    const struct sluice_transport_ops *ops = sl_transport_ops(&pl->transport);
    unsigned seed = (unsigned)b->pub.seq;
    for (unsigned attempt = 1;; attempt++) {
        int st = ops->publish(pl->transport.inst, part, data, len);
        if (st == SLUICE_OK || st == SLUICE_STOPPED)
            return st;
        if (st != SLUICE_RETRY || attempt > (unsigned)pl->profile->retry_count) {
            fail_instance(pl, &pl->transport, "publish");
            return SLUICE_ERR;
        }
        struct sl_err err;
        sl_instance_error(&pl->transport, "publish", &err);
        uint64_t ms = backoff_ms(pl->profile, attempt, &seed);
        sl_warn("%s; retry %u of %d in %.1f s", err.msg, attempt, pl->profile->retry_count,
                (double)ms / 1000.0);
        count(pl, NULL, "retries", 1);
        timed_wait(pl, ms, source_stopping);
        if (source_stopping(pl))
            return SLUICE_STOPPED;
    }
}

static int publish_message(struct sl_pipeline *pl, uint32_t part, const struct sl_batch *b)
{
    if (needs_claim_check(pl, pl->msg.len)) {
        int cst = claim_check(pl, part, b);
        if (cst != SLUICE_OK)
            return cst;
    }
    return publish_bytes(pl, part, b, pl->msg.data, pl->msg.len);
}

static void local_free(struct local_batch *lb)
{
    sl_batch_free(lb->b);
    free(lb->event_part);
    free(lb);
}

/* Drop n references to lb; the last frees it. */
static void local_release(struct sl_pipeline *pl, struct local_batch *lb, uint32_t n)
{
    pthread_mutex_lock(&pl->local_lock);
    lb->refs -= n;
    bool last = lb->refs == 0;
    if (last) {
        if (lb->prev)
            lb->prev->next = lb->next;
        else
            pl->locals = lb->next;
        if (lb->next)
            lb->next->prev = lb->prev;
    }
    pthread_mutex_unlock(&pl->local_lock);
    if (last)
        local_free(lb);
}

/* The worker is done with the shared batch its w->batch is a view of. */
static void release_view(struct worker *w)
{
    if (!w->local)
        return;
    sl_batch_reset(w->batch); /* the view points into it */
    local_release(w->pl, w->local, 1);
    w->local = NULL;
}

/* Source thread, in-process transport: every partition gets a reference to
 * b (which the pipeline keeps from now on). SLUICE_OK or the publish error. */
static int publish_local(struct sl_pipeline *pl, struct sl_batch *b)
{
    struct local_batch *lb = sl_xcalloc(1, sizeof *lb);
    size_t n = b->pub.nevents;
    lb->b = b;
    lb->event_part = sl_xmalloc((n ? n : 1) * sizeof *lb->event_part);
    memcpy(lb->event_part, pl->event_part, n * sizeof *lb->event_part);
    lb->refs = pl->nparts;
    pthread_mutex_lock(&pl->local_lock);
    lb->next = pl->locals;
    if (pl->locals)
        pl->locals->prev = lb;
    pl->locals = lb;
    pthread_mutex_unlock(&pl->local_lock);
    struct local_msg m;
    memset(&m, 0, sizeof m);
    memcpy(m.magic, LOCAL_MAGIC, sizeof m.magic);
    m.lb = lb;
    for (uint32_t p = 0; p < pl->nparts; p++) {
        int rc = publish_bytes(pl, p, b, &m, sizeof m);
        if (rc != SLUICE_OK) {
            local_release(pl, lb, pl->nparts - p); /* the partitions never told */
            return rc;
        }
    }
    return SLUICE_OK;
}

/* Source thread, encoding transport: each partition gets its events encoded
 * (sl_wire_encode), through the claim check when too large. */
static int publish_encoded(struct sl_pipeline *pl, const struct sl_batch *b)
{
    for (uint32_t p = 0; p < pl->nparts; p++) {
        sl_buf_reset(&pl->msg);
        if (sl_wire_encode(&b->pub, pl->event_part, p, &pl->msg) != 0) {
            fail(pl, "cannot encode batch %llu for partition %u (out of memory)",
                 (unsigned long long)b->pub.seq, p);
            return SLUICE_ERR;
        }
        int rc = publish_message(pl, p, b);
        if (rc != SLUICE_OK)
            return rc;
    }
    return SLUICE_OK;
}

/* The shared batch a message names, or NULL when it is not a local message. */
static struct local_batch *local_of(const struct sl_pipeline *pl,
                                    const struct sluice_message *msg)
{
    struct local_msg m;
    if (!pl->local || msg->len != sizeof m)
        return NULL;
    memcpy(&m, msg->data, sizeof m);
    return memcmp(m.magic, LOCAL_MAGIC, sizeof m.magic) == 0 ? m.lb : NULL;
}

/* w->batch becomes the view of partition w->part's events of lb. */
static void local_view(struct worker *w, const struct local_batch *lb)
{
    struct sl_batch *v = w->batch;
    const struct sluice_batch *src = &lb->b->pub;
    sl_batch_reset(v);
    v->pub.partition = w->part;
    v->pub.seq = src->seq;
    v->pub.flags = src->flags;
    v->pub.position = src->position;
    for (size_t i = 0; i < src->nevents; i++) {
        uint32_t p = lb->event_part[i];
        if (p != w->part && p != SL_PART_ALL)
            continue;
        sl_batch_push_view(v, &src->events[i]);
    }
}

/* Wait until fewer than `limit` batches are in flight (published, not yet
 * applied by every partition). 0, or -1 when stopping. */
static int wait_in_flight_below(struct sl_pipeline *pl, size_t limit)
{
    pthread_mutex_lock(&pl->lock);
    while (pl->ring_count >= limit && !source_stopping(pl)) {
        struct timespec ts;
        uint64_t deadline = sl_now_mono_us() + 200000u;
        ts.tv_sec = (time_t)(deadline / 1000000u);
        ts.tv_nsec = (long)(deadline % 1000000u) * 1000;
        pthread_cond_timedwait(&pl->cond, &pl->lock, &ts);
    }
    pthread_mutex_unlock(&pl->lock);
    return source_stopping(pl) ? -1 : 0;
}

/* queue_depth: at most that many batches in flight, whatever the transport
 * itself buffers, so memory stays bounded with any transport. */
static int wait_for_room(struct sl_pipeline *pl)
{
    return wait_in_flight_below(pl, pl->profile->queue_depth);
}

static bool has_truncate(const struct sluice_batch *b)
{
    for (size_t i = 0; i < b->nevents; i++)
        if (b->events[i].op == SLUICE_OP_TRUNCATE)
            return true;
    return false;
}

static int emit_locked(struct sl_pipeline *pl, struct sl_batch *b);

/* A source may emit from several threads (parallel snapshot readers): the
 * batches get their sequence numbers, and reach the transport, one at a
 * time in the order their emit calls got the lock. */
static int hook_emit(void *arg, struct sl_batch *b)
{
    struct sl_pipeline *pl = arg;
    pthread_mutex_lock(&pl->emit_lock);
    int rc = emit_locked(pl, b);
    pthread_mutex_unlock(&pl->emit_lock);
    return rc;
}

static int emit_locked(struct sl_pipeline *pl, struct sl_batch *b)
{
    struct sluice_batch *pub = &b->pub;
    int rc = SLUICE_STOPPED;
    if (source_stopping(pl))
        goto out;
    if (pub->nevents > pl->cap_event_part) {
        pl->cap_event_part = pub->nevents * 2;
        pl->event_part = sl_xrealloc(pl->event_part, pl->cap_event_part * sizeof *pl->event_part);
    }
    /* A TRUNCATE touches every key, so it cannot be split by key: such a
     * batch is a barrier. Everything before it is applied first, the whole
     * batch goes to partition 0 in source order (the others get only its
     * position), and nothing after it is published until it is applied. */
    bool barrier = has_truncate(pub);
    if ((barrier ? wait_in_flight_below(pl, 1) : wait_for_room(pl)) != 0)
        goto out;
    pub->seq = ++pl->next_seq;
    const struct sluice_entity *run_entity = NULL;
    int64_t run_reads = 0;
    for (size_t i = 0; i < pub->nevents; i++) {
        const struct sluice_event *ev = &pub->events[i];
        pl->event_part[i] = barrier ? 0 : (uint32_t)(sl_event_key_hash(ev) % pl->nparts);
        if (ev->op != SLUICE_OP_READ)
            continue;
        if (ev->entity != run_entity) {
            if (run_entity)
                count(pl, run_entity->name, "rows_read", run_reads);
            run_entity = ev->entity;
            run_reads = 0;
        }
        run_reads++;
    }
    if (run_entity)
        count(pl, run_entity->name, "rows_read", run_reads);

    /* the batch may be applied and freed before publish_local returns */
    const uint64_t seq = pub->seq;
    const struct sluice_position pos = pub->position;
    /* every partition gets a message, also without events, so that every
     * partition checkpoint advances with the batch's position */
    rc = pl->local ? publish_local(pl, b) : publish_encoded(pl, b);
    if (pl->local)
        b = NULL; /* the pipeline's now, freed by the last partition (or teardown) */
    if (rc != SLUICE_OK)
        goto out;
    pthread_mutex_lock(&pl->lock);
    ring_push(pl, seq, &pos);
    pl->published_seq = seq;
    /* the workers may have applied every partition's message already, before
     * the entry was in the ring: their mark_applied found nothing to pop */
    advance_durable_locked(pl);
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->lock);
    rc = SLUICE_OK;
    if (barrier && wait_in_flight_below(pl, 1) != 0)
        rc = SLUICE_STOPPED;
out:
    sl_batch_free(b);
    return rc == SLUICE_OK ? SLUICE_OK : SLUICE_STOPPED;
}

static int start_with_retry(struct sl_pipeline *pl, struct sl_instance *in, const char *what)
{
    unsigned seed = (unsigned)sl_now_mono_us();
    for (unsigned attempt = 1;; attempt++) {
        struct sl_err err;
        int st = sl_instance_start(in, &err);
        if (st == SLUICE_OK)
            return 0;
        if (st != SLUICE_RETRY || attempt > (unsigned)pl->profile->retry_count) {
            fail_msg(pl, err.msg);
            return -1;
        }
        uint64_t ms = backoff_ms(pl->profile, attempt, &seed);
        sl_warn("%s; %s: retry %u of %d in %.1f s", err.msg, what, attempt,
                pl->profile->retry_count, (double)ms / 1000.0);
        count(pl, NULL, "retries", 1);
        timed_wait(pl, ms, apply_interrupted);
        if (apply_interrupted(pl))
            return -1;
    }
}

static void *source_main(void *arg)
{
    struct sl_pipeline *pl = arg;
    const struct sluice_source_ops *ops = sl_source_ops(&pl->source);
    struct sluice_position resume = pl->resume;
    unsigned seed = (unsigned)sl_now_mono_us();
    int st = SLUICE_ERR;
    for (unsigned attempt = 1;; attempt++) {
        st = ops->run(pl->source.inst, &resume, pl->opts.run_mode);
        if (st == SLUICE_OK || st == SLUICE_STOPPED || source_stopping(pl))
            break;
        if (st != SLUICE_RETRY || attempt > (unsigned)pl->profile->retry_count) {
            fail_instance(pl, &pl->source, st == SLUICE_RETRY ? "run (retries exhausted)" : "run");
            break;
        }
        struct sl_err err;
        sl_instance_error(&pl->source, "run", &err);
        uint64_t ms = backoff_ms(pl->profile, attempt, &seed);
        sl_warn("%s; restarting the source, retry %u of %d in %.1f s", err.msg, attempt,
                pl->profile->retry_count, (double)ms / 1000.0);
        count(pl, NULL, "retries", 1);
        timed_wait(pl, ms, source_stopping);
        if (source_stopping(pl))
            break;
        sl_instance_stop(&pl->source);
        if (start_with_retry(pl, &pl->source, "source start") != 0)
            break;
        /* everything after the durable position is replayed; the target
         * ignores what it already has */
        pthread_mutex_lock(&pl->lock);
        resume = pl->durable;
        pthread_mutex_unlock(&pl->lock);
    }
    pthread_mutex_lock(&pl->lock);
    pl->source_finished = true;
    pl->source_completed = st == SLUICE_OK && !source_stopping(pl);
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->lock);
    return NULL;
}

/* ---- the apply side ----------------------------------------------------- */

static struct tally *tally_of(struct worker *w, const struct sluice_entity *e);

static void tally_flush(struct worker *w)
{
    struct sl_pipeline *pl = w->pl;
    for (size_t i = 0; i < w->ntally; i++) {
        struct tally *t = &w->tally[i];
        const char *name = t->entity->name;
        count(pl, name, "inserts", t->inserts);
        count(pl, name, "updates", t->updates);
        count(pl, name, "deletes", t->deletes);
        count(pl, name, "applied_rows", t->applied);
        count(pl, name, "failed", t->failed);
        if (t->applied || t->failed)
            count(pl, name, "batches", 1);
    }
    w->ntally = 0;
    sl_lag_flush(&w->lag, pl->opts.state, pl->profile->name);
}

static struct tally *tally_of(struct worker *w, const struct sluice_entity *e)
{
    for (size_t i = 0; i < w->ntally; i++)
        if (w->tally[i].entity == e)
            return &w->tally[i];
    if (w->ntally == TALLY_SLOTS)
        tally_flush(w);
    struct tally *t = &w->tally[w->ntally++];
    *t = (struct tally){.entity = e};
    return t;
}

static void tally_applied(struct worker *w, const struct sluice_event *ev, size_t n)
{
    int64_t now_us = n ? sl_now_wall_us() : 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].commit_time_us > 0)
            sl_lag_observe(&w->lag, now_us - ev[i].commit_time_us);
        struct tally *t = tally_of(w, ev[i].entity);
        t->applied++;
        switch (ev[i].op) {
        case SLUICE_OP_INSERT: t->inserts++; break;
        case SLUICE_OP_UPDATE: t->updates++; break;
        case SLUICE_OP_DELETE: t->deletes++; break;
        default: break;
        }
    }
}

enum { APPLY_OK, APPLY_REFUSED, APPLY_GAVE_UP, APPLY_STOPPED, APPLY_SKIPPED };

/* Keep the sink's error text of a refused apply (the failed-record log
 * wants the target's words) and clear the buffer. */
static void take_sink_error(struct worker *w)
{
    snprintf(w->error, sizeof w->error, "%s",
             w->sink.ctx.error[0] ? w->sink.ctx.error : "refused by the target (no message)");
    w->sink.ctx.error[0] = '\0';
}

static int call_with_retry(struct worker *w, const char *what, const struct sluice_entity *e,
                           const struct sluice_batch *b)
{
    struct sl_pipeline *pl = w->pl;
    const struct sluice_sink_ops *ops = sl_sink_ops(&w->sink);
    for (unsigned attempt = 1;; attempt++) {
        size_t failed_at = SIZE_MAX;
        int st = e ? ops->prepare(w->sink.inst, e) : ops->apply(w->sink.inst, b, &failed_at);
        if (st == SLUICE_OK)
            return APPLY_OK;
        if (st == SLUICE_ERR) {
            take_sink_error(w);
            return APPLY_REFUSED;
        }
        if (apply_interrupted(pl))
            return APPLY_STOPPED;
        if (attempt > (unsigned)pl->profile->retry_count) {
            char what_full[256];
            snprintf(what_full, sizeof what_full,
                     "%s (gave up after %d retries; fix the target, then run again - "
                     "nothing is lost, the export resumes from the last checkpoint)",
                     what, pl->profile->retry_count);
            fail_instance(pl, &w->sink, what_full);
            return APPLY_GAVE_UP;
        }
        struct sl_err err;
        sl_instance_error(&w->sink, what, &err);
        uint64_t ms = backoff_ms(pl->profile, attempt, &w->rand_seed);
        sl_warn("%s; partition %u: retry %u of %d in %.1f s", err.msg, w->part, attempt,
                pl->profile->retry_count, (double)ms / 1000.0);
        count(pl, NULL, "retries", 1);
        timed_wait(pl, ms, apply_interrupted);
        if (apply_interrupted(pl))
            return APPLY_STOPPED;
    }
}

static void position_hex(const struct sluice_position *pos, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 0;
    for (uint32_t i = 0; i < pos->len && n + 2 < cap; i++) {
        out[n++] = digits[pos->bytes[i] >> 4];
        out[n++] = digits[pos->bytes[i] & 0xf];
    }
    out[n] = '\0';
}

/* The record id (sluice/record_id.h): key values in canonical text (never
 * row data). */
static const char *record_id(struct worker *w, const struct sluice_event *ev)
{
    const struct sluice_entity *e = ev->entity;
    struct sl_buf *t = &w->text;
    sl_buf_reset(t);
    char small[128];
    size_t used = 0;
    for (uint32_t k = 0; k < e->nkeys; k++) {
        uint32_t c = e->key_columns[k];
        const struct sluice_value *v = &ev->values[c];
        const char *text = NULL;
        size_t len = 0;
        char *big = NULL;
        if (v->state == SLUICE_PRESENT) {
            len = sl_value_format(&e->columns[c], v, small, sizeof small);
            text = small;
            if (len >= sizeof small) {
                big = sl_xmalloc(len + 1);
                sl_value_format(&e->columns[c], v, big, len + 1);
                text = big;
            }
        }
        /* room for every byte quoted, the quotes and the ',' */
        sl_buf_reserve(t, 2 * len + 8);
        sluice_record_id_append(t->data, t->cap, &used, k == 0, text, len);
        t->len = used;
        free(big);
    }
    sl_buf_append(t, "", 1);
    return t->data;
}

static void record_refused(struct worker *w, const struct sluice_event *ev,
                           const struct sluice_position *pos)
{
    struct sl_pipeline *pl = w->pl;
    char hex[2 * SLUICE_POSITION_MAX + 1];
    position_hex(pos, hex, sizeof hex);
    const char *id = record_id(w, ev);
    struct sl_failed_record r = {.profile = pl->profile->name,
                                 .entity = ev->entity->name,
                                 .record_id = id,
                                 .op = sluice_op_name(ev->op),
                                 .position = hex,
                                 .sync_time_us = sl_now_wall_us(),
                                 .error = w->error};
    sl_state_failed_add(pl->opts.state, &r);
    tally_of(w, ev->entity)->failed++;
    sl_warn("profile \"%s\": entity %s: record %s (%s) refused by the target, skipped and "
            "logged as failed (see `sluice failures list %s`): %s",
            pl->profile->name, ev->entity->name, id, sluice_op_name(ev->op), pl->profile->name,
            w->error);
}

/* Apply events [lo, hi) of b without moving the checkpoint, splitting in
 * halves until every refused record is alone (and logged). */
static int isolate(struct worker *w, const struct sluice_batch *b, size_t lo, size_t hi)
{
    struct sluice_batch part = *b;
    part.events = b->events + lo;
    part.nevents = hi - lo;
    part.position.len = 0;
    int st = call_with_retry(w, "apply", NULL, &part);
    if (st == APPLY_OK) {
        tally_applied(w, part.events, part.nevents);
        return APPLY_OK;
    }
    if (st != APPLY_REFUSED)
        return st;
    if (hi - lo == 1) {
        record_refused(w, &b->events[lo], &b->position);
        return APPLY_OK;
    }
    size_t mid = lo + (hi - lo) / 2;
    st = isolate(w, b, lo, mid);
    if (st != APPLY_OK)
        return st;
    return isolate(w, b, mid, hi);
}

/* ---- the spill store: claim check and parked batches ----------------------
 *
 * A message above the transport's limit (or the profile's spill_threshold)
 * is put in the spill store and only a reference travels; the worker fetches
 * it. A batch whose apply hits a transient error is parked there while the
 * worker waits to retry: the transport's copy is acked and the decoded batch
 * freed, so an outage costs disk, not memory, and the worker takes nothing
 * new (backpressure reaches the source through the full transport).
 *
 * Blobs are deleted once their batch is applied. Every blob is redundant
 * with the source: the target's checkpoint only moves when a batch is
 * applied, so blobs left by a crash are removed at start and their batches
 * come again from the source.
 */

#define SPILL_HOLD_MAX_ATTEMPT 5 /* backoff stops doubling here while the spill disk is full */

static bool spill_on(const struct sl_pipeline *pl)
{
    return pl->spill_inited;
}

/* One spill call under the lock; on a non-OK status, the error (with the
 * profile and plugin) in err. */
static int spill_put(struct sl_pipeline *pl, const void *data, size_t len,
                     char id[SLUICE_SPILL_ID_MAX], struct sl_err *err)
{
    pthread_mutex_lock(&pl->spill_lock);
    int st = sl_spill_ops(&pl->spill)->put(pl->spill.inst, data, len, id);
    if (st != SLUICE_OK)
        sl_instance_error(&pl->spill, "put", err);
    pthread_mutex_unlock(&pl->spill_lock);
    return st;
}

static int spill_get(struct sl_pipeline *pl, const char *id, void **data, size_t *len,
                     struct sl_err *err)
{
    pthread_mutex_lock(&pl->spill_lock);
    int st = sl_spill_ops(&pl->spill)->get(pl->spill.inst, id, data, len);
    if (st != SLUICE_OK)
        sl_instance_error(&pl->spill, "get", err);
    pthread_mutex_unlock(&pl->spill_lock);
    return st;
}

static void spill_release(struct sl_pipeline *pl, void *data, size_t len)
{
    pthread_mutex_lock(&pl->spill_lock);
    sl_spill_ops(&pl->spill)->release(pl->spill.inst, data, len);
    pthread_mutex_unlock(&pl->spill_lock);
}

static void spill_del(struct sl_pipeline *pl, const char *id)
{
    struct sl_err err;
    pthread_mutex_lock(&pl->spill_lock);
    int st = sl_spill_ops(&pl->spill)->del(pl->spill.inst, id);
    if (st != SLUICE_OK)
        sl_instance_error(&pl->spill, "del", &err);
    pthread_mutex_unlock(&pl->spill_lock);
    if (st != SLUICE_OK)
        sl_warn("%s; it is removed at the next start", err.msg);
}

/* Put a blob, holding (backoff, no growth) while the spill store says
 * SLUICE_RETRY (disk full). SLUICE_OK, SLUICE_STOPPED or SLUICE_ERR (err). */
static int spill_put_holding(struct sl_pipeline *pl, const void *data, size_t len,
                             char id[SLUICE_SPILL_ID_MAX], bool (*done)(struct sl_pipeline *),
                             unsigned *seed, struct sl_err *err)
{
    for (unsigned attempt = 1;; attempt++) {
        int st = spill_put(pl, data, len, id, err);
        if (st == SLUICE_OK) {
            count(pl, NULL, "spilled_batches", 1);
            count(pl, NULL, "spilled_bytes", (int64_t)len);
            if (attempt > 1)
                sl_info("profile \"%s\": the spill store accepts blobs again; going on",
                        pl->profile->name);
            return SLUICE_OK;
        }
        if (st != SLUICE_RETRY)
            return SLUICE_ERR;
        uint64_t ms = backoff_ms(pl->profile,
                                 attempt < SPILL_HOLD_MAX_ATTEMPT ? attempt
                                                                  : SPILL_HOLD_MAX_ATTEMPT,
                                 seed);
        if (ms < 200)
            ms = 200;
        sl_error("%s; holding, attempt %u, next in %.1f s", err->msg, attempt,
                 (double)ms / 1000.0);
        count(pl, NULL, "spill_full_waits", 1);
        timed_wait(pl, ms, done);
        if (done(pl))
            return SLUICE_STOPPED;
    }
}

/* Source thread: pl->msg is too large for the transport (or above
 * spill_threshold): put it in the spill store and leave the reference in
 * pl->msg instead. */
static int claim_check(struct sl_pipeline *pl, uint32_t part, const struct sl_batch *b)
{
    if (!spill_on(pl)) {
        fail(pl,
             "batch %llu encodes to %zu bytes for partition %u, more than the transport's "
             "max_message_size of %zu bytes, and the profile has no spill store for the claim "
             "check; add `spill = { plugin = \"fs\"; }` or lower batch_size or batch_bytes in "
             "%s:%d",
             (unsigned long long)b->pub.seq, pl->msg.len, part, pl->max_message,
             pl->profile->file, pl->profile->line);
        return SLUICE_ERR;
    }
    struct sl_wire_ref ref = {.len = pl->msg.len,
                              .partition = part,
                              .seq = b->pub.seq,
                              .position = b->pub.position};
    struct sl_err err;
    unsigned seed = (unsigned)b->pub.seq;
    int st = spill_put_holding(pl, pl->msg.data, pl->msg.len, ref.id, source_stopping, &seed,
                               &err);
    if (st == SLUICE_STOPPED)
        return st;
    if (st != SLUICE_OK) {
        fail(pl, "batch %llu (partition %u, %zu bytes) cannot go to the spill store: %s",
             (unsigned long long)b->pub.seq, part, pl->msg.len, err.msg);
        return SLUICE_ERR;
    }
    sl_buf_reset(&pl->ref_msg);
    if (sl_wire_encode_ref(&ref, &pl->ref_msg) != 0) {
        fail(pl, "cannot encode the spill reference of batch %llu (out of memory)",
             (unsigned long long)b->pub.seq);
        return SLUICE_ERR;
    }
    sl_debug("profile \"%s\": batch %llu partition %u: %zu bytes claim-checked as spill blob %s",
             pl->profile->name, (unsigned long long)b->pub.seq, part, pl->msg.len, ref.id);
    struct sl_buf t = pl->msg;
    pl->msg = pl->ref_msg;
    pl->ref_msg = t;
    return SLUICE_OK;
}

static bool needs_claim_check(const struct sl_pipeline *pl, size_t len)
{
    size_t limit = pl->max_message;
    if (pl->profile->spill_threshold && (!limit || pl->profile->spill_threshold < limit))
        limit = (size_t)pl->profile->spill_threshold;
    return limit && len > limit;
}

/* A failed-record row for a record of a parked or claim-checked batch that
 * cannot be applied (blob unreadable, retries exhausted). */
static void spill_record_failed(struct worker *w, const char *entity, const char *id,
                                const char *op, const struct sluice_position *pos,
                                const char *error)
{
    struct sl_pipeline *pl = w->pl;
    char hex[2 * SLUICE_POSITION_MAX + 1];
    position_hex(pos, hex, sizeof hex);
    struct sl_failed_record r = {.profile = pl->profile->name,
                                 .entity = entity,
                                 .record_id = id,
                                 .op = op,
                                 .position = hex,
                                 .sync_time_us = sl_now_wall_us(),
                                 .error = error};
    sl_state_failed_add(pl->opts.state, &r);
    count(pl, entity, "failed", 1);
}

/* Every record of the parked batch to the failed-record log. */
static void parked_records_failed(struct worker *w, const char *error)
{
    const char *p = w->parked_ids.data, *end = p + w->parked_ids.len;
    size_t n = 0;
    while (p && p < end) {
        const char *entity = p;
        const char *id = entity + strlen(entity) + 1;
        const char *op = id + strlen(id) + 1;
        spill_record_failed(w, entity, id, op, &w->parked_pos, error);
        p = op + strlen(op) + 1;
        n++;
    }
    sl_warn("profile \"%s\": partition %u: %zu records are in the failed-record log (see "
            "`sluice failures list %s`; `sluice failures resync %s` applies them again)",
            w->pl->profile->name, w->part, n, w->pl->profile->name, w->pl->profile->name);
}

/* Free the decoded batch's memory (not just rewind it) while parked. */
static void drop_batch(struct worker *w)
{
    const struct sl_profile *p = w->pl->profile;
    uint64_t seq = w->batch->pub.seq;
    sl_batch_free(w->batch);
    w->batch = sl_batch_new(p->batch_rows, p->batch_bytes);
    w->batch->pub.seq = seq;
    w->batch->pub.partition = w->part;
}

/* Park batch b (the current message): blob, early ack, batch memory freed.
 * 0, or -1 when it cannot be parked (it then waits in memory). */
static int park(struct worker *w, const struct sluice_batch *b)
{
    struct sl_pipeline *pl = w->pl;
    struct sl_err err;
    sl_buf_reset(&w->parked_ids);
    for (size_t i = 0; i < b->nevents; i++) {
        const struct sluice_event *ev = &b->events[i];
        const char *entity = ev->entity->name, *op = sluice_op_name(ev->op);
        const char *id = record_id(w, ev);
        sl_buf_append(&w->parked_ids, entity, strlen(entity) + 1);
        sl_buf_append(&w->parked_ids, id, strlen(id) + 1);
        sl_buf_append(&w->parked_ids, op, strlen(op) + 1);
    }
    w->parked_pos = b->position;
    if (!w->blob_id[0]) {
        const void *data = w->cur_msg->data;
        size_t len = w->cur_msg->len;
        if (w->local) {
            /* an in-process message is a reference: the blob gets the encoding */
            sl_buf_reset(&w->park_msg);
            if (sl_wire_encode(b, NULL, w->part, &w->park_msg) != 0) {
                sl_warn("profile \"%s\": partition %u: batch %llu cannot be encoded for the "
                        "spill store (out of memory); it waits for its retry in memory",
                        pl->profile->name, w->part, (unsigned long long)b->seq);
                return -1;
            }
            data = w->park_msg.data;
            len = w->park_msg.len;
        }
        /* a full spill disk must not hold the retry: one attempt, else memory */
        if (spill_put(pl, data, len, w->blob_id, &err) != SLUICE_OK) {
            w->blob_id[0] = '\0';
            sl_warn("%s; partition %u: batch %llu waits for its retry in memory instead",
                    err.msg, w->part, (unsigned long long)b->seq);
            return -1;
        }
        count(pl, NULL, "spilled_batches", 1);
        count(pl, NULL, "spilled_bytes", (int64_t)len);
    }
    if (!w->msg_acked) {
        const struct sluice_transport_ops *tops = sl_transport_ops(&pl->transport);
        if (tops->ack(pl->transport.inst, w->cur_msg) == SLUICE_OK)
            w->msg_acked = true;
    }
    count(pl, NULL, "parked_batches", 1);
    if (w->local) {
        release_view(w); /* parking is for freeing memory */
        sl_buf_free(&w->park_msg);
    }
    drop_batch(w);
    return 0;
}

/* Read the parked batch back into w->batch. 0, or -1 with the reason in
 * w->error. */
static int unpark(struct worker *w)
{
    struct sl_pipeline *pl = w->pl;
    struct sl_err err;
    void *data = NULL;
    size_t len = 0;
    char derr[512] = "not a batch message";
    uint64_t seq = w->batch->pub.seq;
    if (spill_get(pl, w->blob_id, &data, &len, &err) != SLUICE_OK) {
        snprintf(w->error, sizeof w->error, "%s", err.msg);
        return -1;
    }
    int rc = -1;
    if (sl_wire_kind(data, len) != SL_WIRE_BATCH ||
        sl_wire_decode(data, len, w->batch, derr, sizeof derr) != 0) {
        snprintf(w->error, sizeof w->error, "spill blob %s does not hold a sluice batch: %s",
                 w->blob_id, derr);
        w->batch->pub.seq = seq;
        goto out;
    }
    w->batch->pub.partition = w->part;
    rc = 0;
out:
    spill_release(pl, data, len);
    return rc;
}

/*
 * Apply the whole batch *bp. A transient error parks it (see above) and
 * retries with backoff from the spill store; *bp then points at the batch
 * read back. APPLY_OK, APPLY_REFUSED (the target refused it: isolate),
 * APPLY_SKIPPED (its records are in the failed-record log: the blob could
 * not be read, or the retries ran out), APPLY_STOPPED or APPLY_GAVE_UP.
 */
static int apply_whole(struct worker *w, const struct sluice_batch **bp)
{
    struct sl_pipeline *pl = w->pl;
    const struct sluice_sink_ops *ops = sl_sink_ops(&w->sink);
    if (!spill_on(pl) || !w->cur_msg)
        return call_with_retry(w, "apply", NULL, *bp);
    size_t failed_at = SIZE_MAX;
    int st = ops->apply(w->sink.inst, *bp, &failed_at);
    if (st == SLUICE_OK)
        return APPLY_OK;
    if (st == SLUICE_ERR) {
        take_sink_error(w);
        return APPLY_REFUSED;
    }
    if (apply_interrupted(pl))
        return APPLY_STOPPED;
    uint64_t seq = (*bp)->seq;
    if (park(w, *bp) != 0)
        return call_with_retry(w, "apply", NULL, *bp);
    for (unsigned attempt = 1;; attempt++) {
        struct sl_err err;
        sl_instance_error(&w->sink, "apply", &err);
        if (attempt > (unsigned)pl->profile->retry_count) {
            snprintf(w->error, sizeof w->error, "gave up after %d retries: %s",
                     pl->profile->retry_count, err.msg);
            sl_error("profile \"%s\": partition %u: batch %llu: %s", pl->profile->name, w->part,
                     (unsigned long long)seq, w->error);
            parked_records_failed(w, w->error);
            return APPLY_SKIPPED;
        }
        uint64_t ms = backoff_ms(pl->profile, attempt, &w->rand_seed);
        sl_warn("%s; partition %u: batch %llu parked in the spill store (blob %s), retry %u of "
                "%d in %.1f s",
                err.msg, w->part, (unsigned long long)seq, w->blob_id, attempt,
                pl->profile->retry_count, (double)ms / 1000.0);
        count(pl, NULL, "retries", 1);
        timed_wait(pl, ms, apply_interrupted);
        if (apply_interrupted(pl))
            return APPLY_STOPPED;
        if (unpark(w) != 0) {
            char why[sizeof w->error + 128];
            snprintf(why, sizeof why, "%s (batch %llu, partition %u)", w->error,
                     (unsigned long long)seq, w->part);
            sl_error("profile \"%s\": partition %u: parked batch %llu cannot be read back from "
                     "the spill store: %s; its records go to the failed-record log and the "
                     "export goes on",
                     pl->profile->name, w->part, (unsigned long long)seq, why);
            parked_records_failed(w, why);
            return APPLY_SKIPPED;
        }
        *bp = &w->batch->pub;
        failed_at = SIZE_MAX;
        st = ops->apply(w->sink.inst, *bp, &failed_at);
        if (st == SLUICE_OK) {
            sl_info("profile \"%s\": partition %u: parked batch %llu applied after %u retries",
                    pl->profile->name, w->part, (unsigned long long)seq, attempt);
            return APPLY_OK;
        }
        if (st == SLUICE_ERR) {
            take_sink_error(w);
            return APPLY_REFUSED;
        }
        drop_batch(w);
    }
}

/* Worker: a claim-check reference arrived. Read the blob: APPLY_OK with
 * *data (spill_release it), APPLY_SKIPPED when it cannot be read (logged),
 * APPLY_GAVE_UP. */
static int claim_fetch(struct worker *w, const struct sluice_message *msg, void **data,
                       size_t *len)
{
    struct sl_pipeline *pl = w->pl;
    struct sl_wire_ref ref;
    char derr[512];
    struct sl_err err;
    if (sl_wire_decode_ref(msg->data, msg->len, &ref, derr, sizeof derr) != 0) {
        fail(pl, "partition %u: a malformed spill reference came from the transport: %s",
             w->part, derr);
        return APPLY_GAVE_UP;
    }
    if (!spill_on(pl)) {
        fail(pl, "partition %u: a spilled-batch reference arrived, but the profile has no "
                 "spill store; add `spill = { plugin = \"fs\"; }` to %s:%d",
             w->part, pl->profile->file, pl->profile->line);
        return APPLY_GAVE_UP;
    }
    int st = spill_get(pl, ref.id, data, len, &err);
    if (st == SLUICE_OK) {
        snprintf(w->blob_id, sizeof w->blob_id, "%s", ref.id);
        return APPLY_OK;
    }
    char why[sizeof err.msg + 128];
    snprintf(why, sizeof why, "%s (claim-checked batch %llu, partition %u)", err.msg,
             (unsigned long long)ref.seq, w->part);
    sl_error("profile \"%s\": partition %u: batch %llu cannot be read from the spill store: %s; "
             "its records are not known without the blob, the batch is logged in the "
             "failed-record log and the export goes on",
             pl->profile->name, w->part, (unsigned long long)ref.seq, why);
    spill_record_failed(w, NULL, NULL, NULL, &ref.position, why);
    snprintf(w->blob_id, sizeof w->blob_id, "%s", ref.id);
    sl_batch_reset(w->batch);
    w->batch->pub.seq = ref.seq;
    return APPLY_SKIPPED;
}

static int apply_batch(struct worker *w, const struct sluice_batch *b)
{
    struct sl_pipeline *pl = w->pl;
    int st = apply_whole(w, &b);
    if (st == APPLY_OK) {
        tally_applied(w, b->events, b->nevents);
        return APPLY_OK;
    }
    if (st != APPLY_REFUSED)
        return st;
    if (b->nevents == 0) {
        fail(pl, "partition %u: the target refused to store the checkpoint: %s", w->part,
             w->error);
        return APPLY_GAVE_UP;
    }
    sl_info("profile \"%s\": partition %u: batch %llu of %zu events refused (%s); isolating "
            "the bad records",
            pl->profile->name, w->part, (unsigned long long)b->seq, b->nevents, w->error);
    st = isolate(w, b, 0, b->nevents);
    if (st != APPLY_OK)
        return st;
    /* move the checkpoint past the batch */
    struct sluice_batch empty = *b;
    empty.nevents = 0;
    st = call_with_retry(w, "apply", NULL, &empty);
    if (st == APPLY_REFUSED) {
        fail(pl, "partition %u: the target refused to store the checkpoint: %s", w->part,
             w->error);
        return APPLY_GAVE_UP;
    }
    return st;
}

static bool fingerprint_known(struct sl_pipeline *pl, uint64_t fp)
{
    for (size_t i = 0; i < pl->nprepared; i++)
        if (pl->prepared[i] == fp)
            return true;
    return false;
}

static int prepare_entities(struct worker *w)
{
    struct sl_pipeline *pl = w->pl;
    int rc = APPLY_OK;
    pthread_mutex_lock(&pl->prepare_lock);
    for (size_t i = 0; i < w->batch->nentities; i++) {
        const struct sluice_entity *e = w->batch->entities[i];
        uint64_t fp = sl_entity_fingerprint(e);
        if (fingerprint_known(pl, fp))
            continue;
        rc = call_with_retry(w, "prepare", e, NULL);
        if (rc == APPLY_REFUSED) {
            fail(pl, "entity %s: the target cannot be prepared for it: %s", e->name, w->error);
            rc = APPLY_GAVE_UP;
        }
        if (rc != APPLY_OK)
            goto out;
        sl_debug("profile \"%s\": target prepared for entity %s (schema version %u)",
                 pl->profile->name, e->name, e->schema_version);
        if (pl->nprepared == pl->cap_prepared) {
            pl->cap_prepared = pl->cap_prepared ? pl->cap_prepared * 2 : 16;
            pl->prepared = sl_xrealloc(pl->prepared, pl->cap_prepared * sizeof *pl->prepared);
        }
        pl->prepared[pl->nprepared++] = fp;
    }
out:
    pthread_mutex_unlock(&pl->prepare_lock);
    return rc;
}

/* With pl->lock held: pop the in-flight entries every partition has applied
 * and, when the durable position moved, tell the source. ack does not block
 * (source.h), so it runs under the lock, which keeps acks in order. */
static void advance_durable_locked(struct sl_pipeline *pl)
{
    const struct sluice_source_ops *sops = sl_source_ops(&pl->source);
    uint64_t low = UINT64_MAX;
    for (uint32_t p = 0; p < pl->nparts; p++)
        if (pl->applied[p] < low)
            low = pl->applied[p];
    bool moved = false;
    while (pl->ring_count && pl->ring[pl->ring_head].seq <= low) {
        const struct sluice_position *pos = &pl->ring[pl->ring_head].pos;
        if (pos->len && sluice_position_cmp(pos, &pl->durable) > 0) {
            pl->durable = *pos;
            moved = true;
        }
        pl->ring_head = (pl->ring_head + 1) % pl->ring_cap;
        pl->ring_count--;
    }
    if (moved && sops->ack)
        sops->ack(pl->source.inst, &pl->durable);
}

/* Partition w->part applied message seq: when every partition has, tell the
 * source which position is durable. */
static void mark_applied(struct worker *w, uint64_t seq)
{
    struct sl_pipeline *pl = w->pl;
    pthread_mutex_lock(&pl->lock);
    if (seq > pl->applied[w->part])
        pl->applied[w->part] = seq;
    advance_durable_locked(pl);
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->lock);
}

static int apply_message(struct worker *w);

static int handle_message(struct worker *w, const struct sluice_message *msg)
{
    struct sl_pipeline *pl = w->pl;
    char err[512];
    struct local_batch *lb = local_of(pl, msg);
    if (lb) {
        /* held until applied or parked (a redelivery names the same batch) */
        w->local = lb;
        local_view(w, lb);
        return apply_message(w);
    }
    int kind = sl_wire_kind(msg->data, msg->len);
    const void *data = msg->data;
    size_t len = msg->len;
    void *blob = NULL;
    size_t blob_len = 0;
    if (kind == SL_WIRE_SPILL_REF) {
        int cst = claim_fetch(w, msg, &blob, &blob_len);
        if (cst != APPLY_OK)
            return cst;
        data = blob;
        len = blob_len;
        kind = sl_wire_kind(data, len);
    }
    int dst = kind == SL_WIRE_BATCH ? sl_wire_decode(data, len, w->batch, err, sizeof err) : -1;
    if (blob)
        spill_release(pl, blob, blob_len);
    if (dst != 0) {
        if (kind != SL_WIRE_BATCH)
            snprintf(err, sizeof err, "not a sluice batch message");
        fail(pl, "partition %u: cannot decode a message from the transport (%zu bytes, attempt "
                 "%u): %s",
             w->part, msg->len, msg->attempt, err);
        return APPLY_GAVE_UP;
    }
    return apply_message(w);
}

/* Apply w->batch, the message's batch (decoded or a view). */
static int apply_message(struct worker *w)
{
    struct sl_pipeline *pl = w->pl;
    struct sluice_batch *b = &w->batch->pub;
    b->partition = w->part;
    int st = APPLY_OK;
    if (pl->skip_own && b->position.len &&
        sluice_position_cmp(&b->position, &pl->own_cp[w->part]) <= 0) {
        /* applied in this partition before the restart: nothing to do */
        count(pl, "", "replayed_batches_skipped", 1);
        goto done;
    }
    st = prepare_entities(w);
    if (st == APPLY_OK)
        st = apply_batch(w, b);
done:
    tally_flush(w);
    if (st == APPLY_OK)
        sl_state_profile_success(pl->opts.state, pl->profile->name, sl_now_wall_us());
    if ((st == APPLY_OK || st == APPLY_SKIPPED) && w->blob_id[0]) {
        spill_del(pl, w->blob_id);
        w->blob_id[0] = '\0';
    }
    return st;
}

/* Worker thread, after an ack: what the transport still holds (metrics). */
static void update_queue_depth(struct sl_pipeline *pl)
{
    const struct sluice_transport_ops *tops = sl_transport_ops(&pl->transport);
    if (!tops->depth)
        return;
    size_t total = 0;
    for (uint32_t p = 0; p < pl->nparts; p++)
        total += tops->depth(pl->transport.inst, p);
    atomic_store(&pl->queue_depth, total);
}

size_t sl_pipeline_queue_depth(struct sl_pipeline *pl)
{
    return sl_pipeline_finished(pl) ? 0 : atomic_load(&pl->queue_depth);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct sl_pipeline *pl = w->pl;
    const struct sluice_transport_ops *tops = sl_transport_ops(&pl->transport);
    while (!atomic_load(&pl->stop_workers)) {
        struct sluice_message msg = {0};
        int st = tops->consume(pl->transport.inst, w->part, CONSUME_TIMEOUT_MS, &msg);
        if (st == SLUICE_AGAIN)
            continue;
        if (st == SLUICE_STOPPED || st == SLUICE_RETRY) {
            timed_wait(pl, CONSUME_TIMEOUT_MS, apply_interrupted);
            continue;
        }
        if (st != SLUICE_OK) {
            fail_instance(pl, &pl->transport, "consume");
            break;
        }
        w->cur_msg = &msg;
        w->msg_acked = false;
        w->blob_id[0] = '\0';
        int rc = handle_message(w, &msg);
        w->cur_msg = NULL;
        if (rc != APPLY_OK && rc != APPLY_SKIPPED) {
            /* not applied: leave it for redelivery (the next run replays it
             * from the checkpoint anyway) */
            if (!w->msg_acked)
                tops->nack(pl->transport.inst, &msg, 0);
            break;
        }
        uint64_t seq = w->batch->pub.seq;
        if (!w->msg_acked && tops->ack(pl->transport.inst, &msg) != SLUICE_OK) {
            fail_instance(pl, &pl->transport, "ack");
            break;
        }
        mark_applied(w, seq);
        release_view(w);
        update_queue_depth(pl);
    }
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

struct sl_pipeline *sl_pipeline_new(const struct sl_config *cfg, const struct sl_profile *profile,
                                    const struct sl_pipeline_opts *opts)
{
    struct sl_pipeline *pl = sl_xcalloc(1, sizeof *pl);
    pl->cfg = cfg;
    pl->profile = profile;
    pl->opts = *opts;
    pl->nparts = profile->workers ? profile->workers : 1;
    pl->own_cp = sl_xcalloc(pl->nparts, sizeof *pl->own_cp);
    pthread_mutex_init(&pl->lock, NULL);
    pthread_mutex_init(&pl->prepare_lock, NULL);
    pthread_mutex_init(&pl->spill_lock, NULL);
    pthread_mutex_init(&pl->emit_lock, NULL);
    pthread_mutex_init(&pl->local_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pl->cond, &ca);
    pthread_condattr_destroy(&ca);
    pl->applied = sl_xcalloc(pl->nparts, sizeof *pl->applied);
    pl->workers = sl_xcalloc(pl->nparts, sizeof *pl->workers);
    for (uint32_t i = 0; i < pl->nparts; i++) {
        pl->workers[i].pl = pl;
        pl->workers[i].part = i;
        pl->workers[i].rand_seed = (unsigned)(sl_now_mono_us() + i * 7919u);
    }
    if (opts->state_dir)
        pl->plugin_state_dir = sl_xasprintf("%s/profiles/%s", opts->state_dir, profile->name);
    return pl;
}

static int load_plugin(struct sl_pipeline *pl, int slot, int kind, const char *name,
                       const struct sl_plugin *given, const struct sl_plugin **out)
{
    struct sl_err err;
    if (given) {
        *out = given;
        return 0;
    }
    if (!name) {
        fail(pl, "%s:%d: no %s plugin configured; add `%s = { plugin = \"...\"; }`",
             pl->profile->file, pl->profile->line, sl_kind_name(kind), sl_kind_name(kind));
        return -1;
    }
    if (sl_plugin_load(pl->opts.plugin_dir, kind, name, &pl->loaded[slot], &err) != 0) {
        fail(pl, "%s", err.msg);
        return -1;
    }
    pl->is_loaded[slot] = true;
    *out = &pl->loaded[slot];
    return 0;
}

static int init_instance(struct sl_pipeline *pl, struct sl_instance *in, const struct sl_plugin *p,
                         const struct sl_plugin_ref *ref, uint32_t worker,
                         const struct sl_ctx_hooks *hooks)
{
    struct sl_err err;
    struct sl_instance_opts io = {.run_mode = pl->opts.run_mode,
                                  .partitions = pl->nparts,
                                  .worker = worker,
                                  .state_dir = pl->plugin_state_dir};
    if (sl_instance_init(in, p, pl->profile, ref, &io, &err) != 0) {
        fail_msg(pl, err.msg);
        return -1;
    }
    in->ctx.hooks = *hooks;
    return 0;
}

struct checkpoint_scan {
    struct sl_pipeline *pl;
    struct sluice_position min;
    uint32_t n;
    uint32_t in_range;  /* checkpoints of partitions 0..nparts-1 */
    bool out_of_range;  /* a checkpoint of a partition >= nparts */
};

static int checkpoint_cb(void *arg, uint32_t partition, const struct sluice_position *pos)
{
    struct checkpoint_scan *s = arg;
    if (pos->len == 0)
        return 0;
    if (partition < s->pl->nparts) {
        s->pl->own_cp[partition] = *pos;
        s->in_range++;
    } else {
        s->out_of_range = true;
    }
    if (s->n == 0 || sluice_position_cmp(pos, &s->min) < 0)
        s->min = *pos;
    s->n++;
    return 0;
}

static int read_checkpoints(struct sl_pipeline *pl)
{
    struct worker *w = &pl->workers[0];
    const struct sluice_sink_ops *ops = sl_sink_ops(&w->sink);
    for (unsigned attempt = 1;; attempt++) {
        struct checkpoint_scan scan = {.pl = pl};
        int st = ops->checkpoint_list(w->sink.inst, checkpoint_cb, &scan);
        if (st == SLUICE_OK) {
            pl->resume = scan.min;
            pl->durable = scan.min;
            /* with the same number of partitions every key hashes where it
             * did, so a partition may skip what it applied already: the
             * replay from the smallest checkpoint then cannot run an
             * unversioned TRUNCATE's older rows in again */
            pl->skip_own = scan.in_range == pl->nparts && !scan.out_of_range;
            if (scan.n)
                sl_info("profile \"%s\": resuming from the smallest of %u partition "
                        "checkpoints",
                        pl->profile->name, scan.n);
            else
                sl_info("profile \"%s\": no checkpoint in the target, starting the initial "
                        "sync",
                        pl->profile->name);
            return 0;
        }
        if (st != SLUICE_RETRY || attempt > (unsigned)pl->profile->retry_count) {
            fail_instance(pl, &w->sink, "checkpoint_list");
            return -1;
        }
        struct sl_err err;
        sl_instance_error(&w->sink, "checkpoint_list", &err);
        uint64_t ms = backoff_ms(pl->profile, attempt, &w->rand_seed);
        sl_warn("%s; retry %u of %d in %.1f s", err.msg, attempt, pl->profile->retry_count,
                (double)ms / 1000.0);
        timed_wait(pl, ms, apply_interrupted);
        if (apply_interrupted(pl))
            return -1;
    }
}

/* ---- spill store setup -------------------------------------------------- */

struct leftovers {
    struct sl_pipeline *pl;
    size_t removed;
};

static int leftover_cb(void *arg, const char *id)
{
    struct leftovers *l = arg;
    if (sl_spill_ops(&l->pl->spill)->del(l->pl->spill.inst, id) == SLUICE_OK)
        l->removed++;
    return 0;
}

/* Load and start the profile's spill store: the one it names, or spill-fs
 * when that plugin is installed. 0, or -1 (the profile failed). */
static int setup_spill(struct sl_pipeline *pl)
{
    const struct sl_profile *p = pl->profile;
    struct sl_err err;
    const char *name = p->spill.name ? p->spill.name : "fs";
    if (sl_plugin_load(pl->opts.plugin_dir, SLUICE_KIND_SPILL, name, &pl->spill_loaded,
                       &err) != 0) {
        if (p->spill.name) {
            fail(pl, "%s", err.msg);
            return -1;
        }
        sl_warn("profile \"%s\": no spill store (%s); batches wait for retries in memory and "
                "batches above the transport's limit fail",
                p->name, err.msg);
        return 0;
    }
    pl->spill_is_loaded = true;
    struct sl_ctx_hooks hooks = {.arg = pl,
                                 .stopping = hook_source_stopping,
                                 .wait = hook_source_wait,
                                 .counter_add = hook_counter_add};
    if (init_instance(pl, &pl->spill, &pl->spill_loaded, &p->spill, 0, &hooks) != 0)
        return -1;
    pl->spill_inited = true;
    if (start_with_retry(pl, &pl->spill, "spill start") != 0)
        return -1;
    /* blobs of an earlier run: their batches are after the target's
     * checkpoint, so the source sends them again */
    struct leftovers l = {.pl = pl};
    if (sl_spill_ops(&pl->spill)->list(pl->spill.inst, leftover_cb, &l) != SLUICE_OK) {
        fail_instance(pl, &pl->spill, "list");
        return -1;
    }
    if (l.removed) {
        sl_info("profile \"%s\": removed %zu spill blobs left by an earlier run; their batches "
                "are replayed from the target's checkpoint",
                p->name, l.removed);
        count(pl, NULL, "spill_leftovers_removed", (int64_t)l.removed);
    }
    return 0;
}

static void teardown_spill(struct sl_pipeline *pl)
{
    if (pl->spill_inited) {
        if (pl->spill.started)
            sl_instance_stop(&pl->spill);
        sl_instance_destroy(&pl->spill);
        pl->spill_inited = false;
    }
    if (pl->spill_is_loaded) {
        sl_plugin_unload(&pl->spill_loaded);
        pl->spill_is_loaded = false;
    }
}

static int setup(struct sl_pipeline *pl)
{
    const struct sl_profile *p = pl->profile;
    const char *tr_name = p->transport.name ? p->transport.name : "memory";
    if (pl->plugin_state_dir && sl_mkdir_p(pl->plugin_state_dir, 0700) != 0) {
        fail(pl, "cannot create %s: %s", pl->plugin_state_dir, strerror(errno));
        return -1;
    }
    if (load_plugin(pl, 0, SLUICE_KIND_SOURCE, p->source.name, pl->opts.source_plugin,
                    &pl->src_plugin) != 0 ||
        load_plugin(pl, 1, SLUICE_KIND_TRANSPORT, tr_name, pl->opts.transport_plugin,
                    &pl->tr_plugin) != 0 ||
        load_plugin(pl, 2, SLUICE_KIND_SINK, p->sink.name, pl->opts.sink_plugin,
                    &pl->sink_plugin) != 0)
        return -1;

    struct sl_ctx_hooks source_hooks = {.arg = pl,
                                        .emit = hook_emit,
                                        .stopping = hook_source_stopping,
                                        .wait = hook_source_wait,
                                        .progress = hook_progress,
                                        .counter_add = hook_counter_add,
                                        .record_failed = hook_record_failed,
                                        .entity_declared = hook_entity_declared};
    struct sl_ctx_hooks transport_hooks = {.arg = pl,
                                           .stopping = hook_source_stopping,
                                           .wait = hook_source_wait,
                                           .counter_add = hook_counter_add};
    struct sl_ctx_hooks sink_hooks = {.arg = pl,
                                      .stopping = hook_apply_stopping,
                                      .wait = hook_apply_wait,
                                      .counter_add = hook_counter_add,
                                      .record_failed = hook_record_failed};

    if (init_instance(pl, &pl->transport, pl->tr_plugin, &p->transport, 0, &transport_hooks) != 0)
        return -1;
    pl->transport_inited = true;
    for (uint32_t i = 0; i < pl->nparts; i++) {
        struct worker *w = &pl->workers[i];
        if (init_instance(pl, &w->sink, pl->sink_plugin, &p->sink, i, &sink_hooks) != 0)
            return -1;
        w->sink_inited = true;
        w->batch = sl_batch_new(p->batch_rows, p->batch_bytes);
    }
    if (init_instance(pl, &pl->source, pl->src_plugin, &p->source, 0, &source_hooks) != 0)
        return -1;
    pl->source_inited = true;

    if (start_with_retry(pl, &pl->transport, "transport start") != 0)
        return -1;
    const struct sluice_transport_ops *tops = sl_transport_ops(&pl->transport);
    pl->max_message = tops->max_message_size(pl->transport.inst);
    /* in process: references instead of encoded copies, unless spill_threshold
     * asks for the claim check, which works on encoded batches */
    pl->local = tops->struct_size >= offsetof(struct sluice_transport_ops, flags) +
                                         sizeof tops->flags &&
                tops->flags && (tops->flags(pl->transport.inst) & SLUICE_TRANSPORT_IN_PROCESS) &&
                !p->spill_threshold;
    if (setup_spill(pl) != 0)
        return -1;
    for (uint32_t i = 0; i < pl->nparts; i++)
        if (start_with_retry(pl, &pl->workers[i].sink, "sink start") != 0)
            return -1;
    if (start_with_retry(pl, &pl->source, "source start") != 0)
        return -1;
    if (read_checkpoints(pl) != 0)
        return -1;
    if (sl_source_ops(&pl->source)->describe(pl->source.inst) != SLUICE_OK) {
        fail_instance(pl, &pl->source, "describe");
        return -1;
    }
    return 0;
}

/* After the threads ended: the shared batches nobody finished (a run that
 * failed or stopped with messages queued) */
static void free_locals(struct sl_pipeline *pl)
{
    for (uint32_t i = 0; i < pl->nparts; i++) {
        if (pl->workers[i].local && pl->workers[i].batch)
            sl_batch_reset(pl->workers[i].batch);
        pl->workers[i].local = NULL;
    }
    pthread_mutex_lock(&pl->local_lock);
    struct local_batch *lb = pl->locals;
    pl->locals = NULL;
    pthread_mutex_unlock(&pl->local_lock);
    while (lb) {
        struct local_batch *next = lb->next;
        local_free(lb);
        lb = next;
    }
}

static void teardown(struct sl_pipeline *pl)
{
    free_locals(pl);
    if (pl->source_inited) {
        if (pl->source.started)
            sl_instance_stop(&pl->source);
        sl_instance_destroy(&pl->source);
        pl->source_inited = false;
    }
    for (uint32_t i = 0; i < pl->nparts; i++) {
        struct worker *w = &pl->workers[i];
        if (w->sink_inited) {
            if (w->sink.started)
                sl_instance_stop(&w->sink);
            sl_instance_destroy(&w->sink);
            w->sink_inited = false;
        }
    }
    if (pl->transport_inited) {
        if (pl->transport.started)
            sl_instance_stop(&pl->transport);
        sl_instance_destroy(&pl->transport);
        pl->transport_inited = false;
    }
    teardown_spill(pl);
    for (int i = 0; i < 3; i++) {
        if (pl->is_loaded[i])
            sl_plugin_unload(&pl->loaded[i]);
        pl->is_loaded[i] = false;
    }
}

static bool drained(struct sl_pipeline *pl)
{
    for (uint32_t p = 0; p < pl->nparts; p++)
        if (pl->applied[p] < pl->published_seq)
            return false;
    return true;
}

int sl_pipeline_run(struct sl_pipeline *pl)
{
    const char *name = pl->profile->name;
    int result = SL_PIPELINE_FAILED;
    pl->started_us = sl_now_mono_us();
    sl_state_profile_set(pl->opts.state, name, true, "running", NULL);
    sl_info("profile \"%s\": starting (%s, %u workers)", name,
            pl->opts.run_mode == SLUICE_RUN_ONCE ? "once" : "service", pl->nparts);
    if (setup(pl) != 0)
        goto out;

    for (uint32_t i = 0; i < pl->nparts; i++) {
        struct worker *w = &pl->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            fail(pl, "cannot start apply worker %u: %s", i, strerror(errno));
            goto out;
        }
        w->thread_started = true;
    }
    if (pthread_create(&pl->source_thread, NULL, source_main, pl) != 0) {
        fail(pl, "cannot start the source thread: %s", strerror(errno));
        goto out;
    }
    pl->source_thread_started = true;

    /* wait for the source to finish and the workers to apply what it published */
    pthread_mutex_lock(&pl->lock);
    while (!atomic_load(&pl->failed) && !atomic_load(&pl->aborted) &&
           !(pl->source_finished && drained(pl))) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&pl->cond, &pl->lock, &ts);
    }
    bool completed = pl->source_completed && drained(pl);
    pthread_mutex_unlock(&pl->lock);
    if (!atomic_load(&pl->failed))
        result = completed && pl->opts.run_mode == SLUICE_RUN_ONCE ? SL_PIPELINE_DONE
                                                                   : SL_PIPELINE_STOPPED;
out:
    atomic_store(&pl->stop_source, true);
    atomic_store(&pl->stop_workers, true);
    wake_all(pl);
    if (pl->source_thread_started)
        pthread_join(pl->source_thread, NULL);
    pl->source_thread_started = false;
    for (uint32_t i = 0; i < pl->nparts; i++) {
        if (pl->workers[i].thread_started)
            pthread_join(pl->workers[i].thread, NULL);
        pl->workers[i].thread_started = false;
    }
    teardown(pl);
    if (atomic_load(&pl->failed))
        result = SL_PIPELINE_FAILED;
    pl->ended_us = sl_now_mono_us();
    static const char *const status[] = {"done", "stopped", "failed"};
    sl_state_profile_set(pl->opts.state, name, true, status[result],
                         result == SL_PIPELINE_FAILED ? pl->error : NULL);
    atomic_store(&pl->finished, true);
    wake_all(pl);
    return result;
}

void sl_pipeline_stop(struct sl_pipeline *pl)
{
    atomic_store(&pl->stop_source, true);
    wake_all(pl);
}

void sl_pipeline_abort(struct sl_pipeline *pl)
{
    atomic_store(&pl->aborted, true);
    atomic_store(&pl->stop_source, true);
    atomic_store(&pl->stop_workers, true);
    wake_all(pl);
}

bool sl_pipeline_finished(struct sl_pipeline *pl)
{
    return atomic_load(&pl->finished);
}

const char *sl_pipeline_error(const struct sl_pipeline *pl)
{
    return pl->error;
}

const char *sl_pipeline_name(const struct sl_pipeline *pl)
{
    return pl->profile->name;
}

uint64_t sl_pipeline_elapsed_us(const struct sl_pipeline *pl)
{
    if (!pl->started_us)
        return 0;
    return (pl->ended_us ? pl->ended_us : sl_now_mono_us()) - pl->started_us;
}

void sl_pipeline_free(struct sl_pipeline *pl)
{
    if (!pl)
        return;
    for (uint32_t i = 0; i < pl->nparts; i++) {
        if (pl->workers[i].batch)
            sl_batch_free(pl->workers[i].batch);
        sl_buf_free(&pl->workers[i].text);
        sl_buf_free(&pl->workers[i].parked_ids);
        sl_buf_free(&pl->workers[i].park_msg);
    }
    free(pl->workers);
    free(pl->applied);
    free(pl->own_cp);
    free(pl->ring);
    free(pl->prepared);
    free(pl->event_part);
    sl_buf_free(&pl->msg);
    sl_buf_free(&pl->ref_msg);
    pthread_mutex_destroy(&pl->spill_lock);
    pthread_mutex_destroy(&pl->emit_lock);
    pthread_mutex_destroy(&pl->local_lock);
    free(pl->plugin_state_dir);
    pthread_cond_destroy(&pl->cond);
    pthread_mutex_destroy(&pl->prepare_lock);
    pthread_mutex_destroy(&pl->lock);
    free(pl);
}
