#!/usr/bin/env bash
# FIPS faults injected by a token: keyholdd talks to the token through the
# shim PKCS#11 module (tests/shim, wrapping the real module), which on
# request flips a bit of C_Sign output, repeats C_GenerateRandom blocks or
# reports CKF_ERROR_STATE. Each makes start-up fail (exit 70, the failing
# test named, no client answered). Armed after start-up (a flag file the
# shim reads on every call): a flipped key-generation signature makes
# GenerateKey fail with both halves destroyed, a flipped Sign is never
# released, a repeated random block fails the continuous RNG test, and a
# flipped signature fails `keyhold selftest`, and a token answering
# CKR_FIPS_SELF_TEST_FAILED fails the request; each enters ERROR and exits
# 70. With fips_mode = off the token's failure fails the request only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fips_lib.sh"

SHIM="$KH_BUILD/tests/shim/libkhshim.so"
[ -f "$SHIM" ] || fail "the shim module $SHIM was not built"
export KH_SHIM_MODULE="$TOKEN_MODULE"
export KH_SHIM_FLAG_FILE="$T/shim-flags"
: > "$KH_SHIM_FLAG_FILE"

fips_install_copy
fips_config aligned "" "$SHIM"

# A clean start through the shim: the faults below are the shim's doing.
kh_start
ok "status through the shim" kh --json status
[ "$(json_get 'all(t["result"] == "pass" for t in d["self_tests"])' < "$T/ok.out")" = true ] \
  || fail "self-tests fail through an unarmed shim"
kh_stop

# ---- each fault makes start-up fail ----
fips_expect_halt shim-flip-sign KH_SHIM_FLIP_SIGN=1
fips_assert_halted "flipped C_Sign" "FIPS self-test token-pairwise FAILED.*does not verify"

fips_expect_halt shim-repeat-random KH_SHIM_REPEAT_RANDOM=1
fips_assert_halted "repeated C_GenerateRandom" "FIPS self-test token-rng FAILED"
grep -q "continuous RNG test" "$HALT_LOG" || fail "the repeated block was not caught by the continuous RNG test"

fips_expect_halt shim-error-state KH_SHIM_ERROR_STATE=1
fips_assert_halted "CKF_ERROR_STATE" "FIPS self-test token-health FAILED.*CKF_ERROR_STATE"

# ---- a flipped signature at key generation, armed after start-up ----
kh_start
ok "generate before the fault" kh key generate keep-me --type p256
ok "status" kh --json status
[ "$(json_get 'd["conditional_tests"]["pairwise_run"]' < "$T/ok.out")" -eq 1 ] || fail "pairwise test did not run"
echo flip_sign > "$KH_SHIM_FLAG_FILE"
expect_err INTERNAL "generate with a flipped signature" kh key generate doomed --type p256
grep -q "pairwise consistency" "$T/err.err" || fail "the error does not name the pairwise test"
fips_wait_exit 70
: > "$KH_SHIM_FLAG_FILE"
grep -q "FIPS self-test conditional-pairwise FAILED" "$T/keyholdd.log" || fail "the log does not name the failed test"
token_objects > "$T/objects"
grep -qx "keep-me" "$T/objects" || fail "pkcs11-tool does not list keep-me (the check below would be vacuous)"
if grep -qx "doomed" "$T/objects"; then
  cat "$T/objects" >&2
  fail "a half of the key that failed its pairwise test is still on the token"
fi
# Both halves: no object of any class is left with the label.
[ "$(grep -cx doomed "$T/objects" || true)" -eq 0 ] || fail "objects labelled doomed remain"

# Also for RSA (PKCS#1 v1.5 signature flipped).
kh_start
echo flip_sign > "$KH_SHIM_FLAG_FILE"
expect_err INTERNAL "generate rsa2048 with a flipped signature" kh key generate doomed-rsa --type rsa2048
fips_wait_exit 70
: > "$KH_SHIM_FLAG_FILE"
token_objects > "$T/objects"
if grep -qx "doomed-rsa" "$T/objects"; then fail "the RSA key that failed its pairwise test is still on the token"; fi

# ---- verify-before-release: a flipped Sign never leaves keyholdd ----
kh_start
echo "a message" > "$T/msg"
ok "sign before the fault" kh sign keep-me --in "$T/msg" --out "$T/good.sig"
ok "pem" kh key show keep-me --pem
cp "$T/ok.out" "$T/keep.pem"
openssl dgst -sha256 -verify "$T/keep.pem" -signature "$T/good.sig" "$T/msg" > /dev/null || fail "signature does not verify"
echo flip_sign > "$KH_SHIM_FLAG_FILE"
rm -f "$T/bad.sig"
expect_err INTERNAL "sign with a flipped signature" kh sign keep-me --in "$T/msg" --out "$T/bad.sig"
grep -q "verification before release" "$T/err.err" || fail "the error does not name verify-before-release"
[ ! -s "$T/bad.sig" ] || fail "a signature that failed verification was released"
fips_wait_exit 70
: > "$KH_SHIM_FLAG_FILE"
grep -q "FIPS self-test conditional-verify FAILED" "$T/keyholdd.log" || fail "the log does not name verify-before-release"

# ---- continuous RNG test after start-up ----
kh_start
echo repeat_random > "$KH_SHIM_FLAG_FILE"
expect_err INTERNAL "generate with a repeated random block" kh key generate rng-victim --type p256
grep -q "continuous RNG test" "$T/err.err" || fail "the error does not name the continuous RNG test"
fips_wait_exit 70
: > "$KH_SHIM_FLAG_FILE"
token_objects > "$T/objects"
if grep -qx "rng-victim" "$T/objects"; then fail "a key was made from a repeated random block"; fi

# ---- the token fails its own self-test after start-up ----
# The shim answers CKR_FIPS_SELF_TEST_FAILED from C_SignInit: the request
# fails, nothing is signed, and keyholdd enters ERROR.
kh_start
echo error_state > "$KH_SHIM_FLAG_FILE"
rm -f "$T/st.sig"
expect_err INTERNAL "sign on a token that failed its self-test" kh sign keep-me --in "$T/msg" --out "$T/st.sig"
grep -q "CKR_FIPS_SELF_TEST_FAILED" "$T/err.err" || fail "the error does not name CKR_FIPS_SELF_TEST_FAILED"
[ ! -s "$T/st.sig" ] || fail "a signature was written by a token in its error state"
fips_wait_exit 70
: > "$KH_SHIM_FLAG_FILE"
grep -q "FIPS self-test token-health FAILED: the token answered CKR_FIPS_SELF_TEST_FAILED" "$T/keyholdd.log" \
  || fail "the log does not name the token's self-test failure"

# ---- `keyhold selftest` failing on demand ----
kh_start
echo flip_sign > "$KH_SHIM_FLAG_FILE"
expect_err INTERNAL "selftest with a flipped signature" kh selftest
grep -q "token-pairwise" "$T/err.err" || fail "the selftest error does not name token-pairwise"
fips_wait_exit 70
: > "$KH_SHIM_FLAG_FILE"
grep -q "FIPS self-test token-pairwise FAILED" "$T/keyholdd.log" || fail "the log does not name token-pairwise"

# ---- fips_mode = off: no conditional tests, a flipped signature is not caught ----
fips_config off "" "$SHIM"
kh_start
echo flip_sign > "$KH_SHIM_FLAG_FILE"
ok "sign in off mode" kh sign keep-me --in "$T/msg" --out "$T/off.sig"
if openssl dgst -sha256 -verify "$T/keep.pem" -signature "$T/off.sig" "$T/msg" > /dev/null 2>&1; then
  fail "the shim did not flip the signature (the checks above would be vacuous)"
fi
: > "$KH_SHIM_FLAG_FILE"
kh_stop
# A token answering CKR_FIPS_SELF_TEST_FAILED with fips_mode = off fails the
# request, named, and keyholdd keeps serving.
kh_start
echo error_state > "$KH_SHIM_FLAG_FILE"
expect_err INTERNAL "sign in off mode on a failed token" kh sign keep-me --in "$T/msg" --out "$T/off2.sig"
grep -q "CKR_FIPS_SELF_TEST_FAILED" "$T/err.err" || fail "off mode: the error does not name CKR_FIPS_SELF_TEST_FAILED"
: > "$KH_SHIM_FLAG_FILE"
ok "sign in off mode once the token recovered" kh sign keep-me --in "$T/msg" --out "$T/off3.sig"
kh_stop
