/* metrics_http.c: the [metrics] listener. libevent's evhttp parses HTTP on
 * keyholdd's own loop, bounded (headers, body, timeout); this file only
 * dispatches on method and path and renders the answer:
 *   GET|HEAD /metrics  the Prometheus text exposition format 0.0.4
 *   GET|HEAD /healthz  200 "ok" when OPERATIONAL and the token answered the
 *                      last probe, recently; 503 and the reason otherwise
 *   anything else      404 (another method: 405 with Allow)
 * Every value comes from atomics or the probe's snapshot: a request never
 * waits for the token. docs/OPERATIONS.md lists the metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "audit/audit.h"
#include "core/svc.h"
#include "core/svc_metrics.h"
#include "config/config.h"
#include "kh_log.h"
#include "kh_util.h"
#include "metrics/metrics.h"
#include "metrics/metrics_int.h"
#include "net/net.h"
#include "pool/pool.h"
#include "proto.h"

#define METRICS_MAX_HEADERS 8192    /* request line and headers */
#define METRICS_MAX_BODY 1024       /* GET and HEAD carry none */
#define METRICS_TIMEOUT_S 10
/* /healthz: a probe older than this many intervals means the token (or
 * every worker) is wedged. */
#define METRICS_PROBE_STALE 3

_Static_assert(PROTO_M_COUNT < SVC_METRICS_NO_METHOD, "SVC_METRICS_METHODS is too small for the methods");

/* ---- the exposition format ---- */

/* A label value: \ " and newline escaped (format 0.0.4); bytes that are
 * not valid UTF-8 become '?', since Prometheus refuses such a value. */
static void metrics_label(struct evbuffer *b, const char *v)
{
	const unsigned char *p = (const unsigned char *)v;

	while (*p != '\0') {
		size_t n = 0, i;

		if (*p == '\\' || *p == '"') {
			evbuffer_add_printf(b, "\\%c", *p);
			p++;
			continue;
		}
		if (*p == '\n') {
			evbuffer_add(b, "\\n", 2);
			p++;
			continue;
		}
		if (*p < 0x80)
			n = 1;
		else if (*p >= 0xc2 && *p <= 0xdf)
			n = 2;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 3;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 4;
		for (i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				n = 0;
		if (n == 0) {
			evbuffer_add(b, "?", 1);
			p++;
			continue;
		}
		evbuffer_add(b, p, n);
		p += n;
	}
}

static void metrics_family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A histogram's series; labels: `name="value"` pairs already escaped, or
 * "" for none. */
static void metrics_hist(struct evbuffer *b, const char *name, const char *labels, const struct svc_hist *h)
{
	uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
	size_t i;

	for (i = 0; i < SVC_METRICS_BUCKETS; i++) {
		uint64_t c = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);

		/* Relaxed reads may see a bucket ahead of the count. */
		if (c > count)
			count = c;
		evbuffer_add_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, labels[0] ? "," : "",
				    (double)svc_metrics_bounds_us[i] / 1e6, (unsigned long long)c);
	}
	evbuffer_add_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, labels[0] ? "," : "",
			    (unsigned long long)count);
	evbuffer_add_printf(b, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
			    (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6);
	evbuffer_add_printf(b, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
			    (unsigned long long)count);
}

static const char *metrics_method_name(size_t i)
{
	return i < PROTO_M_COUNT ? proto_method_name((enum proto_method)i) : "-";
}

static void metrics_requests(struct evbuffer *b, struct svc_metrics *sm)
{
	char labels[96];
	size_t i, c;

	metrics_family(b, "keyhold_requests_total", "counter",
		       "Requests answered, by method and gRPC status code (method \"-\": refused before it was known).");
	for (i = 0; i < SVC_METRICS_METHODS; i++)
		for (c = 0; c < SVC_METRICS_CODES; c++) {
			uint64_t n = atomic_load_explicit(&sm->requests[i][c], memory_order_relaxed);

			if (n > 0)
				evbuffer_add_printf(b, "keyhold_requests_total{method=\"%s\",code=\"%s\"} %llu\n",
						    metrics_method_name(i), kh_err_name(-(int)c), (unsigned long long)n);
		}
	metrics_family(b, "keyhold_request_duration_seconds", "histogram",
		       "Time from dispatch to answer on a worker, by method (checks, token, audit record).");
	for (i = 0; i < SVC_METRICS_METHODS; i++) {
		if (atomic_load_explicit(&sm->latency[i].count, memory_order_relaxed) == 0)
			continue;
		snprintf(labels, sizeof(labels), "method=\"%s\"", metrics_method_name(i));
		metrics_hist(b, "keyhold_request_duration_seconds", labels, &sm->latency[i]);
	}
	metrics_family(b, "keyhold_rate_limited_total", "counter",
		       "Requests refused because their principal was over its [service] rate.");
	evbuffer_add_printf(b, "keyhold_rate_limited_total %llu\n",
			    (unsigned long long)atomic_load_explicit(&sm->rate_refused, memory_order_relaxed));
}

static void metrics_token_ops(struct evbuffer *b, struct svc_metrics *sm)
{
	char labels[128], mech[48];
	size_t i;

	metrics_family(b, "keyhold_token_operation_duration_seconds", "histogram",
		       "Time the token took per call, by operation and PKCS#11 mechanism.");
	for (i = 0; i < SVC_METRICS_OPS; i++) {
		const struct svc_metrics_op *o = &sm->ops[i];

		if (!atomic_load_explicit(&o->used, memory_order_acquire))
			continue;
		snprintf(labels, sizeof(labels), "op=\"%s\",mechanism=\"%s\"", o->op,
			 strcmp(o->op, "random") == 0 || strcmp(o->op, "other") == 0
				 ? "none"
				 : hsm_mech_name(o->mech, mech, sizeof(mech)));
		metrics_hist(b, "keyhold_token_operation_duration_seconds", labels, &o->hist);
	}
	metrics_family(b, "keyhold_token_operation_errors_total", "counter",
		       "Token calls that did not answer CKR_OK, by operation and mechanism.");
	for (i = 0; i < SVC_METRICS_OPS; i++) {
		const struct svc_metrics_op *o = &sm->ops[i];

		if (!atomic_load_explicit(&o->used, memory_order_acquire))
			continue;
		evbuffer_add_printf(b, "keyhold_token_operation_errors_total{op=\"%s\",mechanism=\"%s\"} %llu\n", o->op,
				    strcmp(o->op, "random") == 0 || strcmp(o->op, "other") == 0
					    ? "none"
					    : hsm_mech_name(o->mech, mech, sizeof(mech)),
				    (unsigned long long)atomic_load_explicit(&o->errors, memory_order_relaxed));
	}
}

/* The labels of a certificate held as held_by ("trustpoint:web",
 * "trustpoint-chain:web", "trustpoint-ca:web", "truststore:NAME"):
 * trustpoint, store, role, subject, fingerprint. */
static void metrics_cert_labels(struct evbuffer *b, const char *held_by, const char *subject, const char *fp)
{
	const char *colon = strchr(held_by, ':');
	size_t kl = colon != NULL ? (size_t)(colon - held_by) : 0;
	bool store = kl == 10 && strncmp(held_by, "truststore", kl) == 0;
	const char *role = store ? "truststore-ca"
			   : kl == 10 && strncmp(held_by, "trustpoint", kl) == 0 ? "identity"
			   : kl == 16 && strncmp(held_by, "trustpoint-chain", kl) == 0 ? "chain"
										 : "trustpoint-ca";
	const char *owner = colon != NULL ? colon + 1 : held_by;

	evbuffer_add_printf(b, "trustpoint=\"");
	if (!store)
		metrics_label(b, owner);
	evbuffer_add_printf(b, "\",store=\"");
	if (store)
		metrics_label(b, owner);
	evbuffer_add_printf(b, "\",role=\"%s\",subject=\"", role);
	metrics_label(b, subject);
	evbuffer_add_printf(b, "\",fingerprint=\"");
	metrics_label(b, fp);
	evbuffer_add_printf(b, "\"");
}

/* One series per certificate and holder: a certificate two trustpoints
 * hold is listed under both. */
static void metrics_certs(struct evbuffer *b, const struct metrics_snap *sn)
{
	size_t i, k;

	metrics_family(b, "keyhold_certificate_not_after_seconds", "gauge",
		       "notAfter of every certificate keyhold holds (Unix time), by holder and role.");
	for (i = 0; i < sn->n_certs; i++) {
		const struct svc_exp_cert *c = &sn->certs[i];

		for (k = 0; k < c->n_held_by; k++) {
			evbuffer_add_printf(b, "keyhold_certificate_not_after_seconds{");
			metrics_cert_labels(b, c->held_by[k], c->cert.subject, c->cert.fingerprint);
			evbuffer_add_printf(b, "} %lld\n", (long long)c->cert.not_after);
		}
	}
	metrics_family(b, "keyhold_certificate_revoked", "gauge",
		       "1 when a CRL imported into a trust store lists the certificate, 0 when one answers for it "
		       "and does not; absent when no held CRL answers for it.");
	for (i = 0; i < sn->n_rev; i++) {
		const struct svc_rev_known *v = &sn->rev[i];
		const char *subject = "";

		for (k = 0; k < sn->n_certs; k++)
			if (strcmp(sn->certs[k].cert.fingerprint, v->fingerprint) == 0)
				subject = sn->certs[k].cert.subject;
		evbuffer_add_printf(b, "keyhold_certificate_revoked{");
		metrics_cert_labels(b, v->held_by, subject, v->fingerprint);
		evbuffer_add_printf(b, ",crl_store=\"");
		metrics_label(b, v->crl_store);
		evbuffer_add_printf(b, "\"} %d\n", v->revoked);
	}
	metrics_family(b, "keyhold_certificate_survey_timestamp_seconds", "gauge",
		       "When the certificates above were last surveyed (keyhold's clock, Unix time).");
	evbuffer_add_printf(b, "keyhold_certificate_survey_timestamp_seconds %lld\n", (long long)sn->survey_s);
}

static void metrics_render(struct metrics_http *m, struct evbuffer *b)
{
	struct svc *s = m->s;
	struct metrics_snap sn;
	enum svc_state st = (enum svc_state)atomic_load(&s->state);
	uint64_t now = kh_now_mono_us();
	static const enum svc_state states[] = { SVC_STATE_INIT, SVC_STATE_SELF_TEST, SVC_STATE_OPERATIONAL,
						 SVC_STATE_ERROR };
	bool token_up;
	size_t i;

	metrics_snap_get(m, &sn);
	token_up = sn.probed && sn.probe_ok &&
		   now - sn.probe_mono_us <= (uint64_t)METRICS_PROBE_STALE * m->probe_interval_s * 1000000u;

	metrics_family(b, "keyhold_build_info", "gauge", "keyholdd's version.");
	evbuffer_add_printf(b, "keyhold_build_info{version=\"%s\"} 1\n", KEYHOLD_VERSION);
	metrics_family(b, "keyhold_uptime_seconds", "gauge", "Seconds since keyholdd started.");
	evbuffer_add_printf(b, "keyhold_uptime_seconds %.3f\n", (double)(now - s->start_us) / 1e6);
	metrics_family(b, "keyhold_state", "gauge", "The service state (1 for the current one).");
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		evbuffer_add_printf(b, "keyhold_state{state=\"%s\"} %d\n", svc_state_name(states[i]), states[i] == st);

	if (s->metrics != NULL) {
		metrics_requests(b, s->metrics);
		metrics_token_ops(b, s->metrics);
	}

	metrics_family(b, "keyhold_token_up", "gauge",
		       "1 when the token answered keyholdd's last probe and that probe is recent.");
	evbuffer_add_printf(b, "keyhold_token_up %d\n", token_up);
	metrics_family(b, "keyhold_token_probe_age_seconds", "gauge",
		       "Seconds since the last token probe finished (-1: none yet).");
	if (sn.probed)
		evbuffer_add_printf(b, "keyhold_token_probe_age_seconds %.3f\n", (double)(now - sn.probe_mono_us) / 1e6);
	else
		evbuffer_add_printf(b, "keyhold_token_probe_age_seconds -1\n");
	metrics_family(b, "keyhold_token_probe_duration_seconds", "gauge", "How long the last token probe took.");
	evbuffer_add_printf(b, "keyhold_token_probe_duration_seconds %.6f\n", (double)sn.probe_us / 1e6);
	metrics_family(b, "keyhold_token_transitions_total", "counter",
		       "Times the token became available (up, the first attach included) or went away (down).");
	evbuffer_add_printf(b, "keyhold_token_transitions_total{to=\"up\"} %llu\n",
			    (unsigned long long)sn.token.went_up);
	evbuffer_add_printf(b, "keyhold_token_transitions_total{to=\"down\"} %llu\n",
			    (unsigned long long)sn.token.went_down);
	metrics_family(b, "keyhold_token_sessions", "gauge", "Token sessions in keyhold's pool, in use or idle.");
	evbuffer_add_printf(b, "keyhold_token_sessions{state=\"in_use\"} %u\n",
			    sn.token.sessions >= sn.token.idle ? sn.token.sessions - sn.token.idle : 0);
	evbuffer_add_printf(b, "keyhold_token_sessions{state=\"idle\"} %u\n", sn.token.idle);

	{
		struct hsm_lock_stats ls;

		hsm_lock_stats(&ls);
		metrics_family(b, "keyhold_token_lock_mutexes", "gauge",
			       "Mutexes the token's library holds from keyholdd ([token] lock_spin_us; 0: it uses its own).");
		evbuffer_add_printf(b, "keyhold_token_lock_mutexes %llu\n", (unsigned long long)ls.mutexes);
		metrics_family(b, "keyhold_token_lock_waits_total", "counter",
			       "Acquisitions of those mutexes that found them held: won while spinning, or after sleeping.");
		evbuffer_add_printf(b, "keyhold_token_lock_waits_total{how=\"spin\"} %llu\n", (unsigned long long)ls.spun);
		evbuffer_add_printf(b, "keyhold_token_lock_waits_total{how=\"sleep\"} %llu\n",
				    (unsigned long long)ls.slept);
	}
	metrics_family(b, "keyhold_workers", "gauge", "Worker threads.");
	evbuffer_add_printf(b, "keyhold_workers %u\n", s->workers);
	metrics_family(b, "keyhold_worker_queue_depth", "gauge", "Jobs queued for a worker and not yet started.");
	evbuffer_add_printf(b, "keyhold_worker_queue_depth %u\n", svc_pool_pending(s->pool));
	metrics_family(b, "keyhold_requests_in_flight", "gauge", "Requests on the workers not yet answered.");
	evbuffer_add_printf(b, "keyhold_requests_in_flight %u\n",
			    s->server != NULL ? svc_server_inflight(s->server) : 0);
	metrics_family(b, "keyhold_connections", "gauge", "Client connections open (Unix socket and TLS).");
	evbuffer_add_printf(b, "keyhold_connections %u\n", atomic_load(&s->connections));

	metrics_family(b, "keyhold_selftest_passed", "gauge",
		       "1 when every power-up self-test of the last run passed, 0 when one failed (absent: none ran).");
	if (sn.selftests > 0)
		evbuffer_add_printf(b, "keyhold_selftest_passed %d\n", sn.selftests_failed == 0);
	metrics_family(b, "keyhold_selftest_last_run_timestamp_seconds", "gauge",
		       "When the last self-test run finished (Unix time; 0: none).");
	evbuffer_add_printf(b, "keyhold_selftest_last_run_timestamp_seconds %llu\n",
			    (unsigned long long)sn.selftest_last_s);

	if (s->audit != NULL) {
		uint64_t records, checkpoints;

		/* Lock-free counters: read here, not through the probe. */
		audit_counts(s->audit, &records, &checkpoints);
		metrics_family(b, "keyhold_audit_records_total", "counter",
			       "Records this keyholdd wrote to the audit log.");
		evbuffer_add_printf(b, "keyhold_audit_records_total %llu\n", (unsigned long long)records);
		metrics_family(b, "keyhold_audit_checkpoints_total", "counter",
			       "Signed checkpoints this keyholdd wrote to the audit log.");
		evbuffer_add_printf(b, "keyhold_audit_checkpoints_total %llu\n", (unsigned long long)checkpoints);
	}
	metrics_certs(b, &sn);
	metrics_snap_clear(&sn);
}

/* ---- /healthz ---- */

bool metrics_healthy(struct svc *s, char *why, size_t whysz)
{
	struct metrics_http *m = s->metrics_http;
	enum svc_state st = (enum svc_state)atomic_load(&s->state);
	uint64_t now = kh_now_mono_us(), stale;
	struct metrics_snap sn;
	bool ok = false;

	if (st != SVC_STATE_OPERATIONAL) {
		snprintf(why, whysz, "state %s", svc_state_name(st));
		return false;
	}
	if (m == NULL)
		return true;
	stale = (uint64_t)METRICS_PROBE_STALE * m->probe_interval_s * 1000000u;
	metrics_snap_get(m, &sn);
	if (!sn.probed)
		snprintf(why, whysz, "the token has not been probed yet");
	else if (now - sn.probe_mono_us > stale)
		snprintf(why, whysz, "the token probe has not finished for %llu s (token or workers wedged)",
			 (unsigned long long)((now - sn.probe_mono_us) / 1000000u));
	else if (!sn.probe_ok)
		snprintf(why, whysz, "token: %s", sn.probe_err);
	else
		ok = true;
	metrics_snap_clear(&sn);
	return ok;
}

uint64_t metrics_probe_age_us(struct svc *s)
{
	struct metrics_http *m = s->metrics_http;
	uint64_t last;

	if (m == NULL)
		return 0;
	pthread_mutex_lock(&m->lock);
	last = m->snap.probed ? m->snap.probe_mono_us : m->started_us;
	pthread_mutex_unlock(&m->lock);
	return kh_now_mono_us() - last;
}

/* ---- requests ---- */

static void metrics_reply_text(struct evhttp_request *req, int code, const char *reason, const char *ctype,
			       struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

static void metrics_request_cb(struct evhttp_request *req, void *arg)
{
	struct metrics_http *m = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *b = evbuffer_new();
	char why[256];

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (path == NULL || (strcmp(path, "/metrics") != 0 && strcmp(path, "/healthz") != 0)) {
		evbuffer_add_printf(b, "not found; try /metrics or /healthz\n");
		metrics_reply_text(req, HTTP_NOTFOUND, "Not Found", "text/plain; charset=utf-8", b);
	} else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		evbuffer_add_printf(b, "method not allowed; use GET or HEAD\n");
		metrics_reply_text(req, HTTP_BADMETHOD, "Method Not Allowed", "text/plain; charset=utf-8", b);
	} else if (strcmp(path, "/metrics") == 0) {
		metrics_render(m, b);
		metrics_reply_text(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
	} else if (metrics_healthy(m->s, why, sizeof(why))) {
		evbuffer_add_printf(b, "ok\n");
		metrics_reply_text(req, HTTP_OK, "OK", "text/plain; charset=utf-8", b);
	} else {
		evbuffer_add_printf(b, "%s\n", why);
		metrics_reply_text(req, 503, "Service Unavailable", "text/plain; charset=utf-8", b);
	}
	evbuffer_free(b);
}

/* ---- start and stop ---- */

void metrics_token_observer(void *arg, const char *op, unsigned long mech, uint64_t duration_us, bool ok)
{
	struct svc *s = arg;

	svc_metrics_token_op(s->metrics, op, mech, duration_us, ok);
}

enum kh_err metrics_start(struct svc *s, struct event_base *base, struct kh_errbuf *e)
{
	const struct svc_config *cfg = s->cfg;
	struct metrics_http *m = NULL;
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int one = 1, r = KH_OK;

	if (!cfg->metrics_listen && s->watchdog_us == 0)
		return KH_OK;
	m = calloc(1, sizeof(*m));
	KH_ENSURE(m != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	pthread_mutex_init(&m->lock, NULL);
	m->s = s;
	s->metrics_http = m;
	/* The watchdog wants a probe that finished within its interval: probe
	 * at least four times per interval. */
	m->probe_interval_s = cfg->metrics_probe_interval_s;
	if (s->watchdog_us > 0 && (uint64_t)m->probe_interval_s * 4000000u > s->watchdog_us) {
		m->probe_interval_s = (unsigned)(s->watchdog_us / 4000000u);
		if (m->probe_interval_s == 0)
			m->probe_interval_s = 1;
	}
	KH_TRY(metrics_probe_start(m, base, e));
	if (!cfg->metrics_listen) {
		log_info("token probe every %us (for the watchdog)", m->probe_interval_s);
		goto out;
	}
	m->http = evhttp_new(base);
	KH_ENSURE(m->http != NULL, kh_err_set(e, KH_E_INTERNAL, "metrics: cannot create the HTTP server"));
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, METRICS_MAX_BODY);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	/* Every method evhttp knows reaches the callback, which answers 405
	 * for all but GET and HEAD (evhttp's own refusal is a bare 501). */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
						    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(m->http, metrics_request_cb, m);
	bs = evhttp_bind_socket_with_handle(m->http, cfg->metrics_host, (ev_uint16_t)cfg->metrics_port);
	KH_ENSURE(bs != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "[metrics] cannot listen on %s port %u",
					 cfg->metrics_host, cfg->metrics_port));
	/* Accepted connections inherit TCP_NODELAY (Linux): without it a
	 * keep-alive scrape (Prometheus keeps its connection) waits ~40 ms for
	 * the delayed ACK of the previous answer's last segment. */
	if (setsockopt(evhttp_bound_socket_get_fd(bs), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		log_warn("metrics: TCP_NODELAY: %s", strerror(errno));
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
		m->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						   : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	/* Tests read the port from this line when they asked for port 0. */
	log_info("metrics: HTTP listening on %s port %u (/metrics, /healthz%s; token probe every %us)",
		 cfg->metrics_host, m->port, cfg->metrics_loopback ? ", loopback" : ", NOT loopback: allow_remote",
		 m->probe_interval_s);
out:
	return r;
}

void metrics_stop(struct svc *s)
{
	struct metrics_http *m = s->metrics_http;

	if (m == NULL)
		return;
	metrics_probe_stop(m);
	if (m->http != NULL)
		evhttp_free(m->http);
	pthread_mutex_destroy(&m->lock);
	metrics_snap_clear(&m->snap);
	free(m);
	s->metrics_http = NULL;
}
