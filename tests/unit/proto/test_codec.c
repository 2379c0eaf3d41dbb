/* test_codec.c: request and response envelopes and bodies for every RPC.
 * Valid frames round-trip; every truncation and every single-bit flip of a
 * valid request is refused cleanly or decodes to a valid struct (ASan and
 * LSan in the sanitizer build catch over-reads and leaks: each input is an
 * exact-size heap copy). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "keyhold.pb-c.h"
#include "proto.h"
#include "kh_test_codec.h"
#include "kh_test_pb.h"

/* ---- helpers ---- */

/* The decoded request of a method on generated messages (q.msg). */
#define MSG(q, T) ((const Keyhold__V1__##T *)(const void *)(q).msg)

/* A Sign request's input, whichever arm of the oneof it is. */
static const ProtobufCBinaryData *sign_input(const Keyhold__V1__SignRequest *s)
{
	return s->input_case == KEYHOLD__V1__SIGN_REQUEST__INPUT_PREHASHED ? &s->prehashed : &s->message;
}

static bool sign_prehashed(const Keyhold__V1__SignRequest *s)
{
	return s->input_case == KEYHOLD__V1__SIGN_REQUEST__INPUT_PREHASHED;
}

/* A valid request frame for method m, variant v (several per method). */
struct req_case {
	const char *what;
	enum proto_method m;
	union proto_req_body body;
};

static uint8_t msg_bytes[40];
static uint8_t sha256_bytes[32];
static uint8_t sha512_bytes[64];

static size_t req_cases(struct req_case *out, size_t max)
{
	size_t n = 0;
	unsigned i;

	for (i = 0; i < sizeof(msg_bytes); i++)
		msg_bytes[i] = (uint8_t)(i * 7 + 1);
	for (i = 0; i < sizeof(sha256_bytes); i++)
		sha256_bytes[i] = (uint8_t)(0xa0 + i);
	for (i = 0; i < sizeof(sha512_bytes); i++)
		sha512_bytes[i] = (uint8_t)(0x31 * i);
	memset(out, 0, max * sizeof(*out));
#define ADD(w, mm) (assert_true(n < max), out[n].what = (w), out[n].m = (mm), &out[n++].body)
	ADD("GetStatus", PROTO_M_GET_STATUS);
	ADD("GetCapabilities", PROTO_M_GET_CAPABILITIES);
	{
		union proto_req_body *b = ADD("GenerateKey p256", PROTO_M_GENERATE_KEY);
		memcpy(b->generate.name, "web", 4);
		b->generate.type = KH_KEY_P256;
	}
	{
		union proto_req_body *b = ADD("GenerateKey rsa4096 long name", PROTO_M_GENERATE_KEY);

		memset(b->generate.name, 'k', KH_NAME_MAX);
		b->generate.name[KH_NAME_MAX] = '\0';
		b->generate.type = KH_KEY_RSA4096;
	}
	ADD("ListKeys", PROTO_M_LIST_KEYS);
	memcpy(ADD("GetPublicKey", PROTO_M_GET_PUBLIC_KEY)->name.name, "a.b_c-9", 8);
	memcpy(ADD("DeleteKey", PROTO_M_DELETE_KEY)->name.name, "old-key", 8);
	{
		union proto_req_body *b = ADD("Sign message", PROTO_M_SIGN);

		memcpy(b->sign.key, "web", 4);
		b->sign.digest = KH_DIGEST_SHA384;
		b->sign.data = msg_bytes;
		b->sign.len = sizeof(msg_bytes);
	}
	{
		union proto_req_body *b = ADD("Sign prehashed sha256 PSS", PROTO_M_SIGN);

		memcpy(b->sign.key, "rsa", 4);
		b->sign.digest = KH_DIGEST_SHA256;
		b->sign.padding = KH_PAD_PSS;
		b->sign.prehashed = true;
		b->sign.data = sha256_bytes;
		b->sign.len = sizeof(sha256_bytes);
	}
	{
		union proto_req_body *b = ADD("Sign prehashed sha512", PROTO_M_SIGN);

		memcpy(b->sign.key, "ec", 3);
		b->sign.digest = KH_DIGEST_SHA512;
		b->sign.padding = KH_PAD_PKCS1;
		b->sign.prehashed = true;
		b->sign.data = sha512_bytes;
		b->sign.len = sizeof(sha512_bytes);
	}
	{
		union proto_req_body *b = ADD("Sign empty message", PROTO_M_SIGN);

		memcpy(b->sign.key, "ed", 3);
		b->sign.data = msg_bytes;
		b->sign.len = 0;
	}
#undef ADD
	return n;
}

static void encode_case(const struct req_case *c, uint64_t id, uint32_t deadline, uint8_t **frame, size_t *len)
{
	size_t n = 0;

	assert_int_equal(proto_request_encode(id, deadline, c->m, &c->body, frame, len), KH_OK);
	assert_true(*len > PROTO_HDR_LEN);
	assert_int_equal(proto_frame_len(*frame, PROTO_FRAME_MAX_DEFAULT, &n), KH_OK);
	assert_true(n == *len - PROTO_HDR_LEN);
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* What any successfully decoded request must satisfy: handlers rely on it. */
static void assert_req_valid(const struct proto_req *r)
{
	assert_true(r->have_id);
	assert_true((unsigned)r->method < PROTO_M_COUNT);
	assert_non_null(r->msg);
	assert_true(r->msg->descriptor == proto_method_request(r->method));
	switch (r->method) {
	case PROTO_M_GENERATE_KEY: {
		const Keyhold__V1__GenerateKeyRequest *g = MSG(*r, GenerateKeyRequest);

		assert_true(kh_name_valid(g->name));
		assert_true((int)g->type > KH_KEY_UNSPECIFIED && (int)g->type <= KH_KEY_TYPE_MAX);
		break;
	}
	case PROTO_M_GET_PUBLIC_KEY:
		assert_true(kh_name_valid(MSG(*r, GetPublicKeyRequest)->name));
		break;
	case PROTO_M_DELETE_KEY:
		assert_true(kh_name_valid(MSG(*r, DeleteKeyRequest)->name));
		break;
	case PROTO_M_SIGN: {
		const Keyhold__V1__SignRequest *s = MSG(*r, SignRequest);

		assert_true(kh_name_valid(s->key));
		assert_true((unsigned)s->digest <= KH_DIGEST_MAX);
		assert_true((unsigned)s->padding <= KH_PAD_MAX);
		assert_true(s->input_case == KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE ||
			    s->input_case == KEYHOLD__V1__SIGN_REQUEST__INPUT_PREHASHED);
		if (sign_prehashed(s))
			assert_true(s->prehashed.len >= 16 && s->prehashed.len <= 64);
		break;
	}
	default:
		break;
	}
	/* Methods on generated messages leave the legacy body untouched. */
	assert_true(all_zero(&r->body, sizeof(r->body)));
}

/* What any refused request must satisfy: a code the server can answer
 * with, a message, and nothing left to free. */
static void assert_req_refused(enum kh_err r, const struct proto_req *q, const struct kh_errbuf *e)
{
	assert_true(r == KH_E_INVALID_ARGUMENT || r == KH_E_UNIMPLEMENTED);
	assert_int_equal(e->code, r);
	assert_true(e->msg[0] != '\0');
	if (r == KH_E_UNIMPLEMENTED)
		assert_true(q->have_id);
	if (!q->have_id)
		assert_true(q->id == 0);
	assert_true(all_zero(&q->body, sizeof(q->body)));
}

/* Decodes an exact-size heap copy of buf[0..len) (kh_test_decode_copy_e:
 * the decoded struct must not point into the input). Returns the result
 * and checks the invariants above either way. */
static enum kh_err decode_copy_e(const uint8_t *buf, size_t len, struct proto_req *out, struct kh_errbuf *ep)
{
	struct kh_errbuf e = { 0 };
	enum kh_err r = kh_test_decode_copy_e(buf, len, out, &e);

	if (r == KH_OK)
		assert_req_valid(out);
	else
		assert_req_refused(r, out, &e);
	if (ep != NULL)
		*ep = e;
	return r;
}

static enum kh_err decode_copy(const uint8_t *buf, size_t len, struct proto_req *out)
{
	return decode_copy_e(buf, len, out, NULL);
}

/* ---- the method table ---- */

static void test_check_methods(void **state)
{
	struct kh_errbuf e = { 0 };
	int m;

	(void)state;
	assert_int_equal(proto_check_methods(&e), KH_OK);
	assert_int_equal(e.code, KH_OK);
	for (m = 0; m < PROTO_M_COUNT; m++) {
		const char *name = proto_method_name((enum proto_method)m);

		assert_non_null(name);
		assert_int_equal(proto_method_lookup(name), m);
	}
	assert_null(proto_method_name(PROTO_M_COUNT));
	assert_null(proto_method_name((enum proto_method)-1));
	assert_int_equal(proto_method_lookup("Frobnicate"), -1);
	assert_int_equal(proto_method_lookup("sign"), -1); /* names are case-sensitive */
	assert_int_equal(proto_method_lookup(""), -1);
	assert_int_equal(proto_method_lookup(NULL), -1);
	assert_string_equal(proto_method_name(PROTO_M_SIGN), "Sign");
	assert_string_equal(proto_method_name(PROTO_M_GET_STATUS), "GetStatus");
}

/* ---- requests ---- */

static void test_request_round_trip(void **state)
{
	struct req_case cases[16];
	size_t n = req_cases(cases, 16), i;

	(void)state;
	for (i = 0; i < n; i++) {
		const struct req_case *c = &cases[i];
		uint8_t *frame = NULL;
		size_t len = 0;
		struct proto_req q;
		uint64_t id = 0x0123456789abcdefull + i;

		encode_case(c, id, 1500, &frame, &len);
		assert_int_equal(decode_copy(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &q), KH_OK);
		assert_true(q.id == id);
		assert_int_equal(q.deadline_ms, 1500);
		assert_int_equal(q.method, c->m);
		switch (c->m) {
		case PROTO_M_GENERATE_KEY:
			assert_string_equal(MSG(q, GenerateKeyRequest)->name, c->body.generate.name);
			assert_int_equal(MSG(q, GenerateKeyRequest)->type, c->body.generate.type);
			break;
		case PROTO_M_GET_PUBLIC_KEY:
			assert_string_equal(MSG(q, GetPublicKeyRequest)->name, c->body.name.name);
			break;
		case PROTO_M_DELETE_KEY:
			assert_string_equal(MSG(q, DeleteKeyRequest)->name, c->body.name.name);
			break;
		case PROTO_M_SIGN: {
			const Keyhold__V1__SignRequest *s = MSG(q, SignRequest);

			assert_string_equal(s->key, c->body.sign.key);
			assert_int_equal(s->digest, c->body.sign.digest);
			assert_int_equal(s->padding, c->body.sign.padding);
			assert_int_equal(sign_prehashed(s), c->body.sign.prehashed);
			assert_true(sign_input(s)->len == c->body.sign.len);
			if (c->body.sign.len > 0)
				assert_memory_equal(sign_input(s)->data, c->body.sign.data, c->body.sign.len);
			break;
		}
		default:
			break;
		}
		proto_req_clear(&q);
		free(frame);
	}
}

static void test_request_encode_bad_method(void **state)
{
	union proto_req_body b;
	uint8_t *frame = NULL;
	size_t len = 0;

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(proto_request_encode(1, 0, PROTO_M_COUNT, &b, &frame, &len), KH_E_INVALID_ARGUMENT);
	assert_null(frame);
}

/* Every prefix of every valid payload (0 .. len-1 bytes). */
static void test_request_truncations(void **state)
{
	struct req_case cases[16];
	size_t n = req_cases(cases, 16), i, k;
	unsigned ok = 0, refused = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		uint8_t *frame = NULL;
		size_t len = 0;

		encode_case(&cases[i], 1000 + i, 0, &frame, &len);
		for (k = 0; k < len - PROTO_HDR_LEN; k++) {
			struct proto_req q;

			if (decode_copy(frame + PROTO_HDR_LEN, k, &q) == KH_OK) {
				ok++;
				proto_req_clear(&q);
			} else {
				refused++;
			}
		}
		free(frame);
	}
	/* Not vacuous: most prefixes cut a field in half. */
	assert_true(refused > ok);
	print_message("truncations: %u refused, %u decoded to a valid request\n", refused, ok);
}

/* Every single-bit flip of every valid payload. */
static void test_request_bit_flips(void **state)
{
	struct req_case cases[16];
	size_t n = req_cases(cases, 16), i, bit;
	unsigned ok = 0, refused = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		uint8_t *frame = NULL, *p;
		size_t len = 0, plen;

		encode_case(&cases[i], 77 + i, 250, &frame, &len);
		p = frame + PROTO_HDR_LEN;
		plen = len - PROTO_HDR_LEN;
		for (bit = 0; bit < 8 * plen; bit++) {
			struct proto_req q;

			p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (decode_copy(p, plen, &q) == KH_OK) {
				ok++;
				proto_req_clear(&q);
			} else {
				refused++;
			}
			p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		free(frame);
	}
	assert_true(refused > 0 && ok > 0);
	print_message("bit flips: %u refused, %u decoded to a valid request\n", refused, ok);
}

/* The same inside the envelope: every truncation and bit flip of each
 * method's body, wrapped in a valid envelope, so that the body decoders
 * meet them (a cut envelope mostly stops at the envelope). */
static void test_body_mutations(void **state)
{
	struct req_case cases[16];
	size_t n = req_cases(cases, 16), i, k;
	unsigned ok = 0, refused = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		uint8_t *frame = NULL, body[512];
		const uint8_t *b = NULL;
		size_t len = 0, blen = 0;
		const char *method = proto_method_name(cases[i].m);

		encode_case(&cases[i], 1, 0, &frame, &len);
		if (pbr_bytes(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, 4, &b, &blen) != 0) {
			/* Empty bodies (GetStatus, ...) are not sent at all. */
			assert_true(cases[i].m == PROTO_M_GET_STATUS || cases[i].m == PROTO_M_GET_CAPABILITIES ||
				    cases[i].m == PROTO_M_LIST_KEYS);
			free(frame);
			continue;
		}
		assert_true(blen <= sizeof(body));
		memcpy(body, b, blen);
		free(frame);
		for (k = 0; k < blen + 8 * blen; k++) {
			struct pbw w;
			struct proto_req q;
			size_t bl = k < blen ? k : blen, bit = k - blen;

			if (k >= blen)
				body[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			pbw_request(&w, 900 + k, method, body, bl);
			if (decode_copy(w.buf, w.len, &q) == KH_OK) {
				ok++;
				proto_req_clear(&q);
			} else {
				refused++;
				assert_true(q.have_id);
				assert_true(q.id == 900 + k);
			}
			if (k >= blen)
				body[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
	}
	assert_true(refused > 0 && ok > 0);
	print_message("body mutations: %u refused, %u decoded to a valid request\n", refused, ok);
}

static void test_unknown_method(void **state)
{
	struct pbw w;
	struct proto_req q;
	struct kh_errbuf e = { 0 };
	static const char *const names[] = { "Frobnicate", "sign", "GetStatus ", "keyhold.v1.KeyHold/Sign", "" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		kh_err_clear(&e);
		pbw_request(&w, 4242 + i, names[i], "", 0);
		assert_int_equal(proto_request_decode(w.buf, w.len, &q, &e), KH_E_UNIMPLEMENTED);
		assert_true(q.have_id);
		assert_true(q.id == 4242 + i);
		assert_int_equal(e.code, KH_E_UNIMPLEMENTED);
		assert_non_null(strstr(e.msg, "unknown method"));
	}
	/* A very long method name is quoted, not copied whole. */
	{
		char big[1000];

		memset(big, 'M', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		kh_err_clear(&e);
		pbw_request(&w, 9, big, "", 0);
		assert_int_equal(proto_request_decode(w.buf, w.len, &q, &e), KH_E_UNIMPLEMENTED);
		assert_true(strlen(e.msg) < 200);
	}
}

static void test_malformed_envelope(void **state)
{
	static const uint8_t garbage[][8] = {
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, /* endless varint / bad wire type */
		{ 0x12, 0x7f, 'S', 'i', 'g', 'n', 0, 0 },           /* method length past the end */
		{ 0x0f, 0, 0, 0, 0, 0, 0, 0 },                      /* wire type 7 */
		{ 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80 }, /* id varint never ends */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		struct proto_req q;
		struct kh_errbuf e = { 0 };

		assert_int_equal(proto_request_decode(garbage[i], sizeof(garbage[i]), &q, &e), KH_E_INVALID_ARGUMENT);
		assert_false(q.have_id);
		assert_true(q.id == 0);
		assert_non_null(strstr(e.msg, "malformed"));
	}
	/* The method field is a string: invalid UTF-8 is malformed in proto3. */
	{
		struct pbw w;
		struct proto_req q;
		struct kh_errbuf e = { 0 };
		enum kh_err r;

		pbw_request(&w, 5, "Sign\xff\xfe", "", 0);
		r = proto_request_decode(w.buf, w.len, &q, &e);
		assert_true(r == KH_E_INVALID_ARGUMENT || r == KH_E_UNIMPLEMENTED);
	}
}

/* A valid envelope naming a real method whose body does not parse. */
static void test_malformed_body(void **state)
{
	static const uint8_t bad[] = { 0xff, 0xff, 0x01 };
	int m;

	(void)state;
	for (m = 0; m < PROTO_M_COUNT; m++) {
		struct pbw w;
		struct proto_req q;
		struct kh_errbuf e = { 0 };

		pbw_request(&w, 500 + (unsigned)m, proto_method_name((enum proto_method)m), bad, sizeof(bad));
		assert_int_equal(proto_request_decode(w.buf, w.len, &q, &e), KH_E_INVALID_ARGUMENT);
		assert_true(q.have_id);
		assert_true(q.id == 500 + (unsigned)m);
		assert_non_null(strstr(e.msg, proto_method_name((enum proto_method)m)));
		assert_true(all_zero(&q.body, sizeof(q.body)));
	}
}

/* Decodes a hand-built body for method and expects code; returns the
 * request (cleared by the caller when OK). */
static enum kh_err decode_body(const char *method, const struct pbw *body, struct proto_req *q,
			       struct kh_errbuf *e)
{
	struct pbw w;

	kh_err_clear(e);
	pbw_request(&w, 31, method, body->buf, body->len);
	return decode_copy_e(w.buf, w.len, q, e);
}

static void test_generate_validation(void **state)
{
	struct pbw b;
	struct proto_req q;
	struct kh_errbuf e;
	char long_name[KH_NAME_MAX + 2];

	(void)state;
	memset(long_name, 'x', KH_NAME_MAX + 1);
	long_name[KH_NAME_MAX + 1] = '\0';

	b.len = 0;
	pbw_str(&b, 1, "web");
	pbw_u64(&b, 2, KH_KEY_ED25519);
	assert_int_equal(decode_body("GenerateKey", &b, &q, &e), KH_OK);
	assert_string_equal(MSG(q, GenerateKeyRequest)->name, "web");
	assert_int_equal(MSG(q, GenerateKeyRequest)->type, KH_KEY_ED25519);
	proto_req_clear(&q);

	b.len = 0; /* type missing (0 = unspecified) */
	pbw_str(&b, 1, "web");
	assert_int_equal(decode_body("GenerateKey", &b, &q, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "key type"));

	b.len = 0;
	pbw_str(&b, 1, "web");
	pbw_u64(&b, 2, KH_KEY_TYPE_MAX + 1);
	assert_int_equal(decode_body("GenerateKey", &b, &q, &e), KH_E_INVALID_ARGUMENT);

	b.len = 0; /* a negative enum is sent as a 10-byte varint */
	pbw_str(&b, 1, "web");
	pbw_u64(&b, 2, (uint64_t)(int64_t)-1);
	assert_int_equal(decode_body("GenerateKey", &b, &q, &e), KH_E_INVALID_ARGUMENT);

	b.len = 0;
	pbw_u64(&b, 2, KH_KEY_P256); /* name missing */
	assert_int_equal(decode_body("GenerateKey", &b, &q, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "name"));

	b.len = 0;
	pbw_str(&b, 1, long_name);
	pbw_u64(&b, 2, KH_KEY_P256);
	assert_int_equal(decode_body("GenerateKey", &b, &q, &e), KH_E_INVALID_ARGUMENT);

	b.len = 0;
	pbw_str(&b, 1, "../etc");
	pbw_u64(&b, 2, KH_KEY_P256);
	assert_int_equal(decode_body("GenerateKey", &b, &q, &e), KH_E_INVALID_ARGUMENT);

	/* An embedded NUL: protobuf-c hands strings over NUL-terminated and
	 * drops their length, so the name is cut at the NUL. What the
	 * handler acts on (and logs) is that valid prefix, never the bytes
	 * after it. */
	b.len = 0;
	pbw_bytes(&b, 1, "ok\0../evil", 10);
	pbw_u64(&b, 2, KH_KEY_P256);
	assert_int_equal(decode_body("GenerateKey", &b, &q, &e), KH_OK);
	assert_string_equal(MSG(q, GenerateKeyRequest)->name, "ok");
	proto_req_clear(&q);
	b.len = 0;
	pbw_bytes(&b, 1, "\0ok", 3);
	pbw_u64(&b, 2, KH_KEY_P256);
	assert_int_equal(decode_body("GenerateKey", &b, &q, &e), KH_E_INVALID_ARGUMENT);

	b.len = 0; /* unknown fields are skipped (proto3) */
	pbw_str(&b, 1, "web");
	pbw_u64(&b, 2, KH_KEY_P384);
	pbw_u64(&b, 99, 12345);
	pbw_str(&b, 100, "future");
	assert_int_equal(decode_body("GenerateKey", &b, &q, &e), KH_OK);
	assert_int_equal(MSG(q, GenerateKeyRequest)->type, KH_KEY_P384);
	proto_req_clear(&q);
}

static void test_name_validation(void **state)
{
	static const char *const methods[] = { "GetPublicKey", "DeleteKey" };
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct pbw b;
		struct proto_req q;
		struct kh_errbuf e;

		b.len = 0;
		pbw_str(&b, 1, "Key_1.a-b");
		assert_int_equal(decode_body(methods[i], &b, &q, &e), KH_OK);
		/* GetPublicKeyRequest and DeleteKeyRequest both carry name as field 1. */
		assert_string_equal(proto_field_str(q.msg, "name"), "Key_1.a-b");
		proto_req_clear(&q);

		b.len = 0;
		assert_int_equal(decode_body(methods[i], &b, &q, &e), KH_E_INVALID_ARGUMENT);
		b.len = 0;
		pbw_str(&b, 1, "bad/name");
		assert_int_equal(decode_body(methods[i], &b, &q, &e), KH_E_INVALID_ARGUMENT);
		b.len = 0;
		pbw_str(&b, 1, "sp ace");
		assert_int_equal(decode_body(methods[i], &b, &q, &e), KH_E_INVALID_ARGUMENT);
	}
}

static void test_sign_validation(void **state)
{
	uint8_t d[65];
	struct pbw b;
	struct proto_req q;
	struct kh_errbuf e;

	(void)state;
	memset(d, 0x5c, sizeof(d));

	b.len = 0; /* neither message nor prehashed */
	pbw_str(&b, 1, "k");
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "message or a prehashed"));

	b.len = 0;
	pbw_str(&b, 1, "k");
	pbw_u64(&b, 2, KH_DIGEST_MAX + 1);
	pbw_bytes(&b, 4, "m", 1);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "digest"));

	b.len = 0;
	pbw_str(&b, 1, "k");
	pbw_u64(&b, 3, KH_PAD_MAX + 1);
	pbw_bytes(&b, 4, "m", 1);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "padding"));

	b.len = 0;
	pbw_str(&b, 1, "no/slash");
	pbw_bytes(&b, 4, "m", 1);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_E_INVALID_ARGUMENT);

	/* Prehashed digests are 16 (MD5) to 64 (SHA-512) bytes. */
	b.len = 0;
	pbw_str(&b, 1, "k");
	pbw_bytes(&b, 5, d, 65);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_E_INVALID_ARGUMENT);
	b.len = 0;
	pbw_str(&b, 1, "k");
	pbw_bytes(&b, 5, d, 0);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_E_INVALID_ARGUMENT);
	b.len = 0;
	pbw_str(&b, 1, "k");
	pbw_bytes(&b, 5, d, 15);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_E_INVALID_ARGUMENT);
	b.len = 0;
	pbw_str(&b, 1, "k");
	pbw_bytes(&b, 5, d, 16);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_OK);
	proto_req_clear(&q);
	b.len = 0;
	pbw_str(&b, 1, "k");
	pbw_bytes(&b, 5, d, 64);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_OK);
	assert_true(sign_prehashed(MSG(q, SignRequest)));
	assert_true(sign_input(MSG(q, SignRequest))->len == 64);
	proto_req_clear(&q);

	/* Both arms of the oneof: the last one on the wire wins, and the
	 * first one's bytes are not leaked. */
	b.len = 0;
	pbw_str(&b, 1, "k");
	pbw_bytes(&b, 4, "message", 7);
	pbw_bytes(&b, 5, d, 32);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_OK);
	assert_true(sign_prehashed(MSG(q, SignRequest)));
	assert_true(sign_input(MSG(q, SignRequest))->len == 32);
	proto_req_clear(&q);
	b.len = 0;
	pbw_str(&b, 1, "k");
	pbw_bytes(&b, 5, d, 32);
	pbw_bytes(&b, 4, "message", 7);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_OK);
	assert_false(sign_prehashed(MSG(q, SignRequest)));
	assert_true(sign_input(MSG(q, SignRequest))->len == 7);
	assert_memory_equal(sign_input(MSG(q, SignRequest))->data, "message", 7);
	proto_req_clear(&q);

	/* A repeated key field: the last value counts. */
	b.len = 0;
	pbw_str(&b, 1, "first");
	pbw_str(&b, 1, "second");
	pbw_bytes(&b, 4, "m", 1);
	assert_int_equal(decode_body("Sign", &b, &q, &e), KH_OK);
	assert_string_equal(MSG(q, SignRequest)->key, "second");
	proto_req_clear(&q);
}

/* A message near the default frame cap decodes, and the budget does not
 * refuse what a legitimate client sends. */
static void test_large_sign(void **state)
{
	union proto_req_body body;
	struct proto_req q;
	uint8_t *frame = NULL, *msg;
	size_t len = 0, n = PROTO_FRAME_MAX_DEFAULT - 256;

	(void)state;
	msg = malloc(n);
	assert_non_null(msg);
	memset(msg, 0x42, n);
	memset(&body, 0, sizeof(body));
	memcpy(body.sign.key, "big", 4);
	body.sign.data = msg;
	body.sign.len = n;
	assert_int_equal(proto_request_encode(3, 0, PROTO_M_SIGN, &body, &frame, &len), KH_OK);
	assert_true(len - PROTO_HDR_LEN <= PROTO_FRAME_MAX_DEFAULT);
	assert_int_equal(decode_copy(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &q), KH_OK);
	assert_true(sign_input(MSG(q, SignRequest))->len == n);
	assert_memory_equal(sign_input(MSG(q, SignRequest))->data, msg, n);
	proto_req_clear(&q);
	free(frame);
	free(msg);
}

/* ---- responses ---- */

/* The server builds the answers of the methods on generated messages
 * itself (service/rpc/h_*.c); only the client's decoders of those remain
 * here (test_response_mutations). */

static void test_response_errors(void **state)
{
	static const enum kh_err codes[] = { KH_E_INVALID_ARGUMENT, KH_E_NOT_FOUND, KH_E_UNIMPLEMENTED,
					     KH_E_UNAVAILABLE, KH_E_UNAUTHENTICATED, KH_E_PERMISSION_DENIED };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		union proto_resp_body body;
		uint8_t *frame = NULL;
		size_t len = 0;
		struct proto_resp env;

		/* With an error code the body is ignored, even for a method. */
		memset(&body, 0xff, sizeof(body));
		assert_int_equal(proto_response_encode(10 + i, codes[i], "no key named 'x'", PROTO_M_SIGN, &body, &frame,
						       &len), KH_OK);
		assert_int_equal(proto_response_decode(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &env), KH_OK);
		assert_true(env.id == 10 + i);
		assert_int_equal(env.status.code, codes[i]);
		assert_string_equal(env.status.msg, "no key named 'x'");
		assert_true(env.body_len == 0);
		proto_resp_env_clear(&env);
		free(frame);
	}
	/* A status code outside gRPC's range reads as UNKNOWN. */
	{
		struct pbw w, st;
		struct proto_resp env;

		st.len = 0;
		pbw_u64(&st, 1, 99);
		pbw_str(&st, 2, "odd");
		w.len = 0;
		pbw_u64(&w, 1, 6);
		pbw_bytes(&w, 2, st.buf, st.len);
		assert_int_equal(proto_response_decode(w.buf, w.len, &env), KH_OK);
		assert_int_equal(env.status.code, KH_E_UNKNOWN);
		proto_resp_env_clear(&env);
	}
	/* Garbage is DATA_LOSS, not a crash. */
	{
		static const uint8_t junk[] = { 0xff, 0xff, 0xff };
		struct proto_resp env;
		union proto_resp_body out;
		struct kh_errbuf e = { 0 };

		assert_int_equal(proto_response_decode(junk, sizeof(junk), &env), KH_E_DATA_LOSS);
		assert_int_equal(proto_response_body_decode(PROTO_M_SIGN, junk, sizeof(junk), &out, &e), KH_E_DATA_LOSS);
		assert_int_equal(proto_response_body_decode(PROTO_M_COUNT, junk, sizeof(junk), &out, &e),
				 KH_E_INVALID_ARGUMENT);
	}
}

/* A populated answer for each method whose handler builds a generated
 * message (service/rpc/h_*.c); NULL for the others. */
struct gen_answers {
	uint8_t spki[40], id[16], sig[64];
	Keyhold__V1__KeyInfo k[3], *kp[2];
	Keyhold__V1__GenerateKeyResponse gen;
	Keyhold__V1__GetPublicKeyResponse pub;
	Keyhold__V1__ListKeysResponse list;
	Keyhold__V1__SignResponse sign;
	Keyhold__V1__DeleteKeyResponse del;
	Keyhold__V1__SelfTestResult st, *stp[1];
	Keyhold__V1__TokenInfo tok;
	Keyhold__V1__ConditionalCounts cc;
	char *orphans[1];
	Keyhold__V1__GetStatusResponse status;
	Keyhold__V1__KeyTypeAvailability kt, *ktp[1];
	Keyhold__V1__Mechanism mech, *mechp[1];
	Keyhold__V1__GetCapabilitiesResponse caps;
	Keyhold__V1__RunSelfTestResponse run;
	Keyhold__V1__AuditRecord rec, *recp[1];
	Keyhold__V1__AuditShowResponse show;
	Keyhold__V1__AuditVerifyResponse verify;
	Keyhold__V1__Digest digs[2];
	Keyhold__V1__Padding pads[1];
	Keyhold__V1__KeyGrant grant, *grantp[1];
	Keyhold__V1__ListKeyGrantsResponse grants;
};

static char *cstr(const char *s)
{
	return (char *)(uintptr_t)s;
}

static void gen_key(Keyhold__V1__KeyInfo *k, struct gen_answers *g, const char *name, Keyhold__V1__KeyType t)
{
	keyhold__v1__key_info__init(k);
	k->name = cstr(name);
	k->type = t;
	k->bits = 256;
	k->id.data = g->id;
	k->id.len = sizeof(g->id);
	k->spki.data = g->spki;
	k->spki.len = sizeof(g->spki);
	k->fips_created = true;
}

static const ProtobufCMessage *gen_answer(struct gen_answers *g, enum proto_method m)
{
	memset(g->spki, 0x30, sizeof(g->spki));
	memset(g->id, 0xf1, sizeof(g->id));
	memset(g->sig, 0x33, sizeof(g->sig));
	switch (m) {
	case PROTO_M_GENERATE_KEY:
		gen_key(&g->k[0], g, "g", KEYHOLD__V1__KEY_TYPE__P256);
		keyhold__v1__generate_key_response__init(&g->gen);
		g->gen.key = &g->k[0];
		return &g->gen.base;
	case PROTO_M_GET_PUBLIC_KEY:
		gen_key(&g->k[0], g, "p", KEYHOLD__V1__KEY_TYPE__P256);
		keyhold__v1__get_public_key_response__init(&g->pub);
		g->pub.key = &g->k[0];
		return &g->pub.base;
	case PROTO_M_LIST_KEYS:
		gen_key(&g->k[1], g, "a", KEYHOLD__V1__KEY_TYPE__P256);
		gen_key(&g->k[2], g, "b", KEYHOLD__V1__KEY_TYPE__RSA2048);
		g->kp[0] = &g->k[1];
		g->kp[1] = &g->k[2];
		keyhold__v1__list_keys_response__init(&g->list);
		g->list.keys = g->kp;
		g->list.n_keys = 2;
		return &g->list.base;
	case PROTO_M_SIGN:
		keyhold__v1__sign_response__init(&g->sign);
		g->sign.signature.data = g->sig;
		g->sign.signature.len = sizeof(g->sig);
		g->sign.algorithm = cstr("ecdsa-sha256");
		return &g->sign.base;
	case PROTO_M_DELETE_KEY:
		keyhold__v1__delete_key_response__init(&g->del);
		return &g->del.base;
	case PROTO_M_GET_STATUS:
		keyhold__v1__self_test_result__init(&g->st);
		g->st.id = cstr("hmac-sha256-kat");
		g->st.passed = true;
		g->st.duration_us = 12;
		g->stp[0] = &g->st;
		keyhold__v1__token_info__init(&g->tok);
		g->tok.label = cstr("keyhold");
		g->tok.flags = 0x40d;
		g->tok.available = true;
		keyhold__v1__conditional_counts__init(&g->cc);
		g->cc.verify_run = 5;
		g->orphans[0] = cstr("o1");
		keyhold__v1__get_status_response__init(&g->status);
		g->status.state = cstr("OPERATIONAL");
		g->status.token = &g->tok;
		g->status.requests = 1ull << 40;
		g->status.self_tests = g->stp;
		g->status.n_self_tests = 1;
		g->status.conditional = &g->cc;
		g->status.orphaned_keys = g->orphans;
		g->status.n_orphaned_keys = 1;
		return &g->status.base;
	case PROTO_M_GET_CAPABILITIES:
		keyhold__v1__key_type_availability__init(&g->kt);
		g->kt.type = KEYHOLD__V1__KEY_TYPE__P256;
		g->kt.available = true;
		g->ktp[0] = &g->kt;
		keyhold__v1__mechanism__init(&g->mech);
		g->mech.name = cstr("CKM_ECDSA");
		g->mech.id = 0x1041;
		g->mech.max_key = 521;
		g->mechp[0] = &g->mech;
		keyhold__v1__get_capabilities_response__init(&g->caps);
		g->caps.key_types = g->ktp;
		g->caps.n_key_types = 1;
		g->caps.mechanisms = g->mechp;
		g->caps.n_mechanisms = 1;
		g->caps.pss = true;
		return &g->caps.base;
	case PROTO_M_RUN_SELF_TEST:
		keyhold__v1__self_test_result__init(&g->st);
		g->st.id = cstr("sha2-kat");
		g->st.detail = cstr("mismatch");
		g->stp[0] = &g->st;
		keyhold__v1__run_self_test_response__init(&g->run);
		g->run.state = cstr("OPERATIONAL");
		g->run.self_tests = g->stp;
		g->run.n_self_tests = 1;
		return &g->run.base;
	case PROTO_M_AUDIT_SHOW:
		keyhold__v1__audit_record__init(&g->rec);
		g->rec.seq = 17;
		g->rec.principal = cstr("uid:1000");
		g->rec.method = cstr("Sign");
		g->rec.object = cstr("web");
		g->rec.code = 5;
		g->recp[0] = &g->rec;
		keyhold__v1__audit_show_response__init(&g->show);
		g->show.records = g->recp;
		g->show.n_records = 1;
		g->show.next_seq = 18;
		g->show.more = true;
		return &g->show.base;
	case PROTO_M_AUDIT_VERIFY:
		keyhold__v1__audit_verify_response__init(&g->verify);
		g->verify.ok = true;
		g->verify.records = 40;
		g->verify.reason = cstr("");
		g->verify.key_fingerprint = cstr("ab12");
		return &g->verify.base;
	case PROTO_M_LIST_KEY_GRANTS:
		g->digs[0] = KEYHOLD__V1__DIGEST__SHA256;
		g->digs[1] = KEYHOLD__V1__DIGEST__SHA512;
		g->pads[0] = KEYHOLD__V1__PADDING__PSS;
		keyhold__v1__key_grant__init(&g->grant);
		g->grant.key = cstr("web");
		g->grant.principal = cstr("group:app");
		g->grant.digests = g->digs;
		g->grant.n_digests = 2;
		g->grant.paddings = g->pads;
		g->grant.n_paddings = 1;
		g->grant.source = cstr("runtime");
		g->grantp[0] = &g->grant;
		keyhold__v1__list_key_grants_response__init(&g->grants);
		g->grants.grants = g->grantp;
		g->grants.n_grants = 1;
		return &g->grants.base;
	case PROTO_M_GRANT_KEY:
	case PROTO_M_REVOKE_KEY_GRANT:
		return NULL; /* empty answers: proto_response_encode sends no body */
	default:
		return NULL;
	}
}

/* The client's decoders read what a handler builds: each generated
 * answer above, decoded into the client's structs. */
static void client_decode(struct gen_answers *g, enum proto_method m, union proto_resp_body *out)
{
	uint8_t *frame = NULL;
	size_t len = 0;
	struct proto_resp env;
	struct kh_errbuf e = { 0 };

	assert_int_equal(proto_response_encode_msg(21, KH_OK, NULL, gen_answer(g, m), &frame, &len), KH_OK);
	assert_int_equal(proto_response_decode(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &env), KH_OK);
	assert_true(env.id == 21);
	assert_int_equal(env.status.code, KH_OK);
	assert_int_equal(proto_response_body_decode(m, env.body, env.body_len, out, &e), KH_OK);
	proto_resp_env_clear(&env);
	free(frame);
}

static void test_response_client_decode(void **state)
{
	struct gen_answers *g = calloc(1, sizeof(*g));
	union proto_resp_body out;

	(void)state;
	assert_non_null(g);
	client_decode(g, PROTO_M_GENERATE_KEY, &out);
	assert_string_equal(out.key.name, "g");
	assert_int_equal(out.key.type, KH_KEY_P256);
	assert_true(out.key.spki_len == sizeof(g->spki));
	assert_memory_equal(out.key.spki, g->spki, sizeof(g->spki));
	assert_true(out.key.id_len == sizeof(g->id));
	assert_true(out.key.fips_created);
	proto_resp_clear(PROTO_M_GENERATE_KEY, &out);
	client_decode(g, PROTO_M_LIST_KEYS, &out);
	assert_true(out.keys.n == 2);
	assert_string_equal(out.keys.keys[1].name, "b");
	assert_int_equal(out.keys.keys[1].type, KH_KEY_RSA2048);
	proto_resp_clear(PROTO_M_LIST_KEYS, &out);
	client_decode(g, PROTO_M_SIGN, &out);
	assert_true(out.sign.sig_len == sizeof(g->sig));
	assert_memory_equal(out.sign.sig, g->sig, sizeof(g->sig));
	assert_string_equal(out.sign.algorithm, "ecdsa-sha256");
	proto_resp_clear(PROTO_M_SIGN, &out);
	client_decode(g, PROTO_M_GET_STATUS, &out);
	assert_string_equal(out.status.state, "OPERATIONAL");
	assert_string_equal(out.status.token.label, "keyhold");
	assert_true(out.status.token.flags == 0x40d);
	assert_true(out.status.token.available);
	assert_true(out.status.requests == 1ull << 40);
	assert_true(out.status.n_selftests == 1);
	assert_string_equal(out.status.selftests[0].id, "hmac-sha256-kat");
	assert_true(out.status.selftests[0].passed);
	assert_true(out.status.cond_verify_run == 5);
	assert_true(out.status.n_orphaned == 1);
	assert_string_equal(out.status.orphaned_keys[0], "o1");
	proto_resp_clear(PROTO_M_GET_STATUS, &out);
	client_decode(g, PROTO_M_GET_CAPABILITIES, &out);
	assert_true(out.caps.n_types == 1);
	assert_int_equal(out.caps.types[0].type, KH_KEY_P256);
	assert_true(out.caps.types[0].available);
	assert_true(out.caps.n_mechs == 1);
	assert_string_equal(out.caps.mechs[0].name, "CKM_ECDSA");
	assert_true(out.caps.mechs[0].id == 0x1041);
	assert_int_equal(out.caps.mechs[0].max_key, 521);
	assert_true(out.caps.pss);
	proto_resp_clear(PROTO_M_GET_CAPABILITIES, &out);
	client_decode(g, PROTO_M_RUN_SELF_TEST, &out);
	assert_string_equal(out.selftest.state, "OPERATIONAL");
	assert_true(out.selftest.n == 1);
	assert_false(out.selftest.results[0].passed);
	assert_string_equal(out.selftest.results[0].detail, "mismatch");
	proto_resp_clear(PROTO_M_RUN_SELF_TEST, &out);
	client_decode(g, PROTO_M_AUDIT_SHOW, &out);
	assert_true(out.audit.n == 1);
	assert_true(out.audit.recs[0].seq == 17);
	assert_string_equal(out.audit.recs[0].principal, "uid:1000");
	assert_string_equal(out.audit.recs[0].object, "web");
	assert_int_equal(out.audit.recs[0].code, -5);
	assert_true(out.audit.more);
	assert_true(out.audit.next_seq == 18);
	proto_resp_clear(PROTO_M_AUDIT_SHOW, &out);
	client_decode(g, PROTO_M_AUDIT_VERIFY, &out);
	assert_true(out.audit_verify.ok);
	assert_true(out.audit_verify.records == 40);
	assert_string_equal(out.audit_verify.key_fp, "ab12");
	proto_resp_clear(PROTO_M_AUDIT_VERIFY, &out);
	client_decode(g, PROTO_M_LIST_KEY_GRANTS, &out);
	assert_true(out.grants.n == 1);
	assert_string_equal(out.grants.grants[0].key, "web");
	assert_string_equal(out.grants.grants[0].principal, "group:app");
	assert_int_equal(out.grants.grants[0].digests, 1u << KH_DIGEST_SHA256 | 1u << KH_DIGEST_SHA512);
	assert_int_equal(out.grants.grants[0].paddings, 1u << KH_PAD_PSS);
	assert_string_equal(out.grants.grants[0].source, "runtime");
	proto_resp_clear(PROTO_M_LIST_KEY_GRANTS, &out);
	free(g);
}

/* The client's decoders meet a hostile or broken server too: every
 * truncation and bit flip of every response is decoded or refused. */
static void test_response_mutations(void **state)
{
	union proto_resp_body in[PROTO_M_COUNT];
	struct gen_answers *g = calloc(1, sizeof(*g));
	int m;
	unsigned refused = 0, ok = 0;

	(void)state;
	assert_non_null(g);
	memset(in, 0, sizeof(in));
	for (m = 0; m < PROTO_M_COUNT; m++) {
		const ProtobufCMessage *msg = gen_answer(g, (enum proto_method)m);
		uint8_t *frame = NULL, *p;
		size_t len = 0, plen;

		if (msg != NULL)
			assert_int_equal(proto_response_encode_msg(7, KH_OK, NULL, msg, &frame, &len), KH_OK);
		else
			assert_int_equal(proto_response_encode(7, KH_OK, NULL, (enum proto_method)m, &in[m], &frame,
							       &len), KH_OK);
		p = frame + PROTO_HDR_LEN;
		plen = len - PROTO_HDR_LEN;
		kh_test_mutate_response(p, plen, (enum proto_method)m, NULL, &ok, &refused);
		free(frame);
	}
	free(g);
	assert_true(refused > 0 && ok > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_methods),
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_request_encode_bad_method),
		cmocka_unit_test(test_request_truncations),
		cmocka_unit_test(test_request_bit_flips),
		cmocka_unit_test(test_body_mutations),
		cmocka_unit_test(test_unknown_method),
		cmocka_unit_test(test_malformed_envelope),
		cmocka_unit_test(test_malformed_body),
		cmocka_unit_test(test_generate_validation),
		cmocka_unit_test(test_name_validation),
		cmocka_unit_test(test_sign_validation),
		cmocka_unit_test(test_large_sign),
		cmocka_unit_test(test_response_client_decode),
		cmocka_unit_test(test_response_errors),
		cmocka_unit_test(test_response_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
