#!/usr/bin/env bash
# Expiry monitoring: every certificate keyhold holds (identity
# certificates, trustpoint CAs, trust store CAs) is looked at; those
# within notify_days of their notAfter are notified to the log, to
# `keyhold cert expiring` and to the hook, exactly once per notify_every.
# keyholdd's clock is moved (KEYHOLD_TESTING's test clock) and the monitor
# run with `keyhold cert monitor`, so the hook's output is counted after
# known steps without any sleep. The hook runs without a shell, with a
# clean environment and no inherited descriptors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"
. "$(dirname "$0")/revocation_lib.sh"

DAY=86400
cat > "$T/hook.sh" <<EOF
#!/bin/bash
# One line per notification: the environment's event, fingerprint and days
# left, then the arguments: the configured two, subject, days left, held
# by, fingerprint (\$4, the notAfter, is left out).
printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "\$KEYHOLD_EVENT" "\$KEYHOLD_CERT_FINGERPRINT" "\$KEYHOLD_CERT_DAYS_LEFT" \
  "\$1" "\$2" "\$3" "\$5" "\$6" "\$7" >> "$T/hook.out"
# What the hook inherited: descriptors and a variable of keyholdd's. No
# pipeline here: while one runs, this shell itself holds the pipe's
# descriptors (3 and 4) and ls would list them; a redirection is made in
# the child, after the fork.
ls /proc/\$\$/fd > "$T/hook.fds"
printf '%s' "\${KEYHOLD_SOCKET:-unset}" > "$T/hook.env"
EOF
chmod 0755 "$T/hook.sh"
: > "$T/hook.out"
kh_config "[expiry]
notify_days = 30
notify_every = 2d
check_interval = 7d
hook = $T/hook.sh --from keyhold"
kh_start
kh_has_type p256 || fail "the trustpoints need p256 keys"

# In the window: a trust store CA (19 days) and a self-signed identity (20);
# outside it: a CA for ten years.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/short.key" -subj "/CN=Short Lived CA" \
  -days 19 -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$T/short.pem" 2> /dev/null || fail "short CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/long.key" -subj "/CN=Long Lived CA" \
  -days 3650 -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$T/long.pem" 2> /dev/null || fail "long CA"
short_fp=$(pki_fp "$T/short.pem")
ok "stores" kh truststore add short "$T/short.pem"
ok "stores" kh truststore add long "$T/long.pem"
ok "self trustpoint" kh trustpoint create web --generate p256 --subject "CN=web.example.com" --days 20
ok "enroll" kh trustpoint enroll web --out "$T/web.pem"
web_fp=$(pki_fp "$T/web.pem")
# The short CA is also a trustpoint's CA: one certificate, one notice.
ok "terminal trustpoint" kh trustpoint create term --generate p256 --subject "CN=term.example.com" --enrollment terminal
ok "authenticate" kh trustpoint authenticate term --ca "$T/short.pem" --yes

lines() { grep -c . "$T/hook.out" || true; }
# step DAYS EXPECTED_TOTAL: the clock DAYS ahead, one monitor run, the
# hook's output has EXPECTED_TOTAL lines.
step() {
  rev_clock $(($1 * DAY))
  ok "monitor at day $1" kh --json cert monitor
  cp "$T/ok.out" "$T/mon.json"
  [ "$(lines)" = "$2" ] || { cat "$T/hook.out" >&2; fail "day $1: the hook ran $(lines) times, expected $2"; }
}

# ---- the listing ----
ok "expiring" kh --json cert expiring
[ "$(json_get 'len(d["certificates"])' < "$T/ok.out")" = 2 ] || fail "expiring lists $(json_get 'len(d["certificates"])' < "$T/ok.out"), not 2"
[ "$(json_get 'd["certificates"][0]["fingerprint_sha256"]' < "$T/ok.out")" = "$short_fp" ] || fail "not soonest first"
[ "$(json_get 'd["certificates"][1]["fingerprint_sha256"]' < "$T/ok.out")" = "$web_fp" ] || fail "web is not second"
[ "$(json_get 'sorted(d["certificates"][0]["held_by"])' < "$T/ok.out")" = "['trustpoint-ca:term', 'truststore:short']" ] \
  || fail "the short CA's holders: $(json_get 'd["certificates"][0]["held_by"]' < "$T/ok.out")"
[ "$(json_get 'd["certificates"][1]["held_by"]' < "$T/ok.out")" = "['trustpoint:web']" ] || fail "web's holder"
# whole days to notAfter, rounded down, by keyholdd's clock
days_ok() {
  json_get 'all(c["days_left"] == (__import__("datetime").datetime.fromisoformat(c["not_after"][:-1]) - __import__("datetime").datetime.fromisoformat(d["now"][:-1])).total_seconds() // 86400 for c in d["certificates"])'
}
[ "$(days_ok < "$T/ok.out")" = true ] || fail "days left are not whole days to notAfter"
[ "$(json_get 'd["certificates"][0]["days_left"]' < "$T/ok.out")" -ge 18 ] || fail "the short CA has less than 18 days"
ok "expiring --all" kh --json cert expiring --all
[ "$(json_get 'len(d["certificates"])' < "$T/ok.out")" = 3 ] || fail "--all does not list 3"
[ "$(json_get 'd["certificates"][2]["subject"]' < "$T/ok.out")" = "CN=Long Lived CA" ] || fail "--all: the long CA is not last"
ok "expiring --within 10" kh --json cert expiring --within 10
[ "$(json_get 'len(d["certificates"])' < "$T/ok.out")" = 0 ] || fail "--within 10 lists something"
ok "expiring (human)" kh cert expiring
grep -q "Short Lived CA" "$T/ok.out" && grep -q "web.example.com" "$T/ok.out" || fail "the human listing lacks them"
expect_err USAGE "bad --within" kh cert expiring --within soon

# ---- notifications, exactly once per period ----
[ "$(lines)" = 0 ] || fail "notified before the monitor ran"
step 0 2
[ "$(json_get 'len(d["notified"])' < "$T/mon.json")" = 2 ] || fail "monitor does not report 2 notified"
step 0 2
[ "$(json_get 'len(d["notified"])' < "$T/mon.json")" = 0 ] || fail "a second run in the period notified again"
step 1 2
step 2 4
step 3 4
step 4 6
ok "expiring after three periods" kh --json cert expiring
[ "$(json_get 'd["certificates"][0]["notifications"]' < "$T/ok.out")" = 3 ] || fail "the listing does not count 3 notices"
[ "$(days_ok < "$T/ok.out")" = true ] || fail "days left at day 4 are not whole days to notAfter"
[ "$(grep -c "certificate expires in" "$T/keyholdd.log")" = 6 ] || fail "the log does not hold 6 notices"
# A restart remembers the last notices.
kh_restart
step 5 6
step 6 8
# Past notAfter: "expired", once per period still.
step 21 10
step 22 10
[ "$(grep -c '^expired|' "$T/hook.out")" = 2 ] || fail "the expired certificates were not notified as expired"
[ "$(grep -c "certificate EXPIRED" "$T/keyholdd.log")" = 2 ] || fail "the log lacks the expired notices"
[ "$(grep -c "|$short_fp|" "$T/hook.out")" = 5 ] || fail "the short CA was not notified 5 times"
[ "$(grep -c "|$web_fp|" "$T/hook.out")" = 5 ] || fail "web was not notified 5 times"
grep -v "Short Lived\|web.example.com" "$T/hook.out" && fail "another certificate was notified"

# What the hook got: the arguments after the configured ones, and nothing
# of keyholdd's environment or descriptors.
grep -Eq "^expiring\|$web_fp\|(19|20)\|--from\|keyhold\|CN=web.example.com\|(19|20)\|trustpoint:web\|$web_fp$" "$T/hook.out" \
  || { cat "$T/hook.out" >&2; fail "the hook's arguments for web are not as documented"; }
[ "$(cat "$T/hook.env")" = unset ] || fail "the hook inherited keyholdd's environment"
for fd in $(cat "$T/hook.fds"); do
  case "$fd" in 0 | 1 | 2 | 255) ;; *) fail "the hook inherited descriptor $fd" ;; esac
done

# A certificate keyhold no longer holds is forgotten.
ok "remove the short CA from the store" kh truststore remove short "$short_fp"
ok "delete term" kh trustpoint delete term --force
step 23 11
kh_state_sql 'SELECT fingerprint FROM expiry_notices' > "$T/notices.txt"
grep -q "$short_fp" "$T/notices.txt" && fail "the notice of a certificate keyhold no longer holds was kept"
grep -q "$web_fp" "$T/notices.txt" || fail "web's notice is gone"

# The configuration is checked at start: a hook that is not an absolute
# path to a program is refused with the line.
kh_stop
printf '[service]\nsocket = %s\nstate_dir = %s/state\n[token]\nmodule = %s\nuri = %s\npin_file = %s\n[expiry]\nhook = notify.sh\n' \
  "$SOCK" "$T" "$TOKEN_MODULE" "$TOKEN_URI" "$TOKEN_PIN_FILE" > "$T/bad.conf"
rc=0; "$KEYHOLDD" --config "$T/bad.conf" --check > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" = 78 ] && grep -q "bad.conf:9: hook: 'notify.sh' must be the absolute path" "$T/bad.out" || { cat "$T/bad.out"; fail "a relative hook was accepted"; }
sed -i 's/^hook = .*/notify_every = 2/' "$T/bad.conf"
rc=0; "$KEYHOLDD" --config "$T/bad.conf" --check > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" = 78 ] && grep -q "written with a unit" "$T/bad.out" || { cat "$T/bad.out"; fail "a duration without a unit was accepted"; }
