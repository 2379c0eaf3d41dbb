#!/usr/bin/env bash
# The Debian packages: dpkg-buildpackage builds keyhold, libkeyhold0 and
# libkeyhold-dev from this tree; dpkg installs them into a throwaway root
# (dpkg --root, maintainer scripts run with DPKG_ROOT as Debian's own
# packages do), so the real postinst makes the keyhold account and writes
# the FIPS integrity sidecar of the stripped keyholdd. Then: the files a
# system install needs are there, the unit's systemd-analyze exposure is at
# most 2.0, `keyholdd --check` passes in FIPS mode on the installed binary
# and fails when the binary changed after the sidecar was made (what
# stripping after install did before), and the packaged keyholdd and CLI
# sign with a SoftHSM2 token in fips_mode = aligned, verified by openssl.
. "$(dirname "$0")/lib.sh"

command -v dpkg-buildpackage > /dev/null || fail "dpkg-buildpackage missing (scripts/install-deps.sh installs dpkg-dev and debhelper)"
src="$T/src/keyhold"
mkdir -p "$src"
# This tree as git sees it (tracked and new files, nothing ignored): no
# build directory gets into the package.
(cd "$KH_SRC" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$src"
jobs=$(nproc)
log "dpkg-buildpackage (parallel=$jobs)"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$jobs nocheck" dpkg-buildpackage -us -uc -b > "$T/deb-build.log" 2>&1) \
  || { tail -n 40 "$T/deb-build.log" >&2; fail "dpkg-buildpackage failed"; }
for p in keyhold libkeyhold0 libkeyhold-dev; do
  [ -f "$T/src/${p}_0.1.0_$(dpkg --print-architecture).deb" ] || fail "no $p package built"
done

# ---- install into a throwaway root ----
R="$T/root"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers" "$R/etc"
: > "$R/var/lib/dpkg/status"
: > "$R/var/lib/dpkg/available"
# The maintainer scripts run on this host with DPKG_ROOT=$R (no chroot:
# the root holds only these packages); dependencies are the host's.
dpkg --root="$R" --force-script-chrootless --force-depends --log="$T/dpkg.log" \
  -i "$T/src/libkeyhold0_"*.deb "$T/src/keyhold_"*.deb "$T/src/libkeyhold-dev_"*.deb > "$T/dpkg.out" 2>&1 \
  || { cat "$T/dpkg.out" >&2; fail "dpkg -i failed"; }
dpkg --root="$R" -l keyhold libkeyhold0 libkeyhold-dev | grep -c '^ii' | grep -qx 3 || fail "the packages are not all installed"
log "ok: the three packages install"

ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for f in usr/sbin/keyholdd usr/bin/keyhold "usr/lib/$ma/ossl-modules/keyhold.so" "usr/lib/$ma/pkcs11/libkeyhold-pkcs11.so" \
  usr/share/p11-kit/modules/keyhold.module "usr/lib/$ma/libkeyhold.so.0" \
  lib/systemd/system/keyholdd.service lib/systemd/system/keyholdd.socket usr/lib/sysusers.d/keyhold.conf usr/lib/tmpfiles.d/keyhold.conf \
  etc/keyhold/keyholdd.conf usr/share/man/man1/keyhold.1.gz usr/share/man/man5/keyholdd.conf.5.gz \
  usr/share/man/man8/keyholdd.8.gz usr/share/bash-completion/completions/keyhold usr/share/keyhold/keyhold.proto \
  usr/include/keyhold/keyhold.h "usr/lib/$ma/pkgconfig/keyhold.pc" "usr/lib/$ma/cmake/keyhold/keyholdConfig.cmake"; do
  [ -e "$R/$f" ] || fail "/$f is not installed"
done
grep -qx '/etc/keyhold/keyholdd.conf' "$R/var/lib/dpkg/info/keyhold.conffiles" || fail "keyholdd.conf is not a conffile"
# Stripped, as dh_strip leaves it (the symbols are in keyhold-dbgsym).
# (A capture: `readelf | grep -q` under pipefail is false when grep's early
# exit SIGPIPEs readelf, and the check would pass unseen.)
[[ "$(readelf -S "$R/usr/sbin/keyholdd")" == *.symtab* ]] && fail "keyholdd is not stripped"
# The man pages are man pages.
for m in man1/keyhold.1 man5/keyholdd.conf.5 man8/keyholdd.8; do
  zcat "$R/usr/share/man/$m.gz" | grep -q '^\.TH "' || fail "$m is not a roff man page"
done
log "ok: binaries, library, unit, sysusers, tmpfiles, conffile, man pages, completion, .proto, .pc"

# The postinst made the account (sysusers) and its directories (tmpfiles).
grep -q '^keyhold:x:[0-9]*:[0-9]*:keyhold key service:/var/lib/keyhold:/usr/sbin/nologin$' "$R/etc/passwd" \
  || fail "the postinst did not make the keyhold user: $(cat "$R/etc/passwd" 2> /dev/null)"
grep -q '^softhsm:x:[0-9]*:.*keyhold' "$R/etc/group" || fail "keyhold is not in group softhsm"
uid=$(awk -F: '$1 == "keyhold" { print $3 }' "$R/etc/passwd")
[ "$(stat -c '%u %a' "$R/var/lib/keyhold")" = "$uid 700" ] || fail "/var/lib/keyhold is not keyhold's, 0700"
log "ok: the postinst made the keyhold user (uid $uid, group softhsm) and /var/lib/keyhold"

# ---- the unit ----
sec=$(systemd-analyze security --offline=yes "$R/lib/systemd/system/keyholdd.service" 2>&1 | tail -n 1)
score=$(printf '%s\n' "$sec" | sed -n 's/.*keyholdd.service: \([0-9.]*\) .*/\1/p')
[ -n "$score" ] || fail "no exposure score: $sec"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "systemd-analyze security exposure $score is above 2.0"
grep -q '^User=keyhold$' "$R/lib/systemd/system/keyholdd.service" || fail "the unit does not run as keyhold"
grep -q '^CapabilityBoundingSet=$' "$R/lib/systemd/system/keyholdd.service" || fail "the unit keeps capabilities"
log "ok: systemd-analyze security exposure $score (at most 2.0), User=keyhold, no capabilities"

# ---- FIPS integrity on the installed, stripped keyholdd ----
[ -f "$R/usr/sbin/.keyholdd.hmac" ] || fail "the postinst wrote no FIPS sidecar"
want=$(openssl dgst -sha256 -hmac "keyhold software integrity key v1" -r "$R/usr/sbin/keyholdd" | cut -d' ' -f1)
[ "$(cat "$R/usr/sbin/.keyholdd.hmac")" = "$want" ] || fail "the sidecar is not the HMAC of the installed keyholdd"
# lib.sh's kh_start, kh and kh_config use these.
# shellcheck disable=SC2034
KEYHOLDD="$R/usr/sbin/keyholdd"
# shellcheck disable=SC2034
KH_CLI="$R/usr/bin/keyhold"
export LD_LIBRARY_PATH="$R/usr/lib/$ma"
# shellcheck disable=SC2034
KH_SERVICE_EXTRA="fips_mode = aligned"
kh_config
"$KEYHOLDD" --config "$T/keyhold.conf" --check > "$T/check.out" 2>&1 || { cat "$T/check.out" >&2; fail "--check fails in FIPS mode on the package"; }
# The same binary changed after its sidecar was made, as a strip after
# install did: refused.
mkdir -p "$T/bin"
cp "$KEYHOLDD" "$R/usr/sbin/.keyholdd.hmac" "$T/bin/"
printf 'changed after the sidecar\n' > "$T/note"
objcopy --add-section .kh-note="$T/note" "$T/bin/keyholdd"
cmp -s "$KEYHOLDD" "$T/bin/keyholdd" && fail "objcopy did not change the copy"
if "$T/bin/keyholdd" --config "$T/keyhold.conf" --check > "$T/check2.out" 2>&1; then
  fail "--check passed on a binary changed after its sidecar"
fi
grep -q 'does not match' "$T/check2.out" || fail "the changed binary's refusal: $(cat "$T/check2.out")"
# The packaged example configuration is valid as shipped, with the PIN as
# the credential the unit hands over.
mkdir -p "$T/cred"
cp "$TOKEN_PIN_FILE" "$T/cred/pin"
chmod 0400 "$T/cred/pin"
CREDENTIALS_DIRECTORY="$T/cred" "$KEYHOLDD" --config "$R/etc/keyhold/keyholdd.conf" --check > "$T/check4.out" 2>&1 \
  || { cat "$T/check4.out" >&2; fail "the packaged /etc/keyhold/keyholdd.conf does not pass --check"; }
# Without --config: the packaged default path.
"$KEYHOLDD" --check > "$T/check3.out" 2>&1 && fail "--check without a config passed"
grep -q '/etc/keyhold/keyholdd.conf' "$T/check3.out" || fail "the default config is not /etc/keyhold/keyholdd.conf: $(cat "$T/check3.out")"
log "ok: FIPS integrity: the postinst's sidecar matches the stripped keyholdd; a changed binary is refused"

# ---- the packaged keyholdd and CLI, FIPS aligned, SoftHSM2 ----
kh_start
ok "status" kh --json status
[ "$(json_get 'd["fips_mode"]' < "$T/ok.out")" = aligned ] || fail "not in aligned mode"
ok "generate" kh key generate pkg --type p256
ok "public key" kh key show pkg --pem
cp "$T/ok.out" "$T/pkg.pem"
head -c 3000 /dev/urandom > "$T/data"
ok "sign" kh sign pkg --in "$T/data" --out "$T/sig"
openssl dgst -sha256 -verify "$T/pkg.pem" -signature "$T/sig" "$T/data" > /dev/null || fail "the packaged keyholdd's signature does not verify"
log "ok: the packaged keyholdd (aligned) and keyhold sign; openssl verifies"

# The bash completion: verbs, and key names asked from keyholdd.
complete_words() {
  # complete_words WORD...: what bash completes for the last (empty) word.
  PATH="$R/usr/bin:$PATH" bash -c '. /usr/share/bash-completion/bash_completion
    . "$1"; shift
    COMP_WORDS=("$@" ""); COMP_CWORD=$#; COMP_LINE="$* "; COMP_POINT=${#COMP_LINE}
    _keyhold; printf "%s\n" "${COMPREPLY[@]}"' _ "$R/usr/share/bash-completion/completions/keyhold" "$@" | sort | tr '\n' ' '
}
[ "$(complete_words keyhold key)" = "delete generate list show " ] || fail "completion of 'key': $(complete_words keyhold key)"
[ "$(complete_words keyhold --socket "$SOCK" key show)" = "keyhold-audit pkg " ] || fail "completion of key names (the audit key is a key too): $(complete_words keyhold --socket "$SOCK" key show)"
log "ok: bash completion of verbs and of key names"

# Removing keyhold removes the sidecar the postinst made.
dpkg --root="$R" --force-script-chrootless --force-depends --log="$T/dpkg.log" -r keyhold > "$T/dpkg-r.out" 2>&1 \
  || { cat "$T/dpkg-r.out" >&2; fail "dpkg -r keyhold failed"; }
[ -e "$R/usr/sbin/.keyholdd.hmac" ] && fail "the sidecar outlived the package"
log "ok: package test"
