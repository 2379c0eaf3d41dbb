/* codec_pki.c: protobuf <-> validated structs for the PKI RPCs (CSRs,
 * trustpoints, trust stores, CRLs). Server decoders check every name,
 * length and enum; byte payloads are handed over, not copied. */
#include <stdlib.h>
#include <string.h>

#include "codec_util.h"
#include "codec_pki.h"
#include "keyhold.pb-c.h"
#include "kh_util.h"

#define PB(x) Keyhold__V1__##x
#define S(x) ((char *)(uintptr_t)(x))

/* ---- CertInfo lists (client side) ---- */

static enum kh_err certs_from(PB(CertInfo) *const *v, size_t n, struct kh_cert_list *out)
{
	size_t i;

	out->certs = calloc(n ? n : 1, sizeof(*out->certs));
	if (out->certs == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < n; i++)
		proto_cert_from(v[i], &out->certs[i]);
	out->n = n;
	return KH_OK;
}


static void crl_from(const PB(CrlInfo) *m, struct kh_crl_info *c)
{
	memset(c, 0, sizeof(*c));
	if (m == NULL)
		return;
	proto_cstr(c->issuer, sizeof(c->issuer), m->issuer);
	c->this_update = m->this_update;
	c->next_update = m->next_update;
	c->revoked = m->revoked;
	proto_cstr(c->number, sizeof(c->number), m->number);
	proto_cstr(c->fingerprint, sizeof(c->fingerprint), m->fingerprint);
}

static enum kh_err tp_from(const PB(Trustpoint) *m, struct kh_trustpoint *t)
{
	int r;

	memset(t, 0, sizeof(*t));
	if (m == NULL)
		return KH_E_DATA_LOSS;
	proto_cstr(t->name, sizeof(t->name), m->name);
	proto_cstr(t->key, sizeof(t->key), m->key);
	t->key_type = (enum kh_key_type)m->key_type;
	t->key_generated = m->key_generated;
	proto_cstr(t->subject, sizeof(t->subject), m->subject);
	proto_cstr(t->fqdn, sizeof(t->fqdn), m->fqdn);
	proto_cstr(t->san, sizeof(t->san), m->san);
	proto_cstr(t->eku, sizeof(t->eku), m->eku);
	t->enrollment = (enum kh_enrollment)m->enrollment;
	proto_cstr(t->revocation, sizeof(t->revocation), m->revocation);
	t->digest = (enum kh_digest)m->digest;
	t->validity_days = m->validity_days;
	if ((r = certs_from(m->ca, m->n_ca, &t->ca)) != KH_OK ||
	    (r = certs_from(m->chain, m->n_chain, &t->chain)) != KH_OK)
		return r;
	if (m->cert != NULL) {
		t->has_cert = true;
		proto_cert_from(m->cert, &t->cert);
	}
	if (m->pending_csr != NULL && m->pending_csr[0] != '\0') {
		t->pending_csr = strdup(m->pending_csr);
		if (t->pending_csr == NULL)
			return KH_E_RESOURCE_EXHAUSTED;
	}
	proto_cstr(t->pending_csr_key, sizeof(t->pending_csr_key), m->pending_csr_key);
	t->pending_csr_created = m->pending_csr_created;
	proto_cstr(t->next_key, sizeof(t->next_key), m->next_key);
	t->created = m->created;
	t->updated = m->updated;
	proto_cstr(t->ocsp_url, sizeof(t->ocsp_url), m->ocsp_url);
	t->renew_at = m->renew_at;
	t->renew_regenerate = m->renew_regenerate;
	proto_cstr(t->renewal, sizeof(t->renewal), m->renewal);
	t->renew_after = m->renew_after;
	return KH_OK;
}

/* ---- CreateCsr ---- */

enum kh_err proto_pki_enc_req_create_csr(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(CreateCsrRequest) m = KEYHOLD__V1__CREATE_CSR_REQUEST__INIT;
	const struct kh_csr_req *q = &b->csr;

	m.key = S(q->key);
	m.subject = S(q->subject);
	m.san = S(q->san);
	m.eku = S(q->eku);
	m.digest = (PB(Digest))q->digest;
	m.challenge_password = S(q->challenge);
	return proto_pack_msg(&m.base, out, len);
}

static enum kh_err bytes_from_str(const char *s, struct kh_bytes *out)
{
	size_t n = s != NULL ? strlen(s) : 0;

	out->data = malloc(n + 1);
	if (out->data == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	if (n > 0)
		memcpy(out->data, s, n);
	out->data[n] = '\0';
	out->len = n;
	return KH_OK;
}

enum kh_err proto_pki_dec_resp_create_csr(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	(void)e;
	memset(b, 0, sizeof(*b));
	return bytes_from_str(((const PB(CreateCsrResponse) *)(const void *)cm)->pem, &b->pem);
}

/* ---- CreateTrustpoint ---- */

enum kh_err proto_pki_enc_req_create_tp(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(CreateTrustpointRequest) m = KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__INIT;
	const struct kh_tp_create_req *q = &b->tp_create;

	m.name = S(q->name);
	if (q->generate != KH_KEY_UNSPECIFIED) {
		m.key_source_case = KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE;
		m.generate = (PB(KeyType))q->generate;
	} else if (q->key[0] != '\0') {
		m.key_source_case = KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_KEY;
		m.key = S(q->key);
	}
	m.subject = S(q->subject);
	m.fqdn = S(q->fqdn);
	m.san = S(q->san);
	m.eku = S(q->eku);
	m.enrollment = (PB(Enrollment))q->enrollment;
	m.revocation = S(q->revocation);
	m.digest = (PB(Digest))q->digest;
	m.validity_days = q->validity_days;
	m.renew_at = q->renew_at;
	m.renew_regenerate = q->renew_regenerate;
	m.ocsp_url = S(q->ocsp_url);
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_pki_dec_resp_create_tp(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	(void)e;
	return tp_from(((const PB(CreateTrustpointResponse) *)(const void *)cm)->trustpoint, &b->tp);
}

/* ---- ListTrustpoints ---- */

enum kh_err proto_pki_enc_req_list_tp(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(ListTrustpointsRequest) m = KEYHOLD__V1__LIST_TRUSTPOINTS_REQUEST__INIT;

	(void)b;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_pki_dec_resp_list_tp(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(ListTrustpointsResponse) *p = (const void *)cm;
	size_t i;
	int r = KH_OK;

	(void)e;
	memset(b, 0, sizeof(*b));
	b->tps.tps = calloc(p->n_trustpoints ? p->n_trustpoints : 1, sizeof(*b->tps.tps));
	if (b->tps.tps == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < p->n_trustpoints && r == KH_OK; i++, b->tps.n++)
		r = tp_from(p->trustpoints[i], &b->tps.tps[i]);
	return r;
}

/* ---- GetTrustpoint / EnrollTrustpoint (a name) ---- */

enum kh_err proto_pki_enc_req_get_tp(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(GetTrustpointRequest) m = KEYHOLD__V1__GET_TRUSTPOINT_REQUEST__INIT;

	m.name = S(b->name.name);
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_pki_dec_resp_get_tp(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	(void)e;
	return tp_from(((const PB(GetTrustpointResponse) *)(const void *)cm)->trustpoint, &b->tp);
}

/* ---- DeleteTrustpoint ---- */

enum kh_err proto_pki_enc_req_delete_tp(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(DeleteTrustpointRequest) m = KEYHOLD__V1__DELETE_TRUSTPOINT_REQUEST__INIT;

	m.name = S(b->tp_delete.name);
	m.keep_key = b->tp_delete.keep_key;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_pki_dec_resp_delete_tp(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(DeleteTrustpointResponse) *p = (const void *)cm;
	size_t i;

	(void)e;
	memset(b, 0, sizeof(*b));
	for (i = 0; i < p->n_deleted_keys && i < 2; i++)
		proto_cstr(b->tp_delete.deleted_keys[i], sizeof(b->tp_delete.deleted_keys[i]), p->deleted_keys[i]);
	b->tp_delete.n_deleted = i;
	return KH_OK;
}

/* ---- AuthenticateTrustpoint ---- */

enum kh_err proto_pki_enc_req_auth_tp(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(AuthenticateTrustpointRequest) m = KEYHOLD__V1__AUTHENTICATE_TRUSTPOINT_REQUEST__INIT;
	const struct kh_tp_auth_req *q = &b->tp_auth;

	m.name = S(q->name);
	m.ca.data = q->ca.data;
	m.ca.len = q->ca.len;
	m.confirm = q->confirm;
	m.fingerprint = S(q->fingerprint);
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_pki_dec_resp_auth_tp(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(AuthenticateTrustpointResponse) *p = (const void *)cm;

	(void)e;
	memset(b, 0, sizeof(*b));
	return certs_from(p->ca, p->n_ca, &b->certs);
}

/* ---- EnrollTrustpoint / RegenerateTrustpoint ---- */

enum kh_err proto_pki_enc_req_enroll_tp(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(EnrollTrustpointRequest) m = KEYHOLD__V1__ENROLL_TRUSTPOINT_REQUEST__INIT;

	m.name = S(b->name.name);
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_pki_dec_resp_enroll_tp(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(EnrollTrustpointResponse) *p = (const void *)cm;
	struct kh_enroll_resp *q = &b->enroll;

	(void)e;
	memset(b, 0, sizeof(*b));
	q->enrollment = (enum kh_enrollment)p->enrollment;
	proto_cstr(q->key, sizeof(q->key), p->key);
	if (p->csr_pem != NULL && p->csr_pem[0] != '\0') {
		q->csr_pem = strdup(p->csr_pem);
		if (q->csr_pem == NULL)
			return KH_E_RESOURCE_EXHAUSTED;
	}
	if (p->cert != NULL) {
		q->has_cert = true;
		proto_cert_from(p->cert, &q->cert);
	}
	proto_cstr(q->retired_key, sizeof(q->retired_key), p->retired_key);
	return KH_OK;
}

enum kh_err proto_pki_enc_req_regen_tp(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(RegenerateTrustpointRequest) m = KEYHOLD__V1__REGENERATE_TRUSTPOINT_REQUEST__INIT;

	m.name = S(b->tp_regen.name);
	m.type = (PB(KeyType))b->tp_regen.type;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_pki_dec_resp_regen_tp(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	return proto_pki_dec_resp_enroll_tp(cm, b, e);
}

/* ---- ImportCertificate ---- */

enum kh_err proto_pki_enc_req_import_cert(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(ImportCertificateRequest) m = KEYHOLD__V1__IMPORT_CERTIFICATE_REQUEST__INIT;

	m.name = S(b->tp_import.name);
	m.data.data = b->tp_import.data.data;
	m.data.len = b->tp_import.data.len;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_pki_dec_resp_import_cert(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(ImportCertificateResponse) *p = (const void *)cm;
	struct kh_import_resp *q = &b->import;
	size_t i;

	(void)e;
	memset(b, 0, sizeof(*b));
	proto_cert_from(p->cert, &q->cert);
	q->chain_len = p->chain_len;
	for (i = 0; i < p->n_warnings && i < KH_PKI_WARN_MAX; i++)
		proto_cstr(q->warnings[i], sizeof(q->warnings[i]), p->warnings[i]);
	q->n_warnings = i;
	proto_cstr(q->key, sizeof(q->key), p->key);
	proto_cstr(q->retired_key, sizeof(q->retired_key), p->retired_key);
	return KH_OK;
}

/* ---- ExportTrustpoint ---- */

enum kh_err proto_pki_enc_req_export_tp(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(ExportTrustpointRequest) m = KEYHOLD__V1__EXPORT_TRUSTPOINT_REQUEST__INIT;

	m.name = S(b->tp_export.name);
	m.chain = b->tp_export.chain;
	m.format = (PB(CertFormat))b->tp_export.format;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_pki_dec_resp_export_tp(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(ExportTrustpointResponse) *p = (const void *)cm;

	(void)e;
	memset(b, 0, sizeof(*b));
	b->pem.data = malloc(p->data.len + 1);
	if (b->pem.data == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	if (p->data.len > 0)
		memcpy(b->pem.data, p->data.data, p->data.len);
	b->pem.data[p->data.len] = '\0';
	b->pem.len = p->data.len;
	return KH_OK;
}

/* ---- TruststoreAdd ---- */


enum kh_err proto_pki_enc_req_ts_add(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(TruststoreAddRequest) m = KEYHOLD__V1__TRUSTSTORE_ADD_REQUEST__INIT;
	const struct kh_ts_add_req *q = &b->ts_add;
	ProtobufCBinaryData *f = calloc(q->n_files ? q->n_files : 1, sizeof(*f));
	size_t i;
	int r;

	if (f == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < q->n_files; i++) {
		f[i].data = q->files[i].data;
		f[i].len = q->files[i].len;
	}
	m.store = S(q->store);
	m.n_files = q->n_files;
	m.files = f;
	r = proto_pack_msg(&m.base, out, len);
	free(f);
	return r;
}


enum kh_err proto_pki_dec_resp_ts_add(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(TruststoreAddResponse) *p = (const void *)cm;
	struct kh_ts_add_resp *q = &b->ts_add;
	size_t i;

	(void)e;
	memset(b, 0, sizeof(*b));
	q->already_present = p->already_present;
	for (i = 0; i < p->n_warnings && i < KH_PKI_WARN_MAX; i++)
		proto_cstr(q->warnings[i], sizeof(q->warnings[i]), p->warnings[i]);
	q->n_warnings = i;
	return certs_from(p->added, p->n_added, &q->added);
}

/* ---- TruststoreList ---- */


enum kh_err proto_pki_enc_req_ts_list(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(TruststoreListRequest) m = KEYHOLD__V1__TRUSTSTORE_LIST_REQUEST__INIT;

	m.store = S(b->ts_name.store);
	return proto_pack_msg(&m.base, out, len);
}


enum kh_err proto_pki_dec_resp_ts_list(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(TruststoreListResponse) *p = (const void *)cm;
	struct kh_truststore_list *l = &b->stores;
	size_t i, j;
	int r = KH_OK;

	(void)e;
	memset(b, 0, sizeof(*b));
	l->stores = calloc(p->n_stores ? p->n_stores : 1, sizeof(*l->stores));
	if (l->stores == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < p->n_stores && r == KH_OK; i++, l->n++) {
		const PB(Truststore) *s = p->stores[i];
		struct kh_truststore *t = &l->stores[i];

		proto_cstr(t->name, sizeof(t->name), s->name);
		t->n_certs = s->cert_count;
		r = certs_from(s->certs, s->n_certs, &t->certs);
		if (r != KH_OK)
			break;
		t->crls = calloc(s->n_crls ? s->n_crls : 1, sizeof(*t->crls));
		if (t->crls == NULL) {
			r = KH_E_RESOURCE_EXHAUSTED;
			break;
		}
		for (j = 0; j < s->n_crls; j++)
			crl_from(s->crls[j], &t->crls[j]);
		t->n_crls = s->n_crls;
		proto_cstr(t->revocation, sizeof(t->revocation), s->revocation);
		proto_cstr(t->ocsp_url, sizeof(t->ocsp_url), s->ocsp_url);
	}
	return r;
}

/* ---- TruststoreRemove ---- */


enum kh_err proto_pki_enc_req_ts_remove(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(TruststoreRemoveRequest) m = KEYHOLD__V1__TRUSTSTORE_REMOVE_REQUEST__INIT;

	m.store = S(b->ts_remove.store);
	m.fingerprint = S(b->ts_remove.fingerprint);
	return proto_pack_msg(&m.base, out, len);
}


enum kh_err proto_pki_dec_resp_ts_remove(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(TruststoreRemoveResponse) *p = (const void *)cm;

	(void)e;
	memset(b, 0, sizeof(*b));
	proto_cert_from(p->removed, &b->ts_remove.removed);
	b->ts_remove.store_deleted = p->store_deleted;
	return KH_OK;
}

/* ---- TruststoreVerify ---- */


enum kh_err proto_pki_enc_req_ts_verify(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(TruststoreVerifyRequest) m = KEYHOLD__V1__TRUSTSTORE_VERIFY_REQUEST__INIT;
	const struct kh_ts_verify_req *q = &b->ts_verify;
	ProtobufCBinaryData *c = calloc(q->n_crls ? q->n_crls : 1, sizeof(*c));
	size_t i;
	int r;

	if (c == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	m.store = S(q->store);
	m.cert.data = q->cert.data;
	m.cert.len = q->cert.len;
	m.untrusted.data = q->untrusted.data;
	m.untrusted.len = q->untrusted.len;
	m.at = q->at;
	m.host = S(q->host);
	m.ip = S(q->ip);
	m.purpose = (PB(Purpose))q->purpose;
	for (i = 0; i < q->n_crls; i++) {
		c[i].data = q->crls[i].data;
		c[i].len = q->crls[i].len;
	}
	m.n_crls = q->n_crls;
	m.crls = c;
	r = proto_pack_msg(&m.base, out, len);
	free(c);
	return r;
}


enum kh_err proto_pki_dec_resp_ts_verify(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(TruststoreVerifyResponse) *p = (const void *)cm;
	struct kh_ts_verify_resp *q = &b->verify;

	(void)e;
	memset(b, 0, sizeof(*b));
	q->valid = p->valid;
	q->error = p->error;
	q->error_depth = p->error_depth;
	proto_cstr(q->reason, sizeof(q->reason), p->reason);
	q->revocation_status = (unsigned)p->revocation_status <= KH_REV_STATUS_MAX ? (uint32_t)p->revocation_status
										     : KH_REV_UNKNOWN;
	q->revocation_soft_fail = p->revocation_soft_fail;
	proto_cstr(q->revocation_detail, sizeof(q->revocation_detail), p->revocation_detail);
	return certs_from(p->chain, p->n_chain, &q->chain);
}

/* ---- ImportCrl ---- */


enum kh_err proto_pki_enc_req_import_crl(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(ImportCrlRequest) m = KEYHOLD__V1__IMPORT_CRL_REQUEST__INIT;

	m.store = S(b->crl_import.store);
	m.crl.data = b->crl_import.crl.data;
	m.crl.len = b->crl_import.crl.len;
	return proto_pack_msg(&m.base, out, len);
}


enum kh_err proto_pki_dec_resp_import_crl(const ProtobufCMessage *cm, union proto_resp_body *b, struct kh_errbuf *e)
{
	(void)e;
	memset(b, 0, sizeof(*b));
	crl_from(((const PB(ImportCrlResponse) *)(const void *)cm)->crl, &b->crl);
	return KH_OK;
}

/* ---- clear ---- */

void proto_pki_req_clear(enum proto_method m, union proto_req_body *b)
{
	switch (m) {
	case PROTO_M_AUTHENTICATE_TRUSTPOINT: kh_tp_auth_req_clear(&b->tp_auth); break;
	case PROTO_M_IMPORT_CERTIFICATE: kh_tp_import_req_clear(&b->tp_import); break;
	default: break;
	}
}

void proto_pki_resp_clear(enum proto_method m, union proto_resp_body *b)
{
	switch (m) {
	case PROTO_M_CREATE_CSR:
	case PROTO_M_EXPORT_TRUSTPOINT: kh_bytes_clear(&b->pem); break;
	case PROTO_M_CREATE_TRUSTPOINT:
	case PROTO_M_GET_TRUSTPOINT: kh_trustpoint_clear(&b->tp); break;
	case PROTO_M_LIST_TRUSTPOINTS: kh_trustpoint_list_clear(&b->tps); break;
	case PROTO_M_AUTHENTICATE_TRUSTPOINT: kh_cert_list_clear(&b->certs); break;
	case PROTO_M_ENROLL_TRUSTPOINT:
	case PROTO_M_REGENERATE_TRUSTPOINT: kh_enroll_resp_clear(&b->enroll); break;
	case PROTO_M_TRUSTSTORE_ADD: kh_ts_add_resp_clear(&b->ts_add); break;
	case PROTO_M_TRUSTSTORE_LIST: kh_truststore_list_clear(&b->stores); break;
	case PROTO_M_TRUSTSTORE_VERIFY: kh_ts_verify_resp_clear(&b->verify); break;
	default: break;
	}
}
