#!/usr/bin/env bash
# The other SQL sinks against their peers, in one run:
#   1. 2M rows into MariaDB: sluice (source-file -> sink-mysql) against
#      `LOAD DATA LOCAL INFILE` of the same CSV into the same server.
#   2. the same rows into PostgreSQL through sink-odbc (psqlODBC driver)
#      against sink-pg.
#
#   bash bench/bench_sinks.sh [ROWS]      (default 2000000; ODBC_ROWS overrides part 2)
#
# Tables have a primary key on aid on every side. Each measurement runs RUNS
# times (default 3, 1 for ODBC) into an emptied target; the median is printed.
set -euo pipefail
export SLUICE_SOURCE_DIR=${SLUICE_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/mariadb.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/odbc.sh"
source "$SLUICE_SOURCE_DIR/bench/lib.sh"

rows=${1:-2000000}
odbc_rows=${ODBC_ROWS:-$rows}
runs=${RUNS:-3}
[ -x "$SLUICE_BIN" ] || fail "build first: no $SLUICE_BIN"
pg_start
mariadb_start
odbc_setup

data=$TEST_TMP/data
log "generating $rows rows"
make_data "$rows" "$data"

# ---- 1. MariaDB: sink-mysql vs LOAD DATA LOCAL INFILE ----------------------
my() { mariadb --no-defaults -h 127.0.0.1 -P "$MARIADB_PORT" -u "$MARIADB_USER" \
        -p"$MARIADB_PASSWORD" --local-infile=1 -N -B "$@"; }
load_data_once() {
    my -e "DROP DATABASE IF EXISTS peer; CREATE DATABASE peer CHARACTER SET utf8mb4;
           CREATE TABLE peer.accounts (aid INT PRIMARY KEY, bid INT, abalance INT, filler CHAR(84)) ENGINE=InnoDB"
    local t0 t1
    t0=$(now)
    my -e "LOAD DATA LOCAL INFILE '$data/plain.csv' INTO TABLE peer.accounts
           FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\n'"
    t1=$(now)
    [ "$(my -e 'SELECT count(*) FROM peer.accounts')" = "$rows" ] || fail "LOAD DATA row count"
    echo "$t1 - $t0" | bc -l
}
printf '%s' "$MARIADB_PASSWORD" >"$TEST_TMP/my.pass"
chmod 0600 "$TEST_TMP/my.pass"
my_conf=$(bench_conf "$data" "$TEST_TMP/run-my" "{ plugin = \"mysql\"; host = \"127.0.0.1\"; port = $MARIADB_PORT;
    user = \"$MARIADB_USER\"; password_file = \"$TEST_TMP/my.pass\"; database = \"sluice\"; }" \
    'target_schema = "sl";')
mysql_once() {
    my -e "DROP DATABASE IF EXISTS sl; DROP TABLE IF EXISTS sluice._sluice_checkpoint, sluice._sluice_tombstone"
    local out
    out=$(timed_sluice "$my_conf")
    [ "$(my -e 'SELECT count(*) FROM sl.pgbench_accounts')" = "$rows" ] || fail "sink-mysql row count"
    echo "$out"
}
ld=() sm=()
for ((i = 1; i <= runs; i++)); do
    ld+=("$(load_data_once)")
    read -r s _ < <(mysql_once)
    sm+=("$s")
    log "run $i: LOAD DATA ${ld[-1]} s, sink-mysql $s s"
done
ld_med=$(printf '%s\n' "${ld[@]}" | median)
sm_med=$(printf '%s\n' "${sm[@]}" | median)

# ---- 2. PostgreSQL: sink-odbc (psqlODBC) vs sink-pg -------------------------
if [ "$odbc_rows" != "$rows" ]; then
    head -n "$odbc_rows" "$data/plain.csv" >"$TEST_TMP/odbc.csv"
    mkdir -p "$TEST_TMP/odbc-data"
    cp "$data/pgbench_accounts.schema.json" "$TEST_TMP/odbc-data/"
    { echo "aid,bid,abalance,filler"; cat "$TEST_TMP/odbc.csv"; } >"$TEST_TMP/odbc-data/pgbench_accounts.csv"
    odata=$TEST_TMP/odbc-data
else
    odata=$data
fi
pg_conf=$(bench_conf "$odata" "$TEST_TMP/run-pg" "{ plugin = \"pg\"; conninfo = \"$PG_CONNINFO\"; }" 'target_schema = "sl";')
odbc_conf=$(bench_conf "$odata" "$TEST_TMP/run-odbc" "{ plugin = \"odbc\";
    connection_string = \"Driver={PostgreSQL Unicode};Servername=127.0.0.1;Port=$PGPORT;Database=postgres;UID=postgres\"; }" \
    'target_schema = "sl";')
pg_target_once() { # conf
    psql_q "DROP SCHEMA IF EXISTS sl CASCADE; DROP TABLE IF EXISTS public._sluice_checkpoint, public._sluice_tombstone"
    local out
    out=$(timed_sluice "$1")
    [ "$(psql_q 'SELECT count(*) FROM sl.pgbench_accounts')" = "$odbc_rows" ] || fail "row count ($1)"
    echo "$out"
}
read -r pg_s _ < <(pg_target_once "$pg_conf")
log "sink-pg $pg_s s"
read -r odbc_s _ < <(pg_target_once "$odbc_conf")
log "sink-odbc $odbc_s s"

echo
printf 'MariaDB, %d rows (pgbench_accounts shape), median of %d runs\n' "$rows" "$runs"
printf '  LOAD DATA LOCAL INFILE   %8.2f s  %10.0f rows/s\n' "$ld_med" "$(ratio "$rows" "$ld_med")"
printf '  sluice file -> mysql     %8.2f s  %10.0f rows/s\n' "$sm_med" "$(ratio "$rows" "$sm_med")"
printf '  ratio sluice / LOAD DATA %8.2fx   (issue target: <= 1.5x)\n' "$(ratio "$sm_med" "$ld_med")"
echo
printf 'PostgreSQL, %d rows, one run each\n' "$odbc_rows"
printf '  sluice file -> pg        %8.2f s  %10.0f rows/s\n' "$pg_s" "$(ratio "$odbc_rows" "$pg_s")"
printf '  sluice file -> odbc(pg)  %8.2f s  %10.0f rows/s\n' "$odbc_s" "$(ratio "$odbc_rows" "$odbc_s")"
printf '  ratio odbc / pg          %8.2fx\n' "$(ratio "$odbc_s" "$pg_s")"
