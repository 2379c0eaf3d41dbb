/* kh_types: the validated C structs that cross the wire. proto/ decodes
 * into them and encodes from them; handlers and libkeyhold use only these. */
#ifndef KH_TYPES_H
#define KH_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Object names (keys, trustpoints, stores): [A-Za-z0-9._-]{1,64}. */
#define KH_NAME_MAX 64

/* Key types. The numbers are the wire enum; never reuse one. */
enum kh_key_type {
	KH_KEY_UNSPECIFIED = 0,
	KH_KEY_RSA2048 = 1,
	KH_KEY_RSA3072 = 2,
	KH_KEY_RSA4096 = 3,
	KH_KEY_P256 = 4,
	KH_KEY_P384 = 5,
	KH_KEY_P521 = 6,
	KH_KEY_ED25519 = 7,
	/* Not approved in FIPS mode; offered outside it where the token can. */
	KH_KEY_RSA1024 = 8,
	KH_KEY_SECP256K1 = 9,
};
#define KH_KEY_TYPE_MAX KH_KEY_SECP256K1

enum kh_digest {
	KH_DIGEST_DEFAULT = 0, /* SHA-256; none for Ed25519 */
	KH_DIGEST_SHA256 = 1,
	KH_DIGEST_SHA384 = 2,
	KH_DIGEST_SHA512 = 3,
	KH_DIGEST_SHA1 = 4,
	KH_DIGEST_MD5 = 5,
	KH_DIGEST_SHA224 = 6,
};
#define KH_DIGEST_MAX KH_DIGEST_SHA224

enum kh_padding {
	KH_PAD_DEFAULT = 0, /* PKCS#1 v1.5 for RSA; ignored otherwise */
	KH_PAD_PKCS1 = 1,
	KH_PAD_PSS = 2,
};
#define KH_PAD_MAX KH_PAD_PSS

struct kh_bytes {
	uint8_t *data;
	size_t len;
};

/* "rsa2048", ...; NULL for values outside the enum. */
const char *kh_key_type_name(enum kh_key_type t);
/* Parses a key type name; KH_KEY_UNSPECIFIED when unknown. */
enum kh_key_type kh_key_type_from_name(const char *s);
const char *kh_digest_name(enum kh_digest d);
enum kh_digest kh_digest_from_name(const char *s); /* DEFAULT when unknown */
/* Digest output length in bytes; 0 for DEFAULT/unknown. */
size_t kh_digest_len(enum kh_digest d);

/* True when s is a valid object name ([A-Za-z0-9._-]{1,64}). */
bool kh_name_valid(const char *s);

/* ---- keys ---- */

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

struct kh_generate_req {
	char name[KH_NAME_MAX + 1];
	enum kh_key_type type;
};

struct kh_name_req {
	char name[KH_NAME_MAX + 1];
};

struct kh_sign_req {
	char key[KH_NAME_MAX + 1];
	enum kh_digest digest;
	enum kh_padding padding;
	bool prehashed;       /* data is the digest, not the message */
	uint8_t *data;        /* owned */
	size_t len;
};

struct kh_sign_resp {
	uint8_t *sig;         /* owned; ECDSA as DER */
	size_t sig_len;
	char algorithm[48];   /* "ecdsa-with-SHA256", "rsassa-pss-sha256", ... */
};

/* ---- status and capabilities ---- */

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

struct kh_selftest_result {
	char id[40];
	char type[24];
	char description[128];
	char source[96];
	bool passed;
	uint64_t duration_us;
	char detail[160];
};

struct kh_status {
	char version[32];
	char state[24];           /* INIT, SELF_TEST, OPERATIONAL, ERROR */
	char fips_mode[16];       /* off, aligned, validated */
	bool module_validated;
	char openssl_version[64];
	char providers[128];      /* "default,base" */
	struct kh_token_info token;
	uint32_t workers;
	uint64_t uptime_s;
	uint32_t keys;
	uint32_t connections;
	uint64_t requests;
	struct kh_selftest_result *selftests;
	size_t n_selftests;
	uint64_t cond_pairwise_run, cond_pairwise_failed;
	uint64_t cond_rng_run, cond_rng_failed;
	uint64_t cond_verify_run, cond_verify_failed;
	char **orphaned_keys;     /* token keys no trustpoint references */
	size_t n_orphaned;
	char **nonfips_keys;      /* keys created while FIPS mode was off */
	size_t n_nonfips;
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
void kh_sign_req_clear(struct kh_sign_req *r);
void kh_sign_resp_clear(struct kh_sign_resp *r);
void kh_status_clear(struct kh_status *s);
void kh_capabilities_clear(struct kh_capabilities *c);
void kh_bytes_clear(struct kh_bytes *b);

#ifdef __cplusplus
}
#endif

/* Area headers: the validated structs of each RPC family. */
#include "kh_fips.h"
#include "kh_pki.h"
#include "kh_security.h"
#endif
