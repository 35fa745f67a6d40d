#!/usr/bin/env bash
# `sluice uninstall` refuses while a service runs; without --yes it only
# lists; with --yes it removes the state store, the per-profile folders and
# the socket, and with --drop-target-metadata the sink's metadata tables -
# the exported rows stay.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/ops.sh"

pg_start
psql_q "CREATE DATABASE target"
target() { PGDATABASE=target psql_q "$1"; }
make_file_data "$TEST_TMP/shop"
conf=$(write_main_conf "$TEST_TMP/etc")
file_profile shop "$TEST_TMP/shop" shop >"$TEST_TMP/etc/conf.d/10-shop.conf"
state=$TEST_TMP/etc/state

start_service "$conf" "$TEST_TMP/service.log"
wait_until "initial sync" '[ "$(target "SELECT count(*) FROM shop.items")" = 3 ]'
rc=0; sluice uninstall --yes -c "$conf" 2>"$TEST_TMP/refused.err" || rc=$?
assert_eq 1 "$rc" "uninstall while the service runs"
grep -q "a sluice service is running" "$TEST_TMP/refused.err" || fail "refusal message"
[ -e "$state/state.db" ] || fail "refused uninstall removed the state store"
stop_service

log "listing only"
sluice uninstall -c "$conf" >"$TEST_TMP/list.out"
grep -q "would remove $state/state.db" "$TEST_TMP/list.out" || { cat "$TEST_TMP/list.out" >&2; fail "listing names state.db"; }
grep -q "would remove $state/profiles" "$TEST_TMP/list.out" || fail "listing names the profile folders"
[ -e "$state/state.db" ] && [ -d "$state/profiles/shop" ] || fail "listing removed something"

log "--yes --drop-target-metadata"
sluice uninstall --yes --drop-target-metadata -c "$conf" >"$TEST_TMP/yes.out" || { cat "$TEST_TMP/yes.out" >&2; fail "uninstall --yes"; }
[ ! -e "$state/state.db" ] && [ ! -e "$state/profiles" ] && [ ! -e "$state/sluice.sock" ] ||
    { ls -la "$state" >&2; fail "state left behind"; }
assert_eq "" "$(target "SELECT to_regclass('shop._sluice_checkpoint')")" "checkpoint table after --drop-target-metadata"
assert_eq 3 "$(target "SELECT count(*) FROM shop.items")" "exported rows after uninstall"
grep -q "removed its metadata tables" "$TEST_TMP/yes.out" || fail "report of the metadata drop"
log "ok"
