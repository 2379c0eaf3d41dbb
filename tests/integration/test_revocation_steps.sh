#!/usr/bin/env bash
# `cert check` shows every step of the revocation policy it walked ("ocsp:
# unknown (...) -> crl: good (...)"), in text and JSON; and a trust store
# can trust a third-party OCSP responder, one the CA did not issue
# (`truststore set --ocsp-responder-cert`), with `openssl ocsp` (behind
# rev_server.py) signing as that responder. Without the setting its
# answers are refused; with it they count; `none` removes it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"
. "$(dirname "$0")/revocation_lib.sh"

rev_up crl
rev_up ocsp
rev_ca root "Steps Root CA"
rev_leaf root "known.example" "$T/known"
rev_leaf root "stranger.example" "$T/stranger"
# The CA's database forgets the stranger: its responder answers "unknown",
# its CRL does not list it (good).
sed -i '/stranger.example/d' "$REV_CAS/root/index.txt"
rev_gencrl root
kh_start

ok "store" kh truststore add corp "$REV_CAS/root/ca.pem"
ok "policy" kh truststore set corp --revocation ocsp,crl

# ---- the steps walked ----
ok "check (json)" kh --json cert check "$T/stranger.pem" --store corp
cp "$T/ok.out" "$T/steps.json"
[ "$(json_get 'd["status"]' < "$T/steps.json")" = good ] || fail "the stranger is not good per its CRL"
[ "$(json_get '[(s["method"], s["result"]) for s in d["certs"][0]["steps"]]' < "$T/steps.json")" = \
  "[('ocsp', 'unknown'), ('crl', 'good')]" ] || fail "steps: $(json_get 'd["certs"][0]["steps"]' < "$T/steps.json")"
json_get 'd["certs"][0]["steps"][0]["detail"]' < "$T/steps.json" | grep -q "answered 'unknown'" \
  || fail "the ocsp step does not say the responder answered unknown"
json_get 'd["certs"][0]["steps"][1]["detail"]' < "$T/steps.json" | grep -q "next update" \
  || fail "the crl step does not give the CRL's next update"
ok "check (text)" kh cert check "$T/stranger.pem" --store corp
grep -Eq "^    ocsp: unknown \(.*answered 'unknown'\) -> crl: good \(http://127.0.0.1:$CRL_PORT/root.crl, cached, next update " \
  "$T/ok.out" || fail "the text does not walk the steps: $(cat "$T/ok.out")"

# ---- a trusted third-party responder ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tp.key" -subj "/CN=Third Party Responder" \
  -days 30 -addext "extendedKeyUsage=OCSPSigning" -addext "keyUsage=critical,digitalSignature" -out "$T/tp.pem" 2> /dev/null \
  || fail "responder certificate"
cp "$T/tp.pem" "$REV_CAS/root/ocsp.pem"
cp "$T/tp.key" "$REV_CAS/root/ocsp.key"
ok "ocsp only" kh truststore set corp --revocation ocsp
expect_err FAILED_PRECONDITION "a responder the CA did not issue" kh cert check "$T/known.pem" --store corp
expect_msg "not signed by the issuer or a responder it authorised"
cat "$T/tp.pem" "$REV_CAS/root/ca.pem" > "$T/two.pem"
expect_err INVALID_ARGUMENT "two certificates" kh truststore set corp --ocsp-responder-cert "$T/two.pem"
expect_err NOT_FOUND "no such file" kh truststore set corp --ocsp-responder-cert "$T/missing.pem"
expect_err NOT_FOUND "no such store" kh truststore set nostore --ocsp-responder-cert "$T/tp.pem"
ok "trust it" kh --json truststore set corp --ocsp-responder-cert "$T/tp.pem"
[ "$(json_get 'd["ocsp_responder"]["fingerprint_sha256"]' < "$T/ok.out")" = "$(pki_fp "$T/tp.pem")" ] \
  || fail "the answer does not name the responder"
ok "list" kh --json truststore list corp
[ "$(json_get 'd["stores"][0]["ocsp_responder"]["subject"]' < "$T/ok.out")" = "CN=Third Party Responder" ] \
  || fail "truststore list does not show the responder"
ok "good via the trusted responder" kh --json cert check "$T/known.pem" --store corp
[ "$(json_get '[(s["method"], s["result"]) for s in d["certs"][0]["steps"]]' < "$T/ok.out")" = "[('ocsp', 'good')]" ] \
  || fail "not good via ocsp: $(cat "$T/ok.out")"
rev_revoke root "$T/known.pem"
expect_err FAILED_PRECONDITION "revoked via the trusted responder" kh cert check "$T/known.pem" --store corp
grep -q "ocsp: revoked (keyCompromise" "$T/err.out" || fail "the step is not revoked: $(cat "$T/err.out")"
rc=0
kh --json cert check "$T/known.pem" --store corp > "$T/rev.json" 2> /dev/null || rc=$?
[ "$rc" = 6 ] || fail "a revoked certificate exits $rc, not 6, under --json"
[ "$(json_get 'd["certs"][0]["steps"][0]["result"]' < "$T/rev.json")" = revoked ] || fail "the JSON step is not revoked"
ok "untrust it" kh truststore set corp --ocsp-responder-cert none
expect_err FAILED_PRECONDITION "refused again" kh cert check "$T/known.pem" --store corp
expect_msg "not signed by the issuer"
log "cert check walks its steps; a trusted third-party OCSP responder counts only when configured"
