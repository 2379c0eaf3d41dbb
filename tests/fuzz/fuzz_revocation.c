/* fuzz_revocation.c: the revocation answers keyholdd fetches over HTTP and
 * judges (service/pki/pki_crl_ocsp.c), all network input: the revocation
 * scheduler and `cert check` load CRLs from distribution points and trust
 * stores' CRL URLs, and OCSP responses from responders, some of them a
 * store's trusted third-party responder. Byte 0 picks the parser, the rest
 * is the answer: 0 a CRL (PEM or DER) judged for a fixed certificate and
 * issuer; 1 an OCSP response to a fixed request, with that issuer also as
 * the trusted responder. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kh_err.h"
#include "pki/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *fz_ca;
static struct pki_ocsp_req fz_rq;

/* A self-signed P-256 CA, made once; it issues itself for the request. */
static int fz_init(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_NAME *n = NULL;
	struct kh_errbuf e = { 0 };

	fz_ca = X509_new();
	if (k == NULL || fz_ca == NULL)
		return -1;
	n = X509_get_subject_name(fz_ca);
	if (X509_set_version(fz_ca, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(fz_ca), 4096) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Fuzz Root CA", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(fz_ca, n) != 1 || X509_gmtime_adj(X509_getm_notBefore(fz_ca), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(fz_ca), 86400L * 3650) == NULL || X509_set_pubkey(fz_ca, k) != 1 ||
	    X509_sign(fz_ca, k, EVP_sha256()) <= 0)
		return -1;
	EVP_PKEY_free(k);
	return pki_ocsp_request(fz_ca, fz_ca, true, &fz_rq, &e) == KH_OK ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kh_errbuf e = { 0 };
	struct pki_rev_answer a;
	struct kh_crl_info info;
	X509_CRL *crl = NULL;

	if (fz_ca == NULL && fz_init() != 0)
		abort();
	if (size < 1)
		return 0;
	switch (data[0] % 2) {
	case 0:
		if (pki_crl_load(data + 1, size - 1, &crl, &e) == KH_OK) {
			pki_crl_info(crl, &info);
			if (pki_crl_usable(crl, fz_ca, fz_ca, 1700000000, &e) == KH_OK)
				pki_crl_status(crl, fz_ca, &a);
			X509_CRL_free(crl);
		}
		break;
	default:
		kh_ignore(pki_ocsp_response(&fz_rq, data + 1, size - 1, fz_ca, fz_ca, PKI_NONCE_ON, 1700000000, &a, &e));
		break;
	}
	ERR_clear_error();
	return 0;
}
