#!/usr/bin/env bash
# SCEP (RFC 8894) enrollment of trustpoints against Debian's scepserver,
# the ASA way (docs/PKI.md "SCEP enrollment"): create with --enrollment url
# and a challenge password, authenticate (GetCACert; the fingerprint checked
# against openssl's), enroll RSA-2048 and RSA-3072 (PKCSReq signed in the
# token, CertRep decrypted in the token); the issued certificate holds the
# token key and chains to the CA (openssl verify); a wrong challenge is a
# clear failure that `trustpoint show` reports; a server without POST gets
# the PKCSReq by GET (scep_get_proxy.py in front of scepserver); kill -9 of
# keyholdd mid-enrollment; CKA_DECRYPT on SCEP keys only. scepserver
# (2.1) has no listen-address flag: it binds the random port on every
# interface for the few seconds of the test; keyhold talks to it on
# 127.0.0.1 only.
. "$(dirname "$0")/lib.sh"

command -v scepserver > /dev/null || fail "scepserver is missing (Debian package scep; scripts/install-deps.sh)"
SCEP_PID=""
PROXY_PID=""
scep_cleanup() {
  local rc=$?
  if [ -n "$PROXY_PID" ]; then kill "$PROXY_PID" 2> /dev/null || true; wait "$PROXY_PID" 2> /dev/null || true; fi
  if [ -n "$SCEP_PID" ]; then kill "$SCEP_PID" 2> /dev/null || true; wait "$SCEP_PID" 2> /dev/null || true; fi
  (exit "$rc"); kh_cleanup
}
trap scep_cleanup EXIT

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

kh_start

# ---- refusals at create ----
expect_err INVALID_ARGUMENT "url without --url" kh trustpoint create bad --generate rsa2048 --subject CN=x --enrollment url
expect_err INVALID_ARGUMENT "url with an EC key" kh trustpoint create bad --generate p256 --subject CN=x --enrollment url --url "$URL"
expect_err INVALID_ARGUMENT "--url without enrollment url" kh trustpoint create bad --generate rsa2048 --subject CN=x --url "$URL"
expect_err INVALID_ARGUMENT "url with --renew-at (RenewalReq is not there yet)" kh trustpoint create bad --generate rsa2048 \
  --subject CN=x --enrollment url --url "$URL" --renew-at 70

types=(rsa2048)
kh_has_type rsa3072 && types+=(rsa3072)
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
expect_err FAILED_PRECONDITION "regenerate of a url trustpoint (RenewalReq is not there yet)" kh trustpoint regenerate asa-scep-rsa2048

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
log "SCEP enrollment passed (${types[*]})"
