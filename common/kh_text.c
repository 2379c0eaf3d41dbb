/* kh_text.c: checks and conversions of text every layer shares, the CLI
 * included (kh_text.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kh_text.h"

bool kh_name_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (i >= KH_NAME_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return i > 0;
}

bool kh_principal_valid(const char *s)
{
	static const char *const kinds[] = { "uid:", "gid:", "user:", "group:", "cert:" };
	size_t i, n, k;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > KH_PRINCIPAL_MAX)
		return false;
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (strncmp(s, kinds[k], strlen(kinds[k])) == 0)
			break;
	if (k == sizeof(kinds) / sizeof(kinds[0]) || n == strlen(kinds[k]))
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == ',')
			return false;
	return true;
}

bool kh_url_valid(const char *s)
{
	size_t n, i;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0)
		return true;
	/* RFC 5280 §4.2.1.13 and RFC 6960 appendix A.1: CRLs and OCSP over
	 * plain HTTP (the objects are signed); a host is required. */
	if (n > KH_PKI_URL_MAX || strncasecmp(s, "http://", 7) != 0 || n == 7 || s[7] == '/')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

int kh_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* ---- RFC 3339 (§5.6 date-time) ---- */

static int kh_digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int kh_expect(const char **p, const char *set)
{
	if (**p == '\0' || strchr(set, **p) == NULL)
		return -1;
	(*p)++;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t kh_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int kh_time_parse_rfc3339(const char *s, int64_t *out)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p = s;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	bool leap;

	if (s == NULL)
		return -1;
	if (kh_digits(&p, 4, &y) || kh_expect(&p, "-") || kh_digits(&p, 2, &mo) || kh_expect(&p, "-") ||
	    kh_digits(&p, 2, &d) || kh_expect(&p, "Tt ") || kh_digits(&p, 2, &h) || kh_expect(&p, ":") ||
	    kh_digits(&p, 2, &mi) || kh_expect(&p, ":") || kh_digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
		if (kh_digits(&p, 2, &oh) || kh_expect(&p, ":") || kh_digits(&p, 2, &om) || oh > 23 || om > 59)
			return -1;
	} else {
		return -1; /* RFC 3339 requires the offset */
	}
	if (*p != '\0')
		return -1;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	/* sec 60 is a leap second: accepted and folded into the next minute. */
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	*out = kh_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - sign * (oh * 3600 + om * 60);
	return 0;
}

void kh_time_format_rfc3339(int64_t t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (outsz == 0)
		return;
	if (gmtime_r(&tt, &tm) == NULL || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outsz, "%lld", (long long)t);
}

bool kh_oid_valid(const char *s)
{
	size_t n, arcs = 0, digits = 0;

	if (s == NULL || strcmp(s, "anyPolicy") == 0)
		return s != NULL;
	n = strlen(s);
	if (n == 0 || n > KH_OID_MAX || s[0] < '0' || s[0] > '2' || s[1] != '.')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (digits == 0)
				return false;
			arcs++;
			digits = 0;
		} else if (*s >= '0' && *s <= '9') {
			if (digits == 0 && *s == '0' && s[1] >= '0' && s[1] <= '9')
				return false; /* no leading zeros: one spelling per OID */
			digits++;
		} else {
			return false;
		}
	}
	return digits > 0 && arcs >= 1;
}

/* ---- UTF-8 (RFC 3629) ---- */

size_t kh_utf8_char(const unsigned char *s, size_t n)
{
	unsigned char c;

	if (n == 0)
		return 0;
	c = s[0];
	if (c < 0x80)
		return 1;
	/* RFC 3629 §4: UTF8-2 = %xC2-DF UTF8-tail; UTF8-3 = %xE0 %xA0-BF
	 * tail / %xE1-EC 2tail / %xED %x80-9F tail / %xEE-EF 2tail; UTF8-4 =
	 * %xF0 %x90-BF 2tail / %xF1-F3 3tail / %xF4 %x80-8F 2tail. */
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

		return n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

		return n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

size_t kh_utf8_cut(const char *s, size_t len, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t off = 0, k;

	if (len <= max)
		return len;
	/* Walk whole characters; an invalid byte counts as one. */
	while (off < max) {
		k = kh_utf8_char(u + off, len - off);
		if (k == 0)
			k = 1;
		if (k > max - off)
			break;
		off += k;
	}
	return off;
}

size_t kh_utf8_sanitize(char *dst, size_t dstsz, const char *src)
{
	static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
	const unsigned char *u = (const unsigned char *)src;
	size_t len = strlen(src), off = 0, w = 0, k;

	if (dstsz == 0)
		return 0;
	while (off < len) {
		const char *from = src + off;

		k = kh_utf8_char(u + off, len - off);
		if (k == 0) {
			from = repl;
			if (3 > dstsz - 1 - w)
				break;
			memcpy(dst + w, from, 3);
			w += 3;
			off++;
			continue;
		}
		if (k > dstsz - 1 - w)
			break;
		memcpy(dst + w, from, k);
		w += k;
		off += k;
	}
	dst[w] = '\0';
	return w;
}
