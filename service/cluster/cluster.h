/* cluster/cluster.h: several keyholdd nodes as one service over one shared
 * state database (docs/CLUSTER.md): this node's row and heartbeat, the
 * leases that let exactly one node run each scheduled role, claims that
 * keep a renewal from being done twice, and the periodic job with a lease
 * the expiry monitor, the revocation scheduler and the SCEP poller share
 * (cluster_job.c). With the SQLite backend the cluster is this one node. */
#ifndef CLUSTER_CLUSTER_H
#define CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include "kh_err.h"
#include "core/svc.h"
#include "store/store.h"

/* The scheduled roles: each runs on the node holding its lease. */
#define CLUSTER_ROLE_EXPIRY "expiry"         /* expiry monitor and renewal (revocation/expiry.c) */
#define CLUSTER_ROLE_REVOCATION "revocation" /* CRL refresh and re-checks (revocation/rev_sched.c) */
#define CLUSTER_ROLE_SCEP "scep-poll"        /* SCEP polling and renewal (rpc/scep_poll.c) */

struct event_base;
struct svc_cluster;

/* Registers this node ([cluster] node) as up in the state database st,
 * the cluster's own connection (taken, also on failure; opened before the
 * privilege drop). */
enum kh_err svc_cluster_open(struct svc *s, struct store *st, struct kh_errbuf *e) KH_WUR;
/* Once the pool runs: the heartbeat, every third of the lease time,
 * which also renews the leases this node holds. */
enum kh_err svc_cluster_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
/* After the scheduled jobs stopped: marks the node stopping and gives up
 * its leases (another node takes the roles at its next look), closes.
 * NULL s->cluster is fine. */
void svc_cluster_stop(struct svc *s);

/* What changed on one node reaches every node (this one too) as a topic
 * (store.h: "grants", "key:NAME", or STORE_TOPIC_ALL when anything may
 * have): cb runs on the state database's listener thread and should only
 * mark caches stale. PostgreSQL's LISTEN/NOTIFY; with SQLite (one node)
 * nothing is ever called back. Once, after svc_cluster_open. */
enum kh_err svc_cluster_listen(struct svc *s, store_listen_cb *cb, void *arg, struct kh_errbuf *e) KH_WUR;
/* Tells every node that topic changed (now: outside a transaction); a
 * failure is logged (the other nodes' caches then find out on a miss or
 * at their next reconnect). Any thread; NULL s->cluster is fine. */
void svc_cluster_notify(struct svc *s, const char *topic);
/* This node's name ("" without a cluster: unit tests). */
const char *svc_cluster_node(const struct svc *s);

/* Takes or renews role's lease for this node in one atomic statement;
 * true when this node holds it now. Without a cluster (unit tests) every
 * role is this process's. A database failure counts as not held: the
 * pass is skipped and tried again at the next look. */
bool svc_cluster_lease(struct svc *s, const char *role);

/* In one transaction: takes or renews role's lease (refused while another
 * live node holds it) and claims the work what at version (e.g. "renew:TP" at the certificate's
 * notAfter). *claimed false: the lease is lost, or a live node claimed it
 * first. A claim outlives a failed attempt (the same node tries again); a
 * node whose heartbeat stopped loses its claims to the role's next
 * holder. */
enum kh_err svc_cluster_claim(struct svc *s, const char *role, const char *what, const char *version,
			      bool *claimed, struct kh_errbuf *e) KH_WUR;

/* GetStatus: the nodes, the leases, judged at now. */
struct svc_cluster_view {
	char node[STORE_NODE_MAX + 1];
	unsigned lease_ttl;
	int64_t now;
	struct store_node *nodes;
	size_t n_nodes;
	struct store_lease *leases;
	size_t n_leases;
};
/* Read through st (a connection the caller serialises: GetStatus's own,
 * so that it never waits for the cluster's jobs), or through the cluster's
 * connection when st is NULL. */
enum kh_err svc_cluster_view(struct svc *s, struct store *st, struct svc_cluster_view *out,
			     struct kh_errbuf *e) KH_WUR;
void svc_cluster_view_clear(struct svc_cluster_view *v);

/* ---- the periodic job with a lease (cluster_job.c) ---- */

struct cluster_job;
struct cluster_job_def {
	const char *name;              /* for the log: "expiry monitor" */
	const char *role;              /* the lease a pass needs; NULL: every node runs it */
	/* On the loop at each tick: whether a pass is due (NULL: always). */
	bool (*due)(void *arg);
	/* On a worker, only while this node holds role. */
	void (*pass)(void *arg);
	void *arg;
};
/* A timer every tick hands a pass to a worker (one at a time: a tick
 * while one runs is skipped); the first as soon as the loop runs. d is
 * copied. */
enum kh_err cluster_job_start(struct svc *s, struct event_base *base, const struct cluster_job_def *d,
			      struct timeval tick, struct cluster_job **out, struct kh_errbuf *e) KH_WUR;
/* A new tick (SIGHUP). */
void cluster_job_rearm(struct cluster_job *j, struct timeval tick);
/* After the pool is gone. NULL is fine. */
void cluster_job_free(struct cluster_job *j);

#endif
