/* visibility.c: what a principal may learn about keys it cannot use
 * (docs/SECURITY.md, "What each role can see"). A signer cannot learn
 * whether a key it has no grant for exists: its name is left out of
 * status and trustpoint lists, and a trustpoint whose key it has no grant
 * for is refused in the same words as one that does not exist. Auditors
 * see names (they read the audit log and the grants, which name every
 * key) but no key material. */
#include <stdlib.h>

#include "access/access.h"
#include "core/svc.h"

enum access_view access_key_view(struct access_grants *p, const struct svc_principal *who, const char *key)
{
	struct kh_errbuf ignore = { 0 };

	if ((who->roles & SVC_ROLE_ADMIN) != 0)
		return ACCESS_VIEW_ALL;
	if (p != NULL && key != NULL && key[0] != '\0' && access_grants_check_key(p, who, key, &ignore) == KH_OK)
		return ACCESS_VIEW_ALL;
	return access_sees_names(who) ? ACCESS_VIEW_NAME : ACCESS_VIEW_NONE;
}

bool access_sees_names(const struct svc_principal *who)
{
	return (who->roles & (SVC_ROLE_ADMIN | SVC_ROLE_AUDITOR)) != 0;
}

size_t access_filter_key_names(struct access_grants *p, const struct svc_principal *who, char **names, size_t n)
{
	size_t i, kept = 0;

	for (i = 0; i < n; i++) {
		if (access_key_view(p, who, names[i]) != ACCESS_VIEW_NONE)
			names[kept++] = names[i];
		else
			free(names[i]);
	}
	for (i = kept; i < n; i++)
		names[i] = NULL;
	return kept;
}

enum kh_err access_tp_denied(const struct svc_principal *who, const char *tp, struct kh_errbuf *e)
{
	/* One message whether or not the trustpoint exists. */
	kh_err_clear(e);
	return kh_err_set(e, KH_E_PERMISSION_DENIED,
			  "%s may not read trustpoint '%s': it needs a grant for the trustpoint's key (an admin "
			  "adds one with 'keyhold policy grant KEY %s')",
			  who->name, tp, who->name);
}
