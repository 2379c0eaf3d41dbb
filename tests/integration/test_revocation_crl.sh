#!/usr/bin/env bash
# Revocation by CRL: a root and an issuing CA made with `openssl ca`, their
# CRLs (`openssl ca -gencrl`) published over HTTP on 127.0.0.1. A trust
# store's policy is applied by `cert check` (good / revoked (reason) /
# unknown) and by `truststore verify`; fetched CRLs are cached in SQLite
# until their nextUpdate (the server is stopped and the answer stays; past
# nextUpdate the CRL is fetched again); hard-fail versus soft-fail when no
# CRL can be had; policy none still honours imported CRLs; only http:// is
# fetched, within the size cap.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"
. "$(dirname "$0")/revocation_lib.sh"

kh_config '[revocation]
crl_max_size = 4096
connect_timeout = 2s
timeout = 5s'
kh_start
rev_up crl
rev_up ocsp
rev_ca root "Rev Root CA"
rev_ca sub "Rev Issuing CA" root
S="$REV_CAS/sub"
rev_leaf sub good.example.com "$T/good"
rev_leaf sub revoked.example.com "$T/revoked"
rev_leaf sub later.example.com "$T/later"
rev_leaf sub bare.example.com "$T/bare" -extensions bare_ext
# CDPs keyhold must not or cannot use: ldap only, and a CRL past the cap.
cat > "$T/odd.ext" <<EOF
[ldap]
basicConstraints = critical,CA:FALSE
crlDistributionPoints = URI:ldap://ldap.example.com/cn=Rev%20Issuing%20CA?certificateRevocationList
[big]
basicConstraints = critical,CA:FALSE
crlDistributionPoints = URI:http://127.0.0.1:$CRL_PORT/big.crl
EOF
rev_leaf sub ldap.example.com "$T/ldap" -extfile "$T/odd.ext" -extensions ldap
rev_leaf sub big.example.com "$T/big" -extfile "$T/odd.ext" -extensions big
head -c 10000 /dev/urandom > "$REV_WWW/big.crl"
rev_revoke sub "$T/revoked.pem" keyCompromise
# One hour of validity: the cache expiry is reached by moving the clock.
rev_gencrl sub -crlhours 1
rev_gencrl root -crlhours 1
openssl crl -inform DER -in "$REV_WWW/sub.crl" -noout -text | grep -q "Key Compromise" \
  || fail "the published CRL lacks the revocation"

ok "store" kh truststore add web "$REV_CAS/root/ca.pem"
expect_err INVALID_ARGUMENT "bad policy" kh truststore set web --revocation crl,maybe
expect_err INVALID_ARGUMENT "none first" kh truststore set web --revocation none,crl
expect_msg "must come last"
expect_err INVALID_ARGUMENT "https OCSP URL" kh truststore set web --ocsp-url https://127.0.0.1/ocsp
expect_err NOT_FOUND "unknown store" kh truststore set nope --revocation crl
ok "policy crl (hard)" kh truststore set web --revocation crl
ok "list shows it" kh --json truststore list web
[ "$(json_get 'd["stores"][0]["revocation"]' < "$T/ok.out")" = crl ] || fail "the policy is not listed"

# check FILE [--untrusted ...]: cert check --json into $T/c.json, exit code in $crc.
check() {
  crc=0
  kh --json cert check "$@" > "$T/c.json" 2> "$T/c.err" || crc=$?
}

# ---- good and revoked, leaf and issuing CA each from its own CRL ----
check "$T/good.pem" --store web --untrusted "$S/ca.pem"
[ "$crc" = 0 ] || { cat "$T/c.json"; fail "good: exit $crc"; }
[ "$(rev_status < "$T/c.json")" = good ] || fail "good: not good"
[ "$(json_get 'len(d["certs"])' < "$T/c.json")" = 2 ] || fail "good: the leaf and the issuing CA were not both checked"
json_get 'd["certs"][0]["source"]' < "$T/c.json" | grep -q "/sub.crl" || fail "good: the leaf was not checked with sub.crl"
json_get 'd["certs"][1]["source"]' < "$T/c.json" | grep -q "/root.crl" || fail "good: the CA was not checked with root.crl"
[ "$(rev_gets /sub.crl)" = 1 ] && [ "$(rev_gets /root.crl)" = 1 ] || fail "the CRLs were not fetched once each"

ok "human output" kh cert check "$T/good.pem" --store web --untrusted "$S/ca.pem"
[ "$(head -1 "$T/ok.out")" = good ] || fail "cert check does not print good first"

expect_err FAILED_PRECONDITION "revoked" kh cert check "$T/revoked.pem" --store web --untrusted "$S/ca.pem"
[ "$(head -1 "$T/err.out")" = "revoked (keyCompromise)" ] || { cat "$T/err.out"; fail "revoked: not 'revoked (keyCompromise)'"; }
expect_msg "revoked (keyCompromise)"
check "$T/revoked.pem" --store web --untrusted "$S/ca.pem"
[ "$crc" = 6 ] || fail "revoked --json: exit $crc"
[ "$(json_get 'd["reason"]' < "$T/c.json")" = keyCompromise ] || fail "revoked --json: no reason"
[ "$(json_get 'd["error"]["code"]' < "$T/c.json")" = FAILED_PRECONDITION ] || fail "revoked --json: no error object"

# truststore verify applies the same policy.
ok "verify good" kh truststore verify web "$T/good.pem" --untrusted "$S/ca.pem"
grep -q "revocation: good" "$T/ok.out" || fail "verify does not report the revocation check"
expect_err FAILED_PRECONDITION "verify revoked" kh truststore verify web "$T/revoked.pem" --untrusted "$S/ca.pem"
expect_msg "certificate revoked (keyCompromise)"
rc=0; kh --json truststore verify web "$T/revoked.pem" --untrusted "$S/ca.pem" > "$T/v.json" 2> /dev/null || rc=$?
[ "$rc" = 6 ] && [ "$(json_get 'd["revocation"]' < "$T/v.json")" = revoked ] || fail "verify --json: not revoked"
[ "$(json_get 'd["x509_error"]' < "$T/v.json")" = 23 ] || fail "verify --json: not X509_V_ERR_CERT_REVOKED"

# ---- the cache: until nextUpdate nothing is fetched again ----
[ "$(rev_gets /sub.crl)" = 1 ] || fail "sub.crl was fetched again while cached"
rev_down crl
check "$T/good.pem" --store web --untrusted "$S/ca.pem"
[ "$crc" = 0 ] && [ "$(rev_status < "$T/c.json")" = good ] || fail "good without the server: $(cat "$T/c.json")"
json_get 'd["certs"][0]["source"]' < "$T/c.json" | grep -q "(cached)" || fail "the answer did not come from the cache"
expect_err FAILED_PRECONDITION "revoked without the server" kh cert check "$T/revoked.pem" --store web --untrusted "$S/ca.pem"
[ "$(head -1 "$T/err.out")" = "revoked (keyCompromise)" ] || fail "the cached CRL forgot the revocation"
kh_state_sql 'SELECT url FROM crl_cache ORDER BY url' > "$T/cache.txt"
grep -q "/sub.crl" "$T/cache.txt" && grep -q "/root.crl" "$T/cache.txt" || fail "the CRLs are not cached in SQLite"
# A restart keeps the cache.
kh_restart
ok "cached across a restart" kh cert check "$T/good.pem" --store web --untrusted "$S/ca.pem"

# ---- no answer: hard-fail, soft-fail ----
# Past nextUpdate (keyhold's clock two hours on) with the server down.
rev_clock 7200
expect_err FAILED_PRECONDITION "hard-fail: no CRL to be had" kh cert check "$T/good.pem" --store web --untrusted "$S/ca.pem"
[ "$(head -1 "$T/err.out")" = unknown ] || fail "hard-fail: not unknown"
expect_msg "fails hard"
expect_err FAILED_PRECONDITION "hard-fail verify" kh truststore verify web "$T/good.pem" --untrusted "$S/ca.pem"
expect_msg "revocation status unknown"
ok "soft policy" kh truststore set web --revocation crl,none
ok "soft-fail: unknown is accepted" kh cert check "$T/good.pem" --store web --untrusted "$S/ca.pem"
[ "$(head -1 "$T/ok.out")" = unknown ] || fail "soft-fail: not unknown"
grep -q "soft-fail" "$T/ok.err" || fail "soft-fail: no warning"
ok "soft-fail verify" kh truststore verify web "$T/good.pem" --untrusted "$S/ca.pem"
grep -q "soft-fail" "$T/ok.err" || fail "soft-fail verify: no warning"
ok "hard again" kh truststore set web --revocation crl

# ---- an expired cache is fetched again ----
# later.example.com is revoked after the first fetch; new CRLs, valid at
# keyhold's clock, are published and the server comes back.
rev_revoke sub "$T/later.pem" superseded
rev_gencrl sub -crl_lastupdate "$(rev_asn1_time 7100)" -crl_nextupdate "$(rev_asn1_time 10800)"
rev_gencrl root -crl_lastupdate "$(rev_asn1_time 7100)" -crl_nextupdate "$(rev_asn1_time 10800)"
rev_up crl
expect_err FAILED_PRECONDITION "refetched: later is revoked" kh cert check "$T/later.pem" --store web --untrusted "$S/ca.pem"
[ "$(head -1 "$T/err.out")" = "revoked (superseded)" ] || { cat "$T/err.out"; fail "the expired CRL was not fetched again"; }
[ "$(rev_gets /sub.crl)" = 2 ] || fail "sub.crl was not fetched exactly once more"
ok "good with the new CRL" kh cert check "$T/good.pem" --store web --untrusted "$S/ca.pem"
[ "$(rev_gets /sub.crl)" = 2 ] || fail "the new CRL was not cached"

# ---- what keyhold does not fetch ----
expect_err FAILED_PRECONDITION "no CDP: unknown" kh cert check "$T/bare.pem" --store web --untrusted "$S/ca.pem"
expect_msg "no CRL distribution point"
expect_err FAILED_PRECONDITION "ldap CDP: not fetched" kh cert check "$T/ldap.pem" --store web --untrusted "$S/ca.pem"
expect_msg "not http:// URLs"
expect_err FAILED_PRECONDITION "a CRL past the size cap" kh cert check "$T/big.pem" --store web --untrusted "$S/ca.pem"
expect_msg "larger than 4096 bytes"
[ "$(rev_gets /big.crl)" = 1 ] || fail "big.crl was not asked for"

# ---- policy none: only imported CRLs, never a failure ----
ok "policy none" kh truststore set web --revocation none
rc=0; kh cert check "$T/revoked.pem" --store web --untrusted "$S/ca.pem" > "$T/n.out" 2> /dev/null || rc=$?
[ "$rc" = 0 ] && [ "$(head -1 "$T/n.out")" = unknown ] || fail "policy none: not a soft unknown"
gets=$(rev_gets /sub.crl)
ok "verify under none" kh truststore verify web "$T/revoked.pem" --untrusted "$S/ca.pem"
[ "$(rev_gets /sub.crl)" = "$gets" ] || fail "policy none fetched a CRL"
ok "import sub's CRL" kh truststore add web "$S/ca.pem"
ok "crl import" kh crl import web "$T/sub.crl.pem"
expect_err FAILED_PRECONDITION "policy none: the imported CRL answers" kh cert check "$T/revoked.pem" --store web
[ "$(head -1 "$T/err.out")" = "revoked (keyCompromise)" ] || fail "the imported CRL was not consulted"
grep -q "imported CRL" "$T/err.out" || fail "the source is not the imported CRL"

# ---- input errors ----
expect_err NOT_FOUND "unknown store" kh cert check "$T/good.pem" --store nope
ok "other store" kh truststore add other "$T/good.pem"
expect_err FAILED_PRECONDITION "does not chain to the store" kh cert check "$T/revoked.pem" --store other
expect_msg "does not chain"
printf 'junk\n' > "$T/junk"
expect_err INVALID_ARGUMENT "junk" kh cert check "$T/junk" --store web

ok "status" kh status
kh_stop
