/* pki_verify.c: path validation per RFC 5280 §6 with OpenSSL's X509_STORE:
 * X509_V_FLAG_X509_STRICT, certificate policy processing (§6.1.3 (d)-(f),
 * §6.1.4, §6.1.5) with the caller's initial policy set and inhibits,
 * name constraints (§6.1.3 (b)/(c)), extended CRL handling over the whole
 * chain (§6.3: indirect CRLs, distribution point scope, delta CRLs, CRL
 * signing keys), host/IP matching (RFC 6125, no partial wildcards),
 * purpose (EKU) and a chosen time; then keyhold's key strength floor. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "kh_text.h"

/* "the certificate 'CN=...' (depth N)" for refusals. */
static void pki_cert_where(X509 *x, int depth, char *out, size_t outsz)
{
	char subj[256] = "";

	if (x != NULL)
		pki_name_text(X509_get_subject_name(x), subj, sizeof(subj));
	snprintf(out, outsz, "certificate '%s' (depth %d)", subj[0] ? subj : "(empty subject)", depth);
}

/* The rule OpenSSL applied, in words an administrator can act on, for the
 * errors this file's settings introduce; NULL for the rest. */
static const char *pki_rule_hint(int err)
{
	switch (err) {
	case X509_V_ERR_NO_EXPLICIT_POLICY:
		return "RFC 5280 §6.1.5 (g): no policy of the initial policy set is valid for this path and an "
		       "explicit policy is required (by the request, the trust store or a policyConstraints "
		       "extension)";
	case X509_V_ERR_INVALID_POLICY_EXTENSION:
		return "RFC 5280 §4.2.1.5: a policyMappings extension maps from or to anyPolicy";
	case X509_V_ERR_PERMITTED_VIOLATION:
		return "RFC 5280 §4.2.1.10: a name is outside an issuer's permitted subtrees (name constraints)";
	case X509_V_ERR_EXCLUDED_VIOLATION:
		return "RFC 5280 §4.2.1.10: a name is inside an issuer's excluded subtrees (name constraints)";
	case X509_V_ERR_HOSTNAME_MISMATCH:
		return "RFC 6125 §6.4: no DNS name of the certificate matches the host (partial wildcards such as "
		       "ba*.example.com are not honoured)";
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
		return "RFC 5280 §6.3.3 (b): no CRL whose scope (issuing distribution point, cRLIssuer) covers "
		       "this certificate";
	case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
		return "RFC 5280 §6.3.3 (f): the CRL issuer's own path does not validate";
	default:
		return NULL;
	}
}

/* The user-constrained valid policy set (RFC 5280 §6.1.6) into res. */
static void pki_policies_out(X509_STORE_CTX *ctx, struct pki_verify_result *res)
{
	X509_POLICY_TREE *tree = X509_STORE_CTX_get0_policy_tree(ctx);
	STACK_OF(X509_POLICY_NODE) *nodes;
	int i;

	res->n_policies = 0;
	if (tree == NULL)
		return;
	nodes = X509_policy_tree_get0_user_policies(tree);
	for (i = 0; i < sk_X509_POLICY_NODE_num(nodes) && res->n_policies < KH_POLICIES_MAX; i++) {
		const ASN1_OBJECT *oid = X509_policy_node_get0_policy(sk_X509_POLICY_NODE_value(nodes, i));
		char *t = res->policies[res->n_policies];

		if (oid == NULL)
			continue;
		if (OBJ_obj2nid(oid) == NID_any_policy)
			kh_strlcpy(t, "anyPolicy", KH_OID_MAX + 1);
		else if (OBJ_obj2txt(t, KH_OID_MAX + 1, oid, 1) <= 0)
			continue;
		res->n_policies++;
	}
}

/* keyhold's floor on one certificate of a valid chain (not part of RFC
 * 5280; NIST SP 800-131A's transition rules): its public key, and the
 * digest of the signature on it unless it is the anchor's self-signature,
 * which nothing relies on (RFC 5280 §6.1: the anchor is trusted as given).
 * 0 when it passes, else the X509_V_ERR_* code with why[] filled. */
static int pki_floor_check(X509 *x, int depth, bool anchor, const struct kh_validation *v, char *why, size_t whysz)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	char where[320];
	int bits, mdnid = NID_undef, pknid = NID_undef, secbits = 0;
	uint32_t flags = 0;
	bool leaf = depth == 0;

	pki_cert_where(x, depth, where, sizeof(where));
	if (pk == NULL) {
		snprintf(why, whysz, "%s: its public key cannot be read", where);
		return leaf ? X509_V_ERR_EE_KEY_TOO_SMALL : X509_V_ERR_CA_KEY_TOO_SMALL;
	}
	bits = EVP_PKEY_get_bits(pk);
	if ((EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS") || EVP_PKEY_is_a(pk, "DSA")) &&
	    bits < (int)v->min_rsa_bits) {
		snprintf(why, whysz,
			 "%s: its %s key has %d bits, below the trust store's key strength floor of %u bits for "
			 "RSA and DSA",
			 where, EVP_PKEY_is_a(pk, "DSA") ? "DSA" : "RSA", bits, v->min_rsa_bits);
		return leaf ? X509_V_ERR_EE_KEY_TOO_SMALL : X509_V_ERR_CA_KEY_TOO_SMALL;
	}
	if (EVP_PKEY_is_a(pk, "EC") && bits < (int)v->min_ec_bits) {
		snprintf(why, whysz,
			 "%s: its EC key is on a %d-bit curve, below the trust store's key strength floor of %u bits "
			 "for EC",
			 where, bits, v->min_ec_bits);
		return leaf ? X509_V_ERR_EE_KEY_TOO_SMALL : X509_V_ERR_CA_KEY_TOO_SMALL;
	}
	if (anchor)
		return 0;
	if (X509_get_signature_info(x, &mdnid, &pknid, &secbits, &flags) != 1)
		mdnid = NID_undef;
	if (mdnid == NID_md5 || mdnid == NID_md2 || mdnid == NID_md4 || (mdnid == NID_sha1 && !v->allow_sha1)) {
		snprintf(why, whysz,
			 "%s: it is signed with %s, which the trust store does not accept (MD5 never, SHA-1 only "
			 "when the store allows it); only a trust anchor's self-signature is exempt",
			 where, OBJ_nid2sn(mdnid));
		return X509_V_ERR_CA_MD_TOO_WEAK;
	}
	return 0;
}

enum kh_err pki_verify_param_apply(X509_VERIFY_PARAM *vp, const struct kh_validation *v, struct kh_errbuf *e)
{
	unsigned long flags = X509_V_FLAG_X509_STRICT | X509_V_FLAG_POLICY_CHECK;
	ASN1_OBJECT *pol = NULL;
	int r = KH_OK;
	size_t p;

	if (v->require_explicit_policy)
		flags |= X509_V_FLAG_EXPLICIT_POLICY;
	if (v->inhibit_policy_mapping)
		flags |= X509_V_FLAG_INHIBIT_MAP;
	if (v->inhibit_any_policy)
		flags |= X509_V_FLAG_INHIBIT_ANY;
	KH_ENSURE(X509_VERIFY_PARAM_set_flags(vp, flags) == 1, KH_E_RESOURCE_EXHAUSTED);
	/* initial-policy-set (§6.1.1 (c)); none given is {anyPolicy}, said
	 * explicitly: without a policy OpenSSL keeps no user-constrained set
	 * and refuses every path when an explicit policy is required. */
	for (p = 0; p < v->n_policies || (p == 0 && v->n_policies == 0); p++) {
		if (v->n_policies == 0 || strcmp(v->policies[p], "anyPolicy") == 0)
			pol = OBJ_nid2obj(NID_any_policy);
		else
			pol = OBJ_txt2obj(v->policies[p], 1);
		KH_ENSURE(pol != NULL,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "'%s' is not a policy OID", v->policies[p]));
		KH_ENSURE(X509_VERIFY_PARAM_add0_policy(vp, pol) == 1, KH_E_RESOURCE_EXHAUSTED);
		pol = NULL;
	}
	/* RFC 6125 §7.2: a partial wildcard (ba*.example.com) matches nothing. */
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
out:
	ASN1_OBJECT_free(pol);
	return r;
}

int pki_floor_chain(STACK_OF(X509) *chain, const struct kh_validation *v, int *depth, char *why, size_t whysz)
{
	int i, n = sk_X509_num(chain), err;

	for (i = 0; i < n; i++) {
		X509 *x = sk_X509_value(chain, i);
		bool anchor = i == n - 1 && X509_check_issued(x, x) == X509_V_OK;

		err = pki_floor_check(x, i, anchor, v, why, whysz);
		if (err != 0) {
			*depth = i;
			return err;
		}
	}
	return 0;
}

/* One attempt with the given flags; fills res. */
static enum kh_err pki_verify_once(X509 *leaf, const struct pki_verify_opts *o, const struct kh_validation *v,
				   bool partial, struct pki_verify_result *res, struct kh_errbuf *e)
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
		/* Every certificate of the chain must be covered by a CRL;
		 * indirect CRLs, issuing distribution points, delta CRLs and
		 * CRLs signed by another key of the issuer count (§6.3.3). */
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL | X509_V_FLAG_EXTENDED_CRL_SUPPORT |
			 X509_V_FLAG_USE_DELTAS;
	}
	if (partial)
		flags |= X509_V_FLAG_PARTIAL_CHAIN;
	if (o->no_check_time)
		flags |= X509_V_FLAG_NO_CHECK_TIME;
	KH_ENSURE(X509_STORE_CTX_init(ctx, store, leaf, o->untrusted) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "cannot set up chain verification"));
	/* The CRLs as the context's own list, not the store's: the store
	 * finds CRLs by the certificate's issuer name only, which misses an
	 * indirect CRL (cRLIssuer, §5.2.5); the list is searched by scope. */
	if (sk_X509_CRL_num(o->crls) > 0)
		X509_STORE_CTX_set0_crls(ctx, o->crls);
	vp = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(vp, flags);
	KH_TRY(pki_verify_param_apply(vp, v, e));
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
	chain = X509_STORE_CTX_get1_chain(ctx);
	res->chain = chain != NULL ? chain : sk_X509_new_null();
	KH_ENSURE(res->chain != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (!res->valid) {
		const char *hint = pki_rule_hint(res->error);
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
		char where[320];

		/* Path-wide refusals (policy processing) come without a
		 * certificate: name the one at the reported depth. */
		if (bad == NULL && res->depth >= 0 && res->depth < sk_X509_num(res->chain))
			bad = sk_X509_value(res->chain, res->depth);
		pki_cert_where(bad, res->depth, where, sizeof(where));
		snprintf(res->reason, sizeof(res->reason), "%s: %s%s%s", where, X509_verify_cert_error_string(res->error),
			 hint ? "; " : "", hint ? hint : "");
		if (res->error == X509_V_OK) /* verify failed without a code: internal */
			kh_strlcpy(res->reason, "the chain could not be checked", sizeof(res->reason));
		goto out;
	}
	pki_policies_out(ctx, res);
	i = pki_floor_chain(res->chain, v, &res->depth, res->reason, sizeof(res->reason));
	if (i != 0) {
		res->valid = false;
		res->error = i;
		res->n_policies = 0;
		goto out;
	}
	kh_strlcpy(res->reason, "ok", sizeof(res->reason));
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return r;
}

enum kh_err pki_verify(X509 *leaf, const struct pki_verify_opts *o, struct pki_verify_result *res,
		       struct kh_errbuf *e)
{
	struct kh_validation dflt;
	const struct kh_validation *v = o->v;
	int r;

	if (v == NULL) {
		kh_validation_default(&dflt);
		v = &dflt;
	}
	/* Up to a self-signed root first: revocation of every certificate
	 * can only be checked on a whole chain (RFC 5280 §6.3). Only when no
	 * root is at hand may a trusted intermediate end the chain. */
	r = pki_verify_once(leaf, o, v, false, res, e);
	if (r != KH_OK || res->valid || !o->partial_chain ||
	    (res->error != X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY &&
	     res->error != X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT && res->error != X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN &&
	     res->error != X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT))
		return r;
	pki_verify_result_clear(res);
	return pki_verify_once(leaf, o, v, true, res, e);
}

void pki_verify_result_clear(struct pki_verify_result *r)
{
	if (r == NULL)
		return;
	sk_X509_pop_free(r->chain, X509_free);
	memset(r, 0, sizeof(*r));
}
