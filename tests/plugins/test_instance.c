/*
 * test_instance.c - a plugin instance through the real loader and host API:
 * config filled from the profile's section, init errors carry the profile
 * and plugin, entity_declare copies and versions schemas, and the host's
 * answers outside a running pipeline are safe.
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
#include "instance.h"
#include "loader.h"
#include "util.h"

static char g_dir[256];
static struct sl_config g_cfg;
static struct sl_plugin g_plugin;

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in: %s", needle, hay);
}

/* A main file with one profile whose source section is `keys`. */
static void load_profile(const char *keys)
{
    char *path = sl_xasprintf("%s/main.conf", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "conf_dir = \"none\";\n"
               "profiles = ( { name = \"crm\"; entities = [\"things\"];\n"
               "  source = { plugin = \"good\"; %s };\n"
               "  sink = { plugin = \"pg\"; }; workers = 3; batch_size = 7; } );\n",
            keys);
    fclose(f);
    struct sl_err err;
    if (sl_config_load(path, &g_cfg, &err) != 0)
        fail_msg("%s", err.msg);
    free(path);
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("SLUICE_TEST_TMP");
    if (base)
        sl_mkdir_p(base, 0755);
    snprintf(g_dir, sizeof g_dir, "%s/instXXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(g_dir));
    struct sl_err err;
    if (sl_plugin_load(SL_TEST_PLUGIN_DIR, SLUICE_KIND_SOURCE, "good", &g_plugin, &err) != 0) {
        /* the build folder may be group-writable (umask 002): copy it */
        char *cmd = sl_xasprintf("install -m 0755 '%s/source-good.so' '%s/'",
                                 SL_TEST_PLUGIN_DIR, g_dir);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        chmod(g_dir, 0755);
        if (sl_plugin_load(g_dir, SLUICE_KIND_SOURCE, "good", &g_plugin, &err) != 0)
            fail_msg("%s", err.msg);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_plugin_unload(&g_plugin);
    sl_config_free(&g_cfg);
    char *cmd = sl_xasprintf("rm -rf '%s'", g_dir);
    int rc = system(cmd);
    (void)rc;
    free(cmd);
    return 0;
}

static void init_fills_config_and_passes_profile_settings(void **state)
{
    setenv("SLUICE_TEST_TOKEN", "tok", 1);
    load_profile("columns = 3; token_env = \"SLUICE_TEST_TOKEN\";");
    struct sl_instance in;
    struct sl_err err;
    const struct sl_profile *p = &g_cfg.profiles[0];
    if (sl_instance_init(&in, &g_plugin, p, &p->source, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    assert_non_null(in.inst);
    assert_string_equal(in.ctx.label, "profile \"crm\": source good");
    assert_int_equal(in.ctx.batch_rows, 7);
    const struct {
        int64_t columns;
        bool fail_init;
        const char *token;
    } *cfg = in.config;
    assert_int_equal(cfg->columns, 3);
    assert_false(cfg->fail_init);
    assert_string_equal(cfg->token, "tok");
    sl_instance_destroy(&in);
    sl_instance_destroy(&in); /* idempotent */
    unsetenv("SLUICE_TEST_TOKEN");
}

static void init_failure_names_profile_plugin_and_reason(void **state)
{
    load_profile("fail_init = true;");
    struct sl_instance in;
    struct sl_err err;
    const struct sl_profile *p = &g_cfg.profiles[0];
    assert_int_equal(sl_instance_init(&in, &g_plugin, p, &p->source, NULL, &err), -1);
    assert_string_equal(err.msg, "profile \"crm\": source good: init: fail_init is set "
                                 "(profile crm, 1 entities)");
    sl_instance_destroy(&in); /* safe after a failed init */
}

static void config_error_in_section_is_reported_with_file_line(void **state)
{
    load_profile("columns = \"three\";");
    struct sl_instance in;
    struct sl_err err;
    const struct sl_profile *p = &g_cfg.profiles[0];
    assert_int_equal(sl_instance_init(&in, &g_plugin, p, &p->source, NULL, &err), -1);
    assert_contains(err.msg, "main.conf:3:");
    assert_contains(err.msg, "'columns' must be an integer");
}

static void entity_declare_copies_and_versions_schemas(void **state)
{
    load_profile("");
    struct sl_instance in;
    struct sl_err err;
    const struct sl_profile *p = &g_cfg.profiles[0];
    if (sl_instance_init(&in, &g_plugin, p, &p->source, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    const struct sluice_source_ops *ops = sl_source_ops(&in);

    assert_int_equal(ops->describe(in.inst), SLUICE_OK);
    assert_int_equal(in.ctx.nentities, 1);
    const struct sluice_entity *v1 = in.ctx.entities[0];
    assert_string_equal(v1->name, "things");
    assert_int_equal(v1->ncolumns, 2);
    assert_int_equal(v1->schema_version, 1);

    /* the same schema again: the same copy */
    assert_int_equal(ops->describe(in.inst), SLUICE_OK);
    assert_int_equal(in.ctx.nentities, 1);
    assert_ptr_equal(in.ctx.entities[0], v1);

    sl_instance_destroy(&in);
}

static void changed_schema_keeps_id_and_bumps_version(void **state)
{
    load_profile("");
    struct sl_instance in;
    struct sl_err err;
    const struct sl_profile *p = &g_cfg.profiles[0];
    if (sl_instance_init(&in, &g_plugin, p, &p->source, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    const struct sluice_host *host = sl_host_api();
    struct sluice_column cols[2] = {
        {.name = "id", .type = SLUICE_T_INT64, .flags = SLUICE_COL_KEY},
        {.name = "label", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE},
    };
    uint32_t key = 0;
    struct sluice_entity e = {.ns = "s", .name = "t", .ncolumns = 1, .columns = cols,
                              .nkeys = 1, .key_columns = &key};
    const struct sluice_entity *a = host->entity_declare(&in.ctx, &e);
    assert_non_null(a);
    e.ncolumns = 2;
    const struct sluice_entity *b = host->entity_declare(&in.ctx, &e);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal(a->id, b->id);
    assert_int_equal(b->schema_version, a->schema_version + 1);
    assert_int_equal(a->ncolumns, 1); /* the old copy is untouched */
    assert_int_equal(in.ctx.nentities, 1);

    /* a malformed description: NULL, error text set */
    struct sluice_entity bad = {.ns = "", .name = "", .ncolumns = 0};
    assert_null(host->entity_declare(&in.ctx, &bad));
    assert_true(in.ctx.error[0] != '\0');
    sl_instance_destroy(&in);
}

static void host_outside_a_run_stops_and_refuses_emit(void **state)
{
    load_profile("");
    struct sl_instance in;
    struct sl_err err;
    const struct sl_profile *p = &g_cfg.profiles[0];
    if (sl_instance_init(&in, &g_plugin, p, &p->source, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    const struct sluice_host *host = sl_host_api();
    assert_int_equal(host->struct_size, sizeof(struct sluice_host));
    assert_int_equal(host->abi_major, SLUICE_ABI_MAJOR);
    assert_true(host->stopping(&in.ctx));
    assert_int_equal(host->wait(&in.ctx, 1), SLUICE_STOPPED);

    struct sluice_batch *b = host->batch_new(&in.ctx);
    assert_non_null(b);
    assert_int_equal(host->emit(&in.ctx, b), SLUICE_ERR); /* and b is freed */
    assert_contains(in.ctx.error, "not running");

    sl_instance_error(&in, "run", &err);
    assert_contains(err.msg, "profile \"crm\": source good: run: emit: not running");
    assert_int_equal(in.ctx.error[0], '\0');
    sl_instance_destroy(&in);
}

static void host_batches_fill_up_to_the_profile_batch_size(void **state)
{
    load_profile("");
    struct sl_instance in;
    struct sl_err err;
    const struct sl_profile *p = &g_cfg.profiles[0];
    if (sl_instance_init(&in, &g_plugin, p, &p->source, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    const struct sluice_host *host = sl_host_api();
    assert_int_equal(sl_source_ops(&in)->describe(in.inst), SLUICE_OK);
    const struct sluice_entity *e = in.ctx.entities[0];
    struct sluice_batch *b = host->batch_new(&in.ctx);
    for (int i = 0; i < 7; i++) {
        assert_false(host->batch_full(b));
        struct sluice_event *ev = host->batch_append(b, e, SLUICE_OP_READ);
        assert_non_null(ev);
        sluice_value_set_int(&ev->values[0], i);
        assert_int_equal(host->value_parse(&in.ctx, b, &e->columns[1], "hello", 5,
                                           &ev->values[1]),
                         SLUICE_OK);
    }
    assert_true(host->batch_full(b)); /* batch_size = 7 */
    assert_int_equal(b->nevents, 7);
    char text[16];
    assert_int_equal(host->value_format(&e->columns[1], &b->events[3].values[1], text,
                                        sizeof text),
                     5);
    assert_string_equal(text, "hello");
    host->batch_discard(b);
    sl_instance_destroy(&in);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(init_fills_config_and_passes_profile_settings),
        T(init_failure_names_profile_plugin_and_reason),
        T(config_error_in_section_is_reported_with_file_line),
        T(entity_declare_copies_and_versions_schemas),
        T(changed_schema_keeps_id_and_bumps_version),
        T(host_outside_a_run_stops_and_refuses_emit),
        T(host_batches_fill_up_to_the_profile_batch_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
