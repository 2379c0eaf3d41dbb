/* pki: X.509 for keyhold on top of OpenSSL: parsing of subjects, SANs and
 * EKUs as administrators type them; loading certificates and CRLs in PEM,
 * DER and PKCS#7; building CSRs and self-signed certificates whose TBS is
 * signed in the token; chain validation (X509_STRICT). No sockets, no
 * SQLite: callers hand in what they hold. */
#ifndef PKI_H
#define PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hsm.h"
#include "kh_err.h"
#include "kh_pki.h"
#include "kh_types.h"

/* What keyhold reports of a certificate and of a CRL. */
struct kh_cert_info {
	char subject[KH_DN_MAX + 1];   /* RFC 2253 */
	char issuer[KH_DN_MAX + 1];
	char serial[KH_SERIAL_HEX + 1];
	int64_t not_before, not_after; /* seconds since the epoch */
	char fingerprint[KH_FP_HEX + 1];
	bool ca;                       /* basicConstraints CA:TRUE */
	bool self_signed;
};

struct kh_crl_info {
	char issuer[KH_DN_MAX + 1];
	int64_t this_update, next_update; /* next_update 0: absent */
	uint32_t revoked;
	char number[KH_SERIAL_HEX + 1];   /* crlNumber hex; "" when absent */
	char number_dec[KH_SERIAL_HEX + 1]; /* crlNumber decimal (20 octets: 49 digits); "" when absent */
	char fingerprint[KH_FP_HEX + 1];
};

/* ---- parsing what administrators type (pki_parse.c) ---- */

#define PKI_RDN_MAX 32
#define PKI_SAN_ENTRIES_MAX 100
#define PKI_EKU_MAX 16

/* "CN=web.example.com,O=Example,C=US" (RFC 4514: the first RDN is the
 * most specific, so the ASN.1 sequence is built in reverse). Escapes
 * "\," "\+" "\\" "\"" "\<" "\>" "\;" "\=" "\#" "\ " and "\XX" (hex)
 * work; "+" joins a multi-valued RDN; unescaped blanks around types and
 * values are dropped. Types: CN O OU C ST L emailAddress serialNumber DC
 * UID street title GN SN postalCode (any case; E and S as aliases), long
 * names, or dotted OIDs. INVALID_ARGUMENT names the offending part. */
enum kh_err pki_dn_parse(const char *s, X509_NAME **out, struct kh_errbuf *e) KH_WUR;

/* "DNS:a.example.com,IP:192.0.2.1,email:x@example.com,URI:spiffe://x";
 * fqdn (may be NULL or "") is added as a DNS name. Duplicates are dropped.
 * *out is NULL when the list is empty. */
enum kh_err pki_san_parse(const char *s, const char *fqdn, GENERAL_NAMES **out, struct kh_errbuf *e) KH_WUR;

/* "serverAuth,clientAuth" (names in any case, or dotted OIDs); empty
 * means the default serverAuth,clientAuth. */
enum kh_err pki_eku_parse(const char *s, EXTENDED_KEY_USAGE **out, struct kh_errbuf *e) KH_WUR;

/* An ordered revocation policy: methods from {crl, ocsp} tried in the
 * order given, optionally ending in "none" (soft-fail: accept what no
 * method answers for); "none" or "" alone turns checking off. Normalised
 * (lower case, repeats dropped) into out; "none" before a method is
 * refused. */
enum kh_err pki_revocation_parse(const char *s, char *out, size_t outsz, struct kh_errbuf *e) KH_WUR;

/* The digest a signature by a key of type t uses when req was asked for:
 * SHA-256 by default, SHA-384/512 allowed; SHA-1, MD5 and SHA-224 refused
 * with INVALID_ARGUMENT naming the rule; Ed25519 takes no digest. */
enum kh_err pki_sig_digest(enum kh_key_type t, enum kh_digest req, enum kh_digest *out,
			   struct kh_errbuf *e) KH_WUR;

/* Parses subject, SAN list (+ fqdn) and EKU list into one template. */
struct pki_subject {
	X509_NAME *name;
	GENERAL_NAMES *san;        /* NULL: none */
	EXTENDED_KEY_USAGE *eku;
};
enum kh_err pki_subject_parse(const char *dn, const char *san, const char *fqdn, const char *eku,
			      struct pki_subject *out, struct kh_errbuf *e) KH_WUR;
void pki_subject_clear(struct pki_subject *s);

/* ---- trustpoint editing (pki_tpedit.c) ---- */

/* --ip-san: when the CN (the last one) of dn is an IPv4 or IPv6 address,
 * appends "IP:<cn>" to the SAN list san (capacity sansz) unless it is
 * there; INVALID_ARGUMENT when the CN is not an IP address or the list
 * would be too long. */
enum kh_err pki_cn_ip_san(const char *dn, char *san, size_t sansz, struct kh_errbuf *e) KH_WUR;

/* ---- certificates and CRLs (pki_cert.c) ---- */

#define PKI_CERTS_MAX KH_TS_CERTS_MAX

/* Certificates from PEM (one or many, other PEM blocks ignored), DER, or
 * PKCS#7 SignedData (PEM or DER, .p7b). INVALID_ARGUMENT with a message a
 * person can act on for anything else. */
enum kh_err pki_certs_load(const uint8_t *buf, size_t len, STACK_OF(X509) **out, struct kh_errbuf *e) KH_WUR;
/* One CRL, PEM or DER. */
enum kh_err pki_crl_load(const uint8_t *buf, size_t len, X509_CRL **out, struct kh_errbuf *e) KH_WUR;
X509 *pki_x509_from_der(const uint8_t *der, size_t len);
enum kh_err pki_x509_der(X509 *x, uint8_t **der, size_t *len) KH_WUR;

/* SHA-256 of the DER, lower-case hex. */
void pki_fingerprint(X509 *x, char out[KH_FP_HEX + 1]);
void pki_name_text(const X509_NAME *n, char *out, size_t outsz); /* RFC 2253 */
void pki_cert_info(X509 *x, struct kh_cert_info *out);
void pki_crl_info(X509_CRL *c, struct kh_crl_info *out);
bool pki_cert_is_ca(X509 *x);           /* basicConstraints CA:TRUE */
bool pki_cert_self_signed(X509 *x);     /* issuer == subject and the signature verifies */
/* The subject's (last) CN, "" when none. */
void pki_cert_cn(X509 *x, char *out, size_t outsz);
/* ASN1_TIME to seconds since the epoch. */
int64_t pki_time(const ASN1_TIME *t);

/* Writes certs (leaf first) as PEM, DER (one certificate) or PKCS#7. */
enum kh_err pki_export(STACK_OF(X509) *certs, enum kh_cert_format f, struct kh_bytes *out,
		       struct kh_errbuf *e) KH_WUR;

/* ---- building and signing in the token (pki_build.c) ---- */

/* Who signs: a token key, its public key and the digest to use (from
 * pki_sig_digest). md is the digest's EVP_MD (NULL for Ed25519). */
struct pki_signer {
	struct hsm *hsm;
	const char *key;
	enum kh_key_type type;
	EVP_PKEY *pub;
	enum kh_digest digest;
	const EVP_MD *md;
};

/* A PKCS#10 request with subject, SAN, key usage and EKU requested as
 * extensions (RFC 2986 §4.1, PKCS#9 extensionRequest) and an optional
 * challengePassword; signed in the token and verified before return. */
enum kh_err pki_csr_build(const struct pki_signer *sg, const struct pki_subject *sub, const char *challenge,
			  X509_REQ **out, struct kh_errbuf *e) KH_WUR;

/* A self-signed identity certificate (RFC 5280): v3, random positive
 * 16-byte serial from the token, validity not_before (keyhold's clock,
 * svc_now()) .. not_before + days, basicConstraints critical CA:FALSE, key
 * usage critical matching the key type, EKU, SAN, SKI and AKI; signed in
 * the token and verified. */
enum kh_err pki_selfsigned_build_at(const struct pki_signer *sg, const struct pki_subject *sub, uint32_t days,
				    int64_t not_before, X509 **out, struct kh_errbuf *e) KH_WUR;

/* PEM text of a request (NUL-terminated, owned by the caller). */
enum kh_err pki_csr_pem(X509_REQ *req, char **pem, struct kh_errbuf *e) KH_WUR;
/* DER of a request into out (malloc'd; out's old bytes are freed first). */
enum kh_err pki_csr_der(X509_REQ *req, struct kh_bytes *out, struct kh_errbuf *e) KH_WUR;

/* ---- validation (pki_verify.c) ---- */

struct pki_verify_opts {
	STACK_OF(X509) *trusted;      /* anchors (borrowed) */
	STACK_OF(X509) *untrusted;    /* intermediates (borrowed; may be NULL) */
	STACK_OF(X509_CRL) *crls;     /* when non-empty: CRL check on the whole chain */
	int64_t at;                   /* 0: now */
	const char *host;             /* may be NULL */
	const char *ip;
	enum kh_purpose purpose;
	bool partial_chain;           /* a trusted intermediate may end the chain when no root does */
	bool no_check_time;           /* validity periods are the caller's business */
	const struct kh_validation *v; /* policy inputs and key floor; NULL: kh_validation_default */
};

struct pki_verify_result {
	bool valid;
	int error;                    /* X509_V_ERR_* */
	int depth;
	char reason[512];
	STACK_OF(X509) *chain;        /* owned; leaf first (partial on failure) */
	/* The valid policy set (RFC 5280 §6.1.6: user-constrained), dotted
	 * OIDs or "anyPolicy"; empty when no policy is valid for the path. */
	char policies[KH_POLICIES_MAX][KH_OID_MAX + 1];
	size_t n_policies;
};

/* Builds and checks the chain of leaf per RFC 5280 §6 with OpenSSL's
 * verifier: X509_V_FLAG_X509_STRICT, policy processing (o->v's initial
 * policy set and the three initial inhibits), extended CRL support
 * (indirect CRLs, distribution point scope, delta CRLs, CRL signing keys
 * other than the certificate signer's), name constraints, host names
 * without partial wildcards; then keyhold's key strength floor on every
 * certificate of the valid chain (o->v: RSA/DSA bits, EC bits, no MD5 and
 * no SHA-1 unless allowed; a trust anchor's self-signature is exempt). A
 * refusal names the certificate (subject, depth) and the rule. KH_OK
 * whenever the check ran (res says whether the chain is valid); an error
 * only when it could not run. */
enum kh_err pki_verify(X509 *leaf, const struct pki_verify_opts *o, struct pki_verify_result *res,
		       struct kh_errbuf *e) KH_WUR;
void pki_verify_result_clear(struct pki_verify_result *r);
/* v's RFC 5280 inputs on vp: X509_STRICT, policy checking with the initial
 * policy set (none: {anyPolicy}) and inhibits, no partial wildcards. For
 * verifiers pki_verify does not drive (the TLS listener). */
enum kh_err pki_verify_param_apply(X509_VERIFY_PARAM *vp, const struct kh_validation *v, struct kh_errbuf *e) KH_WUR;
/* v's key strength floor on a valid chain (leaf first): 0, or the
 * X509_V_ERR_* code with *depth and why[] (certificate and rule) set. */
int pki_floor_chain(STACK_OF(X509) *chain, const struct kh_validation *v, int *depth, char *why, size_t whysz);

/* Drains OpenSSL's error queue into the log and returns the last reason
 * ("" when empty), for messages. */
const char *pki_ossl_reason(char *buf, size_t bufsz);

/* ---- revocation: CRLs and OCSP (pki_rev.c) ----
 * RFC 5280 §6.3 (CRLs) and RFC 6960 (OCSP). Nothing here touches the
 * network or the database: callers fetch and cache, these judge. */

#define PKI_URLS_MAX 4
#define PKI_REV_SKEW 300            /* seconds of clock skew tolerated */
#define PKI_CERT_ID_MAX 160

enum pki_rev_status { PKI_REV_GOOD, PKI_REV_REVOKED, PKI_REV_UNKNOWN };

struct pki_rev_answer {
	enum pki_rev_status status;
	int reason;                     /* CRLReason (RFC 5280 §5.3.1); -1: none given */
	int64_t revoked_at;
	int64_t this_update, next_update; /* next_update 0: absent */
};

/* The http:// URIs of x's CRL distribution points (RFC 5280 §4.2.1.13,
 * full names of DPs without a cRLIssuer) and of its AIA OCSP responders
 * (§4.2.2.1), up to max; *skipped counts URIs of other schemes (ldap,
 * https), which keyhold does not fetch. */
size_t pki_crl_urls(X509 *x, char urls[][KH_URL_MAX + 1], size_t max, size_t *skipped);
size_t pki_ocsp_urls(X509 *x, char urls[][KH_URL_MAX + 1], size_t max, size_t *skipped);
/* "keyCompromise", ... (RFC 5280 §5.3.1); "unspecified" for -1. */
const char *pki_crl_reason_name(int reason);
/* A cache key for cert's status: SHA-256 of the issuer's public key, ':'
 * and the serial in hex. */
void pki_cert_id(X509 *cert, X509 *issuer, char out[PKI_CERT_ID_MAX]);

/* Whether crl can answer for certificates of issuer at now: issued by it
 * (name and signature; cRLSign when the issuer has a key usage), a full
 * CRL covering cert (no delta, no indirect, issuingDistributionPoint
 * scope), thisUpdate not in the future and nextUpdate not past.
 * FAILED_PRECONDITION saying why not. */
enum kh_err pki_crl_usable(X509_CRL *crl, X509 *cert, X509 *issuer, int64_t now, struct kh_errbuf *e) KH_WUR;
/* cert's status per a usable crl (good or revoked with reason and time). */
void pki_crl_status(X509_CRL *crl, X509 *cert, struct pki_rev_answer *a);

/* An OCSP request for cert (RFC 6960 §4.1: SHA-1 CertID, as RFC 5019
 * requires of responders), with a nonce (RFC 8954) when asked. */
struct pki_ocsp_req {
	OCSP_REQUEST *req;
	OCSP_CERTID *id;                /* owned; also inside req */
	uint8_t *der;                   /* owned (OPENSSL_free) */
	size_t len;
};
enum kh_err pki_ocsp_request(X509 *cert, X509 *issuer, bool nonce, struct pki_ocsp_req *out,
			     struct kh_errbuf *e) KH_WUR;
void pki_ocsp_req_clear(struct pki_ocsp_req *r);

enum pki_nonce { PKI_NONCE_OFF, PKI_NONCE_ON, PKI_NONCE_REQUIRED };

/* Judges a DER OCSPResponse to rq: successful, a BasicOCSPResponse whose
 * signature verifies and whose signer is the issuer or a responder the
 * issuer certified with id-kp-OCSPSigning (§4.2.2.2), covering rq's
 * CertID, fresh at now (thisUpdate/nextUpdate, §4.2.2.1), with the nonce
 * echoed (a different one is always refused; none is refused under
 * PKI_NONCE_REQUIRED). trusted (may be NULL): a responder certificate the
 * administrator trusts for this store although the issuer did not issue
 * it (a trusted third-party responder, RFC 6960 §4.2.2.2 "matches a local
 * configuration of OCSP signing authority"): a response it signed is
 * accepted without any chain. Otherwise none is refused under
 * PKI_NONCE_REQUIRED). KH_OK with a->status GOOD, REVOKED or UNKNOWN (the
 * responder does not know the certificate); FAILED_PRECONDITION saying why
 * the response cannot be used. */
enum kh_err pki_ocsp_response(const struct pki_ocsp_req *rq, const uint8_t *der, size_t len, X509 *issuer, X509 *trusted,
			      enum pki_nonce nonce, int64_t now, struct pki_rev_answer *a,
			      struct kh_errbuf *e) KH_WUR;

#endif
