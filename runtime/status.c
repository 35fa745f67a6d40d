/*
 * status.c - `sluice status`: what the state store knows about every
 * profile (works whether or not a service is running): enabled, status,
 * last error, last success, failed-record count and per-entity counters.
 * A table on stdout, or JSON (jansson) with --json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "commands.h"
#include "config.h"
#include "control.h"
#include "log.h"
#include "state.h"
#include "util.h"

#ifndef SLUICE_DEFAULT_STATE_DIR
#define SLUICE_DEFAULT_STATE_DIR "/var/lib/sluice"
#endif

struct prof {
    char *name;
    bool enabled, known; /* known: has a row in the state store */
    char *status, *last_error;
    int64_t last_success_us;
};

struct profs {
    struct prof *items;
    size_t n;
};

static struct prof *prof_add(struct profs *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i].name, name) == 0)
            return &ps->items[i];
    ps->items = sl_xrealloc(ps->items, (ps->n + 1) * sizeof *ps->items);
    struct prof *p = &ps->items[ps->n++];
    *p = (struct prof){.name = sl_xstrdup(name)};
    return p;
}

static void profile_cb(void *arg, const struct sl_state_profile *sp)
{
    struct prof *p = prof_add(arg, sp->name);
    p->known = true;
    p->enabled = sp->enabled;
    p->status = sp->status ? sl_xstrdup(sp->status) : NULL;
    p->last_error = sp->last_error ? sl_xstrdup(sp->last_error) : NULL;
    p->last_success_us = sp->last_success_us;
}

static int prof_cmp(const void *a, const void *b)
{
    return strcmp(((const struct prof *)a)->name, ((const struct prof *)b)->name);
}

static void format_time(int64_t us, char *buf, size_t cap)
{
    if (us <= 0) {
        snprintf(buf, cap, "never");
        return;
    }
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- table -------------------------------------------------------------- */

static const char *const columns[] = {"rows_read", "applied_rows", "inserts", "updates",
                                      "deletes", "failed", "batches"};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

struct entity_row {
    char *entity;
    int64_t v[NCOLUMNS];
    bool has[NCOLUMNS];
};

struct table {
    struct entity_row *rows;
    size_t n;
    int64_t retries;
};

static void table_cb(void *arg, const char *entity, const char *name, int64_t value)
{
    struct table *t = arg;
    if (!*entity) {
        if (strcmp(name, "retries") == 0)
            t->retries = value;
        return;
    }
    size_t k = 0;
    while (k < NCOLUMNS && strcmp(columns[k], name) != 0)
        k++;
    if (k == NCOLUMNS)
        return;
    if (t->n == 0 || strcmp(t->rows[t->n - 1].entity, entity) != 0) { /* sorted by entity */
        t->rows = sl_xrealloc(t->rows, (t->n + 1) * sizeof *t->rows);
        t->rows[t->n++] = (struct entity_row){.entity = sl_xstrdup(entity)};
    }
    t->rows[t->n - 1].v[k] = value;
    t->rows[t->n - 1].has[k] = true;
}

static void print_table(struct sl_state *st, const struct profs *ps)
{
    printf("%-20s %-8s %-9s %-21s %s\n", "PROFILE", "ENABLED", "STATUS", "LAST SUCCESS",
           "FAILED RECORDS");
    for (size_t i = 0; i < ps->n; i++) {
        const struct prof *p = &ps->items[i];
        char when[64];
        int64_t failed = 0;
        format_time(p->last_success_us, when, sizeof when);
        sl_state_failed_count(st, p->name, &failed);
        printf("%-20s %-8s %-9s %-21s %lld\n", p->name, p->enabled ? "yes" : "no",
               p->known ? (p->status ? p->status : "-") : "never run", when,
               (long long)failed);
        if (p->last_error)
            printf("  last error: %s\n", p->last_error);
        struct table t = {0};
        sl_state_counters(st, p->name, table_cb, &t);
        if (t.n) {
            printf("  %-24s", "ENTITY");
            for (size_t k = 0; k < NCOLUMNS; k++)
                printf(" %13s", columns[k]);
            putchar('\n');
        }
        for (size_t r = 0; r < t.n; r++) {
            printf("  %-24s", t.rows[r].entity);
            for (size_t k = 0; k < NCOLUMNS; k++)
                printf(" %13lld", (long long)t.rows[r].v[k]);
            putchar('\n');
            free(t.rows[r].entity);
        }
        if (t.retries)
            printf("  retries: %lld\n", (long long)t.retries);
        free(t.rows);
    }
}

/* ---- json --------------------------------------------------------------- */

struct json_counters {
    json_t *entities; /* object: entity -> {name: value} */
    json_t *profile;  /* object: profile-level counters */
};

static void json_cb(void *arg, const char *entity, const char *name, int64_t value)
{
    struct json_counters *jc = arg;
    json_t *target = jc->profile;
    if (*entity) {
        target = json_object_get(jc->entities, entity);
        if (!target) {
            target = json_object();
            json_object_set_new(jc->entities, entity, target);
        }
    }
    json_object_set_new(target, name, json_integer(value));
}

static int print_json(struct sl_state *st, const struct profs *ps)
{
    json_t *root = json_object();
    json_t *arr = json_array();
    json_object_set_new(root, "profiles", arr);
    for (size_t i = 0; i < ps->n; i++) {
        const struct prof *p = &ps->items[i];
        int64_t failed = 0;
        char when[64];
        sl_state_failed_count(st, p->name, &failed);
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(p->name));
        json_object_set_new(o, "enabled", json_boolean(p->enabled));
        json_object_set_new(o, "status",
                            p->known && p->status ? json_string(p->status) : json_null());
        json_object_set_new(o, "last_error",
                            p->last_error ? json_string(p->last_error) : json_null());
        if (p->last_success_us > 0) {
            format_time(p->last_success_us, when, sizeof when);
            json_object_set_new(o, "last_success", json_string(when));
            json_object_set_new(o, "last_success_us", json_integer(p->last_success_us));
        } else {
            json_object_set_new(o, "last_success", json_null());
            json_object_set_new(o, "last_success_us", json_null());
        }
        json_object_set_new(o, "failed_records", json_integer(failed));
        struct json_counters jc = {.entities = json_object(), .profile = json_object()};
        sl_state_counters(st, p->name, json_cb, &jc);
        json_object_set_new(o, "counters", jc.profile);
        json_object_set_new(o, "entities", jc.entities);
        json_array_append_new(arr, o);
    }
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    putchar('\n');
    json_decref(root);
    return rc;
}

int sl_cmd_status(const char *conf, bool json)
{
    struct sl_config cfg = {0};
    struct sl_err err = {{0}};
    struct sl_state *st = NULL;
    struct profs ps = {0};
    int rc = SL_EXIT_CONFIG;
    if (sl_config_load(conf, &cfg, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }
    sl_log_set_level(cfg.log_level);
    rc = SL_EXIT_STATE;
    const char *state_dir = cfg.state_dir ? cfg.state_dir : SLUICE_DEFAULT_STATE_DIR;
    if (sl_state_open(state_dir, &st, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }
    /* a running service writes what it counted first, so that this is current */
    char flush_msg[256];
    sl_control_call(cfg.control_socket, "flush", NULL, 5000, flush_msg, sizeof flush_msg);
    /* configured profiles first (so a never-run one shows), then whatever
     * the store remembers (a profile since removed from conf.d) */
    for (size_t i = 0; i < cfg.nprofiles; i++)
        prof_add(&ps, cfg.profiles[i].name)->enabled = cfg.profiles[i].enabled;
    if (sl_state_profiles(st, profile_cb, &ps) != 0)
        goto out;
    qsort(ps.items, ps.n, sizeof *ps.items, prof_cmp);
    if (json) {
        if (print_json(st, &ps) != 0)
            goto out;
    } else {
        print_table(st, &ps);
    }
    fflush(stdout);
    rc = SL_EXIT_OK;
out:
    for (size_t i = 0; i < ps.n; i++) {
        free(ps.items[i].name);
        free(ps.items[i].status);
        free(ps.items[i].last_error);
    }
    free(ps.items);
    sl_state_close(st);
    sl_config_free(&cfg);
    return rc;
}
