/* store_acme.c: a trustpoint's ACME settings and account (the
 * trustpoint_acme table, deleted with its trustpoint). */
#include <stdlib.h>
#include <string.h>

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
	struct store_stmt *s = NULL;
	const char *pem = NULL;
	const void *eab = NULL;
	int r = KH_OK;
	bool row = false;
	size_t n = 0;

	memset(&a, 0, sizeof(a));
	KH_TRY(store_prepare(st,
			     "SELECT directory, contact, ca_pem, account_key, kid, renew_failures, renew_error, renew_next, "
			     "webroot, eab_kid, eab_key, account_key_next FROM trustpoint_acme WHERE trustpoint = ?",
			     &s, e));
	store_bind_text(s, 1, tp);
	KH_TRY(store_step(s, &row, "reading a trustpoint's ACME settings", e));
	KH_ENSURE(row,
		  kh_err_set(e, KH_E_NOT_FOUND, "trustpoint '%s' has no ACME settings", tp));
	store_col_text(s, 0, a.directory, sizeof(a.directory));
	store_col_text(s, 1, a.contact, sizeof(a.contact));
	pem = store_col_data(s, 2, &n);
	if (pem != NULL && n > 0) {
		KH_ENSURE(n <= STORE_ACME_CA_MAX, kh_err_set(e, KH_E_DATA_LOSS, "a stored ACME CA bundle is too large"));
		a.ca_pem = strndup(pem, n);
		KH_ENSURE(a.ca_pem != NULL, KH_E_RESOURCE_EXHAUSTED);
	}
	store_col_text(s, 3, a.account_key, sizeof(a.account_key));
	store_col_text(s, 4, a.kid, sizeof(a.kid));
	a.renew_failures = (uint32_t)store_col_int64(s, 5);
	store_col_text(s, 6, a.renew_error, sizeof(a.renew_error));
	a.renew_next = store_col_int64(s, 7);
	store_col_text(s, 8, a.webroot, sizeof(a.webroot));
	store_col_text(s, 9, a.eab_kid, sizeof(a.eab_kid));
	eab = store_col_data(s, 10, &n);
	KH_ENSURE(n <= sizeof(a.eab_key),
		  kh_err_set(e, KH_E_DATA_LOSS, "a stored ACME external account binding key is too large"));
	if (n > 0)
		memcpy(a.eab_key, eab, n);
	a.eab_key_len = n;
	store_col_text(s, 11, a.account_key_next, sizeof(a.account_key_next));
	*out = a;
	memset(&a, 0, sizeof(a));
out:
	store_tp_acme_clear(&a);
	store_finalize(s);
	return r;
}

enum kh_err store_tp_acme_put(struct store *st, const char *tp, const struct store_tp_acme *a, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO trustpoint_acme (trustpoint, directory, contact, ca_pem, account_key, "
			     "kid, renew_failures, renew_error, renew_next, webroot, eab_kid, eab_key, account_key_next) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trustpoint) DO UPDATE SET "
			     "directory = excluded.directory, contact = excluded.contact, ca_pem = excluded.ca_pem, "
			     "account_key = excluded.account_key, kid = excluded.kid, "
			     "renew_failures = excluded.renew_failures, renew_error = excluded.renew_error, "
			     "renew_next = excluded.renew_next, webroot = excluded.webroot, eab_kid = excluded.eab_kid, "
			     "eab_key = excluded.eab_key, account_key_next = excluded.account_key_next",
			     &s, e));
	store_bind_text(s, 1, tp);
	store_bind_text(s, 2, a->directory);
	store_bind_text(s, 3, a->contact);
	store_bind_text(s, 4, a->ca_pem != NULL ? a->ca_pem : "");
	store_bind_text(s, 5, a->account_key);
	store_bind_text(s, 6, a->kid);
	store_bind_int64(s, 7, a->renew_failures);
	store_bind_text(s, 8, a->renew_error);
	store_bind_int64(s, 9, a->renew_next);
	store_bind_text(s, 10, a->webroot);
	store_bind_text(s, 11, a->eab_kid);
	store_bind_blob(s, 12, a->eab_key, a->eab_key_len);
	store_bind_text(s, 13, a->account_key_next);
	KH_TRY(store_step_done(s, "storing a trustpoint's ACME settings", e));
out:
	store_finalize(s);
	return r;
}
