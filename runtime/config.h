/*
 * config.h - the configuration: main file + conf.d drop-ins (libconfig).
 *
 * Owns parsing and validation of everything an administrator writes. Every
 * error names file:line and the key. Plugin sections are validated against
 * the plugin's own config spec once the plugin is loaded
 * (sl_config_fill_plugin), so `sluice check` reports a plugin key error with
 * the same file:line precision as a core key error.
 *
 * See docs/configuration.md for the reference.
 */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libconfig.h>
#include <sluice/plugin.h>

#define SL_DEFAULT_CONFIG "/etc/sluice/sluice.conf"

/* An error with its place: "conf.d/10-crm.conf:12: profile "crm": unknown key 'batchsize'" */
struct sl_err {
    char msg[1024];
};

/* A plugin reference inside a profile: `sink = { plugin = "pg"; ... }`. */
struct sl_plugin_ref {
    char *name;                       /* plugin name ("pg"); NULL if section absent */
    const config_setting_t *section;  /* the group holding plugin keys, or NULL */
    const char *file;                 /* where the section is (for messages) */
    int line;
};

struct sl_profile {
    char *name;
    const char *file; /* drop-in that defines it */
    int line;
    struct sl_plugin_ref source, transport, spill, sink;
    char **entities;      /* entity names, in config order */
    size_t nentities;
    uint32_t batch_rows;  /* batch_size: rows per batch (default 5000) */
    uint64_t batch_bytes; /* batch_bytes: bytes per batch (default 8 MiB) */
    uint32_t batch_linger_ms; /* wait at most this long to fill a batch (default 200) */
    uint32_t workers;     /* apply workers = partitions (default 2) */
    uint32_t queue_depth; /* batches in flight (published, not yet applied everywhere), default 4 */
    int retry_count;      /* 0..20, default 12 */
    int retry_interval_s; /* 0..3600, default 5 */
    char *target_schema;  /* NULL: the sink's default */
    char *table_prefix;   /* "" default */
    bool delete_log;      /* default false */
    bool enabled;         /* `enabled = false` in the file; default true */
    uint64_t spill_threshold; /* claim check: encoded batches larger than this go to the
                                 spill store (0: only above the transport's limit) */
};

struct sl_config {
    char *main_file;      /* absolute path of the main file */
    char *plugin_dir;     /* NULL: default (see loader.h) */
    char *state_dir;      /* default /var/lib/sluice */
    char *conf_dir;       /* default <dir of main file>/conf.d */
    char *control_socket; /* default <state_dir>/sluice.sock */
    char *metrics_listen; /* NULL: off */
    int log_level;        /* SLUICE_LOG_*, default info */
    /* operations (docs/operations.md) */
    int log_format;               /* SL_LOG_FORMAT_TEXT (default) or SL_LOG_FORMAT_JSON */
    int drain_timeout_s;          /* SIGTERM: drain at most this long, then abort (default 30) */
    char *control_socket_group;   /* NULL: socket 0600; else 0660 with this group */
    struct sl_profile *profiles;
    size_t nprofiles;
    /* libconfig documents, kept alive for plugin sections */
    config_t **docs;
    char **doc_files;
    size_t ndocs;
};

/* Load path (NULL: SL_DEFAULT_CONFIG) and every conf.d/NAME.conf in name order.
 * 0 on success; -1 with err filled with the first problem (file:line). */
int sl_config_load(const char *path, struct sl_config *cfg, struct sl_err *err);
void sl_config_free(struct sl_config *cfg);

const struct sl_profile *sl_config_profile(const struct sl_config *cfg, const char *name);

/*
 * Validate ref's section against the plugin's config spec and fill `out`
 * (plugin->config_size bytes, zeroed first) - strings are allocated and
 * recorded in *strings so sl_config_plugin_free can release them. Keys of the
 * section other than `plugin` that are not in the spec are errors; secrets
 * come from KEY, KEY_file or KEY_env. 0, or -1 with err (file:line: key).
 */
struct sl_strlist {
    char **items;
    size_t n;
};
int sl_config_fill_plugin(const struct sl_plugin_ref *ref, const struct sluice_plugin *plugin,
                          void *out, struct sl_strlist *strings, struct sl_err *err);
void sl_strlist_free(struct sl_strlist *l);

#endif
