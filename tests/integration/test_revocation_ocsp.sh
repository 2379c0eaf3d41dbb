#!/usr/bin/env bash
# Revocation by OCSP: `openssl ocsp` answers on 127.0.0.1 for an issuing CA
# made with `openssl ca`, signing with a delegated responder certificate
# (id-kp-OCSPSigning). good, revoked (keyCompromise) and unknown answers as
# `cert check`, `truststore verify` and `trustpoint import` report them;
# the responder down with hard-fail and soft-fail, and falling back to
# CRLs; a nonce in every request and a response with another nonce
# refused (ocsp_nonce = required also refuses one without); a responder
# the CA did not authorise refused; the configured URL overriding the AIA;
# answers cached until their nextUpdate.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"
. "$(dirname "$0")/revocation_lib.sh"

kh_start
kh_has_type p256 || fail "trustpoint import needs p256 keys"
rev_up crl
rev_up ocsp
rev_ca root "OCSP Root CA"
rev_ca sub "OCSP Issuing CA" root
S="$REV_CAS/sub"
rev_leaf sub good.example.com "$T/good"
rev_leaf sub revoked.example.com "$T/revoked"
rev_leaf sub cached.example.com "$T/cached"
rev_revoke sub "$T/revoked.pem" keyCompromise
# "unknown": issued with the CA's key outside its database.
openssl req -new -key "$T/good.key" -subj "/CN=stranger.example.com" -out "$T/stranger.csr" 2> /dev/null
openssl x509 -req -in "$T/stranger.csr" -CA "$S/ca.pem" -CAkey "$S/ca.key" -set_serial 0x7777 -days 30 \
  -extfile "$S/ca.cnf" -extensions leaf_ext -out "$T/stranger.pem" 2> /dev/null || fail "cannot make the stranger"
rev_gencrl sub
rev_gencrl root

# The store holds the issuing CA: it ends the chain, only leaves are checked.
ok "store" kh truststore add edge "$S/ca.pem"
ok "policy ocsp (hard)" kh truststore set edge --revocation ocsp

check() {
  crc=0
  kh --json cert check "$@" > "$T/c.json" 2> "$T/c.err" || crc=$?
}

# ---- good, revoked, unknown ----
check "$T/good.pem" --store edge
[ "$crc" = 0 ] && [ "$(rev_status < "$T/c.json")" = good ] || { cat "$T/c.json"; fail "good"; }
[ "$(json_get 'd["certs"][0]["method"]' < "$T/c.json")" = ocsp ] || fail "good: not answered by OCSP"
json_get 'd["certs"][0]["source"]' < "$T/c.json" | grep -q "/ocsp/sub" || fail "good: not the AIA responder"
expect_err FAILED_PRECONDITION "revoked" kh cert check "$T/revoked.pem" --store edge
[ "$(head -1 "$T/err.out")" = "revoked (keyCompromise)" ] || { cat "$T/err.out"; fail "revoked: not 'revoked (keyCompromise)'"; }
expect_err FAILED_PRECONDITION "unknown (hard)" kh cert check "$T/stranger.pem" --store edge
[ "$(head -1 "$T/err.out")" = unknown ] || fail "unknown: not unknown"
expect_msg "answered 'unknown'"
ok "verify good" kh truststore verify edge "$T/good.pem"
expect_err FAILED_PRECONDITION "verify revoked" kh truststore verify edge "$T/revoked.pem"
expect_msg "certificate revoked (keyCompromise)"
expect_err FAILED_PRECONDITION "verify unknown (hard)" kh truststore verify edge "$T/stranger.pem"
expect_msg "revocation status unknown"

# Every request carried a nonce (RFC 8954), as the responder saw it.
n=$(ls "$REV_CAS/requests" | wc -l)
[ "$n" -ge 6 ] || fail "the responder saw $n requests"
for r in "$REV_CAS"/requests/*.der; do
  openssl ocsp -reqin "$r" -req_text 2> /dev/null | grep -q "OCSP Nonce" || fail "$(basename "$r") carries no nonce"
done

# ---- the responder down ----
rev_down ocsp
expect_err FAILED_PRECONDITION "responder down, hard-fail" kh cert check "$T/good.pem" --store edge
[ "$(head -1 "$T/err.out")" = unknown ] || fail "down/hard: not unknown"
expect_msg "Couldn't connect"
expect_err FAILED_PRECONDITION "responder down, verify hard-fail" kh truststore verify edge "$T/good.pem"
ok "soft" kh truststore set edge --revocation ocsp,none
ok "responder down, soft-fail" kh cert check "$T/good.pem" --store edge
[ "$(head -1 "$T/ok.out")" = unknown ] || fail "down/soft: not unknown"
ok "responder down, verify soft-fail" kh truststore verify edge "$T/good.pem"
grep -q "soft-fail" "$T/ok.err" || fail "down/soft verify: no warning"
# The revoked certificate stays refused by soft-fail when the CRL knows.
ok "ocsp then crl" kh truststore set edge --revocation ocsp,crl
ok "responder down, the CRL answers" kh cert check "$T/good.pem" --store edge
grep -q "good (crl http://127.0.0.1:$CRL_PORT/sub.crl)" "$T/ok.out" || { cat "$T/ok.out"; fail "no fallback to the CRL"; }
expect_err FAILED_PRECONDITION "responder down, the CRL knows the revocation" kh cert check "$T/revoked.pem" --store edge
[ "$(head -1 "$T/err.out")" = "revoked (keyCompromise)" ] || fail "fallback: not revoked"
rev_up ocsp
ok "ocsp again" kh truststore set edge --revocation ocsp

# ---- nonces ----
# A response made for another request (its own nonce) is refused.
openssl ocsp -issuer "$S/ca.pem" -cert "$T/good.pem" -reqout "$T/other.req" 2> /dev/null || fail "other request"
openssl ocsp -index "$S/index.txt" -CA "$S/ca.pem" -rsigner "$S/ocsp.pem" -rkey "$S/ocsp.key" -reqin "$T/other.req" \
  -respout "$T/other.resp" 2> /dev/null || fail "other response"
openssl ocsp -respin "$T/other.resp" -resp_text -noverify 2> /dev/null | grep -q "OCSP Nonce" || fail "the canned response has no nonce"
cp "$T/other.resp" "$S/canned.der"
expect_err FAILED_PRECONDITION "a response with another nonce" kh cert check "$T/good.pem" --store edge
expect_msg "another nonce"
[ "$(head -1 "$T/err.out")" = unknown ] || fail "mismatched nonce: not unknown"
# One without a nonce (pre-produced) is accepted by ocsp_nonce = yes.
openssl ocsp -issuer "$S/ca.pem" -cert "$T/good.pem" -no_nonce -reqout "$T/plain.req" 2> /dev/null
openssl ocsp -index "$S/index.txt" -CA "$S/ca.pem" -rsigner "$S/ocsp.pem" -rkey "$S/ocsp.key" -reqin "$T/plain.req" \
  -respout "$S/canned.der" 2> /dev/null || fail "plain response"
ok "a response without a nonce (ocsp_nonce = yes)" kh cert check "$T/good.pem" --store edge
kh_stop
kh_config '[revocation]
ocsp_nonce = required'
kh_start
expect_err FAILED_PRECONDITION "a response without a nonce (ocsp_nonce = required)" kh cert check "$T/good.pem" --store edge
expect_msg "does not echo the request's nonce"
rm -f "$S/canned.der"
ok "a real answer echoes the nonce (required)" kh cert check "$T/good.pem" --store edge

# ---- a responder the CA did not authorise; the configured URL ----
# Same CA database, but the signer lacks id-kp-OCSPSigning.
mkdir -p "$REV_CAS/rogue"
rev_leaf sub "Not A Responder" "$REV_CAS/rogue/ocsp" -extensions no_eku_ext
cp "$S/index.txt" "$S/ca.pem" "$REV_CAS/rogue/"
ok "configured responder" kh truststore set edge --ocsp-url "http://127.0.0.1:$OCSP_PORT/ocsp/rogue"
expect_err FAILED_PRECONDITION "unauthorised responder" kh cert check "$T/good.pem" --store edge
expect_msg "not signed by the issuer or a responder it authorised"
grep -q "/ocsp/rogue" "$T/ocsp.log" || fail "the configured URL was not used"
ok "back to the AIA" kh truststore set edge --ocsp-url ""
ok "good via the AIA" kh cert check "$T/good.pem" --store edge

# ---- the OCSP cache, until nextUpdate ----
echo 1 > "$S/ndays"
ok "cached: first" kh cert check "$T/cached.pem" --store edge
posts=$(rev_posts)
rev_down ocsp
ok "cached: the responder is down" kh cert check "$T/cached.pem" --store edge
grep -q "(cached)" "$T/ok.out" || fail "not answered from the OCSP cache"
[ "$(kh_state_sql 'SELECT count(*) FROM ocsp_cache')" -ge 1 ] || fail "nothing in ocsp_cache"
rev_clock $((2 * 86400))
expect_err FAILED_PRECONDITION "past nextUpdate the cache is not used" kh cert check "$T/cached.pem" --store edge
rev_clock 0
rev_up ocsp
[ "$(rev_posts)" = "$posts" ] || fail "the responder was asked while down"
rm -f "$S/ndays"

# ---- trustpoint import ----
ok "trustpoint" kh trustpoint create edge-tp --generate p256 --subject "CN=edge-tp.example.com" --enrollment terminal \
  --revocation ocsp
ok "authenticate" kh trustpoint authenticate edge-tp --ca "$S/ca.pem" --yes
ok "enroll" kh trustpoint enroll edge-tp --out "$T/tp.csr"
pki_ca_sign "$S" "$T/tp.csr" "$T/tp.pem"
ok "import: good" kh trustpoint import edge-tp --cert "$T/tp.pem"
ok "export" kh trustpoint export edge-tp --out "$T/tp-export.pem"
cmp -s <(openssl x509 -in "$T/tp.pem" -outform DER) <(openssl x509 -in "$T/tp-export.pem" -outform DER) \
  || fail "export is not the imported certificate"
rev_revoke sub "$T/tp.pem" keyCompromise
ok "enroll again" kh trustpoint enroll edge-tp --out "$T/tp2.csr"
expect_err FAILED_PRECONDITION "import: revoked" kh trustpoint import edge-tp --cert "$T/tp.pem"
expect_msg "revoked (keyCompromise)"
# Issued outside the CA's database: the responder does not know it.
openssl x509 -req -in "$T/tp2.csr" -CA "$S/ca.pem" -CAkey "$S/ca.key" -set_serial 0x7778 -days 30 \
  -extfile "$S/ca.cnf" -extensions leaf_ext -out "$T/tp-unknown.pem" 2> /dev/null || fail "tp unknown"
expect_err FAILED_PRECONDITION "import: unknown (hard)" kh trustpoint import edge-tp --cert "$T/tp-unknown.pem"
expect_msg "fails hard"
rev_down ocsp
pki_ca_sign "$S" "$T/tp2.csr" "$T/tp2.pem"
expect_err FAILED_PRECONDITION "import: responder down (hard)" kh trustpoint import edge-tp --cert "$T/tp2.pem"
expect_msg "Couldn't connect"
ok "export still the first certificate" kh trustpoint export edge-tp --out "$T/tp-export2.pem"
cmp -s "$T/tp-export.pem" "$T/tp-export2.pem" || fail "a refused import changed the certificate"
ok "soft" kh trustpoint set edge-tp --revocation ocsp,none
ok "import: responder down (soft)" kh trustpoint import edge-tp --cert "$T/tp2.pem"
grep -q "revocation not confirmed" "$T/ok.err" || fail "soft import: no warning"
rev_up ocsp
ok "show" kh --json trustpoint show edge-tp
[ "$(json_get 'd["revocation"]' < "$T/ok.out")" = ocsp,none ] || fail "show: policy"
[ "$(json_get 'd["certificate"]["serial"]' < "$T/ok.out")" = "$(openssl x509 -in "$T/tp2.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')" ] \
  || fail "show: not the second certificate"

ok "status" kh status
kh_stop
