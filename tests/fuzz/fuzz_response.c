/* fuzz_response.c: the client's side: libkeyhold decodes whatever the
 * server (or a peer posing as one) sends: the Response envelope, then the
 * body of the method byte 0 names. */
#include <stdint.h>
#include <stdlib.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_resp env;
	union proto_resp_body body;
	struct kh_errbuf e = { 0 };
	enum proto_method m;

	if (size < 1)
		return 0;
	m = (enum proto_method)(data[0] % PROTO_M_COUNT);
	if (proto_response_decode(data + 1, size - 1, &env) != KH_OK)
		return 0;
	if (env.status.code == KH_OK &&
	    proto_response_body_decode(m, env.body, env.body_len, &body, &e) == KH_OK)
		proto_resp_clear(m, &body);
	/* Also the whole input as a body: bodies are where the lists are. */
	if (proto_response_body_decode(m, data + 1, size - 1, &body, &e) == KH_OK)
		proto_resp_clear(m, &body);
	proto_resp_env_clear(&env);
	return 0;
}
