#!/usr/bin/env bash
# The token's store goes away and comes back while signing (issue 13,
# item 2): SoftHSM2's token directory is moved away for 6 s and back.
# While it is gone, Sign answers UNAVAILABLE (never NOT_FOUND: the keys
# were not deleted) and status does not report an operational token with
# no keys; once it is back, the same keyholdd signs again without a
# restart and lists every key. (The TPM token's loss is test_token_loss.)
. "$(dirname "$0")/lib.sh"

kh_token_can tokendir || exit 0
kh_start
pid=$KH_PID
echo "message" > "$T/m"
ok "generate p256" kh key generate d-p256 --type p256
ok "generate rsa2048" kh key generate d-rsa --type rsa2048
ok "list before" kh --json key list
before=$(json_get 'sorted(k["name"] for k in d["keys"])' < "$T/ok.out")
for k in d-p256 d-rsa; do
  ok "pem $k" kh key show "$k" --pem
  cp "$T/ok.out" "$T/$k.pem"
  ok "sign $k before" kh sign "$k" --in "$T/m" --out "$T/$k.sig"
done

# Signing goes on in the background the whole time; every answer is
# recorded (OK, or the error line).
signer() {
  local i=0
  while [ ! -f "$T/stop" ]; do
    i=$((i + 1))
    if kh sign d-p256 --in "$T/m" --out "$T/bg.sig" 2> "$T/bg.err"; then
      echo OK >> "$T/bg.log"
    else
      head -n 1 "$T/bg.err" >> "$T/bg.log"
    fi
    sleep 0.05
  done
}
signer &
spid=$!

tokendir=$(sed -n 's/^directories.tokendir *= *//p' "$SOFTHSM2_CONF")
[ -d "$tokendir" ] || fail "no token directory in $SOFTHSM2_CONF"
sleep 0.5
mv "$tokendir" "$tokendir.away"
sleep 1
expect_err UNAVAILABLE "sign while the token directory is away" kh sign d-rsa --in "$T/m" --out "$T/x"
expect_err UNAVAILABLE "sign again while it is away" kh sign d-p256 --in "$T/m" --out "$T/x"
grep -q "went away\|not available" "$T/err.err" || fail "the UNAVAILABLE message does not say the token is gone"
expect_err UNAVAILABLE "generate while it is away" kh key generate d-new --type p256
# status answers; its exit status says whether it counts as healthy.
rc=0; kh --json status > "$T/ok.out" 2> "$T/ok.err" || rc=$?
python3 - "$T/ok.out" "$rc" <<'PY' || fail "status reports an operational, available token with no keys (or its exit status disagrees)"
import json, sys
d = json.load(open(sys.argv[1]))
healthy = d["state"] == "OPERATIONAL" and d["token"]["available"]
if int(sys.argv[2]) != (0 if healthy else 5):
    sys.exit(1)
sys.exit(1 if healthy and d["keys"] == 0 else 0)
PY
sleep 4
mv "$tokendir.away" "$tokendir"

# until_ok DESC CMD...: retries CMD while it answers UNAVAILABLE.
until_ok() {
  local desc=$1 i rc; shift
  for i in $(seq 1 60); do
    rc=0
    "$@" > "$T/u.out" 2> "$T/u.err" || rc=$?
    if [ "$rc" -eq 0 ]; then log "$desc: ok after $i attempt(s)"; return 0; fi
    grep -q "^error: UNAVAILABLE: " "$T/u.err" || { cat "$T/u.err" >&2; fail "$desc: failed with other than UNAVAILABLE"; }
    sleep 0.5
  done
  cat "$T/u.err" >&2
  fail "$desc: still failing after 60 attempts"
}
until_ok "sign after the token directory returned" kh sign d-p256 --in "$T/m" --out "$T/d-p256.back.sig"
sleep 1
touch "$T/stop"
wait "$spid"

for k in d-p256 d-rsa; do
  ok "sign $k after" kh sign "$k" --in "$T/m" --out "$T/$k.after.sig"
  openssl dgst -sha256 -verify "$T/$k.pem" -signature "$T/$k.after.sig" "$T/m" > /dev/null \
    || fail "$k: the signature after the token returned does not verify"
done
ok "list after" kh --json key list
after=$(json_get 'sorted(k["name"] for k in d["keys"])' < "$T/ok.out")
[ "$after" = "$before" ] || fail "keys after the token returned: $after; before: $before"
ok "generate after" kh key generate d-new --type p256
ok "status after" kh --json status
[ "$(json_get 'd["token"]["available"]' < "$T/ok.out")" = true ] || fail "status says the token is unavailable"
[ "$(json_get 'd["keys"]' < "$T/ok.out")" -ge 3 ] || fail "status counts too few keys after the token returned"
# The audit log's checkpoints are signed in the token again.
ok "audit verify after the token returned" kh audit verify

# The background signer saw only OK and UNAVAILABLE, and both.
grep -q '^OK$' "$T/bg.log" || fail "the background signer never succeeded"
grep -q '^error: UNAVAILABLE: ' "$T/bg.log" || fail "the background signer never saw the token gone"
if grep -v '^OK$' "$T/bg.log" | grep -v '^error: UNAVAILABLE: ' | head -n 3 | grep -q .; then
  grep -v '^OK$' "$T/bg.log" | sort | uniq -c >&2
  fail "the background signer got answers other than OK and UNAVAILABLE"
fi
log "background signer: $(grep -c '^OK$' "$T/bg.log") OK, $(grep -c UNAVAILABLE "$T/bg.log") UNAVAILABLE"
if [ "$KH_PID" != "$pid" ] || ! kill -0 "$pid"; then fail "keyholdd was restarted"; fi
kh_stop
