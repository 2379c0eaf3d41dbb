/* store_rev.c: the tables of revocation checking, expiry monitoring and
 * renewal (schema 2): trust store and trustpoint policies, the caches of
 * fetched CRLs and OCSP answers (kept until their nextUpdate), and the
 * last expiry notification of each certificate; a trust store's path
 * validation settings (schema 4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kh_util.h"
#include "store_int.h"

/* ---- policies ---- */

enum kh_err store_ts_policy_get(struct store *st, const char *store_name, struct store_ts_policy *out,
				struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	memset(out, 0, sizeof(*out));
	kh_strlcpy(out->revocation, "none", sizeof(out->revocation));
	KH_TRY(store_prepare(st, "SELECT revocation, ocsp_url FROM truststore_policy WHERE store = ?", &s, e));
	store_bind_text(s, 1, store_name);
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading a trust store policy"));
	if (rc == SQLITE_ROW) {
		store_col_text(s, 0, out->revocation, sizeof(out->revocation));
		store_col_text(s, 1, out->ocsp_url, sizeof(out->ocsp_url));
	}
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_ts_policy_put(struct store *st, const char *store_name, const struct store_ts_policy *p,
				struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "INSERT OR REPLACE INTO truststore_policy (store, revocation, ocsp_url) VALUES (?, ?, ?)",
			     &s, e));
	store_bind_text(s, 1, store_name);
	store_bind_text(s, 2, p->revocation);
	store_bind_text(s, 3, p->ocsp_url);
	KH_TRY(store_step_done(st, s, "storing a trust store policy", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_ts_validation_get(struct store *st, const char *store_name, struct kh_validation *out,
				    struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	char pols[KH_POLICIES_MAX * (KH_OID_MAX + 1) + 1];
	const char *p, *sp;
	int r = KH_OK, rc;

	kh_validation_default(out);
	KH_TRY(store_prepare(st,
			     "SELECT policies, require_explicit_policy, inhibit_policy_mapping, inhibit_any_policy, "
			     "min_rsa_bits, min_ec_bits, allow_sha1 FROM truststore_validation WHERE store = ?",
			     &s, e));
	store_bind_text(s, 1, store_name);
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading a trust store's validation settings"));
	if (rc == SQLITE_ROW) {
		store_col_text(s, 0, pols, sizeof(pols));
		for (p = pols; *p != '\0' && out->n_policies < KH_POLICIES_MAX; p = *sp ? sp + 1 : sp) {
			size_t n;

			sp = strchr(p, ' ');
			if (sp == NULL)
				sp = p + strlen(p);
			n = (size_t)(sp - p);
			if (n == 0 || n > KH_OID_MAX)
				continue;
			memcpy(out->policies[out->n_policies], p, n);
			out->policies[out->n_policies++][n] = '\0';
		}
		out->require_explicit_policy = sqlite3_column_int(s, 1) != 0;
		out->inhibit_policy_mapping = sqlite3_column_int(s, 2) != 0;
		out->inhibit_any_policy = sqlite3_column_int(s, 3) != 0;
		out->min_rsa_bits = (uint32_t)sqlite3_column_int(s, 4);
		out->min_ec_bits = (uint32_t)sqlite3_column_int(s, 5);
		out->allow_sha1 = sqlite3_column_int(s, 6) != 0;
	}
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_ts_validation_put(struct store *st, const char *store_name, const struct kh_validation *v,
				    struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	char pols[KH_POLICIES_MAX * (KH_OID_MAX + 1) + 1] = "";
	size_t i, off = 0;
	int r = KH_OK;

	for (i = 0; i < v->n_policies && i < KH_POLICIES_MAX; i++)
		off += (size_t)snprintf(pols + off, sizeof(pols) - off, "%s%s", i ? " " : "", v->policies[i]);
	KH_TRY(store_prepare(st,
			     "INSERT OR REPLACE INTO truststore_validation (store, policies, require_explicit_policy, "
			     "inhibit_policy_mapping, inhibit_any_policy, min_rsa_bits, min_ec_bits, allow_sha1) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			     &s, e));
	store_bind_text(s, 1, store_name);
	store_bind_text(s, 2, pols);
	sqlite3_bind_int(s, 3, v->require_explicit_policy);
	sqlite3_bind_int(s, 4, v->inhibit_policy_mapping);
	sqlite3_bind_int(s, 5, v->inhibit_any_policy);
	sqlite3_bind_int(s, 6, (int)v->min_rsa_bits);
	sqlite3_bind_int(s, 7, (int)v->min_ec_bits);
	sqlite3_bind_int(s, 8, v->allow_sha1);
	KH_TRY(store_step_done(st, s, "storing a trust store's validation settings", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_tp_policy_get(struct store *st, const char *tp, struct store_tp_policy *out, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st, "SELECT ocsp_url, renew_at, renew_regenerate FROM trustpoint_policy WHERE trustpoint = ?",
			     &s, e));
	store_bind_text(s, 1, tp);
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading a trustpoint policy"));
	if (rc == SQLITE_ROW) {
		store_col_text(s, 0, out->ocsp_url, sizeof(out->ocsp_url));
		out->renew_at = (uint32_t)sqlite3_column_int(s, 1);
		out->renew_regenerate = sqlite3_column_int(s, 2) != 0;
	}
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_tp_policy_put(struct store *st, const char *tp, const struct store_tp_policy *p,
				struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT OR REPLACE INTO trustpoint_policy (trustpoint, ocsp_url, renew_at, renew_regenerate) "
			     "VALUES (?, ?, ?, ?)",
			     &s, e));
	store_bind_text(s, 1, tp);
	store_bind_text(s, 2, p->ocsp_url);
	sqlite3_bind_int(s, 3, (int)p->renew_at);
	sqlite3_bind_int(s, 4, p->renew_regenerate ? 1 : 0);
	KH_TRY(store_step_done(st, s, "storing a trustpoint policy", e));
out:
	sqlite3_finalize(s);
	return r;
}

/* ---- caches ---- */

enum kh_err store_crl_cache_get(struct store *st, const char *url, struct store_crl_cached *out, bool *found,
				struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	*found = false;
	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st, "SELECT issuer, this_update, next_update, fetched, der FROM crl_cache WHERE url = ?", &s,
			     e));
	store_bind_text(s, 1, url);
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading the CRL cache"));
	if (rc == SQLITE_ROW) {
		store_col_text(s, 0, out->issuer, sizeof(out->issuer));
		out->this_update = sqlite3_column_int64(s, 1);
		out->next_update = sqlite3_column_int64(s, 2);
		out->fetched = sqlite3_column_int64(s, 3);
		KH_TRY(store_col_blob(s, 4, &out->der));
		*found = true;
	}
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_crl_cache_put(struct store *st, const char *url, const struct store_crl_cached *c,
				struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT OR REPLACE INTO crl_cache (url, issuer, this_update, next_update, der, fetched) "
			     "VALUES (?, ?, ?, ?, ?, ?)",
			     &s, e));
	store_bind_text(s, 1, url);
	store_bind_text(s, 2, c->issuer);
	sqlite3_bind_int64(s, 3, c->this_update);
	sqlite3_bind_int64(s, 4, c->next_update);
	store_bind_blob(s, 5, &c->der);
	sqlite3_bind_int64(s, 6, c->fetched);
	KH_TRY(store_step_done(st, s, "caching a CRL", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_ocsp_cache_get(struct store *st, const char *cert_id, struct store_ocsp_cached *out, bool *found,
				 struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	char status[16];
	int r = KH_OK, rc;

	*found = false;
	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st,
			     "SELECT responder, status, reason, revoked_at, this_update, next_update, fetched, der "
			     "FROM ocsp_cache WHERE cert_id = ?",
			     &s, e));
	store_bind_text(s, 1, cert_id);
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading the OCSP cache"));
	if (rc == SQLITE_ROW) {
		store_col_text(s, 0, out->responder, sizeof(out->responder));
		store_col_text(s, 1, status, sizeof(status));
		out->revoked = strcmp(status, "revoked") == 0;
		out->reason = sqlite3_column_int(s, 2);
		out->revoked_at = sqlite3_column_int64(s, 3);
		out->this_update = sqlite3_column_int64(s, 4);
		out->next_update = sqlite3_column_int64(s, 5);
		out->fetched = sqlite3_column_int64(s, 6);
		KH_TRY(store_col_blob(s, 7, &out->der));
		*found = true;
	}
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_ocsp_cache_put(struct store *st, const char *cert_id, const struct store_ocsp_cached *c,
				 struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT OR REPLACE INTO ocsp_cache (cert_id, responder, status, reason, revoked_at, this_update, "
			     "next_update, der, fetched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			     &s, e));
	store_bind_text(s, 1, cert_id);
	store_bind_text(s, 2, c->responder);
	store_bind_text(s, 3, c->revoked ? "revoked" : "good");
	sqlite3_bind_int(s, 4, c->reason);
	sqlite3_bind_int64(s, 5, c->revoked_at);
	sqlite3_bind_int64(s, 6, c->this_update);
	sqlite3_bind_int64(s, 7, c->next_update);
	store_bind_blob(s, 8, &c->der);
	sqlite3_bind_int64(s, 9, c->fetched);
	KH_TRY(store_step_done(st, s, "caching an OCSP answer", e));
out:
	sqlite3_finalize(s);
	return r;
}

/* ---- expiry notices ---- */

enum kh_err store_notices_list(struct store *st, struct store_notice **out, size_t *n, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	struct store_notice *v = NULL;
	size_t cnt = 0;
	int r = KH_OK, rc;

	KH_TRY(store_prepare(st, "SELECT fingerprint, first_notified, last_notified, count FROM expiry_notices", &s, e));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_notice *nv = realloc(v, (cnt + 1) * sizeof(*v));

		KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
		v = nv;
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].fingerprint, sizeof(v[cnt].fingerprint));
		v[cnt].first_notified = sqlite3_column_int64(s, 1);
		v[cnt].last_notified = sqlite3_column_int64(s, 2);
		v[cnt].count = (uint32_t)sqlite3_column_int64(s, 3);
		cnt++;
	}
	KH_ENSURE(rc == SQLITE_DONE, store_sql_err(st, e, rc, "reading expiry notices"));
	*out = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_notice_put(struct store *st, const char *fingerprint, const char *subject, int64_t not_after,
			     int64_t now, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO expiry_notices (fingerprint, subject, not_after, first_notified, last_notified, count) "
			     "VALUES (?1, ?2, ?3, ?4, ?4, 1) ON CONFLICT (fingerprint) DO UPDATE SET "
			     "last_notified = ?4, count = count + 1",
			     &s, e));
	store_bind_text(s, 1, fingerprint);
	store_bind_text(s, 2, subject);
	sqlite3_bind_int64(s, 3, not_after);
	sqlite3_bind_int64(s, 4, now);
	KH_TRY(store_step_done(st, s, "recording an expiry notice", e));
out:
	sqlite3_finalize(s);
	return r;
}

enum kh_err store_notice_remove(struct store *st, const char *fingerprint, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM expiry_notices WHERE fingerprint = ?", &s, e));
	store_bind_text(s, 1, fingerprint);
	KH_TRY(store_step_done(st, s, "forgetting an expiry notice", e));
out:
	sqlite3_finalize(s);
	return r;
}
