/* test_validate_pki.c: the PKI requests (CSR, trustpoints, trust stores,
 * CRLs) through proto_request_decode and their edge validation. Requests
 * are built as generated messages; valid frames round-trip; every
 * truncation and every single-bit flip of a valid request is refused
 * cleanly or decodes to a message whose names, enums and lengths are valid
 * (each input is an exact-size heap copy, so ASan sees any over-read). */
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

static uint8_t blob_a[300], blob_b[120], blob_c[64];
static ProtobufCBinaryData files[3];
static char fp64[65];

static char *str(const char *s)
{
	return (char *)(uintptr_t)s;
}

/* One PKI request of method m as a generated message; every message type
 * is initialised, the one of m is sent. */
struct pki_req {
	enum proto_method m;
	Keyhold__V1__CreateCsrRequest csr;
	Keyhold__V1__CreateTrustpointRequest tp_create;
	Keyhold__V1__ListTrustpointsRequest tp_list;
	Keyhold__V1__GetTrustpointRequest tp_get;
	Keyhold__V1__DeleteTrustpointRequest tp_delete;
	Keyhold__V1__AuthenticateTrustpointRequest tp_auth;
	Keyhold__V1__EnrollTrustpointRequest tp_enroll;
	Keyhold__V1__ImportCertificateRequest tp_import;
	Keyhold__V1__ExportTrustpointRequest tp_export;
	Keyhold__V1__RegenerateTrustpointRequest tp_regen;
	Keyhold__V1__TruststoreAddRequest ts_add;
	Keyhold__V1__TruststoreListRequest ts_list;
	Keyhold__V1__TruststoreRemoveRequest ts_remove;
	Keyhold__V1__TruststoreVerifyRequest ts_verify;
	Keyhold__V1__ImportCrlRequest crl_import;
	Keyhold__V1__TruststoreCreateRequest ts_create;
	Keyhold__V1__TruststoreDeleteRequest ts_delete;
	Keyhold__V1__TruststoreExportRequest ts_export;
	Keyhold__V1__TruststoreShowRequest ts_show;
};

static void pki_req_init(struct pki_req *b, enum proto_method m)
{
	memset(b, 0, sizeof(*b));
	b->m = m;
	keyhold__v1__create_csr_request__init(&b->csr);
	keyhold__v1__create_trustpoint_request__init(&b->tp_create);
	keyhold__v1__list_trustpoints_request__init(&b->tp_list);
	keyhold__v1__get_trustpoint_request__init(&b->tp_get);
	keyhold__v1__delete_trustpoint_request__init(&b->tp_delete);
	keyhold__v1__authenticate_trustpoint_request__init(&b->tp_auth);
	keyhold__v1__enroll_trustpoint_request__init(&b->tp_enroll);
	keyhold__v1__import_certificate_request__init(&b->tp_import);
	keyhold__v1__export_trustpoint_request__init(&b->tp_export);
	keyhold__v1__regenerate_trustpoint_request__init(&b->tp_regen);
	keyhold__v1__truststore_add_request__init(&b->ts_add);
	keyhold__v1__truststore_list_request__init(&b->ts_list);
	keyhold__v1__truststore_remove_request__init(&b->ts_remove);
	keyhold__v1__truststore_create_request__init(&b->ts_create);
	keyhold__v1__truststore_delete_request__init(&b->ts_delete);
	keyhold__v1__truststore_export_request__init(&b->ts_export);
	keyhold__v1__truststore_show_request__init(&b->ts_show);
	keyhold__v1__truststore_verify_request__init(&b->ts_verify);
	keyhold__v1__import_crl_request__init(&b->crl_import);
}

/* The message of b's method. */
static const ProtobufCMessage *pki_msg(const struct pki_req *b)
{
	switch (b->m) {
	case PROTO_M_CREATE_CSR: return &b->csr.base;
	case PROTO_M_CREATE_TRUSTPOINT: return &b->tp_create.base;
	case PROTO_M_LIST_TRUSTPOINTS: return &b->tp_list.base;
	case PROTO_M_GET_TRUSTPOINT: return &b->tp_get.base;
	case PROTO_M_DELETE_TRUSTPOINT: return &b->tp_delete.base;
	case PROTO_M_AUTHENTICATE_TRUSTPOINT: return &b->tp_auth.base;
	case PROTO_M_ENROLL_TRUSTPOINT: return &b->tp_enroll.base;
	case PROTO_M_IMPORT_CERTIFICATE: return &b->tp_import.base;
	case PROTO_M_EXPORT_TRUSTPOINT: return &b->tp_export.base;
	case PROTO_M_REGENERATE_TRUSTPOINT: return &b->tp_regen.base;
	case PROTO_M_TRUSTSTORE_ADD: return &b->ts_add.base;
	case PROTO_M_TRUSTSTORE_LIST: return &b->ts_list.base;
	case PROTO_M_TRUSTSTORE_REMOVE: return &b->ts_remove.base;
	case PROTO_M_TRUSTSTORE_VERIFY: return &b->ts_verify.base;
	case PROTO_M_IMPORT_CRL: return &b->crl_import.base;
	case PROTO_M_TRUSTSTORE_CREATE: return &b->ts_create.base;
	case PROTO_M_TRUSTSTORE_DELETE: return &b->ts_delete.base;
	case PROTO_M_TRUSTSTORE_EXPORT: return &b->ts_export.base;
	case PROTO_M_TRUSTSTORE_SHOW: return &b->ts_show.base;
	default: return NULL;
	}
}

/* CreateTrustpoint's key source, one arm of the oneof. */
static void tp_key(Keyhold__V1__CreateTrustpointRequest *t, const char *key)
{
	t->key_source_case = KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_KEY;
	t->key = str(key);
}

static void tp_generate(Keyhold__V1__CreateTrustpointRequest *t, int type)
{
	t->key_source_case = KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE;
	t->generate = (Keyhold__V1__KeyType)type;
}

struct req_case {
	const char *what;
	struct pki_req b;
};

#define CASES_MAX 32

static struct pki_req *add_case(struct req_case *out, size_t *n, const char *what, enum proto_method m)
{
	assert_true(*n < CASES_MAX);
	out[*n].what = what;
	pki_req_init(&out[*n].b, m);
	return &out[(*n)++].b;
}

static size_t req_cases(struct req_case *out)
{
	struct pki_req *b;
	size_t n = 0, i;

	for (i = 0; i < sizeof(blob_a); i++)
		blob_a[i] = (uint8_t)(i * 13 + 5);
	memset(blob_b, 0x30, sizeof(blob_b));
	memset(blob_c, 0xa5, sizeof(blob_c));
	files[0] = (ProtobufCBinaryData){ sizeof(blob_a), blob_a };
	files[1] = (ProtobufCBinaryData){ sizeof(blob_b), blob_b };
	files[2] = (ProtobufCBinaryData){ sizeof(blob_c), blob_c };
	memset(fp64, 'a', 64);
	fp64[64] = '\0';
	memset(out, 0, CASES_MAX * sizeof(*out));
	b = add_case(out, &n, "CreateCsr", PROTO_M_CREATE_CSR);
	b->csr.key = str("web");
	b->csr.subject = str("CN=web.example.com,O=Example\\, Inc.,C=US");
	b->csr.san = str("DNS:web.example.com,IP:192.0.2.1");
	b->csr.eku = str("serverAuth");
	b->csr.digest = KEYHOLD__V1__DIGEST__SHA384;
	b->csr.challenge_password = str("secret");
	b = add_case(out, &n, "CreateTrustpoint generate", PROTO_M_CREATE_TRUSTPOINT);
	b->tp_create.name = str("asa-tp");
	tp_generate(&b->tp_create, KH_KEY_RSA2048);
	b->tp_create.subject = str("CN=a");
	b->tp_create.fqdn = str("a.example.com");
	b->tp_create.enrollment = (Keyhold__V1__Enrollment)KH_ENROLL_TERMINAL;
	b->tp_create.revocation = str("crl,ocsp");
	b->tp_create.validity_days = 90;
	b = add_case(out, &n, "CreateTrustpoint key", PROTO_M_CREATE_TRUSTPOINT);
	b->tp_create.name = str("t2");
	tp_key(&b->tp_create, "admin-key");
	b->tp_create.subject = str("CN=b");
	add_case(out, &n, "ListTrustpoints", PROTO_M_LIST_TRUSTPOINTS);
	add_case(out, &n, "GetTrustpoint", PROTO_M_GET_TRUSTPOINT)->tp_get.name = str("tp.1");
	b = add_case(out, &n, "DeleteTrustpoint", PROTO_M_DELETE_TRUSTPOINT);
	b->tp_delete.name = str("old");
	b->tp_delete.keep_key = true;
	b = add_case(out, &n, "AuthenticateTrustpoint", PROTO_M_AUTHENTICATE_TRUSTPOINT);
	b->tp_auth.name = str("tp");
	b->tp_auth.ca = files[0];
	b->tp_auth.fingerprint = str("AB:CD");
	add_case(out, &n, "EnrollTrustpoint", PROTO_M_ENROLL_TRUSTPOINT)->tp_enroll.name = str("tp");
	b = add_case(out, &n, "ImportCertificate", PROTO_M_IMPORT_CERTIFICATE);
	b->tp_import.name = str("tp");
	b->tp_import.data = files[1];
	b = add_case(out, &n, "ExportTrustpoint", PROTO_M_EXPORT_TRUSTPOINT);
	b->tp_export.name = str("tp");
	b->tp_export.chain = true;
	b->tp_export.format = (Keyhold__V1__CertFormat)KH_FMT_PKCS7;
	b = add_case(out, &n, "RegenerateTrustpoint", PROTO_M_REGENERATE_TRUSTPOINT);
	b->tp_regen.name = str("tp");
	b->tp_regen.type = KEYHOLD__V1__KEY_TYPE__P384;
	b = add_case(out, &n, "TruststoreAdd", PROTO_M_TRUSTSTORE_ADD);
	b->ts_add.store = str("tomcat-trust");
	b->ts_add.files = files;
	b->ts_add.n_files = 3;
	add_case(out, &n, "TruststoreList one", PROTO_M_TRUSTSTORE_LIST)->ts_list.store = str("cup-trust");
	add_case(out, &n, "TruststoreList all", PROTO_M_TRUSTSTORE_LIST);
	b = add_case(out, &n, "TruststoreRemove", PROTO_M_TRUSTSTORE_REMOVE);
	b->ts_remove.store = str("s");
	b->ts_remove.fingerprint = fp64;
	add_case(out, &n, "TruststoreCreate", PROTO_M_TRUSTSTORE_CREATE)->ts_create.store = str("empty-first");
	b = add_case(out, &n, "TruststoreDelete", PROTO_M_TRUSTSTORE_DELETE);
	b->ts_delete.store = str("s");
	b->ts_delete.force = true;
	b = add_case(out, &n, "TruststoreExport", PROTO_M_TRUSTSTORE_EXPORT);
	b->ts_export.store = str("s");
	b->ts_export.format = (Keyhold__V1__CertFormat)KH_FMT_PKCS7;
	b->ts_export.fingerprint = fp64;
	b = add_case(out, &n, "TruststoreShow", PROTO_M_TRUSTSTORE_SHOW);
	b->ts_show.store = str("s");
	b->ts_show.fingerprint = fp64;
	b = add_case(out, &n, "TruststoreVerify", PROTO_M_TRUSTSTORE_VERIFY);
	b->ts_verify.store = str("s");
	b->ts_verify.cert = files[0];
	b->ts_verify.untrusted = files[1];
	b->ts_verify.crls = &files[2];
	b->ts_verify.n_crls = 1;
	b->ts_verify.at = 1893553445;
	b->ts_verify.host = str("www.example.com");
	b->ts_verify.purpose = (Keyhold__V1__Purpose)KH_PURPOSE_SERVER_AUTH;
	b = add_case(out, &n, "ImportCrl", PROTO_M_IMPORT_CRL);
	b->crl_import.store = str("s");
	b->crl_import.crl = files[2];
	return n;
}

/* A request frame for b (header included). */
static void encode_req(const struct pki_req *b, uint64_t id, uint8_t **frame, size_t *len)
{
	*frame = kh_test_req_frame(id, 0, b->m, pki_msg(b), len);
	assert_non_null(*frame);
	assert_true(*len > PROTO_HDR_LEN);
}

static void encode_case(const struct req_case *c, uint64_t id, uint8_t **frame, size_t *len)
{
	encode_req(&c->b, id, frame, len);
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
		/* Empty: an enrollment url trustpoint fetches its CA (SCEP). */
		assert_true(p->ca.len <= KH_PKI_BLOB_MAX && (p->ca.len == 0 || p->ca.data != NULL));
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
		assert_true(m->n_files >= 1 && m->n_files <= KH_TS_FILES_MAX);
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
	case PROTO_M_TRUSTSTORE_CREATE:
		assert_true(kh_name_valid(((const Keyhold__V1__TruststoreCreateRequest *)(const void *)q->msg)->store));
		break;
	case PROTO_M_TRUSTSTORE_DELETE:
		assert_true(kh_name_valid(((const Keyhold__V1__TruststoreDeleteRequest *)(const void *)q->msg)->store));
		break;
	case PROTO_M_TRUSTSTORE_EXPORT: {
		const Keyhold__V1__TruststoreExportRequest *m = (const void *)q->msg;

		assert_true(kh_name_valid(m->store));
		assert_true((unsigned)m->format <= KH_FMT_MAX);
		assert_true(strlen(m->fingerprint) <= KH_FP_IN_MAX);
		break;
	}
	case PROTO_M_TRUSTSTORE_SHOW: {
		const Keyhold__V1__TruststoreShowRequest *m = (const void *)q->msg;

		assert_true(kh_name_valid(m->store));
		assert_true(strlen(m->fingerprint) <= KH_FP_IN_MAX);
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
		const struct pki_req *in = &cases[i].b;
		uint8_t *frame = NULL;
		size_t len = 0;
		struct proto_req q;

		encode_case(&cases[i], 100 + i, &frame, &len);
		assert_int_equal(kh_test_decode_copy(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &q), KH_OK);
		assert_int_equal(q.method, in->m);
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
			if (in->tp_create.key_source_case == KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE) {
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
		case PROTO_M_TRUSTSTORE_EXPORT:
			assert_int_equal(((const Keyhold__V1__TruststoreExportRequest *)(const void *)q.msg)->format, KH_FMT_PKCS7);
			break;
		case PROTO_M_TRUSTSTORE_DELETE:
			assert_true(((const Keyhold__V1__TruststoreDeleteRequest *)(const void *)q.msg)->force);
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

/* Decodes b's message inside a valid envelope. */
static enum kh_err decode_body(const struct pki_req *b, struct kh_errbuf *e)
{
	uint8_t *frame = NULL;
	size_t len = 0;
	struct proto_req q;
	enum kh_err r;

	encode_req(b, 1, &frame, &len);
	r = proto_request_decode(frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, &q, e);
	if (r == KH_OK)
		proto_req_clear(&q);
	free(frame);
	return r;
}

static void test_validation(void **state)
{
	struct pki_req b;
	struct kh_errbuf e = { 0 };

	(void)state;
	/* A trustpoint without a key source. */
	pki_req_init(&b, PROTO_M_CREATE_TRUSTPOINT);
	b.tp_create.name = str("tp");
	b.tp_create.subject = str("CN=x");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "needs a key"));
	/* Bad names. */
	kh_err_clear(&e);
	b.tp_create.name = str("a/b");
	tp_generate(&b.tp_create, KH_KEY_P256);
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	/* Validity too long. */
	kh_err_clear(&e);
	b.tp_create.name = str("tp");
	b.tp_create.validity_days = 40000;
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	/* A control character in a subject. */
	kh_err_clear(&e);
	pki_req_init(&b, PROTO_M_CREATE_CSR);
	b.csr.key = str("k");
	b.csr.subject = str("CN=a\nb");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "control character"));
	/* Empty payloads. */
	kh_err_clear(&e);
	pki_req_init(&b, PROTO_M_IMPORT_CERTIFICATE);
	b.tp_import.name = str("tp");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the certificate is empty"));
	kh_err_clear(&e);
	pki_req_init(&b, PROTO_M_TRUSTSTORE_ADD);
	b.ts_add.store = str("s");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "no certificate files given"));
	/* An empty file among them; too many files. */
	{
		static ProtobufCBinaryData many[KH_TS_FILES_MAX + 1];
		size_t i;

		for (i = 0; i < KH_TS_FILES_MAX + 1; i++)
			many[i] = (ProtobufCBinaryData){ sizeof(blob_c), blob_c };
		many[1].len = 0;
		b.ts_add.files = many;
		b.ts_add.n_files = 2;
		kh_err_clear(&e);
		assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "a certificate file is empty"));
		many[1].len = sizeof(blob_c);
		assert_int_equal(decode_body(&b, &e), KH_OK);
		/* Far more than the old 64 (issue 16), up to the documented cap. */
		b.ts_add.n_files = KH_TS_FILES_MAX;
		assert_int_equal(decode_body(&b, &e), KH_OK);
		b.ts_add.n_files = KH_TS_FILES_MAX + 1;
		kh_err_clear(&e);
		assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "at most 1024 files at once"));
	}
	/* Host and IP together. */
	kh_err_clear(&e);
	pki_req_init(&b, PROTO_M_TRUSTSTORE_VERIFY);
	b.ts_verify.store = str("s");
	b.ts_verify.cert = (ProtobufCBinaryData){ sizeof(blob_c), blob_c };
	b.ts_verify.host = str("h");
	b.ts_verify.ip = str("192.0.2.1");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "not both"));
	/* A negative time. */
	kh_err_clear(&e);
	b.ts_verify.ip = str("");
	b.ts_verify.at = -5;
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "before 1970"));
	/* An unknown purpose; a control character in the host name. */
	kh_err_clear(&e);
	b.ts_verify.at = 0;
	b.ts_verify.purpose = (Keyhold__V1__Purpose)9;
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "purpose 9 is unknown"));
	kh_err_clear(&e);
	b.ts_verify.purpose = (Keyhold__V1__Purpose)KH_PURPOSE_CLIENT_AUTH;
	b.ts_verify.host = str("a\tb");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "host name contains a control character"));
	/* No certificate to verify. */
	kh_err_clear(&e);
	b.ts_verify.host = str("");
	b.ts_verify.cert.len = 0;
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the certificate is empty"));
	b.ts_verify.cert.len = sizeof(blob_c);
	assert_int_equal(decode_body(&b, &e), KH_OK);
	/* An empty CRL. */
	kh_err_clear(&e);
	pki_req_init(&b, PROTO_M_IMPORT_CRL);
	b.crl_import.store = str("s");
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "the CRL is empty"));
	/* The empty store name means "all" only for TruststoreList. */
	kh_err_clear(&e);
	pki_req_init(&b, PROTO_M_TRUSTSTORE_LIST);
	assert_int_equal(decode_body(&b, &e), KH_OK);
	pki_req_init(&b, PROTO_M_TRUSTSTORE_REMOVE);
	assert_int_equal(decode_body(&b, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "trust store name must match"));
}

/* The trustpoint requests' rules (proto/validate.c): the legacy decoders'
 * refusals and messages, now at the edge. */
static void expect_refused(const struct pki_req *b, const char *msg)
{
	struct kh_errbuf e = { 0 };

	assert_int_equal(decode_body(b, &e), KH_E_INVALID_ARGUMENT);
	if (strstr(e.msg, msg) == NULL)
		fail_msg("'%s' is not in '%s'", msg, e.msg);
}

static void test_tp_validation(void **state)
{
	struct pki_req b;
	struct kh_errbuf e = { 0 };
	static const enum proto_method named[] = { PROTO_M_GET_TRUSTPOINT, PROTO_M_ENROLL_TRUSTPOINT,
						   PROTO_M_DELETE_TRUSTPOINT };
	size_t i;

	(void)state;
	pki_req_init(&b, PROTO_M_CREATE_TRUSTPOINT);
	b.tp_create.name = str("tp");
	tp_key(&b.tp_create, "a/b");
	expect_refused(&b, "key name must match [A-Za-z0-9._-]{1,64}");
	tp_generate(&b.tp_create, 99);
	expect_refused(&b, "key type 99 is unknown");
	tp_generate(&b.tp_create, KH_KEY_P256);
	assert_int_equal(decode_body(&b, &e), KH_OK);
	b.tp_create.enrollment = (Keyhold__V1__Enrollment)7;
	expect_refused(&b, "enrollment 7 is unknown; use self, terminal, url or acme");
	/* ACME: an https:// directory, a mailto: contact, and only with acme. */
	b.tp_create.enrollment = (Keyhold__V1__Enrollment)KH_ENROLL_ACME;
	expect_refused(&b, "enrollment acme needs the directory as an https:// URL");
	b.tp_create.acme_directory = str("http://acme.example/dir");
	expect_refused(&b, "enrollment acme needs the directory as an https:// URL");
	b.tp_create.acme_directory = str("https://acme.example/d ir");
	expect_refused(&b, "the ACME directory URL holds a blank");
	b.tp_create.acme_directory = str("https://acme.example/dir");
	b.tp_create.acme_contact = str("admin@example.com");
	expect_refused(&b, "the ACME contact must be a mailto: URL");
	b.tp_create.acme_contact = str("mailto:admin@example.com");
	assert_int_equal(decode_body(&b, &e), KH_OK);
	/* External account binding: both halves; the webroot: absolute. */
	b.tp_create.eab_kid = str("kid-1");
	expect_refused(&b, "external account binding needs both --eab-kid and --eab-hmac-file");
	b.tp_create.eab_kid = str("");
	b.tp_create.eab_hmac_key.data = (uint8_t *)str("zWNDZM6eQGHWpSRTPal5eIUYFTu7EajV");
	b.tp_create.eab_hmac_key.len = 32;
	expect_refused(&b, "external account binding needs both --eab-kid and --eab-hmac-file");
	b.tp_create.eab_kid = str("kid-1");
	assert_int_equal(decode_body(&b, &e), KH_OK);
	b.tp_create.acme_webroot = str("www");
	expect_refused(&b, "--acme-webroot must be an absolute path");
	b.tp_create.acme_webroot = str("/var/www/html");
	assert_int_equal(decode_body(&b, &e), KH_OK);
	b.tp_create.enrollment = (Keyhold__V1__Enrollment)KH_ENROLL_TERMINAL;
	expect_refused(&b, "the ACME options need --enrollment acme");
	b.tp_create.eab_kid = str("");
	b.tp_create.eab_hmac_key.len = 0;
	b.tp_create.eab_hmac_key.data = NULL;
	expect_refused(&b, "the ACME options need --enrollment acme");
	b.tp_create.acme_webroot = str("");
	b.tp_create.acme_directory = str("");
	b.tp_create.acme_contact = str("");
	b.tp_create.enrollment = (Keyhold__V1__Enrollment)KH_ENROLL_SELF;
	b.tp_create.digest = (Keyhold__V1__Digest)9;
	expect_refused(&b, "digest 9 is unknown");
	b.tp_create.digest = KEYHOLD__V1__DIGEST__SHA256;
	b.tp_create.validity_days = 40000;
	expect_refused(&b, "validity of 40000 days is too long (at most 36500)");
	b.tp_create.validity_days = 36500;
	b.tp_create.ocsp_url = str("https://ocsp.example/");
	expect_refused(&b, "the OCSP URL must be an http:// URL");
	b.tp_create.ocsp_url = str("http://ocsp.example/");
	assert_int_equal(decode_body(&b, &e), KH_OK);
	b.tp_create.fqdn = str("a\tb");
	expect_refused(&b, "FQDN contains a control character");
	b.tp_create.fqdn = str("");
	/* enrollment url (SCEP): an http:// URL and a generated RSA key. */
	b.tp_create.url = str("http://ca.example/scep");
	expect_refused(&b, "belong to --enrollment url");
	b.tp_create.enrollment = (Keyhold__V1__Enrollment)KH_ENROLL_URL;
	expect_refused(&b, "needs an RSA key");
	tp_generate(&b.tp_create, KH_KEY_RSA2048);
	assert_int_equal(decode_body(&b, &e), KH_OK);
	b.tp_create.url = str("https://ca.example/scep");
	expect_refused(&b, "enrollment url needs --url http://");
	b.tp_create.url = str("");
	expect_refused(&b, "enrollment url needs --url http://");
	tp_key(&b.tp_create, "k");
	b.tp_create.url = str("http://ca.example/scep");
	expect_refused(&b, "needs a key generated for it");

	pki_req_init(&b, PROTO_M_CREATE_CSR);
	b.csr.key = str("k");
	b.csr.digest = (Keyhold__V1__Digest)9;
	expect_refused(&b, "digest 9 is unknown; use sha256, sha384 or sha512");
	b.csr.digest = KEYHOLD__V1__DIGEST__SHA256;
	b.csr.challenge_password = str("x\x7fy");
	expect_refused(&b, "challenge password contains a control character");
	b.csr.key = str("");
	expect_refused(&b, "key name must match");

	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		pki_req_init(&b, named[i]);
		expect_refused(&b, "trustpoint name must match");
	}
	pki_req_init(&b, PROTO_M_LIST_TRUSTPOINTS);
	assert_int_equal(decode_body(&b, &e), KH_OK);

	pki_req_init(&b, PROTO_M_AUTHENTICATE_TRUSTPOINT);
	b.tp_auth.name = str("tp");
	/* No CA: an enrollment url trustpoint fetches it (the handler refuses
	 * it for the others). */
	assert_int_equal(decode_body(&b, &e), KH_OK);
	b.tp_auth.ca = files[2];
	b.tp_auth.fingerprint = str("ab\ncd");
	expect_refused(&b, "fingerprint contains a control character");

	pki_req_init(&b, PROTO_M_IMPORT_CERTIFICATE);
	b.tp_import.name = str("tp");
	expect_refused(&b, "the certificate is empty");

	pki_req_init(&b, PROTO_M_EXPORT_TRUSTPOINT);
	b.tp_export.name = str("tp");
	b.tp_export.format = (Keyhold__V1__CertFormat)9;
	expect_refused(&b, "format 9 is unknown; use pem, der or pkcs7");

	pki_req_init(&b, PROTO_M_REGENERATE_TRUSTPOINT);
	b.tp_regen.name = str("tp");
	assert_int_equal(decode_body(&b, &e), KH_OK);
	b.tp_regen.type = (Keyhold__V1__KeyType)42;
	expect_refused(&b, "key type 42 is unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_tp_validation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
