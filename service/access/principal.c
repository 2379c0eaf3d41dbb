/* principal.c: who a peer is and which roles it holds (DESIGN §9): a Unix
 * peer by SO_PEERCRED uid/gid and its groups, a TLS peer by the name in its
 * verified certificate; roles from the config's [access] section. */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "access/access.h"
#include "daemon/svc.h"

/* ---- principals -> roles ---- */

static bool svc_in_group(uid_t uid, gid_t primary, gid_t want)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t groups[256];
	int n = 256, i;

	if (primary == want)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return false;
	if (getgrouplist(pw.pw_name, primary, groups, &n) < 0)
		return false;
	for (i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

unsigned svc_roles_for_unix(const struct svc_config *cfg, uid_t uid, gid_t gid)
{
	unsigned roles = 0;
	size_t i;

	for (i = 0; i < cfg->n_grants; i++) {
		const struct svc_grant *g = &cfg->grants[i];

		if (g->kind == SVC_PK_UID && g->uid == uid)
			roles |= g->role;
		else if (g->kind == SVC_PK_GID && svc_in_group(uid, gid, g->gid))
			roles |= g->role;
	}
	return roles;
}

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

void svc_principal_unix(const struct svc_config *cfg, uid_t uid, gid_t gid, pid_t pid, struct svc_principal *who)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n = (int)(sizeof(who->groups) / sizeof(who->groups[0]));
	size_t i;

	memset(who, 0, sizeof(*who));
	who->is_unix = true;
	who->uid = uid;
	who->gid = gid;
	who->pid = pid;
	snprintf(who->name, sizeof(who->name), "uid:%u", (unsigned)uid);
	who->groups[0] = gid;
	who->n_groups = 1;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
	    getgrouplist(pw.pw_name, gid, who->groups, &n) >= 0)
		who->n_groups = n;
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
