/* svc_tls_key.c: the TLS server's private key as an EVP_PKEY whose private
 * operations are C_Sign in the token: the key is used, never read out.
 * OpenSSL 3.0 treats a key with a non-default EC_KEY_METHOD/RSA_METHOD as
 * "foreign" and routes it through the legacy EVP_PKEY_METHOD path, which
 * is what libssl's EVP_DigestSign ends in (the approach of libp11). EC:
 * the EC_KEY_METHOD's sign hooks call hsm_sign (CKM_ECDSA). RSA: TLS 1.3
 * signs with RSASSA-PSS (RFC 8446 §4.2.3), which the legacy RSA method
 * would pad itself and then need raw RSA for; an RSA pkey method takes the
 * digest and its PSS parameters instead and calls hsm_sign with
 * CKM_RSA_PKCS_PSS (PKCS#1 v1.5 with CKM_RSA_PKCS). It is bound to our keys
 * alone through a private in-memory ENGINE (EVP_PKEY_set1_engine): an
 * application-wide method (EVP_PKEY_meth_add0) would take every RSA
 * operation of the process away from the providers.
 * These legacy interfaces are deprecated in OpenSSL 3 but supported
 * throughout 3.x; an OpenSSL provider is the successor. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "kh_log.h"
#include "kh_util.h"
#include "core/svc.h"
#include "net/tls.h"

struct tk_ref {
	struct hsm *h;
	char name[KH_NAME_MAX + 1];
};

static pthread_once_t tk_once = PTHREAD_ONCE_INIT;
static int tk_ec_idx = -1, tk_rsa_idx = -1;
static EC_KEY_METHOD *tk_ec_meth;
static RSA_METHOD *tk_rsa_meth;
static EVP_PKEY_METHOD *tk_rsa_pmeth;
static ENGINE *tk_engine;
static bool tk_ready;

static void tk_ref_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static bool tk_digest_of(const EVP_MD *md, size_t len, enum kh_digest *out)
{
	int nid = md != NULL ? EVP_MD_get_type(md) : NID_undef;

	switch (md != NULL ? nid : (int)len) {
	case NID_sha256: case 32: *out = KH_DIGEST_SHA256; break;
	case NID_sha384: case 48: *out = KH_DIGEST_SHA384; break;
	case NID_sha512: case 64: *out = KH_DIGEST_SHA512; break;
	case NID_sha224: case 28: *out = KH_DIGEST_SHA224; break;
	default: return false;
	}
	return kh_digest_len(*out) == len;
}

/* ---- EC ---- */

static int tk_ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
		      const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
	const struct tk_ref *ref = EC_KEY_get_ex_data(eckey, tk_ec_idx);
	struct hsm_sign_op op;
	struct kh_errbuf e = { 0 };
	uint8_t *out = NULL;
	size_t out_len = 0;
	int max = ECDSA_size(eckey);

	(void)type;
	(void)kinv;
	(void)r;
	if (ref == NULL || dlen <= 0 || max <= 0)
		return 0;
	memset(&op, 0, sizeof(op));
	op.key = ref->name;
	if (!tk_digest_of(NULL, (size_t)dlen, &op.digest))
		return 0;
	op.in = dgst;
	op.in_len = (size_t)dlen;
	/* On the loop thread during a handshake: one token operation. */
	if (hsm_sign(ref->h, &op, &out, &out_len, &e) != KH_OK) {
		log_warn("TLS key '%s': %s", ref->name, e.msg);
		return 0;
	}
	if (out_len > (size_t)max) {
		free(out);
		return 0;
	}
	memcpy(sig, out, out_len);
	*siglen = (unsigned)out_len;
	free(out);
	return 1;
}

static ECDSA_SIG *tk_ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r,
				 EC_KEY *eckey)
{
	unsigned char buf[160];
	unsigned int len = 0;
	const unsigned char *p = buf;

	if (ECDSA_size(eckey) > (int)sizeof(buf) || tk_ec_sign(0, dgst, dlen, buf, &len, kinv, r, eckey) != 1)
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, len);
}

/* ---- RSA ---- */

static int tk_rsa_fail(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
	(void)flen;
	(void)from;
	(void)to;
	(void)rsa;
	(void)padding;
	return -1; /* the private key is in the token: raw RSA is not offered */
}

static int tk_rsa_pkey_sign(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen, const unsigned char *tbs,
			    size_t tbslen)
{
	EVP_PKEY *pk = EVP_PKEY_CTX_get0_pkey(ctx);
	const RSA *rsa = pk != NULL ? EVP_PKEY_get0_RSA(pk) : NULL;
	const struct tk_ref *ref = rsa != NULL ? RSA_get_ex_data(rsa, tk_rsa_idx) : NULL;
	const EVP_MD *md = NULL, *mgf1 = NULL;
	struct hsm_sign_op op;
	struct kh_errbuf e = { 0 };
	uint8_t *out = NULL;
	size_t out_len = 0;
	int pad = 0, salt = 0;

	if (ref == NULL)
		return 0; /* only our keys are bound to this method */
	if (sig == NULL) {
		*siglen = (size_t)RSA_size(rsa);
		return 1;
	}
	memset(&op, 0, sizeof(op));
	op.key = ref->name;
	if (EVP_PKEY_CTX_get_rsa_padding(ctx, &pad) <= 0 || EVP_PKEY_CTX_get_signature_md(ctx, &md) <= 0 ||
	    !tk_digest_of(md, tbslen, &op.digest))
		return 0;
	if (pad == RSA_PKCS1_PSS_PADDING) {
		/* CKM_RSA_PKCS_PSS here uses MGF1 with the same hash and a salt
		 * as long as the hash: what TLS 1.3 asks (RFC 8446 §4.2.3). */
		if (EVP_PKEY_CTX_get_rsa_pss_saltlen(ctx, &salt) <= 0 || EVP_PKEY_CTX_get_rsa_mgf1_md(ctx, &mgf1) <= 0)
			return 0;
		if ((salt != RSA_PSS_SALTLEN_DIGEST && salt != (int)tbslen) ||
		    (mgf1 != NULL && EVP_MD_get_type(mgf1) != EVP_MD_get_type(md)))
			return 0;
		op.padding = KH_PAD_PSS;
	} else if (pad == RSA_PKCS1_PADDING) {
		op.padding = KH_PAD_PKCS1;
	} else {
		return 0;
	}
	op.in = tbs;
	op.in_len = tbslen;
	if (hsm_sign(ref->h, &op, &out, &out_len, &e) != KH_OK) {
		log_warn("TLS key '%s': %s", ref->name, e.msg);
		return 0;
	}
	if (out_len > *siglen) {
		free(out);
		return 0;
	}
	memcpy(sig, out, out_len);
	*siglen = out_len;
	free(out);
	return 1;
}

static int tk_engine_pmeths(ENGINE *e, EVP_PKEY_METHOD **pmeth, const int **nids, int nid)
{
	static const int ours[] = { EVP_PKEY_RSA };

	(void)e;
	if (pmeth == NULL) {
		*nids = ours;
		return 1;
	}
	*pmeth = nid == EVP_PKEY_RSA ? tk_rsa_pmeth : NULL;
	return *pmeth != NULL;
}

static void tk_init(void)
{
	int (*ec_sign)(int, const unsigned char *, int, unsigned char *, unsigned int *, const BIGNUM *,
		       const BIGNUM *, EC_KEY *) = NULL;
	int (*ec_setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;
	ECDSA_SIG *(*ec_sig)(const unsigned char *, int, const BIGNUM *, const BIGNUM *, EC_KEY *) = NULL;
	const EVP_PKEY_METHOD *orig;
	EVP_PKEY_METHOD *pm;
	int (*sign_init)(EVP_PKEY_CTX *) = NULL;
	int (*orig_sign)(EVP_PKEY_CTX *, unsigned char *, size_t *, const unsigned char *, size_t) = NULL;

	tk_ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, tk_ref_free);
	tk_rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, tk_ref_free);
	tk_ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
	tk_rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL());
	if (tk_ec_idx < 0 || tk_rsa_idx < 0 || tk_ec_meth == NULL || tk_rsa_meth == NULL)
		return;
	EC_KEY_METHOD_get_sign(tk_ec_meth, &ec_sign, &ec_setup, &ec_sig);
	EC_KEY_METHOD_set_sign(tk_ec_meth, tk_ec_sign, ec_setup, tk_ec_sign_sig);
	RSA_meth_set1_name(tk_rsa_meth, "keyhold token RSA");
	RSA_meth_set_priv_enc(tk_rsa_meth, tk_rsa_fail);
	RSA_meth_set_priv_dec(tk_rsa_meth, tk_rsa_fail);
	orig = EVP_PKEY_meth_find(EVP_PKEY_RSA);
	pm = EVP_PKEY_meth_new(EVP_PKEY_RSA, EVP_PKEY_FLAG_AUTOARGLEN);
	if (orig == NULL || pm == NULL)
		return;
	EVP_PKEY_meth_copy(pm, orig);
	EVP_PKEY_meth_get_sign(orig, &sign_init, &orig_sign);
	EVP_PKEY_meth_set_sign(pm, sign_init, tk_rsa_pkey_sign);
	tk_rsa_pmeth = pm;
	tk_engine = ENGINE_new();
	if (tk_engine == NULL || ENGINE_set_id(tk_engine, "keyhold-token") != 1 ||
	    ENGINE_set_name(tk_engine, "keyhold: RSA keys held in the PKCS#11 token") != 1 ||
	    ENGINE_set_pkey_meths(tk_engine, tk_engine_pmeths) != 1)
		return;
	tk_ready = true;
}

enum kh_err svc_tls_token_pkey(struct hsm *h, const char *name, EVP_PKEY **out, struct kh_errbuf *e)
{
	enum kh_key_type type = KH_KEY_UNSPECIFIED;
	EVP_PKEY *pub = NULL, *pk = NULL;
	EC_KEY *ec = NULL;
	RSA *rsa = NULL;
	struct tk_ref *ref = NULL;
	int r = KH_OK;

	pthread_once(&tk_once, tk_init);
	KH_ENSURE(tk_ready, kh_err_set(e, KH_E_INTERNAL, "cannot set up OpenSSL key methods for token keys"));
	KH_TRY(hsm_key_meta(h, name, &type, &pub, e));
	KH_ENSURE(pub != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "the token holds no public key for '%s'", name));
	ref = calloc(1, sizeof(*ref));
	pk = EVP_PKEY_new();
	KH_ENSURE(ref != NULL && pk != NULL, KH_E_RESOURCE_EXHAUSTED);
	ref->h = h;
	kh_strlcpy(ref->name, name, sizeof(ref->name));
	switch (type) {
	case KH_KEY_P256:
	case KH_KEY_P384:
	case KH_KEY_P521:
		ec = EVP_PKEY_get1_EC_KEY(pub);
		KH_ENSURE(ec != NULL && EC_KEY_set_method(ec, tk_ec_meth) == 1 &&
				  EC_KEY_set_ex_data(ec, tk_ec_idx, ref) == 1,
			  kh_err_set(e, KH_E_INTERNAL, "cannot wrap EC key '%s'", name));
		ref = NULL;
		KH_ENSURE(EVP_PKEY_assign_EC_KEY(pk, ec) == 1, KH_E_INTERNAL);
		ec = NULL;
		break;
	case KH_KEY_RSA2048:
	case KH_KEY_RSA3072:
	case KH_KEY_RSA4096:
		rsa = EVP_PKEY_get1_RSA(pub);
		KH_ENSURE(rsa != NULL && RSA_set_method(rsa, tk_rsa_meth) == 1 &&
				  RSA_set_ex_data(rsa, tk_rsa_idx, ref) == 1,
			  kh_err_set(e, KH_E_INTERNAL, "cannot wrap RSA key '%s'", name));
		ref = NULL;
		KH_ENSURE(EVP_PKEY_assign_RSA(pk, rsa) == 1, KH_E_INTERNAL);
		rsa = NULL;
		KH_ENSURE(EVP_PKEY_set1_engine(pk, tk_engine) == 1,
			  kh_err_set(e, KH_E_INTERNAL, "cannot bind RSA key '%s' to the token method", name));
		break;
	default:
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
			       "key '%s' is %s; the TLS listener takes p256, p384, p521 or RSA keys", name,
			       kh_key_type_name(type) ? kh_key_type_name(type) : "of an unknown type");
		goto out;
	}
	*out = pk;
	pk = NULL;
out:
	EC_KEY_free(ec);
	RSA_free(rsa);
	free(ref);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(pub);
	return r;
}
