/* libkeyhold_security.c: the client calls of the security RPCs: the audit
 * log (AuditShow, AuditVerify) and per-key policy (GrantKey,
 * RevokeKeyGrant, ListKeyGrants). */
#include <string.h>

#include "keyhold.h"
#include "kh_client_int.h"
#include "kh_util.h"

enum kh_err kh_audit_show(kh_client *c, const struct kh_audit_show_req *q, struct kh_audit_records *out,
			  struct kh_errbuf *e)
{
	union proto_req_body rq;
	union proto_resp_body a;
	int r;

	memset(&rq, 0, sizeof(rq));
	rq.audit_show = *q;
	r = kh_call(c, PROTO_M_AUDIT_SHOW, &rq, &a, e);
	if (r == KH_OK)
		*out = a.audit;
	return r;
}

enum kh_err kh_audit_verify(kh_client *c, struct kh_audit_verify *out, struct kh_errbuf *e)
{
	union proto_req_body rq;
	union proto_resp_body a;
	int r;

	memset(&rq, 0, sizeof(rq));
	r = kh_call(c, PROTO_M_AUDIT_VERIFY, &rq, &a, e);
	if (r == KH_OK)
		*out = a.audit_verify;
	return r;
}

static enum kh_err kh_sec_strings(char *key, size_t keysz, const char *k, char *pr, size_t prsz, const char *p,
				  struct kh_errbuf *e)
{
	if (k == NULL || !kh_name_valid(k))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "key name must match [A-Za-z0-9._-]{1,64}");
	if (pr != NULL && (p == NULL || !kh_principal_valid(p)))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "principal must be uid:N, gid:N, user:NAME, group:NAME or cert:NAME");
	kh_strlcpy(key, k, keysz);
	if (pr != NULL)
		kh_strlcpy(pr, p, prsz);
	return KH_OK;
}

enum kh_err kh_grant_key(kh_client *c, const struct kh_key_grant *g, struct kh_errbuf *e)
{
	union proto_req_body rq;
	union proto_resp_body a;
	int r;

	memset(&rq, 0, sizeof(rq));
	r = kh_sec_strings(rq.grant.key, sizeof(rq.grant.key), g->key, rq.grant.principal,
			   sizeof(rq.grant.principal), g->principal, e);
	if (r != KH_OK)
		return r;
	rq.grant.digests = g->digests;
	rq.grant.paddings = g->paddings;
	return kh_call(c, PROTO_M_GRANT_KEY, &rq, &a, e);
}

enum kh_err kh_revoke_key_grant(kh_client *c, const char *key, const char *principal, struct kh_errbuf *e)
{
	union proto_req_body rq;
	union proto_resp_body a;
	int r;

	memset(&rq, 0, sizeof(rq));
	r = kh_sec_strings(rq.grant_ref.key, sizeof(rq.grant_ref.key), key, rq.grant_ref.principal,
			   sizeof(rq.grant_ref.principal), principal, e);
	if (r != KH_OK)
		return r;
	return kh_call(c, PROTO_M_REVOKE_KEY_GRANT, &rq, &a, e);
}

enum kh_err kh_list_key_grants(kh_client *c, const char *key, struct kh_grant_list *out, struct kh_errbuf *e)
{
	union proto_req_body rq;
	union proto_resp_body a;
	int r;

	memset(&rq, 0, sizeof(rq));
	if (key != NULL && key[0] != '\0') {
		r = kh_sec_strings(rq.grant_filter.key, sizeof(rq.grant_filter.key), key, NULL, 0, NULL, e);
		if (r != KH_OK)
			return r;
	}
	r = kh_call(c, PROTO_M_LIST_KEY_GRANTS, &rq, &a, e);
	if (r == KH_OK)
		*out = a.grants;
	return r;
}
