/* test_frame.c: the 4-byte frame header (DESIGN §4): zero and above-cap
 * lengths are refused before anything is allocated; the boundaries pass. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto.h"

#define SENTINEL ((size_t)0xdeadbeef)

static enum kh_err frame_len(uint32_t n, size_t cap, size_t *len)
{
	uint8_t hdr[PROTO_HDR_LEN] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };

	*len = SENTINEL;
	return proto_frame_len(hdr, cap, len);
}

static void test_zero_refused(void **state)
{
	size_t len;

	(void)state;
	assert_int_equal(frame_len(0, PROTO_FRAME_MAX_DEFAULT, &len), KH_E_INVALID_ARGUMENT);
	/* Out-params are written only on success (STYLE "Errors"). */
	assert_true(len == SENTINEL);
}

static void test_boundaries(void **state)
{
	static const size_t caps[] = { PROTO_FRAME_MAX_PREAUTH, PROTO_FRAME_MAX_DEFAULT, PROTO_FRAME_MAX_LIMIT, 1 };
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		size_t cap = caps[i];

		assert_int_equal(frame_len(1, cap, &len), KH_OK);
		assert_true(len == 1);
		assert_int_equal(frame_len((uint32_t)cap, cap, &len), KH_OK);
		assert_true(len == cap);
		if (cap > 1) {
			assert_int_equal(frame_len((uint32_t)cap - 1, cap, &len), KH_OK);
			assert_true(len == cap - 1);
		}
		assert_int_equal(frame_len((uint32_t)cap + 1, cap, &len), KH_E_INVALID_ARGUMENT);
		assert_true(len == SENTINEL);
		assert_int_equal(frame_len(0xffffffffu, cap, &len), KH_E_INVALID_ARGUMENT);
		assert_true(len == SENTINEL);
		assert_int_equal(frame_len(0x80000000u, cap, &len), KH_E_INVALID_ARGUMENT);
	}
}

/* Big-endian: each byte lands in its place (a little-endian reader would
 * see 0x01000000 for 00 00 00 01 and refuse it). */
static void test_byte_order(void **state)
{
	uint8_t hdr[PROTO_HDR_LEN] = { 0x00, 0x01, 0x02, 0x03 };
	size_t len = SENTINEL;

	(void)state;
	assert_int_equal(proto_frame_len(hdr, PROTO_FRAME_MAX_DEFAULT, &len), KH_OK);
	assert_true(len == 0x010203);
	hdr[0] = 0x01;
	hdr[1] = hdr[2] = hdr[3] = 0;
	assert_int_equal(proto_frame_len(hdr, PROTO_FRAME_MAX_LIMIT, &len), KH_OK);
	assert_true(len == 0x01000000);
}

static void test_hdr_round_trip(void **state)
{
	static const size_t lens[] = { 1, 2, 255, 256, 4096, 65535, 65536, PROTO_FRAME_MAX_DEFAULT,
				       PROTO_FRAME_MAX_LIMIT };
	size_t i, got;
	uint8_t hdr[PROTO_HDR_LEN];

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		proto_frame_hdr(lens[i], hdr);
		assert_int_equal(proto_frame_len(hdr, PROTO_FRAME_MAX_LIMIT, &got), KH_OK);
		assert_true(got == lens[i]);
	}
	proto_frame_hdr(0x11223344, hdr);
	assert_int_equal(hdr[0], 0x11);
	assert_int_equal(hdr[1], 0x22);
	assert_int_equal(hdr[2], 0x33);
	assert_int_equal(hdr[3], 0x44);
}

/* Every one-bit change of a valid header either stays in [1, cap] or is
 * refused; nothing in between. */
static void test_header_bit_flips(void **state)
{
	uint8_t good[PROTO_HDR_LEN];
	unsigned bit;

	(void)state;
	proto_frame_hdr(300, good);
	for (bit = 0; bit < 8 * PROTO_HDR_LEN; bit++) {
		uint8_t hdr[PROTO_HDR_LEN];
		uint32_t n;
		size_t len = SENTINEL;
		enum kh_err r;

		hdr[0] = good[0];
		hdr[1] = good[1];
		hdr[2] = good[2];
		hdr[3] = good[3];
		hdr[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
		r = proto_frame_len(hdr, PROTO_FRAME_MAX_DEFAULT, &len);
		if (n >= 1 && n <= PROTO_FRAME_MAX_DEFAULT) {
			assert_int_equal(r, KH_OK);
			assert_true(len == n);
		} else {
			assert_int_equal(r, KH_E_INVALID_ARGUMENT);
			assert_true(len == SENTINEL);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zero_refused),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_byte_order),
		cmocka_unit_test(test_hdr_round_trip),
		cmocka_unit_test(test_header_bit_flips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
