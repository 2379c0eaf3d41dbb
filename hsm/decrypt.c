/* decrypt.c: CKM_RSA_PKCS decryption with a token key, for one purpose
 * only: opening the envelope of a SCEP CertRep (RFC 8894 §3.3), which the
 * CA encrypts to the trustpoint's key. Only keys generated for SCEP
 * trustpoints carry CKA_DECRYPT; the token refuses every other key. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hsm_int.h"
#include "kh_log.h"
#include "kh_util.h"

static enum kh_err hsm_decrypt_on(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_key *k, const uint8_t *in,
				  size_t in_len, uint8_t **out, size_t *out_len, CK_RV *rv_out, struct kh_errbuf *e)
{
	CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
	CK_ULONG olen = (CK_ULONG)in_len;
	uint8_t *buf = NULL;
	uint64_t t0;
	CK_RV rv = CKR_OK;
	int r = KH_OK;

	KH_ENSURE(k->ck_type == CKK_RSA,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "key '%s' is not an RSA key; SCEP needs RSA", k->name));
	KH_ENSURE(in_len > 0 && in_len <= 1024, kh_err_set(e, KH_E_INVALID_ARGUMENT, "bad RSA ciphertext length"));
	buf = malloc(in_len);
	KH_ENSURE(buf != NULL, KH_E_RESOURCE_EXHAUSTED);
	t0 = kh_now_mono_us();
	rv = h->f->C_DecryptInit(s, &mech, k->priv);
	if (rv == CKR_OK)
		rv = h->f->C_Decrypt(s, (CK_BYTE_PTR)(uintptr_t)in, (CK_ULONG)in_len, buf, &olen);
	hsm_observe(h, "decrypt", mech.mechanism, t0, rv);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_Decrypt", k->name));
	*out = buf;
	*out_len = olen;
	buf = NULL;
out:
	*rv_out = rv;
	if (buf != NULL)
		OPENSSL_clear_free(buf, in_len);
	return r;
}

enum kh_err hsm_decrypt_rsa_pkcs(struct hsm *h, const char *key, const uint8_t *in, size_t in_len, uint8_t **out,
				 size_t *out_len, struct kh_errbuf *e)
{
	struct hsm_sess s;
	struct hsm_key k;
	CK_RV rv = CKR_OK;
	int r = KH_OK;

	KH_TRY(hsm_begin(h, &s, e));
	r = hsm_key_lookup(h, s.h, key, &k, e);
	if (r == KH_OK) {
		r = hsm_decrypt_on(h, s.h, &k, in, in_len, out, out_len, &rv, e);
		hsm_key_copy_release(&k);
	}
	hsm_end(h, &s, rv);
	r = hsm_gone_err(h, r, rv, e);
	if (r == KH_OK)
		log_info("key '%s': decrypted a SCEP content-encryption key", key);
out:
	return r;
}
