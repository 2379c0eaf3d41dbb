/* util.c: the CLI's names for the wire enums (lower case, as it always
 * printed them) and its time format; the checks of names, URLs, numbers
 * and times are the service's own (kh_text.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	if (strcmp(enum_name, "ENROLLMENT_URL") == 0)
		return "url";
	if (strcmp(enum_name, "ENROLLMENT_ACME") == 0)
		return "acme";
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
