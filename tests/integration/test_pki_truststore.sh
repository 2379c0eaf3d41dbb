#!/usr/bin/env bash
# Trust stores and CRLs: add (PEM bundle, DER, PKCS#7), the duplicate
# self-signed DN rule, list, remove; verify with OpenSSL semantics
# (X509_STRICT) against the store plus --untrusted intermediates, at a
# time, for a host or IP, for a purpose, and with CRLs on the whole chain
# (given with --crl or stored with `crl import`); `crl list`, `crl remove`,
# a stale CRL's warning. Each check has its
# failing twin.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

kh_start
pki_ca_init "$T/root" "Test Root CA"
pki_ca_init "$T/sub" "Test Issuing CA" "$T/root"
pki_ca_init "$T/other" "Other Root CA"
pki_ca_init "$T/dup" "Test Root CA"   # same CN as root, another key

# leaf CN SAN EKU OUT [openssl ca options...]: a software leaf from the issuing CA.
leaf() {
  local cn=$1 san=$2 eku=$3 out=$4
  shift 4
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.key" 2> /dev/null
  openssl req -new -key "$out.key" -subj "/CN=$cn" -addext "subjectAltName=$san" -addext "extendedKeyUsage=$eku" \
    -out "$out.csr" 2> /dev/null || fail "cannot make the CSR of $cn"
  pki_ca_sign "$T/sub" "$out.csr" "$out.pem" "$@"
}
leaf www.example.com "DNS:www.example.com,IP:192.0.2.5" serverAuth "$T/server"
leaf client.example.com "DNS:client.example.com" clientAuth "$T/client"
leaf old.example.com "DNS:old.example.com" serverAuth "$T/expired" -startdate 20200101000000Z -enddate 20210101000000Z
leaf revoked.example.com "DNS:revoked.example.com" serverAuth "$T/revoked"
cat "$T/server.pem" "$T/sub/ca.pem" > "$T/server-chain.pem"
root_fp=$(pki_fp "$T/root/ca.pem")
sub_fp=$(pki_fp "$T/sub/ca.pem")

# ---- add ----
ok "add root (PEM)" kh truststore add web "$T/root/ca.pem"
grep -q "1 added, 0 already present" "$T/ok.out" || fail "add did not add the root"
ok "add again" kh truststore add web "$T/root/ca.pem"
grep -q "0 added, 1 already present" "$T/ok.out" || fail "a second add duplicated the root"
openssl x509 -in "$T/other/ca.pem" -outform DER -out "$T/other.der"
ok "add DER" kh truststore add partners "$T/other.der"
openssl crl2pkcs7 -nocrl -certfile "$T/sub/ca.pem" -certfile "$T/root/ca.pem" -out "$T/chain.p7b"
ok "add PKCS#7" kh --json truststore add tomcat-trust "$T/chain.p7b"
[ "$(json_get 'len(d["added"])' < "$T/ok.out")" = 2 ] || fail "the PKCS#7 bundle did not add 2 certificates"
cat "$T/sub/ca.pem" "$T/root/ca.pem" > "$T/bundle.pem"
ok "add PEM bundle" kh truststore add cup-trust "$T/bundle.pem" "$T/other.der"
grep -q "3 added" "$T/ok.out" || fail "the bundle and DER file did not add 3 certificates"

# Two self-signed certificates with one subject DN and two keys in one
# store are refused, and nothing of a refused batch is stored (the whole
# rule: test_pki_trustpool).
expect_err ALREADY_EXISTS "duplicate self-signed DN" kh truststore add web "$T/dup/ca.pem"
expect_msg "subject 'CN=Test Root CA'"
expect_msg "$root_fp"
expect_err ALREADY_EXISTS "duplicate DN in one batch" kh truststore add fresh "$T/other/ca.pem" "$T/root/ca.pem" "$T/dup/ca.pem"
expect_err NOT_FOUND "a refused batch stored nothing" kh truststore list fresh
ok "the same CN in another store is fine" kh truststore add dupstore "$T/dup/ca.pem"

# Malformed input.
printf 'hello\n' > "$T/junk"
expect_err INVALID_ARGUMENT "junk" kh truststore add web "$T/junk"
expect_msg "expected PEM, DER or PKCS#7"
: > "$T/empty"
expect_err INVALID_ARGUMENT "empty file" kh truststore add web "$T/empty"
expect_err INVALID_ARGUMENT "private key" kh truststore add web "$T/server.key"
expect_msg "private key"
head -c 500 /dev/urandom > "$T/random.der"
expect_err INVALID_ARGUMENT "random DER" kh truststore add web "$T/random.der"
expect_err INVALID_ARGUMENT "bad store name" kh truststore add 'web/x' "$T/root/ca.pem"

# ---- list ----
ok "list all" kh --json truststore list
json_get '[s["name"] for s in d["stores"]]' < "$T/ok.out" | grep -q "'web'" || fail "list lacks web"
ok "list web" kh --json truststore list web
[ "$(json_get 'd["stores"][0]["certs"][0]["fingerprint_sha256"]' < "$T/ok.out")" = "$root_fp" ] || fail "list web lacks the root"
[ "$(json_get 'd["stores"][0]["certs"][0]["self_signed"]' < "$T/ok.out")" = true ] || fail "the root is not marked self-signed"
expect_err NOT_FOUND "list unknown store" kh truststore list nope

# ---- verify ----
ok "verify with --untrusted" kh truststore verify web "$T/server.pem" --untrusted "$T/sub/ca.pem"
grep -q "OK" "$T/ok.out" || fail "verify did not say OK"
expect_err FAILED_PRECONDITION "verify without the intermediate" kh truststore verify web "$T/server.pem"
expect_msg "unable to get local issuer certificate"
ok "verify a file with its chain" kh truststore verify web "$T/server-chain.pem"
ok "verify in a store holding the intermediate" kh truststore verify tomcat-trust "$T/server.pem"
expect_err FAILED_PRECONDITION "verify against the wrong store" kh truststore verify partners "$T/server-chain.pem"

# JSON: one document, valid or not.
ok "verify json" kh --json truststore verify web "$T/server-chain.pem"
[ "$(json_get 'd["valid"]' < "$T/ok.out")" = true ] || fail "--json verify is not valid"
[ "$(json_get 'len(d["chain"])' < "$T/ok.out")" = 3 ] || fail "the verified chain is not 3 long"
rc=0; kh --json truststore verify web "$T/server.pem" > "$T/j.out" 2> /dev/null || rc=$?
[ "$rc" = 6 ] || fail "--json invalid verify exited $rc"
[ "$(json_get 'd["valid"]' < "$T/j.out")" = false ] || fail "--json invalid verify says valid"
[ "$(json_get 'd["error"]["code"]' < "$T/j.out")" = FAILED_PRECONDITION ] || fail "--json invalid verify lacks the error object"

# Host and IP.
ok "verify host" kh truststore verify web "$T/server-chain.pem" --host www.example.com
expect_err FAILED_PRECONDITION "verify wrong host" kh truststore verify web "$T/server-chain.pem" --host wrong.example.com
expect_msg "hostname mismatch"
ok "verify ip" kh truststore verify web "$T/server-chain.pem" --ip 192.0.2.5
expect_err FAILED_PRECONDITION "verify wrong ip" kh truststore verify web "$T/server-chain.pem" --ip 192.0.2.6
expect_msg "IP address mismatch"
expect_err INVALID_ARGUMENT "verify bad ip" kh truststore verify web "$T/server-chain.pem" --ip not-an-ip

# Purpose.
ok "verify serverAuth" kh truststore verify web "$T/server-chain.pem" --purpose serverAuth
expect_err FAILED_PRECONDITION "server certificate for clientAuth" kh truststore verify web "$T/server-chain.pem" --purpose clientAuth
expect_msg "unsuitable certificate purpose"
ok "verify clientAuth" kh truststore verify web "$T/client.pem" --untrusted "$T/sub/ca.pem" --purpose clientAuth
expect_err FAILED_PRECONDITION "client certificate for serverAuth" kh truststore verify web "$T/client.pem" \
  --untrusted "$T/sub/ca.pem" --purpose serverAuth

# Time: an expired chain, and --at.
expect_err FAILED_PRECONDITION "expired chain" kh truststore verify web "$T/expired.pem" --untrusted "$T/sub/ca.pem"
expect_msg "certificate has expired"
soon=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
ok "verify --at tomorrow" kh truststore verify web "$T/server-chain.pem" --at "$soon"
expect_err FAILED_PRECONDITION "verify --at in 2040" kh truststore verify web "$T/server-chain.pem" --at 2040-01-01T00:00:00Z
expect_msg "expired"
expect_err FAILED_PRECONDITION "verify --at before the CA existed" kh truststore verify web "$T/server-chain.pem" --at 2001-01-01T00:00:00+02:00
expect_msg "not yet valid"
expect_err USAGE "bad --at" kh truststore verify web "$T/server-chain.pem" --at yesterday

# CRLs on the whole chain (made with openssl ca -gencrl).
openssl ca -batch -config "$T/sub/ca.cnf" -revoke "$T/revoked.pem" -crl_reason keyCompromise 2> /dev/null \
  || fail "openssl ca -revoke failed"
openssl ca -batch -config "$T/sub/ca.cnf" -gencrl -out "$T/sub.crl" 2> /dev/null || fail "gencrl (sub) failed"
openssl ca -batch -config "$T/root/ca.cnf" -gencrl -out "$T/root.crl" 2> /dev/null || fail "gencrl (root) failed"
ok "good leaf with CRLs" kh truststore verify web "$T/server-chain.pem" --crl "$T/sub.crl" --crl "$T/root.crl"
expect_err FAILED_PRECONDITION "revoked leaf" kh truststore verify web "$T/revoked.pem" --untrusted "$T/sub/ca.pem" \
  --crl "$T/sub.crl" --crl "$T/root.crl"
expect_msg "certificate revoked"
ok "revoked leaf without CRLs passes (the twin)" kh truststore verify web "$T/revoked.pem" --untrusted "$T/sub/ca.pem"
expect_err FAILED_PRECONDITION "a CRL missing for the intermediate" kh truststore verify web "$T/server-chain.pem" --crl "$T/sub.crl"
expect_msg "unable to get certificate CRL"
openssl crl -in "$T/sub.crl" -outform DER -out "$T/sub.crl.der"
expect_err FAILED_PRECONDITION "revoked leaf (DER CRL)" kh truststore verify web "$T/revoked.pem" --untrusted "$T/sub/ca.pem" \
  --crl "$T/sub.crl.der" --crl "$T/root.crl"
expect_err INVALID_ARGUMENT "a CRL that is not one" kh truststore verify web "$T/server-chain.pem" --crl "$T/junk"

# crl import: the CRL is kept with the store and used by verify.
expect_err FAILED_PRECONDITION "CRL whose issuer is not in the store" kh crl import web "$T/sub.crl"
expect_msg "not in trust store"
ok "add the intermediate" kh truststore add web "$T/sub/ca.pem"
ok "crl import (PEM)" kh crl import web "$T/sub.crl"
grep -q "1 revoked" "$T/ok.out" || fail "crl import did not count the revocation"
ok "crl import (DER)" kh crl import web <(openssl crl -in "$T/root.crl" -outform DER)
expect_err FAILED_PRECONDITION "stored CRLs: revoked" kh truststore verify web "$T/revoked.pem"
expect_msg "certificate revoked"
ok "stored CRLs: good" kh truststore verify web "$T/server.pem"
ok "list shows the CRLs" kh --json truststore list web
[ "$(json_get 'len(d["stores"][0]["crls"])' < "$T/ok.out")" = 2 ] || fail "the store does not hold 2 CRLs"
openssl ca -batch -config "$T/sub/ca.cnf" -gencrl -crl_lastupdate 20200101000000Z -crl_nextupdate 20400101000000Z \
  -out "$T/sub-old.crl" 2> /dev/null || fail "gencrl (old) failed"
expect_err FAILED_PRECONDITION "an older CRL" kh crl import web "$T/sub-old.crl"
expect_msg "newer CRL"
# A CRL under the right name but the wrong key.
openssl ca -batch -config "$T/dup/ca.cnf" -gencrl -out "$T/forged.crl" 2> /dev/null
expect_err FAILED_PRECONDITION "forged CRL" kh crl import web "$T/forged.crl"
expect_msg "does not verify"
expect_err INVALID_ARGUMENT "crl import junk" kh crl import web "$T/junk"
expect_err NOT_FOUND "crl import unknown store" kh crl import nope "$T/sub.crl"

# crl list / remove. The root's CRL revokes nothing (no revokedCertificates
# at all): 0 entries, not 4294967295. crlNumber is shown in decimal too.
ok "crl list" kh --json crl list web
[ "$(json_get 'len(d["crls"])' < "$T/ok.out")" = 2 ] || fail "crl list does not show the 2 CRLs"
[ "$(json_get '[c["crl"]["revoked"] for c in d["crls"] if c["crl"]["issuer"]=="CN=Test Root CA"]' < "$T/ok.out")" = "[0]" ] \
  || fail "the empty CRL does not count 0 entries: $(cat "$T/ok.out")"
[ "$(json_get '[c["crl"]["number_decimal"] for c in d["crls"] if c["crl"]["issuer"]=="CN=Test Issuing CA"]' < "$T/ok.out")" = \
  "['$((16#$(openssl crl -in "$T/sub.crl" -noout -crlnumber | sed 's/.*=//')))']" ] || fail "crlNumber in decimal is wrong"
[ "$(json_get 'sorted(set(c["source"] for c in d["crls"]))' < "$T/ok.out")" = "['import']" ] || fail "source is not import"
sub_crl_fp=$(json_get '[c["crl"]["fingerprint_sha256"] for c in d["crls"] if c["crl"]["issuer"]=="CN=Test Issuing CA"][0]' < "$T/ok.out")
[ "$sub_crl_fp" = "$(openssl crl -in "$T/sub.crl" -outform DER | sha256sum | cut -d' ' -f1)" ] || fail "the CRL fingerprint is not its SHA-256"
ok "crl list, text" kh crl list web
grep -q "CN=Test Issuing CA" "$T/ok.out" || fail "crl list text lacks the issuer"
grep -q 4294967295 "$T/ok.out" && fail "crl list counts an empty CRL as 4294967295"
ok "crl list, every store" kh --json crl list
[ "$(json_get 'len(d["crls"])' < "$T/ok.out")" -ge 2 ] || fail "crl list without a store misses CRLs"
expect_err NOT_FOUND "crl list of an unknown store" kh crl list nope
ok "crl remove by issuer" kh --json crl remove web "CN=Test Root CA" --force
[ "$(json_get 'd["removed"]["crl"]["issuer"]' < "$T/ok.out")" = "CN=Test Root CA" ] || fail "crl remove answered another CRL"
expect_err NOT_FOUND "crl remove twice" kh crl remove web "CN=Test Root CA"
expect_msg "keyhold crl list web"
expect_err FAILED_PRECONDITION "the root's CRL is gone: the chain lacks one" kh truststore verify web "$T/server.pem"
# A CRL past its nextUpdate imports with a warning (and verify calls it expired).
openssl ca -batch -config "$T/root/ca.cnf" -gencrl -crl_lastupdate 20200101000000Z -crl_nextupdate 20210101000000Z \
  -out "$T/root-stale.crl" 2> /dev/null || fail "gencrl (stale) failed"
ok "stale CRL imports" kh crl import web "$T/root-stale.crl"
grep -q "warning: the CRL from 'CN=Test Root CA' is past its nextUpdate (2021-01-01T00:00:00Z)" "$T/ok.err" \
  || { cat "$T/ok.err" >&2; fail "a stale CRL imported without a warning"; }
ok "stale CRL, --json" kh --json crl import web "$T/root-stale.crl"
[ "$(json_get 'len(d["warnings"])' < "$T/ok.out")" = 1 ] || fail "--json import lacks the warning"
expect_err FAILED_PRECONDITION "verify with the stale CRL" kh truststore verify web "$T/server.pem"
expect_msg "CRL has expired"
ok "fresh CRL again" kh crl import web "$T/root.crl"
grep -q warning "$T/ok.err" && fail "a fresh CRL imported with a warning"
ok "crl remove by fingerprint (colons)" kh crl remove --force web "$(echo "$sub_crl_fp" | sed 's/../&:/g; s/:$//')"
ok "one CRL left" kh --json crl list web
[ "$(json_get 'len(d["crls"])' < "$T/ok.out")" = 1 ] || fail "crl remove by fingerprint removed nothing"
expect_err NOT_FOUND "crl remove from an unknown store" kh crl remove nope "CN=Test Root CA"
expect_err INVALID_ARGUMENT "crl remove without a name" kh crl remove web ""
ok "sub CRL back" kh crl import web "$T/sub.crl"

# ---- remove ----
fpc=$(openssl x509 -in "$T/sub/ca.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
ok "remove (colons, upper case)" kh truststore remove web "$fpc"
expect_err FAILED_PRECONDITION "verify without the removed intermediate" kh truststore verify web "$T/server.pem"
expect_err NOT_FOUND "remove twice" kh truststore remove web "$sub_fp"
expect_err INVALID_ARGUMENT "remove bad fingerprint" kh truststore remove web 1234
expect_err NOT_FOUND "remove from unknown store" kh truststore remove nope "$sub_fp"
ok "remove the last certificate" kh --json truststore remove partners "$(pki_fp "$T/other/ca.pem")"
ok "the emptied store stays (truststore delete removes it)" kh truststore list partners
expect_err NOT_FOUND "verify against an unknown store" kh truststore verify nope "$T/server-chain.pem"

ok "status" kh status
kh_stop
