/* p11.h: libkeyhold-pkcs11.so's internals shared by its files: the module
 * state (one slot, one token = one keyholdd), sessions, objects and the
 * connection pool. Nothing here is exported; the module's only exported
 * symbol is C_GetFunctionList (p11_module.c). */
#ifndef KH_P11_H
#define KH_P11_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <p11-kit/pkcs11.h>

#include <openssl/evp.h>

#include "keyhold/keyhold.h"

#define P11_SLOT_ID 1
#define P11_NAME_MAX 64
#define P11_MAX_SESSIONS 4096
/* What C_SignUpdate buffers for a mechanism keyholdd signs whole (raw
 * digests and DigestInfos, Ed25519 messages). */
#define P11_RAW_MAX (64u * 1024u)
/* Idle connections kept for reuse; more are made while more threads sign. */
#define P11_POOL_MAX 64
/* Objects are re-read from keyholdd when older than this (ms). */
#define P11_REFRESH_MS 1000

struct p11_attr {
	CK_ATTRIBUTE_TYPE type;
	void *val;
	CK_ULONG len;
};

struct p11_obj {
	CK_OBJECT_HANDLE h;
	CK_OBJECT_CLASS cls;
	char name[P11_NAME_MAX + 1]; /* key name; the trustpoint's for a certificate */
	CK_KEY_TYPE ktype;
	CK_ULONG sig_len;   /* private keys: bytes of a signature */
	CK_ULONG bits;      /* RSA modulus bits, EC field bits */
	struct p11_attr *attrs;
	size_t n_attrs, cap_attrs;
	struct p11_obj *next;
};

/* A signing operation between C_SignInit and the end of C_Sign/C_SignFinal. */
struct p11_op {
	bool active;
	bool multi;           /* C_SignUpdate was called */
	CK_MECHANISM_TYPE mech;
	char key[P11_NAME_MAX + 1];
	CK_KEY_TYPE ktype;
	CK_ULONG sig_len;
	const char *digest;   /* keyhold's digest name; NULL for Ed25519 */
	const char *padding;  /* "PKCS1", "PSS" or NULL */
	const EVP_MD *md;     /* hashed here (the SHA*_ mechanisms); NULL: raw */
	EVP_MD_CTX *mdctx;
	uint8_t *buf;         /* raw mechanisms: the data so far */
	size_t len;
};

struct p11_sess {
	CK_SESSION_HANDLE h;
	CK_FLAGS flags;
	bool finding;
	CK_OBJECT_HANDLE *found;
	size_t n_found, pos;
	struct p11_op op;
	struct p11_sess *next;
};

struct p11_token {
	bool present;          /* the last GetStatus was answered */
	char label[33], manufacturer[33], model[17], serial[17];
	CK_VERSION hw, fw;
	CK_ULONG sessions, max_sessions;
};

struct p11_mech_avail {
	bool rsa, pss, ec, ed;
	CK_ULONG rsa_min, rsa_max, ec_min, ec_max;
};

struct p11_mod {
	pthread_mutex_t lock;  /* everything below but the pool */
	bool initialized;
	pid_t pid;
	bool logged_in;
	struct p11_token tok;
	struct p11_mech_avail mechs;
	struct p11_obj *objs;
	CK_OBJECT_HANDLE next_obj;
	uint64_t refreshed_ms; /* 0: never */
	bool refreshing;       /* a thread is reading objects from keyholdd */
	struct p11_sess *sess;
	CK_SESSION_HANDLE next_sess;
	size_t n_sess;

	pthread_mutex_t pool_lock;
	kh_client_opts *opts;
	bool tls;
	kh_client *idle[P11_POOL_MAX];
	size_t n_idle;
	uint64_t pool_gen;     /* bumped when every idle connection is dropped */
};

extern struct p11_mod p11;

/* ---- p11_conn.c: the connection pool, keyholdd's errors as CK_RV ---- */
CK_RV p11_conn_init(void);
void p11_conn_fini(void);
/* After fork(): the child drops the parent's connections (p11_module.c
 * calls it when getpid() changed). */
void p11_conn_forked(void);
/* kh_call on a pooled connection, one reconnect after a transport
 * failure. *resp: caller frees. Returns KH_OK, keyholdd's verdict, or
 * KH_E_UNAVAILABLE. */
enum kh_err p11_rpc(const kh_msg *req, kh_msg **resp);
/* One Sign round trip (kh_sign_send/kh_sign_recv), reconnecting once. */
enum kh_err p11_rpc_sign(const char *key, const char *digest, const char *padding, bool prehashed,
			 const uint8_t *data, size_t len, uint8_t *sig, size_t cap, size_t *sig_len);
/* A keyhold error as the CK_RV of a call that signs (sign = true) or
 * reads the token. */
CK_RV p11_rv(enum kh_err e, bool sign);
/* Logs to stderr when KEYHOLD_PKCS11_DEBUG is set. */
void p11_dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t p11_now_ms(void);

/* ---- p11_objects.c: keys and certificates as objects ---- */
/* Re-reads status, capabilities, keys and trustpoints when older than
 * P11_REFRESH_MS (always when force). Called without p11.lock held. */
CK_RV p11_refresh(bool force);
/* Only GetStatus: token presence and info. Without p11.lock held. */
CK_RV p11_status(void);
/* With p11.lock held. */
struct p11_obj *p11_obj_find(CK_OBJECT_HANDLE h);
const struct p11_attr *p11_obj_attr(const struct p11_obj *o, CK_ATTRIBUTE_TYPE t);
bool p11_obj_match(const struct p11_obj *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n);
CK_RV p11_obj_get_attrs(const struct p11_obj *o, CK_ATTRIBUTE *tmpl, CK_ULONG n);
void p11_objs_free(struct p11_obj *o);
/* keyholdd's bytes to objects (fuzzed by tests/fuzz/fuzz_p11_objects.c):
 * the private and public key objects of key name from its
 * SubjectPublicKeyInfo, and the certificate object of trustpoint tp from
 * its DER, prepended to *list. Bytes that do not parse, or a key type this
 * module does not offer, add nothing (CKR_OK). */
CK_RV p11_key_objs(const char *name, const uint8_t *id, size_t id_len, const uint8_t *spki, size_t spki_len,
		   struct p11_obj **list);
CK_RV p11_cert_obj(const char *tp, const struct p11_attr *id, const uint8_t *der, size_t len, struct p11_obj **list);

/* ---- p11_sign.c: mechanisms and signing ---- */
CK_RV p11_mech_list(CK_MECHANISM_TYPE *list, CK_ULONG *n);
CK_RV p11_mech_info(CK_MECHANISM_TYPE m, CK_MECHANISM_INFO *info);
/* With p11.lock held: checks mech against key and starts s->op. */
CK_RV p11_sign_init(struct p11_sess *s, const CK_MECHANISM *mech, const struct p11_obj *key);
void p11_op_clear(struct p11_op *op);
/* keyholdd's DER ECDSA-Sig-Value as r || s, each half bytes (PKCS#11
 * Current Mechanisms 2.3.1), parsed by OpenSSL; CKR_DEVICE_ERROR if it
 * does not parse or does not fit. */
CK_RV p11_ecdsa_raw(const uint8_t *der, size_t len, uint8_t *out, size_t half);
/* p11_sign and p11_sign_final are called with p11.lock held and return
 * with it released (the round trip runs unlocked); p11_sign_update keeps
 * it held. */
CK_RV p11_sign(struct p11_sess *s, const CK_BYTE *data, CK_ULONG len, CK_BYTE *sig, CK_ULONG *sig_len);
CK_RV p11_sign_update(struct p11_sess *s, const CK_BYTE *data, CK_ULONG len);
CK_RV p11_sign_final(struct p11_sess *s, CK_BYTE *sig, CK_ULONG *sig_len);

#endif
