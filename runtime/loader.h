/*
 * loader.h - finding and loading plugin .so files.
 *
 * A plugin of kind K and name N lives in <plugin folder>/K-N.so (e.g.
 * sink-pg.so). The loader dlopen()s it, calls sluice_plugin_entry() and
 * refuses it - with a message naming the file and the reason - when:
 * the entry symbol is missing (dlerror), the ABI major differs, the
 * descriptor or ops struct is smaller than ABI 1.0's, the kind or name does
 * not match the file name, a required callback is NULL (named), or the file
 * or its folder is writable by group/others or owned by another user.
 *
 * The plugin folder is, in order: $SLUICE_PLUGIN_PATH; the config's
 * plugin_dir; the build tree's plugins/ when the binary runs from the build
 * tree; the installed <libdir>/sluice/plugins.
 */
#ifndef SL_LOADER_H
#define SL_LOADER_H

#include <stddef.h>

#include <sluice/sluice.h>

#include "config.h"

struct sl_plugin {
    char *path;
    void *dl;
    const struct sluice_plugin *desc;
};

/* The folder plugins are loaded from (see above); never NULL. Static storage. */
const char *sl_plugin_dir(const struct sl_config *cfg);

/* Load <dir>/<kind>-<name>.so. 0, or -1 with err. */
int sl_plugin_load(const char *dir, int kind, const char *name, struct sl_plugin *out,
                   struct sl_err *err);
/* Load an explicit file (checks as above, kind/name taken from the file name). */
int sl_plugin_load_file(const char *path, struct sl_plugin *out, struct sl_err *err);
void sl_plugin_unload(struct sl_plugin *p);

/* "source", "transport", "spill", "sink" or NULL */
const char *sl_kind_name(int kind);
int sl_kind_parse(const char *name); /* -1 if unknown */

/* Call cb for every *.so in dir, in name order: with the loaded plugin, or
 * with p == NULL and err set when it was refused. */
typedef void (*sl_plugin_scan_cb)(void *arg, const char *path, const struct sl_plugin *p,
                                  const struct sl_err *err);
int sl_plugin_scan(const char *dir, sl_plugin_scan_cb cb, void *arg);

#endif
