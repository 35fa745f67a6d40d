#!/usr/bin/env bash
# `sluice check` exits non-zero on every class of configuration error, naming
# the drop-in file and line; a good configuration exits 0.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

main=$(write_main_conf "$TEST_TMP")
confd=$TEST_TMP/conf.d

# check_fails NAME EXPECTED_EXIT "FILE:LINE" TEXT - the drop-in NAME.conf
# (written by the caller) fails with the exit code, place and text.
check_fails() {
    local name=$1 want_rc=$2 where=$3 text=$4 rc=0
    sluice check -c "$main" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || rc=$?
    log "$name: exit $rc: $(cat "$TEST_TMP/err")"
    assert_eq "$want_rc" "$rc" "$name: exit code"
    grep -qF "$where" "$TEST_TMP/err" || fail "$name: message does not name $where"
    grep -qF "$text" "$TEST_TMP/err" || fail "$name: message does not say '$text'"
    rm -f "$confd"/*.conf
}

# A profile whose plugins exist in every build: the example counter source
# and the memory transport, with sink-pg only named (check loads it, but its
# init does no I/O).
good_profile() {
    cat <<CONF
profiles = (
  {
    name = "numbers";
    entities = ["numbers"];
    source = { plugin = "counter"; rows = 10; };
    sink = { plugin = "pg"; conninfo = "host=127.0.0.1 dbname=nowhere"; };
  }
);
CONF
}

good_profile >"$confd/10-good.conf"
sed -i 's/rows = 10;/rows = 10;;;; = ;/' "$confd/10-good.conf"
check_fails syntax 3 "10-good.conf:5:" "syntax error"

good_profile >"$confd/20-unknown.conf"
sed -i 's/entities = /entitys = /' "$confd/20-unknown.conf"
check_fails unknown-key 3 "20-unknown.conf:4:" "unknown key 'entitys'"

good_profile >"$confd/30-type.conf"
sed -i 's/entities = \["numbers"\];/entities = ["numbers"];\n    retry_count = "twelve";/' "$confd/30-type.conf"
check_fails wrong-type 3 "30-type.conf:5:" "'retry_count' must be an integer"

good_profile >"$confd/40-plugin.conf"
sed -i 's/plugin = "counter"/plugin = "nosuchthing"/' "$confd/40-plugin.conf"
check_fails unknown-plugin 4 "40-plugin.conf:5:" "no plugin file source-nosuchthing.so"

good_profile >"$confd/50-missing.conf"
sed -i '/sink = /d' "$confd/50-missing.conf"
check_fails missing-key 3 "50-missing.conf:2:" "missing required key 'sink'"

good_profile >"$confd/60-pluginkey.conf"
sed -i 's/rows = 10;/rows = 10; colour = "red";/' "$confd/60-pluginkey.conf"
check_fails plugin-key 3 "60-pluginkey.conf:5:" "unknown key 'colour'"

good_profile >"$confd/70-init.conf"
sed -i 's/rows = 10;/rows = -1;/' "$confd/70-init.conf"
check_fails plugin-init 4 "70-init.conf:5:" 'profile "numbers": source counter: init: rows = -1 is negative'

good_profile >"$confd/80-good.conf"
out=$(sluice check -c "$main") || fail "a good configuration did not pass: $out"
case $out in
*"configuration OK (1 profile, 3 plugins)"*) ;;
*) fail "unexpected output of a good check: $out" ;;
esac
log "good configuration: $out"
