/* h_truststore.c: the trust store RPCs: TruststoreAdd, TruststoreList,
 * TruststoreRemove, TruststoreVerify (RFC 5280 §6 with the store's policy
 * and key floor settings, host/IP, purpose, time, CRLs over the whole
 * chain), ImportCrl (warning on a stale CRL), ListCrls and RemoveCrl. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "revocation/revocation.h"
#include "rpc/rpc.h"
#include "kh_text.h"

#define TS_CERTS_MAX KH_TS_CERTS_MAX

static void ts_lock(struct svc *s)
{
	pthread_mutex_lock(&s->pki->lock);
}

static void ts_unlock(struct svc *s)
{
	pthread_mutex_unlock(&s->pki->lock);
}

static enum kh_err ts_require(struct svc *s, const char *name, struct kh_errbuf *e)
{
	bool exists = false;
	int r = store_ts_exists(s->pki->store, name, &exists, e);

	if (r == KH_OK && !exists)
		r = kh_err_set(e, KH_E_NOT_FOUND, "no trust store named '%s'", name);
	return r;
}

static enum kh_err ts_cert_info(const struct store_ts_cert *c, struct kh_cert_info *out, struct kh_errbuf *e)
{
	X509 *x = pki_x509_from_der(c->der.data, c->der.len);

	if (x == NULL)
		return kh_err_set(e, KH_E_DATA_LOSS, "a stored certificate (%s) does not parse", c->fingerprint);
	pki_cert_info(x, out);
	X509_free(x);
	return KH_OK;
}

static enum kh_err ts_crl_info(const struct store_crl *c, struct kh_crl_info *out, struct kh_errbuf *e)
{
	const unsigned char *p = c->der.data;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)c->der.len);

	if (crl == NULL)
		return kh_err_set(e, KH_E_DATA_LOSS, "a stored CRL does not parse");
	pki_crl_info(crl, out);
	X509_CRL_free(crl);
	return KH_OK;
}

/* ---- Add ---- */

/* Whether two self-signed certificates name one CA with two keys. */
static bool ts_same_dn_other_key(X509 *a, X509 *b)
{
	return X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0 &&
	       EVP_PKEY_eq(X509_get0_pubkey(a), X509_get0_pubkey(b)) != 1;
}

/* KH_E_ALREADY_EXISTS when self-signed x has the subject DN of a
 * self-signed certificate the store holds (have) or this request adds
 * (addx, nadd), under another key. Only a certificate already stored is
 * suggested for removal: nothing of the refused request was added. */
static enum kh_err ts_dup_check(const char *store, X509 *x, const struct store_ts_cert *have, X509 *const *havex,
				size_t nhave, const struct store_ts_cert *add, X509 *const *addx, size_t nadd,
				struct kh_errbuf *e)
{
	char subj[KH_DN_MAX + 1], fp[KH_FP_HEX + 1], ofp[KH_FP_HEX + 1];
	size_t i;

	for (i = 0; i < nhave; i++) {
		if (havex[i] == NULL || !ts_same_dn_other_key(havex[i], x))
			continue;
		pki_name_text(X509_get_subject_name(x), subj, sizeof(subj));
		pki_fingerprint(x, fp);
		return kh_err_set(e, KH_E_ALREADY_EXISTS,
				  "trust store '%s' already holds a self-signed certificate with subject '%.*s' and another "
				  "key (SHA-256 %s); %s cannot be trusted next to it: remove the stored one first "
				  "(keyhold truststore remove %s %s); nothing was added",
				  store, KH_UTF8_PREC(subj, 200), have[i].fingerprint, fp, store, have[i].fingerprint);
	}
	for (i = 0; i < nadd; i++) {
		if (!add[i].self_signed || !ts_same_dn_other_key(addx[i], x))
			continue;
		pki_name_text(X509_get_subject_name(x), subj, sizeof(subj));
		pki_fingerprint(x, fp);
		pki_fingerprint(addx[i], ofp);
		return kh_err_set(e, KH_E_ALREADY_EXISTS,
				  "the certificates given hold two self-signed certificates with subject '%.*s' and different "
				  "keys (SHA-256 %s and %s); two CAs with one name cannot both be trusted: leave one out; "
				  "nothing was added to trust store '%s'",
				  KH_UTF8_PREC(subj, 200), ofp, fp, store);
	}
	return KH_OK;
}

/* A warning line of TruststoreAdd, cut at KH_PKI_WARN_LEN as before. */
static void ts_warn(struct rpc_call *c, Keyhold__V1__TruststoreAddResponse *m, const char *what, const char *subject)
{
	char w[KH_PKI_WARN_LEN];

	if (m->n_warnings >= KH_PKI_WARN_MAX)
		return;
	snprintf(w, sizeof(w), "'%.*s' %s", KH_UTF8_PREC(subject, 200), what);
	m->warnings[m->n_warnings++] = rpc_strdup(c, w);
}

enum kh_err svc_h_truststore_add(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreAddRequest *q = (const void *)c->req;
	Keyhold__V1__TruststoreAddResponse *o = rpc_msg(c, &keyhold__v1__truststore_add_response__descriptor);
	struct svc *s = c->s;
	STACK_OF(X509) *all = NULL;
	struct store_ts_cert *have = NULL, *add = NULL;
	X509 **addx = NULL; /* borrowed from all: the certificates of add */
	X509 **havex = NULL; /* the self-signed ones of have, parsed once */
	size_t nhave = 0, nadd = 0, f, i;
	bool exists = false, in_txn = false, locked = false;
	int64_t now = (int64_t)time(NULL);
	int r = KH_OK, k;

	KH_ENSURE(o != NULL, KH_E_RESOURCE_EXHAUSTED);
	/* Parse every file before anything is stored: all or nothing. */
	all = sk_X509_new_null();
	KH_ENSURE(all != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (f = 0; f < q->n_files; f++) {
		STACK_OF(X509) *one = NULL;
		struct kh_errbuf fe = { 0 };

		if (pki_certs_load(q->files[f].data, q->files[f].len, &one, &fe) != KH_OK) {
			r = kh_err_set(e, fe.code, "file %zu: %s", f + 1, fe.msg);
			goto out;
		}
		while (sk_X509_num(one) > 0) {
			X509 *x = sk_X509_shift(one);

			if (sk_X509_num(all) >= TS_CERTS_MAX || sk_X509_push(all, x) <= 0) {
				X509_free(x);
				sk_X509_pop_free(one, X509_free);
				r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "more than %d certificates", TS_CERTS_MAX);
				goto out;
			}
		}
		sk_X509_free(one);
	}
	add = calloc((size_t)sk_X509_num(all), sizeof(*add));
	addx = calloc((size_t)sk_X509_num(all), sizeof(*addx));
	o->added = rpc_array(c, (size_t)sk_X509_num(all), sizeof(*o->added));
	o->warnings = rpc_array(c, KH_PKI_WARN_MAX, sizeof(*o->warnings));
	KH_ENSURE(add != NULL && addx != NULL && o->added != NULL && o->warnings != NULL, KH_E_RESOURCE_EXHAUSTED);

	ts_lock(s);
	locked = true;
	KH_TRY(store_ts_exists(s->pki->store, q->store, &exists, e));
	if (exists)
		KH_TRY(store_ts_certs(s->pki->store, q->store, &have, &nhave, e));
	havex = calloc(nhave + 1, sizeof(*havex));
	KH_ENSURE(havex != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < nhave; i++)
		if (have[i].self_signed)
			havex[i] = pki_x509_from_der(have[i].der.data, have[i].der.len);
	for (k = 0; k < sk_X509_num(all); k++) {
		X509 *x = sk_X509_value(all, k);
		struct store_ts_cert *t = &add[nadd];
		struct kh_cert_info ci;
		bool dup = false;

		memset(t, 0, sizeof(*t));
		pki_fingerprint(x, t->fingerprint);
		for (i = 0; i < nhave && !dup; i++)
			dup = strcmp(have[i].fingerprint, t->fingerprint) == 0;
		for (i = 0; i < nadd && !dup; i++)
			dup = strcmp(add[i].fingerprint, t->fingerprint) == 0;
		if (dup) {
			o->already_present++;
			continue;
		}
		pki_name_text(X509_get_subject_name(x), t->subject, sizeof(t->subject));
		pki_cert_cn(x, t->cn, sizeof(t->cn));
		t->self_signed = pki_cert_self_signed(x);
		t->not_after = pki_time(X509_get0_notAfter(x));
		t->added = now;
		/* DESIGN §7, issue 16: two self-signed certificates with one
		 * whole subject DN and different keys leave a verifier unable
		 * to tell the two CAs apart (Expressway refuses them too). One
		 * CN under different DNs is fine; one DN and one key is the
		 * same CA re-issued (new validity), also fine. */
		if (t->self_signed)
			KH_TRY(ts_dup_check(q->store, x, have, havex, nhave, add, addx, nadd, e));
		addx[nadd] = x;
		KH_TRY(pki_x509_der(x, &t->der.data, &t->der.len));
		pki_cert_info(x, &ci);
		o->added[o->n_added] = rpc_cert_info(c, &ci);
		KH_ENSURE(o->added[o->n_added] != NULL, KH_E_RESOURCE_EXHAUSTED);
		o->n_added++;
		if (t->not_after < now)
			ts_warn(c, o, "has expired", t->subject);
		if (!pki_cert_is_ca(x))
			ts_warn(c, o, "is not a CA certificate", t->subject);
		nadd++;
	}
	KH_ENSURE(nhave + nadd <= TS_CERTS_MAX,
		  kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "trust store '%s' would hold more than %d certificates", q->store,
			     TS_CERTS_MAX));
	KH_TRY(store_begin(s->pki->store, e));
	in_txn = true;
	KH_TRY(store_ts_create(s->pki->store, q->store, e));
	for (i = 0; i < nadd; i++)
		KH_TRY(store_ts_cert_add(s->pki->store, q->store, &add[i], e));
	KH_TRY(store_commit(s->pki->store, e));
	in_txn = false;
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &o->base;
	log_info("trust store '%s': %zu certificate(s) added, %u already present", q->store, nadd, o->already_present);
out:
	if (in_txn)
		store_rollback(s->pki->store);
	if (locked)
		ts_unlock(s);
	store_ts_certs_free(have, nhave);
	store_ts_certs_free(add, nadd);
	free(addx);
	for (i = 0; havex != NULL && i < nhave; i++)
		X509_free(havex[i]);
	free(havex);
	sk_X509_pop_free(all, X509_free);
	return r;
}

/* ---- List ---- */

/* A Truststore message: its policy, CRLs and, with details, its
 * certificates. The caller holds the lock. */
/* The store's CRL URL and trusted OCSP responder (schema 8). */
static enum kh_err ts_describe_revocation(struct rpc_call *rc, const char *name, Keyhold__V1__Truststore *t,
					  struct kh_errbuf *e)
{
	char url[KH_URL_MAX + 1];
	struct kh_bytes der = { NULL, 0 };
	X509 *x = NULL;
	int r = KH_OK;

	KH_TRY(store_ts_crl_url_get(rc->s->pki->store, name, url, sizeof(url), e));
	t->crl_url = rpc_strdup(rc, url);
	KH_TRY(store_ts_ocsp_signer_get(rc->s->pki->store, name, &der, e));
	if (der.len > 0 && (x = pki_x509_from_der(der.data, der.len)) != NULL) {
		struct kh_cert_info ci;

		pki_cert_info(x, &ci);
		t->ocsp_responder = rpc_cert_info(rc, &ci);
	}
out:
	X509_free(x);
	kh_bytes_clear(&der);
	return r;
}

static enum kh_err ts_describe(struct rpc_call *rc, const char *name, bool details, Keyhold__V1__Truststore **out,
			       struct kh_errbuf *e)
{
	struct svc *s = rc->s;
	Keyhold__V1__Truststore *t = rpc_msg(rc, &keyhold__v1__truststore__descriptor);
	struct store_ts_cert *c = NULL;
	struct store_crl *cr = NULL;
	struct store_ts_policy pol;
	struct kh_validation val;
	size_t nc = 0, ncr = 0, i;
	int r = KH_OK;

	KH_ENSURE(t != NULL, KH_E_RESOURCE_EXHAUSTED);
	t->name = rpc_strdup(rc, name);
	KH_TRY(store_ts_policy_get(s->pki->store, name, &pol, e));
	KH_TRY(store_ts_validation_get(s->pki->store, name, &val, e));
	t->revocation = rpc_strdup(rc, pol.revocation);
	t->ocsp_url = rpc_strdup(rc, pol.ocsp_url);
	t->validation = rpc_validation(rc, &val);
	KH_TRY(ts_describe_revocation(rc, name, t, e));
	KH_TRY(store_ts_certs(s->pki->store, name, &c, &nc, e));
	KH_TRY(store_crl_list(s->pki->store, name, &cr, &ncr, e));
	t->cert_count = (uint32_t)nc;
	if (details) {
		t->certs = rpc_array(rc, nc, sizeof(*t->certs));
		KH_ENSURE(t->certs != NULL, KH_E_RESOURCE_EXHAUSTED);
		for (i = 0; i < nc; i++) {
			struct kh_cert_info ci;

			KH_TRY(ts_cert_info(&c[i], &ci, e));
			t->certs[i] = rpc_cert_info(rc, &ci);
			KH_ENSURE(t->certs[i] != NULL, KH_E_RESOURCE_EXHAUSTED);
			t->n_certs++;
		}
	}
	t->crls = rpc_array(rc, ncr, sizeof(*t->crls));
	KH_ENSURE(t->crls != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < ncr; i++) {
		struct kh_crl_info ci;

		KH_TRY(ts_crl_info(&cr[i], &ci, e));
		t->crls[i] = rpc_crl_info(rc, &ci);
		KH_ENSURE(t->crls[i] != NULL, KH_E_RESOURCE_EXHAUSTED);
		t->n_crls++;
	}
	KH_ENSURE(!rc->oom, KH_E_RESOURCE_EXHAUSTED);
	*out = t;
out:
	store_ts_certs_free(c, nc);
	store_crls_free(cr, ncr);
	return r;
}

enum kh_err svc_h_truststore_list(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreListRequest *q = (const void *)c->req;
	Keyhold__V1__TruststoreListResponse *m = rpc_msg(c, &keyhold__v1__truststore_list_response__descriptor);
	const char *want = q->store != NULL ? q->store : "";
	char (*names)[KH_NAME_MAX + 1] = NULL;
	size_t n = 0, i;
	int r = KH_OK;

	ts_lock(c->s);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (want[0] != '\0') {
		KH_TRY(ts_require(c->s, want, e));
		m->stores = rpc_array(c, 1, sizeof(*m->stores));
		KH_ENSURE(m->stores != NULL, KH_E_RESOURCE_EXHAUSTED);
		KH_TRY(ts_describe(c, want, true, &m->stores[0], e));
		m->n_stores = 1;
	} else {
		KH_TRY(store_ts_names(c->s->pki->store, &names, &n, e));
		m->stores = rpc_array(c, n, sizeof(*m->stores));
		KH_ENSURE(m->stores != NULL, KH_E_RESOURCE_EXHAUSTED);
		for (i = 0; i < n; i++) {
			KH_TRY(ts_describe(c, names[i], false, &m->stores[i], e));
			m->n_stores++;
		}
	}
	c->resp = &m->base;
out:
	ts_unlock(c->s);
	free(names);
	return r;
}

/* ---- Remove ---- */

enum kh_err svc_h_truststore_remove(struct rpc_call *rc, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreRemoveRequest *q = (const void *)rc->req;
	Keyhold__V1__TruststoreRemoveResponse *m = rpc_msg(rc, &keyhold__v1__truststore_remove_response__descriptor);
	struct svc *s = rc->s;
	struct kh_cert_info removed;
	struct store_ts_cert *c = NULL;
	size_t nc = 0, i;
	char fp[KH_FP_HEX + 1];
	bool in_txn = false, locked = false, found = false;
	int r = KH_OK;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(kh_fingerprint_normalize(q->fingerprint, fp),
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the fingerprint must be 64 hex digits (SHA-256), colons allowed"));
	ts_lock(s);
	locked = true;
	KH_TRY(ts_require(s, q->store, e));
	KH_TRY(store_ts_certs(s->pki->store, q->store, &c, &nc, e));
	for (i = 0; i < nc && !found; i++) {
		if (strcmp(c[i].fingerprint, fp) == 0) {
			KH_TRY(ts_cert_info(&c[i], &removed, e));
			found = true;
		}
	}
	KH_ENSURE(found, kh_err_set(e, KH_E_NOT_FOUND, "trust store '%s' holds no certificate with SHA-256 fingerprint %s",
				    q->store, fp));
	m->removed = rpc_cert_info(rc, &removed);
	KH_ENSURE(m->removed != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(store_begin(s->pki->store, e));
	in_txn = true;
	KH_TRY(store_ts_cert_remove(s->pki->store, q->store, fp, e));
	/* An emptied store stays, with its policy and CRLs (issue 16):
	 * `truststore delete` removes a store. */
	KH_TRY(store_commit(s->pki->store, e));
	in_txn = false;
	rc->resp = &m->base;
	log_info("trust store '%s': removed %s", q->store, fp);
out:
	if (in_txn)
		store_rollback(s->pki->store);
	if (locked)
		ts_unlock(s);
	store_ts_certs_free(c, nc);
	return r;
}

/* ---- Verify ---- */

static enum kh_err ts_append(STACK_OF(X509) *dst, STACK_OF(X509) *src)
{
	while (sk_X509_num(src) > 0) {
		X509 *x = sk_X509_shift(src);

		if (sk_X509_push(dst, x) <= 0) {
			X509_free(x);
			return KH_E_RESOURCE_EXHAUSTED;
		}
	}
	return KH_OK;
}

enum kh_err svc_h_truststore_verify(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreVerifyRequest *q = (const void *)c->req;
	Keyhold__V1__TruststoreVerifyResponse *o = rpc_msg(c, &keyhold__v1__truststore_verify_response__descriptor);
	struct svc *s = c->s;
	STACK_OF(X509) *given = NULL, *untrusted = NULL, *more = NULL, *trusted = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	struct pki_verify_result vr;
	struct pki_verify_opts vo;
	struct store_ts_policy tsp;
	struct kh_validation val;
	struct svc_rev_policy pol;
	X509 *responder = NULL;
	struct kh_cert_check_resp rc;
	char owner[KH_NAME_MAX + 32], why[KH_REV_DETAIL_MAX + 128];
	char reason[512], detail[512]; /* the answer's lengths */
	X509 *leaf = NULL;
	size_t i;
	int r = KH_OK;

	memset(&vr, 0, sizeof(vr));
	memset(&rc, 0, sizeof(rc));
	detail[0] = '\0';
	KH_ENSURE(o != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(pki_certs_load(q->cert.data, q->cert.len, &given, e));
	leaf = sk_X509_shift(given); /* the first certificate; the rest are intermediates */
	untrusted = given;
	given = NULL;
	if (q->untrusted.len > 0) {
		KH_TRY(pki_certs_load(q->untrusted.data, q->untrusted.len, &more, e));
		KH_TRY(ts_append(untrusted, more));
	}
	crls = sk_X509_CRL_new_null();
	KH_ENSURE(crls != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < q->n_crls; i++) {
		X509_CRL *crl = NULL;
		struct kh_errbuf ce = { 0 };

		if (pki_crl_load(q->crls[i].data, q->crls[i].len, &crl, &ce) != KH_OK) {
			r = kh_err_set(e, ce.code, "CRL file %zu: %s", i + 1, ce.msg);
			goto out;
		}
		if (sk_X509_CRL_push(crls, crl) <= 0) {
			X509_CRL_free(crl);
			r = KH_E_RESOURCE_EXHAUSTED;
			goto out;
		}
	}
	{
		STACK_OF(X509_CRL) *stored = NULL;

		KH_TRY(svc_pki_truststore_load(s, q->store, &trusted, &stored, e));
		while (sk_X509_CRL_num(stored) > 0) {
			X509_CRL *crl = sk_X509_CRL_shift(stored);

			if (sk_X509_CRL_push(crls, crl) <= 0) {
				X509_CRL_free(crl);
				sk_X509_CRL_pop_free(stored, X509_CRL_free);
				r = KH_E_RESOURCE_EXHAUSTED;
				goto out;
			}
		}
		sk_X509_CRL_free(stored);
	}
	/* The store's validation settings; the request may name its own
	 * initial policy set and add the three initial inhibits, never relax
	 * them (RFC 5280 §6.1.1 (c), (e)-(g)). */
	ts_lock(s);
	r = store_ts_validation_get(s->pki->store, q->store, &val, e);
	ts_unlock(s);
	if (r != KH_OK)
		goto out;
	if (q->n_policies > 0) {
		val.n_policies = 0;
		for (i = 0; i < q->n_policies && i < KH_POLICIES_MAX; i++)
			kh_strlcpy(val.policies[val.n_policies++], q->policies[i], sizeof(val.policies[0]));
	}
	val.require_explicit_policy |= q->require_explicit_policy;
	val.inhibit_policy_mapping |= q->inhibit_policy_mapping;
	val.inhibit_any_policy |= q->inhibit_any_policy;
	memset(&vo, 0, sizeof(vo));
	vo.v = &val;
	vo.trusted = trusted;
	vo.untrusted = untrusted;
	vo.crls = crls;
	vo.at = q->at;
	vo.host = q->host;
	vo.ip = q->ip;
	vo.purpose = (enum kh_purpose)q->purpose;
	/* Whatever the store holds is trusted, root or intermediate. */
	vo.partial_chain = true;
	KH_TRY(pki_verify(leaf, &vo, &vr, e));
	o->valid = vr.valid;
	o->error = vr.error;
	o->error_depth = vr.depth;
	kh_strlcpy(reason, vr.reason, sizeof(reason));
	o->validation = rpc_validation(c, &val);
	o->valid_policies = rpc_array(c, vr.n_policies, sizeof(*o->valid_policies));
	KH_ENSURE(o->validation != NULL && o->valid_policies != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < vr.n_policies; i++)
		o->valid_policies[o->n_valid_policies++] = rpc_strdup(c, vr.policies[i]);
	o->chain = rpc_array(c, (size_t)sk_X509_num(vr.chain), sizeof(*o->chain));
	KH_ENSURE(o->chain != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < (size_t)sk_X509_num(vr.chain); i++) {
		struct kh_cert_info ci;

		pki_cert_info(sk_X509_value(vr.chain, (int)i), &ci);
		o->chain[i] = rpc_cert_info(c, &ci);
		KH_ENSURE(o->chain[i] != NULL, KH_E_RESOURCE_EXHAUSTED);
		o->n_chain++;
	}
	/* The store's revocation policy on a valid chain (docs/REVOCATION.md).
	 * CRLs imported into the store or given with --crl were enforced by
	 * the chain check already and are the crl method's first source. */
	ts_lock(s);
	r = store_ts_policy_get(s->pki->store, q->store, &tsp, e);
	ts_unlock(s);
	if (r != KH_OK)
		goto out;
	snprintf(owner, sizeof(owner), "trust store '%s'", q->store);
	KH_TRY(svc_rev_policy_make(tsp.revocation, tsp.ocsp_url, owner, &pol, e));
	KH_TRY(svc_rev_store_responder(s, q->store, &responder, e));
	pol.responder = responder;
	if (o->valid && pol.n > 0) {
		KH_TRY(svc_rev_check(s, vr.chain, &pol, crls, &rc, e));
		o->revocation_status = (Keyhold__V1__RevocationStatus)rc.status;
		o->revocation_soft_fail = rc.soft_fail;
		kh_strlcpy(detail, rc.detail, sizeof(detail));
		if (rc.status == KH_REV_REVOKED) {
			o->valid = false;
			o->error = X509_V_ERR_CERT_REVOKED;
			o->error_depth = 0;
			for (i = 0; i < rc.n_certs; i++)
				if (rc.certs[i].status == KH_REV_REVOKED) {
					o->error_depth = (int32_t)i;
					break;
				}
			snprintf(why, sizeof(why), "certificate revoked (%s): %s", rc.reason, rc.detail);
			kh_strlcpy(reason, why, sizeof(reason));
		} else if (rc.status == KH_REV_UNKNOWN && !rc.soft_fail) {
			o->valid = false;
			o->error = X509_V_ERR_UNABLE_TO_GET_CRL;
			snprintf(why, sizeof(why), "revocation status unknown, policy '%s' fails hard: %s", pol.text,
				 rc.detail);
			kh_strlcpy(reason, why, sizeof(reason));
		}
	}
	o->reason = rpc_strdup(c, reason);
	o->revocation_detail = rpc_strdup(c, detail);
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &o->base;
	log_info("trust store '%s': verify: %s", q->store, reason);
out:
	X509_free(responder);
	kh_cert_check_resp_clear(&rc);
	pki_verify_result_clear(&vr);
	X509_free(leaf);
	sk_X509_pop_free(given, X509_free);
	sk_X509_pop_free(untrusted, X509_free);
	sk_X509_pop_free(more, X509_free);
	sk_X509_pop_free(trusted, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return r;
}

/* ---- ImportCrl ---- */

enum kh_err svc_h_import_crl(struct rpc_call *rc, struct kh_errbuf *e)
{
	const Keyhold__V1__ImportCrlRequest *q = (const void *)rc->req;
	Keyhold__V1__ImportCrlResponse *m = rpc_msg(rc, &keyhold__v1__import_crl_response__descriptor);
	struct kh_crl_info info;
	X509_CRL *crl = NULL;
	char warn[KH_DN_MAX + 160];
	int r = KH_OK;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(pki_crl_load(q->crl.data, q->crl.len, &crl, e));
	pki_crl_info(crl, &info);
	m->crl = rpc_crl_info(rc, &info);
	m->warnings = rpc_array(rc, 1, sizeof(*m->warnings));
	KH_ENSURE(m->crl != NULL && m->warnings != NULL, KH_E_RESOURCE_EXHAUSTED);
	r = svc_rev_crl_install(rc->s, q->store, crl, "import", warn, sizeof(warn), e);
	if (r != KH_OK)
		goto out;
	if (warn[0] != '\0')
		m->warnings[m->n_warnings++] = rpc_strdup(rc, warn);
	KH_ENSURE(!rc->oom, KH_E_RESOURCE_EXHAUSTED);
	rc->resp = &m->base;
out:
	X509_CRL_free(crl);
	return r;
}

/* ---- ListCrls, RemoveCrl ---- */

static Keyhold__V1__StoredCrl *ts_stored_crl(struct rpc_call *rc, const char *store, const struct store_crl *c,
					     struct kh_errbuf *e)
{
	Keyhold__V1__StoredCrl *m = rpc_msg(rc, &keyhold__v1__stored_crl__descriptor);
	struct kh_crl_info ci;

	if (m == NULL || ts_crl_info(c, &ci, e) != KH_OK)
		return NULL;
	m->store = rpc_strdup(rc, store);
	m->crl = rpc_crl_info(rc, &ci);
	m->source = rpc_strdup(rc, c->source);
	m->imported = c->imported;
	/* The store's CRL URL and its last fetch (revocation/rev_sched.c). */
	{
		char url[KH_URL_MAX + 1];
		struct store_crl_fetch f;
		bool found = false;

		if (store_ts_crl_url_get(rc->s->pki->store, store, url, sizeof(url), e) != KH_OK)
			return NULL;
		m->url = rpc_strdup(rc, url);
		if (url[0] != '\0' && strcmp(c->source, "fetched") == 0) {
			if (store_crl_fetch_get(rc->s->pki->store, url, &f, &found, e) != KH_OK)
				return NULL;
			if (found) {
				m->last_fetch = rpc_strdup(rc, f.result);
				m->last_fetch_ok = f.ok;
				m->last_fetched = f.fetched;
			}
		}
	}
	return rc->oom ? NULL : m;
}

enum kh_err svc_h_list_crls(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__ListCrlsRequest *q = (const void *)c->req;
	Keyhold__V1__ListCrlsResponse *m = rpc_msg(c, &keyhold__v1__list_crls_response__descriptor);
	const char *want = q->store != NULL ? q->store : "";
	char (*names)[KH_NAME_MAX + 1] = NULL;
	struct store_crl *cr = NULL;
	size_t n = 0, ncr = 0, i, k, total = 0;
	int r = KH_OK;

	ts_lock(c->s);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (want[0] != '\0') {
		KH_TRY(ts_require(c->s, want, e));
		names = calloc(1, sizeof(*names));
		KH_ENSURE(names != NULL, KH_E_RESOURCE_EXHAUSTED);
		kh_strlcpy(names[0], want, sizeof(names[0]));
		n = 1;
	} else {
		KH_TRY(store_ts_names(c->s->pki->store, &names, &n, e));
	}
	/* Two passes: count, then fill (the answer's array is sized once). */
	for (i = 0; i < n; i++) {
		KH_TRY(store_crl_list(c->s->pki->store, names[i], &cr, &ncr, e));
		total += ncr;
		store_crls_free(cr, ncr);
		cr = NULL;
		ncr = 0;
	}
	m->crls = rpc_array(c, total, sizeof(*m->crls));
	KH_ENSURE(m->crls != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < n; i++) {
		KH_TRY(store_crl_list(c->s->pki->store, names[i], &cr, &ncr, e));
		for (k = 0; k < ncr && m->n_crls < total; k++) {
			m->crls[m->n_crls] = ts_stored_crl(c, names[i], &cr[k], e);
			KH_ENSURE(m->crls[m->n_crls] != NULL, e->code != KH_OK ? e->code : KH_E_RESOURCE_EXHAUSTED);
			m->n_crls++;
		}
		store_crls_free(cr, ncr);
		cr = NULL;
		ncr = 0;
	}
	c->resp = &m->base;
out:
	ts_unlock(c->s);
	store_crls_free(cr, ncr);
	free(names);
	return r;
}

enum kh_err svc_h_remove_crl(struct rpc_call *rc, struct kh_errbuf *e)
{
	const Keyhold__V1__RemoveCrlRequest *q = (const void *)rc->req;
	Keyhold__V1__RemoveCrlResponse *m = rpc_msg(rc, &keyhold__v1__remove_crl_response__descriptor);
	struct svc *s = rc->s;
	struct store_crl *cr = NULL;
	size_t ncr = 0, i, hits = 0, at = 0;
	char fp[KH_FP_HEX + 1];
	bool by_fp;
	int r = KH_OK;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	by_fp = kh_fingerprint_normalize(q->crl, fp);
	ts_lock(s);
	KH_TRY(ts_require(s, q->store, e));
	KH_TRY(store_crl_list(s->pki->store, q->store, &cr, &ncr, e));
	for (i = 0; i < ncr; i++) {
		if ((by_fp && strcmp(cr[i].fingerprint, fp) == 0) || (!by_fp && strcasecmp(cr[i].issuer, q->crl) == 0)) {
			hits++;
			at = i;
		}
	}
	KH_ENSURE(hits < 2, kh_err_set(e, KH_E_INVALID_ARGUMENT,
				      "trust store '%s' holds a full and a delta CRL from '%.200s': name one by its SHA-256 "
				      "fingerprint (keyhold crl list %s)",
				      q->store, q->crl, q->store));
	KH_ENSURE(hits > 0, kh_err_set(e, KH_E_NOT_FOUND,
				      "trust store '%s' holds no CRL %s '%.200s' (keyhold crl list %s shows them)", q->store,
				      by_fp ? "with SHA-256 fingerprint" : "from", q->crl, q->store));
	/* Without its CRL the store accepts what that CRL revoked. */
	KH_ENSURE(q->force, kh_err_set(e, KH_E_FAILED_PRECONDITION,
				      "removing the CRL from '%.200s' makes trust store '%s' accept the certificates it revokes; "
				      "give --force to remove it",
				      cr[at].issuer, q->store));
	m->removed = ts_stored_crl(rc, q->store, &cr[at], e);
	KH_ENSURE(m->removed != NULL, e->code != KH_OK ? e->code : KH_E_RESOURCE_EXHAUSTED);
	/* One statement: its own transaction. */
	KH_TRY(store_crl_remove(s->pki->store, q->store, cr[at].issuer_key, e));
	rc->resp = &m->base;
	log_info("trust store '%s': CRL from '%s' (%s) removed", q->store, cr[at].issuer, cr[at].fingerprint);
out:
	ts_unlock(s);
	store_crls_free(cr, ncr);
	return r;
}
