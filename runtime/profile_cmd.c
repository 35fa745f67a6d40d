/*
 * profile_cmd.c - `sluice profile enable|disable|delete|list NAME` and the
 * removal steps of lifecycle.h.
 *
 * The administrator's decision is kept in the state store (profiles.admin)
 * and beats the drop-in: a disabled profile stays stopped, a deleted one
 * stays deleted - with a warning at every start while a drop-in still
 * defines it - until `sluice profile enable`. With a service running, the
 * command goes through the control socket and the service acts at once;
 * without one the store is changed here and the next start honours it.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "config.h"
#include "control.h"
#include "instance.h"
#include "lifecycle.h"
#include "loader.h"
#include "log.h"
#include "state.h"
#include "util.h"

#define CONTROL_TIMEOUT_MS 120000 /* a delete drains the profile first */

/* ---- removal steps -------------------------------------------------------- */

struct step {
    int what;
    bool dry_run;
    struct sl_buf *report;
    const char *profile;
    struct sl_instance *in;
    size_t nblobs;
    char **ids;
};

static int collect_blob(void *arg, const char *id)
{
    struct step *s = arg;
    s->ids = sl_xrealloc(s->ids, (s->nblobs + 1) * sizeof *s->ids);
    s->ids[s->nblobs++] = sl_xstrdup(id);
    return 0;
}

static int run_step(struct step *s)
{
    struct sl_instance *in = s->in;
    struct sl_err err;
    int st = SLUICE_OK;
    const char *label = in->ctx.label;
    switch (s->what) {
    case SL_DROP_SOURCE: {
        const struct sluice_source_ops *ops = sl_source_ops(in);
        if (!ops->drop) {
            sl_buf_printf(s->report, "  %s: keeps nothing outside sluice (no drop step)\n", label);
            return 0;
        }
        if (s->dry_run) {
            sl_buf_printf(s->report, "  %s: would drop what it created (replication slot, "
                                     "publication)\n", label);
            return 0;
        }
        st = ops->drop(in->inst);
        if (st == SLUICE_OK)
            sl_buf_printf(s->report, "  %s: dropped what it created (replication slot, "
                                     "publication)\n", label);
        break;
    }
    case SL_DROP_SINK_PROFILE:
    case SL_DROP_SINK_METADATA: {
        const struct sluice_sink_ops *ops = sl_sink_ops(in);
        bool meta = s->what == SL_DROP_SINK_METADATA;
        int (*fn)(void *) = meta ? ops->drop_metadata : ops->drop_profile;
        const char *what = meta ? "its metadata tables in the target"
                                : "the profile's checkpoints and tombstones in the target";
        if (!fn) {
            sl_buf_printf(s->report, "  %s: cannot remove %s (the plugin has no such step)\n",
                          label, what);
            return 0;
        }
        if (s->dry_run) {
            sl_buf_printf(s->report, "  %s: would remove %s\n", label, what);
            return 0;
        }
        st = fn(in->inst);
        if (st == SLUICE_OK)
            sl_buf_printf(s->report, "  %s: removed %s\n", label, what);
        break;
    }
    case SL_DROP_SPILL_BLOBS: {
        const struct sluice_spill_ops *ops = sl_spill_ops(in);
        st = ops->list(in->inst, collect_blob, s);
        if (st != SLUICE_OK)
            break;
        size_t removed = 0;
        for (size_t i = 0; i < s->nblobs && !s->dry_run; i++) {
            st = ops->del(in->inst, s->ids[i]);
            if (st != SLUICE_OK)
                break;
            removed++;
        }
        sl_buf_printf(s->report, "  %s: %s %zu spill blobs\n", label,
                      s->dry_run ? "would remove" : "removed", s->dry_run ? s->nblobs : removed);
        break;
    }
    }
    if (st == SLUICE_OK)
        return 0;
    sl_instance_error(in, "drop", &err);
    sl_buf_printf(s->report, "  FAILED: %s\n", err.msg);
    return -1;
}

int sl_profile_drop(const struct sl_config *cfg, const struct sl_profile *p, int what,
                    bool dry_run, struct sl_buf *report)
{
    struct sl_plugin plugin = {0};
    struct sl_instance in = {0};
    struct sl_err err = {{0}};
    struct step s = {.what = what, .dry_run = dry_run, .report = report, .profile = p->name,
                     .in = &in};
    bool loaded = false, inited = false;
    int rc = -1, kind;
    const struct sl_plugin_ref *ref;
    const char *name;
    switch (what) {
    case SL_DROP_SOURCE: kind = SLUICE_KIND_SOURCE; ref = &p->source; break;
    case SL_DROP_SPILL_BLOBS: kind = SLUICE_KIND_SPILL; ref = &p->spill; break;
    default: kind = SLUICE_KIND_SINK; ref = &p->sink; break;
    }
    /* no spill section: the pipeline uses spill-fs when installed */
    name = ref->name ? ref->name : (kind == SLUICE_KIND_SPILL ? "fs" : NULL);
    if (!name) {
        sl_buf_printf(report, "  no %s plugin configured: nothing to do\n", sl_kind_name(kind));
        return 0;
    }
    char *plugin_state = sl_xasprintf("%s/profiles/%s", cfg->state_dir, p->name);
    if (sl_plugin_load(sl_plugin_dir(cfg), kind, name, &plugin, &err) != 0) {
        if (kind == SLUICE_KIND_SPILL && !ref->name) {
            rc = 0; /* no spill store installed: no blobs */
            goto out;
        }
        sl_buf_printf(report, "  FAILED: %s\n", err.msg);
        goto out;
    }
    loaded = true;
    struct sl_instance_opts io = {.run_mode = SLUICE_RUN_ONCE,
                                  .partitions = p->workers ? p->workers : 1,
                                  .state_dir = plugin_state};
    if (sl_instance_init(&in, &plugin, p, ref, &io, &err) != 0) {
        sl_buf_printf(report, "  FAILED: %s\n", err.msg);
        goto out;
    }
    inited = true;
    if (sl_instance_start(&in, &err) != SLUICE_OK) {
        sl_buf_printf(report, "  FAILED: %s (nothing was removed; fix it and run again)\n",
                      err.msg);
        goto out;
    }
    rc = run_step(&s);
out:
    if (inited) {
        sl_instance_stop(&in);
        sl_instance_destroy(&in);
    }
    if (loaded)
        sl_plugin_unload(&plugin);
    for (size_t i = 0; i < s.nblobs; i++)
        free(s.ids[i]);
    free(s.ids);
    free(plugin_state);
    return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int sl_remove_tree(const char *path)
{
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

int sl_profile_purge(const struct sl_config *cfg, const struct sl_profile *p, const char *name,
                     struct sl_state *st, struct sl_buf *report)
{
    int rc = 0;
    /* marked first: a crash half-way must not bring the profile back */
    if (sl_state_admin_set(st, name, SL_ADMIN_DELETED) != 0)
        return -1;
    sl_state_profile_set(st, name, false, "deleted", NULL);
    if (p) {
        if (sl_profile_drop(cfg, p, SL_DROP_SINK_PROFILE, false, report) != 0)
            rc = -1;
        if (sl_profile_drop(cfg, p, SL_DROP_SOURCE, false, report) != 0)
            rc = -1;
        if (sl_profile_drop(cfg, p, SL_DROP_SPILL_BLOBS, false, report) != 0)
            rc = -1;
    } else {
        sl_buf_printf(report,
                      "  no drop-in defines \"%s\" any more: its checkpoints in the target and "
                      "any replication slot could not be removed (restore its drop-in and delete "
                      "again, or remove them by hand)\n",
                      name);
    }
    int64_t failed = 0;
    if (sl_state_profile_forget(st, name, &failed) != 0)
        rc = -1;
    else
        sl_buf_printf(report, "  state store: removed its counters and %lld failed records\n",
                      (long long)failed);
    char *dir = sl_xasprintf("%s/profiles/%s", cfg->state_dir, name);
    if (sl_remove_tree(dir) != 0) {
        sl_buf_printf(report, "  FAILED: cannot remove %s: %s\n", dir, strerror(errno));
        rc = -1;
    } else {
        sl_buf_printf(report, "  removed %s\n", dir);
    }
    free(dir);
    return rc;
}

/* ---- the command ------------------------------------------------------------ */

struct list_row {
    char *name, *status;
    bool enabled;
};
struct list_rows {
    struct list_row *r;
    size_t n;
};

static void list_cb(void *arg, const struct sl_state_profile *sp)
{
    struct list_rows *l = arg;
    l->r = sl_xrealloc(l->r, (l->n + 1) * sizeof *l->r);
    l->r[l->n++] = (struct list_row){.name = sl_xstrdup(sp->name),
                                     .status = sl_xstrdup(sp->status ? sp->status : "-"),
                                     .enabled = sp->enabled};
}

static const struct list_row *find_row(const struct list_rows *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->r[i].name, name) == 0)
            return &l->r[i];
    return NULL;
}

static void print_list(const struct sl_config *cfg, struct sl_state *st)
{
    struct list_rows l = {0};
    sl_state_profiles(st, list_cb, &l);
    printf("%-20s %-10s %-9s %s\n", "PROFILE", "STATE", "STATUS", "DEFINED IN");
    for (size_t i = 0; i < cfg->nprofiles; i++) {
        const struct sl_profile *p = &cfg->profiles[i];
        int admin = sl_state_admin_get(st, p->name, NULL);
        const struct list_row *r = find_row(&l, p->name);
        const char *state = admin == SL_ADMIN_DELETED    ? "deleted"
                            : admin == SL_ADMIN_DISABLED ? "disabled"
                            : p->enabled                 ? "enabled"
                                                         : "disabled";
        char where[512];
        snprintf(where, sizeof where, "%s:%d%s", p->file, p->line,
                 !p->enabled && admin == SL_ADMIN_NONE ? " (enabled = false)" : "");
        printf("%-20s %-10s %-9s %s\n", p->name, state, r ? r->status : "never run", where);
    }
    for (size_t i = 0; i < l.n; i++) {
        if (sl_config_profile(cfg, l.r[i].name))
            continue;
        int admin = sl_state_admin_get(st, l.r[i].name, NULL);
        printf("%-20s %-10s %-9s %s\n", l.r[i].name,
               admin == SL_ADMIN_DELETED ? "deleted" : "removed", l.r[i].status,
               "- (no drop-in; only in the state store)");
    }
    for (size_t i = 0; i < l.n; i++) {
        free(l.r[i].name);
        free(l.r[i].status);
    }
    free(l.r);
}

static bool known_profile(const struct sl_config *cfg, struct sl_state *st, const char *name)
{
    if (sl_config_profile(cfg, name))
        return true;
    struct list_rows l = {0};
    sl_state_profiles(st, list_cb, &l);
    bool found = find_row(&l, name) != NULL;
    for (size_t i = 0; i < l.n; i++) {
        free(l.r[i].name);
        free(l.r[i].status);
    }
    free(l.r);
    return found;
}

int sl_cmd_profile(const char *conf, const char *action, const char *name)
{
    struct sl_config cfg = {0};
    struct sl_err err = {{0}};
    struct sl_state *st = NULL;
    struct sl_buf report = {0};
    char msg[2048];
    int rc = SL_EXIT_USAGE;
    bool list = strcmp(action, "list") == 0;
    bool enable = strcmp(action, "enable") == 0, disable = strcmp(action, "disable") == 0;
    bool del = strcmp(action, "delete") == 0;
    if (!list && !enable && !disable && !del) {
        fprintf(stderr, "sluice: profile %s: not one of enable, disable, delete, list\n", action);
        goto out;
    }
    if (!list && !name) {
        fprintf(stderr, "sluice: profile %s needs a profile name: sluice profile %s NAME\n",
                action, action);
        goto out;
    }
    rc = SL_EXIT_CONFIG;
    if (sl_config_load(conf, &cfg, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }
    sl_log_set_level(cfg.log_level);
    sl_log_set_format(cfg.log_format);
    rc = SL_EXIT_STATE;
    if (sl_state_open(cfg.state_dir, &st, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }
    if (list) {
        /* a running service flushes first so the status is current */
        sl_control_call(cfg.control_socket, "flush", NULL, 5000, msg, sizeof msg);
        print_list(&cfg, st);
        rc = SL_EXIT_OK;
        goto out;
    }
    rc = SL_EXIT_USAGE;
    if (!known_profile(&cfg, st, name)) {
        sl_error("profile \"%s\": not defined in %s/*.conf nor known to the state store; "
                 "`sluice profile list` shows the profiles",
                 name, cfg.conf_dir);
        goto out;
    }
    rc = SL_EXIT_FAILURE;
    int admin = enable ? SL_ADMIN_NONE : disable ? SL_ADMIN_DISABLED : SL_ADMIN_DELETED;
    const char *cmd = enable ? "profile-enable" : disable ? "profile-disable" : "profile-delete";
    if (!del && sl_state_admin_set(st, name, admin) != 0)
        goto out;
    int called = sl_control_call(cfg.control_socket, cmd, name, CONTROL_TIMEOUT_MS, msg,
                                 sizeof msg);
    if (called == SL_CONTROL_OK) {
        printf("%s\n", msg);
        rc = SL_EXIT_OK;
        goto out;
    }
    if (called != SL_CONTROL_NO_SERVICE) {
        sl_error("profile %s %s: %s", action, name, msg);
        goto out;
    }
    /* offline */
    const struct sl_profile *p = sl_config_profile(&cfg, name);
    if (enable) {
        printf("profile \"%s\" enabled; no service is running, it starts with the next `sluice "
               "run`%s\n",
               name, p && !p->enabled ? " once `enabled = false` is removed from its drop-in" : "");
    } else if (disable) {
        sl_state_profile_set(st, name, false, "disabled", NULL);
        printf("profile \"%s\" disabled; no service is running, `sluice run` skips it until "
               "`sluice profile enable %s`\n",
               name, name);
    } else {
        int prc = sl_profile_purge(&cfg, p, name, st, &report);
        sl_buf_append(&report, "", 1);
        printf("profile \"%s\" deleted%s:\n%s", name, prc == 0 ? "" : " with errors",
               report.data);
        if (p)
            printf("its drop-in %s still defines it: it stays deleted (skipped with a warning) "
                   "until you remove the drop-in, or run `sluice profile enable %s` to export it "
                   "again from scratch\n",
                   p->file, name);
        if (prc != 0)
            goto out;
    }
    rc = SL_EXIT_OK;
out:
    sl_buf_free(&report);
    sl_state_close(st);
    sl_config_free(&cfg);
    return rc;
}
