#!/usr/bin/env bash
# The README's first command, scripts/run.sh, works from a fresh clone: it
# builds (no build/ yet), creates its SoftHSM2 token and configuration on
# first run and starts keyholdd in the foreground; the test waits for
# "ready", drives the CLI it printed, stops keyholdd, and runs it again to
# see the token and keys reused.
. "$(dirname "$0")/lib.sh"

command -v git > /dev/null || fail "git is needed to clone the checkout"
git -C "$KH_SRC" rev-parse --is-inside-work-tree > /dev/null 2>&1 || fail "$KH_SRC is not a git checkout"

# The committed tree plus the working tree's changes, as a fresh clone
# would see them once committed (a test run before commit still tests them).
CLONE="$T/clone"
git clone -q "$KH_SRC" "$CLONE"
(cd "$KH_SRC" && git diff HEAD --binary) > "$T/wip.diff"
[ ! -s "$T/wip.diff" ] || (cd "$CLONE" && git apply "$T/wip.diff") || fail "cannot apply the working tree's changes to the clone"
while IFS= read -r -d '' f; do
  mkdir -p "$CLONE/$(dirname "$f")"
  cp "$KH_SRC/$f" "$CLONE/$f"
done < <(cd "$KH_SRC" && git ls-files -z --others --exclude-standard)
[ ! -e "$CLONE/build" ] || fail "the clone already has build/"

RUN_PID=""
# run_until_ready LOG: starts scripts/run.sh in the clone, waits for
# keyholdd's ready line (the build included: up to 10 minutes).
run_until_ready() {
  local out=$1 i
  KEYHOLD_STATE="$T/state" setsid "$CLONE/scripts/run.sh" > "$out" 2>&1 &
  RUN_PID=$!
  for ((i = 0; i < 1200; i++)); do
    grep -q 'keyholdd .* ready in' "$out" && return 0
    kill -0 "$RUN_PID" 2> /dev/null || { tail -n 40 "$out" >&2; fail "scripts/run.sh exited before keyholdd was ready"; }
    sleep 0.5
  done
  tail -n 40 "$out" >&2
  fail "keyholdd from scripts/run.sh was not ready in 10 minutes"
}
stop_run() {
  [ -n "$RUN_PID" ] || return 0
  kill -TERM "$RUN_PID" 2> /dev/null || true
  wait "$RUN_PID" 2> /dev/null || true
  RUN_PID=""
}
kh_on_exit stop_run

run_until_ready "$T/run1.log"
grep -q 'first run: creating' "$T/run1.log" || fail "the first run did not create its configuration"
grep -q 'keyhold status' "$T/run1.log" || fail "run.sh did not print how to use the CLI"
CLI="$CLONE/build/run/client/keyhold"
export KEYHOLD_SOCKET="$T/state/keyhold.sock"
"$CLI" status > "$T/status.txt" || fail "keyhold status failed against run.sh's keyholdd"
"$CLI" key generate web --type p256 > /dev/null || fail "key generate failed"
printf 'hello\n' > "$T/msg"
"$CLI" sign web --in "$T/msg" --out "$T/sig" || fail "sign failed"
"$CLI" key show web --pem > "$T/web.pem"
openssl dgst -sha256 -verify "$T/web.pem" -signature "$T/sig" "$T/msg" > /dev/null || fail "the signature does not verify"
stop_run

run_until_ready "$T/run2.log"
grep -q 'reusing' "$T/run2.log" || fail "the second run did not reuse the state"
"$CLI" key show web --pem | cmp -s - "$T/web.pem" || fail "the key did not survive a restart of run.sh"
stop_run
log "ok"
