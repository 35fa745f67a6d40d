/*
 * sluice_sql/dialect.h - the SQL dialect layer shared by every SQL sink.
 *
 * One place for what differs between SQL targets: identifier quoting, the
 * column type of each logical type, DDL, the version-guarded upsert and
 * delete, and the sink metadata tables (checkpoint, tombstones, delete log).
 * See docs/sql-dialects.md for the type table and what each target cannot
 * hold exactly.
 *
 * Everything here is pure string generation into a growable buffer: no I/O,
 * no values. Values always travel as statement parameters (or a bulk-load
 * stream); identifiers are always quoted, even simple ones, so reserved words
 * and names with spaces or quote characters just work.
 *
 * Placeholders: PostgreSQL uses $1..$n, the others "?". Every generator
 * documents the order of its parameters.
 *
 * Thread safety: the functions keep no state; a buffer is used by one thread.
 */
#ifndef SLUICE_SQL_DIALECT_H
#define SLUICE_SQL_DIALECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/types.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sluice_sql_dialect {
    SLUICE_SQL_POSTGRESQL = 1,
    SLUICE_SQL_MYSQL = 2, /* MySQL 8 and MariaDB 10.5+ */
    SLUICE_SQL_SQLITE = 3,
    SLUICE_SQL_MSSQL = 4
};

/* "postgresql", "mysql", "sqlite", "mssql", or NULL. */
const char *sluice_sql_dialect_name(int dialect);
/* The dialect named name (also "pg", "postgres", "mariadb"), or -1. */
int sluice_sql_dialect_parse(const char *name);

/* ---- growable buffer ------------------------------------------------------ */

/*
 * A NUL-terminated growable string. On allocation failure `failed` becomes
 * true and further appends do nothing; check it once after generating.
 * Zero-initialise (or sluice_sql_buf_init) before use; reset keeps the memory.
 */
struct sluice_sql_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

void sluice_sql_buf_init(struct sluice_sql_buf *b);
void sluice_sql_buf_free(struct sluice_sql_buf *b);
void sluice_sql_buf_reset(struct sluice_sql_buf *b);
void sluice_sql_buf_append(struct sluice_sql_buf *b, const void *p, size_t n);
void sluice_sql_buf_puts(struct sluice_sql_buf *b, const char *s);
void sluice_sql_buf_putc(struct sluice_sql_buf *b, char c);
/* v in decimal, without printf (rows are mostly numbers) */
void sluice_sql_buf_put_int(struct sluice_sql_buf *b, int64_t v);
void sluice_sql_buf_put_uint(struct sluice_sql_buf *b, uint64_t v);
void sluice_sql_buf_printf(struct sluice_sql_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The text so far ("" when empty), valid until the next append. */
const char *sluice_sql_buf_str(const struct sluice_sql_buf *b);

/* ---- names ------------------------------------------------------------------ */

/* Names of the sync metadata columns every target table carries. */
#define SLUICE_SQL_COL_VERSION "_sluice_version"
#define SLUICE_SQL_COL_FIRST_SYNC "_sluice_first_sync"
#define SLUICE_SQL_COL_LAST_SYNC "_sluice_last_sync"

/* Metadata tables (in the profile's target schema). */
#define SLUICE_SQL_CHECKPOINT_TABLE "_sluice_checkpoint"
#define SLUICE_SQL_TOMBSTONE_TABLE "_sluice_tombstone"
#define SLUICE_SQL_DELETE_LOG_TABLE "_sluice_delete_log" /* after table_prefix */

/*
 * Where a target table lives: schema (NULL or "": unqualified - SQLite, or
 * the connection's default), and the table name = prefix + name.
 */
struct sluice_sql_table {
    const char *schema;
    const char *prefix; /* NULL = "" */
    const char *name;
};

/* Append name quoted for the dialect: "a""b" (PostgreSQL, SQLite),
 * `a``b` (MySQL), [a]]b] (MSSQL). Always quoted. */
void sluice_sql_ident(struct sluice_sql_buf *b, int dialect, const char *name);
void sluice_sql_ident_n(struct sluice_sql_buf *b, int dialect, const char *name, size_t len);
/* Append the quoted, schema-qualified name of t: "crm"."pre_accounts". */
void sluice_sql_table_name(struct sluice_sql_buf *b, int dialect,
                           const struct sluice_sql_table *t);
/* Append placeholder number n (1-based): $n for PostgreSQL, ? otherwise. */
void sluice_sql_param(struct sluice_sql_buf *b, int dialect, unsigned n);
/* Append a string literal (quotes doubled; MySQL also doubles backslashes).
 * Only for DDL texts that cannot take parameters (MSSQL's EXEC); values in
 * DML always go as parameters. */
void sluice_sql_string_literal(struct sluice_sql_buf *b, int dialect, const char *s);

/* ---- types -------------------------------------------------------------- */

/*
 * Append the column type for col (logical type, precision/scale, max_length;
 * key columns get an indexable type where the dialect needs one, e.g. MySQL
 * varchar(255) for a text key). 0, or -1 for an unknown type.
 */
int sluice_sql_column_type(struct sluice_sql_buf *b, int dialect,
                           const struct sluice_column *col);
/* Type of _sluice_version (holds every uint64): numeric(20), bigint unsigned, ... */
const char *sluice_sql_version_type(int dialect);
/* Type of the sync time columns (UTC with microseconds). */
const char *sluice_sql_synctime_type(int dialect);
/* Expression for "now" in that type. */
const char *sluice_sql_now(int dialect);

/* ---- DDL ----------------------------------------------------------------- */

/*
 * All generators append ONE statement (without a trailing ';', except the
 * MSSQL MERGE which requires one) and return 0, or -1 on bad input (unknown
 * dialect or type, entity without key where one is required).
 */

/* CREATE SCHEMA IF NOT EXISTS (MySQL: CREATE DATABASE; MSSQL: guarded EXEC).
 * Returns 1 and appends nothing when the dialect has no schemas (SQLite) or
 * schema is NULL/"". */
int sluice_sql_create_schema(struct sluice_sql_buf *b, int dialect, const char *schema);

/* CREATE TABLE IF NOT EXISTS t (columns..., _sluice_version NOT NULL,
 * _sluice_first_sync, _sluice_last_sync, PRIMARY KEY (key columns)).
 * Key columns are NOT NULL; other columns are nullable (a column added later
 * has to be, and the target must accept what the source sent). */
int sluice_sql_create_table(struct sluice_sql_buf *b, int dialect,
                            const struct sluice_sql_table *t, const struct sluice_entity *e);

/* ALTER TABLE t ADD COLUMN col (nullable). PostgreSQL and MariaDB-safe
 * "IF NOT EXISTS" is used where the dialect has it (PostgreSQL). */
int sluice_sql_add_column(struct sluice_sql_buf *b, int dialect,
                          const struct sluice_sql_table *t, const struct sluice_column *col);

/* ---- DML ----------------------------------------------------------------- */

/*
 * Version-guarded upsert of one row (or of a SELECT's rows).
 *
 * include: one flag per entity column (NULL = all); excluded columns are
 * neither inserted nor updated (an UPDATE that left them ABSENT keeps the
 * target's value). Key columns must be included.
 *
 * select_sql NULL: the row comes from parameters, in this order: the included
 * columns in column order, then the version.
 * select_sql non-NULL: the rows come from that query, which must produce the
 * same columns in the same order (SQLite needs a WHERE clause in it, e.g.
 * "WHERE true", to parse ON CONFLICT).
 *
 * PostgreSQL/SQLite: INSERT ... ON CONFLICT (key) DO UPDATE SET ...
 *   WHERE target._sluice_version < excluded._sluice_version
 * MySQL: INSERT ... ON DUPLICATE KEY UPDATE c = IF(guard, VALUES(c), c) ...,
 *   _sluice_version updated last (MySQL assigns left to right)
 * MSSQL: MERGE ... WHEN MATCHED AND guard THEN UPDATE ... WHEN NOT MATCHED
 */
int sluice_sql_upsert(struct sluice_sql_buf *b, int dialect, const struct sluice_sql_table *t,
                      const struct sluice_entity *e, const uint8_t *include,
                      const char *select_sql);

/* Version-guarded delete of one record: DELETE FROM t WHERE key = p AND
 * _sluice_version < p. Parameters: key columns in key order, then version. */
int sluice_sql_delete_guarded(struct sluice_sql_buf *b, int dialect,
                              const struct sluice_sql_table *t, const struct sluice_entity *e);

/* ---- metadata tables ------------------------------------------------------ */

/* _sluice_checkpoint (profile, partition, position bytes, updated_at),
 * primary key (profile, partition). */
int sluice_sql_create_checkpoint_table(struct sluice_sql_buf *b, int dialect, const char *schema);
/* Upsert one checkpoint. Parameters: profile, partition, position. */
int sluice_sql_checkpoint_upsert(struct sluice_sql_buf *b, int dialect, const char *schema);
/* SELECT partition, position ... WHERE profile = p1. */
int sluice_sql_checkpoint_select(struct sluice_sql_buf *b, int dialect, const char *schema);
/* DELETE the profile's checkpoints. Parameter: profile. */
int sluice_sql_checkpoint_delete(struct sluice_sql_buf *b, int dialect, const char *schema);

/* _sluice_tombstone (profile, entity, record_key text, version), primary key
 * (profile, entity, record_key): the newest deleted version of a record, so
 * an older insert or update can never resurrect it. */
int sluice_sql_create_tombstone_table(struct sluice_sql_buf *b, int dialect, const char *schema);
/* Upsert a tombstone keeping the larger version.
 * Parameters: profile, entity, record_key, version. */
int sluice_sql_tombstone_upsert(struct sluice_sql_buf *b, int dialect, const char *schema);
/* DELETE tombstones of a profile (parameter: profile) or, with
 * per_entity, of one entity (parameters: profile, entity). */
int sluice_sql_tombstone_delete(struct sluice_sql_buf *b, int dialect, const char *schema,
                                bool per_entity);

/* <prefix>_sluice_delete_log (entity, record_id, version, deleted_at). */
int sluice_sql_create_delete_log_table(struct sluice_sql_buf *b, int dialect,
                                       const char *schema, const char *prefix);
/* Parameters: entity, record_id, version. */
int sluice_sql_delete_log_insert(struct sluice_sql_buf *b, int dialect, const char *schema,
                                 const char *prefix);

/* DROP TABLE IF EXISTS of one metadata table (base = SLUICE_SQL_*_TABLE;
 * prefix applies to the delete log only, NULL otherwise). */
int sluice_sql_drop_table(struct sluice_sql_buf *b, int dialect, const char *schema,
                          const char *prefix, const char *base);

/* ---- values (since sink-mysql / sink-odbc) ----------------------------------- */

/*
 * Append the text of a PRESENT value v of column col in the dialect's input
 * syntax, for sinks that bind values as text parameters. TEXT, JSON and BYTES
 * are appended raw (bind BYTES as binary). Returns 0; 1 when the dialect
 * cannot hold the value (NaN/+-infinity in MySQL/MSSQL, a year outside
 * MySQL's 1000..9999): the sink writes NULL, as docs/sql-dialects.md says;
 * -1 for an invalid value (a UUID not 16 bytes, a time past 24:00).
 */
int sluice_sql_value_text(struct sluice_sql_buf *b, int dialect, const struct sluice_column *col,
                          const struct sluice_value *v);

/*
 * Append the record key of ev as text (tombstones, delete log): the key
 * value's text for a one-column key (bytes as \x hex); for several columns
 * the texts joined by ',' with '\' and ',' escaped by a backslash.
 * -1 when a key value is missing or cannot be written.
 */
int sluice_sql_record_key(struct sluice_sql_buf *b, int dialect, const struct sluice_event *ev,
                          struct sluice_sql_buf *scratch);

#ifdef __cplusplus
}
#endif

#endif
