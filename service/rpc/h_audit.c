/* h_audit.c: the security RPCs: AuditShow, AuditVerify (the audit log)
 * and GrantKey, RevokeKeyGrant, ListKeyGrants (per-key policy). */
#include <string.h>

#include "audit/audit.h"
#include "daemon/svc.h"

enum kh_err svc_h_audit_show(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
			     union proto_resp_body *resp, struct kh_errbuf *e)
{
	(void)who;
	if (s->audit == NULL)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "this keyholdd keeps no audit log");
	return audit_show(s->audit, &req->audit_show, &resp->audit, e);
}

enum kh_err svc_h_audit_verify(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
			       union proto_resp_body *resp, struct kh_errbuf *e)
{
	(void)who;
	(void)req;
	if (s->audit == NULL)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "this keyholdd keeps no audit log");
	return audit_verify(s->audit, &resp->audit_verify, e);
}

enum kh_err svc_h_grant_key(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
			    union proto_resp_body *resp, struct kh_errbuf *e)
{
	(void)who;
	(void)resp;
	if (s->audit != NULL && strcmp(req->grant.key, audit_key_name(s->audit)) == 0)
		return kh_err_set(e, KH_E_PERMISSION_DENIED, "key '%s' signs the audit log; it cannot be granted",
				  req->grant.key);
	return access_grants_grant(s->grants, &req->grant, e);
}

enum kh_err svc_h_revoke_key_grant(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
				   union proto_resp_body *resp, struct kh_errbuf *e)
{
	(void)who;
	(void)resp;
	return access_grants_revoke(s->grants, &req->grant_ref, e);
}

enum kh_err svc_h_list_key_grants(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
				  union proto_resp_body *resp, struct kh_errbuf *e)
{
	(void)who;
	return access_grants_list(s->grants, req->grant_filter.key, &resp->grants, e);
}
