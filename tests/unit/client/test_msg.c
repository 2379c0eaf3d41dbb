/* test_msg.c: libkeyhold's generic messages (client/msg.c) and its
 * client-side framing and answer matching (client/client.c) against a
 * scripted peer on a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "kh_client_int.h"

static void test_request_new(void **state)
{
	kh_msg *m = NULL;

	(void)state;
	assert_int_equal(kh_request_new("NoSuchRpc", &m), KH_E_INVALID_ARGUMENT);
	assert_null(m);
	assert_int_equal(kh_request_new("Sign", &m), KH_OK);
	assert_string_equal(kh_msg_type(m), "keyhold.v1.SignRequest");
	assert_string_equal(kh_msg_method(m), "Sign");
	kh_msg_free(m);
}

static void test_names_and_types(void **state)
{
	kh_msg *m = NULL;

	(void)state;
	assert_int_equal(kh_request_new("GenerateKey", &m), KH_OK);
	assert_int_equal(kh_msg_set_str(m, "name", "web"), KH_OK);
	assert_int_equal(kh_msg_set_str(m, "name", "web2"), KH_OK); /* replaces, no leak */
	assert_string_equal(kh_msg_get_str(m, "name"), "web2");
	assert_int_equal(kh_msg_set_str(m, "nme", "x"), KH_E_INVALID_ARGUMENT);
	assert_string_equal(kh_msg_error_message(m), "keyhold.v1.GenerateKeyRequest has no field nme");
	assert_int_equal(kh_msg_set_uint(m, "name", 1), KH_E_INVALID_ARGUMENT);
	assert_string_equal(kh_msg_error_message(m), "keyhold.v1.GenerateKeyRequest.name is a string field");
	assert_int_equal(kh_msg_add_str(m, "name", "x"), KH_E_INVALID_ARGUMENT);
	assert_int_equal(kh_msg_set_enum(m, "type", "P256"), KH_OK);
	assert_string_equal(kh_msg_get_enum(m, "type"), "P256");
	assert_int_equal(kh_msg_set_enum(m, "type", "P999"), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(kh_msg_error_message(m), "P999 is not a keyhold.v1.KeyType"));
	assert_string_equal(kh_msg_get_enum(m, "type"), "P256");
	assert_string_equal(kh_msg_get_str(m, "type"), ""); /* wrong type: the default */
	kh_msg_free(m);
}

static void test_int_ranges(void **state)
{
	kh_msg *m = NULL;

	(void)state;
	assert_int_equal(kh_request_new("AuditShow", &m), KH_OK);
	/* AuditShowRequest.limit is a uint32. */
	assert_int_equal(kh_msg_set_uint(m, "limit", UINT32_MAX), KH_OK);
	assert_int_equal(kh_msg_get_uint(m, "limit"), UINT32_MAX);
	assert_int_equal(kh_msg_set_uint(m, "limit", (uint64_t)UINT32_MAX + 1), KH_E_OUT_OF_RANGE);
	assert_int_equal(kh_msg_set_int(m, "limit", -1), KH_E_OUT_OF_RANGE);
	assert_int_equal(kh_msg_get_uint(m, "limit"), UINT32_MAX);
	kh_msg_free(m);
}

static void test_oneof(void **state)
{
	kh_msg *m = NULL, *back = NULL;
	const uint8_t *v;
	size_t len;
	uint8_t buf[256];
	size_t n;
	ProtobufCMessage *pb;

	(void)state;
	assert_int_equal(kh_request_new("Sign", &m), KH_OK);
	assert_int_equal(kh_msg_set_bytes(m, "message", (const uint8_t *)"hello", 5), KH_OK);
	assert_true(kh_msg_has(m, "message"));
	assert_int_equal(kh_msg_set_bytes(m, "prehashed", (const uint8_t *)"0123456789abcdef0123456789abcdef", 32),
			 KH_OK);
	assert_false(kh_msg_has(m, "message"));
	assert_true(kh_msg_has(m, "prehashed"));
	assert_int_equal(kh_msg_get_bytes(m, "message", &v, &len), KH_OK);
	assert_int_equal(len, 0);
	/* On the wire only the selected member travels. */
	n = protobuf_c_message_get_packed_size(m->msg);
	assert_true(n < sizeof(buf));
	assert_int_equal(protobuf_c_message_pack(m->msg, buf), n);
	pb = protobuf_c_message_unpack(m->method->input, NULL, n, buf);
	assert_non_null(pb);
	assert_int_equal(kh_msg_wrap(pb, m->method, &back), KH_OK);
	assert_int_equal(kh_msg_get_bytes(back, "prehashed", &v, &len), KH_OK);
	assert_int_equal(len, 32);
	assert_memory_equal(v, "0123456789abcdef", 16);
	assert_false(kh_msg_has(back, "message"));
	kh_msg_free(back);
	kh_msg_free(m);

	/* A oneof of a string and an enum. */
	assert_int_equal(kh_request_new("CreateTrustpoint", &m), KH_OK);
	assert_int_equal(kh_msg_set_str(m, "key", "k1"), KH_OK);
	assert_int_equal(kh_msg_set_enum(m, "generate", "P384"), KH_OK);
	assert_string_equal(kh_msg_get_str(m, "key"), "");
	assert_string_equal(kh_msg_get_enum(m, "generate"), "P384");
	assert_int_equal(kh_msg_set_str(m, "key", "k2"), KH_OK);
	assert_string_equal(kh_msg_get_str(m, "key"), "k2");
	assert_string_equal(kh_msg_get_enum(m, "generate"), "KEY_TYPE_UNSPECIFIED");
	kh_msg_free(m);
}

static void test_repeated_and_nested(void **state)
{
	kh_msg *m = NULL, *g = NULL, *g2 = NULL;
	const uint8_t *v;
	size_t len;

	(void)state;
	assert_int_equal(kh_request_new("TruststoreAdd", &m), KH_OK);
	assert_int_equal(kh_msg_add_bytes(m, "files", (const uint8_t *)"a", 1), KH_OK);
	assert_int_equal(kh_msg_add_bytes(m, "files", (const uint8_t *)"bb", 2), KH_OK);
	assert_int_equal(kh_msg_count(m, "files"), 2);
	assert_int_equal(kh_msg_get_bytes_at(m, "files", 1, &v, &len), KH_OK);
	assert_int_equal(len, 2);
	assert_int_equal(kh_msg_get_bytes_at(m, "files", 2, &v, &len), KH_E_OUT_OF_RANGE);
	assert_int_equal(kh_msg_set_bytes(m, "files", v, 1), KH_E_INVALID_ARGUMENT);
	assert_string_equal(kh_msg_error_message(m), "keyhold.v1.TruststoreAddRequest.files is repeated");
	kh_msg_free(m);

	assert_int_equal(kh_request_new("GrantKey", &m), KH_OK);
	assert_int_equal(kh_msg_item(m, "grant", 0, &g), KH_E_NOT_FOUND);
	assert_int_equal(kh_msg_sub(m, "grant", &g), KH_OK);
	assert_int_equal(kh_msg_set_str(g, "key", "web"), KH_OK);
	assert_int_equal(kh_msg_add_enum(g, "digests", "SHA256"), KH_OK);
	assert_int_equal(kh_msg_add_enum(g, "digests", "SHA512"), KH_OK);
	assert_int_equal(kh_msg_add_enum(g, "digests", "PSS"), KH_E_INVALID_ARGUMENT);
	/* The child's failure is reported on the root too. */
	assert_non_null(strstr(kh_msg_error_message(m), "PSS is not a keyhold.v1.Digest"));
	assert_int_equal(kh_msg_sub(m, "grant", &g2), KH_OK);
	assert_ptr_equal(g, g2); /* the same nested message */
	assert_int_equal(kh_msg_item(m, "grant", 0, &g2), KH_OK);
	assert_ptr_equal(g, g2);
	assert_string_equal(kh_msg_get_enum_at(g2, "digests", 1), "SHA512");
	assert_string_equal(kh_msg_get_enum_at(g2, "digests", 2), "");
	kh_msg_free(g); /* borrowed: a no-op */
	kh_msg_free(m);
}

/* A packed GetStatusResponse with nested, repeated and string fields. */
static size_t status_body(uint8_t *buf, size_t cap)
{
	Keyhold__V1__GetStatusResponse st;
	Keyhold__V1__TokenInfo tok;
	Keyhold__V1__SelfTestResult t1, t2;
	Keyhold__V1__SelfTestResult *tests[2] = { &t1, &t2 };
	char *orph[2] = { (char *)(uintptr_t)"old1", (char *)(uintptr_t)"old2" };
	size_t n;

	/* The *_init functions: the generated *__INIT macros cast away
	 * const (clang -Wcast-qual). */
	keyhold__v1__get_status_response__init(&st);
	keyhold__v1__token_info__init(&tok);
	keyhold__v1__self_test_result__init(&t1);
	keyhold__v1__self_test_result__init(&t2);
	st.version = (char *)(uintptr_t)"0.1.0";
	st.state = (char *)(uintptr_t)"OPERATIONAL";
	tok.label = (char *)(uintptr_t)"keyhold";
	tok.max_sessions = 8;
	st.token = &tok;
	t1.id = (char *)(uintptr_t)"kat-sha256";
	t1.passed = 1;
	t2.id = (char *)(uintptr_t)"kat-ecdsa";
	t2.duration_us = 1234;
	st.n_self_tests = 2;
	st.self_tests = tests;
	st.n_orphaned_keys = 2;
	st.orphaned_keys = orph;
	st.uptime_s = 99;
	n = keyhold__v1__get_status_response__get_packed_size(&st);
	assert_true(n <= cap);
	return keyhold__v1__get_status_response__pack(&st, buf);
}

static void test_response_decode(void **state)
{
	const ProtobufCMethodDescriptor *md = kh_method_find("GetStatus");
	struct kh_errbuf e = { 0 };
	uint8_t buf[512];
	size_t n = status_body(buf, sizeof(buf)), i;
	kh_msg *m = NULL, *tok = NULL, *t = NULL;

	(void)state;
	assert_non_null(md);
	assert_int_equal(kh_response_body_decode(md, buf, n, &m, &e), KH_OK);
	assert_string_equal(kh_msg_method(m), "GetStatus");
	assert_string_equal(kh_msg_get_str(m, "state"), "OPERATIONAL");
	assert_int_equal(kh_msg_get_uint(m, "uptime_s"), 99);
	assert_int_equal(kh_msg_item(m, "token", 0, &tok), KH_OK);
	assert_string_equal(kh_msg_get_str(tok, "label"), "keyhold");
	assert_int_equal(kh_msg_get_uint(tok, "max_sessions"), 8);
	assert_int_equal(kh_msg_count(m, "self_tests"), 2);
	assert_int_equal(kh_msg_item(m, "self_tests", 1, &t), KH_OK);
	assert_string_equal(kh_msg_get_str(t, "id"), "kat-ecdsa");
	assert_int_equal(kh_msg_get_uint(t, "duration_us"), 1234);
	assert_false(kh_msg_get_bool(t, "passed"));
	assert_int_equal(kh_msg_item(m, "self_tests", 2, &t), KH_E_OUT_OF_RANGE);
	assert_string_equal(kh_msg_get_str_at(m, "orphaned_keys", 1), "old2");
	assert_string_equal(kh_msg_get_str_at(m, "orphaned_keys", 2), "");
	kh_msg_free(m);

	/* Truncations and bit flips: decoded or refused, never a crash. */
	for (i = 0; i < n; i++) {
		m = NULL;
		kh_err_clear(&e);
		if (kh_response_body_decode(md, buf, i, &m, &e) == KH_OK)
			kh_msg_free(m);
		else
			assert_int_equal(e.code, KH_E_DATA_LOSS);
	}
	for (i = 0; i < 8 * n; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		m = NULL;
		if (kh_response_body_decode(md, buf, n, &m, &e) == KH_OK) {
			assert_int_equal(kh_msg_count(m, "self_tests") <= 2, true);
			kh_msg_free(m);
		}
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
}

/* ---- the client's framing and matching, against a scripted peer ---- */

static void peer_read_frame(int fd, Keyhold__V1__Request **out)
{
	uint8_t hdr[4], body[4096];
	size_t len;

	assert_int_equal(read(fd, hdr, 4), 4);
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	assert_true(len > 0 && len <= sizeof(body));
	assert_int_equal(read(fd, body, len), (ssize_t)len);
	*out = keyhold__v1__request__unpack(NULL, len, body);
	assert_non_null(*out);
}

static void peer_answer(int fd, uint64_t id, int code, const char *msg, const uint8_t *body, size_t blen)
{
	Keyhold__V1__Response r;
	Keyhold__V1__Status st;
	uint8_t buf[4096];
	size_t n;

	keyhold__v1__response__init(&r);
	keyhold__v1__status__init(&st);
	r.id = id;
	st.code = code;
	st.message = (char *)(uintptr_t)msg;
	r.status = &st;
	r.body.data = (uint8_t *)(uintptr_t)body;
	r.body.len = blen;
	n = keyhold__v1__response__get_packed_size(&r);
	assert_true(n + 4 <= sizeof(buf));
	keyhold__v1__response__pack(&r, buf + 4);
	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	assert_int_equal(write(fd, buf, n + 4), (ssize_t)(n + 4));
}

static void test_pipelined_out_of_order(void **state)
{
	kh_client_opts *o = NULL;
	kh_client *c = NULL;
	Keyhold__V1__Request *q[3];
	Keyhold__V1__SignResponse sr;
	uint8_t body[64], sig[16];
	size_t blen, sig_len = 0;
	uint64_t ids[3], id;
	enum kh_err st;
	int sv[2], i;
	kh_msg *resp = NULL;

	(void)state;
	keyhold__v1__sign_response__init(&sr);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(kh_client_opts_new(&o), KH_OK);
	assert_int_equal(kh_client_new(o, &c), KH_OK);
	kh_client_opts_free(o);
	c->fd = sv[0];
	for (i = 0; i < 3; i++)
		assert_int_equal(kh_sign_send(c, "k", "sha384", i == 1 ? "pss" : NULL, false, (const uint8_t *)"m", 1,
					      &ids[i]),
				 KH_OK);
	assert_int_equal(kh_client_pending(c), 3);
	for (i = 0; i < 3; i++) {
		peer_read_frame(sv[1], &q[i]);
		assert_string_equal(q[i]->method, "Sign");
		assert_int_equal(q[i]->id, ids[i]);
	}
	/* Answers in reverse order; the middle one fails. */
	sr.signature.data = (uint8_t *)(uintptr_t)"sig-3";
	sr.signature.len = 5;
	blen = keyhold__v1__sign_response__pack(&sr, body);
	peer_answer(sv[1], ids[2], 0, "", body, blen);
	peer_answer(sv[1], ids[1], 5, "key k not found", NULL, 0);
	sr.signature.data = (uint8_t *)(uintptr_t)"sig-1";
	blen = keyhold__v1__sign_response__pack(&sr, body);
	peer_answer(sv[1], ids[0], 0, "", body, blen);

	assert_int_equal(kh_sign_recv(c, &id, &st, sig, sizeof(sig), &sig_len), KH_OK);
	assert_int_equal(id, ids[2]);
	assert_int_equal(st, KH_OK);
	assert_memory_equal(sig, "sig-3", 5);
	assert_int_equal(kh_recv(c, &id, &st, &resp), KH_OK);
	assert_int_equal(id, ids[1]);
	assert_int_equal(st, KH_E_NOT_FOUND);
	assert_null(resp);
	assert_string_equal(kh_client_error_message(c), "key k not found");
	assert_int_equal(kh_sign_recv(c, &id, &st, sig, 2, &sig_len), KH_OK);
	assert_int_equal(id, ids[0]);
	assert_int_equal(st, KH_E_OUT_OF_RANGE); /* the buffer is too small */
	assert_int_equal(kh_client_pending(c), 0);
	assert_int_equal(kh_recv(c, &id, &st, &resp), KH_E_FAILED_PRECONDITION);

	/* The request carried what the typed call was given. */
	{
		Keyhold__V1__SignRequest *s = keyhold__v1__sign_request__unpack(NULL, q[1]->body.len, q[1]->body.data);

		assert_non_null(s);
		assert_string_equal(s->key, "k");
		assert_int_equal(s->digest, KEYHOLD__V1__DIGEST__SHA384);
		assert_int_equal(s->padding, KEYHOLD__V1__PADDING__PSS);
		assert_int_equal(s->input_case, KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE);
		keyhold__v1__sign_request__free_unpacked(s, NULL);
	}
	for (i = 0; i < 3; i++)
		keyhold__v1__request__free_unpacked(q[i], NULL);

	/* A bad digest name is refused before anything is sent. */
	assert_int_equal(kh_sign_send(c, "k", "sha3", NULL, false, (const uint8_t *)"m", 1, &id), KH_E_INVALID_ARGUMENT);
	assert_string_equal(kh_client_error_message(c), "sha3 is not a Digest");
	/* A zero frame length from the peer breaks the connection. */
	assert_int_equal(kh_sign_send(c, "k", NULL, NULL, false, (const uint8_t *)"m", 1, &id), KH_OK);
	peer_read_frame(sv[1], &q[0]);
	keyhold__v1__request__free_unpacked(q[0], NULL);
	assert_int_equal(write(sv[1], "\0\0\0\0", 4), 4);
	assert_int_equal(kh_sign_recv(c, &id, &st, sig, sizeof(sig), &sig_len), KH_E_DATA_LOSS);
	assert_int_equal(kh_sign_send(c, "k", NULL, NULL, false, (const uint8_t *)"m", 1, &id), KH_E_UNAVAILABLE);
	close(sv[1]);
	kh_client_free(c); /* closes sv[0] */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_new),
		cmocka_unit_test(test_names_and_types),
		cmocka_unit_test(test_int_ranges),
		cmocka_unit_test(test_oneof),
		cmocka_unit_test(test_repeated_and_nested),
		cmocka_unit_test(test_response_decode),
		cmocka_unit_test(test_pipelined_out_of_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
