#!/usr/bin/env bash
# SCEP (RFC 8894) enrollment of trustpoints against Debian's scepserver,
# the ASA way (docs/PKI.md "SCEP enrollment"): create with --enrollment url
# and a challenge password, authenticate (GetCACert; the fingerprint checked
# against openssl's), enroll RSA-2048 and RSA-3072 (PKCSReq signed in the
# token, CertRep decrypted in the token); the issued certificate holds the
# token key and chains to the CA (openssl verify). That part runs on both
# tokens (TPM: RSA-2048); the rest, above the token, on SoftHSM2 only: a
# wrong challenge is a clear failure that `trustpoint show` reports; a
# server without POST gets the PKCSReq by GET (scep_get_proxy.py); kill -9
# of keyholdd mid-enrollment and mid-poll; CKA_DECRYPT on SCEP keys
# only; renewal by RenewalReq (messageType 17, signed with the current
# certificate: checked with openssl on the request itself) at --renew-at,
# same key and regenerate (rollover), driven by the test clock; a PENDING
# request polled (CertPoll) by keyholdd with back-off, across a restart,
# to its certificate, to a FAILURE in words and to being abandoned.
# scepserver 2.1 can neither hold a request nor answer CertPoll, so the
# pending part goes through scep_ra_proxy.py: an approving RA in front of
# it that signs PENDING CertReps with the depot's CA key (real CMS) and,
# once approved, has scepserver issue and passes its envelope on. scepserver
# checks the challenge on RenewalReq too (its own TODO), so renewals go to a
# second scepserver on the same CA without a challenge. scepserver (2.1)
# has no listen-address flag: it binds the random port on every interface
# for the few seconds of the test; keyhold talks to it on 127.0.0.1 only.
. "$(dirname "$0")/lib.sh"

command -v scepserver > /dev/null || fail "scepserver is missing (Debian package scep; scripts/install-deps.sh)"
SCEP_PID=""
SCEP2_PID=""
PROXY_PID=""
RA_PIDS=()
scep_stop() {
  local p
  for p in "${RA_PIDS[@]}" "$PROXY_PID" "$SCEP2_PID" "$SCEP_PID"; do
    if [ -n "$p" ]; then kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; fi
  done
}
kh_on_exit scep_stop

# The CA: scepserver's own (RSA 2048 to keep it quick).
ok "scepserver ca -init" scepserver ca -init -depot "$T/depot" -keySize 2048 -organization "Keyhold Test SCEP CA"
printf 'S3cret-challenge\n' > "$T/challenge"
printf 'wrong\n' > "$T/wrong"
chmod 600 "$T/challenge" "$T/wrong"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
scepserver -depot "$T/depot" -port "$PORT" -challenge S3cret-challenge -allowrenew 0 > "$T/scep.log" 2>&1 &
SCEP_PID=$!
URL="http://127.0.0.1:$PORT/scep"
for _ in $(seq 1 50); do
  curl -sf "$URL?operation=GetCACaps" > /dev/null 2>&1 && break
  kill -0 "$SCEP_PID" 2> /dev/null || { cat "$T/scep.log" >&2; fail "scepserver did not start"; }
  sleep 0.1
done
curl -sf "$URL?operation=GetCACaps" > "$T/caps" || fail "scepserver does not answer GetCACaps"
log "GetCACaps: $(tr '\n' ' ' < "$T/caps")"
openssl x509 -in "$T/depot/ca.pem" -noout > /dev/null 2>&1 || fail "no CA certificate in the depot"
fp=$(openssl x509 -in "$T/depot/ca.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')

# keyhold's clock, moved by the test (KEYHOLD_TESTING builds).
export KEYHOLD_TEST_CLOCK="$T/clock"
echo 0 > "$KEYHOLD_TEST_CLOCK"
# poll_interval is also the poller's timer: 10 minutes, so that only the
# test's `cert monitor` passes act within the test.
kh_config "$(printf '[scep]\npoll_interval = 10m\npoll_max = 30m\npoll_timeout = 1d')"
kh_start

# ---- refusals at create ----
expect_err INVALID_ARGUMENT "url without --url" kh trustpoint create bad --generate rsa2048 --subject CN=x --enrollment url
expect_err INVALID_ARGUMENT "url with an EC key" kh trustpoint create bad --generate p256 --subject CN=x --enrollment url --url "$URL"
expect_err INVALID_ARGUMENT "--url without enrollment url" kh trustpoint create bad --generate rsa2048 --subject CN=x --url "$URL"

types=(rsa2048)
[ "$KH_TOKEN" = softhsm ] && kh_has_type rsa3072 && types+=(rsa3072)
for type in "${types[@]}"; do
  tp="asa-scep-$type"
  ok "$type: create" kh trustpoint create "$tp" --generate "$type" --subject "CN=$tp.example.com,O=Example" \
    --fqdn "$tp.example.com" --enrollment url --url "$URL" --challenge-password-file "$T/challenge"
  kh trustpoint show "$tp" > "$T/show.txt"
  grep -q "url:  *$URL (SCEP, challenge password set): not enrolled" "$T/show.txt" || { cat "$T/show.txt" >&2; fail "$type: show lacks the SCEP state"; }
  expect_err FAILED_PRECONDITION "$type: enroll before authenticate" kh trustpoint enroll "$tp"
  expect_err FAILED_PRECONDITION "$type: authenticate without confirmation" kh trustpoint authenticate "$tp"
  grep -q "$fp" "$T/err.err" || fail "$type: authenticate does not show the CA's SHA-256 fingerprint"
  expect_err FAILED_PRECONDITION "$type: authenticate with a wrong fingerprint" kh trustpoint authenticate "$tp" \
    --fingerprint "$(printf '%064d' 0)"
  ok "$type: authenticate with the pinned fingerprint" kh trustpoint authenticate "$tp" --fingerprint "$fp"
  ok "$type: enroll" kh trustpoint enroll "$tp"
  grep -q "certificate issued by the CA (SCEP)" "$T/ok.out" || { cat "$T/ok.out" >&2; fail "$type: enroll output"; }
  ok "$type: export" kh trustpoint export "$tp" --out "$T/$tp.crt"
  openssl verify -CAfile "$T/depot/ca.pem" "$T/$tp.crt" > /dev/null || fail "$type: the issued certificate does not chain to the SCEP CA"
  cmp -s <(openssl x509 -in "$T/$tp.crt" -pubkey -noout | openssl pkey -pubin -outform DER) \
    <(kh key show "$tp" --pem | openssl pkey -pubin -outform DER) \
    || fail "$type: the issued certificate is not for the token key"
  openssl x509 -in "$T/$tp.crt" -noout -subject | grep -q "CN *= *$tp.example.com" || fail "$type: subject"
  kh trustpoint show "$tp" > "$T/show.txt"
  grep -q "url:  *$URL (SCEP): issued" "$T/show.txt" || { cat "$T/show.txt" >&2; fail "$type: show after enroll (challenge dropped, issued)"; }
done
if [ "$KH_TOKEN" = tpm ]; then
  log "SCEP enrollment passed on the TPM token (${types[*]}); the rest runs on SoftHSM2"
  exit 0
fi

# ---- a server without POSTPKIOperation: the PKCSReq goes by GET ----
python3 "$KH_SRC/tests/integration/scep_get_proxy.py" "$T/proxy.port" "http://127.0.0.1:$PORT" "$T/proxy.log" &
PROXY_PID=$!
for _ in $(seq 1 50); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
[ -s "$T/proxy.port" ] || fail "the GET-only proxy did not start"
GURL="http://127.0.0.1:$(cat "$T/proxy.port")/scep"
ok "GET: create" kh trustpoint create scep-get --generate rsa2048 --subject CN=get.example.com \
  --enrollment url --url "$GURL" --challenge-password-file "$T/challenge"
ok "GET: authenticate" kh trustpoint authenticate scep-get --fingerprint "$fp"
ok "GET: enroll" kh trustpoint enroll scep-get
grep -q "^GET PKIOperation$" "$T/proxy.log" || { cat "$T/proxy.log" >&2; fail "GET: the PKCSReq did not go by GET"; }
! grep -q "^POST" "$T/proxy.log" || fail "GET: keyhold POSTed to a server that does not offer it"
ok "GET: export" kh trustpoint export scep-get --out "$T/get.crt"
openssl verify -CAfile "$T/depot/ca.pem" "$T/get.crt" > /dev/null || fail "GET: the certificate does not chain"

# ---- a wrong challenge: the CA refuses, in words ----
ok "wrong challenge: create" kh trustpoint create scep-wrong --generate rsa2048 --subject CN=wrong.example.com \
  --enrollment url --url "$URL" --challenge-password-file "$T/wrong"
ok "wrong challenge: authenticate" kh trustpoint authenticate scep-wrong --yes
expect_err FAILED_PRECONDITION "wrong challenge: enroll" kh trustpoint enroll scep-wrong
grep -q "refused the request of trustpoint 'scep-wrong': bad" "$T/err.err" || { cat "$T/err.err" >&2; fail "wrong challenge: the failure is not in words"; }
kh --json trustpoint show scep-wrong > "$T/show.json"
case "$(json_get 'd["scep_status"]' < "$T/show.json")" in failed:*) ;; *) fail "wrong challenge: show does not say failed";; esac
[ "$(json_get 'd.get("cert") is None' < "$T/show.json")" = true ] || fail "wrong challenge: a certificate was stored"

# ---- kill -9 of keyholdd between the CA's answer and its processing ----
# Nothing is stored: the trustpoint stays unenrolled and enrolls again.
ok "crash: create" kh trustpoint create scep-crash --generate rsa2048 --subject CN=crash.example.com \
  --enrollment url --url "$URL" --challenge-password-file "$T/challenge"
ok "crash: authenticate" kh trustpoint authenticate scep-crash --fingerprint "$fp"
kh_stop
export KEYHOLD_TEST_CRASH_AT=scep.after_request
kh_start
unset KEYHOLD_TEST_CRASH_AT
pid=$KH_PID
if kh trustpoint enroll scep-crash > "$T/crash.out" 2>&1; then fail "crash: enroll succeeded although keyholdd was to be killed"; fi
rc=0; wait "$pid" || rc=$?
KH_PID=""
[ "$rc" = 137 ] || fail "crash: keyholdd exited with status $rc, not by SIGKILL"
kh_start
kh --json trustpoint show scep-crash > "$T/show.json"
[ "$(json_get 'd.get("cert") is None and d["scep_status"] == ""' < "$T/show.json")" = true ] \
  || fail "crash: a half-done enrollment is visible after the restart"
ok "crash: enroll again after the restart" kh trustpoint enroll scep-crash
ok "crash: export" kh trustpoint export scep-crash --out "$T/crash.crt"
openssl verify -CAfile "$T/depot/ca.pem" "$T/crash.crt" > /dev/null || fail "crash: the certificate does not chain"

# ---- only SCEP keys may decrypt (CKA_DECRYPT) ----
ok "a key for another trustpoint" kh trustpoint create plain --generate rsa2048 --subject CN=plain --enrollment terminal
if [ "$KH_TOKEN" = softhsm ]; then
  pkcs11-tool --module "$TOKEN_MODULE" --login --pin "$(cat "$TOKEN_PIN_FILE")" --list-objects --type privkey \
    > "$T/objs.txt" 2> /dev/null || fail "pkcs11-tool cannot list the token's private keys"
  usage_of() { awk -v l="$1" '/label:/ {cur=$2} /Usage:/ && cur==l {sub(/.*Usage: */, ""); print; exit}' "$T/objs.txt"; }
  case "$(usage_of asa-scep-rsa2048)" in *decrypt*) ;; *) cat "$T/objs.txt" >&2; fail "the SCEP key cannot decrypt";; esac
  case "$(usage_of plain)" in *decrypt*) cat "$T/objs.txt" >&2; fail "a non-SCEP key may decrypt";; "") fail "no usage for key plain";; esac
fi

# ---- helpers for the RA proxy (scep_ra_proxy.py) and the clock ----
# start_ra DIR UPSTREAM: an approving RA in front of scepserver; its URL in RA_URL.
start_ra() {
  mkdir -p "$1"
  python3 "$KH_SRC/tests/integration/scep_ra_proxy.py" "$1/port" "$2" "$T/depot" "$1/log" "$1/approve" &
  RA_PIDS+=("$!")
  for _ in $(seq 1 50); do [ -s "$1/port" ] && break; sleep 0.1; done
  [ -s "$1/port" ] || fail "the RA proxy did not start"
  RA_URL="http://127.0.0.1:$(cat "$1/port")/scep"
}
clock() { echo "$1" > "$KEYHOLD_TEST_CLOCK"; }
monitor() { ok "monitor ($1)" kh --json cert monitor; cp "$T/ok.out" "$T/mon.json"; }
# A pass with errors exits non-zero and lists them.
monitor_err() { if kh --json cert monitor > "$T/mon.json" 2>&1; then fail "monitor ($1) reported no error"; fi; }
tpj() { kh --json trustpoint show "$1" > "$T/tp.json" || fail "show $1"; json_get "$2" < "$T/tp.json"; }
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
pub() { openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
keypub() { kh key show "$1" --pem | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }

# ---- renewal by RenewalReq (messageType 17), driven by the test clock ----
# scepserver checks the challenge on every request, RenewalReq included
# (RFC 8894 §2.3 has renewals send none): renewals go to a second
# scepserver on the same CA without a challenge, through the RA proxy in
# "pass" mode, which keeps each request for openssl to check.
PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
scepserver -depot "$T/depot" -port "$PORT2" -allowrenew 0 -crtvalid 10 > "$T/scep2.log" 2>&1 &
SCEP2_PID=$!
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$PORT2/scep?operation=GetCACaps" > /dev/null 2>&1 && break
  kill -0 "$SCEP2_PID" 2> /dev/null || { cat "$T/scep2.log" >&2; fail "the second scepserver did not start"; }
  sleep 0.1
done
grep -qi renewal "$T/caps" || fail "scepserver does not offer Renewal"
start_ra "$T/ra2" "http://127.0.0.1:$PORT2"
echo pass > "$T/ra2/approve"
ok "renew: create (10-day certificates, renew at 50%)" kh trustpoint create scep-renew --generate rsa2048 \
  --subject CN=renew.example.com --enrollment url --url "$RA_URL" --renew-at 50
ok "renew: authenticate" kh trustpoint authenticate scep-renew --fingerprint "$fp"
ok "renew: enroll" kh trustpoint enroll scep-renew
ok "renew: export" kh trustpoint export scep-renew --out "$T/r0.crt"
key0=$(tpj scep-renew 'd["key"]')
clock $((6 * 86400))
[ "$(tpj scep-renew 'd["renewal"]')" = due ] || fail "renew: not due at day 6 of 10"
monitor "day 6: same key"
grep -q "scep-renew: renewed by SCEP (RenewalReq) with the same key" "$T/mon.json" || { cat "$T/mon.json" >&2; fail "renew: no renewal line"; }
ok "renew: export the renewed certificate" kh trustpoint export scep-renew --out "$T/r1.crt"
openssl verify -CAfile "$T/depot/ca.pem" "$T/r1.crt" > /dev/null || fail "renew: the new certificate does not chain"
[ "$(serial "$T/r0.crt")" != "$(serial "$T/r1.crt")" ] || fail "renew: the certificate did not change"
[ "$(pub "$T/r1.crt")" = "$(keypub "$key0")" ] && [ "$(tpj scep-renew 'd["key"]')" = "$key0" ] || fail "renew: same-key renewal changed the key"
# The request itself, checked by openssl: messageType 17, signed by the
# certificate in use then (the embedded signer is it; the signature verifies).
req=$(awk '$1 == "PASS" && $2 == 17 {f=$4} END {print f}' "$T/ra2/log")
[ -n "$req" ] || { cat "$T/ra2/log" >&2; fail "renew: no RenewalReq reached the server"; }
openssl cms -verify -inform DER -in "$T/ra2/$req" -noverify -binary -out /dev/null 2> "$T/cms.err" \
  || { cat "$T/cms.err" >&2; fail "renew: the RenewalReq's signature does not verify"; }
openssl pkcs7 -inform DER -in "$T/ra2/$req" -print_certs | openssl x509 -outform DER | cmp -s - <(openssl x509 -in "$T/r0.crt" -outform DER) \
  || fail "renew: the RenewalReq is not signed with the current certificate"
openssl cms -cmsout -print -inform DER -in "$T/ra2/$req" | grep -A3 "2.16.840.1.113733.1.9.2" | grep -q "PRINTABLESTRING:17" \
  || fail "renew: messageType is not 17"
clock 0

# With a new key: staged, sent by RenewalReq (signed with the old key's
# certificate), rolled over when the certificate comes; the old key goes.
ok "renew: set renew-regenerate" kh trustpoint set scep-renew --renew-at 50 --renew-regenerate
clock $((6 * 86400))
monitor "day 6: new key"
grep -q "scep-renew: renewed by SCEP (RenewalReq) with a new key" "$T/mon.json" || { cat "$T/mon.json" >&2; fail "renew: no rollover line"; }
ok "renew: export after the rollover" kh trustpoint export scep-renew --out "$T/r2.crt"
key2=$(tpj scep-renew 'd["key"]')
[ "$key2" != "$key0" ] && [ "$(pub "$T/r2.crt")" = "$(keypub "$key2")" ] || fail "renew: no rollover to a new key"
[ "$(tpj scep-renew 'd.get("next_key", "")')" = "" ] || fail "renew: a rollover key is left over"
openssl verify -CAfile "$T/depot/ca.pem" "$T/r2.crt" > /dev/null || fail "renew: the rolled-over certificate does not chain"
expect_err NOT_FOUND "renew: the old key is gone" kh key show "$key0"
clock 0

# ---- PENDING: polled by keyholdd, with back-off, across a restart ----
start_ra "$T/ra1" "http://127.0.0.1:$PORT"
ok "pending: create" kh trustpoint create asa-pending --generate rsa2048 --subject CN=pending.example.com \
  --enrollment url --url "$RA_URL" --challenge-password-file "$T/challenge"
ok "pending: authenticate" kh trustpoint authenticate asa-pending --fingerprint "$fp"
expect_err UNAVAILABLE "pending: enroll is held" kh trustpoint enroll asa-pending
grep -q "PENDING, transaction" "$T/err.err" || fail "pending: the answer does not say PENDING"
txid=$(tpj asa-pending 'd["scep_transaction"]')
[ "${#txid}" = 64 ] || fail "pending: show has no transaction"
grep -q "^HOLD 19 $txid$" "$T/ra1/log" || { cat "$T/ra1/log" >&2; fail "pending: the RA did not hold our PKCSReq"; }
[ "$(tpj asa-pending 'd["scep_status"]')" = pending ] || fail "pending: show does not say pending"
[ "$(json_get 'd["scep_next_poll"] - d["scep_pending_since"]' < "$T/tp.json")" = 600 ] || fail "pending: the first wait is not poll_interval"
kh trustpoint show asa-pending | grep -q "pending: *SCEP transaction $txid held by the CA since .*; 0 poll(s), next poll" \
  || fail "pending: show does not print the pending request"
monitor "pending: not yet due"
! grep -q "^POLL" "$T/ra1/log" || fail "pending: polled before its time"
# next_poll - now, in keyhold's clock
wait_left() { json_get "d[\"scep_next_poll\"] - (int(__import__(\"time\").time()) + $1)" < "$T/tp.json"; }
clock 601
monitor "pending: first poll"
grep -q "^POLL $txid pending$" "$T/ra1/log" || { cat "$T/ra1/log" >&2; fail "pending: no CertPoll"; }
[ "$(tpj asa-pending 'd["scep_polls"]')" = 1 ] || fail "pending: polls not counted"
left=$(wait_left 601); [ "$left" -ge 1190 ] && [ "$left" -le 1200 ] || fail "pending: the wait did not double to 1200 s ($left)"
# kill -9 between the CA's answer to the second poll and its record: the
# request survives as it was, and keyholdd's poller makes the poll again by
# itself after the restart (its start-up pass: the poll is overdue).
kh_stop
export KEYHOLD_TEST_CRASH_AT=scep.after_request
kh_start
unset KEYHOLD_TEST_CRASH_AT
pid=$KH_PID
clock 1802
if kh cert monitor > "$T/crash.out" 2>&1; then fail "pending crash: the poll succeeded although keyholdd was to be killed"; fi
rc=0; wait "$pid" || rc=$?
KH_PID=""
[ "$rc" = 137 ] || fail "pending crash: keyholdd exited with status $rc, not by SIGKILL"
[ "$(grep -c "^POLL $txid pending$" "$T/ra1/log")" = 2 ] || fail "pending crash: the second poll did not reach the RA"
kh_start
[ "$(tpj asa-pending 'd["scep_transaction"]')" = "$txid" ] || fail "pending crash: the request did not survive the restart"
for _ in $(seq 1 50); do [ "$(tpj asa-pending 'd["scep_polls"]')" = 2 ] && break; sleep 0.2; done
[ "$(json_get 'd["scep_polls"]' < "$T/tp.json")" = 2 ] || fail "pending: the poller did not poll after the restart"
[ "$(grep -c "^POLL $txid pending$" "$T/ra1/log")" = 3 ] || fail "pending: not polled exactly once after the restart"
left=$(wait_left 1802); [ "$left" -ge 1790 ] && [ "$left" -le 1800 ] || fail "pending: the wait is not capped at poll_max 1800 s ($left)"
echo approve > "$T/ra1/approve"
clock 3603
monitor "pending: approved"
grep -q "asa-pending: SCEP certificate issued after polling" "$T/mon.json" || { cat "$T/mon.json" "$T/ra1/log" >&2; fail "pending: not issued"; }
grep -q "^POLL $txid issued$" "$T/ra1/log" || fail "pending: the RA did not issue"
ok "pending: export" kh trustpoint export asa-pending --out "$T/pending.crt"
openssl verify -CAfile "$T/depot/ca.pem" "$T/pending.crt" > /dev/null || fail "pending: the certificate does not chain"
[ "$(pub "$T/pending.crt")" = "$(keypub "$(tpj asa-pending 'd["key"]')")" ] || fail "pending: the certificate is not for the token key"
[ "$(tpj asa-pending 'd["scep_status"]')" = issued ] && [ "$(json_get 'd.get("scep_transaction", "")' < "$T/tp.json")" = "" ] \
  || fail "pending: show after the certificate came"

# A request the CA rejects while pending: the reason in words.
echo hold > "$T/ra1/approve"
clock 0
ok "reject: create" kh trustpoint create asa-reject --generate rsa2048 --subject CN=reject.example.com \
  --enrollment url --url "$RA_URL" --challenge-password-file "$T/challenge"
ok "reject: authenticate" kh trustpoint authenticate asa-reject --fingerprint "$fp"
expect_err UNAVAILABLE "reject: enroll is held" kh trustpoint enroll asa-reject
echo reject > "$T/ra1/approve"
clock 601
monitor_err "reject: polled"
grep -q "asa-reject: SCEP poll failed: .*badCertId (no certificate matches the criteria)" "$T/mon.json" \
  || { cat "$T/mon.json" >&2; fail "reject: the failure is not in words"; }
case "$(tpj asa-reject 'd["scep_status"]')" in "failed: badCertId"*) ;; *) fail "reject: show does not say failed: badCertId";; esac
[ "$(json_get 'd.get("scep_transaction", "")' < "$T/tp.json")" = "" ] || fail "reject: still pending"

# A request held past [scep] poll_timeout (1d here) is abandoned: the
# rejected trustpoint asks again (a new PKCSReq), and the CA holds it.
echo hold > "$T/ra1/approve"
clock 0
expect_err UNAVAILABLE "abandon: enroll again is held" kh trustpoint enroll asa-reject
clock 86500
monitor_err "abandon: past poll_timeout"
grep -q "asa-reject: SCEP poll failed: .*poll_timeout" "$T/mon.json" || { cat "$T/mon.json" >&2; fail "abandon: not abandoned"; }
case "$(tpj asa-reject 'd["scep_status"]')" in "failed: still PENDING"*) ;; *) fail "abandon: show does not say so";; esac

# A renewal the CA refuses (scepserver with -challenge refuses every
# RenewalReq, see above) is reported in words and tried again only after
# poll_interval, not on every pass.
ok "refused renewal: scep-renew stops renewing" kh trustpoint set scep-renew --renew-at off
ok "refused renewal: renew-at" kh trustpoint set asa-scep-rsa2048 --renew-at 50
clock $((200 * 86400))
monitor_err "refused renewal"
grep -q "asa-scep-rsa2048: renewal failed (next try in 600 s): the SCEP server refused the renewal request of trustpoint 'asa-scep-rsa2048': badRequest" "$T/mon.json" \
  || { cat "$T/mon.json" >&2; fail "refused renewal: not reported"; }
monitor "refused renewal: not again at once"
clock 0
log "SCEP enrollment passed (${types[*]}; renewal, pending)"
