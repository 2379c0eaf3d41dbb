/* h_scep.c: SCEP (RFC 8894) for enrollment url trustpoints: GetCACert for
 * AuthenticateTrustpoint; for EnrollTrustpoint, the background poller and
 * renewal (scep_poll.c) one exchange: PKCSReq, RenewalReq once a
 * certificate exists (signed with it), CertPoll while the CA holds a
 * request (PENDING; the request's state in the database, so a restart
 * resumes it). The messages are pki/pki_scep.c's, HTTP is the revocation
 * client's (timeouts, size caps, http:// only); the issued certificate
 * goes through ImportCertificate's own path (svc_tp_import): chain check,
 * rollover and expiry monitoring. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kh_log.h"
#include "kh_text.h"
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

/* One SCEP exchange at a time: an RPC and the poller never interleave
 * their requests and pending rows. Held across the network; every fetch
 * has the [revocation] timeouts. */
static pthread_mutex_t scep_mu = PTHREAD_MUTEX_INITIALIZER;

/* What is sent: the signer (certificate and key), the content, the type. */
struct scep_out {
	enum pki_scep_msg type;
	char txid[PKI_SCEP_TXID + 1];
	char req_key[KH_NAME_MAX + 1];     /* the key the certificate is for */
	char signer_key[KH_NAME_MAX + 1];
	X509 *signer;
	struct kh_bytes content;           /* CSR or IssuerAndSubject */
	struct kh_bytes subject;           /* the request's subject (DER) */
};

static void scep_out_clear(struct scep_out *o)
{
	X509_free(o->signer);
	kh_bytes_clear(&o->content);
	kh_bytes_clear(&o->subject);
	memset(o, 0, sizeof(*o));
}

static enum kh_err scep_name_der(X509_REQ *req, struct kh_bytes *out, struct kh_errbuf *e)
{
	uint8_t *d = NULL;
	int n = i2d_X509_NAME(X509_REQ_get_subject_name(req), &d);

	if (n <= 0)
		return kh_err_set(e, KH_E_INTERNAL, "SCEP: encoding the subject");
	out->data = malloc((size_t)n);
	if (out->data == NULL) {
		OPENSSL_free(d);
		return KH_E_RESOURCE_EXHAUSTED;
	}
	memcpy(out->data, d, (size_t)n);
	out->len = (size_t)n;
	OPENSSL_free(d);
	return KH_OK;
}

/* The request for t: CertPoll of pd when one is pending, RenewalReq when
 * t has a certificate (signed with it and its key; the CSR the one
 * `regenerate` staged for the new key, else a new one for the current
 * key; no challenge, RFC 8894 §2.3), else a PKCSReq (the CSR with the
 * challenge, signed through a transient self-signed certificate). */
static enum kh_err scep_prepare(struct svc *s, const struct store_tp *t, const struct store_scep *sc,
				const struct store_scep_pending *pd, X509 *ca, const struct pki_scep_caps *caps,
				struct scep_out *o, struct kh_errbuf *e)
{
	struct pki_signer sg;
	struct pki_subject sub = { NULL, NULL, NULL };
	X509_REQ *req = NULL;
	const unsigned char *p;
	uint8_t *ias = NULL;
	size_t ias_len = 0;
	bool rollover;
	int r = KH_OK;

	memset(&sg, 0, sizeof(sg));
	if (pd != NULL) {
		p = pd->signer.data;
		o->signer = d2i_X509(NULL, &p, (long)pd->signer.len);
		KH_ENSURE(o->signer != NULL, kh_err_set(e, KH_E_DATA_LOSS, "the pending request's certificate does not parse"));
		o->type = PKI_SCEP_CERTPOLL;
		kh_strlcpy(o->txid, pd->txid, sizeof(o->txid));
		kh_strlcpy(o->req_key, pd->req_key, sizeof(o->req_key));
		kh_strlcpy(o->signer_key, pd->signer_key, sizeof(o->signer_key));
		KH_TRY(pki_scep_issuer_and_subject(ca, pd->subject.data, pd->subject.len, &ias, &ias_len, e));
		o->content.data = ias;
		o->content.len = ias_len;
		ias = NULL;
		goto out;
	}
	KH_TRY(pki_subject_parse(t->subject, t->san, t->fqdn, t->eku, &sub, e));
	if (t->cert.len > 0) {
		KH_ENSURE(caps->renewal,
			  kh_err_set(e, KH_E_FAILED_PRECONDITION,
				     "trustpoint '%s' has a certificate and the SCEP server at %s does not offer Renewal "
				     "(GetCACaps): keyhold renews only by RenewalReq",
				     t->name, sc->url));
		o->type = PKI_SCEP_RENEWALREQ;
		o->signer = pki_x509_from_der(t->cert.data, t->cert.len);
		KH_ENSURE(o->signer != NULL, kh_err_set(e, KH_E_DATA_LOSS, "the stored certificate does not parse"));
		kh_strlcpy(o->signer_key, t->key, sizeof(o->signer_key));
		rollover = t->next_key[0] != '\0';
		kh_strlcpy(o->req_key, rollover ? t->next_key : t->key, sizeof(o->req_key));
		if (rollover && t->csr.len > 0 && strcmp(t->csr_key, t->next_key) == 0) {
			p = t->csr.data;
			req = d2i_X509_REQ(NULL, &p, (long)t->csr.len);
			KH_ENSURE(req != NULL, kh_err_set(e, KH_E_DATA_LOSS, "the staged CSR does not parse"));
			KH_TRY(pki_csr_der(req, &o->content, e));
		} else {
			KH_TRY(svc_pki_signer(s, o->req_key, t->digest, &sg, e));
			KH_TRY(pki_csr_build(&sg, &sub, NULL, &req, e));
			KH_TRY(pki_csr_der(req, &o->content, e));
		}
	} else {
		o->type = PKI_SCEP_PKCSREQ;
		kh_strlcpy(o->signer_key, t->key, sizeof(o->signer_key));
		kh_strlcpy(o->req_key, t->key, sizeof(o->req_key));
		KH_TRY(svc_pki_signer(s, t->key, t->digest, &sg, e));
		KH_TRY(pki_csr_build(&sg, &sub, sc->challenge[0] ? sc->challenge : NULL, &req, e));
		KH_TRY(pki_csr_der(req, &o->content, e));
		KH_TRY(pki_selfsigned_build_at(&sg, &sub, 1, svc_now() - 300, &o->signer, e));
	}
	KH_ENSURE(EVP_PKEY_get_base_id(X509_REQ_get0_pubkey(req)) == EVP_PKEY_RSA,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "SCEP needs an RSA key; '%s' is not one", o->req_key));
	KH_TRY(pki_scep_txid(X509_REQ_get0_pubkey(req), o->txid, e));
	KH_TRY(scep_name_der(req, &o->subject, e));
out:
	OPENSSL_free(ias);
	X509_REQ_free(req);
	pki_subject_clear(&sub);
	svc_pki_signer_clear(&sg);
	return r;
}

static const char *scep_msg_name(enum pki_scep_msg t)
{
	return t == PKI_SCEP_CERTPOLL ? "CertPoll" : t == PKI_SCEP_RENEWALREQ ? "RenewalReq" : "PKCSReq";
}

/* Sends rq by POST when offered, else GET (RFC 8894 §4.1). */
static enum kh_err scep_send(struct svc *s, const char *url, bool post, const struct pki_scep_req *rq,
			     struct kh_bytes *ans, struct kh_errbuf *e)
{
	char *u = NULL, *b64 = NULL;
	int r = KH_OK, rc;

	if (post) {
		KH_TRY(scep_url(url, "PKIOperation", NULL, &u));
		KH_TRY(svc_http_fetch(s->cfg, u, "application/x-pki-message", rq->der, rq->len, PKI_SCEP_MAX, ans, e));
	} else {
		b64 = malloc(4 * ((rq->len + 2) / 3) + 1);
		KH_ENSURE(b64 != NULL, KH_E_RESOURCE_EXHAUSTED);
		rc = EVP_EncodeBlock((unsigned char *)b64, rq->der, (int)rq->len);
		KH_ENSURE(rc > 0, KH_E_INTERNAL);
		KH_TRY(scep_url(url, "PKIOperation", b64, &u));
		KH_TRY(svc_http_fetch(s->cfg, u, NULL, NULL, 0, PKI_SCEP_MAX, ans, e));
	}
out:
	free(u);
	free(b64);
	return r;
}

/* PENDING: the request recorded (first answer) or its back-off advanced
 * (a poll): the wait doubles from [scep] poll_interval up to poll_max.
 * After poll_timeout the request is abandoned (FAILED_PRECONDITION). */
static enum kh_err scep_pending_record(struct svc *s, const char *name, const struct scep_out *o,
				       struct store_scep_pending *pd, bool found, struct kh_errbuf *e)
{
	const struct svc_config *cfg = s->cfg;
	int64_t now = svc_now(), max = cfg->scep_poll_max_s > cfg->scep_poll_interval_s ? cfg->scep_poll_max_s
											   : cfg->scep_poll_interval_s;
	uint8_t *d = NULL;
	int n, r = KH_OK;
	char st[KH_ERR_MSG_MAX];

	if (!found) {
		memset(pd, 0, sizeof(*pd));
		kh_strlcpy(pd->txid, o->txid, sizeof(pd->txid));
		pd->msg_type = (int)o->type;
		kh_strlcpy(pd->req_key, o->req_key, sizeof(pd->req_key));
		kh_strlcpy(pd->signer_key, o->signer_key, sizeof(pd->signer_key));
		n = i2d_X509(o->signer, &d);
		KH_ENSURE(n > 0, KH_E_RESOURCE_EXHAUSTED);
		pd->signer.data = malloc((size_t)n);
		pd->subject.data = malloc(o->subject.len);
		KH_ENSURE(pd->signer.data != NULL && pd->subject.data != NULL, KH_E_RESOURCE_EXHAUSTED);
		memcpy(pd->signer.data, d, (size_t)n);
		pd->signer.len = (size_t)n;
		memcpy(pd->subject.data, o->subject.data, o->subject.len);
		pd->subject.len = o->subject.len;
		pd->started = now;
		pd->wait = cfg->scep_poll_interval_s;
	} else {
		pd->polls++;
		pd->wait = pd->wait * 2 > max ? max : pd->wait * 2;
		if (pd->wait < (int64_t)cfg->scep_poll_interval_s)
			pd->wait = cfg->scep_poll_interval_s;
	}
	pd->next_poll = now + pd->wait;
	if (found && now - pd->started >= (int64_t)cfg->scep_poll_timeout_s) {
		snprintf(st, sizeof(st), "failed: still PENDING after %lld s and %u poll(s); abandoned (transaction %s)",
			 (long long)(now - pd->started), pd->polls, pd->txid);
		scep_lock(s);
		r = store_scep_pending_del(s->pki->store, name, e);
		scep_unlock(s);
		KH_TRY(r);
		scep_status(s, name, st, false);
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
			       "trustpoint '%s': the SCEP server held the request for %lld s ([scep] poll_timeout); keyhold "
			       "stopped polling (transaction %s); run `keyhold trustpoint enroll %s` for a new request",
			       name, (long long)(now - pd->started), pd->txid, name);
		goto out;
	}
	scep_lock(s);
	r = store_scep_pending_put(s->pki->store, name, pd, e);
	scep_unlock(s);
	KH_TRY(r);
	scep_status(s, name, "pending", false);
out:
	OPENSSL_free(d);
	return r;
}

static void scep_pending_drop(struct svc *s, const char *name)
{
	struct kh_errbuf e2 = { 0 };

	scep_lock(s);
	if (store_scep_pending_del(s->pki->store, name, &e2) != KH_OK)
		log_warn("trustpoint '%s': pending SCEP request not removed: %s", name, e2.msg);
	scep_unlock(s);
}

enum kh_err svc_scep_exchange(struct rpc_call *c, const char *name, bool *issued, struct kh_errbuf *e)
{
	struct svc *s = c->s;
	struct store_tp t;
	struct store_scep sc;
	struct store_scep_pending pd;
	struct pki_signer sg;
	struct pki_scep_caps caps;
	struct pki_scep_req rq;
	struct pki_scep_rep rep;
	struct scep_out o;
	struct kh_bytes capsb = { NULL, 0 }, ans = { NULL, 0 };
	struct scep_dec dec;
	struct kh_errbuf ign = { 0 };
	const EVP_MD *md = NULL;
	const EVP_CIPHER *cipher = NULL;
	X509 *ca = NULL, *ra = NULL;
	uint8_t nonce[PKI_SCEP_NONCE], *certs = NULL;
	size_t certs_len = 0;
	char st[KH_ERR_MSG_MAX], when[40];
	bool found = false;
	int r = KH_OK;

	*issued = false;
	memset(&t, 0, sizeof(t));
	memset(&sc, 0, sizeof(sc));
	memset(&pd, 0, sizeof(pd));
	memset(&sg, 0, sizeof(sg));
	memset(&rq, 0, sizeof(rq));
	memset(&rep, 0, sizeof(rep));
	memset(&o, 0, sizeof(o));
	pthread_mutex_lock(&scep_mu);
	scep_lock(s);
	r = store_tp_get(s->pki->store, name, &t, e);
	if (r == KH_OK)
		r = store_scep_get(s->pki->store, name, &sc, e);
	if (r == KH_OK) {
		found = store_scep_pending_get(s->pki->store, name, &pd, &ign) == KH_OK;
		kh_err_clear(&ign);
	}
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
	/* GetCACaps decides digest, cipher, POST and Renewal (RFC 8894 §3.5.2). */
	KH_TRY(scep_get(s, sc.url, "GetCACaps", PKI_SCEP_CAPS_MAX, &capsb, e));
	pki_scep_caps_parse(capsb.data, capsb.len, &caps);
	KH_TRY(pki_scep_choose(&caps, s->cfg->fips_mode != SVC_FIPS_OFF, &md, &cipher, e));
	KH_TRY(scep_prepare(s, &t, &sc, found ? &pd : NULL, ca, &caps, &o, e));
	/* The signerInfo is made by the signer certificate's key, in the token. */
	KH_TRY(svc_pki_signer(s, o.signer_key, t.digest, &sg, e));
	KH_ENSURE(sg.type == KH_KEY_RSA2048 || sg.type == KH_KEY_RSA3072 || sg.type == KH_KEY_RSA4096,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "SCEP needs an RSA key; '%s' is %s", o.signer_key,
			     kh_key_type_name(sg.type)));
	KH_TRY(hsm_random(s->hsm, nonce, sizeof(nonce), e));
	KH_TRY(pki_scep_request(&sg, o.signer, o.type, o.txid, o.content.data, o.content.len, ra != NULL ? ra : ca, md,
				cipher, nonce, &rq, e));
	log_info("trustpoint '%s': SCEP %s to %s (transaction %s, %s, %s, %s)", name, scep_msg_name(o.type), sc.url,
		 rq.txid, EVP_MD_get0_name(md), EVP_CIPHER_get0_name(cipher), caps.post ? "POST" : "GET");
	KH_TRY(scep_send(s, sc.url, caps.post, &rq, &ans, e));
	svc_pki_crash_point(s, "scep.after_request");
	KH_TRY(pki_scep_certrep(ans.data, ans.len, ra != NULL ? ra : ca, &rq, &rep, e));
	if (rep.status == PKI_SCEP_FAILURE) {
		if (found)
			scep_pending_drop(s, name);
		snprintf(st, sizeof(st), "failed: %s", pki_scep_fail_name(rep.fail_info));
		scep_status(s, name, st, false);
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
			       "the SCEP server refused the %s of trustpoint '%s': %s (transaction %s)",
			       found ? "request" : o.type == PKI_SCEP_RENEWALREQ ? "renewal request" : "request", name,
			       pki_scep_fail_name(rep.fail_info), rq.txid);
		goto out;
	}
	if (rep.status == PKI_SCEP_PENDING) {
		KH_TRY(scep_pending_record(s, name, &o, &pd, found, e));
		kh_time_format_rfc3339(pd.next_poll, when, sizeof(when));
		log_info("trustpoint '%s': SCEP request PENDING (transaction %s, %u poll(s)); next poll at %s", name,
			 pd.txid, pd.polls, when);
		r = kh_err_set(e, KH_E_UNAVAILABLE,
			       "the SCEP server holds the request of trustpoint '%s' for approval (PENDING, transaction "
			       "%s); keyholdd polls it (next at %s; `keyhold trustpoint enroll %s` polls now)",
			       name, pd.txid, when, name);
		goto out;
	}
	dec.h = s->hsm;
	dec.key = o.signer_key;
	/* DES-CBC answers only outside FIPS mode (the answer is public; its
	 * signature was checked above). The envelope is for the signer
	 * certificate of the request. */
	KH_TRY(pki_scep_open(rep.env, rep.env_len, o.signer, s->cfg->fips_mode == SVC_FIPS_OFF, scep_decrypt, &dec,
			     &certs, &certs_len, e));
	/* Dropped first: a crash in between leaves the trustpoint as it was. */
	if (found)
		scep_pending_drop(s, name);
	r = svc_tp_import(c, name, certs, certs_len, e);
	if (r != KH_OK) {
		snprintf(st, sizeof(st), "failed: the issued certificate was not imported: %.200s", e->msg);
		scep_status(s, name, st, false);
		goto out;
	}
	scep_status(s, name, "issued", true);
	*issued = true;
	log_info("trustpoint '%s': SCEP %s done (transaction %s)", name, scep_msg_name(o.type), rq.txid);
out:
	pthread_mutex_unlock(&scep_mu);
	free(certs);
	pki_scep_rep_clear(&rep);
	pki_scep_req_clear(&rq);
	kh_bytes_clear(&ans);
	kh_bytes_clear(&capsb);
	scep_out_clear(&o);
	X509_free(ca);
	X509_free(ra);
	svc_pki_signer_clear(&sg);
	store_scep_pending_clear(&pd);
	store_scep_clear(&sc);
	store_tp_clear(&t);
	return r;
}

enum kh_err svc_scep_enroll(struct rpc_call *c, const char *name, struct kh_errbuf *e)
{
	Keyhold__V1__EnrollTrustpointResponse *m;
	const Keyhold__V1__ImportCertificateResponse *im;
	bool issued = false;
	int r = KH_OK;

	KH_TRY(svc_scep_exchange(c, name, &issued, e));
	im = (const void *)c->resp;
	m = rpc_msg(c, &keyhold__v1__enroll_trustpoint_response__descriptor);
	KH_ENSURE(m != NULL && im != NULL && issued, KH_E_RESOURCE_EXHAUSTED);
	m->enrollment = KEYHOLD__V1__ENROLLMENT__ENROLLMENT_URL;
	m->key = rpc_strdup(c, im->key);
	m->cert = im->cert;
	m->retired_key = rpc_strdup(c, im->retired_key);
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
out:
	return r;
}

enum kh_err rpc_scep_pending(struct rpc_call *c, const char *name, Keyhold__V1__Trustpoint *m, struct kh_errbuf *e)
{
	struct store_scep_pending pd;
	int r = store_scep_pending_get(c->s->pki->store, name, &pd, e);

	if (r == KH_E_NOT_FOUND) {
		kh_err_clear(e);
		return KH_OK;
	}
	if (r != KH_OK)
		return r;
	m->scep_transaction = rpc_strdup(c, pd.txid);
	m->scep_next_poll = pd.next_poll;
	m->scep_polls = pd.polls;
	m->scep_pending_since = pd.started;
	store_scep_pending_clear(&pd);
	return c->oom ? KH_E_RESOURCE_EXHAUSTED : KH_OK;
}
