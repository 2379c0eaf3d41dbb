# lib_provider.sh: the keyhold OpenSSL provider from the build tree, for
# tests that run unmodified OpenSSL programs (source after lib.sh and
# kh_start). kh_provider_setup writes $T/openssl.cnf for $SOCK and sets
# PROV_DIR, KP_PRELOAD and KP_ENV; then
#   kp CMD...    runs CMD with the provider active,
#   sslx ARGS... runs stock openssl without it.
# shellcheck shell=bash

kh_provider_setup() {
  PROV_DIR="$KH_BUILD/client/provider"
  [ -f "$PROV_DIR/keyhold.so" ] || fail "no provider module in $PROV_DIR"
  "$KH_SRC/scripts/provider-conf.sh" "$SOCK" > "$T/openssl.cnf"
  chmod 644 "$T/openssl.cnf"
  # A sanitizer build's provider needs the sanitizer runtimes loaded first
  # in the uninstrumented programs (openssl, nginx, curl); leak checks
  # stay with keyholdd.
  KP_PRELOAD=$(ldd "$PROV_DIR/keyhold.so" | awk '/lib(asan|ubsan)\.so/ { printf "%s ", $3 }')
  KP_ENV=(OPENSSL_CONF="$T/openssl.cnf" OPENSSL_MODULES="$PROV_DIR" LD_PRELOAD="$KP_PRELOAD"
    ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0")
  # With libasan preloaded, libp11-kit's constructor (Debian 12's 0.24.1,
  # pulled into curl by libcurl -> libgnutls/librtmp/libldap) leaves
  # glibc's setlocale lock with a negative reader count: curl's second
  # setlocale() in main() then waits forever (gdb: __readers 0xfffffff9
  # before main). With P11_KIT_DEBUG set (to anything; "none" prints
  # nothing) that path is not taken and curl runs (docs/PROVIDER.md).
  [ -z "$KP_PRELOAD" ] || KP_ENV+=(P11_KIT_DEBUG=none)
}

kp() { env "${KP_ENV[@]}" "$@"; }
sslx() { env OPENSSL_CONF=/dev/null openssl "$@"; }
