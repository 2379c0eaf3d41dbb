#!/usr/bin/env bash
# The ACME account of a trustpoint against Debian's pebble: key rollover
# (RFC 8555 §7.3.5: a new token key, keyChange signed by both; a new order
# then works with the new key and the same account, the old key is gone)
# and deactivation (§7.3.6: the server refuses the account afterwards;
# deleting the account key lets the next enroll register a new account),
# with the refusals of each verb; kill -9 inside a rollover settled by
# asking the server which key it holds. Then http-01 through a webroot served by
# another web server, and external account binding (pebble requiring it;
# a missing and a wrong MAC key refused in the server's words, then
# corrected with acme-eab).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"
. "$(dirname "$0")/acme_lib.sh"
start_pebble

kh_config "$(printf '[acme]\nhttp01_listen = 127.0.0.1:%s\ntimeout = 40s\n' "$HTTP01_PORT")"
kh_start
ok "pebble's root" fetch_root

# Refusals before there is an account.
expect_err NOT_FOUND "rollover of no trustpoint" kh trustpoint acme-rollover nope
ok "a self trustpoint" kh trustpoint create selfie --generate p256 --subject CN=selfie
expect_err FAILED_PRECONDITION "rollover of a self trustpoint" kh trustpoint acme-rollover selfie
expect_msg "does not enroll with ACME"
ok "create" kh trustpoint create acct --generate p256 --subject CN=acct.acme.test --san DNS:acct.acme.test \
  --enrollment acme --acme-directory "$DIR" --acme-ca-bundle "$T/tlsca.pem"
expect_err FAILED_PRECONDITION "rollover before the first enroll" kh trustpoint acme-rollover acct
expect_msg "no ACME account yet"
expect_rc 2 "rollover without a trustpoint" kh trustpoint acme-rollover
ok "authenticate" kh trustpoint authenticate acct --ca "$T/pebble-root.pem" --yes
ok "enroll" kh trustpoint enroll acct
acct=$(kh --json trustpoint show acct | json_get 'd["acme_account"]')
case $acct in "https://127.0.0.1:$ACME_PORT/my-account/"*) ;; *) fail "no account URL ($acct)" ;; esac

# Key rollover: a new key, the same account, the old key deleted.
ok "rollover" kh --json trustpoint acme-rollover acct
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["trustpoint"]
sys.exit(0 if t["acme_account_key"] == "acct.acme.1" and t["acme_account"] == sys.argv[2]
         and "rolled over from acct.acme to acct.acme.1" in d["detail"] else 1)' "$T/ok.out" "$acct" \
  || { cat "$T/ok.out"; fail "rollover: the answer"; }
expect_err NOT_FOUND "the old account key is deleted" kh key show acct.acme
ok "the new account key" kh key show acct.acme.1
# A new order signed by the new key (pebble checks every JWS against the
# account's key) for the same account: no newAccount.
n_acct=$(grep -c 'ACME account https://' "$T/keyholdd.log")
ok "enroll with the new key" kh trustpoint enroll acct
[ "$(grep -c 'ACME account https://' "$T/keyholdd.log")" = "$n_acct" ] || fail "a new account was registered"
grep -q "ACME account $acct rolled over from key 'acct.acme' to 'acct.acme.1'" "$T/keyholdd.log" || fail "no log line"
ok "export" kh trustpoint export acct --chain --out "$T/acct.pem"
openssl verify -CAfile "$T/pebble-root.pem" -untrusted "$T/acct.pem" "$T/acct.pem" > /dev/null || fail "the chain"
ok "rollover again" kh trustpoint acme-rollover acct
grep -q "rolled over from acct.acme.1 to acct.acme.2" "$T/ok.out" || fail "second rollover"
# kill -9 inside a rollover: before the server heard of it the old key
# stays, after it the new one; the next use asks the server and settles it.
kh_crash acme.rollover.intent kh trustpoint acme-rollover acct
ok "enroll after a crash before keyChange" kh trustpoint enroll acct
grep -q "rollover to 'acct.acme.3' had not reached the server" "$T/keyholdd.log" || fail "intent: not resolved"
[ "$(kh --json trustpoint show acct | json_get 'd["acme_account_key"]')" = acct.acme.2 ] || fail "intent: not the old key"
expect_err NOT_FOUND "intent: the new key is deleted" kh key show acct.acme.3
kh_crash acme.rollover.changed kh trustpoint acme-rollover acct
ok "enroll after a crash after keyChange" kh trustpoint enroll acct
grep -q "rollover to 'acct.acme.3' had reached the server; 'acct.acme.2' deleted" "$T/keyholdd.log" \
  || fail "changed: not resolved"
[ "$(kh --json trustpoint show acct | json_get 'd["acme_account"] + " " + d["acme_account_key"]')" = "$acct acct.acme.3" ] \
  || fail "changed: not the new key on the same account"
expect_err NOT_FOUND "changed: the old key is deleted" kh key show acct.acme.2

# Deactivation: asked twice, then the server refuses the account.
expect_err FAILED_PRECONDITION "deactivate without --yes" kh trustpoint acme-deactivate acct
expect_msg "cannot be undone"
ok "deactivate" kh trustpoint acme-deactivate acct --yes
grep -q "account $acct deactivated" "$T/ok.out" || fail "deactivate: the answer"
[ "$(kh --json trustpoint show acct | json_get 'd["acme_account"]')" = "" ] || fail "the account URL was kept"
expect_err FAILED_PRECONDITION "deactivate again" kh trustpoint acme-deactivate acct --yes
expect_msg "no ACME account yet"
expect_err FAILED_PRECONDITION "enroll with the deactivated account" kh trustpoint enroll acct
expect_msg "urn:ietf:params:acme:error:unauthorized: An account with the provided public key exists but is deactivated"
# A new key: a new account, and the enrollment works again.
ok "delete the account key" kh key delete acct.acme.3 --force
ok "enroll with a new account" kh trustpoint enroll acct
acct2=$(kh --json trustpoint show acct | json_get 'd["acme_account"]')
case $acct2 in "https://127.0.0.1:$ACME_PORT/my-account/"*) [ "$acct2" != "$acct" ] || fail "the same account" ;;
  *) fail "no new account ($acct2)" ;; esac

# Webroot mode: keyholdd without its responder; a web server (python's
# http.server) serves the webroot on the port pebble validates; keyholdd
# writes the key authorization there and removes it afterwards.
kh_stop
kh_config "$(printf '[acme]\ntimeout = 40s\n')"
kh_start
mkdir -p "$T/www"
python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$HTTP01_PORT" > "$T/www.log" 2>&1 &
ACME_EXTRA_PIDS+=("$!")
for _ in $(seq 1 50); do
  curl -s -o /dev/null "http://127.0.0.1:$HTTP01_PORT/" && break
  sleep 0.1
done
expect_err INVALID_ARGUMENT "a relative webroot" kh trustpoint create w0 --generate p256 --subject CN=w0 \
  --enrollment acme --acme-directory "$DIR" --acme-webroot www
expect_msg "absolute path"
ok "webroot: create" kh trustpoint create web --generate p256 --subject CN=web.acme.test --san DNS:web.acme.test \
  --enrollment acme --acme-directory "$DIR" --acme-ca-bundle "$T/tlsca.pem" --acme-webroot "$T/www"
ok "webroot: authenticate" kh trustpoint authenticate web --ca "$T/pebble-root.pem" --yes
ok "webroot: show" kh trustpoint show web
grep -q "^http-01:     written into $T/www/.well-known/acme-challenge/" "$T/ok.out" || fail "show: the webroot"
ok "webroot: enroll" kh trustpoint enroll web
grep -q 'GET /.well-known/acme-challenge/[A-Za-z0-9_-]* HTTP/1.1" 200' "$T/www.log" \
  || { cat "$T/www.log"; fail "pebble did not fetch the challenge from the web server"; }
[ -z "$(ls -A "$T/www/.well-known/acme-challenge")" ] || fail "the challenge file was left behind"
ok "webroot: export" kh trustpoint export web --chain --out "$T/web.pem"
openssl verify -CAfile "$T/pebble-root.pem" -untrusted "$T/web.pem" "$T/web.pem" > /dev/null || fail "web: the chain"
# A webroot keyholdd cannot write: a clear refusal naming it.
ok "webroot: create (missing)" kh trustpoint create gone --generate p256 --subject CN=gone.acme.test \
  --san DNS:gone.acme.test --enrollment acme --acme-directory "$DIR" --acme-ca-bundle "$T/tlsca.pem" \
  --acme-webroot "$T/nowhere"
ok "gone: authenticate" kh trustpoint authenticate gone --ca "$T/pebble-root.pem" --yes
expect_err FAILED_PRECONDITION "a missing webroot" kh trustpoint enroll gone
expect_msg "ACME webroot $T/nowhere: No such file or directory"

# External account binding: pebble requires it. The MAC key goes from a
# file to keyholdd, which computes the HMAC and forgets the key once the
# account exists.
EAB_KEY=zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W
stop_pebble
acme_pebble_config true ", \"externalAccountMACKeys\": { \"kid-1\": \"$EAB_KEY\" }"
start_pebble
ok "pebble's root (EAB)" fetch_root
printf '%s\n' "$EAB_KEY" > "$T/eab.key"
printf '%s\n' "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH" > "$T/eab-wrong.key"
printf 'not base64url!\n' > "$T/eab-junk.key"
chmod 0600 "$T"/eab*.key
mk() { # TP [options]: an ACME trustpoint on pebble, authenticated
  local tp=$1; shift
  ok "$tp: create" kh trustpoint create "$tp" --generate p256 --subject "CN=$tp.acme.test" --san "DNS:$tp.acme.test" \
    --enrollment acme --acme-directory "$DIR" --acme-ca-bundle "$T/tlsca.pem" --acme-webroot "$T/www" "$@"
  ok "$tp: authenticate" kh trustpoint authenticate "$tp" --ca "$T/pebble-root.pem" --yes
}
expect_rc 2 "--eab-kid without the key" kh trustpoint create e0 --generate p256 --subject CN=e0 --enrollment acme \
  --acme-directory "$DIR" --eab-kid kid-1
expect_rc 2 "EAB without acme" kh trustpoint create e0 --generate p256 --subject CN=e0 --eab-kid kid-1 \
  --eab-hmac-file "$T/eab.key"
expect_err INVALID_ARGUMENT "a MAC key that is not base64url" kh trustpoint create e0 --generate p256 --subject CN=e0 \
  --enrollment acme --acme-directory "$DIR" --eab-kid kid-1 --eab-hmac-file "$T/eab-junk.key"
expect_msg "not base64url"
mk noeab
expect_err FAILED_PRECONDITION "no binding where the server requires one" kh trustpoint enroll noeab
expect_msg "urn:ietf:params:acme:error:externalAccountRequired"
mk wrong --eab-kid kid-1 --eab-hmac-file "$T/eab-wrong.key"
expect_err FAILED_PRECONDITION "a wrong MAC key" kh trustpoint enroll wrong
expect_msg "ACME newAccount for trustpoint 'wrong': HTTP "
expect_msg "external account binding JWS verification error"
[ "$(kh --json trustpoint show wrong | json_get 'd["acme_account"]')" = "" ] || fail "an account after a refusal"
mk eab --eab-kid kid-1 --eab-hmac-file "$T/eab.key"
ok "show the binding" kh trustpoint show eab
grep -q "^acme eab:    kid kid-1 (used when the account is created)" "$T/ok.out" || { cat "$T/ok.out"; fail "show: eab"; }
ok "enroll with the binding" kh trustpoint enroll eab
grep -q "ACME newAccount with external account binding kid 'kid-1'" "$T/keyholdd.log" || fail "no binding sent"
ok "export" kh trustpoint export eab --chain --out "$T/eab.pem"
openssl verify -CAfile "$T/pebble-root.pem" -untrusted "$T/eab.pem" "$T/eab.pem" > /dev/null || fail "eab: the chain"
# Used once: the key is gone from the state database.
[ "$(kh --json trustpoint show eab | json_get 'd["acme_eab_kid"]')" = "" ] || fail "the binding was kept"
[ "$(kh_state_sql "SELECT CASE WHEN eab_key IS NULL AND eab_kid = '' THEN 1 ELSE 0 END FROM trustpoint_acme WHERE trustpoint = 'eab'")" = 1 ] \
  || fail "the MAC key stayed in the state database"
[ "$(kh_state_sql "SELECT length(eab_key) FROM trustpoint_acme WHERE trustpoint = 'wrong'")" = 48 ] \
  || fail "the unused binding of 'wrong' is not kept for its next try"
# The right binding afterwards: acme-eab, and the next enroll registers.
expect_rc 2 "acme-eab without the key file" kh trustpoint acme-eab wrong --eab-kid kid-1
expect_err FAILED_PRECONDITION "acme-eab on a self trustpoint" kh trustpoint acme-eab selfie --eab-kid kid-1 \
  --eab-hmac-file "$T/eab.key"
expect_err INVALID_ARGUMENT "acme-eab with junk" kh trustpoint acme-eab wrong --eab-kid kid-1 --eab-hmac-file "$T/eab-junk.key"
ok "acme-eab" kh --json trustpoint acme-eab wrong --eab-kid kid-1 --eab-hmac-file "$T/eab.key"
[ "$(json_get 'd["trustpoint"]["acme_eab_kid"]' < "$T/ok.out")" = kid-1 ] || { cat "$T/ok.out"; fail "acme-eab: the answer"; }
ok "enroll with the corrected binding" kh trustpoint enroll wrong
log "ACME account key rollover, deactivation, external account binding"
