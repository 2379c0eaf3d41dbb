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
	struct store_stmt *s = NULL;
	struct kh_errbuf ign = { 0 };
	bool found = false;

	if (store_prepare(st, "SELECT 1 FROM tp_scep WHERE name = ?", &s, &ign) != KH_OK)
		return false;
	store_bind_text(s, 1, name);
	if (store_step(s, &found, "looking up a SCEP trustpoint", &ign) != KH_OK)
		found = false;
	store_finalize(s);
	return found;
}

enum kh_err store_scep_get(struct store *st, const char *name, struct store_scep *out, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st, "SELECT url, challenge, ra, status FROM tp_scep WHERE name = ?", &s, e));
	store_bind_text(s, 1, name);
	KH_TRY(store_step(s, &row, "reading a SCEP trustpoint", e));
	KH_ENSURE(row, kh_err_set(e, KH_E_NOT_FOUND, "trustpoint '%s' has no SCEP settings", name));
	store_col_text(s, 0, out->url, sizeof(out->url));
	store_col_text(s, 1, out->challenge, sizeof(out->challenge));
	KH_TRY(store_col_blob(s, 2, &out->ra));
	store_col_text(s, 3, out->status, sizeof(out->status));
out:
	store_finalize(s);
	if (r != KH_OK)
		store_scep_clear(out);
	return r;
}

enum kh_err store_scep_put(struct store *st, const char *name, const struct store_scep *p, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "INSERT INTO tp_scep (name, url, challenge, ra, status) "
			     "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
			     "url = excluded.url, challenge = excluded.challenge, ra = excluded.ra, "
			     "status = excluded.status",
			     &s, e));
	store_bind_text(s, 1, name);
	store_bind_text(s, 2, p->url);
	store_bind_text(s, 3, p->challenge);
	store_bind_bytes(s, 4, &p->ra);
	store_bind_text(s, 5, p->status);
	KH_TRY(store_step_done(s, "storing a SCEP trustpoint", e));
out:
	store_finalize(s);
	return r;
}

/* ---- the request the server holds (schema 7) ---- */

void store_scep_pending_clear(struct store_scep_pending *p)
{
	if (p == NULL)
		return;
	kh_bytes_clear(&p->signer);
	kh_bytes_clear(&p->subject);
	memset(p, 0, sizeof(*p));
}

enum kh_err store_scep_pending_get(struct store *st, const char *name, struct store_scep_pending *out,
				   struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st,
			     "SELECT txid, msg_type, req_key, signer, signer_key, subject, started, next_poll, polls, wait "
			     "FROM tp_scep_pending WHERE name = ?",
			     &s, e));
	store_bind_text(s, 1, name);
	KH_TRY(store_step(s, &row, "reading a pending SCEP request", e));
	KH_ENSURE(row, kh_err_set(e, KH_E_NOT_FOUND, "trustpoint '%s' has no pending SCEP request", name));
	store_col_text(s, 0, out->txid, sizeof(out->txid));
	out->msg_type = store_col_int(s, 1);
	store_col_text(s, 2, out->req_key, sizeof(out->req_key));
	KH_TRY(store_col_blob(s, 3, &out->signer));
	store_col_text(s, 4, out->signer_key, sizeof(out->signer_key));
	KH_TRY(store_col_blob(s, 5, &out->subject));
	out->started = store_col_int64(s, 6);
	out->next_poll = store_col_int64(s, 7);
	out->polls = (uint32_t)store_col_int64(s, 8);
	out->wait = store_col_int64(s, 9);
out:
	store_finalize(s);
	if (r != KH_OK)
		store_scep_pending_clear(out);
	return r;
}

enum kh_err store_scep_pending_put(struct store *st, const char *name, const struct store_scep_pending *p,
				   struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO tp_scep_pending (name, txid, msg_type, req_key, signer, signer_key, subject, started, next_poll, polls, wait) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
			     "txid = excluded.txid, msg_type = excluded.msg_type, req_key = excluded.req_key, "
			     "signer = excluded.signer, signer_key = excluded.signer_key, "
			     "subject = excluded.subject, started = excluded.started, "
			     "next_poll = excluded.next_poll, polls = excluded.polls, wait = excluded.wait",
			     &s, e));
	store_bind_text(s, 1, name);
	store_bind_text(s, 2, p->txid);
	store_bind_int64(s, 3, p->msg_type);
	store_bind_text(s, 4, p->req_key);
	store_bind_bytes(s, 5, &p->signer);
	store_bind_text(s, 6, p->signer_key);
	store_bind_bytes(s, 7, &p->subject);
	store_bind_int64(s, 8, p->started);
	store_bind_int64(s, 9, p->next_poll);
	store_bind_int64(s, 10, p->polls);
	store_bind_int64(s, 11, p->wait);
	KH_TRY(store_step_done(s, "storing a pending SCEP request", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_scep_pending_del(struct store *st, const char *name, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM tp_scep_pending WHERE name = ?", &s, e));
	store_bind_text(s, 1, name);
	KH_TRY(store_step_done(s, "removing a pending SCEP request", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_scep_pending_names(struct store *st, char (**names)[KH_NAME_MAX + 1], size_t *n,
				     struct kh_errbuf *e)
{
	return store_names_query(st, "SELECT name FROM tp_scep_pending ORDER BY name", names, n, e);
}
