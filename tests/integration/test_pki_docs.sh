#!/usr/bin/env bash
# docs/PKI.md is tested as written: every ```sh block runs, in order, in one
# directory, with `keyhold` on PATH talking to this test's keyholdd; a block
# marked ```sh expect-fail must fail with an `error: CODE:` line. Output of
# the commands that produce certificates is then checked with openssl.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/doc_lib.sh"

kh_start
kh_has_type p256 || fail "the walk-through needs p256 keys"
kh_has_type rsa2048 || fail "the walk-through needs rsa2048 keys"
mkdir -p "$T/bin" "$T/doc"
ln -s "$KH_CLI" "$T/bin/keyhold"
export PATH="$T/bin:$PATH"

nblocks=$(doc_extract "$KH_SRC/docs/PKI.md" "$T/blocks")
[ "$nblocks" -ge 10 ] || fail "docs/PKI.md has only $nblocks runnable blocks"

cd "$T/doc" || fail "no $T/doc"
for b in "$T"/blocks/*; do
  case "$b" in *.ok | *.fail) doc_run_block "$b" "$T/doc" docs/PKI.md ;; esac
done

# What the walk-through claims, checked.
grep -q "verify OK" <(openssl req -in web.csr -verify -noout 2>&1) || fail "web.csr does not verify"
openssl verify -CAfile ca.pem web.pem > /dev/null || fail "the exported web.pem does not verify"
[ "$(openssl pkcs7 -in web.p7b -print_certs | grep -c 'BEGIN CERTIFICATE')" = 2 ] || fail "web.p7b does not hold the chain"
# The rollover moved web to web.1 and deleted the old key.
keyhold --json trustpoint show web > show.json
[ "$(json_get 'd["key"]' < show.json)" = web.1 ] || fail "the rollover did not move web to web.1"
if keyhold key show web > /dev/null 2>&1; then fail "the old key survived the rollover"; fi
# lab was deleted with its key.
if keyhold trustpoint show lab > /dev/null 2>&1; then fail "lab still exists"; fi
if keyhold key show lab.1 > /dev/null 2>&1; then fail "lab's key survived the trustpoint"; fi
cd / || exit 1
kh_stop
