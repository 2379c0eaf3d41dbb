/* store_db.c: the driver interface's calls (store_db.h), dispatched to the
 * driver the store was opened with, and the helpers built on them. */
#include <stdlib.h>
#include <string.h>

#include "kh_util.h"
#include "store_int.h"

enum kh_err store_prepare(struct store *st, const char *sql, struct store_stmt **out, struct kh_errbuf *e)
{
	return st->drv->prepare(st, sql, out, e);
}

void store_finalize(struct store_stmt *s)
{
	if (s != NULL)
		s->st->drv->finalize(s);
}

void store_reset(struct store_stmt *s)
{
	s->st->drv->reset(s);
}

void store_bind_int64(struct store_stmt *s, int i, int64_t v)
{
	s->st->drv->bind_int64(s, i, v);
}

void store_bind_text(struct store_stmt *s, int i, const char *v)
{
	if (v == NULL)
		s->st->drv->bind_null(s, i);
	else
		s->st->drv->bind_text(s, i, v);
}

void store_bind_blob(struct store_stmt *s, int i, const void *p, size_t n)
{
	if (p == NULL || n == 0)
		s->st->drv->bind_null(s, i);
	else
		s->st->drv->bind_blob(s, i, p, n);
}

void store_bind_bytes(struct store_stmt *s, int i, const struct kh_bytes *b)
{
	if (b == NULL)
		s->st->drv->bind_null(s, i);
	else
		store_bind_blob(s, i, b->data, b->len);
}

void store_bind_null(struct store_stmt *s, int i)
{
	s->st->drv->bind_null(s, i);
}

enum kh_err store_step(struct store_stmt *s, bool *row, const char *what, struct kh_errbuf *e)
{
	return s->st->drv->step(s, row, what, e);
}

enum kh_err store_step_done(struct store_stmt *s, const char *what, struct kh_errbuf *e)
{
	bool row = false;
	int r = KH_OK;

	KH_TRY(store_step(s, &row, what, e));
	KH_ENSURE(!row, kh_err_set(e, KH_E_INTERNAL, "state database: %s returned rows", what));
out:
	return r;
}

int64_t store_col_int64(struct store_stmt *s, int i)
{
	return s->st->drv->col_int64(s, i);
}

int store_col_int(struct store_stmt *s, int i)
{
	return (int)s->st->drv->col_int64(s, i);
}

bool store_col_is_null(struct store_stmt *s, int i)
{
	return s->st->drv->col_is_null(s, i);
}

const void *store_col_data(struct store_stmt *s, int i, size_t *n)
{
	const void *p = s->st->drv->col_data(s, i, n);

	if (p == NULL)
		*n = 0;
	return p;
}

void store_col_text(struct store_stmt *s, int i, char *out, size_t outsz)
{
	size_t n = 0;
	const char *t = store_col_data(s, i, &n);

	if (outsz == 0)
		return;
	if (n > outsz - 1)
		n = outsz - 1;
	if (t != NULL && n > 0)
		memcpy(out, t, n);
	out[n] = '\0';
}

enum kh_err store_col_blob(struct store_stmt *s, int i, struct kh_bytes *out)
{
	size_t n = 0;
	const void *p = store_col_data(s, i, &n);

	out->data = NULL;
	out->len = 0;
	if (p == NULL || n == 0)
		return KH_OK;
	out->data = malloc(n);
	if (out->data == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	memcpy(out->data, p, n);
	out->len = n;
	return KH_OK;
}

int64_t store_changes(struct store *st)
{
	return st->drv->changes(st);
}

enum kh_err store_exec(struct store *st, const char *sql, struct kh_errbuf *e)
{
	return st->drv->exec(st, sql, e);
}

enum kh_err store_names_query(struct store *st, const char *sql, char (**names)[KH_NAME_MAX + 1], size_t *n,
			      struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	char(*v)[KH_NAME_MAX + 1] = NULL;
	size_t cnt = 0;
	bool row = false;
	int r = KH_OK;

	KH_TRY(store_prepare(st, sql, &s, e));
	for (;;) {
		char(*nv)[KH_NAME_MAX + 1] = NULL;

		KH_TRY(store_step(s, &row, "listing names", e));
		if (!row)
			break;
		nv = realloc(v, (cnt + 1) * sizeof(*v));
		KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
		v = nv;
		store_col_text(s, 0, v[cnt], sizeof(v[cnt]));
		cnt++;
	}
	*names = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	store_finalize(s);
	return r;
}
