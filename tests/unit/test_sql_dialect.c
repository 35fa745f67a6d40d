/*
 * test_sql_dialect.c - the shared SQL dialect layer (sdk/sql) at the text
 * level: quoting, type mapping, DDL, guarded upsert/delete and metadata
 * statements for PostgreSQL, MySQL, SQLite and MSSQL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <sluice_sql/dialect.h>

static const char *quoted(int d, const char *name)
{
    static struct sluice_sql_buf b;
    sluice_sql_buf_reset(&b);
    sluice_sql_ident(&b, d, name);
    return sluice_sql_buf_str(&b);
}

static void identifiers_are_always_quoted_and_escaped(void **state)
{
    (void)state;
    assert_string_equal(quoted(SLUICE_SQL_POSTGRESQL, "id"), "\"id\"");
    assert_string_equal(quoted(SLUICE_SQL_POSTGRESQL, "order"), "\"order\"");
    assert_string_equal(quoted(SLUICE_SQL_POSTGRESQL, "a\"b"), "\"a\"\"b\"");
    assert_string_equal(quoted(SLUICE_SQL_POSTGRESQL, "my table"), "\"my table\"");
    assert_string_equal(quoted(SLUICE_SQL_SQLITE, "a\"b"), "\"a\"\"b\"");
    assert_string_equal(quoted(SLUICE_SQL_SQLITE, "a`b"), "\"a`b\"");
    assert_string_equal(quoted(SLUICE_SQL_MYSQL, "order"), "`order`");
    assert_string_equal(quoted(SLUICE_SQL_MYSQL, "a`b"), "`a``b`");
    assert_string_equal(quoted(SLUICE_SQL_MYSQL, "a\"b"), "`a\"b`");
    assert_string_equal(quoted(SLUICE_SQL_MSSQL, "order"), "[order]");
    assert_string_equal(quoted(SLUICE_SQL_MSSQL, "a]b"), "[a]]b]");
    assert_string_equal(quoted(SLUICE_SQL_MSSQL, "a[b"), "[a[b]");
    assert_string_equal(quoted(SLUICE_SQL_MSSQL, "]]"), "[]]]]]");
    assert_string_equal(quoted(SLUICE_SQL_POSTGRESQL, ""), "\"\"");
}

static void dialect_names_parse(void **state)
{
    (void)state;
    assert_int_equal(sluice_sql_dialect_parse("pg"), SLUICE_SQL_POSTGRESQL);
    assert_int_equal(sluice_sql_dialect_parse("MariaDB"), SLUICE_SQL_MYSQL);
    assert_int_equal(sluice_sql_dialect_parse("sqlite"), SLUICE_SQL_SQLITE);
    assert_int_equal(sluice_sql_dialect_parse("mssql"), SLUICE_SQL_MSSQL);
    assert_int_equal(sluice_sql_dialect_parse("oracle"), -1);
    assert_string_equal(sluice_sql_dialect_name(SLUICE_SQL_MYSQL), "mysql");
    assert_null(sluice_sql_dialect_name(99));
}

static const char *type_of(int d, int type, int p, int s, int maxlen, bool key)
{
    static struct sluice_sql_buf b;
    struct sluice_column c = {.name = "c", .type = (uint16_t)type,
                              .flags = key ? SLUICE_COL_KEY : 0, .precision = p,
                              .scale = s, .max_length = maxlen};
    sluice_sql_buf_reset(&b);
    if (sluice_sql_column_type(&b, d, &c) != 0)
        return NULL;
    return sluice_sql_buf_str(&b);
}

static void postgresql_types_map_exactly(void **state)
{
    (void)state;
    const int d = SLUICE_SQL_POSTGRESQL;
    assert_string_equal(type_of(d, SLUICE_T_BOOL, 0, 0, 0, false), "boolean");
    assert_string_equal(type_of(d, SLUICE_T_INT16, 0, 0, 0, false), "smallint");
    assert_string_equal(type_of(d, SLUICE_T_INT32, 0, 0, 0, false), "integer");
    assert_string_equal(type_of(d, SLUICE_T_INT64, 0, 0, 0, false), "bigint");
    assert_string_equal(type_of(d, SLUICE_T_FLOAT32, 0, 0, 0, false), "real");
    assert_string_equal(type_of(d, SLUICE_T_FLOAT64, 0, 0, 0, false), "double precision");
    assert_string_equal(type_of(d, SLUICE_T_DECIMAL, 38, 10, 0, false), "numeric(38,10)");
    assert_string_equal(type_of(d, SLUICE_T_DECIMAL, 0, 0, 0, false), "numeric");
    assert_string_equal(type_of(d, SLUICE_T_TEXT, 0, 0, 0, false), "text");
    assert_string_equal(type_of(d, SLUICE_T_TEXT, 0, 0, 40, false), "varchar(40)");
    assert_string_equal(type_of(d, SLUICE_T_BYTES, 0, 0, 0, false), "bytea");
    assert_string_equal(type_of(d, SLUICE_T_DATE, 0, 0, 0, false), "date");
    assert_string_equal(type_of(d, SLUICE_T_TIME, 0, 0, 0, false), "time");
    assert_string_equal(type_of(d, SLUICE_T_TIMESTAMP, 0, 0, 0, false), "timestamp");
    assert_string_equal(type_of(d, SLUICE_T_TIMESTAMPTZ, 0, 0, 0, false), "timestamptz");
    assert_string_equal(type_of(d, SLUICE_T_UUID, 0, 0, 0, false), "uuid");
    assert_string_equal(type_of(d, SLUICE_T_JSON, 0, 0, 0, false), "jsonb");
    assert_null(type_of(d, 99, 0, 0, 0, false));
    assert_string_equal(sluice_sql_version_type(d), "numeric(20)");
}

static void other_dialects_map_every_type(void **state)
{
    (void)state;
    /* every logical type has a mapping in every dialect */
    for (int d = SLUICE_SQL_POSTGRESQL; d <= SLUICE_SQL_MSSQL; d++)
        for (int t = 1; t <= SLUICE_T_MAX; t++)
            assert_non_null(type_of(d, t, 0, 0, 0, false));
    assert_string_equal(type_of(SLUICE_SQL_MYSQL, SLUICE_T_BOOL, 0, 0, 0, false), "tinyint(1)");
    assert_string_equal(type_of(SLUICE_SQL_MYSQL, SLUICE_T_TEXT, 0, 0, 0, false), "longtext");
    /* a MySQL key needs a bounded, indexable type */
    assert_string_equal(type_of(SLUICE_SQL_MYSQL, SLUICE_T_TEXT, 0, 0, 0, true), "varchar(255)");
    assert_string_equal(type_of(SLUICE_SQL_MYSQL, SLUICE_T_DECIMAL, 38, 10, 0, false),
                        "decimal(38,10)");
    /* beyond MySQL's decimal(65,30) the value is kept exactly as text */
    assert_string_equal(type_of(SLUICE_SQL_MYSQL, SLUICE_T_DECIMAL, 70, 10, 0, false),
                        "varchar(1000)");
    assert_string_equal(type_of(SLUICE_SQL_MYSQL, SLUICE_T_TIMESTAMPTZ, 0, 0, 0, false),
                        "datetime(6)");
    assert_string_equal(type_of(SLUICE_SQL_SQLITE, SLUICE_T_DECIMAL, 38, 10, 0, false), "TEXT");
    assert_string_equal(type_of(SLUICE_SQL_SQLITE, SLUICE_T_BYTES, 0, 0, 0, false), "BLOB");
    assert_string_equal(type_of(SLUICE_SQL_MSSQL, SLUICE_T_TIMESTAMPTZ, 0, 0, 0, false),
                        "datetimeoffset(6)");
    assert_string_equal(type_of(SLUICE_SQL_MSSQL, SLUICE_T_UUID, 0, 0, 0, false),
                        "uniqueidentifier");
    assert_string_equal(type_of(SLUICE_SQL_MSSQL, SLUICE_T_TEXT, 0, 0, 0, true), "nvarchar(450)");
    assert_string_equal(sluice_sql_version_type(SLUICE_SQL_MYSQL), "bigint unsigned");
}

/* an entity with a reserved-word key, a quote in a column name and a space */
static const struct sluice_column cols[] = {
    {.name = "order", .type = SLUICE_T_INT64, .flags = SLUICE_COL_KEY},
    {.name = "a\"b", .type = SLUICE_T_TEXT, .flags = SLUICE_COL_NULLABLE},
    {.name = "my col", .type = SLUICE_T_DECIMAL, .precision = 10, .scale = 2},
};
static const uint32_t keys[] = {0};
static const struct sluice_entity ent = {.ns = "", .name = "my table", .ncolumns = 3,
                                         .columns = cols, .nkeys = 1, .key_columns = keys};
static const struct sluice_sql_table tbl = {.schema = "crm", .prefix = "x_", .name = "my table"};

typedef int (*gen_fn)(struct sluice_sql_buf *b, int d);
static struct sluice_sql_buf out;

static const char *gen_text(int rc_expected, int rc)
{
    assert_int_equal(rc, rc_expected);
    assert_false(out.failed);
    return sluice_sql_buf_str(&out);
}

static void create_table_has_key_and_sync_columns(void **state)
{
    (void)state;
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_create_table(&out, SLUICE_SQL_POSTGRESQL, &tbl, &ent)),
        "CREATE TABLE IF NOT EXISTS \"crm\".\"x_my table\" (\"order\" bigint NOT NULL, "
        "\"a\"\"b\" text NULL, \"my col\" numeric(10,2) NULL, "
        "\"_sluice_version\" numeric(20) NOT NULL, "
        "\"_sluice_first_sync\" timestamptz NOT NULL DEFAULT now(), "
        "\"_sluice_last_sync\" timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (\"order\"))");
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_create_table(&out, SLUICE_SQL_MYSQL, &tbl, &ent)),
        "CREATE TABLE IF NOT EXISTS `crm`.`x_my table` (`order` bigint NOT NULL, "
        "`a\"b` longtext NULL, `my col` decimal(10,2) NULL, "
        "`_sluice_version` bigint unsigned NOT NULL, "
        "`_sluice_first_sync` datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)), "
        "`_sluice_last_sync` datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)), "
        "PRIMARY KEY (`order`))");
    sluice_sql_buf_reset(&out);
    struct sluice_sql_table lite = {.schema = NULL, .prefix = "", .name = "my table"};
    assert_string_equal(
        gen_text(0, sluice_sql_create_table(&out, SLUICE_SQL_SQLITE, &lite, &ent)),
        "CREATE TABLE IF NOT EXISTS \"my table\" (\"order\" INTEGER NOT NULL, "
        "\"a\"\"b\" TEXT NULL, \"my col\" TEXT NULL, \"_sluice_version\" INTEGER NOT NULL, "
        "\"_sluice_first_sync\" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00','now')), "
        "\"_sluice_last_sync\" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00','now')), "
        "PRIMARY KEY (\"order\"))");
    sluice_sql_buf_reset(&out);
    struct sluice_sql_table ms = {.schema = "d'o", .prefix = "", .name = "a]b"};
    assert_string_equal(
        gen_text(0, sluice_sql_create_table(&out, SLUICE_SQL_MSSQL, &ms, &ent)),
        "IF OBJECT_ID(N'[d''o].[a]]b]', N'U') IS NULL CREATE TABLE [d'o].[a]]b] "
        "([order] bigint NOT NULL, [a\"b] nvarchar(max) NULL, [my col] decimal(10,2) NULL, "
        "[_sluice_version] decimal(20,0) NOT NULL, "
        "[_sluice_first_sync] datetimeoffset(6) NOT NULL DEFAULT SYSUTCDATETIME(), "
        "[_sluice_last_sync] datetimeoffset(6) NOT NULL DEFAULT SYSUTCDATETIME(), "
        "PRIMARY KEY ([order]))");
}

static void create_table_refuses_entity_without_key(void **state)
{
    (void)state;
    struct sluice_entity nokey = ent;
    nokey.nkeys = 0;
    sluice_sql_buf_reset(&out);
    assert_int_equal(sluice_sql_create_table(&out, SLUICE_SQL_POSTGRESQL, &tbl, &nokey), -1);
    assert_int_equal(sluice_sql_upsert(&out, SLUICE_SQL_POSTGRESQL, &tbl, &nokey, NULL, NULL), -1);
}

static void create_schema_per_dialect(void **state)
{
    (void)state;
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_create_schema(&out, SLUICE_SQL_POSTGRESQL, "a\"b")),
                        "CREATE SCHEMA IF NOT EXISTS \"a\"\"b\"");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_create_schema(&out, SLUICE_SQL_MYSQL, "a`b")),
                        "CREATE DATABASE IF NOT EXISTS `a``b`");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_create_schema(&out, SLUICE_SQL_MSSQL, "o'k]")),
                        "IF SCHEMA_ID(N'o''k]') IS NULL EXEC(N'CREATE SCHEMA [o''k]]]')");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(1, sluice_sql_create_schema(&out, SLUICE_SQL_SQLITE, "main")), "");
    assert_string_equal(gen_text(1, sluice_sql_create_schema(&out, SLUICE_SQL_POSTGRESQL, "")), "");
}

static void add_column_is_nullable(void **state)
{
    (void)state;
    const struct sluice_column c = {.name = "new col", .type = SLUICE_T_UUID};
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_add_column(&out, SLUICE_SQL_POSTGRESQL, &tbl, &c)),
                        "ALTER TABLE \"crm\".\"x_my table\" ADD COLUMN IF NOT EXISTS "
                        "\"new col\" uuid NULL");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_add_column(&out, SLUICE_SQL_MYSQL, &tbl, &c)),
                        "ALTER TABLE `crm`.`x_my table` ADD COLUMN `new col` char(36) NULL");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_add_column(&out, SLUICE_SQL_MSSQL, &tbl, &c)),
                        "ALTER TABLE [crm].[x_my table] ADD [new col] uniqueidentifier NULL");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_add_column(&out, SLUICE_SQL_SQLITE, &tbl, &c)),
                        "ALTER TABLE \"crm\".\"x_my table\" ADD COLUMN \"new col\" TEXT NULL");
}

static void upsert_is_version_guarded_postgresql_sqlite(void **state)
{
    (void)state;
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_upsert(&out, SLUICE_SQL_POSTGRESQL, &tbl, &ent, NULL, NULL)),
        "INSERT INTO \"crm\".\"x_my table\" AS \"_sluice_t\" (\"order\", \"a\"\"b\", \"my col\", "
        "\"_sluice_version\") VALUES ($1, $2, $3, $4) ON CONFLICT (\"order\") DO UPDATE SET "
        "\"a\"\"b\" = excluded.\"a\"\"b\", \"my col\" = excluded.\"my col\", "
        "\"_sluice_version\" = excluded.\"_sluice_version\", \"_sluice_last_sync\" = now() "
        "WHERE \"_sluice_t\".\"_sluice_version\" < excluded.\"_sluice_version\"");
    /* a partial update leaves the excluded column out of insert and update */
    const uint8_t include[] = {1, 0, 1};
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_upsert(&out, SLUICE_SQL_SQLITE, &tbl, &ent, include, NULL)),
        "INSERT INTO \"crm\".\"x_my table\" AS \"_sluice_t\" (\"order\", \"my col\", "
        "\"_sluice_version\") VALUES (?, ?, ?) ON CONFLICT (\"order\") DO UPDATE SET "
        "\"my col\" = excluded.\"my col\", \"_sluice_version\" = excluded.\"_sluice_version\", "
        "\"_sluice_last_sync\" = strftime('%Y-%m-%d %H:%M:%f+00','now') "
        "WHERE \"_sluice_t\".\"_sluice_version\" < excluded.\"_sluice_version\"");
    /* rows from a query (a staging table) */
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_upsert(&out, SLUICE_SQL_POSTGRESQL, &tbl, &ent, include,
                                      "SELECT * FROM s")),
        "INSERT INTO \"crm\".\"x_my table\" AS \"_sluice_t\" (\"order\", \"my col\", "
        "\"_sluice_version\") SELECT * FROM s ON CONFLICT (\"order\") DO UPDATE SET "
        "\"my col\" = excluded.\"my col\", \"_sluice_version\" = excluded.\"_sluice_version\", "
        "\"_sluice_last_sync\" = now() "
        "WHERE \"_sluice_t\".\"_sluice_version\" < excluded.\"_sluice_version\"");
    /* a key column cannot be left out */
    const uint8_t nokey[] = {0, 1, 1};
    assert_int_equal(sluice_sql_upsert(&out, SLUICE_SQL_POSTGRESQL, &tbl, &ent, nokey, NULL), -1);
}

static void upsert_mysql_updates_version_last(void **state)
{
    (void)state;
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_upsert(&out, SLUICE_SQL_MYSQL, &tbl, &ent, NULL, NULL)),
        "INSERT INTO `crm`.`x_my table` (`order`, `a\"b`, `my col`, `_sluice_version`) "
        "VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE "
        "`a\"b` = IF(`_sluice_version` < VALUES(`_sluice_version`), VALUES(`a\"b`), `a\"b`), "
        "`my col` = IF(`_sluice_version` < VALUES(`_sluice_version`), VALUES(`my col`), `my col`), "
        "`_sluice_last_sync` = IF(`_sluice_version` < VALUES(`_sluice_version`), "
        "UTC_TIMESTAMP(6), `_sluice_last_sync`), "
        "`_sluice_version` = IF(`_sluice_version` < VALUES(`_sluice_version`), "
        "VALUES(`_sluice_version`), `_sluice_version`)");
    /* the version assignment is the last one */
    const char *s = sluice_sql_buf_str(&out);
    const char *last = strstr(s, "`_sluice_version` = IF(");
    assert_non_null(last);
    assert_null(strstr(last + strlen("`_sluice_version` = IF("), " = IF("));
}

static void upsert_mssql_is_a_guarded_merge(void **state)
{
    (void)state;
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_upsert(&out, SLUICE_SQL_MSSQL, &tbl, &ent, NULL, NULL)),
        "MERGE INTO [crm].[x_my table] WITH (HOLDLOCK) AS [_sluice_t] USING (VALUES (?, ?, ?, ?)) "
        "AS [_sluice_s] ([order], [a\"b], [my col], [_sluice_version]) "
        "ON [_sluice_t].[order] = [_sluice_s].[order] "
        "WHEN MATCHED AND [_sluice_t].[_sluice_version] < [_sluice_s].[_sluice_version] "
        "THEN UPDATE SET [a\"b] = [_sluice_s].[a\"b], [my col] = [_sluice_s].[my col], "
        "[_sluice_version] = [_sluice_s].[_sluice_version], "
        "[_sluice_last_sync] = SYSUTCDATETIME() "
        "WHEN NOT MATCHED THEN INSERT ([order], [a\"b], [my col], [_sluice_version]) "
        "VALUES ([_sluice_s].[order], [_sluice_s].[a\"b], [_sluice_s].[my col], "
        "[_sluice_s].[_sluice_version]);");
}

static void delete_is_version_guarded(void **state)
{
    (void)state;
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_delete_guarded(&out, SLUICE_SQL_POSTGRESQL, &tbl, &ent)),
        "DELETE FROM \"crm\".\"x_my table\" WHERE \"order\" = $1 AND \"_sluice_version\" < $2");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_delete_guarded(&out, SLUICE_SQL_MYSQL, &tbl, &ent)),
                        "DELETE FROM `crm`.`x_my table` WHERE `order` = ? AND "
                        "`_sluice_version` < ?");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_delete_guarded(&out, SLUICE_SQL_MSSQL, &tbl, &ent)),
                        "DELETE FROM [crm].[x_my table] WHERE [order] = ? AND "
                        "[_sluice_version] < ?");
}

static void checkpoint_statements(void **state)
{
    (void)state;
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_create_checkpoint_table(&out, SLUICE_SQL_POSTGRESQL, "public")),
        "CREATE TABLE IF NOT EXISTS \"public\".\"_sluice_checkpoint\" (\"profile\" text NOT NULL, "
        "\"partition\" integer NOT NULL, \"position\" bytea NOT NULL, "
        "\"updated_at\" timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (\"profile\", "
        "\"partition\"))");
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_checkpoint_upsert(&out, SLUICE_SQL_POSTGRESQL, "public")),
        "INSERT INTO \"public\".\"_sluice_checkpoint\" AS \"_sluice_t\" (\"profile\", "
        "\"partition\", \"position\", \"updated_at\") VALUES ($1, $2, $3, now()) ON CONFLICT "
        "(\"profile\", \"partition\") DO UPDATE SET \"position\" = excluded.\"position\", "
        "\"updated_at\" = now()");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_checkpoint_upsert(&out, SLUICE_SQL_MYSQL, "db")),
                        "INSERT INTO `db`.`_sluice_checkpoint` (`profile`, `partition`, "
                        "`position`, `updated_at`) VALUES (?, ?, ?, UTC_TIMESTAMP(6)) ON "
                        "DUPLICATE KEY UPDATE `position` = VALUES(`position`), "
                        "`updated_at` = UTC_TIMESTAMP(6)");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_checkpoint_upsert(&out, SLUICE_SQL_MSSQL, "dbo")),
                        "MERGE INTO [dbo].[_sluice_checkpoint] WITH (HOLDLOCK) AS [_sluice_t] "
                        "USING (VALUES (?, ?, ?)) AS [_sluice_s] ([profile], [partition], "
                        "[position]) ON [_sluice_t].[profile] = [_sluice_s].[profile] AND "
                        "[_sluice_t].[partition] = [_sluice_s].[partition] WHEN MATCHED THEN "
                        "UPDATE SET [position] = [_sluice_s].[position], [updated_at] = "
                        "SYSUTCDATETIME() WHEN NOT MATCHED THEN INSERT ([profile], [partition], "
                        "[position], [updated_at]) VALUES ([_sluice_s].[profile], "
                        "[_sluice_s].[partition], [_sluice_s].[position], SYSUTCDATETIME());");
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_checkpoint_select(&out, SLUICE_SQL_POSTGRESQL, "public")),
        "SELECT \"partition\", \"position\" FROM \"public\".\"_sluice_checkpoint\" WHERE "
        "\"profile\" = $1 ORDER BY \"partition\"");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_checkpoint_delete(&out, SLUICE_SQL_SQLITE, NULL)),
                        "DELETE FROM \"_sluice_checkpoint\" WHERE \"profile\" = ?");
}

static void tombstone_keeps_the_largest_version(void **state)
{
    (void)state;
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_create_tombstone_table(&out, SLUICE_SQL_POSTGRESQL, "crm")),
        "CREATE TABLE IF NOT EXISTS \"crm\".\"_sluice_tombstone\" (\"profile\" text NOT NULL, "
        "\"entity\" text NOT NULL, \"record_key\" text NOT NULL, \"version\" numeric(20) NOT "
        "NULL, PRIMARY KEY (\"profile\", \"entity\", \"record_key\"))");
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_tombstone_upsert(&out, SLUICE_SQL_POSTGRESQL, "crm")),
        "INSERT INTO \"crm\".\"_sluice_tombstone\" AS \"_sluice_t\" (\"profile\", \"entity\", "
        "\"record_key\", \"version\") VALUES ($1, $2, $3, $4) ON CONFLICT (\"profile\", "
        "\"entity\", \"record_key\") DO UPDATE SET \"version\" = excluded.\"version\" WHERE "
        "\"_sluice_t\".\"version\" < excluded.\"version\"");
    sluice_sql_buf_reset(&out);
    assert_string_equal(gen_text(0, sluice_sql_tombstone_upsert(&out, SLUICE_SQL_MYSQL, "crm")),
                        "INSERT INTO `crm`.`_sluice_tombstone` (`profile`, `entity`, "
                        "`record_key`, `version`) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE "
                        "`version` = IF(`version` < VALUES(`version`), VALUES(`version`), "
                        "`version`)");
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_tombstone_delete(&out, SLUICE_SQL_POSTGRESQL, "crm", true)),
        "DELETE FROM \"crm\".\"_sluice_tombstone\" WHERE \"profile\" = $1 AND \"entity\" = $2");
}

static void delete_log_uses_the_table_prefix(void **state)
{
    (void)state;
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_create_delete_log_table(&out, SLUICE_SQL_POSTGRESQL, "crm", "x_")),
        "CREATE TABLE IF NOT EXISTS \"crm\".\"x__sluice_delete_log\" (\"entity\" text NOT NULL, "
        "\"record_id\" text NOT NULL, \"version\" numeric(20) NOT NULL, "
        "\"deleted_at\" timestamptz NOT NULL DEFAULT now())");
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_delete_log_insert(&out, SLUICE_SQL_MSSQL, "dbo", "")),
        "INSERT INTO [dbo].[_sluice_delete_log] ([entity], [record_id], [version]) VALUES (?, ?, ?)");
    sluice_sql_buf_reset(&out);
    assert_string_equal(
        gen_text(0, sluice_sql_drop_table(&out, SLUICE_SQL_MYSQL, "db", "p_",
                                          SLUICE_SQL_DELETE_LOG_TABLE)),
        "DROP TABLE IF EXISTS `db`.`p__sluice_delete_log`");
}

static void unknown_dialect_is_refused(void **state)
{
    (void)state;
    sluice_sql_buf_reset(&out);
    assert_int_equal(sluice_sql_create_table(&out, 0, &tbl, &ent), -1);
    assert_int_equal(sluice_sql_upsert(&out, 7, &tbl, &ent, NULL, NULL), -1);
    assert_int_equal(sluice_sql_checkpoint_upsert(&out, 0, "x"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identifiers_are_always_quoted_and_escaped),
        cmocka_unit_test(dialect_names_parse),
        cmocka_unit_test(postgresql_types_map_exactly),
        cmocka_unit_test(other_dialects_map_every_type),
        cmocka_unit_test(create_table_has_key_and_sync_columns),
        cmocka_unit_test(create_table_refuses_entity_without_key),
        cmocka_unit_test(create_schema_per_dialect),
        cmocka_unit_test(add_column_is_nullable),
        cmocka_unit_test(upsert_is_version_guarded_postgresql_sqlite),
        cmocka_unit_test(upsert_mysql_updates_version_last),
        cmocka_unit_test(upsert_mssql_is_a_guarded_merge),
        cmocka_unit_test(delete_is_version_guarded),
        cmocka_unit_test(checkpoint_statements),
        cmocka_unit_test(tombstone_keeps_the_largest_version),
        cmocka_unit_test(delete_log_uses_the_table_prefix),
        cmocka_unit_test(unknown_dialect_is_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sluice_sql_buf_free(&out);
    return rc;
}
