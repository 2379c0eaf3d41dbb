/* libkeyhold_rev.c: the client side of revocation checking, revocation and
 * renewal policies, and expiry monitoring. Each call checks names, URLs
 * and sizes locally, then sends one request and decodes its answer. */
#include <string.h>

#include "keyhold.h"
#include "kh_client_int.h"
#include "kh_util.h"
#include "proto.h"

static enum kh_err kr_name(char *dst, const char *name, const char *what, struct kh_errbuf *e)
{
	if (!kh_name_valid(name))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s name must match [A-Za-z0-9._-]{1,64}", what);
	kh_strlcpy(dst, name, KH_NAME_MAX + 1);
	return KH_OK;
}

static enum kh_err kr_url(const char *url, struct kh_errbuf *e)
{
	if (!kh_url_valid(url))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "the OCSP URL must be an http:// URL of at most %d characters (keyhold fetches no https, "
				  "ldap or file URLs)",
				  KH_URL_MAX);
	return KH_OK;
}

enum kh_err kh_cert_check(kh_client *c, const struct kh_cert_check_req *req, struct kh_cert_check_resp *out,
			  struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.cert_check = *req; /* the byte buffers stay borrowed */
	r = kr_name(q.cert_check.store, req->store, "trust store", e);
	if (r == KH_OK && req->cert.len + req->untrusted.len > KH_PKI_BLOB_MAX)
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "the certificates are larger than %u bytes", KH_PKI_BLOB_MAX);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_CHECK_CERTIFICATE, &q, &a, e);
	if (r == KH_OK)
		*out = a.cert_check;
	return r;
}

enum kh_err kh_trustpoint_set_policy(kh_client *c, const struct kh_tp_policy_req *req, struct kh_trustpoint *out,
				     struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.tp_policy = *req;
	r = kr_name(q.tp_policy.name, req->name, "trustpoint", e);
	if (r == KH_OK)
		r = kr_url(req->ocsp_url, e);
	if (r == KH_OK && req->renew_at > 99)
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "renew-at is a percent from 1 to 99 (0: off)");
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_SET_TRUSTPOINT_POLICY, &q, &a, e);
	if (r == KH_OK)
		*out = a.tp;
	return r;
}

enum kh_err kh_truststore_set_policy(kh_client *c, const struct kh_ts_policy_req *req, struct kh_ts_policy *out,
				     struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.ts_policy = *req;
	r = kr_name(q.ts_policy.store, req->store, "trust store", e);
	if (r == KH_OK)
		r = kr_url(req->ocsp_url, e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_SET_TRUSTSTORE_POLICY, &q, &a, e);
	if (r == KH_OK)
		*out = a.ts_policy;
	return r;
}

enum kh_err kh_cert_expiring(kh_client *c, uint32_t within_days, bool all, struct kh_expiring_list *out,
			     struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.expiring.within_days = within_days;
	q.expiring.all = all;
	r = kh_call(c, PROTO_M_LIST_EXPIRING, &q, &a, e);
	if (r == KH_OK)
		*out = a.expiring;
	return r;
}

enum kh_err kh_monitor_run(kh_client *c, struct kh_monitor_resp *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kh_call(c, PROTO_M_RUN_MONITOR, &q, &a, e);
	if (r == KH_OK)
		*out = a.monitor;
	return r;
}
