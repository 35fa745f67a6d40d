#!/usr/bin/env bash
# Fetch-by-key for the resync of failed records: a change the target refuses
# (a CHECK constraint added in the target) goes to the failed-record log;
# once the target accepts it again, `sluice failures resync` fetches the
# record's current state from the source by key (source-pg's fetch) and the
# target then equals the source - a row changed since, and a row deleted since.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

pg_start
psql_q "CREATE DATABASE target"
conf=$(write_main_conf "$TEST_TMP/etc")
cat >"$TEST_TMP/etc/conf.d/10-rs.conf" <<CONF
profiles = ( {
  name = "rs";
  entities = [ "acc" ];
  source = { plugin = "pg"; conninfo = "$PG_CONNINFO"; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  target_schema = "cdc";
  workers = 1;
  retry_interval = 1;
} );
CONF
tq() { PGDATABASE=target psql_q "$1"; }
psql_q "CREATE TABLE acc (id int PRIMARY KEY, name text, n int);
        INSERT INTO acc SELECT g, 'a' || g, g FROM generate_series(1, 20) g"
sluice run --once -c "$conf" 2>"$TEST_TMP/run1.err" || { cat "$TEST_TMP/run1.err" >&2; fail "initial run"; }
tq "ALTER TABLE cdc.acc ADD CONSTRAINT small_n CHECK (n < 1000)"
psql_q "UPDATE acc SET n = 5000 WHERE id IN (3, 7); UPDATE acc SET n = 21 WHERE id = 1"
sluice run --once -c "$conf" 2>"$TEST_TMP/run2.err" || { cat "$TEST_TMP/run2.err" >&2; fail "second run"; }
failed=$(sluice failures list rs -c "$conf" 2>/dev/null | grep -c "acc" || true)
[ "$failed" -ge 2 ] || { sluice failures list rs -c "$conf" >&2 || true; fail "expected 2 failed records, got $failed"; }
assert_eq 3 "$(tq "SELECT n FROM cdc.acc WHERE id = 3")" "refused change not applied"
assert_eq 21 "$(tq "SELECT n FROM cdc.acc WHERE id = 1")" "accepted change applied"

tq "ALTER TABLE cdc.acc DROP CONSTRAINT small_n"
psql_q "UPDATE acc SET n = 6000, name = 'changed' WHERE id = 3; DELETE FROM acc WHERE id = 7"
sluice failures resync rs -c "$conf" 2>"$TEST_TMP/resync.err" || { cat "$TEST_TMP/resync.err" >&2; fail "resync failed"; }
assert_eq "3|changed|6000" "$(tq "SELECT id, name, n FROM cdc.acc WHERE id = 3")" "resynced row has the source's current state"
assert_eq 0 "$(tq "SELECT count(*) FROM cdc.acc WHERE id = 7")" "a record deleted in the source is deleted by resync"
# and the stream afterwards converges too
sluice run --once -c "$conf" 2>"$TEST_TMP/run3.err" || { cat "$TEST_TMP/run3.err" >&2; fail "third run"; }
assert_eq "$(psql_q "SELECT string_agg(id || name || n, ',' ORDER BY id) FROM acc")" \
    "$(tq "SELECT string_agg(id || name || n, ',' ORDER BY id) FROM cdc.acc")" "source and target"
log "ok: failed records resynced through fetch"
