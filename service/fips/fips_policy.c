/* fips_policy.c: the approved-algorithm policy of FIPS mode (DESIGN §8): RSA
 * 2048/3072/4096 with e = 65537, ECDSA on P-256/P-384/P-521, SHA-256/384/512,
 * Ed25519 only with fips_allow_eddsa (FIPS 186-5); everything else refused
 * with INVALID_ARGUMENT naming the rule. */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>

#include "fips/fips_policy.h"

#define POLICY_DIGESTS "use sha256, sha384 or sha512"

bool fips_policy_fips(const struct svc_config *cfg)
{
	return cfg->fips_mode != SVC_FIPS_OFF;
}

enum kh_err fips_policy_rsa_bits(const struct svc_config *cfg, unsigned bits, struct kh_errbuf *e)
{
	if (!fips_policy_fips(cfg) || bits == 2048 || bits == 3072 || bits == 4096)
		return KH_OK;
	return kh_err_set(e, KH_E_INVALID_ARGUMENT,
			  "RSA modulus %u is not allowed in FIPS mode; use 2048, 3072 or 4096", bits);
}

static const char *fips_policy_curve_name(int nid)
{
	const char *n = OBJ_nid2sn(nid);

	return n != NULL ? n : "unknown";
}

enum kh_err fips_policy_curve(const struct svc_config *cfg, int nid, struct kh_errbuf *e)
{
	/* FIPS 186-4 §D.1.2 prime curves keyhold offers; P-192 and P-224 are
	 * below keyhold's 128-bit floor, secp256k1 and Brainpool are not NIST
	 * curves. */
	if (!fips_policy_fips(cfg) || nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1)
		return KH_OK;
	return kh_err_set(e, KH_E_INVALID_ARGUMENT,
			  "curve %s is not allowed in FIPS mode; use P-256, P-384 or P-521 (p256, p384, p521)",
			  fips_policy_curve_name(nid));
}

static enum kh_err fips_policy_eddsa(const struct svc_config *cfg, struct kh_errbuf *e)
{
	if (!fips_policy_fips(cfg) || cfg->fips_allow_eddsa)
		return KH_OK;
	return kh_err_set(e, KH_E_INVALID_ARGUMENT,
			  "Ed25519 is not allowed in FIPS mode unless fips_allow_eddsa = yes (EdDSA is approved by FIPS 186-5, not FIPS 186-4)");
}

enum kh_err fips_policy_key_type(const struct svc_config *cfg, enum kh_key_type t, struct kh_errbuf *e)
{
	switch (t) {
	case KH_KEY_RSA1024: return fips_policy_rsa_bits(cfg, 1024, e);
	case KH_KEY_RSA2048: return fips_policy_rsa_bits(cfg, 2048, e);
	case KH_KEY_RSA3072: return fips_policy_rsa_bits(cfg, 3072, e);
	case KH_KEY_RSA4096: return fips_policy_rsa_bits(cfg, 4096, e);
	case KH_KEY_P256: return fips_policy_curve(cfg, NID_X9_62_prime256v1, e);
	case KH_KEY_P384: return fips_policy_curve(cfg, NID_secp384r1, e);
	case KH_KEY_P521: return fips_policy_curve(cfg, NID_secp521r1, e);
	case KH_KEY_SECP256K1: return fips_policy_curve(cfg, NID_secp256k1, e);
	case KH_KEY_ED25519: return fips_policy_eddsa(cfg, e);
	case KH_KEY_UNSPECIFIED:
		break;
	}
	if (!fips_policy_fips(cfg))
		return KH_OK;
	return kh_err_set(e, KH_E_INVALID_ARGUMENT,
			  "a key of unknown type is not allowed in FIPS mode; use rsa2048, rsa3072, rsa4096, p256, p384 or p521");
}

enum kh_err fips_policy_public_key(const struct svc_config *cfg, EVP_PKEY *pkey, struct kh_errbuf *e)
{
	int r = KH_OK;
	BIGNUM *pe = NULL;
	char group[64];
	size_t glen = 0;

	if (!fips_policy_fips(cfg) || pkey == NULL)
		return KH_OK;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		KH_TRY(fips_policy_rsa_bits(cfg, (unsigned)EVP_PKEY_get_bits(pkey), e));
		KH_ENSURE(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &pe) == 1 && BN_is_word(pe, 65537),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT,
				     "an RSA public exponent other than 65537 is not allowed in FIPS mode"));
		break;
	case EVP_PKEY_EC:
		KH_ENSURE(EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
							 &glen) == 1,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT,
				     "an EC key with explicit or unnamed parameters is not allowed in FIPS mode"));
		r = fips_policy_curve(cfg, OBJ_sn2nid(group) != NID_undef ? OBJ_sn2nid(group) : OBJ_ln2nid(group), e);
		break;
	case EVP_PKEY_ED25519:
		r = fips_policy_eddsa(cfg, e);
		break;
	default:
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "key algorithm %s is not allowed in FIPS mode",
			       OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
		break;
	}
out:
	BN_free(pe);
	return r;
}

/* The digest rule shared by signatures, CSRs and certificates. */
static enum kh_err fips_policy_digest(const struct svc_config *cfg, enum kh_digest d, const char *what,
				     struct kh_errbuf *e)
{
	if (!fips_policy_fips(cfg))
		return KH_OK;
	switch (d) {
	case KH_DIGEST_DEFAULT:
	case KH_DIGEST_SHA256:
	case KH_DIGEST_SHA384:
	case KH_DIGEST_SHA512:
		return KH_OK;
	case KH_DIGEST_SHA1:
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "SHA-1 %s are not allowed in FIPS mode (SP 800-131A); " POLICY_DIGESTS, what);
	case KH_DIGEST_MD5:
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "MD5 is not allowed in FIPS mode; " POLICY_DIGESTS);
	case KH_DIGEST_SHA224:
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "SHA-224 is outside keyhold's FIPS policy (SHA-256/384/512); " POLICY_DIGESTS);
	}
	return kh_err_set(e, KH_E_INVALID_ARGUMENT, "unknown digest; " POLICY_DIGESTS);
}

enum kh_err fips_policy_sign(const struct svc_config *cfg, enum kh_key_type t, enum kh_digest d,
			    enum kh_padding p, struct kh_errbuf *e)
{
	int r = KH_OK;

	KH_TRY(fips_policy_key_type(cfg, t, e));
	if (t == KH_KEY_ED25519)
		goto out; /* PureEdDSA: no digest, no padding (checked by the handler) */
	KH_TRY(fips_policy_digest(cfg, d, "signatures", e));
	/* PKCS#1 v1.5 or PSS with MGF1 of the same hash and salt = hash length
	 * (hsm/sign.c builds exactly that); nothing else exists on the wire. */
	KH_ENSURE(p == KH_PAD_DEFAULT || p == KH_PAD_PKCS1 || p == KH_PAD_PSS,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "unknown RSA padding"));
out:
	return r;
}

enum kh_err fips_policy_cert_digest(const struct svc_config *cfg, enum kh_key_type t, enum kh_digest d,
				   const char *what, struct kh_errbuf *e)
{
	char plural[48];

	if (t == KH_KEY_ED25519 && d == KH_DIGEST_DEFAULT)
		return fips_policy_eddsa(cfg, e);
	snprintf(plural, sizeof(plural), "signatures on %ss", what != NULL ? what : "certificate");
	return fips_policy_digest(cfg, d, plural, e);
}
