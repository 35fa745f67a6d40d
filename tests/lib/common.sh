# tests/lib/common.sh - sourced by integration and fault tests.
#
# Gives each test a temporary folder (removed on exit unless SLUICE_KEEP_TMP=1)
# and throwaway database servers on loopback inside it, run from Debian's
# packages. PostgreSQL refuses to run as root, so as root the servers run as
# the `postgres` system user (created by the package).
#
# Environment from CTest: SLUICE_BIN, SLUICE_PLUGIN_PATH, SLUICE_SOURCE_DIR,
# SLUICE_BUILD_DIR.

set -euo pipefail

# grep_q ARGS... - `grep -q` for the end of a pipe: reads all its input, so the
# command before it never dies of SIGPIPE (which pipefail would count as a
# failure when grep -q stops reading at the first match)
grep_q() { grep "$@" >/dev/null; }

: "${SLUICE_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${SLUICE_BUILD_DIR:=$SLUICE_SOURCE_DIR/build}"
: "${SLUICE_BIN:=$SLUICE_BUILD_DIR/runtime/sluice}"
: "${SLUICE_PLUGIN_PATH:=$SLUICE_BUILD_DIR/plugins}"
export SLUICE_BIN SLUICE_PLUGIN_PATH SLUICE_SOURCE_DIR SLUICE_BUILD_DIR

TEST_NAME=$(basename "$0" .sh)
TEST_TMP=$(mktemp -d "/tmp/sluice-${TEST_NAME}.XXXXXX")
chmod 0755 "$TEST_TMP"
_cleanup_fns=()

_on_exit() {
    local rc=$?
    local fn
    for ((i = ${#_cleanup_fns[@]} - 1; i >= 0; i--)); do
        fn=${_cleanup_fns[$i]}
        $fn || true
    done
    if [ "$rc" -eq 0 ] && [ "${SLUICE_KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$TEST_TMP"
    else
        echo "test $TEST_NAME: temporary files kept in $TEST_TMP" >&2
    fi
    exit "$rc"
}
trap _on_exit EXIT
at_exit() { _cleanup_fns+=("$1"); }

fail() {
    echo "FAIL: $TEST_NAME: $*" >&2
    exit 1
}

log() { echo "[$TEST_NAME] $*" >&2; }

assert_eq() { # expected actual message
    if [ "$1" != "$2" ]; then
        fail "$3: expected '$1', got '$2'"
    fi
}

# Run a command as the database servers' user.
as_db_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# ---- PostgreSQL ------------------------------------------------------------

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

# pg_start [name] - start a PostgreSQL on 127.0.0.1 in $TEST_TMP/pg-<name>.
# Exports PGHOST, PGPORT, PGUSER=postgres, PGDATABASE=postgres and
# PG_CONNINFO for sluice. wal_level=logical so CDC tests can use it.
pg_start() {
    local name=${1:-pg}
    local dir=$TEST_TMP/$name
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_db_user "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; fail "initdb failed"; }
    local port tries=0
    while :; do
        port=$((20000 + RANDOM % 30000))
        if as_db_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir \
                -c wal_level=logical -c max_wal_senders=10 -c max_replication_slots=10 \
                -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
            start >/dev/null 2>&1; then
            break
        fi
        tries=$((tries + 1))
        [ $tries -lt 5 ] || { cat "$dir/server.log" >&2; fail "PostgreSQL did not start"; }
    done
    export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
    export PG_CONNINFO="host=127.0.0.1 port=$port user=postgres dbname=postgres"
    eval "PG_DIR_${name//-/_}=$dir"
    at_exit "_pg_stop_$name"
    eval "_pg_stop_$name() { as_db_user '$PG_BIN/pg_ctl' -D '$dir/data' -m immediate stop >/dev/null 2>&1; }"
    log "PostgreSQL $name on 127.0.0.1:$port"
}

# pg_ctl_of name args... - run pg_ctl on a started server (restart, stop, start)
pg_ctl_of() {
    local name=$1
    shift
    local dir=$TEST_TMP/$name
    as_db_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w "$@"
}

# psql_q SQL - run SQL on $PGDATABASE, unaligned tuples only, stop on error.
psql_q() {
    psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"
}

# ---- sluice ----------------------------------------------------------------

# In the foreground only: `sluice ... &` would background a subshell, and $!
# would not be sluice's pid. Start background runs as "$SLUICE_BIN" ... &.
sluice() {
    "$SLUICE_BIN" "$@"
}

# write_main_conf DIR - a main config file in DIR with state in DIR/state and
# drop-ins in DIR/conf.d. Prints its path.
write_main_conf() {
    local dir=$1
    mkdir -p "$dir/conf.d" "$dir/state"
    chmod 0700 "$dir/state"
    cat >"$dir/sluice.conf" <<CONF
state_dir = "$dir/state";
conf_dir = "$dir/conf.d";
log_level = "${SLUICE_LOG_LEVEL:-info}";
CONF
    echo "$dir/sluice.conf"
}
