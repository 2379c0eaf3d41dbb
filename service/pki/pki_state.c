/* pki_state.c: the PKI subsystem's life cycle: the state database, crash
 * recovery of key intents and retirements, orphaned keys for status, the
 * trustpoint check on DeleteKey, trust stores for TLS, the test crash hook.
 *
 * Ordering with the token (why a kill -9 leaves old or new state):
 *  - a key is recorded in managed_keys (committed) before the token is
 *    asked to generate it, so a key that exists is always known;
 *  - a trustpoint only references a key after it exists;
 *  - a key is destroyed only after the commit that stopped referencing it
 *    marked it retired; startup destroys retired keys a crash left behind.
 * A live managed key that no trustpoint references and the token holds is
 * an orphan: reported by `keyhold status`, never silently destroyed. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "keys/key_life.h"
#include "pki/pki_state.h"
#include "config/config.h"
#include "store/store_dir.h"

void svc_pki_crash_point(struct svc *s, const char *point)
{
#ifdef KEYHOLD_TESTING
	if (s->pki != NULL && s->pki->crash_at[0] != '\0' && strcmp(s->pki->crash_at, point) == 0) {
		log_warn("KEYHOLD_TEST_CRASH_AT=%s: killing keyholdd with SIGKILL here", point);
		raise(SIGKILL);
		_exit(137);
	}
#else
	(void)s;
	(void)point;
#endif
}

/* ---- retirement ---- */

enum kh_err svc_pki_retire_if_unused(struct svc *s, const char *tp, const char *key,
				     char retired[][KH_NAME_MAX + 1], size_t *n_retired, struct kh_errbuf *e)
{
	struct store_mkey mk;
	char user[KH_NAME_MAX + 1];
	bool found = false;
	size_t i;
	int r = KH_OK;

	if (key == NULL || key[0] == '\0')
		return KH_OK;
	for (i = 0; i < *n_retired; i++)
		if (strcmp(retired[i], key) == 0)
			return KH_OK;
	KH_TRY(store_mkey_get(s->pki->store, key, &mk, &found, e));
	/* Keys the administrator made (key generate, --key) are never ours
	 * to destroy. */
	if (!found || strcmp(mk.trustpoint, tp) != 0 || mk.state != STORE_MKEY_LIVE)
		goto out;
	KH_TRY(store_tp_key_user(s->pki->store, key, user, e));
	if (user[0] != '\0')
		goto out;
	KH_TRY(store_mkey_set_state(s->pki->store, key, STORE_MKEY_RETIRED, e));
	kh_strlcpy(retired[*n_retired], key, KH_NAME_MAX + 1);
	(*n_retired)++;
out:
	return r;
}

/* Destroys one retired key and forgets it. */
static void svc_pki_destroy_one(struct svc *s, const char *key)
{
	struct kh_errbuf e = { 0 };
	int r = svc_key_destroy(s, key, &e);

	if (r != KH_OK && r != KH_E_NOT_FOUND) {
		log_err("retired key '%s' could not be deleted (%s); keyholdd retries at the next start", key, e.msg);
		return;
	}
	kh_err_clear(&e);
	if (store_mkey_remove(s->pki->store, key, &e) != KH_OK)
		log_err("retired key '%s' deleted but its record remains: %s", key, e.msg);
	else
		log_info("deleted retired key '%s'", key);
}

void svc_pki_destroy_retired(struct svc *s, char retired[][KH_NAME_MAX + 1], size_t n_retired)
{
	size_t i;

	for (i = 0; i < n_retired; i++)
		svc_pki_destroy_one(s, retired[i]);
}

/* ---- start-up recovery ---- */

static enum kh_err svc_pki_recover(struct svc *s, struct kh_errbuf *e)
{
	struct store_mkey *mk = NULL;
	char (*tps)[KH_NAME_MAX + 1] = NULL;
	size_t n = 0, ntp = 0, i;
	int r = KH_OK;

	KH_TRY(store_mkey_list(s->pki->store, &mk, &n, e));
	for (i = 0; i < n; i++) {
		struct kh_key_info ki;
		struct kh_errbuf ke = { 0 };
		char user[KH_NAME_MAX + 1];
		int kr;

		if (mk[i].state == STORE_MKEY_RETIRED) {
			/* The commit that retired it happened: finish the job. */
			svc_pki_destroy_one(s, mk[i].key);
			continue;
		}
		KH_TRY(store_tp_key_user(s->pki->store, mk[i].key, user, e));
		if (user[0] != '\0')
			continue;
		memset(&ki, 0, sizeof(ki));
		kr = hsm_key_get(s->hsm, mk[i].key, &ki, &ke);
		kh_key_info_clear(&ki);
		if (kr == KH_E_NOT_FOUND) {
			/* The intent was recorded, the token never made the key. */
			log_info("forgetting key '%s': an interrupted operation on trustpoint '%s' never created it",
				 mk[i].key, mk[i].trustpoint);
			KH_TRY(store_mkey_remove(s->pki->store, mk[i].key, e));
		} else if (kr == KH_OK) {
			log_warn("orphaned key '%s': generated for trustpoint '%s' by an interrupted operation and used by "
				 "no trustpoint; delete it with `keyhold key delete %s --force` or attach it with --key",
				 mk[i].key, mk[i].trustpoint, mk[i].key);
		} else {
			log_warn("cannot check key '%s' on the token: %s", mk[i].key, ke.msg);
		}
	}
	/* Trustpoints whose key vanished from the token (deleted outside
	 * keyhold) are reported, not changed. */
	KH_TRY(store_tp_names(s->pki->store, &tps, &ntp, e));
	for (i = 0; i < ntp; i++) {
		struct store_tp t;
		struct kh_key_info ki;
		struct kh_errbuf ke = { 0 };

		memset(&ki, 0, sizeof(ki));
		if (store_tp_get(s->pki->store, tps[i], &t, &ke) != KH_OK)
			continue;
		if (hsm_key_get(s->hsm, t.key, &ki, &ke) == KH_E_NOT_FOUND)
			log_err("trustpoint '%s': its key '%s' is not on the token", t.name, t.key);
		kh_key_info_clear(&ki);
		store_tp_clear(&t);
	}
out:
	free(mk);
	free(tps);
	return r;
}

enum kh_err svc_store_open(struct svc *s, struct store **out, struct kh_errbuf *e)
{
	struct store_cfg sc = {
		.backend = s->cfg->state_postgresql ? STORE_POSTGRESQL : STORE_SQLITE,
		.dsn = s->cfg->state_dsn,
		.password_file = s->cfg->state_password_file,
		.owner = s->state_dir->owner,
	};

	return store_open_cfg(&sc, s->state_dir, out, e);
}

enum kh_err svc_pki_open(struct svc *s, struct kh_errbuf *e)
{
	struct svc_pki *p = NULL;
	int r = KH_OK;

	p = calloc(1, sizeof(*p));
	KH_ENSURE(p != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_ENSURE(pthread_mutex_init(&p->lock, NULL) == 0, KH_E_INTERNAL);
#ifdef KEYHOLD_TESTING
	{
		const char *c = getenv("KEYHOLD_TEST_CRASH_AT");

		if (c != NULL && c[0] != '\0') {
			kh_strlcpy(p->crash_at, c, sizeof(p->crash_at));
			log_warn("test build: keyholdd will kill itself at '%s'", p->crash_at);
		}
	}
#endif
	r = svc_store_open(s, &p->store, e);
	if (r != KH_OK) {
		pthread_mutex_destroy(&p->lock);
		goto out;
	}
	s->pki = p;
	p = NULL;
	pthread_mutex_lock(&s->pki->lock);
	r = svc_pki_recover(s, e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK) {
		svc_pki_close(s);
		goto out;
	}
	if (s->cfg->state_postgresql)
		log_info("state database: postgresql (schema %d)", store_schema_version(s->pki->store));
	else
		log_info("state database %s/%s (schema %d)", s->cfg->state_dir, STORE_FILE,
			 store_schema_version(s->pki->store));
out:
	free(p);
	return r;
}

void svc_pki_close(struct svc *s)
{
	if (s == NULL || s->pki == NULL)
		return;
	store_close(s->pki->store);
	pthread_mutex_destroy(&s->pki->lock);
	free(s->pki);
	s->pki = NULL;
}

/* ---- status ---- */

enum kh_err svc_pki_orphans(struct svc *s, struct store *st, const struct kh_key_list *tok,
			    const struct kh_errbuf *tok_err, char ***keys, size_t *n, struct kh_errbuf *e)
{
	struct store_mkey *mk = NULL;
	char **out = NULL;
	size_t nmk = 0, cnt = 0, i, j;
	bool locked = false;
	int r = KH_OK;

	*keys = NULL;
	*n = 0;
	if (s->pki == NULL)
		return KH_OK;
	if (st == NULL) {
		st = s->pki->store;
		pthread_mutex_lock(&s->pki->lock);
		locked = true;
	}
	KH_TRY(store_mkey_list(st, &mk, &nmk, e));
	if (nmk == 0)
		goto out;
	KH_ENSURE(tok != NULL, kh_err_set(e, tok_err->code, "%s", tok_err->msg));
	out = calloc(nmk, sizeof(*out));
	KH_ENSURE(out != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < nmk; i++) {
		char user[KH_NAME_MAX + 1];
		bool on_token = false;

		if (mk[i].state != STORE_MKEY_LIVE)
			continue;
		KH_TRY(store_tp_key_user(st, mk[i].key, user, e));
		if (user[0] != '\0')
			continue;
		for (j = 0; j < tok->n && !on_token; j++)
			on_token = strcmp(tok->keys[j].name, mk[i].key) == 0;
		if (!on_token)
			continue;
		out[cnt] = strdup(mk[i].key);
		KH_ENSURE(out[cnt] != NULL, KH_E_RESOURCE_EXHAUSTED);
		cnt++;
	}
	*keys = out;
	*n = cnt;
	out = NULL;
	cnt = 0;
out:
	if (locked)
		pthread_mutex_unlock(&s->pki->lock);
	for (i = 0; i < cnt; i++)
		free(out[i]);
	free(out);
	free(mk);
	return r;
}

/* ---- DeleteKey ---- */

enum kh_err svc_pki_delete_key(struct svc *s, const char *name, struct kh_errbuf *e)
{
	char user[KH_NAME_MAX + 1];
	struct kh_errbuf ign = { 0 };
	int r = KH_OK;

	if (s->pki == NULL)
		return svc_key_destroy(s, name, e);
	pthread_mutex_lock(&s->pki->lock);
	KH_TRY(store_tp_key_user(s->pki->store, name, user, e));
	KH_ENSURE(user[0] == '\0',
		  kh_err_set(e, KH_E_FAILED_PRECONDITION,
			     "key '%s' is in use by trustpoint '%s'; delete the trustpoint (keyhold trustpoint delete %s) "
			     "or move it to another key (keyhold trustpoint regenerate %s) first",
			     name, user, user, user));
	KH_TRY(svc_key_destroy(s, name, e));
	if (store_mkey_remove(s->pki->store, name, &ign) != KH_OK)
		log_warn("key '%s' deleted; forgetting its record failed: %s", name, ign.msg);
out:
	pthread_mutex_unlock(&s->pki->lock);
	return r;
}

/* ---- trust stores for TLS ---- */

enum kh_err svc_pki_truststore_validation(struct svc *s, const char *name, struct kh_validation *out,
					  struct kh_errbuf *e)
{
	int r;

	if (s->pki == NULL)
		return kh_err_set(e, KH_E_UNAVAILABLE, "the state database is not open");
	pthread_mutex_lock(&s->pki->lock);
	r = store_ts_validation_get(s->pki->store, name, out, e);
	pthread_mutex_unlock(&s->pki->lock);
	return r;
}

enum kh_err svc_pki_truststore_load(struct svc *s, const char *name, STACK_OF(X509) **certs,
				    STACK_OF(X509_CRL) **crls, struct kh_errbuf *e)
{
	struct store_ts_cert *tc = NULL;
	struct store_crl *sc = NULL;
	size_t ntc = 0, nsc = 0, i;
	STACK_OF(X509) *xs = NULL;
	STACK_OF(X509_CRL) *cs = NULL;
	bool exists = false;
	int r = KH_OK;

	KH_ENSURE(s->pki != NULL, kh_err_set(e, KH_E_UNAVAILABLE, "the state database is not open"));
	pthread_mutex_lock(&s->pki->lock);
	r = store_ts_exists(s->pki->store, name, &exists, e);
	if (r == KH_OK && !exists)
		r = kh_err_set(e, KH_E_NOT_FOUND, "no trust store named '%s'", name);
	if (r == KH_OK)
		r = store_ts_certs(s->pki->store, name, &tc, &ntc, e);
	if (r == KH_OK)
		r = store_crl_list(s->pki->store, name, &sc, &nsc, e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK)
		goto out;
	xs = sk_X509_new_null();
	cs = sk_X509_CRL_new_null();
	KH_ENSURE(xs != NULL && cs != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < ntc; i++) {
		X509 *x = pki_x509_from_der(tc[i].der.data, tc[i].der.len);

		KH_ENSURE(x != NULL, kh_err_set(e, KH_E_DATA_LOSS, "trust store '%s': a stored certificate does not parse", name));
		if (sk_X509_push(xs, x) <= 0) {
			X509_free(x);
			r = KH_E_RESOURCE_EXHAUSTED;
			goto out;
		}
	}
	for (i = 0; i < nsc; i++) {
		const unsigned char *p = sc[i].der.data;
		X509_CRL *c = d2i_X509_CRL(NULL, &p, (long)sc[i].der.len);

		KH_ENSURE(c != NULL, kh_err_set(e, KH_E_DATA_LOSS, "trust store '%s': a stored CRL does not parse", name));
		if (sk_X509_CRL_push(cs, c) <= 0) {
			X509_CRL_free(c);
			r = KH_E_RESOURCE_EXHAUSTED;
			goto out;
		}
	}
	*certs = xs;
	*crls = cs;
	xs = NULL;
	cs = NULL;
out:
	ERR_clear_error();
	sk_X509_pop_free(xs, X509_free);
	sk_X509_CRL_pop_free(cs, X509_CRL_free);
	store_ts_certs_free(tc, ntc);
	store_crls_free(sc, nsc);
	return r;
}
