#!/usr/bin/env bash
# Type=notify: through $NOTIFY_SOCKET the service sends READY=1 once its
# profiles started, WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 then
# READY=1 around SIGHUP and STOPPING=1 on SIGTERM (a datagram listener in
# place of systemd records them).
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/ops.sh"

pg_start
psql_q "CREATE DATABASE target"
make_file_data "$TEST_TMP/shop"
conf=$(write_main_conf "$TEST_TMP/etc")
file_profile shop "$TEST_TMP/shop" shop >"$TEST_TMP/etc/conf.d/10-shop.conf"

sock=$TEST_TMP/notify.sock
got=$TEST_TMP/notify.txt
: >"$got"
python3 - "$sock" "$got" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
with open(sys.argv[2], "a") as out:
    while True:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        out.write(msg.replace("\n", " ") + "\n")
        out.flush()
PY
listener=$!
stop_listener() { kill "$listener" 2>/dev/null || true; }
at_exit stop_listener
wait_until "the notify listener" '[ -S "$sock" ]'

NOTIFY_SOCKET=$sock WATCHDOG_USEC=400000 start_service "$conf" "$TEST_TMP/service.log"
wait_until "READY=1" 'grep -q "^READY=1" "$got"'
wait_until "WATCHDOG=1 (twice)" '[ "$(grep -c "^WATCHDOG=1" "$got")" -ge 2 ]'
kill -HUP "$SERVICE_PID"
wait_until "RELOADING=1 then READY=1" 'grep -A1 "^RELOADING=1" "$got" | grep_q "^READY=1"'
stop_service
grep -q "^STOPPING=1" "$got" || { cat "$got" >&2; fail "no STOPPING=1 on SIGTERM"; }
log "ok"
