#!/usr/bin/env bash
# Trustpoints end to end, the ASA way, with OpenSSL as the CA: for RSA and
# EC keys, enrollment terminal (create, authenticate, enroll, `openssl ca`
# signs, import as PEM, DER and PKCS#7, export, `openssl verify`) and
# enrollment self (create, enroll, export, verify); key rollover with
# regenerate in both modes; deletion; and every refusal the issue lists.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

kh_start
pki_ca_init "$T/root" "Test Root CA"
pki_ca_init "$T/sub" "Test Issuing CA" "$T/root"
pki_ca_init "$T/other" "Other Root CA"
cat "$T/sub/ca.pem" "$T/root/ca.pem" > "$T/cachain.pem"

types=()
for t in rsa2048 p256 p384; do kh_has_type "$t" && types+=("$t"); done
[ ${#types[@]} -ge 2 ] || fail "the token offers neither RSA nor EC keys"

for type in "${types[@]}"; do
  tp="asa-$type"
  # ---- enrollment terminal ----
  ok "$type: create" kh trustpoint create "$tp" --generate "$type" --subject "CN=$tp.example.com,O=Example,C=US" \
    --fqdn "$tp.example.com" --san "IP:192.0.2.10" --enrollment terminal --revocation crl,none
  ok "$type: the key exists, named after the trustpoint" kh key show "$tp"
  expect_err ALREADY_EXISTS "$type: create twice" kh trustpoint create "$tp" --generate "$type" --subject "CN=x"

  # Import before authenticate is refused.
  ok "$type: enroll" kh trustpoint enroll "$tp" --out "$T/$tp.csr"
  pki_req_verify "$T/$tp.csr" || fail "$type: openssl req -verify rejects the trustpoint CSR"
  cmp -s <(pki_pub_of "$T/$tp.csr") <(kh key show "$tp" --pem | openssl pkey -pubin -outform DER) \
    || fail "$type: the CSR is not for the trustpoint's key"
  openssl req -in "$T/$tp.csr" -noout -text | grep -q "DNS:$tp.example.com, IP Address:192.0.2.10" \
    || fail "$type: the FQDN and SAN are not in the CSR"
  pki_ca_sign "$T/sub" "$T/$tp.csr" "$T/$tp.crt"
  expect_err FAILED_PRECONDITION "$type: import before authenticate" kh trustpoint import "$tp" --cert "$T/$tp.crt"
  expect_msg "authenticate"

  # Authenticate: the fingerprint is shown and nothing is accepted without
  # confirmation; a wrong fingerprint and a leaf certificate are refused.
  fp=$(pki_fp "$T/root/ca.pem")
  expect_err FAILED_PRECONDITION "$type: authenticate without confirmation" kh trustpoint authenticate "$tp" --ca "$T/root/ca.pem"
  expect_msg "$fp"
  kh --json trustpoint show "$tp" > "$T/show.json"
  [ "$(json_get 'd["authenticated"]' < "$T/show.json")" = false ] || fail "$type: authenticated without confirmation"
  expect_err FAILED_PRECONDITION "$type: wrong fingerprint" kh trustpoint authenticate "$tp" --ca "$T/root/ca.pem" \
    --fingerprint "$(pki_fp "$T/other/ca.pem")"
  expect_msg "fingerprint mismatch"
  expect_err INVALID_ARGUMENT "$type: malformed fingerprint" kh trustpoint authenticate "$tp" --ca "$T/root/ca.pem" --fingerprint zz
  expect_err FAILED_PRECONDITION "$type: authenticate with a leaf" kh trustpoint authenticate "$tp" --ca "$T/$tp.crt" --yes
  expect_msg "CA:TRUE"
  expect_err INVALID_ARGUMENT "$type: authenticate with a bundle" kh trustpoint authenticate "$tp" --ca "$T/cachain.pem" --yes
  # Fingerprint with colons and upper case, as openssl prints it.
  fpc=$(openssl x509 -in "$T/root/ca.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
  ok "$type: authenticate with the pinned fingerprint" kh trustpoint authenticate "$tp" --ca "$T/root/ca.pem" --fingerprint "$fpc"
  grep -q "$fp" "$T/ok.out" || fail "$type: authenticate does not show the fingerprint"

  # A certificate for another key, and one from another CA, are refused.
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/stranger.key" 2> /dev/null
  openssl req -new -key "$T/stranger.key" -subj "/CN=$tp.example.com" -out "$T/stranger.csr" 2> /dev/null
  pki_ca_sign "$T/sub" "$T/stranger.csr" "$T/stranger.crt"
  cat "$T/stranger.crt" "$T/sub/ca.pem" > "$T/stranger-chain.pem"
  expect_err FAILED_PRECONDITION "$type: import a certificate for another key" kh trustpoint import "$tp" --cert "$T/stranger-chain.pem"
  expect_msg "another key"
  pki_ca_sign "$T/other" "$T/$tp.csr" "$T/$tp-other.crt"
  expect_err FAILED_PRECONDITION "$type: import from another CA" kh trustpoint import "$tp" --cert "$T/$tp-other.crt"
  expect_msg "does not chain"
  # The leaf alone cannot reach the root (the issuing CA is missing).
  expect_err FAILED_PRECONDITION "$type: import without the intermediate" kh trustpoint import "$tp" --cert "$T/$tp.crt"
  # Malformed input.
  printf -- '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n' > "$T/bad.pem"
  expect_err INVALID_ARGUMENT "$type: malformed PEM" kh trustpoint import "$tp" --cert "$T/bad.pem"
  head -c 300 /dev/urandom > "$T/bad.der"
  expect_err INVALID_ARGUMENT "$type: malformed DER" kh trustpoint import "$tp" --cert "$T/bad.der"
  openssl x509 -in "$T/$tp.crt" -outform DER | head -c 200 > "$T/trunc.der"
  expect_err INVALID_ARGUMENT "$type: truncated DER" kh trustpoint import "$tp" --cert "$T/trunc.der"
  expect_err FAILED_PRECONDITION "$type: export before import" kh trustpoint export "$tp"

  # PKCS#7 with the chain, as `openssl crl2pkcs7 -nocrl` writes it.
  openssl crl2pkcs7 -nocrl -certfile "$T/$tp.crt" -certfile "$T/sub/ca.pem" -out "$T/$tp.p7b"
  ok "$type: import PKCS#7" kh trustpoint import "$tp" --cert "$T/$tp.p7b"
  grep -q "chain of 2" "$T/ok.out" || { cat "$T/ok.out" >&2; fail "$type: the chain was not kept"; }
  kh --json trustpoint show "$tp" > "$T/show.json"
  [ "$(json_get 'd["certificate"]["fingerprint_sha256"]' < "$T/show.json")" = "$(pki_fp "$T/$tp.crt")" ] \
    || fail "$type: show does not report the imported certificate"
  [ "$(json_get 'd["csr_pending"]' < "$T/show.json")" = false ] || fail "$type: the CSR is still pending after import"

  # Export: PEM, PEM chain, DER, PKCS#7; OpenSSL verifies the chain.
  ok "$type: export" kh trustpoint export "$tp" --out "$T/$tp.out.pem"
  cmp -s <(openssl x509 -in "$T/$tp.out.pem" -outform DER) <(openssl x509 -in "$T/$tp.crt" -outform DER) \
    || fail "$type: the exported certificate differs from the imported one"
  ok "$type: export --chain" kh trustpoint export "$tp" --chain --out "$T/$tp.chain.pem"
  [ "$(grep -c 'BEGIN CERTIFICATE' "$T/$tp.chain.pem")" = 3 ] || fail "$type: the chain export does not hold 3 certificates"
  openssl verify -CAfile "$T/$tp.chain.pem" "$T/$tp.out.pem" > /dev/null || fail "$type: openssl verify -CAfile rejects the exported chain"
  openssl verify -CAfile "$T/root/ca.pem" -untrusted "$T/$tp.chain.pem" "$T/$tp.out.pem" > /dev/null \
    || fail "$type: the exported chain does not lead to the root"
  # Negative twin: against another root the chain must not verify.
  if openssl verify -CAfile "$T/other/ca.pem" -untrusted "$T/$tp.chain.pem" "$T/$tp.out.pem" > /dev/null 2>&1; then
    fail "$type: the chain verified against an unrelated root"
  fi
  ok "$type: export der" kh trustpoint export "$tp" --format der --out "$T/$tp.der"
  openssl x509 -inform DER -in "$T/$tp.der" -noout || fail "$type: the DER export does not parse"
  expect_err INVALID_ARGUMENT "$type: DER chain" kh trustpoint export "$tp" --chain --format der --out "$T/x"
  ok "$type: export pkcs7" kh trustpoint export "$tp" --chain --format pkcs7 --out "$T/$tp.out.p7b"
  [ "$(openssl pkcs7 -in "$T/$tp.out.p7b" -print_certs | grep -c 'BEGIN CERTIFICATE')" = 3 ] \
    || fail "$type: the PKCS#7 export does not hold the chain"

  # The same certificate as DER and as a PEM bundle imports too.
  openssl x509 -in "$T/$tp.crt" -outform DER -out "$T/$tp.crt.der"
  ok "$type: re-import PEM bundle" kh trustpoint import "$tp" --cert <(cat "$T/$tp.crt" "$T/sub/ca.pem")

  # A key in use cannot be deleted.
  expect_err FAILED_PRECONDITION "$type: delete the trustpoint's key" kh key delete "$tp" --force
  expect_msg "trustpoint '$tp'"

  # ---- key rollover (terminal): the old key and certificate stay in
  # use until the new certificate is imported, then the old key goes.
  old_fp=$(pki_fp "$T/$tp.crt")
  ok "$type: regenerate" kh trustpoint regenerate "$tp" --out "$T/$tp.new.csr"
  pki_req_verify "$T/$tp.new.csr" || fail "$type: the rollover CSR does not verify"
  kh --json trustpoint show "$tp" > "$T/show.json"
  newkey=$(json_get 'd["next_key"]' < "$T/show.json")
  [ "$newkey" = "$tp.1" ] || fail "$type: the new key is '$newkey'"
  [ "$(json_get 'd["key"]' < "$T/show.json")" = "$tp" ] || fail "$type: the old key is no longer in use"
  [ "$(json_get 'd["certificate"]["fingerprint_sha256"]' < "$T/show.json")" = "$old_fp" ] \
    || fail "$type: the old certificate is no longer in use"
  cmp -s <(pki_pub_of "$T/$tp.new.csr") <(kh key show "$newkey" --pem | openssl pkey -pubin -outform DER) \
    || fail "$type: the rollover CSR is not for the new key"
  ok "$type: old certificate still exported" kh trustpoint export "$tp" --out "$T/still.pem"
  [ "$(pki_fp "$T/still.pem")" = "$old_fp" ] || fail "$type: export changed before the import"
  pki_ca_sign "$T/sub" "$T/$tp.new.csr" "$T/$tp.new.crt"
  openssl x509 -in "$T/$tp.new.crt" -outform DER -out "$T/$tp.new.der"
  ok "$type: import the new certificate (DER alone: the intermediate is known from before)" \
    kh trustpoint import "$tp" --cert "$T/$tp.new.der"
  grep -q "deleted the old key $tp" "$T/ok.out" || { cat "$T/ok.out" >&2; fail "$type: the rollover did not delete the old key"; }
  expect_err NOT_FOUND "$type: the old key is gone" kh key show "$tp"
  kh --json trustpoint show "$tp" > "$T/show.json"
  [ "$(json_get 'd["key"]' < "$T/show.json")" = "$newkey" ] || fail "$type: the trustpoint did not move to the new key"
  [ "$(json_get 'd.get("next_key", "")' < "$T/show.json")" = "" ] || fail "$type: a rollover is still pending"
  ok "$type: export after rollover" kh trustpoint export "$tp" --out "$T/$tp.rolled.pem"
  openssl verify -CAfile "$T/root/ca.pem" -untrusted "$T/sub/ca.pem" "$T/$tp.rolled.pem" > /dev/null \
    || fail "$type: the rolled-over certificate does not verify"

  # ---- enrollment self ----
  st="self-$type"
  ok "$type: create self" kh trustpoint create "$st" --generate "$type" --subject "CN=$st.example.com,O=Example" \
    --san "DNS:$st.example.com,IP:192.0.2.20" --days 30
  ok "$type: enroll self" kh trustpoint enroll "$st" --out "$T/$st.pem"
  openssl verify -CAfile "$T/$st.pem" "$T/$st.pem" > /dev/null || fail "$type: the self-signed certificate does not verify"
  openssl x509 -in "$T/$st.pem" -noout -text > "$T/$st.txt"
  grep -A1 "Basic Constraints: critical" "$T/$st.txt" | grep -q "CA:FALSE" || fail "$type: basicConstraints is not critical CA:FALSE"
  grep -q "Key Usage: critical" "$T/$st.txt" || fail "$type: key usage is not critical"
  grep -q "TLS Web Server Authentication, TLS Web Client Authentication" "$T/$st.txt" || fail "$type: default EKU missing"
  grep -q "DNS:$st.example.com, IP Address:192.0.2.20" "$T/$st.txt" || fail "$type: SAN missing"
  ski=$(grep -A1 "Subject Key Identifier" "$T/$st.txt" | tail -1 | tr -d ' ')
  aki=$(grep -A1 "Authority Key Identifier" "$T/$st.txt" | tail -1 | tr -d ' ' | sed 's/^keyid://')
  [ -n "$ski" ] && [ "$ski" = "$aki" ] || fail "$type: SKI '$ski' and AKI '$aki' differ"
  serial=$(openssl x509 -in "$T/$st.pem" -noout -serial | sed 's/serial=//')
  [ ${#serial} -eq 32 ] || fail "$type: the serial '$serial' is not 16 bytes"
  case "$serial" in [0-7]*) ;; *) fail "$type: the serial is not positive" ;; esac
  days=$(( ($(date -d "$(openssl x509 -in "$T/$st.pem" -noout -enddate | sed 's/notAfter=//')" +%s) \
          - $(date -d "$(openssl x509 -in "$T/$st.pem" -noout -startdate | sed 's/notBefore=//')" +%s)) / 86400 ))
  [ "$days" = 30 ] || fail "$type: validity is $days days, not 30"
  cmp -s <(pki_pub_of "$T/$st.pem") <(kh key show "$st" --pem | openssl pkey -pubin -outform DER) \
    || fail "$type: the self-signed certificate is not for the trustpoint's key"
  # A second enroll re-issues (new serial).
  ok "$type: re-enroll self" kh trustpoint enroll "$st" --out "$T/$st.2.pem"
  [ "$(openssl x509 -in "$T/$st.2.pem" -noout -serial)" != "$(openssl x509 -in "$T/$st.pem" -noout -serial)" ] \
    || fail "$type: re-enrollment reused the serial"
  # Rollover (self): new key and certificate at once, old key deleted.
  ok "$type: regenerate self" kh --json trustpoint regenerate "$st"
  [ "$(json_get 'd["deleted_key"]' < "$T/ok.out")" = "$st" ] || fail "$type: the old self key was not deleted"
  expect_err NOT_FOUND "$type: old self key gone" kh key show "$st"
  ok "$type: export after self rollover" kh trustpoint export "$st" --out "$T/$st.3.pem"
  cmp -s <(pki_pub_of "$T/$st.3.pem") <(kh key show "$st.1" --pem | openssl pkey -pubin -outform DER) \
    || fail "$type: the new self-signed certificate is not for the new key"
done

# Default enrollment is self; default validity one year; digest choice.
if kh_has_type p256; then
  ok "default self" kh trustpoint create defaults --generate p256 --subject "CN=defaults" --digest sha384
  ok "enroll default" kh trustpoint enroll defaults --out "$T/defaults.pem"
  openssl x509 -in "$T/defaults.pem" -noout -text | grep -q "ecdsa-with-SHA384" || fail "--digest sha384 not used"
  days=$(( ($(date -d "$(openssl x509 -in "$T/defaults.pem" -noout -enddate | sed 's/notAfter=//')" +%s) - $(date +%s)) / 86400 ))
  [ "$days" -ge 364 ] && [ "$days" -le 366 ] || fail "default validity is $days days"
  expect_err INVALID_ARGUMENT "SHA-1 trustpoint" kh trustpoint create sha1tp --generate p256 --subject "CN=x" --digest sha1
  expect_err NOT_FOUND "SHA-1 trustpoint made no key" kh key show sha1tp
  expect_err INVALID_ARGUMENT "bad subject makes no key" kh trustpoint create badtp --generate p256 --subject "nonsense"
  expect_err NOT_FOUND "bad subject made no key" kh key show badtp
  expect_err INVALID_ARGUMENT "bad revocation" kh trustpoint create badrev --generate p256 --subject "CN=x" --revocation maybe

  # --key: an existing key the administrator made; deleting the trustpoint keeps it.
  ok "admin key" kh key generate admin-key --type p256
  ok "create with --key" kh trustpoint create admin-tp --key admin-key --subject "CN=admin"
  ok "enroll admin-tp" kh trustpoint enroll admin-tp
  ok "delete admin-tp" kh trustpoint delete admin-tp --force
  ok "admin key kept" kh key show admin-key
  expect_err NOT_FOUND "deleted trustpoint" kh trustpoint show admin-tp
  expect_err NOT_FOUND "create with a missing key" kh trustpoint create nokey --key no-such-key --subject "CN=x"
  # --generate refuses a name already taken by a key.
  expect_err ALREADY_EXISTS "generate over an existing key" kh trustpoint create admin-key --generate p256 --subject "CN=x"

  # Deleting a trustpoint deletes the key keyhold generated for it (unless --keep-key).
  ok "delete defaults" kh trustpoint delete defaults --force
  grep -q "deleted its key defaults" "$T/ok.out" || fail "delete did not report the key"
  expect_err NOT_FOUND "generated key deleted" kh key show defaults
  ok "create keep" kh trustpoint create keep --generate p256 --subject "CN=keep"
  ok "delete --keep-key" kh trustpoint delete keep --keep-key
  ok "kept key" kh key show keep
  kh --json status > "$T/status.json"
  [ "$(json_get 'd["orphaned_keys"]' < "$T/status.json")" = "[]" ] || fail "a kept key is reported as orphaned"
  ok "kept key deletable" kh key delete keep --force
fi

# Expired certificates import with a warning.
tp="asa-${types[0]}"
ok "regenerate for expiry test" kh trustpoint regenerate "$tp" --out "$T/exp.csr"
pki_ca_sign "$T/sub" "$T/exp.csr" "$T/exp.crt" -startdate 20200101000000Z -enddate 20210101000000Z
ok "import expired" kh trustpoint import "$tp" --cert <(cat "$T/exp.crt" "$T/sub/ca.pem")
grep -q "warning: the certificate has expired" "$T/ok.err" || { cat "$T/ok.err" >&2; fail "no warning for an expired certificate"; }

# List and JSON.
ok "list" kh --json trustpoint list
n=$(json_get 'len(d["trustpoints"])' < "$T/ok.out")
[ "$n" -ge 2 ] || fail "trustpoint list holds $n trustpoints"
expect_err NOT_FOUND "show unknown" kh trustpoint show nope
expect_err NOT_FOUND "delete unknown" kh trustpoint delete nope
expect_err INVALID_ARGUMENT "bad trustpoint name" kh trustpoint show 'a b'
ok "status" kh status
kh_stop
