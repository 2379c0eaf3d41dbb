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
	struct store_stmt *s = NULL;
	struct store_grant *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st,
			     "SELECT key_name, principal, display, digests, paddings, created FROM key_grants "
			     "ORDER BY key_name, principal",
			     &s, e));
	for (;;) {
		KH_TRY(store_step(s, &row, "listing the key grants", e));
		if (!row)
			break;
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
		v[cnt].digests = (unsigned)store_col_int64(s, 3);
		v[cnt].paddings = (unsigned)store_col_int64(s, 4);
		v[cnt].created = store_col_int64(s, 5);
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

enum kh_err store_grant_put(struct store *st, const struct store_grant *g, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO key_grants (key_name, principal, display, digests, paddings, created) "
			     "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key_name, principal) DO UPDATE SET "
			     "display = excluded.display, digests = excluded.digests, paddings = excluded.paddings",
			     &s, e));
	store_bind_text(s, 1, g->key);
	store_bind_text(s, 2, g->principal);
	store_bind_text(s, 3, g->display);
	store_bind_int64(s, 4, (int64_t)g->digests);
	store_bind_int64(s, 5, (int64_t)g->paddings);
	store_bind_int64(s, 6, (int64_t)g->created);
	KH_TRY(store_step_done(s, "writing a key grant", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_grant_delete(struct store *st, const char *key, const char *principal, bool *found,
			       struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM key_grants WHERE key_name = ?1 AND principal = ?2", &s, e));
	store_bind_text(s, 1, key);
	store_bind_text(s, 2, principal);
	KH_TRY(store_step_done(s, "removing a key grant", e));
	*found = store_changes(st) > 0;
out:
	store_finalize(s);
	return r;
}

enum kh_err store_grants_delete_key(struct store *st, const char *key, size_t *n, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM key_grants WHERE key_name = ?1", &s, e));
	store_bind_text(s, 1, key);
	KH_TRY(store_step_done(s, "removing a key's grants", e));
	*n = (size_t)store_changes(st);
out:
	store_finalize(s);
	return r;
}
