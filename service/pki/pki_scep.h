/* pki/pki_scep.h: SCEP messages (RFC 8894) without the network: GetCACaps
 * and GetCACert answers parsed, the PKCSReq built (CSR enveloped to the
 * CA/RA, SignedData signed in the token), the CertRep checked and opened.
 * Every input here came from the network: parsed strictly, sizes capped. */
#ifndef PKI_SCEP_H
#define PKI_SCEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kh_err.h"
#include "pki/pki.h"

#define PKI_SCEP_MAX (256 * 1024)     /* any SCEP answer */
#define PKI_SCEP_CAPS_MAX 4096
#define PKI_SCEP_NONCE 16
#define PKI_SCEP_TXID (2 * 32)         /* hex SHA-256 of the public key */

struct pki_scep_caps {
	bool post, sha256, sha512, aes, des3, sha1, standard, renewal;
};
/* GetCACaps: one keyword a line (case-insensitive); unknown ones ignored. */
void pki_scep_caps_parse(const uint8_t *buf, size_t len, struct pki_scep_caps *out);
/* The digest and cipher keyhold uses with caps: SHA-256 (else SHA-512)
 * and AES-128-CBC (else 3DES when offered and not in FIPS mode); SHA-1,
 * MD5 and single DES are refused (FAILED_PRECONDITION naming what the
 * server offers). */
enum kh_err pki_scep_choose(const struct pki_scep_caps *c, bool fips, const EVP_MD **md, const EVP_CIPHER **cipher,
			    struct kh_errbuf *e) KH_WUR;

/* GetCACert: a DER certificate (the CA) or a degenerate PKCS#7 with the CA
 * and an RA (RFC 8894 §4.2.1.2). *ca: the CA that issues; *ra: the RA
 * certificate (NULL when the CA itself signs and decrypts). */
enum kh_err pki_scep_cacert_parse(const uint8_t *buf, size_t len, X509 **ca, X509 **ra, struct kh_errbuf *e) KH_WUR;

/* One request in flight. */
struct pki_scep_req {
	char txid[PKI_SCEP_TXID + 1];
	uint8_t nonce[PKI_SCEP_NONCE];
	uint8_t *der;                  /* the PKCS#7 to send (OPENSSL_free) */
	size_t len;
};
void pki_scep_req_clear(struct pki_scep_req *r);

/* messageType (RFC 8894 §3.2.1.2) of the requests keyhold sends. */
enum pki_scep_msg { PKI_SCEP_RENEWALREQ = 17, PKI_SCEP_PKCSREQ = 19, PKI_SCEP_CERTPOLL = 20 };

/* transactionID for a request about pub: the hex SHA-256 of its
 * SubjectPublicKeyInfo (RFC 8894 §3.2.1.1). */
enum kh_err pki_scep_txid(EVP_PKEY *pub, char out[PKI_SCEP_TXID + 1], struct kh_errbuf *e) KH_WUR;

/* A pkiMessage of type type: content (a CSR for PKCSReq and RenewalReq,
 * an IssuerAndSubject for CertPoll) enveloped with cipher to recipient
 * (RA or CA), in a SignedData signed by sg's token key through the
 * certificate signer (the transient self-signed one for PKCSReq, the
 * current certificate for RenewalReq, the original request's for
 * CertPoll), with messageType, transactionID txid and senderNonce nonce
 * (from the token's RNG). */
enum kh_err pki_scep_request(const struct pki_signer *sg, X509 *signer, enum pki_scep_msg type, const char *txid,
			     const uint8_t *content, size_t content_len, X509 *recipient, const EVP_MD *md,
			     const EVP_CIPHER *cipher, const uint8_t nonce[PKI_SCEP_NONCE], struct pki_scep_req *out,
			     struct kh_errbuf *e) KH_WUR;

/* CertPoll's content (RFC 8894 §3.3.3): IssuerAndSubject, the issuer
 * the CA's subject, the subject the request's (DER Name). *out: free. */
enum kh_err pki_scep_issuer_and_subject(X509 *ca, const uint8_t *subject, size_t subject_len, uint8_t **out,
					size_t *out_len, struct kh_errbuf *e) KH_WUR;

enum pki_scep_status { PKI_SCEP_SUCCESS = 0, PKI_SCEP_FAILURE = 2, PKI_SCEP_PENDING = 3 };

struct pki_scep_rep {
	enum pki_scep_status status;
	int fail_info;                 /* 0..4 (badAlg ... badCertId); -1: none */
	uint8_t *env;                  /* SUCCESS: the pkcsPKIEnvelope DER (free) */
	size_t env_len;
};
void pki_scep_rep_clear(struct pki_scep_rep *r);
/* "badAlg", ... (RFC 8894 §3.2.1.4.5); "unknown" otherwise. */
const char *pki_scep_fail_name(int fail_info);

/* Checks a CertRep: SignedData whose one signer is signer (the RA, else
 * the CA; signature verified), messageType 3, the transactionID of rq,
 * recipientNonce = rq's senderNonce, a known pkiStatus. rq NULL: only the
 * structure and signature (the fuzz target). */
enum kh_err pki_scep_certrep(const uint8_t *der, size_t len, X509 *signer, const struct pki_scep_req *rq,
			     struct pki_scep_rep *out, struct kh_errbuf *e) KH_WUR;

/* Opens the CertRep's envelope: the one recipient is self; its key
 * transport is undone by decrypt (CKM_RSA_PKCS in the token); the content
 * (AES or 3DES CBC; with allow_des also single DES-CBC, which scepserver and
 * other servers use for their answers whatever the client asked: the
 * content is the public certificate, its integrity the CertRep's signature)
 * decrypted; a degenerate PKCS#7 of certificates
 * returned as its DER in *certs_der (free). */
typedef enum kh_err (*pki_scep_decrypt_fn)(void *arg, const uint8_t *in, size_t in_len, uint8_t **out,
					   size_t *out_len, struct kh_errbuf *e);
enum kh_err pki_scep_open(const uint8_t *env, size_t env_len, X509 *self, bool allow_des, pki_scep_decrypt_fn decrypt,
			  void *arg, uint8_t **certs_der, size_t *certs_len, struct kh_errbuf *e) KH_WUR;

#endif
