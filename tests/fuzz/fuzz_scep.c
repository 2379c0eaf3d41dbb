/* fuzz_scep.c: the SCEP answers keyholdd parses (service/pki/pki_scep.c),
 * all network input. Byte 0 picks the parser, the rest is the answer:
 * 0 GetCACert (DER certificate or PKCS#7 with CA and RA), 1 GetCACaps,
 * 2 a CertRep checked against the first certificate it carries (so the
 * real scepserver seeds reach the signature check and the attributes),
 * 3 a pkcsPKIEnvelope opened for a certificate named by its own first
 * recipient, the key transport "decrypted" to a fixed key of the length
 * the fuzzer chooses (so the content decryption and its padding check run). */
#include <stdlib.h>
#include <string.h>

#include <openssl/pkcs7.h>

#include "kh_err.h"
#include "pki/pki_scep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t fz_keylen;

static enum kh_err fz_decrypt(void *arg, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
			      struct kh_errbuf *e)
{
	(void)arg;
	(void)in;
	(void)in_len;
	(void)e;
	*out = calloc(1, fz_keylen ? fz_keylen : 1);
	if (*out == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	*out_len = fz_keylen;
	return KH_OK;
}

static void fz_certrep(const uint8_t *d, size_t n)
{
	const unsigned char *p = d;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)n);
	struct pki_scep_rep rep;
	struct kh_errbuf e = { 0 };
	X509 *signer;

	memset(&rep, 0, sizeof(rep));
	if (p7 == NULL)
		return;
	if (PKCS7_type_is_signed(p7) && p7->d.sign != NULL && sk_X509_num(p7->d.sign->cert) > 0) {
		signer = sk_X509_value(p7->d.sign->cert, 0);
		if (pki_scep_certrep(d, n, signer, NULL, &rep, &e) == KH_OK)
			pki_scep_rep_clear(&rep);
	}
	PKCS7_free(p7);
}

static void fz_open(const uint8_t *d, size_t n)
{
	const unsigned char *p;
	PKCS7 *p7;
	PKCS7_RECIP_INFO *ri;
	X509 *self = NULL;
	uint8_t *certs = NULL;
	size_t certs_len = 0;
	struct kh_errbuf e = { 0 };

	if (n < 1)
		return;
	fz_keylen = d[0] % 40;
	p = d + 1;
	p7 = d2i_PKCS7(NULL, &p, (long)(n - 1));
	if (p7 == NULL)
		return;
	if (PKCS7_type_is_enveloped(p7) && p7->d.enveloped != NULL &&
	    sk_PKCS7_RECIP_INFO_num(p7->d.enveloped->recipientinfo) > 0) {
		ri = sk_PKCS7_RECIP_INFO_value(p7->d.enveloped->recipientinfo, 0);
		self = X509_new();
		if (self != NULL && ri->issuer_and_serial != NULL &&
		    X509_set_issuer_name(self, ri->issuer_and_serial->issuer) == 1 &&
		    X509_set_serialNumber(self, ri->issuer_and_serial->serial) == 1 &&
		    pki_scep_open(d + 1, n - 1, self, true, fz_decrypt, NULL, &certs, &certs_len, &e) == KH_OK)
			free(certs);
	}
	X509_free(self);
	PKCS7_free(p7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kh_errbuf e = { 0 };
	struct pki_scep_caps caps;
	const EVP_MD *md;
	const EVP_CIPHER *cipher;
	X509 *ca = NULL, *ra = NULL;

	if (size < 1 || size > PKI_SCEP_MAX)
		return 0;
	switch (data[0] % 4) {
	case 0:
		if (pki_scep_cacert_parse(data + 1, size - 1, &ca, &ra, &e) == KH_OK && ca == NULL)
			abort();
		X509_free(ca);
		X509_free(ra);
		break;
	case 1:
		pki_scep_caps_parse(data + 1, size - 1, &caps);
		if (pki_scep_choose(&caps, false, &md, &cipher, &e) == KH_OK && (md == NULL || cipher == NULL))
			abort();
		break;
	case 2:
		fz_certrep(data + 1, size - 1);
		break;
	default:
		fz_open(data + 1, size - 1);
		break;
	}
	return 0;
}
