/*
 * metrics.h - the numbers an operator watches, per profile and entity
 * (docs/operations.md, "Metrics").
 *
 * Everything is kept in the state store, so it survives a restart: counters
 * (rows read in the initial sync, inserts, updates, deletes, failed records,
 * retries, spilled bytes, batches, the lag histogram's buckets), gauges (rows
 * estimated, queue depth) and the last success time. This file owns
 *  - the lag histogram an apply worker fills without allocating
 *    (sl_lag_observe) and adds to the state store's counters once per batch
 *    (sl_lag_flush), and
 *  - the Prometheus text rendering of the state store
 *    (sl_metrics_render) and the HTTP endpoint serving it on
 *    `metrics_listen` (libmicrohttpd, its own thread).
 */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdint.h>

#include "state.h"
#include "util.h"

/* Upper bounds of the lag buckets in seconds; +Inf is implicit. */
#define SL_LAG_BUCKETS 12
extern const double sl_lag_bounds[SL_LAG_BUCKETS];

/* Lag (source commit -> target commit) observations of one worker since the
 * last flush. Zero-initialised is empty. */
struct sl_lag_hist {
    int64_t bucket[SL_LAG_BUCKETS + 1]; /* not cumulative; last is +Inf */
    int64_t sum_us, count;
};
void sl_lag_observe(struct sl_lag_hist *h, int64_t lag_us);
/* Add to the profile-level counters lag_bucket_<i>, lag_sum_us, lag_count
 * and reset h. */
void sl_lag_flush(struct sl_lag_hist *h, struct sl_state *st, const char *profile);

/* Append the Prometheus text exposition (format 0.0.4) of every profile the
 * store knows to out. 0 or -1. */
int sl_metrics_render(struct sl_state *st, struct sl_buf *out);

struct sl_metrics_server;
/* Serve GET /metrics on listen ("PORT", "HOST:PORT", "[V6]:PORT"; host
 * 127.0.0.1 by default). NULL with err when the address cannot be used. */
struct sl_metrics_server *sl_metrics_start(const char *listen, struct sl_state *st,
                                           struct sl_err *err);
void sl_metrics_stop(struct sl_metrics_server *ms);

#endif
