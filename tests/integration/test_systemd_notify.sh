#!/usr/bin/env bash
# keyholdd under systemd's notification protocol, with a NOTIFY_SOCKET of
# the test's own (a python3 AF_UNIX datagram listener) in place of systemd:
# READY=1 with a STATUS= line once it serves; WATCHDOG=1 keepalives while
# the loop and the token answer; none while the event loop is frozen, nor
# while the token probe hangs (both frozen through the KEYHOLD_TESTING
# build's KEYHOLD_TEST_FREEZE_LOOP / _PROBE files), with keyholdd still
# answering in the second case and saying why in STATUS=; keepalives
# resume after each; RELOADING=1 ... READY=1 around a SIGHUP reload;
# STOPPING=1 at SIGTERM. Only lower bounds of gaps are
# asserted (a frozen loop cannot send), so load cannot fail it.
. "$(dirname "$0")/lib.sh"

NS="$T/notify.sock"
NLOG="$T/notify.log"
python3 - "$NS" "$NLOG" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode("utf-8", "replace")
        for line in msg.split("\n"):
            if line:
                log.write("%.3f %s\n" % (time.monotonic(), line))
PY
LISTENER=$!
# The listener first, then lib.sh's clean-up (keyholdd, token).
listener_stop() {
  kill "$LISTENER" 2> /dev/null || true
  wait "$LISTENER" 2> /dev/null || true
}
kh_on_exit listener_stop
for _ in $(seq 1 100); do [ -S "$NS" ] && break; sleep 0.05; done
[ -S "$NS" ] || fail "the notification listener did not bind"

now() { python3 -c 'import time; print("%.3f" % time.monotonic())'; }
# keepalives_since T: WATCHDOG=1 lines after monotonic time T.
keepalives_since() { awk -v t="$1" '$1 > t && $2 == "WATCHDOG=1"' "$NLOG" | wc -l; }
# max_gap_between A B: the longest time in [A, B] without a keepalive
# (from A to the first, between two, from the last to B).
max_gap_between() {
  awk -v a="$1" -v b="$2" 'BEGIN { p = a + 0 } $2 == "WATCHDOG=1" && $1 >= a && $1 <= b { if ($1 - p > m) m = $1 - p; p = $1 } END { if (b - p > m) m = b - p; printf "%.3f\n", m + 0 }' "$NLOG"
}
# wait_for SINCE PATTERN DESC: until a line received after monotonic time
# SINCE matches PATTERN (20 s).
wait_for() {
  for _ in $(seq 1 200); do
    awk -v t="$1" '$1 > t' "$NLOG" 2> /dev/null | grep -q -- "$2" && return 0
    sleep 0.1
  done
  cat "$NLOG" >&2 || true
  fail "no '$2' from keyholdd: $3"
}
# wait_keepalive SINCE DESC: until a keepalive arrives after SINCE (20 s).
wait_keepalive() {
  for _ in $(seq 1 200); do [ "$(keepalives_since "$1")" -ge 1 ] && return 0; sleep 0.1; done
  fail "keepalives did not resume $2"
}
# freeze_wait FILE: until keyholdd has taken the freeze file.
freeze_wait() {
  for _ in $(seq 1 100); do [ -e "$1" ] || return 0; sleep 0.1; done
  fail "keyholdd did not take $1 (not a KEYHOLD_TESTING build?)"
}

export NOTIFY_SOCKET="$NS" WATCHDOG_USEC=3000000
export KEYHOLD_TEST_FREEZE_LOOP="$T/freeze-loop" KEYHOLD_TEST_FREEZE_PROBE="$T/freeze-probe"
kh_start
pid=$KH_PID
unset NOTIFY_SOCKET WATCHDOG_USEC
wait_for 0 "^[0-9.]* READY=1$" "readiness"
wait_for 0 "^[0-9.]* STATUS=serving on $SOCK; [0-9]* workers; token up" "a STATUS line naming the socket and the token"
grep -q "systemd watchdog: keepalives every 1500 ms" "$T/keyholdd.log" || fail "keyholdd did not log the watchdog"
grep -q "token probe every 1s (for the watchdog)" "$T/keyholdd.log" || fail "the watchdog did not start the token probe"

t0=$(now)
sleep 2
n=$(keepalives_since "$t0")
[ "$n" -ge 2 ] || fail "only $n keepalives in 2 s"
log "$n keepalives in 2 s"

# ---- the loop freezes for 5 s: no keepalive meanwhile ----
t1=$(now)
echo 5 > "$T/freeze-loop"
freeze_wait "$T/freeze-loop"
sleep 5
t2=$(now)
wait_keepalive "$t2" "after the loop thawed"
gap=$(max_gap_between "$t1" "$(now)")
python3 -c "import sys; sys.exit(0 if float('$gap') >= 4.0 else 1)" || fail "a keepalive came while the loop was frozen (longest gap $gap s)"
log "loop frozen: longest gap between keepalives $gap s"
ok "status after the loop thawed" kh status

# ---- the token probe hangs for 9 s: keepalives stop, keyholdd answers ----
t3=$(now)
echo 9 > "$T/freeze-probe"
freeze_wait "$T/freeze-probe"
wait_for "$t3" "STATUS=token probe unanswered for [0-9]* s; watchdog keepalives withheld" "STATUS while the probe hangs"
t4=$(now)
ok "status while the probe hangs (the loop is alive)" kh status
[ "$(keepalives_since "$t4")" -eq 0 ] || fail "keepalives while the token probe hangs"
wait_for "$t4" "STATUS=serving on $SOCK; [0-9]* workers; token up" "STATUS after the probe answered again"
t5=$(now)
wait_keepalive "$t4" "after the probe answered"
gap=$(max_gap_between "$t3" "$t5")
python3 -c "import sys; sys.exit(0 if float('$gap') >= 4.0 else 1)" || fail "no gap in keepalives while the probe hung (longest $gap s)"
log "probe hung: longest gap between keepalives $gap s"
# (also logged once after the loop thawed: the probe could not run then)
[ "$(grep -c "systemd watchdog: the token answers again; keepalives resume" "$T/keyholdd.log")" -ge 2 ] \
  || fail "the resumption is not logged"

# ---- SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 ----
t7=$(now)
kill -HUP "$pid"
wait_for "$t7" "^[0-9.]* RELOADING=1$" "RELOADING=1 at SIGHUP"
wait_for "$t7" "^[0-9.]* MONOTONIC_USEC=[0-9]*$" "MONOTONIC_USEC with RELOADING=1"
wait_for "$t7" "^[0-9.]* STATUS=reloaded; 0 setting(s) need a restart$" "STATUS after the reload"
wait_for "$t7" "^[0-9.]* READY=1$" "READY=1 after the reload"

# ---- SIGTERM: STOPPING=1 ----
t6=$(now)
kh_stop
wait_for "$t6" "^[0-9.]* STOPPING=1$" "STOPPING=1 at SIGTERM"
kill -0 "$pid" 2> /dev/null && fail "keyholdd still runs"
log "notifications: $(awk '{ print $2 }' "$NLOG" | sed 's/=.*//' | sort | uniq -c | tr '\n' ' ')"
