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

bool kh_url_valid(const char *s)
{
	size_t n, i;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0)
		return true;
	/* RFC 5280 §4.2.1.13 and RFC 6960 appendix A.1: CRLs and OCSP over
	 * plain HTTP (the objects are signed); a host is required. */
	if (n > KH_URL_MAX || strncasecmp(s, "http://", 7) != 0 || n == 7 || s[7] == '/')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

void kh_cert_check_resp_clear(struct kh_cert_check_resp *r)
{
	if (r == NULL)
		return;
	free(r->certs);
	memset(r, 0, sizeof(*r));
}

