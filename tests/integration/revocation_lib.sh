# shellcheck shell=bash
# revocation_lib.sh: helpers for the revocation, expiry and renewal tests,
# sourced after lib.sh: loopback HTTP servers (rev_server.py) that publish
# CRLs and answer OCSP with `openssl ocsp`, started and killed by pid, and
# `openssl ca` authorities whose certificates name those servers in their
# CRL distribution points and AIA (RFC 5280 §4.2.1.13, §4.2.2.1).

CRL_PID=""
CRL_PORT=0
OCSP_PID=""
OCSP_PORT=0
REV_WWW="$T/www"      # what the CRL server publishes
REV_CAS="$T/ca"       # the CAs; the OCSP server answers for $REV_CAS/NAME
mkdir -p "$REV_WWW" "$REV_CAS"

# rev_up crl|ocsp: starts that server (on its earlier port once it had one).
rev_up() {
  local kind=$1 dir port pid pf="$T/$1.port"
  if [ "$kind" = crl ]; then dir=$REV_WWW; port=$CRL_PORT; else dir=$REV_CAS; port=$OCSP_PORT; fi
  rm -f "$pf"
  python3 "$KH_SRC/tests/integration/rev_server.py" --dir "$dir" --port "$port" --port-file "$pf" \
    --log "$T/$kind.log" 2>> "$T/$kind.err" &
  pid=$!
  for _ in $(seq 1 200); do
    [ -s "$pf" ] && break
    kill -0 "$pid" 2> /dev/null || fail "the $kind server did not start: $(cat "$T/$kind.err")"
    sleep 0.05
  done
  [ -s "$pf" ] || fail "the $kind server did not start within 10 s"
  if [ "$kind" = crl ]; then CRL_PID=$pid; CRL_PORT=$(cat "$pf"); else OCSP_PID=$pid; OCSP_PORT=$(cat "$pf"); fi
}

# rev_down crl|ocsp: stops that server (by its pid).
rev_down() {
  local pid
  if [ "$1" = crl ]; then pid=$CRL_PID; CRL_PID=""; else pid=$OCSP_PID; OCSP_PID=""; fi
  [ -n "$pid" ] || return 0
  kill "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
}

rev_stop() {
  rev_down crl
  rev_down ocsp
}
kh_on_exit rev_stop

# rev_gets PATH: how many GETs of PATH the CRL server answered.
rev_gets() { grep -c "^GET $1 " "$T/crl.log" 2> /dev/null || true; }
# rev_posts: how many OCSP requests the OCSP server received.
rev_posts() { grep -c "^POST " "$T/ocsp.log" 2> /dev/null || true; }

# rev_ca NAME CN [PARENT]: an `openssl ca` CA in $REV_CAS/NAME (ca.key,
# ca.pem, index.txt) whose leaves name http://127.0.0.1:CRL_PORT/NAME.crl
# and http://127.0.0.1:OCSP_PORT/ocsp/NAME; self-signed, or a sub CA of
# PARENT (then its own certificate names PARENT's CRL). It gets a
# delegated OCSP responder certificate (ocsp.pem, id-kp-OCSPSigning).
# Both servers must be up (their ports go into the certificates).
rev_ca() {
  local name=$1 cn=$2 parent=${3:-} d="$REV_CAS/$1"
  mkdir -p "$d/newcerts"
  : > "$d/index.txt"
  echo 1000 > "$d/serial"
  echo 1000 > "$d/crlnumber"
  cat > "$d/ca.cnf" <<EOF
[ca]
default_ca = CA_default
[CA_default]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
default_days = 365
default_crl_days = 7
policy = policy_any
preserve = yes
copy_extensions = copy
unique_subject = no
x509_extensions = leaf_ext
[policy_any]
commonName = supplied
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://127.0.0.1:$CRL_PORT/$name.crl
authorityInfoAccess = OCSP;URI:http://127.0.0.1:$OCSP_PORT/ocsp/$name
[bare_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://127.0.0.1:$CRL_PORT/$name.crl
[root_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ocsp_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[no_eku_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[req]
distinguished_name = dn
[dn]
EOF
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" 2> /dev/null || fail "CA key"
  if [ -z "$parent" ]; then
    openssl req -x509 -new -key "$d/ca.key" -subj "/CN=$cn" -days 3650 -config "$d/ca.cnf" -extensions root_ext \
      -out "$d/ca.pem" 2> "$d/err" || { cat "$d/err" >&2; fail "cannot make CA $cn"; }
  else
    openssl req -new -key "$d/ca.key" -subj "/CN=$cn" -config "$d/ca.cnf" -out "$d/ca.csr" 2> "$d/err" \
      || { cat "$d/err" >&2; fail "cannot make the CSR of CA $cn"; }
    openssl ca -batch -config "$REV_CAS/$parent/ca.cnf" -extensions ca_ext -days 3000 -in "$d/ca.csr" \
      -out "$d/ca.pem" -notext 2> "$d/err" || { cat "$d/err" >&2; fail "cannot sign CA $cn"; }
  fi
  rev_leaf "$name" "$cn OCSP Responder" "$d/ocsp" -extensions ocsp_ext
}

# rev_leaf CA CN OUT_PREFIX [openssl ca options...]: a software key
# OUT.key and its certificate OUT.pem from CA (leaf_ext by default).
rev_leaf() {
  local name=$1 cn=$2 out=$3 d="$REV_CAS/$1"
  shift 3
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.key" 2> /dev/null || fail "leaf key"
  openssl req -new -key "$out.key" -subj "/CN=$cn" -config "$d/ca.cnf" -out "$out.csr" 2> /dev/null \
    || fail "cannot make a CSR for $cn"
  openssl ca -batch -config "$d/ca.cnf" -in "$out.csr" -out "$out.pem" -notext "$@" 2> "$d/err" \
    || { cat "$d/err" >&2; fail "openssl ca cannot sign $cn"; }
}

# rev_revoke CA CERT [REASON]: revokes CERT in CA's database (keyCompromise).
rev_revoke() {
  openssl ca -batch -config "$REV_CAS/$1/ca.cnf" -revoke "$2" -crl_reason "${3:-keyCompromise}" 2> /dev/null \
    || fail "openssl ca -revoke $2 failed"
}

# rev_gencrl CA [openssl ca options...]: publishes CA's CRL (DER, as
# RFC 5280 §4.2.1.13 has it served) as $REV_WWW/CA.crl.
rev_gencrl() {
  local name=$1
  shift
  openssl ca -batch -config "$REV_CAS/$name/ca.cnf" -gencrl -out "$T/$name.crl.pem" "$@" 2> "$T/gencrl.err" \
    || { cat "$T/gencrl.err" >&2; fail "openssl ca -gencrl ($name) failed"; }
  openssl crl -in "$T/$name.crl.pem" -outform DER -out "$REV_WWW/$name.crl.tmp" || fail "CRL to DER"
  mv "$REV_WWW/$name.crl.tmp" "$REV_WWW/$name.crl"
}

# rev_clock SECONDS: keyholdd's clock runs SECONDS ahead of the real one
# (KEYHOLD_TESTING builds read $KEYHOLD_TEST_CLOCK on every look).
export KEYHOLD_TEST_CLOCK="$T/clock"
echo 0 > "$KEYHOLD_TEST_CLOCK"
rev_clock() { echo "$1" > "$KEYHOLD_TEST_CLOCK"; }
# rev_asn1_time SECONDS_FROM_NOW: YYYYMMDDHHMMSSZ for openssl ca.
rev_asn1_time() { date -u -d "@$(($(date +%s) + $1))" +%Y%m%d%H%M%SZ; }

# rev_json_status: "status" of a `cert check --json` document on stdin.
rev_status() { json_get 'd["status"]'; }
