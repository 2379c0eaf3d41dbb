/* codec_fips.c: protobuf <-> validated structs for RunSelfTest. The
 * request is empty; the response carries the service state and every
 * power-up self-test result. */
#include <stdlib.h>
#include <string.h>

#include "codec_util.h"
#include "codec_fips.h"
#include "kh_util.h"

#define PB(x) Keyhold__V1__##x
#define S(x) ((char *)(uintptr_t)(x))

enum kh_err proto_fips_enc_run_req(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(RunSelfTestRequest) m = KEYHOLD__V1__RUN_SELF_TEST_REQUEST__INIT;

	(void)b;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_fips_enc_run_resp(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	const struct kh_selftest_report *rep = &b->selftest;
	PB(RunSelfTestResponse) m = KEYHOLD__V1__RUN_SELF_TEST_RESPONSE__INIT;
	PB(SelfTestResult) *st = NULL, **stp = NULL;
	size_t i;
	int r;

	st = calloc(rep->n ? rep->n : 1, sizeof(*st));
	stp = calloc(rep->n ? rep->n : 1, sizeof(*stp));
	if (st == NULL || stp == NULL) {
		r = KH_E_RESOURCE_EXHAUSTED;
		goto out;
	}
	for (i = 0; i < rep->n; i++) {
		const struct kh_selftest_result *x = &rep->results[i];

		keyhold__v1__self_test_result__init(&st[i]);
		st[i].id = S(x->id);
		st[i].type = S(x->type);
		st[i].description = S(x->description);
		st[i].source = S(x->source);
		st[i].passed = x->passed;
		st[i].duration_us = x->duration_us;
		st[i].detail = S(x->detail);
		stp[i] = &st[i];
	}
	m.state = S(rep->state);
	m.n_self_tests = rep->n;
	m.self_tests = stp;
	r = proto_pack_msg(&m.base, out, len);
out:
	free(st);
	free(stp);
	return r;
}

static void proto_fips_cstr(char *dst, size_t dstsz, const char *src)
{
	kh_strlcpy(dst, src != NULL ? src : "", dstsz);
}

enum kh_err proto_fips_dec_run_resp(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(RunSelfTestResponse) *p = (const void *)m;
	struct kh_selftest_report *rep = &b->selftest;
	size_t i;

	(void)e;
	memset(b, 0, sizeof(*b));
	proto_fips_cstr(rep->state, sizeof(rep->state), p->state);
	rep->results = calloc(p->n_self_tests ? p->n_self_tests : 1, sizeof(*rep->results));
	if (rep->results == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < p->n_self_tests; i++) {
		const PB(SelfTestResult) *x = p->self_tests[i];
		struct kh_selftest_result *y = &rep->results[i];

		if (x == NULL)
			continue;
		proto_fips_cstr(y->id, sizeof(y->id), x->id);
		proto_fips_cstr(y->type, sizeof(y->type), x->type);
		proto_fips_cstr(y->description, sizeof(y->description), x->description);
		proto_fips_cstr(y->source, sizeof(y->source), x->source);
		y->passed = x->passed;
		y->duration_us = x->duration_us;
		proto_fips_cstr(y->detail, sizeof(y->detail), x->detail);
	}
	rep->n = p->n_self_tests;
	return KH_OK;
}
