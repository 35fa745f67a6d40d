/*
 * test_spill_fs.c - the spill-fs plugin (plugins/spill-fs) through the real
 * loader and instance code: blobs round-trip, are never plaintext on disk,
 * live 0600 in a 0700 folder, a flipped byte is an error naming the blob,
 * rotated keys still read old blobs, a missing key is explained, partial
 * writes left by a crash are removed at start.
 *
 * RSA keys are made by the test with the openssl command.
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
static struct sl_plugin g_plugin;
static bool g_loaded;

#define MARKER "PLAINTEXT-MARKER-7f3a9c"

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in: %s", needle, hay);
}

static void sh(const char *cmd)
{
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("SLUICE_TEST_TMP");
    if (base)
        sl_mkdir_p(base, 0755);
    snprintf(g_dir, sizeof g_dir, "%s/spillXXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(g_dir));
    struct sl_err err;
    const char *dir = sl_plugin_dir(NULL);
    if (sl_plugin_load(dir, SLUICE_KIND_SPILL, "fs", &g_plugin, &err) != 0) {
        /* the build folder may be group-writable (umask 002): copy it */
        char *cmd = sl_xasprintf("mkdir -p '%s/plugins' && install -m 0755 '%s/spill-fs.so' "
                                 "'%s/plugins/' && chmod 0755 '%s/plugins'",
                                 g_dir, dir, g_dir, g_dir);
        sh(cmd);
        free(cmd);
        char *pd = sl_xasprintf("%s/plugins", g_dir);
        int rc = sl_plugin_load(pd, SLUICE_KIND_SPILL, "fs", &g_plugin, &err);
        free(pd);
        if (rc != 0)
            fail_msg("%s", err.msg);
    }
    g_loaded = true;
    char *cmd = sl_xasprintf(
        "cd '%s' && for k in a b; do openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
        "-out $k.key 2>/dev/null && openssl pkey -in $k.key -pubout -out $k.pub; done",
        g_dir);
    sh(cmd);
    free(cmd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_loaded)
        sl_plugin_unload(&g_plugin);
    char *cmd = sl_xasprintf("rm -rf '%s'", g_dir);
    int rc = system(cmd);
    (void)rc;
    free(cmd);
    return 0;
}

/* A spill instance of profile "crm" with the given keys of its section. */
struct fixture {
    struct sl_config cfg;
    struct sl_instance in;
    const struct sluice_spill_ops *ops;
    char state[300];
};

static int open_spill(struct fixture *f, const char *keys, struct sl_err *err)
{
    memset(f, 0, sizeof *f);
    char *path = sl_xasprintf("%s/main.conf", g_dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "conf_dir = \"none\";\n"
                "profiles = ( { name = \"crm\"; entities = [\"things\"];\n"
                "  source = { plugin = \"file\"; }; sink = { plugin = \"pg\"; };\n"
                "  spill = { plugin = \"fs\"; %s }; } );\n",
            keys);
    fclose(fp);
    if (sl_config_load(path, &f->cfg, err) != 0)
        fail_msg("%s", err->msg);
    free(path);
    snprintf(f->state, sizeof f->state, "%s/state", g_dir);
    sl_mkdir_p(f->state, 0700);
    struct sl_instance_opts io = {.state_dir = f->state};
    const struct sl_profile *p = &f->cfg.profiles[0];
    if (sl_instance_init(&f->in, &g_plugin, p, &p->spill, &io, err) != 0) {
        sl_config_free(&f->cfg);
        return -1;
    }
    if (sl_instance_start(&f->in, err) != SLUICE_OK) {
        sl_instance_destroy(&f->in);
        sl_config_free(&f->cfg);
        return -1;
    }
    f->ops = sl_spill_ops(&f->in);
    return 0;
}

static void close_spill(struct fixture *f)
{
    sl_instance_stop(&f->in);
    sl_instance_destroy(&f->in);
    sl_config_free(&f->cfg);
}

static char *keys_conf(const char *pub, const char *privs)
{
    return sl_xasprintf("path = \"%s/blobs\"; public_key = \"%s/%s\"; private_keys = \"%s\";",
                        g_dir, g_dir, pub, privs);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct sl_buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        sl_buf_append(&b, tmp, n);
    fclose(f);
    *len = b.len;
    return b.data;
}

static void put_get_roundtrip_is_encrypted_0600_in_0700(void **state)
{
    (void)state;
    struct fixture f;
    struct sl_err err;
    char *privs = sl_xasprintf("%s/a.key", g_dir);
    char *keys = keys_conf("a.pub", privs);
    if (open_spill(&f, keys, &err) != 0)
        fail_msg("%s", err.msg);
    size_t len = 3u * 1024u * 1024u + 17u;
    char *data = sl_xmalloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 131u);
    memcpy(data + 1000, MARKER, strlen(MARKER));
    memcpy(data + len - 100, MARKER, strlen(MARKER));
    char id[SLUICE_SPILL_ID_MAX];
    assert_int_equal(f.ops->put(f.in.inst, data, len, id), SLUICE_OK);
    assert_true(strlen(id) > 0);

    char *blob = sl_xasprintf("%s/blobs/crm/%s.blob", g_dir, id);
    char *folder = sl_xasprintf("%s/blobs/crm", g_dir);
    struct stat st;
    assert_int_equal(stat(blob, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(folder, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    size_t flen;
    char *file = read_file(blob, &flen);
    assert_null(memmem(file, flen, MARKER, strlen(MARKER)));
    free(file);

    void *got = NULL;
    size_t glen = 0;
    if (f.ops->get(f.in.inst, id, &got, &glen) != SLUICE_OK)
        fail_msg("get: %s", f.in.ctx.error);
    assert_int_equal(glen, len);
    assert_memory_equal(got, data, len);
    f.ops->release(f.in.inst, got, glen);

    /* an empty blob is fine too */
    char id0[SLUICE_SPILL_ID_MAX];
    assert_int_equal(f.ops->put(f.in.inst, "", 0, id0), SLUICE_OK);
    assert_int_equal(f.ops->get(f.in.inst, id0, &got, &glen), SLUICE_OK);
    assert_int_equal(glen, 0);
    f.ops->release(f.in.inst, got, glen);
    assert_int_equal(f.ops->del(f.in.inst, id0), SLUICE_OK);

    assert_int_equal(f.ops->del(f.in.inst, id), SLUICE_OK);
    assert_int_equal(f.ops->del(f.in.inst, id), SLUICE_OK); /* missing is fine */
    assert_int_equal(f.ops->get(f.in.inst, id, &got, &glen), SLUICE_NOT_FOUND);
    close_spill(&f);
    free(blob);
    free(folder);
    free(data);
    free(keys);
    free(privs);
}

static int count_cb(void *arg, const char *id)
{
    (void)id;
    (*(int *)arg)++;
    return 0;
}

static void flipped_byte_is_an_error_naming_the_blob(void **state)
{
    (void)state;
    struct fixture f;
    struct sl_err err;
    char *privs = sl_xasprintf("%s/a.key", g_dir);
    char *keys = keys_conf("a.pub", privs);
    if (open_spill(&f, keys, &err) != 0)
        fail_msg("%s", err.msg);
    const char msg[] = "batch payload " MARKER " with some more bytes";
    char id[SLUICE_SPILL_ID_MAX];
    assert_int_equal(f.ops->put(f.in.inst, msg, sizeof msg, id), SLUICE_OK);
    char *blob = sl_xasprintf("%s/blobs/crm/%s.blob", g_dir, id);
    struct stat st;
    assert_int_equal(stat(blob, &st), 0);
    /* flip one byte of the ciphertext, then one of the header in another blob */
    FILE *fp = fopen(blob, "r+b");
    assert_non_null(fp);
    fseek(fp, st.st_size - 30, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, st.st_size - 30, SEEK_SET);
    fputc(c ^ 0x01, fp);
    fclose(fp);
    void *got = NULL;
    size_t glen = 0;
    assert_int_equal(f.ops->get(f.in.inst, id, &got, &glen), SLUICE_ERR);
    assert_null(got);
    assert_contains(f.in.ctx.error, id);
    assert_contains(f.in.ctx.error, "failed authentication");

    char id2[SLUICE_SPILL_ID_MAX];
    assert_int_equal(f.ops->put(f.in.inst, msg, sizeof msg, id2), SLUICE_OK);
    char *blob2 = sl_xasprintf("%s/blobs/crm/%s.blob", g_dir, id2);
    fp = fopen(blob2, "r+b");
    assert_non_null(fp);
    fseek(fp, 8 + 32 + 2 + 256 + 3, SEEK_SET); /* inside the nonce */
    c = fgetc(fp);
    fseek(fp, 8 + 32 + 2 + 256 + 3, SEEK_SET);
    fputc(c ^ 0x80, fp);
    fclose(fp);
    assert_int_equal(f.ops->get(f.in.inst, id2, &got, &glen), SLUICE_ERR);
    assert_contains(f.in.ctx.error, id2);

    int n = 0;
    assert_int_equal(f.ops->list(f.in.inst, count_cb, &n), SLUICE_OK);
    assert_int_equal(n, 2);
    f.ops->del(f.in.inst, id);
    f.ops->del(f.in.inst, id2);
    n = 0;
    f.ops->list(f.in.inst, count_cb, &n);
    assert_int_equal(n, 0);
    close_spill(&f);
    free(blob);
    free(blob2);
    free(keys);
    free(privs);
}

static void rotated_public_key_still_reads_old_blobs(void **state)
{
    (void)state;
    struct fixture f;
    struct sl_err err;
    char *privs = sl_xasprintf("%s/a.key", g_dir);
    char *keys = keys_conf("a.pub", privs);
    if (open_spill(&f, keys, &err) != 0)
        fail_msg("%s", err.msg);
    const char msg[] = "written under key a";
    char id[SLUICE_SPILL_ID_MAX];
    assert_int_equal(f.ops->put(f.in.inst, msg, sizeof msg, id), SLUICE_OK);
    close_spill(&f);
    free(keys);
    free(privs);

    /* rotated: new blobs for b, a kept for reading */
    privs = sl_xasprintf("%s/b.key, %s/a.key", g_dir, g_dir);
    keys = keys_conf("b.pub", privs);
    if (open_spill(&f, keys, &err) != 0)
        fail_msg("%s", err.msg);
    void *got = NULL;
    size_t glen = 0;
    assert_int_equal(f.ops->get(f.in.inst, id, &got, &glen), SLUICE_OK);
    assert_memory_equal(got, msg, sizeof msg);
    f.ops->release(f.in.inst, got, glen);
    close_spill(&f);
    free(keys);
    free(privs);

    /* a dropped: the old blob cannot be read, and the error says why */
    privs = sl_xasprintf("%s/b.key", g_dir);
    keys = keys_conf("b.pub", privs);
    if (open_spill(&f, keys, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(f.ops->get(f.in.inst, id, &got, &glen), SLUICE_ERR);
    assert_contains(f.in.ctx.error, "none of private_keys matches");
    assert_contains(f.in.ctx.error, id);
    assert_int_equal(f.ops->del(f.in.inst, id), SLUICE_OK);
    close_spill(&f);
    free(keys);
    free(privs);
}

static void key_mistakes_are_refused_at_init(void **state)
{
    (void)state;
    struct fixture f;
    struct sl_err err;
    char *keys = sl_xasprintf("public_key = \"%s/a.pub\";", g_dir);
    assert_int_equal(open_spill(&f, keys, &err), -1);
    assert_contains(err.msg, "spill fs");
    assert_contains(err.msg, "private_keys is not");
    free(keys);
    keys = sl_xasprintf("public_key = \"%s/a.pub\"; private_keys = \"%s/b.key\";", g_dir,
                        g_dir);
    assert_int_equal(open_spill(&f, keys, &err), -1);
    assert_contains(err.msg, "none of private_keys matches public_key");
    free(keys);
    keys = sl_xasprintf("public_key = \"%s/a.key.missing\"; private_keys = \"%s/a.key\";",
                        g_dir, g_dir);
    assert_int_equal(open_spill(&f, keys, &err), -1);
    assert_contains(err.msg, "a.key.missing: cannot open");
    free(keys);
    assert_int_equal(open_spill(&f, "path = \"relative\";", &err), -1);
    assert_contains(err.msg, "must be absolute");
}

static void generated_key_pair_is_private_and_reused(void **state)
{
    (void)state;
    struct fixture f;
    struct sl_err err;
    if (open_spill(&f, "", &err) != 0)
        fail_msg("%s", err.msg);
    char *key = sl_xasprintf("%s/spill-key.pem", f.state);
    struct stat st;
    /* made by the first put, not at start */
    assert_int_not_equal(stat(key, &st), 0);
    const char msg[] = "generated key " MARKER;
    char id[SLUICE_SPILL_ID_MAX];
    assert_int_equal(f.ops->put(f.in.inst, msg, sizeof msg, id), SLUICE_OK);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    close_spill(&f);

    /* a partial write left by a crash goes at start; the blob stays readable */
    char *tmp = sl_xasprintf("%s/spill/.tmp-deadbeef", f.state);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fputs("partial", fp);
    fclose(fp);
    if (open_spill(&f, "", &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_not_equal(access(tmp, F_OK), 0);
    void *got = NULL;
    size_t glen = 0;
    assert_int_equal(f.ops->get(f.in.inst, id, &got, &glen), SLUICE_OK);
    assert_memory_equal(got, msg, sizeof msg);
    f.ops->release(f.in.inst, got, glen);
    f.ops->del(f.in.inst, id);
    close_spill(&f);
    free(tmp);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_get_roundtrip_is_encrypted_0600_in_0700),
        cmocka_unit_test(flipped_byte_is_an_error_naming_the_blob),
        cmocka_unit_test(rotated_public_key_still_reads_old_blobs),
        cmocka_unit_test(key_mistakes_are_refused_at_init),
        cmocka_unit_test(generated_key_pair_is_private_and_reused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
