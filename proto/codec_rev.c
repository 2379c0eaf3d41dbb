/* codec_rev.c: protobuf <-> validated structs for the revocation, expiry
 * monitoring and renewal RPCs (CheckCertificate, SetTrustpointPolicy,
 * SetTruststorePolicy, ListExpiring, RunMonitor). Server decoders check
 * every name, URL, length and enum; byte payloads are handed over. */
#include <stdlib.h>
#include <string.h>

#include "codec_util.h"
#include "codec_pki.h"
#include "codec_rev.h"
#include "keyhold.pb-c.h"
#include "kh_util.h"

#define PB(x) Keyhold__V1__##x
#define S(x) ((char *)(uintptr_t)(x))

/* ---- field validation (server side) ---- */

static enum kh_err cr_url(const char *in, char out[KH_URL_MAX + 1], struct kh_errbuf *e)
{
	int r = proto_check_text(in, out, KH_URL_MAX + 1, "the OCSP URL", e);

	if (r == KH_OK && !kh_url_valid(out))
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
			       "the OCSP URL must be an http:// URL (keyhold fetches no https, ldap or file URLs)");
	return r;
}

static enum kh_rev_status cr_status(int v)
{
	return v >= 0 && v <= KH_REV_STATUS_MAX ? (enum kh_rev_status)v : KH_REV_UNKNOWN;
}

/* ---- CertInfo ---- */

/* ---- CheckCertificate ---- */

enum kh_err proto_rev_dec_check_cert(const ProtobufCMessage *cm, union proto_req_body *b, struct kh_errbuf *e)
{
	PB(CheckCertificateRequest) *p = (PB(CheckCertificateRequest) *)(uintptr_t)cm;
	struct kh_cert_check_req *q = &b->cert_check;
	int r = KH_OK;

	KH_TRY(proto_check_name(p->store, q->store, "trust store", e));
	KH_TRY(proto_take_blob(&p->cert, &q->cert, true, "the certificate", e));
	KH_TRY(proto_take_blob(&p->untrusted, &q->untrusted, false, "the untrusted certificates", e));
out:
	if (r != KH_OK)
		kh_cert_check_req_clear(q);
	return r;
}

enum kh_err proto_rev_enc_req_check_cert(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(CheckCertificateRequest) m = KEYHOLD__V1__CHECK_CERTIFICATE_REQUEST__INIT;
	const struct kh_cert_check_req *q = &b->cert_check;

	m.store = S(q->store);
	m.cert.data = q->cert.data;
	m.cert.len = q->cert.len;
	m.untrusted.data = q->untrusted.data;
	m.untrusted.len = q->untrusted.len;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_rev_enc_resp_check_cert(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	PB(CheckCertificateResponse) m = KEYHOLD__V1__CHECK_CERTIFICATE_RESPONSE__INIT;
	const struct kh_cert_check_resp *q = &b->cert_check;
	size_t n = q->n_certs, i;
	PB(CertRevocation) *v = calloc(n ? n : 1, sizeof(*v));
	PB(CertRevocation) **p = calloc(n ? n : 1, sizeof(*p));
	PB(CertInfo) *ci = calloc(n ? n : 1, sizeof(*ci));
	int r = KH_E_RESOURCE_EXHAUSTED;

	if (v == NULL || p == NULL || ci == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		const struct kh_cert_rev *c = &q->certs[i];

		keyhold__v1__cert_revocation__init(&v[i]);
		proto_pb_cert(&c->cert, &ci[i]);
		v[i].cert = &ci[i];
		v[i].status = (PB(RevocationStatus))c->status;
		v[i].reason = S(c->reason);
		v[i].revoked_at = c->revoked_at;
		v[i].method = S(c->method);
		v[i].source = S(c->source);
		v[i].detail = S(c->detail);
		p[i] = &v[i];
	}
	m.status = (PB(RevocationStatus))q->status;
	m.reason = S(q->reason);
	m.policy = S(q->policy);
	m.soft_fail = q->soft_fail;
	m.n_certs = n;
	m.certs = p;
	m.detail = S(q->detail);
	r = proto_pack_msg(&m.base, out, len);
out:
	free(v);
	free(p);
	free(ci);
	return r;
}

enum kh_err proto_rev_dec_resp_check_cert(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(CheckCertificateResponse) *p = (const void *)cm;
	struct kh_cert_check_resp *q = &b->cert_check;
	size_t i;

	(void)e;
	memset(b, 0, sizeof(*b));
	q->status = cr_status((int)p->status);
	proto_cstr(q->reason, sizeof(q->reason), p->reason);
	proto_cstr(q->policy, sizeof(q->policy), p->policy);
	q->soft_fail = p->soft_fail;
	proto_cstr(q->detail, sizeof(q->detail), p->detail);
	q->certs = calloc(p->n_certs ? p->n_certs : 1, sizeof(*q->certs));
	if (q->certs == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < p->n_certs; i++) {
		const PB(CertRevocation) *x = p->certs[i];
		struct kh_cert_rev *y = &q->certs[i];

		proto_cert_from(x->cert, &y->cert);
		y->status = cr_status((int)x->status);
		proto_cstr(y->reason, sizeof(y->reason), x->reason);
		y->revoked_at = x->revoked_at;
		proto_cstr(y->method, sizeof(y->method), x->method);
		proto_cstr(y->source, sizeof(y->source), x->source);
		proto_cstr(y->detail, sizeof(y->detail), x->detail);
	}
	q->n_certs = p->n_certs;
	return KH_OK;
}

/* ---- SetTrustpointPolicy (answered with GetTrustpointResponse) ---- */

enum kh_err proto_rev_dec_tp_policy(const ProtobufCMessage *cm, union proto_req_body *b, struct kh_errbuf *e)
{
	const PB(SetTrustpointPolicyRequest) *p = (const void *)cm;
	struct kh_tp_policy_req *q = &b->tp_policy;
	int r = KH_OK;

	KH_TRY(proto_check_name(p->name, q->name, "trustpoint", e));
	q->set_revocation = p->set_revocation;
	KH_TRY(proto_check_text(p->revocation, q->revocation, sizeof(q->revocation), "the revocation list", e));
	q->set_ocsp_url = p->set_ocsp_url;
	KH_TRY(cr_url(p->ocsp_url, q->ocsp_url, e));
	q->set_renew = p->set_renew;
	KH_ENSURE(p->renew_at <= 99,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "renew-at is a percent of the lifetime from 1 to 99 (0: off), not %u",
			     p->renew_at));
	q->renew_at = p->renew_at;
	q->renew_regenerate = p->renew_regenerate;
	KH_ENSURE(q->set_revocation || q->set_ocsp_url || q->set_renew,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "nothing to set: give a revocation list, an OCSP URL or renew-at"));
out:
	return r;
}

enum kh_err proto_rev_enc_req_tp_policy(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(SetTrustpointPolicyRequest) m = KEYHOLD__V1__SET_TRUSTPOINT_POLICY_REQUEST__INIT;
	const struct kh_tp_policy_req *q = &b->tp_policy;

	m.name = S(q->name);
	m.set_revocation = q->set_revocation;
	m.revocation = S(q->revocation);
	m.set_ocsp_url = q->set_ocsp_url;
	m.ocsp_url = S(q->ocsp_url);
	m.set_renew = q->set_renew;
	m.renew_at = q->renew_at;
	m.renew_regenerate = q->renew_regenerate;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_rev_enc_resp_tp_policy(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	return proto_pki_enc_resp_get_tp(b, out, len);
}

enum kh_err proto_rev_dec_resp_tp_policy(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	return proto_pki_dec_resp_get_tp(cm, b, e);
}

/* ---- SetTruststorePolicy ---- */

enum kh_err proto_rev_dec_ts_policy(const ProtobufCMessage *cm, union proto_req_body *b, struct kh_errbuf *e)
{
	const PB(SetTruststorePolicyRequest) *p = (const void *)cm;
	struct kh_ts_policy_req *q = &b->ts_policy;
	int r = KH_OK;

	KH_TRY(proto_check_name(p->store, q->store, "trust store", e));
	q->set_revocation = p->set_revocation;
	KH_TRY(proto_check_text(p->revocation, q->revocation, sizeof(q->revocation), "the revocation list", e));
	q->set_ocsp_url = p->set_ocsp_url;
	KH_TRY(cr_url(p->ocsp_url, q->ocsp_url, e));
	KH_ENSURE(q->set_revocation || q->set_ocsp_url,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "nothing to set: give a revocation list or an OCSP URL"));
out:
	return r;
}

enum kh_err proto_rev_enc_req_ts_policy(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(SetTruststorePolicyRequest) m = KEYHOLD__V1__SET_TRUSTSTORE_POLICY_REQUEST__INIT;
	const struct kh_ts_policy_req *q = &b->ts_policy;

	m.store = S(q->store);
	m.set_revocation = q->set_revocation;
	m.revocation = S(q->revocation);
	m.set_ocsp_url = q->set_ocsp_url;
	m.ocsp_url = S(q->ocsp_url);
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_rev_enc_resp_ts_policy(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	PB(SetTruststorePolicyResponse) m = KEYHOLD__V1__SET_TRUSTSTORE_POLICY_RESPONSE__INIT;

	m.store = S(b->ts_policy.store);
	m.revocation = S(b->ts_policy.revocation);
	m.ocsp_url = S(b->ts_policy.ocsp_url);
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_rev_dec_resp_ts_policy(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(SetTruststorePolicyResponse) *p = (const void *)cm;

	(void)e;
	memset(b, 0, sizeof(*b));
	proto_cstr(b->ts_policy.store, sizeof(b->ts_policy.store), p->store);
	proto_cstr(b->ts_policy.revocation, sizeof(b->ts_policy.revocation), p->revocation);
	proto_cstr(b->ts_policy.ocsp_url, sizeof(b->ts_policy.ocsp_url), p->ocsp_url);
	return KH_OK;
}

/* ---- ExpiringCert lists ---- */

struct cr_expiring {
	PB(ExpiringCert) *v;
	PB(ExpiringCert) **p;
	PB(CertInfo) *ci;
	char **held;                       /* n * KH_HELD_BY_MAX pointers */
	size_t n;
};

static enum kh_err cr_expiring_make(const struct kh_expiring_cert *c, size_t n, struct cr_expiring *o)
{
	size_t i, k;

	memset(o, 0, sizeof(*o));
	o->v = calloc(n ? n : 1, sizeof(*o->v));
	o->p = calloc(n ? n : 1, sizeof(*o->p));
	o->ci = calloc(n ? n : 1, sizeof(*o->ci));
	o->held = calloc((n ? n : 1) * KH_HELD_BY_MAX, sizeof(*o->held));
	if (o->v == NULL || o->p == NULL || o->ci == NULL || o->held == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < n; i++) {
		keyhold__v1__expiring_cert__init(&o->v[i]);
		proto_pb_cert(&c[i].cert, &o->ci[i]);
		o->v[i].cert = &o->ci[i];
		for (k = 0; k < c[i].n_held_by && k < KH_HELD_BY_MAX; k++)
			o->held[i * KH_HELD_BY_MAX + k] = S(c[i].held_by[k]);
		o->v[i].n_held_by = k;
		o->v[i].held_by = &o->held[i * KH_HELD_BY_MAX];
		o->v[i].days_left = c[i].days_left;
		o->v[i].last_notified = c[i].last_notified;
		o->v[i].notifications = c[i].notifications;
		o->p[i] = &o->v[i];
	}
	o->n = n;
	return KH_OK;
}

static void cr_expiring_free(struct cr_expiring *o)
{
	free(o->v);
	free(o->p);
	free(o->ci);
	free(o->held);
	memset(o, 0, sizeof(*o));
}

static enum kh_err cr_expiring_from(PB(ExpiringCert) *const *v, size_t n, struct kh_expiring_cert **out)
{
	struct kh_expiring_cert *c = calloc(n ? n : 1, sizeof(*c));
	size_t i, k;

	if (c == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < n; i++) {
		proto_cert_from(v[i]->cert, &c[i].cert);
		for (k = 0; k < v[i]->n_held_by && k < KH_HELD_BY_MAX; k++)
			proto_cstr(c[i].held_by[k], sizeof(c[i].held_by[k]), v[i]->held_by[k]);
		c[i].n_held_by = k;
		c[i].days_left = v[i]->days_left;
		c[i].last_notified = v[i]->last_notified;
		c[i].notifications = v[i]->notifications;
	}
	*out = c;
	return KH_OK;
}

/* ---- ListExpiring ---- */

enum kh_err proto_rev_dec_expiring(const ProtobufCMessage *cm, union proto_req_body *b, struct kh_errbuf *e)
{
	const PB(ListExpiringRequest) *p = (const void *)cm;

	if (p->within_days > 36500)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "--within takes 0 to 36500 days, not %u", p->within_days);
	b->expiring.within_days = p->within_days;
	b->expiring.all = p->all;
	return KH_OK;
}

enum kh_err proto_rev_enc_req_expiring(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(ListExpiringRequest) m = KEYHOLD__V1__LIST_EXPIRING_REQUEST__INIT;

	m.within_days = b->expiring.within_days;
	m.all = b->expiring.all;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_rev_enc_resp_expiring(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	PB(ListExpiringResponse) m = KEYHOLD__V1__LIST_EXPIRING_RESPONSE__INIT;
	struct cr_expiring o;
	int r = cr_expiring_make(b->expiring.certs, b->expiring.n, &o);

	if (r == KH_OK) {
		m.n_certs = o.n;
		m.certs = o.p;
		m.now = b->expiring.now;
		m.within_days = b->expiring.within_days;
		r = proto_pack_msg(&m.base, out, len);
	}
	cr_expiring_free(&o);
	return r;
}

enum kh_err proto_rev_dec_resp_expiring(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(ListExpiringResponse) *p = (const void *)cm;
	int r;

	(void)e;
	memset(b, 0, sizeof(*b));
	r = cr_expiring_from(p->certs, p->n_certs, &b->expiring.certs);
	if (r != KH_OK)
		return r;
	b->expiring.n = p->n_certs;
	b->expiring.now = p->now;
	b->expiring.within_days = p->within_days;
	return KH_OK;
}

/* ---- RunMonitor ---- */

enum kh_err proto_rev_dec_monitor(const ProtobufCMessage *cm, union proto_req_body *b, struct kh_errbuf *e)
{
	(void)cm;
	(void)e;
	memset(b, 0, sizeof(*b));
	return KH_OK;
}

enum kh_err proto_rev_enc_req_monitor(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(RunMonitorRequest) m = KEYHOLD__V1__RUN_MONITOR_REQUEST__INIT;

	(void)b;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_rev_enc_resp_monitor(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	PB(RunMonitorResponse) m = KEYHOLD__V1__RUN_MONITOR_RESPONSE__INIT;
	const struct kh_monitor_resp *q = &b->monitor;
	char **ren = calloc(q->n_renewals ? q->n_renewals : 1, sizeof(*ren));
	char **err = calloc(q->n_errors ? q->n_errors : 1, sizeof(*err));
	struct cr_expiring o;
	size_t i;
	int r;

	memset(&o, 0, sizeof(o));
	r = ren != NULL && err != NULL ? cr_expiring_make(q->notified, q->n_notified, &o) : KH_E_RESOURCE_EXHAUSTED;
	if (r == KH_OK) {
		for (i = 0; i < q->n_renewals; i++)
			ren[i] = S(q->renewals[i]);
		for (i = 0; i < q->n_errors; i++)
			err[i] = S(q->errors[i]);
		m.n_notified = o.n;
		m.notified = o.p;
		m.n_renewals = q->n_renewals;
		m.renewals = ren;
		m.n_errors = q->n_errors;
		m.errors = err;
		r = proto_pack_msg(&m.base, out, len);
	}
	cr_expiring_free(&o);
	free(ren);
	free(err);
	return r;
}

static enum kh_err cr_lines(char *const *v, size_t n, char (**out)[KH_MONITOR_LINE_LEN], size_t *nout)
{
	char(*l)[KH_MONITOR_LINE_LEN];
	size_t i;

	if (n > KH_MONITOR_LINES_MAX)
		n = KH_MONITOR_LINES_MAX;
	l = calloc(n ? n : 1, sizeof(*l));
	if (l == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < n; i++)
		proto_cstr(l[i], sizeof(l[i]), v[i]);
	*out = l;
	*nout = n;
	return KH_OK;
}

enum kh_err proto_rev_dec_resp_monitor(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(RunMonitorResponse) *p = (const void *)cm;
	struct kh_monitor_resp *q = &b->monitor;
	int r;

	(void)e;
	memset(b, 0, sizeof(*b));
	r = cr_expiring_from(p->notified, p->n_notified, &q->notified);
	if (r != KH_OK)
		return r;
	q->n_notified = p->n_notified;
	if ((r = cr_lines(p->renewals, p->n_renewals, &q->renewals, &q->n_renewals)) != KH_OK)
		return r;
	return cr_lines(p->errors, p->n_errors, &q->errors, &q->n_errors);
}

/* ---- clear ---- */

void proto_rev_req_clear(enum proto_method m, union proto_req_body *b)
{
	if (m == PROTO_M_CHECK_CERTIFICATE)
		kh_cert_check_req_clear(&b->cert_check);
}

void proto_rev_resp_clear(enum proto_method m, union proto_resp_body *b)
{
	switch (m) {
	case PROTO_M_CHECK_CERTIFICATE: kh_cert_check_resp_clear(&b->cert_check); break;
	case PROTO_M_SET_TRUSTPOINT_POLICY: kh_trustpoint_clear(&b->tp); break;
	case PROTO_M_LIST_EXPIRING: kh_expiring_list_clear(&b->expiring); break;
	case PROTO_M_RUN_MONITOR: kh_monitor_resp_clear(&b->monitor); break;
	default: break;
	}
}
