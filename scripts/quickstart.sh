#!/usr/bin/env bash
# The quick start: install what is needed, build, and export a generated CRM
# sample (accounts, contacts, opportunities + change files with inserts,
# updates and deletes) into an embedded SQLite database through the ODBC sink
# (no database server to set up): the initial sync followed by the
# incremental changes, `sluice run --once`.
#
# Everything lands in ./quickstart/: the sample data, the config, the state
# store and the target, quickstart/export.db (read it with sqlite3).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
qs=${SLUICE_QUICKSTART_DIR:-$src/quickstart}

bash "$src/scripts/install-deps.sh"
bash "$src/scripts/build.sh"
bin=$src/build/runtime/sluice

rm -rf "$qs"
mkdir -p "$qs/conf.d" "$qs/state"
chmod 0700 "$qs/state"

# Sample data: 500 accounts with their contacts and opportunities, then three
# change files.
python3 "$src/scripts/gen-crm-data.py" --out "$qs/data" --accounts 500 --changes 300 \
    --change-files 3 --seed 42 >/dev/null

# The SQLite ODBC driver from Debian's libsqliteodbc, named by its path so no
# odbcinst.ini entry is needed.
driver=$(dpkg -L libsqliteodbc | grep '/libsqlite3odbc\.so$' | sed -n 1p)
[ -n "$driver" ] || { echo "quickstart: libsqlite3odbc.so not found" >&2; exit 1; }

cat >"$qs/sluice.conf" <<CONF
# Main file: where state lives and where the drop-ins are.
state_dir = "$qs/state";
conf_dir = "$qs/conf.d";
log_level = "info";
CONF
cat >"$qs/conf.d/10-crm.conf" <<CONF
# One export profile: the CRM sample files -> an SQLite file through ODBC.
profiles = (
  {
    name = "crm";
    entities = [ "accounts", "contacts", "opportunities" ];
    source = { plugin = "file"; path = "$qs/data"; };
    sink = { plugin = "odbc"; connection_string = "Driver=$driver;Database=$qs/export.db"; };
    workers = 1;   # SQLite has one writer at a time
  }
);
CONF

"$bin" check -c "$qs/sluice.conf"
"$bin" run --once -c "$qs/sluice.conf"
"$bin" status -c "$qs/sluice.conf"

echo
echo "Rows in the target ($qs/export.db):"
sqlite3 -header -column "$qs/export.db" "
  SELECT 'accounts' AS entity, count(*) AS rows FROM accounts
  UNION ALL SELECT 'contacts', count(*) FROM contacts
  UNION ALL SELECT 'opportunities', count(*) FROM opportunities"
n=$(sqlite3 "$qs/export.db" "SELECT count(*) FROM accounts")
[ "$n" -gt 0 ] || { echo "quickstart: no rows arrived in the target" >&2; exit 1; }
echo
echo "Look around:  sqlite3 $qs/export.db"
