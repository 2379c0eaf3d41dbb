/* keymgmt.c: KEYMGMT for keyhold keys (RSA, RSA-PSS, EC, Ed25519). A key is a name
 * at keyholdd plus its public key; public parameters are answered by the
 * default provider's copy of the public key, and only the public key is
 * exported (EVP_PKEY_eq, X509_check_private_key). No private part exists
 * here: has(PRIVATE) says keyholdd holds it. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "kp.h"

static void km_free(void *kd)
{
	kp_key_unref(kd);
}

/* The reference is a struct kp_key * of this provider (store, decoder). */
static void *km_load(const void *ref, size_t ref_sz)
{
	struct kp_key *k;

	if (ref == NULL || ref_sz != sizeof(k))
		return NULL;
	memcpy(&k, ref, sizeof(k));
	kp_key_ref(k);
	return k;
}

static void *km_dup(const void *kd, int selection)
{
	struct kp_key *k = (struct kp_key *)(uintptr_t)kd;

	(void)selection;
	kp_key_ref(k);
	return k;
}

/* A named key's private half is in keyholdd's token; an imported one has
 * none. */
static int km_has(const void *kd, int selection)
{
	const struct kp_key *k = kd;

	if (k == NULL || k->pub == NULL)
		return 0;
	return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0 || k->name[0] != '\0';
}

static int km_match(const void *a, const void *b, int selection)
{
	const struct kp_key *x = a, *y = b;

	(void)selection;
	if (x->spki == NULL || y->spki == NULL)
		return 0;
	if (x->spki_len == y->spki_len && memcmp(x->spki, y->spki, x->spki_len) == 0)
		return 1;
	/* The same key encoded otherwise (an RSA-PSS key's parameters):
	 * the default provider compares the key values. */
	return EVP_PKEY_eq(x->pub, y->pub) == 1;
}

static int km_get_params(void *kd, OSSL_PARAM params[])
{
	struct kp_key *k = kd;

	if (k->pub == NULL)
		return 0;

	/* Everything public comes from the public key; private parameters
	 * stay unset. */
	return EVP_PKEY_get_params(k->pub, params);
}

#define KM_GETTABLE_COMMON                                                                                      \
	OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL), OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),        \
		OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),                                                   \
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0)

static const OSSL_PARAM *km_gettable_rsa(void *provctx)
{
	static const OSSL_PARAM t[] = {
		KM_GETTABLE_COMMON,
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_END,
	};
	(void)provctx;
	return t;
}

static const OSSL_PARAM *km_gettable_rsa_pss(void *provctx)
{
	static const OSSL_PARAM t[] = {
		KM_GETTABLE_COMMON,
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_MGF1_DIGEST, NULL, 0),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_RSA_PSS_SALTLEN, NULL),
		OSSL_PARAM_END,
	};
	(void)provctx;
	return t;
}

static const OSSL_PARAM *km_gettable_ec(void *provctx)
{
	static const OSSL_PARAM t[] = {
		KM_GETTABLE_COMMON,
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
		OSSL_PARAM_END,
	};
	(void)provctx;
	return t;
}

static const OSSL_PARAM *km_gettable_ed(void *provctx)
{
	static const OSSL_PARAM t[] = {
		KM_GETTABLE_COMMON,
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
		OSSL_PARAM_END,
	};
	(void)provctx;
	return t;
}

/* No export, not even of the public key: OpenSSL 3.0 would then move a
 * keyhold key into the default provider to sign with it there (and fail,
 * "missing private key") instead of using this provider's SIGNATURE.
 * Comparisons (EVP_PKEY_eq) import the other key's public part instead,
 * and the SubjectPublicKeyInfo comes from this provider's ENCODER. */
static int km_export(void *kd, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
	(void)kd;
	(void)selection;
	(void)cb;
	(void)cbarg;
	return 0;
}

/* A public-key-only object to import another provider's key into, for
 * comparisons; it has no name and cannot sign. */
static void *km_new_type(void *provctx, enum kp_type type)
{
	struct kp_key *k = kp_key_new(provctx);

	if (k != NULL)
		k->type = type;
	return k;
}

static void *km_new_rsa(void *provctx)
{
	return km_new_type(provctx, KP_RSA);
}

static void *km_new_rsa_pss(void *provctx)
{
	return km_new_type(provctx, KP_RSA_PSS);
}

static void *km_new_ec(void *provctx)
{
	return km_new_type(provctx, KP_EC);
}

static void *km_new_ed(void *provctx)
{
	return km_new_type(provctx, KP_ED25519);
}

static int km_import(void *kd, int selection, const OSSL_PARAM params[])
{
	static const char *const names[] = { [KP_RSA] = "RSA", [KP_EC] = "EC", [KP_ED25519] = "ED25519",
					     [KP_RSA_PSS] = "RSA-PSS" };
	struct kp_key *k = kd;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	unsigned char *der = NULL;
	int len, ok = 0;

	if (k->pub != NULL || (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0)
		return 0;
	ctx = EVP_PKEY_CTX_new_from_name(k->prov->libctx, names[k->type], "provider=default");
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)(uintptr_t)params) != 1)
		goto out;
	if ((len = i2d_PUBKEY(pk, &der)) <= 0)
		goto out;
	ok = kp_key_set_public(k, der, (size_t)len);
out:
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static const OSSL_PARAM *km_export_types_rsa(int selection)
{
	static const OSSL_PARAM t[] = {
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_END,
	};
	return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) ? t : NULL;
}

static const OSSL_PARAM *km_export_types_rsa_pss(int selection)
{
	static const OSSL_PARAM t[] = {
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_MGF1_DIGEST, NULL, 0),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_RSA_PSS_SALTLEN, NULL),
		OSSL_PARAM_END,
	};
	return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) ? t : NULL;
}

static const OSSL_PARAM *km_export_types_ec(int selection)
{
	static const OSSL_PARAM t[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_END,
	};
	return (selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS)) ? t : NULL;
}

static const OSSL_PARAM *km_export_types_ed(int selection)
{
	static const OSSL_PARAM t[] = {
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_END,
	};
	return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) ? t : NULL;
}

static const char *km_opname_rsa(int op)
{
	return op == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

static const char *km_opname_ec(int op)
{
	return op == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static const char *km_opname_ed(int op)
{
	return op == OSSL_OP_SIGNATURE ? "ED25519" : NULL;
}

#define KM_DISPATCH(newfn, gettable, export_types, opname)                                                     \
	{ OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load },                                                     \
		{ OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))newfn },                                                \
		{ OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import },                                         \
		{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))export_types },                                \
		{ OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free },                                             \
		{ OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup },                                               \
		{ OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has },                                               \
		{ OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match },                                           \
		{ OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params },                                 \
		{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))gettable },                                 \
		{ OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export },                                         \
		{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))export_types },                                \
		{ OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))opname },                              \
	{                                                                                                        \
		0, NULL                                                                                          \
	}

const OSSL_DISPATCH kp_keymgmt_rsa[] = { KM_DISPATCH(km_new_rsa, km_gettable_rsa, km_export_types_rsa, km_opname_rsa) };
/* RSA-PSS: a keyhold RSA key named with type=rsa-pss; OpenSSL signs with
 * it through the "RSA" SIGNATURE, which then makes PSS only. */
const OSSL_DISPATCH kp_keymgmt_rsa_pss[] = { KM_DISPATCH(km_new_rsa_pss, km_gettable_rsa_pss, km_export_types_rsa_pss,
							 km_opname_rsa) };
const OSSL_DISPATCH kp_keymgmt_ec[] = { KM_DISPATCH(km_new_ec, km_gettable_ec, km_export_types_ec, km_opname_ec) };
const OSSL_DISPATCH kp_keymgmt_ed25519[] = { KM_DISPATCH(km_new_ed, km_gettable_ed, km_export_types_ed, km_opname_ed) };
