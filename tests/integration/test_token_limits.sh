#!/usr/bin/env bash
# GetCapabilities tells the truth about the token: every key type it offers
# can be generated and signs verifiably; every type it does not offer is
# refused with FAILED_PRECONDITION naming the token's limit, and leaves
# nothing on the token. On the TPM token (tpm2-pkcs11 on swtpm) the limits
# are known: RSA up to 3072 bits, P-256 and P-384, no EdDSA, no secp256k1,
# and P-521 is refused although the mechanism info's size range includes it
# (tpm2-pkcs11 1.9 cannot sign with the P-521 keys it makes).
. "$(dirname "$0")/lib.sh"

kh_start
pin=$(cat "$TOKEN_PIN_FILE")
# count_objects: N_OBJ = objects on the token, counted with OpenSC's
# pkcs11-tool (logged in, so private objects count too), leaving out the
# audit log's checkpoint key pair that keyholdd creates on first start.
count_objects() {
  pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" --login --pin "$pin" \
    --list-objects > "$T/objs" 2> "$T/objs.err" || { cat "$T/objs.err" >&2; fail "pkcs11-tool cannot list objects"; }
  N_OBJ=$(awk '/Object;/ { n++ } /^[[:space:]]*label:[[:space:]]*keyhold-audit[[:space:]]*$/ { a++ } END { print n - a }' "$T/objs")
}

# keyholdd's start-up checks (the EC curve probe) leave nothing behind
# but the audit key.
count_objects
grep -q "label:[[:space:]]*keyhold-audit" "$T/objs" || fail "no audit key on the token after start-up"
[ "$N_OBJ" -eq 0 ] || fail "keyholdd left $N_OBJ objects on the token at start-up"

ok "capabilities" kh --json capabilities
cp "$T/ok.out" "$T/caps.json"
types=$(json_get '" ".join(x["type"] for x in d["key_types"])' < "$T/caps.json")
avail() { json_get "[x['available'] for x in d['key_types'] if x['type']=='$1'][0]" < "$T/caps.json"; }
reason() { json_get "[x.get('reason','') for x in d['key_types'] if x['type']=='$1'][0]" < "$T/caps.json"; }
echo "the quick brown fox" > "$T/msg"

offered=()
for type in $types; do
  if [ "$(avail "$type")" = true ]; then
    offered+=("$type")
    ok "generate offered $type" kh key generate "t-$type" --type "$type"
    # The count sees keys (so the zero counts around it mean something).
    if [ ${#offered[@]} -eq 1 ]; then
      count_objects
      [ "$N_OBJ" -eq 2 ] || fail "after one key generation the token holds $N_OBJ objects, expected 2"
    fi
    ok "show $type" kh key show "t-$type" --pem
    cp "$T/ok.out" "$T/t-$type.pem"
    if [ "$type" = ed25519 ]; then
      ok "sign $type" kh sign "t-$type" --in "$T/msg" --out "$T/t-$type.sig"
      openssl pkeyutl -verify -pubin -inkey "$T/t-$type.pem" -rawin -in "$T/msg" -sigfile "$T/t-$type.sig" \
        > /dev/null || fail "$type: signature does not verify"
    else
      ok "sign $type" kh sign "t-$type" --in "$T/msg" --out "$T/t-$type.sig"
      openssl dgst -sha256 -verify "$T/t-$type.pem" -signature "$T/t-$type.sig" "$T/msg" > /dev/null \
        || fail "$type: signature does not verify"
    fi
    ok "delete $type" kh key delete "t-$type" --force
  else
    r=$(reason "$type")
    [ -n "$r" ] || fail "$type is not offered and capabilities give no reason"
    expect_err FAILED_PRECONDITION "generate unoffered $type" kh key generate "t-$type" --type "$type"
    # The reason may be cut short in capabilities; the error says it all.
    grep -qF "$r" "$T/err.err" || { cat "$T/err.err" >&2; fail "$type: the error differs from the capability reason '$r'"; }
    cp "$T/err.err" "$T/refused-$type"
    log "not offered: $(cat "$T/err.err")"
  fi
done
log "offered by the $KH_TOKEN token: ${offered[*]}"
count_objects
[ "$N_OBJ" -eq 0 ] || fail "$N_OBJ objects left on the token after generating, refusing and deleting"

# What each token is known to offer; on the TPM the messages must name the
# limit a person needs to know.
case "$KH_TOKEN" in
tpm)
  [ "${offered[*]}" = "rsa2048 rsa3072 p256 p384 rsa1024" ] \
    || fail "the TPM token offers '${offered[*]}', expected rsa2048 rsa3072 p256 p384 rsa1024"
  grep -q "1024 to 3072 bits" "$T/refused-rsa4096" || fail "rsa4096: the error does not name the RSA size limit"
  grep -q "CKM_EC_EDWARDS_KEY_PAIR_GEN" "$T/refused-ed25519" || fail "ed25519: the error does not name the missing mechanism"
  for c in p521 secp256k1; do
    grep -q "usable EC curves: p256, p384" "$T/refused-$c" || fail "$c: the error does not name the usable curves"
    reason "$c" | grep -q "usable EC curves: p256, p384" || fail "$c: capabilities do not name the usable curves"
  done
  grep -q "CKR_CURVE_NOT_SUPPORTED" "$T/refused-secp256k1" || fail "secp256k1: the error does not say the curve is refused"
  grep -q "unusable EC point" "$T/refused-p521" || fail "p521: the error does not say what failed"
  # The TPM makes PSS signatures with salt = hash length (DESIGN §8).
  json_get 'd["pss"]' < "$T/caps.json" | grep -q true || fail "the TPM token made with tpm2_ptool offers no PSS"
  ;;
softhsm)
  [ "${offered[*]}" = "rsa2048 rsa3072 rsa4096 p256 p384 p521 ed25519 rsa1024 secp256k1" ] \
    || fail "SoftHSM2 offers '${offered[*]}', expected every key type"
  ;;
esac

kh_stop
