#!/usr/bin/env bash
# The installed tree: `cmake --install` into a temporary prefix puts the
# files a system install needs in place (docs/INSTALL.md); then
# examples/sign.c built twice against it (pkg-config, and find_package
# through the CMake package config), run against a real keyholdd, and its
# signature checked with `openssl dgst -verify`.
. "$(dirname "$0")/lib.sh"

prefix="$T/prefix"
cmake --install "$KH_BUILD" --prefix "$prefix" > "$T/install.log" || fail "cmake --install failed"
hdr="$prefix/include/keyhold/keyhold.h"
[ -f "$hdr" ] || fail "keyhold/keyhold.h not installed"
pc=$(find "$prefix" -name keyhold.pc | head -n 1)
[ -n "$pc" ] || fail "keyhold.pc not installed"
libdir=$(PKG_CONFIG_PATH="$(dirname "$pc")" pkg-config --variable=libdir keyhold)
so=$(find "$libdir" -name 'libkeyhold.so.0*' | head -n 1)
[ -n "$so" ] || fail "libkeyhold.so.0 not in $libdir"
# Around the binaries: the unit, sysusers/tmpfiles, the example
# configuration, the man pages, bash completion and the .proto.
for f in lib/systemd/system/keyholdd.service lib/systemd/system/keyholdd.socket lib/sysusers.d/keyhold.conf lib/tmpfiles.d/keyhold.conf \
  etc/keyhold/keyholdd.conf share/man/man1/keyhold.1 share/man/man5/keyholdd.conf.5 share/man/man8/keyholdd.8 \
  share/bash-completion/completions/keyhold share/keyhold/keyhold.proto; do
  [ -f "$prefix/$f" ] || fail "$f not installed"
done
cmp -s "$prefix/share/keyhold/keyhold.proto" "$KH_SRC/proto/keyhold.proto" || fail "the installed keyhold.proto differs"
# Only the public header is installed, and only kh_* names are exported.
[ "$(find "$prefix/include" -name '*.h' | wc -l)" -eq 1 ] || fail "more than one header installed"
if nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^KEYHOLD_0$' | grep -v '^kh_'; then
  fail "libkeyhold exports names outside kh_*"
fi

# A sanitizer build's library needs the sanitizer runtime in the program.
san=()
# (A capture, not `readelf | grep -q`: under pipefail, grep leaving early
# can SIGPIPE readelf and make the pipeline false.)
if [[ "$(readelf -d "$so")" == *libasan* ]]; then
  san=("-fsanitize=address,undefined")
fi

# The pkg-config words are meant to split (flags).
read -r -a pcflags <<< "$(PKG_CONFIG_PATH="$(dirname "$pc")" pkg-config --cflags --libs keyhold)"
cc "${san[@]}" -Wall -Werror -o "$T/sign-pc" "$KH_SRC/examples/sign.c" "${pcflags[@]}" -Wl,-rpath,"$libdir" \
  || fail "the example does not build with pkg-config"
cmake -S "$KH_SRC/examples" -B "$T/ex" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="${san[*]}" \
  -DCMAKE_EXE_LINKER_FLAGS="${san[*]}" -DCMAKE_BUILD_RPATH="$libdir" > "$T/ex.log" 2>&1 \
  || { cat "$T/ex.log" >&2; fail "find_package(keyhold) failed"; }
cmake --build "$T/ex" > "$T/exb.log" 2>&1 || { cat "$T/exb.log" >&2; fail "the example does not build with CMake"; }

kh_start
ok "generate the example's key" kh key generate ex-key --type p256
ok "its public key" kh key show ex-key --pem
cp "$T/ok.out" "$T/ex-key.pem"
head -c 5000 /dev/urandom > "$T/data"
for b in sign-pc ex/sign; do
  "$T/$b" ex-key "$T/data" "$SOCK" > "$T/$(basename "$b").hex" || fail "$b failed"
  python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read().strip()))' \
    "$T/$(basename "$b").hex" > "$T/sig.der"
  openssl dgst -sha256 -verify "$T/ex-key.pem" -signature "$T/sig.der" "$T/data" > /dev/null \
    || fail "$b: the signature does not verify"
  head -c 10 /dev/urandom >> "$T/data.other"
  if openssl dgst -sha256 -verify "$T/ex-key.pem" -signature "$T/sig.der" "$T/data.other" > /dev/null 2>&1; then
    fail "$b: the signature verifies over other data"
  fi
  log "ok: $b built against the installed library signs verifiably"
done
# Errors come back with the server's message.
if "$T/sign-pc" no-such-key "$T/data" "$SOCK" > /dev/null 2> "$T/err"; then
  fail "signing with a missing key succeeded"
fi
grep -q '^sign: NOT_FOUND: ' "$T/err" || fail "unexpected error: $(cat "$T/err")"
log "ok: install test"
