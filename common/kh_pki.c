/* kh_pki.c: names of the PKI wire enums, fingerprint normalisation, RFC 3339
 * time parsing and formatting, and the clear functions of kh_pki.h. */
#include "kh_pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *kh_enrollment_name(enum kh_enrollment m)
{
	switch (m) {
	case KH_ENROLL_SELF: return "self";
	case KH_ENROLL_TERMINAL: return "terminal";
	default: return NULL;
	}
}

enum kh_enrollment kh_enrollment_from_name(const char *s)
{
	if (s == NULL)
		return KH_ENROLL_UNSPECIFIED;
	if (strcmp(s, "self") == 0)
		return KH_ENROLL_SELF;
	if (strcmp(s, "terminal") == 0)
		return KH_ENROLL_TERMINAL;
	return KH_ENROLL_UNSPECIFIED;
}

const char *kh_cert_format_name(enum kh_cert_format f)
{
	switch (f) {
	case KH_FMT_PEM: return "pem";
	case KH_FMT_DER: return "der";
	case KH_FMT_PKCS7: return "pkcs7";
	}
	return NULL;
}

bool kh_cert_format_from_name(const char *s, enum kh_cert_format *out)
{
	if (s == NULL)
		return false;
	if (strcasecmp(s, "pem") == 0)
		*out = KH_FMT_PEM;
	else if (strcasecmp(s, "der") == 0)
		*out = KH_FMT_DER;
	else if (strcasecmp(s, "pkcs7") == 0 || strcasecmp(s, "p7b") == 0)
		*out = KH_FMT_PKCS7;
	else
		return false;
	return true;
}

const char *kh_purpose_name(enum kh_purpose p)
{
	switch (p) {
	case KH_PURPOSE_ANY: return "any";
	case KH_PURPOSE_SERVER_AUTH: return "serverAuth";
	case KH_PURPOSE_CLIENT_AUTH: return "clientAuth";
	}
	return NULL;
}

bool kh_purpose_from_name(const char *s, enum kh_purpose *out)
{
	if (s == NULL)
		return false;
	if (strcasecmp(s, "serverAuth") == 0)
		*out = KH_PURPOSE_SERVER_AUTH;
	else if (strcasecmp(s, "clientAuth") == 0)
		*out = KH_PURPOSE_CLIENT_AUTH;
	else if (strcasecmp(s, "any") == 0)
		*out = KH_PURPOSE_ANY;
	else
		return false;
	return true;
}

bool kh_fingerprint_normalize(const char *in, char out[KH_FP_HEX + 1])
{
	size_t n = 0;

	if (in == NULL)
		return false;
	for (; *in != '\0'; in++) {
		char c = *in;

		if (c == ':')
			continue;
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) || n >= KH_FP_HEX)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n == KH_FP_HEX;
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

/* ---- clear ---- */

