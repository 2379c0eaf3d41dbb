/* rev_check.c: the revocation policy engine. For each certificate of a
 * validated chain (its issuer next to it) the policy's methods are tried in
 * order until one answers good or revoked:
 *   crl:  CRLs the administrator gave (imported, --crl), then a CRL cached
 *         from a distribution point until its nextUpdate, then the http://
 *         distribution points themselves (RFC 5280 §6.3);
 *   ocsp: an answer cached until its nextUpdate, then the configured
 *         responder or the AIA one (RFC 6960), with a nonce by default.
 * When nothing answers the certificate's status is unknown, which the
 * policy's trailing "none" accepts (soft-fail) and otherwise fails (hard).
 * Every fetch runs on the calling worker thread with the PKI lock released;
 * the lock is taken only around the cache reads and writes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "core/svc_clock.h"
#include "revocation/revocation.h"
#include "config/config.h"
#include "kh_text.h"

enum kh_err svc_rev_policy_make(const char *text, const char *ocsp_url, const char *owner, struct svc_rev_policy *out,
				struct kh_errbuf *e)
{
	char norm[KH_REVOCATION_MAX + 1], item[KH_REVOCATION_MAX + 1];
	const char *p;
	int r = KH_OK;

	memset(out, 0, sizeof(*out));
	KH_TRY(pki_revocation_parse(text, norm, sizeof(norm), e));
	kh_strlcpy(out->text, norm, sizeof(out->text));
	kh_strlcpy(out->ocsp_url, ocsp_url != NULL ? ocsp_url : "", sizeof(out->ocsp_url));
	kh_strlcpy(out->owner, owner, sizeof(out->owner));
	/* norm is "none" or the methods in order, maybe ending in ",none". */
	for (p = norm; *p != '\0';) {
		size_t n = strcspn(p, ",");

		memcpy(item, p, n);
		item[n] = '\0';
		if (strcmp(item, "crl") == 0 && out->n < 2)
			out->methods[out->n++] = SVC_REV_CRL;
		else if (strcmp(item, "ocsp") == 0 && out->n < 2)
			out->methods[out->n++] = SVC_REV_OCSP;
		else if (strcmp(item, "none") == 0)
			out->soft = true;
		p += n;
		if (*p == ',')
			p++;
	}
out:
	return r;
}

static void rev_lock(struct svc *s)
{
	pthread_mutex_lock(&s->pki->lock);
}

static void rev_unlock(struct svc *s)
{
	pthread_mutex_unlock(&s->pki->lock);
}

/* Appends src to dst (of dstsz), truncating. */
static void rev_cat(char *dst, size_t dstsz, const char *src)
{
	size_t n = strlen(dst);

	if (n < dstsz - 1)
		kh_strlcpy(dst + n, src, dstsz - n);
}

/* Records one step of the walk (cert check shows them in order). */
static void rev_step(struct kh_cert_rev *o, const char *result, const char *fmt, ...) KH_PRINTF(3, 4);
static void rev_step(struct kh_cert_rev *o, const char *result, const char *fmt, ...)
{
	struct kh_rev_step *st;
	va_list ap;

	if (o->n_steps >= KH_REV_STEPS_MAX)
		return;
	st = &o->steps[o->n_steps++];
	kh_strlcpy(st->method, o->cur[0] ? o->cur : "crl", sizeof(st->method));
	kh_strlcpy(st->result, result, sizeof(st->result));
	va_start(ap, fmt);
	vsnprintf(st->detail, sizeof(st->detail), fmt, ap);
	va_end(ap);
}

/* Appends "what: why" to the certificate's detail (what was tried). */
static void rev_note(struct kh_cert_rev *o, const char *what, const char *why)
{
	/* The responder's own "unknown" is an answer, not a failure. */
	rev_step(o, strstr(why, "answered 'unknown'") != NULL ? "unknown" : "no answer", "%s%s%.200s",
		 strcmp(what, o->cur) == 0 ? "" : what, strcmp(what, o->cur) == 0 ? "" : ": ", why);
	if (o->detail[0] != '\0')
		rev_cat(o->detail, sizeof(o->detail), "; ");
	rev_cat(o->detail, sizeof(o->detail), what);
	rev_cat(o->detail, sizeof(o->detail), ": ");
	rev_cat(o->detail, sizeof(o->detail), why);
}

static void rev_answer(struct kh_cert_rev *o, const struct pki_rev_answer *a, const char *method, const char *source,
		       bool cached)
{
	o->status = a->status == PKI_REV_REVOKED ? KH_REV_REVOKED : KH_REV_GOOD;
	if (a->status == PKI_REV_REVOKED) {
		kh_strlcpy(o->reason, pki_crl_reason_name(a->reason), sizeof(o->reason));
		o->revoked_at = a->revoked_at;
	}
	kh_strlcpy(o->method, method, sizeof(o->method));
	/* A long URL is cut: the source is for people to read. */
	kh_strlcpy(o->source, source, sizeof(o->source));
	if (cached)
		rev_cat(o->source, sizeof(o->source), " (cached)");
	{
		char when[40];

		kh_time_format_rfc3339(a->next_update, when, sizeof(when));
		rev_step(o, a->status == PKI_REV_REVOKED ? "revoked" : "good", "%s%.200s%s%s%s%s",
			 a->status == PKI_REV_REVOKED ? pki_crl_reason_name(a->reason) : "",
			 a->status == PKI_REV_REVOKED ? ", " : "", source, cached ? ", cached" : "",
			 a->next_update ? ", next update " : "", a->next_update ? when : "");
	}
}

/* A CRL from the network: DER, or PEM as some servers send it. */
static X509_CRL *rev_crl_parse(const struct kh_bytes *b)
{
	const unsigned char *p = b->data;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)b->len);

	if (crl != NULL && p != b->data + b->len) {
		X509_CRL_free(crl);
		crl = NULL;
	}
	if (crl == NULL && b->len < (1u << 30)) {
		BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);

		if (bio != NULL)
			crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	ERR_clear_error();
	return crl;
}

/* ---- crl ---- */

static bool rev_crl_local(X509 *cert, X509 *issuer, STACK_OF(X509_CRL) *local, int64_t now, struct kh_cert_rev *o)
{
	int i;

	for (i = 0; i < sk_X509_CRL_num(local); i++) {
		X509_CRL *crl = sk_X509_CRL_value(local, i);
		struct kh_errbuf ce = { 0 };
		struct pki_rev_answer a;

		if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0)
			continue;
		if (pki_crl_usable(crl, cert, issuer, now, &ce) != KH_OK) {
			rev_note(o, "imported CRL", ce.msg);
			continue;
		}
		pki_crl_status(crl, cert, &a);
		rev_answer(o, &a, "crl", "imported CRL", false);
		return true;
	}
	return false;
}

/* One distribution point: the cache while its CRL is current, else the
 * network (and the cache refreshed). */
static bool rev_crl_url(struct svc *s, X509 *cert, X509 *issuer, const char *url, int64_t now, struct kh_cert_rev *o)
{
	struct store_crl_cached cc;
	struct kh_errbuf ce = { 0 };
	struct kh_bytes b = { NULL, 0 };
	struct pki_rev_answer a;
	X509_CRL *crl = NULL;
	bool found = false, answered = false;
	int r;

	memset(&cc, 0, sizeof(cc));
	rev_lock(s);
	r = store_crl_cache_get(s->pki->store, url, &cc, &found, &ce);
	rev_unlock(s);
	if (r == KH_OK && found && now < cc.next_update) {
		crl = rev_crl_parse(&cc.der);
		if (crl != NULL && pki_crl_usable(crl, cert, issuer, now, &ce) == KH_OK) {
			pki_crl_status(crl, cert, &a);
			rev_answer(o, &a, "crl", url, true);
			answered = true;
			goto out;
		}
		X509_CRL_free(crl);
		crl = NULL;
		kh_err_clear(&ce);
	}
	kh_bytes_clear(&cc.der);
	if (svc_http_fetch(s->cfg, url, NULL, NULL, 0, s->cfg->rev_crl_max, &b, &ce) != KH_OK) {
		rev_note(o, "crl", ce.msg); /* the message names the URL */
		goto out;
	}
	crl = rev_crl_parse(&b);
	if (crl == NULL) {
		rev_note(o, url, "the answer is not a CRL (DER or PEM)");
		goto out;
	}
	if (pki_crl_usable(crl, cert, issuer, now, &ce) != KH_OK) {
		rev_note(o, url, ce.msg);
		goto out;
	}
	pki_crl_status(crl, cert, &a);
	rev_answer(o, &a, "crl", url, false);
	answered = true;
	{
		char when[40];

		kh_time_format_rfc3339(a.next_update, when, sizeof(when));
		log_info("CRL from %s: %d revoked, next update %s", url, sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)),
			 a.next_update != 0 ? when : "none (not cached)");
	}
	/* Kept until its nextUpdate; a CRL without one is used once. */
	if (a.next_update > now) {
		unsigned char *der = NULL;
		int len = i2d_X509_CRL(crl, &der);

		memset(&cc, 0, sizeof(cc));
		if (len > 0) {
			pki_name_text(X509_CRL_get_issuer(crl), cc.issuer, sizeof(cc.issuer));
			cc.this_update = a.this_update;
			cc.next_update = a.next_update;
			cc.fetched = now;
			cc.der.data = der;
			cc.der.len = (size_t)len;
			rev_lock(s);
			r = store_crl_cache_put(s->pki->store, url, &cc, &ce);
			rev_unlock(s);
			if (r != KH_OK)
				log_warn("cannot cache the CRL from %s: %s", url, ce.msg);
		}
		OPENSSL_free(der);
		memset(&cc, 0, sizeof(cc));
	}
out:
	kh_bytes_clear(&cc.der);
	kh_bytes_clear(&b);
	X509_CRL_free(crl);
	return answered;
}

static bool rev_crl(struct svc *s, X509 *cert, X509 *issuer, STACK_OF(X509_CRL) *local, int64_t now,
		    struct kh_cert_rev *o)
{
	char urls[PKI_URLS_MAX][KH_URL_MAX + 1];
	size_t n, skipped = 0, i;

	if (rev_crl_local(cert, issuer, local, now, o))
		return true;
	n = pki_crl_urls(cert, urls, PKI_URLS_MAX, &skipped);
	if (n == 0) {
		rev_note(o, "crl", skipped > 0 ? "its CRL distribution points are not http:// URLs (keyhold fetches "
						 "only http://)"
					       : "no CRL distribution point in the certificate and no imported CRL");
		return false;
	}
	for (i = 0; i < n; i++)
		if (rev_crl_url(s, cert, issuer, urls[i], now, o))
			return true;
	return false;
}

/* ---- ocsp ---- */

static bool rev_ocsp_url(struct svc *s, const struct svc_rev_policy *p, X509 *cert, X509 *issuer, const char *url,
			 const char *cert_id, int64_t now,
			 struct kh_cert_rev *o)
{
	struct pki_ocsp_req rq;
	struct pki_rev_answer a;
	struct kh_bytes b = { NULL, 0 };
	struct kh_errbuf ce = { 0 };
	enum pki_nonce nonce = s->cfg->rev_nonce == SVC_NONCE_OFF	 ? PKI_NONCE_OFF
			       : s->cfg->rev_nonce == SVC_NONCE_REQUIRED ? PKI_NONCE_REQUIRED
									 : PKI_NONCE_ON;
	bool answered = false;
	int r;

	memset(&rq, 0, sizeof(rq));
	if (pki_ocsp_request(cert, issuer, nonce != PKI_NONCE_OFF, &rq, &ce) != KH_OK) {
		rev_note(o, url, ce.msg);
		goto out;
	}
	if (svc_http_fetch(s->cfg, url, "application/ocsp-request", rq.der, rq.len, s->cfg->rev_ocsp_max, &b, &ce) !=
	    KH_OK) {
		rev_note(o, "ocsp", ce.msg); /* the message names the URL */
		goto out;
	}
	if (pki_ocsp_response(&rq, b.data, b.len, issuer, p->responder, nonce, now, &a, &ce) != KH_OK) {
		log_warn("OCSP %s: %s", url, ce.msg);
		rev_note(o, url, ce.msg);
		goto out;
	}
	if (a.status == PKI_REV_UNKNOWN) {
		/* RFC 6960 §2.2: the responder does not know the certificate. */
		rev_note(o, url, "the OCSP responder answered 'unknown'");
		goto out;
	}
	rev_answer(o, &a, "ocsp", url, false);
	answered = true;
	if (a.next_update > now) {
		struct store_ocsp_cached oc;

		memset(&oc, 0, sizeof(oc));
		kh_strlcpy(oc.responder, url, sizeof(oc.responder));
		oc.revoked = a.status == PKI_REV_REVOKED;
		oc.reason = a.reason;
		oc.revoked_at = a.revoked_at;
		oc.this_update = a.this_update;
		oc.next_update = a.next_update;
		oc.fetched = now;
		oc.der = b;
		rev_lock(s);
		r = store_ocsp_cache_put(s->pki->store, cert_id, &oc, &ce);
		rev_unlock(s);
		if (r != KH_OK)
			log_warn("cannot cache the OCSP answer from %s: %s", url, ce.msg);
	}
out:
	kh_bytes_clear(&b);
	pki_ocsp_req_clear(&rq);
	return answered;
}

static bool rev_ocsp(struct svc *s, X509 *cert, X509 *issuer, const struct svc_rev_policy *p, int64_t now,
		     struct kh_cert_rev *o)
{
	char urls[PKI_URLS_MAX][KH_URL_MAX + 1], cert_id[PKI_CERT_ID_MAX];
	struct store_ocsp_cached oc;
	struct kh_errbuf ce = { 0 };
	size_t n, skipped = 0, i;
	bool found = false;
	int r;

	pki_cert_id(cert, issuer, cert_id);
	memset(&oc, 0, sizeof(oc));
	rev_lock(s);
	r = store_ocsp_cache_get(s->pki->store, cert_id, &oc, &found, &ce);
	rev_unlock(s);
	kh_bytes_clear(&oc.der);
	if (r == KH_OK && found && now < oc.next_update && oc.this_update <= now + PKI_REV_SKEW) {
		struct pki_rev_answer a;

		memset(&a, 0, sizeof(a));
		a.status = oc.revoked ? PKI_REV_REVOKED : PKI_REV_GOOD;
		a.reason = oc.reason;
		a.revoked_at = oc.revoked_at;
		a.next_update = oc.next_update;
		rev_answer(o, &a, "ocsp", oc.responder, true);
		return true;
	}
	if (p->ocsp_url[0] != '\0') {
		kh_strlcpy(urls[0], p->ocsp_url, sizeof(urls[0]));
		n = 1;
	} else {
		n = pki_ocsp_urls(cert, urls, PKI_URLS_MAX, &skipped);
	}
	if (n == 0) {
		rev_note(o, "ocsp", skipped > 0 ? "its OCSP responders are not http:// URLs (keyhold fetches only http://)"
						: "no OCSP responder in the certificate (AIA) and none configured");
		return false;
	}
	for (i = 0; i < n; i++)
		if (rev_ocsp_url(s, p, cert, issuer, urls[i], cert_id, now, o))
			return true;
	return false;
}

/* ---- the chain ---- */

enum kh_err svc_rev_check(struct svc *s, STACK_OF(X509) *chain, const struct svc_rev_policy *p,
			  STACK_OF(X509_CRL) *local, struct kh_cert_check_resp *out, struct kh_errbuf *e)
{
	struct kh_cert_rev *certs = NULL;
	int64_t now = svc_now();
	int len = sk_X509_num(chain), i;
	int r = KH_OK;

	memset(out, 0, sizeof(*out));
	kh_strlcpy(out->policy, p->text, sizeof(out->policy));
	KH_ENSURE(len >= 1, kh_err_set(e, KH_E_INTERNAL, "no chain to check"));
	KH_ENSURE(len - 1 <= KH_REV_CHAIN_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the chain is longer than %d certificates", KH_REV_CHAIN_MAX + 1));
	certs = calloc((size_t)len, sizeof(*certs));
	KH_ENSURE(certs != NULL, KH_E_RESOURCE_EXHAUSTED);
	out->status = KH_REV_GOOD;
	for (i = 0; i + 1 < len; i++) {
		X509 *cert = sk_X509_value(chain, i), *issuer = sk_X509_value(chain, i + 1);
		struct kh_cert_rev *o = &certs[i];
		bool answered = false;
		size_t m;

		pki_cert_info(cert, &o->cert);
		o->status = KH_REV_UNKNOWN;
		kh_strlcpy(o->cur, p->n == 0 ? "none" : "crl", sizeof(o->cur));
		if (p->n == 0) {
			/* Policy none: what the administrator imported still counts. */
			answered = rev_crl_local(cert, issuer, local, now, o);
			if (!answered)
				rev_note(o, "policy none", "only imported CRLs are consulted, and none covers it");
		}
		for (m = 0; m < p->n && !answered; m++) {
			kh_strlcpy(o->cur, p->methods[m] == SVC_REV_CRL ? "crl" : "ocsp", sizeof(o->cur));
			answered = p->methods[m] == SVC_REV_CRL ? rev_crl(s, cert, issuer, local, now, o)
								: rev_ocsp(s, cert, issuer, p, now, o);
		}
		/* A trailing none: what was not answered is accepted as unknown. */
		if (!answered && p->soft && p->n > 0) {
			kh_strlcpy(o->cur, "none", sizeof(o->cur));
			rev_step(o, "unknown", "accepted (soft-fail)");
		}
		if (o->status == KH_REV_REVOKED) {
			if (out->status != KH_REV_REVOKED)
				kh_strlcpy(out->reason, o->reason, sizeof(out->reason));
			out->status = KH_REV_REVOKED;
		} else if (o->status == KH_REV_UNKNOWN && out->status == KH_REV_GOOD) {
			out->status = KH_REV_UNKNOWN;
		}
		log_info("revocation (%s, %s): %s: %s%s%s%s%s", p->owner, p->text, o->cert.subject,
			 kh_rev_status_name(o->status), o->source[0] ? " via " : "", o->source,
			 o->detail[0] ? " — " : "", o->detail);
	}
	out->certs = certs;
	out->n_certs = (size_t)(len - 1);
	certs = NULL;
	/* Soft-fail: a trailing none accepts what nothing answered for; so
	 * does "none" alone (nothing was required). */
	out->soft_fail = out->status == KH_REV_UNKNOWN && (p->soft || p->n == 0);
	if (out->n_certs == 0)
		kh_strlcpy(out->detail, "the certificate is itself a trust anchor: nothing to check", sizeof(out->detail));
	else
		svc_rev_summary(out, out->detail, sizeof(out->detail));
out:
	free(certs);
	return r;
}

void svc_rev_summary(const struct kh_cert_check_resp *r, char *out, size_t outsz)
{
	size_t i;

	out[0] = '\0';
	for (i = 0; i < r->n_certs; i++) {
		const struct kh_cert_rev *c = &r->certs[i];

		if (r->status == KH_REV_REVOKED && c->status == KH_REV_REVOKED) {
			snprintf(out, outsz, "'%.*s' is revoked (%s) per %s %.*s", KH_UTF8_PREC(c->cert.subject, 200), c->reason,
				 c->method, KH_UTF8_PREC(c->source, 200));
			return;
		}
		if (r->status == KH_REV_UNKNOWN && c->status == KH_REV_UNKNOWN) {
			snprintf(out, outsz, "the revocation status of '%.*s' is unknown (%.*s)",
				 KH_UTF8_PREC(c->cert.subject, 200), KH_UTF8_PREC(c->detail, 250));
			return;
		}
	}
	if (r->n_certs > 0)
		snprintf(out, outsz, "not revoked (%zu certificate%s checked; the leaf via %s %.*s)", r->n_certs,
			 r->n_certs == 1 ? "" : "s", r->certs[0].method, KH_UTF8_PREC(r->certs[0].source, 200));
}

void kh_cert_check_resp_clear(struct kh_cert_check_resp *r)
{
	if (r == NULL)
		return;
	free(r->certs);
	memset(r, 0, sizeof(*r));
}
