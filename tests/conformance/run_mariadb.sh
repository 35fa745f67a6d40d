#!/usr/bin/env bash
# conformance.mariadb - the sink conformance suite against a throwaway MariaDB
# through sink-mysql (MariaDB Connector/C).
# Usage: run_mariadb.sh path/to/sink_conformance
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/mariadb.sh"
mariadb_start
export SLUICE_CONFORMANCE_TARGET=mariadb
export SLUICE_CONFORMANCE_CONNINFO="host=$MARIADB_HOST port=$MARIADB_PORT user=$MARIADB_USER password=$MARIADB_PASSWORD database=$MARIADB_DATABASE"
"$1"
