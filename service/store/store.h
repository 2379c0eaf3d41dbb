/* store: keyholdd's persistent state: trustpoints and their certificates,
 * the keys keyhold generated for them, trust stores and CRLs, revocation
 * and renewal state, the audit anchor. Two backends behind one driver
 * interface (store_db.h): SQLite under state_dir (WAL, synchronous=FULL;
 * the default) or PostgreSQL shared by several nodes ([state] backend).
 * Versioned migrations, one runner; every multi-step change runs between
 * store_begin and store_commit. A handle is not thread-safe: the caller
 * serialises access (svc_pki's lock). */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kh_err.h"
#include "kh_pki.h"
#include "kh_rev.h"
#include "kh_types.h"

struct store;

/* The schema version this build writes. */
#define STORE_SCHEMA_VERSION 10
#define STORE_FILE "keyhold.db"

/* Opens the SQLite database in state_dir sd (creating it 0600 if needed;
 * refusing a link, another owner or a group/other-writable mode for it
 * and its -wal/-shm files, store_dir.h) and migrates. A database written
 * by a newer keyholdd is refused (FAILED_PRECONDITION). Borrows sd. */
struct store_dir;
enum kh_err store_open(const struct store_dir *sd, struct store **out, struct kh_errbuf *e) KH_WUR;

/* [state] (docs/CLUSTER.md "State backend"). */
enum store_backend { STORE_SQLITE = 0, STORE_POSTGRESQL = 1 };
struct store_cfg {
	enum store_backend backend;
	const char *dsn;           /* postgresql: a libpq connection string, no password in it */
	const char *password_file; /* NULL: $CREDENTIALS_DIRECTORY/keyhold-db-password if present, else none */
	uid_t owner;               /* keyholdd's user: the password file must be its, mode 0600 or stricter */
};
/* Opens the backend cfg names (sqlite: store_open on sd) and migrates.
 * postgresql: the schema version lives in the table keyhold_schema; the
 * migrations run under an advisory lock (several nodes may start at
 * once); a server that cannot be reached is UNAVAILABLE, a dsn with a
 * password or a password file of another owner or mode is refused.
 * Borrows cfg and sd. */
enum kh_err store_open_cfg(const struct store_cfg *cfg, const struct store_dir *sd, struct store **out,
			   struct kh_errbuf *e) KH_WUR;
void store_close(struct store *st);
int store_schema_version(struct store *st);
/* The backend st runs on: "sqlite" or "postgresql". */
const char *store_backend(const struct store *st);

/* BEGIN / COMMIT / ROLLBACK. A commit that fails rolls back.
 * SQLite: BEGIN IMMEDIATE (the write lock at once).
 * PostgreSQL: READ COMMITTED, and begin takes a transaction advisory lock
 * that every node's transactions share: the state-changing transactions
 * of the whole cluster run one after the other, so a read-modify-write
 * inside one sees the last commit and none fails to serialize. A
 * statement outside a transaction that fails on a serialization failure
 * or deadlock (40001, 40P01) is run again (up to 5 times); a connection
 * found lost before a statement or at begin is made again and the
 * statement run once more; lost inside a transaction, the transaction is
 * gone (UNAVAILABLE, the caller's change did not happen) and a commit
 * whose answer was lost is UNAVAILABLE with "its outcome is unknown".
 * While the server cannot be reached, every call is UNAVAILABLE and the
 * next one tries to connect again. */
enum kh_err store_begin(struct store *st, struct kh_errbuf *e) KH_WUR;
enum kh_err store_commit(struct store *st, struct kh_errbuf *e) KH_WUR;
void store_rollback(struct store *st);

/* ---- notifications between nodes (PostgreSQL NOTIFY/LISTEN) ----
 * A node that changes shared state names what changed (a topic such as
 * "grants" or "key:NAME", at most STORE_TOPIC_MAX bytes of [A-Za-z0-9._:-]);
 * every node that listens is called back with the topic, so that it can
 * drop what it cached. Delivery is at most once and only to nodes
 * connected at the time: a listener that lost its connection is called
 * with STORE_TOPIC_ALL once it listens again (anything may have
 * changed). With SQLite (one node) both calls do nothing. */
#define STORE_TOPIC_MAX 63
#define STORE_TOPIC_ALL "*"
/* Inside a transaction: sent when it commits (not at all if it rolls
 * back); outside one: now. INVALID_ARGUMENT for a bad topic. */
enum kh_err store_notify(struct store *st, const char *topic, struct kh_errbuf *e) KH_WUR;
/* cb(topic, arg) runs on a thread of the store's own (it must be
 * thread-safe and quick: it should only mark caches stale), for every
 * notification of any node, this one's included, until store_close. One
 * listener per store handle (FAILED_PRECONDITION for a second). */
typedef void store_listen_cb(const char *topic, void *arg);
enum kh_err store_listen(struct store *st, store_listen_cb *cb, void *arg, struct kh_errbuf *e) KH_WUR;

/* ---- trustpoints ---- */

struct store_tp {
	char name[KH_NAME_MAX + 1];
	char key[KH_NAME_MAX + 1];
	char subject[KH_DN_MAX + 1];
	char fqdn[KH_FQDN_MAX + 1];
	char san[KH_SAN_MAX + 1];
	char eku[KH_EKU_MAX + 1];
	enum kh_enrollment enrollment;
	char revocation[KH_REVOCATION_MAX + 1];
	enum kh_digest digest;             /* as asked (DEFAULT allowed) */
	uint32_t validity_days;
	struct kh_bytes cert;              /* identity certificate DER; len 0: none */
	int64_t cert_not_after;
	struct kh_bytes csr;               /* pending CSR DER; len 0: none */
	char csr_key[KH_NAME_MAX + 1];     /* the key that CSR is for */
	int64_t csr_created;
	char next_key[KH_NAME_MAX + 1];    /* rollover in progress; "" none */
	uint32_t key_serial;               /* names regenerated keys */
	int64_t created, updated;
	struct kh_bytes *ca;               /* authenticated CA certificate(s) DER */
	size_t n_ca;
	struct kh_bytes *chain;            /* identity chain, issuer first */
	size_t n_chain;
	/* CA rollover: the CA authenticated while the certificate in use
	 * chains to the old one; becomes ca[] when a certificate it issued is
	 * imported (written by store_tp_update, in the caller's transaction).
	 * len 0: none. */
	struct kh_bytes pending_ca;
};

void store_tp_clear(struct store_tp *t);

/* ---- SCEP trustpoints (store_scep.c, schema 5) ---- */
struct store_scep {
	char url[KH_PKI_URL_MAX + 1];
	char challenge[KH_CHALLENGE_MAX + 1];
	struct kh_bytes ra;                /* RA certificate DER; len 0: the CA signs and decrypts */
	char status[KH_ERR_MSG_MAX + 1];    /* "", "issued", "pending", "failed: ..." */
};
void store_scep_clear(struct store_scep *p);
/* Whether trustpoint name is an enrollment url (SCEP) trustpoint. */
bool store_scep_exists(struct store *st, const char *name);
/* NOT_FOUND when the trustpoint has no SCEP row. */
enum kh_err store_scep_get(struct store *st, const char *name, struct store_scep *out, struct kh_errbuf *e) KH_WUR;
enum kh_err store_scep_put(struct store *st, const char *name, const struct store_scep *p, struct kh_errbuf *e) KH_WUR;
/* A request the SCEP server answered PENDING (schema 7). */
struct store_scep_pending {
	char txid[64 + 1];                 /* hex SHA-256 (ours) */
	int msg_type;                      /* 19 PKCSReq, 17 RenewalReq */
	char req_key[KH_NAME_MAX + 1];     /* the key the certificate is for */
	struct kh_bytes signer;            /* certificate that signed the request (DER) */
	char signer_key[KH_NAME_MAX + 1];  /* its key: decrypts the answer */
	struct kh_bytes subject;           /* the request's subject (DER Name) */
	int64_t started, next_poll, wait;
	uint32_t polls;
};
void store_scep_pending_clear(struct store_scep_pending *p);
/* NOT_FOUND when the trustpoint has no request pending. */
enum kh_err store_scep_pending_get(struct store *st, const char *name, struct store_scep_pending *out,
				   struct kh_errbuf *e) KH_WUR;
enum kh_err store_scep_pending_put(struct store *st, const char *name, const struct store_scep_pending *p,
				   struct kh_errbuf *e) KH_WUR;
enum kh_err store_scep_pending_del(struct store *st, const char *name, struct kh_errbuf *e) KH_WUR;
/* The trustpoints with a pending request (*names: free). */
enum kh_err store_scep_pending_names(struct store *st, char (**names)[KH_NAME_MAX + 1], size_t *n,
				     struct kh_errbuf *e) KH_WUR;
/* NOT_FOUND when absent. */
enum kh_err store_tp_get(struct store *st, const char *name, struct store_tp *out, struct kh_errbuf *e) KH_WUR;
/* Names, sorted. */
enum kh_err store_tp_names(struct store *st, char (**names)[KH_NAME_MAX + 1], size_t *n, struct kh_errbuf *e) KH_WUR;
/* ALREADY_EXISTS when the name is taken. */
enum kh_err store_tp_insert(struct store *st, const struct store_tp *t, struct kh_errbuf *e) KH_WUR;
/* Rewrites the row and its certificates (call inside a transaction). */
enum kh_err store_tp_update(struct store *st, const struct store_tp *t, struct kh_errbuf *e) KH_WUR;
enum kh_err store_tp_delete(struct store *st, const char *name, struct kh_errbuf *e) KH_WUR;
/* The first trustpoint (by name) that references key as its key, its
 * rollover key or its pending CSR's key; "" when none. */
enum kh_err store_tp_key_user(struct store *st, const char *key, char user[KH_NAME_MAX + 1],
			      struct kh_errbuf *e) KH_WUR;

/* ---- keys keyhold generated for trustpoints ---- */

/* live: generated (or about to be: the intent is recorded before the
 * token is asked) for trustpoint; retired: to be destroyed. */
enum store_mkey_state { STORE_MKEY_LIVE = 0, STORE_MKEY_RETIRED = 1 };

struct store_mkey {
	char key[KH_NAME_MAX + 1];
	char trustpoint[KH_NAME_MAX + 1];
	enum store_mkey_state state;
	int64_t created;
};

enum kh_err store_mkey_add(struct store *st, const char *key, const char *tp, struct kh_errbuf *e) KH_WUR;
enum kh_err store_mkey_set_state(struct store *st, const char *key, enum store_mkey_state s,
				 struct kh_errbuf *e) KH_WUR;
enum kh_err store_mkey_remove(struct store *st, const char *key, struct kh_errbuf *e) KH_WUR;
/* *found false when key is not a managed key. */
enum kh_err store_mkey_get(struct store *st, const char *key, struct store_mkey *out, bool *found,
			   struct kh_errbuf *e) KH_WUR;
enum kh_err store_mkey_list(struct store *st, struct store_mkey **out, size_t *n, struct kh_errbuf *e) KH_WUR;

/* ---- trust stores ---- */

struct store_ts_cert {
	char fingerprint[KH_FP_HEX + 1];
	char subject[KH_DN_MAX + 1];
	char cn[KH_DN_MAX + 1];
	bool self_signed;
	int64_t not_after;
	struct kh_bytes der;
	int64_t added;
};

struct store_crl {
	char issuer_key[KH_FP_HEX + 1];    /* SHA-256 of the issuer name DER */
	char issuer[KH_DN_MAX + 1];
	char fingerprint[KH_FP_HEX + 1];
	int64_t this_update, next_update;
	struct kh_bytes der;
	char source[16];                   /* "import"; issue 8 adds fetched CRLs */
	int64_t imported;
};

enum kh_err store_ts_names(struct store *st, char (**names)[KH_NAME_MAX + 1], size_t *n, struct kh_errbuf *e) KH_WUR;
enum kh_err store_ts_exists(struct store *st, const char *name, bool *exists, struct kh_errbuf *e) KH_WUR;
/* Creates the store if it does not exist. */
enum kh_err store_ts_create(struct store *st, const char *name, struct kh_errbuf *e) KH_WUR;
/* Removes the store with its certificates and CRLs. */
enum kh_err store_ts_delete(struct store *st, const char *name, struct kh_errbuf *e) KH_WUR;
enum kh_err store_ts_certs(struct store *st, const char *name, struct store_ts_cert **out, size_t *n,
			   struct kh_errbuf *e) KH_WUR;
enum kh_err store_ts_cert_add(struct store *st, const char *name, const struct store_ts_cert *c,
			      struct kh_errbuf *e) KH_WUR;
/* NOT_FOUND when the store does not hold fingerprint. */
enum kh_err store_ts_cert_remove(struct store *st, const char *name, const char *fingerprint,
				 struct kh_errbuf *e) KH_WUR;
void store_ts_certs_free(struct store_ts_cert *c, size_t n);

/* Inserts or replaces the CRL of (store, issuer_key). */
enum kh_err store_crl_put(struct store *st, const char *store_name, const struct store_crl *c,
			  struct kh_errbuf *e) KH_WUR;
/* Removes the store's CRL from the issuer with that name key; NOT_FOUND
 * when there is none. */
enum kh_err store_crl_remove(struct store *st, const char *store_name, const char *issuer_key,
			     struct kh_errbuf *e) KH_WUR;
enum kh_err store_crl_list(struct store *st, const char *store_name, struct store_crl **out, size_t *n,
			   struct kh_errbuf *e) KH_WUR;
void store_crls_free(struct store_crl *c, size_t n);

/* ---- revocation, expiry and renewal (store_rev.c) ---- */

/* A trust store's revocation policy; defaults ("none", "") when none was
 * set. */
struct store_ts_policy {
	char revocation[KH_REVOCATION_MAX + 1];
	char ocsp_url[KH_URL_MAX + 1];
};
enum kh_err store_ts_policy_get(struct store *st, const char *store_name, struct store_ts_policy *out,
				struct kh_errbuf *e) KH_WUR;
enum kh_err store_ts_policy_put(struct store *st, const char *store_name, const struct store_ts_policy *p,
				struct kh_errbuf *e) KH_WUR;

/* A trust store's path validation settings; kh_validation_default when
 * none were set. */
enum kh_err store_ts_validation_get(struct store *st, const char *store_name, struct kh_validation *out,
				    struct kh_errbuf *e) KH_WUR;
enum kh_err store_ts_validation_put(struct store *st, const char *store_name, const struct kh_validation *v,
				    struct kh_errbuf *e) KH_WUR;

/* A trustpoint's OCSP URL and renewal settings (its revocation list is a
 * column of trustpoints); defaults when none were set. */
struct store_tp_policy {
	char ocsp_url[KH_URL_MAX + 1];
	uint32_t renew_at;
	bool renew_regenerate;
};
enum kh_err store_tp_policy_get(struct store *st, const char *tp, struct store_tp_policy *out,
				struct kh_errbuf *e) KH_WUR;
enum kh_err store_tp_policy_put(struct store *st, const char *tp, const struct store_tp_policy *p,
				struct kh_errbuf *e) KH_WUR;

/* A trustpoint's ACME settings (store_acme.c); NOT_FOUND when it has none. */
#define STORE_ACME_CA_MAX 65536
#define STORE_ACME_ERROR_MAX 400
#define STORE_ACME_EAB_MAX 128
#define STORE_ACME_EAB_KID_MAX 256
#define STORE_ACME_WEBROOT_MAX 1024
struct store_tp_acme {
	char directory[KH_URL_MAX + 1];
	char contact[KH_URL_MAX + 1];
	char *ca_pem;                       /* owned; NULL: the system's CAs */
	char account_key[KH_NAME_MAX + 1];
	char kid[KH_URL_MAX + 1];           /* "": no account yet */
	/* Renewal by the expiry monitor: failures in a row, the last one's
	 * message, the earliest next attempt (svc_now seconds; 0: now). */
	uint32_t renew_failures;
	char renew_error[STORE_ACME_ERROR_MAX + 1];
	int64_t renew_next;
	char webroot[STORE_ACME_WEBROOT_MAX + 1];      /* "": keyholdd's own responder */
	char eab_kid[STORE_ACME_EAB_KID_MAX + 1]; /* "": no external account binding */
	uint8_t eab_key[STORE_ACME_EAB_MAX]; /* the MAC key; wiped once the account exists */
	size_t eab_key_len;
	char account_key_next[KH_NAME_MAX + 1]; /* a key rollover in flight; "" when none */
};
void store_tp_acme_clear(struct store_tp_acme *a);
enum kh_err store_tp_acme_get(struct store *st, const char *tp, struct store_tp_acme *out,
			      struct kh_errbuf *e) KH_WUR;
enum kh_err store_tp_acme_put(struct store *st, const char *tp, const struct store_tp_acme *a,
			      struct kh_errbuf *e) KH_WUR;

/* A CRL fetched from a distribution point, by URL. */
struct store_crl_cached {
	char issuer[KH_DN_MAX + 1];
	int64_t this_update, next_update, fetched;
	struct kh_bytes der;
};
/* *found false when url is not cached. */
enum kh_err store_crl_cache_get(struct store *st, const char *url, struct store_crl_cached *out, bool *found,
				struct kh_errbuf *e) KH_WUR;
enum kh_err store_crl_cache_put(struct store *st, const char *url, const struct store_crl_cached *c,
				struct kh_errbuf *e) KH_WUR;

/* An OCSP answer (good or revoked) by certificate id. */
struct store_ocsp_cached {
	char responder[KH_URL_MAX + 1];
	bool revoked;
	int reason;                        /* CRLReason; -1: none given */
	int64_t revoked_at, this_update, next_update, fetched;
	struct kh_bytes der;               /* the response, as received */
};
enum kh_err store_ocsp_cache_get(struct store *st, const char *cert_id, struct store_ocsp_cached *out, bool *found,
				 struct kh_errbuf *e) KH_WUR;
enum kh_err store_ocsp_cache_put(struct store *st, const char *cert_id, const struct store_ocsp_cached *c,
				 struct kh_errbuf *e) KH_WUR;

/* The last expiry notification of a certificate (by fingerprint). */
struct store_notice {
	char fingerprint[KH_FP_HEX + 1];
	int64_t first_notified, last_notified;
	uint32_t count;
};
enum kh_err store_notices_list(struct store *st, struct store_notice **out, size_t *n, struct kh_errbuf *e) KH_WUR;
enum kh_err store_notice_put(struct store *st, const char *fingerprint, const char *subject, int64_t not_after,
			     int64_t now, struct kh_errbuf *e) KH_WUR;
/* Forgets the notices of certificates keyhold no longer holds. */
enum kh_err store_notice_remove(struct store *st, const char *fingerprint, struct kh_errbuf *e) KH_WUR;

/* ---- revocation over time (store_revstate.c, schema 8) ---- */

/* A trust store's CRL URL, fetched by the revocation scheduler; "" when
 * none is set. */
enum kh_err store_ts_crl_url_get(struct store *st, const char *store_name, char *out, size_t outsz,
				 struct kh_errbuf *e) KH_WUR;
/* url "": none. */
enum kh_err store_ts_crl_url_put(struct store *st, const char *store_name, const char *url,
				 struct kh_errbuf *e) KH_WUR;

/* A trust store's trusted third-party OCSP responder certificate (DER);
 * out->len 0 when none. */
enum kh_err store_ts_ocsp_signer_get(struct store *st, const char *store_name, struct kh_bytes *out,
				     struct kh_errbuf *e) KH_WUR;
/* der->len 0: none. */
enum kh_err store_ts_ocsp_signer_put(struct store *st, const char *store_name, const struct kh_bytes *der,
				     struct kh_errbuf *e) KH_WUR;

/* Every URL the CRL cache holds, with the cached CRL's times. */
struct store_crl_cache_row {
	char url[KH_URL_MAX + 1];
	char issuer[KH_DN_MAX + 1];
	int64_t this_update, next_update, fetched;
};
enum kh_err store_crl_cache_list(struct store *st, struct store_crl_cache_row **out, size_t *n,
				 struct kh_errbuf *e) KH_WUR;

/* The last fetch of a CRL source (a distribution point or a trust store's
 * URL). *found false when it was never fetched. */
struct store_crl_fetch {
	int64_t fetched;
	bool ok;
	char result[256];
};
enum kh_err store_crl_fetch_get(struct store *st, const char *url, struct store_crl_fetch *out, bool *found,
				struct kh_errbuf *e) KH_WUR;
enum kh_err store_crl_fetch_put(struct store *st, const char *url, const struct store_crl_fetch *f,
				struct kh_errbuf *e) KH_WUR;

/* The last revocation state of something keyhold holds: id "cert:SHA256"
 * (status good, revoked, unknown, not-checked) or "crl:SOURCE" (current,
 * stale). */
#define STORE_REVSTATE_ID_MAX (KH_URL_MAX + 128)
struct store_revstate {
	char id[STORE_REVSTATE_ID_MAX + 1];
	char status[16];
	char subject[KH_DN_MAX + 1];
	char held_by[KH_HELD_BY_LEN * 2];
	char detail[512];
	int64_t checked, changed;
};
enum kh_err store_revstate_list(struct store *st, struct store_revstate **out, size_t *n,
				struct kh_errbuf *e) KH_WUR;
enum kh_err store_revstate_put(struct store *st, const struct store_revstate *v, struct kh_errbuf *e) KH_WUR;
enum kh_err store_revstate_remove(struct store *st, const char *id, struct kh_errbuf *e) KH_WUR;

/* ---- the audit log's anchor ---- */

/* Node's last checkpoint's anchor as audit/ formats it (text, at most
 * outsz - 1 bytes), one row per node of a cluster (schema 10; an older
 * version's single row is the node's until it writes its own).
 * NOT_FOUND when none is kept. */
enum kh_err store_audit_anchor_get(struct store *st, const char *node, char *out, size_t outsz,
				   struct kh_errbuf *e) KH_WUR;
enum kh_err store_audit_anchor_put(struct store *st, const char *node, const char *value, struct kh_errbuf *e) KH_WUR;

/* ---- several nodes as one service (store_cluster.c, schema 10) ---- */

#define STORE_NODE_MAX KH_NAME_MAX
#define STORE_ROLE_MAX 32

/* A node's row: registered at start ("up"), its heartbeat moved on while
 * it runs, "stopping" once it shuts down cleanly. */
struct store_node {
	char name[STORE_NODE_MAX + 1];
	int64_t started, heartbeat;
	char version[32];
	char state[12];                    /* "up", "stopping" */
	char audit_key[65];                /* the key signing its audit checkpoints; "": not recorded */
};
/* Inserts or replaces the node's row: state up, started = heartbeat = now. */
enum kh_err store_node_register(struct store *st, const char *name, const char *version, const char *audit_key,
				int64_t now, struct kh_errbuf *e) KH_WUR;
/* The heartbeat (and the row again, should it have been removed). */
enum kh_err store_node_heartbeat(struct store *st, const char *name, const char *version, int64_t now,
				 struct kh_errbuf *e) KH_WUR;
/* state "stopping": also gives up every lease the node holds. */
enum kh_err store_node_stopping(struct store *st, const char *name, int64_t now, struct kh_errbuf *e) KH_WUR;
/* Every node, by name (*out: free). */
enum kh_err store_nodes_list(struct store *st, struct store_node **out, size_t *n, struct kh_errbuf *e) KH_WUR;

/* A scheduled role's lease: who holds it and until when. */
struct store_lease {
	char role[STORE_ROLE_MAX + 1];
	char holder[STORE_NODE_MAX + 1];
	int64_t acquired, expires;
};
/* Takes role for holder until now + ttl, or extends holder's own lease, in
 * one atomic statement (an upsert whose update applies only when holder
 * already holds it or the lease has expired); *held says whether holder
 * holds it now. Another node's live lease is left alone. */
enum kh_err store_lease_take(struct store *st, const char *role, const char *holder, int64_t now, int64_t ttl,
			     bool *held, struct kh_errbuf *e) KH_WUR;
/* Extends every unexpired lease holder holds to now + ttl (the heartbeat). */
enum kh_err store_lease_renew_all(struct store *st, const char *holder, int64_t now, int64_t ttl,
				  struct kh_errbuf *e) KH_WUR;
/* Every lease, by role (*out: free). */
enum kh_err store_leases_list(struct store *st, struct store_lease **out, size_t *n, struct kh_errbuf *e) KH_WUR;

/* A claim on one piece of scheduled work (what, e.g. "renew:TP", at
 * version, e.g. the certificate being renewed): node takes it when nobody
 * has, keeps it when it is its own, and takes it over when the claimant's
 * heartbeat is older than stale_before or it is stopping. *claimed says
 * whether node holds the claim now. Call inside a transaction that also
 * took the lease (svc_cluster_claim). */
enum kh_err store_claim(struct store *st, const char *what, const char *version, const char *node, int64_t now,
			int64_t stale_before, bool *claimed, struct kh_errbuf *e) KH_WUR;

/* Forgets claims last made before before (their certificates were
 * renewed long ago: a claimant still trying makes its claim again at
 * every pass). */
enum kh_err store_claims_prune(struct store *st, int64_t before, struct kh_errbuf *e) KH_WUR;

/* A generation counter (e.g. "grants"): bumped in the transaction of
 * every change of what it counts (how many there were; the caches learn
 * of a change from its notification, store_notify). 0 when it was never
 * bumped. */
enum kh_err store_gen_get(struct store *st, const char *name, int64_t *gen, struct kh_errbuf *e) KH_WUR;
enum kh_err store_gen_bump(struct store *st, const char *name, struct kh_errbuf *e) KH_WUR;

/* One signed audit checkpoint of a node, as its audit log wrote it: the
 * line up to " sig=" (signed), the signature (hex), the chain hash after
 * the line (hex SHA-256) and the sequence number of the node's previous
 * checkpoint (0: none before it), for gaps. */
#define STORE_CKPT_SIGNED_MAX 2048
#define STORE_CKPT_SIG_MAX 300
struct store_ckpt {
	char node[STORE_NODE_MAX + 1];
	uint64_t seq, prev_seq;
	char chain[65];
	char signed_text[STORE_CKPT_SIGNED_MAX + 1];
	char sig[STORE_CKPT_SIG_MAX + 1];
	int64_t recorded;
};
enum kh_err store_ckpt_put(struct store *st, const struct store_ckpt *c, struct kh_errbuf *e) KH_WUR;
/* The highest sequence number recorded for node (0: none). */
enum kh_err store_ckpt_last(struct store *st, const char *node, uint64_t *seq, struct kh_errbuf *e) KH_WUR;
/* Every checkpoint, by node then sequence (*out: free). */
enum kh_err store_ckpts_list(struct store *st, struct store_ckpt **out, size_t *n, struct kh_errbuf *e) KH_WUR;

/* ---- runtime key grants (store_grants.c, schema 10) ---- */

/* principal: as kept (uid:N / gid:N for grants made by name, whose name
 * is display; cert:..., or the text given). digests and paddings: bit
 * sets (0: any). */
struct store_grant {
	char key[KH_NAME_MAX + 1];
	char principal[160];
	char display[160];
	unsigned digests, paddings;
	int64_t created;
};
/* Every runtime grant, by key then principal (*out: free). */
enum kh_err store_grants_list(struct store *st, struct store_grant **out, size_t *n, struct kh_errbuf *e) KH_WUR;
/* Inserts or replaces (key, principal). */
enum kh_err store_grant_put(struct store *st, const struct store_grant *g, struct kh_errbuf *e) KH_WUR;
/* *found false when there was no such grant. */
enum kh_err store_grant_delete(struct store *st, const char *key, const char *principal, bool *found,
			       struct kh_errbuf *e) KH_WUR;
/* Every grant of key (a deleted key); *n how many went. */
enum kh_err store_grants_delete_key(struct store *st, const char *key, size_t *n, struct kh_errbuf *e) KH_WUR;

#endif
