/* principal.c: who a peer is and which roles it holds (DESIGN §9): a Unix
 * peer by SO_PEERCRED uid/gid and the groups it holds (SO_PEERGROUPS), a
 * TLS peer by the name in its verified certificate; roles from the
 * config's [access] section. */
#include <stdio.h>
#include <string.h>

#include "access/access.h"
#include "core/svc.h"

/* ---- principals -> roles ---- */

unsigned svc_roles_for_cert(const struct svc_config *cfg, const char *name)
{
	unsigned roles = 0;
	size_t i;

	for (i = 0; i < cfg->n_grants; i++)
		if (cfg->grants[i].kind == SVC_PK_CERT && strcmp(cfg->grants[i].cert, name) == 0)
			roles |= cfg->grants[i].role;
	return roles;
}

/* ---- principals (access.h) ---- */

void svc_principal_unix(const struct svc_config *cfg, uid_t uid, gid_t gid, pid_t pid, const gid_t *groups,
			size_t n_groups, struct svc_principal *who)
{
	size_t i, max = sizeof(who->groups) / sizeof(who->groups[0]);

	memset(who, 0, sizeof(*who));
	who->is_unix = true;
	who->uid = uid;
	who->gid = gid;
	who->pid = pid;
	snprintf(who->name, sizeof(who->name), "uid:%u", (unsigned)uid);
	/* The groups the peer process holds (SO_PEERGROUPS), not the ones the
	 * group database lists for its user: a process that dropped a group
	 * does not keep its role, and one given a group by setgroups(2) has
	 * it. Past the array's size the rest are not looked at (fewer roles,
	 * never more). */
	who->groups[0] = gid;
	who->n_groups = 1;
	for (i = 0; i < n_groups && (size_t)who->n_groups < max; i++)
		if (groups[i] != gid)
			who->groups[who->n_groups++] = groups[i];
	for (i = 0; i < cfg->n_grants; i++)
		if (svc_grant_matches(&cfg->grants[i], who))
			who->roles |= cfg->grants[i].role;
}

void svc_principal_cert(const struct svc_config *cfg, const char *name, struct svc_principal *who)
{
	memset(who, 0, sizeof(*who));
	who->is_unix = false;
	snprintf(who->name, sizeof(who->name), "cert:%s", name);
	who->roles = svc_roles_for_cert(cfg, name);
}

bool svc_grant_matches(const struct svc_grant *g, const struct svc_principal *who)
{
	int i;

	switch (g->kind) {
	case SVC_PK_UID:
		return who->is_unix && who->uid == g->uid;
	case SVC_PK_GID:
		if (!who->is_unix)
			return false;
		for (i = 0; i < who->n_groups; i++)
			if (who->groups[i] == g->gid)
				return true;
		return who->gid == g->gid;
	case SVC_PK_CERT:
		return !who->is_unix && strncmp(who->name, "cert:", 5) == 0 && strcmp(who->name + 5, g->cert) == 0;
	}
	return false;
}
