/* fips_int.h: state shared by the files of service/fips/: the FIPS
 * state hung off struct svc, one registry run, and the test functions the
 * registry lists. Not a public header. */
#ifndef FIPS_INT_H
#define FIPS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/provider.h>

#include "fips/fips.h"
#include "config/config.h"

/* The continuous RNG test compares 128-bit blocks (FIPS 140-2 §4.9.2 asks
 * for n >= 16 bits; 128 makes a false alarm impossible in practice). */
#define SELFTEST_RNG_BLOCK 16
/* How much of the previous C_GenerateRandom output is kept to compare. */
#define SELFTEST_RNG_PREV 64

/* One power-up test: a registry row. */
struct selftest_run;
typedef enum kh_err (*selftest_fn)(struct selftest_run *r, struct kh_errbuf *e);

struct selftest_def {
	const char *id;
	const char *type;
	const char *description;
	const char *source;      /* where the known answers come from */
	selftest_fn run;
};

/* The registry, in DESIGN §8 order (registry.c). */
extern const struct selftest_def selftest_registry[SELFTEST_COUNT];

/* One entry being run. */
struct selftest_run {
	struct svc *s;
	struct svc_fips *f;
	/* Fault injection (KEYHOLD_TESTING builds): the index of the vector or
	 * check of this entry to corrupt; -1: none. */
	int corrupt;
	char summary[160];       /* what passed, shown by `keyhold status` */
};

struct svc_fips {
	struct svc *s;
	enum svc_fips_mode mode;
	bool module_validated;        /* validated mode with the FIPS provider at status 1 */
	OSSL_PROVIDER *prov_main;     /* default or fips */
	OSSL_PROVIDER *prov_base;

	pthread_mutex_t lock;         /* results, the RNG block */
	pthread_mutex_t keys_lock;    /* the key set and its file */
	pthread_mutex_t run_lock;     /* one registry run at a time */
	struct selftest_result results[SELFTEST_COUNT];
	size_t n_results;
	uint64_t results_time_s;      /* when the last run finished (epoch seconds) */

	/* Conditional tests: how often each ran and failed. */
	_Atomic uint64_t pw_run, pw_failed;
	_Atomic uint64_t rng_run, rng_failed;
	_Atomic uint64_t ver_run, ver_failed;
	uint8_t rng_prev[SELFTEST_RNG_PREV];
	size_t rng_prev_len;

	/* ERROR state after start-up: raised from any thread, handled on the
	 * loop. */
	struct event *ev_error;
	void (*on_error)(void *arg); /* the daemon's reaction to ERROR, on the loop */
	void *on_error_arg;
	_Atomic bool in_error;

	/* The FIPS provider's own self-tests (validated mode). */
	_Atomic bool provider_failed;

	/* Keys made in FIPS mode: state_dir/fips-keys. */
	char *keys_path;
	char **keys;
	size_t n_keys, cap_keys;

	/* Fault injection: KEYHOLD_TEST_CORRUPT=<id>[:<index>]. */
	char corrupt_id[48];
	int corrupt_idx;
};

/* ---- helpers (registry.c) ---- */

/* True when this run corrupts its vector idx. */
bool selftest_corrupting(const struct selftest_run *r, int idx);
/* Flips the lowest bit of buf[0] when this run corrupts vector idx: every
 * test compares against its copy of the expected value, so a corrupted
 * vector must make the test fail. */
void selftest_corrupt(const struct selftest_run *r, int idx, uint8_t *buf, size_t len);
/* Decodes a hex vector into buf; INTERNAL when it does not fit or parse. */
enum kh_err selftest_unhex(const char *hex, uint8_t *buf, size_t bufsz, size_t *len,
			   struct kh_errbuf *e) KH_WUR;
/* Drains the OpenSSL error queue into the log and returns the first
 * reason, for messages. */
const char *selftest_ossl_err(char *buf, size_t bufsz);

/* ---- the tests ---- */

/* kat.c */
enum kh_err selftest_hmac_kat(struct selftest_run *r, struct kh_errbuf *e) KH_WUR;
enum kh_err selftest_sha2_kat(struct selftest_run *r, struct kh_errbuf *e) KH_WUR;
enum kh_err selftest_sigver_kat(struct selftest_run *r, struct kh_errbuf *e) KH_WUR;
enum kh_err selftest_drbg_kat(struct selftest_run *r, struct kh_errbuf *e) KH_WUR;
/* integrity.c */
enum kh_err selftest_integrity(struct selftest_run *r, struct kh_errbuf *e) KH_WUR;
/* critical.c */
enum kh_err selftest_critical(struct selftest_run *r, struct kh_errbuf *e) KH_WUR;
/* token.c */
enum kh_err selftest_token_health(struct selftest_run *r, struct kh_errbuf *e) KH_WUR;
enum kh_err selftest_token_rng(struct selftest_run *r, struct kh_errbuf *e) KH_WUR;
enum kh_err selftest_token_pairwise(struct selftest_run *r, struct kh_errbuf *e) KH_WUR;

/* ---- conditional.c ---- */
enum kh_err selftest_keygen_check(void *arg, struct hsm *h, const struct kh_key_info *k,
				  struct kh_errbuf *e);
enum kh_err selftest_rng_check(void *arg, const uint8_t *block, size_t len, struct kh_errbuf *e);

/* ---- keys.c ---- */
enum kh_err selftest_keys_load(struct svc_fips *f, const char *state_dir, struct kh_errbuf *e) KH_WUR;
void selftest_keys_free(struct svc_fips *f);

#endif
