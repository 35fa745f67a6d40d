/*
 * commands.h - the subcommands of the sluice binary and its exit codes
 * (documented in docs/operations.md). main.c parses argv and calls these.
 */
#ifndef SL_COMMANDS_H
#define SL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

enum sl_exit {
    SL_EXIT_OK = 0,
    SL_EXIT_FAILURE = 1, /* a profile failed while running */
    SL_EXIT_USAGE = 2,   /* bad command line */
    SL_EXIT_CONFIG = 3,  /* configuration error (file:line printed) */
    SL_EXIT_PLUGIN = 4,  /* a plugin could not be loaded or initialised */
    SL_EXIT_STATE = 5    /* the state store could not be opened */
};

/* conf: main config file, NULL for the default. */
int sl_cmd_check(const char *conf);
int sl_cmd_plugins(const char *conf);
int sl_cmd_run(const char *conf, bool once, const char *const *profiles, size_t nprofiles);
int sl_cmd_status(const char *conf, bool json);
/* action: enable, disable, delete, list (name NULL for list) - profile_cmd.c */
int sl_cmd_profile(const char *conf, const char *action, const char *name);
/* uninstall.c: without yes only lists what would be removed */
int sl_cmd_uninstall(const char *conf, bool yes, bool drop_target_metadata);

/* `sluice failures list|export|resync|clear NAME [-c CONF] [--output FILE]`
 * (failures.c): argv starts at "failures"; parses its own options. */
int sl_cmd_failures(int argc, char **argv);

/* The version of this build, "0.1.0" (defined in run.c, part of sluice_core). */
const char *sl_version(void);

#endif
