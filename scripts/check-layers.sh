#!/usr/bin/env bash
# check-layers.sh: keeps the folders of service/ acyclic (DESIGN §1: no
# cycles between service folders). The layers are listed once, bottom to
# top, in the comment at the top of service/CMakeLists.txt, each with the
# folders it uses; this checks that every folder uses only folders listed
# above it (so the list itself has no cycle), that every folder of service/
# is listed, and that every `#include "X/..."` in service/ is one of its
# folder's listed uses. Calls follow the includes: a function is declared
# in the header beside its source, and -Werror refuses an undeclared one.
# Exits non-zero naming each offending line.
set -euo pipefail

cd "$(dirname "$0")/.."
list=service/CMakeLists.txt
bad=0

# The list: "#   NAME/   what it holds; uses: A B C" (or "uses: nothing").
declare -A rank uses
n=0
while IFS= read -r line; do
  name=${line#\#}
  name=${name#"${name%%[! ]*}"}
  name=${name%%/*}
  used=${line##*uses:}
  [ "$used" = " nothing" ] && used=""
  rank[$name]=$n
  uses[$name]=" $used "
  for u in $used; do
    if [ -z "${rank[$u]:-}" ] || [ "${rank[$u]}" -ge "$n" ]; then
      echo "$list: $name/ uses $u/, which is not listed above it" >&2
      bad=1
    fi
  done
  n=$((n + 1))
done < <(grep -E '^#   [a-z]+/ .*; uses:' "$list")
[ "$n" -gt 0 ] || { echo "$list: no layer list found" >&2; exit 1; }

for d in service/*/; do
  d=${d#service/}
  d=${d%/}
  if [ -z "${rank[$d]:-}" ]; then
    echo "service/$d/ is not in the layer list of $list" >&2
    bad=1
  fi
done

# Every include of another folder must be one of the listed uses.
while IFS=: read -r file lineno text; do
  from=${file#service/}
  from=${from%%/*}
  to=${text#*\"}
  to=${to%%/*}
  [ "$from" = "$to" ] && continue
  [ -n "${rank[$from]:-}" ] || continue   # reported above
  case ${uses[$from]} in
    *" $to "*) ;;
    *)
      echo "$file:$lineno: $from/ includes $to/, not among its uses in $list" >&2
      bad=1
      ;;
  esac
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[a-z_]+/' service --include='*.c' --include='*.h')

if [ "$bad" -ne 0 ]; then
  echo "layering broken; see the list at the top of $list" >&2
  exit 1
fi
echo "acyclic: $n layers, every include downwards"
