/*
 * main.c - the sluice command line: `sluice <command> [options]`.
 *
 * Parses argv with getopt_long and dispatches to the commands in
 * commands.h. To add a subcommand, add a row to `commands` below.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "util.h"

static const char usage_text[] =
    "usage: sluice <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [-c CONF] [--once] [--profile NAME]...  run the export profiles: as a service\n"
    "                                              (until SIGTERM), or --once: initial sync\n"
    "                                              + changes up to now, then exit\n"
    "  check [-c CONF]                             validate the config and the plugins\n"
    "  status [-c CONF] [--json]                   profiles, state, per-entity counters\n"
    "  plugins [-c CONF]                           list the plugins found\n"
    "  profile enable|disable|delete NAME [-c CONF] pause, resume or delete a profile\n"
    "  profile list [-c CONF]                      profiles and their lifecycle state\n"
    "  uninstall [-c CONF] [--yes]                 list (--yes: remove) what sluice created;\n"
    "            [--drop-target-metadata]          also its metadata tables in the targets\n"
    "  failures list|export|resync|clear NAME      the failed-record log of a profile\n"
    "           [-c CONF] [--output FILE]          (export: CSV; sluice failures --help)\n"
    "\n"
    "options:\n"
    "  -c, --config CONF   main config file (default " SL_DEFAULT_CONFIG ")\n"
    "  -h, --help          this text\n"
    "  -V, --version       print the version\n"
    "\n"
    "exit codes: 0 ok, 1 a profile failed, 2 bad command line, 3 config error,\n"
    "            4 plugin error, 5 state store error (docs/operations.md)\n";

static int usage_error(const char *fmt, const char *arg)
{
    fputs("sluice: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    fputs(usage_text, stderr);
    return SL_EXIT_USAGE;
}

/* What a command may take; parse_args refuses the rest. */
#define OPT_CONF 0x1u
#define OPT_ONCE 0x2u
#define OPT_PROFILE 0x4u
#define OPT_JSON 0x8u
#define OPT_POS 0x10u /* up to two positional arguments */
#define OPT_YES 0x20u
#define OPT_DROP_META 0x40u

struct args {
    const char *conf;
    bool once, json;
    const char **profiles;
    size_t nprofiles;
    const char *pos[2];
    size_t npos;
    bool yes, drop_meta;
};

static int cmd_run(struct args *a)
{
    return sl_cmd_run(a->conf, a->once, a->profiles, a->nprofiles);
}
static int cmd_check(struct args *a) { return sl_cmd_check(a->conf); }
static int cmd_status(struct args *a) { return sl_cmd_status(a->conf, a->json); }
static int cmd_plugins(struct args *a) { return sl_cmd_plugins(a->conf); }
static int cmd_profile(struct args *a)
{
    if (a->npos == 0) {
        fprintf(stderr, "sluice: profile needs an action: enable, disable, delete or list\n");
        return SL_EXIT_USAGE;
    }
    return sl_cmd_profile(a->conf, a->pos[0], a->npos > 1 ? a->pos[1] : NULL);
}
static int cmd_uninstall(struct args *a)
{
    if (a->npos) {
        fprintf(stderr, "sluice: uninstall takes no argument %s\n", a->pos[0]);
        return SL_EXIT_USAGE;
    }
    return sl_cmd_uninstall(a->conf, a->yes, a->drop_meta);
}

static const struct command {
    const char *name;
    unsigned opts;
    int (*fn)(struct args *);
} commands[] = {
    {"run", OPT_CONF | OPT_ONCE | OPT_PROFILE, cmd_run},
    {"check", OPT_CONF, cmd_check},
    {"status", OPT_CONF | OPT_JSON, cmd_status},
    {"plugins", OPT_CONF, cmd_plugins},
    {"profile", OPT_CONF | OPT_POS, cmd_profile},
    {"uninstall", OPT_CONF | OPT_YES | OPT_DROP_META, cmd_uninstall},
};

enum { LONG_ONCE = 256, LONG_PROFILE, LONG_JSON, LONG_YES, LONG_DROP_META };

static int parse_args(const struct command *cmd, int argc, char **argv, struct args *a)
{
    static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'}, {"once", no_argument, NULL, LONG_ONCE},
        {"profile", required_argument, NULL, LONG_PROFILE}, {"json", no_argument, NULL, LONG_JSON},
        {"yes", no_argument, NULL, LONG_YES},
        {"drop-target-metadata", no_argument, NULL, LONG_DROP_META},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:h", long_opts, NULL)) != -1) {
        unsigned need = 0;
        switch (c) {
        case 'c': need = OPT_CONF; break;
        case LONG_ONCE: need = OPT_ONCE; break;
        case LONG_PROFILE: need = OPT_PROFILE; break;
        case LONG_JSON: need = OPT_JSON; break;
        case LONG_YES: need = OPT_YES; break;
        case LONG_DROP_META: need = OPT_DROP_META; break;
        case 'h': fputs(usage_text, stdout); return 1;
        case ':': return usage_error("option %s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option %s", argv[optind - 1]);
        }
        if (!(cmd->opts & need))
            return usage_error("option %s does not apply to this command", argv[optind - 1]);
        switch (c) {
        case 'c': a->conf = optarg; break;
        case LONG_ONCE: a->once = true; break;
        case LONG_JSON: a->json = true; break;
        case LONG_YES: a->yes = true; break;
        case LONG_DROP_META: a->drop_meta = true; break;
        case LONG_PROFILE:
            a->profiles = sl_xrealloc(a->profiles, (a->nprofiles + 1) * sizeof *a->profiles);
            a->profiles[a->nprofiles++] = optarg;
            break;
        }
    }
    while ((cmd->opts & OPT_POS) && optind < argc && a->npos < 2)
        a->pos[a->npos++] = argv[optind++];
    if (optind < argc)
        return usage_error("unexpected argument %s", argv[optind]);
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    int rc = SL_EXIT_USAGE;
    if (argc < 2) {
        fputs(usage_text, stderr);
        goto out;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        fputs(usage_text, stdout);
        rc = SL_EXIT_OK;
        goto out;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0 ||
        strcmp(name, "version") == 0) {
        printf("sluice %s (plugin ABI %d.%d)\n", sl_version(), SLUICE_ABI_MAJOR,
               SLUICE_ABI_MINOR);
        rc = SL_EXIT_OK;
        goto out;
    }
    if (strcmp(name, "failures") == 0) { /* positional action and NAME: own parser */
        rc = sl_cmd_failures(argc - 1, argv + 1);
        goto out;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        rc = usage_error(name[0] == '-' ? "unknown option %s" : "unknown command %s", name);
        goto out;
    }
    int parsed = parse_args(cmd, argc - 1, argv + 1, &a);
    if (parsed != 0) {
        rc = parsed == SL_EXIT_USAGE ? SL_EXIT_USAGE : SL_EXIT_OK; /* 1: --help */
        goto out;
    }
    rc = cmd->fn(&a);
out:
    free(a.profiles);
    return rc;
}
