/* kh_types: names of the wire enums, name validation, and the clear
 * (free-contents) functions of the shared structs. */
#include "kh_types.h"

#include <stdlib.h>
#include <string.h>

static const char *const kh_key_type_names[] = {
	[KH_KEY_UNSPECIFIED] = NULL,
	[KH_KEY_RSA2048] = "rsa2048",
	[KH_KEY_RSA3072] = "rsa3072",
	[KH_KEY_RSA4096] = "rsa4096",
	[KH_KEY_P256] = "p256",
	[KH_KEY_P384] = "p384",
	[KH_KEY_P521] = "p521",
	[KH_KEY_ED25519] = "ed25519",
	[KH_KEY_RSA1024] = "rsa1024",
	[KH_KEY_SECP256K1] = "secp256k1",
};

static const char *const kh_digest_names[] = {
	[KH_DIGEST_DEFAULT] = "default",
	[KH_DIGEST_SHA256] = "sha256",
	[KH_DIGEST_SHA384] = "sha384",
	[KH_DIGEST_SHA512] = "sha512",
	[KH_DIGEST_SHA1] = "sha1",
	[KH_DIGEST_MD5] = "md5",
	[KH_DIGEST_SHA224] = "sha224",
};

static const size_t kh_digest_lens[] = {
	[KH_DIGEST_DEFAULT] = 0,
	[KH_DIGEST_SHA256] = 32,
	[KH_DIGEST_SHA384] = 48,
	[KH_DIGEST_SHA512] = 64,
	[KH_DIGEST_SHA1] = 20,
	[KH_DIGEST_MD5] = 16,
	[KH_DIGEST_SHA224] = 28,
};

const char *kh_key_type_name(enum kh_key_type t)
{
	if ((unsigned)t > KH_KEY_TYPE_MAX)
		return NULL;
	return kh_key_type_names[t];
}

enum kh_key_type kh_key_type_from_name(const char *s)
{
	unsigned i;

	if (s == NULL)
		return KH_KEY_UNSPECIFIED;
	for (i = 1; i <= KH_KEY_TYPE_MAX; i++)
		if (strcmp(s, kh_key_type_names[i]) == 0)
			return (enum kh_key_type)i;
	return KH_KEY_UNSPECIFIED;
}

const char *kh_digest_name(enum kh_digest d)
{
	if ((unsigned)d > KH_DIGEST_MAX)
		return NULL;
	return kh_digest_names[d];
}

enum kh_digest kh_digest_from_name(const char *s)
{
	unsigned i;

	if (s == NULL)
		return KH_DIGEST_DEFAULT;
	for (i = 1; i <= KH_DIGEST_MAX; i++)
		if (strcmp(s, kh_digest_names[i]) == 0)
			return (enum kh_digest)i;
	return KH_DIGEST_DEFAULT;
}

size_t kh_digest_len(enum kh_digest d)
{
	if ((unsigned)d > KH_DIGEST_MAX)
		return 0;
	return kh_digest_lens[d];
}


void kh_bytes_clear(struct kh_bytes *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

