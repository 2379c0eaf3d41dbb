#!/usr/bin/env bash
# The postgresql state backend over TLS with a password (docs/CLUSTER.md
# "State backend"): a PostgreSQL server of this test's own on a loopback
# port that accepts only TLS and SCRAM passwords (lib_pg.sh --ssl), its
# certificate from an openssl-made CA; keyholdd connects with
# sslmode=verify-full and reads the password from password_file or from the
# systemd credential keyhold-db-password. Refused at start, each with its
# message: a password file that is not 0600 or stricter, not keyholdd's
# user's, a link or not a regular file; a password in the dsn or in the
# configuration; a wrong password; a server certificate from another CA or
# for another name.
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/lib_pg.sh
. "$(dirname "$0")/lib_pg.sh"

# The database's CA and server certificate (localhost, 127.0.0.1).
mkdir -p "$T/pki"
(
cd "$T/pki" || exit 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj "/CN=Test DB CA" 2> /dev/null || fail "cannot make the CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key -out other-ca.pem \
  -days 2 -subj "/CN=Another CA" 2> /dev/null || fail "cannot make the other CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
  -subj "/CN=localhost" 2> /dev/null || fail "cannot make the server key"
printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext \
  -out server.pem 2> /dev/null || fail "cannot sign the server certificate"
) || exit 1

kh_pg_start --ssl "$T/pki/server.pem" "$T/pki/server.key"
password="kh-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
kh_pg_psql -c "CREATE ROLE kh LOGIN PASSWORD '$password'" -c "ALTER DATABASE keyhold OWNER TO kh" \
  -c "ALTER SCHEMA public OWNER TO kh" || fail "cannot make the database role"
umask 077
printf '%s\n' "$password" > "$T/dbpw"
dsn="host=localhost hostaddr=127.0.0.1 port=$PG_PORT dbname=keyhold user=kh sslmode=verify-full sslrootcert=$T/pki/ca.pem"

# state_conf DSN [EXTRA]: a configuration whose [state] is DSN (+ EXTRA lines).
state_conf() {
  kh_config "$(printf '[state]\nbackend = postgresql\ndsn = %s\n%s' "$1" "${2:-}")"
}
# refused DESC PATTERN: keyholdd refuses to start, saying PATTERN.
refused() {
  local rc=0
  timeout 30 "$KEYHOLDD" --config "$T/keyhold.conf" --foreground > "$T/refused.log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
    fail "$1: keyholdd did not refuse to start (exit $rc)"
  fi
  grep -q -- "$2" "$T/refused.log" || { tail -n 5 "$T/refused.log" >&2; fail "$1: its message does not say '$2'"; }
  log "refused: $1"
}

# Over TLS, verified, with the password from password_file.
state_conf "$dsn" "password_file = $T/dbpw"
kh_start
ok "generate a key" kh key generate tlskey --type p256
ok "trustpoint over TLS" kh trustpoint create tls-tp --key tlskey --subject "CN=tls.example"
ok "show it" kh --json trustpoint show tls-tp
[ "$(json_get 'd["subject"]' < "$T/ok.out")" = "CN=tls.example" ] || fail "the trustpoint reads back wrong: $(cat "$T/ok.out")"
[ "$(kh_pg_psql -c "SELECT count(*) FROM trustpoints WHERE name = 'tls-tp'")" = 1 ] || fail "the trustpoint is not in the database"
[ "$(kh_pg_psql -c "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
    WHERE a.usename = 'kh' AND s.ssl AND s.version LIKE 'TLSv1.%'")" -ge 1 ] || fail "keyholdd's connection is not TLS"
kh_stop

# The systemd credential instead of password_file.
mkdir -p "$T/cred"
cp "$T/dbpw" "$T/cred/keyhold-db-password"
state_conf "$dsn"
CREDENTIALS_DIRECTORY="$T/cred" kh_start
ok "list with the credential's password" kh --json trustpoint list
json_get "[t['name'] for t in d['trustpoints']]" < "$T/ok.out" | grep -q tls-tp || fail "tls-tp not listed"
kh_stop

# The password file's rules.
state_conf "$dsn" "password_file = $T/dbpw"
chmod 640 "$T/dbpw"
refused "a group-readable password file" "0600 or stricter"
chmod 400 "$T/dbpw"
ln -s "$T/dbpw" "$T/dbpw-link"
state_conf "$dsn" "password_file = $T/dbpw-link"
refused "a link as password file" "symbolic link"
state_conf "$dsn" "password_file = $T/cred"
refused "a directory as password file" "not a regular file"
if [ "$(id -u)" -eq 0 ]; then
  cp "$T/dbpw" "$T/dbpw-nobody"
  chown nobody "$T/dbpw-nobody"
  state_conf "$dsn" "password_file = $T/dbpw-nobody"
  refused "a password file of another user" "must belong to keyholdd's user"
fi
printf 'wrong\n' > "$T/dbpw-wrong"
state_conf "$dsn" "password_file = $T/dbpw-wrong"
refused "a wrong password" "password authentication failed"
state_conf "$dsn password=$password"
refused "a password in the dsn" "must not carry the password"
state_conf "$dsn" "password = $password"
refused "a password in the configuration" "never written in the configuration"
# The server's certificate: another CA, another name.
state_conf "${dsn/ca.pem/other-ca.pem}" "password_file = $T/dbpw"
refused "a server certificate from another CA" "certificate verify failed"
state_conf "${dsn/host=localhost/host=db.invalid}" "password_file = $T/dbpw"
refused "a server certificate for another name" "does not match host name"
# Without TLS the server does not let keyholdd in (hostssl only).
state_conf "${dsn/sslmode=verify-full/sslmode=disable}" "password_file = $T/dbpw"
refused "no TLS" "no encryption"
