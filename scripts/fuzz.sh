#!/usr/bin/env bash
# Runs one libFuzzer target for a while:  scripts/fuzz.sh TARGET SECONDS [JOBS]
# Builds build-fuzz/ with clang-14 (-DKEYHOLD_FUZZ=ON: ASan + UBSan +
# libFuzzer) when needed, fuzzes from a copy of the committed corpus in
# build-fuzz/work/TARGET (new inputs land there, never in git) and prints
# libFuzzer's statistics. Crashes are written as build-fuzz/work/crash-*;
# replay one with: build-fuzz/tests/fuzz/TARGET FILE. To grow the committed
# corpus, minimise first:
#   build-fuzz/tests/fuzz/TARGET -merge=1 tests/fuzz/corpus/TARGET build-fuzz/work/TARGET
# Targets: fuzz_frame fuzz_request fuzz_body fuzz_response fuzz_audit_line fuzz_conn
# (and the others in tests/fuzz/CMakeLists.txt).
set -euo pipefail
target=${1:?usage: fuzz.sh TARGET SECONDS [JOBS]}
secs=${2:?usage: fuzz.sh TARGET SECONDS [JOBS]}
jobs=${3:-1}
src=$(cd "$(dirname "$0")/.." && pwd)
b="$src/build-fuzz"
if [ ! -f "$b/CMakeCache.txt" ]; then
  CC=clang-14 cmake -S "$src" -B "$b" -DKEYHOLD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
fi
make -C "$b" -j2 "$target" > "$b/make.log" 2>&1 || { tail -30 "$b/make.log"; exit 1; }
work="$b/work/$target"
mkdir -p "$work"
cp -n "$src/tests/fuzz/corpus/$target"/* "$work/" 2>/dev/null || true
export LSAN_OPTIONS="suppressions=$src/tests/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export KH_SRC="$src"
cd "$b/work"
par=()
[ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
exec "$b/tests/fuzz/$target" -max_total_time="$secs" -print_final_stats=1 "${par[@]}" \
  -timeout=30 -rss_limit_mb=2048 "$work"
