/* p11_sign.c: the signing mechanisms (PKCS#11 v2.40 Current Mechanisms
 * 2.1 RSA, 2.3 ECDSA; 3.0 2.3.14 EdDSA), each one Sign round trip to
 * keyholdd: the SHA*_ mechanisms hash here and send the digest; CKM_RSA_PKCS
 * sends the digest of the caller's DigestInfo; CKM_ECDSA's DER answer
 * becomes r || s. */
#include <stdlib.h>
#include <string.h>

#include <openssl/ecdsa.h>

#include "p11.h"

/* CK_EDDSA_PARAMS of PKCS#11 3.0 (2.3.8), absent from a 2.40 header. */
struct p11_eddsa_params {
	CK_BBOOL ph_flag;
	CK_ULONG context_len;
	CK_BYTE_PTR context;
};

enum p11_family { P11_RSA, P11_PSS, P11_EC, P11_ED };

struct p11_mech_def {
	CK_MECHANISM_TYPE m;
	enum p11_family fam;
	const char *digest; /* hashed here; NULL: raw input */
};

static const struct p11_mech_def p11_mechs[] = {
	{ CKM_RSA_PKCS, P11_RSA, NULL },
	{ CKM_SHA256_RSA_PKCS, P11_RSA, "SHA256" },
	{ CKM_SHA384_RSA_PKCS, P11_RSA, "SHA384" },
	{ CKM_SHA512_RSA_PKCS, P11_RSA, "SHA512" },
	{ CKM_RSA_PKCS_PSS, P11_PSS, NULL },
	{ CKM_SHA256_RSA_PKCS_PSS, P11_PSS, "SHA256" },
	{ CKM_SHA384_RSA_PKCS_PSS, P11_PSS, "SHA384" },
	{ CKM_SHA512_RSA_PKCS_PSS, P11_PSS, "SHA512" },
	{ CKM_ECDSA, P11_EC, NULL },
	{ CKM_ECDSA_SHA256, P11_EC, "SHA256" },
	{ CKM_ECDSA_SHA384, P11_EC, "SHA384" },
	{ CKM_ECDSA_SHA512, P11_EC, "SHA512" },
	{ CKM_EDDSA, P11_ED, NULL },
};

/* Digests by what identifies them in the input or parameters. */
struct p11_digest {
	const char *name;
	size_t len;
	CK_MECHANISM_TYPE hash;
	CK_RSA_PKCS_MGF_TYPE mgf;
	uint8_t prefix[19]; /* DigestInfo DER up to the digest (RFC 8017 9.2 note 1) */
	size_t prefix_len;
};

static const struct p11_digest p11_digests[] = {
	{ "SHA1", 20, CKM_SHA_1, CKG_MGF1_SHA1,
	  { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14 }, 15 },
	{ "SHA224", 28, CKM_SHA224, CKG_MGF1_SHA224,
	  { 0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00,
	    0x04, 0x1c },
	  19 },
	{ "SHA256", 32, CKM_SHA256, CKG_MGF1_SHA256,
	  { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
	    0x04, 0x20 },
	  19 },
	{ "SHA384", 48, CKM_SHA384, CKG_MGF1_SHA384,
	  { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
	    0x04, 0x30 },
	  19 },
	{ "SHA512", 64, CKM_SHA512, CKG_MGF1_SHA512,
	  { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
	    0x04, 0x40 },
	  19 },
};

#define P11_N(a) (sizeof(a) / sizeof((a)[0]))

static const struct p11_mech_def *mech_def(CK_MECHANISM_TYPE m)
{
	size_t i;

	for (i = 0; i < P11_N(p11_mechs); i++)
		if (p11_mechs[i].m == m)
			return &p11_mechs[i];
	return NULL;
}

static const struct p11_digest *digest_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < P11_N(p11_digests); i++)
		if (strcmp(p11_digests[i].name, name) == 0)
			return &p11_digests[i];
	return NULL;
}

/* With p11.lock held. */
static bool mech_available(const struct p11_mech_def *d)
{
	switch (d->fam) {
	case P11_RSA:
		return p11.mechs.rsa;
	case P11_PSS:
		return p11.mechs.pss;
	case P11_EC:
		return p11.mechs.ec;
	case P11_ED:
		return p11.mechs.ed;
	}
	return false;
}

CK_RV p11_mech_list(CK_MECHANISM_TYPE *list, CK_ULONG *n)
{
	CK_ULONG k = 0, cap = *n;
	size_t i;
	CK_RV rv = CKR_OK;

	for (i = 0; i < P11_N(p11_mechs); i++) {
		if (!mech_available(&p11_mechs[i]))
			continue;
		if (list != NULL) {
			if (k < cap)
				list[k] = p11_mechs[i].m;
			else
				rv = CKR_BUFFER_TOO_SMALL;
		}
		k++;
	}
	*n = k;
	return rv;
}

CK_RV p11_mech_info(CK_MECHANISM_TYPE m, CK_MECHANISM_INFO *info)
{
	const struct p11_mech_def *d = mech_def(m);

	if (d == NULL || !mech_available(d))
		return CKR_MECHANISM_INVALID;
	memset(info, 0, sizeof(*info));
	info->flags = CKF_SIGN;
	switch (d->fam) {
	case P11_RSA:
	case P11_PSS:
		info->ulMinKeySize = p11.mechs.rsa_min;
		info->ulMaxKeySize = p11.mechs.rsa_max;
		break;
	case P11_EC:
		info->ulMinKeySize = p11.mechs.ec_min;
		info->ulMaxKeySize = p11.mechs.ec_max;
		info->flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
		break;
	case P11_ED:
		info->ulMinKeySize = 255;
		info->ulMaxKeySize = 255;
		break;
	}
	return CKR_OK;
}

void p11_op_clear(struct p11_op *op)
{
	EVP_MD_CTX_free(op->mdctx);
	free(op->buf);
	memset(op, 0, sizeof(*op));
}

/* The PSS parameters keyholdd can honour: MGF1 with the signature's hash
 * and a salt as long as the hash (keyholdd's salt, docs/PROVIDER.md). */
static CK_RV pss_params(const CK_MECHANISM *mech, const char *fixed, const char **digest)
{
	const CK_RSA_PKCS_PSS_PARAMS *p = mech->pParameter;
	size_t i;

	if (p == NULL || mech->ulParameterLen != sizeof(*p))
		return CKR_MECHANISM_PARAM_INVALID;
	for (i = 0; i < P11_N(p11_digests); i++) {
		const struct p11_digest *d = &p11_digests[i];

		if (p->hashAlg != d->hash)
			continue;
		if (p->mgf != d->mgf || p->sLen != d->len || (fixed != NULL && strcmp(fixed, d->name) != 0))
			return CKR_MECHANISM_PARAM_INVALID;
		*digest = d->name;
		return CKR_OK;
	}
	return CKR_MECHANISM_PARAM_INVALID;
}

CK_RV p11_sign_init(struct p11_sess *s, const CK_MECHANISM *mech, const struct p11_obj *key)
{
	const struct p11_mech_def *d;
	struct p11_op op;
	CK_RV rv = CKR_OK;

	if (s->op.active)
		return CKR_OPERATION_ACTIVE;
	if ((d = mech_def(mech->mechanism)) == NULL || !mech_available(d))
		return CKR_MECHANISM_INVALID;
	if (key->cls != CKO_PRIVATE_KEY)
		return key->cls == CKO_PUBLIC_KEY ? CKR_KEY_FUNCTION_NOT_PERMITTED : CKR_KEY_HANDLE_INVALID;
	if ((d->fam == P11_RSA || d->fam == P11_PSS) ? key->ktype != CKK_RSA
	    : d->fam == P11_EC			     ? key->ktype != CKK_EC
						     : key->ktype != CKK_EC_EDWARDS)
		return CKR_KEY_TYPE_INCONSISTENT;

	memset(&op, 0, sizeof(op));
	op.mech = mech->mechanism;
	memcpy(op.key, key->name, sizeof(op.key));
	op.ktype = key->ktype;
	op.sig_len = key->sig_len;
	op.digest = d->digest;
	switch (d->fam) {
	case P11_RSA:
		op.padding = "PKCS1";
		break;
	case P11_PSS:
		op.padding = "PSS";
		if ((rv = pss_params(mech, d->digest, &op.digest)) != CKR_OK)
			return rv;
		break;
	case P11_EC:
		break;
	case P11_ED: {
		const struct p11_eddsa_params *ep = mech->pParameter;

		/* Pure Ed25519 only: no prehash, no context. */
		if (ep != NULL && (mech->ulParameterLen != sizeof(*ep) || ep->ph_flag || ep->context_len != 0))
			return CKR_MECHANISM_PARAM_INVALID;
		break;
	}
	}
	if (d->fam != P11_PSS && d->fam != P11_ED && mech->pParameter != NULL && mech->ulParameterLen != 0)
		return CKR_MECHANISM_PARAM_INVALID;
	if (d->digest != NULL) {
		op.md = EVP_get_digestbyname(d->digest);
		if (op.md == NULL || (op.mdctx = EVP_MD_CTX_new()) == NULL ||
		    !EVP_DigestInit_ex(op.mdctx, op.md, NULL)) {
			p11_op_clear(&op);
			return CKR_HOST_MEMORY;
		}
	}
	op.active = true;
	s->op = op;
	return CKR_OK;
}

CK_RV p11_sign_update(struct p11_sess *s, const CK_BYTE *data, CK_ULONG len)
{
	struct p11_op *op = &s->op;
	CK_RV rv = CKR_OK;

	if (!op->active)
		return CKR_OPERATION_NOT_INITIALIZED;
	op->multi = true;
	if (data == NULL && len > 0) {
		rv = CKR_ARGUMENTS_BAD;
	} else if (op->mdctx != NULL) {
		if (!EVP_DigestUpdate(op->mdctx, data, len))
			rv = CKR_FUNCTION_FAILED;
	} else if (len > P11_RAW_MAX - op->len) {
		rv = CKR_DATA_LEN_RANGE;
	} else if (len > 0) {
		uint8_t *b = realloc(op->buf, op->len + len);

		if (b == NULL) {
			rv = CKR_HOST_MEMORY;
		} else {
			op->buf = b;
			memcpy(b + op->len, data, len);
			op->len += len;
		}
	}
	/* An error ends the operation (v2.40 5.11). */
	if (rv != CKR_OK)
		p11_op_clear(op);
	return rv;
}

CK_RV p11_ecdsa_raw(const uint8_t *der, size_t len, uint8_t *out, size_t half)
{
	const unsigned char *q = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)len);
	const BIGNUM *r, *s;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (es == NULL || q != der + len)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_num_bytes(r) > (int)half || BN_num_bytes(s) > (int)half || BN_bn2binpad(r, out, (int)half) < 0 ||
	    BN_bn2binpad(s, out + half, (int)half) < 0)
		goto out;
	rv = CKR_OK;
out:
	ECDSA_SIG_free(es);
	return rv;
}

/* Finishes a detached op: in (the whole input for a raw mechanism, the
 * last part for a hashing one) becomes one Sign request. */
static CK_RV op_finish(struct p11_op *op, const CK_BYTE *in, size_t in_len, CK_BYTE *sig, CK_ULONG *sig_len)
{
	uint8_t md[EVP_MAX_MD_SIZE], out[1024];
	const uint8_t *data = in;
	size_t len = in_len, out_len = 0;
	const char *digest = op->digest;
	bool prehashed = true;
	unsigned mdlen = 0;
	enum kh_err r;
	size_t i;

	if (op->mdctx != NULL) {
		if ((in_len > 0 && !EVP_DigestUpdate(op->mdctx, in, in_len)) || !EVP_DigestFinal_ex(op->mdctx, md, &mdlen))
			return CKR_FUNCTION_FAILED;
		data = md;
		len = mdlen;
	} else if (op->mech == CKM_RSA_PKCS) {
		/* The caller's DigestInfo: keyholdd signs digests of known
		 * algorithms only, so the prefix must be one of them. */
		if (len > op->sig_len - 11)
			return CKR_DATA_LEN_RANGE;
		digest = NULL;
		for (i = 0; i < P11_N(p11_digests); i++) {
			const struct p11_digest *d = &p11_digests[i];

			if (len == d->prefix_len + d->len && memcmp(data, d->prefix, d->prefix_len) == 0) {
				digest = d->name;
				data += d->prefix_len;
				len = d->len;
				break;
			}
		}
		if (digest == NULL)
			return CKR_DATA_INVALID;
	} else if (op->mech == CKM_RSA_PKCS_PSS) {
		if (len != digest_by_name(digest)->len)
			return CKR_DATA_LEN_RANGE;
	} else if (op->mech == CKM_ECDSA) {
		/* The hash, named by its length. */
		digest = NULL;
		for (i = 0; i < P11_N(p11_digests); i++)
			if (len == p11_digests[i].len)
				digest = p11_digests[i].name;
		if (digest == NULL)
			return CKR_DATA_LEN_RANGE;
	} else {
		prehashed = false; /* Ed25519 signs the message */
	}
	r = p11_rpc_sign(op->key, digest, op->padding, prehashed, data, len, out, sizeof(out), &out_len);
	if (r != KH_OK)
		return p11_rv(r, true);
	if (op->ktype == CKK_EC) {
		if (p11_ecdsa_raw(out, out_len, sig, op->sig_len / 2) != CKR_OK)
			return CKR_DEVICE_ERROR;
		*sig_len = op->sig_len;
		return CKR_OK;
	}
	if (out_len != op->sig_len)
		return CKR_DEVICE_ERROR;
	memcpy(sig, out, out_len);
	*sig_len = (CK_ULONG)out_len;
	return CKR_OK;
}

/* The length query and CKR_BUFFER_TOO_SMALL keep the operation (v2.40
 * 5.2); everything else ends it: the op is detached under the lock and
 * finished without it. */
static CK_RV sign_common(struct p11_sess *s, bool final, const CK_BYTE *data, CK_ULONG len, CK_BYTE *sig,
			 CK_ULONG *sig_len)
{
	struct p11_op op;
	CK_RV rv;

	if (!s->op.active) {
		pthread_mutex_unlock(&p11.lock);
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (sig_len == NULL || (!final && data == NULL && len > 0)) {
		p11_op_clear(&s->op);
		pthread_mutex_unlock(&p11.lock);
		return CKR_ARGUMENTS_BAD;
	}
	if (!final && s->op.multi) {
		pthread_mutex_unlock(&p11.lock);
		return CKR_OPERATION_ACTIVE;
	}
	if (sig == NULL || *sig_len < s->op.sig_len) {
		rv = sig == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
		*sig_len = s->op.sig_len;
		pthread_mutex_unlock(&p11.lock);
		return rv;
	}
	op = s->op;
	memset(&s->op, 0, sizeof(s->op));
	pthread_mutex_unlock(&p11.lock);
	if (final)
		rv = op_finish(&op, op.mdctx != NULL ? NULL : op.buf, op.mdctx != NULL ? 0 : op.len, sig, sig_len);
	else
		rv = op_finish(&op, data, len, sig, sig_len);
	p11_op_clear(&op);
	return rv;
}

CK_RV p11_sign(struct p11_sess *s, const CK_BYTE *data, CK_ULONG len, CK_BYTE *sig, CK_ULONG *sig_len)
{
	return sign_common(s, false, data, len, sig, sig_len);
}

CK_RV p11_sign_final(struct p11_sess *s, CK_BYTE *sig, CK_ULONG *sig_len)
{
	return sign_common(s, true, NULL, 0, sig, sig_len);
}
