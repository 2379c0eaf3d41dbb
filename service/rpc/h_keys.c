/* h_keys.c: the key RPCs: GenerateKey, ListKeys, GetPublicKey, DeleteKey
 * and Sign (hashing here, the private-key operation in the token). */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips.h"
#include "daemon/svc.h"
#include "fips/fips_policy.h"
#include "pki/pki_state.h"

enum kh_err svc_key_generate(struct svc *s, const char *name, enum kh_key_type type, struct kh_key_info *info,
			     struct kh_errbuf *e)
{
	int r = fips_policy_key_type(s->cfg, type, e);

	if (r == KH_OK)
		r = hsm_key_generate(s->hsm, name, type, info, e);
	if (r == KH_OK) {
		selftest_key_generated(s, info->name);
		info->fips_created = selftest_key_is_fips(s, info->name);
	}
	return r;
}

enum kh_err svc_key_destroy(struct svc *s, const char *name, struct kh_errbuf *e)
{
	int r = hsm_key_delete(s->hsm, name, e);

	if (r == KH_OK) {
		selftest_key_deleted(s, name);
		/* A later key of the same name must not inherit the grants. */
		if (s->grants != NULL)
			access_grants_forget_key(s->grants, name);
	}
	return r;
}

enum kh_err svc_h_generate_key(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
			       union proto_resp_body *resp, struct kh_errbuf *e)
{
	(void)who;
	return svc_key_generate(s, req->generate.name, req->generate.type, &resp->key, e);
}

enum kh_err svc_h_list_keys(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
			    union proto_resp_body *resp, struct kh_errbuf *e)
{
	struct kh_key_list *l = &resp->keys;
	size_t i, kept = 0;
	int r;

	(void)req;
	r = hsm_key_list(s->hsm, l, e);
	if (r != KH_OK)
		return r;
	for (i = 0; i < l->n; i++)
		l->keys[i].fips_created = selftest_key_is_fips(s, l->keys[i].name);
	if (who->roles & SVC_ROLE_ADMIN)
		return KH_OK;
	/* A signer sees the keys granted to it, nothing of the others. */
	for (i = 0; i < l->n; i++) {
		struct kh_errbuf ignore = { 0 };

		if (s->grants != NULL && access_grants_check_key(s->grants, who, l->keys[i].name, &ignore) == KH_OK)
			l->keys[kept++] = l->keys[i];
		else
			kh_key_info_clear(&l->keys[i]);
	}
	l->n = kept;
	return KH_OK;
}

enum kh_err svc_h_get_public_key(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
				 union proto_resp_body *resp, struct kh_errbuf *e)
{
	int r;

	(void)who;
	r = hsm_key_get(s->hsm, req->name.name, &resp->key, e);
	if (r == KH_OK)
		resp->key.fips_created = selftest_key_is_fips(s, resp->key.name);
	return r;
}

enum kh_err svc_h_delete_key(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
			     union proto_resp_body *resp, struct kh_errbuf *e)
{
	(void)who;
	(void)resp;
	/* Refused while a trustpoint uses the key (svc_pki.c). */
	return svc_pki_delete_key(s, req->name.name, e);
}

static void svc_sig_alg_name(enum kh_key_type t, enum kh_digest d, enum kh_padding p, char *out, size_t n)
{
	const char *dn = kh_digest_name(d);

	switch (t) {
	case KH_KEY_ED25519:
		kh_strlcpy(out, "ed25519", n);
		return;
	case KH_KEY_RSA1024:
	case KH_KEY_RSA2048:
	case KH_KEY_RSA3072:
	case KH_KEY_RSA4096:
		snprintf(out, n, p == KH_PAD_PSS ? "rsassa-pss-%s" : "rsa-pkcs1-%s", dn);
		return;
	default:
		snprintf(out, n, "ecdsa-%s", dn);
		return;
	}
}

static bool svc_key_is_rsa(enum kh_key_type t)
{
	return t == KH_KEY_RSA1024 || t == KH_KEY_RSA2048 || t == KH_KEY_RSA3072 || t == KH_KEY_RSA4096;
}

enum kh_err svc_h_sign(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
		       union proto_resp_body *resp, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct kh_sign_req *q = &req->sign;
	struct hsm_sign_op op;
	enum kh_key_type type = KH_KEY_UNSPECIFIED;
	EVP_PKEY *pkey = NULL;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;

	KH_TRY(hsm_key_meta(s->hsm, q->key, &type, &pkey, e));
	/* The grant's digests and paddings, now that the key's type is known
	 * (Ed25519 has neither: its grant alone decides). */
	if (type != KH_KEY_ED25519 && s->grants != NULL)
		KH_TRY(access_grants_check_sign(s->grants, who, q->key, svc_key_is_rsa(type), q->digest, q->padding, e));
	/* FIPS mode: the approved policy before anything else; every token
	 * signature is verified before it is released (DESIGN §8). */
	KH_TRY(fips_policy_sign(s->cfg, type, q->digest, q->padding, e));
	KH_TRY(fips_policy_public_key(s->cfg, pkey, e));
	memset(&op, 0, sizeof(op));
	op.key = q->key;
	op.padding = q->padding;
	if (type == KH_KEY_ED25519) {
		KH_ENSURE(!q->prehashed, kh_err_set(e, KH_E_INVALID_ARGUMENT,
						    "Ed25519 key '%s' signs the message itself; send the message, not a digest",
						    q->key));
		KH_ENSURE(q->digest == KH_DIGEST_DEFAULT,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT,
				     "Ed25519 key '%s' signs the message itself (PureEdDSA); do not choose a digest", q->key));
		KH_ENSURE(q->padding == KH_PAD_DEFAULT,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "padding applies to RSA keys only"));
		op.digest = KH_DIGEST_DEFAULT;
		op.in = q->data;
		op.in_len = q->len;
	} else {
		op.digest = q->digest == KH_DIGEST_DEFAULT ? KH_DIGEST_SHA256 : q->digest;
		KH_ENSURE(q->padding != KH_PAD_PSS || svc_key_is_rsa(type),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "PSS padding applies to RSA keys; '%s' is %s", q->key,
				     kh_key_type_name(type) ? kh_key_type_name(type) : "not RSA"));
		if (q->prehashed) {
			KH_ENSURE(q->len == kh_digest_len(op.digest),
				  kh_err_set(e, KH_E_INVALID_ARGUMENT, "a %s digest is %zu bytes; got %zu",
					     kh_digest_name(op.digest), kh_digest_len(op.digest), q->len));
			op.in = q->data;
			op.in_len = q->len;
		} else {
			KH_ENSURE(s->md[op.digest] != NULL,
				  kh_err_set(e, KH_E_INVALID_ARGUMENT, "digest %s is not available",
					     kh_digest_name(op.digest)));
			KH_ENSURE(EVP_Digest(q->data, q->len, digest, &dlen, s->md[op.digest], NULL) == 1,
				  kh_err_set(e, KH_E_INTERNAL, "hashing the message failed"));
			op.in = digest;
			op.in_len = dlen;
		}
	}
	KH_TRY(hsm_sign(s->hsm, &op, &resp->sign.sig, &resp->sign.sig_len, e));
	KH_TRY(selftest_release_signature(s, pkey, &op, resp->sign.sig, resp->sign.sig_len, e));
	svc_sig_alg_name(type, op.digest, op.padding, resp->sign.algorithm, sizeof(resp->sign.algorithm));
out:
	EVP_PKEY_free(pkey);
	return r;
}
