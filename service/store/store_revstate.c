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
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	out[0] = '\0';
	KH_TRY(store_prepare(st, "SELECT url FROM truststore_crl_url WHERE store = ?", &s, e));
	store_bind_text(s, 1, store_name);
	KH_TRY(store_step(s, &row, "reading a trust store's CRL URL", e));
	if (row)
		store_col_text(s, 0, out, outsz);
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ts_crl_url_put(struct store *st, const char *store_name, const char *url, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	if (url[0] == '\0') {
		KH_TRY(store_prepare(st, "DELETE FROM truststore_crl_url WHERE store = ?", &s, e));
	} else {
		KH_TRY(store_prepare(st, "INSERT INTO truststore_crl_url (store, url) "
			     "VALUES (?, ?) ON CONFLICT (store) DO UPDATE SET "
			     "url = excluded.url", &s, e));
		store_bind_text(s, 2, url);
	}
	store_bind_text(s, 1, store_name);
	KH_TRY(store_step_done(s, "storing a trust store's CRL URL", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ts_ocsp_signer_get(struct store *st, const char *store_name, struct kh_bytes *out,
				     struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	out->data = NULL;
	out->len = 0;
	KH_TRY(store_prepare(st, "SELECT der FROM truststore_ocsp_signer WHERE store = ?", &s, e));
	store_bind_text(s, 1, store_name);
	KH_TRY(store_step(s, &row, "reading a trust store's OCSP responder certificate", e));
	if (row)
		KH_TRY(store_col_blob(s, 0, out));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ts_ocsp_signer_put(struct store *st, const char *store_name, const struct kh_bytes *der,
				     struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	if (der->len == 0) {
		KH_TRY(store_prepare(st, "DELETE FROM truststore_ocsp_signer WHERE store = ?", &s, e));
	} else {
		KH_TRY(store_prepare(st, "INSERT INTO truststore_ocsp_signer (store, der) "
			     "VALUES (?, ?) ON CONFLICT (store) DO UPDATE SET "
			     "der = excluded.der", &s,
				     e));
		store_bind_bytes(s, 2, der);
	}
	store_bind_text(s, 1, store_name);
	KH_TRY(store_step_done(s, "storing a trust store's OCSP responder certificate", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_crl_cache_list(struct store *st, struct store_crl_cache_row **out, size_t *n, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	struct store_crl_cache_row *v = NULL;
	size_t cnt = 0;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT url, issuer, this_update, next_update, fetched FROM crl_cache ORDER BY url", &s,
			     e));
	for (;;) {
		KH_TRY(store_step(s, &row, "listing the CRL cache", e));
		if (!row)
			break;
		struct store_crl_cache_row *nv = realloc(v, (cnt + 1) * sizeof(*v));

		KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
		v = nv;
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].url, sizeof(v[cnt].url));
		store_col_text(s, 1, v[cnt].issuer, sizeof(v[cnt].issuer));
		v[cnt].this_update = store_col_int64(s, 2);
		v[cnt].next_update = store_col_int64(s, 3);
		v[cnt].fetched = store_col_int64(s, 4);
		cnt++;
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	store_finalize(s);
	return r;
}

enum kh_err store_crl_fetch_get(struct store *st, const char *url, struct store_crl_fetch *out, bool *found,
				struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	*found = false;
	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st, "SELECT fetched, ok, result FROM crl_fetch WHERE url = ?", &s, e));
	store_bind_text(s, 1, url);
	KH_TRY(store_step(s, &row, "reading a CRL fetch result", e));
	if (row) {
		out->fetched = store_col_int64(s, 0);
		out->ok = store_col_int(s, 1) != 0;
		store_col_text(s, 2, out->result, sizeof(out->result));
		*found = true;
	}
out:
	store_finalize(s);
	return r;
}

enum kh_err store_crl_fetch_put(struct store *st, const char *url, const struct store_crl_fetch *f,
				struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "INSERT INTO crl_fetch (url, fetched, ok, result) "
			     "VALUES (?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET "
			     "fetched = excluded.fetched, ok = excluded.ok, result = excluded.result", &s,
			     e));
	store_bind_text(s, 1, url);
	store_bind_int64(s, 2, f->fetched);
	store_bind_int64(s, 3, f->ok);
	store_bind_text(s, 4, f->result);
	KH_TRY(store_step_done(s, "storing a CRL fetch result", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_revstate_list(struct store *st, struct store_revstate **out, size_t *n, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	struct store_revstate *v = NULL;
	size_t cnt = 0;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st,
			     "SELECT id, status, subject, held_by, detail, checked, changed FROM revocation_state ORDER BY id",
			     &s, e));
	for (;;) {
		KH_TRY(store_step(s, &row, "listing revocation states", e));
		if (!row)
			break;
		struct store_revstate *nv = realloc(v, (cnt + 1) * sizeof(*v));

		KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
		v = nv;
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].id, sizeof(v[cnt].id));
		store_col_text(s, 1, v[cnt].status, sizeof(v[cnt].status));
		store_col_text(s, 2, v[cnt].subject, sizeof(v[cnt].subject));
		store_col_text(s, 3, v[cnt].held_by, sizeof(v[cnt].held_by));
		store_col_text(s, 4, v[cnt].detail, sizeof(v[cnt].detail));
		v[cnt].checked = store_col_int64(s, 5);
		v[cnt].changed = store_col_int64(s, 6);
		cnt++;
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	store_finalize(s);
	return r;
}

enum kh_err store_revstate_put(struct store *st, const struct store_revstate *v, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO revocation_state (id, status, subject, held_by, detail, checked, changed) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
			     "status = excluded.status, subject = excluded.subject, held_by = excluded.held_by, "
			     "detail = excluded.detail, checked = excluded.checked, changed = excluded.changed",
			     &s, e));
	store_bind_text(s, 1, v->id);
	store_bind_text(s, 2, v->status);
	store_bind_text(s, 3, v->subject);
	store_bind_text(s, 4, v->held_by);
	store_bind_text(s, 5, v->detail);
	store_bind_int64(s, 6, v->checked);
	store_bind_int64(s, 7, v->changed);
	KH_TRY(store_step_done(s, "storing a revocation state", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_revstate_remove(struct store *st, const char *id, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM revocation_state WHERE id = ?", &s, e));
	store_bind_text(s, 1, id);
	KH_TRY(store_step_done(s, "removing a revocation state", e));
out:
	store_finalize(s);
	return r;
}
