#!/usr/bin/env bash
# docs/REVOCATION.md is tested as written: `sh before-start` blocks run
# before keyholdd starts, `ini` blocks join its configuration (with
# /etc/keyhold/ meaning the walk-through's directory), then every other
# `sh` block runs in order in that directory with `keyhold` on PATH; a
# block marked `sh expect-fail` must fail with an `error: CODE:` line.
# $CRL_DIR/$CRL_BASE and $OCSP_URL are loopback servers (rev_server.py:
# the CRL directory, and openssl ocsp over the walk-through's CA files).
# What the text claims is then checked with openssl and the hook's log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/revocation_lib.sh"
. "$(dirname "$0")/doc_lib.sh"

D="$REV_CAS/doc"
mkdir -p "$T/bin" "$D"
ln -s "$KH_CLI" "$T/bin/keyhold"
export PATH="$T/bin:$PATH"

nblocks=$(doc_extract "$KH_SRC/docs/REVOCATION.md" "$T/blocks")
[ "$nblocks" -ge 12 ] || fail "docs/REVOCATION.md has only $nblocks runnable blocks"
run_block() { doc_run_block "$1" "$D" docs/REVOCATION.md; }

rev_up crl
rev_up ocsp
export CRL_DIR="$REV_WWW" CRL_BASE="http://127.0.0.1:$CRL_PORT" OCSP_URL="http://127.0.0.1:$OCSP_PORT/ocsp/doc"
for b in "$T"/blocks/*.pre; do run_block "$b"; done
extra=$(doc_ini "$T/blocks" "$D")
[ -n "$extra" ] || fail "docs/REVOCATION.md has no ini block"
kh_config "$extra"
kh_start
kh_has_type p256 || fail "the walk-through needs p256 keys"
for b in "$T"/blocks/*; do
  case "$b" in *.ok | *.fail) run_block "$b" ;; esac
done

# What the walk-through claims, checked.
cd "$D" || fail "no $D"
openssl verify -CAfile ca.pem www.pem > /dev/null || fail "www.pem does not verify"
openssl crl -inform DER -in "$CRL_DIR/partner.crl" -noout -text | grep -q "Key Compromise" || fail "the CRL lacks api"
openssl ocsp -issuer ca.pem -cert api.pem -url "$OCSP_URL" -CAfile ca.pem 2> /dev/null | grep -q "api.pem: revoked" \
  || fail "the responder does not say api is revoked"
[ "$(wc -l < notices.log)" = 1 ] || { cat notices.log; fail "the hook ran $(wc -l < notices.log) times, not once"; }
[ "$(cat notices.log)" = "pki-team@example.com|expiring|CN=Old Partner CA|truststore:legacy" ] \
  || fail "notices.log is not as the text says: $(cat notices.log)"
keyhold --json trustpoint show lab > lab.json
[ "$(json_get 'd["renew_at"]' < lab.json)" = 50 ] && [ "$(json_get 'd["renew_regenerate"]' < lab.json)" = true ] \
  || fail "lab's renewal settings"
keyhold --json trustpoint show edge > edge.json
[ "$(json_get 'd["revocation"]' < edge.json)" = crl,ocsp,none ] || fail "edge's revocation policy"
keyhold --json truststore list partners > partners.json
[ "$(json_get 'd["stores"][0]["revocation"]' < partners.json)" = ocsp,crl ] || fail "the partners policy"
grep -q "certificate expires in" "$T/keyholdd.log" || fail "the log lacks the notice"
cd / || exit 1
kh_stop
