/* test_store.c: the state layer (service/store/) on SQLite in a temp dir,
 * and on PostgreSQL when KH_TEST_PG_DSN names a server (test_store_pg.sh
 * starts one): migrations and the schema version, trustpoints with their
 * certificates, managed keys, trust stores with certificates and CRLs,
 * transactions (a rollback leaves nothing), a newer schema refused, data
 * kept over a close and reopen; what each backend refuses at open; on
 * PostgreSQL, notifications between handles. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <time.h>

#include "kh_util.h"
#include "store/store.h"
#include "store/store_db.h"

/* The schema after this build's, as text for the SQL and the message. */
#define STORE_SCHEMA_VERSION_NEXT 11
#define KH_STR_(x) #x
#define KH_STR(x) KH_STR_(x)
_Static_assert(STORE_SCHEMA_VERSION_NEXT == STORE_SCHEMA_VERSION + 1, "STORE_SCHEMA_VERSION_NEXT follows the schema");
#include "store/store_dir.h"

static char dir[64];

static void raw_exec(const char *sql);
static const char *pg_dsn;

static int setup(void **state)
{
	(void)state;
	memcpy(dir, "/tmp/kh-store.XXXXXX", 21);
	/* Every test starts from an empty database. */
	if (pg_dsn != NULL)
		raw_exec("SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* KH_TEST_PG_DSN: the PostgreSQL database the tests run on (emptied
 * before each); NULL: SQLite in dir. */

/* store_open on state_dir d, checked as keyholdd checks it (store_dir.h);
 * the store keeps no reference to the directory. */
static enum kh_err store_open_dir(const char *d, struct store **st, struct kh_errbuf *e)
{
	struct store_dir *sd = NULL;
	struct store_cfg cfg = { .backend = STORE_POSTGRESQL, .dsn = pg_dsn, .owner = geteuid() };
	enum kh_err r;

	r = store_dir_open(d, geteuid(), &sd, e);
	if (r != KH_OK)
		return r;
	if (pg_dsn != NULL)
		r = store_open_cfg(&cfg, sd, st, e);
	else
		r = store_open(sd, st, e);
	store_dir_free(sd);
	return r;
}

static struct store *open_store(void)
{
	struct kh_errbuf e = { 0 };
	struct store *st = NULL;

	assert_int_equal(store_open_dir(dir, &st, &e), KH_OK);
	assert_non_null(st);
	return st;
}

static PGconn *pg_raw(void)
{
	PGconn *c = PQconnectdb(pg_dsn);

	assert_non_null(c);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot connect to %s: %s", pg_dsn, PQerrorMessage(c));
	return c;
}

/* Runs sql on the database directly (another connection). */
static void raw_exec(const char *sql)
{
	char path[128];
	sqlite3 *db = NULL;

	if (pg_dsn != NULL) {
		PGconn *c = pg_raw();
		PGresult *res = PQexec(c, sql);

		if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
			fail_msg("%s: %s", sql, PQerrorMessage(c));
		PQclear(res);
		PQfinish(c);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static int raw_int(const char *sql)
{
	char path[128];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int v;

	if (pg_dsn != NULL) {
		PGconn *c = pg_raw();
		PGresult *res = PQexec(c, sql);

		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1)
			fail_msg("%s: %s", sql, PQerrorMessage(c));
		v = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		PQfinish(c);
		return v;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* The schema version as each backend keeps it. */
static int raw_version(void)
{
	return raw_int(pg_dsn != NULL ? "SELECT version FROM keyhold_schema" : "PRAGMA user_version");
}

static void raw_set_version(int v)
{
	char sql[96];

	if (pg_dsn != NULL)
		snprintf(sql, sizeof(sql), "UPDATE keyhold_schema SET version = %d", v);
	else
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
	raw_exec(sql);
}

/* Whether a table exists. */
static int raw_tables(const char *in_list)
{
	char sql[512];

	if (pg_dsn != NULL)
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN %s",
			 in_list);
	else
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN %s",
			 in_list);
	return raw_int(sql);
}

static struct kh_bytes bytes(const char *s)
{
	struct kh_bytes b;

	b.len = strlen(s);
	b.data = malloc(b.len);
	assert_non_null(b.data);
	memcpy(b.data, s, b.len);
	return b;
}

static void assert_bytes(const struct kh_bytes *b, const char *want)
{
	assert_int_equal(b->len, strlen(want));
	assert_memory_equal(b->data, want, b->len);
}

static void make_tp(struct store_tp *t, const char *name)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->key, sizeof(t->key), "%s-key", name);
	snprintf(t->subject, sizeof(t->subject), "CN=%s.example.com,O=Example", name);
	snprintf(t->fqdn, sizeof(t->fqdn), "%s.example.com", name);
	snprintf(t->san, sizeof(t->san), "DNS:%s.example.com", name);
	snprintf(t->eku, sizeof(t->eku), "serverAuth,clientAuth");
	t->enrollment = KH_ENROLL_TERMINAL;
	snprintf(t->revocation, sizeof(t->revocation), "crl");
	t->digest = KH_DIGEST_SHA384;
	t->validity_days = 90;
	t->csr = bytes("csr-der");
	snprintf(t->csr_key, sizeof(t->csr_key), "%s-key", name);
	t->csr_created = 1700000000;
	t->key_serial = 3;
	t->created = 1600000000;
	t->updated = 1600000001;
	t->n_ca = 2;
	t->ca = calloc(2, sizeof(*t->ca));
	assert_non_null(t->ca);
	t->ca[0] = bytes("ca-0");
	t->ca[1] = bytes("ca-1");
}

static void test_open_migrates(void **state)
{
	struct store *st;
	struct stat sb;
	char path[128];

	(void)state;
	st = open_store();
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
	assert_int_equal(raw_version(), STORE_SCHEMA_VERSION);
	assert_int_equal(raw_tables("('trustpoints', 'trustpoint_certs', 'managed_keys', 'truststores', "
				    "'truststore_certs', 'crls', 'truststore_policy', 'trustpoint_policy', "
				    "'crl_cache', 'ocsp_cache', 'expiry_notices')"),
			 11);
	if (pg_dsn == NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
	/* A second open finds the schema current and keeps it. */
	st = open_store();
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
}

static void test_migrates_from_v1(void **state)
{
	struct store *st;

	(void)state;
	st = open_store();
	store_close(st);
	/* Back to a version-1 database: migrations 2 to the last run again. */
	raw_exec("DROP TABLE truststore_policy; DROP TABLE trustpoint_policy; DROP TABLE crl_cache; "
		 "DROP TABLE ocsp_cache; DROP TABLE expiry_notices; DROP TABLE audit_anchor; "
		 "DROP TABLE truststore_validation; DROP TABLE tp_scep; DROP TABLE trustpoint_acme; DROP TABLE tp_scep_pending; "
		 "DROP TABLE truststore_crl_url; DROP TABLE crl_fetch; DROP TABLE revocation_state; "
		 "DROP TABLE truststore_ocsp_signer; DROP TABLE trustpoint_pending_ca; "
		 "DROP TABLE cluster_nodes; DROP TABLE cluster_leases; DROP TABLE cluster_claims; "
		 "DROP TABLE cluster_generations; DROP TABLE audit_checkpoints; DROP TABLE key_grants; "
		 "DROP TABLE audit_anchors;");
	raw_set_version(1);
	st = open_store();
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
	assert_int_equal(raw_tables("('expiry_notices')"), 1);
}

static void test_newer_schema_refused(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st = NULL;

	(void)state;
	st = open_store();
	store_close(st);
	raw_set_version(STORE_SCHEMA_VERSION_NEXT);
	st = NULL;
	assert_int_equal(store_open_dir(dir, &st, &e), KH_E_FAILED_PRECONDITION);
	assert_null(st);
	assert_non_null(strstr(e.msg, "schema version " KH_STR(STORE_SCHEMA_VERSION_NEXT) ", newer than"));
	/* Left as it was. */
	assert_int_equal(raw_version(), STORE_SCHEMA_VERSION + 1);
}

static void test_trustpoints(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st;
	struct store_tp t, got;
	char (*names)[KH_NAME_MAX + 1] = NULL;
	char user[KH_NAME_MAX + 1];
	size_t n = 0;

	(void)state;
	st = open_store();
	make_tp(&t, "web");
	assert_int_equal(store_tp_insert(st, &t, &e), KH_OK);
	assert_int_equal(store_tp_insert(st, &t, &e), KH_E_ALREADY_EXISTS);
	store_tp_clear(&t);
	make_tp(&t, "api");
	assert_int_equal(store_tp_insert(st, &t, &e), KH_OK);
	store_tp_clear(&t);

	memset(&got, 0, sizeof(got));
	assert_int_equal(store_tp_get(st, "web", &got, &e), KH_OK);
	assert_string_equal(got.name, "web");
	assert_string_equal(got.key, "web-key");
	assert_string_equal(got.subject, "CN=web.example.com,O=Example");
	assert_string_equal(got.fqdn, "web.example.com");
	assert_string_equal(got.san, "DNS:web.example.com");
	assert_string_equal(got.eku, "serverAuth,clientAuth");
	assert_int_equal(got.enrollment, KH_ENROLL_TERMINAL);
	assert_string_equal(got.revocation, "crl");
	assert_int_equal(got.digest, KH_DIGEST_SHA384);
	assert_int_equal(got.validity_days, 90);
	assert_int_equal(got.cert.len, 0);
	assert_bytes(&got.csr, "csr-der");
	assert_string_equal(got.csr_key, "web-key");
	assert_int_equal(got.csr_created, 1700000000);
	assert_int_equal(got.key_serial, 3);
	assert_int_equal(got.created, 1600000000);
	assert_int_equal(got.updated, 1600000001);
	assert_int_equal(got.n_ca, 2);
	assert_bytes(&got.ca[0], "ca-0");
	assert_bytes(&got.ca[1], "ca-1");
	assert_int_equal(got.n_chain, 0);

	/* Update: identity certificate and chain in, CSR out, one CA. */
	kh_bytes_clear(&got.csr);
	got.csr_key[0] = '\0';
	got.cert = bytes("cert-der");
	got.cert_not_after = 1800000000;
	kh_bytes_clear(&got.ca[1]);
	got.n_ca = 1;
	got.chain = calloc(1, sizeof(*got.chain));
	assert_non_null(got.chain);
	got.chain[0] = bytes("chain-0");
	got.n_chain = 1;
	snprintf(got.next_key, sizeof(got.next_key), "web-key-4");
	assert_int_equal(store_tp_update(st, &got, &e), KH_OK);
	store_tp_clear(&got);
	assert_int_equal(store_tp_get(st, "web", &got, &e), KH_OK);
	assert_bytes(&got.cert, "cert-der");
	assert_int_equal(got.cert_not_after, 1800000000);
	assert_int_equal(got.csr.len, 0);
	assert_int_equal(got.n_ca, 1);
	assert_bytes(&got.ca[0], "ca-0");
	assert_int_equal(got.n_chain, 1);
	assert_bytes(&got.chain[0], "chain-0");
	assert_string_equal(got.next_key, "web-key-4");

	/* Key users: key, rollover key; none for a stranger. */
	assert_int_equal(store_tp_key_user(st, "web-key-4", user, &e), KH_OK);
	assert_string_equal(user, "web");
	assert_int_equal(store_tp_key_user(st, "api-key", user, &e), KH_OK);
	assert_string_equal(user, "api");
	assert_int_equal(store_tp_key_user(st, "nobody", user, &e), KH_OK);
	assert_string_equal(user, "");

	/* Update of an absent trustpoint. */
	snprintf(got.name, sizeof(got.name), "ghost");
	assert_int_equal(store_tp_update(st, &got, &e), KH_E_NOT_FOUND);
	store_tp_clear(&got);

	assert_int_equal(store_tp_names(st, &names, &n, &e), KH_OK);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "api");
	assert_string_equal(names[1], "web");
	free(names);

	assert_int_equal(store_tp_delete(st, "web", &e), KH_OK);
	assert_int_equal(store_tp_delete(st, "web", &e), KH_E_NOT_FOUND);
	assert_int_equal(store_tp_get(st, "web", &got, &e), KH_E_NOT_FOUND);
	store_close(st);
	/* Its certificates went with it (ON DELETE CASCADE). */
	assert_int_equal(raw_int("SELECT count(*) FROM trustpoint_certs WHERE trustpoint = 'web'"), 0);
	assert_int_equal(raw_int("SELECT count(*) FROM trustpoint_certs WHERE trustpoint = 'api'"), 2);
}

static void test_managed_keys(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st;
	struct store_mkey m, *list = NULL;
	size_t n = 0;
	bool found = true;

	(void)state;
	st = open_store();
	assert_int_equal(store_mkey_get(st, "k1", &m, &found, &e), KH_OK);
	assert_false(found);
	assert_int_equal(store_mkey_add(st, "k2", "tp-b", &e), KH_OK);
	assert_int_equal(store_mkey_add(st, "k1", "tp-a", &e), KH_OK);
	assert_int_equal(store_mkey_get(st, "k1", &m, &found, &e), KH_OK);
	assert_true(found);
	assert_string_equal(m.key, "k1");
	assert_string_equal(m.trustpoint, "tp-a");
	assert_int_equal(m.state, STORE_MKEY_LIVE);
	assert_true(m.created > 1600000000);
	assert_int_equal(store_mkey_set_state(st, "k1", STORE_MKEY_RETIRED, &e), KH_OK);
	assert_int_equal(store_mkey_list(st, &list, &n, &e), KH_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].key, "k1");
	assert_int_equal(list[0].state, STORE_MKEY_RETIRED);
	assert_string_equal(list[1].key, "k2");
	assert_string_equal(list[1].trustpoint, "tp-b");
	assert_int_equal(list[1].state, STORE_MKEY_LIVE);
	free(list);
	assert_int_equal(store_mkey_remove(st, "k1", &e), KH_OK);
	assert_int_equal(store_mkey_get(st, "k1", &m, &found, &e), KH_OK);
	assert_false(found);
	list = NULL;
	assert_int_equal(store_mkey_list(st, &list, &n, &e), KH_OK);
	assert_int_equal(n, 1);
	free(list);
	store_close(st);
}

static void make_cert(struct store_ts_cert *c, char fpc, const char *cn, int64_t added)
{
	memset(c, 0, sizeof(*c));
	memset(c->fingerprint, fpc, KH_FP_HEX);
	snprintf(c->subject, sizeof(c->subject), "CN=%s", cn);
	snprintf(c->cn, sizeof(c->cn), "%s", cn);
	c->self_signed = true;
	c->not_after = 1900000000;
	c->der = bytes(cn);
	c->added = added;
}

/* Schema 7: a store's CRL URL and OCSP responder (none, set, cleared, gone
 * with the store), a
 * CRL fetch result, revocation states (put, replace, list, remove). */
static void test_revstate(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store_revstate v, *l = NULL;
	struct store_crl_fetch f, fg;
	struct store *st;
	char url[KH_URL_MAX + 1];
	bool found = true;
	size_t n = 0;

	(void)state;
	st = open_store();
	assert_int_equal(store_ts_create(st, "r", &e), KH_OK);
	assert_int_equal(store_ts_crl_url_get(st, "r", url, sizeof(url), &e), KH_OK);
	assert_string_equal(url, "");
	assert_int_equal(store_ts_crl_url_put(st, "r", "http://ca.example/r.crl", &e), KH_OK);
	assert_int_equal(store_ts_crl_url_get(st, "r", url, sizeof(url), &e), KH_OK);
	assert_string_equal(url, "http://ca.example/r.crl");
	assert_int_equal(store_ts_crl_url_put(st, "r", "", &e), KH_OK);
	assert_int_equal(store_ts_crl_url_get(st, "r", url, sizeof(url), &e), KH_OK);
	assert_string_equal(url, "");
	assert_int_equal(store_ts_crl_url_put(st, "r", "http://ca.example/r.crl", &e), KH_OK);
	{
		uint8_t d[3] = { 0x30, 0x01, 0x00 };
		struct kh_bytes in = { d, sizeof(d) }, none = { NULL, 0 }, got = { NULL, 0 };

		assert_int_equal(store_ts_ocsp_signer_get(st, "r", &got, &e), KH_OK);
		assert_int_equal(got.len, 0);
		assert_int_equal(store_ts_ocsp_signer_put(st, "r", &in, &e), KH_OK);
		assert_int_equal(store_ts_ocsp_signer_get(st, "r", &got, &e), KH_OK);
		assert_int_equal(got.len, sizeof(d));
		assert_memory_equal(got.data, d, sizeof(d));
		kh_bytes_clear(&got);
		assert_int_equal(store_ts_ocsp_signer_put(st, "r", &none, &e), KH_OK);
		assert_int_equal(store_ts_ocsp_signer_get(st, "r", &got, &e), KH_OK);
		assert_int_equal(got.len, 0);
		assert_int_equal(store_ts_ocsp_signer_put(st, "r", &in, &e), KH_OK);
	}
	assert_int_equal(store_ts_delete(st, "r", &e), KH_OK);
	assert_int_equal(raw_int("SELECT count(*) FROM truststore_crl_url"), 0);
	assert_int_equal(raw_int("SELECT count(*) FROM truststore_ocsp_signer"), 0);

	assert_int_equal(store_crl_fetch_get(st, "http://x/a.crl", &fg, &found, &e), KH_OK);
	assert_false(found);
	memset(&f, 0, sizeof(f));
	f.fetched = 42;
	f.ok = false;
	kh_strlcpy(f.result, "connection refused", sizeof(f.result));
	assert_int_equal(store_crl_fetch_put(st, "http://x/a.crl", &f, &e), KH_OK);
	assert_int_equal(store_crl_fetch_get(st, "http://x/a.crl", &fg, &found, &e), KH_OK);
	assert_true(found);
	assert_int_equal(fg.fetched, 42);
	assert_false(fg.ok);
	assert_string_equal(fg.result, "connection refused");

	memset(&v, 0, sizeof(v));
	kh_strlcpy(v.id, "cert:ab", sizeof(v.id));
	kh_strlcpy(v.status, "good", sizeof(v.status));
	v.checked = v.changed = 7;
	assert_int_equal(store_revstate_put(st, &v, &e), KH_OK);
	kh_strlcpy(v.status, "revoked", sizeof(v.status));
	v.checked = v.changed = 8;
	assert_int_equal(store_revstate_put(st, &v, &e), KH_OK);
	assert_int_equal(store_revstate_list(st, &l, &n, &e), KH_OK);
	assert_int_equal(n, 1);
	assert_string_equal(l[0].status, "revoked");
	assert_int_equal(l[0].changed, 8);
	free(l);
	l = NULL;
	assert_int_equal(store_revstate_remove(st, "cert:ab", &e), KH_OK);
	assert_int_equal(store_revstate_list(st, &l, &n, &e), KH_OK);
	assert_int_equal(n, 0);
	free(l);
	store_close(st);
}

/* A trust store's validation settings: defaults without a row, a round
 * trip of every field, gone with the store. */
static void test_ts_validation(void **state)
{
	struct kh_errbuf e = { 0 };
	struct kh_validation v, got;
	struct store *st;

	(void)state;
	st = open_store();
	assert_int_equal(store_ts_create(st, "pol", &e), KH_OK);
	assert_int_equal(store_ts_validation_get(st, "pol", &got, &e), KH_OK);
	assert_int_equal(got.n_policies, 0);
	assert_int_equal(got.min_rsa_bits, KH_FLOOR_RSA_DEFAULT);
	assert_int_equal(got.min_ec_bits, KH_FLOOR_EC_DEFAULT);
	assert_false(got.allow_sha1 || got.require_explicit_policy || got.inhibit_policy_mapping ||
		     got.inhibit_any_policy);
	kh_validation_default(&v);
	v.n_policies = 2;
	kh_strlcpy(v.policies[0], "2.16.840.1.101.3.2.1.48.1", sizeof(v.policies[0]));
	kh_strlcpy(v.policies[1], "1.3.6.1.4.1.55555.1.2", sizeof(v.policies[1]));
	v.require_explicit_policy = v.inhibit_policy_mapping = v.inhibit_any_policy = v.allow_sha1 = true;
	v.min_rsa_bits = 1024;
	v.min_ec_bits = 224;
	assert_int_equal(store_ts_validation_put(st, "pol", &v, &e), KH_OK);
	assert_int_equal(store_ts_validation_get(st, "pol", &got, &e), KH_OK);
	assert_int_equal(got.n_policies, 2);
	assert_string_equal(got.policies[0], v.policies[0]);
	assert_string_equal(got.policies[1], v.policies[1]);
	assert_true(got.require_explicit_policy && got.inhibit_policy_mapping && got.inhibit_any_policy && got.allow_sha1);
	assert_int_equal(got.min_rsa_bits, 1024);
	assert_int_equal(got.min_ec_bits, 224);
	/* Settings of a deleted store go with it. */
	assert_int_equal(store_ts_delete(st, "pol", &e), KH_OK);
	assert_int_equal(raw_int("SELECT count(*) FROM truststore_validation"), 0);
	store_close(st);
}

static void test_truststores_and_crls(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st;
	struct store_ts_cert c, *certs = NULL;
	struct store_crl crl, *crls = NULL;
	char (*names)[KH_NAME_MAX + 1] = NULL;
	char fp[KH_FP_HEX + 1];
	size_t n = 0;
	bool exists = true;

	(void)state;
	st = open_store();
	assert_int_equal(store_ts_exists(st, "tomcat-trust", &exists, &e), KH_OK);
	assert_false(exists);
	assert_int_equal(store_ts_create(st, "tomcat-trust", &e), KH_OK);
	assert_int_equal(store_ts_create(st, "tomcat-trust", &e), KH_OK); /* idempotent */
	assert_int_equal(store_ts_create(st, "cup-trust", &e), KH_OK);
	assert_int_equal(store_ts_exists(st, "tomcat-trust", &exists, &e), KH_OK);
	assert_true(exists);
	assert_int_equal(store_ts_names(st, &names, &n, &e), KH_OK);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "cup-trust");
	assert_string_equal(names[1], "tomcat-trust");
	free(names);

	make_cert(&c, 'b', "Root B", 200);
	assert_int_equal(store_ts_cert_add(st, "tomcat-trust", &c, &e), KH_OK);
	/* The same fingerprint twice in one store is a constraint error. */
	assert_int_not_equal(store_ts_cert_add(st, "tomcat-trust", &c, &e), KH_OK);
	kh_bytes_clear(&c.der);
	make_cert(&c, 'a', "Root A", 100);
	assert_int_equal(store_ts_cert_add(st, "tomcat-trust", &c, &e), KH_OK);
	kh_bytes_clear(&c.der);
	assert_int_equal(store_ts_certs(st, "tomcat-trust", &certs, &n, &e), KH_OK);
	assert_int_equal(n, 2);
	assert_string_equal(certs[0].cn, "Root A"); /* by time added */
	assert_string_equal(certs[0].subject, "CN=Root A");
	assert_int_equal(certs[0].fingerprint[0], 'a');
	assert_int_equal(strlen(certs[0].fingerprint), KH_FP_HEX);
	assert_true(certs[0].self_signed);
	assert_int_equal(certs[0].not_after, 1900000000);
	assert_int_equal(certs[0].added, 100);
	assert_bytes(&certs[0].der, "Root A");
	assert_string_equal(certs[1].cn, "Root B");
	store_ts_certs_free(certs, n);
	certs = NULL;
	assert_int_equal(store_ts_certs(st, "cup-trust", &certs, &n, &e), KH_OK);
	assert_int_equal(n, 0);
	store_ts_certs_free(certs, n);

	memset(fp, 'a', KH_FP_HEX);
	fp[KH_FP_HEX] = '\0';
	assert_int_equal(store_ts_cert_remove(st, "tomcat-trust", fp, &e), KH_OK);
	kh_err_clear(&e);
	assert_int_equal(store_ts_cert_remove(st, "tomcat-trust", fp, &e), KH_E_NOT_FOUND);
	assert_non_null(strstr(e.msg, "holds no certificate"));
	certs = NULL;
	assert_int_equal(store_ts_certs(st, "tomcat-trust", &certs, &n, &e), KH_OK);
	assert_int_equal(n, 1);
	assert_string_equal(certs[0].cn, "Root B");
	store_ts_certs_free(certs, n);

	/* CRLs: one per (store, issuer); a put for the same issuer replaces. */
	memset(&crl, 0, sizeof(crl));
	memset(crl.issuer_key, '1', KH_FP_HEX);
	snprintf(crl.issuer, sizeof(crl.issuer), "CN=Root B");
	memset(crl.fingerprint, 'c', KH_FP_HEX);
	crl.this_update = 1000;
	crl.next_update = 2000;
	crl.der = bytes("crl-1");
	crl.imported = 1500;
	assert_int_equal(store_crl_put(st, "tomcat-trust", &crl, &e), KH_OK);
	kh_bytes_clear(&crl.der);
	crl.der = bytes("crl-2");
	crl.this_update = 3000;
	assert_int_equal(store_crl_put(st, "tomcat-trust", &crl, &e), KH_OK);
	kh_bytes_clear(&crl.der);
	assert_int_equal(store_crl_list(st, "tomcat-trust", &crls, &n, &e), KH_OK);
	assert_int_equal(n, 1);
	assert_string_equal(crls[0].issuer, "CN=Root B");
	assert_int_equal(crls[0].issuer_key[0], '1');
	assert_int_equal(crls[0].this_update, 3000);
	assert_int_equal(crls[0].next_update, 2000);
	assert_int_equal(crls[0].imported, 1500);
	assert_string_equal(crls[0].source, "import");
	assert_bytes(&crls[0].der, "crl-2");
	store_crls_free(crls, n);

	/* Deleting a store takes its certificates and CRLs. */
	assert_int_equal(store_ts_delete(st, "tomcat-trust", &e), KH_OK);
	assert_int_equal(store_ts_exists(st, "tomcat-trust", &exists, &e), KH_OK);
	assert_false(exists);
	store_close(st);
	assert_int_equal(raw_int("SELECT count(*) FROM truststore_certs"), 0);
	assert_int_equal(raw_int("SELECT count(*) FROM crls"), 0);
}

static void test_transactions(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st;
	struct store_tp t, got;
	bool found = true, exists = true;
	struct store_mkey m;

	(void)state;
	st = open_store();
	assert_int_equal(store_begin(st, &e), KH_OK);
	make_tp(&t, "txn");
	assert_int_equal(store_tp_insert(st, &t, &e), KH_OK);
	store_tp_clear(&t);
	assert_int_equal(store_mkey_add(st, "txn-key", "txn", &e), KH_OK);
	assert_int_equal(store_ts_create(st, "txn-store", &e), KH_OK);
	/* Visible inside the transaction... */
	assert_int_equal(store_tp_get(st, "txn", &got, &e), KH_OK);
	store_tp_clear(&got);
	store_rollback(st);
	/* ...and gone after the rollback, certificates included. */
	assert_int_equal(store_tp_get(st, "txn", &got, &e), KH_E_NOT_FOUND);
	assert_int_equal(store_mkey_get(st, "txn-key", &m, &found, &e), KH_OK);
	assert_false(found);
	assert_int_equal(store_ts_exists(st, "txn-store", &exists, &e), KH_OK);
	assert_false(exists);
	/* A rollback outside a transaction is harmless. */
	store_rollback(st);

	/* A committed transaction stays. */
	assert_int_equal(store_begin(st, &e), KH_OK);
	assert_int_equal(store_mkey_add(st, "kept", "txn", &e), KH_OK);
	assert_int_equal(store_commit(st, &e), KH_OK);
	assert_int_equal(store_mkey_get(st, "kept", &m, &found, &e), KH_OK);
	assert_true(found);
	/* Nested BEGIN is an error, not a silent no-op. */
	assert_int_equal(store_begin(st, &e), KH_OK);
	assert_int_not_equal(store_begin(st, &e), KH_OK);
	store_rollback(st);
	store_close(st);
	assert_int_equal(raw_int("SELECT count(*) FROM trustpoint_certs"), 0);
}

static void test_reopen_keeps_data(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st;
	struct store_tp t, got;
	struct store_mkey m;
	bool found = false, exists = false;

	(void)state;
	st = open_store();
	make_tp(&t, "persist");
	assert_int_equal(store_tp_insert(st, &t, &e), KH_OK);
	store_tp_clear(&t);
	assert_int_equal(store_mkey_add(st, "persist-key", "persist", &e), KH_OK);
	assert_int_equal(store_ts_create(st, "persist-store", &e), KH_OK);
	store_close(st);

	st = open_store();
	memset(&got, 0, sizeof(got));
	assert_int_equal(store_tp_get(st, "persist", &got, &e), KH_OK);
	assert_string_equal(got.subject, "CN=persist.example.com,O=Example");
	assert_int_equal(got.n_ca, 2);
	assert_bytes(&got.ca[1], "ca-1");
	store_tp_clear(&got);
	assert_int_equal(store_mkey_get(st, "persist-key", &m, &found, &e), KH_OK);
	assert_true(found);
	assert_string_equal(m.trustpoint, "persist");
	assert_int_equal(store_ts_exists(st, "persist-store", &exists, &e), KH_OK);
	assert_true(exists);
	store_close(st);
}

static void test_open_refusals(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st = NULL;
	char path[128];
	FILE *f;

	(void)state;
	if (pg_dsn != NULL)
		skip();
	assert_int_equal(store_open_dir("", &st, &e), KH_E_INVALID_ARGUMENT);
	assert_null(st);
	/* state_dir under a regular file cannot be created. */
	snprintf(path, sizeof(path), "%s/file", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/file/sub", dir);
	kh_err_clear(&e);
	assert_int_equal(store_open_dir(path, &st, &e), KH_E_FAILED_PRECONDITION);
	assert_null(st);
	/* Not a database. */
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not an SQLite database, not even close; it is plain text of some length\n", f);
	fclose(f);
	kh_err_clear(&e);
	assert_int_not_equal(store_open_dir(dir, &st, &e), KH_OK);
	assert_null(st);
	/* A link in place of the database is not followed (issue 13, item 8). */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("elsewhere.db", path), 0);
	kh_err_clear(&e);
	assert_int_equal(store_open_dir(dir, &st, &e), KH_E_FAILED_PRECONDITION);
	assert_non_null(strstr(e.msg, "symbolic link"));
	assert_null(st);
	snprintf(path, sizeof(path), "%s/elsewhere.db", dir);
	assert_int_equal(access(path, F_OK), -1);
	store_close(NULL);
}

/* ---- PostgreSQL only ---- */

static enum kh_err open_pg(const char *dsn, const char *password_file, struct store **st, struct kh_errbuf *e)
{
	struct store_cfg cfg = { .backend = STORE_POSTGRESQL, .dsn = dsn, .password_file = password_file,
				 .owner = geteuid() };

	return store_open_cfg(&cfg, NULL, st, e);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* A password in the dsn, a dsn libpq cannot parse, a server that is not
 * there, and the password file's rules. */
static void test_pg_refusals(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st = NULL;
	char dsn[512], pw[128], link[128];

	(void)state;
	if (pg_dsn == NULL)
		skip();
	snprintf(dsn, sizeof(dsn), "%s password=secret", pg_dsn);
	assert_int_equal(open_pg(dsn, NULL, &st, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "must not carry the password"));
	kh_err_clear(&e);
	assert_int_equal(open_pg("host=/nonexistent port=1 dbname=keyhold", NULL, &st, &e), KH_E_UNAVAILABLE);
	assert_non_null(strstr(e.msg, "cannot connect"));
	kh_err_clear(&e);
	assert_int_equal(open_pg("host='unterminated", NULL, &st, &e), KH_E_INVALID_ARGUMENT);
	assert_null(st);
	snprintf(pw, sizeof(pw), "%s/pw", dir);
	write_file(pw, "secret\n", 0644);
	kh_err_clear(&e);
	assert_int_equal(open_pg(pg_dsn, pw, &st, &e), KH_E_PERMISSION_DENIED);
	assert_non_null(strstr(e.msg, "0600 or stricter"));
	assert_int_equal(chmod(pw, 0600), 0);
	snprintf(link, sizeof(link), "%s/pwlink", dir);
	assert_int_equal(symlink(pw, link), 0);
	kh_err_clear(&e);
	assert_int_equal(open_pg(pg_dsn, link, &st, &e), KH_E_FAILED_PRECONDITION);
	assert_non_null(strstr(e.msg, "symbolic link"));
	kh_err_clear(&e);
	assert_int_equal(open_pg(pg_dsn, dir, &st, &e), KH_E_FAILED_PRECONDITION);
	assert_non_null(strstr(e.msg, "not a regular file"));
	if (geteuid() == 0) {
		assert_int_equal(chown(pw, 1, 1), 0);
		kh_err_clear(&e);
		assert_int_equal(open_pg(pg_dsn, pw, &st, &e), KH_E_PERMISSION_DENIED);
		assert_non_null(strstr(e.msg, "must belong to keyholdd's user"));
		assert_int_equal(chown(pw, 0, 0), 0);
	}
	/* A good file (the socket trusts: the password is not asked). */
	kh_err_clear(&e);
	assert_int_equal(open_pg(pg_dsn, pw, &st, &e), KH_OK);
	store_close(st);
}

struct notes {
	pthread_mutex_t lock;
	char seen[512];
};

static void note(const char *topic, void *arg)
{
	struct notes *n = arg;

	pthread_mutex_lock(&n->lock);
	{
		size_t off = strlen(n->seen);

		snprintf(n->seen + off, sizeof(n->seen) - off, "%s ", topic);
	}
	pthread_mutex_unlock(&n->lock);
}

/* Waits up to 5 s for want in n->seen. */
static bool noted(struct notes *n, const char *want)
{
	int i;
	bool found = false;

	for (i = 0; i < 500 && !found; i++) {
		pthread_mutex_lock(&n->lock);
		found = strstr(n->seen, want) != NULL;
		pthread_mutex_unlock(&n->lock);
		if (!found)
			usleep(10000);
	}
	return found;
}

/* A topic notified inside a transaction reaches another handle's listener
 * when it commits, not when it rolls back; outside one, at once. */
static void test_pg_notify(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *a = NULL, *b = NULL;
	struct notes n = { .lock = PTHREAD_MUTEX_INITIALIZER };

	(void)state;
	if (pg_dsn == NULL)
		skip();
	a = open_store();
	b = open_store();
	assert_int_equal(store_listen(b, note, &n, &e), KH_OK);
	assert_int_equal(store_listen(b, note, &n, &e), KH_E_FAILED_PRECONDITION);
	usleep(200000); /* the listener's LISTEN */
	assert_int_equal(store_notify(a, "bad topic", &e), KH_E_INVALID_ARGUMENT);
	assert_int_equal(store_begin(a, &e), KH_OK);
	assert_int_equal(store_notify(a, "rolled-back", &e), KH_OK);
	store_rollback(a);
	assert_int_equal(store_begin(a, &e), KH_OK);
	assert_int_equal(store_notify(a, "key:web", &e), KH_OK);
	usleep(100000);
	assert_null(strstr(n.seen, "key:web")); /* not before the commit */
	assert_int_equal(store_commit(a, &e), KH_OK);
	assert_true(noted(&n, "key:web "));
	assert_int_equal(store_notify(a, "grants", &e), KH_OK);
	assert_true(noted(&n, "grants "));
	assert_null(strstr(n.seen, "rolled-back"));
	store_close(b);
	store_close(a);
}

/* The server cuts the connection (as a restart does): the next call
 * connects again; a transaction cut in the middle is UNAVAILABLE and the
 * handle works after it. */
static void test_pg_reconnect(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st = NULL;
	bool exists = false;

	(void)state;
	if (pg_dsn == NULL)
		skip();
	st = open_store();
	assert_int_equal(store_ts_create(st, "before", &e), KH_OK);
	raw_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'keyholdd'");
	assert_int_equal(store_ts_exists(st, "before", &exists, &e), KH_OK);
	assert_true(exists);
	assert_int_equal(store_begin(st, &e), KH_OK);
	assert_int_equal(store_ts_create(st, "lost", &e), KH_OK);
	raw_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'keyholdd'");
	assert_int_equal(store_ts_create(st, "lost2", &e), KH_E_UNAVAILABLE);
	kh_err_clear(&e);
	assert_int_not_equal(store_commit(st, &e), KH_OK);
	store_rollback(st);
	kh_err_clear(&e);
	assert_int_equal(store_ts_exists(st, "lost", &exists, &e), KH_OK);
	assert_false(exists);
	assert_int_equal(store_begin(st, &e), KH_OK);
	assert_int_equal(store_ts_create(st, "after", &e), KH_OK);
	assert_int_equal(store_commit(st, &e), KH_OK);
	assert_int_equal(raw_int("SELECT count(*) FROM truststores WHERE name = 'after'"), 1);
	store_close(st);
}

struct open_job {
	struct store *st;
	enum kh_err r;
};

static void *open_thread(void *arg)
{
	struct open_job *j = arg;
	struct kh_errbuf e = { 0 };

	j->r = store_open_dir(dir, &j->st, &e);
	return NULL;
}

/* Four nodes start at once on an empty database: the migrations run once
 * (under the advisory lock), every node opens at the current schema. */
static void test_pg_concurrent_open(void **state)
{
	struct open_job j[4];
	pthread_t t[4];
	int i;

	(void)state;
	if (pg_dsn == NULL)
		skip();
	memset(j, 0, sizeof(j));
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, open_thread, &j[i]), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(j[i].r, KH_OK);
		assert_int_equal(store_schema_version(j[i].st), STORE_SCHEMA_VERSION);
		store_close(j[i].st);
	}
	assert_int_equal(raw_version(), STORE_SCHEMA_VERSION);
	assert_int_equal(raw_int("SELECT count(*) FROM keyhold_schema"), 1);
}

struct begin_job {
	struct store *st;
	volatile int done;
	enum kh_err r;
};

static void *begin_thread(void *arg)
{
	struct begin_job *j = arg;
	struct kh_errbuf e = { 0 };

	j->r = store_begin(j->st, &e);
	j->done = 1;
	return NULL;
}

/* Two handles (two nodes): the second's transaction begins only when the
 * first's has committed (the advisory lock every transaction takes), and
 * then sees what the first wrote. */
static void test_pg_serialised(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *a = NULL, *b = NULL;
	struct begin_job j = { 0 };
	pthread_t t;
	bool exists = false;

	(void)state;
	if (pg_dsn == NULL)
		skip();
	a = open_store();
	b = open_store();
	assert_int_equal(store_begin(a, &e), KH_OK);
	assert_int_equal(store_ts_create(a, "first", &e), KH_OK);
	j.st = b;
	assert_int_equal(pthread_create(&t, NULL, begin_thread, &j), 0);
	usleep(300000);
	assert_int_equal(j.done, 0); /* waiting for a's transaction */
	assert_int_equal(store_commit(a, &e), KH_OK);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(j.r, KH_OK);
	assert_int_equal(store_ts_exists(b, "first", &exists, &e), KH_OK);
	assert_true(exists);
	assert_int_equal(store_commit(b, &e), KH_OK);
	store_close(b);
	store_close(a);
}

/* Schema 10: one audit anchor per node; an older version's single row is
 * the first node's to read, and gone once that node writes its own. */
static void test_audit_anchors(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st;
	char v[64];

	(void)state;
	st = open_store();
	raw_exec("INSERT INTO audit_anchor (id, value) VALUES (1, 'old')");
	assert_int_equal(store_audit_anchor_get(st, "a", v, sizeof(v), &e), KH_OK);
	assert_string_equal(v, "old");
	assert_int_equal(store_audit_anchor_put(st, "a", "a1", &e), KH_OK);
	assert_int_equal(store_audit_anchor_put(st, "b", "b1", &e), KH_OK);
	assert_int_equal(store_audit_anchor_put(st, "a", "a2", &e), KH_OK);
	assert_int_equal(store_audit_anchor_get(st, "a", v, sizeof(v), &e), KH_OK);
	assert_string_equal(v, "a2");
	assert_int_equal(store_audit_anchor_get(st, "b", v, sizeof(v), &e), KH_OK);
	assert_string_equal(v, "b1");
	assert_int_equal(store_audit_anchor_get(st, "c", v, sizeof(v), &e), KH_E_NOT_FOUND);
	assert_int_equal(raw_int("SELECT count(*) FROM audit_anchor"), 0);
	store_close(st);
}

/* Schema 10: a lease goes to one holder at a time, moves on only once it
 * expired, is renewed by its holder alone and is given up when the node
 * stops; a claim stays with a live claimant and passes to another node
 * once the claimant's heartbeat is stale. */
static void test_leases_and_claims(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store *st;
	struct store_lease *l = NULL;
	struct store_node *nodes = NULL;
	size_t n = 0;
	bool held = false, claimed = false;
	int64_t gen = -1;

	(void)state;
	st = open_store();
	assert_int_equal(store_lease_take(st, "expiry", "a", 100, 30, &held, &e), KH_OK);
	assert_true(held);
	assert_int_equal(store_lease_take(st, "expiry", "b", 110, 30, &held, &e), KH_OK);
	assert_false(held);
	assert_int_equal(store_lease_take(st, "expiry", "a", 120, 30, &held, &e), KH_OK);
	assert_true(held);
	assert_int_equal(store_lease_take(st, "expiry", "b", 149, 30, &held, &e), KH_OK);
	assert_false(held);
	assert_int_equal(store_lease_take(st, "expiry", "b", 150, 30, &held, &e), KH_OK);
	assert_true(held);
	/* a's renewal of all its leases does not bring back the lost one. */
	assert_int_equal(store_lease_renew_all(st, "a", 151, 30, &e), KH_OK);
	assert_int_equal(store_leases_list(st, &l, &n, &e), KH_OK);
	assert_int_equal(n, 1);
	assert_string_equal(l[0].holder, "b");
	assert_int_equal(l[0].acquired, 150);
	assert_int_equal(l[0].expires, 180);
	free(l);
	assert_int_equal(store_lease_renew_all(st, "b", 170, 30, &e), KH_OK);
	assert_int_equal(store_lease_take(st, "expiry", "a", 190, 30, &held, &e), KH_OK);
	assert_false(held);
	/* Stopping gives the roles up at once. */
	assert_int_equal(store_node_register(st, "b", "1.0", "keyhold-audit", 100, &e), KH_OK);
	assert_int_equal(store_node_stopping(st, "b", 195, &e), KH_OK);
	assert_int_equal(store_lease_take(st, "expiry", "a", 196, 30, &held, &e), KH_OK);
	assert_true(held);
	assert_int_equal(store_nodes_list(st, &nodes, &n, &e), KH_OK);
	assert_int_equal(n, 1);
	assert_string_equal(nodes[0].state, "stopping");
	free(nodes);
	/* Claims. */
	assert_int_equal(store_node_register(st, "a", "1.0", "keyhold-audit", 100, &e), KH_OK);
	assert_int_equal(store_node_register(st, "b", "1.0", "keyhold-audit", 100, &e), KH_OK);
	assert_int_equal(store_claim(st, "renew:tp", "1000", "a", 100, 70, &claimed, &e), KH_OK);
	assert_true(claimed);
	assert_int_equal(store_claim(st, "renew:tp", "1000", "a", 101, 71, &claimed, &e), KH_OK);
	assert_true(claimed);
	assert_int_equal(store_claim(st, "renew:tp", "1000", "b", 110, 80, &claimed, &e), KH_OK);
	assert_false(claimed);
	assert_int_equal(store_claim(st, "renew:tp", "2000", "b", 110, 80, &claimed, &e), KH_OK);
	assert_true(claimed);
	assert_int_equal(store_node_heartbeat(st, "b", "1.0", 200, &e), KH_OK);
	assert_int_equal(store_claim(st, "renew:tp", "1000", "b", 200, 170, &claimed, &e), KH_OK);
	assert_true(claimed);
	assert_int_equal(store_claim(st, "renew:tp", "1000", "a", 201, 171, &claimed, &e), KH_OK);
	assert_false(claimed);
	/* As svc_cluster_claim does it: the lease and the claim in one
	 * transaction; a's live claim on version 3000 stays a's. */
	assert_int_equal(store_node_heartbeat(st, "a", "1.0", 300, &e), KH_OK);
	assert_int_equal(store_claim(st, "renew:tp", "3000", "a", 300, 270, &claimed, &e), KH_OK);
	assert_true(claimed);
	assert_int_equal(store_begin(st, &e), KH_OK);
	assert_int_equal(store_lease_take(st, "expiry", "b", 301, 30, &held, &e), KH_OK);
	assert_true(held);
	assert_int_equal(store_claim(st, "renew:tp", "3000", "b", 301, 271, &claimed, &e), KH_OK);
	assert_false(claimed);
	assert_int_equal(store_commit(st, &e), KH_OK);
	/* Claims made before 301 are forgotten (b's on 1000 and 2000, a's on
	 * 3000); a claim made since stays. */
	assert_int_equal(store_claims_prune(st, 301, &e), KH_OK);
	assert_int_equal(store_claim(st, "renew:tp", "3000", "b", 400, 370, &claimed, &e), KH_OK);
	assert_true(claimed);
	assert_int_equal(store_claims_prune(st, 350, &e), KH_OK);
	assert_int_equal(store_node_heartbeat(st, "b", "1.0", 400, &e), KH_OK);
	assert_int_equal(store_claim(st, "renew:tp", "3000", "a", 401, 371, &claimed, &e), KH_OK);
	assert_false(claimed);
	/* Generations. */
	assert_int_equal(store_gen_get(st, "grants", &gen, &e), KH_OK);
	assert_int_equal(gen, 0);
	assert_int_equal(store_gen_bump(st, "grants", &e), KH_OK);
	assert_int_equal(store_gen_bump(st, "grants", &e), KH_OK);
	assert_int_equal(store_gen_get(st, "grants", &gen, &e), KH_OK);
	assert_int_equal(gen, 2);
	store_close(st);
}

/* A statement given back and prepared again (SQLite keeps it prepared)
 * starts afresh: no bindings, back before its first row; two of the same
 * SQL at once are two; more distinct statements than are kept still each
 * give their own result. */
static void test_statements_again(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store_stmt *a = NULL, *b = NULL;
	struct store *st;
	char sql[64], out[32];
	bool row = false;
	int i;

	(void)state;
	st = open_store();
	assert_int_equal(store_prepare(st, "SELECT ?1", &a, &e), KH_OK);
	store_bind_text(a, 1, "bound");
	assert_int_equal(store_step(a, &row, "select", &e), KH_OK);
	assert_true(row);
	store_col_text(a, 0, out, sizeof(out));
	assert_string_equal(out, "bound");
	store_finalize(a);
	assert_int_equal(store_prepare(st, "SELECT ?1", &a, &e), KH_OK);
	assert_int_equal(store_step(a, &row, "select", &e), KH_OK);
	assert_true(row);
	assert_true(store_col_is_null(a, 0));
	store_finalize(a);

	/* Given back after its first row of two: the next use starts over. */
	assert_int_equal(store_prepare(st, "SELECT 1 UNION ALL SELECT 2", &a, &e), KH_OK);
	assert_int_equal(store_step(a, &row, "select", &e), KH_OK);
	assert_true(row);
	store_finalize(a);
	assert_int_equal(store_prepare(st, "SELECT 1 UNION ALL SELECT 2", &a, &e), KH_OK);
	assert_int_equal(store_step(a, &row, "select", &e), KH_OK);
	assert_true(row);
	assert_int_equal(store_col_int64(a, 0), 1);
	/* The same SQL again while a is in use: another statement. */
	assert_int_equal(store_prepare(st, "SELECT 1 UNION ALL SELECT 2", &b, &e), KH_OK);
	assert_ptr_not_equal(a, b);
	assert_int_equal(store_step(b, &row, "select", &e), KH_OK);
	assert_int_equal(store_col_int64(b, 0), 1);
	assert_int_equal(store_step(a, &row, "select", &e), KH_OK);
	assert_true(row);
	assert_int_equal(store_col_int64(a, 0), 2);
	store_finalize(a);
	store_finalize(b);

	/* More distinct statements than are kept, twice over. */
	for (i = 0; i < 100; i++) {
		snprintf(sql, sizeof(sql), "SELECT %d", i % 50);
		assert_int_equal(store_prepare(st, sql, &a, &e), KH_OK);
		assert_int_equal(store_step(a, &row, "select", &e), KH_OK);
		assert_true(row);
		assert_int_equal(store_col_int64(a, 0), i % 50);
		store_finalize(a);
	}
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_migrates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrates_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trustpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_managed_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truststores_and_crls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ts_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revstate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_serialised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_concurrent_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leases_and_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_anchors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statements_again, setup, teardown),
	};

	pg_dsn = getenv("KH_TEST_PG_DSN");
	if (pg_dsn != NULL && pg_dsn[0] == '\0')
		pg_dsn = NULL;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
