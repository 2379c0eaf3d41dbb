/* codec_security.c: the client side of the security RPCs: AuditShow,
 * AuditVerify, GrantKey, RevokeKeyGrant, ListKeyGrants (requests encoded,
 * answers decoded). The server validates requests in validate.c and builds
 * answers as generated messages (rpc/h_audit.c, rpc/h_grants.c). */
#include <stdlib.h>
#include <string.h>

#include "codec_util.h"
#include "keyhold.pb-c.h"
#include "codec_security.h"
#include "kh_util.h"

#define PB(x) Keyhold__V1__##x
#define S(x) proto_mut(x)
/* A grant lists at most this many digests or paddings. */
#define SEC_ENUM_LIST_MAX 16

/* ---- AuditShow ---- */

enum kh_err proto_sec_enc_req_audit_show(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(AuditShowRequest) m = KEYHOLD__V1__AUDIT_SHOW_REQUEST__INIT;

	m.since = b->audit_show.since_s;
	m.from_seq = b->audit_show.from_seq;
	m.limit = b->audit_show.limit;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_sec_dec_resp_audit_show(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	const PB(AuditShowResponse) *p = (const void *)m;
	struct kh_audit_records *a = &b->audit;
	size_t i;

	(void)e;
	memset(b, 0, sizeof(*b));
	a->recs = calloc(p->n_records ? p->n_records : 1, sizeof(*a->recs));
	if (a->recs == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < p->n_records; i++) {
		const PB(AuditRecord) *x = p->records[i];
		struct kh_audit_record *y = &a->recs[i];

		y->seq = x->seq;
		y->time_us = x->time_us;
		proto_cstr(y->principal, sizeof(y->principal), x->principal);
		proto_cstr(y->method, sizeof(y->method), x->method);
		proto_cstr(y->object, sizeof(y->object), x->object);
		y->code = x->code >= 0 && x->code <= 16 ? -x->code : KH_E_UNKNOWN;
		y->duration_us = x->duration_us;
		y->count = x->count;
		y->checkpoint = x->checkpoint;
	}
	a->n = p->n_records;
	a->next_seq = p->next_seq;
	a->more = p->more;
	return KH_OK;
}

/* ---- AuditVerify ---- */

enum kh_err proto_sec_enc_req_audit_verify(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(AuditVerifyRequest) m = KEYHOLD__V1__AUDIT_VERIFY_REQUEST__INIT;

	(void)b;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_sec_dec_resp_audit_verify(const ProtobufCMessage *m, union proto_resp_body *b,
					    struct kh_errbuf *e)
{
	const PB(AuditVerifyResponse) *p = (const void *)m;
	struct kh_audit_verify *v = &b->audit_verify;

	(void)e;
	memset(b, 0, sizeof(*b));
	v->ok = p->ok;
	v->records = p->records;
	v->checkpoints = p->checkpoints;
	v->bad_seq = p->bad_seq;
	v->bad_line = p->bad_line;
	proto_cstr(v->reason, sizeof(v->reason), p->reason);
	v->unsigned_tail = p->unsigned_tail;
	v->last_checkpoint_seq = p->last_checkpoint_seq;
	proto_cstr(v->key_fp, sizeof(v->key_fp), p->key_fingerprint);
	return KH_OK;
}

/* ---- grants ---- */

/* A grant from a server's answer: out-of-range digests and paddings are
 * dropped (the server validated what it stored). */
static enum kh_err sec_grant_from(const PB(KeyGrant) *g, struct kh_key_grant *out, struct kh_errbuf *e)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	if (g == NULL)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the grant is missing");
	proto_cstr(out->key, sizeof(out->key), g->key);
	proto_cstr(out->principal, sizeof(out->principal), g->principal);
	for (i = 0; i < g->n_digests && i < SEC_ENUM_LIST_MAX; i++) {
		unsigned d = (unsigned)g->digests[i];

		if (d <= KH_DIGEST_MAX)
			out->digests |= 1u << d;
	}
	for (i = 0; i < g->n_paddings && i < SEC_ENUM_LIST_MAX; i++) {
		unsigned p = (unsigned)g->paddings[i];

		if (p <= KH_PAD_MAX)
			out->paddings |= 1u << p;
	}
	proto_cstr(out->source, sizeof(out->source), g->source);
	return KH_OK;
}

/* Fills m from g; digests/paddings point into the caller's arrays. */
static void sec_grant_to(const struct kh_key_grant *g, PB(KeyGrant) *m, PB(Digest) *digs, PB(Padding) *pads)
{
	unsigned i;

	keyhold__v1__key_grant__init(m);
	m->key = S(g->key);
	m->principal = S(g->principal);
	m->source = S(g->source);
	for (i = 1; i <= KH_DIGEST_MAX; i++)
		if (g->digests & (1u << i))
			digs[m->n_digests++] = (PB(Digest))i;
	for (i = 1; i <= KH_PAD_MAX; i++)
		if (g->paddings & (1u << i))
			pads[m->n_paddings++] = (PB(Padding))i;
	m->digests = digs;
	m->paddings = pads;
}

enum kh_err proto_sec_enc_req_grant_key(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(GrantKeyRequest) m = KEYHOLD__V1__GRANT_KEY_REQUEST__INIT;
	PB(KeyGrant) g;
	PB(Digest) digs[KH_DIGEST_MAX + 1];
	PB(Padding) pads[KH_PAD_MAX + 1];

	sec_grant_to(&b->grant, &g, digs, pads);
	m.grant = &g;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_sec_dec_resp_grant_key(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	(void)m;
	(void)e;
	memset(b, 0, sizeof(*b));
	return KH_OK;
}

enum kh_err proto_sec_enc_req_revoke_key_grant(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(RevokeKeyGrantRequest) m;

	keyhold__v1__revoke_key_grant_request__init(&m);
	m.key = S(b->grant_ref.key);
	m.principal = S(b->grant_ref.principal);
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_sec_dec_resp_revoke_key_grant(const ProtobufCMessage *m, union proto_resp_body *b,
						struct kh_errbuf *e)
{
	(void)m;
	(void)e;
	memset(b, 0, sizeof(*b));
	return KH_OK;
}

enum kh_err proto_sec_enc_req_list_key_grants(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(ListKeyGrantsRequest) m;

	keyhold__v1__list_key_grants_request__init(&m);
	m.key = S(b->grant_filter.key);
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_sec_dec_resp_list_key_grants(const ProtobufCMessage *m, union proto_resp_body *b,
					       struct kh_errbuf *e)
{
	const PB(ListKeyGrantsResponse) *p = (const void *)m;
	struct kh_grant_list *l = &b->grants;
	size_t i;
	int r = KH_OK;

	memset(b, 0, sizeof(*b));
	l->grants = calloc(p->n_grants ? p->n_grants : 1, sizeof(*l->grants));
	if (l->grants == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < p->n_grants && r == KH_OK; i++, l->n++)
		r = sec_grant_from(p->grants[i], &l->grants[i], e);
	return r;
}
