#!/usr/bin/env bash
# A scrape of metrics_listen parses as Prometheus text (prometheus_client's
# parser), its counters match the rows in the target, and they survive a
# restart (persisted in the state store); the control socket is 0600;
# log_format = "json" writes one JSON object per line.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/ops.sh"

# Debian's python3-prometheus-client lives in the system python
PY=/usr/bin/python3
"$PY" -c "import prometheus_client" 2>/dev/null ||
    fail "python3-prometheus-client is not installed (scripts/install-deps.sh installs it)"

pg_start
psql_q "CREATE DATABASE target"
target() { PGDATABASE=target psql_q "$1"; }
ids() { target "SELECT string_agg(id::text, ',' ORDER BY id) FROM $1.items"; }

make_file_data "$TEST_TMP/shop"
conf=$(write_main_conf "$TEST_TMP/etc")
port=$((20000 + RANDOM % 30000))
cat >>"$conf" <<CONF
metrics_listen = "127.0.0.1:$port";
log_format = "json";
drain_timeout = 20;
CONF
file_profile shop "$TEST_TMP/shop" shop >"$TEST_TMP/etc/conf.d/10-shop.conf"

scrape() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "http://127.0.0.1:$port/metrics"; }

# check_scrape FILE ROWS - parse and compare with the target's row count
check_scrape() {
    "$PY" - "$1" "$2" <<'PY' || fail "metrics do not match the target (scrape in $1)"
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams = {f.name: f for f in text_string_to_metric_families(text)}
def value(family, sample_name, **labels):
    for s in fams[family].samples:
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise SystemExit(f"no sample {sample_name} {labels}")
e = dict(profile="shop", entity="items")
read = value("sluice_initial_sync_rows_read", "sluice_initial_sync_rows_read_total", **e)
ins = value("sluice_inserts", "sluice_inserts_total", **e)
dele = value("sluice_deletes", "sluice_deletes_total", **e)
rows = int(sys.argv[2])
assert read == 3, read
assert read + ins - dele == rows, (read, ins, dele, rows)
assert value("sluice_initial_sync_rows_estimated", "sluice_initial_sync_rows_estimated", **e) == 3
assert value("sluice_batches", "sluice_batches_total", **e) >= 1
assert value("sluice_failed_records", "sluice_failed_records", profile="shop") == 0
assert value("sluice_last_success_timestamp_seconds", "sluice_last_success_timestamp_seconds", profile="shop") > 1.6e9
assert fams["sluice_lag_seconds"].type == "histogram"
assert value("sluice_lag_seconds", "sluice_lag_seconds_bucket", profile="shop", le="+Inf") == \
       value("sluice_lag_seconds", "sluice_lag_seconds_count", profile="shop")
for name in ("sluice_retries", "sluice_spilled_bytes", "sluice_queue_depth", "sluice_profile_enabled"):
    assert name in fams, name
PY
}

log "service with metrics"
start_service "$conf" "$TEST_TMP/service.log"
assert_eq 600 "$(stat -c %a "$TEST_TMP/etc/state/sluice.sock")" "control socket mode"
wait_until "initial sync" '[ "$(ids shop)" = "1,2,3" ]'
add_change "$TEST_TMP/shop" 1 '{"op": "insert", "entity": "items", "version": 10, "row": {"id": 4, "name": "fig"}}
{"op": "insert", "entity": "items", "version": 11, "row": {"id": 5, "name": "kiwi"}}
{"op": "delete", "entity": "items", "version": 12, "key": {"id": 1}}'
wait_until "changes applied" '[ "$(ids shop)" = "2,3,4,5" ]'
scrape >"$TEST_TMP/scrape1.txt"
check_scrape "$TEST_TMP/scrape1.txt" "$(target "SELECT count(*) FROM shop.items")"
stop_service

log "restart: the counters survive"
start_service "$conf" "$TEST_TMP/service2.log"
scrape >"$TEST_TMP/scrape2.txt"
check_scrape "$TEST_TMP/scrape2.txt" "$(target "SELECT count(*) FROM shop.items")"
stop_service

log "log_format = json"
python3 - "$TEST_TMP/service.log" <<'PY' || fail "service log lines are not JSON objects"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
assert lines, "no JSON line"
for l in lines:
    o = json.loads(l)
    assert set(o) == {"time", "level", "msg"}, o
assert any("service ready" in json.loads(l)["msg"] for l in lines)
PY
log "ok"
