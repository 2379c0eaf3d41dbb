#!/usr/bin/env bash
# Grants to user:NAME and group:NAME outlive neither the account nor its
# name (issue 13, item 9): a run-time grant is kept by number with the name
# for display; after userdel/groupdel keyholdd still starts and logs the
# grant it dropped, and an account made later with the same name (on most
# systems with the same number too) does not inherit it. A config entry
# naming an account that does not exist is logged and ignored.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"

[ "$(id -u)" -eq 0 ] || fail "this test creates and deletes users and must run as root"
U=khgone
G=khgonegrp
acc_remove() {
  userdel "$U" 2> /dev/null || true
  groupdel "$G" 2> /dev/null || true
}
kh_on_exit acc_remove
# The socket is reached through a stable group, the signer role too; only
# the per-key grants name the throwaway accounts.
groupadd -f khacc
userdel "$U" 2> /dev/null || true
groupdel "$G" 2> /dev/null || true
groupadd --system "$G"
useradd --system --no-create-home --shell /usr/sbin/nologin -G "khacc,$G" "$U" || fail "useradd $U"
old_uid=$(id -u "$U")
chmod 711 "$T"
KH_SERVICE_EXTRA="socket_group = khacc" kh_config "signer = group:khacc
[key:acc-cfg]
signers = user:khcfg-never-existed, uid:4242"
kh_start
echo "accounts" > "$T/m"
chmod 644 "$T/m"
grep -q "unknown user 'khcfg-never-existed': the entry is ignored" "$T/keyholdd.log" \
  || fail "the config entry naming an unknown user was not logged"
for k in acc-user acc-group; do ok "generate $k" kh key generate "$k" --type p256; done
ok "grant to user" kh policy grant acc-user "user:$U"
ok "grant to group" kh policy grant acc-group "group:$G"
ok "list" kh --json policy list
grep -q "\"user:$U\"" "$T/ok.out" || fail "the grant is not shown by name"
q="SELECT principal || ' ' || display FROM key_grants WHERE key_name = 'acc-user'"
if [ "${KH_STATE:-sqlite}" = postgresql ]; then kept=$(kh_pg_psql -c "$q"); else kept=$(sqlite3 "$T/state/keyhold.db" "$q"); fi
[ "$kept" = "uid:$old_uid user:$U" ] || fail "the grant is not kept by number: '$kept'"
ok "the user signs with its grant" as_user "$U" "$KH_CLI" --socket "$SOCK" sign acc-user --in "$T/m" --out /dev/null
ok "the group member signs with its grant" as_user "$U" "$KH_CLI" --socket "$SOCK" sign acc-group --in "$T/m" --out /dev/null
kh_stop

# ---- the accounts go ----
userdel "$U" || fail "userdel"
groupdel "$G" || fail "groupdel"
: > "$T/keyholdd.log"
kh_start
grep -q "the grant of key 'acc-user' to user:$U (uid:$old_uid) is dropped: uid $old_uid no longer exists" "$T/keyholdd.log" \
  || fail "the dropped user grant was not logged"
grep -q "the grant of key 'acc-group' to group:$G" "$T/keyholdd.log" || fail "the dropped group grant was not logged"
ok "list after userdel" kh --json policy list
if grep -q "$U\|$G" "$T/ok.out"; then cat "$T/ok.out" >&2; fail "a grant of a deleted account is still listed"; fi

# ---- a new account with the same names ----
groupadd --system "$G"
useradd --system --no-create-home --shell /usr/sbin/nologin -G "khacc,$G" "$U" || fail "useradd $U again"
log "new $U has uid $(id -u "$U") (the old one had $old_uid)"
expect_err PERMISSION_DENIED "the new $U signs with the old user's grant" \
  as_user "$U" "$KH_CLI" --socket "$SOCK" sign acc-user --in "$T/m" --out /dev/null
expect_err PERMISSION_DENIED "the new $G member signs with the old group's grant" \
  as_user "$U" "$KH_CLI" --socket "$SOCK" sign acc-group --in "$T/m" --out /dev/null
# Also after another restart, with the accounts present again.
kh_restart
expect_err PERMISSION_DENIED "the new $U after a restart" \
  as_user "$U" "$KH_CLI" --socket "$SOCK" sign acc-user --in "$T/m" --out /dev/null
# A new grant to the new account works, and goes with it.
ok "grant to the new user" kh policy grant acc-user "user:$U"
ok "the new user signs with its own grant" as_user "$U" "$KH_CLI" --socket "$SOCK" sign acc-user --in "$T/m" --out /dev/null
kh_stop
