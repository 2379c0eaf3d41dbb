/* codec_util.c: the helpers every codec file shares (codec_util.h). */
#include <stdlib.h>
#include <string.h>

#include "codec_util.h"
#include "kh_util.h"

enum kh_err proto_pack_msg(const ProtobufCMessage *m, uint8_t **out, size_t *out_len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n + 1);

	if (buf == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	if (protobuf_c_message_pack(m, buf) != n) {
		free(buf);
		return KH_E_INTERNAL;
	}
	*out = buf;
	*out_len = n;
	return KH_OK;
}

char *proto_mut(const char *s)
{
	union {
		const char *c;
		char *m;
	} u;

	u.c = s;
	return u.m;
}

void proto_cstr(char *dst, size_t dstsz, const char *src)
{
	kh_strlcpy(dst, src != NULL ? src : "", dstsz);
}

enum kh_err proto_check_name(const char *in, char out[KH_NAME_MAX + 1], const char *what, struct kh_errbuf *e)
{
	if (!kh_name_valid(in))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s name must match [A-Za-z0-9._-]{1,64}", what);
	kh_strlcpy(out, in, KH_NAME_MAX + 1);
	return KH_OK;
}

enum kh_err proto_check_text(const char *in, char *out, size_t outsz, const char *what, struct kh_errbuf *e)
{
	size_t i, n;

	if (in == NULL)
		in = "";
	n = strlen(in);
	if (n > outsz - 1)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s is longer than %zu characters", what, outsz - 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c == 0x7f)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s contains a control character", what);
	}
	memcpy(out, in, n + 1);
	return KH_OK;
}

enum kh_err proto_take_blob(ProtobufCBinaryData *in, struct kh_bytes *out, bool required, const char *what,
			    struct kh_errbuf *e)
{
	if (in->len == 0 && required)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s is empty", what);
	if (in->len > KH_PKI_BLOB_MAX)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s is larger than %u bytes", what, KH_PKI_BLOB_MAX);
	out->data = in->data;
	out->len = in->len;
	in->data = NULL;
	in->len = 0;
	return KH_OK;
}

void proto_pb_cert(const struct kh_cert_info *c, Keyhold__V1__CertInfo *m)
{
	keyhold__v1__cert_info__init(m);
	m->subject = proto_mut(c->subject);
	m->issuer = proto_mut(c->issuer);
	m->serial = proto_mut(c->serial);
	m->not_before = c->not_before;
	m->not_after = c->not_after;
	m->fingerprint = proto_mut(c->fingerprint);
	m->ca = c->ca;
	m->self_signed = c->self_signed;
}

void proto_cert_from(const Keyhold__V1__CertInfo *m, struct kh_cert_info *c)
{
	memset(c, 0, sizeof(*c));
	if (m == NULL)
		return;
	proto_cstr(c->subject, sizeof(c->subject), m->subject);
	proto_cstr(c->issuer, sizeof(c->issuer), m->issuer);
	proto_cstr(c->serial, sizeof(c->serial), m->serial);
	c->not_before = m->not_before;
	c->not_after = m->not_after;
	proto_cstr(c->fingerprint, sizeof(c->fingerprint), m->fingerprint);
	c->ca = m->ca;
	c->self_signed = m->self_signed;
}

void proto_selftest_from(const Keyhold__V1__SelfTestResult *m, struct kh_selftest_result *out)
{
	memset(out, 0, sizeof(*out));
	if (m == NULL)
		return;
	proto_cstr(out->id, sizeof(out->id), m->id);
	proto_cstr(out->type, sizeof(out->type), m->type);
	proto_cstr(out->description, sizeof(out->description), m->description);
	proto_cstr(out->source, sizeof(out->source), m->source);
	out->passed = m->passed;
	out->duration_us = m->duration_us;
	proto_cstr(out->detail, sizeof(out->detail), m->detail);
}
