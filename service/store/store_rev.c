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
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	memset(out, 0, sizeof(*out));
	kh_strlcpy(out->revocation, "none", sizeof(out->revocation));
	KH_TRY(store_prepare(st, "SELECT revocation, ocsp_url FROM truststore_policy WHERE store = ?", &s, e));
	store_bind_text(s, 1, store_name);
	KH_TRY(store_step(s, &row, "reading a trust store policy", e));
	if (row) {
		store_col_text(s, 0, out->revocation, sizeof(out->revocation));
		store_col_text(s, 1, out->ocsp_url, sizeof(out->ocsp_url));
	}
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ts_policy_put(struct store *st, const char *store_name, const struct store_ts_policy *p,
				struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "INSERT INTO truststore_policy (store, revocation, ocsp_url) "
			     "VALUES (?, ?, ?) ON CONFLICT (store) DO UPDATE SET "
			     "revocation = excluded.revocation, ocsp_url = excluded.ocsp_url",
			     &s, e));
	store_bind_text(s, 1, store_name);
	store_bind_text(s, 2, p->revocation);
	store_bind_text(s, 3, p->ocsp_url);
	KH_TRY(store_step_done(s, "storing a trust store policy", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ts_validation_get(struct store *st, const char *store_name, struct kh_validation *out,
				    struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	char pols[KH_POLICIES_MAX * (KH_OID_MAX + 1) + 1];
	const char *p, *sp;
	int r = KH_OK;
	bool row = false;

	kh_validation_default(out);
	KH_TRY(store_prepare(st,
			     "SELECT policies, require_explicit_policy, inhibit_policy_mapping, inhibit_any_policy, "
			     "min_rsa_bits, min_ec_bits, allow_sha1 FROM truststore_validation WHERE store = ?",
			     &s, e));
	store_bind_text(s, 1, store_name);
	KH_TRY(store_step(s, &row, "reading a trust store's validation settings", e));
	if (row) {
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
		out->require_explicit_policy = store_col_int(s, 1) != 0;
		out->inhibit_policy_mapping = store_col_int(s, 2) != 0;
		out->inhibit_any_policy = store_col_int(s, 3) != 0;
		out->min_rsa_bits = (uint32_t)store_col_int(s, 4);
		out->min_ec_bits = (uint32_t)store_col_int(s, 5);
		out->allow_sha1 = store_col_int(s, 6) != 0;
	}
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ts_validation_put(struct store *st, const char *store_name, const struct kh_validation *v,
				    struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	char pols[KH_POLICIES_MAX * (KH_OID_MAX + 1) + 1] = "";
	size_t i, off = 0;
	int r = KH_OK;

	for (i = 0; i < v->n_policies && i < KH_POLICIES_MAX; i++)
		off += (size_t)snprintf(pols + off, sizeof(pols) - off, "%s%s", i ? " " : "", v->policies[i]);
	KH_TRY(store_prepare(st,
			     "INSERT INTO truststore_validation (store, policies, require_explicit_policy, inhibit_policy_mapping, inhibit_any_policy, min_rsa_bits, min_ec_bits, allow_sha1) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store) DO UPDATE SET "
			     "policies = excluded.policies, "
			     "require_explicit_policy = excluded.require_explicit_policy, "
			     "inhibit_policy_mapping = excluded.inhibit_policy_mapping, "
			     "inhibit_any_policy = excluded.inhibit_any_policy, "
			     "min_rsa_bits = excluded.min_rsa_bits, min_ec_bits = excluded.min_ec_bits, "
			     "allow_sha1 = excluded.allow_sha1",
			     &s, e));
	store_bind_text(s, 1, store_name);
	store_bind_text(s, 2, pols);
	store_bind_int64(s, 3, v->require_explicit_policy);
	store_bind_int64(s, 4, v->inhibit_policy_mapping);
	store_bind_int64(s, 5, v->inhibit_any_policy);
	store_bind_int64(s, 6, (int)v->min_rsa_bits);
	store_bind_int64(s, 7, (int)v->min_ec_bits);
	store_bind_int64(s, 8, v->allow_sha1);
	KH_TRY(store_step_done(s, "storing a trust store's validation settings", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_tp_policy_get(struct store *st, const char *tp, struct store_tp_policy *out, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st, "SELECT ocsp_url, renew_at, renew_regenerate FROM trustpoint_policy WHERE trustpoint = ?",
			     &s, e));
	store_bind_text(s, 1, tp);
	KH_TRY(store_step(s, &row, "reading a trustpoint policy", e));
	if (row) {
		store_col_text(s, 0, out->ocsp_url, sizeof(out->ocsp_url));
		out->renew_at = (uint32_t)store_col_int(s, 1);
		out->renew_regenerate = store_col_int(s, 2) != 0;
	}
out:
	store_finalize(s);
	return r;
}

enum kh_err store_tp_policy_put(struct store *st, const char *tp, const struct store_tp_policy *p,
				struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO trustpoint_policy (trustpoint, ocsp_url, renew_at, renew_regenerate) "
			     "VALUES (?, ?, ?, ?) ON CONFLICT (trustpoint) DO UPDATE SET "
			     "ocsp_url = excluded.ocsp_url, renew_at = excluded.renew_at, "
			     "renew_regenerate = excluded.renew_regenerate",
			     &s, e));
	store_bind_text(s, 1, tp);
	store_bind_text(s, 2, p->ocsp_url);
	store_bind_int64(s, 3, (int)p->renew_at);
	store_bind_int64(s, 4, p->renew_regenerate ? 1 : 0);
	KH_TRY(store_step_done(s, "storing a trustpoint policy", e));
out:
	store_finalize(s);
	return r;
}

/* ---- caches ---- */

enum kh_err store_crl_cache_get(struct store *st, const char *url, struct store_crl_cached *out, bool *found,
				struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;
	bool row = false;

	*found = false;
	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st, "SELECT issuer, this_update, next_update, fetched, der FROM crl_cache WHERE url = ?", &s,
			     e));
	store_bind_text(s, 1, url);
	KH_TRY(store_step(s, &row, "reading the CRL cache", e));
	if (row) {
		store_col_text(s, 0, out->issuer, sizeof(out->issuer));
		out->this_update = store_col_int64(s, 1);
		out->next_update = store_col_int64(s, 2);
		out->fetched = store_col_int64(s, 3);
		KH_TRY(store_col_blob(s, 4, &out->der));
		*found = true;
	}
out:
	store_finalize(s);
	return r;
}

enum kh_err store_crl_cache_put(struct store *st, const char *url, const struct store_crl_cached *c,
				struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO crl_cache (url, issuer, this_update, next_update, der, fetched) "
			     "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET "
			     "issuer = excluded.issuer, this_update = excluded.this_update, "
			     "next_update = excluded.next_update, der = excluded.der, "
			     "fetched = excluded.fetched",
			     &s, e));
	store_bind_text(s, 1, url);
	store_bind_text(s, 2, c->issuer);
	store_bind_int64(s, 3, c->this_update);
	store_bind_int64(s, 4, c->next_update);
	store_bind_bytes(s, 5, &c->der);
	store_bind_int64(s, 6, c->fetched);
	KH_TRY(store_step_done(s, "caching a CRL", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ocsp_cache_get(struct store *st, const char *cert_id, struct store_ocsp_cached *out, bool *found,
				 struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	char status[16];
	int r = KH_OK;
	bool row = false;

	*found = false;
	memset(out, 0, sizeof(*out));
	KH_TRY(store_prepare(st,
			     "SELECT responder, status, reason, revoked_at, this_update, next_update, fetched, der "
			     "FROM ocsp_cache WHERE cert_id = ?",
			     &s, e));
	store_bind_text(s, 1, cert_id);
	KH_TRY(store_step(s, &row, "reading the OCSP cache", e));
	if (row) {
		store_col_text(s, 0, out->responder, sizeof(out->responder));
		store_col_text(s, 1, status, sizeof(status));
		out->revoked = strcmp(status, "revoked") == 0;
		out->reason = store_col_int(s, 2);
		out->revoked_at = store_col_int64(s, 3);
		out->this_update = store_col_int64(s, 4);
		out->next_update = store_col_int64(s, 5);
		out->fetched = store_col_int64(s, 6);
		KH_TRY(store_col_blob(s, 7, &out->der));
		*found = true;
	}
out:
	store_finalize(s);
	return r;
}

enum kh_err store_ocsp_cache_put(struct store *st, const char *cert_id, const struct store_ocsp_cached *c,
				 struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO ocsp_cache (cert_id, responder, status, reason, revoked_at, this_update, next_update, der, fetched) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cert_id) DO UPDATE SET "
			     "responder = excluded.responder, status = excluded.status, "
			     "reason = excluded.reason, revoked_at = excluded.revoked_at, "
			     "this_update = excluded.this_update, next_update = excluded.next_update, "
			     "der = excluded.der, fetched = excluded.fetched",
			     &s, e));
	store_bind_text(s, 1, cert_id);
	store_bind_text(s, 2, c->responder);
	store_bind_text(s, 3, c->revoked ? "revoked" : "good");
	store_bind_int64(s, 4, c->reason);
	store_bind_int64(s, 5, c->revoked_at);
	store_bind_int64(s, 6, c->this_update);
	store_bind_int64(s, 7, c->next_update);
	store_bind_bytes(s, 8, &c->der);
	store_bind_int64(s, 9, c->fetched);
	KH_TRY(store_step_done(s, "caching an OCSP answer", e));
out:
	store_finalize(s);
	return r;
}

/* ---- expiry notices ---- */

enum kh_err store_notices_list(struct store *st, struct store_notice **out, size_t *n, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	struct store_notice *v = NULL;
	size_t cnt = 0;
	int r = KH_OK;
	bool row = false;

	KH_TRY(store_prepare(st, "SELECT fingerprint, first_notified, last_notified, count FROM expiry_notices", &s, e));
	for (;;) {
		KH_TRY(store_step(s, &row, "reading expiry notices", e));
		if (!row)
			break;
		struct store_notice *nv = realloc(v, (cnt + 1) * sizeof(*v));

		KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
		v = nv;
		memset(&v[cnt], 0, sizeof(v[cnt]));
		store_col_text(s, 0, v[cnt].fingerprint, sizeof(v[cnt].fingerprint));
		v[cnt].first_notified = store_col_int64(s, 1);
		v[cnt].last_notified = store_col_int64(s, 2);
		v[cnt].count = (uint32_t)store_col_int64(s, 3);
		cnt++;
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	store_finalize(s);
	return r;
}

enum kh_err store_notice_put(struct store *st, const char *fingerprint, const char *subject, int64_t not_after,
			     int64_t now, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st,
			     "INSERT INTO expiry_notices (fingerprint, subject, not_after, first_notified, last_notified, count) "
			     "VALUES (?1, ?2, ?3, ?4, ?4, 1) ON CONFLICT (fingerprint) DO UPDATE SET "
			     "last_notified = ?4, count = count + 1",
			     &s, e));
	store_bind_text(s, 1, fingerprint);
	store_bind_text(s, 2, subject);
	store_bind_int64(s, 3, not_after);
	store_bind_int64(s, 4, now);
	KH_TRY(store_step_done(s, "recording an expiry notice", e));
out:
	store_finalize(s);
	return r;
}

enum kh_err store_notice_remove(struct store *st, const char *fingerprint, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(store_prepare(st, "DELETE FROM expiry_notices WHERE fingerprint = ?", &s, e));
	store_bind_text(s, 1, fingerprint);
	KH_TRY(store_step_done(s, "forgetting an expiry notice", e));
out:
	store_finalize(s);
	return r;
}
