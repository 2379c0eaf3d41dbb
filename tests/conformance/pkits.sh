#!/usr/bin/env bash
# pkits.sh: the NIST PKITS conformance run (RFC 5280 §6 path validation).
# Every test of tests/conformance/pkits_expected.tsv goes through one
# keyholdd (`keyhold truststore verify` against a trust store holding the
# PKITS trust anchor, with the row's policy settings) and through stock
# `openssl verify -x509_strict -policy_check -extended_crl -use_deltas
# -crl_check_all` with the same inputs and settings. A test counts when
# every row of it agrees with the expected result. Fails when keyhold
# agrees on fewer tests than stock OpenSSL, or when an input is missing.
# Data: python3-cryptography-vectors (scripts/install-deps.sh).
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

kh_start
ok "trust store with the PKITS anchor" kh truststore add pkits "$T/ta.pem"
# PKITS keys are RSA and DSA 1024, its DSA signatures SHA-1: the per-store
# floor is lowered for exactly this store (docs/PKI.md).
ok "PKITS key floor" kh truststore set pkits --min-rsa-bits 1024 --allow-sha1 on

# One row: both verifiers, run side by side. Prints "ID<TAB>NAME<TAB>keyhold
# agrees (1/0)<TAB>openssl agrees<TAB>what disagreed".
run_row() {
  local id=$1 expect=$2 name=$3 opts=$4 d o c kh_rc=0 os_rc=0 kh_got os_got why=""
  local -a kh_args os_args
  d="$T/in/${name//[ -]/}"
  kh_args=(truststore verify pkits "$d/leaf.pem")
  os_args=(verify -x509_strict -policy_check -extended_crl -use_deltas -crl_check_all -CAfile "$T/ta.pem")
  if [ -s "$d/untrusted.pem" ]; then
    kh_args+=(--untrusted "$d/untrusted.pem")
    os_args+=(-untrusted "$d/untrusted.pem")
  fi
  for c in "$d"/crl-*.pem; do
    [ -f "$c" ] || continue
    kh_args+=(--crl "$c")
    os_args+=(-CRLfile "$c")
  done
  for o in $opts; do
    case "$o" in
    policy=*) kh_args+=(--policy "${o#policy=}"); os_args+=(-policy "${o#policy=}") ;;
    explicit) kh_args+=(--require-explicit-policy); os_args+=(-explicit_policy) ;;
    inhibit_map) kh_args+=(--inhibit-policy-mapping); os_args+=(-inhibit_map) ;;
    inhibit_any) kh_args+=(--inhibit-any-policy); os_args+=(-inhibit_any) ;;
    *) printf '%s\t%s\t0\t0\tunknown setting %s\n' "$id" "$name" "$o"; return ;;
    esac
  done
  os_args+=("$d/leaf.pem")
  kh "${kh_args[@]}" > "$d/kh.$id.out" 2> "$d/kh.$id.err" &
  local kh_pid=$!
  openssl "${os_args[@]}" > "$d/os.$id.out" 2>&1 || os_rc=$?
  wait "$kh_pid" || kh_rc=$?
  if [ "$kh_rc" -eq 0 ]; then
    kh_got=valid
  elif grep -q "certificate chain is not valid" "$d/kh.$id.err"; then
    kh_got=invalid
  else
    kh_got="error"
  fi
  if [ "$os_rc" -eq 0 ]; then os_got=valid; else os_got=invalid; fi
  [ "$kh_got" = "$expect" ] ||
    why+="keyhold: expected $expect, got $kh_got: $(head -c 400 "$d/kh.$id.err" | tr '\n\t' '  ') "
  [ "$os_got" = "$expect" ] ||
    why+="openssl: expected $expect, got $os_got: $(grep -m1 -o 'error [0-9]*.*' "$d/os.$id.out" | tr '\t' ' ') "
  printf '%s\t%s\t%d\t%d\t%s\n' "$id" "$name" "$([ "$kh_got" = "$expect" ] && echo 1 || echo 0)" \
    "$([ "$os_got" = "$expect" ] && echo 1 || echo 0)" "$why"
}

# Two streams of rows at once (rows are independent; keyholdd serves both).
run_stream() {
  local k=$1 n=0 id expect name opts
  while IFS=$'\t' read -r id expect name opts; do
    [[ "$id" == \#* || -z "$id" ]] && continue
    n=$((n + 1))
    [ $((n % 2)) -eq "$k" ] || continue
    run_row "$id" "$expect" "$name" "$opts"
  done < "$TABLE"
}
run_stream 0 > "$T/res.0" &
s0=$!
run_stream 1 > "$T/res.1" &
s1=$!
wait "$s0" || fail "a stream of PKITS rows failed"
wait "$s1" || fail "a stream of PKITS rows failed"

rows=0 kh_rows=0 os_rows=0
declare -A kh_bad=() os_bad=() seen=()
while IFS=$'\t' read -r id name kh_ok os_ok why; do
  rows=$((rows + 1))
  seen[$name]=1
  if [ "$kh_ok" = 1 ]; then kh_rows=$((kh_rows + 1)); else kh_bad[$name]=1; fi
  if [ "$os_ok" = 1 ]; then os_rows=$((os_rows + 1)); else os_bad[$name]=1; fi
  [ -z "$why" ] || log "$id $name: $why"
done < <(cat "$T/res.0" "$T/res.1")

tests=${#seen[@]}
kh_tests=$((tests - ${#kh_bad[@]}))
os_tests=$((tests - ${#os_bad[@]}))
ms=$((($(date +%s%N) - start) / 1000000))
log "PKITS: keyhold agrees on $kh_tests/$tests tests ($kh_rows/$rows settings); stock openssl on $os_tests/$tests ($os_rows/$rows); ${ms} ms"
{ [ "$tests" -eq 224 ] && [ "$rows" -eq 247 ]; } || fail "the table has $tests tests in $rows rows, not 224 in 247"
[ "$kh_tests" -ge "$os_tests" ] || fail "keyhold agrees on fewer PKITS tests ($kh_tests) than stock openssl ($os_tests)"
log "PASS"
