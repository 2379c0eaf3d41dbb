/* store_audit.c: the audit log's anchor in the state database, one of its
 * two copies (the other is a token data object; service/audit/). */
#include <string.h>

#include "kh_util.h"
#include "store_int.h"

enum kh_err store_audit_anchor_get(struct store *st, char *out, size_t outsz, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT value FROM audit_anchor WHERE id = 1", &s, e));
	KH_TRY(store_step(s, &row, "reading the audit anchor", e));
	KH_ENSURE(row, kh_err_set(e, KH_E_NOT_FOUND, "the state database holds no audit anchor"));
	store_col_text(s, 0, out, outsz);
out:
	store_finalize(s);
	return r;
}

enum kh_err store_audit_anchor_put(struct store *st, const char *value, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "INSERT INTO audit_anchor (id, value) VALUES (1, ?1) "
				 "ON CONFLICT (id) DO UPDATE SET value = excluded.value", &s, e));
	store_bind_text(s, 1, value);
	KH_TRY(store_step_done(s, "writing the audit anchor", e));
out:
	store_finalize(s);
	return r;
}
