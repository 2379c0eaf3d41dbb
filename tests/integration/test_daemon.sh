#!/usr/bin/env bash
# keyholdd start-up checks: --check accepts a good configuration and
# refuses bad ones with FILE:LINE: reason and a non-zero exit; a PIN file
# readable by group or others is refused (at --check and at start) with a
# message naming chmod 600, and nothing listens; the PIN may instead be a
# systemd credential (pin_credential).
. "$(dirname "$0")/lib.sh"

kh_config
conf="$T/keyhold.conf"

ok "--check on a good config" "$KEYHOLDD" --config "$conf" --check
grep -q "^$conf: OK$" "$T/ok.out" || fail "--check did not print '$conf: OK'"
[ ! -e "$SOCK" ] || fail "--check created the socket"

# check_bad FILE LINE REASON: --check (and a real start) must fail with
# "FILE:LINE: REASON" on stderr.
check_bad() {
  local f=$1 line=$2 reason=$3 rc=0
  "$KEYHOLDD" --config "$f" --check > "$T/bad.out" 2> "$T/bad.err" || rc=$?
  [ "$rc" -ne 0 ] || fail "--check accepted $f (expected $f:$line: $reason)"
  grep -qF -- "$f:$line: $reason" "$T/bad.err" || { cat "$T/bad.err" >&2; fail "--check: expected '$f:$line: $reason'"; }
  rc=0
  "$KEYHOLDD" --config "$f" --foreground > "$T/bad.out" 2> "$T/bad.err" || rc=$?
  [ "$rc" -ne 0 ] || fail "keyholdd started with $f"
  grep -qF -- "$f:$line: $reason" "$T/bad.err" || { cat "$T/bad.err" >&2; fail "start: expected '$f:$line: $reason'"; }
  [ ! -e "$SOCK" ] || fail "keyholdd created its socket with a bad config"
  log "refused: $(head -n1 "$T/bad.err")"
}

# bad_conf NAME LINE TEXT: the good config with line LINE replaced by TEXT
# (or, with LINE=+N, TEXT inserted before line N).
bad_conf() {
  local line=$2 text=$3 f="$T/$1.conf"
  case "$line" in
  +*) awk -v n="${line#+}" -v t="$text" 'NR==n{print t} {print}' "$conf" > "$f" ;;
  *) awk -v n="$line" -v t="$text" 'NR==n{print t; next} {print}' "$conf" > "$f" ;;
  esac
  echo "$f"
}

# The generated config: [service] is line 1, its keys lines 2-5.
f=$(bad_conf workers 4 "workers = lots"); check_bad "$f" 4 "workers must be a whole number from 1 to 256, not 'lots'"
f=$(bad_conf unknown +3 "colour = blue"); check_bad "$f" 3 "unknown key 'colour' in [service]"
f=$(bad_conf section +2 "[serivce]"); check_bad "$f" 3 "unknown section [serivce]"
f=$(bad_conf syntax +4 "this line is not ini"); check_bad "$f" 4 "syntax error"
f=$(bad_conf fips +5 "fips_mode = maybe"); check_bad "$f" 5 "fips_mode must be off, aligned or validated"
f=$(bad_conf cont +3 "   /another/socket"); check_bad "$f" 3 "'socket' is set twice in [service]"
f=$(bad_conf access +1 "admin = uid:0"); check_bad "$f" 1 "'admin' is outside any section"
grep -v '^pin_file' "$conf" > "$T/nopin.conf"
check_bad "$T/nopin.conf" "$(wc -l < "$T/nopin.conf")" "[token] needs module, uri and pin_file"
printf '[access]\nadmin = uid:0\n[token]\nmodule = %s\nuri = token=keyhold\npin_file = %s\n' \
  "$TOKEN_MODULE" "$TOKEN_PIN_FILE" > "$T/uri.conf"
check_bad "$T/uri.conf" 5 "uri must be a PKCS#11 URI"

# Files that are not there.
rc=0; "$KEYHOLDD" --config "$T/missing.conf" --check 2> "$T/bad.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "cannot open" "$T/bad.err" || fail "--check on a missing file"
sed "s|^pin_file = .*|pin_file = $T/no-such-pin|" "$conf" > "$T/nopinfile.conf"
rc=0; "$KEYHOLDD" --config "$T/nopinfile.conf" --check 2> "$T/bad.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "no-such-pin" "$T/bad.err" || fail "--check on a missing PIN file"
sed "s|^module = .*|module = $T/no-such-module.so|" "$conf" > "$T/nomodule.conf"
rc=0; "$KEYHOLDD" --config "$T/nomodule.conf" --check 2> "$T/bad.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "no-such-module.so" "$T/bad.err" || fail "--check on a missing module"

# A PIN file group/world readable is refused, naming chmod 600.
chmod 0644 "$TOKEN_PIN_FILE"
rc=0; "$KEYHOLDD" --config "$conf" --check > /dev/null 2> "$T/pin.err" || rc=$?
[ "$rc" -ne 0 ] || fail "--check accepted a 0644 PIN file"
grep -q "chmod 600" "$T/pin.err" || { cat "$T/pin.err" >&2; fail "--check: no 'chmod 600' for a 0644 PIN file"; }
grep -qF "$TOKEN_PIN_FILE" "$T/pin.err" || fail "--check: the PIN message does not name the file"
rc=0; "$KEYHOLDD" --config "$conf" --foreground > "$T/pin.out" 2> "$T/pin.err" || rc=$?
[ "$rc" -ne 0 ] || fail "keyholdd started with a 0644 PIN file"
grep -q "chmod 600" "$T/pin.err" || { cat "$T/pin.err" >&2; fail "start: no 'chmod 600' for a 0644 PIN file"; }
grep -q "PERMISSION_DENIED" "$T/pin.err" || fail "start: the PIN refusal is not PERMISSION_DENIED"
[ ! -e "$SOCK" ] || fail "keyholdd listened with a 0644 PIN file"
log "refused: $(grep -m1 'chmod 600' "$T/pin.err")"
chmod 0640 "$TOKEN_PIN_FILE"
rc=0; "$KEYHOLDD" --config "$conf" --check > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "--check accepted a 0640 PIN file"

# The negative twin: back to 0600, it starts and serves.
chmod 0600 "$TOKEN_PIN_FILE"
ok "--check after chmod 600" "$KEYHOLDD" --config "$conf" --check
kh_start
ok "status" kh status
kh_stop
[ ! -e "$SOCK" ] || fail "socket left behind after a clean stop"

# The PIN as a systemd credential: pin_credential = NAME reads
# $CREDENTIALS_DIRECTORY/NAME (systemd makes it 0400, owned by the service)
# with the same checks as pin_file.
mkdir -p "$T/credentials"
cp "$TOKEN_PIN_FILE" "$T/credentials/token-pin"
chmod 0400 "$T/credentials/token-pin"
sed "s|^pin_file = .*|pin_credential = token-pin|" "$conf" > "$T/cred.conf"
rc=0; env -u CREDENTIALS_DIRECTORY "$KEYHOLDD" --config "$T/cred.conf" --check > /dev/null 2> "$T/cred.err" || rc=$?
[ "$rc" -ne 0 ] || fail "--check accepted pin_credential without CREDENTIALS_DIRECTORY"
grep -q "LoadCredential=token-pin:" "$T/cred.err" || { cat "$T/cred.err" >&2; fail "no LoadCredential hint"; }
export CREDENTIALS_DIRECTORY="$T/credentials"
ok "--check with pin_credential" "$KEYHOLDD" --config "$T/cred.conf" --check
cp "$T/cred.conf" "$conf"
kh_start
ok "status with the PIN from a credential" kh status
kh_stop
chmod 0444 "$T/credentials/token-pin"
rc=0; "$KEYHOLDD" --config "$T/cred.conf" --check > /dev/null 2> "$T/cred.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "credentials/token-pin has mode 0444" "$T/cred.err" \
  || { cat "$T/cred.err" >&2; fail "--check accepted a world-readable credential"; }
unset CREDENTIALS_DIRECTORY
