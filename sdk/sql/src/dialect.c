/*
 * dialect.c - identifier quoting, type mapping and statement generators for
 * PostgreSQL, MySQL/MariaDB, SQLite and MSSQL (see sluice_sql/dialect.h and
 * docs/sql-dialects.md).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice_sql/dialect.h"

#define ALIAS_TARGET "_sluice_t"
#define ALIAS_SOURCE "_sluice_s"

static bool dialect_ok(int d)
{
    return d >= SLUICE_SQL_POSTGRESQL && d <= SLUICE_SQL_MSSQL;
}

const char *sluice_sql_dialect_name(int dialect)
{
    switch (dialect) {
    case SLUICE_SQL_POSTGRESQL: return "postgresql";
    case SLUICE_SQL_MYSQL: return "mysql";
    case SLUICE_SQL_SQLITE: return "sqlite";
    case SLUICE_SQL_MSSQL: return "mssql";
    default: return NULL;
    }
}

int sluice_sql_dialect_parse(const char *name)
{
    static const struct {
        const char *name;
        int dialect;
    } names[] = {{"postgresql", SLUICE_SQL_POSTGRESQL}, {"postgres", SLUICE_SQL_POSTGRESQL},
                 {"pg", SLUICE_SQL_POSTGRESQL},         {"mysql", SLUICE_SQL_MYSQL},
                 {"mariadb", SLUICE_SQL_MYSQL},         {"sqlite", SLUICE_SQL_SQLITE},
                 {"mssql", SLUICE_SQL_MSSQL},           {"sqlserver", SLUICE_SQL_MSSQL}};
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0)
            return names[i].dialect;
    }
    return -1;
}

/* ---- names ----------------------------------------------------------------- */

void sluice_sql_ident_n(struct sluice_sql_buf *b, int dialect, const char *name, size_t len)
{
    char open = '"', close = '"';
    if (dialect == SLUICE_SQL_MYSQL)
        open = close = '`';
    else if (dialect == SLUICE_SQL_MSSQL)
        open = '[', close = ']';
    sluice_sql_buf_putc(b, open);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == close) {
            /* the closing quote character is escaped by doubling it */
            sluice_sql_buf_append(b, name + start, i - start + 1);
            sluice_sql_buf_putc(b, close);
            start = i + 1;
        }
    }
    sluice_sql_buf_append(b, name + start, len - start);
    sluice_sql_buf_putc(b, close);
}

void sluice_sql_ident(struct sluice_sql_buf *b, int dialect, const char *name)
{
    sluice_sql_ident_n(b, dialect, name, strlen(name));
}

static void qualified(struct sluice_sql_buf *b, int dialect, const char *schema,
                      const char *prefix, const char *name)
{
    /* SQLite: a schema is an attached database's name ("main") */
    if (schema && *schema) {
        sluice_sql_ident(b, dialect, schema);
        sluice_sql_buf_putc(b, '.');
    }
    size_t plen = prefix ? strlen(prefix) : 0;
    size_t nlen = strlen(name);
    char *full = malloc(plen + nlen + 1);
    if (!full) {
        b->failed = true;
        return;
    }
    if (plen)
        memcpy(full, prefix, plen);
    memcpy(full + plen, name, nlen + 1);
    sluice_sql_ident_n(b, dialect, full, plen + nlen);
    free(full);
}

void sluice_sql_table_name(struct sluice_sql_buf *b, int dialect, const struct sluice_sql_table *t)
{
    qualified(b, dialect, t->schema, t->prefix, t->name);
}

void sluice_sql_param(struct sluice_sql_buf *b, int dialect, unsigned n)
{
    if (dialect == SLUICE_SQL_POSTGRESQL)
        sluice_sql_buf_printf(b, "$%u", n);
    else
        sluice_sql_buf_putc(b, '?');
}

void sluice_sql_string_literal(struct sluice_sql_buf *b, int dialect, const char *s)
{
    if (dialect == SLUICE_SQL_MSSQL)
        sluice_sql_buf_putc(b, 'N');
    sluice_sql_buf_putc(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            sluice_sql_buf_putc(b, '\'');
        else if (*p == '\\' && dialect == SLUICE_SQL_MYSQL)
            sluice_sql_buf_putc(b, '\\');
        sluice_sql_buf_putc(b, *p);
    }
    sluice_sql_buf_putc(b, '\'');
}

/* ---- types ----------------------------------------------------------------- */

const char *sluice_sql_version_type(int dialect)
{
    switch (dialect) {
    case SLUICE_SQL_POSTGRESQL: return "numeric(20)";
    case SLUICE_SQL_MYSQL: return "bigint unsigned";
    case SLUICE_SQL_SQLITE: return "INTEGER";
    case SLUICE_SQL_MSSQL: return "decimal(20,0)";
    default: return NULL;
    }
}

const char *sluice_sql_synctime_type(int dialect)
{
    switch (dialect) {
    case SLUICE_SQL_POSTGRESQL: return "timestamptz";
    case SLUICE_SQL_MYSQL: return "datetime(6)";
    case SLUICE_SQL_SQLITE: return "TEXT";
    case SLUICE_SQL_MSSQL: return "datetimeoffset(6)";
    default: return NULL;
    }
}

const char *sluice_sql_now(int dialect)
{
    switch (dialect) {
    case SLUICE_SQL_POSTGRESQL: return "now()";
    case SLUICE_SQL_MYSQL: return "UTC_TIMESTAMP(6)";
    case SLUICE_SQL_SQLITE: return "strftime('%Y-%m-%d %H:%M:%f+00','now')";
    case SLUICE_SQL_MSSQL: return "SYSUTCDATETIME()";
    default: return NULL;
    }
}

static int type_pg(struct sluice_sql_buf *b, const struct sluice_column *c)
{
    switch (c->type) {
    case SLUICE_T_BOOL: sluice_sql_buf_puts(b, "boolean"); return 0;
    case SLUICE_T_INT16: sluice_sql_buf_puts(b, "smallint"); return 0;
    case SLUICE_T_INT32: sluice_sql_buf_puts(b, "integer"); return 0;
    case SLUICE_T_INT64: sluice_sql_buf_puts(b, "bigint"); return 0;
    case SLUICE_T_FLOAT32: sluice_sql_buf_puts(b, "real"); return 0;
    case SLUICE_T_FLOAT64: sluice_sql_buf_puts(b, "double precision"); return 0;
    case SLUICE_T_DECIMAL:
        if (c->precision > 0 && c->precision <= 1000 && c->scale >= 0 && c->scale <= c->precision)
            sluice_sql_buf_printf(b, "numeric(%d,%d)", (int)c->precision, (int)c->scale);
        else
            sluice_sql_buf_puts(b, "numeric");
        return 0;
    case SLUICE_T_TEXT:
        if (c->max_length > 0 && c->max_length <= 10485760)
            sluice_sql_buf_printf(b, "varchar(%d)", (int)c->max_length);
        else
            sluice_sql_buf_puts(b, "text");
        return 0;
    case SLUICE_T_BYTES: sluice_sql_buf_puts(b, "bytea"); return 0;
    case SLUICE_T_DATE: sluice_sql_buf_puts(b, "date"); return 0;
    case SLUICE_T_TIME: sluice_sql_buf_puts(b, "time"); return 0;
    case SLUICE_T_TIMESTAMP: sluice_sql_buf_puts(b, "timestamp"); return 0;
    case SLUICE_T_TIMESTAMPTZ: sluice_sql_buf_puts(b, "timestamptz"); return 0;
    case SLUICE_T_UUID: sluice_sql_buf_puts(b, "uuid"); return 0;
    case SLUICE_T_JSON: sluice_sql_buf_puts(b, "jsonb"); return 0;
    default: return -1;
    }
}

static int type_mysql(struct sluice_sql_buf *b, const struct sluice_column *c)
{
    bool key = (c->flags & SLUICE_COL_KEY) != 0;
    switch (c->type) {
    case SLUICE_T_BOOL: sluice_sql_buf_puts(b, "tinyint(1)"); return 0;
    case SLUICE_T_INT16: sluice_sql_buf_puts(b, "smallint"); return 0;
    case SLUICE_T_INT32: sluice_sql_buf_puts(b, "int"); return 0;
    case SLUICE_T_INT64: sluice_sql_buf_puts(b, "bigint"); return 0;
    case SLUICE_T_FLOAT32: sluice_sql_buf_puts(b, "float"); return 0;
    case SLUICE_T_FLOAT64: sluice_sql_buf_puts(b, "double"); return 0;
    case SLUICE_T_DECIMAL:
        if (c->precision > 0 && c->precision <= 65 && c->scale >= 0 && c->scale <= 30 &&
            c->scale <= c->precision)
            sluice_sql_buf_printf(b, "decimal(%d,%d)", (int)c->precision, (int)c->scale);
        else /* exact as text: decimal(65,30) would round */
            sluice_sql_buf_puts(b, key ? "varchar(255)" : "varchar(1000)");
        return 0;
    case SLUICE_T_TEXT:
        if (c->max_length > 0 && c->max_length <= (key ? 768 : 16383))
            sluice_sql_buf_printf(b, "varchar(%d)", (int)c->max_length);
        else
            sluice_sql_buf_puts(b, key ? "varchar(255)" : "longtext");
        return 0;
    case SLUICE_T_BYTES:
        if (c->max_length > 0 && c->max_length <= (key ? 3072 : 65535))
            sluice_sql_buf_printf(b, "varbinary(%d)", (int)c->max_length);
        else
            sluice_sql_buf_puts(b, key ? "varbinary(255)" : "longblob");
        return 0;
    case SLUICE_T_DATE: sluice_sql_buf_puts(b, "date"); return 0;
    case SLUICE_T_TIME: sluice_sql_buf_puts(b, "time(6)"); return 0;
    case SLUICE_T_TIMESTAMP: sluice_sql_buf_puts(b, "datetime(6)"); return 0;
    case SLUICE_T_TIMESTAMPTZ: sluice_sql_buf_puts(b, "datetime(6)"); return 0; /* UTC */
    case SLUICE_T_UUID: sluice_sql_buf_puts(b, "char(36)"); return 0;
    case SLUICE_T_JSON: sluice_sql_buf_puts(b, key ? "varchar(255)" : "json"); return 0;
    default: return -1;
    }
}

static int type_sqlite(struct sluice_sql_buf *b, const struct sluice_column *c)
{
    switch (c->type) {
    case SLUICE_T_BOOL:
    case SLUICE_T_INT16:
    case SLUICE_T_INT32:
    case SLUICE_T_INT64: sluice_sql_buf_puts(b, "INTEGER"); return 0;
    case SLUICE_T_FLOAT32:
    case SLUICE_T_FLOAT64: sluice_sql_buf_puts(b, "REAL"); return 0;
    case SLUICE_T_BYTES: sluice_sql_buf_puts(b, "BLOB"); return 0;
    case SLUICE_T_DECIMAL: /* TEXT affinity keeps every digit; NUMERIC would go through a double */
    case SLUICE_T_TEXT:
    case SLUICE_T_DATE:
    case SLUICE_T_TIME:
    case SLUICE_T_TIMESTAMP:
    case SLUICE_T_TIMESTAMPTZ:
    case SLUICE_T_UUID:
    case SLUICE_T_JSON: sluice_sql_buf_puts(b, "TEXT"); return 0;
    default: return -1;
    }
}

static int type_mssql(struct sluice_sql_buf *b, const struct sluice_column *c)
{
    bool key = (c->flags & SLUICE_COL_KEY) != 0;
    switch (c->type) {
    case SLUICE_T_BOOL: sluice_sql_buf_puts(b, "bit"); return 0;
    case SLUICE_T_INT16: sluice_sql_buf_puts(b, "smallint"); return 0;
    case SLUICE_T_INT32: sluice_sql_buf_puts(b, "int"); return 0;
    case SLUICE_T_INT64: sluice_sql_buf_puts(b, "bigint"); return 0;
    case SLUICE_T_FLOAT32: sluice_sql_buf_puts(b, "real"); return 0;
    case SLUICE_T_FLOAT64: sluice_sql_buf_puts(b, "float"); return 0;
    case SLUICE_T_DECIMAL:
        if (c->precision > 0 && c->precision <= 38 && c->scale >= 0 && c->scale <= c->precision)
            sluice_sql_buf_printf(b, "decimal(%d,%d)", (int)c->precision, (int)c->scale);
        else
            sluice_sql_buf_puts(b, key ? "nvarchar(450)" : "nvarchar(1000)");
        return 0;
    case SLUICE_T_TEXT:
        if (c->max_length > 0 && c->max_length <= (key ? 450 : 4000))
            sluice_sql_buf_printf(b, "nvarchar(%d)", (int)c->max_length);
        else
            sluice_sql_buf_puts(b, key ? "nvarchar(450)" : "nvarchar(max)");
        return 0;
    case SLUICE_T_BYTES:
        if (c->max_length > 0 && c->max_length <= (key ? 900 : 8000))
            sluice_sql_buf_printf(b, "varbinary(%d)", (int)c->max_length);
        else
            sluice_sql_buf_puts(b, key ? "varbinary(900)" : "varbinary(max)");
        return 0;
    case SLUICE_T_DATE: sluice_sql_buf_puts(b, "date"); return 0;
    case SLUICE_T_TIME: sluice_sql_buf_puts(b, "time(6)"); return 0;
    case SLUICE_T_TIMESTAMP: sluice_sql_buf_puts(b, "datetime2(6)"); return 0;
    case SLUICE_T_TIMESTAMPTZ: sluice_sql_buf_puts(b, "datetimeoffset(6)"); return 0;
    case SLUICE_T_UUID: sluice_sql_buf_puts(b, "uniqueidentifier"); return 0;
    case SLUICE_T_JSON: sluice_sql_buf_puts(b, key ? "nvarchar(450)" : "nvarchar(max)"); return 0;
    default: return -1;
    }
}

int sluice_sql_column_type(struct sluice_sql_buf *b, int dialect, const struct sluice_column *col)
{
    switch (dialect) {
    case SLUICE_SQL_POSTGRESQL: return type_pg(b, col);
    case SLUICE_SQL_MYSQL: return type_mysql(b, col);
    case SLUICE_SQL_SQLITE: return type_sqlite(b, col);
    case SLUICE_SQL_MSSQL: return type_mssql(b, col);
    default: return -1;
    }
}

/* DEFAULT clause for a sync time column */
static void default_now(struct sluice_sql_buf *b, int dialect)
{
    /* MySQL 8.0.13+/MariaDB and SQLite need an expression default in parentheses */
    if (dialect == SLUICE_SQL_MYSQL || dialect == SLUICE_SQL_SQLITE)
        sluice_sql_buf_printf(b, " DEFAULT (%s)", sluice_sql_now(dialect));
    else
        sluice_sql_buf_printf(b, " DEFAULT %s", sluice_sql_now(dialect));
}

/* ---- DDL -------------------------------------------------------------------- */

/* MSSQL has no CREATE ... IF NOT EXISTS: guard with OBJECT_ID. */
static void mssql_if_no_table(struct sluice_sql_buf *b, const char *schema, const char *prefix,
                              const char *name)
{
    struct sluice_sql_buf qn = {0};
    qualified(&qn, SLUICE_SQL_MSSQL, schema, prefix, name);
    sluice_sql_buf_puts(b, "IF OBJECT_ID(");
    sluice_sql_string_literal(b, SLUICE_SQL_MSSQL, sluice_sql_buf_str(&qn));
    sluice_sql_buf_puts(b, ", N'U') IS NULL ");
    if (qn.failed)
        b->failed = true;
    sluice_sql_buf_free(&qn);
}

static void create_table_head(struct sluice_sql_buf *b, int dialect, const char *schema,
                              const char *prefix, const char *name)
{
    if (dialect == SLUICE_SQL_MSSQL) {
        mssql_if_no_table(b, schema, prefix, name);
        sluice_sql_buf_puts(b, "CREATE TABLE ");
    } else {
        sluice_sql_buf_puts(b, "CREATE TABLE IF NOT EXISTS ");
    }
    qualified(b, dialect, schema, prefix, name);
    sluice_sql_buf_puts(b, " (");
}

int sluice_sql_create_schema(struct sluice_sql_buf *b, int dialect, const char *schema)
{
    if (!dialect_ok(dialect))
        return -1;
    if (!schema || !*schema || dialect == SLUICE_SQL_SQLITE)
        return 1;
    switch (dialect) {
    case SLUICE_SQL_POSTGRESQL:
        sluice_sql_buf_puts(b, "CREATE SCHEMA IF NOT EXISTS ");
        sluice_sql_ident(b, dialect, schema);
        break;
    case SLUICE_SQL_MYSQL:
        sluice_sql_buf_puts(b, "CREATE DATABASE IF NOT EXISTS ");
        sluice_sql_ident(b, dialect, schema);
        break;
    case SLUICE_SQL_MSSQL: {
        struct sluice_sql_buf inner = {0};
        sluice_sql_buf_puts(&inner, "CREATE SCHEMA ");
        sluice_sql_ident(&inner, dialect, schema);
        sluice_sql_buf_puts(b, "IF SCHEMA_ID(");
        sluice_sql_string_literal(b, dialect, schema);
        sluice_sql_buf_puts(b, ") IS NULL EXEC(");
        sluice_sql_string_literal(b, dialect, sluice_sql_buf_str(&inner));
        sluice_sql_buf_puts(b, ")");
        if (inner.failed)
            b->failed = true;
        sluice_sql_buf_free(&inner);
        break;
    }
    }
    return 0;
}

int sluice_sql_create_table(struct sluice_sql_buf *b, int dialect,
                            const struct sluice_sql_table *t, const struct sluice_entity *e)
{
    if (!dialect_ok(dialect) || e->nkeys == 0)
        return -1;
    create_table_head(b, dialect, t->schema, t->prefix, t->name);
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        const struct sluice_column *c = &e->columns[i];
        sluice_sql_ident(b, dialect, c->name);
        sluice_sql_buf_putc(b, ' ');
        if (sluice_sql_column_type(b, dialect, c) != 0)
            return -1;
        sluice_sql_buf_puts(b, (c->flags & SLUICE_COL_KEY) ? " NOT NULL, " : " NULL, ");
    }
    sluice_sql_ident(b, dialect, SLUICE_SQL_COL_VERSION);
    sluice_sql_buf_printf(b, " %s NOT NULL, ", sluice_sql_version_type(dialect));
    const char *sync_cols[] = {SLUICE_SQL_COL_FIRST_SYNC, SLUICE_SQL_COL_LAST_SYNC};
    for (int i = 0; i < 2; i++) {
        sluice_sql_ident(b, dialect, sync_cols[i]);
        sluice_sql_buf_printf(b, " %s NOT NULL", sluice_sql_synctime_type(dialect));
        default_now(b, dialect);
        sluice_sql_buf_puts(b, ", ");
    }
    sluice_sql_buf_puts(b, "PRIMARY KEY (");
    for (uint32_t k = 0; k < e->nkeys; k++) {
        if (e->key_columns[k] >= e->ncolumns)
            return -1;
        if (k)
            sluice_sql_buf_puts(b, ", ");
        sluice_sql_ident(b, dialect, e->columns[e->key_columns[k]].name);
    }
    sluice_sql_buf_puts(b, "))");
    return 0;
}

int sluice_sql_add_column(struct sluice_sql_buf *b, int dialect,
                          const struct sluice_sql_table *t, const struct sluice_column *col)
{
    if (!dialect_ok(dialect))
        return -1;
    sluice_sql_buf_puts(b, "ALTER TABLE ");
    sluice_sql_table_name(b, dialect, t);
    if (dialect == SLUICE_SQL_MSSQL)
        sluice_sql_buf_puts(b, " ADD ");
    else if (dialect == SLUICE_SQL_POSTGRESQL)
        sluice_sql_buf_puts(b, " ADD COLUMN IF NOT EXISTS ");
    else
        sluice_sql_buf_puts(b, " ADD COLUMN ");
    sluice_sql_ident(b, dialect, col->name);
    sluice_sql_buf_putc(b, ' ');
    /* an added column is never part of the key: give it the non-key type */
    struct sluice_column plain = *col;
    plain.flags &= (uint16_t)~SLUICE_COL_KEY;
    if (sluice_sql_column_type(b, dialect, &plain) != 0)
        return -1;
    sluice_sql_buf_puts(b, " NULL");
    return 0;
}

/* ---- the generic guarded upsert ------------------------------------------------ */

struct upsert_spec {
    const char *table_sql;  /* quoted, qualified target */
    const char **cols;      /* columns inserted, in parameter order */
    const bool *is_key;
    size_t ncols;
    const char *guard_col;  /* NULL: update unconditionally; else update only
                               where target.guard < new.guard */
    const char *touch_col;  /* set to now on update (and on insert if touch_on_insert) */
    bool touch_on_insert;
    const char *select_sql; /* NULL: one row of parameters */
};

static void col_list(struct sluice_sql_buf *b, int d, const struct upsert_spec *s,
                     const char *alias)
{
    for (size_t i = 0; i < s->ncols; i++) {
        if (i)
            sluice_sql_buf_puts(b, ", ");
        if (alias) {
            sluice_sql_ident(b, d, alias);
            sluice_sql_buf_putc(b, '.');
        }
        sluice_sql_ident(b, d, s->cols[i]);
    }
}

static void param_list(struct sluice_sql_buf *b, int d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            sluice_sql_buf_puts(b, ", ");
        sluice_sql_param(b, d, (unsigned)i + 1);
    }
}

static bool is_updated(const struct upsert_spec *s, size_t i)
{
    return !s->is_key[i] && !(s->guard_col && strcmp(s->cols[i], s->guard_col) == 0);
}

static void upsert_on_conflict(struct sluice_sql_buf *b, int d, const struct upsert_spec *s)
{
    bool any = false;
    sluice_sql_buf_puts(b, " ON CONFLICT (");
    for (size_t i = 0, n = 0; i < s->ncols; i++) {
        if (!s->is_key[i])
            continue;
        if (n++)
            sluice_sql_buf_puts(b, ", ");
        sluice_sql_ident(b, d, s->cols[i]);
    }
    sluice_sql_buf_puts(b, ") DO UPDATE SET ");
    for (size_t i = 0; i < s->ncols; i++) {
        if (s->is_key[i])
            continue;
        if (any)
            sluice_sql_buf_puts(b, ", ");
        any = true;
        sluice_sql_ident(b, d, s->cols[i]);
        sluice_sql_buf_puts(b, " = excluded.");
        sluice_sql_ident(b, d, s->cols[i]);
    }
    if (s->touch_col) {
        if (any)
            sluice_sql_buf_puts(b, ", ");
        any = true;
        sluice_sql_ident(b, d, s->touch_col);
        sluice_sql_buf_printf(b, " = %s", sluice_sql_now(d));
    }
    if (!any) {
        /* nothing but the key: keep the row */
        b->len -= strlen(" DO UPDATE SET ");
        b->data[b->len] = '\0';
        sluice_sql_buf_puts(b, " DO NOTHING");
        return;
    }
    if (s->guard_col) {
        sluice_sql_buf_puts(b, " WHERE ");
        sluice_sql_ident(b, d, ALIAS_TARGET);
        sluice_sql_buf_putc(b, '.');
        sluice_sql_ident(b, d, s->guard_col);
        sluice_sql_buf_puts(b, " < excluded.");
        sluice_sql_ident(b, d, s->guard_col);
    }
}

static void mysql_guard(struct sluice_sql_buf *b, const struct upsert_spec *s)
{
    sluice_sql_buf_puts(b, "IF(");
    sluice_sql_ident(b, SLUICE_SQL_MYSQL, s->guard_col);
    sluice_sql_buf_puts(b, " < VALUES(");
    sluice_sql_ident(b, SLUICE_SQL_MYSQL, s->guard_col);
    sluice_sql_buf_puts(b, "), ");
}

static void upsert_mysql_update(struct sluice_sql_buf *b, const struct upsert_spec *s)
{
    const int d = SLUICE_SQL_MYSQL;
    bool any = false;
    sluice_sql_buf_puts(b, " ON DUPLICATE KEY UPDATE ");
    /* MySQL assigns left to right and later IF()s see earlier results: the
     * guard column must be assigned last */
    for (size_t i = 0; i < s->ncols; i++) {
        if (!is_updated(s, i))
            continue;
        if (any)
            sluice_sql_buf_puts(b, ", ");
        any = true;
        sluice_sql_ident(b, d, s->cols[i]);
        sluice_sql_buf_puts(b, " = ");
        if (s->guard_col)
            mysql_guard(b, s);
        sluice_sql_buf_puts(b, "VALUES(");
        sluice_sql_ident(b, d, s->cols[i]);
        sluice_sql_buf_putc(b, ')');
        if (s->guard_col) {
            sluice_sql_buf_puts(b, ", ");
            sluice_sql_ident(b, d, s->cols[i]);
            sluice_sql_buf_putc(b, ')');
        }
    }
    if (s->touch_col) {
        if (any)
            sluice_sql_buf_puts(b, ", ");
        any = true;
        sluice_sql_ident(b, d, s->touch_col);
        sluice_sql_buf_puts(b, " = ");
        if (s->guard_col)
            mysql_guard(b, s);
        sluice_sql_buf_puts(b, sluice_sql_now(d));
        if (s->guard_col) {
            sluice_sql_buf_puts(b, ", ");
            sluice_sql_ident(b, d, s->touch_col);
            sluice_sql_buf_putc(b, ')');
        }
    }
    if (s->guard_col) {
        if (any)
            sluice_sql_buf_puts(b, ", ");
        any = true;
        sluice_sql_ident(b, d, s->guard_col);
        sluice_sql_buf_puts(b, " = ");
        mysql_guard(b, s);
        sluice_sql_buf_puts(b, "VALUES(");
        sluice_sql_ident(b, d, s->guard_col);
        sluice_sql_buf_puts(b, "), ");
        sluice_sql_ident(b, d, s->guard_col);
        sluice_sql_buf_putc(b, ')');
    }
    if (!any) {
        /* key only: a no-op assignment keeps the row */
        for (size_t i = 0; i < s->ncols; i++) {
            if (s->is_key[i]) {
                sluice_sql_ident(b, d, s->cols[i]);
                sluice_sql_buf_puts(b, " = ");
                sluice_sql_ident(b, d, s->cols[i]);
                break;
            }
        }
    }
}

static void upsert_mssql(struct sluice_sql_buf *b, const struct upsert_spec *s)
{
    const int d = SLUICE_SQL_MSSQL;
    sluice_sql_buf_printf(b, "MERGE INTO %s WITH (HOLDLOCK) AS ", s->table_sql);
    sluice_sql_ident(b, d, ALIAS_TARGET);
    sluice_sql_buf_puts(b, " USING (");
    if (s->select_sql) {
        sluice_sql_buf_puts(b, s->select_sql);
    } else {
        sluice_sql_buf_puts(b, "VALUES (");
        param_list(b, d, s->ncols);
        sluice_sql_buf_putc(b, ')');
    }
    sluice_sql_buf_puts(b, ") AS ");
    sluice_sql_ident(b, d, ALIAS_SOURCE);
    sluice_sql_buf_puts(b, " (");
    col_list(b, d, s, NULL);
    sluice_sql_buf_puts(b, ") ON ");
    for (size_t i = 0, n = 0; i < s->ncols; i++) {
        if (!s->is_key[i])
            continue;
        if (n++)
            sluice_sql_buf_puts(b, " AND ");
        sluice_sql_ident(b, d, ALIAS_TARGET);
        sluice_sql_buf_putc(b, '.');
        sluice_sql_ident(b, d, s->cols[i]);
        sluice_sql_buf_puts(b, " = ");
        sluice_sql_ident(b, d, ALIAS_SOURCE);
        sluice_sql_buf_putc(b, '.');
        sluice_sql_ident(b, d, s->cols[i]);
    }
    bool any_update = s->touch_col != NULL;
    for (size_t i = 0; i < s->ncols; i++)
        any_update = any_update || !s->is_key[i];
    if (any_update) {
        bool any = false;
        sluice_sql_buf_puts(b, " WHEN MATCHED");
        if (s->guard_col) {
            sluice_sql_buf_puts(b, " AND ");
            sluice_sql_ident(b, d, ALIAS_TARGET);
            sluice_sql_buf_putc(b, '.');
            sluice_sql_ident(b, d, s->guard_col);
            sluice_sql_buf_puts(b, " < ");
            sluice_sql_ident(b, d, ALIAS_SOURCE);
            sluice_sql_buf_putc(b, '.');
            sluice_sql_ident(b, d, s->guard_col);
        }
        sluice_sql_buf_puts(b, " THEN UPDATE SET ");
        for (size_t i = 0; i < s->ncols; i++) {
            if (s->is_key[i])
                continue;
            if (any)
                sluice_sql_buf_puts(b, ", ");
            any = true;
            sluice_sql_ident(b, d, s->cols[i]);
            sluice_sql_buf_puts(b, " = ");
            sluice_sql_ident(b, d, ALIAS_SOURCE);
            sluice_sql_buf_putc(b, '.');
            sluice_sql_ident(b, d, s->cols[i]);
        }
        if (s->touch_col) {
            if (any)
                sluice_sql_buf_puts(b, ", ");
            sluice_sql_ident(b, d, s->touch_col);
            sluice_sql_buf_printf(b, " = %s", sluice_sql_now(d));
        }
    }
    sluice_sql_buf_puts(b, " WHEN NOT MATCHED THEN INSERT (");
    col_list(b, d, s, NULL);
    if (s->touch_col && s->touch_on_insert) {
        sluice_sql_buf_puts(b, ", ");
        sluice_sql_ident(b, d, s->touch_col);
    }
    sluice_sql_buf_puts(b, ") VALUES (");
    col_list(b, d, s, ALIAS_SOURCE);
    if (s->touch_col && s->touch_on_insert)
        sluice_sql_buf_printf(b, ", %s", sluice_sql_now(d));
    sluice_sql_buf_puts(b, ");");
}

static int upsert_generic(struct sluice_sql_buf *b, int d, const struct upsert_spec *s)
{
    if (!dialect_ok(d))
        return -1;
    if (d == SLUICE_SQL_MSSQL) {
        upsert_mssql(b, s);
        return 0;
    }
    bool touch_ins = s->touch_col && s->touch_on_insert && !s->select_sql;
    sluice_sql_buf_printf(b, "INSERT INTO %s ", s->table_sql);
    if (d != SLUICE_SQL_MYSQL) {
        sluice_sql_buf_puts(b, "AS ");
        sluice_sql_ident(b, d, ALIAS_TARGET);
        sluice_sql_buf_putc(b, ' ');
    }
    sluice_sql_buf_putc(b, '(');
    col_list(b, d, s, NULL);
    if (touch_ins) {
        sluice_sql_buf_puts(b, ", ");
        sluice_sql_ident(b, d, s->touch_col);
    }
    sluice_sql_buf_puts(b, ") ");
    if (s->select_sql) {
        sluice_sql_buf_puts(b, s->select_sql);
    } else {
        sluice_sql_buf_puts(b, "VALUES (");
        param_list(b, d, s->ncols);
        if (touch_ins)
            sluice_sql_buf_printf(b, ", %s", sluice_sql_now(d));
        sluice_sql_buf_putc(b, ')');
    }
    if (d == SLUICE_SQL_MYSQL)
        upsert_mysql_update(b, s);
    else
        upsert_on_conflict(b, d, s);
    return 0;
}

int sluice_sql_upsert(struct sluice_sql_buf *b, int dialect, const struct sluice_sql_table *t,
                      const struct sluice_entity *e, const uint8_t *include,
                      const char *select_sql)
{
    int rc = -1;
    struct sluice_sql_buf tn = {0};
    const char **cols = calloc(e->ncolumns + 1, sizeof(*cols));
    bool *is_key = calloc(e->ncolumns + 1, sizeof(*is_key));
    size_t n = 0;

    if (!cols || !is_key) {
        b->failed = true;
        goto out;
    }
    if (!dialect_ok(dialect) || e->nkeys == 0)
        goto out;
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        bool key = (e->columns[i].flags & SLUICE_COL_KEY) != 0;
        if (include && !include[i]) {
            if (key)
                goto out; /* a key column cannot be left out */
            continue;
        }
        cols[n] = e->columns[i].name;
        is_key[n++] = key;
    }
    cols[n] = SLUICE_SQL_COL_VERSION;
    is_key[n++] = false;
    sluice_sql_table_name(&tn, dialect, t);
    struct upsert_spec s = {.table_sql = sluice_sql_buf_str(&tn),
                            .cols = cols,
                            .is_key = is_key,
                            .ncols = n,
                            .guard_col = SLUICE_SQL_COL_VERSION,
                            .touch_col = SLUICE_SQL_COL_LAST_SYNC,
                            .touch_on_insert = false,
                            .select_sql = select_sql};
    rc = upsert_generic(b, dialect, &s);
    if (tn.failed)
        b->failed = true;
out:
    sluice_sql_buf_free(&tn);
    free(cols);
    free(is_key);
    return rc;
}

int sluice_sql_delete_guarded(struct sluice_sql_buf *b, int dialect,
                              const struct sluice_sql_table *t, const struct sluice_entity *e)
{
    if (!dialect_ok(dialect) || e->nkeys == 0)
        return -1;
    sluice_sql_buf_puts(b, "DELETE FROM ");
    sluice_sql_table_name(b, dialect, t);
    sluice_sql_buf_puts(b, " WHERE ");
    unsigned p = 1;
    for (uint32_t k = 0; k < e->nkeys; k++) {
        if (e->key_columns[k] >= e->ncolumns)
            return -1;
        sluice_sql_ident(b, dialect, e->columns[e->key_columns[k]].name);
        sluice_sql_buf_puts(b, " = ");
        sluice_sql_param(b, dialect, p++);
        sluice_sql_buf_puts(b, " AND ");
    }
    sluice_sql_ident(b, dialect, SLUICE_SQL_COL_VERSION);
    sluice_sql_buf_puts(b, " < ");
    sluice_sql_param(b, dialect, p);
    return 0;
}

/* ---- metadata tables ------------------------------------------------------------ */

/* type of a short text key column in a metadata table */
static const char *meta_text(int d, int width)
{
    switch (d) {
    case SLUICE_SQL_POSTGRESQL: return "text";
    case SLUICE_SQL_SQLITE: return "TEXT";
    case SLUICE_SQL_MYSQL:
        return width == 0 ? "varchar(128)" : width == 1 ? "varchar(255)" : "longtext";
    default: /* MSSQL: a clustered key is at most 900 bytes */
        return width == 0 ? "nvarchar(64)" : width == 1 ? "nvarchar(256)" : "nvarchar(max)";
    }
}

static const char *meta_bytes(int d)
{
    switch (d) {
    case SLUICE_SQL_POSTGRESQL: return "bytea";
    case SLUICE_SQL_SQLITE: return "BLOB";
    default: return "varbinary(64)"; /* SLUICE_POSITION_MAX */
    }
}

static const char *meta_int(int d)
{
    return d == SLUICE_SQL_POSTGRESQL ? "integer" : d == SLUICE_SQL_SQLITE ? "INTEGER" : "int";
}

static void meta_col(struct sluice_sql_buf *b, int d, const char *name, const char *type,
                     bool now_default)
{
    sluice_sql_ident(b, d, name);
    sluice_sql_buf_printf(b, " %s NOT NULL", type);
    if (now_default)
        default_now(b, d);
    sluice_sql_buf_puts(b, ", ");
}

int sluice_sql_create_checkpoint_table(struct sluice_sql_buf *b, int dialect, const char *schema)
{
    if (!dialect_ok(dialect))
        return -1;
    create_table_head(b, dialect, schema, NULL, SLUICE_SQL_CHECKPOINT_TABLE);
    meta_col(b, dialect, "profile", meta_text(dialect, 0), false);
    meta_col(b, dialect, "partition", meta_int(dialect), false);
    meta_col(b, dialect, "position", meta_bytes(dialect), false);
    meta_col(b, dialect, "updated_at", sluice_sql_synctime_type(dialect), true);
    sluice_sql_buf_puts(b, "PRIMARY KEY (");
    sluice_sql_ident(b, dialect, "profile");
    sluice_sql_buf_puts(b, ", ");
    sluice_sql_ident(b, dialect, "partition");
    sluice_sql_buf_puts(b, "))");
    return 0;
}

static int meta_upsert(struct sluice_sql_buf *b, int d, const char *schema, const char *base,
                       const char **cols, const bool *is_key, size_t n, const char *guard,
                       const char *touch)
{
    struct sluice_sql_buf tn = {0};
    qualified(&tn, d, schema, NULL, base);
    struct upsert_spec s = {.table_sql = sluice_sql_buf_str(&tn),
                            .cols = cols,
                            .is_key = is_key,
                            .ncols = n,
                            .guard_col = guard,
                            .touch_col = touch,
                            .touch_on_insert = true,
                            .select_sql = NULL};
    int rc = upsert_generic(b, d, &s);
    if (tn.failed)
        b->failed = true;
    sluice_sql_buf_free(&tn);
    return rc;
}

int sluice_sql_checkpoint_upsert(struct sluice_sql_buf *b, int dialect, const char *schema)
{
    static const char *cols[] = {"profile", "partition", "position"};
    static const bool keys[] = {true, true, false};
    return meta_upsert(b, dialect, schema, SLUICE_SQL_CHECKPOINT_TABLE, cols, keys, 3, NULL,
                       "updated_at");
}

int sluice_sql_checkpoint_select(struct sluice_sql_buf *b, int dialect, const char *schema)
{
    if (!dialect_ok(dialect))
        return -1;
    sluice_sql_buf_puts(b, "SELECT ");
    sluice_sql_ident(b, dialect, "partition");
    sluice_sql_buf_puts(b, ", ");
    sluice_sql_ident(b, dialect, "position");
    sluice_sql_buf_puts(b, " FROM ");
    qualified(b, dialect, schema, NULL, SLUICE_SQL_CHECKPOINT_TABLE);
    sluice_sql_buf_puts(b, " WHERE ");
    sluice_sql_ident(b, dialect, "profile");
    sluice_sql_buf_puts(b, " = ");
    sluice_sql_param(b, dialect, 1);
    sluice_sql_buf_puts(b, " ORDER BY ");
    sluice_sql_ident(b, dialect, "partition");
    return 0;
}

static int meta_delete(struct sluice_sql_buf *b, int d, const char *schema, const char *base,
                       bool per_entity)
{
    if (!dialect_ok(d))
        return -1;
    sluice_sql_buf_puts(b, "DELETE FROM ");
    qualified(b, d, schema, NULL, base);
    sluice_sql_buf_puts(b, " WHERE ");
    sluice_sql_ident(b, d, "profile");
    sluice_sql_buf_puts(b, " = ");
    sluice_sql_param(b, d, 1);
    if (per_entity) {
        sluice_sql_buf_puts(b, " AND ");
        sluice_sql_ident(b, d, "entity");
        sluice_sql_buf_puts(b, " = ");
        sluice_sql_param(b, d, 2);
    }
    return 0;
}

int sluice_sql_checkpoint_delete(struct sluice_sql_buf *b, int dialect, const char *schema)
{
    return meta_delete(b, dialect, schema, SLUICE_SQL_CHECKPOINT_TABLE, false);
}

int sluice_sql_create_tombstone_table(struct sluice_sql_buf *b, int dialect, const char *schema)
{
    if (!dialect_ok(dialect))
        return -1;
    create_table_head(b, dialect, schema, NULL, SLUICE_SQL_TOMBSTONE_TABLE);
    meta_col(b, dialect, "profile", meta_text(dialect, 0), false);
    meta_col(b, dialect, "entity", meta_text(dialect, 0), false);
    meta_col(b, dialect, "record_key", meta_text(dialect, 1), false);
    meta_col(b, dialect, "version", sluice_sql_version_type(dialect), false);
    sluice_sql_buf_puts(b, "PRIMARY KEY (");
    sluice_sql_ident(b, dialect, "profile");
    sluice_sql_buf_puts(b, ", ");
    sluice_sql_ident(b, dialect, "entity");
    sluice_sql_buf_puts(b, ", ");
    sluice_sql_ident(b, dialect, "record_key");
    sluice_sql_buf_puts(b, "))");
    return 0;
}

int sluice_sql_tombstone_upsert(struct sluice_sql_buf *b, int dialect, const char *schema)
{
    static const char *cols[] = {"profile", "entity", "record_key", "version"};
    static const bool keys[] = {true, true, true, false};
    return meta_upsert(b, dialect, schema, SLUICE_SQL_TOMBSTONE_TABLE, cols, keys, 4, "version",
                       NULL);
}

int sluice_sql_tombstone_delete(struct sluice_sql_buf *b, int dialect, const char *schema,
                                bool per_entity)
{
    return meta_delete(b, dialect, schema, SLUICE_SQL_TOMBSTONE_TABLE, per_entity);
}

int sluice_sql_create_delete_log_table(struct sluice_sql_buf *b, int dialect,
                                       const char *schema, const char *prefix)
{
    if (!dialect_ok(dialect))
        return -1;
    create_table_head(b, dialect, schema, prefix, SLUICE_SQL_DELETE_LOG_TABLE);
    meta_col(b, dialect, "entity", meta_text(dialect, 1), false);
    meta_col(b, dialect, "record_id", meta_text(dialect, 2), false);
    meta_col(b, dialect, "version", sluice_sql_version_type(dialect), false);
    meta_col(b, dialect, "deleted_at", sluice_sql_synctime_type(dialect), true);
    b->len -= 2; /* the last ", " */
    b->data[b->len] = '\0';
    sluice_sql_buf_putc(b, ')');
    return 0;
}

int sluice_sql_delete_log_insert(struct sluice_sql_buf *b, int dialect, const char *schema,
                                 const char *prefix)
{
    if (!dialect_ok(dialect))
        return -1;
    sluice_sql_buf_puts(b, "INSERT INTO ");
    qualified(b, dialect, schema, prefix, SLUICE_SQL_DELETE_LOG_TABLE);
    sluice_sql_buf_puts(b, " (");
    sluice_sql_ident(b, dialect, "entity");
    sluice_sql_buf_puts(b, ", ");
    sluice_sql_ident(b, dialect, "record_id");
    sluice_sql_buf_puts(b, ", ");
    sluice_sql_ident(b, dialect, "version");
    sluice_sql_buf_puts(b, ") VALUES (");
    param_list(b, dialect, 3);
    sluice_sql_buf_putc(b, ')');
    return 0;
}

int sluice_sql_drop_table(struct sluice_sql_buf *b, int dialect, const char *schema,
                          const char *prefix, const char *base)
{
    if (!dialect_ok(dialect))
        return -1;
    sluice_sql_buf_puts(b, "DROP TABLE IF EXISTS ");
    qualified(b, dialect, schema, prefix, base);
    return 0;
}
