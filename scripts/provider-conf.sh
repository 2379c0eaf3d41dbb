#!/usr/bin/env bash
# provider-conf.sh SOCKET: prints an openssl.cnf that activates OpenSSL's
# default provider and the keyhold provider reaching keyholdd at SOCKET
# (docs/PROVIDER.md). Point OPENSSL_CONF at it and, for a build tree,
# OPENSSL_MODULES at the directory holding keyhold.so.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 SOCKET" >&2; exit 2; }
cat <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
keyhold = keyhold_sect
[default_sect]
activate = 1
[keyhold_sect]
socket = $1
activate = 1
CNF
