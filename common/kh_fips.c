/* kh_fips: the clear function of the FIPS RPC structs. */
#include "kh_fips.h"

#include <stdlib.h>
#include <string.h>

void kh_selftest_report_clear(struct kh_selftest_report *r)
{
	if (r == NULL)
		return;
	free(r->results);
	memset(r, 0, sizeof(*r));
}
