/* kh_rev: the validated structs of the revocation, expiry-monitoring and
 * renewal RPCs (CheckCertificate, Set{Trustpoint,Truststore}Policy,
 * ListExpiring, RunMonitor), their clear functions and status names.
 * Included at the end of kh_pki.h (its structs embed kh_cert_info). */
#ifndef KH_REV_H
#define KH_REV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kh_err.h"
#include "kh_pki.h"
#include "kh_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An http:// URL (CRL distribution point, OCSP responder). */
#define KH_URL_MAX KH_PKI_URL_MAX
#define KH_REV_DETAIL_MAX 512
#define KH_REV_CHAIN_MAX 16      /* certificates in one checked chain */
#define KH_HELD_BY_MAX 8         /* places one certificate is reported in */
#define KH_HELD_BY_LEN 80
#define KH_MONITOR_LINES_MAX 64  /* renewal lines / errors in one RunMonitor answer */
#define KH_MONITOR_LINE_LEN 256
#define KH_EXPIRING_MAX 4096     /* certificates in one ListExpiring answer */

/* The wire enum RevocationStatus. */
enum kh_rev_status {
	KH_REV_NOT_CHECKED = 0,
	KH_REV_GOOD = 1,
	KH_REV_REVOKED = 2,
	KH_REV_UNKNOWN = 3,
};
#define KH_REV_STATUS_MAX KH_REV_UNKNOWN

/* "not-checked", "good", "revoked", "unknown". */
const char *kh_rev_status_name(enum kh_rev_status s);

/* ---- CheckCertificate ---- */

struct kh_cert_check_req {
	char store[KH_NAME_MAX + 1];
	struct kh_bytes cert;              /* owned */
	struct kh_bytes untrusted;         /* owned; len 0: none */
};

struct kh_cert_rev {
	struct kh_cert_info cert;
	enum kh_rev_status status;
	char reason[40];                   /* revoked: "keyCompromise", ... */
	int64_t revoked_at;
	char method[8];                    /* "crl", "ocsp", "" */
	char source[KH_URL_MAX + 16];
	char detail[KH_REV_DETAIL_MAX];
};

struct kh_cert_check_resp {
	enum kh_rev_status status;
	char reason[40];
	char policy[KH_REVOCATION_MAX + 1];
	bool soft_fail;
	struct kh_cert_rev *certs;         /* owned */
	size_t n_certs;
	char detail[KH_REV_DETAIL_MAX];
};

/* ---- policies ---- */

struct kh_tp_policy_req {
	char name[KH_NAME_MAX + 1];
	bool set_revocation;
	char revocation[KH_REVOCATION_MAX + 1];
	bool set_ocsp_url;
	char ocsp_url[KH_URL_MAX + 1];
	bool set_renew;
	uint32_t renew_at;                 /* 0: off; else 1..99 */
	bool renew_regenerate;
};

struct kh_ts_policy_req {
	char store[KH_NAME_MAX + 1];
	bool set_revocation;
	char revocation[KH_REVOCATION_MAX + 1];
	bool set_ocsp_url;
	char ocsp_url[KH_URL_MAX + 1];
};

struct kh_ts_policy {
	char store[KH_NAME_MAX + 1];
	char revocation[KH_REVOCATION_MAX + 1];
	char ocsp_url[KH_URL_MAX + 1];
};

/* ---- expiry ---- */

struct kh_expiring_req {
	uint32_t within_days;              /* 0: the configured notify_days */
	bool all;
};

struct kh_expiring_cert {
	struct kh_cert_info cert;
	char held_by[KH_HELD_BY_MAX][KH_HELD_BY_LEN];
	size_t n_held_by;
	int64_t days_left;
	int64_t last_notified;
	uint32_t notifications;
};

struct kh_expiring_list {
	struct kh_expiring_cert *certs;    /* owned; soonest first */
	size_t n;
	int64_t now;
	uint32_t within_days;
};

struct kh_monitor_resp {
	struct kh_expiring_cert *notified; /* owned */
	size_t n_notified;
	char (*renewals)[KH_MONITOR_LINE_LEN]; /* owned */
	size_t n_renewals;
	char (*errors)[KH_MONITOR_LINE_LEN];   /* owned */
	size_t n_errors;
};

/* True for "" (clear) and for an http:// URL of printable ASCII that fits;
 * keyhold fetches nothing else (https, ldap and file are refused). */
bool kh_url_valid(const char *s);

void kh_cert_check_req_clear(struct kh_cert_check_req *r);
void kh_cert_check_resp_clear(struct kh_cert_check_resp *r);
void kh_expiring_list_clear(struct kh_expiring_list *l);
void kh_monitor_resp_clear(struct kh_monitor_resp *r);

#ifdef __cplusplus
}
#endif
#endif
