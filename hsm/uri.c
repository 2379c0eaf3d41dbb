/* uri.c: RFC 7512 PKCS#11 URI parsing (the path attributes keyhold uses to
 * find a token or an object). */
#include <string.h>

#include "hsm.h"
#include "kh_util.h"

/* Percent-decodes [s, s+n) into out (outsz bytes). Returns the decoded
 * length, or -1 on a bad escape or overflow. RFC 7512 §2.3: pk11-pchar
 * (unreserved, pk11-path-res-avail, which includes "[" and "]") and
 * pct-encoded only. */
static long uri_pct_decode(const char *s, size_t n, uint8_t *out, size_t outsz)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				return -1;
			hi = kh_hexval(s[i + 1]);
			lo = kh_hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi << 4 | lo;
			i += 2;
		} else if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' ||
			   c == '^' || c == '`' || c == '{' || c == '|' || c == '}' || c == '#') {
			return -1;
		}
		if (o >= outsz)
			return -1;
		out[o++] = (uint8_t)c;
	}
	return (long)o;
}

static enum kh_err uri_text(const char *attr, const char *v, size_t n, char *dst, size_t dstsz,
			    bool *has, struct kh_errbuf *e)
{
	long len;
	int r = KH_OK;

	KH_ENSURE(!*has, kh_err_set(e, KH_E_INVALID_ARGUMENT, "PKCS#11 URI repeats attribute '%s'", attr));
	len = uri_pct_decode(v, n, (uint8_t *)dst, dstsz - 1);
	KH_ENSURE(len >= 0, kh_err_set(e, KH_E_INVALID_ARGUMENT,
				       "PKCS#11 URI attribute '%s' is malformed or longer than %zu bytes", attr,
				       dstsz - 1));
	KH_ENSURE(memchr(dst, '\0', (size_t)len) == NULL,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "PKCS#11 URI attribute '%s' contains NUL", attr));
	dst[len] = '\0';
	*has = true;
out:
	return r;
}

enum kh_err hsm_uri_parse(const char *s, struct hsm_uri *out, struct kh_errbuf *e)
{
	struct hsm_uri u;
	const char *p, *end;
	int r = KH_OK;

	memset(&u, 0, sizeof(u));
	KH_ENSURE(s != NULL && strncmp(s, "pkcs11:", 7) == 0,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "not a PKCS#11 URI (must start with 'pkcs11:')"));
	p = s + 7;
	end = strchr(p, '?');
	if (end == NULL)
		end = p + strlen(p);
	else
		KH_ENSURE(strstr(end, "pin-source=") == NULL && strstr(end, "pin-value=") == NULL,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT,
				     "PKCS#11 URI must not carry a PIN; keyhold reads it from pin_file"));
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *eq;
		size_t alen, vlen;
		const char *v;

		if (semi == NULL)
			semi = end;
		eq = memchr(p, '=', (size_t)(semi - p));
		KH_ENSURE(eq != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT,
						 "PKCS#11 URI attribute '%.*s' has no '='", (int)(semi - p), p));
		alen = (size_t)(eq - p);
		v = eq + 1;
		vlen = (size_t)(semi - v);
#define ATTR_IS(lit) (alen == sizeof(lit) - 1 && memcmp(p, lit, alen) == 0)
		if (ATTR_IS("token")) {
			KH_TRY(uri_text("token", v, vlen, u.token, sizeof(u.token), &u.has_token, e));
		} else if (ATTR_IS("serial")) {
			KH_TRY(uri_text("serial", v, vlen, u.serial, sizeof(u.serial), &u.has_serial, e));
		} else if (ATTR_IS("manufacturer")) {
			KH_TRY(uri_text("manufacturer", v, vlen, u.manufacturer, sizeof(u.manufacturer),
					&u.has_manufacturer, e));
		} else if (ATTR_IS("model")) {
			KH_TRY(uri_text("model", v, vlen, u.model, sizeof(u.model), &u.has_model, e));
		} else if (ATTR_IS("object")) {
			KH_TRY(uri_text("object", v, vlen, u.object, sizeof(u.object), &u.has_object, e));
		} else if (ATTR_IS("type")) {
			bool has = u.type[0] != '\0';

			KH_TRY(uri_text("type", v, vlen, u.type, sizeof(u.type), &has, e));
			KH_ENSURE(strcmp(u.type, "private") == 0 || strcmp(u.type, "public") == 0 ||
					  strcmp(u.type, "cert") == 0 || strcmp(u.type, "secret-key") == 0 ||
					  strcmp(u.type, "data") == 0,
				  kh_err_set(e, KH_E_INVALID_ARGUMENT, "PKCS#11 URI type '%s' is not one of "
					     "private, public, cert, secret-key, data", u.type));
		} else if (ATTR_IS("id")) {
			long n;

			KH_ENSURE(!u.has_id, kh_err_set(e, KH_E_INVALID_ARGUMENT, "PKCS#11 URI repeats 'id'"));
			n = uri_pct_decode(v, vlen, u.id, sizeof(u.id));
			KH_ENSURE(n >= 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "PKCS#11 URI 'id' is malformed"));
			u.id_len = (size_t)n;
			u.has_id = true;
		} else if (ATTR_IS("slot-id")) {
			char num[24];
			bool has = u.has_slot_id;
			uint64_t id;

			KH_TRY(uri_text("slot-id", v, vlen, num, sizeof(num), &has, e));
			KH_ENSURE(kh_parse_u64(num, 0, UINT64_MAX, &id) == 0,
				  kh_err_set(e, KH_E_INVALID_ARGUMENT, "PKCS#11 URI slot-id '%s' is not a number", num));
			u.slot_id = id;
			u.has_slot_id = true;
		} else if (ATTR_IS("pin-value") || ATTR_IS("pin-source")) {
			r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
				       "PKCS#11 URI must not carry a PIN; keyhold reads it from pin_file");
			goto out;
		} else if (ATTR_IS("library-manufacturer") || ATTR_IS("library-description") ||
			   ATTR_IS("library-version") || ATTR_IS("slot-description") ||
			   ATTR_IS("slot-manufacturer")) {
			/* Valid RFC 7512 attributes keyhold does not select on. */
		} else {
			KH_ENSURE(alen > 2 && p[0] == 'x' && p[1] == '-',
				  kh_err_set(e, KH_E_INVALID_ARGUMENT, "unknown PKCS#11 URI attribute '%.*s'",
					     (int)alen, p));
			/* "x-..." vendor attributes are allowed (RFC 7512 §2.3). */
		}
#undef ATTR_IS
		p = semi < end ? semi + 1 : end;
	}
	*out = u;
out:
	return r;
}
