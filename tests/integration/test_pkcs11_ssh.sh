#!/usr/bin/env bash
# OpenSSH through libkeyhold-pkcs11.so (docs/PKCS11.md "OpenSSH"): the test
# starts its own sshd on a loopback port (own config, host key, pid file;
# AuthorizedKeysFile from `ssh-keygen -D libkeyhold-pkcs11.so`); `ssh -I
# libkeyhold-pkcs11.so` logs in and runs a command with a P-256 and an
# RSA-2048 keyhold key. Run as root (CI): a principal with a grant logs in
# the same way and one without a grant cannot. Run as another user: the
# login as that user only (sshd without root cannot switch users).
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] && . "$(dirname "$0")/lib_security.sh"
. "$(dirname "$0")/lib_pkcs11.sh"

SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] || fail "no $SSHD (scripts/install-deps.sh installs openssh-server)"
login=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  kh_sec_user khssh
  kh_sec_user khsshn
  gpasswd -a khsshn khssh > /dev/null || fail "cannot add khsshn to group khssh"
  KH_SERVICE_EXTRA="socket_group = khssh" kh_config "signer = user:khssh, user:khsshn"
fi
kh_start

ok "generate p256" kh key generate p256 --type p256
ok "generate rsa" kh key generate rsa --type rsa2048

# ---- the server ----
S="$T/ssh"
mkdir -p "$S"
chmod 755 "$T" "$S"
ssh-keygen -q -t ed25519 -N "" -f "$S/host_key" || fail "host key"
ok "ssh-keygen -D" p11 ssh-keygen -D "$P11_MODULE"
cp "$T/ok.out" "$S/all_keys"
: > "$S/authorized_keys"
for k in p256 rsa; do
  kh key show "$k" --pem > "$T/$k.pub" || fail "key show $k"
  # keyhold's public key in OpenSSH form, made without the module.
  want=$(ssh-keygen -i -m PKCS8 -f "$T/$k.pub") || fail "ssh-keygen -i $k"
  grep -qF "${want#* }" "$S/all_keys" || fail "ssh-keygen -D does not list $k: $(cat "$S/all_keys")"
  grep -F "${want#* }" "$S/all_keys" >> "$S/authorized_keys"
done
chmod 644 "$S/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# StrictModes no: the authorized keys live under /tmp (world-writable),
# which StrictModes refuses whoever runs sshd. As root sshd also needs its
# privilege separation directory; as another user it runs unprivileged
# and can only log that user in.
cat > "$S/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers $login
LogLevel VERBOSE
EOF
if [ "$(id -u)" -eq 0 ] && [ ! -d /run/sshd ]; then
  mkdir -p /run/sshd && chmod 755 /run/sshd
fi
ok "sshd -t" "$SSHD" -t -f "$S/sshd_config"
"$SSHD" -D -e -f "$S/sshd_config" 2> "$S/sshd.log" &
sshd_pid=$!
stop_sshd() { kill "$sshd_pid" 2> /dev/null || true; wait "$sshd_pid" 2> /dev/null || true; }
kh_on_exit stop_sshd
for _ in $(seq 1 100); do
  (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
  kill -0 "$sshd_pid" 2> /dev/null || fail "sshd did not start: $(cat "$S/sshd.log")"
  sleep 0.05
done

SSH=(ssh -F /dev/null -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
  -o IdentityAgent=none -o PasswordAuthentication=no -o ConnectTimeout=10)

# ---- logins ----
ok "ssh -I" p11 "${SSH[@]}" -I "$P11_MODULE" "$login@127.0.0.1" echo keyhold-ssh-ok
grep -qx keyhold-ssh-ok "$T/ok.out" || fail "the remote command did not run: $(cat "$T/ok.out" "$T/ok.err")"
# Each key on its own: only the one key in authorized_keys.
for k in p256 rsa; do
  grep -F "$(ssh-keygen -i -m PKCS8 -f "$T/$k.pub" | cut -d' ' -f2)" "$S/all_keys" > "$S/authorized_keys"
  ok "ssh -I with $k" p11 "${SSH[@]}" -I "$P11_MODULE" "$login@127.0.0.1" echo "$k-ok"
  grep -qx "$k-ok" "$T/ok.out" || fail "$k: the remote command did not run"
  grep -q "Accepted publickey for $login" "$S/sshd.log" || fail "sshd did not accept a public key"
done
# keyholdd signed (and audited) it.
ok "audit" kh audit show
grep -q "Sign" "$T/ok.out" || fail "no Sign in the audit log"

if [ "$(id -u)" -eq 0 ]; then
  grep -F "$(ssh-keygen -i -m PKCS8 -f "$T/p256.pub" | cut -d' ' -f2)" "$S/all_keys" > "$S/authorized_keys"
  # A principal with a grant for the key: the same login from its own
  # ssh client process.
  ok "grant" kh policy grant p256 user:khssh
  ok "ssh as khssh" p11_as khssh "${SSH[@]}" -I "$P11_MODULE" "$login@127.0.0.1" echo khssh-ok
  grep -qx khssh-ok "$T/ok.out" || fail "khssh: the remote command did not run"
  # Without a grant the module offers no key: no login.
  if p11_as khsshn "${SSH[@]}" -I "$P11_MODULE" "$login@127.0.0.1" echo khsshn-ok > "$T/n.out" 2>&1; then
    fail "a principal without a grant logged in: $(cat "$T/n.out")"
  fi
  grep -q "Permission denied (publickey)" "$T/n.out" || fail "khsshn: $(cat "$T/n.out")"
  if grep -qx khsshn-ok "$T/n.out"; then fail "khsshn's command ran"; fi
fi

log "PASS"
