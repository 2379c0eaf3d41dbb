#!/usr/bin/env bash
# FIPS software integrity and module loading: `keyholdd --fips-install`
# writes the HMAC-SHA-256 sidecar of the executable (checked against
# `openssl dgst -hmac` with the published key); a copy of keyholdd with one
# byte flipped, a corrupted sidecar and a missing sidecar each halt start-up
# (exit 70, software-integrity named, no client answered). fips_mode =
# validated on a machine without OpenSSL's FIPS provider (Debian 12) halts
# with FIPS_PROVIDER_UNAVAILABLE. `keyholdd --check` (a unit's
# ExecStartPre) reports each of these as a configuration error (exit 78).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fips_lib.sh"

# check_expect NAME RC [PATTERN]: keyholdd --check exits RC and, when given,
# its output matches PATTERN.
check_expect() {
  local name=$1 want=$2 pattern=${3:-} rc=0
  "$KEYHOLDD" --config "$T/keyhold.conf" --check > "$T/check-$name.out" 2>&1 || rc=$?
  if [ "$rc" -ne "$want" ]; then
    cat "$T/check-$name.out" >&2
    fail "--check ($name) exited with $rc, expected $want"
  fi
  if [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$T/check-$name.out"; then
    cat "$T/check-$name.out" >&2
    fail "--check ($name): the output does not match '$pattern'"
  fi
}

fips_install_copy
fips_config aligned

# The sidecar is the HMAC-SHA-256 of the file under the documented key.
want=$(openssl dgst -sha256 -hmac "keyhold software integrity key v1" -r "$KEYHOLDD" | cut -d' ' -f1)
[ "$(cat "$T/bin/.keyholdd.hmac")" = "$want" ] || fail "the sidecar is not the HMAC-SHA-256 of keyholdd"
check_expect intact 0 ": OK$"
kh_start
ok "status" kh --json status
[ "$(json_get '[t["result"] for t in d["self_tests"] if t["id"] == "software-integrity"][0]' < "$T/ok.out")" = pass ] \
  || fail "software-integrity did not pass on an intact install"
kh_stop

# ---- a copy with one byte flipped (in a string, so the program still runs) ----
mkdir -p "$T/flipped"
cp "$KEYHOLDD" "$T/flipped/keyholdd"
cp "$T/bin/.keyholdd.hmac" "$T/flipped/.keyholdd.hmac"
python3 - "$T/flipped/keyholdd" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.find(b'stay in the foreground')
assert i > 0, 'marker string not found'
b[i] ^= 0x20  # 's' -> 'S'
open(p, 'wb').write(bytes(b))
EOF
cmp -s "$KEYHOLDD" "$T/flipped/keyholdd" && fail "the copy was not modified"
saved=$KEYHOLDD
KEYHOLDD="$T/flipped/keyholdd"
check_expect flipped-byte 78 "does not match"
fips_expect_halt flipped-byte
fips_assert_halted "flipped byte" "FIPS self-test software-integrity FAILED.*does not match"
# The flipped copy is otherwise a working keyholdd: with a fresh sidecar it starts.
"$KEYHOLDD" --fips-install > /dev/null || fail "--fips-install on the copy failed"
kh_start
kh_stop
KEYHOLDD=$saved

# ---- a corrupted sidecar ----
cp "$T/bin/.keyholdd.hmac" "$T/sidecar.good"
python3 - "$T/bin/.keyholdd.hmac" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read().strip()
s = ('0' if s[0] != '0' else '1') + s[1:]
open(p, 'w').write(s + '\n')
EOF
check_expect corrupted-sidecar 78 "fips_mode = aligned: the HMAC-SHA-256 of .* does not match"
fips_expect_halt corrupted-sidecar
fips_assert_halted "corrupted sidecar" "FIPS self-test software-integrity FAILED.*does not match"

# A sidecar that is not a MAC at all.
echo "not a mac" > "$T/bin/.keyholdd.hmac"
fips_expect_halt garbage-sidecar
fips_assert_halted "garbage sidecar" "FIPS self-test software-integrity FAILED.*does not hold"

# ---- a missing sidecar ----
rm -f "$T/bin/.keyholdd.hmac"
check_expect missing-sidecar 78 "sidecar .* is missing.*fips-install"
fips_expect_halt missing-sidecar
fips_assert_halted "missing sidecar" "FIPS self-test software-integrity FAILED.*missing.*fips-install"

# Restored, it starts again.
cp "$T/sidecar.good" "$T/bin/.keyholdd.hmac"
kh_start
kh_stop

# fips_mode = off does not need the sidecar.
rm -f "$T/bin/.keyholdd.hmac"
fips_config off
check_expect off-no-sidecar 0 ": OK$"
kh_start
kh_stop

# ---- validated mode without the FIPS provider ----
cp "$T/sidecar.good" "$T/bin/.keyholdd.hmac"
modules=$(openssl version -m | sed 's/^MODULESDIR: "\(.*\)"$/\1/')
if [ -f "$modules/fips.so" ]; then
  log "CAPABILITY: this machine has OpenSSL's FIPS provider ($modules/fips.so); the missing-provider check does not apply"
  KH_SKIPS=$((KH_SKIPS + 1))
else
  fips_config validated
  check_expect validated 78 "FIPS_PROVIDER_UNAVAILABLE"
  fips_expect_halt validated
  fips_assert_halted "validated without the FIPS provider" "FIPS_PROVIDER_UNAVAILABLE"
  # It halts before the token is even opened.
  if grep -q "hsm_open" "$HALT_LOG"; then fail "validated mode opened the token before loading the FIPS provider"; fi
fi
