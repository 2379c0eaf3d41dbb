/* codec_rev.c: protobuf <-> validated structs for the revocation, expiry
 * monitoring and renewal RPCs (CheckCertificate, SetTrustpointPolicy,
 * SetTruststorePolicy, ListExpiring, RunMonitor), client side: requests
 * encoded, answers decoded into kh_rev.h structs. The server validates
 * these requests in validate.c and builds the answers in rpc/. */
#include <stdlib.h>
#include <string.h>

#include "codec_util.h"
#include "codec_pki.h"
#include "codec_rev.h"
#include "keyhold.pb-c.h"
#include "kh_util.h"

#define PB(x) Keyhold__V1__##x
#define S(x) ((char *)(uintptr_t)(x))


static enum kh_rev_status cr_status(int v)
{
	return v >= 0 && v <= KH_REV_STATUS_MAX ? (enum kh_rev_status)v : KH_REV_UNKNOWN;
}

/* ---- CheckCertificate ---- */


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


enum kh_err proto_rev_dec_resp_tp_policy(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	return proto_pki_dec_resp_get_tp(cm, b, e);
}

/* ---- SetTruststorePolicy ---- */


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


enum kh_err proto_rev_enc_req_expiring(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(ListExpiringRequest) m = KEYHOLD__V1__LIST_EXPIRING_REQUEST__INIT;

	m.within_days = b->expiring.within_days;
	m.all = b->expiring.all;
	return proto_pack_msg(&m.base, out, len);
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


enum kh_err proto_rev_enc_req_monitor(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(RunMonitorRequest) m = KEYHOLD__V1__RUN_MONITOR_REQUEST__INIT;

	(void)b;
	return proto_pack_msg(&m.base, out, len);
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
