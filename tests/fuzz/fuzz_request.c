/* fuzz_request.c: proto_request_decode on one frame payload: the envelope
 * and, through it, every method's body decoder. A decoded request must
 * re-encode, and decode again to the same method and id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

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
	if (proto_request_encode(req.id, req.deadline_ms, req.method, &req.body, &frame, &flen) == KH_OK) {
		struct kh_errbuf e2 = { 0 };

		if (flen < PROTO_HDR_LEN ||
		    proto_request_decode(frame + PROTO_HDR_LEN, flen - PROTO_HDR_LEN, &again, &e2) != KH_OK)
			abort(); /* what the server accepted, the client can say */
		if (again.method != req.method || again.id != req.id)
			abort();
		proto_req_clear(&again);
		free(frame);
	}
	proto_req_clear(&req);
	return 0;
}
