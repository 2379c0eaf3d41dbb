#!/usr/bin/env bash
# Group roles follow the caller's own groups (issue 13, item 10): a role
# given to group:G is held by a process that holds G (SO_PEERGROUPS), not
# by one whose user the group database lists in G: a process that dropped
# its supplementary groups loses the role, one given G by setgroups(2)
# without being listed gets it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"

kh_sec_user khgrpu
getent group khgrpg > /dev/null || groupadd --system khgrpg 2>/dev/null || getent group khgrpg > /dev/null \
  || fail "cannot create group khgrpg"
GRP_GID=$(getent group khgrpg | cut -d: -f3)
# Start from a user the group database does not list in khgrpg.
gpasswd -d khgrpu khgrpg > /dev/null 2>&1 || true
KH_SERVICE_EXTRA="socket_group = khgrpu" kh_config "auditor = group:khgrpg"
kh_start

# as_groups GROUPS ARGS...: the CLI as khgrpu holding exactly GROUPS
# (setpriv --groups; "-" for none) besides its primary group.
as_groups() {
  local g=$1; shift
  if [ "$g" = - ]; then
    setpriv --reuid=khgrpu --regid=khgrpu --clear-groups -- "$KH_CLI" --socket "$SOCK" "$@"
  else
    setpriv --reuid=khgrpu --regid=khgrpu --groups="$g" -- "$KH_CLI" --socket "$SOCK" "$@"
  fi
}

# Not listed in the group database, but holding the group: the role.
ok "a process given the group by setgroups holds its role" as_groups "$GRP_GID" status
ok "auditor reads the log" as_groups "$GRP_GID" audit show
expect_err PERMISSION_DENIED "a process without the group" as_groups - status
expect_err PERMISSION_DENIED "the user with the groups the database lists" kh_as khgrpu status

# Listed in the group database, but the process dropped it: no role.
gpasswd -a khgrpu khgrpg > /dev/null
ok "the user with its listed groups holds the role" kh_as khgrpu status
expect_err PERMISSION_DENIED "a process that dropped its supplementary groups" as_groups - status
expect_err PERMISSION_DENIED "a process holding another group only" as_groups 0 status
gpasswd -d khgrpu khgrpg > /dev/null
kh_stop
