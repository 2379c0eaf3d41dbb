/* Unit tests for core/svc_metrics.c: cumulative buckets, codes and method
 * slots out of range, token operation slots (claimed once, overflow into
 * "other"), NULL recorders, and counts under concurrent updates. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/svc_metrics.h"

static uint64_t ld(_Atomic uint64_t *p) { return atomic_load(p); }

static void test_histogram(void **state)
{
	struct svc_hist h;
	size_t i;

	(void)state;
	memset(&h, 0, sizeof(h));
	svc_hist_observe(&h, 100);      /* on the first bound: in every bucket */
	svc_hist_observe(&h, 101);      /* just above it */
	svc_hist_observe(&h, 20000000); /* beyond the last bound: +Inf only */
	assert_int_equal(ld(&h.count), 3);
	assert_int_equal(ld(&h.sum_us), 100 + 101 + 20000000);
	assert_int_equal(ld(&h.bucket[0]), 1);
	assert_int_equal(ld(&h.bucket[1]), 2);
	assert_int_equal(ld(&h.bucket[SVC_METRICS_BUCKETS - 1]), 2);
	for (i = 1; i < SVC_METRICS_BUCKETS; i++) {
		assert_true(svc_metrics_bounds_us[i] > svc_metrics_bounds_us[i - 1]);
		assert_true(ld(&h.bucket[i]) >= ld(&h.bucket[i - 1]));
	}
}

static void test_requests(void **state)
{
	struct svc_metrics *m = svc_metrics_new();

	(void)state;
	assert_non_null(m);
	svc_metrics_request(m, 3, KH_OK, 50);
	svc_metrics_request(m, 3, KH_E_NOT_FOUND, 0);
	svc_metrics_request(m, -1, KH_E_INVALID_ARGUMENT, 0);
	svc_metrics_request(m, 100000, KH_E_INTERNAL, 0);   /* beyond the slots: "-" */
	svc_metrics_request(m, 3, (enum kh_err)-99, 0);     /* not a gRPC code: UNKNOWN */
	svc_metrics_request(m, 3, (enum kh_err)5, 0);       /* positive: UNKNOWN */
	assert_int_equal(ld(&m->requests[3][0]), 1);
	assert_int_equal(ld(&m->requests[3][-KH_E_NOT_FOUND]), 1);
	assert_int_equal(ld(&m->requests[3][2]), 2);
	assert_int_equal(ld(&m->requests[SVC_METRICS_NO_METHOD][-KH_E_INVALID_ARGUMENT]), 1);
	assert_int_equal(ld(&m->requests[SVC_METRICS_NO_METHOD][-KH_E_INTERNAL]), 1);
	/* Only timed requests reach the histogram. */
	assert_int_equal(ld(&m->latency[3].count), 1);
	svc_metrics_rate_refused(m, 3);
	assert_int_equal(ld(&m->rate_refused), 1);
	assert_int_equal(ld(&m->requests[3][-KH_E_RESOURCE_EXHAUSTED]), 1);
	svc_metrics_free(m);
	/* NULL: nothing, no crash. */
	svc_metrics_request(NULL, 1, KH_OK, 1);
	svc_metrics_rate_refused(NULL, 1);
	svc_metrics_token_op(NULL, "sign", 1, 1, true);
	svc_metrics_free(NULL);
}

static void test_token_ops(void **state)
{
	struct svc_metrics *m = svc_metrics_new();
	unsigned long mech;
	size_t i, used = 0;

	(void)state;
	assert_non_null(m);
	svc_metrics_token_op(m, "sign", 0x1041, 100, true);
	svc_metrics_token_op(m, "sign", 0x1041, 200, false);
	svc_metrics_token_op(m, "generate", 0x1040, 300, true);
	assert_string_equal(m->ops[0].op, "sign");
	assert_int_equal(m->ops[0].mech, 0x1041);
	assert_int_equal(ld(&m->ops[0].hist.count), 2);
	assert_int_equal(ld(&m->ops[0].errors), 1);
	assert_string_equal(m->ops[1].op, "generate");
	/* More series than slots: the rest is counted under "other". */
	for (mech = 0; mech < 2 * SVC_METRICS_OPS; mech++)
		svc_metrics_token_op(m, "sign", 0x9000 + mech, 10, true);
	for (i = 0; i < SVC_METRICS_OPS; i++)
		used += atomic_load(&m->ops[i].used);
	assert_int_equal(used, SVC_METRICS_OPS);
	assert_string_equal(m->ops[SVC_METRICS_OPS - 1].op, "other");
	assert_true(ld(&m->ops[SVC_METRICS_OPS - 1].hist.count) > SVC_METRICS_OPS);
	svc_metrics_free(m);
}

#define THREADS 4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
	struct svc_metrics *m = arg;
	unsigned i;

	for (i = 0; i < PER_THREAD; i++) {
		svc_metrics_request(m, (int)(i % 3), KH_OK, i % 5000 + 1);
		svc_metrics_token_op(m, i % 2 ? "sign" : "generate", i % 4, 10, true);
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct svc_metrics *m = svc_metrics_new();
	pthread_t t[THREADS];
	uint64_t total = 0, ops = 0;
	size_t i;

	(void)state;
	assert_non_null(m);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, m), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 3; i++) {
		total += ld(&m->requests[i][0]);
		assert_int_equal(ld(&m->latency[i].count), ld(&m->requests[i][0]));
		assert_int_equal(ld(&m->latency[i].bucket[SVC_METRICS_BUCKETS - 1]), ld(&m->latency[i].count));
	}
	assert_int_equal(total, THREADS * PER_THREAD);
	/* (op, mech) pairs: sign with odd mechs, generate with even: 4 slots,
	 * each claimed once however the threads raced. */
	for (i = 0; i < SVC_METRICS_OPS; i++)
		if (atomic_load(&m->ops[i].used)) {
			size_t k;

			for (k = 0; k < i; k++)
				assert_false(m->ops[k].mech == m->ops[i].mech && strcmp(m->ops[k].op, m->ops[i].op) == 0);
			ops += ld(&m->ops[i].hist.count);
		}
	assert_int_equal(ops, THREADS * PER_THREAD);
	svc_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_token_ops),
		cmocka_unit_test(test_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
