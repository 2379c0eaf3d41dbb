#!/usr/bin/env bash
# test_store_pg.sh TEST_STORE: runs the store's unit tests (test_store.c)
# on a throwaway PostgreSQL server of their own (tests/integration/lib_pg.sh),
# stopped on exit.
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
: "${KH_BUILD:?}" "${KH_SRC:?}"
log() { printf '[test_store_pg] %s\n' "$*" >&2; }
fail() {
  log "FAIL: $*"
  exit 1
}
# shellcheck source=tests/integration/lib_pg.sh
. "$KH_SRC/tests/integration/lib_pg.sh"
trap 'kh_pg_cleanup' EXIT
kh_pg_start
KH_TEST_PG_DSN=$PG_DSN "$1"
