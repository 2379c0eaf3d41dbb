/* acme_json.c: the ACME server's JSON documents (RFC 8555 §7.1: directory,
 * account, order, authorization, challenge; RFC 7807 problems) parsed with
 * jansson into fixed structs. Untrusted input: strict, bounded, fuzzed
 * (tests/fuzz/fuzz_acme_json.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kh_util.h"
#include "pki/acme.h"

static const char *const acme_status_names[] = {
	[ACME_ST_UNKNOWN] = "unknown",   [ACME_ST_PENDING] = "pending", [ACME_ST_READY] = "ready",
	[ACME_ST_PROCESSING] = "processing", [ACME_ST_VALID] = "valid", [ACME_ST_INVALID] = "invalid",
	[ACME_ST_DEACTIVATED] = "deactivated", [ACME_ST_EXPIRED] = "expired", [ACME_ST_REVOKED] = "revoked",
};

const char *acme_status_name(enum acme_status st)
{
	return (unsigned)st < sizeof(acme_status_names) / sizeof(acme_status_names[0]) ? acme_status_names[st]
										: "unknown";
}

bool acme_b64url_valid(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		char ch = s[i];

		if (i >= max || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
				  ch == '-' || ch == '_'))
			return false;
	}
	return i > 0;
}

/* Loads one JSON object from b (no duplicate keys, no NUL in strings). */
static enum kh_err acme_load(const uint8_t *b, size_t n, const char *what, json_t **out, struct kh_errbuf *e)
{
	json_error_t je;
	json_t *j;

	if (n == 0 || n > ACME_BODY_MAX)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME %s: %zu bytes of JSON (1 to %d)", what, n,
				  ACME_BODY_MAX);
	j = json_loadb((const char *)b, n, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME %s: not JSON (%.80s at byte %d)", what, je.text,
				  je.position);
	if (!json_is_object(j)) {
		json_decref(j);
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME %s: not a JSON object", what);
	}
	*out = j;
	return KH_OK;
}

/* A string member: absent is "" when optional; present must be a string
 * of printable ASCII shorter than outsz. */
static enum kh_err acme_str(json_t *o, const char *key, bool required, char *out, size_t outsz, const char *what,
			    struct kh_errbuf *e)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	size_t n, i;

	out[0] = '\0';
	if (v == NULL) {
		if (required)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME %s: '%s' is missing", what, key);
		return KH_OK;
	}
	if (!json_is_string(v))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME %s: '%s' is not a string", what, key);
	s = json_string_value(v);
	n = json_string_length(v);
	if (n >= outsz)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME %s: '%s' is longer than %zu bytes", what, key, outsz - 1);
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME %s: '%s' holds a control or non-ASCII byte", what,
					  key);
	memcpy(out, s, n);
	out[n] = '\0';
	return KH_OK;
}

static bool acme_https_url(const char *u)
{
	size_t i;

	if (strncmp(u, "https://", 8) != 0 || u[8] == '\0' || u[8] == '/')
		return false;
	for (i = 0; u[i] != '\0'; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f || u[i] == '"' || u[i] == '\\')
			return false;
	return true;
}

static enum kh_err acme_url(json_t *o, const char *key, bool required, char out[ACME_URL_MAX + 1], const char *what,
			    struct kh_errbuf *e)
{
	enum kh_err r = acme_str(o, key, required, out, ACME_URL_MAX + 1, what, e);

	if (r != KH_OK)
		return r;
	if (required && out[0] == '\0')
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME %s: '%s' is empty", what, key);
	if (out[0] != '\0' && !acme_https_url(out)) {
		out[0] = '\0';
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME %s: '%s' is not an https:// URL", what, key);
	}
	return KH_OK;
}

static enum kh_err acme_status(json_t *o, enum acme_status *out, const char *what, struct kh_errbuf *e)
{
	char s[16];
	size_t i;
	enum kh_err r = acme_str(o, "status", true, s, sizeof(s), what, e);

	if (r != KH_OK)
		return r;
	for (i = 1; i < sizeof(acme_status_names) / sizeof(acme_status_names[0]); i++)
		if (strcmp(s, acme_status_names[i]) == 0) {
			*out = (enum acme_status)i;
			return KH_OK;
		}
	return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME %s: unknown status '%s'", what, s);
}

/* "type: detail" of an embedded problem object (order or challenge error). */
static void acme_embedded_problem(json_t *o, char out[ACME_DETAIL_MAX + 1])
{
	json_t *p = json_object_get(o, "error");
	const char *t, *d;
	size_t i;

	out[0] = '\0';
	if (!json_is_object(p))
		return;
	t = json_string_value(json_object_get(p, "type"));
	d = json_string_value(json_object_get(p, "detail"));
	snprintf(out, ACME_DETAIL_MAX + 1, "%.100s%s%.180s", t != NULL ? t : "error", d != NULL ? ": " : "",
		 d != NULL ? d : "");
	for (i = 0; out[i] != '\0'; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
			out[i] = '?';
}

enum kh_err acme_parse_directory(const uint8_t *b, size_t n, struct acme_directory *out, struct kh_errbuf *e)
{
	struct acme_directory d;
	json_t *j = NULL, *meta;
	int r = KH_OK;

	memset(&d, 0, sizeof(d));
	KH_TRY(acme_load(b, n, "directory", &j, e));
	KH_TRY(acme_url(j, "newNonce", true, d.new_nonce, "directory", e));
	KH_TRY(acme_url(j, "newAccount", true, d.new_account, "directory", e));
	KH_TRY(acme_url(j, "newOrder", true, d.new_order, "directory", e));
	KH_TRY(acme_url(j, "keyChange", false, d.key_change, "directory", e));
	meta = json_object_get(j, "meta");
	KH_ENSURE(meta == NULL || json_is_object(meta),
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME directory: 'meta' is not an object"));
	d.tos = meta != NULL && json_is_string(json_object_get(meta, "termsOfService"));
	*out = d;
out:
	json_decref(j);
	return r;
}

enum kh_err acme_parse_account(const uint8_t *b, size_t n, enum acme_status *out, struct kh_errbuf *e)
{
	json_t *j = NULL;
	enum acme_status st = ACME_ST_UNKNOWN;
	int r = KH_OK;

	KH_TRY(acme_load(b, n, "account", &j, e));
	KH_TRY(acme_status(j, &st, "account", e));
	*out = st;
out:
	json_decref(j);
	return r;
}

enum kh_err acme_parse_order(const uint8_t *b, size_t n, struct acme_order *out, struct kh_errbuf *e)
{
	struct acme_order *o = NULL;
	json_t *j = NULL, *az, *v;
	size_t i;
	int r = KH_OK;

	o = calloc(1, sizeof(*o));
	KH_ENSURE(o != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(acme_load(b, n, "order", &j, e));
	KH_TRY(acme_status(j, &o->status, "order", e));
	KH_TRY(acme_url(j, "finalize", true, o->finalize, "order", e));
	KH_TRY(acme_url(j, "certificate", false, o->certificate, "order", e));
	az = json_object_get(j, "authorizations");
	KH_ENSURE(json_is_array(az), kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME order: 'authorizations' is not an array"));
	KH_ENSURE(json_array_size(az) <= ACME_AUTHZ_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME order: more than %d authorizations", ACME_AUTHZ_MAX));
	json_array_foreach(az, i, v) {
		const char *u = json_string_value(v);

		KH_ENSURE(u != NULL && strlen(u) <= ACME_URL_MAX && acme_https_url(u),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME order: authorization %zu is not an https:// URL", i));
		kh_strlcpy(o->authz[i], u, sizeof(o->authz[i]));
	}
	o->n_authz = json_array_size(az);
	acme_embedded_problem(j, o->error);
	memcpy(out, o, sizeof(*o));
out:
	free(o);
	json_decref(j);
	return r;
}

enum kh_err acme_parse_authz(const uint8_t *b, size_t n, struct acme_authz *out, struct kh_errbuf *e)
{
	struct acme_authz a;
	json_t *j = NULL, *id, *ch, *v;
	size_t i;
	int r = KH_OK;

	memset(&a, 0, sizeof(a));
	KH_TRY(acme_load(b, n, "authorization", &j, e));
	KH_TRY(acme_status(j, &a.status, "authorization", e));
	id = json_object_get(j, "identifier");
	KH_ENSURE(json_is_object(id),
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME authorization: 'identifier' is not an object"));
	KH_TRY(acme_str(id, "type", true, a.ident_type, sizeof(a.ident_type), "identifier", e));
	KH_TRY(acme_str(id, "value", true, a.ident, sizeof(a.ident), "identifier", e));
	ch = json_object_get(j, "challenges");
	KH_ENSURE(json_is_array(ch), kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME authorization: 'challenges' is not an array"));
	KH_ENSURE(json_array_size(ch) <= 16,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME authorization: more than 16 challenges"));
	json_array_foreach(ch, i, v) {
		char type[32];

		KH_ENSURE(json_is_object(v),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME authorization: challenge %zu is not an object", i));
		KH_TRY(acme_str(v, "type", true, type, sizeof(type), "challenge", e));
		if (strcmp(type, "http-01") != 0 || a.has_http01)
			continue;
		KH_TRY(acme_status(v, &a.chall_status, "challenge", e));
		KH_TRY(acme_url(v, "url", true, a.chall_url, "challenge", e));
		KH_TRY(acme_str(v, "token", true, a.token, sizeof(a.token), "challenge", e));
		KH_ENSURE(acme_b64url_valid(a.token, ACME_TOKEN_MAX),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME challenge: the token is not base64url"));
		acme_embedded_problem(v, a.error);
		a.has_http01 = true;
	}
	*out = a;
out:
	json_decref(j);
	return r;
}

enum kh_err acme_parse_problem(const uint8_t *b, size_t n, struct acme_problem *out, struct kh_errbuf *e)
{
	struct acme_problem p;
	json_t *j = NULL, *d;
	const char *s;
	size_t i;
	int r = KH_OK;

	memset(&p, 0, sizeof(p));
	KH_TRY(acme_load(b, n, "problem", &j, e));
	KH_TRY(acme_str(j, "type", false, p.type, sizeof(p.type), "problem", e));
	d = json_object_get(j, "detail");
	s = json_string_value(d);
	if (s != NULL) {
		/* Shown to the administrator: printable, truncated. */
		kh_strlcpy(p.detail, s, sizeof(p.detail));
		for (i = 0; p.detail[i] != '\0'; i++)
			if ((unsigned char)p.detail[i] < 0x20 || (unsigned char)p.detail[i] >= 0x7f)
				p.detail[i] = '?';
	}
	*out = p;
out:
	json_decref(j);
	return r;
}
