/* dispatch.c: method -> (roles, handler); the deadline and role checks
 * every request passes before a handler runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips.h"
#include "core/svc.h"
#include "core/svc_metrics.h"
#include "rpc/dispatch.h"
#include "pki/pki_state.h"
#include "revocation/revocation.h"
#include "rpc/rpc.h"
#include "access/access.h"

#define ROLES_ANY (SVC_ROLE_ADMIN | SVC_ROLE_SIGNER | SVC_ROLE_AUDITOR)

#define ROLES_KEYS (SVC_ROLE_ADMIN | SVC_ROLE_SIGNER)
#define ROLES_AUDIT (SVC_ROLE_ADMIN | SVC_ROLE_AUDITOR)

struct svc_method {
	rpc_handler_fn rpc;      /* the handler (rpc/rpc.h) */
	unsigned roles;          /* any of these may call */
	bool needs_operational;  /* refused outside OPERATIONAL (crypto output) */
	const char *object;      /* the request field naming the key, trustpoint or
				  * store the request is about (audit, grants);
				  * NULL: none */
	bool key_policy;         /* non-admins need a grant for object */
	const char *touched;     /* the request field naming an existing token key
				  * it signs with or destroys; NULL: none */
};

/* Signers see and use only keys granted to them; auditors read status and
 * the audit log (DESIGN §9). */
static const struct svc_method svc_methods[PROTO_M_COUNT] = {
	[PROTO_M_GET_STATUS] = { .rpc = svc_h_get_status, .roles = ROLES_ANY, .needs_operational = false },
	[PROTO_M_GET_CAPABILITIES] = { .rpc = svc_h_get_capabilities, .roles = ROLES_KEYS, .needs_operational = false },
	[PROTO_M_GENERATE_KEY] = { .rpc = svc_h_generate_key, .roles = SVC_ROLE_ADMIN, .needs_operational = true, .object = "name" },
	[PROTO_M_LIST_KEYS] = { .rpc = svc_h_list_keys, .roles = ROLES_KEYS, .needs_operational = false },
	[PROTO_M_GET_PUBLIC_KEY] = { .rpc = svc_h_get_public_key, .roles = ROLES_KEYS, .needs_operational = false, .object = "name", .key_policy = true },
	[PROTO_M_DELETE_KEY] = { .rpc = svc_h_delete_key, .roles = SVC_ROLE_ADMIN, .needs_operational = true, .object = "name", .touched = "name" },
	[PROTO_M_SIGN] = { .rpc = svc_h_sign, .roles = ROLES_KEYS, .needs_operational = true, .object = "key", .key_policy = true, .touched = "key" },
	[PROTO_M_AUDIT_SHOW] = { .rpc = svc_h_audit_show, .roles = ROLES_AUDIT, .needs_operational = false },
	[PROTO_M_AUDIT_VERIFY] = { .rpc = svc_h_audit_verify, .roles = ROLES_AUDIT, .needs_operational = false },
	[PROTO_M_GRANT_KEY] = { .rpc = svc_h_grant_key, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "grant.key" },
	[PROTO_M_REVOKE_KEY_GRANT] = { .rpc = svc_h_revoke_key_grant, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "key" },
	[PROTO_M_LIST_KEY_GRANTS] = { .rpc = svc_h_list_key_grants, .roles = ROLES_AUDIT, .needs_operational = false, .object = "key" },
	[PROTO_M_RUN_SELF_TEST] = { .rpc = svc_h_run_selftest, .roles = SVC_ROLE_ADMIN, .needs_operational = true },
	[PROTO_M_CREATE_CSR] = { .rpc = svc_h_create_csr, .roles = SVC_ROLE_ADMIN, .needs_operational = true, .object = "key", .touched = "key" },
	[PROTO_M_CREATE_TRUSTPOINT] = { .rpc = svc_h_create_trustpoint, .roles = SVC_ROLE_ADMIN, .needs_operational = true, .object = "name", .touched = "key" },
	[PROTO_M_LIST_TRUSTPOINTS] = { .rpc = svc_h_list_trustpoints, .roles = ROLES_ANY, .needs_operational = false },
	[PROTO_M_GET_TRUSTPOINT] = { .rpc = svc_h_get_trustpoint, .roles = ROLES_ANY, .needs_operational = false, .object = "name" },
	[PROTO_M_DELETE_TRUSTPOINT] = { .rpc = svc_h_delete_trustpoint, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "name" },
	[PROTO_M_AUTHENTICATE_TRUSTPOINT] = { .rpc = svc_h_authenticate_trustpoint, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "name" },
	[PROTO_M_ENROLL_TRUSTPOINT] = { .rpc = svc_h_enroll_trustpoint, .roles = SVC_ROLE_ADMIN, .needs_operational = true, .object = "name" },
	[PROTO_M_IMPORT_CERTIFICATE] = { .rpc = svc_h_import_certificate, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "name" },
	[PROTO_M_EXPORT_TRUSTPOINT] = { .rpc = svc_h_export_trustpoint, .roles = ROLES_ANY, .needs_operational = false, .object = "name" },
	[PROTO_M_REGENERATE_TRUSTPOINT] = { .rpc = svc_h_regenerate_trustpoint, .roles = SVC_ROLE_ADMIN, .needs_operational = true, .object = "name" },
	[PROTO_M_TRUSTSTORE_ADD] = { .rpc = svc_h_truststore_add, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "store" },
	[PROTO_M_TRUSTSTORE_LIST] = { .rpc = svc_h_truststore_list, .roles = ROLES_ANY, .needs_operational = false, .object = "store" },
	[PROTO_M_TRUSTSTORE_REMOVE] = { .rpc = svc_h_truststore_remove, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "store" },
	[PROTO_M_TRUSTSTORE_VERIFY] = { .rpc = svc_h_truststore_verify, .roles = ROLES_ANY, .needs_operational = false, .object = "store" },
	[PROTO_M_IMPORT_CRL] = { .rpc = svc_h_import_crl, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "store" },
	[PROTO_M_LIST_CRLS] = { .rpc = svc_h_list_crls, .roles = ROLES_ANY, .needs_operational = false, .object = "store" },
	[PROTO_M_REMOVE_CRL] = { .rpc = svc_h_remove_crl, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "store" },
	[PROTO_M_TRUSTSTORE_CREATE] = { .rpc = svc_h_truststore_create, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "store" },
	[PROTO_M_TRUSTSTORE_DELETE] = { .rpc = svc_h_truststore_delete, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "store" },
	[PROTO_M_TRUSTSTORE_EXPORT] = { .rpc = svc_h_truststore_export, .roles = ROLES_ANY, .needs_operational = false, .object = "store" },
	[PROTO_M_DISCARD_CSR] = { .rpc = svc_h_discard_csr, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "name" },
	[PROTO_M_ACME_ACCOUNT] = { .rpc = svc_h_acme_account, .roles = SVC_ROLE_ADMIN, .needs_operational = true, .object = "name" },
	[PROTO_M_TRUSTSTORE_SHOW] = { .rpc = svc_h_truststore_show, .roles = ROLES_ANY, .needs_operational = false, .object = "store" },
	[PROTO_M_CHECK_CERTIFICATE] = { .rpc = svc_h_check_certificate, .roles = ROLES_ANY, .needs_operational = false, .object = "store" },
	[PROTO_M_SET_TRUSTPOINT_POLICY] = { .rpc = svc_h_set_trustpoint_policy, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "name" },
	[PROTO_M_SET_TRUSTSTORE_POLICY] = { .rpc = svc_h_set_truststore_policy, .roles = SVC_ROLE_ADMIN, .needs_operational = false, .object = "store" },
	[PROTO_M_LIST_EXPIRING] = { .rpc = svc_h_list_expiring, .roles = ROLES_ANY, .needs_operational = false },
	/* Renewal signs certificates and CSRs in the token. */
	[PROTO_M_RUN_MONITOR] = { .rpc = svc_h_run_monitor, .roles = SVC_ROLE_ADMIN, .needs_operational = true },
};

static const char *svc_roles_text(unsigned roles, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s", (roles & SVC_ROLE_ADMIN) ? "admin " : "",
		 (roles & SVC_ROLE_SIGNER) ? "signer " : "", (roles & SVC_ROLE_AUDITOR) ? "auditor " : "");
	if (buf[0] != '\0')
		buf[strlen(buf) - 1] = '\0';
	return buf;
}

uint8_t *svc_error_frame(uint64_t id, enum kh_err code, const char *msg, size_t *len)
{
	uint8_t *f = NULL;

	if (proto_response_encode_msg(id, code, msg, NULL, &f, len) != KH_OK)
		return NULL;
	return f;
}

void svc_audit_record(struct svc *s, const struct svc_principal *who, const char *method, const char *object,
		      enum kh_err code, uint64_t duration_us, uint64_t count)
{
	struct audit_event ev;
	struct kh_errbuf e = { 0 };

	if (s->audit == NULL)
		return;
	ev.principal = who != NULL ? who->name : "-";
	ev.method = method != NULL ? method : "-";
	ev.object = object;
	ev.code = code;
	ev.duration_us = duration_us;
	ev.count = count;
	if (audit_append(s->audit, &ev, &e) != KH_OK)
		log_err("audit: %s", e.msg);
}

void svc_dispatch(struct svc *s, const struct svc_principal *who, struct proto_req *req, uint64_t deadline_us,
		  uint8_t **frame, size_t *frame_len)
{
	const struct svc_method *m = &svc_methods[req->method];
	const char *mname = proto_method_name(req->method);
	const char *object = m->object != NULL ? proto_field_str(req->msg, m->object) : NULL;
	const char *touched = m->touched != NULL ? proto_field_str(req->msg, m->touched) : NULL;
	struct rpc_call call = { .s = s, .who = who, .req = req->msg };
	struct kh_errbuf e = { 0 };
	uint64_t t0 = kh_now_mono_us();
	int r;

	if (object != NULL && object[0] == '\0')
		object = NULL;
	if (deadline_us != 0 && t0 > deadline_us) {
		r = kh_err_set(&e, KH_E_DEADLINE_EXCEEDED, "the deadline passed before %s could start", mname);
	} else if ((who->roles & m->roles) == 0) {
		char need[48];

		r = kh_err_set(&e, KH_E_PERMISSION_DENIED, "%s may not call %s: it needs the %s role (grant it in [access])",
			       who->name, mname, svc_roles_text(m->roles, need, sizeof(need)));
	} else if (m->key_policy && object != NULL &&
		   (r = s->grants != NULL ? access_grants_check_key(s->grants, who, object, &e)
					  : ((who->roles & SVC_ROLE_ADMIN) ? KH_OK
									  : kh_err_set(&e, KH_E_PERMISSION_DENIED,
										       "%s has no grant for key '%s'", who->name,
										       object))) != KH_OK) {
		/* Decided before the token is asked: the refusal is the same
		 * whether or not the key exists. */
	} else if (s->audit != NULL && touched != NULL && strcmp(touched, audit_key_name(s->audit)) == 0) {
		r = kh_err_set(&e, KH_E_PERMISSION_DENIED,
			       "key '%s' signs the audit log's checkpoints; no request may use it", touched);
	} else if (m->needs_operational && atomic_load(&s->state) != SVC_STATE_OPERATIONAL) {
		r = kh_err_set(&e, KH_E_UNAVAILABLE, "keyholdd is in state %s; %s is refused until it is OPERATIONAL",
			       svc_state_name((enum svc_state)atomic_load(&s->state)), mname);
	} else if (m->needs_operational && s->audit != NULL && !audit_healthy(s->audit)) {
		r = kh_err_set(&e, KH_E_UNAVAILABLE,
			       "the audit log cannot be written, and no key is used without a record; see keyholdd's log");
	} else if (m->rpc == NULL) {
		r = kh_err_set(&e, KH_E_UNIMPLEMENTED, "%s is not implemented by this keyholdd", mname);
	} else if (s->audit != NULL &&
		   (r = audit_begin(s->audit, &(struct audit_event){ who->name, mname, object, KH_OK, 0, 1 }, &e)) != KH_OK) {
		/* A state change whose record cannot be written is refused
		 * before it happens (audit_begin). */
	} else {
		r = m->rpc(&call, &e);
		if (r == KH_OK && call.oom)
			r = kh_err_set(&e, KH_E_RESOURCE_EXHAUSTED, "out of memory building the %s answer", mname);
		if (r != KH_OK && e.code == KH_OK)
			kh_err_set(&e, r, "%s failed", mname);
		/* FIPS ERROR state (DESIGN §8): no cryptographic output leaves
		 * keyholdd, even from a request that was already running. */
		if (r == KH_OK && m->needs_operational && atomic_load(&s->state) == SVC_STATE_ERROR)
			r = kh_err_set(&e, KH_E_UNAVAILABLE,
				       "keyholdd entered the FIPS ERROR state; %s output is withheld", mname);
	}
	/* On record before the answer leaves; an answer that cannot be
	 * recorded is not given (no unrecorded signature). */
	if (s->audit != NULL) {
		struct audit_event ev = { who->name, mname, object, r, kh_now_mono_us() - t0, 1 };
		struct kh_errbuf ae = { 0 };

		if (audit_append(s->audit, &ev, &ae) != KH_OK && r == KH_OK)
			r = kh_err_set(&e, KH_E_UNAVAILABLE, "%s", ae.msg);
	}
	svc_metrics_request(s->metrics, (int)req->method, r, kh_now_mono_us() - t0);
	if (r != KH_OK) {
		struct kh_log_fields lf = { mname, object, who->name, NULL };

		kh_log_event(KH_LOG_INFO, __func__, &lf, "%s %s%s%s: %s: %s", who->name, mname, object ? " " : "",
			     object ? object : "", kh_err_name(r), e.msg);
		*frame = svc_error_frame(req->id, r, e.msg, frame_len);
	} else {
		log_dbg("%s %s: OK in %llu us", who->name, mname, (unsigned long long)(kh_now_mono_us() - t0));
		if (proto_response_encode_msg(req->id, KH_OK, NULL, call.resp, frame, frame_len) != KH_OK)
			*frame = svc_error_frame(req->id, KH_E_INTERNAL, "cannot encode the response", frame_len);
	}
	rpc_call_release(&call);
}
