#!/usr/bin/env bash
# The audit log on a full filesystem (issue 13, items 1 and 3), on a real
# small tmpfs: a state change whose record cannot be written is refused
# BEFORE it happens (policy grant, trustpoint delete, key generate leave no
# trace), signing is refused while nothing can be recorded, and when space
# is freed keyholdd recovers by itself (a torn record is cut off and
# noted): signing works again, the refused changes never happened, the
# changes made afterwards are on record (begin: and result), and the log
# verifies.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || fail "this test mounts a tmpfs and must run as root (as CI does)"
MNT="$T/mnt"
mkdir -p "$MNT"
mount -t tmpfs -o size=512k,mode=0700 tmpfs "$MNT" || fail "cannot mount a tmpfs on $MNT (the test needs mount rights)"
full_cleanup() {
  local rc=$?
  kh_stop --no-fail || rc=1
  umount "$MNT" 2> /dev/null || umount -l "$MNT" 2> /dev/null || true
  set +e # errexit would end the trap at the next line, before kh_cleanup
  (exit "$rc")
  kh_cleanup
}
trap full_cleanup EXIT

kh_config "[audit]
file = $MNT/audit.log"
kh_start
echo "full" > "$T/msg"
ok "generate" kh key generate fk --type p256
ok "trustpoint" kh trustpoint create ftp --generate p256 --subject CN=full.example.com
ok "sign before" kh sign fk --in "$T/msg" --out "$T/s"

# Fill the filesystem, then sign until the log has no room left.
dd if=/dev/zero of="$MNT/fill" bs=4k > /dev/null 2>&1 || true
full=0
for _ in $(seq 1 400); do
  if ! kh sign fk --in "$T/msg" --out "$T/s" 2> "$T/sign.err"; then full=1; break; fi
done
[ "$full" = 1 ] || fail "signing never failed on a full filesystem"
grep -q "^error: UNAVAILABLE: " "$T/sign.err" || { cat "$T/sign.err" >&2; fail "a sign that cannot be recorded is not UNAVAILABLE"; }

# State changes are refused before they happen.
expect_err UNAVAILABLE "grant on a full log" kh policy grant fk uid:4242
q="SELECT COUNT(*) FROM key_grants WHERE principal = 'uid:4242'"
if [ "${KH_STATE:-sqlite}" = postgresql ]; then n=$(kh_pg_psql -c "$q"); else n=$(sqlite3 "$T/state/keyhold.db" "$q"); fi
[ "$n" = 0 ] || fail "the refused grant was saved"
expect_err UNAVAILABLE "trustpoint delete on a full log" kh trustpoint delete ftp
expect_err UNAVAILABLE "key generate on a full log" kh key generate fk2 --type p256
expect_err UNAVAILABLE "still no signing" kh sign fk --in "$T/msg" --out "$T/s"

# Space comes back: keyholdd recovers without a restart.
rm -f "$MNT/fill"
back=0
for _ in $(seq 1 50); do
  if kh sign fk --in "$T/msg" --out "$T/s" > /dev/null 2>&1; then back=1; break; fi
  sleep 0.1
done
[ "$back" = 1 ] || fail "signing is still refused after space was freed"
ok "trustpoint kept" kh trustpoint show ftp
ok "its key kept" kh key show ftp
ok "no key fk2" kh --json key list
json_get '[k["name"] for k in d["keys"]]' < "$T/ok.out" | grep -q "fk2" && fail "the refused key generate made a key"
ok "grants" kh --json policy list fk
grep -q 4242 "$T/ok.out" && fail "the refused grant is in effect"
ok "verify after the recovery" kh audit verify

# A change now goes on record before (begin:) and after, and survives.
ok "grant after the recovery" kh policy grant fk uid:4343
kh --json audit show --limit 4096 > "$T/show.json"
python3 - "$T/show.json" <<'PY' || fail "the audit records do not show the refusals, the repair and the grant"
import json, sys
recs = json.load(open(sys.argv[1]))["records"]
m = [(r["method"], r["object"], r["result"]) for r in recs]
assert any(x[0] == "AuditRepair" for x in m), m[-10:]
i = [x[0] for x in m].index("begin:GrantKey")
assert m[i][1] == "fk" and ("GrantKey", "fk", "OK") in m[i + 1:], m[i:]
# The refused changes never started: no begin record for them.
assert not any(x[0] in ("begin:DeleteTrustpoint",) for x in m), m
PY
kh_restart
ok "grants after a restart" kh --json policy list fk
grep -q 4242 "$T/ok.out" && fail "the refused grant appeared after a restart"
grep -q 4343 "$T/ok.out" || fail "the recorded grant was lost"
ok "verify after a restart" kh audit verify
