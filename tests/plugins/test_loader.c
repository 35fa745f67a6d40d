/*
 * test_loader.c - the loader refuses every broken or unsafe plugin with a
 * message naming the file and the reason, and loads a good one.
 *
 * The .so files come from tests/plugins/CMakeLists.txt (SL_TEST_PLUGIN_DIR);
 * each test copies what it needs into a fresh folder and sets the modes
 * itself, so the build folder's umask does not matter.
 */
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

#include "loader.h"
#include "util.h"

static char g_dir[256];

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in: %s", needle, hay);
}

/* Copy SL_TEST_PLUGIN_DIR/<name> to <dir>/<as> with mode. */
static char *copy_plugin(const char *dir, const char *name, const char *as, mode_t mode)
{
    char *src = sl_xasprintf("%s/%s", SL_TEST_PLUGIN_DIR, name);
    char *dst = sl_xasprintf("%s/%s", dir, as);
    char *tmp = sl_xasprintf("%s/.%s.tmp", dir, as);
    FILE *in = fopen(src, "rb");
    if (!in)
        fail_msg("cannot open %s (was the plugins test suite built?)", src);
    /* replace atomically, as install(1) does: never rewrite a mapped file */
    FILE *out = fopen(tmp, "wb");
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    assert_int_equal(chmod(tmp, mode), 0);
    assert_int_equal(rename(tmp, dst), 0);
    free(tmp);
    free(src);
    return dst;
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("SLUICE_TEST_TMP");
    if (base)
        sl_mkdir_p(base, 0755);
    snprintf(g_dir, sizeof g_dir, "%s/loaderXXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(g_dir));
    assert_int_equal(chmod(g_dir, 0755), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    chmod(g_dir, 0700);
    char *cmd = sl_xasprintf("rm -rf '%s'", g_dir);
    int rc = system(cmd);
    (void)rc;
    free(cmd);
    return 0;
}

/* Load <name> copied into g_dir; expect a refusal naming the file. */
static void expect_refused(const char *name, const char *reason)
{
    char *path = copy_plugin(g_dir, name, name, 0755);
    struct sl_plugin p;
    struct sl_err err;
    assert_int_equal(sl_plugin_load_file(path, &p, &err), -1);
    assert_null(p.dl);
    assert_contains(err.msg, path);
    assert_contains(err.msg, reason);
    free(path);
}

static void good_plugin_loads_by_kind_and_name(void **state)
{
    free(copy_plugin(g_dir, "source-good.so", "source-good.so", 0755));
    struct sl_plugin p;
    struct sl_err err;
    if (sl_plugin_load(g_dir, SLUICE_KIND_SOURCE, "good", &p, &err) != 0)
        fail_msg("%s", err.msg);
    assert_non_null(p.dl);
    assert_string_equal(p.desc->name, "good");
    assert_string_equal(p.desc->version, "0.0.1");
    assert_int_equal(p.desc->kind, SLUICE_KIND_SOURCE);
    assert_non_null(strstr(p.path, "source-good.so"));
    sl_plugin_unload(&p);
    assert_null(p.dl);
}

static void missing_plugin_file_is_named_with_its_folder(void **state)
{
    struct sl_plugin p;
    struct sl_err err;
    assert_int_equal(sl_plugin_load(g_dir, SLUICE_KIND_SINK, "foo", &p, &err), -1);
    assert_contains(err.msg, "no plugin file sink-foo.so in ");
    assert_contains(err.msg, g_dir);
}

static void wrong_abi_major_is_refused_naming_both_versions(void **state)
{
    char theirs[64], ours[64];
    snprintf(theirs, sizeof theirs, "built for ABI %d.%d", SLUICE_ABI_MAJOR + 1,
             SLUICE_ABI_MINOR);
    snprintf(ours, sizeof ours, "speaks ABI %d.%d", SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
    expect_refused("source-abimajor.so", theirs);
    expect_refused("source-abimajor.so", ours);
}

static void too_small_descriptor_is_refused(void **state)
{
    expect_refused("source-small.so", "descriptor struct_size 16 is smaller");
}

static void null_required_callback_is_refused_by_name(void **state)
{
    expect_refused("source-nullinit.so", "required callback 'init' is NULL");
}

static void null_required_op_is_refused_by_name(void **state)
{
    expect_refused("source-nullrun.so", "source ops 'run' is NULL");
}

static void too_small_ops_table_is_refused(void **state)
{
    expect_refused("source-smallops.so", "source ops struct_size 4 is smaller");
}

static void missing_entry_symbol_is_refused(void **state)
{
    expect_refused("source-noentry.so", "no entry function 'sluice_plugin_entry'");
}

static void name_mismatch_is_refused(void **state)
{
    expect_refused("source-mismatch.so", "name \"other\" does not match the file name");
}

static void kind_mismatch_is_refused(void **state)
{
    expect_refused("sink-wrongkind.so", "kind 'source' but the file name says 'sink'");
}

static void group_writable_file_is_refused_before_loading(void **state)
{
    char *path = copy_plugin(g_dir, "source-good.so", "source-good.so", 0775);
    struct sl_plugin p;
    struct sl_err err;
    assert_int_equal(sl_plugin_load_file(path, &p, &err), -1);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "writable by its group");
    assert_contains(err.msg, "chmod go-w");

    assert_int_equal(chmod(path, 0757), 0);
    assert_int_equal(sl_plugin_load_file(path, &p, &err), -1);
    assert_contains(err.msg, "writable by others");
    free(path);
}

static void world_writable_folder_is_refused(void **state)
{
    char *sub = sl_xasprintf("%s/open", g_dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    char *path = copy_plugin(sub, "source-good.so", "source-good.so", 0755);
    assert_int_equal(chmod(sub, 0777), 0);
    struct sl_plugin p;
    struct sl_err err;
    assert_int_equal(sl_plugin_load_file(path, &p, &err), -1);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "folder");
    assert_contains(err.msg, "writable by others");
    free(path);
    free(sub);
}

static void file_of_another_user_is_refused(void **state)
{
    if (geteuid() != 0) {
        skip(); /* only root can give a file away */
        return;
    }
    char *path = copy_plugin(g_dir, "source-good.so", "source-good.so", 0755);
    assert_int_equal(chown(path, 65534, 65534), 0);
    struct sl_plugin p;
    struct sl_err err;
    assert_int_equal(sl_plugin_load_file(path, &p, &err), -1);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "owned by uid 65534");
    free(path);
}

static void unloadable_file_suggests_ldd(void **state)
{
    char *path = sl_xasprintf("%s/source-garbage.so", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);
    chmod(path, 0755);
    struct sl_plugin p;
    struct sl_err err;
    assert_int_equal(sl_plugin_load_file(path, &p, &err), -1);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "cannot load it");
    assert_contains(err.msg, "ldd");
    free(path);
}

static void bad_file_name_is_refused(void **state)
{
    char *path = copy_plugin(g_dir, "source-good.so", "thing-good.so", 0755);
    struct sl_plugin p;
    struct sl_err err;
    assert_int_equal(sl_plugin_load_file(path, &p, &err), -1);
    assert_contains(err.msg, "unknown plugin kind 'thing'");
    free(path);
}

struct scan_seen {
    char names[16][64];
    int ok[16];
    int n;
};

static void scan_cb(void *arg, const char *path, const struct sl_plugin *p,
                    const struct sl_err *err)
{
    struct scan_seen *s = arg;
    assert_true(s->n < 16);
    snprintf(s->names[s->n], sizeof s->names[0], "%s", strrchr(path, '/') + 1);
    s->ok[s->n] = p != NULL;
    if (!p)
        assert_contains(err->msg, path);
    s->n++;
}

static void scan_lists_every_so_in_name_order_with_refusals(void **state)
{
    free(copy_plugin(g_dir, "source-nullrun.so", "source-nullrun.so", 0755));
    free(copy_plugin(g_dir, "source-good.so", "source-good.so", 0755));
    free(copy_plugin(g_dir, "source-abimajor.so", "source-abimajor.so", 0755));
    char *other = sl_xasprintf("%s/README.txt", g_dir);
    FILE *f = fopen(other, "w");
    fclose(f);
    free(other);
    struct scan_seen s = {0};
    assert_int_equal(sl_plugin_scan(g_dir, scan_cb, &s), 3);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.names[0], "source-abimajor.so");
    assert_string_equal(s.names[1], "source-good.so");
    assert_string_equal(s.names[2], "source-nullrun.so");
    assert_false(s.ok[0]);
    assert_true(s.ok[1]);
    assert_false(s.ok[2]);
}

static void plugin_folder_comes_from_env_then_config(void **state)
{
    struct sl_config cfg = {0};
    cfg.plugin_dir = "/from/config";
    setenv("SLUICE_PLUGIN_PATH", "/from/env", 1);
    assert_string_equal(sl_plugin_dir(&cfg), "/from/env");
    unsetenv("SLUICE_PLUGIN_PATH");
    assert_string_equal(sl_plugin_dir(&cfg), "/from/config");
    /* neither: this test runs inside the build tree, so the build's folder */
    const char *d = sl_plugin_dir(NULL);
    assert_non_null(d);
    assert_true(d[0] == '/');
}

static void kind_names_round_trip(void **state)
{
    for (int k = SLUICE_KIND_SOURCE; k <= SLUICE_KIND_SINK; k++)
        assert_int_equal(sl_kind_parse(sl_kind_name(k)), k);
    assert_null(sl_kind_name(0));
    assert_int_equal(sl_kind_parse("filter"), -1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(good_plugin_loads_by_kind_and_name),
        T(missing_plugin_file_is_named_with_its_folder),
        T(wrong_abi_major_is_refused_naming_both_versions),
        T(too_small_descriptor_is_refused),
        T(null_required_callback_is_refused_by_name),
        T(null_required_op_is_refused_by_name),
        T(too_small_ops_table_is_refused),
        T(missing_entry_symbol_is_refused),
        T(name_mismatch_is_refused),
        T(kind_mismatch_is_refused),
        T(group_writable_file_is_refused_before_loading),
        T(world_writable_folder_is_refused),
        T(file_of_another_user_is_refused),
        T(unloadable_file_suggests_ldd),
        T(bad_file_name_is_refused),
        T(scan_lists_every_so_in_name_order_with_refusals),
        T(plugin_folder_comes_from_env_then_config),
        T(kind_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
