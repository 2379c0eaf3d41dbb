/* core/svc_metrics.h: the counters and latency histograms keyholdd keeps
 * for /metrics (svc_metrics.c): plain atomics any thread updates without a
 * lock, read by metrics/ when it renders the exposition. Everything that
 * needs the token or a lock held across a call is gathered elsewhere
 * (metrics/metrics_state.c) on a worker. */
#ifndef CORE_SVC_METRICS_H
#define CORE_SVC_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kh_err.h"

/* Method slots: a method's index in the service descriptor, and one more
 * for requests refused before their method was known ("-"). */
#define SVC_METRICS_METHODS 96
#define SVC_METRICS_NO_METHOD (SVC_METRICS_METHODS - 1)
/* gRPC status codes 0..16 (enum kh_err is their negation). */
#define SVC_METRICS_CODES 17
/* Latency buckets' upper bounds in microseconds (the last bucket, +Inf,
 * is the count). */
#define SVC_METRICS_BUCKETS 14
/* Token operation series: (op, mechanism) pairs; overflow goes to the
 * last slot, "other". */
#define SVC_METRICS_OPS 32

extern const uint64_t svc_metrics_bounds_us[SVC_METRICS_BUCKETS];

/* A cumulative histogram: bucket[i] counts observations <= bound i. */
struct svc_hist {
	_Atomic uint64_t bucket[SVC_METRICS_BUCKETS];
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

struct svc_metrics_op {
	_Atomic bool used;            /* op and mech written before it is set */
	char op[16];                  /* "sign", "generate", "random", "other" */
	unsigned long mech;           /* CKM_* value */
	struct svc_hist hist;
	_Atomic uint64_t errors;
};

struct svc_metrics {
	_Atomic uint64_t requests[SVC_METRICS_METHODS][SVC_METRICS_CODES];
	struct svc_hist latency[SVC_METRICS_METHODS];
	pthread_mutex_t ops_lock;     /* claiming an ops slot (rare) */
	struct svc_metrics_op ops[SVC_METRICS_OPS];
	_Atomic uint64_t rate_refused;
};

/* NULL when out of memory. */
struct svc_metrics *svc_metrics_new(void);
void svc_metrics_free(struct svc_metrics *m);

/* Every recorder accepts m == NULL (unit tests, the fuzzer). */

/* One answered request: method is the method's index (negative or beyond
 * the slots: "-"), code its result, duration_us 0 when it was not timed
 * (answered by the loop before dispatch). */
void svc_metrics_request(struct svc_metrics *m, int method, enum kh_err code, uint64_t duration_us);
/* A request refused for the principal's rate (answered by the loop). */
void svc_metrics_rate_refused(struct svc_metrics *m, int method);
/* A token operation (hsm's observer): op name, CKM_* mechanism. */
void svc_metrics_token_op(struct svc_metrics *m, const char *op, unsigned long mech, uint64_t duration_us, bool ok);

void svc_hist_observe(struct svc_hist *h, uint64_t us);

#endif
