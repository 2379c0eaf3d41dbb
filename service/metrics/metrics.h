/* metrics/metrics.h: keyholdd's optional HTTP listener ([metrics] listen):
 * /metrics in the Prometheus text exposition format 0.0.4 and /healthz,
 * served by libevent's evhttp on keyholdd's own event loop
 * (metrics_http.c), from counters (core/svc_metrics.h) and from a snapshot
 * a worker refreshes every [metrics] probe_interval: the token probe, the
 * session pool, the self-tests, the certificates held (metrics_probe.c).
 * Nothing here calls the token on the loop. docs/OPERATIONS.md. */
#ifndef METRICS_METRICS_H
#define METRICS_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "kh_err.h"

struct event_base;
struct svc;

/* Binds [metrics] listen (nothing when it is not set) and arms the probe;
 * before the privilege drop. On failure e says why. */
enum kh_err metrics_http_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
/* After the worker pool has stopped; NULL-safe on s->metrics_http. */
void metrics_http_stop(struct svc *s);
/* hsm's operation observer (hsm_set_op_observer); arg: the svc. */
void metrics_token_observer(void *arg, const char *op, unsigned long mech, uint64_t duration_us, bool ok);

#endif
