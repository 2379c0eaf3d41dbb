#!/usr/bin/env bash
# The keyhold OpenSSL 3 provider (client/provider, docs/PROVIDER.md) from
# unmodified openssl programs: keyhold: URIs and KEYHOLD KEY reference
# files; CSRs, certificates, dgst, pkeyutl and CMS signatures with RSA
# (PKCS#1 and PSS), RSA-PSS (type=rsa-pss), P-256, P-384 and Ed25519 keys, each verified by stock
# OpenSSL without the provider; TLS 1.3 and 1.2 handshakes with s_server;
# key/certificate matching; a principal without a grant refused with
# PERMISSION_DENIED while keyholdd keeps serving.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"
. "$(dirname "$0")/lib_provider.sh"

kh_sec_user khprov
KH_SERVICE_EXTRA="socket_group = khprov" kh_config "signer = user:khprov"
kh_start

kh_provider_setup

echo "the quick brown fox" > "$T/msg"
chmod 644 "$T/msg"

# A test CA made with stock openssl.
sslx req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=kp test CA" \
  -keyout "$T/ca.key" -out "$T/ca.pem" 2> "$T/ca.err" || { cat "$T/ca.err" >&2; fail "test CA"; }

# ---- signatures from the openssl CLI, verified without the provider ----
KEYS=()
for spec in rsa:rsa2048 p256:p256 p384:p384 ed:ed25519; do
  case $spec in rsa:* | p256:*) ;; *) kh_has_type "${spec#*:}" || continue ;; esac
  KEYS+=("${spec%%:*}")
  k=${spec%%:*}
  ok "generate $k" kh key generate "$k" --type "${spec#*:}"
  ok "public key $k" kh key show "$k" --pem
  cp "$T/ok.out" "$T/$k.pub"
  ok "reference $k" kh key show "$k" --reference
  cp "$T/ok.out" "$T/$k.keyref"
  grep -q -- "-----BEGIN KEYHOLD KEY-----" "$T/$k.keyref" || fail "$k: no KEYHOLD KEY block"

  # A CSR signed in keyholdd; a certificate for it from the test CA and a
  # self-signed one (x509 -signkey).
  ok "req $k" kp openssl req -new -key "keyhold:key=$k" -subj "/CN=$k.test" -addext "subjectAltName=IP:127.0.0.1" \
    -out "$T/$k.csr"
  ok "req verify $k" sslx req -verify -noout -in "$T/$k.csr"
  sslx req -noout -pubkey -in "$T/$k.csr" | cmp -s - "$T/$k.pub" || fail "$k: the CSR's key is not keyhold's"
  ok "issue $k" sslx x509 -req -in "$T/$k.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
    -copy_extensions copyall -out "$T/$k.crt"
  ok "x509 -signkey $k" kp openssl x509 -req -in "$T/$k.csr" -signkey "keyhold:key=$k" -days 2 -out "$T/$k.self"
  ok "self-signed verifies $k" sslx verify -CAfile "$T/$k.self" "$T/$k.self"

  if [ "$k" = ed ]; then
    ok "pkeyutl -rawin $k" kp openssl pkeyutl -sign -rawin -inkey "keyhold:key=$k" -in "$T/msg" -out "$T/$k.sig"
    ok "verify pkeyutl $k" sslx pkeyutl -verify -rawin -pubin -inkey "$T/$k.pub" -in "$T/msg" -sigfile "$T/$k.sig"
  else
    ok "dgst $k" kp openssl dgst -sha256 -sign "keyhold:key=$k" -out "$T/$k.sig" "$T/msg"
    ok "verify dgst $k" sslx dgst -sha256 -verify "$T/$k.pub" -signature "$T/$k.sig" "$T/msg"
    ok "dgst sha384 $k" kp openssl dgst -sha384 -sign "keyhold:key=$k" -out "$T/$k.sig" "$T/msg"
    ok "verify dgst sha384 $k" sslx dgst -sha384 -verify "$T/$k.pub" -signature "$T/$k.sig" "$T/msg"
    # EVP_PKEY_sign of a precomputed digest.
    sslx dgst -sha256 -binary -out "$T/msg.sha256" "$T/msg"
    ok "pkeyutl $k" kp openssl pkeyutl -sign -inkey "keyhold:key=$k" -pkeyopt digest:sha256 -in "$T/msg.sha256" \
      -out "$T/$k.psig"
    ok "verify pkeyutl $k" sslx pkeyutl -verify -pubin -inkey "$T/$k.pub" -pkeyopt digest:sha256 \
      -in "$T/msg.sha256" -sigfile "$T/$k.psig"
  fi
  # OpenSSL 3.0's CMS takes an Ed25519 signer's algorithm identifier from
  # the legacy key methods only, which a provider key has not: no CMS with
  # Ed25519 here (docs/PROVIDER.md).
  if [ "$k" != ed ]; then
    ok "cms $k" kp openssl cms -sign -binary -in "$T/msg" -signer "$T/$k.crt" -inkey "keyhold:key=$k" \
      -outform DER -out "$T/$k.cms"
    ok "verify cms $k" sslx cms -verify -binary -inform DER -in "$T/$k.cms" -CAfile "$T/ca.pem" -content "$T/msg" \
      -out /dev/null
  fi
done

# RSA-PSS: keyholdd's salt is the digest length; the signature verifies
# only with that salt, and another salt is refused before anything is sent.
pss=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest)
ok "dgst pss" kp openssl dgst -sha256 "${pss[@]}" -sign keyhold:key=rsa -out "$T/pss.sig" "$T/msg"
ok "verify pss" sslx dgst -sha256 "${pss[@]}" -verify "$T/rsa.pub" -signature "$T/pss.sig" "$T/msg"
ok "pkeyutl pss" kp openssl pkeyutl -sign -inkey keyhold:key=rsa -pkeyopt digest:sha256 \
  -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 -in "$T/msg.sha256" -out "$T/pss.psig"
ok "verify pkeyutl pss" sslx pkeyutl -verify -pubin -inkey "$T/rsa.pub" -pkeyopt digest:sha256 \
  -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest -in "$T/msg.sha256" -sigfile "$T/pss.psig"
rc=0
kp openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:max -sign keyhold:key=rsa \
  -out "$T/bad.sig" "$T/msg" > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a PSS salt other than the digest length was accepted"
grep -q "salt is the digest length" "$T/bad.out" || { cat "$T/bad.out" >&2; fail "the salt refusal is unclear"; }
ok "req pss" kp openssl req -new -key keyhold:key=rsa -subj "/CN=pss" -sigopt rsa_padding_mode:pss \
  -sigopt rsa_pss_saltlen:digest -out "$T/pss.csr"
ok "req pss verify" sslx req -verify -noout -in "$T/pss.csr"
sslx req -noout -text -in "$T/pss.csr" | grep -q "rsassaPss" || fail "the PSS CSR is not RSASSA-PSS"
ok "cms pss" kp openssl cms -sign -binary -in "$T/msg" -signer "$T/rsa.crt" -inkey keyhold:key=rsa \
  -keyopt rsa_padding_mode:pss -outform DER -out "$T/pss.cms"
ok "verify cms pss" sslx cms -verify -binary -inform DER -in "$T/pss.cms" -CAfile "$T/ca.pem" -content "$T/msg" \
  -out /dev/null

# ---- the RSA key as an OpenSSL RSA-PSS key (keyhold:...;type=rsa-pss[-sha256]) ----
# Its SubjectPublicKeyInfo is RSASSA-PSS with the restriction (SHA-256,
# MGF1 SHA-256, salt at least 32) and keyholdd's modulus and exponent.
rp="keyhold:key=rsa;type=rsa-pss-sha256"
modexp() { sslx pkey -pubin -noout -text -in "$1" | sed -n '/^Modulus:/,/^Exponent:/p'; }
modexp "$T/rsa.pub" > "$T/rsa.modexp"
[ -s "$T/rsa.modexp" ] || fail "no modulus in rsa.pub"
ok "req rsa-pss" kp openssl req -new -key "$rp" -subj "/CN=rsapss.test" -addext "subjectAltName=IP:127.0.0.1" \
  -out "$T/rpss.csr"
ok "req verify rsa-pss" sslx req -verify -noout -in "$T/rpss.csr"
sslx req -noout -pubkey -in "$T/rpss.csr" > "$T/rpss.pub"
modexp "$T/rpss.pub" | cmp -s - "$T/rsa.modexp" || fail "the RSA-PSS CSR's modulus/exponent are not keyhold's"
sslx req -noout -text -in "$T/rpss.csr" > "$T/rpss.txt"
for want in "Public Key Algorithm: rsassaPss" "PSS parameter restrictions" "Hash Algorithm: SHA2-256" \
  "Mask Algorithm: MGF1 with SHA2-256" "Minimum Salt Length: 32" "Signature Algorithm: rsassaPss"; do
  grep -q "$want" "$T/rpss.txt" || { cat "$T/rpss.txt" >&2; fail "RSA-PSS CSR: no '$want'"; }
done
ok "issue rsa-pss" sslx x509 -req -in "$T/rpss.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
  -copy_extensions copyall -out "$T/rpss.crt"
ok "x509 -signkey rsa-pss" kp openssl x509 -req -in "$T/rpss.csr" -signkey "$rp" -days 2 -out "$T/rpss.self"
ok "self-signed verifies rsa-pss" sslx verify -CAfile "$T/rpss.self" "$T/rpss.self"
ok "dgst rsa-pss" kp openssl dgst -sha256 -sign "$rp" -out "$T/rpss.sig" "$T/msg"
ok "verify dgst rsa-pss" sslx dgst -sha256 -verify "$T/rpss.pub" -signature "$T/rpss.sig" "$T/msg"
# The same signature verifies as a plain PSS signature with keyhold's RSA key.
ok "verify dgst rsa-pss as pss" sslx dgst -sha256 "${pss[@]}" -verify "$T/rsa.pub" -signature "$T/rpss.sig" "$T/msg"
ok "pkeyutl rsa-pss" kp openssl pkeyutl -sign -inkey "$rp" -pkeyopt digest:sha256 -in "$T/msg.sha256" \
  -out "$T/rpss.psig"
ok "verify pkeyutl rsa-pss" sslx pkeyutl -verify -pubin -inkey "$T/rpss.pub" -pkeyopt digest:sha256 \
  -in "$T/msg.sha256" -sigfile "$T/rpss.psig"
# OpenSSL 3.0's CMS writes rsaEncryption for any RSA-PSS key (its own
# software ones too) unless the padding is named: -keyopt as for RSA.
ok "cms rsa-pss" kp openssl cms -sign -binary -in "$T/msg" -signer "$T/rpss.crt" -inkey "$rp" \
  -keyopt rsa_padding_mode:pss -outform DER -out "$T/rpss.cms"
ok "verify cms rsa-pss" sslx cms -verify -binary -inform DER -in "$T/rpss.cms" -CAfile "$T/ca.pem" -content "$T/msg" \
  -out /dev/null
# The restriction holds: another digest or PKCS#1 v1.5 is refused unsent.
rc=0
kp openssl dgst -sha384 -sign "$rp" -out "$T/bad.sig" "$T/msg" > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "rsa-pss-sha256 signed SHA-384"
grep -q "restricted to PSS with SHA2-256" "$T/bad.out" || { cat "$T/bad.out" >&2; fail "the restriction is not named"; }
rc=0
kp openssl dgst -sha256 -sigopt rsa_padding_mode:pkcs1 -sign "$rp" -out "$T/bad.sig" "$T/msg" > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "an RSA-PSS key signed PKCS#1 v1.5"
# Unrestricted (type=rsa-pss): any digest keyhold signs with, PSS only.
ok "dgst rsa-pss sha384" kp openssl dgst -sha384 -sign "keyhold:key=rsa;type=rsa-pss" -out "$T/rpss4.sig" "$T/msg"
ok "verify rsa-pss sha384" sslx dgst -sha384 "${pss[@]}" -verify "$T/rsa.pub" -signature "$T/rpss4.sig" "$T/msg"
rc=0
kp openssl req -new -key "keyhold:key=p256;type=rsa-pss" -subj /CN=x -out /dev/null > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "type=rsa-pss took an EC key"
grep -q "is for RSA keys" "$T/bad.out" || { cat "$T/bad.out" >&2; fail "type=rsa-pss on an EC key is not explained"; }

# ---- key and certificate matching (X509_check_private_key) ----
check="$KH_BUILD/tests/integration/kh_pkeycheck"
for k in rsa p256; do
  other=p256; [ "$k" = p256 ] && other=rsa
  ok "match $k uri" kp "$check" "keyhold:key=$k" "$T/$k.crt"
  ok "match $k reference" kp "$check" "$T/$k.keyref" "$T/$k.crt"
  rc=0; kp "$check" "keyhold:key=$k" "$T/$other.crt" > /dev/null 2>&1 || rc=$?
  [ "$rc" -eq 3 ] || fail "$k matched the certificate of $other (rc $rc)"
done
# Signing through a reference file loaded as applications load key files
# (PEM_read_bio_PrivateKey).
printf kh_pkeycheck > "$T/fixed.msg"
for k in "${KEYS[@]}"; do
  ok "sign via reference $k" kp "$check" -s "$T/$k.keyref" "$T/$k.refsig"
  if [ "$k" = ed ]; then
    ok "verify reference $k" sslx pkeyutl -verify -rawin -pubin -inkey "$T/$k.pub" -in "$T/fixed.msg" \
      -sigfile "$T/$k.refsig"
  else
    ok "verify reference $k" sslx dgst -sha256 -verify "$T/$k.pub" -signature "$T/$k.refsig" "$T/fixed.msg"
  fi
done
if [ -f "$T/p384.pub" ]; then
  rc=0; kp "$check" "keyhold:key=p384" "$T/p256.crt" > /dev/null 2>&1 || rc=$?
  [ "$rc" -eq 3 ] || fail "p384 matched the certificate of p256 (rc $rc)"
fi

# ---- TLS: s_server with a keyhold key, stock s_client ----
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SRV_PID=""
stop_server() {
  if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2> /dev/null || true; wait "$SRV_PID" 2> /dev/null || true; fi
  SRV_PID=""
}
kh_on_exit stop_server

# tls_check KEY CERT: one TLS 1.3 and one TLS 1.2 handshake against
# s_server -key KEY -cert CERT, verified by s_client against the test CA.
tls_check() {
  local key=$1 cert=$2 port v
  port=$(free_port)
  kp openssl s_server -accept "127.0.0.1:$port" -key "$key" -cert "$cert" -naccept 3 -quiet \
    > "$T/srv.log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 1 100); do
    if (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then break; fi
    kill -0 "$SRV_PID" 2> /dev/null || { cat "$T/srv.log" >&2; fail "s_server -key $key exited"; }
    sleep 0.1
  done
  # The probe above was the first accept; two handshakes follow.
  for v in tls1_3 tls1_2; do
    sslx s_client -connect "127.0.0.1:$port" -"$v" -verify_return_error -CAfile "$T/ca.pem" -brief \
      < /dev/null > "$T/cli.log" 2>&1 || { cat "$T/cli.log" "$T/srv.log" >&2; fail "$v handshake with $key"; }
    grep -q "CONNECTION ESTABLISHED" "$T/cli.log" || { cat "$T/cli.log" >&2; fail "$v: no connection ($key)"; }
    case $v in
    tls1_3) grep -q "Protocol version: TLSv1.3" "$T/cli.log" || fail "not TLS 1.3 ($key)" ;;
    tls1_2) grep -q "Protocol version: TLSv1.2" "$T/cli.log" || fail "not TLS 1.2 ($key)" ;;
    esac
    echo "$key $v: $(grep -i 'signature type' "$T/cli.log" | tr '\n' ' ')" >&2
  done
  stop_server
}
tls_check keyhold:key=rsa "$T/rsa.crt"
tls_check keyhold:key=p256 "$T/p256.crt"
# An RSASSA-PSS certificate: TLS can only sign rsa_pss_pss_sha256 with it.
tls_check "$rp" "$T/rpss.crt"
grep -q "Signature type: RSA-PSS" "$T/cli.log" || { cat "$T/cli.log" >&2; fail "the RSA-PSS key did not sign RSA-PSS"; }

# keyholdd restarts under a running server: the provider's broken
# connection is made anew on the next handshake.
port=$(free_port)
kp openssl s_server -accept "127.0.0.1:$port" -key keyhold:key=p256 -cert "$T/p256.crt" -naccept 3 -quiet \
  > "$T/srv.log" 2>&1 &
SRV_PID=$!
for _ in $(seq 1 100); do
  if (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then break; fi
  sleep 0.1
done
ok "handshake before the restart" sslx s_client -connect "127.0.0.1:$port" -verify_return_error -CAfile "$T/ca.pem" \
  -brief < /dev/null
kh_restart
ok "handshake after the restart" sslx s_client -connect "127.0.0.1:$port" -verify_return_error -CAfile "$T/ca.pem" \
  -brief < /dev/null
grep -q "CONNECTION ESTABLISHED" "$T/ok.err" "$T/ok.out" || fail "no handshake after keyholdd restarted"
stop_server

# A mismatched pair is refused by s_server itself.
rc=0
kp openssl s_server -accept "127.0.0.1:$(free_port)" -key keyhold:key=rsa -cert "$T/p256.crt" -naccept 1 \
  < /dev/null > "$T/mis.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "s_server took a certificate that does not match its key"
grep -qi "does not match\|mismatch" "$T/mis.log" || { cat "$T/mis.log" >&2; fail "the mismatch is not named"; }

# ---- a principal without a grant ----
chmod 644 "$T"/*.keyref
mkdir -p "$T/u" && chown khprov "$T/u"
rc=0
as_user khprov env OPENSSL_CONF="$T/openssl.cnf" OPENSSL_MODULES="$PROV_DIR" LD_PRELOAD="$KP_PRELOAD" \
  ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0" \
  "$check" -s "$T/p256.keyref" "$T/u/deny.sig" 2> "$T/deny.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a principal without a grant signed"
grep -q PERMISSION_DENIED "$T/deny.err" || { cat "$T/deny.err" >&2; fail "the refusal does not name PERMISSION_DENIED"; }
grep -q "no grant for key 'p256'" "$T/deny.err" || { cat "$T/deny.err" >&2; fail "keyhold's message is lost"; }
[ ! -s "$T/u/deny.sig" ] || fail "something was signed without a grant"
rc=0
as_user khprov env OPENSSL_CONF="$T/openssl.cnf" OPENSSL_MODULES="$PROV_DIR" LD_PRELOAD="$KP_PRELOAD" \
  ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0" \
  openssl req -new -key keyhold:key=p256 -subj /CN=x -out "$T/u/x.csr" 2> "$T/deny2.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a principal without a grant loaded a key by URI"
grep -q PERMISSION_DENIED "$T/deny2.err" || { cat "$T/deny2.err" >&2; fail "the URI refusal does not name PERMISSION_DENIED"; }
ok "keyholdd still serves" kh status
ok "and still signs" kp openssl dgst -sha256 -sign keyhold:key=p256 -out "$T/after.sig" "$T/msg"
ok "verify after" sslx dgst -sha256 -verify "$T/p256.pub" -signature "$T/after.sig" "$T/msg"

# ---- the provider over TLS with a client certificate ----
# keyholdd gets a [tls] listener (as tests/integration/test_security_tls.sh);
# the provider reaches it with tls_* in openssl.cnf, or KEYHOLD_CONNECT and
# KEYHOLD_TLS_* in the environment. The certificate's principal has a grant
# for p256; another certificate's has none.
P="$T/pki"
mkdir -p "$P"
ok "tls server key" kh key generate kp-tls --type p256
ok "tls server pubkey" kh key show kp-tls --pem
cp "$T/ok.out" "$P/server.pub"
sslx req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=kp client CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -keyout "$P/ca.key" \
  -out "$P/ca.pem" 2> /dev/null || fail "client CA"
# issue NAME SUBJ EXT [PUBKEY]: a certificate from the client CA.
issue() {
  printf '%s\n' "$3" > "$P/$1.ext"
  sslx req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$P/$1.key" \
    -out "$P/$1.csr" 2> /dev/null || fail "csr $1"
  sslx x509 -req -in "$P/$1.csr" ${4:+-force_pubkey "$4"} -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial \
    -days 2 -extfile "$P/$1.ext" -out "$P/$1.pem" 2> /dev/null || fail "certificate $1"
}
issue server /CN=keyhold "basicConstraints=CA:FALSE
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1" "$P/server.pub"
rm -f "$P/server.key"
issue app /CN=app "basicConstraints=CA:FALSE
extendedKeyUsage=clientAuth
subjectAltName=URI:spiffe://keyhold.test/app"
issue other /CN=other "basicConstraints=CA:FALSE
extendedKeyUsage=clientAuth
subjectAltName=URI:spiffe://keyhold.test/other"
chmod 644 "$P"/*
kh_stop
KH_SERVICE_EXTRA="socket_group = khprov" kh_config "signer = user:khprov, cert:spiffe://keyhold.test/app, cert:spiffe://keyhold.test/other
[tls]
listen = 127.0.0.1:0
key = kp-tls
cert = $P/server.pem
client_ca = $P/ca.pem
[key:p256]
signers = cert:spiffe://keyhold.test/app"
kh_start
PORT=$(sed -n 's/.*TLS 1.3 listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$T/keyholdd.log" | tail -n 1)
[ -n "$PORT" ] || fail "no TLS port in keyholdd's log"
# tls_cnf WHO: an openssl.cnf reaching keyholdd over TLS as WHO.
tls_cnf() {
  "$KH_SRC/scripts/provider-conf.sh" "$SOCK" | sed "/^socket = /c\\
tls_connect = 127.0.0.1:$PORT\\
tls_ca = $P/ca.pem\\
tls_cert = $P/$1.pem\\
tls_key = $P/$1.key" > "$T/tls-$1.cnf"
  grep -q "^tls_key = " "$T/tls-$1.cnf" || fail "tls openssl.cnf"
}
tls_cnf app
tls_cnf other
# No Unix socket to fall back on: the signature can only come over TLS.
NOSOCK="$T/no-such.sock"
ok "dgst over TLS" env "${KP_ENV[@]}" OPENSSL_CONF="$T/tls-app.cnf" KEYHOLD_SOCKET="$NOSOCK" \
  openssl dgst -sha256 -sign keyhold:key=p256 -out "$T/tls.sig" "$T/msg"
ok "verify dgst over TLS" sslx dgst -sha256 -verify "$T/p256.pub" -signature "$T/tls.sig" "$T/msg"
grep -q "spiffe://keyhold.test/app" "$T/keyholdd.log" || fail "keyholdd did not see the certificate's principal"
# The same through the environment (openssl.cnf without socket or tls_*).
"$KH_SRC/scripts/provider-conf.sh" "$SOCK" | sed '/^socket = /d' > "$T/env.cnf"
ok "dgst over TLS (environment)" env "${KP_ENV[@]}" OPENSSL_CONF="$T/env.cnf" KEYHOLD_SOCKET="$NOSOCK" \
  KEYHOLD_CONNECT="127.0.0.1:$PORT" KEYHOLD_TLS_CA="$P/ca.pem" KEYHOLD_TLS_CERT="$P/app.pem" \
  KEYHOLD_TLS_KEY="$P/app.key" openssl dgst -sha256 -sign keyhold:key=p256 -out "$T/tlsenv.sig" "$T/msg"
ok "verify dgst over TLS (environment)" sslx dgst -sha256 -verify "$T/p256.pub" -signature "$T/tlsenv.sig" "$T/msg"
# A certificate whose principal has no grant: PERMISSION_DENIED as an
# OpenSSL error, nothing signed.
rm -f "$T/tlsdeny.sig"
rc=0
env "${KP_ENV[@]}" OPENSSL_CONF="$T/tls-other.cnf" KEYHOLD_SOCKET="$NOSOCK" \
  openssl dgst -sha256 -sign keyhold:key=p256 -out "$T/tlsdeny.sig" "$T/msg" > "$T/tlsdeny.err" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a certificate without a grant signed over TLS"
grep -q "keyhold.*PERMISSION_DENIED" "$T/tlsdeny.err" || { cat "$T/tlsdeny.err" >&2; fail "no PERMISSION_DENIED over TLS"; }
[ ! -s "$T/tlsdeny.sig" ] || fail "something was signed without a grant over TLS"
ok "keyholdd still serves after TLS" kh status

# ---- bad URIs are refused clearly ----
rc=0
kp openssl req -new -key "keyhold:name=rsa" -subj /CN=x -out /dev/null 2> "$T/uri.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "keyhold:key=NAME" "$T/uri.err" || { cat "$T/uri.err" >&2; fail "a bad URI is not explained"; }
log "ok"
