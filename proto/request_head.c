/* request_head.c: a look at a request envelope's wire bytes before it is
 * unpacked: its id (so a refusal can name it without decoding anything
 * else) and whether its method field holds a NUL byte. protobuf-c copies a
 * string field and NUL-terminates the copy, so "GetStatus\0x" would unpack
 * as "GetStatus" and be served as that: the length is only on the wire. */
#include <string.h>

#include "proto.h"

/* Protobuf wire types (protobuf encoding guide, "Message Structure"). */
#define PROTO_WT_VARINT 0
#define PROTO_WT_I64 1
#define PROTO_WT_LEN 2
#define PROTO_WT_I32 5
/* Request's field numbers (keyhold.proto). */
#define PROTO_REQ_ID 1
#define PROTO_REQ_METHOD 2

static bool proto_head_varint(const uint8_t *buf, size_t len, size_t *off, uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (*off < len && shift < 64) {
		uint8_t b = buf[(*off)++];

		*v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return true;
		shift += 7;
	}
	return false;
}

bool proto_request_head(const uint8_t *buf, size_t len, struct proto_req_head *out)
{
	struct proto_req_head h;
	size_t off = 0;

	memset(&h, 0, sizeof(h));
	memset(out, 0, sizeof(*out));
	while (off < len) {
		uint64_t key, v;

		if (!proto_head_varint(buf, len, &off, &key))
			return false;
		switch (key & 7) {
		case PROTO_WT_VARINT:
			if (!proto_head_varint(buf, len, &off, &v))
				return false;
			if (key >> 3 == PROTO_REQ_ID) {
				h.id = v;
				h.have_id = true;
			}
			break;
		case PROTO_WT_I64:
			if (8 > len - off)
				return false;
			off += 8;
			break;
		case PROTO_WT_I32:
			if (4 > len - off)
				return false;
			off += 4;
			break;
		case PROTO_WT_LEN:
			if (!proto_head_varint(buf, len, &off, &v) || v > len - off)
				return false;
			/* Every occurrence counts (the last one wins when
			 * unpacked, but none may hide a NUL). */
			if (key >> 3 == PROTO_REQ_METHOD) {
				if (memchr(buf + off, 0, (size_t)v) != NULL)
					h.method_nul = true;
				h.method = buf + off;
				h.method_len = (size_t)v;
			}
			off += (size_t)v;
			break;
		default:
			return false; /* groups (3, 4) and unknown wire types */
		}
	}
	*out = h;
	return true;
}
