/* store_grants.c: the runtime key grants (keyhold policy grant/revoke,
 * schema 10), shared by every node of a cluster; service/access/grants.c
 * caches them and bumps the "grants" generation with every change. */
#include <stdlib.h>
#include <string.h>

#include "kh_util.h"
#include "store_int.h"

#define SG_MAX 65536

enum kh_err store_grants_list(struct store *st, struct store_grant **out, size_t *n, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	struct store_grant *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int r = KH_OK, rc;

	KH_TRY(store_prepare(st,
			     "SELECT key_name, principal, display, digests, paddings, created FROM key_grants "
			     "ORDER BY key_name, principal",
			     &s, e));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? 2 * cap : 16;
			KH_ENSURE(cap <= SG_MAX, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many grants"));
			nv = realloc(v, cap * sizeof(*v));
			KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
			v = nv;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].key, sizeof(v[cnt].key));
		store_col_text(s, 1, v[cnt].principal, sizeof(v[cnt].principal));
		store_col_text(s, 2, v[cnt].display, sizeof(v[cnt].display));
		v[cnt].digests = (unsigned)sqlite3_column_int64(s, 3);
		v[cnt].paddings = (unsigned)sqlite3_column_int64(s, 4);
		v[cnt].created = sqlite3_column_int64(s, 5);
		cnt++;
	}
	KH_ENSURE(rc == SQLITE_DONE, store_sql_err(st, e, rc, "listing the key grants"));
	*out = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_finalize(s);
	free(v);
	return r;
}

enum kh_err store_grant_put(struct store *st, const struct store_grant *g, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO key_grants (key_name, principal, display, digests, paddings, created) "
			     "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key_name, principal) DO UPDATE SET "
			     "display = excluded.display, digests = excluded.digests, paddings = excluded.paddings",
			     &s, e));
	KH_ENSURE(store_bind_text(s, 1, g->key) == SQLITE_OK && store_bind_text(s, 2, g->principal) == SQLITE_OK &&
			  store_bind_text(s, 3, g->display) == SQLITE_OK &&
			  sqlite3_bind_int64(s, 4, (sqlite3_int64)g->digests) == SQLITE_OK &&
			  sqlite3_bind_int64(s, 5, (sqlite3_int64)g->paddings) == SQLITE_OK &&
			  sqlite3_bind_int64(s, 6, (sqlite3_int64)g->created) == SQLITE_OK,
		  store_sql_err(st, e, SQLITE_ERROR, "binding a grant"));
	KH_TRY(store_step_done(st, s, "writing a key grant", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_grant_delete(struct store *st, const char *key, const char *principal, bool *found,
			       struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM key_grants WHERE key_name = ?1 AND principal = ?2", &s, e));
	KH_ENSURE(store_bind_text(s, 1, key) == SQLITE_OK && store_bind_text(s, 2, principal) == SQLITE_OK,
		  store_sql_err(st, e, SQLITE_ERROR, "binding a grant"));
	KH_TRY(store_step_done(st, s, "removing a key grant", e));
	*found = sqlite3_changes(st->db) > 0;
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_grants_delete_key(struct store *st, const char *key, size_t *n, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM key_grants WHERE key_name = ?1", &s, e));
	KH_ENSURE(store_bind_text(s, 1, key) == SQLITE_OK, store_sql_err(st, e, SQLITE_ERROR, "binding a key"));
	KH_TRY(store_step_done(st, s, "removing a key's grants", e));
	*n = (size_t)sqlite3_changes(st->db);
out:
	sqlite3_finalize(s);
	return r;
}
