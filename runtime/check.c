/*
 * check.c - `sluice check` (validate the configuration and every plugin it
 * names, like `nginx -t`) and `sluice plugins` (what the plugin folder holds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "instance.h"
#include "loader.h"
#include "util.h"

#ifndef SLUICE_DEFAULT_CONFIG_FILE
#define SLUICE_DEFAULT_CONFIG_FILE SL_DEFAULT_CONFIG
#endif

/* Distinct plugin files a check loaded, for the summary line. */
struct seen {
    char **names;
    size_t n;
};

static void seen_add(struct seen *s, const char *kind, const char *name)
{
    char *key = sl_xasprintf("%s-%s", kind, name);
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], key) == 0) {
            free(key);
            return;
        }
    }
    s->names = sl_xrealloc(s->names, (s->n + 1) * sizeof *s->names);
    s->names[s->n++] = key;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
}

/* Load one plugin of a profile, validate its section, init and destroy it.
 * Returns SL_EXIT_OK, SL_EXIT_CONFIG or SL_EXIT_PLUGIN (message printed). */
static int check_ref(const struct sl_config *cfg, const char *dir, const struct sl_profile *p,
                     int kind, const struct sl_plugin_ref *ref, struct seen *seen)
{
    struct sl_plugin plugin = {0};
    struct sl_instance in = {0};
    struct sl_err err;
    char *state = NULL; /* the plugin may keep args->state_dir until destroy */
    int rc = SL_EXIT_PLUGIN;

    if (sl_plugin_load(dir, kind, ref->name, &plugin, &err) != 0) {
        fprintf(stderr, "sluice: %s:%d: profile \"%s\": %s \"%s\": %s\n", ref->file, ref->line,
                p->name, sl_kind_name(kind), ref->name, err.msg);
        goto out;
    }
    seen_add(seen, sl_kind_name(kind), ref->name);

    state = sl_xasprintf("%s/profiles/%s", cfg->state_dir, p->name);
    struct sl_instance_opts opts = {.run_mode = SLUICE_RUN_ONCE, .state_dir = state};
    int st = sl_instance_init(&in, &plugin, p, ref, &opts, &err);
    if (st != 0) {
        /* sl_instance_init reports the plugin's own refusal as
         * `<label>: init: ...` (exit 4); anything else is a key of the
         * section, already prefixed with file:line (exit 3) */
        char *init_prefix = sl_xasprintf("profile \"%s\": %s %s: init:", p->name,
                                         sl_kind_name(kind), plugin.desc->name);
        if (strncmp(err.msg, init_prefix, strlen(init_prefix)) == 0) {
            fprintf(stderr, "sluice: %s:%d: %s\n", ref->file, ref->line, err.msg);
        } else {
            fprintf(stderr, "sluice: %s\n", err.msg);
            rc = SL_EXIT_CONFIG;
        }
        free(init_prefix);
        goto out;
    }
    sl_instance_destroy(&in);
    rc = SL_EXIT_OK;
out:
    sl_plugin_unload(&plugin);
    free(state);
    return rc;
}

int sl_cmd_check(const char *conf)
{
    struct sl_config cfg;
    struct sl_err err;
    struct seen seen = {0};
    int rc;

    if (sl_config_load(conf, &cfg, &err) != 0) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        return SL_EXIT_CONFIG;
    }
    const char *dir = sl_plugin_dir(&cfg);
    rc = SL_EXIT_OK;
    for (size_t i = 0; i < cfg.nprofiles && rc == SL_EXIT_OK; i++) {
        const struct sl_profile *p = &cfg.profiles[i];
        const struct {
            int kind;
            const struct sl_plugin_ref *ref;
        } refs[] = {
            {SLUICE_KIND_SOURCE, &p->source},
            {SLUICE_KIND_TRANSPORT, &p->transport},
            {SLUICE_KIND_SPILL, &p->spill},
            {SLUICE_KIND_SINK, &p->sink},
        };
        for (size_t r = 0; r < sizeof refs / sizeof refs[0] && rc == SL_EXIT_OK; r++) {
            if (!refs[r].ref->name) /* optional section left out (spill) */
                continue;
            rc = check_ref(&cfg, dir, p, refs[r].kind, refs[r].ref, &seen);
        }
    }
    if (rc == SL_EXIT_OK)
        printf("sluice: configuration OK (%zu profile%s, %zu plugin%s)\n", cfg.nprofiles,
               cfg.nprofiles == 1 ? "" : "s", seen.n, seen.n == 1 ? "" : "s");
    seen_free(&seen);
    sl_config_free(&cfg);
    return rc;
}

struct listing {
    size_t ok, refused;
};

static void list_one(void *arg, const char *path, const struct sl_plugin *p,
                     const struct sl_err *err)
{
    struct listing *l = arg;
    if (p) {
        const struct sluice_plugin *d = p->desc;
        printf("%-10s %-14s %-10s %u.%-4u %s\n", sl_kind_name((int)d->kind), d->name,
               d->version ? d->version : "-", d->abi_major, d->abi_minor, path);
        l->ok++;
    } else {
        printf("%-10s %-14s %-10s %-6s %s\n", "REFUSED", "-", "-", "-", path);
        printf("           %s\n", err->msg);
        l->refused++;
    }
}

int sl_cmd_plugins(const char *conf)
{
    struct sl_config cfg;
    struct sl_err err;
    bool have_cfg = false;
    struct listing l = {0};

    /* the config only matters for plugin_dir: without -c, a missing default
     * file is fine */
    if (conf || access(SLUICE_DEFAULT_CONFIG_FILE, F_OK) == 0) {
        if (sl_config_load(conf, &cfg, &err) != 0) {
            fprintf(stderr, "sluice: %s\n", err.msg);
            return SL_EXIT_CONFIG;
        }
        have_cfg = true;
    }
    const char *dir = sl_plugin_dir(have_cfg ? &cfg : NULL);
    printf("plugin folder: %s (host ABI %d.%d)\n", dir, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
    printf("%-10s %-14s %-10s %-6s %s\n", "KIND", "NAME", "VERSION", "ABI", "FILE");
    int n = sl_plugin_scan(dir, list_one, &l);
    if (n < 0)
        fprintf(stderr, "sluice: cannot read the plugin folder %s; set plugin_dir in the main "
                        "file or SLUICE_PLUGIN_PATH\n", dir);
    else if (n == 0)
        printf("(no plugins)\n");
    if (have_cfg)
        sl_config_free(&cfg);
    return (n < 0 || l.refused) ? SL_EXIT_PLUGIN : SL_EXIT_OK;
}
