#!/usr/bin/env bash
# `sluice run` (follow mode) with the file source picks up lines appended to
# the last change file - a line written in two parts is read once, when it
# is complete - and change files that appear later, then exits 0 on SIGTERM.
# Waits are bounded (30 s) polls of the target; the verdict is its content.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

pg_start
psql_q "CREATE DATABASE target"

data=$TEST_TMP/data
mkdir -p "$data/changes"
cat >"$data/notes.schema.json" <<'JSON'
{"name": "notes", "columns": [{"name": "id", "type": "int64", "key": true},
                             {"name": "body", "type": "text"}]}
JSON
printf '{"id": 1, "body": "first"}\n{"id": 2, "body": "second"}\n' >"$data/notes.jsonl"
printf '{"op": "update", "entity": "notes", "version": 1, "row": {"id": 2, "body": "second, edited"}}\n' \
    >"$data/changes/000001.jsonl"

conf=$(write_main_conf "$TEST_TMP/etc")
cat >"$TEST_TMP/etc/conf.d/10-notes.conf" <<CONF
profiles = ( {
  name = "notes";
  entities = [ "notes" ];
  source = { plugin = "file"; path = "$data"; format = "jsonl"; poll_interval_ms = 50; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  retry_interval = 1;
} );
CONF

notes() { PGDATABASE=target psql_q "SELECT string_agg(id || '=' || body, ';' ORDER BY id) FROM public.notes" 2>/dev/null || true; }
wait_for() { # expected message
    local got=""
    for _ in $(seq 1 300); do
        got=$(notes)
        [ "$got" = "$1" ] && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$TEST_TMP/service.err" >&2; fail "service died"; }
        sleep 0.1
    done
    assert_eq "$1" "$got" "$2"
}

# the binary itself, not the sluice() function: $! must be its pid for SIGTERM
"$SLUICE_BIN" run -c "$conf" 2>"$TEST_TMP/service.err" &
pid=$!
stop_service() { kill -KILL "$pid" 2>/dev/null || true; }
at_exit stop_service

wait_for "1=first;2=second, edited" "snapshot and the first change file"

log "a line appended in two writes"
printf '%s' '{"op": "insert", "entity": "notes", "version": 2, "row": {"id": 3, ' >>"$data/changes/000001.jsonl"
sleep 0.3 # the source polls every 50 ms: it sees the half line several times
printf '%s\n' '"body": "appended"}}' >>"$data/changes/000001.jsonl"
wait_for "1=first;2=second, edited;3=appended" "line appended to the last change file"

log "a new change file"
printf '{"op": "delete", "entity": "notes", "version": 3, "key": {"id": 1}}\n' >"$TEST_TMP/000002.jsonl"
mv "$TEST_TMP/000002.jsonl" "$data/changes/000002.jsonl"
wait_for "2=second, edited;3=appended" "change file created while following"

kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" = 0 ] || { tail -n 20 "$TEST_TMP/service.err" >&2; fail "service exited $rc after SIGTERM"; }
if grep -q "could not be read" "$TEST_TMP/service.err"; then
    cat "$TEST_TMP/service.err" >&2
    fail "a record failed (the half-written line must be read once, complete)"
fi
log "ok"
