#!/usr/bin/env bash
# PostgreSQL -> PostgreSQL through source-pg, both paths (snapshot COPY and
# the pgoutput stream), checked on what lands in the target:
#  - every built-in type of DESIGN.md section 4 (and an "other" type as text)
#    round-trips exactly, edge values included;
#  - an unchanged TOAST value survives updates of other columns, also an
#    update that changes the key (the new row gets the value, never NULL);
#  - a column added mid-stream reaches the target, a dropped one stays there;
#  - TRUNCATE is applied in order with the changes around it;
#  - a table added to the profile later gets its own snapshot, then streams.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

pg_start
psql_q "CREATE DATABASE target"
conf=$(write_main_conf "$TEST_TMP/etc")
profile() { # entities...
    local ents
    ents=$(printf '"%s", ' "$@")
    cat >"$TEST_TMP/etc/conf.d/10-ty.conf" <<CONF
profiles = ( {
  name = "ty";
  entities = [ ${ents%, } ];
  source = { plugin = "pg"; conninfo = "$PG_CONNINFO"; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  target_schema = "cdc";
  workers = 2;
  retry_interval = 1;
} );
CONF
}
run_once() {
    sluice run --once -c "$conf" 2>"$TEST_TMP/run.err" ||
        { cat "$TEST_TMP/run.err" >&2; fail "sluice run --once failed ($1)"; }
}
tq() { PGDATABASE=target psql_q "$1"; }

COLS="id, b, i2, i4, i8, f4, f8, n, nu, t, vc, bc, by, d, tm, ts, tz, u, j, other"
psql_q "CREATE TABLE ty (id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 float4,
          f8 float8, n numeric(38,10), nu numeric, t text, vc varchar(20), bc char(5),
          by bytea, d date, tm time, ts timestamp, tz timestamptz, u uuid, j jsonb, other inet);
        CREATE TABLE big (id int PRIMARY KEY, payload text, n int);
        ALTER TABLE big ALTER payload SET STORAGE EXTERNAL;
        CREATE TABLE tr (id int PRIMARY KEY, v text);
        INSERT INTO tr SELECT g, 'r' || g FROM generate_series(1, 100) g;"
# rows with edge values; $1 offsets the ids (snapshot rows, then streamed rows)
ty_rows() {
    local o=$1
    psql_q "INSERT INTO ty VALUES
      ($o+1, true, -32768, -2147483648, -9223372036854775808, 3.4028235e38, 1.7976931348623157e308,
       '1234567890123456789012345678.1234567890', '-0.000000000000000000000000000000000001',
       '', 'a ü 😀 z', 'ab', '\\x00ff00'::bytea, '0001-01-01', '00:00:00', '1970-01-01 00:00:00.000001',
       '2024-02-29 23:59:59.999999+05:30', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": [1, 2.5, \"ü\"], \"z\": null}',
       '192.168.0.1/24'),
      ($o+2, false, 32767, 2147483647, 9223372036854775807, 'NaN', '-Infinity',
       '-0.0000000001', 'NaN', 'tab	and
newline \\ backslash \"q\" ,c', '', 'abcde', '\\x'::bytea, 'infinity', '24:00:00', '-infinity',
       'infinity', '00000000-0000-0000-0000-000000000000', '\"just a string\"', '::1'),
      ($o+3, NULL, NULL, NULL, NULL, '-0', 1e-300, NULL, 'Infinity', NULL, NULL, NULL, NULL,
       '-infinity', '13:14:15.5', '9999-12-31 23:59:59.999999', '1999-12-31 12:00:00-08', NULL, '[]', NULL)"
}
ty_rows 0
psql_q "INSERT INTO big SELECT g, (SELECT string_agg(md5((g * 100000 + x)::text), '') FROM generate_series(1, 4000) x), 0
        FROM generate_series(1, 2) g"
profile ty big tr
run_once "initial sync"

# the stream: the same edge values, TOAST, TRUNCATE
ty_rows 10
psql_q "UPDATE big SET n = n + 1;
        INSERT INTO big VALUES (3, (SELECT string_agg(md5(x::text), '') FROM generate_series(1, 4000) x), 0);
        BEGIN; INSERT INTO tr VALUES (500, 'before'); TRUNCATE tr; INSERT INTO tr VALUES (1000, 'after'); COMMIT;
        UPDATE big SET n = n + 10 WHERE id = 3;
        UPDATE big SET id = 20 WHERE id = 2;
        UPDATE big SET id = 30, n = 5 WHERE id = 1; DELETE FROM big WHERE id = 30;"
run_once "stream"

dump() { PGDATABASE=$1 psql -X -q -v ON_ERROR_STOP=1 -c "COPY (SELECT $COLS FROM $2.ty ORDER BY id) TO STDOUT" >"$TEST_TMP/$1.ty"; }
dump postgres public
dump target cdc
cmp -s "$TEST_TMP/postgres.ty" "$TEST_TMP/target.ty" ||
    { diff "$TEST_TMP/postgres.ty" "$TEST_TMP/target.ty" >&2; fail "types differ between source and target"; }
assert_eq 6 "$(wc -l <"$TEST_TMP/target.ty")" "rows of ty in the target"

src_big=$(psql_q "SELECT string_agg(id || ':' || md5(payload) || ':' || n, ' ' ORDER BY id) FROM big")
tgt_big=$(tq "SELECT string_agg(id || ':' || coalesce(md5(payload), 'NULL') || ':' || n, ' ' ORDER BY id) FROM cdc.big")
assert_eq "$src_big" "$tgt_big" "TOAST values after updates of other columns and of the key"
assert_eq "3 20" "$(tq "SELECT string_agg(id::text, ' ' ORDER BY id) FROM cdc.big")" "rows of big after the key changes"
assert_eq "1000:after" "$(tq "SELECT string_agg(id || ':' || v, ',') FROM cdc.tr")" "target after TRUNCATE"

# schema changes mid-stream
psql_q "ALTER TABLE ty ADD COLUMN extra text;
        INSERT INTO ty (id, i2, extra) VALUES (100, 7, 'with extra');
        UPDATE ty SET extra = 'set later' WHERE id = 1;
        ALTER TABLE ty DROP COLUMN i2;
        INSERT INTO ty (id, extra) VALUES (101, 'after drop');
        UPDATE ty SET i4 = 42 WHERE id = 2;"
run_once "schema changes"
assert_eq "1|set later|-32768
2||32767
100|with extra|7
101|after drop|" "$(tq "SELECT id, extra, i2 FROM cdc.ty WHERE id IN (1, 2, 100, 101) ORDER BY id")" \
    "added column reaches the target, dropped column stays"
assert_eq 42 "$(tq "SELECT i4 FROM cdc.ty WHERE id = 2")" "update after the drop"

# a table added to the profile later: its own snapshot, then the stream
psql_q "CREATE TABLE late (id int PRIMARY KEY, v text);
        INSERT INTO late SELECT g, 'l' || g FROM generate_series(1, 500) g"
profile ty big tr late
run_once "new table"
grep -q "table public.late is new in the profile" "$TEST_TMP/run.err" || fail "no snapshot of the new table"
assert_eq 500 "$(tq "SELECT count(*) FROM cdc.late")" "rows of the new table"
psql_q "UPDATE late SET v = 'changed' WHERE id <= 10; DELETE FROM late WHERE id > 400; INSERT INTO late VALUES (9999, 'n')"
run_once "new table streams"
assert_eq "$(psql_q "SELECT string_agg(id || v, ',' ORDER BY id) FROM late")" \
    "$(tq "SELECT string_agg(id || v, ',' ORDER BY id) FROM cdc.late")" "new table after streamed changes"
log "ok: types, TOAST, added/dropped columns, TRUNCATE and a late table"
