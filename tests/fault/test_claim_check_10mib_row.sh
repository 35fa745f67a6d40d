#!/usr/bin/env bash
# A 10 MiB row travels through the claim check and arrives intact: with the
# memory transport encoding its messages like a broker (serialize = true) and
# limited to 4 MiB per message, the batch holding the row
# goes to the spill store, only its reference crosses the transport, the
# worker fetches it, and the target holds the same bytes (md5). The blob is
# deleted once applied.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"
source "$SLUICE_SOURCE_DIR/tests/fault/fault_lib.sh"

pg_start
psql_q "CREATE DATABASE target"
data=$TEST_TMP/data
make_items "$data" 50
big_md5=$(python3 - "$data" <<'PY'
import hashlib, random, string, sys
d = sys.argv[1]
random.seed(10)
big = "".join(random.choices(string.ascii_letters + string.digits, k=10 * 1024 * 1024))
with open(f"{d}/items.csv", "a") as f:
    f.write(f"1000,{big},1\n")
print(hashlib.md5(big.encode()).hexdigest())
PY
)
conf=$(write_main_conf "$TEST_TMP/etc")
cat >"$TEST_TMP/etc/conf.d/10-big.conf" <<CONF
profiles = ( {
  name = "big";
  entities = [ "items" ];
  source = { plugin = "file"; path = "$data"; };
  transport = { plugin = "memory"; serialize = true; max_message_size = 4194304; };
  sink = { plugin = "pg"; conninfo = "$PG_CONNINFO dbname=target"; };
  target_schema = "crm";
  workers = 2;
} );
CONF

sluice run --once -c "$conf" 2>"$TEST_TMP/run.err" || { tail -n 20 "$TEST_TMP/run.err" >&2; fail "run failed"; }
got=$(PGDATABASE=target psql_q "SELECT md5(name) || ' ' || length(name) FROM crm.items WHERE id = 1000")
assert_eq "$big_md5 10485760" "$got" "the 10 MiB value in the target"
compare_target "$data" "all rows"
spilled=$(counter "$TEST_TMP/etc" big spilled_batches)
bytes=$(counter "$TEST_TMP/etc" big spilled_bytes)
[ "$spilled" -ge 1 ] || fail "no batch went through the claim check"
[ "$bytes" -gt 10485760 ] || fail "spilled bytes $bytes: the big batch did not go through the spill store"
assert_eq 0 "$(blob_count "$TEST_TMP/etc/state")" "spill blobs left after the run"
log "ok ($spilled claim-checked batches, $bytes bytes)"
