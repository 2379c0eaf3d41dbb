#!/usr/bin/env bash
# What a principal can learn about keys it has no grant for (issue 13,
# item 6; docs/SECURITY.md "What each role can see"): a signer with one
# grant sees only that key in status (count, keys made outside FIPS mode),
# in the trustpoint list and in the certificate expiry list, cannot read or export another key's
# trustpoint, and gets the same refusal for an existing trustpoint it has
# no grant for and for one that does not exist. An auditor sees names but
# no key material.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"

kh_sec_user khvis
kh_sec_user khvaud
# Both reach the socket through its group.
gpasswd -a khvaud khvis > /dev/null || fail "cannot add khvaud to group khvis"
KH_SERVICE_EXTRA="socket_group = khvis" kh_config "signer = user:khvis
auditor = user:khvaud"
kh_start

ok "trustpoint mine" kh trustpoint create mine --generate p256 --subject "CN=mine.example.com"
ok "enroll mine" kh trustpoint enroll mine --out "$T/mine.pem"
ok "trustpoint theirs" kh trustpoint create theirs --generate p256 --subject "CN=theirs.example.com"
ok "enroll theirs" kh trustpoint enroll theirs --out "$T/theirs.pem"
ok "grant mine" kh policy grant mine "user:khvis"

# ---- the admin sees both ----
kh --json status > "$T/admin.json"
admin_keys=$(json_get 'd["keys"]' < "$T/admin.json")
[ "$admin_keys" -ge 3 ] || fail "the admin sees $admin_keys keys"
grep -q theirs "$T/admin.json" || fail "the admin's status does not list the key made outside FIPS mode"

# ---- the signer: its key only ----
kh_as khvis --json status > "$T/signer.json"
[ "$(json_get 'd["keys"]' < "$T/signer.json")" = 1 ] || fail "the signer is told of $(json_get 'd["keys"]' < "$T/signer.json") keys"
grep -q mine "$T/signer.json" || fail "the signer's status does not list its own key"
grep -q -e theirs -e keyhold-audit "$T/signer.json" && fail "the signer's status names keys it has no grant for: $(cat "$T/signer.json")"
kh_as khvis status > "$T/signer.txt" || fail "status as the signer"
grep -q -e theirs -e keyhold-audit "$T/signer.txt" && fail "the signer's status text names keys it has no grant for"
kh_as khvis --json trustpoint list > "$T/tps.json" || fail "trustpoint list as the signer"
grep -q mine "$T/tps.json" || fail "the signer does not see its own trustpoint"
grep -q theirs "$T/tps.json" && fail "the signer sees another key's trustpoint: $(cat "$T/tps.json")"
ok "the signer reads its trustpoint" kh_as khvis trustpoint show mine
ok "the signer exports its certificate" kh_as khvis trustpoint export mine
cmp -s "$T/ok.out" "$T/mine.pem" || fail "the signer's export is not its certificate"
# Another key's trustpoint and a missing one: the same words.
for what in show export; do
  expect_err PERMISSION_DENIED "signer: $what theirs" kh_as khvis trustpoint "$what" theirs
  sed "s/theirs/NAME/g" "$T/err.err" > "$T/theirs.err"
  expect_err PERMISSION_DENIED "signer: $what a missing trustpoint" kh_as khvis trustpoint "$what" nosuch
  sed "s/nosuch/NAME/g" "$T/err.err" > "$T/nosuch.err"
  cmp -s "$T/theirs.err" "$T/nosuch.err" || fail "signer: $what tells an existing trustpoint from a missing one: $(cat "$T/theirs.err" "$T/nosuch.err")"
done
# The same as for the key itself.
expect_err PERMISSION_DENIED "signer: public key of theirs" kh_as khvis key show theirs
# The expiry list: its own trustpoint's certificate, not another key's.
kh --json cert expiring --all > "$T/admin-exp.json" || fail "cert expiring as the admin"
grep -q theirs "$T/admin-exp.json" || fail "the admin's expiry list does not name trustpoint theirs"
kh_as khvis --json cert expiring --all > "$T/signer-exp.json" || fail "cert expiring as the signer"
grep -q mine "$T/signer-exp.json" || fail "the signer's expiry list does not name its own trustpoint"
grep -q -e theirs -e theirs.example.com "$T/signer-exp.json" && fail "the signer's expiry list names another key's trustpoint: $(cat "$T/signer-exp.json")"

# ---- the auditor: names, no key material ----
kh_as khvaud --json status > "$T/aud.json"
[ "$(json_get 'd["keys"]' < "$T/aud.json")" = "$admin_keys" ] || fail "the auditor does not see the key count"
kh_as khvaud --json trustpoint list > "$T/aud-tps.json" || fail "trustpoint list as the auditor"
grep -q theirs "$T/aud-tps.json" || fail "the auditor does not see the trustpoints"
expect_err PERMISSION_DENIED "auditor: export a certificate" kh_as khvaud trustpoint export theirs
ok "audit verify" kh audit verify
kh_stop
