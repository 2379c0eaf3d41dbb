#!/usr/bin/env bash
# libkeyhold-pkcs11.so (client/pkcs11, docs/PKCS11.md) from unmodified
# PKCS#11 consumers: pkcs11-tool lists the slot, token, mechanisms and
# objects, signs with every mechanism and key type (each signature verified
# by stock OpenSSL against `keyhold key show --pem`) and cannot read a
# private key; a principal sees exactly the keys it has grants for and a
# principal without grants sees none and cannot sign; p11tool lists the
# token and certtool makes a CSR with a pkcs11: URI; the libp11 engine makes
# a CSR through the module; keyholdd stopped and started again while
# pkcs11-tool signs in a loop: failures, then signatures again. On the TPM
# token only the listing and the token-dependent signatures run (the rest
# tests the module, the same on every token).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"
. "$(dirname "$0")/lib_pkcs11.sh"

kh_sec_user khp11
kh_sec_user khp11n
gpasswd -a khp11n khp11 > /dev/null || fail "cannot add khp11n to group khp11"
KH_SERVICE_EXTRA="socket_group = khp11" kh_config "signer = user:khp11, user:khp11n"
kh_start

PT=(pkcs11-tool --module "$P11_MODULE")
sslx() { env OPENSSL_CONF=/dev/null openssl "$@"; }
echo "the quick brown fox" > "$T/msg"
chmod 755 "$T"
chmod 644 "$T/msg"
# Where the other principals write.
mkdir -m 1777 "$T/u"

KEYS=(rsa p256 p384)
ok "generate rsa" kh key generate rsa --type rsa2048
ok "generate p256" kh key generate p256 --type p256
ok "generate p384" kh key generate p384 --type p384
if kh_has_type ed25519; then
  ok "generate ed" kh key generate ed --type ed25519
  KEYS+=(ed)
fi
for k in "${KEYS[@]}"; do
  kh key show "$k" --pem > "$T/$k.pub" || fail "key show $k"
done
ID_rsa=$(p11_id rsa)
ID_p256=$(p11_id p256)
ID_p384=$(p11_id p384)
ID_ed=""
[[ " ${KEYS[*]} " == *" ed "* ]] && ID_ed=$(p11_id ed)
ok "trustpoint" kh trustpoint create web --key p256 --subject "CN=web.example.com"
ok "enroll" kh trustpoint enroll web --out "$T/web.pem"

# ---- slot, token, mechanisms, objects ----
ok "list-slots" p11 "${PT[@]}" --list-slots
grep -q "token model *: keyholdd" "$T/ok.out" || fail "no keyholdd token in --list-slots: $(cat "$T/ok.out")"
grep -q "token flags *: token initialized$" "$T/ok.out" || fail "token flags: $(grep flags "$T/ok.out")"
ok "list-mechanisms" p11 "${PT[@]}" --list-mechanisms
for m in RSA-PKCS SHA256-RSA-PKCS-PSS ECDSA ECDSA-SHA384; do
  grep -q "^  $m, .*sign" "$T/ok.out" || fail "mechanism $m not listed: $(cat "$T/ok.out")"
done
ok "list-objects" p11 "${PT[@]}" --list-objects
cp "$T/ok.out" "$T/objects.txt"
for k in "${KEYS[@]}" keyhold-audit; do
  [ "$(grep -c "label: *$k\$" "$T/objects.txt")" = 2 ] || fail "$k: not one private and one public key object"
done
grep -q "^Certificate Object; type = X.509 cert" "$T/objects.txt" || fail "no certificate object"
# The certificate object carries its key's CKA_ID.
grep -A4 "^Certificate Object" "$T/objects.txt" | grep -q "ID: *$ID_p256" || fail "the certificate's CKA_ID is not p256's"
ok "read cert" p11 "${PT[@]}" --read-object --type cert --id "$ID_p256" -o "$T/web.der"
sslx x509 -inform DER -in "$T/web.der" | cmp -s - "$T/web.pem" || fail "the certificate object is not the trustpoint's"
# A public key object reads back as keyhold's public key.
ok "read pubkey" p11 "${PT[@]}" --read-object --type pubkey --id "$ID_rsa" -o "$T/rsa.pub.der"
sslx pkey -pubin -inform DER -in "$T/rsa.pub.der" | cmp -s - "$T/rsa.pub" || fail "public key object differs"
# The private key never leaves (pkcs11-tool 0.23 refuses by itself and
# exits 0; kh_p11check below asks the module for CKA_VALUE and the like).
p11 "${PT[@]}" --read-object --type privkey --id "$ID_rsa" -o "$T/priv.der" > "$T/priv.out" 2>&1 || true
[ -s "$T/priv.der" ] && fail "private key bytes were written: $(cat "$T/priv.out")"

# ---- signatures: every mechanism, verified by OpenSSL ----
# sign KEY MECH IN OUT [pkcs11-tool options]
sign() {
  local k=$1 m=$2 in=$3 out=$4; shift 4
  local id
  case $k in rsa) id=$ID_rsa ;; p256) id=$ID_p256 ;; p384) id=$ID_p384 ;; ed) id=$ID_ed ;; esac
  ok "sign $k $m" p11 "${PT[@]}" --sign --id "$id" -m "$m" -i "$in" -o "$out" "$@"
}
for h in 256 384 512; do
  sslx dgst "-sha$h" -binary -out "$T/msg.sha$h" "$T/msg"
done
pss=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest)
# The TPM token: the signatures that depend on the token, then done (the
# module's own behaviour is the same on every token and is tested on
# SoftHSM2 below; CI time).
if [ "$KH_TOKEN" = tpm ]; then
  sign rsa SHA256-RSA-PKCS "$T/msg" "$T/rsa.sig"
  ok "verify tpm SHA256-RSA-PKCS" sslx dgst -sha256 -verify "$T/rsa.pub" -signature "$T/rsa.sig" "$T/msg"
  sign rsa SHA256-RSA-PKCS-PSS "$T/msg" "$T/rsa.sig"
  ok "verify tpm SHA256-RSA-PKCS-PSS" sslx dgst -sha256 "${pss[@]}" -verify "$T/rsa.pub" -signature "$T/rsa.sig" "$T/msg"
  for k in p256 p384; do
    sign "$k" ECDSA-SHA256 "$T/msg" "$T/$k.sig" --signature-format openssl
    ok "verify tpm $k ECDSA-SHA256" sslx dgst -sha256 -verify "$T/$k.pub" -signature "$T/$k.sig" "$T/msg"
  done
  log "PASS (tpm: token-dependent signatures)"
  exit 0
fi
# CKM_RSA_PKCS over the caller's DigestInfo (SHA-256: RFC 8017 9.2 note 1).
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat "$T/msg.sha256"; } \
  > "$T/msg.di256"
sign rsa RSA-PKCS "$T/msg.di256" "$T/rsa.sig"
ok "verify RSA-PKCS" sslx dgst -sha256 -verify "$T/rsa.pub" -signature "$T/rsa.sig" "$T/msg"
for h in 256 384 512; do
  sign rsa "SHA$h-RSA-PKCS" "$T/msg" "$T/rsa.sig"
  ok "verify SHA$h-RSA-PKCS" sslx dgst "-sha$h" -verify "$T/rsa.pub" -signature "$T/rsa.sig" "$T/msg"
  sign rsa "SHA$h-RSA-PKCS-PSS" "$T/msg" "$T/rsa.sig"
  ok "verify SHA$h-RSA-PKCS-PSS" sslx dgst "-sha$h" "${pss[@]}" -verify "$T/rsa.pub" -signature "$T/rsa.sig" "$T/msg"
  sign rsa RSA-PKCS-PSS "$T/msg.sha$h" "$T/rsa.sig" --hash-algorithm "SHA$h" --mgf "MGF1-SHA$h"
  ok "verify RSA-PKCS-PSS sha$h" sslx dgst "-sha$h" "${pss[@]}" -verify "$T/rsa.pub" -signature "$T/rsa.sig" "$T/msg"
done
# keyholdd's PSS salt is the digest length; another is refused up front.
if p11 "${PT[@]}" --sign --id "$ID_rsa" -m RSA-PKCS-PSS --hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len 20 \
  -i "$T/msg.sha256" -o "$T/bad.sig" > "$T/bad.out" 2>&1; then
  fail "PSS with a 20-byte salt was signed"
fi
grep -q CKR_MECHANISM_PARAM_INVALID "$T/bad.out" || fail "PSS salt: $(cat "$T/bad.out")"
# A mechanism of another key type.
if p11 "${PT[@]}" --sign --id "$ID_rsa" -m ECDSA -i "$T/msg.sha256" -o "$T/bad.sig" > "$T/bad.out" 2>&1; then
  fail "ECDSA with an RSA key"
fi
grep -q CKR_KEY_TYPE_INCONSISTENT "$T/bad.out" || fail "ECDSA with RSA: $(cat "$T/bad.out")"

for k in p256 p384; do
  # CKM_ECDSA's r || s, as pkcs11-tool hands it to OpenSSL (--signature-format openssl: DER).
  for h in 256 384; do
    sign "$k" ECDSA "$T/msg.sha$h" "$T/$k.sig" --signature-format openssl
    ok "verify $k ECDSA sha$h" sslx pkeyutl -verify -pubin -inkey "$T/$k.pub" -in "$T/msg.sha$h" -sigfile "$T/$k.sig"
  done
  for h in 256 384 512; do
    sign "$k" "ECDSA-SHA$h" "$T/msg" "$T/$k.sig" --signature-format openssl
    ok "verify $k ECDSA-SHA$h" sslx dgst "-sha$h" -verify "$T/$k.pub" -signature "$T/$k.sig" "$T/msg"
  done
  # The raw r || s: twice the field size.
  sign "$k" ECDSA-SHA256 "$T/msg" "$T/$k.rs"
  want=$([ "$k" = p256 ] && echo 64 || echo 96)
  [ "$(stat -c %s "$T/$k.rs")" = "$want" ] || fail "$k: CKM_ECDSA output is not r||s ($want bytes)"
done
if [[ " ${KEYS[*]} " == *" ed "* ]]; then
  sign ed EDDSA "$T/msg" "$T/ed.sig"
  ok "verify EDDSA" sslx pkeyutl -verify -rawin -pubin -inkey "$T/ed.pub" -in "$T/msg" -sigfile "$T/ed.sig"
fi

# ---- what pkcs11-tool cannot show: attribute rules, CKR codes, multi-part,
# threads, fork, C_Finalize (kh_p11check.c) ----
ok "p11check rules" p11 "$KH_BUILD/tests/integration/kh_p11check" "$P11_MODULE" rules rsa "$T/chk"
for s in multi thread fork; do
  ok "verify $s" sslx dgst -sha256 -verify "$T/rsa.pub" -signature "$T/chk.$s.sig" "$T/msg"
done

# ---- the client's spin before it sleeps (KEYHOLD_SPIN_US, libkeyhold) ----
# Off, and at its longest: the module signs either way. A bad value fails
# C_Initialize with the reason, and the CLI with INVALID_ARGUMENT.
for us in 0 1000; do
  ok "sign with KEYHOLD_SPIN_US=$us" p11 env KEYHOLD_SPIN_US=$us "${PT[@]}" --sign --id "$ID_p256" -m ECDSA-SHA256 \
    -i "$T/msg" -o "$T/spin$us.sig" --signature-format openssl
  ok "verify KEYHOLD_SPIN_US=$us" sslx dgst -sha256 -verify "$T/p256.pub" -signature "$T/spin$us.sig" "$T/msg"
done
if p11 env KEYHOLD_SPIN_US=fast "${PT[@]}" --list-slots > "$T/spinbad.out" 2>&1; then
  fail "the PKCS#11 module took KEYHOLD_SPIN_US=fast"
fi
grep -q "keyhold-pkcs11: KEYHOLD_SPIN_US is 'fast': expected microseconds from 0 to 1000" "$T/spinbad.out" \
  || fail "the PKCS#11 module's bad-spin message: $(cat "$T/spinbad.out")"
KEYHOLD_SPIN_US=2000 expect_err INVALID_ARGUMENT "KEYHOLD_SPIN_US=2000" kh key list
grep -q "KEYHOLD_SPIN_US is '2000'" "$T/err.err" || fail "bad-spin message: $(cat "$T/err.err")"

# ---- principals: a grant shows one key; no grant shows none ----
ok "grant rsa" kh policy grant rsa user:khp11
ok "objects as khp11" p11_as khp11 "${PT[@]}" --list-objects
grep -q "label: *rsa$" "$T/ok.out" || fail "khp11 does not see its key"
grep -q -e "label: *p256$" -e "label: *keyhold-audit$" "$T/ok.out" && fail "khp11 sees keys it has no grant for"
ok "sign as khp11" p11_as khp11 "${PT[@]}" --sign --id "$ID_rsa" -m SHA256-RSA-PKCS -i "$T/msg" -o "$T/u/khp11.sig"
ok "verify khp11" sslx dgst -sha256 -verify "$T/rsa.pub" -signature "$T/u/khp11.sig" "$T/msg"
ok "objects as khp11n" p11_as khp11n "${PT[@]}" --list-objects
grep -q "Private Key Object" "$T/ok.out" && fail "a principal without grants sees private keys: $(cat "$T/ok.out")"
if p11_as khp11n "${PT[@]}" --sign --id "$ID_rsa" -m SHA256-RSA-PKCS -i "$T/msg" -o "$T/u/n.sig" > "$T/n.out" 2>&1; then
  fail "a principal without grants signed"
fi

# ---- GnuTLS: p11tool and certtool through the module ----
ok "p11tool list" p11 p11tool --provider "$P11_MODULE" --list-all
grep -q "object=p256;type=private" "$T/ok.out" || fail "p11tool: no p256 private key URL: $(cat "$T/ok.out")"
cat > "$T/certtool.tmpl" <<EOF
cn = "gnutls.example.com"
EOF
# certtool under a preloaded ASan runtime (a sanitizer build) hangs at exit
# in p11-kit's destructor (freelocale), with SoftHSM2's own module too: the
# GnuTLS signature is checked in plain builds only.
gnutls_keys=(p256 rsa)
if [ -n "$P11_PRELOAD" ]; then
  log "sanitizer build: no certtool signature (certtool hangs at exit under a preloaded ASan runtime)"
  gnutls_keys=()
fi
for k in "${gnutls_keys[@]}"; do
  ok "certtool csr $k" p11 certtool --provider "$P11_MODULE" --generate-request \
    --load-privkey "pkcs11:object=$k;type=private" --template "$T/certtool.tmpl" --outfile "$T/gnutls-$k.csr"
  ok "verify certtool csr $k" sslx req -verify -noout -in "$T/gnutls-$k.csr"
  sslx req -noout -pubkey -in "$T/gnutls-$k.csr" | cmp -s - "$T/$k.pub" || fail "certtool $k: the CSR's key is not keyhold's"
done

# ---- the libp11 engine through the module (as khp11: libp11 0.4.12
# cannot enumerate a token holding an Ed25519 key, and khp11 sees rsa only) ----
"$KH_SRC/scripts/engine-conf.sh" "$P11_MODULE" > "$T/engine.cnf"
chmod 644 "$T/engine.cnf" "$T/rsa.pub"
ok "libp11 csr" p11_as khp11 env OPENSSL_CONF="$T/engine.cnf" openssl req -new -engine pkcs11 -keyform engine \
  -key "pkcs11:object=rsa;type=private" -subj "/CN=libp11.example.com" -out "$T/u/libp11.csr"
ok "verify libp11 csr" sslx req -verify -noout -in "$T/u/libp11.csr"
sslx req -noout -pubkey -in "$T/u/libp11.csr" | cmp -s - "$T/rsa.pub" || fail "libp11: the CSR's key is not keyhold's"

# ---- keyholdd goes away and comes back while pkcs11-tool signs ----
(
  for _ in $(seq 1 400); do
    if p11 "${PT[@]}" --sign --id "$ID_p256" -m ECDSA-SHA256 -i "$T/msg" -o "$T/loop.sig" \
      --signature-format openssl > "$T/loop.out" 2>&1; then
      echo ok
    else
      echo "fail $(grep -o 'CKR_[A-Z_]*\|No slot[a-z ]*' "$T/loop.out" | head -1)"
    fi
    [ -f "$T/loop.stop" ] && break
    sleep 0.02
  done > "$T/loop.log"
) &
loop=$!
for _ in $(seq 1 100); do grep -q '^ok' "$T/loop.log" 2> /dev/null && break; sleep 0.05; done
kh_stop
sleep 0.5
kh_start
for _ in $(seq 1 100); do
  tail -n 1 "$T/loop.log" | grep -q '^ok' && [ "$(grep -c '^fail' "$T/loop.log")" -gt 0 ] && break
  sleep 0.05
done
sleep 0.3
touch "$T/loop.stop"
wait "$loop" || true
python3 - "$T/loop.log" <<'EOF' || fail "reconnect: $(uniq -c "$T/loop.log")"
import sys
runs = [l.split()[0] for l in open(sys.argv[1]) if l.strip()]
# ok..., then failures, then ok again; nothing else.
s = "".join("o" if r == "ok" else "f" for r in runs)
import re
sys.exit(0 if re.fullmatch(r"o+f+o+", s) else 1)
EOF
log "reconnect: $(uniq -c "$T/loop.log" | tr -s ' \n' ' ')"
ok "verify after restart" sslx dgst -sha256 -verify "$T/p256.pub" -signature "$T/loop.sig" "$T/msg"

# The same in one process: the module's pooled connections fail with
# CKR_DEVICE_REMOVED while keyholdd is away and reconnect when it is back.
rm -f "$T/loop.stop"
p11 "$KH_BUILD/tests/integration/kh_p11check" "$P11_MODULE" loop p256 "$T/loop.stop" > "$T/inproc.log" 2>&1 &
loop=$!
for _ in $(seq 1 100); do grep -q '^CKR_OK' "$T/inproc.log" && break; sleep 0.05; done
kh_stop
sleep 0.3
kh_start
for _ in $(seq 1 100); do [ "$(grep -c '^CKR_OK' "$T/inproc.log")" -ge 2 ] && break; sleep 0.05; done
touch "$T/loop.stop"
wait "$loop" || fail "in-process reconnect: $(tr '\n' ' ' < "$T/inproc.log")"
grep -q '^CKR_DEVICE_REMOVED$' "$T/inproc.log" || fail "in-process: no CKR_DEVICE_REMOVED: $(cat "$T/inproc.log")"
log "in-process reconnect: $(tr '\n' ' ' < "$T/inproc.log")"

log "PASS"
