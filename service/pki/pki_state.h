/* svc_pki: keyholdd's PKI subsystem: the state database, the lock that
 * serialises trustpoint and trust store changes, crash recovery of key
 * rollovers, orphaned-key reporting, and the PKI RPC handlers. */
#ifndef PKI_STATE_H
#define PKI_STATE_H

#include <pthread.h>

#include <openssl/x509.h>

#include "store/store.h"
#include "core/svc.h"
#include "pki/pki.h"

struct pki_signer;

struct svc_pki {
	struct store *store;
	/* Held across every trustpoint/trust store operation, token calls
	 * included, so that the database and the token change in one order. */
	pthread_mutex_t lock;
	char crash_at[64];     /* KEYHOLD_TESTING: KEYHOLD_TEST_CRASH_AT */
};

/* Opens the state database under cfg->state_dir and finishes what a crash
 * interrupted: destroys keys whose retirement was committed, forgets key
 * intents the token never acted on, and logs orphaned keys. */
enum kh_err svc_pki_open(struct svc *s, struct kh_errbuf *e) KH_WUR;
/* Opens a handle on the state database as [state] configures it (the
 * PKI state's and the audit anchor's). */
struct store;
enum kh_err svc_store_open(struct svc *s, struct store **out, struct kh_errbuf *e) KH_WUR;
void svc_pki_close(struct svc *s);

/* Keys keyhold generated for a trustpoint that the token holds and no
 * trustpoint references (for GetStatus). tok: the token's keys, as the
 * caller listed them; NULL when that listing failed (tok_err says why:
 * the answer when there are such keys to look for). Read through st (a
 * connection the caller serialises: GetStatus's own, which sees what is
 * committed and never waits for the PKI lock, held through a key
 * generation), or through the PKI state's under its lock when NULL. */
enum kh_err svc_pki_orphans(struct svc *s, struct store *st, const struct kh_key_list *tok,
			    const struct kh_errbuf *tok_err, char ***keys, size_t *n, struct kh_errbuf *e) KH_WUR;

/* DeleteKey: refuses (FAILED_PRECONDITION naming it) a key a trustpoint
 * uses; otherwise deletes it from the token and forgets its record. */
enum kh_err svc_pki_delete_key(struct svc *s, const char *name, struct kh_errbuf *e) KH_WUR;

/* The certificates and CRLs of trust store name (for TLS client
 * verification); NOT_FOUND when there is no such store. */
enum kh_err svc_pki_truststore_load(struct svc *s, const char *name, STACK_OF(X509) **certs,
				    STACK_OF(X509_CRL) **crls, struct kh_errbuf *e) KH_WUR;
/* The path validation settings of trust store name (kh_validation_default
 * when none were set). */
enum kh_err svc_pki_truststore_validation(struct svc *s, const char *name, struct kh_validation *out,
					  struct kh_errbuf *e) KH_WUR;

/* KEYHOLD_TESTING builds: when KEYHOLD_TEST_CRASH_AT names point, keyholdd
 * kills itself with SIGKILL there (the crash is real; only its timing is
 * chosen). A no-op otherwise. */
void svc_pki_crash_point(struct svc *s, const char *point);

/* Internal to pki/ and rpc/h_trustpoint.c: with the lock held and inside a
 * transaction, marks key retired when keyhold generated it for tp and no
 * trustpoint references it any more; appends it to retired. */
enum kh_err svc_pki_retire_if_unused(struct svc *s, const char *tp, const char *key,
				     char retired[][KH_NAME_MAX + 1], size_t *n_retired,
				     struct kh_errbuf *e) KH_WUR;
/* After the commit: destroys the retired keys in the token and forgets
 * them (failures are logged; startup retries). */
void svc_pki_destroy_retired(struct svc *s, char retired[][KH_NAME_MAX + 1], size_t n_retired);

/* ---- enrollment and key rollover (pki_enroll.c) ---- */

/* A new trustpoint's certificate lifetime when it names none. */
#define SVC_PKI_DEFAULT_DAYS 365
/* The most keys one trustpoint change retires (the size of the retired
 * arrays handed to svc_pki_commit). */
#define SVC_PKI_RETIRED_MAX 4

/* A signer for key with the digest the trustpoint or request asked for
 * (FIPS policy applied); svc_pki_signer_clear frees it. */
enum kh_err svc_pki_signer(struct svc *s, const char *key, enum kh_digest want, struct pki_signer *sg,
			   struct kh_errbuf *e) KH_WUR;
void svc_pki_signer_clear(struct pki_signer *sg);
/* When a trustpoint's certificate crosses renew_at (0: never). */
int64_t svc_pki_renew_after(int64_t not_before, int64_t not_after, uint32_t renew_at);
/* The token must hand back the key it was asked for (want); INTERNAL
 * otherwise, the new key left recorded as orphaned. */
enum kh_err svc_pki_check_new_key(const char *want, const struct kh_key_info *got, struct kh_errbuf *e) KH_WUR;
/* Makes leaf (issued for key) t's identity certificate with chain (issuer
 * first; may be NULL). When key is the rollover key, the trustpoint moves
 * to it and *old_key names the key it leaves. A pending CSR for key is
 * fulfilled and dropped. */
enum kh_err svc_pki_set_identity(struct store_tp *t, X509 *leaf, STACK_OF(X509) *chain, const char *key,
				 char old_key[KH_NAME_MAX + 1]) KH_WUR;
/* Writes t in one transaction (the lock held) and, in the same
 * transaction, retires the candidate keys that nothing references any
 * more (at most SVC_PKI_RETIRED_MAX). */
enum kh_err svc_pki_commit(struct svc *s, const struct store_tp *t, const char *const *cand, size_t n_cand,
			   char retired[][KH_NAME_MAX + 1], size_t *n_retired, struct kh_errbuf *e) KH_WUR;

/* What an enrollment or a key rollover did. */
struct svc_pki_enrolled {
	enum kh_enrollment enrollment;
	char key[KH_NAME_MAX + 1];          /* the key enrolled, or the new key */
	bool has_cert;                      /* self: the certificate issued */
	struct kh_cert_info cert;
	char *csr_pem;                      /* terminal: the CSR staged (owned); NULL otherwise */
	char retired_key[KH_NAME_MAX + 1];  /* "" when none */
};

void svc_pki_enrolled_clear(struct svc_pki_enrolled *o);
/* Enrolls trustpoint name (takes the PKI lock): self issues a certificate
 * now, terminal stages a CSR; during a rollover the new key is enrolled.
 * out is cleared by svc_pki_enrolled_clear, also on failure. */
enum kh_err svc_pki_enroll(struct svc *s, const char *name, struct svc_pki_enrolled *out,
			   struct kh_errbuf *e) KH_WUR;
/* Key rollover of trustpoint name (takes the PKI lock): a new key of type
 * (UNSPECIFIED: as the current key); self completes at once, terminal
 * stages its CSR and keeps the old key until the import. */
enum kh_err svc_pki_regenerate(struct svc *s, const char *name, enum kh_key_type type, struct svc_pki_enrolled *out,
			       struct kh_errbuf *e) KH_WUR;

/* ---- handlers (rpc/h_truststore.c) ---- */

#endif
