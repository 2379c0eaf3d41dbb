/* pki_names.c: the text names of the PKI wire enums and fingerprint
 * normalisation (kh_pki.h). */
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

/* ---- clear ---- */

