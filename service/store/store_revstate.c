/* store_revstate.c: the tables of revocation over time (schema 8): a trust
 * store's CRL URL, the last fetch of every CRL source, the CRL cache's
 * listing, and the last revocation state of every certificate and CRL the
 * revocation scheduler (revocation/rev_sched.c) looked at. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kh_util.h"
#include "store_int.h"

enum kh_err store_ts_crl_url_get(struct store *st, const char *store_name, char *out, size_t outsz,
				 struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	out[0] = '\0';
	KH_TRY(store_prepare(st, "SELECT url FROM truststore_crl_url WHERE store = ?", &s, e));
	store_bind_text(s, 1, store_name);
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading a trust store's CRL URL"));
	if (rc == SQLITE_ROW)
		store_col_text(s, 0, out, outsz);
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_ts_crl_url_put(struct store *st, const char *store_name, const char *url, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	if (url[0] == '\0') {
		KH_TRY(store_prepare(st, "DELETE FROM truststore_crl_url WHERE store = ?", &s, e));
	} else {
		KH_TRY(store_prepare(st, "INSERT OR REPLACE INTO truststore_crl_url (store, url) VALUES (?, ?)", &s, e));
		store_bind_text(s, 2, url);
	}
	store_bind_text(s, 1, store_name);
	KH_TRY(store_step_done(st, s, "storing a trust store's CRL URL", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_ts_ocsp_signer_get(struct store *st, const char *store_name, struct kh_bytes *out,
				     struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	out->data = NULL;
	out->len = 0;
	KH_TRY(store_prepare(st, "SELECT der FROM truststore_ocsp_signer WHERE store = ?", &s, e));
	store_bind_text(s, 1, store_name);
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE,
		  store_sql_err(st, e, rc, "reading a trust store's OCSP responder certificate"));
	if (rc == SQLITE_ROW)
		KH_TRY(store_col_blob(s, 0, out));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_ts_ocsp_signer_put(struct store *st, const char *store_name, const struct kh_bytes *der,
				     struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	if (der->len == 0) {
		KH_TRY(store_prepare(st, "DELETE FROM truststore_ocsp_signer WHERE store = ?", &s, e));
	} else {
		KH_TRY(store_prepare(st, "INSERT OR REPLACE INTO truststore_ocsp_signer (store, der) VALUES (?, ?)", &s,
				     e));
		store_bind_blob(s, 2, der);
	}
	store_bind_text(s, 1, store_name);
	KH_TRY(store_step_done(st, s, "storing a trust store's OCSP responder certificate", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_crl_cache_list(struct store *st, struct store_crl_cache_row **out, size_t *n, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	struct store_crl_cache_row *v = NULL;
	size_t cnt = 0;
	int r = KH_OK, rc;

	KH_TRY(store_prepare(st, "SELECT url, issuer, this_update, next_update, fetched FROM crl_cache ORDER BY url", &s,
			     e));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_crl_cache_row *nv = realloc(v, (cnt + 1) * sizeof(*v));

		KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
		v = nv;
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].url, sizeof(v[cnt].url));
		store_col_text(s, 1, v[cnt].issuer, sizeof(v[cnt].issuer));
		v[cnt].this_update = sqlite3_column_int64(s, 2);
		v[cnt].next_update = sqlite3_column_int64(s, 3);
		v[cnt].fetched = sqlite3_column_int64(s, 4);
		cnt++;
	}
	KH_ENSURE(rc == SQLITE_DONE, store_sql_err(st, e, rc, "listing the CRL cache"));
	*out = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_crl_fetch_get(struct store *st, const char *url, struct store_crl_fetch *out, bool *found,
				struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	*found = false;
	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st, "SELECT fetched, ok, result FROM crl_fetch WHERE url = ?", &s, e));
	store_bind_text(s, 1, url);
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading a CRL fetch result"));
	if (rc == SQLITE_ROW) {
		out->fetched = sqlite3_column_int64(s, 0);
		out->ok = sqlite3_column_int(s, 1) != 0;
		store_col_text(s, 2, out->result, sizeof(out->result));
		*found = true;
	}
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_crl_fetch_put(struct store *st, const char *url, const struct store_crl_fetch *f,
				struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "INSERT OR REPLACE INTO crl_fetch (url, fetched, ok, result) VALUES (?, ?, ?, ?)", &s,
			     e));
	store_bind_text(s, 1, url);
	sqlite3_bind_int64(s, 2, f->fetched);
	sqlite3_bind_int(s, 3, f->ok);
	store_bind_text(s, 4, f->result);
	KH_TRY(store_step_done(st, s, "storing a CRL fetch result", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_revstate_list(struct store *st, struct store_revstate **out, size_t *n, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	struct store_revstate *v = NULL;
	size_t cnt = 0;
	int r = KH_OK, rc;

	KH_TRY(store_prepare(st,
			     "SELECT id, status, subject, held_by, detail, checked, changed FROM revocation_state ORDER BY id",
			     &s, e));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_revstate *nv = realloc(v, (cnt + 1) * sizeof(*v));

		KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
		v = nv;
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].id, sizeof(v[cnt].id));
		store_col_text(s, 1, v[cnt].status, sizeof(v[cnt].status));
		store_col_text(s, 2, v[cnt].subject, sizeof(v[cnt].subject));
		store_col_text(s, 3, v[cnt].held_by, sizeof(v[cnt].held_by));
		store_col_text(s, 4, v[cnt].detail, sizeof(v[cnt].detail));
		v[cnt].checked = sqlite3_column_int64(s, 5);
		v[cnt].changed = sqlite3_column_int64(s, 6);
		cnt++;
	}
	KH_ENSURE(rc == SQLITE_DONE, store_sql_err(st, e, rc, "listing revocation states"));
	*out = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_revstate_put(struct store *st, const struct store_revstate *v, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT OR REPLACE INTO revocation_state (id, status, subject, held_by, detail, checked, changed) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?)",
			     &s, e));
	store_bind_text(s, 1, v->id);
	store_bind_text(s, 2, v->status);
	store_bind_text(s, 3, v->subject);
	store_bind_text(s, 4, v->held_by);
	store_bind_text(s, 5, v->detail);
	sqlite3_bind_int64(s, 6, v->checked);
	sqlite3_bind_int64(s, 7, v->changed);
	KH_TRY(store_step_done(st, s, "storing a revocation state", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_revstate_remove(struct store *st, const char *id, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM revocation_state WHERE id = ?", &s, e));
	store_bind_text(s, 1, id);
	KH_TRY(store_step_done(st, s, "removing a revocation state", e));
out:
	sqlite3_finalize(s);
	return r;
}
