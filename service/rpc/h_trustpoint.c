/* h_trustpoint.c: the CSR and trustpoint RPCs (DESIGN §5, §7): CreateCsr,
 * Create/List/Get/DeleteTrustpoint, Authenticate, Enroll (self|terminal),
 * ImportCertificate, ExportTrustpoint and RegenerateTrustpoint (key
 * rollover). Each reads its request as the validated generated message,
 * parses everything first, then takes the PKI lock and changes token and
 * database in the order pki/pki_state.c explains; answers are built as
 * generated messages (rpc_trustpoint builds a Trustpoint for other handlers
 * too). Enroll and Regenerate are pki/pki_enroll.c's, which the expiry
 * monitor's renewal shares. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "keys/key_life.h"
#include "pki/pki_state.h"
#include "pki/acme.h"
#include "fips/fips_policy.h"
#include "core/svc_clock.h"
#include "revocation/revocation.h"
#include "rpc/rpc.h"
#include "access/access.h"
#include "kh_text.h"

/* ---- helpers ---- */

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static enum kh_err tp_csr_pem_from_der(const struct kh_bytes *der, char **pem, struct kh_errbuf *e)
{
	const unsigned char *p = der->data;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)der->len);
	int r;

	if (req == NULL)
		return kh_err_set(e, KH_E_DATA_LOSS, "the stored CSR does not parse");
	r = pki_csr_pem(req, pem, e);
	X509_REQ_free(req);
	return r;
}

/* ---- response messages ---- */

/* CertInfo of x (pki_cert_info); NULL when out of memory. */
static Keyhold__V1__CertInfo *tp_cert_msg(struct rpc_call *c, X509 *x)
{
	struct kh_cert_info ci;

	pki_cert_info(x, &ci);
	return rpc_cert_info(c, &ci);
}

static enum kh_err tp_der_msg(struct rpc_call *c, const struct kh_bytes *der, Keyhold__V1__CertInfo **out,
			      struct kh_errbuf *e)
{
	X509 *x = pki_x509_from_der(der->data, der->len);

	if (x == NULL)
		return kh_err_set(e, KH_E_DATA_LOSS, "a stored certificate does not parse");
	*out = tp_cert_msg(c, x);
	X509_free(x);
	return *out != NULL ? KH_OK : KH_E_RESOURCE_EXHAUSTED;
}

static enum kh_err tp_der_msgs(struct rpc_call *c, const struct kh_bytes *ders, size_t n,
			       Keyhold__V1__CertInfo ***out, size_t *n_out, struct kh_errbuf *e)
{
	Keyhold__V1__CertInfo **v = rpc_array(c, n, sizeof(*v));
	size_t i;
	int r = KH_OK;

	KH_ENSURE(v != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < n; i++)
		KH_TRY(tp_der_msg(c, &ders[i], &v[i], e));
	*out = v;
	*n_out = n;
out:
	return r;
}

/* The Trustpoint message of a stored trustpoint (the PKI lock held): its
 * key's type and origin from token and database, its certificates parsed,
 * OCSP URL and renewal settings, and where renewal stands: "due" once the
 * certificate crossed renew_at, "pending" while the CSR that renews it
 * awaits its certificate (terminal enrollment). with_csr: the pending CSR
 * as PEM too. */
static enum kh_err tp_msg(struct rpc_call *c, const struct store_tp *t, bool with_csr, Keyhold__V1__Trustpoint **out,
			  struct kh_errbuf *e)
{
	Keyhold__V1__Trustpoint *m = rpc_msg(c, &keyhold__v1__trustpoint__descriptor);
	enum kh_key_type type = KH_KEY_UNSPECIFIED;
	struct store_tp_policy p;
	struct store_mkey mk;
	EVP_PKEY *pub = NULL;
	struct kh_errbuf ign = { 0 };
	char *pem = NULL;
	bool found = false;
	int r = KH_OK;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (hsm_key_meta(c->s->hsm, t->key, &type, &pub, &ign) != KH_OK)
		type = KH_KEY_UNSPECIFIED;
	EVP_PKEY_free(pub);
	KH_TRY(store_mkey_get(c->s->pki->store, t->key, &mk, &found, e));
	m->name = rpc_strdup(c, t->name);
	m->key = rpc_strdup(c, t->key);
	m->key_type = (Keyhold__V1__KeyType)type;
	m->key_generated = found && strcmp(mk.trustpoint, t->name) == 0;
	m->subject = rpc_strdup(c, t->subject);
	m->fqdn = rpc_strdup(c, t->fqdn);
	m->san = rpc_strdup(c, t->san);
	m->eku = rpc_strdup(c, t->eku);
	m->enrollment = (Keyhold__V1__Enrollment)t->enrollment;
	m->revocation = rpc_strdup(c, t->revocation);
	m->digest = (Keyhold__V1__Digest)t->digest;
	m->validity_days = t->validity_days;
	KH_TRY(tp_der_msgs(c, t->ca, t->n_ca, &m->ca, &m->n_ca, e));
	KH_TRY(rpc_tp_revocation_state(c, t, m, e));
	if (t->pending_ca.len > 0) {
		X509 *pca = pki_x509_from_der(t->pending_ca.data, t->pending_ca.len);

		if (pca != NULL)
			m->pending_ca = tp_cert_msg(c, pca);
		X509_free(pca);
	}
	KH_TRY(tp_der_msgs(c, t->chain, t->n_chain, &m->chain, &m->n_chain, e));
	if (t->cert.len > 0)
		KH_TRY(tp_der_msg(c, &t->cert, &m->cert, e));
	if (t->csr.len > 0) {
		if (with_csr) {
			KH_TRY(tp_csr_pem_from_der(&t->csr, &pem, e));
			m->pending_csr = rpc_strdup(c, pem);
		}
		m->pending_csr_key = rpc_strdup(c, t->csr_key);
		m->pending_csr_created = t->csr_created;
	}
	m->next_key = rpc_strdup(c, t->next_key);
	m->created = t->created;
	m->updated = t->updated;
	KH_TRY(store_tp_policy_get(c->s->pki->store, t->name, &p, e));
	m->ocsp_url = rpc_strdup(c, p.ocsp_url);
	m->renew_at = p.renew_at;
	m->renew_regenerate = p.renew_regenerate;
	m->renew_after = m->cert != NULL ? svc_pki_renew_after(m->cert->not_before, m->cert->not_after, p.renew_at) : 0;
	if (m->renew_after != 0 && svc_now() >= m->renew_after)
		m->renewal = rpc_str(t->csr.len > 0 || t->next_key[0] != '\0' ? "pending" : "due");
	if (t->enrollment == KH_ENROLL_URL) {
		struct store_scep sc;

		KH_TRY(store_scep_get(c->s->pki->store, t->name, &sc, e));
		m->url = rpc_strdup(c, sc.url);
		m->scep_status = rpc_strdup(c, sc.status);
		m->challenge_password_set = sc.challenge[0] != '\0';
		store_scep_clear(&sc);
		KH_TRY(rpc_scep_pending(c, t->name, m, e));
	}
	if (t->enrollment == KH_ENROLL_ACME) {
		struct store_tp_acme ac;

		memset(&ac, 0, sizeof(ac));
		KH_TRY(store_tp_acme_get(c->s->pki->store, t->name, &ac, e));
		m->acme_directory = rpc_strdup(c, ac.directory);
		m->acme_contact = rpc_strdup(c, ac.contact);
		m->acme_account_key = rpc_strdup(c, ac.account_key);
		m->acme_account = rpc_strdup(c, ac.kid);
		m->acme_renew_failures = ac.renew_failures;
		m->acme_renew_error = rpc_strdup(c, ac.renew_error);
		m->acme_renew_next = ac.renew_next;
		m->acme_webroot = rpc_strdup(c, ac.webroot);
		m->acme_eab_kid = rpc_strdup(c, ac.eab_kid);
		store_tp_acme_clear(&ac);
	}
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	*out = m;
out:
	free(pem);
	return r;
}

enum kh_err rpc_trustpoint(struct rpc_call *c, const char *name, Keyhold__V1__Trustpoint **out, struct kh_errbuf *e)
{
	struct store_tp t;
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	KH_TRY(store_tp_get(c->s->pki->store, name, &t, e));
	KH_TRY(tp_msg(c, &t, true, out, e));
out:
	store_tp_clear(&t);
	return r;
}

static void tp_lock(struct svc *s)
{
	pthread_mutex_lock(&s->pki->lock);
}

static void tp_unlock(struct svc *s)
{
	pthread_mutex_unlock(&s->pki->lock);
}

/* ---- CreateCsr ---- */

enum kh_err svc_h_create_csr(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__CreateCsrRequest *q = (const void *)c->req;
	Keyhold__V1__CreateCsrResponse *m = rpc_msg(c, &keyhold__v1__create_csr_response__descriptor);
	struct pki_subject sub = { NULL, NULL, NULL };
	struct pki_signer sg;
	X509_REQ *csr = NULL;
	char *pem = NULL;
	int r = KH_OK;

	memset(&sg, 0, sizeof(sg));
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(pki_subject_parse(q->subject, q->san, NULL, q->eku, &sub, e));
	KH_TRY(svc_pki_signer(c->s, q->key, (enum kh_digest)q->digest, &sg, e));
	KH_TRY(pki_csr_build(&sg, &sub, q->challenge_password, &csr, e));
	KH_TRY(pki_csr_pem(csr, &pem, e));
	m->pem = pem;
	rpc_defer(c, free, pem);
	pem = NULL;
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
	log_info("CSR for key '%s' (%s)", q->key, q->subject);
out:
	free(pem);
	X509_REQ_free(csr);
	svc_pki_signer_clear(&sg);
	pki_subject_clear(&sub);
	return r;
}

/* ---- CreateTrustpoint ---- */

/* An ACME CA bundle must hold at least one PEM certificate. */
static enum kh_err tp_check_ca_bundle(const char *pem, struct kh_errbuf *e)
{
	STACK_OF(X509) *certs = NULL;
	int r = pki_certs_load((const uint8_t *)pem, strlen(pem), &certs, e);

	sk_X509_pop_free(certs, X509_free);
	if (r != KH_OK)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "--acme-ca-bundle: %s", e->msg);
	return KH_OK;
}

enum kh_err svc_h_create_trustpoint(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__CreateTrustpointRequest *q = (const void *)c->req;
	Keyhold__V1__CreateTrustpointResponse *m = rpc_msg(c, &keyhold__v1__create_trustpoint_response__descriptor);
	struct svc *s = c->s;
	/* key_source is a oneof (validated): a key to attach or a type to generate. */
	enum kh_key_type generate = q->key_source_case == KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE
					    ? (enum kh_key_type)q->generate
					    : KH_KEY_UNSPECIFIED;
	const char *key = generate != KH_KEY_UNSPECIFIED ? q->name : q->key;
	struct pki_subject sub = { NULL, NULL, NULL };
	struct store_tp t, got;
	struct store_tp_acme acme;
	struct kh_key_info ki;
	enum kh_key_type type = generate;
	enum kh_digest d;
	EVP_PKEY *pub = NULL;
	bool locked = false, generated = false, exists;
	struct kh_errbuf ign = { 0 };
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	memset(&got, 0, sizeof(got));
	memset(&ki, 0, sizeof(ki));
	memset(&acme, 0, sizeof(acme));
	/* Parse and check everything before touching token or database. */
	kh_strlcpy(t.san, q->san, sizeof(t.san));
	if (q->ip_san)
		KH_TRY(pki_cn_ip_san(q->subject, t.san, sizeof(t.san), e));
	KH_TRY(pki_subject_parse(q->subject, t.san, q->fqdn, q->eku, &sub, e));
	kh_strlcpy(t.name, q->name, sizeof(t.name));
	kh_strlcpy(t.key, key, sizeof(t.key));
	kh_strlcpy(t.subject, q->subject, sizeof(t.subject));
	kh_strlcpy(t.fqdn, q->fqdn, sizeof(t.fqdn));
	kh_strlcpy(t.eku, q->eku[0] != '\0' ? q->eku : "serverAuth,clientAuth", sizeof(t.eku));
	t.enrollment = q->enrollment == KEYHOLD__V1__ENROLLMENT__ENROLLMENT_UNSPECIFIED
			       ? KH_ENROLL_SELF
			       : (enum kh_enrollment)q->enrollment;
	KH_TRY(pki_revocation_parse(q->revocation, t.revocation, sizeof(t.revocation), e));
	KH_ENSURE(q->renew_at <= 99, kh_err_set(e, KH_E_INVALID_ARGUMENT, "renew-at is a percent from 1 to 99 (0: off)"));
	KH_ENSURE(kh_url_valid(q->ocsp_url), kh_err_set(e, KH_E_INVALID_ARGUMENT, "the OCSP URL must be an http:// URL"));
	t.digest = (enum kh_digest)q->digest;
	t.validity_days = q->validity_days ? q->validity_days : SVC_PKI_DEFAULT_DAYS;
	t.created = t.updated = now_s();
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (t.enrollment == KH_ENROLL_ACME) {
		memset(&acme, 0, sizeof(acme));
		KH_TRY(svc_acme_key_name(q->name, acme.account_key, e));
		kh_strlcpy(acme.directory, q->acme_directory, sizeof(acme.directory));
		kh_strlcpy(acme.contact, q->acme_contact, sizeof(acme.contact));
		if (q->acme_ca_pem.len > 0) {
			acme.ca_pem = strndup((const char *)q->acme_ca_pem.data, q->acme_ca_pem.len);
			KH_ENSURE(acme.ca_pem != NULL, KH_E_RESOURCE_EXHAUSTED);
			KH_TRY(tp_check_ca_bundle(acme.ca_pem, e));
		}
		kh_strlcpy(acme.webroot, q->acme_webroot, sizeof(acme.webroot));
		if (q->eab_hmac_key.len > 0) {
			kh_strlcpy(acme.eab_kid, q->eab_kid, sizeof(acme.eab_kid));
			KH_TRY(svc_acme_eab_key(q->eab_hmac_key.data, q->eab_hmac_key.len, &acme, e));
		}
		KH_ENSURE(hsm_key_get(s->hsm, acme.account_key, &ki, &ign) != KH_OK,
			  kh_err_set(e, KH_E_ALREADY_EXISTS,
				     "a key named '%s' (the ACME account key of this trustpoint) already exists on the token",
				     acme.account_key));
		kh_key_info_clear(&ki);
	}
	if (generate != KH_KEY_UNSPECIFIED) {
		KH_TRY(hsm_key_type_supported(s->hsm, generate, e));
		KH_TRY(pki_sig_digest(type, t.digest, &d, e));
	}

	tp_lock(s);
	locked = true;
	if (generate == KH_KEY_UNSPECIFIED) {
		/* Under the lock: DeleteKey checks references under it too. */
		KH_TRY(hsm_key_meta(s->hsm, q->key, &type, &pub, e));
		KH_ENSURE(type != KH_KEY_UNSPECIFIED,
			  kh_err_set(e, KH_E_FAILED_PRECONDITION, "key '%s' is of a type keyhold cannot certify", q->key));
		KH_TRY(pki_sig_digest(type, t.digest, &d, e));
	}
	r = store_tp_get(s->pki->store, q->name, &got, e);
	KH_ENSURE(r == KH_E_NOT_FOUND, r == KH_OK ? kh_err_set(e, KH_E_ALREADY_EXISTS, "a trustpoint named '%s' already exists",
							       q->name)
						  : r);
	kh_err_clear(e);
	r = KH_OK;
	if (generate != KH_KEY_UNSPECIFIED) {
		exists = hsm_key_get(s->hsm, key, &ki, &ign) == KH_OK;
		KH_ENSURE(!exists, kh_err_set(e, KH_E_ALREADY_EXISTS,
					      "a key named '%s' already exists on the token; attach it with --key %s or "
					      "delete it (keyhold key delete %s --force)",
					      key, key, key));
		/* Intent first: a key that exists is always known to keyhold. */
		KH_TRY(store_mkey_add(s->pki->store, key, q->name, e));
		svc_pki_crash_point(s, "create.after_intent");
		r = svc_key_generate_ex(s, key, generate, t.enrollment == KH_ENROLL_URL, &ki, e);
		if (r != KH_OK) {
			if (store_mkey_remove(s->pki->store, key, &ign) != KH_OK)
				log_warn("key record '%s' left behind: %s", key, ign.msg);
			goto out;
		}
		KH_TRY(svc_pki_check_new_key(key, &ki, e));
		generated = true;
		svc_pki_crash_point(s, "create.after_keygen");
	}
	KH_TRY(store_begin(s->pki->store, e));
	r = store_tp_insert(s->pki->store, &t, e);
	if (r == KH_OK) {
		struct store_tp_policy pol;

		memset(&pol, 0, sizeof(pol));
		kh_strlcpy(pol.ocsp_url, q->ocsp_url, sizeof(pol.ocsp_url));
		pol.renew_at = q->renew_at;
		pol.renew_regenerate = q->renew_at > 0 && q->renew_regenerate;
		r = store_tp_policy_put(s->pki->store, t.name, &pol, e);
	}
	if (r == KH_OK && t.enrollment == KH_ENROLL_URL) {
		struct store_scep sc;

		memset(&sc, 0, sizeof(sc));
		kh_strlcpy(sc.url, q->url, sizeof(sc.url));
		kh_strlcpy(sc.challenge, q->challenge_password, sizeof(sc.challenge));
		r = store_scep_put(s->pki->store, t.name, &sc, e);
		store_scep_clear(&sc);
	}
	if (r == KH_OK && t.enrollment == KH_ENROLL_ACME)
		r = store_tp_acme_put(s->pki->store, t.name, &acme, e);
	if (r != KH_OK) {
		store_rollback(s->pki->store);
		goto out;
	}
	KH_TRY(store_commit(s->pki->store, e));
	generated = false; /* referenced now */
	svc_pki_crash_point(s, "create.after_commit");
	KH_TRY(tp_msg(c, &t, true, &m->trustpoint, e));
	c->resp = &m->base;
	log_info("trustpoint '%s' created (key '%s', enrollment %s)", t.name, t.key, kh_enrollment_name(t.enrollment));
out:
	if (generated) {
		/* Nothing references the new key: undo it. */
		if (svc_key_destroy(s, key, &ign) == KH_OK)
			kh_ignore(store_mkey_remove(s->pki->store, key, &ign));
		else
			log_err("key '%s' of the failed trustpoint '%s' could not be deleted: %s", key, q->name, ign.msg);
	}
	if (locked)
		tp_unlock(s);
	EVP_PKEY_free(pub);
	kh_key_info_clear(&ki);
	store_tp_acme_clear(&acme);
	store_tp_clear(&t);
	store_tp_clear(&got);
	pki_subject_clear(&sub);
	return r;
}

/* ---- List / Get ---- */

enum kh_err svc_h_list_trustpoints(struct rpc_call *c, struct kh_errbuf *e)
{
	Keyhold__V1__ListTrustpointsResponse *m = rpc_msg(c, &keyhold__v1__list_trustpoints_response__descriptor);
	struct svc *s = c->s;
	char (*names)[KH_NAME_MAX + 1] = NULL;
	size_t n = 0, i;
	int r = KH_OK;

	tp_lock(s);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(store_tp_names(s->pki->store, &names, &n, e));
	m->trustpoints = rpc_array(c, n, sizeof(*m->trustpoints));
	KH_ENSURE(m->trustpoints != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < n; i++) {
		struct store_tp t;

		KH_TRY(store_tp_get(s->pki->store, names[i], &t, e));
		/* A signer sees the trustpoints of the keys granted to it. */
		if (access_key_view(s->grants, c->who, t.key) == ACCESS_VIEW_NONE) {
			store_tp_clear(&t);
			continue;
		}
		r = tp_msg(c, &t, false, &m->trustpoints[m->n_trustpoints], e);
		store_tp_clear(&t);
		if (r != KH_OK)
			goto out;
		m->n_trustpoints++;
	}
	c->resp = &m->base;
out:
	tp_unlock(s);
	free(names);
	return r;
}

enum kh_err svc_h_get_trustpoint(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__GetTrustpointRequest *q = (const void *)c->req;
	Keyhold__V1__GetTrustpointResponse *m = rpc_msg(c, &keyhold__v1__get_trustpoint_response__descriptor);
	const struct svc_principal *who = c->who;
	struct svc *s = c->s;
	struct store_tp t;
	enum access_view v;
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	if (m == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	tp_lock(s);
	r = store_tp_get(s->pki->store, q->name, &t, e);
	/* Without a grant for its key, a signer cannot tell it exists; an
	 * auditor sees it but not its pending CSR (a public key). */
	v = r == KH_OK ? access_key_view(s->grants, who, t.key) : ACCESS_VIEW_NONE;
	if ((r == KH_E_NOT_FOUND && !access_sees_names(who)) || (r == KH_OK && v == ACCESS_VIEW_NONE))
		r = access_tp_denied(who, q->name, e);
	KH_TRY(r);
	KH_TRY(tp_msg(c, &t, v == ACCESS_VIEW_ALL, &m->trustpoint, e));
	c->resp = &m->base;
out:
	tp_unlock(s);
	store_tp_clear(&t);
	return r;
}

/* ---- Delete ---- */

enum kh_err svc_h_delete_trustpoint(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__DeleteTrustpointRequest *q = (const void *)c->req;
	Keyhold__V1__DeleteTrustpointResponse *m = rpc_msg(c, &keyhold__v1__delete_trustpoint_response__descriptor);
	struct svc *s = c->s;
	char retired[SVC_PKI_RETIRED_MAX][KH_NAME_MAX + 1];
	const char *keys[2];
	struct store_tp t;
	struct store_tp_acme acme;
	struct kh_key_info ki;
	struct kh_errbuf ign = { 0 };
	size_t n_retired = 0, i;
	bool in_txn = false;
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	memset(&acme, 0, sizeof(acme));
	memset(&ki, 0, sizeof(ki));
	if (m == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	tp_lock(s);
	KH_TRY(store_tp_get(s->pki->store, q->name, &t, e));
	if (t.enrollment == KH_ENROLL_ACME && store_tp_acme_get(s->pki->store, q->name, &acme, &ign) != KH_OK)
		memset(&acme, 0, sizeof(acme));
	keys[0] = t.key;
	keys[1] = t.next_key;
	/* A generated key exists nowhere else: deleting it asks for --force
	 * (docs/CLI.md, "Destructive commands"). */
	for (i = 0; i < 2 && !q->keep_key && !q->force; i++) {
		struct store_mkey mk;
		bool found = false;

		if (keys[i][0] == '\0')
			continue;
		KH_TRY(store_mkey_get(s->pki->store, keys[i], &mk, &found, e));
		KH_ENSURE(!found || strcmp(mk.trustpoint, q->name) != 0,
			  kh_err_set(e, KH_E_FAILED_PRECONDITION,
				     "deleting trustpoint '%s' deletes key '%s' keyhold generated for it from the token; give "
				     "--force to delete both, or --keep-key to keep the key",
				     q->name, keys[i]));
	}
	KH_ENSURE(q->keep_key || q->force || acme.account_key[0] == '\0',
		  kh_err_set(e, KH_E_FAILED_PRECONDITION,
			     "deleting trustpoint '%s' deletes its ACME account key '%s' from the token; give --force to "
			     "delete both, or --keep-key to keep the keys",
			     q->name, acme.account_key));
	KH_TRY(store_begin(s->pki->store, e));
	in_txn = true;
	KH_TRY(store_tp_delete(s->pki->store, q->name, e));
	for (i = 0; i < 2; i++) {
		struct store_mkey mk;
		bool found = false;

		if (keys[i][0] == '\0')
			continue;
		if (q->keep_key) {
			/* The administrator keeps it: it becomes an ordinary key. */
			KH_TRY(store_mkey_get(s->pki->store, keys[i], &mk, &found, e));
			if (found && strcmp(mk.trustpoint, q->name) == 0)
				KH_TRY(store_mkey_remove(s->pki->store, keys[i], e));
		} else {
			KH_TRY(svc_pki_retire_if_unused(s, q->name, keys[i], retired, &n_retired, e));
		}
	}
	KH_TRY(store_commit(s->pki->store, e));
	in_txn = false;
	svc_pki_crash_point(s, "delete.after_commit");
	svc_pki_destroy_retired(s, retired, n_retired);
	/* The ACME account key belongs to the trustpoint alone. */
	if (acme.account_key[0] != '\0' && !q->keep_key && hsm_key_get(s->hsm, acme.account_key, &ki, &ign) == KH_OK &&
	    svc_key_destroy(s, acme.account_key, &ign) != KH_OK)
		log_warn("trustpoint '%s': ACME account key '%s' not deleted: %s", q->name, acme.account_key, ign.msg);
	/* The answer names at most the two keys a trustpoint holds. */
	m->deleted_keys = rpc_array(c, n_retired < 2 ? n_retired : 2, sizeof(*m->deleted_keys));
	for (i = 0; m->deleted_keys != NULL && i < n_retired && i < 2; i++)
		m->deleted_keys[i] = rpc_strdup(c, retired[i]);
	m->n_deleted_keys = m->deleted_keys != NULL ? i : 0;
	/* Committed: the answer goes out even if it could not name the keys. */
	c->resp = &m->base;
	log_info("trustpoint '%s' deleted (%zu key(s) deleted)", q->name, n_retired);
out:
	if (in_txn)
		store_rollback(s->pki->store);
	tp_unlock(s);
	kh_key_info_clear(&ki);
	store_tp_acme_clear(&acme);
	store_tp_clear(&t);
	return r;
}

/* ---- Authenticate ---- */

static enum kh_err tp_check_ca(X509 *x, struct kh_errbuf *e)
{
	char subj[256];
	uint32_t ku;

	pki_name_text(X509_get_subject_name(x), subj, sizeof(subj));
	if (!pki_cert_is_ca(x))
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "'%s' is not a CA certificate (basicConstraints CA:TRUE is missing); authenticate takes the "
				  "certificate of the CA that issues this trustpoint's certificate",
				  subj);
	ku = X509_get_key_usage(x);
	if (ku != UINT32_MAX && (ku & KU_KEY_CERT_SIGN) == 0)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "'%s' may not sign certificates (its key usage lacks keyCertSign)", subj);
	return KH_OK;
}

/* Replaces the trustpoint's CA certificate(s) with ca. */
static enum kh_err tp_set_ca(struct store_tp *t, X509 *ca)
{
	struct kh_bytes *v = calloc(1, sizeof(*v));
	size_t i;
	int r;

	if (v == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	r = pki_x509_der(ca, &v[0].data, &v[0].len);
	if (r != KH_OK) {
		free(v);
		return r;
	}
	for (i = 0; i < t->n_ca; i++)
		kh_bytes_clear(&t->ca[i]);
	free(t->ca);
	t->ca = v;
	t->n_ca = 1;
	return KH_OK;
}

enum kh_err svc_h_authenticate_trustpoint(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__AuthenticateTrustpointRequest *q = (const void *)c->req;
	Keyhold__V1__AuthenticateTrustpointResponse *m = rpc_msg(c, &keyhold__v1__authenticate_trustpoint_response__descriptor);
	struct svc *s = c->s;
	STACK_OF(X509) *certs = NULL, *trusted = NULL;
	struct kh_bytes fetched = { NULL, 0 }, ra = { NULL, 0 };
	const uint8_t *ca_in = q->ca.data;
	size_t ca_len = q->ca.len;
	bool scep = false;
	struct pki_verify_result vr;
	struct pki_verify_opts vo;
	struct store_tp t;
	X509 *ca, *leaf = NULL;
	char fp[KH_FP_HEX + 1], want[KH_FP_HEX + 1], subj[256];
	bool in_txn = false, locked = false, pending = false;
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	memset(&vr, 0, sizeof(vr));
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (ca_len == 0) {
		/* enrollment url: the CA (and RA) from the SCEP server. */
		KH_TRY(svc_scep_get_ca(s, q->name, &fetched, &ra, e));
		ca_in = fetched.data;
		ca_len = fetched.len;
		scep = true;
	}
	KH_TRY(pki_certs_load(ca_in, ca_len, &certs, e));
	KH_ENSURE(sk_X509_num(certs) == 1,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT,
			     "the file holds %d certificates; authenticate takes the one CA certificate that issues this "
			     "trustpoint's certificate (intermediates arrive with the certificate at import)",
			     sk_X509_num(certs)));
	ca = sk_X509_value(certs, 0);
	KH_TRY(tp_check_ca(ca, e));
	pki_fingerprint(ca, fp);
	pki_name_text(X509_get_subject_name(ca), subj, sizeof(subj));
	if (q->fingerprint[0] != '\0') {
		KH_ENSURE(kh_fingerprint_normalize(q->fingerprint, want),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the fingerprint must be 64 hex digits (SHA-256), colons allowed"));
		KH_ENSURE(strcmp(want, fp) == 0,
			  kh_err_set(e, KH_E_FAILED_PRECONDITION,
				     "fingerprint mismatch: the CA certificate '%s' has SHA-256 fingerprint %s, not %s; do not "
				     "trust this file",
				     subj, fp, want));
	} else {
		KH_ENSURE(q->confirm, kh_err_set(e, KH_E_FAILED_PRECONDITION,
						 "CA certificate '%s' has SHA-256 fingerprint %s; confirm it with the CA out of "
						 "band, then run again with --yes or --fingerprint %s",
						 subj, fp, fp));
	}

	tp_lock(s);
	locked = true;
	KH_TRY(store_tp_get(s->pki->store, q->name, &t, e));
	if (t.cert.len > 0) {
		leaf = pki_x509_from_der(t.cert.data, t.cert.len);
		KH_ENSURE(leaf != NULL, kh_err_set(e, KH_E_DATA_LOSS, "the stored certificate does not parse"));
		if (!pki_cert_self_signed(leaf)) {
			/* Re-authenticating must not strand the installed certificate. */
			trusted = sk_X509_new_null();
			KH_ENSURE(trusted != NULL && sk_X509_push(trusted, ca) > 0, KH_E_RESOURCE_EXHAUSTED);
			memset(&vo, 0, sizeof(vo));
			vo.trusted = trusted;
			vo.partial_chain = true;
			vo.no_check_time = true;
			KH_TRY(pki_verify(leaf, &vo, &vr, e));
			/* CA rollover: the certificate in use does not chain to
			 * the new CA. Both stay as they are; the new CA waits as
			 * pending until a certificate it issued is imported,
			 * which switches CA and certificate in one transaction. */
			pending = !vr.valid;
		}
	}
	kh_bytes_clear(&t.pending_ca);
	if (pending)
		KH_TRY(pki_x509_der(ca, &t.pending_ca.data, &t.pending_ca.len));
	else
		KH_TRY(tp_set_ca(&t, ca));
	t.updated = now_s();
	KH_TRY(store_begin(s->pki->store, e));
	in_txn = true;
	KH_TRY(store_tp_update(s->pki->store, &t, e));
	if (scep)
		KH_TRY(svc_scep_set_ra(s, q->name, &ra, e));
	KH_TRY(store_commit(s->pki->store, e));
	in_txn = false;
	m->ca = rpc_array(c, 1, sizeof(*m->ca));
	KH_ENSURE(m->ca != NULL && (m->ca[0] = tp_cert_msg(c, ca)) != NULL, KH_E_RESOURCE_EXHAUSTED);
	m->n_ca = 1;
	m->pending = pending;
	c->resp = &m->base;
	if (pending)
		log_info("trustpoint '%s': CA rollover: '%s' (SHA-256 %s) authenticated as the pending CA; the "
			 "certificate in use stays until one '%s' issued is imported",
			 q->name, subj, fp, subj);
	else
		log_info("trustpoint '%s': CA '%s' authenticated (SHA-256 %s)", q->name, subj, fp);
out:
	if (in_txn)
		store_rollback(s->pki->store);
	if (locked)
		tp_unlock(s);
	pki_verify_result_clear(&vr);
	kh_bytes_clear(&fetched);
	kh_bytes_clear(&ra);
	sk_X509_free(trusted);
	sk_X509_pop_free(certs, X509_free);
	X509_free(leaf);
	store_tp_clear(&t);
	return r;
}

/* ---- Enroll ---- */

/* The EnrollTrustpointResponse (also RegenerateTrustpoint's answer). */
static enum kh_err tp_enrolled_msg(struct rpc_call *c, struct svc_pki_enrolled *o)
{
	Keyhold__V1__EnrollTrustpointResponse *m = rpc_msg(c, &keyhold__v1__enroll_trustpoint_response__descriptor);

	if (m == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	m->enrollment = (Keyhold__V1__Enrollment)o->enrollment;
	m->key = rpc_strdup(c, o->key);
	m->csr_pem = rpc_strdup(c, o->csr_pem);
	if (o->has_cert)
		m->cert = rpc_cert_info(c, &o->cert);
	m->retired_key = rpc_strdup(c, o->retired_key);
	if (c->oom)
		return KH_E_RESOURCE_EXHAUSTED;
	c->resp = &m->base;
	return KH_OK;
}

static void tp_enrolled_free(void *p)
{
	svc_pki_enrolled_clear(p);
	free(p);
}

/* A svc_pki_enrolled that lives until the answer is sent. */
static struct svc_pki_enrolled *tp_enrolled_new(struct rpc_call *c)
{
	struct svc_pki_enrolled *o = calloc(1, sizeof(*o));

	if (o == NULL)
		c->oom = true;
	else
		rpc_defer(c, tp_enrolled_free, o);
	return c->oom ? NULL : o;
}

static enum kh_err tp_enroll_acme(struct rpc_call *c, const char *name, struct kh_errbuf *e) KH_WUR;

enum kh_err svc_h_enroll_trustpoint(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__EnrollTrustpointRequest *q = (const void *)c->req;
	struct svc_pki_enrolled *o;
	struct store_tp t;
	bool acme;
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	tp_lock(c->s);
	r = store_tp_get(c->s->pki->store, q->name, &t, e);
	tp_unlock(c->s);
	if (r == KH_OK && t.enrollment == KH_ENROLL_URL)
		r = svc_scep_enroll(c, q->name, e);
	store_tp_clear(&t);
	if (r != KH_OK || c->resp != NULL)
		return r;
	o = tp_enrolled_new(c);
	memset(&t, 0, sizeof(t));
	KH_ENSURE(o != NULL, KH_E_RESOURCE_EXHAUSTED);
	tp_lock(c->s);
	r = store_tp_get(c->s->pki->store, q->name, &t, e);
	tp_unlock(c->s);
	if (r != KH_OK)
		goto out;
	acme = t.enrollment == KH_ENROLL_ACME;
	if (acme) {
		r = tp_enroll_acme(c, q->name, e);
		goto out;
	}
	KH_TRY(svc_pki_enroll(c->s, q->name, o, e));
	r = tp_enrolled_msg(c, o);
out:
	store_tp_clear(&t);
	return r;
}

/* ---- Import ---- */

/* The warnings an import answers with. */
struct tp_warnings {
	char w[KH_PKI_WARN_MAX][KH_PKI_WARN_LEN];
	size_t n;
};

static void tp_validity_warnings(X509 *x, const char *what, struct tp_warnings *o)
{
	char when[40];
	int64_t nb = pki_time(X509_get0_notBefore(x)), na = pki_time(X509_get0_notAfter(x)), now = now_s();

	if (o->n >= KH_PKI_WARN_MAX)
		return;
	if (nb > now) {
		kh_time_format_rfc3339(nb, when, sizeof(when));
		snprintf(o->w[o->n++], KH_PKI_WARN_LEN, "%s is not valid yet (not before %s)", what, when);
	} else if (na < now) {
		kh_time_format_rfc3339(na, when, sizeof(when));
		snprintf(o->w[o->n++], KH_PKI_WARN_LEN, "%s has expired (not after %s)", what, when);
	}
}

static enum kh_err tp_load_ders(const struct kh_bytes *ders, size_t n, STACK_OF(X509) **out, struct kh_errbuf *e)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	size_t i;

	if (sk == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < n; i++) {
		X509 *x = pki_x509_from_der(ders[i].data, ders[i].len);

		if (x == NULL || sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			sk_X509_pop_free(sk, X509_free);
			return kh_err_set(e, KH_E_DATA_LOSS, "a stored certificate does not parse");
		}
	}
	*out = sk;
	return KH_OK;
}

/* Whether two readings of a trustpoint hold the same keys, certificates
 * and CAs (nothing an import depends on changed in between). */
static bool tp_same(const struct store_tp *a, const struct store_tp *b)
{
	size_t i;

	if (strcmp(a->key, b->key) != 0 || strcmp(a->next_key, b->next_key) != 0 || a->updated != b->updated ||
	    strcmp(a->revocation, b->revocation) != 0 || a->cert.len != b->cert.len || a->n_ca != b->n_ca ||
	    (a->cert.len > 0 && memcmp(a->cert.data, b->cert.data, a->cert.len) != 0))
		return false;
	for (i = 0; i < a->n_ca; i++)
		if (a->ca[i].len != b->ca[i].len || memcmp(a->ca[i].data, b->ca[i].data, a->ca[i].len) != 0)
			return false;
	return true;
}

/* The trustpoint's revocation policy applied to a certificate about to be
 * imported (chain: leaf first, the authenticated CA last). The PKI lock is
 * released while the check may wait on the network and taken again; an
 * import that raced with another change of the trustpoint is ABORTED.
 * Revoked is refused; unknown is refused unless the policy ends in none
 * (then a warning). */
static enum kh_err tp_import_revocation(struct svc *s, const char *name, const struct store_tp *t,
					STACK_OF(X509) *chain, bool *locked, struct kh_cert_check_resp *rc,
					struct tp_warnings *o, struct kh_errbuf *e)
{
	struct store_tp_policy tpp;
	struct svc_rev_policy pol;
	struct store_tp again;
	char owner[KH_NAME_MAX + 32];
	int r = KH_OK;

	memset(&again, 0, sizeof(again));
	KH_TRY(store_tp_policy_get(s->pki->store, name, &tpp, e));
	snprintf(owner, sizeof(owner), "trustpoint '%s'", name);
	KH_TRY(svc_rev_policy_make(t->revocation, tpp.ocsp_url, owner, &pol, e));
	if (pol.n == 0)
		goto out;
	tp_unlock(s);
	*locked = false;
	r = svc_rev_check(s, chain, &pol, NULL, rc, e);
	tp_lock(s);
	*locked = true;
	if (r != KH_OK)
		goto out;
	KH_ENSURE(rc->status != KH_REV_REVOKED,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "trustpoint '%s': %s; the certificate is not imported", name,
			     rc->detail));
	KH_ENSURE(rc->status != KH_REV_UNKNOWN || rc->soft_fail,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION,
			     "trustpoint '%s': %s; revocation policy '%s' fails hard when nothing answers (accept that with "
			     "keyhold trustpoint set %s --revocation %s,none)",
			     name, rc->detail, pol.text, name, pol.text));
	if (rc->status == KH_REV_UNKNOWN && o->n < KH_PKI_WARN_MAX)
		snprintf(o->w[o->n++], KH_PKI_WARN_LEN, "revocation not confirmed (soft-fail): %.*s",
			 KH_UTF8_PREC(rc->detail, 200));
	KH_TRY(store_tp_get(s->pki->store, name, &again, e));
	KH_ENSURE(tp_same(t, &again),
		  kh_err_set(e, KH_E_ABORTED,
			     "trustpoint '%s' changed while the certificate's revocation was checked; import it again", name));
out:
	store_tp_clear(&again);
	return r;
}

/* Stores the certificate in data (leaf and chain, PEM/DER/PKCS#7) as
 * trustpoint name's identity: ImportCertificate, and ACME enrollment once
 * the chain is downloaded. Fills m; the caller answers with it. */
static enum kh_err tp_import(struct rpc_call *c, const char *name, const uint8_t *data, size_t len,
			     Keyhold__V1__ImportCertificateResponse *m, struct kh_errbuf *e)
{
	struct tp_warnings *o = rpc_alloc(c, sizeof(*o));
	struct svc *s = c->s;
	char retired[SVC_PKI_RETIRED_MAX][KH_NAME_MAX + 1], old_key[KH_NAME_MAX + 1], key[KH_NAME_MAX + 1];
	STACK_OF(X509) *certs = NULL, *cas = NULL, *untrusted = NULL, *chain = NULL, *known = NULL;
	struct pki_verify_result vr;
	struct pki_verify_opts vo;
	struct kh_cert_check_resp rc;
	struct store_tp t;
	const char *cand[1];
	const char *keys[2];
	X509 *leaf = NULL;
	size_t n_retired = 0, k;
	bool locked = false, rollover = false;
	int r = KH_OK, i;

	memset(&t, 0, sizeof(t));
	memset(&vr, 0, sizeof(vr));
	memset(&rc, 0, sizeof(rc));
	key[0] = '\0';
	KH_ENSURE(m != NULL && o != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(pki_certs_load(data, len, &certs, e));
	tp_lock(s);
	locked = true;
	KH_TRY(store_tp_get(s->pki->store, name, &t, e));
	KH_ENSURE(t.n_ca > 0, kh_err_set(e, KH_E_FAILED_PRECONDITION,
					 "trustpoint '%s' has no authenticated CA; run `keyhold trustpoint authenticate %s "
					 "--ca FILE` first",
					 name, name));
	/* The certificate must carry the rollover key or the current key. */
	keys[0] = t.next_key;
	keys[1] = t.key;
	for (k = 0; k < 2 && leaf == NULL; k++) {
		enum kh_key_type type;
		EVP_PKEY *pub = NULL;
		struct kh_errbuf ign = { 0 };

		if (keys[k][0] == '\0' || hsm_key_meta(s->hsm, keys[k], &type, &pub, &ign) != KH_OK || pub == NULL) {
			EVP_PKEY_free(pub);
			continue;
		}
		for (i = 0; i < sk_X509_num(certs); i++) {
			if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, i)), pub) == 1) {
				leaf = sk_X509_value(certs, i);
				kh_strlcpy(key, keys[k], sizeof(key));
				break;
			}
		}
		EVP_PKEY_free(pub);
	}
	ERR_clear_error();
	KH_ENSURE(leaf != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION,
					   "no certificate in the file matches the key of trustpoint '%s' ('%s'%s%s%s): it was "
					   "issued for another key",
					   name, t.key, t.next_key[0] ? " or the new key '" : "", t.next_key,
					   t.next_key[0] ? "'" : ""));
	/* It must chain to the authenticated CA; intermediates may come
	 * with it. Validity is reported as a warning, not refused. */
	KH_TRY(tp_load_ders(t.ca, t.n_ca, &cas, e));
	untrusted = sk_X509_new_null();
	KH_ENSURE(untrusted != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < sk_X509_num(certs); i++)
		if (sk_X509_value(certs, i) != leaf)
			KH_ENSURE(sk_X509_push(untrusted, sk_X509_value(certs, i)) > 0, KH_E_RESOURCE_EXHAUSTED);
	/* The chain of the certificate in use helps a renewal that arrives
	 * alone (a DER file holds one certificate). */
	KH_TRY(tp_load_ders(t.chain, t.n_chain, &known, e));
	for (i = 0; i < sk_X509_num(known); i++)
		KH_ENSURE(sk_X509_push(untrusted, sk_X509_value(known, i)) > 0, KH_E_RESOURCE_EXHAUSTED);
	memset(&vo, 0, sizeof(vo));
	vo.trusted = cas;
	vo.untrusted = untrusted;
	vo.partial_chain = true;
	vo.no_check_time = true;
	KH_TRY(pki_verify(leaf, &vo, &vr, e));
	/* CA rollover: a certificate the pending CA issued switches the
	 * trustpoint to that CA (t is committed whole below). */
	if (!vr.valid && t.pending_ca.len > 0) {
		X509 *pca = pki_x509_from_der(t.pending_ca.data, t.pending_ca.len);
		char first[sizeof(vr.reason)];

		KH_ENSURE(pca != NULL, kh_err_set(e, KH_E_DATA_LOSS, "the pending CA of trustpoint '%s' does not parse", name));
		kh_strlcpy(first, vr.reason, sizeof(first));
		sk_X509_pop_free(cas, X509_free);
		cas = sk_X509_new_null();
		if (cas == NULL || sk_X509_push(cas, pca) <= 0) {
			X509_free(pca);
			r = KH_E_RESOURCE_EXHAUSTED;
			goto out;
		}
		pki_verify_result_clear(&vr);
		vo.trusted = cas;
		KH_TRY(pki_verify(leaf, &vo, &vr, e));
		KH_ENSURE(vr.valid, kh_err_set(e, KH_E_FAILED_PRECONDITION,
					       "the certificate chains neither to the authenticated CA of trustpoint '%s' (%s) nor "
					       "to its pending CA (%s)",
					       name, first, vr.reason));
		rollover = true;
	}
	KH_ENSURE(vr.valid, kh_err_set(e, KH_E_FAILED_PRECONDITION,
				       "the certificate does not chain to the authenticated CA of trustpoint '%s': %s", name,
				       vr.reason));
	chain = sk_X509_new_null();
	KH_ENSURE(chain != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 1; i < sk_X509_num(vr.chain); i++)
		KH_ENSURE(sk_X509_push(chain, sk_X509_value(vr.chain, i)) > 0, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(tp_import_revocation(s, name, &t, vr.chain, &locked, &rc, o, e));
	/* After the check (it compares t with the stored trustpoint): the
	 * pending CA becomes the CA, in the same commit as the certificate. */
	if (rollover) {
		KH_TRY(tp_set_ca(&t, sk_X509_value(cas, 0)));
		kh_bytes_clear(&t.pending_ca);
	}
	tp_validity_warnings(leaf, "the certificate", o);
	for (i = 0; i < sk_X509_num(chain); i++)
		tp_validity_warnings(sk_X509_value(chain, i), "a chain certificate", o);
	svc_pki_crash_point(s, "import.before_commit");
	KH_TRY(svc_pki_set_identity(&t, leaf, chain, key, old_key));
	cand[0] = old_key;
	KH_TRY(svc_pki_commit(s, &t, cand, 1, retired, &n_retired, e));
	svc_pki_crash_point(s, "import.after_commit");
	svc_pki_destroy_retired(s, retired, n_retired);
	m->cert = tp_cert_msg(c, leaf);
	m->chain_len = (uint32_t)sk_X509_num(chain);
	m->key = rpc_strdup(c, key);
	m->retired_key = rpc_strdup(c, n_retired > 0 ? retired[0] : "");
	m->warnings = rpc_array(c, o->n, sizeof(*m->warnings));
	for (k = 0; m->warnings != NULL && k < o->n; k++) {
		m->warnings[k] = o->w[k];
		log_warn("trustpoint '%s': %s", name, o->w[k]);
	}
	m->n_warnings = m->warnings != NULL ? o->n : 0;
	m->ca_rollover = rollover;
	log_info("trustpoint '%s': certificate %s imported for key '%s'%s%s%s", name,
		 m->cert != NULL ? m->cert->serial : "?", key, old_key[0] ? "; rollover from " : "", old_key,
		 rollover ? "; CA rollover: the pending CA is now the trustpoint's CA" : "");
out:
	if (locked)
		tp_unlock(s);
	kh_cert_check_resp_clear(&rc);
	pki_verify_result_clear(&vr);
	sk_X509_free(chain);
	sk_X509_free(untrusted);
	sk_X509_pop_free(known, X509_free);
	sk_X509_pop_free(cas, X509_free);
	sk_X509_pop_free(certs, X509_free);
	store_tp_clear(&t);
	return r;
}

enum kh_err svc_h_import_certificate(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__ImportCertificateRequest *q = (const void *)c->req;
	Keyhold__V1__ImportCertificateResponse *m = rpc_msg(c, &keyhold__v1__import_certificate_response__descriptor);
	int r = KH_OK;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(tp_import(c, q->name, q->data.data, q->data.len, m, e));
	/* The revocation scheduler looks at the new certificate soon. */
	svc_revsched_poke(c->s);
	/* Committed: a failed allocation still answers RESOURCE_EXHAUSTED (c->oom). */
	c->resp = &m->base;
out:
	return r;
}

/* ACME: the whole order on this worker (the loop keeps serving, the
 * http-01 responder included), then the chain stored as an import. */
static enum kh_err tp_enroll_acme(struct rpc_call *c, const char *name, struct kh_errbuf *e)
{
	Keyhold__V1__ImportCertificateResponse *im = rpc_msg(c, &keyhold__v1__import_certificate_response__descriptor);
	Keyhold__V1__EnrollTrustpointResponse *m = rpc_msg(c, &keyhold__v1__enroll_trustpoint_response__descriptor);
	struct kh_errbuf ign = { 0 };
	char *pem = NULL;
	size_t len = 0;
	int r = KH_OK;

	KH_ENSURE(im != NULL && m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(svc_acme_order(c->s, name, &pem, &len, e));
	KH_TRY(tp_import(c, name, (const uint8_t *)pem, len, im, e));
	/* Renewed: an earlier failure of the automatic renewal is over. */
	if (svc_acme_renewal_set(c->s, name, 0, "", 0, &ign) != KH_OK)
		log_warn("trustpoint '%s': renewal state not cleared: %s", name, ign.msg);
	m->enrollment = KEYHOLD__V1__ENROLLMENT__ENROLLMENT_ACME;
	m->key = im->key;
	m->cert = im->cert;
	m->retired_key = im->retired_key;
	c->resp = &m->base;
out:
	free(pem);
	return r;
}

enum kh_err svc_tp_enroll_auto(struct svc *s, const char *tp, char *serial, size_t n, struct kh_errbuf *e)
{
	const Keyhold__V1__EnrollTrustpointResponse *m;
	struct rpc_call c;
	int r = KH_OK;

	/* keyholdd itself calls: no principal, memory released here. */
	memset(&c, 0, sizeof(c));
	c.s = s;
	KH_TRY(tp_enroll_acme(&c, tp, e));
	m = (const void *)c.resp;
	kh_strlcpy(serial, m != NULL && m->cert != NULL && m->cert->serial != NULL ? m->cert->serial : "", n);
out:
	rpc_call_release(&c);
	return r;
}

/* ImportCertificate's work for a caller that answers with it as is: the
 * end of a SCEP enrollment (h_scep.c), so chain checks, rollover and
 * expiry monitoring apply alike. Sets c->resp. */
enum kh_err svc_tp_import(struct rpc_call *c, const char *name, const uint8_t *data, size_t len, struct kh_errbuf *e)
{
	Keyhold__V1__ImportCertificateResponse *m = rpc_msg(c, &keyhold__v1__import_certificate_response__descriptor);
	int r = KH_OK;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(tp_import(c, name, data, len, m, e));
	/* Committed: a failed allocation still answers RESOURCE_EXHAUSTED (c->oom). */
	c->resp = &m->base;
out:
	return r;
}

/* ---- Export ---- */

enum kh_err svc_h_export_trustpoint(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__ExportTrustpointRequest *q = (const void *)c->req;
	Keyhold__V1__ExportTrustpointResponse *m = rpc_msg(c, &keyhold__v1__export_trustpoint_response__descriptor);
	const struct svc_principal *who = c->who;
	struct svc *s = c->s;
	struct kh_bytes data = { NULL, 0 };
	STACK_OF(X509) *certs = NULL;
	struct store_tp t;
	X509 *x;
	size_t i;
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	if (m == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	tp_lock(s);
	r = store_tp_get(s->pki->store, q->name, &t, e);
	tp_unlock(s);
	/* The certificate holds the public key GetPublicKey refuses without a
	 * grant: the same rule, and the same words for a missing trustpoint. */
	if ((r == KH_E_NOT_FOUND && !access_sees_names(who)) ||
	    (r == KH_OK && access_key_view(s->grants, who, t.key) != ACCESS_VIEW_ALL))
		r = access_tp_denied(who, q->name, e);
	if (r != KH_OK)
		goto out;
	KH_ENSURE(t.cert.len > 0, kh_err_set(e, KH_E_FAILED_PRECONDITION,
					     "trustpoint '%s' has no certificate yet; enroll it (self) or import one (terminal)",
					     q->name));
	certs = sk_X509_new_null();
	KH_ENSURE(certs != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < (q->chain ? 1 + t.n_chain : 1); i++) {
		const struct kh_bytes *d = i == 0 ? &t.cert : &t.chain[i - 1];

		x = pki_x509_from_der(d->data, d->len);
		KH_ENSURE(x != NULL, kh_err_set(e, KH_E_DATA_LOSS, "a stored certificate does not parse"));
		if (sk_X509_push(certs, x) <= 0) {
			X509_free(x);
			r = KH_E_RESOURCE_EXHAUSTED;
			goto out;
		}
	}
	KH_TRY(pki_export(certs, (enum kh_cert_format)q->format, &data, e));
	m->data.data = data.data;
	m->data.len = data.len;
	rpc_defer(c, free, data.data);
	data.data = NULL;
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
out:
	kh_bytes_clear(&data);
	sk_X509_pop_free(certs, X509_free);
	store_tp_clear(&t);
	return r;
}

/* ---- Regenerate (key rollover) ---- */

/* Regenerating a self-enrolled trustpoint replaces its certificate at
 * once; when that one is CA-signed (the trustpoint was switched to self
 * after an import) it cannot be had back: --force (docs/CLI.md). Terminal,
 * SCEP and ACME keep the certificate in use until the import. */
static enum kh_err tp_regenerate_check(struct svc *s, const char *name, struct kh_errbuf *e)
{
	struct store_tp t;
	X509 *x = NULL;
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	tp_lock(s);
	KH_TRY(store_tp_get(s->pki->store, name, &t, e));
	if (t.enrollment == KH_ENROLL_SELF && t.cert.len > 0 && (x = pki_x509_from_der(t.cert.data, t.cert.len)) != NULL) {
		char issuer[256];

		pki_name_text(X509_get_issuer_name(x), issuer, sizeof(issuer));
		KH_ENSURE(pki_cert_self_signed(x),
			  kh_err_set(e, KH_E_FAILED_PRECONDITION,
				     "regenerating trustpoint '%s' replaces its certificate issued by '%s' with a self-signed "
				     "one at once; give --force to do it",
				     name, issuer));
	}
out:
	tp_unlock(s);
	X509_free(x);
	ERR_clear_error();
	store_tp_clear(&t);
	return r;
}

enum kh_err svc_h_regenerate_trustpoint(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__RegenerateTrustpointRequest *q = (const void *)c->req;
	struct svc_pki_enrolled *o = tp_enrolled_new(c);
	int r = KH_OK;

	KH_ENSURE(o != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (!q->force)
		KH_TRY(tp_regenerate_check(c->s, q->name, e));
	KH_TRY(svc_pki_regenerate(c->s, q->name, (enum kh_key_type)q->type, o, e));
	r = tp_enrolled_msg(c, o);
out:
	return r;
}
