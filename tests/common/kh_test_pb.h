/* kh_test_pb.h: a tiny protobuf wire writer for tests, so that they can
 * build envelopes keyhold's own encoder never produces (unknown methods,
 * malformed bodies) without including generated code. Header-only. */
#ifndef KH_TEST_PB_H
#define KH_TEST_PB_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KH_TEST_PB_CAP 4096

/* Protobuf wire types (protobuf encoding spec, "Message Structure"). */
enum { PBW_VARINT = 0, PBW_I64 = 1, PBW_LEN = 2, PBW_I32 = 5 };

struct pbw {
	uint8_t buf[KH_TEST_PB_CAP];
	size_t len;
};

static inline void pbw_byte(struct pbw *w, uint8_t b)
{
	if (w->len >= sizeof(w->buf))
		abort(); /* a test bug, not a finding */
	w->buf[w->len++] = b;
}

static inline void pbw_varint(struct pbw *w, uint64_t v)
{
	while (v >= 0x80) {
		pbw_byte(w, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	pbw_byte(w, (uint8_t)v);
}

static inline void pbw_tag(struct pbw *w, unsigned field, unsigned wt)
{
	pbw_varint(w, (uint64_t)field << 3 | wt);
}

static inline void pbw_u64(struct pbw *w, unsigned field, uint64_t v)
{
	pbw_tag(w, field, PBW_VARINT);
	pbw_varint(w, v);
}

static inline void pbw_bytes(struct pbw *w, unsigned field, const void *data, size_t len)
{
	size_t i;

	pbw_tag(w, field, PBW_LEN);
	pbw_varint(w, len);
	for (i = 0; i < len; i++)
		pbw_byte(w, ((const uint8_t *)data)[i]);
}

static inline void pbw_str(struct pbw *w, unsigned field, const char *s)
{
	pbw_bytes(w, field, s, strlen(s));
}

/* A keyhold.v1.Request envelope (keyhold.proto: id=1, method=2,
 * deadline_ms=3, body=4). */
static inline void pbw_request(struct pbw *w, uint64_t id, const char *method, const void *body, size_t body_len)
{
	w->len = 0;
	pbw_u64(w, 1, id);
	pbw_str(w, 2, method);
	pbw_bytes(w, 4, body, body_len);
}

/* Finds the last length-delimited field number field in a message and
 * points *data and *dlen at its bytes; 0 when found, -1 otherwise (or when the
 * message does not parse as a flat field list). */
static inline int pbr_bytes(const uint8_t *buf, size_t len, unsigned field, const uint8_t **data, size_t *dlen)
{
	size_t off = 0;
	int found = -1;

	while (off < len) {
		uint64_t key = 0, v = 0;
		unsigned shift = 0;

		do {
			if (off >= len || shift > 63)
				return -1;
			key |= (uint64_t)(buf[off] & 0x7f) << shift;
			shift += 7;
		} while (buf[off++] & 0x80);
		switch (key & 7) {
		case PBW_VARINT:
			do {
				if (off >= len)
					return -1;
			} while (buf[off++] & 0x80);
			break;
		case PBW_I64:
			if (8 > len - off)
				return -1;
			off += 8;
			break;
		case PBW_I32:
			if (4 > len - off)
				return -1;
			off += 4;
			break;
		case PBW_LEN:
			shift = 0;
			do {
				if (off >= len || shift > 63)
					return -1;
				v |= (uint64_t)(buf[off] & 0x7f) << shift;
				shift += 7;
			} while (buf[off++] & 0x80);
			if (v > len - off)
				return -1;
			if ((key >> 3) == field) {
				*data = buf + off;
				*dlen = (size_t)v;
				found = 0;
			}
			off += (size_t)v;
			break;
		default:
			return -1;
		}
	}
	return found;
}

#endif
