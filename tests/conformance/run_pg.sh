#!/usr/bin/env bash
# conformance.pg - the sink conformance suite against a throwaway PostgreSQL.
# Usage: run_pg.sh path/to/sink_conformance
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
pg_start
export SLUICE_CONFORMANCE_TARGET=pg
export SLUICE_CONFORMANCE_CONNINFO="$PG_CONNINFO"
"$1"
