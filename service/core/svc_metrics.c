/* svc_metrics.c: keyholdd's lock-free counters and histograms (see
 * svc_metrics.h); rendered by metrics/metrics_http.c. */
#include <stdlib.h>
#include <string.h>

#include "core/svc_metrics.h"
#include "kh_util.h"

/* 100 us to 10 s: a SoftHSM2 ECDSA signature takes ~100 us, an RSA-4096
 * key generation on a TPM several seconds. */
const uint64_t svc_metrics_bounds_us[SVC_METRICS_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 2500000, 10000000,
};

struct svc_metrics *svc_metrics_new(void)
{
	struct svc_metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	pthread_mutex_init(&m->ops_lock, NULL);
	return m;
}

void svc_metrics_free(struct svc_metrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->ops_lock);
	free(m);
}

void svc_hist_observe(struct svc_hist *h, uint64_t us)
{
	size_t i;

	for (i = 0; i < SVC_METRICS_BUCKETS; i++)
		if (us <= svc_metrics_bounds_us[i])
			atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

static size_t svc_metrics_slot(int method)
{
	return method < 0 || method >= SVC_METRICS_NO_METHOD ? SVC_METRICS_NO_METHOD : (size_t)method;
}

static size_t svc_metrics_code(enum kh_err code)
{
	int c = -(int)code;

	return c < 0 || c >= SVC_METRICS_CODES ? 2 /* UNKNOWN */ : (size_t)c;
}

void svc_metrics_request(struct svc_metrics *m, int method, enum kh_err code, uint64_t duration_us)
{
	size_t i;

	if (m == NULL)
		return;
	i = svc_metrics_slot(method);
	atomic_fetch_add_explicit(&m->requests[i][svc_metrics_code(code)], 1, memory_order_relaxed);
	if (duration_us > 0)
		svc_hist_observe(&m->latency[i], duration_us);
}

void svc_metrics_rate_refused(struct svc_metrics *m, int method)
{
	if (m == NULL)
		return;
	atomic_fetch_add_explicit(&m->rate_refused, 1, memory_order_relaxed);
	svc_metrics_request(m, method, KH_E_RESOURCE_EXHAUSTED, 0);
}

/* The slot of (op, mech): found without the lock among the claimed ones,
 * claimed under it when new; the last slot takes what does not fit. */
static struct svc_metrics_op *svc_metrics_op_slot(struct svc_metrics *m, const char *op, unsigned long mech)
{
	struct svc_metrics_op *o = NULL;
	size_t i;

	for (i = 0; i < SVC_METRICS_OPS - 1; i++) {
		o = &m->ops[i];
		if (!atomic_load_explicit(&o->used, memory_order_acquire))
			break;
		if (o->mech == mech && strcmp(o->op, op) == 0)
			return o;
	}
	pthread_mutex_lock(&m->ops_lock);
	for (i = 0; i < SVC_METRICS_OPS - 1; i++) {
		o = &m->ops[i];
		if (!atomic_load_explicit(&o->used, memory_order_acquire)) {
			kh_strlcpy(o->op, op, sizeof(o->op));
			o->mech = mech;
			atomic_store_explicit(&o->used, true, memory_order_release);
			break;
		}
		if (o->mech == mech && strcmp(o->op, op) == 0)
			break;
	}
	if (i == SVC_METRICS_OPS - 1) {
		o = &m->ops[i];
		if (!atomic_load_explicit(&o->used, memory_order_acquire)) {
			kh_strlcpy(o->op, "other", sizeof(o->op));
			o->mech = 0;
			atomic_store_explicit(&o->used, true, memory_order_release);
		}
	}
	pthread_mutex_unlock(&m->ops_lock);
	return o;
}

void svc_metrics_token_op(struct svc_metrics *m, const char *op, unsigned long mech, uint64_t duration_us, bool ok)
{
	struct svc_metrics_op *o;

	if (m == NULL)
		return;
	o = svc_metrics_op_slot(m, op, mech);
	svc_hist_observe(&o->hist, duration_us);
	if (!ok)
		atomic_fetch_add_explicit(&o->errors, 1, memory_order_relaxed);
}
