#!/usr/bin/env bash
# The token goes away while keyholdd runs: requests fail with UNAVAILABLE
# (never INTERNAL, never a hang or a crash) while it is gone, and succeed
# again once it is back, with the same keyholdd process. On the TPM token:
# swtpm is stopped and restarted on the same state (keys survive), then
# tpm2-abrmd is restarted.
. "$(dirname "$0")/lib.sh"

kh_token_can restart || exit 0
kh_start
pid=$KH_PID
echo "message one" > "$T/m1"

for type in p256 rsa2048; do
  kh_has_type "$type" || continue
  ok "generate $type" kh key generate "l-$type" --type "$type"
  ok "show $type" kh key show "l-$type" --pem
  cp "$T/ok.out" "$T/l-$type.pem"
done
kh_has_type p256 || fail "the token offers no p256; the checks below need it"

# sign_ok KEY TAG: signs $T/m1 and verifies the signature.
sign_ok() {
  ok "sign $2" kh sign "$1" --in "$T/m1" --out "$T/$1.$2.sig"
  openssl dgst -sha256 -verify "$T/$1.pem" -signature "$T/$1.$2.sig" "$T/m1" > /dev/null \
    || fail "$1: signature ($2) does not verify"
}

# until_ok DESC CMD...: retries CMD (UNAVAILABLE only) until it succeeds;
# keyholdd re-attaches at most every 2 s, so allow 60 tries.
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

for k in l-p256 l-rsa2048; do [ -f "$T/$k.pem" ] && sign_ok "$k" before; done

# ---- the TPM goes away ----
kh_token_down
for i in 1 2 3; do
  expect_err UNAVAILABLE "sign while the TPM is gone ($i)" kh sign l-p256 --in "$T/m1" --out "$T/x"
done
grep -q "went away\|not available" "$T/err.err" || fail "the UNAVAILABLE message does not say the token is gone"
expect_err UNAVAILABLE "generate while the TPM is gone" kh key generate l-new --type p256
expect_err UNAVAILABLE "list while the TPM is gone" kh key list
# keyholdd itself still answers and says what is wrong.
# status answers but is not healthy (exit 5, as health).
expect_rc 5 "status while the TPM is gone" kh --json status
[ "$(json_get 'd["token"]["available"]' < "$T/rc.out")" = false ] || fail "status says the token is available"
expect_rc 5 "health while the TPM is gone" kh health
grep -q '^unhealthy: .*token NOT AVAILABLE' "$T/rc.out" || fail "health does not say the token is gone"
kill -0 "$pid" || fail "keyholdd died while the TPM was gone"

# ---- it comes back: same keyholdd, same keys ----
kh_token_up
until_ok "sign after the TPM returned" kh sign l-p256 --in "$T/m1" --out "$T/l-p256.back.sig"
openssl dgst -sha256 -verify "$T/l-p256.pem" -signature "$T/l-p256.back.sig" "$T/m1" > /dev/null \
  || fail "signature after the TPM returned does not verify"
[ -f "$T/l-rsa2048.pem" ] && sign_ok l-rsa2048 back
ok "generate after the TPM returned" kh key generate l-new --type p256
ok "status after" kh --json status
[ "$(json_get 'd["token"]["available"]' < "$T/ok.out")" = true ] || fail "status says the token is unavailable"
ok "health after" kh health

# ---- the access broker restarts (tpm2-abrmd) ----
kh_token_broker_restart
until_ok "sign after tpm2-abrmd restarted" kh sign l-p256 --in "$T/m1" --out "$T/l-p256.abrmd.sig"
openssl dgst -sha256 -verify "$T/l-p256.pem" -signature "$T/l-p256.abrmd.sig" "$T/m1" > /dev/null \
  || fail "signature after the abrmd restart does not verify"

if [ "$KH_PID" != "$pid" ] || ! kill -0 "$pid"; then fail "keyholdd was restarted"; fi
kh_stop
