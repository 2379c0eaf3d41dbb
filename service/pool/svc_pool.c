/* svc_pool.c: the worker threads that make every token call, so a slow token
 * never blocks the event loop. Completions that need the loop go back to
 * it through one libevent event, raised only when the completion list
 * turns non-empty; most jobs finish on their worker. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pool/pool.h"

/* How long a worker that just finished, and whose fellows are all idle,
 * polls for the next job before it sleeps. With one client at a time the
 * next request comes about a round trip later; catching it saves a futex
 * wake-up on each request (DESIGN §10: latency at concurrency 1). */
#define SVC_POOL_SPIN_US 60

struct svc_pool {
	pthread_t *threads;
	unsigned n_threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct svc_pool_item *head, *tail;
	unsigned queued;
	bool stopping;
	_Atomic unsigned pending;       /* queued, readable without the lock */
	_Atomic unsigned busy;          /* workers running a job */
	_Atomic unsigned spinning;      /* workers polling instead of sleeping */

	pthread_mutex_t done_lock;
	struct svc_pool_item *dhead, *dtail;
	struct event *done_ev;
};

static void svc_pool_deliver(struct svc_pool *p)
{
	struct svc_pool_item *it, *next;

	pthread_mutex_lock(&p->done_lock);
	it = p->dhead;
	p->dhead = p->dtail = NULL;
	pthread_mutex_unlock(&p->done_lock);
	for (; it != NULL; it = next) {
		next = it->next;
		it->next = NULL;
		it->done(it);
	}
}

static void svc_pool_done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	svc_pool_deliver(arg);
}

/* Polls for work instead of sleeping, but only while no other worker is
 * busy: then both cores have work and spinning would take one from it.
 * Submitters do not wake sleepers while someone spins; a spinner that gives
 * up looks at the queue under the lock before it sleeps, so nothing waits
 * unseen. */
static void svc_pool_spin(struct svc_pool *p)
{
	uint64_t end;
	unsigned n = 0;

	if (atomic_load(&p->pending) > 0 || atomic_load(&p->busy) > 0)
		return;
	atomic_fetch_add(&p->spinning, 1);
	end = kh_now_mono_us() + SVC_POOL_SPIN_US;
	while (atomic_load(&p->pending) == 0 && atomic_load(&p->busy) == 0) {
		if ((++n & 63) == 0 && kh_now_mono_us() >= end)
			break;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
	atomic_fetch_sub(&p->spinning, 1);
}

static void *svc_pool_main(void *arg)
{
	struct svc_pool *p = arg;

	for (;;) {
		struct svc_pool_item *it;
		bool to_loop;

		svc_pool_spin(p);
		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		it = p->head;
		if (it == NULL) {
			pthread_mutex_unlock(&p->lock);
			break; /* stopping and the queue is empty */
		}
		p->head = it->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
		atomic_fetch_sub(&p->pending, 1);
		atomic_fetch_add(&p->busy, 1);
		pthread_mutex_unlock(&p->lock);

		it->next = NULL;
		to_loop = it->run(it); /* true: the loop must finish it */
		atomic_fetch_sub(&p->busy, 1);
		if (to_loop)
			svc_pool_complete(p, it);
	}
	return NULL;
}

void svc_pool_complete(struct svc_pool *p, struct svc_pool_item *it)
{
	bool was_empty;

	it->next = NULL;
	pthread_mutex_lock(&p->done_lock);
	was_empty = p->dhead == NULL;
	if (p->dtail != NULL)
		p->dtail->next = it;
	else
		p->dhead = it;
	p->dtail = it;
	pthread_mutex_unlock(&p->done_lock);
	if (was_empty)
		event_active(p->done_ev, EV_READ, 0);
}

enum kh_err svc_pool_new(struct event_base *base, unsigned workers, struct svc_pool **out)
{
	struct svc_pool *p;
	unsigned i;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pthread_mutex_init(&p->done_lock, NULL);
	p->done_ev = event_new(base, -1, EV_PERSIST, svc_pool_done_cb, p);
	p->threads = calloc(workers, sizeof(*p->threads));
	if (p->done_ev == NULL || p->threads == NULL) {
		svc_pool_free(p);
		return KH_E_RESOURCE_EXHAUSTED;
	}
	for (i = 0; i < workers; i++) {
		if (pthread_create(&p->threads[i], NULL, svc_pool_main, p) != 0) {
			log_err("cannot start worker %u", i);
			svc_pool_free(p);
			return KH_E_RESOURCE_EXHAUSTED;
		}
		p->n_threads++;
	}
	*out = p;
	return KH_OK;
}

void svc_pool_submit(struct svc_pool *p, struct svc_pool_item *it)
{
	it->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail != NULL)
		p->tail->next = it;
	else
		p->head = it;
	p->tail = it;
	p->queued++;
	atomic_fetch_add(&p->pending, 1);
	/* A spinning worker takes it without a wake-up (see svc_pool_spin). */
	if (atomic_load(&p->spinning) == 0)
		pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void svc_pool_join(struct svc_pool *p)
{
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	p->n_threads = 0;
}

void svc_pool_free(struct svc_pool *p)
{
	if (p == NULL)
		return;
	svc_pool_join(p);
	if (p->done_ev != NULL) {
		svc_pool_deliver(p);
		event_free(p->done_ev);
	}
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->done_lock);
	free(p);
}

unsigned svc_pool_pending(const struct svc_pool *p)
{
	return p != NULL ? atomic_load(&p->pending) : 0;
}
