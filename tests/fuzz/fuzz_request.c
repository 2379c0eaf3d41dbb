/* fuzz_request.c: proto_request_decode on one frame payload: the envelope
 * and, through it, every method's body and its edge validation
 * (proto/validate.c). A request the server accepts must re-encode from
 * the generated message it keeps, decode again to the same method, id and
 * body, and pass validation again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyhold.pb-c.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The request's body packed anew; NULL when out of memory. */
static uint8_t *fuzz_pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *b;

	*len = protobuf_c_message_get_packed_size(m);
	b = malloc(*len + 1);
	if (b != NULL && protobuf_c_message_pack(m, b) != *len)
		abort();
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Keyhold__V1__Request env;
	struct proto_req req, again;
	struct kh_errbuf e = { 0 }, e2 = { 0 };
	uint8_t *body = NULL, *body2 = NULL, *frame = NULL;
	size_t blen = 0, blen2 = 0, flen;

	if (proto_request_decode(data, size, &req, &e) != KH_OK) {
		if (e.code == KH_OK || e.msg[0] == '\0')
			abort();
		return 0;
	}
	if ((unsigned)req.method >= PROTO_M_COUNT || req.msg == NULL ||
	    req.msg->descriptor != proto_method_request(req.method))
		abort();
	body = fuzz_pack(req.msg, &blen);
	if (body == NULL)
		goto out;
	keyhold__v1__request__init(&env);
	env.id = req.id;
	env.method = (char *)(uintptr_t)proto_method_name(req.method);
	env.deadline_ms = req.deadline_ms;
	env.body.data = body;
	env.body.len = blen;
	flen = keyhold__v1__request__get_packed_size(&env);
	frame = malloc(flen + 1);
	if (frame == NULL)
		goto out;
	if (keyhold__v1__request__pack(&env, frame) != flen)
		abort();
	/* What the server accepted, the client can say. */
	if (proto_request_decode(frame, flen, &again, &e2) != KH_OK)
		abort();
	if (again.method != req.method || again.id != req.id || again.deadline_ms != req.deadline_ms)
		abort();
	body2 = fuzz_pack(again.msg, &blen2);
	if (body2 != NULL && (blen2 != blen || memcmp(body, body2, blen) != 0))
		abort();
	proto_req_clear(&again);
out:
	free(body);
	free(body2);
	free(frame);
	proto_req_clear(&req);
	return 0;
}
