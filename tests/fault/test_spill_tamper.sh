#!/usr/bin/env bash
# A damaged spill blob is an error for its batch, never a crash, and spill
# files are never plaintext. With the target down, a batch of 20 updates is
# parked in the spill store; the test checks the blob holds none of the
# batch's text, flips one byte of it, and then sees: a clear error naming the
# blob and the batch, the batch's 20 records in the failed-record log by id,
# the service still running and applying later changes once the target is
# back, and `failures resync` bringing the 20 records in.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/fault/fault_lib.sh"

pg_start
psql_q "CREATE DATABASE target"
data=$TEST_TMP/data
make_items "$data" 500
conf=$(write_main_conf "$TEST_TMP/etc")
cat >"$TEST_TMP/etc/conf.d/10-tgt.conf" <<CONF
profiles = ( {
  name = "tgt";
  entities = [ "items" ];
  source = { plugin = "file"; path = "$data"; poll_interval_ms = 100; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target connect_timeout=2"; };
  target_schema = "crm";
  workers = 1;
  retry_count = 12;
  retry_interval = 1;
} );
CONF

"$SLUICE_BIN" run -c "$conf" 2>"$TEST_TMP/run.err" &
pid=$!
stop_sluice() { kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; return 0; }
at_exit stop_sluice
wait_until 60 target_matches "$data" || { tail "$TEST_TMP/run.err" >&2; fail "the initial sync did not arrive"; }

pg_ctl_of pg stop -m fast >/dev/null
marker="tamper-marker-$$"
lines=()
for i in $(seq 1 20); do
    lines+=("{\"op\": \"update\", \"entity\": \"items\", \"version\": $((100 + i)), \"row\": {\"id\": $i, \"name\": \"$marker $i\", \"qty\": $i}}")
done
add_change_lines "$data" 1 "${lines[@]}"

spill=$TEST_TMP/etc/state/profiles/tgt/spill
wait_until 20 bash -c "ls '$spill' | grep -q '\\.blob\$'" ||
    { tail "$TEST_TMP/run.err" >&2; fail "the batch was not parked in the spill store"; }
blob=$(ls "$spill" | grep '\.blob$' | sed -n 1p)
blob_id=${blob%.blob}
if grep -rqa -e "$marker" -e qty "$spill"; then
    fail "the spill folder holds the batch in plaintext"
fi
assert_eq 700 "$(stat -c %a "$spill")" "mode of the spill folder"
assert_eq 600 "$(stat -c %a "$spill/$blob")" "mode of the blob"
python3 - "$spill/$blob" <<'PY'
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(os.path.getsize(p) // 2)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0x01]))
PY
log "flipped one byte of blob $blob_id"

wait_until 30 grep -q "failed authentication" "$TEST_TMP/run.err" ||
    { tail "$TEST_TMP/run.err" >&2; fail "the damaged blob was not reported"; }
line=$(grep "failed authentication" "$TEST_TMP/run.err" | sed -n 1p)
log "reported: ${line:0:300}"
case $line in *"$blob_id"*"batch "*) ;; *) fail "the error does not name the blob and the batch: $line" ;; esac
kill -0 "$pid" 2>/dev/null || fail "sluice exited after the damaged blob"
ids=$(state_sql "$TEST_TMP/etc" "SELECT group_concat(record_id, ' ') FROM (SELECT record_id FROM
    failed_records WHERE profile = 'tgt' ORDER BY CAST(record_id AS INTEGER))")
assert_eq "$(seq -s ' ' 1 20)" "$ids" "the damaged batch's records in the failed-record log"
state_sql "$TEST_TMP/etc" "SELECT error FROM failed_records LIMIT 1" | grep_q "$blob_id" ||
    fail "the failed-record log does not name the blob"

# the service goes on once the target is back
pg_ctl_of pg start >/dev/null
add_change_lines "$data" 2 "{\"op\": \"insert\", \"entity\": \"items\", \"version\": 500, \"row\": {\"id\": 9001, \"name\": \"after\", \"qty\": 1}}"
wait_until 60 bash -c "[ \"\$(PGDATABASE=target psql -X -A -t -q -c 'SELECT name FROM crm.items WHERE id = 9001' 2>/dev/null)\" = after ]" ||
    { tail "$TEST_TMP/run.err" >&2; fail "later changes did not arrive after the damaged blob"; }
kill -0 "$pid" 2>/dev/null || fail "sluice is not running"
assert_eq 0 "$(blob_count "$spill")" "blobs left in the spill folder"

# resync brings the 20 records in
stop_sluice
sluice failures resync tgt -c "$conf" 2>"$TEST_TMP/resync.err" ||
    { cat "$TEST_TMP/resync.err" >&2; fail "failures resync"; }
assert_eq 0 "$(failed_count "$TEST_TMP/etc" tgt)" "failed records after resync"
compare_target "$data" "after resync"
log "ok"
