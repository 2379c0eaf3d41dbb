/* test_codec_security.c: the security RPCs' decoders: valid requests round
 * trip; every truncation and every single-bit flip of the envelope is
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
#include "proto.h"
#include "kh_test_codec.h"
#include "kh_test_pb.h"

static void encode(enum proto_method m, const union proto_req_body *q, uint8_t **frame, size_t *len)
{
	assert_int_equal(proto_request_encode(9, 0, m, q, frame, len), KH_OK);
	assert_true(*len > PROTO_HDR_LEN);
}

static enum kh_err decode(const uint8_t *buf, size_t len, struct proto_req *out, struct kh_errbuf *e)
{
	enum kh_err r = proto_request_decode(buf, len, out, e);

	if (r != KH_OK)
		assert_true(e->msg[0] != '\0');
	return r;
}

static void samples(union proto_req_body q[5], enum proto_method m[5])
{
	memset(q, 0, 5 * sizeof(q[0]));
	m[0] = PROTO_M_AUDIT_SHOW;
	q[0].audit_show.since_s = 1700000000;
	q[0].audit_show.from_seq = 17;
	q[0].audit_show.limit = 50;
	m[1] = PROTO_M_AUDIT_VERIFY;
	m[2] = PROTO_M_GRANT_KEY;
	kh_strlcpy(q[2].grant.key, "web-tls", sizeof(q[2].grant.key));
	kh_strlcpy(q[2].grant.principal, "cert:spiffe://example.org/web", sizeof(q[2].grant.principal));
	q[2].grant.digests = 1u << KH_DIGEST_SHA256 | 1u << KH_DIGEST_SHA512;
	q[2].grant.paddings = 1u << KH_PAD_PSS;
	m[3] = PROTO_M_REVOKE_KEY_GRANT;
	kh_strlcpy(q[3].grant_ref.key, "web-tls", sizeof(q[3].grant_ref.key));
	kh_strlcpy(q[3].grant_ref.principal, "group:app", sizeof(q[3].grant_ref.principal));
	m[4] = PROTO_M_LIST_KEY_GRANTS;
	kh_strlcpy(q[4].grant_filter.key, "web-tls", sizeof(q[4].grant_filter.key));
}

/* The decoded generated message says what the client's struct said. */
static void same_request(const struct proto_req *r, const union proto_req_body *q)
{
	switch (r->method) {
	case PROTO_M_AUDIT_SHOW: {
		const Keyhold__V1__AuditShowRequest *p = (const void *)r->msg;

		assert_true(p->since == q->audit_show.since_s);
		assert_true(p->from_seq == q->audit_show.from_seq);
		assert_int_equal(p->limit, q->audit_show.limit);
		break;
	}
	case PROTO_M_GRANT_KEY: {
		const Keyhold__V1__KeyGrant *g = ((const Keyhold__V1__GrantKeyRequest *)(const void *)r->msg)->grant;
		unsigned digests = 0, paddings = 0;
		size_t i;

		assert_non_null(g);
		assert_string_equal(g->key, q->grant.key);
		assert_string_equal(g->principal, q->grant.principal);
		for (i = 0; i < g->n_digests; i++)
			digests |= 1u << g->digests[i];
		for (i = 0; i < g->n_paddings; i++)
			paddings |= 1u << g->paddings[i];
		assert_int_equal(digests, q->grant.digests);
		assert_int_equal(paddings, q->grant.paddings);
		break;
	}
	case PROTO_M_REVOKE_KEY_GRANT: {
		const Keyhold__V1__RevokeKeyGrantRequest *p = (const void *)r->msg;

		assert_string_equal(p->key, q->grant_ref.key);
		assert_string_equal(p->principal, q->grant_ref.principal);
		break;
	}
	case PROTO_M_LIST_KEY_GRANTS:
		assert_string_equal(((const Keyhold__V1__ListKeyGrantsRequest *)(const void *)r->msg)->key,
				    q->grant_filter.key);
		break;
	default:
		break;
	}
}

static void test_round_trip(void **state)
{
	union proto_req_body q[5];
	enum proto_method m[5];
	unsigned i;

	(void)state;
	samples(q, m);
	for (i = 0; i < 5; i++) {
		uint8_t *f = NULL;
		size_t len = 0;
		struct proto_req r;
		struct kh_errbuf e = { 0 };

		encode(m[i], &q[i], &f, &len);
		assert_int_equal(decode(f + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &r, &e), KH_OK);
		assert_int_equal(r.method, m[i]);
		assert_non_null(r.msg);
		assert_true(r.msg->descriptor == proto_method_request(m[i]));
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
	/* Nothing of these methods goes through the legacy body. */
	for (i = 0; i < sizeof(r->body); i++)
		assert_int_equal(((const uint8_t *)&r->body)[i], 0);
}

static void test_truncations_and_flips(void **state)
{
	union proto_req_body q[5];
	enum proto_method m[5];
	unsigned i, ok = 0, refused = 0;

	(void)state;
	samples(q, m);
	for (i = 0; i < 5; i++) {
		uint8_t *f = NULL;
		size_t len = 0;

		encode(m[i], &q[i], &f, &len);
		kh_test_mutate_request(f + PROTO_HDR_LEN, len - PROTO_HDR_LEN, security_req_valid, &ok, &refused);
		free(f);
	}
	assert_true(refused > 0);
}

static void expect_refused(enum proto_method m, const union proto_req_body *q, const char *why)
{
	uint8_t *f = NULL;
	size_t len = 0;
	struct proto_req r;
	struct kh_errbuf e = { 0 };

	encode(m, q, &f, &len);
	assert_int_equal(decode(f + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &r, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, why));
	assert_true(r.have_id);
	free(f);
}

static void test_refusals(void **state)
{
	union proto_req_body q;
	static const char *const bad_principals[] = {
		"", "uid:", "cert:", "root", "uid:0,uid:1", "cert:has space", "cert:tab\there", "nobody:x", "cert:\x7f",
	};
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(bad_principals) / sizeof(bad_principals[0]); i++) {
		memset(&q, 0, sizeof(q));
		kh_strlcpy(q.grant.key, "k", sizeof(q.grant.key));
		kh_strlcpy(q.grant.principal, bad_principals[i], sizeof(q.grant.principal));
		expect_refused(PROTO_M_GRANT_KEY, &q, "principal must be");
		memset(&q, 0, sizeof(q));
		kh_strlcpy(q.grant_ref.key, "k", sizeof(q.grant_ref.key));
		kh_strlcpy(q.grant_ref.principal, bad_principals[i], sizeof(q.grant_ref.principal));
		expect_refused(PROTO_M_REVOKE_KEY_GRANT, &q, "principal must be");
	}
	memset(&q, 0, sizeof(q));
	kh_strlcpy(q.grant.key, "bad/name", sizeof(q.grant.key));
	kh_strlcpy(q.grant.principal, "uid:1", sizeof(q.grant.principal));
	expect_refused(PROTO_M_GRANT_KEY, &q, "key name");
	memset(&q, 0, sizeof(q));
	kh_strlcpy(q.grant_filter.key, "../etc", sizeof(q.grant_filter.key));
	expect_refused(PROTO_M_LIST_KEY_GRANTS, &q, "key name");
}

/* Grants a client's struct cannot express, built on the wire: no grant,
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
