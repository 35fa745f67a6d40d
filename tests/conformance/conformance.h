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
    /* optional (NULL = the default): */
    /* a connection string like conninfo with a wrong password; NULL when the
     * target's test server does not check passwords (the wrong-password case
     * is skipped); malloc'd */
    char *(*wrong_password)(const char *conninfo);
    /* the select list of the type round-trip case when the target's text of
     * a column needs an expression (MariaDB prints bytes raw: HEX(bin)) */
    const char *type_columns;
    /* text of timestamptz 0 (1970-01-01 00:00:00 UTC) in the target's output */
    const char *tstz_epoch;
    /* add a constraint `name` refusing rows where expr is false to
     * schema.table; default ALTER TABLE .. ADD CONSTRAINT .. CHECK (SQLite
     * has none: a trigger). 0 ok */
    int (*add_check)(const char *schema, const char *table, const char *name, const char *expr);
    /* no server to be unreachable (SQLite): the unreachable case is skipped */
    bool serverless;
};

/* shared by the two MariaDB targets (sink-mysql and sink-odbc): one server,
 * one documented mapping */
extern const char *const conf_mariadb_row1[], *const conf_mariadb_row2[],
    *const conf_mariadb_row3[];
/* DEC is a reserved word in MySQL; bytes print raw, so as hex */
#define CONF_MARIADB_TYPE_COLUMNS                                                            \
    "id, b, i16, i32, i64, f32, f64, \"dec\", num, txt, LOWER(HEX(bin)), d, tm, ts, tstz, u, j"
#define CONF_MARIADB_TSTZ_EPOCH "1970-01-01 00:00:00.000000"

extern const struct conf_target conf_target_pg;
extern const struct conf_target conf_target_mariadb;
extern const struct conf_target conf_target_odbc_sqlite;
extern const struct conf_target conf_target_odbc_pg;
extern const struct conf_target conf_target_odbc_mariadb;

#endif
