#!/usr/bin/env bash
# Socket activation (sd_listen_fds): systemd-socket-activate plays
# keyholdd.socket, binding [service] socket and exec'ing keyholdd in the
# same process on the first connection with LISTEN_FDS=1. That first
# request is answered, keyholdd says the socket is systemd's, signs (checked
# with openssl), and leaves the socket file in place when it stops. A
# passed socket at another path than [service] socket is refused.
. "$(dirname "$0")/lib.sh"

command -v systemd-socket-activate > /dev/null || fail "systemd-socket-activate missing (Debian package systemd)"
kh_config
# systemd-socket-activate starts the program with an empty environment
# but for what -E passes: the token's and the sanitizers' variables.
envs=()
while IFS= read -r name; do envs+=(-E "$name"); done < <(env | sed -n 's/^\(SOFTHSM2_CONF\|[A-Z]*SAN_OPTIONS\|TPM2[A-Z0-9_]*\|TSS2[A-Z0-9_]*\|DBUS[A-Z_]*\)=.*/\1/p')
systemd-socket-activate "${envs[@]}" -l "$SOCK" -- "$KEYHOLDD" --config "$T/keyhold.conf" --foreground >> "$T/keyholdd.log" 2>&1 &
KH_PID=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || fail "systemd-socket-activate did not bind $SOCK"
# The first connection starts keyholdd; its request waits for it.
ok "the first request is answered" kh status
grep -q "listening on $SOCK (socket activation: the socket is systemd's)" "$T/keyholdd.log" \
  || fail "keyholdd did not take the socket from systemd"
[ "$(readlink "/proc/$KH_PID/exe")" = "$(readlink -f "$KEYHOLDD")" ] || fail "pid $KH_PID is not keyholdd"
kh_has_type p256 || fail "the checks below need p256"
ok "generate" kh key generate sa --type p256
ok "pem" kh key show sa --pem
cp "$T/ok.out" "$T/sa.pem"
echo "activated" > "$T/msg"
ok "sign" kh sign sa --in "$T/msg" --out "$T/sa.sig"
openssl dgst -sha256 -verify "$T/sa.pem" -signature "$T/sa.sig" "$T/msg" > /dev/null || fail "signature does not verify"
kh_stop
[ -S "$SOCK" ] || fail "keyholdd removed systemd's socket"

# ---- a socket at another path: refused ----
systemd-socket-activate "${envs[@]}" -l "$T/other.sock" -- "$KEYHOLDD" --config "$T/keyhold.conf" --foreground > "$T/other.log" 2>&1 &
other=$!
for _ in $(seq 1 100); do [ -S "$T/other.sock" ] && break; sleep 0.05; done
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(20); s.recv(1)' "$T/other.sock" || true
rc=0
wait "$other" || rc=$?
[ "$rc" -ne 0 ] || fail "keyholdd started on a socket at another path"
grep -q "none a listening Unix stream socket at $SOCK: ListenStream= in keyholdd.socket must be \[service\] socket" "$T/other.log" \
  || { cat "$T/other.log" >&2; fail "the refusal does not say which socket was expected"; }
