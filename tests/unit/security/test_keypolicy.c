/* test_keypolicy.c: [key:NAME] sections and the per-key policy: config errors
 * name the line; grants match uid, group and certificate principals;
 * admins pass; the refusal is the same for an unknown key as for a key
 * without a grant; digest and padding rules; run-time grants persist and
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
#include "daemon/svc.h"

static char dir[64];

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
	snprintf(p, sizeof(p), "%s/key-grants", dir);
	unlink(p);
	rmdir(dir);
	return 0;
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
	assert_int_equal(access_grants_new(c, &p, &e), KH_OK);
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

static void test_runtime_grants(void **state)
{
	struct kh_errbuf e = { 0 };
	struct svc_config *c;
	struct access_grants *p = NULL;
	struct svc_principal g;
	struct kh_key_grant kg;
	struct kh_grant_ref ref;
	struct kh_grant_list l;

	(void)state;
	c = parse("[key:k]\nsigners = uid:4242\n", &e, KH_OK);
	assert_int_equal(access_grants_new(c, &p, &e), KH_OK);
	svc_principal_unix(c, 5000, 4343, 1, NULL, 0, &g);
	memset(&kg, 0, sizeof(kg));
	kh_strlcpy(kg.key, "k2", sizeof(kg.key));
	kh_strlcpy(kg.principal, "gid:4343", sizeof(kg.principal));
	kg.digests = 1u << KH_DIGEST_SHA256;
	assert_int_equal(access_grants_check_key(p, &g, "k2", &e), KH_E_PERMISSION_DENIED);
	assert_int_equal(access_grants_grant(p, &kg, &e), KH_OK);
	assert_int_equal(access_grants_check_key(p, &g, "k2", &e), KH_OK);
	access_grants_free(p);
	/* Kept across a restart. */
	p = NULL;
	assert_int_equal(access_grants_new(c, &p, &e), KH_OK);
	assert_int_equal(access_grants_check_key(p, &g, "k2", &e), KH_OK);
	assert_int_equal(access_grants_list(p, "k2", &l, &e), KH_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.grants[0].source, "runtime");
	assert_int_equal(l.grants[0].digests, 1u << KH_DIGEST_SHA256);
	kh_grant_list_clear(&l);
	/* Config grants stay; run-time ones go. */
	memset(&ref, 0, sizeof(ref));
	kh_strlcpy(ref.key, "k", sizeof(ref.key));
	kh_strlcpy(ref.principal, "uid:4242", sizeof(ref.principal));
	assert_int_equal(access_grants_revoke(p, &ref, &e), KH_E_FAILED_PRECONDITION);
	kh_strlcpy(ref.key, "k2", sizeof(ref.key));
	kh_strlcpy(ref.principal, "gid:4343", sizeof(ref.principal));
	assert_int_equal(access_grants_revoke(p, &ref, &e), KH_OK);
	kh_err_clear(&e);
	assert_int_equal(access_grants_revoke(p, &ref, &e), KH_E_NOT_FOUND);
	assert_int_equal(access_grants_check_key(p, &g, "k2", &e), KH_E_PERMISSION_DENIED);
	/* Deleting a key drops its run-time grants. */
	assert_int_equal(access_grants_grant(p, &kg, &e), KH_OK);
	access_grants_forget_key(p, "k2");
	assert_int_equal(access_grants_check_key(p, &g, "k2", &e), KH_E_PERMISSION_DENIED);
	access_grants_free(p);
	svc_config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_runtime_grants),
	};

	kh_log_set_level(KH_LOG_ERR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
