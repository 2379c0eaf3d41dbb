/* config.c: the INI configuration: defaults, parsing with inih (a line-
 * counting reader gives every error its line), validation. */
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "kh_log.h"
#include "kh_util.h"
#include "proto.h"
#include "kh_types.h"
#include "config/config.h"

struct cfg_parse {
	struct svc_config *c;
	const char *name;
	/* the reader's position */
	const char *text;
	size_t off;
	int line;
	/* the first error */
	int err_line;
	char err[384];
	/* keys seen, to refuse repeats outside [access] */
	char seen[128][112];
	unsigned n_seen;
};

const char *svc_fips_mode_name(enum svc_fips_mode m)
{
	switch (m) {
	case SVC_FIPS_OFF: return "off";
	case SVC_FIPS_ALIGNED: return "aligned";
	case SVC_FIPS_VALIDATED: return "validated";
	}
	return "?";
}

/* Records the first problem (its line and message) and returns
 * KH_E_INVALID_ARGUMENT, so that a helper reads `return cfg_fail(p, ...)`. */
static enum kh_err cfg_fail(struct cfg_parse *p, const char *fmt, ...) KH_PRINTF(2, 3);
static enum kh_err cfg_fail(struct cfg_parse *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err_line != 0)
		return KH_E_INVALID_ARGUMENT;
	p->err_line = p->line;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	return KH_E_INVALID_ARGUMENT;
}

/* The same for an allocation that failed. */
static enum kh_err cfg_oom(struct cfg_parse *p)
{
	kh_ignore(cfg_fail(p, "out of memory"));
	return KH_E_RESOURCE_EXHAUSTED;
}

static enum kh_err cfg_str(struct cfg_parse *p, char **dst, const char *v)
{
	char *s;

	if (*v == '\0')
		return cfg_fail(p, "empty value");
	s = strdup(v);
	if (s == NULL)
		return cfg_oom(p);
	free(*dst);
	*dst = s;
	return KH_OK;
}

static enum kh_err cfg_uint(struct cfg_parse *p, unsigned *dst, const char *name, const char *v, unsigned min,
			    unsigned max)
{
	uint64_t n;

	if (kh_parse_u64(v, min, max, &n) != 0)
		return cfg_fail(p, "%s must be a whole number from %u to %u, not '%s'", name, min, max, v);
	*dst = (unsigned)n;
	return KH_OK;
}

static enum kh_err cfg_bool(struct cfg_parse *p, bool *dst, const char *name, const char *v)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0 || strcmp(v, "1") == 0) {
		*dst = true;
		return KH_OK;
	}
	if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "off") == 0 || strcmp(v, "0") == 0) {
		*dst = false;
		return KH_OK;
	}
	return cfg_fail(p, "%s must be yes or no, not '%s'", name, v);
}

/* One of exactly two words: w1 sets *dst to v1, w2 to !v1. */
static enum kh_err cfg_either(struct cfg_parse *p, bool *dst, const char *name, const char *v, const char *w1, bool v1,
			      const char *w2)
{
	if (strcmp(v, w1) == 0)
		*dst = v1;
	else if (strcmp(v, w2) == 0)
		*dst = !v1;
	else
		return cfg_fail(p, "%s must be %s or %s, not '%s'", name, w1, w2, v);
	return KH_OK;
}

enum kh_err svc_principal_parse(const char *s, struct svc_grant *g, char *err, size_t errsz)
{
	uint64_t n;
	unsigned role = g->role;

	memset(g, 0, sizeof(*g));
	g->role = role;
	if (!kh_principal_valid(s)) {
		snprintf(err, errsz, "principal '%.80s' is not uid:N, gid:N, user:NAME, group:NAME or cert:NAME", s);
		return KH_E_INVALID_ARGUMENT;
	}
	kh_strlcpy(g->text, s, sizeof(g->text));
	if (strncmp(s, "uid:", 4) == 0 && kh_parse_u64(s + 4, 0, 0xfffffffe, &n) == 0) {
		g->kind = SVC_PK_UID;
		g->uid = (uid_t)n;
	} else if (strncmp(s, "gid:", 4) == 0 && kh_parse_u64(s + 4, 0, 0xfffffffe, &n) == 0) {
		g->kind = SVC_PK_GID;
		g->gid = (gid_t)n;
	} else if (strncmp(s, "user:", 5) == 0) {
		struct passwd pw, *res = NULL;
		char buf[4096];

		if (getpwnam_r(s + 5, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
			snprintf(err, errsz, "unknown user '%.64s'", s + 5);
			return KH_E_NOT_FOUND;
		}
		g->kind = SVC_PK_UID;
		g->uid = pw.pw_uid;
	} else if (strncmp(s, "group:", 6) == 0) {
		struct group gr, *res = NULL;
		char buf[16384];

		if (getgrnam_r(s + 6, &gr, buf, sizeof(buf), &res) != 0 || res == NULL) {
			snprintf(err, errsz, "unknown group '%.64s'", s + 6);
			return KH_E_NOT_FOUND;
		}
		g->kind = SVC_PK_GID;
		g->gid = gr.gr_gid;
	} else if (strncmp(s, "cert:", 5) == 0 && strlen(s + 5) < sizeof(g->cert)) {
		g->kind = SVC_PK_CERT;
		kh_strlcpy(g->cert, s + 5, sizeof(g->cert));
	} else {
		snprintf(err, errsz, "principal '%.80s' is not uid:N, gid:N, user:NAME, group:NAME or cert:NAME", s);
		return KH_E_INVALID_ARGUMENT;
	}
	return KH_OK;
}

/* An account named by user:NAME or group:NAME that does not exist (any
 * more): the entry names no one and is logged, but does not stop the
 * start: a userdel must not take keyholdd down for everyone else. */
static void cfg_gone_account(struct cfg_parse *p, const char *err)
{
	log_warn("%s:%d: %s: the entry is ignored (it names no one until the account exists)", p->name, p->line,
		 err);
}

/* One principal of an [access] list. */
static enum kh_err cfg_principal(struct cfg_parse *p, unsigned role, const char *s)
{
	struct svc_grant g;
	struct svc_grant *ng;
	char err[160];
	enum kh_err pr;

	memset(&g, 0, sizeof(g));
	g.role = role;
	pr = svc_principal_parse(s, &g, err, sizeof(err));
	if (pr == KH_E_NOT_FOUND) {
		cfg_gone_account(p, err);
		return KH_OK;
	}
	if (pr != KH_OK)
		return cfg_fail(p, "%s", err);
	ng = realloc(p->c->grants, (p->c->n_grants + 1) * sizeof(*ng));
	if (ng == NULL)
		return cfg_oom(p);
	p->c->grants = ng;
	p->c->grants[p->c->n_grants++] = g;
	return KH_OK;
}

static enum kh_err cfg_access(struct cfg_parse *p, const char *name, const char *value)
{
	unsigned role;
	char buf[1024];
	char *tok, *save = NULL;
	enum kh_err r = KH_OK;

	if (strcmp(name, "admin") == 0)
		role = SVC_ROLE_ADMIN;
	else if (strcmp(name, "signer") == 0)
		role = SVC_ROLE_SIGNER;
	else if (strcmp(name, "auditor") == 0)
		role = SVC_ROLE_AUDITOR;
	else
		return cfg_fail(p, "unknown role '%s' in [access] (roles: admin, signer, auditor)", name);
	if (!kh_strlcpy(buf, value, sizeof(buf)))
		return cfg_fail(p, "principal list too long");
	for (tok = strtok_r(buf, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save))
		KH_TRY(cfg_principal(p, role, tok));
out:
	return r;
}

static enum kh_err cfg_service(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;

	if (strcmp(n, "socket") == 0)
		return cfg_str(p, &c->socket, v);
	if (strcmp(n, "socket_group") == 0)
		return cfg_str(p, &c->socket_group, v);
	if (strcmp(n, "socket_mode") == 0) {
		char *end = NULL;
		unsigned long m = strtoul(v, &end, 8);

		if (*v == '\0' || *end != '\0' || m > 0777 || (m & 0007) != 0)
			return cfg_fail(p, "socket_mode must be octal like 0660 and give others no access, not '%s'", v);
		c->socket_mode = (mode_t)m;
		return KH_OK;
	}
	if (strcmp(n, "state_dir") == 0)
		return cfg_str(p, &c->state_dir, v);
	if (strcmp(n, "workers") == 0)
		return cfg_uint(p, &c->workers, n, v, 1, 256);
	if (strcmp(n, "fips_mode") == 0) {
		if (strcmp(v, "off") == 0)
			c->fips_mode = SVC_FIPS_OFF;
		else if (strcmp(v, "aligned") == 0)
			c->fips_mode = SVC_FIPS_ALIGNED;
		else if (strcmp(v, "validated") == 0)
			c->fips_mode = SVC_FIPS_VALIDATED;
		else
			return cfg_fail(p, "fips_mode must be off, aligned or validated, not '%s'", v);
		return KH_OK;
	}
	if (strcmp(n, "fips_allow_eddsa") == 0)
		return cfg_bool(p, &c->fips_allow_eddsa, n, v);
	if (strcmp(n, "frame_max") == 0)
		return cfg_uint(p, &c->frame_max, n, v, 4096, PROTO_FRAME_MAX_LIMIT);
	if (strcmp(n, "max_connections") == 0)
		return cfg_uint(p, &c->max_connections, n, v, 1, 100000);
	if (strcmp(n, "max_inflight") == 0)
		return cfg_uint(p, &c->max_inflight, n, v, 1, 65536);
	if (strcmp(n, "inline_max_us") == 0)
		return cfg_uint(p, &c->inline_max_us, n, v, 0, 100000);
	if (strcmp(n, "loops") == 0)
		return cfg_uint(p, &c->loops, n, v, 0, 64);
	if (strcmp(n, "loop_sched") == 0)
		return cfg_either(p, &c->loop_sched_normal, n, v, "batch", false, "normal");
	if (strcmp(n, "idle_timeout") == 0)
		return cfg_uint(p, &c->idle_timeout_s, n, v, 1, 86400);
	if (strcmp(n, "user") == 0)
		return cfg_str(p, &c->user, v);
	if (strcmp(n, "rate") == 0)
		return cfg_uint(p, &c->rate, n, v, 0, 10000000);
	if (strcmp(n, "rate_burst") == 0)
		return cfg_uint(p, &c->rate_burst, n, v, 1, 100000000);
	if (strcmp(n, "log_level") == 0) {
		if (strcmp(v, "error") == 0)
			c->log_level = KH_LOG_ERR;
		else if (strcmp(v, "warn") == 0)
			c->log_level = KH_LOG_WARN;
		else if (strcmp(v, "info") == 0)
			c->log_level = KH_LOG_INFO;
		else if (strcmp(v, "debug") == 0)
			c->log_level = KH_LOG_DEBUG;
		else
			return cfg_fail(p, "log_level must be error, warn, info or debug, not '%s'", v);
		return KH_OK;
	}
	return cfg_fail(p, "unknown key '%s' in [service]", n);
}

/* pin_credential = NAME: the PIN is the systemd credential NAME
 * (LoadCredential=NAME:/path or LoadCredentialEncrypted= in the unit), read
 * from $CREDENTIALS_DIRECTORY/NAME with the same checks as pin_file. */
static enum kh_err cfg_pin_credential(struct cfg_parse *p, const char *v)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char *path;
	size_t n;

	if (*v == '\0' || strchr(v, '/') != NULL || strcmp(v, ".") == 0 || strcmp(v, "..") == 0 ||
	    strlen(v) > 255)
		return cfg_fail(p, "pin_credential must be a credential name (no '/'), not '%s'", v);
	if (dir == NULL || dir[0] != '/')
		return cfg_fail(p, "pin_credential = %s needs systemd's CREDENTIALS_DIRECTORY, which is not set: "
				   "start keyholdd from a unit with LoadCredential=%s:/path/to/pin, or use pin_file",
				v, v);
	n = strlen(dir) + strlen(v) + 2;
	path = malloc(n);
	if (path == NULL)
		return cfg_oom(p);
	snprintf(path, n, "%s/%s", dir, v);
	p->c->pin_file = path;
	return KH_OK;
}

static enum kh_err cfg_token(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;

	if (strcmp(n, "module") == 0)
		return cfg_str(p, &c->module, v);
	if (strcmp(n, "uri") == 0) {
		if (strncmp(v, "pkcs11:", 7) != 0)
			return cfg_fail(p, "uri must be a PKCS#11 URI like pkcs11:token=keyhold, not '%s'", v);
		return cfg_str(p, &c->uri, v);
	}
	if (strcmp(n, "pin_file") == 0 || strcmp(n, "pin_credential") == 0) {
		/* Repeats of one key were refused above; here the other one. */
		if (c->pin_file != NULL)
			return cfg_fail(p, "set pin_file or pin_credential, not both");
		if (strcmp(n, "pin_file") == 0)
			return cfg_str(p, &c->pin_file, v);
		return cfg_pin_credential(p, v);
	}
	if (strcmp(n, "sessions") == 0)
		return cfg_uint(p, &c->sessions, n, v, 1, 256);
	if (strcmp(n, "lock_spin_us") == 0)
		return cfg_uint(p, &c->lock_spin_us, n, v, 0, 1000);
	return cfg_fail(p, "unknown key '%s' in [token]", n);
}

static enum kh_err cfg_tls(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;

	if (strcmp(n, "listen") == 0) {
		if (strchr(v, ':') == NULL)
			return cfg_fail(p, "listen must be HOST:PORT, not '%s'", v);
		return cfg_str(p, &c->tls_listen, v);
	}
	if (strcmp(n, "key") == 0) {
		if (!kh_name_valid(v))
			return cfg_fail(p, "key must name a token key ([A-Za-z0-9._-]{1,64}), not '%s'", v);
		return cfg_str(p, &c->tls_key, v);
	}
	if (strcmp(n, "cert") == 0)
		return cfg_str(p, &c->tls_cert, v);
	if (strcmp(n, "client_truststore") == 0)
		return cfg_str(p, &c->tls_client_truststore, v);
	if (strcmp(n, "client_ca") == 0)
		return cfg_str(p, &c->tls_client_ca, v);
	if (strcmp(n, "handshake_timeout") == 0)
		return cfg_uint(p, &c->tls_handshake_timeout_s, n, v, 1, 600);
	return cfg_fail(p, "unknown key '%s' in [tls]", n);
}

/* ---- security sections (issue 5) ---- */

static unsigned svc_name_set_parse(const char *s, const char *what, const char *const *names, unsigned max,
				   char *err, size_t errsz)
{
	char buf[256];
	char *tok, *save = NULL;
	unsigned set = 0, i;

	if (!kh_strlcpy(buf, s, sizeof(buf))) {
		snprintf(err, errsz, "%s list too long", what);
		return 0;
	}
	for (tok = strtok_r(buf, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save)) {
		for (i = 1; i <= max; i++)
			if (strcmp(tok, names[i]) == 0)
				break;
		if (i > max) {
			snprintf(err, errsz, "unknown %s '%.32s'", what, tok);
			return 0;
		}
		set |= 1u << i;
	}
	if (set == 0)
		snprintf(err, errsz, "empty %s list", what);
	return set;
}

unsigned svc_digest_set_parse(const char *s, char *err, size_t errsz)
{
	static const char *const names[] = { "", "sha256", "sha384", "sha512", "sha1", "md5", "sha224" };

	return svc_name_set_parse(s, "digest", names, KH_DIGEST_MAX, err, errsz);
}

unsigned svc_padding_set_parse(const char *s, char *err, size_t errsz)
{
	static const char *const names[] = { "", "pkcs1", "pss" };

	return svc_name_set_parse(s, "padding", names, KH_PAD_MAX, err, errsz);
}

static enum kh_err cfg_key_policy(struct cfg_parse *p, const char *section, const char *n, const char *v)
{
	struct svc_config *c = p->c;
	struct svc_key_policy_cfg *kp = NULL;
	const char *key = section + 4;
	char err[160] = "";
	size_t i;

	if (!kh_name_valid(key))
		return cfg_fail(p, "[key:%.64s]: a key name matches [A-Za-z0-9._-]{1,64}", key);
	for (i = 0; i < c->n_key_policies; i++)
		if (strcmp(c->key_policies[i].key, key) == 0)
			kp = &c->key_policies[i];
	if (kp == NULL) {
		struct svc_key_policy_cfg *nk = realloc(c->key_policies, (c->n_key_policies + 1) * sizeof(*nk));

		if (nk == NULL)
			return cfg_oom(p);
		c->key_policies = nk;
		kp = &c->key_policies[c->n_key_policies++];
		memset(kp, 0, sizeof(*kp));
		kh_strlcpy(kp->key, key, sizeof(kp->key));
		kp->line = p->line;
	}
	if (strcmp(n, "signers") == 0) {
		char buf[1024];
		char *tok, *save = NULL;

		if (!kh_strlcpy(buf, v, sizeof(buf)))
			return cfg_fail(p, "signers list too long");
		for (tok = strtok_r(buf, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save)) {
			struct svc_grant g, *ng;
			enum kh_err pr;

			memset(&g, 0, sizeof(g));
			pr = svc_principal_parse(tok, &g, err, sizeof(err));
			if (pr == KH_E_NOT_FOUND) {
				cfg_gone_account(p, err);
				kp->n_gone++;
				continue;
			}
			if (pr != KH_OK)
				return cfg_fail(p, "%s", err);
			ng = realloc(kp->signers, (kp->n_signers + 1) * sizeof(*ng));
			if (ng == NULL)
				return cfg_oom(p);
			kp->signers = ng;
			kp->signers[kp->n_signers++] = g;
		}
		return KH_OK;
	}
	if (strcmp(n, "digests") == 0) {
		kp->digests = svc_digest_set_parse(v, err, sizeof(err));
		if (kp->digests == 0)
			return cfg_fail(p, "%s (digests: sha256, sha384, sha512, ...)", err);
		return KH_OK;
	}
	if (strcmp(n, "padding") == 0 || strcmp(n, "paddings") == 0) {
		kp->paddings = svc_padding_set_parse(v, err, sizeof(err));
		if (kp->paddings == 0)
			return cfg_fail(p, "%s (padding: pkcs1, pss)", err);
		return KH_OK;
	}
	return cfg_fail(p, "unknown key '%s' in [key:%s] (keys: signers, digests, padding)", n, key);
}

static enum kh_err cfg_duration(struct cfg_parse *p, unsigned *dst, const char *name, const char *v,
				unsigned min_s, unsigned max_s);

enum kh_err svc_config_bytes(const char *s, uint64_t *out)
{
	static const char units[] = "KMG";
	char num[24];
	size_t len = strlen(s);
	const char *u;
	uint64_t n, mult = 1;

	if (len == 0 || len >= sizeof(num))
		return KH_E_INVALID_ARGUMENT;
	memcpy(num, s, len + 1);
	if ((u = strchr(units, num[len - 1])) != NULL && num[len - 1] != '\0') {
		mult = (uint64_t)1 << (10 * (1 + (u - units)));
		num[--len] = '\0';
	}
	if (len == 0 || strspn(num, "0123456789") != len || kh_parse_u64(num, 0, UINT64_MAX / mult, &n) != 0)
		return KH_E_INVALID_ARGUMENT;
	*out = n * mult;
	return KH_OK;
}

static enum kh_err cfg_audit(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;

	if (strcmp(n, "file") == 0)
		return cfg_str(p, &c->audit_file, v);
	if (strcmp(n, "key") == 0) {
		if (!kh_name_valid(v))
			return cfg_fail(p, "key must name a token key ([A-Za-z0-9._-]{1,64}), not '%s'", v);
		return cfg_str(p, &c->audit_key, v);
	}
	if (strcmp(n, "checkpoint_records") == 0)
		return cfg_uint(p, &c->audit_checkpoint_records, n, v, 1, 1000000);
	if (strcmp(n, "checkpoint_interval") == 0)
		return cfg_uint(p, &c->audit_checkpoint_interval_s, n, v, 1, 86400);
	if (strcmp(n, "anchor_interval") == 0)
		return cfg_uint(p, &c->audit_anchor_interval_s, n, v, 0, 3600);
	if (strcmp(n, "sync") == 0)
		return cfg_either(p, &c->audit_sync_always, n, v, "always", true, "interval");
	if (strcmp(n, "on_tamper") == 0)
		return cfg_either(p, &c->audit_tamper_refuse, n, v, "refuse", true, "report");
	if (strcmp(n, "rotate_size") == 0) {
		if (svc_config_bytes(v, &c->audit_rotate_size) != KH_OK ||
		    (c->audit_rotate_size != 0 && c->audit_rotate_size < 4096))
			return cfg_fail(p, "rotate_size must be 0 (off) or a size of at least 4096 bytes (4096, 512K, 64M, 2G), not '%s'",
					v);
		return KH_OK;
	}
	if (strcmp(n, "rotate_age") == 0) {
		if (strcmp(v, "0") == 0) {
			c->audit_rotate_age_s = 0;
			return KH_OK;
		}
		return cfg_duration(p, &c->audit_rotate_age_s, n, v, 60, 3650u * 86400u);
	}
	if (strcmp(n, "journal") == 0)
		return cfg_either(p, &c->audit_journal, n, v, "yes", true, "no");
	if (strcmp(n, "rotate_keep") == 0)
		return cfg_uint(p, &c->audit_rotate_keep, n, v, 0, 100000);
	return cfg_fail(p,
			"unknown key '%s' in [audit] (keys: file, key, checkpoint_records, checkpoint_interval, anchor_interval, sync, on_tamper, "
			"rotate_size, rotate_age, rotate_keep, journal)",
			n);
}

/* ---- [revocation] and [expiry] (docs/REVOCATION.md) ---- */

enum kh_err svc_config_duration(const char *s, unsigned min_s, unsigned max_s, unsigned *out)
{
	static const struct {
		char unit;
		uint64_t mult;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
	char num[24];
	size_t n, i;
	uint64_t v;

	if (s == NULL || (n = strlen(s)) < 2 || n >= sizeof(num))
		return KH_E_INVALID_ARGUMENT;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (s[n - 1] == units[i].unit)
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		return KH_E_INVALID_ARGUMENT;
	memcpy(num, s, n - 1);
	num[n - 1] = '\0';
	if (kh_parse_u64(num, 0, UINT32_MAX, &v) != 0 || v > UINT32_MAX / units[i].mult)
		return KH_E_INVALID_ARGUMENT;
	v *= units[i].mult;
	if (v < min_s || v > max_s)
		return KH_E_INVALID_ARGUMENT;
	*out = (unsigned)v;
	return KH_OK;
}

void svc_config_argv_free(char **argv)
{
	size_t i;

	if (argv == NULL)
		return;
	for (i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

#define CFG_ARGV_MAX 32

enum kh_err svc_config_argv(const char *s, char ***argv, struct kh_errbuf *e)
{
	char **v = NULL;
	char *word = NULL;
	size_t n = 0, len, wl;
	int r = KH_OK;

	len = strlen(s);
	v = calloc(CFG_ARGV_MAX + 1, sizeof(*v));
	word = malloc(len + 1);
	KH_ENSURE(v != NULL && word != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	for (;;) {
		bool quoted = false, any = false;

		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		wl = 0;
		for (; *s != '\0' && (quoted || (*s != ' ' && *s != '\t')); s++) {
			any = true;
			if (*s == '"') {
				quoted = !quoted;
				continue;
			}
			if (quoted && *s == '\\' && (s[1] == '"' || s[1] == '\\'))
				s++;
			word[wl++] = *s;
		}
		KH_ENSURE(!quoted, kh_err_set(e, KH_E_INVALID_ARGUMENT, "unterminated \" in the command"));
		if (!any)
			continue;
		KH_ENSURE(n < CFG_ARGV_MAX,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "the command has more than %d words", CFG_ARGV_MAX));
		word[wl] = '\0';
		v[n] = strdup(word);
		KH_ENSURE(v[n] != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
		n++;
	}
	KH_ENSURE(n > 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "the command is empty"));
	*argv = v;
	v = NULL;
out:
	free(word);
	svc_config_argv_free(v);
	return r;
}

static enum kh_err cfg_duration(struct cfg_parse *p, unsigned *dst, const char *name, const char *v,
				unsigned min_s, unsigned max_s)
{
	if (svc_config_duration(v, min_s, max_s, dst) != KH_OK)
		return cfg_fail(p, "%s must be a duration from %us to %us written with a unit (45s, 30m, 12h, 7d), not '%s'",
				name, min_s, max_s, v);
	return KH_OK;
}

static enum kh_err cfg_revocation(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;

	if (strcmp(n, "connect_timeout") == 0)
		return cfg_duration(p, &c->rev_connect_timeout_s, n, v, 1, 300);
	if (strcmp(n, "timeout") == 0)
		return cfg_duration(p, &c->rev_timeout_s, n, v, 1, 600);
	if (strcmp(n, "recheck_interval") == 0)
		return cfg_duration(p, &c->rev_recheck_interval_s, n, v, 60, 7u * 86400u);
	if (strcmp(n, "crl_max_size") == 0)
		return cfg_uint(p, &c->rev_crl_max, n, v, 1024, 256u << 20);
	if (strcmp(n, "ocsp_max_size") == 0)
		return cfg_uint(p, &c->rev_ocsp_max, n, v, 512, 16u << 20);
	if (strcmp(n, "ocsp_nonce") == 0) {
		if (strcmp(v, "yes") == 0)
			c->rev_nonce = SVC_NONCE_ON;
		else if (strcmp(v, "no") == 0)
			c->rev_nonce = SVC_NONCE_OFF;
		else if (strcmp(v, "required") == 0)
			c->rev_nonce = SVC_NONCE_REQUIRED;
		else
			return cfg_fail(p, "ocsp_nonce must be yes, no or required, not '%s'", v);
		return KH_OK;
	}
	if (strcmp(n, "proxy") == 0) {
		if (strncmp(v, "http://", 7) != 0)
			return cfg_fail(p, "proxy must be an http:// URL, not '%s'", v);
		return cfg_str(p, &c->rev_proxy, v);
	}
	return cfg_fail(p, "unknown key '%s' in [revocation]", n);
}

/* hook = /path/to/program args...: run without a shell or PATH search, so
 * the first word names the program itself. */
static enum kh_err cfg_hook(struct cfg_parse *p, const char *v)
{
	struct kh_errbuf e = { 0 };
	char **argv = NULL;
	enum kh_err r;

	r = svc_config_argv(v, &argv, &e);
	if (r != KH_OK) {
		kh_ignore(cfg_fail(p, "hook: %s", e.msg));
		goto out;
	}
	KH_ENSURE(argv[0][0] == '/' && access(argv[0], X_OK) == 0,
		  cfg_fail(p, "hook: '%s' must be the absolute path of an executable program", argv[0]));
	svc_config_argv_free(p->c->exp_hook);
	p->c->exp_hook = argv;
	argv = NULL;
out:
	svc_config_argv_free(argv);
	return r;
}

static enum kh_err cfg_expiry(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;

	if (strcmp(n, "notify_days") == 0)
		return cfg_uint(p, &c->exp_notify_days, n, v, 1, 3650);
	if (strcmp(n, "notify_every") == 0)
		return cfg_duration(p, &c->exp_notify_every_s, n, v, 60, 365u * 86400u);
	if (strcmp(n, "check_interval") == 0)
		return cfg_duration(p, &c->exp_check_interval_s, n, v, 10, 7u * 86400u);
	if (strcmp(n, "hook_timeout") == 0)
		return cfg_duration(p, &c->exp_hook_timeout_s, n, v, 1, 3600);
	if (strcmp(n, "hook") == 0)
		return cfg_hook(p, v);
	return cfg_fail(p, "unknown key '%s' in [expiry]", n);
}

/* [metrics] listen: HOST:PORT or [IPV6]:PORT with a numeric address (no
 * name is looked up at start). Loopback only unless allow_remote = yes:
 * the endpoint has no authentication of its own (docs/OPERATIONS.md). */
static enum kh_err cfg_listen_addr(struct cfg_parse *p, const char *v, char **host_out, unsigned *port_out,
				   bool *loopback_out)
{
	char host[64], port[8];
	struct addrinfo hints, *ai = NULL;
	const char *colon = strrchr(v, ':'), *h = v;
	bool bracket = v[0] == '[';
	size_t hl;
	uint64_t pn;

	if (colon == NULL || colon == v)
		return cfg_fail(p, "listen must be ADDRESS:PORT (127.0.0.1:9464, [::1]:9464), not '%s'", v);
	hl = (size_t)(colon - v);
	if (bracket) {
		if (hl < 3 || v[hl - 1] != ']')
			return cfg_fail(p, "listen must be ADDRESS:PORT (127.0.0.1:9464, [::1]:9464), not '%s'", v);
		h = v + 1;
		hl -= 2;
	}
	if (hl >= sizeof(host) || strlen(colon + 1) >= sizeof(port) || kh_parse_u64(colon + 1, 0, 65535, &pn) != 0)
		return cfg_fail(p, "listen must be ADDRESS:PORT (127.0.0.1:9464, [::1]:9464), not '%s'", v);
	memcpy(host, h, hl);
	host[hl] = '\0';
	/* An IPv6 address takes brackets: "::1:9464" is ambiguous. */
	if (!bracket && strchr(host, ':') != NULL)
		return cfg_fail(p, "listen must be ADDRESS:PORT with an IPv6 address in brackets ([::1]:9464), not '%s'",
				v);
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0 || ai == NULL)
		return cfg_fail(p, "listen: '%s' is not a numeric IPv4 or IPv6 address", host);
	if (ai->ai_family == AF_INET)
		*loopback_out = (ntohl(((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
	else
		*loopback_out = ai->ai_family == AF_INET6 &&
					 IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr);
	freeaddrinfo(ai);
	free(*host_out);
	*host_out = strdup(host);
	if (*host_out == NULL)
		return cfg_fail(p, "out of memory");
	*port_out = (unsigned)pn;
	return KH_OK;
}

static enum kh_err cfg_metrics_listen(struct cfg_parse *p, const char *v)
{
	enum kh_err r = cfg_listen_addr(p, v, &p->c->metrics_host, &p->c->metrics_port, &p->c->metrics_loopback);

	if (r == KH_OK)
		p->c->metrics_listen = true;
	return r;
}

/* [acme] http01_listen: where keyholdd answers ACME http-01 challenges
 * (service/pki/acme_http01.c); the ACME server must reach it on port 80
 * of the names being validated (a proxy or port forward in front). */
static enum kh_err cfg_acme(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;
	bool loopback = false;

	if (strcmp(n, "http01_listen") == 0)
		return cfg_listen_addr(p, v, &c->acme_http01_host, &c->acme_http01_port, &loopback);
	if (strcmp(n, "timeout") == 0)
		return cfg_duration(p, &c->acme_timeout_s, n, v, 5, 3600);
	return cfg_fail(p, "unknown key '%s' in [acme]", n);
}

/* [scep]: the back-off of PENDING requests (rpc/scep_poll.c). */
static enum kh_err cfg_scep(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;

	if (strcmp(n, "poll_interval") == 0)
		return cfg_duration(p, &c->scep_poll_interval_s, n, v, 10, 86400);
	if (strcmp(n, "poll_max") == 0)
		return cfg_duration(p, &c->scep_poll_max_s, n, v, 10, 7u * 86400u);
	if (strcmp(n, "poll_timeout") == 0)
		return cfg_duration(p, &c->scep_poll_timeout_s, n, v, 60, 365u * 86400u);
	return cfg_fail(p, "unknown key '%s' in [scep]", n);
}

static enum kh_err cfg_metrics(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;

	if (strcmp(n, "listen") == 0)
		return cfg_metrics_listen(p, v);
	if (strcmp(n, "allow_remote") == 0)
		return cfg_bool(p, &c->metrics_allow_remote, n, v);
	if (strcmp(n, "probe_interval") == 0)
		return cfg_duration(p, &c->metrics_probe_interval_s, n, v, 1, 3600);
	return cfg_fail(p, "unknown key '%s' in [metrics]", n);
}

/* [state]: where keyholdd keeps its state (service/store/): SQLite in
 * state_dir, or a PostgreSQL database several nodes share. The password
 * is never here: password_file, or the systemd credential
 * keyhold-db-password. */
static enum kh_err cfg_state(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;

	if (strcmp(n, "backend") == 0)
		return cfg_either(p, &c->state_postgresql, n, v, "sqlite", false, "postgresql");
	if (strcmp(n, "dsn") == 0)
		return cfg_str(p, &c->state_dsn, v);
	if (strcmp(n, "password_file") == 0) {
		if (v[0] != '/')
			return cfg_fail(p, "password_file must be an absolute path, not '%s'", v);
		return cfg_str(p, &c->state_password_file, v);
	}
	if (strcmp(n, "password") == 0)
		return cfg_fail(p, "the database password is never written in the configuration: put it in a file "
				   "(mode 0600, owned by keyholdd's user) named by password_file, or in the systemd "
				   "credential keyhold-db-password");
	return cfg_fail(p, "unknown key '%s' in [state]", n);
}

/* [cluster] (docs/CLUSTER.md): this node's name among the nodes sharing
 * one state database, and the lease of the scheduled roles. */
static enum kh_err cfg_cluster(struct cfg_parse *p, const char *n, const char *v)
{
	struct svc_config *c = p->c;

	if (strcmp(n, "node") == 0) {
		if (!kh_name_valid(v))
			return cfg_fail(p, "[cluster] node = '%s': a node name is 1-64 of A-Z a-z 0-9 . _ -", v);
		return cfg_str(p, &c->cluster_node, v);
	}
	if (strcmp(n, "lease_ttl") == 0)
		return cfg_duration(p, &c->cluster_lease_ttl_s, n, v, 3, 3600);
	return cfg_fail(p, "unknown key '%s' in [cluster]", n);
}

/* One name = value of section. */
static enum kh_err cfg_entry(struct cfg_parse *p, const char *section, const char *name, const char *value)
{
	char key[112];
	unsigned i;

	if (strcmp(section, "access") != 0 && !(strncmp(section, "key:", 4) == 0 && strcmp(name, "signers") == 0)) {
		snprintf(key, sizeof(key), "%.80s.%.24s", section, name);
		for (i = 0; i < p->n_seen; i++)
			if (strcmp(p->seen[i], key) == 0)
				return cfg_fail(p, "'%s' is set twice in [%s] (an indented line continues the previous one)",
						name, section);
		if (p->n_seen < sizeof(p->seen) / sizeof(p->seen[0]))
			kh_strlcpy(p->seen[p->n_seen++], key, sizeof(p->seen[0]));
	}
	if (strcmp(section, "service") == 0)
		return cfg_service(p, name, value);
	if (strcmp(section, "token") == 0)
		return cfg_token(p, name, value);
	if (strcmp(section, "tls") == 0)
		return cfg_tls(p, name, value);
	if (strcmp(section, "access") == 0)
		return cfg_access(p, name, value);
	if (strcmp(section, "audit") == 0)
		return cfg_audit(p, name, value);
	if (strncmp(section, "key:", 4) == 0)
		return cfg_key_policy(p, section, name, value);
	if (strcmp(section, "revocation") == 0)
		return cfg_revocation(p, name, value);
	if (strcmp(section, "expiry") == 0)
		return cfg_expiry(p, name, value);
	if (strcmp(section, "metrics") == 0)
		return cfg_metrics(p, name, value);
	if (strcmp(section, "acme") == 0)
		return cfg_acme(p, name, value);
	if (strcmp(section, "scep") == 0)
		return cfg_scep(p, name, value);
	if (strcmp(section, "state") == 0)
		return cfg_state(p, name, value);
	if (strcmp(section, "cluster") == 0)
		return cfg_cluster(p, name, value);
	if (*section == '\0')
		return cfg_fail(p, "'%s' is outside any section; put it under [service], [token], [tls] or [access]",
				name);
	return cfg_fail(p, "unknown section [%s] (sections: service, token, tls, access, audit, key:NAME, revocation, expiry, metrics, acme, scep, state, cluster)",
			section);
}

/* The inih callback: the one place an enum kh_err becomes inih's 1 (go
 * on) or 0 (this line is wrong). */
static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parse *p = user;

	if (p->err_line != 0)
		return 1; /* report only the first problem */
	return cfg_entry(p, section, name, value) == KH_OK;
}

/* fgets over a string, counting lines for error messages. inih reads
 * into a fixed buffer of num bytes (INI_MAX_LINE) and would take the rest
 * of a longer line as a line of its own, so that the error (and every
 * line number after it) would be wrong: refuse such a line instead. */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_parse *p = stream;
	size_t n = 0;

	if (p->text[p->off] == '\0' || num < 2)
		return NULL;
	while (n < (size_t)num - 1 && p->text[p->off] != '\0') {
		char ch = p->text[p->off++];

		str[n++] = ch;
		if (ch == '\n')
			break;
	}
	str[n] = '\0';
	p->line++;
	if (n == (size_t)num - 1 && str[n - 1] != '\n') {
		/* The buffer is full: fine if the line ends right here. */
		if (p->text[p->off] == '\r' && p->text[p->off + 1] == '\n')
			p->off++;
		if (p->text[p->off] == '\n')
			p->off++;
		else if (p->text[p->off] != '\0') {
			kh_ignore(cfg_fail(p, "line is longer than %d characters", num - 1));
			return NULL;
		}
	}
	return str;
}

static struct svc_config *cfg_defaults(void)
{
	struct svc_config *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->socket_mode = 0660;
	c->workers = 4;
	c->fips_mode = SVC_FIPS_OFF;
	c->frame_max = PROTO_FRAME_MAX_DEFAULT;
	c->max_connections = 4096;
	c->max_inflight = 128;
	c->inline_max_us = 300;
	c->idle_timeout_s = 600;
	c->log_level = KH_LOG_INFO;
	c->sessions = 8;
	c->lock_spin_us = 30;
	c->tls_handshake_timeout_s = 10;
	c->audit_checkpoint_records = 256;
	c->audit_checkpoint_interval_s = 60;
	c->audit_anchor_interval_s = 1;
	c->rev_connect_timeout_s = 5;
	c->rev_timeout_s = 15;
	c->rev_crl_max = 16u << 20;
	c->rev_ocsp_max = 64u << 10;
	c->rev_nonce = SVC_NONCE_ON;
	c->rev_recheck_interval_s = 3600;
	c->exp_notify_days = 30;
	c->exp_notify_every_s = 86400;
	c->exp_check_interval_s = 3600;
	c->exp_hook_timeout_s = 30;
	c->metrics_probe_interval_s = 5;
	c->acme_timeout_s = 120;
	c->scep_poll_interval_s = 60;
	c->scep_poll_max_s = 3600;
	c->scep_poll_timeout_s = 7u * 86400u;
	c->socket = strdup(KH_DEFAULT_SOCKET);
	c->state_dir = strdup("/var/lib/keyhold");
	if (c->socket == NULL || c->state_dir == NULL) {
		svc_config_free(c);
		return NULL;
	}
	return c;
}

enum kh_err svc_config_parse(const char *text, const char *name, struct svc_config **out, struct kh_errbuf *e)
{
	struct cfg_parse p;
	int rc, r = KH_OK;

	memset(&p, 0, sizeof(p));
	p.name = name;
	p.text = text;
	p.c = cfg_defaults();
	if (p.c == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	rc = ini_parse_stream(cfg_reader, &p, cfg_handler, &p);
	/* rc is the first line inih found wrong (syntax, or a handler that
	 * refused): report whichever problem comes first in the file. */
	if (rc > 0 && (p.err_line == 0 || rc < p.err_line)) {
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s:%d: syntax error: expected [section] or name = value",
			       name, rc);
		goto out;
	}
	if (p.err_line != 0) {
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s:%d: %s", name, p.err_line, p.err);
		goto out;
	}
	if (rc < 0) {
		r = kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "%s: out of memory", name);
		goto out;
	}
	/* Whole-file checks: the line is where the file ends. */
	if (p.c->module == NULL || p.c->uri == NULL || p.c->pin_file == NULL) {
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
			       "%s:%d: [token] needs module, uri and pin_file (or pin_credential)", name, p.line);
		goto out;
	}
	if (p.c->tls_listen != NULL && (p.c->tls_key == NULL || p.c->tls_cert == NULL)) {
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s:%d: [tls] listen needs key and cert", name, p.line);
		goto out;
	}
	if (p.c->tls_listen != NULL && p.c->tls_client_ca == NULL && p.c->tls_client_truststore == NULL) {
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
			       "%s:%d: [tls] listen needs client_truststore = STORE (a keyhold trust store) or "
			       "client_ca = FILE: the CAs whose client certificates are accepted",
			       name, p.line);
		goto out;
	}
	if (p.c->metrics_listen && !p.c->metrics_loopback && !p.c->metrics_allow_remote) {
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
			       "%s:%d: [metrics] listen = %s is not a loopback address: /metrics and /healthz have no "
			       "authentication; set allow_remote = yes to serve them there anyway",
			       name, p.line, p.c->metrics_host);
		goto out;
	}
	if (p.c->state_postgresql && (p.c->state_dsn == NULL || p.c->state_dsn[0] == '\0')) {
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
			       "%s:%d: [state] backend = postgresql needs dsn = (a libpq connection string, e.g. "
			       "host=db.example dbname=keyhold user=keyhold sslmode=verify-full)",
			       name, p.line);
		goto out;
	}
	if (p.c->rate_burst == 0)
		p.c->rate_burst = p.c->rate > 0 ? 2 * p.c->rate : 1;
	if (p.c->cluster_node == NULL) {
		/* The host name: unique per host, which is what a node is. */
		char host[256];

		if (gethostname(host, sizeof(host)) != 0 || (host[sizeof(host) - 1] = '\0', !kh_name_valid(host))) {
			r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
				       "%s:%d: the host name is no valid node name; set [cluster] node = NAME "
				       "(1-64 of A-Z a-z 0-9 . _ -, unique per node)",
				       name, p.line);
			goto out;
		}
		p.c->cluster_node = strdup(host);
		if (p.c->cluster_node == NULL) {
			r = KH_E_RESOURCE_EXHAUSTED;
			goto out;
		}
	}
	{
		size_t i;

		for (i = 0; i < p.c->n_key_policies; i++) {
			if (p.c->key_policies[i].n_signers == 0 && p.c->key_policies[i].n_gone == 0) {
				r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s:%d: [key:%s] names no signers", name,
					       p.c->key_policies[i].line, p.c->key_policies[i].key);
				goto out;
			}
		}
	}
	p.c->path = strdup(name);
	if (p.c->path == NULL) {
		r = KH_E_RESOURCE_EXHAUSTED;
		goto out;
	}
	*out = p.c;
	p.c = NULL;
out:
	svc_config_free(p.c);
	return r;
}

enum kh_err svc_config_load(const char *path, struct svc_config **out, struct kh_errbuf *e)
{
	enum { CFG_MAX = 1 << 20 };
	FILE *fp;
	char *text = NULL;
	size_t n;
	int r;

	fp = fopen(path, "re");
	if (fp == NULL)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "%s: cannot open: %s", path, strerror(errno));
	text = malloc(CFG_MAX + 1);
	if (text == NULL) {
		fclose(fp);
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	}
	n = fread(text, 1, CFG_MAX + 1, fp);
	fclose(fp);
	if (n > CFG_MAX) {
		free(text);
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s: larger than 1 MiB", path);
	}
	text[n] = '\0';
	if (memchr(text, '\0', n) != NULL) {
		free(text);
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s: contains a NUL byte", path);
	}
	r = svc_config_parse(text, path, out, e);
	free(text);
	return r;
}

/* ---- reload ---- */

static bool cfg_str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

static void cfg_key_policies_free(struct svc_key_policy_cfg *kp, size_t n)
{
	size_t i;

	if (kp == NULL)
		return;
	for (i = 0; i < n; i++)
		free(kp[i].signers);
	free(kp);
}

struct svc_config *svc_config_reloaded(const struct svc_config *old, struct svc_config *fresh,
				       void (*restart)(void *arg, const char *what), void *arg)
{
	struct svc_config *c = malloc(sizeof(*c));

	if (c == NULL)
		return NULL;
	*c = *old;
#define KEEP_STR(f, what)                              \
	do {                                           \
		if (cfg_str_differs(old->f, fresh->f)) \
			restart(arg, what);            \
	} while (0)
#define KEEP_VAL(f, what)                  \
	do {                               \
		if (old->f != fresh->f)    \
			restart(arg, what); \
	} while (0)
	KEEP_STR(socket, "[service] socket");
	KEEP_VAL(socket_mode, "[service] socket_mode");
	KEEP_STR(socket_group, "[service] socket_group");
	KEEP_STR(state_dir, "[service] state_dir");
	KEEP_VAL(state_postgresql, "[state] backend");
	KEEP_STR(state_dsn, "[state] dsn");
	KEEP_STR(state_password_file, "[state] password_file");
	KEEP_STR(acme_http01_host, "[acme] http01_listen");
	KEEP_VAL(acme_http01_port, "[acme] http01_listen");
	KEEP_VAL(acme_timeout_s, "[acme] timeout");
	KEEP_VAL(scep_poll_interval_s, "[scep] poll_interval");
	KEEP_VAL(workers, "[service] workers");
	KEEP_VAL(fips_mode, "[service] fips_mode");
	KEEP_VAL(fips_allow_eddsa, "[service] fips_allow_eddsa");
	KEEP_VAL(frame_max, "[service] frame_max");
	KEEP_VAL(max_connections, "[service] max_connections");
	KEEP_VAL(max_inflight, "[service] max_inflight");
	KEEP_VAL(inline_max_us, "[service] inline_max_us");
	KEEP_VAL(loops, "[service] loops");
	KEEP_VAL(loop_sched_normal, "[service] loop_sched");
	KEEP_VAL(idle_timeout_s, "[service] idle_timeout");
	KEEP_STR(user, "[service] user");
	KEEP_VAL(rate, "[service] rate");
	KEEP_VAL(rate_burst, "[service] rate_burst");
	KEEP_STR(module, "[token] module");
	KEEP_STR(uri, "[token] uri");
	KEEP_STR(pin_file, "[token] pin_file/pin_credential");
	KEEP_VAL(sessions, "[token] sessions");
	KEEP_VAL(lock_spin_us, "[token] lock_spin_us");
	KEEP_STR(tls_listen, "[tls] listen");
	KEEP_STR(tls_key, "[tls] key");
	KEEP_STR(tls_cert, "[tls] cert");
	KEEP_STR(tls_client_truststore, "[tls] client_truststore");
	KEEP_STR(tls_client_ca, "[tls] client_ca");
	KEEP_VAL(tls_handshake_timeout_s, "[tls] handshake_timeout");
	KEEP_STR(audit_file, "[audit] file");
	KEEP_STR(audit_key, "[audit] key");
	KEEP_VAL(audit_checkpoint_records, "[audit] checkpoint_records");
	KEEP_VAL(audit_checkpoint_interval_s, "[audit] checkpoint_interval");
	KEEP_VAL(audit_anchor_interval_s, "[audit] anchor_interval");
	KEEP_VAL(audit_sync_always, "[audit] sync");
	KEEP_VAL(audit_tamper_refuse, "[audit] on_tamper");
	KEEP_VAL(audit_rotate_size, "[audit] rotate_size");
	KEEP_VAL(audit_rotate_age_s, "[audit] rotate_age");
	KEEP_VAL(audit_rotate_keep, "[audit] rotate_keep");
	KEEP_VAL(audit_journal, "[audit] journal");
	if (old->metrics_listen != fresh->metrics_listen || cfg_str_differs(old->metrics_host, fresh->metrics_host) ||
	    old->metrics_port != fresh->metrics_port)
		restart(arg, "[metrics] listen");
	KEEP_VAL(metrics_allow_remote, "[metrics] allow_remote");
	KEEP_VAL(metrics_probe_interval_s, "[metrics] probe_interval");
	KEEP_STR(cluster_node, "[cluster] node");
	KEEP_VAL(cluster_lease_ttl_s, "[cluster] lease_ttl");
#undef KEEP_STR
#undef KEEP_VAL
	/* The reloadable settings: moved from fresh. */
	c->grants = fresh->grants;
	c->n_grants = fresh->n_grants;
	fresh->grants = NULL;
	fresh->n_grants = 0;
	c->key_policies = fresh->key_policies;
	c->n_key_policies = fresh->n_key_policies;
	fresh->key_policies = NULL;
	fresh->n_key_policies = 0;
	c->log_level = fresh->log_level;
	c->rev_connect_timeout_s = fresh->rev_connect_timeout_s;
	c->rev_timeout_s = fresh->rev_timeout_s;
	c->rev_crl_max = fresh->rev_crl_max;
	c->rev_ocsp_max = fresh->rev_ocsp_max;
	c->rev_nonce = fresh->rev_nonce;
	c->rev_recheck_interval_s = fresh->rev_recheck_interval_s;
	c->rev_proxy = fresh->rev_proxy;
	fresh->rev_proxy = NULL;
	c->exp_notify_days = fresh->exp_notify_days;
	c->exp_notify_every_s = fresh->exp_notify_every_s;
	c->exp_check_interval_s = fresh->exp_check_interval_s;
	c->exp_hook = fresh->exp_hook;
	fresh->exp_hook = NULL;
	c->exp_hook_timeout_s = fresh->exp_hook_timeout_s;
	return c;
}

void svc_config_free_retired(struct svc_config *c)
{
	if (c == NULL)
		return;
	free(c->grants);
	cfg_key_policies_free(c->key_policies, c->n_key_policies);
	free(c->rev_proxy);
	svc_config_argv_free(c->exp_hook);
	free(c);
}

void svc_config_free(struct svc_config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->socket);
	free(c->socket_group);
	free(c->state_dir);
	free(c->module);
	free(c->uri);
	free(c->pin_file);
	free(c->tls_listen);
	free(c->tls_key);
	free(c->tls_cert);
	free(c->tls_client_truststore);
	free(c->grants);
	free(c->user);
	free(c->tls_client_ca);
	free(c->audit_file);
	free(c->audit_key);
	cfg_key_policies_free(c->key_policies, c->n_key_policies);
	free(c->rev_proxy);
	svc_config_argv_free(c->exp_hook);
	free(c->metrics_host);
	free(c->acme_http01_host);
	free(c->state_dsn);
	free(c->state_password_file);
	free(c->cluster_node);
	free(c);
}

unsigned svc_config_lease_ttl(const struct svc_config *c)
{
	unsigned m = c->exp_check_interval_s;

	if (c->cluster_lease_ttl_s != 0)
		return c->cluster_lease_ttl_s;
	/* Half the shortest interval at which a node looks for work (the
	 * revocation scheduler looks every minute at most), so a dead node's
	 * roles are taken at the next look after its lease ran out. */
	if (c->scep_poll_interval_s < m)
		m = c->scep_poll_interval_s;
	if (c->rev_recheck_interval_s < m)
		m = c->rev_recheck_interval_s;
	if (m > 60)
		m = 60;
	return m / 2 < 5 ? 5 : m / 2;
}
