# shellcheck shell=bash
# pki_lib.sh: helpers for the PKI integration tests, sourced after lib.sh:
# OpenSSL certificate authorities (openssl req -x509 / openssl ca) that
# play the CA an administrator sends CSRs to, and small assertions.

# pki_ca_init DIR CN [PARENT_DIR]: an `openssl ca` CA in DIR with key
# ca.key and certificate ca.pem; self-signed, or signed by PARENT_DIR's CA.
pki_ca_init() {
  local d=$1 cn=$2 parent=${3:-}
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
default_crl_days = 30
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
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[req]
distinguished_name = dn
[dn]
EOF
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" 2> /dev/null \
    || fail "cannot make a CA key"
  if [ -z "$parent" ]; then
    openssl req -x509 -new -key "$d/ca.key" -subj "/CN=$cn" -days 3650 -config "$d/ca.cnf" \
      -extensions ca_ext -out "$d/ca.pem" 2> "$d/err" || { cat "$d/err" >&2; fail "cannot make CA $cn"; }
  else
    openssl req -new -key "$d/ca.key" -subj "/CN=$cn" -config "$d/ca.cnf" -out "$d/ca.csr" 2> "$d/err" \
      || { cat "$d/err" >&2; fail "cannot make the CSR of CA $cn"; }
    openssl ca -batch -config "$parent/ca.cnf" -extensions ca_ext -days 3000 -in "$d/ca.csr" -out "$d/ca.pem" \
      -notext 2> "$d/err" || { cat "$d/err" >&2; fail "cannot sign CA $cn"; }
  fi
}

# pki_ca_sign CA_DIR CSR OUT [openssl ca options...]: the CA signs a CSR.
pki_ca_sign() {
  local d=$1 csr=$2 out=$3
  shift 3
  openssl ca -batch -config "$d/ca.cnf" -in "$csr" -out "$out" -notext "$@" 2> "$d/err" \
    || { cat "$d/err" >&2; fail "openssl ca cannot sign $csr"; }
}

# pki_leaf CA_DIR CN OUT_PREFIX [openssl ca options...]: a leaf key
# (software, for trust store tests) and its certificate from the CA.
pki_leaf() {
  local d=$1 cn=$2 out=$3
  shift 3
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.key" 2> /dev/null
  openssl req -new -key "$out.key" -subj "/CN=$cn" -config "$d/ca.cnf" -out "$out.csr" 2> /dev/null \
    || fail "cannot make a CSR for $cn"
  pki_ca_sign "$d" "$out.csr" "$out.pem" "$@"
}

# pki_fp FILE: the SHA-256 fingerprint of a PEM certificate, lower-case hex.
pki_fp() {
  openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# pki_spki_eq CERT_OR_CSR_PEM PUBKEY_PEM: same public key?
pki_pub_of() {
  case "$(head -1 "$1")" in
  *REQUEST*) openssl req -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER ;;
  *) openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER ;;
  esac
}

# expect_stderr TEXT: the last expect_err/ok stderr contains TEXT.
expect_msg() {
  grep -qF -- "$1" "$T/err.err" || { cat "$T/err.err" >&2; fail "error message lacks '$1'"; }
}

# pki_req_verify CSR [openssl req options...]: `openssl req -verify`
# accepts the CSR. OpenSSL 3.0 exits 0 even when the signature fails, so
# its verdict line is what counts.
pki_req_verify() {
  local csr=$1 out
  shift
  out=$(openssl req -in "$csr" "$@" -verify -noout 2>&1) || return 1
  case "$out" in
  *"verify OK"*) return 0 ;;
  *) return 1 ;;
  esac
}
