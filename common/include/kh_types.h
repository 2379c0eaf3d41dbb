/* kh_types: what every server layer names: object names, key types,
 * digests and paddings (their numbers are the wire enums'), and bytes. */
#ifndef KH_TYPES_H
#define KH_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kh_text.h"

#ifdef __cplusplus
extern "C" {
#endif

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

void kh_bytes_clear(struct kh_bytes *b);

#ifdef __cplusplus
}
#endif
#endif
