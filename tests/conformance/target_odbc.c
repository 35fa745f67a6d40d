/*
 * target_odbc.c - the ODBC targets of the sink conformance suite (sink-odbc):
 *   odbc_sqlite   SQLite driver (libsqliteodbc) on a file; checked with sqlite3
 *   odbc_pg       psqlODBC; checked through the pg target's libpq connection
 *   odbc_mariadb  MariaDB Connector/ODBC; checked through the mariadb target
 * Connection strings are "key=value ..." (run_odbc_*.sh); drivers come from
 * the odbcinst.ini tests/lib/odbc.sh writes into the test's folder.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include <sluice_sql/dialect.h>

#include "conformance.h"

/* the value of key in "k=v k=v" (the last one wins), or "" */
static void kv(const char *conninfo, const char *key, char *out, size_t cap)
{
    size_t n = strlen(key);
    out[0] = '\0';
    for (const char *p = conninfo; (p = strstr(p, key)) != NULL; p += n) {
        if ((p != conninfo && p[-1] != ' ') || p[n] != '=')
            continue;
        size_t len = strcspn(p + n + 1, " ");
        snprintf(out, cap, "%.*s", (int)len, p + n + 1);
    }
}

static char *append(const char *conninfo, const char *extra)
{
    char *s = NULL;
    if (asprintf(&s, "%s %s", conninfo, extra) < 0)
        return NULL;
    return s;
}

/* ---- SQLite ------------------------------------------------------------------------ */

static sqlite3 *lite;
static char lite_dir[1024];

static char *lite_section(const char *conninfo)
{
    char dsn[256], *s = NULL;
    kv(conninfo, "dsn", dsn, sizeof(dsn));
    if (asprintf(&s, "sink = { plugin = \"odbc\"; dsn = \"%s\"; };", dsn) < 0)
        return NULL;
    return s;
}

static char *lite_bad_conninfo(const char *conninfo, bool unreachable)
{
    (void)unreachable;
    return append(conninfo, "dsn=no_such_db_sluice");
}

static int lite_connect(const char *conninfo)
{
    char path[1024];
    kv(conninfo, "database", path, sizeof(path));
    snprintf(lite_dir, sizeof(lite_dir), "%s", path);
    char *slash = strrchr(lite_dir, '/');
    if (slash)
        *slash = '\0';
    if (sqlite3_open(path, &lite) != SQLITE_OK) {
        fprintf(stderr, "conformance: cannot open %s\n", path);
        return -1;
    }
    sqlite3_busy_timeout(lite, 10000);
    return 0;
}

static void lite_disconnect(void)
{
    sqlite3_close(lite);
    lite = NULL;
}

/* the sink keeps a target schema S in the file S.db next to the main one:
 * attach those the statement names (SQLite allows only 10 at a time) */
static void lite_attach_for(const char *sql)
{
    char pattern[1100];
    glob_t g;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(lite, "SELECT name FROM pragma_database_list WHERE seq > 1", -1, &st,
                           NULL) == SQLITE_OK) {
        struct sluice_sql_buf names = {0};
        while (sqlite3_step(st) == SQLITE_ROW) {
            sluice_sql_buf_puts(&names, "DETACH DATABASE ");
            sluice_sql_ident(&names, SLUICE_SQL_SQLITE, (const char *)sqlite3_column_text(st, 0));
            sluice_sql_buf_puts(&names, ";");
        }
        sqlite3_finalize(st);
        if (names.len)
            sqlite3_exec(lite, names.data, NULL, NULL, NULL);
        sluice_sql_buf_free(&names);
    }
    snprintf(pattern, sizeof(pattern), "%s/*.db", lite_dir);
    if (glob(pattern, 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *base = strrchr(g.gl_pathv[i], '/') + 1;
        struct sluice_sql_buf q = {0}, name = {0};
        sluice_sql_ident_n(&name, SLUICE_SQL_SQLITE, base, strlen(base) - 3);
        if (strcmp(base, "main.db") != 0 && strstr(sql, sluice_sql_buf_str(&name))) {
            sluice_sql_buf_puts(&q, "ATTACH DATABASE ");
            sluice_sql_string_literal(&q, SLUICE_SQL_SQLITE, g.gl_pathv[i]);
            sluice_sql_buf_printf(&q, " AS %s", sluice_sql_buf_str(&name));
            sqlite3_exec(lite, sluice_sql_buf_str(&q), NULL, NULL, NULL);
        }
        sluice_sql_buf_free(&q);
        sluice_sql_buf_free(&name);
    }
    globfree(&g);
}

static int lite_exec(const char *sql)
{
    char *err = NULL;
    lite_attach_for(sql);
    if (sqlite3_exec(lite, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "conformance: %s: %s\n", sql, err);
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static char *lite_query(const char *sql)
{
    sqlite3_stmt *st = NULL;
    struct sluice_sql_buf out = {0};
    lite_attach_for(sql);
    if (sqlite3_prepare_v2(lite, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "conformance: %s: %s\n", sql, sqlite3_errmsg(lite));
        return NULL;
    }
    sluice_sql_buf_puts(&out, "");
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            if (c)
                sluice_sql_buf_putc(&out, '|');
            if (sqlite3_column_type(st, c) == SQLITE_NULL)
                sluice_sql_buf_puts(&out, "<null>");
            else
                sluice_sql_buf_append(&out, sqlite3_column_text(st, c),
                                      (size_t)sqlite3_column_bytes(st, c));
        }
        sluice_sql_buf_putc(&out, '\n');
    }
    sqlite3_finalize(st);
    return out.data;
}

/* SQLite has no ADD CONSTRAINT: triggers raising the constraint's name
 * (expr starts with the column it tests: "qty < 1000") */
static int lite_add_check(const char *schema, const char *table, const char *name,
                          const char *expr)
{
    char sql[1024];
    for (int upd = 0; upd < 2; upd++) {
        snprintf(sql, sizeof(sql),
                 "CREATE TRIGGER \"%s\".\"%s_%d\" BEFORE %s ON \"%s\" WHEN NOT (NEW.%s) BEGIN "
                 "SELECT RAISE(ABORT, 'CHECK constraint failed: %s'); END",
                 schema, name, upd, upd ? "UPDATE" : "INSERT", table, expr, name);
        if (lite_exec(sql) != 0)
            return -1;
    }
    return 0;
}

static const char *const lite_row1[] = {
    "1", "1", "-32768", "2147483647", "-9223372036854775808", "3.40282346638529e+38",
    "0.1", "1234567890123456789012345678.0123456789",
    "12345678901234567890123456789012345678", "", "00ff5c090a00",
    "2024-02-29", "12:00:00.000001", "2024-02-29 12:00:00.000001",
    "2024-02-29 12:00:00.000001+00", "00112233-4455-6677-8899-aabbccddeeff",
    "{\"a\": [1, 2.5, \"x\"]}"};
static const char *const lite_row2[] = {
    "2", "0", "32767", "-2147483648", "9223372036854775807", "-1.40129846432482e-45", "1.0e-300",
    "-0.0000000001", "Infinity", "tab\there\nnew\\line \xf0\x9f\x98\x80 \xc3\xbc", "",
    "infinity", "24:00:00.000000", "infinity", "-infinity",
    "ffffffff-ffff-ffff-ffff-ffffffffffff", "\"\xf0\x9f\x98\x80\""};
static const char *const lite_row3[] = {
    "3", "<null>", "<null>", "<null>", "<null>", "NaN", "-Infinity", "<null>", "NaN", "<null>",
    "<null>", "0000-01-01", "00:00:00.000000", "1969-12-31 23:59:59.999999",
    "0000-01-01 00:00:00.000000+00", "<null>", "null"};

const struct conf_target conf_target_odbc_sqlite = {
    .name = "odbc_sqlite",
    .plugin = "odbc",
    .dialect = SLUICE_SQL_SQLITE,
    .sink_section = lite_section,
    .bad_conninfo = lite_bad_conninfo,
    .connect = lite_connect,
    .disconnect = lite_disconnect,
    .exec = lite_exec,
    .query = lite_query,
    .type_rows = {lite_row1, lite_row2, lite_row3},
    .type_columns = "id, b, i16, i32, i64, f32, f64, dec, num, txt, "
                    "CASE WHEN bin IS NULL THEN NULL ELSE lower(hex(bin)) END, d, tm, ts, tstz, u, j",
    .tstz_epoch = "1970-01-01 00:00:00.000000+00",
    .add_check = lite_add_check,
    .serverless = true,
};

/* ---- PostgreSQL through psqlODBC ---------------------------------------------------- */

static char *opg_section(const char *conninfo)
{
    char host[128], port[16], user[64], db[128], *s = NULL;
    kv(conninfo, "host", host, sizeof(host));
    kv(conninfo, "port", port, sizeof(port));
    kv(conninfo, "user", user, sizeof(user));
    kv(conninfo, "dbname", db, sizeof(db));
    if (asprintf(&s, "sink = { plugin = \"odbc\"; connection_string = \"Driver={PostgreSQL "
                     "Unicode};Servername=%s;Port=%s;Database=%s;ConnSettings=SET TimeZone='UTC'\"; "
                     "user = \"%s\"; connect_timeout = 3; };",
                 host, port, db, user) < 0)
        return NULL;
    return s;
}

static char *opg_bad_conninfo(const char *conninfo, bool unreachable)
{
    return append(conninfo, unreachable ? "port=1" : "dbname=no_such_db_sluice");
}

static int opg_connect(const char *c) { return conf_target_pg.connect(c); }
static void opg_disconnect(void) { conf_target_pg.disconnect(); }
static int opg_exec(const char *sql) { return conf_target_pg.exec(sql); }
static char *opg_query(const char *sql) { return conf_target_pg.query(sql); }

static const char *const opg_row1[] = {
    "1", "t", "-32768", "2147483647", "-9223372036854775808", "3.4028235e+38",
    "0.1", "1234567890123456789012345678.0123456789",
    "12345678901234567890123456789012345678", "", "\\x00ff5c090a00",
    "2024-02-29", "12:00:00.000001", "2024-02-29 12:00:00.000001",
    "2024-02-29 12:00:00.000001+00", "00112233-4455-6677-8899-aabbccddeeff",
    "{\"a\": [1, 2.5, \"x\"]}"};
static const char *const opg_row2[] = {
    "2", "f", "32767", "-2147483648", "9223372036854775807", "-1e-45", "1e-300",
    "-0.0000000001", "Infinity", "tab\there\nnew\\line \xf0\x9f\x98\x80 \xc3\xbc", "\\x",
    "infinity", "24:00:00", "infinity", "-infinity", "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "\"\xf0\x9f\x98\x80\""};
static const char *const opg_row3[] = {
    "3", "<null>", "<null>", "<null>", "<null>", "NaN", "-Infinity", "<null>", "NaN", "<null>",
    "<null>", "0001-01-01 BC", "00:00:00", "1969-12-31 23:59:59.999999",
    "0001-01-01 00:00:00+00 BC", "<null>", "null"};

const struct conf_target conf_target_odbc_pg = {
    .name = "odbc_pg",
    .plugin = "odbc",
    .dialect = SLUICE_SQL_POSTGRESQL,
    .sink_section = opg_section,
    .bad_conninfo = opg_bad_conninfo,
    .connect = opg_connect,
    .disconnect = opg_disconnect,
    .exec = opg_exec,
    .query = opg_query,
    .type_rows = {opg_row1, opg_row2, opg_row3},
};

/* ---- MariaDB through MariaDB Connector/ODBC ------------------------------------------ */

static char *oma_section(const char *conninfo)
{
    char host[128], port[16], user[64], pw[128], db[128], *s = NULL;
    kv(conninfo, "host", host, sizeof(host));
    kv(conninfo, "port", port, sizeof(port));
    kv(conninfo, "user", user, sizeof(user));
    kv(conninfo, "password", pw, sizeof(pw));
    kv(conninfo, "database", db, sizeof(db));
    if (asprintf(&s, "sink = { plugin = \"odbc\"; connection_string = \"Driver={MariaDB "
                     "Unicode};Server=%s;Port=%s;Database=%s;CONN_TIMEOUT=3\"; user = \"%s\"; "
                     "password = \"%s\"; };",
                 host, port, db, user, pw) < 0)
        return NULL;
    return s;
}

static char *oma_bad_conninfo(const char *conninfo, bool unreachable)
{
    return append(conninfo, unreachable ? "port=1" : "database=no_such_db_sluice");
}

static int oma_connect(const char *c) { return conf_target_mariadb.connect(c); }
static void oma_disconnect(void) { conf_target_mariadb.disconnect(); }
static int oma_exec(const char *sql) { return conf_target_mariadb.exec(sql); }
static char *oma_query(const char *sql) { return conf_target_mariadb.query(sql); }

static char *oma_wrong_password(const char *conninfo)
{
    return append(conninfo, "password=not-the-password");
}

const struct conf_target conf_target_odbc_mariadb = {
    .name = "odbc_mariadb",
    .plugin = "odbc",
    .dialect = SLUICE_SQL_MYSQL,
    .sink_section = oma_section,
    .bad_conninfo = oma_bad_conninfo,
    .wrong_password = oma_wrong_password,
    .connect = oma_connect,
    .disconnect = oma_disconnect,
    .exec = oma_exec,
    .query = oma_query,
    .type_rows = {conf_mariadb_row1, conf_mariadb_row2, conf_mariadb_row3},
    .type_columns = CONF_MARIADB_TYPE_COLUMNS,
    .tstz_epoch = CONF_MARIADB_TSTZ_EPOCH,
};
