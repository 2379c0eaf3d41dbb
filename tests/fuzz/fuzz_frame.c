/* fuzz_frame.c: the server's frame reader: bytes arrive in chunks (sizes
 * taken from the input), are buffered under the frame cap and split with
 * proto_frame_next exactly as service/net/svc_server.c does, and every whole frame goes
 * through proto_request_decode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	size_t have = 0, off, chunk, cap;

	if (size < 2)
		return 0;
	/* Byte 0: the frame cap (pre-auth or default) and the chunk size. */
	cap = (data[0] & 1) ? PROTO_FRAME_MAX_PREAUTH : PROTO_FRAME_MAX_DEFAULT;
	chunk = (size_t)(data[0] >> 1) + 1;
	data++;
	size--;
	buf = malloc(size);
	if (buf == NULL)
		return 0;
	for (off = 0; off < size;) {
		size_t n = chunk < size - off ? chunk : size - off;

		memcpy(buf + have, data + off, n);
		have += n;
		off += n;
		for (;;) {
			size_t len = 0, need = 0;
			enum kh_err r = proto_frame_next(buf, have, cap, &len, &need);
			struct proto_req req;
			struct kh_errbuf e = { 0 };

			if (r == KH_E_UNAVAILABLE) {
				if (need < PROTO_HDR_LEN || need > cap + PROTO_HDR_LEN)
					abort(); /* the reader would buffer past the cap */
				break;
			}
			if (r != KH_OK)
				goto done; /* the server closes the stream here */
			if (len == 0 || len > cap || len > have - PROTO_HDR_LEN)
				abort();
			if (proto_request_decode(buf + PROTO_HDR_LEN, len, &req, &e) == KH_OK)
				proto_req_clear(&req);
			else if (e.code == KH_OK)
				abort(); /* every refusal carries its reason */
			memmove(buf, buf + PROTO_HDR_LEN + len, have - PROTO_HDR_LEN - len);
			have -= PROTO_HDR_LEN + len;
		}
	}
done:
	free(buf);
	return 0;
}
