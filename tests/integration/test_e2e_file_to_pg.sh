#!/usr/bin/env bash
# The acceptance test of the file source -> PostgreSQL export: a generated CRM
# (accounts, contacts, opportunities; quotes, newlines, emoji, NULL vs empty,
# decimals, dates, zoned timestamps, uuid, bytes, json) with several change
# files of inserts, partial and full updates, deletes and re-inserts.
#
#  1. `sluice run --once` -> every target table equals the generator's expected
#     final state, row by row (CSV snapshot input, and JSON Lines input into a
#     second database);
#  2. run --once again -> nothing changes, not even the _sluice_* sync times
#     or the checkpoint;
#  3. checkpoint removed, so everything is replayed from the start -> the data
#     and each row's _sluice_* columns are unchanged: a replay rewrites
#     nothing and resurrects no deleted row.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

pg_start
psql_q "CREATE DATABASE crm_csv"
psql_q "CREATE DATABASE crm_jsonl"

gen=$SLUICE_SOURCE_DIR/scripts/gen-crm-data.py
entities=(accounts contacts opportunities)
python3 "$gen" --out "$TEST_TMP/csv" --accounts 2000 --changes 6000 --change-files 5 \
    --seed 11 --expected "$TEST_TMP/expected" >/dev/null
python3 "$gen" --out "$TEST_TMP/jsonl" --format jsonl --accounts 2000 --changes 6000 \
    --change-files 5 --seed 11 >/dev/null

conf=$(write_main_conf "$TEST_TMP/etc")
profile() { # name data-folder database
    cat >"$TEST_TMP/etc/conf.d/10-$1.conf" <<CONF
profiles = ( {
  name = "$1";
  entities = [ "accounts", "contacts", "opportunities" ];
  source = { plugin = "file"; path = "$2"; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=$3"; };
  target_schema = "crm";
  batch_size = 700;
  workers = 3;
  retry_interval = 1;
} );
CONF
}
profile crm_csv "$TEST_TMP/csv" crm_csv
profile crm_jsonl "$TEST_TMP/jsonl" crm_jsonl

run_once() { # label
    local rc=0
    sluice run --once -c "$conf" 2>"$TEST_TMP/$1.err" || rc=$?
    [ "$rc" = 0 ] || { tail -n 30 "$TEST_TMP/$1.err" >&2; fail "$1: run --once exited $rc"; }
}

# The entity's own columns (from its schema file), in schema order.
columns() { # entity
    python3 -c 'import json, sys
print(", ".join("\"%s\"" % c["name"] for c in json.load(open(sys.argv[1]))["columns"]))' \
        "$TEST_TMP/csv/$1.schema.json"
}

# Same form as the generator's --expected files (every value quoted, NULL
# unquoted), so the files compare byte for byte.
dump() { # database entity file
    PGDATABASE=$1 PGTZ=UTC PGDATESTYLE=ISO psql -X -q -v ON_ERROR_STOP=1 \
        -c "\\copy (SELECT $(columns "$2") FROM crm.$2 ORDER BY id) TO '$3' WITH (FORMAT csv, FORCE_QUOTE *)"
}

compare_data() { # label database
    local e
    for e in "${entities[@]}"; do
        dump "$2" "$e" "$TEST_TMP/got-$2-$e.csv"
        if ! cmp -s "$TEST_TMP/expected/$e.csv" "$TEST_TMP/got-$2-$e.csv"; then
            diff "$TEST_TMP/expected/$e.csv" "$TEST_TMP/got-$2-$e.csv" | head -n 20 >&2
            fail "$1: $2 crm.$e differs from the expected state"
        fi
    done
}

# Every row's sync metadata, plus (with "with-checkpoint") the checkpoint rows.
metadata() { # database [with-checkpoint]
    local e
    for e in "${entities[@]}"; do
        PGDATABASE=$1 psql_q "SELECT '$e', count(*), md5(coalesce(string_agg(id || ':' || _sluice_version
            || ':' || _sluice_first_sync || ':' || _sluice_last_sync, ',' ORDER BY id), '')) FROM crm.$e"
    done
    PGDATABASE=$1 psql_q "SELECT 'tombstones', count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))
        FROM crm._sluice_tombstone t"
    if [ "${2:-}" = with-checkpoint ]; then
        PGDATABASE=$1 psql_q "SELECT 'checkpoint', md5(string_agg(c::text, ',' ORDER BY partition))
            FROM crm._sluice_checkpoint c"
    fi
}

# ---- 1. the initial sync and the changes ---------------------------------------
log "run --once"
run_once first
compare_data "after run --once (CSV input)" crm_csv
compare_data "after run --once (JSON Lines input)" crm_jsonl
grep -q "profile crm_csv: done" "$TEST_TMP/first.err" || fail "no summary line for crm_csv"

sluice status --json -c "$conf" >"$TEST_TMP/status.json"
python3 - "$TEST_TMP/status.json" <<'PY' || fail "status after the first run"
import json, sys
doc = json.load(open(sys.argv[1]))
for p in doc["profiles"]:
    assert p["failed_records"] == 0, p
    assert p["entities"]["accounts"]["rows_read"] == 2000, p["entities"]["accounts"]
PY

# ---- 2. nothing new: nothing changes ------------------------------------------------
for db in crm_csv crm_jsonl; do metadata $db with-checkpoint >"$TEST_TMP/meta1-$db"; done
log "run --once again"
run_once second
for db in crm_csv crm_jsonl; do
    compare_data "after the second run" $db
    metadata $db with-checkpoint >"$TEST_TMP/meta2-$db"
    diff "$TEST_TMP/meta1-$db" "$TEST_TMP/meta2-$db" >&2 ||
        fail "second run --once changed the sync metadata of $db"
done

# ---- 3. a full replay changes nothing and resurrects nothing -------------------------
log "replay everything (checkpoint removed)"
PGDATABASE=crm_csv psql_q "DELETE FROM crm._sluice_checkpoint"
run_once replay
compare_data "after a full replay" crm_csv
metadata crm_csv >"$TEST_TMP/meta3-crm_csv"
grep -v '^checkpoint' "$TEST_TMP/meta1-crm_csv" | diff - "$TEST_TMP/meta3-crm_csv" >&2 ||
    fail "a full replay rewrote rows (their _sluice_* columns changed)"
[ "$(PGDATABASE=crm_csv psql_q "SELECT count(*) FROM crm._sluice_checkpoint")" != 0 ] ||
    fail "the replay wrote no checkpoint"

log "ok"
