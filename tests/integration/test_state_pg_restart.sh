#!/usr/bin/env bash
# PostgreSQL goes away under load (issue 20, last test): keyholdd keeps its
# state in a PostgreSQL server of this test's own (lib_pg.sh); one client
# signs in a loop while another creates trustpoints in a loop. The server
# is stopped for a few seconds, started again, then restarted with
# pg_ctl restart. Meanwhile state requests fail UNAVAILABLE (and only
# that), signing never fails, and afterwards every state request succeeds
# again on the same keyholdd (same pid, no restart). Every signature is
# verified with openssl; every trustpoint reported created is there.
export KH_STATE=postgresql
. "$(dirname "$0")/lib.sh"

kh_start
pid0=$KH_PID
ok "generate the key" kh key generate base --type p256
ok "its public key" kh key show base --pem
cp "$T/ok.out" "$T/base.pem"
mkdir -p "$T/sig"
: > "$T/sign.log"
: > "$T/state.log"

# mark NAME: the number of lines each log has now.
mark() {
  printf '%s %s %s\n' "$1" "$(wc -l < "$T/sign.log")" "$(wc -l < "$T/state.log")" >> "$T/marks"
}
signer() {
  local i=0
  while [ ! -f "$T/stop" ]; do
    i=$((i + 1))
    printf 'message %d' "$i" > "$T/sig/$i.msg"
    if kh sign base --in "$T/sig/$i.msg" --out "$T/sig/$i.sig" 2> "$T/sig/$i.err"; then
      echo "$i ok"
    else
      echo "$i fail $(head -n 1 "$T/sig/$i.err")"
    fi >> "$T/sign.log"
  done
}
stater() {
  local i=0
  while [ ! -f "$T/stop" ]; do
    i=$((i + 1))
    if kh trustpoint create "tp$i" --key base --subject "CN=tp$i" > /dev/null 2> "$T/state.err"; then
      echo "tp$i ok"
    else
      echo "tp$i fail $(head -n 1 "$T/state.err")"
    fi >> "$T/state.log"
    kh trustpoint list > /dev/null 2>&1 || true
    sleep 0.05
  done
}
signer &
signer_pid=$!
stater &
stater_pid=$!
# wait_lines FILE N: until FILE has N lines (30 s at most).
wait_lines() {
  for _ in $(seq 1 300); do
    [ "$(wc -l < "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "$1 did not reach $2 lines"
}
wait_lines "$T/state.log" 5
wait_lines "$T/sign.log" 5
mark before
log "stopping PostgreSQL for 3 s"
kh_pg_stop
sleep 3
mark down
kh_pg_start
mark started
log "PostgreSQL is back"
sleep 2
mark up
log "pg_ctl restart"
kh_pg_restart
mark restarted
sleep 2
n=$(wc -l < "$T/state.log")
wait_lines "$T/state.log" $((n + 10))
mark after
touch "$T/stop"
wait "$signer_pid" "$stater_pid"

read -r _ sign_before state_before < <(grep '^before ' "$T/marks")
read -r _ sign_down state_down < <(grep '^down ' "$T/marks")
read -r _ _ state_started < <(grep '^started ' "$T/marks")
read -r _ _ state_up < <(grep '^up ' "$T/marks")
read -r _ _ state_restarted < <(grep '^restarted ' "$T/marks")
read -r _ _ state_after < <(grep '^after ' "$T/marks")

# Signing never failed, also while the server was down.
if grep -q ' fail' "$T/sign.log"; then
  grep ' fail' "$T/sign.log" | head -n 5 >&2
  fail "a signature failed while PostgreSQL was away"
fi
[ $((sign_down - sign_before)) -gt 0 ] || fail "no signature was made while PostgreSQL was down"
log "signatures: $(wc -l < "$T/sign.log") in all, $((sign_down - sign_before)) while PostgreSQL was down"
# While it was down, state requests failed UNAVAILABLE and with nothing else.
sed -n "$((state_before + 1)),${state_down}p" "$T/state.log" > "$T/state.down"
grep -q ' fail error: UNAVAILABLE: ' "$T/state.down" || { cat "$T/state.down" >&2; fail "no state request failed UNAVAILABLE while PostgreSQL was down"; }
if grep ' fail' "$T/state.log" | grep -qv ' fail error: UNAVAILABLE: '; then
  grep ' fail' "$T/state.log" | grep -v ' fail error: UNAVAILABLE: ' | head -n 5 >&2
  fail "a state request failed with something else than UNAVAILABLE"
fi
grep -q 'PostgreSQL server is unreachable' "$T/state.err" "$T/keyholdd.log" ||
  fail "the UNAVAILABLE message does not say that the server is unreachable"
# Once the server was back (from 2 requests after each start on, the one
# in flight then aside), every state request succeeded: after the start,
# until pg_ctl restart, and after that. The requests made while pg_ctl
# restart had the server down may fail UNAVAILABLE (checked above).
sed -n "$((state_started + 3)),${state_up}p;$((state_restarted + 3)),${state_after}p" "$T/state.log" > "$T/state.after"
sed -n "$((state_restarted + 3)),${state_after}p" "$T/state.log" | grep -q . || fail "no state request after the restart"
if grep -q ' fail' "$T/state.after"; then
  cat "$T/state.after" >&2
  fail "state requests still fail after PostgreSQL came back"
fi
[ "$KH_PID" = "$pid0" ] && kill -0 "$KH_PID" || fail "keyholdd is not the process it was"
grep -q 'connected again' "$T/keyholdd.log" || fail "keyholdd did not log that it connected again"

# Every signature verifies, and every trustpoint reported created exists.
n=0
for s in "$T"/sig/*.sig; do
  i=$(basename "$s" .sig)
  openssl dgst -sha256 -verify "$T/base.pem" -signature "$s" "$T/sig/$i.msg" > /dev/null ||
    fail "signature $i does not verify"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no signature to verify"
ok "trustpoint list" kh --json trustpoint list
for tp in $(awk '$2 == "ok" { print $1 }' "$T/state.log"); do
  json_get "[t['name'] for t in d['trustpoints']]" < "$T/ok.out" | grep -q "'$tp'" ||
    fail "trustpoint $tp was reported created but is not there"
done
log "state requests: $(grep -c ' ok' "$T/state.log") ok, $(grep -c ' fail' "$T/state.log") UNAVAILABLE; $n signatures verified"
