/* svc_pki: keyholdd's PKI subsystem: the state database, the lock that
 * serialises trustpoint and trust store changes, crash recovery of key
 * rollovers, orphaned-key reporting, and the PKI RPC handlers. */
#ifndef PKI_STATE_H
#define PKI_STATE_H

#include <pthread.h>

#include <openssl/x509.h>

#include "store/store.h"
#include "daemon/svc.h"

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
void svc_pki_close(struct svc *s);

/* Keys keyhold generated for a trustpoint that the token holds and no
 * trustpoint references (for GetStatus). */
enum kh_err svc_pki_orphans(struct svc *s, char ***keys, size_t *n, struct kh_errbuf *e) KH_WUR;

/* DeleteKey: refuses (FAILED_PRECONDITION naming it) a key a trustpoint
 * uses; otherwise deletes it from the token and forgets its record. */
enum kh_err svc_pki_delete_key(struct svc *s, const char *name, struct kh_errbuf *e) KH_WUR;

/* The certificates and CRLs of trust store name (for TLS client
 * verification); NOT_FOUND when there is no such store. */
enum kh_err svc_pki_truststore_load(struct svc *s, const char *name, STACK_OF(X509) **certs,
				    STACK_OF(X509_CRL) **crls, struct kh_errbuf *e) KH_WUR;

/* KEYHOLD_TESTING builds: when KEYHOLD_TEST_CRASH_AT names point, keyholdd
 * kills itself with SIGKILL there (the crash is real; only its timing is
 * chosen). A no-op otherwise. */
void svc_pki_crash_point(struct svc *s, const char *point);

/* Internal to pki_state.c / rpc/h_trustpoint.c: with the lock held and inside a
 * transaction, marks key retired when keyhold generated it for tp and no
 * trustpoint references it any more; appends it to retired. */
enum kh_err svc_pki_retire_if_unused(struct svc *s, const char *tp, const char *key,
				     char retired[][KH_NAME_MAX + 1], size_t *n_retired,
				     struct kh_errbuf *e) KH_WUR;
/* After the commit: destroys the retired keys in the token and forgets
 * them (failures are logged; startup retries). */
void svc_pki_destroy_retired(struct svc *s, char retired[][KH_NAME_MAX + 1], size_t n_retired);

/* ---- handlers (rpc/h_trustpoint.c, rpc/h_truststore.c) ---- */
#define SVC_PKI_HANDLER(fn)                                                                               \
	enum kh_err fn(struct svc *s, const struct svc_principal *who, union proto_req_body *req,          \
		       union proto_resp_body *resp, struct kh_errbuf *e)
SVC_PKI_HANDLER(svc_h_create_csr);
SVC_PKI_HANDLER(svc_h_create_trustpoint);
SVC_PKI_HANDLER(svc_h_list_trustpoints);
SVC_PKI_HANDLER(svc_h_get_trustpoint);
SVC_PKI_HANDLER(svc_h_delete_trustpoint);
SVC_PKI_HANDLER(svc_h_authenticate_trustpoint);
SVC_PKI_HANDLER(svc_h_enroll_trustpoint);
SVC_PKI_HANDLER(svc_h_import_certificate);
SVC_PKI_HANDLER(svc_h_export_trustpoint);
SVC_PKI_HANDLER(svc_h_regenerate_trustpoint);

#endif
