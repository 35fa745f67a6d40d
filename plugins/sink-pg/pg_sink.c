/*
 * pg_sink.c - the PostgreSQL sink: libpq connection, prepare (DDL through the
 * shared dialect layer), apply (COPY into a staging table + version-guarded
 * upsert, or COPY straight into the target for snapshot batches), tombstones,
 * delete log and the checkpoint, all in one transaction per batch.
 *
 * See docs/sink-pg.md for the behaviour and the type mapping.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pg_sink.h"

#define D SLUICE_SQL_POSTGRESQL
#define COPY_CHUNK (1u << 20) /* flush COPY data every MiB */

struct pg_sink_config {
    const char *conninfo;
    const char *password;
    int64_t connect_timeout;
    const char *application_name;
};

static const struct sluice_config_item pg_sink_config_items[] = {
    {"conninfo", SLUICE_CFG_STRING, SLUICE_CFG_REQUIRED, NULL,
     offsetof(struct pg_sink_config, conninfo),
     "libpq connection string or URI (host, port, dbname, user, sslmode, sslrootcert...)"},
    {"password", SLUICE_CFG_SECRET, 0, NULL, offsetof(struct pg_sink_config, password),
     "password (or password_file / password_env); never logged"},
    {"connect_timeout", SLUICE_CFG_INT, 0, "10",
     offsetof(struct pg_sink_config, connect_timeout), "seconds to wait for a connection"},
    {"application_name", SLUICE_CFG_STRING, 0, "sluice",
     offsetof(struct pg_sink_config, application_name), "application_name seen in pg_stat_activity"},
};

/* What apply knows about one event of the entity being applied. */
struct pg_ev {
    size_t index;     /* in the batch */
    int32_t prev;     /* earlier event of the same key in this chain, -1 none */
    bool last;        /* the newest event of its key: the one applied */
    size_t key_off;   /* record key text in keys buffer */
    size_t key_len;
};

struct pg_sink {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    char *conninfo;
    char *password;
    char timeout[24];
    char *application_name;
    char *profile;
    char *schema;
    char *prefix;
    bool delete_log;
    char target[512]; /* "host=... port=... dbname=..." for messages, no secrets */

    PGconn *conn;
    bool meta_ready;
    unsigned stage_seq;

    struct sluice_sql_buf sql, data, keys, scratch;
    struct sluice_sql_buf begin_sql; /* "BEGIN; " + the first statement */
    struct pg_ev *evs;
    size_t cap_evs;
    int32_t *slots; /* open-addressing hash of key -> index in evs */
    size_t cap_slots;
    size_t *rowmap; /* COPY line - 1 -> batch index */
    size_t cap_rowmap;

    /* apply: BEGIN goes out with the batch's first statement */
    bool begin_pending;
    bool no_fast; /* this batch replays rows the target has: no COPY fast path */
    /* per entity id: does the tombstone table hold rows of it? */
    signed char *tomb; /* TOMB_UNKNOWN, TOMB_NONE, TOMB_SOME */
    size_t cap_tomb;
};

enum { TOMB_UNKNOWN = 0, TOMB_NONE = 1, TOMB_SOME = 2 };

/* apply_fast met rows the target already has: apply the batch again, staged */
#define PG_REDO_STAGED 1000

/* ---- errors ------------------------------------------------------------------- */

static bool sqlstate_transient(const char *st)
{
    if (!st || strlen(st) != 5)
        return true; /* no SQLSTATE: the client lost the server */
    return strncmp(st, "08", 2) == 0 ||       /* connection exception */
           strncmp(st, "53", 2) == 0 ||       /* insufficient resources */
           strncmp(st, "57P0", 4) == 0 ||     /* admin/crash shutdown, cannot connect now */
           strcmp(st, "57014") == 0 ||        /* statement timeout / cancel */
           strcmp(st, "40001") == 0 ||        /* serialization failure */
           strcmp(st, "40P01") == 0 ||        /* deadlock */
           strcmp(st, "55P03") == 0;          /* lock not available */
}

/*
 * Report a failed result: set the error text (never row data: for data
 * exceptions (22xxx) only the part before the offending value is kept) and
 * return SLUICE_RETRY or SLUICE_ERR. A lost connection is closed so that the
 * next call reconnects.
 */
static int pg_fail(struct pg_sink *s, const PGresult *res, const char *what, const char *entity)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char primary[512];
    bool lost = !s->conn || PQstatus(s->conn) != CONNECTION_OK;

    if (!msg)
        msg = s->conn ? PQerrorMessage(s->conn) : "not connected";
    snprintf(primary, sizeof(primary), "%s", msg);
    primary[strcspn(primary, "\n")] = '\0';
    if (st && strncmp(st, "22", 2) == 0) {
        char *colon = strchr(primary, ':');
        if (colon)
            *colon = '\0';
    }
    int rc = (lost || sqlstate_transient(st)) ? SLUICE_RETRY : SLUICE_ERR;
    s->host->set_error(s->ctx, "%s%s%s on %s: %s (SQLSTATE %s)%s", what,
                       entity ? " of entity " : "", entity ? entity : "", s->target, primary,
                       st ? st : "none",
                       rc == SLUICE_RETRY ? "; will retry"
                                          : "; fix the target or the data, then resync the record");
    if (lost && s->conn) {
        PQfinish(s->conn);
        s->conn = NULL;
        s->meta_ready = false;
    }
    return rc;
}

/* the BEGIN of the batch's transaction, when it has not gone out yet */
static int pg_begin_now(struct pg_sink *s)
{
    if (!s->begin_pending)
        return SLUICE_OK;
    s->begin_pending = false;
    PGresult *res = PQexec(s->conn, "BEGIN");
    int rc = SLUICE_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(s, res, "begin", NULL);
    PQclear(res);
    return rc;
}

/* sql without parameters, behind "BEGIN; " when the transaction still has to
 * start (one round trip instead of two); NULL when out of memory */
static const char *with_begin(struct pg_sink *s, const char *sql)
{
    if (!s->begin_pending)
        return sql;
    sluice_sql_buf_reset(&s->begin_sql);
    sluice_sql_buf_puts(&s->begin_sql, "BEGIN; ");
    sluice_sql_buf_puts(&s->begin_sql, sql);
    if (s->begin_sql.failed)
        return NULL;
    s->begin_pending = false;
    return sluice_sql_buf_str(&s->begin_sql);
}

/* Run a statement without results. params may be NULL. */
static int pg_exec(struct pg_sink *s, const char *sql, int nparams, const char *const *params,
                   const char *what, const char *entity)
{
    int brc = nparams ? pg_begin_now(s) : SLUICE_OK;
    if (brc != SLUICE_OK)
        return brc;
    if (!nparams && !(sql = with_begin(s, sql))) {
        s->host->set_error(s->ctx, "out of memory building SQL for %s", s->target);
        return SLUICE_NOMEM;
    }
    PGresult *res = nparams ? PQexecParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                            : PQexec(s->conn, sql);
    int rc = SLUICE_OK;
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(s, res, what, entity);
    PQclear(res);
    return rc;
}

static void pg_rollback(struct pg_sink *s)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK &&
        PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
}

static int pg_oom(struct pg_sink *s)
{
    s->host->set_error(s->ctx, "out of memory building SQL for %s", s->target);
    return SLUICE_NOMEM;
}

/* ---- lifecycle ----------------------------------------------------------------- */

static char *dup_or_null(const char *p)
{
    return p ? strdup(p) : NULL;
}

static void pg_sink_free(struct pg_sink *s)
{
    if (!s)
        return;
    if (s->conn)
        PQfinish(s->conn);
    free(s->conninfo);
    if (s->password) {
        explicit_bzero(s->password, strlen(s->password));
        free(s->password);
    }
    free(s->application_name);
    free(s->profile);
    free(s->schema);
    free(s->prefix);
    sluice_sql_buf_free(&s->sql);
    sluice_sql_buf_free(&s->data);
    sluice_sql_buf_free(&s->keys);
    sluice_sql_buf_free(&s->scratch);
    sluice_sql_buf_free(&s->begin_sql);
    free(s->evs);
    free(s->slots);
    free(s->rowmap);
    free(s->tomb);
    free(s);
}

/* "host=h port=p dbname=d user=u" from the connection string (no password) */
static void describe_target(struct pg_sink *s, PQconninfoOption *opts)
{
    const char *host = NULL, *hostaddr = NULL, *port = NULL, *db = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    snprintf(s->target, sizeof(s->target), "PostgreSQL host=%s port=%s dbname=%s user=%s",
             host ? host : hostaddr ? hostaddr : "(default)", port ? port : "(default)",
             db ? db : "(default)", user ? user : "(default)");
}

static int pg_sink_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                        const struct sluice_init_args *args, void **inst)
{
    const struct pg_sink_config *cfg = args->config;
    struct pg_sink *s = NULL;
    PQconninfoOption *opts = NULL;
    char *perr = NULL;
    int rc = SLUICE_ERR;

    if (!cfg->conninfo || !*cfg->conninfo) {
        host->set_error(ctx, "key 'conninfo' is required: a libpq connection string such as "
                             "\"host=127.0.0.1 dbname=export user=sluice\"");
        goto out;
    }
    opts = PQconninfoParse(cfg->conninfo, &perr);
    if (!opts) {
        /* libpq's message names the bad part; it never echoes a password value */
        host->set_error(ctx, "key 'conninfo' is not a valid libpq connection string: %s",
                        perr ? perr : "out of memory");
        goto out;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) {
            host->set_error(ctx, "key 'conninfo' contains a password: move it to 'password_file' "
                                 "or 'password_env' so it is never printed");
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
    s->conninfo = strdup(cfg->conninfo);
    s->password = dup_or_null(cfg->password);
    s->application_name = strdup(cfg->application_name ? cfg->application_name : "sluice");
    s->profile = strdup(args->profile ? args->profile : "");
    s->schema = strdup(args->target_schema && *args->target_schema ? args->target_schema
                                                                      : "public");
    s->prefix = strdup(args->table_prefix ? args->table_prefix : "");
    s->delete_log = args->delete_log;
    snprintf(s->timeout, sizeof(s->timeout), "%" PRId64, cfg->connect_timeout);
    if (!s->conninfo || (cfg->password && !s->password) || !s->application_name ||
        !s->profile || !s->schema || !s->prefix) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    describe_target(s, opts);
    *inst = s;
    s = NULL;
    rc = SLUICE_OK;
out:
    if (opts)
        PQconninfoFree(opts);
    if (perr)
        PQfreemem(perr);
    pg_sink_free(s);
    return rc;
}

static int pg_connect(struct pg_sink *s)
{
    const char *keys[6], *vals[6];
    int n = 0;
    int rc = SLUICE_ERR;

    /* dbname first: expand_dbname expands the conninfo there; later entries
     * override it. The password travels only in this array. */
    keys[n] = "dbname", vals[n++] = s->conninfo;
    keys[n] = "connect_timeout", vals[n++] = s->timeout;
    keys[n] = "application_name", vals[n++] = s->application_name;
    if (s->password)
        keys[n] = "password", vals[n++] = s->password;
    keys[n] = NULL, vals[n] = NULL;

    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn) {
        s->host->set_error(s->ctx, "cannot connect to %s: out of memory", s->target);
        return SLUICE_NOMEM;
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(s->conn));
        msg[strcspn(msg, "\n")] = '\0';
        bool auth = PQconnectionNeedsPassword(s->conn) ||
                    strstr(msg, "authentication failed") || strstr(msg, "password") ||
                    strstr(msg, "does not exist") || strstr(msg, "no pg_hba.conf entry") ||
                    strstr(msg, "permission denied");
        if (auth) {
            s->host->set_error(s->ctx, "cannot log in to %s: %s; check user, database and the "
                                       "password (password_file / password_env) and pg_hba.conf",
                               s->target, msg);
            rc = SLUICE_ERR;
        } else {
            s->host->set_error(s->ctx, "cannot connect to %s: %s; will retry", s->target, msg);
            rc = SLUICE_RETRY;
        }
        PQfinish(s->conn);
        s->conn = NULL;
        return rc;
    }
    /* our own messages are enough; keep NOTICEs ("already exists") quiet */
    rc = pg_exec(s, "SET client_min_messages = warning", 0, NULL, "session setup", NULL);
    return rc;
}

static int pg_sink_start(void *inst)
{
    struct pg_sink *s = inst;
    if (s->conn)
        return SLUICE_OK;
    return pg_connect(s);
}

static void pg_sink_stop(void *inst)
{
    struct pg_sink *s = inst;
    if (s->conn) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    s->meta_ready = false;
}

static void pg_sink_destroy(void *inst)
{
    pg_sink_free(inst);
}

static int ensure_conn(struct pg_sink *s)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return SLUICE_OK;
    if (s->conn) {
        PQfinish(s->conn);
        s->conn = NULL;
        s->meta_ready = false;
    }
    return pg_connect(s);
}

/* ---- DDL --------------------------------------------------------------------------- */

/*
 * DDL runs in its own transaction under an advisory lock: the apply workers
 * of a profile each have a connection, and concurrent CREATE ... IF NOT
 * EXISTS of one name can fail on the catalog's unique index.
 */
static int ddl_begin(struct pg_sink *s)
{
    int rc = pg_exec(s, "BEGIN", 0, NULL, "begin DDL", NULL);
    if (rc == SLUICE_OK)
        rc = pg_exec(s, "SELECT pg_advisory_xact_lock(hashtext('sluice sink-pg ddl'))", 0, NULL,
                     "lock for DDL", NULL);
    return rc;
}

static int ensure_schema(struct pg_sink *s)
{
    const char *params[1] = {s->schema};
    PGresult *res = PQexecParams(s->conn, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1,
                                 NULL, params, NULL, NULL, 0);
    int rc = SLUICE_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(s, res, "look up schema", NULL);
        goto out;
    }
    if (PQntuples(res) == 0) {
        sluice_sql_buf_reset(&s->sql);
        sluice_sql_create_schema(&s->sql, D, s->schema);
        if (s->sql.failed) {
            rc = pg_oom(s);
            goto out;
        }
        rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 0, NULL, "create schema", NULL);
    }
out:
    PQclear(res);
    return rc;
}

static int ensure_meta(struct pg_sink *s)
{
    int rc = ensure_conn(s);
    if (rc != SLUICE_OK || s->meta_ready)
        return rc;
    rc = ddl_begin(s);
    if (rc == SLUICE_OK)
        rc = ensure_schema(s);
    for (int step = 0; step < 3 && rc == SLUICE_OK; step++) {
        sluice_sql_buf_reset(&s->sql);
        if (step == 0)
            sluice_sql_create_checkpoint_table(&s->sql, D, s->schema);
        else if (step == 1)
            sluice_sql_create_tombstone_table(&s->sql, D, s->schema);
        else if (s->delete_log)
            sluice_sql_create_delete_log_table(&s->sql, D, s->schema, s->prefix);
        else
            continue;
        if (s->sql.failed)
            rc = pg_oom(s);
        else
            rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 0, NULL, "create metadata table", NULL);
    }
    if (rc == SLUICE_OK)
        rc = pg_exec(s, "COMMIT", 0, NULL, "commit DDL", NULL);
    if (rc != SLUICE_OK)
        pg_rollback(s);
    else
        s->meta_ready = true;
    return rc;
}

static struct sluice_sql_table table_of(const struct pg_sink *s, const struct sluice_entity *e)
{
    struct sluice_sql_table t = {.schema = s->schema, .prefix = s->prefix, .name = e->name};
    return t;
}

static int pg_sink_prepare(void *inst, const struct sluice_entity *e)
{
    struct pg_sink *s = inst;
    struct sluice_sql_table t = table_of(s, e);
    PGresult *res = NULL;
    int rc;

    if (e->nkeys == 0) {
        s->host->set_error(s->ctx, "entity \"%s\" has no key: the PostgreSQL sink needs one to "
                                   "apply updates and deletes; declare a key in the source",
                           e->name);
        return SLUICE_ERR;
    }
    rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    rc = ddl_begin(s);
    if (rc != SLUICE_OK)
        goto out;
    sluice_sql_buf_reset(&s->sql);
    if (sluice_sql_create_table(&s->sql, D, &t, e) != 0) {
        s->host->set_error(s->ctx, "entity \"%s\": cannot map its columns to PostgreSQL types",
                           e->name);
        rc = SLUICE_ERR;
        goto out;
    }
    if (s->sql.failed) {
        rc = pg_oom(s);
        goto out;
    }
    rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 0, NULL, "create table", e->name);
    if (rc != SLUICE_OK)
        goto out;

    /* columns that appeared since the table was made; never drop one */
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_table_name(&s->sql, D, &t);
    const char *params[1] = {sluice_sql_buf_str(&s->sql)};
    res = PQexecParams(s->conn,
                       "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass "
                       "AND attnum > 0 AND NOT attisdropped",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(s, res, "read columns", e->name);
        goto out;
    }
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        bool found = false;
        for (int r = 0; r < PQntuples(res) && !found; r++)
            found = strcmp(PQgetvalue(res, r, 0), e->columns[i].name) == 0;
        if (found)
            continue;
        sluice_sql_buf_reset(&s->sql);
        if (sluice_sql_add_column(&s->sql, D, &t, &e->columns[i]) != 0 || s->sql.failed) {
            rc = pg_oom(s);
            goto out;
        }
        rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 0, NULL, "add column", e->name);
        if (rc != SLUICE_OK)
            goto out;
        s->host->log(s->ctx, SLUICE_LOG_INFO, "entity \"%s\": added column \"%s\" to the target",
                     e->name, e->columns[i].name);
    }
    rc = pg_exec(s, "COMMIT", 0, NULL, "commit DDL", e->name);
out:
    PQclear(res);
    if (rc != SLUICE_OK)
        pg_rollback(s);
    return rc;
}

/* ---- apply: collapsing the events of one entity ------------------------------------- */

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

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/*
 * Collect the events of entity e in batch[lo, hi) into s->evs, link each to
 * the previous event of its key (prev) and mark the newest per key (last).
 * A DELETE ends a chain: a later event of the key does not merge across it.
 * Returns the number of events, or -1 (error set; *failed set).
 */
static long collect(struct pg_sink *s, const struct sluice_batch *batch, size_t lo, size_t hi,
                    const struct sluice_entity *e, size_t *failed)
{
    size_t n = 0;
    for (size_t i = lo; i < hi; i++)
        n += batch->events[i].entity == e;
    size_t nslots = 16;
    while (nslots < n * 2)
        nslots *= 2;
    if (!grow((void **)&s->evs, &s->cap_evs, n, sizeof(*s->evs)) ||
        !grow((void **)&s->slots, &s->cap_slots, nslots, sizeof(*s->slots))) {
        pg_oom(s);
        return -1;
    }
    for (size_t i = 0; i < nslots; i++)
        s->slots[i] = -1;
    sluice_sql_buf_reset(&s->keys);

    size_t k = 0;
    for (size_t i = lo; i < hi; i++) {
        const struct sluice_event *ev = &batch->events[i];
        if (ev->entity != e)
            continue;
        struct pg_ev *pe = &s->evs[k];
        pe->index = i;
        pe->prev = -1;
        pe->last = true;
        pe->key_off = s->keys.len;
        if (sluice_sql_record_key(&s->keys, SLUICE_SQL_POSTGRESQL, ev, &s->scratch) != 0) {
            s->host->set_error(s->ctx, "entity \"%s\": event %zu (%s, version %" PRIu64
                                       ") has a missing or invalid key value",
                               e->name, i, sluice_op_name(ev->op), ev->version);
            *failed = i;
            return -1;
        }
        if (s->keys.failed) {
            pg_oom(s);
            return -1;
        }
        pe->key_len = s->keys.len - pe->key_off;
        uint64_t h = hash_bytes(s->keys.data + pe->key_off, pe->key_len);
        size_t slot = h & (nslots - 1);
        while (s->slots[slot] >= 0) {
            struct pg_ev *other = &s->evs[s->slots[slot]];
            if (other->key_len == pe->key_len &&
                memcmp(s->keys.data + other->key_off, s->keys.data + pe->key_off,
                       pe->key_len) == 0)
                break;
            slot = (slot + 1) & (nslots - 1);
        }
        if (s->slots[slot] >= 0) {
            struct pg_ev *older = &s->evs[s->slots[slot]];
            older->last = false;
            if (batch->events[older->index].op != SLUICE_OP_DELETE)
                pe->prev = s->slots[slot];
        }
        s->slots[slot] = (int32_t)k;
        k++;
    }
    return (long)k;
}

/* The value column c of the collapsed record ending at evs[k]: walk back
 * through the chain for a column the newest UPDATE left ABSENT. */
static const struct sluice_value *merged_value(const struct pg_sink *s,
                                               const struct sluice_batch *batch, int32_t k,
                                               uint32_t c)
{
    const struct sluice_value *v = NULL;
    for (; k >= 0; k = s->evs[k].prev) {
        const struct sluice_event *ev = &batch->events[s->evs[k].index];
        v = &ev->values[c];
        if (v->state != SLUICE_ABSENT || ev->op != SLUICE_OP_UPDATE)
            return v;
    }
    return v;
}

/* ---- apply: COPY --------------------------------------------------------------------- */

static int copy_flush(struct pg_sink *s)
{
    if (s->data.failed)
        return pg_oom(s);
    if (s->data.len && PQputCopyData(s->conn, s->data.data, (int)s->data.len) != 1)
        return pg_fail(s, NULL, "send COPY data", NULL);
    sluice_sql_buf_reset(&s->data);
    return SLUICE_OK;
}

/*
 * Finish a COPY. On failure, maps "COPY x, line N" in the error context back
 * to the batch index of that row (*failed), so the host need not bisect.
 */
static int copy_end(struct pg_sink *s, const char *abort_msg, const char *entity, size_t nrows,
                    size_t *failed, char *sqlstate_out)
{
    int rc = SLUICE_OK;
    if (PQputCopyEnd(s->conn, abort_msg) != 1)
        return pg_fail(s, NULL, "finish COPY", entity);
    PGresult *res;
    while ((res = PQgetResult(s->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == SLUICE_OK) {
            const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
            const char *line = ctx ? strstr(ctx, ", line ") : NULL;
            if (sqlstate_out && st)
                snprintf(sqlstate_out, 6, "%s", st);
            if (line) {
                unsigned long n = strtoul(line + 7, NULL, 10);
                if (n >= 1 && n <= nrows)
                    *failed = s->rowmap[n - 1];
            }
            rc = abort_msg ? SLUICE_ERR : pg_fail(s, res, "COPY", entity);
        }
        PQclear(res);
    }
    return rc;
}

static void column_list(struct sluice_sql_buf *b, const struct sluice_entity *e, const char *alias)
{
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        if (alias) {
            sluice_sql_buf_puts(b, alias);
            sluice_sql_buf_putc(b, '.');
        }
        sluice_sql_ident(b, D, e->columns[i].name);
        sluice_sql_buf_puts(b, ", ");
    }
    if (alias) {
        sluice_sql_buf_puts(b, alias);
        sluice_sql_buf_putc(b, '.');
    }
    sluice_sql_ident(b, D, SLUICE_SQL_COL_VERSION);
}

/*
 * COPY the collapsed records into `into` (the target or a staging table).
 * staging adds _sluice_key, _sluice_del and _sluice_mask per row.
 */
static int copy_rows(struct pg_sink *s, const struct sluice_batch *batch,
                     const struct sluice_entity *e, size_t nevs, const char *into, bool staging,
                     size_t *failed, char *sqlstate_out)
{
    int rc = SLUICE_OK, fail_rc = SLUICE_ERR;
    size_t nrows = 0;
    const char *abort_msg = NULL;

    if (!grow((void **)&s->rowmap, &s->cap_rowmap, nevs, sizeof(*s->rowmap)))
        return pg_oom(s);
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_buf_printf(&s->sql, "COPY %s (", into);
    column_list(&s->sql, e, NULL);
    if (staging)
        sluice_sql_buf_puts(&s->sql, ", \"_sluice_key\", \"_sluice_del\", \"_sluice_mask\"");
    sluice_sql_buf_puts(&s->sql, ") FROM STDIN");
    if (s->sql.failed)
        return pg_oom(s);
    const char *cmd = with_begin(s, sluice_sql_buf_str(&s->sql));
    if (!cmd)
        return pg_oom(s);
    PGresult *res = PQexec(s->conn, cmd);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = pg_fail(s, res, "start COPY", e->name);
        PQclear(res);
        return rc;
    }
    PQclear(res);

    sluice_sql_buf_reset(&s->data);
    for (size_t k = 0; k < nevs && !abort_msg; k++) {
        if (!s->evs[k].last)
            continue;
        const struct sluice_event *ev = &batch->events[s->evs[k].index];
        bool del = ev->op == SLUICE_OP_DELETE;
        bool partial = false;
        for (uint32_t c = 0; c < e->ncolumns; c++) {
            const struct sluice_value *v =
                del ? &ev->values[c] : merged_value(s, batch, (int32_t)k, c);
            bool key = (e->columns[c].flags & SLUICE_COL_KEY) != 0;
            if (del && !key)
                v = NULL;
            if (v && v->state == SLUICE_ABSENT && !del && ev->op == SLUICE_OP_UPDATE)
                partial = true;
            if (!v || v->state != SLUICE_PRESENT) {
                sluice_sql_buf_puts(&s->data, "\\N");
            } else if (pg_value_text(&s->data, &e->columns[c], v, true) != 0) {
                s->host->set_error(s->ctx, "entity \"%s\": event %zu, column \"%s\": value "
                                           "cannot be represented as %s",
                                   e->name, s->evs[k].index, e->columns[c].name,
                                   sluice_type_name(e->columns[c].type));
                *failed = s->evs[k].index;
                abort_msg = "invalid value";
                break;
            }
            sluice_sql_buf_putc(&s->data, '\t');
        }
        if (abort_msg)
            break;
        sluice_sql_buf_put_uint(&s->data, ev->version);
        if (staging) {
            sluice_sql_buf_putc(&s->data, '\t');
            sluice_sql_buf_reset(&s->scratch);
            sluice_sql_buf_append(&s->scratch, s->keys.data + s->evs[k].key_off,
                                  s->evs[k].key_len);
            /* the key text is COPY-escaped like any text */
            struct sluice_value kv = {.state = SLUICE_PRESENT,
                                      .len = (uint32_t)s->scratch.len,
                                      .u.ptr = sluice_sql_buf_str(&s->scratch)};
            struct sluice_column kc = {.name = "_sluice_key", .type = SLUICE_T_TEXT};
            pg_value_text(&s->data, &kc, &kv, true);
            sluice_sql_buf_puts(&s->data, del ? "\tt\t" : "\tf\t");
            if (partial) {
                for (uint32_t c = 0; c < e->ncolumns; c++) {
                    const struct sluice_value *v = merged_value(s, batch, (int32_t)k, c);
                    sluice_sql_buf_putc(&s->data, v->state == SLUICE_ABSENT ? '0' : '1');
                }
            } else {
                sluice_sql_buf_puts(&s->data, "\\N");
            }
        }
        sluice_sql_buf_putc(&s->data, '\n');
        s->rowmap[nrows++] = s->evs[k].index;
        if (s->data.len >= COPY_CHUNK) {
            rc = copy_flush(s);
            if (rc != SLUICE_OK) {
                fail_rc = rc;
                abort_msg = "client error";
            }
        }
    }
    if (!abort_msg) {
        rc = copy_flush(s);
        if (rc != SLUICE_OK) {
            fail_rc = rc;
            abort_msg = "client error";
        }
    }
    if (!s->conn)
        return fail_rc; /* the connection was lost and closed */
    int end = copy_end(s, abort_msg, e->name, nrows, failed, sqlstate_out);
    return abort_msg ? fail_rc : end;
}

/* ---- apply: one entity ------------------------------------------------------------ */

/* What the sink knows of entity e's tombstones (by e->id). A partition's
 * keys are its own for the whole run (the runtime partitions by key), so a
 * tombstone another worker writes never names a key this instance applies:
 * "none" stays true until this instance writes one. Any rollback forgets. */
static signed char *tomb_state(struct pg_sink *s, const struct sluice_entity *e)
{
    if (e->id >= s->cap_tomb) {
        size_t cap = (size_t)e->id * 2 + 8;
        signed char *t = realloc(s->tomb, cap);
        if (!t)
            return NULL;
        memset(t + s->cap_tomb, TOMB_UNKNOWN, cap - s->cap_tomb);
        s->tomb = t;
        s->cap_tomb = cap;
    }
    return &s->tomb[e->id];
}

static void tomb_forget(struct pg_sink *s)
{
    if (s->tomb)
        memset(s->tomb, TOMB_UNKNOWN, s->cap_tomb);
}

static void tomb_set(struct pg_sink *s, const struct sluice_entity *e, int state)
{
    signed char *t = tomb_state(s, e);
    if (t)
        *t = (signed char)state;
}

static int has_tombstones(struct pg_sink *s, const struct sluice_entity *e, bool *yes)
{
    signed char *known = tomb_state(s, e);
    if (known && *known != TOMB_UNKNOWN) {
        *yes = *known == TOMB_SOME;
        return SLUICE_OK;
    }
    int brc = pg_begin_now(s);
    if (brc != SLUICE_OK)
        return brc;
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_buf_puts(&s->sql, "SELECT 1 FROM ");
    struct sluice_sql_table tt = {.schema = s->schema, .name = SLUICE_SQL_TOMBSTONE_TABLE};
    sluice_sql_table_name(&s->sql, D, &tt);
    sluice_sql_buf_puts(&s->sql, " WHERE \"profile\" = $1 AND \"entity\" = $2 LIMIT 1");
    if (s->sql.failed)
        return pg_oom(s);
    const char *params[2] = {s->profile, e->name};
    PGresult *res = PQexecParams(s->conn, sluice_sql_buf_str(&s->sql), 2, NULL, params, NULL,
                                 NULL, 0);
    int rc = SLUICE_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pg_fail(s, res, "read tombstones", e->name);
    else
        *yes = PQntuples(res) > 0;
    PQclear(res);
    if (rc == SLUICE_OK && known)
        *known = *yes ? TOMB_SOME : TOMB_NONE;
    return rc;
}

/* "NOT EXISTS (a tombstone of this record at least as new)" on staging alias s */
static void not_tombstoned(struct pg_sink *s, struct sluice_sql_buf *b)
{
    struct sluice_sql_table tt = {.schema = s->schema, .name = SLUICE_SQL_TOMBSTONE_TABLE};
    sluice_sql_buf_puts(b, "NOT EXISTS (SELECT 1 FROM ");
    sluice_sql_table_name(b, D, &tt);
    sluice_sql_buf_puts(b, " ts WHERE ts.\"profile\" = $1 AND ts.\"entity\" = $2 AND "
                           "ts.\"record_key\" = s.\"_sluice_key\" AND "
                           "ts.\"version\" >= s.\"_sluice_version\")");
}

static void key_join(struct sluice_sql_buf *b, const struct sluice_entity *e)
{
    for (uint32_t k = 0; k < e->nkeys; k++) {
        const char *name = e->columns[e->key_columns[k]].name;
        sluice_sql_buf_puts(b, " AND t.");
        sluice_sql_ident(b, D, name);
        sluice_sql_buf_puts(b, " = s.");
        sluice_sql_ident(b, D, name);
    }
}

static int apply_staged(struct pg_sink *s, const struct sluice_batch *batch,
                        const struct sluice_entity *e, size_t nevs, size_t *failed)
{
    struct sluice_sql_table t = table_of(s, e);
    struct sluice_sql_buf sel = {0}, tn = {0};
    char stage[48];
    int rc;
    size_t nfull = 0, npartial = 0, ndel = 0;
    const char *params[2] = {s->profile, e->name};

    for (size_t k = 0; k < nevs; k++) {
        if (!s->evs[k].last)
            continue;
        const struct sluice_event *ev = &batch->events[s->evs[k].index];
        if (ev->op == SLUICE_OP_DELETE) {
            ndel++;
            continue;
        }
        bool partial = false;
        for (uint32_t c = 0; c < e->ncolumns && !partial && ev->op == SLUICE_OP_UPDATE; c++)
            partial = merged_value(s, batch, (int32_t)k, c)->state == SLUICE_ABSENT;
        partial ? npartial++ : nfull++;
    }

    sluice_sql_table_name(&tn, D, &t);
    snprintf(stage, sizeof(stage), "\"_sluice_stage_%u\"", ++s->stage_seq);
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_buf_printf(&s->sql, "CREATE TEMP TABLE %s ON COMMIT DROP AS SELECT ", stage);
    column_list(&s->sql, e, NULL);
    sluice_sql_buf_printf(&s->sql, ", NULL::text AS \"_sluice_key\", NULL::boolean AS "
                                   "\"_sluice_del\", NULL::text AS \"_sluice_mask\" FROM %s "
                                   "WITH NO DATA",
                          sluice_sql_buf_str(&tn));
    if (s->sql.failed || tn.failed) {
        rc = pg_oom(s);
        goto out;
    }
    rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 0, NULL, "create staging table", e->name);
    if (rc != SLUICE_OK)
        goto out;
    rc = copy_rows(s, batch, e, nevs, stage, true, failed, NULL);
    if (rc != SLUICE_OK)
        goto out;

    if (nfull) {
        /* full rows: one version-guarded upsert, skipping tombstoned versions */
        sluice_sql_buf_puts(&sel, "SELECT ");
        column_list(&sel, e, "s");
        sluice_sql_buf_printf(&sel, " FROM %s s WHERE NOT s.\"_sluice_del\" AND "
                                    "s.\"_sluice_mask\" IS NULL AND ", stage);
        not_tombstoned(s, &sel);
        sluice_sql_buf_reset(&s->sql);
        sluice_sql_upsert(&s->sql, D, &t, e, NULL, sluice_sql_buf_str(&sel));
        if (s->sql.failed || sel.failed) {
            rc = pg_oom(s);
            goto out;
        }
        rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 2, params, "upsert", e->name);
        if (rc != SLUICE_OK)
            goto out;
    }
    if (npartial) {
        /* updates that left columns ABSENT keep the target's value there */
        sluice_sql_buf_reset(&s->sql);
        sluice_sql_buf_printf(&s->sql, "UPDATE %s AS t SET ", sluice_sql_buf_str(&tn));
        for (uint32_t c = 0; c < e->ncolumns; c++) {
            if (e->columns[c].flags & SLUICE_COL_KEY)
                continue;
            sluice_sql_ident(&s->sql, D, e->columns[c].name);
            sluice_sql_buf_printf(&s->sql, " = CASE WHEN substr(s.\"_sluice_mask\", %u, 1) = '1' "
                                           "THEN s.", c + 1);
            sluice_sql_ident(&s->sql, D, e->columns[c].name);
            sluice_sql_buf_puts(&s->sql, " ELSE t.");
            sluice_sql_ident(&s->sql, D, e->columns[c].name);
            sluice_sql_buf_puts(&s->sql, " END, ");
        }
        sluice_sql_buf_printf(&s->sql, "\"_sluice_version\" = s.\"_sluice_version\", "
                                       "\"_sluice_last_sync\" = now() FROM %s s WHERE "
                                       "s.\"_sluice_mask\" IS NOT NULL AND "
                                       "t.\"_sluice_version\" < s.\"_sluice_version\"",
                              stage);
        key_join(&s->sql, e);
        if (s->sql.failed) {
            rc = pg_oom(s);
            goto out;
        }
        rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 0, NULL, "partial update", e->name);
        if (rc != SLUICE_OK)
            goto out;
        /* a partial update of a record the target does not have yet: insert
         * what is known (absent columns NULL) unless a tombstone says it is gone */
        sluice_sql_buf_reset(&s->sql);
        sluice_sql_buf_printf(&s->sql, "INSERT INTO %s (", sluice_sql_buf_str(&tn));
        column_list(&s->sql, e, NULL);
        sluice_sql_buf_puts(&s->sql, ") SELECT ");
        column_list(&s->sql, e, "s");
        sluice_sql_buf_printf(&s->sql, " FROM %s s WHERE s.\"_sluice_mask\" IS NOT NULL AND ",
                              stage);
        not_tombstoned(s, &s->sql);
        sluice_sql_buf_puts(&s->sql, " ON CONFLICT DO NOTHING");
        if (s->sql.failed) {
            rc = pg_oom(s);
            goto out;
        }
        rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 2, params, "partial insert", e->name);
        if (rc != SLUICE_OK)
            goto out;
    }
    if (ndel) {
        struct sluice_sql_table tt = {.schema = s->schema, .name = SLUICE_SQL_TOMBSTONE_TABLE};
        sluice_sql_buf_reset(&s->sql);
        sluice_sql_buf_puts(&s->sql, "INSERT INTO ");
        sluice_sql_table_name(&s->sql, D, &tt);
        sluice_sql_buf_printf(&s->sql, " AS tt (\"profile\", \"entity\", \"record_key\", "
                                       "\"version\") SELECT $1, $2, s.\"_sluice_key\", "
                                       "s.\"_sluice_version\" FROM %s s WHERE s.\"_sluice_del\" "
                                       "ON CONFLICT (\"profile\", \"entity\", \"record_key\") DO "
                                       "UPDATE SET \"version\" = excluded.\"version\" WHERE "
                                       "tt.\"version\" < excluded.\"version\"",
                              stage);
        if (s->sql.failed) {
            rc = pg_oom(s);
            goto out;
        }
        tomb_set(s, e, TOMB_SOME);
        rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 2, params, "write tombstones", e->name);
        if (rc != SLUICE_OK)
            goto out;

        sluice_sql_buf_reset(&s->sql);
        if (s->delete_log)
            sluice_sql_buf_puts(&s->sql, "WITH d AS (");
        sluice_sql_buf_printf(&s->sql, "DELETE FROM %s AS t USING %s s WHERE s.\"_sluice_del\" "
                                       "AND t.\"_sluice_version\" < s.\"_sluice_version\"",
                              sluice_sql_buf_str(&tn), stage);
        key_join(&s->sql, e);
        if (s->delete_log) {
            struct sluice_sql_table lt = {.schema = s->schema, .prefix = s->prefix,
                                          .name = SLUICE_SQL_DELETE_LOG_TABLE};
            sluice_sql_buf_puts(&s->sql, " RETURNING s.\"_sluice_key\", s.\"_sluice_version\") "
                                         "INSERT INTO ");
            sluice_sql_table_name(&s->sql, D, &lt);
            sluice_sql_buf_puts(&s->sql, " (\"entity\", \"record_id\", \"version\") SELECT $1, "
                                         "\"_sluice_key\", \"_sluice_version\" FROM d");
        }
        if (s->sql.failed) {
            rc = pg_oom(s);
            goto out;
        }
        const char *p1[1] = {e->name};
        rc = pg_exec(s, sluice_sql_buf_str(&s->sql), s->delete_log ? 1 : 0,
                     s->delete_log ? p1 : NULL, "delete", e->name);
    }
out:
    sluice_sql_buf_free(&sel);
    sluice_sql_buf_free(&tn);
    return rc;
}

/*
 * Snapshot fast path: every event is a READ and no tombstone exists, so the
 * rows can be COPYed straight into the target. A unique violation means a
 * replay (rows already there): the batch's transaction is lost, so the whole
 * batch is applied again through staging (PG_REDO_STAGED) - rare, and cheaper
 * than a savepoint around every COPY.
 */
static int apply_fast(struct pg_sink *s, const struct sluice_batch *batch,
                      const struct sluice_entity *e, size_t nevs, size_t *failed, bool *done)
{
    struct sluice_sql_table t = table_of(s, e);
    struct sluice_sql_buf tn = {0};
    char st[6] = "";
    bool tomb = true;
    int rc;

    *done = false;
    rc = has_tombstones(s, e, &tomb);
    if (rc != SLUICE_OK || tomb)
        goto out;
    sluice_sql_table_name(&tn, D, &t);
    if (tn.failed) {
        rc = pg_oom(s);
        goto out;
    }
    size_t ignored = SIZE_MAX;
    rc = copy_rows(s, batch, e, nevs, sluice_sql_buf_str(&tn), false, &ignored, st);
    if (rc == SLUICE_OK) {
        *done = true;
        goto out;
    }
    if (strcmp(st, "23505") == 0) {
        rc = PG_REDO_STAGED;
        goto out;
    }
    *failed = ignored;
out:
    sluice_sql_buf_free(&tn);
    return rc;
}

static int apply_entity(struct pg_sink *s, const struct sluice_batch *batch, size_t lo,
                        size_t hi, const struct sluice_entity *e, size_t *failed)
{
    long n = collect(s, batch, lo, hi, e, failed);
    if (n < 0)
        return *failed == SIZE_MAX ? SLUICE_NOMEM : SLUICE_ERR;
    bool all_read = true;
    for (long k = 0; k < n && all_read; k++)
        all_read = batch->events[s->evs[k].index].op == SLUICE_OP_READ;
    if (all_read && !s->no_fast) {
        bool done = false;
        int rc = apply_fast(s, batch, e, (size_t)n, failed, &done);
        if (rc != SLUICE_OK || done)
            return rc;
    }
    return apply_staged(s, batch, e, (size_t)n, failed);
}

static int apply_truncate(struct pg_sink *s, const struct sluice_entity *e)
{
    struct sluice_sql_table t = table_of(s, e);
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_buf_puts(&s->sql, "TRUNCATE ");
    sluice_sql_table_name(&s->sql, D, &t);
    if (s->sql.failed)
        return pg_oom(s);
    int rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 0, NULL, "truncate", e->name);
    if (rc != SLUICE_OK)
        return rc;
    /* every row is gone: the entity's tombstones describe nothing any more */
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_tombstone_delete(&s->sql, D, s->schema, true);
    if (s->sql.failed)
        return pg_oom(s);
    const char *params[2] = {s->profile, e->name};
    rc = pg_exec(s, sluice_sql_buf_str(&s->sql), 2, params, "reset tombstones", e->name);
    if (rc == SLUICE_OK)
        tomb_set(s, e, TOMB_NONE); /* forgotten again if the batch rolls back */
    return rc;
}

/* apply every entity's events in batch[lo, hi) (no TRUNCATE inside) */
static int apply_segment(struct pg_sink *s, const struct sluice_batch *batch, size_t lo,
                         size_t hi, size_t *failed)
{
    for (size_t i = lo; i < hi; i++) {
        const struct sluice_entity *e = batch->events[i].entity;
        bool seen = false;
        for (size_t j = lo; j < i && !seen; j++)
            seen = batch->events[j].entity == e;
        if (seen)
            continue;
        int rc = apply_entity(s, batch, lo, hi, e, failed);
        if (rc != SLUICE_OK)
            return rc;
    }
    return SLUICE_OK;
}

/*
 * End the batch: its checkpoint and COMMIT go out together in libpq's
 * pipeline mode (one round trip). A batch that changed nothing (a position
 * only) writes its checkpoint alone: one statement is atomic by itself.
 */
static int finish_batch(struct pg_sink *s, const struct sluice_batch *batch)
{
    bool txn = !s->begin_pending;
    s->begin_pending = false;
    if (batch->position.len == 0)
        return txn ? pg_exec(s, "COMMIT", 0, NULL, "commit", NULL) : SLUICE_OK;
    char partition[16];
    snprintf(partition, sizeof(partition), "%" PRIu32, batch->partition);
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_checkpoint_upsert(&s->sql, D, s->schema);
    if (s->sql.failed)
        return pg_oom(s);
    const char *values[3] = {s->profile, partition, (const char *)batch->position.bytes};
    const int lengths[3] = {0, 0, (int)batch->position.len};
    const int formats[3] = {0, 0, 1};
    const char *sql = sluice_sql_buf_str(&s->sql);
    if (!txn) {
        PGresult *res = PQexecParams(s->conn, sql, 3, NULL, values, lengths, formats, 0);
        int rc = SLUICE_OK;
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = pg_fail(s, res, "write checkpoint", NULL);
        PQclear(res);
        return rc;
    }
    if (!PQenterPipelineMode(s->conn) ||
        !PQsendQueryParams(s->conn, sql, 3, NULL, values, lengths, formats, 0) ||
        !PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(s->conn)) {
        int rc = pg_fail(s, NULL, "write checkpoint", NULL);
        if (s->conn)
            PQexitPipelineMode(s->conn);
        return rc;
    }
    int rc = SLUICE_OK;
    static const char *const what[2] = {"write checkpoint", "commit"};
    for (int q = 0; q < 2 && s->conn; q++) {
        PGresult *res = PQgetResult(s->conn);
        if (!res) {
            if (rc == SLUICE_OK)
                rc = pg_fail(s, NULL, what[q], NULL);
            break;
        }
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == SLUICE_OK)
            rc = pg_fail(s, res, what[q], NULL);
        PQclear(res);
        if (s->conn)
            PQclear(PQgetResult(s->conn)); /* the NULL that ends a query's results */
    }
    if (s->conn) {
        PGresult *res;
        while ((res = PQgetResult(s->conn)) != NULL) { /* PGRES_PIPELINE_SYNC */
            bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
            PQclear(res);
            if (sync)
                break;
        }
        PQexitPipelineMode(s->conn);
    }
    return rc;
}

static int pg_sink_apply(void *inst, const struct sluice_batch *batch, size_t *failed)
{
    struct pg_sink *s = inst;
    int rc;

    s->no_fast = false;
again:
    *failed = SIZE_MAX;
    s->stage_seq = 0;
    rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    s->begin_pending = true; /* BEGIN goes out with the first statement */
    size_t lo = 0;
    for (size_t i = 0; i < batch->nevents; i++) {
        if (batch->events[i].op != SLUICE_OP_TRUNCATE)
            continue;
        /* a TRUNCATE applies in order: what came before it, then it */
        rc = apply_segment(s, batch, lo, i, failed);
        if (rc == SLUICE_OK)
            rc = apply_truncate(s, batch->events[i].entity);
        if (rc != SLUICE_OK)
            goto out;
        lo = i + 1;
    }
    rc = apply_segment(s, batch, lo, batch->nevents, failed);
    if (rc == SLUICE_OK)
        rc = finish_batch(s, batch);
out:
    if (rc != SLUICE_OK) {
        s->begin_pending = false;
        pg_rollback(s);
        tomb_forget(s); /* what this transaction wrote or removed is undone */
        if (rc == PG_REDO_STAGED) {
            if (!s->no_fast) {
                s->no_fast = true;
                goto again;
            }
            s->host->set_error(s->ctx, "internal: the staged apply asked for itself again");
            rc = SLUICE_ERR;
        }
        if (rc != SLUICE_ERR)
            *failed = SIZE_MAX;
    }
    return rc;
}

/* ---- checkpoints and profile removal ------------------------------------------------- */

static int pg_sink_checkpoint_list(void *inst, sluice_checkpoint_cb cb, void *arg)
{
    struct pg_sink *s = inst;
    PGresult *res = NULL;
    int rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    sluice_sql_buf_reset(&s->sql);
    sluice_sql_checkpoint_select(&s->sql, D, s->schema);
    if (s->sql.failed)
        return pg_oom(s);
    const char *params[1] = {s->profile};
    /* binary results: position comes back as raw bytes */
    res = PQexecParams(s->conn, sluice_sql_buf_str(&s->sql), 1, NULL, params, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(s, res, "read checkpoints", NULL);
        goto out;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        struct sluice_position pos = {0};
        const uint8_t *p = (const uint8_t *)PQgetvalue(res, r, 0);
        uint32_t partition = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                             ((uint32_t)p[2] << 8) | p[3]; /* int4, network order */
        int len = PQgetlength(res, r, 1);
        if (len < 0 || len > SLUICE_POSITION_MAX) {
            s->host->set_error(s->ctx, "checkpoint of partition %" PRIu32 " in %s is %d bytes, "
                                       "more than %d: the table was changed by hand",
                               partition, s->target, len, SLUICE_POSITION_MAX);
            rc = SLUICE_ERR;
            goto out;
        }
        pos.len = (uint32_t)len;
        memcpy(pos.bytes, PQgetvalue(res, r, 1), (size_t)len);
        rc = cb(arg, partition, &pos);
        if (rc != SLUICE_OK)
            goto out;
    }
out:
    PQclear(res);
    return rc;
}

static int pg_sink_drop_profile(void *inst)
{
    struct pg_sink *s = inst;
    int rc = ensure_meta(s);
    if (rc != SLUICE_OK)
        return rc;
    const char *params[1] = {s->profile};
    rc = pg_exec(s, "BEGIN", 0, NULL, "begin", NULL);
    for (int step = 0; step < 2 && rc == SLUICE_OK; step++) {
        sluice_sql_buf_reset(&s->sql);
        if (step == 0)
            sluice_sql_checkpoint_delete(&s->sql, D, s->schema);
        else
            sluice_sql_tombstone_delete(&s->sql, D, s->schema, false);
        rc = s->sql.failed ? pg_oom(s)
                           : pg_exec(s, sluice_sql_buf_str(&s->sql), 1, params,
                                     "drop profile metadata", NULL);
    }
    if (rc == SLUICE_OK)
        rc = pg_exec(s, "COMMIT", 0, NULL, "commit", NULL);
    if (rc != SLUICE_OK)
        pg_rollback(s);
    return rc;
}

static int pg_sink_drop_metadata(void *inst)
{
    struct pg_sink *s = inst;
    int rc = ensure_conn(s);
    if (rc != SLUICE_OK)
        return rc;
    const char *tables[3] = {SLUICE_SQL_CHECKPOINT_TABLE, SLUICE_SQL_TOMBSTONE_TABLE,
                             SLUICE_SQL_DELETE_LOG_TABLE};
    rc = pg_exec(s, "BEGIN", 0, NULL, "begin", NULL);
    for (int i = 0; i < 3 && rc == SLUICE_OK; i++) {
        sluice_sql_buf_reset(&s->sql);
        sluice_sql_drop_table(&s->sql, D, s->schema, i == 2 ? s->prefix : NULL, tables[i]);
        rc = s->sql.failed ? pg_oom(s)
                           : pg_exec(s, sluice_sql_buf_str(&s->sql), 0, NULL,
                                     "drop metadata table", NULL);
    }
    if (rc == SLUICE_OK)
        rc = pg_exec(s, "COMMIT", 0, NULL, "commit", NULL);
    if (rc != SLUICE_OK)
        pg_rollback(s);
    s->meta_ready = false;
    return rc;
}

/* ---- descriptor ---------------------------------------------------------------------- */

static const struct sluice_sink_ops pg_sink_ops = {
    .struct_size = sizeof(struct sluice_sink_ops),
    .prepare = pg_sink_prepare,
    .apply = pg_sink_apply,
    .checkpoint_list = pg_sink_checkpoint_list,
    .drop_profile = pg_sink_drop_profile,
    .drop_metadata = pg_sink_drop_metadata,
};

static const struct sluice_plugin pg_sink_plugin = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin),
    .kind = SLUICE_KIND_SINK,
    .name = "pg",
    .version = "1.0.0",
    .description = "PostgreSQL sink (libpq): COPY + version-guarded upsert, checkpoint in the "
                   "same transaction",
    .config = pg_sink_config_items,
    .nconfig = sizeof(pg_sink_config_items) / sizeof(pg_sink_config_items[0]),
    .config_size = sizeof(struct pg_sink_config),
    .init = pg_sink_init,
    .start = pg_sink_start,
    .stop = pg_sink_stop,
    .destroy = pg_sink_destroy,
    .ops = &pg_sink_ops,
};

SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entry(void)
{
    return &pg_sink_plugin;
}
