#!/usr/bin/env bash
# Path validation rules (docs/PKI.md "Validation"), each with a chain that
# passes and one that is refused, on `openssl ca`-made material, with the
# refusal naming the certificate and the rule: certificate policies
# (initial policy set, required explicit policy, policy mapping and its
# inhibit, inhibit anyPolicy) from the request and from the trust store,
# the valid policy set in the answer, name constraints, the key strength
# floor (RSA bits, EC curve size, SHA-1 signatures) and its per-store
# setting, partial wildcards, an indirect CRL (cRLIssuer) and a delta CRL
# on its base. Stock `openssl verify` is asked the same questions and must
# agree.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

P1=1.3.6.1.4.1.55555.1.1
P2=1.3.6.1.4.1.55555.1.2
P5=1.3.6.1.4.1.55555.1.5
P9=1.3.6.1.4.1.55555.1.9
cat > "$T/ext.cnf" <<EOF2
[pol_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = $P1,$P2
nameConstraints = critical,permitted;DNS:.example.com
[map_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = $P1
policyMappings = $P1:$P5
[any_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = 2.5.29.32.0
[leaf_p1]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = $P1
[leaf_p5]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = $P5
[leaf_p9]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = $P9
EOF2

pki_ca_init "$T/root" "Validation Root"
# sub CA DIR CN SECTION: an intermediate of the root with the section's extensions.
sub_ca() {
  pki_ca_init "$1" "$2" "$T/root"
  pki_ca_sign "$T/root" "$1/ca.csr" "$1/ca.pem" -extfile "$T/ext.cnf" -extensions "$3" -days 3000
}
sub_ca "$T/pol" "Policy CA" pol_ca
sub_ca "$T/map" "Mapping CA" map_ca
sub_ca "$T/any" "AnyPolicy CA" any_ca
# leaf CA_DIR NAME SAN SECTION KEYALG [openssl ca options]: OUT = $T/NAME.pem, chain file $T/NAME-chain.pem.
leaf() {
  local d=$1 name=$2 san=$3 sect=$4 alg=$5
  shift 5
  case "$alg" in
  rsa*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${alg#rsa}" -out "$T/$name.key" 2> /dev/null ;;
  *) openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$alg" -out "$T/$name.key" 2> /dev/null ;;
  esac
  openssl req -new -key "$T/$name.key" -subj "/CN=$name.example.com" -addext "subjectAltName=$san" \
    -out "$T/$name.csr" 2> /dev/null || fail "cannot make the CSR of $name"
  pki_ca_sign "$d" "$T/$name.csr" "$T/$name.pem" -extfile "$T/ext.cnf" -extensions "$sect" "$@"
  cat "$T/$name.pem" "$d/ca.pem" > "$T/$name-chain.pem"
}
leaf "$T/pol" good "DNS:www.example.com" leaf_p1 P-256
leaf "$T/pol" outside "DNS:www.evil.test" leaf_p1 P-256
leaf "$T/pol" weak "DNS:weak.example.com" leaf_p1 rsa1024
leaf "$T/pol" strong "DNS:strong.example.com" leaf_p1 rsa2048
leaf "$T/pol" small "DNS:small.example.com" leaf_p1 secp224r1
leaf "$T/pol" sha1 "DNS:sha1.example.com" leaf_p1 P-256 -md sha1
leaf "$T/pol" partial "DNS:ba*.example.com" leaf_p1 P-256
leaf "$T/pol" wild "DNS:*.example.com" leaf_p1 P-256
leaf "$T/map" mapped "DNS:mapped.example.com" leaf_p5 P-256
leaf "$T/any" anyleaf "DNS:any.example.com" leaf_p9 P-256

# osv LEAF_CHAIN_PREFIX [openssl verify options]: stock OpenSSL's verdict (0 valid).
osv() {
  local n=$1
  shift
  openssl verify -x509_strict -policy_check -CAfile "$T/root/ca.pem" -untrusted "$T/$n-chain.pem" "$@" \
    "$T/$n.pem" > /dev/null 2>&1
}

kh_start
ok "store" kh truststore add v "$T/root/ca.pem"

# ---- defaults: anyPolicy, floor RSA 2048 / EC 256, no SHA-1 ----
ok "list shows the default settings" kh --json truststore list v
[ "$(json_get 'd["stores"][0]["validation"]["min_rsa_bits"]' < "$T/ok.out")" = 2048 ] || fail "default RSA floor is not 2048"
[ "$(json_get 'd["stores"][0]["validation"]["min_ec_bits"]' < "$T/ok.out")" = 256 ] || fail "default EC floor is not 256"
[ "$(json_get 'd["stores"][0]["validation"]["policies"]' < "$T/ok.out")" = "['anyPolicy']" ] || fail "default policy is not anyPolicy"
ok "good chain" kh --json truststore verify v "$T/good-chain.pem" --host www.example.com
[ "$(json_get 'sorted(d["valid_policies"])' < "$T/ok.out")" = "['$P1']" ] || fail "valid policy set is not {P1}: $(cat "$T/ok.out")"
ok "good chain, text" kh truststore verify v "$T/good-chain.pem"
grep -q "valid policies: $P1" "$T/ok.out" || fail "text output lacks the valid policy set"

# ---- policies from the request ----
ok "initial policy P1, explicit" kh truststore verify v "$T/good-chain.pem" --policy "$P1" --require-explicit-policy
osv good -policy "$P1" -explicit_policy || fail "openssl refuses P1 explicit"
expect_err FAILED_PRECONDITION "initial policy P2 is not the leaf's, explicit required" \
  kh truststore verify v "$T/good-chain.pem" --policy "$P2" --require-explicit-policy
expect_msg "certificate 'CN=good.example.com' (depth 0)"
expect_msg "RFC 5280 §6.1.5 (g)"
osv good -policy "$P2" -explicit_policy && fail "openssl accepts P2 explicit"
ok "initial policy P2 without explicit: valid, no valid policy" kh --json truststore verify v "$T/good-chain.pem" --policy "$P2"
[ "$(json_get 'd["valid_policies"]' < "$T/ok.out")" = "[]" ] || fail "P2 left a valid policy: $(cat "$T/ok.out")"
ok "two initial policies" kh --json truststore verify v "$T/good-chain.pem" --policy "$P2" --policy "$P1" --require-explicit-policy
[ "$(json_get 'd["valid_policies"]' < "$T/ok.out")" = "['$P1']" ] || fail "{P1,P2} did not give {P1}"
# mapping P1 -> P5 in the Mapping CA
ok "policy mapped from P5 to P1" kh truststore verify v "$T/mapped-chain.pem" --policy "$P1" --require-explicit-policy
osv mapped -policy "$P1" -explicit_policy || fail "openssl refuses the mapping"
expect_err FAILED_PRECONDITION "mapping inhibited" \
  kh truststore verify v "$T/mapped-chain.pem" --policy "$P1" --require-explicit-policy --inhibit-policy-mapping
osv mapped -policy "$P1" -explicit_policy -inhibit_map && fail "openssl accepts the inhibited mapping"
# anyPolicy in the AnyPolicy CA stands for P9 unless inhibited
ok "anyPolicy CA" kh --json truststore verify v "$T/anyleaf-chain.pem" --require-explicit-policy
[ "$(json_get 'd["valid_policies"]' < "$T/ok.out")" = "['$P9']" ] || fail "anyPolicy CA: valid set is not {P9}"
osv anyleaf -policy anyPolicy -explicit_policy || fail "openssl refuses the anyPolicy CA"
expect_err FAILED_PRECONDITION "anyPolicy inhibited" \
  kh truststore verify v "$T/anyleaf-chain.pem" --require-explicit-policy --inhibit-any-policy
osv anyleaf -policy anyPolicy -explicit_policy -inhibit_any && fail "openssl accepts anyPolicy inhibited"
expect_err INVALID_ARGUMENT "a policy that is no OID" kh truststore verify v "$T/good-chain.pem" --policy 1.2.x
expect_err INVALID_ARGUMENT "a policy with a leading zero" kh truststore verify v "$T/good-chain.pem" --policy 1.02.3

# ---- policies from the store ----
ok "store requires P2 explicitly" kh truststore set v --policy "$P2" --require-explicit-policy on
expect_err FAILED_PRECONDITION "store's P2 refuses the P1 leaf" kh truststore verify v "$T/good-chain.pem"
expect_msg "no policy of the initial policy set is valid"
ok "the request's policy replaces the store's set" kh truststore verify v "$T/good-chain.pem" --policy "$P1"
ok "store inhibits mapping" kh truststore set v --policy "$P1" --inhibit-policy-mapping on
expect_err FAILED_PRECONDITION "store's inhibit refuses the mapping" kh truststore verify v "$T/mapped-chain.pem"
ok "store's settings survive a restart" kh_restart
ok "settings after restart" kh --json truststore list v
[ "$(json_get 'd["stores"][0]["validation"]["policies"]' < "$T/ok.out")" = "['$P1']" ] || fail "policies lost"
[ "$(json_get 'd["stores"][0]["validation"]["inhibit_policy_mapping"]' < "$T/ok.out")" = true ] || fail "inhibit lost"
ok "store back to anyPolicy" kh truststore set v --policy anyPolicy --require-explicit-policy off --inhibit-policy-mapping off
ok "mapped chain valid again" kh truststore verify v "$T/mapped-chain.pem"

# ---- name constraints (the Policy CA permits .example.com only) ----
expect_err FAILED_PRECONDITION "name outside the permitted subtree" kh truststore verify v "$T/outside-chain.pem"
expect_msg "certificate 'CN=outside.example.com' (depth 0)"
expect_msg "permitted subtrees"
osv outside && fail "openssl accepts the name constraint violation"

# ---- key strength floor ----
expect_err FAILED_PRECONDITION "RSA 1024 leaf" kh truststore verify v "$T/weak-chain.pem"
expect_msg "certificate 'CN=weak.example.com' (depth 0): its RSA key has 1024 bits, below the trust store's key strength floor of 2048 bits"
ok "RSA 2048 leaf" kh truststore verify v "$T/strong-chain.pem"
expect_err FAILED_PRECONDITION "P-224 leaf" kh truststore verify v "$T/small-chain.pem"
expect_msg "its EC key is on a 224-bit curve, below the trust store's key strength floor of 256 bits"
expect_err FAILED_PRECONDITION "SHA-1 signed leaf" kh truststore verify v "$T/sha1-chain.pem"
expect_msg "certificate 'CN=sha1.example.com' (depth 0): it is signed with SHA1"
ok "lower the floor" kh truststore set v --min-rsa-bits 1024 --min-ec-bits 224 --allow-sha1 on
ok "RSA 1024 under a 1024 floor" kh truststore verify v "$T/weak-chain.pem"
ok "P-224 under a 224 floor" kh truststore verify v "$T/small-chain.pem"
ok "SHA-1 allowed" kh truststore verify v "$T/sha1-chain.pem"
ok "raise it again" kh --json truststore set v --min-rsa-bits 3072 --min-ec-bits 256 --allow-sha1 off
[ "$(json_get 'd["validation"]["min_rsa_bits"]' < "$T/ok.out")" = 3072 ] || fail "set did not answer the new floor"
expect_err FAILED_PRECONDITION "RSA 2048 under a 3072 floor" kh truststore verify v "$T/strong-chain.pem"
expect_msg "2048 bits, below the trust store's key strength floor of 3072 bits"
expect_err USAGE "a floor below 512" kh truststore set v --min-rsa-bits 256
expect_err USAGE "an EC floor above 521" kh truststore set v --min-ec-bits 1024
expect_err USAGE "not on or off" kh truststore set v --allow-sha1 maybe
expect_err NOT_FOUND "settings of a missing store" kh truststore set nosuch --min-rsa-bits 2048
ok "floor back to the default" kh truststore set v --min-rsa-bits 2048

# ---- partial wildcards ----
expect_err FAILED_PRECONDITION "partial wildcard ba*.example.com" kh truststore verify v "$T/partial-chain.pem" --host bar.example.com
expect_msg "partial wildcards"
ok "full wildcard *.example.com" kh truststore verify v "$T/wild-chain.pem" --host bar.example.com
expect_err FAILED_PRECONDITION "a wildcard covers one label" kh truststore verify v "$T/wild-chain.pem" --host a.b.example.com
# ---- extended CRLs: an indirect CRL and a delta CRL (openssl ca) ----
# An indirect CRL: the leaf's distribution point names "CRL Signer" as its
# cRLIssuer; that CA's CRL (issuingDistributionPoint indirectCRL) is the only
# one covering the leaf. Without extended CRL support it is never found.
pki_ca_init "$T/xroot" "CRL Root"
pki_ca_init "$T/xsub" "CRL Issuing CA" "$T/xroot"
pki_ca_init "$T/xcrl" "CRL Signer" "$T/xroot"
cat >> "$T/xroot/ca.cnf" <<'EOF2'
[crlsigner_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf_fresh]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://crl.example/base.crl
freshestCRL = URI:http://crl.example/delta.crl
[crl_base]
authorityKeyIdentifier = keyid
freshestCRL = URI:http://crl.example/delta.crl
[crl_delta]
authorityKeyIdentifier = keyid
# deltaCRLIndicator = the base's crlNumber 0x1000 (no config syntax writes it)
deltaCRL = critical,DER:02:02:10:00
EOF2
cat >> "$T/xsub/ca.cnf" <<'EOF2'
[leaf_ind]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = dp
[dp]
fullname = URI:http://crl.example/indirect.crl
CRLissuer = dirName:crl_dn
[crl_dn]
CN = CRL Signer
EOF2
cat >> "$T/xcrl/ca.cnf" <<'EOF2'
[crl_ind]
authorityKeyIdentifier = keyid
issuingDistributionPoint = critical,@idp
[idp]
fullname = URI:http://crl.example/indirect.crl
indirectCRL = TRUE
EOF2
pki_ca_sign "$T/xroot" "$T/xcrl/ca.csr" "$T/xcrl/ca.pem" -extensions crlsigner_ext
openssl req -new -key "$T/good.key" -subj "/CN=indirect.example.com" -out "$T/ind.csr" 2> /dev/null
pki_ca_sign "$T/xsub" "$T/ind.csr" "$T/ind.pem" -extensions leaf_ind
openssl ca -batch -config "$T/xcrl/ca.cnf" -gencrl -crlexts crl_ind -out "$T/ind.crl" 2> /dev/null || fail "gencrl (indirect)"
openssl ca -batch -config "$T/xroot/ca.cnf" -gencrl -out "$T/xroot.crl" 2> /dev/null || fail "gencrl (root)"
cat "$T/xsub/ca.pem" "$T/xcrl/ca.pem" > "$T/ind-unt.pem"
ok "store for the CRL tests" kh truststore add x "$T/xroot/ca.pem"
ok "indirect CRL covers the leaf" kh truststore verify x "$T/ind.pem" --untrusted "$T/ind-unt.pem" \
  --crl "$T/ind.crl" --crl "$T/xroot.crl"
openssl verify -x509_strict -crl_check_all -extended_crl -CAfile "$T/xroot/ca.pem" -untrusted "$T/ind-unt.pem" \
  -CRLfile "$T/ind.crl" -CRLfile "$T/xroot.crl" "$T/ind.pem" > /dev/null || fail "openssl refuses the indirect CRL"
expect_err FAILED_PRECONDITION "no CRL covers the leaf" kh truststore verify x "$T/ind.pem" --untrusted "$T/ind-unt.pem" \
  --crl "$T/xroot.crl"
expect_msg "certificate 'CN=indirect.example.com' (depth 0): unable to get certificate CRL"
# A delta CRL on top of its base: the base says good, the delta revokes.
openssl req -new -key "$T/good.key" -subj "/CN=delta.example.com" -out "$T/dl.csr" 2> /dev/null
pki_ca_sign "$T/xroot" "$T/dl.csr" "$T/dl.pem" -extensions leaf_fresh
echo 1000 > "$T/xroot/crlnumber"
openssl ca -batch -config "$T/xroot/ca.cnf" -gencrl -crlexts crl_base -out "$T/base.crl" 2> /dev/null || fail "gencrl (base)"
openssl ca -batch -config "$T/xroot/ca.cnf" -revoke "$T/dl.pem" -crl_reason keyCompromise 2> /dev/null || fail "revoke"
openssl ca -batch -config "$T/xroot/ca.cnf" -gencrl -crlexts crl_delta -out "$T/delta.crl" 2> /dev/null || fail "gencrl (delta)"
ok "base CRL alone: good" kh truststore verify x "$T/dl.pem" --crl "$T/base.crl"
expect_err FAILED_PRECONDITION "base and delta: revoked" kh truststore verify x "$T/dl.pem" --crl "$T/base.crl" --crl "$T/delta.crl"
expect_msg "certificate 'CN=delta.example.com' (depth 0): certificate revoked"
openssl verify -x509_strict -crl_check_all -extended_crl -use_deltas -CAfile "$T/xroot/ca.pem" -CRLfile "$T/base.crl" \
  -CRLfile "$T/delta.crl" "$T/dl.pem" > /dev/null 2>&1 && fail "openssl accepts the leaf the delta CRL revokes"
expect_err FAILED_PRECONDITION "a delta CRL without its base" kh truststore verify x "$T/dl.pem" --crl "$T/delta.crl"
# A store keeps a full and a delta CRL per issuer.
ok "import the base CRL" kh crl import x "$T/base.crl"
ok "stored base alone: good" kh truststore verify x "$T/dl.pem"
ok "import the delta CRL next to it" kh crl import x "$T/delta.crl"
ok "both listed" kh --json crl list x
[ "$(json_get 'len(d["crls"])' < "$T/ok.out")" = 2 ] || fail "the delta CRL replaced the base"
expect_err FAILED_PRECONDITION "stored base and delta: revoked" kh truststore verify x "$T/dl.pem"
expect_msg "certificate revoked"
expect_err INVALID_ARGUMENT "remove by an issuer with two CRLs" kh crl remove x "CN=CRL Root"
expect_msg "name one by its SHA-256 fingerprint"
ok "remove the delta by fingerprint" kh crl remove --force x "$(openssl crl -in "$T/delta.crl" -outform DER | sha256sum | cut -d' ' -f1)"
ok "stored base alone again: good" kh truststore verify x "$T/dl.pem"
log "PASS"
