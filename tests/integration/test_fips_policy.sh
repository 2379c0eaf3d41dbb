#!/usr/bin/env bash
# FIPS approved-algorithm policy (DESIGN §8) through the CLI: with
# fips_mode = aligned every non-approved request (RSA < 2048, a non-NIST
# curve, Ed25519 without fips_allow_eddsa, SHA-1 or MD5 signing, SHA-224) is
# refused with INVALID_ARGUMENT naming the rule; with fips_mode = off the
# same requests succeed and their signatures verify with openssl. Keys made
# while FIPS mode was off are flagged by `keyhold status`; keys made in FIPS
# mode carry fips_created. Every signature in FIPS mode is verified before
# release (counted in the status).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fips_lib.sh"

fips_install_copy
echo "policy test message" > "$T/msg"
openssl dgst -sha1 -binary "$T/msg" > "$T/msg.sha1"

# pubkey NAME: the key's SPKI PEM in $T/NAME.pem.
pubkey() { ok "show $1" kh key show "$1" --pem; cp "$T/ok.out" "$T/$1.pem"; }
# verify NAME DIGEST SIG
verify() {
  openssl dgst -"$2" -verify "$T/$1.pem" -signature "$3" "$T/msg" > /dev/null \
    || fail "$1/$2: signature does not verify"
}

# ---- fips_mode = off: non-approved requests succeed ----
fips_config off
kh_start
OFF_TYPES=()
for type in rsa1024 secp256k1 ed25519; do
  kh_has_type "$type" || continue
  ok "off: generate $type" kh key generate "off-$type" --type "$type"
  pubkey "off-$type"
  OFF_TYPES+=("$type")
done
ok "off: generate p256" kh key generate off-p256 --type p256
pubkey off-p256
ok "off: generate rsa2048" kh key generate off-rsa2048 --type rsa2048
pubkey off-rsa2048
ok "off: sha1 ecdsa" kh sign off-p256 --in "$T/msg" --digest sha1 --out "$T/off-p256.sha1.sig"
verify off-p256 sha1 "$T/off-p256.sha1.sig"
ok "off: md5 rsa" kh sign off-rsa2048 --in "$T/msg" --digest md5 --out "$T/off-rsa2048.md5.sig"
verify off-rsa2048 md5 "$T/off-rsa2048.md5.sig"
ok "off: sha224 rsa" kh sign off-rsa2048 --in "$T/msg" --digest sha224 --out "$T/off-rsa2048.sha224.sig"
verify off-rsa2048 sha224 "$T/off-rsa2048.sha224.sig"
ok "off: prehashed sha1" kh sign off-p256 --in "$T/msg.sha1" --prehashed --digest sha1 --out "$T/pre.sig"
verify off-p256 sha1 "$T/pre.sig"
if [[ " ${OFF_TYPES[*]} " == *" rsa1024 "* ]]; then
  ok "off: sign rsa1024" kh sign off-rsa1024 --in "$T/msg" --out "$T/off-rsa1024.sig"
  verify off-rsa1024 sha256 "$T/off-rsa1024.sig"
fi
if [[ " ${OFF_TYPES[*]} " == *" secp256k1 "* ]]; then
  ok "off: sign secp256k1" kh sign off-secp256k1 --in "$T/msg" --out "$T/off-k1.sig"
  verify off-secp256k1 sha256 "$T/off-k1.sig"
fi
if [[ " ${OFF_TYPES[*]} " == *" ed25519 "* ]]; then
  ok "off: sign ed25519" kh sign off-ed25519 --in "$T/msg" --out "$T/off-ed.sig"
  openssl pkeyutl -verify -pubin -inkey "$T/off-ed25519.pem" -rawin -in "$T/msg" -sigfile "$T/off-ed.sig" \
    > /dev/null || fail "off: ed25519 signature does not verify"
fi
ok "off: status" kh --json status
[ "$(json_get 'd["conditional_tests"]["verify_run"]' < "$T/ok.out")" -eq 0 ] || fail "off mode verified before release"
kh_stop

# ---- fips_mode = aligned: the same requests are refused, naming the rule ----
fips_config aligned
kh_start
refuse() { # refuse RULE-REGEX DESC CMD...
  local rule=$1 desc=$2; shift 2
  expect_err INVALID_ARGUMENT "$desc" "$@"
  grep -Eq "$rule" "$T/err.err" || { cat "$T/err.err" >&2; fail "$desc: the rule is not named"; }
  grep -q "FIPS" "$T/err.err" || fail "$desc: the message does not say FIPS"
}
refuse "RSA modulus 1024 is not allowed in FIPS mode; use 2048, 3072 or 4096" "aligned: rsa1024" \
  kh key generate a-rsa1024 --type rsa1024
refuse "curve secp256k1 is not allowed in FIPS mode" "aligned: secp256k1" kh key generate a-k1 --type secp256k1
refuse "Ed25519 is not allowed in FIPS mode unless fips_allow_eddsa = yes" "aligned: ed25519" \
  kh key generate a-ed --type ed25519
ok "aligned: generate p256" kh key generate fips-p256 --type p256
pubkey fips-p256
ok "aligned: generate rsa2048" kh key generate fips-rsa2048 --type rsa2048
pubkey fips-rsa2048
refuse "SHA-1 signatures are not allowed in FIPS mode" "aligned: sha1 ecdsa" \
  kh sign fips-p256 --in "$T/msg" --digest sha1 --out "$T/x"
refuse "SHA-1 signatures are not allowed in FIPS mode" "aligned: sha1 rsa pss" \
  kh sign fips-rsa2048 --in "$T/msg" --digest sha1 --pss --out "$T/x"
refuse "SHA-1 signatures are not allowed in FIPS mode" "aligned: prehashed sha1" \
  kh sign fips-p256 --in "$T/msg.sha1" --prehashed --digest sha1 --out "$T/x"
refuse "MD5 is not allowed in FIPS mode" "aligned: md5" kh sign fips-rsa2048 --in "$T/msg" --digest md5 --out "$T/x"
refuse "SHA-224 is outside keyhold's FIPS policy" "aligned: sha224" \
  kh sign fips-rsa2048 --in "$T/msg" --digest sha224 --out "$T/x"
# Keys made outside FIPS mode with non-approved parameters cannot sign.
[[ " ${OFF_TYPES[*]} " == *" rsa1024 "* ]] && refuse "RSA modulus 1024 is not allowed in FIPS mode" \
  "aligned: sign with an rsa1024 key" kh sign off-rsa1024 --in "$T/msg" --out "$T/x"
[[ " ${OFF_TYPES[*]} " == *" secp256k1 "* ]] && refuse "curve secp256k1 is not allowed in FIPS mode" \
  "aligned: sign with a secp256k1 key" kh sign off-secp256k1 --in "$T/msg" --out "$T/x"
[[ " ${OFF_TYPES[*]} " == *" ed25519 "* ]] && refuse "Ed25519 is not allowed in FIPS mode" \
  "aligned: sign with an ed25519 key" kh sign off-ed25519 --in "$T/msg" --out "$T/x"
# Approved requests work, verified before release.
for d in sha256 sha384 sha512; do
  ok "aligned: ecdsa $d" kh sign fips-p256 --in "$T/msg" --digest "$d" --out "$T/a.$d.sig"
  verify fips-p256 "$d" "$T/a.$d.sig"
done
ok "aligned: rsa pss" kh sign fips-rsa2048 --in "$T/msg" --pss --digest sha384 --out "$T/a.pss.sig"
openssl dgst -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -verify "$T/fips-rsa2048.pem" \
  -signature "$T/a.pss.sig" "$T/msg" > /dev/null || fail "aligned: PSS signature does not verify"
ok "aligned: rsa pkcs1" kh sign fips-rsa2048 --in "$T/msg" --out "$T/a.rsa.sig"
verify fips-rsa2048 sha256 "$T/a.rsa.sig"
ok "aligned: a key made outside FIPS mode with approved parameters" kh sign off-p256 --in "$T/msg" --out "$T/a.off.sig"
verify off-p256 sha256 "$T/a.off.sig"

# The status: which keys were made outside FIPS mode; conditional counts.
ok "aligned: status" kh --json status
cp "$T/ok.out" "$T/status.json"
nonfips=$(json_get '",".join(sorted(d["nonfips_keys"]))' < "$T/status.json")
for k in off-p256 off-rsa2048 "${OFF_TYPES[@]/#/off-}"; do
  [[ ",$nonfips," == *",$k,"* ]] || fail "status does not flag $k (made with fips_mode = off): $nonfips"
done
for k in fips-p256 fips-rsa2048; do
  [[ ",$nonfips," != *",$k,"* ]] || fail "status flags $k, made in FIPS mode"
done
[ "$(json_get 'd["conditional_tests"]["verify_run"]' < "$T/status.json")" -eq 6 ] \
  || fail "verify-before-release ran $(json_get 'd["conditional_tests"]["verify_run"]' < "$T/status.json") times, not 6"
[ "$(json_get 'd["conditional_tests"]["verify_failed"]' < "$T/status.json")" -eq 0 ] || fail "a verification failed"
[ "$(json_get 'd["conditional_tests"]["pairwise_run"]' < "$T/status.json")" -eq 2 ] || fail "pairwise count is not 2"
ok "human status" kh status
grep -q "key created outside FIPS mode: off-p256" "$T/ok.out" || fail "human status does not flag off-p256"
ok "aligned: list" kh --json key list
[ "$(json_get '[k["fips_created"] for k in d["keys"] if k["name"] == "fips-p256"][0]' < "$T/ok.out")" = true ] \
  || fail "fips-p256 is not fips_created"
[ "$(json_get '[k["fips_created"] for k in d["keys"] if k["name"] == "off-p256"][0]' < "$T/ok.out")" = false ] \
  || fail "off-p256 is fips_created"
grep -qx fips-p256 "$T/state/fips-keys" || fail "state_dir/fips-keys does not name fips-p256"
kh_stop

# fips_allow_eddsa = yes: Ed25519 is allowed in FIPS mode (FIPS 186-5).
if [[ " ${OFF_TYPES[*]} " == *" ed25519 "* ]]; then
  fips_config aligned "fips_allow_eddsa = yes"
  kh_start
  ok "aligned+eddsa: generate ed25519" kh key generate fips-ed --type ed25519
  pubkey fips-ed
  ok "aligned+eddsa: sign" kh sign fips-ed --in "$T/msg" --out "$T/fips-ed.sig"
  openssl pkeyutl -verify -pubin -inkey "$T/fips-ed.pem" -rawin -in "$T/msg" -sigfile "$T/fips-ed.sig" \
    > /dev/null || fail "aligned+eddsa: signature does not verify"
  # libp11 (the engine test) fails on tokens holding Ed25519 keys.
  ok "delete fips-ed" kh key delete fips-ed --force
  ok "delete off-ed25519" kh key delete off-ed25519 --force
  kh_stop
fi

# ---- back to off: the refused requests succeed, and a FIPS key's name
# reused outside FIPS mode is flagged ----
fips_config off
kh_start
for type in "${OFF_TYPES[@]}"; do
  [ "$type" = ed25519 ] && continue
  ok "off again: generate $type" kh key generate "again-$type" --type "$type"
done
ok "off again: sha1 with a FIPS-made key" kh sign fips-p256 --in "$T/msg" --digest sha1 --out "$T/again.sig"
verify fips-p256 sha1 "$T/again.sig"
ok "off again: md5" kh sign fips-rsa2048 --in "$T/msg" --digest md5 --out "$T/again.md5.sig"
verify fips-rsa2048 md5 "$T/again.md5.sig"
ok "delete fips-p256" kh key delete fips-p256 --force
grep -qx fips-p256 "$T/state/fips-keys" && fail "a deleted key is still recorded as FIPS-made"
ok "recreate fips-p256 in off mode" kh key generate fips-p256 --type p256
ok "status" kh --json status
json_get 'd["nonfips_keys"]' < "$T/ok.out" | grep -q "'fips-p256'" || fail "the recreated key is not flagged"
json_get 'd["nonfips_keys"]' < "$T/ok.out" | grep -q "'fips-rsa2048'" && fail "fips-rsa2048 is flagged"
kh_stop
