/* store_tp.c: trustpoint rows with their CA and chain certificates, and the
 * managed_keys table (keys keyhold generated for trustpoints). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kh_util.h"
#include "store_int.h"

#define TP_COLS                                                                                                 \
	"name, key_name, subject, fqdn, san, eku, enrollment, revocation, digest, validity_days, cert, "          \
	"cert_not_after, csr, csr_key, csr_created, next_key, key_serial, created, updated"
/* The same columns read back. The trustpoints table's CHECK knows only
 * self and terminal (SQLite cannot change a CHECK without rebuilding the
 * table): ACME and SCEP (url) trustpoints are stored as terminal (a
 * certificate may still be imported by hand) and are told apart by their
 * trustpoint_acme or tp_scep row. */
#define TP_COLS_READ                                                                                            \
	"name, key_name, subject, fqdn, san, eku, "                                                               \
	"CASE WHEN EXISTS (SELECT 1 FROM trustpoint_acme a WHERE a.trustpoint = trustpoints.name) THEN 'acme' "  \
	"WHEN EXISTS (SELECT 1 FROM tp_scep p WHERE p.name = trustpoints.name) THEN 'url' "                      \
	"ELSE enrollment END, revocation, digest, validity_days, cert, "                                         \
	"cert_not_after, csr, csr_key, csr_created, next_key, key_serial, created, updated"

void store_tp_clear(struct store_tp *t)
{
	size_t i;

	if (t == NULL)
		return;
	kh_bytes_clear(&t->cert);
	kh_bytes_clear(&t->csr);
	kh_bytes_clear(&t->pending_ca);
	for (i = 0; i < t->n_ca; i++)
		kh_bytes_clear(&t->ca[i]);
	for (i = 0; i < t->n_chain; i++)
		kh_bytes_clear(&t->chain[i]);
	free(t->ca);
	free(t->chain);
	memset(t, 0, sizeof(*t));
}

static enum kh_err tp_certs_load(struct store *st, struct store_tp *t, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT role, der FROM trustpoint_certs WHERE trustpoint = ? ORDER BY role, idx", &s, e));
	store_bind_text(s, 1, t->name);
	for (;;) {
		KH_TRY(store_step(s, &row, "reading trustpoint certificates", e));
		if (!row)
			break;
		char role[8];
		bool ca = false;
		struct kh_bytes **arr = NULL;
		size_t *n = NULL;
		struct kh_bytes *na = NULL;

		store_col_text(s, 0, role, sizeof(role));
		ca = strcmp(role, "ca") == 0;
		arr = ca ? &t->ca : &t->chain;
		n = ca ? &t->n_ca : &t->n_chain;
		na = realloc(*arr, (*n + 1) * sizeof(**arr));

		KH_ENSURE(na != NULL, KH_E_RESOURCE_EXHAUSTED);
		*arr = na;
		memset(&na[*n], 0, sizeof(na[0]));
		KH_TRY(store_col_blob(s, 1, &na[*n]));
		(*n)++;
	}
out:
	store_finalize(s);
	return r;
}

static enum kh_err tp_pending_ca_load(struct store *st, struct store_tp *t, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT der FROM trustpoint_pending_ca WHERE trustpoint = ?", &s, e));
	store_bind_text(s, 1, t->name);
	KH_TRY(store_step(s, &row, "reading a trustpoint's pending CA", e));
	if (row)
		KH_TRY(store_col_blob(s, 0, &t->pending_ca));
out:
	store_finalize(s);
	return r;
}

static enum kh_err tp_pending_ca_write(struct store *st, const struct store_tp *t, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM trustpoint_pending_ca WHERE trustpoint = ?", &s, e));
	store_bind_text(s, 1, t->name);
	KH_TRY(store_step_done(s, "clearing a trustpoint's pending CA", e));
	if (t->pending_ca.len > 0) {
		store_finalize(s);
		s = NULL;
		KH_TRY(store_prepare(st, "INSERT INTO trustpoint_pending_ca (trustpoint, der) VALUES (?, ?)", &s, e));
		store_bind_text(s, 1, t->name);
		store_bind_bytes(s, 2, &t->pending_ca);
		KH_TRY(store_step_done(s, "storing a trustpoint's pending CA", e));
	}
out:
	store_finalize(s);
	return r;
}

enum kh_err store_tp_get(struct store *st, const char *name, struct store_tp *out, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	struct store_tp t;
	char enr[16];
	int r = KH_OK;
	bool row = false;

	memset(&t, 0, sizeof(t));
	KH_TRY(store_prepare(st, "SELECT " TP_COLS_READ " FROM trustpoints WHERE name = ?", &s, e));
	store_bind_text(s, 1, name);
	KH_TRY(store_step(s, &row, "reading a trustpoint", e));
	KH_ENSURE(row, kh_err_set(e, KH_E_NOT_FOUND, "no trustpoint named '%s'", name));
	store_col_text(s, 0, t.name, sizeof(t.name));
	store_col_text(s, 1, t.key, sizeof(t.key));
	store_col_text(s, 2, t.subject, sizeof(t.subject));
	store_col_text(s, 3, t.fqdn, sizeof(t.fqdn));
	store_col_text(s, 4, t.san, sizeof(t.san));
	store_col_text(s, 5, t.eku, sizeof(t.eku));
	store_col_text(s, 6, enr, sizeof(enr));
	t.enrollment = kh_enrollment_from_name(enr);
	if (t.enrollment == KH_ENROLL_TERMINAL && store_scep_exists(st, name))
		t.enrollment = KH_ENROLL_URL;
	store_col_text(s, 7, t.revocation, sizeof(t.revocation));
	t.digest = (enum kh_digest)store_col_int(s, 8);
	t.validity_days = (uint32_t)store_col_int64(s, 9);
	KH_TRY(store_col_blob(s, 10, &t.cert));
	t.cert_not_after = store_col_int64(s, 11);
	KH_TRY(store_col_blob(s, 12, &t.csr));
	store_col_text(s, 13, t.csr_key, sizeof(t.csr_key));
	t.csr_created = store_col_int64(s, 14);
	store_col_text(s, 15, t.next_key, sizeof(t.next_key));
	t.key_serial = (uint32_t)store_col_int64(s, 16);
	t.created = store_col_int64(s, 17);
	t.updated = store_col_int64(s, 18);
	KH_TRY(tp_certs_load(st, &t, e));
	KH_TRY(tp_pending_ca_load(st, &t, e));
	*out = t;
	memset(&t, 0, sizeof(t));
out:
	store_finalize(s);
	store_tp_clear(&t);
	return r;
}

enum kh_err store_tp_names(struct store *st, char (**names)[KH_NAME_MAX + 1], size_t *n, struct kh_errbuf *e)
{
	return store_names_query(st, "SELECT name FROM trustpoints ORDER BY name", names, n, e);
}

static enum kh_err tp_certs_write(struct store *st, const struct store_tp *t, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	size_t i;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM trustpoint_certs WHERE trustpoint = ?", &s, e));
	store_bind_text(s, 1, t->name);
	KH_TRY(store_step_done(s, "clearing trustpoint certificates", e));
	store_finalize(s);
	s = NULL;
	KH_TRY(store_prepare(st, "INSERT INTO trustpoint_certs (trustpoint, role, idx, der) VALUES (?, ?, ?, ?)", &s, e));
	for (i = 0; i < t->n_ca + t->n_chain; i++) {
		bool ca = i < t->n_ca;

		store_reset(s);
		store_bind_text(s, 1, t->name);
		store_bind_text(s, 2, ca ? "ca" : "chain");
		store_bind_int64(s, 3, (ca ? i : i - t->n_ca));
		store_bind_bytes(s, 4, ca ? &t->ca[i] : &t->chain[i - t->n_ca]);
		KH_TRY(store_step_done(s, "writing trustpoint certificates", e));
	}
out:
	store_finalize(s);
	return r;
}

static void tp_bind(struct store_stmt *s, const struct store_tp *t)
{
	store_bind_text(s, 1, t->name);
	store_bind_text(s, 2, t->key);
	store_bind_text(s, 3, t->subject);
	store_bind_text(s, 4, t->fqdn);
	store_bind_text(s, 5, t->san);
	store_bind_text(s, 6, t->eku);
	/* enrollment url and acme are stored as 'terminal' (the column's
	 * CHECK predates them) plus their row in tp_scep or trustpoint_acme,
	 * which store_tp_get reads back. */
	store_bind_text(s, 7, t->enrollment == KH_ENROLL_URL || t->enrollment == KH_ENROLL_ACME ? "terminal"
			      : kh_enrollment_name(t->enrollment) ? kh_enrollment_name(t->enrollment) : "self");
	store_bind_text(s, 8, t->revocation);
	store_bind_int64(s, 9, (int)t->digest);
	store_bind_int64(s, 10, t->validity_days);
	store_bind_bytes(s, 11, &t->cert);
	if (t->cert.len > 0)
		store_bind_int64(s, 12, t->cert_not_after);
	else
		store_bind_null(s, 12);
	store_bind_bytes(s, 13, &t->csr);
	if (t->csr.len > 0) {
		store_bind_text(s, 14, t->csr_key);
		store_bind_int64(s, 15, t->csr_created);
	} else {
		store_bind_null(s, 14);
		store_bind_null(s, 15);
	}
	if (t->next_key[0] != '\0')
		store_bind_text(s, 16, t->next_key);
	else
		store_bind_null(s, 16);
	store_bind_int64(s, 17, t->key_serial);
	store_bind_int64(s, 18, t->created);
	store_bind_int64(s, 19, t->updated);
}

enum kh_err store_tp_insert(struct store *st, const struct store_tp *t, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT 1 FROM trustpoints WHERE name = ?", &s, e));
	store_bind_text(s, 1, t->name);
	KH_TRY(store_step(s, &row, "looking up a trustpoint", e));
	KH_ENSURE(!row, kh_err_set(e, KH_E_ALREADY_EXISTS, "a trustpoint named '%s' already exists", t->name));
	store_finalize(s);
	s = NULL;
	KH_TRY(store_prepare(st,
			     "INSERT INTO trustpoints (" TP_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			     &s, e));
	tp_bind(s, t);
	KH_TRY(store_step_done(s, "adding a trustpoint", e));
	KH_TRY(tp_certs_write(st, t, e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_tp_update(struct store *st, const struct store_tp *t, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "UPDATE trustpoints SET key_name = ?2, subject = ?3, fqdn = ?4, san = ?5, eku = ?6, "
			     "enrollment = ?7, revocation = ?8, digest = ?9, validity_days = ?10, cert = ?11, "
			     "cert_not_after = ?12, csr = ?13, csr_key = ?14, csr_created = ?15, next_key = ?16, "
			     "key_serial = ?17, created = ?18, updated = ?19 WHERE name = ?1",
			     &s, e));
	tp_bind(s, t);
	KH_TRY(store_step_done(s, "updating a trustpoint", e));
	KH_ENSURE(store_changes(st) == 1, kh_err_set(e, KH_E_NOT_FOUND, "no trustpoint named '%s'", t->name));
	KH_TRY(tp_certs_write(st, t, e));
	KH_TRY(tp_pending_ca_write(st, t, e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_tp_delete(struct store *st, const char *name, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM trustpoints WHERE name = ?", &s, e));
	store_bind_text(s, 1, name);
	KH_TRY(store_step_done(s, "deleting a trustpoint", e));
	KH_ENSURE(store_changes(st) == 1, kh_err_set(e, KH_E_NOT_FOUND, "no trustpoint named '%s'", name));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_tp_key_user(struct store *st, const char *key, char user[KH_NAME_MAX + 1], struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	user[0] = '\0';
	KH_TRY(store_prepare(st,
			     "SELECT name FROM trustpoints WHERE key_name = ?1 OR next_key = ?1 OR csr_key = ?1 "
			     "ORDER BY name LIMIT 1",
			     &s, e));
	store_bind_text(s, 1, key);
	KH_TRY(store_step(s, &row, "looking up key users", e));
	if (row)
		store_col_text(s, 0, user, KH_NAME_MAX + 1);
out:
	store_finalize(s);
	return r;
}

/* ---- managed keys ---- */

enum kh_err store_mkey_add(struct store *st, const char *key, const char *tp, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO managed_keys (key_name, trustpoint, state, created) VALUES (?, ?, 'live', ?) "
			     "ON CONFLICT (key_name) DO UPDATE SET trustpoint = excluded.trustpoint, state = excluded.state, "
			     "created = excluded.created",
			     &s, e));
	store_bind_text(s, 1, key);
	store_bind_text(s, 2, tp);
	store_bind_int64(s, 3, (int64_t)time(NULL));
	KH_TRY(store_step_done(s, "recording a key", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_mkey_set_state(struct store *st, const char *key, enum store_mkey_state state, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "UPDATE managed_keys SET state = ? WHERE key_name = ?", &s, e));
	store_bind_text(s, 1, state == STORE_MKEY_RETIRED ? "retired" : "live");
	store_bind_text(s, 2, key);
	KH_TRY(store_step_done(s, "updating a key record", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_mkey_remove(struct store *st, const char *key, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM managed_keys WHERE key_name = ?", &s, e));
	store_bind_text(s, 1, key);
	KH_TRY(store_step_done(s, "removing a key record", e));
out:
	store_finalize(s);
	return r;
}

static void mkey_row(struct store_stmt *s, struct store_mkey *m)
{
	char state[16];

	store_col_text(s, 0, m->key, sizeof(m->key));
	store_col_text(s, 1, m->trustpoint, sizeof(m->trustpoint));
	store_col_text(s, 2, state, sizeof(state));
	m->state = strcmp(state, "retired") == 0 ? STORE_MKEY_RETIRED : STORE_MKEY_LIVE;
	m->created = store_col_int64(s, 3);
}

enum kh_err store_mkey_get(struct store *st, const char *key, struct store_mkey *out, bool *found,
			   struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	*found = false;
	KH_TRY(store_prepare(st, "SELECT key_name, trustpoint, state, created FROM managed_keys WHERE key_name = ?", &s, e));
	store_bind_text(s, 1, key);
	KH_TRY(store_step(s, &row, "reading a key record", e));
	if (row) {
		mkey_row(s, out);
		*found = true;
	}
out:
	store_finalize(s);
	return r;
}

enum kh_err store_mkey_list(struct store *st, struct store_mkey **out, size_t *n, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	struct store_mkey *v = NULL;
	size_t cnt = 0;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT key_name, trustpoint, state, created FROM managed_keys ORDER BY key_name", &s, e));
	for (;;) {
		KH_TRY(store_step(s, &row, "listing key records", e));
		if (!row)
			break;
		struct store_mkey *nv = realloc(v, (cnt + 1) * sizeof(*v));

		KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
		v = nv;
		mkey_row(s, &v[cnt++]);
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	store_finalize(s);
	return r;
}
