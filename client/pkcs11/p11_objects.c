/* p11_objects.c: what keyholdd lets this principal use, as PKCS#11
 * objects: a private and a public key object per key (ListKeys), a
 * certificate object per trustpoint with a certificate (ListTrustpoints,
 * ExportTrustpoint DER), with the attributes of PKCS#11 v2.40 sections
 * 4.4-4.9 and 2.1-2.3 of the Current Mechanisms (RSA, EC, EdDSA). The
 * public keys and certificates are parsed by OpenSSL only; nothing here
 * parses keyholdd's bytes by hand. Also the token's status (GetStatus). */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "p11.h"

static const CK_BBOOL p11_true = CK_TRUE, p11_false = CK_FALSE;

/* ---- attributes ---- */

static CK_RV attr_add(struct p11_obj *o, CK_ATTRIBUTE_TYPE t, const void *v, size_t len)
{
	struct p11_attr *a;

	if (o->n_attrs == o->cap_attrs) {
		size_t cap = o->cap_attrs ? o->cap_attrs * 2 : 32;

		a = realloc(o->attrs, cap * sizeof(*a));
		if (a == NULL)
			return CKR_HOST_MEMORY;
		o->attrs = a;
		o->cap_attrs = cap;
	}
	a = &o->attrs[o->n_attrs];
	a->type = t;
	a->len = (CK_ULONG)len;
	a->val = malloc(len ? len : 1);
	if (a->val == NULL)
		return CKR_HOST_MEMORY;
	if (len > 0)
		memcpy(a->val, v, len);
	o->n_attrs++;
	return CKR_OK;
}

static CK_RV attr_bool(struct p11_obj *o, CK_ATTRIBUTE_TYPE t, bool v)
{
	return attr_add(o, t, v ? &p11_true : &p11_false, sizeof(CK_BBOOL));
}

static CK_RV attr_ulong(struct p11_obj *o, CK_ATTRIBUTE_TYPE t, CK_ULONG v)
{
	return attr_add(o, t, &v, sizeof(v));
}

/* i2d output of an OpenSSL object as an attribute. */
#define ATTR_I2D_FN(fname, T, i2d)                                                     \
	static CK_RV fname(struct p11_obj *o, CK_ATTRIBUTE_TYPE t, const T *x)         \
	{                                                                              \
		unsigned char *d = NULL;                                               \
		int n = i2d(x, &d);                                                    \
		CK_RV rv = n > 0 ? attr_add(o, t, d, (size_t)n) : CKR_DEVICE_ERROR;    \
		OPENSSL_free(d);                                                       \
		return rv;                                                             \
	}
ATTR_I2D_FN(attr_oid, ASN1_OBJECT, i2d_ASN1_OBJECT)
ATTR_I2D_FN(attr_name, X509_NAME, i2d_X509_NAME)
ATTR_I2D_FN(attr_integer, ASN1_INTEGER, i2d_ASN1_INTEGER)
ATTR_I2D_FN(attr_spki, X509_PUBKEY, i2d_X509_PUBKEY)

/* A DER OCTET STRING around v (CKA_EC_POINT, Current Mechanisms 2.3.3). */
static CK_RV attr_octet_string(struct p11_obj *o, CK_ATTRIBUTE_TYPE t, const uint8_t *v, size_t len)
{
	uint8_t buf[4 + 256];
	size_t h = 0;

	if (len > 255)
		return CKR_DEVICE_ERROR;
	buf[h++] = 0x04;
	if (len >= 128)
		buf[h++] = 0x81;
	buf[h++] = (uint8_t)len;
	memcpy(buf + h, v, len);
	return attr_add(o, t, buf, h + len);
}

const struct p11_attr *p11_obj_attr(const struct p11_obj *o, CK_ATTRIBUTE_TYPE t)
{
	size_t i;

	for (i = 0; i < o->n_attrs; i++)
		if (o->attrs[i].type == t)
			return &o->attrs[i];
	return NULL;
}

void p11_objs_free(struct p11_obj *o)
{
	while (o != NULL) {
		struct p11_obj *next = o->next;
		size_t i;

		for (i = 0; i < o->n_attrs; i++)
			free(o->attrs[i].val);
		free(o->attrs);
		free(o);
		o = next;
	}
}

static struct p11_obj *obj_new(CK_OBJECT_CLASS cls, const char *name)
{
	struct p11_obj *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	o->cls = cls;
	memcpy(o->name, name, strnlen(name, P11_NAME_MAX));
	if (attr_ulong(o, CKA_CLASS, cls) != CKR_OK || attr_bool(o, CKA_TOKEN, true) != CKR_OK ||
	    attr_bool(o, CKA_PRIVATE, false) != CKR_OK || attr_bool(o, CKA_MODIFIABLE, false) != CKR_OK ||
	    attr_bool(o, CKA_COPYABLE, false) != CKR_OK || attr_bool(o, CKA_DESTROYABLE, false) != CKR_OK ||
	    attr_add(o, CKA_LABEL, name, strlen(name)) != CKR_OK) {
		p11_objs_free(o);
		return NULL;
	}
	return o;
}

/* The private key attributes that never leave the token (PKCS#11 v2.40
 * 4.9, table 36 note 6 / Current Mechanisms 2.1.3, 2.3.4). */
static bool attr_sensitive(CK_ATTRIBUTE_TYPE t)
{
	switch (t) {
	case CKA_VALUE:
	case CKA_PRIVATE_EXPONENT:
	case CKA_PRIME_1:
	case CKA_PRIME_2:
	case CKA_EXPONENT_1:
	case CKA_EXPONENT_2:
	case CKA_COEFFICIENT:
		return true;
	default:
		return false;
	}
}

/* C_GetAttributeValue's rules (v2.40 5.7): every attribute is processed;
 * a sensitive one, an unknown one and a too-small buffer each set
 * ulValueLen to CK_UNAVAILABLE_INFORMATION and give their code. */
CK_RV p11_obj_get_attrs(const struct p11_obj *o, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_RV rv = CKR_OK;
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		const struct p11_attr *a;

		if (o->cls == CKO_PRIVATE_KEY && attr_sensitive(tmpl[i].type)) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_SENSITIVE;
			continue;
		}
		a = p11_obj_attr(o, tmpl[i].type);
		if (a == NULL) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (tmpl[i].pValue == NULL) {
			tmpl[i].ulValueLen = a->len;
		} else if (tmpl[i].ulValueLen < a->len) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_BUFFER_TOO_SMALL;
		} else {
			memcpy(tmpl[i].pValue, a->val, a->len);
			tmpl[i].ulValueLen = a->len;
		}
	}
	return rv;
}

bool p11_obj_match(const struct p11_obj *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		const struct p11_attr *a = p11_obj_attr(o, tmpl[i].type);

		if (a == NULL || a->len != tmpl[i].ulValueLen ||
		    (a->len > 0 && (tmpl[i].pValue == NULL || memcmp(a->val, tmpl[i].pValue, a->len) != 0)))
			return false;
	}
	return true;
}

struct p11_obj *p11_obj_find(CK_OBJECT_HANDLE h)
{
	struct p11_obj *o;

	for (o = p11.objs; o != NULL; o = o->next)
		if (o->h == h)
			return o;
	return NULL;
}

/* ---- keys ---- */

/* The attributes both key objects of one key carry. */
static CK_RV key_common(struct p11_obj *o, CK_KEY_TYPE kt, const uint8_t *id, size_t id_len, const uint8_t *spki,
			size_t spki_len)
{
	CK_RV rv;

	o->ktype = kt;
	if ((rv = attr_ulong(o, CKA_KEY_TYPE, kt)) != CKR_OK || (rv = attr_add(o, CKA_ID, id, id_len)) != CKR_OK ||
	    (rv = attr_add(o, CKA_SUBJECT, NULL, 0)) != CKR_OK || (rv = attr_add(o, CKA_START_DATE, NULL, 0)) != CKR_OK ||
	    (rv = attr_add(o, CKA_END_DATE, NULL, 0)) != CKR_OK || (rv = attr_bool(o, CKA_DERIVE, false)) != CKR_OK ||
	    (rv = attr_bool(o, CKA_LOCAL, true)) != CKR_OK ||
	    (rv = attr_ulong(o, CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION)) != CKR_OK ||
	    (rv = attr_add(o, CKA_PUBLIC_KEY_INFO, spki, spki_len)) != CKR_OK)
		return rv;
	if (o->cls == CKO_PRIVATE_KEY) {
		if ((rv = attr_bool(o, CKA_SENSITIVE, true)) != CKR_OK || (rv = attr_bool(o, CKA_DECRYPT, false)) != CKR_OK ||
		    (rv = attr_bool(o, CKA_SIGN, true)) != CKR_OK || (rv = attr_bool(o, CKA_SIGN_RECOVER, false)) != CKR_OK ||
		    (rv = attr_bool(o, CKA_UNWRAP, false)) != CKR_OK ||
		    (rv = attr_bool(o, CKA_EXTRACTABLE, false)) != CKR_OK ||
		    (rv = attr_bool(o, CKA_ALWAYS_SENSITIVE, true)) != CKR_OK ||
		    (rv = attr_bool(o, CKA_NEVER_EXTRACTABLE, true)) != CKR_OK ||
		    (rv = attr_bool(o, CKA_WRAP_WITH_TRUSTED, false)) != CKR_OK ||
		    (rv = attr_bool(o, CKA_ALWAYS_AUTHENTICATE, false)) != CKR_OK)
			return rv;
	} else {
		if ((rv = attr_bool(o, CKA_ENCRYPT, false)) != CKR_OK || (rv = attr_bool(o, CKA_VERIFY, true)) != CKR_OK ||
		    (rv = attr_bool(o, CKA_VERIFY_RECOVER, false)) != CKR_OK ||
		    (rv = attr_bool(o, CKA_WRAP, false)) != CKR_OK || (rv = attr_bool(o, CKA_TRUSTED, false)) != CKR_OK)
			return rv;
	}
	return CKR_OK;
}

static CK_RV bn_attr(struct p11_obj *o, CK_ATTRIBUTE_TYPE t, const EVP_PKEY *pk, const char *param)
{
	BIGNUM *bn = NULL;
	uint8_t buf[1024];
	int n;

	if (!EVP_PKEY_get_bn_param(pk, param, &bn) || BN_num_bytes(bn) > (int)sizeof(buf)) {
		BN_free(bn);
		return CKR_DEVICE_ERROR;
	}
	n = BN_bn2bin(bn, buf);
	BN_free(bn);
	return attr_add(o, t, buf, (size_t)n);
}

/* The type's public attributes on o (either key object). */
static CK_RV key_public_attrs(struct p11_obj *o, EVP_PKEY *pk)
{
	uint8_t pt[256];
	size_t ptlen = 0;
	CK_RV rv;

	switch (o->ktype) {
	case CKK_RSA:
		if ((rv = bn_attr(o, CKA_MODULUS, pk, OSSL_PKEY_PARAM_RSA_N)) != CKR_OK ||
		    (rv = bn_attr(o, CKA_PUBLIC_EXPONENT, pk, OSSL_PKEY_PARAM_RSA_E)) != CKR_OK)
			return rv;
		if (o->cls == CKO_PUBLIC_KEY)
			return attr_ulong(o, CKA_MODULUS_BITS, o->bits);
		return CKR_OK;
	case CKK_EC: {
		char group[64];
		int nid;

		if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) ||
		    (nid = OBJ_sn2nid(group)) == NID_undef)
			return CKR_DEVICE_ERROR;
		/* CKA_EC_PARAMS: DER ECParameters, the namedCurve choice. */
		if ((rv = attr_oid(o, CKA_EC_PARAMS, OBJ_nid2obj(nid))) != CKR_OK)
			return rv;
		if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &ptlen))
			return CKR_DEVICE_ERROR;
		return attr_octet_string(o, CKA_EC_POINT, pt, ptlen);
	}
	case CKK_EC_EDWARDS: {
		/* id-Ed25519 (RFC 8410), the OID form PKCS#11 3.0 allows. */
		static const uint8_t ed25519_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

		ptlen = sizeof(pt);
		if ((rv = attr_add(o, CKA_EC_PARAMS, ed25519_oid, sizeof(ed25519_oid))) != CKR_OK)
			return rv;
		if (!EVP_PKEY_get_raw_public_key(pk, pt, &ptlen))
			return CKR_DEVICE_ERROR;
		return attr_octet_string(o, CKA_EC_POINT, pt, ptlen);
	}
	default:
		return CKR_DEVICE_ERROR;
	}
}

CK_RV p11_key_objs(const char *name, const uint8_t *id, size_t id_len, const uint8_t *spki, size_t spki_len,
		      struct p11_obj **list)
{
	const unsigned char *q = spki;
	EVP_PKEY *pk = NULL;
	struct p11_obj *o[2] = { NULL, NULL };
	CK_KEY_TYPE kt;
	CK_ULONG bits, sig_len;
	CK_RV rv = CKR_OK;
	int i;

	pk = d2i_PUBKEY(NULL, &q, (long)spki_len);
	if (pk == NULL || q != spki + spki_len) {
		p11_dbg("key %s: keyholdd's public key does not parse", name);
		goto out;
	}
	bits = (CK_ULONG)EVP_PKEY_get_bits(pk);
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		kt = CKK_RSA;
		sig_len = (bits + 7) / 8;
		break;
	case EVP_PKEY_EC:
		kt = CKK_EC;
		sig_len = 2 * ((bits + 7) / 8);
		break;
	case EVP_PKEY_ED25519:
		kt = CKK_EC_EDWARDS;
		sig_len = 64;
		break;
	default:
		goto out;
	}
	for (i = 0; i < 2; i++) {
		o[i] = obj_new(i == 0 ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY, name);
		if (o[i] == NULL) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		o[i]->bits = bits;
		o[i]->sig_len = sig_len;
		if ((rv = key_common(o[i], kt, id, id_len, spki, spki_len)) != CKR_OK ||
		    (rv = key_public_attrs(o[i], pk)) != CKR_OK)
			goto out;
	}
	o[0]->next = o[1];
	o[1]->next = *list;
	*list = o[0];
	o[0] = o[1] = NULL;
out:
	p11_objs_free(o[0]);
	p11_objs_free(o[1]);
	EVP_PKEY_free(pk);
	return rv;
}

/* ---- certificates ---- */

CK_RV p11_cert_obj(const char *tp, const struct p11_attr *id, const uint8_t *der, size_t len, struct p11_obj **list)
{
	const unsigned char *q = der;
	X509 *x = d2i_X509(NULL, &q, (long)len);
	struct p11_obj *o = NULL;
	CK_RV rv = CKR_OK;

	if (x == NULL || q != der + len) {
		p11_dbg("trustpoint %s: the certificate does not parse", tp);
		goto out;
	}
	if ((o = obj_new(CKO_CERTIFICATE, tp)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if ((rv = attr_ulong(o, CKA_CERTIFICATE_TYPE, CKC_X_509)) != CKR_OK ||
	    (rv = attr_bool(o, CKA_TRUSTED, false)) != CKR_OK ||
	    (rv = attr_ulong(o, CKA_CERTIFICATE_CATEGORY, 0)) != CKR_OK ||
	    (rv = attr_add(o, CKA_ID, id->val, id->len)) != CKR_OK ||
	    (rv = attr_add(o, CKA_VALUE, der, len)) != CKR_OK ||
	    (rv = attr_add(o, CKA_START_DATE, NULL, 0)) != CKR_OK || (rv = attr_add(o, CKA_END_DATE, NULL, 0)) != CKR_OK ||
	    (rv = attr_add(o, CKA_URL, NULL, 0)) != CKR_OK ||
	    (rv = attr_name(o, CKA_SUBJECT, X509_get_subject_name(x))) != CKR_OK ||
	    (rv = attr_name(o, CKA_ISSUER, X509_get_issuer_name(x))) != CKR_OK ||
	    (rv = attr_integer(o, CKA_SERIAL_NUMBER, X509_get0_serialNumber(x))) != CKR_OK ||
	    (rv = attr_spki(o, CKA_PUBLIC_KEY_INFO, X509_get_X509_PUBKEY(x))) != CKR_OK)
		goto out;
	o->next = *list;
	*list = o;
	o = NULL;
out:
	p11_objs_free(o);
	X509_free(x);
	return rv;
}

/* ---- status and refresh ---- */

static void pad_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static CK_VERSION version_of(const char *s)
{
	CK_VERSION v = { 0, 0 };
	char *end = NULL;
	unsigned long a = strtoul(s, &end, 10), b = 0;

	if (end != NULL && *end == '.')
		b = strtoul(end + 1, NULL, 10);
	v.major = (CK_BYTE)(a > 255 ? 255 : a);
	v.minor = (CK_BYTE)(b > 255 ? 255 : b);
	return v;
}

CK_RV p11_status(void)
{
	struct p11_token t;
	kh_msg *req = NULL, *resp = NULL, *tok = NULL;
	enum kh_err r;

	memset(&t, 0, sizeof(t));
	if (kh_request_new("GetStatus", &req) != KH_OK)
		return CKR_HOST_MEMORY;
	r = p11_rpc(req, &resp);
	kh_msg_free(req);
	if (r == KH_E_UNAVAILABLE) {
		pthread_mutex_lock(&p11.lock);
		p11.tok.present = false;
		pthread_mutex_unlock(&p11.lock);
		return CKR_TOKEN_NOT_PRESENT;
	}
	/* Anyone who reaches the socket may ask (a principal without a role
	 * is refused: it gets the defaults and an empty token). */
	t.present = true;
	pad_copy(t.label, sizeof(t.label), "keyhold");
	pad_copy(t.manufacturer, sizeof(t.manufacturer), "keyhold");
	pad_copy(t.model, sizeof(t.model), "keyholdd");
	t.max_sessions = CK_EFFECTIVELY_INFINITE;
	if (r == KH_OK && kh_msg_item(resp, "token", 0, &tok) == KH_OK) {
		const char *label = kh_msg_get_str(tok, "label");

		if (label[0] != '\0')
			pad_copy(t.label, sizeof(t.label), label);
		pad_copy(t.serial, sizeof(t.serial), kh_msg_get_str(tok, "serial"));
		t.hw = version_of(kh_msg_get_str(tok, "hw_version"));
		t.fw = version_of(kh_msg_get_str(resp, "version"));
	}
	kh_msg_free(resp);
	pthread_mutex_lock(&p11.lock);
	t.sessions = p11.n_sess;
	p11.tok = t;
	pthread_mutex_unlock(&p11.lock);
	return CKR_OK;
}

/* The token mechanism id keyholdd uses for each of ours (GetCapabilities
 * lists the token's own, with key sizes). */
static void caps_read(const kh_msg *resp, struct p11_mech_avail *m)
{
	size_t i, n = kh_msg_count(resp, "mechanisms");

	memset(m, 0, sizeof(*m));
	for (i = 0; i < n; i++) {
		kh_msg *x = NULL;
		uint64_t id;
		CK_ULONG lo, hi;

		if (kh_msg_item(resp, "mechanisms", i, &x) != KH_OK)
			continue;
		id = kh_msg_get_uint(x, "id");
		lo = (CK_ULONG)kh_msg_get_uint(x, "min_key");
		hi = (CK_ULONG)kh_msg_get_uint(x, "max_key");
		if (id == CKM_RSA_PKCS) {
			m->rsa = true;
			m->rsa_min = lo;
			m->rsa_max = hi;
		} else if (id == CKM_RSA_PKCS_PSS) {
			m->pss = true;
		} else if (id == CKM_ECDSA) {
			m->ec = true;
			m->ec_min = lo;
			m->ec_max = hi;
		} else if (id == CKM_EDDSA) {
			m->ed = true;
		}
	}
	m->pss = m->pss && m->rsa && kh_msg_get_bool(resp, "pss");
}

/* The keys of a ListKeysResponse as objects, prepended to *list. */
static CK_RV keys_read(const kh_msg *resp, struct p11_obj **list)
{
	size_t i, n = kh_msg_count(resp, "keys");
	CK_RV rv = CKR_OK;

	for (i = 0; i < n && rv == CKR_OK; i++) {
		kh_msg *k = NULL;
		const uint8_t *id = NULL, *spki = NULL;
		size_t id_len = 0, spki_len = 0;
		const char *name;
		uint8_t derived[32];

		if (kh_msg_item(resp, "keys", i, &k) != KH_OK || kh_msg_get_bytes(k, "id", &id, &id_len) != KH_OK ||
		    kh_msg_get_bytes(k, "spki", &spki, &spki_len) != KH_OK)
			continue;
		name = kh_msg_get_str(k, "name");
		if (strlen(name) > P11_NAME_MAX || spki_len == 0)
			continue;
		if (id_len == 0) {
			/* The token's CKA_ID is keyhold's; a key without one gets
			 * a stable id from its public key. */
			if (!EVP_Digest(spki, spki_len, derived, NULL, EVP_sha1(), NULL))
				continue;
			id = derived;
			id_len = 20;
		}
		rv = p11_key_objs(name, id, id_len, spki, spki_len, list);
	}
	return rv;
}

static const struct p11_obj *list_key(const struct p11_obj *l, const char *name)
{
	for (; l != NULL; l = l->next)
		if (l->cls == CKO_PRIVATE_KEY && strcmp(l->name, name) == 0)
			return l;
	return NULL;
}

/* Certificates of the trustpoints whose key is in *list. */
static CK_RV certs_read(const kh_msg *tps, struct p11_obj **list)
{
	size_t i, n = kh_msg_count(tps, "trustpoints");
	CK_RV rv = CKR_OK;

	for (i = 0; i < n && rv == CKR_OK; i++) {
		kh_msg *tp = NULL, *req = NULL, *resp = NULL;
		const struct p11_obj *key;
		const uint8_t *der = NULL;
		size_t len = 0;
		const char *name;

		if (kh_msg_item(tps, "trustpoints", i, &tp) != KH_OK || !kh_msg_has(tp, "cert"))
			continue;
		name = kh_msg_get_str(tp, "name");
		if ((key = list_key(*list, kh_msg_get_str(tp, "key"))) == NULL || strlen(name) > P11_NAME_MAX)
			continue;
		if (kh_request_new("ExportTrustpoint", &req) != KH_OK || kh_msg_set_str(req, "name", name) != KH_OK ||
		    kh_msg_set_enum(req, "format", "CERT_FORMAT_DER") != KH_OK) {
			kh_msg_free(req);
			return CKR_HOST_MEMORY;
		}
		if (p11_rpc(req, &resp) == KH_OK && kh_msg_get_bytes(resp, "data", &der, &len) == KH_OK && len > 0)
			rv = p11_cert_obj(name, p11_obj_attr(key, CKA_ID), der, len, list);
		kh_msg_free(req);
		kh_msg_free(resp);
	}
	return rv;
}

/* One RPC without fields; KH_E_PERMISSION_DENIED (no role for it) is an
 * empty answer: *resp NULL and KH_OK. */
static enum kh_err rpc_simple(const char *method, kh_msg **resp)
{
	kh_msg *req = NULL;
	enum kh_err r;

	*resp = NULL;
	if (kh_request_new(method, &req) != KH_OK)
		return KH_E_RESOURCE_EXHAUSTED;
	r = p11_rpc(req, resp);
	kh_msg_free(req);
	if (r == KH_E_PERMISSION_DENIED) {
		*resp = NULL;
		return KH_OK;
	}
	return r;
}

CK_RV p11_refresh(bool force)
{
	struct p11_obj *list = NULL, *o, *old;
	struct p11_mech_avail m;
	kh_msg *caps = NULL, *keys = NULL, *tps = NULL;
	enum kh_err r;
	CK_RV rv;
	uint64_t now = p11_now_ms();

	pthread_mutex_lock(&p11.lock);
	/* Fresh enough, or another thread is reading it now (threads opening
	 * sessions together then use the current view instead of all asking
	 * keyholdd the same questions). */
	if (!force && p11.refreshed_ms != 0 && p11.tok.present &&
	    (now - p11.refreshed_ms < P11_REFRESH_MS || p11.refreshing)) {
		pthread_mutex_unlock(&p11.lock);
		return CKR_OK;
	}
	p11.refreshing = true;
	pthread_mutex_unlock(&p11.lock);
	if ((rv = p11_status()) != CKR_OK)
		goto out;
	memset(&m, 0, sizeof(m));
	if ((r = rpc_simple("GetCapabilities", &caps)) != KH_OK || (r = rpc_simple("ListKeys", &keys)) != KH_OK ||
	    (r = rpc_simple("ListTrustpoints", &tps)) != KH_OK) {
		rv = p11_rv(r, false);
		goto out;
	}
	if (caps != NULL)
		caps_read(caps, &m);
	if (keys != NULL && (rv = keys_read(keys, &list)) != CKR_OK)
		goto out;
	if (tps != NULL && (rv = certs_read(tps, &list)) != CKR_OK)
		goto out;

	/* Handles stay those of the same object (class and name) from before,
	 * so handles an application holds survive a refresh. */
	pthread_mutex_lock(&p11.lock);
	for (o = list; o != NULL; o = o->next) {
		for (old = p11.objs; old != NULL; old = old->next)
			if (old->cls == o->cls && strcmp(old->name, o->name) == 0)
				break;
		o->h = old != NULL ? old->h : ++p11.next_obj;
	}
	old = p11.objs;
	p11.objs = list;
	list = old;
	p11.mechs = m;
	p11.refreshed_ms = p11_now_ms();
	pthread_mutex_unlock(&p11.lock);
	rv = CKR_OK;
out:
	pthread_mutex_lock(&p11.lock);
	p11.refreshing = false;
	pthread_mutex_unlock(&p11.lock);
	p11_objs_free(list);
	kh_msg_free(caps);
	kh_msg_free(keys);
	kh_msg_free(tps);
	return rv;
}
