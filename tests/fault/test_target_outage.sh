#!/usr/bin/env bash
# A target outage loses nothing and costs disk, not memory: the target
# PostgreSQL is stopped for 20 seconds while a service run follows a stream
# of changes (about 15 MB of change files arrive during the outage). The
# batches that hit the outage are parked in the spill store (blobs on disk,
# never plaintext), the source is held by backpressure, retries are counted
# in the state store, and once the target is back the export catches up:
# the target equals the source row by row, the failed-record log is empty and
# no blob is left.
#
# Peak RSS (VmHWM) is reported; outside AddressSanitizer builds (whose
# quarantine keeps freed memory) its growth during the outage must stay far
# below the volume of changes that arrived.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/fault/fault_lib.sh"

pg_start
psql_q "CREATE DATABASE target"
data=$TEST_TMP/data
make_items "$data" 20000
conf=$(write_main_conf "$TEST_TMP/etc")
cat >"$TEST_TMP/etc/conf.d/10-tgt.conf" <<CONF
profiles = ( {
  name = "tgt";
  entities = [ "items" ];
  source = { plugin = "file"; path = "$data"; poll_interval_ms = 100; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target connect_timeout=2"; };
  target_schema = "crm";
  batch_size = 2000;
  workers = 2;
  retry_count = 12;
  retry_interval = 1;
} );
CONF

"$SLUICE_BIN" run -c "$conf" 2>"$TEST_TMP/run.err" &
pid=$!
stop_sluice() { kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; return 0; }
at_exit stop_sluice

wait_until 60 target_matches "$data" || { tail -n 20 "$TEST_TMP/run.err" >&2; fail "the initial sync did not arrive"; }
add_changes "$data" 1 2000 1 25000
wait_until 60 target_matches "$data" || fail "the first changes did not arrive"
hwm_before=$(peak_rss_kb "$pid")
log "initial sync and first changes applied; peak RSS so far ${hwm_before} kB"

log "stopping the target for 20 s"
pg_ctl_of pg stop -m fast >/dev/null
outage_start=$(date +%s)
marker="outage-marker-$$-$RANDOM"
for f in 2 3 4 5 6; do
    add_changes "$data" "$f" 30000 "$f" 25000
done
add_marker_change "$data" 7 7 "$marker"
changes_bytes=$(cat "$data"/changes/*.jsonl | wc -c)

wait_until 15 bash -c "[ \$(find '$TEST_TMP/etc/state' -name '*.blob' | wc -l) -gt 0 ]" ||
    { tail -n 20 "$TEST_TMP/run.err" >&2; fail "no batch was parked in the spill store during the outage"; }
blobs=$(blob_count "$TEST_TMP/etc/state")
# every batch message names its columns: a plaintext blob would show "qty"
if grep -rqa -e qty -e outage-marker "$TEST_TMP/etc/state/profiles"/*/spill; then
    fail "a spill file holds a value in plaintext"
fi
while [ $(($(date +%s) - outage_start)) -lt 20 ]; do
    kill -0 "$pid" 2>/dev/null || fail "sluice exited during the outage"
    sleep 1
done
hwm_outage=$(peak_rss_kb "$pid")
log "outage over: $blobs parked blobs, peak RSS ${hwm_outage} kB (was ${hwm_before} kB) while $((changes_bytes / 1024)) kB of changes waited"
pg_ctl_of pg start >/dev/null

wait_until 120 target_matches "$data" || { tail -n 30 "$TEST_TMP/run.err" >&2; compare_target "$data" "after the outage"; }
compare_target "$data" "after the outage"
sleep 1.5 # counters reach the state store about once a second
retries=$(counter "$TEST_TMP/etc" tgt retries)
parked=$(counter "$TEST_TMP/etc" tgt parked_batches)
log "retries counted: $retries, batches parked: $parked, peak RSS at the end $(peak_rss_kb "$pid") kB"
[ "$retries" -gt 0 ] || fail "no retry was counted in the state store"
[ "$parked" -gt 0 ] || fail "no batch was counted as parked"
"$SLUICE_BIN" status -c "$conf" | grep_q retries || fail "sluice status does not show the retries"
assert_eq 0 "$(failed_count "$TEST_TMP/etc" tgt)" "failed records after the outage"
wait_until 10 bash -c "[ \$(find '$TEST_TMP/etc/state' -name '*.blob' | wc -l) = 0 ]" ||
    fail "spill blobs left after catching up"
kill -0 "$pid" 2>/dev/null || fail "sluice is not running any more"

if ldd "$SLUICE_BIN" | grep_q libasan; then
    log "AddressSanitizer build: memory bound reported, not asserted"
else
    growth=$((hwm_outage - hwm_before))
    [ "$growth" -lt $((changes_bytes / 1024 / 2)) ] ||
        fail "peak RSS grew by $growth kB during the outage, more than half the $((changes_bytes / 1024)) kB of changes that waited"
fi
log "ok"
