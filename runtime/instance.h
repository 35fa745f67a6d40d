/*
 * instance.h - one live plugin instance and the host API table behind it.
 *
 * An sl_instance ties a loaded plugin to a profile: it fills the plugin's
 * config struct from the profile's section (validated, file:line errors),
 * builds the init args, owns the struct sluice_ctx the plugin talks through,
 * and runs the lifecycle (init / start / stop / destroy). Errors are reported
 * with context: `profile "crm": sink pg: apply: duplicate key ...`.
 *
 * The host API table (host.c) implements the generic parts itself (logging,
 * error buffer, schema copies, batches, value text) and forwards the parts
 * only a running pipeline can answer (emit, stopping, wait, progress,
 * counters) to the hooks the pipeline installs; outside a run (sluice check)
 * emit fails and stopping() is true.
 */
#ifndef SL_INSTANCE_H
#define SL_INSTANCE_H

#include <pthread.h>
#include <stdbool.h>

#include <sluice/sluice.h>

#include "batch.h"
#include "config.h"
#include "loader.h"

/* What a running pipeline answers for a context (all optional). */
struct sl_ctx_hooks {
    void *arg;
    int (*emit)(void *arg, struct sl_batch *b);      /* takes b */
    bool (*stopping)(void *arg);
    int (*wait)(void *arg, uint32_t ms);
    void (*progress)(void *arg, const struct sluice_entity *e, uint64_t done,
                     uint64_t estimate);
    void (*counter_add)(void *arg, const char *entity, const char *name, int64_t delta);
    void (*record_failed)(void *arg, const struct sluice_entity *e, const char *record_id,
                          const char *where, const char *reason);
    /* an entity was declared or changed (source instances) */
    void (*entity_declared)(void *arg, const struct sluice_entity *e);
};

struct sluice_ctx {
    char label[160];   /* `profile "crm": sink pg` */
    char error[2048];  /* last set_error text (host-owned error buffer) */
    struct sl_ctx_hooks hooks;
    uint32_t batch_rows;
    uint64_t batch_bytes;
    uint32_t batch_linger_ms;
    /* entity schemas declared through this context (host copies) */
    pthread_mutex_t lock;
    struct sl_arena schema_arena;
    const struct sluice_entity **entities;
    uint64_t *fingerprints;
    size_t nentities, cap_entities;
};

/* The host API table handed to every plugin. */
const struct sluice_host *sl_host_api(void);

struct sl_instance {
    const struct sl_plugin *plugin;
    const struct sluice_plugin *desc; /* == plugin->desc */
    struct sluice_ctx ctx;
    void *config;                 /* desc->config_size bytes */
    struct sl_strlist strings;    /* strings owned by config */
    void *inst;                   /* the plugin's instance */
    bool started;
};

/* Extra init arguments that only the pipeline knows. */
struct sl_instance_opts {
    int run_mode;          /* SLUICE_RUN_ONCE / FOLLOW (default ONCE) */
    uint32_t partitions;   /* default profile->workers */
    uint32_t worker;       /* sinks: partition served */
    const char *state_dir; /* per-profile folder, NULL: none */
};

/*
 * Fill config from ref's section, build init args from profile and opts,
 * call the plugin's init. 0, or -1 with err (config problems name file:line;
 * init failures carry the plugin's error text).
 */
int sl_instance_init(struct sl_instance *in, const struct sl_plugin *plugin,
                     const struct sl_profile *profile, const struct sl_plugin_ref *ref,
                     const struct sl_instance_opts *opts, struct sl_err *err);
/* start; returns the plugin's status (SLUICE_OK / RETRY / ERR), err filled if not OK */
int sl_instance_start(struct sl_instance *in, struct sl_err *err);
void sl_instance_stop(struct sl_instance *in);
void sl_instance_destroy(struct sl_instance *in);

/* Format "<label>: <what>: <ctx.error>" into err, and clear ctx.error. */
void sl_instance_error(struct sl_instance *in, const char *what, struct sl_err *err);

/* The kind's ops table, already checked by the loader. */
static inline const struct sluice_source_ops *sl_source_ops(const struct sl_instance *in)
{
    return (const struct sluice_source_ops *)in->desc->ops;
}
static inline const struct sluice_transport_ops *sl_transport_ops(const struct sl_instance *in)
{
    return (const struct sluice_transport_ops *)in->desc->ops;
}
static inline const struct sluice_spill_ops *sl_spill_ops(const struct sl_instance *in)
{
    return (const struct sluice_spill_ops *)in->desc->ops;
}
static inline const struct sluice_sink_ops *sl_sink_ops(const struct sl_instance *in)
{
    return (const struct sluice_sink_ops *)in->desc->ops;
}

#endif
