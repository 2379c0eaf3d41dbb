#!/usr/bin/env bash
# docs/REVOCATION.md is tested as written: `sh before-start` blocks run
# before keyholdd starts, `ini` blocks join its configuration (with
# /etc/keyhold/ meaning the walk-through's directory), then every other
# `sh` block runs in order in that directory with `keyhold` on PATH; a
# block marked `sh expect-fail` must fail with an `error: CODE:` line.
# $CRL_DIR/$CRL_BASE and $OCSP_URL are loopback servers (rev_server.py:
# the CRL directory, and openssl ocsp over the walk-through's CA files).
# What the text claims is then checked with openssl and the hook's log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/revocation_lib.sh"

D="$REV_CAS/doc"
mkdir -p "$T/bin" "$D"
ln -s "$KH_CLI" "$T/bin/keyhold"
export PATH="$T/bin:$PATH"

python3 - "$KH_SRC/docs/REVOCATION.md" "$T/blocks" <<'EOF'
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
        if info and info[0] in ("sh", "ini"):
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
if cur is not None:
    sys.exit("unterminated code block in " + src)
EOF
nblocks=$(ls "$T/blocks" | wc -l)
[ "$nblocks" -ge 12 ] || fail "docs/REVOCATION.md has only $nblocks runnable blocks"

# run_block FILE: runs one sh block in $D; checks the expectation.
run_block() {
  local b=$1 name rc=0
  name=$(basename "$b")
  (cd "$D" && bash -euo pipefail "$b") > "$T/block.out" 2> "$T/block.err" || rc=$?
  case "$name" in
  *.fail)
    if [ "$rc" -eq 0 ]; then
      cat "$b" >&2
      fail "docs/REVOCATION.md block $name succeeded; the text says it fails"
    fi
    grep -q "^error: [A-Z_]*: " "$T/block.err" || { cat "$T/block.err" >&2; fail "block $name failed without an error line"; }
    ;;
  *)
    if [ "$rc" -ne 0 ]; then
      cat "$b" "$T/block.out" "$T/block.err" >&2
      fail "docs/REVOCATION.md block $name failed (exit $rc)"
    fi
    ;;
  esac
}

rev_up crl
rev_up ocsp
export CRL_DIR="$REV_WWW" CRL_BASE="http://127.0.0.1:$CRL_PORT" OCSP_URL="http://127.0.0.1:$OCSP_PORT/ocsp/doc"
for b in "$T"/blocks/*.pre; do run_block "$b"; done
extra=""
for b in "$T"/blocks/*.ini; do extra="$extra$(sed "s|/etc/keyhold/|$D/|g" "$b")"$'\n'; done
[ -n "$extra" ] || fail "docs/REVOCATION.md has no ini block"
kh_config "$extra"
kh_start
kh_has_type p256 || fail "the walk-through needs p256 keys"
for b in "$T"/blocks/*; do
  case "$b" in *.ok | *.fail) run_block "$b" ;; esac
done

# What the walk-through claims, checked.
cd "$D" || fail "no $D"
openssl verify -CAfile ca.pem www.pem > /dev/null || fail "www.pem does not verify"
openssl crl -inform DER -in "$CRL_DIR/partner.crl" -noout -text | grep -q "Key Compromise" || fail "the CRL lacks api"
openssl ocsp -issuer ca.pem -cert api.pem -url "$OCSP_URL" -CAfile ca.pem 2> /dev/null | grep -q "api.pem: revoked" \
  || fail "the responder does not say api is revoked"
[ "$(wc -l < notices.log)" = 1 ] || { cat notices.log; fail "the hook ran $(wc -l < notices.log) times, not once"; }
[ "$(cat notices.log)" = "pki-team@example.com|expiring|CN=Old Partner CA|truststore:legacy" ] \
  || fail "notices.log is not as the text says: $(cat notices.log)"
keyhold --json trustpoint show lab > lab.json
[ "$(json_get 'd["renew_at"]' < lab.json)" = 50 ] && [ "$(json_get 'd["renew_regenerate"]' < lab.json)" = true ] \
  || fail "lab's renewal settings"
keyhold --json trustpoint show edge > edge.json
[ "$(json_get 'd["revocation"]' < edge.json)" = crl,ocsp,none ] || fail "edge's revocation policy"
keyhold --json truststore list partners > partners.json
[ "$(json_get 'd["stores"][0]["revocation"]' < partners.json)" = ocsp,crl ] || fail "the partners policy"
grep -q "certificate expires in" "$T/keyholdd.log" || fail "the log lacks the notice"
cd / || exit 1
kh_stop
