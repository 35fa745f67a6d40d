#!/usr/bin/env bash
# PostgreSQL change data capture: sluice (source-pg -> sink-pg) against
# PostgreSQL's own logical replication (CREATE SUBSCRIPTION), same machine,
# same data, ratios printed in one run.
#
#   bash bench/bench_pg_cdc.sh [ROWS] [UPDATES]     (defaults 2000000, 1000000)
#
#  1. initial sync of pgbench_accounts (ROWS rows) into a second server:
#     sluice run --once vs a native subscription's initial table copy (until
#     pg_subscription_rel says ready), INIT_RUNS rounds (default 5) alternating,
#     medians compared                                      target: <= 1.2x
#  2. a backlog of UPDATES row updates (10 transactions) made while both
#     consumers are stopped: sluice run --once vs the re-enabled subscription
#     catching up (until the target's sum(abalance) matches) target: <= 1.0x
#  3. end-to-end lag while pgbench inserts at a steady rate (RATE tps,
#     default 200, for LAG_SECS, default 20 s): per row, the target's
#     _sluice_last_sync (start of the applying transaction) minus the row's
#     clock_timestamp() at insert in the source; p50 and p99; the native
#     subscription follows the same table at the same time (its copy has a
#     column applied DEFAULT clock_timestamp()).
#
# SOURCE_EXTRA adds settings to the source section, e.g.
#   SOURCE_EXTRA="snapshot_split_mb = 16;" bash bench/bench_pg_cdc.sh
set -euo pipefail
export SLUICE_SOURCE_DIR=${SLUICE_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/bench/lib.sh"

rows=${1:-2000000}
updates=${2:-1000000}
rate=${RATE:-200}
lag_secs=${LAG_SECS:-20}
[ -x "$SLUICE_BIN" ] || fail "build first: no $SLUICE_BIN"
[ -f "$SLUICE_PLUGIN_PATH/source-pg.so" ] || fail "build first: no source-pg.so"

pg_start tgt
TGT_PORT=$PGPORT TGT_CONNINFO=$PG_CONNINFO
psql_q "CREATE DATABASE sl" && psql_q "CREATE DATABASE nat"
pg_start src
SRC_CONNINFO=$PG_CONNINFO
tq() { PGPORT=$TGT_PORT PGDATABASE=$1 psql_q "$2"; }

log "generating $rows rows"
"$PG_BIN/pgbench" -q -i -s $(((rows + 99999) / 100000)) -I dtgp >/dev/null 2>&1
[ "$rows" -lt $(((rows + 99999) / 100000 * 100000)) ] && psql_q "DELETE FROM pgbench_accounts WHERE aid > $rows" && psql_q "VACUUM pgbench_accounts"
psql_q "CREATE TABLE lagtest (id bigserial PRIMARY KEY, created timestamptz NOT NULL DEFAULT clock_timestamp(), pad text)"
psql_q "CHECKPOINT"

conf=$(write_main_conf "$TEST_TMP/etc")
cat >"$TEST_TMP/etc/conf.d/bench.conf" <<CONF
profiles = ( { name = "bench"; entities = ["pgbench_accounts", "lagtest"];
  source = { plugin = "pg"; conninfo = "$SRC_CONNINFO"; status_interval_ms = 1000; ${SOURCE_EXTRA:-} };
  sink = { plugin = "pg"; conninfo = "$TGT_CONNINFO dbname=sl"; };
  target_schema = "public"; } );
CONF

# ---- 1. initial sync ----------------------------------------------------------
# INIT_RUNS rounds (default 5), sluice and native alternating, each into a new
# database with a checkpoint before it; the medians are compared.
init_runs=${INIT_RUNS:-5}
sl_times=() nat_times=()
for ((run = 1; run <= init_runs; run++)); do
    if ((run > 1)); then
        psql_q "SELECT pg_drop_replication_slot('sluice_bench')" >/dev/null
        rm -rf "$TEST_TMP/etc/state"
        tq nat "DROP SUBSCRIPTION natsub"
        PGPORT=$TGT_PORT psql_q "DROP DATABASE sl" && PGPORT=$TGT_PORT psql_q "DROP DATABASE nat"
        PGPORT=$TGT_PORT psql_q "CREATE DATABASE sl" && PGPORT=$TGT_PORT psql_q "CREATE DATABASE nat"
    fi
    PGPORT=$TGT_PORT psql_q "CHECKPOINT"
    t0=$(now)
    "$SLUICE_BIN" run --once -c "$conf" 2>"$TEST_TMP/sluice-initial.log" ||
        { tail "$TEST_TMP/sluice-initial.log" >&2; fail "sluice initial sync failed"; }
    t1=$(now)
    sl_times+=("$(echo "$t1 - $t0" | bc -l)")
    assert_eq "$rows" "$(tq sl "SELECT count(*) FROM pgbench_accounts")" "sluice rows"

    tq nat "CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))"
    ((run > 1)) || psql_q "CREATE PUBLICATION natpub FOR TABLE pgbench_accounts"
    PGPORT=$TGT_PORT psql_q "CHECKPOINT"
    t0=$(now)
    tq nat "CREATE SUBSCRIPTION natsub CONNECTION '$SRC_CONNINFO' PUBLICATION natpub"
    while [ "$(tq nat "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')")" != 0 ]; do
        sleep 0.05
    done
    t1=$(now)
    nat_times+=("$(echo "$t1 - $t0" | bc -l)")
    assert_eq "$rows" "$(tq nat "SELECT count(*) FROM pgbench_accounts")" "native rows"
    log "initial sync, round $run: sluice ${sl_times[-1]} s, native ${nat_times[-1]} s"
done
sl_init=$(printf '%s\n' "${sl_times[@]}" | median)
nat_init=$(printf '%s\n' "${nat_times[@]}" | median)
log "initial sync, median of $init_runs: sluice $sl_init s, native $nat_init s"

# ---- 2. backlog of updates ----------------------------------------------------
tq nat "ALTER SUBSCRIPTION natsub DISABLE"
sleep 1
per=$((updates / 10))
for ((i = 0; i < 10; i++)); do
    psql_q "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid > $((i * per)) AND aid <= $(((i + 1) * per))"
done
want=$(psql_q "SELECT sum(abalance) FROM pgbench_accounts")
t0=$(now)
"$SLUICE_BIN" run --once -c "$conf" 2>"$TEST_TMP/sluice-backlog.log" ||
    { tail "$TEST_TMP/sluice-backlog.log" >&2; fail "sluice backlog run failed"; }
t1=$(now)
sl_backlog=$(echo "$t1 - $t0" | bc -l)
assert_eq "$want" "$(tq sl "SELECT sum(abalance) FROM pgbench_accounts")" "sluice after the backlog"
t0=$(now)
tq nat "ALTER SUBSCRIPTION natsub ENABLE"
while [ "$(tq nat "SELECT sum(abalance) FROM pgbench_accounts")" != "$want" ]; do sleep 0.1; done
t1=$(now)
nat_backlog=$(echo "$t1 - $t0" | bc -l)
log "backlog of $updates updates: sluice $sl_backlog s, native $nat_backlog s"
tq nat "ALTER SUBSCRIPTION natsub DISABLE"

# ---- 3. lag under a steady insert rate -----------------------------------------
# Both consumers follow lagtest at once. The native subscriber's copy of the
# table has one more column, applied DEFAULT clock_timestamp(), filled when
# the apply worker inserts the row; sluice's target has _sluice_last_sync.
tq nat "CREATE TABLE lagtest (id bigint PRIMARY KEY, created timestamptz NOT NULL, pad text,
                              applied timestamptz NOT NULL DEFAULT clock_timestamp())"
psql_q "ALTER PUBLICATION natpub ADD TABLE lagtest"
tq nat "ALTER SUBSCRIPTION natsub ENABLE"
tq nat "ALTER SUBSCRIPTION natsub REFRESH PUBLICATION"
while [ "$(tq nat "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')")" != 0 ]; do
    sleep 0.05
done
"$SLUICE_BIN" run -c "$conf" 2>"$TEST_TMP/sluice-lag.log" &
pid=$!
stop_sluice() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
at_exit stop_sluice
sleep 2
echo "INSERT INTO lagtest (pad) VALUES (md5(random()::text));" >"$TEST_TMP/lag.sql"
"$PG_BIN/pgbench" -n -c 2 -R "$rate" -T "$lag_secs" -f "$TEST_TMP/lag.sql" >"$TEST_TMP/pgbench-lag.log" 2>&1
n=$(psql_q "SELECT count(*) FROM lagtest")
for ((i = 0; i < 600; i++)); do
    [ "$(tq sl "SELECT count(*) FROM lagtest")" = "$n" ] && [ "$(tq nat "SELECT count(*) FROM lagtest")" = "$n" ] && break
    sleep 0.1
done
assert_eq "$n" "$(tq sl "SELECT count(*) FROM lagtest")" "lag rows (sluice)"
assert_eq "$n" "$(tq nat "SELECT count(*) FROM lagtest")" "lag rows (native)"
pct() { # DB COLUMN -> "p50 p99" in ms of COLUMN - created
    tq "$1" "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM $2 - created)))::text || ' ' ||
                    round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM $2 - created)))::text FROM lagtest"
}
read -r p50 p99 < <(pct sl _sluice_last_sync)
read -r np50 np99 < <(pct nat applied)
stop_sluice

printf '\n%-48s %10s %10s %8s\n' "source-pg bench ($rows rows, $updates updates)" "sluice s" "native s" "ratio"
printf '%-48s %10.2f %10.2f %8.2f\n' "initial sync, median of $init_runs (target <= 1.2)" "$sl_init" "$nat_init" "$(ratio "$sl_init" "$nat_init")"
printf '%-48s %10.2f %10.2f %8.2f\n' "backlog of updates (target <= 1.0)" "$sl_backlog" "$nat_backlog" "$(ratio "$sl_backlog" "$nat_backlog")"
printf '%-48s sluice p50 %s ms, p99 %s ms; native p50 %s ms, p99 %s ms (%s rows)\n' "lag at $rate inserts/s" "$p50" "$p99" "$np50" "$np99" "$n"
