/* pki_cert.c: certificates and CRLs in and out: PEM (bundles), DER and
 * PKCS#7 SignedData (RFC 2315 "certs-only", as openssl crl2pkcs7 writes
 * it); the facts keyhold reports about them; export. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"

/* ---- loading ---- */

static enum kh_err pki_push(STACK_OF(X509) *sk, X509 *x, struct kh_errbuf *e)
{
	if (sk_X509_num(sk) >= PKI_CERTS_MAX) {
		X509_free(x);
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "more than %d certificates in one file", PKI_CERTS_MAX);
	}
	if (sk_X509_push(sk, x) <= 0) {
		X509_free(x);
		return KH_E_RESOURCE_EXHAUSTED;
	}
	return KH_OK;
}

/* The certificates of a PKCS#7 SignedData in der. */
static enum kh_err pki_p7_certs(const uint8_t *der, size_t len, STACK_OF(X509) *sk, struct kh_errbuf *e)
{
	const unsigned char *p = der;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	STACK_OF(X509) *certs = NULL;
	int r = KH_OK, i;

	KH_ENSURE(p7 != NULL && p == der + len,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the PKCS#7 data is malformed"));
	KH_ENSURE(PKCS7_type_is_signed(p7),
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the PKCS#7 data is not SignedData (a .p7b certificate bundle)"));
	certs = p7->d.sign != NULL ? p7->d.sign->cert : NULL;
	KH_ENSURE(sk_X509_num(certs) > 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "the PKCS#7 bundle holds no certificates"));
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		KH_ENSURE(X509_up_ref(x) == 1, KH_E_INTERNAL);
		KH_TRY(pki_push(sk, x, e));
	}
out:
	PKCS7_free(p7);
	return r;
}

static enum kh_err pki_der_cert(const uint8_t *der, size_t len, STACK_OF(X509) *sk, struct kh_errbuf *e,
				const char *what)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);

	if (x == NULL || p != der + len) {
		X509_free(x);
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s is not a valid X.509 certificate", what);
	}
	return pki_push(sk, x, e);
}

static bool pki_is_pem(const uint8_t *buf, size_t len)
{
	static const char tag[] = "-----BEGIN ";
	size_t i;

	for (i = 0; len >= sizeof(tag) - 1 && i <= len - (sizeof(tag) - 1); i++)
		if (memcmp(buf + i, tag, sizeof(tag) - 1) == 0)
			return true;
	return false;
}

static enum kh_err pki_pem_certs(const uint8_t *buf, size_t len, STACK_OF(X509) *sk, struct kh_errbuf *e)
{
	BIO *bio = BIO_new_mem_buf(buf, (int)len);
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long dlen = 0;
	int r = KH_OK, block = 0;

	KH_ENSURE(bio != NULL, KH_E_RESOURCE_EXHAUSTED);
	ERR_clear_error();
	for (;;) {
		char what[48];

		if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1) {
			unsigned long err = ERR_peek_last_error();

			ERR_clear_error();
			/* No further BEGIN line is the normal end. */
			KH_ENSURE(ERR_GET_REASON(err) == PEM_R_NO_START_LINE,
				  kh_err_set(e, KH_E_INVALID_ARGUMENT,
					     "PEM block %d is malformed (bad base64 or a missing END line)", block + 1));
			break;
		}
		block++;
		snprintf(what, sizeof(what), "PEM block %d", block);
		if (strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0) {
			KH_TRY(pki_der_cert(data, (size_t)dlen, sk, e, what));
		} else if (strcmp(name, "PKCS7") == 0 || strcmp(name, "PKCS #7 SIGNED DATA") == 0) {
			KH_TRY(pki_p7_certs(data, (size_t)dlen, sk, e));
		} else if (strstr(name, "PRIVATE KEY") != NULL) {
			r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
				       "the file holds a private key (PEM block %d): keyhold never takes private keys; "
				       "send certificates only", block);
			goto out;
		} else {
			log_dbg("ignoring PEM block %d (%s)", block, name);
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
	}
	KH_ENSURE(sk_X509_num(sk) > 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "no certificate found in the PEM data"));
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	return r;
}

enum kh_err pki_certs_load(const uint8_t *buf, size_t len, STACK_OF(X509) **out, struct kh_errbuf *e)
{
	STACK_OF(X509) *sk = NULL;
	int r = KH_OK;

	KH_ENSURE(buf != NULL && len > 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "the certificate data is empty"));
	KH_ENSURE(len <= KH_PKI_BLOB_MAX, kh_err_set(e, KH_E_INVALID_ARGUMENT, "the certificate data is too large"));
	sk = sk_X509_new_null();
	KH_ENSURE(sk != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (pki_is_pem(buf, len)) {
		KH_TRY(pki_pem_certs(buf, len, sk, e));
	} else {
		struct kh_errbuf e1 = { 0 };

		/* DER: a certificate, else a PKCS#7 bundle. */
		if (pki_der_cert(buf, len, sk, &e1, "the data") != KH_OK && pki_p7_certs(buf, len, sk, &e1) != KH_OK) {
			r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
				       "the data is not a certificate: expected PEM, DER or PKCS#7 (.p7b)");
			goto out;
		}
	}
	*out = sk;
	sk = NULL;
out:
	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	return r;
}

enum kh_err pki_crl_load(const uint8_t *buf, size_t len, X509_CRL **out, struct kh_errbuf *e)
{
	X509_CRL *crl = NULL;
	BIO *bio = NULL;
	int r = KH_OK;

	KH_ENSURE(buf != NULL && len > 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "the CRL is empty"));
	KH_ENSURE(len <= KH_PKI_BLOB_MAX, kh_err_set(e, KH_E_INVALID_ARGUMENT, "the CRL is too large"));
	if (pki_is_pem(buf, len)) {
		bio = BIO_new_mem_buf(buf, (int)len);
		KH_ENSURE(bio != NULL, KH_E_RESOURCE_EXHAUSTED);
		crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		KH_ENSURE(crl != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT,
						  "no valid '-----BEGIN X509 CRL-----' block in the PEM data"));
	} else {
		const unsigned char *p = buf;

		crl = d2i_X509_CRL(NULL, &p, (long)len);
		KH_ENSURE(crl != NULL && p == buf + len,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the data is not a CRL: expected PEM or DER"));
	}
	*out = crl;
	crl = NULL;
out:
	ERR_clear_error();
	X509_CRL_free(crl);
	BIO_free(bio);
	return r;
}

X509 *pki_x509_from_der(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);

	if (x != NULL && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

enum kh_err pki_x509_der(X509 *x, uint8_t **der, size_t *len)
{
	int n = i2d_X509(x, NULL);
	unsigned char *buf, *p;

	if (n <= 0)
		return KH_E_INTERNAL;
	buf = malloc((size_t)n);
	if (buf == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	p = buf;
	if (i2d_X509(x, &p) != n) {
		free(buf);
		return KH_E_INTERNAL;
	}
	*der = buf;
	*len = (size_t)n;
	return KH_OK;
}

/* ---- facts ---- */

void pki_fingerprint(X509 *x, char out[KH_FP_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) == 1)
		kh_hex(md, n, out, KH_FP_HEX + 1);
}

void pki_name_text(const X509_NAME *n, char *out, size_t outsz)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL;
	long len;

	out[0] = '\0';
	if (bio == NULL)
		return;
	/* RFC 2253 order and escaping, UTF-8 kept readable. */
	if (X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(bio, &p);
		if (len > 0) {
			size_t k = (size_t)len < outsz - 1 ? (size_t)len : outsz - 1;

			memcpy(out, p, k);
			out[k] = '\0';
		}
	}
	BIO_free(bio);
}

int64_t pki_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

static void pki_int_hex(const ASN1_INTEGER *ai, char *out, size_t outsz)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	size_t i;

	out[0] = '\0';
	if (hex != NULL) {
		for (i = 0; hex[i] != '\0'; i++)
			if (hex[i] >= 'A' && hex[i] <= 'F')
				hex[i] = (char)(hex[i] - 'A' + 'a');
		kh_strlcpy(out, hex, outsz);
	}
	OPENSSL_free(hex);
	BN_free(bn);
}

bool pki_cert_is_ca(X509 *x)
{
	uint32_t fl = X509_get_extension_flags(x);

	return (fl & EXFLAG_BCONS) != 0 && (fl & EXFLAG_CA) != 0;
}

bool pki_cert_self_signed(X509 *x)
{
	return X509_self_signed(x, 1) == 1;
}

void pki_cert_cn(X509 *x, char *out, size_t outsz)
{
	const X509_NAME *n = X509_get_subject_name(x);
	int i = -1, last = -1;
	unsigned char *utf8 = NULL;
	int len;

	out[0] = '\0';
	while ((i = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0)
		last = i;
	if (last < 0)
		return;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, last)));
	if (len > 0) {
		size_t k = (size_t)len < outsz - 1 ? (size_t)len : outsz - 1;

		memcpy(out, utf8, k);
		out[k] = '\0';
	}
	OPENSSL_free(utf8);
}

void pki_cert_info(X509 *x, struct kh_cert_info *out)
{
	memset(out, 0, sizeof(*out));
	pki_name_text(X509_get_subject_name(x), out->subject, sizeof(out->subject));
	pki_name_text(X509_get_issuer_name(x), out->issuer, sizeof(out->issuer));
	pki_int_hex(X509_get0_serialNumber(x), out->serial, sizeof(out->serial));
	out->not_before = pki_time(X509_get0_notBefore(x));
	out->not_after = pki_time(X509_get0_notAfter(x));
	pki_fingerprint(x, out->fingerprint);
	out->ca = pki_cert_is_ca(x);
	out->self_signed = pki_cert_self_signed(x);
	ERR_clear_error();
}

void pki_crl_info(X509_CRL *c, struct kh_crl_info *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	ASN1_INTEGER *num;
	int entries;

	memset(out, 0, sizeof(*out));
	pki_name_text(X509_CRL_get_issuer(c), out->issuer, sizeof(out->issuer));
	out->this_update = pki_time(X509_CRL_get0_lastUpdate(c));
	out->next_update = pki_time(X509_CRL_get0_nextUpdate(c));
	/* An empty CRL has no revokedCertificates at all: the stack is NULL
	 * and its count -1, which is 0 entries, not 4294967295. */
	entries = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c));
	out->revoked = entries > 0 ? (uint32_t)entries : 0;
	num = X509_CRL_get_ext_d2i(c, NID_crl_number, NULL, NULL);
	if (num != NULL) {
		BIGNUM *bn = ASN1_INTEGER_to_BN(num, NULL);
		char *dec = bn != NULL ? BN_bn2dec(bn) : NULL;

		pki_int_hex(num, out->number, sizeof(out->number));
		if (dec != NULL)
			kh_strlcpy(out->number_dec, dec, sizeof(out->number_dec));
		OPENSSL_free(dec);
		BN_free(bn);
	}
	ASN1_INTEGER_free(num);
	if (X509_CRL_digest(c, EVP_sha256(), md, &n) == 1)
		kh_hex(md, n, out->fingerprint, sizeof(out->fingerprint));
	ERR_clear_error();
}

/* ---- export ---- */

static enum kh_err pki_bio_take(BIO *bio, struct kh_bytes *out)
{
	char *p = NULL;
	long len = BIO_get_mem_data(bio, &p);

	if (len <= 0)
		return KH_E_INTERNAL;
	out->data = malloc((size_t)len + 1);
	if (out->data == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	memcpy(out->data, p, (size_t)len);
	out->data[len] = '\0';
	out->len = (size_t)len;
	return KH_OK;
}

enum kh_err pki_export(STACK_OF(X509) *certs, enum kh_cert_format f, struct kh_bytes *out, struct kh_errbuf *e)
{
	BIO *bio = NULL;
	PKCS7 *p7 = NULL;
	int r = KH_OK, i;

	KH_ENSURE(sk_X509_num(certs) > 0, kh_err_set(e, KH_E_FAILED_PRECONDITION, "no certificate to export"));
	bio = BIO_new(BIO_s_mem());
	KH_ENSURE(bio != NULL, KH_E_RESOURCE_EXHAUSTED);
	switch (f) {
	case KH_FMT_PEM:
		for (i = 0; i < sk_X509_num(certs); i++)
			KH_ENSURE(PEM_write_bio_X509(bio, sk_X509_value(certs, i)) == 1, KH_E_INTERNAL);
		break;
	case KH_FMT_DER:
		KH_ENSURE(sk_X509_num(certs) == 1,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT,
				     "DER holds one certificate; export the chain as pem or pkcs7"));
		KH_ENSURE(i2d_X509_bio(bio, sk_X509_value(certs, 0)) == 1, KH_E_INTERNAL);
		break;
	case KH_FMT_PKCS7:
		/* A degenerate SignedData with no signers (RFC 2315 §9.1), the
		 * shape of `openssl crl2pkcs7 -nocrl`. PEM-armoured. */
		p7 = PKCS7_new();
		KH_ENSURE(p7 != NULL, KH_E_RESOURCE_EXHAUSTED);
		KH_ENSURE(PKCS7_set_type(p7, NID_pkcs7_signed) == 1 && PKCS7_content_new(p7, NID_pkcs7_data) == 1,
			  KH_E_INTERNAL);
		for (i = 0; i < sk_X509_num(certs); i++)
			KH_ENSURE(PKCS7_add_certificate(p7, sk_X509_value(certs, i)) == 1, KH_E_INTERNAL);
		KH_ENSURE(PEM_write_bio_PKCS7(bio, p7) == 1, KH_E_INTERNAL);
		break;
	default:
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "unknown export format");
		goto out;
	}
	KH_TRY(pki_bio_take(bio, out));
out:
	ERR_clear_error();
	PKCS7_free(p7);
	BIO_free(bio);
	return r;
}
