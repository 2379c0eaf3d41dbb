#!/usr/bin/env bash
# Benchmarks keyhold against its peers in one run on one SoftHSM2 token:
# direct in-process PKCS#11 and p11-kit server (p11-kit-client.so), and the
# same direct-PKCS#11 code loading keyhold's own module (libkeyhold-pkcs11.so,
# column "kp11", docs/PKCS11.md) in front of keyholdd. Then
# holds 1,000 connections and reports keyholdd's RSS, and times start-up
# with and without the FIPS self-tests. Then TLS handshakes per second of
# nginx with a keyhold key through the OpenSSL provider, the same key through
# the libp11 engine on the token, and a software key (P-256 and RSA-2048).
#
#   scripts/bench.sh [--quick] [--json] [--seconds N] [--conc LIST] [--types LIST]
#                    [--tls-seconds N] [--tls-only]
#
# --quick: a few seconds, for the smoke run in scripts/test.sh (TLS: one
# second per cell, P-256 only). --tls-only: only the TLS part.
# Needs a Release build (made here in build/bench). See docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

json=0 seconds=3 conc=1,2,8,64 types=rsa2048,p256,ed25519 conns=1000 build=""
tls_seconds=5 tls_types=p256,rsa2048 tls_only=0
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) seconds=0.5 conc=1,2 types=p256 conns=100 tls_seconds=1 tls_types=p256 ;;
  --tls-seconds) tls_seconds=$2; shift ;;
  --tls-only) tls_only=1 ;;
  --json) json=1 ;;
  --seconds) seconds=$2; shift ;;
  --conc) conc=$2; shift ;;
  --types) types=$2; shift ;;
  --conns) conns=$2; shift ;;
  --build) build=$2; shift ;;
  *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$build" ]; then
  build="$src/build/bench"
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKEYHOLD_BENCH=ON > /dev/null
  cmake --build "$build" -j2 --target keyholdd keyhold-bench keyhold-cli keyhold_provider keyhold_pkcs11 > /dev/null
fi
bench="$build/tests/bench/keyhold-bench"
keyholdd="$build/service/keyholdd"

T=$(mktemp -d "${TMPDIR:-/tmp}/kh-bench.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

"$src/scripts/softhsm-token.sh" "$T/token" keyhold | grep -v '^#' > "$T/token.ini"
export SOFTHSM2_CONF="$T/token/softhsm2.conf"
workers=$(nproc)
write_conf() { # $1: fips_mode
  cat > "$T/keyhold.conf" <<EOF
[service]
socket = $T/keyhold.sock
state_dir = $T/state
workers = $workers
log_level = warn
fips_mode = $1
$(cat "$T/token.ini")
sessions = $workers
[access]
admin = uid:$(id -u)
EOF
  mkdir -p "$T/state"
}
write_conf off
export KEYHOLD_SOCKET="$T/keyhold.sock"

# Start-up time to the first answer, without and with FIPS self-tests.
startup_off="null" startup_fips="null"
if [ "$tls_only" = 0 ]; then
  startup_off=$("$bench" startup -- "$keyholdd" --config "$T/keyhold.conf" --foreground)
  if "$keyholdd" --help 2>&1 | grep -q -- --fips-install; then
    cp "$keyholdd" "$T/keyholdd"
    "$T/keyholdd" --fips-install > /dev/null
    write_conf aligned
    startup_fips=$("$bench" startup -- "$T/keyholdd" --config "$T/keyhold.conf" --foreground)
    write_conf off
  fi
fi

# The service, and p11-kit server on the same token.
"$keyholdd" --config "$T/keyhold.conf" --foreground 2> "$T/keyholdd.log" &
pids+=($!)
kh_pid=$!
p11-kit server -f --provider /usr/lib/softhsm/libsofthsm2.so -n "$T/p11kit.sock" "pkcs11:token=keyhold" \
  > "$T/p11kit.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
  [ -S "$T/keyhold.sock" ] && [ -S "$T/p11kit.sock" ] && break
  sleep 0.05
done
export P11_KIT_SERVER_ADDRESS="unix:path=$T/p11kit.sock"

# ---- TLS handshakes through nginx (run before any Ed25519 key exists in
# the token: libp11 0.4.12 cannot enumerate a token holding one) ----
# Three nginx servers in turn, one process each (master_process off), with
# the same kind of key: (a) a keyhold key through the provider (a reference
# file), (b) the same token key through the libp11 engine
# (engine:pkcs11:<PKCS#11 URI>), (c) a software key file. A Python client
# makes full TLS 1.3 handshakes (no session resumption) one after another
# for --tls-seconds and counts them.
tls_json="null"
# A sanitizer build's provider cannot load into the uninstrumented openssl
# and nginx without its runtimes, and its rates would mean nothing.
prov_sanitized=$(ldd "$build/client/provider/keyhold.so" 2> /dev/null | grep -cE 'lib(asan|ubsan)\.so' || true)
if [ "$prov_sanitized" != 0 ]; then
  echo "TLS part skipped: $build is a sanitizer build (measure a plain build)" >&2
elif command -v nginx > /dev/null && [ -f /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ]; then
  scripts/provider-conf.sh "$T/keyhold.sock" > "$T/prov.cnf"
  scripts/engine-conf.sh /usr/lib/softhsm/libsofthsm2.so "$T/token/pin" > "$T/engine.cnf"
  cat > "$T/hs.py" <<'EOF'
import socket, ssl, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
n, end = 0, time.monotonic() + seconds
start = time.monotonic()
while time.monotonic() < end:
    with socket.create_connection(("127.0.0.1", port)) as s:
        with ctx.wrap_socket(s) as t:
            t.do_handshake()
    n += 1
print("%.1f" % (n / (time.monotonic() - start)))
EOF
  # tls_rate NAME KEY CERT OPENSSL_CONF: handshakes per second of nginx.
  tls_rate() {
    local d="$T/$1" port pid rate
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$d/logs"
    cat > "$d/nginx.conf" <<EOF
daemon off;
master_process off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $d/cb; proxy_temp_path $d/px; fastcgi_temp_path $d/fc;
  uwsgi_temp_path $d/uw; scgi_temp_path $d/sc;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $3;
    ssl_certificate_key "$2";
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
    ssl_session_cache off;
  }
}
EOF
    OPENSSL_CONF=$4 OPENSSL_MODULES="$build/client/provider" \
      nginx -e "$d/logs/early.log" -c "$d/nginx.conf" -p "$d" > "$d/logs/out.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 1 100); do
      (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
      kill -0 "$pid" 2> /dev/null || { cat "$d"/logs/* >&2; echo "nginx $1 did not start" >&2; exit 1; }
      sleep 0.1
    done
    python3 "$T/hs.py" "$port" 0.3 > /dev/null # warm-up
    rate=$(python3 "$T/hs.py" "$port" "$tls_seconds")
    kill "$pid"
    wait "$pid" 2> /dev/null || true
    [ -s "$d/logs/error.log" ] && grep -q "\[crit\]\|\[emerg\]\|\[alert\]" "$d/logs/error.log" \
      && { cat "$d/logs/error.log" >&2; echo "nginx $1 logged errors" >&2; exit 1; }
    echo "$rate"
  }
  tls_rows=()
  for t in ${tls_types//,/ }; do
    k="tls-$t"
    "$build/client/keyhold" key generate "$k" --type "$t" > /dev/null
    "$build/client/keyhold" key show "$k" --reference > "$T/$k.keyref"
    OPENSSL_CONF="$T/prov.cnf" OPENSSL_MODULES="$build/client/provider" openssl req -x509 -new \
      -key "keyhold:key=$k" -subj "/CN=$k" -days 2 -out "$T/$k.crt" 2> /dev/null
    case $t in
    rsa2048) newkey=(-newkey rsa:2048) ;;
    p256) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    esac
    OPENSSL_CONF=/dev/null openssl req -x509 -new "${newkey[@]}" -nodes -subj "/CN=$k-soft" -days 2 \
      -keyout "$T/$k.soft.key" -out "$T/$k.soft.crt" 2> /dev/null
    a=$(tls_rate "$k-prov" "$T/$k.keyref" "$T/$k.crt" "$T/prov.cnf")
    b=$(tls_rate "$k-engine" "engine:pkcs11:pkcs11:token=keyhold;object=$k;type=private" \
      "$T/$k.crt" "$T/engine.cnf")
    c=$(tls_rate "$k-soft" "$T/$k.soft.key" "$T/$k.soft.crt" /dev/null)
    tls_rows+=("$(python3 -c 'import sys; a,b,c=map(float,sys.argv[2:]); print("{\"type\":\"%s\",\"provider\":%.1f,\"engine\":%.1f,\"software\":%.1f,\"provider_software\":%.2f,\"engine_software\":%.2f,\"provider_engine\":%.2f}" % (sys.argv[1],a,b,c,a/c,b/c,a/b))' "$t" "$a" "$b" "$c")")
  done
  tls_json="[$(IFS=,; echo "${tls_rows[*]}")]"
else
  echo "TLS part skipped: needs nginx and libengine-pkcs11-openssl (scripts/install-deps.sh)" >&2
fi

if [ "$tls_only" = 1 ]; then
  if [ "$json" = 1 ]; then
    printf '{"tls":%s}\n' "$tls_json"
  else
    echo "tls: $tls_json"
  fi
  exit 0
fi

jflag=()
[ "$json" = 1 ] && jflag=(--json)
run_out=$("$bench" run --socket "$T/keyhold.sock" --pin-file "$T/token/pin" \
  --p11kit-module /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so \
  --keyhold-module "$build/client/pkcs11/libkeyhold-pkcs11.so" \
  --types "$types" --conc "$conc" --seconds "$seconds" "${jflag[@]}")

# Many connections at once; every request must be answered.
"$build/client/keyhold" key generate bench-scale --type p256 > /dev/null
ulimit -n "$(ulimit -Hn)"
scale_out=$("$bench" scale --socket "$T/keyhold.sock" --key bench-scale --conns "$conns" --rounds 3 --pid "$kh_pid")

if [ "$json" = 1 ]; then
  printf '{"run":%s,"scale":%s,"startup":{"off":%s,"fips_aligned":%s},"tls":%s}\n' \
    "$run_out" "$scale_out" "$startup_off" "$startup_fips" "$tls_json"
else
  echo "$run_out"
  echo "scale: $scale_out"
  echo "startup (fips_mode off): $startup_off"
  echo "startup (fips_mode aligned): $startup_fips"
  echo "tls handshakes/s (nginx, TLS 1.3, one client): $tls_json"
  echo "machine: $(nproc) cores, $(uname -r); keyholdd workers=$workers sessions=$workers"
fi
