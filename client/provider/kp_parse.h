/* kp_parse.h: the provider's parsers of untrusted text and bytes, free of
 * OpenSSL and libkeyhold so fuzz targets link them alone: the keyhold: URI
 * and the DER body of a KEYHOLD KEY reference file (docs/PROVIDER.md). */
#ifndef KP_PARSE_H
#define KP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define KP_NAME_MAX 64
#define KP_SOCKET_MAX 4096
#define KP_REF_MAX 16384 /* the largest reference file body (DER) taken */
#define KP_REF_VERSION 1

/* What an RSA key is used as (URI attribute "type"): as keyholdd made it,
 * or as an OpenSSL "RSA-PSS" key, unrestricted or restricted to one digest
 * (that digest and MGF1 with it, salt at least its length). */
enum kp_ref_type { KP_REF_AUTO = 0, KP_REF_RSA_PSS, KP_REF_RSA_PSS_SHA256, KP_REF_RSA_PSS_SHA384, KP_REF_RSA_PSS_SHA512 };

struct kp_ref {
	char name[KP_NAME_MAX + 1];
	enum kp_ref_type type; /* KP_REF_AUTO in reference files */
	char socket[KP_SOCKET_MAX + 1]; /* "" when absent */
	const uint8_t *spki;	      /* borrowed from the parsed buffer */
	size_t spki_len;
};

/* "keyhold:key=NAME[;socket=PATH][;type=rsa-pss[-sha256|-sha384|-sha512]]" (attributes in any order, each once,
 * values percent-decoded). 0 and *out filled, or -1 (bad URI). */
int kp_uri_parse(const char *uri, struct kp_ref *out);
/* DER SEQUENCE { version INTEGER (1), name UTF8String, socket UTF8String,
 * spki SubjectPublicKeyInfo }, nothing after it. spki is only checked to
 * be one SEQUENCE TLV here. 0 and *out filled (spki pointing into der), or
 * -1. */
int kp_ref_parse(const uint8_t *der, size_t len, struct kp_ref *out);
/* Encodes r into buf (capacity cap): 0 and *len, or -1 if it does not fit
 * or a field is bad. */
int kp_ref_encode(const struct kp_ref *r, uint8_t *buf, size_t cap, size_t *len);
/* A key name as the service takes them: [A-Za-z0-9._-]{1,64}. */
int kp_name_ok(const char *s, size_t n);

#endif
