#!/usr/bin/env bash
# The CLI's conventions (docs/CLI.md): options parsed by getopt_long in
# every verb, global options anywhere, --opt=value, "--" ending options,
# per-verb help for every verb `keyhold help` lists, usage errors exit 2,
# exit status by error class from real server answers (not found,
# permission, unavailable, invalid argument, already exists), status and
# health exit codes, --json output of every verb (errors included) valid
# JSON even for bytes that are not UTF-8, Cisco's spaced revocation list;
# a stock protobuf client (python3-protobuf) parsing error answers that
# quote long non-ASCII text; and keyholdd's log lines reaching stderr when
# JOURNAL_STREAM is inherited but stderr is not the journal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_security.sh"

kh_sec_user khtest
# The journal variable of some other stream (as after `systemd-run ... >
# file`): keyholdd must keep writing its lines to stderr.
export JOURNAL_STREAM=1:1
KH_SERVICE_EXTRA="socket_group = khtest" kh_config "signer = user:khtest"
kh_start
unset JOURNAL_STREAM
grep -q 'keyholdd\[info\] .*ready in' "$T/keyholdd.log" \
  || fail "with JOURNAL_STREAM naming another stream, keyholdd's log did not reach stderr"

jsonok() { # jsonok DESC FILE: FILE is one valid JSON document (UTF-8)
  python3 -m json.tool "$2" > /dev/null 2> "$T/json.err" || { cat "$2" "$T/json.err" >&2; fail "$1: not valid JSON"; }
}

# ---- help: every verb `keyhold help` lists ----
expect_rc 0 "help" kh help
cp "$T/rc.out" "$T/help.txt"
grep -q '^EXIT STATUS' "$T/help.txt" || fail "help has no exit status table"
for c in 0 1 2 3 4 5 6 7; do grep -q "^  $c  " "$T/help.txt" || fail "help: exit status $c undocumented"; done
# The commands: the lower-case words after "keyhold" on the COMMANDS lines.
sed -n '/^COMMANDS:/,/^$/p' "$T/help.txt" | awk '$1 == "keyhold" {
  v = ""; for (i = 2; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++) v = v (v == "" ? "" : " ") $i; print v }' > "$T/verbs"
[ "$(wc -l < "$T/verbs")" -ge 30 ] || { cat "$T/verbs" >&2; fail "help lists too few commands"; }
grep -qx 'health' "$T/verbs" || fail "help does not list health"
n=0
while read -r -a words; do
  expect_rc 0 "help ${words[*]}" kh help "${words[@]}"
  grep -q "^usage: keyhold \[GLOBAL OPTIONS\] ${words[*]}" "$T/rc.out" || fail "help ${words[*]}: no usage line"
  [ ! -s "$T/rc.err" ] || fail "help ${words[*]}: wrote to stderr"
  cp "$T/rc.out" "$T/help1"
  expect_rc 0 "${words[*]} --help" kh "${words[@]}" --help
  cmp -s "$T/rc.out" "$T/help1" || fail "${words[*]} --help differs from help ${words[*]}"
  expect_rc 0 "${words[*]} -h" kh "${words[@]}" -h
  cmp -s "$T/rc.out" "$T/help1" || fail "${words[*]} -h differs from help ${words[*]}"
  n=$((n + 1))
done < "$T/verbs"
log "help of $n verbs"
expect_rc 0 "help of a noun" kh help trustpoint
grep -q 'keyhold trustpoint enroll' "$T/rc.out" || fail "help trustpoint does not list its verbs"
expect_rc 0 "--help" kh --help
cmp -s "$T/rc.out" "$T/help.txt" || fail "--help differs from help"

# ---- usage errors: exit 2, naming what is wrong ----
usage() { # usage PATTERN DESC ARGS...
  local pat=$1 desc=$2; shift 2
  expect_err USAGE "$desc" kh "$@"
  grep -q -- "$pat" "$T/err.err" || { cat "$T/err.err" >&2; fail "$desc: the message does not name $pat"; }
}
usage "--bogus" "unknown option" key list --bogus
usage "--bogus" "unknown option before the noun" --bogus key list
usage "--type" "missing value" key generate k1 --type
usage "--force" "a flag given a value" key delete k1 --force=yes
usage "frob" "unknown verb" key frob
usage "nosuch" "unknown command" nosuch
usage "'key' needs a verb" "no verb" key
usage "extra" "an extra argument" key list extra
usage "--type" "an option twice" key generate k1 --type p256 --type p384
usage "--timeout" "bad --timeout" --timeout=0 status
usage "nosuch" "help of an unknown command" help nosuch
expect_rc 2 "no command at all" kh
rc=0; kh --json key list --bogus > "$T/u.json" 2> "$T/u.err" || rc=$?
[ "$rc" -eq 2 ] || fail "--json usage error exited $rc"
jsonok "--json usage error (stdout)" "$T/u.json"
jsonok "--json usage error (stderr)" "$T/u.err"
[ "$(json_get 'd["error"]["code"]' < "$T/u.json")" = USAGE ] || fail "--json usage error code"

# ---- options anywhere, --opt=value, -- ----
ok "generate with --type=VALUE" kh key generate k1 --type=p256
ok "options before the name" kh key generate --type p256 k2
ok "--json after the verb" kh key list --json
jsonok "key list --json" "$T/ok.out"
[ "$(json_get '" ".join(sorted(k["name"] for k in d["keys"] if k["name"] in ("k1", "k2")))' < "$T/ok.out")" = "k1 k2" ] \
  || { cat "$T/ok.out" >&2; fail "key list --json: not k1 and k2"; }
ok "--json between noun and verb" kh key --json list
jsonok "key --json list" "$T/ok.out"
ok "--socket=PATH after the verb" "$KH_CLI" key list --socket="$SOCK" --json
jsonok "--socket=" "$T/ok.out"
ok "--socket PATH at the end" "$KH_CLI" key show k1 --socket "$SOCK"
ok "--timeout=N" kh --timeout=5 key show k1
# "--" ends options: a key whose name starts with '-'.
ok "generate -dash after --" kh key generate --type p256 -- -dash
ok "show -dash after --" kh key show --json -- -dash
[ "$(json_get 'd["name"]' < "$T/ok.out")" = -dash ] || fail "show -- -dash: wrong key"
usage "-d" "without --, -dash is an option" key show -dash
# after --, --json is a key name (no such key), not the option
expect_err NOT_FOUND "-- --json is an argument" kh key show -- --json
grep -q "no key named '--json'" "$T/err.err" || fail "-- --json: not taken as the name"

# ---- exit status by class, from real answers ----
expect_err NOT_FOUND "not found" kh key show nosuch
expect_err ALREADY_EXISTS "already exists" kh key generate k1 --type p256
expect_err INVALID_ARGUMENT "invalid argument (service)" kh csr k1 --subject "nonsense"
expect_err FAILED_PRECONDITION "failed precondition" kh key delete k1
expect_err PERMISSION_DENIED "permission denied (another user)" kh_as khtest key delete k1 --force
expect_err NOT_FOUND "a missing input file" kh sign k1 --in "$T/no-such-file" --out "$T/x"

# ---- status and health while healthy ----
expect_rc 0 "status" kh status
expect_rc 0 "health" kh health
if [ "$(wc -l < "$T/rc.out")" -ne 1 ] || ! grep -q '^healthy: OPERATIONAL, token present$' "$T/rc.out"; then
  cat "$T/rc.out" >&2
  fail "health: not one 'healthy' line"
fi
expect_rc 0 "health --json" kh health --json
[ "$(json_get 'd["healthy"]' < "$T/rc.out")" = true ] || fail "health --json"

# ---- --json of every verb, with non-ASCII and invalid UTF-8 input ----
bad=$'\xff\xfe\xc3'   # not UTF-8
uml=$'Z\xc3\xbcrich'  # Zürich
echo "message" > "$T/msg"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" \
  -subj "/CN=CLI test CA" -days 30 2> /dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/leaf.key" -subj "/CN=leaf" \
  2> /dev/null | openssl x509 -req -CA "$T/ca.pem" -CAkey "$T/ca.key" -days 10 -out "$T/leaf.pem" 2> /dev/null
printf 'junk %s\n' "$bad" > "$T/junk"
# run_json ARGS...: the CLI with --json; its output is checked below, all
# at once (one python3 for every run: its start-up is the slow part).
mkdir -p "$T/json"
run_json() {
  local rc=0 d
  JSON_RUNS=$((JSON_RUNS + 1))
  d="$T/json/$JSON_RUNS"
  "$KH_CLI" --socket "$SOCK" --json "$@" > "$d.out" 2> "$d.err" || rc=$?
  printf '%s\n' "$rc" > "$d.rc"
  printf '%s ' "$@" > "$d.args"
  cp "$d.out" "$T/j.out"
}
JSON_RUNS=0
run_json status
run_json health
run_json capabilities
run_json selftest
run_json key generate kj --type p256
run_json key list
run_json key show kj
run_json key show kj --pem
run_json sign kj --in "$T/msg" --out "$T/kj.sig"
run_json sign kj --in "$T/missing-$bad"
run_json sign kj --in "$T/msg"
run_json csr kj --subject "CN=$uml,O=$bad"
run_json csr kj --subject "CN=$uml"
run_json csr kj --subject "$uml$bad=x"
run_json trustpoint create tj --generate p256 --subject "CN=$uml" --revocation "crl ocsp none"
[ "$(json_get 'd["revocation"]' < "$T/j.out")" = crl,ocsp,none ] || { cat "$T/j.out" >&2; fail "Cisco's 'crl ocsp none' was not taken as a list"; }
run_json trustpoint create tbad --generate p256 --subject "CN=x" --revocation "crl $bad"
run_json trustpoint list
run_json trustpoint show tj
grep -q "$uml" "$T/j.out" || fail "trustpoint show --json lost the non-ASCII subject"
run_json trustpoint enroll tj
run_json trustpoint export tj
run_json trustpoint set tj --revocation "ocsp crl"
ok "show after set" kh --json trustpoint show tj
[ "$(json_get 'd["revocation"]' < "$T/ok.out")" = ocsp,crl ] || fail "'ocsp crl' was not taken as a list"
run_json trustpoint regenerate tj
run_json trustpoint authenticate tj --ca "$T/ca.pem" --fingerprint 00
run_json trustpoint import tj --cert "$T/junk"
run_json trustpoint show tj --csr
run_json trustpoint discard-csr tj
run_json trustpoint acme-rollover tj
run_json trustpoint acme-deactivate tj --yes
run_json trustpoint acme-eab tj --eab-kid kid-1 --eab-hmac-file "$T/msg"
run_json truststore add sj "$T/ca.pem"
run_json truststore list
run_json truststore list sj
run_json truststore verify sj "$T/leaf.pem"
run_json truststore verify sj "$T/leaf.pem" --host "$uml$bad"
run_json truststore set sj --revocation "crl none"
run_json truststore create sj2
run_json truststore show sj 0000
run_json truststore export sj --format pkcs7
run_json truststore delete sj2
run_json crl import sj "$T/junk"
run_json crl list
run_json crl list sj
run_json crl remove sj 0000
run_json truststore set sj --min-rsa-bits 3072 --policy 2.5.29.32.0
run_json truststore verify sj "$T/leaf.pem" --policy 1.2.3 --require-explicit-policy
run_json crl remove sj "CN=nobody"
run_json cert check "$T/leaf.pem" --store sj
run_json cert expiring --all
run_json cert monitor
run_json audit show --limit 3
run_json audit verify
run_json policy grant kj "user:$bad"
run_json policy grant kj uid:4242
run_json policy list
run_json policy revoke kj uid:4242
run_json truststore remove sj 0000
run_json trustpoint delete tj
run_json key delete kj --force
run_json key show "k$bad"
run_json key frob
python3 - "$T/json" "$JSON_RUNS" <<'PY' || fail "--json output that is not one valid JSON document"
import json, sys
d, n, errors = sys.argv[1], int(sys.argv[2]), 0
for i in range(1, n + 1):
    args = open("%s/%d.args" % (d, i), "rb").read().decode("utf-8", "replace")
    rc = int(open("%s/%d.rc" % (d, i)).read())
    def load(ext):
        # Strict: UTF-8 and one document (json.tool's own rules).
        return json.loads(open("%s/%d.%s" % (d, i, ext), "rb").read().decode("utf-8"))
    try:
        out = load("out")
        if rc != 0:
            errors += 1
            # The error document on stderr too (a failed verification has
            # only its result document, on stdout).
            if open("%s/%d.err" % (d, i), "rb").read().strip():
                load("err")
            e = out.get("error")
            if isinstance(e, dict) and e["exit_status"] != rc:
                raise ValueError("exit_status %s, exit %d" % (e["exit_status"], rc))
    except (ValueError, UnicodeDecodeError, KeyError) as ex:
        sys.exit("--json %s(exit %d): %s" % (args, rc, ex))
print("[test_cli.sh] --json: %d runs, %d of them errors, all valid JSON" % (n, errors), file=sys.stderr)
PY
# Every command of `keyhold help` ran with --json above.
while read -r -a words; do
  grep -q "^run_json ${words[*]}\( \|$\)" "$0" || fail "no --json run of '${words[*]}'"
done < "$T/verbs"

# ---- a stock protobuf client: error answers quoting long non-ASCII text ----
PY=python3
$PY -c 'import google.protobuf' 2> /dev/null || PY=/usr/bin/python3
$PY -c 'import google.protobuf' || fail "python3-protobuf is missing (scripts/install-deps.sh)"
command -v protoc > /dev/null || fail "protoc is missing (protobuf-compiler, scripts/install-deps.sh)"
mkdir -p "$T/pb"
protoc -I "$KH_SRC/proto" --python_out="$T/pb" "$KH_SRC/proto/keyhold.proto" || fail "protoc"
ok "key for the protobuf client" kh key generate cli-pb --type p256
$PY "$KH_SRC/tests/integration/kh_pb_client.py" --socket "$SOCK" --gen "$T/pb" > "$T/pb.json" \
  || fail "the protobuf client failed"
$PY - "$T/pb.json" <<'PY' || { cat "$T/pb.json" >&2; fail "a stock protobuf client could not parse an error answer"; }
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
assert len(d) == 3, d
for name, r in d.items():
    assert r["parsed"], (name, r)
    assert r["code"] == 3, (name, r)                 # INVALID_ARGUMENT
    assert "\u20ac" in r["message"], (name, r)        # the quoted text, cut at a character
PY

# ---- unavailable, and status/health when the token is away ----
tokendir=$(sed -n 's/^directories.tokendir *= *//p' "$SOFTHSM2_CONF" 2> /dev/null || true)
if [ "$KH_TOKEN" = softhsm ] && [ -d "$tokendir" ]; then
  mv "$tokendir" "$tokendir.away"
  expect_err UNAVAILABLE "sign while the token is away" kh sign k1 --in "$T/msg" --out "$T/x"
  rc=0; kh --json status > "$T/st.json" 2> /dev/null || rc=$?
  hrc=0; kh health > "$T/h.txt" 2> /dev/null || hrc=$?
  $PY - "$T/st.json" "$rc" "$T/h.txt" "$hrc" <<'PY' || fail "status/health exit status disagrees with the state"
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
healthy = d["state"] == "OPERATIONAL" and d["token"]["available"]
want = 0 if healthy else 5
h = open(sys.argv[3], encoding="utf-8").read()
print("status: state %s, token available %s, exit %s; health exit %s: %s" %
      (d["state"], d["token"]["available"], sys.argv[2], sys.argv[4], h.strip()), file=sys.stderr)
assert int(sys.argv[2]) == want and int(sys.argv[4]) == want
assert h.startswith("healthy: " if healthy else "unhealthy: ")
PY
  mv "$tokendir.away" "$tokendir"
fi

kh_stop
expect_err UNAVAILABLE "unavailable: keyholdd stopped" kh key list
expect_rc 5 "status with keyholdd stopped" kh status
expect_rc 5 "health with keyholdd stopped" kh health
if [ -s "$T/rc.out" ] || [ "$(wc -l < "$T/rc.err")" -ne 1 ]; then fail "health with keyholdd stopped: not one line"; fi
rc=0; kh --json health > "$T/h.json" 2> /dev/null || rc=$?
[ "$rc" -eq 5 ] || fail "health --json with keyholdd stopped exited $rc"
jsonok "health --json, stopped" "$T/h.json"
log "PASS"
