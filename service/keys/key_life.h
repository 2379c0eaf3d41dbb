/* keys/key_life.h: key generation and deletion as every caller (the key
 * and trustpoint RPCs, PKI recovery) does them: the FIPS policy, the token,
 * the record of FIPS-made keys, and the grants a deleted key leaves. */
#ifndef KEYS_KEY_LIFE_H
#define KEYS_KEY_LIFE_H

#include "hsm.h"
#include "kh_err.h"
#include "kh_types.h"

struct svc;

/* Generates key name of type in the token after the FIPS policy allows
 * it; info describes the new key (fips_created set). */
enum kh_err svc_key_generate(struct svc *s, const char *name, enum kh_key_type type, struct kh_key_info *info,
			     struct kh_errbuf *e) KH_WUR;
/* svc_key_generate; decrypt: an RSA key that may also decrypt (SCEP
 * trustpoints only, hsm_key_generate_ex). */
enum kh_err svc_key_generate_ex(struct svc *s, const char *name, enum kh_key_type type, bool decrypt,
				struct kh_key_info *info, struct kh_errbuf *e) KH_WUR;
/* Deletes key name from the token and forgets its FIPS record and its
 * runtime grants. */
enum kh_err svc_key_destroy(struct svc *s, const char *name, struct kh_errbuf *e) KH_WUR;

#endif
