#!/usr/bin/env bash
# The TLS listener (DESIGN §9): TLS 1.3 only, a client certificate required
# and verified against client_ca, the principal taken from the SAN URI (or
# CN) and mapped through [access] and the key grants; the server's private
# key is a token key (not extractable) used in the token for the handshake.
# Refused: no client certificate, a certificate from another CA, TLS 1.2,
# a client key below the trust store's key strength floor;
# a client that does not finish its handshake is cut off. A granted client
# signs over TLS with `keyhold --connect` and with the PKCS#11 module.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pkcs11.sh"

P="$T/pki"
mkdir -p "$P"
# ca NAME: a self-signed P-256 CA.
ca() {
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$1" -keyout "$P/$1.key" -out "$P/$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null \
    || fail "cannot make CA $1"
}
# leaf CA NAME SUBJ EXT: a P-256 key and a certificate from CA.
leaf() {
  local caname=$1 name=$2 subj=$3 ext=$4
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subj" \
    -keyout "$P/$name.key" -out "$P/$name.csr" 2>/dev/null || fail "csr $name"
  printf '%s\n' "$ext" > "$P/$name.ext"
  openssl x509 -req -in "$P/$name.csr" -CA "$P/$caname.pem" -CAkey "$P/$caname.key" -CAcreateserial \
    -days 2 -extfile "$P/$name.ext" -out "$P/$name.pem" 2>/dev/null || fail "cert $name"
}
ca ca-good
ca ca-other
CLI_EXT="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
leaf ca-good client "/CN=ignored-when-san-uri" "$CLI_EXT
subjectAltName=URI:spiffe://keyhold.test/app"
leaf ca-good nogrant "/CN=nogrant" "$CLI_EXT
subjectAltName=URI:spiffe://keyhold.test/other"
leaf ca-good cnonly "/CN=cn-client" "$CLI_EXT"
leaf ca-good stranger "/CN=stranger" "$CLI_EXT
subjectAltName=URI:spiffe://keyhold.test/stranger"
leaf ca-other rogue "/CN=rogue" "$CLI_EXT
subjectAltName=URI:spiffe://keyhold.test/app"

# 1. Without [tls]: the server key is made in the token, and a certificate
#    for its public key issued by the good CA (the CSR-making comes with the
#    PKI subsystem; here openssl issues for the exported public key).
kh_start
ok "server key" kh key generate tls-server --type p256
ok "server pubkey" kh key show tls-server --pem
cp "$T/ok.out" "$P/server.pub"
ok "signing key" kh key generate tls-sign --type p256
ok "signing pubkey" kh key show tls-sign --pem
cp "$T/ok.out" "$P/sign.pub"
kh_stop
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=keyhold" \
  -keyout "$P/throwaway.key" -out "$P/server.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' > "$P/server.ext"
openssl x509 -req -in "$P/server.csr" -force_pubkey "$P/server.pub" -CA "$P/ca-good.pem" -CAkey "$P/ca-good.key" \
  -CAcreateserial -days 2 -extfile "$P/server.ext" -out "$P/server.pem" 2>/dev/null || fail "server cert"
rm -f "$P/throwaway.key"

# 2. With [tls] on a free loopback port.
rm -f "$T/keyhold.conf"
kh_config "signer = cert:spiffe://keyhold.test/app, cert:spiffe://keyhold.test/other, cert:cn-client
[tls]
listen = 127.0.0.1:0
key = tls-server
cert = $P/server.pem
client_ca = $P/ca-good.pem
handshake_timeout = 2
[key:tls-sign]
signers = cert:spiffe://keyhold.test/app, cert:cn-client"
: > "$T/keyholdd.log"
kh_start
PORT=$(sed -n 's/.*TLS 1.3 listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$T/keyholdd.log" | tail -n 1)
[ -n "$PORT" ] || fail "no TLS port in the log"
tlskh() {
  local who=$1; shift
  "$KH_CLI" --connect "127.0.0.1:$PORT" --tls-ca "$P/ca-good.pem" --tls-cert "$P/$who.pem" --tls-key "$P/$who.key" "$@"
}
echo "signed over TLS" > "$T/msg"

# A granted client signs over TLS; openssl verifies.
ok "sign over TLS" tlskh client sign tls-sign --in "$T/msg" --out "$T/tls.sig"
openssl dgst -sha256 -verify "$P/sign.pub" -signature "$T/tls.sig" "$T/msg" > /dev/null \
  || fail "the signature made over TLS does not verify"
openssl dgst -sha256 -verify "$P/sign.pub" -signature "$T/tls.sig" "$P/server.ext" > /dev/null 2>&1 \
  && fail "the TLS signature verifies over another message"
# A TLS entry of KEYHOLD_ENDPOINTS (docs/CLUSTER.md) with the KEYHOLD_TLS_*
# files, after a node that is down; and --endpoints with the --tls-* flags.
ok "sign over a tls: endpoint" env KEYHOLD_ENDPOINTS="unix:$T/down.sock, tls:127.0.0.1:$PORT" \
  KEYHOLD_ENDPOINTS_ORDER=listed KEYHOLD_TLS_CA="$P/ca-good.pem" KEYHOLD_TLS_CERT="$P/client.pem" \
  KEYHOLD_TLS_KEY="$P/client.key" "$KH_CLI" sign tls-sign --in "$T/msg" --out "$T/tls-ep.sig"
openssl dgst -sha256 -verify "$P/sign.pub" -signature "$T/tls-ep.sig" "$T/msg" > /dev/null \
  || fail "the signature made through KEYHOLD_ENDPOINTS over TLS does not verify"
ok "--endpoints with tls: and --tls-*" env KEYHOLD_ENDPOINTS_ORDER=listed "$KH_CLI" \
  --endpoints "unix:$T/down.sock,tls:127.0.0.1:$PORT" --tls-ca "$P/ca-good.pem" --tls-cert "$P/client.pem" \
  --tls-key "$P/client.key" sign tls-sign --in "$T/msg" --out "$T/tls-ep.sig"
openssl dgst -sha256 -verify "$P/sign.pub" -signature "$T/tls-ep.sig" "$T/msg" > /dev/null \
  || fail "the signature made through --endpoints over TLS does not verify"
# The PKCS#11 module over TLS (KEYHOLD_CONNECT, docs/PKCS11.md): the
# certificate's principal sees the key granted to it, not the server's,
# and signs with it.
p11tls() {
  local who=$1; shift
  p11 env KEYHOLD_CONNECT="127.0.0.1:$PORT" KEYHOLD_TLS_CA="$P/ca-good.pem" KEYHOLD_TLS_CERT="$P/$who.pem" \
    KEYHOLD_TLS_KEY="$P/$who.key" pkcs11-tool --module "$P11_MODULE" "$@"
}
ok "pkcs11 over TLS: objects" p11tls client --list-objects
grep -q "label: *tls-sign$" "$T/ok.out" || fail "pkcs11 over TLS: the granted key is not listed: $(cat "$T/ok.out")"
if grep -q "label: *tls-server$" "$T/ok.out"; then fail "pkcs11 over TLS: the server's key is listed"; fi
ok "pkcs11 over TLS: sign" p11tls client --sign --id "$(kh --json key show tls-sign | json_get 'd["id"]')" \
  -m ECDSA-SHA256 --signature-format openssl -i "$T/msg" -o "$T/p11tls.sig"
openssl dgst -sha256 -verify "$P/sign.pub" -signature "$T/p11tls.sig" "$T/msg" > /dev/null \
  || fail "the signature made through the PKCS#11 module over TLS does not verify"
ok "a CN principal" tlskh cnonly sign tls-sign --in "$T/msg" --out "$T/cn.sig"
expect_err PERMISSION_DENIED "a client without a grant" tlskh nogrant sign tls-sign --in "$T/msg" --out "$T/x"
grep -q "cert:spiffe://keyhold.test/other has no grant" "$T/err.err" || fail "the principal is not the SAN URI"
expect_err PERMISSION_DENIED "a client signs with the server's key" tlskh client sign tls-server --in "$T/msg" --out "$T/x"
expect_err PERMISSION_DENIED "a client without a role" tlskh stranger key list
# Before a principal holds a role its frames are capped at 4 KiB: a
# larger one closes the connection instead of being answered.
head -c 6000 /dev/urandom > "$T/big"
expect_err UNAVAILABLE "a 6 KiB frame from a principal without a role" tlskh stranger sign tls-sign --in "$T/big" --out "$T/x"
expect_err PERMISSION_DENIED "a 6 KiB frame from a signer is read" tlskh nogrant sign tls-sign --in "$T/big" --out "$T/x"

# The server's certificate carries the token key, and the handshake
# proved possession: the key is in the token, sensitive and not extractable.
echo | openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$P/ca-good.pem" -cert "$P/client.pem" \
  -key "$P/client.key" -tls1_3 -showcerts 2>/dev/null | openssl x509 -pubkey -noout > "$T/presented.pub" \
  || fail "no server certificate"
cmp -s <(openssl pkey -pubin -in "$T/presented.pub" -outform DER) <(openssl pkey -pubin -in "$P/server.pub" -outform DER) \
  || fail "the server does not present the token key's certificate"
pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" --login --pin "$(cat "$TOKEN_PIN_FILE")" \
  --list-objects --type privkey > "$T/objs" 2>/dev/null || fail "pkcs11-tool cannot list objects"
access=$(grep -A6 "label:      tls-server" "$T/objs" | grep "Access:")
echo "$access" | grep -q "never extractable" || fail "the TLS key is extractable: $access"
echo "$access" | sed 's/never extractable//' | grep -q "extractable" && fail "CKA_EXTRACTABLE is true: $access"
echo "$access" | grep -q "sensitive" || fail "the TLS key is not sensitive: $access"

# s_client ARGS...: a handshake, stdin kept open a moment so that an alert
# the server sends after it (TLS 1.3 checks the client certificate then) is
# read; prints the output.
sclient() { (sleep 1) | timeout 30 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$P/ca-good.pem" "$@" 2>&1 || true; }
# Baseline: the same s_client with a good certificate is served.
sclient -tls1_3 -cert "$P/client.pem" -key "$P/client.key" > "$T/s-ok"
grep -q "Verify return code: 0" "$T/s-ok" || fail "s_client with a good certificate fails"
grep -q "alert" "$T/s-ok" && fail "s_client with a good certificate gets an alert"

# Refused: no client certificate (TLS 1.3 alert 116 certificate_required).
sclient -tls1_3 > "$T/s-nocert"
grep -Eq "alert (certificate required|number 116)" "$T/s-nocert" || { cat "$T/s-nocert" >&2; fail "a client without a certificate was not refused"; }
# Refused: a certificate from another CA (alert 48 unknown_ca).
sclient -tls1_3 -cert "$P/rogue.pem" -key "$P/rogue.key" > "$T/s-rogue"
grep -Eq "alert (unknown ca|number 48)" "$T/s-rogue" || { cat "$T/s-rogue" >&2; fail "a certificate from another CA was not refused"; }
expect_err UNAVAILABLE "the CLI with a certificate from another CA" \
  "$KH_CLI" --connect "127.0.0.1:$PORT" --tls-ca "$P/ca-good.pem" --tls-cert "$P/rogue.pem" --tls-key "$P/rogue.key" status
# Refused: TLS 1.2 (alert 70 protocol_version), even with a good certificate.
sclient -tls1_2 -cert "$P/client.pem" -key "$P/client.key" > "$T/s-12"
grep -Eq "alert (protocol version|number 70)|no protocols available|unsupported protocol" "$T/s-12" \
  || { cat "$T/s-12" >&2; fail "TLS 1.2 was not refused"; }
grep -q "Protocol *: TLSv1.2" "$T/s-12" && grep -q "Verify return code: 0" "$T/s-12" && ! grep -q alert "$T/s-12" \
  && fail "a TLS 1.2 session was established"

# A client that connects and never finishes its handshake is cut off
# after handshake_timeout (2 s), and others are served meanwhile.
python3 - "$PORT" > "$T/slowhs" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(60)
s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then silence
try:
    print("closed" if s.recv(1) == b"" else "data")
except OSError:
    print("closed")
PY
hs=$!
ok "served during a stalled handshake" tlskh client sign tls-sign --in "$T/msg" --out "$T/tls2.sig"
wait "$hs"
grep -q closed "$T/slowhs" || fail "a stalled handshake was not cut off"

# The refusals are on record.
ok "audit" kh --json audit show
json_get '[r["result"] for r in d["records"] if r["method"]=="TLSHandshake"]' < "$T/ok.out" \
  | grep -q UNAUTHENTICATED || fail "refused handshakes are not on record"
json_get '[r["principal"] for r in d["records"] if r["method"]=="Sign" and r["result"]=="OK"]' < "$T/ok.out" \
  | grep -q "cert:spiffe://keyhold.test/app" || fail "the TLS signer is not on record by its certificate name"
ok "audit verify" kh audit verify

# 3. An RSA server key: TLS 1.3 signs with RSASSA-PSS, made in the token
#    with CKM_RSA_PKCS_PSS.
if kh_has_type rsa2048 && kh_caps | json_get 'd["pss"]' | grep -q true; then
  ok "rsa server key" kh key generate tls-rsa --type rsa2048
  ok "rsa pubkey" kh key show tls-rsa --pem
  cp "$T/ok.out" "$P/rsa.pub"
  openssl x509 -req -in "$P/server.csr" -force_pubkey "$P/rsa.pub" -CA "$P/ca-good.pem" -CAkey "$P/ca-good.key" \
    -CAcreateserial -days 2 -extfile "$P/server.ext" -out "$P/server-rsa.pem" 2>/dev/null || fail "rsa server cert"
  kh_stop
  sed -i "s|^key = tls-server|key = tls-rsa|; s|^cert = .*server.pem|cert = $P/server-rsa.pem|" "$T/keyhold.conf"
  : > "$T/keyholdd.log"
  kh_start
  PORT=$(sed -n 's/.*TLS 1.3 listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$T/keyholdd.log" | tail -n 1)
  ok "sign over TLS with an RSA server key" tlskh client sign tls-sign --in "$T/msg" --out "$T/tls3.sig"
  openssl dgst -sha256 -verify "$P/sign.pub" -signature "$T/tls3.sig" "$T/msg" > /dev/null || fail "tls3 signature"
  sclient -tls1_3 -cert "$P/client.pem" -key "$P/client.key" > "$T/s-rsa"
  grep -q "Peer signature type: RSA-PSS" "$T/s-rsa" || { cat "$T/s-rsa" >&2; fail "the RSA handshake did not sign with PSS"; }
fi

# 4. Client CAs from a keyhold trust store (client_truststore) instead of
#    a CA file: the same refusals and grants apply.
ok "trust store for TLS clients" kh truststore add tls-clients "$P/ca-good.pem"
kh_stop
sed -i "s|^client_ca = .*|client_truststore = tls-clients|" "$T/keyhold.conf"
grep -q "^client_truststore = tls-clients" "$T/keyhold.conf" || fail "config edit"
: > "$T/keyholdd.log"
kh_start
grep -q "checked against trust store 'tls-clients'" "$T/keyholdd.log" || fail "the listener does not use the trust store"
PORT=$(sed -n 's/.*TLS 1.3 listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$T/keyholdd.log" | tail -n 1)
ok "sign over TLS, client CA from a trust store" tlskh client sign tls-sign --in "$T/msg" --out "$T/tls4.sig"
openssl dgst -sha256 -verify "$P/sign.pub" -signature "$T/tls4.sig" "$T/msg" > /dev/null || fail "tls4 signature"
sclient -tls1_3 -cert "$P/rogue.pem" -key "$P/rogue.key" > "$T/s-rogue2"
grep -Eq "alert (unknown ca|number 48)" "$T/s-rogue2" || { cat "$T/s-rogue2" >&2; fail "trust store: a certificate from another CA was not refused"; }
# The store's key strength floor holds for TLS clients as for `truststore
# verify` (docs/PKI.md "Validation"): with EC 384 required, the P-256 client
# is refused and the log names the certificate and the rule.
ok "EC floor 384 for TLS clients" kh truststore set tls-clients --min-ec-bits 384
kh_stop
: > "$T/keyholdd.log"
kh_start
PORT=$(sed -n 's/.*TLS 1.3 listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$T/keyholdd.log" | tail -n 1)
expect_err UNAVAILABLE "a P-256 client under an EC floor of 384" tlskh client status
grep -q "client certificate refused: certificate 'CN=ignored-when-san-uri' (depth 0): its EC key is on a 256-bit curve, below the trust store's key strength floor of 384 bits" \
  "$T/keyholdd.log" || fail "the TLS refusal does not name the certificate and the rule"
ok "EC floor back to 256" kh truststore set tls-clients --min-ec-bits 256
kh_stop
: > "$T/keyholdd.log"
kh_start
PORT=$(sed -n 's/.*TLS 1.3 listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$T/keyholdd.log" | tail -n 1)
ok "the P-256 client again under the default floor" tlskh client sign tls-sign --in "$T/msg" --out "$T/tls5.sig"
kh_stop
# A trust store that does not exist stops the start with a clear error.
sed -i "s|^client_truststore = .*|client_truststore = no-such-store|" "$T/keyhold.conf"
if "$KEYHOLDD" --config "$T/keyhold.conf" --foreground > "$T/nostore.log" 2>&1; then
  fail "keyholdd started with a missing client_truststore"
fi
grep -q "no-such-store" "$T/nostore.log" || { cat "$T/nostore.log" >&2; fail "the missing trust store is not named"; }
