/* kh_rev.c: names and URL validation for the revocation and expiry
 * structs of kh_rev.h, and their clear functions. */
#include "kh_rev.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *kh_rev_status_name(enum kh_rev_status s)
{
	switch (s) {
	case KH_REV_NOT_CHECKED: return "not-checked";
	case KH_REV_GOOD: return "good";
	case KH_REV_REVOKED: return "revoked";
	case KH_REV_UNKNOWN: return "unknown";
	}
	return "unknown";
}


void kh_cert_check_resp_clear(struct kh_cert_check_resp *r)
{
	if (r == NULL)
		return;
	free(r->certs);
	memset(r, 0, sizeof(*r));
}

