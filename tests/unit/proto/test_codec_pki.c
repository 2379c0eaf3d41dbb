/* test_codec_pki.c: the PKI request and response bodies. Valid frames
 * round-trip; every truncation and every single-bit flip of a valid
 * request is refused cleanly or decodes to a struct whose names, enums and
 * lengths are valid; the client's response decoders survive the same
 * mutations (each input is an exact-size heap copy, so ASan sees any
 * over-read). */
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

static uint8_t blob_a[300], blob_b[120], blob_c[64];
static struct kh_bytes files[3];

struct req_case {
	const char *what;
	enum proto_method m;
	union proto_req_body body;
};

#define CASES_MAX 24

static size_t req_cases(struct req_case *out)
{
	size_t n = 0, i;

	for (i = 0; i < sizeof(blob_a); i++)
		blob_a[i] = (uint8_t)(i * 13 + 5);
	memset(blob_b, 0x30, sizeof(blob_b));
	memset(blob_c, 0xa5, sizeof(blob_c));
	files[0] = (struct kh_bytes){ blob_a, sizeof(blob_a) };
	files[1] = (struct kh_bytes){ blob_b, sizeof(blob_b) };
	files[2] = (struct kh_bytes){ blob_c, sizeof(blob_c) };
	memset(out, 0, CASES_MAX * sizeof(*out));
#define ADD(w, mm) (assert_true(n < CASES_MAX), out[n].what = (w), out[n].m = (mm), &out[n++].body)
	{
		union proto_req_body *b = ADD("CreateCsr", PROTO_M_CREATE_CSR);

		memcpy(b->csr.key, "web", 4);
		memcpy(b->csr.subject, "CN=web.example.com,O=Example\\, Inc.,C=US", 41);
		memcpy(b->csr.san, "DNS:web.example.com,IP:192.0.2.1", 33);
		memcpy(b->csr.eku, "serverAuth", 11);
		b->csr.digest = KH_DIGEST_SHA384;
		memcpy(b->csr.challenge, "secret", 7);
	}
	{
		union proto_req_body *b = ADD("CreateTrustpoint generate", PROTO_M_CREATE_TRUSTPOINT);

		memcpy(b->tp_create.name, "asa-tp", 7);
		b->tp_create.generate = KH_KEY_RSA2048;
		memcpy(b->tp_create.subject, "CN=a", 5);
		memcpy(b->tp_create.fqdn, "a.example.com", 14);
		b->tp_create.enrollment = KH_ENROLL_TERMINAL;
		memcpy(b->tp_create.revocation, "crl,ocsp", 9);
		b->tp_create.validity_days = 90;
	}
	{
		union proto_req_body *b = ADD("CreateTrustpoint key", PROTO_M_CREATE_TRUSTPOINT);

		memcpy(b->tp_create.name, "t2", 3);
		memcpy(b->tp_create.key, "admin-key", 10);
		memcpy(b->tp_create.subject, "CN=b", 5);
	}
	ADD("ListTrustpoints", PROTO_M_LIST_TRUSTPOINTS);
	memcpy(ADD("GetTrustpoint", PROTO_M_GET_TRUSTPOINT)->name.name, "tp.1", 5);
	{
		union proto_req_body *b = ADD("DeleteTrustpoint", PROTO_M_DELETE_TRUSTPOINT);

		memcpy(b->tp_delete.name, "old", 4);
		b->tp_delete.keep_key = true;
	}
	{
		union proto_req_body *b = ADD("AuthenticateTrustpoint", PROTO_M_AUTHENTICATE_TRUSTPOINT);

		memcpy(b->tp_auth.name, "tp", 3);
		b->tp_auth.ca = files[0];
		memcpy(b->tp_auth.fingerprint, "AB:CD", 6);
	}
	memcpy(ADD("EnrollTrustpoint", PROTO_M_ENROLL_TRUSTPOINT)->name.name, "tp", 3);
	{
		union proto_req_body *b = ADD("ImportCertificate", PROTO_M_IMPORT_CERTIFICATE);

		memcpy(b->tp_import.name, "tp", 3);
		b->tp_import.data = files[1];
	}
	{
		union proto_req_body *b = ADD("ExportTrustpoint", PROTO_M_EXPORT_TRUSTPOINT);

		memcpy(b->tp_export.name, "tp", 3);
		b->tp_export.chain = true;
		b->tp_export.format = KH_FMT_PKCS7;
	}
	{
		union proto_req_body *b = ADD("RegenerateTrustpoint", PROTO_M_REGENERATE_TRUSTPOINT);

		memcpy(b->tp_regen.name, "tp", 3);
		b->tp_regen.type = KH_KEY_P384;
	}
	{
		union proto_req_body *b = ADD("TruststoreAdd", PROTO_M_TRUSTSTORE_ADD);

		memcpy(b->ts_add.store, "tomcat-trust", 13);
		b->ts_add.files = files;
		b->ts_add.n_files = 3;
	}
	memcpy(ADD("TruststoreList one", PROTO_M_TRUSTSTORE_LIST)->ts_name.store, "cup-trust", 10);
	ADD("TruststoreList all", PROTO_M_TRUSTSTORE_LIST);
	{
		union proto_req_body *b = ADD("TruststoreRemove", PROTO_M_TRUSTSTORE_REMOVE);

		memcpy(b->ts_remove.store, "s", 2);
		memset(b->ts_remove.fingerprint, 'a', 64);
	}
	{
		union proto_req_body *b = ADD("TruststoreVerify", PROTO_M_TRUSTSTORE_VERIFY);

		memcpy(b->ts_verify.store, "s", 2);
		b->ts_verify.cert = files[0];
		b->ts_verify.untrusted = files[1];
		b->ts_verify.crls = &files[2];
		b->ts_verify.n_crls = 1;
		b->ts_verify.at = 1893553445;
		memcpy(b->ts_verify.host, "www.example.com", 16);
		b->ts_verify.purpose = KH_PURPOSE_SERVER_AUTH;
	}
	{
		union proto_req_body *b = ADD("ImportCrl", PROTO_M_IMPORT_CRL);

		memcpy(b->crl_import.store, "s", 2);
		b->crl_import.crl = files[2];
	}
#undef ADD
	return n;
}

static void encode_case(const struct req_case *c, uint64_t id, uint8_t **frame, size_t *len)
{
	assert_int_equal(proto_request_encode(id, 0, c->m, &c->body, frame, len), KH_OK);
	assert_true(*len > PROTO_HDR_LEN);
}


/* The trustpoint methods: what a handler may rely on in the generated
 * message (proto_validate). */
static void tp_msg_valid(const struct proto_req *q)
{
	const void *m = q->msg;

	assert_non_null(m);
	switch (q->method) {
	case PROTO_M_CREATE_CSR: {
		const Keyhold__V1__CreateCsrRequest *p = m;

		assert_true(kh_name_valid(p->key));
		assert_true((unsigned)p->digest <= KH_DIGEST_MAX);
		assert_true(strlen(p->subject) <= KH_DN_MAX);
		assert_true(strlen(p->san) <= KH_SAN_MAX && strlen(p->eku) <= KH_EKU_MAX);
		assert_true(strlen(p->challenge_password) <= KH_CHALLENGE_MAX);
		break;
	}
	case PROTO_M_CREATE_TRUSTPOINT: {
		const Keyhold__V1__CreateTrustpointRequest *p = m;

		assert_true(kh_name_valid(p->name));
		if (p->key_source_case == KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_KEY)
			assert_true(kh_name_valid(p->key));
		else
			assert_true(p->key_source_case == KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE &&
				    p->generate >= 1 && (unsigned)p->generate <= KH_KEY_TYPE_MAX);
		assert_true((unsigned)p->enrollment <= KH_ENROLL_MAX);
		assert_true((unsigned)p->digest <= KH_DIGEST_MAX);
		assert_true(p->validity_days <= 36500 && p->renew_at <= 99);
		assert_true(strlen(p->revocation) <= KH_REVOCATION_MAX && strlen(p->fqdn) <= KH_FQDN_MAX);
		assert_true(kh_url_valid(p->ocsp_url));
		break;
	}
	case PROTO_M_GET_TRUSTPOINT:
		assert_true(kh_name_valid(((const Keyhold__V1__GetTrustpointRequest *)m)->name));
		break;
	case PROTO_M_ENROLL_TRUSTPOINT:
		assert_true(kh_name_valid(((const Keyhold__V1__EnrollTrustpointRequest *)m)->name));
		break;
	case PROTO_M_DELETE_TRUSTPOINT:
		assert_true(kh_name_valid(((const Keyhold__V1__DeleteTrustpointRequest *)m)->name));
		break;
	case PROTO_M_AUTHENTICATE_TRUSTPOINT: {
		const Keyhold__V1__AuthenticateTrustpointRequest *p = m;

		assert_true(kh_name_valid(p->name));
		assert_true(p->ca.len > 0 && p->ca.len <= KH_PKI_BLOB_MAX && p->ca.data != NULL);
		assert_true(strlen(p->fingerprint) <= KH_FP_IN_MAX);
		break;
	}
	case PROTO_M_IMPORT_CERTIFICATE: {
		const Keyhold__V1__ImportCertificateRequest *p = m;

		assert_true(kh_name_valid(p->name));
		assert_true(p->data.len > 0 && p->data.len <= KH_PKI_BLOB_MAX);
		break;
	}
	case PROTO_M_EXPORT_TRUSTPOINT: {
		const Keyhold__V1__ExportTrustpointRequest *p = m;

		assert_true(kh_name_valid(p->name));
		assert_true((unsigned)p->format <= KH_FMT_MAX);
		break;
	}
	case PROTO_M_REGENERATE_TRUSTPOINT: {
		const Keyhold__V1__RegenerateTrustpointRequest *p = m;

		assert_true(kh_name_valid(p->name));
		assert_true((unsigned)p->type <= KH_KEY_TYPE_MAX);
		break;
	}
	default:
		break;
	}
}

/* What a handler may rely on after a successful decode. */
static void req_valid(const struct proto_req *q)
{
	size_t i;

	switch (q->method) {
	case PROTO_M_CREATE_CSR:
	case PROTO_M_CREATE_TRUSTPOINT:
	case PROTO_M_LIST_TRUSTPOINTS:
	case PROTO_M_GET_TRUSTPOINT:
	case PROTO_M_ENROLL_TRUSTPOINT:
	case PROTO_M_DELETE_TRUSTPOINT:
	case PROTO_M_AUTHENTICATE_TRUSTPOINT:
	case PROTO_M_IMPORT_CERTIFICATE:
	case PROTO_M_EXPORT_TRUSTPOINT:
	case PROTO_M_REGENERATE_TRUSTPOINT:
		tp_msg_valid(q);
		break;
	/* Trust stores: the validated message (q->msg). */
	case PROTO_M_TRUSTSTORE_ADD: {
		const Keyhold__V1__TruststoreAddRequest *m = (const void *)q->msg;

		assert_non_null(m);
		assert_true(kh_name_valid(m->store));
		assert_true(m->n_files >= 1 && m->n_files <= KH_PKI_FILES_MAX);
		for (i = 0; i < m->n_files; i++) {
			assert_true(m->files[i].len > 0);
			assert_true(m->files[i].len <= KH_PKI_BLOB_MAX && m->files[i].data != NULL);
		}
		break;
	}
	case PROTO_M_TRUSTSTORE_LIST: {
		const Keyhold__V1__TruststoreListRequest *m = (const void *)q->msg;

		assert_non_null(m);
		assert_true(m->store[0] == '\0' || kh_name_valid(m->store));
		break;
	}
	case PROTO_M_TRUSTSTORE_REMOVE: {
		const Keyhold__V1__TruststoreRemoveRequest *m = (const void *)q->msg;

		assert_non_null(m);
		assert_true(kh_name_valid(m->store));
		assert_true(strlen(m->fingerprint) <= KH_FP_IN_MAX);
		break;
	}
	case PROTO_M_TRUSTSTORE_VERIFY: {
		const Keyhold__V1__TruststoreVerifyRequest *m = (const void *)q->msg;

		assert_non_null(m);
		assert_true(kh_name_valid(m->store));
		assert_true(m->cert.len > 0 && m->cert.len <= KH_PKI_BLOB_MAX);
		assert_true(m->untrusted.len <= KH_PKI_BLOB_MAX);
		assert_true(m->at >= 0);
		assert_true((unsigned)m->purpose <= KH_PURPOSE_MAX);
		assert_true(strlen(m->host) <= KH_HOST_MAX && strlen(m->ip) <= KH_IP_MAX);
		assert_true(m->host[0] == '\0' || m->ip[0] == '\0');
		assert_true(m->n_crls <= KH_PKI_FILES_MAX);
		for (i = 0; i < m->n_crls; i++)
			assert_true(m->crls[i].len > 0 && m->crls[i].len <= KH_PKI_BLOB_MAX);
		break;
	}
	case PROTO_M_IMPORT_CRL: {
		const Keyhold__V1__ImportCrlRequest *m = (const void *)q->msg;

		assert_non_null(m);
		assert_true(kh_name_valid(m->store));
		assert_true(m->crl.len > 0 && m->crl.len <= KH_PKI_BLOB_MAX);
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
		const union proto_req_body *in = &cases[i].body;
		uint8_t *frame = NULL;
		size_t len = 0;
		struct proto_req q;

		encode_case(&cases[i], 100 + i, &frame, &len);
		assert_int_equal(kh_test_decode_copy(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &q), KH_OK);
		assert_int_equal(q.method, cases[i].m);
		req_valid(&q);
		switch (q.method) {
		case PROTO_M_CREATE_CSR: {
			const Keyhold__V1__CreateCsrRequest *p = (const void *)q.msg;

			assert_string_equal(p->subject, in->csr.subject);
			assert_string_equal(p->san, in->csr.san);
			assert_string_equal(p->challenge_password, "secret");
			assert_int_equal(p->digest, KH_DIGEST_SHA384);
			break;
		}
		case PROTO_M_CREATE_TRUSTPOINT: {
			const Keyhold__V1__CreateTrustpointRequest *p = (const void *)q.msg;

			assert_string_equal(p->name, in->tp_create.name);
			if (in->tp_create.generate != KH_KEY_UNSPECIFIED) {
				assert_int_equal(p->key_source_case, KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE);
				assert_int_equal(p->generate, in->tp_create.generate);
			} else {
				assert_int_equal(p->key_source_case, KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_KEY);
				assert_string_equal(p->key, in->tp_create.key);
			}
			assert_string_equal(p->fqdn, in->tp_create.fqdn);
			assert_int_equal(p->enrollment, in->tp_create.enrollment);
			assert_int_equal(p->validity_days, in->tp_create.validity_days);
			break;
		}
		case PROTO_M_DELETE_TRUSTPOINT:
			assert_true(((const Keyhold__V1__DeleteTrustpointRequest *)(const void *)q.msg)->keep_key);
			break;
		case PROTO_M_AUTHENTICATE_TRUSTPOINT: {
			const Keyhold__V1__AuthenticateTrustpointRequest *p = (const void *)q.msg;

			assert_true(p->ca.len == sizeof(blob_a));
			assert_memory_equal(p->ca.data, blob_a, sizeof(blob_a));
			assert_string_equal(p->fingerprint, "AB:CD");
			break;
		}
		case PROTO_M_EXPORT_TRUSTPOINT: {
			const Keyhold__V1__ExportTrustpointRequest *p = (const void *)q.msg;

			assert_true(p->chain);
			assert_int_equal(p->format, KH_FMT_PKCS7);
			break;
		}
		case PROTO_M_TRUSTSTORE_ADD: {
			const Keyhold__V1__TruststoreAddRequest *m = (const void *)q.msg;

			assert_string_equal(m->store, "tomcat-trust");
			assert_true(m->n_files == 3);
			assert_memory_equal(m->files[1].data, blob_b, sizeof(blob_b));
			break;
		}
		case PROTO_M_TRUSTSTORE_REMOVE:
			assert_true(strlen(((const Keyhold__V1__TruststoreRemoveRequest *)(const void *)q.msg)->fingerprint) == 64);
			break;
		case PROTO_M_TRUSTSTORE_VERIFY: {
			const Keyhold__V1__TruststoreVerifyRequest *m = (const void *)q.msg;

			assert_true(m->at == 1893553445);
			assert_string_equal(m->host, "www.example.com");
			assert_int_equal(m->purpose, KH_PURPOSE_SERVER_AUTH);
			assert_true(m->untrusted.len == sizeof(blob_b));
			assert_true(m->n_crls == 1 && m->crls[0].len == sizeof(blob_c));
			break;
		}
		case PROTO_M_IMPORT_CRL: {
			const Keyhold__V1__ImportCrlRequest *m = (const void *)q.msg;

			assert_true(m->crl.len == sizeof(blob_c));
			assert_memory_equal(m->crl.data, blob_c, sizeof(blob_c));
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

		encode_case(&cases[i], 7 + i, &frame, &len);
		p = frame + PROTO_HDR_LEN;
		plen = len - PROTO_HDR_LEN;
		kh_test_mutate_request(p, plen, req_valid, &ok, &refused);
		free(frame);
	}
	assert_true(refused > 0 && ok > 0);
	print_message("PKI requests: %u mutations refused, %u decoded to valid requests\n", refused, ok);
}

/* Decodes a hand-made body for method m inside a valid envelope. */
static enum kh_err decode_body(enum proto_method m, const union proto_req_body *b, struct kh_errbuf *e)
{
	uint8_t *frame = NULL;
	size_t len = 0;
	struct proto_req q;
	enum kh_err r;

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
	/* A trustpoint without a key source. */
	memset(&b, 0, sizeof(b));
	memcpy(b.tp_create.name, "tp", 3);
	memcpy(b.tp_create.subject, "CN=x", 5);
	assert_int_equal(decode_body(PROTO_M_CREATE_TRUSTPOINT, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "needs a key"));
	/* Bad names. */
	kh_err_clear(&e);
	memcpy(b.tp_create.name, "a/b", 4);
	b.tp_create.generate = KH_KEY_P256;
	assert_int_equal(decode_body(PROTO_M_CREATE_TRUSTPOINT, &b, &e), KH_E_INVALID_ARGUMENT);
	/* Validity too long. */
	kh_err_clear(&e);
	memcpy(b.tp_create.name, "tp", 3);
	b.tp_create.validity_days = 40000;
	assert_int_equal(decode_body(PROTO_M_CREATE_TRUSTPOINT, &b, &e), KH_E_INVALID_ARGUMENT);
	/* A control character in a subject. */
	kh_err_clear(&e);
	memset(&b, 0, sizeof(b));
	memcpy(b.csr.key, "k", 2);
	memcpy(b.csr.subject, "CN=a\nb", 7);
	assert_int_equal(decode_body(PROTO_M_CREATE_CSR, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "control character"));
	/* Empty payloads. */
	kh_err_clear(&e);
	memset(&b, 0, sizeof(b));
	memcpy(b.tp_import.name, "tp", 3);
	assert_int_equal(decode_body(PROTO_M_IMPORT_CERTIFICATE, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the certificate is empty"));
	kh_err_clear(&e);
	memset(&b, 0, sizeof(b));
	memcpy(b.ts_add.store, "s", 2);
	assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_ADD, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "no certificate files given"));
	/* An empty file among them; too many files. */
	{
		struct kh_bytes many[KH_PKI_FILES_MAX + 1];
		size_t i;

		for (i = 0; i < KH_PKI_FILES_MAX + 1; i++)
			many[i] = (struct kh_bytes){ blob_c, sizeof(blob_c) };
		many[1].len = 0;
		b.ts_add.files = many;
		b.ts_add.n_files = 2;
		kh_err_clear(&e);
		assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_ADD, &b, &e), KH_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "a certificate file is empty"));
		many[1].len = sizeof(blob_c);
		assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_ADD, &b, &e), KH_OK);
		b.ts_add.n_files = KH_PKI_FILES_MAX + 1;
		kh_err_clear(&e);
		assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_ADD, &b, &e), KH_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "at most 64 files at once"));
	}
	/* Host and IP together. */
	kh_err_clear(&e);
	memset(&b, 0, sizeof(b));
	memcpy(b.ts_verify.store, "s", 2);
	b.ts_verify.cert = (struct kh_bytes){ blob_c, sizeof(blob_c) };
	memcpy(b.ts_verify.host, "h", 2);
	memcpy(b.ts_verify.ip, "192.0.2.1", 10);
	assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_VERIFY, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "not both"));
	/* A negative time. */
	kh_err_clear(&e);
	b.ts_verify.ip[0] = '\0';
	b.ts_verify.at = -5;
	assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_VERIFY, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "before 1970"));
	/* An unknown purpose; a control character in the host name. */
	kh_err_clear(&e);
	b.ts_verify.at = 0;
	b.ts_verify.purpose = (enum kh_purpose)9;
	assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_VERIFY, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "purpose 9 is unknown"));
	kh_err_clear(&e);
	b.ts_verify.purpose = KH_PURPOSE_CLIENT_AUTH;
	memcpy(b.ts_verify.host, "a\tb", 4);
	assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_VERIFY, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "host name contains a control character"));
	/* No certificate to verify. */
	kh_err_clear(&e);
	b.ts_verify.host[0] = '\0';
	b.ts_verify.cert.len = 0;
	assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_VERIFY, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the certificate is empty"));
	b.ts_verify.cert.len = sizeof(blob_c);
	assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_VERIFY, &b, &e), KH_OK);
	/* An empty CRL. */
	kh_err_clear(&e);
	memset(&b, 0, sizeof(b));
	memcpy(b.crl_import.store, "s", 2);
	assert_int_equal(decode_body(PROTO_M_IMPORT_CRL, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the CRL is empty"));
	/* The empty store name means "all" only for TruststoreList. */
	kh_err_clear(&e);
	memset(&b, 0, sizeof(b));
	assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_LIST, &b, &e), KH_OK);
	assert_int_equal(decode_body(PROTO_M_TRUSTSTORE_REMOVE, &b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "trust store name must match"));
}

/* The trustpoint requests' rules (proto/validate.c): the legacy decoders'
 * refusals and messages, now at the edge. */
static void expect_refused(enum proto_method m, const union proto_req_body *b, const char *msg)
{
	struct kh_errbuf e = { 0 };

	assert_int_equal(decode_body(m, b, &e), KH_E_INVALID_ARGUMENT);
	if (strstr(e.msg, msg) == NULL)
		fail_msg("'%s' is not in '%s'", msg, e.msg);
}

static void test_tp_validation(void **state)
{
	union proto_req_body b;
	struct kh_errbuf e = { 0 };

	(void)state;
	memset(&b, 0, sizeof(b));
	memcpy(b.tp_create.name, "tp", 3);
	memcpy(b.tp_create.key, "a/b", 4);
	expect_refused(PROTO_M_CREATE_TRUSTPOINT, &b, "key name must match [A-Za-z0-9._-]{1,64}");
	memset(b.tp_create.key, 0, sizeof(b.tp_create.key));
	b.tp_create.generate = (enum kh_key_type)99;
	expect_refused(PROTO_M_CREATE_TRUSTPOINT, &b, "key type 99 is unknown");
	b.tp_create.generate = KH_KEY_P256;
	assert_int_equal(decode_body(PROTO_M_CREATE_TRUSTPOINT, &b, &e), KH_OK);
	b.tp_create.enrollment = (enum kh_enrollment)7;
	expect_refused(PROTO_M_CREATE_TRUSTPOINT, &b, "enrollment 7 is unknown; use self or terminal");
	b.tp_create.enrollment = KH_ENROLL_SELF;
	b.tp_create.digest = (enum kh_digest)9;
	expect_refused(PROTO_M_CREATE_TRUSTPOINT, &b, "digest 9 is unknown");
	b.tp_create.digest = KH_DIGEST_SHA256;
	b.tp_create.validity_days = 40000;
	expect_refused(PROTO_M_CREATE_TRUSTPOINT, &b, "validity of 40000 days is too long (at most 36500)");
	b.tp_create.validity_days = 36500;
	memcpy(b.tp_create.ocsp_url, "https://ocsp.example/", 22);
	expect_refused(PROTO_M_CREATE_TRUSTPOINT, &b, "the OCSP URL must be an http:// URL");
	memcpy(b.tp_create.ocsp_url, "http://ocsp.example/", 21);
	assert_int_equal(decode_body(PROTO_M_CREATE_TRUSTPOINT, &b, &e), KH_OK);
	memcpy(b.tp_create.fqdn, "a\tb", 4);
	expect_refused(PROTO_M_CREATE_TRUSTPOINT, &b, "FQDN contains a control character");

	memset(&b, 0, sizeof(b));
	memcpy(b.csr.key, "k", 2);
	b.csr.digest = (enum kh_digest)9;
	expect_refused(PROTO_M_CREATE_CSR, &b, "digest 9 is unknown; use sha256, sha384 or sha512");
	b.csr.digest = KH_DIGEST_SHA256;
	memcpy(b.csr.challenge, "x\x7fy", 4);
	expect_refused(PROTO_M_CREATE_CSR, &b, "challenge password contains a control character");
	memset(b.csr.key, 0, sizeof(b.csr.key));
	expect_refused(PROTO_M_CREATE_CSR, &b, "key name must match");

	memset(&b, 0, sizeof(b));
	expect_refused(PROTO_M_GET_TRUSTPOINT, &b, "trustpoint name must match");
	expect_refused(PROTO_M_ENROLL_TRUSTPOINT, &b, "trustpoint name must match");
	expect_refused(PROTO_M_DELETE_TRUSTPOINT, &b, "trustpoint name must match");
	assert_int_equal(decode_body(PROTO_M_LIST_TRUSTPOINTS, &b, &e), KH_OK);

	memset(&b, 0, sizeof(b));
	memcpy(b.tp_auth.name, "tp", 3);
	expect_refused(PROTO_M_AUTHENTICATE_TRUSTPOINT, &b, "the CA certificate is empty");
	b.tp_auth.ca = files[2];
	memcpy(b.tp_auth.fingerprint, "ab\ncd", 6);
	expect_refused(PROTO_M_AUTHENTICATE_TRUSTPOINT, &b, "fingerprint contains a control character");

	memset(&b, 0, sizeof(b));
	memcpy(b.tp_import.name, "tp", 3);
	expect_refused(PROTO_M_IMPORT_CERTIFICATE, &b, "the certificate is empty");

	memset(&b, 0, sizeof(b));
	memcpy(b.tp_export.name, "tp", 3);
	b.tp_export.format = (enum kh_cert_format)9;
	expect_refused(PROTO_M_EXPORT_TRUSTPOINT, &b, "format 9 is unknown; use pem, der or pkcs7");

	memset(&b, 0, sizeof(b));
	memcpy(b.tp_regen.name, "tp", 3);
	assert_int_equal(decode_body(PROTO_M_REGENERATE_TRUSTPOINT, &b, &e), KH_OK);
	b.tp_regen.type = (enum kh_key_type)42;
	expect_refused(PROTO_M_REGENERATE_TRUSTPOINT, &b, "key type 42 is unknown");
}

/* ---- responses ---- */



/* The trust store answers as the server builds them (rpc/h_truststore.c,
 * generated messages): the client's decoders read them back and survive
 * every truncation and bit flip. */
static char *str(const char *s)
{
	return (char *)(uintptr_t)s;
}

static void fill_cert_msg(Keyhold__V1__CertInfo *c, const char *subj)
{
	keyhold__v1__cert_info__init(c);
	c->subject = str(subj);
	c->issuer = str("CN=ca");
	c->serial = str("0102");
	c->not_before = 1700000000;
	c->not_after = 1900000000;
	c->fingerprint = str("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
	c->ca = true;
}

static void test_ts_responses(void **state)
{
	Keyhold__V1__CertInfo ci[2], *cp[2] = { &ci[0], &ci[1] };
	Keyhold__V1__CrlInfo crl, *crlp[1] = { &crl };
	Keyhold__V1__Truststore ts, *tsp[1] = { &ts };
	Keyhold__V1__TruststoreAddResponse add;
	Keyhold__V1__TruststoreListResponse lst;
	Keyhold__V1__TruststoreRemoveResponse rm;
	Keyhold__V1__TruststoreVerifyResponse ver;
	Keyhold__V1__ImportCrlResponse imp;
	char *warn[1] = { str("'CN=leaf' is not a CA certificate") };
	const ProtobufCMessage *msgs[PROTO_M_COUNT];
	unsigned refused = 0, ok = 0;
	int m;

	(void)state;
	keyhold__v1__crl_info__init(&crl);
	keyhold__v1__truststore__init(&ts);
	keyhold__v1__truststore_add_response__init(&add);
	keyhold__v1__truststore_list_response__init(&lst);
	keyhold__v1__truststore_remove_response__init(&rm);
	keyhold__v1__truststore_verify_response__init(&ver);
	keyhold__v1__import_crl_response__init(&imp);
	memset(msgs, 0, sizeof(msgs));
	fill_cert_msg(&ci[0], "CN=leaf");
	fill_cert_msg(&ci[1], "CN=root");
	crl.issuer = str("CN=root");
	crl.revoked = 3;
	crl.this_update = 1700000000;
	add.added = cp;
	add.n_added = 2;
	add.already_present = 1;
	add.warnings = warn;
	add.n_warnings = 1;
	msgs[PROTO_M_TRUSTSTORE_ADD] = &add.base;
	ts.name = str("web");
	ts.cert_count = 2;
	ts.certs = cp;
	ts.n_certs = 2;
	ts.crls = crlp;
	ts.n_crls = 1;
	ts.revocation = str("crl,none");
	lst.stores = tsp;
	lst.n_stores = 1;
	msgs[PROTO_M_TRUSTSTORE_LIST] = &lst.base;
	rm.removed = &ci[0];
	rm.store_deleted = true;
	msgs[PROTO_M_TRUSTSTORE_REMOVE] = &rm.base;
	ver.valid = false;
	ver.error = 23;
	ver.reason = str("certificate revoked");
	ver.chain = cp;
	ver.n_chain = 2;
	msgs[PROTO_M_TRUSTSTORE_VERIFY] = &ver.base;
	imp.crl = &crl;
	msgs[PROTO_M_IMPORT_CRL] = &imp.base;

	for (m = PROTO_M_TRUSTSTORE_ADD; m <= PROTO_M_IMPORT_CRL; m++) {
		uint8_t *frame = NULL, *p;
		size_t len = 0, plen;
		struct proto_resp env;
		union proto_resp_body out;
		struct kh_errbuf e = { 0 };

		assert_non_null(msgs[m]);
		assert_int_equal(proto_response_encode_msg(9, KH_OK, NULL, msgs[m], &frame, &len), KH_OK);
		p = frame + PROTO_HDR_LEN;
		plen = len - PROTO_HDR_LEN;
		assert_int_equal(proto_response_decode(p, plen, &env), KH_OK);
		assert_int_equal(proto_response_body_decode((enum proto_method)m, env.body, env.body_len, &out, &e), KH_OK);
		switch (m) {
		case PROTO_M_TRUSTSTORE_ADD:
			assert_true(out.ts_add.added.n == 2 && out.ts_add.already_present == 1);
			assert_string_equal(out.ts_add.added.certs[1].subject, "CN=root");
			assert_true(out.ts_add.n_warnings == 1);
			assert_string_equal(out.ts_add.warnings[0], "'CN=leaf' is not a CA certificate");
			break;
		case PROTO_M_TRUSTSTORE_LIST:
			assert_true(out.stores.n == 1 && out.stores.stores[0].n_certs == 2 && out.stores.stores[0].certs.n == 2);
			assert_true(out.stores.stores[0].n_crls == 1 && out.stores.stores[0].crls[0].revoked == 3);
			assert_string_equal(out.stores.stores[0].revocation, "crl,none");
			break;
		case PROTO_M_TRUSTSTORE_REMOVE:
			assert_true(out.ts_remove.store_deleted);
			assert_string_equal(out.ts_remove.removed.subject, "CN=leaf");
			break;
		case PROTO_M_TRUSTSTORE_VERIFY:
			assert_string_equal(out.verify.reason, "certificate revoked");
			assert_true(!out.verify.valid && out.verify.error == 23);
			assert_true(out.verify.chain.n == 2);
			break;
		case PROTO_M_IMPORT_CRL:
			assert_string_equal(out.crl.issuer, "CN=root");
			assert_true(out.crl.revoked == 3 && out.crl.this_update == 1700000000);
			break;
		default:
			break;
		}
		proto_resp_clear((enum proto_method)m, &out);
		proto_resp_env_clear(&env);
		kh_test_mutate_response(p, plen, (enum proto_method)m, NULL, &ok, &refused);
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
		cmocka_unit_test(test_tp_validation),
		cmocka_unit_test(test_ts_responses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
