/* pki_text.c: the text of PKI values (kh_pki.h): enrollment names as the
 * state database stores them, fingerprints as administrators type them,
 * the default path validation settings. */
#include "kh_pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

/* ---- clear ---- */

const char *kh_enrollment_name(enum kh_enrollment m)
{
	switch (m) {
	case KH_ENROLL_SELF: return "self";
	case KH_ENROLL_TERMINAL: return "terminal";
	case KH_ENROLL_URL: return "url";
	case KH_ENROLL_ACME: return "acme";
	default: return NULL;
	}
}

enum kh_enrollment kh_enrollment_from_name(const char *s)
{
	if (s == NULL)
		return KH_ENROLL_UNSPECIFIED;
	if (strcmp(s, "self") == 0)
		return KH_ENROLL_SELF;
	if (strcmp(s, "url") == 0)
		return KH_ENROLL_URL;
	if (strcmp(s, "terminal") == 0)
		return KH_ENROLL_TERMINAL;
	if (strcmp(s, "acme") == 0)
		return KH_ENROLL_ACME;
	return KH_ENROLL_UNSPECIFIED;
}

void kh_validation_default(struct kh_validation *v)
{
	memset(v, 0, sizeof(*v));
	v->min_rsa_bits = KH_FLOOR_RSA_DEFAULT;
	v->min_ec_bits = KH_FLOOR_EC_DEFAULT;
}
