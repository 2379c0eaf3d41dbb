/* h_truststore_pool.c: a trust store managed as a trustpool (issue 16):
 * TruststoreCreate (an empty store, given a policy before its first
 * certificate), TruststoreDelete, TruststoreExport (PEM or PKCS#7, in the
 * order the certificates were added) and TruststoreShow (one certificate
 * decoded: RFC 5280 §4.1 fields and the §4.2.1 extensions). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "rpc/rpc.h"

static enum kh_err tsp_require(struct svc *s, const char *name, struct kh_errbuf *e)
{
	bool exists = false;
	int r = store_ts_exists(s->pki->store, name, &exists, e);

	if (r == KH_OK && !exists)
		r = kh_err_set(e, KH_E_NOT_FOUND, "no trust store named '%s'", name);
	return r;
}

enum kh_err svc_h_truststore_create(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreCreateRequest *q = (const void *)c->req;
	Keyhold__V1__TruststoreCreateResponse *m = rpc_msg(c, &keyhold__v1__truststore_create_response__descriptor);
	struct svc *s = c->s;
	bool exists = false;
	int r = KH_OK;

	pthread_mutex_lock(&s->pki->lock);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(store_ts_exists(s->pki->store, q->store, &exists, e));
	KH_ENSURE(!exists, kh_err_set(e, KH_E_ALREADY_EXISTS, "trust store '%s' already exists", q->store));
	KH_TRY(store_ts_create(s->pki->store, q->store, e));
	m->store = rpc_strdup(c, q->store);
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
	log_info("trust store '%s' created (empty)", q->store);
out:
	pthread_mutex_unlock(&s->pki->lock);
	return r;
}

enum kh_err svc_h_truststore_delete(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreDeleteRequest *q = (const void *)c->req;
	Keyhold__V1__TruststoreDeleteResponse *m = rpc_msg(c, &keyhold__v1__truststore_delete_response__descriptor);
	struct svc *s = c->s;
	struct store_ts_cert *certs = NULL;
	struct store_crl *crls = NULL;
	size_t nc = 0, ncr = 0;
	int r = KH_OK;

	pthread_mutex_lock(&s->pki->lock);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(tsp_require(s, q->store, e));
	KH_TRY(store_ts_certs(s->pki->store, q->store, &certs, &nc, e));
	KH_TRY(store_crl_list(s->pki->store, q->store, &crls, &ncr, e));
	KH_ENSURE(q->force || (nc == 0 && ncr == 0),
		  kh_err_set(e, KH_E_FAILED_PRECONDITION,
			     "trust store '%s' holds %zu certificate(s) and %zu CRL(s); delete it with them using --force",
			     q->store, nc, ncr));
	/* The certificates, CRLs and settings go with it (ON DELETE CASCADE). */
	KH_TRY(store_ts_delete(s->pki->store, q->store, e));
	m->store = rpc_strdup(c, q->store);
	m->certs_removed = (uint32_t)nc;
	m->crls_removed = (uint32_t)ncr;
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
	log_info("trust store '%s' deleted (%zu certificate(s), %zu CRL(s))", q->store, nc, ncr);
out:
	pthread_mutex_unlock(&s->pki->lock);
	store_ts_certs_free(certs, nc);
	store_crls_free(crls, ncr);
	return r;
}

enum kh_err svc_h_truststore_export(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreExportRequest *q = (const void *)c->req;
	Keyhold__V1__TruststoreExportResponse *m = rpc_msg(c, &keyhold__v1__truststore_export_response__descriptor);
	struct svc *s = c->s;
	struct store_ts_cert *certs = NULL;
	STACK_OF(X509) *sk = NULL;
	struct kh_bytes data = { NULL, 0 };
	size_t nc = 0, i;
	bool one = q->fingerprint != NULL && q->fingerprint[0] != '\0';
	char fp[KH_FP_HEX + 1] = "";
	int r = KH_OK;

	pthread_mutex_lock(&s->pki->lock);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(!one || kh_fingerprint_normalize(q->fingerprint, fp),
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the fingerprint must be 64 hex digits (SHA-256), colons allowed"));
	KH_TRY(tsp_require(s, q->store, e));
	KH_TRY(store_ts_certs(s->pki->store, q->store, &certs, &nc, e));
	sk = sk_X509_new_null();
	KH_ENSURE(sk != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < nc; i++) {
		X509 *x;

		if (one && strcmp(certs[i].fingerprint, fp) != 0)
			continue;
		x = pki_x509_from_der(certs[i].der.data, certs[i].der.len);
		KH_ENSURE(x != NULL, kh_err_set(e, KH_E_DATA_LOSS, "a stored certificate (%s) does not parse",
						 certs[i].fingerprint));
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			r = KH_E_RESOURCE_EXHAUSTED;
			goto out;
		}
	}
	KH_ENSURE(!one || sk_X509_num(sk) == 1,
		  kh_err_set(e, KH_E_NOT_FOUND, "trust store '%s' holds no certificate with SHA-256 fingerprint %s",
			     q->store, fp));
	KH_ENSURE(sk_X509_num(sk) > 0,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "trust store '%s' holds no certificate", q->store));
	KH_TRY(pki_export(sk, (enum kh_cert_format)q->format, &data, e));
	m->data.data = data.data;
	m->data.len = data.len;
	rpc_defer(c, free, data.data);
	m->count = (uint32_t)sk_X509_num(sk);
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
out:
	pthread_mutex_unlock(&s->pki->lock);
	store_ts_certs_free(certs, nc);
	sk_X509_pop_free(sk, X509_free);
	return r;
}

/* ---- Show: the decoded certificate ---- */

/* A list of up to max strings, grown as entries come. */
struct tsp_list {
	char **v;
	size_t n, max;
};

static void tsp_push(struct rpc_call *c, struct tsp_list *l, const char *s)
{
	if (l->v != NULL && l->n < l->max)
		l->v[l->n++] = rpc_strdup(c, s);
}

static void tsp_hex(struct rpc_call *c, const ASN1_OCTET_STRING *o, char **out)
{
	char buf[2 * 64 + 1] = "";

	if (o != NULL && ASN1_STRING_length(o) > 0 && ASN1_STRING_length(o) <= 64)
		kh_hex(ASN1_STRING_get0_data(o), (size_t)ASN1_STRING_length(o), buf, sizeof(buf));
	*out = rpc_strdup(c, buf);
}

static void tsp_ia5(char *buf, size_t n, const char *tag, const ASN1_STRING *s)
{
	snprintf(buf, n, "%s:%.*s", tag, ASN1_STRING_length(s), (const char *)ASN1_STRING_get0_data(s));
}

/* "DNS:x", "IP:192.0.2.1", "email:x", "URI:x", "dirName:CN=x", and
 * otherNames as OpenSSL prints them ("othername: xmppAddr::x"). */
static void tsp_san_text(GENERAL_NAME *g, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	BIO *b;
	char *p = NULL;
	long len;

	switch (g->type) {
	case GEN_DNS:
		tsp_ia5(buf, n, "DNS", g->d.dNSName);
		return;
	case GEN_EMAIL:
		tsp_ia5(buf, n, "email", g->d.rfc822Name);
		return;
	case GEN_URI:
		tsp_ia5(buf, n, "URI", g->d.uniformResourceIdentifier);
		return;
	case GEN_IPADD:
		if (ASN1_STRING_length(g->d.iPAddress) == 4)
			inet_ntop(AF_INET, ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof(ip));
		else if (ASN1_STRING_length(g->d.iPAddress) == 16)
			inet_ntop(AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof(ip));
		snprintf(buf, n, "IP:%s", ip);
		return;
	case GEN_DIRNAME: {
		char dn[KH_DN_MAX + 1];

		pki_name_text(g->d.directoryName, dn, sizeof(dn));
		snprintf(buf, n, "dirName:%s", dn);
		return;
	}
	default:
		break;
	}
	snprintf(buf, n, "(unprintable)");
	b = BIO_new(BIO_s_mem());
	if (b != NULL && GENERAL_NAME_print(b, g) == 1 && (len = BIO_get_mem_data(b, &p)) > 0)
		snprintf(buf, n, "%.*s", (int)len, p);
	BIO_free(b);
}

static void tsp_key_text(X509 *x, char *buf, size_t n)
{
	EVP_PKEY *k = X509_get0_pubkey(x);
	char group[64] = "";
	size_t gl = 0;

	if (k == NULL) {
		snprintf(buf, n, "unknown");
		return;
	}
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		snprintf(buf, n, "RSA %d", EVP_PKEY_get_bits(k));
		break;
	case EVP_PKEY_DSA:
		snprintf(buf, n, "DSA %d", EVP_PKEY_get_bits(k));
		break;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(k, group, sizeof(group), &gl) != 1)
			snprintf(group, sizeof(group), "?");
		snprintf(buf, n, "EC %d (%s)", EVP_PKEY_get_bits(k), group);
		break;
	default:
		snprintf(buf, n, "%s", OBJ_nid2sn(EVP_PKEY_get_base_id(k)));
		break;
	}
}

static const struct {
	uint32_t bit;
	const char *name;
} tsp_ku[] = {
	{ KU_DIGITAL_SIGNATURE, "digitalSignature" }, { KU_NON_REPUDIATION, "nonRepudiation" },
	{ KU_KEY_ENCIPHERMENT, "keyEncipherment" },   { KU_DATA_ENCIPHERMENT, "dataEncipherment" },
	{ KU_KEY_AGREEMENT, "keyAgreement" },         { KU_KEY_CERT_SIGN, "keyCertSign" },
	{ KU_CRL_SIGN, "cRLSign" },                   { KU_ENCIPHER_ONLY, "encipherOnly" },
	{ KU_DECIPHER_ONLY, "decipherOnly" },
};

static enum kh_err tsp_detail(struct rpc_call *c, X509 *x, Keyhold__V1__CertDetail **out)
{
	Keyhold__V1__CertDetail *d = rpc_msg(c, &keyhold__v1__cert_detail__descriptor);
	GENERAL_NAMES *sans = NULL;
	EXTENDED_KEY_USAGE *eku = NULL;
	CERTIFICATEPOLICIES *pol = NULL;
	BASIC_CONSTRAINTS *bc = NULL;
	struct kh_cert_info ci;
	struct tsp_list l;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char buf[KH_DN_MAX + 64];
	BIO *b = NULL;
	char *p = NULL;
	long len;
	uint32_t ku;
	size_t i;
	int r = KH_OK, k, nid;

	KH_ENSURE(d != NULL, KH_E_RESOURCE_EXHAUSTED);
	pki_cert_info(x, &ci);
	d->info = rpc_cert_info(c, &ci);
	d->version = (uint32_t)X509_get_version(x) + 1;
	nid = X509_get_signature_nid(x);
	d->signature_algorithm = rpc_strdup(c, nid != NID_undef ? OBJ_nid2ln(nid) : "unknown");
	tsp_key_text(x, buf, sizeof(buf));
	d->public_key = rpc_strdup(c, buf);

	sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	l.n = 0;
	l.max = (size_t)(sans != NULL ? sk_GENERAL_NAME_num(sans) : 0);
	l.v = rpc_array(c, l.max, sizeof(char *));
	for (k = 0; k < (int)l.max; k++) {
		tsp_san_text(sk_GENERAL_NAME_value(sans, k), buf, sizeof(buf));
		tsp_push(c, &l, buf);
	}
	d->sans = l.v;
	d->n_sans = l.n;

	ku = X509_get_key_usage(x);
	l.n = 0;
	l.max = sizeof(tsp_ku) / sizeof(tsp_ku[0]);
	l.v = rpc_array(c, l.max, sizeof(char *));
	for (i = 0; ku != UINT32_MAX && i < l.max; i++)
		if (ku & tsp_ku[i].bit)
			tsp_push(c, &l, tsp_ku[i].name);
	d->key_usage = l.v;
	d->n_key_usage = l.n;

	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	l.n = 0;
	l.max = (size_t)(eku != NULL ? sk_ASN1_OBJECT_num(eku) : 0);
	l.v = rpc_array(c, l.max, sizeof(char *));
	for (k = 0; k < (int)l.max; k++) {
		const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, k);

		nid = OBJ_obj2nid(o);
		if (nid != NID_undef)
			snprintf(buf, sizeof(buf), "%s", OBJ_nid2sn(nid));
		else
			OBJ_obj2txt(buf, (int)sizeof(buf), o, 1);
		tsp_push(c, &l, buf);
	}
	d->eku = l.v;
	d->n_eku = l.n;

	bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
	d->basic_constraints = bc != NULL;
	d->path_len = bc != NULL && bc->pathlen != NULL ? (int32_t)ASN1_INTEGER_get(bc->pathlen) : -1;

	pol = X509_get_ext_d2i(x, NID_certificate_policies, NULL, NULL);
	l.n = 0;
	l.max = (size_t)(pol != NULL ? sk_POLICYINFO_num(pol) : 0);
	l.v = rpc_array(c, l.max, sizeof(char *));
	for (k = 0; k < (int)l.max; k++) {
		const ASN1_OBJECT *o = sk_POLICYINFO_value(pol, k)->policyid;

		if (OBJ_obj2nid(o) == NID_any_policy)
			snprintf(buf, sizeof(buf), "anyPolicy");
		else
			OBJ_obj2txt(buf, (int)sizeof(buf), o, 1);
		tsp_push(c, &l, buf);
	}
	d->policies = l.v;
	d->n_policies = l.n;

	buf[0] = '\0';
	if (X509_digest(x, EVP_sha1(), md, &mdlen) == 1)
		kh_hex(md, mdlen, buf, sizeof(buf));
	d->fingerprint_sha1 = rpc_strdup(c, buf);
	tsp_hex(c, X509_get0_subject_key_id(x), &d->subject_key_id);
	tsp_hex(c, X509_get0_authority_key_id(x), &d->authority_key_id);

	b = BIO_new(BIO_s_mem());
	KH_ENSURE(b != NULL && PEM_write_bio_X509(b, x) == 1 && (len = BIO_get_mem_data(b, &p)) > 0,
		  KH_E_RESOURCE_EXHAUSTED);
	d->pem = rpc_alloc(c, (size_t)len + 1);
	KH_ENSURE(d->pem != NULL, KH_E_RESOURCE_EXHAUSTED);
	memcpy(d->pem, p, (size_t)len);
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	*out = d;
out:
	ERR_clear_error();
	BIO_free(b);
	GENERAL_NAMES_free(sans);
	EXTENDED_KEY_USAGE_free(eku);
	CERTIFICATEPOLICIES_free(pol);
	BASIC_CONSTRAINTS_free(bc);
	return r;
}

enum kh_err svc_h_truststore_show(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreShowRequest *q = (const void *)c->req;
	Keyhold__V1__TruststoreShowResponse *m = rpc_msg(c, &keyhold__v1__truststore_show_response__descriptor);
	struct svc *s = c->s;
	struct store_ts_cert *certs = NULL;
	X509 *x = NULL;
	size_t nc = 0, i;
	char fp[KH_FP_HEX + 1];
	int r = KH_OK;

	pthread_mutex_lock(&s->pki->lock);
	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(kh_fingerprint_normalize(q->fingerprint, fp),
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the fingerprint must be 64 hex digits (SHA-256), colons allowed"));
	KH_TRY(tsp_require(s, q->store, e));
	KH_TRY(store_ts_certs(s->pki->store, q->store, &certs, &nc, e));
	for (i = 0; i < nc && x == NULL; i++) {
		if (strcmp(certs[i].fingerprint, fp) != 0)
			continue;
		x = pki_x509_from_der(certs[i].der.data, certs[i].der.len);
		KH_ENSURE(x != NULL, kh_err_set(e, KH_E_DATA_LOSS, "a stored certificate (%s) does not parse", fp));
		m->added = certs[i].added;
	}
	KH_ENSURE(x != NULL, kh_err_set(e, KH_E_NOT_FOUND,
					"trust store '%s' holds no certificate with SHA-256 fingerprint %s", q->store, fp));
	KH_TRY(tsp_detail(c, x, &m->cert));
	m->store = rpc_strdup(c, q->store);
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
out:
	pthread_mutex_unlock(&s->pki->lock);
	store_ts_certs_free(certs, nc);
	X509_free(x);
	return r;
}
