/* fips_context.c: FIPS mode set-up and the ERROR state: keyholdd's own
 * OSSL_LIB_CTX with the providers fips_mode calls for (validated: OpenSSL's
 * FIPS provider, its self-test callback registered before the load,
 * default properties "fips=yes"), the conditional-test hooks, and the
 * transition to ERROR from any thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/conf.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/self_test.h>

#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips_int.h"

bool selftest_fips_on(const struct svc *s)
{
	return s->fips != NULL && s->fips->mode != SVC_FIPS_OFF;
}

/* OpenSSL's FIPS provider reports each of its own self-tests here
 * (OSSL_SELF_TEST_set_callback, registered before the provider loads). */
static int selftest_provider_cb(const OSSL_PARAM params[], void *arg)
{
	struct svc_fips *f = arg;
	const OSSL_PARAM *p;
	const char *phase = "", *type = "", *desc = "";

	if ((p = OSSL_PARAM_locate_const(params, OSSL_PROV_PARAM_SELF_TEST_PHASE)) != NULL)
		kh_ignore(OSSL_PARAM_get_utf8_ptr(p, &phase));
	if ((p = OSSL_PARAM_locate_const(params, OSSL_PROV_PARAM_SELF_TEST_TYPE)) != NULL)
		kh_ignore(OSSL_PARAM_get_utf8_ptr(p, &type));
	if ((p = OSSL_PARAM_locate_const(params, OSSL_PROV_PARAM_SELF_TEST_DESC)) != NULL)
		kh_ignore(OSSL_PARAM_get_utf8_ptr(p, &desc));
	if (strcmp(phase, OSSL_SELF_TEST_PHASE_FAIL) == 0) {
		log_err("OpenSSL FIPS provider self-test FAILED: %s (%s)", type, desc);
		atomic_store(&f->provider_failed, true);
	} else {
		log_dbg("OpenSSL FIPS provider self-test %s: %s (%s)", phase, type, desc);
	}
	return 1;
}

/* Fault injection for KEYHOLD_TESTING builds only: KEYHOLD_TEST_CORRUPT=
 * <self-test id>[:<vector index>] corrupts one vector of one entry. */
static void selftest_read_corrupt(struct svc_fips *f)
{
	f->corrupt_id[0] = '\0';
	f->corrupt_idx = -1;
#ifdef KEYHOLD_TESTING
	{
		const char *v = getenv("KEYHOLD_TEST_CORRUPT");
		const char *colon;
		uint64_t idx = 0;
		size_t n;

		if (v == NULL || v[0] == '\0')
			return;
		colon = strchr(v, ':');
		n = colon != NULL ? (size_t)(colon - v) : strlen(v);
		if (n >= sizeof(f->corrupt_id) || (colon != NULL && kh_parse_u64(colon + 1, 0, 63, &idx) != 0)) {
			log_warn("ignoring KEYHOLD_TEST_CORRUPT=%s: use <self-test id>[:<index>]", v);
			return;
		}
		memcpy(f->corrupt_id, v, n);
		f->corrupt_id[n] = '\0';
		f->corrupt_idx = (int)idx;
		log_warn("KEYHOLD_TESTING fault injection armed: self-test %s, vector %d", f->corrupt_id, f->corrupt_idx);
	}
#endif
}

static enum kh_err selftest_load_validated(struct svc_fips *f, OSSL_LIB_CTX *ctx, struct kh_errbuf *e)
{
	const char *conf = getenv("OPENSSL_CONF");
	char *dflt = NULL;
	char err[160];
	int status = 0;
	OSSL_PARAM p[2];

	/* The callback first: it must see the provider's own power-up tests. */
	OSSL_SELF_TEST_set_callback(ctx, selftest_provider_cb, f);
	/* fipsmodule.cnf (the provider's integrity MAC) comes through the
	 * OpenSSL configuration, as `openssl fipsinstall` documents. */
	if (conf == NULL || conf[0] == '\0')
		conf = dflt = CONF_get1_default_config_file();
	if (conf != NULL && OSSL_LIB_CTX_load_config(ctx, conf) != 1)
		log_warn("cannot load OpenSSL configuration %s into keyholdd's context: %s", conf,
			 selftest_ossl_err(err, sizeof(err)));
	OPENSSL_free(dflt);
	f->prov_main = OSSL_PROVIDER_load(ctx, "fips");
	if (f->prov_main == NULL) {
		/* OpenSSL_version() gives 'MODULESDIR: "/path"'. */
		const char *md = strchr(OpenSSL_version(OPENSSL_MODULES_DIR), '"');
		char dir[256];

		kh_strlcpy(dir, md != NULL ? md + 1 : "the OpenSSL modules directory", sizeof(dir));
		if (strchr(dir, '"') != NULL)
			*strchr(dir, '"') = '\0';
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "FIPS_PROVIDER_UNAVAILABLE: fips_mode = validated needs OpenSSL's FIPS provider (fips.so in %s), which cannot be loaded (%s); install and configure it (openssl fipsinstall) or set fips_mode = aligned",
				  dir, selftest_ossl_err(err, sizeof(err)));
	}
	p[0] = OSSL_PARAM_construct_int(OSSL_PROV_PARAM_STATUS, &status);
	p[1] = OSSL_PARAM_construct_end();
	if (OSSL_PROVIDER_get_params(f->prov_main, p) != 1 || status != 1 || atomic_load(&f->provider_failed))
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "FIPS_PROVIDER_UNAVAILABLE: OpenSSL's FIPS provider loaded but its status is %d, not 1 (its self-tests failed)",
				  status);
	f->prov_base = OSSL_PROVIDER_load(ctx, "base");
	if (f->prov_base == NULL || EVP_set_default_properties(ctx, "fips=yes") != 1)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "FIPS_PROVIDER_UNAVAILABLE: cannot load the base provider or set fips=yes: %s",
				  selftest_ossl_err(err, sizeof(err)));
	f->module_validated = true;
	return KH_OK;
}

enum kh_err selftest_init(struct svc *s, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct svc_fips *f = NULL;
	OSSL_LIB_CTX *ctx = NULL;
	char err[160];

	f = calloc(1, sizeof(*f));
	KH_ENSURE(f != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	f->s = s;
	f->mode = s->cfg->fips_mode;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->keys_lock, NULL);
	pthread_mutex_init(&f->run_lock, NULL);
	s->fips = f;
	selftest_read_corrupt(f);
	KH_TRY(selftest_keys_load(f, s->cfg->state_dir, e));

	/* keyholdd's own library context: what it loads never depends on the
	 * process-wide default one (DESIGN §2). */
	ctx = OSSL_LIB_CTX_new();
	KH_ENSURE(ctx != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "cannot create an OpenSSL library context"));
	s->libctx = ctx;
	if (f->mode == SVC_FIPS_VALIDATED) {
		KH_TRY(selftest_load_validated(f, ctx, e));
	} else {
		f->prov_main = OSSL_PROVIDER_load(ctx, "default");
		KH_ENSURE(f->prov_main != NULL,
			  kh_err_set(e, KH_E_INTERNAL, "cannot load OpenSSL's default provider: %s",
				     selftest_ossl_err(err, sizeof(err))));
	}
	log_info("fips_mode = %s: OpenSSL %s, provider %s%s", svc_fips_mode_name(f->mode),
		 OpenSSL_version(OPENSSL_VERSION_STRING), OSSL_PROVIDER_get0_name(f->prov_main),
		 f->mode == SVC_FIPS_ALIGNED ? " (aligned: FIPS self-tests and policy, module not validated)" : "");
out:
	return r;
}

void selftest_free(struct svc *s)
{
	struct svc_fips *f = s->fips;

	if (f != NULL) {
		if (f->ev_error != NULL)
			event_free(f->ev_error);
		OSSL_PROVIDER_unload(f->prov_base);
		OSSL_PROVIDER_unload(f->prov_main);
		selftest_keys_free(f);
		pthread_mutex_destroy(&f->lock);
		pthread_mutex_destroy(&f->keys_lock);
		pthread_mutex_destroy(&f->run_lock);
		free(f);
		s->fips = NULL;
	}
	OSSL_LIB_CTX_free(s->libctx);
	s->libctx = NULL;
}

/* A token call answered CKR_FIPS_SELF_TEST_FAILED after start-up: the
 * token's own module is in its error state, so nothing it signs may leave. */
static void selftest_token_failure(void *arg, const char *detail)
{
	selftest_enter_error(arg, "token-health", detail);
}

void selftest_install_hooks(struct svc *s)
{
	if (!selftest_fips_on(s))
		return;
	hsm_set_keygen_check(s->hsm, selftest_keygen_check, s->fips);
	hsm_set_random_check(s->hsm, selftest_rng_check, s->fips);
	hsm_set_token_failure_hook(s->hsm, selftest_token_failure, s);
}

/* ---- the ERROR state ---- */

static void selftest_error_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_fips *f = arg;

	(void)fd;
	(void)what;
	log_err("FIPS ERROR state: refusing all cryptographic output; closing the token and exiting with status %d",
		SELFTEST_EXIT_ERROR);
	if (f->on_error != NULL)
		f->on_error(f->on_error_arg);
}

enum kh_err selftest_attach_loop(struct svc *s, struct event_base *base, void (*on_error)(void *arg), void *arg)
{
	struct svc_fips *f = s->fips;

	f->on_error = on_error;
	f->on_error_arg = arg;
	f->ev_error = event_new(base, -1, 0, selftest_error_cb, f);
	if (f->ev_error == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	/* An error raised before the loop was attached. */
	if (atomic_load(&f->in_error))
		event_active(f->ev_error, EV_READ, 0);
	return KH_OK;
}

void selftest_enter_error(struct svc *s, const char *test_id, const char *detail)
{
	struct svc_fips *f = s->fips;
	bool was;

	atomic_store(&s->state, SVC_STATE_ERROR);
	was = atomic_exchange(&f->in_error, true);
	log_event(KH_LOG_ERR, KH_MSGID_FIPS_FAILURE, "FIPS self-test %s FAILED: %s; entering the ERROR state", test_id,
		  detail);
	if (was)
		return;
	s->exit_code = SELFTEST_EXIT_ERROR;
	if (f->ev_error != NULL)
		event_active(f->ev_error, EV_READ, 0);
}
