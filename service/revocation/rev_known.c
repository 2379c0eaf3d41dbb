/* rev_known.c: the revocation status keyhold already knows, without
 * fetching anything, for the metrics endpoint (metrics/): every
 * certificate it holds (trust store CAs, trustpoint certificates, chains
 * and CAs) is looked up in the CRLs imported into the trust stores
 * (`keyhold crl import`). A CRL answers for a certificate only when an
 * issuer of that certificate is in the same store and the CRL is usable
 * for it (pki_crl_usable: issued and signed by that issuer, full, current
 * at now). Certificates no held CRL answers for are left out: keyhold does
 * not know. Fetched CRLs and OCSP answers are not consulted here; they
 * answer `keyhold cert check`. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kh_util.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "revocation/revocation.h"
#include "store/store.h"

/* One trust store's CAs and CRLs, parsed. */
struct rk_store {
	char name[KH_NAME_MAX + 1];
	STACK_OF(X509) *cas;
	STACK_OF(X509_CRL) *crls;
};

struct rk_out {
	struct svc_rev_known *v;
	size_t n, cap;
};

static void rk_store_clear(struct rk_store *st)
{
	sk_X509_pop_free(st->cas, X509_free);
	sk_X509_CRL_pop_free(st->crls, X509_CRL_free);
	memset(st, 0, sizeof(*st));
}

static enum kh_err rk_store_load(struct store *db, const char *name, struct rk_store *out, struct kh_errbuf *e)
{
	struct store_ts_cert *tc = NULL;
	struct store_crl *cr = NULL;
	size_t ntc = 0, ncr = 0, i;
	int r = KH_OK;

	memset(out, 0, sizeof(*out));
	kh_strlcpy(out->name, name, sizeof(out->name));
	out->cas = sk_X509_new_null();
	out->crls = sk_X509_CRL_new_null();
	KH_ENSURE(out->cas != NULL && out->crls != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(store_ts_certs(db, name, &tc, &ntc, e));
	KH_TRY(store_crl_list(db, name, &cr, &ncr, e));
	for (i = 0; i < ntc; i++) {
		X509 *x = pki_x509_from_der(tc[i].der.data, tc[i].der.len);

		if (x != NULL && sk_X509_push(out->cas, x) <= 0)
			X509_free(x);
	}
	for (i = 0; i < ncr; i++) {
		X509_CRL *c = NULL;
		struct kh_errbuf ce = { 0 };

		if (pki_crl_load(cr[i].der.data, cr[i].der.len, &c, &ce) == KH_OK && sk_X509_CRL_push(out->crls, c) <= 0)
			X509_CRL_free(c);
	}
out:
	store_ts_certs_free(tc, ntc);
	store_crls_free(cr, ncr);
	ERR_clear_error();
	return r;
}

/* Looks x (held as held_by) up in every store's CRLs; appends what one
 * answers. */
static enum kh_err rk_check(const struct rk_store *stores, size_t nst, X509 *x, const char *held_by, int64_t now,
			    struct rk_out *o)
{
	size_t s;
	int i, k;

	/* A self-signed certificate is a trust anchor: no CRL revokes it. */
	if (X509_check_issued(x, x) == X509_V_OK)
		return KH_OK;
	for (s = 0; s < nst; s++)
		for (i = 0; i < sk_X509_num(stores[s].cas); i++) {
			X509 *iss = sk_X509_value(stores[s].cas, i);

			if (X509_check_issued(iss, x) != X509_V_OK)
				continue;
			for (k = 0; k < sk_X509_CRL_num(stores[s].crls); k++) {
				X509_CRL *crl = sk_X509_CRL_value(stores[s].crls, k);
				struct kh_errbuf ue = { 0 };
				struct pki_rev_answer a;
				struct svc_rev_known *v;

				if (pki_crl_usable(crl, x, iss, now, &ue) != KH_OK)
					continue;
				pki_crl_status(crl, x, &a);
				if (o->n == o->cap) {
					size_t cap = o->cap ? 2 * o->cap : 16;
					struct svc_rev_known *nv;

					if (cap > KH_EXPIRING_MAX * KH_HELD_BY_MAX)
						return KH_OK;
					nv = realloc(o->v, cap * sizeof(*nv));
					if (nv == NULL)
						return KH_E_RESOURCE_EXHAUSTED;
					o->v = nv;
					o->cap = cap;
				}
				v = &o->v[o->n++];
				memset(v, 0, sizeof(*v));
				pki_fingerprint(x, v->fingerprint);
				kh_strlcpy(v->held_by, held_by, sizeof(v->held_by));
				kh_strlcpy(v->crl_store, stores[s].name, sizeof(v->crl_store));
				v->revoked = a.status == PKI_REV_REVOKED;
				ERR_clear_error();
				return KH_OK;
			}
		}
	ERR_clear_error();
	return KH_OK;
}

static enum kh_err rk_check_der(const struct rk_store *stores, size_t nst, const struct kh_bytes *der,
				const char *kind, const char *owner, int64_t now, struct rk_out *o)
{
	/* Room for the longest kind and name; cut to KH_HELD_BY_LEN when
	 * stored, as expiry.c cuts its own. */
	char held_by[KH_HELD_BY_LEN + 32];
	X509 *x = pki_x509_from_der(der->data, der->len);
	int r;

	if (x == NULL)
		return KH_OK;
	snprintf(held_by, sizeof(held_by), "%s:%s", kind, owner);
	r = rk_check(stores, nst, x, held_by, now, o);
	X509_free(x);
	return r;
}

static enum kh_err rk_locked(struct svc *s, int64_t now, struct rk_out *o, struct kh_errbuf *e)
{
	char (*tps)[KH_NAME_MAX + 1] = NULL, (*names)[KH_NAME_MAX + 1] = NULL;
	struct rk_store *st = NULL;
	size_t ntp = 0, nst = 0, i, k;
	bool any_crl = false;
	int r = KH_OK, j;

	KH_TRY(store_ts_names(s->pki->store, &names, &nst, e));
	st = calloc(nst ? nst : 1, sizeof(*st));
	KH_ENSURE(st != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < nst; i++) {
		KH_TRY(rk_store_load(s->pki->store, names[i], &st[i], e));
		any_crl = any_crl || sk_X509_CRL_num(st[i].crls) > 0;
	}
	if (!any_crl)
		goto out;
	for (i = 0; i < nst; i++)
		for (j = 0; j < sk_X509_num(st[i].cas); j++) {
			char held_by[KH_HELD_BY_LEN + 32];

			snprintf(held_by, sizeof(held_by), "truststore:%s", st[i].name);
			KH_TRY(rk_check(st, nst, sk_X509_value(st[i].cas, j), held_by, now, o));
		}
	KH_TRY(store_tp_names(s->pki->store, &tps, &ntp, e));
	for (i = 0; i < ntp; i++) {
		struct store_tp t;

		memset(&t, 0, sizeof(t));
		KH_TRY(store_tp_get(s->pki->store, tps[i], &t, e));
		if (t.cert.len > 0)
			r = rk_check_der(st, nst, &t.cert, "trustpoint", t.name, now, o);
		for (k = 0; r == KH_OK && k < t.n_chain; k++)
			r = rk_check_der(st, nst, &t.chain[k], "trustpoint-chain", t.name, now, o);
		for (k = 0; r == KH_OK && k < t.n_ca; k++)
			r = rk_check_der(st, nst, &t.ca[k], "trustpoint-ca", t.name, now, o);
		store_tp_clear(&t);
		if (r != KH_OK)
			goto out;
	}
out:
	for (i = 0; st != NULL && i < nst; i++)
		rk_store_clear(&st[i]);
	free(st);
	free(names);
	free(tps);
	return r;
}

enum kh_err svc_revocation_known(struct svc *s, int64_t now, struct svc_rev_known **out, size_t *nout,
				 struct kh_errbuf *e)
{
	struct rk_out o = { NULL, 0, 0 };
	int r;

	pthread_mutex_lock(&s->pki->lock);
	r = rk_locked(s, now, &o, e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK) {
		free(o.v);
		return r == KH_E_RESOURCE_EXHAUSTED && e != NULL && e->code == KH_OK
			       ? kh_err_set(e, r, "out of memory surveying revocation")
			       : r;
	}
	*out = o.v;
	*nout = o.n;
	return KH_OK;
}
