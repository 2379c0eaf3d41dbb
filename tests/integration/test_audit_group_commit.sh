#!/usr/bin/env bash
# [audit] sync = always with group commit (issue 19): answers wait for the
# fdatasync that covers their record, done by one commit thread for every
# record written meanwhile. Many requests in flight are all answered, each
# is on record once, and the log verifies; concurrent signatures verify
# with OpenSSL. A keyholdd killed after a Sign's record is written but
# before the commit thread syncs it has sent no answer: the client sees the
# connection drop, never a signature (KEYHOLD_TEST_AUDIT_CRASH_AT, a test
# build's fault injection).
. "$(dirname "$0")/lib.sh"

kh_config "[audit]
sync = always"
kh_start
LOG="$T/state/audit.log"
grep -q "sync = always" "$T/keyhold.conf" || fail "no sync = always"
ok "key" kh key generate gc --type p256
ok "pubkey" kh key show gc --pem
cp "$T/ok.out" "$T/gc.pub"

# 100 requests in flight (max_inflight is 128) on one connection, and four signers at once.
before=$(grep -c " method=ListKeys " "$LOG" || true)
python3 "$KH_SRC/tests/integration/kh_wire.py" --socket "$SOCK" pipeline 100 ListKeys > "$T/pipe.json" &
wire=$!
pids=()
for i in 1 2 3 4; do
  echo "group commit $i" > "$T/m$i"
  kh sign gc --in "$T/m$i" --out "$T/s$i" 2> "$T/s$i.err" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent sign failed: $(cat "$T"/s*.err)"; done
wait "$wire" || fail "the pipelined client failed"
[ "$(json_get 'd["codes"].get("OK", 0)' < "$T/pipe.json")" = 100 ] || { cat "$T/pipe.json" >&2; fail "not all 100 answered OK"; }
[ "$(json_get 'd["after"]' < "$T/pipe.json")" = OK ] || fail "the connection is not good after the burst"
for i in 1 2 3 4; do
  openssl dgst -sha256 -verify "$T/gc.pub" -signature "$T/s$i" "$T/m$i" > /dev/null || fail "signature $i does not verify"
done
after=$(grep -c " method=ListKeys " "$LOG" || true)
[ $((after - before)) = 101 ] || fail "$((after - before)) ListKeys records for 101 requests"
[ "$(grep -c " method=Sign obj=gc code=OK " "$LOG")" = 4 ] || fail "the four signatures are not on record once each"
ok "verify" kh --json audit verify
[ "$(json_get 'd["ok"]' < "$T/ok.out")" = true ] || fail "audit verify is not ok"
kh_stop

# Killed before the sync: no answer, no signature.
KEYHOLD_TEST_AUDIT_CRASH_AT=group-commit "$KEYHOLDD" --config "$T/keyhold.conf" --foreground >> "$T/keyholdd.log" 2>&1 &
KH_PID=$!
for _ in $(seq 1 200); do kh_answers && break; sleep 0.05; done
kh_answers || fail "keyholdd (crash point) did not start"
rm -f "$T/dead.sig"
if kh sign gc --in "$T/m1" --out "$T/dead.sig" > "$T/dead.out" 2> "$T/dead.err"; then
  fail "a signature was answered although its record was never synced"
fi
[ ! -s "$T/dead.sig" ] || fail "a signature was written although its record was never synced"
wait "$KH_PID" || true
KH_PID=""
grep -q "KEYHOLD_TEST_AUDIT_CRASH_AT=group-commit: killing keyholdd" "$T/keyholdd.log" || fail "keyholdd did not die at the commit"
# After the crash the log still verifies (the record was written; the page
# cache kept it).
kh_start
ok "verify after the crash" kh --json audit verify
[ "$(json_get 'd["ok"]' < "$T/ok.out")" = true ] || fail "audit verify after the crash is not ok"
kh_stop
log "PASS"
