/* probe.c: what the token really does where PKCS#11 cannot say: library
 * quirks (from C_GetInfo) and which EC curves actually work (a test key per
 * curve), so capabilities and key generation name the token's real limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "hsm_int.h"
#include "kh_log.h"
#include "kh_util.h"

void hsm_quirks_detect(struct hsm *h)
{
	CK_INFO info;
	char manuf[33], desc[33];

	h->quirks = 0;
	if (h->f->C_GetInfo(&info) != CKR_OK)
		return;
	kh_copy_padded(manuf, sizeof(manuf), info.manufacturerID, sizeof(info.manufacturerID));
	kh_copy_padded(desc, sizeof(desc), info.libraryDescription, sizeof(info.libraryDescription));
	log_info("PKCS#11 library: %s (%s %u.%u)", desc, manuf, info.libraryVersion.major,
		 info.libraryVersion.minor);
	/* tpm2-pkcs11 (every release to date, 1.9 included). */
	if (strcmp(manuf, "tpm2-software.github.io") == 0)
		h->quirks |= HSM_QUIRK_PUB_USAGE_DERIVED | HSM_QUIRK_TOKEN_OBJECTS_ONLY |
			     HSM_QUIRK_RSA_SIGN_NEEDS_DECRYPT;
}

/* OpenSSL verifies the test key's signature over dgst with the SPKI the
 * token gave for it: a key whose public half is unusable fails here too. */
static enum kh_err hsm_probe_verify(const struct hsm_session_key *k, const uint8_t *dgst, size_t dlen,
				    const uint8_t *sig, size_t sig_len, struct kh_errbuf *e)
{
	int r = KH_OK;
	const uint8_t *spki, *p;
	size_t spki_len;
	EVP_PKEY *pk = NULL;
	EVP_PKEY_CTX *ctx = NULL;

	spki = hsm_session_key_spki(k, &spki_len);
	p = spki;
	pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
	KH_ENSURE(pk != NULL, kh_err_set(e, KH_E_INTERNAL, "its public key does not parse"));
	ctx = EVP_PKEY_CTX_new(pk, NULL);
	KH_ENSURE(ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
			  EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "OpenSSL cannot verify with its public key"));
	KH_ENSURE(EVP_PKEY_verify(ctx, sig, sig_len, dgst, dlen) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "its signature does not verify"));
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return r;
}

/* One curve: generate, sign SHA-256("keyhold curve probe"), verify,
 * destroy. Returns KH_OK when usable;
 * KH_E_UNAVAILABLE when the token could not be asked (not a verdict). */
static enum kh_err hsm_probe_one(struct hsm *h, enum kh_key_type t, struct kh_errbuf *e)
{
	static const char msg[] = "keyhold curve probe";
	int r = KH_OK;
	struct hsm_session_key *k = NULL;
	uint8_t dgst[32], *sig = NULL;
	unsigned dlen = 0;
	size_t sig_len = 0;

	KH_ENSURE(EVP_Digest(msg, sizeof(msg) - 1, dgst, &dlen, EVP_sha256(), NULL) == 1 && dlen == 32,
		  kh_err_set(e, KH_E_INTERNAL, "SHA-256 failed"));
	KH_TRY(hsm_session_key_generate(h, t, &k, e));
	KH_TRY(hsm_session_key_sign(h, k, KH_DIGEST_SHA256, dgst, dlen, &sig, &sig_len, e));
	KH_TRY(hsm_probe_verify(k, dgst, dlen, sig, sig_len, e));
out:
	free(sig);
	hsm_session_key_destroy(h, k);
	return r;
}

void hsm_probe_curves(struct hsm *h)
{
	static const enum kh_key_type curves[] = { KH_KEY_P256, KH_KEY_P384, KH_KEY_P521, KH_KEY_SECP256K1 };
	size_t i, off = 0;

	h->probe_bad = 0;
	h->probe_usable[0] = '\0';
	for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		enum kh_key_type t = curves[i];
		const char *tn = kh_key_type_name(t);
		struct kh_errbuf e = { 0 };
		int r, n;

		/* The mechanism list already rules it out: nothing to learn. */
		if (hsm_key_type_supported(h, t, &e) != KH_OK)
			continue;
		r = hsm_probe_one(h, t, &e);
		if (r == KH_E_UNAVAILABLE || r == KH_E_RESOURCE_EXHAUSTED) {
			log_warn("could not check %s keys on the token (%s); assuming they work", tn, e.msg);
			continue;
		}
		/* P-256 is the curve every EC token has: when even its test key
		 * fails, the cause is not the curve (a token refusing session
		 * objects, say), and no curve can be judged this way. */
		if (r != KH_OK && t == KH_KEY_P256) {
			log_warn("could not check the EC curves: a p256 test key failed (%s); "
				 "trusting the mechanism list",
				 e.msg);
			break;
		}
		if (r != KH_OK) {
			h->probe_bad |= 1u << t;
			snprintf(h->probe_why[t], sizeof(h->probe_why[t]), "%s test key: %.120s", tn,
				 e.msg);
			log_info("the token's mechanism info allows %s keys, but they do not work: %s", tn,
				 e.msg);
			continue;
		}
		n = snprintf(h->probe_usable + off, sizeof(h->probe_usable) - off, "%s%s", off ? ", " : "", tn);
		if (n > 0 && (size_t)n < sizeof(h->probe_usable) - off)
			off += (size_t)n;
	}
	if (h->probe_bad != 0)
		log_info("EC curves this token can use: %s", off ? h->probe_usable : "none");
}
