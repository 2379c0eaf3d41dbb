#!/usr/bin/env bash
# Trust stores as trustpools (issue 16): Debian's whole CA bundle in one
# `truststore add` and back out byte-identical with `truststore export`
# (PEM, PKCS#7, one certificate as DER); more than 64 files at once; the
# duplicate rule on the whole subject DN and key; `truststore show` with
# the decoded certificate checked against openssl x509; `truststore
# create` before the first certificate, settings that survive removing the
# last one, `truststore delete`; a refused batch never suggests removing
# what it did not add. Each check has its failing twin.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -s "$BUNDLE" ] || fail "$BUNDLE is missing (Debian package ca-certificates)"
kh_start

# json_err CODE DESC CMD...: a --json CMD fails with CODE in its error document.
json_err() {
  local code=$1 desc=$2; shift 2
  expect_rc "$(kh_exit_of "$code")" "$desc" "$@"
  jhas "$T/rc.out" "{\"error\":{\"code\":\"$code\"" "$desc: no $code error document"
}
# jhas FILE TEXT DESC: compact JSON output FILE holds TEXT (python3 starts
# slowly on a loaded CI machine: one json_get per document at most).
jhas() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$3"; }; }
# blocks FILE: the PEM blocks of FILE, one per line, sorted (the bundle
# "modulo order").
blocks() { awk '/-----BEGIN/{b=""} {b=b $0 "|"} /-----END/{print b}' "$1" | LC_ALL=C sort; }

# ---- the Debian bundle: one command, every certificate, byte-identical back ----
n=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$BUNDLE")
[ "$n" -gt 64 ] || fail "the bundle holds only $n certificates; the test needs more than 64"
t0=$(date +%s%N)
ok "add the Debian bundle" kh --json truststore add debian "$BUNDLE"
t1=$(date +%s%N)
log "truststore add of $BUNDLE ($n certificates): $(( (t1 - t0) / 1000000 )) ms"
[ "$(grep -o '"fingerprint_sha256"' "$T/ok.out" | wc -l)" = "$n" ] || fail "the bundle did not add all $n certificates"
ok "add it again" kh --json truststore add debian "$BUNDLE"
jhas "$T/ok.out" '"added":[],' "a second add added certificates"
jhas "$T/ok.out" "\"already_present\":$n}" "a second add did not find all present"
t0=$(date +%s%N)
ok "export the bundle" kh truststore export debian --out "$T/debian.pem"
t1=$(date +%s%N)
log "truststore export of $n certificates: $(( (t1 - t0) / 1000000 )) ms"
# One add keeps the bundle's order, so the export is the file itself.
cmp -s "$BUNDLE" "$T/debian.pem" || fail "the exported bundle differs from $BUNDLE"
ok "export to stdout, --json" kh --json truststore export debian
jhas "$T/ok.out" "\"count\":$n," "export --json count"
json_get 'd["pem"]' < "$T/ok.out" | head -c -1 > "$T/debian-json.pem"
cmp -s "$BUNDLE" "$T/debian-json.pem" || fail "the --json export differs from $BUNDLE"
ok "export PKCS#7" kh truststore export debian --format pkcs7 --out "$T/debian.p7b"
openssl pkcs7 -in "$T/debian.p7b" -print_certs -out "$T/p7certs.pem" || fail "openssl cannot read the PKCS#7 export"
[ "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$T/p7certs.pem")" = "$n" ] || fail "the PKCS#7 export lacks certificates"
blocks "$BUNDLE" > "$T/b.sorted"
awk '/-----BEGIN/,/-----END/' "$T/p7certs.pem" > "$T/p7only.pem"
blocks "$T/p7only.pem" > "$T/p7.sorted"
cmp -s "$T/b.sorted" "$T/p7.sorted" || fail "the PKCS#7 export's certificates differ from the bundle's"

# More than 64 files in one add, in reverse order: the same set back,
# "byte-identical modulo order" (each PEM block equal, order aside).
mkdir "$T/split"
awk -v d="$T/split" '/-----BEGIN/{f=sprintf("%s/c%04d.pem", d, ++i)} {print > f}' "$BUNDLE"
mapfile -t files < <(find "$T/split" -name 'c*.pem' | LC_ALL=C sort -r)
[ "${#files[@]}" = "$n" ] || fail "split the bundle into ${#files[@]} files, not $n"
ok "add $n files at once" kh truststore add split "${files[@]}"
grep -q "$n added, 0 already present" "$T/ok.out" || fail "the $n files did not all add"
ok "export split" kh truststore export split --out "$T/split.pem"
cmp -s "$BUNDLE" "$T/split.pem" && fail "the reversed add came back in the bundle's order"
blocks "$T/split.pem" > "$T/s.sorted"
cmp -s "$T/b.sorted" "$T/s.sorted" || fail "the reversed add's export differs modulo order"

# One certificate, as PEM and DER, equals openssl's own rendering.
first=$T/split/c0001.pem
fp1=$(pki_fp "$first")
ok "export one (PEM)" kh truststore export debian --fingerprint "$fp1" --out "$T/one.pem"
cmp -s "$first" "$T/one.pem" || fail "the one certificate exported differs"
ok "export one (DER)" kh truststore export debian --fingerprint "$fp1" --format der --out "$T/one.der"
openssl x509 -in "$first" -outform DER -out "$T/first.der"
cmp -s "$T/first.der" "$T/one.der" || fail "the DER export differs from openssl's"
expect_err USAGE "export DER without a fingerprint" kh truststore export debian --format der
expect_err USAGE "export in an unknown format" kh truststore export debian --format jks
expect_err NOT_FOUND "export an unknown fingerprint" kh truststore export debian --fingerprint "$(printf '%064d' 0)"
expect_err INVALID_ARGUMENT "export a bad fingerprint" kh truststore export debian --fingerprint 12ab
expect_err NOT_FOUND "export an unknown store" kh truststore export nope
json_err NOT_FOUND "export, --json error" kh --json truststore export nope

# ---- the duplicate rule: whole subject DN and key ----
pki_ca_init "$T/root" "Test Root CA"
pki_ca_init "$T/dup" "Test Root CA"   # the same DN (CN=Test Root CA), another key
root_fp=$(pki_fp "$T/root/ca.pem")
dup_fp=$(pki_fp "$T/dup/ca.pem")
# The same CN under another DN: fine.
openssl req -x509 -new -key "$T/dup/ca.key" -subj "/O=Elsewhere/CN=Test Root CA" -days 365 -config "$T/dup/ca.cnf" \
  -extensions ca_ext -out "$T/samecn.pem" 2> /dev/null || fail "cannot make the same-CN CA"
# The same DN and the same key, re-issued with another validity: fine.
openssl req -x509 -new -key "$T/root/ca.key" -subj "/CN=Test Root CA" -days 7300 -config "$T/root/ca.cnf" \
  -extensions ca_ext -out "$T/reissued.pem" 2> /dev/null || fail "cannot re-issue the root"
ok "add root" kh truststore add web "$T/root/ca.pem"
expect_err ALREADY_EXISTS "same full DN, another key" kh truststore add web "$T/dup/ca.pem"
expect_msg "subject 'CN=Test Root CA' and another key (SHA-256 $root_fp)"
expect_msg "keyhold truststore remove web $root_fp"
grep -q "remove web $dup_fp" "$T/err.err" && fail "the refusal suggested removing the refused certificate"
ok "same CN, another DN" kh truststore add web "$T/samecn.pem"
ok "same DN, same key (re-issued)" kh truststore add web "$T/reissued.pem"
ok "web holds three" kh --json truststore list web
jhas "$T/ok.out" '"name":"web","certificates":3,' "web does not hold 3 certificates"
# In one request: refused, nothing stored, and no removal suggested.
expect_err ALREADY_EXISTS "same DN, other keys in one batch" kh truststore add fresh "$T/samecn.pem" "$T/root/ca.pem" \
  "$T/dup/ca.pem"
expect_msg "leave one out; nothing was added to trust store 'fresh'"
grep -q "truststore remove" "$T/err.err" && fail "a refused batch suggested removing a certificate it never added"
expect_err NOT_FOUND "the refused batch stored nothing" kh truststore list fresh
ok "the other key in its own store" kh truststore add dupstore "$T/dup/ca.pem"

# ---- show: the decoded certificate against openssl x509 ----
cat > "$T/leaf.cnf" <<'CNF'
[req]
distinguished_name = dn
[dn]
[ext]
subjectAltName = DNS:www.example.com,IP:192.0.2.5,email:ops@example.com,URI:https://example.com/x
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth,1.3.6.1.4.1.99999.1
basicConstraints = critical,CA:TRUE,pathlen:2
certificatePolicies = 2.16.840.1.101.3.2.1.48.1,2.5.29.32.0
subjectKeyIdentifier = hash
CNF
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/leaf.key" -subj "/C=US/O=Example/CN=www.example.com" \
  -days 30 -config "$T/leaf.cnf" -extensions ext -out "$T/leaf.pem" 2> /dev/null || fail "cannot make the shown cert"
leaf_fp=$(pki_fp "$T/leaf.pem")
ok "add the shown cert" kh truststore add web "$T/leaf.pem"
ok "show (text)" kh truststore show web "$leaf_fp"
for want in "subject:            CN=www.example.com,O=Example,C=US" \
  "SANs:               DNS:www.example.com, IP:192.0.2.5, email:ops@example.com, URI:https://example.com/x" \
  "key usage:          digitalSignature, keyEncipherment" \
  "EKU:                serverAuth, clientAuth, 1.3.6.1.4.1.99999.1" \
  "basic constraints:  CA:TRUE, pathlen:2" \
  "policies:           2.16.840.1.101.3.2.1.48.1, anyPolicy" \
  "public key:         RSA 2048" "sha256:             $leaf_fp"; do
  grep -qF -- "$want" "$T/ok.out" || { cat "$T/ok.out" >&2; fail "show lacks '$want'"; }
done
ok "show --json" kh --json truststore show web "$(echo "$leaf_fp" | sed 's/../&:/g; s/:$//' | tr a-f A-F)"
cp "$T/ok.out" "$T/show.json"
serial=$(openssl x509 -in "$T/leaf.pem" -noout -serial | sed 's/.*=//; s/^0*//' | tr 'A-F' 'a-f')
sha1=$(openssl x509 -in "$T/leaf.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
ski=$(openssl x509 -in "$T/leaf.pem" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :' | tr 'A-F' 'a-f')
enddate=$(date -u -d "$(openssl x509 -in "$T/leaf.pem" -noout -enddate | sed 's/.*=//')" +%Y-%m-%dT%H:%M:%SZ)
# Every field against openssl's view, in one python3 run.
python3 - "$T/show.json" "$serial" "$sha1" "$leaf_fp" "$ski" "$enddate" "$T/leaf.pem" <<'PY' || fail "show --json differs from openssl x509"
import json, sys
d = json.load(open(sys.argv[1]))
serial, sha1, fp, ski, end, pem = sys.argv[2:8]
want = {
    "serial": (d["serial"].lower().lstrip("0"), serial),
    "sha1": (d["fingerprint_sha1"], sha1), "sha256": (d["fingerprint_sha256"], fp),
    "ski": (d["subject_key_id"], ski), "not_after": (d["not_after"], end),
    "sans": (d["sans"], ["DNS:www.example.com", "IP:192.0.2.5", "email:ops@example.com", "URI:https://example.com/x"]),
    "key_usage": (d["key_usage"], ["digitalSignature", "keyEncipherment"]),
    "eku": (d["eku"], ["serverAuth", "clientAuth", "1.3.6.1.4.1.99999.1"]),
    "bc": (d["basic_constraints"], {"present": True, "ca": True, "path_len": 2}),
    "policies": (d["policies"], ["2.16.840.1.101.3.2.1.48.1", "anyPolicy"]),
    "sig": (d["signature_algorithm"], "sha256WithRSAEncryption"),
    "key": (d["public_key"], "RSA 2048"), "version": (d["version"], 3),
    "pem": (d["pem"], open(pem).read()),
}
bad = [k for k, (got, exp) in want.items() if got != exp]
for k in bad:
    print("show --json %s: %r, expected %r" % (k, want[k][0], want[k][1]), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
# A certificate without the extensions says so.
ok "show the root" kh --json truststore show web "$root_fp"
jhas "$T/ok.out" '"sans":[],' "the root shows SANs"
jhas "$T/ok.out" '"basic_constraints":{"present":true,"ca":true},' "the root shows a pathlen"
jhas "$T/ok.out" '"public_key":"EC 256 (prime256v1)",' "the root's key is not EC P-256"
expect_err NOT_FOUND "show an unknown fingerprint" kh truststore show web "$dup_fp"
expect_err INVALID_ARGUMENT "show a bad fingerprint" kh truststore show web xyz
json_err NOT_FOUND "show in an unknown store" kh --json truststore show nope "$root_fp"
expect_err USAGE "show without a fingerprint" kh truststore show web

# ---- create, settings first, settings survive the last remove, delete ----
expect_err NOT_FOUND "set on a store that does not exist" kh truststore set policyfirst --policy 1.2.3.4
expect_msg "keyhold truststore create policyfirst"
ok "create" kh --json truststore create policyfirst
jhas "$T/ok.out" '{"store":"policyfirst","created":true}' "create --json"
expect_err ALREADY_EXISTS "create twice" kh truststore create policyfirst
expect_err INVALID_ARGUMENT "create a bad name" kh truststore create 'a/b'
expect_err USAGE "create without a name" kh truststore create
json_err ALREADY_EXISTS "create twice, --json" kh --json truststore create policyfirst
ok "list the empty store" kh --json truststore list policyfirst
jhas "$T/ok.out" '"name":"policyfirst","certificates":0,' "the new store is not empty"
ok "settings before the first certificate" kh truststore set policyfirst --policy 1.2.3.4 --min-rsa-bits 3072
ok "first certificate" kh truststore add policyfirst "$T/root/ca.pem"
ok "remove the last certificate" kh --json truststore remove policyfirst "$root_fp"
ok "the emptied store stays" kh --json truststore list policyfirst
jhas "$T/ok.out" '"name":"policyfirst","certificates":0,' "the emptied store holds certificates"
jhas "$T/ok.out" '"policies":["1.2.3.4"]' "the policy did not survive removing the last certificate"
jhas "$T/ok.out" '"min_rsa_bits":3072' "the key floor did not survive removing the last certificate"
expect_err FAILED_PRECONDITION "export an empty store" kh truststore export policyfirst
ok "delete the empty store" kh --json truststore delete policyfirst
jhas "$T/ok.out" '{"store":"policyfirst","certs_removed":0,"crls_removed":0}' "delete --json"
expect_err NOT_FOUND "deleted" kh truststore list policyfirst
expect_err FAILED_PRECONDITION "delete a store that holds certificates" kh truststore delete web
expect_msg "--force"
ok "web is still there" kh truststore show web "$root_fp"
ok "delete --force" kh --json truststore delete debian --force
jhas "$T/ok.out" "{\"store\":\"debian\",\"certs_removed\":$n," "delete --force certs_removed"
expect_err NOT_FOUND "delete an unknown store" kh truststore delete debian
json_err NOT_FOUND "delete, --json error" kh --json truststore delete debian

ok "status" kh status
kh_stop
