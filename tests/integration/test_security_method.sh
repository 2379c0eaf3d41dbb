#!/usr/bin/env bash
# Method names and peers without a role (issue 13, item 15): a method name
# with an embedded NUL ("GetStatus\0x") is refused INVALID_ARGUMENT rather
# than served as GetStatus; a peer that holds no role is answered
# PERMISSION_DENIED before its request is decoded, whatever it sends (a
# known method, an unknown one, a garbage body, a NUL in the name), so no
# decoder's message reaches it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"

kh_sec_user khnorole
NOROLE_UID=$SEC_UID
KH_SERVICE_EXTRA="socket_group = khnorole" kh_config ""
kh_start

hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
# code_of ARGS...: the answer's code to a raw request.
code_of() { wire "$@" | json_get 'd["response"]["code"]'; }
norole() { as_user khnorole /usr/bin/python3 "$KH_SRC/tests/integration/kh_wire.py" --socket "$SOCK" "$@"; }
norole_code() { norole "$@" | json_get 'd["response"]["code"]'; }

# ---- the admin (root): the whole name counts ----
[ "$(code_of req "$(hex GetStatus)" "")" = OK ] || fail "a plain GetStatus is not served"
nul_method="$(hex GetStatus)00$(hex x)"
wire req "$nul_method" "" > "$T/nul.json"
[ "$(json_get 'd["response"]["code"]' < "$T/nul.json")" = INVALID_ARGUMENT ] \
  || fail "a method name with a NUL byte was not refused: $(cat "$T/nul.json")"
json_get 'd["response"]["message"]' < "$T/nul.json" | grep -q "NUL" || fail "the refusal does not name the NUL byte"
[ "$(code_of req "$(hex GetStatus)00" "")" = INVALID_ARGUMENT ] || fail "a trailing NUL in the method name was served"
[ "$(code_of req "$(hex Bogus)" "")" = UNIMPLEMENTED ] || fail "an unknown method is not UNIMPLEMENTED for the admin"
[ "$(code_of req "$(hex Sign)" "ffffffff")" = INVALID_ARGUMENT ] || fail "a garbage Sign body is not INVALID_ARGUMENT for the admin"

# ---- a peer with no role: PERMISSION_DENIED first, for everything ----
for m in GetStatus Sign Bogus; do
  norole req "$(hex "$m")" "" > "$T/nr.json"
  [ "$(json_get 'd["response"]["code"]' < "$T/nr.json")" = PERMISSION_DENIED ] \
    || fail "a peer with no role calling $m got $(cat "$T/nr.json")"
  [ "$(json_get 'd["response"]["id"]' < "$T/nr.json")" = 9 ] || fail "the refusal does not answer the request's id"
done
json_get 'd["response"]["message"]' < "$T/nr.json" | grep -q "no role" || fail "the refusal does not say the peer has no role"
json_get 'd["response"]["message"]' < "$T/nr.json" | grep -q "Bogus" && fail "the refusal echoes the unknown method name"
[ "$(norole_code req "$(hex Sign)" "ffffffff")" = PERMISSION_DENIED ] || fail "a garbage body from a peer with no role was decoded"
[ "$(norole_code req "$nul_method" "")" = PERMISSION_DENIED ] || fail "a NUL method from a peer with no role was decoded"
[ "$(norole_code req "$(hex GetStatus)" "0a")" = PERMISSION_DENIED ] || fail "a truncated body from a peer with no role was decoded"
# The refusals are on record: the first of each second at once, the others
# of that second as one record with their count once the second is over.
sleep 2
kh --json audit show > "$T/audit.json"
n=$(json_get 'sum(max(1, r["count"]) for r in d["records"] if r["principal"]=="uid:'"$NOROLE_UID"'" and r["result"]=="PERMISSION_DENIED")' < "$T/audit.json")
[ "$n" -ge 6 ] || fail "only $n of the no-role refusals are on record"
ok "audit verify" kh audit verify
kh_stop
