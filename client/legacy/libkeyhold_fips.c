/* libkeyhold_fips.c: the client side of the FIPS RPCs (RunSelfTest). */
#include <string.h>

#include "keyhold.h"
#include "kh_client_int.h"
#include "proto.h"

enum kh_err kh_run_selftest(kh_client *c, struct kh_selftest_report *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kh_call(c, PROTO_M_RUN_SELF_TEST, &q, &a, e);
	if (r == KH_OK)
		*out = a.selftest;
	return r;
}
