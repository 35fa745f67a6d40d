/*
 * config.c - the main file and the conf.d drop-ins (libconfig), and the
 * validation of plugin sections against a plugin's config spec.
 *
 * Every error starts with "file:line:" and names the key, so `sluice check`
 * reads like `nginx -t`. Secrets (SLUICE_CFG_SECRET) are resolved here and
 * never written into a message.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#ifndef SLUICE_DEFAULT_STATE_DIR
#define SLUICE_DEFAULT_STATE_DIR "/var/lib/sluice"
#endif
#ifndef SLUICE_DEFAULT_CONFIG_FILE
#define SLUICE_DEFAULT_CONFIG_FILE SL_DEFAULT_CONFIG
#endif

/* ---- error helpers -------------------------------------------------------- */

static const char *setting_file(const config_setting_t *s)
{
    const char *f = s ? config_setting_source_file(s) : NULL;
    return f ? f : "?";
}

static int setting_line(const config_setting_t *s)
{
    return s ? (int)config_setting_source_line(s) : 0;
}

/* "file:line: <fmt>" into err; returns -1 so callers can `return fail_at(...)`. */
static int SLUICE_PRINTF(4, 5)
    fail_loc(struct sl_err *err, const char *file, int line, const char *fmt, ...)
{
    int n = snprintf(err->msg, sizeof err->msg, "%s:%d: ", file ? file : "?", line);
    if (n < 0 || (size_t)n >= sizeof err->msg)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof err->msg - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

#define fail_at(err, s, ...) fail_loc((err), setting_file(s), setting_line(s), __VA_ARGS__)

static const char *type_word(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group { ... }";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a number with a decimal point";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array [ ... ]";
    case CONFIG_TYPE_LIST: return "a list ( ... )";
    default: return "nothing";
    }
}

/* ---- typed getters (ctx is the "profile "x": " prefix, may be "") ---------- */

static bool is_int(const config_setting_t *s)
{
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static int get_string(const config_setting_t *s, const char *ctx, char **out, struct sl_err *err)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail_at(err, s, "%skey '%s' must be a string, got %s", ctx, config_setting_name(s),
                       type_word(config_setting_type(s)));
    free(*out);
    *out = sl_xstrdup(config_setting_get_string(s));
    return 0;
}

static int get_int_range(const config_setting_t *s, const char *ctx, long long lo, long long hi,
                         long long *out, struct sl_err *err)
{
    if (!is_int(s))
        return fail_at(err, s, "%skey '%s' must be an integer, got %s", ctx,
                       config_setting_name(s), type_word(config_setting_type(s)));
    long long v = config_setting_get_int64(s);
    if (v < lo || v > hi)
        return fail_at(err, s, "%skey '%s' = %lld is out of range (allowed %lld..%lld)", ctx,
                       config_setting_name(s), v, lo, hi);
    *out = v;
    return 0;
}

static int get_bool(const config_setting_t *s, const char *ctx, bool *out, struct sl_err *err)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return fail_at(err, s, "%skey '%s' must be true or false, got %s", ctx,
                       config_setting_name(s), type_word(config_setting_type(s)));
    *out = config_setting_get_bool(s) != 0;
    return 0;
}

/* A path from the main file: relative paths are relative to its folder. */
static char *resolve_path(const char *base_dir, const char *p)
{
    if (p[0] == '/' || !base_dir)
        return sl_xstrdup(p);
    return sl_xasprintf("%s/%s", base_dir, p);
}

/* ---- loading -------------------------------------------------------------- */

static config_t *read_doc(struct sl_config *cfg, const char *path, struct sl_err *err)
{
    config_t *doc = sl_xmalloc(sizeof *doc);
    config_init(doc);
    /* register first so sl_config_free releases it whatever happens */
    cfg->docs = sl_xrealloc(cfg->docs, (cfg->ndocs + 1) * sizeof *cfg->docs);
    cfg->doc_files = sl_xrealloc(cfg->doc_files, (cfg->ndocs + 1) * sizeof *cfg->doc_files);
    cfg->docs[cfg->ndocs] = doc;
    cfg->doc_files[cfg->ndocs] = sl_xstrdup(path);
    cfg->ndocs++;

    if (config_read_file(doc, path) == CONFIG_TRUE)
        return doc;
    if (config_error_type(doc) == CONFIG_ERR_FILE_IO) {
        int e = errno;
        snprintf(err->msg, sizeof err->msg,
                 "%s: cannot read the configuration file: %s (give another one with -c FILE)",
                 path, e ? strerror(e) : "I/O error");
    } else {
        const char *text = config_error_text(doc) ? config_error_text(doc) : "?";
        fail_loc(err, config_error_file(doc) ? config_error_file(doc) : path,
                 config_error_line(doc), "%s%s", strstr(text, "syntax error") ? "" : "syntax error: ",
                 text);
    }
    return NULL;
}

static bool valid_profile_name(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool valid_plugin_name(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static int parse_plugin_ref(const config_setting_t *s, const char *ctx, struct sl_plugin_ref *ref,
                            struct sl_err *err)
{
    const char *key = config_setting_name(s);
    if (!config_setting_is_group(s))
        return fail_at(err, s, "%skey '%s' must be a group { plugin = \"...\"; ... }, got %s", ctx,
                       key, type_word(config_setting_type(s)));
    const config_setting_t *p = config_setting_get_member(s, "plugin");
    if (!p)
        return fail_at(err, s, "%s%s: missing required key 'plugin' (the plugin's name, e.g. "
                               "plugin = \"pg\";)", ctx, key);
    if (config_setting_type(p) != CONFIG_TYPE_STRING)
        return fail_at(err, p, "%s%s: key 'plugin' must be a string, got %s", ctx, key,
                       type_word(config_setting_type(p)));
    const char *name = config_setting_get_string(p);
    if (!valid_plugin_name(name))
        return fail_at(err, p, "%s%s: plugin name \"%s\" is invalid (use a-z, 0-9 and '_')", ctx,
                       key, name);
    ref->name = sl_xstrdup(name);
    ref->section = s;
    ref->file = setting_file(s);
    ref->line = setting_line(s);
    return 0;
}

static int parse_entities(const config_setting_t *s, const char *ctx, struct sl_profile *p,
                          struct sl_err *err)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return fail_at(err, s, "%skey 'entities' must be an array of names [\"a\", \"b\"], got %s",
                       ctx, type_word(t));
    int n = config_setting_length(s);
    if (n == 0)
        return fail_at(err, s, "%skey 'entities' is empty: name at least one entity to export",
                       ctx);
    p->entities = sl_xcalloc((size_t)n, sizeof *p->entities);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING || !*config_setting_get_string(e))
            return fail_at(err, e, "%sentities[%d] must be a non-empty string", ctx, i);
        const char *name = config_setting_get_string(e);
        for (size_t j = 0; j < p->nentities; j++)
            if (strcmp(p->entities[j], name) == 0)
                return fail_at(err, e, "%sentity \"%s\" is listed twice in 'entities'", ctx, name);
        p->entities[p->nentities++] = sl_xstrdup(name);
    }
    return 0;
}

static const char *const profile_keys =
    "name, entities, source, transport, spill, sink, target_schema, table_prefix, delete_log, "
    "batch_size, batch_bytes, batch_linger_ms, workers, queue_depth, retry_count, "
    "retry_interval, enabled, spill_threshold";

static int parse_profile(struct sl_config *cfg, const config_setting_t *g, struct sl_err *err)
{
    if (!config_setting_is_group(g))
        return fail_at(err, g, "each element of 'profiles' must be a group { name = \"...\"; ... }, "
                               "got %s", type_word(config_setting_type(g)));
    const config_setting_t *ns = config_setting_get_member(g, "name");
    if (!ns)
        return fail_at(err, g, "profile: missing required key 'name'");
    if (config_setting_type(ns) != CONFIG_TYPE_STRING)
        return fail_at(err, ns, "profile: key 'name' must be a string, got %s",
                       type_word(config_setting_type(ns)));
    const char *name = config_setting_get_string(ns);
    if (!valid_profile_name(name))
        return fail_at(err, ns, "profile name \"%s\" is invalid: use 1 to 64 of A-Z a-z 0-9 _ . -",
                       name);
    for (size_t i = 0; i < cfg->nprofiles; i++) {
        const struct sl_profile *o = &cfg->profiles[i];
        if (strcmp(o->name, name) == 0)
            return fail_at(err, ns, "duplicate profile name \"%s\" (first defined at %s:%d); "
                                    "rename one of them", name, o->file, o->line);
    }

    cfg->profiles = sl_xrealloc(cfg->profiles, (cfg->nprofiles + 1) * sizeof *cfg->profiles);
    struct sl_profile *p = &cfg->profiles[cfg->nprofiles++];
    memset(p, 0, sizeof *p);
    p->name = sl_xstrdup(name);
    p->file = setting_file(g);
    p->line = setting_line(g);
    p->batch_rows = 5000;
    p->batch_bytes = 8u << 20;
    p->batch_linger_ms = 200;
    p->workers = 2;
    p->queue_depth = 4;
    p->retry_count = 12;
    p->retry_interval_s = 5;
    p->table_prefix = sl_xstrdup("");
    p->delete_log = false;
    p->enabled = true;

    char ctx[128];
    snprintf(ctx, sizeof ctx, "profile \"%s\": ", name);

    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *key = config_setting_name(s);
        long long v = 0;
        int rc = 0;
        if (strcmp(key, "name") == 0) {
            continue;
        } else if (strcmp(key, "entities") == 0) {
            rc = parse_entities(s, ctx, p, err);
        } else if (strcmp(key, "source") == 0) {
            rc = parse_plugin_ref(s, ctx, &p->source, err);
        } else if (strcmp(key, "transport") == 0) {
            rc = parse_plugin_ref(s, ctx, &p->transport, err);
        } else if (strcmp(key, "spill") == 0) {
            rc = parse_plugin_ref(s, ctx, &p->spill, err);
        } else if (strcmp(key, "sink") == 0) {
            rc = parse_plugin_ref(s, ctx, &p->sink, err);
        } else if (strcmp(key, "target_schema") == 0) {
            rc = get_string(s, ctx, &p->target_schema, err);
        } else if (strcmp(key, "table_prefix") == 0) {
            rc = get_string(s, ctx, &p->table_prefix, err);
        } else if (strcmp(key, "delete_log") == 0) {
            rc = get_bool(s, ctx, &p->delete_log, err);
        } else if (strcmp(key, "enabled") == 0) {
            rc = get_bool(s, ctx, &p->enabled, err);
        } else if (strcmp(key, "batch_size") == 0) {
            if ((rc = get_int_range(s, ctx, 1, 1000000, &v, err)) == 0)
                p->batch_rows = (uint32_t)v;
        } else if (strcmp(key, "batch_bytes") == 0) {
            if ((rc = get_int_range(s, ctx, 1024, 1LL << 32, &v, err)) == 0)
                p->batch_bytes = (uint64_t)v;
        } else if (strcmp(key, "batch_linger_ms") == 0) {
            if ((rc = get_int_range(s, ctx, 0, 60000, &v, err)) == 0)
                p->batch_linger_ms = (uint32_t)v;
        } else if (strcmp(key, "workers") == 0) {
            if ((rc = get_int_range(s, ctx, 1, 64, &v, err)) == 0)
                p->workers = (uint32_t)v;
        } else if (strcmp(key, "queue_depth") == 0) {
            if ((rc = get_int_range(s, ctx, 1, 1024, &v, err)) == 0)
                p->queue_depth = (uint32_t)v;
        } else if (strcmp(key, "retry_count") == 0) {
            if ((rc = get_int_range(s, ctx, 0, 20, &v, err)) == 0)
                p->retry_count = (int)v;
        } else if (strcmp(key, "retry_interval") == 0) {
            if ((rc = get_int_range(s, ctx, 0, 3600, &v, err)) == 0)
                p->retry_interval_s = (int)v;
        } else if (strcmp(key, "spill_threshold") == 0) {
            if ((rc = get_int_range(s, ctx, 0, 1LL << 32, &v, err)) == 0)
                p->spill_threshold = (uint64_t)v;
        } else {
            rc = fail_at(err, s, "%sunknown key '%s' (known keys: %s)", ctx, key, profile_keys);
        }
        if (rc != 0)
            return -1;
    }

    if (!p->source.name)
        return fail_at(err, g, "%smissing required key 'source' (source = { plugin = \"...\"; })",
                       ctx);
    if (!p->sink.name)
        return fail_at(err, g, "%smissing required key 'sink' (sink = { plugin = \"...\"; })", ctx);
    if (p->nentities == 0)
        return fail_at(err, g, "%smissing required key 'entities' (entities = [\"a\", \"b\"];)",
                       ctx);
    if (!p->transport.name) {
        /* default transport: the in-process memory queue, no section */
        p->transport.name = sl_xstrdup("memory");
        p->transport.file = p->file;
        p->transport.line = p->line;
    }
    return 0;
}

static int parse_profiles(struct sl_config *cfg, const config_setting_t *s, struct sl_err *err)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_GROUP)
        return fail_at(err, s, "key 'profiles' must be a list ( { name = \"...\"; ... }, ... ), "
                               "got %s", type_word(t));
    if (t == CONFIG_TYPE_GROUP) /* a single profile written without the list */
        return parse_profile(cfg, s, err);
    int n = config_setting_length(s);
    for (int i = 0; i < n; i++)
        if (parse_profile(cfg, config_setting_get_elem(s, (unsigned)i), err) != 0)
            return -1;
    return 0;
}

static const char *const main_keys =
    "plugin_dir, state_dir, conf_dir, control_socket, control_socket_group, metrics_listen, "
    "log_level, log_format, drain_timeout, profiles";

static int parse_main(struct sl_config *cfg, config_t *doc, const char *base_dir,
                      struct sl_err *err)
{
    const config_setting_t *root = config_root_setting(doc);
    int n = config_setting_length(root);
    char *tmp = NULL;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *key = config_setting_name(s);
        char **dst = NULL;
        if (strcmp(key, "plugin_dir") == 0)
            dst = &cfg->plugin_dir;
        else if (strcmp(key, "state_dir") == 0)
            dst = &cfg->state_dir;
        else if (strcmp(key, "conf_dir") == 0)
            dst = &cfg->conf_dir;
        else if (strcmp(key, "control_socket") == 0)
            dst = &cfg->control_socket;
        if (dst) {
            if ((rc = get_string(s, "", &tmp, err)) == 0) {
                if (!*tmp) {
                    rc = fail_at(err, s, "key '%s' is empty: give a path or remove the key", key);
                    break;
                }
                free(*dst);
                *dst = resolve_path(base_dir, tmp);
            }
        } else if (strcmp(key, "metrics_listen") == 0) {
            rc = get_string(s, "", &cfg->metrics_listen, err);
        } else if (strcmp(key, "log_level") == 0) {
            if ((rc = get_string(s, "", &tmp, err)) == 0) {
                int lvl = sl_log_level_parse(tmp);
                if (lvl < 0)
                    rc = fail_at(err, s, "key 'log_level' = \"%s\" is not one of error, warn, "
                                         "info, debug", tmp);
                else
                    cfg->log_level = lvl;
            }
        } else if (strcmp(key, "profiles") == 0) {
            rc = parse_profiles(cfg, s, err);
        } else if (strcmp(key, "control_socket_group") == 0) {
            rc = get_string(s, "", &cfg->control_socket_group, err);
        } else if (strcmp(key, "log_format") == 0) {
            if ((rc = get_string(s, "", &tmp, err)) == 0) {
                int fmt = sl_log_format_parse(tmp);
                if (fmt < 0)
                    rc = fail_at(err, s, "key 'log_format' = \"%s\" is not one of text, json",
                                 tmp);
                else
                    cfg->log_format = fmt;
            }
        } else if (strcmp(key, "drain_timeout") == 0) {
            long long v = 0;
            if ((rc = get_int_range(s, "", 0, 86400, &v, err)) == 0)
                cfg->drain_timeout_s = (int)v;
        } else {
            rc = fail_at(err, s, "unknown key '%s' (known keys of the main file: %s)", key,
                         main_keys);
        }
    }
    free(tmp);
    return rc;
}

static int parse_dropin(struct sl_config *cfg, config_t *doc, struct sl_err *err)
{
    const config_setting_t *root = config_root_setting(doc);
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *key = config_setting_name(s);
        if (strcmp(key, "profiles") != 0)
            return fail_at(err, s, "unknown key '%s' (a drop-in holds only 'profiles'; global "
                                   "settings belong in the main file)", key);
        if (parse_profiles(cfg, s, err) != 0)
            return -1;
    }
    return 0;
}

static int dropin_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

/* byte order, not the locale's: the order must not change with LANG */
static int name_order(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int sl_config_load(const char *path, struct sl_config *cfg, struct sl_err *err)
{
    struct dirent **names = NULL;
    int nnames = 0;
    char *base_dir = NULL;
    int rc = -1;

    memset(cfg, 0, sizeof *cfg);
    err->msg[0] = '\0';
    cfg->log_level = SLUICE_LOG_INFO;
    cfg->drain_timeout_s = 30;
    if (!path)
        path = SLUICE_DEFAULT_CONFIG_FILE;

    if (path[0] == '/') {
        cfg->main_file = sl_xstrdup(path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            snprintf(err->msg, sizeof err->msg, "%s: cannot resolve the current folder: %s",
                     path, strerror(errno));
            goto out;
        }
        cfg->main_file = sl_xasprintf("%s/%s", cwd, path);
    }
    base_dir = sl_xstrdup(cfg->main_file);
    *strrchr(base_dir, '/') = '\0';
    if (!*base_dir) {
        free(base_dir);
        base_dir = sl_xstrdup("/");
    }

    config_t *doc = read_doc(cfg, path, err);
    if (!doc)
        goto out;
    config_set_include_dir(doc, base_dir);
    if (parse_main(cfg, doc, base_dir, err) != 0)
        goto out;

    if (!cfg->state_dir)
        cfg->state_dir = sl_xstrdup(SLUICE_DEFAULT_STATE_DIR);
    if (!cfg->conf_dir)
        cfg->conf_dir = sl_xasprintf("%s/conf.d", base_dir);
    if (!cfg->control_socket)
        cfg->control_socket = sl_xasprintf("%s/sluice.sock", cfg->state_dir);

    nnames = scandir(cfg->conf_dir, &names, dropin_filter, name_order);
    if (nnames < 0) {
        nnames = 0;
        if (errno != ENOENT && errno != ENOTDIR) {
            snprintf(err->msg, sizeof err->msg, "%s: cannot read the drop-in folder: %s",
                     cfg->conf_dir, strerror(errno));
            goto out;
        }
    }
    for (int i = 0; i < nnames; i++) {
        char *file = sl_xasprintf("%s/%s", cfg->conf_dir, names[i]->d_name);
        doc = read_doc(cfg, file, err);
        free(file);
        if (!doc)
            goto out;
        if (parse_dropin(cfg, doc, err) != 0)
            goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(base_dir);
    if (rc != 0)
        sl_config_free(cfg);
    return rc;
}

static void free_ref(struct sl_plugin_ref *r)
{
    free(r->name);
    r->name = NULL;
}

void sl_config_free(struct sl_config *cfg)
{
    for (size_t i = 0; i < cfg->nprofiles; i++) {
        struct sl_profile *p = &cfg->profiles[i];
        free(p->name);
        free_ref(&p->source);
        free_ref(&p->transport);
        free_ref(&p->spill);
        free_ref(&p->sink);
        for (size_t j = 0; j < p->nentities; j++)
            free(p->entities[j]);
        free(p->entities);
        free(p->target_schema);
        free(p->table_prefix);
    }
    free(cfg->profiles);
    for (size_t i = 0; i < cfg->ndocs; i++) {
        config_destroy(cfg->docs[i]);
        free(cfg->docs[i]);
        free(cfg->doc_files[i]);
    }
    free(cfg->docs);
    free(cfg->doc_files);
    free(cfg->main_file);
    free(cfg->plugin_dir);
    free(cfg->state_dir);
    free(cfg->conf_dir);
    free(cfg->control_socket);
    free(cfg->metrics_listen);
    free(cfg->control_socket_group);
    memset(cfg, 0, sizeof *cfg);
}

const struct sl_profile *sl_config_profile(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nprofiles; i++)
        if (strcmp(cfg->profiles[i].name, name) == 0)
            return &cfg->profiles[i];
    return NULL;
}

/* ---- plugin sections ------------------------------------------------------ */

void sl_strlist_free(struct sl_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        /* some of these are secrets: do not leave them in freed memory */
        explicit_bzero(l->items[i], strlen(l->items[i]));
        free(l->items[i]);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static char *strlist_add(struct sl_strlist *l, char *s)
{
    l->items = sl_xrealloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = s;
    return s;
}

static size_t item_size(int type)
{
    switch (type) {
    case SLUICE_CFG_STRING:
    case SLUICE_CFG_SECRET: return sizeof(const char *);
    case SLUICE_CFG_INT: return sizeof(int64_t);
    case SLUICE_CFG_BOOL: return sizeof(bool);
    case SLUICE_CFG_FLOAT: return sizeof(double);
    default: return 0;
    }
}

/* Where a plugin section's messages point and what they say first. */
struct section_ctx {
    const char *file;
    int line;
    char prefix[192]; /* `profile "crm": sink "pg": ` */
};

static void section_ctx_init(struct section_ctx *sc, const struct sl_plugin_ref *ref,
                             const struct sluice_plugin *plugin)
{
    const char *profile = NULL;
    const char *kind = "plugin";
    if (ref->section) {
        kind = config_setting_name(ref->section);
        const config_setting_t *parent = config_setting_parent(ref->section);
        const config_setting_t *n = parent ? config_setting_get_member(parent, "name") : NULL;
        if (n && config_setting_type(n) == CONFIG_TYPE_STRING)
            profile = config_setting_get_string(n);
    }
    sc->file = ref->file ? ref->file : "?";
    sc->line = ref->line;
    const char *name = ref->name ? ref->name : plugin->name;
    if (profile)
        snprintf(sc->prefix, sizeof sc->prefix, "profile \"%s\": %s \"%s\": ", profile,
                 kind ? kind : "plugin", name);
    else
        snprintf(sc->prefix, sizeof sc->prefix, "%s \"%s\": ", kind ? kind : "plugin", name);
}

/* Find the spec item for a section key; *variant: 0 KEY, 1 KEY_file, 2 KEY_env. */
static const struct sluice_config_item *find_item(const struct sluice_plugin *plugin,
                                                  const char *key, int *variant)
{
    for (size_t i = 0; i < plugin->nconfig; i++) {
        const struct sluice_config_item *it = &plugin->config[i];
        size_t kl = strlen(it->key);
        if (strcmp(key, it->key) == 0) {
            *variant = 0;
            return it;
        }
        if (it->type == SLUICE_CFG_SECRET && strncmp(key, it->key, kl) == 0) {
            if (strcmp(key + kl, "_file") == 0) {
                *variant = 1;
                return it;
            }
            if (strcmp(key + kl, "_env") == 0) {
                *variant = 2;
                return it;
            }
        }
    }
    return NULL;
}

static void known_keys(const struct sluice_plugin *plugin, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < plugin->nconfig && used < cap; i++) {
        const struct sluice_config_item *it = &plugin->config[i];
        int n = it->type == SLUICE_CFG_SECRET
                    ? snprintf(buf + used, cap - used, "%s%s (or %s_file, %s_env)",
                               i ? ", " : "", it->key, it->key, it->key)
                    : snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", it->key);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (plugin->nconfig == 0)
        snprintf(buf, cap, "none besides 'plugin'");
}

/* First line of a secret file, without the line end. */
static int read_secret_file(const struct section_ctx *sc, const config_setting_t *s,
                            const char *path, char **out, struct sl_err *err)
{
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    int rc = -1;
    struct stat st;

    f = fopen(path, "re");
    if (!f) {
        fail_at(err, s, "%skey '%s': cannot read the secret file %s: %s", sc->prefix,
                config_setting_name(s), path, strerror(errno));
        goto out;
    }
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        sl_warn("%s:%d: %ssecret file %s is accessible by group or others (mode %04o); "
                "run chmod 600 %s",
                setting_file(s), setting_line(s), sc->prefix, path, (unsigned)(st.st_mode & 07777),
                path);
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        if (ferror(f)) {
            fail_at(err, s, "%skey '%s': cannot read the secret file %s: %s", sc->prefix,
                    config_setting_name(s), path, strerror(errno));
            goto out;
        }
        n = 0; /* empty file: an empty secret */
        free(line);
        line = sl_xstrdup("");
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    *out = line;
    line = NULL;
    rc = 0;
out:
    if (line) {
        explicit_bzero(line, cap);
        free(line);
    }
    if (f)
        fclose(f);
    return rc;
}

static int set_default(const struct sluice_config_item *it, char *field,
                       struct sl_strlist *strings)
{
    const char *d = it->default_value;
    switch (it->type) {
    case SLUICE_CFG_STRING:
    case SLUICE_CFG_SECRET: {
        const char *v = d ? strlist_add(strings, sl_xstrdup(d)) : NULL;
        memcpy(field, &v, sizeof v);
        break;
    }
    case SLUICE_CFG_INT: {
        int64_t v = d ? strtoll(d, NULL, 0) : 0;
        memcpy(field, &v, sizeof v);
        break;
    }
    case SLUICE_CFG_BOOL: {
        bool v = d && (strcmp(d, "true") == 0 || strcmp(d, "1") == 0 || strcmp(d, "yes") == 0);
        memcpy(field, &v, sizeof v);
        break;
    }
    case SLUICE_CFG_FLOAT: {
        double v = d ? strtod(d, NULL) : 0.0;
        memcpy(field, &v, sizeof v);
        break;
    }
    default: return -1;
    }
    return 0;
}

int sl_config_fill_plugin(const struct sl_plugin_ref *ref, const struct sluice_plugin *plugin,
                          void *out, struct sl_strlist *strings, struct sl_err *err)
{
    struct section_ctx sc;
    /* which spec items the section set, and through which key */
    const config_setting_t **given = NULL;
    char *secret = NULL;
    int rc = -1;

    section_ctx_init(&sc, ref, plugin);
    if (plugin->config_size)
        memset(out, 0, plugin->config_size);
    given = sl_xcalloc(plugin->nconfig ? plugin->nconfig : 1, sizeof *given);

    /* the spec itself (a plugin bug, but never write outside the struct) */
    for (size_t i = 0; i < plugin->nconfig; i++) {
        const struct sluice_config_item *it = &plugin->config[i];
        size_t sz = item_size(it->type);
        if (!it->key || sz == 0 || it->offset + sz > plugin->config_size) {
            fail_loc(err, sc.file, sc.line, "%splugin bug: config spec item %zu ('%s') has an "
                                            "unknown type or lies outside config_size %zu",
                     sc.prefix, i, it->key ? it->key : "?", plugin->config_size);
            goto out;
        }
        set_default(it, (char *)out + it->offset, strings);
    }

    int n = ref->section ? config_setting_length(ref->section) : 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(ref->section, (unsigned)i);
        const char *key = config_setting_name(s);
        int variant = 0;
        if (strcmp(key, "plugin") == 0)
            continue;
        const struct sluice_config_item *it = find_item(plugin, key, &variant);
        if (!it) {
            char known[512];
            known_keys(plugin, known, sizeof known);
            fail_at(err, s, "%sunknown key '%s' (known keys: %s)", sc.prefix, key, known);
            goto out;
        }
        size_t idx = (size_t)(it - plugin->config);
        if (given[idx]) {
            fail_at(err, s, "%skey '%s' is given more than once (also as '%s' at line %d); keep "
                            "one", sc.prefix, key, config_setting_name(given[idx]),
                    setting_line(given[idx]));
            goto out;
        }
        given[idx] = s;
        char *field = (char *)out + it->offset;
        int t = config_setting_type(s);

        switch (it->type) {
        case SLUICE_CFG_STRING:
        case SLUICE_CFG_SECRET: {
            if (t != CONFIG_TYPE_STRING) {
                fail_at(err, s, "%skey '%s' must be a string, got %s", sc.prefix, key,
                        type_word(t));
                goto out;
            }
            const char *text = config_setting_get_string(s);
            if (variant == 0) {
                secret = sl_xstrdup(text);
            } else if (variant == 1) {
                if (read_secret_file(&sc, s, text, &secret, err) != 0)
                    goto out;
            } else {
                const char *env = getenv(text);
                if (!env) {
                    fail_at(err, s, "%skey '%s': environment variable %s is not set", sc.prefix,
                            key, text);
                    goto out;
                }
                secret = sl_xstrdup(env);
            }
            const char *v = strlist_add(strings, secret);
            secret = NULL;
            memcpy(field, &v, sizeof v);
            break;
        }
        case SLUICE_CFG_INT: {
            if (!is_int(s)) {
                fail_at(err, s, "%skey '%s' must be an integer, got %s", sc.prefix, key,
                        type_word(t));
                goto out;
            }
            int64_t v = config_setting_get_int64(s);
            memcpy(field, &v, sizeof v);
            break;
        }
        case SLUICE_CFG_BOOL: {
            if (t != CONFIG_TYPE_BOOL) {
                fail_at(err, s, "%skey '%s' must be true or false, got %s", sc.prefix, key,
                        type_word(t));
                goto out;
            }
            bool v = config_setting_get_bool(s) != 0;
            memcpy(field, &v, sizeof v);
            break;
        }
        case SLUICE_CFG_FLOAT: {
            if (t != CONFIG_TYPE_FLOAT && !is_int(s)) {
                fail_at(err, s, "%skey '%s' must be a number, got %s", sc.prefix, key,
                        type_word(t));
                goto out;
            }
            double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
                                              : (double)config_setting_get_int64(s);
            memcpy(field, &v, sizeof v);
            break;
        }
        }
    }

    for (size_t i = 0; i < plugin->nconfig; i++) {
        const struct sluice_config_item *it = &plugin->config[i];
        if ((it->flags & SLUICE_CFG_REQUIRED) && !given[i] && !it->default_value) {
            if (it->type == SLUICE_CFG_SECRET)
                fail_loc(err, sc.file, sc.line, "%smissing required key '%s' (or %s_file, "
                                                "%s_env)", sc.prefix, it->key, it->key, it->key);
            else
                fail_loc(err, sc.file, sc.line, "%smissing required key '%s'%s%s%s", sc.prefix,
                         it->key, it->doc ? " (" : "", it->doc ? it->doc : "", it->doc ? ")" : "");
            goto out;
        }
    }
    rc = 0;
out:
    free(secret);
    free(given);
    return rc;
}
