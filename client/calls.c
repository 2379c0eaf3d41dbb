/* calls.c: the typed calls of the public API for the common paths (keys,
 * signing, pipelined signing), on the generated messages directly. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "kh_client_int.h"

#define KH_ENUM_NAME_MAX 32

/* The value of enum ed called name, in either case ("p256" or "P256");
 * NULL name: default (0). */
static enum kh_err kh_enum_by_name(kh_client *c, const ProtobufCEnumDescriptor *ed, const char *name, int *out)
{
	char up[KH_ENUM_NAME_MAX + 1];
	const ProtobufCEnumValue *ev;
	size_t i;

	if (name == NULL) {
		*out = 0;
		return KH_OK;
	}
	for (i = 0; name[i] != '\0' && i < KH_ENUM_NAME_MAX; i++)
		up[i] = (char)toupper((unsigned char)name[i]);
	up[i] = '\0';
	ev = name[i] == '\0' ? protobuf_c_enum_descriptor_get_value_by_name(ed, up) : NULL;
	if (ev == NULL)
		return kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "%s is not a %s", name, ed->short_name);
	*out = ev->value;
	return KH_OK;
}

/* Sends body as method and waits for its answer (*resp: caller frees). */
static enum kh_err kh_call_pb(kh_client *c, const char *method, const ProtobufCMessage *body,
			      ProtobufCMessage **resp)
{
	const ProtobufCMethodDescriptor *md = kh_method_find(method);
	enum kh_err st;
	int r;

	KH_ENSURE(md != NULL, kh_err_set(&c->err, KH_E_INTERNAL, "no method %s", method));
	KH_TRY(kh_exchange_pb(c, md, body, &st, resp));
	r = st;
out:
	return r;
}

/* Copies the bytes of b for the caller (kh_free). */
static enum kh_err kh_dup_bytes(kh_client *c, const ProtobufCBinaryData *b, uint8_t **out, size_t *len)
{
	uint8_t *p = malloc(b->len > 0 ? b->len : 1);

	if (p == NULL)
		return kh_err_set(&c->err, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	if (b->len > 0)
		memcpy(p, b->data, b->len);
	*out = p;
	*len = b->len;
	return KH_OK;
}

static bool kh_args_ok(kh_client *c, const void *a, const void *b)
{
	if (c == NULL)
		return false;
	kh_err_clear(&c->err);
	if (a == NULL || b == NULL) {
		kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "a required argument is NULL");
		return false;
	}
	return true;
}

/* Returns the SPKI of a KeyInfo-carrying response's `key`. */
static enum kh_err kh_key_spki(kh_client *c, const Keyhold__V1__KeyInfo *k, uint8_t **spki, size_t *len)
{
	if (k == NULL)
		return kh_err_set(&c->err, KH_E_DATA_LOSS, "keyholdd's answer has no key");
	return kh_dup_bytes(c, &k->spki, spki, len);
}

enum kh_err kh_key_generate(kh_client *c, const char *name, const char *type, uint8_t **spki_der, size_t *len)
{
	Keyhold__V1__GenerateKeyRequest q = KEYHOLD__V1__GENERATE_KEY_REQUEST__INIT;
	ProtobufCMessage *a = NULL;
	int t, r;

	if (!kh_args_ok(c, name, type))
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_enum_by_name(c, &keyhold__v1__key_type__descriptor, type, &t));
	q.name = (char *)(uintptr_t)name;
	q.type = (Keyhold__V1__KeyType)t;
	KH_TRY(kh_call_pb(c, "GenerateKey", &q.base, &a));
	if (spki_der != NULL && len != NULL)
		KH_TRY(kh_key_spki(c, ((Keyhold__V1__GenerateKeyResponse *)a)->key, spki_der, len));
out:
	if (a != NULL)
		protobuf_c_message_free_unpacked(a, NULL);
	return r;
}

enum kh_err kh_key_public(kh_client *c, const char *name, uint8_t **spki_der, size_t *len)
{
	Keyhold__V1__GetPublicKeyRequest q = KEYHOLD__V1__GET_PUBLIC_KEY_REQUEST__INIT;
	ProtobufCMessage *a = NULL;
	int r;

	if (!kh_args_ok(c, name, spki_der) || len == NULL)
		return KH_E_INVALID_ARGUMENT;
	q.name = (char *)(uintptr_t)name;
	KH_TRY(kh_call_pb(c, "GetPublicKey", &q.base, &a));
	KH_TRY(kh_key_spki(c, ((Keyhold__V1__GetPublicKeyResponse *)a)->key, spki_der, len));
out:
	if (a != NULL)
		protobuf_c_message_free_unpacked(a, NULL);
	return r;
}

enum kh_err kh_key_list(kh_client *c, kh_msg **keys)
{
	kh_msg *q = NULL;
	int r;

	if (!kh_args_ok(c, keys, keys))
		return KH_E_INVALID_ARGUMENT;
	KH_ENSURE(kh_request_new("ListKeys", &q) == KH_OK,
		  kh_err_set(&c->err, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	KH_TRY(kh_call(c, q, keys));
out:
	kh_msg_free(q);
	return r;
}

enum kh_err kh_key_delete(kh_client *c, const char *name)
{
	Keyhold__V1__DeleteKeyRequest q = KEYHOLD__V1__DELETE_KEY_REQUEST__INIT;
	ProtobufCMessage *a = NULL;
	int r;

	if (!kh_args_ok(c, name, name))
		return KH_E_INVALID_ARGUMENT;
	q.name = (char *)(uintptr_t)name;
	KH_TRY(kh_call_pb(c, "DeleteKey", &q.base, &a));
out:
	if (a != NULL)
		protobuf_c_message_free_unpacked(a, NULL);
	return r;
}

/* Fills a SignRequest whose strings and bytes are borrowed. */
static enum kh_err kh_sign_req(kh_client *c, Keyhold__V1__SignRequest *q, const char *key, const char *digest,
			       const char *padding, bool prehashed, const uint8_t *data, size_t len)
{
	int d, p, r;

	KH_TRY(kh_enum_by_name(c, &keyhold__v1__digest__descriptor, digest, &d));
	KH_TRY(kh_enum_by_name(c, &keyhold__v1__padding__descriptor, padding, &p));
	KH_ENSURE(data != NULL || len == 0, kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "no data to sign"));
	q->key = (char *)(uintptr_t)key;
	q->digest = (Keyhold__V1__Digest)d;
	q->padding = (Keyhold__V1__Padding)p;
	if (prehashed) {
		q->input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_PREHASHED;
		q->prehashed.data = (uint8_t *)(uintptr_t)data;
		q->prehashed.len = len;
	} else {
		q->input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE;
		q->message.data = (uint8_t *)(uintptr_t)data;
		q->message.len = len;
	}
out:
	return r;
}

enum kh_err kh_sign(kh_client *c, const char *key, const char *digest, const char *padding, bool prehashed,
		    const uint8_t *data, size_t len, uint8_t **sig, size_t *sig_len)
{
	Keyhold__V1__SignRequest q = KEYHOLD__V1__SIGN_REQUEST__INIT;
	ProtobufCMessage *a = NULL;
	int r;

	if (!kh_args_ok(c, key, sig) || sig_len == NULL)
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_sign_req(c, &q, key, digest, padding, prehashed, data, len));
	KH_TRY(kh_call_pb(c, "Sign", &q.base, &a));
	KH_TRY(kh_dup_bytes(c, &((Keyhold__V1__SignResponse *)a)->signature, sig, sig_len));
out:
	if (a != NULL)
		protobuf_c_message_free_unpacked(a, NULL);
	return r;
}

enum kh_err kh_sign_send(kh_client *c, const char *key, const char *digest, const char *padding, bool prehashed,
			 const uint8_t *data, size_t len, uint64_t *id)
{
	Keyhold__V1__SignRequest q = KEYHOLD__V1__SIGN_REQUEST__INIT;
	const ProtobufCMethodDescriptor *sign = kh_method_find("Sign");
	int r;

	if (!kh_args_ok(c, key, id))
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_sign_req(c, &q, key, digest, padding, prehashed, data, len));
	KH_TRY(kh_send_pb(c, sign, &q.base, id));
out:
	return r;
}

enum kh_err kh_sign_recv(kh_client *c, uint64_t *id, enum kh_err *status, uint8_t *sig, size_t cap,
			 size_t *sig_len)
{
	ProtobufCMessage *a = NULL;
	const ProtobufCBinaryData *s;
	enum kh_err st;
	int r;

	if (!kh_args_ok(c, id, status) || sig == NULL || sig_len == NULL)
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_recv_pb(c, id, &st, &a));
	if (st == KH_OK && a->descriptor != &keyhold__v1__sign_response__descriptor)
		st = kh_err_set(&c->err, KH_E_FAILED_PRECONDITION, "the answer is not a Sign answer");
	if (st == KH_OK) {
		s = &((Keyhold__V1__SignResponse *)a)->signature;
		if (s->len > cap) {
			st = kh_err_set(&c->err, KH_E_OUT_OF_RANGE, "the signature (%zu bytes) exceeds the buffer",
					s->len);
		} else {
			if (s->len > 0)
				memcpy(sig, s->data, s->len);
			*sig_len = s->len;
		}
	}
	*status = st;
out:
	if (a != NULL)
		protobuf_c_message_free_unpacked(a, NULL);
	return r;
}
