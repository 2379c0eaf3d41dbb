# doc_lib.sh: runs the code blocks of a Markdown document as a test (source
# after lib.sh). A ```sh block must succeed; ```sh expect-fail must fail
# with an `error: CODE:` line; ```sh before-start runs before keyholdd
# starts; an ```ini block joins keyholdd's configuration. Other blocks
# (```text, ```, ```ini meant for reading) are prose.
# shellcheck shell=bash

# doc_extract DOC OUTDIR [REGION]: writes the blocks of DOC, in order, as
# OUTDIR/NNN.{ok,fail,pre,ini}; with REGION, only the blocks between
# `<!-- REGION:begin -->` and `<!-- REGION:end -->` lines. Prints the count.
doc_extract() {
  python3 - "$1" "$2" "${3:-}" <<'PY'
import os, sys
src, out, region = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
n, cur, info, inside = 0, None, None, not region
for line in open(src):
    s = line.rstrip("\n")
    if cur is None and region and s.strip() == "<!-- %s:begin -->" % region:
        inside = True
    elif cur is None and region and s.strip() == "<!-- %s:end -->" % region:
        inside = False
    elif cur is None and s.startswith("```"):
        info = s[3:].strip().split()
        cur = []
    elif cur is not None and s.startswith("```"):
        if inside and info and info[0] in ("sh", "ini"):
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
if cur is not None or (region and inside):
    sys.exit("unterminated code block or region in " + src)
print(n)
PY
}

# doc_run_block FILE DIR DOCNAME: runs one block in DIR with bash -euo
# pipefail and checks it against its kind (.fail must fail with an error
# line; every other must succeed).
doc_run_block() {
  local b=$1 dir=$2 doc=$3 name rc=0
  name=$(basename "$b")
  (cd "$dir" && bash -euo pipefail "$b") > "$T/block.out" 2> "$T/block.err" || rc=$?
  case "$name" in
  *.fail)
    if [ "$rc" -eq 0 ]; then
      cat "$b" >&2
      fail "$doc block $name succeeded; the text says it fails"
    fi
    grep -q "^error: [A-Z_]*: " "$T/block.err" || { cat "$T/block.err" >&2; fail "$doc block $name failed without an error line"; }
    ;;
  *)
    if [ "$rc" -ne 0 ]; then
      cat "$b" "$T/block.out" "$T/block.err" >&2
      fail "$doc block $name failed (exit $rc)"
    fi
    ;;
  esac
}

# doc_ini BLOCKDIR DIR: the ini blocks joined, /etc/keyhold/ meaning DIR.
doc_ini() {
  local b extra=""
  for b in "$1"/*.ini; do
    [ -e "$b" ] || continue
    extra="$extra$(sed "s|/etc/keyhold/|$2/|g" "$b")"$'\n'
  done
  printf '%s' "$extra"
}
