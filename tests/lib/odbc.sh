# tests/lib/odbc.sh - ODBC configuration for tests, inside $TEST_TMP only.
# Source after tests/lib/common.sh.
#
# odbc_setup writes $TEST_TMP/odbc/odbcinst.ini (drivers from Debian's
# libsqliteodbc, odbc-postgresql and odbc-mariadb packages, by full path) and
# an empty odbc.ini, and exports ODBCSYSINI and ODBCINI so unixODBC reads
# those and nothing global. Driver names: "SQLite3", "PostgreSQL Unicode",
# "MariaDB Unicode". odbc_dsn NAME KEY=VALUE... appends a data source.

ODBC_DRIVER_DIR=${ODBC_DRIVER_DIR:-/usr/lib/x86_64-linux-gnu/odbc}

odbc_setup() {
    local dir=$TEST_TMP/odbc
    mkdir -p "$dir"
    local f
    for f in libsqlite3odbc.so psqlodbcw.so libmaodbc.so; do
        [ -e "$ODBC_DRIVER_DIR/$f" ] || fail "ODBC driver $ODBC_DRIVER_DIR/$f missing (install libsqliteodbc, odbc-postgresql, odbc-mariadb)"
    done
    cat >"$dir/odbcinst.ini" <<INI
[SQLite3]
Description=SQLite3 ODBC Driver
Driver=$ODBC_DRIVER_DIR/libsqlite3odbc.so

[PostgreSQL Unicode]
Description=PostgreSQL ODBC driver (Unicode)
Driver=$ODBC_DRIVER_DIR/psqlodbcw.so

[MariaDB Unicode]
Description=MariaDB Connector/ODBC (Unicode)
Driver=$ODBC_DRIVER_DIR/libmaodbc.so
INI
    : >"$dir/odbc.ini"
    export ODBCSYSINI=$dir ODBCINI=$dir/odbc.ini
}

odbc_dsn() {
    local name=$1
    shift
    {
        echo "[$name]"
        local kv
        for kv in "$@"; do echo "$kv"; done
        echo
    } >>"$ODBCINI"
}
