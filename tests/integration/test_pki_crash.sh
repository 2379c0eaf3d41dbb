#!/usr/bin/env bash
# Crash safety and persistence of the PKI state. keyholdd (a KEYHOLD_TESTING
# build) is made to kill itself with SIGKILL at named points inside create,
# enroll, regenerate, import and delete; after a restart the trustpoint is in its
# old or its new state, never between, and a key the token holds that no
# trustpoint references is listed as orphaned by `keyhold status`.
# Trustpoints, pending CSRs and trust stores survive a restart; the
# database is WAL with a versioned schema and refuses a newer one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

kh_start
TYPE=p256
kh_has_type p256 || TYPE=rsa2048
kh_has_type "$TYPE" || fail "the token offers neither p256 nor rsa2048"
pki_ca_init "$T/root" "Crash Root CA"

# kh_crash POINT CMD...: restarts keyholdd so that it kills itself at
# POINT, runs CMD (which must fail: its connection dies), checks that
# keyholdd died of SIGKILL at that point, and starts it again normally.
kh_crash() {
  local point=$1 pid rc=0
  shift
  kh_stop
  export KEYHOLD_TEST_CRASH_AT=$point
  kh_start
  unset KEYHOLD_TEST_CRASH_AT
  pid=$KH_PID
  if "$@" > "$T/crash.out" 2> "$T/crash.err"; then
    fail "$point: '$*' succeeded although keyholdd was to be killed"
  fi
  wait "$pid" || rc=$?
  KH_PID=""
  [ "$rc" = 137 ] || fail "$point: keyholdd exited with status $rc, not by SIGKILL"
  grep -q "KEYHOLD_TEST_CRASH_AT=$point: killing keyholdd" "$T/keyholdd.log" || fail "$point: keyholdd did not die there"
  kh_start
}

orphans() { kh --json status | json_get '",".join(d["orphaned_keys"])'; }
tp_field() { kh --json trustpoint show "$1" | json_get "d.get(\"$2\", \"\")"; }
cert_fp() { kh --json trustpoint show "$1" | json_get 'd["certificate"]["fingerprint_sha256"] if "certificate" in d else ""'; }

# ---- create ----
kh_crash create.after_intent kh trustpoint create c0 --generate "$TYPE" --subject "CN=c0"
expect_err NOT_FOUND "create.after_intent: no trustpoint" kh trustpoint show c0
expect_err NOT_FOUND "create.after_intent: no key" kh key show c0
[ "$(orphans)" = "" ] || fail "create.after_intent: orphans '$(orphans)'"
grep -q "forgetting key 'c0'" "$T/keyholdd.log" || fail "create.after_intent: the intent was not cleaned up"

kh_crash create.after_keygen kh trustpoint create c1 --generate "$TYPE" --subject "CN=c1"
expect_err NOT_FOUND "create.after_keygen: old state (no trustpoint)" kh trustpoint show c1
ok "create.after_keygen: the key exists" kh key show c1
[ "$(orphans)" = "c1" ] || fail "create.after_keygen: orphans are '$(orphans)', not c1"
kh status | grep -q "orphaned key (no trustpoint uses it): c1" || fail "status does not print the orphan"
expect_err ALREADY_EXISTS "create over the orphan" kh trustpoint create c1 --generate "$TYPE" --subject "CN=c1"
expect_msg "--key c1"
ok "adopt the orphan with --key" kh trustpoint create c1 --key c1 --subject "CN=c1"
[ "$(orphans)" = "" ] || fail "an adopted key is still orphaned"
ok "delete c1" kh trustpoint delete c1 --force
expect_err NOT_FOUND "the adopted generated key went with it" kh key show c1

kh_crash create.after_commit kh trustpoint create c2 --generate "$TYPE" --subject "CN=c2"
ok "create.after_commit: new state" kh trustpoint show c2
[ "$(orphans)" = "" ] || fail "create.after_commit: orphans '$(orphans)'"

# ---- a terminal trustpoint with an imported certificate ----
ok "create r" kh trustpoint create r --generate "$TYPE" --subject "CN=r.example.com" --enrollment terminal
ok "authenticate r" kh trustpoint authenticate r --ca "$T/root/ca.pem" --yes
ok "enroll r" kh trustpoint enroll r --out "$T/r.csr"
kh_crash enroll.before_commit kh trustpoint enroll r
ok "enroll.before_commit: a CSR is pending" kh trustpoint show r --csr
cmp -s <(openssl req -in "$T/r.csr" -outform DER) <(openssl req -in "$T/ok.out" -outform DER) \
  || fail "enroll.before_commit: the pending CSR is not the one from before the crash"
pki_ca_sign "$T/root" "$T/r.csr" "$T/r.crt"
kh_crash import.before_commit kh trustpoint import r --cert "$T/r.crt"
[ "$(cert_fp r)" = "" ] || fail "import.before_commit: a certificate was installed"
[ "$(tp_field r csr_pending)" = true ] || fail "import.before_commit: the pending CSR was lost"
ok "import r" kh trustpoint import r --cert "$T/r.crt"
fp1=$(pki_fp "$T/r.crt")
[ "$(cert_fp r)" = "$fp1" ] || fail "import did not install the certificate"

# ---- regenerate (terminal) ----
for point in regenerate.after_intent regenerate.after_keygen regenerate.before_commit; do
  kh_crash "$point" kh trustpoint regenerate r
  [ "$(tp_field r key)" = r ] || fail "$point: the trustpoint left its key"
  [ "$(tp_field r next_key)" = "" ] || fail "$point: a rollover is recorded"
  [ "$(cert_fp r)" = "$fp1" ] || fail "$point: the certificate changed"
  [ "$(tp_field r csr_pending)" = false ] || fail "$point: a CSR is pending"
  if [ "$point" = regenerate.after_intent ]; then
    [ "$(orphans)" = "" ] || fail "$point: orphans '$(orphans)'"
    expect_err NOT_FOUND "$point: no new key" kh key show r.1
  else
    [ "$(orphans)" = "r.1" ] || fail "$point: orphans are '$(orphans)', not r.1"
    ok "$point: delete the orphan" kh key delete r.1 --force
    [ "$(orphans)" = "" ] || fail "$point: the deleted orphan is still listed"
  fi
done
kh_crash regenerate.after_commit kh trustpoint regenerate r
[ "$(tp_field r key)" = r ] || fail "regenerate.after_commit: the old key is not in use"
[ "$(tp_field r next_key)" = r.1 ] || fail "regenerate.after_commit: the rollover was lost"
[ "$(cert_fp r)" = "$fp1" ] || fail "regenerate.after_commit: the certificate changed"
[ "$(orphans)" = "" ] || fail "regenerate.after_commit: orphans '$(orphans)'"
ok "the pending CSR survived" kh trustpoint show r --csr
cp "$T/ok.out" "$T/r1.csr"
pki_req_verify "$T/r1.csr" || fail "the pending CSR does not verify"
cmp -s <(pki_pub_of "$T/r1.csr") <(kh key show r.1 --pem | openssl pkey -pubin -outform DER) \
  || fail "the pending CSR is not for the new key"
pki_ca_sign "$T/root" "$T/r1.csr" "$T/r1.crt"
fp2=$(pki_fp "$T/r1.crt")

# ---- import completing the rollover ----
kh_crash import.before_commit kh trustpoint import r --cert "$T/r1.crt"
[ "$(tp_field r key)" = r ] || fail "import.before_commit (rollover): the key moved"
[ "$(tp_field r next_key)" = r.1 ] || fail "import.before_commit (rollover): the rollover was lost"
[ "$(cert_fp r)" = "$fp1" ] || fail "import.before_commit (rollover): the certificate changed"
ok "both keys still exist" kh key show r
ok "both keys still exist" kh key show r.1
kh_crash import.after_commit kh trustpoint import r --cert "$T/r1.crt"
[ "$(tp_field r key)" = r.1 ] || fail "import.after_commit: the trustpoint is not on the new key"
[ "$(tp_field r next_key)" = "" ] || fail "import.after_commit: a rollover is still pending"
[ "$(cert_fp r)" = "$fp2" ] || fail "import.after_commit: the new certificate is not installed"
expect_err NOT_FOUND "import.after_commit: the old key was deleted at restart" kh key show r
[ "$(orphans)" = "" ] || fail "import.after_commit: orphans '$(orphans)'"
ok "export after the interrupted rollover" kh trustpoint export r --out "$T/r-now.pem"
openssl verify -CAfile "$T/root/ca.pem" "$T/r-now.pem" > /dev/null || fail "the exported certificate does not verify"

# ---- regenerate (self) and delete ----
ok "create s" kh trustpoint create s --generate "$TYPE" --subject "CN=s"
ok "enroll s" kh trustpoint enroll s
kh_crash regenerate.after_commit kh trustpoint regenerate s
[ "$(tp_field s key)" = s.1 ] || fail "regenerate.after_commit (self): not on the new key"
expect_err NOT_FOUND "regenerate.after_commit (self): the old key was deleted at restart" kh key show s
ok "the new self-signed certificate" kh trustpoint export s --out "$T/s.pem"
cmp -s <(pki_pub_of "$T/s.pem") <(kh key show s.1 --pem | openssl pkey -pubin -outform DER) \
  || fail "the self-signed certificate is not for the new key"
kh_crash delete.after_commit kh trustpoint delete s --force
expect_err NOT_FOUND "delete.after_commit: the trustpoint is gone" kh trustpoint show s
expect_err NOT_FOUND "delete.after_commit: its key was deleted at restart" kh key show s.1
[ "$(orphans)" = "" ] || fail "delete.after_commit: orphans '$(orphans)'"

# ---- persistence across a clean restart ----
ok "create p" kh trustpoint create p --generate "$TYPE" --subject "CN=p" --enrollment terminal --san "DNS:p.example.com"
ok "authenticate p" kh trustpoint authenticate p --ca "$T/root/ca.pem" --yes
ok "enroll p" kh trustpoint enroll p --out "$T/p.csr"
ok "truststore" kh truststore add persist "$T/root/ca.pem"
openssl ca -batch -config "$T/root/ca.cnf" -gencrl -out "$T/root.crl" 2> /dev/null
ok "crl" kh crl import persist "$T/root.crl"
# The revocation scheduler's findings (revocation_state, ...) are looked up
# afresh by each pass (one runs at start): not part of what must persist.
no_revstate() {
  python3 -c 'import json,sys
def f(o):
    if isinstance(o, dict): return {k: f(v) for k, v in o.items() if not k.startswith("revocation_")}
    if isinstance(o, list): return [f(v) for v in o]
    return o
print(json.dumps(f(json.load(sys.stdin)), sort_keys=True))'
}
kh --json trustpoint list | no_revstate > "$T/before.tps"
kh --json trustpoint show p | no_revstate > "$T/before.p"
kh --json truststore list persist > "$T/before.ts"
kh_restart
kh --json trustpoint list | no_revstate > "$T/after.tps"
kh --json trustpoint show p | no_revstate > "$T/after.p"
kh --json truststore list persist > "$T/after.ts"
cmp -s "$T/before.tps" "$T/after.tps" || { diff "$T/before.tps" "$T/after.tps" >&2; fail "trustpoints changed across a restart"; }
cmp -s "$T/before.p" "$T/after.p" || fail "trustpoint p changed across a restart"
cmp -s "$T/before.ts" "$T/after.ts" || fail "the trust store changed across a restart"
json_get 'd["csr_pem"]' < "$T/after.p" > "$T/p-after.csr"
cmp -s <(openssl req -in "$T/p.csr" -outform DER) <(openssl req -in "$T/p-after.csr" -outform DER) \
  || fail "the pending CSR changed across a restart"
[ "$(json_get 'len(d["stores"][0]["crls"])' < "$T/after.ts")" = 1 ] || fail "the CRL did not survive"

# ---- the database ----
kh_stop
db="$T/state/keyhold.db"
if [ "${KH_STATE:-sqlite}" = sqlite ]; then
  [ "$(sqlite3 "$db" 'PRAGMA journal_mode')" = wal ] || fail "the database is not in WAL mode"
  [ "$(stat -c %a "$db")" = 600 ] || fail "the database is not mode 0600"
fi
[ "$(kh_state_version)" = 10 ] || fail "schema version is not 10"
kh_state_set_version 99
rc=0
"$KEYHOLDD" --config "$T/keyhold.conf" --foreground >> "$T/keyholdd.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "keyholdd started on a database from a newer version"
grep -q "schema version 99, newer than this keyholdd" "$T/keyholdd.log" || fail "no reason given for refusing the database"
kh_state_set_version 10
kh_start
ok "back to normal" kh trustpoint show p
kh_stop
