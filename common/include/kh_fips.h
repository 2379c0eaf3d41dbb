/* kh_fips: the validated structs of the FIPS RPCs (RunSelfTest). Included
 * from kh_types.h; struct kh_selftest_result lives there (GetStatus uses it
 * too). */
#ifndef KH_FIPS_H
#define KH_FIPS_H

#include "kh_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RunSelfTest's answer: every power-up self-test with its result. */
struct kh_selftest_report {
	char state[24];                      /* the service state afterwards */
	struct kh_selftest_result *results;  /* owned */
	size_t n;
};

void kh_selftest_report_clear(struct kh_selftest_report *r);

#ifdef __cplusplus
}
#endif
#endif
