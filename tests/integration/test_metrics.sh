#!/usr/bin/env bash
# [metrics] (docs/OPERATIONS.md): keyholdd's HTTP listener on loopback.
# /metrics passes `promtool check metrics` and its counters move with real
# RPCs (a signature verified with openssl, a refusal, a not-found);
# /healthz is 200, then 503 with the reason while the token is gone, then
# 200 again; bad HTTP (another method, an unknown path, huge headers,
# garbage) is answered and keyholdd keeps serving; a non-loopback listen
# address is refused unless allow_remote = yes. A real Prometheus server on
# loopback scrapes keyholdd with contrib/prometheus/keyhold-alerts.yml
# loaded, and its API must show the expiry alert pending or firing for a
# certificate that expires in two days (and not for a ten-year one).
# keyhold_certificate_revoked follows a CRL imported into a trust store.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

command -v promtool > /dev/null || fail "promtool missing (Debian package prometheus; scripts/install-deps.sh)"
command -v prometheus > /dev/null || fail "prometheus missing (Debian package prometheus; scripts/install-deps.sh)"
RULES="$KH_SRC/contrib/prometheus/keyhold-alerts.yml"
PROM_PID=""

# The shipped rules are valid and do what their unit tests say.
ok "promtool check rules" promtool check rules "$RULES"
ok "promtool test rules" promtool test rules "$KH_SRC/contrib/prometheus/keyhold-alerts.test.yml"

# ---- access: loopback unless the configuration says otherwise ----
kh_config "$(printf '[metrics]\nlisten = 0.0.0.0:9464\n')"
rc=0
"$KEYHOLDD" --config "$T/keyhold.conf" --check > "$T/chk.out" 2> "$T/chk.err" || rc=$?
[ "$rc" -ne 0 ] || fail "--check accepted [metrics] listen on 0.0.0.0 without allow_remote"
grep -q "not a loopback address.*allow_remote = yes" "$T/chk.err" || { cat "$T/chk.err" >&2; fail "the refusal does not name allow_remote"; }
kh_config "$(printf '[metrics]\nlisten = 0.0.0.0:9464\nallow_remote = yes\n')"
ok "--check with allow_remote = yes" "$KEYHOLDD" --config "$T/keyhold.conf" --check
kh_config "$(printf '[metrics]\nlisten = localhost:9464\n')"
rc=0
"$KEYHOLDD" --config "$T/keyhold.conf" --check > "$T/chk.out" 2> "$T/chk.err" || rc=$?
[ "$rc" -ne 0 ] || fail "--check accepted a host name for [metrics] listen"
grep -q "not a numeric" "$T/chk.err" || { cat "$T/chk.err" >&2; fail "the refusal of a host name does not say why"; }

# ---- the listener: port 0, read back from the log ----
kh_config "$(printf '[metrics]\nlisten = 127.0.0.1:0\nprobe_interval = 1s\n')"
kh_start
pid=$KH_PID
port=$(sed -n 's/.*metrics: HTTP listening on 127\.0\.0\.1 port \([0-9]*\) .*/\1/p' "$T/keyholdd.log" | tail -n 1)
[ -n "$port" ] || fail "keyholdd did not log its metrics port"
URL="http://127.0.0.1:$port"
log "metrics on $URL"

# scrape NAME: GET /metrics into $T/NAME.prom, checked by promtool.
scrape() {
  curl -sS --max-time 10 -o "$T/$1.prom" -w '%{http_code} %{content_type}\n' "$URL/metrics" > "$T/$1.hdr" \
    || fail "GET /metrics ($1) failed"
  grep -q '^200 text/plain; version=0.0.4' "$T/$1.hdr" || { cat "$T/$1.hdr" >&2; fail "/metrics ($1): not 200 text/plain version 0.0.4"; }
  promtool check metrics < "$T/$1.prom" > "$T/$1.lint" 2>&1 || { cat "$T/$1.lint" >&2; fail "promtool check metrics ($1)"; }
}
# value FILE SERIES: the sample of exactly SERIES ("name{labels}") or 0.
value() { awk -v s="$2" '$1 == s { v = $2 } END { print (v == "" ? 0 : v) }' "$1"; }
# healthz: prints "CODE BODY".
healthz() { curl -sS --max-time 10 -o "$T/hz.body" -w '%{http_code}' "$URL/healthz" || echo 000; printf ' %s\n' "$(head -c 300 "$T/hz.body" 2> /dev/null)"; }
# until_health CODE DESC: polls /healthz until it answers CODE (30 s).
until_health() {
  local i h
  for i in $(seq 1 60); do
    h=$(healthz)
    [ "${h%% *}" = "$1" ] && { log "$2: /healthz $h (after $i tries)"; return 0; }
    sleep 0.5
  done
  fail "$2: /healthz still answers '$h', expected $1"
}

until_health 200 "start"
[ "$(cat "$T/hz.body")" = ok ] || fail "/healthz 200 body is not 'ok'"
scrape before
for f in keyhold_requests_total keyhold_request_duration_seconds keyhold_token_operation_duration_seconds \
  keyhold_token_up keyhold_token_sessions keyhold_worker_queue_depth keyhold_connections \
  keyhold_rate_limited_total keyhold_selftest_last_run_timestamp_seconds keyhold_token_transitions_total \
  keyhold_audit_records_total keyhold_audit_checkpoints_total keyhold_certificate_not_after_seconds keyhold_state; do
  grep -q "^# TYPE $f " "$T/before.prom" || fail "/metrics has no $f"
done
[ "$(value "$T/before.prom" keyhold_token_up)" = 1 ] || fail "keyhold_token_up is not 1"
[ "$(value "$T/before.prom" 'keyhold_state{state="OPERATIONAL"}')" = 1 ] || fail "keyhold_state OPERATIONAL is not 1"
[ "$(value "$T/before.prom" 'keyhold_token_transitions_total{to="up"}')" -ge 1 ] || fail "no token up transition counted"

# ---- real RPCs move the counters ----
kh_has_type p256 || fail "the checks below need p256"
ok "generate" kh key generate m-p256 --type p256
ok "pem" kh key show m-p256 --pem
cp "$T/ok.out" "$T/m.pem"
echo "metrics message" > "$T/msg"
for i in 1 2 3; do
  ok "sign $i" kh sign m-p256 --in "$T/msg" --out "$T/m.$i.sig"
  openssl dgst -sha256 -verify "$T/m.pem" -signature "$T/m.$i.sig" "$T/msg" > /dev/null || fail "signature $i does not verify"
done
expect_err NOT_FOUND "sign with a key that does not exist" kh sign no-such-key --in "$T/msg" --out "$T/x"
expect_err PERMISSION_DENIED "sign with the audit checkpoint key" kh sign keyhold-audit --in "$T/msg" --out "$T/x"
scrape after
delta() { echo $(($(value "$T/after.prom" "$1") - $(value "$T/before.prom" "$1"))); }
[ "$(delta 'keyhold_requests_total{method="Sign",code="OK"}')" = 3 ] || fail "Sign OK did not move by 3"
[ "$(delta 'keyhold_requests_total{method="Sign",code="NOT_FOUND"}')" = 1 ] || fail "Sign NOT_FOUND did not move by 1"
[ "$(delta 'keyhold_requests_total{method="Sign",code="PERMISSION_DENIED"}')" = 1 ] || fail "Sign PERMISSION_DENIED did not move by 1"
[ "$(delta 'keyhold_requests_total{method="GenerateKey",code="OK"}')" = 1 ] || fail "GenerateKey OK did not move by 1"
[ "$(delta 'keyhold_request_duration_seconds_count{method="Sign"}')" = 5 ] || fail "the Sign latency histogram did not count 5"
[ "$(value "$T/after.prom" 'keyhold_request_duration_seconds_bucket{method="Sign",le="+Inf"}')" = \
  "$(value "$T/after.prom" 'keyhold_request_duration_seconds_count{method="Sign"}')" ] || fail "+Inf bucket != count"
[ "$(delta 'keyhold_token_operation_duration_seconds_count{op="sign",mechanism="CKM_ECDSA"}')" -ge 3 ] \
  || fail "the token's CKM_ECDSA signatures were not timed"
[ "$(delta 'keyhold_token_operation_duration_seconds_count{op="generate",mechanism="CKM_EC_KEY_PAIR_GEN"}')" -ge 1 ] \
  || fail "the token's key generation was not timed"
[ "$(delta keyhold_audit_records_total)" -ge 5 ] || fail "keyhold_audit_records_total did not move with the requests"
# [token] lock_spin_us (default 30): SoftHSM2 takes keyholdd's mutex
# functions (tpm2-pkcs11 may keep its own: PKCS#11 lets it).
grep -q "^# TYPE keyhold_token_lock_waits_total counter" "$T/after.prom" || fail "/metrics has no keyhold_token_lock_waits_total"
if [ "$KH_TOKEN" = softhsm ]; then
  [ "$(value "$T/after.prom" keyhold_token_lock_mutexes)" -ge 1 ] || fail "SoftHSM2 holds none of keyholdd's mutexes"
fi

# An open client connection shows in keyhold_connections.
python3 -c 'import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(60)' "$SOCK" &
holder=$!
for i in $(seq 1 20); do
  scrape conn
  [ "$(value "$T/conn.prom" keyhold_connections)" -ge 1 ] && break
  sleep 0.2
done
kill "$holder"
wait "$holder" 2> /dev/null || true
[ "$(value "$T/conn.prom" keyhold_connections)" -ge 1 ] || fail "keyhold_connections did not count an open connection"

# ---- bad HTTP is answered; keyholdd keeps serving ----
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST --data x "$URL/metrics")
[ "$code" = 405 ] || fail "POST /metrics answered $code, expected 405"
code=$(curl -sS --max-time 10 -o /dev/null -D "$T/h405" -w '%{http_code}' -X DELETE "$URL/healthz")
[ "$code" = 405 ] || fail "DELETE /healthz answered $code, expected 405"
grep -qi '^Allow: GET, HEAD' "$T/h405" || fail "the 405 has no Allow: GET, HEAD"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/nope")
[ "$code" = 404 ] || fail "GET /nope answered $code, expected 404"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/metrics/../../etc/passwd")
[ "$code" = 404 ] || fail "GET /metrics/../../etc/passwd answered $code, expected 404"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -I "$URL/metrics")
[ "$code" = 200 ] || fail "HEAD /metrics answered $code"
big=$(head -c 20000 /dev/zero | tr '\0' a)
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$URL/metrics" || true)
case "$code" in 400 | 413 | 431) log "20 kB of headers: $code" ;; *) fail "20 kB of headers answered '$code'" ;; esac
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST --data-binary "@$T/m.pem" -H 'Content-Length: 100000000' "$URL/metrics" || true)
case "$code" in 000 | 400 | 405 | 413) log "a 100 MB body announced: $code" ;; *) fail "a 100 MB body announced answered '$code'" ;; esac
# Garbage on a raw connection: answered or closed, never a hang.
python3 - "$port" <<'PY' || fail "raw garbage: keyholdd hung or answered nonsense"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
s.sendall(b"\x16\x03\x01\x00\xff" + b"\x00" * 300 + b"\r\n\r\n")
data = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
except socket.timeout:
    sys.exit(1)
sys.exit(0 if data == b"" or data.startswith(b"HTTP/1.") else 1)
PY
kill -0 "$pid" || fail "keyholdd died on bad HTTP"
ok "sign after bad HTTP" kh sign m-p256 --in "$T/msg" --out "$T/m.4.sig"
openssl dgst -sha256 -verify "$T/m.pem" -signature "$T/m.4.sig" "$T/msg" > /dev/null || fail "signature after bad HTTP"
until_health 200 "after bad HTTP"

# ---- /healthz follows the token ----
if [ "$KH_TOKEN" = softhsm ] && kh_token_can tokendir; then
  tokendir=$(sed -n 's/^directories.tokendir *= *//p' "$SOFTHSM2_CONF")
  mv "$tokendir" "$tokendir.away"
  # SoftHSM2 answers C_GenerateRandom without its directory: a call that
  # needs the keys finds it gone (as test_token_dir_loss.sh shows).
  expect_err UNAVAILABLE "sign while the token directory is away" kh sign m-p256 --in "$T/msg" --out "$T/x"
  until_health 503 "token directory away"
  grep -q "token" "$T/hz.body" || fail "the 503 does not say the token is the reason: $(cat "$T/hz.body")"
  scrape down
  [ "$(value "$T/down.prom" keyhold_token_up)" = 0 ] || fail "keyhold_token_up is not 0 while the token is gone"
  mv "$tokendir.away" "$tokendir"
elif [ "$KH_TOKEN" = tpm ] && kh_token_can restart; then
  kh_token_down
  until_health 503 "TPM down"
  scrape down
  [ "$(value "$T/down.prom" keyhold_token_up)" = 0 ] || fail "keyhold_token_up is not 0 while the token is gone"
  kh_token_up
else
  fail "the $KH_TOKEN token cannot be taken away"
fi
until_health 200 "token back"
scrape back
[ "$(value "$T/back.prom" 'keyhold_token_transitions_total{to="down"}')" -ge 1 ] || fail "no token down transition counted"
ok "sign after the token returned" kh sign m-p256 --in "$T/msg" --out "$T/m.5.sig"
openssl dgst -sha256 -verify "$T/m.pem" -signature "$T/m.5.sig" "$T/msg" > /dev/null || fail "signature after the token returned"

# ---- certificates, and a real Prometheus evaluating the shipped rules ----
for d in 2 3650; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca$d.key" -subj "/CN=Metrics CA $d \"q\"" \
    -days "$d" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$T/ca$d.pem" 2> /dev/null || fail "CA $d"
done
ok "store the 2-day CA" kh truststore add soon "$T/ca2.pem"
ok "store the 10-year CA" kh truststore add later "$T/ca3650.pem"
fp_soon=$(pki_fp "$T/ca2.pem")
na_soon=$(date -d "$(openssl x509 -in "$T/ca2.pem" -noout -enddate | sed 's/notAfter=//')" +%s)
for i in $(seq 1 20); do
  scrape certs
  grep -q "fingerprint=\"$fp_soon\"" "$T/certs.prom" && break
  sleep 0.5
done
line=$(grep "^keyhold_certificate_not_after_seconds{.*fingerprint=\"$fp_soon\"" "$T/certs.prom") \
  || fail "no keyhold_certificate_not_after_seconds for the 2-day CA"
case "$line" in *'store="soon"'*'role="truststore-ca"'*) ;; *) fail "labels: $line" ;; esac
# The subject's double quotes arrive escaped (format 0.0.4).
case "$line" in *'subject="CN=Metrics CA 2 \"q\"'*) ;; *'subject="CN=Metrics CA 2 \\\"q\\\"'*) ;; *) fail "subject not escaped: $line" ;; esac
[ "${line##* }" = "$na_soon" ] || fail "notAfter ${line##* } != openssl's $na_soon"

# A free port for Prometheus (a race with other tests is possible but
# harmless: prometheus then fails to start and the test says so).
pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/prom"
cat > "$T/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
scrape_configs:
  - job_name: keyhold
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
ok "promtool check config" promtool check config "$T/prom/prometheus.yml"
prometheus --config.file="$T/prom/prometheus.yml" --storage.tsdb.path="$T/prom/data" \
  --web.listen-address="127.0.0.1:$pport" > "$T/prom/prometheus.log" 2>&1 &
PROM_PID=$!
prom_stop() {
  [ -n "$PROM_PID" ] || return 0
  kill -TERM "$PROM_PID" 2> /dev/null || true
  wait "$PROM_PID" 2> /dev/null || true
  PROM_PID=""
}
kh_on_exit prom_stop
alert=""
for i in $(seq 1 120); do
  kill -0 "$PROM_PID" 2> /dev/null || { tail -n 20 "$T/prom/prometheus.log" >&2; fail "prometheus exited"; }
  if curl -sS --max-time 5 "http://127.0.0.1:$pport/api/v1/alerts" > "$T/alerts.json" 2> /dev/null; then
    alert=$(python3 - "$T/alerts.json" "$fp_soon" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for a in d["data"]["alerts"]:
    l = a["labels"]
    if l.get("alertname") == "KeyholdCertificateExpiringSoon" and l.get("fingerprint") == sys.argv[2]:
        print(a["state"], l.get("store"), l.get("role"))
PY
)
    [ -n "$alert" ] && break
  fi
  sleep 0.5
done
[ -n "$alert" ] || { tail -n 20 "$T/prom/prometheus.log" >&2; fail "Prometheus shows no expiry alert for the 2-day CA"; }
case "$alert" in "pending soon truststore-ca" | "firing soon truststore-ca") log "Prometheus: $alert" ;; *) fail "alert: $alert" ;; esac
python3 - "$T/alerts.json" <<'PY' || fail "Prometheus alerts on something it should not"
import json, sys
d = json.load(open(sys.argv[1]))
bad = [a["labels"] for a in d["data"]["alerts"]
       if a["labels"]["alertname"] != "KeyholdCertificateExpiringSoon" or a["labels"].get("store") == "later"]
sys.exit(1 if bad else 0)
PY
curl -sS --max-time 5 "http://127.0.0.1:$pport/api/v1/query?query=up%7Bjob%3D%22keyhold%22%7D" > "$T/up.json"
[ "$(json_get 'd["data"]["result"][0]["value"][1]' < "$T/up.json")" = 1 ] || fail "Prometheus does not see keyholdd up"
prom_stop

# ---- revocation status from an imported CRL ----
# Root R issues intermediates A and B and revokes A; R's CRL imported into
# the store answers for both: A revoked (1), B good (0); R, self-signed,
# has no status.
pki_ca_init "$T/rr" "Metrics Root"
pki_ca_init "$T/ra" "Metrics Sub A" "$T/rr"
pki_ca_init "$T/rb" "Metrics Sub B" "$T/rr"
openssl ca -batch -config "$T/rr/ca.cnf" -revoke "$T/ra/ca.pem" -crl_reason keyCompromise 2> /dev/null || fail "revoke A"
openssl ca -batch -config "$T/rr/ca.cnf" -gencrl -out "$T/rr.crl" 2> /dev/null || fail "gencrl R"
for c in rr ra rb; do ok "store $c" kh truststore add rev "$T/$c/ca.pem"; done
ok "crl import" kh crl import rev "$T/rr.crl"
fp_a=$(pki_fp "$T/ra/ca.pem")
fp_b=$(pki_fp "$T/rb/ca.pem")
fp_r=$(pki_fp "$T/rr/ca.pem")
for i in $(seq 1 20); do
  scrape rev
  grep -q "^keyhold_certificate_revoked{.*fingerprint=\"$fp_b\"" "$T/rev.prom" && break
  sleep 0.5
done
rev_of() { grep "^keyhold_certificate_revoked{.*store=\"rev\".*fingerprint=\"$1\"" "$T/rev.prom" | awk '{ print $NF }'; }
[ "$(rev_of "$fp_a")" = 1 ] || fail "the revoked intermediate is not keyhold_certificate_revoked 1: '$(rev_of "$fp_a")'"
[ "$(rev_of "$fp_b")" = 0 ] || fail "the good intermediate is not keyhold_certificate_revoked 0: '$(rev_of "$fp_b")'"
[ -z "$(rev_of "$fp_r")" ] || fail "the self-signed root has a revocation status"
grep "^keyhold_certificate_revoked{.*fingerprint=\"$fp_a\"" "$T/rev.prom" | grep -q 'role="truststore-ca".*subject="CN=Metrics Sub A".*crl_store="rev"' \
  || fail "labels of keyhold_certificate_revoked: $(grep "$fp_a" "$T/rev.prom")"

kill -0 "$pid" || fail "keyholdd died"
[ "$KH_PID" = "$pid" ] || fail "keyholdd was restarted"

# ---- rate-limit refusals: a burst over [service] rate ----
kh_stop
# shellcheck disable=SC2034 # read by lib.sh's kh_config
KH_SERVICE_EXTRA=$(printf 'rate = 2\nrate_burst = 2')
# ... and the module's own locks (lock_spin_us = 0).
# shellcheck disable=SC2034 # read by lib.sh's kh_config
KH_TOKEN_EXTRA="lock_spin_us = 0"
kh_config "$(printf '[metrics]\nlisten = 127.0.0.1:0\nprobe_interval = 1s\n')"
kh_start
port=$(sed -n 's/.*metrics: HTTP listening on 127\.0\.0\.1 port \([0-9]*\) .*/\1/p' "$T/keyholdd.log" | tail -n 1)
URL="http://127.0.0.1:$port"
mkdir -p "$T/burst"
if "$KH_SIGNER" "$SOCK" m-p256 1 20 "$T/burst" > "$T/burst.out" 2>&1; then
  fail "20 signatures at once passed a rate of 2/s"
fi
scrape rate
[ "$(value "$T/rate.prom" keyhold_rate_limited_total)" -ge 1 ] || fail "keyhold_rate_limited_total did not count the refusals"
[ "$(value "$T/rate.prom" 'keyhold_requests_total{method="Sign",code="RESOURCE_EXHAUSTED"}')" -ge 1 ] \
  || fail "the rate refusals are not in keyhold_requests_total"
[ "$(value "$T/rate.prom" keyhold_token_lock_mutexes)" = 0 ] || fail "lock_spin_us = 0 still gave the module keyholdd's mutexes"
sleep 1.2
ok "sign with the module's own locks" kh sign m-p256 --in "$T/msg" --out "$T/m.6.sig"
openssl dgst -sha256 -verify "$T/m.pem" -signature "$T/m.6.sig" "$T/msg" > /dev/null || fail "signature with the module's own locks"
# shellcheck disable=SC2034 # read by lib.sh's kh_config
KH_TOKEN_EXTRA=""
kh_stop
