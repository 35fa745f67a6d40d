/*
 * The pipeline end to end in one process: a tiny in-test source and sink
 * (plain C structs behind the real plugin ABI), the real transport-memory
 * (compiled in), the real host, wire format and state store.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* the real default transport, built into this test */
#include "../../plugins/transport-memory/memory_transport.c"

#include "config.h"
#include "loader.h"
#include "pipeline.h"
#include "state.h"
#include "util.h"

#define NROWS 200
#define BAD_ID 57

/* ---- the "target database" ----------------------------------------------- */

static struct target {
    pthread_mutex_t lock;
    bool present[NROWS];
    uint64_t version[NROWS];
    int applies_per_row[NROWS]; /* rows written with a version change */
    struct sluice_position checkpoint[8];
    bool refuse_bad;      /* the sink refuses the row named "bad" */
    int transient_left;   /* apply returns RETRY this many times */
    bool always_transient;
    int retries_seen;
    bool wrong_partition; /* a sink instance saw another worker's partition */
} target = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- source -------------------------------------------------------------- */

static struct source_log {
    struct sluice_position resume;
    struct sluice_position acked;
    int runs;
    bool ack_went_back; /* set on a worker thread: checked on the main one */
} source_log;

struct tsrc {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    const struct sluice_entity *items;
};

static int tsrc_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                     const struct sluice_init_args *args, void **inst)
{
    (void)args;
    struct tsrc *s = calloc(1, sizeof *s);
    s->host = host;
    s->ctx = ctx;
    *inst = s;
    memset(&source_log.acked, 0, sizeof source_log.acked); /* a new run, a new source */
    return SLUICE_OK;
}
static int t_start(void *inst) { (void)inst; return SLUICE_OK; }
static void t_stop(void *inst) { (void)inst; }
static void t_destroy(void *inst) { free(inst); }

static int tsrc_describe(void *inst)
{
    struct tsrc *s = inst;
    static const struct sluice_column cols[] = {
        {.name = "id", .type = SLUICE_T_INT64, .flags = SLUICE_COL_KEY},
        {.name = "name", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE},
    };
    static const uint32_t keys[] = {0};
    struct sluice_entity d = {.ns = "", .name = "items", .ncolumns = 2, .columns = cols,
                              .nkeys = 1, .key_columns = keys};
    s->items = s->host->entity_declare(s->ctx, &d);
    return s->items ? SLUICE_OK : SLUICE_ERR;
}

static int tsrc_run(void *inst, const struct sluice_position *resume, int mode)
{
    struct tsrc *s = inst;
    source_log.resume = *resume;
    source_log.runs++;
    uint64_t start = resume->len == 8 ? sluice_get_be64(resume->bytes) : 0;
    struct sluice_batch *b = NULL;
    for (uint64_t id = start; id < NROWS; id++) {
        if (s->host->stopping(s->ctx)) {
            s->host->batch_discard(b);
            return SLUICE_STOPPED;
        }
        if (!b)
            b = s->host->batch_new(s->ctx);
        struct sluice_event *ev = s->host->batch_append(b, s->items, SLUICE_OP_READ);
        ev->version = 1;
        sluice_value_set_int(&ev->values[0], (int64_t)id);
        char name[32];
        int n = snprintf(name, sizeof name, "%s", id == BAD_ID ? "bad" : "row");
        sluice_value_set_ref(&ev->values[1], s->host->batch_copy(b, name, (size_t)n),
                             (uint32_t)n);
        if (b->nevents == 10 || id + 1 == NROWS) {
            b->position.len = 8;
            sluice_put_be64(b->position.bytes, id + 1);
            int st = s->host->emit(s->ctx, b);
            b = NULL;
            if (st != SLUICE_OK)
                return st;
        }
    }
    if (mode == SLUICE_RUN_FOLLOW) /* no more changes will come: wait to be stopped */
        while (s->host->wait(s->ctx, 50) == SLUICE_OK)
            ;
    return mode == SLUICE_RUN_FOLLOW ? SLUICE_STOPPED : SLUICE_OK;
}

static void tsrc_ack(void *inst, const struct sluice_position *durable)
{
    (void)inst;
    pthread_mutex_lock(&target.lock);
    if (sluice_position_cmp(durable, &source_log.acked) <= 0)
        source_log.ack_went_back = true;
    source_log.acked = *durable;
    pthread_mutex_unlock(&target.lock);
}

static const struct sluice_source_ops tsrc_ops = {
    .struct_size = sizeof(struct sluice_source_ops),
    .describe = tsrc_describe, .run = tsrc_run, .ack = tsrc_ack};

static const struct sluice_plugin tsrc_plugin = {
    .abi_major = SLUICE_ABI_MAJOR, .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin), .kind = SLUICE_KIND_SOURCE, .name = "test",
    .version = "1", .init = tsrc_init, .start = t_start, .stop = t_stop, .destroy = t_destroy,
    .ops = &tsrc_ops};

/* ---- sink ---------------------------------------------------------------- */

struct tsink {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    uint32_t worker;
};

static int tsink_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                      const struct sluice_init_args *args, void **inst)
{
    struct tsink *k = calloc(1, sizeof *k);
    k->host = host;
    k->ctx = ctx;
    k->worker = args->worker;
    *inst = k;
    return SLUICE_OK;
}

static int tsink_prepare(void *inst, const struct sluice_entity *e)
{
    (void)inst;
    return strcmp(e->name, "items") == 0 ? SLUICE_OK : SLUICE_ERR;
}

static int tsink_apply(void *inst, const struct sluice_batch *b, size_t *failed)
{
    struct tsink *k = inst;
    int rc = SLUICE_OK;
    pthread_mutex_lock(&target.lock);
    if (b->partition != k->worker)
        target.wrong_partition = true;
    if (target.always_transient || target.transient_left > 0) {
        target.transient_left--;
        target.retries_seen++;
        k->host->set_error(k->ctx, "connection reset (simulated)");
        rc = SLUICE_RETRY;
        goto out;
    }
    /* all or nothing, like one transaction */
    for (size_t i = 0; i < b->nevents; i++) {
        const struct sluice_value *name = &b->events[i].values[1];
        if (target.refuse_bad && name->len == 3 && memcmp(name->u.ptr, "bad", 3) == 0) {
            *failed = i;
            k->host->set_error(k->ctx, "value violates check constraint (simulated)");
            rc = SLUICE_ERR;
            goto out;
        }
    }
    for (size_t i = 0; i < b->nevents; i++) {
        const struct sluice_event *ev = &b->events[i];
        int64_t id = ev->values[0].u.i64;
        if (id < 0 || id >= NROWS)
            continue;
        if (target.present[id] && target.version[id] >= ev->version)
            continue; /* version guard: replays change nothing */
        target.present[id] = true;
        target.version[id] = ev->version;
        target.applies_per_row[id]++;
    }
    if (b->position.len)
        target.checkpoint[b->partition] = b->position;
out:
    pthread_mutex_unlock(&target.lock);
    return rc;
}

static int tsink_checkpoints(void *inst, sluice_checkpoint_cb cb, void *arg)
{
    (void)inst;
    for (uint32_t p = 0; p < 8; p++)
        if (target.checkpoint[p].len)
            cb(arg, p, &target.checkpoint[p]);
    return SLUICE_OK;
}

static const struct sluice_sink_ops tsink_ops = {
    .struct_size = sizeof(struct sluice_sink_ops), .prepare = tsink_prepare,
    .apply = tsink_apply, .checkpoint_list = tsink_checkpoints};

static const struct sluice_plugin tsink_plugin = {
    .abi_major = SLUICE_ABI_MAJOR, .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin), .kind = SLUICE_KIND_SINK, .name = "test",
    .version = "1", .init = tsink_init, .start = t_start, .stop = t_stop,
    .destroy = t_destroy, .ops = &tsink_ops};

/* ---- fixture ------------------------------------------------------------- */

struct fixture {
    char *dir;
    struct sl_config cfg;
    struct sl_profile profile;
    struct sl_state *state;
    struct sl_plugin src, tr, sink;
};

static int setup(void **state)
{
    struct fixture *f = sl_xcalloc(1, sizeof *f);
    const char *base = getenv("SLUICE_TEST_TMP");
    char tmpl[4096];
    if (base && *base)
        sl_mkdir_p(base, 0755);
    snprintf(tmpl, sizeof tmpl, "%s/pipeline-XXXXXX", base && *base ? base : "/tmp");
    f->dir = sl_xstrdup(mkdtemp(tmpl));
    struct sl_err err;
    assert_int_equal(sl_state_open(f->dir, &f->state, &err), 0);
    static char *entities[] = {"items"};
    f->profile = (struct sl_profile){
        .name = "t", .file = "test.conf", .line = 1,
        .source = {.name = "test"}, .transport = {.name = "memory"}, .sink = {.name = "test"},
        .entities = entities, .nentities = 1, .batch_rows = 10, .batch_bytes = 1 << 20,
        .batch_linger_ms = 10, .workers = 2, .queue_depth = 2, .retry_count = 3,
        .retry_interval_s = 0, .table_prefix = "", .enabled = true};
    f->src = (struct sl_plugin){.path = "test-source", .desc = &tsrc_plugin};
    f->tr = (struct sl_plugin){.path = "transport-memory", .desc = sluice_plugin_entry()};
    f->sink = (struct sl_plugin){.path = "test-sink", .desc = &tsink_plugin};
    pthread_mutex_lock(&target.lock);
    memset(target.present, 0, sizeof target.present);
    memset(target.version, 0, sizeof target.version);
    memset(target.applies_per_row, 0, sizeof target.applies_per_row);
    memset(target.checkpoint, 0, sizeof target.checkpoint);
    target.refuse_bad = false;
    target.transient_left = 0;
    target.always_transient = false;
    target.retries_seen = 0;
    target.wrong_partition = false;
    pthread_mutex_unlock(&target.lock);
    memset(&source_log, 0, sizeof source_log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sl_state_close(f->state);
    free(f->dir);
    free(f);
    return 0;
}

static int run_once(struct fixture *f, char *error, size_t cap)
{
    struct sl_pipeline_opts opts = {.run_mode = SLUICE_RUN_ONCE, .state = f->state,
                                    .plugin_dir = "/nonexistent", .state_dir = f->dir,
                                    .source_plugin = &f->src, .transport_plugin = &f->tr,
                                    .sink_plugin = &f->sink};
    struct sl_pipeline *pl = sl_pipeline_new(&f->cfg, &f->profile, &opts);
    int rc = sl_pipeline_run(pl);
    if (error)
        snprintf(error, cap, "%s", sl_pipeline_error(pl));
    sl_pipeline_free(pl);
    assert_false(source_log.ack_went_back);
    assert_false(target.wrong_partition);
    return rc;
}

struct counter_query {
    const char *entity, *name;
    int64_t v;
};

static void counter_cb(void *arg, const char *e, const char *n, int64_t v)
{
    struct counter_query *q = arg;
    if (strcmp(e, q->entity) == 0 && strcmp(n, q->name) == 0)
        q->v = v;
}

struct service {
    struct fixture *f;
    struct sl_pipeline *pl;
    int result;
};

static void *service_main(void *arg)
{
    struct service *sv = arg;
    sv->result = sl_pipeline_run(sv->pl);
    return NULL;
}

static int64_t counter(struct fixture *f, const char *entity, const char *name)
{
    struct counter_query q = {entity, name, 0};
    sl_state_flush(f->state);
    sl_state_counters(f->state, "t", counter_cb, &q);
    return q.v;
}

/* ---- tests --------------------------------------------------------------- */

static void once_applies_every_row_checkpoints_every_partition_and_acks_the_source(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(run_once(f, NULL, 0), SL_PIPELINE_DONE);
    for (int i = 0; i < NROWS; i++)
        assert_true(target.present[i]);
    /* every partition's checkpoint reached the last position, also a
     * partition that got no events of the last batch */
    for (uint32_t p = 0; p < 2; p++) {
        assert_int_equal(target.checkpoint[p].len, 8);
        assert_int_equal(sluice_get_be64(target.checkpoint[p].bytes), NROWS);
    }
    assert_int_equal(sluice_get_be64(source_log.acked.bytes), NROWS);
    assert_int_equal(source_log.resume.len, 0);
    assert_int_equal(counter(f, "items", "rows_read"), NROWS);
    assert_int_equal(counter(f, "items", "applied_rows"), NROWS);
}

static void second_run_resumes_from_the_smallest_checkpoint_and_changes_nothing(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(run_once(f, NULL, 0), SL_PIPELINE_DONE);
    /* pretend partition 1 crashed earlier: its checkpoint is behind */
    sluice_put_be64(target.checkpoint[1].bytes, 120);
    assert_int_equal(run_once(f, NULL, 0), SL_PIPELINE_DONE);
    assert_int_equal(source_log.resume.len, 8);
    assert_int_equal(sluice_get_be64(source_log.resume.bytes), 120);
    for (int i = 0; i < NROWS; i++)
        assert_int_equal(target.applies_per_row[i], 1); /* replay was a no-op */
    assert_int_equal(sluice_get_be64(target.checkpoint[1].bytes), NROWS);
}

static void refused_record_is_isolated_logged_and_the_rest_applied(void **state)
{
    struct fixture *f = *state;
    target.refuse_bad = true;
    assert_int_equal(run_once(f, NULL, 0), SL_PIPELINE_DONE);
    for (int i = 0; i < NROWS; i++)
        assert_int_equal(target.present[i], i != BAD_ID);
    int64_t n = 0;
    assert_int_equal(sl_state_failed_count(f->state, "t", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(counter(f, "items", "failed"), 1);
    /* the checkpoint moved past the bad batch */
    for (uint32_t p = 0; p < 2; p++)
        assert_int_equal(sluice_get_be64(target.checkpoint[p].bytes), NROWS);
}

static void transient_apply_failures_are_retried(void **state)
{
    struct fixture *f = *state;
    target.transient_left = 3;
    f->profile.retry_count = 5;
    assert_int_equal(run_once(f, NULL, 0), SL_PIPELINE_DONE);
    for (int i = 0; i < NROWS; i++)
        assert_true(target.present[i]);
    assert_int_equal(counter(f, "", "retries"), 3);
}

static void exhausted_retries_fail_the_profile_with_a_clear_error(void **state)
{
    struct fixture *f = *state;
    target.always_transient = true;
    f->profile.retry_count = 2;
    char error[1024];
    assert_int_equal(run_once(f, error, sizeof error), SL_PIPELINE_FAILED);
    assert_non_null(strstr(error, "gave up after 2 retries"));
    assert_non_null(strstr(error, "connection reset"));
    /* never acked what was not applied */
    assert_int_equal(source_log.acked.len, 0);
}

static void service_stop_drains_and_returns_stopped(void **state)
{
    struct fixture *f = *state;
    struct sl_pipeline_opts opts = {.run_mode = SLUICE_RUN_FOLLOW, .state = f->state,
                                    .plugin_dir = "/nonexistent", .state_dir = f->dir,
                                    .source_plugin = &f->src, .transport_plugin = &f->tr,
                                    .sink_plugin = &f->sink};
    struct service sv = {.f = f, .pl = sl_pipeline_new(&f->cfg, &f->profile, &opts)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, service_main, &sv), 0);
    /* the service follows: wait until the source has read everything */
    for (int i = 0; i < 1000 && !sl_pipeline_finished(sv.pl); i++) {
        pthread_mutex_lock(&target.lock);
        bool all = source_log.acked.len == 8 && sluice_get_be64(source_log.acked.bytes) == NROWS;
        pthread_mutex_unlock(&target.lock);
        if (all)
            break;
        usleep(10000);
    }
    assert_false(sl_pipeline_finished(sv.pl)); /* a service does not end by itself */
    sl_pipeline_stop(sv.pl);
    pthread_join(t, NULL);
    assert_int_equal(sv.result, SL_PIPELINE_STOPPED);
    for (int i = 0; i < NROWS; i++)
        assert_true(target.present[i]);
    sl_pipeline_free(sv.pl);
}

/* A transport whose publish returns late: the message is on the queue (the
 * worker may apply it at once) but the pipeline has not yet recorded the
 * batch as in flight. The durable position must still reach the source. */
static int slow_publish(void *inst, uint32_t partition, const void *data, size_t len)
{
    int st = mt_publish(inst, partition, data, len);
    usleep(20000);
    return st;
}

/* The fixture's transport becomes transport-memory with ops changed by edit. */
static void use_memory_transport_with(struct fixture *f,
                                      void (*edit)(struct sluice_transport_ops *))
{
    static struct sluice_transport_ops ops;
    static struct sluice_plugin desc;
    ops = mt_ops;
    edit(&ops);
    desc = *sluice_plugin_entry();
    desc.ops = &ops;
    f->tr.desc = &desc;
}

static void slow_publishing(struct sluice_transport_ops *ops) { ops->publish = slow_publish; }
static void not_in_process(struct sluice_transport_ops *ops) { ops->flags = NULL; }

static void applied_before_recorded_in_flight_is_still_acked(void **state)
{
    struct fixture *f = *state;
    use_memory_transport_with(f, slow_publishing);
    assert_int_equal(run_once(f, NULL, 0), SL_PIPELINE_DONE);
    assert_int_equal(source_log.acked.len, 8);
    assert_int_equal(sluice_get_be64(source_log.acked.bytes), NROWS);
}

/* A transport without SLUICE_TRANSPORT_IN_PROCESS: every batch is encoded
 * per partition and decoded by its worker (the wire path). */
static void encoded_transport_applies_every_row_once(void **state)
{
    struct fixture *f = *state;
    use_memory_transport_with(f, not_in_process);
    target.refuse_bad = true;
    assert_int_equal(run_once(f, NULL, 0), SL_PIPELINE_DONE);
    for (int i = 0; i < NROWS; i++) {
        assert_int_equal(target.present[i], i != BAD_ID);
        assert_true(target.applies_per_row[i] <= 1);
    }
    assert_int_equal(sluice_get_be64(source_log.acked.bytes), NROWS);
    assert_int_equal(counter(f, "items", "failed"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            once_applies_every_row_checkpoints_every_partition_and_acks_the_source, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            second_run_resumes_from_the_smallest_checkpoint_and_changes_nothing, setup,
            teardown),
        cmocka_unit_test_setup_teardown(refused_record_is_isolated_logged_and_the_rest_applied,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(transient_apply_failures_are_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(exhausted_retries_fail_the_profile_with_a_clear_error,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(service_stop_drains_and_returns_stopped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(applied_before_recorded_in_flight_is_still_acked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(encoded_transport_applies_every_row_once, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
