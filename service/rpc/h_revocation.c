/* h_revocation.c: the revocation RPCs: CheckCertificate (`keyhold cert check`:
 * good, revoked (reason) or unknown per the trust store's policy), and the
 * policies of trust stores and trustpoints (SetTruststorePolicy,
 * SetTrustpointPolicy: revocation list, OCSP URL, renewal). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "revocation/revocation.h"
#include "rpc/rpc.h"

/* ---- CheckCertificate ---- */

/* The answer from the policy engine's result. */
static Keyhold__V1__CheckCertificateResponse *rev_check_msg(struct rpc_call *c, const struct kh_cert_check_resp *x)
{
	Keyhold__V1__CheckCertificateResponse *m = rpc_msg(c, &keyhold__v1__check_certificate_response__descriptor);
	size_t i, k;

	if (m == NULL)
		return NULL;
	m->status = (Keyhold__V1__RevocationStatus)x->status;
	m->reason = rpc_strdup(c, x->reason);
	m->policy = rpc_strdup(c, x->policy);
	m->soft_fail = x->soft_fail;
	m->detail = rpc_strdup(c, x->detail);
	m->certs = rpc_array(c, x->n_certs, sizeof(*m->certs));
	if (m->certs == NULL)
		return NULL;
	for (i = 0; i < x->n_certs; i++) {
		const struct kh_cert_rev *y = &x->certs[i];
		Keyhold__V1__CertRevocation *v = rpc_msg(c, &keyhold__v1__cert_revocation__descriptor);

		if (v == NULL)
			return NULL;
		v->cert = rpc_cert_info(c, &y->cert);
		v->status = (Keyhold__V1__RevocationStatus)y->status;
		v->reason = rpc_strdup(c, y->reason);
		v->revoked_at = y->revoked_at;
		v->method = rpc_strdup(c, y->method);
		v->source = rpc_strdup(c, y->source);
		v->detail = rpc_strdup(c, y->detail);
		v->steps = rpc_array(c, y->n_steps, sizeof(*v->steps));
		if (v->steps == NULL)
			return NULL;
		for (k = 0; k < y->n_steps; k++) {
			Keyhold__V1__RevocationStep *st = rpc_msg(c, &keyhold__v1__revocation_step__descriptor);

			if (st == NULL)
				return NULL;
			st->method = rpc_strdup(c, y->steps[k].method);
			st->result = rpc_strdup(c, y->steps[k].result);
			st->detail = rpc_strdup(c, y->steps[k].detail);
			v->steps[v->n_steps++] = st;
		}
		m->certs[m->n_certs++] = v;
	}
	return c->oom ? NULL : m;
}

enum kh_err svc_h_check_certificate(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__CheckCertificateRequest *q = (const void *)c->req;
	Keyhold__V1__CheckCertificateResponse *m = NULL;
	struct svc *s = c->s;
	struct kh_cert_check_resp res;
	STACK_OF(X509) *given = NULL, *more = NULL, *trusted = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	struct store_ts_policy tsp;
	struct kh_validation val;
	struct svc_rev_policy pol;
	struct pki_verify_result vr;
	struct pki_verify_opts vo;
	char owner[KH_NAME_MAX + 32];
	X509 *leaf = NULL, *responder = NULL;
	int r = KH_OK;

	memset(&vr, 0, sizeof(vr));
	memset(&res, 0, sizeof(res));
	KH_TRY(pki_certs_load(q->cert.data, q->cert.len, &given, e));
	leaf = sk_X509_shift(given);
	if (q->untrusted.len > 0) {
		KH_TRY(pki_certs_load(q->untrusted.data, q->untrusted.len, &more, e));
		while (sk_X509_num(more) > 0) {
			X509 *x = sk_X509_shift(more);

			if (sk_X509_push(given, x) <= 0) {
				X509_free(x);
				r = KH_E_RESOURCE_EXHAUSTED;
				goto out;
			}
		}
	}
	KH_TRY(svc_pki_truststore_load(s, q->store, &trusted, &crls, e));
	pthread_mutex_lock(&s->pki->lock);
	r = store_ts_policy_get(s->pki->store, q->store, &tsp, e);
	if (r == KH_OK)
		r = store_ts_validation_get(s->pki->store, q->store, &val, e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK)
		goto out;
	snprintf(owner, sizeof(owner), "trust store '%s'", q->store);
	KH_TRY(svc_rev_policy_make(tsp.revocation, tsp.ocsp_url, owner, &pol, e));
	KH_TRY(svc_rev_store_responder(s, q->store, &responder, e));
	pol.responder = responder;
	/* The chain gives every certificate its issuer. Validity periods do
	 * not matter here: an expired certificate may well be revoked. */
	memset(&vo, 0, sizeof(vo));
	vo.v = &val;
	vo.trusted = trusted;
	vo.untrusted = given;
	vo.partial_chain = true;
	vo.no_check_time = true;
	KH_TRY(pki_verify(leaf, &vo, &vr, e));
	KH_ENSURE(vr.valid, kh_err_set(e, KH_E_FAILED_PRECONDITION,
				       "the certificate does not chain to trust store '%s' (%s); its revocation cannot be checked",
				       q->store, vr.reason));
	KH_TRY(svc_rev_check(s, vr.chain, &pol, crls, &res, e));
	m = rev_check_msg(c, &res);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
	log_info("trust store '%s': cert check: %s: %s", q->store, kh_rev_status_name(res.status), res.detail);
out:
	ERR_clear_error();
	X509_free(responder);
	kh_cert_check_resp_clear(&res);
	pki_verify_result_clear(&vr);
	X509_free(leaf);
	sk_X509_pop_free(given, X509_free);
	sk_X509_pop_free(more, X509_free);
	sk_X509_pop_free(trusted, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return r;
}

/* ---- SetTruststorePolicy ---- */

enum kh_err svc_h_set_truststore_policy(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__SetTruststorePolicyRequest *q = (const void *)c->req;
	Keyhold__V1__SetTruststorePolicyResponse *m = rpc_msg(c, &keyhold__v1__set_truststore_policy_response__descriptor);
	struct svc *s = c->s;
	struct store_ts_policy p;
	struct kh_validation v;
	char crl_url[KH_URL_MAX + 1];
	struct kh_bytes signer = { NULL, 0 };
	STACK_OF(X509) *given = NULL;
	X509 *rx = NULL;
	bool exists = false, in_txn = false;
	size_t i;
	int r = KH_OK;

	pthread_mutex_lock(&s->pki->lock);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(store_ts_exists(s->pki->store, q->store, &exists, e));
	KH_ENSURE(exists, kh_err_set(e, KH_E_NOT_FOUND, "no trust store named '%s'; create it first (keyhold truststore "
							"create %s)",
				     q->store, q->store));
	KH_TRY(store_ts_policy_get(s->pki->store, q->store, &p, e));
	KH_TRY(store_ts_validation_get(s->pki->store, q->store, &v, e));
	KH_TRY(store_ts_crl_url_get(s->pki->store, q->store, crl_url, sizeof(crl_url), e));
	if (q->set_crl_url)
		kh_strlcpy(crl_url, q->crl_url, sizeof(crl_url));
	KH_TRY(store_ts_ocsp_signer_get(s->pki->store, q->store, &signer, e));
	if (q->set_ocsp_responder) {
		kh_bytes_clear(&signer);
		if (q->ocsp_responder.len > 0) {
			unsigned char *der = NULL;
			int len;

			KH_TRY(pki_certs_load(q->ocsp_responder.data, q->ocsp_responder.len, &given, e));
			KH_ENSURE(sk_X509_num(given) == 1,
				  kh_err_set(e, KH_E_INVALID_ARGUMENT,
					     "the OCSP responder file holds %d certificates; give the responder's one", sk_X509_num(given)));
			len = i2d_X509(sk_X509_value(given, 0), &der);
			KH_ENSURE(len > 0, KH_E_INTERNAL);
			signer.data = malloc((size_t)len);
			if (signer.data != NULL) {
				memcpy(signer.data, der, (size_t)len);
				signer.len = (size_t)len;
			}
			OPENSSL_free(der);
			KH_ENSURE(signer.data != NULL, KH_E_RESOURCE_EXHAUSTED);
		}
	}
	if (q->set_revocation)
		KH_TRY(pki_revocation_parse(q->revocation, p.revocation, sizeof(p.revocation), e));
	if (q->set_ocsp_url)
		kh_strlcpy(p.ocsp_url, q->ocsp_url, sizeof(p.ocsp_url));
	if (q->set_policies) {
		v.n_policies = 0;
		for (i = 0; i < q->n_policies && i < KH_POLICIES_MAX; i++)
			kh_strlcpy(v.policies[v.n_policies++], q->policies[i], sizeof(v.policies[0]));
	}
	if (q->set_require_explicit_policy)
		v.require_explicit_policy = q->require_explicit_policy;
	if (q->set_inhibit_policy_mapping)
		v.inhibit_policy_mapping = q->inhibit_policy_mapping;
	if (q->set_inhibit_any_policy)
		v.inhibit_any_policy = q->inhibit_any_policy;
	if (q->set_min_rsa_bits)
		v.min_rsa_bits = q->min_rsa_bits;
	if (q->set_min_ec_bits)
		v.min_ec_bits = q->min_ec_bits;
	if (q->set_allow_sha1)
		v.allow_sha1 = q->allow_sha1;
	KH_TRY(store_begin(s->pki->store, e));
	in_txn = true;
	KH_TRY(store_ts_policy_put(s->pki->store, q->store, &p, e));
	KH_TRY(store_ts_validation_put(s->pki->store, q->store, &v, e));
	KH_TRY(store_ts_crl_url_put(s->pki->store, q->store, crl_url, e));
	if (q->set_ocsp_responder)
		KH_TRY(store_ts_ocsp_signer_put(s->pki->store, q->store, &signer, e));
	KH_TRY(store_commit(s->pki->store, e));
	in_txn = false;
	m->store = rpc_strdup(c, q->store);
	m->revocation = rpc_strdup(c, p.revocation);
	m->ocsp_url = rpc_strdup(c, p.ocsp_url);
	m->crl_url = rpc_strdup(c, crl_url);
	if (signer.len > 0 && (rx = pki_x509_from_der(signer.data, signer.len)) != NULL) {
		struct kh_cert_info ci;

		pki_cert_info(rx, &ci);
		m->ocsp_responder = rpc_cert_info(c, &ci);
		if (q->set_ocsp_responder)
			log_info("trust store '%s': OCSP responses signed by '%s' (SHA-256 %s) are trusted", q->store,
				 ci.subject, ci.fingerprint);
	}
	m->validation = rpc_validation(c, &v);
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
	if (q->set_crl_url && crl_url[0] != '\0')
		svc_revsched_poke(s);
	if (q->set_crl_url)
		log_info("trust store '%s': CRL URL %s (fetched by the revocation scheduler)", q->store,
			 crl_url[0] ? crl_url : "none");
	log_info("trust store '%s': revocation %s%s%s; %zu initial policies%s%s%s; floor RSA/DSA %u, EC %u%s", q->store,
		 p.revocation, p.ocsp_url[0] ? ", OCSP at " : "", p.ocsp_url, v.n_policies,
		 v.require_explicit_policy ? ", explicit policy required" : "",
		 v.inhibit_policy_mapping ? ", mapping inhibited" : "", v.inhibit_any_policy ? ", anyPolicy inhibited" : "",
		 v.min_rsa_bits, v.min_ec_bits, v.allow_sha1 ? ", SHA-1 allowed" : "");
out:
	if (in_txn)
		store_rollback(s->pki->store);
	pthread_mutex_unlock(&s->pki->lock);
	X509_free(rx);
	sk_X509_pop_free(given, X509_free);
	kh_bytes_clear(&signer);
	return r;
}

/* ---- SetTrustpointPolicy ---- */


enum kh_err svc_h_set_trustpoint_policy(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__SetTrustpointPolicyRequest *q = (const void *)c->req;
	Keyhold__V1__GetTrustpointResponse *m = rpc_msg(c, &keyhold__v1__get_trustpoint_response__descriptor);
	struct svc *s = c->s;
	struct store_tp_policy p;
	struct store_tp t;
	bool in_txn = false;
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	pthread_mutex_lock(&s->pki->lock);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(store_tp_get(s->pki->store, q->name, &t, e));
	KH_TRY(store_tp_policy_get(s->pki->store, q->name, &p, e));
	KH_TRY(rpc_tp_edit(s, q, &t, e));
	if (q->set_revocation)
		KH_TRY(pki_revocation_parse(q->revocation, t.revocation, sizeof(t.revocation), e));
	if (q->set_ocsp_url)
		kh_strlcpy(p.ocsp_url, q->ocsp_url, sizeof(p.ocsp_url));
	if (q->set_renew) {
		p.renew_at = q->renew_at;
		p.renew_regenerate = q->renew_at > 0 && q->renew_regenerate;
	}
	t.updated = (int64_t)time(NULL);
	KH_TRY(store_begin(s->pki->store, e));
	in_txn = true;
	KH_TRY(store_tp_update(s->pki->store, &t, e));
	KH_TRY(store_tp_policy_put(s->pki->store, q->name, &p, e));
	KH_TRY(store_commit(s->pki->store, e));
	in_txn = false;
	KH_TRY(rpc_trustpoint(c, q->name, &m->trustpoint, e));
	c->resp = &m->base;
	log_info("trustpoint '%s': revocation %s%s%s, renew at %u%%%s", q->name, t.revocation,
		 p.ocsp_url[0] ? ", OCSP at " : "", p.ocsp_url, p.renew_at, p.renew_regenerate ? " with a new key" : "");
out:
	if (in_txn)
		store_rollback(s->pki->store);
	pthread_mutex_unlock(&s->pki->lock);
	store_tp_clear(&t);
	return r;
}
