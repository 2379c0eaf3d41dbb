/* pki_verify.c: chain building and checking with OpenSSL's X509_STORE under
 * X509_V_FLAG_X509_STRICT (RFC 5280 §6), with host/IP matching (RFC 6125),
 * purpose (EKU), a chosen time, and CRLs over the whole chain. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "kh_text.h"

/* One attempt with the given flags; fills res. */
static enum kh_err pki_verify_once(X509 *leaf, const struct pki_verify_opts *o, bool partial,
				   struct pki_verify_result *res, struct kh_errbuf *e)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *vp;
	STACK_OF(X509) *chain;
	unsigned long flags = X509_V_FLAG_X509_STRICT;
	int r = KH_OK, i, ok;

	memset(res, 0, sizeof(*res));
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	KH_ENSURE(store != NULL && ctx != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < sk_X509_num(o->trusted); i++)
		KH_ENSURE(X509_STORE_add_cert(store, sk_X509_value(o->trusted, i)) == 1,
			  kh_err_set(e, KH_E_INTERNAL, "cannot load the trusted certificates"));
	if (sk_X509_CRL_num(o->crls) > 0) {
		for (i = 0; i < sk_X509_CRL_num(o->crls); i++)
			KH_ENSURE(X509_STORE_add_crl(store, sk_X509_CRL_value(o->crls, i)) == 1,
				  kh_err_set(e, KH_E_INTERNAL, "cannot load the CRLs"));
		/* Every certificate of the chain must be covered by a CRL. */
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
	}
	if (partial)
		flags |= X509_V_FLAG_PARTIAL_CHAIN;
	if (o->no_check_time)
		flags |= X509_V_FLAG_NO_CHECK_TIME;
	KH_ENSURE(X509_STORE_CTX_init(ctx, store, leaf, o->untrusted) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "cannot set up chain verification"));
	vp = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(vp, flags);
	if (o->at > 0 && !o->no_check_time)
		X509_VERIFY_PARAM_set_time(vp, (time_t)o->at);
	if (o->host != NULL && o->host[0] != '\0')
		KH_ENSURE(X509_VERIFY_PARAM_set1_host(vp, o->host, strlen(o->host)) == 1,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "'%.*s' is not a host name to check", KH_UTF8_PREC(o->host, 80)));
	if (o->ip != NULL && o->ip[0] != '\0')
		KH_ENSURE(X509_VERIFY_PARAM_set1_ip_asc(vp, o->ip) == 1,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "'%.*s' is not an IPv4 or IPv6 address", KH_UTF8_PREC(o->ip, 64)));
	if (o->purpose != KH_PURPOSE_ANY)
		KH_ENSURE(X509_STORE_CTX_set_purpose(ctx, o->purpose == KH_PURPOSE_SERVER_AUTH ? X509_PURPOSE_SSL_SERVER
											: X509_PURPOSE_SSL_CLIENT) == 1,
			  kh_err_set(e, KH_E_INTERNAL, "cannot set the purpose"));
	ok = X509_verify_cert(ctx);
	res->valid = ok == 1;
	res->error = X509_STORE_CTX_get_error(ctx);
	res->depth = X509_STORE_CTX_get_error_depth(ctx);
	if (!res->valid) {
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
		char subj[200] = "";

		if (bad != NULL)
			pki_name_text(X509_get_subject_name(bad), subj, sizeof(subj));
		snprintf(res->reason, sizeof(res->reason), "%s%s%s%s", X509_verify_cert_error_string(res->error),
			 subj[0] ? " (at " : "", subj, subj[0] ? ")" : "");
		if (res->error == X509_V_OK) /* verify failed without a code: internal */
			kh_strlcpy(res->reason, "the chain could not be checked", sizeof(res->reason));
	} else {
		kh_strlcpy(res->reason, "ok", sizeof(res->reason));
	}
	chain = X509_STORE_CTX_get1_chain(ctx);
	res->chain = chain != NULL ? chain : sk_X509_new_null();
	KH_ENSURE(res->chain != NULL, KH_E_RESOURCE_EXHAUSTED);
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return r;
}

enum kh_err pki_verify(X509 *leaf, const struct pki_verify_opts *o, struct pki_verify_result *res,
		       struct kh_errbuf *e)
{
	int r;

	/* Up to a self-signed root first: revocation of every certificate
	 * can only be checked on a whole chain (RFC 5280 §6.3). Only when no
	 * root is at hand may a trusted intermediate end the chain. */
	r = pki_verify_once(leaf, o, false, res, e);
	if (r != KH_OK || res->valid || !o->partial_chain ||
	    (res->error != X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY &&
	     res->error != X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT && res->error != X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN &&
	     res->error != X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT))
		return r;
	pki_verify_result_clear(res);
	return pki_verify_once(leaf, o, true, res, e);
}

void pki_verify_result_clear(struct pki_verify_result *r)
{
	if (r == NULL)
		return;
	sk_X509_pop_free(r->chain, X509_free);
	memset(r, 0, sizeof(*r));
}
