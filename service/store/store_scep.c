/* store_scep.c: the SCEP side of an enrollment url trustpoint (schema 5):
 * server URL, challenge password (until a certificate is issued), RA
 * certificate and the outcome of the last enrollment. */
#include <stdlib.h>
#include <string.h>

#include "kh_util.h"
#include "store_int.h"

void store_scep_clear(struct store_scep *p)
{
	if (p == NULL)
		return;
	kh_bytes_clear(&p->ra);
	explicit_bzero(p, sizeof(*p)); /* the challenge password */
}

bool store_scep_exists(struct store *st, const char *name)
{
	sqlite3_stmt *s = NULL;
	struct kh_errbuf ign = { 0 };
	bool found = false;

	if (store_prepare(st, "SELECT 1 FROM tp_scep WHERE name = ?", &s, &ign) != KH_OK)
		return false;
	store_bind_text(s, 1, name);
	found = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return found;
}

enum kh_err store_scep_get(struct store *st, const char *name, struct store_scep *out, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st, "SELECT url, challenge, ra, status FROM tp_scep WHERE name = ?", &s, e));
	store_bind_text(s, 1, name);
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading a SCEP trustpoint"));
	KH_ENSURE(rc == SQLITE_ROW, kh_err_set(e, KH_E_NOT_FOUND, "trustpoint '%s' has no SCEP settings", name));
	store_col_text(s, 0, out->url, sizeof(out->url));
	store_col_text(s, 1, out->challenge, sizeof(out->challenge));
	KH_TRY(store_col_blob(s, 2, &out->ra));
	store_col_text(s, 3, out->status, sizeof(out->status));
out:
	sqlite3_finalize(s);
	if (r != KH_OK)
		store_scep_clear(out);
	return r;
}

enum kh_err store_scep_put(struct store *st, const char *name, const struct store_scep *p, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "INSERT OR REPLACE INTO tp_scep (name, url, challenge, ra, status) VALUES (?, ?, ?, ?, ?)",
			     &s, e));
	store_bind_text(s, 1, name);
	store_bind_text(s, 2, p->url);
	store_bind_text(s, 3, p->challenge);
	store_bind_blob(s, 4, &p->ra);
	store_bind_text(s, 5, p->status);
	KH_TRY(store_step_done(st, s, "storing a SCEP trustpoint", e));
out:
	sqlite3_finalize(s);
	return r;
}
