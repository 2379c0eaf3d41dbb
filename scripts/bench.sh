#!/usr/bin/env bash
# Benchmarks keyhold against its peers in one run on one SoftHSM2 token:
# direct in-process PKCS#11 and p11-kit server (p11-kit-client.so), and the
# same direct-PKCS#11 code loading keyhold's own module (libkeyhold-pkcs11.so,
# column "kp11", docs/PKCS11.md) in front of keyholdd. Then
# holds 1,000 connections and reports keyholdd's RSS, and times start-up
# with and without the FIPS self-tests. Then TLS handshakes per second of
# nginx with a keyhold key through the OpenSSL provider, the same key through
# the libp11 engine on the token, and a software key (P-256 and RSA-2048).
# Each keyhold cell also gives keyholdd's CPU per signature (/proc/PID/stat
# over the cell) beside direct's (the token's own signing CPU), and a bare
# one-round-trip signing server on the same token (keyhold-bench
# bare-server: a thread per connection, no protocol, policy or audit): the
# ceiling of any one-round-trip design against p11-kit server and the floor
# of its CPU per signature, same run. Then two
# cells of their own: audit sync = always against interval (P-256), and a
# Unix client's GetStatus latency idle and while 8 TLS clients handshake.
# --cluster instead: signatures per second with 1, 2 and 3 keyholdd nodes on
# one SoftHSM2 token (its file store shared by the nodes, then p11-kit
# server in front of it), the clients spread over the nodes by
# KEYHOLD_ENDPOINTS (docs/CLUSTER.md).
#
#   scripts/bench.sh [--quick] [--json] [--seconds N] [--conc LIST] [--types LIST]
#                    [--tls-seconds N] [--tls-only] [--tpm] [--cells-only] [--state]
#   scripts/bench.sh --cluster [--seconds N] [--cluster-conc N] [--json]
#
# --quick: a few seconds, for the smoke run in scripts/test.sh (TLS: one
# second per cell, P-256 only; no audit or mixed cell). --tls-only: only
# the TLS part. --tpm: a TPM 2.0 token (scripts/tpm-token.sh: swtpm,
# tpm2-abrmd, tpm2-pkcs11) instead of SoftHSM2: P-256 and RSA-2048 at 1 and
# 8 clients against direct tpm2-pkcs11, and the mixed TLS cell; no nginx,
# p11-kit, scale or start-up part. --cells-only: only the audit and mixed
# cells (for A/B runs of two keyholdd builds with --build). --state: only
# the state cell: trustpoint create + delete pairs per second (one client,
# each a state-changing transaction) with [state] backend = sqlite and
# postgresql (a throwaway PostgreSQL 15 server, tests/integration/lib_pg.sh,
# fsync on as in production) in the same run.
# Needs a Release build (made here in build/bench). See docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

json=0 seconds=3 conc=1,2,8,64 types=rsa2048,p256,ed25519 conns=1000 build=""
tls_seconds=5 tls_types=p256,rsa2048 tls_only=0 quick=0 tpm=0 cells_only=0 state=0 cluster=0 cluster_conc=8
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) seconds=0.5 conc=1,2 types=p256 conns=100 tls_seconds=1 tls_types=p256 quick=1 ;;
  --tpm) tpm=1 conc=1,8 types=p256,rsa2048 ;;
  --tls-seconds) tls_seconds=$2; shift ;;
  --tls-only) tls_only=1 ;;
  --cells-only) cells_only=1 ;;
  --state) state=1 ;;
  --cluster) cluster=1 ;;
  --cluster-conc) cluster_conc=$2; shift ;;
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
  [ "$tpm" = 1 ] && "$src/scripts/tpm-token.sh" stop "$T/tpm" > /dev/null 2>&1
  if declare -F kh_pg_cleanup > /dev/null; then kh_pg_cleanup; fi
  rm -rf "$T"
}
trap cleanup EXIT

if [ "$tpm" = 1 ]; then
  "$src/scripts/tpm-token.sh" start "$T/tpm" keyhold | grep -v '^#' > "$T/token.ini"
  # shellcheck disable=SC1091
  . "$T/tpm/env"
  module=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
  pinfile="$T/tpm/pin"
else
  "$src/scripts/softhsm-token.sh" "$T/token" keyhold | grep -v '^#' > "$T/token.ini"
  export SOFTHSM2_CONF="$T/token/softhsm2.conf"
  module=/usr/lib/softhsm/libsofthsm2.so
  pinfile="$T/token/pin"
fi
workers=$(nproc)
# conf_text FIPS_MODE NAME [EXTRA]: a keyholdd configuration on the token,
# socket $T/NAME.sock, state $T/NAME.state.
conf_text() {
  mkdir -p "$T/$2.state"
  cat <<EOF
[service]
socket = $T/$2.sock
state_dir = $T/$2.state
workers = $workers
log_level = warn
fips_mode = $1
$(cat "$T/token.ini")
sessions = $workers
[access]
admin = uid:$(id -u)
${3:-}
EOF
}
write_conf() { # $1: fips_mode
  conf_text "$1" keyhold > "$T/keyhold.conf"
}
# start_kh NAME: starts keyholdd on $T/NAME.conf, waits for its socket,
# sets kh2_pid.
start_kh() {
  "$keyholdd" --config "$T/$1.conf" --foreground 2> "$T/$1.log" &
  kh2_pid=$!
  pids+=("$kh2_pid")
  for _ in $(seq 1 200); do
    [ -S "$T/$1.sock" ] && return 0
    kill -0 "$kh2_pid" 2> /dev/null || break
    sleep 0.05
  done
  cat "$T/$1.log" >&2
  echo "keyholdd ($1) did not start" >&2
  exit 1
}
stop_kh() { kill "$kh2_pid"; wait "$kh2_pid" 2> /dev/null || true; }
write_conf off
export KEYHOLD_SOCKET="$T/keyhold.sock"

# bench_pg_start: a throwaway PostgreSQL 15 server (tests/integration/lib_pg.sh,
# stopped by cleanup); a benchmark, not a test: it syncs its commits
# (fsync, synchronous_commit) as in production.
log() { echo "$*" >&2; }
fail() { echo "bench: $*" >&2; exit 1; }
export KH_BUILD=$build # lib_pg.sh: where its PostgreSQL template goes
bench_pg_start() {
  # shellcheck source=tests/integration/lib_pg.sh
  . "$src/tests/integration/lib_pg.sh"
  kh_pg_start
  kh_pg_psql -c "ALTER SYSTEM SET fsync = on" -c "ALTER SYSTEM SET synchronous_commit = on" > /dev/null
  PG_OPTS=${PG_OPTS/-c fsync=off/}
  kh_pg_restart
}

# ---- the state cell (--state): sqlite against postgresql ----
if [ "$state" = 1 ]; then
  bench_pg_start
  state_rows=()
  for backend in sqlite postgresql; do
    extra=""
    [ "$backend" = postgresql ] && extra=$(kh_pg_state_ini)
    conf_text off "st-$backend" "$extra" > "$T/st-$backend.conf"
    start_kh "st-$backend"
    "$build/client/keyhold" --socket "$T/st-$backend.sock" key generate "st-key-$backend" --type p256 > /dev/null
    "$bench" state --socket "$T/st-$backend.sock" --key "st-key-$backend" --seconds 0.5 > /dev/null # warm-up
    r=$("$bench" state --socket "$T/st-$backend.sock" --key "st-key-$backend" --seconds "$seconds")
    stop_kh
    state_rows+=("{\"backend\":\"$backend\",\"result\":$r}")
    [ "$json" = 1 ] || echo "state $backend: $r (trustpoint create + delete pairs, one client)"
  done
  [ "$json" = 1 ] && printf '{"state":[%s]}\n' "$(IFS=,; echo "${state_rows[*]}")"
  exit 0
fi

# ---- --cluster: 1, 2 and 3 nodes on one token ----
if [ "$cluster" = 1 ]; then
  [ "$tpm" = 0 ] || { echo "--cluster runs on SoftHSM2 only" >&2; exit 2; }
  cli="$build/client/keyhold"
  p11client=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
  node_pids=()
  cluster_json=""
  # cluster_mode MODE: three nodes on the token (file: SoftHSM2 itself in
  # each node; p11kit: p11-kit-client.so to one p11-kit server), a P-256
  # key, then N synchronous clients over the first 1, 2 and 3 nodes.
  cluster_mode() {
    local mode=$1 mod=$module i n eps="" out jflag=""
    [ "$json" = 1 ] && jflag=--json
    if [ "$mode" = p11kit ]; then
      mod=$p11client
      p11-kit server -f --provider "$module" -n "$T/p11kit.sock" "pkcs11:token=keyhold" > "$T/p11kit.log" 2>&1 &
      p11_pid=$!
      pids+=("$p11_pid")
      for _ in $(seq 1 100); do [ -S "$T/p11kit.sock" ] && break; sleep 0.05; done
      export P11_KIT_SERVER_ADDRESS="unix:path=$T/p11kit.sock"
    fi
    node_pids=()
    for i in 1 2 3; do
      conf_text off "$mode$i" "[audit]
key = keyhold-audit-$mode$i
[cluster]
node = $mode$i
$(kh_pg_state_ini)" | sed "s|^module = .*|module = $mod|" > "$T/$mode$i.conf"
      start_kh "$mode$i"
      node_pids+=("$kh2_pid")
    done
    for _ in $(seq 1 200); do "$cli" --socket "$T/${mode}1.sock" health > /dev/null 2>&1 && break; sleep 0.05; done
    "$cli" --socket "$T/${mode}1.sock" key generate "cluster-$mode" --type p256 > /dev/null
    for n in 1 2 3; do
      eps="${eps:+$eps,}unix:$T/$mode$n.sock"
      # shellcheck disable=SC2086 # $jflag: no word, or --json
      out=$("$bench" cluster --endpoints "$eps" --key "cluster-$mode" --type p256 --conc "$cluster_conc" \
        --seconds "$seconds" $jflag)
      if [ "$json" = 1 ]; then
        cluster_json="${cluster_json:+$cluster_json,}{\"token\":\"$mode\",\"nodes\":$n,\"clients\":$cluster_conc,\"result\":$out}"
      else
        printf '%-7s %d node(s), %d clients: %s\n' "$mode" "$n" "$cluster_conc" "$out"
      fi
    done
    for i in "${node_pids[@]}"; do kill "$i"; wait "$i" 2> /dev/null || true; done
    if [ "$mode" = p11kit ]; then
      kill "$p11_pid"
      wait "$p11_pid" 2> /dev/null || true
      unset P11_KIT_SERVER_ADDRESS
    fi
  }
  # The nodes are one cluster: one PostgreSQL state database, as
  # docs/CLUSTER.md sets them up.
  bench_pg_start
  [ "$json" = 1 ] || echo "signatures/s, P-256, $cluster_conc synchronous clients spread by KEYHOLD_ENDPOINTS, ${seconds}s per row, $(nproc) CPUs, the nodes' state on one PostgreSQL"
  cluster_mode file
  cluster_mode p11kit
  [ "$json" = 1 ] && printf '{"cluster":[%s]}\n' "$cluster_json"
  exit 0
fi

# Start-up time to the first answer, without and with FIPS self-tests.
startup_off="null" startup_fips="null"
if [ "$tls_only" = 0 ] && [ "$tpm" = 0 ] && [ "$cells_only" = 0 ]; then
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
if [ "$tpm" = 0 ]; then
  p11-kit server -f --provider /usr/lib/softhsm/libsofthsm2.so -n "$T/p11kit.sock" "pkcs11:token=keyhold" \
    > "$T/p11kit.log" 2>&1 &
  pids+=($!)
fi
for _ in $(seq 1 200); do
  [ -S "$T/keyhold.sock" ] && { [ "$tpm" = 1 ] || [ -S "$T/p11kit.sock" ]; } && break
  sleep 0.05
done
[ "$tpm" = 1 ] || export P11_KIT_SERVER_ADDRESS="unix:path=$T/p11kit.sock"

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
if [ "$tpm" = 1 ] || [ "$cells_only" = 1 ]; then
  : # no nginx part on a TPM (docs/TPM.md: the engine reaches it through p11-kit)
elif [ "$prov_sanitized" != 0 ]; then
  echo "TLS part skipped: $build is a sanitizer build (measure a plain build)" >&2
elif command -v nginx > /dev/null && [ -f /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ]; then
  scripts/provider-conf.sh "$T/keyhold.sock" > "$T/prov.cnf"
  scripts/engine-conf.sh /usr/lib/softhsm/libsofthsm2.so "$pinfile" > "$T/engine.cnf"
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
peers=()
if [ "$tpm" = 0 ]; then
  peers=(--p11kit-module /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
    --keyhold-module "$build/client/pkcs11/libkeyhold-pkcs11.so" --bare)
fi
run_out="null"
[ "$cells_only" = 1 ] || run_out=$("$bench" run --socket "$T/keyhold.sock" --pin-file "$pinfile" --module "$module" "${peers[@]}" \
  --types "$types" --conc "$conc" --seconds "$seconds" --pid "$kh_pid" "${jflag[@]}")

# ---- audit sync = always (group commit) against interval: P-256, keyhold
# only, the same cells on two keyholdd on the same token, one after the
# other. ----
audit_json="null"
if [ "$quick" = 0 ] && [ "$tpm" = 0 ]; then
  conf_text off audit-always "[audit]
sync = always
key = audit-always" > "$T/audit-always.conf"
  start_kh audit-always
  a_int=$("$bench" run --socket "$T/keyhold.sock" --pin-file "$pinfile" --module "$module" --keyhold-only \
    --types p256 --conc 1,8,64 --seconds "$seconds" --pid "$kh_pid" --json)
  a_alw=$("$bench" run --socket "$T/audit-always.sock" --pin-file "$pinfile" --module "$module" --keyhold-only \
    --types p256 --conc 1,8,64 --seconds "$seconds" --pid "$kh2_pid" --json)
  stop_kh
  audit_json=$(python3 -c '
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rows = []
for x, y in zip(a["rows"], b["rows"]):
    rows.append({"shape": x["shape"], "concurrency": x["concurrency"], "interval": x["keyhold"]["ops"],
                 "always": y["keyhold"]["ops"], "always_p50_us": y["keyhold"]["p50_us"],
                 "always_over_interval": round(y["keyhold"]["ops"] / x["keyhold"]["ops"], 2) if x["keyhold"]["ops"] else 0})
print(json.dumps(rows))' "$a_int" "$a_alw")
fi

# ---- mixed: a Unix client's GetStatus latency, idle and while 8 TLS
# clients make full handshakes in a loop (each one a token signature). ----
mixed_json="null"
if [ "$quick" = 0 ]; then
  P="$T/pki"
  mkdir -p "$P"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench-ca" \
    -keyout "$P/ca.key" -out "$P/ca.pem" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2> /dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench-client" \
    -keyout "$P/client.key" -out "$P/client.csr" 2> /dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' > "$P/client.ext"
  openssl x509 -req -in "$P/client.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial -days 2 \
    -extfile "$P/client.ext" -out "$P/client.pem" 2> /dev/null
  "$build/client/keyhold" key generate bench-tls --type p256 > /dev/null
  "$build/client/keyhold" key show bench-tls --pem > "$P/server.pub"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=keyhold" \
    -keyout "$P/throwaway.key" -out "$P/server.csr" 2> /dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' > "$P/server.ext"
  openssl x509 -req -in "$P/server.csr" -force_pubkey "$P/server.pub" -CA "$P/ca.pem" -CAkey "$P/ca.key" \
    -CAcreateserial -days 2 -extfile "$P/server.ext" -out "$P/server.pem" 2> /dev/null
  conf_text off mixed "[tls]
listen = 127.0.0.1:0
key = bench-tls
cert = $P/server.pem
client_ca = $P/ca.pem" > "$T/mixed.conf"
  sed -i 's/^log_level = warn/log_level = info/' "$T/mixed.conf"
  start_kh mixed
  port=$(sed -n 's/.*TLS 1.3 listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$T/mixed.log" | tail -n 1)
  cat > "$T/hsloop.py" << 'EOF'
import socket, ssl, sys, threading, time
port, seconds, d = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.load_verify_locations(d + "/ca.pem")
ctx.load_cert_chain(d + "/client.pem", d + "/client.key")
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
n = [0] * 8
end = time.monotonic() + seconds
def loop(i):
    while time.monotonic() < end:
        with socket.create_connection(("127.0.0.1", port)) as s:
            with ctx.wrap_socket(s) as t:
                t.do_handshake()
        n[i] += 1
th = [threading.Thread(target=loop, args=(i,)) for i in range(8)]
for t in th: t.start()
for t in th: t.join()
print("%.1f" % (sum(n) / seconds))
EOF
  m_idle=$("$bench" latency --socket "$T/mixed.sock" --seconds "$seconds")
  python3 "$T/hsloop.py" "$port" "$(python3 -c "print($seconds + 1)")" "$P" > "$T/hsrate" &
  hs_pid=$!
  sleep 0.5
  m_busy=$("$bench" latency --socket "$T/mixed.sock" --seconds "$seconds")
  wait "$hs_pid"
  stop_kh
  mixed_json=$(python3 -c '
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"idle_p50_us": a["p50_us"], "idle_p99_us": a["p99_us"], "idle_p999_us": a["p999_us"],
  "busy_p50_us": b["p50_us"], "busy_p99_us": b["p99_us"], "busy_p999_us": b["p999_us"],
  "p99_busy_over_idle": round(b["p99_us"] / max(a["p99_us"], 1), 2),
  "handshakes_per_s": float(sys.argv[3])}))' "$m_idle" "$m_busy" "$(cat "$T/hsrate")")
fi

# Many connections at once; every request must be answered.
scale_out="null"
if [ "$tpm" = 0 ] && [ "$cells_only" = 0 ]; then
  "$build/client/keyhold" key generate bench-scale --type p256 > /dev/null
  ulimit -n "$(ulimit -Hn)"
  scale_out=$("$bench" scale --socket "$T/keyhold.sock" --key bench-scale --conns "$conns" --rounds 3 --pid "$kh_pid")
fi

token=softhsm2
[ "$tpm" = 1 ] && token=tpm2-pkcs11
if [ "$json" = 1 ]; then
  printf '{"token":"%s","run":%s,"scale":%s,"startup":{"off":%s,"fips_aligned":%s},"tls":%s,"audit_sync_always":%s,"mixed":%s}\n' \
    "$token" "$run_out" "$scale_out" "$startup_off" "$startup_fips" "$tls_json" "$audit_json" "$mixed_json"
else
  echo "token: $token"
  echo "$run_out"
  echo "scale: $scale_out"
  echo "startup (fips_mode off): $startup_off"
  echo "startup (fips_mode aligned): $startup_fips"
  echo "tls handshakes/s (nginx, TLS 1.3, one client): $tls_json"
  echo "audit sync=always vs interval (P-256 sig/s): $audit_json"
  echo "GetStatus latency, idle and during 8 TLS handshake loops: $mixed_json"
  echo "machine: $(nproc) cores, $(uname -r); keyholdd workers=$workers sessions=$workers"
fi
