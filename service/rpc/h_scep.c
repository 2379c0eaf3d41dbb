/* h_scep.c: SCEP (RFC 8894) for enrollment url trustpoints: GetCACert for
 * AuthenticateTrustpoint, PKCSReq for EnrollTrustpoint. The messages are
 * pki/pki_scep.c's, HTTP is the revocation client's (timeouts, size caps,
 * http:// only); the issued certificate goes through ImportCertificate's
 * own path (svc_tp_import): chain check, rollover and expiry monitoring. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kh_log.h"
#include "kh_util.h"
#include "config/config.h"
#include "core/svc_clock.h"
#include "pki/pki.h"
#include "pki/pki_scep.h"
#include "pki/pki_state.h"
#include "revocation/revocation.h"
#include "rpc/rpc.h"

static void scep_lock(struct svc *s)
{
	pthread_mutex_lock(&s->pki->lock);
}

static void scep_unlock(struct svc *s)
{
	pthread_mutex_unlock(&s->pki->lock);
}

/* url?operation=op[&message=msg] (msg percent-encoded). */
static enum kh_err scep_url(const char *base, const char *op, const char *msg, char **out)
{
	size_t n = strlen(base) + strlen(op) + 32 + (msg != NULL ? 3 * strlen(msg) : 0), o;
	char *u = malloc(n);
	const char *p;

	if (u == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	o = (size_t)snprintf(u, n, "%s%soperation=%s%s", base, strchr(base, '?') ? "&" : "?", op, msg ? "&message=" : "");
	for (p = msg; p != NULL && *p != '\0'; p++) {
		if (*p == '+' || *p == '/' || *p == '=')
			o += (size_t)snprintf(u + o, n - o, "%%%02X", (unsigned char)*p);
		else
			u[o++] = *p;
	}
	u[o] = '\0';
	*out = u;
	return KH_OK;
}

static enum kh_err scep_get(struct svc *s, const char *base, const char *op, size_t max, struct kh_bytes *out,
			    struct kh_errbuf *e)
{
	char *u = NULL;
	int r = scep_url(base, op, NULL, &u);

	if (r == KH_OK)
		r = svc_http_fetch(s->cfg, u, NULL, NULL, 0, max, out, e);
	free(u);
	return r;
}

enum kh_err svc_scep_get_ca(struct svc *s, const char *name, struct kh_bytes *ca, struct kh_bytes *ra,
			    struct kh_errbuf *e)
{
	struct store_scep sc;
	struct store_tp t;
	struct kh_bytes body = { NULL, 0 };
	X509 *xca = NULL, *xra = NULL;
	int r = KH_OK;

	memset(&sc, 0, sizeof(sc));
	memset(&t, 0, sizeof(t));
	scep_lock(s);
	r = store_tp_get(s->pki->store, name, &t, e);
	if (r == KH_OK && t.enrollment != KH_ENROLL_URL)
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
			       "trustpoint '%s' is not an enrollment url trustpoint; give the CA certificate with --ca FILE",
			       name);
	if (r == KH_OK)
		r = store_scep_get(s->pki->store, name, &sc, e);
	scep_unlock(s);
	KH_TRY(r);
	KH_TRY(scep_get(s, sc.url, "GetCACert", PKI_SCEP_MAX, &body, e));
	KH_TRY(pki_scep_cacert_parse(body.data, body.len, &xca, &xra, e));
	KH_TRY(pki_x509_der(xca, &ca->data, &ca->len));
	if (xra != NULL)
		KH_TRY(pki_x509_der(xra, &ra->data, &ra->len));
	log_info("trustpoint '%s': GetCACert from %s: CA%s", name, sc.url, xra != NULL ? " and RA" : "");
out:
	X509_free(xca);
	X509_free(xra);
	kh_bytes_clear(&body);
	store_scep_clear(&sc);
	store_tp_clear(&t);
	return r;
}

enum kh_err svc_scep_set_ra(struct svc *s, const char *name, const struct kh_bytes *ra, struct kh_errbuf *e)
{
	struct store_scep sc;
	int r = KH_OK;

	KH_TRY(store_scep_get(s->pki->store, name, &sc, e));
	kh_bytes_clear(&sc.ra);
	if (ra->len > 0) {
		sc.ra.data = malloc(ra->len);
		KH_ENSURE(sc.ra.data != NULL, KH_E_RESOURCE_EXHAUSTED);
		memcpy(sc.ra.data, ra->data, ra->len);
		sc.ra.len = ra->len;
	}
	KH_TRY(store_scep_put(s->pki->store, name, &sc, e));
out:
	store_scep_clear(&sc);
	return r;
}

/* Records the outcome; the challenge is dropped once a certificate came. */
static void scep_status(struct svc *s, const char *name, const char *status, bool issued)
{
	struct store_scep sc;
	struct kh_errbuf e2 = { 0 };

	scep_lock(s);
	if (store_scep_get(s->pki->store, name, &sc, &e2) == KH_OK) {
		kh_strlcpy(sc.status, status, sizeof(sc.status));
		if (issued)
			OPENSSL_cleanse(sc.challenge, sizeof(sc.challenge));
		if (store_scep_put(s->pki->store, name, &sc, &e2) != KH_OK)
			log_warn("trustpoint '%s': SCEP status not stored: %s", name, e2.msg);
	}
	scep_unlock(s);
	store_scep_clear(&sc);
}

struct scep_dec {
	struct hsm *h;
	const char *key;
};

static enum kh_err scep_decrypt(void *arg, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
				struct kh_errbuf *e)
{
	const struct scep_dec *d = arg;

	return hsm_decrypt_rsa_pkcs(d->h, d->key, in, in_len, out, out_len, e);
}

enum kh_err svc_scep_enroll(struct rpc_call *c, const char *name, struct kh_errbuf *e)
{
	struct svc *s = c->s;
	struct store_tp t;
	struct store_scep sc;
	struct pki_signer sg;
	struct pki_subject sub = { NULL, NULL, NULL };
	struct pki_scep_caps caps;
	struct pki_scep_req rq;
	struct pki_scep_rep rep;
	struct kh_bytes capsb = { NULL, 0 }, csr = { NULL, 0 }, ans = { NULL, 0 };
	struct scep_dec dec;
	const EVP_MD *md = NULL;
	const EVP_CIPHER *cipher = NULL;
	X509 *ca = NULL, *ra = NULL, *self = NULL;
	X509_REQ *req = NULL;
	uint8_t nonce[PKI_SCEP_NONCE], *certs = NULL;
	size_t certs_len = 0;
	char *u = NULL, *b64 = NULL, st[KH_ERR_MSG_MAX];
	Keyhold__V1__EnrollTrustpointResponse *m;
	const Keyhold__V1__ImportCertificateResponse *im;
	int r = KH_OK, rc;

	memset(&t, 0, sizeof(t));
	memset(&sc, 0, sizeof(sc));
	memset(&sg, 0, sizeof(sg));
	memset(&rq, 0, sizeof(rq));
	memset(&rep, 0, sizeof(rep));
	scep_lock(s);
	r = store_tp_get(s->pki->store, name, &t, e);
	if (r == KH_OK)
		r = store_scep_get(s->pki->store, name, &sc, e);
	scep_unlock(s);
	KH_TRY(r);
	KH_ENSURE(t.n_ca > 0, kh_err_set(e, KH_E_FAILED_PRECONDITION,
					 "trustpoint '%s' has no authenticated CA; run `keyhold trustpoint authenticate %s` "
					 "first (it fetches the CA from %s)",
					 name, name, sc.url));
	ca = pki_x509_from_der(t.ca[0].data, t.ca[0].len);
	KH_ENSURE(ca != NULL, kh_err_set(e, KH_E_DATA_LOSS, "the stored CA certificate does not parse"));
	if (sc.ra.len > 0) {
		ra = pki_x509_from_der(sc.ra.data, sc.ra.len);
		KH_ENSURE(ra != NULL, kh_err_set(e, KH_E_DATA_LOSS, "the stored RA certificate does not parse"));
	}
	/* The CSR and the transient self-signed certificate, both signed in the token. */
	KH_TRY(svc_pki_signer(s, t.key, t.digest, &sg, e));
	KH_ENSURE(sg.type == KH_KEY_RSA2048 || sg.type == KH_KEY_RSA3072 || sg.type == KH_KEY_RSA4096,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "SCEP needs an RSA key; '%s' is %s", t.key,
			     kh_key_type_name(sg.type)));
	KH_TRY(pki_subject_parse(t.subject, t.san, t.fqdn, t.eku, &sub, e));
	KH_TRY(pki_csr_build(&sg, &sub, sc.challenge[0] ? sc.challenge : NULL, &req, e));
	KH_TRY(pki_csr_der(req, &csr, e));
	KH_TRY(pki_selfsigned_build_at(&sg, &sub, 1, svc_now() - 300, &self, e));
	/* GetCACaps decides digest, cipher and POST (RFC 8894 §3.5.2). */
	KH_TRY(scep_get(s, sc.url, "GetCACaps", PKI_SCEP_CAPS_MAX, &capsb, e));
	pki_scep_caps_parse(capsb.data, capsb.len, &caps);
	KH_TRY(pki_scep_choose(&caps, s->cfg->fips_mode != SVC_FIPS_OFF, &md, &cipher, e));
	KH_TRY(hsm_random(s->hsm, nonce, sizeof(nonce), e));
	KH_TRY(pki_scep_pkcsreq(&sg, self, csr.data, csr.len, ra != NULL ? ra : ca, md, cipher, nonce, &rq, e));
	log_info("trustpoint '%s': SCEP PKCSReq to %s (transaction %s, %s, %s, %s)", name, sc.url, rq.txid,
		 EVP_MD_get0_name(md), EVP_CIPHER_get0_name(cipher), caps.post ? "POST" : "GET");
	if (caps.post) {
		KH_TRY(scep_url(sc.url, "PKIOperation", NULL, &u));
		KH_TRY(svc_http_fetch(s->cfg, u, "application/x-pki-message", rq.der, rq.len, PKI_SCEP_MAX, &ans, e));
	} else {
		b64 = malloc(4 * ((rq.len + 2) / 3) + 1);
		KH_ENSURE(b64 != NULL, KH_E_RESOURCE_EXHAUSTED);
		rc = EVP_EncodeBlock((unsigned char *)b64, rq.der, (int)rq.len);
		KH_ENSURE(rc > 0, KH_E_INTERNAL);
		KH_TRY(scep_url(sc.url, "PKIOperation", b64, &u));
		KH_TRY(svc_http_fetch(s->cfg, u, NULL, NULL, 0, PKI_SCEP_MAX, &ans, e));
	}
	svc_pki_crash_point(s, "scep.after_request");
	KH_TRY(pki_scep_certrep(ans.data, ans.len, ra != NULL ? ra : ca, &rq, &rep, e));
	if (rep.status == PKI_SCEP_FAILURE) {
		snprintf(st, sizeof(st), "failed: %s", pki_scep_fail_name(rep.fail_info));
		scep_status(s, name, st, false);
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
			       "the SCEP server refused the request of trustpoint '%s': %s (transaction %s)", name,
			       pki_scep_fail_name(rep.fail_info), rq.txid);
		goto out;
	}
	if (rep.status == PKI_SCEP_PENDING) {
		scep_status(s, name, "pending", false);
		r = kh_err_set(e, KH_E_UNAVAILABLE,
			       "the SCEP server holds the request of trustpoint '%s' for approval (PENDING, transaction "
			       "%s); run `keyhold trustpoint enroll %s` again later to poll",
			       name, rq.txid, name);
		goto out;
	}
	dec.h = s->hsm;
	dec.key = t.key;
	/* DES-CBC answers only outside FIPS mode (the answer is public; its
	 * signature was checked above). */
	KH_TRY(pki_scep_open(rep.env, rep.env_len, self, s->cfg->fips_mode == SVC_FIPS_OFF, scep_decrypt, &dec, &certs,
			     &certs_len, e));
	KH_TRY(svc_tp_import(c, name, certs, certs_len, e));
	scep_status(s, name, "issued", true);
	im = (const void *)c->resp;
	m = rpc_msg(c, &keyhold__v1__enroll_trustpoint_response__descriptor);
	KH_ENSURE(m != NULL && im != NULL, KH_E_RESOURCE_EXHAUSTED);
	m->enrollment = KEYHOLD__V1__ENROLLMENT__ENROLLMENT_URL;
	m->key = rpc_strdup(c, im->key);
	m->cert = im->cert;
	m->retired_key = rpc_strdup(c, im->retired_key);
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
	log_info("trustpoint '%s': SCEP enrollment done (transaction %s)", name, rq.txid);
out:
	free(certs);
	free(u);
	free(b64);
	pki_scep_rep_clear(&rep);
	pki_scep_req_clear(&rq);
	kh_bytes_clear(&ans);
	kh_bytes_clear(&capsb);
	kh_bytes_clear(&csr);
	X509_REQ_free(req);
	X509_free(self);
	X509_free(ca);
	X509_free(ra);
	pki_subject_clear(&sub);
	svc_pki_signer_clear(&sg);
	store_scep_clear(&sc);
	store_tp_clear(&t);
	return r;
}
