#!/usr/bin/env bash
# Refusals cannot flood the audit log (issue 13, item 4): a uid with no
# role sends thousands of requests. With rate = 0 (no limit for principals
# with a role) it is still held to the small default rate of peers with no
# role, so most of its requests get RESOURCE_EXHAUSTED and the rest
# PERMISSION_DENIED; both kinds of refusal go on record as a few records
# per second with a count, and the counts add up to every refusal it got.
# Other principals' records are written as before, and the log verifies.
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
limited=0
t0=$(date +%s%N)
for _ in $(seq 1 20); do
  as_user khflood "$PY" "$KH_SRC/tests/integration/kh_wire.py" --socket "$SOCK" pipeline 100 ListKeys > "$T/pipe.json" \
    || fail "the flood client failed"
  n=$(json_get 'sum(d["codes"].get(c, 0) for c in ("PERMISSION_DENIED", "RESOURCE_EXHAUSTED")) + (1 if d["after"] in ("PERMISSION_DENIED", "RESOURCE_EXHAUSTED") else 0)' < "$T/pipe.json")
  [ "$n" = 101 ] || { cat "$T/pipe.json" >&2; fail "not every request of the flood was refused"; }
  r=$(json_get 'd["codes"].get("RESOURCE_EXHAUSTED", 0) + (1 if d["after"] == "RESOURCE_EXHAUSTED" else 0)' < "$T/pipe.json")
  total=$((total + n))
  limited=$((limited + r))
done
secs=$(( ($(date +%s%N) - t0) / 1000000000 + 1 ))
log "flood: $total refusals ($limited over the no-role rate) in about $secs s"
# 2020 requests in a few seconds at 5/s (burst 10): nearly all are over it.
[ "$limited" -gt 1500 ] || fail "a peer with no role was not held to the default rate ($limited of $total limited)"
ok "an admin is still served and recorded" kh key list
kh_stop
after=$(wc -l < "$LOG")

python3 - "$LOG" "uid:$SEC_UID" "$total" "$secs" <<'PY' || fail "the refusals were not aggregated"
import re, sys
path, who, total, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
recs = [l for l in open(path) if " who=%s " % who in l]
counts = [int(re.search(r" count=(\d+) ", l).group(1)) for l in recs]
print("records for %s: %d, counts sum %d (of %d refusals)" % (who, len(recs), sum(counts), total), file=sys.stderr)
assert all(" code=PERMISSION_DENIED " in l or " code=RESOURCE_EXHAUSTED " in l for l in recs)
assert sum(counts) == total, (sum(counts), total)
# One record when a burst starts and one per second with its count.
assert len(recs) <= 4 * secs + 4, len(recs)
PY
[ $((after - before)) -lt 200 ] || fail "the flood added $((after - before)) lines to the audit log"
kh_start
ok "verify" kh audit verify
