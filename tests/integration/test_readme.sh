#!/usr/bin/env bash
# README.md is tested as written: the code blocks between
# `<!-- test_readme:begin -->` and `<!-- test_readme:end -->` run in order
# in one directory with `keyhold` on PATH talking to this test's keyholdd.
# `sh before-start` blocks run before keyholdd starts, `ini` blocks join its
# configuration (/etc/keyhold/ standing for that directory), a block marked
# `sh expect-fail` must fail with an `error: CODE:` line, and every other
# `sh` block must succeed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/doc_lib.sh"

D="$T/doc"
mkdir -p "$T/bin" "$D"
ln -s "$KH_CLI" "$T/bin/keyhold"
export PATH="$T/bin:$PATH"

nblocks=$(doc_extract "$KH_SRC/README.md" "$T/blocks" test_readme)
[ "$nblocks" -ge 12 ] || fail "README.md has only $nblocks tested blocks"

for b in "$T"/blocks/*.pre; do [ -e "$b" ] && doc_run_block "$b" "$D" README.md; done
kh_config "$(doc_ini "$T/blocks" "$D")"
kh_start
kh_has_type p256 || fail "the README's walk-through needs p256 keys"
for b in "$T"/blocks/*; do
  case "$b" in
  *.pre | *.ini) ;;
  *) doc_run_block "$b" "$D" README.md ;;
  esac
done

# What the text claims: the exported chain is the CA's and the identity
# certificate carries the token key.
openssl verify -CAfile "$D/ca.pem" "$D/web-chain.pem" > /dev/null || fail "the exported chain does not verify"
openssl x509 -in "$D/web.crt" -pubkey -noout > "$T/cert.pub"
kh key show web --pem > "$T/key.pub"
cmp -s "$T/cert.pub" "$T/key.pub" || fail "the imported certificate is not for the trustpoint's key"
kh_stop
