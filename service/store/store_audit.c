/* store_audit.c: the audit log's anchor in the state database, one of its
 * two copies (the other is a token data object; service/audit/). */
#include <string.h>

#include "kh_util.h"
#include "store_int.h"

/* Each node's own row (schema 10); the one row of older versions
 * (audit_anchor, id 1: the single node's) is read while the node has none
 * and dropped when it first writes its own. */
enum kh_err store_audit_anchor_get(struct store *st, const char *node, char *out, size_t outsz,
				   struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT value FROM audit_anchors WHERE node = ?1", &s, e));
	store_bind_text(s, 1, node);
	KH_TRY(store_step(s, &row, "reading the audit anchor", e));
	if (!row) {
		store_finalize(s);
		s = NULL;
		KH_TRY(store_prepare(st, "SELECT value FROM audit_anchor WHERE id = 1", &s, e));
		KH_TRY(store_step(s, &row, "reading the audit anchor", e));
	}
	KH_ENSURE(row, kh_err_set(e, KH_E_NOT_FOUND, "the state database holds no audit anchor of node '%s'", node));
	store_col_text(s, 0, out, outsz);
out:
	store_finalize(s);
	return r;
}

enum kh_err store_audit_anchor_put(struct store *st, const char *node, const char *value, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "INSERT INTO audit_anchors (node, value) VALUES (?1, ?2) "
				 "ON CONFLICT (node) DO UPDATE SET value = excluded.value", &s, e));
	store_bind_text(s, 1, node);
	store_bind_text(s, 2, value);
	KH_TRY(store_step_done(s, "writing the audit anchor", e));
	store_finalize(s);
	s = NULL;
	KH_TRY(store_prepare(st, "DELETE FROM audit_anchor WHERE id = 1", &s, e));
	KH_TRY(store_step_done(s, "dropping the audit anchor of an older version", e));
out:
	store_finalize(s);
	return r;
}
