/* sign.c: signatures made in the token: RSA PKCS#1 v1.5 (DigestInfo added
 * here, CKM_RSA_PKCS), RSA-PSS (CKM_RSA_PKCS_PSS on the digest), ECDSA
 * (CKM_ECDSA, r||s turned into DER) and Ed25519 (CKM_EDDSA, pure). */
#include <stdlib.h>
#include <string.h>

#include "hsm_int.h"
#include "kh_util.h"
#include "kh_log.h"

/* DigestInfo DER prefixes, RFC 8017 §9.2 note 1. */
static const uint8_t di_md5[] = { 0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7,
				  0x0d, 0x02, 0x05, 0x05, 0x00, 0x04, 0x10 };
static const uint8_t di_sha1[] = { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
				   0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14 };
static const uint8_t di_sha224[] = { 0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
				     0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c };
static const uint8_t di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
				     0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const uint8_t di_sha384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
				     0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
static const uint8_t di_sha512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
				     0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };

enum kh_err hsm_digest_spec(enum kh_digest d, struct hsm_digest_spec *out)
{
	struct hsm_digest_spec ds = { NULL, 0, 0, 0 };
	int r = KH_OK;

	switch (d) {
	case KH_DIGEST_MD5:
		ds = (struct hsm_digest_spec){ di_md5, sizeof(di_md5), CKM_MD5, 0 };
		break;
	case KH_DIGEST_SHA1:
		ds = (struct hsm_digest_spec){ di_sha1, sizeof(di_sha1), CKM_SHA_1, CKG_MGF1_SHA1 };
		break;
	case KH_DIGEST_SHA224:
		ds = (struct hsm_digest_spec){ di_sha224, sizeof(di_sha224), CKM_SHA224, CKG_MGF1_SHA224 };
		break;
	case KH_DIGEST_SHA256:
		ds = (struct hsm_digest_spec){ di_sha256, sizeof(di_sha256), CKM_SHA256, CKG_MGF1_SHA256 };
		break;
	case KH_DIGEST_SHA384:
		ds = (struct hsm_digest_spec){ di_sha384, sizeof(di_sha384), CKM_SHA384, CKG_MGF1_SHA384 };
		break;
	case KH_DIGEST_SHA512:
		ds = (struct hsm_digest_spec){ di_sha512, sizeof(di_sha512), CKM_SHA512, CKG_MGF1_SHA512 };
		break;
	default:
		KH_ENSURE(0, KH_E_INVALID_ARGUMENT);
	}
	*out = ds;
out:
	return r;
}

/* One half of r||s as the body of a DER INTEGER: leading zero bytes
 * dropped (one kept for zero), a 0x00 in front when the top bit is set. */
static size_t hsm_der_int(const uint8_t *v, size_t n, uint8_t *out)
{
	size_t i = 0, o = 0;

	while (i + 1 < n && v[i] == 0)
		i++;
	out[o++] = 0x02;
	out[o++] = (uint8_t)(n - i + (v[i] & 0x80 ? 1 : 0));
	if (v[i] & 0x80)
		out[o++] = 0x00;
	memcpy(out + o, v + i, n - i);
	return o + n - i;
}

/* PKCS#11 gives r||s; X.509 and TLS want ECDSA-Sig-Value (SEQUENCE of two
 * INTEGERs). Encoded here directly: per request, OpenSSL's BIGNUM and
 * ASN.1 round trip cost more than the rest of keyholdd's work on it. */
enum kh_err hsm_ecdsa_der(const uint8_t *raw, size_t len, uint8_t **der, size_t *der_len)
{
	uint8_t body[2 * (2 + 1 + 66)];
	size_t half = len / 2, blen, hdr;
	uint8_t *buf;

	/* P-256, P-384, P-521 halves (32, 48, 66 bytes) and anything between:
	 * every INTEGER then fits a one-byte length. */
	if (len == 0 || len % 2 != 0 || half > 66)
		return KH_E_INTERNAL;
	blen = hsm_der_int(raw, half, body);
	blen += hsm_der_int(raw + half, half, body + blen);
	hdr = blen < 0x80 ? 2 : 3;
	buf = malloc(hdr + blen);
	if (buf == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	buf[0] = 0x30;
	if (hdr == 2) {
		buf[1] = (uint8_t)blen;
	} else {
		buf[1] = 0x81;
		buf[2] = (uint8_t)blen;
	}
	memcpy(buf + hdr, body, blen);
	*der = buf;
	*der_len = hdr + blen;
	return KH_OK;
}

enum kh_err hsm_sign_prepare(CK_KEY_TYPE kt, enum kh_digest digest, enum kh_padding pad, const uint8_t *in,
			     size_t in_len, CK_MECHANISM *mech_out, CK_RSA_PKCS_PSS_PARAMS *pss_out, uint8_t *buf,
			     size_t bufsz, const uint8_t **data, size_t *data_len, struct kh_errbuf *e)
{
	struct hsm_digest_spec ds = { NULL, 0, 0, 0 };
	CK_MECHANISM mech;
	CK_RSA_PKCS_PSS_PARAMS pss;
	const uint8_t *d = in;
	size_t dlen = in_len;
	int r = KH_OK;

	memset(&mech, 0, sizeof(mech));
	memset(&pss, 0, sizeof(pss));
	if (kt == CKK_EC_EDWARDS) {
		KH_ENSURE(digest == KH_DIGEST_DEFAULT,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT,
				     "Ed25519 signs the message itself (PureEdDSA); do not pass a digest"));
		KH_ENSURE(pad == KH_PAD_DEFAULT,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "padding applies to RSA keys only"));
		mech.mechanism = CKM_EDDSA;
	} else {
		KH_ENSURE(hsm_digest_spec(digest, &ds) == KH_OK,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "a digest algorithm is required"));
		KH_ENSURE(in_len == kh_digest_len(digest),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "a %s digest is %zu bytes, not %zu",
				     kh_digest_name(digest), kh_digest_len(digest), in_len));
		if (kt == CKK_EC) {
			KH_ENSURE(pad == KH_PAD_DEFAULT,
				  kh_err_set(e, KH_E_INVALID_ARGUMENT, "padding applies to RSA keys only"));
			mech.mechanism = CKM_ECDSA;
		} else {
			KH_ENSURE(kt == CKK_RSA, kh_err_set(e, KH_E_UNIMPLEMENTED, "this key type cannot sign"));
			if (pad == KH_PAD_PSS) {
				KH_ENSURE(ds.mgf != 0,
					  kh_err_set(e, KH_E_INVALID_ARGUMENT, "PSS is not defined with MD5"));
				/* MGF1 with the same hash, salt = hash length (DESIGN §8). */
				pss.hashAlg = ds.hash;
				pss.mgf = ds.mgf;
				pss.sLen = in_len;
				mech.mechanism = CKM_RSA_PKCS_PSS;
				mech.pParameter = pss_out;
				mech.ulParameterLen = sizeof(*pss_out);
			} else {
				KH_ENSURE(ds.di_len <= bufsz && in_len <= bufsz - ds.di_len,
					  kh_err_set(e, KH_E_INTERNAL, "digest too long"));
				memcpy(buf, ds.di, ds.di_len);
				memcpy(buf + ds.di_len, in, in_len);
				mech.mechanism = CKM_RSA_PKCS;
				d = buf;
				dlen = ds.di_len + in_len;
			}
		}
	}
	if (mech.mechanism == CKM_RSA_PKCS_PSS)
		*pss_out = pss;
	*mech_out = mech;
	*data = d;
	*data_len = dlen;
out:
	return r;
}

/* One signature on session s. *rv_out is the last CK_RV for the caller's
 * retry decision. */
static enum kh_err hsm_sign_on(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_KEY_TYPE kt,
			       size_t sig_len, enum kh_digest digest, enum kh_padding pad, const uint8_t *in,
			       size_t in_len, uint8_t **sig, size_t *sig_out, CK_RV *rv_out,
			       struct kh_errbuf *e)
{
	int r = KH_OK;
	CK_MECHANISM mech;
	CK_RSA_PKCS_PSS_PARAMS pss;
	uint8_t dibuf[96];
	const uint8_t *data = NULL;
	size_t data_len = 0;
	uint8_t *out = NULL;
	CK_ULONG olen;
	CK_RV rv = CKR_OK;
	uint64_t t0;

	KH_TRY(hsm_sign_prepare(kt, digest, pad, in, in_len, &mech, &pss, dibuf, sizeof(dibuf), &data,
				&data_len, e));
	t0 = kh_now_mono_us();
	rv = h->f->C_SignInit(s, &mech, key);
	if (rv != CKR_OK)
		hsm_observe(h, "sign", mech.mechanism, t0, rv);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_SignInit", NULL));
	olen = sig_len ? sig_len : 1024;
	out = malloc(olen);
	KH_ENSURE(out != NULL, KH_E_RESOURCE_EXHAUSTED);
	rv = h->f->C_Sign(s, (CK_BYTE_PTR)(uintptr_t)data, data_len, out, &olen);
	if (rv == CKR_BUFFER_TOO_SMALL) {
		/* The operation stays active (PKCS#11 2.40 §5.2): finish it. */
		uint8_t *bigger = realloc(out, olen);

		if (bigger == NULL) {
			h->f->C_Sign(s, (CK_BYTE_PTR)(uintptr_t)data, data_len, NULL, &olen);
			rv = CKR_HOST_MEMORY;
		} else {
			out = bigger;
			rv = h->f->C_Sign(s, (CK_BYTE_PTR)(uintptr_t)data, data_len, out, &olen);
		}
	}
	hsm_observe(h, "sign", mech.mechanism, t0, rv);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_Sign", NULL));
	if (kt == CKK_EC) {
		KH_TRY(hsm_ecdsa_der(out, olen, sig, sig_out));
	} else {
		*sig = out;
		*sig_out = olen;
		out = NULL;
	}
out:
	*rv_out = rv;
	free(out);
	return r;
}

enum kh_err hsm_sign(struct hsm *h, const struct hsm_sign_op *op, uint8_t **sig, size_t *sig_len,
		     struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_sess s;
	struct hsm_key k;
	uint8_t id0[sizeof(k.id)];
	size_t id0_len = 0;
	CK_RV rv;
	int attempt;

	for (attempt = 0;; attempt++) {
		rv = CKR_OK;
		KH_TRY(hsm_begin(h, &s, e));
		r = hsm_key_lookup(h, s.h, op->key, &k, e);
		if (r == KH_OK && attempt == 0) {
			memcpy(id0, k.id, k.id_len);
			id0_len = k.id_len;
		} else if (r == KH_OK && (k.id_len != id0_len || memcmp(k.id, id0, id0_len) != 0)) {
			/* The stale handle was a key deleted and made again under
			 * this name (another node on the same token): the caller
			 * holds the old key's type and public key, so nothing is
			 * signed with the new one; the cache now has it. */
			log_info("key '%s' was replaced on the token since it was cached", op->key);
			r = kh_err_set(e, KH_E_ABORTED,
				       "key '%s' was deleted and generated again on the token since this node cached it; "
				       "send the request again",
				       op->key);
			hsm_key_copy_release(&k);
		}
		if (r == KH_OK) {
			r = hsm_sign_on(h, s.h, k.priv, k.ck_type, k.sig_len, op->digest, op->padding, op->in,
					op->in_len, sig, sig_len, &rv, e);
			hsm_key_copy_release(&k);
		}
		hsm_end(h, &s, rv);
		if (r == KH_OK || rv == CKR_OK || attempt > 0)
			break;
		if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID)
			hsm_key_forget(h, op->key);
		if (!hsm_rv_retry(h, rv))
			break;
		kh_err_clear(e);
	}
	r = hsm_gone_err(h, r, rv, e);
out:
	return r;
}

enum kh_err hsm_session_key_sign(struct hsm *h, struct hsm_session_key *k, enum kh_digest digest,
				 const uint8_t *in, size_t in_len, uint8_t **sig, size_t *sig_len,
				 struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_sess s;
	CK_RV rv = CKR_OK;

	KH_TRY(hsm_begin(h, &s, e));
	r = hsm_sign_on(h, s.h, k->priv, k->ck_type, k->sig_len, digest, KH_PAD_DEFAULT, in, in_len, sig,
			sig_len, &rv, e);
	hsm_end(h, &s, rv);
out:
	return r;
}
