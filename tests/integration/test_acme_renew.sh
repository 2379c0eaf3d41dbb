#!/usr/bin/env bash
# Automatic renewal of ACME trustpoints at --renew-at, against Debian's
# pebble, driven by keyholdd's test clock and `keyhold cert monitor` (no
# sleeps): nothing before the threshold; past it with pebble stopped, the
# attempt fails, the hook runs with KEYHOLD_EVENT=renew-failed and `trustpoint
# show` names the error and the next attempt (a bounded back-off: a second
# pass before it does not try again); pebble restarted, the next pass after
# the back-off renews: the same key, and with --renew-regenerate a new key
# (made at the failed attempt, enrolled by the retry; the old key deleted).
# kill -9 of keyholdd at points of an ACME enroll leaves the old or the
# new certificate. Every certificate is checked with openssl against
# pebble's root.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"
. "$(dirname "$0")/acme_lib.sh"
start_pebble
# The trustpoints reach pebble through a forwarder the test can cut.
read -r PROXY_PORT < <(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_acme_proxy "$PROXY_PORT" 0
DIR="https://127.0.0.1:$PROXY_PORT/dir"

export KEYHOLD_TEST_CLOCK="$T/clock"
echo 0 > "$KEYHOLD_TEST_CLOCK"
cat > "$T/hook.sh" << EOF
#!/bin/bash
printf '%s|%s|%s\n' "\$KEYHOLD_EVENT" "\$KEYHOLD_CERT_HELD_BY" "\$KEYHOLD_DETAIL" >> "$T/hook.out"
EOF
chmod 0755 "$T/hook.sh"
: > "$T/hook.out"
kh_config "$(printf '[acme]\nhttp01_listen = 127.0.0.1:%s\ntimeout = 40s\n[expiry]\ncheck_interval = 7d\nnotify_days = 1\nhook = %s\n' \
  "$HTTP01_PORT" "$T/hook.sh")"
kh_start

serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
# TP PYTHON-EXPR MESSAGE: one show, one python (each start costs).
tpcheck() {
  kh --json trustpoint show "$1" > "$T/tp.json" || fail "show $1"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
    "$T/tp.json" "$2" || { cat "$T/tp.json" >&2; fail "$1: $3"; }
}
# CLOCK RENEWALS ERRORS: a pass at that offset, its lines counted; the
# exit status is 0 without errors, else FAILED_PRECONDITION's (6).
monitor() {
  local rc=0
  echo "$1" > "$KEYHOLD_TEST_CLOCK"
  kh --json cert monitor > "$T/mon.json" 2> "$T/mon.err" || rc=$?
  [ "$(json_get '"%d %d" % (len(d["renewals"]), len(d["errors"]))' < "$T/mon.json") $rc" = "$2 $3 $([ "$3" = 0 ] && echo 0 || echo 6)" ] \
    || { cat "$T/mon.json" >&2; fail "monitor at +$1 s: expected $2 renewal(s), $3 error(s) (exit $rc)"; }
}
check_cert() { # TP KEY FILE: chains to pebble's root, for the key
  openssl verify -CAfile "$T/pebble-root.pem" -untrusted "$3" "$3" > /dev/null || fail "$1: does not chain to pebble's root"
  cmp -s <(pki_pub_of "$3") <(kh key show "$2" --pem | openssl pkey -pubin -outform DER) \
    || fail "$1: the certificate is not for key $2"
}

ok "pebble's root" fetch_root
for tp in same regen; do
  extra=()
  [ "$tp" = regen ] && extra=(--renew-regenerate)
  ok "$tp: create" kh trustpoint create "$tp" --generate p256 --subject "CN=$tp.acme.test" --san "DNS:$tp.acme.test" \
    --enrollment acme --acme-directory "$DIR" --acme-ca-bundle "$T/tlsca.pem" --renew-at 50 "${extra[@]}"
  ok "$tp: authenticate" kh trustpoint authenticate "$tp" --ca "$T/pebble-root.pem" --yes
  ok "$tp: enroll" kh trustpoint enroll "$tp"
  ok "$tp: export" kh trustpoint export "$tp" --chain --out "$T/$tp-0.pem"
  check_cert "$tp" "$tp" "$T/$tp-0.pem"
done
# pebble's certificates live five years: half of it (and a day) is past
# the threshold.
na=$(date -d "$(openssl x509 -in "$T/same-0.pem" -noout -enddate | cut -d= -f2)" +%s)
half=$(((na - $(date +%s)) / 2 + 86400))

monitor 0 0 0

# Past the threshold, pebble goes away in the middle of the first order
# (regen's: directory, newNonce, newOrder and one more request; the next
# one, a challenge or the order's polling, finds nothing), and the second
# finds nothing at all: failures, reported, nothing stuck.
stop_acme_proxy
start_acme_proxy "$PROXY_PORT" 4
monitor "$half" 0 2
grep -q 'same: renewal failed (1 in a row; next attempt' "$T/mon.json" || fail "the failure line"
[ "$(grep -c '^renew-failed|trustpoint:' "$T/hook.out")" = 2 ] || { cat "$T/hook.out"; fail "the hook saw no renew-failed"; }
grep -q "^renew-failed|trustpoint:same|ACME GET $DIR: " "$T/hook.out" || fail "the hook lacks the error"
grep -q "^renew-failed|trustpoint:regen|ACME POST https://127.0.0.1:$PROXY_PORT/" "$T/hook.out" \
  || { cat "$T/hook.out"; fail "regen did not fail in the middle of its order"; }
tpcheck same "d['renew_failures'] == 1 and d['renew_error'].startswith('ACME GET $DIR: ') and d['renew_next_attempt'] != '-'" \
  "show: failures, error, next attempt"
ok "show" kh trustpoint show same
grep -q "^renewal:     FAILED 1 time(s) in a row; next attempt 20[0-9-]*T[0-9:]*Z; last error: ACME GET $DIR: " "$T/ok.out" \
  || { cat "$T/ok.out"; fail "show does not say the renewal failed"; }
# regen: the new key was made and waits for the retry; the old one in use.
tpcheck regen "d['next_key'] == 'regen.1' and d['key'] == 'regen' and d['renew_failures'] == 1" "keys after the failure"
ok "export during the failure" kh trustpoint export same --chain --out "$T/same-x.pem"
cmp -s "$T/same-0.pem" "$T/same-x.pem" || fail "the certificate in use changed"

# Before the back-off ends: no new attempt.
monitor $((half + 60)) 0 0
[ "$(grep -c '^renew-failed' "$T/hook.out")" = 2 ] || fail "the hook ran again within the back-off"

# pebble reachable again: after the back-off both renew (regen with the
# key its failed attempt made).
stop_acme_proxy
start_acme_proxy "$PROXY_PORT" 0
monitor $((half + 301)) 2 0
grep -q 'same: renewed by ACME: new certificate (serial ' "$T/mon.json" || fail "the renewal line"
for tp in same regen; do
  ok "$tp: export" kh trustpoint export "$tp" --chain --out "$T/$tp-1.pem"
  [ "$(serial "$T/$tp-1.pem")" != "$(serial "$T/$tp-0.pem")" ] || fail "$tp: the same certificate"
done
check_cert same same "$T/same-1.pem"
check_cert regen regen.1 "$T/regen-1.pem"
cmp -s <(pki_pub_of "$T/same-0.pem") <(pki_pub_of "$T/same-1.pem") || fail "same: changed its key"
tpcheck same "d['renew_failures'] == 0 and d['renew_error'] == ''" "the failure was kept"
tpcheck regen "d['key'] == 'regen.1' and 'next_key' not in d and not d['csr_pending'] and d['renew_failures'] == 0" \
  "not on its new key (or a CSR left pending)"
expect_err NOT_FOUND "regen's old key is deleted" kh key show regen

# Renewed: back at today's date the new certificates are not due (pebble
# issues from the real time, so at the moved clock they would be again).
monitor 0 0 0

# kill -9 during an ACME enroll (KEYHOLD_TEST_CRASH_AT, as in
# test_pki_crash): after a restart the trustpoint holds its old or its new
# certificate, never anything between, and enroll simply runs again.
fp() { kh trustpoint export same | openssl x509 -noout -fingerprint -sha256; }
fp0=$(fp)
for point in acme.downloaded import.before_commit; do
  kh_crash "$point" kh trustpoint enroll same
  [ "$(fp)" = "$fp0" ] || fail "$point: not the old certificate"
done
kh_crash import.after_commit kh trustpoint enroll same
[ "$(fp)" != "$fp0" ] || fail "import.after_commit: not the new certificate"
ok "after the crashes: export" kh trustpoint export same --chain --out "$T/same-2.pem"
check_cert same same "$T/same-2.pem"
# The account key made, not yet recorded: the next enroll uses it.
ok "fresh: create" kh trustpoint create fresh --generate p256 --subject CN=fresh.acme.test --san DNS:fresh.acme.test \
  --enrollment acme --acme-directory "$DIR" --acme-ca-bundle "$T/tlsca.pem"
ok "fresh: authenticate" kh trustpoint authenticate fresh --ca "$T/pebble-root.pem" --yes
kh_crash acme.account_key kh trustpoint enroll fresh
kh trustpoint show fresh | grep -q "^certificate: none" || fail "acme.account_key: not the old state"
ok "fresh: enroll after the crash" kh trustpoint enroll fresh
ok "fresh: export" kh trustpoint export fresh --chain --out "$T/fresh.pem"
check_cert fresh fresh "$T/fresh.pem"
log "ACME renewal at 50%: failure, back-off, retry, same key and new key; kill -9 during enroll"
