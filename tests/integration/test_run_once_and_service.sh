#!/usr/bin/env bash
# `sluice run --once` exits 0 with every row in PostgreSQL; `sluice run` as a
# service picks up a change file appended while it runs within seconds and
# exits 0 on SIGTERM; `sluice status` shows the counters (table and JSON);
# command-line mistakes exit 2.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

pg_start
psql_q "CREATE DATABASE shop_target"

data=$TEST_TMP/data
mkdir -p "$data/changes"
cat >"$data/items.schema.json" <<'JSON'
{"namespace": "shop", "name": "items",
 "columns": [{"name": "id", "type": "int64", "key": true},
             {"name": "name", "type": "text", "nullable": true},
             {"name": "price", "type": "decimal", "precision": 10, "scale": 2, "nullable": true}]}
JSON
cat >"$data/items.csv" <<'CSV'
id,name,price
1,apple,1.50
2,"pear, green",2.00
3,,0.99
CSV

conf=$(write_main_conf "$TEST_TMP/etc")
cat >"$TEST_TMP/etc/conf.d/10-shop.conf" <<CONF
profiles = ( {
  name = "shop";
  entities = [ "items" ];
  source = { plugin = "file"; path = "$data"; poll_interval_ms = 100; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=shop_target"; };
  target_schema = "shop";
  workers = 2;
  retry_interval = 1;
} );
CONF

target() { PGDATABASE=shop_target psql_q "$1"; }
items() { target "SELECT id || '|' || coalesce(name, '<null>') || '|' || coalesce(price::text, '<null>') FROM shop.items ORDER BY id" | tr '\n' ' '; }

# ---- command line ------------------------------------------------------------
rc=0; sluice frobnicate 2>"$TEST_TMP/usage.err" || rc=$?
assert_eq 2 "$rc" "unknown command exit code"
grep -q "usage: sluice" "$TEST_TMP/usage.err" || fail "unknown command does not print the usage"
rc=0; sluice run --bogus -c "$conf" 2>/dev/null || rc=$?
assert_eq 2 "$rc" "unknown option exit code"
rc=0; sluice status --once -c "$conf" 2>/dev/null || rc=$?
assert_eq 2 "$rc" "option of another command exit code"
rc=0; sluice run --once -c "$conf" --profile nosuch 2>"$TEST_TMP/prof.err" || rc=$?
assert_eq 2 "$rc" "unknown --profile exit code"
grep -q "nosuch" "$TEST_TMP/prof.err" || fail "unknown --profile is not named in the error"
sluice --version | grep_q "^sluice " || fail "--version prints no version"

# ---- one-shot ----------------------------------------------------------------
log "run --once"
rc=0; sluice run --once -c "$conf" 2>"$TEST_TMP/once.err" || rc=$?
[ "$rc" = 0 ] || { cat "$TEST_TMP/once.err" >&2; fail "run --once exited $rc"; }
assert_eq "1|apple|1.50 2|pear, green|2.00 3|<null>|0.99 " "$(items)" "rows after run --once"
grep -q "profile shop: done" "$TEST_TMP/once.err" || fail "no summary line for profile shop"

mode=$(stat -c %a "$TEST_TMP/etc/state/state.db")
assert_eq 600 "$mode" "state.db mode"

# ---- service -----------------------------------------------------------------
log "run as a service"
"$SLUICE_BIN" run -c "$conf" 2>"$TEST_TMP/service.err" &
pid=$!
stop_service() { kill -KILL "$pid" 2>/dev/null || true; }
at_exit stop_service

# the service is up once the profile shows as running
for _ in $(seq 1 100); do
    sluice status -c "$conf" 2>/dev/null | grep_q "^shop .* running" && break
    kill -0 "$pid" 2>/dev/null || { cat "$TEST_TMP/service.err" >&2; fail "service died"; }
    sleep 0.1
done

cat >"$TEST_TMP/000001.jsonl" <<'JSONL'
{"op": "insert", "entity": "items", "version": 1, "row": {"id": 4, "name": "plum", "price": "3.25"}}
{"op": "update", "entity": "items", "version": 2, "row": {"id": 1, "name": "red apple"}}
{"op": "delete", "entity": "items", "version": 3, "key": {"id": 2}}
JSONL
mv "$TEST_TMP/000001.jsonl" "$data/changes/000001.jsonl"

want="1|red apple|1.50 3|<null>|0.99 4|plum|3.25 "
got=""
for _ in $(seq 1 300); do # up to 30 s; normally well under a second
    got=$(items)
    [ "$got" = "$want" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$TEST_TMP/service.err" >&2; fail "service died"; }
    sleep 0.1
done
assert_eq "$want" "$got" "rows after the appended change file"

kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" = 0 ] || { cat "$TEST_TMP/service.err" >&2; fail "service exited $rc after SIGTERM"; }
grep -q "profile shop: stopped" "$TEST_TMP/service.err" || fail "no summary after SIGTERM"

# ---- status ------------------------------------------------------------------
sluice status -c "$conf" >"$TEST_TMP/status.txt"
grep -q "^shop .*yes .*stopped" "$TEST_TMP/status.txt" || { cat "$TEST_TMP/status.txt" >&2; fail "status line of shop"; }
grep -q "^  items " "$TEST_TMP/status.txt" || fail "status has no counters for items"
sluice status --json -c "$conf" >"$TEST_TMP/status.json"
python3 - "$TEST_TMP/status.json" <<'PY' || fail "status --json counters"
import json, sys
doc = json.load(open(sys.argv[1]))
p = {x["name"]: x for x in doc["profiles"]}["shop"]
c = p["entities"]["items"]
assert p["enabled"] is True and p["status"] == "stopped", p
assert c["rows_read"] == 3, c
assert c["inserts"] >= 1 and c["updates"] >= 1 and c["deletes"] >= 1, c
assert c["applied_rows"] >= 6, c
assert p["failed_records"] == 0, p
assert p["last_success"] is not None, p
PY
log "ok"
