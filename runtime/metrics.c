#include "metrics.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "log.h"
#include "progress.h"

const double sl_lag_bounds[SL_LAG_BUCKETS] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,
                                              2.5,  5,    10,  30,   60,  300};

void sl_lag_observe(struct sl_lag_hist *h, int64_t lag_us)
{
    if (lag_us < 0)
        lag_us = 0; /* clocks of source and target disagree: count it as no lag */
    double s = (double)lag_us / 1e6;
    size_t i = 0;
    while (i < SL_LAG_BUCKETS && s > sl_lag_bounds[i])
        i++;
    h->bucket[i]++;
    h->sum_us += lag_us;
    h->count++;
}

void sl_lag_flush(struct sl_lag_hist *h, struct sl_state *st, const char *profile)
{
    if (h->count == 0)
        return;
    for (size_t i = 0; i <= SL_LAG_BUCKETS; i++) {
        if (!h->bucket[i])
            continue;
        char name[32];
        snprintf(name, sizeof name, "lag_bucket_%zu", i);
        sl_state_counter_add(st, profile, NULL, name, h->bucket[i]);
    }
    sl_state_counter_add(st, profile, NULL, "lag_sum_us", h->sum_us);
    sl_state_counter_add(st, profile, NULL, "lag_count", h->count);
    memset(h, 0, sizeof *h);
}

/* ---- rendering ---------------------------------------------------------- */

struct sample {
    char *entity, *name;
    int64_t value;
};

struct prof_data {
    char *name, *status;
    bool enabled;
    int admin;
    int64_t last_success_us;
    int64_t failed_log;
    struct sample *counters, *gauges;
    size_t ncounters, ngauges;
};

struct all_data {
    struct prof_data *p;
    size_t n;
};

static void collect_profile(void *arg, const struct sl_state_profile *sp)
{
    struct all_data *d = arg;
    d->p = sl_xrealloc(d->p, (d->n + 1) * sizeof *d->p);
    d->p[d->n++] = (struct prof_data){.name = sl_xstrdup(sp->name),
                                      .status = sl_xstrdup(sp->status ? sp->status : "never run"),
                                      .enabled = sp->enabled,
                                      .last_success_us = sp->last_success_us};
}

struct sample_list {
    struct sample **items;
    size_t *n;
};

static void collect_sample(void *arg, const char *entity, const char *name, int64_t value)
{
    struct sample_list *l = arg;
    *l->items = sl_xrealloc(*l->items, (*l->n + 1) * sizeof **l->items);
    (*l->items)[(*l->n)++] =
        (struct sample){.entity = sl_xstrdup(entity), .name = sl_xstrdup(name), .value = value};
}

static void free_samples(struct sample *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].entity);
        free(s[i].name);
    }
    free(s);
}

/* Label values escape backslash, double quote and newline. */
static void label(struct sl_buf *out, const char *key, const char *value)
{
    sl_buf_printf(out, "%s=\"", key);
    for (const char *c = value; *c; c++) {
        if (*c == '\\' || *c == '"')
            sl_buf_printf(out, "\\%c", *c);
        else if (*c == '\n')
            sl_buf_append(out, "\\n", 2);
        else
            sl_buf_append(out, c, 1);
    }
    sl_buf_append(out, "\"", 1);
}

static void family(struct sl_buf *out, const char *name, const char *type, const char *help)
{
    sl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One stored counter or gauge exported per profile and entity. */
struct export {
    const char *stored; /* name in the state store */
    bool gauge_table;   /* from gauges, else counters */
    bool per_entity;
    const char *metric, *type, *help;
};

static const struct export exports[] = {
    {"rows_read", false, true, "sluice_initial_sync_rows_read_total", "counter",
     "Rows read from the source during initial syncs (all runs)."},
    {"rows_estimated", true, true, "sluice_initial_sync_rows_estimated", "gauge",
     "The source's estimate of the entity's rows in the last initial sync."},
    {"applied_rows", false, true, "sluice_applied_rows_total", "counter",
     "Events the target committed, replays included."},
    {"inserts", false, true, "sluice_inserts_total", "counter", "Inserts applied."},
    {"updates", false, true, "sluice_updates_total", "counter", "Updates applied."},
    {"deletes", false, true, "sluice_deletes_total", "counter", "Deletes applied."},
    {"failed", false, true, "sluice_failed_records_total", "counter",
     "Records written to the failed-record log."},
    {"batches", false, true, "sluice_batches_total", "counter", "Batches applied."},
    {"retries", false, false, "sluice_retries_total", "counter",
     "Retries after transient failures."},
    {"spilled_bytes", false, false, "sluice_spilled_bytes_total", "counter",
     "Bytes written to the spill store."},
    {"queue_depth", true, false, "sluice_queue_depth", "gauge",
     "Messages waiting in the transport, all partitions (0 when not running)."},
};

static void render_export(struct sl_buf *out, const struct export *x, const struct all_data *d)
{
    family(out, x->metric, x->type, x->help);
    for (size_t i = 0; i < d->n; i++) {
        const struct prof_data *p = &d->p[i];
        const struct sample *s = x->gauge_table ? p->gauges : p->counters;
        size_t n = x->gauge_table ? p->ngauges : p->ncounters;
        bool any = false;
        for (size_t k = 0; k < n; k++) {
            if (strcmp(s[k].name, x->stored) != 0 || (*s[k].entity != 0) != x->per_entity)
                continue;
            sl_buf_printf(out, "%s{", x->metric);
            label(out, "profile", p->name);
            if (x->per_entity) {
                sl_buf_append(out, ",", 1);
                label(out, "entity", s[k].entity);
            }
            sl_buf_printf(out, "} %lld\n", (long long)s[k].value);
            any = true;
        }
        if (!any && !x->per_entity) { /* profile-level: always present */
            sl_buf_printf(out, "%s{", x->metric);
            label(out, "profile", p->name);
            sl_buf_append(out, "} 0\n", 4);
        }
    }
}

static int64_t profile_counter(const struct prof_data *p, const char *name)
{
    for (size_t k = 0; k < p->ncounters; k++)
        if (!*p->counters[k].entity && strcmp(p->counters[k].name, name) == 0)
            return p->counters[k].value;
    return 0;
}

static void render_lag(struct sl_buf *out, const struct all_data *d)
{
    family(out, "sluice_lag_seconds", "histogram",
           "Source commit to target commit, per applied event with a known commit time.");
    for (size_t i = 0; i < d->n; i++) {
        const struct prof_data *p = &d->p[i];
        int64_t cum = 0;
        for (size_t b = 0; b <= SL_LAG_BUCKETS; b++) {
            char name[32], le[32];
            snprintf(name, sizeof name, "lag_bucket_%zu", b);
            cum += profile_counter(p, name);
            if (b < SL_LAG_BUCKETS)
                snprintf(le, sizeof le, "%g", sl_lag_bounds[b]);
            else
                snprintf(le, sizeof le, "+Inf");
            sl_buf_append(out, "sluice_lag_seconds_bucket{", 26);
            label(out, "profile", p->name);
            sl_buf_append(out, ",", 1);
            label(out, "le", le);
            sl_buf_printf(out, "} %lld\n", (long long)cum);
        }
        sl_buf_append(out, "sluice_lag_seconds_sum{", 23);
        label(out, "profile", p->name);
        sl_buf_printf(out, "} %.6f\n", (double)profile_counter(p, "lag_sum_us") / 1e6);
        sl_buf_append(out, "sluice_lag_seconds_count{", 25);
        label(out, "profile", p->name);
        sl_buf_printf(out, "} %lld\n", (long long)profile_counter(p, "lag_count"));
    }
}

static void render_profiles(struct sl_buf *out, const struct all_data *d)
{
    family(out, "sluice_last_success_timestamp_seconds", "gauge",
           "When the profile last applied a batch (Unix time; 0: never).");
    for (size_t i = 0; i < d->n; i++) {
        sl_buf_append(out, "sluice_last_success_timestamp_seconds{", 38);
        label(out, "profile", d->p[i].name);
        sl_buf_printf(out, "} %.3f\n", (double)d->p[i].last_success_us / 1e6);
    }
    family(out, "sluice_failed_records", "gauge",
           "Records currently in the profile's failed-record log.");
    for (size_t i = 0; i < d->n; i++) {
        sl_buf_append(out, "sluice_failed_records{", 22);
        label(out, "profile", d->p[i].name);
        sl_buf_printf(out, "} %lld\n", (long long)d->p[i].failed_log);
    }
    family(out, "sluice_profile_enabled", "gauge",
           "1 when the profile is enabled (config and `sluice profile`), else 0.");
    for (size_t i = 0; i < d->n; i++) {
        sl_buf_append(out, "sluice_profile_enabled{", 23);
        label(out, "profile", d->p[i].name);
        sl_buf_printf(out, "} %d\n", d->p[i].enabled && d->p[i].admin == SL_ADMIN_NONE);
    }
    family(out, "sluice_profile_status", "gauge",
           "1 for the profile's current status (running, done, stopped, failed, disabled, "
           "deleted).");
    for (size_t i = 0; i < d->n; i++) {
        sl_buf_append(out, "sluice_profile_status{", 22);
        label(out, "profile", d->p[i].name);
        sl_buf_append(out, ",", 1);
        label(out, "status", d->p[i].admin == SL_ADMIN_DELETED ? "deleted" : d->p[i].status);
        sl_buf_append(out, "} 1\n", 4);
    }
}

int sl_metrics_render(struct sl_state *st, struct sl_buf *out)
{
    struct all_data d = {0};
    int rc = -1;
    if (sl_state_profiles(st, collect_profile, &d) != 0)
        goto out;
    for (size_t i = 0; i < d.n; i++) {
        struct prof_data *p = &d.p[i];
        struct sample_list cl = {&p->counters, &p->ncounters};
        struct sample_list gl = {&p->gauges, &p->ngauges};
        p->admin = sl_state_admin_get(st, p->name, NULL);
        if (sl_state_counters(st, p->name, collect_sample, &cl) != 0 ||
            sl_state_gauges(st, p->name, collect_sample, &gl) != 0 ||
            sl_state_failed_count(st, p->name, &p->failed_log) != 0)
            goto out;
    }
    for (size_t i = 0; i < sizeof exports / sizeof exports[0]; i++)
        render_export(out, &exports[i], &d);
    render_lag(out, &d);
    render_profiles(out, &d);
    rc = 0;
out:
    for (size_t i = 0; i < d.n; i++) {
        free(d.p[i].name);
        free(d.p[i].status);
        free_samples(d.p[i].counters, d.p[i].ncounters);
        free_samples(d.p[i].gauges, d.p[i].ngauges);
    }
    free(d.p);
    return rc;
}

/* ---- the HTTP endpoint -------------------------------------------------- */

struct sl_metrics_server {
    struct MHD_Daemon *daemon;
    struct sl_state *st;
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    struct sl_metrics_server *ms = cls;
    struct MHD_Response *resp = NULL;
    struct sl_buf body = {0};
    unsigned code = MHD_HTTP_OK;
    enum MHD_Result ret;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        sl_buf_printf(&body, "only GET /metrics\n");
    } else if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0) {
        code = MHD_HTTP_NOT_FOUND;
        sl_buf_printf(&body, "sluice serves /metrics\n");
    } else {
        sl_progress_publish(ms->st); /* estimates and what the workers counted up to now */
        sl_state_flush(ms->st);
        if (sl_metrics_render(ms->st, &body) != 0) {
            code = MHD_HTTP_INTERNAL_SERVER_ERROR;
            sl_buf_reset(&body);
            sl_buf_printf(&body, "cannot read the state store; see sluice's log\n");
        }
    }
    resp = MHD_create_response_from_buffer(body.len, body.data, MHD_RESPMEM_MUST_COPY);
    sl_buf_free(&body);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type",
                            code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
                                                : "text/plain; charset=utf-8");
    ret = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* "9187", "127.0.0.1:9187", "[::1]:9187", "*:9187" (all addresses) */
static int parse_listen(const char *listen, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(listen, ':');
    if (!colon) {
        snprintf(host, hcap, "127.0.0.1");
        snprintf(port, pcap, "%s", listen);
    } else if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close + 1 != colon)
            return -1;
        snprintf(host, hcap, "%.*s", (int)(close - listen - 1), listen + 1);
        snprintf(port, pcap, "%s", colon + 1);
    } else {
        snprintf(host, hcap, "%.*s", (int)(colon - listen), listen);
        snprintf(port, pcap, "%s", colon + 1);
    }
    if (!*host)
        snprintf(host, hcap, "127.0.0.1");
    return *port ? 0 : -1;
}

struct sl_metrics_server *sl_metrics_start(const char *listen, struct sl_state *st,
                                           struct sl_err *err)
{
    struct sl_metrics_server *ms = NULL;
    struct addrinfo *ai = NULL;
    char host[256], port[32];
    if (parse_listen(listen, host, sizeof host, port, sizeof port) != 0) {
        snprintf(err->msg, sizeof err->msg,
                 "metrics_listen = \"%s\": not PORT, HOST:PORT or [IPV6]:PORT", listen);
        goto out;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    int gai = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err->msg, sizeof err->msg, "metrics_listen = \"%s\": %s", listen,
                 gai_strerror(gai));
        goto out;
    }
    ms = sl_xcalloc(1, sizeof *ms);
    ms->st = st;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    ms->daemon = MHD_start_daemon(flags, 0, NULL, NULL, answer, ms, MHD_OPTION_SOCK_ADDR,
                                  ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, 16u,
                                  MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!ms->daemon) {
        snprintf(err->msg, sizeof err->msg,
                 "metrics_listen = \"%s\": cannot listen on %s port %s (in use, or not an "
                 "address of this machine); pick another port or remove metrics_listen",
                 listen, host, port);
        free(ms);
        ms = NULL;
        goto out;
    }
    sl_info("metrics: serving Prometheus text on http://%s%s%s:%s/metrics",
            ai->ai_family == AF_INET6 ? "[" : "", host, ai->ai_family == AF_INET6 ? "]" : "",
            port);
out:
    if (ai)
        freeaddrinfo(ai);
    return ms;
}

void sl_metrics_stop(struct sl_metrics_server *ms)
{
    if (!ms)
        return;
    MHD_stop_daemon(ms->daemon);
    free(ms);
}
