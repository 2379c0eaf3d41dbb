/* store.c: the state database: the versioned migrations, the one runner
 * that applies them on every backend, open and close, transactions. The
 * SQL runs through the driver (store_db.h; store_sqlite.c). */
#include <stdlib.h>
#include <string.h>

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
	"  state TEXT NOT NULL CHECK (state IN ('up', 'stopping')),"
	"  audit_key TEXT NOT NULL DEFAULT '');"
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
	"CREATE TABLE audit_anchors ("
	"  node TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL);"
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

/* ---- open and migrate ---- */

/* One runner for every backend: the driver's lock keeps two nodes from
 * migrating at once (the version is read again under it), each step is
 * one transaction that also writes the new version, so a crash leaves
 * version N or N+1; the driver may translate a step's SQL into its types
 * (never its meaning: a released migration is never edited). */
static enum kh_err store_migrate(struct store *st, struct kh_errbuf *e)
{
	char *tr = NULL;
	int r = KH_OK, v = 0;
	bool locked = false;

	KH_TRY(st->drv->migrate_lock(st, true, e));
	locked = true;
	KH_TRY(st->drv->version_get(st, &v, e));
	KH_ENSURE(v >= 0 && v <= STORE_SCHEMA_VERSION,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION,
			     "state database %s has schema version %d, newer than this keyholdd understands (%d); "
			     "run the keyholdd that wrote it or restore a backup",
			     st->path, v, STORE_SCHEMA_VERSION));
	for (; v < STORE_SCHEMA_VERSION; v++) {
		KH_TRY(st->drv->translate(v + 1, store_migrations[v], &tr, e));
		KH_TRY(store_begin(st, e));
		r = store_exec(st, tr != NULL ? tr : store_migrations[v], e);
		if (r == KH_OK)
			r = st->drv->version_set(st, v + 1, e);
		free(tr);
		tr = NULL;
		if (r != KH_OK) {
			store_rollback(st);
			goto out;
		}
		KH_TRY(store_commit(st, e));
		log_info("state database %s migrated to schema version %d", st->path, v + 1);
	}
	st->version = v;
out:
	free(tr);
	if (locked) {
		struct kh_errbuf ign = { 0 };

		if (st->drv->migrate_lock(st, false, &ign) != KH_OK)
			log_warn("state database %s: releasing the migration lock: %s", st->path, ign.msg);
	}
	return r;
}

enum kh_err store_open(const struct store_dir *sd, struct store **out, struct kh_errbuf *e)
{
	struct store *st = NULL;
	int r = KH_OK;

	st = calloc(1, sizeof(*st));
	KH_ENSURE(st != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(store_sqlite_open(st, sd, e));
	KH_TRY(store_migrate(st, e));
	*out = st;
	st = NULL;
out:
	store_close(st);
	return r;
}

enum kh_err store_open_cfg(const struct store_cfg *cfg, const struct store_dir *sd, struct store **out,
			   struct kh_errbuf *e)
{
	struct store *st = NULL;
	int r = KH_OK;

	if (cfg == NULL || cfg->backend == STORE_SQLITE)
		return store_open(sd, out, e);
	st = calloc(1, sizeof(*st));
	KH_ENSURE(st != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(store_pg_open(st, cfg, e));
	KH_TRY(store_migrate(st, e));
	*out = st;
	st = NULL;
out:
	store_close(st);
	return r;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->drv != NULL)
		st->drv->close(st);
	free(st->path);
	free(st);
}

int store_schema_version(struct store *st)
{
	return st->version;
}

const char *store_backend(const struct store *st)
{
	return st->drv->name;
}

/* ---- transactions ---- */

enum kh_err store_begin(struct store *st, struct kh_errbuf *e)
{
	return st->drv->begin(st, e);
}

enum kh_err store_commit(struct store *st, struct kh_errbuf *e)
{
	return st->drv->commit(st, e);
}

void store_rollback(struct store *st)
{
	st->drv->rollback(st);
}

/* ---- notifications ---- */

static bool store_topic_ok(const char *t)
{
	size_t i, n = strlen(t);

	if (n == 0 || n > STORE_TOPIC_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= '0' && t[i] <= '9') ||
		      t[i] == '.' || t[i] == '_' || t[i] == ':' || t[i] == '-'))
			return false;
	return true;
}

enum kh_err store_notify(struct store *st, const char *topic, struct kh_errbuf *e)
{
	if (!store_topic_ok(topic))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "notification topic '%.64s' is not [A-Za-z0-9._:-]{1,%d}",
				  topic, STORE_TOPIC_MAX);
	if (st->drv != &store_pg_driver)
		return KH_OK;
	return store_pg_notify(st, topic, e);
}

enum kh_err store_listen(struct store *st, store_listen_cb *cb, void *arg, struct kh_errbuf *e)
{
	if (st->drv != &store_pg_driver)
		return KH_OK;
	return store_pg_listen(st, cb, arg, e);
}
