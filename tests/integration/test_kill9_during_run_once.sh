#!/usr/bin/env bash
# kill -9 at any moment loses nothing and duplicates nothing: SIGKILL
# `sluice run --once` at several points (during the initial sync and during
# the changes), run again to completion each time, then compare every target
# table row by row with a reference target filled by one uninterrupted run.
#
# Timing only picks the kill points; the verdict is the row-by-row comparison
# (and the primary keys of the target tables, which make a duplicate
# impossible to hide).
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

pg_start
psql_q "CREATE DATABASE reference"
psql_q "CREATE DATABASE target"

data=$TEST_TMP/data
entities=()
gen=$SLUICE_SOURCE_DIR/scripts/gen-crm-data.py
if [ -f "$gen" ]; then
    python3 "$gen" --out "$data" --accounts "${KILL9_ACCOUNTS:-6000}" --changes 30000 \
        --change-files 6 --seed 7 >/dev/null
    entities=(accounts contacts opportunities)
else
    # fallback while the CRM generator is not there: one entity, same shape of test
    mkdir -p "$data/changes"
    python3 - "$data" <<'PY'
import json, os, random, sys
d = sys.argv[1]
random.seed(7)
json.dump({"namespace": "t", "name": "items", "columns": [
    {"name": "id", "type": "int64", "key": True},
    {"name": "name", "type": "text", "nullable": True},
    {"name": "qty", "type": "int32", "nullable": True}]}, open(f"{d}/items.schema.json", "w"))
n = 60000
with open(f"{d}/items.csv", "w") as f:
    f.write("id,name,qty\n")
    for i in range(1, n + 1):
        f.write(f"{i},item {i},{i % 97}\n")
v = 0
for fno in range(1, 7):
    with open(f"{d}/changes/{fno:06d}.jsonl", "w") as f:
        for _ in range(5000):
            v += 1
            k = random.randint(1, n + 2000)
            op = random.choice(["insert", "update", "update", "delete"])
            if op == "delete":
                f.write(json.dumps({"op": op, "entity": "items", "version": v, "key": {"id": k}}) + "\n")
            else:
                f.write(json.dumps({"op": op, "entity": "items", "version": v,
                                    "row": {"id": k, "name": f"v{v}", "qty": v % 1000}}) + "\n")
PY
    entities=(items)
fi

conf=$(write_main_conf "$TEST_TMP/etc")
ents=$(printf '"%s", ' "${entities[@]}")
profile() { # name database
    cat >"$TEST_TMP/etc/conf.d/10-$1.conf" <<CONF
profiles = ( {
  name = "$1";
  entities = [ ${ents%, } ];
  source = { plugin = "file"; path = "$data"; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=$2"; };
  target_schema = "crm";
  batch_size = 500;
  workers = 3;
  retry_interval = 1;
} );
CONF
}
profile ref reference
profile tgt target

log "reference run"
sluice run --once -c "$conf" --profile ref 2>"$TEST_TMP/ref.err" ||
    { cat "$TEST_TMP/ref.err" >&2; fail "reference run failed"; }

# Columns to compare: everything but the sync times (they differ by design).
columns() { # entity
    PGDATABASE=reference psql_q "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
        FROM information_schema.columns WHERE table_schema = 'crm' AND table_name = '$1'
        AND column_name NOT IN ('_sluice_first_sync', '_sluice_last_sync')"
}
dump() { # database entity file
    local cols
    cols=$(columns "$2")
    PGDATABASE=$1 PGTZ=UTC psql -X -q -v ON_ERROR_STOP=1 \
        -c "\\copy (SELECT $cols FROM crm.$2 ORDER BY 1) TO '$3' CSV"
}
for e in "${entities[@]}"; do
    dump reference "$e" "$TEST_TMP/ref-$e.csv"
    [ -s "$TEST_TMP/ref-$e.csv" ] || fail "reference table crm.$e is empty"
done

checkpoint_table() {
    PGDATABASE=target psql_q "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
        FROM information_schema.tables WHERE table_name = '_sluice_checkpoint' LIMIT 1"
}

# run_and_kill WHEN: start the target profile, SIGKILL it when WHEN says so.
# WHEN is "after SECONDS" or "in-changes" (once a checkpoint is in the change
# files: file source positions start with 0x02 there).
kills=0
run_and_kill() {
    "$SLUICE_BIN" run --once -c "$conf" --profile tgt 2>>"$TEST_TMP/tgt.err" &
    local pid=$! i
    if [ "$1" = after ]; then
        sleep "$2"
    else
        for i in $(seq 1 600); do
            local t
            t=$(checkpoint_table)
            if [ -n "$t" ] && [ "$(PGDATABASE=target psql_q "SELECT count(*) FROM $t WHERE get_byte(position, 0) = 2" 2>/dev/null || echo 0)" != 0 ]; then
                break
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
    fi
    if kill -KILL "$pid" 2>/dev/null; then
        kills=$((kills + 1))
        log "killed with SIGKILL ($*)"
    else
        log "run ended before the kill point ($*)"
    fi
    wait "$pid" 2>/dev/null || true
}

finish() {
    sluice run --once -c "$conf" --profile tgt 2>>"$TEST_TMP/tgt.err" ||
        { tail -n 30 "$TEST_TMP/tgt.err" >&2; fail "run to completion after a kill failed"; }
}

compare() { # label
    for e in "${entities[@]}"; do
        dump target "$e" "$TEST_TMP/tgt-$e.csv"
        if ! cmp -s "$TEST_TMP/ref-$e.csv" "$TEST_TMP/tgt-$e.csv"; then
            diff "$TEST_TMP/ref-$e.csv" "$TEST_TMP/tgt-$e.csv" | head -n 20 >&2
            fail "$1: crm.$e differs from the reference"
        fi
        local dups
        dups=$(PGDATABASE=target psql_q "SELECT count(*) - count(DISTINCT t) FROM crm.$e t")
        assert_eq 0 "$dups" "$1: duplicate rows in crm.$e"
    done
    log "$1: target equals the reference"
}

# 1. kills piling up on one target: each run resumes from what the last left
run_and_kill after 0.5
run_and_kill after 1
run_and_kill after 2
finish
compare "kills at 0.5 s, 1 s, 2 s"

# 2. a fresh target killed while it applies the change files
PGDATABASE=postgres psql_q "DROP DATABASE target WITH (FORCE)"
PGDATABASE=postgres psql_q "CREATE DATABASE target"
run_and_kill in-changes
run_and_kill after 1
finish
compare "kill during the changes"

# a kill point after the end of a run proves less; say so, but the verdict is
# the comparison above, never the timing
[ "$kills" -ge 2 ] || log "WARNING: only $kills runs were still going at their kill point; a bigger data set (KILL9_ACCOUNTS) tests more"
log "ok ($kills kills)"
