/* expiry.c: the certificate expiry monitor. A libevent timer on the loop
 * hands a pass to a worker at start and every [expiry] check_interval;
 * `keyhold cert monitor` (RunMonitor) runs one on its own worker. A pass
 *  1. renews trustpoints whose certificate crossed renew_at (self: a new
 *     certificate, with a new key when renew-regenerate; terminal: a CSR
 *     staged, the trustpoint "renewal pending" until the import);
 *  2. looks at every certificate keyhold holds (identity certificates,
 *     their chains, trustpoint CAs, trust store CAs) and notifies those
 *     within notify_days of their notAfter, each at most once per
 *     notify_every (remembered in the state database): a log line and the
 *     configured hook, run without a shell.
 * ListExpiring (rpc/h_expiry.c) answers `keyhold cert expiring` from the
 * same survey; RunMonitor runs a pass. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>

#include "access/access.h"
#include "cluster/cluster.h"
#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "core/svc_clock.h"
#include "pool/pool.h"
#include "revocation/revocation.h"

/* One pass at a time, timer or RPC: a notification is decided and
 * recorded under it, so it cannot go out twice. */
static pthread_mutex_t exp_pass_lock = PTHREAD_MUTEX_INITIALIZER;

#define EXP_DAY 86400

/* ---- the survey: every certificate keyhold holds ---- */

struct exp_survey {
	struct svc_exp_cert *c;
	size_t n, cap;
};

static void exp_survey_clear(struct exp_survey *v)
{
	free(v->c);
	memset(v, 0, sizeof(*v));
}

static int64_t exp_days_left(int64_t not_after, int64_t now)
{
	int64_t d = not_after - now;

	/* Whole days, rounded down: expired certificates count negative. */
	return d >= 0 ? d / EXP_DAY : -((-d + EXP_DAY - 1) / EXP_DAY);
}

static enum kh_err exp_add(struct exp_survey *v, const struct kh_bytes *der, const char *kind, const char *owner,
			   int64_t now)
{
	struct kh_cert_info ci;
	struct svc_exp_cert *c = NULL;
	char where[KH_HELD_BY_LEN];
	X509 *x = pki_x509_from_der(der->data, der->len);
	size_t i;

	if (x == NULL) {
		log_warn("%s:%s holds a certificate that does not parse; it is not monitored", kind, owner);
		return KH_OK;
	}
	pki_cert_info(x, &ci);
	X509_free(x);
	snprintf(where, sizeof(where), "%s:%s", kind, owner);
	for (i = 0; i < v->n && c == NULL; i++)
		if (strcmp(v->c[i].cert.fingerprint, ci.fingerprint) == 0)
			c = &v->c[i];
	if (c == NULL) {
		if (v->n >= KH_EXPIRING_MAX)
			return KH_OK;
		if (v->n == v->cap) {
			size_t cap = v->cap ? v->cap * 2 : 32;
			struct svc_exp_cert *nc = realloc(v->c, cap * sizeof(*nc));

			if (nc == NULL)
				return KH_E_RESOURCE_EXHAUSTED;
			v->c = nc;
			v->cap = cap;
		}
		c = &v->c[v->n++];
		memset(c, 0, sizeof(*c));
		c->cert = ci;
		c->days_left = exp_days_left(ci.not_after, now);
	}
	for (i = 0; i < c->n_held_by; i++)
		if (strcmp(c->held_by[i], where) == 0)
			return KH_OK;
	if (c->n_held_by < KH_HELD_BY_MAX)
		kh_strlcpy(c->held_by[c->n_held_by++], where, sizeof(c->held_by[0]));
	return KH_OK;
}

/* Reads everything under the PKI lock; the caller holds it. who: the
 * principal asking (NULL: keyholdd itself); a trustpoint whose key who may
 * not see is left out, as in ListTrustpoints (docs/SECURITY.md, "What each
 * role can see"). Trust store certificates are CA certificates every role
 * may list. */
static enum kh_err exp_survey_locked(struct svc *s, const struct svc_principal *who, int64_t now,
				     struct exp_survey *v, struct kh_errbuf *e)
{
	char (*tps)[KH_NAME_MAX + 1] = NULL, (*stores)[KH_NAME_MAX + 1] = NULL;
	struct store_notice *no = NULL;
	struct store_ts_cert *tc = NULL;
	size_t ntp = 0, nst = 0, nno = 0, ntc = 0, i, k;
	int r = KH_OK;

	KH_TRY(store_tp_names(s->pki->store, &tps, &ntp, e));
	for (i = 0; i < ntp; i++) {
		struct store_tp t;

		memset(&t, 0, sizeof(t));
		KH_TRY(store_tp_get(s->pki->store, tps[i], &t, e));
		if (who != NULL && access_key_view(s->grants, who, t.key) == ACCESS_VIEW_NONE) {
			store_tp_clear(&t);
			continue;
		}
		if (t.cert.len > 0)
			r = exp_add(v, &t.cert, "trustpoint", t.name, now);
		for (k = 0; r == KH_OK && k < t.n_chain; k++)
			r = exp_add(v, &t.chain[k], "trustpoint-chain", t.name, now);
		for (k = 0; r == KH_OK && k < t.n_ca; k++)
			r = exp_add(v, &t.ca[k], "trustpoint-ca", t.name, now);
		store_tp_clear(&t);
		if (r != KH_OK)
			goto out;
	}
	KH_TRY(store_ts_names(s->pki->store, &stores, &nst, e));
	for (i = 0; i < nst; i++) {
		KH_TRY(store_ts_certs(s->pki->store, stores[i], &tc, &ntc, e));
		for (k = 0; r == KH_OK && k < ntc; k++)
			r = exp_add(v, &tc[k].der, "truststore", stores[i], now);
		store_ts_certs_free(tc, ntc);
		tc = NULL;
		ntc = 0;
		if (r != KH_OK)
			goto out;
	}
	KH_TRY(store_notices_list(s->pki->store, &no, &nno, e));
	for (i = 0; i < nno; i++)
		for (k = 0; k < v->n; k++)
			if (strcmp(v->c[k].cert.fingerprint, no[i].fingerprint) == 0) {
				v->c[k].last_notified = no[i].last_notified;
				v->c[k].notifications = no[i].count;
			}
	/* Notices of certificates keyhold no longer holds are forgotten. */
	for (i = 0; i < nno; i++) {
		bool held = false;

		for (k = 0; k < v->n && !held; k++)
			held = strcmp(v->c[k].cert.fingerprint, no[i].fingerprint) == 0;
		if (!held)
			KH_TRY(store_notice_remove(s->pki->store, no[i].fingerprint, e));
	}
out:
	store_ts_certs_free(tc, ntc);
	free(no);
	free(tps);
	free(stores);
	return r;
}

static enum kh_err exp_survey(struct svc *s, const struct svc_principal *who, int64_t now, struct exp_survey *v,
			      struct kh_errbuf *e)
{
	int r;

	pthread_mutex_lock(&s->pki->lock);
	r = exp_survey_locked(s, who, now, v, e);
	pthread_mutex_unlock(&s->pki->lock);
	return r;
}

static int exp_cmp(const void *a, const void *b)
{
	const struct svc_exp_cert *x = a, *y = b;

	if (x->cert.not_after != y->cert.not_after)
		return x->cert.not_after < y->cert.not_after ? -1 : 1;
	return strcmp(x->cert.fingerprint, y->cert.fingerprint);
}

/* ---- the hook ---- */

static void exp_held_by(const struct svc_exp_cert *c, char *out, size_t outsz)
{
	size_t i;

	out[0] = '\0';
	for (i = 0; i < c->n_held_by; i++) {
		size_t n = strlen(out);

		snprintf(out + n, outsz - n, "%s%s", i > 0 ? " " : "", c->held_by[i]);
	}
}

/* Runs the configured hook for c and waits for it (at most hook_timeout).
 *
 * DESIGN §9: no fork() after C_Initialize. A forked child would hold a copy
 * of the PKCS#11 module's state (sessions, locks, the TPM connection) that
 * it must never use (PKCS#11 v2.40 §6.7.1). posix_spawn() has vfork
 * semantics in glibc (clone(CLONE_VM|CLONE_VFORK) since 2.24, which is
 * what POSIX_SPAWN_USEVFORK asks for on older ones): the child shares our
 * memory only until it calls execve, runs none of our code and no
 * pthread_atfork handlers, and this worker thread waits until the exec.
 * Nothing of the token's state is duplicated into a live process. The
 * child gets /dev/null as stdin, our stderr as stdout and stderr, no other
 * descriptor (closefrom 3), default signal dispositions and mask, and an
 * environment of its own that describes the certificate. */
static void exp_run_hook(struct svc *s, const struct svc_exp_cert *c, const char *event, const char *detail)
{
	char *const *hook = s->cfg->exp_hook;
	char na[40], days[24], epoch[24], count[16], held[KH_HELD_BY_MAX * KH_HELD_BY_LEN];
	char env[13][KH_DN_MAX + 64];
	char *envp[14], *argv[32 + 6];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	pid_t pid = -1;
	size_t n = 0, i;
	uint64_t deadline;
	int rc, st = 0;

	if (hook == NULL)
		return;
	kh_time_format_rfc3339(c->cert.not_after, na, sizeof(na));
	snprintf(days, sizeof(days), "%lld", (long long)c->days_left);
	snprintf(epoch, sizeof(epoch), "%lld", (long long)c->cert.not_after);
	snprintf(count, sizeof(count), "%u", c->notifications + 1);
	exp_held_by(c, held, sizeof(held));
	for (i = 0; hook[i] != NULL && n < 32; i++)
		argv[n++] = hook[i];
	/* Appended: SUBJECT NOT_AFTER DAYS_LEFT HELD_BY FINGERPRINT. */
	argv[n++] = (char *)(uintptr_t)c->cert.subject;
	argv[n++] = na;
	argv[n++] = days;
	argv[n++] = held;
	argv[n++] = (char *)(uintptr_t)c->cert.fingerprint;
	argv[n] = NULL;
	snprintf(env[0], sizeof(env[0]), "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
	snprintf(env[1], sizeof(env[1]), "KEYHOLD_EVENT=%s", event);
	snprintf(env[2], sizeof(env[2]), "KEYHOLD_CERT_SUBJECT=%s", c->cert.subject);
	snprintf(env[3], sizeof(env[3]), "KEYHOLD_CERT_ISSUER=%s", c->cert.issuer);
	snprintf(env[4], sizeof(env[4]), "KEYHOLD_CERT_SERIAL=%s", c->cert.serial);
	snprintf(env[5], sizeof(env[5]), "KEYHOLD_CERT_FINGERPRINT=%s", c->cert.fingerprint);
	snprintf(env[6], sizeof(env[6]), "KEYHOLD_CERT_NOT_AFTER=%s", na);
	snprintf(env[7], sizeof(env[7]), "KEYHOLD_CERT_NOT_AFTER_EPOCH=%s", epoch);
	snprintf(env[8], sizeof(env[8]), "KEYHOLD_CERT_DAYS_LEFT=%s", days);
	snprintf(env[9], sizeof(env[9]), "KEYHOLD_CERT_HELD_BY=%.400s", held);
	snprintf(env[10], sizeof(env[10]), "KEYHOLD_NOTIFICATION=%s", count);
	snprintf(env[11], sizeof(env[11]), "LANG=C");
	/* renew-failed, revoked, revocation-unknown, crl-stale: what happened. */
	snprintf(env[12], sizeof(env[12]), "KEYHOLD_DETAIL=%.1000s", detail != NULL ? detail : "");
	for (i = 0; i < 13; i++)
		envp[i] = env[i];
	envp[13] = NULL;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE); /* keyholdd ignores it; the hook must not inherit that */
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGCHLD);
	if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, 2, 1) != 0 || posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0 ||
	    posix_spawnattr_setsigmask(&at, &none) != 0 || posix_spawnattr_setsigdefault(&at, &dfl) != 0 ||
	    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK) != 0) {
		log_err("expiry hook: cannot prepare the spawn");
		goto out;
	}
	rc = posix_spawn(&pid, hook[0], &fa, &at, argv, envp);
	if (rc != 0) {
		log_err("expiry hook %s: cannot run it: %s", hook[0], strerror(rc));
		pid = -1;
		goto out;
	}
	deadline = kh_now_mono_us() + (uint64_t)s->cfg->exp_hook_timeout_s * 1000000u;
	for (;;) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			log_err("expiry hook %s: waitpid: %s", hook[0], strerror(errno));
			goto out;
		}
		if (kh_now_mono_us() > deadline) {
			log_err("expiry hook %s: still running after %us; killed", hook[0], s->cfg->exp_hook_timeout_s);
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			goto out;
		}
		nanosleep(&ts, NULL);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		log_info("expiry hook %s: done for %s", hook[0], c->cert.fingerprint);
	else if (WIFEXITED(st))
		log_err("expiry hook %s: exit status %d for %s", hook[0], WEXITSTATUS(st), c->cert.fingerprint);
	else
		log_err("expiry hook %s: killed by signal %d for %s", hook[0], WIFSIGNALED(st) ? WTERMSIG(st) : 0,
			c->cert.fingerprint);
out:
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
}

void svc_expiry_hook(struct svc *s, const struct svc_exp_cert *c, const char *event, const char *detail)
{
	exp_run_hook(s, c, event, detail);
}

/* ---- the result lists ---- */

static void exp_line(char (**v)[KH_MONITOR_LINE_LEN], size_t *n, const char *fmt, ...) KH_PRINTF(3, 4);
static void exp_line(char (**v)[KH_MONITOR_LINE_LEN], size_t *n, const char *fmt, ...)
{
	char(*nv)[KH_MONITOR_LINE_LEN];
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

/* ---- renewal ---- */

struct exp_renewal {
	char name[KH_NAME_MAX + 1];
	enum kh_enrollment enrollment;
	bool regenerate;
	bool pending;                   /* a CSR or a rollover key awaits its certificate */
	uint32_t percent;
	int64_t not_after;              /* the certificate being renewed: the claim's version */
};

static enum kh_err exp_renewals_due(struct svc *s, int64_t now, struct exp_renewal **out, size_t *nout,
				    struct kh_errbuf *e)
{
	char (*tps)[KH_NAME_MAX + 1] = NULL;
	struct exp_renewal *v = NULL;
	size_t ntp = 0, n = 0, i;
	int r = KH_OK;

	pthread_mutex_lock(&s->pki->lock);
	KH_TRY(store_tp_names(s->pki->store, &tps, &ntp, e));
	v = calloc(ntp ? ntp : 1, sizeof(*v));
	KH_ENSURE(v != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < ntp; i++) {
		struct store_tp t;
		struct store_tp_policy p;
		X509 *x;
		int64_t at;

		memset(&t, 0, sizeof(t));
		KH_TRY(store_tp_get(s->pki->store, tps[i], &t, e));
		r = store_tp_policy_get(s->pki->store, tps[i], &p, e);
		x = r == KH_OK && p.renew_at > 0 && t.cert.len > 0 ? pki_x509_from_der(t.cert.data, t.cert.len) : NULL;
		if (x != NULL) {
			at = svc_pki_renew_after(pki_time(X509_get0_notBefore(x)), pki_time(X509_get0_notAfter(x)), p.renew_at);
			if (at != 0 && now >= at) {
				kh_strlcpy(v[n].name, t.name, sizeof(v[n].name));
				v[n].enrollment = t.enrollment;
				v[n].regenerate = p.renew_regenerate;
				v[n].pending = t.csr.len > 0 || t.next_key[0] != '\0';
				v[n].percent = p.renew_at;
				v[n].not_after = t.cert_not_after;
				n++;
			}
			X509_free(x);
		}
		store_tp_clear(&t);
		if (r != KH_OK)
			goto out;
	}
	*out = v;
	*nout = n;
	v = NULL;
out:
	pthread_mutex_unlock(&s->pki->lock);
	ERR_clear_error();
	free(v);
	free(tps);
	return r;
}

/* ACME: a new order (renew_acme.c); a failure goes to the hook as
 * renew-failed, with the certificate still in use. */
static void exp_renew_acme(struct svc *s, const struct exp_renewal *v, int64_t now, struct svc_exp_report *resp)
{
	struct svc_renew_acme o;
	struct svc_exp_cert c;
	char next[40];

	svc_renew_acme(s, v->name, v->regenerate, now, &o);
	kh_time_format_rfc3339(o.next, next, sizeof(next));
	switch (o.result) {
	case SVC_RENEW_DONE:
		log_info("trustpoint '%s': renewed by ACME at %u%% of its lifetime: new certificate %s", v->name,
			 v->percent, o.serial);
		exp_line(&resp->renewals, &resp->n_renewals, "%s: renewed by ACME: new certificate (serial %s)", v->name,
			 o.serial);
		break;
	case SVC_RENEW_WAIT:
		log_dbg("trustpoint '%s': ACME renewal waits until %s", v->name, next);
		break;
	case SVC_RENEW_FAILED:
		log_err("trustpoint '%s': ACME renewal at %u%% failed (%u in a row; next attempt %s): %s", v->name,
			v->percent, o.failures, next, o.error);
		exp_line(&resp->errors, &resp->n_errors, "%s: renewal failed (%u in a row; next attempt %s): %s", v->name,
			 o.failures, next, o.error);
		if (o.has_cert) {
			memset(&c, 0, sizeof(c));
			c.cert = o.cert;
			snprintf(c.held_by[0], sizeof(c.held_by[0]), "trustpoint:%s", v->name);
			c.n_held_by = 1;
			c.days_left = exp_days_left(o.cert.not_after, now);
			exp_run_hook(s, &c, "renew-failed", o.error);
		}
		break;
	}
}

/* No renewal twice: in one transaction the node checks that it still
 * holds the expiry role and claims this certificate's renewal
 * (cluster/cluster.h), so a node that lost the role mid-pass, or a second
 * node, leaves it alone. */
static bool exp_claim(struct svc *s, const struct exp_renewal *v, struct svc_exp_report *resp)
{
	char what[KH_NAME_MAX + 8], version[24];
	struct kh_errbuf e = { 0 };
	bool claimed = false;

	snprintf(what, sizeof(what), "renew:%s", v->name);
	snprintf(version, sizeof(version), "%lld", (long long)v->not_after);
	if (svc_cluster_claim(s, CLUSTER_ROLE_EXPIRY, what, version, &claimed, &e) != KH_OK) {
		log_err("trustpoint '%s': renewal not claimed: %s", v->name, e.msg);
		exp_line(&resp->errors, &resp->n_errors, "%s: renewal not claimed: %s", v->name, e.msg);
		return false;
	}
	if (!claimed)
		exp_line(&resp->renewals, &resp->n_renewals,
			 "%s: renewal left to the node holding the %s role (or already claimed by another node)", v->name,
			 CLUSTER_ROLE_EXPIRY);
	return claimed;
}

/* Re-issues (self) or stages a CSR (terminal) through the very functions
 * behind `trustpoint enroll` and `trustpoint regenerate`, so renewal
 * follows their rollover and crash-safety rules. */
static void exp_renew(struct svc *s, int64_t now, struct svc_exp_report *resp)
{
	struct exp_renewal *v = NULL;
	struct kh_errbuf e = { 0 };
	size_t n = 0, i;

	if (atomic_load(&s->state) != SVC_STATE_OPERATIONAL)
		return;
	if (exp_renewals_due(s, now, &v, &n, &e) != KH_OK) {
		log_err("renewal: %s", e.msg);
		exp_line(&resp->errors, &resp->n_errors, "renewal: %s", e.msg);
		return;
	}
	for (i = 0; i < n; i++) {
		struct svc_pki_enrolled a;
		struct kh_errbuf he = { 0 };
		int r;

		/* SCEP (enrollment url): RenewalReq by rpc/scep_poll.c's pass. */
		if (v[i].enrollment == KH_ENROLL_URL)
			continue;
		if (!exp_claim(s, &v[i], resp))
			continue;
		if (v[i].enrollment == KH_ENROLL_ACME) {
			exp_renew_acme(s, &v[i], now, resp);
			continue;
		}
		if (v[i].enrollment == KH_ENROLL_TERMINAL && v[i].pending) {
			log_dbg("trustpoint '%s': renewal pending (a CSR awaits its certificate)", v[i].name);
			continue;
		}
		memset(&a, 0, sizeof(a));
		if (v[i].regenerate)
			r = svc_pki_regenerate(s, v[i].name, KH_KEY_UNSPECIFIED, &a, &he);
		else
			r = svc_pki_enroll(s, v[i].name, &a, &he);
		if (r != KH_OK) {
			log_err("trustpoint '%s': renewal at %u%% failed: %s", v[i].name, v[i].percent, he.msg);
			exp_line(&resp->errors, &resp->n_errors, "%s: renewal failed: %s", v[i].name, he.msg);
		} else if (a.enrollment == KH_ENROLL_SELF) {
			log_info("trustpoint '%s': renewed at %u%% of its lifetime: new certificate %s with %s key '%s'",
				 v[i].name, v[i].percent, a.cert.serial, v[i].regenerate ? "new" : "the same",
				 a.key);
			exp_line(&resp->renewals, &resp->n_renewals, "%s: renewed: new certificate (serial %s) with %s key %s",
				 v[i].name, a.cert.serial, v[i].regenerate ? "new" : "the same", a.key);
		} else {
			log_warn("trustpoint '%s': renewal pending: crossed %u%% of its lifetime; a CSR for key '%s' is staged "
				 "(keyhold trustpoint show %s --csr); the current certificate stays in use until the new one "
				 "is imported",
				 v[i].name, v[i].percent, a.key, v[i].name);
			exp_line(&resp->renewals, &resp->n_renewals,
				 "%s: renewal pending: CSR staged for %s key %s (keyhold trustpoint show %s --csr)", v[i].name,
				 v[i].regenerate ? "new" : "the same", a.key, v[i].name);
		}
		svc_pki_enrolled_clear(&a);
	}
	free(v);
}

/* ---- a pass ---- */

static enum kh_err exp_pass(struct svc *s, struct svc_exp_report *resp, struct kh_errbuf *e)
{
	struct exp_survey v = { NULL, 0, 0 };
	int64_t now, window, every = (int64_t)s->cfg->exp_notify_every_s;
	size_t i, nn = 0;
	int r = KH_OK;

	memset(resp, 0, sizeof(*resp));
	pthread_mutex_lock(&exp_pass_lock);
	now = svc_now();
	exp_renew(s, now, resp);
	KH_TRY(exp_survey(s, NULL, now, &v, e));
	window = (int64_t)s->cfg->exp_notify_days * EXP_DAY;
	resp->notified = calloc(v.n ? v.n : 1, sizeof(*resp->notified));
	KH_ENSURE(resp->notified != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (v.n > 1)
		qsort(v.c, v.n, sizeof(*v.c), exp_cmp);
	for (i = 0; i < v.n; i++) {
		struct svc_exp_cert *c = &v.c[i];
		char held[KH_HELD_BY_MAX * KH_HELD_BY_LEN], na[40];
		bool expired = c->cert.not_after <= now;
		struct kh_errbuf ne = { 0 };

		if (c->cert.not_after - now > window)
			continue;
		/* Once per period: the period starts at the last notice. */
		if (c->notifications > 0 && now - c->last_notified < every)
			continue;
		exp_held_by(c, held, sizeof(held));
		kh_time_format_rfc3339(c->cert.not_after, na, sizeof(na));
		if (expired)
			log_warn("certificate EXPIRED %lld day(s) ago: '%s' (not after %s, SHA-256 %s), held by %s",
				 (long long)-c->days_left, c->cert.subject, na, c->cert.fingerprint, held);
		else
			log_warn("certificate expires in %lld day(s): '%s' (not after %s, SHA-256 %s), held by %s",
				 (long long)c->days_left, c->cert.subject, na, c->cert.fingerprint, held);
		exp_run_hook(s, c, expired ? "expired" : "expiring", NULL);
		pthread_mutex_lock(&s->pki->lock);
		r = store_notice_put(s->pki->store, c->cert.fingerprint, c->cert.subject, c->cert.not_after, now, &ne);
		pthread_mutex_unlock(&s->pki->lock);
		if (r != KH_OK) {
			/* Not remembered: the next pass notifies again. */
			exp_line(&resp->errors, &resp->n_errors, "%s: %s", c->cert.fingerprint, ne.msg);
			r = KH_OK;
		}
		c->last_notified = now;
		c->notifications++;
		resp->notified[nn++] = *c;
	}
	resp->n_notified = nn;
out:
	pthread_mutex_unlock(&exp_pass_lock);
	exp_survey_clear(&v);
	if (r != KH_OK)
		svc_exp_report_clear(resp);
	return r;
}

/* ---- the timer: a periodic job with the expiry role's lease ---- */

static void exp_job_pass(void *arg)
{
	struct svc *s = arg;
	struct svc_exp_report resp;
	struct kh_errbuf e = { 0 };

	if (exp_pass(s, &resp, &e) != KH_OK)
		log_err("expiry monitor: %s", e.msg);
	else
		log_dbg("expiry monitor: %zu notified, %zu renewal action(s), %zu error(s)", resp.n_notified,
			resp.n_renewals, resp.n_errors);
	svc_exp_report_clear(&resp);
}

static void exp_log_settings(const struct svc *s)
{
	log_info("expiry monitor: every %us (on the node holding the %s role), notify %u days ahead, at most once "
		 "per %us per certificate%s%s",
		 s->cfg->exp_check_interval_s, CLUSTER_ROLE_EXPIRY, s->cfg->exp_notify_days, s->cfg->exp_notify_every_s,
		 s->cfg->exp_hook != NULL ? ", hook " : "", s->cfg->exp_hook != NULL ? s->cfg->exp_hook[0] : "");
}

enum kh_err svc_expiry_start(struct svc *s, struct event_base *base, struct kh_errbuf *e)
{
	struct cluster_job_def d = { "expiry monitor", CLUSTER_ROLE_EXPIRY, NULL, exp_job_pass, s };
	struct timeval tv = { (time_t)s->cfg->exp_check_interval_s, 0 };

	int r = cluster_job_start(s, base, &d, tv, &s->expiry, e);

	if (r == KH_OK)
		exp_log_settings(s);
	return r;
}

void svc_expiry_reschedule(struct svc *s)
{
	struct timeval tv = { (time_t)s->cfg->exp_check_interval_s, 0 };

	if (s->expiry == NULL)
		return;
	cluster_job_rearm(s->expiry, tv);
	exp_log_settings(s);
}

void svc_expiry_stop(struct svc *s)
{
	if (s == NULL)
		return;
	cluster_job_free(s->expiry);
	s->expiry = NULL;
}

/* ---- for the RPCs (rpc/h_expiry.c) ---- */

void svc_exp_report_clear(struct svc_exp_report *r)
{
	if (r == NULL)
		return;
	free(r->notified);
	free(r->renewals);
	free(r->errors);
	memset(r, 0, sizeof(*r));
}

enum kh_err svc_expiry_survey(struct svc *s, const struct svc_principal *who, int64_t now,
			      struct svc_exp_cert **out, size_t *nout, struct kh_errbuf *e)
{
	struct exp_survey v = { NULL, 0, 0 };
	int r = exp_survey(s, who, now, &v, e);

	if (r != KH_OK) {
		exp_survey_clear(&v);
		return r;
	}
	if (v.n > 1)
		qsort(v.c, v.n, sizeof(*v.c), exp_cmp);
	*out = v.c;
	*nout = v.n;
	return KH_OK;
}

enum kh_err svc_expiry_pass(struct svc *s, struct svc_exp_report *out, struct kh_errbuf *e)
{
	return exp_pass(s, out, e);
}
