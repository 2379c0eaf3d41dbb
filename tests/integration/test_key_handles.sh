#!/usr/bin/env bash
# Deleting a key must never make a later key share another key's object
# handles. tpm2-pkcs11 1.9 hands out an existing object's handles after a
# deletion; keyhold must notice and recover, so that every name keeps
# signing with its own key. Runs on every token.
. "$(dirname "$0")/lib.sh"

kh_start
kh_has_type p256 || exit 0
echo "handle reuse" > "$T/msg"
for k in h1 h2 h3; do ok "generate $k" kh key generate "$k" --type p256; done
ok "delete h1" kh key delete h1 --force
ok "generate h4" kh --json key generate h4 --type p256
[ "$(json_get 'd["name"]' < "$T/ok.out")" = h4 ] || fail "GenerateKey h4 described another key"
# Each name signs with its own key: verify against each one's own SPKI,
# and check that the two keys differ.
for k in h2 h3 h4; do
  ok "pem $k" kh key show "$k" --pem
  cp "$T/ok.out" "$T/$k.pem"
  ok "sign $k" kh sign "$k" --in "$T/msg" --out "$T/$k.sig"
  openssl dgst -sha256 -verify "$T/$k.pem" -signature "$T/$k.sig" "$T/msg" > /dev/null \
    || fail "$k does not sign with its own key"
done
cmp -s "$T/h3.pem" "$T/h4.pem" && fail "h3 and h4 have the same public key"
if openssl dgst -sha256 -verify "$T/h3.pem" -signature "$T/h4.sig" "$T/msg" > /dev/null 2>&1; then
  fail "h4 signed with h3's key"
fi
ok "list" kh --json key list
[ "$(json_get '",".join(sorted(k["name"] for k in d["keys"] if k["name"].startswith("h")))' < "$T/ok.out")" = "h2,h3,h4" ] \
  || fail "key list after the deletion: $(cat "$T/ok.out")"
# Deleting the generated key again works and leaves the others intact.
ok "delete h4" kh key delete h4 --force
ok "h3 still signs" kh sign h3 --in "$T/msg" --out "$T/h3b.sig"
openssl dgst -sha256 -verify "$T/h3.pem" -signature "$T/h3b.sig" "$T/msg" > /dev/null || fail "h3 broke after deleting h4"
kh_stop
