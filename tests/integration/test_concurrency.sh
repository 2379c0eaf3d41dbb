#!/usr/bin/env bash
# Many clients at once: 4 libkeyhold clients x 200 signatures (P-256 and
# RSA-2048 in turn, distinct messages), every signature verified with the
# openssl CLI against its own message, none against another's. The session
# pool is sized by config and the token's ulMaxSessionCount, and its
# sessions are opened one at a time (tpm2-pkcs11 races otherwise), here
# with more sessions than clients.
. "$(dirname "$0")/lib.sh"

KH_SESSIONS=16
kh_start

ok "status" kh --json status
max=$(json_get 'd["token"]["max_sessions"]' < "$T/ok.out")
sessions=$(json_get 'd["token"]["sessions"]' < "$T/ok.out")
want=$KH_SESSIONS
if [ "$max" -ne 0 ] && [ "$max" -lt "$want" ]; then want=$max; fi
[ "$sessions" -eq "$want" ] || fail "pool has $sessions sessions; config $KH_SESSIONS, token max $max"
log "session pool: $sessions (config $KH_SESSIONS, token max ${max/#0/unlimited})"

keys=()
for type in p256 rsa2048; do
  kh_has_type "$type" || continue
  ok "generate $type" kh key generate "c-$type" --type "$type"
  ok "show $type" kh key show "c-$type" --pem
  cp "$T/ok.out" "$T/c-$type.pem"
  keys+=("c-$type")
done
[ ${#keys[@]} -gt 0 ] || fail "the token offers neither p256 nor rsa2048"

threads=4 per=200
mkdir -p "$T/sigs"
klist=$(IFS=,; echo "${keys[*]}")
"$KH_SIGNER" "$SOCK" "$klist" "$threads" "$per" "$T/sigs" > "$T/signer.out" 2> "$T/signer.err" \
  || { cat "$T/signer.err" >&2; fail "concurrent signing failed"; }
log "$(cat "$T/signer.out")"

# Every signature verifies over its own message with its key's SPKI.
n=0 bad=0
for sig in "$T"/sigs/*.sig; do
  base=${sig%.sig}
  key=$(cat "$base.key")
  if ! openssl dgst -sha256 -verify "$T/$key.pem" -signature "$sig" "$base.msg" > /dev/null 2>&1; then
    bad=$((bad + 1))
    log "does not verify: $(basename "$sig") ($key)"
  fi
  n=$((n + 1))
done
[ "$n" -eq $((threads * per)) ] || fail "$n signatures written, expected $((threads * per))"
[ "$bad" -eq 0 ] || fail "$bad of $n signatures made concurrently do not verify"

# Negative twins: a signature must not verify over another client's
# message or another message of the same client (so a swapped answer would
# have been caught above).
for pair in "0.7 2.7" "1.5 3.5" "0.10 0.11" "1.199 1.198"; do
  # shellcheck disable=SC2086
  set -- $pair  # two words: signature and message
  key=$(cat "$T/sigs/$1.key")
  if openssl dgst -sha256 -verify "$T/$key.pem" -signature "$T/sigs/$1.sig" "$T/sigs/$2.msg" > /dev/null 2>&1; then
    fail "signature $1 verified over message $2"
  fi
done

# The pool survived: nothing was lost or leaked.
ok "status after" kh --json status
[ "$(json_get 'd["token"]["sessions"]' < "$T/ok.out")" -eq "$sessions" ] || fail "session pool changed size"

kh_stop
