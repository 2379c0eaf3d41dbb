#!/usr/bin/env bash
# SIGHUP reloads the configuration in the running keyholdd (same pid):
# [access] roles apply to new connections, [key:NAME] grants at once (grants
# made at run time with `keyhold policy grant` stay), log_level and [expiry]
# take effect, a changed setting that needs a restart is logged as such and
# keeps its running value, and a file that does not parse changes nothing.
# Signatures are verified with openssl.
. "$(dirname "$0")/lib.sh"

me=$(id -u)
CONF="$T/keyhold.conf"
kh_config
sed -i 's/^log_level = debug$/log_level = info/' "$CONF"
cp "$CONF" "$T/base.conf"
kh_start
pid=$KH_PID
kh_has_type p256 || fail "the checks below need p256"
echo "reload message" > "$T/msg"

# sign_ok KEY DESC: signs and verifies.
sign_ok() {
  ok "$2" kh sign "$1" --in "$T/msg" --out "$T/$1.sig"
  openssl dgst -sha256 -verify "$T/$1.pem" -signature "$T/$1.sig" "$T/msg" > /dev/null || fail "$2: does not verify"
}
# reload DESC: SIGHUP, then waits for keyholdd's verdict on it.
reload() {
  local before
  before=$(grep -c "reloaded $CONF\|reload failed" "$T/keyholdd.log" || true)
  kill -HUP "$pid"
  for _ in $(seq 1 100); do
    [ "$(grep -c "reloaded $CONF\|reload failed" "$T/keyholdd.log" || true)" -gt "$before" ] && { log "$1: $(grep "reloaded $CONF\|reload failed" "$T/keyholdd.log" | tail -n 1 | sed 's/.*reload/reload/')"; return 0; }
    sleep 0.1
  done
  fail "$1: keyholdd did not answer SIGHUP"
}

for k in rk rk2; do
  ok "generate $k" kh key generate "$k" --type p256
  ok "pem $k" kh key show "$k" --pem
  cp "$T/ok.out" "$T/$k.pem"
done
ok "runtime grant on rk2" kh policy grant rk2 "uid:$me"
sign_ok rk "sign rk as admin"
[ "$(grep -c "Sign: OK in" "$T/keyholdd.log" || true)" = 0 ] || fail "debug lines at log_level = info"

# ---- admin -> signer with a [key:rk] grant; debug logging; workers and expiry changed ----
sed -e "s/^admin = uid:$me$/signer = uid:$me/" -e 's/^log_level = info$/log_level = debug/' \
  -e 's/^workers = .*/workers = 2/' "$T/base.conf" > "$CONF"
printf '[key:rk]\nsigners = uid:%s\n[expiry]\ncheck_interval = 15m\n' "$me" >> "$CONF"
reload "to signer"
grep -q "reloaded $CONF: .* log_level = debug applied; 1 setting(s) need a restart" "$T/keyholdd.log" \
  || fail "the reload summary is missing or counts wrong"
grep -q "reload: \[service\] workers changed; it takes effect only after a restart" "$T/keyholdd.log" \
  || fail "the workers change is not reported as needing a restart"
grep -q "expiry monitor: every 900s" "$T/keyholdd.log" || fail "the expiry monitor did not take check_interval = 15m"
expect_err PERMISSION_DENIED "generate as signer" kh key generate rk3 --type p256
grep -q "needs the admin role" "$T/err.err" || fail "the refusal does not name the admin role"
sign_ok rk "sign rk with the [key:rk] grant"
sign_ok rk2 "sign rk2 with the runtime grant"
grep -q "Sign: OK in" "$T/keyholdd.log" || fail "log_level = debug did not take effect"
ok "status" kh --json status
[ "$(json_get 'd["workers"]' < "$T/ok.out")" = "${KH_WORKERS:-4}" ] || fail "workers changed without a restart"

# ---- the [key:rk] grant goes; the runtime grant stays ----
sed -e "s/^admin = uid:$me$/signer = uid:$me/" "$T/base.conf" > "$CONF"
reload "grant removed"
expect_err PERMISSION_DENIED "sign rk without its grant" kh sign rk --in "$T/msg" --out "$T/x"
grep -q "has no grant for key 'rk'" "$T/err.err" || fail "the refusal does not say there is no grant"
sign_ok rk2 "sign rk2 (runtime grant kept)"

# ---- a broken file changes nothing ----
cp "$CONF" "$T/good.conf"
printf 'this line is not ini\n' >> "$CONF"
reload "broken file"
grep -q "reload failed, the running configuration stays: $CONF:[0-9]*: syntax error" "$T/keyholdd.log" \
  || fail "the failed reload does not say where the file is wrong"
sign_ok rk2 "sign rk2 after the failed reload"
expect_err PERMISSION_DENIED "still a signer after the failed reload" kh key generate rk3 --type p256

# ---- back to admin ----
cp "$T/base.conf" "$CONF"
reload "back to admin"
ok "generate as admin again" kh key generate rk3 --type p256
sign_ok rk "sign rk as admin again"
[ "$KH_PID" = "$pid" ] || fail "keyholdd was restarted"
kill -0 "$pid" || fail "keyholdd died"
kh_stop
