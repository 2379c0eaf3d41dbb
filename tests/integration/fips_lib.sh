# fips_lib.sh: helpers for the FIPS integration tests; source it after
# lib.sh. Every test runs its own copy of keyholdd with its own integrity
# sidecar (keyholdd --fips-install), so the build tree is never touched.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this

# The power-up registry, in order (DESIGN §8); FIPS_VECTORS[i] is how many
# vectors/checks entry i lets KEYHOLD_TEST_CORRUPT=<id>:<n> corrupt.
FIPS_IDS=(hmac-sha256-kat software-integrity sha2-kat sigver-kat drbg-kat critical-functions
          token-health token-rng token-pairwise)
FIPS_VECTORS=(2 1 8 6 1 12 5 2 4)
FIPS_REGISTRY_SIZE=9

# fips_install_copy [DIR]: copies keyholdd to DIR (default $T/bin), writes
# its sidecar, and points KEYHOLDD at the copy.
fips_install_copy() {
  local dir=${1:-$T/bin}
  mkdir -p "$dir"
  cp "$KH_BUILD/service/keyholdd" "$dir/keyholdd"
  "$dir/keyholdd" --fips-install > "$T/fips-install.out" || fail "keyholdd --fips-install failed"
  [ -s "$dir/.keyholdd.hmac" ] || fail "--fips-install wrote no sidecar"
  KEYHOLDD="$dir/keyholdd"
}

# fips_config MODE [EXTRA_SERVICE_INI] [TOKEN_MODULE]: a config with
# fips_mode = MODE.
fips_config() {
  local mode=$1 extra=${2:-} module=${3:-$TOKEN_MODULE}
  local saved=$TOKEN_MODULE
  TOKEN_MODULE=$module
  KH_SERVICE_EXTRA="fips_mode = $mode
$extra" kh_config
  TOKEN_MODULE=$saved
}

# fips_expect_halt NAME [VAR=VALUE...]: starts keyholdd (with the given
# environment) expecting it to halt on its own. Probes the socket the whole
# time; sets HALT_RC (exit status), HALT_CONNECTED (1 when any client got
# an answer) and HALT_LOG (its log).
fips_expect_halt() {
  local name=$1 pid i=0
  shift
  HALT_LOG="$T/$name.log"
  HALT_RC=0
  HALT_CONNECTED=0
  rm -f "$SOCK"
  # ASAN_OPTIONS as lib.sh sets them for this token.
  env "$@" \
    "$KEYHOLDD" --config "$T/keyhold.conf" --foreground > "$HALT_LOG" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if kh_answers; then HALT_CONNECTED=1; fi
    i=$((i + 1))
    if [ "$i" -gt 3000 ]; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      cat "$HALT_LOG" >&2
      fail "$name: keyholdd did not halt within 30 s"
    fi
    sleep 0.01
  done
  wait "$pid" || HALT_RC=$?
}

# fips_assert_halted NAME PATTERN: after fips_expect_halt: exit status 70,
# the log matches PATTERN (grep -E), no client was ever answered, no
# listener was opened.
fips_assert_halted() {
  local name=$1 pattern=$2
  if [ "$HALT_RC" -ne 70 ]; then
    tail -n 30 "$HALT_LOG" >&2
    fail "$name: keyholdd exited with status $HALT_RC, expected 70"
  fi
  if ! grep -Eq -- "$pattern" "$HALT_LOG"; then
    tail -n 30 "$HALT_LOG" >&2
    fail "$name: the log does not match '$pattern'"
  fi
  [ "$HALT_CONNECTED" -eq 0 ] || fail "$name: a client connected to a keyholdd that failed its self-tests"
  if grep -q "listening on" "$HALT_LOG"; then fail "$name: keyholdd opened its listener"; fi
  [ ! -e "$SOCK" ] || fail "$name: the socket $SOCK exists"
}

# fips_wait_exit WANT: waits for the keyholdd started by kh_start to exit
# on its own (ERROR state after start-up) and checks its status.
fips_wait_exit() {
  local want=$1 pid=$KH_PID rc=0 i=0
  KH_PID=""
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 3000 ]; then
      kill -KILL "$pid" 2>/dev/null || true
      fail "keyholdd did not exit within 30 s after entering ERROR"
    fi
    sleep 0.01
  done
  wait "$pid" || rc=$?
  [ "$rc" -eq "$want" ] || fail "keyholdd exited with status $rc, expected $want"
}

# token_objects: the labels of every object on the token (pkcs11-tool
# against the real module, not the shim).
token_objects() {
  pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" --login --pin "$(cat "$TOKEN_PIN_FILE")" \
    --list-objects 2> /dev/null | sed -n 's/^ *label: *//p'
}
