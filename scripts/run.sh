#!/usr/bin/env bash
# run.sh: the developer set-up. Installs the Debian packages, builds
# keyhold (build/run), creates on first run a state directory (./state, or
# $KEYHOLD_STATE) with a SoftHSM2 token, its PIN file and keyhold.conf,
# prints how to use the CLI, then runs keyholdd in the foreground (Ctrl-C
# stops it). A second run reuses the token and its keys.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD="$ROOT/build/run"
JOBS=${JOBS:-2}

say() { printf '==> %s\n' "$*" >&2; }

say "installing dependencies (scripts/install-deps.sh)"
scripts/install-deps.sh

say "building keyhold in $BUILD"
# A fresh clone has no build/ yet: the logs below live there.
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > "$BUILD/cmake.log" 2>&1 \
  || { cat "$BUILD/cmake.log" >&2; exit 1; }
cmake --build "$BUILD" -j "$JOBS" > "$BUILD/build.log" 2>&1 \
  || { tail -n 50 "$BUILD/build.log" >&2; exit 1; }

STATE=${KEYHOLD_STATE:-$ROOT/state}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
chmod 700 "$STATE"
CONF="$STATE/keyhold.conf"
SOCK="$STATE/keyhold.sock"

# The token (idempotent: an existing token and its PIN are kept).
scripts/softhsm-token.sh "$STATE/token" keyhold > /dev/null
export SOFTHSM2_CONF="$STATE/token/softhsm2.conf"

if [ ! -f "$CONF" ]; then
  say "first run: creating $CONF"
  mkdir -p "$STATE/data"
  umask 077
  cat > "$CONF" <<EOC
; keyholdd configuration written by scripts/run.sh (see README.md).
[service]
socket = $SOCK
state_dir = $STATE/data
workers = 4
fips_mode = off
log_level = info

[token]
module = /usr/lib/softhsm/libsofthsm2.so
uri = pkcs11:token=keyhold
pin_file = $STATE/token/pin
sessions = 8

[access]
; the user who ran scripts/run.sh
admin = uid:$(id -u)
EOC
else
  say "reusing $STATE (token, keys and keyhold.conf)"
fi

"$BUILD/service/keyholdd" --config "$CONF" --check > /dev/null

cat <<EOM

keyholdd is starting on $SOCK
(token: SoftHSM2 in $STATE/token; configuration: $CONF)

In another terminal:

  export KEYHOLD_SOCKET=$SOCK
  export PATH="$BUILD/client:\$PATH"      # the keyhold CLI: $BUILD/client/keyhold
  keyhold status
  keyhold key generate web --type p256    # once: a second time says ALREADY_EXISTS
  keyhold sign web --in README.md --out sig
  keyhold key show web --pem > web.pem
  openssl dgst -sha256 -verify web.pem -signature sig README.md

Ctrl-C stops keyholdd; run scripts/run.sh again to restart it with the same keys.

EOM

exec "$BUILD/service/keyholdd" --config "$CONF" --foreground
