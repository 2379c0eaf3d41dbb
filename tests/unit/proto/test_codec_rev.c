/* test_codec_rev.c: the revocation, expiry and renewal request and response
 * bodies (CheckCertificate, SetTrustpointPolicy, SetTruststorePolicy,
 * ListExpiring, RunMonitor) and the fields they added to PKI messages.
 * Valid frames round-trip; every truncation and every single-bit flip of a
 * valid request is refused cleanly or decodes to a struct a handler may
 * rely on; the client's response decoders survive the same mutations
 * (exact-size heap copies, so ASan sees any over-read). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keyhold.pb-c.h"
#include "proto.h"
#include "kh_test_codec.h"

static uint8_t blob_a[200], blob_b[90];

struct req_case {
	enum proto_method m;
	union proto_req_body body;
};

#define CASES_MAX 10

static size_t req_cases(struct req_case *out)
{
	size_t n = 0, i;

	for (i = 0; i < sizeof(blob_a); i++)
		blob_a[i] = (uint8_t)(i * 7 + 3);
	memset(blob_b, 0x41, sizeof(blob_b));
	memset(out, 0, CASES_MAX * sizeof(*out));
#define ADD(mm) (assert_true(n < CASES_MAX), out[n].m = (mm), &out[n++].body)
	{
		union proto_req_body *b = ADD(PROTO_M_CHECK_CERTIFICATE);

		memcpy(b->cert_check.store, "edge", 5);
		b->cert_check.cert = (struct kh_bytes){ blob_a, sizeof(blob_a) };
		b->cert_check.untrusted = (struct kh_bytes){ blob_b, sizeof(blob_b) };
	}
	{
		union proto_req_body *b = ADD(PROTO_M_SET_TRUSTPOINT_POLICY);

		memcpy(b->tp_policy.name, "web", 4);
		b->tp_policy.set_revocation = true;
		memcpy(b->tp_policy.revocation, "ocsp,crl,none", 14);
		b->tp_policy.set_ocsp_url = true;
		memcpy(b->tp_policy.ocsp_url, "http://ocsp.example.com/", 25);
		b->tp_policy.set_renew = true;
		b->tp_policy.renew_at = 80;
		b->tp_policy.renew_regenerate = true;
	}
	{
		union proto_req_body *b = ADD(PROTO_M_SET_TRUSTSTORE_POLICY);

		memcpy(b->ts_policy.store, "tomcat-trust", 13);
		b->ts_policy.set_revocation = true;
		memcpy(b->ts_policy.revocation, "crl", 4);
	}
	ADD(PROTO_M_LIST_EXPIRING)->expiring.within_days = 45;
	ADD(PROTO_M_RUN_MONITOR);
	{
		union proto_req_body *b = ADD(PROTO_M_CREATE_TRUSTPOINT);

		memcpy(b->tp_create.name, "asa", 4);
		b->tp_create.generate = KH_KEY_P256;
		memcpy(b->tp_create.subject, "CN=a", 5);
		b->tp_create.renew_at = 75;
		b->tp_create.renew_regenerate = true;
		memcpy(b->tp_create.ocsp_url, "http://127.0.0.1:8080/ocsp", 27);
	}
#undef ADD
	return n;
}

/* What a handler may rely on after a successful decode. */
static void req_valid(const struct proto_req *q)
{
	const union proto_req_body *b = &q->body;

	switch (q->method) {
	case PROTO_M_CHECK_CERTIFICATE:
		assert_true(kh_name_valid(b->cert_check.store));
		assert_true(b->cert_check.cert.len > 0 && b->cert_check.cert.data != NULL);
		assert_true(b->cert_check.cert.len <= KH_PKI_BLOB_MAX && b->cert_check.untrusted.len <= KH_PKI_BLOB_MAX);
		break;
	case PROTO_M_SET_TRUSTPOINT_POLICY:
		assert_true(kh_name_valid(b->tp_policy.name));
		assert_true(kh_url_valid(b->tp_policy.ocsp_url));
		assert_true(b->tp_policy.renew_at <= 99);
		assert_true(b->tp_policy.set_revocation || b->tp_policy.set_ocsp_url || b->tp_policy.set_renew);
		assert_true(strlen(b->tp_policy.revocation) <= KH_REVOCATION_MAX);
		break;
	case PROTO_M_SET_TRUSTSTORE_POLICY:
		assert_true(kh_name_valid(b->ts_policy.store));
		assert_true(kh_url_valid(b->ts_policy.ocsp_url));
		assert_true(b->ts_policy.set_revocation || b->ts_policy.set_ocsp_url);
		break;
	case PROTO_M_LIST_EXPIRING:
		assert_true(b->expiring.within_days <= 36500);
		break;
	case PROTO_M_CREATE_TRUSTPOINT: {
		/* Read as the generated message (the handler does). */
		const Keyhold__V1__CreateTrustpointRequest *p = (const void *)q->msg;

		assert_true(kh_name_valid(p->name));
		assert_true(p->renew_at <= 99);
		assert_true(kh_url_valid(p->ocsp_url));
		break;
	}
	default:
		break;
	}
}

static void test_round_trip(void **state)
{
	struct req_case cases[CASES_MAX];
	size_t n = req_cases(cases), i;

	(void)state;
	for (i = 0; i < n; i++) {
		uint8_t *frame = NULL;
		size_t len = 0;
		struct proto_req q;

		assert_int_equal(proto_request_encode(100 + i, 0, cases[i].m, &cases[i].body, &frame, &len), KH_OK);
		assert_int_equal(kh_test_decode_copy(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &q), KH_OK);
		assert_int_equal(q.method, cases[i].m);
		req_valid(&q);
		switch (q.method) {
		case PROTO_M_CHECK_CERTIFICATE:
			assert_true(q.body.cert_check.cert.len == sizeof(blob_a));
			assert_memory_equal(q.body.cert_check.cert.data, blob_a, sizeof(blob_a));
			assert_true(q.body.cert_check.untrusted.len == sizeof(blob_b));
			break;
		case PROTO_M_SET_TRUSTPOINT_POLICY:
			assert_string_equal(q.body.tp_policy.revocation, "ocsp,crl,none");
			assert_string_equal(q.body.tp_policy.ocsp_url, "http://ocsp.example.com/");
			assert_int_equal(q.body.tp_policy.renew_at, 80);
			assert_true(q.body.tp_policy.renew_regenerate && q.body.tp_policy.set_renew);
			break;
		case PROTO_M_SET_TRUSTSTORE_POLICY:
			assert_true(q.body.ts_policy.set_revocation && !q.body.ts_policy.set_ocsp_url);
			assert_string_equal(q.body.ts_policy.revocation, "crl");
			break;
		case PROTO_M_LIST_EXPIRING:
			assert_int_equal(q.body.expiring.within_days, 45);
			break;
		case PROTO_M_CREATE_TRUSTPOINT: {
			const Keyhold__V1__CreateTrustpointRequest *p = (const void *)q.msg;

			assert_int_equal(p->renew_at, 75);
			assert_true(p->renew_regenerate);
			assert_string_equal(p->ocsp_url, "http://127.0.0.1:8080/ocsp");
			break;
		}
		default:
			break;
		}
		proto_req_clear(&q);
		free(frame);
	}
}

static void test_mutations(void **state)
{
	struct req_case cases[CASES_MAX];
	size_t n = req_cases(cases), i;
	unsigned ok = 0, refused = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		uint8_t *frame = NULL, *p;
		size_t len = 0, plen;

		assert_int_equal(proto_request_encode(7 + i, 0, cases[i].m, &cases[i].body, &frame, &len), KH_OK);
		p = frame + PROTO_HDR_LEN;
		plen = len - PROTO_HDR_LEN;
		kh_test_mutate_request(p, plen, req_valid, &ok, &refused);
		free(frame);
	}
	assert_true(refused > 0 && ok > 0);
	print_message("revocation requests: %u mutations refused, %u decoded to valid requests\n", refused, ok);
}

static enum kh_err decode_body(enum proto_method m, const union proto_req_body *b, struct kh_errbuf *e)
{
	uint8_t *frame = NULL;
	size_t len = 0;
	struct proto_req q;
	enum kh_err r;

	kh_err_clear(e);
	assert_int_equal(proto_request_encode(1, 0, m, b, &frame, &len), KH_OK);
	r = proto_request_decode(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &q, e);
	if (r == KH_OK)
		proto_req_clear(&q);
	free(frame);
	return r;
}

static void test_validation(void **state)
{
	union proto_req_body b;
	struct kh_errbuf e = { 0 };

	(void)state;
	/* Only http:// URLs: keyhold fetches nothing else. */
	memset(&b, 0, sizeof(b));
	memcpy(b.ts_policy.store, "s", 2);
	b.ts_policy.set_ocsp_url = true;
	memcpy(b.ts_policy.ocsp_url, "https://ocsp.example.com/", 26);
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTSTORE_POLICY, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "http://"));
	memcpy(b.ts_policy.ocsp_url, "ldap://x/", 10);
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTSTORE_POLICY, &b, &e), KH_E_INVALID_ARGUMENT);
	memcpy(b.ts_policy.ocsp_url, "http:///x", 10);
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTSTORE_POLICY, &b, &e), KH_E_INVALID_ARGUMENT);
	memcpy(b.ts_policy.ocsp_url, "http://a b/", 12);
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTSTORE_POLICY, &b, &e), KH_E_INVALID_ARGUMENT);
	b.ts_policy.ocsp_url[0] = '\0'; /* "" clears it */
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTSTORE_POLICY, &b, &e), KH_OK);
	/* Nothing to set. */
	b.ts_policy.set_ocsp_url = false;
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTSTORE_POLICY, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "nothing to set"));
	/* renew-at 1..99 (0: off). */
	memset(&b, 0, sizeof(b));
	memcpy(b.tp_policy.name, "tp", 3);
	b.tp_policy.set_renew = true;
	b.tp_policy.renew_at = 100;
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTPOINT_POLICY, &b, &e), KH_E_INVALID_ARGUMENT);
	b.tp_policy.renew_at = 0;
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTPOINT_POLICY, &b, &e), KH_OK);
	memset(&b, 0, sizeof(b));
	memcpy(b.tp_create.name, "tp", 3);
	b.tp_create.generate = KH_KEY_P256;
	b.tp_create.renew_at = 120;
	assert_int_equal(decode_body(PROTO_M_CREATE_TRUSTPOINT, &b, &e), KH_E_INVALID_ARGUMENT);
	/* An empty certificate; a bad store name. */
	memset(&b, 0, sizeof(b));
	memcpy(b.cert_check.store, "s", 2);
	assert_int_equal(decode_body(PROTO_M_CHECK_CERTIFICATE, &b, &e), KH_E_INVALID_ARGUMENT);
	memcpy(b.cert_check.store, "../s", 5);
	b.cert_check.cert = (struct kh_bytes){ blob_a, 10 };
	assert_int_equal(decode_body(PROTO_M_CHECK_CERTIFICATE, &b, &e), KH_E_INVALID_ARGUMENT);
	/* --within beyond a century. */
	memset(&b, 0, sizeof(b));
	b.expiring.within_days = 40000;
	assert_int_equal(decode_body(PROTO_M_LIST_EXPIRING, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_true(kh_url_valid(""));
	assert_false(kh_url_valid(NULL));
	assert_true(kh_url_valid("HTTP://127.0.0.1:1/ocsp"));
}

/* ---- responses ---- */

static void fill_cert(struct kh_cert_info *c, const char *subj)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->subject, subj, strlen(subj) + 1);
	memcpy(c->issuer, "CN=ca", 6);
	memcpy(c->serial, "0a0b", 5);
	c->not_before = 1700000000;
	c->not_after = 1900000000;
	memset(c->fingerprint, 'e', KH_FP_HEX);
}

/* A revocation status from the wire is one keyhold knows. */
static void rev_status_in_range(enum proto_method m, const union proto_resp_body *b)
{
	if (m == PROTO_M_CHECK_CERTIFICATE || m == PROTO_M_TRUSTSTORE_VERIFY)
		assert_true((unsigned)(m == PROTO_M_CHECK_CERTIFICATE ? b->cert_check.status : b->verify.revocation_status) <=
			    KH_REV_STATUS_MAX);
}

static void test_responses(void **state)
{
	static const enum proto_method ms[] = { PROTO_M_CHECK_CERTIFICATE, PROTO_M_SET_TRUSTPOINT_POLICY,
						PROTO_M_SET_TRUSTSTORE_POLICY, PROTO_M_LIST_EXPIRING,
						PROTO_M_RUN_MONITOR,	     PROTO_M_TRUSTSTORE_VERIFY };
	union proto_resp_body in[PROTO_M_COUNT];
	struct kh_cert_rev revs[2];
	struct kh_expiring_cert exp[2];
	char lines[2][KH_MONITOR_LINE_LEN] = { "web: renewed", "api: renewal pending" };
	char errs[1][KH_MONITOR_LINE_LEN] = { "x: renewal failed" };
	unsigned refused = 0, ok = 0;
	size_t i;

	(void)state;
	memset(in, 0, sizeof(in));
	memset(revs, 0, sizeof(revs));
	memset(exp, 0, sizeof(exp));
	fill_cert(&revs[0].cert, "CN=leaf");
	revs[0].status = KH_REV_REVOKED;
	memcpy(revs[0].reason, "keyCompromise", 14);
	revs[0].revoked_at = 1800000000;
	memcpy(revs[0].method, "ocsp", 5);
	memcpy(revs[0].source, "http://127.0.0.1:1/ocsp/sub", 28);
	fill_cert(&revs[1].cert, "CN=sub");
	revs[1].status = KH_REV_UNKNOWN;
	memcpy(revs[1].detail, "crl: no CRL distribution point", 31);
	in[PROTO_M_CHECK_CERTIFICATE].cert_check.status = KH_REV_REVOKED;
	memcpy(in[PROTO_M_CHECK_CERTIFICATE].cert_check.reason, "keyCompromise", 14);
	memcpy(in[PROTO_M_CHECK_CERTIFICATE].cert_check.policy, "ocsp,crl", 9);
	in[PROTO_M_CHECK_CERTIFICATE].cert_check.certs = revs;
	in[PROTO_M_CHECK_CERTIFICATE].cert_check.n_certs = 2;
	memcpy(in[PROTO_M_SET_TRUSTPOINT_POLICY].tp.name, "tp", 3);
	in[PROTO_M_SET_TRUSTPOINT_POLICY].tp.renew_at = 80;
	memcpy(in[PROTO_M_SET_TRUSTPOINT_POLICY].tp.renewal, "pending", 8);
	memcpy(in[PROTO_M_SET_TRUSTPOINT_POLICY].tp.ocsp_url, "http://o/", 10);
	in[PROTO_M_SET_TRUSTPOINT_POLICY].tp.renew_after = 1850000000;
	memcpy(in[PROTO_M_SET_TRUSTSTORE_POLICY].ts_policy.store, "web", 4);
	memcpy(in[PROTO_M_SET_TRUSTSTORE_POLICY].ts_policy.revocation, "crl,none", 9);
	fill_cert(&exp[0].cert, "CN=soon");
	exp[0].n_held_by = 2;
	memcpy(exp[0].held_by[0], "truststore:web", 15);
	memcpy(exp[0].held_by[1], "trustpoint-ca:tp", 17);
	exp[0].days_left = -3;
	exp[0].notifications = 4;
	fill_cert(&exp[1].cert, "CN=later");
	exp[1].days_left = 20;
	in[PROTO_M_LIST_EXPIRING].expiring.certs = exp;
	in[PROTO_M_LIST_EXPIRING].expiring.n = 2;
	in[PROTO_M_LIST_EXPIRING].expiring.within_days = 30;
	in[PROTO_M_RUN_MONITOR].monitor.notified = exp;
	in[PROTO_M_RUN_MONITOR].monitor.n_notified = 1;
	in[PROTO_M_RUN_MONITOR].monitor.renewals = lines;
	in[PROTO_M_RUN_MONITOR].monitor.n_renewals = 2;
	in[PROTO_M_RUN_MONITOR].monitor.errors = errs;
	in[PROTO_M_RUN_MONITOR].monitor.n_errors = 1;
	in[PROTO_M_TRUSTSTORE_VERIFY].verify.revocation_status = KH_REV_UNKNOWN;
	in[PROTO_M_TRUSTSTORE_VERIFY].verify.revocation_soft_fail = true;
	memcpy(in[PROTO_M_TRUSTSTORE_VERIFY].verify.revocation_detail, "soft", 5);

	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		enum proto_method m = ms[i];
		uint8_t *frame = NULL, *p;
		size_t len = 0, plen;
		struct proto_resp env;
		union proto_resp_body out;
		struct kh_errbuf e = { 0 };

		assert_int_equal(proto_response_encode(9, KH_OK, NULL, m, &in[m], &frame, &len), KH_OK);
		p = frame + PROTO_HDR_LEN;
		plen = len - PROTO_HDR_LEN;
		assert_int_equal(proto_response_decode(p, plen, &env), KH_OK);
		assert_int_equal(proto_response_body_decode(m, env.body, env.body_len, &out, &e), KH_OK);
		switch (m) {
		case PROTO_M_CHECK_CERTIFICATE:
			assert_int_equal(out.cert_check.status, KH_REV_REVOKED);
			assert_string_equal(out.cert_check.reason, "keyCompromise");
			assert_true(out.cert_check.n_certs == 2);
			assert_string_equal(out.cert_check.certs[0].source, "http://127.0.0.1:1/ocsp/sub");
			assert_true(out.cert_check.certs[0].revoked_at == 1800000000);
			assert_int_equal(out.cert_check.certs[1].status, KH_REV_UNKNOWN);
			assert_string_equal(out.cert_check.certs[1].cert.subject, "CN=sub");
			break;
		case PROTO_M_SET_TRUSTPOINT_POLICY:
			assert_int_equal(out.tp.renew_at, 80);
			assert_string_equal(out.tp.renewal, "pending");
			assert_string_equal(out.tp.ocsp_url, "http://o/");
			assert_true(out.tp.renew_after == 1850000000);
			break;
		case PROTO_M_SET_TRUSTSTORE_POLICY:
			assert_string_equal(out.ts_policy.revocation, "crl,none");
			break;
		case PROTO_M_LIST_EXPIRING:
			assert_true(out.expiring.n == 2 && out.expiring.within_days == 30);
			assert_true(out.expiring.certs[0].days_left == -3 && out.expiring.certs[0].notifications == 4);
			assert_true(out.expiring.certs[0].n_held_by == 2);
			assert_string_equal(out.expiring.certs[0].held_by[1], "trustpoint-ca:tp");
			break;
		case PROTO_M_RUN_MONITOR:
			assert_true(out.monitor.n_notified == 1 && out.monitor.n_renewals == 2 && out.monitor.n_errors == 1);
			assert_string_equal(out.monitor.renewals[1], "api: renewal pending");
			assert_string_equal(out.monitor.errors[0], "x: renewal failed");
			break;
		case PROTO_M_TRUSTSTORE_VERIFY:
			assert_int_equal(out.verify.revocation_status, KH_REV_UNKNOWN);
			assert_true(out.verify.revocation_soft_fail);
			assert_string_equal(out.verify.revocation_detail, "soft");
			break;
		default:
			break;
		}
		proto_resp_clear(m, &out);
		proto_resp_env_clear(&env);
		kh_test_mutate_response(p, plen, m, rev_status_in_range, &ok, &refused);
		free(frame);
	}
	assert_true(refused > 0 && ok > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_responses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
