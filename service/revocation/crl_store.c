/* crl_store.c: a trust store's revocation material. Its trusted OCSP
 * responder certificate, and putting a CRL into it, the one path for
 * `keyhold crl import` (ImportCrl) and for the revocation scheduler's fetch
 * of a store's CRL URL (rev_sched.c): the CRL must be signed by a CA of the
 * store (RFC 5280 §6.3.3 (f)), a store keeps one full and one delta CRL per
 * issuer, and an older CRL never replaces a newer one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "kh_log.h"
#include "kh_util.h"
#include "core/svc_clock.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "revocation/revocation.h"

/* The key a store files a CRL under: SHA-256 of the issuer name's DER, and
 * for a delta CRL (RFC 5280 §5.2.4) of that DER followed by "delta", so that
 * a store keeps one full CRL and one delta CRL per issuer. */
static void crl_name_key(const X509_NAME *n, bool delta, char out[KH_FP_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	const unsigned char *der = NULL;
	unsigned int len = 0;
	size_t dlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	out[0] = '\0';
	if (c != NULL && X509_NAME_get0_der(n, &der, &dlen) == 1 && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, der, dlen) == 1 && (!delta || EVP_DigestUpdate(c, "delta", 5) == 1) &&
	    EVP_DigestFinal_ex(c, md, &len) == 1)
		kh_hex(md, len, out, KH_FP_HEX + 1);
	EVP_MD_CTX_free(c);
}

enum kh_err svc_rev_store_responder(struct svc *s, const char *store, X509 **out, struct kh_errbuf *e)
{
	struct kh_bytes der = { NULL, 0 };
	int r;

	*out = NULL;
	pthread_mutex_lock(&s->pki->lock);
	r = store_ts_ocsp_signer_get(s->pki->store, store, &der, e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r == KH_OK && der.len > 0 && (*out = pki_x509_from_der(der.data, der.len)) == NULL)
		r = kh_err_set(e, KH_E_DATA_LOSS, "trust store '%s': its OCSP responder certificate does not parse", store);
	kh_bytes_clear(&der);
	return r;
}

enum kh_err svc_rev_crl_install(struct svc *s, const char *store, X509_CRL *crl, const char *source, char *warn,
				size_t warnsz, struct kh_errbuf *e)
{
	struct kh_crl_info info;
	struct store_ts_cert *c = NULL;
	struct store_crl *have = NULL, sc;
	size_t nc = 0, nhave = 0, i;
	bool issuer_found = false, verified = false, exists = false, delta;
	char issuer[256];
	int len, r = KH_OK;
	unsigned char *p;

	memset(&sc, 0, sizeof(sc));
	warn[0] = '\0';
	pki_crl_info(crl, &info);
	pki_name_text(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
	pthread_mutex_lock(&s->pki->lock);
	KH_TRY(store_ts_exists(s->pki->store, store, &exists, e));
	KH_ENSURE(exists, kh_err_set(e, KH_E_NOT_FOUND, "no trust store named '%s'", store));
	KH_TRY(store_ts_certs(s->pki->store, store, &c, &nc, e));
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
					   "the CRL's issuer '%s' is not in trust store '%s'; add that CA first", issuer, store));
	KH_ENSURE(verified, kh_err_set(e, KH_E_FAILED_PRECONDITION,
				       "the CRL's signature does not verify with the certificate of '%s' in trust store '%s'",
				       issuer, store));
	delta = X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0;
	crl_name_key(X509_CRL_get_issuer(crl), delta, sc.issuer_key);
	KH_TRY(store_crl_list(s->pki->store, store, &have, &nhave, e));
	for (i = 0; i < nhave; i++) {
		char when[40];

		if (strcmp(have[i].issuer_key, sc.issuer_key) != 0 || have[i].this_update <= info.this_update)
			continue;
		kh_time_format_rfc3339(have[i].this_update, when, sizeof(when));
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
			       "trust store '%s' already holds a newer %sCRL from '%s' (issued %s); an older one is refused",
			       store, delta ? "delta " : "", issuer, when);
		goto out;
	}
	kh_strlcpy(sc.issuer, info.issuer, sizeof(sc.issuer));
	kh_strlcpy(sc.fingerprint, info.fingerprint, sizeof(sc.fingerprint));
	sc.this_update = info.this_update;
	sc.next_update = info.next_update;
	kh_strlcpy(sc.source, source, sizeof(sc.source));
	sc.imported = svc_now();
	/* RFC 5280 §5.1.2.5: past nextUpdate the issuer has a newer CRL; the
	 * old one is kept (better than none) but verify will call it expired. */
	if (info.next_update != 0 && info.next_update < sc.imported) {
		char when[40];

		kh_time_format_rfc3339(info.next_update, when, sizeof(when));
		snprintf(warn, warnsz,
			 "the CRL from '%s' is past its nextUpdate (%s): verify refuses it as expired until a newer "
			 "one is imported",
			 issuer, when);
		log_warn("trust store '%s': %s", store, warn);
	}
	len = i2d_X509_CRL(crl, NULL);
	KH_ENSURE(len > 0, KH_E_INTERNAL);
	sc.der.data = malloc((size_t)len);
	KH_ENSURE(sc.der.data != NULL, KH_E_RESOURCE_EXHAUSTED);
	p = sc.der.data;
	KH_ENSURE(i2d_X509_CRL(crl, &p) == len, KH_E_INTERNAL);
	sc.der.len = (size_t)len;
	/* One statement: its own transaction. */
	KH_TRY(store_crl_put(s->pki->store, store, &sc, e));
	log_info("trust store '%s': CRL from '%s' stored (%u revoked, %s)", store, issuer, info.revoked, source);
out:
	pthread_mutex_unlock(&s->pki->lock);
	kh_bytes_clear(&sc.der);
	store_ts_certs_free(c, nc);
	store_crls_free(have, nhave);
	return r;
}
