/*
 * target_mariadb.c - the MariaDB target of the sink conformance suite
 * (sink-mysql, MariaDB Connector/C). The connection string is
 * "host=H port=P user=U password=W database=D" (run_mariadb.sh).
 * The test connection runs with sql_mode ANSI_QUOTES so the suite's
 * double-quoted identifiers work as they do on the other targets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include <sluice_sql/dialect.h>

#include "conformance.h"

static MYSQL *conn;

struct my_params {
    char host[128], port[16], user[64], password[128], database[128];
};

/* parse "k=v k=v"; later keys win */
static void parse(const char *conninfo, struct my_params *p)
{
    memset(p, 0, sizeof(*p));
    char *copy = strdup(conninfo), *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq++ = '\0';
        if (strcmp(tok, "host") == 0)
            snprintf(p->host, sizeof(p->host), "%s", eq);
        else if (strcmp(tok, "port") == 0)
            snprintf(p->port, sizeof(p->port), "%s", eq);
        else if (strcmp(tok, "user") == 0)
            snprintf(p->user, sizeof(p->user), "%s", eq);
        else if (strcmp(tok, "password") == 0)
            snprintf(p->password, sizeof(p->password), "%s", eq);
        else if (strcmp(tok, "database") == 0)
            snprintf(p->database, sizeof(p->database), "%s", eq);
    }
    free(copy);
}

static char *my_section(const char *conninfo)
{
    struct my_params p;
    char *s = NULL;
    parse(conninfo, &p);
    if (asprintf(&s, "sink = { plugin = \"mysql\"; host = \"%s\"; port = %s; user = \"%s\"; "
                     "password = \"%s\"; database = \"%s\"; connect_timeout = 3; };",
                 p.host, p.port, p.user, p.password, p.database) < 0)
        return NULL;
    return s;
}

static char *my_bad_conninfo(const char *conninfo, bool unreachable)
{
    char *s = NULL;
    if (asprintf(&s, "%s %s", conninfo,
                 unreachable ? "port=1" : "database=no_such_db_sluice") < 0)
        return NULL;
    return s;
}

static char *my_wrong_password(const char *conninfo)
{
    char *s = NULL;
    if (asprintf(&s, "%s password=not-the-password", conninfo) < 0)
        return NULL;
    return s;
}

static int my_connect(const char *conninfo)
{
    struct my_params p;
    parse(conninfo, &p);
    conn = mysql_init(NULL);
    mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(conn, p.host, p.user, p.password, p.database,
                            (unsigned)atoi(p.port), NULL, 0)) {
        fprintf(stderr, "conformance: cannot connect: %s\n", mysql_error(conn));
        return -1;
    }
    mysql_autocommit(conn, 1);
    if (mysql_query(conn, "SET SESSION sql_mode = 'ANSI_QUOTES,STRICT_ALL_TABLES', "
                          "time_zone = '+00:00'") != 0) {
        fprintf(stderr, "conformance: %s\n", mysql_error(conn));
        return -1;
    }
    return 0;
}

static void my_disconnect(void)
{
    mysql_close(conn);
    conn = NULL;
}

static int my_exec(const char *sql)
{
    if (mysql_query(conn, sql) != 0) {
        fprintf(stderr, "conformance: %s: %s\n", sql, mysql_error(conn));
        return -1;
    }
    MYSQL_RES *res = mysql_store_result(conn);
    if (res)
        mysql_free_result(res);
    return 0;
}

static char *my_query(const char *sql)
{
    struct sluice_sql_buf out = {0};
    if (mysql_query(conn, sql) != 0) {
        fprintf(stderr, "conformance: %s: %s\n", sql, mysql_error(conn));
        return NULL;
    }
    MYSQL_RES *res = mysql_store_result(conn);
    if (!res)
        return NULL;
    sluice_sql_buf_puts(&out, "");
    unsigned n = mysql_num_fields(res);
    MYSQL_ROW r;
    while ((r = mysql_fetch_row(res)) != NULL) {
        unsigned long *lens = mysql_fetch_lengths(res);
        for (unsigned c = 0; c < n; c++) {
            if (c)
                sluice_sql_buf_putc(&out, '|');
            if (!r[c])
                sluice_sql_buf_puts(&out, "<null>");
            else
                sluice_sql_buf_append(&out, r[c], lens[c]);
        }
        sluice_sql_buf_putc(&out, '\n');
    }
    mysql_free_result(res);
    return out.data;
}

/* The documented mapping (docs/sink-mysql.md): bool is tinyint(1); float
 * shows 6 significant digits in MariaDB's text output (the stored float is
 * exact); NaN and +-Infinity floats, +-infinity dates and timestamps, and
 * years outside 1000..9999 become NULL; an unconstrained decimal is text and
 * keeps "Infinity"/"NaN"; timestamptz is UTC without an offset. */
const char *const conf_mariadb_row1[] = {
    "1", "1", "-32768", "2147483647", "-9223372036854775808", "3.40282e38",
    "0.1", "1234567890123456789012345678.0123456789",
    "12345678901234567890123456789012345678", "", "00ff5c090a00",
    "2024-02-29", "12:00:00.000001", "2024-02-29 12:00:00.000001",
    "2024-02-29 12:00:00.000001", "00112233-4455-6677-8899-aabbccddeeff",
    "{\"a\": [1, 2.5, \"x\"]}"};
const char *const conf_mariadb_row2[] = {
    "2", "0", "32767", "-2147483648", "9223372036854775807", "-1.4013e-45", "1e-300",
    "-0.0000000001", "Infinity", "tab\there\nnew\\line \xf0\x9f\x98\x80 \xc3\xbc", "",
    "<null>", "24:00:00.000000", "<null>", "<null>", "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "\"\xf0\x9f\x98\x80\""};
const char *const conf_mariadb_row3[] = {
    "3", "<null>", "<null>", "<null>", "<null>", "<null>", "<null>", "<null>", "NaN", "<null>",
    "<null>", "<null>", "00:00:00.000000", "1969-12-31 23:59:59.999999",
    "<null>", "<null>", "null"};

const struct conf_target conf_target_mariadb = {
    .name = "mariadb",
    .plugin = "mysql",
    .dialect = SLUICE_SQL_MYSQL,
    .sink_section = my_section,
    .bad_conninfo = my_bad_conninfo,
    .wrong_password = my_wrong_password,
    .connect = my_connect,
    .disconnect = my_disconnect,
    .exec = my_exec,
    .query = my_query,
    .type_rows = {conf_mariadb_row1, conf_mariadb_row2, conf_mariadb_row3},
    .type_columns = CONF_MARIADB_TYPE_COLUMNS,
    .tstz_epoch = CONF_MARIADB_TSTZ_EPOCH,
};
