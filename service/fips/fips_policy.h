/* svc_policy: the approved-algorithm policy of FIPS mode (DESIGN §8). Every
 * handler that makes a key, a signature, a CSR or a certificate asks here
 * first; outside FIPS mode (fips_mode = off) everything the token can do
 * is allowed. Refusals are INVALID_ARGUMENT naming the rule. */
#ifndef FIPS_POLICY_H
#define FIPS_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "kh_err.h"
#include "kh_types.h"
#include "config/config.h"

/* True when cfg puts keyholdd in FIPS mode (aligned or validated). */
bool fips_policy_fips(const struct svc_config *cfg);

/* May a key of type t be generated (or used) under cfg? */
enum kh_err fips_policy_key_type(const struct svc_config *cfg, enum kh_key_type t, struct kh_errbuf *e) KH_WUR;
/* RSA modulus size in bits: 2048, 3072 or 4096 in FIPS mode. */
enum kh_err fips_policy_rsa_bits(const struct svc_config *cfg, unsigned bits, struct kh_errbuf *e) KH_WUR;
/* An EC curve by OpenSSL NID: P-256, P-384 or P-521 in FIPS mode. */
enum kh_err fips_policy_curve(const struct svc_config *cfg, int nid, struct kh_errbuf *e) KH_WUR;
/* A public key (borrowed; any library context): RSA size and e = 65537,
 * EC curve, Ed25519 per fips_allow_eddsa. */
enum kh_err fips_policy_public_key(const struct svc_config *cfg, EVP_PKEY *pkey, struct kh_errbuf *e) KH_WUR;

/* A signature by a key of type t with digest d (DEFAULT is SHA-256 for
 * RSA/ECDSA, "none" for Ed25519) and padding p. */
enum kh_err fips_policy_sign(const struct svc_config *cfg, enum kh_key_type t, enum kh_digest d,
			    enum kh_padding p, struct kh_errbuf *e) KH_WUR;

/* The digest a CSR or certificate is signed with (DESIGN §7: SHA-1
 * refused). what names the object in the message ("CSR", "certificate").
 * Ed25519 keys sign without a digest: pass KH_DIGEST_DEFAULT with
 * t = KH_KEY_ED25519 (t may be KH_KEY_UNSPECIFIED when not known). */
enum kh_err fips_policy_cert_digest(const struct svc_config *cfg, enum kh_key_type t, enum kh_digest d,
				   const char *what, struct kh_errbuf *e) KH_WUR;

#endif
