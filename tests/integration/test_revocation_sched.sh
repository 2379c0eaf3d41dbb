#!/usr/bin/env bash
# Revocation over time: keyholdd's revocation scheduler fetches a trust
# store's CRL URL and the distribution points of the certificates it holds
# from a loopback HTTP server, again before a CRL's nextUpdate (at
# nextUpdate less a quarter of its validity when that comes before the next
# recheck_interval), and re-checks every trustpoint's certificate and chain.
# A certificate revoked at the CA (`openssl ca -revoke`, a new CRL) is
# flagged within one interval in `trustpoint show/list`, `cert expiring`,
# the hook (KEYHOLD_EVENT revoked, revocation-unknown, crl-stale: once per
# change) and the audit log. keyholdd's clock is moved with the test clock;
# the scheduler looks every 100 ms (KEYHOLD_TEST_REV_TICK_MS), and the test
# polls for the pass's timestamp: no sleep waits for time to pass.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"
. "$(dirname "$0")/revocation_lib.sh"

HOUR=3600
cat > "$T/hook.sh" <<EOF
#!/bin/bash
printf '%s|%s|%s\n' "\$KEYHOLD_EVENT" "\$KEYHOLD_CERT_FINGERPRINT" "\$KEYHOLD_CERT_HELD_BY" >> "$T/hook.out"
EOF
chmod 0755 "$T/hook.sh"
: > "$T/hook.out"
export KEYHOLD_TEST_REV_TICK_MS=100

rev_up crl
rev_ca root "Sched Root CA"
rev_gencrl root -crldays 2
kh_config "[revocation]
recheck_interval = 1d
[expiry]
hook = $T/hook.sh"
kh_start
kh_has_type p256 || fail "the trustpoint needs a p256 key"

# ---- the trust store's CRL URL ----
ok "store" kh truststore add corp "$REV_CAS/root/ca.pem"
expect_err INVALID_ARGUMENT "ftp CRL URL" kh truststore set corp --crl-url "ftp://127.0.0.1/root.crl"
expect_msg "http://"
expect_err NOT_FOUND "no such store" kh truststore set nostore --crl-url "http://127.0.0.1:$CRL_PORT/root.crl"
ok "crl url" kh --json truststore set corp --crl-url "http://127.0.0.1:$CRL_PORT/root.crl"
[ "$(json_get 'd["crl_url"]' < "$T/ok.out")" = "http://127.0.0.1:$CRL_PORT/root.crl" ] || fail "crl_url not echoed"

# ---- a CA-issued identity, policy crl ----
ok "create" kh trustpoint create web --generate p256 --subject "CN=web.example.com" --enrollment terminal --revocation crl
ok "authenticate" kh trustpoint authenticate web --ca "$REV_CAS/root/ca.pem" --yes
ok "enroll" kh trustpoint enroll web --out "$T/web.csr"
openssl ca -batch -config "$REV_CAS/root/ca.cnf" -in "$T/web.csr" -out "$T/web.pem" -notext 2> /dev/null || fail "openssl ca"
ok "import" kh trustpoint import web --cert "$T/web.pem"
web_fp=$(pki_fp "$T/web.pem")

# wait_pass SECONDS: keyholdd's clock SECONDS ahead; waits (polling) until
# the scheduler has checked web at that time or later.
wait_pass() {
  local at c
  at=$(date -u -d "@$(($(date +%s) + $1 - 2))" +%Y-%m-%dT%H:%M:%SZ)
  rev_clock "$1"
  for _ in $(seq 1 400); do
    kh --json trustpoint show web > "$T/show.json" 2> /dev/null || true
    c=$(grep -o '"revocation_checked":"[^"]*"' "$T/show.json" | cut -d'"' -f4)
    if [ -n "$c" ] && [ "$c" != - ] && { [[ "$c" > "$at" ]] || [ "$c" = "$at" ]; }; then
      return 0
    fi
    sleep 0.02
  done
  cat "$T/show.json" >&2
  fail "no scheduler pass at +$1 s"
}
state() { json_get 'd["revocation_state"]' < "$T/show.json"; }
crl_fp() { openssl crl -in "$T/root.crl.pem" -outform DER | sha256sum | cut -c1-64; }
store_crl() {
  kh --json crl list corp > "$T/crls.json" || fail "crl list"
  json_get 'd["crls"][0]["crl"]["fingerprint_sha256"]' < "$T/crls.json"
}
events() { grep -c "^$1|" "$T/hook.out" || true; }
# wait_events EVENT N: the pass records the states first and runs the hooks
# after, so a pass wait_pass saw may still be running hooks: until EVENT
# went to the hook N times (10 s at most; the exact counts are checked
# after).
wait_events() {
  for _ in $(seq 1 500); do
    [ "$(events "$1")" -ge "$2" ] && return 0
    sleep 0.02
  done
}

# The import asked for a pass at once.
wait_pass 0
[ "$(state)" = good ] || fail "web is $(state) after the first pass, not good"
ok "list" kh trustpoint list
grep -Eq "^web .* good$" "$T/ok.out" || fail "trustpoint list does not show good: $(cat "$T/ok.out")"
[ "$(store_crl)" = "$(crl_fp)" ] || fail "the store does not hold the CRL from its URL"
[ "$(json_get 'd["crls"][0]["source"]' < "$T/crls.json")" = fetched ] || fail "the store's CRL is not 'fetched'"
[ "$(json_get 'd["crls"][0]["last_fetch_ok"]' < "$T/crls.json")" = true ] || fail "the last fetch is not ok"
[ -s "$T/hook.out" ] && fail "the hook ran for a good certificate: $(cat "$T/hook.out")"

# ---- refreshed before nextUpdate ----
# A pass at +25 h (one interval); the next regular one would be at +49 h,
# after the CRL's nextUpdate (+48 h): its refresh point (+36 h) comes first.
wait_pass $((25 * HOUR))
rev_gencrl root -crldays 2
gets=$(rev_gets /root.crl)
wait_pass $((37 * HOUR))
[ "$(store_crl)" = "$(crl_fp)" ] || fail "the CRL was not refreshed at its refresh point, before nextUpdate"
[ "$(rev_gets /root.crl)" -gt "$gets" ] || fail "no fetch at the refresh point"
[ "$(state)" = good ] || fail "web is $(state) after the refresh"

# ---- revoked at the CA: flagged within one interval, the hook once ----
rev_revoke root "$T/web.pem"
rev_gencrl root -crldays 30
wait_pass $((61 * HOUR))
wait_events revoked 1
[ "$(state)" = revoked ] || fail "web is $(state), not revoked, one interval after its revocation"
json_get 'd["revocation_detail"]' < "$T/show.json" | grep -q keyCompromise || fail "the detail lacks the reason"
[ "$(events revoked)" = 1 ] || fail "the hook ran $(events revoked) times for revoked"
grep -q "^revoked|$web_fp|trustpoint:web$" "$T/hook.out" || fail "the revoked event does not name web: $(cat "$T/hook.out")"
ok "expiring" kh --json cert expiring --all
[ "$(json_get "[c['revocation'] for c in d['certificates'] if c['fingerprint_sha256'] == '$web_fp'][0]" < "$T/ok.out")" = revoked ] \
  || fail "cert expiring does not show web revoked"
ok "expiring (text)" kh cert expiring --all
grep -q "web.example.com.*REVOCATION: REVOKED" "$T/ok.out" || fail "cert expiring's text lacks REVOKED"
ok "show (text)" kh trustpoint show web
grep -q "THE CERTIFICATE IS REVOKED" "$T/ok.out" || fail "trustpoint show's text lacks the revocation"
ok "audit" kh --json audit show --limit 4096
[ "$(json_get '[r["object"] for r in d["records"] if r["method"] == "Revocation:revoked"]' < "$T/ok.out")" = "['trustpoint:web']" ] \
  || fail "the audit log lacks one Revocation:revoked record for web"
wait_pass $((85 * HOUR))
[ "$(events revoked)" = 1 ] || fail "the hook ran again for an unchanged state"

# ---- the CRL server gone past nextUpdate: crl-stale once per CRL ----
rev_down crl
wait_pass $((32 * 24 * HOUR))
wait_events crl-stale 2
wait_events revocation-unknown 1
[ "$(events crl-stale)" = 2 ] || fail "crl-stale: $(events crl-stale) events, expected 2 (the store's CRL, the cached one)"
[ "$(events revocation-unknown)" = 1 ] || fail "revocation-unknown: $(events revocation-unknown), expected 1"
[ "$(state)" = unknown ] || fail "web is $(state) with no current CRL, not unknown"
ok "crl list" kh --json crl list corp
[ "$(json_get 'd["crls"][0]["last_fetch_ok"]' < "$T/ok.out")" = false ] || fail "the failed fetch is not shown"
ok "crl list (text)" kh crl list corp
grep -q "FAILED" "$T/ok.out" || fail "crl list's text does not show the failed fetch"
kh_restart
wait_pass $((33 * 24 * HOUR))
[ "$(events crl-stale)" = 2 ] || fail "crl-stale fired again after a restart"
[ "$(wc -l < "$T/hook.out")" = 4 ] || fail "the hook ran $(wc -l < "$T/hook.out") times, expected 4: $(cat "$T/hook.out")"

# crl remove asks for --force (the store would accept what the CRL revokes).
expect_err FAILED_PRECONDITION "crl remove without --force" kh crl remove corp "CN=Sched Root CA"
expect_msg "give --force"
ok "crl remove --force" kh --json crl remove corp "CN=Sched Root CA" --force
# Clearing the URL.
ok "crl url none" kh --json truststore set corp --crl-url none
[ "$(json_get 'd["crl_url"]' < "$T/ok.out")" = "" ] || fail "--crl-url none did not clear it"
log "revocation scheduler: refresh before nextUpdate, revoked within one interval, events once per change"
