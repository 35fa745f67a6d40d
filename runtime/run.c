/*
 * run.c - `sluice run`: start one pipeline per selected, enabled profile,
 * wait for them (--once) or for SIGTERM/SIGINT (service), flush counters
 * about once a second, print a summary per profile on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "loader.h"
#include "log.h"
#include "pipeline.h"
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
    signal(SIGPIPE, SIG_IGN); /* a dropped connection is an error code, not a death */
    return 0;
}

static void restore_signals(const struct sigaction *old_term, const struct sigaction *old_int)
{
    sigaction(SIGTERM, old_term, NULL);
    sigaction(SIGINT, old_int, NULL);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
}

struct job {
    struct sl_pipeline *pl;
    pthread_t thread;
    bool started;
    int result;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    j->result = sl_pipeline_run(j->pl);
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

static bool selected(const char *name, const char *const *profiles, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (strcmp(profiles[i], name) == 0)
            return true;
    return false;
}

static void wait_for_jobs(struct job *jobs, size_t njobs, struct sl_state *st, bool once)
{
    uint64_t last_flush = sl_now_mono_us();
    int signals = 0;
    for (;;) {
        bool all_done = true;
        for (size_t i = 0; i < njobs; i++)
            if (jobs[i].started && !sl_pipeline_finished(jobs[i].pl))
                all_done = false;
        if (all_done)
            break;
        struct pollfd pfd = {.fd = sig_pipe[0], .events = POLLIN};
        int n = poll(&pfd, 1, 200);
        if (n > 0) {
            char buf[16];
            ssize_t got;
            while ((got = read(sig_pipe[0], buf, sizeof buf)) > 0) {
                for (ssize_t k = 0; k < got; k++) {
                    signals++;
                    const char *sig = buf[k] == SIGINT ? "SIGINT" : "SIGTERM";
                    if (signals == 1) {
                        sl_info("%s received: stopping the sources and applying what was "
                                "already read (send it again to stop at once)",
                                sig);
                        for (size_t i = 0; i < njobs; i++)
                            sl_pipeline_stop(jobs[i].pl);
                    } else if (signals == 2) {
                        sl_warn("%s received again: stopping now; the next run replays what "
                                "was not applied",
                                sig);
                        for (size_t i = 0; i < njobs; i++)
                            sl_pipeline_abort(jobs[i].pl);
                    }
                }
            }
        }
        uint64_t now = sl_now_mono_us();
        if (now - last_flush >= FLUSH_INTERVAL_US) {
            sl_state_flush(st);
            last_flush = now;
        }
    }
    (void)once;
}

int sl_cmd_run(const char *conf, bool once, const char *const *profiles, size_t nprofiles)
{
    struct sl_config cfg = {0};
    struct sl_err err = {{0}};
    struct sl_state *st = NULL;
    struct job *jobs = NULL;
    size_t njobs = 0;
    struct sigaction old_term, old_int;
    bool signals_installed = false;
    int rc = SL_EXIT_CONFIG;

    if (sl_config_load(conf, &cfg, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }
    sl_log_set_level(cfg.log_level);
    rc = SL_EXIT_USAGE;
    for (size_t i = 0; i < nprofiles; i++) {
        if (!sl_config_profile(&cfg, profiles[i])) {
            struct sl_buf names = {0};
            for (size_t k = 0; k < cfg.nprofiles; k++)
                sl_buf_printf(&names, "%s%s", k ? ", " : "", cfg.profiles[k].name);
            sl_buf_append(&names, "", 1);
            sl_error("--profile %s: no such profile in %s and %s/*.conf (profiles: %s)",
                     profiles[i], cfg.main_file, cfg.conf_dir ? cfg.conf_dir : "conf.d",
                     cfg.nprofiles ? names.data : "none");
            sl_buf_free(&names);
            goto out;
        }
    }
    rc = SL_EXIT_STATE;
    const char *state_dir = cfg.state_dir ? cfg.state_dir : SLUICE_DEFAULT_STATE_DIR;
    if (sl_state_open(state_dir, &st, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }

    jobs = sl_xcalloc(cfg.nprofiles ? cfg.nprofiles : 1, sizeof *jobs);
    struct sl_pipeline_opts opts = {.run_mode = once ? SLUICE_RUN_ONCE : SLUICE_RUN_FOLLOW,
                                    .state = st,
                                    .plugin_dir = sl_plugin_dir(&cfg),
                                    .state_dir = state_dir};
    for (size_t i = 0; i < cfg.nprofiles; i++) {
        const struct sl_profile *p = &cfg.profiles[i];
        if (!selected(p->name, profiles, nprofiles))
            continue;
        if (!p->enabled) {
            sl_info("profile \"%s\" is disabled (enabled = false, %s:%d): skipped", p->name,
                    p->file, p->line);
            sl_state_profile_set(st, p->name, false, "disabled", NULL);
            continue;
        }
        jobs[njobs++].pl = sl_pipeline_new(&cfg, p, &opts);
    }
    rc = SL_EXIT_OK;
    if (njobs == 0) {
        sl_warn("no enabled profile to run (config %s); nothing to do", cfg.main_file);
        goto out;
    }
    if (install_signals(&old_term, &old_int) != 0) {
        sl_error("cannot set up signal handling: %s", strerror(errno));
        rc = SL_EXIT_FAILURE;
        goto out;
    }
    signals_installed = true;
    for (size_t i = 0; i < njobs; i++) {
        if (pthread_create(&jobs[i].thread, NULL, job_main, &jobs[i]) != 0) {
            sl_error("profile \"%s\": cannot start its thread: %s", sl_pipeline_name(jobs[i].pl),
                     strerror(errno));
            jobs[i].result = SL_PIPELINE_FAILED;
            continue;
        }
        jobs[i].started = true;
    }
    wait_for_jobs(jobs, njobs, st, once);
    for (size_t i = 0; i < njobs; i++) {
        if (jobs[i].started)
            pthread_join(jobs[i].thread, NULL);
        print_summary(st, &jobs[i]);
        if (jobs[i].result == SL_PIPELINE_FAILED)
            rc = SL_EXIT_FAILURE;
        else if (jobs[i].result == SL_PIPELINE_STOPPED && once && rc == SL_EXIT_OK) {
            sl_warn("profile \"%s\": stopped before the one-shot run finished; run again to "
                    "complete it",
                    sl_pipeline_name(jobs[i].pl));
            rc = SL_EXIT_FAILURE;
        }
    }
out:
    if (signals_installed)
        restore_signals(&old_term, &old_int);
    for (size_t i = 0; i < njobs; i++)
        sl_pipeline_free(jobs[i].pl);
    free(jobs);
    sl_state_close(st);
    sl_config_free(&cfg);
    return rc;
}
