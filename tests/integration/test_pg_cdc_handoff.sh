#!/usr/bin/env bash
# Snapshot/stream handoff without gap or overlap: a writer inserts, updates and
# deletes on three tables during the whole initial sync and for a while after;
# once it stops, `sluice run` (following) catches up and source and target are
# equal row by row. The verdict is the comparison, never a timing.
# The initial sync runs in 3 sessions sharing the slot's snapshot, the tables
# split in page ranges of 1 MiB: rows of one table read by several sessions.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/integration/pg_cdc_common.sh"

pg_start
psql_q "CREATE DATABASE target"
cdc_source_tables
conf=$(write_main_conf "$TEST_TMP/etc")
CDC_SOURCE_EXTRA="snapshot_workers = 3; snapshot_split_mb = 1;" cdc_profile cdc target

cdc_writer 15
sleep 1
"$SLUICE_BIN" run -c "$conf" 2>"$TEST_TMP/sluice.err" &
pid=$!
CDC_SLUICE_ERR=$TEST_TMP/sluice.err
at_exit stop_sluice
stop_sluice() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }

wait "$CDC_WRITER_PID" || { cat "$TEST_TMP/writer.log" >&2; fail "the writer failed"; }
grep -q "number of failed transactions: 0" "$TEST_TMP/writer.log" ||
    { cat "$TEST_TMP/writer.log" >&2; fail "the writer had failed transactions"; }
kill -0 "$pid" 2>/dev/null || { cat "$TEST_TMP/sluice.err" >&2; fail "sluice exited"; }
log "writer done; waiting for sluice to catch up"
if ! cdc_wait_equal target 90; then
    cdc_report target
    tail -30 "$TEST_TMP/sluice.err" >&2
    fail "source and target differ after catching up"
fi
cdc_no_duplicate_keys target
rows=$(PGDATABASE=target psql_q "SELECT count(*) FROM cdc.t1")
[ "$rows" -gt 30000 ] || fail "target t1 has only $rows rows"
kill -TERM "$pid"
wait "$pid" || { tail -20 "$TEST_TMP/sluice.err" >&2; fail "sluice did not stop cleanly on SIGTERM"; }
grep -q "initial sync of public.t1" "$TEST_TMP/sluice.err" || fail "no initial sync logged"
tasks=$(sed -n 's/.*snapshot: \([0-9]*\) tasks over 3 sessions sharing snapshot.*/\1/p' "$TEST_TMP/sluice.err")
[ -n "$tasks" ] && [ "$tasks" -gt 3 ] ||
    fail "the snapshot was not read in page ranges by 3 sessions: $(grep 'snapshot:' "$TEST_TMP/sluice.err")"
log "ok: target equals source after a handoff under load ($rows rows in t1, snapshot in $tasks tasks)"
