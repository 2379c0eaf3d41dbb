# lib.sh: the integration-test harness. Source it from a test script run by
# ctest. Every test gets a throwaway token (SoftHSM2 with a private
# SOFTHSM2_CONF, or the TPM 2.0 token on swtpm), a keyholdd on a temp
# socket, and helpers that assert on exit codes and the CLI's error lines.
#
# Environment (set by ctest): KH_BUILD (build dir), KH_SRC (source dir),
# KH_TOKEN (softhsm | tpm), KH_STATE (sqlite | postgresql: the pg. variants).
# KH_KEEP=1 keeps the temp dir for debugging.
# shellcheck shell=bash disable=SC2034,SC2120
# (SC2034: the variables set here are for the sourcing test scripts;
# SC2120: kh_config's argument is optional.)
set -euo pipefail
# Debian's programs first: the tests use Debian's python3 with its packages
# (python3-cryptography, python3-protobuf), and a pyenv or other shim
# earlier in PATH costs ~0.3 s per python3 start (a suite starts thousands).
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

: "${KH_BUILD:?KH_BUILD must point at the build directory}"
: "${KH_SRC:?KH_SRC must point at the source directory}"
KH_TOKEN=${KH_TOKEN:-softhsm}
KEYHOLDD="$KH_BUILD/service/keyholdd"
KH_CLI="$KH_BUILD/client/keyhold"
KH_SIGNER="$KH_BUILD/tests/integration/kh_signer"
T=$(mktemp -d "${TMPDIR:-/tmp}/kh-it.XXXXXX")
SOCK="$T/keyhold.sock"
KH_PID=""
KH_SKIPS=0
export KEYHOLD_SOCKET="$SOCK"
# Sanitizer builds: SoftHSM2 and tpm2-pkcs11 leak on their own.
# tests/lsan-<token>.supp adds what only that token needs (see there).
KH_LSAN_SUPP="$KH_SRC/tests/lsan.supp"
if [ -f "$KH_SRC/tests/lsan-$KH_TOKEN.supp" ]; then
  cat "$KH_SRC/tests/lsan.supp" "$KH_SRC/tests/lsan-$KH_TOKEN.supp" > "$T/lsan.supp"
  KH_LSAN_SUPP="$T/lsan.supp"
fi
export LSAN_OPTIONS="suppressions=$KH_LSAN_SUPP:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# SoftHSM2: fast_unwind_on_malloc=0, as libcrypto has no frame pointers and
# without a full stack a SoftHSM2 leak made through it can escape the
# suppressions. Not for the TPM token: tpm2-pkcs11 and the TSS allocate so
# much that a full unwind on every malloc makes its tests ten times slower;
# its suppressions (lsan-tpm.supp) match the fast unwinder's stacks.
KH_ASAN_UNWIND=""
[ "$KH_TOKEN" = softhsm ] && KH_ASAN_UNWIND=":fast_unwind_on_malloc=0"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0$KH_ASAN_UNWIND${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
fail() {
  log "FAIL: $*"
  if [ -f "$T/keyholdd.log" ]; then
    log "---- keyholdd.log (tail) ----"
    tail -n 40 "$T/keyholdd.log" >&2 || true
  fi
  exit 1
}

# kh_on_exit FN: kh_cleanup runs FN first (what the test started besides
# keyholdd and the token: servers, accounts), in the order registered,
# before it stops keyholdd; the test's exit status is kept whatever FN
# returns.
KH_EXIT_HOOKS=()
kh_on_exit() { KH_EXIT_HOOKS+=("$1"); }

kh_cleanup() {
  local rc=$? hook
  for hook in "${KH_EXIT_HOOKS[@]}"; do "$hook" || true; done
  # A bad keyholdd exit fails the test, but the token is still torn down
  # (a TPM token is four daemons).
  kh_stop --no-fail || rc=1
  if declare -F kh_pg_cleanup > /dev/null; then kh_pg_cleanup || true; fi
  kh_token_teardown || true
  if [ "${KH_KEEP:-0}" = 1 ]; then log "kept $T"; else rm -rf "$T"; fi
  if [ "$rc" -eq 0 ] && [ "$KH_SKIPS" -gt 0 ]; then
    log "passed with $KH_SKIPS check(s) not applicable to the $KH_TOKEN token (see CAPABILITY lines)"
  fi
  exit "$rc"
}
trap kh_cleanup EXIT
# A test killed by a signal (ctest's timeout, ^C) still cleans up.
trap 'exit 143' TERM
trap 'exit 130' INT

# KH_STATE=postgresql: keyholdd keeps its state in a PostgreSQL server of
# the test's own (lib_pg.sh), started by kh_config.
if [ "${KH_STATE:-sqlite}" = postgresql ]; then
  # shellcheck source=tests/integration/lib_pg.sh
  . "$KH_SRC/tests/integration/lib_pg.sh"
fi

# kh_state_sql SQL: runs SQL on this test's state database, whichever the
# backend (sqlite3 on state_dir's file, or psql on the test's PostgreSQL);
# rows print one a line, columns separated by |. Write SQL both accept.
kh_state_sql() {
  if [ "${KH_STATE:-sqlite}" = postgresql ]; then
    kh_pg_psql -c "$1"
  else
    sqlite3 "$T/state/keyhold.db" "$1"
  fi
}
# The schema version the state database records, and setting it.
kh_state_version() {
  if [ "${KH_STATE:-sqlite}" = postgresql ]; then
    kh_pg_psql -c 'SELECT version FROM keyhold_schema'
  else
    sqlite3 "$T/state/keyhold.db" 'PRAGMA user_version'
  fi
}
kh_state_set_version() {
  if [ "${KH_STATE:-sqlite}" = postgresql ]; then
    kh_pg_psql -c "UPDATE keyhold_schema SET version = $1"
  else
    sqlite3 "$T/state/keyhold.db" "PRAGMA user_version = $1"
  fi
}

# ---- tokens ----

# Sets TOKEN_MODULE, TOKEN_URI, TOKEN_PIN_FILE, TOKEN_LABEL and exports the
# module's environment.
kh_token_setup() {
  case "$KH_TOKEN" in
  softhsm)
    "$KH_SRC/scripts/softhsm-token.sh" "$T/token" keyhold > "$T/token.ini"
    export SOFTHSM2_CONF="$T/token/softhsm2.conf"
    TOKEN_MODULE=/usr/lib/softhsm/libsofthsm2.so
    TOKEN_LABEL=keyhold
    TOKEN_URI="pkcs11:token=keyhold"
    TOKEN_PIN_FILE="$T/token/pin"
    KH_ENGINE_MODULE=$TOKEN_MODULE
    ;;
  tpm)
    # Starts swtpm + tpm2-abrmd for this test and writes $T/tpm/env.
    "$KH_SRC/scripts/tpm-token.sh" start "$T/tpm" > "$T/token.ini" || fail "cannot start the TPM token"
    # shellcheck disable=SC1091
    . "$T/tpm/env"
    TOKEN_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
    TOKEN_LABEL=keyhold
    TOKEN_URI="pkcs11:token=keyhold"
    TOKEN_PIN_FILE="$T/tpm/pin"
    # tpm2-pkcs11 cannot log in inside a process that loaded the libp11
    # engine (tpm2-tss#3151): the engine reaches it through p11-kit.
    KH_ENGINE_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
    ;;
  *) fail "unknown KH_TOKEN '$KH_TOKEN'" ;;
  esac
}

kh_token_teardown() {
  if [ "$KH_TOKEN" = tpm ] && [ -d "$T/tpm" ]; then
    "$KH_SRC/scripts/tpm-token.sh" stop "$T/tpm" || true
  fi
}

# kh_token_can FEATURE: true when this test's token supports FEATURE;
# otherwise prints a CAPABILITY line (counted, never silent) and returns 1.
#   restart  the token can be taken away and brought back while keyholdd runs
#   tokendir the token's store is a directory that can be moved away and
#            back while keyholdd runs (SoftHSM2's tokendir)
kh_token_can() {
  case "$1:$KH_TOKEN" in
  restart:tpm | tokendir:softhsm) return 0 ;;
  esac
  log "CAPABILITY: the $KH_TOKEN token cannot do '$1'; its checks do not apply"
  KH_SKIPS=$((KH_SKIPS + 1))
  return 1
}

# The TPM goes away (swtpm stops) and comes back on the same state and
# port; kh_token_broker_restart restarts tpm2-abrmd. Only after
# kh_token_can restart.
kh_token_down() { "$KH_SRC/scripts/tpm-token.sh" tpm-down "$T/tpm"; }
kh_token_up() { "$KH_SRC/scripts/tpm-token.sh" tpm-up "$T/tpm"; }
kh_token_broker_restart() { "$KH_SRC/scripts/tpm-token.sh" abrmd-restart "$T/tpm"; }

# ---- keyholdd ----

# kh_config [EXTRA_INI]: writes $T/keyhold.conf; EXTRA_INI is appended and
# may add sections or (before any section header) [service] keys.
kh_config() {
  local extra=${1:-}
  if [ "${KH_STATE:-sqlite}" = postgresql ] && [ -z "${PG_PID:-}" ]; then kh_pg_start; fi
  {
    printf '[service]\nsocket = %s\nstate_dir = %s/state\nworkers = %s\nlog_level = debug\n' \
      "$SOCK" "$T" "${KH_WORKERS:-4}"
    printf '%s\n' "${KH_SERVICE_EXTRA:-}"
    printf '[token]\nmodule = %s\nuri = %s\npin_file = %s\nsessions = %s\n' \
      "$TOKEN_MODULE" "$TOKEN_URI" "$TOKEN_PIN_FILE" "${KH_SESSIONS:-8}"
    printf '%s\n' "${KH_TOKEN_EXTRA:-}"
    printf '[access]\nadmin = uid:%s\n' "$(id -u)"
    printf '%s\n' "$extra"
    # KH_STATE=postgresql (the pg. variants): this test's own server.
    if [ "${KH_STATE:-sqlite}" = postgresql ]; then kh_pg_state_ini; fi
  } > "$T/keyhold.conf"
  mkdir -p "$T/state"
}

# Starts keyholdd in the background and waits until it answers.
# kh_answers: keyholdd answers GetStatus on $SOCK, healthy or not (health
# exits 5 both when unhealthy and when unreachable; only an answer prints
# its one line on stdout).
kh_answers() {
  # The socket test first: start-up polls would otherwise spawn a CLI (an
  # ASan binary, ~80 ms of CPU) every few milliseconds.
  [ -S "$SOCK" ] && [ -n "$("$KH_CLI" --socket "$SOCK" health 2> /dev/null)" ]
}

kh_start() {
  [ -f "$T/keyhold.conf" ] || kh_config
  "$KEYHOLDD" --config "$T/keyhold.conf" --foreground >> "$T/keyholdd.log" 2>&1 &
  KH_PID=$!
  for _ in $(seq 1 200); do
    if kh_answers; then return 0; fi
    if ! kill -0 "$KH_PID" 2>/dev/null; then
      wait "$KH_PID" || true
      KH_PID=""
      fail "keyholdd exited during start-up"
    fi
    sleep 0.05
  done
  fail "keyholdd did not answer within 10 s"
}

# Graceful stop; fails the test if keyholdd does not exit cleanly
# (--no-fail: logs it and returns 1 instead, for the clean-up path).
kh_stop() {
  [ -n "$KH_PID" ] || return 0
  local pid=$KH_PID rc=0
  KH_PID=""
  kill -TERM "$pid" 2>/dev/null || return 0
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] && return 0
  if [ "${1:-}" = --no-fail ]; then
    log "FAIL: keyholdd exited with status $rc"
    return 1
  fi
  fail "keyholdd exited with status $rc"
}

kh_restart() { kh_stop; kh_start; }

# kh ARGS...: the CLI on this test's socket.
kh() { "$KH_CLI" --socket "$SOCK" "$@"; }

# ---- assertions ----

# ok DESC CMD...: CMD must succeed.
ok() {
  local desc=$1; shift
  if ! "$@" > "$T/ok.out" 2> "$T/ok.err"; then
    cat "$T/ok.out" "$T/ok.err" >&2
    fail "$desc"
  fi
}

# kh_exit_of CODE: the exit status of the CLI for error CODE (docs/CLI.md).
kh_exit_of() {
  case $1 in
    USAGE) echo 2 ;;
    NOT_FOUND) echo 3 ;;
    PERMISSION_DENIED|UNAUTHENTICATED) echo 4 ;;
    UNAVAILABLE|DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED) echo 5 ;;
    INVALID_ARGUMENT|FAILED_PRECONDITION|OUT_OF_RANGE) echo 6 ;;
    ALREADY_EXISTS) echo 7 ;;
    *) echo 1 ;;
  esac
}

# expect_err CODE DESC CMD...: CMD must fail with "error: CODE:" on stderr
# and, when CMD is the CLI (kh, kh_as, tlskh, as_groups or $KH_CLI), the
# exit status of CODE's class.
expect_err() {
  local code=$1 desc=$2 rc=0; shift 2
  "$@" > "$T/err.out" 2> "$T/err.err" || rc=$?
  if [ "$rc" -eq 0 ]; then
    cat "$T/err.out" >&2
    fail "$desc: succeeded, expected $code"
  fi
  if ! grep -q "^error: $code: " "$T/err.err"; then
    cat "$T/err.err" >&2
    fail "$desc: expected error $code (exit $rc)"
  fi
  case $1 in kh|kh_as|tlskh|as_groups|"$KH_CLI") ;; *) return 0 ;; esac
  if [ "$rc" -ne "$(kh_exit_of "$code")" ]; then
    cat "$T/err.err" >&2
    fail "$desc: $code exited $rc, expected $(kh_exit_of "$code")"
  fi
}

# expect_rc STATUS DESC CMD...: CMD must exit with STATUS; its output in
# $T/rc.out and $T/rc.err.
expect_rc() {
  local want=$1 desc=$2 rc=0; shift 2
  "$@" > "$T/rc.out" 2> "$T/rc.err" || rc=$?
  if [ "$rc" -ne "$want" ]; then
    cat "$T/rc.out" "$T/rc.err" >&2
    fail "$desc: exit status $rc, expected $want"
  fi
}

# The token's capabilities as JSON, cached per keyholdd run.
kh_caps() { kh --json capabilities; }

# kh_has_type TYPE: true when the token offers key type TYPE; otherwise
# prints a CAPABILITY line (counted, never silent) and returns 1.
kh_has_type() {
  local t=$1
  if kh_caps | python3 -c 'import json,sys; t=sys.argv[1]; d=json.load(sys.stdin); sys.exit(0 if any(x["type"]==t and x["available"] for x in d["key_types"]) else 1)' "$t"; then
    return 0
  fi
  log "CAPABILITY: the $KH_TOKEN token does not offer $t; its checks do not apply"
  KH_SKIPS=$((KH_SKIPS + 1))
  return 1
}

# json_get EXPR: evaluates a Python expression over the JSON document on
# stdin (bound to d) and prints the result.
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); v=eval(sys.argv[1]); print(v if not isinstance(v,bool) else str(v).lower())' "$1"; }

# An OPENSSL_CONF for the libp11 engine on this test's token.
kh_engine_conf() {
  if [ "$KH_ENGINE_MODULE" != "$TOKEN_MODULE" ]; then
    log "libp11 engine: reaching the $KH_TOKEN token through $(basename "$KH_ENGINE_MODULE") (see docs/TPM.md)"
  fi
  "$KH_SRC/scripts/engine-conf.sh" "$KH_ENGINE_MODULE" > "$T/engine.cnf"
  echo "$T/engine.cnf"
}

kh_token_setup
