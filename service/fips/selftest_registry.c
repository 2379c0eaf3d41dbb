/* selftest_registry.c: the ordered power-up self-test registry of DESIGN §8 (id,
 * type, description, vector source; result and duration kept for
 * `keyhold status`), the runner, the rerun RunSelfTest asks for, what
 * GetStatus reports of them, and fault injection for KEYHOLD_TESTING builds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips_int.h"

const struct selftest_def selftest_registry[SELFTEST_COUNT] = {
	{ "hmac-sha256-kat", "kat", "HMAC-SHA-256 known answers", "RFC 4231 test cases 1 and 2",
	  selftest_hmac_kat },
	{ "software-integrity", "integrity", "HMAC-SHA-256 of the keyholdd executable against its sidecar",
	  "sidecar written by keyholdd --fips-install", selftest_integrity },
	{ "sha2-kat", "kat", "SHA-256/384/512 known answers", "FIPS 180-4 examples: \"abc\", 448-bit, 896-bit",
	  selftest_sha2_kat },
	{ "sigver-kat", "kat", "RSA PKCS#1 v1.5 and ECDSA P-256/P-384 verification, each with a must-fail twin",
	  "CAVP SigGen15 (RSA-2048 SHA-256); RFC 6979 A.2.5, A.2.6", selftest_sigver_kat },
	{ "drbg-kat", "kat", "CTR_DRBG AES-128 with derivation function and prediction resistance, scratch instance",
	  "CAVP CTR_DRBG.rsp AES-128 use df, PR=True, COUNT=0", selftest_drbg_kat },
	{ "critical-functions", "policy", "approved-algorithm policy refuses MD5, SHA-1 signing, RSA < 2048, P-192",
	  "DESIGN §8 approved policy", selftest_critical },
	{ "token-health", "token", "token not in CKF_ERROR_STATE; required mechanisms and key sizes present",
	  "C_GetTokenInfo, C_GetMechanismInfo", selftest_token_health },
	{ "token-rng", "token", "two 32-byte C_GenerateRandom blocks differ and are not constant", "token RNG",
	  selftest_token_rng },
	{ "token-pairwise", "token", "session P-256 and RSA-2048 keys sign in the token, OpenSSL verifies, tampered fails",
	  "fixed message, SHA-256", selftest_token_pairwise },
};

/* ---- helpers ---- */

bool selftest_corrupting(const struct selftest_run *r, int idx)
{
	return r->corrupt >= 0 && r->corrupt == idx;
}

void selftest_corrupt(const struct selftest_run *r, int idx, uint8_t *buf, size_t len)
{
	if (selftest_corrupting(r, idx) && len > 0)
		buf[0] ^= 0x01;
}

enum kh_err selftest_unhex(const char *hex, uint8_t *buf, size_t bufsz, size_t *len, struct kh_errbuf *e)
{
	if (kh_unhex(hex, buf, bufsz, len) != 0)
		return kh_err_set(e, KH_E_INTERNAL, "a self-test vector does not decode");
	return KH_OK;
}

const char *selftest_ossl_err(char *buf, size_t bufsz)
{
	unsigned long err, first = 0;

	while ((err = ERR_get_error()) != 0) {
		char tmp[256];

		ERR_error_string_n(err, tmp, sizeof(tmp));
		log_dbg("openssl: %s", tmp);
		if (first == 0)
			first = err;
	}
	if (first == 0)
		kh_strlcpy(buf, "no OpenSSL error recorded", bufsz);
	else
		ERR_error_string_n(first, buf, bufsz);
	return buf;
}

/* ---- the runner ---- */

/* Runs every entry in order; stops at the first failure (FIPS 140-2
 * §4.9.1: the module enters the error state), marking the rest not run.
 * *failed is the failing entry's index. Caller holds run_lock. */
static enum kh_err selftest_run_registry(struct svc *s, size_t *failed, struct kh_errbuf *e)
{
	struct svc_fips *f = s->fips;
	struct selftest_result res[SELFTEST_COUNT];
	size_t i;
	int r = KH_OK;

	memset(res, 0, sizeof(res));
	for (i = 0; i < SELFTEST_COUNT; i++) {
		const struct selftest_def *d = &selftest_registry[i];
		struct selftest_result *x = &res[i];
		struct selftest_run run;
		struct kh_errbuf why = { 0 };
		uint64_t t0;

		kh_strlcpy(x->id, d->id, sizeof(x->id));
		kh_strlcpy(x->type, d->type, sizeof(x->type));
		kh_strlcpy(x->description, d->description, sizeof(x->description));
		kh_strlcpy(x->source, d->source, sizeof(x->source));
		if (r != KH_OK) {
			snprintf(x->detail, sizeof(x->detail), "not run: %s failed", selftest_registry[*failed].id);
			continue;
		}
		memset(&run, 0, sizeof(run));
		run.s = s;
		run.f = f;
		run.corrupt = strcmp(f->corrupt_id, d->id) == 0 ? f->corrupt_idx : -1;
		if (run.corrupt >= 0)
			log_warn("fault injection: corrupting vector %d of self-test %s", run.corrupt, d->id);
		t0 = kh_now_mono_us();
		r = d->run(&run, &why);
		x->duration_us = kh_now_mono_us() - t0;
		x->passed = r == KH_OK;
		kh_strlcpy(x->detail, r == KH_OK ? run.summary : why.msg, sizeof(x->detail));
		if (r != KH_OK) {
			*failed = i;
			log_event(KH_LOG_ERR, KH_MSGID_FIPS_FAILURE, "FIPS self-test %s FAILED after %llu us: %s", d->id,
				  (unsigned long long)x->duration_us, why.msg);
			kh_err_set(e, KH_E_INTERNAL, "self-test %s failed: %s", d->id, why.msg);
		} else {
			log_info("FIPS self-test %s passed in %llu us", d->id, (unsigned long long)x->duration_us);
		}
	}
	pthread_mutex_lock(&f->lock);
	memcpy(f->results, res, sizeof(res));
	f->n_results = SELFTEST_COUNT;
	f->results_time_s = kh_now_real_s();
	pthread_mutex_unlock(&f->lock);
	return r;
}

enum kh_err selftest_run_powerup(struct svc *s, struct kh_errbuf *e)
{
	struct svc_fips *f = s->fips;
	size_t failed = 0;
	uint64_t t0 = kh_now_mono_us();
	int r;

	if (!selftest_fips_on(s)) {
		log_info("fips_mode = off: no power-up self-tests");
		atomic_store(&s->state, SVC_STATE_OPERATIONAL);
		return KH_OK;
	}
	atomic_store(&s->state, SVC_STATE_SELF_TEST);
	pthread_mutex_lock(&f->run_lock);
	r = selftest_run_registry(s, &failed, e);
	pthread_mutex_unlock(&f->run_lock);
	if (r == KH_OK && atomic_load(&f->provider_failed))
		r = kh_err_set(e, KH_E_INTERNAL, "the OpenSSL FIPS provider reported a failed self-test");
	if (r != KH_OK || atomic_load(&f->in_error)) {
		if (r == KH_OK)
			r = kh_err_set(e, KH_E_INTERNAL, "a conditional self-test failed during the power-up tests");
		atomic_store(&s->state, SVC_STATE_ERROR);
		atomic_store(&f->in_error, true);
		return r;
	}
	atomic_store(&s->state, SVC_STATE_OPERATIONAL);
	log_info("FIPS mode %s: all %d power-up self-tests passed in %llu us", svc_fips_mode_name(f->mode),
		 SELFTEST_COUNT, (unsigned long long)(kh_now_mono_us() - t0));
	return KH_OK;
}

/* ---- RunSelfTest and status ---- */

enum kh_err selftest_rerun(struct svc *s, const char *who, struct kh_errbuf *e)
{
	struct svc_fips *f = s->fips;
	size_t failed = 0;
	int r;

	if (!selftest_fips_on(s))
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "fips_mode is off: keyholdd runs no self-tests; set fips_mode = aligned (or validated) and restart");
	log_info("%s asked for the self-tests", who);
	pthread_mutex_lock(&f->run_lock);
	/* No cryptographic output while the tests run (FIPS 140-2 §4.9). */
	atomic_store(&s->state, SVC_STATE_SELF_TEST);
	r = selftest_run_registry(s, &failed, e);
	pthread_mutex_unlock(&f->run_lock);
	if (r != KH_OK) {
		char detail[KH_ERR_MSG_MAX];

		kh_strlcpy(detail, e != NULL ? e->msg : "a self-test failed", sizeof(detail));
		selftest_enter_error(s, selftest_registry[failed].id, detail);
		if (e != NULL)
			kh_err_clear(e);
		return kh_err_set(e, KH_E_INTERNAL,
				  "%s; keyholdd entered the ERROR state: it closes the token and exits with status 70",
				  detail);
	}
	if (!atomic_load(&f->in_error))
		atomic_store(&s->state, SVC_STATE_OPERATIONAL);
	return KH_OK;
}

uint64_t selftest_last_run_s(struct svc *s)
{
	struct svc_fips *f = s->fips;
	uint64_t t;

	if (f == NULL)
		return 0;
	pthread_mutex_lock(&f->lock);
	t = f->results_time_s;
	pthread_mutex_unlock(&f->lock);
	return t;
}

size_t selftest_results(struct svc *s, struct selftest_result out[SELFTEST_COUNT])
{
	struct svc_fips *f = s->fips;
	size_t n;

	pthread_mutex_lock(&f->lock);
	n = f->n_results;
	memcpy(out, f->results, n * sizeof(*out));
	pthread_mutex_unlock(&f->lock);
	return n;
}

bool selftest_module_validated(const struct svc *s)
{
	return s->fips->module_validated;
}

void selftest_counts(struct svc *s, struct selftest_counts *out)
{
	struct svc_fips *f = s->fips;

	out->pairwise_run = atomic_load(&f->pw_run);
	out->pairwise_failed = atomic_load(&f->pw_failed);
	out->rng_run = atomic_load(&f->rng_run);
	out->rng_failed = atomic_load(&f->rng_failed);
	out->verify_run = atomic_load(&f->ver_run);
	out->verify_failed = atomic_load(&f->ver_failed);
}
