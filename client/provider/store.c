/* store.c: the keyhold: URI STORE loader (keyhold:key=NAME[;socket=PATH][;type=T])
 * and the DECODER of KEYHOLD KEY reference files (PEM around the DER of
 * kp_parse.h). Both hand OpenSSL a reference to a struct kp_key that this
 * provider's KEYMGMT loads. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "kp.h"

#define KP_PEM_NAME "KEYHOLD KEY"

/* Passes k to cb as an object reference of type k->type_name. */
static int kp_pass(struct kp_key *k, OSSL_CALLBACK *cb, void *cbarg)
{
	int type = OSSL_OBJECT_PKEY;
	OSSL_PARAM params[4];

	params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, (char *)(uintptr_t)k->type_name, 0);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &k, sizeof(k));
	params[3] = OSSL_PARAM_construct_end();
	return cb(params, cbarg);
}

/* ---- STORE ---- */

struct st_ctx {
	struct kp_prov *prov;
	struct kp_ref ref;
	int done;
};

static void *st_open(void *provctx, const char *uri)
{
	struct st_ctx *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->prov = provctx;
	if (kp_uri_parse(uri, &s->ref) != 0) {
		kp_err(s->prov, KP_R_BAD_URI, "expected keyhold:key=NAME[;socket=PATH][;type=rsa-pss[-sha256|-sha384|-sha512]] (NAME: [A-Za-z0-9._-]{1,64})");
		free(s);
		return NULL;
	}
	return s;
}

static int st_load(void *vs, OSSL_CALLBACK *cb, void *cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	struct st_ctx *s = vs;
	struct kp_key *k;
	int ok;

	(void)pw_cb;
	(void)pw_cbarg;
	if (s->done)
		return 0;
	s->done = 1;
	k = kp_key_open(s->prov, s->ref.name, s->ref.socket, s->ref.type, NULL, 0);
	if (k == NULL)
		return 0;
	ok = kp_pass(k, cb, cbarg);
	kp_key_unref(k);
	return ok;
}

static int st_eof(void *vs)
{
	return ((struct st_ctx *)vs)->done;
}

static int st_close(void *vs)
{
	free(vs);
	return 1;
}

static int st_set_ctx_params(void *vs, const OSSL_PARAM params[])
{
	(void)vs;
	(void)params;
	return 1;
}

static const OSSL_PARAM *st_settable_ctx_params(void *provctx)
{
	static const OSSL_PARAM t[] = { OSSL_PARAM_END };

	(void)provctx;
	return t;
}

const OSSL_DISPATCH kp_store[] = {
	{ OSSL_FUNC_STORE_OPEN, (void (*)(void))st_open },
	{ OSSL_FUNC_STORE_LOAD, (void (*)(void))st_load },
	{ OSSL_FUNC_STORE_EOF, (void (*)(void))st_eof },
	{ OSSL_FUNC_STORE_CLOSE, (void (*)(void))st_close },
	{ OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))st_set_ctx_params },
	{ OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))st_settable_ctx_params },
	{ 0, NULL },
};

/* ---- DECODER ---- */

struct dec_ctx {
	struct kp_prov *prov;
	enum kp_type want;
};

static void *dec_new(void *provctx, enum kp_type want)
{
	struct dec_ctx *d = calloc(1, sizeof(*d));

	if (d != NULL) {
		d->prov = provctx;
		d->want = want;
	}
	return d;
}

static void *dec_new_rsa(void *provctx)
{
	return dec_new(provctx, KP_RSA);
}

static void *dec_new_ec(void *provctx)
{
	return dec_new(provctx, KP_EC);
}

static void *dec_new_ed(void *provctx)
{
	return dec_new(provctx, KP_ED25519);
}

static void dec_free(void *vd)
{
	free(vd);
}

static int dec_does_selection(void *provctx, int selection)
{
	(void)provctx;
	return selection == 0 || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 ||
	       (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0;
}

/* Input that is not a KEYHOLD KEY PEM block is not ours: return 1 with no
 * object so that the other decoders try it. */
static int dec_decode(void *vd, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *cb, void *cbarg,
		      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	struct dec_ctx *d = vd;
	BIO *in = BIO_new_from_core_bio(d->prov->libctx, cin);
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	struct kp_ref ref;
	struct kp_key *k = NULL;
	int ok = 1;

	(void)selection;
	(void)pw_cb;
	(void)pw_cbarg;
	if (in == NULL)
		return 0;
	if (PEM_read_bio(in, &name, &header, &data, &len) != 1 || strcmp(name, KP_PEM_NAME) != 0)
		goto out;
	if (len <= 0 || kp_ref_parse(data, (size_t)len, &ref) != 0) {
		kp_err(d->prov, KP_R_BAD_REFERENCE, "a " KP_PEM_NAME " block that does not parse");
		goto out;
	}
	k = kp_key_open(d->prov, ref.name, ref.socket, KP_REF_AUTO, ref.spki, ref.spki_len);
	if (k == NULL || k->type != d->want)
		goto out;
	ok = kp_pass(k, cb, cbarg);
out:
	kp_key_unref(k);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(in);
	return ok;
}

#define DEC_DISPATCH(newfn)                                                                                     \
	{ OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))newfn },                                                     \
		{ OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_free },                                         \
		{ OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))dec_does_selection },                        \
		{ OSSL_FUNC_DECODER_DECODE, (void (*)(void))dec_decode },                                        \
	{                                                                                                        \
		0, NULL                                                                                          \
	}

const OSSL_DISPATCH kp_decoder_rsa[] = { DEC_DISPATCH(dec_new_rsa) };
const OSSL_DISPATCH kp_decoder_ec[] = { DEC_DISPATCH(dec_new_ec) };
const OSSL_DISPATCH kp_decoder_ed25519[] = { DEC_DISPATCH(dec_new_ed) };
