/* fuzz_text.c: the text a client sends that the service quotes back or
 * parses as a list: byte 0 even, the rest through kh_utf8_sanitize and
 * kh_utf8_cut (the output must be well-formed UTF-8 within its buffer,
 * every cut on a character boundary, and sanitizing twice a no-op); odd,
 * the rest is a revocation list (pki_revocation_parse: commas and blanks),
 * whose canonical form must parse to itself; byte 0 == 0xff, the rest is
 * a SAN list (pki_san_parse with the xmppAddr and otherName:OID;UTF8:
 * entries of issue 16) and a subject for --ip-san (pki_cn_ip_san); an
 * error message must be well-formed UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "kh_err.h"
#include "kh_text.h"
#include <openssl/x509v3.h>

#include "pki/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_valid(const char *s, size_t n)
{
	size_t off = 0, k;

	while (off < n) {
		k = kh_utf8_char((const unsigned char *)s + off, n - off);
		if (k == 0)
			abort();
		off += k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1)
		return 0;
	s = malloc(size);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (data[0] == 0xff) {
		GENERAL_NAMES *g = NULL;
		char san[KH_SAN_MAX + 1] = "";
		struct kh_errbuf e = { 0 };

		if (pki_san_parse(s, "none", &g, &e) != KH_OK)
			fuzz_valid(e.msg, strlen(e.msg));
		GENERAL_NAMES_free(g);
		kh_err_clear(&e);
		if (pki_cn_ip_san(s, san, sizeof(san), &e) == KH_OK) {
			if (strlen(san) > KH_SAN_MAX || strncmp(san, "IP:", 3) != 0)
				abort();
		} else {
			fuzz_valid(e.msg, strlen(e.msg));
		}
	} else if ((data[0] & 1) == 0) {
		char out[64], again[64];
		size_t n = kh_utf8_sanitize(out, sizeof(out), s), len = strlen(s), cut, max;

		if (n != strlen(out) || n >= sizeof(out))
			abort();
		fuzz_valid(out, n);
		if (kh_utf8_sanitize(again, sizeof(again), out) != n || memcmp(out, again, n + 1) != 0)
			abort();
		for (max = 0; max <= len && max < 16; max++) {
			cut = kh_utf8_cut(s, len, max);
			if (cut > max || (max > 3 && cut + 3 < max && cut < len))
				abort();
		}
	} else {
		char out[KH_REVOCATION_MAX + 1], again[KH_REVOCATION_MAX + 1];
		struct kh_errbuf e = { 0 };

		if (pki_revocation_parse(s, out, sizeof(out), &e) == KH_OK) {
			kh_err_clear(&e);
			if (pki_revocation_parse(out, again, sizeof(again), &e) != KH_OK || strcmp(out, again) != 0)
				abort();
		} else {
			fuzz_valid(e.msg, strlen(e.msg));
		}
	}
	free(s);
	return 0;
}
