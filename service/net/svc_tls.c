/* svc_tls.c: the TLS listener's context (DESIGN §9): TLS 1.3 only, a client
 * certificate required and verified against the client CA file or trust
 * store (RFC 5280 §6 with the store's policy settings and key strength
 * floor, as `truststore verify`), the server key used in the token
 * (tls_key.c); and the principal a verified client certificate names
 * (first SAN URI, else the subject CN). */
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "kh_log.h"
#include "kh_util.h"
#include "core/svc.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "access/access.h"
#include "net/tls.h"

/* "WHAT ARG: openssl's reason" */
static enum kh_err tls_fail(struct kh_errbuf *e, const char *what, const char *arg)
{
	unsigned long err = ERR_get_error();
	char buf[256] = "";

	if (err != 0)
		ERR_error_string_n(err, buf, sizeof(buf));
	ERR_clear_error();
	return kh_err_set(e, KH_E_FAILED_PRECONDITION, "%s%s%s: %s", what, arg[0] ? " " : "", arg, buf);
}

/* The CAs (and CRLs) of trust store name verify client certificates. The
 * store is read at start-up: a change to it takes a restart. With CRLs in
 * the store, the client certificate's revocation is checked too. */
static enum kh_err tls_trust_store(struct svc *s, SSL_CTX *ctx, const char *name, struct kh_errbuf *e)
{
	STACK_OF(X509) *certs = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	STACK_OF(X509_NAME) *names = NULL;
	X509_STORE *xs = SSL_CTX_get_cert_store(ctx);
	int r = KH_OK, i;

	KH_TRY(svc_pki_truststore_load(s, name, &certs, &crls, e));
	KH_ENSURE(sk_X509_num(certs) > 0,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "[tls] client_truststore '%s' holds no certificate", name));
	names = sk_X509_NAME_new_null();
	KH_ENSURE(names != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		X509_NAME *n = X509_NAME_dup(X509_get_subject_name(x));

		KH_ENSURE(X509_STORE_add_cert(xs, x) == 1, tls_fail(e, "[tls] cannot use client_truststore", name));
		if (n == NULL || sk_X509_NAME_push(names, n) <= 0) {
			X509_NAME_free(n);
			r = KH_E_RESOURCE_EXHAUSTED;
			goto out;
		}
	}
	for (i = 0; i < sk_X509_CRL_num(crls); i++)
		KH_ENSURE(X509_STORE_add_crl(xs, sk_X509_CRL_value(crls, i)) == 1,
			  tls_fail(e, "[tls] cannot use a CRL of client_truststore", name));
	if (sk_X509_CRL_num(crls) > 0)
		X509_STORE_set_flags(xs, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_EXTENDED_CRL_SUPPORT | X509_V_FLAG_USE_DELTAS);
	KH_TRY(svc_pki_truststore_validation(s, name, &s->tls_validation, e));
	SSL_CTX_set_client_CA_list(ctx, names);
	names = NULL;
	log_info("[tls] client certificates are checked against trust store '%s' (%d CAs, %d CRLs)", name,
		 sk_X509_num(certs), sk_X509_CRL_num(crls));
out:
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return r;
}

/* SSL's chain check with keyhold's key strength floor on top; arg is the
 * struct kh_validation of the service. */
static int tls_verify_chain(X509_STORE_CTX *xctx, void *arg)
{
	const struct kh_validation *v = arg;
	char why[512];
	int depth = 0, err;

	if (X509_verify_cert(xctx) != 1)
		return 0;
	err = pki_floor_chain(X509_STORE_CTX_get0_chain(xctx), v, &depth, why, sizeof(why));
	if (err == 0)
		return 1;
	X509_STORE_CTX_set_error(xctx, err);
	X509_STORE_CTX_set_error_depth(xctx, depth);
	log_warn("[tls] client certificate refused: %s", why);
	return 0;
}

enum kh_err svc_tls_ctx_new(struct svc *s, SSL_CTX **out, struct kh_errbuf *e)
{
	const struct svc_config *cfg = s->cfg;
	struct hsm *h = s->hsm;
	SSL_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	STACK_OF(X509_NAME) *cas = NULL;
	struct kh_errbuf ke = { 0 };
	int r = KH_OK;

	ctx = SSL_CTX_new(TLS_server_method());
	KH_ENSURE(ctx != NULL, tls_fail(e, "SSL_CTX_new", ""));
	/* TLS 1.3 only (DESIGN §9): a 1.2 ClientHello gets protocol_version. */
	KH_ENSURE(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 &&
			  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1,
		  tls_fail(e, "cannot restrict TLS to 1.3", ""));
	/* No resumption: every connection presents and verifies its
	 * certificate, and no ticket key lives outside the token. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	KH_ENSURE(SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) == 1,
		  tls_fail(e, "[tls] cannot load cert", cfg->tls_cert));
	r = svc_tls_token_pkey(h, cfg->tls_key, &pk, &ke);
	if (r == KH_E_NOT_FOUND) {
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
			       "[tls] key '%s' is not on the token: create it (keyhold key generate %s --type p256), "
			       "have %s issued for its public key, then start the listener",
			       cfg->tls_key, cfg->tls_key, cfg->tls_cert);
		goto out;
	}
	if (r != KH_OK) {
		r = kh_err_set(e, r, "[tls] key '%s': %s", cfg->tls_key, ke.msg);
		goto out;
	}
	KH_ENSURE(SSL_CTX_use_PrivateKey(ctx, pk) == 1 && SSL_CTX_check_private_key(ctx) == 1,
		  tls_fail(e, "[tls] the token key does not match cert", cfg->tls_cert));
	kh_validation_default(&s->tls_validation);
	if (cfg->tls_client_truststore != NULL) {
		KH_TRY(tls_trust_store(s, ctx, cfg->tls_client_truststore, e));
	} else {
		KH_ENSURE(SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) == 1,
			  tls_fail(e, "[tls] cannot load client_ca", cfg->tls_client_ca));
		cas = SSL_load_client_CA_file(cfg->tls_client_ca);
		if (cas != NULL)
			SSL_CTX_set_client_CA_list(ctx, cas);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	/* RFC 5280 §6 as `truststore verify` checks it: policies, no partial
	 * wildcards, then the key strength floor. */
	KH_TRY(pki_verify_param_apply(SSL_CTX_get0_param(ctx), &s->tls_validation, e));
	SSL_CTX_set_cert_verify_callback(ctx, tls_verify_chain, &s->tls_validation);
	/* A client certificate must be fit for client authentication. */
	KH_ENSURE(SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1, tls_fail(e, "SSL_CTX_set_purpose", ""));
	*out = ctx;
	ctx = NULL;
out:
	EVP_PKEY_free(pk);
	SSL_CTX_free(ctx);
	return r;
}

static bool tls_name_ok(const char *s, size_t n)
{
	char buf[KH_PRINCIPAL_MAX + 1];

	if (n == 0 || n + 5 > KH_PRINCIPAL_MAX || strlen(s) != n)
		return false; /* embedded NUL */
	memcpy(buf, "cert:", 5);
	memcpy(buf + 5, s, n + 1);
	return kh_principal_valid(buf);
}

enum kh_err svc_tls_peer_name(SSL *ssl, char *out, size_t outsz, struct kh_errbuf *e)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	GENERAL_NAMES *sans = NULL;
	int i, idx, r = KH_OK;
	bool found = false;

	KH_ENSURE(cert != NULL && SSL_get_verify_result(ssl) == X509_V_OK,
		  kh_err_set(e, KH_E_UNAUTHENTICATED, "no verified client certificate"));
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && !found; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);

		if (gn->type == GEN_URI) {
			const char *s = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
			size_t n = (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier);

			KH_ENSURE(tls_name_ok(s, n) && n < outsz,
				  kh_err_set(e, KH_E_UNAUTHENTICATED, "the client certificate's SAN URI is not a usable name"));
			memcpy(out, s, n + 1);
			found = true;
		}
	}
	if (!found) {
		const X509_NAME *subj = X509_get_subject_name(cert);
		const ASN1_STRING *cn;
		unsigned char *utf8 = NULL;
		int n;

		idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
		KH_ENSURE(idx >= 0, kh_err_set(e, KH_E_UNAUTHENTICATED, "the client certificate has no SAN URI and no CN"));
		cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
		n = ASN1_STRING_to_UTF8(&utf8, cn);
		if (n <= 0 || !tls_name_ok((const char *)utf8, (size_t)n) || (size_t)n >= outsz) {
			OPENSSL_free(utf8);
			r = kh_err_set(e, KH_E_UNAUTHENTICATED, "the client certificate's CN is not a usable name");
			goto out;
		}
		memcpy(out, utf8, (size_t)n + 1);
		OPENSSL_free(utf8);
	}
out:
	GENERAL_NAMES_free(sans);
	return r;
}
