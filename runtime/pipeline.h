/*
 * pipeline.h - one export profile at run time (docs/architecture.md).
 *
 * A pipeline owns the profile's plugin instances - one source, one transport,
 * one sink per apply worker - and its threads: the source thread (source
 * run(), encode, publish) and one apply worker per partition (consume,
 * decode, prepare, apply with retries and bad-record isolation, ack). It
 * resumes from the smallest partition checkpoint the target holds, and acks
 * the transport and the source only after the sink's apply returned OK
 * (at-least-once; the sink's version guard makes replays harmless).
 *
 * sl_pipeline_run() does the whole lifecycle on the calling thread (the
 * profile's control thread) and returns when the profile is done (--once),
 * stopped (sl_pipeline_stop) or failed. stop/abort may be called from any
 * thread, also before run started.
 */
#ifndef SL_PIPELINE_H
#define SL_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loader.h"
#include "state.h"

struct sl_pipeline;

struct sl_pipeline_opts {
    int run_mode;            /* SLUICE_RUN_ONCE or SLUICE_RUN_FOLLOW */
    struct sl_state *state;  /* counters, status, failed records (required) */
    const char *plugin_dir;  /* where <kind>-<name>.so are loaded from */
    const char *state_dir;   /* main state folder; plugins get <state_dir>/profiles/<name> */
    /* Tests: use these already loaded plugins instead of loading by name. */
    const struct sl_plugin *source_plugin, *transport_plugin, *sink_plugin;
};

/* Outcome of sl_pipeline_run. */
enum sl_pipeline_result {
    SL_PIPELINE_DONE = 0,    /* --once: everything up to now applied */
    SL_PIPELINE_STOPPED = 1, /* stopped on request after draining */
    SL_PIPELINE_FAILED = 2   /* gave up; sl_pipeline_error() says why */
};

struct sl_pipeline *sl_pipeline_new(const struct sl_config *cfg, const struct sl_profile *profile,
                                    const struct sl_pipeline_opts *opts);
/* Run to the end (blocking). Records status in the state store. */
int sl_pipeline_run(struct sl_pipeline *pl);
/* Stop the source, drain what was published, stop (service shutdown). */
void sl_pipeline_stop(struct sl_pipeline *pl);
/* Stop now without draining (second signal); nothing is lost: unapplied
 * messages are replayed from the target's checkpoints on the next run. */
void sl_pipeline_abort(struct sl_pipeline *pl);
/* True once sl_pipeline_run returned. */
bool sl_pipeline_finished(struct sl_pipeline *pl);
/* Why the pipeline failed ("" when it did not). */
const char *sl_pipeline_error(const struct sl_pipeline *pl);
const char *sl_pipeline_name(const struct sl_pipeline *pl);
/* Wall time the run took so far / in total, microseconds. */
uint64_t sl_pipeline_elapsed_us(const struct sl_pipeline *pl);
void sl_pipeline_free(struct sl_pipeline *pl);
/* Transport messages waiting in all partitions, as last seen by the workers
 * (0 once finished). Any thread. */
size_t sl_pipeline_queue_depth(struct sl_pipeline *pl);

#endif
