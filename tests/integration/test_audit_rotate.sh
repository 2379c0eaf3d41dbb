#!/usr/bin/env bash
# Audit log rotation (issue 18, item 4): [audit] rotate_size / rotate_age
# end the log with a signed RotateEnd checkpoint, rename it
# audit.log.<first>-<last> and start a new audit.log whose first line is a
# signed RotateStart chained to the old file's last line. verify checks
# every file and the links between them; a byte changed in a rotated file
# or a file removed is reported; rotate_keep deletes the oldest files (on
# record) and verify then starts at the oldest kept file; rotate_age goes
# by keyholdd's (test) clock; keyholdd killed at each step of a rotation
# starts again without a false tamper finding (on_tamper = refuse), and a
# removed file is still found.
. "$(dirname "$0")/lib.sh"

LOG="$T/state/audit.log"
export KEYHOLD_TEST_CLOCK="$T/clock"
echo 0 > "$KEYHOLD_TEST_CLOCK"
conf() { kh_config "[audit]
checkpoint_records = 50
on_tamper = refuse
$1"; }

# records N: N ListKeys requests, up to 100 in one write (N audit records).
records() {
  local left=$1 n
  while [ "$left" -gt 0 ]; do
    n=$((left > 100 ? 100 : left))
    python3 "$KH_SRC/tests/integration/kh_wire.py" --socket "$SOCK" pipeline "$n" ListKeys > "$T/pipe.json" \
      || fail "the request burst failed"
    grep -q "\"codes\": {\"OK\": $n}" "$T/pipe.json" \
      || { cat "$T/pipe.json" >&2; fail "not every request of the burst was served"; }
    left=$((left - n))
  done
}
rotated() { find "$T/state" -maxdepth 1 -name 'audit.log.*' | sort; }
n_rotated() { rotated | wc -l; }
verify_ok() { ok "$1" kh --json audit verify; }
# verify_bad DESC WORDS: verify fails and its reason says WORDS.
verify_bad() {
  local rc=0
  kh audit verify > "$T/v.out" 2> "$T/v.err" || rc=$?
  [ "$rc" -ne 0 ] || fail "$1: verify passed"
  grep -q "$2" "$T/v.err" || { cat "$T/v.err" >&2; fail "$1: verify does not say '$2'"; }
}
# chain_check: the files, oldest first, as one chain (an independent reader).
chain_check() {
  python3 - "$T/state" <<'PY' || fail "the files do not form one chain"
import hashlib, os, re, sys
d = sys.argv[1]
names = sorted((n for n in os.listdir(d) if re.fullmatch(r"audit\.log\.\d{12}-\d{12}", n)),
               key=lambda n: int(n.split(".")[2].split("-")[0]))
prev = None
seq = None
for n in names + ["audit.log"]:
    lines = open(os.path.join(d, n)).read().splitlines()
    assert lines, n
    if n != "audit.log":
        f, l = (int(x) for x in n.split(".")[2].split("-"))
        assert " method=RotateEnd " in lines[-1] and " sig=" in lines[-1], n
        assert int(re.match(r"v1 seq=(\d+) ", lines[0]).group(1)) == f, n
        assert int(re.match(r"v1 seq=(\d+) ", lines[-1]).group(1)) == l, n
    if prev is not None:
        assert " method=RotateStart " in lines[0] and " sig=" in lines[0], n
    for line in lines:
        s = int(re.match(r"v1 seq=(\d+) ", line).group(1))
        p = re.search(r" prev=([0-9a-f]{64})", line).group(1)
        if prev is not None:
            assert s == seq + 1 and p == prev, (n, s)
        prev, seq = hashlib.sha256(line.encode()).hexdigest(), s
print("%d rotated files, records to %d" % (len(names), seq), file=sys.stderr)
PY
}

# ---- rotation by size; restart; verify and show across the files ----
conf "rotate_size = 4096"
kh_start
records 150
kh_stop
[ "$(n_rotated)" -ge 4 ] || fail "150 records in 4 KiB files: only $(n_rotated) rotated files"
rotated | head -n 1 | grep -q 'audit\.log\.000000000001-0000000000[0-9][0-9]$' || fail "unexpected file names: $(rotated | head -n 1)"
chain_check
last=$(tail -n 1 "$LOG" | sed 's/^v1 seq=\([0-9]*\) .*/\1/')
kh_start
# (the log was over rotate_size: the Start record may be in a rotated file by now)
cat "$T"/state/audit.log* | grep -q "^v1 seq=$((last + 1)) .*method=Start " || fail "the numbering does not go on after a restart"
total=$(cat "$T"/state/audit.log* | wc -l)
verify_ok "verify across the files"
[ "$(json_get 'd["ok"]' < "$T/ok.out")" = true ] || fail "verify not ok"
[ "$(json_get 'd["records"]' < "$T/ok.out")" -ge "$total" ] || fail "verify counted fewer records than the $total lines"
# show pages across the files, from record 1.
ok "show" kh --json audit show
shown=$(json_get 'len(d["records"]) if isinstance(d, dict) else len(d)' < "$T/ok.out")
[ "$shown" -ge "$total" ] || fail "show gave $shown records of $total"
json_get '[r["seq"] for r in (d["records"] if isinstance(d, dict) else d)][:3]' < "$T/ok.out" | grep -q '^\[1, 2, 3\]' \
  || fail "show does not start at record 1 in the oldest file"

# ---- tampering in a rotated file; a middle file removed ----
mid=$(rotated | sed -n 2p)
cp "$mid" "$T/mid.bak"
python3 - "$mid" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
i = b.index(b" method=ListKeys ") + 9
b[i] = ord("X")
open(p, "wb").write(b)
PY
verify_bad "a byte changed in a rotated file" "$(basename "$mid"): record .* was altered"
mv "$T/mid.bak" "$mid"
verify_ok "verify after the repair"
mv "$mid" "$T/mid.bak"
verify_bad "a middle file removed" "are missing: no file holds them"
mv "$T/mid.bak" "$mid"
verify_ok "verify with the file back"

# ---- retention ----
kh_stop
conf "rotate_size = 4096
rotate_keep = 2"
kh_start
records 60
[ "$(n_rotated)" -le 2 ] || fail "rotate_keep = 2 kept $(n_rotated) files"
grep -q "method=AuditRetention obj=1-" "$LOG" "$T"/state/audit.log.* || fail "no AuditRetention record for the first file"
verify_ok "verify after retention"
json_get 'd["note"]' < "$T/ok.out" | grep -q "verification starts at record .* deleted by retention" \
  || fail "verify does not say where it starts: $(cat "$T/ok.out")"
oldest=$(rotated | head -n 1)
mv "$oldest" "$T/old.bak"
verify_bad "the oldest kept file removed" "no AuditRetention record"
mv "$T/old.bak" "$oldest"
verify_ok "verify with it back"
kh_stop

# ---- rotation by age, by keyholdd's clock; a copy of the records in the log ----
conf "rotate_age = 1d
journal = yes"
kh_start
before=$(n_rotated)
records 3
sleep 1.5
[ "$(n_rotated)" = "$before" ] || fail "rotated before the age was reached"
echo $((2 * 86400)) > "$KEYHOLD_TEST_CLOCK"
for _ in $(seq 1 40); do [ "$(n_rotated)" -gt "$before" ] && break; sleep 0.1; done
[ "$(n_rotated)" -gt "$before" ] || fail "rotate_age = 1d: no rotation two days later"
verify_ok "verify after the age rotation"
kh_stop
# journal = yes: each line also went to keyholdd's log (stderr here, the journal under systemd).
for line in "$(tail -n 1 "$LOG")" "$(tail -n 1 "$(rotated | tail -n 1)")" "$(head -n 1 "$LOG")"; do
  grep -qF "audit: $line" "$T/keyholdd.log" || fail "journal = yes: not in keyholdd's log: $line"
done
echo 0 > "$KEYHOLD_TEST_CLOCK"

# ---- keyholdd killed during a rotation ----
conf "rotate_size = 4096"
# crash_at POINT: start with the fault, write until keyholdd kills itself.
crash_at() {
  local pid rc=0
  # Not kh_start: the rotation (and the kill) may come with the Start record.
  KEYHOLD_TEST_AUDIT_CRASH_AT=$1 "$KEYHOLDD" --config "$T/keyhold.conf" --foreground >> "$T/keyholdd.log" 2>&1 &
  KH_PID=$!
  pid=$KH_PID
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2> /dev/null || break
    if kh_answers; then
      python3 "$KH_SRC/tests/integration/kh_wire.py" --socket "$SOCK" pipeline 40 ListKeys > /dev/null 2>&1 || true
    fi
    sleep 0.05
  done
  wait "$pid" || rc=$?
  KH_PID=""
  [ "$rc" = 137 ] || fail "$1: keyholdd exited with status $rc, not by SIGKILL"
  grep -q "KEYHOLD_TEST_AUDIT_CRASH_AT=$1: killing keyholdd" "$T/keyholdd.log" || fail "$1: keyholdd did not die there"
}
for point in RotateEnd-written rotate-renamed rotate-created RotateStart-written; do
  crash_at "$point"
  case $point in
    rotate-renamed) [ ! -e "$LOG" ] || fail "$point: audit.log is still there" ;;
    rotate-created) [ ! -s "$LOG" ] || fail "$point: the new audit.log is not empty" ;;
  esac
  if [ "$point" = rotate-renamed ]; then
    # Real tampering is still found: the newest rotated file cut back.
    newest=$(rotated | tail -n 1)
    cp "$newest" "$T/newest.bak"
    head -n -1 "$T/newest.bak" > "$newest"
    rc=0
    timeout 20 "$KEYHOLDD" --config "$T/keyhold.conf" --foreground > "$T/refused.log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then fail "$point: keyholdd accepted a cut rotated file"; fi
    grep -q "before checkpoint" "$T/refused.log" || { cat "$T/refused.log" >&2; fail "$point: the refusal does not say why"; }
    cp "$T/newest.bak" "$newest"
    rm -f "$LOG"
  fi
  kh_start
  grep -q "method=AuditTamper" "$LOG" && fail "$point: a false tamper finding"
  head -n 1 "$LOG" | grep -q "method=RotateStart .* sig=" || [ "$point" = RotateEnd-written ] \
    || fail "$point: the new log does not begin with a RotateStart"
  verify_ok "verify after a crash at $point"
  kh_stop
  log "crash at $point: recovered, $(n_rotated) rotated files"
done
if grep -q "method=AuditTamper" "$T"/state/audit.log*; then fail "an AuditTamper record"; fi
chain_check

ok "done" true
log "PASS"
