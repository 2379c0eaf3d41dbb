/* test_validate_rev.c: the revocation, expiry and renewal requests
 * (CheckCertificate, SetTrustpointPolicy, SetTruststorePolicy,
 * ListExpiring, RunMonitor) and the fields they added to PKI messages,
 * through proto_request_decode and their edge validation. Requests are
 * built as generated messages; valid frames round-trip; every truncation
 * and every single-bit flip of a valid request is refused cleanly or
 * decodes to a message a handler may rely on (exact-size heap copies, so
 * ASan sees any over-read). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keyhold.pb-c.h"
#include "kh_pki.h"
#include "kh_rev.h"
#include "kh_types.h"
#include "proto.h"
#include "kh_test_codec.h"
#include "kh_test_wire.h"

static uint8_t blob_a[200], blob_b[90];

static char *str(const char *s)
{
	return (char *)(uintptr_t)s;
}

/* One request of method m as a generated message; every message type is
 * initialised, the one of m is sent. */
struct rev_req {
	enum proto_method m;
	Keyhold__V1__CheckCertificateRequest cert_check;
	Keyhold__V1__SetTrustpointPolicyRequest tp_policy;
	Keyhold__V1__SetTruststorePolicyRequest ts_policy;
	Keyhold__V1__ListExpiringRequest expiring;
	Keyhold__V1__RunMonitorRequest monitor;
	Keyhold__V1__CreateTrustpointRequest tp_create;
};

static void rev_req_init(struct rev_req *b, enum proto_method m)
{
	memset(b, 0, sizeof(*b));
	b->m = m;
	keyhold__v1__check_certificate_request__init(&b->cert_check);
	keyhold__v1__set_trustpoint_policy_request__init(&b->tp_policy);
	keyhold__v1__set_truststore_policy_request__init(&b->ts_policy);
	keyhold__v1__list_expiring_request__init(&b->expiring);
	keyhold__v1__run_monitor_request__init(&b->monitor);
	keyhold__v1__create_trustpoint_request__init(&b->tp_create);
}

static const ProtobufCMessage *rev_msg(const struct rev_req *b)
{
	switch (b->m) {
	case PROTO_M_CHECK_CERTIFICATE: return &b->cert_check.base;
	case PROTO_M_SET_TRUSTPOINT_POLICY: return &b->tp_policy.base;
	case PROTO_M_SET_TRUSTSTORE_POLICY: return &b->ts_policy.base;
	case PROTO_M_LIST_EXPIRING: return &b->expiring.base;
	case PROTO_M_RUN_MONITOR: return &b->monitor.base;
	case PROTO_M_CREATE_TRUSTPOINT: return &b->tp_create.base;
	default: return NULL;
	}
}

/* A request frame for b (header included). */
static void encode_req(const struct rev_req *b, uint64_t id, uint8_t **frame, size_t *len)
{
	*frame = kh_test_req_frame(id, 0, b->m, rev_msg(b), len);
	assert_non_null(*frame);
	assert_true(*len > PROTO_HDR_LEN);
}

struct req_case {
	struct rev_req b;
};

#define CASES_MAX 10

static struct rev_req *add_case(struct req_case *out, size_t *n, enum proto_method m)
{
	assert_true(*n < CASES_MAX);
	rev_req_init(&out[*n].b, m);
	return &out[(*n)++].b;
}

static size_t req_cases(struct req_case *out)
{
	struct rev_req *b;
	size_t n = 0, i;

	for (i = 0; i < sizeof(blob_a); i++)
		blob_a[i] = (uint8_t)(i * 7 + 3);
	memset(blob_b, 0x41, sizeof(blob_b));
	memset(out, 0, CASES_MAX * sizeof(*out));
	b = add_case(out, &n, PROTO_M_CHECK_CERTIFICATE);
	b->cert_check.store = str("edge");
	b->cert_check.cert = (ProtobufCBinaryData){ sizeof(blob_a), blob_a };
	b->cert_check.untrusted = (ProtobufCBinaryData){ sizeof(blob_b), blob_b };
	b = add_case(out, &n, PROTO_M_SET_TRUSTPOINT_POLICY);
	b->tp_policy.name = str("web");
	b->tp_policy.set_revocation = true;
	b->tp_policy.revocation = str("ocsp,crl,none");
	b->tp_policy.set_ocsp_url = true;
	b->tp_policy.ocsp_url = str("http://ocsp.example.com/");
	b->tp_policy.set_renew = true;
	b->tp_policy.renew_at = 80;
	b->tp_policy.renew_regenerate = true;
	b = add_case(out, &n, PROTO_M_SET_TRUSTSTORE_POLICY);
	b->ts_policy.store = str("tomcat-trust");
	b->ts_policy.set_revocation = true;
	b->ts_policy.revocation = str("crl");
	add_case(out, &n, PROTO_M_LIST_EXPIRING)->expiring.within_days = 45;
	add_case(out, &n, PROTO_M_RUN_MONITOR);
	b = add_case(out, &n, PROTO_M_CREATE_TRUSTPOINT);
	b->tp_create.name = str("asa");
	b->tp_create.key_source_case = KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE;
	b->tp_create.generate = KEYHOLD__V1__KEY_TYPE__P256;
	b->tp_create.subject = str("CN=a");
	b->tp_create.renew_at = 75;
	b->tp_create.renew_regenerate = true;
	b->tp_create.ocsp_url = str("http://127.0.0.1:8080/ocsp");
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
		assert_true(m->set_revocation || m->set_ocsp_url || m->set_policies || m->set_require_explicit_policy ||
			    m->set_inhibit_policy_mapping || m->set_inhibit_any_policy || m->set_min_rsa_bits ||
			    m->set_min_ec_bits || m->set_allow_sha1);
		assert_true(m->n_policies <= KH_POLICIES_MAX);
		assert_true(!m->set_min_rsa_bits || (m->min_rsa_bits >= KH_FLOOR_RSA_MIN && m->min_rsa_bits <= KH_FLOOR_RSA_MAX));
		assert_true(!m->set_min_ec_bits || (m->min_ec_bits >= KH_FLOOR_EC_MIN && m->min_ec_bits <= KH_FLOOR_EC_MAX));
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

		encode_req(&cases[i].b, 100 + i, &frame, &len);
		assert_int_equal(kh_test_decode_copy(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &q), KH_OK);
		assert_int_equal(q.method, cases[i].b.m);
		assert_true(q.id == 100 + i);
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

		encode_req(&cases[i].b, 7 + i, &frame, &len);
		p = frame + PROTO_HDR_LEN;
		plen = len - PROTO_HDR_LEN;
		kh_test_mutate_request(p, plen, req_valid, &ok, &refused);
		free(frame);
	}
	assert_true(refused > 0 && ok > 0);
	print_message("revocation requests: %u mutations refused, %u decoded to valid requests\n", refused, ok);
}

/* Decodes b's message inside a valid envelope. */
static enum kh_err decode_body(const struct rev_req *b, struct kh_errbuf *e)
{
	uint8_t *frame = NULL;
	size_t len = 0;
	struct proto_req q;
	enum kh_err r;

	kh_err_clear(e);
	encode_req(b, 1, &frame, &len);
	r = proto_request_decode(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &q, e);
	if (r == KH_OK)
		proto_req_clear(&q);
	free(frame);
	return r;
}

static void test_validation(void **state)
{
	struct rev_req b;
	struct kh_errbuf e = { 0 };

	(void)state;
	/* Only http:// URLs: keyhold fetches nothing else. */
	rev_req_init(&b, PROTO_M_SET_TRUSTSTORE_POLICY);
	b.ts_policy.store = str("s");
	b.ts_policy.set_ocsp_url = true;
	b.ts_policy.ocsp_url = str("https://ocsp.example.com/");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "http://"));
	b.ts_policy.ocsp_url = str("ldap://x/");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	b.ts_policy.ocsp_url = str("http:///x");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	b.ts_policy.ocsp_url = str("http://a b/");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	b.ts_policy.ocsp_url = str(""); /* "" clears it */
	assert_int_equal(decode_body(&b, &e), KH_OK);
	/* Nothing to set. */
	b.ts_policy.set_ocsp_url = false;
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "nothing to set"));
	/* Validation settings: OIDs, their count, the key floors. */
	{
		char *pols[KH_POLICIES_MAX + 1];
		size_t i;

		for (i = 0; i <= KH_POLICIES_MAX; i++)
			pols[i] = str("2.16.840.1.101.3.2.1.48.1");
		b.ts_policy.set_policies = true;
		b.ts_policy.policies = pols;
		b.ts_policy.n_policies = 1;
		assert_int_equal(decode_body(&b, &e), KH_OK);
		pols[0] = str("anyPolicy");
		assert_int_equal(decode_body(&b, &e), KH_OK);
		pols[0] = str("2.16.840.1.101.3.2.1.48.01");
		assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "a policy is a dotted OID"));
		pols[0] = str("3.1");
		assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
		pols[0] = str("1.2.");
		assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
		pols[0] = str("2.16.840.1.101.3.2.1.48.1");
		b.ts_policy.n_policies = KH_POLICIES_MAX + 1;
		assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "at most 16 policies"));
		b.ts_policy.n_policies = 0;
		b.ts_policy.policies = NULL;
		b.ts_policy.set_policies = false;
		b.ts_policy.set_min_rsa_bits = true;
		b.ts_policy.min_rsa_bits = 256;
		assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "the RSA/DSA key floor is 512 to 16384 bits, not 256"));
		b.ts_policy.min_rsa_bits = 1024;
		assert_int_equal(decode_body(&b, &e), KH_OK);
		b.ts_policy.set_min_ec_bits = true;
		b.ts_policy.min_ec_bits = 1000;
		assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "the EC key floor is 160 to 521 bits, not 1000"));
		b.ts_policy.set_min_ec_bits = false;
		b.ts_policy.set_min_rsa_bits = false;
	}
	/* renew-at 1..99 (0: off). */
	rev_req_init(&b, PROTO_M_SET_TRUSTPOINT_POLICY);
	b.tp_policy.name = str("tp");
	b.tp_policy.set_renew = true;
	b.tp_policy.renew_at = 100;
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "from 1 to 99 (0: off), not 100"));
	b.tp_policy.renew_at = 0;
	assert_int_equal(decode_body(&b, &e), KH_OK);
	/* The revocation list is checked as text even when not set. */
	b.tp_policy.revocation = str("crl\n");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the revocation list contains a control character"));
	b.tp_policy.revocation = str("");
	b.tp_policy.set_ocsp_url = true;
	b.tp_policy.ocsp_url = str("file:///etc/passwd");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the OCSP URL must be an http:// URL"));
	rev_req_init(&b, PROTO_M_SET_TRUSTPOINT_POLICY);
	b.tp_policy.name = str("tp");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "nothing to set: give a revocation list, an OCSP URL, renew-at or an enrollment setting"));
	rev_req_init(&b, PROTO_M_CREATE_TRUSTPOINT);
	b.tp_create.name = str("tp");
	b.tp_create.key_source_case = KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE;
	b.tp_create.generate = KEYHOLD__V1__KEY_TYPE__P256;
	b.tp_create.renew_at = 120;
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	/* An empty certificate; a bad store name. */
	rev_req_init(&b, PROTO_M_CHECK_CERTIFICATE);
	b.cert_check.store = str("s");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the certificate is empty"));
	b.cert_check.store = str("../s");
	b.cert_check.cert = (ProtobufCBinaryData){ 10, blob_a };
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "trust store name must match"));
	/* --within beyond a century. */
	rev_req_init(&b, PROTO_M_LIST_EXPIRING);
	b.expiring.within_days = 40000;
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "--within takes 0 to 36500 days, not 40000"));
	b.expiring.within_days = 36500;
	assert_int_equal(decode_body(&b, &e), KH_OK);
	assert_true(kh_url_valid(""));
	assert_false(kh_url_valid(NULL));
	assert_true(kh_url_valid("HTTP://127.0.0.1:1/ocsp"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_validation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
