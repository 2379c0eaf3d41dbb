#!/usr/bin/env bash
# test_cluster_failover.sh: three keyholdd nodes on one token (docs/CLUSTER.md);
# behind p11-kit server they are one cluster on a PostgreSQL state database
# of the test's own (lib_pg.sh).
# 1. Keys appearing and disappearing under a node, for both ways of sharing
#    a token: SoftHSM2's file store shared by the processes, and p11-kit
#    server in front of SoftHSM2 with p11-kit-client.so in each node.
# 2. Failover under load (p11-kit): 4 clients sign in a loop across the three
#    nodes (KEYHOLD_ENDPOINTS); two nodes are killed with SIGKILL one after the
#    other; no request is lost, every signature verifies, the failovers are
#    counted; the nodes restart, all three answer again and the cluster
#    converges (every node sees three live nodes, each role held by one).
# 3. A state change whose node dies with the request is reported, not sent
#    again; a read in the same spot moves to the next node.
# 4. The PKCS#11 module and the OpenSSL provider over KEYHOLD_ENDPOINTS with
#    the first node down.
# shellcheck shell=bash
. "$KH_SRC/tests/integration/lib.sh"
. "$KH_SRC/tests/integration/lib_pkcs11.sh"
. "$KH_SRC/tests/integration/lib_provider.sh"
declare -F kh_pg_start > /dev/null || . "$KH_SRC/tests/integration/lib_pg.sh"

[ "$KH_TOKEN" = softhsm ] || fail "this test shares a SoftHSM2 token (ONE_TOKEN)"
P11_CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
[ -f "$P11_CLIENT" ] || fail "no $P11_CLIENT (Debian's p11-kit-modules)"
command -v p11-kit > /dev/null || fail "no p11-kit (Debian's p11-kit)"

NODE_PID=("" "" "" "")
P11_SERVER_PID=""
MODE=""   # file | p11kit

cluster_stop() {
  local i
  for i in 1 2 3; do
    if [ -n "${NODE_PID[$i]}" ]; then
      kill -9 "${NODE_PID[$i]}" 2> /dev/null || true
      wait "${NODE_PID[$i]}" 2> /dev/null || true
    fi
  done
  if [ -n "$P11_SERVER_PID" ]; then
    kill "$P11_SERVER_PID" 2> /dev/null || true
    wait "$P11_SERVER_PID" 2> /dev/null || true
  fi
}
kh_on_exit cluster_stop

nsock() { echo "$T/n$1/keyhold.sock"; }
# nk I ARGS...: the CLI on node I.
nk() { local i=$1; shift; "$KH_CLI" --socket "$(nsock "$i")" "$@"; }

# node_config I: node I's own socket and state; the token and audit key by MODE.
node_config() {
  local i=$1 module=$TOKEN_MODULE
  [ "$MODE" = p11kit ] && module=$P11_CLIENT
  # A state directory per mode: the cluster's nodes start afresh (their
  # audit logs are signed with the cluster's key from the first record).
  mkdir -p "$T/n$i/state-$MODE"
  {
    printf '[service]\nsocket = %s\nstate_dir = %s/n%s/state-%s\nworkers = 2\nlog_level = debug\n' "$(nsock "$i")" "$T" "$i" "$MODE"
    printf '[token]\nmodule = %s\nuri = %s\npin_file = %s\nsessions = 4\n' "$module" "$TOKEN_URI" "$TOKEN_PIN_FILE"
    printf '[access]\nadmin = uid:%s\n' "$(id -u)"
    # Separate nodes on one token keep their anchors apart by audit key;
    # a cluster's nodes share one (and keep an anchor per node).
    [ "$MODE" = p11kit ] || printf '[audit]\nkey = keyhold-audit-n%s\n' "$i"
    # p11kit: a cluster (one state database); file: three separate
    # nodes, each with its own SQLite state, so no notification tells
    # them about keys made or deleted by another.
    if [ "$MODE" = p11kit ]; then
      printf '[cluster]\nnode = n%s\n' "$i"
      kh_pg_state_ini
    fi
  } > "$T/n$i/keyhold.conf"
}

node_start() {
  local i=$1 _
  if [ "$MODE" = p11kit ]; then
    P11_KIT_SERVER_ADDRESS="unix:path=$T/p11.sock" "$KEYHOLDD" --config "$T/n$i/keyhold.conf" --foreground \
      >> "$T/n$i/keyholdd.log" 2>&1 &
  else
    "$KEYHOLDD" --config "$T/n$i/keyhold.conf" --foreground >> "$T/n$i/keyholdd.log" 2>&1 &
  fi
  NODE_PID[i]=$!
  for _ in $(seq 1 200); do
    if [ -S "$(nsock "$i")" ] && [ -n "$(nk "$i" health 2> /dev/null)" ]; then return 0; fi
    kill -0 "${NODE_PID[$i]}" 2> /dev/null || { tail -20 "$T/n$i/keyholdd.log" >&2; fail "node $i exited during start-up"; }
    sleep 0.05
  done
  fail "node $i did not answer within 10 s"
}

node_kill() {
  kill -9 "${NODE_PID[$1]}"
  wait "${NODE_PID[$1]}" 2> /dev/null || true
  NODE_PID[$1]=""
}

node_stop() {
  local rc=0
  kill -TERM "${NODE_PID[$1]}"
  wait "${NODE_PID[$1]}" || rc=$?
  NODE_PID[$1]=""
  [ "$rc" -eq 0 ] || { tail -20 "$T/n$1/keyholdd.log" >&2; fail "node $1 exited with status $rc"; }
}

p11kit_start() {
  p11-kit server -f --provider "$TOKEN_MODULE" -n "$T/p11.sock" "$TOKEN_URI" > "$T/p11-kit.log" 2>&1 &
  P11_SERVER_PID=$!
  for _ in $(seq 1 100); do
    [ -S "$T/p11.sock" ] && return 0
    sleep 0.05
  done
  fail "p11-kit server did not listen: $(cat "$T/p11-kit.log")"
}

# keys_of I: node I's key names, one line, sorted.
keys_of() { nk "$1" --json key list | json_get '" ".join(sorted(k["name"] for k in d["keys"]))'; }

# sign_verify I KEY PEM: a signature by node I over a fresh message, verified
# by openssl against PEM.
sign_verify() {
  local i=$1 k=$2 pem=$3
  printf 'node %s signs with %s at %s\n' "$i" "$k" "$(date +%s%N)" > "$T/msg"
  ok "node $i signs with $k" nk "$i" sign "$k" --in "$T/msg" --out "$T/sig"
  openssl dgst -sha256 -verify "$pem" -signature "$T/sig" "$T/msg" > /dev/null 2>&1 \
    || fail "node $i's signature with $k does not verify against $pem"
}

# ---- 1. keys appearing and disappearing, for both ways of sharing ----
appear_disappear() {
  local tag=$MODE
  ok "$tag: generate on node 1" nk 1 key generate "a-$tag" --type p256
  nk 3 key show "a-$tag" --pem > "$T/a.pem" || fail "$tag: node 3 does not show node 1's new key"
  nk 1 key show "a-$tag" --pem | cmp -s - "$T/a.pem" || fail "$tag: nodes 1 and 3 show different public keys"
  sign_verify 3 "a-$tag" "$T/a.pem"
  # Node 1 has a-$tag cached (it made it and signed nothing yet): sign there
  # too, so its handle is warm before node 2 deletes the key.
  sign_verify 1 "a-$tag" "$T/a.pem"
  ok "$tag: generate b on node 2" nk 2 key generate "b-$tag" --type p256
  nk 2 key show "b-$tag" --pem > "$T/b.pem" || fail "show b"
  sign_verify 1 "b-$tag" "$T/b.pem"
  [ "$(keys_of 1)" = "$(keys_of 2)" ] && [ "$(keys_of 2)" = "$(keys_of 3)" ] \
    || fail "$tag: the nodes list different keys: 1: $(keys_of 1) / 2: $(keys_of 2) / 3: $(keys_of 3)"
  ok "$tag: delete on node 2" nk 2 key delete "a-$tag" --force
  echo "after delete" > "$T/msg"
  expect_err NOT_FOUND "$tag: node 1 signs with a key node 2 deleted" nk 1 sign "a-$tag" --in "$T/msg" --out "$T/sig"
  expect_err NOT_FOUND "$tag: node 3 shows a key node 2 deleted" nk 3 key show "a-$tag"
  expect_err NOT_FOUND "$tag: node 1 shows a key node 2 deleted" nk 1 key show "a-$tag"
  [ "$(keys_of 1)" = "$(keys_of 3)" ] && [ "$(keys_of 1)" = "$(keys_of 2)" ] \
    || fail "$tag: after the delete the nodes list different keys: $(keys_of 1) / $(keys_of 2) / $(keys_of 3)"
  case " $(keys_of 1) " in *" a-$tag "*) fail "$tag: node 1 still lists a-$tag" ;; esac
  # The same name again, a new key, made on node 3: node 1 signs with the new one.
  ok "$tag: regenerate on node 3" nk 3 key generate "a-$tag" --type p256
  nk 3 key show "a-$tag" --pem > "$T/a2.pem" || fail "show a2"
  cmp -s "$T/a.pem" "$T/a2.pem" && fail "$tag: the regenerated key has the old public key"
  sign_verify 1 "a-$tag" "$T/a2.pem"
  nk 1 key show "a-$tag" --pem | cmp -s - "$T/a2.pem" || fail "$tag: node 1 shows the old a-$tag"
  # Replaced by node 2 while node 1 has it cached (it just signed): node 1
  # finds the stale handle, looks type and public key up again, and signs
  # with the new key.
  ok "$tag: delete on node 2 again" nk 2 key delete "a-$tag" --force
  ok "$tag: generate a P-384 key of that name on node 2" nk 2 key generate "a-$tag" --type p384
  nk 2 key show "a-$tag" --pem > "$T/a3.pem" || fail "show a3"
  sign_verify 1 "a-$tag" "$T/a3.pem"
  if [ "$MODE" = file ]; then
    # No notification: node 1 finds out from the token object's CKA_ID.
    grep -q "key 'a-$tag' was replaced on the token since it was cached" "$T/n1/keyholdd.log" \
      || fail "$tag: node 1 did not notice that a-$tag was replaced"
  else
    # The cluster's notification dropped node 1's cached handle first.
    grep -q "notified that 'key:a-$tag' changed" "$T/n1/keyholdd.log" \
      || fail "$tag: node 1 was not notified that a-$tag changed"
  fi
  # Deleting on a node that has the key cached but another node deleted.
  ok "$tag: delete b on node 3" nk 3 key delete "b-$tag" --force
  expect_err NOT_FOUND "$tag: node 1 deletes a key node 3 deleted" nk 1 key delete "b-$tag" --force
  for i in 1 2 3; do
    kill -0 "${NODE_PID[$i]}" 2> /dev/null || fail "$tag: node $i died"
  done
  log "$tag: keys appear and disappear across the three nodes consistently"
}

MODE="file"
for i in 1 2 3; do node_config "$i"; node_start "$i"; done
appear_disappear
for i in 1 2 3; do node_stop "$i"; done

MODE="p11kit"
kh_pg_start
p11kit_start
for i in 1 2 3; do node_config "$i"; node_start "$i"; done
# Each node keeps its audit anchor in the token under its own name (the
# file-mode nodes: their own audit key's): none took another's.
if grep -h "audit anchors differ" "$T"/n*/keyholdd.log >&2; then
  fail "a node read another node's audit anchor from the shared token"
fi
appear_disappear

# ---- 2. failover under load ----
export KEYHOLD_ENDPOINTS
KEYHOLD_ENDPOINTS="unix:$(nsock 1),unix:$(nsock 2),unix:$(nsock 3)"
ok "load key" nk 1 key generate load --type p256
nk 2 key show load --pem > "$T/load.pem" || fail "show load"
threads=4 per=50
mkdir -p "$T/sigs"
"$KH_SIGNER" - load "$threads" "$per" "$T/sigs" --gap-ms 15 > "$T/signer.out" 2> "$T/signer.err" &
signer=$!
# sigs_done: signatures written so far.
sigs_done() { find "$T/sigs" -name '*.sig' | wc -l; }
wait_sigs() {
  local want=$1 _
  for _ in $(seq 1 400); do
    [ "$(sigs_done)" -ge "$want" ] && return 0
    kill -0 "$signer" 2> /dev/null || return 0
    sleep 0.025
  done
  fail "the clients made no progress ($(sigs_done) signatures)"
}
wait_sigs 30
node_kill 2
log "node 2 killed after $(sigs_done) signatures"
wait_sigs 100
node_kill 1
log "node 1 killed after $(sigs_done) signatures"
rc=0
wait "$signer" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/signer.err" >&2; fail "a client lost requests while nodes were killed (exit $rc)"; }
log "clients: $(cat "$T/signer.out")"
failovers=$(sed -n 's/.* failovers \([0-9]*\)$/\1/p' "$T/signer.out")
# Four connections spread over three nodes: each killed node had at least one.
[ "${failovers:-0}" -ge 2 ] || fail "expected at least 2 failovers (two nodes killed under load), got '${failovers}'"
n=0 bad=0
for sig in "$T"/sigs/*.sig; do
  base=${sig%.sig}
  openssl dgst -sha256 -verify "$T/load.pem" -signature "$sig" "$base.msg" > /dev/null 2>&1 || bad=$((bad + 1))
  n=$((n + 1))
done
[ "$n" -eq $((threads * per)) ] || fail "$n signatures, expected $((threads * per)): requests were lost"
[ "$bad" -eq 0 ] || fail "$bad of $n signatures made across failovers do not verify"
log "$n signatures, all verify, $failovers failovers (requests moved to a live node)"
node_start 1
node_start 2
for i in 1 2 3; do
  sign_verify "$i" load "$T/load.pem"
done
[ "$(keys_of 1)" = "$(keys_of 2)" ] && [ "$(keys_of 2)" = "$(keys_of 3)" ] \
  || fail "after the restart the nodes list different keys"
# Converged: every node sees the three nodes alive, and each scheduled role
# is held by one of them (the killed nodes' leases ran out or were taken).
converged() {
  local i
  for i in 1 2 3; do
    nk "$i" --json status > "$T/st.json" || return 1
    json_get '(sorted(x["name"] for x in d["cluster"]["nodes"] if x["alive"]) == ["n1", "n2", "n3"]
      and all(r["holder"] in ("n1", "n2", "n3") for r in d["cluster"]["roles"]))' < "$T/st.json" \
      | grep -qx true || return 1
  done
}
for _ in $(seq 1 100); do converged && break; sleep 0.1; done
converged || { cat "$T/st.json" >&2; fail "the cluster did not converge after the restarts"; }
log "the restarted nodes rejoined: three live nodes, every role held"
# verify --cluster on node 1 checks node 3's checkpoints (the final one of
# a clean stop) with the cluster's audit key.
node_stop 3
node_start 3
ok "audit verify --cluster" nk 1 --json audit verify --cluster
json_get '[x["node"] for x in d["nodes"] if x["checkpoints"] > 0]' < "$T/ok.out" | grep -q "n3" \
  || { cat "$T/ok.out"; fail "node 3's checkpoints are not recorded"; }
[ "$(json_get 'd["cluster_ok"]' < "$T/ok.out")" = true ] \
  || { cat "$T/ok.out"; fail "the nodes' checkpoints do not verify"; }

# ---- 3. a state change is not sent again; a read is ----
# The first node takes the connection (stopped, its socket still accepts)
# and dies with the request in hand.
export KEYHOLD_ENDPOINTS_ORDER=listed
KEYHOLD_ENDPOINTS="unix:$(nsock 1),unix:$(nsock 2)"
kill -STOP "${NODE_PID[1]}"
"$KH_CLI" key generate lost --type p256 > "$T/gen.out" 2> "$T/gen.err" &
gen=$!
"$KH_CLI" key show load --pem > "$T/show.out" 2> "$T/show.err" &
show=$!
# Both have sent their request when they wait for the answer in recv()
# (a kernel that hides wchan: the 2 s this loop then takes are enough).
for _ in $(seq 1 80); do
  [ "$(cat "/proc/$gen/wchan" 2> /dev/null)" = unix_stream_read_generic ] \
    && [ "$(cat "/proc/$show/wchan" 2> /dev/null)" = unix_stream_read_generic ] && break
  sleep 0.025
done
node_kill 1
grc=0 src=0
wait "$gen" || grc=$?
wait "$show" || src=$?
[ "$grc" -eq "$(kh_exit_of UNAVAILABLE)" ] || fail "generate against a dying node: exit $grc: $(cat "$T/gen.err")"
grep -q "^error: UNAVAILABLE: .*not sent again" "$T/gen.err" || fail "generate: no 'not sent again': $(cat "$T/gen.err")"
expect_err NOT_FOUND "the generate was sent again to node 2" nk 2 key show lost
expect_err NOT_FOUND "the generate was sent again to node 3" nk 3 key show lost
[ "$src" -eq 0 ] || fail "key show did not move to node 2: $(cat "$T/show.err")"
cmp -s "$T/show.out" "$T/load.pem" || fail "key show through node 2 differs"
log "a GenerateKey whose node died was reported, not re-sent; a GetPublicKey moved to the next node"

# ---- 4. the PKCS#11 module and the provider with the first node down ----
# Node 1 is down and first in the list (listed order).
# shellcheck disable=SC2034 # p11() of lib_pkcs11.sh reads it
P11_ENV=(KEYHOLD_ENDPOINTS="$KEYHOLD_ENDPOINTS" KEYHOLD_ENDPOINTS_ORDER=listed LD_PRELOAD="$P11_PRELOAD"
  ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0")
id=$(nk 2 --json key show load | json_get 'd["id"]')
printf 'pkcs11 through the cluster\n' > "$T/p11.msg"
ok "pkcs11-tool signs with node 1 down" p11 pkcs11-tool --module "$P11_MODULE" --sign --id "$id" -m ECDSA-SHA256 \
  -i "$T/p11.msg" -o "$T/p11.sig" --signature-format openssl
openssl dgst -sha256 -verify "$T/load.pem" -signature "$T/p11.sig" "$T/p11.msg" > /dev/null 2>&1 \
  || fail "the PKCS#11 module's signature does not verify"
SOCK="" kh_provider_setup
sed -i '/^socket = /d' "$T/openssl.cnf"
ok "provider signs with node 1 down" kp openssl dgst -sha256 -sign "keyhold:key=load" -out "$T/kp.sig" "$T/p11.msg"
openssl dgst -sha256 -verify "$T/load.pem" -signature "$T/kp.sig" "$T/p11.msg" > /dev/null 2>&1 \
  || fail "the provider's signature does not verify"
# A bad list: a clear error, from the CLI and the module.
KEYHOLD_ENDPOINTS="unix:$(nsock 2),tcp:localhost:1" expect_err INVALID_ARGUMENT "bad KEYHOLD_ENDPOINTS" \
  "$KH_CLI" key list
grep -q "KEYHOLD_ENDPOINTS: entry 2 'tcp:localhost:1': expected unix:PATH or tls:HOST:PORT" "$T/err.err" \
  || fail "bad list message: $(cat "$T/err.err")"
if env KEYHOLD_ENDPOINTS="unix:" LD_PRELOAD="$P11_PRELOAD" ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0" \
  pkcs11-tool --module "$P11_MODULE" --list-slots > "$T/p11bad.out" 2>&1; then
  fail "the PKCS#11 module took a bad KEYHOLD_ENDPOINTS"
fi
grep -q "keyhold-pkcs11: KEYHOLD_ENDPOINTS: entry 1 'unix:'" "$T/p11bad.out" \
  || fail "the PKCS#11 module's bad-list message: $(cat "$T/p11bad.out")"
node_start 1
for i in 1 2 3; do nk "$i" health > /dev/null || fail "node $i does not answer at the end"; done
for i in 1 2 3; do node_stop "$i"; done
# The token holds each anchor apart: the file-mode nodes' (alone, SQLite,
# an audit key each) as keyhold-audit-nI-anchor, the cluster nodes' (one
# audit key) as keyhold-audit-anchor-nI.
pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" --login --pin "$(cat "$TOKEN_PIN_FILE")" \
  --list-objects --type data > "$T/data-objs" 2> /dev/null || fail "pkcs11-tool cannot list data objects"
for i in 1 2 3; do
  for a in "keyhold-audit-n$i-anchor" "keyhold-audit-anchor-n$i"; do
    grep -q "label: *'$a'\$" "$T/data-objs" || { cat "$T/data-objs" >&2; fail "no anchor $a"; }
  done
done
log "PASS"
