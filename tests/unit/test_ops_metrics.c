/* Operations state: lifecycle decisions persist across reopen, forgetting a
 * profile removes its counters (also unflushed ones), gauges and failed
 * records and nothing of another profile, and the Prometheus rendering has
 * cumulative lag buckets, escaped labels and one family header per metric. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "state.h"
#include "util.h"

static char *make_dir(void)
{
    const char *base = getenv("SLUICE_TEST_TMP");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/ops-XXXXXX", base && *base ? base : "/tmp");
    if (base && *base)
        sl_mkdir_p(base, 0755);
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return sl_xstrdup(d);
}

static void sum_cb(void *arg, const char *entity, const char *name, int64_t value)
{
    (void)entity;
    (void)name;
    *(int64_t *)arg += value;
}

static void admin_decision_persists_and_forget_removes_only_that_profile(void **unused)
{
    (void)unused;
    char *dir = make_dir();
    struct sl_state *st = NULL;
    struct sl_err err = {{0}};
    assert_int_equal(sl_state_open(dir, &st, &err), 0);
    assert_int_equal(sl_state_admin_get(st, "crm", NULL), SL_ADMIN_NONE);
    assert_int_equal(sl_state_admin_set(st, "crm", SL_ADMIN_DISABLED), 0);
    sl_state_counter_add(st, "crm", "accounts", "inserts", 5);
    sl_state_counter_add(st, "shop", "items", "inserts", 7);
    assert_int_equal(sl_state_flush(st), 0);
    sl_state_counter_add(st, "crm", "accounts", "inserts", 3); /* not flushed yet */
    assert_int_equal(sl_state_gauge_set(st, "crm", "accounts", "rows_estimated", 100), 0);
    struct sl_failed_record r = {.profile = "crm", .entity = "accounts", .error = "x"};
    assert_int_equal(sl_state_failed_add(st, &r), 0);
    r.profile = "shop";
    assert_int_equal(sl_state_failed_add(st, &r), 0);
    sl_state_close(st);

    assert_int_equal(sl_state_open(dir, &st, &err), 0);
    int64_t since = 0;
    assert_int_equal(sl_state_admin_get(st, "crm", &since), SL_ADMIN_DISABLED);
    assert_true(since > 0);
    sl_state_counter_add(st, "crm", "accounts", "inserts", 1); /* pending at forget */
    int64_t removed = 0;
    assert_int_equal(sl_state_profile_forget(st, "crm", &removed), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(sl_state_flush(st), 0);
    int64_t crm = 0, crm_gauges = 0, shop = 0, failed = -1;
    sl_state_counters(st, "crm", sum_cb, &crm);
    sl_state_gauges(st, "crm", sum_cb, &crm_gauges);
    sl_state_counters(st, "shop", sum_cb, &shop);
    assert_int_equal(crm, 0);
    assert_int_equal(crm_gauges, 0);
    assert_int_equal(shop, 7);
    sl_state_failed_count(st, "shop", &failed);
    assert_int_equal(failed, 1);
    sl_state_close(st);
    free(dir);
}

static void lag_histogram_renders_cumulative_buckets(void **unused)
{
    (void)unused;
    char *dir = make_dir();
    struct sl_state *st = NULL;
    struct sl_err err = {{0}};
    assert_int_equal(sl_state_open(dir, &st, &err), 0);
    sl_state_profile_set(st, "a\"b", true, "running", NULL);
    struct sl_lag_hist h = {0};
    sl_lag_observe(&h, 5000);       /* 0.005 s: first bucket */
    sl_lag_observe(&h, 2000000);    /* 2 s: le 2.5 */
    sl_lag_observe(&h, 1000000000); /* 1000 s: +Inf only */
    sl_lag_observe(&h, -10);        /* clock skew counts as 0 */
    sl_lag_flush(&h, st, "a\"b");
    assert_int_equal(h.count, 0);
    sl_state_counter_add(st, "a\"b", "items", "inserts", 4);
    assert_int_equal(sl_state_flush(st), 0);
    struct sl_buf out = {0};
    assert_int_equal(sl_metrics_render(st, &out), 0);
    sl_buf_append(&out, "", 1);
    const char *t = out.data;
    assert_non_null(strstr(t, "sluice_lag_seconds_bucket{profile=\"a\\\"b\",le=\"0.01\"} 2\n"));
    assert_non_null(strstr(t, "sluice_lag_seconds_bucket{profile=\"a\\\"b\",le=\"2.5\"} 3\n"));
    assert_non_null(strstr(t, "sluice_lag_seconds_bucket{profile=\"a\\\"b\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(t, "sluice_lag_seconds_count{profile=\"a\\\"b\"} 4\n"));
    assert_non_null(
        strstr(t, "sluice_inserts_total{profile=\"a\\\"b\",entity=\"items\"} 4\n"));
    /* one TYPE line per family */
    const char *first = strstr(t, "# TYPE sluice_inserts_total counter");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE sluice_inserts_total counter"));
    sl_buf_free(&out);
    sl_state_close(st);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(admin_decision_persists_and_forget_removes_only_that_profile),
        cmocka_unit_test(lag_histogram_renders_cumulative_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
