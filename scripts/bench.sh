#!/usr/bin/env bash
# Benchmarks keyhold against its peers in one run on one SoftHSM2 token:
# direct in-process PKCS#11 and p11-kit server (p11-kit-client.so). Then
# holds 1,000 connections and reports keyholdd's RSS, and times start-up
# with and without the FIPS self-tests.
#
#   scripts/bench.sh [--quick] [--json] [--seconds N] [--conc LIST] [--types LIST]
#
# --quick: a few seconds, for the smoke run in scripts/test.sh.
# Needs a Release build (made here in build/bench). See docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

json=0 seconds=3 conc=1,2,8,64 types=rsa2048,p256,ed25519 conns=1000 build=""
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) seconds=0.5 conc=1,2 types=p256 conns=100 ;;
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
  cmake --build "$build" -j2 --target keyholdd keyhold-bench keyhold-cli > /dev/null
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
startup_off=$("$bench" startup -- "$keyholdd" --config "$T/keyhold.conf" --foreground)
startup_fips="null"
if "$keyholdd" --help 2>&1 | grep -q -- --fips-install; then
  cp "$keyholdd" "$T/keyholdd"
  "$T/keyholdd" --fips-install > /dev/null
  write_conf aligned
  startup_fips=$("$bench" startup -- "$T/keyholdd" --config "$T/keyhold.conf" --foreground)
  write_conf off
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

jflag=()
[ "$json" = 1 ] && jflag=(--json)
run_out=$("$bench" run --socket "$T/keyhold.sock" --pin-file "$T/token/pin" \
  --p11kit-module /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so \
  --types "$types" --conc "$conc" --seconds "$seconds" "${jflag[@]}")

# Many connections at once; every request must be answered.
"$build/client/keyhold" key generate bench-scale --type p256 > /dev/null
ulimit -n "$(ulimit -Hn)"
scale_out=$("$bench" scale --socket "$T/keyhold.sock" --key bench-scale --conns "$conns" --rounds 3 --pid "$kh_pid")

if [ "$json" = 1 ]; then
  printf '{"run":%s,"scale":%s,"startup":{"off":%s,"fips_aligned":%s}}\n' \
    "$run_out" "$scale_out" "$startup_off" "$startup_fips"
else
  echo "$run_out"
  echo "scale: $scale_out"
  echo "startup (fips_mode off): $startup_off"
  echo "startup (fips_mode aligned): $startup_fips"
  echo "machine: $(nproc) cores, $(uname -r); keyholdd workers=$workers sessions=$workers"
fi
