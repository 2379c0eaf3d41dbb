/* cluster_job.c: the periodic job with a lease. A libevent timer hands a
 * pass to a worker (the loop never waits on the database or the network);
 * the worker first takes or renews the job's role lease and runs the pass
 * only while this node holds it. The expiry monitor, the revocation
 * scheduler, the SCEP poller and the heartbeat run on it. */
#include <stdlib.h>

#include <event2/event.h>

#include "kh_log.h"
#include "cluster/cluster.h"
#include "pool/pool.h"

struct cluster_job {
	struct svc_pool_item item;      /* first: the pool hands it back */
	struct svc *s;
	struct cluster_job_def d;
	struct event *timer;
	bool queued;                    /* loop thread only */
};

static bool cj_run(struct svc_pool_item *it)
{
	struct cluster_job *j = (struct cluster_job *)(void *)it;

	if (j->d.role == NULL || svc_cluster_lease(j->s, j->d.role))
		j->d.pass(j->d.arg);
	return true; /* cj_done, on the loop, lets the next tick queue a pass */
}

static void cj_done(struct svc_pool_item *it)
{
	((struct cluster_job *)(void *)it)->queued = false;
}

static void cj_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cluster_job *j = arg;

	(void)fd;
	(void)what;
	if (j->queued) {
		log_dbg("%s: the previous pass is still running", j->d.name);
		return;
	}
	if (j->d.due != NULL && !j->d.due(j->d.arg))
		return;
	j->queued = true;
	svc_pool_submit(j->s->pool, &j->item);
}

enum kh_err cluster_job_start(struct svc *s, struct event_base *base, const struct cluster_job_def *d,
			      struct timeval tick, struct cluster_job **out, struct kh_errbuf *e)
{
	struct cluster_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	j->s = s;
	j->d = *d;
	j->item.run = cj_run;
	j->item.done = cj_done;
	j->timer = event_new(base, -1, EV_PERSIST, cj_tick, j);
	if (j->timer == NULL || evtimer_add(j->timer, &tick) != 0) {
		if (j->timer != NULL)
			event_free(j->timer);
		free(j);
		return kh_err_set(e, KH_E_INTERNAL, "cannot arm the %s's timer", d->name);
	}
	/* A first look as soon as the loop runs. */
	event_active(j->timer, EV_TIMEOUT, 0);
	*out = j;
	return KH_OK;
}

void cluster_job_rearm(struct cluster_job *j, struct timeval tick)
{
	if (j == NULL || j->timer == NULL)
		return;
	if (evtimer_add(j->timer, &tick) != 0)
		log_err("%s: cannot re-arm its timer", j->d.name);
}

void cluster_job_free(struct cluster_job *j)
{
	if (j == NULL)
		return;
	if (j->timer != NULL)
		event_free(j->timer);
	free(j);
}
