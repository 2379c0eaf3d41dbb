/* scep_poll.c: keyholdd's SCEP work in the background (RFC 8894): every
 * request a CA answered PENDING is polled (CertPoll) when its back-off
 * says so (state in the database: a restart resumes it), and every url
 * trustpoint whose certificate crossed renew_at is renewed by RenewalReq
 * (with `renew-regenerate`, a new key staged first and rolled over when
 * the certificate comes). A libevent timer hands a pass to a worker at
 * start and every [scep] poll_interval; `keyhold cert monitor` runs one
 * after the expiry monitor's (h_expiry.c). The expiry monitor leaves url
 * trustpoints to this pass. A failed renewal is tried again after
 * poll_interval, the wait doubling up to poll_max (kept in memory: a
 * restart tries at once). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/err.h>

#include "kh_log.h"
#include "kh_util.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "core/svc_clock.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "pool/pool.h"
#include "revocation/revocation.h"
#include "rpc/rpc.h"

static void sp_line(char (**v)[KH_MONITOR_LINE_LEN], size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void sp_line(char (**v)[KH_MONITOR_LINE_LEN], size_t *n, const char *fmt, ...)
{
	char (*nv)[KH_MONITOR_LINE_LEN];
	va_list ap;

	if (*n >= KH_MONITOR_LINES_MAX)
		return;
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (nv == NULL)
		return;
	*v = nv;
	va_start(ap, fmt);
	vsnprintf(nv[*n], KH_MONITOR_LINE_LEN, fmt, ap);
	va_end(ap);
	(*n)++;
}

/* One exchange off any RPC: the import answers into a call of its own. */
static int sp_exchange(struct svc *s, const char *name, bool *issued, struct kh_errbuf *e)
{
	struct rpc_call bc;
	int r;

	memset(&bc, 0, sizeof(bc));
	bc.s = s;
	r = svc_scep_exchange(&bc, name, issued, e);
	rpc_call_release(&bc);
	return r;
}

/* A poll that got no answer (network, a broken reply): the back-off
 * advances as for PENDING, so a dead server is not asked every pass. */
static void sp_backoff(struct svc *s, const char *name, int64_t now)
{
	struct store_scep_pending pd;
	struct kh_errbuf e = { 0 };
	int64_t max = s->cfg->scep_poll_max_s > s->cfg->scep_poll_interval_s ? s->cfg->scep_poll_max_s
									      : s->cfg->scep_poll_interval_s;

	pthread_mutex_lock(&s->pki->lock);
	if (store_scep_pending_get(s->pki->store, name, &pd, &e) == KH_OK && pd.next_poll <= now) {
		pd.polls++;
		pd.wait = pd.wait * 2 > max ? max : pd.wait * 2;
		if (pd.wait < (int64_t)s->cfg->scep_poll_interval_s)
			pd.wait = s->cfg->scep_poll_interval_s;
		pd.next_poll = now + pd.wait;
		if (store_scep_pending_put(s->pki->store, name, &pd, &e) != KH_OK)
			log_warn("trustpoint '%s': SCEP back-off not stored: %s", name, e.msg);
	}
	pthread_mutex_unlock(&s->pki->lock);
	store_scep_pending_clear(&pd);
}

/* Failed renewals and when to try them again (under sp_pass_lock). */
#define SP_RETRY_MAX 256
static struct sp_retry {
	char name[KH_NAME_MAX + 1];
	int64_t next, wait;
} sp_retry[SP_RETRY_MAX];

static struct sp_retry *sp_retry_find(const char *name)
{
	size_t i;

	for (i = 0; i < SP_RETRY_MAX; i++)
		if (sp_retry[i].name[0] != '\0' && strcmp(sp_retry[i].name, name) == 0)
			return &sp_retry[i];
	return NULL;
}

static void sp_retry_failed(struct svc *s, const char *name, int64_t now)
{
	struct sp_retry *r = sp_retry_find(name);
	int64_t max = s->cfg->scep_poll_max_s > s->cfg->scep_poll_interval_s ? s->cfg->scep_poll_max_s
									      : s->cfg->scep_poll_interval_s;
	size_t i;

	for (i = 0; r == NULL && i < SP_RETRY_MAX; i++)
		if (sp_retry[i].name[0] == '\0') {
			r = &sp_retry[i];
			kh_strlcpy(r->name, name, sizeof(r->name));
			r->wait = 0;
		}
	if (r == NULL)
		return; /* full: retried every pass */
	r->wait = r->wait == 0 ? (int64_t)s->cfg->scep_poll_interval_s : r->wait * 2 > max ? max : r->wait * 2;
	r->next = now + r->wait;
}

/* Whether url trustpoint name is due for renewal (crossed renew_at, no
 * request pending, no failed attempt waiting); *regenerate: a new key to
 * stage; *rollover: renewal with a new key. */
static bool sp_due(struct svc *s, const char *name, int64_t now, bool *regenerate, bool *rollover, uint32_t *percent,
		   int64_t *not_after)
{
	struct store_tp t;
	struct store_tp_policy p;
	struct store_scep_pending pd;
	struct kh_errbuf e = { 0 };
	bool due = false;
	X509 *x = NULL;
	int64_t at;

	memset(&t, 0, sizeof(t));
	memset(&pd, 0, sizeof(pd));
	pthread_mutex_lock(&s->pki->lock);
	if (store_tp_get(s->pki->store, name, &t, &e) == KH_OK && t.enrollment == KH_ENROLL_URL && t.cert.len > 0 &&
	    store_tp_policy_get(s->pki->store, name, &p, &e) == KH_OK && p.renew_at > 0 &&
	    store_scep_pending_get(s->pki->store, name, &pd, &e) == KH_E_NOT_FOUND &&
	    (x = pki_x509_from_der(t.cert.data, t.cert.len)) != NULL) {
		at = svc_pki_renew_after(pki_time(X509_get0_notBefore(x)), pki_time(X509_get0_notAfter(x)), p.renew_at);
		due = at != 0 && now >= at;
		*regenerate = p.renew_regenerate && t.next_key[0] == '\0';
		*rollover = p.renew_regenerate || t.next_key[0] != '\0';
		*percent = p.renew_at;
		*not_after = t.cert_not_after;
	}
	pthread_mutex_unlock(&s->pki->lock);
	ERR_clear_error();
	X509_free(x);
	store_scep_pending_clear(&pd);
	store_tp_clear(&t);
	if (due && sp_retry_find(name) != NULL && now < sp_retry_find(name)->next) {
		log_dbg("trustpoint '%s': SCEP renewal failed before; next try in %lld s", name,
			(long long)(sp_retry_find(name)->next - now));
		due = false;
	}
	return due;
}

/* No renewal twice: the scep-poll role still held and this certificate's
 * renewal claimed in one transaction (cluster/cluster.h). */
static bool sp_claim(struct svc *s, const char *name, int64_t not_after, struct svc_exp_report *rep)
{
	char what[KH_NAME_MAX + 8], version[24];
	struct kh_errbuf e = { 0 };
	bool claimed = false;

	snprintf(what, sizeof(what), "renew:%s", name);
	snprintf(version, sizeof(version), "%lld", (long long)not_after);
	if (svc_cluster_claim(s, CLUSTER_ROLE_SCEP, what, version, &claimed, &e) != KH_OK) {
		log_err("trustpoint '%s': SCEP renewal not claimed: %s", name, e.msg);
		sp_line(&rep->errors, &rep->n_errors, "%s: renewal not claimed: %s", name, e.msg);
		return false;
	}
	if (!claimed)
		sp_line(&rep->renewals, &rep->n_renewals,
			"%s: renewal left to the node holding the %s role (or already claimed by another node)", name,
			CLUSTER_ROLE_SCEP);
	return claimed;
}

/* One pass at a time, timer or RPC: a poll is decided (due) and made
 * under it, so a request is not polled twice for one due time. */
static pthread_mutex_t sp_pass_lock = PTHREAD_MUTEX_INITIALIZER;

static void sp_pass(struct svc *s, struct svc_exp_report *rep);

void svc_scep_pass(struct svc *s, struct svc_exp_report *rep)
{
	/* The timer's pass holds the lease already (renewing it costs one
	 * statement); a pass RunMonitor started on a node that does not hold
	 * the role polls nothing: two nodes polling one request could both
	 * act on its answer. */
	if (!svc_cluster_lease(s, CLUSTER_ROLE_SCEP)) {
		sp_line(&rep->renewals, &rep->n_renewals, "SCEP polling and renewal left to the node holding the %s role",
			CLUSTER_ROLE_SCEP);
		return;
	}
	pthread_mutex_lock(&sp_pass_lock);
	sp_pass(s, rep);
	pthread_mutex_unlock(&sp_pass_lock);
}

static void sp_pass(struct svc *s, struct svc_exp_report *rep)
{
	char (*names)[KH_NAME_MAX + 1] = NULL;
	size_t n = 0, i;
	int64_t now = svc_now();
	struct kh_errbuf e = { 0 };
	int r;

	if (atomic_load(&s->state) != SVC_STATE_OPERATIONAL)
		return;
	/* Requests the CA holds, whose next poll is due. */
	pthread_mutex_lock(&s->pki->lock);
	r = store_scep_pending_names(s->pki->store, &names, &n, &e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK) {
		sp_line(&rep->errors, &rep->n_errors, "SCEP: %s", e.msg);
		return;
	}
	for (i = 0; i < n; i++) {
		struct store_scep_pending pd;
		struct kh_errbuf he = { 0 };
		bool issued = false, due;

		pthread_mutex_lock(&s->pki->lock);
		due = store_scep_pending_get(s->pki->store, names[i], &pd, &he) == KH_OK && pd.next_poll <= now;
		pthread_mutex_unlock(&s->pki->lock);
		store_scep_pending_clear(&pd);
		kh_err_clear(&he);
		if (!due)
			continue;
		r = sp_exchange(s, names[i], &issued, &he);
		if (r == KH_OK && issued) {
			sp_line(&rep->renewals, &rep->n_renewals, "%s: SCEP certificate issued after polling", names[i]);
		} else if (r == KH_E_UNAVAILABLE && strstr(he.msg, "(PENDING") != NULL) {
			sp_line(&rep->renewals, &rep->n_renewals, "%s: %s", names[i], he.msg);
		} else {
			log_err("trustpoint '%s': SCEP poll: %s", names[i], he.msg);
			sp_line(&rep->errors, &rep->n_errors, "%s: SCEP poll failed: %s", names[i], he.msg);
			sp_backoff(s, names[i], now);
		}
	}
	free(names);
	names = NULL;
	/* url trustpoints that crossed renew_at: RenewalReq. */
	pthread_mutex_lock(&s->pki->lock);
	r = store_tp_names(s->pki->store, &names, &n, &e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK) {
		sp_line(&rep->errors, &rep->n_errors, "SCEP renewal: %s", e.msg);
		return;
	}
	for (i = 0; i < n; i++) {
		struct svc_pki_enrolled a;
		struct kh_errbuf he = { 0 };
		bool regenerate = false, rollover = false, issued = false;
		struct sp_retry *rt;
		uint32_t pct = 0;
		int64_t not_after = 0;

		if (!sp_due(s, names[i], now, &regenerate, &rollover, &pct, &not_after) ||
		    !sp_claim(s, names[i], not_after, rep))
			continue;
		memset(&a, 0, sizeof(a));
		r = KH_OK;
		/* renew-regenerate: the new key and its CSR staged as by
		 * `trustpoint regenerate`; the old key stays until the import. */
		if (regenerate)
			r = svc_pki_regenerate(s, names[i], KH_KEY_UNSPECIFIED, &a, &he);
		svc_pki_enrolled_clear(&a);
		if (r == KH_OK)
			r = sp_exchange(s, names[i], &issued, &he);
		rt = sp_retry_find(names[i]);
		if (r == KH_OK && issued) {
			log_info("trustpoint '%s': renewed by SCEP RenewalReq at %u%% of its lifetime%s", names[i], pct,
				 rollover ? " with a new key" : "");
			sp_line(&rep->renewals, &rep->n_renewals, "%s: renewed by SCEP (RenewalReq) with %s key", names[i],
				rollover ? "a new" : "the same");
			if (rt != NULL)
				memset(rt, 0, sizeof(*rt));
		} else if (r == KH_E_UNAVAILABLE && strstr(he.msg, "(PENDING") != NULL) {
			sp_line(&rep->renewals, &rep->n_renewals, "%s: %s", names[i], he.msg);
			if (rt != NULL)
				memset(rt, 0, sizeof(*rt));
		} else {
			sp_retry_failed(s, names[i], now);
			rt = sp_retry_find(names[i]);
			log_err("trustpoint '%s': SCEP renewal at %u%% failed (next try in %lld s): %s", names[i], pct,
				(long long)(rt != NULL ? rt->wait : 0), he.msg);
			sp_line(&rep->errors, &rep->n_errors, "%s: renewal failed (next try in %lld s): %s", names[i],
				(long long)(rt != NULL ? rt->wait : 0), he.msg);
		}
	}
	free(names);
}

/* ---- the timer: a periodic job with the scep-poll role's lease ---- */

static void sp_job_pass(void *arg)
{
	struct svc *s = arg;
	struct svc_exp_report rep;

	memset(&rep, 0, sizeof(rep));
	svc_scep_pass(s, &rep);
	if (rep.n_renewals + rep.n_errors > 0)
		log_dbg("SCEP poller: %zu action(s), %zu error(s)", rep.n_renewals, rep.n_errors);
	svc_exp_report_clear(&rep);
}

enum kh_err svc_scep_poll_start(struct svc *s, struct event_base *base, struct kh_errbuf *e)
{
	struct cluster_job_def d = { "SCEP poller", CLUSTER_ROLE_SCEP, NULL, sp_job_pass, s };
	struct timeval tv = { (time_t)s->cfg->scep_poll_interval_s, 0 };
	int r;

	/* The first pass as soon as the loop runs: polls that fell due while
	 * keyholdd was down. */
	r = cluster_job_start(s, base, &d, tv, &s->scep_poll, e);
	if (r != KH_OK)
		return r;
	log_info("SCEP poller: every %us (on the node holding the %s role); PENDING requests polled after %us, the "
		 "wait doubling up to %us, abandoned after %us",
		 s->cfg->scep_poll_interval_s, CLUSTER_ROLE_SCEP, s->cfg->scep_poll_interval_s, s->cfg->scep_poll_max_s,
		 s->cfg->scep_poll_timeout_s);
	return KH_OK;
}

void svc_scep_poll_stop(struct svc *s)
{
	if (s == NULL)
		return;
	cluster_job_free(s->scep_poll);
	s->scep_poll = NULL;
}
