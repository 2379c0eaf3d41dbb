/* cluster.c: this node among the nodes sharing one state database: its
 * row and heartbeat, the leases of the scheduled roles, renewal claims and
 * the cluster's view for GetStatus (docs/CLUSTER.md). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kh_log.h"
#include "kh_util.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "core/svc_clock.h"

#define CLUSTER_ROLES_MAX 8
/* A claim not made again for 30 days is forgotten (longer than the
 * longest interval a pass may have, 7 days). */
#define CLUSTER_CLAIM_KEEP_S (30 * 86400)

struct svc_cluster {
	struct store *st;               /* the cluster's own connection */
	pthread_mutex_t lock;           /* serialises st */
	char node[STORE_NODE_MAX + 1];
	unsigned ttl;                   /* lease time, seconds */
	struct cluster_job *heartbeat;
	/* What the log said last about each role, so that it speaks only
	 * when the holder changes. */
	struct {
		char role[STORE_ROLE_MAX + 1];
		int held;               /* -1 unknown, 0 no, 1 yes */
	} seen[CLUSTER_ROLES_MAX];
};

static const struct svc_config *cl_cfg(struct svc *s)
{
	return atomic_load(&s->cfg);
}

/* What the other rows say before this node registers, from one listing.
 * Names are unique per node: a row of this name that is up with a fresh
 * heartbeat is another keyholdd under the same name, or this one
 * restarted right after a crash; which, the log cannot know, so it warns
 * (refusing would keep a node that crashed from coming back for a lease
 * time). The nodes of a cluster sign their audit checkpoints with one
 * token key, which each of them keeps from every request, and verify
 * --cluster checks every node's checkpoints with it (docs/CLUSTER.md): a
 * node whose [audit] key differs from a live node's does not start. */
static enum kh_err cl_check_nodes(struct svc_cluster *c, const char *audit_key, struct kh_errbuf *e)
{
	struct store_node *v = NULL;
	int64_t now = svc_now();
	size_t n = 0, i;
	int r = KH_OK;

	KH_TRY(store_nodes_list(c->st, &v, &n, e));
	for (i = 0; i < n; i++) {
		if (strcmp(v[i].state, "up") != 0 || v[i].heartbeat + (int64_t)c->ttl <= now)
			continue; /* not alive */
		if (strcmp(v[i].name, c->node) == 0) {
			log_warn("cluster: node '%s' had a heartbeat %llds ago: if another keyholdd runs as '%s', give "
				 "each node its own [cluster] node name",
				 c->node, (long long)(now - v[i].heartbeat), c->node);
		} else if (v[i].audit_key[0] != '\0' && strcmp(v[i].audit_key, audit_key) != 0) {
			r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
				       "[audit] key '%s' is not the cluster's: node '%s' (up) signs its checkpoints with "
				       "'%s'; the nodes of a cluster share one audit key (stop every node to change it)",
				       audit_key, v[i].name, v[i].audit_key);
			break;
		}
	}
out:
	free(v);
	return r;
}

enum kh_err svc_cluster_open(struct svc *s, struct store *st, struct kh_errbuf *e)
{
	struct svc_cluster *c = calloc(1, sizeof(*c));
	const struct svc_config *cfg = cl_cfg(s);
	const char *audit_key;
	int r = KH_OK;

	if (c == NULL) {
		store_close(st);
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	}
	pthread_mutex_init(&c->lock, NULL);
	c->st = st;
	kh_strlcpy(c->node, cfg->cluster_node, sizeof(c->node));
	c->ttl = svc_config_lease_ttl(cfg);
	audit_key = cfg->audit_key != NULL ? cfg->audit_key : SVC_AUDIT_KEY_DEFAULT;
	KH_TRY(cl_check_nodes(c, audit_key, e));
	KH_TRY(store_node_register(c->st, c->node, KEYHOLD_VERSION, audit_key, svc_now(), e));
	log_info("cluster: node '%s' up; scheduled roles taken by lease (%u s, renewed every %u s)", c->node, c->ttl,
		 c->ttl / 3 ? c->ttl / 3 : 1);
	s->cluster = c;
	c = NULL;
out:
	if (c != NULL) {
		store_close(c->st);
		pthread_mutex_destroy(&c->lock);
		free(c);
	}
	return r;
}

enum kh_err svc_cluster_listen(struct svc *s, store_listen_cb *cb, void *arg, struct kh_errbuf *e)
{
	struct svc_cluster *c = s->cluster;
	int r;

	if (c == NULL)
		return KH_OK;
	pthread_mutex_lock(&c->lock);
	r = store_listen(c->st, cb, arg, e);
	pthread_mutex_unlock(&c->lock);
	return r;
}

void svc_cluster_notify(struct svc *s, const char *topic)
{
	struct svc_cluster *c = s->cluster;
	struct kh_errbuf e = { 0 };
	int r;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	r = store_notify(c->st, topic, &e);
	pthread_mutex_unlock(&c->lock);
	if (r != KH_OK)
		log_warn("cluster: cannot tell the other nodes that '%s' changed: %s", topic, e.msg);
}

const char *svc_cluster_node(const struct svc *s)
{
	return s->cluster != NULL ? s->cluster->node : "";
}

/* The heartbeat: this node's row, the leases it holds extended, and
 * claims nobody made for a month forgotten. */
static void cl_heartbeat(void *arg)
{
	struct svc_cluster *c = arg;
	struct kh_errbuf e = { 0 };
	int64_t now = svc_now();
	int r;

	pthread_mutex_lock(&c->lock);
	r = store_node_heartbeat(c->st, c->node, KEYHOLD_VERSION, now, &e);
	if (r == KH_OK)
		r = store_lease_renew_all(c->st, c->node, now, c->ttl, &e);
	if (r == KH_OK)
		r = store_claims_prune(c->st, now - CLUSTER_CLAIM_KEEP_S, &e);
	pthread_mutex_unlock(&c->lock);
	if (r != KH_OK)
		log_warn("cluster: heartbeat of node '%s': %s", c->node, e.msg);
}

enum kh_err svc_cluster_start(struct svc *s, struct event_base *base, struct kh_errbuf *e)
{
	struct cluster_job_def d = { "cluster heartbeat", NULL, NULL, cl_heartbeat, s->cluster };
	struct timeval tv = { 1, 0 };

	if (s->cluster == NULL)
		return KH_OK;
	if (s->cluster->ttl / 3 > 1)
		tv.tv_sec = (time_t)(s->cluster->ttl / 3);
	return cluster_job_start(s, base, &d, tv, &s->cluster->heartbeat, e);
}

void svc_cluster_stop(struct svc *s)
{
	struct svc_cluster *c = s->cluster;
	struct kh_errbuf e = { 0 };

	if (c == NULL)
		return;
	cluster_job_free(c->heartbeat);
	if (store_node_stopping(c->st, c->node, svc_now(), &e) != KH_OK)
		log_warn("cluster: node '%s' could not give up its leases (they expire in %u s): %s", c->node, c->ttl,
			 e.msg);
	else
		log_info("cluster: node '%s' stopping; its scheduled roles are free", c->node);
	store_close(c->st);
	pthread_mutex_destroy(&c->lock);
	free(c);
	s->cluster = NULL;
}

/* Logs when role changes hands as far as this node can tell; c->lock held. */
static void cl_note(struct svc_cluster *c, const char *role, bool held)
{
	size_t i;

	for (i = 0; i < CLUSTER_ROLES_MAX; i++) {
		if (c->seen[i].role[0] == '\0') {
			kh_strlcpy(c->seen[i].role, role, sizeof(c->seen[i].role));
			c->seen[i].held = -1;
		}
		if (strcmp(c->seen[i].role, role) == 0)
			break;
	}
	if (i == CLUSTER_ROLES_MAX || c->seen[i].held == (int)held)
		return;
	if (held)
		log_info("cluster: node '%s' holds the %s role", c->node, role);
	else
		log_info("cluster: the %s role is held by another node; node '%s' skips its passes", role, c->node);
	c->seen[i].held = held;
}

bool svc_cluster_lease(struct svc *s, const char *role)
{
	struct svc_cluster *c = s->cluster;
	struct kh_errbuf e = { 0 };
	bool held = false;

	if (c == NULL)
		return true;
	pthread_mutex_lock(&c->lock);
	if (store_lease_take(c->st, role, c->node, svc_now(), c->ttl, &held, &e) != KH_OK) {
		log_warn("cluster: the %s role's lease: %s; the pass is skipped", role, e.msg);
		held = false;
	} else {
		cl_note(c, role, held);
	}
	pthread_mutex_unlock(&c->lock);
	return held;
}

enum kh_err svc_cluster_claim(struct svc *s, const char *role, const char *what, const char *version,
			      bool *claimed, struct kh_errbuf *e)
{
	struct svc_cluster *c = s->cluster;
	int64_t now = svc_now();
	bool held = false, got = false;
	int r = KH_OK;

	if (c == NULL) {
		*claimed = true;
		return KH_OK;
	}
	pthread_mutex_lock(&c->lock);
	KH_TRY(store_begin(c->st, e));
	/* Takes or renews the lease rather than only reading it: a pass an
	 * admin started (RunMonitor) after the lease ran out takes the role
	 * back if no other node did. */
	r = store_lease_take(c->st, role, c->node, now, c->ttl, &held, e);
	if (r == KH_OK && held)
		r = store_claim(c->st, what, version, c->node, now, now - (int64_t)c->ttl, &got, e);
	if (r == KH_OK)
		r = store_commit(c->st, e);
	else
		store_rollback(c->st);
	if (r == KH_OK) {
		cl_note(c, role, held);
		*claimed = held && got;
		if (!held)
			log_warn("cluster: node '%s' does not hold the %s role (lost, or held by another node); '%s' "
				 "is left to its holder",
				 c->node, role, what);
		else if (!got)
			log_info("cluster: '%s' (%s) is claimed by another node; skipped", what, version);
	}
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

enum kh_err svc_cluster_view(struct svc *s, struct store *st, struct svc_cluster_view *out, struct kh_errbuf *e)
{
	struct svc_cluster *c = s->cluster;
	int r = KH_OK;

	memset(out, 0, sizeof(*out));
	out->now = svc_now();
	if (c == NULL)
		return KH_OK;
	kh_strlcpy(out->node, c->node, sizeof(out->node));
	out->lease_ttl = c->ttl;
	if (st == NULL)
		pthread_mutex_lock(&c->lock);
	r = store_nodes_list(st != NULL ? st : c->st, &out->nodes, &out->n_nodes, e);
	if (r == KH_OK)
		r = store_leases_list(st != NULL ? st : c->st, &out->leases, &out->n_leases, e);
	if (st == NULL)
		pthread_mutex_unlock(&c->lock);
	if (r != KH_OK)
		svc_cluster_view_clear(out);
	return r;
}

void svc_cluster_view_clear(struct svc_cluster_view *v)
{
	if (v == NULL)
		return;
	free(v->nodes);
	free(v->leases);
	memset(v, 0, sizeof(*v));
}
