#!/usr/bin/env bash
# A full spill disk holds the pipeline and loses nothing: every batch goes
# through the claim check (spill_threshold = 1) into a spill folder on a 2 MiB
# tmpfs that a filler file has filled up. sluice reports the full disk
# clearly, keeps running and applies nothing (backpressure, no growth in
# memory); once the filler is removed the export completes and the target
# equals the source row by row, with no blob left behind.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/fault/fault_lib.sh"

[ "$(id -u)" = 0 ] || fail "this test mounts a tmpfs and needs root"
pg_start
psql_q "CREATE DATABASE target"
data=$TEST_TMP/data
make_items "$data" 5000
mnt=$TEST_TMP/spillfs
mkdir -p "$mnt"
mount -t tmpfs -o size=2m,mode=0700 tmpfs "$mnt" || fail "cannot mount a tmpfs on $mnt"
unmount_spill() { umount -l "$mnt"; }
at_exit unmount_spill
mkdir -m 0700 "$mnt/tgt"
dd if=/dev/zero of="$mnt/filler" bs=4096 2>/dev/null || true # until the disk is full
log "spill disk: $(df -k --output=avail "$mnt" | tail -n 1 | tr -d ' ') kB free"

conf=$(write_main_conf "$TEST_TMP/etc")
cat >"$TEST_TMP/etc/conf.d/10-tgt.conf" <<CONF
profiles = ( {
  name = "tgt";
  entities = [ "items" ];
  source = { plugin = "file"; path = "$data"; poll_interval_ms = 100; };
  spill = { plugin = "fs"; path = "$mnt"; };
  spill_threshold = 1;
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  target_schema = "crm";
  batch_size = 250;
  workers = 2;
  retry_interval = 1;
} );
CONF

"$SLUICE_BIN" run -c "$conf" 2>"$TEST_TMP/run.err" &
pid=$!
stop_sluice() { kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; return 0; }
at_exit stop_sluice

wait_until 30 grep -q "is full" "$TEST_TMP/run.err" ||
    { tail "$TEST_TMP/run.err" >&2; fail "the full spill disk was not reported"; }
log "reported: $(grep -m 1 "is full" "$TEST_TMP/run.err" | cut -c1-300)"
grep -q "holding" "$TEST_TMP/run.err" || fail "the error does not say that the pipeline holds"
sleep 3
kill -0 "$pid" 2>/dev/null || fail "sluice exited on a full spill disk"
rows=$(PGDATABASE=target psql_q "SELECT count(*) FROM crm.items" 2>/dev/null || echo 0)
assert_eq 0 "$rows" "rows applied while every batch needed the full spill disk"
rss_full=$(peak_rss_kb "$pid")

log "freeing the spill disk"
rm -f "$mnt/filler"
wait_until 90 target_matches "$data" || { tail "$TEST_TMP/run.err" >&2; compare_target "$data" "after space returned"; }
compare_target "$data" "after space returned"
kill -0 "$pid" 2>/dev/null || fail "sluice is not running"
wait_until 10 bash -c "[ \$(find '$mnt' -name '*.blob' | wc -l) = 0 ]" || fail "blobs left on the spill disk"
sleep 1.5
log "full-disk waits counted: $(counter "$TEST_TMP/etc" tgt spill_full_waits), peak RSS while full ${rss_full} kB"
[ "$(counter "$TEST_TMP/etc" tgt spill_full_waits)" -gt 0 ] || fail "no full-disk wait counted"
log "ok"
