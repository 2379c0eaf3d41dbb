# lib_pkcs11.sh: libkeyhold-pkcs11.so from the build tree for tests that
# run unmodified PKCS#11 consumers (pkcs11-tool, p11tool, certtool, ssh,
# the libp11 engine). Source after lib.sh; sets P11_MODULE and P11_ENV;
#   p11 CMD...            runs CMD with the module's environment,
#   p11_as USER CMD...    the same as USER (lib_security.sh's as_user),
#   p11_id KEY            prints key KEY's CKA_ID in hex (kh --json key show).
# shellcheck shell=bash

P11_MODULE="$KH_BUILD/client/pkcs11/libkeyhold-pkcs11.so"
[ -f "$P11_MODULE" ] || fail "no PKCS#11 module at $P11_MODULE"
# A sanitizer build's module needs the sanitizer runtimes loaded first in
# the uninstrumented programs that dlopen it; leak checks stay with
# keyholdd (as lib_provider.sh does for the provider).
P11_PRELOAD=$(ldd "$P11_MODULE" | awk '/lib(asan|ubsan)\.so/ { printf "%s ", $3 }')
P11_ENV=(KEYHOLD_SOCKET="$SOCK" LD_PRELOAD="$P11_PRELOAD" ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0")

p11() { env "${P11_ENV[@]}" "$@"; }
p11_as() {
  local u=$1; shift
  as_user "$u" env "${P11_ENV[@]}" "$@"
}
p11_id() { kh --json key show "$1" | json_get 'd["id"]'; }
