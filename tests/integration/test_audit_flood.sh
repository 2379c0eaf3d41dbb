#!/usr/bin/env bash
# Refusals cannot flood the audit log (issue 13, item 4): a uid with no
# role sends thousands of requests (rate = 0, no per-principal limit); its
# refusals go on record as a few records per second with a count, and the
# counts add up to every refusal it got. Other principals' records are
# written as before, and the log verifies.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"

kh_sec_user khflood
# The system interpreter: a per-user one (pyenv) is not for the test user.
PY=/usr/bin/python3
[ -x "$PY" ] || fail "no /usr/bin/python3"
# The socket is the test group's, so the role-less user can connect.
KH_SERVICE_EXTRA="socket_group = khflood" kh_config
kh_start
LOG="$T/state/audit.log"
before=$(wc -l < "$LOG")

total=0
t0=$(date +%s%N)
for _ in $(seq 1 20); do
  as_user khflood "$PY" "$KH_SRC/tests/integration/kh_wire.py" --socket "$SOCK" pipeline 100 ListKeys > "$T/pipe.json" \
    || fail "the flood client failed"
  n=$(json_get 'd["codes"].get("PERMISSION_DENIED", 0) + (1 if d["after"] == "PERMISSION_DENIED" else 0)' < "$T/pipe.json")
  [ "$n" = 101 ] || { cat "$T/pipe.json" >&2; fail "not every request of the flood was refused"; }
  total=$((total + n))
done
secs=$(( ($(date +%s%N) - t0) / 1000000000 + 1 ))
log "flood: $total refusals in about $secs s"
ok "an admin is still served and recorded" kh key list
kh_stop
after=$(wc -l < "$LOG")

python3 - "$LOG" "uid:$SEC_UID" "$total" "$secs" <<'PY' || fail "the refusals were not aggregated"
import re, sys
path, who, total, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
recs = [l for l in open(path) if " who=%s " % who in l]
counts = [int(re.search(r" count=(\d+) ", l).group(1)) for l in recs]
print("records for %s: %d, counts sum %d (of %d refusals)" % (who, len(recs), sum(counts), total), file=sys.stderr)
assert all(" code=PERMISSION_DENIED " in l for l in recs)
assert sum(counts) == total, (sum(counts), total)
# One record when a burst starts and one per second with its count.
assert len(recs) <= 2 * secs + 2, len(recs)
PY
[ $((after - before)) -lt 200 ] || fail "the flood added $((after - before)) lines to the audit log"
kh_start
ok "verify" kh audit verify
