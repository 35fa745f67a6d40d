/*
 * test_config.c - the configuration loader: every error names file:line and
 * the key; defaults; drop-in order; plugin sections filled from a spec,
 * secrets from the file, a file or the environment.
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

#include "config.h"
#include "util.h"

static char g_dir[256];

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    sl_mkdir_p(path, 0755);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *path_of(const char *name)
{
    return sl_xasprintf("%s/%s", g_dir, name);
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("SLUICE_TEST_TMP");
    if (base)
        sl_mkdir_p(base, 0755);
    snprintf(g_dir, sizeof g_dir, "%s/cfgXXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = sl_xasprintf("rm -rf '%s'", g_dir);
    int rc = system(cmd);
    (void)rc;
    free(cmd);
    return 0;
}

#define GOOD_PROFILE(name)                                                                     \
    "profiles = ( { name = \"" name "\"; entities = [\"accounts\"];\n"                         \
    "  source = { plugin = \"file\"; path = \"/srv\"; };\n"                                    \
    "  sink = { plugin = \"pg\"; }; } );\n"

/* Load main.conf from g_dir, expect failure, and return the message. */
static const char *load_fails(struct sl_err *err)
{
    struct sl_config cfg;
    char *main_path = path_of("main.conf");
    int rc = sl_config_load(main_path, &cfg, err);
    free(main_path);
    assert_int_equal(rc, -1);
    return err->msg;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in: %s", needle, hay);
}

static void main_conf_default(void)
{
    write_file("main.conf", "state_dir = \"state\";\n");
}

/* ---- error classes ---------------------------------------------------------- */

static void syntax_error_names_file_and_line(void **state)
{
    main_conf_default();
    write_file("conf.d/10-crm.conf", "profiles = (\n  { name = \"crm\";\n    entities = [ = ]; }\n);\n");
    struct sl_err err;
    const char *m = load_fails(&err);
    assert_contains(m, "10-crm.conf:3:");
    assert_contains(m, "syntax error");
}

static void unknown_main_key_names_file_line_and_key(void **state)
{
    write_file("main.conf", "state_dir = \"/x\";\n\nplugin_folder = \"/y\";\n");
    struct sl_err err;
    const char *m = load_fails(&err);
    assert_contains(m, "main.conf:3:");
    assert_contains(m, "unknown key 'plugin_folder'");
}

static void unknown_profile_key_names_file_line_and_key(void **state)
{
    main_conf_default();
    write_file("conf.d/10-crm.conf",
               "profiles = ( {\n"
               "  name = \"crm\";\n"
               "  entities = [\"a\"];\n"
               "  batchsize = 10;\n"
               "  source = { plugin = \"file\"; };\n"
               "  sink = { plugin = \"pg\"; };\n"
               "} );\n");
    struct sl_err err;
    const char *m = load_fails(&err);
    assert_contains(m, "10-crm.conf:4:");
    assert_contains(m, "profile \"crm\"");
    assert_contains(m, "unknown key 'batchsize'");
}

static void wrong_type_names_key_and_types(void **state)
{
    main_conf_default();
    write_file("conf.d/10-crm.conf",
               "profiles = ( {\n"
               "  name = \"crm\";\n"
               "  entities = [\"a\"];\n"
               "  source = { plugin = \"file\"; };\n"
               "  sink = { plugin = \"pg\"; };\n"
               "  workers = \"2\";\n"
               "} );\n");
    struct sl_err err;
    const char *m = load_fails(&err);
    assert_contains(m, "10-crm.conf:6:");
    assert_contains(m, "'workers' must be an integer, got a string");
}

static void out_of_range_names_the_allowed_range(void **state)
{
    static const char *const cases[][2] = {
        {"retry_count = 21;", "0..20"},      {"retry_interval = 3601;", "0..3600"},
        {"workers = 0;", "1..64"},           {"batch_size = 1000001;", "1..1000000"},
        {"queue_depth = 2000;", "1..1024"},  {"batch_linger_ms = -1;", "0..60000"},
    };
    main_conf_default();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = sl_xasprintf("profiles = ( {\n  name = \"crm\";\n  entities = [\"a\"];\n"
                                  "  source = { plugin = \"file\"; };\n"
                                  "  sink = { plugin = \"pg\"; };\n  %s\n} );\n",
                                  cases[i][0]);
        write_file("conf.d/10-crm.conf", text);
        free(text);
        struct sl_err err;
        const char *m = load_fails(&err);
        assert_contains(m, "10-crm.conf:6:");
        assert_contains(m, "out of range");
        assert_contains(m, cases[i][1]);
    }
}

static void missing_required_keys_are_named(void **state)
{
    static const char *const cases[][2] = {
        {"entities = [\"a\"]; source = { plugin = \"file\"; }; sink = { plugin = \"pg\"; };",
         "missing required key 'name'"},
        {"name = \"crm\"; source = { plugin = \"file\"; }; sink = { plugin = \"pg\"; };",
         "missing required key 'entities'"},
        {"name = \"crm\"; entities = []; source = { plugin = \"file\"; }; sink = { plugin = \"pg\"; };",
         "'entities' is empty"},
        {"name = \"crm\"; entities = [\"a\"]; sink = { plugin = \"pg\"; };",
         "missing required key 'source'"},
        {"name = \"crm\"; entities = [\"a\"]; source = { plugin = \"file\"; };",
         "missing required key 'sink'"},
        {"name = \"crm\"; entities = [\"a\"]; source = { path = \"/x\"; }; sink = { plugin = \"pg\"; };",
         "source: missing required key 'plugin'"},
    };
    main_conf_default();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = sl_xasprintf("\nprofiles = (\n  { %s }\n);\n", cases[i][0]);
        write_file("conf.d/10-crm.conf", text);
        free(text);
        struct sl_err err;
        const char *m = load_fails(&err);
        assert_contains(m, "10-crm.conf:3:");
        assert_contains(m, cases[i][1]);
    }
}

static void duplicate_profile_name_names_both_places(void **state)
{
    main_conf_default();
    write_file("conf.d/10-a.conf", GOOD_PROFILE("crm"));
    write_file("conf.d/20-b.conf", "\n" GOOD_PROFILE("crm"));
    struct sl_err err;
    const char *m = load_fails(&err);
    assert_contains(m, "20-b.conf:2:");
    assert_contains(m, "duplicate profile name \"crm\"");
    assert_contains(m, "10-a.conf:1");
}

static void bad_profile_name_is_refused(void **state)
{
    main_conf_default();
    write_file("conf.d/10-a.conf", GOOD_PROFILE("crm export"));
    struct sl_err err;
    const char *m = load_fails(&err);
    assert_contains(m, "10-a.conf:1:");
    assert_contains(m, "profile name \"crm export\" is invalid");
}

static void dropin_with_global_key_is_refused(void **state)
{
    main_conf_default();
    write_file("conf.d/10-a.conf", "state_dir = \"/x\";\n");
    struct sl_err err;
    const char *m = load_fails(&err);
    assert_contains(m, "10-a.conf:1:");
    assert_contains(m, "unknown key 'state_dir'");
}

static void missing_main_file_says_so(void **state)
{
    struct sl_err err;
    const char *m = load_fails(&err);
    assert_contains(m, "main.conf");
    assert_contains(m, "cannot read");
}

/* ---- successful loads -------------------------------------------------------- */

static void defaults_apply_when_keys_are_absent(void **state)
{
    write_file("main.conf", "plugin_dir = \"plug\";\n" GOOD_PROFILE("crm"));
    struct sl_config cfg;
    struct sl_err err;
    char *main_path = path_of("main.conf");
    assert_int_equal(sl_config_load(main_path, &cfg, &err), 0);
    free(main_path);
    assert_int_equal(cfg.nprofiles, 1);
    const struct sl_profile *p = sl_config_profile(&cfg, "crm");
    assert_non_null(p);
    assert_int_equal(p->retry_count, 12);
    assert_int_equal(p->retry_interval_s, 5);
    assert_int_equal(p->workers, 2);
    assert_int_equal(p->batch_rows, 5000);
    assert_int_equal(p->batch_bytes, 8u << 20);
    assert_int_equal(p->batch_linger_ms, 200);
    assert_int_equal(p->queue_depth, 4);
    assert_null(p->target_schema);
    assert_string_equal(p->table_prefix, "");
    assert_false(p->delete_log);
    assert_true(p->enabled);
    assert_string_equal(p->transport.name, "memory"); /* default transport */
    assert_null(p->transport.section);
    assert_null(p->spill.name);
    assert_string_equal(p->source.name, "file");
    assert_int_equal(p->nentities, 1);
    assert_string_equal(p->entities[0], "accounts");
    /* relative paths are relative to the main file's folder */
    char *want = sl_xasprintf("%s/plug", g_dir);
    assert_string_equal(cfg.plugin_dir, want);
    free(want);
    want = sl_xasprintf("%s/conf.d", g_dir);
    assert_string_equal(cfg.conf_dir, want);
    free(want);
    assert_true(cfg.state_dir[0] == '/');
    want = sl_xasprintf("%s/sluice.sock", cfg.state_dir);
    assert_string_equal(cfg.control_socket, want);
    free(want);
    assert_null(cfg.metrics_listen);
    sl_config_free(&cfg);
}

static void every_profile_key_is_read(void **state)
{
    main_conf_default();
    write_file("conf.d/10-a.conf",
               "profiles = ( { name = \"crm\"; entities = [\"a\", \"b\"];\n"
               "  source = { plugin = \"file\"; }; transport = { plugin = \"memory\"; };\n"
               "  spill = { plugin = \"fs\"; }; sink = { plugin = \"pg\"; };\n"
               "  target_schema = \"dbo\"; table_prefix = \"crm_\"; delete_log = true;\n"
               "  batch_size = 100L; batch_bytes = 65536; batch_linger_ms = 0; workers = 4;\n"
               "  queue_depth = 8; retry_count = 0; retry_interval = 3600; enabled = false; } );\n");
    struct sl_config cfg;
    struct sl_err err;
    char *main_path = path_of("main.conf");
    int rc = sl_config_load(main_path, &cfg, &err);
    free(main_path);
    if (rc != 0)
        fail_msg("%s", err.msg);
    const struct sl_profile *p = &cfg.profiles[0];
    assert_int_equal(p->nentities, 2);
    assert_string_equal(p->entities[1], "b");
    assert_string_equal(p->spill.name, "fs");
    assert_non_null(p->transport.section);
    assert_string_equal(p->target_schema, "dbo");
    assert_string_equal(p->table_prefix, "crm_");
    assert_true(p->delete_log);
    assert_int_equal(p->batch_rows, 100);
    assert_int_equal(p->batch_bytes, 65536);
    assert_int_equal(p->batch_linger_ms, 0);
    assert_int_equal(p->workers, 4);
    assert_int_equal(p->queue_depth, 8);
    assert_int_equal(p->retry_count, 0);
    assert_int_equal(p->retry_interval_s, 3600);
    assert_false(p->enabled);
    sl_config_free(&cfg);
}

static void dropins_are_read_in_name_order(void **state)
{
    main_conf_default();
    write_file("conf.d/20-second.conf", GOOD_PROFILE("second"));
    write_file("conf.d/10-first.conf", GOOD_PROFILE("first"));
    write_file("conf.d/05-ignored.conf.disabled", "this is not read");
    write_file("conf.d/30-third.conf", GOOD_PROFILE("third"));
    struct sl_config cfg;
    struct sl_err err;
    char *main_path = path_of("main.conf");
    int rc = sl_config_load(main_path, &cfg, &err);
    free(main_path);
    if (rc != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg.nprofiles, 3);
    assert_string_equal(cfg.profiles[0].name, "first");
    assert_string_equal(cfg.profiles[1].name, "second");
    assert_string_equal(cfg.profiles[2].name, "third");
    assert_non_null(strstr(cfg.profiles[1].file, "20-second.conf"));
    sl_config_free(&cfg);
}

static void missing_conf_dir_is_fine(void **state)
{
    write_file("main.conf", "conf_dir = \"nowhere\";\n");
    struct sl_config cfg;
    struct sl_err err;
    char *main_path = path_of("main.conf");
    assert_int_equal(sl_config_load(main_path, &cfg, &err), 0);
    free(main_path);
    assert_int_equal(cfg.nprofiles, 0);
    sl_config_free(&cfg);
}

/* ---- plugin sections ------------------------------------------------------- */

struct test_cfg {
    const char *path;
    const char *password;
    int64_t port;
    bool tls;
    double ratio;
    const char *mode;
};

static const struct sluice_config_item test_spec[] = {
    {"path", SLUICE_CFG_STRING, SLUICE_CFG_REQUIRED, NULL, offsetof(struct test_cfg, path), "a folder"},
    {"password", SLUICE_CFG_SECRET, 0, NULL, offsetof(struct test_cfg, password), "a secret"},
    {"port", SLUICE_CFG_INT, 0, "5432", offsetof(struct test_cfg, port), "a port"},
    {"tls", SLUICE_CFG_BOOL, 0, "true", offsetof(struct test_cfg, tls), "use TLS"},
    {"ratio", SLUICE_CFG_FLOAT, 0, "0.5", offsetof(struct test_cfg, ratio), "a ratio"},
    {"mode", SLUICE_CFG_STRING, 0, "fast", offsetof(struct test_cfg, mode), "a mode"},
};

static const struct sluice_plugin test_plugin = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin),
    .kind = SLUICE_KIND_SOURCE,
    .name = "test",
    .config = test_spec,
    .nconfig = sizeof test_spec / sizeof test_spec[0],
    .config_size = sizeof(struct test_cfg),
};

/* Load a profile whose source section holds `keys`, and fill test_cfg. */
static int fill_source(const char *keys, struct test_cfg *out, struct sl_strlist *strings,
                       struct sl_err *err)
{
    main_conf_default();
    char *text = sl_xasprintf("profiles = ( { name = \"crm\"; entities = [\"a\"];\n"
                              "  sink = { plugin = \"pg\"; };\n"
                              "  source = { plugin = \"test\";\n%s\n  };\n} );\n",
                              keys);
    write_file("conf.d/10-crm.conf", text);
    free(text);
    struct sl_config cfg;
    char *main_path = path_of("main.conf");
    int rc = sl_config_load(main_path, &cfg, err);
    free(main_path);
    if (rc != 0)
        fail_msg("%s", err->msg);
    rc = sl_config_fill_plugin(&cfg.profiles[0].source, &test_plugin, out, strings, err);
    sl_config_free(&cfg);
    return rc;
}

static void plugin_section_is_filled_with_values_and_defaults(void **state)
{
    struct test_cfg c;
    struct sl_strlist strings = {0};
    struct sl_err err;
    assert_int_equal(fill_source("path = \"/srv\"; port = 6543; ratio = 2;", &c, &strings, &err), 0);
    assert_string_equal(c.path, "/srv");
    assert_int_equal(c.port, 6543);
    assert_true(c.tls);
    assert_true(c.ratio == 2.0);
    assert_string_equal(c.mode, "fast");
    assert_null(c.password);
    sl_strlist_free(&strings);
}

static void plugin_section_errors_name_file_line_and_key(void **state)
{
    static const char *const cases[][3] = {
        {"path = \"/srv\";\n  colour = \"red\";", "10-crm.conf:5:", "unknown key 'colour'"},
        {"path = \"/srv\";\n  port = \"x\";", "10-crm.conf:5:", "'port' must be an integer"},
        {"path = \"/srv\";\n  tls = 1;", "10-crm.conf:5:", "'tls' must be true or false"},
        {"port = 1;", "10-crm.conf:3:", "missing required key 'path'"},
        {"path = \"/srv\";\n  password = \"a\";\n  password_env = \"B\";", "10-crm.conf:6:",
         "more than once"},
        {"path = \"/srv\";\n  password_env = \"SLUICE_TEST_UNSET_VARIABLE\";", "10-crm.conf:5:",
         "SLUICE_TEST_UNSET_VARIABLE is not set"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct test_cfg c;
        struct sl_strlist strings = {0};
        struct sl_err err;
        assert_int_equal(fill_source(cases[i][0], &c, &strings, &err), -1);
        assert_contains(err.msg, cases[i][1]);
        assert_contains(err.msg, cases[i][2]);
        assert_contains(err.msg, "profile \"crm\": source \"test\"");
        sl_strlist_free(&strings);
    }
}

static void secret_is_read_from_the_first_line_of_a_file(void **state)
{
    write_file("pw.secret", "s3cr3t-from-file\nsecond line\n");
    char *p = path_of("pw.secret");
    chmod(p, 0600);
    char *keys = sl_xasprintf("path = \"/srv\"; password_file = \"%s\";", p);
    struct test_cfg c;
    struct sl_strlist strings = {0};
    struct sl_err err;
    assert_int_equal(fill_source(keys, &c, &strings, &err), 0);
    assert_string_equal(c.password, "s3cr3t-from-file");
    sl_strlist_free(&strings);
    free(keys);
    free(p);
}

static void secret_is_read_from_the_environment(void **state)
{
    setenv("SLUICE_TEST_PASSWORD", "s3cr3t-from-env", 1);
    struct test_cfg c;
    struct sl_strlist strings = {0};
    struct sl_err err;
    assert_int_equal(fill_source("path = \"/srv\"; password_env = \"SLUICE_TEST_PASSWORD\";", &c,
                                 &strings, &err),
                     0);
    assert_string_equal(c.password, "s3cr3t-from-env");
    sl_strlist_free(&strings);
    unsetenv("SLUICE_TEST_PASSWORD");
}

static void secret_never_appears_in_an_error(void **state)
{
    struct test_cfg c;
    struct sl_strlist strings = {0};
    struct sl_err err;
    assert_int_equal(fill_source("path = \"/srv\"; password = \"hunter2\";\n  port = \"no\";", &c,
                                 &strings, &err),
                     -1);
    assert_null(strstr(err.msg, "hunter2"));
    sl_strlist_free(&strings);
    assert_int_equal(fill_source("path = \"/srv\"; password = \"hunter2\";\n  password_file = \"/x\";",
                                 &c, &strings, &err),
                     -1);
    assert_null(strstr(err.msg, "hunter2"));
    sl_strlist_free(&strings);
}

static void unreadable_secret_file_names_the_file(void **state)
{
    struct test_cfg c;
    struct sl_strlist strings = {0};
    struct sl_err err;
    assert_int_equal(fill_source("path = \"/srv\";\n  password_file = \"/nonexistent/pw\";", &c,
                                 &strings, &err),
                     -1);
    assert_contains(err.msg, "10-crm.conf:5:");
    assert_contains(err.msg, "/nonexistent/pw");
    sl_strlist_free(&strings);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(syntax_error_names_file_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_main_key_names_file_line_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_profile_key_names_file_line_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_type_names_key_and_types, setup, teardown),
        cmocka_unit_test_setup_teardown(out_of_range_names_the_allowed_range, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_required_keys_are_named, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_profile_name_names_both_places, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_profile_name_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(dropin_with_global_key_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_main_file_says_so, setup, teardown),
        cmocka_unit_test_setup_teardown(defaults_apply_when_keys_are_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(every_profile_key_is_read, setup, teardown),
        cmocka_unit_test_setup_teardown(dropins_are_read_in_name_order, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_conf_dir_is_fine, setup, teardown),
        cmocka_unit_test_setup_teardown(plugin_section_is_filled_with_values_and_defaults, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(plugin_section_errors_name_file_line_and_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(secret_is_read_from_the_first_line_of_a_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(secret_is_read_from_the_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(secret_never_appears_in_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(unreadable_secret_file_names_the_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
