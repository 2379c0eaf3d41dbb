/* codec_security.c: protobuf <-> validated structs for the security RPCs:
 * AuditShow, AuditVerify, GrantKey, RevokeKeyGrant, ListKeyGrants. */
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
/* Records in one AuditShow answer, at most. */
#define SEC_AUDIT_PAGE_MAX 4096

static enum kh_err sec_key_name(const char *in, char *out, size_t outsz, struct kh_errbuf *e)
{
	if (!kh_name_valid(in))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "key name must match [A-Za-z0-9._-]{1,64}");
	kh_strlcpy(out, in, outsz);
	return KH_OK;
}

static enum kh_err sec_principal(const char *in, char *out, size_t outsz, struct kh_errbuf *e)
{
	if (!kh_principal_valid(in))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "principal must be uid:N, gid:N, user:NAME, group:NAME or cert:NAME (printable, no blanks or commas, at most %d characters)",
				  KH_PRINCIPAL_MAX);
	kh_strlcpy(out, in, outsz);
	return KH_OK;
}

/* ---- AuditShow ---- */

enum kh_err proto_sec_dec_audit_show(const ProtobufCMessage *m, union proto_req_body *b, struct kh_errbuf *e)
{
	const PB(AuditShowRequest) *p = (const void *)m;

	(void)e;
	memset(b, 0, sizeof(*b));
	b->audit_show.since_s = p->since;
	b->audit_show.from_seq = p->from_seq;
	b->audit_show.limit = p->limit > SEC_AUDIT_PAGE_MAX ? SEC_AUDIT_PAGE_MAX : p->limit;
	return KH_OK;
}

enum kh_err proto_sec_enc_req_audit_show(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(AuditShowRequest) m = KEYHOLD__V1__AUDIT_SHOW_REQUEST__INIT;

	m.since = b->audit_show.since_s;
	m.from_seq = b->audit_show.from_seq;
	m.limit = b->audit_show.limit;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_sec_enc_resp_audit_show(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	const struct kh_audit_records *a = &b->audit;
	PB(AuditShowResponse) m = KEYHOLD__V1__AUDIT_SHOW_RESPONSE__INIT;
	PB(AuditRecord) *recs = NULL, **ptrs = NULL;
	size_t i;
	int r;

	recs = calloc(a->n ? a->n : 1, sizeof(*recs));
	ptrs = calloc(a->n ? a->n : 1, sizeof(*ptrs));
	if (recs == NULL || ptrs == NULL) {
		r = KH_E_RESOURCE_EXHAUSTED;
		goto out;
	}
	for (i = 0; i < a->n; i++) {
		const struct kh_audit_record *x = &a->recs[i];

		keyhold__v1__audit_record__init(&recs[i]);
		recs[i].seq = x->seq;
		recs[i].time_us = x->time_us;
		recs[i].principal = S(x->principal);
		recs[i].method = S(x->method);
		recs[i].object = S(x->object);
		recs[i].code = -x->code;
		recs[i].duration_us = x->duration_us;
		recs[i].count = x->count;
		recs[i].checkpoint = x->checkpoint;
		ptrs[i] = &recs[i];
	}
	m.n_records = a->n;
	m.records = ptrs;
	m.next_seq = a->next_seq;
	m.more = a->more;
	r = proto_pack_msg(&m.base, out, len);
out:
	free(recs);
	free(ptrs);
	return r;
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

enum kh_err proto_sec_dec_audit_verify(const ProtobufCMessage *m, union proto_req_body *b, struct kh_errbuf *e)
{
	(void)m;
	(void)e;
	memset(b, 0, sizeof(*b));
	return KH_OK;
}

enum kh_err proto_sec_enc_req_audit_verify(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(AuditVerifyRequest) m = KEYHOLD__V1__AUDIT_VERIFY_REQUEST__INIT;

	(void)b;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_sec_enc_resp_audit_verify(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	const struct kh_audit_verify *v = &b->audit_verify;
	PB(AuditVerifyResponse) m;

	/* _init(), not the INIT macro: its string defaults drop const. */
	keyhold__v1__audit_verify_response__init(&m);
	m.ok = v->ok;
	m.records = v->records;
	m.checkpoints = v->checkpoints;
	m.bad_seq = v->bad_seq;
	m.bad_line = v->bad_line;
	m.reason = S(v->reason);
	m.unsigned_tail = v->unsigned_tail;
	m.last_checkpoint_seq = v->last_checkpoint_seq;
	m.key_fingerprint = S(v->key_fp);
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

static enum kh_err sec_grant_from(const PB(KeyGrant) *g, struct kh_key_grant *out, bool validate,
				  struct kh_errbuf *e)
{
	size_t i;
	int r = KH_OK;

	memset(out, 0, sizeof(*out));
	KH_ENSURE(g != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "the grant is missing"));
	if (validate) {
		KH_TRY(sec_key_name(g->key, out->key, sizeof(out->key), e));
		KH_TRY(sec_principal(g->principal, out->principal, sizeof(out->principal), e));
		KH_ENSURE(g->n_digests <= SEC_ENUM_LIST_MAX && g->n_paddings <= SEC_ENUM_LIST_MAX,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "a grant lists at most %d digests and paddings",
				     SEC_ENUM_LIST_MAX));
	} else {
		proto_cstr(out->key, sizeof(out->key), g->key);
		proto_cstr(out->principal, sizeof(out->principal), g->principal);
	}
	for (i = 0; i < g->n_digests && i < SEC_ENUM_LIST_MAX; i++) {
		unsigned d = (unsigned)g->digests[i];

		KH_ENSURE(!validate || (d >= 1 && d <= KH_DIGEST_MAX),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "digest %d in a grant is unknown; name sha256, sha384 or sha512",
				     (int)g->digests[i]));
		if (d <= KH_DIGEST_MAX)
			out->digests |= 1u << d;
	}
	for (i = 0; i < g->n_paddings && i < SEC_ENUM_LIST_MAX; i++) {
		unsigned p = (unsigned)g->paddings[i];

		KH_ENSURE(!validate || (p >= 1 && p <= KH_PAD_MAX),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "padding %d in a grant is unknown; name pkcs1 or pss",
				     (int)g->paddings[i]));
		if (p <= KH_PAD_MAX)
			out->paddings |= 1u << p;
	}
	proto_cstr(out->source, sizeof(out->source), g->source);
out:
	return r;
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

enum kh_err proto_sec_dec_grant_key(const ProtobufCMessage *m, union proto_req_body *b, struct kh_errbuf *e)
{
	const PB(GrantKeyRequest) *p = (const void *)m;

	memset(b, 0, sizeof(*b));
	return sec_grant_from(p->grant, &b->grant, true, e);
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

enum kh_err proto_sec_enc_resp_grant_key(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	PB(GrantKeyResponse) m = KEYHOLD__V1__GRANT_KEY_RESPONSE__INIT;

	(void)b;
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_sec_dec_resp_grant_key(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e)
{
	(void)m;
	(void)e;
	memset(b, 0, sizeof(*b));
	return KH_OK;
}

enum kh_err proto_sec_dec_revoke_key_grant(const ProtobufCMessage *m, union proto_req_body *b,
					   struct kh_errbuf *e)
{
	const PB(RevokeKeyGrantRequest) *p = (const void *)m;
	int r = KH_OK;

	memset(b, 0, sizeof(*b));
	KH_TRY(sec_key_name(p->key, b->grant_ref.key, sizeof(b->grant_ref.key), e));
	KH_TRY(sec_principal(p->principal, b->grant_ref.principal, sizeof(b->grant_ref.principal), e));
out:
	return r;
}

enum kh_err proto_sec_enc_req_revoke_key_grant(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(RevokeKeyGrantRequest) m;

	keyhold__v1__revoke_key_grant_request__init(&m);
	m.key = S(b->grant_ref.key);
	m.principal = S(b->grant_ref.principal);
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_sec_enc_resp_revoke_key_grant(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	PB(RevokeKeyGrantResponse) m = KEYHOLD__V1__REVOKE_KEY_GRANT_RESPONSE__INIT;

	(void)b;
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

enum kh_err proto_sec_dec_list_key_grants(const ProtobufCMessage *m, union proto_req_body *b,
					  struct kh_errbuf *e)
{
	const PB(ListKeyGrantsRequest) *p = (const void *)m;

	memset(b, 0, sizeof(*b));
	if (p->key == NULL || p->key[0] == '\0')
		return KH_OK;
	return sec_key_name(p->key, b->grant_filter.key, sizeof(b->grant_filter.key), e);
}

enum kh_err proto_sec_enc_req_list_key_grants(const union proto_req_body *b, uint8_t **out, size_t *len)
{
	PB(ListKeyGrantsRequest) m;

	keyhold__v1__list_key_grants_request__init(&m);
	m.key = S(b->grant_filter.key);
	return proto_pack_msg(&m.base, out, len);
}

enum kh_err proto_sec_enc_resp_list_key_grants(const union proto_resp_body *b, uint8_t **out, size_t *len)
{
	const struct kh_grant_list *l = &b->grants;
	PB(ListKeyGrantsResponse) m = KEYHOLD__V1__LIST_KEY_GRANTS_RESPONSE__INIT;
	PB(KeyGrant) *gs = NULL, **ptrs = NULL;
	PB(Digest) *digs = NULL;
	PB(Padding) *pads = NULL;
	size_t i, n = l->n ? l->n : 1;
	int r;

	gs = calloc(n, sizeof(*gs));
	ptrs = calloc(n, sizeof(*ptrs));
	digs = calloc(n * (KH_DIGEST_MAX + 1), sizeof(*digs));
	pads = calloc(n * (KH_PAD_MAX + 1), sizeof(*pads));
	if (gs == NULL || ptrs == NULL || digs == NULL || pads == NULL) {
		r = KH_E_RESOURCE_EXHAUSTED;
		goto out;
	}
	for (i = 0; i < l->n; i++) {
		sec_grant_to(&l->grants[i], &gs[i], digs + i * (KH_DIGEST_MAX + 1), pads + i * (KH_PAD_MAX + 1));
		ptrs[i] = &gs[i];
	}
	m.n_grants = l->n;
	m.grants = ptrs;
	r = proto_pack_msg(&m.base, out, len);
out:
	free(gs);
	free(ptrs);
	free(digs);
	free(pads);
	return r;
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
		r = sec_grant_from(p->grants[i], &l->grants[i], false, e);
	return r;
}
