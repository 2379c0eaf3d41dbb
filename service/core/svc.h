/* core/svc.h: keyholdd's shared context (struct svc), who is asking
 * (struct svc_principal) and the service state. The leaf every service
 * folder may include: it knows the other folders' types by name only and
 * declares no function of theirs (service/CMakeLists.txt has the layers). */
#ifndef CORE_SVC_H
#define CORE_SVC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "hsm.h"
#include "kh_err.h"
#include "kh_pki.h"

struct svc_config;
struct access_grants;
struct store_dir;

enum svc_state { SVC_STATE_INIT, SVC_STATE_SELF_TEST, SVC_STATE_OPERATIONAL, SVC_STATE_ERROR };

/* Who is asking. Immutable once the connection is authenticated. */
struct svc_principal {
	bool is_unix;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char name[160];     /* "uid:1000" or "cert:spiffe://..." */
	unsigned roles;     /* enum svc_role bits */
	gid_t groups[64];   /* Unix: gid, then the peer's SO_PEERGROUPS */
	int n_groups;
};

struct event_base;
struct audit;
struct svc_pool;
struct svc_server;
struct svc_fips;
struct svc_pki;
struct cluster_job;
struct svc_revsched;
struct svc_metrics;
struct metrics_http;
struct acme_http01;
struct svc_cluster;

struct svc {
	/* Replaced whole on SIGHUP (daemon/reload.c); a replaced one stays
	 * valid until exit, so a reader may keep the pointer it loaded. */
	struct svc_config *_Atomic cfg;
	struct hsm *hsm;
	struct svc_pool *pool;
	struct svc_server *server;
	_Atomic int state;            /* enum svc_state */
	uint64_t start_us;
	_Atomic uint64_t requests;
	_Atomic unsigned connections;
	/* Digests fetched once (index: enum kh_digest); NULL where not allowed. */
	EVP_MD *md[KH_DIGEST_MAX + 1];
	OSSL_LIB_CTX *libctx;         /* NULL: OpenSSL's default context */
	struct svc_pki *pki;          /* trustpoints, trust stores, state (pki/pki_state.h) */
	int exit_code;
	unsigned workers;             /* worker threads: min(workers, token sessions) */
	struct svc_fips *fips;        /* fips/fips.h: FIPS mode state */
	/* ---- security (issue 5) ---- */
	struct access_grants *grants;   /* per-key grants */
	struct audit *audit;          /* NULL: no audit log (unit tests only) */
	SSL_CTX *tls_ctx;             /* NULL: no TLS listener */
	/* The client trust store's path validation settings (kh_pki.h), read
	 * with it at start-up; the TLS listener's verify callback borrows it. */
	struct kh_validation tls_validation;
	struct cluster_job *expiry;   /* revocation/expiry.c: the expiry monitor (cluster/cluster.h job) */
	struct svc_revsched *revsched; /* revocation/rev_sched.c: CRL refresh and revocation re-checks */
	struct store_dir *state_dir;  /* store/store_dir.h: state_dir, checked and locked */
	struct svc_metrics *metrics;  /* core/svc_metrics.h: counters; NULL in unit tests */
	struct acme_http01 *acme_http01; /* pki/acme.h: the [acme] http-01 responder; NULL: none */
	struct cluster_job *scep_poll; /* rpc/scep_poll.c: the SCEP poller and renewal timer; NULL: none */
	struct metrics_http *metrics_http; /* metrics/metrics.h: the token probe and [metrics] listener; NULL: none */
	struct svc_cluster *cluster;  /* cluster/cluster.h: this node, leases; NULL: none (unit tests) */
	uint64_t watchdog_us;         /* systemd's WATCHDOG_USEC (daemon/notify.c); 0: no watchdog */
	/* rpc/h_status.c: GetStatus's own state database connection, and
	 * the refresh of what it reads of the token, on a worker, before it
	 * is too old; NULL: GetStatus asks the token and reads through the
	 * PKI's and the cluster's connections (unit tests). */
	struct svc_status_refresh *status_refresh;
	/* Enrolls trustpoint tp as `trustpoint enroll` does (ACME: the order
	 * and the import, rollover included); *serial (n bytes) the new
	 * certificate's. The expiry monitor (revocation/) renews with it;
	 * the function lives in rpc/, above it, so daemon/ sets it at start.
	 * NULL: no automatic enrollment (unit tests). */
	enum kh_err (*enroll_auto)(struct svc *s, const char *tp, char *serial, size_t n, struct kh_errbuf *e);
	/* Tells the cluster's other nodes that topic changed ("key:NAME":
	 * generated or deleted; store.h's topics): svc_cluster_notify, which
	 * lives in cluster/, above keys/, so daemon/ sets it at start. NULL:
	 * nobody to tell (unit tests). */
	void (*announce)(struct svc *s, const char *topic);
};

/* "INIT", "SELF_TEST", "OPERATIONAL", "ERROR" (svc_state.c). */
const char *svc_state_name(enum svc_state st);

#endif
