/* h_status.c: GetStatus and GetCapabilities. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/provider.h>

#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips.h"
#include "core/svc.h"
#include "pki/pki_state.h"
#include "rpc/dispatch.h"
#include "rpc/rpc.h"
#include "access/access.h"
#include "cluster/cluster.h"
#include "pool/pool.h"
#include "store/store.h"

/* The providers' names, comma-separated, in at most this many bytes. */
#define RPC_PROVIDERS_MAX 128

static int svc_provider_name_cb(OSSL_PROVIDER *prov, void *arg)
{
	char *out = arg;
	size_t off = strlen(out);

	snprintf(out + off, RPC_PROVIDERS_MAX - off, "%s%s", off ? "," : "", OSSL_PROVIDER_get0_name(prov));
	return 1;
}

static void rpc_key_list_free(void *p)
{
	kh_key_list_clear(p);
	free(p);
}

static void rpc_caps_free(void *p)
{
	kh_capabilities_clear(p);
	free(p);
}

/* A malloc'd array of n malloc'd names (NULL entries allowed). */
struct rpc_names {
	char **v;
	size_t n;
};

static void rpc_names_free(void *p)
{
	struct rpc_names *x = p;
	size_t i;

	for (i = 0; i < x->n; i++)
		free(x->v[i]);
	free(x->v);
	free(x);
}

/* v lives until the answer is sent; on failure it is freed at once. */
static void rpc_names_defer(struct rpc_call *c, char **v, size_t n)
{
	struct rpc_names *x = calloc(1, sizeof(*x));

	if (x == NULL) {
		c->oom = true;
		rpc_names_free(&(struct rpc_names){ v, n });
		return;
	}
	x->v = v;
	x->n = n;
	rpc_defer(c, rpc_names_free, x);
}

/* TokenInfo from the token's description; the message borrows t. */
static Keyhold__V1__TokenInfo *rpc_token_info(struct rpc_call *c, const struct kh_token_info *t)
{
	Keyhold__V1__TokenInfo *m = rpc_msg(c, &keyhold__v1__token_info__descriptor);

	if (m == NULL)
		return NULL;
	m->label = rpc_str(t->label);
	m->manufacturer = rpc_str(t->manufacturer);
	m->model = rpc_str(t->model);
	m->serial = rpc_str(t->serial);
	m->hw_version = rpc_str(t->hw_version);
	m->fw_version = rpc_str(t->fw_version);
	m->flags = t->flags;
	m->flag_names = rpc_str(t->flag_names);
	m->max_sessions = t->max_sessions;
	m->sessions = t->sessions;
	m->available = t->available;
	return m;
}

static Keyhold__V1__ConditionalCounts *rpc_conditional(struct rpc_call *c)
{
	Keyhold__V1__ConditionalCounts *m = rpc_msg(c, &keyhold__v1__conditional_counts__descriptor);
	struct selftest_counts n;

	if (m == NULL)
		return NULL;
	selftest_counts(c->s, &n);
	m->pairwise_run = n.pairwise_run;
	m->pairwise_failed = n.pairwise_failed;
	m->rng_run = n.rng_run;
	m->rng_failed = n.rng_failed;
	m->verify_run = n.verify_run;
	m->verify_failed = n.verify_failed;
	return m;
}

/* What GetStatus reads of the token, read again in the background before
 * it is RPC_STATUS_MAX_AGE_US old (status_refresh_kick). */
struct svc_status_refresh {
	struct svc_pool_item item;      /* first: the pool hands back &item */
	struct svc *s;
	_Atomic bool queued;
	/* GetStatus's own connection to the state database (the cluster
	 * view, orphaned keys): it never waits for the PKI lock, which a
	 * trustpoint's key generation holds for seconds on a TPM, nor for
	 * the cluster's jobs. On SQLite (WAL) its reads are local and never
	 * wait for a writer, so GetStatus may run on an event loop; a
	 * PostgreSQL query is a network round trip, so there it does not. */
	struct store *st;
	pthread_mutex_t st_lock;
	bool local;
};

/* GetStatus's own connection, taken (status_store_put gives it back);
 * NULL without one: the callee then uses its module's own under its lock. */
static struct store *status_store_take(struct svc *s)
{
	if (s->status_refresh == NULL)
		return NULL;
	pthread_mutex_lock(&s->status_refresh->st_lock);
	return s->status_refresh->st;
}

static void status_store_put(struct svc *s)
{
	if (s->status_refresh != NULL)
		pthread_mutex_unlock(&s->status_refresh->st_lock);
}

static void rpc_cluster_view_free(void *p)
{
	svc_cluster_view_clear(p);
	free(p);
}

/* The cluster: this node, every node, the holder of each scheduled role
 * (a role nobody ever took is listed with no holder). A database that
 * cannot be read leaves the lists empty (logged): the status still
 * answers. */
static enum kh_err rpc_cluster(struct rpc_call *c, Keyhold__V1__GetStatusResponse *m)
{
	static const char *const roles[] = { CLUSTER_ROLE_EXPIRY, CLUSTER_ROLE_REVOCATION, CLUSTER_ROLE_SCEP };
	struct svc_cluster_view *v = calloc(1, sizeof(*v));
	struct kh_errbuf e = { 0 };
	size_t i, k;
	int r;

	if (v == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	rpc_defer(c, rpc_cluster_view_free, v); /* frees v at once when out of memory */
	if (c->oom)
		return KH_E_RESOURCE_EXHAUSTED;
	r = svc_cluster_view(c->s, status_store_take(c->s), v, &e);
	status_store_put(c->s);
	if (r != KH_OK) {
		log_warn("status: the cluster's state cannot be read: %s", e.msg);
		return KH_OK;
	}
	m->node = v->node;
	m->lease_ttl_s = v->lease_ttl;
	m->cluster_now = v->now;
	if (v->node[0] == '\0')
		return KH_OK;
	m->cluster_nodes = rpc_array(c, v->n_nodes, sizeof(*m->cluster_nodes));
	m->cluster_roles = rpc_array(c, 3 + v->n_leases, sizeof(*m->cluster_roles));
	if (m->cluster_nodes == NULL || m->cluster_roles == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < v->n_nodes; i++) {
		Keyhold__V1__ClusterNode *n = rpc_msg(c, &keyhold__v1__cluster_node__descriptor);

		if (n == NULL)
			return KH_E_RESOURCE_EXHAUSTED;
		n->name = v->nodes[i].name;
		n->state = v->nodes[i].state;
		n->started = v->nodes[i].started;
		n->heartbeat = v->nodes[i].heartbeat;
		n->version = v->nodes[i].version;
		n->alive = strcmp(v->nodes[i].state, "up") == 0 && v->nodes[i].heartbeat + (int64_t)v->lease_ttl > v->now;
		m->cluster_nodes[m->n_cluster_nodes++] = n;
	}
	for (k = 0; k < 3 + v->n_leases; k++) {
		const char *role = k < 3 ? roles[k] : v->leases[k - 3].role;
		const struct store_lease *l = NULL;
		Keyhold__V1__ClusterRole *o;

		if (k >= 3 && (strcmp(role, roles[0]) == 0 || strcmp(role, roles[1]) == 0 || strcmp(role, roles[2]) == 0))
			continue; /* listed already */
		for (i = 0; i < v->n_leases && l == NULL; i++)
			if (strcmp(v->leases[i].role, role) == 0)
				l = &v->leases[i];
		o = rpc_msg(c, &keyhold__v1__cluster_role__descriptor);
		if (o == NULL)
			return KH_E_RESOURCE_EXHAUSTED;
		o->role = rpc_str(role);
		if (l != NULL) {
			o->acquired = l->acquired;
			o->expires = l->expires;
			if (l->expires > v->now)
				o->holder = rpc_str(l->holder);
			else
				o->last_holder = rpc_str(l->holder);
		}
		m->cluster_roles[m->n_cluster_roles++] = o;
	}
	return KH_OK;
}

/* ---- what GetStatus reads of the token, read again in the background ---- */

/* Worker: the token's information and key listing, read now; both are
 * kept for hsm_*_recent. */
static bool status_refresh_run(struct svc_pool_item *it)
{
	struct svc_status_refresh *r = (struct svc_status_refresh *)(void *)it;
	struct kh_token_info tok;
	struct kh_key_list keys = { 0 };
	struct kh_errbuf e = { 0 };

	hsm_token_info(r->s->hsm, &tok);
	if (hsm_key_list(r->s->hsm, &keys, &e) != KH_OK)
		log_dbg("status: the token's keys cannot be listed: %s", e.msg);
	kh_key_list_clear(&keys);
	atomic_store(&r->queued, false);
	return false; /* finished here: nothing for the loop */
}

enum kh_err svc_status_refresh_new(struct svc *s, struct kh_errbuf *e)
{
	struct svc_status_refresh *r = calloc(1, sizeof(*r));
	struct kh_errbuf why = { 0 };

	if (r == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	if (svc_store_open(s, &r->st, &why) != KH_OK) {
		free(r);
		return kh_err_set(e, why.code, "status: %s", why.msg);
	}
	pthread_mutex_init(&r->st_lock, NULL);
	r->local = strcmp(store_backend(r->st), "sqlite") == 0;
	r->item.run = status_refresh_run;
	r->s = s;
	s->status_refresh = r;
	return KH_OK;
}

void svc_status_refresh_free(struct svc *s)
{
	struct svc_status_refresh *r = s->status_refresh;

	if (r == NULL)
		return;
	store_close(r->st);
	pthread_mutex_destroy(&r->st_lock);
	free(r);
	s->status_refresh = NULL;
}

bool svc_status_cached(struct svc *s)
{
	return s->status_refresh != NULL && s->status_refresh->local &&
	       hsm_recent_age_us(s->hsm) <= RPC_STATUS_MAX_AGE_US;
}

/* Once what GetStatus reads is half its allowed age: one refresh queued. */
static void status_refresh_kick(struct svc *s)
{
	struct svc_status_refresh *r = s->status_refresh;
	bool idle = false;

	if (r == NULL || s->pool == NULL || hsm_recent_age_us(s->hsm) <= RPC_STATUS_MAX_AGE_US / 2)
		return;
	if (atomic_compare_exchange_strong(&r->queued, &idle, true))
		svc_pool_submit(s->pool, &r->item);
}

enum kh_err svc_h_get_status(struct rpc_call *c, struct kh_errbuf *e)
{
	Keyhold__V1__GetStatusResponse *m = rpc_msg(c, &keyhold__v1__get_status_response__descriptor);
	struct svc *s = c->s;
	struct kh_key_list *keys = calloc(1, sizeof(*keys));
	struct kh_token_info *tok = rpc_alloc(c, sizeof(*tok));
	char *providers = rpc_alloc(c, RPC_PROVIDERS_MAX);
	struct kh_errbuf ignore = { 0 }, list_err = { 0 };
	char **orphans = NULL;
	size_t i, n_orphans = 0;
	uint64_t max_age = s->status_refresh != NULL ? RPC_STATUS_MAX_AGE_US : 0;
	bool listed;
	int r = KH_OK;

	if (keys != NULL)
		rpc_defer(c, rpc_key_list_free, keys);
	KH_ENSURE(m != NULL && keys != NULL && tok != NULL && providers != NULL && !c->oom,
		  kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "cannot assemble the status"));
	m->version = rpc_str(KEYHOLD_VERSION);
	m->state = rpc_str(svc_state_name((enum svc_state)atomic_load(&s->state)));
	m->fips_mode = rpc_str(svc_fips_mode_name(s->cfg->fips_mode));
	m->openssl_version = rpc_str(OpenSSL_version(OPENSSL_VERSION));
	OSSL_PROVIDER_do_all(s->libctx, svc_provider_name_cb, providers);
	m->providers = providers;
	hsm_token_info_recent(s->hsm, max_age, tok);
	m->token = rpc_token_info(c, tok);
	m->workers = s->workers;
	m->uptime_s = (kh_now_mono_us() - s->start_us) / 1000000u;
	listed = hsm_key_list_recent(s->hsm, max_age, keys, &list_err) == KH_OK;
	if (!listed)
		kh_key_list_clear(keys);
	/* The keys who may see (docs/SECURITY.md): all for admins and
	 * auditors, the granted ones for a signer; of those, the ones made
	 * outside FIPS mode. */
	m->nonfips_keys = rpc_array(c, keys->n, sizeof(*m->nonfips_keys));
	KH_ENSURE(m->nonfips_keys != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "cannot assemble the status"));
	for (i = 0; i < keys->n; i++) {
		if (access_key_view(s->grants, c->who, keys->keys[i].name) == ACCESS_VIEW_NONE)
			continue;
		m->keys++;
		if (!selftest_key_is_fips(s, keys->keys[i].name))
			m->nonfips_keys[m->n_nonfips_keys++] = keys->keys[i].name;
	}
	/* FIPS: module_validated, self-tests, conditional counts. */
	m->module_validated = selftest_module_validated(s);
	m->self_tests = rpc_selftests(c, &m->n_self_tests);
	m->conditional = rpc_conditional(c);
	m->connections = atomic_load(&s->connections);
	m->requests = atomic_load(&s->requests);
	KH_ENSURE(rpc_cluster(c, m) == KH_OK && !c->oom,
		  kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "cannot assemble the status"));
	/* Keys keyhold generated for trustpoints that nothing uses now (of
	 * the listing above); a signer learns nothing of keys it has no
	 * grant for. */
	r = svc_pki_orphans(s, status_store_take(s), listed ? keys : NULL, &list_err, &orphans, &n_orphans, &ignore);
	status_store_put(s);
	if (r != KH_OK) {
		r = KH_OK;
		log_warn("cannot list orphaned keys: %s", ignore.msg);
	} else if (orphans != NULL) {
		size_t n_all = n_orphans;

		/* Dropped names are freed and NULL from n_orphans on. */
		n_orphans = access_filter_key_names(s->grants, c->who, orphans, n_orphans);
		rpc_names_defer(c, orphans, n_all);
		KH_ENSURE(!c->oom, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "cannot assemble the status"));
		m->orphaned_keys = orphans;
		m->n_orphaned_keys = n_orphans;
	}
	c->resp = &m->base;
	status_refresh_kick(s);
out:
	return r;
}

enum kh_err svc_h_get_capabilities(struct rpc_call *c, struct kh_errbuf *e)
{
	Keyhold__V1__GetCapabilitiesResponse *m = rpc_msg(c, &keyhold__v1__get_capabilities_response__descriptor);
	struct kh_capabilities *caps = calloc(1, sizeof(*caps));
	size_t i;
	int r = KH_OK;

	if (caps != NULL)
		rpc_defer(c, rpc_caps_free, caps);
	KH_ENSURE(m != NULL && caps != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(hsm_capabilities(c->s->hsm, caps, e));
	m->key_types = rpc_array(c, caps->n_types, sizeof(*m->key_types));
	m->mechanisms = rpc_array(c, caps->n_mechs, sizeof(*m->mechanisms));
	KH_ENSURE(m->key_types != NULL && m->mechanisms != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < caps->n_types && i < KH_KEY_TYPE_MAX; i++) {
		Keyhold__V1__KeyTypeAvailability *k = rpc_msg(c, &keyhold__v1__key_type_availability__descriptor);

		KH_ENSURE(k != NULL, KH_E_RESOURCE_EXHAUSTED);
		k->type = (Keyhold__V1__KeyType)caps->types[i].type;
		k->available = caps->types[i].available;
		k->reason = rpc_str(caps->types[i].reason);
		m->key_types[m->n_key_types++] = k;
	}
	for (i = 0; i < caps->n_mechs; i++) {
		Keyhold__V1__Mechanism *x = rpc_msg(c, &keyhold__v1__mechanism__descriptor);

		KH_ENSURE(x != NULL, KH_E_RESOURCE_EXHAUSTED);
		x->name = rpc_str(caps->mechs[i].name);
		x->id = caps->mechs[i].id;
		x->min_key = caps->mechs[i].min_key;
		x->max_key = caps->mechs[i].max_key;
		x->flags = caps->mechs[i].flags;
		m->mechanisms[m->n_mechanisms++] = x;
	}
	m->pss = caps->pss;
	c->resp = &m->base;
out:
	return r;
}
