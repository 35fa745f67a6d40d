/*
 * odbc_sink.c - the ODBC sink (unixODBC): any target with an ODBC driver whose
 * DBMS the shared dialect layer knows (PostgreSQL, MySQL/MariaDB, SQLite,
 * Microsoft SQL Server), detected with SQLGetInfo(SQL_DBMS_NAME). Prepared,
 * version-guarded upserts (runs as parameter arrays where the driver can),
 * tombstones, delete log and the checkpoint in one transaction per batch
 * (SQL_AUTOCOMMIT_OFF). See docs/sink-odbc.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sql.h>
#include <sqlext.h>

#include <sluice/sluice.h>
#include <sluice_sql/dialect.h>

#define STMT_CACHE 32
#define ARR_MAX_ROWS 1000         /* rows per parameter-array execution */
#define ARR_MAX_BYTES (16u << 20) /* and bytes of column-wise buffers */
#define ARR_FAILED 1000           /* internal: an array execution failed, redo row by row */
#define MAX_PARAMS 1024

struct odbc_sink_config {
    const char *dsn;
    const char *connection_string;
    const char *user;
    const char *password;
    const char *dialect;
    int64_t connect_timeout;
};

static const struct sluice_config_item odbc_sink_config_items[] = {
    {"dsn", SLUICE_CFG_STRING, 0, NULL, offsetof(struct odbc_sink_config, dsn),
     "data source name from odbc.ini (or give connection_string)"},
    {"connection_string", SLUICE_CFG_STRING, 0, NULL,
     offsetof(struct odbc_sink_config, connection_string),
     "ODBC connection string, e.g. \"Driver=SQLite3;Database=/srv/export.db\" (no PWD: use "
     "password)"},
    {"user", SLUICE_CFG_STRING, 0, NULL, offsetof(struct odbc_sink_config, user),
     "user name, appended as UID={...}"},
    {"password", SLUICE_CFG_SECRET, 0, NULL, offsetof(struct odbc_sink_config, password),
     "password (or password_file / password_env), appended as PWD={...}; never logged"},
    {"dialect", SLUICE_CFG_STRING, 0, NULL, offsetof(struct odbc_sink_config, dialect),
     "postgresql | mysql | sqlite | mssql: override the dialect detected from SQL_DBMS_NAME"},
    {"connect_timeout", SLUICE_CFG_INT, 0, "10",
     offsetof(struct odbc_sink_config, connect_timeout), "seconds to wait for a connection"},
};

struct stmt_slot {
    char *sql;
    SQLHSTMT stmt;
};

/* The upserts of one pending parameter-array execution (one statement). */
struct arr_run {
    SQLHSTMT st;
    const struct sluice_entity *e;
    unsigned nparams;
    size_t nrows;
    size_t first; /* batch index of row 0 */
    struct sluice_sql_buf sql;  /* the statement, to tell when the shape changes */
    struct sluice_sql_buf data; /* the cells' bytes */
    size_t *off;                /* nrows * nparams offsets into data */
    SQLLEN *len;                /* nrows * nparams lengths, -1 = NULL */
    size_t cap_off, cap_len;
    bool binary[MAX_PARAMS];
    SQLLEN width[MAX_PARAMS]; /* longest value per parameter (element size) */
    size_t row_bytes;         /* sum of width */
    /* column-wise binding, built at flush */
    char *col;
    SQLLEN *ind;
    SQLUSMALLINT *status;
    size_t cap_col, cap_ind, cap_status;
};

struct odbc_sink {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    char *connstr;   /* without the password */
    char *password;
    int forced_dialect;
    SQLULEN timeout;
    char *profile, *schema, *prefix;
    bool delete_log;
    char target[512]; /* "ODBC DSN=x (SQLite)" for messages, no secrets */

    SQLHENV env;
    SQLHDBC dbc;
    bool connected;
    int d; /* dialect */
    bool meta_ready;
    struct stmt_slot stmts[STMT_CACHE];
    unsigned stmt_next;

    struct sluice_sql_buf sql, conv, data, keys, scratch;
    size_t offs[MAX_PARAMS];
    SQLLEN ind[MAX_PARAMS];
    uint8_t *include;
    size_t cap_include;
    int64_t nulled;

    struct arr_run run;
    bool can_array;  /* parameter arrays work on this connection (until they fail to) */
    bool arrays_now; /* use them in this pass over the batch */
};

/* ---- errors ------------------------------------------------------------------- */

static bool sqlstate_lost(const char *st)
{
    return strncmp(st, "08", 2) == 0;
}

static bool sqlstate_transient(const char *st)
{
    return sqlstate_lost(st) || strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 ||
           strcmp(st, "HYT00") == 0 || strcmp(st, "HYT01") == 0 || strcmp(st, "57014") == 0 ||
           strcmp(st, "55P03") == 0 || strncmp(st, "53", 2) == 0;
}

static void odbc_disconnect(struct odbc_sink *s);

/*
 * Report the diagnostics of handle h: set the error text and return
 * SLUICE_RETRY or SLUICE_ERR by SQLSTATE. The first record decides. A lost
 * connection (08xxx) is closed so that the next call reconnects.
 */
static int odbc_fail(struct odbc_sink *s, SQLSMALLINT type, SQLHANDLE h, const char *what,
                     const char *entity)
{
    SQLCHAR state[6] = "", msg[512] = "";
    SQLINTEGER native = 0;
    SQLSMALLINT len = 0;
    if (!SQL_SUCCEEDED(SQLGetDiagRec(type, h, 1, state, &native, msg, sizeof(msg), &len))) {
        snprintf((char *)state, sizeof(state), "HY000");
        snprintf((char *)msg, sizeof(msg), "no diagnostic from the driver");
    }
    msg[strcspn((char *)msg, "\n")] = '\0';
    const char *st = (const char *)state;
    int rc = sqlstate_transient(st) ? SLUICE_RETRY : SLUICE_ERR;
    s->host->set_error(s->ctx, "%s%s%s on %s: %s (SQLSTATE %s)%s", what,
                       entity ? " of entity " : "", entity ? entity : "", s->target,
                       (const char *)msg, st,
                       rc == SLUICE_RETRY ? "; will retry"
                                          : "; fix the target or the data, then resync the record");
    if (sqlstate_lost(st))
        odbc_disconnect(s);
    return rc;
}

static int odbc_oom(struct odbc_sink *s)
{
    s->host->set_error(s->ctx, "out of memory building SQL for %s", s->target);
    return SLUICE_NOMEM;
}

/* ---- lifecycle ----------------------------------------------------------------- */

static void odbc_disconnect(struct odbc_sink *s)
{
    for (unsigned i = 0; i < STMT_CACHE; i++) {
        if (s->stmts[i].stmt)
            SQLFreeHandle(SQL_HANDLE_STMT, s->stmts[i].stmt);
        free(s->stmts[i].sql);
        s->stmts[i].stmt = NULL;
        s->stmts[i].sql = NULL;
    }
    if (s->dbc) {
        if (s->connected) {
            SQLEndTran(SQL_HANDLE_DBC, s->dbc, SQL_ROLLBACK);
            SQLDisconnect(s->dbc);
        }
        SQLFreeHandle(SQL_HANDLE_DBC, s->dbc);
    }
    s->dbc = NULL;
    s->connected = false;
    s->meta_ready = false;
    s->run.st = NULL;
    s->run.nrows = 0;
}

static void odbc_sink_free(struct odbc_sink *s)
{
    if (!s)
        return;
    odbc_disconnect(s);
    if (s->env)
        SQLFreeHandle(SQL_HANDLE_ENV, s->env);
    free(s->connstr);
    if (s->password) {
        explicit_bzero(s->password, strlen(s->password));
        free(s->password);
    }
    free(s->profile);
    free(s->schema);
    free(s->prefix);
    sluice_sql_buf_free(&s->sql);
    sluice_sql_buf_free(&s->conv);
    sluice_sql_buf_free(&s->data);
    sluice_sql_buf_free(&s->keys);
    sluice_sql_buf_free(&s->scratch);
    free(s->include);
    sluice_sql_buf_free(&s->run.sql);
    sluice_sql_buf_free(&s->run.data);
    free(s->run.off);
    free(s->run.len);
    free(s->run.col);
    free(s->run.ind);
    free(s->run.status);
    free(s);
}

/* Append key={value} with '}' doubled, as ODBC connection strings escape;
 * always for PWD, else only when the value needs it (some drivers, e.g.
 * sqliteodbc, keep the braces of a braced DSN as part of the name). */
static void put_braced(struct sluice_sql_buf *b, const char *key, const char *value)
{
    bool brace = strcmp(key, "PWD") == 0 || strpbrk(value, ";{}=") || value[0] == ' ' ||
                 (*value && value[strlen(value) - 1] == ' ');
    if (b->len && b->data[b->len - 1] != ';')
        sluice_sql_buf_putc(b, ';');
    sluice_sql_buf_printf(b, "%s=", key);
    if (!brace) {
        sluice_sql_buf_puts(b, value);
        sluice_sql_buf_putc(b, ';');
        return;
    }
    sluice_sql_buf_putc(b, '{');
    for (const char *p = value; *p; p++) {
        if (*p == '}')
            sluice_sql_buf_putc(b, '}');
        sluice_sql_buf_putc(b, *p);
    }
    sluice_sql_buf_puts(b, "};");
}

/* The connection string contains key (case-insensitive, at a key position)? */
static bool has_key(const char *cs, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = cs; *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        if (strncasecmp(p, key, n) == 0 && (p[n] == '=' || p[n] == ' '))
            return true;
        /* skip to the next ';' outside braces */
        int depth = 0;
        for (; *p && (depth || *p != ';'); p++) {
            if (*p == '{')
                depth = 1;
            else if (*p == '}')
                depth = 0;
        }
    }
    return false;
}

static int odbc_sink_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                          const struct sluice_init_args *args, void **inst)
{
    const struct odbc_sink_config *cfg = args->config;
    struct odbc_sink *s = NULL;
    struct sluice_sql_buf cs = {0};
    int rc = SLUICE_ERR, forced = 0;

    bool dsn = cfg->dsn && *cfg->dsn, str = cfg->connection_string && *cfg->connection_string;
    if (dsn == str) {
        host->set_error(ctx, "give exactly one of 'dsn' (a data source from odbc.ini) and "
                             "'connection_string'");
        goto out;
    }
    if (str && (has_key(cfg->connection_string, "PWD") ||
                has_key(cfg->connection_string, "Password"))) {
        host->set_error(ctx, "key 'connection_string' contains a password: move it to "
                             "'password_file' or 'password_env' so it is never printed");
        goto out;
    }
    if (cfg->dialect && *cfg->dialect) {
        forced = sluice_sql_dialect_parse(cfg->dialect);
        if (forced < 0) {
            host->set_error(ctx, "key 'dialect' must be postgresql, mysql, sqlite or mssql, got "
                                 "\"%s\"", cfg->dialect);
            goto out;
        }
    }
    if (cfg->connect_timeout < 0 || cfg->connect_timeout > 3600) {
        host->set_error(ctx, "key 'connect_timeout' must be 0..3600 seconds, got %" PRId64,
                        cfg->connect_timeout);
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    s->host = host;
    s->ctx = ctx;
    if (dsn)
        put_braced(&cs, "DSN", cfg->dsn);
    else
        sluice_sql_buf_puts(&cs, cfg->connection_string);
    if (cfg->user && *cfg->user)
        put_braced(&cs, "UID", cfg->user);
    if (cs.failed) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    s->connstr = strdup(sluice_sql_buf_str(&cs));
    s->password = cfg->password ? strdup(cfg->password) : NULL;
    s->forced_dialect = forced;
    s->timeout = (SQLULEN)cfg->connect_timeout;
    s->profile = strdup(args->profile ? args->profile : "");
    s->schema = args->target_schema && *args->target_schema ? strdup(args->target_schema) : NULL;
    s->prefix = strdup(args->table_prefix ? args->table_prefix : "");
    s->delete_log = args->delete_log;
    if (!s->connstr || (cfg->password && !s->password) || !s->profile || !s->prefix ||
        (args->target_schema && *args->target_schema && !s->schema)) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    snprintf(s->target, sizeof(s->target), "ODBC \"%s\"", s->connstr);
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &s->env)) ||
        !SQL_SUCCEEDED(SQLSetEnvAttr(s->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0))) {
        host->set_error(ctx, "cannot set up the ODBC environment (unixODBC)");
        goto out;
    }
    *inst = s;
    s = NULL;
    rc = SLUICE_OK;
out:
    sluice_sql_buf_free(&cs);
    odbc_sink_free(s);
    return rc;
}

static int detect_dialect(struct odbc_sink *s)
{
    char name[128] = "";
    SQLSMALLINT len = 0;
    if (s->forced_dialect > 0) {
        s->d = s->forced_dialect;
        return SLUICE_OK;
    }
    if (!SQL_SUCCEEDED(SQLGetInfo(s->dbc, SQL_DBMS_NAME, name, sizeof(name), &len)))
        return odbc_fail(s, SQL_HANDLE_DBC, s->dbc, "read SQL_DBMS_NAME", NULL);
    if (strstr(name, "PostgreSQL"))
        s->d = SLUICE_SQL_POSTGRESQL;
    else if (strstr(name, "MySQL") || strstr(name, "MariaDB"))
        s->d = SLUICE_SQL_MYSQL;
    else if (strstr(name, "SQLite"))
        s->d = SLUICE_SQL_SQLITE;
    else if (strstr(name, "SQL Server"))
        s->d = SLUICE_SQL_MSSQL;
    else {
        s->host->set_error(s->ctx, "%s is a \"%s\": the ODBC sink knows PostgreSQL, MySQL/MariaDB, "
                                   "SQLite and Microsoft SQL Server; set 'dialect' to the closest",
                           s->target, name);
        return SLUICE_ERR;
    }
    char *p = strstr(s->target, " (");
    if (!p && strlen(s->target) + strlen(name) + 4 < sizeof(s->target))
        snprintf(s->target + strlen(s->target), sizeof(s->target) - strlen(s->target), " (%s)",
                 name);
    return SLUICE_OK;
}

static int exec_direct(struct odbc_sink *s, const char *sql, const char *what,
                       const char *entity);

/* SQLite has no schemas: a target schema is an attached database file
 * <folder of the main database>/<schema>.db (docs/sink-odbc.md). */
static int sqlite_attach(struct odbc_sink *s)
{
    SQLHSTMT st = NULL;
    char file[4096] = "";
    SQLLEN ind = 0;
    int rc = SLUICE_OK;
    if (strchr(s->schema, '/')) {
        s->host->set_error(s->ctx, "target_schema \"%s\" names an SQLite database file next to "
                                   "the main one and cannot hold '/'", s->schema);
        return SLUICE_ERR;
    }
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, s->dbc, &st)))
        return odbc_fail(s, SQL_HANDLE_DBC, s->dbc, "attach schema", NULL);
    if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)"SELECT name, file FROM pragma_database_list",
                                     SQL_NTS))) {
        rc = odbc_fail(s, SQL_HANDLE_STMT, st, "list databases", NULL);
        goto out;
    }
    bool attached = false;
    while (SQL_SUCCEEDED(SQLFetch(st))) {
        char name[256] = "", path[4096] = "";
        SQLLEN nind = 0;
        SQLGetData(st, 1, SQL_C_CHAR, name, sizeof(name), &nind);
        SQLGetData(st, 2, SQL_C_CHAR, path, sizeof(path), &ind);
        if (strcmp(name, "main") == 0 && ind > 0)
            snprintf(file, sizeof(file), "%s", path);
        if (strcmp(name, s->schema) == 0)
            attached = true;
    }
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    st = NULL;
    if (attached)
        goto out;
    char *slash = strrchr(file, '/');
    if (!slash) {
        s->host->set_error(s->ctx, "%s: the main SQLite database has no file, so target_schema "
                                   "\"%s\" cannot be attached next to it", s->target, s->schema);
        rc = SLUICE_ERR;
        goto out;
    }
    slash[1] = '\0';
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_buf_puts(&s->sql, "ATTACH DATABASE ");
    sluice_sql_buf_reset(&s->scratch);
    sluice_sql_buf_printf(&s->scratch, "%s%s.db", file, s->schema);
    sluice_sql_string_literal(&s->sql, SLUICE_SQL_SQLITE, sluice_sql_buf_str(&s->scratch));
    sluice_sql_buf_puts(&s->sql, " AS ");
    sluice_sql_ident(&s->sql, SLUICE_SQL_SQLITE, s->schema);
    if (s->sql.failed || s->scratch.failed) {
        rc = odbc_oom(s);
        goto out;
    }
    rc = exec_direct(s, sluice_sql_buf_str(&s->sql), "attach schema", NULL);
out:
    if (st)
        SQLFreeHandle(SQL_HANDLE_STMT, st);
    return rc;
}

/*
 * A failed login is permanent (wrong password, unknown database, no such
 * DSN or driver: IM0xx, 28000); a server that cannot be reached is
 * transient. Drivers differ in SQLSTATEs (psqlODBC reports an unknown
 * database as 08001, MariaDB an unreachable server as HY000), so the
 * message decides where the SQLSTATE does not.
 */
static bool connect_transient(const char *st, const char *msg)
{
    static const char *const login[] = {"password", "authentication", "Access denied",
                                        "does not exist", "Unknown database", "pg_hba.conf",
                                        "permission denied", "not found", "role"};
    static const char *const reach[] = {"Can't connect", "Connection refused", "could not connect",
                                        "timed out", "timeout", "Lost connection",
                                        "server closed", "Connection reset"};
    if (strncmp(st, "IM", 2) == 0 || strncmp(st, "28", 2) == 0)
        return false;
    for (size_t i = 0; i < sizeof(login) / sizeof(login[0]); i++)
        if (strcasestr(msg, login[i]))
            return false;
    if (strncmp(st, "08", 2) == 0 || strcmp(st, "HYT00") == 0 || strcmp(st, "HYT01") == 0)
        return true;
    for (size_t i = 0; i < sizeof(reach) / sizeof(reach[0]); i++)
        if (strcasestr(msg, reach[i]))
            return true;
    return false;
}

static int odbc_connect(struct odbc_sink *s)
{
    struct sluice_sql_buf cs = {0};
    int rc = SLUICE_ERR;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, s->env, &s->dbc))) {
        s->host->set_error(s->ctx, "cannot allocate an ODBC connection for %s", s->target);
        return SLUICE_NOMEM;
    }
    if (s->timeout)
        SQLSetConnectAttr(s->dbc, SQL_ATTR_LOGIN_TIMEOUT, (SQLPOINTER)s->timeout, 0);
    sluice_sql_buf_puts(&cs, s->connstr);
    if (s->password)
        put_braced(&cs, "PWD", s->password);
    if (cs.failed) {
        rc = odbc_oom(s);
        goto out;
    }
    SQLRETURN r = SQLDriverConnect(s->dbc, NULL, (SQLCHAR *)cs.data, SQL_NTS, NULL, 0, NULL,
                                   SQL_DRIVER_NOPROMPT);
    if (!SQL_SUCCEEDED(r)) {
        SQLCHAR state[6] = "", msg[512] = "";
        SQLINTEGER native = 0;
        SQLSMALLINT len = 0;
        SQLGetDiagRec(SQL_HANDLE_DBC, s->dbc, 1, state, &native, msg, sizeof(msg), &len);
        msg[strcspn((char *)msg, "\n")] = '\0';
        if (connect_transient((const char *)state, (const char *)msg)) {
            s->host->set_error(s->ctx, "cannot connect to %s: %s (SQLSTATE %s); will retry",
                               s->target, msg, state);
            rc = SLUICE_RETRY;
        } else {
            s->host->set_error(s->ctx, "cannot log in to %s: %s (SQLSTATE %s); check the DSN or "
                                       "connection string, user, database and the password "
                                       "(password_file / password_env)",
                               s->target, msg, state);
            rc = SLUICE_ERR;
        }
        goto out;
    }
    s->connected = true;
    s->can_array = true;
    rc = detect_dialect(s);
    if (rc == SLUICE_OK && s->d == SLUICE_SQL_SQLITE && s->schema)
        rc = sqlite_attach(s); /* before autocommit off: no ATTACH inside a transaction */
    if (rc == SLUICE_OK && s->d == SLUICE_SQL_MYSQL)
        rc = exec_direct(s, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
                            "time_zone = '+00:00'", "session setup", NULL);
    if (rc == SLUICE_OK && s->d == SLUICE_SQL_POSTGRESQL)
        rc = exec_direct(s, "SET client_min_messages = warning", "session setup", NULL);
    if (rc == SLUICE_OK &&
        !SQL_SUCCEEDED(SQLSetConnectAttr(s->dbc, SQL_ATTR_AUTOCOMMIT,
                                         (SQLPOINTER)SQL_AUTOCOMMIT_OFF, 0)))
        rc = odbc_fail(s, SQL_HANDLE_DBC, s->dbc, "turn off autocommit", NULL);
out:
    if (cs.data)
        explicit_bzero(cs.data, cs.cap);
    sluice_sql_buf_free(&cs);
    if (rc != SLUICE_OK)
        odbc_disconnect(s);
    return rc;
}

static int odbc_sink_start(void *inst)
{
    struct odbc_sink *s = inst;
    return s->connected ? SLUICE_OK : odbc_connect(s);
}

static void odbc_sink_stop(void *inst)
{
    odbc_disconnect(inst);
}

static void odbc_sink_destroy(void *inst)
{
    odbc_sink_free(inst);
}

static int ensure_conn(struct odbc_sink *s)
{
    return s->connected ? SLUICE_OK : odbc_connect(s);
}

static int end_tran(struct odbc_sink *s, bool commit)
{
    if (!s->connected)
        return SLUICE_RETRY;
    if (!SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, s->dbc, commit ? SQL_COMMIT : SQL_ROLLBACK)))
        return odbc_fail(s, SQL_HANDLE_DBC, s->dbc, commit ? "commit" : "rollback", NULL);
    return SLUICE_OK;
}

/* ---- statements --------------------------------------------------------------------- */

/* ODBC takes '?' placeholders: rewrite PostgreSQL's $n (ascending, each once
 * in every generated statement) outside quoted identifiers and literals. */
static const char *odbc_sql(struct odbc_sink *s, const char *sql)
{
    if (s->d != SLUICE_SQL_POSTGRESQL)
        return sql;
    sluice_sql_buf_reset(&s->conv);
    char quote = 0;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
            sluice_sql_buf_putc(&s->conv, '?');
            while (p[1] >= '0' && p[1] <= '9')
                p++;
            continue;
        }
        sluice_sql_buf_putc(&s->conv, *p);
    }
    return sluice_sql_buf_str(&s->conv);
}

static int exec_direct(struct odbc_sink *s, const char *sql, const char *what, const char *entity)
{
    SQLHSTMT st;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, s->dbc, &st)))
        return odbc_fail(s, SQL_HANDLE_DBC, s->dbc, what, entity);
    SQLRETURN r = SQLExecDirect(st, (SQLCHAR *)sql, SQL_NTS);
    int rc = SLUICE_OK;
    if (!SQL_SUCCEEDED(r) && r != SQL_NO_DATA)
        rc = odbc_fail(s, SQL_HANDLE_STMT, st, what, entity);
    if (st && s->connected)
        SQLFreeHandle(SQL_HANDLE_STMT, st);
    return rc;
}

static int stmt_for(struct odbc_sink *s, const char *sql_in, SQLHSTMT *out, const char *entity)
{
    const char *sql = odbc_sql(s, sql_in);
    if (s->conv.failed)
        return odbc_oom(s);
    for (unsigned i = 0; i < STMT_CACHE; i++) {
        if (s->stmts[i].sql && strcmp(s->stmts[i].sql, sql) == 0) {
            SQLFreeStmt(s->stmts[i].stmt, SQL_CLOSE);
            SQLFreeStmt(s->stmts[i].stmt, SQL_RESET_PARAMS);
            *out = s->stmts[i].stmt;
            return SLUICE_OK;
        }
    }
    SQLHSTMT st;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, s->dbc, &st)))
        return odbc_fail(s, SQL_HANDLE_DBC, s->dbc, "prepare", entity);
    if (!SQL_SUCCEEDED(SQLPrepare(st, (SQLCHAR *)sql, SQL_NTS))) {
        int rc = odbc_fail(s, SQL_HANDLE_STMT, st, "prepare", entity);
        if (s->connected)
            SQLFreeHandle(SQL_HANDLE_STMT, st);
        return rc;
    }
    struct stmt_slot *slot = &s->stmts[s->stmt_next++ % STMT_CACHE];
    if (slot->stmt)
        SQLFreeHandle(SQL_HANDLE_STMT, slot->stmt);
    free(slot->sql);
    slot->sql = strdup(sql);
    slot->stmt = st;
    if (!slot->sql)
        return odbc_oom(s);
    *out = st;
    return SLUICE_OK;
}

/*
 * Bind n parameters: vals[i] with lens[i] bytes (NULL = SQL NULL), binary[i]
 * as SQL_C_BINARY, the rest as SQL_C_CHAR text in the dialect's syntax.
 */
static int bind_params(struct odbc_sink *s, SQLHSTMT st, unsigned n, const char *const *vals,
                       const SQLLEN *lens, const bool *binary, const char *entity)
{
    for (unsigned i = 0; i < n; i++) {
        s->ind[i] = vals[i] ? lens[i] : SQL_NULL_DATA;
        bool bin = binary && binary[i];
        SQLULEN size = vals[i] && lens[i] > 0 ? (SQLULEN)lens[i] : 1;
        SQLSMALLINT sqltype = bin ? (size > 8000 ? SQL_LONGVARBINARY : SQL_VARBINARY)
                                  : (size > 4000 ? SQL_LONGVARCHAR : SQL_VARCHAR);
        SQLRETURN r = SQLBindParameter(st, (SQLUSMALLINT)(i + 1), SQL_PARAM_INPUT,
                                       bin ? SQL_C_BINARY : SQL_C_CHAR, sqltype, size, 0,
                                       (SQLPOINTER)(vals[i] ? vals[i] : ""), lens[i] > 0 ? lens[i] : 0,
                                       &s->ind[i]);
        if (!SQL_SUCCEEDED(r))
            return odbc_fail(s, SQL_HANDLE_STMT, st, "bind", entity);
    }
    return SLUICE_OK;
}

static int exec_params(struct odbc_sink *s, const char *sql, unsigned n, const char *const *vals,
                       const SQLLEN *lens_in, const bool *binary, const char *what,
                       const char *entity, SQLLEN *affected)
{
    SQLHSTMT st;
    SQLLEN lens[16];
    int rc = stmt_for(s, sql, &st, entity);
    if (rc != SLUICE_OK)
        return rc;
    for (unsigned i = 0; i < n && i < 16; i++)
        lens[i] = lens_in ? lens_in[i] : vals[i] ? (SQLLEN)strlen(vals[i]) : 0;
    rc = bind_params(s, st, n, vals, lens, binary, entity);
    if (rc != SLUICE_OK)
        return rc;
    SQLRETURN r = SQLExecute(st);
    if (!SQL_SUCCEEDED(r) && r != SQL_NO_DATA)
        return odbc_fail(s, SQL_HANDLE_STMT, st, what, entity);
    if (affected) {
        *affected = 0;
        if (r != SQL_NO_DATA)
            SQLRowCount(st, affected);
    }
    SQLFreeStmt(st, SQL_CLOSE);
    return SLUICE_OK;
}

typedef int (*row_fn)(void *arg, SQLHSTMT st);

static int query_rows(struct odbc_sink *s, const char *sql, unsigned n, const char *const *vals,
                      row_fn cb, void *arg, const char *what)
{
    SQLHSTMT st;
    SQLLEN lens[8];
    int rc = stmt_for(s, sql, &st, NULL);
    if (rc != SLUICE_OK)
        return rc;
    for (unsigned i = 0; i < n && i < 8; i++)
        lens[i] = (SQLLEN)strlen(vals[i]);
    rc = bind_params(s, st, n, vals, lens, NULL, NULL);
    if (rc != SLUICE_OK)
        return rc;
    SQLRETURN r = SQLExecute(st);
    if (!SQL_SUCCEEDED(r))
        return odbc_fail(s, SQL_HANDLE_STMT, st, what, NULL);
    while (rc == SLUICE_OK && SQL_SUCCEEDED(r = SQLFetch(st)))
        rc = cb(arg, st);
    if (rc == SLUICE_OK && r != SQL_NO_DATA && !SQL_SUCCEEDED(r))
        rc = odbc_fail(s, SQL_HANDLE_STMT, st, what, NULL);
    if (s->connected)
        SQLFreeStmt(st, SQL_CLOSE);
    return rc;
}

/* ---- DDL ---------------------------------------------------------------------------- */

static int ensure_meta(struct odbc_sink *s)
{
    int rc = ensure_conn(s);
    if (rc != SLUICE_OK || s->meta_ready)
        return rc;
    for (int step = 0; step < 4 && rc == SLUICE_OK; step++) {
        sluice_sql_buf_reset(&s->sql);
        int g = 0;
        switch (step) {
        case 0: g = sluice_sql_create_schema(&s->sql, s->d, s->schema); break;
        case 1: g = sluice_sql_create_checkpoint_table(&s->sql, s->d, s->schema); break;
        case 2: g = sluice_sql_create_tombstone_table(&s->sql, s->d, s->schema); break;
        case 3:
            if (!s->delete_log)
                continue;
            g = sluice_sql_create_delete_log_table(&s->sql, s->d, s->schema, s->prefix);
            break;
        }
        if (g == 1 || s->sql.len == 0)
            continue; /* nothing to do in this dialect */
        rc = s->sql.failed ? odbc_oom(s)
                           : exec_direct(s, sluice_sql_buf_str(&s->sql), "create metadata tables",
                                         NULL);
    }
    if (rc == SLUICE_OK)
        rc = end_tran(s, true);
    else if (s->connected)
        end_tran(s, false);
    if (rc == SLUICE_OK)
        s->meta_ready = true;
    return rc;
}

static struct sluice_sql_table table_of(const struct odbc_sink *s, const struct sluice_entity *e)
{
    struct sluice_sql_table t = {.schema = s->schema, .prefix = s->prefix, .name = e->name};
    return t;
}

static int odbc_sink_prepare(void *inst, const struct sluice_entity *e)
{
    struct odbc_sink *s = inst;
    struct sluice_sql_table t = table_of(s, e);
    SQLHSTMT st = NULL;
    uint8_t *have = NULL;
    int rc;

    if (e->nkeys == 0) {
        s->host->set_error(s->ctx, "entity \"%s\" has no key: the ODBC sink needs one to apply "
                                   "updates and deletes; declare a key in the source",
                           e->name);
        return SLUICE_ERR;
    }
    rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    sluice_sql_buf_reset(&s->sql);
    if (sluice_sql_create_table(&s->sql, s->d, &t, e) != 0) {
        s->host->set_error(s->ctx, "entity \"%s\": cannot map its columns to %s types", e->name,
                           sluice_sql_dialect_name(s->d));
        return SLUICE_ERR;
    }
    if (s->d == SLUICE_SQL_MYSQL)
        sluice_sql_buf_puts(&s->sql, " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
    if (s->sql.failed)
        return odbc_oom(s);
    rc = exec_direct(s, sluice_sql_buf_str(&s->sql), "create table", e->name);
    if (rc != SLUICE_OK)
        goto out;

    /* which columns exist: the result columns of an empty SELECT * */
    have = calloc(e->ncolumns + 1, 1);
    if (!have) {
        rc = odbc_oom(s);
        goto out;
    }
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_buf_puts(&s->sql, "SELECT * FROM ");
    sluice_sql_table_name(&s->sql, s->d, &t);
    sluice_sql_buf_puts(&s->sql, " WHERE 1 = 0");
    if (s->sql.failed) {
        rc = odbc_oom(s);
        goto out;
    }
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, s->dbc, &st))) {
        rc = odbc_fail(s, SQL_HANDLE_DBC, s->dbc, "read columns", e->name);
        goto out;
    }
    if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)sluice_sql_buf_str(&s->sql), SQL_NTS))) {
        rc = odbc_fail(s, SQL_HANDLE_STMT, st, "read columns", e->name);
        goto out;
    }
    SQLSMALLINT ncols = 0;
    SQLNumResultCols(st, &ncols);
    for (SQLSMALLINT c = 1; c <= ncols; c++) {
        char name[512] = "";
        SQLSMALLINT nlen = 0;
        SQLColAttribute(st, (SQLUSMALLINT)c, SQL_DESC_NAME, name, sizeof(name), &nlen, NULL);
        for (uint32_t i = 0; i < e->ncolumns; i++)
            if (strcmp(e->columns[i].name, name) == 0)
                have[i] = 1;
    }
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    st = NULL;
    for (uint32_t i = 0; i < e->ncolumns && rc == SLUICE_OK; i++) {
        if (have[i])
            continue;
        sluice_sql_buf_reset(&s->sql);
        if (sluice_sql_add_column(&s->sql, s->d, &t, &e->columns[i]) != 0 || s->sql.failed) {
            rc = odbc_oom(s);
            goto out;
        }
        rc = exec_direct(s, sluice_sql_buf_str(&s->sql), "add column", e->name);
        if (rc == SLUICE_OK)
            s->host->log(s->ctx, SLUICE_LOG_INFO, "entity \"%s\": added column \"%s\" to the "
                                                  "target", e->name, e->columns[i].name);
    }
out:
    if (st && s->connected)
        SQLFreeHandle(SQL_HANDLE_STMT, st);
    free(have);
    if (rc == SLUICE_OK)
        rc = end_tran(s, true);
    else if (s->connected)
        end_tran(s, false);
    /* DDL may have changed what cached statements mean */
    for (unsigned i = 0; s->connected && i < STMT_CACHE; i++) {
        if (s->stmts[i].stmt)
            SQLFreeHandle(SQL_HANDLE_STMT, s->stmts[i].stmt);
        free(s->stmts[i].sql);
        s->stmts[i].stmt = NULL;
        s->stmts[i].sql = NULL;
    }
    return rc;
}

/* ---- apply ---------------------------------------------------------------------------- */

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * size);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

/* The version-guarded upsert; guarded adds "unless a tombstone at least as
 * new exists" (parameters: values..., version, profile, entity, key, version). */
static int upsert_sql(struct odbc_sink *s, const struct sluice_entity *e, const uint8_t *include,
                      unsigned *nparams)
{
    unsigned n = 1;
    for (uint32_t c = 0; c < e->ncolumns; c++)
        n += include[c];
    struct sluice_sql_buf sel = {0};
    struct sluice_sql_table t = table_of(s, e);
    struct sluice_sql_table tt = {.schema = s->schema, .name = SLUICE_SQL_TOMBSTONE_TABLE};
    sluice_sql_buf_puts(&sel, "SELECT ");
    unsigned i = 0;
    for (uint32_t c = 0; c <= e->ncolumns; c++) {
        if (c < e->ncolumns && !include[c])
            continue;
        if (i)
            sluice_sql_buf_puts(&sel, ", ");
        /* PostgreSQL types a bare parameter in a select list as text */
        if (s->d == SLUICE_SQL_POSTGRESQL)
            sluice_sql_buf_puts(&sel, "CAST(");
        sluice_sql_param(&sel, s->d, ++i);
        if (s->d == SLUICE_SQL_POSTGRESQL) {
            sluice_sql_buf_puts(&sel, " AS ");
            if (c < e->ncolumns)
                sluice_sql_column_type(&sel, s->d, &e->columns[c]);
            else
                sluice_sql_buf_puts(&sel, sluice_sql_version_type(s->d));
            sluice_sql_buf_putc(&sel, ')');
        }
    }
    if (s->d == SLUICE_SQL_MYSQL)
        sluice_sql_buf_puts(&sel, " FROM DUAL");
    sluice_sql_buf_puts(&sel, " WHERE NOT EXISTS (SELECT 1 FROM ");
    sluice_sql_table_name(&sel, s->d, &tt);
    sluice_sql_buf_puts(&sel, " WHERE ");
    const char *cols[4] = {"profile", "entity", "record_key", "version"};
    for (unsigned k = 0; k < 4; k++) {
        if (k)
            sluice_sql_buf_puts(&sel, " AND ");
        sluice_sql_ident(&sel, s->d, cols[k]);
        sluice_sql_buf_puts(&sel, k == 3 ? " >= " : " = ");
        sluice_sql_param(&sel, s->d, n + k + 1);
    }
    sluice_sql_buf_putc(&sel, ')');
    sluice_sql_buf_reset(&s->sql);
    int g = sluice_sql_upsert(&s->sql, s->d, &t, e, include, sluice_sql_buf_str(&sel));
    bool oom = sel.failed || s->sql.failed;
    sluice_sql_buf_free(&sel);
    *nparams = n + 4;
    if (g != 0 && !oom) {
        s->host->set_error(s->ctx, "entity \"%s\": cannot build the %s upsert", e->name,
                           sluice_sql_dialect_name(s->d));
        return SLUICE_ERR;
    }
    return oom ? odbc_oom(s) : SLUICE_OK;
}

/* Execute the upsert st for one row (batch index i). */
static int exec_row(struct odbc_sink *s, SQLHSTMT st, const struct sluice_entity *e,
                    unsigned nparams, const char *const *vals, const SQLLEN *lens,
                    const bool *binary, size_t i, size_t *failed)
{
    int rc = bind_params(s, st, nparams, vals, lens, binary, e->name);
    if (rc != SLUICE_OK)
        return rc;
    SQLRETURN r = SQLExecute(st);
    if (!SQL_SUCCEEDED(r) && r != SQL_NO_DATA) {
        rc = odbc_fail(s, SQL_HANDLE_STMT, st, "write row", e->name);
        if (rc == SLUICE_ERR)
            *failed = i;
        return rc;
    }
    SQLFreeStmt(st, SQL_CLOSE);
    return SLUICE_OK;
}

/*
 * Execute the pending run as one parameter array (column-wise binding,
 * SQL_ATTR_PARAMSET_SIZE rows). Any row failing, or a driver that cannot do
 * arrays, gives ARR_FAILED: the caller rolls back and redoes the batch row by
 * row, which names the failing record exactly as before. A transient error
 * (lost connection, deadlock) is SLUICE_RETRY as usual.
 */
static int run_flush(struct odbc_sink *s, size_t *failed)
{
    struct arr_run *r = &s->run;
    size_t n = r->nrows;
    SQLULEN processed = 0;
    bool attrs = false;
    int rc = SLUICE_OK;

    r->nrows = 0;
    if (n == 0)
        return SLUICE_OK;
    if (n == 1 && !r->data.failed) { /* a plain execution */
        const char *vals[MAX_PARAMS];
        for (unsigned j = 0; j < r->nparams; j++)
            vals[j] = r->len[j] < 0 ? NULL : r->data.data + r->off[j];
        rc = exec_row(s, r->st, r->e, r->nparams, vals, r->len, r->binary, r->first, failed);
        goto out;
    }
    if (r->data.failed || !grow((void **)&r->col, &r->cap_col, r->row_bytes * n, 1) ||
        !grow((void **)&r->ind, &r->cap_ind, (size_t)r->nparams * n, sizeof(*r->ind)) ||
        !grow((void **)&r->status, &r->cap_status, n, sizeof(*r->status))) {
        rc = odbc_oom(s);
        goto out;
    }
    size_t base = 0;
    for (unsigned j = 0; j < r->nparams; j++) {
        size_t w = (size_t)r->width[j];
        for (size_t row = 0; row < n; row++) {
            size_t at = row * r->nparams + j;
            r->ind[(size_t)j * n + row] = r->len[at] < 0 ? SQL_NULL_DATA : r->len[at];
            if (r->len[at] > 0)
                memcpy(r->col + base + row * w, r->data.data + r->off[at], (size_t)r->len[at]);
        }
        base += w * n;
    }
    for (size_t row = 0; row < n; row++)
        r->status[row] = SQL_PARAM_UNUSED;
    attrs = true;
    if (!SQL_SUCCEEDED(SQLSetStmtAttr(r->st, SQL_ATTR_PARAM_BIND_TYPE,
                                      (SQLPOINTER)SQL_PARAM_BIND_BY_COLUMN, 0)) ||
        !SQL_SUCCEEDED(SQLSetStmtAttr(r->st, SQL_ATTR_PARAMSET_SIZE, (SQLPOINTER)(uintptr_t)n,
                                      0)) ||
        !SQL_SUCCEEDED(SQLSetStmtAttr(r->st, SQL_ATTR_PARAM_STATUS_PTR, r->status, 0)) ||
        !SQL_SUCCEEDED(SQLSetStmtAttr(r->st, SQL_ATTR_PARAMS_PROCESSED_PTR, &processed, 0))) {
        rc = ARR_FAILED;
        goto out;
    }
    base = 0;
    for (unsigned j = 0; j < r->nparams; j++) {
        SQLULEN size = (SQLULEN)r->width[j];
        SQLSMALLINT sqltype = r->binary[j] ? (size > 8000 ? SQL_LONGVARBINARY : SQL_VARBINARY)
                                           : (size > 4000 ? SQL_LONGVARCHAR : SQL_VARCHAR);
        if (!SQL_SUCCEEDED(SQLBindParameter(r->st, (SQLUSMALLINT)(j + 1), SQL_PARAM_INPUT,
                                            r->binary[j] ? SQL_C_BINARY : SQL_C_CHAR, sqltype,
                                            size, 0, r->col + base, r->width[j],
                                            &r->ind[(size_t)j * n]))) {
            rc = ARR_FAILED;
            goto out;
        }
        base += (size_t)r->width[j] * n;
    }
    SQLRETURN x = SQLExecute(r->st);
    if (!SQL_SUCCEEDED(x) && x != SQL_NO_DATA) {
        rc = odbc_fail(s, SQL_HANDLE_STMT, r->st, "write rows", r->e->name);
        if (rc == SLUICE_ERR)
            rc = ARR_FAILED;
        goto out;
    }
    /* only a driver that reports every row as processed and done is
     * trusted (some run the first parameter set only and say SQL_SUCCESS) */
    if (x != SQL_NO_DATA && processed != (SQLULEN)n)
        rc = ARR_FAILED;
    for (size_t row = 0; row < n && rc == SLUICE_OK; row++)
        if (r->status[row] != SQL_PARAM_SUCCESS && r->status[row] != SQL_PARAM_SUCCESS_WITH_INFO &&
            x != SQL_NO_DATA)
            rc = ARR_FAILED;
out:
    if (attrs && s->connected && r->st) {
        SQLFreeStmt(r->st, SQL_CLOSE);
        SQLFreeStmt(r->st, SQL_RESET_PARAMS);
        SQLSetStmtAttr(r->st, SQL_ATTR_PARAMSET_SIZE, (SQLPOINTER)1, 0);
        SQLSetStmtAttr(r->st, SQL_ATTR_PARAM_STATUS_PTR, NULL, 0);
        SQLSetStmtAttr(r->st, SQL_ATTR_PARAMS_PROCESSED_PTR, NULL, 0);
    }
    sluice_sql_buf_reset(&r->data);
    r->row_bytes = 0;
    return rc;
}

/* Append one upsert row to the run (flushing it first when full). */
static int run_add(struct odbc_sink *s, SQLHSTMT st, const struct sluice_entity *e,
                   unsigned nparams, const char *const *vals, const SQLLEN *lens,
                   const bool *binary, size_t i, size_t *failed)
{
    struct arr_run *r = &s->run;
    size_t grown = 0;
    int rc = SLUICE_OK;
    if (r->nrows) {
        for (unsigned j = 0; j < nparams; j++)
            if (lens[j] > r->width[j])
                grown += (size_t)(lens[j] - r->width[j]);
        if (r->nrows >= ARR_MAX_ROWS || (r->row_bytes + grown) * (r->nrows + 1) > ARR_MAX_BYTES)
            rc = run_flush(s, failed);
        if (rc != SLUICE_OK)
            return rc;
    }
    if (r->nrows == 0) {
        r->st = st;
        r->e = e;
        r->nparams = nparams;
        r->first = i;
        r->row_bytes = 0;
        sluice_sql_buf_reset(&r->data);
        sluice_sql_buf_reset(&r->sql);
        sluice_sql_buf_puts(&r->sql, sluice_sql_buf_str(&s->sql));
        for (unsigned j = 0; j < nparams; j++) {
            r->binary[j] = binary[j];
            r->width[j] = 1;
            r->row_bytes++;
        }
    }
    size_t need = (r->nrows + 1) * nparams;
    if (!grow((void **)&r->off, &r->cap_off, need, sizeof(*r->off)) ||
        !grow((void **)&r->len, &r->cap_len, need, sizeof(*r->len)))
        return odbc_oom(s);
    for (unsigned j = 0; j < nparams; j++) {
        size_t at = r->nrows * nparams + j;
        r->off[at] = r->data.len;
        r->len[at] = vals[j] ? lens[j] : -1;
        if (vals[j] && lens[j] > 0)
            sluice_sql_buf_append(&r->data, vals[j], (size_t)lens[j]);
        if (r->len[at] > r->width[j]) {
            r->row_bytes += (size_t)(r->len[at] - r->width[j]);
            r->width[j] = r->len[at];
        }
    }
    if (r->data.failed || r->sql.failed)
        return odbc_oom(s);
    r->nrows++;
    return SLUICE_OK;
}

static int apply_upsert(struct odbc_sink *s, const struct sluice_batch *batch, size_t i,
                        size_t *failed)
{
    const struct sluice_event *ev = &batch->events[i];
    const struct sluice_entity *e = ev->entity;
    const char *vals[MAX_PARAMS];
    SQLLEN lens[MAX_PARAMS];
    bool binary[MAX_PARAMS];
    char num[24];
    unsigned nparams;
    SQLHSTMT st;
    int rc;

    if (e->ncolumns + 5 > MAX_PARAMS) {
        s->host->set_error(s->ctx, "entity \"%s\" has %u columns, more than the ODBC sink's %d",
                           e->name, e->ncolumns, MAX_PARAMS - 5);
        return SLUICE_ERR;
    }
    if (!grow((void **)&s->include, &s->cap_include, e->ncolumns, 1))
        return odbc_oom(s);
    for (uint32_t c = 0; c < e->ncolumns; c++)
        s->include[c] = ev->op != SLUICE_OP_UPDATE || ev->values[c].state != SLUICE_ABSENT ||
                        (e->columns[c].flags & SLUICE_COL_KEY);
    rc = upsert_sql(s, e, s->include, &nparams);
    if (rc != SLUICE_OK)
        return rc;
    if (s->run.nrows && strcmp(sluice_sql_buf_str(&s->run.sql), sluice_sql_buf_str(&s->sql)))
        rc = run_flush(s, failed); /* before stmt_for can evict the run's statement */
    if (rc != SLUICE_OK)
        return rc;
    rc = stmt_for(s, sluice_sql_buf_str(&s->sql), &st, e->name);
    if (rc != SLUICE_OK)
        return rc;
    sluice_sql_buf_reset(&s->data);
    sluice_sql_buf_reset(&s->keys);
    if (sluice_sql_record_key(&s->keys, s->d, ev, &s->scratch) != 0) {
        s->host->set_error(s->ctx, "entity \"%s\": event %zu has a missing or invalid key value",
                           e->name, i);
        *failed = i;
        return SLUICE_ERR;
    }
    unsigned j = 0;
    for (uint32_t c = 0; c < e->ncolumns; c++) {
        if (!s->include[c])
            continue;
        const struct sluice_value *v = &ev->values[c];
        binary[j] = e->columns[c].type == SLUICE_T_BYTES;
        s->offs[j] = s->data.len;
        lens[j] = -1;
        if (v->state == SLUICE_PRESENT) {
            int vr = sluice_sql_value_text(&s->data, s->d, &e->columns[c], v);
            if (vr < 0) {
                s->host->set_error(s->ctx, "entity \"%s\": event %zu, column \"%s\": the value "
                                           "is not a valid %s",
                                   e->name, i, e->columns[c].name,
                                   sluice_type_name(e->columns[c].type));
                *failed = i;
                return SLUICE_ERR;
            }
            if (vr == 0)
                lens[j] = (SQLLEN)(s->data.len - s->offs[j]);
            else
                s->nulled++;
        }
        j++;
    }
    if (s->data.failed || s->keys.failed)
        return odbc_oom(s);
    for (unsigned k = 0; k < j; k++)
        vals[k] = lens[k] >= 0 ? s->data.data + s->offs[k] : NULL;
    snprintf(num, sizeof(num), "%" PRIu64, ev->version);
    const char *tail[5] = {num, s->profile, e->name, sluice_sql_buf_str(&s->keys), num};
    for (unsigned k = 0; k < 5; k++, j++) {
        vals[j] = tail[k];
        lens[j] = k == 3 ? (SQLLEN)s->keys.len : (SQLLEN)strlen(tail[k]);
        binary[j] = false;
    }
    if (s->arrays_now)
        return run_add(s, st, e, nparams, vals, lens, binary, i, failed);
    return exec_row(s, st, e, nparams, vals, lens, binary, i, failed);
}

static int apply_delete(struct odbc_sink *s, const struct sluice_batch *batch, size_t i,
                        size_t *failed)
{
    const struct sluice_event *ev = &batch->events[i];
    const struct sluice_entity *e = ev->entity;
    struct sluice_sql_table t = table_of(s, e);
    const char *vals[16];
    SQLLEN lens[16];
    bool binary[16];
    size_t offs[16];
    char num[24];
    SQLLEN affected = 0;
    int rc;

    if (e->nkeys > 14) {
        s->host->set_error(s->ctx, "entity \"%s\": keys of more than 14 columns are not "
                                   "supported by the ODBC sink", e->name);
        return SLUICE_ERR;
    }
    snprintf(num, sizeof(num), "%" PRIu64, ev->version);
    sluice_sql_buf_reset(&s->data);
    for (uint32_t k = 0; k < e->nkeys; k++) {
        const struct sluice_column *col = &e->columns[e->key_columns[k]];
        const struct sluice_value *v = &ev->values[e->key_columns[k]];
        offs[k] = s->data.len;
        if (v->state != SLUICE_PRESENT || sluice_sql_value_text(&s->data, s->d, col, v) != 0) {
            s->host->set_error(s->ctx, "entity \"%s\": delete event %zu has a missing or "
                                       "invalid key value", e->name, i);
            *failed = i;
            return SLUICE_ERR;
        }
        lens[k] = (SQLLEN)(s->data.len - offs[k]);
        binary[k] = col->type == SLUICE_T_BYTES;
    }
    if (s->data.failed)
        return odbc_oom(s);
    for (uint32_t k = 0; k < e->nkeys; k++)
        vals[k] = s->data.data + offs[k];
    vals[e->nkeys] = num;
    lens[e->nkeys] = (SQLLEN)strlen(num);
    binary[e->nkeys] = false;
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_delete_guarded(&s->sql, s->d, &t, e);
    if (s->sql.failed)
        return odbc_oom(s);
    rc = exec_params(s, sluice_sql_buf_str(&s->sql), e->nkeys + 1, vals, lens, binary, "delete",
                     e->name, &affected);
    if (rc != SLUICE_OK)
        goto out;
    sluice_sql_buf_reset(&s->keys);
    if (sluice_sql_record_key(&s->keys, s->d, ev, &s->scratch) != 0 || s->keys.failed) {
        rc = odbc_oom(s);
        goto out;
    }
    const char *tv[4] = {s->profile, e->name, sluice_sql_buf_str(&s->keys), num};
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_tombstone_upsert(&s->sql, s->d, s->schema);
    if (s->sql.failed)
        return odbc_oom(s);
    rc = exec_params(s, sluice_sql_buf_str(&s->sql), 4, tv, NULL, NULL, "write tombstone",
                     e->name, NULL);
    if (rc != SLUICE_OK || !s->delete_log || affected <= 0)
        goto out;
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_delete_log_insert(&s->sql, s->d, s->schema, s->prefix);
    if (s->sql.failed)
        return odbc_oom(s);
    rc = exec_params(s, sluice_sql_buf_str(&s->sql), 3, tv + 1, NULL, NULL, "write delete log",
                     e->name, NULL);
out:
    if (rc == SLUICE_ERR)
        *failed = i;
    return rc;
}

static int apply_truncate(struct odbc_sink *s, const struct sluice_entity *e)
{
    struct sluice_sql_table t = table_of(s, e);
    /* DELETE, not TRUNCATE: TRUNCATE commits implicitly in MySQL */
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_buf_puts(&s->sql, "DELETE FROM ");
    sluice_sql_table_name(&s->sql, s->d, &t);
    if (s->sql.failed)
        return odbc_oom(s);
    int rc = exec_direct(s, sluice_sql_buf_str(&s->sql), "truncate", e->name);
    if (rc != SLUICE_OK)
        return rc;
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_tombstone_delete(&s->sql, s->d, s->schema, true);
    if (s->sql.failed)
        return odbc_oom(s);
    const char *params[2] = {s->profile, e->name};
    return exec_params(s, sluice_sql_buf_str(&s->sql), 2, params, NULL, NULL, "reset tombstones",
                       e->name, NULL);
}

static int write_checkpoint(struct odbc_sink *s, const struct sluice_batch *batch)
{
    char partition[16];
    snprintf(partition, sizeof(partition), "%" PRIu32, batch->partition);
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_checkpoint_upsert(&s->sql, s->d, s->schema);
    if (s->sql.failed)
        return odbc_oom(s);
    const char *vals[3] = {s->profile, partition, (const char *)batch->position.bytes};
    const SQLLEN lens[3] = {(SQLLEN)strlen(s->profile), (SQLLEN)strlen(partition),
                            (SQLLEN)batch->position.len};
    const bool binary[3] = {false, false, true};
    return exec_params(s, sluice_sql_buf_str(&s->sql), 3, vals, lens, binary, "write checkpoint",
                       NULL, NULL);
}

/* Apply the events of the batch (no commit). */
static int apply_events(struct odbc_sink *s, const struct sluice_batch *batch, size_t *failed)
{
    int rc = SLUICE_OK;
    *failed = SIZE_MAX;
    s->nulled = 0;
    s->run.nrows = 0;
    for (size_t i = 0; i < batch->nevents && rc == SLUICE_OK; i++) {
        const struct sluice_event *ev = &batch->events[i];
        if (ev->op == SLUICE_OP_TRUNCATE || ev->op == SLUICE_OP_DELETE)
            rc = run_flush(s, failed);
        if (rc != SLUICE_OK)
            break;
        if (ev->op == SLUICE_OP_TRUNCATE)
            rc = apply_truncate(s, ev->entity);
        else if (ev->op == SLUICE_OP_DELETE)
            rc = apply_delete(s, batch, i, failed);
        else
            rc = apply_upsert(s, batch, i, failed);
    }
    if (rc == SLUICE_OK)
        rc = run_flush(s, failed);
    s->run.nrows = 0;
    return rc;
}

static int odbc_sink_apply(void *inst, const struct sluice_batch *batch, size_t *failed)
{
    struct odbc_sink *s = inst;
    int rc;

    *failed = SIZE_MAX;
    s->nulled = 0;
    rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    s->arrays_now = s->can_array;
    rc = apply_events(s, batch, failed);
    if (rc == ARR_FAILED) {
        /* redo the batch row by row: that names a failing record, and tells
         * bad data from a driver that mishandles parameter arrays */
        s->arrays_now = false;
        rc = end_tran(s, false);
        if (rc == SLUICE_OK)
            rc = apply_events(s, batch, failed);
        if (rc == SLUICE_OK) {
            s->can_array = false;
            s->host->log(s->ctx, SLUICE_LOG_WARN,
                         "parameter arrays failed on %s where single rows work: writing row by "
                         "row on this connection", s->target);
        }
    }
    if (rc == SLUICE_OK && batch->position.len > 0)
        rc = write_checkpoint(s, batch);
    if (rc == SLUICE_OK)
        rc = end_tran(s, true);
    if (rc != SLUICE_OK) {
        if (s->connected)
            end_tran(s, false);
        if (rc != SLUICE_ERR)
            *failed = SIZE_MAX;
        return rc;
    }
    if (s->nulled)
        s->host->counter_add(s->ctx, NULL, "values_not_representable", s->nulled);
    return SLUICE_OK;
}

/* ---- checkpoints and profile removal ------------------------------------------------- */

struct ckpt_ctx {
    struct odbc_sink *s;
    sluice_checkpoint_cb cb;
    void *arg;
};

static int ckpt_row(void *arg, SQLHSTMT st)
{
    struct ckpt_ctx *c = arg;
    struct sluice_position pos = {0};
    SQLINTEGER partition = 0;
    SQLLEN ind = 0, plen = 0;
    uint8_t buf[SLUICE_POSITION_MAX + 1];
    SQLGetData(st, 1, SQL_C_SLONG, &partition, 0, &ind);
    SQLRETURN r = SQLGetData(st, 2, SQL_C_BINARY, buf, sizeof(buf), &plen);
    if (!SQL_SUCCEEDED(r) || plen < 0 || plen > SLUICE_POSITION_MAX) {
        c->s->host->set_error(c->s->ctx, "a checkpoint in %s is malformed (more than %d bytes or "
                                         "NULL): the table was changed by hand",
                              c->s->target, SLUICE_POSITION_MAX);
        return SLUICE_ERR;
    }
    pos.len = (uint32_t)plen;
    memcpy(pos.bytes, buf, (size_t)plen);
    return c->cb(c->arg, (uint32_t)partition, &pos);
}

static int odbc_sink_checkpoint_list(void *inst, sluice_checkpoint_cb cb, void *arg)
{
    struct odbc_sink *s = inst;
    int rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_checkpoint_select(&s->sql, s->d, s->schema);
    if (s->sql.failed)
        return odbc_oom(s);
    const char *params[1] = {s->profile};
    struct ckpt_ctx c = {s, cb, arg};
    rc = query_rows(s, sluice_sql_buf_str(&s->sql), 1, params, ckpt_row, &c, "read checkpoints");
    if (s->connected)
        end_tran(s, false);
    return rc;
}

static int odbc_sink_drop_profile(void *inst)
{
    struct odbc_sink *s = inst;
    int rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    const char *params[1] = {s->profile};
    for (int step = 0; step < 2 && rc == SLUICE_OK; step++) {
        sluice_sql_buf_reset(&s->sql);
        if (step == 0)
            sluice_sql_checkpoint_delete(&s->sql, s->d, s->schema);
        else
            sluice_sql_tombstone_delete(&s->sql, s->d, s->schema, false);
        rc = s->sql.failed ? odbc_oom(s)
                           : exec_params(s, sluice_sql_buf_str(&s->sql), 1, params, NULL, NULL,
                                         "drop profile metadata", NULL, NULL);
    }
    if (rc == SLUICE_OK)
        rc = end_tran(s, true);
    else if (s->connected)
        end_tran(s, false);
    return rc;
}

static int odbc_sink_drop_metadata(void *inst)
{
    struct odbc_sink *s = inst;
    int rc = ensure_conn(s);
    const char *tables[3] = {SLUICE_SQL_CHECKPOINT_TABLE, SLUICE_SQL_TOMBSTONE_TABLE,
                             SLUICE_SQL_DELETE_LOG_TABLE};
    for (int i = 0; i < 3 && rc == SLUICE_OK; i++) {
        sluice_sql_buf_reset(&s->sql);
        sluice_sql_drop_table(&s->sql, s->d, s->schema, i == 2 ? s->prefix : NULL, tables[i]);
        rc = s->sql.failed ? odbc_oom(s)
                           : exec_direct(s, sluice_sql_buf_str(&s->sql), "drop metadata table",
                                         NULL);
    }
    if (rc == SLUICE_OK)
        rc = end_tran(s, true);
    else if (s->connected)
        end_tran(s, false);
    s->meta_ready = false;
    return rc;
}

/* ---- descriptor ---------------------------------------------------------------------- */

static const struct sluice_sink_ops odbc_sink_ops = {
    .struct_size = sizeof(struct sluice_sink_ops),
    .prepare = odbc_sink_prepare,
    .apply = odbc_sink_apply,
    .checkpoint_list = odbc_sink_checkpoint_list,
    .drop_profile = odbc_sink_drop_profile,
    .drop_metadata = odbc_sink_drop_metadata,
};

static const struct sluice_plugin odbc_sink_plugin = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin),
    .kind = SLUICE_KIND_SINK,
    .name = "odbc",
    .version = "1.0.0",
    .description = "ODBC sink (unixODBC): PostgreSQL, MySQL/MariaDB, SQLite, SQL Server; "
                   "version-guarded upsert, checkpoint in the same transaction",
    .config = odbc_sink_config_items,
    .nconfig = sizeof(odbc_sink_config_items) / sizeof(odbc_sink_config_items[0]),
    .config_size = sizeof(struct odbc_sink_config),
    .init = odbc_sink_init,
    .start = odbc_sink_start,
    .stop = odbc_sink_stop,
    .destroy = odbc_sink_destroy,
    .ops = &odbc_sink_ops,
};

SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entry(void)
{
    return &odbc_sink_plugin;
}
