/* kh_test_wire.h: requests and responses on the wire for tests and test
 * tools, built from and read into the generated messages of keyhold.proto:
 * a request body packed into a Request envelope and framed, and a Response
 * envelope unpacked into its id, status and body bytes. Header-only; needs
 * keyhold.pb-c.h (kh_proto_gen) and proto.h (framing, method names). */
#ifndef KH_TEST_WIRE_H
#define KH_TEST_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyhold.pb-c.h"
#include "kh_util.h"
#include "proto.h"

/* The packed bytes of m (NULL: none, *len 0); malloc'd (never NULL unless
 * out of memory), free with free(). */
static inline uint8_t *kh_test_pack(const ProtobufCMessage *m, size_t *len)
{
	size_t n = m != NULL ? protobuf_c_message_get_packed_size(m) : 0;
	uint8_t *b = malloc(n ? n : 1);

	if (b != NULL && n > 0 && protobuf_c_message_pack(m, b) != n) {
		free(b);
		b = NULL;
	}
	*len = b != NULL ? n : 0;
	return b;
}

/* A whole request frame (header included) for method name with the body
 * bytes (an empty body is not sent at all, as protobuf omits an empty
 * bytes field); malloc'd, NULL when out of memory. */
static inline uint8_t *kh_test_req_frame_raw(uint64_t id, uint32_t deadline_ms, const char *method,
					     const uint8_t *body, size_t blen, size_t *len)
{
	Keyhold__V1__Request env;
	size_t n;
	uint8_t *f;

	keyhold__v1__request__init(&env);
	env.id = id;
	env.method = (char *)(uintptr_t)method;
	env.deadline_ms = deadline_ms;
	env.body.data = (uint8_t *)(uintptr_t)body;
	env.body.len = blen;
	n = keyhold__v1__request__get_packed_size(&env);
	f = malloc(PROTO_HDR_LEN + n);
	if (f == NULL)
		return NULL;
	proto_frame_hdr(n, f);
	if (keyhold__v1__request__pack(&env, f + PROTO_HDR_LEN) != n) {
		free(f);
		return NULL;
	}
	*len = PROTO_HDR_LEN + n;
	return f;
}

/* The same for method m with body a generated message of m's request type
 * (NULL: an empty body). */
static inline uint8_t *kh_test_req_frame(uint64_t id, uint32_t deadline_ms, enum proto_method m,
					 const ProtobufCMessage *body, size_t *len)
{
	const char *name = proto_method_name(m);
	uint8_t *b, *f;
	size_t blen = 0;

	if (name == NULL || (body != NULL && body->descriptor != proto_method_request(m)))
		return NULL;
	b = kh_test_pack(body, &blen);
	if (b == NULL)
		return NULL;
	f = kh_test_req_frame_raw(id, deadline_ms, name, b, blen, len);
	free(b);
	return f;
}

/* A response envelope as the client reads it. */
struct kh_test_resp {
	uint64_t id;
	struct kh_errbuf status; /* the code as a kh_err (outside gRPC's 0..16: UNKNOWN) and message */
	uint8_t *body;           /* owned; NULL when empty */
	size_t body_len;
};

/* Unpacks a Response envelope (payload without header); false when it
 * does not parse (out is then zeroed). */
static inline bool kh_test_resp_decode(const uint8_t *buf, size_t len, struct kh_test_resp *out)
{
	Keyhold__V1__Response *env;
	int code;

	memset(out, 0, sizeof(*out));
	env = keyhold__v1__response__unpack(NULL, len, buf);
	if (env == NULL)
		return false;
	out->id = env->id;
	code = env->status != NULL ? env->status->code : 0;
	if (code < 0 || code > 16)
		code = 2; /* UNKNOWN */
	out->status.code = (enum kh_err)-code;
	if (env->status != NULL && env->status->message != NULL)
		kh_strlcpy(out->status.msg, env->status->message, sizeof(out->status.msg));
	if (env->body.len > 0) {
		out->body = malloc(env->body.len);
		if (out->body == NULL) {
			keyhold__v1__response__free_unpacked(env, NULL);
			memset(out, 0, sizeof(*out));
			return false;
		}
		memcpy(out->body, env->body.data, env->body.len);
		out->body_len = env->body.len;
	}
	keyhold__v1__response__free_unpacked(env, NULL);
	return true;
}

static inline void kh_test_resp_clear(struct kh_test_resp *r)
{
	if (r == NULL)
		return;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

#endif
