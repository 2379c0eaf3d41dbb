/* kh_rev: the revocation area's wire vocabulary: limits and the
 * RevocationStatus enum with its text names. */
#ifndef KH_REV_H
#define KH_REV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kh_text.h"

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


#ifdef __cplusplus
}
#endif
#endif
