/*
 * transport-memory - the default transport: per partition a bounded ring of
 * message copies in this process. Not durable (a crash loses what is queued,
 * which the at-least-once pipeline replays from the target's checkpoint).
 *
 * Bounds: `capacity` messages (queued + the one in flight) and `max_bytes`
 * per partition; publish blocks while either is reached, which is how
 * backpressure reaches the source. One message per partition is in flight
 * (delivered, not yet acked) at a time.
 *
 * Messages never leave the process, so the transport says
 * SLUICE_TRANSPORT_IN_PROCESS: the host publishes references to its batches,
 * not encoded copies. `serialize = true` turns that off (the host then
 * encodes every batch, as for a broker: tests of the wire path and the claim
 * check use it).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sluice/sluice.h>

#define MT_POLL_MS 200 /* publish re-checks host->stopping() this often */

struct mt_config {
    int64_t capacity;
    int64_t max_bytes;
    int64_t max_message_size;
    bool serialize;
};

struct mt_msg {
    void *data;
    size_t len;
    uint32_t attempt;
};

struct mt_part {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a message arrived, left, or was acked */
    struct mt_msg *ring;
    size_t head, count; /* queued messages */
    bool inflight;
    struct mt_msg cur;      /* the delivered, unacked message */
    uint64_t bytes;         /* queued + in flight */
    uint64_t not_before_us; /* after a nack: deliver no earlier than this */
    uint32_t index;
};

struct mt {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    struct mt_config cfg;
    uint32_t nparts;
    struct mt_part *parts;
};

static const struct sluice_config_item mt_config_items[] = {
    {"capacity", SLUICE_CFG_INT, 0, "4", offsetof(struct mt_config, capacity),
     "messages (batches) per partition queue, in flight included"},
    {"max_bytes", SLUICE_CFG_INT, 0, "67108864", offsetof(struct mt_config, max_bytes),
     "bytes per partition queue"},
    {"max_message_size", SLUICE_CFG_INT, 0, "268435456",
     offsetof(struct mt_config, max_message_size), "largest message accepted, in bytes"},
    {"serialize", SLUICE_CFG_BOOL, 0, "false", offsetof(struct mt_config, serialize),
     "carry encoded batches like a broker would (default: references to in-memory batches)"},
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Wait on p->changed until at most deadline (monotonic us). */
static void part_wait_until(struct mt_part *p, uint64_t deadline_us)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_us / 1000000u),
                          .tv_nsec = (long)(deadline_us % 1000000u) * 1000};
    pthread_cond_timedwait(&p->changed, &p->lock, &ts);
}

static int mt_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                   const struct sluice_init_args *args, void **inst)
{
    const struct mt_config *cfg = args->config;
    struct mt *t = NULL;
    int rc = SLUICE_ERR;
    if (cfg->capacity < 1 || cfg->capacity > 1000000) {
        host->set_error(ctx, "capacity must be between 1 and 1000000 (got %lld)",
                        (long long)cfg->capacity);
        goto out;
    }
    if (cfg->max_bytes < 1 || cfg->max_message_size < 0) {
        host->set_error(ctx, "max_bytes must be positive and max_message_size >= 0");
        goto out;
    }
    rc = SLUICE_NOMEM;
    t = calloc(1, sizeof *t);
    if (!t)
        goto out;
    t->host = host;
    t->ctx = ctx;
    t->cfg = *cfg;
    t->nparts = args->partitions ? args->partitions : 1;
    t->parts = calloc(t->nparts, sizeof *t->parts);
    if (!t->parts)
        goto out;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (uint32_t i = 0; i < t->nparts; i++) {
        struct mt_part *p = &t->parts[i];
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->changed, &ca);
        p->index = i;
        p->ring = calloc((size_t)cfg->capacity, sizeof *p->ring);
        if (!p->ring) {
            pthread_condattr_destroy(&ca);
            goto out;
        }
    }
    pthread_condattr_destroy(&ca);
    *inst = t;
    t = NULL;
    rc = SLUICE_OK;
out:
    if (t) {
        if (t->parts) {
            for (uint32_t i = 0; i < t->nparts; i++)
                free(t->parts[i].ring);
            free(t->parts);
        }
        free(t);
    }
    if (rc == SLUICE_NOMEM)
        host->set_error(ctx, "out of memory allocating the queues");
    return rc;
}

static int mt_start(void *inst)
{
    (void)inst;
    return SLUICE_OK;
}

static void mt_stop(void *inst)
{
    (void)inst;
}

static void mt_destroy(void *inst)
{
    struct mt *t = inst;
    for (uint32_t i = 0; i < t->nparts; i++) {
        struct mt_part *p = &t->parts[i];
        for (size_t k = 0; k < p->count; k++)
            free(p->ring[(p->head + k) % (size_t)t->cfg.capacity].data);
        if (p->inflight)
            free(p->cur.data);
        free(p->ring);
        pthread_cond_destroy(&p->changed);
        pthread_mutex_destroy(&p->lock);
    }
    free(t->parts);
    free(t);
}

static size_t mt_max_message_size(void *inst)
{
    struct mt *t = inst;
    return (size_t)t->cfg.max_message_size;
}

static bool part_full(const struct mt *t, const struct mt_part *p, size_t len)
{
    size_t used = p->count + (p->inflight ? 1 : 0);
    if (used >= (size_t)t->cfg.capacity)
        return true;
    /* an oversized message still goes through an empty queue */
    return used > 0 && p->bytes + len > (uint64_t)t->cfg.max_bytes;
}

static int mt_publish(void *inst, uint32_t partition, const void *data, size_t len)
{
    struct mt *t = inst;
    if (partition >= t->nparts) {
        t->host->set_error(t->ctx, "publish to partition %u, but there are only %u", partition,
                           t->nparts);
        return SLUICE_ERR;
    }
    if (t->cfg.max_message_size > 0 && len > (size_t)t->cfg.max_message_size) {
        t->host->set_error(t->ctx, "message of %zu bytes exceeds max_message_size %lld", len,
                           (long long)t->cfg.max_message_size);
        return SLUICE_ERR;
    }
    void *copy = malloc(len ? len : 1);
    if (!copy) {
        t->host->set_error(t->ctx, "out of memory copying a message of %zu bytes", len);
        return SLUICE_NOMEM;
    }
    if (len)
        memcpy(copy, data, len);

    struct mt_part *p = &t->parts[partition];
    int rc = SLUICE_OK;
    pthread_mutex_lock(&p->lock);
    while (part_full(t, p, len)) {
        if (t->host->stopping(t->ctx)) {
            rc = SLUICE_STOPPED;
            goto out;
        }
        part_wait_until(p, mono_us() + MT_POLL_MS * 1000u);
    }
    size_t tail = (p->head + p->count) % (size_t)t->cfg.capacity;
    p->ring[tail] = (struct mt_msg){.data = copy, .len = len, .attempt = 1};
    p->count++;
    p->bytes += len;
    copy = NULL;
    pthread_cond_broadcast(&p->changed);
out:
    pthread_mutex_unlock(&p->lock);
    free(copy);
    return rc;
}

static int mt_consume(void *inst, uint32_t partition, uint32_t timeout_ms,
                      struct sluice_message *out)
{
    struct mt *t = inst;
    if (partition >= t->nparts) {
        t->host->set_error(t->ctx, "consume from partition %u, but there are only %u",
                           partition, t->nparts);
        return SLUICE_ERR;
    }
    struct mt_part *p = &t->parts[partition];
    uint64_t deadline = mono_us() + (uint64_t)timeout_ms * 1000u;
    int rc = SLUICE_AGAIN;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        uint64_t now = mono_us();
        if (!p->inflight && p->count > 0 && now >= p->not_before_us)
            break;
        if (now >= deadline)
            goto out;
        uint64_t until = deadline;
        if (!p->inflight && p->count > 0 && p->not_before_us < until)
            until = p->not_before_us;
        part_wait_until(p, until);
    }
    p->cur = p->ring[p->head];
    p->ring[p->head] = (struct mt_msg){0};
    p->head = (p->head + 1) % (size_t)t->cfg.capacity;
    p->count--;
    p->inflight = true;
    *out = (struct sluice_message){.data = p->cur.data, .len = p->cur.len,
                                   .partition = partition, .attempt = p->cur.attempt,
                                   .handle = p};
    rc = SLUICE_OK;
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static struct mt_part *msg_part(struct mt *t, struct sluice_message *msg)
{
    struct mt_part *p = msg->handle;
    if (!p || msg->partition >= t->nparts || p != &t->parts[msg->partition])
        return NULL;
    return p;
}

static int mt_ack(void *inst, struct sluice_message *msg)
{
    struct mt *t = inst;
    struct mt_part *p = msg_part(t, msg);
    int rc = SLUICE_ERR;
    if (!p) {
        t->host->set_error(t->ctx, "ack of a message this transport did not deliver");
        return SLUICE_ERR;
    }
    pthread_mutex_lock(&p->lock);
    if (!p->inflight || p->cur.data != msg->data) {
        t->host->set_error(t->ctx, "ack on partition %u: no such message in flight",
                           msg->partition);
        goto out;
    }
    free(p->cur.data);
    p->bytes -= p->cur.len;
    p->cur = (struct mt_msg){0};
    p->inflight = false;
    pthread_cond_broadcast(&p->changed);
    rc = SLUICE_OK;
out:
    pthread_mutex_unlock(&p->lock);
    msg->handle = NULL;
    return rc;
}

static int mt_nack(void *inst, struct sluice_message *msg, uint32_t delay_ms)
{
    struct mt *t = inst;
    struct mt_part *p = msg_part(t, msg);
    int rc = SLUICE_ERR;
    if (!p) {
        t->host->set_error(t->ctx, "nack of a message this transport did not deliver");
        return SLUICE_ERR;
    }
    pthread_mutex_lock(&p->lock);
    if (!p->inflight || p->cur.data != msg->data) {
        t->host->set_error(t->ctx, "nack on partition %u: no such message in flight",
                           msg->partition);
        goto out;
    }
    /* back to the head: capacity counts the in-flight slot, so there is room */
    size_t cap = (size_t)t->cfg.capacity;
    p->head = (p->head + cap - 1) % cap;
    p->ring[p->head] = p->cur;
    p->ring[p->head].attempt++;
    p->count++;
    p->cur = (struct mt_msg){0};
    p->inflight = false;
    p->not_before_us = mono_us() + (uint64_t)delay_ms * 1000u;
    pthread_cond_broadcast(&p->changed);
    rc = SLUICE_OK;
out:
    pthread_mutex_unlock(&p->lock);
    msg->handle = NULL;
    return rc;
}

static size_t mt_depth(void *inst, uint32_t partition)
{
    struct mt *t = inst;
    if (partition >= t->nparts)
        return 0;
    struct mt_part *p = &t->parts[partition];
    pthread_mutex_lock(&p->lock);
    size_t n = p->count + (p->inflight ? 1 : 0);
    pthread_mutex_unlock(&p->lock);
    return n;
}

static uint32_t mt_flags(void *inst)
{
    struct mt *t = inst;
    return t->cfg.serialize ? 0 : SLUICE_TRANSPORT_IN_PROCESS;
}

static const struct sluice_transport_ops mt_ops = {
    .struct_size = sizeof(struct sluice_transport_ops),
    .max_message_size = mt_max_message_size,
    .publish = mt_publish,
    .consume = mt_consume,
    .ack = mt_ack,
    .nack = mt_nack,
    .depth = mt_depth,
    .flags = mt_flags,
};

static const struct sluice_plugin mt_plugin = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin),
    .kind = SLUICE_KIND_TRANSPORT,
    .name = "memory",
    .version = "1.0.0",
    .description = "bounded in-process queue per partition (default, not durable)",
    .config = mt_config_items,
    .nconfig = sizeof mt_config_items / sizeof mt_config_items[0],
    .config_size = sizeof(struct mt_config),
    .init = mt_init,
    .start = mt_start,
    .stop = mt_stop,
    .destroy = mt_destroy,
    .ops = &mt_ops,
};

SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entry(void)
{
    return &mt_plugin;
}
