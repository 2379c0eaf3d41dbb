/* metrics_probe.c: the snapshot behind /metrics and /healthz. Every
 * [metrics] probe_interval a timer on the loop hands one job to a worker:
 * it asks the token for one random byte (C_GenerateRandom: the cheapest
 * call that needs a live token and a session; it also re-attaches a token
 * that went away), reads the session pool, the self-test results, the
 * and surveys the certificates held (revocation/expiry.c) and what the
 * imported CRLs say about them (revocation/rev_known.c),
 * then swaps the result in under a lock held only for the copy. A token
 * that hangs holds up the job, never the loop: /healthz sees the probe's
 * age grow instead. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "core/svc.h"
#include "core/svc_clock.h"
#include "fips/fips.h"
#include "kh_log.h"
#include "kh_util.h"
#include "metrics/metrics_int.h"

void metrics_snap_clear(struct metrics_snap *s)
{
	free(s->certs);
	free(s->rev);
	memset(s, 0, sizeof(*s));
}

void metrics_snap_get(struct metrics_http *m, struct metrics_snap *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->snap;
	out->certs = NULL;
	out->n_certs = 0;
	out->rev = NULL;
	out->n_rev = 0;
	if (m->snap.n_certs > 0) {
		out->certs = malloc(m->snap.n_certs * sizeof(*out->certs));
		if (out->certs != NULL) {
			memcpy(out->certs, m->snap.certs, m->snap.n_certs * sizeof(*out->certs));
			out->n_certs = m->snap.n_certs;
		}
	}
	if (m->snap.n_rev > 0) {
		out->rev = malloc(m->snap.n_rev * sizeof(*out->rev));
		if (out->rev != NULL) {
			memcpy(out->rev, m->snap.rev, m->snap.n_rev * sizeof(*out->rev));
			out->n_rev = m->snap.n_rev;
		}
	}
	pthread_mutex_unlock(&m->lock);
}

/* Worker thread. */
static bool metrics_probe_run(struct svc_pool_item *it)
{
	struct metrics_http *m = (struct metrics_http *)(void *)it;
	struct svc *s = m->s;
	struct metrics_snap n, old;
	struct selftest_result res[SELFTEST_COUNT];
	struct kh_errbuf e = { 0 };
	uint8_t byte;
	uint64_t t0;
	size_t i;
	unsigned freeze = svc_test_freeze_take("KEYHOLD_TEST_FREEZE_PROBE");

	/* Test builds: a token call that hangs, as a wedged token would. */
	if (freeze > 0)
		sleep(freeze);
	t0 = kh_now_mono_us();
	memset(&n, 0, sizeof(n));
	n.probed = true;
	n.probe_ok = hsm_random(s->hsm, &byte, 1, &e) == KH_OK;
	n.probe_us = kh_now_mono_us() - t0;
	if (!n.probe_ok)
		kh_strlcpy(n.probe_err, e.msg, sizeof(n.probe_err));
	hsm_health(s->hsm, &n.token);
	n.selftests = selftest_results(s, res);
	for (i = 0; i < n.selftests; i++)
		if (!res[i].passed && n.selftests_failed++ == 0)
			kh_strlcpy(n.selftest_failed_id, res[i].id, sizeof(n.selftest_failed_id));
	n.selftest_last_s = selftest_last_run_s(s);
	n.survey_s = svc_now();
	kh_err_clear(&e);
	if (s->pki != NULL && svc_expiry_survey(s, NULL, n.survey_s, &n.certs, &n.n_certs, &e) == KH_OK &&
	    svc_revocation_known(s, n.survey_s, &n.rev, &n.n_rev, &e) == KH_OK)
		n.survey_ok = true;
	else if (s->pki != NULL)
		log_warn("metrics: certificate survey failed: %s", e.msg);
	n.probe_mono_us = kh_now_mono_us();
	pthread_mutex_lock(&m->lock);
	old = m->snap;
	if (!n.survey_ok) {
		/* Keep the last good survey rather than report no certificates. */
		free(n.certs);
		free(n.rev);
		n.certs = old.certs;
		n.n_certs = old.n_certs;
		n.rev = old.rev;
		n.n_rev = old.n_rev;
		n.survey_s = old.survey_s;
		old.certs = NULL;
		old.rev = NULL;
	}
	m->snap = n;
	pthread_mutex_unlock(&m->lock);
	free(old.certs);
	free(old.rev);
	if (!n.probe_ok)
		log_dbg("metrics: token probe failed: %s", n.probe_err);
	return true;
}

/* Loop thread. */
static void metrics_probe_done(struct svc_pool_item *it)
{
	((struct metrics_http *)(void *)it)->queued = false;
}

static void metrics_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct metrics_http *m = arg;

	(void)fd;
	(void)what;
	if (m->queued)
		return; /* the last probe has not come back: /healthz sees its age */
	m->queued = true;
	m->armed_mono_us = kh_now_mono_us();
	svc_pool_submit(m->s->pool, &m->item);
}

enum kh_err metrics_probe_start(struct metrics_http *m, struct event_base *base, struct kh_errbuf *e)
{
	struct timeval tv = { (time_t)m->probe_interval_s, 0 };

	m->item.run = metrics_probe_run;
	m->item.done = metrics_probe_done;
	m->timer = event_new(base, -1, EV_PERSIST, metrics_probe_cb, m);
	if (m->timer == NULL || evtimer_add(m->timer, &tv) != 0)
		return kh_err_set(e, KH_E_INTERNAL, "cannot arm the metrics probe's timer");
	m->started_us = kh_now_mono_us();
	/* A first probe as soon as the loop runs. */
	event_active(m->timer, EV_TIMEOUT, 0);
	return KH_OK;
}

void metrics_probe_stop(struct metrics_http *m)
{
	if (m->timer != NULL)
		event_free(m->timer);
	m->timer = NULL;
}
