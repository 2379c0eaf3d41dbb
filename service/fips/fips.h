/* fips.h: FIPS mode (DESIGN §8): the service's OpenSSL library context and
 * providers, the ordered power-up self-test registry, the conditional tests
 * (pairwise consistency, continuous RNG, verify-before-release), the ERROR
 * state, and which keys were made in FIPS mode. */
#ifndef FIPS_H
#define FIPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "hsm.h"
#include "kh_err.h"
#include "kh_types.h"
#include "core/svc.h"

/* keyholdd's exit status when a self-test fails or FIPS mode cannot start
 * (EX_SOFTWARE): only a restart, which reruns the tests, leaves ERROR. */
#define SELFTEST_EXIT_ERROR 70

/* The number of power-up self-tests in the registry. */
#define SELFTEST_COUNT 9

struct event_base;

/* Creates s->libctx with the providers fips_mode calls for and the FIPS
 * state (s->fips). validated: the self-test callback is registered, then
 * OpenSSL's FIPS provider is loaded with default properties "fips=yes";
 * a missing provider or a status other than 1 is FAILED_PRECONDITION whose
 * message starts with "FIPS_PROVIDER_UNAVAILABLE". Call before the digests
 * are fetched. */
enum kh_err selftest_init(struct svc *s, struct kh_errbuf *e) KH_WUR;
/* Frees what selftest_init made (s->libctx included). Call after the token
 * is closed. */
void selftest_free(struct svc *s);
/* True in fips_mode aligned or validated. */
bool selftest_fips_on(const struct svc *s);

/* Registers the conditional tests with the token (keygen pairwise check,
 * continuous RNG test) and enters ERROR when a token call answers
 * CKR_FIPS_SELF_TEST_FAILED. No-op with fips_mode = off. */
void selftest_install_hooks(struct svc *s);
/* Runs the power-up registry in order (state SELF_TEST). KH_OK: every
 * entry passed and the state is OPERATIONAL. Otherwise the state is ERROR,
 * the failing entry is logged and e names it. With fips_mode = off nothing
 * runs (the state becomes OPERATIONAL). */
enum kh_err selftest_run_powerup(struct svc *s, struct kh_errbuf *e) KH_WUR;
/* Lets a failure after start-up stop the service: on_error(arg) runs on
 * base's loop thread once ERROR is entered (the daemon passes the server's
 * shutdown; FIPS code never calls into the server itself). Exit status 70. */
enum kh_err selftest_attach_loop(struct svc *s, struct event_base *base, void (*on_error)(void *arg),
				 void *arg) KH_WUR;
/* Enters ERROR from any thread: logs the failing test, refuses every
 * cryptographic output from now on and asks the loop to shut down; main()
 * then closes the token (cleansing the PIN) and exits with status 70. */
void selftest_enter_error(struct svc *s, const char *test_id, const char *detail);

/* Writes the software-integrity sidecar of the running executable
 * (keyholdd --fips-install); prints where to out. */
enum kh_err selftest_integrity_install(FILE *out, struct kh_errbuf *e) KH_WUR;
/* The software-integrity comparison alone (keyholdd --check in FIPS mode),
 * in libctx (NULL: the default one): KH_OK when the sidecar matches. */
enum kh_err selftest_integrity_check(OSSL_LIB_CTX *libctx, struct kh_errbuf *e) KH_WUR;

/* Verify-before-release (conditional test): in FIPS mode checks sig over
 * op's input with pkey (borrowed) before the signature may leave keyholdd;
 * a failure enters ERROR. KH_OK without checking when FIPS mode is off. */
enum kh_err selftest_release_signature(struct svc *s, EVP_PKEY *pkey, const struct hsm_sign_op *op,
				       const uint8_t *sig, size_t sig_len, struct kh_errbuf *e) KH_WUR;
/* Verifies sig (DER for ECDSA, raw for RSA and Ed25519) over in: the digest
 * of d for RSA (PKCS#1 v1.5 or PSS, salt = hash length) and ECDSA, the
 * message for Ed25519. KH_OK or INTERNAL naming what failed. */
enum kh_err selftest_verify(OSSL_LIB_CTX *libctx, EVP_PKEY *pkey, enum kh_digest d, enum kh_padding p,
			    const uint8_t *in, size_t in_len, const uint8_t *sig, size_t sig_len,
			    struct kh_errbuf *e) KH_WUR;

/* Which keys were made in FIPS mode (state_dir/fips-keys). */
void selftest_key_generated(struct svc *s, const char *name);
void selftest_key_deleted(struct svc *s, const char *name);
bool selftest_key_is_fips(struct svc *s, const char *name);

/* One power-up self-test's last result: the registry entry and how it went. */
struct selftest_result {
	char id[40];
	char type[24];                /* kat, integrity, policy, token */
	char description[128];
	char source[96];              /* where the vectors come from */
	bool passed;
	uint64_t duration_us;
	char detail[160];             /* what passed, or why not */
};

/* RunSelfTest: reruns the power-up registry for who (a name for the log).
 * FAILED_PRECONDITION with fips_mode = off; a failure enters ERROR and is
 * INTERNAL naming the test. */
enum kh_err selftest_rerun(struct svc *s, const char *who, struct kh_errbuf *e) KH_WUR;
/* The last run's results, in registry order, into out; returns how many
 * (0 before the first run). */
size_t selftest_results(struct svc *s, struct selftest_result out[SELFTEST_COUNT]);
/* When the last registry run finished (seconds since the epoch; 0: none). */
uint64_t selftest_last_run_s(struct svc *s);
/* validated mode with the FIPS provider at status 1. */
bool selftest_module_validated(const struct svc *s);

/* How often each conditional test ran and failed. */
struct selftest_counts {
	uint64_t pairwise_run, pairwise_failed;
	uint64_t rng_run, rng_failed;
	uint64_t verify_run, verify_failed;
};

void selftest_counts(struct svc *s, struct selftest_counts *out);

#endif
