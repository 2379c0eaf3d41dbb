/* h_audit.c: the audit log's RPCs: AuditShow and AuditVerify. */
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/svc.h"
#include "rpc/rpc.h"

/* The records of one AuditShow answer as they are read. */
struct rpc_audit_page {
	struct rpc_call *c;
	Keyhold__V1__AuditRecord **v;  /* malloc'd; freed after the answer */
	size_t n, cap;
};

static enum kh_err rpc_audit_record(void *arg, const struct audit_shown *x, struct kh_errbuf *e)
{
	struct rpc_audit_page *p = arg;
	Keyhold__V1__AuditRecord *m;

	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		Keyhold__V1__AuditRecord **v = realloc(p->v, cap * sizeof(*v));

		if (v == NULL)
			return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
		p->v = v;
		p->cap = cap;
	}
	m = rpc_msg(p->c, &keyhold__v1__audit_record__descriptor);
	if (m == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	m->seq = x->seq;
	m->time_us = x->time_us;
	m->principal = rpc_strdup(p->c, x->ev.principal);
	m->method = rpc_strdup(p->c, x->ev.method);
	m->object = rpc_strdup(p->c, x->ev.object);
	m->code = -(int32_t)x->ev.code;
	m->duration_us = x->ev.duration_us;
	m->count = x->ev.count;
	m->checkpoint = x->checkpoint;
	p->v[p->n++] = m;
	return p->c->oom ? kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory") : KH_OK;
}

enum kh_err svc_h_audit_show(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__AuditShowRequest *q = (const void *)c->req;
	Keyhold__V1__AuditShowResponse *m = rpc_msg(c, &keyhold__v1__audit_show_response__descriptor);
	struct rpc_audit_page page = { .c = c };
	uint64_t next_seq = 0;
	bool more = false;
	int r = KH_OK;

	KH_ENSURE(c->s->audit != NULL,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "this keyholdd keeps no audit log"));
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	/* audit_show caps the page (0: its default). */
	r = audit_show(c->s->audit, q->since, q->from_seq, q->limit, rpc_audit_record, &page, &next_seq, &more, e);
	rpc_defer(c, free, page.v);
	KH_TRY(r);
	m->records = page.v;
	m->n_records = page.n;
	m->next_seq = next_seq;
	m->more = more;
	c->resp = &m->base;
out:
	return r;
}

/* verify --cluster: every node's checkpoints in the state database. */
static enum kh_err rpc_audit_cluster(struct rpc_call *c, Keyhold__V1__AuditVerifyResponse *m, struct kh_errbuf *e)
{
	struct audit_node_verdict *v = NULL;
	size_t n = 0, i, k;
	int r = KH_OK;

	KH_TRY(audit_verify_cluster(c->s->audit, &v, &n, e));
	rpc_defer(c, free, v); /* frees v at once when out of memory */
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	m->nodes = rpc_array(c, n, sizeof(*m->nodes));
	KH_ENSURE(m->nodes != NULL, KH_E_RESOURCE_EXHAUSTED);
	m->cluster_ok = true;
	for (i = 0; i < n; i++) {
		Keyhold__V1__AuditNodeVerdict *o = rpc_msg(c, &keyhold__v1__audit_node_verdict__descriptor);
		size_t ng = v[i].n_gaps < AUDIT_GAPS_MAX ? v[i].n_gaps : AUDIT_GAPS_MAX;

		KH_ENSURE(o != NULL, KH_E_RESOURCE_EXHAUSTED);
		o->node = v[i].node;
		o->ok = v[i].ok;
		o->checkpoints = v[i].checkpoints;
		o->first_seq = v[i].first_seq;
		o->last_seq = v[i].last_seq;
		o->bad_signatures = v[i].bad_signatures;
		o->reason = v[i].reason;
		o->last_recorded = v[i].last_recorded;
		o->gaps = rpc_array(c, ng, sizeof(*o->gaps));
		KH_ENSURE(o->gaps != NULL, KH_E_RESOURCE_EXHAUSTED);
		for (k = 0; k < ng; k++)
			o->gaps[o->n_gaps++] = v[i].gaps[k];
		m->cluster_ok = m->cluster_ok && v[i].ok;
		m->nodes[m->n_nodes++] = o;
	}
out:
	return r;
}

enum kh_err svc_h_audit_verify(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__AuditVerifyRequest *q = (const void *)c->req;
	Keyhold__V1__AuditVerifyResponse *m = rpc_msg(c, &keyhold__v1__audit_verify_response__descriptor);
	struct audit_verdict *v = rpc_alloc(c, sizeof(*v));
	int r = KH_OK;

	KH_ENSURE(c->s->audit != NULL,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "this keyholdd keeps no audit log"));
	KH_ENSURE(m != NULL && v != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(audit_verify(c->s->audit, v, e));
	m->ok = v->ok;
	m->records = v->records;
	m->checkpoints = v->checkpoints;
	m->bad_seq = v->bad_seq;
	m->bad_line = v->bad_line;
	m->reason = v->reason;
	m->unsigned_tail = v->unsigned_tail;
	m->last_checkpoint_seq = v->last_checkpoint_seq;
	m->key_fingerprint = v->key_fp;
	if (q->cluster)
		KH_TRY(rpc_audit_cluster(c, m, e));
	c->resp = &m->base;
out:
	return r;
}
