/* store_acme.c: a trustpoint's ACME settings and account (the
 * trustpoint_acme table, deleted with its trustpoint). */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "kh_util.h"
#include "store_int.h"

void store_tp_acme_clear(struct store_tp_acme *a)
{
	free(a->ca_pem);
	explicit_bzero(a->eab_key, sizeof(a->eab_key));
	memset(a, 0, sizeof(*a));
}

enum kh_err store_tp_acme_get(struct store *st, const char *tp, struct store_tp_acme *out, struct kh_errbuf *e)
{
	struct store_tp_acme a;
	sqlite3_stmt *s = NULL;
	const unsigned char *pem;
	int r = KH_OK, rc, n;

	memset(&a, 0, sizeof(a));
	KH_TRY(store_prepare(st,
			     "SELECT directory, contact, ca_pem, account_key, kid, renew_failures, renew_error, renew_next, "
			     "webroot, eab_kid, eab_key, account_key_next FROM trustpoint_acme WHERE trustpoint = ?",
			     &s, e));
	store_bind_text(s, 1, tp);
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading a trustpoint's ACME settings"));
	KH_ENSURE(rc == SQLITE_ROW,
		  kh_err_set(e, KH_E_NOT_FOUND, "trustpoint '%s' has no ACME settings", tp));
	store_col_text(s, 0, a.directory, sizeof(a.directory));
	store_col_text(s, 1, a.contact, sizeof(a.contact));
	pem = sqlite3_column_text(s, 2);
	n = sqlite3_column_bytes(s, 2);
	if (pem != NULL && n > 0) {
		KH_ENSURE(n <= STORE_ACME_CA_MAX, kh_err_set(e, KH_E_DATA_LOSS, "a stored ACME CA bundle is too large"));
		a.ca_pem = strndup((const char *)pem, (size_t)n);
		KH_ENSURE(a.ca_pem != NULL, KH_E_RESOURCE_EXHAUSTED);
	}
	store_col_text(s, 3, a.account_key, sizeof(a.account_key));
	store_col_text(s, 4, a.kid, sizeof(a.kid));
	a.renew_failures = (uint32_t)sqlite3_column_int64(s, 5);
	store_col_text(s, 6, a.renew_error, sizeof(a.renew_error));
	a.renew_next = sqlite3_column_int64(s, 7);
	store_col_text(s, 8, a.webroot, sizeof(a.webroot));
	store_col_text(s, 9, a.eab_kid, sizeof(a.eab_kid));
	n = sqlite3_column_bytes(s, 10);
	KH_ENSURE(n >= 0 && (size_t)n <= sizeof(a.eab_key),
		  kh_err_set(e, KH_E_DATA_LOSS, "a stored ACME external account binding key is too large"));
	if (n > 0)
		memcpy(a.eab_key, sqlite3_column_blob(s, 10), (size_t)n);
	a.eab_key_len = (size_t)n;
	store_col_text(s, 11, a.account_key_next, sizeof(a.account_key_next));
	*out = a;
	memset(&a, 0, sizeof(a));
out:
	store_tp_acme_clear(&a);
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_tp_acme_put(struct store *st, const char *tp, const struct store_tp_acme *a, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT OR REPLACE INTO trustpoint_acme (trustpoint, directory, contact, ca_pem, account_key, "
			     "kid, renew_failures, renew_error, renew_next, webroot, eab_kid, eab_key, account_key_next) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			     &s, e));
	store_bind_text(s, 1, tp);
	store_bind_text(s, 2, a->directory);
	store_bind_text(s, 3, a->contact);
	store_bind_text(s, 4, a->ca_pem != NULL ? a->ca_pem : "");
	store_bind_text(s, 5, a->account_key);
	store_bind_text(s, 6, a->kid);
	sqlite3_bind_int64(s, 7, a->renew_failures);
	store_bind_text(s, 8, a->renew_error);
	sqlite3_bind_int64(s, 9, a->renew_next);
	store_bind_text(s, 10, a->webroot);
	store_bind_text(s, 11, a->eab_kid);
	if (a->eab_key_len > 0)
		sqlite3_bind_blob(s, 12, a->eab_key, (int)a->eab_key_len, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 12);
	store_bind_text(s, 13, a->account_key_next);
	KH_TRY(store_step_done(st, s, "storing a trustpoint's ACME settings", e));
out:
	sqlite3_finalize(s);
	return r;
}
