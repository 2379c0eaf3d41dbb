#!/usr/bin/env bash
# docs/PKI.md is tested as written: every ```sh block runs, in order, in one
# directory, with `keyhold` on PATH talking to this test's keyholdd; a block
# marked ```sh expect-fail must fail with an `error: CODE:` line. Output of
# the commands that produce certificates is then checked with openssl.
. "$(dirname "$0")/lib.sh"

kh_start
kh_has_type p256 || fail "the walk-through needs p256 keys"
kh_has_type rsa2048 || fail "the walk-through needs rsa2048 keys"
mkdir -p "$T/bin" "$T/doc"
ln -s "$KH_CLI" "$T/bin/keyhold"
export PATH="$T/bin:$PATH"

python3 - "$KH_SRC/docs/PKI.md" "$T/blocks" <<'EOF'
import os, sys
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out)
n, cur, info = 0, None, None
for line in open(src):
    s = line.rstrip("\n")
    if cur is None and s.startswith("```"):
        info = s[3:].strip().split()
        cur = []
    elif cur is not None and s.startswith("```"):
        if info and info[0] == "sh":
            n += 1
            kind = "fail" if "expect-fail" in info[1:] else "ok"
            open(os.path.join(out, "%03d.%s.sh" % (n, kind)), "w").write("\n".join(cur) + "\n")
        cur = None
    elif cur is not None:
        cur.append(s)
if cur is not None:
    sys.exit("unterminated code block in " + src)

EOF
nblocks=$(ls "$T/blocks" | wc -l)
[ "$nblocks" -ge 10 ] || fail "docs/PKI.md has only $nblocks runnable blocks"

cd "$T/doc" || fail "no $T/doc"
for b in "$T"/blocks/*.sh; do
  name=$(basename "$b")
  rc=0
  bash -euo pipefail "$b" > "$T/block.out" 2> "$T/block.err" || rc=$?
  case "$name" in
  *.fail.sh)
    if [ "$rc" -eq 0 ]; then
      cat "$b" >&2
      fail "docs/PKI.md block $name succeeded; the text says it fails"
    fi
    grep -q "^error: [A-Z_]*: " "$T/block.err" || { cat "$T/block.err" >&2; fail "block $name failed without an error line"; }
    ;;
  *)
    if [ "$rc" -ne 0 ]; then
      cat "$b" "$T/block.out" "$T/block.err" >&2
      fail "docs/PKI.md block $name failed (exit $rc)"
    fi
    ;;
  esac
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
