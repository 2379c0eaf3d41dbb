/* kh_text: checks and conversions of text that every layer shares, the
 * CLI included: names, principals, URLs, numbers, RFC 3339 times and
 * UTF-8 (RFC 3629) for messages and JSON. No
 * dependency on the rest of common/ (the CLI sees only this and the
 * public <keyhold/keyhold.h>). */
#ifndef KH_TEXT_H
#define KH_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Object names (keys, trustpoints, stores): [A-Za-z0-9._-]{1,64}. */
#define KH_NAME_MAX 64
/* "uid:1001", "gid:50", "user:app", "group:app", "cert:spiffe://x/y". */
#define KH_PRINCIPAL_MAX 255
/* An http:// URL (CRL distribution point, OCSP responder). */
#define KH_PKI_URL_MAX 512

/* Path validation settings (kh_pki.h struct kh_validation). */
#define KH_OID_MAX 63            /* a dotted OID as text */
#define KH_POLICIES_MAX 16       /* OIDs in an initial policy set */
#define KH_FLOOR_RSA_DEFAULT 2048
#define KH_FLOOR_RSA_MIN 512     /* the lowest floor a store may set (PKITS: 1024) */
#define KH_FLOOR_RSA_MAX 16384
#define KH_FLOOR_EC_DEFAULT 256
#define KH_FLOOR_EC_MIN 160
#define KH_FLOOR_EC_MAX 521

/* True when s is a valid object name ([A-Za-z0-9._-]{1,64}). */
bool kh_name_valid(const char *s);
/* True for a principal string the service can parse: kind:value with a
 * known kind and a value of printable ASCII without ',' or blanks. */
bool kh_principal_valid(const char *s);
/* True for "" (clear) and for an http:// URL of printable ASCII that fits;
 * keyhold fetches nothing else (https, ldap and file are refused). */
bool kh_url_valid(const char *s);
/* True for "anyPolicy" and for a dotted OID of at most KH_OID_MAX
 * characters (two arcs at least, first 0-2, no leading zeros). */
bool kh_oid_valid(const char *s);
/* A decimal number in [min, max], the whole string; 0, else -1 (out
 * untouched). */
int kh_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) __attribute__((warn_unused_result));
/* RFC 3339 §5.6 date-time ("2030-01-02T03:04:05Z", offsets, fractions
 * dropped) to Unix seconds: 0, else -1 (out untouched). */
int kh_time_parse_rfc3339(const char *s, int64_t *out) __attribute__((warn_unused_result));
/* Unix seconds as "2030-01-02T03:04:05Z" (digits if out of range). */
void kh_time_format_rfc3339(int64_t t, char *out, size_t outsz);

/* The length (1-4) of the well-formed UTF-8 character at s[0..n) per RFC
 * 3629 §4 (no overlong forms, surrogates or code points past U+10FFFF),
 * or 0 when the bytes there are not one. */
size_t kh_utf8_char(const unsigned char *s, size_t n);
/* The longest prefix of s[0..len) of at most max bytes that does not
 * end inside a character: where to cut a message. */
size_t kh_utf8_cut(const char *s, size_t len, size_t max);
/* Copies the string src into dst (capacity dstsz > 0, always
 * NUL-terminated) as valid UTF-8: each byte that does not start a
 * well-formed character becomes U+FFFD, and a text too long is cut at a
 * character boundary. Every text that reaches Status.message passes
 * here (protobuf's proto3 strings must be valid UTF-8). Returns the
 * length written; dst and src may not overlap. */
size_t kh_utf8_sanitize(char *dst, size_t dstsz, const char *src);
/* For "%.*s": s cut to at most max bytes at a character boundary, where
 * "%.200s" would cut inside one. s is evaluated twice. */
#define KH_UTF8_PREC(s, max) (int)kh_utf8_cut((s), strlen(s), (max)), (s)

#ifdef __cplusplus
}
#endif
#endif
