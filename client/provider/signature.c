/* signature.c: SIGNATURE for keyhold keys. RSA PKCS#1 v1.5 and PSS (MGF1
 * with the signature's digest, salt = digest length: what keyholdd's PSS
 * signatures get, hsm/sign.c), ECDSA (DER), Ed25519 (one-shot, the
 * message itself). Digest-sign hashes here and sends the digest as
 * prehashed; sign takes a precomputed digest. keyholdd signs, under its
 * roles, grants, FIPS policy and audit. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kp.h"

/* The largest message signed whole (keyholdd's default frame is 1 MiB). */
#define SIG_ED_MAX ((1u << 20) - 4096)

struct sig_ctx {
	struct kp_prov *prov;
	struct kp_key *key;
	EVP_MD *md;	    /* NULL: not yet chosen */
	EVP_MD_CTX *mdctx;  /* digest-sign */
	unsigned char *msg; /* Ed25519 fed in pieces (CMS): the message so far */
	size_t msg_len;
	int pad;	    /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
	int saltlen;	    /* RSA_PSS_SALTLEN_DIGEST or a length */
	char mgf1[32];	    /* "" : the digest */
	unsigned char aid[128];
	size_t aid_len;
};

static void *sig_newctx(void *provctx, const char *propq)
{
	struct sig_ctx *c = calloc(1, sizeof(*c));

	(void)propq;
	if (c == NULL)
		return NULL;
	c->prov = provctx;
	c->pad = RSA_PKCS1_PADDING;
	c->saltlen = RSA_PSS_SALTLEN_DIGEST;
	return c;
}

static void sig_freectx(void *vc)
{
	struct sig_ctx *c = vc;

	if (c == NULL)
		return;
	kp_key_unref(c->key);
	EVP_MD_free(c->md);
	EVP_MD_CTX_free(c->mdctx);
	free(c->msg);
	free(c);
}

static void *sig_dupctx(void *vc)
{
	struct sig_ctx *c = vc, *d = malloc(sizeof(*d));

	if (d == NULL)
		return NULL;
	*d = *c;
	d->mdctx = NULL;
	d->msg = NULL;
	d->msg_len = 0;
	if (d->key != NULL)
		kp_key_ref(d->key);
	if (d->md != NULL && !EVP_MD_up_ref(d->md))
		d->md = NULL;
	if (c->mdctx != NULL && ((d->mdctx = EVP_MD_CTX_new()) == NULL || !EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx)))
		goto fail;
	if (c->msg_len > 0) {
		if ((d->msg = malloc(c->msg_len)) == NULL)
			goto fail;
		memcpy(d->msg, c->msg, c->msg_len);
		d->msg_len = c->msg_len;
	}
	return d;
fail:
	sig_freectx(d);
	return NULL;
}

/* keyhold's name of md (keyhold.proto Digest), or NULL. */
static const char *sig_kh_digest(const EVP_MD *md)
{
	static const struct {
		const char *ossl, *kh;
	} t[] = {
		{ "SHA2-256", "SHA256" }, { "SHA2-384", "SHA384" }, { "SHA2-512", "SHA512" },
		{ "SHA2-224", "SHA224" }, { "SHA1", "SHA1" },
	};
	size_t i;

	for (i = 0; md != NULL && i < sizeof(t) / sizeof(t[0]); i++)
		if (EVP_MD_is_a(md, t[i].ossl))
			return t[i].kh;
	return NULL;
}

static int sig_set_md(struct sig_ctx *c, const char *name)
{
	EVP_MD *md = EVP_MD_fetch(c->prov->libctx, name, NULL);

	if (md == NULL || sig_kh_digest(md) == NULL) {
		EVP_MD_free(md);
		kp_err(c->prov, KP_R_UNSUPPORTED, "digest '%s' is not one keyhold signs with", name);
		return 0;
	}
	EVP_MD_free(c->md);
	c->md = md;
	return 1;
}

static int sig_set_ctx_params(void *vc, const OSSL_PARAM params[])
{
	struct sig_ctx *c = vc;
	const OSSL_PARAM *p;

	if (params == NULL)
		return 1;
	if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL) {
		const char *n = NULL;

		if (!OSSL_PARAM_get_utf8_string_ptr(p, &n) || !sig_set_md(c, n))
			return 0;
	}
	if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
		const char *s = NULL;
		int v = 0;

		if (p->data_type == OSSL_PARAM_UTF8_STRING) {
			if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
				return 0;
			v = strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0 ? RSA_PKCS1_PADDING
			    : strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0   ? RSA_PKCS1_PSS_PADDING
									  : -1;
		} else if (!OSSL_PARAM_get_int(p, &v)) {
			return 0;
		}
		if (v != RSA_PKCS1_PADDING && v != RSA_PKCS1_PSS_PADDING) {
			kp_err(c->prov, KP_R_UNSUPPORTED, "keyhold signs with PKCS#1 v1.5 or PSS padding only");
			return 0;
		}
		c->pad = v;
	}
	if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL) {
		const char *s = NULL;
		int v = 0;

		if (p->data_type == OSSL_PARAM_UTF8_STRING) {
			if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
				return 0;
			if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0) {
				v = RSA_PSS_SALTLEN_DIGEST;
			} else {
				char *end = NULL;
				long l = strtol(s, &end, 10);

				/* "max", "auto": another salt than keyholdd's. */
				v = (end == s || *end != '\0' || l < 0 || l > 1024) ? -100 : (int)l;
			}
		} else if (!OSSL_PARAM_get_int(p, &v)) {
			return 0;
		}
		if (v != RSA_PSS_SALTLEN_DIGEST && v < 0) {
			kp_err(c->prov, KP_R_UNSUPPORTED,
			       "keyhold's PSS salt is the digest length: use rsa_pss_saltlen:digest (or the length)");
			return 0;
		}
		c->saltlen = v;
	}
	if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL) {
		const char *n = NULL;

		if (!OSSL_PARAM_get_utf8_string_ptr(p, &n) || strlen(n) >= sizeof(c->mgf1))
			return 0;
		memcpy(c->mgf1, n, strlen(n) + 1);
	}
	return 1;
}

static const OSSL_PARAM *sig_settable_ctx_params(void *vc, void *provctx)
{
	static const OSSL_PARAM t[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
		OSSL_PARAM_END,
	};
	(void)vc;
	(void)provctx;
	return t;
}

/* The DER of AlgorithmIdentifier { id, NULL or absent parameters }. */
static int sig_aid_simple(struct sig_ctx *c, int nid, int null_param)
{
	X509_ALGOR *a = X509_ALGOR_new();
	unsigned char *p = c->aid;
	int n = -1;

	if (a != NULL && X509_ALGOR_set0(a, OBJ_nid2obj(nid), null_param ? V_ASN1_NULL : V_ASN1_UNDEF, NULL) &&
	    (n = i2d_X509_ALGOR(a, NULL)) > 0 && (size_t)n <= sizeof(c->aid))
		n = i2d_X509_ALGOR(a, &p);
	X509_ALGOR_free(a);
	if (n <= 0 || (size_t)n > sizeof(c->aid))
		return 0;
	c->aid_len = (size_t)n;
	return 1;
}

/* RSASSA-PSS-params (RFC 4055 §3.1) for hash h (its OID's bytes) with MGF1
 * of h and salt = the digest length; trailerField default. */
static int sig_aid_pss(struct sig_ctx *c, const unsigned char *oid, size_t oid_len, int salt)
{
	static const unsigned char pss_oid[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a };
	static const unsigned char mgf1_oid[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08 };
	unsigned char h[24];
	size_t hl, ml, pl, o = 0;
	unsigned char *b = c->aid;

	/* hash AlgorithmIdentifier: SEQUENCE { OID, NULL } */
	hl = 0;
	h[hl++] = 0x30;
	h[hl++] = (unsigned char)(oid_len + 4);
	h[hl++] = 0x06;
	h[hl++] = (unsigned char)oid_len;
	memcpy(h + hl, oid, oid_len);
	hl += oid_len;
	h[hl++] = 0x05;
	h[hl++] = 0x00;
	ml = 2 + sizeof(mgf1_oid) + hl;		     /* mgf SEQUENCE body */
	pl = (2 + hl) + (2 + 2 + ml) + 5;	     /* params SEQUENCE body */
	if (2 + 2 + sizeof(pss_oid) + 2 + pl > sizeof(c->aid) || pl > 127)
		return 0;
	b[o++] = 0x30;
	b[o++] = (unsigned char)(2 + sizeof(pss_oid) + 2 + pl);
	b[o++] = 0x06;
	b[o++] = sizeof(pss_oid);
	memcpy(b + o, pss_oid, sizeof(pss_oid));
	o += sizeof(pss_oid);
	b[o++] = 0x30;
	b[o++] = (unsigned char)pl;
	b[o++] = 0xa0;
	b[o++] = (unsigned char)hl;
	memcpy(b + o, h, hl);
	o += hl;
	b[o++] = 0xa1;
	b[o++] = (unsigned char)(2 + ml);
	b[o++] = 0x30;
	b[o++] = (unsigned char)ml;
	b[o++] = 0x06;
	b[o++] = sizeof(mgf1_oid);
	memcpy(b + o, mgf1_oid, sizeof(mgf1_oid));
	o += sizeof(mgf1_oid);
	memcpy(b + o, h, hl);
	o += hl;
	b[o++] = 0xa2;
	b[o++] = 0x03;
	b[o++] = 0x02;
	b[o++] = 0x01;
	b[o++] = (unsigned char)salt;
	c->aid_len = o;
	return 1;
}

static int sig_aid(struct sig_ctx *c)
{
	static const unsigned char sha224[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04 };
	static const unsigned char sha256[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01 };
	static const unsigned char sha384[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02 };
	static const unsigned char sha512[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03 };
	int sig_nid = NID_undef;
	const char *d;

	if (c->key->type == KP_ED25519)
		return sig_aid_simple(c, NID_ED25519, 0);
	if ((d = sig_kh_digest(c->md)) == NULL)
		return 0;
	if ((c->key->type == KP_RSA && c->pad == RSA_PKCS1_PSS_PADDING) || c->key->type == KP_RSA_PSS) {
		int hlen = EVP_MD_get_size(c->md);

		if (strcmp(d, "SHA224") == 0)
			return sig_aid_pss(c, sha224, sizeof(sha224), hlen);
		if (strcmp(d, "SHA256") == 0)
			return sig_aid_pss(c, sha256, sizeof(sha256), hlen);
		if (strcmp(d, "SHA384") == 0)
			return sig_aid_pss(c, sha384, sizeof(sha384), hlen);
		if (strcmp(d, "SHA512") == 0)
			return sig_aid_pss(c, sha512, sizeof(sha512), hlen);
		return 0;
	}
	if (!OBJ_find_sigid_by_algs(&sig_nid, EVP_MD_get_type(c->md),
				    c->key->type == KP_RSA ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey))
		return 0;
	return sig_aid_simple(c, sig_nid, c->key->type == KP_RSA);
}

static int sig_get_ctx_params(void *vc, OSSL_PARAM params[])
{
	struct sig_ctx *c = vc;
	OSSL_PARAM *p;

	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID)) != NULL) {
		if (c->key == NULL || !sig_aid(c) || !OSSL_PARAM_set_octet_string(p, c->aid, c->aid_len))
			return 0;
	}
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL && c->md != NULL &&
	    !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(c->md)))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
		if (p->data_type == OSSL_PARAM_INTEGER) {
			if (!OSSL_PARAM_set_int(p, c->pad))
				return 0;
		} else if (!OSSL_PARAM_set_utf8_string(p, c->pad == RSA_PKCS1_PSS_PADDING ? OSSL_PKEY_RSA_PAD_MODE_PSS
											   : OSSL_PKEY_RSA_PAD_MODE_PKCSV15)) {
			return 0;
		}
	}
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL) {
		if (p->data_type == OSSL_PARAM_INTEGER) {
			if (!OSSL_PARAM_set_int(p, c->saltlen))
				return 0;
		} else if (!OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST)) {
			return 0;
		}
	}
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL && c->md != NULL &&
	    !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(c->md)))
		return 0;
	return 1;
}

static const OSSL_PARAM *sig_gettable_ctx_params(void *vc, void *provctx)
{
	static const OSSL_PARAM t[] = {
		OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
		OSSL_PARAM_END,
	};
	(void)vc;
	(void)provctx;
	return t;
}

static int sig_init(void *vc, void *kd, const OSSL_PARAM params[])
{
	struct sig_ctx *c = vc;

	if (kd != NULL) {
		kp_key_ref(kd);
		kp_key_unref(c->key);
		c->key = kd;
	}
	if (c->key == NULL)
		return 0;
	if (c->key->type == KP_RSA_PSS) {
		/* An RSA-PSS key: PSS, and its digest when restricted to one. */
		c->pad = RSA_PKCS1_PSS_PADDING;
		if (c->key->pss_md != NULL && c->md == NULL && !sig_set_md(c, c->key->pss_md))
			return 0;
	}
	return sig_set_ctx_params(c, params);
}

/* The checks made when the signature is made (parameters may come in any
 * order before it). */
static int sig_check(struct sig_ctx *c, const char **kh_digest, const char **padding)
{
	*padding = NULL;
	*kh_digest = sig_kh_digest(c->md);
	if (c->key->type != KP_RSA && c->key->type != KP_RSA_PSS)
		return 1;
	if (c->key->type == KP_RSA_PSS && c->pad != RSA_PKCS1_PSS_PADDING) {
		kp_err(c->prov, KP_R_UNSUPPORTED, "key '%s' is an RSA-PSS key: it signs with PSS only", c->key->name);
		return 0;
	}
	if (c->key->pss_md != NULL && !EVP_MD_is_a(c->md, c->key->pss_md)) {
		kp_err(c->prov, KP_R_UNSUPPORTED, "key '%s' is restricted to PSS with %s, not %s", c->key->name,
		       c->key->pss_md, EVP_MD_get0_name(c->md));
		return 0;
	}
	if (c->pad == RSA_PKCS1_PSS_PADDING) {
		if (c->saltlen != RSA_PSS_SALTLEN_DIGEST && c->saltlen != EVP_MD_get_size(c->md)) {
			kp_err(c->prov, KP_R_UNSUPPORTED, "keyhold's PSS salt is the digest length (%d), not %d",
			       EVP_MD_get_size(c->md), c->saltlen);
			return 0;
		}
		if (c->mgf1[0] != '\0' && !EVP_MD_is_a(c->md, c->mgf1)) {
			kp_err(c->prov, KP_R_UNSUPPORTED, "keyhold's PSS uses MGF1 with the signature's digest");
			return 0;
		}
		*padding = "PSS";
	} else {
		*padding = "PKCS1";
	}
	return 1;
}

static int sig_out(struct sig_ctx *c, unsigned char *sig, size_t *siglen, size_t sigsize, unsigned char *made,
		   size_t made_len)
{
	int ok = made_len <= sigsize;

	if (ok) {
		memcpy(sig, made, made_len);
		*siglen = made_len;
	} else {
		kp_err(c->prov, KP_R_UNSUPPORTED, "signature buffer too small");
	}
	kh_free(made);
	return ok;
}

/* EVP_PKEY_sign: tbs is a digest (the digest set, else one of its length). */
static int sig_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize, const unsigned char *tbs,
		    size_t tbslen)
{
	struct sig_ctx *c = vc;
	const char *d, *pad;
	unsigned char *made = NULL;
	size_t made_len = 0;

	if (sig == NULL) {
		*siglen = (size_t)EVP_PKEY_get_size(c->key->pub);
		return 1;
	}
	if (c->key->type == KP_ED25519) {
		kp_err(c->prov, KP_R_UNSUPPORTED, "Ed25519 signs a message (EVP_DigestSign), not a digest");
		return 0;
	}
	if (c->md == NULL) {
		const char *guess = tbslen == 32 ? "SHA256" : tbslen == 48 ? "SHA384" : tbslen == 64 ? "SHA512"
				    : tbslen == 28 ? "SHA224" : tbslen == 20 ? "SHA1" : NULL;

		/* RSA without a digest would be a raw PKCS#1 block, which
		 * keyholdd does not make: the DigestInfo needs the digest. */
		if (c->key->type == KP_RSA || c->key->type == KP_RSA_PSS || guess == NULL) {
			kp_err(c->prov, KP_R_UNSUPPORTED,
			       "keyhold signs a digest of a known algorithm: set it (e.g. -pkeyopt digest:sha256)");
			return 0;
		}
		if (!sig_set_md(c, guess))
			return 0;
	}
	if (!sig_check(c, &d, &pad))
		return 0;
	if (tbslen != (size_t)EVP_MD_get_size(c->md)) {
		kp_err(c->prov, KP_R_UNSUPPORTED, "a %s digest is %d bytes, not %zu", d, EVP_MD_get_size(c->md), tbslen);
		return 0;
	}
	if (!kp_key_sign(c->key, d, pad, 1, tbs, tbslen, &made, &made_len))
		return 0;
	return sig_out(c, sig, siglen, sigsize, made, made_len);
}

static int sig_digest_init(void *vc, const char *mdname, void *kd, const OSSL_PARAM params[])
{
	struct sig_ctx *c = vc;

	if (!sig_init(vc, kd, NULL))
		return 0;
	if (c->key->type == KP_ED25519) {
		/* PureEdDSA hashes inside; SHA-512 is what CMS names for the
		 * signed attributes (RFC 8419) and is no prehash. */
		if (mdname != NULL && mdname[0] != '\0' && strcasecmp(mdname, "SHA512") != 0 &&
		    strcasecmp(mdname, "SHA2-512") != 0) {
			kp_err(c->prov, KP_R_UNSUPPORTED, "Ed25519 takes no digest");
			return 0;
		}
		free(c->msg);
		c->msg = NULL;
		c->msg_len = 0;
		return sig_set_ctx_params(c, params);
	}
	if (!sig_set_md(c, mdname != NULL && mdname[0] != '\0' ? mdname
			   : c->key->pss_md != NULL   ? c->key->pss_md
						      : "SHA256"))
		return 0;
	if (!sig_set_ctx_params(c, params))
		return 0;
	EVP_MD_CTX_free(c->mdctx);
	if ((c->mdctx = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex2(c->mdctx, c->md, NULL))
		return 0;
	return 1;
}

static int sig_digest_update(void *vc, const unsigned char *data, size_t len)
{
	struct sig_ctx *c = vc;
	unsigned char *m;

	if (c->key != NULL && c->key->type == KP_ED25519) {
		/* PureEdDSA needs the whole message: kept, up to what one
		 * Sign request carries. */
		if (len > SIG_ED_MAX - c->msg_len) {
			kp_err(c->prov, KP_R_UNSUPPORTED, "an Ed25519 message over %u bytes", SIG_ED_MAX);
			return 0;
		}
		if (len == 0)
			return 1;
		if ((m = realloc(c->msg, c->msg_len + len)) == NULL)
			return 0;
		memcpy(m + c->msg_len, data, len);
		c->msg = m;
		c->msg_len += len;
		return 1;
	}
	return c->mdctx != NULL && EVP_DigestUpdate(c->mdctx, data, len);
}

static int sig_digest_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize, const unsigned char *tbs,
			   size_t tbslen);

static int sig_digest_final(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize)
{
	struct sig_ctx *c = vc;
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;

	if (sig == NULL) {
		*siglen = (size_t)EVP_PKEY_get_size(c->key->pub);
		return 1;
	}
	if (c->key->type == KP_ED25519)
		return sig_digest_sign(vc, sig, siglen, sigsize, c->msg, c->msg_len);
	if (c->mdctx == NULL || !EVP_DigestFinal_ex(c->mdctx, dg, &dl))
		return 0;
	return sig_sign(vc, sig, siglen, sigsize, dg, dl);
}

/* Ed25519: the message itself, one shot. */
static int sig_digest_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize, const unsigned char *tbs,
			   size_t tbslen)
{
	struct sig_ctx *c = vc;
	unsigned char *made = NULL;
	size_t made_len = 0;

	if (sig == NULL) {
		*siglen = (size_t)EVP_PKEY_get_size(c->key->pub);
		return 1;
	}
	if (!kp_key_sign(c->key, NULL, NULL, 0, tbs, tbslen, &made, &made_len))
		return 0;
	return sig_out(c, sig, siglen, sigsize, made, made_len);
}

#define SIG_COMMON                                                                                              \
	{ OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx },                                              \
		{ OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx },                                    \
		{ OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx },                                      \
		{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_init },                       \
		{ OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params },                      \
		{ OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable_ctx_params },            \
		{ OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params },                      \
	{                                                                                                        \
		OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable_ctx_params                 \
	}

#define SIG_HASHED                                                                                              \
	{ OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_init },                                             \
		{ OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign },                                          \
		{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update },                   \
	{                                                                                                        \
		OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_final                          \
	}

const OSSL_DISPATCH kp_signature_rsa[] = { SIG_COMMON, SIG_HASHED, { 0, NULL } };
const OSSL_DISPATCH kp_signature_ecdsa[] = { SIG_COMMON, SIG_HASHED, { 0, NULL } };
const OSSL_DISPATCH kp_signature_ed25519[] = {
	SIG_COMMON,
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_final },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign },
	{ 0, NULL },
};
