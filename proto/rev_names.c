/* rev_names.c: the text names of RevocationStatus (kh_rev.h). */
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



