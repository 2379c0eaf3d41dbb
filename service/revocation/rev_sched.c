/* rev_sched.c: revocation over time. A libevent timer looks every tick
 * (at most a minute) whether a pass is due by keyhold's clock; a worker
 * runs it. A pass
 *  1. fetches the CRL URL of every trust store that has one and stores the
 *     CRL as `crl import` would (signed by a CA of the store, never older
 *     than the one held);
 *  2. for every trustpoint with an identity certificate, builds its chain
 *     (certificate, chain, authenticated CA), fetches the http:// CRL
 *     distribution points of every certificate in it (when the
 *     trustpoint's policy has crl) into the CRL cache, then checks the
 *     chain with the trustpoint's revocation policy, the CRLs of every
 *     trust store counting as imported ones;
 *  3. compares what it found, per certificate and per CRL, with the state
 *     it recorded last (revocation_state): a change to revoked, unknown or
 *     a stale CRL (past its nextUpdate and no newer one to be had) is
 *     logged, audited and given to the expiry hook as KEYHOLD_EVENT
 *     revoked, revocation-unknown or crl-stale, once per change.
 * The next pass is due one [revocation] recheck_interval later, or earlier
 * when a CRL keyhold uses reaches its refresh point before that (its
 * nextUpdate less a quarter of its validity, at most one interval), so a
 * CRL is fetched again before its nextUpdate (docs/REVOCATION.md). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/err.h>

#include "audit/audit.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "kh_log.h"
#include "kh_text.h"
#include "kh_util.h"
#include "core/svc_clock.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "pool/pool.h"
#include "revocation/revocation.h"

struct svc_revsched {
	struct svc *s;
	struct cluster_job *job;        /* the timer, with the revocation role's lease */
	_Atomic int64_t next_due;       /* by svc_now(); 0: at the next tick */
	atomic_bool poked;              /* a pass at the next tick, whatever next_due says */
};

/* One pass at a time: a state change is decided and recorded under it. */
static pthread_mutex_t rs_pass_lock = PTHREAD_MUTEX_INITIALIZER;

#define RS_OBS_MAX 4096

/* What a pass saw of one certificate or CRL. */
struct rs_obs {
	struct store_revstate st;
	struct svc_exp_cert cert;       /* for the hook */
	int rank;                       /* certificates: the worst wins */
};

struct rs_pass {
	struct svc *s;
	int64_t now, next_due;
	unsigned interval;
	struct rs_obs *v;
	size_t n, cap;
	STACK_OF(X509_CRL) *local;      /* every trust store's CRLs */
	char (*fetched)[KH_URL_MAX + 1]; /* distribution points fetched in this pass */
	size_t n_fetched;
};

static int rs_rank(const char *status)
{
	if (strcmp(status, "revoked") == 0 || strcmp(status, "stale") == 0)
		return 3;
	if (strcmp(status, "unknown") == 0)
		return 2;
	if (strcmp(status, "good") == 0 || strcmp(status, "current") == 0)
		return 1;
	return 0;
}

static struct rs_obs *rs_obs_get(struct rs_pass *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].st.id, id) == 0)
			return &p->v[i];
	if (p->n >= RS_OBS_MAX)
		return NULL;
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 32;
		struct rs_obs *nv = realloc(p->v, cap * sizeof(*nv));

		if (nv == NULL)
			return NULL;
		p->v = nv;
		p->cap = cap;
	}
	memset(&p->v[p->n], 0, sizeof(p->v[p->n]));
	kh_strlcpy(p->v[p->n].st.id, id, sizeof(p->v[p->n].st.id));
	p->v[p->n].rank = -1;
	return &p->v[p->n++];
}

/* A CRL's refresh point: its nextUpdate less a quarter of its validity, at
 * most one interval and at least a minute; the next pass comes no later. */
static void rs_due_for_crl(struct rs_pass *p, int64_t this_update, int64_t next_update)
{
	int64_t margin, at;

	if (next_update == 0)
		return;
	margin = next_update > this_update ? (next_update - this_update) / 4 : 0;
	if (margin > (int64_t)p->interval)
		margin = p->interval;
	if (margin < 60)
		margin = 60;
	at = next_update - margin;
	/* Stale already: try again within five minutes (or one interval). */
	if (at <= p->now)
		at = p->now + (p->interval < 300 ? p->interval : 300);
	if (at < p->next_due)
		p->next_due = at;
}

static void rs_fetch_result(struct svc *s, const char *url, bool ok, const char *fmt, ...) KH_PRINTF(4, 5);
static void rs_fetch_result(struct svc *s, const char *url, bool ok, const char *fmt, ...)
{
	struct store_crl_fetch f;
	struct kh_errbuf e = { 0 };
	va_list ap;

	memset(&f, 0, sizeof(f));
	f.fetched = svc_now();
	f.ok = ok;
	va_start(ap, fmt);
	vsnprintf(f.result, sizeof(f.result), fmt, ap);
	va_end(ap);
	if (!ok)
		log_warn("CRL refresh %s: %s", url, f.result);
	pthread_mutex_lock(&s->pki->lock);
	if (store_crl_fetch_put(s->pki->store, url, &f, &e) != KH_OK)
		log_err("CRL refresh %s: %s", url, e.msg);
	pthread_mutex_unlock(&s->pki->lock);
}

/* ---- 1. trust stores' CRL URLs ---- */

static void rs_store_urls(struct rs_pass *p)
{
	struct svc *s = p->s;
	char (*names)[KH_NAME_MAX + 1] = NULL;
	char (*urls)[KH_URL_MAX + 1] = NULL;
	struct kh_errbuf e = { 0 };
	size_t n = 0, i;

	pthread_mutex_lock(&s->pki->lock);
	if (store_ts_names(s->pki->store, &names, &n, &e) == KH_OK && n > 0 && (urls = calloc(n, sizeof(*urls))) != NULL)
		for (i = 0; i < n; i++)
			if (store_ts_crl_url_get(s->pki->store, names[i], urls[i], sizeof(urls[i]), &e) != KH_OK)
				urls[i][0] = '\0';
	pthread_mutex_unlock(&s->pki->lock);
	if (e.code != KH_OK)
		log_err("revocation scheduler: %s", e.msg);
	for (i = 0; urls != NULL && i < n; i++) {
		struct kh_bytes b = { NULL, 0 };
		struct kh_errbuf fe = { 0 };
		struct kh_crl_info info;
		X509_CRL *crl = NULL;
		char warn[KH_DN_MAX + 160], when[40];

		if (urls[i][0] == '\0')
			continue;
		if (svc_http_fetch(s->cfg, urls[i], NULL, NULL, 0, s->cfg->rev_crl_max, &b, &fe) != KH_OK ||
		    pki_crl_load(b.data, b.len, &crl, &fe) != KH_OK ||
		    svc_rev_crl_install(s, names[i], crl, "fetched", warn, sizeof(warn), &fe) != KH_OK) {
			rs_fetch_result(s, urls[i], false, "%s", fe.msg);
		} else {
			pki_crl_info(crl, &info);
			kh_time_format_rfc3339(info.next_update, when, sizeof(when));
			rs_fetch_result(s, urls[i], true, "stored in trust store '%s': %u revoked, next update %s", names[i],
					info.revoked, info.next_update ? when : "none");
		}
		X509_CRL_free(crl);
		kh_bytes_clear(&b);
		ERR_clear_error();
	}
	free(urls);
	free(names);
}

/* ---- 2. trustpoints ---- */

/* Fetches url, a distribution point of cert (issued by issuer), into the
 * CRL cache once per pass. */
static void rs_fetch_dp(struct rs_pass *p, X509 *cert, X509 *issuer, const char *url)
{
	struct svc *s = p->s;
	struct kh_bytes b = { NULL, 0 };
	struct kh_errbuf fe = { 0 };
	struct store_crl_cached cc;
	struct pki_rev_answer a;
	X509_CRL *crl = NULL;
	unsigned char *der = NULL;
	char when[40];
	size_t i;
	int len, r;

	for (i = 0; i < p->n_fetched; i++)
		if (strcmp(p->fetched[i], url) == 0)
			return;
	if (p->n_fetched < PKI_URLS_MAX * KH_REV_CHAIN_MAX * 8) {
		char(*nf)[KH_URL_MAX + 1] = realloc(p->fetched, (p->n_fetched + 1) * sizeof(*nf));

		if (nf != NULL) {
			p->fetched = nf;
			kh_strlcpy(p->fetched[p->n_fetched++], url, sizeof(p->fetched[0]));
		}
	}
	if (svc_http_fetch(s->cfg, url, NULL, NULL, 0, s->cfg->rev_crl_max, &b, &fe) != KH_OK ||
	    pki_crl_load(b.data, b.len, &crl, &fe) != KH_OK || pki_crl_usable(crl, cert, issuer, p->now, &fe) != KH_OK) {
		rs_fetch_result(s, url, false, "%s", fe.msg);
		goto out;
	}
	pki_crl_status(crl, cert, &a);
	kh_time_format_rfc3339(a.next_update, when, sizeof(when));
	if (a.next_update <= p->now) {
		rs_fetch_result(s, url, false, "the CRL has no nextUpdate in the future (%s); not cached",
				a.next_update ? when : "none");
		goto out;
	}
	len = i2d_X509_CRL(crl, &der);
	if (len <= 0)
		goto out;
	memset(&cc, 0, sizeof(cc));
	pki_name_text(X509_CRL_get_issuer(crl), cc.issuer, sizeof(cc.issuer));
	cc.this_update = a.this_update;
	cc.next_update = a.next_update;
	cc.fetched = p->now;
	cc.der.data = der;
	cc.der.len = (size_t)len;
	pthread_mutex_lock(&s->pki->lock);
	r = store_crl_cache_put(s->pki->store, url, &cc, &fe);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK)
		rs_fetch_result(s, url, false, "%s", fe.msg);
	else
		rs_fetch_result(s, url, true, "cached: %d revoked, next update %s",
				sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), when);
out:
	OPENSSL_free(der);
	X509_CRL_free(crl);
	kh_bytes_clear(&b);
	ERR_clear_error();
}

static STACK_OF(X509) *rs_x509s(const struct kh_bytes *d, size_t n)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	size_t i;

	for (i = 0; sk != NULL && i < n; i++) {
		X509 *x = pki_x509_from_der(d[i].data, d[i].len);

		if (x != NULL && sk_X509_push(sk, x) <= 0)
			X509_free(x);
	}
	return sk;
}

static void rs_observe_cert(struct rs_pass *p, X509 *x, const char *held_by, const char *status, const char *detail)
{
	char id[STORE_REVSTATE_ID_MAX + 1], fp[KH_FP_HEX + 1];
	struct rs_obs *o;
	int rank = rs_rank(status);

	pki_fingerprint(x, fp);
	snprintf(id, sizeof(id), "cert:%s", fp);
	o = rs_obs_get(p, id);
	if (o == NULL || rank <= o->rank)
		return;
	o->rank = rank;
	pki_cert_info(x, &o->cert.cert);
	kh_strlcpy(o->st.status, status, sizeof(o->st.status));
	kh_strlcpy(o->st.subject, o->cert.cert.subject, sizeof(o->st.subject));
	kh_strlcpy(o->st.held_by, held_by, sizeof(o->st.held_by));
	kh_strlcpy(o->st.detail, detail, sizeof(o->st.detail));
}

/* Checks one trustpoint's chain; t is borrowed. */
static void rs_trustpoint(struct rs_pass *p, const struct store_tp *t, const struct store_tp_policy *tpp)
{
	struct svc *s = p->s;
	STACK_OF(X509) *ca = rs_x509s(t->ca, t->n_ca), *chain = rs_x509s(t->chain, t->n_chain);
	X509 *leaf = pki_x509_from_der(t->cert.data, t->cert.len);
	struct pki_verify_result vr;
	struct pki_verify_opts vo;
	struct kh_cert_check_resp res;
	struct svc_rev_policy pol;
	struct kh_validation val;
	struct kh_errbuf e = { 0 };
	char owner[KH_NAME_MAX + 32], held[KH_HELD_BY_LEN + 32], detail[KH_REV_DETAIL_MAX + 64];
	size_t i, k;
	int len;

	memset(&vr, 0, sizeof(vr));
	memset(&res, 0, sizeof(res));
	if (leaf == NULL || ca == NULL || chain == NULL)
		goto out;
	snprintf(held, sizeof(held), "trustpoint:%s", t->name);
	/* A self-signed identity is its own anchor: nothing revokes it. */
	if (pki_cert_self_signed(leaf))
		goto out;
	snprintf(owner, sizeof(owner), "trustpoint '%s'", t->name);
	if (svc_rev_policy_make(t->revocation, tpp->ocsp_url, owner, &pol, &e) != KH_OK) {
		rs_observe_cert(p, leaf, held, "unknown", e.msg);
		goto out;
	}
	kh_validation_default(&val);
	memset(&vo, 0, sizeof(vo));
	vo.v = &val;
	vo.trusted = ca;
	vo.untrusted = chain;
	vo.partial_chain = true;
	vo.no_check_time = true;
	if (pki_verify(leaf, &vo, &vr, &e) != KH_OK || !vr.valid) {
		snprintf(detail, sizeof(detail), "the certificate does not chain to the trustpoint's CA (%s)",
			 e.code != KH_OK ? e.msg : vr.reason);
		rs_observe_cert(p, leaf, held, "unknown", detail);
		goto out;
	}
	len = sk_X509_num(vr.chain);
	for (i = 0; pol.n > 0 && (int)i + 1 < len; i++) {
		char urls[PKI_URLS_MAX][KH_URL_MAX + 1];
		size_t skipped = 0, nu;
		bool crl = false;

		for (k = 0; k < pol.n; k++)
			crl = crl || pol.methods[k] == SVC_REV_CRL;
		if (!crl)
			break;
		nu = pki_crl_urls(sk_X509_value(vr.chain, (int)i), urls, PKI_URLS_MAX, &skipped);
		for (k = 0; k < nu; k++)
			rs_fetch_dp(p, sk_X509_value(vr.chain, (int)i), sk_X509_value(vr.chain, (int)i + 1), urls[k]);
	}
	if (svc_rev_check(s, vr.chain, &pol, p->local, &res, &e) != KH_OK) {
		rs_observe_cert(p, leaf, held, "unknown", e.msg);
		goto out;
	}
	for (i = 0; i < res.n_certs; i++) {
		const struct kh_cert_rev *c = &res.certs[i];
		const char *status = kh_rev_status_name(c->status);

		/* Policy none and no imported CRL covers it: nothing to say. */
		if (pol.n == 0 && c->status == KH_REV_UNKNOWN)
			status = "not-checked";
		if (c->status == KH_REV_REVOKED)
			snprintf(detail, sizeof(detail), "revoked (%s) per %s %.300s", c->reason, c->method, c->source);
		else if (c->status == KH_REV_GOOD)
			snprintf(detail, sizeof(detail), "good per %s %.300s", c->method, c->source);
		else
			snprintf(detail, sizeof(detail), "%.500s", c->detail);
		snprintf(held, sizeof(held), "%s:%s", i == 0 ? "trustpoint" : "trustpoint-chain", t->name);
		rs_observe_cert(p, sk_X509_value(vr.chain, (int)i), held, status, detail);
	}
out:
	kh_cert_check_resp_clear(&res);
	pki_verify_result_clear(&vr);
	X509_free(leaf);
	sk_X509_pop_free(ca, X509_free);
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
}

static enum kh_err rs_trustpoints(struct rs_pass *p, struct kh_errbuf *e)
{
	struct svc *s = p->s;
	char (*tps)[KH_NAME_MAX + 1] = NULL, (*stores)[KH_NAME_MAX + 1] = NULL;
	struct store_crl *cr = NULL;
	size_t ntp = 0, nst = 0, ncr = 0, i, k;
	int r = KH_OK;

	p->local = sk_X509_CRL_new_null();
	KH_ENSURE(p->local != NULL, KH_E_RESOURCE_EXHAUSTED);
	pthread_mutex_lock(&s->pki->lock);
	r = store_ts_names(s->pki->store, &stores, &nst, e);
	for (i = 0; r == KH_OK && i < nst; i++) {
		r = store_crl_list(s->pki->store, stores[i], &cr, &ncr, e);
		for (k = 0; r == KH_OK && k < ncr; k++) {
			X509_CRL *c = NULL;
			struct kh_errbuf ce = { 0 };

			if (pki_crl_load(cr[k].der.data, cr[k].der.len, &c, &ce) == KH_OK && sk_X509_CRL_push(p->local, c) <= 0)
				X509_CRL_free(c);
		}
		store_crls_free(cr, ncr);
		cr = NULL;
		ncr = 0;
	}
	if (r == KH_OK)
		r = store_tp_names(s->pki->store, &tps, &ntp, e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK)
		goto out;
	for (i = 0; i < ntp; i++) {
		struct store_tp t;
		struct store_tp_policy tpp;
		struct kh_errbuf te = { 0 };

		memset(&t, 0, sizeof(t));
		pthread_mutex_lock(&s->pki->lock);
		r = store_tp_get(s->pki->store, tps[i], &t, &te);
		if (r == KH_OK)
			r = store_tp_policy_get(s->pki->store, tps[i], &tpp, &te);
		pthread_mutex_unlock(&s->pki->lock);
		/* Checked without the lock: it may wait on the network. */
		if (r == KH_OK && t.cert.len > 0)
			rs_trustpoint(p, &t, &tpp);
		else if (r != KH_OK && r != KH_E_NOT_FOUND)
			log_err("revocation scheduler: trustpoint '%s': %s", tps[i], te.msg);
		store_tp_clear(&t);
		r = KH_OK;
	}
out:
	free(tps);
	free(stores);
	return r;
}

/* ---- 3. CRLs ---- */

static void rs_observe_crl(struct rs_pass *p, const char *id, const char *issuer, const char *held_by,
			   const char *fp, int64_t this_update, int64_t next_update, const char *detail)
{
	struct rs_obs *o = rs_obs_get(p, id);
	bool stale = next_update != 0 && next_update <= p->now;
	char when[40];

	rs_due_for_crl(p, this_update, next_update);
	if (o == NULL)
		return;
	o->rank = stale ? 3 : 1;
	kh_strlcpy(o->st.status, stale ? "stale" : "current", sizeof(o->st.status));
	kh_strlcpy(o->st.subject, issuer, sizeof(o->st.subject));
	kh_strlcpy(o->st.held_by, held_by, sizeof(o->st.held_by));
	kh_time_format_rfc3339(next_update, when, sizeof(when));
	snprintf(o->st.detail, sizeof(o->st.detail), "%s CRL from '%.200s', next update %s%s%.200s",
		 stale ? "stale" : "current", issuer, next_update ? when : "none", detail[0] ? "; last fetch: " : "",
		 detail);
	kh_strlcpy(o->cert.cert.subject, issuer, sizeof(o->cert.cert.subject));
	kh_strlcpy(o->cert.cert.issuer, issuer, sizeof(o->cert.cert.issuer));
	kh_strlcpy(o->cert.cert.fingerprint, fp, sizeof(o->cert.cert.fingerprint));
	o->cert.cert.not_before = this_update;
	o->cert.cert.not_after = next_update;
}

static enum kh_err rs_crls(struct rs_pass *p, struct kh_errbuf *e)
{
	struct svc *s = p->s;
	char (*stores)[KH_NAME_MAX + 1] = NULL;
	struct store_crl *cr = NULL;
	struct store_crl_cache_row *cc = NULL;
	size_t nst = 0, ncr = 0, ncc = 0, i, k;
	int r = KH_OK;

	pthread_mutex_lock(&s->pki->lock);
	KH_TRY(store_ts_names(s->pki->store, &stores, &nst, e));
	for (i = 0; i < nst; i++) {
		char url[KH_URL_MAX + 1], id[STORE_REVSTATE_ID_MAX + 1], held[KH_HELD_BY_LEN + 32];
		struct store_crl_fetch f;
		bool found = false;

		KH_TRY(store_ts_crl_url_get(s->pki->store, stores[i], url, sizeof(url), e));
		memset(&f, 0, sizeof(f));
		if (url[0] != '\0')
			KH_TRY(store_crl_fetch_get(s->pki->store, url, &f, &found, e));
		KH_TRY(store_crl_list(s->pki->store, stores[i], &cr, &ncr, e));
		snprintf(held, sizeof(held), "truststore:%s", stores[i]);
		for (k = 0; k < ncr; k++) {
			snprintf(id, sizeof(id), "crl:truststore:%s:%s", stores[i], cr[k].issuer_key);
			rs_observe_crl(p, id, cr[k].issuer, held, cr[k].fingerprint, cr[k].this_update, cr[k].next_update,
				       strcmp(cr[k].source, "fetched") == 0 && found ? f.result : "");
		}
		store_crls_free(cr, ncr);
		cr = NULL;
		ncr = 0;
	}
	KH_TRY(store_crl_cache_list(s->pki->store, &cc, &ncc, e));
	/* The cache also holds CRLs fetched for `cert check`: only the
	 * distribution points of certificates keyhold holds are watched. */
	for (i = 0; i < ncc; i++) {
		char id[STORE_REVSTATE_ID_MAX + 1], held[KH_HELD_BY_LEN + 32];
		struct store_crl_fetch f;
		bool held_dp = false, found = false;

		for (k = 0; k < p->n_fetched && !held_dp; k++)
			held_dp = strcmp(p->fetched[k], cc[i].url) == 0;
		if (!held_dp)
			continue;
		KH_TRY(store_crl_fetch_get(s->pki->store, cc[i].url, &f, &found, e));
		snprintf(id, sizeof(id), "crl:%s", cc[i].url);
		snprintf(held, sizeof(held), "crl:%.70s", cc[i].url);
		rs_observe_crl(p, id, cc[i].issuer, held, "", cc[i].this_update, cc[i].next_update, found ? f.result : "");
	}
out:
	pthread_mutex_unlock(&s->pki->lock);
	store_crls_free(cr, ncr);
	free(cc);
	free(stores);
	return r;
}

/* ---- 4. state changes ---- */

static const char *rs_event(const char *status)
{
	if (strcmp(status, "revoked") == 0)
		return "revoked";
	if (strcmp(status, "unknown") == 0)
		return "revocation-unknown";
	if (strcmp(status, "stale") == 0)
		return "crl-stale";
	return NULL;
}

static void rs_audit(struct svc *s, const char *what, const char *object)
{
	struct audit_event ev;
	struct kh_errbuf e = { 0 };
	char method[40];

	if (s->audit == NULL)
		return;
	snprintf(method, sizeof(method), "Revocation:%s", what);
	memset(&ev, 0, sizeof(ev));
	ev.principal = "keyholdd";
	ev.method = method;
	ev.object = object;
	ev.code = KH_OK;
	ev.count = 1;
	if (audit_append(s->audit, &ev, &e) != KH_OK)
		log_err("audit: %s", e.msg);
}

static enum kh_err rs_changes(struct rs_pass *p, struct kh_errbuf *e)
{
	struct svc *s = p->s;
	struct store_revstate *old = NULL;
	struct rs_obs **fire = NULL;
	size_t nold = 0, nfire = 0, i, k;
	int r = KH_OK;

	fire = calloc(p->n ? p->n : 1, sizeof(*fire));
	KH_ENSURE(fire != NULL, KH_E_RESOURCE_EXHAUSTED);
	pthread_mutex_lock(&s->pki->lock);
	r = store_revstate_list(s->pki->store, &old, &nold, e);
	for (i = 0; r == KH_OK && i < p->n; i++) {
		struct rs_obs *o = &p->v[i];
		const struct store_revstate *was = NULL;

		if (o->rank < 0)
			continue;
		for (k = 0; k < nold && was == NULL; k++)
			if (strcmp(old[k].id, o->st.id) == 0)
				was = &old[k];
		o->st.checked = p->now;
		o->st.changed = was != NULL && strcmp(was->status, o->st.status) == 0 ? was->changed : p->now;
		r = store_revstate_put(s->pki->store, &o->st, e);
		if (r == KH_OK && (was == NULL || strcmp(was->status, o->st.status) != 0) &&
		    (rs_event(o->st.status) != NULL || was != NULL))
			fire[nfire++] = o;
	}
	/* What keyhold no longer holds is forgotten: held again, it starts
	 * afresh. */
	for (k = 0; r == KH_OK && k < nold; k++) {
		bool seen = false;

		for (i = 0; i < p->n && !seen; i++)
			seen = p->v[i].rank >= 0 && strcmp(p->v[i].st.id, old[k].id) == 0;
		if (!seen)
			r = store_revstate_remove(s->pki->store, old[k].id, e);
	}
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK)
		goto out;
	/* The hook runs without the lock (it may take hook_timeout). */
	for (i = 0; i < nfire; i++) {
		struct rs_obs *o = fire[i];
		const char *ev = rs_event(o->st.status);

		if (ev != NULL) {
			log_warn("revocation: %s: '%s' held by %s: %s", ev, o->st.subject, o->st.held_by, o->st.detail);
			kh_strlcpy(o->cert.held_by[0], o->st.held_by, sizeof(o->cert.held_by[0]));
			o->cert.n_held_by = 1;
			o->cert.days_left = o->cert.cert.not_after ? (o->cert.cert.not_after - p->now) / 86400 : 0;
			svc_expiry_hook(s, &o->cert, ev, o->st.detail);
			rs_audit(s, ev, o->st.held_by);
		} else {
			log_info("revocation: '%s' held by %s is %s again: %s", o->st.subject, o->st.held_by, o->st.status,
				 o->st.detail);
			rs_audit(s, o->st.status, o->st.held_by);
		}
	}
out:
	free(fire);
	free(old);
	return r;
}

/* ---- a pass ---- */

static enum kh_err rs_run(struct svc *s, struct kh_errbuf *e)
{
	struct rs_pass p;
	char when[40];
	int r = KH_OK;

	memset(&p, 0, sizeof(p));
	pthread_mutex_lock(&rs_pass_lock);
	p.s = s;
	p.now = svc_now();
	p.interval = s->cfg->rev_recheck_interval_s;
	p.next_due = p.now + p.interval;
	rs_store_urls(&p);
	KH_TRY(rs_trustpoints(&p, e));
	KH_TRY(rs_crls(&p, e));
	KH_TRY(rs_changes(&p, e));
	if (s->revsched != NULL)
		atomic_store(&s->revsched->next_due, p.next_due);
	kh_time_format_rfc3339(p.next_due, when, sizeof(when));
	log_dbg("revocation scheduler: %zu certificate(s) and CRL(s) looked at; next pass %s", p.n, when);
out:
	pthread_mutex_unlock(&rs_pass_lock);
	sk_X509_CRL_pop_free(p.local, X509_CRL_free);
	free(p.fetched);
	free(p.v);
	return r;
}

/* ---- the timer: a periodic job with the revocation role's lease ---- */

static void rs_job_pass(void *arg)
{
	struct svc_revsched *x = arg;
	struct kh_errbuf e = { 0 };

	/* Cleared before the pass reads anything: a poke during it counts. */
	atomic_store(&x->poked, false);
	if (rs_run(x->s, &e) != KH_OK) {
		log_err("revocation scheduler: %s", e.msg);
		/* Try again within five minutes (or one interval). */
		atomic_store(&x->next_due, svc_now() + (x->s->cfg->rev_recheck_interval_s < 300
								 ? x->s->cfg->rev_recheck_interval_s
								 : 300));
	}
}

/* On the loop at each tick. A node that does not hold the role keeps
 * next_due 0, so it looks for the lease at every tick and takes the role
 * within one tick of the holder's lease running out. */
static bool rs_job_due(void *arg)
{
	struct svc_revsched *x = arg;

	return atomic_load(&x->poked) || svc_now() >= atomic_load(&x->next_due);
}

/* How often the timer looks whether a pass is due: a minute, or the
 * interval when shorter; KEYHOLD_TESTING builds take
 * KEYHOLD_TEST_REV_TICK_MS so tests that move the clock need not wait. */
static struct timeval rs_tick(const struct svc *s)
{
	struct timeval tv = { s->cfg->rev_recheck_interval_s < 60 ? (time_t)s->cfg->rev_recheck_interval_s : 60, 0 };
#ifdef KEYHOLD_TESTING
	const char *t = getenv("KEYHOLD_TEST_REV_TICK_MS");
	uint64_t ms;

	if (t != NULL && kh_parse_u64(t, 10, 60000, &ms) == 0) {
		tv.tv_sec = (time_t)(ms / 1000);
		tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	}
#endif
	return tv;
}

enum kh_err svc_revsched_start(struct svc *s, struct event_base *base, struct kh_errbuf *e)
{
	struct svc_revsched *x = calloc(1, sizeof(*x));
	struct cluster_job_def d = { "revocation scheduler", CLUSTER_ROLE_REVOCATION, rs_job_due, rs_job_pass, x };
	int r;

	if (x == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	x->s = s;
	atomic_store(&x->next_due, 0);
	r = cluster_job_start(s, base, &d, rs_tick(s), &x->job, e);
	if (r != KH_OK) {
		free(x);
		return r;
	}
	s->revsched = x;
	log_info("revocation scheduler: CRLs refreshed and held certificates re-checked every %us (on the node "
		 "holding the %s role)",
		 s->cfg->rev_recheck_interval_s, CLUSTER_ROLE_REVOCATION);
	return KH_OK;
}

void svc_revsched_reschedule(struct svc *s)
{
	if (s->revsched == NULL)
		return;
	cluster_job_rearm(s->revsched->job, rs_tick(s));
	/* The new interval counts from a pass now. */
	atomic_store(&s->revsched->poked, true);
}

void svc_revsched_poke(struct svc *s)
{
	if (s != NULL && s->revsched != NULL)
		atomic_store(&s->revsched->poked, true);
}

void svc_revsched_stop(struct svc *s)
{
	if (s == NULL || s->revsched == NULL)
		return;
	cluster_job_free(s->revsched->job);
	free(s->revsched);
	s->revsched = NULL;
}

/* ---- for the RPCs ---- */

enum kh_err svc_rev_states_locked(struct svc *s, struct store_revstate **out, size_t *n, struct kh_errbuf *e)
{
	return store_revstate_list(s->pki->store, out, n, e);
}

const struct store_revstate *svc_rev_state_find(const struct store_revstate *v, size_t n, const char *fingerprint)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strncmp(v[i].id, "cert:", 5) == 0 && strcmp(v[i].id + 5, fingerprint) == 0)
			return &v[i];
	return NULL;
}

const struct store_revstate *svc_rev_state_worst(const struct store_revstate *v, size_t n, const char *const *fps,
						 size_t nfp)
{
	const struct store_revstate *w = NULL, *x;
	size_t i;

	for (i = 0; i < nfp; i++) {
		x = svc_rev_state_find(v, n, fps[i]);
		if (x != NULL && (w == NULL || rs_rank(x->status) > rs_rank(w->status)))
			w = x;
	}
	return w;
}
