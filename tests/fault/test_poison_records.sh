#!/usr/bin/env bash
# Records the target refuses never stop the export: a CHECK constraint and a
# NOT NULL violation on a PostgreSQL target, and a value too long for a
# MariaDB VARCHAR column. Each refused record lands in the failed-record log
# with its id (and no row data), every other record of the same batches is
# applied, `sluice failures export` gives RFC 4180 CSV, and once the targets
# are fixed `sluice failures resync` applies the records and empties the log.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/mariadb.sh"
source "$SLUICE_SOURCE_DIR/tests/fault/fault_lib.sh"

pg_start
psql_q "CREATE DATABASE target"
export PGDATABASE=target
mariadb_start
data=$TEST_TMP/data
make_items "$data" 300
conf=$(write_main_conf "$TEST_TMP/etc")
echo "$MARIADB_PASSWORD" >"$TEST_TMP/my.pass"
chmod 0600 "$TEST_TMP/my.pass"
cat >"$TEST_TMP/etc/conf.d/10-poison.conf" <<CONF
profiles = ( {
  name = "pg";
  entities = [ "items" ];
  source = { plugin = "file"; path = "$data"; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  target_schema = "crm";
  batch_size = 1000;
  workers = 1;
  retry_interval = 1;
}, {
  name = "my";
  entities = [ "items" ];
  source = { plugin = "file"; path = "$data"; };
  sink = { plugin = "mysql"; host = "127.0.0.1"; port = $MARIADB_PORT; user = "$MARIADB_USER";
           password_file = "$TEST_TMP/my.pass"; database = "sluice"; };
  target_schema = "crm";
  batch_size = 1000;
  workers = 1;
  retry_interval = 1;
} );
CONF

sluice run --once -c "$conf" 2>"$TEST_TMP/run1.err" || { cat "$TEST_TMP/run1.err" >&2; fail "first run failed"; }
compare_target "$data" "initial sync"

# make both targets refuse some values
psql_q "ALTER TABLE crm.items ADD CONSTRAINT qty_not_negative CHECK (qty >= 0) NOT VALID;
        ALTER TABLE crm.items ALTER COLUMN name SET NOT NULL"
mariadb_q "ALTER TABLE crm.items MODIFY name VARCHAR(12)"

# one change file, one batch: good changes around the poison ones
lines=()
v=1000
for i in $(seq 101 160); do
    v=$((v + 1))
    case $i in
    110) row="{\"id\": 110, \"name\": \"negative\", \"qty\": -5}" ;;       # CHECK (PG)
    120) row="{\"id\": 120, \"name\": null, \"qty\": 3}" ;;                 # NOT NULL (PG)
    130) row="{\"id\": 130, \"name\": \"a name far too long for twelve\", \"qty\": 4}" ;; # VARCHAR(12) (MariaDB)
    *) row="{\"id\": $i, \"name\": \"new $i\", \"qty\": $i}" ;;
    esac
    lines+=("{\"op\": \"update\", \"entity\": \"items\", \"version\": $v, \"row\": $row}")
done
add_change_lines "$data" 1 "${lines[@]}"

sluice run --once -c "$conf" 2>"$TEST_TMP/run2.err" ||
    { cat "$TEST_TMP/run2.err" >&2; fail "a run with poison records failed instead of isolating them"; }

ids() { # profile
    state_sql "$TEST_TMP/etc" "SELECT group_concat(record_id, ' ') FROM (SELECT record_id FROM
        failed_records WHERE profile = '$1' ORDER BY CAST(record_id AS INTEGER))"
}
assert_eq "110 120" "$(ids pg)" "failed records of the PostgreSQL target"
assert_eq "130" "$(ids my)" "failed records of the MariaDB target"
assert_eq "update" "$(state_sql "$TEST_TMP/etc" "SELECT DISTINCT op FROM failed_records")" "op in the log"
state_sql "$TEST_TMP/etc" "SELECT error FROM failed_records WHERE profile = 'pg' AND record_id = '110'" |
    grep -q qty_not_negative || fail "the PostgreSQL error text is not in the log"
if state_sql "$TEST_TMP/etc" "SELECT error FROM failed_records" | grep_q "far too long"; then
    fail "row data leaked into the failed-record log"
fi

# every other change of the batch is in both targets
expected_items "$data" | grep -v -e '^110|' -e '^120|' >"$TEST_TMP/exp-pg.txt"
target_items | grep -v -e '^110|' -e '^120|' >"$TEST_TMP/got-pg.txt"
cmp -s "$TEST_TMP/exp-pg.txt" "$TEST_TMP/got-pg.txt" ||
    { diff "$TEST_TMP/exp-pg.txt" "$TEST_TMP/got-pg.txt" | head >&2; fail "PostgreSQL: the good rows of the batch are missing"; }
assert_eq "item 110|13" "$(target_items | grep '^110|' | cut -d'|' -f2-)" "PostgreSQL kept the old row 110"
my_rows() {
    mariadb --no-defaults --socket="$MARIADB_SOCKET" -uroot -N -B \
        -e "SELECT id, coalesce(name, ''), coalesce(qty, '') FROM crm.items ORDER BY id" | tr '\t' '|'
}
expected_items "$data" | grep -v '^130|' >"$TEST_TMP/exp-my.txt"
my_rows | grep -v '^130|' >"$TEST_TMP/got-my.txt"
cmp -s "$TEST_TMP/exp-my.txt" "$TEST_TMP/got-my.txt" ||
    { diff "$TEST_TMP/exp-my.txt" "$TEST_TMP/got-my.txt" | head >&2; fail "MariaDB: the good rows of the batch are missing"; }
log "poison records isolated: pg $(ids pg), my $(ids my); the rest of the batch applied"

# list and export
sluice failures list pg -c "$conf" | grep_q "^[0-9].*items *110 " || fail "failures list does not show record 110"
sluice failures export pg -c "$conf" --output "$TEST_TMP/pg.csv"
python3 - "$TEST_TMP/pg.csv" <<'PY' || fail "failures export is not the expected CSV"
import csv, sys
raw = open(sys.argv[1], newline="").read()
assert raw.endswith("\r\n"), "RFC 4180 lines end with CRLF"
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["id", "profile", "entity", "record_id", "op", "position", "sync_time", "error"], rows[0]
assert [r[3] for r in rows[1:]] == ["110", "120"], rows
assert all(r[1] == "pg" and r[2] == "items" and r[4] == "update" and r[7] for r in rows[1:]), rows
PY
sluice failures export my -c "$conf" | grep_q '"130"' || fail "failures export to stdout"

# fix the targets, resync, the logs empty and the targets equal the source
psql_q "ALTER TABLE crm.items DROP CONSTRAINT qty_not_negative; ALTER TABLE crm.items ALTER COLUMN name DROP NOT NULL"
mariadb_q "ALTER TABLE crm.items MODIFY name TEXT"
sluice failures resync pg -c "$conf" 2>"$TEST_TMP/resync.err" ||
    { cat "$TEST_TMP/resync.err" >&2; fail "failures resync pg"; }
sluice failures resync my -c "$conf" 2>>"$TEST_TMP/resync.err" ||
    { cat "$TEST_TMP/resync.err" >&2; fail "failures resync my"; }
assert_eq 0 "$(failed_count "$TEST_TMP/etc" pg)" "failed records of pg after resync"
assert_eq 0 "$(failed_count "$TEST_TMP/etc" my)" "failed records of my after resync"
compare_target "$data" "PostgreSQL after resync"
expected_items "$data" >"$TEST_TMP/exp-my.txt"
my_rows >"$TEST_TMP/got-my.txt"
cmp -s "$TEST_TMP/exp-my.txt" "$TEST_TMP/got-my.txt" || fail "MariaDB differs from the source after resync"

# clear
add_change_lines "$data" 2 "{\"op\": \"update\", \"entity\": \"items\", \"version\": 5000, \"row\": {\"id\": 5, \"name\": \"x\", \"qty\": 1}}"
state_sql "$TEST_TMP/etc" "INSERT INTO failed_records (profile, entity, record_id, op, error) VALUES ('pg', 'items', '5', 'update', 'test')"
assert_eq "profile pg: removed 1 failed records" "$(sluice failures clear pg -c "$conf")" "failures clear"
assert_eq 0 "$(failed_count "$TEST_TMP/etc" pg)" "failed records after clear"
log "ok"
