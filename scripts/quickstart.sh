#!/usr/bin/env bash
# The quick start: install what is needed, build, and export a generated CRM
# sample (accounts, contacts, opportunities + change files with inserts,
# updates and deletes) into a throwaway PostgreSQL on 127.0.0.1, with the
# initial sync followed by the incremental changes (`sluice run --once`).
#
# Everything lands in ./quickstart/ (data, config, state, the server's files).
# The server keeps running afterwards so you can look at the rows; the script
# prints how to connect and how to stop it.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
qs=${SLUICE_QUICKSTART_DIR:-$src/quickstart}

bash "$src/scripts/install-deps.sh"
bash "$src/scripts/build.sh"
bin=$src/build/runtime/sluice

# A fresh PostgreSQL of our own (stop one left by an earlier quick start).
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ -f "$qs/pg/data/postmaster.pid" ]; then
    as_pg "$pgbin/pg_ctl" -D "$qs/pg/data" -m fast stop >/dev/null 2>&1 || true
fi
rm -rf "$qs"
mkdir -p "$qs/pg" "$qs/conf.d" "$qs/state"
chmod 0700 "$qs/state"
[ "$(id -u)" = 0 ] && chown postgres: "$qs/pg"
as_pg "$pgbin/initdb" -D "$qs/pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$qs/pg/initdb.log"
port=${SLUICE_QUICKSTART_PORT:-55432}
as_pg "$pgbin/pg_ctl" -D "$qs/pg/data" -l "$qs/pg/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$qs/pg" start >/dev/null
psql -X -q -h 127.0.0.1 -p "$port" -U postgres -c "CREATE DATABASE reporting" postgres

# Sample data: 500 accounts with their contacts and opportunities, then three
# change files.
python3 "$src/scripts/gen-crm-data.py" --out "$qs/data" --accounts 500 --changes 300 \
    --change-files 3 --seed 42 >/dev/null

cat >"$qs/sluice.conf" <<CONF
# Main file: where state lives and where the drop-ins are.
state_dir = "$qs/state";
conf_dir = "$qs/conf.d";
log_level = "info";
CONF
cat >"$qs/conf.d/10-crm.conf" <<CONF
# One export profile: the CRM sample files -> PostgreSQL schema "crm".
profiles = (
  {
    name = "crm";
    entities = [ "accounts", "contacts", "opportunities" ];
    source = { plugin = "file"; path = "$qs/data"; };
    sink = { plugin = "pg"; conninfo = "host=127.0.0.1 port=$port user=postgres dbname=reporting"; };
    target_schema = "crm";
  }
);
CONF

"$bin" check -c "$qs/sluice.conf"
"$bin" run --once -c "$qs/sluice.conf"
"$bin" status -c "$qs/sluice.conf"

echo
echo "Rows in the target (PostgreSQL 127.0.0.1:$port, database reporting, schema crm):"
psql -X -h 127.0.0.1 -p "$port" -U postgres reporting -c "
  SELECT 'accounts' AS entity, count(*) AS rows FROM crm.accounts
  UNION ALL SELECT 'contacts', count(*) FROM crm.contacts
  UNION ALL SELECT 'opportunities', count(*) FROM crm.opportunities"
n=$(psql -X -A -t -h 127.0.0.1 -p "$port" -U postgres reporting -c "SELECT count(*) FROM crm.accounts")
[ "$n" -gt 0 ] || { echo "quickstart: no rows arrived in the target" >&2; exit 1; }
cat <<MSG

Look around:  psql -h 127.0.0.1 -p $port -U postgres reporting
Stop server:  $( [ "$(id -u)" = 0 ] && echo "runuser -u postgres -- " )$pgbin/pg_ctl -D $qs/pg/data stop
MSG
