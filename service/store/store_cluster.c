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

/* Binds text or a 64-bit integer; a failure becomes the statement's. */
#define BIND_T(s, i, v) (store_bind_text((s), (i), (v)) == SQLITE_OK)
#define BIND_I(s, i, v) (sqlite3_bind_int64((s), (i), (sqlite3_int64)(v)) == SQLITE_OK)

static enum kh_err sc_bind_err(struct store *st, struct kh_errbuf *e, const char *what)
{
	return store_sql_err(st, e, SQLITE_ERROR, what);
}

/* ---- nodes ---- */

enum kh_err store_node_register(struct store *st, const char *name, const char *version, int64_t now,
				struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO cluster_nodes (name, started, heartbeat, version, state) "
			     "VALUES (?1, ?2, ?2, ?3, 'up') ON CONFLICT (name) DO UPDATE SET "
			     "started = excluded.started, heartbeat = excluded.heartbeat, "
			     "version = excluded.version, state = 'up'",
			     &s, e));
	KH_ENSURE(BIND_T(s, 1, name) && BIND_I(s, 2, now) && BIND_T(s, 3, version),
		  sc_bind_err(st, e, "binding a node"));
	KH_TRY(store_step_done(st, s, "registering the node", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_node_heartbeat(struct store *st, const char *name, const char *version, int64_t now,
				 struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	/* started stays; a row deleted meanwhile comes back. */
	KH_TRY(store_prepare(st,
			     "INSERT INTO cluster_nodes (name, started, heartbeat, version, state) "
			     "VALUES (?1, ?2, ?2, ?3, 'up') ON CONFLICT (name) DO UPDATE SET "
			     "heartbeat = excluded.heartbeat, state = 'up'",
			     &s, e));
	KH_ENSURE(BIND_T(s, 1, name) && BIND_I(s, 2, now) && BIND_T(s, 3, version),
		  sc_bind_err(st, e, "binding a heartbeat"));
	KH_TRY(store_step_done(st, s, "recording the heartbeat", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_node_stopping(struct store *st, const char *name, int64_t now, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL, *l = NULL;
	int r = KH_OK;

	KH_TRY(store_begin(st, e));
	KH_TRY(store_prepare(st, "UPDATE cluster_nodes SET state = 'stopping', heartbeat = ?2 WHERE name = ?1", &s, e));
	KH_ENSURE(BIND_T(s, 1, name) && BIND_I(s, 2, now), sc_bind_err(st, e, "binding a node"));
	KH_TRY(store_step_done(st, s, "marking the node stopping", e));
	KH_TRY(store_prepare(st, "DELETE FROM cluster_leases WHERE holder = ?1", &l, e));
	KH_ENSURE(BIND_T(l, 1, name), sc_bind_err(st, e, "binding a node"));
	KH_TRY(store_step_done(st, l, "giving up the node's leases", e));
	r = store_commit(st, e);
out:
	if (r != KH_OK)
		store_rollback(st);
	sqlite3_finalize(s);
	sqlite3_finalize(l);
	return r;
}

enum kh_err store_nodes_list(struct store *st, struct store_node **out, size_t *n, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	struct store_node *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int r = KH_OK, rc;

	KH_TRY(store_prepare(st, "SELECT name, started, heartbeat, version, state FROM cluster_nodes ORDER BY name",
			     &s, e));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? 2 * cap : 8;
			KH_ENSURE(cap <= 4096, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many nodes"));
			nv = realloc(v, cap * sizeof(*v));
			KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
			v = nv;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].name, sizeof(v[cnt].name));
		v[cnt].started = sqlite3_column_int64(s, 1);
		v[cnt].heartbeat = sqlite3_column_int64(s, 2);
		store_col_text(s, 3, v[cnt].version, sizeof(v[cnt].version));
		store_col_text(s, 4, v[cnt].state, sizeof(v[cnt].state));
		cnt++;
	}
	KH_ENSURE(rc == SQLITE_DONE, store_sql_err(st, e, rc, "listing the nodes"));
	*out = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_finalize(s);
	free(v);
	return r;
}

/* ---- leases ---- */

enum kh_err store_lease_take(struct store *st, const char *role, const char *holder, int64_t now, int64_t ttl,
			     bool *held, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
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
	KH_ENSURE(BIND_T(s, 1, role) && BIND_T(s, 2, holder) && BIND_I(s, 3, now) && BIND_I(s, 4, now + ttl),
		  sc_bind_err(st, e, "binding a lease"));
	KH_TRY(store_step_done(st, s, "taking a lease", e));
	*held = sqlite3_changes(st->db) == 1;
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_lease_renew_all(struct store *st, const char *holder, int64_t now, int64_t ttl,
				  struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "UPDATE cluster_leases SET expires = ?3 WHERE holder = ?1 AND expires > ?2", &s, e));
	KH_ENSURE(BIND_T(s, 1, holder) && BIND_I(s, 2, now) && BIND_I(s, 3, now + ttl),
		  sc_bind_err(st, e, "binding a lease"));
	KH_TRY(store_step_done(st, s, "renewing the leases", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_leases_list(struct store *st, struct store_lease **out, size_t *n, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	struct store_lease *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int r = KH_OK, rc;

	KH_TRY(store_prepare(st, "SELECT role, holder, acquired, expires FROM cluster_leases ORDER BY role", &s, e));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
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
		v[cnt].acquired = sqlite3_column_int64(s, 2);
		v[cnt].expires = sqlite3_column_int64(s, 3);
		cnt++;
	}
	KH_ENSURE(rc == SQLITE_DONE, store_sql_err(st, e, rc, "listing the leases"));
	*out = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_finalize(s);
	free(v);
	return r;
}

/* ---- claims ---- */

enum kh_err store_claim(struct store *st, const char *what, const char *version, const char *node, int64_t now,
			int64_t stale_before, bool *claimed, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO cluster_claims (what, version, node, claimed) VALUES (?1, ?2, ?3, ?4) "
			     "ON CONFLICT (what, version) DO UPDATE SET node = excluded.node, claimed = excluded.claimed "
			     "WHERE cluster_claims.node = excluded.node OR NOT EXISTS (SELECT 1 FROM cluster_nodes n "
			     "WHERE n.name = cluster_claims.node AND n.state = 'up' AND n.heartbeat > ?5)",
			     &s, e));
	KH_ENSURE(BIND_T(s, 1, what) && BIND_T(s, 2, version) && BIND_T(s, 3, node) && BIND_I(s, 4, now) &&
			  BIND_I(s, 5, stale_before),
		  sc_bind_err(st, e, "binding a claim"));
	KH_TRY(store_step_done(st, s, "claiming scheduled work", e));
	*claimed = sqlite3_changes(st->db) == 1;
out:
	sqlite3_finalize(s);
	return r;
}

/* ---- generations ---- */

enum kh_err store_gen_get(struct store *st, const char *name, int64_t *gen, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	KH_TRY(store_prepare(st, "SELECT gen FROM cluster_generations WHERE name = ?1", &s, e));
	KH_ENSURE(BIND_T(s, 1, name), sc_bind_err(st, e, "binding a generation"));
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading a generation"));
	*gen = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_gen_bump(struct store *st, const char *name, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO cluster_generations (name, gen) VALUES (?1, 1) "
			     "ON CONFLICT (name) DO UPDATE SET gen = cluster_generations.gen + 1",
			     &s, e));
	KH_ENSURE(BIND_T(s, 1, name), sc_bind_err(st, e, "binding a generation"));
	KH_TRY(store_step_done(st, s, "bumping a generation", e));
out:
	sqlite3_finalize(s);
	return r;
}

/* ---- audit checkpoints ---- */

enum kh_err store_ckpt_put(struct store *st, const struct store_ckpt *c, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO audit_checkpoints (node, seq, prev_seq, chain, signed, sig, recorded) "
			     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (node, seq) DO UPDATE SET "
			     "prev_seq = excluded.prev_seq, chain = excluded.chain, signed = excluded.signed, "
			     "sig = excluded.sig, recorded = excluded.recorded",
			     &s, e));
	KH_ENSURE(BIND_T(s, 1, c->node) && BIND_I(s, 2, c->seq) && BIND_I(s, 3, c->prev_seq) &&
			  BIND_T(s, 4, c->chain) && BIND_T(s, 5, c->signed_text) && BIND_T(s, 6, c->sig) &&
			  BIND_I(s, 7, c->recorded),
		  sc_bind_err(st, e, "binding a checkpoint"));
	KH_TRY(store_step_done(st, s, "recording an audit checkpoint", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_ckpt_last(struct store *st, const char *node, uint64_t *seq, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	KH_TRY(store_prepare(st, "SELECT MAX(seq) FROM audit_checkpoints WHERE node = ?1", &s, e));
	KH_ENSURE(BIND_T(s, 1, node), sc_bind_err(st, e, "binding a node"));
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW, store_sql_err(st, e, rc, "reading the last checkpoint"));
	*seq = (uint64_t)sqlite3_column_int64(s, 0); /* NULL reads as 0 */
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_ckpts_list(struct store *st, struct store_ckpt **out, size_t *n, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	struct store_ckpt *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int r = KH_OK, rc;

	KH_TRY(store_prepare(st,
			     "SELECT node, seq, prev_seq, chain, signed, sig, recorded FROM audit_checkpoints "
			     "ORDER BY node, seq",
			     &s, e));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? 2 * cap : 64;
			KH_ENSURE(cap <= (1u << 20), kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many checkpoints"));
			nv = realloc(v, cap * sizeof(*v));
			KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
			v = nv;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].node, sizeof(v[cnt].node));
		v[cnt].seq = (uint64_t)sqlite3_column_int64(s, 1);
		v[cnt].prev_seq = (uint64_t)sqlite3_column_int64(s, 2);
		store_col_text(s, 3, v[cnt].chain, sizeof(v[cnt].chain));
		store_col_text(s, 4, v[cnt].signed_text, sizeof(v[cnt].signed_text));
		store_col_text(s, 5, v[cnt].sig, sizeof(v[cnt].sig));
		v[cnt].recorded = sqlite3_column_int64(s, 6);
		cnt++;
	}
	KH_ENSURE(rc == SQLITE_DONE, store_sql_err(st, e, rc, "listing the audit checkpoints"));
	*out = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_finalize(s);
	free(v);
	return r;
}
