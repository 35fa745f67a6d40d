# tests/integration/pg_cdc_common.sh - shared by the test_pg_cdc_*.sh tests
# (sourced after tests/lib/common.sh; not a test itself).
#
# The target is database TARGET_DB on the same server unless
# CDC_SINK_CONNINFO / CDC_TARGET_PORT name another server.
#
# A source database with three tables (single-column and composite keys,
# several types), a pgbench writer that inserts, updates and deletes on all of
# them in multi-statement transactions, profiles that export them with
# source-pg, and a row-by-row comparison of source and target.

CDC_TABLES=(t1 t2 t3)
declare -A CDC_COLS=([t1]="id, v, n" [t2]="id, s, ts, amount" [t3]="a, b, w")
declare -A CDC_ORDER=([t1]="id" [t2]="id" [t3]="a, b")
CDC_MAXID=${CDC_MAXID:-40000}

# cdc_source_tables - create and fill the source tables in $PGDATABASE
cdc_source_tables() {
    psql_q "CREATE TABLE t1 (id int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0);
            CREATE TABLE t2 (id bigint PRIMARY KEY, s text, ts timestamptz, amount numeric(12,2));
            CREATE TABLE t3 (a int, b text, w float8, PRIMARY KEY (a, b));
            INSERT INTO t1 SELECT g, md5(g::text), 0 FROM generate_series(1, $CDC_MAXID) g;
            INSERT INTO t2 SELECT g, 'row ' || g, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second',
                                  (g % 10000) / 100.0 FROM generate_series(1, $CDC_MAXID) g;
            INSERT INTO t3 SELECT g, 'k' || (g % 3), g / 7.0 FROM generate_series(1, $CDC_MAXID / 2) g;"
}

# cdc_profile NAME TARGET_DB [extra profile lines] - a drop-in for a profile
# (CDC_SOURCE_EXTRA: more settings of the source section)
cdc_profile() {
    local name=$1 db=$2 extra=${3:-}
    cat >"$TEST_TMP/etc/conf.d/10-$name.conf" <<CONF
profiles = ( {
  name = "$name";
  entities = [ "t1", "public.t2", "t3" ];
  source = { plugin = "pg"; conninfo = "$PG_CONNINFO"; status_interval_ms = 500; ${CDC_SOURCE_EXTRA:-} };
  sink = { plugin = "pg"; conninfo = "${CDC_SINK_CONNINFO:-$PG_CONNINFO} dbname=$db"; };
  target_schema = "cdc";
  batch_size = 1000;
  batch_linger_ms = 50;
  workers = 3;
  retry_interval = 1;
  $extra
} );
CONF
}

# cdc_writer SECONDS [RATE] - run the pgbench writer in the background; sets
# CDC_WRITER_PID
cdc_writer() {
    local secs=$1 rate=${2:-150}
    cat >"$TEST_TMP/writer.sql" <<'SQL'
\set a random(1, :maxid)
\set b random(1, :maxid)
\set c random(1, :maxid)
BEGIN;
INSERT INTO t1 (id, v, n) VALUES (:a, md5(random()::text), 0)
  ON CONFLICT (id) DO UPDATE SET v = excluded.v, n = t1.n + 1;
UPDATE t2 SET s = md5(random()::text), ts = now(), amount = amount + 1 WHERE id = :b;
DELETE FROM t3 WHERE a = :c;
INSERT INTO t3 (a, b, w) VALUES (:b, 'k' || (:c % 3), random()) ON CONFLICT DO NOTHING;
COMMIT;
\set d random(1, :maxid)
DELETE FROM t1 WHERE id = :d;
INSERT INTO t2 (id, s, ts, amount) VALUES (:d + :maxid, 'new', now(), 1)
  ON CONFLICT (id) DO UPDATE SET s = 'again ' || random(), amount = t2.amount * 2;
UPDATE t1 SET n = n + 1 WHERE id = :c;
SQL
    pgbench -n -c 2 -T "$secs" -R "$rate" --max-tries=50 -D maxid="$CDC_MAXID" \
        -f "$TEST_TMP/writer.sql" >"$TEST_TMP/writer.log" 2>&1 &
    CDC_WRITER_PID=$!
}

# cdc_dump DB SCHEMA DIR [PORT] - every table's compared columns, sorted, to DIR/<table>
cdc_dump() {
    local db=$1 schema=$2 dir=$3 port=${4:-$PGPORT} t
    mkdir -p "$dir"
    for t in "${CDC_TABLES[@]}"; do
        PGPORT=$port PGDATABASE=$db psql -X -q -v ON_ERROR_STOP=1 \
            -c "COPY (SELECT ${CDC_COLS[$t]} FROM $schema.$t ORDER BY ${CDC_ORDER[$t]}) TO STDOUT" \
            >"$dir/$t" 2>/dev/null || return 1
    done
}

# cdc_equal TARGET_DB - 0 when every table equals the source row by row
cdc_equal() {
    local db=$1 t
    rm -rf "$TEST_TMP/cmp"
    cdc_dump "$PGDATABASE" public "$TEST_TMP/cmp/src" || return 1
    cdc_dump "$db" cdc "$TEST_TMP/cmp/tgt" "${CDC_TARGET_PORT:-$PGPORT}" || return 1
    for t in "${CDC_TABLES[@]}"; do
        cmp -s "$TEST_TMP/cmp/src/$t" "$TEST_TMP/cmp/tgt/$t" || return 1
    done
}

# cdc_wait_equal TARGET_DB SECONDS - poll until equal (follow mode catching up)
cdc_wait_equal() {
    local db=$1 secs=$2 i
    for ((i = 0; i < secs * 2; i++)); do
        cdc_equal "$db" && return 0
        if [ -n "${CDC_SLUICE_ERR:-}" ] && grep -q "FAILED\|failed;" "$CDC_SLUICE_ERR"; then
            tail -20 "$CDC_SLUICE_ERR" >&2
            return 1
        fi
        sleep 0.5
    done
    return 1
}

# cdc_report TARGET_DB - say how source and target differ (after a failure)
cdc_report() {
    local t
    for t in "${CDC_TABLES[@]}"; do
        echo "table $t: source $(wc -l <"$TEST_TMP/cmp/src/$t") rows, target $(wc -l <"$TEST_TMP/cmp/tgt/$t") rows" >&2
        diff "$TEST_TMP/cmp/src/$t" "$TEST_TMP/cmp/tgt/$t" | head -5 >&2 || true
    done
}

# cdc_no_duplicate_keys TARGET_DB - the target's keys are unique (the primary
# key says so; this checks the target really has one)
cdc_no_duplicate_keys() {
    local db=$1 t n
    for t in "${CDC_TABLES[@]}"; do
        n=$(PGPORT=${CDC_TARGET_PORT:-$PGPORT} PGDATABASE=$db psql_q "SELECT count(*) - count(DISTINCT (${CDC_ORDER[$t]})) FROM cdc.$t")
        assert_eq 0 "$n" "duplicate keys in cdc.$t"
    done
}
