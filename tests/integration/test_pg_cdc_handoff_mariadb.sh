#!/usr/bin/env bash
# The snapshot/stream handoff test with a MariaDB target (sink-mysql): a
# writer changes three PostgreSQL tables during the whole initial sync and
# after; once it stops and sluice catches up, the MariaDB tables hold exactly
# the source's rows (compared on columns whose text is the same in both
# databases).
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/mariadb.sh"
source "$SLUICE_SOURCE_DIR/tests/integration/pg_cdc_common.sh"

pg_start
mariadb_start
cdc_source_tables
conf=$(write_main_conf "$TEST_TMP/etc")
printf '%s' "$MARIADB_PASSWORD" >"$TEST_TMP/mysql.pass"
cat >"$TEST_TMP/etc/conf.d/10-cdc.conf" <<CONF
profiles = ( {
  name = "cdcmy";
  entities = [ "t1", "public.t2", "t3" ];
  source = { plugin = "pg"; conninfo = "$PG_CONNINFO"; status_interval_ms = 500; };
  sink = { plugin = "mysql"; host = "127.0.0.1"; port = $MARIADB_PORT; user = "$MARIADB_USER";
           password_file = "$TEST_TMP/mysql.pass"; database = "$MARIADB_DATABASE"; };
  target_schema = "cdc";
  batch_size = 1000;
  batch_linger_ms = 50;
  workers = 3;
  retry_interval = 1;
} );
CONF

src_rows() {
    psql -X -A -t -F $'\t' -q -c "SELECT id, v, n FROM t1 ORDER BY id" >"$TEST_TMP/src.t1"
    psql -X -A -t -F $'\t' -q -c "SELECT id, s, amount FROM t2 ORDER BY id" >"$TEST_TMP/src.t2"
    psql -X -A -t -F $'\t' -q -c "SELECT a, b FROM t3 ORDER BY a, b" >"$TEST_TMP/src.t3"
}
tgt_rows() {
    mariadb_q "SELECT id, v, n FROM cdc.t1 ORDER BY id" >"$TEST_TMP/tgt.t1" 2>/dev/null &&
        mariadb_q "SELECT id, s, amount FROM cdc.t2 ORDER BY id" >"$TEST_TMP/tgt.t2" 2>/dev/null &&
        mariadb_q "SELECT a, b FROM cdc.t3 ORDER BY a, b" >"$TEST_TMP/tgt.t3" 2>/dev/null
}
equal() {
    src_rows && tgt_rows || return 1
    local t
    for t in t1 t2 t3; do cmp -s "$TEST_TMP/src.$t" "$TEST_TMP/tgt.$t" || return 1; done
}

cdc_writer 15
sleep 1
"$SLUICE_BIN" run -c "$conf" 2>"$TEST_TMP/sluice.err" &
pid=$!
stop_sluice() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
at_exit stop_sluice
wait "$CDC_WRITER_PID" || { cat "$TEST_TMP/writer.log" >&2; fail "the writer failed"; }
ok=0
for ((i = 0; i < 180; i++)); do
    if equal; then ok=1; break; fi
    grep -q "FAILED" "$TEST_TMP/sluice.err" && break
    sleep 0.5
done
if [ $ok != 1 ]; then
    for t in t1 t2 t3; do
        echo "$t: source $(wc -l <"$TEST_TMP/src.$t") target $(wc -l <"$TEST_TMP/tgt.$t" 2>/dev/null)" >&2
        diff "$TEST_TMP/src.$t" "$TEST_TMP/tgt.$t" 2>&1 | head -5 >&2 || true
    done
    tail -20 "$TEST_TMP/sluice.err" >&2
    fail "MariaDB target differs from the PostgreSQL source"
fi
log "ok: MariaDB target equals the source after a handoff under load ($(wc -l <"$TEST_TMP/tgt.t1") rows in t1)"
