/*
 * pg_source.c - the "pg" source: PostgreSQL change data capture over libpq's
 * replication protocol with the built-in pgoutput plugin. docs/source-pg.md is
 * the user's description.
 *
 * Flow of one run:
 *   no checkpoint (or an interrupted initial sync): (re)create the slot with
 *   an exported snapshot, COPY every table inside that snapshot (READ events),
 *   then START_REPLICATION at the slot's consistent point. With a streaming
 *   checkpoint: snapshot the entities the last runs did not cover (tables new
 *   in the profile), then START_REPLICATION at the checkpoint's LSN.
 *
 * Positions (memcmp-ordered, big-endian):
 *   snapshot  [0x01][consistent LSN be64][entity be32][rows be64]       21 bytes
 *   stream    [0x02][E be64][n be64]                                     17 bytes
 *             E = end LSN of the last transaction emitted completely,
 *             n = events of the following (open) transaction emitted so far
 *   new table [0x02][E][n][0x03][rows be64]                              26 bytes
 *             a snapshot of a table new in the profile, read before the
 *             stream is resumed at E
 * A stream position resumes with START_REPLICATION at E: the server sends
 * every transaction committed after E again, the target ignores what it has.
 *
 * Versions: a change's version is the LSN of its WAL record (the XLogData
 * start). Rows of the initial snapshot get version 1: every streamed change
 * belongs to a transaction that committed after the snapshot, so it is newer
 * than every snapshot row, whatever its record LSN.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <sluice/sluice.h>

#include "pgoutput.h"

#define PGS_POS_SNAPSHOT 0x01
#define PGS_POS_STREAM 0x02
#define PGS_POS_NEWTABLE 0x03
#define PGS_POS_SNAPSHOT_LEN 21
#define PGS_POS_STREAM_LEN 17
#define PGS_POS_NEWTABLE_LEN 26
#define PGS_SNAPSHOT_VERSION 1u
#define PGS_WAL_CHECK_US (60u * 1000000u)
#define PGS_POLL_MS 100
#define PGS_COVERED_FILE "source-pg.entities"
/* session settings that make every text form the canonical one value_parse reads */
#define PGS_OPTIONS                                                                            \
    "-c datestyle=ISO,YMD -c timezone=UTC -c intervalstyle=postgres -c extra_float_digits=3 " \
    "-c bytea_output=hex"

/* ---- configuration ------------------------------------------------------ */

struct pgs_config {
    const char *conninfo;
    const char *password;
    const char *publication;
    bool create_publication;
    const char *slot;
    bool truncate;
    int64_t status_interval_ms;
    int64_t max_retained_wal_mb;
    int64_t snapshot_workers;
    int64_t snapshot_split_mb;
    bool idle_flush;
};

static const struct sluice_config_item pgs_spec[] = {
    {"conninfo", SLUICE_CFG_STRING, SLUICE_CFG_REQUIRED, NULL,
     offsetof(struct pgs_config, conninfo),
     "libpq connection string of the source database (no password here)"},
    {"password", SLUICE_CFG_SECRET, 0, NULL, offsetof(struct pgs_config, password),
     "password (or password_file / password_env)"},
    {"publication", SLUICE_CFG_STRING, 0, NULL, offsetof(struct pgs_config, publication),
     "publication to stream (default sluice_<profile>)"},
    {"create_publication", SLUICE_CFG_BOOL, 0, "true",
     offsetof(struct pgs_config, create_publication),
     "create the publication for the profile's tables when missing, add new tables to it"},
    {"slot", SLUICE_CFG_STRING, 0, NULL, offsetof(struct pgs_config, slot),
     "replication slot name (default sluice_<profile>)"},
    {"truncate", SLUICE_CFG_BOOL, 0, "true", offsetof(struct pgs_config, truncate),
     "apply TRUNCATE of a source table to the target"},
    {"status_interval_ms", SLUICE_CFG_INT, 0, "10000",
     offsetof(struct pgs_config, status_interval_ms),
     "how often to report the flushed position to the server (ms)"},
    {"max_retained_wal_mb", SLUICE_CFG_INT, 0, "1024",
     offsetof(struct pgs_config, max_retained_wal_mb),
     "warn when the slot holds back more WAL than this (MB, 0 = never)"},
    {"snapshot_workers", SLUICE_CFG_INT, 0, "2", offsetof(struct pgs_config, snapshot_workers),
     "sessions reading the initial snapshot in parallel (1-32)"},
    {"snapshot_split_mb", SLUICE_CFG_INT, 0, "0", offsetof(struct pgs_config, snapshot_split_mb),
     "read tables of twice this size or more in page ranges of at least this size (MiB, 0 = "
     "never)"},
    {"idle_flush", SLUICE_CFG_BOOL, 0, "true", offsetof(struct pgs_config, idle_flush),
     "emit the batch when the stream has nothing more at a transaction end (low lag); false: "
     "wait for batch_size or batch_linger_ms"},
};

/* ---- the instance --------------------------------------------------------- */

struct pgs_col {
    char *name;
    uint32_t typoid;
    int32_t typmod;
    bool nullable;
};

struct pgs_entity {
    char *spec;   /* as named in the profile */
    char *schema; /* source schema */
    char *table;
    uint32_t relid;
    const struct sluice_entity *e; /* the host's copy */
    struct pgs_col *cols;
    uint32_t ncols;
    char **keys; /* key column names, in key order */
    uint32_t nkeys;
    int32_t *att_map; /* relation attribute -> entity column, -1: not exported */
    uint32_t natt_map;
    bool covered;
};

struct pgs {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    char *profile;
    char *conninfo, *password, *publication, *slot, *state_dir;
    bool create_publication, truncate, idle_flush;
    uint32_t status_ms;
    int64_t max_wal_mb;
    uint32_t snapshot_workers;
    uint64_t split_bytes;
    int run_mode;

    struct pgs_entity *ents;
    uint32_t nents;
    PGconn *sql;  /* catalog, snapshot, fetch, admin */
    PGconn *repl; /* replication=database */

    /* acks, from apply threads */
    pthread_mutex_t ack_lock;
    struct sluice_position acked;

    /* run state (source thread) */
    struct sluice_batch *b;
    struct sluice_value *vals; /* scratch row */
    uint32_t nvals;
    struct sluice_position emitted; /* position of the last emitted batch */
    uint64_t start_lsn;             /* START_REPLICATION point */
    uint64_t commit_end;            /* E of the stream position */
    uint64_t txn_events;            /* n of the stream position */
    bool in_txn;
    int64_t txn_time_us;
    uint32_t txn_xid;
    uint64_t received_lsn, server_end;
    uint64_t last_status_us, last_wal_check_us;
    struct sluice_position cover_pos; /* new tables count as covered once acked */
    bool cover_pending;
    uint64_t once_marker; /* RUN_ONCE: LSN of our marker message, 0 none */
    bool once_done;
    char marker_prefix[96];

    /* pgoutput decode scratch */
    struct pgo_relation rel;
    struct pgo_change chg;
    struct pgo_truncate trunc;

};

/* ---- small helpers ------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t now_pg_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - PGO_EPOCH_OFFSET_US;
}

/* PostgreSQL's message without the trailing newline */
static const char *pq_msg(PGconn *c)
{
    static _Thread_local char buf[512];
    snprintf(buf, sizeof buf, "%s", c ? PQerrorMessage(c) : "no connection");
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

static const char *res_msg(const PGresult *r, PGconn *c)
{
    static _Thread_local char buf[512];
    const char *m = r ? PQresultErrorMessage(r) : NULL;
    snprintf(buf, sizeof buf, "%s", m && *m ? m : pq_msg(c));
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/* a lost connection is transient; anything else the server refused is not */
static int conn_status(PGconn *c)
{
    return !c || PQstatus(c) != CONNECTION_OK ? SLUICE_RETRY : SLUICE_ERR;
}

static void pos_stream(struct sluice_position *p, uint64_t e, uint64_t n)
{
    p->len = PGS_POS_STREAM_LEN;
    p->bytes[0] = PGS_POS_STREAM;
    sluice_put_be64(p->bytes + 1, e);
    sluice_put_be64(p->bytes + 9, n);
}

/* the stream LSN a position stands for (what may be reported as flushed) */
static uint64_t pos_lsn(const struct sluice_position *p)
{
    if (p->len >= PGS_POS_STREAM_LEN && p->bytes[0] == PGS_POS_STREAM)
        return sluice_get_be64(p->bytes + 1);
    return 0;
}

static void default_name(char *out, size_t cap, const char *profile)
{
    /* slot names allow [a-z0-9_] only */
    size_t n = (size_t)snprintf(out, cap, "sluice_");
    for (const char *p = profile; *p && n + 1 < cap && n < 63; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[n++] = ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') ? c : '_';
    }
    out[n] = '\0';
}

/* ---- type mapping ------------------------------------------------------------ */

static void map_type(uint32_t oid, int32_t typmod, struct sluice_column *c)
{
    c->precision = 0;
    c->scale = 0;
    c->max_length = 0;
    switch (oid) {
    case 16: c->type = SLUICE_T_BOOL; break;
    case 21: c->type = SLUICE_T_INT16; break;
    case 23: c->type = SLUICE_T_INT32; break;
    case 20: c->type = SLUICE_T_INT64; break;
    case 700: c->type = SLUICE_T_FLOAT32; break;
    case 701: c->type = SLUICE_T_FLOAT64; break;
    case 1700:
        c->type = SLUICE_T_DECIMAL;
        if (typmod >= 4) {
            int32_t p = ((typmod - 4) >> 16) & 0xffff;
            int32_t s = (typmod - 4) & 0x7ff; /* PG15 allows a negative scale (11 bits) */
            if ((typmod - 4) & 0x400)
                s = -1;
            if (p > 0 && p <= 1000 && s >= 0 && s <= p) {
                c->precision = p;
                c->scale = s;
            }
        }
        break;
    case 1043: /* varchar */
    case 1042: /* bpchar */
        c->type = SLUICE_T_TEXT;
        if (typmod >= 4)
            c->max_length = typmod - 4;
        break;
    case 17: c->type = SLUICE_T_BYTES; break;
    case 1082: c->type = SLUICE_T_DATE; break;
    case 1083: c->type = SLUICE_T_TIME; break;
    case 1114: c->type = SLUICE_T_TIMESTAMP; break;
    case 1184: c->type = SLUICE_T_TIMESTAMPTZ; break;
    case 2950: c->type = SLUICE_T_UUID; break;
    case 114:
    case 3802: c->type = SLUICE_T_JSON; break;
    default: c->type = SLUICE_T_TEXT; break; /* text, name, and every other type as text */
    }
}

/* ---- connections ---------------------------------------------------------------- */

static PGconn *pgs_connect(struct pgs *s, bool replication)
{
    const char *keys[8], *vals[8];
    int n = 0;
    keys[n] = "dbname";
    vals[n++] = s->conninfo;
    keys[n] = "options";
    vals[n++] = PGS_OPTIONS;
    keys[n] = "client_encoding";
    vals[n++] = "UTF8";
    keys[n] = "fallback_application_name";
    vals[n++] = "sluice";
    if (replication) {
        keys[n] = "replication";
        vals[n++] = "database";
    }
    if (s->password) {
        keys[n] = "password";
        vals[n++] = s->password;
    }
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        s->host->set_error(s->ctx,
                           "cannot connect to the source PostgreSQL%s: %s; check conninfo and "
                           "that the server is up",
                           replication ? " (replication connection)" : "", pq_msg(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* run a command on the sql connection; SLUICE_OK or an error status */
static int sql_exec(struct pgs *s, const char *sql, int nparams, const char *const *params,
                    const char *what)
{
    PGresult *r = PQexecParams(s->sql, sql, nparams, NULL, params, NULL, NULL, 0);
    int st = PQresultStatus(r);
    int rc = SLUICE_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        s->host->set_error(s->ctx, "%s: %s", what, res_msg(r, s->sql));
        rc = conn_status(s->sql);
    }
    PQclear(r);
    return rc;
}

static PGresult *sql_query(struct pgs *s, const char *sql, int nparams,
                           const char *const *params, const char *what, int *rc)
{
    PGresult *r = PQexecParams(s->sql, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s->host->set_error(s->ctx, "%s: %s", what, res_msg(r, s->sql));
        *rc = conn_status(s->sql);
        PQclear(r);
        return NULL;
    }
    *rc = SLUICE_OK;
    return r;
}

/* "schema"."table", quoted by libpq on connection c (each thread quotes on
 * its own); free() it */
static char *qname_on(PGconn *c, const struct pgs_entity *pe)
{
    char *sch = PQescapeIdentifier(c, pe->schema, strlen(pe->schema));
    char *tab = PQescapeIdentifier(c, pe->table, strlen(pe->table));
    char *out = NULL;
    if (sch && tab && asprintf(&out, "%s.%s", sch, tab) < 0)
        out = NULL;
    PQfreemem(sch);
    PQfreemem(tab);
    return out;
}

static char *qname(struct pgs *s, const struct pgs_entity *pe)
{
    return qname_on(s->sql, pe);
}

/* ", "-separated quoted names of e's columns cols[0..n) (cols NULL: all) */
static void put_columns(FILE *f, PGconn *c, const struct sluice_entity *e, const uint32_t *cols,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = e->columns[cols ? cols[i] : i].name;
        char *qi = PQescapeIdentifier(c, name, strlen(name));
        fprintf(f, "%s%s", i ? ", " : "", qi ? qi : "\"\"");
        PQfreemem(qi);
    }
}

/*
 * SELECT the columns cols[0..n) of entity e, the table of pe (then `extra`, an expression, when not
 * NULL) of the row whose key is key[] (one value per key column, in key
 * order; bound as text parameters) on the SQL session. *out: the result
 * (0 or 1 rows). SLUICE_OK, or an error status with the message set.
 */
static int select_by_key(struct pgs *s, const struct pgs_entity *pe,
                         const struct sluice_entity *e, const uint32_t *cols, size_t n,
                         const char *extra, const struct sluice_value *const *key,
                         const char *what, PGresult **out)
{
    char *sel = NULL, *tn = qname(s, pe), **params = calloc(e->nkeys ? e->nkeys : 1,
                                                           sizeof *params);
    size_t sel_len = 0;
    FILE *f = open_memstream(&sel, &sel_len);
    int rc = SLUICE_ERR;
    *out = NULL;
    if (!f || !tn || !params)
        goto oom;
    fputs("SELECT ", f);
    put_columns(f, s->sql, e, cols, n);
    if (extra)
        fprintf(f, "%s%s", n ? ", " : "", extra);
    fprintf(f, " FROM %s WHERE ", tn);
    for (uint32_t k = 0; k < e->nkeys; k++) {
        const struct sluice_column *col = &e->columns[e->key_columns[k]];
        char *qi = PQescapeIdentifier(s->sql, col->name, strlen(col->name));
        fprintf(f, "%s%s = $%u", k ? " AND " : "", qi ? qi : "\"\"", k + 1);
        PQfreemem(qi);
        size_t need = s->host->value_format(col, key[k], NULL, 0);
        if (!(params[k] = malloc(need + 1)))
            goto oom;
        s->host->value_format(col, key[k], params[k], need + 1);
    }
    fclose(f);
    f = NULL;
    PGresult *r = PQexecParams(s->sql, sel, (int)e->nkeys, NULL, (const char *const *)params,
                               NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s->host->set_error(s->ctx, "%s from %s.%s: %s", what, pe->schema, pe->table,
                           res_msg(r, s->sql));
        rc = conn_status(s->sql);
        PQclear(r);
        goto out;
    }
    *out = r;
    rc = SLUICE_OK;
    goto out;
oom:
    s->host->set_error(s->ctx, "%s: out of memory", what);
out:
    if (f)
        fclose(f);
    for (uint32_t k = 0; params && k < e->nkeys; k++)
        free(params[k]);
    free(params);
    free(sel);
    free(tn);
    return rc;
}

/* ---- entities ------------------------------------------------------------------ */

static void entity_free_cols(struct pgs_entity *pe)
{
    for (uint32_t i = 0; i < pe->ncols; i++)
        free(pe->cols[i].name);
    free(pe->cols);
    pe->cols = NULL;
    pe->ncols = 0;
}

static bool is_key(const struct pgs_entity *pe, const char *name, uint32_t *pos)
{
    for (uint32_t k = 0; k < pe->nkeys; k++)
        if (strcmp(pe->keys[k], name) == 0) {
            if (pos)
                *pos = k;
            return true;
        }
    return false;
}

/* declare pe->cols to the host */
static int declare(struct pgs *s, struct pgs_entity *pe)
{
    int rc = SLUICE_ERR;
    struct sluice_column *cols = calloc(pe->ncols ? pe->ncols : 1, sizeof *cols);
    uint32_t *keys = calloc(pe->nkeys ? pe->nkeys : 1, sizeof *keys);
    if (!cols || !keys) {
        s->host->set_error(s->ctx, "out of memory declaring entity %s", pe->spec);
        goto out;
    }
    uint32_t found = 0;
    for (uint32_t i = 0; i < pe->ncols; i++) {
        struct sluice_column *c = &cols[i];
        c->name = pe->cols[i].name;
        map_type(pe->cols[i].typoid, pe->cols[i].typmod, c);
        uint32_t k;
        if (is_key(pe, c->name, &k)) {
            c->flags = SLUICE_COL_KEY;
            keys[k] = i;
            found++;
        } else {
            c->flags = pe->cols[i].nullable ? SLUICE_COL_NULLABLE : 0;
        }
    }
    if (found != pe->nkeys) {
        s->host->set_error(s->ctx,
                           "table %s.%s: a key column is missing from its columns (was it "
                           "dropped?); sluice needs every key column to apply changes",
                           pe->schema, pe->table);
        goto out;
    }
    struct sluice_entity desc = {.ns = pe->schema,
                                 .name = pe->table,
                                 .ncolumns = pe->ncols,
                                 .columns = cols,
                                 .nkeys = pe->nkeys,
                                 .key_columns = keys};
    const struct sluice_entity *e = s->host->entity_declare(s->ctx, &desc);
    if (!e)
        goto out;
    pe->e = e;
    if (pe->ncols > s->nvals) {
        struct sluice_value *v = realloc(s->vals, pe->ncols * sizeof *v);
        if (!v) {
            s->host->set_error(s->ctx, "out of memory declaring entity %s", pe->spec);
            goto out;
        }
        s->vals = v;
        s->nvals = pe->ncols;
    }
    rc = SLUICE_OK;
out:
    free(cols);
    free(keys);
    return rc;
}

static int load_entity(struct pgs *s, struct pgs_entity *pe)
{
    int rc;
    PGresult *r = NULL;
    char relid[16];
    const char *p2[2] = {pe->schema, pe->table};
    r = sql_query(s,
                  "SELECT c.oid, c.relreplident FROM pg_class c JOIN pg_namespace n ON "
                  "n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND "
                  "c.relkind IN ('r', 'p')",
                  2, p2, "look up the source table", &rc);
    if (!r)
        goto out;
    if (PQntuples(r) != 1) {
        s->host->set_error(s->ctx,
                           "entity %s: no table %s.%s in the source database; check the "
                           "profile's entities (\"schema.table\" or \"table\" for public)",
                           pe->spec, pe->schema, pe->table);
        rc = SLUICE_ERR;
        goto out;
    }
    pe->relid = (uint32_t)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
    char replident = PQgetvalue(r, 0, 1)[0];
    PQclear(r);
    snprintf(relid, sizeof relid, "%" PRIu32, pe->relid);
    const char *p1[1] = {relid};

    r = sql_query(s,
                  "SELECT attname, atttypid, atttypmod, NOT attnotnull FROM pg_attribute "
                  "WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                  1, p1, "read the table's columns", &rc);
    if (!r)
        goto out;
    entity_free_cols(pe);
    pe->ncols = (uint32_t)PQntuples(r);
    pe->cols = calloc(pe->ncols ? pe->ncols : 1, sizeof *pe->cols);
    for (uint32_t i = 0; pe->cols && i < pe->ncols; i++) {
        pe->cols[i].name = strdup(PQgetvalue(r, (int)i, 0));
        pe->cols[i].typoid = (uint32_t)strtoul(PQgetvalue(r, (int)i, 1), NULL, 10);
        pe->cols[i].typmod = (int32_t)strtol(PQgetvalue(r, (int)i, 2), NULL, 10);
        pe->cols[i].nullable = PQgetvalue(r, (int)i, 3)[0] == 't';
    }
    PQclear(r);

    /* the key: what the change stream identifies rows by. Default identity:
     * the primary key; USING INDEX: that index; FULL: the primary key when
     * there is one (the old row carries it), else every column. */
    const char *keysql =
        replident == 'i'
            ? "SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, "
              "ord), pg_attribute a WHERE i.indrelid = $1 AND i.indisreplident AND "
              "a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord"
            : "SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, "
              "ord), pg_attribute a WHERE i.indrelid = $1 AND i.indisprimary AND "
              "a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord";
    r = sql_query(s, keysql, 1, p1, "read the table's key", &rc);
    if (!r)
        goto out;
    for (uint32_t k = 0; k < pe->nkeys; k++)
        free(pe->keys[k]);
    free(pe->keys);
    pe->nkeys = (uint32_t)PQntuples(r);
    if (pe->nkeys == 0 && replident == 'f') {
        pe->nkeys = pe->ncols;
        pe->keys = calloc(pe->nkeys ? pe->nkeys : 1, sizeof *pe->keys);
        for (uint32_t k = 0; pe->keys && k < pe->nkeys; k++)
            pe->keys[k] = strdup(pe->cols[k].name);
    } else {
        pe->keys = calloc(pe->nkeys ? pe->nkeys : 1, sizeof *pe->keys);
        for (uint32_t k = 0; pe->keys && k < pe->nkeys; k++)
            pe->keys[k] = strdup(PQgetvalue(r, (int)k, 0));
    }
    PQclear(r);
    r = NULL;
    if (pe->nkeys == 0) {
        s->host->set_error(s->ctx,
                           "table %s.%s has no primary key, so its updates and deletes cannot "
                           "be matched to target rows; add a primary key, or run ALTER TABLE "
                           "%s.%s REPLICA IDENTITY FULL to use all columns as the key",
                           pe->schema, pe->table, pe->schema, pe->table);
        rc = SLUICE_ERR;
        goto out;
    }
    rc = declare(s, pe);
out:
    PQclear(r);
    return rc;
}

/* ---- lifecycle --------------------------------------------------------------------- */

static void pgs_destroy(void *inst);

static int pgs_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                    const struct sluice_init_args *args, void **inst)
{
    const struct pgs_config *cfg = args->config;
    struct pgs *s = calloc(1, sizeof *s);
    char name[80];
    if (!s) {
        host->set_error(ctx, "out of memory");
        return SLUICE_ERR;
    }
    s->host = host;
    s->ctx = ctx;
    pthread_mutex_init(&s->ack_lock, NULL);
    s->profile = xstrdup(args->profile);
    s->conninfo = xstrdup(cfg->conninfo);
    s->password = xstrdup(cfg->password);
    s->state_dir = xstrdup(args->state_dir);
    s->create_publication = cfg->create_publication;
    s->truncate = cfg->truncate;
    s->idle_flush = cfg->idle_flush;
    s->run_mode = args->run_mode;
    default_name(name, sizeof name, args->profile ? args->profile : "profile");
    s->publication = xstrdup(cfg->publication ? cfg->publication : name);
    s->slot = xstrdup(cfg->slot ? cfg->slot : name);
    snprintf(s->marker_prefix, sizeof s->marker_prefix, "sluice:%s", s->slot);
    if (cfg->status_interval_ms < 100 || cfg->status_interval_ms > 3600000) {
        host->set_error(ctx, "status_interval_ms must be between 100 and 3600000, not %" PRId64,
                        cfg->status_interval_ms);
        goto fail;
    }
    s->status_ms = (uint32_t)cfg->status_interval_ms;
    if (cfg->snapshot_workers < 1 || cfg->snapshot_workers > 32) {
        host->set_error(ctx, "snapshot_workers must be between 1 and 32, not %" PRId64,
                        cfg->snapshot_workers);
        goto fail;
    }
    s->snapshot_workers = (uint32_t)cfg->snapshot_workers;
    if (cfg->snapshot_split_mb < 0 || cfg->snapshot_split_mb > 1048576) {
        host->set_error(ctx, "snapshot_split_mb must be between 0 and 1048576, not %" PRId64,
                        cfg->snapshot_split_mb);
        goto fail;
    }
    s->split_bytes = (uint64_t)cfg->snapshot_split_mb << 20;
    s->max_wal_mb = cfg->max_retained_wal_mb;
    for (const char *p = s->slot; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            host->set_error(ctx,
                            "slot \"%s\": a replication slot name may contain only lower case "
                            "letters, digits and underscores",
                            s->slot);
            goto fail;
        }
    if (strlen(s->slot) > 63) {
        host->set_error(ctx, "slot \"%s\" is longer than 63 characters", s->slot);
        goto fail;
    }
    s->nents = args->nentities;
    s->ents = calloc(s->nents ? s->nents : 1, sizeof *s->ents);
    if (!s->ents)
        goto fail;
    for (uint32_t i = 0; i < s->nents; i++) {
        struct pgs_entity *pe = &s->ents[i];
        const char *spec = args->entities[i];
        const char *dot = strchr(spec, '.');
        pe->spec = strdup(spec);
        pe->schema = dot ? strndup(spec, (size_t)(dot - spec)) : strdup("public");
        pe->table = strdup(dot ? dot + 1 : spec);
        if (!pe->spec || !pe->schema || !pe->table || !*pe->schema || !*pe->table) {
            host->set_error(ctx, "entity \"%s\": expected \"schema.table\" or \"table\"", spec);
            goto fail;
        }
    }
    *inst = s;
    return SLUICE_OK;
fail:
    pgs_destroy(s);
    return SLUICE_ERR;
}

static void close_repl(struct pgs *s)
{
    PQfinish(s->repl);
    s->repl = NULL;
}

static int pgs_start(void *inst)
{
    struct pgs *s = inst;
    if (s->sql && PQstatus(s->sql) == CONNECTION_OK)
        return SLUICE_OK;
    PQfinish(s->sql);
    s->sql = pgs_connect(s, false);
    return s->sql ? SLUICE_OK : SLUICE_RETRY;
}

static void write_covered(struct pgs *s);

static void pgs_stop(void *inst)
{
    struct pgs *s = inst;
    if (s->cover_pending) {
        pthread_mutex_lock(&s->ack_lock);
        bool done = sluice_position_cmp(&s->acked, &s->cover_pos) >= 0;
        pthread_mutex_unlock(&s->ack_lock);
        if (done)
            write_covered(s);
    }
    if (s->b) {
        s->host->batch_discard(s->b);
        s->b = NULL;
    }
    close_repl(s);
    PQfinish(s->sql);
    s->sql = NULL;
}

static void pgs_destroy(void *inst)
{
    struct pgs *s = inst;
    if (!s)
        return;
    for (uint32_t i = 0; s->ents && i < s->nents; i++) {
        struct pgs_entity *pe = &s->ents[i];
        free(pe->spec);
        free(pe->schema);
        free(pe->table);
        entity_free_cols(pe);
        for (uint32_t k = 0; k < pe->nkeys; k++)
            free(pe->keys[k]);
        free(pe->keys);
        free(pe->att_map);
    }
    free(s->ents);
    free(s->vals);
    free(s->rel.atts);
    free(s->chg.old_tuple.cols);
    free(s->chg.new_tuple.cols);
    free(s->trunc.relids);
    PQfinish(s->repl);
    PQfinish(s->sql);
    free(s->profile);
    free(s->conninfo);
    if (s->password) {
        memset(s->password, 0, strlen(s->password));
        free(s->password);
    }
    free(s->publication);
    free(s->slot);
    free(s->state_dir);
    pthread_mutex_destroy(&s->ack_lock);
    free(s);
}

static int pgs_describe(void *inst)
{
    struct pgs *s = inst;
    for (uint32_t i = 0; i < s->nents; i++) {
        int rc = load_entity(s, &s->ents[i]);
        if (rc != SLUICE_OK)
            return rc;
    }
    return SLUICE_OK;
}

/* ---- covered entities (which tables the stream's checkpoint covers) --------------- */

static char *covered_path(struct pgs *s)
{
    char *p = NULL;
    if (!s->state_dir || asprintf(&p, "%s/%s", s->state_dir, PGS_COVERED_FILE) < 0)
        return NULL;
    return p;
}

static void write_covered(struct pgs *s)
{
    char *path = covered_path(s), *tmp = NULL;
    FILE *f = NULL;
    if (!path || asprintf(&tmp, "%s.tmp", path) < 0) {
        tmp = NULL;
        goto out;
    }
    f = fopen(tmp, "w");
    if (!f)
        goto out;
    fprintf(f, "# tables whose changes the replication slot %s delivers to the target\n",
            s->slot);
    for (uint32_t i = 0; i < s->nents; i++)
        fprintf(f, "%s.%s\n", s->ents[i].schema, s->ents[i].table);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        f = NULL;
        goto out;
    }
    fclose(f);
    f = NULL;
    if (rename(tmp, path) == 0) {
        s->cover_pending = false;
        for (uint32_t i = 0; i < s->nents; i++)
            s->ents[i].covered = true;
    }
out:
    if (f)
        fclose(f);
    if (s->cover_pending)
        s->host->log(s->ctx, SLUICE_LOG_WARN, "cannot write %s: %s", path ? path : "?",
                     strerror(errno));
    free(path);
    free(tmp);
}

/* mark the entities listed in the covered file; false when there is none */
static bool read_covered(struct pgs *s)
{
    char *path = covered_path(s);
    FILE *f = path ? fopen(path, "r") : NULL;
    char line[1024];
    free(path);
    for (uint32_t i = 0; i < s->nents; i++)
        s->ents[i].covered = false;
    if (!f)
        return false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        for (uint32_t i = 0; i < s->nents; i++) {
            struct pgs_entity *pe = &s->ents[i];
            size_t n = strlen(pe->schema);
            if (strncmp(line, pe->schema, n) == 0 && line[n] == '.' &&
                strcmp(line + n + 1, pe->table) == 0)
                pe->covered = true;
        }
    }
    fclose(f);
    return true;
}

/* ---- emitting --------------------------------------------------------------------- */

static struct sluice_batch *batch(struct pgs *s)
{
    if (!s->b) {
        s->b = s->host->batch_new(s->ctx);
        if (!s->b)
            s->host->set_error(s->ctx, "out of memory (new batch)");
    }
    return s->b;
}

static int emit(struct pgs *s, const uint8_t *pos, uint32_t len, bool snapshot)
{
    if (!batch(s))
        return SLUICE_ERR;
    struct sluice_batch *b = s->b;
    s->b = NULL;
    memcpy(b->position.bytes, pos, len);
    b->position.len = len;
    if (snapshot && b->nevents)
        b->flags |= SLUICE_BATCH_SNAPSHOT;
    s->emitted = b->position;
    return s->host->emit(s->ctx, b);
}

static int emit_stream(struct pgs *s)
{
    struct sluice_position p;
    pos_stream(&p, s->commit_end, s->in_txn ? s->txn_events : 0);
    return emit(s, p.bytes, p.len, false);
}

/* ---- the snapshot ------------------------------------------------------------------ */

/*
 * The initial sync (and the snapshot of a table new in the profile) runs in
 * snapshot_workers sessions of their own, every one inside the same exported
 * snapshot, so together they read one consistent state. The work is a list
 * of tasks: a whole table, or on PostgreSQL >= 14 a range of a large
 * table's heap pages (a TID range scan), so that one big table is read in
 * parallel too. A reader thread takes the next task, COPYs it out in text
 * format, parses the rows and emits batches; the batches of all readers get
 * their positions, and reach the pipeline, under the job's lock, so
 * positions grow in emit order (host.h).
 */


struct snap_task {
    uint32_t ent;
    uint32_t chunk, nchunks;
    uint64_t from_page, to_page; /* to_page 0: to the end of the table */
};

struct snap_job {
    struct pgs *s;
    struct snap_task *tasks;
    size_t ntasks, next;
    pthread_mutex_t lock; /* next, positions and emit order, progress, the first failure */
    uint8_t pos[PGS_POS_NEWTABLE_LEN]; /* last 8 bytes: batches emitted so far */
    uint32_t pos_len;
    uint64_t *ent_rows;     /* rows read per entity, all its tasks */
    uint32_t *ent_left;     /* tasks not yet done per entity */
    uint64_t *ent_estimate; /* pg_class.reltuples */
    atomic_bool abort;
    int rc;
    char error[1024];
};

struct snap_reader {
    struct snap_job *job;
    PGconn *conn;
    pthread_t thread;
    bool started;
    struct sluice_batch *b;
    struct sluice_value *vals;
    const struct snap_task *task;
    struct pgs_entity *ent;
    uint32_t field;
    bool bad;
    char why[256];
    uint64_t rows; /* rows of the current task */
    int rc;
    char error[1024];
    char *carry; /* a COPY row split over CopyData messages */
    size_t carry_len, carry_cap;
    char *unesc; /* one field with its backslash escapes undone */
    size_t unesc_cap;
};

static void rd_fail(struct snap_reader *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rd_fail(struct snap_reader *r, int rc, const char *fmt, ...)
{
    if (r->rc != SLUICE_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    r->rc = rc;
}

static bool rd_batch(struct snap_reader *r)
{
    struct pgs *s = r->job->s;
    if (!r->b) {
        r->b = s->host->batch_new(s->ctx);
        if (!r->b)
            rd_fail(r, SLUICE_ERR, "out of memory (new batch)");
    }
    return r->b != NULL;
}

/* emit the reader's batch: its position is the next one of the job */
static int rd_emit(struct snap_reader *r)
{
    struct snap_job *j = r->job;
    struct pgs *s = j->s;
    struct sluice_batch *b = r->b;
    r->b = NULL;
    if (!b || !b->nevents) {
        s->host->batch_discard(b);
        return SLUICE_OK;
    }
    b->flags |= SLUICE_BATCH_SNAPSHOT;
    pthread_mutex_lock(&j->lock);
    uint8_t *count = j->pos + j->pos_len - 8;
    sluice_put_be64(count, sluice_get_be64(count) + 1);
    memcpy(b->position.bytes, j->pos, j->pos_len);
    b->position.len = j->pos_len;
    s->emitted = b->position;
    uint32_t ei = r->task->ent;
    j->ent_rows[ei] += b->nevents;
    s->host->progress(s->ctx, r->ent->e, j->ent_rows[ei], j->ent_estimate[ei]);
    int rc = s->host->emit(s->ctx, b);
    pthread_mutex_unlock(&j->lock);
    if (rc != SLUICE_OK)
        rd_fail(r, rc, "stopping");
    return rc;
}

static void snap_field(struct snap_reader *r, const char *data, size_t len)
{
    struct pgs *s = r->job->s;
    struct pgs_entity *pe = r->ent;
    uint32_t i = r->field++;
    if (r->bad || r->rc != SLUICE_OK)
        return;
    if (i >= pe->e->ncolumns) {
        r->bad = true;
        snprintf(r->why, sizeof r->why, "more fields than the %u columns", pe->e->ncolumns);
        return;
    }
    if (!rd_batch(r))
        return;
    struct sluice_value *v = &r->vals[i];
    if (!data) {
        sluice_value_set_null(v);
        return;
    }
    if (s->host->value_parse(s->ctx, r->b, &pe->e->columns[i], data, len, v) != SLUICE_OK) {
        r->bad = true;
        snprintf(r->why, sizeof r->why, "column %s: cannot read the value",
                 pe->e->columns[i].name);
    }
}

static void snap_row(struct snap_reader *r)
{
    struct pgs *s = r->job->s;
    struct pgs_entity *pe = r->ent;
    uint32_t nf = r->field;
    r->field = 0;
    if (r->rc != SLUICE_OK)
        return;
    r->rows++;
    if (r->bad || nf != pe->e->ncolumns) {
        char where[200], end[24] = "end";
        if (r->task->to_page)
            snprintf(end, sizeof end, "%" PRIu64, r->task->to_page - 1);
        if (r->task->nchunks > 1)
            snprintf(where, sizeof where, "table %s.%s, snapshot pages %" PRIu64 "-%s, row %" PRIu64,
                     pe->schema, pe->table, r->task->from_page, end, r->rows);
        else
            snprintf(where, sizeof where, "table %s.%s, snapshot row %" PRIu64, pe->schema,
                     pe->table, r->rows);
        s->host->record_failed(s->ctx, pe->e, NULL, where,
                               r->bad ? r->why : "wrong number of fields");
        r->bad = false;
        return;
    }
    struct sluice_event *ev = s->host->batch_append(r->b, pe->e, SLUICE_OP_READ);
    if (!ev) {
        rd_fail(r, SLUICE_ERR, "out of memory (batch append)");
        return;
    }
    ev->version = PGS_SNAPSHOT_VERSION;
    memcpy(ev->values, r->vals, pe->e->ncolumns * sizeof *r->vals);
    if (s->host->batch_full(r->b))
        rd_emit(r);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* undo COPY's text-format escapes (PostgreSQL docs, "COPY: Text Format"):
 * \b \f \n \r \t \v, \digits (octal, 1-3), \xdigits (hex, 1-2), and a
 * backslash before any other character stands for that character. out has
 * room for len bytes; returns the length written. */
static size_t copy_unescape(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c != '\\' || i + 1 == len) {
            out[o++] = c;
            continue;
        }
        c = in[++i];
        switch (c) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'v': out[o++] = '\v'; break;
        case 'x': {
            int h = i + 1 < len ? hexval(in[i + 1]) : -1;
            if (h < 0) {
                out[o++] = c;
                break;
            }
            i++;
            int h2 = i + 1 < len ? hexval(in[i + 1]) : -1;
            if (h2 >= 0) {
                h = h * 16 + h2;
                i++;
            }
            out[o++] = (char)h;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                int v = c - '0';
                for (int k = 0; k < 2 && i + 1 < len && in[i + 1] >= '0' && in[i + 1] <= '7'; k++)
                    v = v * 8 + (in[++i] - '0');
                out[o++] = (char)(v & 0377);
            } else {
                out[o++] = c;
            }
        }
    }
    return o;
}


/* one row of COPY text format without its newline: tab-separated fields,
 * \N for NULL */
static int snap_text_row(struct snap_reader *r, char *line, size_t len)
{
    char *p = line, *end = line + len;
    for (;;) {
        char *tab = memchr(p, '\t', (size_t)(end - p));
        char *fe = tab ? tab : end;
        size_t fl = (size_t)(fe - p);
        if (fl == 2 && p[0] == '\\' && p[1] == 'N') {
            snap_field(r, NULL, 0);
        } else if (!memchr(p, '\\', fl)) {
            snap_field(r, p, fl);
        } else {
            if (fl > r->unesc_cap) {
                char *n = realloc(r->unesc, fl);
                if (!n) {
                    rd_fail(r, SLUICE_ERR, "out of memory (COPY field of %zu bytes)", fl);
                    return r->rc;
                }
                r->unesc = n;
                r->unesc_cap = fl;
            }
            snap_field(r, r->unesc, copy_unescape(p, fl, r->unesc));
        }
        if (!tab)
            break;
        p = tab + 1;
    }
    snap_row(r);
    return r->rc;
}

static bool carry_room(struct snap_reader *r, size_t need)
{
    if (need <= r->carry_cap)
        return true;
    char *c = realloc(r->carry, need * 2);
    if (!c) {
        rd_fail(r, SLUICE_ERR, "out of memory (COPY row of %zu bytes)", need);
        return false;
    }
    r->carry = c;
    r->carry_cap = need * 2;
    return true;
}

/* one CopyData message: PostgreSQL sends one row per message, but rows split
 * over messages (or several in one) are handled through the carry buffer */
static int snap_text_chunk(struct snap_reader *r, char *buf, size_t n)
{
    char *p = buf, *end = buf + n;
    if (r->carry_len) {
        char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (!carry_room(r, r->carry_len + take))
            return r->rc;
        memcpy(r->carry + r->carry_len, p, take);
        r->carry_len += take;
        if (!nl)
            return SLUICE_OK;
        size_t cl = r->carry_len;
        r->carry_len = 0;
        if (snap_text_row(r, r->carry, cl) != SLUICE_OK)
            return r->rc;
        p = nl + 1;
    }
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            size_t rest = (size_t)(end - p);
            if (!carry_room(r, rest))
                return r->rc;
            memcpy(r->carry, p, rest);
            r->carry_len = rest;
            return SLUICE_OK;
        }
        if (snap_text_row(r, p, (size_t)(nl - p)) != SLUICE_OK)
            return r->rc;
        p = nl + 1;
    }
    return SLUICE_OK;
}

/* COPY (SELECT <columns> FROM <table> [WHERE <page range>]) TO STDOUT */
static char *task_query(struct snap_reader *r, const struct snap_task *t)
{
    struct pgs *s = r->job->s;
    struct pgs_entity *pe = &s->ents[t->ent];
    char *q = NULL, *cols = NULL, *tn = qname_on(r->conn, pe);
    size_t cols_len = 0;
    FILE *cf = open_memstream(&cols, &cols_len);
    if (cf) {
        put_columns(cf, r->conn, pe->e, NULL, pe->e->ncolumns);
        fclose(cf);
    }
    char where[128] = "";
    if (t->nchunks > 1 && t->to_page)
        snprintf(where, sizeof where,
                 " WHERE ctid >= '(%" PRIu64 ",0)'::tid AND ctid < '(%" PRIu64 ",0)'::tid",
                 t->from_page, t->to_page);
    else if (t->nchunks > 1)
        snprintf(where, sizeof where, " WHERE ctid >= '(%" PRIu64 ",0)'::tid", t->from_page);
    if (!cf || !cols || !tn ||
        asprintf(&q, "COPY (SELECT %s FROM %s%s) TO STDOUT", cols, tn, where) < 0)
        q = NULL;
    free(tn);
    free(cols);
    return q;
}

/* read one task of the snapshot and emit its rows */
static int snap_copy(struct snap_reader *r, const struct snap_task *t)
{
    struct pgs *s = r->job->s;
    struct pgs_entity *pe = &s->ents[t->ent];
    r->task = t;
    r->ent = pe;
    r->field = 0;
    r->bad = false;
    r->rows = 0;
    r->carry_len = 0;
    char *q = task_query(r, t);
    if (!q) {
        rd_fail(r, SLUICE_ERR, "out of memory");
        return r->rc;
    }
    PGresult *res = PQexec(r->conn, q);
    free(q);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        rd_fail(r, conn_status(r->conn), "initial sync of %s.%s: %s", pe->schema, pe->table,
                res_msg(res, r->conn));
        PQclear(res);
        return r->rc;
    }
    PQclear(res);
    char *buf = NULL;
    int n;
    while ((n = PQgetCopyData(r->conn, &buf, 0)) > 0) {
        snap_text_chunk(r, buf, (size_t)n);
        PQfreemem(buf);
        buf = NULL;
        if (r->rc == SLUICE_OK && atomic_load(&r->job->abort))
            rd_fail(r, SLUICE_STOPPED, "stopping");
        if (r->rc != SLUICE_OK) {
            /* the COPY cannot be cancelled cheaply: drop the session */
            PQfinish(r->conn);
            r->conn = NULL;
            return r->rc;
        }
    }
    if (n == -2) {
        rd_fail(r, SLUICE_RETRY, "initial sync of %s.%s: %s", pe->schema, pe->table,
                pq_msg(r->conn));
        return r->rc;
    }
    res = PQgetResult(r->conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rd_fail(r, conn_status(r->conn), "initial sync of %s.%s: %s", pe->schema, pe->table,
                res_msg(res, r->conn));
    PQclear(res);
    while ((res = PQgetResult(r->conn)) != NULL)
        PQclear(res);
    if (r->rc == SLUICE_OK && r->carry_len)
        /* PostgreSQL ends every row with a newline: a rest is a truncated row */
        rd_fail(r, SLUICE_RETRY,
                "initial sync of %s.%s: COPY output ends inside row %" PRIu64
                " (no newline); run again",
                pe->schema, pe->table, r->rows + 1);
    if (r->rc == SLUICE_OK)
        rd_emit(r);
    return r->rc;
}

static void *snap_reader_main(void *arg)
{
    struct snap_reader *r = arg;
    struct snap_job *j = r->job;
    struct pgs *s = j->s;
    for (;;) {
        if (atomic_load(&j->abort) || s->host->stopping(s->ctx))
            break;
        pthread_mutex_lock(&j->lock);
        const struct snap_task *t = j->next < j->ntasks ? &j->tasks[j->next++] : NULL;
        pthread_mutex_unlock(&j->lock);
        if (!t)
            break;
        if (snap_copy(r, t) != SLUICE_OK)
            break;
        pthread_mutex_lock(&j->lock);
        if (--j->ent_left[t->ent] == 0) {
            struct pgs_entity *pe = &s->ents[t->ent];
            s->host->progress(s->ctx, pe->e, j->ent_rows[t->ent], j->ent_estimate[t->ent]);
            s->host->log(s->ctx, SLUICE_LOG_INFO, "initial sync of %s.%s: %" PRIu64 " rows",
                         pe->schema, pe->table, j->ent_rows[t->ent]);
        }
        pthread_mutex_unlock(&j->lock);
    }
    if (r->b) {
        s->host->batch_discard(r->b);
        r->b = NULL;
    }
    if (r->rc != SLUICE_OK) {
        pthread_mutex_lock(&j->lock);
        /* the first real failure wins over the "stopping" of the others */
        if (j->rc == SLUICE_OK || (j->rc == SLUICE_STOPPED && r->rc != SLUICE_STOPPED)) {
            j->rc = r->rc;
            snprintf(j->error, sizeof j->error, "%s", r->error);
        }
        pthread_mutex_unlock(&j->lock);
        atomic_store(&j->abort, true);
    }
    return NULL;
}

/* The tasks: every entity in `only` (all when NULL), large tables in page
 * ranges when the server can scan a ctid range (>= 14) and there is more than
 * one reader. Queried on s->sql. */
static int plan_tasks(struct snap_job *j, const bool *only, uint32_t nreaders)
{
    struct pgs *s = j->s;
    bool ranges = nreaders > 1 && s->split_bytes && PQserverVersion(s->sql) >= 140000;
    uint64_t *pages = calloc(s->nents ? s->nents : 1, sizeof *pages);
    uint64_t total = 0, block = 8192;
    int rc = SLUICE_OK;
    if (!pages)
        return SLUICE_ERR;
    for (uint32_t i = 0; i < s->nents; i++) {
        if (only && !only[i])
            continue;
        char relid[16];
        snprintf(relid, sizeof relid, "%" PRIu32, s->ents[i].relid);
        const char *p1[1] = {relid};
        PGresult *res = sql_query(
            s,
            "SELECT GREATEST(reltuples, 0)::bigint, pg_relation_size(oid) / "
            "current_setting('block_size')::bigint, current_setting('block_size')::bigint "
            "FROM pg_class WHERE oid = $1",
            1, p1, "size of a table to copy", &rc);
        if (!res)
            goto out;
        if (PQntuples(res) == 1) {
            j->ent_estimate[i] = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
            pages[i] = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
            block = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
        }
        PQclear(res);
        total += pages[i];
    }
    /* about four tasks per reader over all tables, none under snapshot_split_mb */
    uint64_t chunk = total / ((uint64_t)nreaders * 4), least = s->split_bytes / (block ? block : 8192);
    if (chunk < least)
        chunk = least;
    if (chunk < 1)
        chunk = 1;
    for (uint32_t i = 0; i < s->nents; i++) {
        if (only && !only[i])
            continue;
        uint64_t n = ranges && pages[i] >= 2 * chunk ? (pages[i] + chunk - 1) / chunk : 1;
        struct snap_task *t = realloc(j->tasks, (j->ntasks + n) * sizeof *t);
        if (!t) {
            rc = SLUICE_ERR;
            goto out;
        }
        j->tasks = t;
        for (uint64_t c = 0; c < n; c++)
            /* the last range is open: the snapshot may see rows on pages the
             * size above did not count */
            j->tasks[j->ntasks++] = (struct snap_task){
                .ent = i, .chunk = (uint32_t)c, .nchunks = (uint32_t)n,
                .from_page = c * chunk, .to_page = c + 1 < n ? (c + 1) * chunk : 0};
        j->ent_left[i] = (uint32_t)n;
    }
out:
    free(pages);
    return rc;
}

/*
 * Read the entities in `only` (all when NULL) inside the exported snapshot
 * `snapshot`, in s->snapshot_workers sessions. pos/len: the position prefix
 * of the batches; their last 8 bytes count the batches (they start from the
 * value in pos). Returns SLUICE_OK when every row was emitted.
 */
static int snapshot_tables(struct pgs *s, const char *snapshot, const bool *only,
                           const uint8_t *pos, uint32_t len)
{
    struct snap_job j = {.s = s, .rc = SLUICE_OK, .pos_len = len};
    memcpy(j.pos, pos, len);
    uint32_t nreaders = s->snapshot_workers;
    j.ent_rows = calloc(s->nents + 1, sizeof *j.ent_rows);
    j.ent_left = calloc(s->nents + 1, sizeof *j.ent_left);
    j.ent_estimate = calloc(s->nents + 1, sizeof *j.ent_estimate);
    struct snap_reader *rd = calloc(nreaders, sizeof *rd);
    pthread_mutex_init(&j.lock, NULL);
    atomic_init(&j.abort, false);
    int rc = SLUICE_ERR;
    if (!j.ent_rows || !j.ent_left || !j.ent_estimate || !rd) {
        s->host->set_error(s->ctx, "out of memory");
        goto out;
    }
    rc = plan_tasks(&j, only, nreaders);
    if (rc != SLUICE_OK)
        goto out;
    if (nreaders > j.ntasks)
        nreaders = j.ntasks ? (uint32_t)j.ntasks : 1;
    /* every session imports the snapshot before any reading starts */
    char *lit = PQescapeLiteral(s->sql, snapshot, strlen(snapshot)), *imp = NULL;
    if (!lit || asprintf(&imp, "SET TRANSACTION SNAPSHOT %s", lit) < 0)
        imp = NULL;
    PQfreemem(lit);
    for (uint32_t i = 0; i < nreaders && rc == SLUICE_OK; i++) {
        struct snap_reader *r = &rd[i];
        r->job = &j;
        r->vals = calloc(s->nvals ? s->nvals : 1, sizeof *r->vals);
        r->conn = pgs_connect(s, false);
        if (!r->conn) {
            rc = SLUICE_RETRY;
            break;
        }
        const char *steps[2] = {"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", imp};
        for (int k = 0; k < 2 && rc == SLUICE_OK; k++) {
            PGresult *res = steps[k] ? PQexec(r->conn, steps[k]) : NULL;
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                s->host->set_error(s->ctx, "snapshot session %u: %s: %s", i + 1,
                                   k ? "import the slot's snapshot" : "begin",
                                   steps[k] ? res_msg(res, r->conn) : "out of memory");
                rc = steps[k] ? conn_status(r->conn) : SLUICE_ERR;
            }
            PQclear(res);
        }
        if (rc == SLUICE_OK && !r->vals) {
            s->host->set_error(s->ctx, "out of memory");
            rc = SLUICE_ERR;
        }
    }
    free(imp);
    if (rc != SLUICE_OK)
        goto out;
    s->host->log(s->ctx, SLUICE_LOG_INFO,
                 "snapshot: %zu tasks over %u sessions sharing snapshot %s", j.ntasks, nreaders,
                 snapshot);
    for (uint32_t i = 0; i < nreaders; i++) {
        if (pthread_create(&rd[i].thread, NULL, snap_reader_main, &rd[i]) != 0) {
            atomic_store(&j.abort, true);
            j.rc = SLUICE_ERR;
            snprintf(j.error, sizeof j.error, "cannot start a snapshot thread: %s",
                     strerror(errno));
            break;
        }
        rd[i].started = true;
    }
    for (uint32_t i = 0; i < nreaders; i++)
        if (rd[i].started)
            pthread_join(rd[i].thread, NULL);
    rc = j.rc;
    if (rc == SLUICE_OK && j.next < j.ntasks)
        rc = SLUICE_STOPPED; /* the host stopped the readers */
    if (rc != SLUICE_OK && rc != SLUICE_STOPPED)
        s->host->set_error(s->ctx, "%s", j.error);
    for (uint32_t i = 0; rc == SLUICE_OK && i < nreaders; i++) {
        PGresult *res = PQexec(rd[i].conn, "COMMIT");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            s->host->set_error(s->ctx, "end the snapshot transaction: %s",
                               res_msg(res, rd[i].conn));
            rc = conn_status(rd[i].conn);
        }
        PQclear(res);
    }
out:
    for (uint32_t i = 0; rd && i < nreaders; i++) {
        PQfinish(rd[i].conn);
        free(rd[i].vals);
        free(rd[i].carry);
        free(rd[i].unesc);
        if (rd[i].b)
            s->host->batch_discard(rd[i].b);
    }
    free(rd);
    free(j.tasks);
    free(j.ent_rows);
    free(j.ent_left);
    free(j.ent_estimate);
    pthread_mutex_destroy(&j.lock);
    return rc;
}

/* one batch of TRUNCATE events for the given entities (all when only < 0) */
static int emit_truncates(struct pgs *s, const bool *only, const uint8_t *pos, uint32_t len)
{
    if (!batch(s))
        return SLUICE_ERR;
    for (uint32_t i = 0; i < s->nents; i++) {
        if (only && !only[i])
            continue;
        struct sluice_event *ev = s->host->batch_append(s->b, s->ents[i].e, SLUICE_OP_TRUNCATE);
        if (!ev) {
            s->host->set_error(s->ctx, "out of memory (batch append)");
            return SLUICE_ERR;
        }
        ev->version = PGS_SNAPSHOT_VERSION;
    }
    return emit(s, pos, len, false);
}

/* ---- publication and slot ---------------------------------------------------------- */

static int ensure_publication(struct pgs *s)
{
    int rc;
    char comment[256];
    snprintf(comment, sizeof comment, "created by sluice for profile %s", s->profile);
    const char *p1[1] = {s->publication};
    char *qpub = PQescapeIdentifier(s->sql, s->publication, strlen(s->publication));
    char *sql = NULL, *list = NULL;
    size_t list_len = 0;
    FILE *lf = NULL;
    PGresult *r = sql_query(s,
                            "SELECT coalesce(obj_description(oid, 'pg_publication'), '') "
                            "FROM pg_publication WHERE pubname = $1",
                            1, p1, "look up the publication", &rc);
    if (!r || !qpub)
        goto out;
    bool exists = PQntuples(r) == 1;
    bool ours = exists && strcmp(PQgetvalue(r, 0, 0), comment) == 0;
    PQclear(r);
    r = NULL;

    /* the profile's tables the publication lacks */
    lf = open_memstream(&list, &list_len);
    if (!lf) {
        rc = SLUICE_ERR;
        goto out;
    }
    uint32_t missing = 0;
    for (uint32_t i = 0; i < s->nents; i++) {
        struct pgs_entity *pe = &s->ents[i];
        if (exists) {
            const char *p3[3] = {s->publication, pe->schema, pe->table};
            r = sql_query(s,
                          "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND "
                          "schemaname = $2 AND tablename = $3",
                          3, p3, "read the publication's tables", &rc);
            if (!r)
                goto out;
            bool has = PQntuples(r) > 0;
            PQclear(r);
            r = NULL;
            if (has)
                continue;
        }
        char *tn = qname(s, pe);
        fprintf(lf, "%s%s", missing ? ", " : "", tn ? tn : "");
        free(tn);
        missing++;
    }
    fclose(lf);
    lf = NULL;
    rc = SLUICE_OK;
    if (!missing)
        goto out;
    if (!s->create_publication || (exists && !ours)) {
        s->host->set_error(s->ctx,
                           "publication %s %s the tables %s; add them (ALTER PUBLICATION %s ADD "
                           "TABLE ...) or set create_publication = true with a publication "
                           "sluice owns",
                           s->publication, exists ? "lacks" : "does not exist for", list,
                           s->publication);
        rc = SLUICE_ERR;
        goto out;
    }
    if (exists) {
        if (asprintf(&sql, "ALTER PUBLICATION %s ADD TABLE %s", qpub, list) < 0)
            sql = NULL;
    } else if (asprintf(&sql, "CREATE PUBLICATION %s FOR TABLE %s", qpub, list) < 0) {
        sql = NULL;
    }
    if (!sql) {
        rc = SLUICE_ERR;
        goto out;
    }
    rc = sql_exec(s, sql, 0, NULL, exists ? "add tables to the publication"
                                          : "create the publication");
    if (rc != SLUICE_OK)
        goto out;
    if (!exists) {
        free(sql);
        sql = NULL;
        char *lit = PQescapeLiteral(s->sql, comment, strlen(comment));
        if (!lit || asprintf(&sql, "COMMENT ON PUBLICATION %s IS %s", qpub, lit) < 0)
            sql = NULL;
        PQfreemem(lit);
        rc = sql ? sql_exec(s, sql, 0, NULL, "comment the publication") : SLUICE_ERR;
    }
    if (rc == SLUICE_OK)
        s->host->log(s->ctx, SLUICE_LOG_INFO, "publication %s %s: %s", s->publication,
                     exists ? "extended by" : "created for", list);
out:
    if (lf)
        fclose(lf);
    PQclear(r);
    PQfreemem(qpub);
    free(sql);
    free(list);
    return rc;
}

/* 1: the slot exists, 0: it does not, <0: -status */
static int slot_exists(struct pgs *s, bool *active)
{
    int rc;
    const char *p1[1] = {s->slot};
    PGresult *r = sql_query(s, "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                            1, p1, "look up the replication slot", &rc);
    if (!r)
        return -rc;
    int n = PQntuples(r);
    if (active)
        *active = n && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return n ? 1 : 0;
}

static int drop_slot(struct pgs *s)
{
    bool active = false;
    int ex = slot_exists(s, &active);
    if (ex < 0)
        return -ex;
    if (!ex)
        return SLUICE_OK;
    if (active) {
        s->host->set_error(s->ctx,
                           "replication slot %s is in use by another connection (another "
                           "sluice, or one that has not exited yet); trying again",
                           s->slot);
        return SLUICE_RETRY;
    }
    const char *p1[1] = {s->slot};
    return sql_exec(s, "SELECT pg_drop_replication_slot($1)", 1, p1,
                    "drop the replication slot");
}

/* ---- the change stream -------------------------------------------------------------- */

static struct pgs_entity *entity_by_relid(struct pgs *s, uint32_t relid)
{
    for (uint32_t i = 0; i < s->nents; i++)
        if (s->ents[i].relid == relid && s->ents[i].att_map)
            return &s->ents[i];
    return NULL;
}

/* A Relation message: map its attributes onto the entity's columns, and
 * declare the entity again when its columns changed. */
static int on_relation(struct pgs *s, const uint8_t *data, size_t len)
{
    struct pgo_relation *rel = &s->rel;
    if (pgo_relation(data, len, rel) != 0) {
        s->host->set_error(s->ctx, "malformed Relation message from pgoutput");
        return SLUICE_ERR;
    }
    struct pgs_entity *pe = NULL;
    for (uint32_t i = 0; i < s->nents; i++)
        if (strcmp(s->ents[i].schema, rel->nspname) == 0 &&
            strcmp(s->ents[i].table, rel->relname) == 0)
            pe = &s->ents[i];
    if (!pe)
        return SLUICE_OK; /* a table of the publication the profile does not export */
    pe->relid = rel->relid;

    bool same = rel->natts == pe->ncols;
    for (uint32_t i = 0; same && i < rel->natts; i++)
        same = strcmp(rel->atts[i].name, pe->cols[i].name) == 0 &&
               rel->atts[i].typoid == pe->cols[i].typoid &&
               rel->atts[i].typmod == pe->cols[i].typmod;
    if (!same) {
        /* events of the old shape go out first */
        if (s->b && s->b->nevents) {
            int rc = emit_stream(s);
            if (rc != SLUICE_OK)
                return rc;
        }
        struct pgs_col *cols = calloc(rel->natts ? rel->natts : 1, sizeof *cols);
        if (!cols)
            return SLUICE_ERR;
        for (uint32_t i = 0; i < rel->natts; i++) {
            cols[i].name = strdup(rel->atts[i].name);
            cols[i].typoid = rel->atts[i].typoid;
            cols[i].typmod = rel->atts[i].typmod;
            cols[i].nullable = true;
            for (uint32_t j = 0; j < pe->ncols; j++)
                if (strcmp(pe->cols[j].name, cols[i].name) == 0)
                    cols[i].nullable = pe->cols[j].nullable;
        }
        uint32_t old_n = pe->ncols;
        entity_free_cols(pe);
        pe->cols = cols;
        pe->ncols = rel->natts;
        int rc = declare(s, pe);
        if (rc != SLUICE_OK)
            return rc;
        s->host->log(s->ctx, SLUICE_LOG_INFO,
                     "table %s.%s changed shape (%u -> %u columns): entity declared again",
                     pe->schema, pe->table, old_n, pe->ncols);
    }
    int32_t *map = realloc(pe->att_map, (rel->natts ? rel->natts : 1) * sizeof *map);
    if (!map)
        return SLUICE_ERR;
    pe->att_map = map;
    pe->natt_map = rel->natts;
    for (uint32_t i = 0; i < rel->natts; i++)
        map[i] = (int32_t)i; /* the entity's columns are the relation's, in order */
    return SLUICE_OK;
}

static void lsn_where(char *out, size_t cap, const struct pgs_entity *pe, uint64_t lsn)
{
    char l[24];
    pgo_lsn_format(lsn, l);
    snprintf(out, cap, "table %s.%s, change at LSN %s", pe->schema, pe->table, l);
}

/* record id of a tuple: the key columns' text joined by ',' */
/* the record id (sluice/record_id.h) of a tuple's key, from its text (a
 * truncated id is still a useful name in the failed-record log) */
static void tuple_id(const struct pgs_entity *pe, const struct pgo_tuple *t, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t k = 0; k < pe->e->nkeys; k++) {
        uint32_t c = pe->e->key_columns[k];
        const struct pgo_col *col = c < t->ncols ? &t->cols[c] : NULL;
        bool text = col && col->kind == 't';
        sluice_record_id_append(out, cap, &n, k == 0, text ? col->data : NULL,
                                text ? col->len : 0);
    }
}

/* Parse a tuple into s->vals (keys_only: only the key columns). 0 or -1
 * (reason in why). */
static int parse_tuple(struct pgs *s, const struct pgs_entity *pe, const struct pgo_tuple *t,
                       bool keys_only, char *why, size_t cap)
{
    const struct sluice_entity *e = pe->e;
    for (uint32_t i = 0; i < e->ncolumns; i++)
        s->vals[i] = (struct sluice_value){.state = SLUICE_ABSENT};
    if (t->ncols != pe->natt_map) {
        snprintf(why, cap, "tuple has %u columns, the relation %u", t->ncols, pe->natt_map);
        return -1;
    }
    for (uint32_t a = 0; a < t->ncols; a++) {
        int32_t c = pe->att_map[a];
        if (c < 0)
            continue;
        const struct sluice_column *col = &e->columns[c];
        if (keys_only && !(col->flags & SLUICE_COL_KEY))
            continue;
        const struct pgo_col *v = &t->cols[a];
        if (v->kind == 'n') {
            sluice_value_set_null(&s->vals[c]);
        } else if (v->kind == 'u') {
            /* unchanged TOAST: the sink keeps the target's value */
        } else if (s->host->value_parse(s->ctx, s->b, col, v->data, v->len, &s->vals[c]) !=
                   SLUICE_OK) {
            snprintf(why, cap, "column %s: cannot read the value", col->name);
            return -1;
        }
    }
    return 0;
}

static int append_event(struct pgs *s, const struct pgs_entity *pe, int op, uint64_t version)
{
    struct sluice_event *ev = s->host->batch_append(s->b, pe->e, op);
    if (!ev) {
        s->host->set_error(s->ctx, "out of memory (batch append)");
        return SLUICE_ERR;
    }
    ev->version = version;
    ev->commit_time_us = s->txn_time_us;
    ev->txid = s->txn_xid;
    memcpy(ev->values, s->vals, pe->e->ncolumns * sizeof *s->vals);
    s->txn_events++;
    return SLUICE_OK;
}

static bool key_changed(const struct pgs_entity *pe, const struct pgo_tuple *o,
                        const struct pgo_tuple *n)
{
    for (uint32_t k = 0; k < pe->e->nkeys; k++) {
        uint32_t c = pe->e->key_columns[k];
        if (c >= o->ncols || c >= n->ncols)
            return true;
        const struct pgo_col *a = &o->cols[c], *b = &n->cols[c];
        if (b->kind == 'u')
            continue;
        if (a->kind != b->kind || a->len != b->len ||
            (a->len && memcmp(a->data, b->data, a->len) != 0))
            return true;
    }
    return false;
}

/*
 * An update that changed the key arrives as a delete of the old key and an
 * upsert of the new one; an unchanged TOAST value of the new row is not in
 * the stream ('u'), and the target has no row under the new key to keep it
 * from. Read those columns from the source by the new key (s->vals holds the
 * parsed new tuple). The row may have changed since: those later changes are
 * still ahead in the stream and overwrite what this reads; a row deleted since
 * (not found) keeps the columns ABSENT, and its delete is ahead too.
 */
static int fill_unchanged_toast(struct pgs *s, const struct pgs_entity *pe)
{
    const struct sluice_entity *e = pe->e;
    uint32_t *want = calloc(e->ncolumns ? e->ncolumns : 1, sizeof *want);
    const struct sluice_value **key = calloc(e->nkeys ? e->nkeys : 1, sizeof *key);
    size_t nwant = 0;
    PGresult *r = NULL;
    int rc = SLUICE_OK;
    if (!want || !key) {
        s->host->set_error(s->ctx, "out of memory");
        rc = SLUICE_ERR;
        goto out;
    }
    for (uint32_t c = 0; c < e->ncolumns; c++)
        if (s->vals[c].state == SLUICE_ABSENT && !(e->columns[c].flags & SLUICE_COL_KEY))
            want[nwant++] = c;
    for (uint32_t k = 0; k < e->nkeys; k++) {
        key[k] = &s->vals[e->key_columns[k]];
        if (key[k]->state != SLUICE_PRESENT)
            goto out; /* a NULL or missing key: nothing to read by */
    }
    if (!nwant)
        goto out;
    rc = select_by_key(s, pe, e, want, nwant, NULL, key,
                       "read the unchanged TOAST values after a key change", &r);
    for (size_t i = 0; rc == SLUICE_OK && PQntuples(r) == 1 && i < nwant; i++) {
        uint32_t c = want[i];
        if (PQgetisnull(r, 0, (int)i))
            sluice_value_set_null(&s->vals[c]);
        else if (s->host->value_parse(s->ctx, s->b, &e->columns[c], PQgetvalue(r, 0, (int)i),
                                      (size_t)PQgetlength(r, 0, (int)i),
                                      &s->vals[c]) != SLUICE_OK)
            s->vals[c] = (struct sluice_value){.state = SLUICE_ABSENT};
    }
out:
    free(want);
    free(key);
    PQclear(r);
    return rc;
}

static int on_change(struct pgs *s, const uint8_t *data, size_t len, uint64_t lsn)
{
    struct pgo_change *c = &s->chg;
    char why[256], where[200], id[256];
    if (pgo_change(data, len, c) != 0) {
        s->host->set_error(s->ctx, "malformed change message from pgoutput");
        return SLUICE_ERR;
    }
    struct pgs_entity *pe = entity_by_relid(s, c->relid);
    if (!pe)
        return SLUICE_OK;
    if (!batch(s))
        return SLUICE_ERR;
    int rc = SLUICE_OK;
    bool rekeyed = c->op == 'U' && c->old_kind && key_changed(pe, &c->old_tuple, &c->new_tuple);
    if (c->op == 'D' || rekeyed) {
        /* a delete, or the old key of an update that changed the key */
        if (parse_tuple(s, pe, &c->old_tuple, true, why, sizeof why) != 0)
            goto bad_old;
        rc = append_event(s, pe, SLUICE_OP_DELETE, lsn);
        if (rc != SLUICE_OK || c->op == 'D')
            return rc;
    }
    if (parse_tuple(s, pe, &c->new_tuple, false, why, sizeof why) != 0)
        goto bad_new;
    if (rekeyed && (rc = fill_unchanged_toast(s, pe)) != SLUICE_OK)
        return rc;
    return append_event(s, pe, c->op == 'I' ? SLUICE_OP_INSERT : SLUICE_OP_UPDATE, lsn);
bad_old:
    tuple_id(pe, &c->old_tuple, id, sizeof id);
    goto bad;
bad_new:
    tuple_id(pe, &c->new_tuple, id, sizeof id);
bad:
    lsn_where(where, sizeof where, pe, lsn);
    s->host->record_failed(s->ctx, pe->e, id, where, why);
    return SLUICE_OK;
}

static int on_truncate(struct pgs *s, const uint8_t *data, size_t len, uint64_t lsn)
{
    if (pgo_truncate(data, len, &s->trunc) != 0) {
        s->host->set_error(s->ctx, "malformed Truncate message from pgoutput");
        return SLUICE_ERR;
    }
    for (uint32_t i = 0; i < s->trunc.nrels; i++) {
        struct pgs_entity *pe = entity_by_relid(s, s->trunc.relids[i]);
        if (!pe)
            continue;
        if (!s->truncate) {
            s->host->log(s->ctx, SLUICE_LOG_INFO,
                         "table %s.%s was truncated in the source; not applied (truncate = "
                         "false)",
                         pe->schema, pe->table);
            continue;
        }
        if (!batch(s))
            return SLUICE_ERR;
        for (uint32_t c = 0; c < pe->e->ncolumns; c++)
            s->vals[c] = (struct sluice_value){.state = SLUICE_ABSENT};
        int rc = append_event(s, pe, SLUICE_OP_TRUNCATE, lsn);
        if (rc != SLUICE_OK)
            return rc;
    }
    return SLUICE_OK;
}

static int send_status(struct pgs *s, bool reply)
{
    uint8_t msg[34];
    pthread_mutex_lock(&s->ack_lock);
    uint64_t flush = pos_lsn(&s->acked);
    bool all_acked = sluice_position_cmp(&s->acked, &s->emitted) >= 0;
    pthread_mutex_unlock(&s->ack_lock);
    if (flush < s->start_lsn)
        flush = s->start_lsn;
    /* idle: nothing open, nothing unacked: what the server skipped (other
     * tables, other databases) can be released too - the slot's heartbeat */
    if (!s->in_txn && (!s->b || s->b->nevents == 0) && all_acked &&
        pos_lsn(&s->emitted) == s->commit_end && s->server_end > flush)
        flush = s->server_end;
    uint64_t write = s->received_lsn > flush ? s->received_lsn : flush;
    pgo_status_update(msg, write, flush, flush, now_pg_us(), reply);
    s->last_status_us = now_us();
    if (PQputCopyData(s->repl, (const char *)msg, sizeof msg) != 1 || PQflush(s->repl) != 0) {
        s->host->set_error(s->ctx, "replication connection: cannot send a status update: %s",
                           pq_msg(s->repl));
        return SLUICE_RETRY;
    }
    return SLUICE_OK;
}

static void check_retained_wal(struct pgs *s)
{
    s->last_wal_check_us = now_us();
    if (s->max_wal_mb <= 0 || !s->sql)
        return;
    int rc;
    const char *p1[1] = {s->slot};
    PGresult *r = sql_query(s,
                            "SELECT (pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) / "
                            "1048576)::bigint FROM pg_replication_slots WHERE slot_name = $1",
                            1, p1, "check retained WAL", &rc);
    if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        long long mb = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        if (mb > s->max_wal_mb)
            s->host->log(s->ctx, SLUICE_LOG_WARN,
                         "replication slot %s holds back %lld MB of WAL (max_retained_wal_mb "
                         "= %" PRId64 "); the target is not keeping up or sluice was stopped "
                         "for long - see docs/source-pg.md",
                         s->slot, mb, s->max_wal_mb);
    }
    PQclear(r);
}

static int on_xlogdata(struct pgs *s, const struct pgo_frame *f)
{
    if (f->len == 0)
        return SLUICE_OK;
    if (f->wal_start > s->received_lsn)
        s->received_lsn = f->wal_start;
    switch (f->data[0]) {
    case 'B': {
        struct pgo_begin b;
        if (pgo_begin(f->data, f->len, &b) != 0)
            break;
        s->in_txn = true;
        s->txn_events = 0;
        s->txn_time_us = b.commit_time + PGO_EPOCH_OFFSET_US;
        s->txn_xid = b.xid;
        return SLUICE_OK;
    }
    case 'C': {
        struct pgo_commit c;
        if (pgo_commit(f->data, f->len, &c) != 0)
            break;
        s->in_txn = false;
        s->txn_events = 0;
        if (c.end_lsn > s->commit_end)
            s->commit_end = c.end_lsn;
        if (c.end_lsn > s->received_lsn)
            s->received_lsn = c.end_lsn;
        return SLUICE_OK;
    }
    case 'R': return on_relation(s, f->data, f->len);
    case 'I':
    case 'U':
    case 'D': return on_change(s, f->data, f->len, f->wal_start);
    case 'T': return on_truncate(s, f->data, f->len, f->wal_start);
    case 'M': {
        struct pgo_message m;
        if (pgo_message(f->data, f->len, &m) != 0)
            break;
        if (s->once_marker && strcmp(m.prefix, s->marker_prefix) == 0 &&
            m.lsn >= s->once_marker)
            s->once_done = true;
        if (!(m.flags & 1) && m.lsn > s->server_end)
            s->server_end = m.lsn;
        return SLUICE_OK;
    }
    case 'Y': /* Type: we map by OID and read everything else as text */
    case 'O': /* Origin */
        return SLUICE_OK;
    default:
        s->host->set_error(s->ctx, "unknown pgoutput message type '%c'", f->data[0]);
        return SLUICE_ERR;
    }
    s->host->set_error(s->ctx, "malformed pgoutput message '%c' (%zu bytes)", f->data[0], f->len);
    return SLUICE_ERR;
}

static int start_streaming(struct pgs *s)
{
    char lsn[24], *q = NULL, *pub = NULL;
    int rc = SLUICE_OK;
    pgo_lsn_format(s->start_lsn, lsn);
    char *lit = PQescapeLiteral(s->repl, s->publication, strlen(s->publication));
    char *pubid = PQescapeIdentifier(s->repl, s->publication, strlen(s->publication));
    /* publication_names is a literal holding a comma-separated identifier list */
    if (!pubid)
        goto oom;
    PQfreemem(lit);
    lit = PQescapeLiteral(s->repl, pubid, strlen(pubid));
    if (!lit ||
        asprintf(&q,
                 "START_REPLICATION SLOT \"%s\" LOGICAL %s (proto_version '1', "
                 "publication_names %s, messages 'true')",
                 s->slot, lsn, lit) < 0) {
        q = NULL;
        goto oom;
    }
    PGresult *r = PQexec(s->repl, q);
    if (PQresultStatus(r) != PGRES_COPY_BOTH) {
        s->host->set_error(s->ctx, "START_REPLICATION of slot %s at %s: %s", s->slot, lsn,
                           res_msg(r, s->repl));
        /* "slot is active" clears when the previous walsender exits */
        rc = SLUICE_RETRY;
    }
    PQclear(r);
    goto out;
oom:
    s->host->set_error(s->ctx, "out of memory");
    rc = SLUICE_ERR;
out:
    PQfreemem(lit);
    PQfreemem(pubid);
    free(q);
    free(pub);
    return rc;
}

static int stream(struct pgs *s, int mode)
{
    int rc = start_streaming(s);
    if (rc != SLUICE_OK)
        return rc;
    s->host->log(s->ctx, SLUICE_LOG_INFO, "streaming changes from slot %s", s->slot);
    s->last_status_us = 0;
    uint64_t since_check = 0;
    for (;;) {
        if (s->host->stopping(s->ctx))
            return SLUICE_STOPPED;
        char *buf = NULL;
        int n = PQgetCopyData(s->repl, &buf, 1);
        if (n > 0) {
            struct pgo_frame f;
            if (pgo_frame((const uint8_t *)buf, (size_t)n, &f) != 0) {
                PQfreemem(buf);
                s->host->set_error(s->ctx, "malformed replication frame (%d bytes)", n);
                return SLUICE_RETRY;
            }
            if (f.type == 'w') {
                rc = on_xlogdata(s, &f);
            } else {
                if (f.wal_end > s->server_end)
                    s->server_end = f.wal_end;
                rc = f.reply ? send_status(s, false) : SLUICE_OK;
            }
            PQfreemem(buf);
            if (rc != SLUICE_OK)
                return rc;
            if (s->b && s->b->nevents && s->host->batch_full(s->b)) {
                rc = emit_stream(s);
                if (rc != SLUICE_OK)
                    return rc;
            }
            if (++since_check < 1024)
                continue;
            since_check = 0;
        } else if (n == -1) {
            PGresult *r = PQgetResult(s->repl);
            s->host->set_error(s->ctx, "the server ended the replication stream: %s",
                               res_msg(r, s->repl));
            PQclear(r);
            return SLUICE_RETRY;
        } else if (n == -2) {
            s->host->set_error(s->ctx, "replication connection lost: %s", pq_msg(s->repl));
            return SLUICE_RETRY;
        }
        /* no more data right now (or a periodic check while busy) */
        if (n == 0) {
            /* the server has nothing more right now: at a transaction
             * boundary the batch goes out (idle_flush) instead of waiting for
             * batch_linger_ms; under load data keeps coming and batches fill */
            if (s->b && s->b->nevents &&
                (s->host->batch_full(s->b) || s->once_done || (s->idle_flush && !s->in_txn))) {
                rc = emit_stream(s);
                if (rc != SLUICE_OK)
                    return rc;
            }
            if ((!s->b || !s->b->nevents) && !s->in_txn &&
                s->commit_end > pos_lsn(&s->emitted)) {
                rc = emit_stream(s); /* an empty batch moves the checkpoint */
                if (rc != SLUICE_OK)
                    return rc;
            }
            if (s->once_done && !s->in_txn && (!s->b || !s->b->nevents))
                return SLUICE_OK;
        }
        uint64_t now = now_us();
        if (s->cover_pending) {
            pthread_mutex_lock(&s->ack_lock);
            bool done = sluice_position_cmp(&s->acked, &s->cover_pos) >= 0;
            pthread_mutex_unlock(&s->ack_lock);
            if (done)
                write_covered(s);
        }
        if (now - s->last_status_us >= (uint64_t)s->status_ms * 1000u) {
            rc = send_status(s, false);
            if (rc != SLUICE_OK)
                return rc;
        }
        if (now - s->last_wal_check_us >= PGS_WAL_CHECK_US)
            check_retained_wal(s);
        if (n != 0)
            continue;
        struct pollfd pfd = {.fd = PQsocket(s->repl), .events = POLLIN};
        int timeout = (s->b && s->b->nevents) ? 20 : PGS_POLL_MS;
        if (poll(&pfd, 1, timeout) < 0 && errno != EINTR) {
            s->host->set_error(s->ctx, "poll: %s", strerror(errno));
            return SLUICE_RETRY;
        }
        if (PQconsumeInput(s->repl) != 1) {
            s->host->set_error(s->ctx, "replication connection lost: %s", pq_msg(s->repl));
            return SLUICE_RETRY;
        }
    }
    (void)mode;
}

/* ---- run ------------------------------------------------------------------------------ */

static int create_slot(struct pgs *s, uint64_t *consistent, char *snapshot, size_t cap)
{
    char *q = NULL;
    int rc = SLUICE_OK;
    if (asprintf(&q, "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput (SNAPSHOT 'export')",
                 s->slot) < 0)
        return SLUICE_ERR;
    PGresult *r = PQexec(s->repl, q);
    free(q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) < 3) {
        s->host->set_error(s->ctx,
                           "cannot create replication slot %s: %s; the source needs "
                           "wal_level = logical, a free max_replication_slots entry and a role "
                           "with REPLICATION",
                           s->slot, res_msg(r, s->repl));
        rc = conn_status(s->repl) == SLUICE_RETRY ? SLUICE_RETRY : SLUICE_ERR;
        goto out;
    }
    if (pgo_lsn_parse(PQgetvalue(r, 0, 1), consistent) != 0) {
        s->host->set_error(s->ctx, "unexpected consistent point \"%s\"", PQgetvalue(r, 0, 1));
        rc = SLUICE_ERR;
        goto out;
    }
    snprintf(snapshot, cap, "%s", PQgetvalue(r, 0, 2));
out:
    PQclear(r);
    return rc;
}

/* the initial sync: a new slot, every table inside its exported snapshot */
static int initial_sync(struct pgs *s, bool restart)
{
    uint64_t consistent = 0;
    char snapshot[128];
    int rc = drop_slot(s);
    if (rc != SLUICE_OK)
        return rc;
    rc = create_slot(s, &consistent, snapshot, sizeof snapshot);
    if (rc != SLUICE_OK)
        return rc;
    char l[24];
    pgo_lsn_format(consistent, l);
    s->host->log(s->ctx, SLUICE_LOG_INFO,
                 "replication slot %s created, consistent point %s; initial sync of %u "
                 "tables",
                 s->slot, l, s->nents);
    /* the snapshot restarts from scratch: no row may outlive it */
    s->cover_pending = false;
    write_covered(s);
    uint8_t pos[PGS_POS_SNAPSHOT_LEN] = {PGS_POS_SNAPSHOT};
    sluice_put_be64(pos + 1, consistent);
    if (restart) {
        rc = emit_truncates(s, NULL, pos, sizeof pos);
        if (rc != SLUICE_OK)
            return rc;
    }
    rc = snapshot_tables(s, snapshot, NULL, pos, sizeof pos);
    if (rc != SLUICE_OK)
        return rc;
    s->commit_end = consistent;
    s->start_lsn = consistent;
    struct sluice_position p;
    pos_stream(&p, consistent, 0);
    return emit(s, p.bytes, p.len, false); /* the initial sync is complete */
}

/* tables new in the profile: their own snapshot before the stream resumes.
 * Positions: the resume position, then a counter (0: the truncates, then one
 * per batch, UINT64_MAX: done). */
static int snapshot_new_tables(struct pgs *s, const struct sluice_position *resume)
{
    uint8_t pos[PGS_POS_NEWTABLE_LEN];
    memcpy(pos, resume->bytes, PGS_POS_STREAM_LEN);
    pos[PGS_POS_STREAM_LEN] = PGS_POS_NEWTABLE;
    sluice_put_be64(pos + PGS_POS_STREAM_LEN + 1, 0);
    bool *only = calloc(s->nents ? s->nents : 1, sizeof *only);
    bool any = false;
    if (!only) {
        s->host->set_error(s->ctx, "out of memory");
        return SLUICE_ERR;
    }
    for (uint32_t i = 0; i < s->nents; i++) {
        struct pgs_entity *pe = &s->ents[i];
        if (pe->covered)
            continue;
        only[i] = any = true;
        s->host->log(s->ctx, SLUICE_LOG_INFO,
                     "table %s.%s is new in the profile: taking its own snapshot before "
                     "resuming the stream",
                     pe->schema, pe->table);
    }
    int rc = SLUICE_OK;
    if (!any)
        goto out;
    rc = emit_truncates(s, only, pos, sizeof pos);
    if (rc == SLUICE_OK)
        rc = sql_exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL,
                      "begin the snapshot transaction");
    if (rc != SLUICE_OK)
        goto out;
    /* the sessions share the snapshot this transaction exports */
    PGresult *r = sql_query(s, "SELECT pg_export_snapshot()", 0, NULL, "export a snapshot", &rc);
    if (r) {
        char snapshot[128];
        snprintf(snapshot, sizeof snapshot, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        rc = snapshot_tables(s, snapshot, only, pos, sizeof pos);
    }
    int end = sql_exec(s, rc == SLUICE_OK ? "COMMIT" : "ROLLBACK", 0, NULL,
                       "end the snapshot transaction");
    if (rc == SLUICE_OK)
        rc = end;
    if (rc != SLUICE_OK)
        goto out;
    sluice_put_be64(pos + PGS_POS_STREAM_LEN + 1, UINT64_MAX);
    rc = emit(s, pos, sizeof pos, false);
    s->cover_pos.len = sizeof pos;
    memcpy(s->cover_pos.bytes, pos, sizeof pos);
    s->cover_pending = true;
out:
    free(only);
    return rc;
}

static int emit_once_marker(struct pgs *s)
{
    int rc;
    const char *p1[1] = {s->marker_prefix};
    PGresult *r = sql_query(s, "SELECT pg_logical_emit_message(false, $1, 'run-once')", 1, p1,
                            "mark the end of a --once run", &rc);
    if (!r)
        return rc;
    rc = pgo_lsn_parse(PQgetvalue(r, 0, 0), &s->once_marker) == 0 ? SLUICE_OK : SLUICE_ERR;
    PQclear(r);
    return rc;
}

static int pgs_run(void *inst, const struct sluice_position *resume, int mode)
{
    struct pgs *s = inst;
    int rc = SLUICE_OK;
    bool fresh = false, restart = false;
    s->in_txn = false;
    s->txn_events = 0;
    s->once_marker = 0;
    s->once_done = false;
    s->server_end = 0;
    s->received_lsn = 0;
    s->cover_pending = false;
    s->last_wal_check_us = 0;
    for (uint32_t i = 0; i < s->nents; i++) {
        free(s->ents[i].att_map);
        s->ents[i].att_map = NULL; /* until the stream's Relation message */
    }
    if (!s->sql) {
        rc = pgs_start(s);
        if (rc != SLUICE_OK)
            return rc;
    }
    if (resume->len == 0) {
        fresh = true;
    } else if (resume->len == PGS_POS_SNAPSHOT_LEN && resume->bytes[0] == PGS_POS_SNAPSHOT) {
        fresh = restart = true;
        s->host->log(s->ctx, SLUICE_LOG_WARN,
                     "the initial sync was interrupted; a snapshot cannot be resumed, so it "
                     "starts again from the beginning (the target's tables are emptied "
                     "first)");
    } else if ((resume->len == PGS_POS_STREAM_LEN || resume->len == PGS_POS_NEWTABLE_LEN) &&
               resume->bytes[0] == PGS_POS_STREAM) {
        int ex = slot_exists(s, NULL);
        if (ex < 0)
            return -ex;
        if (!ex) {
            s->host->log(s->ctx, SLUICE_LOG_WARN,
                         "replication slot %s is gone (dropped by hand?); the changes since "
                         "the checkpoint cannot be streamed, so the initial sync runs again",
                         s->slot);
            fresh = restart = true;
        }
    } else {
        s->host->set_error(s->ctx,
                           "the checkpoint (%u bytes) is not a pg source position; was the "
                           "profile's source changed? Delete the profile's target checkpoint "
                           "to start over",
                           resume->len);
        return SLUICE_ERR;
    }
    pthread_mutex_lock(&s->ack_lock);
    s->acked = *resume;
    pthread_mutex_unlock(&s->ack_lock);
    s->emitted = *resume;

    rc = ensure_publication(s);
    if (rc != SLUICE_OK)
        return rc;
    close_repl(s);
    s->repl = pgs_connect(s, true);
    if (!s->repl)
        return SLUICE_RETRY;

    if (fresh) {
        rc = initial_sync(s, restart);
    } else {
        s->start_lsn = pos_lsn(resume);
        s->commit_end = s->start_lsn;
        if (!read_covered(s))
            s->host->log(s->ctx, SLUICE_LOG_WARN,
                         "%s/%s is missing: every table gets a new snapshot before the "
                         "stream resumes",
                         s->state_dir ? s->state_dir : "?", PGS_COVERED_FILE);
        rc = snapshot_new_tables(s, resume);
    }
    if (rc != SLUICE_OK)
        return rc;
    if (mode == SLUICE_RUN_ONCE) {
        rc = emit_once_marker(s);
        if (rc != SLUICE_OK)
            return rc;
    }
    return stream(s, mode);
}

static void pgs_ack(void *inst, const struct sluice_position *durable)
{
    struct pgs *s = inst;
    pthread_mutex_lock(&s->ack_lock);
    if (sluice_position_cmp(durable, &s->acked) > 0)
        s->acked = *durable;
    pthread_mutex_unlock(&s->ack_lock);
}

/* ---- fetch and drop ------------------------------------------------------------------- */

static int pgs_fetch(void *inst, const struct sluice_entity *e, const struct sluice_value *key,
                     struct sluice_batch *out)
{
    struct pgs *s = inst;
    struct pgs_entity *pe = NULL;
    int rc = SLUICE_ERR;
    const struct sluice_value **keyp = NULL;
    PGresult *r = NULL;
    for (uint32_t i = 0; i < s->nents; i++)
        if (strcmp(s->ents[i].table, e->name) == 0 &&
            strcmp(s->ents[i].schema, e->ns ? e->ns : "") == 0)
            pe = &s->ents[i];
    if (!pe) {
        s->host->set_error(s->ctx, "fetch: entity %s is not exported by this profile", e->name);
        return SLUICE_ERR;
    }
    if (!s->sql && (rc = pgs_start(s)) != SLUICE_OK)
        return rc;
    rc = SLUICE_ERR;
    keyp = calloc(e->nkeys ? e->nkeys : 1, sizeof *keyp);
    if (!keyp)
        goto oom;
    for (uint32_t k = 0; k < e->nkeys; k++)
        keyp[k] = &key[k];
    rc = select_by_key(s, pe, e, NULL, e->ncolumns, "pg_current_wal_insert_lsn()::text", keyp,
                       "fetch", &r);
    if (rc != SLUICE_OK)
        goto out;
    rc = SLUICE_ERR;
    uint64_t version = 0;
    if (PQntuples(r) == 0) {
        PQclear(r);
        r = PQexec(s->sql, "SELECT pg_current_wal_insert_lsn()::text");
        if (PQresultStatus(r) != PGRES_TUPLES_OK ||
            pgo_lsn_parse(PQgetvalue(r, 0, 0), &version) != 0) {
            s->host->set_error(s->ctx, "fetch: cannot read the WAL position: %s",
                               res_msg(r, s->sql));
            rc = conn_status(s->sql);
            goto out;
        }
        struct sluice_event *ev = s->host->batch_append(out, e, SLUICE_OP_DELETE);
        if (!ev)
            goto oom;
        ev->version = version;
        for (uint32_t k = 0; k < e->nkeys; k++) {
            uint32_t c = e->key_columns[k];
            ev->values[c] = key[k];
            if (sluice_type_is_varlen(e->columns[c].type) && key[k].state == SLUICE_PRESENT)
                ev->values[c].u.ptr = s->host->batch_copy(out, key[k].u.ptr, key[k].len);
        }
        rc = SLUICE_OK;
        goto out;
    }
    if (pgo_lsn_parse(PQgetvalue(r, 0, (int)e->ncolumns), &version) != 0) {
        s->host->set_error(s->ctx, "fetch: unexpected WAL position");
        goto out;
    }
    struct sluice_event *ev = s->host->batch_append(out, e, SLUICE_OP_READ);
    if (!ev)
        goto oom;
    ev->version = version;
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        if (PQgetisnull(r, 0, (int)i)) {
            sluice_value_set_null(&ev->values[i]);
            continue;
        }
        if (s->host->value_parse(s->ctx, out, &e->columns[i], PQgetvalue(r, 0, (int)i),
                                 (size_t)PQgetlength(r, 0, (int)i), &ev->values[i]) != SLUICE_OK)
            goto out;
    }
    rc = SLUICE_OK;
    goto out;
oom:
    s->host->set_error(s->ctx, "fetch: out of memory");
out:
    free(keyp);
    PQclear(r);
    return rc;
}

static int pgs_drop(void *inst)
{
    struct pgs *s = inst;
    int rc = SLUICE_OK;
    if (!s->sql && (rc = pgs_start(s)) != SLUICE_OK)
        return rc;
    rc = drop_slot(s);
    if (rc != SLUICE_OK)
        return rc;
    char comment[256];
    snprintf(comment, sizeof comment, "created by sluice for profile %s", s->profile);
    const char *p2[2] = {s->publication, comment};
    PGresult *r = sql_query(s,
                  "SELECT 1 FROM pg_publication WHERE pubname = $1 AND "
                  "obj_description(oid, 'pg_publication') = $2",
                  2, p2, "look up the publication", &rc);
    if (!r)
        return rc;
    bool ours = PQntuples(r) == 1;
    PQclear(r);
    if (ours) {
        char *qpub = PQescapeIdentifier(s->sql, s->publication, strlen(s->publication));
        char *q = NULL;
        if (!qpub || asprintf(&q, "DROP PUBLICATION %s", qpub) < 0)
            q = NULL;
        PQfreemem(qpub);
        rc = q ? sql_exec(s, q, 0, NULL, "drop the publication") : SLUICE_ERR;
        free(q);
        if (rc != SLUICE_OK)
            return rc;
    }
    char *path = covered_path(s);
    if (path)
        unlink(path);
    free(path);
    s->host->log(s->ctx, SLUICE_LOG_INFO, "dropped replication slot %s%s%s", s->slot,
                 ours ? " and publication " : "", ours ? s->publication : "");
    return SLUICE_OK;
}

static const struct sluice_source_ops pgs_ops = {
    .struct_size = sizeof(struct sluice_source_ops),
    .describe = pgs_describe,
    .run = pgs_run,
    .ack = pgs_ack,
    .fetch = pgs_fetch,
    .drop = pgs_drop,
};

static const struct sluice_plugin pgs_plugin = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin),
    .kind = SLUICE_KIND_SOURCE,
    .name = "pg",
    .version = "1.0.0",
    .description = "PostgreSQL change data capture: exported-snapshot initial sync, then the "
                   "pgoutput logical replication stream",
    .config = pgs_spec,
    .nconfig = sizeof pgs_spec / sizeof pgs_spec[0],
    .config_size = sizeof(struct pgs_config),
    .init = pgs_init,
    .start = pgs_start,
    .stop = pgs_stop,
    .destroy = pgs_destroy,
    .ops = &pgs_ops,
};

SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entry(void)
{
    return &pgs_plugin;
}
