/* encoder.c: ENCODER of a keyhold key's SubjectPublicKeyInfo (DER and
 * PEM), from the bytes keyholdd gave: X509_PUBKEY_set (CSRs, certificates)
 * and PEM_write_PUBKEY find the public key here, as the key is never
 * exported to another provider (keymgmt.c). */
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "kp.h"

static void *enc_newctx(void *provctx)
{
	return provctx;
}

static void enc_freectx(void *vc)
{
	(void)vc;
}

static int enc_does_selection(void *provctx, int selection)
{
	(void)provctx;
	return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0;
}

static int enc_encode(void *vc, OSSL_CORE_BIO *cout, const void *obj, const OSSL_PARAM abstract[], int selection,
		      OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg, int pem)
{
	struct kp_prov *p = vc;
	const struct kp_key *k = obj;
	BIO *out;
	int ok;

	(void)cb;
	(void)cbarg;
	if (k == NULL || abstract != NULL || k->spki == NULL || !enc_does_selection(p, selection))
		return 0;
	if ((out = BIO_new_from_core_bio(p->libctx, cout)) == NULL)
		return 0;
	if (pem)
		ok = PEM_write_bio(out, PEM_STRING_PUBLIC, "", k->spki, (long)k->spki_len) > 0;
	else
		ok = BIO_write(out, k->spki, (int)k->spki_len) == (int)k->spki_len;
	BIO_free(out);
	return ok;
}

static int enc_der(void *vc, OSSL_CORE_BIO *cout, const void *obj, const OSSL_PARAM abstract[], int selection,
		   OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
	return enc_encode(vc, cout, obj, abstract, selection, cb, cbarg, 0);
}

static int enc_pem(void *vc, OSSL_CORE_BIO *cout, const void *obj, const OSSL_PARAM abstract[], int selection,
		   OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
	return enc_encode(vc, cout, obj, abstract, selection, cb, cbarg, 1);
}

const OSSL_DISPATCH kp_encoder_spki_der[] = {
	{ OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx },
	{ OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx },
	{ OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))enc_does_selection },
	{ OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))enc_der },
	{ 0, NULL },
};

const OSSL_DISPATCH kp_encoder_spki_pem[] = {
	{ OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx },
	{ OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx },
	{ OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))enc_does_selection },
	{ OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))enc_pem },
	{ 0, NULL },
};
