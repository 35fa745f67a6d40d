#!/usr/bin/env bash
# Profile lifecycle, against a running service (through the control socket)
# and offline (on the state store):
#  - disable during the change stream stops the flow and keeps the position;
#    enable resumes it: nothing lost, no new initial sync (rows_read and the
#    checkpoint did not restart);
#  - delete removes the profile's checkpoints, failed records and spill
#    folder, leaves the other profile untouched, and a drop-in that still
#    defines it does not bring it back (warning at start) until `enable`;
#  - with plugins/source-pg built: its replication slot is gone too.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/ops.sh"

pg_start
psql_q "CREATE DATABASE target"
target() { PGDATABASE=target psql_q "$1"; }
ids() { target "SELECT string_agg(id::text, ',' ORDER BY id) FROM $1.items"; }

make_file_data "$TEST_TMP/shop"
make_file_data "$TEST_TMP/other" bad
conf=$(write_main_conf "$TEST_TMP/etc")
file_profile shop "$TEST_TMP/shop" shop >"$TEST_TMP/etc/conf.d/10-shop.conf"
file_profile other "$TEST_TMP/other" other >"$TEST_TMP/etc/conf.d/20-other.conf"
state=$TEST_TMP/etc/state

# ---- offline ------------------------------------------------------------------
log "offline: list, disable, run --once skips it, enable"
sluice profile list -c "$conf" >"$TEST_TMP/list.txt"
grep -q "^shop .* enabled " "$TEST_TMP/list.txt" || { cat "$TEST_TMP/list.txt" >&2; fail "list: shop enabled"; }
sluice profile disable other -c "$conf" | grep_q "disabled" || fail "offline disable output"
sluice profile list -c "$conf" | grep_q "^other .* disabled " || fail "list: other disabled"
rc=0; sluice profile disable nosuch -c "$conf" 2>/dev/null || rc=$?
assert_eq 2 "$rc" "disable of an unknown profile"
sluice run --once -c "$conf" 2>"$TEST_TMP/once1.err" || { cat "$TEST_TMP/once1.err" >&2; fail "run --once"; }
assert_eq "1,2,3" "$(ids shop)" "shop rows after run --once"
[ "$(target "SELECT to_regclass('other.items') IS NULL")" = t ] || fail "disabled profile other was exported"
sluice profile enable other -c "$conf" | grep_q "enabled" || fail "offline enable output"
sluice run --once -c "$conf" 2>"$TEST_TMP/once2.err" || { cat "$TEST_TMP/once2.err" >&2; fail "run --once 2"; }
assert_eq "1,2,3" "$(ids other)" "other rows after enable"
assert_eq 1 "$(status_field "$conf" other 'p["failed_records"]')" "other's failed record"

# ---- against a running service -------------------------------------------------
log "service: disable during the change stream, enable resumes"
start_service "$conf" "$TEST_TMP/service.log"
add_change "$TEST_TMP/shop" 1 '{"op": "insert", "entity": "items", "version": 10, "row": {"id": 4, "name": "fig"}}'
wait_until "change 1 applied" '[ "$(ids shop)" = "1,2,3,4" ]' 
rows_read_before=$(status_field "$conf" shop 'p["entities"]["items"]["rows_read"]')
assert_eq 3 "$rows_read_before" "rows_read after the initial sync"
ckpt_before=$(target "SELECT string_agg(encode(position, 'hex'), ',' ORDER BY partition) FROM shop._sluice_checkpoint WHERE profile = 'shop'")

sluice profile disable shop -c "$conf" >"$TEST_TMP/disable.out" || fail "disable through the service"
grep -q "disabled: stopped" "$TEST_TMP/disable.out" || { cat "$TEST_TMP/disable.out" >&2; fail "disable answer"; }
assert_eq disabled "$(status_field "$conf" shop 'p["status"]')" "status after disable"
add_change "$TEST_TMP/shop" 2 '{"op": "insert", "entity": "items", "version": 11, "row": {"id": 5, "name": "kiwi"}}
{"op": "delete", "entity": "items", "version": 12, "key": {"id": 1}}'
sleep 1.5 # a running profile applies a change file within ~0.2 s
assert_eq "1,2,3,4" "$(ids shop)" "a disabled profile applied changes"
assert_eq "$ckpt_before" "$(target "SELECT string_agg(encode(position, 'hex'), ',' ORDER BY partition) FROM shop._sluice_checkpoint WHERE profile = 'shop'")" "checkpoint moved while disabled"

sluice profile enable shop -c "$conf" | grep_q "resuming" || fail "enable through the service"
wait_until "changes made while disabled applied" '[ "$(ids shop)" = "2,3,4,5" ]' 
add_change "$TEST_TMP/shop" 3 '{"op": "insert", "entity": "items", "version": 13, "row": {"id": 6, "name": "lime"}}'
wait_until "change 3 applied" '[ "$(ids shop)" = "2,3,4,5,6" ]' 
sleep 1.2 # counters are written once a second
assert_eq 3 "$(status_field "$conf" shop 'p["entities"]["items"]["rows_read"]')" "rows_read after enable (a new initial sync?)"
grep -q "no checkpoint in the target, starting the initial sync" <(grep 'profile "shop"' "$TEST_TMP/service.log") &&
    fail "enable started a new initial sync"

log "service: delete other; shop untouched"
mkdir -p "$state/profiles/other/spill"
echo leftover >"$state/profiles/other/spill/blob-left-by-a-crash"
shop_failed_before=$(status_field "$conf" shop 'p["failed_records"]')
sluice profile delete other -c "$conf" >"$TEST_TMP/delete.out" || { cat "$TEST_TMP/delete.out" >&2; fail "delete through the service"; }
grep -q "checkpoints and tombstones" "$TEST_TMP/delete.out" || { cat "$TEST_TMP/delete.out" >&2; fail "delete report"; }
assert_eq 0 "$(target "SELECT count(*) FROM other._sluice_checkpoint WHERE profile = 'other'")" "other's checkpoints after delete"
assert_eq 0 "$(status_field "$conf" other 'p["failed_records"]')" "other's failed records after delete"
[ ! -e "$state/profiles/other" ] || fail "other's plugin folder (spill blobs) still there"
assert_eq 0 "$(sqlite3 "$state/state.db" "SELECT count(*) FROM failed_records WHERE profile = 'other'")" "failed_records rows of other"
sluice profile list -c "$conf" | grep_q "^other .* deleted " || fail "list: other deleted"
# shop keeps running
add_change "$TEST_TMP/shop" 4 '{"op": "insert", "entity": "items", "version": 14, "row": {"id": 7, "name": "date"}}'
wait_until "shop still applies after deleting other" '[ "$(ids shop)" = "2,3,4,5,6,7" ]' 
assert_eq "$shop_failed_before" "$(status_field "$conf" shop 'p["failed_records"]')" "shop's failed records"
[ "$(target "SELECT count(*) FROM shop._sluice_checkpoint WHERE profile = 'shop'")" -gt 0 ] || fail "shop's checkpoints"
stop_service

log "restart: the deleted profile stays deleted, with a warning"
start_service "$conf" "$TEST_TMP/service2.log"
grep -q 'profile "other" .* was deleted with `sluice profile delete`' "$TEST_TMP/service2.log" ||
    fail "no warning about the deleted profile at start"
sleep 1
assert_eq 0 "$(target "SELECT count(*) FROM other._sluice_checkpoint")" "deleted profile ran again"
stop_service

# ---- offline delete, then enable = export again from scratch -----------------------
log "offline: delete shop, enable it again: a new initial sync"
sluice profile delete shop -c "$conf" >"$TEST_TMP/delete2.out" || { cat "$TEST_TMP/delete2.out" >&2; fail "offline delete"; }
assert_eq 0 "$(target "SELECT count(*) FROM shop._sluice_checkpoint")" "shop's checkpoints after offline delete"
sluice profile enable shop -c "$conf" >/dev/null
sluice run --once -c "$conf" --profile shop 2>"$TEST_TMP/once3.err" || { cat "$TEST_TMP/once3.err" >&2; fail "run --once after enable"; }
grep -q 'profile "shop": no checkpoint in the target, starting the initial sync' "$TEST_TMP/once3.err" ||
    fail "enable after delete did not start from scratch"
assert_eq 3 "$(status_field "$conf" shop 'p["entities"]["items"]["rows_read"]')" "rows_read after the new initial sync"

# ---- PostgreSQL CDC source: the slot goes with the profile -------------------------
if [ ! -e "$SLUICE_PLUGIN_PATH/source-pg.so" ]; then
    log "SKIP slot part: plugins/source-pg is not built ($SLUICE_PLUGIN_PATH/source-pg.so)"
else
    log "source-pg: delete drops the replication slot"
    psql_q "CREATE DATABASE src"
    PGDATABASE=src psql_q "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a'), (2, 'b')"
    cat >"$TEST_TMP/etc/conf.d/30-cdc.conf" <<CONF
profiles = ( { name = "cdc"; entities = [ "items" ];
  source = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=src"; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  target_schema = "cdc"; retry_interval = 1; } );
CONF
    sluice run --once -c "$conf" --profile cdc 2>"$TEST_TMP/cdc.err" || { cat "$TEST_TMP/cdc.err" >&2; fail "cdc run --once"; }
    [ "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'sluice_cdc'")" = 1 ] ||
        fail "no slot sluice_cdc after the cdc run"
    sluice profile delete cdc -c "$conf" >"$TEST_TMP/cdc-delete.out" || { cat "$TEST_TMP/cdc-delete.out" >&2; fail "cdc delete"; }
    assert_eq 0 "$(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'sluice_cdc'")" "slot after delete"
fi
log "ok"
