# lib_pg.sh: a throwaway PostgreSQL 15 server for one test (the postgresql
# state backend, docs/CLUSTER.md). Source it after lib.sh (lib.sh sources it
# itself when KH_STATE=postgresql). Every test starts its own server from a
# copy of a template data directory (initdb runs once per build directory:
# 1.3 s; a copy and a start cost ~0.3 s), on a Unix socket in a temp dir of
# its own (and a loopback port with kh_pg_start --tcp), as the postgres
# user when run as root (CI), and kh_cleanup stops exactly that server.
# Test settings only: fsync=off, trust authentication on the socket.
#
#   kh_pg_start [--tcp] [--ssl CERT KEY]   start; sets PG_DIR PG_SOCK PG_PORT PG_DSN
#   kh_pg_stop / kh_pg_restart             stop (fast) / restart the server
#   kh_pg_psql SQL...                      psql as the superuser on database keyhold
#   kh_pg_state_ini                        the [state] section for kh_config
# shellcheck shell=bash disable=SC2034

PG_BIN=${KH_PG_BIN:-/usr/lib/postgresql/15/bin}
# Sourced twice (lib.sh, then a test), the server already started stays.
PG_DIR=${PG_DIR:-}
PG_SOCK=${PG_SOCK:-}
PG_PORT=${PG_PORT:-}
PG_DSN=${PG_DSN:-}
PG_PID=${PG_PID:-}
# Every server this test started, one data directory a line, so that the
# cleanup stops each even when one was started in a subshell (whose
# variables never reach the test's shell): $T/pg-servers.
kh_pg_list() { echo "${T:-}/pg-servers"; }

# Runs a command as the server's owner: postgres when we are root.
kh_pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The template: initdb once (C locale, UTF-8, trust on the socket) plus the
# database keyhold, made under a lock so parallel tests share one.
kh_pg_template() {
  local tpl="$KH_BUILD/pg-template" tmp
  [ -x "$PG_BIN/initdb" ] || fail "PostgreSQL 15 is not installed ($PG_BIN/initdb); run scripts/install-deps.sh"
  exec {lockfd}> "$KH_BUILD/pg-template.lock"
  flock "$lockfd"
  if [ ! -f "$tpl/PG_VERSION" ]; then
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/kh-pgtpl.XXXXXX")
    chmod 755 "$tmp"
    [ "$(id -u)" -eq 0 ] && chown postgres "$tmp"
    kh_pg_as "$PG_BIN/initdb" -D "$tmp/data" -A trust -U postgres --locale=C -E UTF8 --no-sync > "$tmp/initdb.log" 2>&1 ||
      { cat "$tmp/initdb.log" >&2; fail "initdb failed"; }
    kh_pg_as "$PG_BIN/postgres" --single -D "$tmp/data" -c fsync=off postgres <<< "CREATE DATABASE keyhold;" > /dev/null ||
      fail "cannot create the template's database"
    rm -rf "$tpl"
    mv "$tmp/data" "$tpl"
    rm -rf "$tmp"
  fi
  flock -u "$lockfd"
  exec {lockfd}>&-
}

# kh_pg_start [--tcp] [--ssl CERT KEY]: a server of this test's own.
kh_pg_start() {
  local tcp=0 cert="" key="" opts hba
  while [ $# -gt 0 ]; do
    case "$1" in
    --tcp) tcp=1 ;;
    --ssl) cert=$2 key=$3; tcp=1; shift 2 ;;
    *) fail "kh_pg_start: unknown option $1" ;;
    esac
    shift
  done
  kh_pg_template
  if [ -z "$PG_DIR" ]; then
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kh-pg.XXXXXX")
    chmod 755 "$PG_DIR"
    cp -a "$KH_BUILD/pg-template" "$PG_DIR/data"
    [ "$(id -u)" -eq 0 ] && chown -R postgres "$PG_DIR"
    chmod 700 "$PG_DIR/data"
    PG_SOCK="$PG_DIR"
  fi
  opts="-k $PG_SOCK -c fsync=off -c max_connections=60"
  if [ "$tcp" = 1 ]; then
    # A free loopback port: the kernel picks, the server takes it.
    PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    opts="$opts -c listen_addresses=127.0.0.1 -p $PG_PORT"
    # TCP: passwords (scram), only over TLS when --ssl; the socket trusts.
    hba="local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    [ -n "$cert" ] && hba="local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
    kh_pg_as sh -c "printf '$hba' > '$PG_DIR/data/pg_hba.conf.kh'"
    opts="$opts -c hba_file=$PG_DIR/data/pg_hba.conf.kh"
  else
    PG_PORT=${PG_PORT:-5432}
    opts="$opts -c listen_addresses= -p $PG_PORT"
  fi
  if [ -n "$cert" ]; then
    cp "$cert" "$PG_DIR/server.crt"
    cp "$key" "$PG_DIR/server.key"
    chmod 600 "$PG_DIR/server.key"
    [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR/server.crt" "$PG_DIR/server.key"
    opts="$opts -c ssl=on -c ssl_cert_file=$PG_DIR/server.crt -c ssl_key_file=$PG_DIR/server.key"
  fi
  PG_OPTS=$opts
  kh_pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -o "$PG_OPTS" -l "$PG_DIR/server.log" -w -t 30 start > /dev/null ||
    { tail -n 20 "$PG_DIR/server.log" >&2; fail "PostgreSQL did not start"; }
  PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
  [ -z "${T:-}" ] || echo "$PG_DIR" >> "$(kh_pg_list)"
  PG_DSN="host=$PG_SOCK port=$PG_PORT dbname=keyhold user=postgres"
}

# Stops this test's server (fast: open connections are cut).
kh_pg_stop() {
  [ -n "$PG_PID" ] || return 0
  kh_pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop > /dev/null 2>&1 ||
    kill -TERM "$PG_PID" 2> /dev/null || true
  PG_PID=""
}

# pg_ctl restart: the same data, port and options; clients are cut off.
kh_pg_restart() {
  kh_pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -o "$PG_OPTS" -l "$PG_DIR/server.log" -m fast -w -t 30 restart > /dev/null ||
    { tail -n 20 "$PG_DIR/server.log" >&2; fail "PostgreSQL did not restart"; }
  PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
}

kh_pg_psql() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d keyhold -At "$@"
}

# The [state] section that points keyholdd at this test's server.
kh_pg_state_ini() {
  printf '[state]\nbackend = postgresql\ndsn = %s\n' "$PG_DSN"
}

# Called by lib.sh's kh_cleanup after keyholdd stopped: this shell's
# server, then any other this test started.
kh_pg_cleanup() {
  local d dirs=()
  kh_pg_stop
  [ -z "$PG_DIR" ] || dirs+=("$PG_DIR")
  if [ -n "${T:-}" ] && [ -f "$(kh_pg_list)" ]; then
    while read -r d; do
      [ "$d" = "$PG_DIR" ] && continue
      dirs+=("$d")
      [ -f "$d/data/postmaster.pid" ] || continue
      kh_pg_as "$PG_BIN/pg_ctl" -D "$d/data" -m fast -w -t 30 stop > /dev/null 2>&1 ||
        kill -TERM "$(head -n 1 "$d/data/postmaster.pid")" 2> /dev/null || true
    done < "$(kh_pg_list)"
  fi
  for d in "${dirs[@]}"; do
    if [ "${KH_KEEP:-0}" = 1 ]; then log "kept $d"; else rm -rf "$d"; fi
  done
}
