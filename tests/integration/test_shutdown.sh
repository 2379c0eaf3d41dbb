#!/usr/bin/env bash
# Graceful SIGTERM (kh_drain): keyholdd is signalled in the middle of a
# pipelined burst; every request it had accepted is answered (OK and
# verified, or UNAVAILABLE), it exits 0 and removes its socket file; with
# the connections on the shards' event loops (the default) and on the main
# loop (loops = 1). The shards' loops run as SCHED_BATCH, or SCHED_OTHER
# with loop_sched = normal.
. "$(dirname "$0")/lib.sh"

# The scheduling policies of keyholdd's kh-loop threads (0 SCHED_OTHER,
# 3 SCHED_BATCH; field 41 of /proc/TID/stat).
loop_policies() {
  local t
  for t in /proc/"$KH_PID"/task/*; do
    case "$(cat "$t/comm" 2> /dev/null)" in
      kh-loop*) sed 's/.*) //' "$t/stat" | awk '{print $39}' ;;
    esac
  done | sort -u | tr '\n' ' '
}

kh_start
# A slow key keeps the workers busy when the signal arrives.
key_type=""
for t in rsa4096 rsa3072 rsa2048 p256; do
  if kh_has_type "$t"; then key_type=$t; break; fi
done
[ -n "$key_type" ] || fail "the token offers no RSA or P-256 key"
ok "generate $key_type" kh key generate slow --type "$key_type"

# keyholdd logs how many requests were in flight when the signal came; the
# test needs it to be mid-burst (more than 0). A run where the burst was
# already done is repeated, not counted.
drain_once() {
  local mid=0 attempt before pid rc line n
  for attempt in 1 2 3; do
    before=$(wc -l < "$T/keyholdd.log")
    pid=$KH_PID
    "$KH_BUILD/tests/integration/kh_drain" "$SOCK" slow "$pid" || fail "kh_drain"
    rc=0
    wait "$pid" || rc=$?
    KH_PID=""
    [ "$rc" -eq 0 ] || fail "keyholdd exited with status $rc after SIGTERM"
    [ ! -e "$SOCK" ] || fail "keyholdd left its socket file $SOCK behind"
    line=$(tail -n +"$((before + 1))" "$T/keyholdd.log" | grep -m1 "shutting down:" || true)
    [ -n "$line" ] || fail "keyholdd did not log its shutdown"
    n=$(printf '%s\n' "$line" | sed -n 's/.* \([0-9][0-9]*\) requests in flight.*/\1/p')
    log "attempt $attempt: $line"
    if [ "${n:-0}" -gt 0 ]; then mid=1; break; fi
    kh_start
  done
  [ "$mid" -eq 1 ] || fail "SIGTERM never arrived while requests were in flight"
}

# [service] loops: the default (one per CPU: the connections on the
# shards' loops, which drain each their own), then every connection on
# the main loop.
if [ "$(nproc)" -gt 1 ]; then
  grep -q "event loops serve Unix connections" "$T/keyholdd.log" || fail "no event loops besides the main one"
  [ "$(loop_policies)" = "3 " ] || fail "the event loops' policies are '$(loop_policies)', not SCHED_BATCH (3)"
fi
drain_once
if [ "$(nproc)" -gt 1 ]; then
  KH_SERVICE_EXTRA="loop_sched = normal" kh_config
  kh_start
  [ "$(loop_policies)" = "0 " ] || fail "with loop_sched = normal the loops' policies are '$(loop_policies)'"
  ok "status (loop_sched = normal)" kh status
  kh_stop
fi
KH_SERVICE_EXTRA="loops = 1" kh_config
start_line=$(wc -l < "$T/keyholdd.log")
kh_start
if tail -n +"$((start_line + 1))" "$T/keyholdd.log" | grep -q "event loops serve Unix connections"; then
  fail "loops = 1 still started event loops"
fi
drain_once

# Not accepting any more: nothing listens on the socket path.
expect_err UNAVAILABLE "status after shutdown" kh status

# A second start reuses the token and the key.
kh_start
ok "key survives a restart" kh key show slow
kh_stop
