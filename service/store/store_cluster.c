/* store_cluster.c: what several keyholdd nodes sharing one state database
 * coordinate through (schema 10, docs/CLUSTER.md): the nodes and their
 * heartbeat, the lease of each scheduled role, claims on renewals, the
 * generation counters behind the caches, and every node's signed audit
 * checkpoints. Every statement is portable SQL (upserts with ON CONFLICT,
 * no SQLite-only function), so that PostgreSQL runs the same text. */
#include <stdlib.h>
#include <string.h>

#include "kh_util.h"
#include "store_int.h"

/* ---- nodes ---- */

enum kh_err store_node_register(struct store *st, const char *name, const char *version, const char *audit_key,
				int64_t now, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO cluster_nodes (name, started, heartbeat, version, state, audit_key) "
			     "VALUES (?1, ?2, ?2, ?3, 'up', ?4) ON CONFLICT (name) DO UPDATE SET "
			     "started = excluded.started, heartbeat = excluded.heartbeat, "
			     "version = excluded.version, state = 'up', audit_key = excluded.audit_key",
			     &s, e));
	store_bind_text(s, 1, name);
	store_bind_int64(s, 2, now);
	store_bind_text(s, 3, version);
	store_bind_text(s, 4, audit_key);
	KH_TRY(store_step_done(s, "registering the node", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_node_heartbeat(struct store *st, const char *name, const char *version, int64_t now,
				 struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	/* started stays; a row deleted meanwhile comes back. */
	KH_TRY(store_prepare(st,
			     "INSERT INTO cluster_nodes (name, started, heartbeat, version, state) "
			     "VALUES (?1, ?2, ?2, ?3, 'up') ON CONFLICT (name) DO UPDATE SET "
			     "heartbeat = excluded.heartbeat, state = 'up'",
			     &s, e));
	store_bind_text(s, 1, name);
	store_bind_int64(s, 2, now);
	store_bind_text(s, 3, version);
	KH_TRY(store_step_done(s, "recording the heartbeat", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_node_stopping(struct store *st, const char *name, int64_t now, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL, *l = NULL;
	int r = KH_OK;

	KH_TRY(store_begin(st, e));
	KH_TRY(store_prepare(st, "UPDATE cluster_nodes SET state = 'stopping', heartbeat = ?2 WHERE name = ?1", &s, e));
	store_bind_text(s, 1, name);
	store_bind_int64(s, 2, now);
	KH_TRY(store_step_done(s, "marking the node stopping", e));
	KH_TRY(store_prepare(st, "DELETE FROM cluster_leases WHERE holder = ?1", &l, e));
	store_bind_text(l, 1, name);
	KH_TRY(store_step_done(l, "giving up the node's leases", e));
	r = store_commit(st, e);
out:
	if (r != KH_OK)
		store_rollback(st);
	store_finalize(s);
	store_finalize(l);
	return r;
}

enum kh_err store_nodes_list(struct store *st, struct store_node **out, size_t *n, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	struct store_node *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st,
			     "SELECT name, started, heartbeat, version, state, audit_key FROM cluster_nodes ORDER BY name",
			     &s, e));
	for (;;) {
		KH_TRY(store_step(s, &row, "listing the nodes", e));
		if (!row)
			break;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 8;
			KH_ENSURE(cap <= 4096, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many nodes"));
			nv = realloc(v, cap * sizeof(*v));
			KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
			v = nv;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].name, sizeof(v[cnt].name));
		v[cnt].started = store_col_int64(s, 1);
		v[cnt].heartbeat = store_col_int64(s, 2);
		store_col_text(s, 3, v[cnt].version, sizeof(v[cnt].version));
		store_col_text(s, 4, v[cnt].state, sizeof(v[cnt].state));
		store_col_text(s, 5, v[cnt].audit_key, sizeof(v[cnt].audit_key));
		cnt++;
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	store_finalize(s);
	free(v);
	return r;
}

/* ---- leases ---- */

enum kh_err store_lease_take(struct store *st, const char *role, const char *holder, int64_t now, int64_t ttl,
			     bool *held, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	/* One statement: a row nobody has is inserted; an existing one is
	 * updated only when it is holder's or has expired. acquired moves
	 * only when the holder changes. Affected rows: 1 when holder holds
	 * the role now, 0 when another node's lease is live. */
	KH_TRY(store_prepare(st,
			     "INSERT INTO cluster_leases (role, holder, acquired, expires) VALUES (?1, ?2, ?3, ?4) "
			     "ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, expires = excluded.expires, "
			     "acquired = CASE WHEN cluster_leases.holder = excluded.holder AND cluster_leases.expires > ?3 "
			     "THEN cluster_leases.acquired ELSE excluded.acquired END "
			     "WHERE cluster_leases.holder = excluded.holder OR cluster_leases.expires <= ?3",
			     &s, e));
	store_bind_text(s, 1, role);
	store_bind_text(s, 2, holder);
	store_bind_int64(s, 3, now);
	store_bind_int64(s, 4, now + ttl);
	KH_TRY(store_step_done(s, "taking a lease", e));
	*held = store_changes(st) == 1;
out:
	store_finalize(s);
	return r;
}

enum kh_err store_lease_renew_all(struct store *st, const char *holder, int64_t now, int64_t ttl,
				  struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "UPDATE cluster_leases SET expires = ?3 WHERE holder = ?1 AND expires > ?2", &s, e));
	store_bind_text(s, 1, holder);
	store_bind_int64(s, 2, now);
	store_bind_int64(s, 3, now + ttl);
	KH_TRY(store_step_done(s, "renewing the leases", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_leases_list(struct store *st, struct store_lease **out, size_t *n, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	struct store_lease *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT role, holder, acquired, expires FROM cluster_leases ORDER BY role", &s, e));
	for (;;) {
		KH_TRY(store_step(s, &row, "listing the leases", e));
		if (!row)
			break;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 8;
			KH_ENSURE(cap <= 256, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many leases"));
			nv = realloc(v, cap * sizeof(*v));
			KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
			v = nv;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].role, sizeof(v[cnt].role));
		store_col_text(s, 1, v[cnt].holder, sizeof(v[cnt].holder));
		v[cnt].acquired = store_col_int64(s, 2);
		v[cnt].expires = store_col_int64(s, 3);
		cnt++;
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	store_finalize(s);
	free(v);
	return r;
}

/* ---- claims ---- */

enum kh_err store_claim(struct store *st, const char *what, const char *version, const char *node, int64_t now,
			int64_t stale_before, bool *claimed, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO cluster_claims (what, version, node, claimed) VALUES (?1, ?2, ?3, ?4) "
			     "ON CONFLICT (what, version) DO UPDATE SET node = excluded.node, claimed = excluded.claimed "
			     "WHERE cluster_claims.node = excluded.node OR NOT EXISTS (SELECT 1 FROM cluster_nodes n "
			     "WHERE n.name = cluster_claims.node AND n.state = 'up' AND n.heartbeat > ?5)",
			     &s, e));
	store_bind_text(s, 1, what);
	store_bind_text(s, 2, version);
	store_bind_text(s, 3, node);
	store_bind_int64(s, 4, now);
	store_bind_int64(s, 5, stale_before);
	KH_TRY(store_step_done(s, "claiming scheduled work", e));
	*claimed = store_changes(st) == 1;
out:
	store_finalize(s);
	return r;
}

enum kh_err store_claims_prune(struct store *st, int64_t before, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM cluster_claims WHERE claimed < ?1", &s, e));
	store_bind_int64(s, 1, before);
	KH_TRY(store_step_done(s, "forgetting old claims", e));
out:
	store_finalize(s);
	return r;
}

/* ---- generations ---- */

enum kh_err store_gen_get(struct store *st, const char *name, int64_t *gen, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT gen FROM cluster_generations WHERE name = ?1", &s, e));
	store_bind_text(s, 1, name);
	KH_TRY(store_step(s, &row, "reading a generation", e));
	*gen = row ? store_col_int64(s, 0) : 0;
out:
	store_finalize(s);
	return r;
}

enum kh_err store_gen_bump(struct store *st, const char *name, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO cluster_generations (name, gen) VALUES (?1, 1) "
			     "ON CONFLICT (name) DO UPDATE SET gen = cluster_generations.gen + 1",
			     &s, e));
	store_bind_text(s, 1, name);
	KH_TRY(store_step_done(s, "bumping a generation", e));
out:
	store_finalize(s);
	return r;
}

/* ---- audit checkpoints ---- */

enum kh_err store_ckpt_put(struct store *st, const struct store_ckpt *c, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO audit_checkpoints (node, seq, prev_seq, chain, signed, sig, recorded) "
			     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (node, seq) DO UPDATE SET "
			     "prev_seq = excluded.prev_seq, chain = excluded.chain, signed = excluded.signed, "
			     "sig = excluded.sig, recorded = excluded.recorded",
			     &s, e));
	store_bind_text(s, 1, c->node);
	store_bind_int64(s, 2, c->seq);
	store_bind_int64(s, 3, c->prev_seq);
	store_bind_text(s, 4, c->chain);
	store_bind_text(s, 5, c->signed_text);
	store_bind_text(s, 6, c->sig);
	store_bind_int64(s, 7, c->recorded);
	KH_TRY(store_step_done(s, "recording an audit checkpoint", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ckpt_last(struct store *st, const char *node, uint64_t *seq, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT MAX(seq) FROM audit_checkpoints WHERE node = ?1", &s, e));
	store_bind_text(s, 1, node);
	KH_TRY(store_step(s, &row, "reading the last checkpoint", e));
	*seq = row ? (uint64_t)store_col_int64(s, 0) : 0; /* NULL reads as 0 */
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ckpts_list(struct store *st, struct store_ckpt **out, size_t *n, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	struct store_ckpt *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st,
			     "SELECT node, seq, prev_seq, chain, signed, sig, recorded FROM audit_checkpoints "
			     "ORDER BY node, seq",
			     &s, e));
	for (;;) {
		KH_TRY(store_step(s, &row, "listing the audit checkpoints", e));
		if (!row)
			break;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 64;
			KH_ENSURE(cap <= (1u << 20), kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many checkpoints"));
			nv = realloc(v, cap * sizeof(*v));
			KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
			v = nv;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].node, sizeof(v[cnt].node));
		v[cnt].seq = (uint64_t)store_col_int64(s, 1);
		v[cnt].prev_seq = (uint64_t)store_col_int64(s, 2);
		store_col_text(s, 3, v[cnt].chain, sizeof(v[cnt].chain));
		store_col_text(s, 4, v[cnt].signed_text, sizeof(v[cnt].signed_text));
		store_col_text(s, 5, v[cnt].sig, sizeof(v[cnt].sig));
		v[cnt].recorded = store_col_int64(s, 6);
		cnt++;
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	store_finalize(s);
	free(v);
	return r;
}
