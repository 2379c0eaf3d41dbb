#!/usr/bin/env bash
# Roles and per-key policy (DESIGN §9): a process running as another uid is
# denied admin RPCs and denied signing with keys it holds no grant for (with
# the same answer whether or not the key exists), and allowed where granted,
# by config ([key:NAME]) or at run time (keyhold policy grant), by uid or by
# group; grants restrict digests and paddings; signers see only their keys;
# auditors read the audit log and nothing else.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"

kh_sec_user khaudit
kh_sec_user khtest
mkdir -p "$T/u" && chown khtest "$T/u"
KH_SERVICE_EXTRA="socket_group = khtest" kh_config "signer = user:khtest
auditor = user:khaudit
[key:granted]
signers = user:khtest
digests = sha256,sha384
[key:bygroup]
signers = group:khtest
[key:rsa-pss]
signers = uid:$SEC_UID
padding = pss"
# khaudit reaches the socket through the khtest group too.
kh_passwd usermod -a -G khtest khaudit
kh_start
echo "the quick brown fox" > "$T/msg"
chmod 644 "$T/msg"
for k in granted other bygroup; do ok "generate $k" kh key generate "$k" --type p256; done

# ---- admin RPCs are refused ----
expect_err PERMISSION_DENIED "signer generates a key" kh_as khtest key generate mine --type p256
grep -q "needs the admin role" "$T/err.err" || fail "the refusal does not name the missing role"
expect_err PERMISSION_DENIED "signer deletes a key" kh_as khtest key delete granted --force
expect_err PERMISSION_DENIED "signer grants itself a key" kh_as khtest policy grant other "uid:$SEC_UID"
ok "key still there" kh key show granted

# ---- signing where granted, verified with openssl ----
ok "pubkey" kh key show granted --pem
cp "$T/ok.out" "$T/granted.pem"
ok "granted sign" kh_as khtest sign granted --in "$T/msg" --out "$T/u/granted.sig"
openssl dgst -sha256 -verify "$T/granted.pem" -signature "$T/u/granted.sig" "$T/msg" > /dev/null \
  || fail "the granted signature does not verify"
ok "granted sign sha384" kh_as khtest sign granted --in "$T/msg" --digest sha384 --out "$T/u/g384.sig"
openssl dgst -sha384 -verify "$T/granted.pem" -signature "$T/u/g384.sig" "$T/msg" > /dev/null \
  || fail "the sha384 signature does not verify"
ok "grant by group" kh_as khtest sign bygroup --in "$T/msg" --out "$T/u/bygroup.sig"

# ---- no grant: refused before the token is asked, existence not revealed ----
expect_err PERMISSION_DENIED "sign without a grant" kh_as khtest sign other --in "$T/msg" --out "$T/u/x"
grep -q "no grant for key 'other'" "$T/err.err" || fail "the refusal does not name the missing grant"
sed "s/'other'/'K'/g; s/ other / K /g; s/:other\\]/:K]/g; s/\\[key:other\\]/[key:K]/g" "$T/err.err" > "$T/m-exists"
expect_err PERMISSION_DENIED "sign an unknown key" kh_as khtest sign no-such-key --in "$T/msg" --out "$T/u/x"
sed "s/'no-such-key'/'K'/g; s/ no-such-key / K /g; s/\\[key:no-such-key\\]/[key:K]/g" "$T/err.err" > "$T/m-missing"
cmp -s "$T/m-exists" "$T/m-missing" || { cat "$T/m-exists" "$T/m-missing" >&2; fail "the refusal differs for a key that exists"; }
expect_err PERMISSION_DENIED "show an unknown key" kh_as khtest key show no-such-key
expect_err PERMISSION_DENIED "show a key without a grant" kh_as khtest key show other
# The admin, by contrast, learns that the key does not exist.
expect_err NOT_FOUND "admin signs an unknown key" kh sign no-such-key --in "$T/msg" --out "$T/x"

# ---- the grant's algorithm restrictions ----
expect_err PERMISSION_DENIED "digest outside the grant" kh_as khtest sign granted --in "$T/msg" --digest sha512 --out "$T/u/x"
grep -q "allows digests sha256,sha384, not sha512" "$T/err.err" || fail "the refusal does not name the digest rule"
if kh_has_type rsa2048; then
  ok "rsa key" kh key generate rsa-pss --type rsa2048
  ok "rsa pubkey" kh key show rsa-pss --pem
  cp "$T/ok.out" "$T/rsa.pem"
  expect_err PERMISSION_DENIED "pkcs1 outside a pss-only grant" kh_as khtest sign rsa-pss --in "$T/msg" --out "$T/u/x"
  grep -q "padding pss, not pkcs1" "$T/err.err" || fail "the refusal does not name the padding rule"
  if kh_caps | json_get 'd["pss"]' | grep -q true; then
    ok "pss within the grant" kh_as khtest sign rsa-pss --in "$T/msg" --pss --out "$T/u/pss.sig"
    openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -verify "$T/rsa.pem" \
      -signature "$T/u/pss.sig" "$T/msg" > /dev/null || fail "the PSS signature does not verify"
  fi
fi

# ---- a signer sees only its keys ----
ok "signer lists keys" kh_as khtest --json key list
names=$(json_get '",".join(sorted(k["name"] for k in d["keys"]))' < "$T/ok.out")
case "$names" in
  bygroup,granted|bygroup,granted,rsa-pss) ;;
  *) fail "the signer sees keys it holds no grant for: $names" ;;
esac
ok "admin lists keys" kh --json key list
json_get '[k["name"] for k in d["keys"]]' < "$T/ok.out" | grep -q other || fail "the admin does not see every key"

# ---- runtime grants: given, kept across a restart, revoked ----
ok "admin grants other" kh policy grant other user:khtest --digests sha256
ok "now allowed" kh_as khtest sign other --in "$T/msg" --out "$T/u/other.sig"
kh_restart
ok "still allowed after a restart" kh_as khtest sign other --in "$T/msg" --out "$T/u/other.sig"
ok "grants" kh --json policy list other
[ "$(json_get 'd["grants"][0]["source"]' < "$T/ok.out")" = runtime ] || fail "the runtime grant is not listed"
expect_err FAILED_PRECONDITION "a config grant cannot be revoked at run time" kh policy revoke granted user:khtest
ok "admin revokes" kh policy revoke other user:khtest
expect_err PERMISSION_DENIED "denied again" kh_as khtest sign other --in "$T/msg" --out "$T/u/x"
expect_err NOT_FOUND "revoking twice" kh policy revoke other user:khtest
expect_err INVALID_ARGUMENT "a malformed principal" kh policy grant other "nobody"
# A deleted key takes its runtime grants along.
ok "grant before delete" kh policy grant other user:khtest
ok "delete" kh key delete other --force
ok "recreate" kh key generate other --type p256
expect_err PERMISSION_DENIED "a new key of the same name has no grants" kh_as khtest sign other --in "$T/msg" --out "$T/u/x"

# ---- auditor: status and the audit log only ----
ok "auditor reads status" kh_as khaudit status
ok "auditor reads the audit log" kh_as khaudit --json audit show
json_get '[r for r in d["records"] if r["principal"]=="uid:'"$SEC_UID"'" and r["method"]=="Sign" and r["result"]=="PERMISSION_DENIED"]' \
  < "$T/ok.out" | grep -q "other" || fail "the denied signing attempts are not on record"
expect_err PERMISSION_DENIED "auditor signs" kh_as khaudit sign granted --in "$T/msg" --out "$T/x"
expect_err PERMISSION_DENIED "auditor lists keys" kh_as khaudit key list
expect_err PERMISSION_DENIED "signer reads the audit log" kh_as khtest audit show
# Nobody signs with the audit key, not even an admin.
expect_err PERMISSION_DENIED "admin signs with the audit key" kh sign keyhold-audit --in "$T/msg" --out "$T/x"
expect_err PERMISSION_DENIED "admin deletes the audit key" kh key delete keyhold-audit --force
ok "audit verify" kh audit verify

kh_stop
