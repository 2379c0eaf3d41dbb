#!/usr/bin/env bash
# The audit log against offline tampering (issue 13, item 5): the last
# checkpoint's sequence number, offset and hash are kept in the token (a
# CKO_DATA object) and in the state database. With keyholdd stopped,
# cutting the log back (a signed checkpoint included), appending a forged
# record with a correct prev hash, or deleting the file is refused at
# start (on_tamper = refuse) or recorded and reported by every later
# verify (on_tamper = report, the default). Also: verify names every
# break, not only the first, and a running verify reads the whole file.
. "$(dirname "$0")/lib.sh"

LOG="$T/state/audit.log"
conf() { kh_config "[audit]
checkpoint_records = 5
on_tamper = $1"; }

# start_refused DESC TAG: keyholdd must refuse to start, naming TAG's reason.
start_refused() {
  local desc=$1 words=$2 rc=0
  # At most 20 s: a keyholdd that adopts the log serves and never exits.
  timeout 20 "$KEYHOLDD" --config "$T/keyhold.conf" --foreground > "$T/refused.log" 2>&1 || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$desc: keyholdd started on a tampered log"
  grep -q "$words" "$T/refused.log" || { cat "$T/refused.log" >&2; fail "$desc: the refusal does not say '$words'"; }
}

conf refuse
kh_start
echo "tamper" > "$T/msg"
ok "generate" kh key generate tk --type p256
for i in 1 2 3 4 5 6 7 8; do ok "sign $i" kh sign tk --in "$T/msg" --out "$T/s"; done
kh_stop
tail -n 1 "$LOG" | grep -q "method=Checkpoint .* sig=" || fail "the log does not end with a checkpoint"
cp "$LOG" "$T/pristine.log"
[ -n "$(kh_state_sql 'SELECT value FROM audit_anchors')" ] || fail "no anchor in the state database"

# Cut back: the last three records, the final signed checkpoint among them.
head -n -3 "$T/pristine.log" > "$LOG"
start_refused "a cut log" "ends .* before checkpoint"
# The same with the database's copy of the anchor gone: the token's holds.
kh_state_sql 'DELETE FROM audit_anchors'
start_refused "a cut log, database anchor deleted" "ends .* before checkpoint"
# Deleted altogether.
rm -f "$LOG"
start_refused "a deleted log" "ends (0 bytes) before checkpoint"
# A forged record appended with a correct prev hash (and sequence number).
cp "$T/pristine.log" "$LOG"
python3 - "$LOG" <<'PY'
import hashlib, re, sys
p = sys.argv[1]; last = open(p).read().splitlines()[-1]
seq = int(re.match(r"v1 seq=(\d+) ", last).group(1)) + 1
prev = hashlib.sha256(last.encode()).hexdigest()
open(p, "a").write("v1 seq=%d ts=2030-01-01T00:00:00.000000Z who=uid:0 method=Sign obj=tk code=OK dur_us=1 count=1 prev=%s\n" % (seq, prev))
PY
start_refused "a forged record appended" "were added while it was stopped"
# A record edited in place (same length) before the last checkpoint.
cp "$T/pristine.log" "$LOG"
python3 - "$LOG" <<'PY'
import sys
p = sys.argv[1]; lines = open(p).read().splitlines(True)
lines[-1] = lines[-1].replace(" dur_us=0 ", " dur_us=1 ", 1) if " dur_us=0 " in lines[-1] else lines[-1][:-3] + ("0" if lines[-1][-3] != "0" else "1") + lines[-1][-2:]
open(p, "w").write("".join(lines))
PY
cmp -s "$LOG" "$T/pristine.log" && fail "the edit changed nothing"
start_refused "the anchored checkpoint rewritten" "no longer where keyholdd wrote it"

# The untouched log still starts (no false alarm) and verifies.
cp "$T/pristine.log" "$LOG"
kh_start
ok "pristine verify" kh audit verify

# A running verify reads the whole file: a record appended behind
# keyholdd's back (with a correct prev) is found.
python3 - "$LOG" <<'PY'
import hashlib, re, sys
p = sys.argv[1]; last = open(p).read().splitlines()[-1]
seq = int(re.match(r"v1 seq=(\d+) ", last).group(1)) + 1
prev = hashlib.sha256(last.encode()).hexdigest()
open(p, "a").write("v1 seq=%d ts=2030-01-01T00:00:00.000000Z who=uid:0 method=Sign obj=tk code=OK dur_us=1 count=1 prev=%s\n" % (seq, prev))
PY
expect_err DATA_LOSS "a record appended while running" kh audit verify
grep -q "were added by someone else" "$T/err.err" || { cat "$T/err.err" >&2; fail "the appended record is not named"; }
kh_stop --no-fail || true
cp "$T/pristine.log" "$LOG"

# verify names every break: two records edited far apart, both named.
conf report
kh_start
for i in 1 2 3 4 5 6; do ok "sign more $i" kh sign tk --in "$T/msg" --out "$T/s"; done
kh_stop
cp "$LOG" "$T/pristine2.log"
python3 - "$LOG" <<'PY'
import sys
p = sys.argv[1]; lines = open(p).read().splitlines(True)
for i in (3, 14):
    assert " code=OK " in lines[i], lines[i]
    lines[i] = lines[i].replace(" code=OK ", " code=OK ".replace("OK", "OK"), 1).replace(" dur_us=", " dur_us=9", 1)
open(p, "w").write("".join(lines))
PY
kh_start
expect_err DATA_LOSS "two edited records" kh audit verify
grep -q "first bad record: 4 " "$T/err.err" || { cat "$T/err.err" >&2; fail "the first edit is not named"; }
grep -q "record 15 was altered" "$T/err.err" || { cat "$T/err.err" >&2; fail "verify stopped at the first break"; }
kh_stop
cp "$T/pristine2.log" "$LOG"

# on_tamper = report: a cut log starts, the finding is recorded, and every
# verify from then on (restarts included) reports it.
head -n -3 "$T/pristine2.log" > "$LOG"
kh_start
ok "serving after the finding" kh sign tk --in "$T/msg" --out "$T/s"
expect_err DATA_LOSS "a cut log, reported" kh audit verify
grep -q "tampered with when it started (log-cut)" "$T/err.err" || { cat "$T/err.err" >&2; fail "the cut is not reported"; }
kh_restart
expect_err DATA_LOSS "the finding after a restart" kh audit verify
grep -q "tampered with when it started (log-cut)" "$T/err.err" || { cat "$T/err.err" >&2; fail "the finding was forgotten"; }
kh --json audit show > "$T/show.json"
json_get '[r["method"] for r in d["records"] if r["method"] == "AuditTamper"]' < "$T/show.json" | grep -q AuditTamper \
  || fail "no AuditTamper record"
kh_stop

# A crash (SIGKILL) with the anchor on a checkpoint the checkpoint thread
# signed off the request path (at=, athash=): the next start is ordinary
# (on_tamper = refuse would stop it) and the log verifies; the same log
# cut back before that checkpoint is still refused. A log and audit key of
# their own, so that the anchors start afresh.
CLOG="$T/crash.log"
kh_config "[audit]
file = $CLOG
key = crash-audit
checkpoint_records = 5
on_tamper = refuse"
kh_state_sql 'DELETE FROM audit_anchors'
kh_start
for i in $(seq 1 12); do ok "sign before the crash $i" kh sign tk --in "$T/msg" --out "$T/s"; done
ok "verify before the crash" kh audit verify
last_ck=$(grep " at=[0-9]* athash=" "$CLOG" | tail -n 1 | sed 's/^v1 seq=\([0-9]*\) .*/\1/')
[ -n "$last_ck" ] || fail "no checkpoint was signed by the checkpoint thread"
# The anchor (the database's copy) moves to it once it is synced, or to a
# later one of the thread's.
a_seq=""
for _ in $(seq 1 100); do
  a_seq=$(kh_state_sql 'SELECT value FROM audit_anchors' | sed -n 's/^v1 seq=\([0-9]*\) .*/\1/p')
  [ -n "$a_seq" ] && [ "$a_seq" -ge "$last_ck" ] && break
  sleep 0.05
done
[ -n "$a_seq" ] && [ "$a_seq" -ge "$last_ck" ] || fail "the anchor ($a_seq) did not move to checkpoint $last_ck"
grep -q "^v1 seq=$a_seq .* at=[0-9]* athash=" "$CLOG" || fail "the anchor ($a_seq) is not on a checkpoint of the thread"
kill -KILL "$KH_PID"
wait "$KH_PID" || true
KH_PID=""
cp "$CLOG" "$T/crashed.log"
kh_start
ok "verify after the crash" kh --json audit verify
[ "$(json_get 'd["ok"]' < "$T/ok.out")" = true ] || fail "the log does not verify after the crash"
grep -q "method=AuditTamper" "$CLOG" && fail "the crash was taken for tampering"
kh_stop
n=$(grep -n "^v1 seq=$a_seq " "$T/crashed.log" | cut -d: -f1)
head -n $((n - 1)) "$T/crashed.log" > "$CLOG"
start_refused "cut back before the thread's checkpoint" "ends .* before checkpoint"
