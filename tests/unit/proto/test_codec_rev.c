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

/* What a handler may rely on after a successful decode: the validated
 * message (q->msg) for the methods on generated messages. */
static void req_valid(const struct proto_req *q)
{
	switch (q->method) {
	case PROTO_M_CHECK_CERTIFICATE: {
		const Keyhold__V1__CheckCertificateRequest *m = (const void *)q->msg;

		assert_non_null(m);
		assert_true(kh_name_valid(m->store));
		assert_true(m->cert.len > 0 && m->cert.data != NULL);
		assert_true(m->cert.len <= KH_PKI_BLOB_MAX && m->untrusted.len <= KH_PKI_BLOB_MAX);
		break;
	}
	case PROTO_M_SET_TRUSTPOINT_POLICY: {
		const Keyhold__V1__SetTrustpointPolicyRequest *m = (const void *)q->msg;

		assert_non_null(m);
		assert_true(kh_name_valid(m->name));
		assert_true(kh_url_valid(m->ocsp_url));
		assert_true(m->renew_at <= 99);
		assert_true(m->set_revocation || m->set_ocsp_url || m->set_renew);
		assert_true(strlen(m->revocation) <= KH_REVOCATION_MAX);
		break;
	}
	case PROTO_M_SET_TRUSTSTORE_POLICY: {
		const Keyhold__V1__SetTruststorePolicyRequest *m = (const void *)q->msg;

		assert_non_null(m);
		assert_true(kh_name_valid(m->store));
		assert_true(kh_url_valid(m->ocsp_url));
		assert_true(strlen(m->revocation) <= KH_REVOCATION_MAX);
		assert_true(m->set_revocation || m->set_ocsp_url);
		break;
	}
	case PROTO_M_LIST_EXPIRING:
		assert_non_null(q->msg);
		assert_true(((const Keyhold__V1__ListExpiringRequest *)(const void *)q->msg)->within_days <= 36500);
		break;
	case PROTO_M_RUN_MONITOR:
		assert_non_null(q->msg);
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
		case PROTO_M_CHECK_CERTIFICATE: {
			const Keyhold__V1__CheckCertificateRequest *m = (const void *)q.msg;

			assert_string_equal(m->store, "edge");
			assert_true(m->cert.len == sizeof(blob_a));
			assert_memory_equal(m->cert.data, blob_a, sizeof(blob_a));
			assert_true(m->untrusted.len == sizeof(blob_b));
			break;
		}
		case PROTO_M_SET_TRUSTPOINT_POLICY: {
			const Keyhold__V1__SetTrustpointPolicyRequest *m = (const void *)q.msg;

			assert_string_equal(m->name, "web");
			assert_true(m->set_revocation && m->set_ocsp_url);
			assert_string_equal(m->revocation, "ocsp,crl,none");
			assert_string_equal(m->ocsp_url, "http://ocsp.example.com/");
			assert_int_equal(m->renew_at, 80);
			assert_true(m->renew_regenerate && m->set_renew);
			break;
		}
		case PROTO_M_SET_TRUSTSTORE_POLICY: {
			const Keyhold__V1__SetTruststorePolicyRequest *m = (const void *)q.msg;

			assert_string_equal(m->store, "tomcat-trust");
			assert_true(m->set_revocation && !m->set_ocsp_url);
			assert_string_equal(m->revocation, "crl");
			break;
		}
		case PROTO_M_LIST_EXPIRING:
			assert_int_equal(((const Keyhold__V1__ListExpiringRequest *)(const void *)q.msg)->within_days, 45);
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
	assert_non_null(strstr(e.msg, "from 1 to 99 (0: off), not 100"));
	b.tp_policy.renew_at = 0;
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTPOINT_POLICY, &b, &e), KH_OK);
	/* The revocation list is checked as text even when not set. */
	memcpy(b.tp_policy.revocation, "crl\n", 5);
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTPOINT_POLICY, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the revocation list contains a control character"));
	memset(b.tp_policy.revocation, 0, sizeof(b.tp_policy.revocation));
	b.tp_policy.set_ocsp_url = true;
	memcpy(b.tp_policy.ocsp_url, "file:///etc/passwd", 19);
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTPOINT_POLICY, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the OCSP URL must be an http:// URL"));
	memset(&b, 0, sizeof(b));
	memcpy(b.tp_policy.name, "tp", 3);
	assert_int_equal(decode_body(PROTO_M_SET_TRUSTPOINT_POLICY, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "nothing to set: give a revocation list, an OCSP URL or renew-at"));
	memset(&b, 0, sizeof(b));
	memcpy(b.tp_create.name, "tp", 3);
	b.tp_create.generate = KH_KEY_P256;
	b.tp_create.renew_at = 120;
	assert_int_equal(decode_body(PROTO_M_CREATE_TRUSTPOINT, &b, &e), KH_E_INVALID_ARGUMENT);
	/* An empty certificate; a bad store name. */
	memset(&b, 0, sizeof(b));
	memcpy(b.cert_check.store, "s", 2);
	assert_int_equal(decode_body(PROTO_M_CHECK_CERTIFICATE, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the certificate is empty"));
	memcpy(b.cert_check.store, "../s", 5);
	b.cert_check.cert = (struct kh_bytes){ blob_a, 10 };
	assert_int_equal(decode_body(PROTO_M_CHECK_CERTIFICATE, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "trust store name must match"));
	/* --within beyond a century. */
	memset(&b, 0, sizeof(b));
	b.expiring.within_days = 40000;
	assert_int_equal(decode_body(PROTO_M_LIST_EXPIRING, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "--within takes 0 to 36500 days, not 40000"));
	b.expiring.within_days = 36500;
	assert_int_equal(decode_body(PROTO_M_LIST_EXPIRING, &b, &e), KH_OK);
	assert_true(kh_url_valid(""));
	assert_false(kh_url_valid(NULL));
	assert_true(kh_url_valid("HTTP://127.0.0.1:1/ocsp"));
}

/* ---- responses ----
 * The server builds these as generated messages (rpc/h_revocation.c,
 * h_expiry.c, h_truststore.c); here the same messages are encoded and the
 * client's decoders read them back, then survive every mutation. */

static char *str(const char *s)
{
	return (char *)(uintptr_t)s;
}

static void fill_cert(Keyhold__V1__CertInfo *c, const char *subj)
{
	keyhold__v1__cert_info__init(c);
	c->subject = str(subj);
	c->issuer = str("CN=ca");
	c->serial = str("0a0b");
	c->not_before = 1700000000;
	c->not_after = 1900000000;
	c->fingerprint = str("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
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
	Keyhold__V1__CertInfo ci[4];
	Keyhold__V1__CertRevocation revs[2], *revp[2] = { &revs[0], &revs[1] };
	Keyhold__V1__CheckCertificateResponse check;
	Keyhold__V1__Trustpoint tp;
	Keyhold__V1__GetTrustpointResponse tpr;
	Keyhold__V1__SetTruststorePolicyResponse tsp;
	Keyhold__V1__ExpiringCert exp[2], *expp[2] = { &exp[0], &exp[1] };
	Keyhold__V1__ListExpiringResponse lst;
	Keyhold__V1__RunMonitorResponse mon;
	Keyhold__V1__TruststoreVerifyResponse ver;
	char *held[2] = { str("truststore:web"), str("trustpoint-ca:tp") };
	char *lines[2] = { str("web: renewed"), str("api: renewal pending") };
	char *errs[1] = { str("x: renewal failed") };
	const ProtobufCMessage *msgs[PROTO_M_COUNT];
	unsigned refused = 0, ok = 0;
	size_t i;

	(void)state;
	keyhold__v1__check_certificate_response__init(&check);
	keyhold__v1__trustpoint__init(&tp);
	keyhold__v1__get_trustpoint_response__init(&tpr);
	keyhold__v1__set_truststore_policy_response__init(&tsp);
	keyhold__v1__list_expiring_response__init(&lst);
	keyhold__v1__run_monitor_response__init(&mon);
	keyhold__v1__truststore_verify_response__init(&ver);
	memset(msgs, 0, sizeof(msgs));
	fill_cert(&ci[0], "CN=leaf");
	fill_cert(&ci[1], "CN=sub");
	fill_cert(&ci[2], "CN=soon");
	fill_cert(&ci[3], "CN=later");
	for (i = 0; i < 2; i++) {
		keyhold__v1__cert_revocation__init(&revs[i]);
		keyhold__v1__expiring_cert__init(&exp[i]);
	}
	revs[0].cert = &ci[0];
	revs[0].status = KEYHOLD__V1__REVOCATION_STATUS__REVOCATION_REVOKED;
	revs[0].reason = str("keyCompromise");
	revs[0].revoked_at = 1800000000;
	revs[0].method = str("ocsp");
	revs[0].source = str("http://127.0.0.1:1/ocsp/sub");
	revs[1].cert = &ci[1];
	revs[1].status = KEYHOLD__V1__REVOCATION_STATUS__REVOCATION_UNKNOWN;
	revs[1].detail = str("crl: no CRL distribution point");
	check.status = KEYHOLD__V1__REVOCATION_STATUS__REVOCATION_REVOKED;
	check.reason = str("keyCompromise");
	check.policy = str("ocsp,crl");
	check.certs = revp;
	check.n_certs = 2;
	msgs[PROTO_M_CHECK_CERTIFICATE] = &check.base;
	tp.name = str("tp");
	tp.renew_at = 80;
	tp.renewal = str("pending");
	tp.ocsp_url = str("http://o/");
	tp.renew_after = 1850000000;
	tpr.trustpoint = &tp;
	msgs[PROTO_M_SET_TRUSTPOINT_POLICY] = &tpr.base;
	tsp.store = str("web");
	tsp.revocation = str("crl,none");
	msgs[PROTO_M_SET_TRUSTSTORE_POLICY] = &tsp.base;
	exp[0].cert = &ci[2];
	exp[0].held_by = held;
	exp[0].n_held_by = 2;
	exp[0].days_left = -3;
	exp[0].notifications = 4;
	exp[1].cert = &ci[3];
	exp[1].days_left = 20;
	lst.certs = expp;
	lst.n_certs = 2;
	lst.within_days = 30;
	msgs[PROTO_M_LIST_EXPIRING] = &lst.base;
	mon.notified = expp;
	mon.n_notified = 1;
	mon.renewals = lines;
	mon.n_renewals = 2;
	mon.errors = errs;
	mon.n_errors = 1;
	msgs[PROTO_M_RUN_MONITOR] = &mon.base;
	ver.revocation_status = KEYHOLD__V1__REVOCATION_STATUS__REVOCATION_UNKNOWN;
	ver.revocation_soft_fail = true;
	ver.revocation_detail = str("soft");
	msgs[PROTO_M_TRUSTSTORE_VERIFY] = &ver.base;

	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		enum proto_method m = ms[i];
		uint8_t *frame = NULL, *p;
		size_t len = 0, plen;
		struct proto_resp env;
		union proto_resp_body out;
		struct kh_errbuf e = { 0 };

		assert_int_equal(proto_response_encode_msg(9, KH_OK, NULL, msgs[m], &frame, &len), KH_OK);
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
