/* access: who may do what (DESIGN §9): principals and their roles
 * (principal.c) and per-key grants (grants.c). */
#ifndef ACCESS_H
#define ACCESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "hsm.h"
#include "kh_err.h"
#include "kh_types.h"
#include "config/config.h"

struct svc_principal;
struct svc;

/* ---- principals (principal.c) ---- */

/* Fills who for a Unix peer: name "uid:N", its primary group gid and the
 * supplementary groups the peer process holds (SO_PEERGROUPS; borrows
 * groups, n_groups may be 0), and its roles under cfg's [access]. */
void svc_principal_unix(const struct svc_config *cfg, uid_t uid, gid_t gid, pid_t pid, const gid_t *groups,
			size_t n_groups, struct svc_principal *who);
/* Fills who for a verified certificate principal (SAN URI, else CN). */
void svc_principal_cert(const struct svc_config *cfg, const char *name, struct svc_principal *who);
/* Roles a certificate principal holds. */
unsigned svc_roles_for_cert(const struct svc_config *cfg, const char *name);
/* Whether grant g names who. */
bool svc_grant_matches(const struct svc_grant *g, const struct svc_principal *who);

/* ---- per-key grants (grants.c) ---- */

struct access_grants;

/* Grants from cfg's [key:NAME] sections plus the runtime grants kept in
 * the state database st (a connection of the grants' own: takes it, also
 * on failure). An older version's sd/key-grants (read with O_NOFOLLOW and
 * the owner and mode checks of store_dir_openat; refused with the file
 * and line when malformed) is imported into st once and renamed
 * key-grants.imported. A runtime grant to user:NAME/group:NAME whose
 * account is gone or now carries another name is dropped (from st too)
 * and logged, never a reason to refuse. Borrows sd for the life of the
 * grants. */
struct store_dir;
struct store;
enum kh_err access_grants_new(const struct svc_config *cfg, const struct store_dir *sd, struct store *st,
			      struct access_grants **out, struct kh_errbuf *e) KH_WUR;
void access_grants_free(struct access_grants *p);
/* SIGHUP: replaces the grants that came from [key:NAME] sections with
 * cfg's, keeping those made at run time (keyhold policy grant), in one
 * step under the write lock. cfg->path is borrowed for messages. */
enum kh_err access_grants_reload(struct access_grants *p, const struct svc_config *cfg,
				 struct kh_errbuf *e) KH_WUR;
/* May who use key at all (sign, see)? Admins may; others need a grant
 * naming them. The refusal is PERMISSION_DENIED naming the missing grant,
 * the same whether or not the key exists: it is decided before the token
 * is asked. */
enum kh_err access_grants_check_key(struct access_grants *p, const struct svc_principal *who, const char *key,
				 struct kh_errbuf *e) KH_WUR;
/* With the key's type known: does a grant allow this digest and padding?
 * is_rsa: padding applies. Admins pass. */
enum kh_err access_grants_check_sign(struct access_grants *p, const struct svc_principal *who, const char *key,
				  bool is_rsa, enum kh_digest digest, enum kh_padding padding,
				  struct kh_errbuf *e) KH_WUR;
/* Runtime grants (admin RPCs), persisted before the answer. digests and
 * paddings are bit sets (1u << enum kh_digest, 1u << enum kh_padding); 0
 * means any. Borrows the strings. */
enum kh_err access_grants_grant(struct access_grants *p, const char *key, const char *principal, unsigned digests,
				unsigned paddings, struct kh_errbuf *e) KH_WUR;
enum kh_err access_grants_revoke(struct access_grants *p, const char *key, const char *principal,
				 struct kh_errbuf *e) KH_WUR;
/* One grant, borrowed for the call (the grants are locked meanwhile: fn
 * must not call back into them). A non-OK result stops the walk. */
typedef enum kh_err (*access_grant_fn)(void *arg, const char *key, const char *principal, unsigned digests,
				       unsigned paddings, bool from_config, struct kh_errbuf *e);
/* Calls fn for each grant of key ("" or NULL: of every key), config
 * grants and runtime ones in the order they are kept. */
enum kh_err access_grants_list(struct access_grants *p, const char *key, access_grant_fn fn, void *arg,
			       struct kh_errbuf *e) KH_WUR;
/* A deleted key's runtime grants go with it (a new key of the same name
 * starts with none); config grants stay. */
void access_grants_forget_key(struct access_grants *p, const char *key);
/* Marks the cached runtime grants stale: the next check reloads them from
 * the state database. Safe from any thread. The one entry point for an
 * invalidation from outside: the "grants" notification every change sends
 * to every node (PostgreSQL LISTEN/NOTIFY, cluster/). */
void access_grants_invalidate(struct access_grants *p);

/* ---- what a principal may see (visibility.c) ---- */

enum access_view {
	ACCESS_VIEW_NONE,  /* not even whether the key exists */
	ACCESS_VIEW_NAME,  /* its name and metadata, no key material */
	ACCESS_VIEW_ALL,   /* everything (admins; a grant for the key) */
};

/* How much of key (and of the trustpoints using it) who may see: admins
 * and holders of a grant for it everything, auditors its name, others
 * nothing. p may be NULL (no grants). */
enum access_view access_key_view(struct access_grants *p, const struct svc_principal *who, const char *key);
/* Does who see every key's name (admin, auditor)? */
bool access_sees_names(const struct svc_principal *who);
/* Keeps in names[0..n) those who may see (order kept), frees the others,
 * and returns how many are kept. */
size_t access_filter_key_names(struct access_grants *p, const struct svc_principal *who, char **names, size_t n);
/* The refusal for a trustpoint who may not see, in the same words whether
 * or not it exists. Returns PERMISSION_DENIED. */
enum kh_err access_tp_denied(const struct svc_principal *who, const char *tp, struct kh_errbuf *e);

#endif
