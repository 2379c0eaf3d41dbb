/* h_truststore.c: the trust store RPCs: TruststoreAdd, TruststoreList,
 * TruststoreRemove, TruststoreVerify (X509_STRICT, host/IP, purpose, time,
 * CRLs over the whole chain) and ImportCrl. */
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

#define TS_CERTS_MAX 1024 /* certificates in one store */

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

enum kh_err svc_h_truststore_add(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
				 union proto_resp_body *resp, struct kh_errbuf *e)
{
	const struct kh_ts_add_req *q = &req->ts_add;
	struct kh_ts_add_resp *o = &resp->ts_add;
	STACK_OF(X509) *all = NULL;
	struct store_ts_cert *have = NULL, *add = NULL;
	size_t nhave = 0, nadd = 0, f, i, j;
	bool exists = false, in_txn = false, locked = false;
	int64_t now = (int64_t)time(NULL);
	int r = KH_OK, k;

	(void)who;
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
	o->added.certs = calloc((size_t)sk_X509_num(all), sizeof(*o->added.certs));
	KH_ENSURE(add != NULL && o->added.certs != NULL, KH_E_RESOURCE_EXHAUSTED);

	ts_lock(s);
	locked = true;
	KH_TRY(store_ts_exists(s->pki->store, q->store, &exists, e));
	if (exists)
		KH_TRY(store_ts_certs(s->pki->store, q->store, &have, &nhave, e));
	for (k = 0; k < sk_X509_num(all); k++) {
		X509 *x = sk_X509_value(all, k);
		struct store_ts_cert *c = &add[nadd];
		bool dup = false;

		memset(c, 0, sizeof(*c));
		pki_fingerprint(x, c->fingerprint);
		for (i = 0; i < nhave && !dup; i++)
			dup = strcmp(have[i].fingerprint, c->fingerprint) == 0;
		for (i = 0; i < nadd && !dup; i++)
			dup = strcmp(add[i].fingerprint, c->fingerprint) == 0;
		if (dup) {
			o->already_present++;
			continue;
		}
		pki_name_text(X509_get_subject_name(x), c->subject, sizeof(c->subject));
		pki_cert_cn(x, c->cn, sizeof(c->cn));
		c->self_signed = pki_cert_self_signed(x);
		c->not_after = pki_time(X509_get0_notAfter(x));
		c->added = now;
		/* DESIGN §7: two self-signed certificates with one CN in one
		 * store leave clients able to trust only one of them. */
		if (c->self_signed) {
			for (j = 0; j < nhave + nadd; j++) {
				const struct store_ts_cert *o2 = j < nhave ? &have[j] : &add[j - nhave];

				KH_ENSURE(!o2->self_signed || strcasecmp(o2->cn, c->cn) != 0,
					  kh_err_set(e, KH_E_ALREADY_EXISTS,
						     "trust store '%s' already %s a self-signed certificate with CN '%s' "
						     "(SHA-256 %s); two with one name cannot both be trusted: remove it first "
						     "(keyhold truststore remove %s %s)",
						     q->store, j < nhave ? "holds" : "gets", c->cn, o2->fingerprint, q->store,
						     o2->fingerprint));
			}
		}
		KH_TRY(pki_x509_der(x, &c->der.data, &c->der.len));
		pki_cert_info(x, &o->added.certs[o->added.n++]);
		if (c->not_after < now && o->n_warnings < KH_PKI_WARN_MAX)
			snprintf(o->warnings[o->n_warnings++], KH_PKI_WARN_LEN, "'%.200s' has expired", c->subject);
		if (!pki_cert_is_ca(x) && o->n_warnings < KH_PKI_WARN_MAX)
			snprintf(o->warnings[o->n_warnings++], KH_PKI_WARN_LEN, "'%.200s' is not a CA certificate", c->subject);
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
	log_info("trust store '%s': %zu certificate(s) added, %u already present", q->store, nadd, o->already_present);
out:
	if (in_txn)
		store_rollback(s->pki->store);
	if (locked)
		ts_unlock(s);
	store_ts_certs_free(have, nhave);
	store_ts_certs_free(add, nadd);
	sk_X509_pop_free(all, X509_free);
	return r;
}

/* ---- List ---- */

static enum kh_err ts_describe(struct svc *s, const char *name, bool details, struct kh_truststore *t,
			       struct kh_errbuf *e)
{
	struct store_ts_cert *c = NULL;
	struct store_crl *cr = NULL;
	struct store_ts_policy pol;
	size_t nc = 0, ncr = 0, i;
	int r = KH_OK;

	kh_strlcpy(t->name, name, sizeof(t->name));
	KH_TRY(store_ts_policy_get(s->pki->store, name, &pol, e));
	kh_strlcpy(t->revocation, pol.revocation, sizeof(t->revocation));
	kh_strlcpy(t->ocsp_url, pol.ocsp_url, sizeof(t->ocsp_url));
	KH_TRY(store_ts_certs(s->pki->store, name, &c, &nc, e));
	KH_TRY(store_crl_list(s->pki->store, name, &cr, &ncr, e));
	t->n_certs = (uint32_t)nc;
	if (details) {
		t->certs.certs = calloc(nc ? nc : 1, sizeof(*t->certs.certs));
		KH_ENSURE(t->certs.certs != NULL, KH_E_RESOURCE_EXHAUSTED);
		for (i = 0; i < nc; i++) {
			KH_TRY(ts_cert_info(&c[i], &t->certs.certs[i], e));
			t->certs.n++;
		}
	}
	t->crls = calloc(ncr ? ncr : 1, sizeof(*t->crls));
	KH_ENSURE(t->crls != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < ncr; i++) {
		KH_TRY(ts_crl_info(&cr[i], &t->crls[i], e));
		t->n_crls++;
	}
out:
	store_ts_certs_free(c, nc);
	store_crls_free(cr, ncr);
	return r;
}

enum kh_err svc_h_truststore_list(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
				  union proto_resp_body *resp, struct kh_errbuf *e)
{
	const char *want = req->ts_name.store;
	char (*names)[KH_NAME_MAX + 1] = NULL;
	struct kh_truststore_list l = { NULL, 0 };
	size_t n = 0, i;
	int r = KH_OK;

	(void)who;
	ts_lock(s);
	if (want[0] != '\0') {
		KH_TRY(ts_require(s, want, e));
		l.stores = calloc(1, sizeof(*l.stores));
		KH_ENSURE(l.stores != NULL, KH_E_RESOURCE_EXHAUSTED);
		l.n = 1;
		KH_TRY(ts_describe(s, want, true, &l.stores[0], e));
	} else {
		KH_TRY(store_ts_names(s->pki->store, &names, &n, e));
		l.stores = calloc(n ? n : 1, sizeof(*l.stores));
		KH_ENSURE(l.stores != NULL, KH_E_RESOURCE_EXHAUSTED);
		for (i = 0; i < n; i++) {
			l.n++;
			KH_TRY(ts_describe(s, names[i], false, &l.stores[i], e));
		}
	}
	resp->stores = l;
	memset(&l, 0, sizeof(l));
out:
	ts_unlock(s);
	kh_truststore_list_clear(&l);
	free(names);
	return r;
}

/* ---- Remove ---- */

enum kh_err svc_h_truststore_remove(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
				    union proto_resp_body *resp, struct kh_errbuf *e)
{
	const struct kh_ts_remove_req *q = &req->ts_remove;
	struct store_ts_cert *c = NULL;
	size_t nc = 0, i;
	char fp[KH_FP_HEX + 1];
	bool in_txn = false, locked = false, found = false;
	int r = KH_OK;

	(void)who;
	KH_ENSURE(kh_fingerprint_normalize(q->fingerprint, fp),
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the fingerprint must be 64 hex digits (SHA-256), colons allowed"));
	ts_lock(s);
	locked = true;
	KH_TRY(ts_require(s, q->store, e));
	KH_TRY(store_ts_certs(s->pki->store, q->store, &c, &nc, e));
	for (i = 0; i < nc && !found; i++) {
		if (strcmp(c[i].fingerprint, fp) == 0) {
			KH_TRY(ts_cert_info(&c[i], &resp->ts_remove.removed, e));
			found = true;
		}
	}
	KH_ENSURE(found, kh_err_set(e, KH_E_NOT_FOUND, "trust store '%s' holds no certificate with SHA-256 fingerprint %s",
				    q->store, fp));
	KH_TRY(store_begin(s->pki->store, e));
	in_txn = true;
	KH_TRY(store_ts_cert_remove(s->pki->store, q->store, fp, e));
	if (nc == 1) {
		/* An empty set needs no name: the store and its CRLs go. */
		KH_TRY(store_ts_delete(s->pki->store, q->store, e));
		resp->ts_remove.store_deleted = true;
	}
	KH_TRY(store_commit(s->pki->store, e));
	in_txn = false;
	log_info("trust store '%s': removed %s%s", q->store, fp, resp->ts_remove.store_deleted ? " (store now empty, deleted)" : "");
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

enum kh_err svc_h_truststore_verify(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
				    union proto_resp_body *resp, struct kh_errbuf *e)
{
	const struct kh_ts_verify_req *q = &req->ts_verify;
	struct kh_ts_verify_resp *o = &resp->verify;
	STACK_OF(X509) *given = NULL, *untrusted = NULL, *more = NULL, *trusted = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	struct pki_verify_result vr;
	struct pki_verify_opts vo;
	struct store_ts_policy tsp;
	struct svc_rev_policy pol;
	struct kh_cert_check_resp rc;
	char owner[KH_NAME_MAX + 32], why[KH_REV_DETAIL_MAX + 128];
	X509 *leaf = NULL;
	size_t i;
	int r = KH_OK;

	(void)who;
	memset(&vr, 0, sizeof(vr));
	memset(&rc, 0, sizeof(rc));
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
		X509_CRL *c = NULL;
		struct kh_errbuf ce = { 0 };

		if (pki_crl_load(q->crls[i].data, q->crls[i].len, &c, &ce) != KH_OK) {
			r = kh_err_set(e, ce.code, "CRL file %zu: %s", i + 1, ce.msg);
			goto out;
		}
		if (sk_X509_CRL_push(crls, c) <= 0) {
			X509_CRL_free(c);
			r = KH_E_RESOURCE_EXHAUSTED;
			goto out;
		}
	}
	{
		STACK_OF(X509_CRL) *stored = NULL;

		KH_TRY(svc_pki_truststore_load(s, q->store, &trusted, &stored, e));
		while (sk_X509_CRL_num(stored) > 0) {
			X509_CRL *c = sk_X509_CRL_shift(stored);

			if (sk_X509_CRL_push(crls, c) <= 0) {
				X509_CRL_free(c);
				sk_X509_CRL_pop_free(stored, X509_CRL_free);
				r = KH_E_RESOURCE_EXHAUSTED;
				goto out;
			}
		}
		sk_X509_CRL_free(stored);
	}
	memset(&vo, 0, sizeof(vo));
	vo.trusted = trusted;
	vo.untrusted = untrusted;
	vo.crls = crls;
	vo.at = q->at;
	vo.host = q->host;
	vo.ip = q->ip;
	vo.purpose = q->purpose;
	/* Whatever the store holds is trusted, root or intermediate. */
	vo.partial_chain = true;
	KH_TRY(pki_verify(leaf, &vo, &vr, e));
	o->valid = vr.valid;
	o->error = vr.error;
	o->error_depth = vr.depth;
	kh_strlcpy(o->reason, vr.reason, sizeof(o->reason));
	o->chain.certs = calloc((size_t)sk_X509_num(vr.chain) + 1, sizeof(*o->chain.certs));
	KH_ENSURE(o->chain.certs != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < (size_t)sk_X509_num(vr.chain); i++)
		pki_cert_info(sk_X509_value(vr.chain, (int)i), &o->chain.certs[o->chain.n++]);
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
	if (o->valid && pol.n > 0) {
		KH_TRY(svc_rev_check(s, vr.chain, &pol, crls, &rc, e));
		o->revocation_status = rc.status;
		o->revocation_soft_fail = rc.soft_fail;
		kh_strlcpy(o->revocation_detail, rc.detail, sizeof(o->revocation_detail));
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
			kh_strlcpy(o->reason, why, sizeof(o->reason));
		} else if (rc.status == KH_REV_UNKNOWN && !rc.soft_fail) {
			o->valid = false;
			o->error = X509_V_ERR_UNABLE_TO_GET_CRL;
			snprintf(why, sizeof(why), "revocation status unknown, policy '%s' fails hard: %s", pol.text,
				 rc.detail);
			kh_strlcpy(o->reason, why, sizeof(o->reason));
		}
	}
	log_info("trust store '%s': verify: %s", q->store, o->reason);
out:
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

static void ts_name_key(const X509_NAME *n, char out[KH_FP_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	out[0] = '\0';
	if (X509_NAME_digest(n, EVP_sha256(), md, &len) == 1)
		kh_hex(md, len, out, KH_FP_HEX + 1);
}

enum kh_err svc_h_import_crl(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
			     union proto_resp_body *resp, struct kh_errbuf *e)
{
	const struct kh_crl_import_req *q = &req->crl_import;
	struct store_ts_cert *c = NULL;
	struct store_crl *have = NULL, sc;
	size_t nc = 0, nhave = 0, i;
	X509_CRL *crl = NULL;
	bool locked = false, issuer_found = false, verified = false;
	char issuer[256];
	int r = KH_OK;

	(void)who;
	memset(&sc, 0, sizeof(sc));
	KH_TRY(pki_crl_load(q->crl.data, q->crl.len, &crl, e));
	pki_crl_info(crl, &resp->crl);
	pki_name_text(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
	ts_lock(s);
	locked = true;
	KH_TRY(ts_require(s, q->store, e));
	KH_TRY(store_ts_certs(s->pki->store, q->store, &c, &nc, e));
	/* The CRL must be signed by a CA of the store (RFC 5280 §6.3.3 (f)). */
	for (i = 0; i < nc && !verified; i++) {
		X509 *x = pki_x509_from_der(c[i].der.data, c[i].der.len);

		if (x != NULL && X509_NAME_cmp(X509_get_subject_name(x), X509_CRL_get_issuer(crl)) == 0) {
			issuer_found = true;
			verified = X509_CRL_verify(crl, X509_get0_pubkey(x)) == 1;
		}
		X509_free(x);
	}
	ERR_clear_error();
	KH_ENSURE(issuer_found, kh_err_set(e, KH_E_FAILED_PRECONDITION,
					   "the CRL's issuer '%s' is not in trust store '%s'; add that CA first", issuer, q->store));
	KH_ENSURE(verified, kh_err_set(e, KH_E_FAILED_PRECONDITION,
				       "the CRL's signature does not verify with the certificate of '%s' in trust store '%s'",
				       issuer, q->store));
	ts_name_key(X509_CRL_get_issuer(crl), sc.issuer_key);
	KH_TRY(store_crl_list(s->pki->store, q->store, &have, &nhave, e));
	for (i = 0; i < nhave; i++) {
		char when[40];

		if (strcmp(have[i].issuer_key, sc.issuer_key) != 0 || have[i].this_update <= resp->crl.this_update)
			continue;
		kh_time_format_rfc3339(have[i].this_update, when, sizeof(when));
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
			       "trust store '%s' already holds a newer CRL from '%s' (issued %s); an older one is refused",
			       q->store, issuer, when);
		goto out;
	}
	kh_strlcpy(sc.issuer, resp->crl.issuer, sizeof(sc.issuer));
	kh_strlcpy(sc.fingerprint, resp->crl.fingerprint, sizeof(sc.fingerprint));
	sc.this_update = resp->crl.this_update;
	sc.next_update = resp->crl.next_update;
	kh_strlcpy(sc.source, "import", sizeof(sc.source));
	sc.imported = (int64_t)time(NULL);
	{
		int len = i2d_X509_CRL(crl, NULL);
		unsigned char *p;

		KH_ENSURE(len > 0, KH_E_INTERNAL);
		sc.der.data = malloc((size_t)len);
		KH_ENSURE(sc.der.data != NULL, KH_E_RESOURCE_EXHAUSTED);
		p = sc.der.data;
		KH_ENSURE(i2d_X509_CRL(crl, &p) == len, KH_E_INTERNAL);
		sc.der.len = (size_t)len;
	}
	/* One statement: its own transaction. */
	KH_TRY(store_crl_put(s->pki->store, q->store, &sc, e));
	log_info("trust store '%s': CRL from '%s' stored (%u revoked)", q->store, issuer, resp->crl.revoked);
out:
	if (locked)
		ts_unlock(s);
	kh_bytes_clear(&sc.der);
	store_ts_certs_free(c, nc);
	store_crls_free(have, nhave);
	X509_CRL_free(crl);
	return r;
}
