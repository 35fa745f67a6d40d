# tests/lib/ops.sh - helpers of the tests/integration/test_ops_*.sh tests
# (sourced after common.sh): a file-source data folder and waiting loops.

# make_file_data DIR [bad] - items.schema.json and a 3-row items.csv in DIR,
# plus an unreadable 4th row when the second argument is "bad".
make_file_data() {
    local dir=$1
    mkdir -p "$dir/changes"
    cat >"$dir/items.schema.json" <<'JSON'
{"namespace": "shop", "name": "items",
 "columns": [{"name": "id", "type": "int64", "key": true},
             {"name": "name", "type": "text", "nullable": true}]}
JSON
    printf 'id,name\n1,apple\n2,pear\n3,plum\n' >"$dir/items.csv"
    if [ "${2:-}" = bad ]; then
        printf 'not-a-number,broken\n' >>"$dir/items.csv"
    fi
}

# add_change DIR N JSONL - drop change file number N into DIR/changes atomically
add_change() {
    local tmp
    tmp=$(mktemp "$TEST_TMP/change.XXXXXX")
    printf '%s\n' "$3" >"$tmp"
    mv "$tmp" "$1/changes/$(printf '%06d' "$2").jsonl"
}

# file_profile NAME DATA SCHEMA [extra keys] - a drop-in body for a profile
file_profile() {
    cat <<CONF
profiles = ( {
  name = "$1";
  entities = [ "items" ];
  source = { plugin = "file"; path = "$2"; poll_interval_ms = 100; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  target_schema = "$3";
  workers = 2;
  retry_interval = 1;
  ${4:-}
} );
CONF
}

# wait_until DESCRIPTION 'SHELL CODE' - eval the code every 0.1 s until it
# succeeds, up to 30 s (single-quote it, so that $(...) runs every time);
# fails the test naming DESCRIPTION. $SERVICE_PID, when set, must stay alive.
wait_until() {
    local what=$1
    shift
    for _ in $(seq 1 300); do
        if eval "$*" >/dev/null 2>&1; then
            return 0
        fi
        if [ -n "${SERVICE_PID:-}" ] && ! kill -0 "$SERVICE_PID" 2>/dev/null; then
            [ -n "${SERVICE_LOG:-}" ] && cat "$SERVICE_LOG" >&2
            fail "the service died while waiting for: $what"
        fi
        sleep 0.1
    done
    [ -n "${SERVICE_LOG:-}" ] && cat "$SERVICE_LOG" >&2
    fail "timed out waiting for: $what"
}

# start_service CONF LOG - "$SLUICE_BIN" run in the background; sets
# SERVICE_PID and SERVICE_LOG, waits until the control socket answers.
start_service() {
    SERVICE_LOG=$2
    "$SLUICE_BIN" run -c "$1" 2>>"$SERVICE_LOG" &
    SERVICE_PID=$!
    at_exit kill_service
    wait_until "the service to be ready" 'grep -q "service ready" "$SERVICE_LOG"' 
}

kill_service() {
    [ -n "${SERVICE_PID:-}" ] && kill -KILL "$SERVICE_PID" 2>/dev/null
    return 0
}

# stop_service - SIGTERM and wait; fails unless it exits 0
stop_service() {
    kill -TERM "$SERVICE_PID"
    local rc=0
    wait "$SERVICE_PID" || rc=$?
    [ "$rc" = 0 ] || { cat "$SERVICE_LOG" >&2; fail "service exited $rc after SIGTERM"; }
    SERVICE_PID=
}

# status_field CONF PROFILE PYEXPR - evaluate PYEXPR on the profile's
# `status --json` object p (entities: p["entities"])
status_field() {
    sluice status --json -c "$1" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
p = {x["name"]: x for x in doc["profiles"]}.get(sys.argv[1])
print(eval(sys.argv[2]))' "$2" "$3"
}
