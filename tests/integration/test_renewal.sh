#!/usr/bin/env bash
# Renewal at renew-at PERCENT of the certificate's lifetime, driven by the
# expiry monitor with keyholdd's test clock: self-signed trustpoints are
# re-issued (a new key with --renew-regenerate, the same key otherwise);
# terminal ones get a CSR staged and show "renewal pending" while the old
# key and certificate stay in use (export returns the old certificate)
# until the CA's new certificate is imported. Each certificate is checked
# with openssl.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"
. "$(dirname "$0")/revocation_lib.sh"

DAY=86400
kh_config "[expiry]
check_interval = 7d"
kh_start
kh_has_type p256 || fail "the trustpoints need p256 keys"
pki_ca_init "$T/rca" "Renewal CA"

pub() { openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
tpj() { kh --json trustpoint show "$1" > "$T/tp.json" || fail "show $1"; json_get "$2" < "$T/tp.json"; }
monitor() {
  rev_clock $(($1 * DAY))
  ok "monitor at day $1" kh --json cert monitor
  cp "$T/ok.out" "$T/mon.json"
}

# ---- options ----
expect_err USAGE "renew-at 100" kh trustpoint create x --generate p256 --subject "CN=x" --renew-at 100
expect_err USAGE "regenerate without renew-at" kh trustpoint create x --generate p256 --subject "CN=x" \
  --renew-regenerate
ok "self, new key at 50%" kh trustpoint create selfie --generate p256 --subject "CN=selfie.example.com" --days 10 \
  --renew-at 50 --renew-regenerate
ok "self, same key" kh trustpoint create same --generate p256 --subject "CN=same.example.com" --days 10
ok "set renew-at afterwards" kh trustpoint set same --renew-at 50
[ "$(tpj same 'd["renew_at"]')" = 50 ] && [ "$(tpj same 'd["renew_regenerate"]')" = false ] || fail "set renew-at"
ok "terminal, new key" kh trustpoint create term --generate p256 --subject "CN=term.example.com" --enrollment terminal \
  --renew-at 50 --renew-regenerate
ok "terminal, same key" kh trustpoint create termsame --generate p256 --subject "CN=termsame.example.com" \
  --enrollment terminal --renew-at 60
ok "set the key mode only" kh trustpoint set termsame --renew-same-key
[ "$(tpj termsame 'd["renew_at"]')" = 60 ] || fail "--renew-same-key lost the percent"
ok "renew at 50 instead" kh trustpoint set termsame --renew-at 50
expect_err USAGE "renew-at junk" kh trustpoint set termsame --renew-at lots
expect_err NOT_FOUND "set on no trustpoint" kh trustpoint set nope --renew-at 50

ok "enroll selfie" kh trustpoint enroll selfie --out "$T/selfie0.pem"
ok "enroll same" kh trustpoint enroll same --out "$T/same0.pem"
for tp in term termsame; do
  ok "authenticate $tp" kh trustpoint authenticate "$tp" --ca "$T/rca/ca.pem" --yes
  ok "enroll $tp" kh trustpoint enroll "$tp" --out "$T/$tp.csr"
  pki_ca_sign "$T/rca" "$T/$tp.csr" "$T/${tp}0.pem" -days 10
  ok "import $tp" kh trustpoint import "$tp" --cert "$T/${tp}0.pem"
done
[ "$(tpj term 'd["renewal"]')" = "" ] || fail "renewal before the threshold"

# ---- before the threshold nothing happens ----
monitor 4
[ "$(json_get 'len(d["renewals"])' < "$T/mon.json")" = 0 ] || fail "renewed at day 4 of 10"
ok "export selfie" kh trustpoint export selfie --out "$T/selfie-d4.pem"
cmp -s "$T/selfie0.pem" "$T/selfie-d4.pem" || fail "selfie changed before its threshold"

# ---- past 50% of the lifetime ----
monitor 6
[ "$(json_get 'len(d["renewals"])' < "$T/mon.json")" = 4 ] || { cat "$T/mon.json"; fail "not every trustpoint was renewed"; }
[ "$(json_get 'len(d["errors"])' < "$T/mon.json")" = 0 ] || fail "renewal errors"
grep -q "trustpoint 'selfie': renewed at 50%" "$T/keyholdd.log" || fail "the log lacks selfie's renewal"

# self, new key: a new certificate on a new key, valid from keyhold's now.
ok "export selfie" kh trustpoint export selfie --out "$T/selfie1.pem"
[ "$(serial "$T/selfie1.pem")" != "$(serial "$T/selfie0.pem")" ] || fail "selfie was not re-issued"
[ "$(pub "$T/selfie1.pem")" != "$(pub "$T/selfie0.pem")" ] || fail "selfie kept its key"
[ "$(tpj selfie 'd["key"]')" = selfie.1 ] || fail "selfie is not on its new key"
if kh key show selfie > /dev/null 2>&1; then fail "selfie's old key survived"; fi
cmp -s <(pub "$T/selfie1.pem") <(kh key show selfie.1 --pem | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1) \
  || fail "the new certificate is not for the new key"
openssl verify -attime $(($(date +%s) + 6 * DAY + 60)) -CAfile "$T/selfie1.pem" "$T/selfie1.pem" > /dev/null \
  || fail "the re-issued certificate does not verify"
[ "$(tpj selfie 'd["renewal"]')" = "" ] || fail "selfie still shows renewal"

# self, same key
ok "export same" kh trustpoint export same --out "$T/same1.pem"
[ "$(serial "$T/same1.pem")" != "$(serial "$T/same0.pem")" ] || fail "same was not re-issued"
[ "$(pub "$T/same1.pem")" = "$(pub "$T/same0.pem")" ] || fail "same changed its key"

# terminal, new key: pending, and the old certificate stays in use.
[ "$(tpj term 'd["renewal"]')" = pending ] || fail "term is not renewal pending"
[ "$(tpj term 'd["renewal_pending"]')" = true ] || fail "term: renewal_pending"
[ "$(tpj term 'd["key"]')" = term ] && [ "$(tpj term 'd["next_key"]')" = term.1 ] || fail "term's keys"
ok "list shows it" kh trustpoint list
grep -E "^term +.*renewal pending" "$T/ok.out" > /dev/null || { cat "$T/ok.out"; fail "list does not show term pending"; }
ok "show" kh trustpoint show term
grep -q "RENEWAL PENDING" "$T/ok.out" || fail "show does not say renewal pending"
ok "export term (old)" kh trustpoint export term --out "$T/term-old.pem"
cmp -s "$T/term0.pem" "$T/term-old.pem" || fail "export does not return the old certificate while pending"
ok "the staged CSR" kh trustpoint show term --csr
cp "$T/ok.out" "$T/term1.csr"
pki_req_verify "$T/term1.csr" || fail "the staged CSR does not verify"
cmp -s <(pki_pub_of "$T/term1.csr") <(kh key show term.1 --pem | openssl pkey -pubin -outform DER) \
  || fail "the staged CSR is not for the new key"

# terminal, same key: a CSR for the key in use.
[ "$(tpj termsame 'd["renewal"]')" = pending ] || fail "termsame is not renewal pending"
ok "the staged CSR (same key)" kh trustpoint show termsame --csr
cp "$T/ok.out" "$T/termsame1.csr"
cmp -s <(pki_pub_of "$T/termsame1.csr") <(kh key show termsame --pem | openssl pkey -pubin -outform DER) \
  || fail "termsame's CSR is not for its key"

# Another pass: nothing more to do (no second key, no second certificate).
monitor 6
[ "$(json_get 'len(d["renewals"])' < "$T/mon.json")" = 0 ] || { cat "$T/mon.json"; fail "a second pass renewed again"; }
[ "$(tpj term 'd["next_key"]')" = term.1 ] || fail "a second pass made another key"

# ---- the CA answers: import completes the rollover ----
start=$(rev_asn1_time $((6 * DAY)))
end=$(rev_asn1_time $((16 * DAY)))
pki_ca_sign "$T/rca" "$T/term1.csr" "$T/term1.pem" -startdate "$start" -enddate "$end"
ok "import term's renewal" kh trustpoint import term --cert "$T/term1.pem"
grep -q "deleted the old key term" "$T/ok.out" || fail "the rollover did not delete the old key"
ok "export term (new)" kh trustpoint export term --out "$T/term-new.pem"
cmp -s <(openssl x509 -in "$T/term1.pem" -outform DER) <(openssl x509 -in "$T/term-new.pem" -outform DER) \
  || fail "export does not return the new certificate"
[ "$(tpj term 'd["key"]')" = term.1 ] && [ "$(tpj term 'd["renewal"]')" = "" ] || fail "term after import"
pki_ca_sign "$T/rca" "$T/termsame1.csr" "$T/termsame1.pem" -startdate "$start" -enddate "$end"
ok "import termsame's renewal" kh trustpoint import termsame --cert "$T/termsame1.pem"
[ "$(tpj termsame 'd["renewal"]')" = "" ] && [ "$(tpj termsame 'd["csr_pending"]')" = false ] || fail "termsame after import"

monitor 7
[ "$(json_get 'len(d["renewals"])' < "$T/mon.json")" = 0 ] || fail "renewed again after the imports"
# renew-at off stops it.
ok "off" kh trustpoint set selfie --renew-at off
monitor 20
grep -q '"selfie: renewed' "$T/mon.json" && fail "selfie renewed with renew-at off"
[ "$(tpj selfie 'd["renew_at"]')" = 0 ] || fail "renew-at off"

ok "status" kh status
kh_stop
