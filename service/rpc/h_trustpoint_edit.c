/* h_trustpoint_edit.c: `trustpoint set` of what the next enrollment asks
 * for (issue 16): subject, SANs, EKU, digest, enrollment mode, validity
 * of self-signed certificates, FQDN ("none": no FQDN SAN, as ASA's
 * `fqdn none`) and --ip-san. Checked together before anything changes;
 * the current certificate and a pending CSR stay as they are. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hsm.h"
#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "rpc/rpc.h"

enum kh_err rpc_tp_edit(struct svc *s, const Keyhold__V1__SetTrustpointPolicyRequest *q, struct store_tp *t,
			struct kh_errbuf *e)
{
	struct pki_subject sub = { NULL, NULL, NULL };
	char subject[KH_DN_MAX + 1], san[KH_SAN_MAX + 1], eku[KH_EKU_MAX + 1], fqdn[KH_FQDN_MAX + 1];
	enum kh_digest digest = t->digest, d;
	enum kh_key_type type = KH_KEY_UNSPECIFIED;
	EVP_PKEY *pub = NULL;
	int r = KH_OK;

	if (!q->set_subject && !q->set_san && !q->set_eku && !q->set_digest && !q->set_enrollment && !q->set_days &&
	    !q->set_fqdn && !q->ip_san)
		return KH_OK;
	kh_strlcpy(subject, q->set_subject ? q->subject : t->subject, sizeof(subject));
	kh_strlcpy(san, q->set_san ? q->san : t->san, sizeof(san));
	kh_strlcpy(eku, q->set_eku ? q->eku : t->eku, sizeof(eku));
	if (eku[0] == '\0')
		kh_strlcpy(eku, "serverAuth,clientAuth", sizeof(eku));
	kh_strlcpy(fqdn, q->set_fqdn ? q->fqdn : t->fqdn, sizeof(fqdn));
	KH_ENSURE(subject[0] != '\0', kh_err_set(e, KH_E_INVALID_ARGUMENT, "the subject cannot be empty"));
	if (q->ip_san)
		KH_TRY(pki_cn_ip_san(subject, san, sizeof(san), e));
	KH_TRY(pki_subject_parse(subject, san, fqdn, eku, &sub, e));
	if (q->set_digest) {
		/* The digest must suit the trustpoint's key (Ed25519: none). */
		digest = (enum kh_digest)q->digest;
		KH_TRY(hsm_key_meta(s->hsm, t->key, &type, &pub, e));
		KH_TRY(pki_sig_digest(type, digest, &d, e));
	}
	kh_strlcpy(t->subject, subject, sizeof(t->subject));
	kh_strlcpy(t->san, san, sizeof(t->san));
	kh_strlcpy(t->eku, eku, sizeof(t->eku));
	kh_strlcpy(t->fqdn, fqdn, sizeof(t->fqdn));
	t->digest = digest;
	if (q->set_enrollment)
		t->enrollment = q->enrollment == KEYHOLD__V1__ENROLLMENT__ENROLLMENT_UNSPECIFIED
					? KH_ENROLL_SELF
					: (enum kh_enrollment)q->enrollment;
	if (q->set_days)
		t->validity_days = q->validity_days ? q->validity_days : SVC_PKI_DEFAULT_DAYS;
	log_info("trustpoint '%s': next enrollment: subject '%s', SAN '%s', FQDN '%s', EKU '%s', %u days", t->name,
		 t->subject, t->san, t->fqdn, t->eku, t->validity_days);
out:
	EVP_PKEY_free(pub);
	pki_subject_clear(&sub);
	return r;
}

enum kh_err svc_h_discard_csr(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__DiscardCsrRequest *q = (const void *)c->req;
	Keyhold__V1__GetTrustpointResponse *m = rpc_msg(c, &keyhold__v1__get_trustpoint_response__descriptor);
	struct svc *s = c->s;
	struct store_tp t;
	char key[KH_NAME_MAX + 1];
	bool in_txn = false;
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	pthread_mutex_lock(&s->pki->lock);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(store_tp_get(s->pki->store, q->name, &t, e));
	KH_ENSURE(t.csr.len > 0, kh_err_set(e, KH_E_FAILED_PRECONDITION, "trustpoint '%s' has no pending CSR", q->name));
	kh_strlcpy(key, t.csr_key, sizeof(key));
	kh_bytes_clear(&t.csr);
	t.csr_key[0] = '\0';
	t.csr_created = 0;
	t.updated = (int64_t)time(NULL);
	KH_TRY(store_begin(s->pki->store, e));
	in_txn = true;
	KH_TRY(store_tp_update(s->pki->store, &t, e));
	KH_TRY(store_commit(s->pki->store, e));
	in_txn = false;
	KH_TRY(rpc_trustpoint(c, q->name, &m->trustpoint, e));
	c->resp = &m->base;
	log_info("trustpoint '%s': pending CSR for key '%s' discarded", q->name, key);
out:
	if (in_txn)
		store_rollback(s->pki->store);
	pthread_mutex_unlock(&s->pki->lock);
	store_tp_clear(&t);
	return r;
}
