#!/usr/bin/env bash
# A source restart (pg_ctl restart) mid-stream: sluice loses its replication
# connection, reconnects with backoff from the durable position and catches
# up; source and target are then equal row by row.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/integration/pg_cdc_common.sh"

# the target on its own server: a shutting-down source must not take the
# target's connections (and so the acks) with it
pg_start tgt
psql_q "CREATE DATABASE target"
CDC_SINK_CONNINFO=$PG_CONNINFO
CDC_TARGET_PORT=$PGPORT
pg_start pg
CDC_MAXID=20000
cdc_source_tables
conf=$(write_main_conf "$TEST_TMP/etc")
cdc_profile cdc target

"$SLUICE_BIN" run -c "$conf" 2>"$TEST_TMP/sluice.err" &
pid=$!
CDC_SLUICE_ERR=$TEST_TMP/sluice.err
stop_sluice() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
at_exit stop_sluice
cdc_wait_equal target 60 || { cdc_report target; fail "initial sync did not complete"; }

cdc_writer 5
wait "$CDC_WRITER_PID" || { cat "$TEST_TMP/writer.log" >&2; fail "the writer failed"; }
log "restarting the source server mid-stream"
pg_ctl_of pg restart -m fast >/dev/null || fail "pg_ctl restart failed"
cdc_writer 5
wait "$CDC_WRITER_PID" || { cat "$TEST_TMP/writer.log" >&2; fail "the writer failed after the restart"; }
if ! cdc_wait_equal target 90; then
    cdc_report target
    tail -30 "$TEST_TMP/sluice.err" >&2
    fail "source and target differ after the source restart"
fi
kill -0 "$pid" || fail "sluice exited"
grep -q "restarting the source" "$TEST_TMP/sluice.err" || fail "sluice did not notice the restart"
log "ok: reconnected after a source restart and caught up"
