/*
 * instance.c - one plugin instance of a profile: config struct, init args,
 * context and lifecycle.
 *
 * The plugin keeps the struct sluice_ctx pointer it got at init, so an
 * sl_instance must not move in memory between sl_instance_init and
 * sl_instance_destroy.
 */
#include "instance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void ctx_init(struct sluice_ctx *ctx, const struct sl_profile *profile,
                     const struct sluice_plugin *desc)
{
    memset(ctx, 0, sizeof *ctx);
    snprintf(ctx->label, sizeof ctx->label, "profile \"%s\": %s %s", profile->name,
             sl_kind_name((int)desc->kind), desc->name);
    ctx->batch_rows = profile->batch_rows;
    ctx->batch_bytes = profile->batch_bytes;
    ctx->batch_linger_ms = profile->batch_linger_ms;
    pthread_mutex_init(&ctx->lock, NULL);
}

static void ctx_free(struct sluice_ctx *ctx)
{
    pthread_mutex_destroy(&ctx->lock);
    sl_arena_free(&ctx->schema_arena);
    free(ctx->entities);
    free(ctx->fingerprints);
    ctx->entities = NULL;
    ctx->fingerprints = NULL;
    ctx->nentities = ctx->cap_entities = 0;
}

/* Release everything but the plugin's own instance. */
static void instance_release(struct sl_instance *in)
{
    ctx_free(&in->ctx);
    sl_strlist_free(&in->strings);
    free(in->config);
    memset(in, 0, sizeof *in);
}

int sl_instance_init(struct sl_instance *in, const struct sl_plugin *plugin,
                     const struct sl_profile *profile, const struct sl_plugin_ref *ref,
                     const struct sl_instance_opts *opts, struct sl_err *err)
{
    static const struct sl_instance_opts no_opts = {0};
    const struct sluice_plugin *desc = plugin->desc;
    int rc = -1;

    if (!opts)
        opts = &no_opts;
    memset(in, 0, sizeof *in);
    in->plugin = plugin;
    in->desc = desc;
    ctx_init(&in->ctx, profile, desc);
    in->config = sl_xcalloc(1, desc->config_size ? desc->config_size : 1);

    if (sl_config_fill_plugin(ref, desc, in->config, &in->strings, err) != 0)
        goto out;

    /* the plugin may keep args->label: it lives with the instance */
    char *label = sl_xasprintf("%s %s", sl_kind_name((int)desc->kind), desc->name);
    in->strings.items = sl_xrealloc(in->strings.items, (in->strings.n + 1) * sizeof(char *));
    in->strings.items[in->strings.n++] = label;
    struct sluice_init_args args = {
        .struct_size = sizeof args,
        .profile = profile->name,
        .label = label,
        .config = in->config,
        .state_dir = opts->state_dir,
        .run_mode = opts->run_mode ? opts->run_mode : SLUICE_RUN_ONCE,
        .partitions = opts->partitions ? opts->partitions : profile->workers,
        .worker = opts->worker,
        .entities = (const char *const *)profile->entities,
        .nentities = (uint32_t)profile->nentities,
        .target_schema = profile->target_schema,
        .table_prefix = profile->table_prefix ? profile->table_prefix : "",
        .delete_log = profile->delete_log,
    };
    void *inst = NULL;
    int st = desc->init(sl_host_api(), &in->ctx, &args, &inst);
    if (st != SLUICE_OK) {
        sl_instance_error(in, "init", err);
        if (inst) /* a plugin that failed should not leave one, but be safe */
            desc->destroy(inst);
        goto out;
    }
    in->inst = inst;
    rc = 0;
out:
    if (rc != 0)
        instance_release(in);
    return rc;
}

int sl_instance_start(struct sl_instance *in, struct sl_err *err)
{
    int st = in->desc->start(in->inst);
    if (st == SLUICE_OK)
        in->started = true;
    else
        sl_instance_error(in, "start", err);
    return st;
}

void sl_instance_stop(struct sl_instance *in)
{
    if (in->desc && in->started) {
        in->desc->stop(in->inst);
        in->started = false;
    }
}

void sl_instance_destroy(struct sl_instance *in)
{
    if (!in->desc) /* never initialised, failed init, or destroyed already */
        return;
    sl_instance_stop(in);
    if (in->inst)
        in->desc->destroy(in->inst);
    instance_release(in);
}

void sl_instance_error(struct sl_instance *in, const char *what, struct sl_err *err)
{
    snprintf(err->msg, sizeof err->msg, "%s: %s: %.800s", in->ctx.label, what,
             in->ctx.error[0] ? in->ctx.error : "failed (the plugin gave no reason)");
    in->ctx.error[0] = '\0';
}
