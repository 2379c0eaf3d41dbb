/* kh_test_codec.h: the request-decoder mutation check the validation unit
 * tests share: every truncation and every single-bit flip of an encoded
 * request is either refused with a code and a message or decoded into a
 * request (q.msg, the generated message) the caller's check accepts.
 * Header-only; include after <cmocka.h> and "proto.h". */
#ifndef KH_TEST_CODEC_H
#define KH_TEST_CODEC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Decodes an exact-size heap copy of buf[0..len): a read past the end is
 * an ASan error, and the copy is scribbled over before it is freed so that
 * a decoded request pointing into the input shows. A refusal carries its
 * code and a message, also copied to ep unless it is NULL. */
static inline enum kh_err kh_test_decode_copy_e(const uint8_t *buf, size_t len, struct proto_req *q,
						struct kh_errbuf *ep)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct kh_errbuf e = { 0 };
	enum kh_err r;

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	r = proto_request_decode(copy, len, q, &e);
	memset(copy, 0xa5, len);
	free(copy);
	if (r != KH_OK) {
		assert_int_equal(e.code, r);
		assert_true(e.msg[0] != '\0');
	}
	if (ep != NULL)
		*ep = e;
	return r;
}

static inline enum kh_err kh_test_decode_copy(const uint8_t *buf, size_t len, struct proto_req *q)
{
	return kh_test_decode_copy_e(buf, len, q, NULL);
}

/* One mutated request: valid() checks it if it decodes; counted. */
static inline void kh_test_mutant(const uint8_t *p, size_t len, void (*valid)(const struct proto_req *q),
				  unsigned *ok, unsigned *refused)
{
	struct proto_req q;

	if (kh_test_decode_copy(p, len, &q) == KH_OK) {
		(*ok)++;
		valid(&q);
		proto_req_clear(&q);
	} else {
		(*refused)++;
	}
}

/* Every proper prefix of p[0..plen) and every single-bit flip of it (p is
 * restored after each flip). */
static inline void kh_test_mutate_request(uint8_t *p, size_t plen, void (*valid)(const struct proto_req *q),
					  unsigned *ok, unsigned *refused)
{
	size_t k, bit;

	for (k = 0; k < plen; k++)
		kh_test_mutant(p, k, valid, ok, refused);
	for (bit = 0; bit < 8 * plen; bit++) {
		p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		kh_test_mutant(p, plen, valid, ok, refused);
		p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

#endif
