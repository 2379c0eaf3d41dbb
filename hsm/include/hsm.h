/* hsm: the only module that talks PKCS#11. It loads the module, finds the
 * token by RFC 7512 URI, logs in once, keeps a session pool and offers key
 * generation, lookup, deletion, public-key export, signing and random.
 * It knows nothing of sockets or protobuf. Thread-safe unless noted. */
#ifndef HSM_H
#define HSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "kh_err.h"
#include "kh_types.h"

struct hsm;

/* ---- what the token says about itself and its keys ---- */

struct kh_key_info {
	char name[KH_NAME_MAX + 1];
	enum kh_key_type type;
	uint32_t bits;
	uint8_t id[32];       /* CKA_ID */
	size_t id_len;
	uint8_t *spki;        /* SubjectPublicKeyInfo DER, owned */
	size_t spki_len;
	bool fips_created;    /* created while FIPS mode was on */
};

struct kh_key_list {
	struct kh_key_info *keys;
	size_t n;
};

struct kh_token_info {
	char label[33];
	char manufacturer[33];
	char model[17];
	char serial[17];
	char hw_version[8];
	char fw_version[8];
	uint64_t flags;       /* CKF_* token flags */
	char flag_names[256]; /* "RNG,LOGIN_REQUIRED,..." */
	uint32_t max_sessions;
	uint32_t sessions;    /* in keyhold's pool */
	bool available;       /* false while the token is gone */
};

struct kh_mechanism {
	char name[48];            /* "CKM_ECDSA" or "0x80001234" */
	uint64_t id;
	uint32_t min_key, max_key;
	uint64_t flags;
};

struct kh_key_type_avail {
	enum kh_key_type type;
	bool available;
	char reason[128];         /* why not, when unavailable */
};

struct kh_capabilities {
	struct kh_key_type_avail types[KH_KEY_TYPE_MAX];
	size_t n_types;
	struct kh_mechanism *mechs;
	size_t n_mechs;
	bool pss;                 /* CKM_RSA_PKCS_PSS present */
};


void kh_key_info_clear(struct kh_key_info *k);
void kh_key_list_clear(struct kh_key_list *l);
void kh_capabilities_clear(struct kh_capabilities *c);

/* ---- PKCS#11 URI (RFC 7512) ---- */

#define HSM_URI_FIELD_MAX 64

struct hsm_uri {
	char token[HSM_URI_FIELD_MAX + 1];        /* token label */
	char serial[HSM_URI_FIELD_MAX + 1];
	char manufacturer[HSM_URI_FIELD_MAX + 1];
	char model[HSM_URI_FIELD_MAX + 1];
	char object[HSM_URI_FIELD_MAX + 1];
	char type[16];                            /* private, public, cert, ... */
	uint8_t id[64];
	size_t id_len;
	bool has_token, has_serial, has_manufacturer, has_model, has_object, has_id;
	bool has_slot_id;
	uint64_t slot_id;
};

/* Parses "pkcs11:token=keyhold;serial=..." (path attributes; query
 * attributes after '?' are accepted and ignored except pin-source, which is
 * refused: the PIN comes from pin_file). Percent-encoding is decoded. */
enum kh_err hsm_uri_parse(const char *s, struct hsm_uri *out, struct kh_errbuf *e) KH_WUR;

/* ---- lifecycle ---- */

struct hsm_config {
	const char *module;     /* path to the PKCS#11 module (borrowed) */
	const char *uri;        /* token URI (borrowed) */
	const char *pin_file;   /* path of a 0600 file holding the user PIN */
	uid_t pin_owner;        /* the service's user: may own the PIN file (as may root and euid) */
	unsigned sessions;      /* wanted pool size; capped by ulMaxSessionCount */
	/* Seconds between re-initialisation attempts after the token vanished. */
	unsigned reinit_interval_s;
	/* > 0: the module's mutexes are keyholdd's (hsm/lock.c), spun on for
	 * this many microseconds before a thread sleeps; 0: the module's own
	 * (CKF_OS_LOCKING_OK alone). */
	unsigned lock_spin_us;
};

/* keyholdd's mutexes in the token's library (process-wide): how many it
 * holds, and the acquisitions that found one held, won while spinning or
 * after sleeping. All 0 when the library uses its own. */
struct hsm_lock_stats {
	uint64_t mutexes;
	uint64_t spun;
	uint64_t slept;
};
void hsm_lock_stats(struct hsm_lock_stats *out);

/* Reads the PIN file into secure memory. The file must be a regular file,
 * not group- or world-accessible, owned by root, this process's euid or
 * owner (the user keyholdd serves as), and reached without following a
 * symbolic link in any component of path; a trailing newline is dropped.
 * Refusals: PERMISSION_DENIED (mode, owner), FAILED_PRECONDITION (links,
 * type, cannot open). */
enum kh_err hsm_pin_read(const char *path, uid_t owner, char **pin_out, size_t *len_out,
			 struct kh_errbuf *e) KH_WUR;
void hsm_pin_free(char *pin, size_t len);

/* Loads the module, C_Initialize (CKF_OS_LOCKING_OK, and keyholdd's mutex
 * functions when cfg->lock_spin_us > 0 unless the module declines them:
 * CKR_CANT_LOCK or CKR_ARGUMENTS_BAD), finds the token, reads
 * the PIN, logs in and opens the session pool (serially). */
enum kh_err hsm_open(const struct hsm_config *cfg, struct hsm **out, struct kh_errbuf *e) KH_WUR;
/* Closes sessions, logs out, C_Finalize, dlclose, cleanses the PIN. NULL ok. */
void hsm_close(struct hsm *h);

void hsm_token_info(struct hsm *h, struct kh_token_info *out);
/* hsm_token_info, from the last C_GetTokenInfo when that is at most
 * max_age_us old (flags and labels a moment behind; the availability and
 * session count are always current). */
void hsm_token_info_recent(struct hsm *h, uint64_t max_age_us, struct kh_token_info *out);
/* Fills caps from the token's mechanism list. */
enum kh_err hsm_capabilities(struct hsm *h, struct kh_capabilities *out, struct kh_errbuf *e) KH_WUR;
/* KH_OK when the token can generate and sign with keys of type t, else
 * FAILED_PRECONDITION with the token's limit named. */
enum kh_err hsm_key_type_supported(struct hsm *h, enum kh_key_type t, struct kh_errbuf *e) KH_WUR;
/* Sets CKF_* token flags out of C_GetTokenInfo now (not cached). */
enum kh_err hsm_token_flags(struct hsm *h, uint64_t *flags, struct kh_errbuf *e) KH_WUR;

/* ---- keys ---- */

/* Generates a token key pair named name (the DESIGN §3 template). Refuses a
 * name already on the token with ALREADY_EXISTS. On success info describes
 * the key (SPKI included); the caller clears it. */
enum kh_err hsm_key_generate(struct hsm *h, const char *name, enum kh_key_type type,
			     struct kh_key_info *info, struct kh_errbuf *e) KH_WUR;
/* hsm_key_generate, and with decrypt an RSA private key that also allows
 * CKM_RSA_PKCS decryption (CKA_DECRYPT): only for SCEP trustpoints, whose
 * CertRep is encrypted to the key (RFC 8894 §3.3); every other key is
 * sign-only. */
enum kh_err hsm_key_generate_ex(struct hsm *h, const char *name, enum kh_key_type type, bool decrypt,
				struct kh_key_info *info, struct kh_errbuf *e) KH_WUR;
/* Describes the key named name (NOT_FOUND when absent). */
enum kh_err hsm_key_get(struct hsm *h, const char *name, struct kh_key_info *info,
			struct kh_errbuf *e) KH_WUR;
/* The type of key name and its public key (up-referenced; the caller
 * frees it; NULL when the token holds no public half). Served from the
 * cache: this is the signing fast path. */
enum kh_err hsm_key_meta(struct hsm *h, const char *name, enum kh_key_type *type, EVP_PKEY **pkey,
			 struct kh_errbuf *e) KH_WUR;
/* Small private data objects in the token (CKO_DATA, CKA_TOKEN, CKA_PRIVATE,
 * CKA_APPLICATION "keyhold"), found by label. read: NOT_FOUND when absent,
 * FAILED_PRECONDITION when several; *len may exceed bufsz only as an error
 * (the value is not copied then). write replaces the object (destroy, then
 * create: a crash in between leaves none). delete removes every copy;
 * absent is fine. */
enum kh_err hsm_data_read(struct hsm *h, const char *label, uint8_t *buf, size_t bufsz, size_t *len,
			  struct kh_errbuf *e) KH_WUR;
enum kh_err hsm_data_write(struct hsm *h, const char *label, const uint8_t *data, size_t len,
			   struct kh_errbuf *e) KH_WUR;
enum kh_err hsm_data_delete(struct hsm *h, const char *label, struct kh_errbuf *e) KH_WUR;
/* Forgets what keyholdd caches about the token key name (NULL: every
 * key): its object handles, type and public key. The next use finds it on
 * the token again, or answers NOT_FOUND. The hook for a cluster's "key
 * created/deleted on another node" notice; without one a node still
 * tolerates keys appearing and disappearing under it (a miss is always
 * looked up on the token, a stale handle is found again once, show and
 * list read the token; docs/CLUSTER.md "One token for all nodes"). */
void hsm_keys_invalidate(struct hsm *h, const char *name);
/* Every private key on the token that has a label, sorted by name; cache
 * entries of keys no longer on the token are dropped. */
enum kh_err hsm_key_list(struct hsm *h, struct kh_key_list *out, struct kh_errbuf *e) KH_WUR;
/* hsm_key_list, or a copy of the last listing when no change keyholdd
 * made or learned of (generation, deletion, invalidation, the token going
 * or coming back) came after it and it is at most max_age_us old: a key
 * created or deleted behind keyholdd's back shows within max_age_us. */
enum kh_err hsm_key_list_recent(struct hsm *h, uint64_t max_age_us, struct kh_key_list *out,
				struct kh_errbuf *e) KH_WUR;
/* How old the older of the last current key listing and the last token
 * information is (microseconds; UINT64_MAX when either is missing or not
 * current): at most max_age_us means the two calls above make no token
 * call. */
uint64_t hsm_recent_age_us(struct hsm *h);
/* Destroys the private and public key objects (and any certificate object
 * with the same CKA_ID). */
enum kh_err hsm_key_delete(struct hsm *h, const char *name, struct kh_errbuf *e) KH_WUR;

/* Raw signature primitive. For RSA PKCS#1 v1.5, in is a DigestInfo-less
 * digest and digest names its algorithm (the DigestInfo is added here); for
 * PSS, in is the digest; for ECDSA, in is the digest and the result is DER;
 * for Ed25519, in is the whole message and digest must be DEFAULT. */
struct hsm_sign_op {
	const char *key;
	enum kh_digest digest;
	enum kh_padding padding;
	const uint8_t *in;
	size_t in_len;
};
/* KH_E_ABORTED: the cached handle was stale and the key now under that
 * name is another one (deleted and generated again through another node):
 * nothing was signed, and what the caller looked up about the key (type,
 * public key) is stale; look it up again and retry. */
enum kh_err hsm_sign(struct hsm *h, const struct hsm_sign_op *op, uint8_t **sig, size_t *sig_len,
		     struct kh_errbuf *e) KH_WUR;

/* CKM_RSA_PKCS decryption with the RSA key named key (which must have
 * CKA_DECRYPT: SCEP trustpoint keys only); *out malloc'd, the caller
 * clears and frees it. Used only to open a SCEP CertRep's envelope. */
enum kh_err hsm_decrypt_rsa_pkcs(struct hsm *h, const char *key, const uint8_t *in, size_t in_len, uint8_t **out,
				 size_t *out_len, struct kh_errbuf *e) KH_WUR;

/* Session (CKA_TOKEN=FALSE) keys for self-tests; destroyed by
 * hsm_key_destroy_session. Never visible in lists. */
struct hsm_session_key;
enum kh_err hsm_session_key_generate(struct hsm *h, enum kh_key_type type,
				     struct hsm_session_key **out, struct kh_errbuf *e) KH_WUR;
enum kh_err hsm_session_key_sign(struct hsm *h, struct hsm_session_key *k, enum kh_digest digest,
				 const uint8_t *in, size_t in_len, uint8_t **sig, size_t *sig_len,
				 struct kh_errbuf *e) KH_WUR;
const uint8_t *hsm_session_key_spki(const struct hsm_session_key *k, size_t *len);
void hsm_session_key_destroy(struct hsm *h, struct hsm_session_key *k);

/* Random bytes from the token (C_GenerateRandom). */
enum kh_err hsm_random(struct hsm *h, uint8_t *out, size_t len, struct kh_errbuf *e) KH_WUR;

/* Conditional self-test hook, set once before use: called after every key
 * generation with the new key; a non-OK return destroys both halves and the
 * error is returned from hsm_key_generate. */
typedef enum kh_err (*hsm_keygen_check_fn)(void *arg, struct hsm *h, const struct kh_key_info *k,
					   struct kh_errbuf *e);
void hsm_set_keygen_check(struct hsm *h, hsm_keygen_check_fn fn, void *arg);

/* Conditional self-test hook, set once before use: called with every block
 * C_GenerateRandom returns (hsm_random and the CKA_ID of every generated
 * key pair) before the block is used; a non-OK return discards the block
 * and fails the operation with that error. */
typedef enum kh_err (*hsm_random_check_fn)(void *arg, const uint8_t *block, size_t len,
					   struct kh_errbuf *e);
void hsm_set_random_check(struct hsm *h, hsm_random_check_fn fn, void *arg);

/* Called (once per failing call, from the worker thread that made it) when
 * the token answers CKR_FIPS_SELF_TEST_FAILED: the token's own module failed
 * a self-test. The call itself fails as usual; in FIPS mode keyholdd enters
 * ERROR from here. Set once before use. */
typedef void (*hsm_token_failure_fn)(void *arg, const char *detail);
void hsm_set_token_failure_hook(struct hsm *h, hsm_token_failure_fn fn, void *arg);

/* ---- observation, for keyholdd's metrics ---- */

/* Called (from the thread that made it) after every signature, key-pair
 * generation and C_GenerateRandom with the mechanism (0 for random), the
 * time the token took and whether it answered CKR_OK. Must not block.
 * Set once before use. */
typedef void (*hsm_op_observer_fn)(void *arg, const char *op, unsigned long mech, uint64_t duration_us, bool ok);
void hsm_set_op_observer(struct hsm *h, hsm_op_observer_fn fn, void *arg);

/* The token's availability and session pool, without a token call (only
 * the pool's lock is taken briefly). went_up/went_down count transitions
 * of available since hsm_open (the first attach counts as up). */
struct hsm_health {
	bool available;
	unsigned sessions;      /* open, idle or lent */
	unsigned idle;
	uint64_t went_up, went_down;
};
void hsm_health(struct hsm *h, struct hsm_health *out);

/* Human name of a CKR_/CKM_ value, for messages ("CKR_PIN_INCORRECT"). */
const char *hsm_rv_name(unsigned long rv);
const char *hsm_mech_name(unsigned long mech, char *buf, size_t bufsz);

#endif
