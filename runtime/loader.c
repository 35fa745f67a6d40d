/*
 * loader.c - finding, checking and loading plugin .so files.
 *
 * Every refusal names the file and the reason. The file and its folder are
 * checked with stat() before dlopen(), because dlopen() already runs the
 * plugin's constructors: a file others can write must never get that far.
 */
#include "loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#ifndef SLUICE_BUILD_PLUGIN_DIR
#define SLUICE_BUILD_PLUGIN_DIR ""
#endif
#ifndef SLUICE_BUILD_BIN_DIR
#define SLUICE_BUILD_BIN_DIR ""
#endif
#ifndef SLUICE_INSTALL_PLUGIN_DIR
#define SLUICE_INSTALL_PLUGIN_DIR "/usr/local/lib/sluice/plugins"
#endif

/* Sizes of the ABI 1.0 structs: a plugin may be newer (larger), never smaller. */
#define SL_PLUGIN_SIZE_1_0 (offsetof(struct sluice_plugin, ops) + sizeof(const void *))
#define SL_SOURCE_OPS_SIZE_1_0 (offsetof(struct sluice_source_ops, drop) + sizeof(void *))
#define SL_TRANSPORT_OPS_SIZE_1_0 (offsetof(struct sluice_transport_ops, depth) + sizeof(void *))
#define SL_SPILL_OPS_SIZE_1_0 (offsetof(struct sluice_spill_ops, list) + sizeof(void *))
#define SL_SINK_OPS_SIZE_1_0 (offsetof(struct sluice_sink_ops, drop_metadata) + sizeof(void *))

static const char *const kind_names[] = {NULL, "source", "transport", "spill", "sink"};

const char *sl_kind_name(int kind)
{
    return (kind >= SLUICE_KIND_SOURCE && kind <= SLUICE_KIND_SINK) ? kind_names[kind] : NULL;
}

int sl_kind_parse(const char *name)
{
    for (int k = SLUICE_KIND_SOURCE; k <= SLUICE_KIND_SINK; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return k;
    return -1;
}

static int SLUICE_PRINTF(3, 4) refuse(struct sl_err *err, const char *path, const char *fmt, ...)
{
    int n = snprintf(err->msg, sizeof err->msg, "plugin %s refused: ", path);
    if (n < 0 || (size_t)n >= sizeof err->msg)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof err->msg - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- the plugin folder ---------------------------------------------------- */

static bool is_dir(const char *p)
{
    struct stat st;
    return p && *p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The running binary is part of this build tree: its plugins are the ones
 * built with it, not whatever an older install left in <libdir>. */
static bool running_from_build_tree(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || !*SLUICE_BUILD_PLUGIN_DIR)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = '\0';
    if (*SLUICE_BUILD_BIN_DIR && strcmp(exe, SLUICE_BUILD_BIN_DIR) == 0)
        return true;
    /* any program of the build tree (unit tests, tools): the build root is the
     * folder holding plugins/ */
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s", SLUICE_BUILD_PLUGIN_DIR);
    char *s = strrchr(root, '/');
    if (!s || s == root)
        return false;
    *s = '\0';
    size_t rl = strlen(root);
    return strncmp(exe, root, rl) == 0 && (exe[rl] == '/' || exe[rl] == '\0') &&
           is_dir(SLUICE_BUILD_PLUGIN_DIR);
}

const char *sl_plugin_dir(const struct sl_config *cfg)
{
    static char dir[PATH_MAX];
    const char *env = getenv("SLUICE_PLUGIN_PATH");
    const char *pick;
    if (env && *env)
        pick = env;
    else if (cfg && cfg->plugin_dir && *cfg->plugin_dir)
        pick = cfg->plugin_dir;
    else if (running_from_build_tree())
        pick = SLUICE_BUILD_PLUGIN_DIR;
    else
        pick = SLUICE_INSTALL_PLUGIN_DIR;
    snprintf(dir, sizeof dir, "%s", pick);
    return dir;
}

/* ---- checks --------------------------------------------------------------- */

static int check_owner_mode(const char *path, const char *what, struct sl_err *err,
                            const char *plugin_path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return refuse(err, plugin_path, "cannot stat %s %s: %s", what, path, strerror(errno));
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return refuse(err, plugin_path,
                      "the %s %s is writable by %s (mode %04o): anyone who can write it could "
                      "run code inside sluice; run `chmod go-w %s`",
                      what, path, (st.st_mode & S_IWOTH) ? "others" : "its group",
                      (unsigned)(st.st_mode & 07777), path);
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return refuse(err, plugin_path,
                      "the %s %s is owned by uid %u, neither root nor the user sluice runs as "
                      "(uid %u); run `chown root %s`",
                      what, path, (unsigned)st.st_uid, (unsigned)geteuid(), path);
    return 0;
}

static int check_ops(const char *path, const struct sluice_plugin *d, struct sl_err *err)
{
    const char *kind = sl_kind_name((int)d->kind);
    uint32_t have;
    memcpy(&have, d->ops, sizeof have); /* every ops table starts with its size */
    size_t need = 0;
    const char *missing = NULL;
    switch (d->kind) {
    case SLUICE_KIND_SOURCE: {
        need = SL_SOURCE_OPS_SIZE_1_0;
        const struct sluice_source_ops *o = d->ops;
        if (have >= need)
            missing = !o->describe ? "describe" : !o->run ? "run" : NULL;
        break;
    }
    case SLUICE_KIND_TRANSPORT: {
        need = SL_TRANSPORT_OPS_SIZE_1_0;
        const struct sluice_transport_ops *o = d->ops;
        if (have >= need)
            missing = !o->max_message_size ? "max_message_size"
                      : !o->publish        ? "publish"
                      : !o->consume        ? "consume"
                      : !o->ack            ? "ack"
                      : !o->nack           ? "nack"
                                           : NULL;
        break;
    }
    case SLUICE_KIND_SPILL: {
        need = SL_SPILL_OPS_SIZE_1_0;
        const struct sluice_spill_ops *o = d->ops;
        if (have >= need)
            missing = !o->put       ? "put"
                      : !o->get     ? "get"
                      : !o->release ? "release"
                      : !o->del     ? "del"
                      : !o->list    ? "list"
                                    : NULL;
        break;
    }
    case SLUICE_KIND_SINK: {
        need = SL_SINK_OPS_SIZE_1_0;
        const struct sluice_sink_ops *o = d->ops;
        if (have >= need)
            missing = !o->prepare ? "prepare"
                      : !o->apply ? "apply"
                      : !o->checkpoint_list ? "checkpoint_list"
                                            : NULL;
        break;
    }
    }
    if (have < need)
        return refuse(err, path, "%s ops struct_size %u is smaller than ABI %d.0's %zu; rebuild "
                                 "the plugin against this SDK", kind, have, SLUICE_ABI_MAJOR, need);
    if (missing)
        return refuse(err, path, "%s ops '%s' is NULL, but it is required", kind, missing);
    return 0;
}

static int check_descriptor(const char *path, const struct sluice_plugin *d, int kind,
                            const char *name, struct sl_err *err)
{
    if (d->abi_major != SLUICE_ABI_MAJOR)
        return refuse(err, path, "built for ABI %u.%u, but this sluice speaks ABI %d.%d (major "
                                 "versions differ); rebuild the plugin against this SDK",
                      d->abi_major, d->abi_minor, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
    if (d->struct_size < SL_PLUGIN_SIZE_1_0)
        return refuse(err, path, "descriptor struct_size %u is smaller than ABI %d.0's %zu; "
                                 "rebuild the plugin against this SDK",
                      d->struct_size, SLUICE_ABI_MAJOR, SL_PLUGIN_SIZE_1_0);
    if (!sl_kind_name((int)d->kind))
        return refuse(err, path, "unknown plugin kind %u", d->kind);
    if ((int)d->kind != kind)
        return refuse(err, path, "the descriptor says kind '%s' but the file name says '%s'; "
                                 "name the file %s-<name>.so",
                      sl_kind_name((int)d->kind), sl_kind_name(kind), sl_kind_name((int)d->kind));
    if (!d->name || strcmp(d->name, name) != 0)
        return refuse(err, path, "the descriptor's name \"%s\" does not match the file name "
                                 "(%s-%s.so)", d->name ? d->name : "(null)", sl_kind_name(kind), name);
    const char *cb = !d->init ? "init" : !d->start ? "start" : !d->stop ? "stop"
                     : !d->destroy ? "destroy" : NULL;
    if (cb)
        return refuse(err, path, "required callback '%s' is NULL", cb);
    if (!d->ops)
        return refuse(err, path, "the ops table is NULL, but it is required");
    if (d->nconfig && !d->config)
        return refuse(err, path, "nconfig is %zu but the config spec is NULL", d->nconfig);
    for (size_t i = 0; i < d->nconfig; i++) {
        const struct sluice_config_item *it = &d->config[i];
        if (!it->key || it->type < SLUICE_CFG_STRING || it->type > SLUICE_CFG_FLOAT)
            return refuse(err, path, "config spec item %zu ('%s') has no key or an unknown "
                                     "type %u", i, it->key ? it->key : "?", it->type);
    }
    return check_ops(path, d, err);
}

/* Split "<dir>/sink-pg.so" into kind and name. */
static int parse_file_name(const char *path, int *kind, char *name, size_t cap,
                           struct sl_err *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    const char *dash = strchr(base, '-');
    if (len < 4 || strcmp(base + len - 3, ".so") != 0 || !dash)
        return refuse(err, path, "the file name must be <kind>-<name>.so (e.g. sink-pg.so)");
    char kindbuf[16];
    size_t kl = (size_t)(dash - base);
    if (kl >= sizeof kindbuf)
        kl = sizeof kindbuf - 1;
    memcpy(kindbuf, base, kl);
    kindbuf[kl] = '\0';
    *kind = sl_kind_parse(kindbuf);
    if (*kind < 0)
        return refuse(err, path, "unknown plugin kind '%s' in the file name (expected source, "
                                 "transport, spill or sink)", kindbuf);
    size_t nl = len - 3 - kl - 1;
    if (nl == 0 || nl >= cap)
        return refuse(err, path, "the file name must be <kind>-<name>.so (e.g. sink-pg.so)");
    memcpy(name, dash + 1, nl);
    name[nl] = '\0';
    return 0;
}

int sl_plugin_load_file(const char *path, struct sl_plugin *out, struct sl_err *err)
{
    char name[128];
    char *dir = NULL;
    char *dlpath = NULL;
    void *dl = NULL;
    int kind = 0;
    int rc = -1;

    memset(out, 0, sizeof *out);
    err->msg[0] = '\0';
    if (parse_file_name(path, &kind, name, sizeof name, err) != 0)
        goto out;

    struct stat st;
    if (stat(path, &st) != 0) {
        refuse(err, path, "%s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        refuse(err, path, "not a regular file");
        goto out;
    }
    dir = sl_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    if (check_owner_mode(path, "file", err, path) != 0 ||
        check_owner_mode(dir, "folder", err, path) != 0)
        goto out;

    /* without a slash dlopen() would search LD_LIBRARY_PATH instead */
    dlpath = strchr(path, '/') ? sl_xstrdup(path) : sl_xasprintf("./%s", path);
    /* Plugins stay mapped until the process exits (as PostgreSQL never
     * unloads a module): libraries they pull in keep global state that does
     * not survive dlclose() (krb5's error tables under libpq, unixODBC's
     * driver cache). A changed plugin file takes effect at restart. */
    dl = dlopen(dlpath, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!dl) {
        const char *why = dlerror();
        refuse(err, path, "cannot load it: %s; run `ldd %s` to find a missing library or symbol",
               why ? why : "unknown error", path);
        goto out;
    }
    dlerror();
    void *sym = dlsym(dl, SLUICE_ENTRY_SYMBOL);
    if (!sym) {
        const char *why = dlerror();
        refuse(err, path, "no entry function '%s' (%s); a plugin must export it with "
                          "SLUICE_EXPORT", SLUICE_ENTRY_SYMBOL, why ? why : "symbol is NULL");
        goto out;
    }
    sluice_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object pointer -> function pointer (POSIX) */
    const struct sluice_plugin *desc = entry();
    if (!desc) {
        refuse(err, path, "the entry function '%s' returned NULL", SLUICE_ENTRY_SYMBOL);
        goto out;
    }
    if (check_descriptor(path, desc, kind, name, err) != 0)
        goto out;

    out->path = sl_xstrdup(path);
    out->dl = dl;
    out->desc = desc;
    dl = NULL;
    rc = 0;
out:
    if (dl)
        dlclose(dl);
    free(dlpath);
    free(dir);
    return rc;
}

int sl_plugin_load(const char *dir, int kind, const char *name, struct sl_plugin *out,
                   struct sl_err *err)
{
    const char *kn = sl_kind_name(kind);
    memset(out, 0, sizeof *out);
    if (!kn) {
        snprintf(err->msg, sizeof err->msg, "unknown plugin kind %d", kind);
        return -1;
    }
    if (!*name || strchr(name, '/') || strstr(name, "..")) {
        snprintf(err->msg, sizeof err->msg, "invalid %s plugin name \"%s\"", kn, name);
        return -1;
    }
    char *path = sl_xasprintf("%s/%s-%s.so", dir, kn, name);
    struct stat st;
    int rc;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        snprintf(err->msg, sizeof err->msg,
                 "no plugin file %s-%s.so in %s (is the plugin installed? `sluice plugins` lists "
                 "what is there; set plugin_dir or SLUICE_PLUGIN_PATH to another folder)",
                 kn, name, dir);
        rc = -1;
    } else {
        rc = sl_plugin_load_file(path, out, err);
    }
    free(path);
    return rc;
}

void sl_plugin_unload(struct sl_plugin *p)
{
    if (!p)
        return;
    if (p->dl)
        dlclose(p->dl);
    free(p->path);
    memset(p, 0, sizeof *p);
}

static int so_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 3 && strcmp(d->d_name + n - 3, ".so") == 0;
}

static int name_order(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int sl_plugin_scan(const char *dir, sl_plugin_scan_cb cb, void *arg)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, so_filter, name_order);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char *path = sl_xasprintf("%s/%s", dir, names[i]->d_name);
        struct sl_plugin p;
        struct sl_err err;
        if (sl_plugin_load_file(path, &p, &err) == 0) {
            cb(arg, path, &p, NULL);
            sl_plugin_unload(&p);
        } else {
            cb(arg, path, NULL, &err);
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return n;
}
