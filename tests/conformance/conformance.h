/*
 * conformance.h - what the sink conformance suite needs to know about one
 * target. Adding a target (MariaDB, ODBC) = one more target_<name>.c filling
 * this table, one run_<name>.sh starting the server, one add_test line.
 */
#ifndef CONFORMANCE_H
#define CONFORMANCE_H

#include <stdbool.h>

struct conf_target {
    const char *name;   /* "pg": SLUICE_CONFORMANCE_TARGET selects it */
    const char *plugin; /* sink plugin name, loaded as sink-<plugin>.so */
    int dialect;        /* enum sluice_sql_dialect, for quoting in test SQL */
    /* the sink section in libconfig syntax for connection string conninfo;
     * malloc'd */
    char *(*sink_section)(const char *conninfo);
    int (*connect)(const char *conninfo); /* 0 ok */
    void (*disconnect)(void);
    /* run SQL; 0 ok, -1 (message on stderr) */
    int (*exec)(const char *sql);
    /* run a query; rows as lines, columns joined by '|', NULL as "<null>";
     * malloc'd, NULL on error (the table does not exist) */
    char *(*query)(const char *sql);
    /* a connection string like conninfo whose server is unreachable
     * (unreachable) or that names a database that does not exist; malloc'd */
    char *(*bad_conninfo)(const char *conninfo, bool unreachable);
    /* expected text of each value of the type round-trip case, in the
     * target's own text output (column order of the case's entity) */
    const char *const *type_rows[3];
};

extern const struct conf_target conf_target_pg;

#endif
