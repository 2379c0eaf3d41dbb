/* hsm_int: state shared by the hsm/ files: the module, the token, the
 * session pool and the key cache. Not a public header. */
#ifndef HSM_INT_H
#define HSM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>
#include <openssl/evp.h>

#include "hsm.h"

/* p11-kit's header carries the pre-3.0 value; PKCS#11 3.0 §5.1 says 0x1B6. */
#undef CKR_FIPS_SELF_TEST_FAILED
#define CKR_FIPS_SELF_TEST_FAILED 0x1B6UL
/* PKCS#11 3.0 §5.5 token flag; p11-kit 0.24 does not define it. */
#ifndef CKF_ERROR_STATE
#define CKF_ERROR_STATE 0x01000000UL
#endif

/* Library behaviour that departs from PKCS#11, detected from C_GetInfo at
 * load (hsm_quirks_detect). */
enum hsm_quirk {
	/* tpm2-pkcs11 derives a public key's CKA_VERIFY from TPMA_OBJECT_DECRYPT
	 * and CKA_ENCRYPT from TPMA_OBJECT_SIGN_ENCRYPT (src/lib/tpm.c,
	 * tpm_handlers and tpm2_generate_key) and fails C_GenerateKeyPair with
	 * CKR_GENERAL_ERROR, after the TPM made the key, when the public
	 * template says otherwise: leave both out of the public template. */
	HSM_QUIRK_PUB_USAGE_DERIVED = 1u << 0,
	/* tpm2-pkcs11 keeps every object in its store: CKA_TOKEN=FALSE gives
	 * CKR_ATTRIBUTE_VALUE_INVALID. Session keys become unlabelled token
	 * objects, destroyed after use like session keys. */
	HSM_QUIRK_TOKEN_OBJECTS_ONLY = 1u << 1,
	/* tpm2-pkcs11 makes a CKM_RSA_PKCS signature with TPM2_RSA_Decrypt, raw
	 * RSA on the padded DigestInfo (src/lib/sign.c, sign_final_ex), which
	 * the TPM allows only on a key with TPMA_OBJECT_DECRYPT, that is
	 * CKA_DECRYPT=TRUE. Without it no PKCS#1 v1.5 signature (keyhold's or
	 * the libp11 engine's) can be made with an RSA key; keyhold itself
	 * offers no decryption. EC keys stay sign-only. */
	HSM_QUIRK_RSA_SIGN_NEEDS_DECRYPT = 1u << 2,
};

#define HSM_MAX_SESSIONS 256
#define HSM_PENDING_MAX 32
#define HSM_PIN_MAX 256
#define HSM_ID_LEN 16     /* CKA_ID of generated keys (DESIGN §3) */

/* One key pair the token holds, as keyhold sees it. Entries are created and
 * dropped under keys_lock; readers copy what they need under the read lock.
 * pkey is immutable once set and shared by up-ref. */
struct hsm_key {
	char name[KH_NAME_MAX + 1];
	enum kh_key_type type;
	CK_KEY_TYPE ck_type;
	uint32_t bits;
	size_t sig_len;          /* raw signature size the token returns */
	CK_OBJECT_HANDLE priv, pub;
	uint8_t id[32];
	size_t id_len;
	uint8_t *spki;
	size_t spki_len;
	EVP_PKEY *pkey;          /* public key, for verification; may be NULL */
	unsigned generation;     /* token generation the handles belong to */
};

struct hsm_session_key {
	uint8_t id[HSM_ID_LEN];  /* CKA_ID: destroy only what carries it */
	CK_KEY_TYPE ck_type;
	CK_OBJECT_HANDLE priv, pub;
	size_t sig_len;
	uint8_t *spki;
	size_t spki_len;
};

struct hsm {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	char *module_path;
	struct hsm_uri uri;
	char *pin;               /* OPENSSL_secure memory */
	size_t pin_len;
	bool pin_rejected;       /* never retry a PIN the token refused */
	unsigned reinit_interval_s;
	unsigned lock_spin_us;   /* hsm_config's */

	/* Readers: every PKCS#11 call. Writer: re-initialisation. */
	pthread_rwlock_t token_lock;
	CK_SLOT_ID slot;
	CK_TOKEN_INFO tinfo;
	bool available;          /* set through hsm_set_available */
	_Atomic uint64_t went_up, went_down; /* transitions of available (hsm_health) */
	unsigned generation;     /* bumped by every re-initialisation */
	/* The token showed at least one private key in this generation. A
	 * token that then shows none has gone away behind the module's back
	 * (SoftHSM2 whose token directory vanished answers every call, with
	 * no objects): hsm_keys_vanished. Cleared when keyhold deletes the
	 * last key and at re-initialisation. */
	_Atomic bool had_keys;
	pthread_mutex_t reinit_lock;
	uint64_t last_reinit_us;

	/* Session pool: a stack of idle sessions. */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	pthread_mutex_t open_lock; /* C_OpenSession one at a time (tpm2-pkcs11 1.9) */
	CK_SESSION_HANDLE idle[HSM_MAX_SESSIONS];
	unsigned n_idle;
	unsigned n_sessions;     /* open, idle or lent */
	unsigned want_sessions;

	unsigned quirks;         /* enum hsm_quirk bits */

	/* EC curves checked by a test key at open (probe.c): PKCS#11 gives EC
	 * key sizes only as a range. Bit t set in probe_bad: type t is not
	 * usable and probe_why[t] says why. Written before the pool is shared. */
	uint32_t probe_bad;
	char probe_why[KH_KEY_TYPE_MAX + 1][160];
	char probe_usable[96];   /* "p256, p384": the curves that passed */

	/* Mechanisms, read once at open. */
	CK_MECHANISM_TYPE *mechs;
	CK_MECHANISM_INFO *mech_info;
	size_t n_mechs;

	pthread_rwlock_t keys_lock;
	struct hsm_key **keys;
	size_t n_keys, cap_keys;

	/* The last key listing and token information, for readers that may
	 * be a moment behind (GetStatus: hsm_key_list_recent,
	 * hsm_token_info_recent) so that they need no token call. keys_epoch
	 * goes up with every change of the key set keyholdd makes or learns
	 * of (hsm_keys_changed); a listing begun in an older epoch is not
	 * current. Under snap_lock. */
	_Atomic uint64_t keys_epoch;
	pthread_mutex_t snap_lock;
	struct kh_key_list snap;
	bool snap_have;
	uint64_t snap_epoch, snap_us;
	CK_TOKEN_INFO snap_tinfo;
	uint64_t snap_tinfo_us;  /* 0: none yet */
	unsigned snap_tinfo_gen; /* the generation it was read in */

	pthread_mutex_t gen_lock;
	char pending[HSM_PENDING_MAX][KH_NAME_MAX + 1];
	unsigned n_pending;

	hsm_keygen_check_fn keygen_check;
	void *keygen_check_arg;
	hsm_random_check_fn random_check;
	void *random_check_arg;
	hsm_token_failure_fn token_failure;
	void *token_failure_arg;
	hsm_op_observer_fn op_observer;
	void *op_observer_arg;
};

/* The token's key set changed, or may have (keys.c): listings taken
 * before are not current any more. */
void hsm_keys_changed(struct hsm *h);
/* Sets h->available, counting the transitions (hsm_health). */
void hsm_set_available(struct hsm *h, bool v);
/* Tells the observer (if any) how long a token call on mech took. */
void hsm_observe(struct hsm *h, const char *op, CK_MECHANISM_TYPE mech, uint64_t t0_us, CK_RV rv);

/* A lent session; gen is the generation it was opened in. */
struct hsm_sess {
	CK_SESSION_HANDLE h;
	unsigned gen;
};

/* token.c */
/* Takes the token read lock and lends a session (re-attaching first when
 * the token went away); hsm_end returns both. rv is the last CK_RV seen;
 * an ambiguous one (CKR_GENERAL_ERROR) makes hsm_end check that the token
 * still answers and mark it gone when not. */
enum kh_err hsm_begin(struct hsm *h, struct hsm_sess *s, struct kh_errbuf *e) KH_WUR;
void hsm_end(struct hsm *h, struct hsm_sess *s, CK_RV rv);
/* r, or UNAVAILABLE when the operation failed (rv) because the token has
 * gone away meanwhile: the token's own code (often CKR_GENERAL_ERROR) would
 * tell the client nothing useful. */
enum kh_err hsm_gone_err(struct hsm *h, enum kh_err r, CK_RV rv, struct kh_errbuf *e) KH_WUR;
/* Re-attaches after the token went away (rate-limited); no lock held. */
void hsm_revive(struct hsm *h);
/* Marks the token gone: every request answers UNAVAILABLE until
 * hsm_revive attaches it again. */
void hsm_mark_gone(struct hsm *h);
/* Re-initialises the module now (not rate-limited): the module's own view
 * of its objects went wrong. No lock held. */
void hsm_reload(struct hsm *h, const char *why);
enum kh_err hsm_sess_get(struct hsm *h, struct hsm_sess *s, struct kh_errbuf *e) KH_WUR;
/* Returns the session to the pool; rv is the last result seen on it: a
 * session error closes it instead and opens a replacement. */
void hsm_sess_put(struct hsm *h, struct hsm_sess *s, CK_RV rv);
/* What to do after rv: 0 = done (ok or final error), 1 = retry once. Handles
 * re-login and token loss. */
int hsm_rv_retry(struct hsm *h, CK_RV rv);
/* CK_RV -> kh_err with the CKR_ name in the message. */
enum kh_err hsm_rv_err(struct kh_errbuf *e, CK_RV rv, const char *what, const char *name);
bool hsm_has_mech(const struct hsm *h, CK_MECHANISM_TYPE m, CK_FLAGS need, const CK_MECHANISM_INFO **info);
void hsm_token_unlock(struct hsm *h);
void hsm_token_rdlock(struct hsm *h);
/* C_GenerateRandom on session s, then the random-check hook. *rv_out is
 * the CK_RV (CKR_OK when the hook refused the block). */
enum kh_err hsm_random_on(struct hsm *h, CK_SESSION_HANDLE s, uint8_t *out, size_t len, CK_RV *rv_out,
			  struct kh_errbuf *e) KH_WUR;

/* keys.c */
void hsm_keys_reset(struct hsm *h);
/* Looks the key up (cache, then the token) and copies the fields a signer
 * needs into out; out->spki/pkey are borrowed up-refs released by
 * hsm_key_copy_release. Caller holds the token read lock. */
enum kh_err hsm_key_lookup(struct hsm *h, CK_SESSION_HANDLE s, const char *name, struct hsm_key *out,
			   struct kh_errbuf *e) KH_WUR;
void hsm_key_copy_release(struct hsm_key *k);
void hsm_key_forget(struct hsm *h, const char *name);
/* Token loss seen as a key set that suddenly empties: when the token held
 * keys in this generation and session s now finds no private token
 * object, marks the token gone (re-attached by hsm_revive) and returns
 * true. Caller holds the token read lock. */
bool hsm_keys_vanished(struct hsm *h, CK_SESSION_HANDLE s);
/* Fills the key cache from the token (after a re-attachment). No lock held. */
void hsm_keys_rebuild(struct hsm *h);
enum kh_key_type hsm_key_type_of(CK_KEY_TYPE kt, uint32_t bits, int curve_nid);
size_t hsm_sig_len_of(CK_KEY_TYPE kt, uint32_t bits);

/* probe.c */
/* Sets h->quirks from the library's C_GetInfo. */
void hsm_quirks_detect(struct hsm *h);
/* Generates, uses and destroys a test key per EC curve the mechanism info
 * cannot vouch for; fills probe_bad/probe_why. Needs an attached token. */
void hsm_probe_curves(struct hsm *h);

/* sign.c */
/* How a digest is signed: its DigestInfo DER prefix (RFC 8017 §9.2 note 1),
 * its CKM_ hash and its CKG_MGF1_ (0: none, MD5). */
struct hsm_digest_spec {
	const uint8_t *di;
	size_t di_len;
	CK_MECHANISM_TYPE hash;
	CK_RSA_PKCS_MGF_TYPE mgf;
};
/* INVALID_ARGUMENT for DEFAULT and unknown digests. */
enum kh_err hsm_digest_spec(enum kh_digest d, struct hsm_digest_spec *out) KH_WUR;
/* r||s (PKCS#11 2.40 §2.3.1) to an X9.62 ECDSA-Sig-Value DER; *der is
 * malloc'ed. INTERNAL for an empty or odd-length input. */
enum kh_err hsm_ecdsa_der(const uint8_t *raw, size_t len, uint8_t **der, size_t *der_len) KH_WUR;
/* Checks a sign request against the key type and builds the mechanism and
 * the token's input: the digest (ECDSA, PSS with *pss as parameters), the
 * message (Ed25519) or DigestInfo||digest in buf (RSA PKCS#1 v1.5). *data
 * borrows in or buf. Outputs written only on success. */
enum kh_err hsm_sign_prepare(CK_KEY_TYPE kt, enum kh_digest digest, enum kh_padding pad, const uint8_t *in,
			     size_t in_len, CK_MECHANISM *mech, CK_RSA_PKCS_PSS_PARAMS *pss, uint8_t *buf,
			     size_t bufsz, const uint8_t **data, size_t *data_len, struct kh_errbuf *e) KH_WUR;

/* spki.c: SubjectPublicKeyInfo from a public key object's attributes. */
enum kh_err hsm_spki_read(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, CK_KEY_TYPE kt,
			  uint8_t **spki, size_t *spki_len, EVP_PKEY **pkey, uint32_t *bits,
			  int *curve_nid, struct kh_errbuf *e) KH_WUR;
/* The same from the attribute values: a/b are CKA_MODULUS and
 * CKA_PUBLIC_EXPONENT (CKK_RSA) or CKA_EC_PARAMS and CKA_EC_POINT (CKK_EC,
 * CKK_EC_EDWARDS; the point DER-wrapped or raw). Borrows a and b; *spki is
 * malloc'ed, *pkey (when pkey is not NULL) the caller's. Outputs written
 * only on success. */
enum kh_err hsm_spki_build(CK_KEY_TYPE kt, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
			   uint8_t **spki, size_t *spki_len, EVP_PKEY **pkey, uint32_t *bits, int *curve_nid,
			   struct kh_errbuf *e) KH_WUR;
/* Curve OID DER (CKA_EC_PARAMS) for a key type; NULL when not EC. */
const uint8_t *hsm_ec_params(enum kh_key_type t, size_t *len);

/* lock.c: sets args' mutex functions to keyholdd's, spinning spin_us. */
void hsm_lock_args(CK_C_INITIALIZE_ARGS *args, unsigned spin_us);

#endif
