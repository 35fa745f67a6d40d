#!/usr/bin/env bash
# conformance.odbc_mariadb - the sink conformance suite through sink-odbc and
# MariaDB Connector/ODBC (odbc-mariadb, libmaodbc.so) into a throwaway MariaDB.
# Usage: run_odbc_mariadb.sh path/to/sink_conformance
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/mariadb.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/odbc.sh"
odbc_setup
mariadb_start
export SLUICE_CONFORMANCE_TARGET=odbc_mariadb
export SLUICE_CONFORMANCE_CONNINFO="host=$MARIADB_HOST port=$MARIADB_PORT user=$MARIADB_USER password=$MARIADB_PASSWORD database=$MARIADB_DATABASE"
"$1"
