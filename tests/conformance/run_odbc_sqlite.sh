#!/usr/bin/env bash
# conformance.odbc_sqlite - the sink conformance suite through sink-odbc and
# the SQLite ODBC driver (libsqliteodbc) into a SQLite file: no server.
# Usage: run_odbc_sqlite.sh path/to/sink_conformance
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/odbc.sh"
odbc_setup
mkdir -p "$TEST_TMP/sqlite"
odbc_dsn sluice_sqlite "Driver=SQLite3" "Database=$TEST_TMP/sqlite/main.db"
export SLUICE_CONFORMANCE_TARGET=odbc_sqlite
export SLUICE_CONFORMANCE_CONNINFO="dsn=sluice_sqlite database=$TEST_TMP/sqlite/main.db"
# The SQLite driver reads odbc.ini through unixODBC's libodbcinst, which is
# unloaded with the driver while its ini cache (never freed) is still
# allocated: LeakSanitizer then reports an anonymous leak. Keeping the library
# loaded for the whole process makes that memory reachable.
# (found by path, not with `ldconfig -p`: another test's `dpkg -i` may be
# rewriting the linker cache at this moment, and a failed command here would
# end the script before the suite runs)
odbcinst_lib=
for f in /usr/lib/*/libodbcinst.so.2 /usr/lib/libodbcinst.so.2; do
    if [ -e "$f" ]; then
        odbcinst_lib=$f
        break
    fi
done
if [ -n "$odbcinst_lib" ]; then
    export LD_PRELOAD="$odbcinst_lib${LD_PRELOAD:+ $LD_PRELOAD}"
    export ASAN_OPTIONS="verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fi
"$1"
