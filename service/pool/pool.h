/* pool/pool.h: the worker threads that make every blocking call (token,
 * HTTP), so the event loop never waits (svc_pool.c). Knows nothing of
 * the service; the server, the expiry monitor and lifecycle queue on it. */
#ifndef POOL_POOL_H
#define POOL_POOL_H

#include <stdbool.h>

#include "kh_err.h"

struct event_base;
struct svc_pool;

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
/* Hands a job whose run returned false, but which another thread went on
 * with, to the loop for done(it), as if run had returned true (any thread). */
void svc_pool_complete(struct svc_pool *p, struct svc_pool_item *it);
/* Stops the workers after they finish the queue (svc_pool_free then only
 * delivers what is left; calling it again is fine). */
void svc_pool_join(struct svc_pool *p);
/* Jobs queued and not yet taken by a worker (lock-free). */
unsigned svc_pool_pending(const struct svc_pool *p);
/* Stops the workers after they finish the queue; completions not yet
 * delivered are delivered by the loop before it exits. */
void svc_pool_free(struct svc_pool *p);

#endif
