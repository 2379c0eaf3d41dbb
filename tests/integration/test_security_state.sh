#!/usr/bin/env bash
# state_dir and PIN file trust (issue 13, items 8, 12 and 13). keyholdd
# refuses to start, naming the file and the fix, when: state_dir is
# writable by group or others; a state file is a symbolic link or belongs
# to another user; the PIN file belongs to another user or is reached
# through a symlinked directory. A second keyholdd on the same state_dir
# is refused with the first one's pid, and the first keeps serving.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"

kh_sec_user khstate
kh_config
S="$T/state"

# refused DESC PATTERN: keyholdd must exit non-zero within 30 s (before
# serving) with PATTERN in its output; a keyholdd that started is stopped
# and fails the test.
refused() {
  local desc=$1 pattern=$2 pid rc=0
  : > "$T/refused.log"
  "$KEYHOLDD" --config "$T/keyhold.conf" --foreground > "$T/refused.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"; wait "$pid" || true
    cat "$T/refused.log" >&2
    fail "$desc: keyholdd started"
  fi
  wait "$pid" || rc=$?
  [ "$rc" -ne 0 ] || { cat "$T/refused.log" >&2; fail "$desc: keyholdd exited 0"; }
  grep -q -- "$pattern" "$T/refused.log" || { cat "$T/refused.log" >&2; fail "$desc: the refusal does not say '$pattern'"; }
  log "refused as it should: $desc: $(grep -m1 -- "$pattern" "$T/refused.log")"
}

# A first start creates the state; a runtime grant goes into the state
# database. An older version's key-grants file (imported at the next
# start) is checked like every state file.
kh_start
ok "generate" kh key generate st-key --type p256
ok "grant" kh policy grant st-key uid:4242
[ ! -e "$S/key-grants" ] || fail "a key-grants file was written; runtime grants belong in the state database"
kh_stop
printf 'st-key uid:4343 * *\n' > "$S/key-grants"
chmod 0600 "$S/key-grants"

# ---- item 8: state_dir writable by others ----
for mode in 0777 0770 0757; do
  chmod "$mode" "$S"
  refused "state_dir mode $mode" "must not be writable by group or others"
done
grep -q "chmod go-w $S" "$T/refused.log" || fail "the refusal does not say how to fix state_dir"
rc=0; "$KEYHOLDD" --config "$T/keyhold.conf" --check > "$T/check.log" 2>&1 || rc=$?
[ "$rc" -eq 78 ] && grep -q "must not be writable" "$T/check.log" || { cat "$T/check.log" >&2; fail "keyholdd --check accepted a 0757 state_dir (exit $rc)"; }
chmod 0755 "$S"

# state_dir owned by another (unprivileged) user.
chown khstate "$S"
refused "state_dir owned by khstate" "state_dir $S belongs to uid $SEC_UID"
chown root "$S"
chmod 0700 "$S"

# ---- item 8: a symlinked state file ----
# (keyhold.db only with the sqlite backend: with postgresql there is none.)
db=""
[ "${KH_STATE:-sqlite}" = sqlite ] && db=keyhold.db
for f in key-grants $db audit.log; do
  mv "$S/$f" "$T/$f.real"
  ln -s "$T/$f.real" "$S/$f"
  refused "$f is a symbolic link" "state file $S/$f is a symbolic link"
  rm "$S/$f"
  mv "$T/$f.real" "$S/$f"
done
# A link to a file that does not exist yet (the attacker's choice) too.
if [ -n "$db" ]; then
  ln -s /etc/keyhold-not-there "$S/keyhold.db-wal"
  refused "a dangling link as keyhold.db-wal" "keyhold.db-wal is a symbolic link"
  rm "$S/keyhold.db-wal"
fi

# ---- item 8: a state file another user owns or can write ----
chown khstate "$S/key-grants"
refused "key-grants owned by khstate" "state file $S/key-grants belongs to uid $SEC_UID"
chown root "$S/key-grants"
chmod 0666 "$S/key-grants"
refused "key-grants mode 0666" "key-grants has mode 0666"
chmod 0600 "$S/key-grants"
if [ -n "$db" ]; then
  chown khstate "$S/keyhold.db"
  refused "keyhold.db owned by khstate" "keyhold.db belongs to uid $SEC_UID"
  chown root "$S/keyhold.db"
fi

# ---- item 13: the PIN file ----
pin=$TOKEN_PIN_FILE
chown khstate "$pin"
refused "PIN file owned by khstate" "PIN file $pin belongs to uid $SEC_UID"
grep -q "chown root $pin" "$T/refused.log" || fail "the PIN refusal does not say how to fix it"
chown root "$pin"
mkdir -m 700 "$T/pin-real"
cp -p "$pin" "$T/pin-real/pin"
ln -s "$T/pin-real" "$T/pin-link"
sed -i "s|^pin_file = .*|pin_file = $T/pin-link/pin|" "$T/keyhold.conf"
refused "PIN file under a symlinked directory" "directory 'pin-link' is a symbolic link"
sed -i "s|^pin_file = .*|pin_file = $T/pin-real/pin|" "$T/keyhold.conf"

# Everything in order again: it starts and the grant survived.
kh_start
ok "grants after the refusals" kh --json policy list st-key
grep -q "uid:4242" "$T/ok.out" || fail "the runtime grant was lost"
first=$KH_PID

# ---- item 12: a second keyholdd on the same state_dir ----
refused "a second keyholdd on the same state_dir" "another keyholdd (pid $first) is already using state_dir $S"
kill -0 "$first" || fail "the first keyholdd died"
echo "still here" > "$T/m"
ok "the first keyholdd still signs" kh sign st-key --in "$T/m" --out "$T/m.sig"
ok "the first keyholdd's audit log is intact" kh audit verify
# Same state_dir reached through another name: still one lock.
ln -s "$S" "$T/state-alias"
sed "s|^state_dir = .*|state_dir = $T/state-alias|; s|^socket = .*|socket = $T/second.sock|" "$T/keyhold.conf" > "$T/second.conf"
rc=0; timeout 30 "$KEYHOLDD" --config "$T/second.conf" --foreground > "$T/second.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { cat "$T/second.log" >&2; fail "a second keyholdd on a link to the state_dir was not refused (exit $rc)"; }
grep -q "another keyholdd (pid $first)" "$T/second.log" || { cat "$T/second.log" >&2; fail "the second keyholdd's refusal does not name the first"; }
ok "the first keyholdd answers after both refusals" kh status
kh_stop
