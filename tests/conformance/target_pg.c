/*
 * target_pg.c - the PostgreSQL target of the sink conformance suite (libpq).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <sluice_sql/dialect.h>

#include "conformance.h"

static PGconn *conn;

static char *pg_section(const char *conninfo)
{
    char *s = NULL;
    if (asprintf(&s, "sink = { plugin = \"pg\"; conninfo = \"%s\"; "
                     "application_name = \"sluice-conformance\"; };",
                 conninfo) < 0)
        return NULL;
    return s;
}

static char *pg_bad_conninfo(const char *conninfo, bool unreachable)
{
    char *s = NULL;
    /* later keywords win in a libpq connection string; port 1 has no server */
    if (asprintf(&s, "%s %s", conninfo,
                 unreachable ? "port=1 connect_timeout=2" : "dbname=no_such_db_sluice") < 0)
        return NULL;
    return s;
}

static int pg_connect(const char *conninfo)
{
    conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "conformance: cannot connect: %s", PQerrorMessage(conn));
        return -1;
    }
    PQclear(PQexec(conn, "SET TimeZone = 'UTC'"));
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    return 0;
}

static void pg_disconnect(void)
{
    PQfinish(conn);
    conn = NULL;
}

static int pg_exec(const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "conformance: %s: %s", sql, PQerrorMessage(conn));
        rc = -1;
    }
    PQclear(res);
    return rc;
}

static char *pg_query(const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    struct sluice_sql_buf out = {0};
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return NULL;
    }
    sluice_sql_buf_puts(&out, "");
    for (int r = 0; r < PQntuples(res); r++) {
        for (int c = 0; c < PQnfields(res); c++) {
            if (c)
                sluice_sql_buf_putc(&out, '|');
            if (PQgetisnull(res, r, c))
                sluice_sql_buf_puts(&out, "<null>");
            else
                sluice_sql_buf_append(&out, PQgetvalue(res, r, c),
                                      (size_t)PQgetlength(res, r, c));
        }
        sluice_sql_buf_putc(&out, '\n');
    }
    PQclear(res);
    return out.data; /* ownership passes to the caller */
}

/* columns: id, bool, int16, int32, int64, float32, float64, decimal(38,10),
 * decimal, text, bytes, date, time, timestamp, timestamptz, uuid, json */
static const char *const row1[] = {
    "1", "t", "-32768", "2147483647", "-9223372036854775808", "3.4028235e+38",
    "0.1", "1234567890123456789012345678.0123456789",
    "12345678901234567890123456789012345678", "", "\\x00ff5c090a00",
    "2024-02-29", "12:00:00.000001", "2024-02-29 12:00:00.000001",
    "2024-02-29 12:00:00.000001+00", "00112233-4455-6677-8899-aabbccddeeff",
    "{\"a\": [1, 2.5, \"x\"]}"};
static const char *const row2[] = {
    "2", "f", "32767", "-2147483648", "9223372036854775807", "-1e-45", "1e-300",
    "-0.0000000001", "Infinity", "tab\there\nnew\\line \xf0\x9f\x98\x80 \xc3\xbc", "\\x",
    "infinity", "24:00:00", "infinity", "-infinity", "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "\"\xf0\x9f\x98\x80\""};
static const char *const row3[] = {
    "3", "<null>", "<null>", "<null>", "<null>", "NaN", "-Infinity", "<null>", "NaN", "<null>",
    "<null>", "0001-01-01 BC", "00:00:00", "1969-12-31 23:59:59.999999",
    "0001-01-01 00:00:00+00 BC", "<null>", "null"};

const struct conf_target conf_target_pg = {
    .name = "pg",
    .plugin = "pg",
    .dialect = SLUICE_SQL_POSTGRESQL,
    .sink_section = pg_section,
    .bad_conninfo = pg_bad_conninfo,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec = pg_exec,
    .query = pg_query,
    .type_rows = {row1, row2, row3},
};
