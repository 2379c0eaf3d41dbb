/* key_life.c: key generation and deletion with what goes with them (the
 * FIPS policy and record, the grants); see key_life.h. */
#include <stdio.h>

#include "access/access.h"
#include "core/svc.h"
#include "fips/fips.h"
#include "fips/fips_policy.h"
#include "keys/key_life.h"
#include "kh_text.h"

/* The other nodes drop what their token key cache holds under name. */
static void key_announce(struct svc *s, const char *name)
{
	char topic[KH_NAME_MAX + 8];

	if (s->announce == NULL)
		return;
	snprintf(topic, sizeof(topic), "key:%s", name);
	s->announce(s, topic);
}

enum kh_err svc_key_generate(struct svc *s, const char *name, enum kh_key_type type, struct kh_key_info *info,
			     struct kh_errbuf *e)
{
	return svc_key_generate_ex(s, name, type, false, info, e);
}

enum kh_err svc_key_generate_ex(struct svc *s, const char *name, enum kh_key_type type, bool decrypt,
				struct kh_key_info *info, struct kh_errbuf *e)
{
	int r = fips_policy_key_type(s->cfg, type, e);

	if (r == KH_OK)
		r = hsm_key_generate_ex(s->hsm, name, type, decrypt, info, e);
	if (r == KH_OK) {
		selftest_key_generated(s, info->name);
		info->fips_created = selftest_key_is_fips(s, info->name);
		key_announce(s, info->name);
	}
	return r;
}

enum kh_err svc_key_destroy(struct svc *s, const char *name, struct kh_errbuf *e)
{
	int r = hsm_key_delete(s->hsm, name, e);

	if (r == KH_OK) {
		selftest_key_deleted(s, name);
		/* A later key of the same name must not inherit the grants. */
		if (s->grants != NULL)
			access_grants_forget_key(s->grants, name);
		key_announce(s, name);
	}
	return r;
}
