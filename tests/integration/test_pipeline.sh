#!/usr/bin/env bash
# 64-request pipelined bursts on one connection through libkeyhold
# (kh_burst): for an RSA-2048 and a P-256 key, then a mixed burst of RSA
# and EC keys, digests, PSS and prehashed inputs with failing requests in
# between; every answer is matched by id and every signature verified.
. "$(dirname "$0")/lib.sh"

kh_start
keys=()
for t in rsa2048 p256; do
  if kh_has_type "$t"; then
    ok "generate $t" kh key generate "burst-$t" --type "$t"
    keys+=("burst-$t")
  fi
done
[ ${#keys[@]} -gt 0 ] || fail "the token offers neither rsa2048 nor p256"
if [ "$(kh_caps | json_get 'd["pss"]')" != true ]; then
  log "CAPABILITY: the $KH_TOKEN token has no RSA-PSS; the mixed burst uses PKCS#1 v1.5 only"
  KH_SKIPS=$((KH_SKIPS + 1))
  export KH_NO_PSS=1
fi

"$KH_BUILD/tests/integration/kh_burst" "$SOCK" "${keys[@]}" || fail "kh_burst"

# A burst that must fail: a negative twin for the checks above (a key the
# driver cannot find makes it exit non-zero).
if "$KH_BUILD/tests/integration/kh_burst" "$SOCK" no-such-key > "$T/neg.log" 2>&1; then
  fail "kh_burst succeeded with a key that does not exist"
fi

kh_stop
