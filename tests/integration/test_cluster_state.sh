#!/usr/bin/env bash
# Three keyholdd nodes as one service (issue 20, docs/CLUSTER.md): one
# PostgreSQL state database of the test's own (lib_pg.sh) and one SoftHSM2
# token behind p11-kit server, each node loading p11-kit-client.so. A key
# generated on node 1 signs on node 3, and once deleted on node 3 is gone
# on node 1; a trustpoint enrolled on node 2 is exported from node 1; a
# grant made on node 1 lets a signer sign on node 2, and once revoked on
# node 1 the very next request on node 2 is refused;
# the node holding the expiry role is killed (SIGKILL, at a crash point)
# in the middle of a renewal it claimed: while its lease and heartbeat are
# fresh no other node renews, and once they ran out (keyholdd's test clock
# moves instead of waiting) the two nodes left, asked at the same moment,
# renew the certificate exactly once. Every signature and
# certificate is checked with openssl.
. "$(dirname "$0")/lib.sh"
declare -F kh_pg_start > /dev/null || . "$(dirname "$0")/lib_pg.sh"
. "$(dirname "$0")/lib_security.sh"
. "$(dirname "$0")/revocation_lib.sh"

DAY=86400
kh_sec_user khclust
kh_pg_start
declare -A NODE_PID
P11_CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
[ -f "$P11_CLIENT" ] || fail "no $P11_CLIENT (Debian's p11-kit-modules)"
[ "$KH_TOKEN" = softhsm ] || fail "this test puts p11-kit server in front of a SoftHSM2 token (ONE_TOKEN)"
p11-kit server -f --provider "$TOKEN_MODULE" -n "$T/p11.sock" "$TOKEN_URI" > "$T/p11-kit.log" 2>&1 &
P11_SERVER_PID=$!
for _ in $(seq 1 100); do [ -S "$T/p11.sock" ] && break; sleep 0.05; done
[ -S "$T/p11.sock" ] || fail "p11-kit server did not listen: $(cat "$T/p11-kit.log")"
export P11_KIT_SERVER_ADDRESS="unix:path=$T/p11.sock"

node_conf() {
  local i=$1
  mkdir -p "$T/s$i"
  chmod 700 "$T/s$i"
  cat > "$T/n$i.conf" <<EOF
[service]
socket = $T/n$i.sock
socket_group = khclust
state_dir = $T/s$i
workers = 2
log_level = debug
[token]
module = $P11_CLIENT
uri = $TOKEN_URI
pin_file = $TOKEN_PIN_FILE
sessions = 4
[access]
admin = uid:$(id -u)
signer = uid:$SEC_UID
[expiry]
check_interval = 7d
[cluster]
node = n$i
lease_ttl = 30s
$(kh_pg_state_ini)
EOF
}

# n I ARGS...: the CLI on node I.
n() { local i=$1; shift; "$KH_CLI" --socket "$T/n$i.sock" "$@"; }

node_start() {
  local i=$1
  "$KEYHOLDD" --config "$T/n$i.conf" --foreground >> "$T/n$i.log" 2>&1 &
  NODE_PID[$i]=$!
  for _ in $(seq 1 200); do
    if [ -S "$T/n$i.sock" ] && [ -n "$(n "$i" health 2> /dev/null)" ]; then return 0; fi
    kill -0 "${NODE_PID[$i]}" 2> /dev/null || { tail -n 30 "$T/n$i.log" >&2; fail "node $i exited during start-up"; }
    sleep 0.05
  done
  fail "node $i did not answer within 10 s"
}

# The nodes this test started, exactly those pids, before lib.sh's cleanup.
nodes_kill() {
  local i
  for i in "${!NODE_PID[@]}"; do
    kill -KILL "${NODE_PID[$i]}" 2> /dev/null || true
    wait "${NODE_PID[$i]}" 2> /dev/null || true
  done
  kill "$P11_SERVER_PID" 2> /dev/null || true
  wait "$P11_SERVER_PID" 2> /dev/null || true
}
kh_on_exit nodes_kill

for i in 1 2 3; do node_conf "$i"; done
# Node 1 starts first (it takes the roles) and dies at its crash point
# (KEYHOLD_TESTING builds) when it next commits an enrollment.
KEYHOLD_TEST_CRASH_AT=enroll.before_commit node_start 1
node_start 2
node_start 3
kh_has_type() { n 1 --json capabilities | python3 -c 'import json,sys; sys.exit(0 if any(x["type"]==sys.argv[1] and x["available"] for x in json.load(sys.stdin)["key_types"]) else 1)' "$1"; }
kh_has_type p256 || fail "the test needs p256 keys"

# Every node sees the other two, and one of them holds each role.
ok "status on node 3" n 3 --json status
[ "$(json_get 'sorted(x["name"] for x in d["cluster"]["nodes"])' < "$T/ok.out")" = "['n1', 'n2', 'n3']" ] \
  || { cat "$T/ok.out"; fail "node 3 does not see three nodes"; }

# ---- a key generated on node 1 signs on node 3, deleted on node 3 ----
printf 'one token, three nodes\n' > "$T/k.msg"
ok "key on node 1" n 1 key generate k13 --type p256
ok "its public key from node 3" n 3 key show k13 --pem
cp "$T/ok.out" "$T/k13.pub"
ok "node 3 signs with node 1's key" n 3 sign k13 --in "$T/k.msg" --out "$T/k13.sig"
openssl dgst -sha256 -verify "$T/k13.pub" -signature "$T/k13.sig" "$T/k.msg" > /dev/null \
  || fail "node 3's signature with node 1's key does not verify"
ok "node 1 signs too" n 1 sign k13 --in "$T/k.msg" --out "$T/k13.sig1"
ok "delete on node 3" n 3 key delete k13 --force
expect_err NOT_FOUND "node 1 signs with a key node 3 deleted" n 1 sign k13 --in "$T/k.msg" --out "$T/k13.sig2"

# ---- a trustpoint enrolled on node 2, exported from node 1 ----
ok "create on node 2" n 2 trustpoint create web --generate p256 --subject "CN=web.example.com" --days 10 --renew-at 50
ok "enroll on node 2" n 2 trustpoint enroll web --out "$T/web-n2.pem"
ok "export from node 1" n 1 trustpoint export web --out "$T/web-n1.pem"
cmp -s "$T/web-n2.pem" "$T/web-n1.pem" || fail "node 1 exports another certificate than node 2 enrolled"
openssl verify -CAfile "$T/web-n1.pem" "$T/web-n1.pem" > /dev/null || fail "the exported certificate does not verify"

# ---- a grant revoked on node 1 is refused on node 2 at once ----
mkdir -p "$T/u"
printf 'cluster grant\n' > "$T/u/m"
chown khclust "$T/u"
chmod 644 "$T/u/m"
ok "key on node 2" n 2 key generate gk --type p256
ok "public key" n 2 key show gk --pem
cp "$T/ok.out" "$T/gk.pub"
sign2() { as_user khclust "$KH_CLI" --socket "$T/n2.sock" sign gk --in "$T/u/m" --out "$T/u/m.sig"; }
expect_err PERMISSION_DENIED "node 2 before any grant" sign2
ok "grant on node 1" n 1 policy grant gk "uid:$SEC_UID"
ok "node 2 signs with node 1's grant" sign2
openssl dgst -sha256 -verify "$T/gk.pub" -signature "$T/u/m.sig" "$T/u/m" > /dev/null || fail "node 2's signature does not verify"
ok "revoke on node 1" n 1 policy revoke gk "uid:$SEC_UID"
expect_err PERMISSION_DENIED "node 2 right after the revocation on node 1" sign2

# ---- the expiry role's node dies in the middle of a renewal ----
# Node 1 (started first, with a crash point) holds the expiry role; past
# 50% of the certificate's 10 days its monitor claims the renewal and is
# killed (SIGKILL) before the new certificate is committed.
holder() { n "$1" --json status | json_get "[r['holder'] for r in d['cluster']['roles'] if r['role'] == 'expiry'][0]"; }
[ "$(holder 2)" = n1 ] || fail "node 1 does not hold the expiry role"
rev_clock $((6 * DAY))
if n 1 cert monitor > /dev/null 2>&1; then fail "node 1 survived its crash point"; fi
wait "${NODE_PID[1]}" 2> /dev/null || true
unset "NODE_PID[1]"
grep -q "KEYHOLD_TEST_CRASH_AT=enroll.before_commit" "$T/n1.log" || fail "node 1 did not die at its crash point"
[ "$(kh_pg_psql -c "SELECT node FROM cluster_claims WHERE what = 'renew:web'")" = n1 ] || fail "node 1 had not claimed the renewal"
# While node 1's lease and heartbeat are fresh, nobody else renews.
ok "monitor on node 2 at once" n 2 --json cert monitor
grep -q "web: renewal left to the node holding the expiry role" "$T/ok.out" || { cat "$T/ok.out"; fail "node 2 did not leave it"; }
ok "export" n 3 trustpoint export web --out "$T/web-mid.pem"
cmp -s "$T/web-n1.pem" "$T/web-mid.pem" || fail "renewed while the dead node's lease was fresh"
# Past node 1's lease: nodes 2 and 3, asked at the same moment, renew once.
rev_clock $((6 * DAY + 120))
left=(2 3)
n 2 --json cert monitor > "$T/mon0.json" &
p0=$!
n 3 --json cert monitor > "$T/mon1.json" &
p1=$!
wait "$p0" || fail "the monitor on node 2 failed"
wait "$p1" || fail "the monitor on node 3 failed"
renewed=$(cat "$T/mon0.json" "$T/mon1.json" | python3 -c 'import json,sys
n=0
for line in sys.stdin:
    n += sum(1 for r in json.loads(line)["renewals"] if r.startswith("web: renewed"))
print(n)')
[ "$renewed" = 1 ] || { cat "$T/mon0.json" "$T/mon1.json"; fail "the certificate was renewed $renewed times"; }
[ "$(cat "$T"/n*.log | grep -c "trustpoint 'web': renewed at 50%")" = 1 ] || fail "the logs do not show one renewal"
ok "export the renewed certificate" n 2 trustpoint export web --out "$T/web-new.pem"
openssl x509 -in "$T/web-new.pem" -noout -serial > "$T/s.new"
openssl x509 -in "$T/web-n1.pem" -noout -serial > "$T/s.old"
cmp -s "$T/s.new" "$T/s.old" && fail "the certificate was not re-issued"
openssl verify -attime $(($(date +%s) + 6 * DAY + 180)) -CAfile "$T/web-new.pem" "$T/web-new.pem" > /dev/null \
  || fail "the renewed certificate does not verify"
# A later pass on either node does not renew it again.
for i in "${left[@]}"; do
  ok "monitor again on node $i" n "$i" --json cert monitor
  [ "$(json_get 'len([r for r in d["renewals"] if r.startswith("web: renewed")])' < "$T/ok.out")" = 0 ] \
    || { cat "$T/ok.out"; fail "node $i renewed a second time"; }
done
ok "status after the death" n 2 --json status
[ "$(json_get "[x['alive'] for x in d['cluster']['nodes'] if x['name'] == 'n1'][0]" < "$T/ok.out")" = false ] \
  || fail "the killed node is still alive in the status"
# The nodes share the default audit key and the token: each keeps its own
# anchor (keyhold-audit-anchor-nI), so a node restarted finds its own.
# A clean stop writes a final checkpoint: nodes 2 and 3 then have one each.
for i in 2 3; do
  kill -TERM "${NODE_PID[$i]}"
  wait "${NODE_PID[$i]}" || fail "node $i did not stop cleanly"
  unset "NODE_PID[$i]"
  node_start "$i"
  grep -q "audit anchors differ\|before checkpoint" "$T/n$i.log" && fail "node $i took another node's audit anchor"
done
# A fourth node with another audit key is refused: the cluster signs its
# checkpoints with one key, which every node keeps from any request.
node_conf 4
printf '[audit]\nkey = other-audit\n' >> "$T/n4.conf"
if "$KEYHOLDD" --config "$T/n4.conf" --foreground >> "$T/n4.log" 2>&1; then fail "node 4 started with another audit key"; fi
grep -q "\[audit\] key 'other-audit' is not the cluster's: node 'n[123]' (up) signs its checkpoints with 'keyhold-audit'" \
  "$T/n4.log" || { tail -5 "$T/n4.log" >&2; fail "node 4's refusal does not say why"; }
ok "audit verify on node 3" n 3 --json audit verify
[ "$(json_get 'd["ok"]' < "$T/ok.out")" = true ] || { cat "$T/ok.out"; fail "node 3's own log does not verify"; }
ok "audit verify --cluster" n 2 --json audit verify --cluster
cp "$T/ok.out" "$T/vc.json"
[ "$(json_get 'd["cluster_ok"]' < "$T/vc.json")" = true ] || { cat "$T/vc.json"; fail "the cluster's checkpoints do not verify"; }
[ "$(json_get 'sorted(x["node"] for x in d["nodes"] if x["checkpoints"] > 0)' < "$T/vc.json")" = "['n2', 'n3']" ] \
  || { cat "$T/vc.json"; fail "not every node's checkpoints are recorded"; }
log "PASS"
