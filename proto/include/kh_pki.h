/* kh_pki: the PKI area's wire vocabulary: the limits proto/validate.c
 * enforces and the service relies on (CSRs, trustpoints, trust stores,
 * CRLs), the wire enums' C names and their text names. */
#ifndef KH_PKI_H
#define KH_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kh_text.h"

#include "kh_err.h"
#include "kh_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Text limits of the wire (longer input is refused, never truncated). */
#define KH_DN_MAX 1024          /* a distinguished name as text */
#define KH_SAN_MAX 2048         /* a SAN list */
#define KH_EKU_MAX 512          /* an EKU list */
#define KH_FQDN_MAX 253         /* RFC 1035 */
#define KH_REVOCATION_MAX 64
#define KH_CHALLENGE_MAX 255    /* PKCS#9 challengePassword (ub-challengePassword) */
#define KH_FP_HEX 64            /* SHA-256 as hex */
#define KH_FP_IN_MAX 128        /* a fingerprint as typed: hex with colons */
#define KH_HOST_MAX 253
#define KH_IP_MAX 64
#define KH_SERIAL_HEX 82        /* 20-octet serial (RFC 5280 §4.1.2.2) plus slack */
#define KH_PKI_FILES_MAX 64     /* CRL files in one verify */
/* Trust stores as trustpools (docs/PKI.md "Limits"): a public CA bundle
 * (Debian's holds ~150, the largest public root programs a few hundred)
 * fits many times over; one request is still bounded by the frame cap. */
#define KH_TS_FILES_MAX 1024    /* files in one TruststoreAdd */
#define KH_TS_CERTS_MAX 4096    /* certificates in one trust store, and in one file */
#define KH_PKI_WARN_MAX 4
#define KH_PKI_WARN_LEN 256
/* Largest certificate/CRL payload a request carries: the frame cap is
 * 1 MiB and the envelope needs a little room. */
#define KH_PKI_BLOB_MAX ((1u << 20) - 8192)

/* Path validation settings (RFC 5280 §6.1.1 inputs and keyhold's key
 * strength floor), per trust store and per verify request; the limits are
 * in kh_text.h, which the CLI shares. */
struct kh_validation {
	/* initial-policy-set; none: anyPolicy */
	char policies[KH_POLICIES_MAX][KH_OID_MAX + 1];
	size_t n_policies;
	bool require_explicit_policy; /* initial-explicit-policy */
	bool inhibit_policy_mapping;  /* initial-policy-mapping-inhibit */
	bool inhibit_any_policy;      /* initial-any-policy-inhibit */
	uint32_t min_rsa_bits;        /* RSA and DSA key bits (always set: kh_validation_default) */
	uint32_t min_ec_bits;         /* EC curve bits */
	bool allow_sha1;              /* SHA-1 signatures accepted (MD5 never) */
};
/* The defaults: anyPolicy, no initial constraints, RSA/DSA 2048, EC 256,
 * no SHA-1. */
void kh_validation_default(struct kh_validation *v);

enum kh_enrollment {
	KH_ENROLL_UNSPECIFIED = 0, /* self on create */
	KH_ENROLL_SELF = 1,
	KH_ENROLL_TERMINAL = 2,
	KH_ENROLL_URL = 3,         /* SCEP (RFC 8894) */
	KH_ENROLL_ACME = 4,        /* RFC 8555 */
};
#define KH_ENROLL_MAX KH_ENROLL_ACME

enum kh_cert_format {
	KH_FMT_PEM = 0,
	KH_FMT_DER = 1,
	KH_FMT_PKCS7 = 2,
};
#define KH_FMT_MAX KH_FMT_PKCS7

enum kh_purpose {
	KH_PURPOSE_ANY = 0,
	KH_PURPOSE_SERVER_AUTH = 1,
	KH_PURPOSE_CLIENT_AUTH = 2,
};
#define KH_PURPOSE_MAX KH_PURPOSE_CLIENT_AUTH

const char *kh_enrollment_name(enum kh_enrollment m); /* "self", "terminal"; NULL outside */
enum kh_enrollment kh_enrollment_from_name(const char *s); /* UNSPECIFIED when unknown */
/* Normalises a SHA-256 fingerprint as typed (hex, any case, optional ':'
 * separators) to 64 lower-case hex digits; false when it is not one. */
bool kh_fingerprint_normalize(const char *in, char out[KH_FP_HEX + 1]);

#ifdef __cplusplus
}
#endif

/* The revocation area's limits build on these. */
#include "kh_rev.h"
#endif
