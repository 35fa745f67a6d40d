/*
 * test_plugin.c - one source, built many times with -D switches into the
 * purpose-built .so files the loader tests load: a good plugin and one per
 * refusal (tests/plugins/CMakeLists.txt lists them).
 *
 *   TP_NAME           descriptor name (default "good")
 *   TP_ABI_MAJOR      descriptor abi_major (default SLUICE_ABI_MAJOR)
 *   TP_STRUCT_SIZE    descriptor struct_size (default sizeof)
 *   TP_NULL_INIT      init callback NULL
 *   TP_NULL_RUN       source ops 'run' NULL
 *   TP_SMALL_OPS      ops struct_size too small
 *   TP_NO_ENTRY       no entry function at all
 *
 * The good plugin has a config spec and declares one entity in describe(),
 * so instance tests can drive the host API through a real .so.
 */
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

#ifndef TP_NAME
#define TP_NAME "good"
#endif
#ifndef TP_ABI_MAJOR
#define TP_ABI_MAJOR SLUICE_ABI_MAJOR
#endif
#ifndef TP_STRUCT_SIZE
#define TP_STRUCT_SIZE sizeof(struct sluice_plugin)
#endif

struct tp_config {
    int64_t columns;  /* 2 or 3: lets a test change the entity's schema */
    bool fail_init;
    const char *token; /* a secret */
};

static const struct sluice_config_item tp_spec[] = {
    {"columns", SLUICE_CFG_INT, 0, "2", offsetof(struct tp_config, columns), "columns of 'things'"},
    {"fail_init", SLUICE_CFG_BOOL, 0, "false", offsetof(struct tp_config, fail_init),
     "make init fail"},
    {"token", SLUICE_CFG_SECRET, 0, NULL, offsetof(struct tp_config, token), "a secret"},
};

struct tp {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    struct tp_config cfg;
};

__attribute__((unused)) static int tp_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                   const struct sluice_init_args *args, void **inst)
{
    const struct tp_config *cfg = args->config;
    if (cfg->fail_init) {
        host->set_error(ctx, "fail_init is set (profile %s, %u entities)", args->profile,
                        args->nentities);
        return SLUICE_ERR;
    }
    struct tp *t = calloc(1, sizeof *t);
    if (!t)
        return SLUICE_NOMEM;
    t->host = host;
    t->ctx = ctx;
    t->cfg = *cfg;
    *inst = t;
    return SLUICE_OK;
}

static int tp_start(void *inst) { (void)inst; return SLUICE_OK; }
static void tp_stop(void *inst) { (void)inst; }
static void tp_destroy(void *inst) { free(inst); }

static int tp_describe(void *inst)
{
    struct tp *t = inst;
    struct sluice_column cols[3] = {
        {.name = "id", .type = SLUICE_T_INT64, .flags = SLUICE_COL_KEY},
        {.name = "label", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE},
        {.name = "extra", .type = SLUICE_T_BOOL, .flags = SLUICE_COL_NULLABLE},
    };
    uint32_t key = 0;
    struct sluice_entity e = {.ns = "", .name = "things",
                              .ncolumns = t->cfg.columns == 3 ? 3 : 2, .columns = cols,
                              .nkeys = 1, .key_columns = &key};
    return t->host->entity_declare(t->ctx, &e) ? SLUICE_OK : SLUICE_ERR;
}

__attribute__((unused)) static int tp_run(void *inst, const struct sluice_position *resume, int mode)
{
    (void)inst; (void)resume; (void)mode;
    return SLUICE_OK;
}

static const struct sluice_source_ops tp_ops = {
#ifdef TP_SMALL_OPS
    .struct_size = sizeof(uint32_t),
#else
    .struct_size = sizeof(struct sluice_source_ops),
#endif
    .describe = tp_describe,
#ifndef TP_NULL_RUN
    .run = tp_run,
#endif
};

static const struct sluice_plugin tp_plugin = {
    .abi_major = TP_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = TP_STRUCT_SIZE,
    .kind = SLUICE_KIND_SOURCE,
    .name = TP_NAME,
    .version = "0.0.1",
    .description = "loader test plugin",
    .config = tp_spec,
    .nconfig = sizeof tp_spec / sizeof tp_spec[0],
    .config_size = sizeof(struct tp_config),
#ifndef TP_NULL_INIT
    .init = tp_init,
#endif
    .start = tp_start,
    .stop = tp_stop,
    .destroy = tp_destroy,
    .ops = &tp_ops,
};

#ifndef TP_NO_ENTRY
SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entry(void)
{
    return &tp_plugin;
}
#else
/* exported, but not the entry function: the loader must say what is missing */
SLUICE_EXPORT const struct sluice_plugin *some_other_function(void)
{
    return &tp_plugin;
}
#endif
