/* test_policy.c: the FIPS approved-algorithm policy (service/fips/fips_policy.c):
 * everything allowed with fips_mode = off; in aligned and validated mode
 * each non-approved choice refused with INVALID_ARGUMENT naming its rule,
 * the approved ones allowed; Ed25519 per fips_allow_eddsa; public keys by
 * size, exponent and curve. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>

#include "fips/fips_policy.h"

static struct svc_config cfg_of(enum svc_fips_mode m, bool eddsa)
{
	struct svc_config c;

	memset(&c, 0, sizeof(c));
	c.fips_mode = m;
	c.fips_allow_eddsa = eddsa;
	return c;
}

/* r must be INVALID_ARGUMENT with rule in the message. */
static void refused(int r, const struct kh_errbuf *e, const char *rule)
{
	assert_int_equal(r, KH_E_INVALID_ARGUMENT);
	assert_int_equal(e->code, KH_E_INVALID_ARGUMENT);
	if (strstr(e->msg, rule) == NULL)
		fail_msg("message '%s' does not name '%s'", e->msg, rule);
}

static void test_off_allows_everything(void **state)
{
	struct svc_config c = cfg_of(SVC_FIPS_OFF, false);
	struct kh_errbuf e = { 0 };
	int t, d;

	(void)state;
	assert_false(fips_policy_fips(&c));
	for (t = 0; t <= KH_KEY_TYPE_MAX; t++) {
		assert_int_equal(fips_policy_key_type(&c, (enum kh_key_type)t, &e), KH_OK);
		for (d = 0; d <= KH_DIGEST_MAX; d++) {
			assert_int_equal(fips_policy_sign(&c, (enum kh_key_type)t, (enum kh_digest)d, KH_PAD_PKCS1, &e), KH_OK);
			assert_int_equal(fips_policy_cert_digest(&c, (enum kh_key_type)t, (enum kh_digest)d, "CSR", &e), KH_OK);
		}
	}
	assert_int_equal(fips_policy_rsa_bits(&c, 1024, &e), KH_OK);
	assert_int_equal(fips_policy_curve(&c, NID_X9_62_prime192v1, &e), KH_OK);
	assert_int_equal(fips_policy_curve(&c, NID_secp256k1, &e), KH_OK);
	assert_int_equal(e.code, KH_OK);
}

static void check_fips_mode(enum svc_fips_mode m)
{
	struct svc_config c = cfg_of(m, false);
	struct kh_errbuf e;

	assert_true(fips_policy_fips(&c));
#define REFUSED(expr, rule) do { memset(&e, 0, sizeof(e)); refused((expr), &e, (rule)); } while (0)
#define ALLOWED(expr) do { memset(&e, 0, sizeof(e)); assert_int_equal((expr), KH_OK); } while (0)
	REFUSED(fips_policy_key_type(&c, KH_KEY_RSA1024, &e),
		"RSA modulus 1024 is not allowed in FIPS mode; use 2048, 3072 or 4096");
	REFUSED(fips_policy_key_type(&c, KH_KEY_SECP256K1, &e), "curve secp256k1 is not allowed in FIPS mode");
	REFUSED(fips_policy_key_type(&c, KH_KEY_ED25519, &e), "unless fips_allow_eddsa = yes");
	REFUSED(fips_policy_key_type(&c, KH_KEY_UNSPECIFIED, &e), "not allowed in FIPS mode");
	REFUSED(fips_policy_rsa_bits(&c, 1536, &e), "RSA modulus 1536 is not allowed");
	REFUSED(fips_policy_rsa_bits(&c, 8192, &e), "RSA modulus 8192 is not allowed");
	REFUSED(fips_policy_curve(&c, NID_X9_62_prime192v1, &e), "curve prime192v1 is not allowed in FIPS mode");
	REFUSED(fips_policy_curve(&c, NID_secp224r1, &e), "not allowed in FIPS mode");
	REFUSED(fips_policy_curve(&c, NID_brainpoolP256r1, &e), "not allowed in FIPS mode");
	REFUSED(fips_policy_sign(&c, KH_KEY_P256, KH_DIGEST_SHA1, KH_PAD_DEFAULT, &e),
		"SHA-1 signatures are not allowed in FIPS mode");
	REFUSED(fips_policy_sign(&c, KH_KEY_RSA2048, KH_DIGEST_SHA1, KH_PAD_PSS, &e), "SHA-1 signatures");
	REFUSED(fips_policy_sign(&c, KH_KEY_RSA2048, KH_DIGEST_MD5, KH_PAD_PKCS1, &e), "MD5 is not allowed in FIPS mode");
	REFUSED(fips_policy_sign(&c, KH_KEY_RSA2048, KH_DIGEST_SHA224, KH_PAD_PKCS1, &e), "SHA-224");
	REFUSED(fips_policy_sign(&c, KH_KEY_RSA1024, KH_DIGEST_SHA256, KH_PAD_PKCS1, &e), "RSA modulus 1024");
	REFUSED(fips_policy_sign(&c, KH_KEY_ED25519, KH_DIGEST_DEFAULT, KH_PAD_DEFAULT, &e), "fips_allow_eddsa");
	REFUSED(fips_policy_sign(&c, KH_KEY_P256, (enum kh_digest)99, KH_PAD_DEFAULT, &e), "unknown digest");
	REFUSED(fips_policy_sign(&c, KH_KEY_RSA2048, KH_DIGEST_SHA256, (enum kh_padding)7, &e), "unknown RSA padding");
	REFUSED(fips_policy_cert_digest(&c, KH_KEY_RSA2048, KH_DIGEST_SHA1, "CSR", &e),
		"SHA-1 signatures on CSRs are not allowed in FIPS mode");
	REFUSED(fips_policy_cert_digest(&c, KH_KEY_UNSPECIFIED, KH_DIGEST_MD5, "certificate", &e), "MD5");
	REFUSED(fips_policy_cert_digest(&c, KH_KEY_ED25519, KH_DIGEST_DEFAULT, "certificate", &e), "fips_allow_eddsa");

	ALLOWED(fips_policy_key_type(&c, KH_KEY_RSA2048, &e));
	ALLOWED(fips_policy_key_type(&c, KH_KEY_RSA3072, &e));
	ALLOWED(fips_policy_key_type(&c, KH_KEY_RSA4096, &e));
	ALLOWED(fips_policy_key_type(&c, KH_KEY_P256, &e));
	ALLOWED(fips_policy_key_type(&c, KH_KEY_P384, &e));
	ALLOWED(fips_policy_key_type(&c, KH_KEY_P521, &e));
	ALLOWED(fips_policy_sign(&c, KH_KEY_P384, KH_DIGEST_DEFAULT, KH_PAD_DEFAULT, &e));
	ALLOWED(fips_policy_sign(&c, KH_KEY_P521, KH_DIGEST_SHA512, KH_PAD_DEFAULT, &e));
	ALLOWED(fips_policy_sign(&c, KH_KEY_RSA4096, KH_DIGEST_SHA384, KH_PAD_PSS, &e));
	ALLOWED(fips_policy_sign(&c, KH_KEY_RSA2048, KH_DIGEST_SHA256, KH_PAD_PKCS1, &e));
	ALLOWED(fips_policy_cert_digest(&c, KH_KEY_P256, KH_DIGEST_SHA256, "CSR", &e));
	ALLOWED(fips_policy_cert_digest(&c, KH_KEY_UNSPECIFIED, KH_DIGEST_DEFAULT, "certificate", &e));

	c.fips_allow_eddsa = true;
	ALLOWED(fips_policy_key_type(&c, KH_KEY_ED25519, &e));
	ALLOWED(fips_policy_sign(&c, KH_KEY_ED25519, KH_DIGEST_DEFAULT, KH_PAD_DEFAULT, &e));
	ALLOWED(fips_policy_cert_digest(&c, KH_KEY_ED25519, KH_DIGEST_DEFAULT, "certificate", &e));
	/* fips_allow_eddsa opens Ed25519 only. */
	REFUSED(fips_policy_key_type(&c, KH_KEY_SECP256K1, &e), "secp256k1");
#undef REFUSED
#undef ALLOWED
}

static void test_aligned(void **state)
{
	(void)state;
	check_fips_mode(SVC_FIPS_ALIGNED);
}

static void test_validated(void **state)
{
	(void)state;
	check_fips_mode(SVC_FIPS_VALIDATED);
}

static EVP_PKEY *rsa_key(unsigned bits, unsigned long e)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;
	BIGNUM *be = BN_new();

	assert_non_null(ctx);
	assert_non_null(be);
	assert_int_equal(BN_set_word(be, e), 1);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits), 1);
	assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, be), 1);
	assert_int_equal(EVP_PKEY_keygen(ctx, &k), 1);
	BN_free(be);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

static void test_public_keys(void **state)
{
	struct svc_config aligned = cfg_of(SVC_FIPS_ALIGNED, false), off = cfg_of(SVC_FIPS_OFF, false);
	struct kh_errbuf e;
	EVP_PKEY *k;

	(void)state;
	k = rsa_key(1024, 65537);
	memset(&e, 0, sizeof(e));
	refused(fips_policy_public_key(&aligned, k, &e), &e, "RSA modulus 1024");
	assert_int_equal(fips_policy_public_key(&off, k, &e), KH_OK);
	EVP_PKEY_free(k);

	k = rsa_key(2048, 3);
	memset(&e, 0, sizeof(e));
	refused(fips_policy_public_key(&aligned, k, &e), &e, "exponent other than 65537");
	EVP_PKEY_free(k);

	k = rsa_key(2048, 65537);
	assert_int_equal(fips_policy_public_key(&aligned, k, &e), KH_OK);
	EVP_PKEY_free(k);

	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime192v1");
	assert_non_null(k);
	memset(&e, 0, sizeof(e));
	refused(fips_policy_public_key(&aligned, k, &e), &e, "curve prime192v1");
	assert_int_equal(fips_policy_public_key(&off, k, &e), KH_OK);
	EVP_PKEY_free(k);

	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	assert_non_null(k);
	memset(&e, 0, sizeof(e));
	refused(fips_policy_public_key(&aligned, k, &e), &e, "curve secp256k1");
	EVP_PKEY_free(k);

	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	assert_non_null(k);
	assert_int_equal(fips_policy_public_key(&aligned, k, &e), KH_OK);
	EVP_PKEY_free(k);

	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k);
	memset(&e, 0, sizeof(e));
	refused(fips_policy_public_key(&aligned, k, &e), &e, "fips_allow_eddsa");
	aligned.fips_allow_eddsa = true;
	assert_int_equal(fips_policy_public_key(&aligned, k, &e), KH_OK);
	EVP_PKEY_free(k);

	/* No public key (the token holds none): nothing to judge here. */
	assert_int_equal(fips_policy_public_key(&aligned, NULL, &e), KH_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_allows_everything),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_validated),
		cmocka_unit_test(test_public_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
