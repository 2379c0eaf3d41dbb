#!/usr/bin/env bash
# ACME (RFC 8555) enrollment against Debian's pebble, loopback only, as
# docs/PKI.md "ACME enrollment" walks through it: pebble (real validation,
# no PEBBLE_VA_ALWAYS_VALID) resolves names through pebble-challtestsrv's
# DNS (every name -> 127.0.0.1) and validates http-01 against keyholdd's own
# responder ([acme] http01_listen). A P-256 and an RSA-2048 trustpoint with
# a DNS and an IP identifier: account, order, challenge, finalize, chain;
# the certificate's key is the token key and it chains to pebble's root
# (from pebble's management API); a second enroll reuses the account; the
# responder answers only pending tokens. Refusals: ACME options without
# acme, an http:// directory, a SAN ACME cannot validate, pebble down; then
# pebble restarted (it forgot the account): the next enroll registers again
# and finishes. Without an http-01 responder: a clear refusal. On the TPM
# token only the enrollments run (token keys: account, JWS, CSR).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"
. "$(dirname "$0")/acme_lib.sh"
start_pebble

kh_config "$(printf '[acme]\nhttp01_listen = 127.0.0.1:%s\ntimeout = 40s\n' "$HTTP01_PORT")"
kh_start
grep -q "http-01 responder listening on 127.0.0.1 port $HTTP01_PORT" "$T/keyholdd.log" || fail "no http-01 responder"

# The responder answers only pending tokens.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP01_PORT/.well-known/acme-challenge/abc")
[ "$code" = 404 ] || fail "the responder answered $code for an unknown token"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP01_PORT/metrics")
[ "$code" = 404 ] || fail "the responder answered $code for another path"

types=(p256)
kh_has_type rsa2048 && types+=(rsa2048)
for type in "${types[@]}"; do
  tp="web-$type"
  ok "$type: create" kh trustpoint create "$tp" --generate "$type" --subject "CN=$tp.acme.test" \
    --san "DNS:$tp.acme.test,IP:127.0.0.1" --enrollment acme --acme-directory "$DIR" \
    --acme-contact mailto:admin@example.com --acme-ca-bundle "$T/tlsca.pem"
  kh trustpoint show "$tp" | grep -q "acme:        $DIR, account key $tp.acme, account not yet created" \
    || fail "$type: show does not name the ACME settings"
  ok "$type: pebble's root" fetch_root
  ok "$type: authenticate pebble's root" kh trustpoint authenticate "$tp" --ca "$T/pebble-root.pem" --yes
  ok "$type: enroll" kh trustpoint enroll "$tp"
  grep -q "ACME certificate issued for key $tp" "$T/ok.out" || { cat "$T/ok.out" >&2; fail "$type: enroll output"; }
  kh --json trustpoint show "$tp" > "$T/show.json"
  acct=$(json_get 'd["acme_account"]' < "$T/show.json")
  case $acct in "https://127.0.0.1:$ACME_PORT/"*) ;; *) fail "$type: no account URL remembered ($acct)" ;; esac
  ok "$type: export" kh trustpoint export "$tp" --out "$T/$tp.pem" --chain
  openssl x509 -in "$T/$tp.pem" -noout -ext subjectAltName | grep -q "DNS:$tp.acme.test, IP Address:127.0.0.1" \
    || fail "$type: the certificate lacks the DNS and IP names"
  cmp -s <(pki_pub_of "$T/$tp.pem") <(kh key show "$tp" --pem | openssl pkey -pubin -outform DER) \
    || fail "$type: the certificate is not for the trustpoint's token key"
  openssl verify -CAfile "$T/pebble-root.pem" -untrusted "$T/$tp.pem" "$T/$tp.pem" > /dev/null \
    || fail "$type: the certificate does not chain to pebble's root"

  # Again (P-256 on SoftHSM2 only, to keep CI short): the account is reused
  # (no second newAccount), a new certificate.
  [ "$type" = p256 ] && [ "$KH_TOKEN" = softhsm ] || continue
  serial1=$(openssl x509 -in "$T/$tp.pem" -noout -serial)
  ok "$type: enroll again" kh trustpoint enroll "$tp"
  [ "$(kh --json trustpoint show "$tp" | json_get 'd["acme_account"]')" = "$acct" ] || fail "$type: a new account"
  ok "$type: export again" kh trustpoint export "$tp" --out "$T/$tp-2.pem"
  [ "$(openssl x509 -in "$T/$tp-2.pem" -noout -serial)" != "$serial1" ] || fail "$type: the same certificate again"
done
[ "$(grep -c 'ACME account https://' "$T/keyholdd.log")" = "${#types[@]}" ] \
  || fail "one account per trustpoint expected (created once, reused)"
# On the TPM token: the enrollments above (account key, JWS and CSR signed
# in the TPM); everything below acts above the token and runs on SoftHSM2.
if [ "$KH_TOKEN" = tpm ]; then
  log "ACME enrollment passed on the TPM token (${types[*]}); the rest runs on SoftHSM2"
  exit 0
fi
# No token stays published after the orders (pebble logs the paths it fetched).
tok=$(grep -o 'acme-challenge/[A-Za-z0-9_-]*' "$T/pebble.log" | head -1 | sed 's|.*/||') || true
[ -n "$tok" ] || fail "pebble's log names no http-01 fetch"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP01_PORT/.well-known/acme-challenge/$tok")
[ "$code" = 404 ] || fail "token $tok still answered after the order"

# Refusals: options without acme, http:// directory, a name that is no DNS/IP.
expect_rc 2 "acme options without acme" kh trustpoint create x1 --generate p256 --subject CN=x \
  --acme-directory "$DIR"
expect_rc 2 "acme without a directory" kh trustpoint create x1 --generate p256 --subject CN=x --enrollment acme
expect_err INVALID_ARGUMENT "http:// directory" kh trustpoint create x1 --generate p256 --subject CN=x \
  --enrollment acme --acme-directory "http://127.0.0.1:$ACME_PORT/dir"
ok "email SAN" kh trustpoint create mail --generate p256 --subject CN=m --san email:a@example.com --enrollment acme \
  --acme-directory "$DIR" --acme-ca-bundle "$T/tlsca.pem"
expect_err FAILED_PRECONDITION "email SAN refused for ACME" kh trustpoint enroll mail
expect_msg "DNS and IP names only"
ok "delete" kh trustpoint delete mail --force

# An enroll before authenticate: the order completes (the account is made)
# but the chain is refused, nothing stored.
ok "late: create" kh trustpoint create late --generate p256 --subject CN=late.acme.test --san DNS:late.acme.test \
  --enrollment acme --acme-directory "$DIR" --acme-ca-bundle "$T/tlsca.pem"
expect_err FAILED_PRECONDITION "enroll before authenticate" kh trustpoint enroll late
expect_msg "no authenticated CA"
case $(kh --json trustpoint show late | json_get 'd["acme_account"]') in
  "https://127.0.0.1:$ACME_PORT/"*) ;; *) fail "late: the account was not kept" ;;
esac
# pebble restarted: it forgot the accounts (and has a new root, which the
# certificates of web-* do not chain to). late's next enroll registers
# again and finishes; nothing is left stuck.
stop_pebble
expect_err UNAVAILABLE "pebble down" kh trustpoint enroll web-p256
start_pebble
ok "new root" fetch_root
ok "authenticate late" kh trustpoint authenticate late --ca "$T/pebble-root.pem" --yes
ok "enroll after the restart" kh trustpoint enroll late
grep -q "unknown to the server" "$T/keyholdd.log" || fail "the forgotten account was not noticed"
ok "export" kh trustpoint export late --chain --out "$T/after.pem"
openssl verify -CAfile "$T/pebble-root.pem" -untrusted "$T/after.pem" "$T/after.pem" > /dev/null \
  || fail "the certificate after the restart does not chain to the new root"

# Delete removes the account key with the trustpoint.
ok "delete the trustpoint" kh trustpoint delete web-p256 --force
expect_err NOT_FOUND "the account key is gone" kh key show web-p256.acme
# Without [acme] http01_listen the challenge cannot be answered: a clear
# refusal, and the trustpoint is left as it was.
kh_stop
kh_config
kh_start
ok "create without a responder" kh trustpoint create nr --generate p256 --subject CN=nr.acme.test \
  --san DNS:nr.acme.test --enrollment acme --acme-directory "$DIR" --acme-ca-bundle "$T/tlsca.pem"
expect_err FAILED_PRECONDITION "enroll without a responder" kh trustpoint enroll nr
expect_msg "http01_listen"
kh trustpoint show nr | grep -q "^certificate: none" || fail "a failed enrollment changed the trustpoint"
log "ACME enrollment against pebble: ${types[*]}"
