/* kh_pki: the validated structs of the PKI RPCs (CSRs, trustpoints, trust
 * stores, CRLs) that proto/ decodes into and encodes from, their clear
 * functions, and the RFC 3339 time parser the CLI and service share. */
#ifndef KH_PKI_H
#define KH_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
#define KH_PKI_FILES_MAX 64     /* files in one TruststoreAdd / CRLs in one verify */
#define KH_PKI_WARN_MAX 4
#define KH_PKI_WARN_LEN 256
#define KH_PKI_URL_MAX 512      /* = KH_URL_MAX of kh_rev.h */
/* Largest certificate/CRL payload a request carries: the frame cap is
 * 1 MiB and the envelope needs a little room. */
#define KH_PKI_BLOB_MAX ((1u << 20) - 8192)

enum kh_enrollment {
	KH_ENROLL_UNSPECIFIED = 0, /* self on create */
	KH_ENROLL_SELF = 1,
	KH_ENROLL_TERMINAL = 2,
};
#define KH_ENROLL_MAX KH_ENROLL_TERMINAL

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

struct kh_cert_info {
	char subject[KH_DN_MAX + 1];   /* RFC 2253 */
	char issuer[KH_DN_MAX + 1];
	char serial[KH_SERIAL_HEX + 1];
	int64_t not_before, not_after; /* seconds since the epoch */
	char fingerprint[KH_FP_HEX + 1];
	bool ca;                       /* basicConstraints CA:TRUE */
	bool self_signed;
};

struct kh_cert_list {
	struct kh_cert_info *certs;
	size_t n;
};

struct kh_crl_info {
	char issuer[KH_DN_MAX + 1];
	int64_t this_update, next_update; /* next_update 0: absent */
	uint32_t revoked;
	char number[KH_SERIAL_HEX + 1];   /* crlNumber hex; "" when absent */
	char fingerprint[KH_FP_HEX + 1];
};

/* ---- requests ---- */

struct kh_csr_req {
	char key[KH_NAME_MAX + 1];
	char subject[KH_DN_MAX + 1];
	char san[KH_SAN_MAX + 1];
	char eku[KH_EKU_MAX + 1];
	enum kh_digest digest;
	char challenge[KH_CHALLENGE_MAX + 1];
};

struct kh_tp_create_req {
	char name[KH_NAME_MAX + 1];
	char key[KH_NAME_MAX + 1];                 /* existing key, or "" with generate */
	enum kh_key_type generate;         /* UNSPECIFIED: use key */
	char subject[KH_DN_MAX + 1];
	char fqdn[KH_FQDN_MAX + 1];
	char san[KH_SAN_MAX + 1];
	char eku[KH_EKU_MAX + 1];
	enum kh_enrollment enrollment;
	char revocation[KH_REVOCATION_MAX + 1];
	enum kh_digest digest;
	uint32_t validity_days;           /* 0: 365 */
	/* Renewal and OCSP (kh_rev.h, docs/REVOCATION.md). */
	uint32_t renew_at;                /* 0: never; 1..99 percent of the lifetime */
	bool renew_regenerate;
	char ocsp_url[KH_PKI_URL_MAX + 1]; /* "" or http:// */
};

struct kh_tp_delete_req {
	char name[KH_NAME_MAX + 1];
	bool keep_key;
};

struct kh_tp_auth_req {
	char name[KH_NAME_MAX + 1];
	struct kh_bytes ca;               /* owned */
	bool confirm;
	char fingerprint[KH_FP_IN_MAX + 1];
};

struct kh_tp_import_req {
	char name[KH_NAME_MAX + 1];
	struct kh_bytes data;             /* owned */
};

struct kh_tp_export_req {
	char name[KH_NAME_MAX + 1];
	bool chain;
	enum kh_cert_format format;
};

struct kh_tp_regen_req {
	char name[KH_NAME_MAX + 1];
	enum kh_key_type type;             /* UNSPECIFIED: as the current key */
};

struct kh_ts_add_req {
	char store[KH_NAME_MAX + 1];
	struct kh_bytes *files;           /* owned */
	size_t n_files;
};

struct kh_ts_name_req {
	char store[KH_NAME_MAX + 1];               /* "" allowed where the RPC says so */
};

struct kh_ts_remove_req {
	char store[KH_NAME_MAX + 1];
	char fingerprint[KH_FP_IN_MAX + 1];
};

struct kh_ts_verify_req {
	char store[KH_NAME_MAX + 1];
	struct kh_bytes cert;              /* owned */
	struct kh_bytes untrusted;         /* owned; len 0: none */
	struct kh_bytes *crls;             /* owned */
	size_t n_crls;
	int64_t at;                       /* 0: now */
	char host[KH_HOST_MAX + 1];
	char ip[KH_IP_MAX + 1];
	enum kh_purpose purpose;
};

struct kh_crl_import_req {
	char store[KH_NAME_MAX + 1];
	struct kh_bytes crl;               /* owned */
};

/* ---- responses ---- */

struct kh_trustpoint {
	char name[KH_NAME_MAX + 1];
	char key[KH_NAME_MAX + 1];
	enum kh_key_type key_type;
	bool key_generated;
	char subject[KH_DN_MAX + 1];
	char fqdn[KH_FQDN_MAX + 1];
	char san[KH_SAN_MAX + 1];
	char eku[KH_EKU_MAX + 1];
	enum kh_enrollment enrollment;
	char revocation[KH_REVOCATION_MAX + 1];
	enum kh_digest digest;
	uint32_t validity_days;
	struct kh_cert_list ca;
	bool has_cert;
	struct kh_cert_info cert;
	struct kh_cert_list chain;
	char *pending_csr;                /* owned PEM; NULL: none */
	char pending_csr_key[KH_NAME_MAX + 1];
	int64_t pending_csr_created;
	char next_key[KH_NAME_MAX + 1];
	int64_t created, updated;
	/* Renewal and OCSP (docs/REVOCATION.md). */
	char ocsp_url[KH_PKI_URL_MAX + 1];
	uint32_t renew_at;
	bool renew_regenerate;
	char renewal[16];                 /* "", "due", "pending" */
	int64_t renew_after;
};

struct kh_trustpoint_list {
	struct kh_trustpoint *tps;
	size_t n;
};

struct kh_tp_delete_resp {
	char deleted_keys[2][KH_NAME_MAX + 1];
	size_t n_deleted;
};

/* EnrollTrustpoint and RegenerateTrustpoint. */
struct kh_enroll_resp {
	enum kh_enrollment enrollment;
	char key[KH_NAME_MAX + 1];
	char *csr_pem;                    /* owned; terminal */
	bool has_cert;                    /* self */
	struct kh_cert_info cert;
	char retired_key[KH_NAME_MAX + 1];
};

struct kh_import_resp {
	struct kh_cert_info cert;
	uint32_t chain_len;
	char warnings[KH_PKI_WARN_MAX][KH_PKI_WARN_LEN];
	size_t n_warnings;
	char key[KH_NAME_MAX + 1];
	char retired_key[KH_NAME_MAX + 1];
};

struct kh_ts_add_resp {
	struct kh_cert_list added;
	uint32_t already_present;
	char warnings[KH_PKI_WARN_MAX][KH_PKI_WARN_LEN];
	size_t n_warnings;
};

struct kh_truststore {
	char name[KH_NAME_MAX + 1];
	uint32_t n_certs;
	struct kh_cert_list certs;
	struct kh_crl_info *crls;
	size_t n_crls;
	char revocation[KH_REVOCATION_MAX + 1]; /* the store's policy */
	char ocsp_url[KH_PKI_URL_MAX + 1];
};

struct kh_truststore_list {
	struct kh_truststore *stores;
	size_t n;
};

struct kh_ts_remove_resp {
	struct kh_cert_info removed;
	bool store_deleted;
};

struct kh_ts_verify_resp {
	bool valid;
	int32_t error;
	int32_t error_depth;
	char reason[256];
	struct kh_cert_list chain;
	/* The store's revocation policy applied (enum kh_rev_status). */
	uint32_t revocation_status;
	bool revocation_soft_fail;
	char revocation_detail[512];
};

/* ---- names and helpers ---- */

const char *kh_enrollment_name(enum kh_enrollment m); /* "self", "terminal"; NULL outside */
enum kh_enrollment kh_enrollment_from_name(const char *s); /* UNSPECIFIED when unknown */
const char *kh_cert_format_name(enum kh_cert_format f);
bool kh_cert_format_from_name(const char *s, enum kh_cert_format *out);
const char *kh_purpose_name(enum kh_purpose p);       /* "any", "serverAuth", "clientAuth" */
bool kh_purpose_from_name(const char *s, enum kh_purpose *out);

/* Normalises a SHA-256 fingerprint as typed (hex, any case, optional ':'
 * separators) to 64 lower-case hex digits; false when it is not one. */
bool kh_fingerprint_normalize(const char *in, char out[KH_FP_HEX + 1]);

/* Parses an RFC 3339 date-time ("2030-01-02T03:04:05Z", "...+02:00",
 * fractional seconds ignored) to seconds since the epoch; 0 on success. */
int kh_time_parse_rfc3339(const char *s, int64_t *out) KH_WUR;
/* Formats t as "2030-01-02T03:04:05Z" (UTC). */
void kh_time_format_rfc3339(int64_t t, char *out, size_t outsz);

void kh_cert_list_clear(struct kh_cert_list *l);
void kh_trustpoint_clear(struct kh_trustpoint *t);
void kh_trustpoint_list_clear(struct kh_trustpoint_list *l);
void kh_enroll_resp_clear(struct kh_enroll_resp *r);
void kh_ts_add_resp_clear(struct kh_ts_add_resp *r);
void kh_truststore_list_clear(struct kh_truststore_list *l);
void kh_ts_verify_resp_clear(struct kh_ts_verify_resp *r);
void kh_tp_auth_req_clear(struct kh_tp_auth_req *r);
void kh_tp_import_req_clear(struct kh_tp_import_req *r);
void kh_ts_add_req_clear(struct kh_ts_add_req *r);
void kh_ts_verify_req_clear(struct kh_ts_verify_req *r);
void kh_crl_import_req_clear(struct kh_crl_import_req *r);

#ifdef __cplusplus
}
#endif

/* Revocation, expiry and renewal structs build on these (kh_types.h ->
 * kh_pki.h -> kh_rev.h). */
#include "kh_rev.h"
#endif
