/* msg.c: kh_msg, the generic request/response message of the public API:
 * fields reached by name through protobuf-c's generated descriptors, so
 * the schema lives only in keyhold.proto (no per-message C code). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kh_client_int.h"

/* Caps per value; the whole request is checked against the frame cap
 * when it is sent. */
#define KH_MSG_STR_MAX (1u << 20)
#define KH_MSG_BYTES_MAX (64u << 20)

enum kh_kind { KH_K_STR, KH_K_BYTES, KH_K_INT, KH_K_UINT, KH_K_BOOL, KH_K_ENUM, KH_K_MSG, KH_K_OTHER };

static const char *const kh_kind_names[] = { "string", "bytes", "integer", "integer", "bool", "enum", "message",
					     "unsupported" };

static enum kh_kind kh_kind_of(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: return KH_K_STR;
	case PROTOBUF_C_TYPE_BYTES: return KH_K_BYTES;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: return KH_K_INT;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: return KH_K_UINT;
	case PROTOBUF_C_TYPE_BOOL: return KH_K_BOOL;
	case PROTOBUF_C_TYPE_ENUM: return KH_K_ENUM;
	case PROTOBUF_C_TYPE_MESSAGE: return KH_K_MSG;
	default: return KH_K_OTHER;
	}
}

static kh_msg *kh_root(const kh_msg *m)
{
	return m->root != NULL ? m->root : (kh_msg *)(uintptr_t)m;
}

static enum kh_err kh_msg_fail(const kh_msg *m, enum kh_err code, const char *fmt, ...) KH_PRINTF(3, 4);
static enum kh_err kh_msg_fail(const kh_msg *m, enum kh_err code, const char *fmt, ...)
{
	kh_msg *root = kh_root(m);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(root->err, sizeof(root->err), fmt, ap);
	va_end(ap);
	return code;
}

#define KH_MEMBER(m, off) ((void *)((char *)(m)->msg + (off)))

/* The field called name, of a kind accepted by want (a bit per kind), and
 * repeated or not as asked. NULL (the reason recorded) otherwise. */
static const ProtobufCFieldDescriptor *kh_field(const kh_msg *m, const char *name, unsigned want, bool repeated)
{
	const ProtobufCMessageDescriptor *d;
	const ProtobufCFieldDescriptor *f;
	enum kh_kind k;

	if (m == NULL)
		return NULL;
	d = m->msg->descriptor;
	f = name != NULL ? protobuf_c_message_descriptor_get_field_by_name(d, name) : NULL;
	if (f == NULL) {
		kh_msg_fail(m, KH_E_INVALID_ARGUMENT, "%s has no field %s", d->name, name ? name : "(null)");
		return NULL;
	}
	k = kh_kind_of(f);
	if ((want & (1u << k)) == 0) {
		kh_msg_fail(m, KH_E_INVALID_ARGUMENT, "%s.%s is a %s field", d->name, name, kh_kind_names[k]);
		return NULL;
	}
	if ((f->label == PROTOBUF_C_LABEL_REPEATED) != repeated) {
		kh_msg_fail(m, KH_E_INVALID_ARGUMENT, "%s.%s is %srepeated", d->name, name, repeated ? "not " : "");
		return NULL;
	}
	return f;
}

#define W(k) (1u << (k))
#define W_INT (W(KH_K_INT) | W(KH_K_UINT))

/* ---- handles ---- */

const ProtobufCMethodDescriptor *kh_method_find(const char *name)
{
	if (name == NULL)
		return NULL;
	return protobuf_c_service_descriptor_get_method_by_name(PROTO_SERVICE, name);
}

enum kh_err kh_msg_wrap(ProtobufCMessage *pb, const ProtobufCMethodDescriptor *method, kh_msg **out)
{
	kh_msg *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		protobuf_c_message_free_unpacked(pb, NULL);
		return KH_E_RESOURCE_EXHAUSTED;
	}
	m->msg = pb;
	m->method = method;
	*out = m;
	return KH_OK;
}

static ProtobufCMessage *kh_pb_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *pb = malloc(d->sizeof_message);

	if (pb != NULL)
		protobuf_c_message_init(d, pb);
	return pb;
}

enum kh_err kh_request_new(const char *method, kh_msg **out)
{
	const ProtobufCMethodDescriptor *md = kh_method_find(method);
	ProtobufCMessage *pb;

	if (md == NULL || out == NULL)
		return KH_E_INVALID_ARGUMENT;
	pb = kh_pb_new(md->input);
	if (pb == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	return kh_msg_wrap(pb, md, out);
}

enum kh_err kh_response_body_decode(const ProtobufCMethodDescriptor *method, const uint8_t *body, size_t len,
				    kh_msg **out, struct kh_errbuf *e)
{
	ProtobufCMessage *pb = protobuf_c_message_unpack(method->output, NULL, len, body);

	if (pb == NULL)
		return kh_err_set(e, KH_E_DATA_LOSS, "keyholdd sent a malformed %s", method->output->short_name);
	if (kh_msg_wrap(pb, method, out) != KH_OK)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	return KH_OK;
}

void kh_msg_free(kh_msg *m)
{
	size_t i;

	if (m == NULL || m->root != NULL)
		return;
	for (i = 0; i < m->n_kids; i++)
		free(m->kids[i]);
	free(m->kids);
	protobuf_c_message_free_unpacked(m->msg, NULL);
	free(m);
}

/* The borrowed handle of pb, a message inside m's tree. */
static enum kh_err kh_child(const kh_msg *m, ProtobufCMessage *pb, kh_msg **out)
{
	kh_msg *root = kh_root(m);
	kh_msg *k;
	size_t i;

	for (i = 0; i < root->n_kids; i++) {
		if (root->kids[i]->msg == pb) {
			*out = root->kids[i];
			return KH_OK;
		}
	}
	if (root->n_kids == root->cap_kids) {
		size_t cap = root->cap_kids ? 2 * root->cap_kids : 8;
		kh_msg **nk = realloc(root->kids, cap * sizeof(*nk));

		if (nk == NULL)
			return kh_msg_fail(m, KH_E_RESOURCE_EXHAUSTED, "out of memory");
		root->kids = nk;
		root->cap_kids = cap;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return kh_msg_fail(m, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	k->msg = pb;
	k->root = root;
	root->kids[root->n_kids++] = k;
	*out = k;
	return KH_OK;
}

const char *kh_msg_type(const kh_msg *m)
{
	return m != NULL ? m->msg->descriptor->name : "";
}

const char *kh_msg_method(const kh_msg *m)
{
	return m != NULL && m->method != NULL ? m->method->name : "";
}

const char *kh_msg_error_message(const kh_msg *m)
{
	return m != NULL ? kh_root(m)->err : "no message";
}

/* ---- setters ---- */

/* Frees what a singular field owns and resets it to its default. */
static void kh_field_clear(kh_msg *m, const ProtobufCFieldDescriptor *f)
{
	void *p = KH_MEMBER(m, f->offset);

	switch (kh_kind_of(f)) {
	case KH_K_STR: {
		char **s = p;

		if (*s != NULL && *s != protobuf_c_empty_string && *s != (const char *)f->default_value)
			free(*s);
		*s = (char *)(uintptr_t)protobuf_c_empty_string;
		break;
	}
	case KH_K_BYTES: {
		ProtobufCBinaryData *b = p;

		if (f->default_value == NULL || b->data != ((const ProtobufCBinaryData *)f->default_value)->data)
			free(b->data);
		b->data = NULL;
		b->len = 0;
		break;
	}
	case KH_K_MSG: {
		ProtobufCMessage **sub = p;

		if (*sub != NULL)
			protobuf_c_message_free_unpacked(*sub, NULL);
		*sub = NULL;
		break;
	}
	default:
		break;
	}
}

/* The storage size of a singular field. */
static size_t kh_field_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE: return 8;
	default: return 4;
	}
}

/* Prepares singular field f for a new value: selects it in its oneof
 * (freeing the member it replaces) and marks it present. */
static void kh_field_select(kh_msg *m, const ProtobufCFieldDescriptor *f)
{
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *which = KH_MEMBER(m, f->quantifier_offset);

		if (*which != f->id) {
			const ProtobufCFieldDescriptor *old =
				*which != 0 ? protobuf_c_message_descriptor_get_field(m->msg->descriptor, *which) : NULL;

			if (old != NULL)
				kh_field_clear(m, old);
			/* Members share a union: start f from nothing. */
			memset(KH_MEMBER(m, f->offset), 0, kh_field_size(f));
			*which = f->id;
		}
	} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
		   kh_kind_of(f) != KH_K_STR && kh_kind_of(f) != KH_K_MSG) {
		*(protobuf_c_boolean *)KH_MEMBER(m, f->quantifier_offset) = 1;
	}
}

/* Writes an integer (range-checked against the field's width). */
static enum kh_err kh_put_int(kh_msg *m, const ProtobufCFieldDescriptor *f, bool neg, uint64_t mag)
{
	void *p = KH_MEMBER(m, f->offset);
	bool wide = f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_SINT64 ||
		    f->type == PROTOBUF_C_TYPE_SFIXED64 || f->type == PROTOBUF_C_TYPE_UINT64 ||
		    f->type == PROTOBUF_C_TYPE_FIXED64;
	bool ok;

	if (kh_kind_of(f) == KH_K_UINT)
		ok = !neg && (wide || mag <= UINT32_MAX);
	else
		ok = neg ? mag <= (wide ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT32_MAX + 1)
			 : mag <= (wide ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX);
	if (!ok)
		return kh_msg_fail(m, KH_E_OUT_OF_RANGE, "%s.%s: value out of range", m->msg->descriptor->name,
				   f->name);
	kh_field_select(m, f);
	if (kh_kind_of(f) == KH_K_UINT) {
		if (wide)
			*(uint64_t *)p = mag;
		else
			*(uint32_t *)p = (uint32_t)mag;
	} else {
		int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag;

		if (wide)
			*(int64_t *)p = v;
		else
			*(int32_t *)p = (int32_t)v;
	}
	return KH_OK;
}

static enum kh_err kh_copy_str(kh_msg *m, const ProtobufCFieldDescriptor *f, const char *v, char **out)
{
	if (v == NULL || strnlen(v, KH_MSG_STR_MAX + 1) > KH_MSG_STR_MAX)
		return kh_msg_fail(m, KH_E_INVALID_ARGUMENT, "%s.%s: a string of at most %u bytes is needed",
				   m->msg->descriptor->name, f->name, KH_MSG_STR_MAX);
	*out = strdup(v);
	if (*out == NULL)
		return kh_msg_fail(m, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	return KH_OK;
}

static enum kh_err kh_copy_bytes(kh_msg *m, const ProtobufCFieldDescriptor *f, const uint8_t *v, size_t len,
				 ProtobufCBinaryData *out)
{
	if ((v == NULL && len != 0) || len > KH_MSG_BYTES_MAX)
		return kh_msg_fail(m, KH_E_INVALID_ARGUMENT, "%s.%s: at most %u bytes", m->msg->descriptor->name,
				   f->name, KH_MSG_BYTES_MAX);
	out->len = len;
	out->data = NULL;
	if (len == 0)
		return KH_OK;
	out->data = malloc(len);
	if (out->data == NULL)
		return kh_msg_fail(m, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	memcpy(out->data, v, len);
	return KH_OK;
}

static enum kh_err kh_enum_value(kh_msg *m, const ProtobufCFieldDescriptor *f, const char *name, int *out)
{
	const ProtobufCEnumDescriptor *ed = f->descriptor;
	const ProtobufCEnumValue *ev = name != NULL ? protobuf_c_enum_descriptor_get_value_by_name(ed, name) : NULL;

	if (ev == NULL)
		return kh_msg_fail(m, KH_E_INVALID_ARGUMENT, "%s.%s: %s is not a %s", m->msg->descriptor->name, f->name,
				   name ? name : "(null)", ed->name);
	*out = ev->value;
	return KH_OK;
}

enum kh_err kh_msg_set_str(kh_msg *m, const char *field, const char *v)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_STR), false);
	char *s = NULL;
	int r;

	if (f == NULL)
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_copy_str(m, f, v, &s));
	kh_field_select(m, f);
	kh_field_clear(m, f);
	*(char **)KH_MEMBER(m, f->offset) = s;
out:
	return r;
}

enum kh_err kh_msg_set_bytes(kh_msg *m, const char *field, const uint8_t *v, size_t len)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_BYTES), false);
	ProtobufCBinaryData b;
	int r;

	if (f == NULL)
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_copy_bytes(m, f, v, len, &b));
	kh_field_select(m, f);
	kh_field_clear(m, f);
	*(ProtobufCBinaryData *)KH_MEMBER(m, f->offset) = b;
out:
	return r;
}

enum kh_err kh_msg_set_uint(kh_msg *m, const char *field, uint64_t v)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W_INT, false);

	if (f == NULL)
		return KH_E_INVALID_ARGUMENT;
	return kh_put_int(m, f, false, v);
}

enum kh_err kh_msg_set_int(kh_msg *m, const char *field, int64_t v)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W_INT, false);

	if (f == NULL)
		return KH_E_INVALID_ARGUMENT;
	return kh_put_int(m, f, v < 0, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

enum kh_err kh_msg_set_bool(kh_msg *m, const char *field, bool v)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_BOOL), false);

	if (f == NULL)
		return KH_E_INVALID_ARGUMENT;
	kh_field_select(m, f);
	*(protobuf_c_boolean *)KH_MEMBER(m, f->offset) = v;
	return KH_OK;
}

enum kh_err kh_msg_set_enum(kh_msg *m, const char *field, const char *value_name)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_ENUM), false);
	int v = 0, r;

	if (f == NULL)
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_enum_value(m, f, value_name, &v));
	kh_field_select(m, f);
	*(int *)KH_MEMBER(m, f->offset) = v;
out:
	return r;
}

/* Makes room for one more element of repeated field f (elem bytes each). */
static enum kh_err kh_rep_grow(kh_msg *m, const ProtobufCFieldDescriptor *f, size_t elem, void **slot)
{
	size_t *n = KH_MEMBER(m, f->quantifier_offset);
	void **arr = KH_MEMBER(m, f->offset);
	void *na;

	if (*n >= KH_MSG_BYTES_MAX / elem)
		return kh_msg_fail(m, KH_E_OUT_OF_RANGE, "%s.%s: too many elements", m->msg->descriptor->name,
				   f->name);
	na = realloc(*arr, (*n + 1) * elem);
	if (na == NULL)
		return kh_msg_fail(m, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	*arr = na;
	*slot = (char *)na + *n * elem;
	return KH_OK;
}

static void kh_rep_commit(kh_msg *m, const ProtobufCFieldDescriptor *f)
{
	(*(size_t *)KH_MEMBER(m, f->quantifier_offset))++;
}

enum kh_err kh_msg_add_str(kh_msg *m, const char *field, const char *v)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_STR), true);
	char *s = NULL;
	void *slot = NULL;
	int r;

	if (f == NULL)
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_copy_str(m, f, v, &s));
	KH_TRY(kh_rep_grow(m, f, sizeof(char *), &slot));
	*(char **)slot = s;
	s = NULL;
	kh_rep_commit(m, f);
out:
	free(s);
	return r;
}

enum kh_err kh_msg_add_bytes(kh_msg *m, const char *field, const uint8_t *v, size_t len)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_BYTES), true);
	ProtobufCBinaryData b = { 0, NULL };
	void *slot = NULL;
	int r;

	if (f == NULL)
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_copy_bytes(m, f, v, len, &b));
	KH_TRY(kh_rep_grow(m, f, sizeof(b), &slot));
	*(ProtobufCBinaryData *)slot = b;
	b.data = NULL;
	kh_rep_commit(m, f);
out:
	free(b.data);
	return r;
}

enum kh_err kh_msg_add_enum(kh_msg *m, const char *field, const char *value_name)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_ENUM), true);
	void *slot = NULL;
	int v = 0, r;

	if (f == NULL)
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_enum_value(m, f, value_name, &v));
	KH_TRY(kh_rep_grow(m, f, sizeof(int), &slot));
	*(int *)slot = v;
	kh_rep_commit(m, f);
out:
	return r;
}

enum kh_err kh_msg_sub(kh_msg *m, const char *field, kh_msg **child)
{
	const ProtobufCFieldDescriptor *f;
	ProtobufCMessage *pb = NULL;
	int r;

	if (m == NULL || child == NULL || field == NULL)
		return KH_E_INVALID_ARGUMENT;
	f = protobuf_c_message_descriptor_get_field_by_name(m->msg->descriptor, field);
	f = kh_field(m, field, W(KH_K_MSG), f != NULL && f->label == PROTOBUF_C_LABEL_REPEATED);
	if (f == NULL)
		return KH_E_INVALID_ARGUMENT;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		void *slot = NULL;

		pb = kh_pb_new(f->descriptor);
		KH_ENSURE(pb != NULL, kh_msg_fail(m, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
		KH_TRY(kh_rep_grow(m, f, sizeof(pb), &slot));
		*(ProtobufCMessage **)slot = pb;
		kh_rep_commit(m, f);
		r = kh_child(m, pb, child);
		pb = NULL;
		goto out;
	}
	kh_field_select(m, f);
	if (*(ProtobufCMessage **)KH_MEMBER(m, f->offset) == NULL) {
		pb = kh_pb_new(f->descriptor);
		KH_ENSURE(pb != NULL, kh_msg_fail(m, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
		*(ProtobufCMessage **)KH_MEMBER(m, f->offset) = pb;
		pb = NULL;
	}
	r = kh_child(m, *(ProtobufCMessage **)KH_MEMBER(m, f->offset), child);
out:
	if (pb != NULL)
		protobuf_c_message_free_unpacked(pb, NULL);
	return r;
}

/* ---- getters ---- */

static bool kh_get_intval(const kh_msg *m, const char *field, bool *neg, uint64_t *mag);

/* Whether singular field f holds its own value (a oneof member that is
 * not selected reads as the default). */
static bool kh_selected(const kh_msg *m, const ProtobufCFieldDescriptor *f)
{
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)KH_MEMBER(m, f->quantifier_offset) == f->id;
	return true;
}

bool kh_msg_has(const kh_msg *m, const char *field)
{
	const ProtobufCFieldDescriptor *f;
	const void *p;

	if (m == NULL || field == NULL)
		return false;
	f = protobuf_c_message_descriptor_get_field_by_name(m->msg->descriptor, field);
	if (f == NULL)
		return false;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)KH_MEMBER(m, f->quantifier_offset) > 0;
	if (!kh_selected(m, f))
		return false;
	p = KH_MEMBER(m, f->offset);
	switch (kh_kind_of(f)) {
	case KH_K_STR: return *(char *const *)p != NULL && (*(char *const *)p)[0] != '\0';
	case KH_K_BYTES: return ((const ProtobufCBinaryData *)p)->len > 0;
	case KH_K_MSG: return *(ProtobufCMessage *const *)p != NULL;
	case KH_K_BOOL: return *(const protobuf_c_boolean *)p != 0;
	case KH_K_ENUM: return *(const int *)p != 0;
	case KH_K_INT:
	case KH_K_UINT: {
		bool neg;
		uint64_t mag;

		return kh_get_intval(m, field, &neg, &mag) && mag != 0;
	}
	default: return false;
	}
}

const char *kh_msg_get_str(const kh_msg *m, const char *field)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_STR), false);
	const char *s;

	if (f == NULL || !kh_selected(m, f))
		return "";
	s = *(char *const *)KH_MEMBER(m, f->offset);
	return s != NULL ? s : "";
}

enum kh_err kh_msg_get_bytes(const kh_msg *m, const char *field, const uint8_t **v, size_t *len)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_BYTES), false);
	const ProtobufCBinaryData *b;

	if (f == NULL || v == NULL || len == NULL)
		return KH_E_INVALID_ARGUMENT;
	b = KH_MEMBER(m, f->offset);
	*v = kh_selected(m, f) && b->len > 0 ? b->data : NULL;
	*len = *v != NULL ? b->len : 0;
	return KH_OK;
}

/* Reads an integer field as sign + magnitude. */
static bool kh_get_intval(const kh_msg *m, const char *field, bool *neg, uint64_t *mag)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W_INT, false);
	const void *p;
	int64_t v;

	*neg = false;
	*mag = 0;
	if (f == NULL || !kh_selected(m, f))
		return f != NULL;
	p = KH_MEMBER(m, f->offset);
	switch (f->type) {
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: *mag = *(const uint32_t *)p; return true;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: *mag = *(const uint64_t *)p; return true;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: v = *(const int64_t *)p; break;
	default: v = *(const int32_t *)p; break;
	}
	*neg = v < 0;
	*mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	return true;
}

uint64_t kh_msg_get_uint(const kh_msg *m, const char *field)
{
	bool neg;
	uint64_t mag;

	if (!kh_get_intval(m, field, &neg, &mag))
		return 0;
	if (neg) {
		kh_msg_fail(m, KH_E_OUT_OF_RANGE, "%s.%s is negative", m->msg->descriptor->name, field);
		return 0;
	}
	return mag;
}

int64_t kh_msg_get_int(const kh_msg *m, const char *field)
{
	bool neg;
	uint64_t mag;

	if (!kh_get_intval(m, field, &neg, &mag))
		return 0;
	if (!neg && mag > (uint64_t)INT64_MAX) {
		kh_msg_fail(m, KH_E_OUT_OF_RANGE, "%s.%s does not fit int64", m->msg->descriptor->name, field);
		return 0;
	}
	return neg ? (int64_t)(0 - mag) : (int64_t)mag;
}

bool kh_msg_get_bool(const kh_msg *m, const char *field)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_BOOL), false);

	return f != NULL && kh_selected(m, f) && *(const protobuf_c_boolean *)KH_MEMBER(m, f->offset) != 0;
}

static const char *kh_enum_name(const ProtobufCFieldDescriptor *f, int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);

	return ev != NULL ? ev->name : "";
}

const char *kh_msg_get_enum(const kh_msg *m, const char *field)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, W(KH_K_ENUM), false);

	if (f == NULL)
		return "";
	return kh_enum_name(f, kh_selected(m, f) ? *(const int *)KH_MEMBER(m, f->offset) : 0);
}

size_t kh_msg_count(const kh_msg *m, const char *field)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, ~0u, true);

	return f != NULL ? *(const size_t *)KH_MEMBER(m, f->quantifier_offset) : 0;
}

/* Element i of repeated field (of a kind in want), or NULL past the end. */
static const void *kh_at(const kh_msg *m, const char *field, unsigned want, size_t i, size_t elem,
			 const ProtobufCFieldDescriptor **fd)
{
	const ProtobufCFieldDescriptor *f = kh_field(m, field, want, true);

	if (f == NULL)
		return NULL;
	if (i >= *(const size_t *)KH_MEMBER(m, f->quantifier_offset)) {
		kh_msg_fail(m, KH_E_OUT_OF_RANGE, "%s.%s has no element %zu", m->msg->descriptor->name, field, i);
		return NULL;
	}
	if (fd != NULL)
		*fd = f;
	return *(char *const *)KH_MEMBER(m, f->offset) + i * elem;
}

enum kh_err kh_msg_item(const kh_msg *m, const char *field, size_t i, kh_msg **child)
{
	const ProtobufCFieldDescriptor *f;
	ProtobufCMessage *const *p;

	if (m == NULL || field == NULL || child == NULL)
		return KH_E_INVALID_ARGUMENT;
	f = protobuf_c_message_descriptor_get_field_by_name(m->msg->descriptor, field);
	if (f != NULL && f->label != PROTOBUF_C_LABEL_REPEATED) {
		f = kh_field(m, field, W(KH_K_MSG), false);
		if (f == NULL)
			return KH_E_INVALID_ARGUMENT;
		p = KH_MEMBER(m, f->offset);
		if (i != 0 || !kh_selected(m, f) || *p == NULL)
			return KH_E_NOT_FOUND;
		return kh_child(m, *p, child);
	}
	p = kh_at(m, field, W(KH_K_MSG), i, sizeof(*p), NULL);
	if (p == NULL)
		return kh_msg_count(m, field) <= i && f != NULL ? KH_E_OUT_OF_RANGE : KH_E_INVALID_ARGUMENT;
	return kh_child(m, *p, child);
}

const char *kh_msg_get_str_at(const kh_msg *m, const char *field, size_t i)
{
	char *const *p = kh_at(m, field, W(KH_K_STR), i, sizeof(char *), NULL);

	return p != NULL && *p != NULL ? *p : "";
}

enum kh_err kh_msg_get_bytes_at(const kh_msg *m, const char *field, size_t i, const uint8_t **v, size_t *len)
{
	const ProtobufCBinaryData *b = kh_at(m, field, W(KH_K_BYTES), i, sizeof(*b), NULL);

	if (b == NULL || v == NULL || len == NULL)
		return KH_E_OUT_OF_RANGE;
	*v = b->len > 0 ? b->data : NULL;
	*len = *v != NULL ? b->len : 0;
	return KH_OK;
}

const char *kh_msg_get_enum_at(const kh_msg *m, const char *field, size_t i)
{
	const ProtobufCFieldDescriptor *f = NULL;
	const int *p = kh_at(m, field, W(KH_K_ENUM), i, sizeof(int), &f);

	return p != NULL ? kh_enum_name(f, *p) : "";
}
