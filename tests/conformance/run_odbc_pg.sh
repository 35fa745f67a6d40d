#!/usr/bin/env bash
# conformance.odbc_pg - the sink conformance suite through sink-odbc and
# psqlODBC (odbc-postgresql, psqlodbcw.so) into a throwaway PostgreSQL.
# Usage: run_odbc_pg.sh path/to/sink_conformance
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/lib/odbc.sh"
odbc_setup
pg_start
export SLUICE_CONFORMANCE_TARGET=odbc_pg
export SLUICE_CONFORMANCE_CONNINFO="$PG_CONNINFO"
"$1"
