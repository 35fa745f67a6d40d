/*
 * source_counter.c - the example source plugin of the sluice SDK.
 *
 * Emits `rows` rows of one entity, "numbers" (id int64 key, square int64,
 * label text), as an initial sync. It shows everything a source needs:
 *
 *  - the entry function and the descriptor (what the loader checks),
 *  - a config spec (the host validates the profile's keys and fills struct
 *    counter_config before init is called),
 *  - the lifecycle: init validates, start/stop would connect/disconnect,
 *    destroy frees,
 *  - describe(): declaring the entity's schema to the host,
 *  - run(): building batches in host memory and emitting them with a
 *    position, so that a restart resumes after the last durable row.
 *
 * Profile:
 *   source = { plugin = "counter"; rows = 100000; };
 *   entities = ["numbers"];
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

/* ---- configuration ----------------------------------------------------------
 * The host fills this struct from the profile's `source = { ... }` section
 * using the spec below: unknown keys, wrong types and missing required keys
 * are reported by the host with file:line, before init runs. */
struct counter_config {
    int64_t rows;
};

static const struct sluice_config_item counter_spec[] = {
    {"rows", SLUICE_CFG_INT, 0, "1000", offsetof(struct counter_config, rows),
     "how many rows the entity 'numbers' has"},
};

/* ---- the instance -----------------------------------------------------------
 * One per profile. The host and ctx pointers are kept for every later call:
 * ctx identifies this instance to the host (labels messages, holds the
 * error buffer, owns the entity copies). */
struct counter {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    int64_t rows;
    const struct sluice_entity *numbers; /* the host's copy, from describe() */
};

/* Columns of "numbers": the host copies them in entity_declare, so static
 * storage (or the stack) is fine here. */
static const struct sluice_column numbers_columns[] = {
    {.name = "id", .type = SLUICE_T_INT64, .flags = SLUICE_COL_KEY},
    {.name = "square", .type = SLUICE_T_INT64},
    {.name = "label", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE},
};
static const uint32_t numbers_key[] = {0};

/* init - validate the config, allocate the instance. No I/O: `sluice check`
 * calls init and destroy only. */
static int counter_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                        const struct sluice_init_args *args, void **inst)
{
    const struct counter_config *cfg = args->config;
    if (cfg->rows < 0) {
        /* the message goes into the host's buffer; the host adds the
         * profile and plugin when it reports it */
        host->set_error(ctx, "rows = %" PRId64 " is negative; give 0 or more", cfg->rows);
        return SLUICE_ERR;
    }
    /* the profile may only ask for entities this source has */
    for (uint32_t i = 0; i < args->nentities; i++) {
        if (strcmp(args->entities[i], "numbers") != 0) {
            host->set_error(ctx, "unknown entity \"%s\": this source only has \"numbers\"",
                            args->entities[i]);
            return SLUICE_ERR;
        }
    }
    struct counter *c = calloc(1, sizeof *c);
    if (!c)
        return SLUICE_NOMEM;
    c->host = host;
    c->ctx = ctx;
    c->rows = cfg->rows;
    *inst = c;
    return SLUICE_OK;
}

/* start/stop - a real source connects and disconnects here. */
static int counter_start(void *inst)
{
    (void)inst;
    return SLUICE_OK;
}

static void counter_stop(void *inst)
{
    (void)inst;
}

static void counter_destroy(void *inst)
{
    free(inst);
}

/* describe - declare the schema. The returned pointer is the host's copy,
 * valid until destroy; events must point at it. */
static int counter_describe(void *inst)
{
    struct counter *c = inst;
    const struct sluice_entity desc = {
        .ns = "",
        .name = "numbers",
        .ncolumns = 3,
        .columns = numbers_columns,
        .nkeys = 1,
        .key_columns = numbers_key,
    };
    c->numbers = c->host->entity_declare(c->ctx, &desc);
    return c->numbers ? SLUICE_OK : SLUICE_ERR; /* the host set the error text */
}

/* The position after row `id`: 8 bytes big-endian, so positions order with
 * memcmp as the host requires. */
static void position_after(struct sluice_position *pos, int64_t id)
{
    pos->len = 8;
    sluice_put_be64(pos->bytes, (uint64_t)id);
}

/* Hand a batch to the host (which takes it back in every case). */
static int emit_batch(struct counter *c, struct sluice_batch *b, int64_t last_id)
{
    position_after(&b->position, last_id);
    b->flags |= SLUICE_BATCH_SNAPSHOT;
    c->host->progress(c->ctx, c->numbers, (uint64_t)last_id, (uint64_t)c->rows);
    return c->host->emit(c->ctx, b);
}

/* run - emit rows after `resume`. Everything after the resume position must
 * be emitted again; the target ignores replays (version guard). */
static int counter_run(void *inst, const struct sluice_position *resume, int mode)
{
    struct counter *c = inst;
    int64_t id = 0; /* last row already durable in the target */
    if (resume->len == 8)
        id = (int64_t)sluice_get_be64(resume->bytes);

    struct sluice_batch *b = NULL;
    int st = SLUICE_OK;
    while (id < c->rows) {
        if (!b && !(b = c->host->batch_new(c->ctx)))
            return SLUICE_NOMEM;
        id++;
        /* values: one per column, all ABSENT until set; the event pointer is
         * valid only until the next batch_append */
        struct sluice_event *ev = c->host->batch_append(b, c->numbers, SLUICE_OP_READ);
        if (!ev) {
            c->host->batch_discard(b);
            return SLUICE_NOMEM;
        }
        ev->version = 1; /* rows never change: every copy is the same version */
        sluice_value_set_int(&ev->values[0], id);
        sluice_value_set_int(&ev->values[1], id * id);
        char label[32];
        int n = snprintf(label, sizeof label, "number %" PRId64, id);
        /* varlen values must live in the batch arena */
        const char *copy = c->host->batch_copy(b, label, (size_t)n);
        if (!copy) {
            c->host->batch_discard(b);
            return SLUICE_NOMEM;
        }
        sluice_value_set_ref(&ev->values[2], copy, (uint32_t)n);

        if (c->host->batch_full(b) || id == c->rows) {
            st = emit_batch(c, b, id);
            b = NULL; /* the host owns it now */
            if (st != SLUICE_OK)
                return st; /* SLUICE_STOPPED: return promptly */
        }
    }

    if (mode == SLUICE_RUN_FOLLOW) {
        /* no changes ever come; wait politely until the host stops us */
        while (c->host->wait(c->ctx, 1000) == SLUICE_OK)
            ;
        return SLUICE_STOPPED;
    }
    return SLUICE_OK;
}

static const struct sluice_source_ops counter_ops = {
    .struct_size = sizeof(struct sluice_source_ops),
    .describe = counter_describe,
    .run = counter_run,
    /* ack, fetch and drop are optional: nothing to release, refetch or drop */
};

static const struct sluice_plugin counter_plugin = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin),
    .kind = SLUICE_KIND_SOURCE,
    .name = "counter", /* must match the file name: source-counter.so */
    .version = "1.0.0",
    .description = "example source: rows of squares",
    .config = counter_spec,
    .nconfig = sizeof counter_spec / sizeof counter_spec[0],
    .config_size = sizeof(struct counter_config),
    .init = counter_init,
    .start = counter_start,
    .stop = counter_stop,
    .destroy = counter_destroy,
    .ops = &counter_ops,
};

/* The only exported symbol. A function, not a data symbol: dlsym on data is
 * not portable, and the function can build the descriptor lazily if needed. */
SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entry(void)
{
    return &counter_plugin;
}
