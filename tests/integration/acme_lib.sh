# shellcheck shell=bash
# acme_lib.sh: Debian's pebble (ACME, RFC 8555) on loopback for the ACME
# tests, sourced after lib.sh: its own throwaway TLS CA, names resolved by
# pebble-challtestsrv's DNS (every name -> 127.0.0.1), http-01 validated on
# HTTP01_PORT (keyholdd's responder, or a web server serving a webroot).
# Real validation: no PEBBLE_VA_ALWAYS_VALID. The clean-up kills exactly
# the pids started here.
command -v pebble > /dev/null || fail "pebble is not installed (scripts/install-deps.sh)"

PEBBLE_PID="" CTS_PID="" ACME_EXTRA_PIDS=()
acme_stop() {
  local p
  for p in "$PEBBLE_PID" "$CTS_PID" "${ACME_EXTRA_PIDS[@]}"; do
    [ -n "$p" ] && kill "$p" 2> /dev/null && { wait "$p" 2> /dev/null || true; }
  done
}
kh_on_exit acme_stop

# Six free loopback ports in one go (DNS is UDP, the rest TCP).
read -r ACME_PORT MGMT_PORT HTTP01_PORT TLS_PORT DNS_PORT CTS_MGMT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
# shellcheck disable=SC2034 # used by the tests that source this
DIR="https://127.0.0.1:$ACME_PORT/dir"

# pebble's own TLS: a throwaway CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tlsca.key" -out "$T/tlsca.pem" \
  -subj "/CN=ACME test TLS CA" -days 2 2> /dev/null || fail "openssl: TLS CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/pebble.key" -out "$T/pebble.csr" \
  -subj "/CN=127.0.0.1" 2> /dev/null || fail "openssl: pebble CSR"
printf 'subjectAltName=IP:127.0.0.1\n' > "$T/pebble.ext"
openssl x509 -req -in "$T/pebble.csr" -CA "$T/tlsca.pem" -CAkey "$T/tlsca.key" -CAcreateserial -days 2 \
  -extfile "$T/pebble.ext" -out "$T/pebble.pem" 2> /dev/null || fail "openssl: pebble certificate"

# pebble's configuration; $1: externalAccountBindingRequired (default
# false), $2: more members of "pebble" (JSON, with a leading comma), e.g.
# externalAccountMACKeys.
acme_pebble_config() {
  cat > "$T/pebble.json" << EOF
{ "pebble": { "listenAddress": "127.0.0.1:$ACME_PORT", "managementListenAddress": "127.0.0.1:$MGMT_PORT",
  "certificate": "$T/pebble.pem", "privateKey": "$T/pebble.key", "httpPort": $HTTP01_PORT, "tlsPort": $TLS_PORT,
  "ocspResponderURL": "", "externalAccountBindingRequired": ${1:-false} ${2:-} } }
EOF
}
acme_pebble_config false

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
# (pebble exits 143 on SIGTERM: not a failure of the test.)
stop_pebble() { kill "$PEBBLE_PID" && { wait "$PEBBLE_PID" 2> /dev/null || true; }; PEBBLE_PID=""; }

# pebble's root, from its management API (a new one each start).
fetch_root() { curl -sf --cacert "$T/tlsca.pem" "https://127.0.0.1:$MGMT_PORT/roots/0" > "$T/pebble-root.pem"; }

# A TCP forwarder in front of pebble on port $1 (pebble stays up and keeps
# its accounts and root): it accepts $2 connections (0: any number), then
# refuses more (and exits once they are done), as a server that goes away in the middle of an order. Each
# ACME request is a connection of its own (libcurl, no reuse here).
start_acme_proxy() {
  rm -f "$T/proxy.ready"
  python3 - "$1" "$ACME_PORT" "$2" "$T/proxy.ready" << 'PY' &
import socket, sys, threading
lport, tport, limit = (int(a) for a in sys.argv[1:4])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lport))
ls.listen(16)
open(sys.argv[4], "w").close()
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass
n = 0
while limit == 0 or n < limit:
    c, _ = ls.accept()
    n += 1
    u = socket.create_connection(("127.0.0.1", tport))
    threading.Thread(target=pipe, args=(c, u)).start()
    threading.Thread(target=pipe, args=(u, c)).start()
ls.close()
PY
  ACME_PROXY_PID=$!
  ACME_EXTRA_PIDS+=("$ACME_PROXY_PID")
  for _ in $(seq 1 50); do
    [ -f "$T/proxy.ready" ] && return 0
    sleep 0.1
  done
  fail "the proxy did not listen within 5 s"
}
stop_acme_proxy() { kill "$ACME_PROXY_PID" 2> /dev/null || true; wait "$ACME_PROXY_PID" 2> /dev/null || true; }

# kill -9 during an ACME operation (KEYHOLD_TEST_CRASH_AT, as in
# test_pki_crash): keyholdd restarted to kill itself at POINT during CMD,
# then started again normally.
kh_crash() { # POINT CMD...: keyholdd kills itself at POINT during CMD
  local point=$1 pid rc=0
  shift
  kh_stop
  KEYHOLD_TEST_CRASH_AT=$point kh_start
  pid=$KH_PID
  "$@" > "$T/crash.out" 2> "$T/crash.err" && fail "$point: '$*' succeeded although keyholdd was to be killed"
  wait "$pid" || rc=$?
  KH_PID=""
  [ "$rc" = 137 ] || fail "$point: keyholdd exited with status $rc, not by SIGKILL"
  kh_start
}
