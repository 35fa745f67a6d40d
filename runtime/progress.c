#include "progress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct entry {
    char *profile, *entity;
    uint64_t done, estimate;
    uint64_t first_us, first_done; /* for the rate */
    uint64_t last_us;
    bool published; /* estimate written to the state store */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *g_entries;
static size_t g_n;
static bool g_terminal;
static size_t g_drawn; /* lines drawn by the last render */

void sl_progress_update(const char *profile, const char *entity, uint64_t done,
                        uint64_t estimate)
{
    uint64_t now = sl_now_mono_us();
    pthread_mutex_lock(&g_lock);
    size_t i = 0;
    while (i < g_n && (strcmp(g_entries[i].entity, entity) != 0 ||
                       strcmp(g_entries[i].profile, profile) != 0))
        i++;
    if (i == g_n) {
        g_entries = sl_xrealloc(g_entries, (g_n + 1) * sizeof *g_entries);
        g_entries[g_n++] = (struct entry){.profile = sl_xstrdup(profile),
                                          .entity = sl_xstrdup(entity),
                                          .first_us = now,
                                          .first_done = done};
    }
    struct entry *e = &g_entries[i];
    if (e->estimate != estimate)
        e->published = false;
    e->done = done;
    e->estimate = estimate;
    e->last_us = now;
    pthread_mutex_unlock(&g_lock);
}

void sl_progress_set_terminal(bool on)
{
    pthread_mutex_lock(&g_lock);
    g_terminal = on;
    pthread_mutex_unlock(&g_lock);
}

bool sl_progress_terminal(void)
{
    pthread_mutex_lock(&g_lock);
    bool on = g_terminal;
    pthread_mutex_unlock(&g_lock);
    return on;
}

static void format_eta(double s, char *buf, size_t cap)
{
    if (s < 0 || s > 99 * 3600.0)
        snprintf(buf, cap, "--:--");
    else if (s >= 3600)
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, cap, "%02d:%02d", (int)(s / 60), (int)s % 60);
}

void sl_progress_render(void)
{
    struct sl_buf out = {0};
    pthread_mutex_lock(&g_lock);
    if (!g_terminal || g_n == 0)
        goto out;
    if (g_drawn)
        sl_buf_printf(&out, "\033[%zuA", g_drawn); /* back to the first line */
    for (size_t i = 0; i < g_n; i++) {
        const struct entry *e = &g_entries[i];
        double secs = (double)(e->last_us - e->first_us) / 1e6;
        double rate = secs > 0 ? (double)(e->done - e->first_done) / secs : 0;
        char eta[32];
        if (e->estimate > e->done && rate > 0)
            format_eta((double)(e->estimate - e->done) / rate, eta, sizeof eta);
        else
            snprintf(eta, sizeof eta, e->estimate && e->done >= e->estimate ? "done" : "--:--");
        double pct = e->estimate ? 100.0 * (double)e->done / (double)e->estimate : 0;
        sl_buf_printf(&out,
                      "\r\033[K%s/%-20s %12llu of ~%-12llu %5.1f%%  %10.0f rows/s  ETA %s\n",
                      e->profile, e->entity, (unsigned long long)e->done,
                      (unsigned long long)e->estimate, pct > 100 ? 100.0 : pct, rate, eta);
    }
    g_drawn = g_n;
    ssize_t w = write(STDERR_FILENO, out.data, out.len);
    (void)w;
out:
    pthread_mutex_unlock(&g_lock);
    sl_buf_free(&out);
}

void sl_progress_publish(struct sl_state *st)
{
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_n; i++) {
        struct entry *e = &g_entries[i];
        if (e->published)
            continue;
        sl_state_gauge_set(st, e->profile, e->entity, "rows_estimated", (int64_t)e->estimate);
        e->published = true;
    }
    pthread_mutex_unlock(&g_lock);
}

void sl_progress_reset(void)
{
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_n; i++) {
        free(g_entries[i].profile);
        free(g_entries[i].entity);
    }
    free(g_entries);
    g_entries = NULL;
    g_n = g_drawn = 0;
    g_terminal = false;
    pthread_mutex_unlock(&g_lock);
}
