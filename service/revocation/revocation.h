/* svc_rev: revocation checking (CRLs fetched over HTTP and cached, OCSP),
 * the HTTP client, certificate expiry monitoring with its notification
 * hook, and automatic renewal (docs/REVOCATION.md). The clock they judge
 * by is core/svc_clock.h. */
#ifndef REVOCATION_H
#define REVOCATION_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "kh_err.h"
#include "kh_rev.h"
#include "kh_types.h"
#include "core/svc.h"
#include "pki/pki.h"

/* The result of checking one certificate's chain (CheckCertificate, trust
 * store verification): the verdict and each certificate's status. */
/* One step of the policy as it was walked for a certificate: the method
 * ("crl", "ocsp", "none"), what it gave ("good", "revoked", "unknown",
 * "no answer") and from where or why. */
#define KH_REV_STEPS_MAX 12
struct kh_rev_step {
	char method[8];
	char result[12];
	char detail[256];
};

struct kh_cert_rev {
	struct kh_cert_info cert;
	struct kh_rev_step steps[KH_REV_STEPS_MAX];
	size_t n_steps;
	char cur[8];                       /* the method being tried (rev_check.c) */
	enum kh_rev_status status;
	char reason[40];                   /* revoked: "keyCompromise", ... */
	int64_t revoked_at;
	char method[8];                    /* "crl", "ocsp", "" */
	char source[KH_URL_MAX + 16];
	char detail[KH_REV_DETAIL_MAX];
};

struct kh_cert_check_resp {
	enum kh_rev_status status;
	char reason[40];
	char policy[KH_REVOCATION_MAX + 1];
	bool soft_fail;
	struct kh_cert_rev *certs;         /* owned */
	size_t n_certs;
	char detail[KH_REV_DETAIL_MAX];
};

void kh_cert_check_resp_clear(struct kh_cert_check_resp *r);

struct event_base;
struct svc_config;

/* ---- http_client.c: libcurl, http:// only ---- */

enum kh_err svc_http_global_init(struct kh_errbuf *e) KH_WUR;
void svc_http_global_cleanup(void);
/* GET url (content_type NULL) or POST body as content_type, on the calling
 * (worker) thread, with [revocation]'s connect and total timeouts, at most
 * max bytes of answer, no proxy unless configured, redirects only to
 * http://. The answer must be HTTP 200. UNAVAILABLE (or
 * RESOURCE_EXHAUSTED past max) naming the URL and the reason. */
enum kh_err svc_http_fetch(const struct svc_config *cfg, const char *url, const char *content_type,
			   const uint8_t *body, size_t body_len, size_t max, struct kh_bytes *out,
			   struct kh_errbuf *e) KH_WUR;

/* ---- rev_check.c: the revocation policy engine ---- */

enum svc_rev_method { SVC_REV_CRL, SVC_REV_OCSP };

/* An ordered policy: the methods tried in turn; a trailing "none" makes
 * it soft (a certificate nothing answers for is accepted as unknown),
 * Cisco's `revocation-check crl ocsp none`. */
struct svc_rev_policy {
	enum svc_rev_method methods[2];
	size_t n;                       /* 0: policy "none" */
	bool soft;
	char text[KH_REVOCATION_MAX + 1];
	char ocsp_url[KH_URL_MAX + 1];  /* "": the certificate's AIA */
	char owner[KH_NAME_MAX + 32];   /* "trust store 'web'", for messages */
	X509 *responder;                /* borrowed; NULL: none (a trusted third-party OCSP responder) */
};

enum kh_err svc_rev_policy_make(const char *text, const char *ocsp_url, const char *owner, struct svc_rev_policy *out,
				struct kh_errbuf *e) KH_WUR;

/* Checks every certificate of chain (leaf first, trust anchor last; the
 * anchor itself is not checked) per p, each with its issuer: local CRLs
 * (imported into a store or given with --crl; borrowed, may be NULL) are
 * the crl method's first source and, under policy "none", the only one;
 * then the CRL cache and the distribution points; OCSP from the cache or
 * the responder. KH_OK whenever the check ran: out->status says what it
 * found. Takes the PKI lock for the caches and may wait on the network:
 * never call it with the lock held. */
enum kh_err svc_rev_check(struct svc *s, STACK_OF(X509) *chain, const struct svc_rev_policy *p,
			  STACK_OF(X509_CRL) *local, struct kh_cert_check_resp *out, struct kh_errbuf *e) KH_WUR;
/* One sentence about r for messages and logs. */
void svc_rev_summary(const struct kh_cert_check_resp *r, char *out, size_t outsz);

/* ---- expiry.c: the expiry monitor, its hook, renewal ---- */

/* Arms the monitor's libevent timer on base: a pass at start and every
 * [expiry] check_interval, each run on a worker of s->pool. */
enum kh_err svc_expiry_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
/* Loop thread, after a reload: the timer takes the new check_interval
 * (the next pass comes one interval from now). */
void svc_expiry_reschedule(struct svc *s);
/* After the pool has stopped: frees the timer and the monitor. */
void svc_expiry_stop(struct svc *s);

/* A certificate keyhold holds, as the expiry monitor sees it: its
 * description, who holds it ("trustpoint:web", "trustpoint-chain:web",
 * "trustpoint-ca:web", "truststore:s"), whole days to its notAfter
 * (negative once expired) and the notices sent about it. */
struct svc_exp_cert {
	struct kh_cert_info cert;
	char held_by[KH_HELD_BY_MAX][KH_HELD_BY_LEN];
	size_t n_held_by;
	int64_t days_left;
	int64_t last_notified;          /* 0: never */
	uint32_t notifications;
};

/* What one monitor pass did: the certificates it notified, one line per
 * renewal action and per error (at most KH_MONITOR_LINES_MAX each). */
struct svc_exp_report {
	struct svc_exp_cert *notified;  /* owned */
	size_t n_notified;
	char (*renewals)[KH_MONITOR_LINE_LEN]; /* owned */
	size_t n_renewals;
	char (*errors)[KH_MONITOR_LINE_LEN];   /* owned */
	size_t n_errors;
};

void svc_exp_report_clear(struct svc_exp_report *r);

/* The certificates keyhold holds (identity certificates, their chains,
 * trustpoint CAs, trust store CAs), soonest notAfter first, judged at now.
 * who: the principal asking (NULL: keyholdd itself); trustpoints whose
 * key who may not see are left out. *out is freed with free(). */
enum kh_err svc_expiry_survey(struct svc *s, const struct svc_principal *who, int64_t now,
			      struct svc_exp_cert **out, size_t *nout, struct kh_errbuf *e) KH_WUR;
/* ---- rev_known.c: what keyhold knows without fetching ---- */

/* A certificate held as held_by ("truststore:S", "trustpoint:T",
 * "trustpoint-chain:T", "trustpoint-ca:T") that a CRL imported into trust
 * store crl_store answers for, at the time asked. */
struct svc_rev_known {
	char fingerprint[KH_FP_HEX + 1];
	char held_by[KH_HELD_BY_LEN];
	char crl_store[KH_NAME_MAX + 1];
	bool revoked;
};
/* Every certificate keyhold holds that an imported CRL answers for at now
 * (revocation status from held CRLs only; nothing is fetched). *out is
 * freed with free(); certificates no CRL answers for are not listed. */
enum kh_err svc_revocation_known(struct svc *s, int64_t now, struct svc_rev_known **out, size_t *nout,
				 struct kh_errbuf *e) KH_WUR;

/* Runs the configured [expiry] hook for c with KEYHOLD_EVENT=event
 * ("expiring", "expired", "revoked", "revocation-unknown", "crl-stale")
 * and KEYHOLD_DETAIL=detail (may be NULL), and waits for it. */
void svc_expiry_hook(struct svc *s, const struct svc_exp_cert *c, const char *event, const char *detail);

/* ---- crl_store.c ---- */

/* Trust store store's trusted third-party OCSP responder certificate
 * (*out NULL when none; free with X509_free). Takes the PKI lock. */
enum kh_err svc_rev_store_responder(struct svc *s, const char *store, X509 **out, struct kh_errbuf *e) KH_WUR;

/* Verifies crl against the CAs of trust store store (its issuer must be
 * there and have signed it) and stores it as the store's full or delta CRL
 * from that issuer, source "import" or "fetched"; an older CRL than the
 * one held is FAILED_PRECONDITION. warn (of warnsz) gets a warning when
 * the CRL is past its nextUpdate, else "". Takes the PKI lock. */
enum kh_err svc_rev_crl_install(struct svc *s, const char *store, X509_CRL *crl, const char *source, char *warn,
				size_t warnsz, struct kh_errbuf *e) KH_WUR;

/* ---- rev_sched.c: the revocation scheduler ---- */

/* Arms its timer on base: a pass as soon as the loop runs, then whenever
 * one is due by keyhold's clock ([revocation] recheck_interval, or a CRL's
 * refresh point). */
enum kh_err svc_revsched_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
/* Loop thread, after a reload: the new interval, a pass at the next tick. */
void svc_revsched_reschedule(struct svc *s);
/* After the pool has stopped. */
void svc_revsched_stop(struct svc *s);
/* Any thread: a pass at the next tick (a certificate or CRL URL was added). */
void svc_revsched_poke(struct svc *s);
/* The states the scheduler recorded; the caller holds the PKI lock. *out
 * is freed with free(). */
struct store_revstate;
enum kh_err svc_rev_states_locked(struct svc *s, struct store_revstate **out, size_t *n,
				  struct kh_errbuf *e) KH_WUR;
/* The state recorded for the certificate with that SHA-256 fingerprint;
 * NULL when none. */
const struct store_revstate *svc_rev_state_find(const struct store_revstate *v, size_t n, const char *fingerprint);
/* The worst state (revoked, unknown, good, not-checked) recorded for any
 * of fps; NULL when none. */
const struct store_revstate *svc_rev_state_worst(const struct store_revstate *v, size_t n, const char *const *fps,
						 size_t nfp);

/* ---- renew_acme.c: automatic renewal of ACME trustpoints ---- */

/* Back-off after a failed renewal: 5 minutes, doubling, at most a day. */
#define SVC_RENEW_BACKOFF_MIN 300
#define SVC_RENEW_BACKOFF_MAX 86400
int64_t svc_renew_acme_backoff(uint32_t failures);

enum svc_renew_result { SVC_RENEW_DONE, SVC_RENEW_WAIT, SVC_RENEW_FAILED };
struct svc_renew_acme {
	enum svc_renew_result result;
	char serial[KH_SERIAL_HEX + 1];      /* DONE: the new certificate's */
	uint32_t failures;                   /* in a row, this one included */
	char error[KH_MONITOR_LINE_LEN];     /* FAILED, WAIT: the last failure */
	int64_t next;                        /* FAILED, WAIT: the earliest next attempt */
	bool has_cert;
	struct kh_cert_info cert;            /* the certificate before this attempt */
};
/* Renews ACME trustpoint tp (due at now): WAIT while the back-off of an
 * earlier failure runs, else an order (with a new key first when
 * regenerate), the outcome recorded in the trustpoint's ACME row. */
void svc_renew_acme(struct svc *s, const char *tp, bool regenerate, int64_t now, struct svc_renew_acme *out);

/* One monitor pass now (renewals, then notices), as the timer runs it;
 * out is cleared with svc_exp_report_clear. */
enum kh_err svc_expiry_pass(struct svc *s, struct svc_exp_report *out, struct kh_errbuf *e) KH_WUR;

#endif
