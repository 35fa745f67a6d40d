/*
 * sluice/plugin.h - the plugin descriptor, its config spec and lifecycle.
 *
 * A plugin is a shared object exporting ONE function:
 *
 *     SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entry(void);
 *
 * (an exported function, like PostgreSQL's Pg_magic_func: dlsym on data is not
 * portable). The loader calls it, then refuses the plugin when abi_major
 * differs from the host's, struct_size is smaller than the ABI 1.0 size, kind
 * is unknown, a required callback is NULL, or the ops table is too small.
 *
 * Lifecycle (rsyslog's split of validation from activation):
 *
 *   init    validate config, allocate the instance; no I/O to remote systems.
 *           `sluice check` calls init and destroy only.
 *   start   connect / open. May be called again after stop (reconnect).
 *   stop    disconnect / close; the instance stays valid for another start.
 *   destroy free everything; called once, after stop if start succeeded.
 *
 * All four are called from the runtime's control thread, never concurrently
 * with another call on the same instance.
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/abi.h>
#include <sluice/host.h>
#include <sluice/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_ENTRY_SYMBOL "sluice_plugin_entry"

/*
 * Config spec (Fluent Bit's config_map): the plugin lists its keys; the host
 * validates the profile's section for that plugin against the list (unknown
 * key, wrong type, missing required key -> an error naming file:line) and
 * fills a struct of config_size bytes at the given offsets:
 *
 *   STRING  const char *   (host-owned, valid until destroy; NULL if unset)
 *   SECRET  const char *   the same, resolved from KEY, KEY_file (a file's
 *                          first line) or KEY_env (an environment variable);
 *                          the host never prints it, nor should the plugin
 *   INT     int64_t
 *   BOOL    bool
 *   FLOAT   double
 */
enum sluice_config_type {
    SLUICE_CFG_STRING = 1,
    SLUICE_CFG_SECRET = 2,
    SLUICE_CFG_INT = 3,
    SLUICE_CFG_BOOL = 4,
    SLUICE_CFG_FLOAT = 5
};

#define SLUICE_CFG_REQUIRED 0x1u

struct sluice_config_item {
    const char *key;
    uint16_t type;              /* enum sluice_config_type */
    uint16_t flags;             /* SLUICE_CFG_REQUIRED */
    const char *default_value;  /* text form, NULL for none */
    size_t offset;              /* offsetof(your_config, field) */
    const char *doc;            /* one line for `sluice plugins -v` and docs */
};

/*
 * What the host tells a plugin instance at init. Members past struct_size do
 * not exist (a plugin built against a newer SDK checks before reading).
 */
struct sluice_init_args {
    uint32_t struct_size;
    const char *profile;      /* profile name */
    const char *label;        /* "source file", "sink pg": for messages */
    const void *config;       /* config_size bytes, filled per the spec */
    const char *state_dir;    /* per-profile folder (0700) the plugin may use */
    int run_mode;             /* enum sluice_run_mode */
    uint32_t partitions;      /* apply partitions (workers) of the profile */
    uint32_t worker;          /* sinks: which partition this instance applies */
    /* profile settings */
    const char *const *entities; /* entity names the profile exports */
    uint32_t nentities;
    const char *target_schema;   /* NULL: the sink's default */
    const char *table_prefix;    /* "" for none */
    bool delete_log;             /* keep a delete-log table in the target */
};

struct sluice_plugin {
    uint32_t abi_major;   /* SLUICE_ABI_MAJOR */
    uint32_t abi_minor;   /* SLUICE_ABI_MINOR */
    uint32_t struct_size; /* sizeof(struct sluice_plugin) */
    uint32_t kind;        /* enum sluice_kind */
    const char *name;     /* short name used in config: "pg", "file", "memory" */
    const char *version;  /* the plugin's own version, "1.0.0" */
    const char *description;

    const struct sluice_config_item *config; /* array of nconfig items */
    size_t nconfig;
    size_t config_size; /* bytes of the struct the host fills */

    /* init - required. Validate args->config and create the instance in
     * *inst. Keep host and ctx for later calls. SLUICE_OK or SLUICE_ERR
     * (with set_error naming the key). */
    int (*init)(const struct sluice_host *host, struct sluice_ctx *ctx,
                const struct sluice_init_args *args, void **inst);
    /* start - required. Connect. SLUICE_OK, SLUICE_RETRY (try later), SLUICE_ERR. */
    int (*start)(void *inst);
    /* stop - required. Disconnect; must succeed. */
    void (*stop)(void *inst);
    /* destroy - required. Free the instance. */
    void (*destroy)(void *inst);

    /* ops - required: the kind's ops table (struct sluice_source_ops,
     * sluice_transport_ops, sluice_spill_ops or sluice_sink_ops), each
     * starting with its own struct_size. */
    const void *ops;
};

typedef const struct sluice_plugin *(*sluice_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
