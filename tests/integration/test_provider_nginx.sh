#!/usr/bin/env bash
# Unmodified nginx (Debian's 1.22) and curl with keyhold keys through the
# OpenSSL provider (docs/PROVIDER.md): nginx run as an unprivileged user
# with ssl_certificate_key a KEYHOLD KEY reference file, RSA and P-256, a
# certificate from a test CA and a trustpoint's exported chain; every
# handshake's signature a Sign in keyholdd's audit log under nginx's uid.
# nginx as a user without a grant fails the handshake with
# PERMISSION_DENIED in its error log and signs nothing; keyholdd restarted
# under a running nginx is reconnected to without restarting nginx; curl
# authenticates to s_server with a client key held by keyhold (a Sign by
# the test's uid).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"
. "$(dirname "$0")/lib_provider.sh"

command -v nginx > /dev/null || fail "no nginx (scripts/install-deps.sh installs it)"
command -v curl > /dev/null || fail "no curl (scripts/install-deps.sh installs it)"

# khngx runs nginx with grants; khngxno is a signer without any grant.
kh_sec_user khngx
NGX_UID=$SEC_UID
kh_sec_user khngxno
NOG_UID=$SEC_UID
id -nG khngxno | grep -qw khngx || kh_passwd usermod -a -G khngx khngxno || fail "cannot add khngxno to group khngx"
KH_SERVICE_EXTRA="socket_group = khngx" kh_config "signer = group:khngx"
kh_start

kh_provider_setup
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Every process started here, stopped by pid at exit.
PIDS=()
stop_pid() {
  local p=$1
  kill "$p" 2> /dev/null || true
  wait "$p" 2> /dev/null || true
}
stop_pids() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
}
kh_on_exit stop_pids

# sign_count KEY UID: Sign calls on KEY that succeeded for uid:UID.
sign_count() {
  kh --json audit show --limit 4096 | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for r in d["records"] if r["method"] == "Sign" and r["object"] == sys.argv[1]
          and r["principal"] == "uid:" + sys.argv[2] and r["result"] == "OK"))' "$1" "$2"
}
# A test CA made with stock openssl.
sslx req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=nginx test CA" \
  -keyout "$T/ca.key" -out "$T/ca.pem" 2> "$T/ca.err" || { cat "$T/ca.err" >&2; fail "test CA"; }

for spec in web-rsa:rsa2048 web-p256:p256; do
  k=${spec%%:*}
  ok "generate $k" kh key generate "$k" --type "${spec#*:}"
  ok "grant $k to khngx" kh policy grant "$k" user:khngx
  ok "reference $k" kh key show "$k" --reference
  cp "$T/ok.out" "$T/$k.keyref"
  ok "req $k" kp openssl req -new -key "keyhold:key=$k" -subj "/CN=$k.test" -out "$T/$k.csr"
  ok "issue $k" sslx x509 -req -in "$T/$k.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n') -out "$T/$k.crt"
done
chmod 644 "$T"/*.keyref "$T"/*.crt "$T/ca.pem"

# ---- nginx ----
# nginx_start NAME USER KEY CERT: nginx as USER in $T/NAME (pid, logs and
# every temp path there), one process, in the foreground; sets NGX_PORT and
# NGX_PID and waits until it listens (or fails if it exits).
nginx_start() {
  local name=$1 user=$2 key=$3 cert=$4 d="$T/$1"
  NGX_PORT=$(free_port)
  mkdir -p "$d/html" "$d/logs"
  echo "hello from $name" > "$d/html/index.html"
  cat > "$d/nginx.conf" <<EOF
daemon off;
master_process off;
pid $d/nginx.pid;
error_log $d/logs/error.log info;
env OPENSSL_CONF;
env OPENSSL_MODULES;
events { worker_connections 64; }
http {
  access_log $d/logs/access.log;
  client_body_temp_path $d/client_body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  server {
    listen 127.0.0.1:$NGX_PORT ssl;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_session_tickets off;
    ssl_session_cache off;
    location / { root $d/html; }
  }
}
EOF
  chown -R "$user" "$d"
  # setpriv itself (not the as_user function, which would run in a
  # subshell): $! is then nginx's own pid.
  setpriv --reuid="$user" --regid="$user" --init-groups -- env "${KP_ENV[@]}" \
    nginx -e "$d/logs/early.log" -c "$d/nginx.conf" -p "$d" > "$d/logs/stdout.log" 2>&1 &
  NGX_PID=$!
  PIDS+=("$NGX_PID")
  for _ in $(seq 1 100); do
    if (echo > "/dev/tcp/127.0.0.1/$NGX_PORT") 2> /dev/null; then return 0; fi
    if ! kill -0 "$NGX_PID" 2> /dev/null; then
      cat "$d"/logs/*.log >&2
      fail "nginx $name exited at start"
    fi
    sleep 0.1
  done
  cat "$d"/logs/*.log >&2
  fail "nginx $name does not listen"
}
nginx_stop() { stop_pid "$NGX_PID"; }

# fetch NAME CA: curl fetches nginx NAME's page over TLS, verifying it with CA.
fetch() {
  ok "fetch from $1" curl -sS --fail --max-time 10 --cacert "$2" "https://127.0.0.1:$NGX_PORT/"
  grep -qx "hello from $1" "$T/ok.out" || { cat "$T/ok.out" >&2; fail "$1: not nginx's page"; }
}

for k in web-rsa web-p256; do
  nginx_start "ngx-$k" khngx "$T/$k.keyref" "$T/$k.crt"
  n0=$(sign_count "$k" "$NGX_UID")
  fetch "ngx-$k" "$T/ca.pem"
  ok "TLS 1.2 from $k" curl -sS --fail --max-time 10 --tlsv1.2 --tls-max 1.2 --cacert "$T/ca.pem" \
    "https://127.0.0.1:$NGX_PORT/"
  n1=$(sign_count "$k" "$NGX_UID")
  [ "$n1" -ge $((n0 + 2)) ] || fail "$k: $((n1 - n0)) Sign call(s) by uid:$NGX_UID for two handshakes"
  log "$k: two handshakes, $((n1 - n0)) Sign calls by nginx's uid:$NGX_UID"
  nginx_stop
done

# A trustpoint's self-signed certificate, exported as a chain.
ok "trustpoint" kh trustpoint create web-tp --generate p256 --subject "CN=web-tp.test" --san "IP:127.0.0.1" --days 2
ok "enroll" kh trustpoint enroll web-tp --out "$T/web-tp.enrolled.pem"
ok "export chain" kh trustpoint export web-tp --chain --out "$T/web-tp.chain.pem"
ok "grant web-tp" kh policy grant web-tp user:khngx
ok "reference web-tp" kh key show web-tp --reference
cp "$T/ok.out" "$T/web-tp.keyref"
chmod 644 "$T/web-tp.keyref" "$T/web-tp.chain.pem"
nginx_start ngx-tp khngx "$T/web-tp.keyref" "$T/web-tp.chain.pem"
n0=$(sign_count web-tp "$NGX_UID")
fetch ngx-tp "$T/web-tp.chain.pem"
[ "$(sign_count web-tp "$NGX_UID")" -gt "$n0" ] || fail "web-tp: no Sign by nginx"

# keyholdd restarted under the running nginx: requests fail while it is
# down and succeed after it returns, nginx untouched.
kh_stop
rc=0
curl -sS --fail --max-time 10 --cacert "$T/web-tp.chain.pem" "https://127.0.0.1:$NGX_PORT/" \
  > /dev/null 2> "$T/down.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a handshake succeeded while keyholdd was down"
kill -0 "$NGX_PID" 2> /dev/null || fail "nginx died while keyholdd was down"
grep -q UNAVAILABLE "$T/ngx-tp/logs/error.log" || { cat "$T/ngx-tp/logs/error.log" >&2; fail "nginx's log does not say UNAVAILABLE"; }
kh_start
fetch ngx-tp "$T/web-tp.chain.pem"
nginx_stop

# ---- a principal without a grant ----
nginx_start ngx-nogrant khngxno "$T/web-p256.keyref" "$T/web-p256.crt"
n0=$(sign_count web-p256 "$NOG_UID")
rc=0
curl -sS --fail --max-time 10 --cacert "$T/ca.pem" "https://127.0.0.1:$NGX_PORT/" > /dev/null 2> "$T/nog.err" || rc=$?
[ "$rc" -ne 0 ] || fail "nginx without a grant completed a handshake"
grep -q PERMISSION_DENIED "$T/ngx-nogrant/logs/error.log" \
  || { cat "$T/ngx-nogrant/logs/error.log" >&2; fail "nginx's error log does not name PERMISSION_DENIED"; }
grep -q "no grant for key 'web-p256'" "$T/ngx-nogrant/logs/error.log" || fail "keyholdd's message is not in nginx's log"
[ "$(sign_count web-p256 "$NOG_UID")" = "$n0" ] || fail "something was signed for the user without a grant"
nginx_stop
ok "keyholdd still serves" kh status
nginx_start ngx-after khngx "$T/web-p256.keyref" "$T/web-p256.crt"
fetch ngx-after "$T/ca.pem"
nginx_stop

# ---- curl authenticating with a keyhold client key ----
# Stock s_server with a software key asks for a client certificate from the
# test CA; curl loads its key from the reference file (SSL_CTX_use_PrivateKey_file).
sslx req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=s_server -keyout "$T/srv.key" \
  -out "$T/srv.csr" 2> /dev/null || fail "s_server key"
sslx x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
  -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') -out "$T/srv.crt" 2> /dev/null || fail "s_server certificate"
for k in web-rsa web-p256; do
  port=$(free_port)
  sslx s_server -accept "127.0.0.1:$port" -cert "$T/srv.crt" -key "$T/srv.key" -Verify 1 -CAfile "$T/ca.pem" \
    -verify_return_error -www -naccept 2 < /dev/null > "$T/s_server.log" 2>&1 &
  srv=$!
  PIDS+=("$srv")
  for _ in $(seq 1 100); do
    if (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then break; fi
    kill -0 "$srv" 2> /dev/null || { cat "$T/s_server.log" >&2; fail "s_server exited"; }
    sleep 0.1
  done
  n0=$(sign_count "$k" 0)
  # In a sanitizer build too: lib_provider.sh's KP_ENV keeps curl from
  # hanging with libasan preloaded.
  ok "curl --key $k.keyref" kp curl -sS --fail --max-time 10 --cacert "$T/ca.pem" --cert "$T/$k.crt" \
    --key "$T/$k.keyref" "https://127.0.0.1:$port/"
  grep -q "CN = $k.test\|CN=$k.test" "$T/s_server.log" "$T/ok.out" \
    || { cat "$T/s_server.log" "$T/ok.out" >&2; fail "s_server did not see the client certificate of $k"; }
  [ "$(sign_count "$k" 0)" -gt "$n0" ] || fail "$k: curl's handshake made no Sign in keyholdd"
  stop_pid "$srv"
done

log "ok"
