#!/usr/bin/env bash
# engine-conf.sh MODULE [PIN_FILE]: prints an openssl.cnf that loads the
# libp11 engine (libengine-pkcs11-openssl) on the PKCS#11 module MODULE:
# a token's own module, p11-kit-client.so, or libkeyhold-pkcs11.so. With
# PIN_FILE the engine logs in with that PIN and initialises at load
# (init = 1); without, it loads lazily and `openssl req` finds an empty
# [req] distinguished name to work with.
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 MODULE [PIN_FILE]" >&2; exit 2; }
cat <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
MODULE_PATH = $1
CNF
if [ $# -eq 2 ]; then
  printf 'PIN = %s\ninit = 1\n' "$(cat "$2")"
else
  printf 'init = 0\n[req]\ndistinguished_name = dn\n[dn]\n'
fi
