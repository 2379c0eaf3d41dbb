/* test_keypolicy.c: [key:NAME] sections and the per-key policy: config errors
 * name the line; grants match uid, group and certificate principals;
 * admins pass; the refusal is the same for an unknown key as for a key
 * without a grant; digest and padding rules; run-time grants persist in
 * the state database, a change through one node's grants is enforced by
 * another's at once, an older key-grants file is imported once, and
 * config grants cannot be revoked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kh_log.h"
#include "kh_util.h"
#include "core/svc.h"
#include "access/access.h"
#include "store/store.h"
#include "store/store_dir.h"

static char dir[64];
static struct store_dir *sd;

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kh-policy.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char p[128];

	(void)state;
	store_dir_free(sd);
	sd = NULL;
	static const char *const files[] = { "key-grants", "key-grants.imported", "keyhold.db", "keyhold.db-wal",
					     "keyhold.db-shm", "keyholdd.lock" };
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static const struct store_dir *test_sd(void);

/* A new connection to the state database in the test's state_dir (the
 * grants take it). */
static struct store *test_store(void)
{
	struct kh_errbuf e = { 0 };
	struct store *st = NULL;

	if (store_open(test_sd(), &st, &e) != KH_OK)
		fail_msg("store_open: %s", e.msg);
	return st;
}

/* state_dir for the grants: the test's temp dir, opened once. */
static const struct store_dir *test_sd(void)
{
	struct kh_errbuf e = { 0 };

	if (sd == NULL && store_dir_open(dir, geteuid(), &sd, &e) != KH_OK)
		fail_msg("store_dir_open %s: %s", dir, e.msg);
	return sd;
}

static struct svc_config *parse(const char *extra, struct kh_errbuf *e, enum kh_err want)
{
	char text[2048];
	struct svc_config *c = NULL;

	snprintf(text, sizeof(text),
		 "[service]\nstate_dir = %s\n[token]\nmodule = /m.so\nuri = pkcs11:token=t\npin_file = /p\n"
		 "[access]\nadmin = uid:0\nsigner = uid:4242, gid:4343, cert:spiffe://x/app\n%s",
		 dir, extra);
	assert_int_equal(svc_config_parse(text, "t.conf", &c, e), want);
	return c;
}

static void test_config_errors(void **state)
{
	struct kh_errbuf e = { 0 };

	(void)state;
	parse("[key:k]\nsigners = uid:1\nfoo = bar\n", &e, KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "t.conf:12: unknown key 'foo' in [key:k]"));
	kh_err_clear(&e);
	parse("[key:k]\ndigests = sha256\n", &e, KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "[key:k] names no signers"));
	kh_err_clear(&e);
	parse("[key:k]\nsigners = uid:1\ndigests = sha257\n", &e, KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "unknown digest 'sha257'"));
	kh_err_clear(&e);
	parse("[key:k]\nsigners = uid:1\npadding = oaep\n", &e, KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "unknown padding 'oaep'"));
	kh_err_clear(&e);
	parse("[key:a/b]\nsigners = uid:1\n", &e, KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "a key name matches"));
	kh_err_clear(&e);
	parse("[key:k]\nsigners = someone\n", &e, KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "principal 'someone'"));
	kh_err_clear(&e);
	parse("[tls]\nlisten = 127.0.0.1:1\nkey = k\ncert = /c\n", &e, KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "client_ca"));
	kh_err_clear(&e);
	/* A trust store names the client CAs as well as a file does. */
	svc_config_free(parse("[tls]\nlisten = 127.0.0.1:1\nkey = k\ncert = /c\nclient_truststore = clients\n", &e, KH_OK));
	kh_err_clear(&e);
	parse("[audit]\nsync = sometimes\n", &e, KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "sync must be always or interval"));
}

static int namechar(char c)
{
	return c != '\0' && (strchr("._-", c) != NULL || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9'));
}

/* Copies msg with every occurrence of the object name replaced by "K". */
static void unname(const char *msg, const char *name, char *out, size_t outsz)
{
	size_t n = 0, nl = strlen(name);
	const char *start = msg;

	while (*msg != '\0' && n + 2 < outsz) {
		if (strncmp(msg, name, nl) == 0 && (msg == start || !namechar(msg[-1])) && !namechar(msg[nl])) {
			out[n++] = 'K';
			msg += nl;
		} else {
			out[n++] = *msg++;
		}
	}
	out[n] = '\0';
}

static void test_checks(void **state)
{
	struct kh_errbuf e = { 0 }, e2 = { 0 };
	struct svc_config *c;
	struct access_grants *p = NULL;
	struct svc_principal u, g, cert, other, admin;

	(void)state;
	c = parse("[key:k]\nsigners = uid:4242, cert:spiffe://x/app\ndigests = sha256,sha384\npadding = pss\n"
		  "[key:gk]\nsigners = gid:4343\n",
		  &e, KH_OK);
	assert_int_equal(access_grants_new(c, test_sd(), test_store(), &p, &e), KH_OK);
	svc_principal_unix(c, 4242, 4242, 1, NULL, 0, &u);
	svc_principal_unix(c, 5000, 4343, 1, NULL, 0, &g);
	svc_principal_unix(c, 5001, 5001, 1, NULL, 0, &other);
	svc_principal_unix(c, 0, 0, 1, NULL, 0, &admin);
	svc_principal_cert(c, "spiffe://x/app", &cert);
	assert_true(u.roles & SVC_ROLE_SIGNER);
	assert_true(g.roles & SVC_ROLE_SIGNER);
	assert_true(cert.roles & SVC_ROLE_SIGNER);
	assert_true(admin.roles & SVC_ROLE_ADMIN);
	assert_int_equal(other.roles, 0);
	assert_string_equal(cert.name, "cert:spiffe://x/app");

	assert_int_equal(access_grants_check_key(p, &u, "k", &e), KH_OK);
	assert_int_equal(access_grants_check_key(p, &cert, "k", &e), KH_OK);
	assert_int_equal(access_grants_check_key(p, &g, "gk", &e), KH_OK);
	assert_int_equal(access_grants_check_key(p, &admin, "anything", &e), KH_OK);
	assert_int_equal(access_grants_check_key(p, &g, "k", &e), KH_E_PERMISSION_DENIED);
	assert_non_null(strstr(e.msg, "uid:5000 has no grant for key 'k'"));
	/* A certificate named like a uid is not that uid. */
	svc_principal_cert(c, "uid:4242", &other);
	assert_int_equal(access_grants_check_key(p, &other, "k", &e2), KH_E_PERMISSION_DENIED);
	/* Same refusal for a key that does not exist (modulo its name). */
	kh_err_clear(&e);
	kh_err_clear(&e2);
	assert_int_equal(access_grants_check_key(p, &g, "zz", &e), KH_E_PERMISSION_DENIED);
	assert_int_equal(access_grants_check_key(p, &g, "k", &e2), KH_E_PERMISSION_DENIED);
	{
		char a[KH_ERR_MSG_MAX], b[KH_ERR_MSG_MAX];

		unname(e.msg, "zz", a, sizeof(a));
		unname(e2.msg, "k", b, sizeof(b));
		assert_string_equal(a, b);
	}

	assert_int_equal(access_grants_check_sign(p, &u, "k", true, KH_DIGEST_SHA384, KH_PAD_PSS, &e), KH_OK);
	assert_int_equal(access_grants_check_sign(p, &u, "k", false, KH_DIGEST_DEFAULT, KH_PAD_DEFAULT, &e), KH_OK);
	kh_err_clear(&e);
	assert_int_equal(access_grants_check_sign(p, &u, "k", true, KH_DIGEST_SHA512, KH_PAD_PSS, &e),
			 KH_E_PERMISSION_DENIED);
	assert_non_null(strstr(e.msg, "allows digests sha256,sha384, not sha512"));
	kh_err_clear(&e);
	assert_int_equal(access_grants_check_sign(p, &u, "k", true, KH_DIGEST_SHA256, KH_PAD_DEFAULT, &e),
			 KH_E_PERMISSION_DENIED);
	assert_non_null(strstr(e.msg, "padding pss, not pkcs1"));
	assert_int_equal(access_grants_check_sign(p, &admin, "k", true, KH_DIGEST_SHA512, KH_PAD_PKCS1, &e), KH_OK);
	access_grants_free(p);
	svc_config_free(c);
}


/* What access_grants_list shows, collected. */
struct seen_grants {
	struct {
		char key[65], principal[256];
		unsigned digests, paddings;
		bool from_config;
	} g[8];
	size_t n;
};

static enum kh_err seen_grant(void *arg, const char *key, const char *principal, unsigned digests, unsigned paddings,
			      bool from_config, struct kh_errbuf *e)
{
	struct seen_grants *l = arg;

	(void)e;
	assert_true(l->n < 8);
	kh_strlcpy(l->g[l->n].key, key, sizeof(l->g[l->n].key));
	kh_strlcpy(l->g[l->n].principal, principal, sizeof(l->g[l->n].principal));
	l->g[l->n].digests = digests;
	l->g[l->n].paddings = paddings;
	l->g[l->n].from_config = from_config;
	l->n++;
	return KH_OK;
}

static void test_runtime_grants(void **state)
{
	struct kh_errbuf e = { 0 };
	struct svc_config *c;
	struct access_grants *p = NULL;
	struct svc_principal g;
	struct seen_grants l;

	(void)state;
	c = parse("[key:k]\nsigners = uid:4242\n", &e, KH_OK);
	assert_int_equal(access_grants_new(c, test_sd(), test_store(), &p, &e), KH_OK);
	svc_principal_unix(c, 5000, 4343, 1, NULL, 0, &g);
	assert_int_equal(access_grants_check_key(p, &g, "k2", &e), KH_E_PERMISSION_DENIED);
	assert_int_equal(access_grants_grant(p, "k2", "gid:4343", 1u << KH_DIGEST_SHA256, 0, &e), KH_OK);
	assert_int_equal(access_grants_check_key(p, &g, "k2", &e), KH_OK);
	access_grants_free(p);
	/* Kept across a restart. */
	p = NULL;
	assert_int_equal(access_grants_new(c, test_sd(), test_store(), &p, &e), KH_OK);
	assert_int_equal(access_grants_check_key(p, &g, "k2", &e), KH_OK);
	memset(&l, 0, sizeof(l));
	assert_int_equal(access_grants_list(p, "k2", seen_grant, &l, &e), KH_OK);
	assert_int_equal(l.n, 1);
	assert_false(l.g[0].from_config);
	assert_int_equal(l.g[0].digests, 1u << KH_DIGEST_SHA256);
	/* Config grants stay; run-time ones go. */
	assert_int_equal(access_grants_revoke(p, "k", "uid:4242", &e), KH_E_FAILED_PRECONDITION);
	assert_int_equal(access_grants_revoke(p, "k2", "gid:4343", &e), KH_OK);
	kh_err_clear(&e);
	assert_int_equal(access_grants_revoke(p, "k2", "gid:4343", &e), KH_E_NOT_FOUND);
	assert_int_equal(access_grants_check_key(p, &g, "k2", &e), KH_E_PERMISSION_DENIED);
	/* Deleting a key drops its run-time grants. */
	assert_int_equal(access_grants_grant(p, "k2", "gid:4343", 1u << KH_DIGEST_SHA256, 0, &e), KH_OK);
	access_grants_forget_key(p, "k2");
	assert_int_equal(access_grants_check_key(p, &g, "k2", &e), KH_E_PERMISSION_DENIED);
	access_grants_free(p);
	svc_config_free(c);
}

/* Two nodes' grants over one database (two connections here): a check
 * reads no database, so a grant or a revocation through one node reaches
 * the other when its cache is marked stale, as the "grants" notification
 * does on a cluster (PostgreSQL; the listener calls
 * access_grants_invalidate). */
static void test_shared_grants(void **state)
{
	struct kh_errbuf e = { 0 };
	struct svc_config *c;
	struct access_grants *n1 = NULL, *n2 = NULL;
	struct svc_principal g;

	(void)state;
	c = parse("", &e, KH_OK);
	assert_int_equal(access_grants_new(c, test_sd(), test_store(), &n1, &e), KH_OK);
	assert_int_equal(access_grants_new(c, test_sd(), test_store(), &n2, &e), KH_OK);
	svc_principal_unix(c, 5001, 4444, 1, NULL, 0, &g);
	g.roles = SVC_ROLE_SIGNER;
	assert_int_equal(access_grants_check_key(n2, &g, "sk", &e), KH_E_PERMISSION_DENIED);
	assert_int_equal(access_grants_grant(n1, "sk", "uid:5001", 0, 0, &e), KH_OK);
	/* Node 1 sees its own change at once; node 2 once notified. */
	assert_int_equal(access_grants_check_key(n1, &g, "sk", &e), KH_OK);
	kh_err_clear(&e);
	assert_int_equal(access_grants_check_key(n2, &g, "sk", &e), KH_E_PERMISSION_DENIED);
	access_grants_invalidate(n2);
	kh_err_clear(&e);
	assert_int_equal(access_grants_check_key(n2, &g, "sk", &e), KH_OK);
	assert_int_equal(access_grants_check_sign(n2, &g, "sk", false, KH_DIGEST_SHA256, KH_PAD_DEFAULT, &e), KH_OK);
	assert_int_equal(access_grants_revoke(n1, "sk", "uid:5001", &e), KH_OK);
	access_grants_invalidate(n2);
	assert_int_equal(access_grants_check_key(n2, &g, "sk", &e), KH_E_PERMISSION_DENIED);
	kh_err_clear(&e);
	assert_int_equal(access_grants_check_sign(n2, &g, "sk", false, KH_DIGEST_SHA256, KH_PAD_DEFAULT, &e),
			 KH_E_PERMISSION_DENIED);
	/* Granted on node 2 and its key deleted there: gone for node 1. */
	assert_int_equal(access_grants_grant(n2, "sk", "uid:5001", 0, 0, &e), KH_OK);
	access_grants_invalidate(n1);
	assert_int_equal(access_grants_check_key(n1, &g, "sk", &e), KH_OK);
	access_grants_forget_key(n2, "sk");
	access_grants_invalidate(n1);
	kh_err_clear(&e);
	assert_int_equal(access_grants_check_key(n1, &g, "sk", &e), KH_E_PERMISSION_DENIED);
	access_grants_free(n1);
	access_grants_free(n2);
	svc_config_free(c);
}

static void write_grants(const char *text)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/key-grants", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static char *read_grants(const char *suffix)
{
	static char buf[4096];
	char p[128];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/key-grants%s", dir, suffix);
	f = fopen(p, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Grants to user:NAME / group:NAME are kept by number with the name
 * (issue 13, item 9): one whose account is gone or renamed is dropped and
 * the start goes on; an older file's by-name grant is rewritten by
 * number; uid 0 is root on every system, 3999999 nobody. */
static void test_grants_by_number(void **state)
{
	struct kh_errbuf e = { 0 };
	struct access_grants *p = NULL;
	struct svc_config *c;
	struct svc_principal root, other;
	struct seen_grants l;
	const char *text;
	char buf[128];
	struct store *st = NULL;
	struct store_grant *rows = NULL;
	size_t n = 0;

	(void)state;
	c = parse("", &e, KH_OK);
	write_grants("# keyholdd runtime key grants\n"
		     "k1 uid:3999999 * * user:ghost\n"
		     "k2 uid:0 * * user:not-root-any-more\n"
		     "k3 user:no-such-user-kh * *\n"
		     "k4 user:root sha256 *\n"
		     "k5 uid:0 * * user:root\n"
		     "k6 gid:3999999 * * group:ghosts\n"
		     "k7 uid:4242 * *\n");
	if (access_grants_new(c, test_sd(), test_store(), &p, &e) != KH_OK)
		fail_msg("a grant whose account is gone stopped the start: %s", e.msg);
	svc_principal_unix(c, 0, 0, 1, NULL, 0, &root);
	svc_principal_unix(c, 3999999, 3999999, 1, NULL, 0, &other);
	root.roles = other.roles = SVC_ROLE_SIGNER;
	assert_int_equal(access_grants_check_key(p, &other, "k1", &e), KH_E_PERMISSION_DENIED);
	assert_int_equal(access_grants_check_key(p, &root, "k2", &e), KH_E_PERMISSION_DENIED);
	assert_int_equal(access_grants_check_key(p, &other, "k6", &e), KH_E_PERMISSION_DENIED);
	assert_int_equal(access_grants_check_key(p, &root, "k4", &e), KH_OK);
	assert_int_equal(access_grants_check_key(p, &root, "k5", &e), KH_OK);
	/* Shown by name; dropped grants are gone from the list too. */
	memset(&l, 0, sizeof(l));
	assert_int_equal(access_grants_list(p, NULL, seen_grant, &l, &e), KH_OK);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.g[0].principal, "user:root");
	assert_string_equal(l.g[2].principal, "uid:4242");
	/* Imported into the database: by number, with the name, without the
	 * dropped; the file renamed, never read again. */
	assert_int_equal(store_open(test_sd(), &st, &e), KH_OK);
	assert_int_equal(store_grants_list(st, &rows, &n, &e), KH_OK);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].key, "k4");
	assert_string_equal(rows[0].principal, "uid:0");
	assert_string_equal(rows[0].display, "user:root");
	assert_int_equal(rows[0].digests, 1u << KH_DIGEST_SHA256);
	assert_string_equal(rows[1].key, "k5");
	assert_string_equal(rows[1].principal, "uid:0");
	assert_string_equal(rows[2].key, "k7");
	assert_string_equal(rows[2].principal, "uid:4242");
	assert_string_equal(rows[2].display, "");
	free(rows);
	store_close(st);
	text = read_grants(".imported");
	assert_non_null(strstr(text, "k1 uid:3999999 * * user:ghost\n"));
	snprintf(buf, sizeof(buf), "%s/key-grants", dir);
	assert_int_equal(access(buf, F_OK), -1);
	access_grants_free(p);
	/* A second start finds no file and the same grants. */
	p = NULL;
	assert_int_equal(access_grants_new(c, test_sd(), test_store(), &p, &e), KH_OK);
	assert_int_equal(access_grants_check_key(p, &root, "k5", &e), KH_OK);
	access_grants_free(p);
	svc_config_free(c);
	/* The rest of the tests start without runtime grants. */
	assert_int_equal(store_open(test_sd(), &st, &e), KH_OK);
	assert_int_equal(store_grants_delete_key(st, "k4", &n, &e), KH_OK);
	assert_int_equal(store_grants_delete_key(st, "k5", &n, &e), KH_OK);
	assert_int_equal(store_grants_delete_key(st, "k7", &n, &e), KH_OK);
	assert_int_equal(store_gen_bump(st, "grants", &e), KH_OK);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grants_by_number),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_runtime_grants),
		cmocka_unit_test(test_shared_grants),
	};

	kh_log_set_level(KH_LOG_ERR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
