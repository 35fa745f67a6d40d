#!/usr/bin/env bash
# A record with a composite key whose values hold ',' and '"' goes through the
# failed-record log and back: the target refuses one change of it, the log
# names it with a record id that splits back into exactly its key values
# (sluice/record_id.h), and once the target is fixed `sluice failures resync`
# fetches that very record (not a neighbour, not nothing) and applies it.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/fault/fault_lib.sh"

pg_start
psql_q "CREATE DATABASE target"
export PGDATABASE=target
data=$TEST_TMP/data
mkdir -p "$data/changes"
cat >"$data/accounts.schema.json" <<'JSON'
{"namespace": "t", "name": "accounts", "columns": [
  {"name": "code", "type": "text", "key": true},
  {"name": "region", "type": "text", "key": true},
  {"name": "qty", "type": "int32", "nullable": true}]}
JSON
cat >"$data/accounts.csv" <<'CSV'
code,region,qty
"ACME, Inc.","EU ""north""",1
ACME,"Inc.,EU ""north""",2
plain,NULL,3
CSV
conf=$(write_main_conf "$TEST_TMP/etc")
cat >"$TEST_TMP/etc/conf.d/10-ck.conf" <<CONF
profiles = ( {
  name = "ck";
  entities = [ "accounts" ];
  source = { plugin = "file"; path = "$data"; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  target_schema = "crm";
  workers = 1;
  retry_interval = 1;
} );
CONF
rows() { psql_q "SELECT code || '|' || region || '|' || qty FROM crm.accounts ORDER BY code, region"; }

sluice run --once -c "$conf" 2>"$TEST_TMP/run1.err" || { cat "$TEST_TMP/run1.err" >&2; fail "initial sync failed"; }
assert_eq 'ACME|Inc.,EU "north"|2
ACME, Inc.|EU "north"|1
plain|NULL|3' "$(rows)" "initial sync"

psql_q "ALTER TABLE crm.accounts ADD CONSTRAINT qty_small CHECK (qty < 100) NOT VALID"
add_change_lines "$data" 1 \
    '{"op": "update", "entity": "accounts", "version": 10, "row": {"code": "ACME, Inc.", "region": "EU \"north\"", "qty": 500}}' \
    '{"op": "update", "entity": "accounts", "version": 11, "row": {"code": "ACME", "region": "Inc.,EU \"north\"", "qty": 20}}'
sluice run --once -c "$conf" 2>"$TEST_TMP/run2.err" || { cat "$TEST_TMP/run2.err" >&2; fail "second run failed"; }
assert_eq '"ACME, Inc.","EU ""north"""' \
    "$(state_sql "$TEST_TMP/etc" "SELECT record_id FROM failed_records WHERE profile = 'ck'")" \
    "the record id of the refused record"
assert_eq 'ACME|Inc.,EU "north"|20
ACME, Inc.|EU "north"|1
plain|NULL|3' "$(rows)" "the other change applied, the refused one not"

psql_q "ALTER TABLE crm.accounts DROP CONSTRAINT qty_small"
sluice failures resync ck -c "$conf" 2>"$TEST_TMP/resync.err" ||
    { cat "$TEST_TMP/resync.err" >&2; fail "failures resync"; }
assert_eq 0 "$(failed_count "$TEST_TMP/etc" ck)" "failed records after resync"
assert_eq 'ACME|Inc.,EU "north"|20
ACME, Inc.|EU "north"|500
plain|NULL|3' "$(rows)" "the record itself resynced"
log "ok: composite key with ',' and '\"' through the failed-record log and resync"
