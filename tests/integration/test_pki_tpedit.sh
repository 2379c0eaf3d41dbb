#!/usr/bin/env bash
# Editable trustpoints (issue 16): `trustpoint set` of what the next
# enrollment asks for (subject, SANs, EKU, digest, enrollment mode,
# validity, FQDN), `--fqdn none`, `--ip-san`, the SAN types xmppAddr (RFC
# 6120) and otherName by OID, `trustpoint discard-csr`, and `trustpoint
# show` printing key usage, digest, enrollment and validity. Every CSR and
# certificate is read back with openssl; each check has its failing twin.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

kh_start
jhas() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$3"; }; }
json_err() {
  local code=$1 desc=$2; shift 2
  expect_rc "$(kh_exit_of "$code")" "$desc" "$@"
  jhas "$T/rc.out" "{\"error\":{\"code\":\"$code\"" "$desc: no $code error document"
}

# ---- create: --fqdn none, --ip-san, xmppAddr and otherName SANs ----
ok "create" kh --json trustpoint create ed --generate p256 --subject "CN=192.0.2.7,O=Example" --ip-san --fqdn none \
  --san "DNS:ed.example.com,xmppAddr:svc@example.com,otherName:1.2.3.4;UTF8:ed-id" --enrollment terminal
jhas "$T/ok.out" '"san":"DNS:ed.example.com,xmppAddr:svc@example.com,otherName:1.2.3.4;UTF8:ed-id,IP:192.0.2.7"' \
  "--ip-san did not add the CN's IP to the SANs"
ok "enroll" kh trustpoint enroll ed --out "$T/ed.csr"
pki_req_verify "$T/ed.csr"
openssl req -in "$T/ed.csr" -noout -text > "$T/ed.txt" || fail "openssl cannot read the CSR"
sans=$(grep -A1 'Subject Alternative Name' "$T/ed.txt" | tail -1)
for want in "DNS:ed.example.com" "IP Address:192.0.2.7" "svc@example.com"; do
  case "$sans" in *"$want"*) ;; *) fail "the CSR's SANs ($sans) lack $want" ;; esac
done
case "$sans" in *"DNS:none"*) fail "--fqdn none became a DNS SAN" ;; esac
# The otherName's OID and UTF8String value, as DER: 06 03 2a 03 04 (1.2.3.4), 0c 05 "ed-id".
openssl req -in "$T/ed.csr" -outform DER | od -An -tx1 -v | tr -d ' \n' > "$T/ed.hex"
grep -q "06032a0304a0070c0565642d6964" "$T/ed.hex" || fail "the CSR lacks otherName 1.2.3.4 = UTF8 'ed-id'"
# id-on-xmppAddr (1.3.6.1.5.5.7.8.5) with UTF8String "svc@example.com".
grep -q "06082b06010505070805a0110c0f737663406578616d706c652e636f6d" "$T/ed.hex" || fail "the CSR lacks the xmppAddr"

expect_err INVALID_ARGUMENT "otherName without ;UTF8:" kh trustpoint create bad --generate p256 --subject CN=x \
  --san "otherName:1.2.3.4:x"
expect_msg "otherName:OID;UTF8:value"
expect_err INVALID_ARGUMENT "otherName with a bad OID" kh trustpoint create bad --generate p256 --subject CN=x \
  --san "otherName:1.2.x;UTF8:v"
expect_err INVALID_ARGUMENT "empty xmppAddr" kh trustpoint create bad --generate p256 --subject CN=x --san "xmppAddr:"
expect_err INVALID_ARGUMENT "--ip-san with a host name CN" kh trustpoint create bad --generate p256 \
  --subject CN=host.example.com --ip-san
expect_msg "is not an IPv4 or IPv6 address"
expect_err NOT_FOUND "nothing was created by the refusals" kh trustpoint show bad

# ---- show: key usage, digest, enrollment, validity in text and JSON ----
ok "show" kh trustpoint show ed
for want in "key usage:   digitalSignature" "digest:      default" "enrollment:  terminal" "validity:    365 days"; do
  grep -qF "$want" "$T/ok.out" || { cat "$T/ok.out" >&2; fail "show lacks '$want'"; }
done
ok "show --json" kh --json trustpoint show ed
jhas "$T/ok.out" '"key_usage":"digitalSignature"' "show --json key_usage"
jhas "$T/ok.out" '"csr_pending":true' "the CSR is not pending"

# ---- discard-csr ----
ok "discard-csr" kh --json trustpoint discard-csr ed
jhas "$T/ok.out" '"csr_pending":false' "discard-csr left the CSR"
expect_err FAILED_PRECONDITION "discard-csr twice" kh trustpoint discard-csr ed
expect_msg "has no pending CSR"
json_err NOT_FOUND "discard-csr of an unknown trustpoint" kh --json trustpoint discard-csr nope
expect_err USAGE "discard-csr without a name" kh trustpoint discard-csr

# ---- set: the next enrollment ----
ok "set" kh --json trustpoint set ed --subject "CN=ed2.example.com,O=Example" --san "DNS:alt.example.com" \
  --fqdn ed2.example.com --eku clientAuth --digest sha384 --days 30 --enrollment self
for want in '"subject":"CN=ed2.example.com,O=Example"' '"fqdn":"ed2.example.com"' '"san":"DNS:alt.example.com"' \
  '"eku":"clientAuth"' '"enrollment":"self"' '"digest":"sha384"' '"validity_days":30'; do
  jhas "$T/ok.out" "$want" "set did not take $want"
done
ok "enroll with the new settings" kh trustpoint enroll ed --out "$T/ed2.pem"
openssl x509 -in "$T/ed2.pem" -noout -text > "$T/ed2.txt" || fail "openssl cannot read the certificate"
grep -q "Subject: O = Example, CN = ed2.example.com" "$T/ed2.txt" || fail "the new subject was not used"
grep -q "DNS:ed2.example.com, DNS:alt.example.com" "$T/ed2.txt" || fail "the new FQDN and SAN were not used"
grep -q "TLS Web Client Authentication" "$T/ed2.txt" || fail "the new EKU was not used"
grep -q "TLS Web Server Authentication" "$T/ed2.txt" && fail "the old EKU stayed"
grep -q "ecdsa-with-SHA384" "$T/ed2.txt" || fail "the new digest was not used"
start=$(date -d "$(openssl x509 -in "$T/ed2.pem" -noout -startdate | cut -d= -f2)" +%s)
end=$(date -d "$(openssl x509 -in "$T/ed2.pem" -noout -enddate | cut -d= -f2)" +%s)
[ $(( (end - start) / 86400 )) = 30 ] || fail "the certificate is not valid for 30 days"
openssl verify -CAfile "$T/ed2.pem" "$T/ed2.pem" > /dev/null || fail "the self-signed certificate does not verify"
ok "set --fqdn none" kh --json trustpoint set ed --fqdn none
ok "set --ip-san" kh trustpoint set ed --subject "CN=2001:db8::5" --ip-san --enrollment terminal
ok "enroll terminal" kh trustpoint enroll ed --out "$T/ed3.csr"
openssl req -in "$T/ed3.csr" -noout -text > "$T/ed3.txt"
grep -q "IP Address:2001:DB8:0:0:0:0:0:5" "$T/ed3.txt" || { cat "$T/ed3.txt" >&2; fail "--ip-san of an IPv6 CN"; }
grep -q "DNS:ed2.example.com" "$T/ed3.txt" && fail "--fqdn none kept the FQDN SAN"

expect_err INVALID_ARGUMENT "set a bad subject" kh trustpoint set ed --subject "CN"
expect_err INVALID_ARGUMENT "set a bad SAN" kh trustpoint set ed --san "FOO:bar"
expect_err INVALID_ARGUMENT "set --ip-san on a host name" kh trustpoint set ed --subject CN=h.example.com --ip-san
expect_err INVALID_ARGUMENT "set MD5" kh trustpoint set ed --digest md5
expect_msg "md5 is refused"
expect_err USAGE "set an unknown digest" kh trustpoint set ed --digest sha999
expect_err USAGE "set a bad enrollment" kh trustpoint set ed --enrollment scep
expect_err USAGE "set --days 0" kh trustpoint set ed --days 0
expect_err USAGE "set nothing" kh trustpoint set ed
json_err NOT_FOUND "set an unknown trustpoint" kh --json trustpoint set nope --subject CN=x
ok "the refusals changed nothing" kh --json trustpoint show ed
jhas "$T/ok.out" '"subject":"CN=2001:db8::5"' "a refused set changed the subject"
# A digest the key cannot use: Ed25519 signs without one.
if kh_has_type ed25519; then
  ok "create ed25519" kh trustpoint create edx --generate ed25519 --subject CN=edx
  expect_err INVALID_ARGUMENT "set --digest on an Ed25519 trustpoint" kh trustpoint set edx --digest sha384
fi

ok "status" kh status
kh_stop
