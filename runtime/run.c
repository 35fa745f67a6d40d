/*
 * run.c - `sluice run`: start one pipeline per selected, enabled profile,
 * wait for them (--once) or for SIGTERM/SIGINT (service), flush counters
 * about once a second, print a summary per profile on stderr.
 *
 * As a service it also reconciles, about twice a second, the running
 * pipelines with what should run: the config (SIGHUP reloads conf.d and
 * restarts only the profiles whose settings changed), the administrator's
 * lifecycle decisions in the state store (`sluice profile ...`), and the
 * control socket's requests; it serves metrics and talks to systemd.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "control.h"
#include "lifecycle.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "progress.h"
#include "sd_notify.h"
#include "state.h"
#include "util.h"

#ifndef SLUICE_DEFAULT_STATE_DIR
#define SLUICE_DEFAULT_STATE_DIR "/var/lib/sluice"
#endif

#define FLUSH_INTERVAL_US 1000000u

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.0.0"
#endif

const char *sl_version(void)
{
    return SLUICE_VERSION;
}

static int sig_pipe[2] = {-1, -1};

/* Only async-signal-safe work here: note the signal in the self-pipe. */
static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    ssize_t w = write(sig_pipe[1], &c, 1);
    (void)w;
    errno = saved;
}

static struct sigaction old_hup;

static int install_signals(struct sigaction *old_term, struct sigaction *old_int)
{
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, old_term);
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGHUP, &sa, &old_hup);
    signal(SIGPIPE, SIG_IGN); /* a dropped connection is an error code, not a death */
    return 0;
}

static void restore_signals(const struct sigaction *old_term, const struct sigaction *old_int)
{
    sigaction(SIGTERM, old_term, NULL);
    sigaction(SIGINT, old_int, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
}

/* A loaded config, shared by the jobs started from it (SIGHUP keeps the old
 * one alive while its unchanged profiles go on running). */
struct cfg_ref {
    struct sl_config cfg;
    int refs;
};

struct job {
    struct sl_pipeline *pl;
    pthread_t thread;
    bool started;
    int result;
    struct cfg_ref *cref;
    const struct sl_profile *p;
    uint64_t fp;               /* settings fingerprint when started */
    bool stop_requested;       /* by an administrator, a reload or a signal */
    bool has_req;              /* a control request answered when it ends */
    struct sl_control_req req;
};

/* a byte in the self-pipe that is no signal: a pipeline ended, reap it now
 * (not at the loop's next 200 ms tick) */
#define WAKE_REAP 0

static void *job_main(void *arg)
{
    struct job *j = arg;
    j->result = sl_pipeline_run(j->pl);
    char c = WAKE_REAP;
    ssize_t w = write(sig_pipe[1], &c, 1); /* full pipe: the loop is awake anyway */
    (void)w;
    return NULL;
}

/* ---- summary ------------------------------------------------------------ */

static const char *const summary_names[] = {"rows_read", "applied_rows", "inserts", "updates",
                                            "deletes", "failed"};
#define NSUMMARY (sizeof summary_names / sizeof summary_names[0])

struct summary_row {
    char *entity;
    int64_t v[NSUMMARY];
};

struct summary {
    struct summary_row *rows;
    size_t n;
    int64_t retries;
};

static void summary_cb(void *arg, const char *entity, const char *name, int64_t value)
{
    struct summary *s = arg;
    if (!*entity) {
        if (strcmp(name, "retries") == 0)
            s->retries += value;
        return;
    }
    size_t k = 0;
    while (k < NSUMMARY && strcmp(summary_names[k], name) != 0)
        k++;
    if (k == NSUMMARY)
        return;
    size_t i = 0;
    while (i < s->n && strcmp(s->rows[i].entity, entity) != 0)
        i++;
    if (i == s->n) {
        s->rows = sl_xrealloc(s->rows, (s->n + 1) * sizeof *s->rows);
        s->rows[s->n] = (struct summary_row){.entity = sl_xstrdup(entity)};
        s->n++;
    }
    s->rows[i].v[k] += value;
}

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct summary_row *)a)->entity, ((const struct summary_row *)b)->entity);
}

static void print_summary(struct sl_state *st, struct job *j)
{
    static const char *const outcome[] = {"done", "stopped", "FAILED"};
    const char *name = sl_pipeline_name(j->pl);
    struct summary s = {0};
    sl_state_run_counters(st, name, summary_cb, &s);
    if (s.n)
        qsort(s.rows, s.n, sizeof *s.rows, row_cmp);
    fprintf(stderr, "profile %s: %s in %.1f s", name, outcome[j->result],
            (double)sl_pipeline_elapsed_us(j->pl) / 1e6);
    if (s.retries)
        fprintf(stderr, ", %lld retries", (long long)s.retries);
    fputc('\n', stderr);
    for (size_t i = 0; i < s.n; i++) {
        const int64_t *v = s.rows[i].v;
        fprintf(stderr,
                "  %-24s read %lld, applied %lld (insert %lld, update %lld, delete %lld), "
                "failed %lld\n",
                s.rows[i].entity, (long long)v[0], (long long)v[1], (long long)v[2],
                (long long)v[3], (long long)v[4], (long long)v[5]);
        free(s.rows[i].entity);
    }
    if (j->result == SL_PIPELINE_FAILED)
        fprintf(stderr, "  error: %s\n", sl_pipeline_error(j->pl));
    free(s.rows);
}

/* ---- the command -------------------------------------------------------- */

#define RECONCILE_US 500000u
#define PROGRESS_DRAW_US 500000u

static bool selected(const char *name, const char *const *profiles, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (strcmp(profiles[i], name) == 0)
            return true;
    return false;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211u;
    return h;
}

/* Everything written in a setting: names, types and values, recursively. */
static uint64_t hash_setting(uint64_t h, const config_setting_t *s)
{
    const char *name = config_setting_name(s);
    int type = config_setting_type(s);
    if (name)
        h = fnv(h, name, strlen(name) + 1);
    h = fnv(h, &type, sizeof type);
    switch (type) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: {
        long long v = config_setting_get_int64(s);
        return fnv(h, &v, sizeof v);
    }
    case CONFIG_TYPE_FLOAT: {
        double v = config_setting_get_float(s);
        return fnv(h, &v, sizeof v);
    }
    case CONFIG_TYPE_BOOL: {
        int v = config_setting_get_bool(s);
        return fnv(h, &v, sizeof v);
    }
    case CONFIG_TYPE_STRING: {
        const char *v = config_setting_get_string(s);
        return fnv(h, v, strlen(v) + 1);
    }
    default:
        for (int i = 0; i < config_setting_length(s); i++)
            h = hash_setting(h, config_setting_get_elem(s, (unsigned)i));
        return h;
    }
}

static bool setting_is_profile(const config_setting_t *g, const char *name)
{
    const char *n = NULL;
    return config_setting_type(g) == CONFIG_TYPE_GROUP &&
           config_setting_lookup_string(g, "name", &n) && strcmp(n, name) == 0;
}

/* A fingerprint of the profile's settings (its group in its drop-in) and of
 * the main settings every pipeline uses: what SIGHUP compares. */
static uint64_t profile_fp(const struct sl_config *cfg, const struct sl_profile *p)
{
    uint64_t h = fnv(14695981039346656037u, p->name, strlen(p->name) + 1);
    const char *pd = sl_plugin_dir(cfg);
    h = fnv(h, pd, strlen(pd) + 1);
    for (size_t i = 0; i < cfg->ndocs; i++) {
        if (strcmp(cfg->doc_files[i], p->file) != 0)
            continue;
        const config_setting_t *list = config_lookup(cfg->docs[i], "profiles");
        if (!list)
            continue;
        if (setting_is_profile(list, p->name))
            return hash_setting(h, list);
        for (int k = 0; k < config_setting_length(list); k++) {
            const config_setting_t *g = config_setting_get_elem(list, (unsigned)k);
            if (setting_is_profile(g, p->name))
                return hash_setting(h, g);
        }
    }
    return fnv(h, p->file, strlen(p->file) + 1); /* not found: by file */
}

struct failed_mark {
    char *name;
    uint64_t fp;
};

struct service {
    struct cfg_ref *cur;
    struct sl_state *st;
    struct sl_pipeline_opts opts;
    bool once, shutting_down, started;
    uint64_t drain_deadline_us;
    const char *const *select;
    size_t nselect;
    struct job **jobs;
    size_t njobs;
    struct failed_mark *failed; /* failed with these settings: not restarted until changed */
    size_t nfailed;
    struct sl_control *ctl;
    int rc;
};

static void cfg_unref(struct cfg_ref *c)
{
    if (c && --c->refs == 0) {
        sl_config_free(&c->cfg);
        free(c);
    }
}

static struct failed_mark *failed_find(struct service *sv, const char *name)
{
    for (size_t i = 0; i < sv->nfailed; i++)
        if (strcmp(sv->failed[i].name, name) == 0)
            return &sv->failed[i];
    return NULL;
}

static void failed_clear(struct service *sv, const char *name)
{
    struct failed_mark *m = failed_find(sv, name);
    if (!m)
        return;
    free(m->name);
    *m = sv->failed[--sv->nfailed];
}

static struct job *job_of(struct service *sv, const char *name)
{
    for (size_t i = 0; i < sv->njobs; i++)
        if (strcmp(sl_pipeline_name(sv->jobs[i]->pl), name) == 0)
            return sv->jobs[i];
    return NULL;
}

/* Whether profile p should run now, and if not why (for the log). */
static bool wanted(struct service *sv, const struct sl_profile *p, uint64_t fp, int *admin)
{
    *admin = sl_state_admin_get(sv->st, p->name, NULL);
    if (sv->shutting_down || !selected(p->name, sv->select, sv->nselect) || !p->enabled ||
        *admin != SL_ADMIN_NONE)
        return false;
    struct failed_mark *m = failed_find(sv, p->name);
    return !m || m->fp != fp;
}

static void start_job(struct service *sv, const struct sl_profile *p, uint64_t fp)
{
    struct job *j = sl_xcalloc(1, sizeof *j);
    j->cref = sv->cur;
    j->cref->refs++;
    j->p = p;
    j->fp = fp;
    j->pl = sl_pipeline_new(&sv->cur->cfg, p, &sv->opts);
    failed_clear(sv, p->name);
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        sl_error("profile \"%s\": cannot start its thread: %s", p->name, strerror(errno));
        j->result = SL_PIPELINE_FAILED;
        sv->rc = SL_EXIT_FAILURE;
        sl_pipeline_free(j->pl);
        cfg_unref(j->cref);
        free(j);
        return;
    }
    j->started = true;
    sv->jobs = sl_xrealloc(sv->jobs, (sv->njobs + 1) * sizeof *sv->jobs);
    sv->jobs[sv->njobs++] = j;
}

static void stop_job(struct job *j, const char *why)
{
    if (j->stop_requested)
        return;
    j->stop_requested = true;
    sl_info("profile \"%s\": stopping (%s); what was read is applied first", j->p->name, why);
    sl_pipeline_stop(j->pl);
}

/* Make the running pipelines match what should run. */
static void reconcile(struct service *sv)
{
    const struct sl_config *cfg = &sv->cur->cfg;
    for (size_t i = 0; i < sv->njobs; i++) {
        struct job *j = sv->jobs[i];
        const struct sl_profile *p = sl_config_profile(cfg, j->p->name);
        int admin = SL_ADMIN_NONE;
        if (!p)
            stop_job(j, "its drop-in was removed");
        else if (profile_fp(cfg, p) != j->fp)
            stop_job(j, "its settings changed; it starts again with the new ones");
        else if (!wanted(sv, p, j->fp, &admin) && !sv->shutting_down)
            stop_job(j, admin == SL_ADMIN_DELETED  ? "deleted by `sluice profile delete`"
                        : admin == SL_ADMIN_DISABLED ? "disabled by `sluice profile disable`"
                                                     : "disabled in its drop-in");
    }
    if (sv->once && sv->started)
        return; /* a one-shot run starts its profiles once */
    for (size_t i = 0; i < cfg->nprofiles; i++) {
        const struct sl_profile *p = &cfg->profiles[i];
        uint64_t fp = profile_fp(cfg, p);
        int admin;
        if (job_of(sv, p->name) || !wanted(sv, p, fp, &admin))
            continue;
        start_job(sv, p, fp);
    }
    sv->started = true;
}

static void note_skipped(struct service *sv)
{
    const struct sl_config *cfg = &sv->cur->cfg;
    for (size_t i = 0; i < cfg->nprofiles; i++) {
        const struct sl_profile *p = &cfg->profiles[i];
        if (!selected(p->name, sv->select, sv->nselect))
            continue;
        int64_t since = 0;
        int admin = sl_state_admin_get(sv->st, p->name, &since);
        if (admin == SL_ADMIN_DELETED) {
            char when[64] = "earlier";
            time_t t = (time_t)(since / 1000000);
            struct tm tm;
            if (since > 0 && gmtime_r(&t, &tm))
                strftime(when, sizeof when, "on %Y-%m-%d %H:%M:%SZ", &tm);
            sl_warn("profile \"%s\" (%s:%d) was deleted with `sluice profile delete` %s and is "
                    "skipped; remove its drop-in, or run `sluice profile enable %s` to export "
                    "it again from scratch",
                    p->name, p->file, p->line, when, p->name);
        } else if (admin == SL_ADMIN_DISABLED) {
            sl_info("profile \"%s\" is disabled (`sluice profile disable`): skipped; `sluice "
                    "profile enable %s` resumes it",
                    p->name, p->name);
            sl_state_profile_set(sv->st, p->name, false, "disabled", NULL);
        } else if (!p->enabled) {
            sl_info("profile \"%s\" is disabled (enabled = false, %s:%d): skipped", p->name,
                    p->file, p->line);
            sl_state_profile_set(sv->st, p->name, false, "disabled", NULL);
        }
    }
}

static void finish_request(struct service *sv, struct job *j);

/* Join the pipelines that ended, report them and forget them. */
static void reap(struct service *sv)
{
    for (size_t i = 0; i < sv->njobs;) {
        struct job *j = sv->jobs[i];
        if (!sl_pipeline_finished(j->pl)) {
            i++;
            continue;
        }
        if (j->started)
            pthread_join(j->thread, NULL);
        print_summary(sv->st, j);
        const char *name = j->p->name;
        if (j->result == SL_PIPELINE_FAILED) {
            sv->rc = SL_EXIT_FAILURE;
            struct failed_mark *m = failed_find(sv, name);
            if (!m) {
                sv->failed = sl_xrealloc(sv->failed, (sv->nfailed + 1) * sizeof *sv->failed);
                m = &sv->failed[sv->nfailed++];
                m->name = sl_xstrdup(name);
            }
            m->fp = j->fp;
            if (!sv->once)
                sl_error("profile \"%s\" failed; the other profiles go on. Fix the cause, then "
                         "`sluice profile enable %s` or SIGHUP (after changing its drop-in) "
                         "starts it again",
                         name, name);
        } else if (j->result == SL_PIPELINE_STOPPED && sv->once &&
                   (sv->shutting_down || !j->stop_requested) && sv->rc == SL_EXIT_OK) {
            sl_warn("profile \"%s\": stopped before the one-shot run finished; run again to "
                    "complete it",
                    name);
            sv->rc = SL_EXIT_FAILURE;
        }
        int admin = sl_state_admin_get(sv->st, name, NULL);
        if (admin == SL_ADMIN_DISABLED && j->result != SL_PIPELINE_FAILED)
            sl_state_profile_set(sv->st, name, false, "disabled", NULL);
        finish_request(sv, j);
        sl_pipeline_free(j->pl);
        cfg_unref(j->cref);
        free(j);
        sv->jobs[i] = sv->jobs[--sv->njobs];
    }
}

/* ---- control requests ----------------------------------------------------- */

static void purge_and_reply(struct service *sv, const char *name, struct sl_control_req *req)
{
    struct sl_buf report = {0};
    const struct sl_profile *p = sl_config_profile(&sv->cur->cfg, name);
    int rc = sl_profile_purge(&sv->cur->cfg, p, name, sv->st, &report);
    sl_buf_append(&report, "", 1);
    sl_info("profile \"%s\" deleted%s:\n%s", name, rc == 0 ? "" : " with errors", report.data);
    sl_control_reply(req, rc == 0, "profile \"%s\" deleted%s:\n%s%s", name,
                     rc == 0 ? "" : " with errors", report.data,
                     p ? "its drop-in still defines it: it stays deleted until the drop-in is "
                         "removed or `sluice profile enable` exports it again from scratch"
                       : "");
    sl_buf_free(&report);
}

static void finish_request(struct service *sv, struct job *j)
{
    if (!j->has_req)
        return;
    j->has_req = false;
    const char *name = j->p->name;
    if (strcmp(j->req.cmd, "profile-delete") == 0)
        purge_and_reply(sv, name, &j->req);
    else
        sl_control_reply(&j->req, true, "profile \"%s\" disabled: stopped, its position is "
                                        "kept; `sluice profile enable %s` resumes it",
                         name, name);
}

static void reload(struct service *sv, struct sl_control_req *req);

static void handle_request(struct service *sv, struct sl_control_req *req)
{
    const char *name = req->profile;
    bool is_profile_cmd = strncmp(req->cmd, "profile-", 8) == 0;
    if (strcmp(req->cmd, "ping") == 0) {
        sl_control_reply(req, true, "sluice %s, pid %ld", sl_version(), (long)getpid());
        return;
    }
    if (strcmp(req->cmd, "flush") == 0) {
        sl_state_flush(sv->st);
        sl_control_reply(req, true, "counters written");
        return;
    }
    if (strcmp(req->cmd, "reload") == 0) {
        reload(sv, req);
        return;
    }
    if (!is_profile_cmd || !*name) {
        sl_control_reply(req, false, "unknown request \"%s\"", req->cmd);
        return;
    }
    struct job *j = job_of(sv, name);
    if (strcmp(req->cmd, "profile-enable") == 0) {
        sl_state_admin_set(sv->st, name, SL_ADMIN_NONE);
        failed_clear(sv, name);
        const struct sl_profile *p = sl_config_profile(&sv->cur->cfg, name);
        reconcile(sv);
        if (!p)
            sl_control_reply(req, true, "profile \"%s\" enabled, but no drop-in defines it: "
                                        "add one and send SIGHUP (systemctl reload sluice)",
                             name);
        else if (!p->enabled)
            sl_control_reply(req, true, "profile \"%s\" enabled, but its drop-in %s:%d says "
                                        "enabled = false: change it and send SIGHUP",
                             name, p->file, p->line);
        else
            sl_control_reply(req, true, "profile \"%s\" enabled: %s", name,
                             job_of(sv, name) ? "running, resuming from its checkpoint"
                                              : "not selected by this service's --profile");
        return;
    }
    bool del = strcmp(req->cmd, "profile-delete") == 0;
    if (!del && strcmp(req->cmd, "profile-disable") != 0) {
        sl_control_reply(req, false, "unknown request \"%s\"", req->cmd);
        return;
    }
    sl_state_admin_set(sv->st, name, del ? SL_ADMIN_DELETED : SL_ADMIN_DISABLED);
    if (j && j->has_req) {
        sl_control_reply(req, false, "profile \"%s\" is already being %s; try again when that "
                                     "is done",
                         name, strcmp(j->req.cmd, "profile-delete") == 0 ? "deleted" : "disabled");
        return;
    }
    if (j) { /* answered when the pipeline has drained and stopped (reap) */
        j->has_req = true;
        j->req = *req;
        req->fd = -1;
        stop_job(j, del ? "deleted by `sluice profile delete`" : "disabled by `sluice profile "
                                                                "disable`");
        return;
    }
    if (del) {
        purge_and_reply(sv, name, req);
    } else {
        sl_state_profile_set(sv->st, name, false, "disabled", NULL);
        sl_control_reply(req, true, "profile \"%s\" disabled (it was not running)", name);
    }
}

/* ---- SIGHUP ------------------------------------------------------------------ */

static void reload(struct service *sv, struct sl_control_req *req)
{
    struct cfg_ref *next = sl_xcalloc(1, sizeof *next);
    struct sl_err err = {{0}};
    sl_sd_notify("RELOADING=1");
    if (sl_config_load(sv->cur->cfg.main_file, &next->cfg, &err) != 0) {
        sl_error("reload: %s; keeping the running configuration", err.msg);
        free(next);
        if (req)
            sl_control_reply(req, false, "reload failed: %s", err.msg);
        sl_sd_notify("READY=1");
        return;
    }
    next->refs = 1;
    struct sl_config *old = &sv->cur->cfg, *cfg = &next->cfg;
    size_t changed = 0, added = 0, removed = 0;
    for (size_t i = 0; i < cfg->nprofiles; i++) {
        const struct sl_profile *o = sl_config_profile(old, cfg->profiles[i].name);
        if (!o)
            added++, sl_info("reload: profile \"%s\" added (%s)", cfg->profiles[i].name,
                             cfg->profiles[i].file);
        else if (profile_fp(old, o) != profile_fp(cfg, &cfg->profiles[i]))
            changed++, sl_info("reload: profile \"%s\" changed (%s)", cfg->profiles[i].name,
                               cfg->profiles[i].file);
    }
    for (size_t i = 0; i < old->nprofiles; i++)
        if (!sl_config_profile(cfg, old->profiles[i].name))
            removed++, sl_info("reload: profile \"%s\" removed", old->profiles[i].name);
    if ((old->metrics_listen ? old->metrics_listen : "")[0] !=
            (cfg->metrics_listen ? cfg->metrics_listen : "")[0] ||
        strcmp(old->control_socket, cfg->control_socket) != 0 ||
        strcmp(old->state_dir, cfg->state_dir) != 0)
        sl_warn("reload: state_dir, control_socket and metrics_listen take effect at the next "
                "start only");
    sl_log_set_level(cfg->log_level);
    sl_log_set_format(cfg->log_format);
    cfg_unref(sv->cur);
    sv->cur = next;
    sl_info("reload: %zu profiles changed, %zu added, %zu removed; the others keep running",
            changed, added, removed);
    reconcile(sv);
    if (req)
        sl_control_reply(req, true, "reloaded: %zu changed, %zu added, %zu removed", changed,
                         added, removed);
    sl_sd_notify("READY=1");
}

/* ---- the loop ----------------------------------------------------------------- */

static void on_signals(struct service *sv, int *signals)
{
    char buf[16];
    ssize_t got;
    while ((got = read(sig_pipe[0], buf, sizeof buf)) > 0) {
        for (ssize_t k = 0; k < got; k++) {
            if (buf[k] == WAKE_REAP)
                continue; /* the loop reaps after the poll */
            if (buf[k] == SIGHUP) {
                if (sv->once)
                    sl_info("SIGHUP ignored by a one-shot run");
                else if (!sv->shutting_down)
                    reload(sv, NULL);
                continue;
            }
            const char *sig = buf[k] == SIGINT ? "SIGINT" : "SIGTERM";
            (*signals)++;
            if (*signals == 1) {
                sl_info("%s received: stopping the sources and applying what was already read "
                        "(at most drain_timeout = %d s; send it again to stop at once)",
                        sig, sv->cur->cfg.drain_timeout_s);
                sl_sd_notify("STOPPING=1");
                sv->shutting_down = true;
                sv->drain_deadline_us =
                    sl_now_mono_us() + (uint64_t)sv->cur->cfg.drain_timeout_s * 1000000u;
                for (size_t i = 0; i < sv->njobs; i++) {
                    sv->jobs[i]->stop_requested = true;
                    sl_pipeline_stop(sv->jobs[i]->pl);
                }
            } else if (*signals == 2) {
                sl_warn("%s received again: stopping now; the next run replays what was not "
                        "applied",
                        sig);
                for (size_t i = 0; i < sv->njobs; i++)
                    sl_pipeline_abort(sv->jobs[i]->pl);
            }
        }
    }
}

static void publish_gauges(struct service *sv)
{
    for (size_t i = 0; i < sv->njobs; i++)
        sl_state_gauge_set(sv->st, sl_pipeline_name(sv->jobs[i]->pl), NULL, "queue_depth",
                           (int64_t)sl_pipeline_queue_depth(sv->jobs[i]->pl));
    sl_progress_publish(sv->st);
}

static void run_loop(struct service *sv)
{
    uint64_t last_flush = sl_now_mono_us(), last_reconcile = last_flush, last_draw = 0;
    uint64_t watchdog_us = sl_sd_watchdog_us(), last_watchdog = 0;
    bool drain_expired = false;
    int signals = 0;
    for (;;) {
        reap(sv);
        if (sv->njobs == 0 && (sv->once || sv->shutting_down))
            break;
        struct pollfd pfd[2] = {{.fd = sig_pipe[0], .events = POLLIN},
                                {.fd = sl_control_fd(sv->ctl), .events = POLLIN}};
        int n = poll(pfd, sv->ctl ? 2 : 1, 200);
        if (n > 0 && (pfd[0].revents & POLLIN))
            on_signals(sv, &signals);
        if (n > 0 && sv->ctl && (pfd[1].revents & POLLIN)) {
            struct sl_control_req req;
            if (sl_control_accept(sv->ctl, &req) == 0)
                handle_request(sv, &req);
        }
        uint64_t now = sl_now_mono_us();
        if (sv->shutting_down && !drain_expired && now > sv->drain_deadline_us) {
            drain_expired = true;
            sl_warn("drain_timeout (%d s) reached: stopping now; the next run replays what was "
                    "not applied",
                    sv->cur->cfg.drain_timeout_s);
            for (size_t i = 0; i < sv->njobs; i++)
                sl_pipeline_abort(sv->jobs[i]->pl);
        }
        if (now - last_reconcile >= RECONCILE_US) {
            reconcile(sv);
            last_reconcile = now;
        }
        if (now - last_flush >= FLUSH_INTERVAL_US) {
            publish_gauges(sv);
            sl_state_flush(sv->st);
            last_flush = now;
        }
        if (sl_progress_terminal() && now - last_draw >= PROGRESS_DRAW_US) {
            sl_progress_render();
            last_draw = now;
        }
        if (watchdog_us && now - last_watchdog >= watchdog_us / 2) {
            sl_sd_notify("WATCHDOG=1");
            last_watchdog = now;
        }
    }
    sl_progress_render();
    publish_gauges(sv);
}

int sl_cmd_run(const char *conf, bool once, const char *const *profiles, size_t nprofiles)
{
    struct service sv = {.once = once, .select = profiles, .nselect = nprofiles};
    struct sl_err err = {{0}};
    struct sl_metrics_server *metrics = NULL;
    struct sigaction old_term, old_int;
    bool signals_installed = false;
    int rc = SL_EXIT_CONFIG;

    sv.cur = sl_xcalloc(1, sizeof *sv.cur);
    sv.cur->refs = 1;
    struct sl_config *cfg = &sv.cur->cfg;
    if (sl_config_load(conf, cfg, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }
    sl_log_set_level(cfg->log_level);
    sl_log_set_format(cfg->log_format);
    rc = SL_EXIT_USAGE;
    for (size_t i = 0; i < nprofiles; i++) {
        if (!sl_config_profile(cfg, profiles[i])) {
            struct sl_buf names = {0};
            for (size_t k = 0; k < cfg->nprofiles; k++)
                sl_buf_printf(&names, "%s%s", k ? ", " : "", cfg->profiles[k].name);
            sl_buf_append(&names, "", 1);
            sl_error("--profile %s: no such profile in %s and %s/*.conf (profiles: %s)",
                     profiles[i], cfg->main_file, cfg->conf_dir ? cfg->conf_dir : "conf.d",
                     cfg->nprofiles ? names.data : "none");
            sl_buf_free(&names);
            goto out;
        }
    }
    rc = SL_EXIT_STATE;
    const char *state_dir = cfg->state_dir ? cfg->state_dir : SLUICE_DEFAULT_STATE_DIR;
    if (sl_state_open(state_dir, &sv.st, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }
    if (!once) {
        sv.ctl = sl_control_listen(cfg->control_socket, cfg->control_socket_group, &err);
        if (!sv.ctl) {
            sl_error("%s", err.msg);
            goto out;
        }
    }
    rc = SL_EXIT_CONFIG;
    if (cfg->metrics_listen && *cfg->metrics_listen) {
        metrics = sl_metrics_start(cfg->metrics_listen, sv.st, &err);
        if (!metrics) {
            sl_error("%s", err.msg);
            goto out;
        }
    }
    sv.opts = (struct sl_pipeline_opts){.run_mode = once ? SLUICE_RUN_ONCE : SLUICE_RUN_FOLLOW,
                                        .state = sv.st,
                                        .plugin_dir = sl_plugin_dir(cfg),
                                        .state_dir = state_dir};
    rc = SL_EXIT_FAILURE;
    if (install_signals(&old_term, &old_int) != 0) {
        sl_error("cannot set up signal handling: %s", strerror(errno));
        goto out;
    }
    signals_installed = true;
    sl_progress_set_terminal(once && isatty(STDERR_FILENO));
    note_skipped(&sv);
    reconcile(&sv);
    sv.rc = SL_EXIT_OK;
    if (sv.njobs == 0) {
        if (once) {
            sl_warn("no enabled profile to run (config %s); nothing to do", cfg->main_file);
            rc = SL_EXIT_OK;
            goto out;
        }
        sl_warn("no enabled profile to run (config %s); waiting for `sluice profile enable` or "
                "SIGHUP",
                cfg->main_file);
    }
    if (!once) {
        sl_sd_notify("READY=1\nSTATUS=running");
        sl_info("service ready (control socket %s)", cfg->control_socket);
    }
    run_loop(&sv);
    rc = sv.rc;
out:
    if (signals_installed)
        restore_signals(&old_term, &old_int);
    for (size_t i = 0; i < sv.njobs; i++) { /* only on early exits */
        sl_pipeline_free(sv.jobs[i]->pl);
        cfg_unref(sv.jobs[i]->cref);
        free(sv.jobs[i]);
    }
    free(sv.jobs);
    for (size_t i = 0; i < sv.nfailed; i++)
        free(sv.failed[i].name);
    free(sv.failed);
    sl_metrics_stop(metrics);
    sl_control_close(sv.ctl);
    sl_progress_reset();
    sl_state_close(sv.st);
    cfg_unref(sv.cur);
    return rc;
}
