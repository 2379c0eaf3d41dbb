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
#include <stddef.h>
#include <stdint.h>

#include "kh_err.h"

struct event_base;
struct svc;

/* Starts the token probe when [metrics] listen is set or s->watchdog_us
 * is (every probe_interval, at most a quarter of the watchdog interval),
 * and binds the listener when listen is set; before the privilege drop.
 * Nothing when neither. On failure e says why. */
enum kh_err metrics_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
/* After the worker pool has stopped; NULL-safe on s->metrics_http. */
void metrics_stop(struct svc *s);
/* /healthz's verdict (loop thread): true when OPERATIONAL and the token
 * answered a recent probe; otherwise why says what is wrong. Without a
 * probe (neither listener nor watchdog) only the state counts. */
bool metrics_healthy(struct svc *s, char *why, size_t whysz);
/* Microseconds since the last probe finished (since probing started when
 * none has); 0 when there is no probe. For the watchdog. */
uint64_t metrics_probe_age_us(struct svc *s);
/* hsm's operation observer (hsm_set_op_observer); arg: the svc. */
void metrics_token_observer(void *arg, const char *op, unsigned long mech, uint64_t duration_us, bool ok);

#endif
