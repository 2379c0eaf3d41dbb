/* kp.h: the keyhold OpenSSL 3 provider's shared parts: provider context,
 * the key object (a name at a keyholdd plus its public key) and errors. */
#ifndef KP_H
#define KP_H

#include <pthread.h>
#include <stdarg.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include <keyhold/keyhold.h>

#include "kp_parse.h"

struct kp_prov {
	const OSSL_CORE_HANDLE *core;
	OSSL_LIB_CTX *libctx; /* a child of the application's */
	OSSL_FUNC_core_new_error_fn *new_error;
	OSSL_FUNC_core_set_error_debug_fn *set_error_debug;
	OSSL_FUNC_core_vset_error_fn *vset_error;
	char *socket; /* provider parameter "socket", or NULL */
	char *tls_connect, *tls_ca, *tls_cert, *tls_key, *tls_server_name;
	char *endpoints; /* provider parameter "endpoints" (several nodes), or NULL */
};

enum kp_type { KP_RSA, KP_EC, KP_ED25519, KP_RSA_PSS };

struct kp_key {
	int refs;
	pthread_mutex_t lock; /* refs and c */
	struct kp_prov *prov;
	char name[KP_NAME_MAX + 1];
	char *socket; /* NULL: the provider's */
	enum kp_type type;
	const char *type_name; /* "RSA", "EC", "ED25519", "RSA-PSS" */
	const char *pss_md;    /* KP_RSA_PSS restricted to a digest: its name, else NULL */
	EVP_PKEY *pub;	       /* the public key, in the default provider (RSA-PSS: as one) */
	unsigned char *spki;
	size_t spki_len;
	kh_client *c; /* connected lazily, dropped when broken */
};

/* Errors reach the application's queue through the core. reason: a
 * KP_R_* or -kh_err (1..16). */
#define KP_R_KEYHOLD_BASE 0
#define KP_R_BAD_URI 100
#define KP_R_BAD_KEY 101
#define KP_R_UNSUPPORTED 102
#define KP_R_BAD_REFERENCE 103
void kp_err_at(struct kp_prov *p, const char *file, int line, const char *func, int reason, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
#define kp_err(p, reason, ...) kp_err_at((p), __FILE__, __LINE__, __func__, (reason), __VA_ARGS__)

/* Fetches key name's public key from keyholdd (socket NULL: the
 * provider's) and returns a new key with one reference, or NULL (error
 * raised). spki may be given (a reference file): then it is checked
 * against nothing here but used as is; the service is asked on use. */
struct kp_key *kp_key_open(struct kp_prov *p, const char *name, const char *socket, enum kp_ref_type type,
			   const unsigned char *spki, size_t spki_len);
/* Makes RSA key k an RSA-PSS key (unrestricted, or restricted to md with
 * MGF1 md and a salt of at least md's length): its public key and
 * SubjectPublicKeyInfo become OpenSSL's RSA-PSS ones. 1, or 0 (raised). */
int kp_key_make_pss(struct kp_key *k, const char *md);
/* An empty key (no name, no public key yet), one reference. */
struct kp_key *kp_key_new(struct kp_prov *p);
/* Sets k's public key from SubjectPublicKeyInfo DER (rsaEncryption,
 * RSASSA-PSS, EC, Ed25519): 1, or 0 (raised). */
int kp_key_set_public(struct kp_key *k, const unsigned char *spki, size_t len);
void kp_key_ref(struct kp_key *k);
void kp_key_unref(struct kp_key *k);
/* Signs through keyholdd: 1 and *sig (free with kh_free), or 0 with the
 * error raised (keyhold's code and message). Reconnects once when the
 * connection is broken. */
int kp_key_sign(struct kp_key *k, const char *digest, const char *padding, int prehashed, const unsigned char *in,
		size_t in_len, unsigned char **sig, size_t *sig_len);

extern const OSSL_DISPATCH kp_keymgmt_rsa[], kp_keymgmt_rsa_pss[], kp_keymgmt_ec[], kp_keymgmt_ed25519[];
extern const OSSL_DISPATCH kp_signature_rsa[], kp_signature_ecdsa[], kp_signature_ed25519[];
extern const OSSL_DISPATCH kp_store[];
extern const OSSL_DISPATCH kp_decoder_rsa[], kp_decoder_ec[], kp_decoder_ed25519[];
extern const OSSL_DISPATCH kp_encoder_spki_der[], kp_encoder_spki_pem[];

#endif
