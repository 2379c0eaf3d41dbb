/* fuzz_request.c: proto_request_decode on one frame payload: the envelope
 * and, through it, every method's body and its validation. A decoded
 * request must re-encode, and decode again to the same method and id: a
 * method still on a legacy struct through the client's encoder, one on
 * generated messages (its legacy body stays empty) from the validated
 * message itself. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyhold.pb-c.h"
#include "proto.h"

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* A frame around r's validated message, packed again. */
static enum kh_err reencode_msg(const struct proto_req *r, uint8_t **out, size_t *len)
{
	Keyhold__V1__Request env;
	size_t n = protobuf_c_message_get_packed_size(r->msg);
	uint8_t *body = malloc(n + 1), *buf;

	/* _init(), not the INIT macro: its string defaults drop const. */
	keyhold__v1__request__init(&env);
	if (body == NULL || protobuf_c_message_pack(r->msg, body) != n)
		abort();
	env.id = r->id;
	env.method = (char *)(uintptr_t)proto_method_name(r->method);
	env.deadline_ms = r->deadline_ms;
	env.body.data = body;
	env.body.len = n;
	n = keyhold__v1__request__get_packed_size(&env);
	buf = malloc(PROTO_HDR_LEN + n + 1);
	if (buf == NULL || keyhold__v1__request__pack(&env, buf + PROTO_HDR_LEN) != n)
		abort();
	free(body);
	*out = buf;
	*len = PROTO_HDR_LEN + n;
	return KH_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_req req, again;
	struct kh_errbuf e = { 0 };
	uint8_t *frame = NULL;
	size_t flen = 0;

	if (proto_request_decode(data, size, &req, &e) != KH_OK) {
		if (e.code == KH_OK || e.msg[0] == '\0')
			abort();
		return 0;
	}
	if ((unsigned)req.method >= PROTO_M_COUNT)
		abort();
	if (req.msg == NULL)
		abort();
	if ((all_zero(&req.body, sizeof(req.body))
		     ? reencode_msg(&req, &frame, &flen)
		     : proto_request_encode(req.id, req.deadline_ms, req.method, &req.body, &frame, &flen)) == KH_OK) {
		struct kh_errbuf e2 = { 0 };

		if (flen < PROTO_HDR_LEN ||
		    proto_request_decode(frame + PROTO_HDR_LEN, flen - PROTO_HDR_LEN, &again, &e2) != KH_OK)
			abort(); /* what the server accepted, a client can say */
		if (again.method != req.method || again.id != req.id)
			abort();
		proto_req_clear(&again);
		free(frame);
	}
	proto_req_clear(&req);
	return 0;
}
