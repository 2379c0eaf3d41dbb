#!/usr/bin/env bash
# README.md is tested as written: the code blocks between
# `<!-- test_readme:begin -->` and `<!-- test_readme:end -->` run in order
# in one directory with `keyhold` on PATH talking to this test's keyholdd.
# `sh before-start` blocks run before keyholdd starts, `ini` blocks join its
# configuration (/etc/keyhold/ standing for that directory), a block marked
# `sh expect-fail` must fail with an `error: CODE:` line, and every other
# `sh` block must succeed.
. "$(dirname "$0")/lib.sh"

D="$T/doc"
mkdir -p "$T/bin" "$D"
ln -s "$KH_CLI" "$T/bin/keyhold"
export PATH="$T/bin:$PATH"

python3 - "$KH_SRC/README.md" "$T/blocks" <<'EOF'
import os, sys
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out)
n, cur, info, tested = 0, None, None, False
for line in open(src):
    s = line.rstrip("\n")
    if cur is None and s.strip() == "<!-- test_readme:begin -->":
        tested = True
    elif cur is None and s.strip() == "<!-- test_readme:end -->":
        tested = False
    elif cur is None and s.startswith("```"):
        info = s[3:].strip().split()
        cur = []
    elif cur is not None and s.startswith("```"):
        if tested and info and info[0] in ("sh", "ini"):
            n += 1
            if info[0] == "ini":
                kind = "ini"
            elif "expect-fail" in info[1:]:
                kind = "fail"
            elif "before-start" in info[1:]:
                kind = "pre"
            else:
                kind = "ok"
            open(os.path.join(out, "%03d.%s" % (n, kind)), "w").write("\n".join(cur) + "\n")
        cur = None
    elif cur is not None:
        cur.append(s)
if cur is not None or tested:
    sys.exit("unterminated code block or test_readme region in " + src)
EOF
nblocks=$(find "$T/blocks" -type f | wc -l)
[ "$nblocks" -ge 12 ] || fail "README.md has only $nblocks tested blocks"

# run_block FILE: runs one sh block in $D; checks the expectation.
run_block() {
  local b=$1 name rc=0
  name=$(basename "$b")
  (cd "$D" && bash -euo pipefail "$b") > "$T/block.out" 2> "$T/block.err" || rc=$?
  case "$name" in
  *.fail)
    if [ "$rc" -eq 0 ]; then
      cat "$b" >&2
      fail "README.md block $name succeeded; the text says it fails"
    fi
    grep -q "^error: [A-Z_]*: " "$T/block.err" || { cat "$T/block.err" >&2; fail "block $name failed without an error line"; }
    ;;
  *)
    if [ "$rc" -ne 0 ]; then
      cat "$b" "$T/block.out" "$T/block.err" >&2
      fail "README.md block $name failed (exit $rc)"
    fi
    ;;
  esac
}

for b in "$T"/blocks/*.pre; do [ -e "$b" ] && run_block "$b"; done
extra=""
for b in "$T"/blocks/*.ini; do
  [ -e "$b" ] || continue
  extra="$extra$(sed "s|/etc/keyhold/|$D/|g" "$b")"$'\n'
done
kh_config "$extra"
kh_start
kh_has_type p256 || fail "the README's walk-through needs p256 keys"
for b in "$T"/blocks/*; do
  case "$b" in
  *.pre | *.ini) ;;
  *) run_block "$b" ;;
  esac
done

# What the text claims: the exported chain is the CA's and the identity
# certificate carries the token key.
openssl verify -CAfile "$D/ca.pem" "$D/web-chain.pem" > /dev/null || fail "the exported chain does not verify"
openssl x509 -in "$D/web.crt" -pubkey -noout > "$T/cert.pub"
kh key show web --pem > "$T/key.pub"
cmp -s "$T/cert.pub" "$T/key.pub" || fail "the imported certificate is not for the trustpoint's key"
kh_stop
