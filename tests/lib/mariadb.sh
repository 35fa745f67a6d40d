# tests/lib/mariadb.sh - a throwaway MariaDB on 127.0.0.1 for tests.
# Source after tests/lib/common.sh (it uses $TEST_TMP, at_exit, fail, log).
#
# mariadb_start [name] starts mariadbd from Debian's mariadb-server package in
# $TEST_TMP/<name>, as the `mysql` system user when run as root, with real
# authentication (never --skip-grant-tables) and exports:
#   MARIADB_HOST=127.0.0.1 MARIADB_PORT MARIADB_SOCKET
#   MARIADB_USER=sluice MARIADB_PASSWORD (a random password) MARIADB_DATABASE=sluice
# The user may create databases (a sink's target schema is a database).
# mariadb_q SQL runs SQL as root over the socket (tab-separated, no headers).

_mariadb_as_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u mysql -- "$@"
    else
        "$@"
    fi
}

mariadb_start() {
    local name=${1:-mariadb}
    local dir=$TEST_TMP/$name
    mkdir -p "$dir/data"
    [ "$(id -u)" = 0 ] && chown -R mysql: "$dir"
    _mariadb_as_user mariadb-install-db --no-defaults --datadir="$dir/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1 \
        || { cat "$dir/install.log" >&2; fail "mariadb-install-db failed"; }
    local port tries=0 pid
    while :; do
        port=$((20000 + RANDOM % 30000))
        _mariadb_as_user mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" \
            --pid-file="$dir/mysqld.pid" --port="$port" --bind-address=127.0.0.1 \
            --log-error="$dir/server.log" --innodb-buffer-pool-size=64M \
            --innodb-flush-log-at-trx-commit=2 --innodb-log-file-size=64M \
            --max-allowed-packet=64M --local-infile=1 --character-set-server=utf8mb4 \
            --collation-server=utf8mb4_bin --skip-name-resolve >/dev/null 2>&1 &
        pid=$!
        local waited=0
        while [ $waited -lt 120 ]; do
            if mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot -e 'SELECT 1' \
                >/dev/null 2>&1; then
                break 2
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
            waited=$((waited + 1))
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        tries=$((tries + 1))
        [ $tries -lt 5 ] || { cat "$dir/server.log" >&2; fail "MariaDB did not start"; }
    done
    export MARIADB_HOST=127.0.0.1 MARIADB_PORT=$port MARIADB_SOCKET=$dir/mysqld.sock
    export MARIADB_USER=sluice MARIADB_DATABASE=sluice
    MARIADB_PASSWORD="pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    export MARIADB_PASSWORD
    mariadb_q "CREATE DATABASE sluice CHARACTER SET utf8mb4;
               CREATE USER 'sluice'@'127.0.0.1' IDENTIFIED BY '$MARIADB_PASSWORD';
               GRANT ALL PRIVILEGES ON *.* TO 'sluice'@'127.0.0.1';" \
        || fail "cannot create the MariaDB test user"
    # stop the server itself (its pid file), not only the runuser wrapper
    eval "_mariadb_stop_$name() { _mariadb_stop '$dir' $pid; }"
    at_exit "_mariadb_stop_$name"
    log "MariaDB $name on 127.0.0.1:$port"
}

_mariadb_stop() { # dir wrapper-pid
    local spid
    spid=$(cat "$1/mysqld.pid" 2>/dev/null || true)
    [ -n "$spid" ] && kill "$spid" 2>/dev/null
    local i
    for i in $(seq 1 100); do
        [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$spid" ] && kill -9 "$spid" 2>/dev/null
    kill "$2" 2>/dev/null
    wait "$2" 2>/dev/null
    return 0
}

mariadb_q() {
    mariadb --no-defaults --socket="$MARIADB_SOCKET" -uroot -N -B -e "$1"
}
