/* gen_seeds.c: writes the seed corpora of the fuzz targets from real
 * requests and responses, built as generated messages and framed as a
 * client and the server do (run by hand; its output is committed under
 * tests/fuzz/corpus/<target>/):  gen_seeds CORPUS_DIR */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keyhold.pb-c.h"
#include "kh_test_wire.h"
#include "proto.h"

static const char *root;

static void put(const char *target, const char *name, const uint8_t *a, size_t alen, const uint8_t *b,
		size_t blen)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	f = fopen(path, "wb");
	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (alen)
		fwrite(a, 1, alen, f);
	if (blen)
		fwrite(b, 1, blen, f);
	fclose(f);
}

/* The request seeds of one request: the frame payload (fuzz_request),
 * the whole frame (fuzz_frame) and the body after the method byte
 * (fuzz_body). body is a message of m's request type, or NULL. */
static void req_seed(enum proto_method m, const ProtobufCMessage *body, const char *tag)
{
	uint8_t *frame, *b, sel = (uint8_t)m, ch = 6;
	size_t len = 0, blen = 0;
	char name[96];

	frame = kh_test_req_frame(42, 5000, m, body, &len);
	b = kh_test_pack(body, &blen);
	if (frame == NULL || b == NULL)
		exit(1);
	snprintf(name, sizeof(name), "%s-%s", proto_method_name(m), tag);
	put("fuzz_request", name, frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, NULL, 0);
	put("fuzz_frame", name, &ch, 1, frame, len);
	put("fuzz_body", name, &sel, 1, b, blen);
	free(b);
	free(frame);
}

/* An OK answer to m with body (a message of m's response type) as the
 * client reads it: the method byte, then the Response envelope. */
static void resp_seed(enum proto_method m, const ProtobufCMessage *body, const char *tag)
{
	uint8_t *frame = NULL, sel = (uint8_t)m;
	size_t len = 0;
	char name[96];

	if (body->descriptor != proto_method_response(m) ||
	    proto_response_encode_msg(42, KH_OK, NULL, body, &frame, &len) != KH_OK)
		exit(1);
	snprintf(name, sizeof(name), "%s-%s", proto_method_name(m), tag);
	put("fuzz_response", name, &sel, 1, frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN);
	free(frame);
}

/* Appends a whole request frame to a growing connection seed. */
static void conn_add(uint8_t **buf, size_t *len, uint64_t id, enum proto_method m, const ProtobufCMessage *body)
{
	uint8_t *frame, *nb;
	size_t flen = 0;

	frame = kh_test_req_frame(id, 0, m, body, &flen);
	if (frame == NULL)
		exit(1);
	nb = realloc(*buf, *len + flen);
	if (nb == NULL)
		exit(1);
	memcpy(nb + *len, frame, flen);
	*buf = nb;
	*len += flen;
	free(frame);
}

static char *cstr(const char *s)
{
	return (char *)(uintptr_t)s;
}

static void sign_input(Keyhold__V1__SignRequest *s, bool prehashed, uint8_t *data, size_t len)
{
	s->input_case = prehashed ? KEYHOLD__V1__SIGN_REQUEST__INPUT_PREHASHED : KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE;
	if (prehashed) {
		s->prehashed.data = data;
		s->prehashed.len = len;
	} else {
		s->message.data = data;
		s->message.len = len;
	}
}

static void conn_seeds(void)
{
	Keyhold__V1__SignRequest sign;
	Keyhold__V1__GetPublicKeyRequest pub;
	Keyhold__V1__DeleteKeyRequest del;
	Keyhold__V1__AuditShowRequest show;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint8_t msg[] = "fuzz me";
	uint8_t dig[48] = { 9 };
	static const uint8_t junk[] = { 0, 0, 0, 3, 0xff, 0xff, 0xff };

	conn_add(&buf, &len, 1, PROTO_M_GET_STATUS, NULL);
	keyhold__v1__sign_request__init(&sign);
	sign.key = cstr("fz-ec");
	sign_input(&sign, false, msg, sizeof(msg) - 1);
	conn_add(&buf, &len, 2, PROTO_M_SIGN, &sign.base);
	sign.digest = KEYHOLD__V1__DIGEST__SHA384;
	sign_input(&sign, true, dig, 48);
	conn_add(&buf, &len, 3, PROTO_M_SIGN, &sign.base);
	conn_add(&buf, &len, 4, PROTO_M_LIST_KEYS, NULL);
	put("fuzz_conn", "status-sign-list", buf, len, NULL, 0);
	free(buf);
	buf = NULL;
	len = 0;
	keyhold__v1__sign_request__init(&sign);
	sign.key = cstr("fz-rsa");
	sign.padding = KEYHOLD__V1__PADDING__PSS;
	sign_input(&sign, false, msg, sizeof(msg) - 1);
	conn_add(&buf, &len, 1, PROTO_M_SIGN, &sign.base);
	sign.padding = KEYHOLD__V1__PADDING__PKCS1;
	conn_add(&buf, &len, 2, PROTO_M_SIGN, &sign.base);
	sign.key = cstr("other");
	conn_add(&buf, &len, 3, PROTO_M_SIGN, &sign.base);
	keyhold__v1__get_public_key_request__init(&pub);
	pub.name = cstr("fz-ec");
	conn_add(&buf, &len, 4, PROTO_M_GET_PUBLIC_KEY, &pub.base);
	keyhold__v1__delete_key_request__init(&del);
	del.name = cstr("fz-ec");
	conn_add(&buf, &len, 5, PROTO_M_DELETE_KEY, &del.base);
	put("fuzz_conn", "rsa-policy-denied", buf, len, NULL, 0);
	free(buf);
	buf = NULL;
	len = 0;
	keyhold__v1__audit_show_request__init(&show);
	show.limit = 5;
	conn_add(&buf, &len, 1, PROTO_M_AUDIT_SHOW, &show.base);
	conn_add(&buf, &len, 2, PROTO_M_AUDIT_VERIFY, NULL);
	conn_add(&buf, &len, 3, PROTO_M_LIST_KEY_GRANTS, NULL);
	conn_add(&buf, &len, 4, PROTO_M_GET_CAPABILITIES, NULL);
	put("fuzz_conn", "audit-grants", buf, len, junk, sizeof(junk));
	free(buf);
	put("fuzz_conn", "junk", junk, sizeof(junk), NULL, 0);
}

/* The request seeds: an empty request of every method, then real ones. */
static void req_seeds(void)
{
	union {
		ProtobufCMessage base;
		uint8_t storage[1024];
	} empty;
	Keyhold__V1__GenerateKeyRequest gen;
	Keyhold__V1__GetPublicKeyRequest pub;
	Keyhold__V1__DeleteKeyRequest del;
	Keyhold__V1__SignRequest sign;
	Keyhold__V1__AuditShowRequest show;
	Keyhold__V1__KeyGrant grant;
	Keyhold__V1__GrantKeyRequest grant_req;
	Keyhold__V1__RevokeKeyGrantRequest revoke;
	Keyhold__V1__ListKeyGrantsRequest list;
	Keyhold__V1__Digest digests[2] = { KEYHOLD__V1__DIGEST__SHA256, KEYHOLD__V1__DIGEST__SHA384 };
	Keyhold__V1__Padding paddings[1] = { KEYHOLD__V1__PADDING__PSS };
	uint8_t msg[] = "the quick brown fox";
	uint8_t dig[32] = { 1, 2, 3 };
	unsigned m;

	for (m = 0; m < PROTO_M_COUNT; m++) {
		const ProtobufCMessageDescriptor *d = proto_method_request((enum proto_method)m);

		if (d->sizeof_message > sizeof(empty.storage))
			exit(1);
		protobuf_c_message_init(d, &empty);
		/* As a client sends them: a Sign with an empty message, a
		 * GrantKey with an empty grant. */
		if (m == PROTO_M_SIGN)
			sign_input((Keyhold__V1__SignRequest *)(void *)&empty, false, msg, 0);
		if (m == PROTO_M_GRANT_KEY) {
			keyhold__v1__key_grant__init(&grant);
			((Keyhold__V1__GrantKeyRequest *)(void *)&empty)->grant = &grant;
		}
		req_seed((enum proto_method)m, &empty.base, "empty");
	}
	keyhold__v1__generate_key_request__init(&gen);
	gen.name = cstr("web-tls");
	gen.type = KEYHOLD__V1__KEY_TYPE__P256;
	req_seed(PROTO_M_GENERATE_KEY, &gen.base, "p256");
	keyhold__v1__get_public_key_request__init(&pub);
	pub.name = cstr("web-tls");
	req_seed(PROTO_M_GET_PUBLIC_KEY, &pub.base, "name");
	keyhold__v1__delete_key_request__init(&del);
	del.name = cstr("web-tls");
	req_seed(PROTO_M_DELETE_KEY, &del.base, "name");
	keyhold__v1__sign_request__init(&sign);
	sign.key = cstr("web-tls");
	sign.digest = KEYHOLD__V1__DIGEST__SHA384;
	sign.padding = KEYHOLD__V1__PADDING__PSS;
	sign_input(&sign, false, msg, sizeof(msg) - 1);
	req_seed(PROTO_M_SIGN, &sign.base, "message");
	sign.digest = KEYHOLD__V1__DIGEST__SHA256;
	sign_input(&sign, true, dig, sizeof(dig));
	req_seed(PROTO_M_SIGN, &sign.base, "prehashed");
	keyhold__v1__audit_show_request__init(&show);
	show.since = 1700000000;
	show.from_seq = 3;
	show.limit = 10;
	req_seed(PROTO_M_AUDIT_SHOW, &show.base, "since");
	keyhold__v1__key_grant__init(&grant);
	grant.key = cstr("web-tls");
	grant.principal = cstr("cert:spiffe://example.org/app");
	grant.digests = digests;
	grant.n_digests = 2;
	grant.paddings = paddings;
	grant.n_paddings = 1;
	keyhold__v1__grant_key_request__init(&grant_req);
	grant_req.grant = &grant;
	req_seed(PROTO_M_GRANT_KEY, &grant_req.base, "grant");
	keyhold__v1__revoke_key_grant_request__init(&revoke);
	revoke.key = cstr("web-tls");
	revoke.principal = cstr("uid:1001");
	req_seed(PROTO_M_REVOKE_KEY_GRANT, &revoke.base, "uid");
	keyhold__v1__list_key_grants_request__init(&list);
	list.key = cstr("web-tls");
	req_seed(PROTO_M_LIST_KEY_GRANTS, &list.base, "key");
}

static void resp_seeds(void)
{
	uint8_t spki[91] = { 0x30, 0x59 };
	uint8_t id[16] = { 0 };
	Keyhold__V1__KeyInfo ki[2], *kp[2] = { &ki[0], &ki[1] };
	Keyhold__V1__GetPublicKeyResponse pub;
	Keyhold__V1__GenerateKeyResponse gen;
	Keyhold__V1__ListKeysResponse keys;
	Keyhold__V1__SignResponse sign;
	Keyhold__V1__GetStatusResponse status;
	Keyhold__V1__TokenInfo token;
	Keyhold__V1__ConditionalCounts cond;
	Keyhold__V1__KeyTypeAvailability kt, *ktp[1] = { &kt };
	Keyhold__V1__GetCapabilitiesResponse caps;
	Keyhold__V1__AuditRecord rec[2], *recp[2] = { &rec[0], &rec[1] };
	Keyhold__V1__AuditShowResponse show;
	Keyhold__V1__AuditVerifyResponse verify;
	Keyhold__V1__Digest digests[1] = { KEYHOLD__V1__DIGEST__SHA256 };
	Keyhold__V1__Padding paddings[1] = { KEYHOLD__V1__PADDING__PSS };
	Keyhold__V1__KeyGrant gr[2], *grp[2] = { &gr[0], &gr[1] };
	Keyhold__V1__ListKeyGrantsResponse grants;

	keyhold__v1__key_info__init(&ki[0]);
	ki[0].name = cstr("web-tls");
	ki[0].type = KEYHOLD__V1__KEY_TYPE__P256;
	ki[0].bits = 256;
	ki[0].id.data = id;
	ki[0].id.len = sizeof(id);
	ki[0].spki.data = spki;
	ki[0].spki.len = sizeof(spki);
	ki[1] = ki[0];
	ki[1].name = cstr("rsa");
	keyhold__v1__get_public_key_response__init(&pub);
	pub.key = &ki[0];
	resp_seed(PROTO_M_GET_PUBLIC_KEY, &pub.base, "key");
	keyhold__v1__generate_key_response__init(&gen);
	gen.key = &ki[0];
	resp_seed(PROTO_M_GENERATE_KEY, &gen.base, "key");
	keyhold__v1__list_keys_response__init(&keys);
	keys.keys = kp;
	keys.n_keys = 2;
	resp_seed(PROTO_M_LIST_KEYS, &keys.base, "two");
	keyhold__v1__sign_response__init(&sign);
	sign.signature.data = spki;
	sign.signature.len = 70;
	sign.algorithm = cstr("ecdsa-sha256");
	resp_seed(PROTO_M_SIGN, &sign.base, "sig");
	keyhold__v1__get_status_response__init(&status);
	status.version = cstr("0.1.0");
	status.state = cstr("OPERATIONAL");
	keyhold__v1__token_info__init(&token);
	status.token = &token;
	keyhold__v1__conditional_counts__init(&cond);
	status.conditional = &cond;
	resp_seed(PROTO_M_GET_STATUS, &status.base, "status");
	keyhold__v1__key_type_availability__init(&kt);
	kt.type = KEYHOLD__V1__KEY_TYPE__P256;
	kt.available = true;
	keyhold__v1__get_capabilities_response__init(&caps);
	caps.key_types = ktp;
	caps.n_key_types = 1;
	resp_seed(PROTO_M_GET_CAPABILITIES, &caps.base, "caps");
	keyhold__v1__audit_record__init(&rec[0]);
	rec[0].seq = 1;
	rec[0].time_us = 1700000000000000ull;
	rec[0].principal = cstr("uid:0");
	rec[0].method = cstr("Sign");
	rec[0].object = cstr("web-tls");
	rec[0].code = -(int32_t)KH_E_PERMISSION_DENIED; /* gRPC's code on the wire */
	rec[1] = rec[0];
	rec[1].seq = 2;
	rec[1].checkpoint = true;
	keyhold__v1__audit_show_response__init(&show);
	show.records = recp;
	show.n_records = 2;
	show.next_seq = 3;
	show.more = true;
	resp_seed(PROTO_M_AUDIT_SHOW, &show.base, "two");
	keyhold__v1__audit_verify_response__init(&verify);
	verify.ok = false;
	verify.records = 10;
	verify.bad_seq = 4;
	verify.reason = cstr("record 4 was altered");
	resp_seed(PROTO_M_AUDIT_VERIFY, &verify.base, "bad");
	keyhold__v1__key_grant__init(&gr[0]);
	gr[0].key = cstr("web-tls");
	gr[0].principal = cstr("uid:1001");
	gr[0].digests = digests;
	gr[0].n_digests = 1;
	gr[0].source = cstr("config");
	gr[1] = gr[0];
	gr[1].paddings = paddings;
	gr[1].n_paddings = 1;
	keyhold__v1__list_key_grants_response__init(&grants);
	grants.grants = grp;
	grants.n_grants = 2;
	resp_seed(PROTO_M_LIST_KEY_GRANTS, &grants.base, "two");
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	root = argv[1];
	mkdir(root, 0755);
	req_seeds();
	resp_seeds();
	conn_seeds();
	return 0;
}
