/*
 * failures.c - `sluice failures list|export|resync|clear NAME`: the
 * failed-record log of a profile (docs/failures.md).
 *
 * list, export and clear work offline on the state store. resync re-reads
 * each failed record by key through the source's fetch op, applies it
 * through the sink (worker 0's instance, without moving any checkpoint) and
 * removes the ones that now succeed. A running service is not disturbed:
 * resync writes only version-guarded rows.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <csv.h>

#include "batch.h"
#include "commands.h"
#include "config.h"
#include "instance.h"
#include "value_text.h"
#include "loader.h"
#include "log.h"
#include "state.h"
#include "util.h"

#ifndef SLUICE_DEFAULT_STATE_DIR
#define SLUICE_DEFAULT_STATE_DIR "/var/lib/sluice"
#endif

static const char failures_usage[] =
    "usage: sluice failures list NAME [-c CONF]\n"
    "       sluice failures export NAME [-c CONF] [--output FILE]\n"
    "       sluice failures resync NAME [-c CONF]\n"
    "       sluice failures clear NAME [-c CONF]\n"
    "\n"
    "  list    the failed records of profile NAME, oldest first\n"
    "  export  the same as RFC 4180 CSV with a header, to stdout or FILE\n"
    "  resync  fetch each record again from the source and apply it; the ones\n"
    "          that now succeed leave the log\n"
    "  clear   empty the profile's failed-record log\n"
    "\n"
    "exit codes: 0 ok (resync: every record resolved), 1 some records remain\n"
    "            after resync or the source cannot fetch, 2 bad command line,\n"
    "            3 config error, 4 plugin error, 5 state store error\n";

/* One failed record, copied out of the store. */
struct frec {
    int64_t id;
    char *entity, *record_id, *op, *position, *error;
    int64_t sync_time_us;
};

struct frecs {
    struct frec *items;
    size_t n, cap;
};

static char *dup_opt(const char *s)
{
    return s ? sl_xstrdup(s) : NULL;
}

static int collect_cb(void *arg, int64_t id, const struct sl_failed_record *r)
{
    struct frecs *fs = arg;
    if (fs->n == fs->cap) {
        fs->cap = fs->cap ? fs->cap * 2 : 64;
        fs->items = sl_xrealloc(fs->items, fs->cap * sizeof *fs->items);
    }
    fs->items[fs->n++] = (struct frec){.id = id,
                                       .entity = dup_opt(r->entity),
                                       .record_id = dup_opt(r->record_id),
                                       .op = dup_opt(r->op),
                                       .position = dup_opt(r->position),
                                       .error = dup_opt(r->error),
                                       .sync_time_us = r->sync_time_us};
    return 0;
}

static void frecs_free(struct frecs *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        struct frec *f = &fs->items[i];
        free(f->entity);
        free(f->record_id);
        free(f->op);
        free(f->position);
        free(f->error);
    }
    free(fs->items);
}

/* "2026-01-31T12:00:00.000001Z" */
static void format_time(int64_t us, char *out, size_t cap)
{
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%06lldZ", day, (long long)(us % 1000000));
}

/* ---- list ----------------------------------------------------------------- */

static int do_list(const char *name, const struct frecs *fs)
{
    if (fs->n == 0) {
        printf("profile %s: no failed records\n", name);
        return SL_EXIT_OK;
    }
    printf("profile %s: %zu failed record%s\n", name, fs->n, fs->n == 1 ? "" : "s");
    printf("%-8s %-27s %-20s %-24s %-8s %s\n", "ID", "SYNC TIME", "ENTITY", "RECORD ID", "OP",
           "ERROR");
    for (size_t i = 0; i < fs->n; i++) {
        const struct frec *f = &fs->items[i];
        char when[48];
        format_time(f->sync_time_us, when, sizeof when);
        printf("%-8lld %-27s %-20s %-24s %-8s %s\n", (long long)f->id, when,
               f->entity ? f->entity : "-", f->record_id ? f->record_id : "-",
               f->op ? f->op : "-", f->error ? f->error : "");
    }
    return SL_EXIT_OK;
}

/* ---- export ----------------------------------------------------------------- */

static int csv_field(FILE *out, const char *s, bool last)
{
    if (csv_fwrite(out, s ? s : "", s ? strlen(s) : 0) != 0)
        return -1;
    return fputs(last ? "\r\n" : ",", out) == EOF ? -1 : 0;
}

static int do_export(const char *name, const struct frecs *fs, const char *output)
{
    FILE *out = stdout;
    int rc = SL_EXIT_FAILURE;
    if (output) {
        out = fopen(output, "w");
        if (!out) {
            sl_error("failures export: cannot write %s: %m", output);
            return SL_EXIT_FAILURE;
        }
    }
    static const char *const header[] = {"id", "profile", "entity", "record_id", "op",
                                         "position", "sync_time", "error"};
    for (size_t h = 0; h < 8; h++)
        if (csv_field(out, header[h], h == 7) != 0)
            goto out;
    for (size_t i = 0; i < fs->n; i++) {
        const struct frec *f = &fs->items[i];
        char id[32], when[48];
        snprintf(id, sizeof id, "%lld", (long long)f->id);
        format_time(f->sync_time_us, when, sizeof when);
        if (csv_field(out, id, false) || csv_field(out, name, false) ||
            csv_field(out, f->entity, false) || csv_field(out, f->record_id, false) ||
            csv_field(out, f->op, false) || csv_field(out, f->position, false) ||
            csv_field(out, when, false) || csv_field(out, f->error, true))
            goto out;
    }
    if (fflush(out) != 0)
        goto out;
    rc = SL_EXIT_OK;
out:
    if (rc != SL_EXIT_OK)
        sl_error("failures export: write failed: %m");
    if (output && fclose(out) != 0 && rc == SL_EXIT_OK) {
        sl_error("failures export: cannot write %s: %m", output);
        rc = SL_EXIT_FAILURE;
    }
    if (output && rc == SL_EXIT_OK)
        fprintf(stderr, "sluice: exported %zu failed records of profile %s to %s\n", fs->n, name,
                output);
    return rc;
}

/* ---- resync ----------------------------------------------------------------- */

struct resync {
    const struct sl_config *cfg;
    const struct sl_profile *profile;
    struct sl_state *st;
    char *state_dir; /* <state_dir>/profiles/<name> */
    struct sl_plugin src_plugin, sink_plugin;
    bool src_loaded, sink_loaded;
    struct sl_instance src, sink;
    bool src_inited, sink_inited;
    uint64_t *prepared; /* entity fingerprints prepared in the sink */
    size_t nprepared;
};

static const struct sluice_entity *find_entity(struct resync *r, const char *name)
{
    struct sluice_ctx *ctx = &r->src.ctx;
    const struct sluice_entity *found = NULL;
    pthread_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->nentities; i++)
        if (strcmp(ctx->entities[i]->name, name) == 0)
            found = ctx->entities[i]; /* the latest declaration wins */
    pthread_mutex_unlock(&ctx->lock);
    return found;
}

/* Parse a record id (sluice/record_id.h) into key values in b's arena. 0, or
 * -1 with why. */
static int parse_key(struct resync *r, const struct sluice_entity *e, const char *id,
                     struct sluice_batch *b, struct sluice_value *key, char *why, size_t cap)
{
    const struct sluice_host *host = sl_host_api();
    const char *p = id;
    struct sl_buf v = {0};
    int rc = -1;
    for (uint32_t k = 0; k < e->nkeys; k++) {
        bool is_null = false;
        if (k > 0 && !*p) {
            snprintf(why, cap, "record id \"%s\" has fewer than the %u key values of %s", id,
                     e->nkeys, e->name);
            goto out;
        }
        if (sl_record_id_next(&p, k + 1 == e->nkeys, &v, &is_null) != 0) {
            snprintf(why, cap, "record id \"%s\" is malformed (a quote is not closed)", id);
            goto out;
        }
        const struct sluice_column *col = &e->columns[e->key_columns[k]];
        if (is_null) {
            snprintf(why, cap, "key column %s is NULL in record id \"%s\": nothing to fetch",
                     col->name, id);
            goto out;
        }
        if (host->value_parse(&r->src.ctx, b, col, v.data, v.len, &key[k]) != SLUICE_OK) {
            snprintf(why, cap, "key column %s: %s", col->name, r->src.ctx.error);
            r->src.ctx.error[0] = '\0';
            goto out;
        }
    }
    if (*p) {
        snprintf(why, cap, "record id \"%s\" has more than the %u key values of %s", id,
                 e->nkeys, e->name);
        goto out;
    }
    rc = 0;
out:
    sl_buf_free(&v);
    return rc;
}

static int prepare_once(struct resync *r, const struct sluice_entity *e, char *why, size_t cap)
{
    uint64_t fp = sl_entity_fingerprint(e);
    for (size_t i = 0; i < r->nprepared; i++)
        if (r->prepared[i] == fp)
            return 0;
    if (sl_sink_ops(&r->sink)->prepare(r->sink.inst, e) != SLUICE_OK) {
        struct sl_err err;
        sl_instance_error(&r->sink, "prepare", &err);
        snprintf(why, cap, "%s", err.msg);
        return -1;
    }
    r->prepared = sl_xrealloc(r->prepared, (r->nprepared + 1) * sizeof *r->prepared);
    r->prepared[r->nprepared++] = fp;
    return 0;
}

/* Fetch and apply one failed record. 0 when it is now in the target. */
static int resync_one(struct resync *r, const struct frec *f, char *why, size_t cap)
{
    const struct sluice_host *host = sl_host_api();
    struct sluice_batch *b = NULL;
    struct sl_err err;
    int rc = -1;
    if (!f->entity || !f->record_id) {
        snprintf(why, cap, "no %s recorded, so it cannot be fetched again; the batch it "
                           "belonged to is replayed if you re-run the initial sync",
                 f->entity ? "record id" : "entity");
        goto out;
    }
    const struct sluice_entity *e = find_entity(r, f->entity);
    if (!e) {
        snprintf(why, cap, "the source does not describe entity %s any more", f->entity);
        goto out;
    }
    b = host->batch_new(&r->src.ctx);
    struct sluice_value *key = host->batch_alloc(b, (e->nkeys ? e->nkeys : 1) * sizeof *key);
    if (!b || !key) {
        snprintf(why, cap, "out of memory");
        goto out;
    }
    if (parse_key(r, e, f->record_id, b, key, why, cap) != 0)
        goto out;
    size_t before = b->nevents;
    int st = sl_source_ops(&r->src)->fetch(r->src.inst, e, key, b);
    if (st != SLUICE_OK) {
        sl_instance_error(&r->src, "fetch", &err);
        snprintf(why, cap, "%s", err.msg);
        goto out;
    }
    if (b->nevents == before) {
        snprintf(why, cap, "the source returned nothing for it");
        goto out;
    }
    for (size_t i = before; i < b->nevents; i++)
        if (prepare_once(r, b->events[i].entity, why, cap) != 0)
            goto out;
    b->position.len = 0; /* never move a checkpoint from here */
    b->partition = 0;
    size_t failed = SIZE_MAX;
    st = sl_sink_ops(&r->sink)->apply(r->sink.inst, b, &failed);
    if (st != SLUICE_OK) {
        sl_instance_error(&r->sink, "apply", &err);
        snprintf(why, cap, "%s%s", st == SLUICE_RETRY ? "(transient, try again) " : "",
                 err.msg);
        goto out;
    }
    rc = 0;
out:
    if (b)
        host->batch_discard(b);
    return rc;
}

/* Outside a run the host tells plugins to stop; a fetch must read to the end. */
static bool resync_never_stopping(void *arg)
{
    (void)arg;
    return false;
}

static void resync_close(struct resync *r)
{
    if (r->src_inited) {
        if (r->src.started)
            sl_instance_stop(&r->src);
        sl_instance_destroy(&r->src);
    }
    if (r->sink_inited) {
        if (r->sink.started)
            sl_instance_stop(&r->sink);
        sl_instance_destroy(&r->sink);
    }
    if (r->src_loaded)
        sl_plugin_unload(&r->src_plugin);
    if (r->sink_loaded)
        sl_plugin_unload(&r->sink_plugin);
    free(r->prepared);
    free(r->state_dir);
}

static int do_resync(struct resync *r, const struct frecs *fs)
{
    const struct sl_profile *p = r->profile;
    const char *dir = sl_plugin_dir(r->cfg);
    struct sl_err err;
    if (fs->n == 0) {
        printf("profile %s: no failed records to resync\n", p->name);
        return SL_EXIT_OK;
    }
    if (sl_plugin_load(dir, SLUICE_KIND_SOURCE, p->source.name, &r->src_plugin, &err) != 0) {
        sl_error("%s", err.msg);
        return SL_EXIT_PLUGIN;
    }
    r->src_loaded = true;
    const struct sluice_source_ops *sops = r->src_plugin.desc->ops;
    if (!sops->fetch) {
        sl_error("profile \"%s\": source plugin \"%s\" cannot fetch a record by its key (it has "
                 "no fetch op), so `failures resync` cannot re-read the %zu failed records; "
                 "fix the cause in the target, then re-export them from the source (for a "
                 "full re-read: drop the profile's checkpoint in the target and run again), "
                 "and `sluice failures clear %s`",
                 p->name, p->source.name, fs->n, p->name);
        return SL_EXIT_FAILURE;
    }
    if (sl_plugin_load(dir, SLUICE_KIND_SINK, p->sink.name, &r->sink_plugin, &err) != 0) {
        sl_error("%s", err.msg);
        return SL_EXIT_PLUGIN;
    }
    r->sink_loaded = true;
    struct sl_instance_opts io = {.run_mode = SLUICE_RUN_ONCE,
                                  .partitions = p->workers ? p->workers : 1,
                                  .worker = 0,
                                  .state_dir = r->state_dir};
    if (sl_mkdir_p(r->state_dir, 0700) != 0) {
        sl_error("cannot create %s: %m", r->state_dir);
        return SL_EXIT_STATE;
    }
    if (sl_instance_init(&r->src, &r->src_plugin, p, &p->source, &io, &err) != 0) {
        sl_error("%s", err.msg);
        return SL_EXIT_PLUGIN;
    }
    r->src_inited = true;
    r->src.ctx.hooks.stopping = resync_never_stopping;
    if (sl_instance_init(&r->sink, &r->sink_plugin, p, &p->sink, &io, &err) != 0) {
        sl_error("%s", err.msg);
        return SL_EXIT_PLUGIN;
    }
    r->sink_inited = true;
    if (sl_instance_start(&r->src, &err) != SLUICE_OK ||
        sl_instance_start(&r->sink, &err) != SLUICE_OK) {
        sl_error("%s; nothing was changed, try again when it is reachable", err.msg);
        return SL_EXIT_FAILURE;
    }
    if (sops->describe(r->src.inst) != SLUICE_OK) {
        sl_instance_error(&r->src, "describe", &err);
        sl_error("%s", err.msg);
        return SL_EXIT_FAILURE;
    }
    size_t resolved = 0;
    for (size_t i = 0; i < fs->n; i++) {
        const struct frec *f = &fs->items[i];
        char why[2048];
        if (resync_one(r, f, why, sizeof why) == 0) {
            if (sl_state_failed_delete(r->st, f->id) != 0)
                return SL_EXIT_STATE;
            resolved++;
            sl_info("profile \"%s\": entity %s: record %s resynced", p->name, f->entity,
                    f->record_id);
        } else {
            sl_warn("profile \"%s\": entity %s: record %s still fails: %s", p->name,
                    f->entity ? f->entity : "?", f->record_id ? f->record_id : "?", why);
        }
    }
    printf("profile %s: resynced %zu of %zu failed records, %zu remain%s\n", p->name, resolved,
           fs->n, fs->n - resolved,
           resolved == fs->n ? "" : " (see `sluice failures list`)");
    return resolved == fs->n ? SL_EXIT_OK : SL_EXIT_FAILURE;
}

/* ---- the command -------------------------------------------------------------- */

enum { LONG_OUTPUT = 300 };

int sl_cmd_failures(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"output", required_argument, NULL, LONG_OUTPUT},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *conf = NULL, *output = NULL;
    struct sl_config cfg = {0};
    struct sl_err err = {{0}};
    struct sl_state *st = NULL;
    struct frecs fs = {0};
    struct resync r = {0};
    int rc = SL_EXIT_USAGE, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': conf = optarg; break;
        case 'o':
        case LONG_OUTPUT: output = optarg; break;
        case 'h': fputs(failures_usage, stdout); rc = SL_EXIT_OK; goto out;
        case ':':
            fprintf(stderr, "sluice failures: option %s needs a value\n\n%s", argv[optind - 1],
                    failures_usage);
            goto out;
        default:
            fprintf(stderr, "sluice failures: unknown option %s\n\n%s", argv[optind - 1],
                    failures_usage);
            goto out;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "sluice failures: expected an action and a profile NAME\n\n%s",
                failures_usage);
        goto out;
    }
    const char *action = argv[optind], *name = argv[optind + 1];
    bool is_list = strcmp(action, "list") == 0, is_export = strcmp(action, "export") == 0,
         is_resync = strcmp(action, "resync") == 0, is_clear = strcmp(action, "clear") == 0;
    if (!is_list && !is_export && !is_resync && !is_clear) {
        fprintf(stderr, "sluice failures: unknown action %s (list, export, resync, clear)\n\n%s",
                action, failures_usage);
        goto out;
    }
    if (output && !is_export) {
        fprintf(stderr, "sluice failures: --output applies to export only\n");
        goto out;
    }
    rc = SL_EXIT_CONFIG;
    if (sl_config_load(conf, &cfg, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }
    sl_log_set_level(cfg.log_level);
    const struct sl_profile *profile = sl_config_profile(&cfg, name);
    if (is_resync && !profile) {
        sl_error("failures resync: no profile \"%s\" in %s and its conf.d; resync needs the "
                 "profile's source and sink",
                 name, cfg.main_file);
        goto out;
    }
    rc = SL_EXIT_STATE;
    const char *state_dir = cfg.state_dir ? cfg.state_dir : SLUICE_DEFAULT_STATE_DIR;
    if (sl_state_open(state_dir, &st, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }
    if (is_clear) {
        int64_t removed = 0;
        if (sl_state_failed_clear(st, name, &removed) != 0)
            goto out;
        printf("profile %s: removed %lld failed records\n", name, (long long)removed);
        rc = SL_EXIT_OK;
        goto out;
    }
    if (sl_state_failed_list(st, name, collect_cb, &fs) != 0)
        goto out;
    if (is_list) {
        rc = do_list(name, &fs);
    } else if (is_export) {
        rc = do_export(name, &fs, output);
    } else {
        r.cfg = &cfg;
        r.profile = profile;
        r.st = st;
        r.state_dir = sl_xasprintf("%s/profiles/%s", state_dir, name);
        rc = do_resync(&r, &fs);
    }
out:
    resync_close(&r);
    frecs_free(&fs);
    sl_state_close(st);
    sl_config_free(&cfg);
    return rc;
}
