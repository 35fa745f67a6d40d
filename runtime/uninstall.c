/*
 * uninstall.c - `sluice uninstall [--yes] [--drop-target-metadata]`: list,
 * and with --yes remove, everything this installation created outside its
 * package: per profile the source's replication slot and publication
 * (source drop) and spill blobs, the state store, the per-profile folders
 * and the control socket; with --drop-target-metadata also the sinks'
 * metadata tables (checkpoints, tombstones) in the targets. Exported rows in
 * the targets and the config files are never touched. Refuses while a
 * service answers on the control socket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "control.h"
#include "lifecycle.h"
#include "log.h"
#include "state.h"
#include "util.h"

static int remove_path(const char *path, bool yes, bool tree)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return 0; /* not there: nothing to list */
    if (!yes) {
        printf("  would remove %s\n", path);
        return 0;
    }
    int rc = tree ? sl_remove_tree(path) : (unlink(path) == 0 || errno == ENOENT ? 0 : -1);
    if (rc != 0) {
        printf("  FAILED: cannot remove %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("  removed %s\n", path);
    return 0;
}

int sl_cmd_uninstall(const char *conf, bool yes, bool drop_target_metadata)
{
    struct sl_config cfg = {0};
    struct sl_err err = {{0}};
    struct sl_buf report = {0};
    char msg[512];
    int rc = SL_EXIT_CONFIG, failures = 0;
    if (sl_config_load(conf, &cfg, &err) != 0) {
        sl_error("%s", err.msg);
        goto out;
    }
    sl_log_set_level(cfg.log_level);
    sl_log_set_format(cfg.log_format);
    rc = SL_EXIT_FAILURE;
    if (sl_control_call(cfg.control_socket, "ping", NULL, 2000, msg, sizeof msg) !=
        SL_CONTROL_NO_SERVICE) {
        sl_error("uninstall: a sluice service is running (%s, control socket %s); stop it first "
                 "(systemctl stop sluice), then run uninstall again",
                 msg, cfg.control_socket);
        goto out;
    }
    printf("%s what sluice created for %s:\n", yes ? "Removing" : "Would remove (run with --yes)",
           cfg.main_file);
    for (size_t i = 0; i < cfg.nprofiles; i++) {
        const struct sl_profile *p = &cfg.profiles[i];
        sl_buf_reset(&report);
        printf("profile %s (%s:%d):\n", p->name, p->file, p->line);
        if (sl_profile_drop(&cfg, p, SL_DROP_SOURCE, !yes, &report) != 0)
            failures++;
        if (sl_profile_drop(&cfg, p, SL_DROP_SPILL_BLOBS, !yes, &report) != 0)
            failures++;
        if (drop_target_metadata) {
            if (sl_profile_drop(&cfg, p, SL_DROP_SINK_PROFILE, !yes, &report) != 0 ||
                sl_profile_drop(&cfg, p, SL_DROP_SINK_METADATA, !yes, &report) != 0)
                failures++;
        } else {
            sl_buf_printf(&report, "  target: rows and metadata tables stay (add "
                                   "--drop-target-metadata to drop the metadata tables)\n");
        }
        sl_buf_append(&report, "", 1);
        fputs(report.data, stdout);
    }
    printf("state (%s):\n", cfg.state_dir);
    static const char *const files[] = {SL_STATE_FILE, SL_STATE_FILE "-wal", SL_STATE_FILE "-shm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *path = sl_xasprintf("%s/%s", cfg.state_dir, files[i]);
        failures += remove_path(path, yes, false) != 0;
        free(path);
    }
    char *profiles = sl_xasprintf("%s/profiles", cfg.state_dir);
    failures += remove_path(profiles, yes, true) != 0;
    free(profiles);
    failures += remove_path(cfg.control_socket, yes, false) != 0;
    if (yes && rmdir(cfg.state_dir) == 0)
        printf("  removed %s (empty)\n", cfg.state_dir);
    printf("kept: the config (%s, %s) and the exported rows in the targets; the package manager "
           "removes the program\n",
           cfg.main_file, cfg.conf_dir);
    if (failures) {
        sl_error("uninstall: %d steps failed (see above); fix them and run uninstall again",
                 failures);
        goto out;
    }
    rc = SL_EXIT_OK;
out:
    sl_buf_free(&report);
    sl_config_free(&cfg);
    return rc;
}
