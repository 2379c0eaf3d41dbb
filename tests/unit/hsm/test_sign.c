/* test_sign.c: the token-free half of hsm/sign.c: ECDSA r||s (PKCS#11 2.40
 * §2.3.1) to X9.62 DER, checked against hand-made vectors and against
 * OpenSSL's d2i_ECDSA_SIG; the DigestInfo prefixes (RFC 8017 §9.2 note 1)
 * against the DER OpenSSL builds for an X509_SIG; and the request checks
 * of hsm_sign_prepare (mechanism, input, refusals). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "hsm_int.h"

/* ---- ECDSA r||s -> DER ---- */

/* Converts raw, checks the DER is exactly want (when given), parses it back
 * with OpenSSL and compares r and s with the two halves of raw. */
static void ecdsa_check(const uint8_t *raw, size_t len, const uint8_t *want, size_t want_len)
{
	uint8_t *der = NULL, *re = NULL;
	size_t der_len = 0;
	const unsigned char *p;
	ECDSA_SIG *sig;
	const BIGNUM *r, *s;
	uint8_t half[2][80];
	int n;

	assert_int_equal(hsm_ecdsa_der(raw, len, &der, &der_len), KH_OK);
	assert_non_null(der);
	if (want != NULL) {
		assert_int_equal(der_len, want_len);
		assert_memory_equal(der, want, want_len);
	}
	p = der;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	assert_non_null(sig);
	assert_ptr_equal(p, der + der_len); /* nothing left over */
	ECDSA_SIG_get0(sig, &r, &s);
	assert_true(len / 2 <= sizeof(half[0]));
	assert_int_equal(BN_bn2binpad(r, half[0], (int)(len / 2)), (int)(len / 2));
	assert_int_equal(BN_bn2binpad(s, half[1], (int)(len / 2)), (int)(len / 2));
	assert_memory_equal(half[0], raw, len / 2);
	assert_memory_equal(half[1], raw + len / 2, len / 2);
	/* DER is canonical: OpenSSL's own encoding is byte for byte the same. */
	n = i2d_ECDSA_SIG(sig, &re);
	assert_int_equal(n, (int)der_len);
	assert_memory_equal(re, der, der_len);
	OPENSSL_free(re);
	ECDSA_SIG_free(sig);
	free(der);
}

static void test_ecdsa_small_r_high_s(void **state)
{
	/* P-256: r = 1 (31 leading zero bytes dropped), s = 0x80 00..00 (high
	 * bit set: a 0x00 pad keeps it positive). */
	uint8_t raw[64] = { 0 };
	uint8_t want[40] = { 0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00, 0x80 };

	(void)state;
	raw[31] = 0x01;
	raw[32] = 0x80;
	ecdsa_check(raw, sizeof(raw), want, sizeof(want));
}

static void test_ecdsa_both_high_bit(void **state)
{
	/* r = ff..ff (pad), s = 7f ff..ff (no pad). */
	uint8_t raw[64], want[2 + 35 + 34];

	(void)state;
	memset(raw, 0xff, sizeof(raw));
	raw[32] = 0x7f;
	want[0] = 0x30;
	want[1] = 35 + 34;
	want[2] = 0x02;
	want[3] = 0x21;
	want[4] = 0x00;
	memset(want + 5, 0xff, 32);
	want[37] = 0x02;
	want[38] = 0x20;
	want[39] = 0x7f;
	memset(want + 40, 0xff, 31);
	ecdsa_check(raw, sizeof(raw), want, sizeof(want));
}

static void test_ecdsa_leading_zeros(void **state)
{
	/* r = 00 00 7f .. (two zero bytes dropped, no pad), s = 00 80 ..
	 * (the zero byte stays as the pad). */
	uint8_t raw[64], want[2 + 32 + 34];

	(void)state;
	memset(raw, 0x11, sizeof(raw));
	raw[0] = 0x00;
	raw[1] = 0x00;
	raw[2] = 0x7f;
	raw[32] = 0x00;
	raw[33] = 0x80;
	want[0] = 0x30;
	want[1] = 32 + 34;
	want[2] = 0x02;
	want[3] = 30;
	memcpy(want + 4, raw + 2, 30);
	want[34] = 0x02;
	want[35] = 32;
	memcpy(want + 36, raw + 32, 32);
	ecdsa_check(raw, sizeof(raw), want, sizeof(want));
}

static void test_ecdsa_zero_s(void **state)
{
	/* s = 0 is encoded as INTEGER 0 (02 01 00), not as an empty INTEGER. */
	uint8_t raw[64] = { 0 };
	uint8_t want[2 + 3 + 3] = { 0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x00 };

	(void)state;
	raw[31] = 0x05;
	ecdsa_check(raw, sizeof(raw), want, sizeof(want));
}

static void test_ecdsa_p521_long_form(void **state)
{
	/* P-521: 66-byte halves; r = s = 01 ff..ff (521 bits): the SEQUENCE
	 * is 136 bytes and takes the long length form 30 81 88. */
	uint8_t raw[132], want[3 + 2 * 68];

	(void)state;
	memset(raw, 0xff, sizeof(raw));
	raw[0] = 0x01;
	raw[66] = 0x01;
	want[0] = 0x30;
	want[1] = 0x81;
	want[2] = 0x88;
	want[3] = 0x02;
	want[4] = 0x42;
	memcpy(want + 5, raw, 66);
	want[71] = 0x02;
	want[72] = 0x42;
	memcpy(want + 73, raw + 66, 66);
	ecdsa_check(raw, sizeof(raw), want, sizeof(want));
}

static void test_ecdsa_random_curves(void **state)
{
	/* P-256, P-384, P-521 sized r||s, random, with forced edge bytes. */
	static const size_t lens[] = { 64, 96, 132 };
	uint8_t raw[132];
	size_t i;
	int k;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (k = 0; k < 200; k++) {
			assert_int_equal(RAND_bytes(raw, (int)lens[i]), 1);
			if (k % 4 == 1)
				raw[0] = 0;
			if (k % 4 == 2)
				raw[lens[i] / 2] |= 0x80;
			if (k % 4 == 3)
				memset(raw, 0, lens[i] / 2 - 1);
			ecdsa_check(raw, lens[i], NULL, 0);
		}
	}
}

static void test_ecdsa_bad_lengths(void **state)
{
	static const size_t lens[] = { 0, 1, 63, 65, 95, 131 };
	uint8_t raw[132];
	uint8_t sentinel = 0;
	uint8_t *der = &sentinel;
	size_t der_len = 12345, i;

	(void)state;
	memset(raw, 0x42, sizeof(raw));
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		assert_int_equal(hsm_ecdsa_der(raw, lens[i], &der, &der_len), KH_E_INTERNAL);
		/* Outputs untouched on failure. */
		assert_ptr_equal(der, &sentinel);
		assert_int_equal(der_len, 12345);
	}
}

/* ---- DigestInfo ---- */

struct di_case {
	enum kh_digest d;
	int nid;
	size_t len;
	CK_MECHANISM_TYPE hash;
	CK_RSA_PKCS_MGF_TYPE mgf;
};

static const struct di_case di_cases[] = {
	{ KH_DIGEST_MD5, NID_md5, 16, CKM_MD5, 0 },
	{ KH_DIGEST_SHA1, NID_sha1, 20, CKM_SHA_1, CKG_MGF1_SHA1 },
	{ KH_DIGEST_SHA224, NID_sha224, 28, CKM_SHA224, CKG_MGF1_SHA224 },
	{ KH_DIGEST_SHA256, NID_sha256, 32, CKM_SHA256, CKG_MGF1_SHA256 },
	{ KH_DIGEST_SHA384, NID_sha384, 48, CKM_SHA384, CKG_MGF1_SHA384 },
	{ KH_DIGEST_SHA512, NID_sha512, 64, CKM_SHA512, CKG_MGF1_SHA512 },
};

/* DigestInfo ::= SEQUENCE { AlgorithmIdentifier (OID, NULL), OCTET STRING },
 * as OpenSSL encodes it (X509_SIG). */
static int openssl_digest_info(int nid, const uint8_t *dg, size_t len, uint8_t **out)
{
	X509_SIG *sig = X509_SIG_new();
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *os;
	int n;

	assert_non_null(sig);
	X509_SIG_getm(sig, &alg, &os);
	assert_int_equal(X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_NULL, NULL), 1);
	assert_int_equal(ASN1_OCTET_STRING_set(os, dg, (int)len), 1);
	*out = NULL;
	n = i2d_X509_SIG(sig, out);
	X509_SIG_free(sig);
	assert_true(n > 0);
	return n;
}

static void test_digest_info_prefixes(void **state)
{
	uint8_t dg[64], buf[96];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(di_cases) / sizeof(di_cases[0]); i++) {
		const struct di_case *c = &di_cases[i];
		struct hsm_digest_spec ds;
		uint8_t *ref = NULL;
		int n;

		memset(dg, (int)(0xa0 + i), sizeof(dg));
		assert_int_equal(kh_digest_len(c->d), c->len);
		assert_int_equal(hsm_digest_spec(c->d, &ds), KH_OK);
		assert_int_equal(ds.hash, c->hash);
		assert_int_equal(ds.mgf, c->mgf);
		n = openssl_digest_info(c->nid, dg, c->len, &ref);
		/* prefix || digest is exactly OpenSSL's DigestInfo. */
		assert_int_equal((size_t)n, ds.di_len + c->len);
		assert_memory_equal(ds.di, ref, ds.di_len);
		assert_true(ds.di_len + c->len <= sizeof(buf));
		memcpy(buf, ds.di, ds.di_len);
		memcpy(buf + ds.di_len, dg, c->len);
		assert_memory_equal(buf, ref, (size_t)n);
		OPENSSL_free(ref);
	}
}

static void test_digest_info_rfc8017(void **state)
{
	/* RFC 8017 §9.2 note 1, verbatim. */
	static const uint8_t sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
					  0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
	static const uint8_t sha384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
					  0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
	static const uint8_t sha512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
					  0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };
	struct hsm_digest_spec ds;

	(void)state;
	assert_int_equal(hsm_digest_spec(KH_DIGEST_SHA256, &ds), KH_OK);
	assert_int_equal(ds.di_len, sizeof(sha256));
	assert_memory_equal(ds.di, sha256, sizeof(sha256));
	assert_int_equal(hsm_digest_spec(KH_DIGEST_SHA384, &ds), KH_OK);
	assert_int_equal(ds.di_len, sizeof(sha384));
	assert_memory_equal(ds.di, sha384, sizeof(sha384));
	assert_int_equal(hsm_digest_spec(KH_DIGEST_SHA512, &ds), KH_OK);
	assert_int_equal(ds.di_len, sizeof(sha512));
	assert_memory_equal(ds.di, sha512, sizeof(sha512));
}

static void test_digest_spec_refused(void **state)
{
	struct hsm_digest_spec ds = { NULL, 777, 0, 0 };

	(void)state;
	assert_int_equal(hsm_digest_spec(KH_DIGEST_DEFAULT, &ds), KH_E_INVALID_ARGUMENT);
	assert_int_equal(hsm_digest_spec((enum kh_digest)(KH_DIGEST_MAX + 1), &ds), KH_E_INVALID_ARGUMENT);
	assert_int_equal(hsm_digest_spec((enum kh_digest)-1, &ds), KH_E_INVALID_ARGUMENT);
	assert_null(ds.di);
	assert_int_equal(ds.di_len, 777);
}

/* ---- hsm_sign_prepare ---- */

struct prep {
	CK_MECHANISM mech;
	CK_RSA_PKCS_PSS_PARAMS pss;
	uint8_t buf[96];
	const uint8_t *data;
	size_t data_len;
	struct kh_errbuf e;
};

static enum kh_err prepare(struct prep *p, CK_KEY_TYPE kt, enum kh_digest d, enum kh_padding pad,
			   const uint8_t *in, size_t in_len, size_t bufsz)
{
	memset(p, 0, sizeof(*p));
	p->mech.mechanism = 0xdead;
	p->data_len = 4242;
	return hsm_sign_prepare(kt, d, pad, in, in_len, &p->mech, &p->pss, p->buf, bufsz, &p->data,
				&p->data_len, &p->e);
}

static void assert_refused(struct prep *p, enum kh_err got, enum kh_err want, const char *msg)
{
	assert_int_equal(got, want);
	assert_non_null(strstr(p->e.msg, msg));
	assert_int_equal(p->mech.mechanism, 0xdead);
	assert_null(p->data);
	assert_int_equal(p->data_len, 4242);
}

static void test_prepare_rsa_pkcs1(void **state)
{
	uint8_t dg[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(di_cases) / sizeof(di_cases[0]); i++) {
		const struct di_case *c = &di_cases[i];
		enum kh_padding pads[2] = { KH_PAD_DEFAULT, KH_PAD_PKCS1 };
		int k;

		memset(dg, (int)(0x30 + i), sizeof(dg));
		for (k = 0; k < 2; k++) {
			struct prep p;
			uint8_t *ref = NULL;
			int n;

			assert_int_equal(prepare(&p, CKK_RSA, c->d, pads[k], dg, c->len, sizeof(p.buf)), KH_OK);
			assert_int_equal(p.mech.mechanism, CKM_RSA_PKCS);
			assert_null(p.mech.pParameter);
			assert_ptr_equal(p.data, p.buf);
			n = openssl_digest_info(c->nid, dg, c->len, &ref);
			assert_int_equal(p.data_len, (size_t)n);
			assert_memory_equal(p.data, ref, (size_t)n);
			OPENSSL_free(ref);
		}
	}
}

static void test_prepare_rsa_pss(void **state)
{
	uint8_t dg[48];
	struct prep p;

	(void)state;
	memset(dg, 0x5a, sizeof(dg));
	assert_int_equal(prepare(&p, CKK_RSA, KH_DIGEST_SHA384, KH_PAD_PSS, dg, 48, sizeof(p.buf)), KH_OK);
	assert_int_equal(p.mech.mechanism, CKM_RSA_PKCS_PSS);
	assert_ptr_equal(p.mech.pParameter, &p.pss);
	assert_int_equal(p.mech.ulParameterLen, sizeof(p.pss));
	assert_int_equal(p.pss.hashAlg, CKM_SHA384);
	assert_int_equal(p.pss.mgf, CKG_MGF1_SHA384);
	assert_int_equal(p.pss.sLen, 48);
	assert_ptr_equal(p.data, dg);
	assert_int_equal(p.data_len, 48);

	assert_refused(&p, prepare(&p, CKK_RSA, KH_DIGEST_MD5, KH_PAD_PSS, dg, 16, sizeof(p.buf)),
		       KH_E_INVALID_ARGUMENT, "PSS is not defined with MD5");
}

static void test_prepare_ecdsa_eddsa(void **state)
{
	uint8_t dg[64], msg[3] = { 'a', 'b', 'c' };
	struct prep p;

	(void)state;
	memset(dg, 0x77, sizeof(dg));
	assert_int_equal(prepare(&p, CKK_EC, KH_DIGEST_SHA512, KH_PAD_DEFAULT, dg, 64, sizeof(p.buf)), KH_OK);
	assert_int_equal(p.mech.mechanism, CKM_ECDSA);
	assert_ptr_equal(p.data, dg);
	assert_int_equal(p.data_len, 64);

	assert_int_equal(prepare(&p, CKK_EC_EDWARDS, KH_DIGEST_DEFAULT, KH_PAD_DEFAULT, msg, 3, sizeof(p.buf)),
			 KH_OK);
	assert_int_equal(p.mech.mechanism, CKM_EDDSA);
	assert_ptr_equal(p.data, msg);
	assert_int_equal(p.data_len, 3);
}

static void test_prepare_refused(void **state)
{
	uint8_t dg[64];
	struct prep p;

	(void)state;
	memset(dg, 0x01, sizeof(dg));
	assert_refused(&p, prepare(&p, CKK_EC_EDWARDS, KH_DIGEST_SHA256, KH_PAD_DEFAULT, dg, 32, sizeof(p.buf)),
		       KH_E_INVALID_ARGUMENT, "PureEdDSA");
	assert_refused(&p, prepare(&p, CKK_EC_EDWARDS, KH_DIGEST_DEFAULT, KH_PAD_PSS, dg, 32, sizeof(p.buf)),
		       KH_E_INVALID_ARGUMENT, "RSA keys only");
	assert_refused(&p, prepare(&p, CKK_EC, KH_DIGEST_SHA256, KH_PAD_PSS, dg, 32, sizeof(p.buf)),
		       KH_E_INVALID_ARGUMENT, "RSA keys only");
	assert_refused(&p, prepare(&p, CKK_EC, KH_DIGEST_DEFAULT, KH_PAD_DEFAULT, dg, 32, sizeof(p.buf)),
		       KH_E_INVALID_ARGUMENT, "digest algorithm is required");
	assert_refused(&p, prepare(&p, CKK_RSA, KH_DIGEST_SHA256, KH_PAD_DEFAULT, dg, 31, sizeof(p.buf)),
		       KH_E_INVALID_ARGUMENT, "is 32 bytes, not 31");
	assert_refused(&p, prepare(&p, CKK_EC, KH_DIGEST_SHA384, KH_PAD_DEFAULT, dg, 64, sizeof(p.buf)),
		       KH_E_INVALID_ARGUMENT, "is 48 bytes, not 64");
	assert_refused(&p, prepare(&p, CKK_DSA, KH_DIGEST_SHA256, KH_PAD_DEFAULT, dg, 32, sizeof(p.buf)),
		       KH_E_UNIMPLEMENTED, "cannot sign");
	/* DigestInfo||digest for SHA-512 is 83 bytes: a smaller buffer is refused. */
	assert_refused(&p, prepare(&p, CKK_RSA, KH_DIGEST_SHA512, KH_PAD_DEFAULT, dg, 64, 82),
		       KH_E_INTERNAL, "digest too long");
	assert_int_equal(prepare(&p, CKK_RSA, KH_DIGEST_SHA512, KH_PAD_DEFAULT, dg, 64, 83), KH_OK);
	assert_int_equal(p.data_len, 83);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ecdsa_small_r_high_s),
		cmocka_unit_test(test_ecdsa_both_high_bit),
		cmocka_unit_test(test_ecdsa_leading_zeros),
		cmocka_unit_test(test_ecdsa_zero_s),
		cmocka_unit_test(test_ecdsa_p521_long_form),
		cmocka_unit_test(test_ecdsa_random_curves),
		cmocka_unit_test(test_ecdsa_bad_lengths),
		cmocka_unit_test(test_digest_info_prefixes),
		cmocka_unit_test(test_digest_info_rfc8017),
		cmocka_unit_test(test_digest_spec_refused),
		cmocka_unit_test(test_prepare_rsa_pkcs1),
		cmocka_unit_test(test_prepare_rsa_pss),
		cmocka_unit_test(test_prepare_ecdsa_eddsa),
		cmocka_unit_test(test_prepare_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
