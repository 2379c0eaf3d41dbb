/* store_ts.c: trust stores (named sets of CA certificates) and the CRLs
 * kept with them. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kh_util.h"
#include "store_int.h"

enum kh_err store_ts_names(struct store *st, char (**names)[KH_NAME_MAX + 1], size_t *n, struct kh_errbuf *e)
{
	return store_names_query(st, "SELECT name FROM truststores ORDER BY name", names, n, e);
}

enum kh_err store_ts_exists(struct store *st, const char *name, bool *exists, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT 1 FROM truststores WHERE name = ?", &s, e));
	store_bind_text(s, 1, name);
	KH_TRY(store_step(s, &row, "looking up a trust store", e));
	*exists = row;
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ts_create(struct store *st, const char *name, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "INSERT INTO truststores (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", &s,
			     e));
	store_bind_text(s, 1, name);
	store_bind_int64(s, 2, (int64_t)time(NULL));
	KH_TRY(store_step_done(s, "creating a trust store", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ts_delete(struct store *st, const char *name, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM truststores WHERE name = ?", &s, e));
	store_bind_text(s, 1, name);
	KH_TRY(store_step_done(s, "deleting a trust store", e));
out:
	store_finalize(s);
	return r;
}

void store_ts_certs_free(struct store_ts_cert *c, size_t n)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < n; i++)
		kh_bytes_clear(&c[i].der);
	free(c);
}

enum kh_err store_ts_certs(struct store *st, const char *name, struct store_ts_cert **out, size_t *n,
			   struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	struct store_ts_cert *v = NULL;
	size_t cnt = 0, cap = 0;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st,
			     "SELECT fingerprint, subject, cn, self_signed, not_after, der, added FROM truststore_certs "
			     "WHERE store = ? ORDER BY added, rowid",
			     &s, e));
	store_bind_text(s, 1, name);
	for (;;) {
		KH_TRY(store_step(s, &row, "reading a trust store", e));
		if (!row)
			break;
		if (cnt == cap) {
			/* Doubling: a trustpool of thousands loads in linear time. */
			size_t ncap = cap == 0 ? 16 : 2 * cap;
			struct store_ts_cert *nv = realloc(v, ncap * sizeof(*v));

			KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
			v = nv;
			cap = ncap;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].fingerprint, sizeof(v[cnt].fingerprint));
		store_col_text(s, 1, v[cnt].subject, sizeof(v[cnt].subject));
		store_col_text(s, 2, v[cnt].cn, sizeof(v[cnt].cn));
		v[cnt].self_signed = store_col_int(s, 3) != 0;
		v[cnt].not_after = store_col_int64(s, 4);
		v[cnt].added = store_col_int64(s, 6);
		cnt++;
		KH_TRY(store_col_blob(s, 5, &v[cnt - 1].der));
	}
	*out = v;
	*n = cnt;
	v = NULL;
	cnt = 0;
out:
	store_ts_certs_free(v, cnt);
	store_finalize(s);
	return r;
}

enum kh_err store_ts_cert_add(struct store *st, const char *name, const struct store_ts_cert *c, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO truststore_certs (store, fingerprint, subject, cn, self_signed, not_after, der, added) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			     &s, e));
	store_bind_text(s, 1, name);
	store_bind_text(s, 2, c->fingerprint);
	store_bind_text(s, 3, c->subject);
	store_bind_text(s, 4, c->cn);
	store_bind_int64(s, 5, c->self_signed ? 1 : 0);
	store_bind_int64(s, 6, c->not_after);
	store_bind_bytes(s, 7, &c->der);
	store_bind_int64(s, 8, c->added);
	KH_TRY(store_step_done(s, "adding a certificate to a trust store", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ts_cert_remove(struct store *st, const char *name, const char *fingerprint, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM truststore_certs WHERE store = ? AND fingerprint = ?", &s, e));
	store_bind_text(s, 1, name);
	store_bind_text(s, 2, fingerprint);
	KH_TRY(store_step_done(s, "removing a certificate from a trust store", e));
	KH_ENSURE(store_changes(st) == 1,
		  kh_err_set(e, KH_E_NOT_FOUND, "trust store '%s' holds no certificate with fingerprint %s", name,
			     fingerprint));
out:
	store_finalize(s);
	return r;
}

/* ---- CRLs ---- */

void store_crls_free(struct store_crl *c, size_t n)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < n; i++)
		kh_bytes_clear(&c[i].der);
	free(c);
}

enum kh_err store_crl_put(struct store *st, const char *store_name, const struct store_crl *c, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO crls (store, issuer_key, issuer, fingerprint, this_update, next_update, der, source, imported) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store, issuer_key) DO UPDATE SET "
			     "issuer = excluded.issuer, fingerprint = excluded.fingerprint, "
			     "this_update = excluded.this_update, next_update = excluded.next_update, "
			     "der = excluded.der, source = excluded.source, imported = excluded.imported",
			     &s, e));
	store_bind_text(s, 1, store_name);
	store_bind_text(s, 2, c->issuer_key);
	store_bind_text(s, 3, c->issuer);
	store_bind_text(s, 4, c->fingerprint);
	store_bind_int64(s, 5, c->this_update);
	store_bind_int64(s, 6, c->next_update);
	store_bind_bytes(s, 7, &c->der);
	store_bind_text(s, 8, c->source[0] != '\0' ? c->source : "import");
	store_bind_int64(s, 9, c->imported);
	KH_TRY(store_step_done(s, "storing a CRL", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_crl_remove(struct store *st, const char *store_name, const char *issuer_key, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM crls WHERE store = ? AND issuer_key = ?", &s, e));
	store_bind_text(s, 1, store_name);
	store_bind_text(s, 2, issuer_key);
	KH_TRY(store_step_done(s, "removing a CRL", e));
	KH_ENSURE(store_changes(st) == 1,
		  kh_err_set(e, KH_E_NOT_FOUND, "trust store '%s' holds no such CRL", store_name));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_crl_list(struct store *st, const char *store_name, struct store_crl **out, size_t *n,
			   struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	struct store_crl *v = NULL;
	size_t cnt = 0;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st,
			     "SELECT issuer_key, issuer, fingerprint, this_update, next_update, der, source, imported "
			     "FROM crls WHERE store = ? ORDER BY issuer",
			     &s, e));
	store_bind_text(s, 1, store_name);
	for (;;) {
		KH_TRY(store_step(s, &row, "reading CRLs", e));
		if (!row)
			break;
		struct store_crl *nv = realloc(v, (cnt + 1) * sizeof(*v));

		KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
		v = nv;
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].issuer_key, sizeof(v[cnt].issuer_key));
		store_col_text(s, 1, v[cnt].issuer, sizeof(v[cnt].issuer));
		store_col_text(s, 2, v[cnt].fingerprint, sizeof(v[cnt].fingerprint));
		v[cnt].this_update = store_col_int64(s, 3);
		v[cnt].next_update = store_col_int64(s, 4);
		store_col_text(s, 6, v[cnt].source, sizeof(v[cnt].source));
		v[cnt].imported = store_col_int64(s, 7);
		cnt++;
		KH_TRY(store_col_blob(s, 5, &v[cnt - 1].der));
	}
	*out = v;
	*n = cnt;
	v = NULL;
	cnt = 0;
out:
	store_crls_free(v, cnt);
	store_finalize(s);
	return r;
}
