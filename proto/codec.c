/* codec.c: protobuf <-> validated structs for every RPC, and the envelope.
 * Server decoders validate everything a handler relies on; encoders build
 * the generated structs on the stack and pack once. */
#include <stdlib.h>
#include <string.h>

#include "codec_util.h"
#include "codec_pki.h"
#include "keyhold.pb-c.h"
#include "codec_security.h"
#include "proto.h"
#include "kh_util.h"
#include "codec_fips.h"
#include "codec_rev.h"

#define PB(x) Keyhold__V1__##x

/* ---- budgeted allocator (STYLE "Untrusted input") ---- */

struct proto_budget {
	ProtobufCAllocator a;
	size_t left;
};

static void *proto_budget_alloc(void *data, size_t size)
{
	struct proto_budget *b = data;

	if (size > b->left)
		return NULL;
	b->left -= size;
	return malloc(size);
}

static void proto_budget_free(void *data, void *p)
{
	(void)data;
	free(p);
}

/* A message of len bytes never needs more than a few times len in structs:
 * the slack covers the fixed-size message structs. */
static void proto_budget_init(struct proto_budget *b, size_t len)
{
	b->a.alloc = proto_budget_alloc;
	b->a.free = proto_budget_free;
	b->a.allocator_data = b;
	b->left = 4 * len + 16384;
}

static enum kh_err proto_pack(const ProtobufCMessage *m, size_t hdr, uint8_t **out, size_t *out_len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(hdr + n + 1);

	if (buf == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	if (protobuf_c_message_pack(m, buf + hdr) != n) {
		free(buf);
		return KH_E_INTERNAL;
	}
	if (hdr == PROTO_HDR_LEN)
		proto_frame_hdr(n, buf);
	*out = buf;
	*out_len = hdr + n;
	return KH_OK;
}


/* ---- request bodies: decode (server) ---- */

typedef enum kh_err (*proto_req_dec_fn)(const ProtobufCMessage *m, union proto_req_body *b,
					struct kh_errbuf *e);
typedef enum kh_err (*proto_req_enc_fn)(const union proto_req_body *b, uint8_t **out, size_t *len);
typedef enum kh_err (*proto_resp_enc_fn)(const union proto_resp_body *b, uint8_t **out, size_t *len);
typedef enum kh_err (*proto_resp_dec_fn)(const ProtobufCMessage *m, union proto_resp_body *b,
					 struct kh_errbuf *e);

/* ---- request bodies: encode (client) ---- */

static enum kh_err enc_req_status(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(GetStatusRequest) m = KEYHOLD__V1__GET_STATUS_REQUEST__INIT;

	(void)b;
	return proto_pack(&m.base, 0, out, len);
}

static enum kh_err enc_req_caps(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(GetCapabilitiesRequest) m = KEYHOLD__V1__GET_CAPABILITIES_REQUEST__INIT;

	(void)b;
	return proto_pack(&m.base, 0, out, len);
}

static enum kh_err enc_req_list(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(ListKeysRequest) m = KEYHOLD__V1__LIST_KEYS_REQUEST__INIT;

	(void)b;
	return proto_pack(&m.base, 0, out, len);
}

static enum kh_err enc_req_generate(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(GenerateKeyRequest) m = KEYHOLD__V1__GENERATE_KEY_REQUEST__INIT;

	m.name = (char *)(uintptr_t)b->generate.name;
	m.type = (PB(KeyType))b->generate.type;
	return proto_pack(&m.base, 0, out, len);
}

static enum kh_err enc_req_get_public(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(GetPublicKeyRequest) m = KEYHOLD__V1__GET_PUBLIC_KEY_REQUEST__INIT;

	m.name = (char *)(uintptr_t)b->name.name;
	return proto_pack(&m.base, 0, out, len);
}

static enum kh_err enc_req_delete(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(DeleteKeyRequest) m = KEYHOLD__V1__DELETE_KEY_REQUEST__INIT;

	m.name = (char *)(uintptr_t)b->name.name;
	return proto_pack(&m.base, 0, out, len);
}

static enum kh_err enc_req_sign(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(SignRequest) m = KEYHOLD__V1__SIGN_REQUEST__INIT;
	const struct kh_sign_req *s = &b->sign;

	m.key = (char *)(uintptr_t)s->key;
	m.digest = (PB(Digest))s->digest;
	m.padding = (PB(Padding))s->padding;
	if (s->prehashed) {
		m.input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_PREHASHED;
		m.prehashed.data = s->data;
		m.prehashed.len = s->len;
	} else {
		m.input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE;
		m.message.data = s->data;
		m.message.len = s->len;
	}
	return proto_pack(&m.base, 0, out, len);
}

/* ---- response bodies: encode (server) ---- */







/* ---- response bodies: decode (client) ---- */

static enum kh_err key_info_from(const PB(KeyInfo) *m, struct kh_key_info *k)
{
	memset(k, 0, sizeof(*k));
	if (m == NULL)
		return KH_E_INTERNAL;
	proto_cstr(k->name, sizeof(k->name), m->name);
	k->type = (enum kh_key_type)m->type;
	k->bits = m->bits;
	k->id_len = m->id.len < sizeof(k->id) ? m->id.len : sizeof(k->id);
	if (k->id_len > 0)
		memcpy(k->id, m->id.data, k->id_len);
	k->fips_created = m->fips_created;
	if (m->spki.len > 0) {
		k->spki = malloc(m->spki.len);
		if (k->spki == NULL)
			return KH_E_RESOURCE_EXHAUSTED;
		memcpy(k->spki, m->spki.data, m->spki.len);
		k->spki_len = m->spki.len;
	}
	return KH_OK;
}

static enum kh_err dec_resp_none(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	(void)m;
	(void)e;
	memset(b, 0, sizeof(*b));
	return KH_OK;
}

static enum kh_err dec_resp_generate(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	(void)e;
	return key_info_from(((const PB(GenerateKeyResponse) *)(const void *)m)->key, &b->key);
}

static enum kh_err dec_resp_get_public(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	(void)e;
	return key_info_from(((const PB(GetPublicKeyResponse) *)(const void *)m)->key, &b->key);
}

static enum kh_err dec_resp_list(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(ListKeysResponse) *p = (const void *)m;
	size_t i;
	int r = KH_OK;

	(void)e;
	memset(b, 0, sizeof(*b));
	b->keys.keys = calloc(p->n_keys ? p->n_keys : 1, sizeof(*b->keys.keys));
	if (b->keys.keys == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < p->n_keys && r == KH_OK; i++, b->keys.n++)
		r = key_info_from(p->keys[i], &b->keys.keys[i]);
	return r;
}

static enum kh_err dec_resp_sign(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(SignResponse) *p = (const void *)m;

	(void)e;
	memset(b, 0, sizeof(*b));
	b->sign.sig = malloc(p->signature.len ? p->signature.len : 1);
	if (b->sign.sig == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	if (p->signature.len > 0)
		memcpy(b->sign.sig, p->signature.data, p->signature.len);
	b->sign.sig_len = p->signature.len;
	proto_cstr(b->sign.algorithm, sizeof(b->sign.algorithm), p->algorithm);
	return KH_OK;
}

static enum kh_err dec_resp_caps(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(GetCapabilitiesResponse) *p = (const void *)m;
	struct kh_capabilities *c = &b->caps;
	size_t i;

	(void)e;
	memset(b, 0, sizeof(*b));
	for (i = 0; i < p->n_key_types && i < KH_KEY_TYPE_MAX; i++) {
		c->types[i].type = (enum kh_key_type)p->key_types[i]->type;
		c->types[i].available = p->key_types[i]->available;
		proto_cstr(c->types[i].reason, sizeof(c->types[i].reason), p->key_types[i]->reason);
	}
	c->n_types = i;
	c->mechs = calloc(p->n_mechanisms ? p->n_mechanisms : 1, sizeof(*c->mechs));
	if (c->mechs == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < p->n_mechanisms; i++) {
		proto_cstr(c->mechs[i].name, sizeof(c->mechs[i].name), p->mechanisms[i]->name);
		c->mechs[i].id = p->mechanisms[i]->id;
		c->mechs[i].min_key = p->mechanisms[i]->min_key;
		c->mechs[i].max_key = p->mechanisms[i]->max_key;
		c->mechs[i].flags = p->mechanisms[i]->flags;
	}
	c->n_mechs = p->n_mechanisms;
	c->pss = p->pss;
	return KH_OK;
}

static char **strv_dup(char *const *v, size_t n)
{
	char **out = calloc(n ? n : 1, sizeof(*out));
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		out[i] = strdup(v[i] != NULL ? v[i] : "");
		if (out[i] == NULL) {
			while (i > 0)
				free(out[--i]);
			free(out);
			return NULL;
		}
	}
	return out;
}

static enum kh_err dec_resp_status(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(GetStatusResponse) *p = (const void *)m;
	struct kh_status *s = &b->status;
	size_t i;

	(void)e;
	memset(b, 0, sizeof(*b));
	proto_cstr(s->version, sizeof(s->version), p->version);
	proto_cstr(s->state, sizeof(s->state), p->state);
	proto_cstr(s->fips_mode, sizeof(s->fips_mode), p->fips_mode);
	s->module_validated = p->module_validated;
	proto_cstr(s->openssl_version, sizeof(s->openssl_version), p->openssl_version);
	proto_cstr(s->providers, sizeof(s->providers), p->providers);
	if (p->token != NULL) {
		const PB(TokenInfo) *t = p->token;

		proto_cstr(s->token.label, sizeof(s->token.label), t->label);
		proto_cstr(s->token.manufacturer, sizeof(s->token.manufacturer), t->manufacturer);
		proto_cstr(s->token.model, sizeof(s->token.model), t->model);
		proto_cstr(s->token.serial, sizeof(s->token.serial), t->serial);
		proto_cstr(s->token.hw_version, sizeof(s->token.hw_version), t->hw_version);
		proto_cstr(s->token.fw_version, sizeof(s->token.fw_version), t->fw_version);
		s->token.flags = t->flags;
		proto_cstr(s->token.flag_names, sizeof(s->token.flag_names), t->flag_names);
		s->token.max_sessions = t->max_sessions;
		s->token.sessions = t->sessions;
		s->token.available = t->available;
	}
	s->workers = p->workers;
	s->uptime_s = p->uptime_s;
	s->keys = p->keys;
	s->connections = p->connections;
	s->requests = p->requests;
	if (p->conditional != NULL) {
		s->cond_pairwise_run = p->conditional->pairwise_run;
		s->cond_pairwise_failed = p->conditional->pairwise_failed;
		s->cond_rng_run = p->conditional->rng_run;
		s->cond_rng_failed = p->conditional->rng_failed;
		s->cond_verify_run = p->conditional->verify_run;
		s->cond_verify_failed = p->conditional->verify_failed;
	}
	/* Each count is set with its array, so that kh_status_clear frees
	 * what was duplicated when a later allocation fails. */
	s->selftests = calloc(p->n_self_tests ? p->n_self_tests : 1, sizeof(*s->selftests));
	s->orphaned_keys = strv_dup(p->orphaned_keys, p->n_orphaned_keys);
	if (s->orphaned_keys != NULL)
		s->n_orphaned = p->n_orphaned_keys;
	s->nonfips_keys = strv_dup(p->nonfips_keys, p->n_nonfips_keys);
	if (s->nonfips_keys != NULL)
		s->n_nonfips = p->n_nonfips_keys;
	if (s->selftests == NULL || s->orphaned_keys == NULL || s->nonfips_keys == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < p->n_self_tests; i++)
		proto_selftest_from(p->self_tests[i], &s->selftests[i]);
	s->n_selftests = p->n_self_tests;
	return KH_OK;
}

/* ---- the method table ---- */

struct proto_method_spec {
	const char *name;
	const ProtobufCMessageDescriptor *req, *resp;
	proto_req_dec_fn req_dec;
	proto_req_enc_fn req_enc;
	proto_resp_enc_fn resp_enc;
	proto_resp_dec_fn resp_dec;
};

static const struct proto_method_spec proto_methods[PROTO_M_COUNT] = {
	[PROTO_M_GET_STATUS] = { "GetStatus", &keyhold__v1__get_status_request__descriptor,
				 &keyhold__v1__get_status_response__descriptor, NULL, enc_req_status,
				 NULL, dec_resp_status },
	[PROTO_M_GET_CAPABILITIES] = { "GetCapabilities", &keyhold__v1__get_capabilities_request__descriptor,
				       &keyhold__v1__get_capabilities_response__descriptor, NULL,
				       enc_req_caps, NULL, dec_resp_caps },
	[PROTO_M_GENERATE_KEY] = { "GenerateKey", &keyhold__v1__generate_key_request__descriptor,
				   &keyhold__v1__generate_key_response__descriptor, NULL,
				   enc_req_generate, NULL, dec_resp_generate },
	[PROTO_M_LIST_KEYS] = { "ListKeys", &keyhold__v1__list_keys_request__descriptor,
				&keyhold__v1__list_keys_response__descriptor, NULL, enc_req_list,
				NULL, dec_resp_list },
	[PROTO_M_GET_PUBLIC_KEY] = { "GetPublicKey", &keyhold__v1__get_public_key_request__descriptor,
				     &keyhold__v1__get_public_key_response__descriptor, NULL,
				     enc_req_get_public, NULL, dec_resp_get_public },
	[PROTO_M_DELETE_KEY] = { "DeleteKey", &keyhold__v1__delete_key_request__descriptor,
				 &keyhold__v1__delete_key_response__descriptor, NULL, enc_req_delete,
				 NULL, dec_resp_none },
	[PROTO_M_SIGN] = { "Sign", &keyhold__v1__sign_request__descriptor,
			   &keyhold__v1__sign_response__descriptor, NULL, enc_req_sign, NULL,
			   dec_resp_sign },
	[PROTO_M_RUN_SELF_TEST] = { "RunSelfTest", &keyhold__v1__run_self_test_request__descriptor,
				    &keyhold__v1__run_self_test_response__descriptor, NULL,
				    proto_fips_enc_run_req, NULL, proto_fips_dec_run_resp },
	[PROTO_M_CREATE_CSR] = { "CreateCsr", &keyhold__v1__create_csr_request__descriptor,
		&keyhold__v1__create_csr_response__descriptor, NULL, proto_pki_enc_req_create_csr,
		NULL, proto_pki_dec_resp_create_csr },
	[PROTO_M_CREATE_TRUSTPOINT] = { "CreateTrustpoint", &keyhold__v1__create_trustpoint_request__descriptor,
		&keyhold__v1__create_trustpoint_response__descriptor, NULL, proto_pki_enc_req_create_tp,
		NULL, proto_pki_dec_resp_create_tp },
	[PROTO_M_LIST_TRUSTPOINTS] = { "ListTrustpoints", &keyhold__v1__list_trustpoints_request__descriptor,
		&keyhold__v1__list_trustpoints_response__descriptor, NULL, proto_pki_enc_req_list_tp,
		NULL, proto_pki_dec_resp_list_tp },
	[PROTO_M_GET_TRUSTPOINT] = { "GetTrustpoint", &keyhold__v1__get_trustpoint_request__descriptor,
		&keyhold__v1__get_trustpoint_response__descriptor, NULL, proto_pki_enc_req_get_tp,
		NULL, proto_pki_dec_resp_get_tp },
	[PROTO_M_DELETE_TRUSTPOINT] = { "DeleteTrustpoint", &keyhold__v1__delete_trustpoint_request__descriptor,
		&keyhold__v1__delete_trustpoint_response__descriptor, NULL, proto_pki_enc_req_delete_tp,
		NULL, proto_pki_dec_resp_delete_tp },
	[PROTO_M_AUTHENTICATE_TRUSTPOINT] = { "AuthenticateTrustpoint", &keyhold__v1__authenticate_trustpoint_request__descriptor,
		&keyhold__v1__authenticate_trustpoint_response__descriptor, NULL, proto_pki_enc_req_auth_tp,
		NULL, proto_pki_dec_resp_auth_tp },
	[PROTO_M_ENROLL_TRUSTPOINT] = { "EnrollTrustpoint", &keyhold__v1__enroll_trustpoint_request__descriptor,
		&keyhold__v1__enroll_trustpoint_response__descriptor, NULL, proto_pki_enc_req_enroll_tp,
		NULL, proto_pki_dec_resp_enroll_tp },
	[PROTO_M_IMPORT_CERTIFICATE] = { "ImportCertificate", &keyhold__v1__import_certificate_request__descriptor,
		&keyhold__v1__import_certificate_response__descriptor, NULL, proto_pki_enc_req_import_cert,
		NULL, proto_pki_dec_resp_import_cert },
	[PROTO_M_EXPORT_TRUSTPOINT] = { "ExportTrustpoint", &keyhold__v1__export_trustpoint_request__descriptor,
		&keyhold__v1__export_trustpoint_response__descriptor, NULL, proto_pki_enc_req_export_tp,
		NULL, proto_pki_dec_resp_export_tp },
	[PROTO_M_REGENERATE_TRUSTPOINT] = { "RegenerateTrustpoint", &keyhold__v1__regenerate_trustpoint_request__descriptor,
		&keyhold__v1__enroll_trustpoint_response__descriptor, NULL, proto_pki_enc_req_regen_tp,
		NULL, proto_pki_dec_resp_regen_tp },
	[PROTO_M_TRUSTSTORE_ADD] = { "TruststoreAdd", &keyhold__v1__truststore_add_request__descriptor,
		&keyhold__v1__truststore_add_response__descriptor, NULL, proto_pki_enc_req_ts_add,
		NULL, proto_pki_dec_resp_ts_add },
	[PROTO_M_TRUSTSTORE_LIST] = { "TruststoreList", &keyhold__v1__truststore_list_request__descriptor,
		&keyhold__v1__truststore_list_response__descriptor, NULL, proto_pki_enc_req_ts_list,
		NULL, proto_pki_dec_resp_ts_list },
	[PROTO_M_TRUSTSTORE_REMOVE] = { "TruststoreRemove", &keyhold__v1__truststore_remove_request__descriptor,
		&keyhold__v1__truststore_remove_response__descriptor, NULL, proto_pki_enc_req_ts_remove,
		NULL, proto_pki_dec_resp_ts_remove },
	[PROTO_M_TRUSTSTORE_VERIFY] = { "TruststoreVerify", &keyhold__v1__truststore_verify_request__descriptor,
		&keyhold__v1__truststore_verify_response__descriptor, NULL, proto_pki_enc_req_ts_verify,
		NULL, proto_pki_dec_resp_ts_verify },
	[PROTO_M_IMPORT_CRL] = { "ImportCrl", &keyhold__v1__import_crl_request__descriptor,
		&keyhold__v1__import_crl_response__descriptor, NULL, proto_pki_enc_req_import_crl,
		NULL, proto_pki_dec_resp_import_crl },
#define SEC_ROW(M, name, lc, msg)                                                                  \
	[M] = { name, &keyhold__v1__##msg##_request__descriptor, &keyhold__v1__##msg##_response__descriptor, \
		NULL, proto_sec_enc_req_##lc, NULL, proto_sec_dec_resp_##lc }
	SEC_ROW(PROTO_M_AUDIT_SHOW, "AuditShow", audit_show, audit_show),
	SEC_ROW(PROTO_M_AUDIT_VERIFY, "AuditVerify", audit_verify, audit_verify),
	SEC_ROW(PROTO_M_GRANT_KEY, "GrantKey", grant_key, grant_key),
	SEC_ROW(PROTO_M_REVOKE_KEY_GRANT, "RevokeKeyGrant", revoke_key_grant, revoke_key_grant),
	SEC_ROW(PROTO_M_LIST_KEY_GRANTS, "ListKeyGrants", list_key_grants, list_key_grants),
#undef SEC_ROW
	[PROTO_M_CHECK_CERTIFICATE] = { "CheckCertificate", &keyhold__v1__check_certificate_request__descriptor,
		&keyhold__v1__check_certificate_response__descriptor, NULL, proto_rev_enc_req_check_cert,
		NULL, proto_rev_dec_resp_check_cert },
	[PROTO_M_SET_TRUSTPOINT_POLICY] = { "SetTrustpointPolicy", &keyhold__v1__set_trustpoint_policy_request__descriptor,
		&keyhold__v1__get_trustpoint_response__descriptor, NULL, proto_rev_enc_req_tp_policy,
		NULL, proto_rev_dec_resp_tp_policy },
	[PROTO_M_SET_TRUSTSTORE_POLICY] = { "SetTruststorePolicy", &keyhold__v1__set_truststore_policy_request__descriptor,
		&keyhold__v1__set_truststore_policy_response__descriptor, NULL, proto_rev_enc_req_ts_policy,
		NULL, proto_rev_dec_resp_ts_policy },
	[PROTO_M_LIST_EXPIRING] = { "ListExpiring", &keyhold__v1__list_expiring_request__descriptor,
		&keyhold__v1__list_expiring_response__descriptor, NULL, proto_rev_enc_req_expiring,
		NULL, proto_rev_dec_resp_expiring },
	[PROTO_M_RUN_MONITOR] = { "RunMonitor", &keyhold__v1__run_monitor_request__descriptor,
		&keyhold__v1__run_monitor_response__descriptor, NULL, proto_rev_enc_req_monitor,
		NULL, proto_rev_dec_resp_monitor },
};

enum kh_err proto_check_methods(struct kh_errbuf *e)
{
	const ProtobufCServiceDescriptor *sd = &keyhold__v1__key_hold__descriptor;
	unsigned i;

	if (sd->n_methods != PROTO_M_COUNT)
		return kh_err_set(e, KH_E_INTERNAL, "keyhold.proto has %u methods, the table %d", sd->n_methods,
				  PROTO_M_COUNT);
	for (i = 0; i < PROTO_M_COUNT; i++) {
		const ProtobufCMethodDescriptor *md = &sd->methods[i];

		if (strcmp(md->name, proto_methods[i].name) != 0 || md->input != proto_methods[i].req ||
		    md->output != proto_methods[i].resp)
			return kh_err_set(e, KH_E_INTERNAL, "method %u is %s in keyhold.proto, %s in the table", i,
					  md->name, proto_methods[i].name);
	}
	return KH_OK;
}

const char *proto_method_name(enum proto_method m)
{
	if ((unsigned)m >= PROTO_M_COUNT)
		return NULL;
	return proto_methods[m].name;
}

const ProtobufCMessageDescriptor *proto_method_request(enum proto_method m)
{
	return (unsigned)m < PROTO_M_COUNT ? proto_methods[m].req : NULL;
}

const ProtobufCMessageDescriptor *proto_method_response(enum proto_method m)
{
	return (unsigned)m < PROTO_M_COUNT ? proto_methods[m].resp : NULL;
}

int proto_method_lookup(const char *name)
{
	const ProtobufCServiceDescriptor *sd = &keyhold__v1__key_hold__descriptor;
	const ProtobufCMethodDescriptor *md;

	if (name == NULL)
		return -1;
	md = protobuf_c_service_descriptor_get_method_by_name(sd, name);
	if (md == NULL)
		return -1;
	return (int)(md - sd->methods);
}

/* ---- envelopes ---- */

/* The method name must be the whole field: one with a NUL byte would be
 * cut short when unpacked (request_head.c). */
static enum kh_err proto_request_method_check(const uint8_t *buf, size_t len, struct kh_errbuf *e)
{
	struct proto_req_head h;

	if (!proto_request_head(buf, len, &h))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "malformed request envelope");
	if (h.method_nul)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the method name contains a NUL byte");
	return KH_OK;
}

enum kh_err proto_request_decode(const uint8_t *buf, size_t len, struct proto_req *out, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct proto_budget b1, b2;
	PB(Request) *env = NULL;
	ProtobufCMessage *body = NULL;
	const struct proto_method_spec *sp;
	int m;

	memset(out, 0, sizeof(*out));
	proto_budget_init(&b1, len);
	env = keyhold__v1__request__unpack(&b1.a, len, buf);
	KH_ENSURE(env != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "malformed request envelope"));
	out->id = env->id;
	out->have_id = true;
	out->deadline_ms = env->deadline_ms;
	KH_TRY(proto_request_method_check(buf, len, e));
	m = proto_method_lookup(env->method);
	KH_ENSURE(m >= 0 && m < PROTO_M_COUNT,
		  kh_err_set(e, KH_E_UNIMPLEMENTED, "unknown method '%.64s'", env->method));
	out->method = (enum proto_method)m;
	sp = &proto_methods[m];
	proto_budget_init(&b2, env->body.len);
	body = protobuf_c_message_unpack(sp->req, &b2.a, env->body.len, env->body.data);
	KH_ENSURE(body != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "malformed %s request body", sp->name));
	r = proto_validate(body, e);
	if (r == KH_OK && sp->req_dec != NULL)
		r = sp->req_dec(body, &out->body, e);
	if (r == KH_OK) {
		/* The budget allocator's blocks are malloc's: freed by
		 * protobuf-c's default allocator later. */
		out->msg = body;
		body = NULL;
	} else {
		proto_req_clear(out);
	}
out:
	protobuf_c_message_free_unpacked(body, &b2.a);
	if (env != NULL)
		keyhold__v1__request__free_unpacked(env, &b1.a);
	return r;
}

void proto_req_clear(struct proto_req *r)
{
	if (r == NULL)
		return;
	protobuf_c_message_free_unpacked(r->msg, NULL);
	r->msg = NULL;
	if (r->method == PROTO_M_SIGN)
		kh_sign_req_clear(&r->body.sign);
	proto_pki_req_clear(r->method, &r->body);
	memset(&r->body, 0, sizeof(r->body));
}

void proto_resp_clear(enum proto_method m, union proto_resp_body *b)
{
	if (b == NULL)
		return;
	switch (m) {
	case PROTO_M_GET_STATUS: kh_status_clear(&b->status); break;
	case PROTO_M_GET_CAPABILITIES: kh_capabilities_clear(&b->caps); break;
	case PROTO_M_GENERATE_KEY:
	case PROTO_M_GET_PUBLIC_KEY: kh_key_info_clear(&b->key); break;
	case PROTO_M_LIST_KEYS: kh_key_list_clear(&b->keys); break;
	case PROTO_M_SIGN: kh_sign_resp_clear(&b->sign); break;
	case PROTO_M_RUN_SELF_TEST: kh_selftest_report_clear(&b->selftest); break;
	case PROTO_M_AUDIT_SHOW: kh_audit_records_clear(&b->audit); break;
	case PROTO_M_LIST_KEY_GRANTS: kh_grant_list_clear(&b->grants); break;
	default:
		proto_pki_resp_clear(m, b);
		proto_rev_resp_clear(m, b);
		break;
	}
	memset(b, 0, sizeof(*b));
}

enum kh_err proto_response_encode(uint64_t id, enum kh_err code, const char *msg, enum proto_method m,
				  const union proto_resp_body *body, uint8_t **frame, size_t *frame_len)
{
	PB(Response) env = KEYHOLD__V1__RESPONSE__INIT;
	PB(Status) st = KEYHOLD__V1__STATUS__INIT;
	uint8_t *payload = NULL;
	size_t plen = 0;
	int r = KH_OK;

	if (code == KH_OK && (unsigned)m < PROTO_M_COUNT && proto_methods[m].resp_enc != NULL) {
		r = proto_methods[m].resp_enc(body, &payload, &plen);
		if (r != KH_OK) {
			code = r;
			msg = "cannot encode the response";
		}
	}
	env.id = id;
	st.code = -(int)code;
	st.message = (char *)(uintptr_t)(code == KH_OK || msg == NULL ? "" : msg);
	env.status = &st;
	if (code == KH_OK) {
		env.body.data = payload;
		env.body.len = plen;
	}
	r = proto_pack(&env.base, PROTO_HDR_LEN, frame, frame_len);
	free(payload);
	return r;
}

enum kh_err proto_response_encode_msg(uint64_t id, enum kh_err code, const char *msg,
				      const ProtobufCMessage *body, uint8_t **frame, size_t *frame_len)
{
	PB(Response) env = KEYHOLD__V1__RESPONSE__INIT;
	PB(Status) st = KEYHOLD__V1__STATUS__INIT;
	uint8_t *payload = NULL;
	size_t plen = 0;
	int r;

	if (code == KH_OK && body != NULL) {
		r = proto_pack(body, 0, &payload, &plen);
		if (r != KH_OK) {
			code = r;
			msg = "cannot encode the response";
		}
	}
	env.id = id;
	st.code = -(int)code;
	st.message = (char *)(uintptr_t)(code == KH_OK || msg == NULL ? "" : msg);
	env.status = &st;
	if (code == KH_OK) {
		env.body.data = payload;
		env.body.len = plen;
	}
	r = proto_pack(&env.base, PROTO_HDR_LEN, frame, frame_len);
	free(payload);
	return r;
}

enum kh_err proto_request_encode(uint64_t id, uint32_t deadline_ms, enum proto_method m,
				 const union proto_req_body *body, uint8_t **frame, size_t *frame_len)
{
	PB(Request) env = KEYHOLD__V1__REQUEST__INIT;
	uint8_t *payload = NULL;
	size_t plen = 0;
	int r;

	if ((unsigned)m >= PROTO_M_COUNT)
		return KH_E_INVALID_ARGUMENT;
	r = proto_methods[m].req_enc(body, &payload, &plen);
	if (r != KH_OK)
		return r;
	env.id = id;
	env.method = (char *)(uintptr_t)proto_methods[m].name;
	env.deadline_ms = deadline_ms;
	env.body.data = payload;
	env.body.len = plen;
	r = proto_pack(&env.base, PROTO_HDR_LEN, frame, frame_len);
	free(payload);
	return r;
}

enum kh_err proto_response_decode(const uint8_t *buf, size_t len, struct proto_resp *out)
{
	struct proto_budget b;
	PB(Response) *env;
	int code;

	memset(out, 0, sizeof(*out));
	proto_budget_init(&b, len);
	env = keyhold__v1__response__unpack(&b.a, len, buf);
	if (env == NULL)
		return KH_E_DATA_LOSS;
	out->id = env->id;
	code = env->status != NULL ? env->status->code : 0;
	if (code < 0 || code > 16)
		code = 2; /* UNKNOWN */
	out->status.code = (enum kh_err)-code;
	if (env->status != NULL && env->status->message != NULL)
		kh_strlcpy(out->status.msg, env->status->message, sizeof(out->status.msg));
	/* Take the body bytes rather than copying them. */
	out->body = env->body.data;
	out->body_len = env->body.len;
	env->body.data = NULL;
	env->body.len = 0;
	keyhold__v1__response__free_unpacked(env, &b.a);
	return KH_OK;
}

void proto_resp_env_clear(struct proto_resp *r)
{
	if (r == NULL)
		return;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

enum kh_err proto_response_body_decode(enum proto_method m, const uint8_t *buf, size_t len,
				       union proto_resp_body *out, struct kh_errbuf *e)
{
	struct proto_budget b;
	ProtobufCMessage *msg;
	int r;

	memset(out, 0, sizeof(*out));
	if ((unsigned)m >= PROTO_M_COUNT)
		return KH_E_INVALID_ARGUMENT;
	proto_budget_init(&b, len);
	msg = protobuf_c_message_unpack(proto_methods[m].resp, &b.a, len, buf);
	if (msg == NULL)
		return kh_err_set(e, KH_E_DATA_LOSS, "malformed %s response from the server", proto_methods[m].name);
	r = proto_methods[m].resp_dec(msg, out, e);
	if (r != KH_OK)
		proto_resp_clear(m, out);
	protobuf_c_message_free_unpacked(msg, &b.a);
	return r;
}
