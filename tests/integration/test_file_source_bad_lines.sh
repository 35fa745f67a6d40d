#!/usr/bin/env bash
# Bad input never stops the export: a snapshot row with an unparsable value,
# a row with too few fields, and change lines with malformed JSON, an unknown
# entity, an unparsable value, an unknown column and a missing key each land
# in the failed-record log with file:line while `sluice run --once` exits 0
# with every good row in PostgreSQL. A half-written last line is not read
# (and not failed) until it is complete. A configured entity without a
# schema file is a clear error naming the path.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

pg_start
psql_q "CREATE DATABASE target"

data=$TEST_TMP/data
mkdir -p "$data/changes"
cat >"$data/items.schema.json" <<'JSON'
{"namespace": "shop", "name": "items",
 "columns": [{"name": "id", "type": "int64", "key": true},
             {"name": "name", "type": "text"},
             {"name": "qty", "type": "int32"},
             {"name": "price", "type": "decimal", "precision": 10, "scale": 2}]}
JSON
cat >"$data/items.csv" <<'CSV'
id,name,qty,price
1,apple,5,1.50
2,pear,many,2.00
3,"plum",7
4,kiwi,8,0.10
CSV
cat >"$data/changes/000001.jsonl" <<'JSONL'
{"op": "insert", "entity": "items", "version": 1, "row": {"id": 10, "name": "good", "qty": 1, "price": "1.00"}}
{"op": "insert", "entity": "items", "version": 2, "row": {"id": 11, "name": 
{"op": "insert", "entity": "nosuch", "version": 3, "row": {"id": 11}}
{"op": "insert", "entity": "items", "version": 4, "row": {"id": 12, "qty": "lots"}}
{"op": "insert", "entity": "items", "version": 5, "row": {"id": 13, "colour": "red"}}
{"op": "update", "entity": "items", "version": 6, "row": {"name": "no key"}}
{"op": "delete", "entity": "items", "version": 7, "key": {"id": 4}}
{"op": "insert", "entity": "items", "version": 8, "row": {"id": 14, "name": "after the bad lines", "qty": 2, "price": "9.99"}}
JSONL
# a producer is still writing this line: no '\n' yet
printf '%s' '{"op": "insert", "entity": "items", "version": 9, "row": {"id": 15, "name": "late"' \
    >>"$data/changes/000001.jsonl"

conf=$(write_main_conf "$TEST_TMP/etc")
cat >"$TEST_TMP/etc/conf.d/10-shop.conf" <<CONF
profiles = ( {
  name = "shop";
  entities = [ "items" ];
  source = { plugin = "file"; path = "$data"; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  target_schema = "shop";
  retry_interval = 1;
} );
CONF

items() { PGDATABASE=target psql_q "SELECT string_agg(id || '|' || coalesce(name, '<null>'), ' ' ORDER BY id) FROM shop.items"; }
failed() { # where -> "entity|record_id" of the failed record logged at that place
    python3 - "$TEST_TMP/etc/state/state.db" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT coalesce(entity, '-'), coalesce(record_id, '-') FROM failed_records "
                  "WHERE profile = 'shop' AND error LIKE ? || ': %'", (sys.argv[2],)).fetchall()
print(" ".join("%s|%s" % r for r in rows))
PY
}

log "run --once over bad input"
rc=0; sluice run --once -c "$conf" 2>"$TEST_TMP/once.err" || rc=$?
[ "$rc" = 0 ] || { tail -n 30 "$TEST_TMP/once.err" >&2; fail "run --once exited $rc on bad input"; }
assert_eq "1|apple 10|good 14|after the bad lines" "$(items)" "good rows in the target"

assert_eq "items|2" "$(failed items.csv:3)" "unparsable snapshot value"
assert_eq "items|3" "$(failed items.csv:4)" "snapshot row with too few fields"
assert_eq "-|-" "$(failed changes/000001.jsonl:2)" "malformed JSON line"
assert_eq "-|-" "$(failed changes/000001.jsonl:3)" "unknown entity"
assert_eq "items|12" "$(failed changes/000001.jsonl:4)" "unparsable change value"
assert_eq "items|13" "$(failed changes/000001.jsonl:5)" "unknown column"
assert_eq "items|-" "$(failed changes/000001.jsonl:6)" "update without its key"
assert_eq "" "$(failed changes/000001.jsonl:9)" "half-written line must not be failed"
grep -Eq "(WARN|warning).*changes/000001.jsonl:3.*unknown entity \"nosuch\"" "$TEST_TMP/once.err" ||
    { cat "$TEST_TMP/once.err" >&2; fail "no WARN line naming file:line of the unknown entity"; }

sluice status --json -c "$conf" >"$TEST_TMP/status.json"
python3 -c 'import json, sys
p = {x["name"]: x for x in json.load(open(sys.argv[1]))["profiles"]}["shop"]
assert p["failed_records"] == 7, p' "$TEST_TMP/status.json" || fail "status does not count 7 failed records"

log "the half-written line is completed"
printf '%s\n' ', "qty": 3, "price": "0.50"}}' >>"$data/changes/000001.jsonl"
rc=0; sluice run --once -c "$conf" 2>"$TEST_TMP/once2.err" || rc=$?
[ "$rc" = 0 ] || { tail -n 30 "$TEST_TMP/once2.err" >&2; fail "second run --once exited $rc"; }
assert_eq "1|apple 10|good 14|after the bad lines 15|late" "$(items)" "completed line applied"
python3 -c 'import json, sys
p = {x["name"]: x for x in json.load(open(sys.argv[1]))["profiles"]}["shop"]
assert p["failed_records"] == 7, p' <(sluice status --json -c "$conf") ||
    fail "the second run logged bad lines again (it must resume after them)"

log "an entity without a schema file"
cat >"$TEST_TMP/etc/conf.d/20-ghost.conf" <<CONF
profiles = ( {
  name = "ghost";
  entities = [ "items", "ghost" ];
  source = { plugin = "file"; path = "$data"; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  target_schema = "ghost";
  retry_count = 0;
} );
CONF
rc=0; sluice run --once -c "$conf" --profile ghost 2>"$TEST_TMP/ghost.err" || rc=$?
[ "$rc" != 0 ] || fail "a missing schema file did not fail the run"
grep -q "$data/ghost.schema.json" "$TEST_TMP/ghost.err" ||
    { cat "$TEST_TMP/ghost.err" >&2; fail "the error does not name the missing schema file"; }
log "ok"
