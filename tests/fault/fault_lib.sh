# tests/fault/fault_lib.sh - shared by the fault tests (sourced after
# tests/lib/common.sh). One entity `items` (id int64 key, name text, qty
# int32) exported by the file source; the expected target state is computed
# from the source files (last event per key wins: the versions only grow).

# make_items DIR N - schema and a snapshot of N rows
make_items() {
    mkdir -p "$1/changes"
    python3 - "$1" "$2" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
json.dump({"namespace": "t", "name": "items", "columns": [
    {"name": "id", "type": "int64", "key": True},
    {"name": "name", "type": "text", "nullable": True},
    {"name": "qty", "type": "int32", "nullable": True}]}, open(f"{d}/items.schema.json", "w"))
with open(f"{d}/items.csv", "w") as f:
    f.write("id,name,qty\n")
    for i in range(1, n + 1):
        f.write(f"{i},item {i},{i % 97}\n")
PY
}

# add_changes DIR FILE_NO COUNT SEED [MAXKEY] - a change file of random
# inserts, updates and deletes; versions continue from the previous files.
add_changes() {
    python3 - "$@" <<'PY'
import glob, json, os, random, sys
d, fno, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
maxkey = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
v = 0
for p in sorted(glob.glob(f"{d}/changes/*.jsonl")):
    for line in open(p):
        v = max(v, json.loads(line)["version"])
random.seed(seed)
tmp = f"{d}/changes/.{fno:06d}.tmp"
with open(tmp, "w") as f:
    for _ in range(count):
        v += 1
        k = random.randint(1, maxkey)
        op = random.choice(["insert", "update", "update", "delete"])
        if op == "delete":
            f.write(json.dumps({"op": op, "entity": "items", "version": v, "key": {"id": k}}) + "\n")
        else:
            f.write(json.dumps({"op": op, "entity": "items", "version": v,
                                "row": {"id": k, "name": f"v{v}", "qty": v % 1000}}) + "\n")
os.rename(tmp, f"{d}/changes/{fno:06d}.jsonl")
PY
}

# add_change_line DIR FILE_NO JSON... - append literal change lines as a new file
add_change_lines() {
    local dir=$1 fno=$2
    shift 2
    local tmp=$dir/changes/.$fno.tmp
    printf '%s\n' "$@" >"$tmp"
    mv "$tmp" "$(printf '%s/changes/%06d.jsonl' "$dir" "$fno")"
}

# add_marker_change DIR FILE_NO ID NAME - one update of record ID to NAME,
# with a version above every earlier change
add_marker_change() {
    python3 - "$@" <<'PY'
import glob, json, os, sys
d, fno, k, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
v = 0
for p in sorted(glob.glob(f"{d}/changes/*.jsonl")):
    for line in open(p):
        v = max(v, json.loads(line)["version"])
tmp = f"{d}/changes/.{fno:06d}.tmp"
with open(tmp, "w") as f:
    f.write(json.dumps({"op": "update", "entity": "items", "version": v + 1,
                        "row": {"id": k, "name": name, "qty": 1}}) + "\n")
os.rename(tmp, f"{d}/changes/{fno:06d}.jsonl")
PY
}

# expected_items DIR - "id|name|qty" lines of the state the target must reach
expected_items() {
    python3 - "$1" <<'PY'
import csv, glob, json, sys
d = sys.argv[1]
csv.field_size_limit(1 << 30)
rows = {}
with open(f"{d}/items.csv") as f:
    r = csv.reader(f)
    next(r)
    for rec in r:
        rows[int(rec[0])] = (rec[1], rec[2])
for p in sorted(glob.glob(f"{d}/changes/[0-9]*.jsonl")):
    for line in open(p):
        c = json.loads(line)
        if c["op"] == "delete":
            rows.pop(int(c["key"]["id"]), None)
        else:
            row = c["row"]
            name = "" if row.get("name") is None else row["name"]
            qty = "" if row.get("qty") is None else str(row["qty"])
            rows[int(row["id"])] = (name, qty)
for k in sorted(rows):
    print(f"{k}|{rows[k][0]}|{rows[k][1]}")
PY
}

# target_items [DB] - the same from the PostgreSQL target
target_items() {
    PGDATABASE=${1:-target} psql_q "SELECT id, coalesce(name, ''), coalesce(qty::text, '')
        FROM crm.items ORDER BY id" 2>/dev/null || true
}

# wait_until SECONDS CMD... - poll CMD every 0.25 s; 0 when it succeeded
wait_until() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 4; i++)); do
        if "$@"; then return 0; fi
        sleep 0.25
    done
    return 1
}

target_matches() { # DIR
    [ "$(target_items)" = "$(expected_items "$1")" ]
}

# compare_target DIR LABEL - fail with a diff unless the target equals the source
compare_target() {
    expected_items "$1" >"$TEST_TMP/expected.txt"
    target_items >"$TEST_TMP/actual.txt"
    if ! cmp -s "$TEST_TMP/expected.txt" "$TEST_TMP/actual.txt"; then
        diff "$TEST_TMP/expected.txt" "$TEST_TMP/actual.txt" | head -n 20 >&2
        fail "$2: the target differs from the source"
    fi
    log "$2: target equals the source ($(wc -l <"$TEST_TMP/expected.txt") rows)"
}

# state_sql CONFDIR SQL - query the state store
state_sql() {
    sqlite3 "$1/state/state.db" "$2"
}

failed_count() { # CONFDIR PROFILE
    state_sql "$1" "SELECT count(*) FROM failed_records WHERE profile = '$2'"
}

counter() { # CONFDIR PROFILE NAME - stored profile-level counter (0 if none)
    local v
    v=$(state_sql "$1" "SELECT coalesce(sum(value), 0) FROM counters WHERE profile = '$2'
        AND entity = '' AND name = '$3'")
    echo "${v:-0}"
}

# blob_count DIR - spill blobs in a folder tree
blob_count() {
    find "$1" -name '*.blob' 2>/dev/null | wc -l
}

# peak_rss_kb PID - VmHWM of a running process
peak_rss_kb() {
    awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}
