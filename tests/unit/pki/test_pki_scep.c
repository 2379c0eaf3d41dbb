/* test_pki_scep.c: the SCEP parsers without a server (pki/pki_scep.c):
 * GetCACaps and the algorithm choice it drives, GetCACert as a single
 * certificate and as a CA+RA PKCS#7 (the RA must be signed by the CA),
 * the transactionID and CertPoll's IssuerAndSubject.
 * The message exchange itself is tests/integration/test_scep.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "pki/pki_scep.h"

static EVP_PKEY *rsa_key(void)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);

	assert_non_null(k);
	return k;
}

/* A certificate for subject cn and key k, signed by issuer/ikey (self when NULL). */
static X509 *cert(const char *cn, EVP_PKEY *k, X509 *issuer, EVP_PKEY *ikey, bool ca)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX v;
	X509_EXTENSION *ext;

	assert_non_null(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, ikey ? ikey : k, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static size_t p7_of(X509 *a, X509 *b, uint8_t **der)
{
	PKCS7 *p7 = PKCS7_new();
	int n;

	assert_int_equal(PKCS7_set_type(p7, NID_pkcs7_signed), 1);
	assert_int_equal(PKCS7_content_new(p7, NID_pkcs7_data), 1);
	assert_int_equal(PKCS7_add_certificate(p7, a), 1);
	assert_int_equal(PKCS7_add_certificate(p7, b), 1);
	*der = NULL;
	n = i2d_PKCS7(p7, der);
	assert_true(n > 0);
	PKCS7_free(p7);
	return (size_t)n;
}

static void test_caps(void **state)
{
	static const char std[] = "Renewal\r\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation\n";
	struct pki_scep_caps c;
	struct kh_errbuf e = { 0 };
	const EVP_MD *md = NULL;
	const EVP_CIPHER *ci = NULL;

	(void)state;
	pki_scep_caps_parse((const uint8_t *)std, strlen(std), &c);
	assert_true(c.post && c.sha256 && c.aes && c.renewal);
	assert_int_equal(pki_scep_choose(&c, true, &md, &ci, &e), KH_OK);
	assert_int_equal(EVP_MD_get_type(md), NID_sha256);
	assert_int_equal(EVP_CIPHER_get_nid(ci), NID_aes_128_cbc);
	/* SCEPStandard alone implies AES, POST and SHA-256 (RFC 8894 §3.5.2). */
	pki_scep_caps_parse((const uint8_t *)"scepstandard", 12, &c);
	assert_true(c.post && c.sha256 && c.aes);
	/* Only SHA-1 and DES: refused, and said why. */
	pki_scep_caps_parse((const uint8_t *)"SHA-1\nDES3\n", 11, &c);
	assert_int_equal(pki_scep_choose(&c, false, &md, &ci, &e), KH_E_FAILED_PRECONDITION);
	assert_non_null(strstr(e.msg, "SHA-1"));
	/* 3DES only without AES, and never in FIPS mode. */
	memset(&e, 0, sizeof(e));
	pki_scep_caps_parse((const uint8_t *)"SHA-512 DES3", 12, &c);
	assert_int_equal(pki_scep_choose(&c, false, &md, &ci, &e), KH_OK);
	assert_int_equal(EVP_MD_get_type(md), NID_sha512);
	assert_int_equal(EVP_CIPHER_get_nid(ci), NID_des_ede3_cbc);
	assert_int_equal(pki_scep_choose(&c, true, &md, &ci, &e), KH_E_FAILED_PRECONDITION);
	/* Nothing offered: nothing keyhold uses. */
	pki_scep_caps_parse((const uint8_t *)"", 0, &c);
	assert_int_equal(pki_scep_choose(&c, false, &md, &ci, &e), KH_E_FAILED_PRECONDITION);
}

static void test_cacert(void **state)
{
	EVP_PKEY *kca = rsa_key(), *kra = rsa_key(), *kother = rsa_key();
	X509 *ca = cert("SCEP CA", kca, NULL, NULL, true);
	X509 *ra = cert("SCEP RA", kra, ca, kca, false);
	X509 *forged = cert("SCEP RA", kra, ca, kother, false);
	X509 *got_ca = NULL, *got_ra = NULL;
	struct kh_errbuf e = { 0 };
	uint8_t *der = NULL;
	int n;
	size_t len;

	(void)state;
	/* A single DER certificate: the CA, no RA. */
	n = i2d_X509(ca, &der);
	assert_int_equal(pki_scep_cacert_parse(der, (size_t)n, &got_ca, &got_ra, &e), KH_OK);
	assert_int_equal(X509_cmp(got_ca, ca), 0);
	assert_null(got_ra);
	X509_free(got_ca);
	/* Trailing bytes are refused. */
	assert_int_not_equal(pki_scep_cacert_parse(der, (size_t)n - 1, &got_ca, &got_ra, &e), KH_OK);
	OPENSSL_free(der);
	/* RA + CA, either order. */
	len = p7_of(ra, ca, &der);
	assert_int_equal(pki_scep_cacert_parse(der, len, &got_ca, &got_ra, &e), KH_OK);
	assert_int_equal(X509_cmp(got_ca, ca), 0);
	assert_int_equal(X509_cmp(got_ra, ra), 0);
	X509_free(got_ca);
	X509_free(got_ra);
	OPENSSL_free(der);
	/* An RA whose signature is not the CA's. */
	len = p7_of(ca, forged, &der);
	memset(&e, 0, sizeof(e));
	assert_int_equal(pki_scep_cacert_parse(der, len, &got_ca, &got_ra, &e), KH_E_INVALID_ARGUMENT);
	if (strstr(e.msg, "issued the RA") == NULL)
		fail_msg("%s", e.msg);
	OPENSSL_free(der);
	/* Garbage. */
	assert_int_equal(pki_scep_cacert_parse((const uint8_t *)"hello", 5, &got_ca, &got_ra, &e), KH_E_INVALID_ARGUMENT);
	X509_free(ca);
	X509_free(ra);
	X509_free(forged);
	EVP_PKEY_free(kca);
	EVP_PKEY_free(kra);
	EVP_PKEY_free(kother);
}

/* transactionID: the hex SHA-256 of the SubjectPublicKeyInfo, lower case. */
static void test_txid(void **state)
{
	struct kh_errbuf e = { 0 };
	EVP_PKEY *k = rsa_key();
	uint8_t *spki = NULL, h[32];
	char want[65], got[PKI_SCEP_TXID + 1];
	int n = i2d_PUBKEY(k, &spki), i;

	(void)state;
	assert_true(n > 0);
	SHA256(spki, (size_t)n, h);
	for (i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", h[i]);
	assert_int_equal(pki_scep_txid(k, got, &e), KH_OK);
	assert_string_equal(got, want);
	OPENSSL_free(spki);
	EVP_PKEY_free(k);
}

/* IssuerAndSubject: SEQUENCE { the CA's subject, the request's subject };
 * a stored subject that does not parse, or has bytes after it, is refused. */
static void test_issuer_and_subject(void **state)
{
	struct kh_errbuf e = { 0 };
	EVP_PKEY *k = rsa_key();
	X509 *ca = cert("Test SCEP CA", k, NULL, NULL, true);
	X509_NAME *sub = X509_NAME_new(), *got_i = NULL, *got_s = NULL;
	uint8_t *sd = NULL, *out = NULL, *bad;
	const unsigned char *p;
	size_t out_len = 0;
	long len;
	int sl, tag, cls, i;

	(void)state;
	/* Long enough for a two-byte length. */
	for (i = 0; i < 8; i++)
		assert_int_equal(X509_NAME_add_entry_by_txt(sub, "OU", MBSTRING_ASC,
							    (const unsigned char *)"a fairly long organisational unit", -1,
							    -1, 0),
				 1);
	sl = i2d_X509_NAME(sub, &sd);
	assert_true(sl > 0);
	assert_int_equal(pki_scep_issuer_and_subject(ca, sd, (size_t)sl, &out, &out_len, &e), KH_OK);
	p = out;
	assert_int_equal(ASN1_get_object(&p, &len, &tag, &cls, (long)out_len) & 0x80, 0);
	assert_int_equal(tag, V_ASN1_SEQUENCE);
	assert_int_equal((size_t)(p - out) + (size_t)len, out_len);
	got_i = d2i_X509_NAME(NULL, &p, len);
	assert_non_null(got_i);
	got_s = d2i_X509_NAME(NULL, &p, (long)(out + out_len - p));
	assert_non_null(got_s);
	assert_ptr_equal(p, out + out_len);
	assert_int_equal(X509_NAME_cmp(got_i, X509_get_subject_name(ca)), 0);
	assert_int_equal(X509_NAME_cmp(got_s, sub), 0);
	free(out);
	out = NULL;
	/* Truncated and trailing bytes. */
	assert_int_equal(pki_scep_issuer_and_subject(ca, sd, (size_t)sl - 1, &out, &out_len, &e), KH_E_DATA_LOSS);
	bad = malloc((size_t)sl + 1);
	assert_non_null(bad);
	memcpy(bad, sd, (size_t)sl);
	bad[sl] = 0;
	assert_int_equal(pki_scep_issuer_and_subject(ca, bad, (size_t)sl + 1, &out, &out_len, &e), KH_E_DATA_LOSS);
	assert_null(out);
	free(bad);
	X509_NAME_free(got_i);
	X509_NAME_free(got_s);
	OPENSSL_free(sd);
	X509_NAME_free(sub);
	X509_free(ca);
	EVP_PKEY_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_cacert),
		cmocka_unit_test(test_txid),
		cmocka_unit_test(test_issuer_and_subject),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
