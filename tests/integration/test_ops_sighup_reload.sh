#!/usr/bin/env bash
# SIGHUP with a changed, an added and a removed drop-in: only those profiles
# change - the changed one restarts with its new settings (resuming, no new
# initial sync), the removed one stops, the added one starts - and the
# untouched one keeps running without a restart.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/ops.sh"

pg_start
psql_q "CREATE DATABASE target"
target() { PGDATABASE=target psql_q "$1"; }
ids() { target "SELECT string_agg(id::text, ',' ORDER BY id) FROM $1.items"; }
starts() { grep -c "profile \"$1\": starting" "$SERVICE_LOG" || true; }

conf=$(write_main_conf "$TEST_TMP/etc")
for p in same changed removed added; do
    make_file_data "$TEST_TMP/$p"
done
file_profile same "$TEST_TMP/same" same >"$TEST_TMP/etc/conf.d/10-same.conf"
file_profile changed "$TEST_TMP/changed" changed >"$TEST_TMP/etc/conf.d/20-changed.conf"
file_profile removed "$TEST_TMP/removed" removed >"$TEST_TMP/etc/conf.d/30-removed.conf"

start_service "$conf" "$TEST_TMP/service.log"
for p in same changed removed; do
    wait_until "initial sync of $p" "[ \"\$(ids $p)\" = 1,2,3 ]"
done

log "SIGHUP after changing, adding and removing drop-ins"
file_profile changed "$TEST_TMP/changed" changed "batch_size = 100;" >"$TEST_TMP/etc/conf.d/20-changed.conf"
rm "$TEST_TMP/etc/conf.d/30-removed.conf"
file_profile added "$TEST_TMP/added" added >"$TEST_TMP/etc/conf.d/40-added.conf"
kill -HUP "$SERVICE_PID"
wait_until "added profile synced" '[ "$(ids added)" = 1,2,3 ]'
wait_until "changed profile restarted" '[ "$(starts changed)" = 2 ]'
grep -q 'reload: 1 profiles changed, 1 added, 1 removed' "$SERVICE_LOG" || fail "reload summary"

row='{"op": "insert", "entity": "items", "version": 10, "row": {"id": 4, "name": "fig"}}'
for p in same changed removed added; do
    add_change "$TEST_TMP/$p" 1 "$row"
done
wait_until "same applies changes" '[ "$(ids same)" = 1,2,3,4 ]'
wait_until "changed applies changes" '[ "$(ids changed)" = 1,2,3,4 ]'
wait_until "added applies changes" '[ "$(ids added)" = 1,2,3,4 ]'
assert_eq 1 "$(starts same)" "starts of the untouched profile"
grep -q 'profile "removed": stopping (its drop-in was removed)' "$SERVICE_LOG" || fail "removed profile was not stopped"
sleep 1 # the others applied theirs within this time
assert_eq "1,2,3" "$(ids removed)" "the removed profile still applies changes"
# the changed profile resumed from its checkpoint: one initial sync only
assert_eq 1 "$(grep -c 'profile "changed": no checkpoint in the target' "$SERVICE_LOG")" "initial syncs of the changed profile"

log "a broken drop-in: reload refused, everything keeps running"
echo 'profiles = ( { name = "broken"; ' >"$TEST_TMP/etc/conf.d/50-broken.conf"
kill -HUP "$SERVICE_PID"
wait_until "reload error logged" 'grep -q "keeping the running configuration" "$SERVICE_LOG"'
add_change "$TEST_TMP/same" 2 '{"op": "insert", "entity": "items", "version": 11, "row": {"id": 5, "name": "kiwi"}}'
wait_until "same still applies" '[ "$(ids same)" = 1,2,3,4,5 ]'
rm "$TEST_TMP/etc/conf.d/50-broken.conf"
stop_service
log "ok"
