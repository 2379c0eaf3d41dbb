/* envelope.c: the Request and Response envelopes, the methods of
 * `service KeyHold` (the generated service descriptor is the method
 * table), and the budgeted unpacking of request bodies. */
#include <stdlib.h>
#include <string.h>

#include "keyhold.pb-c.h"
#include "kh_text.h"
#include "proto.h"

/* ---- budgeted allocator (STYLE "Untrusted input") ---- */

struct proto_budget {
	ProtobufCAllocator a;
	size_t left;
};

static void *proto_budget_alloc(void *data, size_t size)
{
	struct proto_budget *b = data;

	if (size > b->left)
		return NULL;
	b->left -= size;
	return malloc(size);
}

static void proto_budget_free(void *data, void *p)
{
	(void)data;
	free(p);
}

/* A message of len bytes never needs more than a few times len in structs:
 * the slack covers the fixed-size message structs. */
static void proto_budget_init(struct proto_budget *b, size_t len)
{
	b->a.alloc = proto_budget_alloc;
	b->a.free = proto_budget_free;
	b->a.allocator_data = b;
	b->left = 4 * len + 16384;
}

static enum kh_err proto_pack(const ProtobufCMessage *m, size_t hdr, uint8_t **out, size_t *out_len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(hdr + n + 1);

	if (buf == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	if (protobuf_c_message_pack(m, buf + hdr) != n) {
		free(buf);
		return KH_E_INTERNAL;
	}
	if (hdr == PROTO_HDR_LEN)
		proto_frame_hdr(n, buf);
	*out = buf;
	*out_len = hdr + n;
	return KH_OK;
}

/* ---- methods ---- */

static const char *const proto_method_names[PROTO_M_COUNT] = {
#define PROTO_M_NAME(e, n) [PROTO_M_##e] = n,
	PROTO_METHODS(PROTO_M_NAME)
#undef PROTO_M_NAME
};

enum kh_err proto_check_methods(struct kh_errbuf *e)
{
	const ProtobufCServiceDescriptor *sd = &keyhold__v1__key_hold__descriptor;
	unsigned i;

	if (sd->n_methods != PROTO_M_COUNT)
		return kh_err_set(e, KH_E_INTERNAL, "keyhold.proto has %u methods, proto_methods.h %d", sd->n_methods,
				  PROTO_M_COUNT);
	for (i = 0; i < PROTO_M_COUNT; i++)
		if (strcmp(sd->methods[i].name, proto_method_names[i]) != 0)
			return kh_err_set(e, KH_E_INTERNAL, "method %u is %s in keyhold.proto, %s in proto_methods.h", i,
					  sd->methods[i].name, proto_method_names[i]);
	return KH_OK;
}

const char *proto_method_name(enum proto_method m)
{
	return (unsigned)m < PROTO_M_COUNT ? proto_method_names[m] : NULL;
}

const ProtobufCMessageDescriptor *proto_method_request(enum proto_method m)
{
	return (unsigned)m < PROTO_M_COUNT ? keyhold__v1__key_hold__descriptor.methods[m].input : NULL;
}

const ProtobufCMessageDescriptor *proto_method_response(enum proto_method m)
{
	return (unsigned)m < PROTO_M_COUNT ? keyhold__v1__key_hold__descriptor.methods[m].output : NULL;
}

int proto_method_lookup(const char *name)
{
	const ProtobufCServiceDescriptor *sd = &keyhold__v1__key_hold__descriptor;
	const ProtobufCMethodDescriptor *md;

	if (name == NULL)
		return -1;
	md = protobuf_c_service_descriptor_get_method_by_name(sd, name);
	if (md == NULL)
		return -1;
	return (int)(md - sd->methods);
}

/* ---- requests ---- */

/* The method name must be the whole field: one with a NUL byte would be
 * cut short when unpacked (request_head.c). */
static enum kh_err proto_request_method_check(const uint8_t *buf, size_t len, struct kh_errbuf *e)
{
	struct proto_req_head h;

	if (!proto_request_head(buf, len, &h))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "malformed request envelope");
	if (h.method_nul)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the method name contains a NUL byte");
	return KH_OK;
}

enum kh_err proto_request_decode(const uint8_t *buf, size_t len, struct proto_req *out, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct proto_budget b1, b2;
	Keyhold__V1__Request *env = NULL;
	ProtobufCMessage *body = NULL;
	int m;

	memset(out, 0, sizeof(*out));
	proto_budget_init(&b1, len);
	env = keyhold__v1__request__unpack(&b1.a, len, buf);
	KH_ENSURE(env != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "malformed request envelope"));
	out->id = env->id;
	out->have_id = true;
	out->deadline_ms = env->deadline_ms;
	KH_TRY(proto_request_method_check(buf, len, e));
	m = proto_method_lookup(env->method);
	KH_ENSURE(m >= 0 && m < PROTO_M_COUNT,
		  kh_err_set(e, KH_E_UNIMPLEMENTED, "unknown method '%.64s'", env->method));
	out->method = (enum proto_method)m;
	proto_budget_init(&b2, env->body.len);
	body = protobuf_c_message_unpack(proto_method_request(out->method), &b2.a, env->body.len, env->body.data);
	KH_ENSURE(body != NULL,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "malformed %s request body", proto_method_name(out->method)));
	KH_TRY(proto_validate(body, e));
	/* The budget allocator's blocks are malloc's: freed by protobuf-c's
	 * default allocator in proto_req_clear. */
	out->msg = body;
	body = NULL;
out:
	protobuf_c_message_free_unpacked(body, &b2.a);
	if (env != NULL)
		keyhold__v1__request__free_unpacked(env, &b1.a);
	return r;
}

void proto_req_clear(struct proto_req *r)
{
	if (r == NULL)
		return;
	protobuf_c_message_free_unpacked(r->msg, NULL);
	r->msg = NULL;
}

/* ---- responses ---- */

enum kh_err proto_response_encode_msg(uint64_t id, enum kh_err code, const char *msg,
				      const ProtobufCMessage *body, uint8_t **frame, size_t *frame_len)
{
	Keyhold__V1__Response env;
	Keyhold__V1__Status st;
	char text[1024];
	uint8_t *payload = NULL;
	size_t plen = 0;
	int r;

	keyhold__v1__response__init(&env);
	keyhold__v1__status__init(&st);
	if (code == KH_OK && body != NULL) {
		r = proto_pack(body, 0, &payload, &plen);
		if (r != KH_OK) {
			code = r;
			msg = "cannot encode the response";
		}
	}
	env.id = id;
	st.code = -(int)code;
	/* proto3: a string is valid UTF-8 or stock clients reject the whole
	 * answer; the message may quote what a client sent. */
	kh_utf8_sanitize(text, sizeof(text), code == KH_OK || msg == NULL ? "" : msg);
	st.message = text;
	env.status = &st;
	if (code == KH_OK) {
		env.body.data = payload;
		env.body.len = plen;
	}
	r = proto_pack(&env.base, PROTO_HDR_LEN, frame, frame_len);
	free(payload);
	return r;
}
