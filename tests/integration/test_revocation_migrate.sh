#!/usr/bin/env bash
# Schema 2 is a migration, not an edit: a state database written by the
# PKI release (schema 1, made here from migration 1 as store.c holds it)
# with a trustpoint, a trust store and an imported CRL is migrated in place
# when keyholdd starts; what it held is kept, and the new policies start
# at their defaults (revocation none, no renewal) and can be set.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

pki_ca_init "$T/ca" "Migration CA"
openssl ca -batch -config "$T/ca/ca.cnf" -gencrl -out "$T/ca.crl" 2> /dev/null || fail "gencrl"
mkdir -p "$T/state"
python3 - "$KH_SRC/service/store/store.c" "$T/v1.sql" <<'EOF'
import re, sys
src = open(sys.argv[1]).read()
body = src[src.index("/* 1 */"):src.index("/* 2:")]
sql = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))
open(sys.argv[2], "w").write(sql + "\nPRAGMA user_version = 1;\n")
EOF
grep -q "CREATE TABLE trustpoints" "$T/v1.sql" || fail "migration 1 was not found in store.c"
grep -q "truststore_policy" "$T/v1.sql" && fail "migration 2 leaked into the schema 1 script"
der_hex() { openssl x509 -in "$1" -outform DER | od -An -v -tx1 | tr -d ' \n'; }
crl_hex() { openssl crl -in "$1" -outform DER | od -An -v -tx1 | tr -d ' \n'; }
fp=$(pki_fp "$T/ca/ca.pem")
now=$(date +%s)
# db_run: SQL on stdin into the schema 1 database. On PostgreSQL
# (KH_STATE=postgresql) the script gets the types the store's driver gives
# migration 1 there (service/store/store_pg.c pg_translate) and the
# version goes into keyhold_schema; X'..' blobs become bytea.
db_run() {
  if [ "${KH_STATE:-sqlite}" = postgresql ]; then
    python3 -c '
import re, sys
sql = sys.stdin.read()
sql = sql.replace("PRAGMA user_version = 1;", "CREATE TABLE keyhold_schema (id BIGINT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL); INSERT INTO keyhold_schema VALUES (1, 1); ALTER TABLE truststore_certs ADD COLUMN rowid BIGSERIAL;")
if "CREATE TABLE" in sql:
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    sql = re.sub(r"\bBLOB\b", "BYTEA", sql)
    sql = re.sub(r"\bTEXT\b", "TEXT COLLATE \"C\"", sql)
q = chr(39)
sql = re.sub("X" + q + "([0-9a-f]*)" + q, lambda m: q + chr(92) + "x" + m.group(1) + q + "::bytea", sql)
sys.stdout.write(sql)' | kh_pg_psql -f -
  else
    sqlite3 "$T/state/keyhold.db"
  fi
}
[ "${KH_STATE:-sqlite}" = postgresql ] && kh_pg_start
db_run < "$T/v1.sql"
db_run <<EOF
INSERT INTO trustpoints (name, key_name, subject, enrollment, revocation, created, updated)
  VALUES ('old-tp', 'old-tp', 'CN=old.example.com', 'terminal', 'crl', $now, $now);
INSERT INTO trustpoint_certs (trustpoint, role, idx, der) VALUES ('old-tp', 'ca', 0, X'$(der_hex "$T/ca/ca.pem")');
INSERT INTO truststores (name, created) VALUES ('old-store', $now);
INSERT INTO truststore_certs (store, fingerprint, subject, cn, self_signed, not_after, der, added)
  VALUES ('old-store', '$fp', 'CN=Migration CA', 'Migration CA', 1, $((now + 86400 * 3650)), X'$(der_hex "$T/ca/ca.pem")', $now);
INSERT INTO crls (store, issuer_key, issuer, fingerprint, this_update, next_update, der, imported)
  VALUES ('old-store', 'k', 'CN=Migration CA', 'f', $now, 0, X'$(crl_hex "$T/ca.crl")', $now);
EOF
[ "${KH_STATE:-sqlite}" = postgresql ] || chmod 0600 "$T/state/keyhold.db"
[ "$(kh_state_version)" = 1 ] || fail "the database is not at schema 1"

kh_start
grep -q "migrated to schema version 2" "$T/keyholdd.log" || fail "no migration to schema 2"
[ "$(kh_state_version)" = 10 ] || fail "the database is not at schema 10"
ok "the trustpoint survived" kh --json trustpoint show old-tp
[ "$(json_get 'd["revocation"]' < "$T/ok.out")" = crl ] || fail "its revocation list changed"
[ "$(json_get 'd["renew_at"]' < "$T/ok.out")" = 0 ] && [ "$(json_get 'd["ocsp_url"]' < "$T/ok.out")" = "" ] \
  || fail "the new settings do not start at their defaults"
[ "$(json_get 'd["ca"][0]["fingerprint_sha256"]' < "$T/ok.out")" = "$fp" ] || fail "its CA is gone"
ok "set on a migrated trustpoint" kh trustpoint set old-tp --renew-at 70 --ocsp-url http://127.0.0.1:9/ocsp
ok "the store survived" kh --json truststore list old-store
[ "$(json_get 'd["stores"][0]["revocation"]' < "$T/ok.out")" = none ] || fail "the store's policy is not none"
[ "$(json_get 'len(d["stores"][0]["crls"])' < "$T/ok.out")" = 1 ] || fail "the imported CRL is gone"
ok "set on a migrated store" kh truststore set old-store --revocation crl,none
ok "expiring sees the old certificates" kh --json cert expiring --all
[ "$(json_get 'd["certificates"][0]["held_by"]' < "$T/ok.out")" = "['trustpoint-ca:old-tp', 'truststore:old-store']" ] \
  || fail "the listing does not hold the migrated certificates"
migrations=$(grep -c "migrated to schema version" "$T/keyholdd.log")
kh_restart
[ "$(grep -c "migrated to schema version" "$T/keyholdd.log")" = "$migrations" ] || fail "a restart migrated again"
ok "the settings persist" kh --json trustpoint show old-tp
[ "$(json_get 'd["renew_at"]' < "$T/ok.out")" = 70 ] || fail "renew-at did not persist"
kh_stop
