/* selftest_conditional.c: the conditional self-tests of FIPS mode (FIPS 140-2
 * §4.9.2): pairwise consistency after every key generation, the
 * continuous RNG test on every random block, and verify-before-release of
 * every token signature. A failure enters the ERROR state. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kh_log.h"
#include "fips/fips_int.h"

static const char *cond_md_name(enum kh_digest d)
{
	switch (d) {
	case KH_DIGEST_DEFAULT:
	case KH_DIGEST_SHA256: return "SHA256";
	case KH_DIGEST_SHA384: return "SHA384";
	case KH_DIGEST_SHA512: return "SHA512";
	case KH_DIGEST_SHA1: return "SHA1";
	case KH_DIGEST_MD5: return "MD5";
	case KH_DIGEST_SHA224: return "SHA224";
	}
	return NULL;
}

enum kh_err selftest_verify(OSSL_LIB_CTX *libctx, EVP_PKEY *pkey, enum kh_digest d, enum kh_padding p,
			    const uint8_t *in, size_t in_len, const uint8_t *sig, size_t sig_len, struct kh_errbuf *e)
{
	int r = KH_OK;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD *md = NULL;
	int id, ok;
	char err[128];

	KH_ENSURE(pkey != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "no public key to verify with"));
	id = EVP_PKEY_get_base_id(pkey);
	if (id == EVP_PKEY_ED25519) {
		/* PureEdDSA over the message (RFC 8032 §5.1). */
		mctx = EVP_MD_CTX_new();
		KH_ENSURE(mctx != NULL && EVP_DigestVerifyInit_ex(mctx, NULL, NULL, libctx, NULL, pkey, NULL) == 1,
			  kh_err_set(e, KH_E_INTERNAL, "cannot verify Ed25519: %s", selftest_ossl_err(err, sizeof(err))));
		ok = EVP_DigestVerify(mctx, sig, sig_len, in, in_len);
	} else {
		md = EVP_MD_fetch(libctx, cond_md_name(d), NULL);
		pctx = EVP_PKEY_CTX_new_from_pkey(libctx, pkey, NULL);
		KH_ENSURE(md != NULL && pctx != NULL && EVP_PKEY_verify_init(pctx) == 1 &&
				  EVP_PKEY_CTX_set_signature_md(pctx, md) == 1,
			  kh_err_set(e, KH_E_INTERNAL, "cannot set up verification: %s", selftest_ossl_err(err, sizeof(err))));
		if (id == EVP_PKEY_RSA) {
			if (p == KH_PAD_PSS) {
				/* MGF1 with the same hash, salt = hash length (DESIGN §8). */
				KH_ENSURE(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
						  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1 &&
						  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1,
					  kh_err_set(e, KH_E_INTERNAL, "cannot set PSS parameters"));
			} else {
				KH_ENSURE(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1,
					  kh_err_set(e, KH_E_INTERNAL, "cannot set PKCS#1 v1.5 padding"));
			}
		}
		ok = EVP_PKEY_verify(pctx, sig, sig_len, in, in_len);
	}
	ERR_clear_error();
	KH_ENSURE(ok == 1, kh_err_set(e, KH_E_INTERNAL, "the signature does not verify with the key's public half"));
out:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	EVP_MD_free(md);
	return r;
}

/* ---- continuous RNG test ---- */

enum kh_err selftest_rng_check(void *arg, const uint8_t *block, size_t len, struct kh_errbuf *e)
{
	struct svc_fips *f = arg;
	size_t off, n;
	bool repeat = false;

	atomic_fetch_add(&f->rng_run, 1);
	/* FIPS 140-2 §4.9.2: every block is compared with the one generated
	 * before it. Here a block is one C_GenerateRandom output (its first
	 * SELFTEST_RNG_PREV bytes, compared with the previous output's), and
	 * inside an output each 128-bit block with the one before it. Outputs
	 * shorter than 128 bits are not compared (keyhold draws 16-byte
	 * CKA_IDs and 32-byte test blocks). */
	pthread_mutex_lock(&f->lock);
	n = len < SELFTEST_RNG_PREV ? len : SELFTEST_RNG_PREV;
	if (n >= SELFTEST_RNG_BLOCK && f->rng_prev_len >= SELFTEST_RNG_BLOCK) {
		size_t m = n < f->rng_prev_len ? n : f->rng_prev_len;

		repeat = CRYPTO_memcmp(f->rng_prev, block, m) == 0;
	}
	for (off = SELFTEST_RNG_BLOCK; len >= 2 * SELFTEST_RNG_BLOCK && len - off >= SELFTEST_RNG_BLOCK;
	     off += SELFTEST_RNG_BLOCK)
		repeat = repeat || CRYPTO_memcmp(block + off - SELFTEST_RNG_BLOCK, block + off, SELFTEST_RNG_BLOCK) == 0;
	if (n >= SELFTEST_RNG_BLOCK) {
		memcpy(f->rng_prev, block, n);
		f->rng_prev_len = n;
	}
	pthread_mutex_unlock(&f->lock);
	if (!repeat)
		return KH_OK;
	atomic_fetch_add(&f->rng_failed, 1);
	selftest_enter_error(f->s, "conditional-rng",
			     "continuous RNG test: the token's C_GenerateRandom repeated a 128-bit block");
	return kh_err_set(e, KH_E_INTERNAL,
			  "continuous RNG test failed: the token returned a repeated random block; keyholdd entered the ERROR state");
}

/* ---- pairwise consistency after key generation ---- */

static const char cond_pairwise_msg[] = "keyhold conditional pairwise consistency test";

enum kh_err selftest_keygen_check(void *arg, struct hsm *h, const struct kh_key_info *k, struct kh_errbuf *e)
{
	struct svc_fips *f = arg;
	struct svc *s = f->s;
	int r = KH_OK;
	EVP_PKEY *pkey = NULL;
	EVP_MD *md = NULL;
	struct hsm_sign_op op;
	uint8_t digest[EVP_MAX_MD_SIZE], *sig = NULL;
	unsigned dlen = 0;
	size_t sig_len = 0;
	const uint8_t *p = k->spki;
	struct kh_errbuf why = { 0 };

	atomic_fetch_add(&f->pw_run, 1);
	memset(&op, 0, sizeof(op));
	op.key = k->name;
	if (k->type == KH_KEY_ED25519) {
		op.digest = KH_DIGEST_DEFAULT;
		op.in = (const uint8_t *)cond_pairwise_msg;
		op.in_len = sizeof(cond_pairwise_msg) - 1;
	} else {
		md = EVP_MD_fetch(s->libctx, "SHA256", NULL);
		KH_ENSURE(md != NULL &&
				  EVP_Digest(cond_pairwise_msg, sizeof(cond_pairwise_msg) - 1, digest, &dlen, md, NULL) == 1,
			  kh_err_set(&why, KH_E_INTERNAL, "SHA-256 failed"));
		op.digest = KH_DIGEST_SHA256;
		op.in = digest;
		op.in_len = dlen;
	}
	pkey = d2i_PUBKEY_ex(NULL, &p, (long)k->spki_len, s->libctx, NULL);
	KH_ENSURE(pkey != NULL, kh_err_set(&why, KH_E_INTERNAL, "the token's public key does not parse"));
	KH_TRY(hsm_sign(h, &op, &sig, &sig_len, &why));
	KH_TRY(selftest_verify(s->libctx, pkey, op.digest, KH_PAD_PKCS1, op.in, op.in_len, sig, sig_len, &why));
out:
	if (r != KH_OK) {
		char detail[KH_ERR_MSG_MAX + 2 * KH_NAME_MAX + 128];

		atomic_fetch_add(&f->pw_failed, 1);
		snprintf(detail, sizeof(detail), "pairwise consistency test of new key '%s': %s", k->name, why.msg);
		selftest_enter_error(s, "conditional-pairwise", detail);
		r = kh_err_set(e, KH_E_INTERNAL,
			       "the pairwise consistency test of new key '%s' failed (%s); both halves were destroyed and keyholdd entered the ERROR state",
			       k->name, why.msg);
	}
	free(sig);
	EVP_PKEY_free(pkey);
	EVP_MD_free(md);
	return r;
}

/* ---- verify before release ---- */

enum kh_err selftest_release_signature(struct svc *s, EVP_PKEY *pkey, const struct hsm_sign_op *op,
				       const uint8_t *sig, size_t sig_len, struct kh_errbuf *e)
{
	struct svc_fips *f = s->fips;
	struct kh_errbuf why = { 0 };
	char detail[KH_ERR_MSG_MAX + 2 * KH_NAME_MAX + 128];

	if (!selftest_fips_on(s))
		return KH_OK;
	if (pkey == NULL)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "key '%s' has no public key in the token, so keyholdd cannot verify its signature before release (FIPS mode)",
				  op->key);
	atomic_fetch_add(&f->ver_run, 1);
	if (selftest_verify(s->libctx, pkey, op->digest, op->padding, op->in, op->in_len, sig, sig_len, &why) == KH_OK)
		return KH_OK;
	atomic_fetch_add(&f->ver_failed, 1);
	snprintf(detail, sizeof(detail), "the token's signature with key '%s' did not verify before release: %s", op->key,
		 why.msg);
	selftest_enter_error(s, "conditional-verify", detail);
	return kh_err_set(e, KH_E_INTERNAL,
			  "the token's signature with key '%s' failed verification before release; it was not released and keyholdd entered the ERROR state",
			  op->key);
}
