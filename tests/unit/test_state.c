/* State store: counters accumulate in memory and persist across reopen,
 * failed records are kept, profile status round-trips, file modes are tight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "state.h"
#include "util.h"

static char *make_dir(void)
{
    const char *base = getenv("SLUICE_TEST_TMP");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/state-XXXXXX", base && *base ? base : "/tmp");
    if (base && *base)
        sl_mkdir_p(base, 0755);
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    /* a folder that does not exist yet: the store must create it 0700 */
    return sl_xasprintf("%s/nested/state", d);
}

struct totals {
    int64_t inserts_accounts, rows_read_contacts, retries_profile;
    int n;
};

static void collect(void *arg, const char *entity, const char *name, int64_t value)
{
    struct totals *t = arg;
    t->n++;
    if (strcmp(entity, "accounts") == 0 && strcmp(name, "inserts") == 0)
        t->inserts_accounts = value;
    if (strcmp(entity, "contacts") == 0 && strcmp(name, "rows_read") == 0)
        t->rows_read_contacts = value;
    if (strcmp(entity, "") == 0 && strcmp(name, "retries") == 0)
        t->retries_profile = value;
}

static void counters_accumulate_and_persist_across_reopen(void **unused)
{
    (void)unused;
    char *dir = make_dir();
    struct sl_state *st = NULL;
    struct sl_err err = {{0}};
    assert_int_equal(sl_state_open(dir, &st, &err), 0);
    for (int i = 0; i < 1000; i++)
        sl_state_counter_add(st, "crm", "accounts", "inserts", 1);
    sl_state_counter_add(st, "crm", "contacts", "rows_read", 40);
    sl_state_counter_add(st, "crm", NULL, "retries", 2);
    sl_state_counter_add(st, "other", "accounts", "inserts", 7);
    assert_int_equal(sl_state_flush(st), 0);
    sl_state_counter_add(st, "crm", "accounts", "inserts", 5); /* flushed by close */
    sl_state_close(st);

    assert_int_equal(sl_state_open(dir, &st, &err), 0);
    struct totals t = {0};
    assert_int_equal(sl_state_counters(st, "crm", collect, &t), 0);
    assert_int_equal(t.inserts_accounts, 1005);
    assert_int_equal(t.rows_read_contacts, 40);
    assert_int_equal(t.retries_profile, 2);
    assert_int_equal(t.n, 3); /* "other" is not mixed in */

    /* a second process run adds to the stored totals */
    sl_state_counter_add(st, "crm", "accounts", "inserts", 10);
    struct totals run = {0};
    sl_state_run_counters(st, "crm", collect, &run);
    assert_int_equal(run.inserts_accounts, 10);
    assert_int_equal(sl_state_flush(st), 0);
    memset(&t, 0, sizeof t);
    assert_int_equal(sl_state_counters(st, "crm", collect, &t), 0);
    assert_int_equal(t.inserts_accounts, 1015);
    sl_state_close(st);
    free(dir);
}

struct prof_seen {
    int n;
    char status[32], last_error[128];
    bool enabled;
    int64_t last_success;
};

static void prof_cb(void *arg, const struct sl_state_profile *p)
{
    struct prof_seen *s = arg;
    s->n++;
    if (strcmp(p->name, "crm") != 0)
        return;
    snprintf(s->status, sizeof s->status, "%s", p->status ? p->status : "");
    snprintf(s->last_error, sizeof s->last_error, "%s", p->last_error ? p->last_error : "");
    s->enabled = p->enabled;
    s->last_success = p->last_success_us;
}

static void failed_records_and_profile_status_are_kept(void **unused)
{
    (void)unused;
    char *dir = make_dir();
    struct sl_state *st = NULL;
    struct sl_err err = {{0}};
    assert_int_equal(sl_state_open(dir, &st, &err), 0);
    struct sl_failed_record r = {.profile = "crm", .entity = "accounts", .record_id = "42,7",
                                 .op = "insert", .position = "00ff", .sync_time_us = 123,
                                 .error = "value too long for type character varying(5)"};
    assert_int_equal(sl_state_failed_add(st, &r), 0);
    r.record_id = NULL;
    r.entity = NULL;
    assert_int_equal(sl_state_failed_add(st, &r), 0);
    assert_int_equal(sl_state_profile_set(st, "crm", true, "failed", "sink pg: apply: boom"), 0);
    sl_state_profile_success(st, "crm", 777);
    sl_state_close(st);

    assert_int_equal(sl_state_open(dir, &st, &err), 0);
    int64_t n = -1;
    assert_int_equal(sl_state_failed_count(st, "crm", &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(sl_state_failed_count(st, "nobody", &n), 0);
    assert_int_equal(n, 0);
    struct prof_seen s = {0};
    assert_int_equal(sl_state_profiles(st, prof_cb, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.status, "failed");
    assert_string_equal(s.last_error, "sink pg: apply: boom");
    assert_true(s.enabled);
    assert_int_equal(s.last_success, 777);
    /* status changes keep last_success; a NULL error clears the old one */
    assert_int_equal(sl_state_profile_set(st, "crm", false, "done", NULL), 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(sl_state_profiles(st, prof_cb, &s), 0);
    assert_string_equal(s.status, "done");
    assert_string_equal(s.last_error, "");
    assert_false(s.enabled);
    assert_int_equal(s.last_success, 777);
    sl_state_close(st);
    free(dir);
}

static void state_files_are_private(void **unused)
{
    (void)unused;
    char *dir = make_dir();
    struct sl_state *st = NULL;
    struct sl_err err = {{0}};
    mode_t old = umask(0); /* even a permissive umask must not widen the modes */
    assert_int_equal(sl_state_open(dir, &st, &err), 0);
    umask(old);
    sl_state_counter_add(st, "crm", "accounts", "inserts", 1);
    assert_int_equal(sl_state_flush(st), 0); /* makes sure the WAL exists */

    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char *p = sl_xasprintf("%s/state.db%s", dir, suffixes[i]);
        assert_int_equal(stat(p, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        free(p);
    }
    sl_state_close(st);
    free(dir);
}

static void unwritable_state_dir_is_a_clear_error(void **unused)
{
    (void)unused;
    struct sl_state *st = NULL;
    struct sl_err err = {{0}};
    assert_int_equal(sl_state_open("/proc/sluice-cannot-exist/state", &st, &err), -1);
    assert_null(st);
    assert_non_null(strstr(err.msg, "/proc/sluice-cannot-exist/state"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_accumulate_and_persist_across_reopen),
        cmocka_unit_test(failed_records_and_profile_status_are_kept),
        cmocka_unit_test(state_files_are_private),
        cmocka_unit_test(unwritable_state_dir_is_a_clear_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
