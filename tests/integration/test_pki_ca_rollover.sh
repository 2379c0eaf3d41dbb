#!/usr/bin/env bash
# CA rollover on re-authenticate (issue 16): `trustpoint authenticate TP`
# to a new CA while TP's certificate chains to the old one keeps the old CA
# and certificate in use and shows the new CA as pending; importing a
# certificate the new CA issued switches CA and certificate in one
# transaction (a crash just before the commit leaves the old state, pending
# CA included); a certificate from neither CA is refused. CAs are
# `openssl ca`; the results are checked with `openssl verify`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"
. "$(dirname "$0")/revocation_lib.sh"

rev_ca old "Old Root CA"
rev_ca new "New Root CA"
rev_ca other "Other Root CA"
kh_start
kh_has_type p256 || fail "the trustpoint needs a p256 key"

ok "create" kh trustpoint create web --generate p256 --subject "CN=web.example.com" --enrollment terminal
ok "authenticate old" kh trustpoint authenticate web --ca "$REV_CAS/old/ca.pem" --yes
ok "enroll" kh trustpoint enroll web --out "$T/web1.csr"
openssl ca -batch -config "$REV_CAS/old/ca.cnf" -in "$T/web1.csr" -out "$T/web1.pem" -notext 2> /dev/null || fail "sign 1"
ok "import" kh trustpoint import web --cert "$T/web1.pem"
old_fp=$(pki_fp "$T/web1.pem")

# ---- the new CA is pending; the old certificate stays in use ----
ok "authenticate new" kh --json trustpoint authenticate web --ca "$REV_CAS/new/ca.pem" --yes
[ "$(json_get 'd["pending"]' < "$T/ok.out")" = true ] || fail "the new CA is not pending"
ok "show" kh --json trustpoint show web
[ "$(json_get 'd["ca"][0]["subject"]' < "$T/ok.out")" = "CN=Old Root CA" ] || fail "the CA changed before the import"
[ "$(json_get 'd["pending_ca"]["subject"]' < "$T/ok.out")" = "CN=New Root CA" ] || fail "show lacks the pending CA"
[ "$(json_get 'd["certificate"]["fingerprint_sha256"]' < "$T/ok.out")" = "$old_fp" ] || fail "the certificate changed"
ok "show (text)" kh trustpoint show web
grep -q "^pending ca:" "$T/ok.out" || fail "the text does not show the pending CA"
ok "list" kh trustpoint list
grep -q "^web .*ca rollover" "$T/ok.out" || fail "list does not show the rollover"
ok "export" kh trustpoint export web --out "$T/in-use.pem"
cmp -s <(openssl x509 -in "$T/in-use.pem" -outform DER) <(openssl x509 -in "$T/web1.pem" -outform DER) \
  || fail "export does not give the certificate in use"

# ---- a certificate from neither CA ----
ok "enroll again" kh trustpoint enroll web --out "$T/web2.csr"
openssl ca -batch -config "$REV_CAS/other/ca.cnf" -in "$T/web2.csr" -out "$T/stray.pem" -notext 2> /dev/null || fail "sign stray"
expect_err FAILED_PRECONDITION "a third CA" kh trustpoint import web --cert "$T/stray.pem"
expect_msg "nor to its pending CA"

# ---- crash just before the commit: the old state, pending CA included ----
openssl ca -batch -config "$REV_CAS/new/ca.cnf" -in "$T/web2.csr" -out "$T/web2.pem" -notext 2> /dev/null || fail "sign 2"
kh_stop
export KEYHOLD_TEST_CRASH_AT=import.before_commit
kh_start
unset KEYHOLD_TEST_CRASH_AT
pid=$KH_PID
kh trustpoint import web --cert "$T/web2.pem" > /dev/null 2>&1 && fail "the import succeeded although keyholdd was to die"
rc=0
wait "$pid" || rc=$?
KH_PID=""
[ "$rc" = 137 ] || fail "keyholdd exited with $rc, not by SIGKILL"
kh_start
ok "show after the crash" kh --json trustpoint show web
[ "$(json_get 'd["ca"][0]["subject"]' < "$T/ok.out")" = "CN=Old Root CA" ] || fail "the crash half-switched the CA"
[ "$(json_get 'd["pending_ca"]["subject"]' < "$T/ok.out")" = "CN=New Root CA" ] || fail "the crash lost the pending CA"
[ "$(json_get 'd["certificate"]["fingerprint_sha256"]' < "$T/ok.out")" = "$old_fp" ] || fail "the crash changed the certificate"

# ---- the new CA's certificate switches both at once ----
ok "import from the new CA" kh --json trustpoint import web --cert "$T/web2.pem"
[ "$(json_get 'd["ca_rollover"]' < "$T/ok.out")" = true ] || fail "the import does not report the CA rollover"
ok "show after" kh --json trustpoint show web
[ "$(json_get 'd["ca"][0]["subject"]' < "$T/ok.out")" = "CN=New Root CA" ] || fail "the CA did not switch"
[ "$(json_get '"pending_ca" in d' < "$T/ok.out")" = false ] || fail "the pending CA is still there"
[ "$(json_get 'd["certificate"]["fingerprint_sha256"]' < "$T/ok.out")" = "$(pki_fp "$T/web2.pem")" ] || fail "the certificate did not switch"
ok "export the new" kh trustpoint export web --out "$T/now.pem"
openssl verify -CAfile "$REV_CAS/new/ca.pem" "$T/now.pem" > /dev/null || fail "the certificate in use does not verify with the new CA"
# The old CA's certificate is refused now.
expect_err FAILED_PRECONDITION "the old CA's certificate" kh trustpoint import web --cert "$T/web1.pem"

# ---- destructive commands ask for --force (docs/CLI.md) ----
ok "switch to self" kh trustpoint set web --enrollment self
expect_err FAILED_PRECONDITION "regenerate over a CA-signed certificate" kh trustpoint regenerate web
expect_msg "give --force"
ok "show: unchanged" kh --json trustpoint show web
[ "$(json_get 'd["certificate"]["fingerprint_sha256"]' < "$T/ok.out")" = "$(pki_fp "$T/web2.pem")" ] || fail "the refused regenerate replaced it"
ok "regenerate --force" kh --json trustpoint regenerate web --force
expect_err FAILED_PRECONDITION "delete with its generated key" kh trustpoint delete web
expect_msg "--force"
ok "still there" kh trustpoint show web
ok "delete --force" kh --json trustpoint delete web --force
[ "$(json_get 'len(d["deleted_keys"])' < "$T/ok.out")" -ge 1 ] || fail "delete --force deleted no key"
log "CA rollover: pending CA shown, old certificate in use, one atomic switch at import"
