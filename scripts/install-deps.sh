#!/usr/bin/env bash
# Installs every Debian 12 package keyhold builds, runs and tests with.
# Idempotent: does nothing when all packages are already present.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang-14 libclang-rt-14-dev
  libssl-dev libprotobuf-c-dev protobuf-c-compiler libevent-dev
  libsqlite3-dev libinih-dev libcurl4-openssl-dev libsystemd-dev
  libp11-kit-dev libcmocka-dev libjansson-dev libpq-dev
  # tokens and interop peers
  softhsm2 opensc p11-kit p11-kit-modules libengine-pkcs11-openssl openssl
  swtpm swtpm-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools python3-tpm2-pkcs11-tools
  tpm2-abrmd libtss2-tcti-tabrmd0 tpm2-tools dbus
  # test helpers
  python3 util-linux procps psmisc sqlite3 curl nginx shellcheck openssh-server openssh-client gnutls-bin
  python3-cryptography-vectors ca-certificates
  # test_acme: an ACME (RFC 8555) test CA
  pebble
  # packaging: man pages, the .deb and its checks
  scdoc debhelper bash-completion
  # test_metrics: promtool and a real Prometheus server
  prometheus
  # the postgresql state backend: a throwaway server per test run (lib_pg.sh)
  postgresql
  # test_scep: a real SCEP server (scepserver)
  scep
  # test_scep: the approving RA in front of it (scep_ra_proxy.py) signs CertReps
  python3-cryptography
  python3-protobuf protobuf-compiler
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
