/* pki_scep.c: SCEP messages (RFC 8894) on OpenSSL's PKCS#7 API; see
 * pki_scep.h. The PKCSReq's signature is made in the token: the signed
 * attributes are DER-encoded as OpenSSL would sign them and the digest goes
 * to hsm_sign; the private key never leaves the token. PKCSReq, RenewalReq
 * and CertPoll share one builder. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki_scep.h"

#define OID_MSG_TYPE "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TXID "2.16.840.1.113733.1.9.7"

static enum kh_err scep_ossl(struct kh_errbuf *e, enum kh_err code, const char *what)
{
	char why[256];

	pki_ossl_reason(why, sizeof(why));
	return kh_err_set(e, code, "SCEP: %s%s%s", what, why[0] ? ": " : "", why);
}

/* ---- GetCACaps ---- */

void pki_scep_caps_parse(const uint8_t *buf, size_t len, struct pki_scep_caps *out)
{
	char w[64];
	size_t i = 0, n;

	memset(out, 0, sizeof(*out));
	if (len > PKI_SCEP_CAPS_MAX)
		len = PKI_SCEP_CAPS_MAX;
	while (i < len) {
		n = 0;
		while (i < len && (buf[i] == '\r' || buf[i] == '\n' || buf[i] == ' ' || buf[i] == '\t'))
			i++;
		while (i < len && buf[i] != '\r' && buf[i] != '\n' && buf[i] != ' ' && buf[i] != '\t') {
			if (n < sizeof(w) - 1)
				w[n++] = (char)buf[i];
			i++;
		}
		w[n] = '\0';
		if (n == 0)
			continue;
		if (strcasecmp(w, "POSTPKIOperation") == 0)
			out->post = true;
		else if (strcasecmp(w, "SHA-256") == 0)
			out->sha256 = true;
		else if (strcasecmp(w, "SHA-512") == 0)
			out->sha512 = true;
		else if (strcasecmp(w, "SHA-1") == 0)
			out->sha1 = true;
		else if (strcasecmp(w, "AES") == 0)
			out->aes = true;
		else if (strcasecmp(w, "DES3") == 0)
			out->des3 = true;
		else if (strcasecmp(w, "Renewal") == 0)
			out->renewal = true;
		else if (strcasecmp(w, "SCEPStandard") == 0)
			out->standard = true;
	}
	/* RFC 8894 §3.5.2: SCEPStandard implies AES, POSTPKIOperation and SHA-256. */
	if (out->standard)
		out->aes = out->post = out->sha256 = true;
}

enum kh_err pki_scep_choose(const struct pki_scep_caps *c, bool fips, const EVP_MD **md, const EVP_CIPHER **cipher,
			    struct kh_errbuf *e)
{
	if (c->sha256)
		*md = EVP_sha256();
	else if (c->sha512)
		*md = EVP_sha512();
	else
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "the SCEP server offers no SHA-256 or SHA-512 (GetCACaps); keyhold does not use %s",
				  c->sha1 ? "SHA-1" : "MD5 or SHA-1");
	if (c->aes)
		*cipher = EVP_aes_128_cbc();
	else if (c->des3 && !fips)
		*cipher = EVP_des_ede3_cbc();
	else
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "the SCEP server offers no AES%s (GetCACaps); keyhold does not use single DES",
				  fips ? " (FIPS mode: 3DES is not approved)" : " or 3DES");
	return KH_OK;
}

/* ---- GetCACert ---- */

enum kh_err pki_scep_cacert_parse(const uint8_t *buf, size_t len, X509 **ca_out, X509 **ra_out, struct kh_errbuf *e)
{
	const unsigned char *p = buf;
	STACK_OF(X509) *certs = NULL;
	PKCS7 *p7 = NULL;
	X509 *x = NULL, *ca = NULL, *ra = NULL, *y;
	int r = KH_OK, i, j, n_ra = 0;
	bool issues;

	KH_ENSURE(len > 0 && len <= PKI_SCEP_MAX, kh_err_set(e, KH_E_INVALID_ARGUMENT, "SCEP: GetCACert: bad size %zu", len));
	x = d2i_X509(NULL, &p, (long)len);
	if (x != NULL && p == buf + len) {
		ca = x;
		x = NULL;
		goto done;
	}
	X509_free(x);
	x = NULL;
	ERR_clear_error();
	p = buf;
	p7 = d2i_PKCS7(NULL, &p, (long)len);
	KH_ENSURE(p7 != NULL && p == buf + len && PKCS7_type_is_signed(p7) && p7->d.sign != NULL,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT,
			     "SCEP: GetCACert answered neither a DER certificate nor a PKCS#7 of certificates"));
	certs = p7->d.sign->cert;
	KH_ENSURE(certs != NULL && sk_X509_num(certs) >= 1 && sk_X509_num(certs) <= PKI_CERTS_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "SCEP: GetCACert's PKCS#7 holds no certificates"));
	/* The RA: the one certificate that is not a CA. */
	for (i = 0; i < sk_X509_num(certs); i++) {
		if (!pki_cert_is_ca(sk_X509_value(certs, i))) {
			ra = sk_X509_value(certs, i);
			n_ra++;
		}
	}
	KH_ENSURE(n_ra <= 1, kh_err_set(e, KH_E_INVALID_ARGUMENT, "SCEP: GetCACert names %d RA certificates", n_ra));
	/* The CA: the issuer of the RA, else the CA certificate that issued none of the others. */
	for (i = 0; i < sk_X509_num(certs) && ca == NULL; i++) {
		y = sk_X509_value(certs, i);
		if (y == ra || !pki_cert_is_ca(y))
			continue;
		if (ra != NULL) {
			/* Names and key identifiers, then the signature itself. */
			if (X509_check_issued(y, ra) == X509_V_OK && X509_verify(ra, X509_get0_pubkey(y)) == 1)
				ca = y;
			ERR_clear_error();
			continue;
		}
		issues = false;
		for (j = 0; j < sk_X509_num(certs); j++)
			if (j != i && X509_check_issued(y, sk_X509_value(certs, j)) == X509_V_OK)
				issues = true;
		if (!issues)
			ca = y;
	}
	KH_ENSURE(ca != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT,
					 "SCEP: GetCACert's PKCS#7 holds no CA certificate%s", ra ? " that issued the RA" : ""));
	X509_up_ref(ca);
	if (ra != NULL)
		X509_up_ref(ra);
done:
	*ca_out = ca;
	*ra_out = ra;
	ca = NULL;
	ra = NULL;
out:
	if (r != KH_OK) {
		ca = NULL;
		ra = NULL;
	}
	PKCS7_free(p7);
	return r;
}

/* ---- PKCSReq ---- */

void pki_scep_req_clear(struct pki_scep_req *r)
{
	OPENSSL_free(r->der);
	memset(r, 0, sizeof(*r));
}

static int scep_attr_add(PKCS7_SIGNER_INFO *si, const char *oid, int type, const void *data, int len)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	int ok = o != NULL && X509at_add1_attr_by_OBJ(&si->auth_attr, o, type, data, len) != NULL;

	ASN1_OBJECT_free(o);
	return ok;
}

static void scep_hex(const uint8_t *b, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hx[b[i] >> 4];
		out[2 * i + 1] = hx[b[i] & 15];
	}
	out[2 * n] = '\0';
}

enum kh_err pki_scep_txid(EVP_PKEY *pub, char out[PKI_SCEP_TXID + 1], struct kh_errbuf *e)
{
	uint8_t *spki = NULL, h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	int spki_len = i2d_PUBKEY(pub, &spki), r = KH_OK;

	KH_ENSURE(spki_len > 0 && EVP_Digest(spki, (size_t)spki_len, h, &hl, EVP_sha256(), NULL) == 1 && hl == 32,
		  scep_ossl(e, KH_E_INTERNAL, "hashing the public key"));
	scep_hex(h, hl, out);
out:
	OPENSSL_free(spki);
	return r;
}

enum kh_err pki_scep_issuer_and_subject(X509 *ca, const uint8_t *subject, size_t subject_len, uint8_t **out,
					size_t *out_len, struct kh_errbuf *e)
{
	const unsigned char *p = subject;
	X509_NAME *sub = NULL;
	uint8_t *iss = NULL, *sd = NULL, *o = NULL;
	int il, sl, len, r = KH_OK;
	size_t n = 0;

	sub = d2i_X509_NAME(NULL, &p, (long)subject_len);
	KH_ENSURE(sub != NULL && p == subject + subject_len, kh_err_set(e, KH_E_DATA_LOSS, "SCEP: the stored subject does not parse"));
	il = i2d_X509_NAME(X509_get_subject_name(ca), &iss);
	sl = i2d_X509_NAME(sub, &sd);
	KH_ENSURE(il > 0 && sl > 0, scep_ossl(e, KH_E_INTERNAL, "encoding IssuerAndSubject"));
	/* SEQUENCE { issuer Name, subject Name } */
	len = il + sl;
	o = malloc((size_t)len + 6);
	KH_ENSURE(o != NULL, KH_E_RESOURCE_EXHAUSTED);
	o[n++] = 0x30;
	if (len < 0x80) {
		o[n++] = (uint8_t)len;
	} else if (len < 0x100) {
		o[n++] = 0x81;
		o[n++] = (uint8_t)len;
	} else {
		KH_ENSURE(len < 0x10000, kh_err_set(e, KH_E_INVALID_ARGUMENT, "SCEP: names too long"));
		o[n++] = 0x82;
		o[n++] = (uint8_t)(len >> 8);
		o[n++] = (uint8_t)len;
	}
	memcpy(o + n, iss, (size_t)il);
	memcpy(o + n + (size_t)il, sd, (size_t)sl);
	*out_len = n + (size_t)len;
	*out = o;
	o = NULL;
out:
	free(o);
	OPENSSL_free(iss);
	OPENSSL_free(sd);
	X509_NAME_free(sub);
	return r;
}

enum kh_err pki_scep_request(const struct pki_signer *sg, X509 *self, enum pki_scep_msg type, const char *txid,
			     const uint8_t *csr, size_t csr_len, X509 *recipient, const EVP_MD *md,
			     const EVP_CIPHER *cipher, const uint8_t nonce[PKI_SCEP_NONCE], struct pki_scep_req *out,
			     struct kh_errbuf *e)
{
	STACK_OF(X509) *recips = NULL;
	PKCS7 *env = NULL, *p7 = NULL, *inner;
	PKCS7_SIGNER_INFO *si = NULL;
	BIO *in = NULL;
	uint8_t *env_der = NULL, *attrs = NULL, *sig = NULL, *der = NULL;
	uint8_t h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	int env_len, attrs_len = 0, der_len;
	size_t sig_len = 0;
	struct pki_scep_req rq;
	struct hsm_sign_op op;
	char mt[4];
	int r = KH_OK;

	memset(&rq, 0, sizeof(rq));
	KH_ENSURE(EVP_MD_get_type(md) == NID_sha256 || EVP_MD_get_type(md) == NID_sha512,
		  kh_err_set(e, KH_E_INTERNAL, "SCEP: digest"));
	KH_ENSURE(strlen(txid) == PKI_SCEP_TXID, kh_err_set(e, KH_E_INTERNAL, "SCEP: transactionID"));
	snprintf(mt, sizeof(mt), "%d", (int)type);
	memcpy(rq.txid, txid, PKI_SCEP_TXID + 1);
	memcpy(rq.nonce, nonce, PKI_SCEP_NONCE);

	/* pkcsPKIEnvelope: the CSR (or IssuerAndSubject) to the CA/RA. */
	recips = sk_X509_new_null();
	in = BIO_new_mem_buf(csr, (int)csr_len);
	KH_ENSURE(recips != NULL && in != NULL && sk_X509_push(recips, recipient) > 0, KH_E_RESOURCE_EXHAUSTED);
	env = PKCS7_encrypt(recips, in, cipher, PKCS7_BINARY);
	KH_ENSURE(env != NULL, scep_ossl(e, KH_E_INTERNAL, "enveloping the CSR"));
	env_len = i2d_PKCS7(env, &env_der);
	KH_ENSURE(env_len > 0, scep_ossl(e, KH_E_INTERNAL, "encoding the envelope"));

	/* SignedData around it, signerInfo by the transient certificate. */
	p7 = PKCS7_new();
	KH_ENSURE(p7 != NULL && PKCS7_set_type(p7, NID_pkcs7_signed) == 1 &&
			  PKCS7_content_new(p7, NID_pkcs7_data) == 1 && PKCS7_add_certificate(p7, self) == 1,
		  scep_ossl(e, KH_E_INTERNAL, "building the SignedData"));
	inner = p7->d.sign->contents;
	KH_ENSURE(inner != NULL && inner->d.data != NULL &&
			  ASN1_OCTET_STRING_set(inner->d.data, env_der, env_len) == 1,
		  KH_E_RESOURCE_EXHAUSTED);
	si = PKCS7_SIGNER_INFO_new();
	KH_ENSURE(si != NULL && PKCS7_SIGNER_INFO_set(si, self, sg->pub, md) == 1,
		  scep_ossl(e, KH_E_INTERNAL, "building the signerInfo"));
	KH_ENSURE(PKCS7_add_signer(p7, si) == 1, scep_ossl(e, KH_E_INTERNAL, "adding the signerInfo"));
	{
		PKCS7_SIGNER_INFO *mine = si;

		si = NULL; /* p7 owns it */
		KH_ENSURE(EVP_Digest(env_der, (size_t)env_len, h, &hl, md, NULL) == 1,
			  scep_ossl(e, KH_E_INTERNAL, "hashing the envelope"));
		KH_ENSURE(PKCS7_add_signed_attribute(mine, NID_pkcs9_contentType, V_ASN1_OBJECT,
						     OBJ_nid2obj(NID_pkcs7_data)) == 1 &&
				  X509at_add1_attr_by_NID(&mine->auth_attr, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, h,
							  (int)hl) != NULL &&
				  scep_attr_add(mine, OID_MSG_TYPE, V_ASN1_PRINTABLESTRING, mt, (int)strlen(mt)) &&
				  scep_attr_add(mine, OID_TXID, V_ASN1_PRINTABLESTRING, rq.txid, (int)strlen(rq.txid)) &&
				  scep_attr_add(mine, OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce, PKI_SCEP_NONCE),
			  scep_ossl(e, KH_E_INTERNAL, "adding the SCEP attributes"));
		/* What OpenSSL's PKCS7_SIGNER_INFO_sign signs (sorted SET OF);
		 * the encoder leaves the stack in that order for i2d_PKCS7. */
		attrs_len = ASN1_item_i2d((ASN1_VALUE *)mine->auth_attr, &attrs, ASN1_ITEM_rptr(PKCS7_ATTR_SIGN));
		KH_ENSURE(attrs_len > 0 && EVP_Digest(attrs, (size_t)attrs_len, h, &hl, md, NULL) == 1,
			  scep_ossl(e, KH_E_INTERNAL, "encoding the signed attributes"));
		memset(&op, 0, sizeof(op));
		op.key = sg->key;
		op.digest = EVP_MD_get_type(md) == NID_sha512 ? KH_DIGEST_SHA512 : KH_DIGEST_SHA256;
		op.padding = KH_PAD_DEFAULT;
		op.in = h;
		op.in_len = hl;
		KH_TRY(hsm_sign(sg->hsm, &op, &sig, &sig_len, e));
		ASN1_STRING_set0(mine->enc_digest, sig, (int)sig_len);
		sig = NULL;
	}
	der_len = i2d_PKCS7(p7, &der);
	KH_ENSURE(der_len > 0, scep_ossl(e, KH_E_INTERNAL, "encoding the PKCSReq"));
	rq.der = der;
	rq.len = (size_t)der_len;
	der = NULL;
	*out = rq;
	memset(&rq, 0, sizeof(rq));
out:
	pki_scep_req_clear(&rq);
	OPENSSL_free(der);
	free(sig);
	OPENSSL_free(attrs);
	OPENSSL_free(env_der);
	PKCS7_SIGNER_INFO_free(si);
	PKCS7_free(p7);
	PKCS7_free(env);
	BIO_free(in);
	sk_X509_free(recips);
	return r;
}

/* ---- CertRep ---- */

void pki_scep_rep_clear(struct pki_scep_rep *r)
{
	free(r->env);
	memset(r, 0, sizeof(*r));
	r->fail_info = -1;
}

const char *pki_scep_fail_name(int f)
{
	static const char *const names[] = { "badAlg (unrecognized or unsupported algorithm)",
					     "badMessageCheck (integrity check failed)",
					     "badRequest (transaction not permitted or supported)",
					     "badTime (signingTime too far from the server's time)",
					     "badCertId (no certificate matches the criteria)" };

	return f >= 0 && f <= 4 ? names[f] : "unknown";
}

/* The one value of attribute oid, of type type; NULL when absent or other. */
static const ASN1_STRING *scep_attr(PKCS7_SIGNER_INFO *si, const char *oid, int type)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	int i;

	if (o == NULL)
		return NULL;
	i = X509at_get_attr_by_OBJ(si->auth_attr, o, -1);
	ASN1_OBJECT_free(o);
	if (i < 0)
		return NULL;
	a = X509at_get_attr(si->auth_attr, i);
	if (a == NULL || X509_ATTRIBUTE_count(a) != 1)
		return NULL;
	t = X509_ATTRIBUTE_get0_type(a, 0);
	if (t == NULL || t->type != type)
		return NULL;
	return t->value.asn1_string;
}

/* A small PrintableString number ("0".."99"); -1 otherwise. */
static int scep_num(const ASN1_STRING *s)
{
	const unsigned char *d;
	int n, v = 0, i;

	if (s == NULL || (n = ASN1_STRING_length(s)) < 1 || n > 2)
		return -1;
	d = ASN1_STRING_get0_data(s);
	for (i = 0; i < n; i++) {
		if (!isdigit(d[i]))
			return -1;
		v = v * 10 + (d[i] - '0');
	}
	return v;
}

enum kh_err pki_scep_certrep(const uint8_t *der, size_t len, X509 *signer, const struct pki_scep_req *rq,
			     struct pki_scep_rep *out, struct kh_errbuf *e)
{
	const unsigned char *p = der;
	STACK_OF(PKCS7_SIGNER_INFO) *sis;
	STACK_OF(X509) *signers = NULL;
	PKCS7_SIGNER_INFO *si;
	const ASN1_STRING *a;
	PKCS7 *p7 = NULL;
	BIO *content = NULL, *got = NULL;
	BUF_MEM *bm = NULL;
	struct pki_scep_rep rep;
	int r = KH_OK, v;

	memset(&rep, 0, sizeof(rep));
	rep.fail_info = -1;
	KH_ENSURE(len > 0 && len <= PKI_SCEP_MAX, kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: CertRep of bad size %zu", len));
	p7 = d2i_PKCS7(NULL, &p, (long)len);
	KH_ENSURE(p7 != NULL && p == der + len && PKCS7_type_is_signed(p7) && p7->d.sign != NULL &&
			  p7->d.sign->contents != NULL && PKCS7_type_is_data(p7->d.sign->contents),
		  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the answer is not a PKCS#7 SignedData CertRep"));
	sis = PKCS7_get_signer_info(p7);
	KH_ENSURE(sis != NULL && sk_PKCS7_SIGNER_INFO_num(sis) == 1,
		  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the CertRep must have exactly one signer"));
	si = sk_PKCS7_SIGNER_INFO_value(sis, 0);
	/* The signature, by the authenticated CA/RA only (no chain building). */
	signers = sk_X509_new_null();
	got = BIO_new(BIO_s_mem());
	KH_ENSURE(signers != NULL && got != NULL && sk_X509_push(signers, signer) > 0, KH_E_RESOURCE_EXHAUSTED);
	if (PKCS7_get_detached(p7))
		content = BIO_new_mem_buf("", 0);
	KH_ENSURE(!PKCS7_get_detached(p7) || content != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(PKCS7_verify(p7, signers, NULL, content, got, PKCS7_NOVERIFY | PKCS7_NOINTERN | PKCS7_NOCHAIN |
										  PKCS7_BINARY) == 1,
		  scep_ossl(e, KH_E_UNAVAILABLE,
			    "the CertRep's signature does not verify against the authenticated CA/RA certificate"));
	KH_ENSURE(scep_num(scep_attr(si, OID_MSG_TYPE, V_ASN1_PRINTABLESTRING)) == 3,
		  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the answer is not a CertRep (messageType 3)"));
	v = scep_num(scep_attr(si, OID_PKI_STATUS, V_ASN1_PRINTABLESTRING));
	KH_ENSURE(v == PKI_SCEP_SUCCESS || v == PKI_SCEP_FAILURE || v == PKI_SCEP_PENDING,
		  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the CertRep has no valid pkiStatus"));
	rep.status = (enum pki_scep_status)v;
	if (rq != NULL) {
		a = scep_attr(si, OID_TXID, V_ASN1_PRINTABLESTRING);
		KH_ENSURE(a != NULL && (size_t)ASN1_STRING_length(a) == strlen(rq->txid) &&
				  memcmp(ASN1_STRING_get0_data(a), rq->txid, strlen(rq->txid)) == 0,
			  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the CertRep answers another transaction"));
		a = scep_attr(si, OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING);
		KH_ENSURE(a != NULL && ASN1_STRING_length(a) == PKI_SCEP_NONCE &&
				  CRYPTO_memcmp(ASN1_STRING_get0_data(a), rq->nonce, PKI_SCEP_NONCE) == 0,
			  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the CertRep's recipientNonce is not our senderNonce (a replay?)"));
	}
	if (rep.status == PKI_SCEP_FAILURE) {
		rep.fail_info = scep_num(scep_attr(si, OID_FAIL_INFO, V_ASN1_PRINTABLESTRING));
		if (rep.fail_info > 4)
			rep.fail_info = -1;
	} else if (rep.status == PKI_SCEP_SUCCESS) {
		BIO_get_mem_ptr(got, &bm);
		KH_ENSURE(bm != NULL && bm->length > 0 && bm->length <= PKI_SCEP_MAX,
			  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: a SUCCESS CertRep without its envelope"));
		rep.env = malloc(bm->length);
		KH_ENSURE(rep.env != NULL, KH_E_RESOURCE_EXHAUSTED);
		memcpy(rep.env, bm->data, bm->length);
		rep.env_len = bm->length;
	}
	*out = rep;
	memset(&rep, 0, sizeof(rep));
out:
	free(rep.env);
	BIO_free(got);
	BIO_free(content);
	sk_X509_free(signers);
	PKCS7_free(p7);
	return r;
}

/* Single DES lives in OpenSSL's legacy provider: loaded once, into a
 * library context of its own, used for nothing but a CertRep's content. */
static pthread_once_t scep_legacy_once = PTHREAD_ONCE_INIT;
static OSSL_LIB_CTX *scep_legacy_ctx;

static void scep_legacy_init(void)
{
	OSSL_LIB_CTX *c = OSSL_LIB_CTX_new();

	if (c != NULL && OSSL_PROVIDER_load(c, "legacy") != NULL && OSSL_PROVIDER_load(c, "default") != NULL)
		scep_legacy_ctx = c;
	else
		OSSL_LIB_CTX_free(c);
}

enum kh_err pki_scep_open(const uint8_t *env, size_t env_len, X509 *self, bool allow_des, pki_scep_decrypt_fn decrypt,
			  void *arg, uint8_t **certs_der, size_t *certs_len, struct kh_errbuf *e)
{
	const unsigned char *p = env;
	PKCS7 *p7 = NULL;
	PKCS7_RECIP_INFO *ri;
	PKCS7_ENC_CONTENT *ec;
	EVP_CIPHER *cipher = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *key = NULL, *plain = NULL;
	size_t key_len = 0;
	int r = KH_OK, n1 = 0, n2 = 0, nid;

	KH_ENSURE(env_len > 0 && env_len <= PKI_SCEP_MAX, kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: envelope of bad size"));
	p7 = d2i_PKCS7(NULL, &p, (long)env_len);
	KH_ENSURE(p7 != NULL && p == env + env_len && PKCS7_type_is_enveloped(p7) && p7->d.enveloped != NULL &&
			  p7->d.enveloped->enc_data != NULL && p7->d.enveloped->enc_data->enc_data != NULL &&
			  p7->d.enveloped->enc_data->algorithm != NULL,
		  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the CertRep's content is not a PKCS#7 EnvelopedData"));
	KH_ENSURE(sk_PKCS7_RECIP_INFO_num(p7->d.enveloped->recipientinfo) == 1,
		  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the CertRep's envelope must have one recipient"));
	ri = sk_PKCS7_RECIP_INFO_value(p7->d.enveloped->recipientinfo, 0);
	KH_ENSURE(ri != NULL && ri->issuer_and_serial != NULL && ri->enc_key != NULL &&
			  X509_NAME_cmp(ri->issuer_and_serial->issuer, X509_get_issuer_name(self)) == 0 &&
			  ASN1_INTEGER_cmp(ri->issuer_and_serial->serial, X509_get0_serialNumber(self)) == 0,
		  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the CertRep is encrypted to another certificate than ours"));
	ec = p7->d.enveloped->enc_data;
	nid = OBJ_obj2nid(ec->algorithm->algorithm);
	KH_ENSURE(nid == NID_aes_128_cbc || nid == NID_aes_192_cbc || nid == NID_aes_256_cbc || nid == NID_des_ede3_cbc ||
			  (nid == NID_des_cbc && allow_des),
		  kh_err_set(e, KH_E_UNAVAILABLE,
			     "SCEP: the CertRep is encrypted with %s; keyhold accepts AES-CBC and 3DES-CBC%s",
			     nid != NID_undef ? OBJ_nid2sn(nid) : "an unknown cipher",
			     allow_des ? " (and DES-CBC)" : ""));
	KH_ENSURE(ec->enc_data->length > 0 && ec->enc_data->length <= PKI_SCEP_MAX,
		  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: empty encrypted content"));
	if (nid == NID_des_cbc) {
		pthread_once(&scep_legacy_once, scep_legacy_init);
		KH_ENSURE(scep_legacy_ctx != NULL,
			  kh_err_set(e, KH_E_UNAVAILABLE,
				     "SCEP: the CertRep is encrypted with DES-CBC and OpenSSL's legacy provider is missing"));
		cipher = EVP_CIPHER_fetch(scep_legacy_ctx, "DES-CBC", NULL);
	} else {
		cipher = EVP_CIPHER_fetch(NULL, OBJ_nid2sn(nid), NULL);
	}
	ctx = EVP_CIPHER_CTX_new();
	KH_ENSURE(cipher != NULL && ctx != NULL, scep_ossl(e, KH_E_INTERNAL, "fetching the content cipher"));
	KH_ENSURE(EVP_DecryptInit_ex2(ctx, cipher, NULL, NULL, NULL) == 1 &&
			  EVP_CIPHER_asn1_to_param(ctx, ec->algorithm->parameter) > 0,
		  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: bad content-encryption parameters"));
	KH_TRY(decrypt(arg, ASN1_STRING_get0_data(ri->enc_key), (size_t)ASN1_STRING_length(ri->enc_key), &key, &key_len,
		       e));
	KH_ENSURE(key_len == (size_t)EVP_CIPHER_CTX_get_key_length(ctx),
		  kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the content-encryption key has the wrong length"));
	plain = malloc((size_t)ec->enc_data->length + 32);
	KH_ENSURE(plain != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(EVP_DecryptInit_ex2(ctx, NULL, key, NULL, NULL) == 1 &&
			  EVP_DecryptUpdate(ctx, plain, &n1, ec->enc_data->data, ec->enc_data->length) == 1 &&
			  EVP_DecryptFinal_ex(ctx, plain + n1, &n2) == 1,
		  (ERR_clear_error(), kh_err_set(e, KH_E_UNAVAILABLE, "SCEP: the CertRep's content does not decrypt")));
	*certs_der = plain;
	*certs_len = (size_t)(n1 + n2);
	plain = NULL;
out:
	free(plain);
	if (key != NULL)
		OPENSSL_clear_free(key, key_len);
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(cipher);
	PKCS7_free(p7);
	return r;
}
