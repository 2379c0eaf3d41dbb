/* kp_parse.c: the keyhold: URI and the KEYHOLD KEY reference body (DER),
 * parsed with explicit bounds, no OpenSSL (fuzzed by tests/fuzz). */
#include "kp_parse.h"

#include <string.h>

int kp_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > KP_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into out (capacity cap, NUL-terminated); no NUL
 * may result. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap, size_t *olen)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3 || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == 0 || o >= cap - 1)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	*olen = o;
	return 0;
}

int kp_uri_parse(const char *uri, struct kp_ref *out)
{
	static const char scheme[] = "keyhold:";
	struct kp_ref r;
	const char *p, *end;
	int have_key = 0, have_sock = 0, have_type = 0;

	memset(&r, 0, sizeof(r));
	if (uri == NULL || strncmp(uri, scheme, sizeof(scheme) - 1) != 0)
		return -1;
	p = uri + sizeof(scheme) - 1;
	end = p + strlen(p);
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *attr_end = semi != NULL ? semi : end;
		const char *eq = memchr(p, '=', (size_t)(attr_end - p));
		size_t klen, vlen, olen;

		if (eq == NULL)
			return -1;
		klen = (size_t)(eq - p);
		vlen = (size_t)(attr_end - eq - 1);
		if (klen == 3 && memcmp(p, "key", 3) == 0) {
			if (have_key || pct_decode(eq + 1, vlen, r.name, sizeof(r.name), &olen) != 0 ||
			    !kp_name_ok(r.name, olen))
				return -1;
			have_key = 1;
		} else if (klen == 6 && memcmp(p, "socket", 6) == 0) {
			if (have_sock || vlen == 0 || pct_decode(eq + 1, vlen, r.socket, sizeof(r.socket), &olen) != 0)
				return -1;
			have_sock = 1;
		} else if (klen == 4 && memcmp(p, "type", 4) == 0) {
			static const char *const types[] = { "rsa-pss", "rsa-pss-sha256", "rsa-pss-sha384",
							     "rsa-pss-sha512" };
			char v[16];
			size_t i;

			if (have_type || pct_decode(eq + 1, vlen, v, sizeof(v), &olen) != 0)
				return -1;
			for (i = 0; i < sizeof(types) / sizeof(types[0]) && strcmp(v, types[i]) != 0; i++)
				;
			if (i == sizeof(types) / sizeof(types[0]))
				return -1;
			r.type = (enum kp_ref_type)(KP_REF_RSA_PSS + i);
			have_type = 1;
		} else {
			return -1;
		}
		p = semi != NULL ? semi + 1 : end;
		if (semi != NULL && p == end)
			return -1; /* a trailing ';' */
	}
	if (!have_key)
		return -1;
	*out = r;
	return 0;
}

/* One DER TLV at der[*off..len) of tag; the value's offset and length.
 * Definite lengths of at most 4 bytes, minimal (X.690 §10.1). */
static int der_tlv(const uint8_t *der, size_t len, size_t *off, uint8_t tag, size_t *voff, size_t *vlen)
{
	size_t o = *off, l;

	if (len - o < 2 || der[o] != tag)
		return -1;
	o++;
	l = der[o++];
	if (l & 0x80) {
		size_t nb = l & 0x7f, i;

		if (nb == 0 || nb > 4 || nb > len - o || der[o] == 0)
			return -1;
		for (l = 0, i = 0; i < nb; i++)
			l = (l << 8) | der[o++];
		if (l < 0x80)
			return -1;
	}
	if (l > len - o)
		return -1;
	*voff = o;
	*vlen = l;
	*off = o + l;
	return 0;
}

static int der_str(const uint8_t *der, size_t len, size_t *off, char *out, size_t cap, size_t *olen)
{
	size_t vo, vl;

	if (der_tlv(der, len, off, 0x0c, &vo, &vl) != 0 || vl >= cap || memchr(der + vo, 0, vl) != NULL)
		return -1;
	memcpy(out, der + vo, vl);
	out[vl] = '\0';
	*olen = vl;
	return 0;
}

int kp_ref_parse(const uint8_t *der, size_t len, struct kp_ref *out)
{
	struct kp_ref r;
	size_t off = 0, so, sl, vo, vl, n, start;

	memset(&r, 0, sizeof(r));
	if (der == NULL || len > KP_REF_MAX || der_tlv(der, len, &off, 0x30, &so, &sl) != 0 || off != len)
		return -1;
	off = so;
	if (der_tlv(der, len, &off, 0x02, &vo, &vl) != 0 || vl != 1 || der[vo] != KP_REF_VERSION)
		return -1;
	if (der_str(der, len, &off, r.name, sizeof(r.name), &n) != 0 || !kp_name_ok(r.name, n))
		return -1;
	if (der_str(der, len, &off, r.socket, sizeof(r.socket), &n) != 0)
		return -1;
	start = off;
	if (der_tlv(der, len, &off, 0x30, &vo, &vl) != 0 || off != len)
		return -1;
	r.spki = der + start;
	r.spki_len = off - start;
	*out = r;
	return 0;
}

static int put_tl(uint8_t *buf, size_t cap, size_t *o, uint8_t tag, size_t l)
{
	uint8_t h[6];
	size_t n = 0;

	h[n++] = tag;
	if (l < 0x80) {
		h[n++] = (uint8_t)l;
	} else if (l <= 0xff) {
		h[n++] = 0x81;
		h[n++] = (uint8_t)l;
	} else if (l <= 0xffff) {
		h[n++] = 0x82;
		h[n++] = (uint8_t)(l >> 8);
		h[n++] = (uint8_t)l;
	} else {
		return -1;
	}
	if (n > cap - *o)
		return -1;
	memcpy(buf + *o, h, n);
	*o += n;
	return 0;
}

static size_t tl_len(size_t l)
{
	return l < 0x80 ? 2 : l <= 0xff ? 3 : 4;
}

int kp_ref_encode(const struct kp_ref *r, uint8_t *buf, size_t cap, size_t *len)
{
	size_t nl = strlen(r->name), sl = strlen(r->socket), body, o = 0;

	if (!kp_name_ok(r->name, nl) || sl > KP_SOCKET_MAX || r->spki == NULL || r->spki_len > KP_REF_MAX)
		return -1;
	body = 3 + tl_len(nl) + nl + tl_len(sl) + sl + r->spki_len;
	if (put_tl(buf, cap, &o, 0x30, body) != 0 || tl_len(body) + body > cap)
		return -1;
	buf[o++] = 0x02;
	buf[o++] = 0x01;
	buf[o++] = KP_REF_VERSION;
	if (put_tl(buf, cap, &o, 0x0c, nl) != 0)
		return -1;
	memcpy(buf + o, r->name, nl);
	o += nl;
	if (put_tl(buf, cap, &o, 0x0c, sl) != 0)
		return -1;
	memcpy(buf + o, r->socket, sl);
	o += sl;
	memcpy(buf + o, r->spki, r->spki_len);
	o += r->spki_len;
	*len = o;
	return 0;
}
