# lib_security.sh: helpers of the security tests (source after lib.sh):
# a local test user other than root, running the CLI as that user, and
# raw protocol frames through kh_wire.py.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this

# kh_sec_user NAME: creates the system user and group NAME when missing
# (the tests run as root, as CI does) and sets SEC_UID, SEC_GID.
# kh_passwd CMD...: useradd, usermod and the like, retried while another
# test (ctest -j) holds the lock on /etc/passwd or /etc/group.
kh_passwd() {
  local i
  for i in $(seq 1 50); do
    "$@" 2> "$T/passwd.err" && return 0
    grep -q "lock" "$T/passwd.err" || { cat "$T/passwd.err" >&2; return 1; }
    sleep 0.1
  done
  cat "$T/passwd.err" >&2
  return 1
}

kh_sec_user() {
  local u=$1
  [ "$(id -u)" -eq 0 ] || fail "the security tests create a test user and must run as root"
  if ! getent passwd "$u" > /dev/null; then
    kh_passwd useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$u" 2>/dev/null \
      || getent passwd "$u" > /dev/null || fail "cannot create user $u"
  fi
  SEC_UID=$(id -u "$u")
  SEC_GID=$(id -g "$u")
  # The user must reach the socket in $T (files in it stay private).
  chmod 711 "$T"
}

# as_user NAME CMD...: runs CMD as NAME with its groups.
as_user() {
  local u=$1; shift
  setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"
}

# kh_as NAME ARGS...: the CLI as NAME on this test's socket.
kh_as() {
  local u=$1; shift
  as_user "$u" "$KH_CLI" --socket "$SOCK" "$@"
}

# wire ARGS...: tests/integration/kh_wire.py on this test's socket.
wire() { python3 "$KH_SRC/tests/integration/kh_wire.py" --socket "$SOCK" "$@"; }
