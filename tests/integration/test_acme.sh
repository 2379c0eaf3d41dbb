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
# and finishes. Without an http-01 responder: a clear refusal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

command -v pebble > /dev/null || fail "pebble is not installed (scripts/install-deps.sh)"

PEBBLE_PID="" CTS_PID=""
acme_cleanup() {
  # Exactly the pids this test started.
  [ -n "$PEBBLE_PID" ] && kill "$PEBBLE_PID" 2> /dev/null && wait "$PEBBLE_PID" 2> /dev/null
  [ -n "$CTS_PID" ] && kill "$CTS_PID" 2> /dev/null && wait "$CTS_PID" 2> /dev/null
  kh_cleanup
}
trap acme_cleanup EXIT

# Six free loopback ports in one go (DNS is UDP, the rest TCP).
read -r ACME_PORT MGMT_PORT HTTP01_PORT TLS_PORT DNS_PORT CTS_MGMT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

# pebble's own TLS: a throwaway CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tlsca.key" -out "$T/tlsca.pem" \
  -subj "/CN=ACME test TLS CA" -days 2 2> /dev/null || fail "openssl: TLS CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/pebble.key" -out "$T/pebble.csr" \
  -subj "/CN=127.0.0.1" 2> /dev/null || fail "openssl: pebble CSR"
printf 'subjectAltName=IP:127.0.0.1\n' > "$T/pebble.ext"
openssl x509 -req -in "$T/pebble.csr" -CA "$T/tlsca.pem" -CAkey "$T/tlsca.key" -CAcreateserial -days 2 \
  -extfile "$T/pebble.ext" -out "$T/pebble.pem" 2> /dev/null || fail "openssl: pebble certificate"
cat > "$T/pebble.json" << EOF
{ "pebble": { "listenAddress": "127.0.0.1:$ACME_PORT", "managementListenAddress": "127.0.0.1:$MGMT_PORT",
  "certificate": "$T/pebble.pem", "privateKey": "$T/pebble.key", "httpPort": $HTTP01_PORT, "tlsPort": $TLS_PORT,
  "ocspResponderURL": "", "externalAccountBindingRequired": false } }
EOF

pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$DNS_PORT" -http01 "" -https01 "" \
  -tlsalpn01 "" -management "127.0.0.1:$CTS_MGMT" > "$T/challtestsrv.log" 2>&1 &
CTS_PID=$!

start_pebble() {
  PEBBLE_VA_NOSLEEP=1 pebble -config "$T/pebble.json" -dnsserver "127.0.0.1:$DNS_PORT" >> "$T/pebble.log" 2>&1 &
  PEBBLE_PID=$!
  for _ in $(seq 1 100); do
    curl -sf --cacert "$T/tlsca.pem" "https://127.0.0.1:$ACME_PORT/dir" > /dev/null && return 0
    kill -0 "$PEBBLE_PID" 2> /dev/null || { cat "$T/pebble.log" >&2; fail "pebble exited"; }
    sleep 0.1
  done
  fail "pebble did not answer within 10 s"
}
stop_pebble() { kill "$PEBBLE_PID" && wait "$PEBBLE_PID" 2> /dev/null; PEBBLE_PID=""; }
start_pebble

DIR="https://127.0.0.1:$ACME_PORT/dir"
kh_config "$(printf '[acme]\nhttp01_listen = 127.0.0.1:%s\ntimeout = 40s\n' "$HTTP01_PORT")"
kh_start
grep -q "http-01 responder listening on 127.0.0.1 port $HTTP01_PORT" "$T/keyholdd.log" || fail "no http-01 responder"

# The responder answers only pending tokens.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP01_PORT/.well-known/acme-challenge/abc")
[ "$code" = 404 ] || fail "the responder answered $code for an unknown token"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP01_PORT/metrics")
[ "$code" = 404 ] || fail "the responder answered $code for another path"

# pebble's root, from its management API (a new one each start).
fetch_root() { curl -sf --cacert "$T/tlsca.pem" "https://127.0.0.1:$MGMT_PORT/roots/0" > "$T/pebble-root.pem"; }

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

  # Again (P-256 only, to keep CI short): the account is reused (no second
  # newAccount), a new certificate.
  [ "$type" = p256 ] || continue
  serial1=$(openssl x509 -in "$T/$tp.pem" -noout -serial)
  ok "$type: enroll again" kh trustpoint enroll "$tp"
  [ "$(kh --json trustpoint show "$tp" | json_get 'd["acme_account"]')" = "$acct" ] || fail "$type: a new account"
  ok "$type: export again" kh trustpoint export "$tp" --out "$T/$tp-2.pem"
  [ "$(openssl x509 -in "$T/$tp-2.pem" -noout -serial)" != "$serial1" ] || fail "$type: the same certificate again"
done
[ "$(grep -c 'ACME account https://' "$T/keyholdd.log")" = "${#types[@]}" ] \
  || fail "one account per trustpoint expected (created once, reused)"
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

# pebble restarted: it forgot the account (and has a new root). The next
# enroll registers again and finishes; nothing is left stuck.
stop_pebble
expect_err UNAVAILABLE "pebble down" kh trustpoint enroll web-p256
start_pebble
ok "new root" fetch_root
ok "re-authenticate" kh trustpoint authenticate web-p256 --ca "$T/pebble-root.pem" --yes
ok "enroll after the restart" kh trustpoint enroll web-p256
grep -q "unknown to the server" "$T/keyholdd.log" || fail "the forgotten account was not noticed"
ok "export" kh trustpoint export web-p256 --out "$T/after.pem"
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
