/* dispatch.c: method -> (roles, handler); the deadline and role checks
 * every request passes before a handler runs; principals -> roles. */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kh_log.h"
#include "kh_util.h"
#include "selftest.h"
#include "svc.h"
#include "svc_pki.h"
#include "svc_rev.h"

#define ROLES_ANY (SVC_ROLE_ADMIN | SVC_ROLE_SIGNER | SVC_ROLE_AUDITOR)

struct svc_method {
	svc_handler_fn fn;
	unsigned roles;          /* any of these may call */
	bool needs_operational;  /* refused outside OPERATIONAL (crypto output) */
};

static const struct svc_method svc_methods[PROTO_M_COUNT] = {
	[PROTO_M_GET_STATUS] = { svc_h_get_status, ROLES_ANY, false },
	[PROTO_M_GET_CAPABILITIES] = { svc_h_get_capabilities, ROLES_ANY, false },
	[PROTO_M_GENERATE_KEY] = { svc_h_generate_key, SVC_ROLE_ADMIN, true },
	[PROTO_M_LIST_KEYS] = { svc_h_list_keys, ROLES_ANY, false },
	[PROTO_M_GET_PUBLIC_KEY] = { svc_h_get_public_key, ROLES_ANY, false },
	[PROTO_M_DELETE_KEY] = { svc_h_delete_key, SVC_ROLE_ADMIN, true },
	[PROTO_M_SIGN] = { svc_h_sign, SVC_ROLE_ADMIN | SVC_ROLE_SIGNER, true },
	[PROTO_M_RUN_SELF_TEST] = { svc_h_run_selftest, SVC_ROLE_ADMIN, true },
	[PROTO_M_CREATE_CSR] = { svc_h_create_csr, SVC_ROLE_ADMIN, true },
	[PROTO_M_CREATE_TRUSTPOINT] = { svc_h_create_trustpoint, SVC_ROLE_ADMIN, true },
	[PROTO_M_LIST_TRUSTPOINTS] = { svc_h_list_trustpoints, ROLES_ANY, false },
	[PROTO_M_GET_TRUSTPOINT] = { svc_h_get_trustpoint, ROLES_ANY, false },
	[PROTO_M_DELETE_TRUSTPOINT] = { svc_h_delete_trustpoint, SVC_ROLE_ADMIN, false },
	[PROTO_M_AUTHENTICATE_TRUSTPOINT] = { svc_h_authenticate_trustpoint, SVC_ROLE_ADMIN, false },
	[PROTO_M_ENROLL_TRUSTPOINT] = { svc_h_enroll_trustpoint, SVC_ROLE_ADMIN, true },
	[PROTO_M_IMPORT_CERTIFICATE] = { svc_h_import_certificate, SVC_ROLE_ADMIN, false },
	[PROTO_M_EXPORT_TRUSTPOINT] = { svc_h_export_trustpoint, ROLES_ANY, false },
	[PROTO_M_REGENERATE_TRUSTPOINT] = { svc_h_regenerate_trustpoint, SVC_ROLE_ADMIN, true },
	[PROTO_M_TRUSTSTORE_ADD] = { svc_h_truststore_add, SVC_ROLE_ADMIN, false },
	[PROTO_M_TRUSTSTORE_LIST] = { svc_h_truststore_list, ROLES_ANY, false },
	[PROTO_M_TRUSTSTORE_REMOVE] = { svc_h_truststore_remove, SVC_ROLE_ADMIN, false },
	[PROTO_M_TRUSTSTORE_VERIFY] = { svc_h_truststore_verify, ROLES_ANY, false },
	[PROTO_M_IMPORT_CRL] = { svc_h_import_crl, SVC_ROLE_ADMIN, false },
	[PROTO_M_CHECK_CERTIFICATE] = { svc_h_check_certificate, ROLES_ANY, false },
	[PROTO_M_SET_TRUSTPOINT_POLICY] = { svc_h_set_trustpoint_policy, SVC_ROLE_ADMIN, false },
	[PROTO_M_SET_TRUSTSTORE_POLICY] = { svc_h_set_truststore_policy, SVC_ROLE_ADMIN, false },
	[PROTO_M_LIST_EXPIRING] = { svc_h_list_expiring, ROLES_ANY, false },
	/* Renewal signs certificates and CSRs in the token. */
	[PROTO_M_RUN_MONITOR] = { svc_h_run_monitor, SVC_ROLE_ADMIN, true },
};

const char *svc_state_name(enum svc_state st)
{
	switch (st) {
	case SVC_STATE_INIT: return "INIT";
	case SVC_STATE_SELF_TEST: return "SELF_TEST";
	case SVC_STATE_OPERATIONAL: return "OPERATIONAL";
	case SVC_STATE_ERROR: return "ERROR";
	}
	return "?";
}

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

	if (proto_response_encode(id, code, msg, PROTO_M_COUNT, NULL, &f, len) != KH_OK)
		return NULL;
	return f;
}

void svc_dispatch(struct svc *s, const struct svc_principal *who, struct proto_req *req, uint64_t deadline_us,
		  uint8_t **frame, size_t *frame_len)
{
	const struct svc_method *m = &svc_methods[req->method];
	const char *mname = proto_method_name(req->method);
	union proto_resp_body resp;
	struct kh_errbuf e = { 0 };
	uint64_t t0 = kh_now_mono_us();
	int r;

	memset(&resp, 0, sizeof(resp));
	if (deadline_us != 0 && t0 > deadline_us) {
		r = kh_err_set(&e, KH_E_DEADLINE_EXCEEDED, "the deadline passed before %s could start", mname);
	} else if ((who->roles & m->roles) == 0) {
		char need[48];

		r = kh_err_set(&e, KH_E_PERMISSION_DENIED, "%s may not call %s: it needs the %s role (grant it in [access])",
			       who->name, mname, svc_roles_text(m->roles, need, sizeof(need)));
	} else if (m->needs_operational && atomic_load(&s->state) != SVC_STATE_OPERATIONAL) {
		r = kh_err_set(&e, KH_E_UNAVAILABLE, "keyholdd is in state %s; %s is refused until it is OPERATIONAL",
			       svc_state_name((enum svc_state)atomic_load(&s->state)), mname);
	} else {
		r = m->fn(s, who, &req->body, &resp, &e);
		if (r != KH_OK && e.code == KH_OK)
			kh_err_set(&e, r, "%s failed", mname);
		/* FIPS ERROR state (DESIGN §8): no cryptographic output leaves
		 * keyholdd, even from a request that was already running. */
		if (r == KH_OK && m->needs_operational && atomic_load(&s->state) == SVC_STATE_ERROR)
			r = kh_err_set(&e, KH_E_UNAVAILABLE,
				       "keyholdd entered the FIPS ERROR state; %s output is withheld", mname);
	}
	if (r != KH_OK) {
		log_info("%s %s: %s: %s", who->name, mname, kh_err_name(r), e.msg);
		*frame = svc_error_frame(req->id, r, e.msg, frame_len);
	} else {
		log_dbg("%s %s: OK in %llu us", who->name, mname, (unsigned long long)(kh_now_mono_us() - t0));
		if (proto_response_encode(req->id, KH_OK, NULL, req->method, &resp, frame, frame_len) != KH_OK)
			*frame = svc_error_frame(req->id, KH_E_INTERNAL, "cannot encode the response", frame_len);
	}
	proto_resp_clear(req->method, &resp);
}

/* ---- principals -> roles ---- */

static bool svc_in_group(uid_t uid, gid_t primary, gid_t want)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t groups[256];
	int n = 256, i;

	if (primary == want)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return false;
	if (getgrouplist(pw.pw_name, primary, groups, &n) < 0)
		return false;
	for (i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

unsigned svc_roles_for_unix(const struct svc_config *cfg, uid_t uid, gid_t gid)
{
	unsigned roles = 0;
	size_t i;

	for (i = 0; i < cfg->n_grants; i++) {
		const struct svc_grant *g = &cfg->grants[i];

		if (g->kind == SVC_PK_UID && g->uid == uid)
			roles |= g->role;
		else if (g->kind == SVC_PK_GID && svc_in_group(uid, gid, g->gid))
			roles |= g->role;
	}
	return roles;
}

unsigned svc_roles_for_cert(const struct svc_config *cfg, const char *name)
{
	unsigned roles = 0;
	size_t i;

	for (i = 0; i < cfg->n_grants; i++)
		if (cfg->grants[i].kind == SVC_PK_CERT && strcmp(cfg->grants[i].cert, name) == 0)
			roles |= cfg->grants[i].role;
	return roles;
}
