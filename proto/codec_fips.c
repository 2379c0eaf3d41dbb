/* codec_fips.c: RunSelfTest for the client: the (empty) request and the
 * response, the service state and every power-up self-test result. The
 * server builds its answer as a generated message (rpc/h_fips.c). */
#include <stdlib.h>
#include <string.h>

#include "codec_util.h"
#include "codec_fips.h"

#define PB(x) Keyhold__V1__##x
#define S(x) ((char *)(uintptr_t)(x))

enum kh_err proto_fips_enc_run_req(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(RunSelfTestRequest) m = KEYHOLD__V1__RUN_SELF_TEST_REQUEST__INIT;

	(void)b;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_fips_dec_run_resp(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(RunSelfTestResponse) *p = (const void *)m;
	struct kh_selftest_report *rep = &b->selftest;
	size_t i;

	(void)e;
	memset(b, 0, sizeof(*b));
	proto_cstr(rep->state, sizeof(rep->state), p->state);
	rep->results = calloc(p->n_self_tests ? p->n_self_tests : 1, sizeof(*rep->results));
	if (rep->results == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < p->n_self_tests; i++)
		proto_selftest_from(p->self_tests[i], &rep->results[i]);
	rep->n = p->n_self_tests;
	return KH_OK;
}
