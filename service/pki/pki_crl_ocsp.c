/* pki_crl_ocsp.c: revocation evidence judged with OpenSSL: where a certificate
 * says its CRLs and OCSP responder are (RFC 5280 §4.2.1.13, §4.2.2.1),
 * whether a CRL can answer for it and what it says (§6.3), and OCSP
 * requests and responses (RFC 6960, nonce per RFC 8954). */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"

/* ---- where to ask ---- */

static void pki_url_add(const char *u, size_t ulen, char urls[][KH_URL_MAX + 1], size_t max, size_t *n,
			size_t *skipped)
{
	char buf[KH_URL_MAX + 1];
	size_t i;

	if (ulen == 0 || ulen > KH_URL_MAX || memchr(u, '\0', ulen) != NULL) {
		(*skipped)++;
		return;
	}
	memcpy(buf, u, ulen);
	buf[ulen] = '\0';
	if (!kh_url_valid(buf)) {
		/* ldap://, https://, file: are named but not fetched. */
		(*skipped)++;
		return;
	}
	for (i = 0; i < *n; i++)
		if (strcmp(urls[i], buf) == 0)
			return;
	if (*n < max)
		memcpy(urls[(*n)++], buf, ulen + 1);
}

size_t pki_crl_urls(X509 *x, char urls[][KH_URL_MAX + 1], size_t max, size_t *skipped)
{
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	size_t n = 0;
	int i, j;

	*skipped = 0;
	for (i = 0; i < sk_DIST_POINT_num(dps); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);

		/* A cRLIssuer makes it an indirect CRL (§5.2.5): not supported. */
		if (dp->distpoint == NULL || dp->distpoint->type != 0 || dp->CRLissuer != NULL) {
			(*skipped)++;
			continue;
		}
		for (j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); j++) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j);

			if (g->type != GEN_URI) {
				(*skipped)++;
				continue;
			}
			pki_url_add((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
				    (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier), urls, max, &n, skipped);
		}
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	ERR_clear_error();
	return n;
}

size_t pki_ocsp_urls(X509 *x, char urls[][KH_URL_MAX + 1], size_t max, size_t *skipped)
{
	STACK_OF(OPENSSL_STRING) *s = X509_get1_ocsp(x);
	size_t n = 0;
	int i;

	*skipped = 0;
	for (i = 0; i < sk_OPENSSL_STRING_num(s); i++) {
		const char *u = sk_OPENSSL_STRING_value(s, i);

		pki_url_add(u, strlen(u), urls, max, &n, skipped);
	}
	X509_email_free(s);
	ERR_clear_error();
	return n;
}

const char *pki_crl_reason_name(int reason)
{
	/* OCSP_crl_reason_str knows the RFC 5280 §5.3.1 names. */
	return reason < 0 ? "unspecified" : OCSP_crl_reason_str(reason);
}

void pki_cert_id(X509 *cert, X509 *issuer, char out[PKI_CERT_ID_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char key[2 * EVP_MAX_MD_SIZE + 1] = "", serial[KH_SERIAL_HEX + 1];
	struct kh_cert_info ci;

	if (X509_pubkey_digest(issuer, EVP_sha256(), md, &n) == 1)
		kh_hex(md, n, key, sizeof(key));
	pki_cert_info(cert, &ci);
	kh_strlcpy(serial, ci.serial, sizeof(serial));
	snprintf(out, PKI_CERT_ID_MAX, "%s:%s", key, serial);
}

/* ---- CRLs ---- */

/* thisUpdate not in the future, nextUpdate (when given) not past, each
 * with PKI_REV_SKEW of slack for clocks that disagree. */
static enum kh_err pki_time_ok(int64_t this_update, int64_t next_update, int64_t now, const char *what,
			       struct kh_errbuf *e)
{
	char when[40];

	if (this_update == 0 || this_update > now + PKI_REV_SKEW) {
		kh_time_format_rfc3339(this_update, when, sizeof(when));
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "the %s is not valid yet (issued %s)", what, when);
	}
	if (next_update != 0 && next_update < now - PKI_REV_SKEW) {
		kh_time_format_rfc3339(next_update, when, sizeof(when));
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "the %s is out of date (its next update was due %s)", what,
				  when);
	}
	return KH_OK;
}

enum kh_err pki_crl_usable(X509_CRL *crl, X509 *cert, X509 *issuer, int64_t now, struct kh_errbuf *e)
{
	ISSUING_DIST_POINT *idp = NULL;
	ASN1_INTEGER *delta = NULL;
	char who[256], by[256];
	uint32_t ku;
	int crit = -1, r = KH_OK;

	pki_name_text(X509_CRL_get_issuer(crl), by, sizeof(by));
	pki_name_text(X509_get_subject_name(issuer), who, sizeof(who));
	KH_ENSURE(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) == 0,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the CRL is issued by '%s', not by '%s'", by, who));
	KH_ENSURE(X509_CRL_verify(crl, X509_get0_pubkey(issuer)) == 1,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the CRL's signature does not verify with the key of '%s'", who));
	ku = X509_get_key_usage(issuer);
	KH_ENSURE(ku == UINT32_MAX || (ku & KU_CRL_SIGN) != 0,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "'%s' may not sign CRLs (its key usage lacks cRLSign)", who));
	delta = X509_CRL_get_ext_d2i(crl, NID_delta_crl, &crit, NULL);
	KH_ENSURE(delta == NULL && crit == -1,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the CRL is a delta CRL; keyhold uses full CRLs only"));
	crit = -1;
	idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, &crit, NULL);
	KH_ENSURE(idp != NULL || crit == -1,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the CRL's issuingDistributionPoint does not parse"));
	if (idp != NULL) {
		/* §5.2.5: a CRL scoped to some certificates or reasons does not
		 * answer for the others. */
		KH_ENSURE(!idp->indirectCRL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "indirect CRLs are not supported"));
		KH_ENSURE(idp->onlysomereasons == NULL,
			  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the CRL covers only some revocation reasons"));
		KH_ENSURE(!idp->onlyattr, kh_err_set(e, KH_E_FAILED_PRECONDITION, "the CRL covers attribute certificates only"));
		KH_ENSURE(!(idp->onlyuser && pki_cert_is_ca(cert)),
			  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the CRL covers end-entity certificates only"));
		KH_ENSURE(!(idp->onlyCA && !pki_cert_is_ca(cert)),
			  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the CRL covers CA certificates only"));
	}
	KH_TRY(pki_time_ok(pki_time(X509_CRL_get0_lastUpdate(crl)), pki_time(X509_CRL_get0_nextUpdate(crl)), now, "CRL",
			   e));
out:
	ISSUING_DIST_POINT_free(idp);
	ASN1_INTEGER_free(delta);
	ERR_clear_error();
	return r;
}

void pki_crl_status(X509_CRL *crl, X509 *cert, struct pki_rev_answer *a)
{
	X509_REVOKED *rev = NULL;

	memset(a, 0, sizeof(*a));
	a->reason = -1;
	a->this_update = pki_time(X509_CRL_get0_lastUpdate(crl));
	a->next_update = pki_time(X509_CRL_get0_nextUpdate(crl));
	/* 1: listed; 2: listed as removeFromCRL (delta CRLs only): good. */
	if (X509_CRL_get0_by_cert(crl, &rev, cert) == 1 && rev != NULL) {
		ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);

		a->status = PKI_REV_REVOKED;
		a->revoked_at = pki_time(X509_REVOKED_get0_revocationDate(rev));
		if (reason != NULL)
			a->reason = (int)ASN1_ENUMERATED_get(reason);
		ASN1_ENUMERATED_free(reason);
	} else {
		a->status = PKI_REV_GOOD;
	}
	ERR_clear_error();
}

/* ---- OCSP ---- */

void pki_ocsp_req_clear(struct pki_ocsp_req *r)
{
	if (r == NULL)
		return;
	OCSP_REQUEST_free(r->req);
	OCSP_CERTID_free(r->id);
	OPENSSL_free(r->der);
	memset(r, 0, sizeof(*r));
}

enum kh_err pki_ocsp_request(X509 *cert, X509 *issuer, bool nonce, struct pki_ocsp_req *out, struct kh_errbuf *e)
{
	struct pki_ocsp_req q;
	OCSP_CERTID *id = NULL;
	unsigned char *der = NULL;
	int len, r = KH_OK;

	memset(&q, 0, sizeof(q));
	/* SHA-1 here names the certificate (RFC 6960 §4.1.1 CertID); it is
	 * not a signature. Responders must accept it (RFC 5019 §2.1.1). */
	q.id = OCSP_cert_to_id(EVP_sha1(), cert, issuer);
	q.req = OCSP_REQUEST_new();
	KH_ENSURE(q.id != NULL && q.req != NULL, kh_err_set(e, KH_E_INTERNAL, "cannot build the OCSP request"));
	id = OCSP_CERTID_dup(q.id);
	KH_ENSURE(id != NULL && OCSP_request_add0_id(q.req, id) != NULL,
		  kh_err_set(e, KH_E_INTERNAL, "cannot build the OCSP request"));
	id = NULL; /* the request holds it */
	/* A 16-byte random nonce (RFC 8954 §2.1: 1 to 32 octets). */
	if (nonce)
		KH_ENSURE(OCSP_request_add1_nonce(q.req, NULL, 16) == 1,
			  kh_err_set(e, KH_E_INTERNAL, "cannot add the OCSP nonce"));
	len = i2d_OCSP_REQUEST(q.req, &der);
	KH_ENSURE(len > 0, kh_err_set(e, KH_E_INTERNAL, "cannot encode the OCSP request"));
	q.der = der;
	q.len = (size_t)len;
	der = NULL;
	*out = q;
	memset(&q, 0, sizeof(q));
out:
	ERR_clear_error();
	OCSP_CERTID_free(id);
	OPENSSL_free(der);
	pki_ocsp_req_clear(&q);
	return r;
}

enum kh_err pki_ocsp_response(const struct pki_ocsp_req *rq, const uint8_t *der, size_t len, X509 *issuer, X509 *trusted,
			      enum pki_nonce nonce, int64_t now, struct pki_rev_answer *a, struct kh_errbuf *e)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	X509_STORE *st = NULL;
	STACK_OF(X509) *certs = NULL;
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	char why[128];
	long rs;
	int status = -1, reason = -1, n, r = KH_OK;

	memset(a, 0, sizeof(*a));
	a->reason = -1;
	KH_ENSURE(len > 0 && len < (1u << 30), kh_err_set(e, KH_E_FAILED_PRECONDITION, "the OCSP response is empty"));
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	KH_ENSURE(resp != NULL && p == der + len,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the answer is not a DER OCSP response"));
	rs = OCSP_response_status(resp);
	KH_ENSURE(rs == OCSP_RESPONSE_STATUS_SUCCESSFUL,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the responder answered '%s' (RFC 6960 §4.2.1)",
			     OCSP_response_status_str(rs)));
	bs = OCSP_response_get1_basic(resp);
	KH_ENSURE(bs != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "the OCSP response is not a BasicOCSPResponse"));
	if (nonce != PKI_NONCE_OFF) {
		/* 1: echoed; 0: a different nonce (a replay or a mix-up);
		 * -1: none echoed (the responder pre-produces responses). */
		n = OCSP_check_nonce(rq->req, bs);
		KH_ENSURE(n != 0, kh_err_set(e, KH_E_FAILED_PRECONDITION,
					     "the OCSP response carries another nonce than the request's (a replayed or "
					     "mismatched response); refused"));
		KH_ENSURE(n != -1 || nonce != PKI_NONCE_REQUIRED,
			  kh_err_set(e, KH_E_FAILED_PRECONDITION,
				     "the OCSP response does not echo the request's nonce and ocsp_nonce = required"));
		if (n == -1)
			log_dbg("OCSP response without the nonce (accepted: ocsp_nonce = yes)");
	}
	/* A trusted third-party responder: the signer must be that very
	 * certificate (OCSP_NOINTERN: not one the response carries), whose
	 * key verifies the signature; OCSP_TRUSTOTHER skips the chain. */
	if (trusted != NULL) {
		STACK_OF(X509) *t = sk_X509_new_null();
		X509_STORE *ts = X509_STORE_new();
		int ok = t != NULL && ts != NULL && sk_X509_push(t, trusted) > 0 &&
			 OCSP_basic_verify(bs, t, ts, OCSP_TRUSTOTHER | OCSP_NOINTERN) == 1;

		sk_X509_free(t);
		X509_STORE_free(ts);
		ERR_clear_error();
		if (ok)
			goto signer_ok;
	}
	/* The signer must be the issuer, or a responder the issuer certified
	 * for id-kp-OCSPSigning (§4.2.2.2): the only anchor is the issuer. */
	st = X509_STORE_new();
	certs = sk_X509_new_null();
	KH_ENSURE(st != NULL && certs != NULL && X509_STORE_add_cert(st, issuer) == 1 && sk_X509_push(certs, issuer) > 0,
		  KH_E_RESOURCE_EXHAUSTED);
	X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
	if (OCSP_basic_verify(bs, certs, st, OCSP_PARTIAL_CHAIN) != 1) {
		/* The first reason is the telling one ("missing ocspsigning
		 * usage"); later ones follow from it. */
		const char *first = ERR_reason_error_string(ERR_peek_error());
		char drained[8];

		kh_strlcpy(why, first != NULL ? first : "", sizeof(why));
		pki_ossl_reason(drained, sizeof(drained)); /* logs the queue */
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
			       "the OCSP response is not signed by the issuer or a responder it authorised%s (%s)",
			       trusted != NULL ? ", nor by the store's trusted responder" : "",
			       why[0] != '\0' ? why : "signature or signer check failed");
		goto out;
	}
signer_ok:
	KH_ENSURE(OCSP_resp_find_status(bs, rq->id, &status, &reason, &rev, &thisupd, &nextupd) == 1,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the OCSP response does not answer for this certificate"));
	a->this_update = pki_time(thisupd);
	a->next_update = nextupd != NULL ? pki_time(nextupd) : 0;
	KH_TRY(pki_time_ok(a->this_update, a->next_update, now, "OCSP response", e));
	switch (status) {
	case V_OCSP_CERTSTATUS_GOOD:
		a->status = PKI_REV_GOOD;
		break;
	case V_OCSP_CERTSTATUS_REVOKED:
		a->status = PKI_REV_REVOKED;
		a->reason = reason;
		a->revoked_at = pki_time(rev);
		break;
	default:
		a->status = PKI_REV_UNKNOWN;
		break;
	}
out:
	ERR_clear_error();
	sk_X509_free(certs);
	X509_STORE_free(st);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return r;
}
