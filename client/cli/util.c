/* util.c: the CLI's names for the wire enums (lower case, as it always
 * printed them), name and URL checks, numbers and RFC 3339 times. Copies
 * of the service's rules, so that the CLI needs only <keyhold/keyhold.h>. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"

struct cli_enum_name {
	const char *value; /* keyhold.proto's value name */
	const char *name;  /* the CLI's */
};

static const struct cli_enum_name cli_key_types[] = {
	{ "RSA2048", "rsa2048" }, { "RSA3072", "rsa3072" }, { "RSA4096", "rsa4096" },
	{ "P256", "p256" },       { "P384", "p384" },       { "P521", "p521" },
	{ "ED25519", "ed25519" }, { "RSA1024", "rsa1024" }, { "SECP256K1", "secp256k1" },
};

static const struct cli_enum_name cli_digests[] = {
	{ "DIGEST_DEFAULT", "default" }, { "SHA256", "sha256" }, { "SHA384", "sha384" }, { "SHA512", "sha512" },
	{ "SHA1", "sha1" },              { "MD5", "md5" },       { "SHA224", "sha224" },
};

#define CLI_N(a) (sizeof(a) / sizeof((a)[0]))

static const char *cli_by_value(const struct cli_enum_name *t, size_t n, const char *value)
{
	size_t i;

	for (i = 0; value != NULL && i < n; i++)
		if (strcmp(value, t[i].value) == 0)
			return t[i].name;
	return NULL;
}

static const char *cli_by_name(const struct cli_enum_name *t, size_t n, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < n; i++)
		if (strcmp(name, t[i].name) == 0)
			return t[i].value;
	return NULL;
}

const char *cli_key_type_name(const char *enum_name)
{
	return cli_by_value(cli_key_types, CLI_N(cli_key_types), enum_name);
}

const char *cli_key_type_value(const char *name)
{
	return cli_by_name(cli_key_types, CLI_N(cli_key_types), name);
}

const char *cli_digest_name(const char *enum_name)
{
	return cli_by_value(cli_digests, CLI_N(cli_digests), enum_name);
}

const char *cli_digest_value(const char *name)
{
	/* "default" is not a name one can ask for. */
	return cli_by_name(cli_digests + 1, CLI_N(cli_digests) - 1, name);
}

const char *cli_enrollment_name(const char *enum_name)
{
	if (strcmp(enum_name, "ENROLLMENT_SELF") == 0)
		return "self";
	if (strcmp(enum_name, "ENROLLMENT_TERMINAL") == 0)
		return "terminal";
	return NULL;
}

const char *cli_rev_status_name(const char *enum_name)
{
	if (strcmp(enum_name, "REVOCATION_NOT_CHECKED") == 0)
		return "not-checked";
	if (strcmp(enum_name, "REVOCATION_GOOD") == 0)
		return "good";
	if (strcmp(enum_name, "REVOCATION_REVOKED") == 0)
		return "revoked";
	return "unknown";
}

bool cli_name_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (i >= CLI_NAME_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return i > 0;
}

bool cli_principal_valid(const char *s)
{
	static const char *const kinds[] = { "uid:", "gid:", "user:", "group:", "cert:" };
	size_t i, n, k;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > CLI_PRINCIPAL_MAX)
		return false;
	for (k = 0; k < CLI_N(kinds); k++)
		if (strncmp(s, kinds[k], strlen(kinds[k])) == 0)
			break;
	if (k == CLI_N(kinds) || n == strlen(kinds[k]))
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == ',')
			return false;
	return true;
}

bool cli_url_valid(const char *s)
{
	size_t n, i;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0)
		return true;
	/* RFC 5280 §4.2.1.13 and RFC 6960 appendix A.1: CRLs and OCSP over
	 * plain HTTP (the objects are signed); a host is required. */
	if (n > CLI_URL_MAX || strncasecmp(s, "http://", 7) != 0 || n == 7 || s[7] == '/')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
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

static int cli_digits(const char **p, int n, int *out)
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

static int cli_expect(const char **p, const char *set)
{
	if (**p == '\0' || strchr(set, **p) == NULL)
		return -1;
	(*p)++;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t cli_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int cli_time_parse(const char *s, int64_t *out)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p = s;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	bool leap;

	if (s == NULL)
		return -1;
	if (cli_digits(&p, 4, &y) || cli_expect(&p, "-") || cli_digits(&p, 2, &mo) || cli_expect(&p, "-") ||
	    cli_digits(&p, 2, &d) || cli_expect(&p, "Tt ") || cli_digits(&p, 2, &h) || cli_expect(&p, ":") ||
	    cli_digits(&p, 2, &mi) || cli_expect(&p, ":") || cli_digits(&p, 2, &sec))
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
		if (cli_digits(&p, 2, &oh) || cli_expect(&p, ":") || cli_digits(&p, 2, &om) || oh > 23 || om > 59)
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
	*out = cli_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - sign * (oh * 3600 + om * 60);
	return 0;
}

const char *cli_time_str(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0)
		return "-";
	if (n == 0)
		return "";
	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "%lld", (long long)t);
	return buf;
}
