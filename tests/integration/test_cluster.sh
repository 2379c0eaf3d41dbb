#!/usr/bin/env bash
# Cluster behaviour on one node (docs/CLUSTER.md): with the SQLite backend
# the cluster is this node, so the mechanics are driven through its state
# database: another node's rows are written with sqlite3 and keyholdd's
# clock is moved (KEYHOLD_TESTING's test clock) instead of waiting. Checks:
# the node's row and every scheduled role's lease in `status` (text and
# JSON); a role held by a live other node is left alone, and taken at the
# next look once that lease expired; a renewal another live node claimed
# is not done, and once that node is dead it is done exactly once; a clean
# stop gives the roles up; runtime grants live in the database, survive a
# restart, and an older key-grants file is imported once; every audit
# checkpoint is recorded and `audit verify --cluster` verifies them and
# reports a deleted one as a gap and a forged one as a bad signature.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/revocation_lib.sh"

DAY=86400
# The revocation scheduler looks every 100 ms, so a free role is taken
# within a tick; the expiry monitor's passes are run with `cert monitor`.
export KEYHOLD_TEST_REV_TICK_MS=100
kh_config "[expiry]
check_interval = 7d
[audit]
checkpoint_records = 3
[cluster]
node = n1
lease_ttl = 30s"
kh_start
kh_has_type p256 || fail "the trustpoint needs a p256 key"
DB="$T/state/keyhold.db"
# The state database, whichever the backend (the pg. variants set KH_STATE).
sql() {
  if [ "${KH_STATE:-sqlite}" = postgresql ]; then kh_pg_psql -c "$1"; else sqlite3 -cmd ".timeout 5000" "$DB" "$1"; fi
}
now() { date +%s; }
st() { kh --json status > "$T/st.json" || true; json_get "$1" < "$T/st.json"; }
holder() { st "[r['holder'] for r in d['cluster']['roles'] if r['role'] == '$1'][0]"; }
# wait_for DESC CMD...: CMD succeeds within 10 s (keyholdd's own timers).
wait_for() {
  local desc=$1; shift
  for _ in $(seq 1 200); do
    if "$@"; then return 0; fi
    sleep 0.05
  done
  fail "$desc"
}
held_by() { [ "$(holder "$1")" = "$2" ]; }

# ---- the node and its roles ----
for role in expiry revocation scep-poll; do wait_for "n1 never took the $role role" held_by "$role" n1; done
[ "$(st 'd["cluster"]["node"]')" = n1 ] || fail "status does not name this node"
[ "$(st 'len(d["cluster"]["nodes"])')" = 1 ] || fail "not one node"
[ "$(st 'd["cluster"]["nodes"][0]["state"]')" = up ] || fail "n1 is not up"
[ "$(st 'd["cluster"]["nodes"][0]["alive"]')" = true ] || fail "n1 is not alive"
ok "status" kh status
grep -q "^cluster: this node is n1; 1 node(s), leases of 30 s" "$T/ok.out" || { cat "$T/ok.out"; fail "status text: cluster"; }
grep -Eq "^  role expiry +held by n1 since" "$T/ok.out" || { cat "$T/ok.out"; fail "status text: role"; }
grep -Eq "^  node n1 +up +alive" "$T/ok.out" || { cat "$T/ok.out"; fail "status text: node"; }

# ---- a role another live node holds ----
ok "create a renewing trustpoint" kh trustpoint create same --generate p256 --subject "CN=same.example.com" \
  --days 10 --renew-at 50
ok "enroll" kh trustpoint enroll same --out "$T/same0.pem"
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
T0=$(now)
sql "INSERT INTO cluster_nodes (name, started, heartbeat, version, state) VALUES ('n2', $T0, $((T0 + 7 * DAY)), 'test', 'up');
     UPDATE cluster_leases SET holder = 'n2', expires = $((T0 + 7 * DAY)) WHERE role IN ('expiry', 'revocation', 'scep-poll');"
rev_clock $((6 * DAY))
ok "monitor while n2 holds the role" kh --json cert monitor
grep -q "same: renewal left to the node holding the expiry role" "$T/ok.out" || { cat "$T/ok.out"; fail "renewed without the role"; }
grep -q "SCEP polling and renewal left to the node holding the scep-poll role" "$T/ok.out" \
  || { cat "$T/ok.out"; fail "SCEP polling without the role"; }
ok "export" kh trustpoint export same --out "$T/same1.pem"
cmp -s "$T/same0.pem" "$T/same1.pem" || fail "the certificate changed while another node held the role"
[ "$(holder expiry)" = n2 ] && [ "$(holder revocation)" = n2 ] || fail "status does not show n2's roles"
wait_for "n1 did not log that it skips the revocation role" \
  grep -q "the revocation role is held by another node; node 'n1' skips its passes" "$T/keyholdd.log"

# ---- the lease runs out: the next look takes the role ----
rev_clock $((7 * DAY + 60))
wait_for "n1 did not take the revocation role after n2's lease expired" held_by revocation n1
[ "$(st "[n['alive'] for n in d['cluster']['nodes'] if n['name'] == 'n2'][0]")" = false ] \
  || fail "n2 is alive without a heartbeat"
ok "status" kh status
grep -Eq "^  node n2 +up +NO HEARTBEAT" "$T/ok.out" || { cat "$T/ok.out"; fail "status text: dead node"; }

# ---- no renewal twice: a live node's claim is left alone ----
NA=$(sql "SELECT cert_not_after FROM trustpoints WHERE name = 'same'")
sql "UPDATE cluster_nodes SET heartbeat = $((T0 + 8 * DAY)) WHERE name = 'n2';
     INSERT INTO cluster_claims VALUES ('renew:same', '$NA', 'n2', $T0);"
ok "monitor with n2's claim" kh --json cert monitor
grep -q "same: renewal left to the node holding the expiry role (or already claimed by another node)" "$T/ok.out" \
  || { cat "$T/ok.out"; fail "a claimed renewal was not left alone"; }
[ "$(holder expiry)" = n1 ] || fail "the expired expiry lease was not taken by the monitor"
ok "export" kh trustpoint export same --out "$T/same2.pem"
cmp -s "$T/same0.pem" "$T/same2.pem" || fail "renewed although n2 claimed it"
# n2 dies: its claim passes to n1, which renews once.
sql "UPDATE cluster_nodes SET heartbeat = $T0 WHERE name = 'n2'"
ok "monitor after n2 died" kh --json cert monitor
grep -q "same: renewed" "$T/ok.out" || { cat "$T/ok.out"; fail "not renewed after the claimant died"; }
ok "export" kh trustpoint export same --out "$T/same3.pem"
[ "$(serial "$T/same3.pem")" != "$(serial "$T/same0.pem")" ] || fail "not re-issued"
openssl verify -attime $(($(now) + 7 * DAY + 120)) -CAfile "$T/same3.pem" "$T/same3.pem" > /dev/null \
  || fail "the renewed certificate does not verify"
[ "$(sql "SELECT node FROM cluster_claims WHERE what = 'renew:same' AND version = '$NA'")" = n1 ] \
  || fail "the claim is not n1's"
ok "monitor again" kh --json cert monitor
[ "$(json_get 'len([r for r in d["renewals"] if r.startswith("same:")])' < "$T/ok.out")" = 0 ] \
  || { cat "$T/ok.out"; fail "renewed a second time"; }
ok "export" kh trustpoint export same --out "$T/same4.pem"
cmp -s "$T/same3.pem" "$T/same4.pem" || fail "the certificate changed again"

# ---- runtime grants in the database ----
ok "key" kh key generate gk --type p256
ok "grant" kh policy grant gk uid:4242 --digests sha256
[ ! -e "$T/state/key-grants" ] || fail "a key-grants file was written"
[ "$(sql "SELECT principal || ' ' || digests FROM key_grants WHERE key_name = 'gk'")" = "uid:4242 2" ] \
  || fail "the grant is not in the database"

# ---- a clean stop gives the roles up ----
kh_stop
[ "$(sql "SELECT state FROM cluster_nodes WHERE name = 'n1'")" = stopping ] || fail "n1 is not stopping"
[ "$(sql "SELECT COUNT(*) FROM cluster_leases WHERE holder = 'n1'")" = 0 ] || fail "n1 kept leases after its stop"

# An older version's key-grants file: imported once, then renamed.
printf '# keyholdd runtime key grants\ngk uid:4343 sha384 *\n' > "$T/state/key-grants"
chmod 0600 "$T/state/key-grants"
kh_start
grep -q "key-grants imported into the state database and renamed key-grants.imported" "$T/keyholdd.log" \
  || fail "the import was not logged"
[ ! -e "$T/state/key-grants" ] && [ -f "$T/state/key-grants.imported" ] || fail "key-grants was not renamed"
ok "list" kh --json policy list gk
[ "$(json_get 'sorted(g["principal"] for g in d["grants"])' < "$T/ok.out")" = "['uid:4242', 'uid:4343']" ] \
  || { cat "$T/ok.out"; fail "the grants after the import and restart"; }
ok "revoke" kh policy revoke gk uid:4242
kh_restart
ok "list" kh --json policy list gk
[ "$(json_get '[g["principal"] for g in d["grants"]]' < "$T/ok.out")" = "['uid:4343']" ] \
  || { cat "$T/ok.out"; fail "the revocation did not survive a restart"; }

# ---- audit checkpoints in the database ----
for i in 1 2 3 4 5 6; do ok "list $i" kh key list; done
ok "verify --cluster" kh --json audit verify --cluster
cp "$T/ok.out" "$T/av.json"
[ "$(json_get 'd["cluster_ok"]' < "$T/av.json")" = true ] || { cat "$T/av.json"; fail "the cluster's checkpoints do not verify"; }
[ "$(json_get 'd["nodes"][0]["node"]' < "$T/av.json")" = n1 ] || fail "verify --cluster: node"
n=$(json_get 'd["nodes"][0]["checkpoints"]' < "$T/av.json")
[ "$n" -ge 4 ] || fail "only $n checkpoints recorded"
[ "$n" = "$(sql "SELECT COUNT(*) FROM audit_checkpoints WHERE node = 'n1'")" ] || fail "not every row was verified"
# The recorded checkpoints are the log's own lines.
last=$(json_get 'd["nodes"][0]["last_seq"]' < "$T/av.json")
ok "show" kh --json audit show --limit 100000
[ "$(json_get "[r['method'] for r in d['records'] if r['seq'] == $last][0]" < "$T/ok.out")" = Checkpoint ] \
  || fail "the last recorded checkpoint is not a checkpoint of the log"
ok "text" kh audit verify --cluster
grep -q "^node n1: intact: $n checkpoints recorded" "$T/ok.out" || { cat "$T/ok.out"; fail "verify --cluster text"; }
# Those the checkpoint thread signed (off the request path) name the record they sign.
[ "$(sql "SELECT COUNT(*) FROM audit_checkpoints WHERE node = 'n1' AND signed LIKE '% at=% athash=%'")" -ge 1 ] \
  || fail "no recorded checkpoint was signed by the checkpoint thread"

# A deleted row is a gap; the file's own chain is still intact.
gone=$(sql "SELECT seq FROM audit_checkpoints WHERE node = 'n1' ORDER BY seq LIMIT 1 OFFSET 1")
sql "DELETE FROM audit_checkpoints WHERE node = 'n1' AND seq = $gone"
expect_rc 1 "verify --cluster with a gap" kh --json audit verify --cluster
[ "$(json_get 'd["cluster_ok"]' < "$T/rc.out")" = false ] || fail "a gap went unnoticed"
json_get 'd["nodes"][0]["gaps"][0]' < "$T/rc.out" | grep -q "^after checkpoint [0-9]*, before checkpoint [0-9]*$" \
  || { cat "$T/rc.out"; fail "the gap is not reported"; }
json_get 'd["nodes"][0]["reason"]' < "$T/rc.out" | grep -q "names checkpoint $gone before it, which is not recorded" \
  || { cat "$T/rc.out"; fail "the gap's reason"; }
ok "the file chain" kh audit verify
# A forged signature.
sql "UPDATE audit_checkpoints SET sig = '00' || substr(sig, 3) WHERE node = 'n1' AND seq = $last"
expect_rc 1 "verify --cluster with a forged row" kh --json audit verify --cluster
[ "$(json_get 'd["nodes"][0]["bad_signatures"]' < "$T/rc.out")" = 1 ] || { cat "$T/rc.out"; fail "a forged row verified"; }
kh_stop
log "PASS"
