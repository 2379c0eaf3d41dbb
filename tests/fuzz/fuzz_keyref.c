/* fuzz_keyref.c: the OpenSSL provider's parsers of untrusted input
 * (client/provider/kp_parse.c): byte 0 even, the rest is a KEYHOLD KEY
 * reference body (DER), which must survive an encode/parse round trip
 * when it parses; odd, the rest is a keyhold: URI. */
#include <stdlib.h>
#include <string.h>

#include "kp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kp_ref r, r2;

	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		uint8_t *copy = malloc(size - 1 ? size - 1 : 1), *enc;
		size_t len = 0, cap = size + 16;

		if (copy == NULL)
			return 0;
		memcpy(copy, data + 1, size - 1);
		if (kp_ref_parse(copy, size - 1, &r) == 0) {
			if (!kp_name_ok(r.name, strlen(r.name)) || r.spki < copy || r.spki_len > size - 1)
				abort();
			if ((enc = malloc(cap)) != NULL) {
				if (kp_ref_encode(&r, enc, cap, &len) != 0 || kp_ref_parse(enc, len, &r2) != 0 ||
				    strcmp(r.name, r2.name) != 0 || strcmp(r.socket, r2.socket) != 0 ||
				    r.spki_len != r2.spki_len || memcmp(r.spki, r2.spki, r.spki_len) != 0)
					abort();
				free(enc);
			}
		}
		free(copy);
	} else {
		char *uri = malloc(size);

		if (uri == NULL)
			return 0;
		memcpy(uri, data + 1, size - 1);
		uri[size - 1] = '\0';
		if (kp_uri_parse(uri, &r) == 0 && !kp_name_ok(r.name, strlen(r.name)))
			abort();
		free(uri);
	}
	return 0;
}
