/* h_keys.c: the key RPCs: GenerateKey, ListKeys, GetPublicKey, DeleteKey
 * and Sign (hashing here, the private-key operation in the token). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips.h"
#include "core/svc.h"
#include "fips/fips_policy.h"
#include "keys/key_life.h"
#include "pki/pki_state.h"
#include "rpc/rpc.h"
#include "access/access.h"

/* KeyInfo from the token's description of a key; the message borrows k,
 * which lives as long as the call (rpc_defer). */
static Keyhold__V1__KeyInfo *rpc_key_info(struct rpc_call *c, const struct kh_key_info *k)
{
	Keyhold__V1__KeyInfo *m = rpc_msg(c, &keyhold__v1__key_info__descriptor);

	if (m == NULL)
		return NULL;
	m->name = rpc_str(k->name);
	m->type = (Keyhold__V1__KeyType)k->type;
	m->bits = k->bits;
	m->id.data = (uint8_t *)(uintptr_t)k->id;
	m->id.len = k->id_len;
	m->spki.data = k->spki;
	m->spki.len = k->spki_len;
	m->fips_created = k->fips_created;
	return m;
}

static void rpc_key_info_free(void *p)
{
	kh_key_info_clear(p);
	free(p);
}

/* A kh_key_info that lives until the answer is sent. */
static struct kh_key_info *rpc_key_info_new(struct rpc_call *c)
{
	struct kh_key_info *k = calloc(1, sizeof(*k));

	if (k == NULL)
		c->oom = true;
	else
		rpc_defer(c, rpc_key_info_free, k);
	return c->oom ? NULL : k;
}

enum kh_err svc_h_generate_key(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__GenerateKeyRequest *q = (const void *)c->req;
	Keyhold__V1__GenerateKeyResponse *m = rpc_msg(c, &keyhold__v1__generate_key_response__descriptor);
	struct kh_key_info *k = rpc_key_info_new(c);
	int r = KH_OK;

	KH_ENSURE(m != NULL && k != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(svc_key_generate(c->s, q->name, (enum kh_key_type)q->type, k, e));
	m->key = rpc_key_info(c, k);
	c->resp = &m->base;
out:
	return r;
}

static void rpc_key_list_free(void *p)
{
	kh_key_list_clear(p);
	free(p);
}

enum kh_err svc_h_list_keys(struct rpc_call *c, struct kh_errbuf *e)
{
	Keyhold__V1__ListKeysResponse *m = rpc_msg(c, &keyhold__v1__list_keys_response__descriptor);
	struct kh_key_list *l = calloc(1, sizeof(*l));
	size_t i;
	int r = KH_OK;

	if (l != NULL)
		rpc_defer(c, rpc_key_list_free, l);
	KH_ENSURE(m != NULL && l != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(hsm_key_list(c->s->hsm, l, e));
	m->keys = rpc_array(c, l->n, sizeof(*m->keys));
	KH_ENSURE(m->keys != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < l->n; i++) {
		struct kh_errbuf ignore = { 0 };

		/* A signer sees the keys granted to it, nothing of the others. */
		if (!(c->who->roles & SVC_ROLE_ADMIN) &&
		    (c->s->grants == NULL ||
		     access_grants_check_key(c->s->grants, c->who, l->keys[i].name, &ignore) != KH_OK))
			continue;
		l->keys[i].fips_created = selftest_key_is_fips(c->s, l->keys[i].name);
		m->keys[m->n_keys] = rpc_key_info(c, &l->keys[i]);
		KH_ENSURE(m->keys[m->n_keys] != NULL, KH_E_RESOURCE_EXHAUSTED);
		m->n_keys++;
	}
	c->resp = &m->base;
out:
	return r;
}

enum kh_err svc_h_get_public_key(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__GetPublicKeyRequest *q = (const void *)c->req;
	Keyhold__V1__GetPublicKeyResponse *m = rpc_msg(c, &keyhold__v1__get_public_key_response__descriptor);
	struct kh_key_info *k = rpc_key_info_new(c);
	int r = KH_OK;

	KH_ENSURE(m != NULL && k != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(hsm_key_get(c->s->hsm, q->name, k, e));
	k->fips_created = selftest_key_is_fips(c->s, k->name);
	m->key = rpc_key_info(c, k);
	c->resp = &m->base;
out:
	return r;
}

enum kh_err svc_h_delete_key(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__DeleteKeyRequest *q = (const void *)c->req;

	/* Refused while a trustpoint uses the key (pki_state.c). */
	return svc_pki_delete_key(c->s, q->name, e);
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

static enum kh_err svc_h_sign_once(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__SignRequest *q = (const void *)c->req;
	Keyhold__V1__SignResponse *m = rpc_msg(c, &keyhold__v1__sign_response__descriptor);
	struct svc *s = c->s;
	/* Validated (proto/validate.c): one of the two is set, in range. */
	bool prehashed = q->input_case == KEYHOLD__V1__SIGN_REQUEST__INPUT_PREHASHED;
	const ProtobufCBinaryData *in = prehashed ? &q->prehashed : &q->message;
	enum kh_digest qdigest = (enum kh_digest)q->digest;
	enum kh_padding qpadding = (enum kh_padding)q->padding;
	int r = KH_OK;
	struct hsm_sign_op op;
	enum kh_key_type type = KH_KEY_UNSPECIFIED;
	EVP_PKEY *pkey = NULL;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	char *alg;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(hsm_key_meta(s->hsm, q->key, &type, &pkey, e));
	/* The grant's digests and paddings, now that the key's type is known
	 * (Ed25519 has neither: its grant alone decides). */
	if (type != KH_KEY_ED25519 && s->grants != NULL)
		KH_TRY(access_grants_check_sign(s->grants, c->who, q->key, svc_key_is_rsa(type), qdigest, qpadding, e));
	/* FIPS mode: the approved policy before anything else; every token
	 * signature is verified before it is released (DESIGN §8). */
	KH_TRY(fips_policy_sign(s->cfg, type, qdigest, qpadding, e));
	KH_TRY(fips_policy_public_key(s->cfg, pkey, e));
	memset(&op, 0, sizeof(op));
	op.key = q->key;
	op.padding = qpadding;
	if (type == KH_KEY_ED25519) {
		KH_ENSURE(!prehashed, kh_err_set(e, KH_E_INVALID_ARGUMENT,
						 "Ed25519 key '%s' signs the message itself; send the message, not a digest",
						 q->key));
		KH_ENSURE(qdigest == KH_DIGEST_DEFAULT,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT,
				     "Ed25519 key '%s' signs the message itself (PureEdDSA); do not choose a digest", q->key));
		KH_ENSURE(qpadding == KH_PAD_DEFAULT,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "padding applies to RSA keys only"));
		op.digest = KH_DIGEST_DEFAULT;
		op.in = in->data;
		op.in_len = in->len;
	} else {
		op.digest = qdigest == KH_DIGEST_DEFAULT ? KH_DIGEST_SHA256 : qdigest;
		KH_ENSURE(qpadding != KH_PAD_PSS || svc_key_is_rsa(type),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "PSS padding applies to RSA keys; '%s' is %s", q->key,
				     kh_key_type_name(type) ? kh_key_type_name(type) : "not RSA"));
		if (prehashed) {
			KH_ENSURE(in->len == kh_digest_len(op.digest),
				  kh_err_set(e, KH_E_INVALID_ARGUMENT, "a %s digest is %zu bytes; got %zu",
					     kh_digest_name(op.digest), kh_digest_len(op.digest), in->len));
			op.in = in->data;
			op.in_len = in->len;
		} else {
			KH_ENSURE(s->md[op.digest] != NULL,
				  kh_err_set(e, KH_E_INVALID_ARGUMENT, "digest %s is not available",
					     kh_digest_name(op.digest)));
			/* An empty message: protobuf-c leaves data NULL. */
			KH_ENSURE(EVP_Digest(in->data != NULL ? in->data : (const uint8_t *)"", in->len, digest, &dlen,
					     s->md[op.digest], NULL) == 1,
				  kh_err_set(e, KH_E_INTERNAL, "hashing the message failed"));
			op.in = digest;
			op.in_len = dlen;
		}
	}
	if (op.in == NULL)
		op.in = (const uint8_t *)"";
	KH_TRY(hsm_sign(s->hsm, &op, &sig, &sig_len, e));
	rpc_defer(c, free, sig);
	KH_TRY(selftest_release_signature(s, pkey, &op, sig, sig_len, e));
	alg = rpc_alloc(c, 64);
	KH_ENSURE(alg != NULL, KH_E_RESOURCE_EXHAUSTED);
	svc_sig_alg_name(type, op.digest, op.padding, alg, 64);
	m->signature.data = sig;
	m->signature.len = sig_len;
	m->algorithm = alg;
	c->resp = &m->base;
out:
	EVP_PKEY_free(pkey);
	return r;
}

enum kh_err svc_h_sign(struct rpc_call *c, struct kh_errbuf *e)
{
	int r = svc_h_sign_once(c, e);

	/* The key was deleted and generated again under its name by another
	 * node on the same token since this node cached it (hsm_sign): once
	 * more, with its type, grants, policy and public key looked up anew. */
	if (r == KH_E_ABORTED) {
		kh_err_clear(e);
		r = svc_h_sign_once(c, e);
	}
	return r;
}
