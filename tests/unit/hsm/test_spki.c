/* test_spki.c: hsm_spki_build (hsm/spki.c), the SubjectPublicKeyInfo a
 * token key is given from its attributes: RSA CKA_MODULUS/EXPONENT and
 * CKA_EC_PARAMS + CKA_EC_POINT (DER-wrapped per PKCS#11 2.40 §2.3.3, or raw)
 * must give byte for byte the SPKI OpenSSL writes for the same software
 * key; malformed attributes are refused with an error, and truncated or
 * bit-flipped ones never crash (run under ASan in CI). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "hsm_int.h"

/* Attributes of one key as a token would return them, and OpenSSL's SPKI. */
struct attrs {
	CK_KEY_TYPE kt;
	uint8_t a[600], b[600];
	size_t alen, blen;
	uint8_t *spki;
	int spki_len;
	uint32_t bits;
	int nid;
};

static void attrs_free(struct attrs *x)
{
	OPENSSL_free(x->spki);
	x->spki = NULL;
}

static void ref_spki(EVP_PKEY *pk, struct attrs *x)
{
	x->spki = NULL;
	x->spki_len = i2d_PUBKEY(pk, &x->spki);
	assert_true(x->spki_len > 0);
	x->bits = (uint32_t)EVP_PKEY_get_bits(pk);
}

static void rsa_attrs(struct attrs *x)
{
	EVP_PKEY *pk = EVP_RSA_gen(2048);
	BIGNUM *n = NULL, *e = NULL;

	assert_non_null(pk);
	memset(x, 0, sizeof(*x));
	x->kt = CKK_RSA;
	x->nid = NID_undef;
	assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
	x->alen = (size_t)BN_bn2bin(n, x->a);
	x->blen = (size_t)BN_bn2bin(e, x->b);
	assert_int_equal(x->alen, 256);
	ref_spki(pk, x);
	BN_free(n);
	BN_free(e);
	EVP_PKEY_free(pk);
}

/* DER OID of nid into x->a. */
static void oid_der(int nid, struct attrs *x)
{
	uint8_t *p = x->a;
	int n = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), NULL);

	assert_true(n > 0 && (size_t)n <= sizeof(x->a));
	assert_int_equal(i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &p), n);
	x->alen = (size_t)n;
}

/* pt wrapped as a DER OCTET STRING into x->b (wrap) or raw. */
static void point_attr(const uint8_t *pt, size_t ptlen, bool wrap, struct attrs *x)
{
	if (wrap) {
		ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
		uint8_t *p = x->b;
		int n;

		assert_non_null(os);
		assert_int_equal(ASN1_OCTET_STRING_set(os, pt, (int)ptlen), 1);
		n = i2d_ASN1_OCTET_STRING(os, NULL);
		assert_true(n > 0 && (size_t)n <= sizeof(x->b));
		assert_int_equal(i2d_ASN1_OCTET_STRING(os, &p), n);
		x->blen = (size_t)n;
		ASN1_OCTET_STRING_free(os);
	} else {
		memcpy(x->b, pt, ptlen);
		x->blen = ptlen;
	}
}

static void ec_attrs(const char *group, int nid, bool wrap, struct attrs *x)
{
	EVP_PKEY *pk = EVP_EC_gen(group);
	uint8_t pt[200];
	size_t ptlen = 0;

	assert_non_null(pk);
	memset(x, 0, sizeof(*x));
	x->kt = CKK_EC;
	x->nid = nid;
	assert_int_equal(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptlen), 1);
	assert_int_equal(pt[0], 0x04); /* uncompressed */
	oid_der(nid, x);
	point_attr(pt, ptlen, wrap, x);
	ref_spki(pk, x);
	EVP_PKEY_free(pk);
}

static void ed25519_attrs(bool wrap, bool printable, struct attrs *x)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	uint8_t pt[32];
	size_t ptlen = sizeof(pt);

	assert_non_null(pk);
	memset(x, 0, sizeof(*x));
	x->kt = CKK_EC_EDWARDS;
	x->nid = NID_ED25519;
	assert_int_equal(EVP_PKEY_get_raw_public_key(pk, pt, &ptlen), 1);
	assert_int_equal(ptlen, 32);
	if (printable) {
		memcpy(x->a, "\x13\x0c" "edwards25519", 14);
		x->alen = 14;
	} else {
		oid_der(NID_ED25519, x);
	}
	point_attr(pt, ptlen, wrap, x);
	ref_spki(pk, x);
	EVP_PKEY_free(pk);
}

/* Builds from x and checks the result against OpenSSL's SPKI. */
static void build_matches(const struct attrs *x)
{
	struct kh_errbuf e = { 0 };
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	EVP_PKEY *pk = NULL;
	uint32_t bits = 0;
	int nid = -1;
	uint8_t *re = NULL;

	assert_int_equal(hsm_spki_build(x->kt, x->a, x->alen, x->b, x->blen, &spki, &spki_len, &pk, &bits, &nid, &e),
			 KH_OK);
	assert_int_equal(spki_len, (size_t)x->spki_len);
	assert_memory_equal(spki, x->spki, spki_len);
	assert_int_equal(bits, x->bits);
	assert_int_equal(nid, x->nid);
	/* The EVP_PKEY handed out is the same key. */
	assert_non_null(pk);
	assert_int_equal(i2d_PUBKEY(pk, &re), x->spki_len);
	assert_memory_equal(re, x->spki, spki_len);
	OPENSSL_free(re);
	EVP_PKEY_free(pk);
	free(spki);
	/* pkey is optional. */
	assert_int_equal(hsm_spki_build(x->kt, x->a, x->alen, x->b, x->blen, &spki, &spki_len, NULL, &bits, &nid, &e),
			 KH_OK);
	assert_memory_equal(spki, x->spki, spki_len);
	free(spki);
}

/* Builds and expects want; outputs must stay untouched. */
static void build_refused(CK_KEY_TYPE kt, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
			  enum kh_err want)
{
	struct kh_errbuf e = { 0 };
	uint8_t sentinel = 0, *spki = &sentinel;
	size_t spki_len = 99;
	EVP_PKEY *pk = (EVP_PKEY *)(uintptr_t)&sentinel;
	uint32_t bits = 7;
	int nid = 7;

	assert_int_equal(hsm_spki_build(kt, a, alen, b, blen, &spki, &spki_len, &pk, &bits, &nid, &e), want);
	assert_true(e.msg[0] != '\0');
	assert_ptr_equal(spki, &sentinel);
	assert_ptr_equal(pk, &sentinel);
	assert_int_equal(spki_len, 99);
	assert_int_equal(bits, 7);
	assert_int_equal(nid, 7);
}

static void test_rsa(void **state)
{
	struct attrs x;

	(void)state;
	rsa_attrs(&x);
	build_matches(&x);
	attrs_free(&x);
}

static void test_ec_curves(void **state)
{
	static const struct { const char *group; int nid; enum kh_key_type t; } c[] = {
		{ "P-256", NID_X9_62_prime256v1, KH_KEY_P256 },
		{ "P-384", NID_secp384r1, KH_KEY_P384 },
		{ "P-521", NID_secp521r1, KH_KEY_P521 },
	};
	size_t i;
	int wrap;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		for (wrap = 0; wrap < 2; wrap++) {
			struct attrs x;
			const uint8_t *params;
			size_t plen = 0;

			ec_attrs(c[i].group, c[i].nid, wrap != 0, &x);
			/* keys.c's CKA_EC_PARAMS for the type is the OID OpenSSL writes. */
			params = hsm_ec_params(c[i].t, &plen);
			assert_non_null(params);
			assert_int_equal(plen, x.alen);
			assert_memory_equal(params, x.a, plen);
			build_matches(&x);
			attrs_free(&x);
		}
	}
}

static void test_ed25519(void **state)
{
	struct attrs x;
	const uint8_t *params;
	size_t plen = 0;
	int wrap, printable;

	(void)state;
	for (wrap = 0; wrap < 2; wrap++) {
		for (printable = 0; printable < 2; printable++) {
			ed25519_attrs(wrap != 0, printable != 0, &x);
			build_matches(&x);
			attrs_free(&x);
		}
	}
	ed25519_attrs(true, false, &x);
	params = hsm_ec_params(KH_KEY_ED25519, &plen);
	assert_int_equal(plen, x.alen);
	assert_memory_equal(params, x.a, plen);
	attrs_free(&x);
	assert_null(hsm_ec_params(KH_KEY_RSA2048, &plen));
	assert_int_equal(plen, 0);
}

static void test_malformed(void **state)
{
	static const uint8_t oid_unknown[] = { 0x06, 0x03, 0x2a, 0x03, 0x04 }; /* 1.2.3.4 */
	struct attrs x, y, ed;
	uint8_t buf[600];

	(void)state;
	ec_attrs("P-256", NID_X9_62_prime256v1, true, &x);
	ec_attrs("P-384", NID_secp384r1, true, &y);
	ed25519_attrs(true, false, &ed);

	/* Unknown curve OID. */
	build_refused(CKK_EC, oid_unknown, sizeof(oid_unknown), x.b, x.blen, KH_E_UNIMPLEMENTED);
	/* Trailing junk after the OID. */
	memcpy(buf, x.a, x.alen);
	buf[x.alen] = 0x00;
	build_refused(CKK_EC, buf, x.alen + 1, x.b, x.blen, KH_E_UNIMPLEMENTED);
	/* Empty params and point. */
	build_refused(CKK_EC, NULL, 0, x.b, x.blen, KH_E_UNIMPLEMENTED);
	build_refused(CKK_EC, x.a, x.alen, NULL, 0, KH_E_INTERNAL);
	/* Bad OCTET STRING wrapping: length one too long, one too short. */
	memcpy(buf, x.b, x.blen);
	buf[1]++;
	build_refused(CKK_EC, x.a, x.alen, buf, x.blen, KH_E_INTERNAL);
	buf[1] -= 2;
	build_refused(CKK_EC, x.a, x.alen, buf, x.blen, KH_E_INTERNAL);
	/* Wrong tag (BIT STRING instead of OCTET STRING). */
	memcpy(buf, x.b, x.blen);
	buf[0] = 0x03;
	build_refused(CKK_EC, x.a, x.alen, buf, x.blen, KH_E_INTERNAL);
	/* Wrong point length: a P-384 point under P-256 params and back. */
	build_refused(CKK_EC, x.a, x.alen, y.b, y.blen, KH_E_INTERNAL);
	build_refused(CKK_EC, y.a, y.alen, x.b, x.blen, KH_E_INTERNAL);
	/* A point not on the curve. */
	memcpy(buf, x.b, x.blen);
	buf[x.blen - 1] ^= 0x01;
	build_refused(CKK_EC, x.a, x.alen, buf, x.blen, KH_E_INTERNAL);
	/* Edwards: a 31-byte point, a P-256 OID, an Ed25519 key as CKK_EC. */
	memcpy(buf, ed.b, ed.blen);
	buf[1] = 31;
	build_refused(CKK_EC_EDWARDS, ed.a, ed.alen, buf, ed.blen - 1, KH_E_UNIMPLEMENTED);
	build_refused(CKK_EC_EDWARDS, x.a, x.alen, ed.b, ed.blen, KH_E_UNIMPLEMENTED);
	build_refused(CKK_EC, ed.a, ed.alen, ed.b, ed.blen, KH_E_INTERNAL);
	/* Unsupported key types. */
	build_refused(CKK_DSA, x.a, x.alen, x.b, x.blen, KH_E_UNIMPLEMENTED);
	build_refused(CKK_AES, NULL, 0, NULL, 0, KH_E_UNIMPLEMENTED);
	attrs_free(&x);
	attrs_free(&y);
	attrs_free(&ed);
}

static void test_raw_point_prefix_parses(void **state)
{
	struct attrs x;
	int tries;

	(void)state;
	/* A raw point 04 X Y whose X starts with a byte below 63 begins like a
	 * short OCTET STRING (04 len ...) with bytes left over: spki.c takes
	 * the DER form only when it spans the whole attribute, so this one is
	 * read raw and gives the right key. */
	for (tries = 0; tries < 200; tries++) {
		ec_attrs("P-256", NID_X9_62_prime256v1, false, &x);
		if (x.b[1] < 63)
			break;
		attrs_free(&x);
	}
	assert_true(tries < 200);
	build_matches(&x);
	attrs_free(&x);
}

/* One mutated build: no crash; a success must be a parseable SPKI. Returns
 * whether it succeeded. */
static bool try_build(CK_KEY_TYPE kt, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	struct kh_errbuf e = { 0 };
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	EVP_PKEY *pk = NULL, *back;
	uint32_t bits = 0;
	int nid = 0;
	const uint8_t *p;
	enum kh_err r;

	r = hsm_spki_build(kt, a, alen, b, blen, &spki, &spki_len, &pk, &bits, &nid, &e);
	if (r != KH_OK) {
		assert_null(spki);
		assert_null(pk);
		return false;
	}
	p = spki;
	back = d2i_PUBKEY(NULL, &p, (long)spki_len);
	assert_non_null(back);
	assert_ptr_equal(p, spki + spki_len);
	assert_int_equal(EVP_PKEY_eq(back, pk), 1);
	EVP_PKEY_free(back);
	EVP_PKEY_free(pk);
	free(spki);
	return true;
}

/* Every truncation and every single-bit flip of each attribute. */
static void mutate(const struct attrs *x, bool truncations_fail)
{
	uint8_t buf[600];
	size_t i;
	int bit;

	for (i = 0; i < x->alen; i++) {
		bool ok = try_build(x->kt, x->a, i, x->b, x->blen);

		if (truncations_fail)
			assert_false(ok);
	}
	for (i = 0; i < x->blen; i++) {
		bool ok = try_build(x->kt, x->a, x->alen, x->b, i);

		if (truncations_fail)
			assert_false(ok);
	}
	for (i = 0; i < x->alen; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(buf, x->a, x->alen);
			buf[i] ^= (uint8_t)(1u << bit);
			kh_ignore(try_build(x->kt, buf, x->alen, x->b, x->blen));
		}
	}
	for (i = 0; i < x->blen; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(buf, x->b, x->blen);
			buf[i] ^= (uint8_t)(1u << bit);
			kh_ignore(try_build(x->kt, x->a, x->alen, buf, x->blen));
		}
	}
}

static void test_mutations(void **state)
{
	struct attrs x;

	(void)state;
	/* A truncated EC OID or point never makes a key. */
	ec_attrs("P-256", NID_X9_62_prime256v1, true, &x);
	mutate(&x, true);
	attrs_free(&x);
	ec_attrs("P-384", NID_secp384r1, false, &x);
	mutate(&x, true);
	attrs_free(&x);
	ec_attrs("P-521", NID_secp521r1, true, &x);
	mutate(&x, true);
	attrs_free(&x);
	/* Ed25519: a wrapped point cut to 32 bytes passes as a raw point
	 * (spki.c accepts both forms); no check on truncations. */
	ed25519_attrs(true, false, &x);
	mutate(&x, false);
	attrs_free(&x);
	/* A shorter RSA modulus is still a (smaller) RSA key. */
	rsa_attrs(&x);
	mutate(&x, false);
	attrs_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa),
		cmocka_unit_test(test_ec_curves),
		cmocka_unit_test(test_ed25519),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_raw_point_prefix_parses),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
