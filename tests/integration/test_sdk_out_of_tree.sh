#!/usr/bin/env bash
# A plugin built out of tree against the INSTALLED SDK (CMake package and
# pkg-config) loads into sluice and exports rows into PostgreSQL.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

prefix=$TEST_TMP/prefix
log "installing the build into $prefix"
cmake --install "$SLUICE_BUILD_DIR" --prefix "$prefix" >"$TEST_TMP/install.log" 2>&1 ||
    { cat "$TEST_TMP/install.log" >&2; fail "cmake --install failed"; }

# 1. CMake: find_package(Sluice) + Sluice::sdk, the example's own CMakeLists.
cmake -S "$SLUICE_SOURCE_DIR/sdk/examples/source-counter" -B "$TEST_TMP/counter-build" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$TEST_TMP/counter-cfg.log" 2>&1 ||
    { cat "$TEST_TMP/counter-cfg.log" >&2; fail "configuring the example against the installed SDK failed"; }
cmake --build "$TEST_TMP/counter-build" >"$TEST_TMP/counter-build.log" 2>&1 ||
    { cat "$TEST_TMP/counter-build.log" >&2; fail "building the example out of tree failed"; }
so=$TEST_TMP/counter-build/source-counter.so
[ -f "$so" ] || fail "the out-of-tree build made no source-counter.so"
# only the entry function is exported
exported=$(nm -D --defined-only "$so" | awk '$2 == "T" { print $3 }' | tr '\n' ' ')
assert_eq "sluice_plugin_entry " "$exported" "exported functions of the example plugin"
# the package tells where plugins are installed
grep -q 'set(SLUICE_PLUGIN_DIR' "$prefix"/lib*/cmake/Sluice/SluiceConfig.cmake ||
    fail "SluiceConfig.cmake does not set SLUICE_PLUGIN_DIR"

# 2. pkg-config: Cflags and the plugindir variable.
export PKG_CONFIG_PATH=$(ls -d "$prefix"/lib*/pkgconfig | sed -n 1p)
cflags=$(pkg-config --cflags sluice-sdk) || fail "pkg-config does not know sluice-sdk"
plugindir=$(pkg-config --variable=plugindir sluice-sdk)
case $plugindir in
"$prefix"/*/sluice/plugins) ;;
*) fail "pkg-config plugindir is '$plugindir', not inside $prefix" ;;
esac
cat >"$TEST_TMP/uses_sdk.c" <<'C'
#include <sluice/sluice.h>
int abi_major(void) { return SLUICE_ABI_MAJOR; }
C
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $cflags -c "$TEST_TMP/uses_sdk.c" -o "$TEST_TMP/uses_sdk.o" ||
    fail "compiling against pkg-config --cflags sluice-sdk failed"

# 3. Run it: the out-of-tree source with the build's transport and sink.
plugins=$TEST_TMP/plugins
mkdir -p "$plugins"
install -m 0755 "$so" "$SLUICE_PLUGIN_PATH/sink-pg.so" "$SLUICE_PLUGIN_PATH/transport-memory.so" "$plugins/"
chmod 0755 "$plugins"

pg_start
main=$(write_main_conf "$TEST_TMP/sluice")
cat >"$TEST_TMP/sluice/conf.d/10-counter.conf" <<CONF
profiles = (
  {
    name = "counter";
    entities = ["numbers"];
    source = { plugin = "counter"; rows = 2500; };
    sink = { plugin = "pg"; conninfo = "$PG_CONNINFO"; };
    target_schema = "sdk";
    batch_size = 1000;
  }
);
CONF

SLUICE_PLUGIN_PATH=$plugins sluice check -c "$main" || fail "sluice check refused the out-of-tree plugin"
SLUICE_PLUGIN_PATH=$plugins sluice plugins -c "$main" | grep_q "source-counter.so" ||
    fail "sluice plugins does not list the out-of-tree plugin"
SLUICE_PLUGIN_PATH=$plugins sluice run --once -c "$main" || fail "sluice run --once failed"

assert_eq 2500 "$(psql_q 'SELECT count(*) FROM sdk.numbers')" "rows exported"
assert_eq "$(psql_q 'SELECT sum(i::numeric * i) FROM generate_series(1, 2500) i')" \
    "$(psql_q 'SELECT sum(square) FROM sdk.numbers')" "sum of squares"
assert_eq "number 2500" "$(psql_q 'SELECT label FROM sdk.numbers WHERE id = 2500')" "label of the last row"

# a second run changes nothing: the position resumes after the last row
SLUICE_PLUGIN_PATH=$plugins sluice run --once -c "$main" || fail "second sluice run --once failed"
assert_eq 2500 "$(psql_q 'SELECT count(*) FROM sdk.numbers')" "rows after a second run"
log "out-of-tree plugin exported 2500 rows"
