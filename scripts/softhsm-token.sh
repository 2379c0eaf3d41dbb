#!/usr/bin/env bash
# Creates a SoftHSM2 token in DIR with a private SOFTHSM2_CONF and a 0600
# PIN file, and prints the keyholdd [token] lines for it.
#   scripts/softhsm-token.sh DIR [LABEL]
# Files: DIR/softhsm2.conf, DIR/tokens/, DIR/pin. Idempotent: an existing
# token with LABEL is kept.
set -euo pipefail
dir=${1:?usage: softhsm-token.sh DIR [LABEL]}
label=${2:-keyhold}
module=/usr/lib/softhsm/libsofthsm2.so
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
conf="$dir/softhsm2.conf"
if [ ! -f "$conf" ]; then
  printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$dir" > "$conf"
fi
export SOFTHSM2_CONF="$conf"
if [ ! -f "$dir/pin" ]; then
  umask 077
  # A random user PIN; the SO PIN is random too and not kept.
  od -An -N12 -tx1 /dev/urandom | tr -d ' \n' > "$dir/pin"
fi
# Captured first: with pipefail, grep -q closing the pipe early could make
# the check fail and a second token with the same label be created.
slots=$(softhsm2-util --show-slots 2>/dev/null || true)
if ! grep -q "Label:[[:space:]]*${label}[[:space:]]*$" <<< "$slots"; then
  so=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  softhsm2-util --init-token --free --label "$label" --so-pin "$so" --pin "$(cat "$dir/pin")" >/dev/null
fi
cat <<EOT
# SOFTHSM2_CONF=$conf must be in keyholdd's environment
[token]
module = $module
uri = pkcs11:token=$label
pin_file = $dir/pin
EOT
