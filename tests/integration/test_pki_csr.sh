#!/usr/bin/env bash
# CSRs signed in the token: for every key type the token offers, `openssl
# req -verify` accepts the CSR, the subject/SAN/EKU/key usage are what was
# asked, the digest is the one asked; SHA-1 and MD5 are refused; the
# challengePassword attribute is carried; malformed input is refused with
# INVALID_ARGUMENT and never crashes the service.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

kh_start
SUBJ="CN=web.example.com,O=Example\, Inc.,OU=Ops,C=US"
SAN="DNS:web.example.com,DNS:*.web.example.com,IP:192.0.2.1,IP:2001:db8::1,email:ops@example.com,URI:spiffe://example.com/web"

checked=0
for type in rsa2048 rsa3072 p256 p384 p521 ed25519; do
  kh_has_type "$type" || continue
  ok "generate $type" kh key generate "c-$type" --type "$type"
  kh key show "c-$type" --pem > "$T/c-$type.pub"
  digests="sha256 sha384 sha512"
  [ "$type" = ed25519 ] && digests="none"
  for d in $digests; do
    csr="$T/c-$type-$d.csr"
    if [ "$d" = none ]; then
      ok "csr $type" kh csr "c-$type" --subject "$SUBJ" --san "$SAN" --out "$csr"
    else
      ok "csr $type $d" kh csr "c-$type" --subject "$SUBJ" --san "$SAN" --digest "$d" --out "$csr"
    fi
    pki_req_verify "$csr" || fail "$type/$d: openssl req -verify rejects the CSR"
    openssl req -in "$csr" -noout -text > "$csr.txt"
    # The token's key is in the CSR.
    cmp -s <(pki_pub_of "$csr") <(openssl pkey -pubin -in "$T/c-$type.pub" -outform DER) \
      || fail "$type: the CSR carries another public key"
    # Subject in RFC 4514 order, as typed.
    subj=$(openssl req -in "$csr" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    [ "$subj" = "$SUBJ" ] || fail "$type: subject '$subj' != '$SUBJ'"
    for want in "DNS:web.example.com" "DNS:\*.web.example.com" "IP Address:192.0.2.1" "IP Address:2001:DB8:0:0:0:0:0:1" \
      "email:ops@example.com" "URI:spiffe://example.com/web" "TLS Web Server Authentication, TLS Web Client Authentication" \
      "Digital Signature"; do
      grep -q "$want" "$csr.txt" || { cat "$csr.txt" >&2; fail "$type/$d: CSR lacks '$want'"; }
    done
    case "$type/$d" in
    rsa*/sha256) grep -q "sha256WithRSAEncryption" "$csr.txt" || fail "$type: not sha256WithRSAEncryption" ;;
    rsa*/sha384) grep -q "sha384WithRSAEncryption" "$csr.txt" || fail "$type: not sha384WithRSAEncryption" ;;
    rsa*/sha512) grep -q "sha512WithRSAEncryption" "$csr.txt" || fail "$type: not sha512WithRSAEncryption" ;;
    ed25519/*) grep -q "Signature Algorithm: ED25519" "$csr.txt" || fail "$type: not ED25519" ;;
    *) grep -q "ecdsa-with-${d^^}" "$csr.txt" || fail "$type/$d: not ecdsa-with-${d^^}" ;;
    esac
    case "$type" in
    rsa*) grep -q "Key Encipherment" "$csr.txt" || fail "$type: RSA key usage lacks keyEncipherment" ;;
    *) ! grep -q "Key Encipherment" "$csr.txt" || fail "$type: keyEncipherment on a non-RSA key" ;;
    esac
    checked=$((checked + 1))
  done
  # The negative twin: a CSR with one flipped signature byte must not verify.
  openssl req -in "$T/c-$type-${digests%% *}.csr" -outform DER -out "$T/flip.der"
  python3 - "$T/flip.der" <<'EOF'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[-3] ^= 0x01; open(p, 'wb').write(b)
EOF
  pki_req_verify "$T/c-$type-${digests%% *}.csr" || fail "$type: the unflipped CSR does not verify"
  if pki_req_verify "$T/flip.der" -inform DER; then
    fail "$type: a CSR with a flipped signature byte verified"
  fi
done
[ "$checked" -gt 0 ] || fail "no key type could be checked"

# Default EKU and digest; a custom EKU list; stdout output.
if kh_has_type p256; then
  ok "csr default" kh csr c-p256 --subject "CN=plain"
  pki_req_verify "$T/ok.out" || fail "CSR on stdout does not verify"
  openssl req -in "$T/ok.out" -noout -text | grep -q "ecdsa-with-SHA256" || fail "default digest is not SHA-256"
  openssl req -in "$T/ok.out" -noout -text | grep -q "TLS Web Server Authentication, TLS Web Client Authentication" \
    || fail "default EKU is not serverAuth,clientAuth"
  ok "csr eku" kh csr c-p256 --subject "CN=signer" --eku "codeSigning,1.3.6.1.5.5.7.3.8" --out "$T/eku.csr"
  openssl req -in "$T/eku.csr" -noout -text | grep -q "Code Signing, Time Stamping" || fail "custom EKU missing"

  # challengePassword (PKCS#9) for SCEP, read from a file.
  printf 'one-time-secret\n' > "$T/challenge"
  ok "csr challenge" kh csr c-p256 --subject "CN=scep" --challenge-password-file "$T/challenge" --out "$T/ch.csr"
  pki_req_verify "$T/ch.csr" || fail "challenge CSR does not verify"
  openssl req -in "$T/ch.csr" -noout -text | grep -A1 "challengePassword" | grep -q "one-time-secret" \
    || fail "challengePassword attribute missing"

  # JSON: one document carrying the PEM.
  ok "csr json" kh --json csr c-p256 --subject "CN=json"
  json_get 'd["csr_pem"]' < "$T/ok.out" > "$T/j.csr"
  pki_req_verify "$T/j.csr" || fail "--json CSR does not verify"

  # Refused digests name the rule.
  expect_err INVALID_ARGUMENT "SHA-1 CSR" kh csr c-p256 --subject "CN=x" --digest sha1
  expect_msg "SHA-1 and MD5"
  expect_err INVALID_ARGUMENT "MD5 CSR" kh csr c-p256 --subject "CN=x" --digest md5
  expect_err INVALID_ARGUMENT "SHA-224 CSR" kh csr c-p256 --subject "CN=x" --digest sha224
  expect_err USAGE "unknown digest" kh csr c-p256 --subject "CN=x" --digest sha3
  # Malformed subjects, SANs and EKUs.
  expect_err INVALID_ARGUMENT "empty subject" kh csr c-p256 --subject ""
  expect_err INVALID_ARGUMENT "subject without =" kh csr c-p256 --subject "web.example.com"
  expect_msg "TYPE=value"
  expect_err INVALID_ARGUMENT "unknown attribute" kh csr c-p256 --subject "CN=a,XX=b"
  expect_msg "unknown attribute type 'XX'"
  expect_err INVALID_ARGUMENT "bad country" kh csr c-p256 --subject "CN=a,C=USA"
  expect_err INVALID_ARGUMENT "CN too long" kh csr c-p256 --subject "CN=$(printf 'a%.0s' $(seq 1 65))"
  expect_err INVALID_ARGUMENT "bad SAN type" kh csr c-p256 --subject "CN=a" --san "FOO:bar"
  expect_err INVALID_ARGUMENT "bad SAN IP" kh csr c-p256 --subject "CN=a" --san "IP:300.1.1.1"
  expect_msg "IP:300.1.1.1"
  expect_err INVALID_ARGUMENT "bad SAN DNS" kh csr c-p256 --subject "CN=a" --san "DNS:bad_host!"
  expect_err INVALID_ARGUMENT "bad EKU" kh csr c-p256 --subject "CN=a" --eku "serverAuth,nonsense"
  expect_msg "unknown EKU 'nonsense'"
  expect_err INVALID_ARGUMENT "control character" kh csr c-p256 --subject "$(printf 'CN=a\tb')"
  expect_err NOT_FOUND "unknown key" kh csr no-such-key --subject "CN=a"
  expect_err INVALID_ARGUMENT "bad key name" kh csr 'a/b' --subject "CN=a"
fi
if kh_has_type ed25519; then
  expect_err INVALID_ARGUMENT "Ed25519 with a digest" kh csr c-ed25519 --subject "CN=x" --digest sha256
  expect_msg "Ed25519"
fi

# The service survived all of it.
ok "status after bad input" kh status
kh_stop
