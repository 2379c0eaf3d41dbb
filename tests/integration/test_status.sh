#!/usr/bin/env bash
# GetStatus answers from the token information and key listing keyholdd
# last read (at most 2 s old, read again in the background), so that
# status probes never queue behind token calls. Changes made through
# keyholdd show at once; a key created or deleted on the token behind
# keyholdd's back (pkcs11-tool against the real module) shows within a
# few seconds. Orphaned keys follow the same listing.
. "$(dirname "$0")/lib.sh"

kh_start
TYPE=p256
kh_has_type p256 || TYPE=rsa2048

status_keys() { kh --json status | json_get 'd["keys"]'; }

ok "first status" kh --json status
n0=$(json_get 'd["keys"]' < "$T/ok.out")
[ -n "$n0" ] || fail "status has no key count: $(cat "$T/ok.out")"

# Through keyholdd: every status after the change sees it.
ok "generate st1" kh key generate st1 --type "$TYPE"
for i in 1 2 3; do
  [ "$(status_keys)" -eq $((n0 + 1)) ] || fail "status $i after generating st1 does not count it"
done
ok "delete st1" kh key delete st1 --force
[ "$(status_keys)" -eq "$n0" ] || fail "status after deleting st1 still counts it"

# wait_keys N: status counts N keys within 6 s (the listing is at most
# 2 s old and is read again once it is 1 s old); WAITED: the seconds taken.
wait_keys() {
  local want=$1 start=$SECONDS
  while [ $((SECONDS - start)) -le 6 ]; do
    if [ "$(status_keys)" -eq "$want" ]; then
      WAITED=$((SECONDS - start))
      return 0
    fi
    sleep 0.2
  done
  fail "status did not count $want keys within 6 s (counts $(status_keys))"
}

# Behind keyholdd's back, on the token itself.
p11() {
  pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" --login --pin "$(cat "$TOKEN_PIN_FILE")" "$@"
}
case "$TYPE" in
p256) kt=EC:prime256v1 ;;
*) kt=rsa:2048 ;;
esac
p11 --keypairgen --key-type "$kt" --label ext1 --id 0e1f > "$T/p11gen.out" 2>&1 \
  || fail "pkcs11-tool cannot create a key on the token: $(cat "$T/p11gen.out")"
wait_keys $((n0 + 1))
log "a key created behind keyholdd's back counted after ${WAITED}s"
p11 --delete-object --type privkey --label ext1 > "$T/p11del.out" 2>&1 \
  || fail "pkcs11-tool cannot delete the key: $(cat "$T/p11del.out")"
wait_keys "$n0"
log "a key deleted behind keyholdd's back dropped after ${WAITED}s"
p11 --delete-object --type pubkey --label ext1 > /dev/null 2>&1 || true

# A key that has been listed and is then used by name is unaffected.
ok "generate st2" kh key generate st2 --type "$TYPE"
echo "status cache" > "$T/msg"
ok "sign st2" kh sign st2 --in "$T/msg" --out "$T/st2.sig"
ok "st2 pem" kh key show st2 --pem
openssl dgst -sha256 -verify "$T/ok.out" -signature "$T/st2.sig" "$T/msg" > /dev/null || fail "st2's signature does not verify"
[ "$(status_keys)" -eq $((n0 + 1)) ] || fail "status does not count st2"

# Status probes in a tight loop from several clients while keys come and
# go: every answer is whole, and the final count is right.
probes=()
for _ in 1 2 3; do
  (for _ in $(seq 40); do kh --json status > /dev/null || exit 1; done) &
  probes+=($!)
done
for k in st3 st4 st5; do ok "generate $k" kh key generate "$k" --type "$TYPE"; done
ok "delete st4" kh key delete st4 --force
wait_all_ok=0
for p in "${probes[@]}"; do wait "$p" || wait_all_ok=1; done
[ "$wait_all_ok" = 0 ] || fail "a status probe failed while keys changed"
[ "$(status_keys)" -eq $((n0 + 3)) ] || fail "status after the loop counts $(status_keys), want $((n0 + 3))"
kh_stop
