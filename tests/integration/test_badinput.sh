#!/usr/bin/env bash
# Bad input on a raw Unix socket against a running keyholdd (kh_badinput):
# garbage, lengths of zero and above the cap, truncated frames, unknown
# methods, malformed bodies, bad names, unknown keys and wrong digest
# lengths each get the right status code or a closed connection, and a
# second client still gets a signature that verifies.
. "$(dirname "$0")/lib.sh"

kh_start
if kh_has_type p256; then key_type=p256; else key_type=rsa2048; fi
ok "generate the check key" kh key generate good --type "$key_type"

"$KH_BUILD/tests/integration/kh_badinput" "$SOCK" good || fail "kh_badinput"

# The same service, through the CLI, with the openssl CLI verifying.
echo "still serving" > "$T/msg"
ok "CLI sign after the abuse" kh sign good --in "$T/msg" --out "$T/sig"
ok "CLI show --pem" kh key show good --pem
cp "$T/ok.out" "$T/good.pem"
openssl dgst -sha256 -verify "$T/good.pem" -signature "$T/sig" "$T/msg" > /dev/null \
  || fail "signature after the abuse does not verify"
echo "another message" > "$T/other"
if openssl dgst -sha256 -verify "$T/good.pem" -signature "$T/sig" "$T/other" > /dev/null 2>&1; then
  fail "signature verifies over the wrong message"
fi

# Every abusive connection was closed and forgotten: only the status
# call's own remains (closes are events too, so give them a moment).
for _ in $(seq 1 100); do
  n=$(kh --json status | json_get 'd["connections"]')
  [ "$n" -le 1 ] && break
  sleep 0.1
done
[ "$n" -le 1 ] || fail "$n connections still open after every abusive client closed"

kh_stop
