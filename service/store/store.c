/* store.c: the SQLite database under state_dir: open, pragmas (WAL,
 * synchronous=FULL, foreign keys), versioned migrations, transactions and
 * the small statement helpers store_tp.c and store_ts.c share. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kh_log.h"
#include "kh_util.h"
#include "store_int.h"
#include "store/store_dir.h"

/* Migration N takes the schema from version N-1 to N. Append only: a
 * released migration is never edited. Columns that later issues need
 * (revocation policy, CRL source and next update, certificate expiry) are
 * already here so that expiry monitoring and fetched CRLs add rows, not
 * shapes. */
static const char *const store_migrations[STORE_SCHEMA_VERSION] = {
	/* 1 */
	"CREATE TABLE trustpoints ("
	"  name TEXT PRIMARY KEY,"
	"  key_name TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  fqdn TEXT NOT NULL DEFAULT '',"
	"  san TEXT NOT NULL DEFAULT '',"
	"  eku TEXT NOT NULL DEFAULT '',"
	"  enrollment TEXT NOT NULL CHECK (enrollment IN ('self', 'terminal')),"
	"  revocation TEXT NOT NULL DEFAULT 'none',"
	"  digest INTEGER NOT NULL DEFAULT 0,"
	"  validity_days INTEGER NOT NULL DEFAULT 365,"
	"  cert BLOB,"
	"  cert_not_after INTEGER,"
	"  csr BLOB,"
	"  csr_key TEXT,"
	"  csr_created INTEGER,"
	"  next_key TEXT,"
	"  key_serial INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL);"
	"CREATE TABLE trustpoint_certs ("
	"  trustpoint TEXT NOT NULL REFERENCES trustpoints(name) ON DELETE CASCADE,"
	"  role TEXT NOT NULL CHECK (role IN ('ca', 'chain')),"
	"  idx INTEGER NOT NULL,"
	"  der BLOB NOT NULL,"
	"  PRIMARY KEY (trustpoint, role, idx));"
	"CREATE TABLE managed_keys ("
	"  key_name TEXT PRIMARY KEY,"
	"  trustpoint TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('live', 'retired')),"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE truststores ("
	"  name TEXT PRIMARY KEY,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE truststore_certs ("
	"  store TEXT NOT NULL REFERENCES truststores(name) ON DELETE CASCADE,"
	"  fingerprint TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  cn TEXT NOT NULL,"
	"  self_signed INTEGER NOT NULL,"
	"  not_after INTEGER NOT NULL,"
	"  der BLOB NOT NULL,"
	"  added INTEGER NOT NULL,"
	"  PRIMARY KEY (store, fingerprint));"
	"CREATE TABLE crls ("
	"  store TEXT NOT NULL REFERENCES truststores(name) ON DELETE CASCADE,"
	"  issuer_key TEXT NOT NULL,"
	"  issuer TEXT NOT NULL,"
	"  fingerprint TEXT NOT NULL,"
	"  this_update INTEGER NOT NULL,"
	"  next_update INTEGER NOT NULL DEFAULT 0,"
	"  der BLOB NOT NULL,"
	"  source TEXT NOT NULL DEFAULT 'import',"
	"  imported INTEGER NOT NULL,"
	"  PRIMARY KEY (store, issuer_key));",
	/* 2: revocation policies, the CRL and OCSP caches, expiry notices and
	 * renewal settings (docs/REVOCATION.md). Policies live in their own
	 * tables, deleted with their trustpoint or store. */
	"CREATE TABLE truststore_policy ("
	"  store TEXT PRIMARY KEY REFERENCES truststores(name) ON DELETE CASCADE,"
	"  revocation TEXT NOT NULL DEFAULT 'none',"
	"  ocsp_url TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE trustpoint_policy ("
	"  trustpoint TEXT PRIMARY KEY REFERENCES trustpoints(name) ON DELETE CASCADE,"
	"  ocsp_url TEXT NOT NULL DEFAULT '',"
	"  renew_at INTEGER NOT NULL DEFAULT 0 CHECK (renew_at BETWEEN 0 AND 99),"
	"  renew_regenerate INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE crl_cache ("
	"  url TEXT PRIMARY KEY,"
	"  issuer TEXT NOT NULL,"
	"  this_update INTEGER NOT NULL,"
	"  next_update INTEGER NOT NULL,"
	"  der BLOB NOT NULL,"
	"  fetched INTEGER NOT NULL);"
	"CREATE TABLE ocsp_cache ("
	"  cert_id TEXT PRIMARY KEY,"
	"  responder TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('good', 'revoked')),"
	"  reason INTEGER NOT NULL DEFAULT -1,"
	"  revoked_at INTEGER NOT NULL DEFAULT 0,"
	"  this_update INTEGER NOT NULL,"
	"  next_update INTEGER NOT NULL,"
	"  der BLOB NOT NULL,"
	"  fetched INTEGER NOT NULL);"
	"CREATE TABLE expiry_notices ("
	"  fingerprint TEXT PRIMARY KEY,"
	"  subject TEXT NOT NULL,"
	"  not_after INTEGER NOT NULL,"
	"  first_notified INTEGER NOT NULL,"
	"  last_notified INTEGER NOT NULL,"
	"  count INTEGER NOT NULL);",
	/* 3: the audit log's anchor (service/audit/audit_anchor.c): one row. */
	"CREATE TABLE audit_anchor ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  value TEXT NOT NULL);",
	/* 4: a trust store's path validation settings (docs/PKI.md): the
	 * initial policy set (space-separated OIDs; empty: anyPolicy), the
	 * three initial inhibits and the key strength floor. No row: the
	 * defaults. */
	"CREATE TABLE truststore_validation ("
	"  store TEXT PRIMARY KEY REFERENCES truststores(name) ON DELETE CASCADE,"
	"  policies TEXT NOT NULL DEFAULT '',"
	"  require_explicit_policy INTEGER NOT NULL DEFAULT 0,"
	"  inhibit_policy_mapping INTEGER NOT NULL DEFAULT 0,"
	"  inhibit_any_policy INTEGER NOT NULL DEFAULT 0,"
	"  min_rsa_bits INTEGER NOT NULL DEFAULT 2048,"
	"  min_ec_bits INTEGER NOT NULL DEFAULT 256,"
	"  allow_sha1 INTEGER NOT NULL DEFAULT 0);",
	/* 5: SCEP trustpoints (enrollment url, store_scep.c): the server URL,
	 * the challenge password until a certificate is issued, the RA
	 * certificate(s) GetCACert named besides the CA, and the outcome of
	 * the last enrollment. */
	"CREATE TABLE tp_scep ("
	"  name TEXT PRIMARY KEY REFERENCES trustpoints(name) ON DELETE CASCADE,"
	"  url TEXT NOT NULL,"
	"  challenge TEXT NOT NULL DEFAULT '',"
	"  ra BLOB,"
	"  status TEXT NOT NULL DEFAULT '');",
	/* 6: a trustpoint's ACME (RFC 8555) settings (service/pki/acme.c): the
	 * directory URL, the contact, the PEM CA bundle its TLS is verified
	 * with (empty: the system's), the token key of the account and the
	 * account URL (kid) once the account exists. */
	"CREATE TABLE trustpoint_acme ("
	"  trustpoint TEXT PRIMARY KEY REFERENCES trustpoints(name) ON DELETE CASCADE,"
	"  directory TEXT NOT NULL,"
	"  contact TEXT NOT NULL DEFAULT '',"
	"  ca_pem TEXT NOT NULL DEFAULT '',"
	"  account_key TEXT NOT NULL,"
	"  kid TEXT NOT NULL DEFAULT '');",
	/* 7: a SCEP request the CA holds (PENDING, RFC 8894 §3.3.3), polled by
	 * keyholdd with back-off (rpc/scep_poll.c), so a restart resumes it:
	 * the transactionID, messageType (19 PKCSReq, 17 RenewalReq), the key
	 * the request is for, the certificate that signed it (the answer is
	 * encrypted to it) and its key, the request's subject (DER, for the
	 * CertPoll's IssuerAndSubject), when it started, the next poll, the
	 * polls so far and the current wait. */
	"CREATE TABLE tp_scep_pending ("
	"  name TEXT PRIMARY KEY REFERENCES trustpoints(name) ON DELETE CASCADE,"
	"  txid TEXT NOT NULL,"
	"  msg_type INTEGER NOT NULL,"
	"  req_key TEXT NOT NULL,"
	"  signer BLOB NOT NULL,"
	"  signer_key TEXT NOT NULL,"
	"  subject BLOB NOT NULL,"
	"  started INTEGER NOT NULL,"
	"  next_poll INTEGER NOT NULL,"
	"  polls INTEGER NOT NULL DEFAULT 0,"
	"  wait INTEGER NOT NULL);",
	/* 8: revocation over time (service/revocation/rev_sched.c): a trust
	 * store's CRL URL and trusted third-party OCSP responder certificate, the result of the last fetch of every CRL source,
	 * and the last revocation state of every certificate keyhold holds and
	 * of every CRL it keeps (an event goes out when a state changes); a
	 * trustpoint's pending CA during a CA rollover (issue 16 item 4). */
	"CREATE TABLE truststore_crl_url ("
	"  store TEXT PRIMARY KEY REFERENCES truststores(name) ON DELETE CASCADE,"
	"  url TEXT NOT NULL);"
	"CREATE TABLE crl_fetch ("
	"  url TEXT PRIMARY KEY,"
	"  fetched INTEGER NOT NULL,"
	"  ok INTEGER NOT NULL,"
	"  result TEXT NOT NULL);"
	"CREATE TABLE truststore_ocsp_signer ("
	"  store TEXT PRIMARY KEY REFERENCES truststores(name) ON DELETE CASCADE,"
	"  der BLOB NOT NULL);"
	"CREATE TABLE trustpoint_pending_ca ("
	"  trustpoint TEXT PRIMARY KEY REFERENCES trustpoints(name) ON DELETE CASCADE,"
	"  der BLOB NOT NULL);"
	"CREATE TABLE revocation_state ("
	"  id TEXT PRIMARY KEY,"
	"  status TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  held_by TEXT NOT NULL,"
	"  detail TEXT NOT NULL,"
	"  checked INTEGER NOT NULL,"
	"  changed INTEGER NOT NULL);",
	/* 9: ACME renewal by the expiry monitor (failures in a row, the last
	 * error, when it tries again: a bounded back-off), the webroot http-01
	 * writes into instead of keyholdd's responder, and the external
	 * account binding (kid and MAC key, RFC 8555 §7.3.4) kept until the
	 * account exists, then wiped; the new account key of a key rollover
	 * between the request and its answer (a crash there is resolved by
	 * asking the server which key it holds). */
	"ALTER TABLE trustpoint_acme ADD COLUMN renew_failures INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE trustpoint_acme ADD COLUMN renew_error TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE trustpoint_acme ADD COLUMN renew_next INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE trustpoint_acme ADD COLUMN webroot TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE trustpoint_acme ADD COLUMN eab_kid TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE trustpoint_acme ADD COLUMN eab_key BLOB;"
	"ALTER TABLE trustpoint_acme ADD COLUMN account_key_next TEXT NOT NULL DEFAULT '';",
	/* 10: several keyholdd nodes as one service (docs/CLUSTER.md,
	 * store_cluster.c, store_grants.c): the nodes with their heartbeat,
	 * the lease of each scheduled role, a claim on each renewal (so no
	 * certificate is renewed twice), every node's signed audit
	 * checkpoints, the runtime key grants (they were STATE_DIR/key-grants)
	 * and the generation counters that tell a node its cache is stale.
	 * Portable SQL: the same statements run on PostgreSQL. */
	"CREATE TABLE cluster_nodes ("
	"  name TEXT PRIMARY KEY,"
	"  started INTEGER NOT NULL,"
	"  heartbeat INTEGER NOT NULL,"
	"  version TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('up', 'stopping')));"
	"CREATE TABLE cluster_leases ("
	"  role TEXT PRIMARY KEY,"
	"  holder TEXT NOT NULL,"
	"  acquired INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL);"
	"CREATE TABLE cluster_claims ("
	"  what TEXT NOT NULL,"
	"  version TEXT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  claimed INTEGER NOT NULL,"
	"  PRIMARY KEY (what, version));"
	"CREATE TABLE cluster_generations ("
	"  name TEXT PRIMARY KEY,"
	"  gen INTEGER NOT NULL);"
	"CREATE TABLE audit_checkpoints ("
	"  node TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  prev_seq INTEGER NOT NULL,"
	"  chain TEXT NOT NULL,"
	"  signed TEXT NOT NULL,"
	"  sig TEXT NOT NULL,"
	"  recorded INTEGER NOT NULL,"
	"  PRIMARY KEY (node, seq));"
	"CREATE TABLE key_grants ("
	"  key_name TEXT NOT NULL,"
	"  principal TEXT NOT NULL,"
	"  digests INTEGER NOT NULL DEFAULT 0,"
	"  paddings INTEGER NOT NULL DEFAULT 0,"
	"  display TEXT NOT NULL DEFAULT '',"
	"  created INTEGER NOT NULL,"
	"  PRIMARY KEY (key_name, principal));",
};

enum kh_err store_sql_err(struct store *st, struct kh_errbuf *e, int rc, const char *what)
{
	enum kh_err code = KH_E_INTERNAL;

	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		code = KH_E_UNAVAILABLE;
	else if (rc == SQLITE_FULL || rc == SQLITE_NOMEM)
		code = KH_E_RESOURCE_EXHAUSTED;
	else if (rc == SQLITE_READONLY || rc == SQLITE_CANTOPEN || rc == SQLITE_IOERR || rc == SQLITE_CORRUPT ||
		 rc == SQLITE_NOTADB)
		code = KH_E_DATA_LOSS;
	log_err("state database: %s: %s (%d)", what, st != NULL && st->db != NULL ? sqlite3_errmsg(st->db) : "",
		rc);
	return kh_err_set(e, code, "state database: %s failed: %s", what,
			  st != NULL && st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
}

enum kh_err store_prepare(struct store *st, const char *sql, sqlite3_stmt **out, struct kh_errbuf *e)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, out, NULL);

	if (rc != SQLITE_OK)
		return store_sql_err(st, e, rc, "preparing a statement");
	return KH_OK;
}

enum kh_err store_exec(struct store *st, const char *sql, struct kh_errbuf *e)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return store_sql_err(st, e, rc, sql);
	return KH_OK;
}

/* Runs a statement that returns no rows. */
enum kh_err store_step_done(struct store *st, sqlite3_stmt *s, const char *what, struct kh_errbuf *e)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE)
		return store_sql_err(st, e, rc, what);
	return KH_OK;
}

int store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	return sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

int store_bind_blob(sqlite3_stmt *s, int i, const struct kh_bytes *b)
{
	if (b == NULL || b->len == 0)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_blob(s, i, b->data, (int)b->len, SQLITE_TRANSIENT);
}

void store_col_text(sqlite3_stmt *s, int i, char *out, size_t outsz)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	kh_strlcpy(out, t != NULL ? (const char *)t : "", outsz);
}

enum kh_err store_col_blob(sqlite3_stmt *s, int i, struct kh_bytes *out)
{
	const void *p = sqlite3_column_blob(s, i);
	int n = sqlite3_column_bytes(s, i);

	out->data = NULL;
	out->len = 0;
	if (p == NULL || n <= 0)
		return KH_OK;
	out->data = malloc((size_t)n);
	if (out->data == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	memcpy(out->data, p, (size_t)n);
	out->len = (size_t)n;
	return KH_OK;
}

/* ---- open and migrate ---- */

static enum kh_err store_user_version(struct store *st, int *v, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	KH_TRY(store_prepare(st, "PRAGMA user_version", &s, e));
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW, store_sql_err(st, e, rc, "reading the schema version"));
	*v = sqlite3_column_int(s, 0);
out:
	sqlite3_finalize(s);
	return r;
}

static enum kh_err store_migrate(struct store *st, struct kh_errbuf *e)
{
	int r = KH_OK, v = 0;
	char sql[64];

	KH_TRY(store_user_version(st, &v, e));
	KH_ENSURE(v >= 0 && v <= STORE_SCHEMA_VERSION,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION,
			     "state database %s has schema version %d, newer than this keyholdd understands (%d); "
			     "run the keyholdd that wrote it or restore a backup",
			     st->path, v, STORE_SCHEMA_VERSION));
	/* Each step is one transaction: a crash leaves version N or N+1. */
	for (; v < STORE_SCHEMA_VERSION; v++) {
		KH_TRY(store_begin(st, e));
		r = store_exec(st, store_migrations[v], e);
		if (r == KH_OK) {
			snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
			r = store_exec(st, sql, e);
		}
		if (r != KH_OK) {
			store_rollback(st);
			goto out;
		}
		KH_TRY(store_commit(st, e));
		log_info("state database %s migrated to schema version %d", st->path, v + 1);
	}
	st->version = v;
out:
	return r;
}

enum kh_err store_open(const struct store_dir *sd, struct store **out, struct kh_errbuf *e)
{
	static const char *const companions[] = { STORE_FILE "-wal", STORE_FILE "-shm", STORE_FILE "-journal" };
	struct store *st = NULL;
	sqlite3_stmt *s = NULL;
	const unsigned char *mode;
	const char *dir = sd->path;
	int r = KH_OK, rc, fd = -1;
	struct stat sb;
	size_t n, i;

	/* Created (0600) or checked here, relative to state_dir and never
	 * through a link; SQLite then opens the same name, which only
	 * keyholdd's user or root can replace (state_dir's checks). An
	 * existing file is checked without opening it: closing a descriptor
	 * of the file would drop every POSIX lock this process holds on it,
	 * those of the connections already open (PKI state, audit anchor,
	 * grants, cluster) included, and a sqlite3 next to keyholdd could
	 * then checkpoint and delete the WAL under them. */
	if (fstatat(sd->fd, STORE_FILE, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		KH_TRY(store_dir_check(sd, STORE_FILE, e));
		if ((sb.st_mode & 077) != 0 && fchmodat(sd->fd, STORE_FILE, sb.st_mode & 0700, 0) != 0)
			log_warn("cannot restrict %s/%s to its owner: %s", dir, STORE_FILE, strerror(errno));
	} else {
		KH_TRY(store_dir_openat(sd, STORE_FILE, O_RDWR | O_CREAT, &fd, e));
		close(fd);
	}
	for (i = 0; i < sizeof(companions) / sizeof(companions[0]); i++)
		KH_TRY(store_dir_check(sd, companions[i], e));
	st = calloc(1, sizeof(*st));
	KH_ENSURE(st != NULL, KH_E_RESOURCE_EXHAUSTED);
	n = strlen(dir) + sizeof("/" STORE_FILE);
	st->path = malloc(n);
	KH_ENSURE(st->path != NULL, KH_E_RESOURCE_EXHAUSTED);
	snprintf(st->path, n, "%s/%s", dir, STORE_FILE);
	rc = sqlite3_open_v2(st->path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	KH_ENSURE(rc == SQLITE_OK, kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot open the state database %s: %s",
					      st->path, st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc)));
	sqlite3_busy_timeout(st->db, 5000);
	sqlite3_extended_result_codes(st->db, 0);
	/* WAL: readers never block the writer, and a commit is one append. */
	KH_TRY(store_prepare(st, "PRAGMA journal_mode = WAL", &s, e));
	rc = sqlite3_step(s);
	mode = rc == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
	KH_ENSURE(mode != NULL && strcmp((const char *)mode, "wal") == 0,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the state database %s cannot use WAL (is %s on a network file system?)",
			     st->path, dir));
	sqlite3_finalize(s);
	s = NULL;
	/* FULL: a commit survives power loss, not just a crash of keyholdd. */
	KH_TRY(store_exec(st, "PRAGMA synchronous = FULL", e));
	KH_TRY(store_exec(st, "PRAGMA foreign_keys = ON", e));
	KH_TRY(store_migrate(st, e));
	*out = st;
	st = NULL;
out:
	sqlite3_finalize(s);
	store_close(st);
	return r;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
		log_warn("state database: close: %s", sqlite3_errmsg(st->db));
	free(st->path);
	free(st);
}

int store_schema_version(struct store *st)
{
	return st->version;
}

/* ---- transactions ---- */

enum kh_err store_begin(struct store *st, struct kh_errbuf *e)
{
	/* IMMEDIATE takes the write lock now, so the commit cannot fail on a
	 * lock another connection (sqlite3 CLI, backup) holds. */
	return store_exec(st, "BEGIN IMMEDIATE", e);
}

enum kh_err store_commit(struct store *st, struct kh_errbuf *e)
{
	int rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		store_rollback(st);
		return store_sql_err(st, e, rc, "commit");
	}
	return KH_OK;
}

void store_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db) && sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_err("state database: rollback: %s", sqlite3_errmsg(st->db));
}
