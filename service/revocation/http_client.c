/* http_client.c: HTTP GET and POST with libcurl for CRL distribution points
 * and OCSP responders (RFC 5280 §4.2.1.13, RFC 6960 appendix A.1). Runs on
 * the calling worker thread, never on the event loop; http:// only,
 * bounded in time (connect and total) and in size. */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "kh_log.h"
#include "kh_util.h"
#include "revocation/revocation.h"
#include "config/config.h"
#include "kh_text.h"

enum kh_err svc_http_global_init(struct kh_errbuf *e)
{
	/* Not thread-safe: once, before the workers start. */
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (rc != CURLE_OK)
		return kh_err_set(e, KH_E_INTERNAL, "libcurl: %s", curl_easy_strerror(rc));
	return KH_OK;
}

void svc_http_global_cleanup(void)
{
	curl_global_cleanup();
}

struct svc_http_buf {
	uint8_t *data;
	size_t len, cap, max;
	bool over;
};

static size_t svc_http_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct svc_http_buf *b = ud;
	size_t n = size * nmemb;

	if (n > b->max - b->len) {
		b->over = true;
		return 0; /* aborts the transfer (CURLE_WRITE_ERROR) */
	}
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 16384;
		uint8_t *nd;

		while (cap - b->len < n)
			cap = cap > b->max / 2 ? b->max : cap * 2;
		nd = realloc(b->data, cap);
		if (nd == NULL)
			return 0;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

/* kh_url_valid, and for a longer URL (a SCEP GET carries its message in
 * the query, RFC 8894 §4.1): a valid URL up to '?' and a query of
 * [A-Za-z0-9%&=._~-] only, at most SVC_HTTP_URL_MAX in all. */
#define SVC_HTTP_URL_MAX (64 * 1024)
static bool svc_http_url_ok(const char *url)
{
	const char *q = strchr(url, '?');
	char base[KH_PKI_URL_MAX + 1];
	size_t n = strlen(url), i;

	if (n <= KH_PKI_URL_MAX || q == NULL)
		return kh_url_valid(url);
	if (n > SVC_HTTP_URL_MAX || (size_t)(q - url) > KH_PKI_URL_MAX)
		return false;
	memcpy(base, url, (size_t)(q - url));
	base[q - url] = '\0';
	if (!kh_url_valid(base))
		return false;
	for (i = 1; q[i] != '\0'; i++)
		if (!isalnum((unsigned char)q[i]) && strchr("%&=._~-", q[i]) == NULL)
			return false;
	return true;
}

enum kh_err svc_http_fetch(const struct svc_config *cfg, const char *url, const char *content_type,
			   const uint8_t *body, size_t body_len, size_t max, struct kh_bytes *out, struct kh_errbuf *e)
{
	struct svc_http_buf b = { NULL, 0, 0, max, false };
	struct curl_slist *hdr = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", ct[128];
	const char *verb = content_type != NULL ? "POST" : "GET";
	CURL *c = NULL;
	CURLcode rc;
	long status = 0;
	uint64_t t0 = kh_now_mono_us();
	int r = KH_OK;

	KH_ENSURE(svc_http_url_ok(url) && url[0] != '\0',
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "'%.*s' is not an http:// URL; keyhold fetches no other", KH_UTF8_PREC(url, 200)));
	c = curl_easy_init();
	KH_ENSURE(c != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "libcurl: cannot start a transfer"));
	curl_easy_setopt(c, CURLOPT_URL, url);
	/* Plain HTTP, also after a redirect: CRLs and OCSP responses are
	 * signed, and fetching them over TLS could need the very revocation
	 * answers being fetched (RFC 5280 §4.2.1.13). */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
	/* Worker threads: no SIGALRM-based DNS timeouts. */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)cfg->rev_connect_timeout_s);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)cfg->rev_timeout_s);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
	/* "" disables the proxy, http_proxy in the environment included. */
	curl_easy_setopt(c, CURLOPT_PROXY, cfg->rev_proxy != NULL ? cfg->rev_proxy : "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "keyhold/" KEYHOLD_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, svc_http_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (content_type != NULL) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		hdr = curl_slist_append(hdr, ct);
		KH_ENSURE(hdr != NULL, KH_E_RESOURCE_EXHAUSTED);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		if (b.over || rc == CURLE_FILESIZE_EXCEEDED)
			r = kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "%s %s: the answer is larger than %zu bytes", verb, url,
				       max);
		else
			r = kh_err_set(e, KH_E_UNAVAILABLE, "%s %s: %s", verb, url,
				       errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	KH_ENSURE(status == 200, kh_err_set(e, KH_E_UNAVAILABLE, "%s %s: HTTP status %ld", verb, url, status));
	KH_ENSURE(b.len > 0, kh_err_set(e, KH_E_UNAVAILABLE, "%s %s: an empty answer", verb, url));
	log_info("%s %s: %zu bytes in %llu ms", verb, url, b.len, (unsigned long long)((kh_now_mono_us() - t0) / 1000));
	out->data = b.data;
	out->len = b.len;
	b.data = NULL;
out:
	if (r != KH_OK)
		log_warn("%s", e->msg);
	free(b.data);
	curl_slist_free_all(hdr);
	if (c != NULL)
		curl_easy_cleanup(c);
	return r;
}
