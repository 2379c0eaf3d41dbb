/* provider.c: the keyhold OpenSSL 3 provider's entry point (OSSL_provider_init),
 * its parameters (openssl.cnf: socket, endpoints, TLS), its algorithm tables, errors,
 * and the key object that names a key held by keyholdd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "kp.h"

#define KP_PROPS "provider=keyhold"

void kp_err_at(struct kp_prov *p, const char *file, int line, const char *func, int reason, const char *fmt, ...)
{
	va_list ap;

	if (p == NULL || p->new_error == NULL || p->vset_error == NULL)
		return;
	p->new_error(p->core);
	if (p->set_error_debug != NULL)
		p->set_error_debug(p->core, file, line, func);
	va_start(ap, fmt);
	p->vset_error(p->core, reason, fmt, ap);
	va_end(ap);
}

/* ---- the key object ---- */

static kh_client *kp_connect(struct kp_key *k)
{
	struct kp_prov *p = k->prov;
	kh_client_opts *o = NULL;
	kh_client *c = NULL;
	const char *sock = k->socket != NULL ? k->socket : p->socket;
	enum kh_err r;

	r = kh_client_opts_new(&o);
	if (r == KH_OK && k->socket == NULL && p->endpoints != NULL) {
		/* Several nodes: libkeyhold spreads and fails over (docs/CLUSTER.md). */
		r = kh_client_opts_set_endpoints(o, p->endpoints);
		if (r == KH_E_INVALID_ARGUMENT) {
			kp_err(p, -r, "keyhold %s: provider parameter endpoints: %s", kh_err_name(r),
			       kh_client_opts_error_message(o));
			kh_client_opts_free(o);
			return NULL;
		}
		if (r == KH_OK)
			r = kh_client_opts_set_tls_files(o, p->tls_ca, p->tls_cert, p->tls_key);
		if (r == KH_OK && p->tls_server_name != NULL)
			r = kh_client_opts_set_tls_server_name(o, p->tls_server_name);
	} else if (r == KH_OK && k->socket == NULL && p->tls_connect != NULL) {
		r = kh_client_opts_set_tls(o, p->tls_connect, p->tls_ca, p->tls_cert, p->tls_key);
		if (r == KH_OK && p->tls_server_name != NULL)
			r = kh_client_opts_set_tls_server_name(o, p->tls_server_name);
	} else if (r == KH_OK && sock != NULL) {
		r = kh_client_opts_set_socket(o, sock);
	}
	if (r == KH_OK)
		r = kh_client_new(o, &c);
	kh_client_opts_free(o);
	if (r != KH_OK) {
		kp_err(p, -r, "keyhold %s: cannot set up a client for key '%s'", kh_err_name(r), k->name);
		return NULL;
	}
	if ((r = kh_client_connect(c)) != KH_OK) {
		kp_err(p, -r, "keyhold %s: connecting to keyholdd for key '%s': %s", kh_err_name(r), k->name,
		       kh_client_error_message(c));
		kh_client_free(c);
		return NULL;
	}
	return c;
}

static void kp_key_free(struct kp_key *k)
{
	kh_client_free(k->c);
	EVP_PKEY_free(k->pub);
	free(k->spki);
	free(k->socket);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

void kp_key_ref(struct kp_key *k)
{
	pthread_mutex_lock(&k->lock);
	k->refs++;
	pthread_mutex_unlock(&k->lock);
}

void kp_key_unref(struct kp_key *k)
{
	int left;

	if (k == NULL)
		return;
	pthread_mutex_lock(&k->lock);
	left = --k->refs;
	pthread_mutex_unlock(&k->lock);
	if (left == 0)
		kp_key_free(k);
}

struct kp_key *kp_key_new(struct kp_prov *p)
{
	struct kp_key *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	k->refs = 1;
	k->prov = p;
	pthread_mutex_init(&k->lock, NULL);
	return k;
}

int kp_key_set_public(struct kp_key *k, const unsigned char *spki, size_t len)
{
	const unsigned char *q = spki;
	EVP_PKEY *pk;

	if (len > KP_REF_MAX)
		return 0;
	pk = d2i_PUBKEY_ex(NULL, &q, (long)len, k->prov->libctx, "provider=default");
	if (pk == NULL || q != spki + len) {
		EVP_PKEY_free(pk);
		kp_err(k->prov, KP_R_BAD_KEY, "key '%s': keyholdd's public key does not parse", k->name);
		return 0;
	}
	if (EVP_PKEY_is_a(pk, "RSA-PSS")) {
		k->type = KP_RSA_PSS;
		k->type_name = "RSA-PSS";
	} else if (EVP_PKEY_is_a(pk, "RSA")) {
		k->type = KP_RSA;
		k->type_name = "RSA";
	} else if (EVP_PKEY_is_a(pk, "EC")) {
		k->type = KP_EC;
		k->type_name = "EC";
	} else if (EVP_PKEY_is_a(pk, "ED25519")) {
		k->type = KP_ED25519;
		k->type_name = "ED25519";
	} else {
		EVP_PKEY_free(pk);
		kp_err(k->prov, KP_R_UNSUPPORTED, "key '%s': unsupported key type", k->name);
		return 0;
	}
	k->spki = malloc(len);
	if (k->spki == NULL) {
		EVP_PKEY_free(pk);
		return 0;
	}
	memcpy(k->spki, spki, len);
	k->spki_len = len;
	k->pub = pk;
	return 1;
}

int kp_key_make_pss(struct kp_key *k, const char *md)
{
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *b = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	unsigned char *der = NULL;
	int len, ok = 0;

	if (k->type != KP_RSA) {
		kp_err(k->prov, KP_R_UNSUPPORTED, "key '%s' is a %s key, not RSA: type=rsa-pss is for RSA keys", k->name,
		       k->type_name);
		return 0;
	}
	if (!EVP_PKEY_get_bn_param(k->pub, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    !EVP_PKEY_get_bn_param(k->pub, OSSL_PKEY_PARAM_RSA_E, &e) || (b = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n) || !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e))
		goto out;
	if (md != NULL) {
		EVP_MD *m = EVP_MD_fetch(k->prov->libctx, md, NULL);
		int salt = m != NULL ? EVP_MD_get_size(m) : -1;

		EVP_MD_free(m);
		if (salt <= 0 || !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_RSA_DIGEST, md, 0) ||
		    !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_RSA_MGF1_DIGEST, md, 0) ||
		    !OSSL_PARAM_BLD_push_int(b, OSSL_PKEY_PARAM_RSA_PSS_SALTLEN, salt))
			goto out;
	}
	if ((params = OSSL_PARAM_BLD_to_param(b)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(k->prov->libctx, "RSA-PSS", "provider=default")) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1 ||
	    (len = i2d_PUBKEY(pk, &der)) <= 0)
		goto out;
	EVP_PKEY_free(k->pub);
	free(k->spki);
	k->pub = NULL;
	k->spki = NULL;
	if (!kp_key_set_public(k, der, (size_t)len) || k->type != KP_RSA_PSS)
		goto out;
	k->pss_md = md;
	ok = 1;
out:
	if (!ok)
		kp_err(k->prov, KP_R_BAD_KEY, "key '%s': cannot make an RSA-PSS key of it", k->name);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	BN_free(n);
	BN_free(e);
	return ok;
}

struct kp_key *kp_key_open(struct kp_prov *p, const char *name, const char *socket, enum kp_ref_type type,
			   const unsigned char *spki, size_t spki_len)
{
	static const char *const pss_md[] = { [KP_REF_RSA_PSS_SHA256] = "SHA2-256",
					      [KP_REF_RSA_PSS_SHA384] = "SHA2-384",
					      [KP_REF_RSA_PSS_SHA512] = "SHA2-512" };
	struct kp_key *k = kp_key_new(p);
	uint8_t *fetched = NULL;
	size_t flen = 0;
	enum kh_err r;

	if (k == NULL)
		return NULL;
	if (strlen(name) > KP_NAME_MAX || !kp_name_ok(name, strlen(name))) {
		kp_err(p, KP_R_BAD_KEY, "bad key name");
		goto fail;
	}
	memcpy(k->name, name, strlen(name) + 1);
	if (socket != NULL && socket[0] != '\0' && (k->socket = strdup(socket)) == NULL)
		goto fail;
	if (spki == NULL) {
		if ((k->c = kp_connect(k)) == NULL)
			goto fail;
		if ((r = kh_key_public(k->c, name, &fetched, &flen)) != KH_OK) {
			kp_err(p, -r, "keyhold %s: key '%s': %s", kh_err_name(r), name, kh_client_error_message(k->c));
			goto fail;
		}
		spki = fetched;
		spki_len = flen;
	}
	if (!kp_key_set_public(k, spki, spki_len))
		goto fail;
	if (type != KP_REF_AUTO && !kp_key_make_pss(k, pss_md[type]))
		goto fail;
	kh_free(fetched);
	return k;
fail:
	kh_free(fetched);
	kp_key_free(k);
	return NULL;
}

int kp_key_sign(struct kp_key *k, const char *digest, const char *padding, int prehashed, const unsigned char *in,
		size_t in_len, unsigned char **sig, size_t *sig_len)
{
	enum kh_err r = KH_E_UNAVAILABLE;
	int attempt;

	if (k->name[0] == '\0') {
		kp_err(k->prov, KP_R_BAD_KEY, "a public key only: nothing to sign with");
		return 0;
	}
	pthread_mutex_lock(&k->lock);
	/* A connection broken since the last use (keyholdd restarted) is
	 * made anew once. */
	for (attempt = 0; attempt < 2; attempt++) {
		if (k->c == NULL && (k->c = kp_connect(k)) == NULL)
			break;
		r = kh_sign(k->c, k->name, digest, padding, prehashed, in, in_len, sig, sig_len);
		if (r != KH_E_UNAVAILABLE)
			break;
		if (attempt == 1)
			kp_err(k->prov, -r, "keyhold %s: signing with key '%s': %s", kh_err_name(r), k->name,
			       kh_client_error_message(k->c));
		kh_client_free(k->c);
		k->c = NULL;
	}
	if (r != KH_OK && r != KH_E_UNAVAILABLE)
		kp_err(k->prov, -r, "keyhold %s: signing with key '%s': %s", kh_err_name(r), k->name,
		       kh_client_error_message(k->c));
	pthread_mutex_unlock(&k->lock);
	return r == KH_OK;
}

/* ---- provider ---- */

static const OSSL_ALGORITHM kp_keymgmts[] = {
	{ "RSA:rsaEncryption:1.2.840.113549.1.1.1", KP_PROPS, kp_keymgmt_rsa, "keyhold RSA key" },
	{ "RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10", KP_PROPS, kp_keymgmt_rsa_pss, "keyhold RSA key used as RSA-PSS" },
	{ "EC:id-ecPublicKey:1.2.840.10045.2.1", KP_PROPS, kp_keymgmt_ec, "keyhold EC key" },
	{ "ED25519:1.3.101.112", KP_PROPS, kp_keymgmt_ed25519, "keyhold Ed25519 key" },
	{ NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM kp_signatures[] = {
	{ "RSA:rsaEncryption:1.2.840.113549.1.1.1", KP_PROPS, kp_signature_rsa, "keyhold RSA signature" },
	{ "ECDSA", KP_PROPS, kp_signature_ecdsa, "keyhold ECDSA" },
	{ "ED25519:1.3.101.112", KP_PROPS, kp_signature_ed25519, "keyhold Ed25519" },
	{ NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM kp_stores[] = {
	{ "keyhold", KP_PROPS, kp_store, "keyhold: URIs (keyhold:key=NAME[;socket=PATH][;type=rsa-pss...])" },
	{ NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM kp_decoders[] = {
	{ "RSA:rsaEncryption:1.2.840.113549.1.1.1", KP_PROPS ",input=pem", kp_decoder_rsa, "KEYHOLD KEY reference" },
	{ "EC:id-ecPublicKey:1.2.840.10045.2.1", KP_PROPS ",input=pem", kp_decoder_ec, "KEYHOLD KEY reference" },
	{ "ED25519:1.3.101.112", KP_PROPS ",input=pem", kp_decoder_ed25519, "KEYHOLD KEY reference" },
	{ NULL, NULL, NULL, NULL },
};

#define KP_ENC(names, out) \
	{ names, KP_PROPS ",output=" #out ",structure=SubjectPublicKeyInfo", kp_encoder_spki_##out, "keyhold public key" }
static const OSSL_ALGORITHM kp_encoders[] = {
	KP_ENC("RSA:rsaEncryption:1.2.840.113549.1.1.1", der),
	KP_ENC("RSA:rsaEncryption:1.2.840.113549.1.1.1", pem),
	KP_ENC("RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10", der),
	KP_ENC("RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10", pem),
	KP_ENC("EC:id-ecPublicKey:1.2.840.10045.2.1", der),
	KP_ENC("EC:id-ecPublicKey:1.2.840.10045.2.1", pem),
	KP_ENC("ED25519:1.3.101.112", der),
	KP_ENC("ED25519:1.3.101.112", pem),
	{ NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM *kp_query(void *provctx, int op, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	switch (op) {
	case OSSL_OP_KEYMGMT:
		return kp_keymgmts;
	case OSSL_OP_SIGNATURE:
		return kp_signatures;
	case OSSL_OP_STORE:
		return kp_stores;
	case OSSL_OP_DECODER:
		return kp_decoders;
	case OSSL_OP_ENCODER:
		return kp_encoders;
	default:
		return NULL;
	}
}

static const OSSL_PARAM *kp_gettable_params(void *provctx)
{
	static const OSSL_PARAM t[] = {
		OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
		OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
		OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
		OSSL_PARAM_END,
	};
	(void)provctx;
	return t;
}

static int kp_get_params(void *provctx, OSSL_PARAM params[])
{
	OSSL_PARAM *q;

	(void)provctx;
	if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL && !OSSL_PARAM_set_utf8_ptr(q, "keyhold"))
		return 0;
	if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL && !OSSL_PARAM_set_utf8_ptr(q, "0.1"))
		return 0;
	if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL && !OSSL_PARAM_set_int(q, 1))
		return 0;
	return 1;
}

/* Reason strings: keyhold's codes (1..16, the negated kh_err) and ours. */
#define KP_REASON(n, s) { (n), (void *)(uintptr_t)(s) }
static const OSSL_ITEM kp_reasons[] = {
	KP_REASON(1, "CANCELLED"),	    KP_REASON(2, "UNKNOWN"),	      KP_REASON(3, "INVALID_ARGUMENT"),   KP_REASON(4, "DEADLINE_EXCEEDED"),
	KP_REASON(5, "NOT_FOUND"),	    KP_REASON(6, "ALREADY_EXISTS"),  KP_REASON(7, "PERMISSION_DENIED"),  KP_REASON(8, "RESOURCE_EXHAUSTED"),
	KP_REASON(9, "FAILED_PRECONDITION"), KP_REASON(10, "ABORTED"),     KP_REASON(11, "OUT_OF_RANGE"),       KP_REASON(12, "UNIMPLEMENTED"),
	KP_REASON(13, "INTERNAL"),	    KP_REASON(14, "UNAVAILABLE"),    KP_REASON(15, "DATA_LOSS"),	   KP_REASON(16, "UNAUTHENTICATED"),
	KP_REASON(KP_R_BAD_URI, "bad keyhold: URI"), KP_REASON(KP_R_BAD_KEY, "bad keyhold key"),
	KP_REASON(KP_R_UNSUPPORTED, "not supported by keyhold"), KP_REASON(KP_R_BAD_REFERENCE, "bad KEYHOLD KEY reference"),
	{ 0, NULL },
};

static const OSSL_ITEM *kp_reason_strings(void *provctx)
{
	(void)provctx;
	return kp_reasons;
}

static void kp_teardown(void *provctx)
{
	struct kp_prov *p = provctx;

	if (p == NULL)
		return;
	OSSL_LIB_CTX_free(p->libctx);
	free(p->socket);
	free(p->tls_connect);
	free(p->endpoints);
	free(p->tls_ca);
	free(p->tls_cert);
	free(p->tls_key);
	free(p->tls_server_name);
	free(p);
}

static const OSSL_DISPATCH kp_dispatch[] = {
	{ OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))kp_teardown },
	{ OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))kp_gettable_params },
	{ OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))kp_get_params },
	{ OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))kp_query },
	{ OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))kp_reason_strings },
	{ 0, NULL },
};

/* A configured parameter (openssl.cnf, the provider's section), copied;
 * NULL when absent or empty. */
static int kp_param(const OSSL_CORE_HANDLE *core, OSSL_FUNC_core_get_params_fn *get, const char *key, char **out)
{
	char *v = NULL;
	OSSL_PARAM q[2];

	q[0] = OSSL_PARAM_construct_utf8_ptr(key, &v, 0);
	q[1] = OSSL_PARAM_construct_end();
	if (!get(core, q))
		return 0;
	*out = NULL;
	if (v != NULL && v[0] != '\0' && (*out = strdup(v)) == NULL)
		return 0;
	return 1;
}

/* An environment variable, copied; NULL when unset or empty. 0 when out
 * of memory. */
static int kp_env(char **out, const char *name)
{
	const char *v = getenv(name);

	*out = NULL;
	return v == NULL || v[0] == '\0' || (*out = strdup(v)) != NULL;
}

static bool kp_env_set(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0';
}

/* The module's one exported symbol (declared in openssl/core.h). */
__attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE *core, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
		       void **provctx)
{
	struct kp_prov *p = calloc(1, sizeof(*p));
	OSSL_FUNC_core_get_params_fn *get = NULL;
	const OSSL_DISPATCH *d;

	if (p == NULL)
		return 0;
	p->core = core;
	for (d = in; d->function_id != 0; d++) {
		switch (d->function_id) {
		case OSSL_FUNC_CORE_GET_PARAMS:
			get = OSSL_FUNC_core_get_params(d);
			break;
		case OSSL_FUNC_CORE_NEW_ERROR:
			p->new_error = OSSL_FUNC_core_new_error(d);
			break;
		case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
			p->set_error_debug = OSSL_FUNC_core_set_error_debug(d);
			break;
		case OSSL_FUNC_CORE_VSET_ERROR:
			p->vset_error = OSSL_FUNC_core_vset_error(d);
			break;
		default:
			break;
		}
	}
	if (get == NULL || !kp_param(core, get, "socket", &p->socket) ||
	    !kp_param(core, get, "tls_connect", &p->tls_connect) || !kp_param(core, get, "tls_ca", &p->tls_ca) ||
	    !kp_param(core, get, "tls_cert", &p->tls_cert) || !kp_param(core, get, "tls_key", &p->tls_key) ||
	    !kp_param(core, get, "tls_server_name", &p->tls_server_name) ||
	    !kp_param(core, get, "endpoints", &p->endpoints))
		goto fail;
	/* None set in openssl.cnf: libkeyhold's KEYHOLD_ENDPOINTS (with its
	 * KEYHOLD_TLS_*) when set; else TLS from the environment, as the
	 * PKCS#11 module takes it (KEYHOLD_CONNECT with KEYHOLD_TLS_*); else
	 * libkeyhold's KEYHOLD_SOCKET or default. */
	if (p->socket == NULL && p->tls_connect == NULL && p->endpoints == NULL && !kp_env_set("KEYHOLD_ENDPOINTS") &&
	    kp_env(&p->tls_connect, "KEYHOLD_CONNECT") &&
	    p->tls_connect != NULL &&
	    (!kp_env(&p->tls_ca, "KEYHOLD_TLS_CA") || !kp_env(&p->tls_cert, "KEYHOLD_TLS_CERT") ||
	     !kp_env(&p->tls_key, "KEYHOLD_TLS_KEY") || !kp_env(&p->tls_server_name, "KEYHOLD_TLS_SERVER_NAME")))
		goto fail;
	if ((p->libctx = OSSL_LIB_CTX_new_child(core, in)) == NULL)
		goto fail;
	*out = kp_dispatch;
	*provctx = p;
	return 1;
fail:
	kp_teardown(p);
	return 0;
}
