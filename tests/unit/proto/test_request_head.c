/* test_request_head.c: proto_request_head (the envelope's id and method
 * bytes read from the wire) and the NUL-in-method refusal it gives
 * proto_request_decode: "GetStatus\0x" is not GetStatus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kh_test_pb.h"
#include "proto.h"

/* An envelope whose method field is the len bytes of m (NULs allowed). */
static void envelope(struct pbw *w, uint64_t id, const char *m, size_t len)
{
	w->len = 0;
	pbw_u64(w, 1, id);
	pbw_bytes(w, 2, m, len);
	pbw_bytes(w, 4, "", 0);
}

static void test_head_reads_id_and_method(void **state)
{
	struct pbw w;
	struct proto_req_head h;
	int i;

	(void)state;
	pbw_request(&w, 77, "GetStatus", "", 0);
	assert_true(proto_request_head(w.buf, w.len, &h));
	assert_true(h.have_id);
	assert_true(h.id == 77);
	assert_false(h.method_nul);
	assert_int_equal(h.method_len, 9);
	assert_memory_equal(h.method, "GetStatus", 9);
	/* Other wire types are stepped over. */
	w.len = 0;
	pbw_tag(&w, 9, PBW_I64);
	for (i = 0; i < 8; i++)
		pbw_byte(&w, 0xee);
	pbw_tag(&w, 10, PBW_I32);
	for (i = 0; i < 4; i++)
		pbw_byte(&w, 0xee);
	pbw_u64(&w, 1, 5);
	assert_true(proto_request_head(w.buf, w.len, &h));
	assert_true(h.have_id && h.id == 5);
	assert_null(h.method);
}

static void test_nul_method_refused(void **state)
{
	static const struct {
		const char *m;
		size_t len;
	} cases[] = {
		{ "GetStatus\0x", 11 }, { "GetStatus\0", 10 }, { "\0GetStatus", 10 }, { "Sign\0\0\0\0", 8 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pbw w;
		struct proto_req q;
		struct proto_req_head h;
		struct kh_errbuf e = { 0 };

		envelope(&w, 300 + i, cases[i].m, cases[i].len);
		assert_true(proto_request_head(w.buf, w.len, &h));
		assert_true(h.method_nul);
		assert_int_equal(proto_request_decode(w.buf, w.len, &q, &e), KH_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "NUL"));
		/* Answered with the request's id. */
		assert_true(q.have_id);
		assert_true(q.id == 300 + i);
	}
}

/* A NUL hidden in an earlier method field (the last one wins when
 * unpacked) is refused too. */
static void test_nul_in_repeated_field(void **state)
{
	struct pbw w;
	struct proto_req q;
	struct kh_errbuf e = { 0 };

	(void)state;
	w.len = 0;
	pbw_u64(&w, 1, 8);
	pbw_bytes(&w, 2, "Sign\0", 5);
	pbw_str(&w, 2, "GetStatus");
	pbw_bytes(&w, 4, "", 0);
	assert_int_equal(proto_request_decode(w.buf, w.len, &q, &e), KH_E_INVALID_ARGUMENT);
	/* The plain name is still served. */
	pbw_request(&w, 9, "GetStatus", "", 0);
	kh_err_clear(&e);
	assert_int_equal(proto_request_decode(w.buf, w.len, &q, &e), KH_OK);
	assert_int_equal(q.method, PROTO_M_GET_STATUS);
	proto_req_clear(&q);
}

/* Truncation and bit flips: the scan never reads past the buffer (ASan
 * watches) and agrees with the decoder on what is well-formed enough to
 * carry an id. */
static void test_head_truncation_and_flips(void **state)
{
	struct pbw w;
	size_t n, bit;

	(void)state;
	pbw_request(&w, 123456789, "GetStatus", "\x08\x01", 2);
	for (n = 0; n <= w.len; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		struct proto_req_head h;

		assert_non_null(copy);
		memcpy(copy, w.buf, n);
		if (!proto_request_head(copy, n, &h))
			assert_false(h.have_id);
		free(copy);
	}
	for (bit = 0; bit < w.len * 8; bit++) {
		struct pbw f = w;
		struct proto_req_head h;

		f.buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (proto_request_head(f.buf, f.len, &h) && h.method != NULL) {
			assert_true(h.method >= f.buf && h.method + h.method_len <= f.buf + f.len);
			if (memchr(h.method, 0, h.method_len) != NULL)
				assert_true(h.method_nul);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_reads_id_and_method),
		cmocka_unit_test(test_nul_method_refused),
		cmocka_unit_test(test_nul_in_repeated_field),
		cmocka_unit_test(test_head_truncation_and_flips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
