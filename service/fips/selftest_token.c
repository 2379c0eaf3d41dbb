/* selftest_token.c: the power-up tests of the token: its health (no error state,
 * the mechanisms the approved policy needs, with compatible key sizes),
 * its RNG, and pairwise consistency of session keys it generates. The
 * numeric PKCS#11 values are spelled out here because only hsm/ includes
 * pkcs11.h. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kh_log.h"
#include "fips/fips_int.h"

/* PKCS#11 3.0 §5.5 token flags. */
#define TOK_CKF_RNG 0x00000001UL
#define TOK_CKF_ERROR_STATE 0x01000000UL
/* PKCS#11 2.40 §5.10 mechanism flags. */
#define TOK_CKF_SIGN 0x00000800UL
#define TOK_CKF_GENERATE_KEY_PAIR 0x00010000UL

struct tok_mech {
	uint64_t id;
	const char *name;
	uint64_t flag;
	uint32_t bits;           /* a key size the policy needs it to cover */
};

/* What the approved policy and the pairwise tests need: RSA-2048 PKCS#1
 * v1.5 and ECDSA P-256 (PKCS#11 2.40 curr §2.1, §2.3). ulMin/MaxKeySize
 * are bits for both. */
static const struct tok_mech tok_required[] = {
	{ 0x00000000UL, "CKM_RSA_PKCS_KEY_PAIR_GEN", TOK_CKF_GENERATE_KEY_PAIR, 2048 },
	{ 0x00000001UL, "CKM_RSA_PKCS", TOK_CKF_SIGN, 2048 },
	{ 0x00001040UL, "CKM_EC_KEY_PAIR_GEN", TOK_CKF_GENERATE_KEY_PAIR, 256 },
	{ 0x00001041UL, "CKM_ECDSA", TOK_CKF_SIGN, 256 },
};
#define TOK_N_REQUIRED (sizeof(tok_required) / sizeof(tok_required[0]))

/* Index 0 corrupts the flags read (sets CKF_ERROR_STATE); 1..4 corrupt the
 * id of a required mechanism so the token lacks it. */
enum kh_err selftest_token_health(struct selftest_run *r, struct kh_errbuf *e)
{
	int rr = KH_OK;
	struct kh_capabilities caps = { 0 };
	uint64_t flags = 0;
	size_t i, j;

	if ((rr = hsm_token_flags(r->s->hsm, &flags, e)) != KH_OK)
		return rr;
	if (selftest_corrupting(r, 0))
		flags ^= TOK_CKF_ERROR_STATE;
	if (flags & TOK_CKF_ERROR_STATE)
		return kh_err_set(e, KH_E_INTERNAL, "the token reports CKF_ERROR_STATE: it failed its own self-tests");
	if ((rr = hsm_capabilities(r->s->hsm, &caps, e)) != KH_OK)
		return rr;
	for (i = 0; i < TOK_N_REQUIRED && rr == KH_OK; i++) {
		struct tok_mech want = tok_required[i];
		const struct kh_mechanism *m = NULL;

		if (selftest_corrupting(r, (int)i + 1))
			want.id ^= 0x80000000UL; /* CKM_VENDOR_DEFINED */
		for (j = 0; j < caps.n_mechs && m == NULL; j++)
			if (caps.mechs[j].id == want.id)
				m = &caps.mechs[j];
		if (m == NULL) {
			rr = kh_err_set(e, KH_E_INTERNAL, "the token does not offer %s (0x%llx), which FIPS mode needs",
					want.name, (unsigned long long)want.id);
		} else if ((m->flags & want.flag) != want.flag) {
			rr = kh_err_set(e, KH_E_INTERNAL, "the token offers %s without %s", want.name,
					want.flag == TOK_CKF_SIGN ? "CKF_SIGN" : "CKF_GENERATE_KEY_PAIR");
		} else if (m->max_key != 0 && (want.bits < m->min_key || want.bits > m->max_key)) {
			/* 0/0: the token gives no size information. */
			rr = kh_err_set(e, KH_E_INTERNAL,
					"the token's %s allows %u to %u bits; the FIPS policy needs %u", want.name,
					m->min_key, m->max_key, want.bits);
		}
	}
	if (rr == KH_OK)
		snprintf(r->summary, sizeof(r->summary),
			 "no CKF_ERROR_STATE; RSA-2048 and P-256 mechanisms present with compatible key sizes");
	kh_capabilities_clear(&caps);
	return rr;
}

/* Index 0 makes the second block repeat the first; 1 makes the first
 * constant. */
enum kh_err selftest_token_rng(struct selftest_run *r, struct kh_errbuf *e)
{
	uint8_t a[32], b[32];
	uint64_t flags = 0;
	size_t i;
	bool constant = true;
	int rr;

	if ((rr = hsm_token_flags(r->s->hsm, &flags, e)) != KH_OK)
		return rr;
	if (!(flags & TOK_CKF_RNG))
		return kh_err_set(e, KH_E_INTERNAL, "the token has no RNG (CKF_RNG is clear)");
	if ((rr = hsm_random(r->s->hsm, a, sizeof(a), e)) != KH_OK ||
	    (rr = hsm_random(r->s->hsm, b, sizeof(b), e)) != KH_OK)
		return rr;
	if (selftest_corrupting(r, 0))
		memcpy(b, a, sizeof(b));
	if (selftest_corrupting(r, 1))
		memset(a, a[0], sizeof(a));
	for (i = 1; i < sizeof(a); i++)
		constant = constant && a[i] == a[0];
	if (constant)
		rr = kh_err_set(e, KH_E_INTERNAL, "C_GenerateRandom returned a constant 32-byte block");
	else if (CRYPTO_memcmp(a, b, sizeof(a)) == 0)
		rr = kh_err_set(e, KH_E_INTERNAL, "two 32-byte C_GenerateRandom blocks are equal");
	else
		snprintf(r->summary, sizeof(r->summary), "two 32-byte blocks differ and are not constant");
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return rr;
}

/* The fixed message the pairwise tests sign. */
static const char tok_pairwise_msg[] = "keyhold power-up pairwise consistency test";

/* One session key of type t: sign in the token, verify with OpenSSL, a
 * tampered digest must fail, destroy. corrupt_sig / keep_twin: fault
 * injection. */
static enum kh_err tok_pairwise_one(struct selftest_run *run, enum kh_key_type t, bool corrupt_sig, bool keep_twin,
				    struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_session_key *k = NULL;
	EVP_PKEY *pkey = NULL;
	uint8_t *sig = NULL, digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	size_t sig_len = 0, spki_len = 0;
	const uint8_t *spki, *p;
	struct kh_errbuf why = { 0 };
	EVP_MD *md = NULL;
	const char *tn = kh_key_type_name(t);

	md = EVP_MD_fetch(run->s->libctx, "SHA256", NULL);
	KH_ENSURE(md != NULL && EVP_Digest(tok_pairwise_msg, sizeof(tok_pairwise_msg) - 1, digest, &dlen, md, NULL) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "SHA-256 failed"));
	KH_TRY(hsm_session_key_generate(run->s->hsm, t, &k, e));
	spki = hsm_session_key_spki(k, &spki_len);
	p = spki;
	pkey = d2i_PUBKEY_ex(NULL, &p, (long)spki_len, run->s->libctx, NULL);
	KH_ENSURE(pkey != NULL, kh_err_set(e, KH_E_INTERNAL, "%s session key: the token's public key does not parse", tn));
	KH_TRY(hsm_session_key_sign(run->s->hsm, k, KH_DIGEST_SHA256, digest, dlen, &sig, &sig_len, e));
	if (corrupt_sig)
		sig[sig_len - 1] ^= 0x01;
	if (selftest_verify(run->s->libctx, pkey, KH_DIGEST_SHA256, KH_PAD_PKCS1, digest, dlen, sig, sig_len, &why) !=
	    KH_OK) {
		r = kh_err_set(e, KH_E_INTERNAL, "%s session key: the token's signature does not verify: %s", tn,
				why.msg);
		goto out;
	}
	if (!keep_twin)
		digest[0] ^= 0x01;
	kh_err_clear(&why);
	KH_ENSURE(selftest_verify(run->s->libctx, pkey, KH_DIGEST_SHA256, KH_PAD_PKCS1, digest, dlen, sig, sig_len,
				  &why) != KH_OK,
		  kh_err_set(e, KH_E_INTERNAL, "%s session key: the signature verified over a tampered message", tn));
out:
	free(sig);
	EVP_PKEY_free(pkey);
	EVP_MD_free(md);
	hsm_session_key_destroy(run->s->hsm, k);
	return r;
}

/* Index 0/1 flip a bit of the P-256/RSA-2048 signature; 2/3 leave the
 * tampered-message twin untampered. */
enum kh_err selftest_token_pairwise(struct selftest_run *r, struct kh_errbuf *e)
{
	int rr;

	if ((rr = tok_pairwise_one(r, KH_KEY_P256, selftest_corrupting(r, 0), selftest_corrupting(r, 2), e)) !=
		    KH_OK ||
	    (rr = tok_pairwise_one(r, KH_KEY_RSA2048, selftest_corrupting(r, 1), selftest_corrupting(r, 3), e)) !=
		    KH_OK)
		return rr;
	snprintf(r->summary, sizeof(r->summary),
		 "session P-256 and RSA-2048 keys sign in the token, verify in OpenSSL; tampered messages fail");
	return KH_OK;
}
