/* acme.c: ACME (RFC 8555) enrollment of a trustpoint on a worker thread:
 * directory, nonces (badNonce retried), the account (created once with an
 * ES256 token key, its URL kept as kid), order for the trustpoint's DNS and
 * IP names, http-01 challenges, finalize with the token-signed CSR, the
 * chain downloaded. HTTPS through libcurl, bounded in size and time; every
 * answer parsed by acme_json.c. The caller stores the chain like an import. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config/config.h"
#include "core/svc_clock.h"
#include "hsm.h"
#include "keys/key_life.h"
#include "kh_log.h"
#include "kh_util.h"
#include "pki/acme.h"
#include "pki/pki.h"
#include "pki/pki_state.h"

/* One request: connect and total time; the whole flow is bounded by
 * [acme] timeout. */
#define ACME_CONNECT_S 10L
#define ACME_REQUEST_S 30L
#define ACME_NONCE_MAX 128
#define ACME_BADNONCE_RETRIES 3
#define ACME_IDENTS_MAX ACME_AUTHZ_MAX

struct acme_ctx {
	struct svc *s;
	const char *tp;
	char key[KH_NAME_MAX + 1];           /* the account key */
	const char *ca_pem;                  /* borrowed; NULL: the system's CAs */
	struct acme_directory dir;
	char nonce[ACME_NONCE_MAX + 1];
	char kid[ACME_URL_MAX + 1];
	char jwk[256];                       /* canonical JWK (RFC 7638 member order) */
	char thumb[64];                      /* base64url SHA-256 of jwk */
	const struct store_tp_acme *ac;      /* borrowed: the external account binding */
	uint64_t deadline_us;
};

struct acme_resp {
	long status;
	uint8_t *body;
	size_t len;
	bool over;
	char location[ACME_URL_MAX + 1];
	char nonce[ACME_NONCE_MAX + 1];
	unsigned retry_after;                /* seconds; 0: none */
};

static void acme_resp_clear(struct acme_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* ---- base64url (RFC 7515 §2) ---- */

static char *acme_b64url(const uint8_t *in, size_t n)
{
	size_t cap = 4 * ((n + 2) / 3) + 1, i, o = 0;
	char *b = malloc(cap);
	int len;

	if (b == NULL)
		return NULL;
	len = EVP_EncodeBlock((unsigned char *)b, in, (int)n);
	for (i = 0; i < (size_t)(len < 0 ? 0 : len); i++) {
		if (b[i] == '=')
			break;
		b[o++] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
	}
	b[o] = '\0';
	return b;
}

/* ---- HTTP ---- */

static size_t acme_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct acme_resp *r = ud;
	size_t n = size * nmemb;
	uint8_t *nb;

	if (n > ACME_BODY_MAX - r->len) {
		r->over = true;
		return 0;
	}
	nb = realloc(r->body, r->len + n + 1);
	if (nb == NULL)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Copies header value v (len n, CRLF-trimmed) into out when printable. */
static void acme_hdr_copy(const char *v, size_t n, char *out, size_t outsz)
{
	size_t i;

	while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n == 0 || n >= outsz)
		return;
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return;
	memcpy(out, v, n);
	out[n] = '\0';
}

static size_t acme_header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	struct acme_resp *r = ud;
	size_t n = size * nitems;
	char tmp[16];
	uint64_t v;

	if (n > 13 && strncasecmp(buf, "Replay-Nonce:", 13) == 0)
		acme_hdr_copy(buf + 13, n - 13, r->nonce, sizeof(r->nonce));
	else if (n > 9 && strncasecmp(buf, "Location:", 9) == 0)
		acme_hdr_copy(buf + 9, n - 9, r->location, sizeof(r->location));
	else if (n > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
		tmp[0] = '\0';
		acme_hdr_copy(buf + 12, n - 12, tmp, sizeof(tmp));
		if (kh_parse_u64(tmp, 0, 86400, &v) == 0)
			r->retry_after = (unsigned)v;
	}
	return n;
}

/* GET, HEAD or POST (body as application/jose+json) of url over https://
 * only; any status is returned (the caller judges it). */
static enum kh_err acme_http(struct acme_ctx *a, const char *method, const char *url, const char *body,
			     struct acme_resp *out, struct kh_errbuf *e)
{
	struct curl_slist *hdr = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_blob blob;
	CURL *c = NULL;
	CURLcode rc;
	uint64_t now = kh_now_mono_us();
	long total = ACME_REQUEST_S;
	int r = KH_OK;

	memset(out, 0, sizeof(*out));
	KH_ENSURE(now < a->deadline_us,
		  kh_err_set(e, KH_E_DEADLINE_EXCEEDED, "ACME enrollment of '%s' ran out of time ([acme] timeout)", a->tp));
	if ((a->deadline_us - now) / 1000000 + 1 < (uint64_t)total)
		total = (long)((a->deadline_us - now) / 1000000 + 1);
	c = curl_easy_init();
	KH_ENSURE(c != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "libcurl: cannot start a transfer"));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, ACME_CONNECT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, total);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)ACME_BODY_MAX);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (a->ca_pem != NULL) {
		/* curl copies it (CURL_BLOB_COPY) and never writes to it. */
		memcpy(&blob.data, &a->ca_pem, sizeof(blob.data));
		blob.len = strlen(a->ca_pem);
		blob.flags = CURL_BLOB_COPY;
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	}
	curl_easy_setopt(c, CURLOPT_USERAGENT, "keyhold/" KEYHOLD_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, acme_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, acme_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body != NULL) {
		hdr = curl_slist_append(hdr, "Content-Type: application/jose+json");
		KH_ENSURE(hdr != NULL, KH_E_RESOURCE_EXHAUSTED);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		if (out->over || rc == CURLE_FILESIZE_EXCEEDED)
			r = kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "ACME %s %s: the answer is larger than %d bytes", method,
				       url, ACME_BODY_MAX);
		else
			r = kh_err_set(e, rc == CURLE_OPERATION_TIMEDOUT ? KH_E_DEADLINE_EXCEEDED : KH_E_UNAVAILABLE,
				       "ACME %s %s: %s", method, url, errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
out:
	if (r != KH_OK)
		acme_resp_clear(out);
	curl_slist_free_all(hdr);
	if (c != NULL)
		curl_easy_cleanup(c);
	return r;
}

/* An error answer in words: the problem document's type and detail. */
static enum kh_err acme_fail(struct acme_ctx *a, const char *what, const struct acme_resp *rs, struct kh_errbuf *e)
{
	struct acme_problem p;
	struct kh_errbuf ign = { 0 };

	if (rs->len > 0 && acme_parse_problem(rs->body, rs->len, &p, &ign) == KH_OK && p.type[0] != '\0')
		return kh_err_set(e, rs->status >= 500 ? KH_E_UNAVAILABLE : KH_E_FAILED_PRECONDITION,
				  "ACME %s for trustpoint '%s': HTTP %ld, %s: %s", what, a->tp, rs->status, p.type, p.detail);
	return kh_err_set(e, rs->status >= 500 || rs->status == 0 ? KH_E_UNAVAILABLE : KH_E_FAILED_PRECONDITION,
			  "ACME %s for trustpoint '%s': HTTP %ld", what, a->tp, rs->status);
}

static enum kh_err acme_new_nonce(struct acme_ctx *a, struct kh_errbuf *e)
{
	struct acme_resp rs;
	int r = KH_OK;

	KH_TRY(acme_http(a, "HEAD", a->dir.new_nonce, NULL, &rs, e));
	KH_ENSURE(rs.status == 200 || rs.status == 204, acme_fail(a, "newNonce", &rs, e));
	KH_ENSURE(acme_b64url_valid(rs.nonce, ACME_NONCE_MAX),
		  kh_err_set(e, KH_E_UNAVAILABLE, "ACME newNonce: no valid Replay-Nonce header"));
	kh_strlcpy(a->nonce, rs.nonce, sizeof(a->nonce));
out:
	acme_resp_clear(&rs);
	return r;
}

/* ES256 over in (RFC 7518 §3.4): SHA-256 here, ECDSA in the token, the
 * DER signature turned into the fixed 64-byte r||s. */
static enum kh_err acme_sign_with(struct svc *s, const char *key, const char *in, char **sig_b64, struct kh_errbuf *e)
{
	struct hsm_sign_op op;
	uint8_t md[32], raw[64];
	unsigned int mdlen = 0;
	uint8_t *der = NULL;
	size_t der_len = 0;
	const unsigned char *p;
	ECDSA_SIG *sig = NULL;
	const BIGNUM *br, *bs;
	int r = KH_OK;

	KH_ENSURE(EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32,
		  kh_err_set(e, KH_E_INTERNAL, "SHA-256 failed"));
	memset(&op, 0, sizeof(op));
	op.key = key;
	op.digest = KH_DIGEST_SHA256;
	op.padding = KH_PAD_DEFAULT;
	op.in = md;
	op.in_len = mdlen;
	KH_TRY(hsm_sign(s->hsm, &op, &der, &der_len, e));
	p = der;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	KH_ENSURE(sig != NULL, kh_err_set(e, KH_E_INTERNAL, "the token's ECDSA signature does not parse"));
	ECDSA_SIG_get0(sig, &br, &bs);
	KH_ENSURE(BN_bn2binpad(br, raw, 32) == 32 && BN_bn2binpad(bs, raw + 32, 32) == 32,
		  kh_err_set(e, KH_E_INTERNAL, "the token's ECDSA signature is not P-256"));
	*sig_b64 = acme_b64url(raw, sizeof(raw));
	KH_ENSURE(*sig_b64 != NULL, KH_E_RESOURCE_EXHAUSTED);
out:
	ECDSA_SIG_free(sig);
	free(der);
	return r;
}

static enum kh_err acme_sign(struct acme_ctx *a, const char *in, char **sig_b64, struct kh_errbuf *e)
{
	return acme_sign_with(a->s, a->key, in, sig_b64, e);
}

/* A JWS (RFC 8555 §6.2) POSTed to url: payload NULL is POST-as-GET; the
 * account's kid once it exists, else the jwk. badNonce is retried with the
 * fresh nonce the error carried. The answer's status is left to the caller. */
static enum kh_err acme_post(struct acme_ctx *a, const char *url, json_t *payload, struct acme_resp *out,
			     struct kh_errbuf *e)
{
	char *pl_json = NULL, *pl_b64 = NULL, *prot_json = NULL, *prot_b64 = NULL, *input = NULL, *sig = NULL;
	char *body = NULL;
	json_t *prot = NULL, *jwk = NULL, *jws = NULL;
	struct acme_problem p;
	struct kh_errbuf ign = { 0 };
	int attempt, r = KH_OK;
	size_t n;

	if (payload != NULL) {
		pl_json = json_dumps(payload, JSON_COMPACT);
		KH_ENSURE(pl_json != NULL, KH_E_RESOURCE_EXHAUSTED);
		pl_b64 = acme_b64url((const uint8_t *)pl_json, strlen(pl_json));
	} else {
		pl_b64 = strdup("");
	}
	KH_ENSURE(pl_b64 != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (attempt = 0;; attempt++) {
		if (a->nonce[0] == '\0')
			KH_TRY(acme_new_nonce(a, e));
		json_decref(prot);
		prot = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "nonce", a->nonce, "url", url);
		KH_ENSURE(prot != NULL, KH_E_RESOURCE_EXHAUSTED);
		a->nonce[0] = '\0'; /* used */
		if (a->kid[0] != '\0') {
			KH_ENSURE(json_object_set_new(prot, "kid", json_string(a->kid)) == 0, KH_E_RESOURCE_EXHAUSTED);
		} else {
			jwk = json_loads(a->jwk, 0, NULL);
			KH_ENSURE(jwk != NULL && json_object_set_new(prot, "jwk", jwk) == 0, KH_E_RESOURCE_EXHAUSTED);
			jwk = NULL;
		}
		free(prot_json);
		free(prot_b64);
		free(input);
		free(sig);
		free(body);
		prot_b64 = input = sig = body = NULL;
		prot_json = json_dumps(prot, JSON_COMPACT);
		KH_ENSURE(prot_json != NULL, KH_E_RESOURCE_EXHAUSTED);
		prot_b64 = acme_b64url((const uint8_t *)prot_json, strlen(prot_json));
		KH_ENSURE(prot_b64 != NULL, KH_E_RESOURCE_EXHAUSTED);
		n = strlen(prot_b64) + strlen(pl_b64) + 2;
		input = malloc(n);
		KH_ENSURE(input != NULL, KH_E_RESOURCE_EXHAUSTED);
		snprintf(input, n, "%s.%s", prot_b64, pl_b64);
		KH_TRY(acme_sign(a, input, &sig, e));
		json_decref(jws);
		jws = json_pack("{s:s, s:s, s:s}", "protected", prot_b64, "payload", pl_b64, "signature", sig);
		KH_ENSURE(jws != NULL, KH_E_RESOURCE_EXHAUSTED);
		body = json_dumps(jws, JSON_COMPACT);
		KH_ENSURE(body != NULL, KH_E_RESOURCE_EXHAUSTED);
		KH_TRY(acme_http(a, "POST", url, body, out, e));
		if (acme_b64url_valid(out->nonce, ACME_NONCE_MAX))
			kh_strlcpy(a->nonce, out->nonce, sizeof(a->nonce));
		if (out->status == 400 && attempt < ACME_BADNONCE_RETRIES && out->len > 0 &&
		    acme_parse_problem(out->body, out->len, &p, &ign) == KH_OK &&
		    strcmp(p.type, "urn:ietf:params:acme:error:badNonce") == 0) {
			log_info("ACME %s: badNonce, retrying with a fresh nonce", url);
			acme_resp_clear(out);
			continue;
		}
		break;
	}
out:
	json_decref(prot);
	json_decref(jwk);
	json_decref(jws);
	free(pl_json);
	free(pl_b64);
	free(prot_json);
	free(prot_b64);
	free(input);
	free(sig);
	free(body);
	return r;
}

/* Sleeps before the next poll: Retry-After (at most 10 s) or back-off. */
static enum kh_err acme_wait(struct acme_ctx *a, unsigned *delay_ms, unsigned retry_after, const char *what,
			     struct kh_errbuf *e)
{
	unsigned ms = retry_after > 0 ? (retry_after > 10 ? 10000 : retry_after * 1000) : *delay_ms;
	struct timespec ts;

	if (kh_now_mono_us() + (uint64_t)ms * 1000 >= a->deadline_us)
		return kh_err_set(e, KH_E_DEADLINE_EXCEEDED,
				  "ACME enrollment of '%s': %s did not finish within [acme] timeout; run enroll again", a->tp,
				  what);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
	*delay_ms = *delay_ms >= 2000 ? 4000 : *delay_ms * 2;
	return KH_OK;
}

/* The JWK of P-256 token key `key` (jwk: 256 bytes) and its thumbprint
 * (RFC 7638; thumb: 64 bytes). */
static enum kh_err acme_jwk_of(struct svc *s, const char *key, char *jwk, char *thumb, struct kh_errbuf *e)
{
	enum kh_key_type type = KH_KEY_UNSPECIFIED;
	EVP_PKEY *pub = NULL;
	uint8_t pt[65], md[32];
	size_t ptlen = 0;
	unsigned int mdlen = 0;
	char *x = NULL, *y = NULL, *t = NULL;
	int r = KH_OK;

	KH_TRY(hsm_key_meta(s->hsm, key, &type, &pub, e));
	KH_ENSURE(type == KH_KEY_P256 && pub != NULL,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the ACME account key '%s' is not a P-256 key", key));
	KH_ENSURE(EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptlen) == 1 &&
			  ptlen == 65 && pt[0] == 0x04,
		  kh_err_set(e, KH_E_INTERNAL, "cannot read the public point of '%s'", key));
	x = acme_b64url(pt + 1, 32);
	y = acme_b64url(pt + 33, 32);
	KH_ENSURE(x != NULL && y != NULL, KH_E_RESOURCE_EXHAUSTED);
	/* Members in lexicographic order, no blanks: the thumbprint input. */
	snprintf(jwk, 256, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
	KH_ENSURE(EVP_Digest(jwk, strlen(jwk), md, &mdlen, EVP_sha256(), NULL) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "SHA-256 failed"));
	t = acme_b64url(md, mdlen);
	KH_ENSURE(t != NULL, KH_E_RESOURCE_EXHAUSTED);
	kh_strlcpy(thumb, t, 64);
out:
	free(x);
	free(y);
	free(t);
	EVP_PKEY_free(pub);
	return r;
}

/* The JWK of the account key and its thumbprint. */
static enum kh_err acme_jwk(struct acme_ctx *a, struct kh_errbuf *e)
{
	return acme_jwk_of(a->s, a->key, a->jwk, a->thumb, e);
}

enum kh_err svc_acme_key_name(const char *tp, char out[KH_NAME_MAX + 1], struct kh_errbuf *e)
{
	if (strlen(tp) + 5 > KH_NAME_MAX)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "an ACME trustpoint's name is at most %d characters (its account key is NAME.acme)",
				  KH_NAME_MAX - 5);
	snprintf(out, KH_NAME_MAX + 1, "%s.acme", tp);
	return KH_OK;
}

/* The identifiers of the order: the DNS and IP entries of the SAN list and
 * the FQDN; anything else is refused (ACME validates only names). */
static enum kh_err acme_idents(const struct store_tp *t, json_t **out, struct kh_errbuf *e)
{
	char buf[KH_SAN_MAX + 1], *save = NULL, *tok;
	json_t *arr = json_array();
	size_t n = 0;
	int r = KH_OK;

	KH_ENSURE(arr != NULL, KH_E_RESOURCE_EXHAUSTED);
	kh_strlcpy(buf, t->san, sizeof(buf));
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		const char *type;

		while (*tok == ' ')
			tok++;
		if (strncasecmp(tok, "DNS:", 4) == 0)
			type = "dns";
		else if (strncasecmp(tok, "IP:", 3) == 0)
			type = "ip";
		else
			KH_ENSURE(false, kh_err_set(e, KH_E_FAILED_PRECONDITION,
						    "trustpoint '%s': ACME validates DNS and IP names only, not '%.60s'",
						    t->name, tok));
		tok = strchr(tok, ':') + 1;
		KH_ENSURE(n < ACME_IDENTS_MAX,
			  kh_err_set(e, KH_E_FAILED_PRECONDITION, "trustpoint '%s': more than %d names for ACME", t->name,
				     ACME_IDENTS_MAX));
		KH_ENSURE(json_array_append_new(arr, json_pack("{s:s, s:s}", "type", type, "value", tok)) == 0,
			  KH_E_RESOURCE_EXHAUSTED);
		n++;
	}
	if (t->fqdn[0] != '\0' && n < ACME_IDENTS_MAX) {
		bool dup = false;
		size_t i;
		json_t *v;

		json_array_foreach(arr, i, v)
			dup = dup || strcasecmp(json_string_value(json_object_get(v, "value")), t->fqdn) == 0;
		if (!dup) {
			KH_ENSURE(json_array_append_new(arr, json_pack("{s:s, s:s}", "type", "dns", "value", t->fqdn)) == 0,
				  KH_E_RESOURCE_EXHAUSTED);
			n++;
		}
	}
	KH_ENSURE(n > 0, kh_err_set(e, KH_E_FAILED_PRECONDITION,
				    "trustpoint '%s' names no DNS or IP identifier for ACME (--san DNS:...,IP:... or --fqdn)",
				    t->name));
	*out = arr;
	arr = NULL;
out:
	json_decref(arr);
	return r;
}

/* Reads the trustpoint, makes sure the account key exists and signs the CSR
 * for the key being enrolled (the PKI lock held by the caller). */
static enum kh_err acme_prepare(struct svc *s, const char *tp, struct store_tp_acme *ac, json_t **idents,
				char **csr_b64, struct kh_errbuf *e)
{
	struct pki_subject sub = { NULL, NULL, NULL };
	struct pki_signer sg;
	struct store_tp t;
	struct kh_key_info ki;
	struct kh_errbuf ign = { 0 };
	X509_REQ *csr = NULL;
	struct kh_bytes der = { NULL, 0 };
	const char *key;
	int r = KH_OK;

	memset(&t, 0, sizeof(t));
	memset(&sg, 0, sizeof(sg));
	memset(&ki, 0, sizeof(ki));
	KH_TRY(store_tp_get(s->pki->store, tp, &t, e));
	KH_ENSURE(t.enrollment == KH_ENROLL_ACME,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "trustpoint '%s' does not enroll with ACME", tp));
	KH_TRY(store_tp_acme_get(s->pki->store, tp, ac, e));
	KH_TRY(acme_idents(&t, idents, e));
	if (hsm_key_get(s->hsm, ac->account_key, &ki, &ign) != KH_OK) {
		/* First enrollment (or the key was lost): a new account key,
		 * so a new account. */
		kh_key_info_clear(&ki);
		KH_TRY(svc_key_generate(s, ac->account_key, KH_KEY_P256, &ki, e));
		svc_pki_crash_point(s, "acme.account_key");
		KH_TRY(svc_pki_check_new_key(ac->account_key, &ki, e));
		ac->kid[0] = '\0';
		KH_TRY(store_tp_acme_put(s->pki->store, tp, ac, e));
		log_info("trustpoint '%s': ACME account key '%s' generated", tp, ac->account_key);
	}
	key = t.next_key[0] != '\0' ? t.next_key : t.key;
	KH_TRY(pki_subject_parse(t.subject, t.san, t.fqdn, t.eku, &sub, e));
	KH_TRY(svc_pki_signer(s, key, t.digest, &sg, e));
	KH_TRY(pki_csr_build(&sg, &sub, NULL, &csr, e));
	KH_TRY(pki_csr_der(csr, &der, e));
	*csr_b64 = acme_b64url(der.data, der.len);
	KH_ENSURE(*csr_b64 != NULL, KH_E_RESOURCE_EXHAUSTED);
out:
	kh_bytes_clear(&der);
	X509_REQ_free(csr);
	svc_pki_signer_clear(&sg);
	pki_subject_clear(&sub);
	kh_key_info_clear(&ki);
	store_tp_clear(&t);
	return r;
}

enum kh_err svc_acme_set_eab(struct svc *s, const char *tp, const char *kid, const uint8_t *key, size_t key_len,
			     struct kh_errbuf *e)
{
	struct store_tp_acme ac;
	struct store_tp t;
	int r = KH_OK;

	memset(&ac, 0, sizeof(ac));
	memset(&t, 0, sizeof(t));
	pthread_mutex_lock(&s->pki->lock);
	KH_TRY(store_tp_get(s->pki->store, tp, &t, e));
	KH_ENSURE(t.enrollment == KH_ENROLL_ACME,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "trustpoint '%s' does not enroll with ACME", tp));
	KH_TRY(store_tp_acme_get(s->pki->store, tp, &ac, e));
	kh_strlcpy(ac.eab_kid, kid, sizeof(ac.eab_kid));
	KH_TRY(svc_acme_eab_key(key, key_len, &ac, e));
	KH_TRY(store_tp_acme_put(s->pki->store, tp, &ac, e));
	log_info("trustpoint '%s': ACME external account binding kid '%s' set for the next registration", tp, kid);
out:
	pthread_mutex_unlock(&s->pki->lock);
	store_tp_acme_clear(&ac);
	store_tp_clear(&t);
	return r;
}

enum kh_err svc_acme_renewal_set(struct svc *s, const char *tp, uint32_t failures, const char *error, int64_t next,
				 struct kh_errbuf *e)
{
	struct store_tp_acme ac;
	int r = KH_OK;

	memset(&ac, 0, sizeof(ac));
	pthread_mutex_lock(&s->pki->lock);
	KH_TRY(store_tp_acme_get(s->pki->store, tp, &ac, e));
	ac.renew_failures = failures;
	kh_strlcpy(ac.renew_error, error, sizeof(ac.renew_error));
	ac.renew_next = next;
	KH_TRY(store_tp_acme_put(s->pki->store, tp, &ac, e));
out:
	pthread_mutex_unlock(&s->pki->lock);
	store_tp_acme_clear(&ac);
	return r;
}

/* Remembers the account URL (kid) in the trustpoint's ACME row. */
static enum kh_err acme_save_kid(struct acme_ctx *a, struct kh_errbuf *e)
{
	struct store_tp_acme ac;
	int r = KH_OK;

	memset(&ac, 0, sizeof(ac));
	pthread_mutex_lock(&a->s->pki->lock);
	KH_TRY(store_tp_acme_get(a->s->pki->store, a->tp, &ac, e));
	KH_ENSURE(strcmp(ac.account_key, a->key) == 0,
		  kh_err_set(e, KH_E_ABORTED, "trustpoint '%s' changed during ACME enrollment", a->tp));
	kh_strlcpy(ac.kid, a->kid, sizeof(ac.kid));
	/* The binding served its one use (RFC 8555 §7.3.4): forgotten. */
	ac.eab_kid[0] = '\0';
	explicit_bzero(ac.eab_key, sizeof(ac.eab_key));
	ac.eab_key_len = 0;
	KH_TRY(store_tp_acme_put(a->s->pki->store, a->tp, &ac, e));
out:
	pthread_mutex_unlock(&a->s->pki->lock);
	store_tp_acme_clear(&ac);
	return r;
}

/* externalAccountBinding (RFC 8555 §7.3.4): a JWS over the account's JWK,
 * HS256 with the MAC key the CA gave, added to the newAccount payload. */
static enum kh_err acme_eab(struct acme_ctx *a, json_t *pl, struct kh_errbuf *e)
{
	char *prot_json = NULL, *prot_b64 = NULL, *jwk_b64 = NULL, *input = NULL, *sig = NULL;
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0, n;
	json_t *prot = NULL;
	int r = KH_OK;

	prot = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", a->ac->eab_kid, "url", a->dir.new_account);
	KH_ENSURE(prot != NULL, KH_E_RESOURCE_EXHAUSTED);
	prot_json = json_dumps(prot, JSON_COMPACT);
	KH_ENSURE(prot_json != NULL, KH_E_RESOURCE_EXHAUSTED);
	prot_b64 = acme_b64url((const uint8_t *)prot_json, strlen(prot_json));
	jwk_b64 = acme_b64url((const uint8_t *)a->jwk, strlen(a->jwk));
	KH_ENSURE(prot_b64 != NULL && jwk_b64 != NULL, KH_E_RESOURCE_EXHAUSTED);
	n = strlen(prot_b64) + strlen(jwk_b64) + 2;
	input = malloc(n);
	KH_ENSURE(input != NULL, KH_E_RESOURCE_EXHAUSTED);
	snprintf(input, n, "%s.%s", prot_b64, jwk_b64);
	/* keyholdd computes it: the MAC key never leaves it. */
	KH_ENSURE(EVP_Q_mac(a->s->libctx, "HMAC", NULL, "SHA256", NULL, a->ac->eab_key, a->ac->eab_key_len,
			    (const unsigned char *)input, strlen(input), mac, sizeof(mac), &maclen) != NULL &&
			  maclen == 32,
		  kh_err_set(e, KH_E_INTERNAL, "HMAC-SHA256 for the external account binding failed"));
	sig = acme_b64url(mac, maclen);
	KH_ENSURE(sig != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(json_object_set_new(pl, "externalAccountBinding",
				      json_pack("{s:s, s:s, s:s}", "protected", prot_b64, "payload", jwk_b64, "signature",
						sig)) == 0,
		  KH_E_RESOURCE_EXHAUSTED);
	log_info("trustpoint '%s': ACME newAccount with external account binding kid '%s'", a->tp, a->ac->eab_kid);
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	json_decref(prot);
	free(prot_json);
	free(prot_b64);
	free(jwk_b64);
	free(input);
	free(sig);
	return r;
}

enum kh_err svc_acme_eab_key(const uint8_t *in, size_t n, struct store_tp_acme *a, struct kh_errbuf *e)
{
	char b64[4 * 128];
	uint8_t out[sizeof(b64)];
	size_t i, len = 0, pad;
	int dec;

	while (n > 0 && (in[n - 1] == '\n' || in[n - 1] == '\r' || in[n - 1] == ' '))
		n--;
	while (n > 0 && (in[0] == ' ' || in[0] == '\n'))
		in++, n--;
	if (n == 0 || n > sizeof(b64) - 4)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the external account binding MAC key is empty or too long");
	for (i = 0; i < n; i++) {
		char c = (char)in[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return kh_err_set(e, KH_E_INVALID_ARGUMENT,
					  "the external account binding MAC key is not base64url (RFC 4648 §5) as the CA "
					  "gives it");
		b64[len++] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	if (len % 4 == 1)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the external account binding MAC key is truncated base64url");
	pad = (4 - len % 4) % 4;
	for (i = 0; i < pad; i++)
		b64[len++] = '=';
	dec = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
	if (dec < 0 || (size_t)dec < pad) {
		OPENSSL_cleanse(out, sizeof(out));
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the external account binding MAC key does not decode");
	}
	len = (size_t)dec - pad;
	if (len < 16 || len > sizeof(a->eab_key)) {
		OPENSSL_cleanse(out, sizeof(out));
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "the external account binding MAC key is %zu bytes; 16 to %zu expected", len,
				  sizeof(a->eab_key));
	}
	memcpy(a->eab_key, out, len);
	a->eab_key_len = len;
	OPENSSL_cleanse(out, sizeof(out));
	OPENSSL_cleanse(b64, sizeof(b64));
	return KH_OK;
}

static enum kh_err acme_account(struct acme_ctx *a, const char *contact, struct kh_errbuf *e)
{
	struct acme_resp rs;
	json_t *pl = NULL;
	enum acme_status st = ACME_ST_UNKNOWN;
	int r = KH_OK;

	memset(&rs, 0, sizeof(rs));
	if (a->kid[0] != '\0')
		return KH_OK;
	pl = json_pack("{s:b}", "termsOfServiceAgreed", 1);
	KH_ENSURE(pl != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (contact[0] != '\0')
		KH_ENSURE(json_object_set_new(pl, "contact", json_pack("[s]", contact)) == 0, KH_E_RESOURCE_EXHAUSTED);
	if (a->ac != NULL && a->ac->eab_key_len > 0)
		KH_TRY(acme_eab(a, pl, e));
	KH_TRY(acme_post(a, a->dir.new_account, pl, &rs, e));
	KH_ENSURE(rs.status == 200 || rs.status == 201, acme_fail(a, "newAccount", &rs, e));
	KH_TRY(acme_parse_account(rs.body, rs.len, &st, e));
	KH_ENSURE(st == ACME_ST_VALID, kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME account of '%s' is %s", a->tp,
						  acme_status_name(st)));
	KH_ENSURE(strncmp(rs.location, "https://", 8) == 0,
		  kh_err_set(e, KH_E_UNAVAILABLE, "ACME newAccount: no https:// Location (the account URL)"));
	kh_strlcpy(a->kid, rs.location, sizeof(a->kid));
	KH_TRY(acme_save_kid(a, e));
	log_info("trustpoint '%s': ACME account %s", a->tp, a->kid);
out:
	json_decref(pl);
	acme_resp_clear(&rs);
	return r;
}

/* POST-as-GET of an order until its status leaves want_leave (or the
 * deadline). */
static enum kh_err acme_poll_order(struct acme_ctx *a, const char *url, enum acme_status leave, struct acme_order *o,
				   struct kh_errbuf *e)
{
	struct acme_resp rs;
	unsigned delay = 250;
	int r = KH_OK;

	memset(&rs, 0, sizeof(rs));
	while (o->status == leave || o->status == ACME_ST_PROCESSING) {
		KH_TRY(acme_wait(a, &delay, rs.retry_after, "the order", e));
		acme_resp_clear(&rs);
		KH_TRY(acme_post(a, url, NULL, &rs, e));
		KH_ENSURE(rs.status == 200, acme_fail(a, "order", &rs, e));
		KH_TRY(acme_parse_order(rs.body, rs.len, o, e));
	}
out:
	acme_resp_clear(&rs);
	return r;
}

/* One authorization: answered through the responder, polled to valid. */
static enum kh_err acme_authorize(struct acme_ctx *a, const char *url, struct kh_errbuf *e)
{
	struct acme_resp rs;
	struct acme_authz *az = NULL;
	json_t *empty = NULL;
	char keyauth[ACME_TOKEN_MAX + sizeof(((struct acme_ctx *)0)->thumb) + 2];
	unsigned delay = 250;
	bool published = false;
	/* --acme-webroot: an existing web server answers, not keyholdd. */
	const char *webroot = a->ac != NULL && a->ac->webroot[0] != '\0' ? a->ac->webroot : NULL;
	int r = KH_OK;

	memset(&rs, 0, sizeof(rs));
	az = calloc(1, sizeof(*az));
	KH_ENSURE(az != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(acme_post(a, url, NULL, &rs, e));
	KH_ENSURE(rs.status == 200, acme_fail(a, "authorization", &rs, e));
	KH_TRY(acme_parse_authz(rs.body, rs.len, az, e));
	if (az->status == ACME_ST_VALID)
		goto out;
	KH_ENSURE(az->status == ACME_ST_PENDING,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME authorization for %s '%s' is %s", az->ident_type,
			     az->ident, acme_status_name(az->status)));
	KH_ENSURE(az->has_http01, kh_err_set(e, KH_E_FAILED_PRECONDITION,
					     "ACME server offers no http-01 challenge for %s '%s'", az->ident_type,
					     az->ident));
	snprintf(keyauth, sizeof(keyauth), "%s.%s", az->token, a->thumb);
	if (webroot != NULL)
		KH_TRY(acme_webroot_put(webroot, az->token, keyauth, e));
	else
		KH_TRY(acme_http01_add(a->s, az->token, keyauth, e));
	published = true;
	if (az->chall_status == ACME_ST_PENDING) {
		empty = json_object();
		KH_ENSURE(empty != NULL, KH_E_RESOURCE_EXHAUSTED);
		acme_resp_clear(&rs);
		KH_TRY(acme_post(a, az->chall_url, empty, &rs, e));
		KH_ENSURE(rs.status == 200, acme_fail(a, "challenge", &rs, e));
	}
	log_info("trustpoint '%s': http-01 challenge for %s '%s' started", a->tp, az->ident_type, az->ident);
	for (;;) {
		KH_TRY(acme_wait(a, &delay, rs.retry_after, "validation", e));
		acme_resp_clear(&rs);
		KH_TRY(acme_post(a, url, NULL, &rs, e));
		KH_ENSURE(rs.status == 200, acme_fail(a, "authorization", &rs, e));
		KH_TRY(acme_parse_authz(rs.body, rs.len, az, e));
		if (az->status == ACME_ST_VALID)
			break;
		KH_ENSURE(az->status == ACME_ST_PENDING,
			  kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME validation of %s '%s' failed (%s)%s%s",
				     az->ident_type, az->ident, acme_status_name(az->status), az->error[0] ? ": " : "",
				     az->error));
	}
	log_info("trustpoint '%s': %s '%s' validated", a->tp, az->ident_type, az->ident);
out:
	if (published && webroot != NULL)
		acme_webroot_remove(webroot, az->token);
	else if (published)
		acme_http01_remove(a->s, az->token);
	json_decref(empty);
	acme_resp_clear(&rs);
	free(az);
	return r;
}

static enum kh_err acme_resolve_rollover(struct acme_ctx *a, const char *next, struct kh_errbuf *e) KH_WUR;

enum kh_err svc_acme_order(struct svc *s, const char *tp, char **pem, size_t *pem_len, struct kh_errbuf *e)
{
	const struct svc_config *cfg = s->cfg;
	struct acme_ctx *a = NULL;
	struct store_tp_acme ac;
	struct acme_order *o = NULL;
	struct acme_resp rs;
	json_t *idents = NULL, *pl = NULL;
	char *csr_b64 = NULL;
	char order_url[ACME_URL_MAX + 1];
	size_t i;
	int r = KH_OK;

	memset(&ac, 0, sizeof(ac));
	memset(&rs, 0, sizeof(rs));
	a = calloc(1, sizeof(*a));
	o = calloc(1, sizeof(*o));
	KH_ENSURE(a != NULL && o != NULL, KH_E_RESOURCE_EXHAUSTED);
	a->s = s;
	a->tp = tp;
	a->deadline_us = kh_now_mono_us() + (uint64_t)cfg->acme_timeout_s * 1000000u;
	pthread_mutex_lock(&s->pki->lock);
	r = acme_prepare(s, tp, &ac, &idents, &csr_b64, e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK)
		goto out;
	kh_strlcpy(a->key, ac.account_key, sizeof(a->key));
	kh_strlcpy(a->kid, ac.kid, sizeof(a->kid));
	a->ca_pem = ac.ca_pem;
	a->ac = &ac;
	KH_TRY(acme_jwk(a, e));

	/* Directory, account. */
	KH_TRY(acme_http(a, "GET", ac.directory, NULL, &rs, e));
	KH_ENSURE(rs.status == 200, acme_fail(a, "directory", &rs, e));
	KH_TRY(acme_parse_directory(rs.body, rs.len, &a->dir, e));
	acme_resp_clear(&rs);
	KH_TRY(acme_resolve_rollover(a, ac.account_key_next, e));
	KH_TRY(acme_account(a, ac.contact, e));

	/* Order. */
	pl = json_pack("{s:O}", "identifiers", idents);
	KH_ENSURE(pl != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(acme_post(a, a->dir.new_order, pl, &rs, e));
	if (rs.status >= 400 && rs.status < 500 && a->kid[0] != '\0') {
		/* The remembered account is gone (a new server): once more with
		 * a new account. pebble answers 400, others 401 or 403: the
		 * problem type decides. */
		struct acme_problem p;
		struct kh_errbuf ign = { 0 };

		if (rs.len > 0 && acme_parse_problem(rs.body, rs.len, &p, &ign) == KH_OK &&
		    (strcmp(p.type, "urn:ietf:params:acme:error:accountDoesNotExist") == 0 ||
		     strcmp(p.type, "urn:ietf:params:acme:error:unauthorized") == 0)) {
			log_warn("trustpoint '%s': ACME account %s unknown to the server (%s); registering again", tp,
				 a->kid, p.detail);
			a->kid[0] = '\0';
			acme_resp_clear(&rs);
			KH_TRY(acme_account(a, ac.contact, e));
			KH_TRY(acme_post(a, a->dir.new_order, pl, &rs, e));
		}
	}
	KH_ENSURE(rs.status == 201 || rs.status == 200, acme_fail(a, "newOrder", &rs, e));
	KH_ENSURE(strncmp(rs.location, "https://", 8) == 0,
		  kh_err_set(e, KH_E_UNAVAILABLE, "ACME newOrder: no https:// Location (the order URL)"));
	kh_strlcpy(order_url, rs.location, sizeof(order_url));
	KH_TRY(acme_parse_order(rs.body, rs.len, o, e));
	acme_resp_clear(&rs);
	log_info("trustpoint '%s': ACME order %s (%zu authorization(s), %s)", tp, order_url, o->n_authz,
		 acme_status_name(o->status));

	/* Authorizations, then wait for ready. */
	for (i = 0; i < o->n_authz && o->status == ACME_ST_PENDING; i++)
		KH_TRY(acme_authorize(a, o->authz[i], e));
	if (o->status == ACME_ST_PENDING)
		KH_TRY(acme_poll_order(a, order_url, ACME_ST_PENDING, o, e));
	KH_ENSURE(o->status == ACME_ST_READY || o->status == ACME_ST_VALID,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME order of '%s' is %s%s%s", tp, acme_status_name(o->status),
			     o->error[0] ? ": " : "", o->error));

	/* Finalize, then wait for valid. */
	if (o->status == ACME_ST_READY) {
		json_decref(pl);
		pl = json_pack("{s:s}", "csr", csr_b64);
		KH_ENSURE(pl != NULL, KH_E_RESOURCE_EXHAUSTED);
		KH_TRY(acme_post(a, o->finalize, pl, &rs, e));
		KH_ENSURE(rs.status == 200, acme_fail(a, "finalize", &rs, e));
		KH_TRY(acme_parse_order(rs.body, rs.len, o, e));
		acme_resp_clear(&rs);
		KH_TRY(acme_poll_order(a, order_url, ACME_ST_READY, o, e));
	}
	KH_ENSURE(o->status == ACME_ST_VALID && o->certificate[0] != '\0',
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME order of '%s' is %s%s%s", tp, acme_status_name(o->status),
			     o->error[0] ? ": " : "", o->error));

	/* The chain (application/pem-certificate-chain, RFC 8555 §7.4.2). */
	KH_TRY(acme_post(a, o->certificate, NULL, &rs, e));
	KH_ENSURE(rs.status == 200 && rs.len > 0, acme_fail(a, "certificate", &rs, e));
	log_info("trustpoint '%s': ACME certificate downloaded (%zu bytes)", tp, rs.len);
	svc_pki_crash_point(s, "acme.downloaded");
	*pem = (char *)rs.body;
	*pem_len = rs.len;
	rs.body = NULL;
out:
	acme_resp_clear(&rs);
	json_decref(idents);
	json_decref(pl);
	free(csr_b64);
	store_tp_acme_clear(&ac);
	free(o);
	free(a);
	return r;
}

/* ---- the account: key rollover and deactivation ---- */

/* A name for the next account key of tp after `cur`: TP.acme.N, N one
 * more than cur's (1 after TP.acme), the first unused from there. */
static enum kh_err acme_next_key_name(struct svc *s, const char *tp, const char *cur, char out[KH_NAME_MAX + 1],
				      struct kh_errbuf *e)
{
	struct kh_key_info ki;
	struct kh_errbuf ign = { 0 };
	size_t plen = strlen(tp) + 6;
	uint64_t k = 0;
	unsigned n;

	if (strlen(cur) > plen && strncmp(cur, tp, plen - 6) == 0 && strncmp(cur + plen - 6, ".acme.", 6) == 0 &&
	    kh_parse_u64(cur + plen, 1, 998, &k) != 0)
		k = 0;
	for (n = (unsigned)k + 1; n < 1000; n++) {
		int len = snprintf(out, KH_NAME_MAX + 1, "%s.acme.%u", tp, n);

		if (len < 0 || len > KH_NAME_MAX)
			break;
		memset(&ki, 0, sizeof(ki));
		if (hsm_key_get(s->hsm, out, &ki, &ign) != KH_OK) {
			kh_err_clear(&ign);
			return KH_OK;
		}
		kh_key_info_clear(&ki);
	}
	return kh_err_set(e, KH_E_FAILED_PRECONDITION, "no free name for a new ACME account key of '%s' (%s.acme.N)", tp,
			  tp);
}

/* keyChange (RFC 8555 §7.3.5): the inner JWS, signed by the new key over
 * {account, oldKey}, is the payload of the outer one the old key signs. */
static enum kh_err acme_key_change(struct acme_ctx *a, const char *newkey, struct kh_errbuf *e)
{
	char njwk[256], nthumb[64];
	char *prot_json = NULL, *prot_b64 = NULL, *pl_json = NULL, *pl_b64 = NULL, *input = NULL, *sig = NULL;
	json_t *prot = NULL, *pl = NULL, *inner = NULL;
	struct acme_resp rs;
	size_t n;
	int r = KH_OK;

	memset(&rs, 0, sizeof(rs));
	KH_ENSURE(a->dir.key_change[0] != '\0',
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the ACME server of '%s' offers no key rollover (keyChange)", a->tp));
	KH_TRY(acme_jwk_of(a->s, newkey, njwk, nthumb, e));
	prot = json_pack("{s:s, s:o, s:s}", "alg", "ES256", "jwk", json_loads(njwk, 0, NULL), "url", a->dir.key_change);
	pl = json_pack("{s:s, s:o}", "account", a->kid, "oldKey", json_loads(a->jwk, 0, NULL));
	KH_ENSURE(prot != NULL && pl != NULL, KH_E_RESOURCE_EXHAUSTED);
	prot_json = json_dumps(prot, JSON_COMPACT);
	pl_json = json_dumps(pl, JSON_COMPACT);
	KH_ENSURE(prot_json != NULL && pl_json != NULL, KH_E_RESOURCE_EXHAUSTED);
	prot_b64 = acme_b64url((const uint8_t *)prot_json, strlen(prot_json));
	pl_b64 = acme_b64url((const uint8_t *)pl_json, strlen(pl_json));
	KH_ENSURE(prot_b64 != NULL && pl_b64 != NULL, KH_E_RESOURCE_EXHAUSTED);
	n = strlen(prot_b64) + strlen(pl_b64) + 2;
	input = malloc(n);
	KH_ENSURE(input != NULL, KH_E_RESOURCE_EXHAUSTED);
	snprintf(input, n, "%s.%s", prot_b64, pl_b64);
	KH_TRY(acme_sign_with(a->s, newkey, input, &sig, e));
	inner = json_pack("{s:s, s:s, s:s}", "protected", prot_b64, "payload", pl_b64, "signature", sig);
	KH_ENSURE(inner != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(acme_post(a, a->dir.key_change, inner, &rs, e));
	KH_ENSURE(rs.status == 200, acme_fail(a, "keyChange", &rs, e));
out:
	acme_resp_clear(&rs);
	json_decref(prot);
	json_decref(pl);
	json_decref(inner);
	free(prot_json);
	free(prot_b64);
	free(pl_json);
	free(pl_b64);
	free(input);
	free(sig);
	return r;
}

/* Stores the account key and URL of tp after a change on the server, if
 * the row still names old_key (the PKI lock taken here). */
static enum kh_err acme_store_account(struct svc *s, const char *tp, const char *old_key, const char *key,
				      const char *kid, const char *next, struct kh_errbuf *e)
{
	struct store_tp_acme ac;
	int r = KH_OK;

	memset(&ac, 0, sizeof(ac));
	pthread_mutex_lock(&s->pki->lock);
	KH_TRY(store_tp_acme_get(s->pki->store, tp, &ac, e));
	KH_ENSURE(strcmp(ac.account_key, old_key) == 0,
		  kh_err_set(e, KH_E_ABORTED, "trustpoint '%s' changed during the ACME account change", tp));
	kh_strlcpy(ac.account_key, key, sizeof(ac.account_key));
	kh_strlcpy(ac.kid, kid, sizeof(ac.kid));
	kh_strlcpy(ac.account_key_next, next, sizeof(ac.account_key_next));
	KH_TRY(store_tp_acme_put(s->pki->store, tp, &ac, e));
out:
	pthread_mutex_unlock(&s->pki->lock);
	store_tp_acme_clear(&ac);
	return r;
}

/* A key rollover a crash interrupted (next: its new key): the server is
 * asked which key it binds to the account (newAccount with
 * onlyReturnExisting, RFC 8555 §7.3.1, signed by the new key) and keyhold
 * keeps that one, deleting the other; a->key follows. */
static enum kh_err acme_resolve_rollover(struct acme_ctx *a, const char *next, struct kh_errbuf *e)
{
	struct acme_ctx *b = NULL;
	struct acme_resp rs;
	struct acme_problem p;
	struct kh_key_info ki;
	struct kh_errbuf ign = { 0 };
	json_t *pl = NULL;
	int r = KH_OK;

	memset(&rs, 0, sizeof(rs));
	memset(&ki, 0, sizeof(ki));
	if (next[0] == '\0' || a->kid[0] == '\0')
		return KH_OK;
	if (hsm_key_get(a->s->hsm, next, &ki, &ign) != KH_OK) {
		/* The crash came before the new key existed. */
		log_warn("trustpoint '%s': an interrupted ACME key rollover to '%s' is abandoned (no such key)", a->tp, next);
		return acme_store_account(a->s, a->tp, a->key, a->key, a->kid, "", e);
	}
	b = malloc(sizeof(*b));
	KH_ENSURE(b != NULL, KH_E_RESOURCE_EXHAUSTED);
	*b = *a;
	kh_strlcpy(b->key, next, sizeof(b->key));
	b->kid[0] = '\0';
	KH_TRY(acme_jwk(b, e));
	pl = json_pack("{s:b}", "onlyReturnExisting", 1);
	KH_ENSURE(pl != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(acme_post(b, a->dir.new_account, pl, &rs, e));
	kh_strlcpy(a->nonce, b->nonce, sizeof(a->nonce));
	if (rs.status == 200 && strcmp(rs.location, a->kid) == 0) {
		KH_TRY(acme_store_account(a->s, a->tp, a->key, next, a->kid, "", e));
		log_warn("trustpoint '%s': the interrupted ACME key rollover to '%s' had reached the server; '%s' deleted",
			 a->tp, next, a->key);
		if (svc_key_destroy(a->s, a->key, &ign) != KH_OK)
			log_warn("trustpoint '%s': old ACME account key '%s' not deleted: %s", a->tp, a->key, ign.msg);
		kh_strlcpy(a->key, b->key, sizeof(a->key));
		kh_strlcpy(a->jwk, b->jwk, sizeof(a->jwk));
		kh_strlcpy(a->thumb, b->thumb, sizeof(a->thumb));
	} else if (rs.status >= 400 && rs.status < 500 && rs.len > 0 &&
		   acme_parse_problem(rs.body, rs.len, &p, &ign) == KH_OK &&
		   strcmp(p.type, "urn:ietf:params:acme:error:accountDoesNotExist") == 0) {
		KH_TRY(acme_store_account(a->s, a->tp, a->key, a->key, a->kid, "", e));
		log_warn("trustpoint '%s': the interrupted ACME key rollover to '%s' had not reached the server; '%s' "
			 "deleted",
			 a->tp, next, next);
		if (svc_key_destroy(a->s, next, &ign) != KH_OK)
			log_warn("trustpoint '%s': ACME key '%s' not deleted: %s", a->tp, next, ign.msg);
	} else {
		KH_ENSURE(false, acme_fail(a, "the interrupted key rollover (onlyReturnExisting)", &rs, e));
	}
out:
	json_decref(pl);
	acme_resp_clear(&rs);
	kh_key_info_clear(&ki);
	free(b);
	return r;
}

enum kh_err svc_acme_account(struct svc *s, const char *tp, enum svc_acme_action act, char *detail, size_t n,
			     struct kh_errbuf *e)
{
	struct acme_ctx *a = NULL;
	struct store_tp_acme ac;
	struct store_tp t;
	struct acme_resp rs;
	struct kh_key_info ki;
	struct kh_errbuf ign = { 0 };
	char newkey[KH_NAME_MAX + 1] = "";
	json_t *pl = NULL;
	enum acme_status st = ACME_ST_UNKNOWN;
	bool generated = false;
	int r = KH_OK;

	memset(&ac, 0, sizeof(ac));
	memset(&t, 0, sizeof(t));
	memset(&rs, 0, sizeof(rs));
	memset(&ki, 0, sizeof(ki));
	a = calloc(1, sizeof(*a));
	KH_ENSURE(a != NULL, KH_E_RESOURCE_EXHAUSTED);
	a->s = s;
	a->tp = tp;
	a->deadline_us = kh_now_mono_us() + (uint64_t)s->cfg->acme_timeout_s * 1000000u;
	pthread_mutex_lock(&s->pki->lock);
	r = store_tp_get(s->pki->store, tp, &t, e);
	if (r == KH_OK && t.enrollment != KH_ENROLL_ACME)
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION, "trustpoint '%s' does not enroll with ACME", tp);
	if (r == KH_OK)
		r = store_tp_acme_get(s->pki->store, tp, &ac, e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK)
		goto out;
	KH_ENSURE(ac.kid[0] != '\0', kh_err_set(e, KH_E_FAILED_PRECONDITION,
						"trustpoint '%s' has no ACME account yet (the first enroll registers it)", tp));
	kh_strlcpy(a->key, ac.account_key, sizeof(a->key));
	kh_strlcpy(a->kid, ac.kid, sizeof(a->kid));
	a->ca_pem = ac.ca_pem;
	KH_TRY(acme_jwk(a, e));
	KH_TRY(acme_http(a, "GET", ac.directory, NULL, &rs, e));
	KH_ENSURE(rs.status == 200, acme_fail(a, "directory", &rs, e));
	KH_TRY(acme_parse_directory(rs.body, rs.len, &a->dir, e));
	acme_resp_clear(&rs);
	KH_TRY(acme_resolve_rollover(a, ac.account_key_next, e));

	if (act == SVC_ACME_KEY_ROLLOVER) {
		KH_ENSURE(a->dir.key_change[0] != '\0',
			  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the ACME server of '%s' offers no key rollover (keyChange)",
				     tp));
		KH_TRY(acme_next_key_name(s, tp, a->key, newkey, e));
		KH_TRY(svc_key_generate(s, newkey, KH_KEY_P256, &ki, e));
		generated = true;
		KH_TRY(svc_pki_check_new_key(newkey, &ki, e));
		/* The intent first: a crash from here on is resolved by asking
		 * the server (acme_resolve_rollover). */
		KH_TRY(acme_store_account(s, tp, a->key, a->key, a->kid, newkey, e));
		svc_pki_crash_point(s, "acme.rollover.intent");
		r = acme_key_change(a, newkey, e);
		if (r != KH_OK) {
			if (acme_store_account(s, tp, a->key, a->key, a->kid, "", &ign) != KH_OK)
				log_err("trustpoint '%s': the failed key rollover stays recorded: %s", tp, ign.msg);
			goto out;
		}
		/* The server knows only the new key now. */
		generated = false;
		svc_pki_crash_point(s, "acme.rollover.changed");
		KH_TRY(acme_store_account(s, tp, a->key, newkey, a->kid, "", e));
		if (svc_key_destroy(s, a->key, &ign) != KH_OK)
			log_warn("trustpoint '%s': old ACME account key '%s' not deleted: %s", tp, a->key, ign.msg);
		log_info("trustpoint '%s': ACME account %s rolled over from key '%s' to '%s'", tp, a->kid, a->key, newkey);
		snprintf(detail, n, "account key rolled over from %s to %s (old key deleted)", a->key, newkey);
	} else {
		pl = json_pack("{s:s}", "status", "deactivated");
		KH_ENSURE(pl != NULL, KH_E_RESOURCE_EXHAUSTED);
		KH_TRY(acme_post(a, a->kid, pl, &rs, e));
		KH_ENSURE(rs.status == 200, acme_fail(a, "account deactivation", &rs, e));
		KH_TRY(acme_parse_account(rs.body, rs.len, &st, e));
		KH_ENSURE(st == ACME_ST_DEACTIVATED,
			  kh_err_set(e, KH_E_UNAVAILABLE, "ACME account of '%s' is %s after deactivation", tp,
				     acme_status_name(st)));
		KH_TRY(acme_store_account(s, tp, a->key, a->key, "", "", e));
		log_info("trustpoint '%s': ACME account %s deactivated", tp, a->kid);
		snprintf(detail, n, "account %s deactivated", a->kid);
	}
out:
	if (generated && svc_key_destroy(s, newkey, &ign) != KH_OK)
		log_err("trustpoint '%s': new ACME account key '%s' not deleted: %s", tp, newkey, ign.msg);
	json_decref(pl);
	acme_resp_clear(&rs);
	kh_key_info_clear(&ki);
	store_tp_clear(&t);
	store_tp_acme_clear(&ac);
	free(a);
	return r;
}
