/* metrics/metrics_int.h: what metrics_http.c and metrics_probe.c share:
 * the listener and the snapshot the probe fills. Not for other folders. */
#ifndef METRICS_METRICS_INT_H
#define METRICS_METRICS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hsm.h"
#include "pool/pool.h"
#include "revocation/revocation.h"

/* What the probe saw, copied under metrics_http.lock. */
struct metrics_snap {
	bool probed;                  /* a probe has finished */
	bool probe_ok;                /* the token answered C_GenerateRandom */
	char probe_err[200];          /* why not */
	uint64_t probe_mono_us;       /* when the last probe finished */
	uint64_t probe_us;            /* how long it took */
	struct hsm_health token;
	size_t selftests;             /* results of the last run (0: none) */
	size_t selftests_failed;
	char selftest_failed_id[40];  /* the first that failed */
	uint64_t selftest_last_s;     /* epoch seconds */
	struct svc_exp_cert *certs;   /* owned */
	size_t n_certs;
	struct svc_rev_known *rev;    /* owned: what imported CRLs say */
	size_t n_rev;
	bool survey_ok;
	int64_t survey_s;             /* svc_now() of the survey */
};

struct metrics_http {
	struct svc_pool_item item;    /* first: the pool hands it back */
	struct svc *s;
	struct evhttp *http;
	struct event *timer;
	bool queued;                  /* loop thread only */
	uint64_t armed_mono_us;       /* start of the probe in flight (loop only) */
	unsigned port;                /* bound port */
	unsigned probe_interval_s;    /* [metrics] probe_interval, capped for the watchdog */
	uint64_t started_us;          /* when probing started */
	pthread_mutex_t lock;         /* snap; never held across a call */
	struct metrics_snap snap;
};

/* Arms the probe's timer and runs a first probe (metrics_probe.c). */
enum kh_err metrics_probe_start(struct metrics_http *m, struct event_base *base, struct kh_errbuf *e) KH_WUR;
void metrics_probe_stop(struct metrics_http *m);
/* A copy of the snapshot (certs duplicated; freed with metrics_snap_clear). */
void metrics_snap_get(struct metrics_http *m, struct metrics_snap *out);
void metrics_snap_clear(struct metrics_snap *s);

#endif
