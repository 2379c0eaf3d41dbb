/* h_fips.c: RunSelfTest, and the self-test results GetStatus reports too
 * (the registry and the runner are fips/'s). */
#include <stdatomic.h>

#include "fips/fips.h"
#include "core/svc.h"
#include "rpc/rpc.h"

Keyhold__V1__SelfTestResult **rpc_selftests(struct rpc_call *c, size_t *n)
{
	struct selftest_result *res = rpc_array(c, SELFTEST_COUNT, sizeof(*res));
	Keyhold__V1__SelfTestResult **v = rpc_array(c, SELFTEST_COUNT, sizeof(*v));
	size_t i, k;

	*n = 0;
	if (res == NULL || v == NULL)
		return NULL;
	k = selftest_results(c->s, res);
	for (i = 0; i < k; i++) {
		Keyhold__V1__SelfTestResult *m = rpc_msg(c, &keyhold__v1__self_test_result__descriptor);

		if (m == NULL)
			return NULL;
		m->id = res[i].id;
		m->type = res[i].type;
		m->description = res[i].description;
		m->source = res[i].source;
		m->passed = res[i].passed;
		m->duration_us = res[i].duration_us;
		m->detail = res[i].detail;
		v[i] = m;
	}
	*n = k;
	return v;
}

enum kh_err svc_h_run_selftest(struct rpc_call *c, struct kh_errbuf *e)
{
	Keyhold__V1__RunSelfTestResponse *m = rpc_msg(c, &keyhold__v1__run_self_test_response__descriptor);
	int r = KH_OK;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(selftest_rerun(c->s, c->who->name, e));
	m->self_tests = rpc_selftests(c, &m->n_self_tests);
	m->state = rpc_str(svc_state_name((enum svc_state)atomic_load(&c->s->state)));
	KH_ENSURE(!c->oom, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	c->resp = &m->base;
out:
	return r;
}
