/* test_validate.c: the request envelope, the method table, and the key and
 * status RPCs' requests through proto_request_decode and its edge
 * validation (proto/validate.c); error and body answers through
 * proto_response_encode_msg. Requests are built as generated messages or
 * raw wire bytes. Valid frames round-trip; every truncation and every single-bit flip of a
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
#include "kh_pki.h"
#include "kh_rev.h"
#include "kh_types.h"
#include "kh_test_codec.h"
#include "kh_test_pb.h"
#include "kh_test_wire.h"

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

/* A valid request for method m, variant what (several per method), as a
 * generated message (none for methods with an empty request). */
struct req_case {
	const char *what;
	enum proto_method m;
	char name[KH_NAME_MAX + 1];
	Keyhold__V1__GenerateKeyRequest gen;
	Keyhold__V1__GetPublicKeyRequest pub;
	Keyhold__V1__DeleteKeyRequest del;
	Keyhold__V1__SignRequest sign;
};

static uint8_t msg_bytes[40];
static uint8_t sha256_bytes[32];
static uint8_t sha512_bytes[64];

static char *cstr(const char *s)
{
	return (char *)(uintptr_t)s;
}

/* The request message of c; NULL for an empty request. */
static const ProtobufCMessage *case_msg(const struct req_case *c)
{
	switch (c->m) {
	case PROTO_M_GENERATE_KEY: return &c->gen.base;
	case PROTO_M_GET_PUBLIC_KEY: return &c->pub.base;
	case PROTO_M_DELETE_KEY: return &c->del.base;
	case PROTO_M_SIGN: return &c->sign.base;
	default: return NULL;
	}
}

static struct req_case *add_case(struct req_case *out, size_t max, size_t *n, const char *what, enum proto_method m)
{
	struct req_case *c;

	assert_true(*n < max);
	c = &out[(*n)++];
	c->what = what;
	c->m = m;
	keyhold__v1__generate_key_request__init(&c->gen);
	keyhold__v1__get_public_key_request__init(&c->pub);
	keyhold__v1__delete_key_request__init(&c->del);
	keyhold__v1__sign_request__init(&c->sign);
	c->gen.name = c->pub.name = c->del.name = c->sign.key = c->name;
	return c;
}

/* Sets c's Sign input: the message arm, or the prehashed one. */
static void sign_set(struct req_case *c, bool prehashed, uint8_t *data, size_t len)
{
	if (prehashed) {
		c->sign.input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_PREHASHED;
		c->sign.prehashed.data = data;
		c->sign.prehashed.len = len;
	} else {
		c->sign.input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE;
		c->sign.message.data = data;
		c->sign.message.len = len;
	}
}

static size_t req_cases(struct req_case *out, size_t max)
{
	struct req_case *c;
	size_t n = 0;
	unsigned i;

	for (i = 0; i < sizeof(msg_bytes); i++)
		msg_bytes[i] = (uint8_t)(i * 7 + 1);
	for (i = 0; i < sizeof(sha256_bytes); i++)
		sha256_bytes[i] = (uint8_t)(0xa0 + i);
	for (i = 0; i < sizeof(sha512_bytes); i++)
		sha512_bytes[i] = (uint8_t)(0x31 * i);
	memset(out, 0, max * sizeof(*out));
	add_case(out, max, &n, "GetStatus", PROTO_M_GET_STATUS);
	add_case(out, max, &n, "GetCapabilities", PROTO_M_GET_CAPABILITIES);
	c = add_case(out, max, &n, "GenerateKey p256", PROTO_M_GENERATE_KEY);
	memcpy(c->name, "web", 4);
	c->gen.type = KEYHOLD__V1__KEY_TYPE__P256;
	c = add_case(out, max, &n, "GenerateKey rsa4096 long name", PROTO_M_GENERATE_KEY);
	memset(c->name, 'k', KH_NAME_MAX);
	c->name[KH_NAME_MAX] = '\0';
	c->gen.type = KEYHOLD__V1__KEY_TYPE__RSA4096;
	add_case(out, max, &n, "ListKeys", PROTO_M_LIST_KEYS);
	memcpy(add_case(out, max, &n, "GetPublicKey", PROTO_M_GET_PUBLIC_KEY)->name, "a.b_c-9", 8);
	memcpy(add_case(out, max, &n, "DeleteKey", PROTO_M_DELETE_KEY)->name, "old-key", 8);
	c = add_case(out, max, &n, "Sign message", PROTO_M_SIGN);
	memcpy(c->name, "web", 4);
	c->sign.digest = KEYHOLD__V1__DIGEST__SHA384;
	sign_set(c, false, msg_bytes, sizeof(msg_bytes));
	c = add_case(out, max, &n, "Sign prehashed sha256 PSS", PROTO_M_SIGN);
	memcpy(c->name, "rsa", 4);
	c->sign.digest = KEYHOLD__V1__DIGEST__SHA256;
	c->sign.padding = KEYHOLD__V1__PADDING__PSS;
	sign_set(c, true, sha256_bytes, sizeof(sha256_bytes));
	c = add_case(out, max, &n, "Sign prehashed sha512", PROTO_M_SIGN);
	memcpy(c->name, "ec", 3);
	c->sign.digest = KEYHOLD__V1__DIGEST__SHA512;
	c->sign.padding = KEYHOLD__V1__PADDING__PKCS1;
	sign_set(c, true, sha512_bytes, sizeof(sha512_bytes));
	c = add_case(out, max, &n, "Sign empty message", PROTO_M_SIGN);
	memcpy(c->name, "ed", 3);
	sign_set(c, false, msg_bytes, 0);
	return n;
}

/* A request frame for c (header included); checks the header. */
static void encode_case(const struct req_case *c, uint64_t id, uint32_t deadline, uint8_t **frame, size_t *len)
{
	size_t n = 0;

	*frame = kh_test_req_frame(id, deadline, c->m, case_msg(c), len);
	assert_non_null(*frame);
	assert_true(*len > PROTO_HDR_LEN);
	assert_int_equal(proto_frame_len(*frame, PROTO_FRAME_MAX_DEFAULT, &n), KH_OK);
	assert_true(n == *len - PROTO_HDR_LEN);
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
	assert_null(q->msg);
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
			assert_string_equal(MSG(q, GenerateKeyRequest)->name, c->gen.name);
			assert_int_equal(MSG(q, GenerateKeyRequest)->type, c->gen.type);
			break;
		case PROTO_M_GET_PUBLIC_KEY:
			assert_string_equal(MSG(q, GetPublicKeyRequest)->name, c->pub.name);
			break;
		case PROTO_M_DELETE_KEY:
			assert_string_equal(MSG(q, DeleteKeyRequest)->name, c->del.name);
			break;
		case PROTO_M_SIGN: {
			const Keyhold__V1__SignRequest *s = MSG(q, SignRequest);

			const ProtobufCBinaryData *in = sign_input(&c->sign);

			assert_string_equal(s->key, c->sign.key);
			assert_int_equal(s->digest, c->sign.digest);
			assert_int_equal(s->padding, c->sign.padding);
			assert_int_equal(sign_prehashed(s), sign_prehashed(&c->sign));
			assert_true(sign_input(s)->len == in->len);
			if (in->len > 0)
				assert_memory_equal(sign_input(s)->data, in->data, in->len);
			break;
		}
		default:
			break;
		}
		proto_req_clear(&q);
		free(frame);
	}
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
		assert_null(q.msg);
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
	Keyhold__V1__SignRequest body;
	struct proto_req q;
	uint8_t *frame = NULL, *msg;
	size_t len = 0, n = PROTO_FRAME_MAX_DEFAULT - 256;

	(void)state;
	msg = malloc(n);
	assert_non_null(msg);
	memset(msg, 0x42, n);
	keyhold__v1__sign_request__init(&body);
	body.key = cstr("big");
	body.input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE;
	body.message.data = msg;
	body.message.len = n;
	frame = kh_test_req_frame(3, 0, PROTO_M_SIGN, &body.base, &len);
	assert_non_null(frame);
	assert_true(len - PROTO_HDR_LEN <= PROTO_FRAME_MAX_DEFAULT);
	assert_int_equal(decode_copy(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &q), KH_OK);
	assert_true(sign_input(MSG(q, SignRequest))->len == n);
	assert_memory_equal(sign_input(MSG(q, SignRequest))->data, msg, n);
	proto_req_clear(&q);
	free(frame);
	free(msg);
}

/* ---- responses ---- */

/* The server builds the answers itself (service/rpc/h_*.c) as generated
 * messages; proto_response_encode_msg frames them, or an error status. */

/* Unpacks a whole response frame's envelope; the caller frees it. */
static Keyhold__V1__Response *resp_unpack(const uint8_t *frame, size_t len)
{
	Keyhold__V1__Response *env;
	size_t n = 0;

	assert_true(len > PROTO_HDR_LEN);
	assert_int_equal(proto_frame_len(frame, PROTO_FRAME_MAX_DEFAULT, &n), KH_OK);
	assert_true(n == len - PROTO_HDR_LEN);
	env = keyhold__v1__response__unpack(NULL, n, frame + PROTO_HDR_LEN);
	assert_non_null(env);
	return env;
}

static void test_response_errors(void **state)
{
	static const enum kh_err codes[] = { KH_E_INVALID_ARGUMENT, KH_E_NOT_FOUND, KH_E_UNIMPLEMENTED,
					     KH_E_UNAVAILABLE, KH_E_UNAUTHENTICATED, KH_E_PERMISSION_DENIED };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		Keyhold__V1__SignResponse body;
		uint8_t sig[8];
		uint8_t *frame = NULL;
		size_t len = 0;
		Keyhold__V1__Response *env;

		/* With an error code the body is ignored, even when given. */
		memset(sig, 0xff, sizeof(sig));
		keyhold__v1__sign_response__init(&body);
		body.signature.data = sig;
		body.signature.len = sizeof(sig);
		body.algorithm = cstr("ecdsa-sha256");
		assert_int_equal(proto_response_encode_msg(10 + i, codes[i], "no key named 'x'", &body.base, &frame,
							   &len), KH_OK);
		env = resp_unpack(frame, len);
		assert_true(env->id == 10 + i);
		assert_non_null(env->status);
		/* kh_err codes are negated gRPC codes on the wire. */
		assert_int_equal(env->status->code, -(int)codes[i]);
		assert_string_equal(env->status->message, "no key named 'x'");
		assert_true(env->body.len == 0);
		keyhold__v1__response__free_unpacked(env, NULL);
		free(frame);
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
		return NULL; /* empty answers: no body is sent */
	default:
		return NULL;
	}
}

/* A handler's answer for method m, framed with OK, unpacks to an envelope
 * with id 21, no error, and m's response message whose bytes are the
 * answer's own. Returns that message (free with
 * protobuf_c_message_free_unpacked). */
static ProtobufCMessage *answer_round_trip(struct gen_answers *g, enum proto_method m)
{
	const ProtobufCMessage *in = gen_answer(g, m);
	uint8_t *frame = NULL, *want;
	size_t len = 0, wlen = 0;
	Keyhold__V1__Response *env;
	ProtobufCMessage *out;

	assert_non_null(in);
	assert_true(in->descriptor == proto_method_response(m));
	assert_int_equal(proto_response_encode_msg(21, KH_OK, NULL, in, &frame, &len), KH_OK);
	env = resp_unpack(frame, len);
	assert_true(env->id == 21);
	assert_true(env->status == NULL || env->status->code == 0);
	want = kh_test_pack(in, &wlen);
	assert_non_null(want);
	assert_true(env->body.len == wlen);
	if (wlen > 0)
		assert_memory_equal(env->body.data, want, wlen);
	out = protobuf_c_message_unpack(proto_method_response(m), NULL, env->body.len, env->body.data);
	assert_non_null(out);
	free(want);
	keyhold__v1__response__free_unpacked(env, NULL);
	free(frame);
	return out;
}

static void test_response_encode_msg(void **state)
{
	struct gen_answers *g = calloc(1, sizeof(*g));
	ProtobufCMessage *out;
	int m;

	(void)state;
	assert_non_null(g);
	out = answer_round_trip(g, PROTO_M_GENERATE_KEY);
	{
		const Keyhold__V1__KeyInfo *k = ((const Keyhold__V1__GenerateKeyResponse *)(const void *)out)->key;

		assert_non_null(k);
		assert_string_equal(k->name, "g");
		assert_int_equal(k->type, KEYHOLD__V1__KEY_TYPE__P256);
		assert_true(k->spki.len == sizeof(g->spki));
		assert_memory_equal(k->spki.data, g->spki, sizeof(g->spki));
		assert_true(k->id.len == sizeof(g->id));
		assert_true(k->fips_created);
	}
	protobuf_c_message_free_unpacked(out, NULL);
	out = answer_round_trip(g, PROTO_M_SIGN);
	{
		const Keyhold__V1__SignResponse *s = (const void *)out;

		assert_true(s->signature.len == sizeof(g->sig));
		assert_memory_equal(s->signature.data, g->sig, sizeof(g->sig));
		assert_string_equal(s->algorithm, "ecdsa-sha256");
	}
	protobuf_c_message_free_unpacked(out, NULL);
	out = answer_round_trip(g, PROTO_M_AUDIT_SHOW);
	{
		const Keyhold__V1__AuditShowResponse *a = (const void *)out;

		assert_true(a->n_records == 1);
		assert_true(a->records[0]->seq == 17);
		assert_string_equal(a->records[0]->principal, "uid:1000");
		assert_int_equal(a->records[0]->code, 5);
		assert_true(a->more);
		assert_true(a->next_seq == 18);
	}
	protobuf_c_message_free_unpacked(out, NULL);
	/* Every other answer: the bytes check inside answer_round_trip. */
	for (m = 0; m < PROTO_M_COUNT; m++) {
		if (gen_answer(g, (enum proto_method)m) == NULL)
			continue;
		out = answer_round_trip(g, (enum proto_method)m);
		protobuf_c_message_free_unpacked(out, NULL);
	}
	/* An empty answer (NULL) sends no body. */
	{
		uint8_t *frame = NULL;
		size_t len = 0;
		Keyhold__V1__Response *env;

		assert_int_equal(proto_response_encode_msg(22, KH_OK, NULL, NULL, &frame, &len), KH_OK);
		env = resp_unpack(frame, len);
		assert_true(env->id == 22);
		assert_true(env->status == NULL || env->status->code == 0);
		assert_true(env->body.len == 0);
		keyhold__v1__response__free_unpacked(env, NULL);
		free(frame);
	}
	free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_methods),
		cmocka_unit_test(test_request_round_trip),
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
		cmocka_unit_test(test_response_encode_msg),
		cmocka_unit_test(test_response_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
