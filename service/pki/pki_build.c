/* pki_build.c: PKCS#10 requests (RFC 2986) and self-signed certificates
 * (RFC 5280) whose to-be-signed part is built with OpenSSL, hashed here and
 * signed by the token key with hsm_sign(); the signed object is assembled
 * from its DER parts and verified with OpenSSL before anyone sees it. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"

#define PKI_SERIAL_LEN 16

static bool pki_is_rsa(enum kh_key_type t)
{
	return t == KH_KEY_RSA1024 || t == KH_KEY_RSA2048 || t == KH_KEY_RSA3072 || t == KH_KEY_RSA4096;
}

/* The signatureAlgorithm of sg: RFC 4055 §5 (RSA, NULL parameters),
 * RFC 5758 §3.2 (ECDSA, parameters absent), RFC 8410 §3 (Ed25519, absent). */
static enum kh_err pki_sig_alg(const struct pki_signer *sg, X509_ALGOR **out, struct kh_errbuf *e)
{
	X509_ALGOR *alg = X509_ALGOR_new();
	int nid = NID_undef, ptype = V_ASN1_UNDEF;

	if (alg == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	if (sg->type == KH_KEY_ED25519) {
		nid = NID_ED25519;
	} else if (pki_is_rsa(sg->type)) {
		ptype = V_ASN1_NULL;
		nid = sg->digest == KH_DIGEST_SHA384   ? NID_sha384WithRSAEncryption
		      : sg->digest == KH_DIGEST_SHA512 ? NID_sha512WithRSAEncryption
		      : sg->digest == KH_DIGEST_SHA256 ? NID_sha256WithRSAEncryption
						       : NID_undef;
	} else if (sg->type != KH_KEY_UNSPECIFIED) {
		nid = sg->digest == KH_DIGEST_SHA384   ? NID_ecdsa_with_SHA384
		      : sg->digest == KH_DIGEST_SHA512 ? NID_ecdsa_with_SHA512
		      : sg->digest == KH_DIGEST_SHA256 ? NID_ecdsa_with_SHA256
						       : NID_undef;
	}
	if (nid == NID_undef || X509_ALGOR_set0(alg, OBJ_nid2obj(nid), ptype, NULL) != 1) {
		X509_ALGOR_free(alg);
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "key '%s' (%s) cannot sign certificates with %s", sg->key,
				  kh_key_type_name(sg->type) ? kh_key_type_name(sg->type) : "unknown type",
				  kh_digest_name(sg->digest));
	}
	*out = alg;
	return KH_OK;
}

/* Signs tbs in the token: the digest is computed here (Ed25519 takes the
 * whole TBS, RFC 8410 §6). */
static enum kh_err pki_token_sign(const struct pki_signer *sg, const uint8_t *tbs, size_t tbs_len, uint8_t **sig,
				  size_t *sig_len, struct kh_errbuf *e)
{
	struct hsm_sign_op op;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	memset(&op, 0, sizeof(op));
	op.key = sg->key;
	op.padding = KH_PAD_PKCS1;
	if (sg->type == KH_KEY_ED25519) {
		op.digest = KH_DIGEST_DEFAULT;
		op.padding = KH_PAD_DEFAULT;
		op.in = tbs;
		op.in_len = tbs_len;
	} else {
		if (sg->md == NULL || EVP_Digest(tbs, tbs_len, md, &mdlen, sg->md, NULL) != 1)
			return kh_err_set(e, KH_E_INTERNAL, "hashing the to-be-signed data with %s failed",
					  kh_digest_name(sg->digest));
		if (!pki_is_rsa(sg->type))
			op.padding = KH_PAD_DEFAULT;
		op.digest = sg->digest;
		op.in = md;
		op.in_len = mdlen;
	}
	return hsm_sign(sg->hsm, &op, sig, sig_len, e);
}

/* SEQUENCE { tbs, signatureAlgorithm, signature BIT STRING } (RFC 5280
 * §4.1.1, RFC 2986 §4.2): the outer shape of both certificates and CSRs. */
static enum kh_err pki_assemble(const uint8_t *tbs, size_t tbs_len, const X509_ALGOR *alg, const uint8_t *sig,
				size_t sig_len, uint8_t **out, size_t *out_len)
{
	unsigned char *alg_der = NULL, *buf = NULL, *p;
	int alg_len, bits_len, content, total, r = KH_OK;

	alg_len = i2d_X509_ALGOR(alg, &alg_der);
	KH_ENSURE(alg_len > 0, KH_E_INTERNAL);
	KH_ENSURE(sig_len < (1u << 20) && tbs_len < (1u << 24), KH_E_INTERNAL);
	/* BIT STRING: one octet of unused bits (0), then the signature. */
	bits_len = ASN1_object_size(0, (int)sig_len + 1, V_ASN1_BIT_STRING);
	content = (int)tbs_len + alg_len + bits_len;
	total = ASN1_object_size(1, content, V_ASN1_SEQUENCE);
	KH_ENSURE(bits_len > 0 && total > 0, KH_E_INTERNAL);
	buf = malloc((size_t)total);
	KH_ENSURE(buf != NULL, KH_E_RESOURCE_EXHAUSTED);
	p = buf;
	ASN1_put_object(&p, 1, content, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(p, tbs, tbs_len);
	p += tbs_len;
	memcpy(p, alg_der, (size_t)alg_len);
	p += alg_len;
	ASN1_put_object(&p, 0, (int)sig_len + 1, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL);
	*p++ = 0;
	memcpy(p, sig, sig_len);
	p += sig_len;
	KH_ENSURE(p - buf == total, KH_E_INTERNAL);
	*out = buf;
	*out_len = (size_t)total;
	buf = NULL;
out:
	OPENSSL_free(alg_der);
	free(buf);
	return r;
}

/* ---- extensions ---- */

/* Key usage matching the key (RFC 5280 §4.2.1.3): digitalSignature, plus
 * keyEncipherment for RSA (TLS RSA key transport). */
static ASN1_BIT_STRING *pki_key_usage(enum kh_key_type t)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();

	if (ku == NULL)
		return NULL;
	if (ASN1_BIT_STRING_set_bit(ku, 0, 1) != 1 || (pki_is_rsa(t) && ASN1_BIT_STRING_set_bit(ku, 2, 1) != 1)) {
		ASN1_BIT_STRING_free(ku);
		return NULL;
	}
	return ku;
}

static enum kh_err pki_ext_push(STACK_OF(X509_EXTENSION) **sk, int nid, int crit, void *value)
{
	X509_EXTENSION *ext = X509V3_EXT_i2d(nid, crit, value);

	if (ext == NULL)
		return KH_E_INTERNAL;
	if (X509v3_add_ext(sk, ext, -1) == NULL) {
		X509_EXTENSION_free(ext);
		return KH_E_RESOURCE_EXHAUSTED;
	}
	X509_EXTENSION_free(ext);
	return KH_OK;
}

/* ---- CSR ---- */

enum kh_err pki_csr_build(const struct pki_signer *sg, const struct pki_subject *sub, const char *challenge,
			  X509_REQ **out, struct kh_errbuf *e)
{
	X509_REQ *req = NULL, *done = NULL;
	X509_ALGOR *alg = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	ASN1_BIT_STRING *ku = NULL;
	unsigned char *tbs = NULL;
	uint8_t *sig = NULL, *der = NULL;
	size_t sig_len = 0, der_len = 0;
	const unsigned char *p;
	char why[128];
	int tbs_len, r = KH_OK;

	KH_ENSURE(sg->pub != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "key '%s' has no public key on the token", sg->key));
	KH_TRY(pki_sig_alg(sg, &alg, e));
	req = X509_REQ_new();
	KH_ENSURE(req != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(X509_REQ_set_version(req, X509_REQ_VERSION_1) == 1 && X509_REQ_set_subject_name(req, sub->name) == 1 &&
		  X509_REQ_set_pubkey(req, sg->pub) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "cannot fill the certificate request"));
	ku = pki_key_usage(sg->type);
	KH_ENSURE(ku != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(pki_ext_push(&exts, NID_key_usage, 1, ku));
	KH_TRY(pki_ext_push(&exts, NID_ext_key_usage, 0, sub->eku));
	if (sub->san != NULL)
		KH_TRY(pki_ext_push(&exts, NID_subject_alt_name, 0, sub->san));
	KH_ENSURE(X509_REQ_add_extensions(req, exts) == 1, kh_err_set(e, KH_E_INTERNAL, "cannot add the requested extensions"));
	if (challenge != NULL && challenge[0] != '\0')
		KH_ENSURE(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
						    (const unsigned char *)challenge, -1) == 1,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the challenge password is not allowed (%s)",
				     pki_ossl_reason(why, sizeof(why))));
	tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
	KH_ENSURE(tbs_len > 0, kh_err_set(e, KH_E_INTERNAL, "cannot encode the certificate request"));
	KH_TRY(pki_token_sign(sg, tbs, (size_t)tbs_len, &sig, &sig_len, e));
	KH_TRY(pki_assemble(tbs, (size_t)tbs_len, alg, sig, sig_len, &der, &der_len));
	p = der;
	done = d2i_X509_REQ(NULL, &p, (long)der_len);
	KH_ENSURE(done != NULL && p == der + der_len, kh_err_set(e, KH_E_INTERNAL, "the signed request does not parse"));
	/* The token's signature is checked before it leaves keyhold. */
	KH_ENSURE(X509_REQ_verify(done, sg->pub) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "the token's signature on the request does not verify (key '%s')", sg->key));
	*out = done;
	done = NULL;
out:
	ERR_clear_error();
	X509_REQ_free(req);
	X509_REQ_free(done);
	X509_ALGOR_free(alg);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ASN1_BIT_STRING_free(ku);
	OPENSSL_free(tbs);
	free(sig);
	free(der);
	return r;
}

enum kh_err pki_csr_pem(X509_REQ *req, char **pem, struct kh_errbuf *e)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL, *s;
	long len;

	if (bio == NULL || PEM_write_bio_X509_REQ(bio, req) != 1 || (len = BIO_get_mem_data(bio, &p)) <= 0) {
		BIO_free(bio);
		return kh_err_set(e, KH_E_INTERNAL, "cannot write the request as PEM");
	}
	s = malloc((size_t)len + 1);
	if (s == NULL) {
		BIO_free(bio);
		return KH_E_RESOURCE_EXHAUSTED;
	}
	memcpy(s, p, (size_t)len);
	s[len] = '\0';
	BIO_free(bio);
	*pem = s;
	return KH_OK;
}

enum kh_err pki_csr_der(X509_REQ *req, struct kh_bytes *out, struct kh_errbuf *e)
{
	unsigned char *der = NULL;
	int len = i2d_X509_REQ(req, &der);

	if (len <= 0)
		return kh_err_set(e, KH_E_INTERNAL, "cannot encode the CSR");
	kh_bytes_clear(out);
	out->data = malloc((size_t)len);
	if (out->data == NULL) {
		OPENSSL_free(der);
		return KH_E_RESOURCE_EXHAUSTED;
	}
	memcpy(out->data, der, (size_t)len);
	out->len = (size_t)len;
	OPENSSL_free(der);
	return KH_OK;
}

/* ---- self-signed certificate ---- */

/* A positive serial of exactly 16 octets from the token's RNG (RFC 5280
 * §4.1.2.2: positive, at most 20 octets; CA/B BR §7.1: >= 64 random bits). */
static enum kh_err pki_serial(struct hsm *h, ASN1_INTEGER **out, struct kh_errbuf *e)
{
	uint8_t b[PKI_SERIAL_LEN];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	int r = KH_OK;

	KH_TRY(hsm_random(h, b, sizeof(b), e));
	b[0] &= 0x7f;
	if (b[0] == 0)
		b[0] = 0x01;
	bn = BN_bin2bn(b, sizeof(b), NULL);
	KH_ENSURE(bn != NULL, KH_E_RESOURCE_EXHAUSTED);
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	KH_ENSURE(ai != NULL, KH_E_RESOURCE_EXHAUSTED);
	*out = ai;
out:
	BN_free(bn);
	return r;
}

static enum kh_err pki_key_ids(X509 *x, ASN1_OCTET_STRING **ski, AUTHORITY_KEYID **aki)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	/* RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits
	 * (an identifier, not a signature). */
	if (X509_pubkey_digest(x, EVP_sha1(), md, &n) != 1)
		return KH_E_INTERNAL;
	*ski = ASN1_OCTET_STRING_new();
	*aki = AUTHORITY_KEYID_new();
	if (*ski == NULL || *aki == NULL || ASN1_OCTET_STRING_set(*ski, md, (int)n) != 1)
		return KH_E_RESOURCE_EXHAUSTED;
	(*aki)->keyid = ASN1_OCTET_STRING_dup(*ski);
	return (*aki)->keyid != NULL ? KH_OK : KH_E_RESOURCE_EXHAUSTED;
}

enum kh_err pki_selfsigned_build_at(const struct pki_signer *sg, const struct pki_subject *sub, uint32_t days,
				    int64_t not_before, X509 **out, struct kh_errbuf *e)
{
	X509 *x = NULL, *done = NULL;
	X509_ALGOR *alg = NULL, *tbs_alg;
	ASN1_INTEGER *serial = NULL;
	BASIC_CONSTRAINTS *bc = NULL;
	ASN1_BIT_STRING *ku = NULL;
	ASN1_OCTET_STRING *ski = NULL;
	AUTHORITY_KEYID *aki = NULL;
	unsigned char *tbs = NULL;
	uint8_t *sig = NULL, *der = NULL;
	size_t sig_len = 0, der_len = 0;
	const unsigned char *p;
	time_t now = (time_t)not_before;
	int tbs_len, r = KH_OK;

	KH_ENSURE(sg->pub != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "key '%s' has no public key on the token", sg->key));
	KH_ENSURE(days >= 1 && days <= 36500, kh_err_set(e, KH_E_INVALID_ARGUMENT, "validity must be 1 to 36500 days"));
	KH_TRY(pki_sig_alg(sg, &alg, e));
	KH_TRY(pki_serial(sg->hsm, &serial, e));
	x = X509_new();
	KH_ENSURE(x != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(X509_set_version(x, X509_VERSION_3) == 1 && X509_set_serialNumber(x, serial) == 1 &&
		  X509_set_issuer_name(x, sub->name) == 1 && X509_set_subject_name(x, sub->name) == 1 &&
		  X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &now) != NULL &&
		  X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &now) != NULL && X509_set_pubkey(x, sg->pub) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "cannot fill the certificate"));
	bc = BASIC_CONSTRAINTS_new();
	ku = pki_key_usage(sg->type);
	KH_ENSURE(bc != NULL && ku != NULL, KH_E_RESOURCE_EXHAUSTED);
	bc->ca = 0;
	KH_TRY(pki_key_ids(x, &ski, &aki));
	KH_ENSURE(X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1 &&
		  X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) == 1 &&
		  X509_add1_ext_i2d(x, NID_ext_key_usage, sub->eku, 0, X509V3_ADD_DEFAULT) == 1 &&
		  (sub->san == NULL || X509_add1_ext_i2d(x, NID_subject_alt_name, sub->san, 0, X509V3_ADD_DEFAULT) == 1) &&
		  X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) == 1 &&
		  X509_add1_ext_i2d(x, NID_authority_key_identifier, aki, 0, X509V3_ADD_DEFAULT) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "cannot add the certificate extensions"));
	/* The TBS carries the signature algorithm too (RFC 5280 §4.1.2.3).
	 * OpenSSL 3.0 has no setter for it; X509_sign() writes through this
	 * same pointer, and the object belongs to x. */
	tbs_alg = (X509_ALGOR *)(uintptr_t)X509_get0_tbs_sigalg(x);
	KH_ENSURE(tbs_alg != NULL && X509_ALGOR_copy(tbs_alg, alg) == 1, KH_E_INTERNAL);
	tbs_len = i2d_re_X509_tbs(x, &tbs);
	KH_ENSURE(tbs_len > 0, kh_err_set(e, KH_E_INTERNAL, "cannot encode the certificate"));
	KH_TRY(pki_token_sign(sg, tbs, (size_t)tbs_len, &sig, &sig_len, e));
	KH_TRY(pki_assemble(tbs, (size_t)tbs_len, alg, sig, sig_len, &der, &der_len));
	p = der;
	done = d2i_X509(NULL, &p, (long)der_len);
	KH_ENSURE(done != NULL && p == der + der_len, kh_err_set(e, KH_E_INTERNAL, "the signed certificate does not parse"));
	KH_ENSURE(X509_verify(done, sg->pub) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "the token's signature on the certificate does not verify (key '%s')", sg->key));
	*out = done;
	done = NULL;
out:
	ERR_clear_error();
	X509_free(x);
	X509_free(done);
	X509_ALGOR_free(alg);
	ASN1_INTEGER_free(serial);
	BASIC_CONSTRAINTS_free(bc);
	ASN1_BIT_STRING_free(ku);
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(aki);
	OPENSSL_free(tbs);
	free(sig);
	free(der);
	return r;
}
