/*
 * host.c - the host API table (struct sluice_host) every plugin calls through.
 *
 * The generic members are implemented here (messages, schema copies, batches,
 * value text); the members only a running pipeline can answer are forwarded
 * to the hooks it installed in the context, with safe answers outside a run.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "instance.h"
#include "log.h"
#include "value_text.h"

#define SL_DEFAULT_BATCH_ROWS 5000u
#define SL_DEFAULT_BATCH_BYTES (8u << 20)

static void host_log(struct sluice_ctx *ctx, int level, const char *fmt, ...)
{
    char prefix[sizeof ctx->label + 2];
    if (level < SLUICE_LOG_ERROR)
        level = SLUICE_LOG_ERROR;
    if (level > SLUICE_LOG_DEBUG)
        level = SLUICE_LOG_DEBUG;
    snprintf(prefix, sizeof prefix, "%s: ", ctx && ctx->label[0] ? ctx->label : "plugin");
    va_list ap;
    va_start(ap, fmt);
    sl_vlog(level, prefix, fmt, ap);
    va_end(ap);
}

static void host_set_error(struct sluice_ctx *ctx, const char *fmt, ...)
{
    if (!ctx)
        return;
    char msg[sizeof ctx->error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* a source's snapshot threads may fail at the same time */
    pthread_mutex_lock(&ctx->lock);
    memcpy(ctx->error, msg, sizeof msg);
    pthread_mutex_unlock(&ctx->lock);
}

static void host_counter_add(struct sluice_ctx *ctx, const char *entity, const char *name,
                             int64_t delta)
{
    if (ctx && ctx->hooks.counter_add)
        ctx->hooks.counter_add(ctx->hooks.arg, entity, name, delta);
}

static const struct sluice_entity *host_entity_declare(struct sluice_ctx *ctx,
                                                       const struct sluice_entity *desc)
{
    char why[512];
    struct sluice_entity *copy = NULL;
    const struct sluice_entity *result = NULL;

    if (!desc) {
        host_set_error(ctx, "entity_declare: description is NULL");
        return NULL;
    }
    if (sl_entity_validate(desc, why, sizeof why) != 0) {
        host_set_error(ctx, "entity_declare: entity \"%s\": %s", desc->name ? desc->name : "?",
                       why);
        return NULL;
    }
    uint64_t fp = sl_entity_fingerprint(desc);
    const char *ns = desc->ns ? desc->ns : "";

    pthread_mutex_lock(&ctx->lock);
    size_t i;
    for (i = 0; i < ctx->nentities; i++) {
        const struct sluice_entity *e = ctx->entities[i];
        if (strcmp(e->ns ? e->ns : "", ns) == 0 && strcmp(e->name, desc->name) == 0)
            break;
    }
    if (i < ctx->nentities && ctx->fingerprints[i] == fp) {
        result = ctx->entities[i]; /* the same schema again */
        pthread_mutex_unlock(&ctx->lock);
        return result;
    }
    copy = sl_entity_clone(&ctx->schema_arena, desc);
    if (!copy) {
        pthread_mutex_unlock(&ctx->lock);
        host_set_error(ctx, "entity_declare: out of memory copying entity \"%s\"", desc->name);
        return NULL;
    }
    if (i < ctx->nentities) {
        /* a changed schema: same id, next version; the old copy stays valid
         * (batches in flight still point at it) until the instance dies */
        copy->id = ctx->entities[i]->id;
        copy->schema_version = ctx->entities[i]->schema_version + 1;
    } else {
        if (ctx->nentities == ctx->cap_entities) {
            size_t cap = ctx->cap_entities ? ctx->cap_entities * 2 : 8;
            const struct sluice_entity **ents = realloc(ctx->entities, cap * sizeof *ents);
            uint64_t *fps = ents ? realloc(ctx->fingerprints, cap * sizeof *fps) : NULL;
            if (ents)
                ctx->entities = ents;
            if (fps)
                ctx->fingerprints = fps;
            if (!ents || !fps) {
                pthread_mutex_unlock(&ctx->lock);
                host_set_error(ctx, "entity_declare: out of memory");
                return NULL;
            }
            ctx->cap_entities = cap;
        }
        copy->id = (uint32_t)ctx->nentities + 1; /* ids start at 1; 0 means "none" */
        copy->schema_version = 1;
        ctx->nentities++;
    }
    ctx->entities[i] = copy;
    ctx->fingerprints[i] = fp;
    result = copy;
    pthread_mutex_unlock(&ctx->lock);

    if (ctx->hooks.entity_declared)
        ctx->hooks.entity_declared(ctx->hooks.arg, result);
    return result;
}

static struct sluice_batch *host_batch_new(struct sluice_ctx *ctx)
{
    uint32_t rows = ctx && ctx->batch_rows ? ctx->batch_rows : SL_DEFAULT_BATCH_ROWS;
    uint64_t bytes = ctx && ctx->batch_bytes ? ctx->batch_bytes : SL_DEFAULT_BATCH_BYTES;
    struct sl_batch *b = sl_batch_new(rows, bytes);
    if (!b)
        return NULL;
    b->owner = ctx;
    b->linger_ms = ctx ? ctx->batch_linger_ms : 0;
    return &b->pub;
}

static struct sluice_event *host_batch_append(struct sluice_batch *b,
                                              const struct sluice_entity *e, int op)
{
    return sl_batch_append(sl_batch_of(b), e, op);
}

static void *host_batch_alloc(struct sluice_batch *b, size_t len)
{
    return sl_batch_alloc(sl_batch_of(b), len);
}

static const char *host_batch_copy(struct sluice_batch *b, const void *ptr, size_t len)
{
    return sl_batch_copy(sl_batch_of(b), ptr, len);
}

static bool host_batch_full(const struct sluice_batch *b)
{
    return sl_batch_full((const struct sl_batch *)b);
}

static void host_batch_discard(struct sluice_batch *b)
{
    if (b)
        sl_batch_free(sl_batch_of(b));
}

static int host_value_parse(struct sluice_ctx *ctx, struct sluice_batch *b,
                            const struct sluice_column *col, const char *text, size_t len,
                            struct sluice_value *out)
{
    char why[512];
    if (sl_value_parse(col, text, len, sl_batch_of(b), out, why, sizeof why) != 0) {
        host_set_error(ctx, "%s", why);
        return SLUICE_ERR;
    }
    return SLUICE_OK;
}

static size_t host_value_format(const struct sluice_column *col, const struct sluice_value *v,
                                char *buf, size_t cap)
{
    return sl_value_format(col, v, buf, cap);
}

static int host_emit(struct sluice_ctx *ctx, struct sluice_batch *b)
{
    if (ctx->hooks.emit)
        return ctx->hooks.emit(ctx->hooks.arg, sl_batch_of(b));
    /* the host takes the batch whatever happens */
    host_batch_discard(b);
    host_set_error(ctx, "emit: not running (no pipeline is attached to this instance)");
    return SLUICE_ERR;
}

static bool host_stopping(struct sluice_ctx *ctx)
{
    if (ctx->hooks.stopping)
        return ctx->hooks.stopping(ctx->hooks.arg);
    return true;
}

static int host_wait(struct sluice_ctx *ctx, uint32_t ms)
{
    if (ctx->hooks.wait)
        return ctx->hooks.wait(ctx->hooks.arg, ms);
    return SLUICE_STOPPED;
}

static void host_progress(struct sluice_ctx *ctx, const struct sluice_entity *e, uint64_t done,
                          uint64_t estimate)
{
    if (ctx->hooks.progress)
        ctx->hooks.progress(ctx->hooks.arg, e, done, estimate);
}

static void host_record_failed(struct sluice_ctx *ctx, const struct sluice_entity *e,
                               const char *record_id, const char *where, const char *reason)
{
    if (ctx->hooks.record_failed)
        ctx->hooks.record_failed(ctx->hooks.arg, e, record_id, where, reason);
}

static const struct sluice_host host_api = {
    .struct_size = sizeof(struct sluice_host),
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .log = host_log,
    .set_error = host_set_error,
    .counter_add = host_counter_add,
    .entity_declare = host_entity_declare,
    .batch_new = host_batch_new,
    .batch_append = host_batch_append,
    .batch_alloc = host_batch_alloc,
    .batch_copy = host_batch_copy,
    .batch_full = host_batch_full,
    .batch_discard = host_batch_discard,
    .value_parse = host_value_parse,
    .value_format = host_value_format,
    .emit = host_emit,
    .stopping = host_stopping,
    .wait = host_wait,
    .progress = host_progress,
    .record_failed = host_record_failed,
};

const struct sluice_host *sl_host_api(void)
{
    return &host_api;
}
