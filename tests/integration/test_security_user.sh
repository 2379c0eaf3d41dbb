#!/usr/bin/env bash
# Process hardening (DESIGN §9): with `user =` keyholdd binds its socket as
# root, then runs as that user (real, effective and saved uid and gid) and
# keeps serving from the token, whose SoftHSM2 directory that user owns;
# it is not dumpable and writes no core files; the PIN file must not be
# readable by others; a user that cannot reach its state is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"

[ "$KH_TOKEN" = softhsm ] || { log "CAPABILITY: the user-drop test sets up a SoftHSM2 token directory"; KH_SKIPS=$((KH_SKIPS + 1)); exit 0; }
kh_sec_user khsvc
SVC_UID=$SEC_UID
mkdir -p "$T/run"
chown khsvc "$T/run"
SOCK="$T/run/keyhold.sock"
export KEYHOLD_SOCKET="$SOCK"
KH_SERVICE_EXTRA="user = khsvc" kh_config
# The token and the state belong to the service user; the PIN file stays
# root's (read before the drop).
chown -R khsvc "$T/token/tokens" "$T/state"
chmod 755 "$T/token"
kh_start

status=$(cat "/proc/$KH_PID/status")
uids=$(echo "$status" | awk '/^Uid:/ {print $2, $3, $4, $5}')
gids=$(echo "$status" | awk '/^Gid:/ {print $2, $3, $4, $5}')
[ "$uids" = "$SVC_UID $SVC_UID $SVC_UID $SVC_UID" ] || fail "keyholdd runs with uids $uids, not $SVC_UID"
[ "$gids" = "$(id -g khsvc) $(id -g khsvc) $(id -g khsvc) $(id -g khsvc)" ] || fail "keyholdd runs with gids $gids"
echo "$status" | awk '/^CapEff:/ {exit ($2 == "0000000000000000") ? 0 : 1}' || fail "keyholdd kept capabilities"
[ "$(awk '/^Max core file size/ {print $5}' "/proc/$KH_PID/limits")" = 0 ] || fail "core files are allowed"
# Not dumpable: /proc/PID/environ of a non-dumpable process is root's, not
# the owner's (the kernel sets it so); root reads it anyway, so check the
# owner of the per-process files.
[ "$(stat -c %u "/proc/$KH_PID/environ")" = 0 ] || fail "keyholdd is dumpable (its /proc files belong to $(stat -c %U "/proc/$KH_PID/environ"))"

# The token is still usable: keys are made and used.
echo "dropped" > "$T/msg"
ok "generate as khsvc" kh key generate uk --type p256
ok "pubkey" kh key show uk --pem
cp "$T/ok.out" "$T/uk.pem"
ok "sign as khsvc" kh sign uk --in "$T/msg" --out "$T/uk.sig"
openssl dgst -sha256 -verify "$T/uk.pem" -signature "$T/uk.sig" "$T/msg" > /dev/null || fail "signature"
[ "$(stat -c %U "$T/state/audit.log")" = khsvc ] || fail "the audit log is not the service user's"
ok "audit verify" kh audit verify
kh_stop

# Refusals: a PIN file others can read; a user that cannot write the state.
chmod 644 "$TOKEN_PIN_FILE"
rc=0; "$KEYHOLDD" --config "$T/keyhold.conf" --foreground > "$T/pin.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "keyholdd started with a world-readable PIN file"
grep -q "chmod 600" "$T/pin.log" || fail "the refusal does not say how to fix the PIN file"
chmod 600 "$TOKEN_PIN_FILE"
chown -R root "$T/state"
chmod 700 "$T/state"
rc=0; "$KEYHOLDD" --config "$T/keyhold.conf" --foreground > "$T/state.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "keyholdd started without access to its state"
grep -q "audit log" "$T/state.log" || fail "the refusal does not name the audit log"
