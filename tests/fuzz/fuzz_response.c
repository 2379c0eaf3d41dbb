/* fuzz_response.c: the client's side: libkeyhold decodes whatever the
 * server (or a peer posing as one) sends: the Response envelope, then the
 * body as the response message of the method byte 0 picks (a method of
 * `service KeyHold`), walked through the public kh_msg getters. */
#include <stdint.h>
#include <stdlib.h>

#include "kh_client_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every field of m by name, recursing into messages, as a client
 * printing the answer would. */
static void fuzz_walk(const kh_msg *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->msg->descriptor;
	unsigned i;

	if (depth > 8)
		return;
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const uint8_t *b;
		size_t n, k, len;
		kh_msg *kid;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = kh_msg_count(m, f->name);
			for (k = 0; k < n && k < 64; k++) {
				if (f->type == PROTOBUF_C_TYPE_MESSAGE && kh_msg_item(m, f->name, k, &kid) == KH_OK)
					fuzz_walk(kid, depth + 1);
				else if (f->type == PROTOBUF_C_TYPE_STRING)
					kh_ignore(kh_msg_get_str_at(m, f->name, k)[0]);
				else if (f->type == PROTOBUF_C_TYPE_ENUM)
					kh_ignore(kh_msg_get_enum_at(m, f->name, k)[0]);
				else if (f->type == PROTOBUF_C_TYPE_BYTES)
					kh_ignore(kh_msg_get_bytes_at(m, f->name, k, &b, &len));
			}
			continue;
		}
		switch (f->type) {
		case PROTOBUF_C_TYPE_MESSAGE:
			if (kh_msg_item(m, f->name, 0, &kid) == KH_OK)
				fuzz_walk(kid, depth + 1);
			break;
		case PROTOBUF_C_TYPE_STRING: kh_ignore(kh_msg_get_str(m, f->name)[0]); break;
		case PROTOBUF_C_TYPE_BYTES: kh_ignore(kh_msg_get_bytes(m, f->name, &b, &len)); break;
		case PROTOBUF_C_TYPE_ENUM: kh_ignore(kh_msg_get_enum(m, f->name)[0]); break;
		case PROTOBUF_C_TYPE_BOOL: kh_ignore(kh_msg_get_bool(m, f->name)); break;
		default:
			kh_ignore((int)kh_msg_get_uint(m, f->name));
			kh_ignore((int)kh_msg_get_int(m, f->name));
			break;
		}
		kh_ignore(kh_msg_has(m, f->name));
	}
}

static void fuzz_body(const ProtobufCMethodDescriptor *md, const uint8_t *body, size_t len)
{
	struct kh_errbuf e = { 0 };
	kh_msg *m = NULL;

	if (kh_response_body_decode(md, body, len, &m, &e) != KH_OK)
		return;
	fuzz_walk(m, 0);
	kh_msg_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMethodDescriptor *md;
	Keyhold__V1__Response *env = NULL;

	if (size < 1)
		return 0;
	md = &PROTO_SERVICE->methods[data[0] % PROTO_SERVICE->n_methods];
	if (kh_response_decode(data + 1, size - 1, &env) == KH_OK) {
		if (env->status == NULL || env->status->code == 0)
			fuzz_body(md, env->body.data, env->body.len);
		protobuf_c_message_free_unpacked(&env->base, NULL);
	}
	/* Also the whole input as a body: bodies are where the lists are. */
	fuzz_body(md, data + 1, size - 1);
	return 0;
}
