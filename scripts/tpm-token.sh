#!/usr/bin/env bash
# A throwaway TPM 2.0 token for keyhold: swtpm on loopback, a private session
# D-Bus with tpm2-abrmd in front of it, and a tpm2-pkcs11 store and token.
#
#   scripts/tpm-token.sh start DIR [LABEL]  start everything, print the [token] lines
#   scripts/tpm-token.sh stop DIR           stop exactly the processes start started
#   scripts/tpm-token.sh tpm-down DIR       stop swtpm only (the TPM "goes away")
#   scripts/tpm-token.sh tpm-up DIR         start swtpm again, same state and port
#   scripts/tpm-token.sh abrmd-restart DIR  restart tpm2-abrmd (same bus, same TPM)
#
# Files in DIR: env (source it: TPM2_PKCS11_TCTI, TPM2_PKCS11_STORE,
# DBUS_SESSION_BUS_ADDRESS, TPM2TOOLS_TCTI, P11_KIT_SERVER_ADDRESS), pin
# (0600 user PIN), store/ (tpm2-pkcs11 sqlite store), tpm/ (swtpm NVRAM
# state), port, *.pid, *.log.
# Why abrmd: without it one process may hold the TPM and tpm2-pkcs11 can
# keep only a couple of keys loaded (swtpm has 3 transient slots); abrmd
# virtualises both. Why a p11-kit server: tpm2-pkcs11 cannot log in inside
# a process that loaded the libp11 OpenSSL engine (the engine claims
# OpenSSL's RSA/EC key methods and ESYS's salted session then fails,
# tpm2-tss#3151), so engine users reach the token through p11-kit-client.so.
# docs/TPM.md has the details and the real-TPM setup.
set -euo pipefail

MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
cmd=${1:-}
dir=${2:-}
label=${3:-keyhold}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: tpm-token.sh start|stop|tpm-down|tpm-up|abrmd-restart DIR [LABEL]" >&2
  exit 2
fi

die() { echo "tpm-token.sh: $*" >&2; exit 1; }

# pid_alive PID: running and not a zombie (a stopped daemon whose parent has
# not reaped it yet must count as gone).
pid_alive() {
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# ours PIDFILE MARKER: prints the pid from PIDFILE when that process is still
# running and its command line contains MARKER (guards against a recycled
# pid: we only ever signal what we started).
ours() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(tr -dc 0-9 < "$1")
  [ -n "$pid" ] && pid_alive "$pid" || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
  echo "$pid"
}

# stop_pid PIDFILE MARKER NAME: SIGTERM, wait up to 5 s, then SIGKILL.
stop_pid() {
  local pid _i
  pid=$(ours "$1" "$2") || { rm -f "$1"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _i in $(seq 1 100); do
    pid_alive "$pid" || break
    sleep 0.05
  done
  if pid_alive "$pid"; then
    echo "tpm-token.sh: $3 ($pid) ignored SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for _i in $(seq 1 40); do pid_alive "$pid" || break; sleep 0.05; done
  fi
  rm -f "$1"
}

# ---- swtpm ----

# swtpm_run PORT: one attempt on PORT (server) and PORT+1 (control).
# Returns non-zero when a port is taken; swtpm reports that before it
# daemonises.
swtpm_run() {
  local p=$1
  swtpm socket --tpm2 --tpmstate "dir=$dir/tpm" \
    --server "type=tcp,port=$p,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$((p + 1)),bindaddr=127.0.0.1" \
    --flags not-need-init,startup-clear --daemon --pid "file=$dir/swtpm.pid" \
    --log "file=$dir/swtpm.log,level=1" < /dev/null >> "$dir/swtpm.log" 2>&1
}

# Picks a port pair below the kernel's ephemeral range (so no outgoing
# connection can hold it) and lets the bind decide: a taken port makes
# swtpm fail and we try another. Parallel runs therefore never share one.
swtpm_start_new() {
  local lo _hi p _try
  read -r lo _hi < /proc/sys/net/ipv4/ip_local_port_range || lo=32768
  [ "$lo" -gt 12000 ] || lo=32768
  for _try in $(seq 1 64); do
    p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10002)))
    p=$((p & ~1))
    if swtpm_run "$p"; then
      echo "$p" > "$dir/port"
      return 0
    fi
    grep -q "Address already in use" "$dir/swtpm.log" || die "swtpm failed: $(tail -n 3 "$dir/swtpm.log")"
    : > "$dir/swtpm.log"
  done
  die "no free loopback port pair for swtpm after 64 tries"
}

# Restarts swtpm on the port abrmd already uses. The port was ours a moment
# ago; retry briefly in case the kernel has not released it yet.
swtpm_start_again() {
  local p _i
  p=$(cat "$dir/port")
  for _i in $(seq 1 50); do
    if swtpm_run "$p"; then return 0; fi
    sleep 0.1
  done
  die "cannot restart swtpm on port $p: $(tail -n 3 "$dir/swtpm.log")"
}

# ---- D-Bus and tpm2-abrmd ----

abrmd_start() {
  local p root_opt=() _i
  p=$(cat "$dir/port")
  # abrmd refuses to run as root without this (CI containers run as root).
  [ "$(id -u)" -ne 0 ] || root_opt=(--allow-root)
  # shellcheck disable=SC1091
  . "$dir/env"
  # --flush-all: a fresh TPM context with no stale transient objects.
  # --max-transients: tpm2-pkcs11 keeps every key it has used loaded in its
  # one connection; abrmd's default of 27 would cap a token at ~26 keys (100 is its maximum).
  setsid tpm2-abrmd --session --flush-all "${root_opt[@]}" --max-transients=100 \
    --tcti="swtpm:host=127.0.0.1,port=$p" < /dev/null >> "$dir/abrmd.log" 2>&1 &
  echo $! > "$dir/abrmd.pid"
  # Ready when a client can reach the TPM through it.
  for _i in $(seq 1 200); do
    if tpm2_getrandom -T tabrmd:bus_type=session 4 > /dev/null 2>&1; then return 0; fi
    ours "$dir/abrmd.pid" "swtpm:host=127.0.0.1,port=$p" > /dev/null || die "tpm2-abrmd exited: $(tail -n 5 "$dir/abrmd.log")"
    sleep 0.05
  done
  die "tpm2-abrmd did not answer within 10 s"
}

# A p11-kit server for the token, for in-process OpenSSL engine users.
p11kit_start() {
  p11-kit server -s -n "$dir/p11kit.sock" --provider "$MODULE" "pkcs11:token=$label" \
    < /dev/null > "$dir/p11kit.out" 2>> "$dir/p11kit.log" || die "p11-kit server failed: $(tail -n 3 "$dir/p11kit.log")"
  sed -n 's/^P11_KIT_SERVER_PID=\([0-9]*\);.*/\1/p' "$dir/p11kit.out" > "$dir/p11kit.pid"
  [ -s "$dir/p11kit.pid" ] || die "p11-kit server printed no pid"
  echo "export P11_KIT_SERVER_ADDRESS=unix:path=$dir/p11kit.sock" >> "$dir/env"
}

dbus_start() {
  dbus-daemon --session --address="unix:path=$dir/bus" --fork --nopidfile \
    --print-pid=1 < /dev/null > "$dir/dbus.pid" 2>> "$dir/dbus.log" || die "dbus-daemon failed"
}

start() {
  local sopin
  [ ! -e "$dir/port" ] || die "$dir already holds a TPM token; stop it first"
  mkdir -p "$dir/tpm" "$dir/store"
  chmod 700 "$dir"
  for t in swtpm dbus-daemon tpm2-abrmd tpm2_ptool tpm2_getrandom p11-kit; do
    command -v "$t" > /dev/null || die "$t is missing; run scripts/install-deps.sh"
  done
  [ -f /usr/lib/x86_64-linux-gnu/libtss2-tcti-tabrmd.so.0 ] ||
    die "the tabrmd TCTI is missing (libtss2-tcti-tabrmd0); run scripts/install-deps.sh"
  # A failed start leaves nothing running behind.
  trap '[ $? -eq 0 ] || stop_all' EXIT
  swtpm_start_new
  dbus_start
  cat > "$dir/env" <<EOF
# Environment for keyholdd and PKCS#11 tools using the TPM token in $dir.
export DBUS_SESSION_BUS_ADDRESS=unix:path=$dir/bus
export TPM2_PKCS11_TCTI=tabrmd:bus_type=session
export TPM2_PKCS11_STORE=$dir/store
export TPM2TOOLS_TCTI=tabrmd:bus_type=session
EOF
  abrmd_start
  umask 077
  od -An -N12 -tx1 /dev/urandom | tr -d ' \n' > "$dir/pin"
  sopin=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  # tpm2_ptool talks to the TPM through tpm2-tools (TPM2TOOLS_TCTI).
  tpm2_ptool init --path "$dir/store" > "$dir/ptool.log" 2>&1 ||
    die "tpm2_ptool init failed: $(tail -n 3 "$dir/ptool.log")"
  tpm2_ptool addtoken --pid=1 --label="$label" --sopin="$sopin" --userpin="$(cat "$dir/pin")" \
    --path "$dir/store" >> "$dir/ptool.log" 2>&1 ||
    die "tpm2_ptool addtoken failed: $(tail -n 3 "$dir/ptool.log")"
  p11kit_start
  trap - EXIT
  cat <<EOT
# keyholdd needs the environment in $dir/env (source it)
[token]
module = $MODULE
uri = pkcs11:token=$label
pin_file = $dir/pin
EOT
}

stop_all() {
  local p
  p=$(cat "$dir/port" 2>/dev/null || echo none)
  stop_pid "$dir/p11kit.pid" "$dir/p11kit.sock" "p11-kit server"
  stop_pid "$dir/abrmd.pid" "swtpm:host=127.0.0.1,port=$p" tpm2-abrmd
  stop_pid "$dir/dbus.pid" "unix:path=$dir/bus" dbus-daemon
  stop_pid "$dir/swtpm.pid" "dir=$dir/tpm" swtpm
  rm -f "$dir/port" "$dir/bus" "$dir/p11kit.sock"
}

[ -d "$dir" ] || mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
case "$cmd" in
start) start ;;
stop) stop_all ;;
tpm-down) stop_pid "$dir/swtpm.pid" "dir=$dir/tpm" swtpm ;;
tpm-up)
  ours "$dir/swtpm.pid" "dir=$dir/tpm" > /dev/null && die "swtpm is already running"
  swtpm_start_again
  ;;
abrmd-restart)
  stop_pid "$dir/abrmd.pid" "swtpm:host=127.0.0.1,port=$(cat "$dir/port")" tpm2-abrmd
  abrmd_start
  ;;
*) die "unknown command '$cmd'" ;;
esac
