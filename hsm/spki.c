/* spki.c: public keys out of the token as SubjectPublicKeyInfo DER (and an
 * EVP_PKEY for verification), from CKA_MODULUS/CKA_PUBLIC_EXPONENT or
 * CKA_EC_PARAMS/CKA_EC_POINT. */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "hsm_int.h"
#include "kh_log.h"

/* DER OIDs for CKA_EC_PARAMS (RFC 5480 §2.1.1.1; RFC 8410 §3 for Ed25519). */
static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const uint8_t oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };
static const uint8_t oid_k256[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a };
static const uint8_t oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

const uint8_t *hsm_ec_params(enum kh_key_type t, size_t *len)
{
	switch (t) {
	case KH_KEY_P256: *len = sizeof(oid_p256); return oid_p256;
	case KH_KEY_P384: *len = sizeof(oid_p384); return oid_p384;
	case KH_KEY_P521: *len = sizeof(oid_p521); return oid_p521;
	case KH_KEY_SECP256K1: *len = sizeof(oid_k256); return oid_k256;
	case KH_KEY_ED25519: *len = sizeof(oid_ed25519); return oid_ed25519;
	default: *len = 0; return NULL;
	}
}

/* Reads one variable-length attribute (two-call idiom); caller frees. */
static CK_RV hsm_attr_get(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
			  uint8_t **val, size_t *len)
{
	CK_ATTRIBUTE a = { t, NULL, 0 };
	CK_RV rv;

	rv = h->f->C_GetAttributeValue(s, o, &a, 1);
	if (rv != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 1u << 16)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
	if (a.pValue == NULL)
		return CKR_HOST_MEMORY;
	rv = h->f->C_GetAttributeValue(s, o, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	*val = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

/* CKA_EC_POINT is a DER OCTET STRING per PKCS#11 2.40 §2.3.3; some tokens
 * return the raw point. Accept both: take the DER form only when it parses
 * exactly and holds a plausible point. */
static void hsm_ec_point_unwrap(const uint8_t *in, size_t len, const uint8_t **pt, size_t *ptlen)
{
	const unsigned char *p = in;
	ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);

	*pt = in;
	*ptlen = len;
	if (os != NULL && (size_t)(p - in) == len && os->length > 0) {
		*pt = in + (len - (size_t)os->length);
		*ptlen = (size_t)os->length;
	}
	ASN1_OCTET_STRING_free(os);
}

static int hsm_curve_nid(const uint8_t *params, size_t len)
{
	const unsigned char *p = params;
	ASN1_OBJECT *obj = NULL;
	int nid = NID_undef;

	if (len == 14 && memcmp(params, "\x13\x0c" "edwards25519", 14) == 0)
		return NID_ED25519; /* PrintableString form used by older tokens */
	obj = d2i_ASN1_OBJECT(NULL, &p, (long)len);
	if (obj != NULL && (size_t)(p - params) == len)
		nid = OBJ_obj2nid(obj);
	ASN1_OBJECT_free(obj);
	return nid;
}

static enum kh_err hsm_pkey_rsa(const uint8_t *n, size_t nlen, const uint8_t *ex, size_t elen,
				EVP_PKEY **out, struct kh_errbuf *e)
{
	int r = KH_OK;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *bn_n = NULL, *bn_e = NULL;

	bn_n = BN_bin2bn(n, (int)nlen, NULL);
	bn_e = BN_bin2bn(ex, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	KH_ENSURE(bn_n != NULL && bn_e != NULL && bld != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
			  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1,
		  KH_E_INTERNAL);
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	KH_ENSURE(params != NULL && ctx != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(EVP_PKEY_fromdata_init(ctx) == 1 &&
			  EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "token returned an unusable RSA public key"));
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return r;
}

static enum kh_err hsm_pkey_ec(int nid, const uint8_t *pt, size_t ptlen, EVP_PKEY **out,
			       struct kh_errbuf *e)
{
	int r = KH_OK;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	const char *group = OBJ_nid2sn(nid);

	KH_ENSURE(group != NULL, kh_err_set(e, KH_E_INTERNAL, "unknown curve"));
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)(uintptr_t)group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(uintptr_t)pt, ptlen);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	KH_ENSURE(ctx != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(EVP_PKEY_fromdata_init(ctx) == 1 &&
			  EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "token returned an unusable EC point on %s", group));
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

enum kh_err hsm_spki_build(CK_KEY_TYPE kt, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
			   uint8_t **spki, size_t *spki_len, EVP_PKEY **pkey_out, uint32_t *bits, int *curve_nid,
			   struct kh_errbuf *e)
{
	int r = KH_OK;
	uint8_t *der = NULL, *copy = NULL;
	EVP_PKEY *pkey = NULL;
	int len, nid = NID_undef;

	if (kt == CKK_RSA) {
		KH_TRY(hsm_pkey_rsa(a, alen, b, blen, &pkey, e));
	} else if (kt == CKK_EC || kt == CKK_EC_EDWARDS) {
		const uint8_t *pt;
		size_t ptlen;

		nid = hsm_curve_nid(a, alen);
		hsm_ec_point_unwrap(b, blen, &pt, &ptlen);
		if (kt == CKK_EC_EDWARDS) {
			KH_ENSURE(nid == NID_ED25519 && ptlen == 32,
				  kh_err_set(e, KH_E_UNIMPLEMENTED, "only Ed25519 Edwards keys are supported"));
			pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt, ptlen);
			KH_ENSURE(pkey != NULL, kh_err_set(e, KH_E_INTERNAL, "bad Ed25519 public key"));
		} else {
			KH_ENSURE(nid != NID_undef, kh_err_set(e, KH_E_UNIMPLEMENTED, "unknown EC curve on the token"));
			KH_TRY(hsm_pkey_ec(nid, pt, ptlen, &pkey, e));
		}
	} else {
		KH_ENSURE(0, kh_err_set(e, KH_E_UNIMPLEMENTED, "key type 0x%lx is not supported", (unsigned long)kt));
	}
	len = i2d_PUBKEY(pkey, &der);
	KH_ENSURE(len > 0, kh_err_set(e, KH_E_INTERNAL, "cannot encode SubjectPublicKeyInfo"));
	copy = malloc((size_t)len); /* callers free() it, not OPENSSL_free() */
	KH_ENSURE(copy != NULL, KH_E_RESOURCE_EXHAUSTED);
	memcpy(copy, der, (size_t)len);
	*bits = (uint32_t)EVP_PKEY_get_bits(pkey);
	*curve_nid = nid;
	*spki = copy;
	*spki_len = (size_t)len;
	copy = NULL;
	if (pkey_out != NULL) {
		*pkey_out = pkey;
		pkey = NULL;
	}
out:
	free(copy);
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	return r;
}

enum kh_err hsm_spki_read(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, CK_KEY_TYPE kt,
			  uint8_t **spki, size_t *spki_len, EVP_PKEY **pkey_out, uint32_t *bits,
			  int *curve_nid, struct kh_errbuf *e)
{
	int r = KH_OK;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	CK_RV rv;

	if (kt == CKK_RSA) {
		rv = hsm_attr_get(h, s, pub, CKA_MODULUS, &a, &alen);
		if (rv == CKR_OK)
			rv = hsm_attr_get(h, s, pub, CKA_PUBLIC_EXPONENT, &b, &blen);
		KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "reading the RSA public key", NULL));
	} else if (kt == CKK_EC || kt == CKK_EC_EDWARDS) {
		rv = hsm_attr_get(h, s, pub, CKA_EC_PARAMS, &a, &alen);
		if (rv == CKR_OK)
			rv = hsm_attr_get(h, s, pub, CKA_EC_POINT, &b, &blen);
		KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "reading the EC public key", NULL));
	}
	KH_TRY(hsm_spki_build(kt, a, alen, b, blen, spki, spki_len, pkey_out, bits, curve_nid, e));
out:
	free(a);
	free(b);
	return r;
}
