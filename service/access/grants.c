/* grants.c: per-key policy, like a KMS key policy: which principals may
 * sign with which key and with which digests and paddings. Grants come
 * from [key:NAME] in the config and from admin RPCs, kept in the state
 * database (store_grants.c) that every node of a cluster shares; a
 * STATE_DIR/key-grants file of older versions is imported once and
 * renamed key-grants.imported. Admins need no grant.
 *
 * The grants are cached in memory and a check reads no database. A
 * change commits the rows, the "grants" generation's bump and a "grants"
 * notification in one transaction; every node (this one too) hears it on
 * its listener (PostgreSQL's LISTEN/NOTIFY, cluster/) and calls
 * access_grants_invalidate, so the next check on any node reloads the
 * runtime grants. With SQLite there is one node and the change reloads
 * the cache itself. When the database cannot be read, the cache stays as
 * it was (signing goes on; the failure is logged) and the reload is tried
 * again at the next check. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kh_log.h"
#include "kh_util.h"
#include "core/svc.h"
#include "store/store.h"
#include "store/store_dir.h"
#include "access/access.h"
#include "kh_text.h"

#define POLICY_FILE "key-grants"
#define POLICY_IMPORTED POLICY_FILE ".imported"
#define POLICY_GEN "grants"
#define POLICY_MAX_GRANTS 65536

struct svc_key_grant {
	char key[KH_NAME_MAX + 1];
	struct svc_grant who;       /* role unused; who.text is the principal */
	unsigned digests, paddings; /* 0: any */
	bool from_config;
};

struct access_grants {
	pthread_rwlock_t lock;
	struct svc_key_grant *g;
	size_t n, cap;
	const struct store_dir *sd; /* state_dir (borrowed) */
	char *path;                 /* the key-grants file of older versions, for messages */
	const char *config_path;
	/* The shared runtime grants: the grants' own connection and a stale
	 * mark (set by the "grants" notification). */
	struct store *st;
	pthread_mutex_t db_lock;    /* serialises st and reloads; taken before lock */
	atomic_bool stale;
};

static enum kh_err policy_add(struct access_grants *p, const struct svc_key_grant *g)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		struct svc_key_grant *ng;

		if (cap > POLICY_MAX_GRANTS)
			return KH_E_RESOURCE_EXHAUSTED;
		ng = realloc(p->g, cap * sizeof(*ng));
		if (ng == NULL)
			return KH_E_RESOURCE_EXHAUSTED;
		p->g = ng;
		p->cap = cap;
	}
	p->g[p->n++] = *g;
	return KH_OK;
}

static void policy_set_text(char *out, size_t outsz, unsigned set, const char *const *names, unsigned max)
{
	unsigned i;
	size_t off = 0;

	out[0] = '\0';
	if (set == 0) {
		kh_strlcpy(out, "*", outsz);
		return;
	}
	for (i = 1; i <= max; i++) {
		if (!(set & (1u << i)))
			continue;
		off += (size_t)snprintf(out + off, outsz - off, "%s%s", off ? "," : "", names[i]);
		if (off >= outsz)
			break;
	}
}

static const char *const policy_digests[] = { "", "sha256", "sha384", "sha512", "sha1", "md5", "sha224" };
static const char *const policy_paddings[] = { "", "pkcs1", "pss" };

/* ---- the runtime grants file ----
 *
 * One grant a line: "KEY PRINCIPAL DIGESTS PADDINGS [NAME]". A grant made
 * to user:NAME or group:NAME is kept by number (PRINCIPAL uid:N or gid:N)
 * with the name as NAME: an account deleted and re-created under the same
 * name (often with the same number) must not inherit it, and a deleted
 * account must not stop keyholdd. At load the number must still belong to
 * that name; a grant whose account is gone or renamed is dropped, logged,
 * and the file rewritten without it. Files of older keyholdd versions,
 * with user:NAME as PRINCIPAL, are read and rewritten by number. */

/* g was given by name: writes "uid:N" / "gid:N" into out. */
static bool policy_by_name(const struct svc_grant *who, char *out, size_t outsz)
{
	if (who->kind == SVC_PK_UID && strncmp(who->text, "user:", 5) == 0) {
		snprintf(out, outsz, "uid:%u", (unsigned)who->uid);
		return true;
	}
	if (who->kind == SVC_PK_GID && strncmp(who->text, "group:", 6) == 0) {
		snprintf(out, outsz, "gid:%u", (unsigned)who->gid);
		return true;
	}
	return false;
}

/* Whether the account numbered by who (a uid:/gid: grant) still carries
 * the name display ("user:NAME"/"group:NAME"); why says what changed. */
static bool policy_account_same(const struct svc_grant *who, const char *display, char *why, size_t whysz)
{
	char buf[16384];

	if (who->kind == SVC_PK_UID && strncmp(display, "user:", 5) == 0) {
		struct passwd pw, *res = NULL;

		if (getpwuid_r(who->uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
			snprintf(why, whysz, "uid %u no longer exists", (unsigned)who->uid);
			return false;
		}
		if (strcmp(pw.pw_name, display + 5) != 0) {
			snprintf(why, whysz, "uid %u is now user '%.*s'", (unsigned)who->uid, KH_UTF8_PREC(pw.pw_name, 64));
			return false;
		}
		return true;
	}
	if (who->kind == SVC_PK_GID && strncmp(display, "group:", 6) == 0) {
		struct group gr, *res = NULL;

		if (getgrgid_r(who->gid, &gr, buf, sizeof(buf), &res) != 0 || res == NULL) {
			snprintf(why, whysz, "gid %u no longer exists", (unsigned)who->gid);
			return false;
		}
		if (strcmp(gr.gr_name, display + 6) != 0) {
			snprintf(why, whysz, "gid %u is now group '%.*s'", (unsigned)who->gid, KH_UTF8_PREC(gr.gr_name, 64));
			return false;
		}
		return true;
	}
	kh_strlcpy(why, "the name does not go with that kind of principal", whysz);
	return false;
}

static enum kh_err policy_load(struct access_grants *p, struct kh_errbuf *e)
{
	FILE *f = NULL;
	char line[1024];
	int lineno = 0, r = KH_OK, fd = -1;
	bool rewrite = false;

	r = store_dir_openat(p->sd, POLICY_FILE, O_RDONLY, &fd, e);
	if (r == KH_E_NOT_FOUND) {
		kh_err_clear(e);
		return KH_OK;
	}
	if (r != KH_OK)
		return r;
	f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return kh_err_set(e, KH_E_INTERNAL, "fdopen %s: %s", p->path, strerror(errno));
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *key, *who, *dig, *pad, *name, *save = NULL;
		struct svc_key_grant g;
		char err[160] = "";
		int pr;

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		key = strtok_r(line, " \t\n", &save);
		who = strtok_r(NULL, " \t\n", &save);
		dig = strtok_r(NULL, " \t\n", &save);
		pad = strtok_r(NULL, " \t\n", &save);
		name = strtok_r(NULL, " \t\n", &save);
		memset(&g, 0, sizeof(g));
		KH_ENSURE(key != NULL && who != NULL && dig != NULL && pad != NULL && kh_name_valid(key),
			  kh_err_set(e, KH_E_FAILED_PRECONDITION, "%s:%d: expected KEY PRINCIPAL DIGESTS PADDINGS",
				     p->path, lineno));
		kh_strlcpy(g.key, key, sizeof(g.key));
		pr = svc_principal_parse(who, &g.who, err, sizeof(err));
		if (pr == KH_E_NOT_FOUND) {
			/* An older file's user:NAME whose account is gone. */
			log_warn("%s:%d: the grant of key '%s' to %s is dropped: %s", p->path, lineno, key, who, err);
			rewrite = true;
			continue;
		}
		KH_ENSURE(pr == KH_OK, kh_err_set(e, KH_E_FAILED_PRECONDITION, "%s:%d: %s", p->path, lineno, err));
		if (name != NULL) {
			if (!policy_account_same(&g.who, name, err, sizeof(err))) {
				log_warn("%s:%d: the grant of key '%s' to %s (%s) is dropped: %s; grant it again if "
					 "it is still meant",
					 p->path, lineno, key, name, who, err);
				rewrite = true;
				continue;
			}
			kh_strlcpy(g.who.text, name, sizeof(g.who.text));
		} else if (g.who.kind != SVC_PK_CERT && strncmp(who, "uid:", 4) != 0 && strncmp(who, "gid:", 4) != 0) {
			rewrite = true; /* by name: keep it by number from now on */
		}
		if (strcmp(dig, "*") != 0)
			KH_ENSURE((g.digests = svc_digest_set_parse(dig, err, sizeof(err))) != 0,
				  kh_err_set(e, KH_E_FAILED_PRECONDITION, "%s:%d: %s", p->path, lineno, err));
		if (strcmp(pad, "*") != 0)
			KH_ENSURE((g.paddings = svc_padding_set_parse(pad, err, sizeof(err))) != 0,
				  kh_err_set(e, KH_E_FAILED_PRECONDITION, "%s:%d: %s", p->path, lineno, err));
		KH_ENSURE(policy_add(p, &g) == KH_OK, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many grants"));
	}
	(void)rewrite; /* the import writes every grant by number */
out:
	fclose(f);
	return r;
}

/* The database row of a runtime grant: by number with the name for a
 * grant made by name. */
static void policy_row(const struct svc_key_grant *g, struct store_grant *row, int64_t now)
{
	memset(row, 0, sizeof(*row));
	kh_strlcpy(row->key, g->key, sizeof(row->key));
	if (policy_by_name(&g->who, row->principal, sizeof(row->principal)))
		kh_strlcpy(row->display, g->who.text, sizeof(row->display));
	else
		kh_strlcpy(row->principal, g->who.text, sizeof(row->principal));
	row->digests = g->digests;
	row->paddings = g->paddings;
	row->created = now;
}

/* A database row back into a grant. false: it no longer applies (the
 * account it was made to is gone or renamed), logged; why says why. */
static bool policy_from_row(const struct store_grant *row, struct svc_key_grant *g, char *why, size_t whysz)
{
	memset(g, 0, sizeof(*g));
	kh_strlcpy(g->key, row->key, sizeof(g->key));
	if (svc_principal_parse(row->principal, &g->who, why, whysz) != KH_OK)
		return false;
	if (row->display[0] != '\0') {
		if (!policy_account_same(&g->who, row->display, why, whysz))
			return false;
		kh_strlcpy(g->who.text, row->display, sizeof(g->who.text));
	}
	g->digests = row->digests;
	g->paddings = row->paddings;
	return true;
}

/* The end of a change of the shared grants in st's transaction (r: how
 * its statements went): the "grants" generation bumped and every node
 * notified, committed; or rolled back. */
static enum kh_err policy_commit(struct access_grants *p, enum kh_err r, struct kh_errbuf *e)
{
	if (r == KH_OK)
		r = store_gen_bump(p->st, POLICY_GEN, e);
	if (r == KH_OK)
		r = store_notify(p->st, POLICY_GEN, e);
	if (r == KH_OK)
		r = store_commit(p->st, e);
	else
		store_rollback(p->st);
	return r;
}

/* Reads the runtime grants from the database into the cache (config
 * grants stay). A grant whose account is gone or was renamed is dropped
 * from the database, as it is from the cache, and the other nodes are
 * told: an account re-created under the name must not inherit it.
 * db_lock held. */
static enum kh_err policy_reload_locked(struct access_grants *p, struct kh_errbuf *e)
{
	struct access_grants fresh;
	struct store_grant *rows = NULL;
	size_t n = 0, i, dropped = 0;
	int r = KH_OK;

	memset(&fresh, 0, sizeof(fresh));
	KH_TRY(store_grants_list(p->st, &rows, &n, e));
	pthread_rwlock_rdlock(&p->lock);
	for (i = 0; i < p->n && r == KH_OK; i++)
		if (p->g[i].from_config && policy_add(&fresh, &p->g[i]) != KH_OK)
			r = kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many grants");
	pthread_rwlock_unlock(&p->lock);
	if (r != KH_OK)
		goto out;
	for (i = 0; i < n; i++) {
		struct svc_key_grant g;
		char why[160] = "";
		bool found = false;
		struct kh_errbuf de = { 0 };

		if (policy_from_row(&rows[i], &g, why, sizeof(why))) {
			KH_ENSURE(policy_add(&fresh, &g) == KH_OK, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many grants"));
			continue;
		}
		log_warn("the grant of key '%s' to %s (%s) is dropped: %s; grant it again if it is still meant",
			 rows[i].key, rows[i].display[0] ? rows[i].display : rows[i].principal, rows[i].principal, why);
		if (store_grant_delete(p->st, rows[i].key, rows[i].principal, &found, &de) != KH_OK)
			log_err("cannot remove the dropped grant from the state database: %s", de.msg);
		else
			dropped++;
	}
	if (dropped > 0) {
		struct kh_errbuf ge = { 0 };

		if (store_gen_bump(p->st, POLICY_GEN, &ge) != KH_OK || store_notify(p->st, POLICY_GEN, &ge) != KH_OK)
			log_err("key grants: %s", ge.msg);
	}
	pthread_rwlock_wrlock(&p->lock);
	free(p->g);
	p->g = fresh.g;
	p->n = fresh.n;
	p->cap = fresh.cap;
	fresh.g = NULL;
	pthread_rwlock_unlock(&p->lock);
out:
	free(fresh.g);
	free(rows);
	return r;
}

/* Before every check: the cache reloaded when it was marked stale (a
 * node, this one or another, changed a grant). A database that cannot be
 * read leaves the cache as it is, still stale. */
static void policy_refresh(struct access_grants *p)
{
	struct kh_errbuf e = { 0 };
	int r = KH_OK;

	if (p->st == NULL || !atomic_load(&p->stale))
		return;
	pthread_mutex_lock(&p->db_lock);
	if (atomic_exchange(&p->stale, false)) {
		r = policy_reload_locked(p, &e);
		if (r != KH_OK)
			atomic_store(&p->stale, true);
	}
	pthread_mutex_unlock(&p->db_lock);
	if (r != KH_OK)
		log_warn("key grants: the shared grants cannot be read (%s); the cached ones apply", e.msg);
}

void access_grants_invalidate(struct access_grants *p)
{
	if (p != NULL)
		atomic_store(&p->stale, true);
}

/* Once, on the first start with the database (schema 10): the grants of
 * an older version's key-grants file go into the database in one
 * transaction, and the file is renamed key-grants.imported so that it is
 * never read again. */
static enum kh_err policy_import(struct access_grants *p, struct kh_errbuf *e)
{
	struct stat sb;
	size_t i;
	int64_t now = (int64_t)time(NULL);
	int r = KH_OK;

	if (fstatat(p->sd->fd, POLICY_FILE, &sb, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
		return KH_OK;
	KH_TRY(policy_load(p, e)); /* the file's checks: owner, mode, no link */
	KH_TRY(store_begin(p->st, e));
	for (i = 0; i < p->n && r == KH_OK; i++) {
		struct store_grant row;

		if (p->g[i].from_config)
			continue;
		policy_row(&p->g[i], &row, now);
		r = store_grant_put(p->st, &row, e);
	}
	KH_TRY(policy_commit(p, r, e));
	KH_ENSURE(renameat(p->sd->fd, POLICY_FILE, p->sd->fd, POLICY_IMPORTED) == 0,
		  kh_err_set(e, KH_E_UNAVAILABLE, "the grants of %s are in the state database now, but the file cannot "
			     "be renamed %s: %s", p->path, POLICY_IMPORTED, strerror(errno)));
	kh_ignore(fsync(p->sd->fd));
	log_info("key policy: %s imported into the state database and renamed %s", p->path, POLICY_IMPORTED);
out:
	return r;
}

enum kh_err access_grants_new(const struct svc_config *cfg, const struct store_dir *sd, struct store *st,
			      struct access_grants **out, struct kh_errbuf *e)
{
	struct access_grants *p;
	size_t i, j;
	int r = KH_OK;

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		store_close(st);
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	}
	p->st = st;
	pthread_rwlock_init(&p->lock, NULL);
	pthread_mutex_init(&p->db_lock, NULL);
	p->config_path = cfg->path;
	p->sd = sd;
	p->path = malloc(strlen(sd->path) + sizeof("/" POLICY_FILE));
	KH_ENSURE(p->path != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	snprintf(p->path, strlen(sd->path) + sizeof("/" POLICY_FILE), "%s/%s", sd->path, POLICY_FILE);
	for (i = 0; i < cfg->n_key_policies; i++) {
		const struct svc_key_policy_cfg *kp = &cfg->key_policies[i];

		for (j = 0; j < kp->n_signers; j++) {
			struct svc_key_grant g;

			memset(&g, 0, sizeof(g));
			kh_strlcpy(g.key, kp->key, sizeof(g.key));
			g.who = kp->signers[j];
			g.digests = kp->digests;
			g.paddings = kp->paddings;
			g.from_config = true;
			KH_ENSURE(policy_add(p, &g) == KH_OK, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many grants"));
		}
	}
	KH_TRY(policy_import(p, e));
	KH_TRY(policy_reload_locked(p, e));
	log_info("key policy: %zu grants (%s and the state database)", p->n, cfg->path ? cfg->path : "config");
	*out = p;
	p = NULL;
out:
	access_grants_free(p);
	return r;
}

enum kh_err access_grants_reload(struct access_grants *p, const struct svc_config *cfg, struct kh_errbuf *e)
{
	struct access_grants fresh;
	size_t i, j, from_cfg = 0, total = 0;
	int r = KH_OK;

	memset(&fresh, 0, sizeof(fresh));
	for (i = 0; i < cfg->n_key_policies; i++) {
		const struct svc_key_policy_cfg *kp = &cfg->key_policies[i];

		for (j = 0; j < kp->n_signers; j++) {
			struct svc_key_grant g;

			memset(&g, 0, sizeof(g));
			kh_strlcpy(g.key, kp->key, sizeof(g.key));
			g.who = kp->signers[j];
			g.digests = kp->digests;
			g.paddings = kp->paddings;
			g.from_config = true;
			KH_ENSURE(policy_add(&fresh, &g) == KH_OK,
				  kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many grants"));
			from_cfg++;
		}
	}
	pthread_rwlock_wrlock(&p->lock);
	for (i = 0; i < p->n && r == KH_OK; i++)
		if (!p->g[i].from_config && policy_add(&fresh, &p->g[i]) != KH_OK)
			r = kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many grants");
	if (r == KH_OK) {
		free(p->g);
		p->g = fresh.g;
		p->n = fresh.n;
		p->cap = fresh.cap;
		p->config_path = cfg->path;
		fresh.g = NULL;
		total = p->n;
	}
	pthread_rwlock_unlock(&p->lock);
	if (r == KH_OK)
		log_info("key policy reloaded: %zu grants from the configuration, %zu made at run time", from_cfg,
			 total - from_cfg);
out:
	free(fresh.g);
	return r;
}

void access_grants_free(struct access_grants *p)
{
	if (p == NULL)
		return;
	pthread_rwlock_destroy(&p->lock);
	pthread_mutex_destroy(&p->db_lock);
	store_close(p->st);
	free(p->g);
	free(p->path);
	free(p);
}

static bool policy_is_admin(const struct svc_principal *who)
{
	return (who->roles & SVC_ROLE_ADMIN) != 0;
}

static enum kh_err policy_denied(const struct svc_principal *who, const char *key, struct kh_errbuf *e)
{
	/* One message whether or not key exists: the refusal must not tell. */
	return kh_err_set(e, KH_E_PERMISSION_DENIED,
			  "%s has no grant for key '%s': an admin adds one with 'keyhold policy grant %s %s' or "
			  "'signers = %s' in [key:%s]",
			  who->name, key, key, who->name, who->name, key);
}

enum kh_err access_grants_check_key(struct access_grants *p, const struct svc_principal *who, const char *key,
				 struct kh_errbuf *e)
{
	size_t i;
	bool ok = false;

	if (policy_is_admin(who))
		return KH_OK;
	policy_refresh(p);
	pthread_rwlock_rdlock(&p->lock);
	for (i = 0; i < p->n && !ok; i++)
		ok = strcmp(p->g[i].key, key) == 0 && svc_grant_matches(&p->g[i].who, who);
	pthread_rwlock_unlock(&p->lock);
	return ok ? KH_OK : policy_denied(who, key, e);
}

enum kh_err access_grants_check_sign(struct access_grants *p, const struct svc_principal *who, const char *key,
				  bool is_rsa, enum kh_digest digest, enum kh_padding padding,
				  struct kh_errbuf *e)
{
	size_t i;
	bool any = false, ok = false;
	unsigned dset = 0, pset = 0;
	/* Policy speaks of the algorithm used: the defaults are SHA-256 and,
	 * for RSA, PKCS#1 v1.5. Ed25519 (no digest) is governed by grants alone. */
	unsigned d = digest == KH_DIGEST_DEFAULT ? KH_DIGEST_SHA256 : digest;
	unsigned pad = padding == KH_PAD_DEFAULT ? KH_PAD_PKCS1 : padding;
	char dtext[96], ptext[32];

	if (policy_is_admin(who))
		return KH_OK;
	policy_refresh(p);
	pthread_rwlock_rdlock(&p->lock);
	for (i = 0; i < p->n && !ok; i++) {
		const struct svc_key_grant *g = &p->g[i];

		if (strcmp(g->key, key) != 0 || !svc_grant_matches(&g->who, who))
			continue;
		any = true;
		dset |= g->digests ? g->digests : ~0u;
		pset |= g->paddings ? g->paddings : ~0u;
		ok = (g->digests == 0 || (g->digests & (1u << d))) && (!is_rsa || g->paddings == 0 || (g->paddings & (1u << pad)));
	}
	pthread_rwlock_unlock(&p->lock);
	if (ok)
		return KH_OK;
	if (!any)
		return policy_denied(who, key, e);
	policy_set_text(dtext, sizeof(dtext), dset == ~0u ? 0 : dset, policy_digests, KH_DIGEST_MAX);
	policy_set_text(ptext, sizeof(ptext), pset == ~0u ? 0 : pset, policy_paddings, KH_PAD_MAX);
	if (!(dset & (1u << d)))
		return kh_err_set(e, KH_E_PERMISSION_DENIED,
				  "the grant of key '%s' to %s allows digests %s, not %s", key, who->name, dtext,
				  policy_digests[d]);
	return kh_err_set(e, KH_E_PERMISSION_DENIED,
			  "the grant of key '%s' to %s allows %s with padding %s, not %s", key, who->name,
			  policy_digests[d], ptext, policy_paddings[pad]);
}

/* One change of the shared grants: fn's statements in one transaction
 * (policy_commit), then the cache reloaded from the database. */
static enum kh_err policy_change(struct access_grants *p,
				 enum kh_err (*fn)(struct access_grants *p, const void *arg, struct kh_errbuf *e),
				 const void *arg, struct kh_errbuf *e)
{
	int r = KH_OK;

	pthread_mutex_lock(&p->db_lock);
	KH_TRY(store_begin(p->st, e));
	KH_TRY(policy_commit(p, fn(p, arg, e), e));
	/* Committed: a failure to reload now is retried at the next check. */
	if (policy_reload_locked(p, e) != KH_OK) {
		log_warn("key grants: changed, but the cache could not be reloaded: %s", e->msg);
		kh_err_clear(e);
		atomic_store(&p->stale, true);
	}
out:
	pthread_mutex_unlock(&p->db_lock);
	return r;
}

static enum kh_err policy_put_fn(struct access_grants *p, const void *arg, struct kh_errbuf *e)
{
	struct store_grant row;

	policy_row(arg, &row, (int64_t)time(NULL));
	return store_grant_put(p->st, &row, e);
}

enum kh_err access_grants_grant(struct access_grants *p, const char *key, const char *principal, unsigned digests,
				unsigned paddings, struct kh_errbuf *e)
{
	struct svc_key_grant g;
	char err[160] = "";
	int r;

	memset(&g, 0, sizeof(g));
	kh_strlcpy(g.key, key, sizeof(g.key));
	if (svc_principal_parse(principal, &g.who, err, sizeof(err)) != KH_OK)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s", err);
	g.digests = digests;
	g.paddings = paddings;
	r = policy_change(p, policy_put_fn, &g, e);
	if (r == KH_OK)
		log_info("granted key '%s' to %s", g.key, g.who.text);
	return r;
}

struct policy_del {
	const char *key, *principal;
	const char *config_path;
};

static enum kh_err policy_del_fn(struct access_grants *p, const void *arg, struct kh_errbuf *e)
{
	const struct policy_del *d = arg;
	struct svc_key_grant g;
	char err[160] = "", num[32];
	const char *kept = d->principal;
	bool found = false, in_config = false;
	size_t i;
	int r;

	/* A grant made by name is kept by number. */
	memset(&g, 0, sizeof(g));
	if (svc_principal_parse(d->principal, &g.who, err, sizeof(err)) == KH_OK &&
	    policy_by_name(&g.who, num, sizeof(num)))
		kept = num;
	r = store_grant_delete(p->st, d->key, kept, &found, e);
	if (r == KH_OK && !found && kept != d->principal)
		r = store_grant_delete(p->st, d->key, d->principal, &found, e);
	if (r != KH_OK || found)
		return r;
	pthread_rwlock_rdlock(&p->lock);
	for (i = 0; i < p->n; i++)
		if (p->g[i].from_config && strcmp(p->g[i].key, d->key) == 0 && strcmp(p->g[i].who.text, d->principal) == 0)
			in_config = true;
	pthread_rwlock_unlock(&p->lock);
	if (in_config)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "the grant of key '%s' to %s comes from [key:%s] in %s; remove it there", d->key,
				  d->principal, d->key, d->config_path);
	return kh_err_set(e, KH_E_NOT_FOUND, "no grant of key '%s' to %s", d->key, d->principal);
}

enum kh_err access_grants_revoke(struct access_grants *p, const char *key, const char *principal,
				 struct kh_errbuf *e)
{
	struct policy_del d = { key, principal, p->config_path };
	int r = policy_change(p, policy_del_fn, &d, e);

	if (r == KH_OK)
		log_info("revoked key '%s' from %s", key, principal);
	return r;
}

enum kh_err access_grants_list(struct access_grants *p, const char *key, access_grant_fn fn, void *arg,
			       struct kh_errbuf *e)
{
	size_t i;
	int r = KH_OK;

	policy_refresh(p);
	pthread_rwlock_rdlock(&p->lock);
	for (i = 0; i < p->n && r == KH_OK; i++) {
		const struct svc_key_grant *g = &p->g[i];

		if (key != NULL && key[0] != '\0' && strcmp(g->key, key) != 0)
			continue;
		r = fn(arg, g->key, g->who.text, g->digests, g->paddings, g->from_config, e);
	}
	pthread_rwlock_unlock(&p->lock);
	return r;
}

static enum kh_err policy_forget_fn(struct access_grants *p, const void *arg, struct kh_errbuf *e)
{
	size_t n = 0;

	return store_grants_delete_key(p->st, arg, &n, e);
}

void access_grants_forget_key(struct access_grants *p, const char *key)
{
	struct kh_errbuf e = { 0 };

	if (policy_change(p, policy_forget_fn, key, &e) != KH_OK)
		log_err("key '%s' deleted but its grants could not be removed from the state database: %s", key, e.msg);
}
