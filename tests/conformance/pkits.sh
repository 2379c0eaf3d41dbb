#!/usr/bin/env bash
# pkits.sh: the NIST PKITS conformance run (RFC 5280 §6 path validation).
# Every test of tests/conformance/pkits_expected.tsv goes through one
# keyholdd (TruststoreVerify as `keyhold truststore verify` sends it, on one
# libkeyhold connection, against a trust store holding the PKITS trust
# anchor, with the row's policy settings) and through stock
# `openssl verify -x509_strict -policy_check -extended_crl -use_deltas
# -crl_check_all` with the same inputs and settings. A test counts when
# every row of it agrees with the expected result. Fails when keyhold
# agrees on fewer tests than stock OpenSSL, or when an input is missing.
# Data: python3-cryptography-vectors (scripts/install-deps.sh).
# Sanitizer builds: the fast unwinder. lib.sh asks for the slow one on
# SoftHSM2 so that leaks through libcrypto match its suppressions; here
# every verification is hundreds of libcrypto mallocs, and the slow
# unwinder alone made the run take minutes. Options given later win.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=1"
# shellcheck source=tests/integration/lib.sh
source "$KH_SRC/tests/integration/lib.sh"

PKITS=${PKITS_DATA:-/usr/lib/python3/dist-packages/cryptography_vectors/x509/PKITS_data}
TABLE="$KH_SRC/tests/conformance/pkits_expected.tsv"
SPLIT="$KH_BUILD/tests/conformance/pkits_split"
[ -d "$PKITS/smime" ] || fail "no PKITS data at $PKITS (install python3-cryptography-vectors: scripts/install-deps.sh)"
start=$(date +%s%N)

# The inputs of every test: leaf, intermediates and CRLs from its message.
mapfile -t names < <(grep -v '^#' "$TABLE" | cut -f3 | sort -u)
mkdir -p "$T/in"
"$SPLIT" "$PKITS/smime" "$PKITS/certs/TrustAnchorRootCertificate.crt" "$T/in" "${names[@]}" ||
  fail "pkits_split could not read the PKITS messages"
openssl x509 -inform DER -in "$PKITS/certs/TrustAnchorRootCertificate.crt" -out "$T/ta.pem"
since() { echo "$((($(date +%s%N) - start) / 1000000)) ms"; }
log "inputs split: $(since)"

kh_start
ok "trust store with the PKITS anchor" kh truststore add pkits "$T/ta.pem"
# PKITS keys are RSA and DSA 1024, its DSA signatures SHA-1: the per-store
# floor is lowered for exactly this store (docs/PKI.md).
ok "PKITS key floor" kh truststore set pkits --min-rsa-bits 1024 --allow-sha1 on
log "keyholdd up, store ready: $(since)"

# The keyhold side: every row's TruststoreVerify over one libkeyhold
# connection (pkits_kh sends what `keyhold truststore verify` sends; one
# process, not a CLI per row, keeps the run short under ASan).
grep -v '^#' "$TABLE" | while IFS=$'\t' read -r id _ name opts; do
  printf '%s\t%s\t%s\n' "$id" "$T/in/${name//[ -]/}" "$opts"
done > "$T/kh.list"
"$KH_BUILD/tests/conformance/pkits_kh" "$SOCK" pkits "$T/kh.list" > "$T/kh.res" 2> "$T/kh.err" &
kh_job=$!

# The stock OpenSSL side, one `openssl verify` per row, two at a time.
# Prints "ID<TAB>valid|invalid<TAB>openssl's error line".
os_row() {
  local id=$1 name=$2 opts=$3 d o c rc=0
  local -a args
  d="$T/in/${name//[ -]/}"
  args=(verify -x509_strict -policy_check -extended_crl -use_deltas -crl_check_all -CAfile "$T/ta.pem")
  [ -s "$d/untrusted.pem" ] && args+=(-untrusted "$d/untrusted.pem")
  for c in "$d"/crl-*.pem; do
    [ -f "$c" ] && args+=(-CRLfile "$c")
  done
  for o in $opts; do
    case "$o" in
    policy=*) args+=(-policy "${o#policy=}") ;;
    explicit) args+=(-explicit_policy) ;;
    inhibit_map) args+=(-inhibit_map) ;;
    inhibit_any) args+=(-inhibit_any) ;;
    *) printf '%s\terror\tunknown setting %s\n' "$id" "$o"; return ;;
    esac
  done
  openssl "${args[@]}" "$d/leaf.pem" > "$d/os.$id.out" 2>&1 || rc=$?
  printf '%s\t%s\t%s\n' "$id" "$([ "$rc" -eq 0 ] && echo valid || echo invalid)" \
    "$(grep -m1 -o 'error [0-9]*.*' "$d/os.$id.out" | tr '\t' ' ')"
}
os_stream() {
  local k=$1 n=0 id name opts
  while IFS=$'\t' read -r id _ name opts; do
    [[ "$id" == \#* || -z "$id" ]] && continue
    n=$((n + 1))
    [ $((n % 2)) -eq "$k" ] || continue
    os_row "$id" "$name" "$opts"
  done < "$TABLE"
}
os_stream 0 > "$T/os.0" &
s0=$!
os_stream 1 > "$T/os.1" &
s1=$!
wait "$s0" || fail "a stream of openssl rows failed"
wait "$s1" || fail "a stream of openssl rows failed"
log "openssl verify done: $(since)"
wait "$kh_job" || { cat "$T/kh.err" >&2; fail "pkits_kh failed (a request did not get an answer; see above)"; }

log "keyhold done: $(since)"
declare -A kh_got=() kh_why=() os_got=() os_why=()
while IFS=$'\t' read -r id got why; do kh_got[$id]=$got; kh_why[$id]=$why; done < "$T/kh.res"
while IFS=$'\t' read -r id got why; do os_got[$id]=$got; os_why[$id]=$why; done < <(cat "$T/os.0" "$T/os.1")

rows=0 kh_rows=0 os_rows=0
declare -A kh_bad=() os_bad=() seen=()
while IFS=$'\t' read -r id expect name _; do
  [[ "$id" == \#* || -z "$id" ]] && continue
  rows=$((rows + 1))
  seen[$name]=1
  { [ -n "${kh_got[$id]:-}" ] && [ -n "${os_got[$id]:-}" ]; } || fail "$id: no result"
  if [ "${kh_got[$id]}" = "$expect" ]; then
    kh_rows=$((kh_rows + 1))
  else
    kh_bad[$name]=1
    log "$id $name: keyhold: expected $expect, got ${kh_got[$id]}: ${kh_why[$id]}"
  fi
  if [ "${os_got[$id]}" = "$expect" ]; then
    os_rows=$((os_rows + 1))
  else
    os_bad[$name]=1
    log "$id $name: openssl: expected $expect, got ${os_got[$id]}: ${os_why[$id]}"
  fi
done < "$TABLE"

tests=${#seen[@]}
kh_tests=$((tests - ${#kh_bad[@]}))
os_tests=$((tests - ${#os_bad[@]}))
ms=$((($(date +%s%N) - start) / 1000000))
log "PKITS: keyhold agrees on $kh_tests/$tests tests ($kh_rows/$rows settings); stock openssl on $os_tests/$tests ($os_rows/$rows); ${ms} ms"
{ [ "$tests" -eq 224 ] && [ "$rows" -eq 247 ]; } || fail "the table has $tests tests in $rows rows, not 224 in 247"
[ "$kh_tests" -ge "$os_tests" ] || fail "keyhold agrees on fewer PKITS tests ($kh_tests) than stock openssl ($os_tests)"
log "PASS"
