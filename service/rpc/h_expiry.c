/* h_expiry.c: the expiry RPCs: ListExpiring (`keyhold cert expiring`, from
 * the expiry monitor's survey) and RunMonitor (`keyhold cert monitor`: one
 * pass of the monitor, revocation/expiry.c, on this worker). */
#include <stdlib.h>
#include <string.h>

#include "kh_log.h"
#include "kh_rev.h"
#include "core/svc_clock.h"
#include "revocation/revocation.h"
#include "rpc/rpc.h"
#include "config/config.h"
#include "store/store.h"

#define EXP_DAY 86400

static Keyhold__V1__ExpiringCert *rpc_expiring_cert(struct rpc_call *c, const struct svc_exp_cert *x,
						    const struct store_revstate *rs)
{
	Keyhold__V1__ExpiringCert *m = rpc_msg(c, &keyhold__v1__expiring_cert__descriptor);
	size_t k;

	if (m == NULL)
		return NULL;
	m->cert = rpc_cert_info(c, &x->cert);
	m->held_by = rpc_array(c, x->n_held_by, sizeof(*m->held_by));
	if (m->cert == NULL || m->held_by == NULL)
		return NULL;
	for (k = 0; k < x->n_held_by && k < KH_HELD_BY_MAX; k++)
		m->held_by[k] = rpc_strdup(c, x->held_by[k]);
	m->n_held_by = k;
	m->days_left = x->days_left;
	m->last_notified = x->last_notified;
	m->notifications = x->notifications;
	if (rs != NULL) {
		m->revocation_state = rpc_strdup(c, rs->status);
		m->revocation_detail = rpc_strdup(c, rs->detail);
	}
	return c->oom ? NULL : m;
}

enum kh_err svc_h_list_expiring(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__ListExpiringRequest *q = (const void *)c->req;
	Keyhold__V1__ListExpiringResponse *m = rpc_msg(c, &keyhold__v1__list_expiring_response__descriptor);
	struct svc_exp_cert *v = NULL;
	struct store_revstate *rs = NULL;
	size_t nrs = 0;
	uint32_t within = q->within_days ? q->within_days : c->s->cfg->exp_notify_days;
	int64_t now = svc_now();
	size_t n = 0, i;
	int r = KH_OK;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(svc_expiry_survey(c->s, c->who, now, &v, &n, e));
	KH_TRY(rpc_rev_states(c, &rs, &nrs, e));
	m->certs = rpc_array(c, n, sizeof(*m->certs));
	KH_ENSURE(m->certs != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < n; i++) {
		if (!q->all && v[i].cert.not_after - now > (int64_t)within * EXP_DAY)
			continue;
		m->certs[m->n_certs] = rpc_expiring_cert(c, &v[i], svc_rev_state_find(rs, nrs, v[i].cert.fingerprint));
		KH_ENSURE(m->certs[m->n_certs] != NULL, KH_E_RESOURCE_EXHAUSTED);
		m->n_certs++;
	}
	m->now = now;
	m->within_days = q->all ? 0 : within;
	c->resp = &m->base;
out:
	free(rs);
	free(v);
	return r;
}

/* The monitor's lines, one string each. */
static char **rpc_lines(struct rpc_call *c, char (*v)[KH_MONITOR_LINE_LEN], size_t n)
{
	char **l = rpc_array(c, n, sizeof(*l));
	size_t i;

	for (i = 0; l != NULL && i < n; i++)
		l[i] = rpc_strdup(c, v[i]);
	return c->oom ? NULL : l;
}

enum kh_err svc_h_run_monitor(struct rpc_call *c, struct kh_errbuf *e)
{
	Keyhold__V1__RunMonitorResponse *m = rpc_msg(c, &keyhold__v1__run_monitor_response__descriptor);
	struct svc_exp_report p;
	size_t i;
	int r = KH_OK;

	memset(&p, 0, sizeof(p));
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	log_info("%s runs the expiry monitor", c->who->name);
	KH_TRY(svc_expiry_pass(c->s, &p, e));
	/* SCEP polls and renewals (scep_poll.c), as the poller's timer runs them. */
	svc_scep_pass(c->s, &p);
	m->notified = rpc_array(c, p.n_notified, sizeof(*m->notified));
	KH_ENSURE(m->notified != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < p.n_notified; i++) {
		m->notified[i] = rpc_expiring_cert(c, &p.notified[i], NULL);
		KH_ENSURE(m->notified[i] != NULL, KH_E_RESOURCE_EXHAUSTED);
		m->n_notified++;
	}
	m->renewals = rpc_lines(c, p.renewals, p.n_renewals);
	m->errors = rpc_lines(c, p.errors, p.n_errors);
	KH_ENSURE(m->renewals != NULL && m->errors != NULL, KH_E_RESOURCE_EXHAUSTED);
	m->n_renewals = p.n_renewals;
	m->n_errors = p.n_errors;
	c->resp = &m->base;
out:
	svc_exp_report_clear(&p);
	return r;
}
