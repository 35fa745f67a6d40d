/*
 * mysql_sink.c - the MySQL/MariaDB sink (MariaDB Connector/C): prepare (DDL
 * through the shared dialect layer), apply (prepared statements with array
 * binding: one round trip per run of rows; snapshot runs through LOAD DATA
 * LOCAL INFILE fed from memory), version-guarded upsert, tombstones, delete
 * log and the checkpoint, all in one InnoDB transaction per batch. See
 * docs/sink-mysql.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>

#include <sluice/sluice.h>
#include <sluice_sql/dialect.h>

#define D SLUICE_SQL_MYSQL
#define RUN_MAX_ROWS 1000        /* rows per array execution */
#define RUN_MAX_BYTES (4u << 20) /* and bytes, well under max_allowed_packet */
#define STMT_CACHE 32
#define LOAD_MIN_ROWS 2 /* shortest run of snapshot rows worth a LOAD DATA */

struct my_sink_config {
    const char *host;
    int64_t port;
    const char *user;
    const char *password;
    const char *database;
    const char *ssl_mode;
    const char *ssl_ca;
    int64_t connect_timeout;
    bool bulk;
    bool load_data;
};

static const struct sluice_config_item my_sink_config_items[] = {
    {"host", SLUICE_CFG_STRING, 0, "127.0.0.1", offsetof(struct my_sink_config, host),
     "server host name or address"},
    {"port", SLUICE_CFG_INT, 0, "3306", offsetof(struct my_sink_config, port), "server TCP port"},
    {"user", SLUICE_CFG_STRING, SLUICE_CFG_REQUIRED, NULL, offsetof(struct my_sink_config, user),
     "user name"},
    {"password", SLUICE_CFG_SECRET, 0, NULL, offsetof(struct my_sink_config, password),
     "password (or password_file / password_env); never logged"},
    {"database", SLUICE_CFG_STRING, SLUICE_CFG_REQUIRED, NULL,
     offsetof(struct my_sink_config, database),
     "database to connect to; also the target schema unless the profile sets target_schema"},
    {"ssl_mode", SLUICE_CFG_STRING, 0, "disable", offsetof(struct my_sink_config, ssl_mode),
     "disable | require (TLS, no certificate check) | verify (TLS, server certificate and host "
     "name checked against ssl_ca)"},
    {"ssl_ca", SLUICE_CFG_STRING, 0, NULL, offsetof(struct my_sink_config, ssl_ca),
     "PEM file of the CA that signed the server certificate (ssl_mode = verify)"},
    {"connect_timeout", SLUICE_CFG_INT, 0, "10",
     offsetof(struct my_sink_config, connect_timeout), "seconds to wait for a connection"},
    {"bulk", SLUICE_CFG_BOOL, 0, "true", offsetof(struct my_sink_config, bulk),
     "send runs of rows as one array-bound execution when the server supports it (MariaDB)"},
    {"load_data", SLUICE_CFG_BOOL, 0, "true", offsetof(struct my_sink_config, load_data),
     "initial sync: write runs of snapshot rows with LOAD DATA LOCAL INFILE fed from memory "
     "(needs local_infile=ON on the server; falls back to the upsert otherwise)"},
};

enum ssl_mode { SSL_DISABLE, SSL_REQUIRE, SSL_VERIFY };

struct stmt_slot {
    char *sql;
    MYSQL_STMT *stmt;
};

/* The rows of one pending array execution: nparams values per row. */
struct run {
    MYSQL_STMT *stmt;
    const struct sluice_entity *entity;
    bool arrays; /* the statement can run as one array execution */
    unsigned nparams;
    size_t nrows;
    size_t first_index;  /* batch index of row 0, for single-row errors */
    size_t *index;       /* batch index per row */
    size_t *off;         /* nrows * nparams offsets into data */
    unsigned long *len;  /* nrows * nparams lengths */
    char *ind;           /* nrows * nparams STMT_INDICATOR_* */
    enum enum_field_types *types; /* nparams */
    size_t cap_off, cap_len, cap_ind, cap_index, cap_types;
    /* column-wise binding arrays, built at flush */
    char **ptrs;
    unsigned long *clen;
    char *cind;
    size_t cap_ptrs, cap_clen, cap_cind;
};

struct my_sink {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    char *hostname, *user, *password, *database, *ssl_ca;
    unsigned port, timeout;
    enum ssl_mode ssl;
    bool bulk, load_data;
    char *profile, *schema, *prefix;
    bool delete_log;
    char target[512]; /* "MariaDB/MySQL 127.0.0.1:3306/db user u" for messages */

    MYSQL *conn;
    bool can_bulk;
    bool can_load; /* LOAD DATA LOCAL works on this connection (until it fails to) */
    bool meta_ready;
    struct stmt_slot stmts[STMT_CACHE];
    unsigned stmt_next;

    struct sluice_sql_buf sql, data, keys, scratch;
    struct run run;
    uint8_t *include;
    size_t cap_include;
    int64_t nulled; /* values the target cannot hold, written as NULL, this batch */

    /* the in-memory file a LOAD DATA LOCAL reads (only while load_active) */
    struct sluice_sql_buf load;
    size_t load_pos;
    bool load_active;
};

/* ---- errors ------------------------------------------------------------------- */

static bool errno_lost(unsigned e)
{
    return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_CONNECTION_ERROR ||
           e == CR_CONN_HOST_ERROR || e == 2055 /* lost at reading */ ||
           e == ER_CONNECTION_KILLED || e == 4031 /* idle disconnect */ ||
           e == ER_SERVER_SHUTDOWN || e == CR_COMMANDS_OUT_OF_SYNC;
}

static bool errno_transient(unsigned e)
{
    return errno_lost(e) || e == ER_LOCK_DEADLOCK || e == ER_LOCK_WAIT_TIMEOUT ||
           e == ER_CON_COUNT_ERROR || e == ER_NET_READ_INTERRUPTED ||
           e == ER_NET_WRITE_INTERRUPTED || e == ER_NET_READ_ERROR ||
           e == ER_NET_ERROR_ON_WRITE || e == ER_QUERY_INTERRUPTED ||
           e == ER_TOO_MANY_USER_CONNECTIONS || e == CR_UNKNOWN_HOST;
}

/* MySQL messages quote offending values ("Duplicate entry '...'", "Incorrect
 * integer value: '...'"): drop those, keep quoted names */
static bool ends_with(const char *start, const char *p, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(p - start) >= n && strncmp(p - n, word, n) == 0;
}

static void scrub(char *dst, size_t cap, const char *msg)
{
    size_t n = 0;
    bool in = false;
    for (const char *p = msg; *p && n + 4 < cap; p++) {
        if (*p == '\'' && (in || ends_with(msg, p, "entry ") || ends_with(msg, p, "value: ") ||
                           ends_with(msg, p, "value "))) {
            if (!in) {
                memcpy(dst + n, "'?'", 3);
                n += 3;
            }
            in = !in;
            continue;
        }
        if (!in && *p != '\n')
            dst[n++] = *p;
    }
    dst[n] = '\0';
}

static void drop_conn(struct my_sink *s)
{
    for (unsigned i = 0; i < STMT_CACHE; i++) {
        if (s->stmts[i].stmt)
            mysql_stmt_close(s->stmts[i].stmt);
        free(s->stmts[i].sql);
        s->stmts[i].stmt = NULL;
        s->stmts[i].sql = NULL;
    }
    s->run.stmt = NULL;
    s->run.nrows = 0;
    if (s->conn)
        mysql_close(s->conn);
    s->conn = NULL;
    s->meta_ready = false;
}

/* Report an error (errno e, message msg): RETRY or ERR; a lost connection is
 * closed so that the next call reconnects. */
static int my_fail_with(struct my_sink *s, unsigned e, const char *sqlstate, const char *msg,
                        const char *what, const char *entity)
{
    char clean[512];
    scrub(clean, sizeof(clean), msg ? msg : "unknown error");
    int rc = errno_transient(e) ? SLUICE_RETRY : SLUICE_ERR;
    s->host->set_error(s->ctx, "%s%s%s on %s: %s (error %u, SQLSTATE %s)%s", what,
                       entity ? " of entity " : "", entity ? entity : "", s->target, clean, e,
                       sqlstate ? sqlstate : "HY000",
                       rc == SLUICE_RETRY ? "; will retry"
                                          : "; fix the target or the data, then resync the record");
    if (errno_lost(e))
        drop_conn(s);
    return rc;
}

static int my_fail(struct my_sink *s, const char *what, const char *entity)
{
    return my_fail_with(s, mysql_errno(s->conn), mysql_sqlstate(s->conn), mysql_error(s->conn),
                        what, entity);
}

static int my_stmt_fail(struct my_sink *s, MYSQL_STMT *st, const char *what, const char *entity)
{
    return my_fail_with(s, mysql_stmt_errno(st), mysql_stmt_sqlstate(st), mysql_stmt_error(st),
                        what, entity);
}

static int my_oom(struct my_sink *s)
{
    s->host->set_error(s->ctx, "out of memory building SQL for %s", s->target);
    return SLUICE_NOMEM;
}

static int my_query(struct my_sink *s, const char *sql, const char *what, const char *entity)
{
    if (mysql_real_query(s->conn, sql, strlen(sql)) != 0)
        return my_fail(s, what, entity);
    MYSQL_RES *res = mysql_store_result(s->conn);
    if (res)
        mysql_free_result(res);
    return SLUICE_OK;
}

/* ---- lifecycle ----------------------------------------------------------------- */

static void my_sink_free(struct my_sink *s)
{
    if (!s)
        return;
    drop_conn(s);
    free(s->hostname);
    free(s->user);
    if (s->password) {
        explicit_bzero(s->password, strlen(s->password));
        free(s->password);
    }
    free(s->database);
    free(s->ssl_ca);
    free(s->profile);
    free(s->schema);
    free(s->prefix);
    sluice_sql_buf_free(&s->sql);
    sluice_sql_buf_free(&s->data);
    sluice_sql_buf_free(&s->keys);
    sluice_sql_buf_free(&s->scratch);
    sluice_sql_buf_free(&s->load);
    free(s->run.index);
    free(s->run.off);
    free(s->run.len);
    free(s->run.ind);
    free(s->run.types);
    free(s->run.ptrs);
    free(s->run.clen);
    free(s->run.cind);
    free(s->include);
    free(s);
}

static char *dup_or_null(const char *p)
{
    return p ? strdup(p) : NULL;
}

static int my_sink_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                        const struct sluice_init_args *args, void **inst)
{
    const struct my_sink_config *cfg = args->config;
    struct my_sink *s = NULL;
    int rc = SLUICE_ERR;
    enum ssl_mode ssl;

    if (cfg->port < 1 || cfg->port > 65535) {
        host->set_error(ctx, "key 'port' must be 1..65535, got %" PRId64, cfg->port);
        goto out;
    }
    if (cfg->connect_timeout < 1 || cfg->connect_timeout > 3600) {
        host->set_error(ctx, "key 'connect_timeout' must be 1..3600 seconds, got %" PRId64,
                        cfg->connect_timeout);
        goto out;
    }
    if (!cfg->ssl_mode || strcmp(cfg->ssl_mode, "disable") == 0) {
        ssl = SSL_DISABLE;
    } else if (strcmp(cfg->ssl_mode, "require") == 0) {
        ssl = SSL_REQUIRE;
    } else if (strcmp(cfg->ssl_mode, "verify") == 0) {
        ssl = SSL_VERIFY;
    } else {
        host->set_error(ctx, "key 'ssl_mode' must be \"disable\", \"require\" or \"verify\", "
                             "got \"%s\"", cfg->ssl_mode);
        goto out;
    }
    if (ssl == SSL_VERIFY && (!cfg->ssl_ca || !*cfg->ssl_ca)) {
        host->set_error(ctx, "ssl_mode = \"verify\" needs key 'ssl_ca': the PEM file of the CA "
                             "that signed the server certificate");
        goto out;
    }
    if (!cfg->user || !*cfg->user || !cfg->database || !*cfg->database) {
        host->set_error(ctx, "keys 'user' and 'database' must not be empty");
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    s->host = host;
    s->ctx = ctx;
    s->hostname = strdup(cfg->host ? cfg->host : "127.0.0.1");
    s->user = strdup(cfg->user);
    s->password = dup_or_null(cfg->password);
    s->database = strdup(cfg->database);
    s->ssl_ca = dup_or_null(cfg->ssl_ca);
    s->port = (unsigned)cfg->port;
    s->timeout = (unsigned)cfg->connect_timeout;
    s->ssl = ssl;
    s->bulk = cfg->bulk;
    s->load_data = cfg->load_data;
    s->profile = strdup(args->profile ? args->profile : "");
    s->schema = strdup(args->target_schema && *args->target_schema ? args->target_schema
                                                                      : cfg->database);
    s->prefix = strdup(args->table_prefix ? args->table_prefix : "");
    s->delete_log = args->delete_log;
    if (!s->hostname || !s->user || (cfg->password && !s->password) || !s->database ||
        (cfg->ssl_ca && !s->ssl_ca) || !s->profile || !s->schema || !s->prefix) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    snprintf(s->target, sizeof(s->target), "MariaDB/MySQL %s:%u/%s user %s", s->hostname,
             s->port, s->database, s->user);
    *inst = s;
    s = NULL;
    rc = SLUICE_OK;
out:
    my_sink_free(s);
    return rc;
}

/* ---- LOAD DATA LOCAL from memory ------------------------------------------------------ */

/* The name the LOAD DATA statement asks for; the handler serves nothing else,
 * so the server can never make the client read a local file. */
#define LOAD_NAME "sluice-snapshot-rows"

static int infile_init(void **ptr, const char *filename, void *userdata)
{
    struct my_sink *s = userdata;
    *ptr = s;
    if (!s->load_active || strcmp(filename, LOAD_NAME) != 0)
        return 1; /* refused: not a load this sink started */
    s->load_pos = 0;
    return 0;
}

static int infile_read(void *ptr, char *buf, unsigned int buf_len)
{
    struct my_sink *s = ptr;
    if (!s->load_active)
        return -1;
    size_t n = s->load.len - s->load_pos;
    if (n > buf_len)
        n = buf_len;
    memcpy(buf, s->load.data + s->load_pos, n);
    s->load_pos += n;
    return (int)n;
}

static void infile_end(void *ptr)
{
    (void)ptr;
}

static int infile_error(void *ptr, char *msg, unsigned int msg_len)
{
    (void)ptr;
    snprintf(msg, msg_len, "sink-mysql serves only its own in-memory rows to LOAD DATA LOCAL");
    return CR_UNKNOWN_ERROR;
}

static int my_connect(struct my_sink *s)
{
    int rc = SLUICE_ERR;
    s->conn = mysql_init(NULL);
    if (!s->conn) {
        s->host->set_error(s->ctx, "cannot connect to %s: out of memory", s->target);
        return SLUICE_NOMEM;
    }
    mysql_options(s->conn, MYSQL_OPT_CONNECT_TIMEOUT, &s->timeout);
    mysql_options(s->conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (s->load_data) {
        unsigned int on = 1;
        mysql_options(s->conn, MYSQL_OPT_LOCAL_INFILE, &on);
        mysql_set_local_infile_handler(s->conn, infile_init, infile_read, infile_end,
                                       infile_error, s);
    }
    if (s->ssl != SSL_DISABLE) {
        my_bool yes = 1, verify = s->ssl == SSL_VERIFY;
        mysql_options(s->conn, MYSQL_OPT_SSL_ENFORCE, &yes);
        mysql_options(s->conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
        if (s->ssl_ca)
            mysql_options(s->conn, MYSQL_OPT_SSL_CA, s->ssl_ca);
    }
    if (!mysql_real_connect(s->conn, s->hostname, s->user, s->password, s->database, s->port,
                            NULL, 0)) {
        unsigned e = mysql_errno(s->conn);
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", mysql_error(s->conn));
        if (errno_transient(e)) {
            s->host->set_error(s->ctx, "cannot connect to %s: %s (error %u); will retry",
                               s->target, msg, e);
            rc = SLUICE_RETRY;
        } else {
            s->host->set_error(s->ctx, "cannot log in to %s: %s (error %u); check host, port, "
                                       "user, database, the password (password_file / "
                                       "password_env) and the TLS settings",
                               s->target, msg, e);
            rc = SLUICE_ERR;
        }
        mysql_close(s->conn);
        s->conn = NULL;
        return rc;
    }
    s->can_load = s->load_data;
    s->can_bulk = false;
    if (s->bulk) {
        unsigned long ext = 0;
        mariadb_get_infov(s->conn, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES, &ext);
        s->can_bulk = (ext & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32)) != 0;
    }
    /* strict: a value the column cannot take is an error, never silently cut */
    rc = my_query(s, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,"
                     "NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'",
                  "session setup", NULL);
    if (rc == SLUICE_OK && mysql_autocommit(s->conn, 0) != 0)
        rc = my_fail(s, "session setup", NULL);
    return rc;
}

static int my_sink_start(void *inst)
{
    struct my_sink *s = inst;
    if (s->conn)
        return SLUICE_OK;
    return my_connect(s);
}

static void my_sink_stop(void *inst)
{
    drop_conn(inst);
}

static void my_sink_destroy(void *inst)
{
    my_sink_free(inst);
}

static int ensure_conn(struct my_sink *s)
{
    if (s->conn)
        return SLUICE_OK;
    return my_connect(s);
}

/* ---- prepared statements ---------------------------------------------------------- */

/* The prepared statement for sql, from the cache or newly prepared. */
static int stmt_for(struct my_sink *s, const char *sql, MYSQL_STMT **out, const char *entity)
{
    for (unsigned i = 0; i < STMT_CACHE; i++) {
        if (s->stmts[i].sql && strcmp(s->stmts[i].sql, sql) == 0) {
            *out = s->stmts[i].stmt;
            return SLUICE_OK;
        }
    }
    MYSQL_STMT *st = mysql_stmt_init(s->conn);
    if (!st)
        return my_oom(s);
    if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
        int rc = my_stmt_fail(s, st, "prepare", entity);
        mysql_stmt_close(st);
        return rc;
    }
    struct stmt_slot *slot = &s->stmts[s->stmt_next++ % STMT_CACHE];
    if (slot->stmt) {
        if (s->run.stmt == slot->stmt)
            s->run.stmt = NULL;
        mysql_stmt_close(slot->stmt);
    }
    free(slot->sql);
    slot->sql = strdup(sql);
    slot->stmt = st;
    if (!slot->sql) {
        mysql_stmt_close(st);
        slot->stmt = NULL;
        return my_oom(s);
    }
    *out = st;
    return SLUICE_OK;
}

/* Run a statement with n text/blob parameters (vals[i] NULL = SQL NULL). */
static int exec_params(struct my_sink *s, const char *sql, unsigned n, const char *const *vals,
                       const unsigned long *lens, const enum enum_field_types *types,
                       const char *what, const char *entity, uint64_t *affected)
{
    MYSQL_STMT *st;
    MYSQL_BIND bind[8];
    my_bool nulls[8];
    unsigned long l[8];
    int rc = stmt_for(s, sql, &st, entity);
    if (rc != SLUICE_OK)
        return rc;
    unsigned int one = 0; /* 0: not an array execution */
    mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &one);
    memset(bind, 0, sizeof(bind));
    for (unsigned i = 0; i < n && i < 8; i++) {
        nulls[i] = vals[i] == NULL;
        l[i] = vals[i] ? (lens ? lens[i] : strlen(vals[i])) : 0;
        bind[i].buffer_type = types ? types[i] : MYSQL_TYPE_STRING;
        bind[i].buffer = (void *)vals[i];
        bind[i].buffer_length = l[i];
        bind[i].length = &l[i];
        bind[i].is_null = &nulls[i];
    }
    if (mysql_stmt_bind_param(st, bind) != 0 || mysql_stmt_execute(st) != 0)
        return my_stmt_fail(s, st, what, entity);
    if (affected)
        *affected = mysql_stmt_affected_rows(st);
    mysql_stmt_free_result(st);
    return SLUICE_OK;
}

/*
 * Run a query with text parameters and call row(arg, values, lengths, n) for
 * every result row (all columns fetched as text, up to 1 KiB each).
 */
typedef int (*row_fn)(void *arg, char **vals, unsigned long *lens, unsigned n);

static int query_rows(struct my_sink *s, const char *sql, unsigned n, const char *const *vals,
                      row_fn cb, void *arg, const char *what)
{
    enum { NCOL = 4, CAP = 1024 };
    MYSQL_STMT *st;
    MYSQL_BIND bind[NCOL], out[NCOL];
    unsigned long l[NCOL], ol[NCOL];
    my_bool onull[NCOL], oerr[NCOL];
    char bufs[NCOL][CAP];
    char *ptrs[NCOL];
    int rc = stmt_for(s, sql, &st, NULL);
    if (rc != SLUICE_OK)
        return rc;
    unsigned int one = 0; /* 0: not an array execution */
    mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &one);
    memset(bind, 0, sizeof(bind));
    memset(out, 0, sizeof(out));
    for (unsigned i = 0; i < n && i < NCOL; i++) {
        l[i] = strlen(vals[i]);
        bind[i].buffer_type = MYSQL_TYPE_STRING;
        bind[i].buffer = (void *)vals[i];
        bind[i].buffer_length = l[i];
        bind[i].length = &l[i];
    }
    if (mysql_stmt_bind_param(st, bind) != 0 || mysql_stmt_execute(st) != 0)
        return my_stmt_fail(s, st, what, NULL);
    unsigned ncol = mysql_stmt_field_count(st);
    if (ncol > NCOL)
        ncol = NCOL;
    for (unsigned i = 0; i < ncol; i++) {
        out[i].buffer_type = MYSQL_TYPE_BLOB;
        out[i].buffer = bufs[i];
        out[i].buffer_length = CAP - 1;
        out[i].length = &ol[i];
        out[i].is_null = &onull[i];
        out[i].error = &oerr[i];
        ptrs[i] = bufs[i];
    }
    if (mysql_stmt_bind_result(st, out) != 0 || mysql_stmt_store_result(st) != 0) {
        rc = my_stmt_fail(s, st, what, NULL);
        goto out;
    }
    int f;
    while ((f = mysql_stmt_fetch(st)) == 0 || f == MYSQL_DATA_TRUNCATED) {
        for (unsigned i = 0; i < ncol; i++) {
            if (ol[i] > CAP - 1)
                ol[i] = CAP - 1;
            bufs[i][ol[i]] = '\0';
            if (onull[i])
                ol[i] = (unsigned long)-1;
        }
        rc = cb(arg, ptrs, ol, ncol);
        if (rc != SLUICE_OK)
            goto out;
    }
    if (f == 1)
        rc = my_stmt_fail(s, st, what, NULL);
out:
    if (s->conn)
        mysql_stmt_free_result(st);
    return rc;
}

/* ---- DDL ----------------------------------------------------------------------------- */

/*
 * DDL commits implicitly in MySQL, so it runs outside the apply transaction,
 * under a named lock: the apply workers of a profile each have a connection.
 */
static int ddl_lock(struct my_sink *s, bool take)
{
    const char *v[1] = {"sluice sink-mysql ddl"};
    return exec_params(s, take ? "SELECT GET_LOCK(?, 60)" : "SELECT RELEASE_LOCK(?)", 1, v, NULL,
                       NULL, "DDL lock", NULL, NULL);
}

static int ensure_meta(struct my_sink *s)
{
    int rc = ensure_conn(s);
    if (rc != SLUICE_OK || s->meta_ready)
        return rc;
    rc = ddl_lock(s, true);
    if (rc != SLUICE_OK)
        return rc;
    for (int step = 0; step < 4 && rc == SLUICE_OK; step++) {
        sluice_sql_buf_reset(&s->sql);
        switch (step) {
        case 0: sluice_sql_create_schema(&s->sql, D, s->schema); break;
        case 1: sluice_sql_create_checkpoint_table(&s->sql, D, s->schema); break;
        case 2: sluice_sql_create_tombstone_table(&s->sql, D, s->schema); break;
        case 3:
            if (!s->delete_log)
                continue;
            sluice_sql_create_delete_log_table(&s->sql, D, s->schema, s->prefix);
            break;
        }
        if (s->sql.failed)
            rc = my_oom(s);
        else
            rc = my_query(s, sluice_sql_buf_str(&s->sql), "create metadata tables", NULL);
    }
    if (s->conn) {
        int unlock = ddl_lock(s, false);
        if (rc == SLUICE_OK)
            rc = unlock;
    }
    if (rc == SLUICE_OK)
        s->meta_ready = true;
    return rc;
}

static struct sluice_sql_table table_of(const struct my_sink *s, const struct sluice_entity *e)
{
    struct sluice_sql_table t = {.schema = s->schema, .prefix = s->prefix, .name = e->name};
    return t;
}

struct columns_seen {
    const struct sluice_entity *e;
    uint8_t *have;
};

static int column_seen(void *arg, char **vals, unsigned long *lens, unsigned n)
{
    struct columns_seen *cs = arg;
    (void)lens;
    for (uint32_t i = 0; n >= 1 && i < cs->e->ncolumns; i++)
        if (strcmp(cs->e->columns[i].name, vals[0]) == 0)
            cs->have[i] = 1;
    return SLUICE_OK;
}

static int my_sink_prepare(void *inst, const struct sluice_entity *e)
{
    struct my_sink *s = inst;
    struct sluice_sql_table t = table_of(s, e);
    uint8_t *have = NULL;
    int rc;

    if (e->nkeys == 0) {
        s->host->set_error(s->ctx, "entity \"%s\" has no key: the MySQL sink needs one to apply "
                                   "updates and deletes; declare a key in the source",
                           e->name);
        return SLUICE_ERR;
    }
    rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    rc = ddl_lock(s, true);
    if (rc != SLUICE_OK)
        return rc;
    sluice_sql_buf_reset(&s->sql);
    if (sluice_sql_create_table(&s->sql, D, &t, e) != 0) {
        s->host->set_error(s->ctx, "entity \"%s\": cannot map its columns to MySQL types",
                           e->name);
        rc = SLUICE_ERR;
        goto out;
    }
    /* utf8mb4 with a binary collation: text compares byte for byte, as in the source */
    sluice_sql_buf_puts(&s->sql, " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
    if (s->sql.failed) {
        rc = my_oom(s);
        goto out;
    }
    rc = my_query(s, sluice_sql_buf_str(&s->sql), "create table", e->name);
    if (rc != SLUICE_OK)
        goto out;

    /* columns that appeared since the table was made; never drop one */
    have = calloc(e->ncolumns + 1, 1);
    if (!have) {
        rc = my_oom(s);
        goto out;
    }
    sluice_sql_buf_reset(&s->scratch);
    sluice_sql_buf_puts(&s->scratch, s->prefix);
    sluice_sql_buf_puts(&s->scratch, e->name);
    const char *params[2] = {s->schema, sluice_sql_buf_str(&s->scratch)};
    struct columns_seen cs = {.e = e, .have = have};
    rc = query_rows(s, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
                       "TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                    2, params, column_seen, &cs, "read columns");
    if (rc != SLUICE_OK)
        goto out;
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        if (have[i])
            continue;
        sluice_sql_buf_reset(&s->sql);
        if (sluice_sql_add_column(&s->sql, D, &t, &e->columns[i]) != 0 || s->sql.failed) {
            rc = my_oom(s);
            goto out;
        }
        rc = my_query(s, sluice_sql_buf_str(&s->sql), "add column", e->name);
        if (rc != SLUICE_OK)
            goto out;
        s->host->log(s->ctx, SLUICE_LOG_INFO, "entity \"%s\": added column \"%s\" to the target",
                     e->name, e->columns[i].name);
    }
out:
    free(have);
    if (s->conn) {
        int unlock = ddl_lock(s, false);
        if (rc == SLUICE_OK)
            rc = unlock;
    }
    return rc;
}

/* ---- apply: runs of rows --------------------------------------------------------------- */

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

/* Execute the pending run: one array execution (MariaDB) or one per row. */
static int run_flush(struct my_sink *s, size_t *failed)
{
    struct run *r = &s->run;
    MYSQL_BIND *bind = NULL;
    int rc = SLUICE_OK;
    if (r->nrows == 0)
        return SLUICE_OK;
    if (s->data.failed)
        return my_oom(s);
    bind = calloc(r->nparams, sizeof(*bind));
    /* column-wise arrays: param j's rows are contiguous */
    size_t cells = r->nrows * r->nparams;
    if (!bind || !grow((void **)&r->ptrs, &r->cap_ptrs, cells, sizeof(*r->ptrs)) ||
        !grow((void **)&r->clen, &r->cap_clen, cells, sizeof(*r->clen)) ||
        !grow((void **)&r->cind, &r->cap_cind, cells, 1)) {
        rc = my_oom(s);
        goto out;
    }
    for (size_t row = 0; row < r->nrows; row++) {
        for (unsigned j = 0; j < r->nparams; j++) {
            size_t from = row * r->nparams + j, to = (size_t)j * r->nrows + row;
            r->ptrs[to] = s->data.data + r->off[from];
            r->clen[to] = r->len[from];
            r->cind[to] = r->ind[from];
        }
    }
    if (s->can_bulk && r->arrays && r->nrows > 1) {
        unsigned int n = (unsigned int)r->nrows;
        for (unsigned j = 0; j < r->nparams; j++) {
            bind[j].buffer_type = r->types[j];
            bind[j].buffer = &r->ptrs[(size_t)j * r->nrows];
            bind[j].length = &r->clen[(size_t)j * r->nrows];
            bind[j].u.indicator = &r->cind[(size_t)j * r->nrows];
        }
        if (mysql_stmt_attr_set(r->stmt, STMT_ATTR_ARRAY_SIZE, &n) != 0 ||
            mysql_stmt_bind_param(r->stmt, bind) != 0 || mysql_stmt_execute(r->stmt) != 0) {
            rc = my_stmt_fail(s, r->stmt, "write rows", r->entity->name);
            goto out;
        }
    } else {
        unsigned int one = 0; /* 0: not an array execution */
        my_bool *nulls = calloc(r->nparams, sizeof(*nulls));
        if (!nulls) {
            rc = my_oom(s);
            goto out;
        }
        mysql_stmt_attr_set(r->stmt, STMT_ATTR_ARRAY_SIZE, &one);
        for (size_t row = 0; row < r->nrows && rc == SLUICE_OK; row++) {
            for (unsigned j = 0; j < r->nparams; j++) {
                size_t at = (size_t)j * r->nrows + row;
                nulls[j] = r->cind[at] == STMT_INDICATOR_NULL;
                bind[j].buffer_type = r->types[j];
                bind[j].buffer = r->ptrs[at];
                bind[j].buffer_length = r->clen[at];
                bind[j].length = &r->clen[at];
                bind[j].is_null = &nulls[j];
            }
            if (mysql_stmt_bind_param(r->stmt, bind) != 0 || mysql_stmt_execute(r->stmt) != 0) {
                rc = my_stmt_fail(s, r->stmt, "write row", r->entity->name);
                if (rc == SLUICE_ERR)
                    *failed = r->index[row];
            }
        }
        free(nulls);
        goto out;
    }
out:
    if (rc == SLUICE_ERR && r->nrows == 1)
        *failed = r->index[0];
    free(bind);
    r->nrows = 0;
    sluice_sql_buf_reset(&s->data);
    return rc;
}

/* Does the entity have tombstones of this profile? */
static int tomb_found(void *arg, char **vals, unsigned long *lens, unsigned n)
{
    (void)vals, (void)lens, (void)n;
    *(bool *)arg = true;
    return SLUICE_OK;
}

static int has_tombstones(struct my_sink *s, const struct sluice_entity *e, bool *yes)
{
    struct sluice_sql_table tt = {.schema = s->schema, .name = SLUICE_SQL_TOMBSTONE_TABLE};
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_buf_puts(&s->sql, "SELECT 1 FROM ");
    sluice_sql_table_name(&s->sql, D, &tt);
    sluice_sql_buf_puts(&s->sql, " WHERE `profile` = ? AND `entity` = ? LIMIT 1");
    if (s->sql.failed)
        return my_oom(s);
    const char *params[2] = {s->profile, e->name};
    *yes = false;
    return query_rows(s, sluice_sql_buf_str(&s->sql), 2, params, tomb_found, yes,
                      "read tombstones");
}

/*
 * The upsert for entity e with the include mask: from parameters, or, when
 * the entity has tombstones, from a SELECT that yields nothing when a
 * tombstone at least as new exists (no resurrection).
 */
static int upsert_sql(struct my_sink *s, const struct sluice_entity *e, const uint8_t *include,
                      bool guarded, unsigned *nparams)
{
    unsigned n = 1;
    for (uint32_t c = 0; c < e->ncolumns; c++)
        n += include[c];
    sluice_sql_buf_reset(&s->sql);
    struct sluice_sql_table t = table_of(s, e);
    if (!guarded) {
        *nparams = n;
        sluice_sql_upsert(&s->sql, D, &t, e, include, NULL);
        return s->sql.failed ? my_oom(s) : SLUICE_OK;
    }
    struct sluice_sql_buf sel = {0};
    struct sluice_sql_table tt = {.schema = s->schema, .name = SLUICE_SQL_TOMBSTONE_TABLE};
    sluice_sql_buf_puts(&sel, "SELECT ");
    for (unsigned i = 0; i < n; i++)
        sluice_sql_buf_puts(&sel, i ? ", ?" : "?");
    sluice_sql_buf_puts(&sel, " FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM ");
    sluice_sql_table_name(&sel, D, &tt);
    sluice_sql_buf_puts(&sel, " WHERE `profile` = ? AND `entity` = ? AND `record_key` = ? AND "
                              "`version` >= ?)");
    sluice_sql_upsert(&s->sql, D, &t, e, include, sluice_sql_buf_str(&sel));
    bool oom = sel.failed || s->sql.failed;
    sluice_sql_buf_free(&sel);
    *nparams = n + 4;
    return oom ? my_oom(s) : SLUICE_OK;
}

/* add one cell to row `row` of the run */
static void cell(struct my_sink *s, size_t at, const void *p, size_t n, char ind)
{
    s->run.off[at] = s->data.len;
    s->run.len[at] = (unsigned long)n;
    s->run.ind[at] = ind;
    if (n)
        sluice_sql_buf_append(&s->data, p, n);
}

/* Append event i (not a delete) to the run; start a new run when its shape differs. */
static int add_upsert(struct my_sink *s, const struct sluice_batch *batch, size_t i,
                      bool guarded, size_t *failed)
{
    const struct sluice_event *ev = &batch->events[i];
    const struct sluice_entity *e = ev->entity;
    int rc;
    if (!grow((void **)&s->include, &s->cap_include, e->ncolumns, 1))
        return my_oom(s);
    for (uint32_t c = 0; c < e->ncolumns; c++)
        s->include[c] = ev->op != SLUICE_OP_UPDATE || ev->values[c].state != SLUICE_ABSENT ||
                        (e->columns[c].flags & SLUICE_COL_KEY);
    unsigned nparams;
    rc = upsert_sql(s, e, s->include, guarded, &nparams);
    if (rc != SLUICE_OK)
        return rc;
    MYSQL_STMT *st;
    rc = stmt_for(s, sluice_sql_buf_str(&s->sql), &st, e->name);
    if (rc != SLUICE_OK)
        return rc;
    struct run *r = &s->run;
    if (r->nrows && (r->stmt != st || r->nrows >= RUN_MAX_ROWS || s->data.len >= RUN_MAX_BYTES)) {
        rc = run_flush(s, failed);
        if (rc != SLUICE_OK)
            return rc;
    }
    if (r->nrows == 0) {
        r->stmt = st;
        r->entity = e;
        /* MariaDB runs INSERT .. VALUES as an array, not INSERT .. SELECT */
        r->arrays = !guarded;
        r->nparams = nparams;
        r->first_index = i;
        if (!grow((void **)&r->types, &r->cap_types, nparams, sizeof(*r->types)))
            return my_oom(s);
        unsigned j = 0;
        for (uint32_t c = 0; c < e->ncolumns; c++)
            if (s->include[c])
                r->types[j++] = e->columns[c].type == SLUICE_T_BYTES ? MYSQL_TYPE_BLOB
                                                                      : MYSQL_TYPE_STRING;
        for (; j < nparams; j++)
            r->types[j] = MYSQL_TYPE_STRING;
    }
    size_t need = (r->nrows + 1) * nparams;
    if (!grow((void **)&r->off, &r->cap_off, need, sizeof(*r->off)) ||
        !grow((void **)&r->len, &r->cap_len, need, sizeof(*r->len)) ||
        !grow((void **)&r->ind, &r->cap_ind, need, 1) ||
        !grow((void **)&r->index, &r->cap_index, r->nrows + 1, sizeof(*r->index)))
        return my_oom(s);
    size_t base = r->nrows * nparams, j = 0;
    for (uint32_t c = 0; c < e->ncolumns; c++) {
        if (!s->include[c])
            continue;
        const struct sluice_value *v = &ev->values[c];
        size_t at = base + j++;
        if (v->state != SLUICE_PRESENT) {
            cell(s, at, NULL, 0, STMT_INDICATOR_NULL);
            continue;
        }
        size_t mark = s->data.len;
        int vr = sluice_sql_value_text(&s->data, D, &e->columns[c], v);
        if (vr < 0) {
            s->host->set_error(s->ctx, "entity \"%s\": event %zu, column \"%s\": the value is "
                                       "not a valid %s",
                               e->name, i, e->columns[c].name,
                               sluice_type_name(e->columns[c].type));
            *failed = i;
            return SLUICE_ERR;
        }
        s->run.off[at] = mark;
        s->run.len[at] = (unsigned long)(s->data.len - mark);
        s->run.ind[at] = vr == 1 ? STMT_INDICATOR_NULL : STMT_INDICATOR_NONE;
        if (vr == 1)
            s->nulled++;
    }
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, ev->version);
    cell(s, base + j++, num, strlen(num), STMT_INDICATOR_NONE);
    if (guarded) {
        sluice_sql_buf_reset(&s->keys);
        if (sluice_sql_record_key(&s->keys, D, ev, &s->scratch) != 0) {
            s->host->set_error(s->ctx, "entity \"%s\": event %zu has a missing or invalid key "
                                       "value", e->name, i);
            *failed = i;
            return SLUICE_ERR;
        }
        cell(s, base + j++, s->profile, strlen(s->profile), STMT_INDICATOR_NONE);
        cell(s, base + j++, e->name, strlen(e->name), STMT_INDICATOR_NONE);
        cell(s, base + j++, s->keys.data, s->keys.len, STMT_INDICATOR_NONE);
        cell(s, base + j++, num, strlen(num), STMT_INDICATOR_NONE);
    }
    r->index[r->nrows++] = i;
    return SLUICE_OK;
}

/* ---- apply: snapshot fast path ------------------------------------------------------ */

static bool load_special(char c)
{
    return c == '\\' || c == '\t' || c == '\n' || c == '\0';
}

/* Escape what was appended to s->load since mark for FIELDS TERMINATED BY '\t'
 * ESCAPED BY '\\' LINES TERMINATED BY '\n' (most values need nothing). */
static void load_escape_from(struct my_sink *s, size_t mark)
{
    struct sluice_sql_buf *b = &s->load;
    size_t i = mark;
    if (b->failed)
        return;
    while (i < b->len && !load_special(b->data[i]))
        i++;
    if (i == b->len)
        return;
    sluice_sql_buf_reset(&s->scratch);
    sluice_sql_buf_append(&s->scratch, b->data + i, b->len - i);
    if (s->scratch.failed) {
        b->failed = true;
        return;
    }
    b->len = i;
    b->data[i] = '\0';
    size_t from = 0;
    for (size_t k = 0; k < s->scratch.len; k++) {
        char c = s->scratch.data[k];
        if (!load_special(c))
            continue;
        sluice_sql_buf_append(b, s->scratch.data + from, k - from);
        sluice_sql_buf_putc(b, '\\');
        sluice_sql_buf_putc(b, c == '\t' ? 't' : c == '\n' ? 'n' : c == '\0' ? '0' : '\\');
        from = k + 1;
    }
    sluice_sql_buf_append(b, s->scratch.data + from, s->scratch.len - from);
}

/* errors that mean LOAD DATA LOCAL cannot work on this connection */
static bool load_unavailable(unsigned e)
{
    return e == ER_NOT_ALLOWED_COMMAND || e == 4166 /* capability disabled */ ||
           (e >= CR_MIN_ERROR && e <= CR_MAX_ERROR);
}

/*
 * Snapshot fast path: events lo..hi-1 are READs of one entity that has no
 * tombstones, so they can be loaded straight into the target with LOAD DATA
 * LOCAL INFILE, fed from memory, inside a savepoint. With LOCAL the server
 * skips duplicate keys and bad values with warnings instead of failing: if
 * it stored fewer rows than sent, or warned at all (a replay met existing
 * rows, or a value did not fit), roll back to the savepoint and leave the
 * run to the guarded upsert (*done false), which decides row by row.
 */
static int apply_load(struct my_sink *s, const struct sluice_batch *batch, size_t lo, size_t hi,
                      size_t *failed, bool *done)
{
    const struct sluice_entity *e = batch->events[lo].entity;
    struct sluice_sql_table t = table_of(s, e);
    int64_t nulled = s->nulled;
    int rc = SLUICE_OK;

    *done = false;
    sluice_sql_buf_reset(&s->load);
    for (size_t i = lo; i < hi; i++) {
        const struct sluice_event *ev = &batch->events[i];
        for (uint32_t c = 0; c < e->ncolumns; c++) {
            const struct sluice_value *v = &ev->values[c];
            size_t mark = s->load.len;
            int vr = v->state == SLUICE_PRESENT
                         ? sluice_sql_value_text(&s->load, D, &e->columns[c], v)
                         : 1;
            if (vr < 0) {
                s->host->set_error(s->ctx, "entity \"%s\": event %zu, column \"%s\": the "
                                           "value is not a valid %s",
                                   e->name, i, e->columns[c].name,
                                   sluice_type_name(e->columns[c].type));
                *failed = i;
                rc = SLUICE_ERR;
                goto out;
            }
            if (vr == 1) {
                if (v->state == SLUICE_PRESENT)
                    s->nulled++;
                if (!s->load.failed)
                    s->load.len = mark;
                sluice_sql_buf_puts(&s->load, "\\N");
            } else {
                load_escape_from(s, mark);
            }
            sluice_sql_buf_putc(&s->load, '\t');
        }
        sluice_sql_buf_printf(&s->load, "%" PRIu64 "\n", ev->version);
    }
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_buf_puts(&s->sql, "LOAD DATA LOCAL INFILE '" LOAD_NAME "' INTO TABLE ");
    sluice_sql_table_name(&s->sql, D, &t);
    sluice_sql_buf_puts(&s->sql, " CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' "
                                 "ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (");
    for (uint32_t c = 0; c < e->ncolumns; c++) {
        sluice_sql_ident(&s->sql, D, e->columns[c].name);
        sluice_sql_buf_puts(&s->sql, ", ");
    }
    sluice_sql_ident(&s->sql, D, SLUICE_SQL_COL_VERSION);
    sluice_sql_buf_puts(&s->sql, ") SET ");
    sluice_sql_ident(&s->sql, D, SLUICE_SQL_COL_FIRST_SYNC);
    sluice_sql_buf_printf(&s->sql, " = %s, ", sluice_sql_now(D));
    sluice_sql_ident(&s->sql, D, SLUICE_SQL_COL_LAST_SYNC);
    sluice_sql_buf_printf(&s->sql, " = %s", sluice_sql_now(D));
    if (s->sql.failed || s->load.failed) {
        rc = my_oom(s);
        goto out;
    }
    rc = my_query(s, "SAVEPOINT sluice_load", "savepoint", e->name);
    if (rc != SLUICE_OK)
        goto out;
    s->load_active = true;
    int q = mysql_real_query(s->conn, s->sql.data, s->sql.len);
    s->load_active = false;
    if (q != 0) {
        unsigned eno = mysql_errno(s->conn);
        if (errno_transient(eno)) {
            rc = my_fail(s, "LOAD DATA", e->name);
            goto out;
        }
        if (load_unavailable(eno)) {
            char clean[512];
            scrub(clean, sizeof(clean), mysql_error(s->conn));
            s->host->log(s->ctx, SLUICE_LOG_WARN,
                         "entity \"%s\": LOAD DATA LOCAL INFILE is not available on %s (%s, "
                         "error %u): initial sync continues with the slower upsert on this "
                         "connection; set local_infile=ON on the server, or load_data = false "
                         "to silence this", e->name, s->target, clean, eno);
            s->can_load = false;
        }
    } else {
        uint64_t stored = mysql_affected_rows(s->conn);
        *done = stored == (uint64_t)(hi - lo) && mysql_warning_count(s->conn) == 0;
    }
    rc = my_query(s, *done ? "RELEASE SAVEPOINT sluice_load" : "ROLLBACK TO SAVEPOINT sluice_load",
                  "savepoint", e->name);
    if (rc != SLUICE_OK)
        *done = false;
out:
    if (!*done)
        s->nulled = nulled;
    return rc;
}

/* A delete: guarded DELETE, tombstone (keeps the larger version), delete log
 * when a row went away. */
static int apply_delete(struct my_sink *s, const struct sluice_batch *batch, size_t i,
                        size_t *failed)
{
    const struct sluice_event *ev = &batch->events[i];
    const struct sluice_entity *e = ev->entity;
    struct sluice_sql_table t = table_of(s, e);
    const char *vals[8];
    unsigned long lens[8];
    enum enum_field_types types[8];
    char num[24];
    uint64_t affected = 0;
    int rc;

    if (e->nkeys > 6) {
        s->host->set_error(s->ctx, "entity \"%s\": keys of more than 6 columns are not supported "
                                   "by the MySQL sink", e->name);
        return SLUICE_ERR;
    }
    snprintf(num, sizeof(num), "%" PRIu64, ev->version);
    sluice_sql_buf_reset(&s->data);
    size_t offs[8];
    for (uint32_t k = 0; k < e->nkeys; k++) {
        const struct sluice_column *col = &e->columns[e->key_columns[k]];
        const struct sluice_value *v = &ev->values[e->key_columns[k]];
        offs[k] = s->data.len;
        if (v->state != SLUICE_PRESENT ||
            sluice_sql_value_text(&s->data, D, col, v) != 0) {
            s->host->set_error(s->ctx, "entity \"%s\": delete event %zu has a missing or "
                                       "invalid key value", e->name, i);
            *failed = i;
            return SLUICE_ERR;
        }
        lens[k] = (unsigned long)(s->data.len - offs[k]);
        types[k] = col->type == SLUICE_T_BYTES ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
    }
    if (s->data.failed)
        return my_oom(s);
    for (uint32_t k = 0; k < e->nkeys; k++)
        vals[k] = s->data.data + offs[k];
    vals[e->nkeys] = num;
    lens[e->nkeys] = strlen(num);
    types[e->nkeys] = MYSQL_TYPE_STRING;
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_delete_guarded(&s->sql, D, &t, e);
    if (s->sql.failed)
        return my_oom(s);
    rc = exec_params(s, sluice_sql_buf_str(&s->sql), e->nkeys + 1, vals, lens, types, "delete",
                     e->name, &affected);
    if (rc != SLUICE_OK)
        goto out;

    sluice_sql_buf_reset(&s->keys);
    if (sluice_sql_record_key(&s->keys, D, ev, &s->scratch) != 0 || s->keys.failed) {
        rc = my_oom(s);
        goto out;
    }
    const char *tv[4] = {s->profile, e->name, sluice_sql_buf_str(&s->keys), num};
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_tombstone_upsert(&s->sql, D, s->schema);
    if (s->sql.failed)
        return my_oom(s);
    rc = exec_params(s, sluice_sql_buf_str(&s->sql), 4, tv, NULL, NULL, "write tombstone",
                     e->name, NULL);
    if (rc != SLUICE_OK || !s->delete_log || affected == 0)
        goto out;
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_delete_log_insert(&s->sql, D, s->schema, s->prefix);
    if (s->sql.failed)
        return my_oom(s);
    rc = exec_params(s, sluice_sql_buf_str(&s->sql), 3, tv + 1, NULL, NULL, "write delete log",
                     e->name, NULL);
out:
    if (rc == SLUICE_ERR)
        *failed = i;
    return rc;
}

static int apply_truncate(struct my_sink *s, const struct sluice_entity *e)
{
    struct sluice_sql_table t = table_of(s, e);
    /* DELETE, not TRUNCATE: TRUNCATE commits implicitly in MySQL */
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_buf_puts(&s->sql, "DELETE FROM ");
    sluice_sql_table_name(&s->sql, D, &t);
    if (s->sql.failed)
        return my_oom(s);
    int rc = my_query(s, sluice_sql_buf_str(&s->sql), "truncate", e->name);
    if (rc != SLUICE_OK)
        return rc;
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_tombstone_delete(&s->sql, D, s->schema, true);
    if (s->sql.failed)
        return my_oom(s);
    const char *params[2] = {s->profile, e->name};
    return exec_params(s, sluice_sql_buf_str(&s->sql), 2, params, NULL, NULL,
                       "reset tombstones", e->name, NULL);
}

static int write_checkpoint(struct my_sink *s, const struct sluice_batch *batch)
{
    char partition[16];
    snprintf(partition, sizeof(partition), "%" PRIu32, batch->partition);
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_checkpoint_upsert(&s->sql, D, s->schema);
    if (s->sql.failed)
        return my_oom(s);
    const char *vals[3] = {s->profile, partition, (const char *)batch->position.bytes};
    const unsigned long lens[3] = {strlen(s->profile), strlen(partition), batch->position.len};
    const enum enum_field_types types[3] = {MYSQL_TYPE_STRING, MYSQL_TYPE_STRING,
                                            MYSQL_TYPE_BLOB};
    return exec_params(s, sluice_sql_buf_str(&s->sql), 3, vals, lens, types, "write checkpoint",
                       NULL, NULL);
}

/* the entities of the batch that have tombstones, or got one in this batch */
struct tomb_state {
    const struct sluice_entity *e;
    bool tomb;
};

static int my_sink_apply(void *inst, const struct sluice_batch *batch, size_t *failed)
{
    struct my_sink *s = inst;
    struct tomb_state ts[16];
    size_t nts = 0, plain_until = 0; /* events below plain_until: no LOAD DATA */
    int rc;

    *failed = SIZE_MAX;
    s->nulled = 0;
    rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    s->run.nrows = 0;
    sluice_sql_buf_reset(&s->data);
    for (size_t i = 0; i < batch->nevents && rc == SLUICE_OK; i++) {
        const struct sluice_event *ev = &batch->events[i];
        const struct sluice_entity *e = ev->entity;
        if (ev->op == SLUICE_OP_TRUNCATE) {
            rc = run_flush(s, failed);
            if (rc == SLUICE_OK)
                rc = apply_truncate(s, e);
            for (size_t k = 0; k < nts; k++)
                if (ts[k].e == e)
                    ts[k].tomb = false;
            continue;
        }
        struct tomb_state *t = NULL;
        for (size_t k = 0; k < nts && !t; k++)
            if (ts[k].e == e)
                t = &ts[k];
        bool tomb = true; /* more than 16 entities in a batch: always guard */
        if (!t && nts < 16) {
            t = &ts[nts++];
            t->e = e;
            rc = run_flush(s, failed);
            if (rc == SLUICE_OK)
                rc = has_tombstones(s, e, &t->tomb);
            if (rc != SLUICE_OK)
                break;
        }
        if (t)
            tomb = t->tomb;
        if (ev->op == SLUICE_OP_DELETE) {
            rc = run_flush(s, failed);
            if (rc == SLUICE_OK)
                rc = apply_delete(s, batch, i, failed);
            if (t)
                t->tomb = true;
            continue;
        }
        if (ev->op == SLUICE_OP_READ && !tomb && s->can_load && i >= plain_until) {
            size_t hi = i + 1;
            while (hi < batch->nevents && batch->events[hi].op == SLUICE_OP_READ &&
                   batch->events[hi].entity == e)
                hi++;
            if (hi - i >= LOAD_MIN_ROWS) {
                bool done = false;
                rc = run_flush(s, failed);
                if (rc == SLUICE_OK)
                    rc = apply_load(s, batch, i, hi, failed, &done);
                if (rc == SLUICE_OK && done) {
                    i = hi - 1;
                    continue;
                }
                plain_until = hi; /* the upsert decides row by row */
            }
        }
        if (rc == SLUICE_OK) {
            rc = add_upsert(s, batch, i, tomb, failed);
        }
    }
    if (rc == SLUICE_OK)
        rc = run_flush(s, failed);
    if (rc == SLUICE_OK && batch->position.len > 0)
        rc = write_checkpoint(s, batch);
    if (rc == SLUICE_OK && mysql_commit(s->conn) != 0)
        rc = my_fail(s, "commit", NULL);
    if (rc != SLUICE_OK) {
        if (s->conn)
            mysql_rollback(s->conn);
        if (rc != SLUICE_ERR)
            *failed = SIZE_MAX;
        s->run.nrows = 0;
        return rc;
    }
    if (s->nulled)
        s->host->counter_add(s->ctx, NULL, "values_not_representable", s->nulled);
    return SLUICE_OK;
}

/* ---- checkpoints and profile removal ------------------------------------------------- */

struct ckpt_ctx {
    struct my_sink *s;
    sluice_checkpoint_cb cb;
    void *arg;
};

static int ckpt_row(void *arg, char **vals, unsigned long *lens, unsigned n)
{
    struct ckpt_ctx *c = arg;
    struct sluice_position pos = {0};
    if (n < 2 || lens[1] == (unsigned long)-1 || lens[1] > SLUICE_POSITION_MAX) {
        c->s->host->set_error(c->s->ctx, "a checkpoint in %s is malformed (more than %d bytes "
                                         "or NULL): the table was changed by hand",
                              c->s->target, SLUICE_POSITION_MAX);
        return SLUICE_ERR;
    }
    pos.len = (uint32_t)lens[1];
    memcpy(pos.bytes, vals[1], lens[1]);
    return c->cb(c->arg, (uint32_t)strtoul(vals[0], NULL, 10), &pos);
}

static int my_sink_checkpoint_list(void *inst, sluice_checkpoint_cb cb, void *arg)
{
    struct my_sink *s = inst;
    int rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_checkpoint_select(&s->sql, D, s->schema);
    if (s->sql.failed)
        return my_oom(s);
    const char *params[1] = {s->profile};
    struct ckpt_ctx c = {s, cb, arg};
    rc = query_rows(s, sluice_sql_buf_str(&s->sql), 1, params, ckpt_row, &c, "read checkpoints");
    if (s->conn)
        mysql_rollback(s->conn); /* end the read's transaction */
    return rc;
}

static int my_sink_drop_profile(void *inst)
{
    struct my_sink *s = inst;
    int rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    const char *params[1] = {s->profile};
    for (int step = 0; step < 2 && rc == SLUICE_OK; step++) {
        sluice_sql_buf_reset(&s->sql);
        if (step == 0)
            sluice_sql_checkpoint_delete(&s->sql, D, s->schema);
        else
            sluice_sql_tombstone_delete(&s->sql, D, s->schema, false);
        rc = s->sql.failed ? my_oom(s)
                           : exec_params(s, sluice_sql_buf_str(&s->sql), 1, params, NULL, NULL,
                                         "drop profile metadata", NULL, NULL);
    }
    if (rc == SLUICE_OK && mysql_commit(s->conn) != 0)
        rc = my_fail(s, "commit", NULL);
    if (rc != SLUICE_OK && s->conn)
        mysql_rollback(s->conn);
    return rc;
}

static int my_sink_drop_metadata(void *inst)
{
    struct my_sink *s = inst;
    int rc = ensure_conn(s);
    const char *tables[3] = {SLUICE_SQL_CHECKPOINT_TABLE, SLUICE_SQL_TOMBSTONE_TABLE,
                             SLUICE_SQL_DELETE_LOG_TABLE};
    for (int i = 0; i < 3 && rc == SLUICE_OK; i++) {
        sluice_sql_buf_reset(&s->sql);
        sluice_sql_drop_table(&s->sql, D, s->schema, i == 2 ? s->prefix : NULL, tables[i]);
        rc = s->sql.failed ? my_oom(s)
                           : my_query(s, sluice_sql_buf_str(&s->sql), "drop metadata table",
                                      NULL);
    }
    s->meta_ready = false;
    return rc;
}

/* ---- descriptor ---------------------------------------------------------------------- */

static const struct sluice_sink_ops my_sink_ops = {
    .struct_size = sizeof(struct sluice_sink_ops),
    .prepare = my_sink_prepare,
    .apply = my_sink_apply,
    .checkpoint_list = my_sink_checkpoint_list,
    .drop_profile = my_sink_drop_profile,
    .drop_metadata = my_sink_drop_metadata,
};

static const struct sluice_plugin my_sink_plugin = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin),
    .kind = SLUICE_KIND_SINK,
    .name = "mysql",
    .version = "1.0.0",
    .description = "MySQL/MariaDB sink (Connector/C): array-bound version-guarded upsert, "
                   "checkpoint in the same InnoDB transaction",
    .config = my_sink_config_items,
    .nconfig = sizeof(my_sink_config_items) / sizeof(my_sink_config_items[0]),
    .config_size = sizeof(struct my_sink_config),
    .init = my_sink_init,
    .start = my_sink_start,
    .stop = my_sink_stop,
    .destroy = my_sink_destroy,
    .ops = &my_sink_ops,
};

SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entry(void)
{
    return &my_sink_plugin;
}
