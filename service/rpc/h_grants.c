/* h_grants.c: per-key grants: GrantKey, RevokeKeyGrant, ListKeyGrants
 * (who may sign with which key, and how; access/grants.c keeps them). */
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/svc.h"
#include "rpc/rpc.h"
#include "access/access.h"

enum kh_err svc_h_grant_key(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__GrantKeyRequest *q = (const void *)c->req;
	/* Validated (proto/validate.c): present, names and enums in range. */
	const Keyhold__V1__KeyGrant *g = q->grant;
	unsigned digests = 0, paddings = 0;
	size_t i;

	if (c->s->audit != NULL && strcmp(g->key, audit_key_name(c->s->audit)) == 0)
		return kh_err_set(e, KH_E_PERMISSION_DENIED, "key '%s' signs the audit log; it cannot be granted",
				  g->key);
	for (i = 0; i < g->n_digests; i++)
		digests |= 1u << (unsigned)g->digests[i];
	for (i = 0; i < g->n_paddings; i++)
		paddings |= 1u << (unsigned)g->paddings[i];
	return access_grants_grant(c->s->grants, g->key, g->principal, digests, paddings, e);
}

enum kh_err svc_h_revoke_key_grant(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__RevokeKeyGrantRequest *q = (const void *)c->req;

	return access_grants_revoke(c->s->grants, q->key, q->principal, e);
}

/* The grants of one ListKeyGrants answer as they are listed. */
struct rpc_grant_page {
	struct rpc_call *c;
	Keyhold__V1__KeyGrant **v;  /* malloc'd; freed after the answer */
	size_t n, cap;
};

static enum kh_err rpc_grant(void *arg, const char *key, const char *principal, unsigned digests, unsigned paddings,
			     bool from_config, struct kh_errbuf *e)
{
	struct rpc_grant_page *p = arg;
	struct rpc_call *c = p->c;
	Keyhold__V1__KeyGrant *m;
	unsigned i;

	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		Keyhold__V1__KeyGrant **v = realloc(p->v, cap * sizeof(*v));

		if (v == NULL)
			return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
		p->v = v;
		p->cap = cap;
	}
	m = rpc_msg(c, &keyhold__v1__key_grant__descriptor);
	if (m == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	m->key = rpc_strdup(c, key);
	m->principal = rpc_strdup(c, principal);
	m->source = rpc_str(from_config ? "config" : "runtime");
	m->digests = rpc_array(c, KH_DIGEST_MAX + 1, sizeof(*m->digests));
	m->paddings = rpc_array(c, KH_PAD_MAX + 1, sizeof(*m->paddings));
	if (c->oom)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	for (i = 1; i <= KH_DIGEST_MAX; i++)
		if (digests & (1u << i))
			m->digests[m->n_digests++] = (Keyhold__V1__Digest)i;
	for (i = 1; i <= KH_PAD_MAX; i++)
		if (paddings & (1u << i))
			m->paddings[m->n_paddings++] = (Keyhold__V1__Padding)i;
	p->v[p->n++] = m;
	return KH_OK;
}

enum kh_err svc_h_list_key_grants(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__ListKeyGrantsRequest *q = (const void *)c->req;
	Keyhold__V1__ListKeyGrantsResponse *m = rpc_msg(c, &keyhold__v1__list_key_grants_response__descriptor);
	struct rpc_grant_page page = { .c = c };
	int r = KH_OK;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	r = access_grants_list(c->s->grants, q->key, rpc_grant, &page, e);
	rpc_defer(c, free, page.v);
	KH_TRY(r);
	m->grants = page.v;
	m->n_grants = page.n;
	c->resp = &m->base;
out:
	return r;
}
