/* libkeyhold_pki.c: the client side of the PKI RPCs: CSRs, trustpoints,
 * trust stores and CRLs. Each call checks names and sizes locally, then
 * sends one request and decodes its answer. */
#include <stdlib.h>
#include <string.h>

#include "keyhold.h"
#include "kh_client_int.h"
#include "kh_util.h"
#include "proto.h"

static enum kh_err kp_name(char *dst, const char *name, const char *what, struct kh_errbuf *e)
{
	if (!kh_name_valid(name))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s name must match [A-Za-z0-9._-]{1,64}", what);
	kh_strlcpy(dst, name, KH_NAME_MAX + 1);
	return KH_OK;
}

static enum kh_err kp_text(char *dst, size_t dstsz, const char *src, const char *what, struct kh_errbuf *e)
{
	if (src == NULL)
		src = "";
	if (!kh_strlcpy(dst, src, dstsz))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s is longer than %zu characters", what, dstsz - 1);
	return KH_OK;
}

/* The request must fit one frame (DESIGN §4: 1 MiB by default). */
static enum kh_err kp_size(size_t total, const char *what, struct kh_errbuf *e)
{
	if (total > KH_PKI_BLOB_MAX)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "%s is %zu bytes; one request carries at most %u (the service's frame cap is 1 MiB)", what,
				  total, KH_PKI_BLOB_MAX);
	return KH_OK;
}

enum kh_err kh_create_csr(kh_client *c, const struct kh_csr_req *req, char **pem, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.csr = *req;
	r = kp_name(q.csr.key, req->key, "key", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_CREATE_CSR, &q, &a, e);
	if (r == KH_OK)
		*pem = (char *)a.pem.data;
	return r;
}

enum kh_err kh_trustpoint_create(kh_client *c, const struct kh_tp_create_req *req, struct kh_trustpoint *out,
				 struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.tp_create = *req;
	r = kp_name(q.tp_create.name, req->name, "trustpoint", e);
	if (r == KH_OK && req->generate == KH_KEY_UNSPECIFIED)
		r = kp_name(q.tp_create.key, req->key, "key", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_CREATE_TRUSTPOINT, &q, &a, e);
	if (r == KH_OK)
		*out = a.tp;
	return r;
}

enum kh_err kh_trustpoint_list(kh_client *c, struct kh_trustpoint_list *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kh_call(c, PROTO_M_LIST_TRUSTPOINTS, &q, &a, e);
	if (r == KH_OK)
		*out = a.tps;
	return r;
}

enum kh_err kh_trustpoint_get(kh_client *c, const char *name, struct kh_trustpoint *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kp_name(q.name.name, name, "trustpoint", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_GET_TRUSTPOINT, &q, &a, e);
	if (r == KH_OK)
		*out = a.tp;
	return r;
}

enum kh_err kh_trustpoint_delete(kh_client *c, const char *name, bool keep_key, struct kh_tp_delete_resp *out,
				 struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.tp_delete.keep_key = keep_key;
	r = kp_name(q.tp_delete.name, name, "trustpoint", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_DELETE_TRUSTPOINT, &q, &a, e);
	if (r == KH_OK)
		*out = a.tp_delete;
	return r;
}

enum kh_err kh_trustpoint_authenticate(kh_client *c, const char *name, const uint8_t *ca, size_t len, bool confirm,
				       const char *fingerprint, struct kh_cert_list *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.tp_auth.ca.data = (uint8_t *)(uintptr_t)ca; /* borrowed: never freed here */
	q.tp_auth.ca.len = len;
	q.tp_auth.confirm = confirm;
	r = kp_name(q.tp_auth.name, name, "trustpoint", e);
	if (r == KH_OK)
		r = kp_text(q.tp_auth.fingerprint, sizeof(q.tp_auth.fingerprint), fingerprint, "fingerprint", e);
	if (r == KH_OK)
		r = kp_size(len, "the CA certificate", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_AUTHENTICATE_TRUSTPOINT, &q, &a, e);
	if (r == KH_OK)
		*out = a.certs;
	return r;
}

enum kh_err kh_trustpoint_enroll(kh_client *c, const char *name, struct kh_enroll_resp *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kp_name(q.name.name, name, "trustpoint", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_ENROLL_TRUSTPOINT, &q, &a, e);
	if (r == KH_OK)
		*out = a.enroll;
	return r;
}

enum kh_err kh_trustpoint_import(kh_client *c, const char *name, const uint8_t *data, size_t len,
				 struct kh_import_resp *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.tp_import.data.data = (uint8_t *)(uintptr_t)data;
	q.tp_import.data.len = len;
	r = kp_name(q.tp_import.name, name, "trustpoint", e);
	if (r == KH_OK)
		r = kp_size(len, "the certificate file", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_IMPORT_CERTIFICATE, &q, &a, e);
	if (r == KH_OK)
		*out = a.import;
	return r;
}

enum kh_err kh_trustpoint_export(kh_client *c, const char *name, bool chain, enum kh_cert_format format,
				 struct kh_bytes *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.tp_export.chain = chain;
	q.tp_export.format = format;
	r = kp_name(q.tp_export.name, name, "trustpoint", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_EXPORT_TRUSTPOINT, &q, &a, e);
	if (r == KH_OK)
		*out = a.pem;
	return r;
}

enum kh_err kh_trustpoint_regenerate(kh_client *c, const char *name, enum kh_key_type type,
				     struct kh_enroll_resp *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.tp_regen.type = type;
	r = kp_name(q.tp_regen.name, name, "trustpoint", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_REGENERATE_TRUSTPOINT, &q, &a, e);
	if (r == KH_OK)
		*out = a.enroll;
	return r;
}

enum kh_err kh_truststore_add(kh_client *c, const char *store, const struct kh_bytes *files, size_t n_files,
			      struct kh_ts_add_resp *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	size_t i, total = 0;
	int r;

	memset(&q, 0, sizeof(q));
	if (n_files == 0 || n_files > KH_PKI_FILES_MAX)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "give 1 to %d certificate files", KH_PKI_FILES_MAX);
	for (i = 0; i < n_files; i++)
		total += files[i].len;
	q.ts_add.files = (struct kh_bytes *)(uintptr_t)files; /* borrowed */
	q.ts_add.n_files = n_files;
	r = kp_name(q.ts_add.store, store, "trust store", e);
	if (r == KH_OK)
		r = kp_size(total, "the certificate files", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_TRUSTSTORE_ADD, &q, &a, e);
	if (r == KH_OK)
		*out = a.ts_add;
	return r;
}

enum kh_err kh_truststore_list(kh_client *c, const char *store, struct kh_truststore_list *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r = KH_OK;

	memset(&q, 0, sizeof(q));
	if (store != NULL && store[0] != '\0')
		r = kp_name(q.ts_name.store, store, "trust store", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_TRUSTSTORE_LIST, &q, &a, e);
	if (r == KH_OK)
		*out = a.stores;
	return r;
}

enum kh_err kh_truststore_remove(kh_client *c, const char *store, const char *fingerprint,
				 struct kh_ts_remove_resp *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kp_name(q.ts_remove.store, store, "trust store", e);
	if (r == KH_OK)
		r = kp_text(q.ts_remove.fingerprint, sizeof(q.ts_remove.fingerprint), fingerprint, "fingerprint", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_TRUSTSTORE_REMOVE, &q, &a, e);
	if (r == KH_OK)
		*out = a.ts_remove;
	return r;
}

enum kh_err kh_truststore_verify(kh_client *c, const struct kh_ts_verify_req *req, struct kh_ts_verify_resp *out,
				 struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	size_t i, total;
	int r;

	memset(&q, 0, sizeof(q));
	q.ts_verify = *req; /* the byte buffers stay borrowed */
	if (req->n_crls > KH_PKI_FILES_MAX)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "at most %d CRL files", KH_PKI_FILES_MAX);
	total = req->cert.len + req->untrusted.len;
	for (i = 0; i < req->n_crls; i++)
		total += req->crls[i].len;
	r = kp_name(q.ts_verify.store, req->store, "trust store", e);
	if (r == KH_OK)
		r = kp_size(total, "the certificate, intermediates and CRLs", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_TRUSTSTORE_VERIFY, &q, &a, e);
	if (r == KH_OK)
		*out = a.verify;
	return r;
}

enum kh_err kh_crl_import(kh_client *c, const char *store, const uint8_t *crl, size_t len, struct kh_crl_info *out,
			  struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	q.crl_import.crl.data = (uint8_t *)(uintptr_t)crl;
	q.crl_import.crl.len = len;
	r = kp_name(q.crl_import.store, store, "trust store", e);
	if (r == KH_OK)
		r = kp_size(len, "the CRL", e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_IMPORT_CRL, &q, &a, e);
	if (r == KH_OK)
		*out = a.crl;
	return r;
}
