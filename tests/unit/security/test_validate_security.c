/* test_validate_security.c: the security RPCs' requests (audit, grants)
 * through proto_request_decode and their edge validation: valid requests
 * round trip; every truncation and every single-bit flip of the envelope is
 * decoded or refused with a reason, never crashes (ASan in CI); names,
 * principals and enums outside their domains are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keyhold.pb-c.h"
#include "kh_util.h"
#include "kh_pki.h"
#include "kh_rev.h"
#include "kh_types.h"
#include "proto.h"
#include "kh_test_codec.h"
#include "kh_test_pb.h"
#include "kh_test_wire.h"

/* One request of each security method, as generated messages. */
struct sample {
	enum proto_method m;
	Keyhold__V1__AuditShowRequest show;
	Keyhold__V1__AuditVerifyRequest verify;
	Keyhold__V1__KeyGrant grant;
	Keyhold__V1__GrantKeyRequest grant_req;
	Keyhold__V1__RevokeKeyGrantRequest revoke;
	Keyhold__V1__ListKeyGrantsRequest list;
	Keyhold__V1__Digest digests[2];
	Keyhold__V1__Padding paddings[1];
};

static char *str(const char *s)
{
	return (char *)(uintptr_t)s;
}

/* The request message of s (NULL for none built). */
static const ProtobufCMessage *sample_msg(const struct sample *s)
{
	switch (s->m) {
	case PROTO_M_AUDIT_SHOW: return &s->show.base;
	case PROTO_M_AUDIT_VERIFY: return &s->verify.base;
	case PROTO_M_GRANT_KEY: return &s->grant_req.base;
	case PROTO_M_REVOKE_KEY_GRANT: return &s->revoke.base;
	case PROTO_M_LIST_KEY_GRANTS: return &s->list.base;
	default: return NULL;
	}
}

/* A request frame for s's message, id 9. */
static void encode(const struct sample *s, uint8_t **frame, size_t *len)
{
	*frame = kh_test_req_frame(9, 0, s->m, sample_msg(s), len);
	assert_non_null(*frame);
	assert_true(*len > PROTO_HDR_LEN);
}

static enum kh_err decode(const uint8_t *buf, size_t len, struct proto_req *out, struct kh_errbuf *e)
{
	enum kh_err r = proto_request_decode(buf, len, out, e);

	if (r != KH_OK)
		assert_true(e->msg[0] != '\0');
	return r;
}

/* Every message of s initialised (empty), method m. */
static void sample_init(struct sample *s, enum proto_method m)
{
	memset(s, 0, sizeof(*s));
	s->m = m;
	keyhold__v1__audit_show_request__init(&s->show);
	keyhold__v1__audit_verify_request__init(&s->verify);
	keyhold__v1__key_grant__init(&s->grant);
	keyhold__v1__grant_key_request__init(&s->grant_req);
	s->grant_req.grant = &s->grant;
	keyhold__v1__revoke_key_grant_request__init(&s->revoke);
	keyhold__v1__list_key_grants_request__init(&s->list);
}

static void samples(struct sample q[5])
{
	sample_init(&q[0], PROTO_M_AUDIT_SHOW);
	q[0].show.since = 1700000000;
	q[0].show.from_seq = 17;
	q[0].show.limit = 50;
	sample_init(&q[1], PROTO_M_AUDIT_VERIFY);
	sample_init(&q[2], PROTO_M_GRANT_KEY);
	q[2].grant.key = str("web-tls");
	q[2].grant.principal = str("cert:spiffe://example.org/web");
	q[2].digests[0] = KEYHOLD__V1__DIGEST__SHA256;
	q[2].digests[1] = KEYHOLD__V1__DIGEST__SHA512;
	q[2].grant.digests = q[2].digests;
	q[2].grant.n_digests = 2;
	q[2].paddings[0] = KEYHOLD__V1__PADDING__PSS;
	q[2].grant.paddings = q[2].paddings;
	q[2].grant.n_paddings = 1;
	sample_init(&q[3], PROTO_M_REVOKE_KEY_GRANT);
	q[3].revoke.key = str("web-tls");
	q[3].revoke.principal = str("group:app");
	sample_init(&q[4], PROTO_M_LIST_KEY_GRANTS);
	q[4].list.key = str("web-tls");
}

/* The decoded generated message says what the client's message said. */
static void same_request(const struct proto_req *r, const struct sample *q)
{
	switch (r->method) {
	case PROTO_M_AUDIT_SHOW: {
		const Keyhold__V1__AuditShowRequest *p = (const void *)r->msg;

		assert_true(p->since == q->show.since);
		assert_true(p->from_seq == q->show.from_seq);
		assert_int_equal(p->limit, q->show.limit);
		break;
	}
	case PROTO_M_GRANT_KEY: {
		const Keyhold__V1__KeyGrant *g = ((const Keyhold__V1__GrantKeyRequest *)(const void *)r->msg)->grant;
		size_t i;

		assert_non_null(g);
		assert_string_equal(g->key, q->grant.key);
		assert_string_equal(g->principal, q->grant.principal);
		assert_true(g->n_digests == q->grant.n_digests);
		for (i = 0; i < g->n_digests; i++)
			assert_int_equal(g->digests[i], q->grant.digests[i]);
		assert_true(g->n_paddings == q->grant.n_paddings);
		for (i = 0; i < g->n_paddings; i++)
			assert_int_equal(g->paddings[i], q->grant.paddings[i]);
		break;
	}
	case PROTO_M_REVOKE_KEY_GRANT: {
		const Keyhold__V1__RevokeKeyGrantRequest *p = (const void *)r->msg;

		assert_string_equal(p->key, q->revoke.key);
		assert_string_equal(p->principal, q->revoke.principal);
		break;
	}
	case PROTO_M_LIST_KEY_GRANTS:
		assert_string_equal(((const Keyhold__V1__ListKeyGrantsRequest *)(const void *)r->msg)->key,
				    q->list.key);
		break;
	default:
		break;
	}
}

static void test_round_trip(void **state)
{
	struct sample q[5];
	unsigned i;

	(void)state;
	samples(q);
	for (i = 0; i < 5; i++) {
		uint8_t *f = NULL;
		size_t len = 0;
		struct proto_req r;
		struct kh_errbuf e = { 0 };

		encode(&q[i], &f, &len);
		assert_int_equal(decode(f + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &r, &e), KH_OK);
		assert_int_equal(r.method, q[i].m);
		assert_true(r.id == 9);
		assert_non_null(r.msg);
		assert_true(r.msg->descriptor == proto_method_request(q[i].m));
		same_request(&r, &q[i]);
		proto_req_clear(&r);
		free(f);
	}
}

/* Whatever decodes is valid by construction. */
static void security_req_valid(const struct proto_req *r)
{
	size_t i;

	assert_non_null(r->msg);
	if (r->method == PROTO_M_GRANT_KEY) {
		const Keyhold__V1__KeyGrant *g = ((const Keyhold__V1__GrantKeyRequest *)(const void *)r->msg)->grant;

		assert_non_null(g);
		assert_true(kh_name_valid(g->key));
		assert_true(kh_principal_valid(g->principal));
		assert_true(g->n_digests <= 16 && g->n_paddings <= 16);
		for (i = 0; i < g->n_digests; i++)
			assert_true(g->digests[i] >= 1 && (int)g->digests[i] <= KH_DIGEST_MAX);
		for (i = 0; i < g->n_paddings; i++)
			assert_true(g->paddings[i] >= 1 && (int)g->paddings[i] <= KH_PAD_MAX);
	}
	if (r->method == PROTO_M_REVOKE_KEY_GRANT) {
		const Keyhold__V1__RevokeKeyGrantRequest *p = (const void *)r->msg;

		assert_true(kh_name_valid(p->key));
		assert_true(kh_principal_valid(p->principal));
	}
	if (r->method == PROTO_M_LIST_KEY_GRANTS) {
		const char *key = ((const Keyhold__V1__ListKeyGrantsRequest *)(const void *)r->msg)->key;

		assert_true(key[0] == '\0' || kh_name_valid(key));
	}
}

static void test_truncations_and_flips(void **state)
{
	struct sample q[5];
	unsigned i, ok = 0, refused = 0;

	(void)state;
	samples(q);
	for (i = 0; i < 5; i++) {
		uint8_t *f = NULL;
		size_t len = 0;

		encode(&q[i], &f, &len);
		kh_test_mutate_request(f + PROTO_HDR_LEN, len - PROTO_HDR_LEN, security_req_valid, &ok, &refused);
		free(f);
	}
	assert_true(refused > 0);
}

static void expect_refused(const struct sample *q, const char *why)
{
	uint8_t *f = NULL;
	size_t len = 0;
	struct proto_req r;
	struct kh_errbuf e = { 0 };

	encode(q, &f, &len);
	assert_int_equal(decode(f + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &r, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, why));
	assert_true(r.have_id);
	free(f);
}

static void test_refusals(void **state)
{
	struct sample q;
	static const char *const bad_principals[] = {
		"", "uid:", "cert:", "root", "uid:0,uid:1", "cert:has space", "cert:tab\there", "nobody:x", "cert:\x7f",
	};
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(bad_principals) / sizeof(bad_principals[0]); i++) {
		sample_init(&q, PROTO_M_GRANT_KEY);
		q.grant.key = str("k");
		q.grant.principal = str(bad_principals[i]);
		expect_refused(&q, "principal must be");
		sample_init(&q, PROTO_M_REVOKE_KEY_GRANT);
		q.revoke.key = str("k");
		q.revoke.principal = str(bad_principals[i]);
		expect_refused(&q, "principal must be");
	}
	sample_init(&q, PROTO_M_GRANT_KEY);
	q.grant.key = str("bad/name");
	q.grant.principal = str("uid:1");
	expect_refused(&q, "key name");
	sample_init(&q, PROTO_M_LIST_KEY_GRANTS);
	q.list.key = str("../etc");
	expect_refused(&q, "key name");
}

/* Grants the generated message cannot express, built on the wire: no grant,
 * unknown or unspecified digests and paddings, too many of them. */
static void expect_grant_refused(const struct pbw *grant, bool with_grant, const char *why)
{
	struct pbw body, w;
	struct proto_req r;
	struct kh_errbuf e = { 0 };

	body.len = 0;
	if (with_grant)
		pbw_bytes(&body, 1, grant->buf, grant->len);
	pbw_request(&w, 11, "GrantKey", body.buf, body.len);
	assert_int_equal(decode(w.buf, w.len, &r, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, why));
}

static void test_grant_refusals(void **state)
{
	struct pbw g;
	char want[96];
	unsigned i;

	(void)state;
	g.len = 0;
	expect_grant_refused(&g, false, "the grant is missing");
	g.len = 0;
	pbw_str(&g, 1, "k");
	pbw_str(&g, 2, "uid:1");
	pbw_u64(&g, 3, KH_DIGEST_MAX + 1);
	snprintf(want, sizeof(want), "digest %d in a grant is unknown; name sha256, sha384 or sha512", KH_DIGEST_MAX + 1);
	expect_grant_refused(&g, true, want);
	g.len = 0;
	pbw_str(&g, 1, "k");
	pbw_str(&g, 2, "uid:1");
	pbw_u64(&g, 3, 0);
	expect_grant_refused(&g, true, "digest 0 in a grant is unknown");
	g.len = 0;
	pbw_str(&g, 1, "k");
	pbw_str(&g, 2, "uid:1");
	pbw_u64(&g, 4, KH_PAD_MAX + 1);
	snprintf(want, sizeof(want), "padding %d in a grant is unknown; name pkcs1 or pss", KH_PAD_MAX + 1);
	expect_grant_refused(&g, true, want);
	g.len = 0;
	pbw_str(&g, 1, "k");
	pbw_str(&g, 2, "uid:1");
	for (i = 0; i < 17; i++)
		pbw_u64(&g, 3, KH_DIGEST_SHA256);
	expect_grant_refused(&g, true, "a grant lists at most 16 digests and paddings");
	/* 16 of them pass. */
	{
		struct pbw body, w;
		struct proto_req r;
		struct kh_errbuf e = { 0 };

		g.len = 0;
		pbw_str(&g, 1, "k");
		pbw_str(&g, 2, "uid:1");
		for (i = 0; i < 16; i++)
			pbw_u64(&g, 4, KH_PAD_PSS);
		body.len = 0;
		pbw_bytes(&body, 1, g.buf, g.len);
		pbw_request(&w, 12, "GrantKey", body.buf, body.len);
		assert_int_equal(decode(w.buf, w.len, &r, &e), KH_OK);
		security_req_valid(&r);
		proto_req_clear(&r);
	}
}

static void test_principal_syntax(void **state)
{
	(void)state;
	assert_true(kh_principal_valid("uid:0"));
	assert_true(kh_principal_valid("gid:100"));
	assert_true(kh_principal_valid("user:app"));
	assert_true(kh_principal_valid("group:app"));
	assert_true(kh_principal_valid("cert:spiffe://example.org/a/b"));
	assert_false(kh_principal_valid(NULL));
	assert_false(kh_principal_valid("cert:a,b"));
	assert_false(kh_principal_valid("CERT:x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_truncations_and_flips),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_grant_refusals),
		cmocka_unit_test(test_principal_syntax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
