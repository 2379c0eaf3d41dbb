/* selftest_critical.c: the critical-functions test: the approved-algorithm policy
 * that every RPC consults must refuse MD5, SHA-1 signing, RSA < 2048, P-192
 * and the other non-approved choices, and still allow the approved ones
 * (positive controls, so a policy that refuses everything fails too). */
#include <string.h>

#include <openssl/obj_mac.h>

#include "fips/fips_int.h"
#include "fips/fips_policy.h"

enum crit_kind { CRIT_SIGN, CRIT_KEY_TYPE, CRIT_RSA_BITS, CRIT_CURVE, CRIT_CERT_DIGEST };

struct crit_case {
	const char *what;
	enum crit_kind kind;
	enum kh_key_type type;
	enum kh_digest digest;
	int value;               /* bits or curve NID */
	bool allowed;            /* the expected decision */
};

static const struct crit_case crit_cases[] = {
	{ "RSA-2048 signature with MD5", CRIT_SIGN, KH_KEY_RSA2048, KH_DIGEST_MD5, 0, false },
	{ "ECDSA P-256 signature with SHA-1", CRIT_SIGN, KH_KEY_P256, KH_DIGEST_SHA1, 0, false },
	{ "RSA-1024 key", CRIT_KEY_TYPE, KH_KEY_RSA1024, KH_DIGEST_DEFAULT, 0, false },
	{ "RSA modulus of 1536 bits", CRIT_RSA_BITS, KH_KEY_UNSPECIFIED, KH_DIGEST_DEFAULT, 1536, false },
	{ "curve P-192", CRIT_CURVE, KH_KEY_UNSPECIFIED, KH_DIGEST_DEFAULT, NID_X9_62_prime192v1, false },
	{ "curve secp256k1", CRIT_KEY_TYPE, KH_KEY_SECP256K1, KH_DIGEST_DEFAULT, 0, false },
	{ "Ed25519 without fips_allow_eddsa", CRIT_KEY_TYPE, KH_KEY_ED25519, KH_DIGEST_DEFAULT, 0, false },
	{ "certificate signed with SHA-1", CRIT_CERT_DIGEST, KH_KEY_RSA2048, KH_DIGEST_SHA1, 0, false },
	/* Positive controls. */
	{ "ECDSA P-256 signature with SHA-256", CRIT_SIGN, KH_KEY_P256, KH_DIGEST_SHA256, 0, true },
	{ "RSA-3072 signature with SHA-384", CRIT_SIGN, KH_KEY_RSA3072, KH_DIGEST_SHA384, 0, true },
	{ "curve P-384", CRIT_CURVE, KH_KEY_UNSPECIFIED, KH_DIGEST_DEFAULT, NID_secp384r1, true },
	{ "certificate signed with SHA-512", CRIT_CERT_DIGEST, KH_KEY_P521, KH_DIGEST_SHA512, 0, true },
};

enum kh_err selftest_critical(struct selftest_run *r, struct kh_errbuf *e)
{
	struct svc_config cfg;
	size_t i;

	/* The policy as FIPS mode applies it, whatever this service's own
	 * fips_allow_eddsa says. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.fips_mode = SVC_FIPS_ALIGNED;
	cfg.fips_allow_eddsa = false;
	for (i = 0; i < sizeof(crit_cases) / sizeof(crit_cases[0]); i++) {
		const struct crit_case *c = &crit_cases[i];
		struct kh_errbuf why = { 0 };
		bool want = c->allowed;
		int rr = KH_OK;

		if (selftest_corrupting(r, (int)i))
			want = !want;
		switch (c->kind) {
		case CRIT_SIGN: rr = fips_policy_sign(&cfg, c->type, c->digest, KH_PAD_DEFAULT, &why); break;
		case CRIT_KEY_TYPE: rr = fips_policy_key_type(&cfg, c->type, &why); break;
		case CRIT_RSA_BITS: rr = fips_policy_rsa_bits(&cfg, (unsigned)c->value, &why); break;
		case CRIT_CURVE: rr = fips_policy_curve(&cfg, c->value, &why); break;
		case CRIT_CERT_DIGEST: rr = fips_policy_cert_digest(&cfg, c->type, c->digest, "certificate", &why); break;
		}
		if (want && rr != KH_OK)
			return kh_err_set(e, KH_E_INTERNAL, "the FIPS policy refuses %s, which is approved: %s", c->what,
					  why.msg);
		if (!want && rr == KH_OK)
			return kh_err_set(e, KH_E_INTERNAL, "the FIPS policy allows %s", c->what);
		/* A refusal must be INVALID_ARGUMENT and name the rule. */
		if (!want && (rr != KH_E_INVALID_ARGUMENT || strstr(why.msg, "FIPS") == NULL))
			return kh_err_set(e, KH_E_INTERNAL, "the FIPS policy refuses %s without naming the rule", c->what);
	}
	snprintf(r->summary, sizeof(r->summary), "policy refuses MD5, SHA-1 signing, RSA < 2048, P-192, secp256k1, "
						 "Ed25519; allows the approved set");
	return KH_OK;
}
