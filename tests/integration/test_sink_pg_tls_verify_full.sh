#!/usr/bin/env bash
# sink-pg over TLS with certificate verification: with sslmode=verify-full in the
# conninfo the export succeeds against a server whose certificate the configured CA
# signed for the host name used, and fails with a clear error (no crash, no rows)
# when the CA is another one or the host name does not match. Certificates are made
# by the test with openssl.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

pg_start
pgdir=$PG_DIR_pg
certs=$TEST_TMP/certs
mkdir -p "$certs"
cd "$certs"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sluice test CA" \
    -keyout ca.key -out ca.crt 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" \
    -keyout other.key -out other.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' >san.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile san.ext -out server.crt 2>/dev/null
cp server.crt server.key "$pgdir/"
chmod 0600 "$pgdir/server.key"
[ "$(id -u)" = 0 ] && chown postgres: "$pgdir/server.crt" "$pgdir/server.key"
cd - >/dev/null
psql_q "ALTER SYSTEM SET ssl_cert_file = '$pgdir/server.crt'"
psql_q "ALTER SYSTEM SET ssl_key_file = '$pgdir/server.key'"
psql_q "ALTER SYSTEM SET ssl = on"
psql_q "SELECT pg_reload_conf()" >/dev/null
for i in $(seq 1 50); do
    [ "$(psql_q 'SHOW ssl')" = on ] && break
    sleep 0.1
done
assert_eq on "$(psql_q 'SHOW ssl')" "server TLS enabled"

python3 "$SLUICE_SOURCE_DIR/scripts/gen-crm-data.py" --out "$TEST_TMP/data" --accounts 20 \
    --changes 10 --change-files 1 --seed 7 >/dev/null

# profile_with CONNINFO NAME - a config whose sink uses CONNINFO; prints its path
profile_with() {
    local conf
    conf=$(write_main_conf "$TEST_TMP/$2")
    cat >"$TEST_TMP/$2/conf.d/tls.conf" <<CONF
profiles = ( { name = "tls"; entities = ["accounts"];
  source = { plugin = "file"; path = "$TEST_TMP/data"; };
  sink = { plugin = "pg"; conninfo = "$1"; };
  target_schema = "$2"; workers = 1; retry_count = 1; retry_interval = 1; } );
CONF
    echo "$conf"
}

base="port=$PGPORT user=postgres dbname=postgres sslmode=verify-full"

log "verify-full with the right CA and host name"
conf=$(profile_with "host=localhost $base sslrootcert=$certs/ca.crt" good)
sluice run --once -c "$conf" 2>"$TEST_TMP/good.err" ||
    { cat "$TEST_TMP/good.err" >&2; fail "export over verified TLS failed"; }
n=$(psql_q "SELECT count(*) FROM good.accounts")
[ "$n" -gt 0 ] || fail "no rows arrived over TLS"

log "verify-full with another CA is refused"
conf=$(profile_with "host=localhost $base sslrootcert=$certs/other.crt" badca)
rc=0
sluice run --once -c "$conf" 2>"$TEST_TMP/badca.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a server certificate from another CA was accepted"
[ "$rc" -lt 128 ] || fail "sluice crashed (exit $rc)"
grep -qi "certificate" "$TEST_TMP/badca.err" ||
    { cat "$TEST_TMP/badca.err" >&2; fail "the error does not say it is about the certificate"; }
grep -q 'profile "tls"' "$TEST_TMP/badca.err" || fail "the error does not name the profile"
assert_eq 0 "$(psql_q "SELECT count(*) FROM pg_tables WHERE schemaname = 'badca' AND tablename = 'accounts'")" \
    "nothing written after a failed verification"

log "verify-full with a host name the certificate does not name is refused"
conf=$(profile_with "host=127.0.0.1 $base sslrootcert=$certs/ca.crt" badhost)
rc=0
sluice run --once -c "$conf" 2>"$TEST_TMP/badhost.err" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "host name mismatch: exit $rc"
grep -qiE "does not match|certificate" "$TEST_TMP/badhost.err" ||
    { cat "$TEST_TMP/badhost.err" >&2; fail "the error does not explain the host name mismatch"; }
log "ok"
