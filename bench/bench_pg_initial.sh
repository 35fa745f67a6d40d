#!/usr/bin/env bash
# Initial sync into PostgreSQL: sluice (source-file -> sink-pg) against
# `psql \copy` of the same rows as CSV into the same server, in one run.
#
#   bash bench/bench_pg_initial.sh [ROWS]        (default 2000000)
#
# Data: a table shaped like pgbench_accounts (aid int4 key, bid int4,
# abalance int4, filler char(84)), made by `pgbench -i` and exported to CSV.
# Both targets get a primary key on aid (sluice creates one; the peer's table
# is created with one) on the same throwaway server. Each side runs RUNS times
# (default 3) into an emptied table; the median is reported. Then the peak RSS
# of sluice is measured with 1M and 4M rows (SLUICE_BENCH_RSS=0 skips it).
set -euo pipefail
export SLUICE_SOURCE_DIR=${SLUICE_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/bench/lib.sh"

rows=${1:-2000000}
runs=${RUNS:-3}
[ -x "$SLUICE_BIN" ] || fail "build first: no $SLUICE_BIN"
pg_start

conf_for() { # data dir
    bench_conf "$1" "$1/run" "{ plugin = \"pg\"; conninfo = \"$PG_CONNINFO\"; }" 'target_schema = "sl";'
}

sluice_once() { # conf rows -> prints "seconds peak_kib"
    psql_q "DROP SCHEMA IF EXISTS sl CASCADE"
    local out n
    out=$(timed_sluice "$1")
    n=$(psql_q "SELECT count(*) FROM sl.pgbench_accounts")
    [ "$n" = "$2" ] || fail "sluice loaded $n rows, expected $2"
    echo "$out"
}

copy_once() { # csv rows -> seconds
    psql_q "DROP TABLE IF EXISTS peer_accounts"
    psql_q "CREATE TABLE peer_accounts (aid int4 PRIMARY KEY, bid int4, abalance int4, filler char(84))"
    local t0 t1
    t0=$(now)
    psql -X -q -c "\\copy peer_accounts FROM '$1' CSV"
    t1=$(now)
    local n
    n=$(psql_q "SELECT count(*) FROM peer_accounts")
    [ "$n" = "$2" ] || fail "\\copy loaded $n rows, expected $2"
    echo "$t1 - $t0" | bc -l
}

data=$TEST_TMP/data-$rows
log "generating $rows rows"
make_data "$rows" "$data"
conf=$(conf_for "$data")

copy_times=() sluice_times=()
for ((i = 1; i <= runs; i++)); do
    copy_times+=("$(copy_once "$data/plain.csv" "$rows")")
    read -r secs _ < <(sluice_once "$conf" "$rows")
    sluice_times+=("$secs")
    log "run $i: psql \\copy ${copy_times[-1]} s, sluice $secs s"
done
copy_med=$(printf '%s\n' "${copy_times[@]}" | median)
sluice_med=$(printf '%s\n' "${sluice_times[@]}" | median)
ratio=$(echo "$sluice_med / $copy_med" | bc -l)

echo
printf 'initial sync, %d rows (pgbench_accounts shape), median of %d runs\n' "$rows" "$runs"
printf '  psql \\copy            %8.2f s  %10.0f rows/s\n' "$copy_med" "$(echo "$rows / $copy_med" | bc -l)"
printf '  sluice file -> pg      %8.2f s  %10.0f rows/s\n' "$sluice_med" "$(echo "$rows / $sluice_med" | bc -l)"
printf '  ratio sluice / \\copy   %8.2fx   (issue target: <= 2.0x, goal 0.9x)\n' "$ratio"

if [ "${SLUICE_BENCH_RSS:-1}" = 1 ]; then
    echo
    echo "peak RSS of sluice run --once:"
    for n in 1000000 4000000; do
        d=$TEST_TMP/data-$n
        [ -d "$d" ] || make_data "$n" "$d"
        c=$(conf_for "$d")
        read -r secs kib < <(sluice_once "$c" "$n")
        printf '  %8d rows  %6.1f MiB  (%.1f s)\n' "$n" "$(echo "$kib / 1024" | bc -l)" "$secs"
        rm -rf "$d"
    done
fi
