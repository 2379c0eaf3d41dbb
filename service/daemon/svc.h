/* svc: keyholdd's shared context and the seams between its parts: the
 * server (sockets, frames), the worker pool, dispatch and the handlers. */
#ifndef SVC_H
#define SVC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "hsm.h"
#include "kh_err.h"
#include "proto.h"
#include "config/config.h"
#include "access/access.h"

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
struct svc_expiry;

struct svc {
	struct svc_config *cfg;
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
	struct svc_pki *pki;          /* trustpoints, trust stores, state (svc_pki.h) */
	int exit_code;
	unsigned workers;             /* worker threads: min(workers, token sessions) */
	struct svc_fips *fips;        /* selftest.h: FIPS mode state */
	/* ---- security (issue 5) ---- */
	struct access_grants *grants;   /* per-key grants */
	struct audit *audit;          /* NULL: no audit log (unit tests only) */
	SSL_CTX *tls_ctx;             /* NULL: no TLS listener */
	struct svc_expiry *expiry;    /* revocation/revocation.h: the expiry monitor */
	struct store_dir *state_dir;  /* store/store_dir.h: state_dir, checked and locked */
};

/* A handler runs on a worker thread with a validated request. It fills
 * resp on success; on error it sets e and returns the code. */
typedef enum kh_err (*svc_handler_fn)(struct svc *s, const struct svc_principal *who,
				      union proto_req_body *req, union proto_resp_body *resp,
				      struct kh_errbuf *e);

/* ---- rpc/dispatch.c ---- */

/* Runs one decoded request to completion (deadline, role check, handler,
 * encoding) and returns the response frame. Never fails: errors become
 * error responses. Worker threads call this. */
void svc_dispatch(struct svc *s, const struct svc_principal *who, struct proto_req *req,
		  uint64_t deadline_us, uint8_t **frame, size_t *frame_len);
/* Appends a record to the audit log for a request answered outside
 * svc_dispatch (refused by a limit on the loop, undecodable). */
void svc_audit_record(struct svc *s, const struct svc_principal *who, const char *method, const char *object,
		      enum kh_err code, uint64_t duration_us, uint64_t count);
/* Encodes an error response frame; NULL on allocation failure. */
uint8_t *svc_error_frame(uint64_t id, enum kh_err code, const char *msg, size_t *len);

/* ---- net/svc_pool.c: worker threads ---- */

/* A job: a worker calls run(it) off the loop; when run returns true,
 * done(it) is then called on the loop thread (run returning false has
 * finished the job itself, and it may be gone). */
struct svc_pool_item {
	struct svc_pool_item *next;
	bool (*run)(struct svc_pool_item *it);
	void (*done)(struct svc_pool_item *it);
};

enum kh_err svc_pool_new(struct event_base *base, unsigned workers, struct svc_pool **out) KH_WUR;
/* Queues it for a worker (never blocks). */
void svc_pool_submit(struct svc_pool *p, struct svc_pool_item *it);
/* Stops the workers after they finish the queue; completions not yet
 * delivered are delivered by the loop before it exits. */
void svc_pool_free(struct svc_pool *p);

/* ---- net/svc_server.c ---- */

enum kh_err svc_server_new(struct svc *s, struct event_base *base, struct svc_server **out,
			   struct kh_errbuf *e) KH_WUR;
/* Stop accepting, finish in-flight requests, close connections; the loop
 * exits when done (or after a grace period). */
void svc_server_shutdown(struct svc_server *srv);
/* Serves a connected Unix stream socket as if accepted (SO_PEERCRED names
 * its peer); takes fd. For the whole-connection fuzzer. */
enum kh_err svc_server_adopt(struct svc_server *srv, int fd) KH_WUR;
/* Jobs on the workers not yet delivered back (housekeeping included). */
unsigned svc_server_inflight(const struct svc_server *srv);
void svc_server_free(struct svc_server *srv);

/* ---- lifecycle.c ---- */

/* Everything between the configuration (s->cfg, s->start_us set) and the
 * event loop: token, self-tests, state, workers, listeners, audit log.
 * On failure e says why; s->exit_code is 70 when a FIPS self-test failed.
 * svc_stop undoes whatever was started (also after a failed start). */
enum kh_err svc_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
/* The uid keyholdd serves as: [service] user's, else its own. State files
 * and the PIN file must belong to it or to root. */
enum kh_err svc_service_uid(const struct svc_config *cfg, uid_t *out, struct kh_errbuf *e) KH_WUR;
/* Opens and checks state_dir and every state file in it (store_dir.h),
 * and with lock takes the instance lock. */
enum kh_err svc_state_open(const struct svc_config *cfg, bool lock, struct store_dir **out,
			   struct kh_errbuf *e) KH_WUR;
void svc_stop(struct svc *s);

const char *svc_state_name(enum svc_state st);

#endif
