#!/usr/bin/env bash
# Out of file descriptors (issue 13, item 11): with RLIMIT_NOFILE small,
# connections past it make accept(2) fail with EMFILE. keyholdd must not
# spin on it: it pauses accepting, refuses the waiting peers through a
# reserve descriptor, logs the condition at most every few seconds, and
# keeps serving the connections it has. At start it warns when
# max_connections cannot fit in RLIMIT_NOFILE. CPU time is read from
# /proc/PID/stat over a fixed window.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"

NOFILE=64
KH_WORKERS=2 KH_SESSIONS=4 kh_config ""
# kh_start with a hard descriptor limit keyholdd cannot raise.
prlimit --nofile=$NOFILE:$NOFILE "$KEYHOLDD" --config "$T/keyhold.conf" --foreground >> "$T/keyholdd.log" 2>&1 &
KH_PID=$!
for _ in $(seq 1 200); do
  kh status > /dev/null 2>&1 && break
  kill -0 "$KH_PID" 2>/dev/null || { wait "$KH_PID" || true; KH_PID=""; fail "keyholdd exited during start-up"; }
  sleep 0.05
done
ok "status" kh status
grep -q "max_connections = 4096 needs about .* RLIMIT_NOFILE is $NOFILE" "$T/keyholdd.log" \
  || fail "no warning that max_connections does not fit RLIMIT_NOFILE"
log "descriptors open at start: $(find "/proc/$KH_PID/fd" -mindepth 1 | wc -l) of $NOFILE"

# cpu_ticks: keyholdd's user + system time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$KH_PID/stat"; }
log_lines() { grep -c "svc_accept_error_cb" "$T/keyholdd.log" || true; }

# 150 connections: past the limit, accept fails with EMFILE.
lines0=$(log_lines)
wire flood 150 4 > "$T/flood.json" &
flood=$!
for _ in $(seq 1 100); do [ -s "$T/flood.json" ] && break; sleep 0.1; done
[ -s "$T/flood.json" ] || fail "the flood did not start"
sleep 0.5
t0=$(cpu_ticks)
sleep 3
t1=$(cpu_ticks)
wait "$flood"
lines=$(( $(log_lines) - lines0 ))
hz=$(getconf CLK_TCK)
log "flood: $(tr '\n' ' ' < "$T/flood.json"); CPU $((t1 - t0)) ticks in 3 s ($hz a second); $lines accept log lines"
[ "$(head -n 1 "$T/flood.json" | json_get 'd["first"]')" = OK ] || fail "the first connection was not served"
tail -n 1 "$T/flood.json" > "$T/after.json"
[ "$(json_get 'd["after"]' < "$T/after.json")" = OK ] || fail "an existing connection was not served while out of descriptors"
# At most a fifth of one core over the window (a spin takes all of it).
[ $((t1 - t0)) -le $((3 * hz / 5)) ] || fail "keyholdd used $((t1 - t0)) ticks of CPU in 3 s while out of descriptors"
[ "$lines" -le 5 ] || fail "$lines accept lines logged in about 4 s"
[ "$(json_get 'd["refused"] > 0' < "$T/after.json")" = true ] || fail "no connection was refused: the limit was not reached"
grep -q "out of file descriptors\|Too many open files" "$T/keyholdd.log" || fail "EMFILE is not logged at all"
# Once the peers are gone, new connections are served again. SoftHSM2 may
# have failed to open its files meanwhile: status then answers but says the
# token is away (exit 5) until keyholdd re-attaches it.
kh_answers || fail "keyholdd does not answer after the flood"
for _ in $(seq 1 40); do kh health > /dev/null 2>&1 && break; sleep 0.25; done
ok "status after the flood (healthy: the token re-attached)" kh status
ok "audit verify" kh audit verify
kh_stop
