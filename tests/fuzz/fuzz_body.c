/* fuzz_body.c: every request body decoder, one target: byte 0 picks the
 * method, the rest is that method's body, wrapped in a well-formed
 * Request envelope (encoded by hand here: only proto/ sees protobuf-c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum proto_method m;
	const char *name;
	uint8_t *env;
	size_t n = 0, nl;
	struct proto_req req;
	struct kh_errbuf e = { 0 };

	if (size < 1)
		return 0;
	m = (enum proto_method)(data[0] % PROTO_M_COUNT);
	name = proto_method_name(m);
	nl = strlen(name);
	data++;
	size--;
	env = malloc(size + nl + 32);
	if (env == NULL)
		return 0;
	env[n++] = 0x08; /* id = 7 */
	env[n++] = 7;
	env[n++] = 0x12; /* method */
	n += put_varint(env + n, nl);
	memcpy(env + n, name, nl);
	n += nl;
	env[n++] = 0x22; /* body */
	n += put_varint(env + n, size);
	memcpy(env + n, data, size);
	n += size;
	if (proto_request_decode(env, n, &req, &e) == KH_OK) {
		if (req.method != m || req.id != 7)
			abort();
		proto_req_clear(&req);
	} else if (!req.have_id || req.id != 7 || e.code == KH_OK) {
		abort(); /* a bad body is still answerable by id */
	}
	free(env);
	return 0;
}
