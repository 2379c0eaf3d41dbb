/* frame.c: the 4-byte big-endian length header of every frame. */
#include "proto.h"

enum kh_err proto_frame_len(const uint8_t hdr[PROTO_HDR_LEN], size_t cap, size_t *len)
{
	uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];

	if (n == 0 || n > cap)
		return KH_E_INVALID_ARGUMENT;
	*len = n;
	return KH_OK;
}

void proto_frame_hdr(size_t len, uint8_t hdr[PROTO_HDR_LEN])
{
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}

enum kh_err proto_frame_next(const uint8_t *buf, size_t have, size_t cap, size_t *len, size_t *need)
{
	size_t n;

	if (have < PROTO_HDR_LEN) {
		*need = PROTO_HDR_LEN;
		return KH_E_UNAVAILABLE;
	}
	if (proto_frame_len(buf, cap, &n) != KH_OK)
		return KH_E_INVALID_ARGUMENT;
	if (n > have - PROTO_HDR_LEN) {
		*need = PROTO_HDR_LEN + n;
		return KH_E_UNAVAILABLE;
	}
	*len = n;
	return KH_OK;
}
