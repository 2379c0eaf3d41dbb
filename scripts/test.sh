#!/usr/bin/env bash
# test.sh: what CI runs (.ci/run). Installs the packages; checks the
# sources for banned functions and the shell scripts with shellcheck;
# builds with gcc under ASan+UBSan with -Werror and the tests (build/test)
# and runs every test there; checks that clang-14 builds the tree with
# -Werror too, the fuzz targets as libFuzzer binaries (build/clang), and
# replays the fuzz corpora through them; runs the benchmark for a few
# seconds.
# Exits non-zero on the first failure.
set -euo pipefail
# Debian's programs first (tests/integration/lib.sh says why).
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
T0=$(date +%s)

step() { printf '\n==== %s (%ss)\n' "$*" "$(($(date +%s) - T0))"; }

# configure DIR COMPILER ARGS...: a build directory made with another
# compiler is started afresh (CMake ignores CC once it has a cache).
configure() {
  local dir=$1 cc; cc=$(command -v "$2"); shift 2
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -qx "CMAKE_C_COMPILER:[A-Z]*=$cc" "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  CC=$cc cmake -S . -B "$dir" "$@" > /dev/null
}

step "dependencies"
scripts/install-deps.sh

# Non-test C sources (git's list when there is one, so build dirs and
# generated code are never scanned).
c_sources() {
  if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    git ls-files '*.c' '*.h' | grep -v '^tests/'
  else
    find . -path ./build -prune -o -path ./tests -prune -o \( -name '*.c' -o -name '*.h' \) -print | sed 's|^\./||' \
      | grep -v '\.pb-c\.[ch]$'
  fi
}

step "banned functions (STYLE.md: sprintf strcpy strcat strncpy strtok atoi sscanf gets alloca)"
# VLAs are caught by -Wvla with -Werror in both builds below.
mapfile -t srcs < <(c_sources)
[ ${#srcs[@]} -gt 0 ] || { echo "no C sources found" >&2; exit 1; }
if grep -nE '\b(sprintf|strcpy|strcat|strncpy|strtok|atoi|sscanf|gets|alloca)[[:space:]]*\(' "${srcs[@]}"; then
  echo "banned function(s) above; see STYLE.md \"Untrusted input\"" >&2
  exit 1
fi
echo "none in ${#srcs[@]} files"

step "shellcheck"
mapfile -t shs < <(ls scripts/*.sh tests/integration/*.sh tests/conformance/*.sh .ci/run debian/*.postinst \
  debian/*.postrm dist/keyhold.bash-completion 2> /dev/null)
shellcheck -S warning "${shs[@]}"
echo "clean: ${#shs[@]} scripts"

step "service layers (no cycles between service/ folders; the list in service/CMakeLists.txt)"
scripts/check-layers.sh

step "gcc: ASan+UBSan, -Werror, tests (build/test)"
# KH_PG_TESTS: which integration tests also run on the postgresql state
# backend (tests/integration/CMakeLists.txt; CI: its default few, to stay in
# time; KH_PG_TESTS=all scripts/test.sh: the whole suite on PostgreSQL too).
pg_tests=(-UKH_PG_TESTS)
[ -n "${KH_PG_TESTS+set}" ] && pg_tests=("-DKH_PG_TESTS=$KH_PG_TESTS")
configure build/test gcc -DKEYHOLD_SANITIZE=ON -DKEYHOLD_TESTING=ON -DKEYHOLD_WERROR=ON "${pg_tests[@]}"
cmake --build build/test -j "$JOBS" > build/test.log 2>&1 || { tail -n 60 build/test.log >&2; exit 1; }
echo "ok"

# One clang build does two jobs: clang-14 compiles the whole tree (and the
# tests) with -Werror, and the fuzz targets become libFuzzer binaries.
step "clang-14: -Werror, tests and libFuzzer targets compiled (build/clang)"
configure build/clang clang-14 -DKEYHOLD_TESTING=ON -DKEYHOLD_FUZZ=ON -DKEYHOLD_WERROR=ON
cmake --build build/clang -j "$JOBS" > build/clang.log 2>&1 || { tail -n 60 build/clang.log >&2; exit 1; }
echo "ok"

step "ctest (build/test, $JOBS at a time; every test has its own token, socket and servers)"
# Most integration tests wait on processes more than they compute, so two
# run side by side; the ones that measure time, memory, descriptors or
# load are RUN_SERIAL (tests/CMakeLists.txt: kh_integration_test SERIAL).
# CTEST_ARGS: extra ctest arguments, split on spaces (e.g. "-L unit").
# shellcheck disable=SC2086
(cd build/test && ctest --output-on-failure -j "$JOBS" ${CTEST_ARGS:-})

# A few seconds of the benchmark (docs/PERFORMANCE.md): it runs, and every
# signature it made verifies. The sanitizer build's binaries; leaks are the
# test suite's business (the direct peer loads SoftHSM2 in-process).
step "benchmark smoke run (scripts/bench.sh --quick, build/test)"
ASAN_OPTIONS=detect_leaks=0 scripts/bench.sh --quick --build build/test

# The corpora replayed by the libFuzzer binaries themselves (the gcc build
# above replayed them through its replay mains).
step "fuzz corpus replay, libFuzzer binaries (build/clang)"
(cd build/clang && ctest --output-on-failure -L fuzz)

step "all passed in $(($(date +%s) - T0)) s"
