/* svc_server.c: the Unix socket and TLS listeners and their connections: peer
 * credentials (SO_PEERCRED, or a verified client certificate), frame
 * reading with the cap checked before anything is buffered for the body,
 * jobs to the worker pool, responses written in completion order
 * (pipelined, out of order), limits (connections, in flight, idle and
 * handshake timeouts, per-principal rate), and graceful shutdown. */
#include <errno.h>
#include <stddef.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "audit/audit.h"
#include "kh_log.h"
#include "kh_util.h"
#include "core/svc.h"
#include "core/svc_metrics.h"
#include "access/access.h"
#include "rpc/dispatch.h"
#include "pool/pool.h"
#include "net/net.h"
#include "net/tls.h"
#include "kh_text.h"

/* Stop reading from a peer whose unread responses pass this. */
#define SVC_OUT_HIGH (8u << 20)
#define SVC_GRACE_S 10
/* Rate buckets kept (principals seen); idle full ones are dropped past it. */
#define SVC_BUCKETS_MAX 4096
#define SVC_BUCKET_HASH 256
/* Bytes of unfinished frames buffered across all connections (at least
 * one frame_max): a frame that would pass it closes its connection. */
#define SVC_BUFFERED_MAX (64u << 20)
/* Memory given back to the kernel (malloc_trim) once this much buffered
 * frame data has been freed since the last time. */
#define SVC_TRIM_AFTER (1u << 20)
/* Out of descriptors: accepting pauses this long (milliseconds), the
 * line saying so is logged at most every SVC_EMFILE_LOG_S seconds. */
#define SVC_EMFILE_PAUSE_MS 200
#define SVC_EMFILE_LOG_S 10
/* Descriptors keyholdd needs besides its connections (token, audit log,
 * state files, listeners, the loop's and workers' own). */
#define SVC_FD_OVERHEAD 64
/* A request of an in-place method (svc_inline_method) whose runs have
 * lately taken less than [service] inline_max_us (the token's mechanism
 * latency plus keyholdd's own work, measured per method: an EWMA of
 * svc_dispatch's wall time) runs in place on the loop thread: the hand-off
 * to a worker and back would cost more than the call. Slower ones (a TPM:
 * milliseconds) and methods not yet measured go to the workers, so a slow
 * token never holds the loop for long. */
/* Runs of a method on the workers before it may run in place. */
#define SVC_INLINE_WARMUP 8u
/* [service] loops = 0 (one per CPU) makes at most this many. */
#define SVC_LOOPS_AUTO_MAX 16u
/* Supplementary groups read per Unix peer (struct svc_principal holds 64). */
#define SVC_PEER_GROUPS_MAX 64

/* A peer that holds no role may call nothing; it is held to this rate even
 * when [service] rate is 0 (no limit), so that its refusals cost keyholdd
 * and the audit log little (issue 13 item 4). */
#define SVC_NOROLE_RATE 5u
#define SVC_NOROLE_BURST 10u

/* A per-principal token bucket (config: rate, rate_burst). Refused
 * requests are put on record once a second per principal with a count,
 * so a flood cannot fill the audit log faster than the limit allows. */
struct svc_bucket {
	struct svc_bucket *next;
	char name[160];
	double tokens;
	unsigned rate, burst;           /* requests/s and bucket size */
	bool norole;                    /* the principal's role-less connections */
	uint64_t last_us;
	unsigned refs;                  /* connections of this principal */
	uint64_t refused;               /* refused and not yet on record */
	uint64_t last_record_us;
	char refused_method[48];
};

/* Event loops that serve Unix connections ([service] loops, DESIGN §10):
 * each connection is given to one for its whole life, and its quick
 * requests run in place on that loop's thread (svc_run_inline). Clients
 * on different loops are then served at once, each in place, where one
 * loop thread answering every connection had to hand a second request in
 * flight to a worker and back (a cross-CPU wake-up each way) to use
 * another core (docs/PERFORMANCE.md: +20% P-256 signatures at 8
 * connections). The main loop keeps the listeners, TLS connections,
 * signals, timers and the workers' completions. */
struct svc_shard {
	struct svc_server *srv;
	struct event_base *base;
	pthread_t thread;
	bool started;
	_Atomic bool running;           /* its thread runs the loop */
	_Atomic unsigned inflight;      /* its connections' requests in flight */
	unsigned n_conns;               /* under srv->lock */
};

/* The loop this thread runs; NULL on the main loop and elsewhere. */
static _Thread_local struct svc_shard *svc_cur_shard;

/* A connection belongs to its loop's thread (the main loop's, or a
 * shard's), except what workers touch when they answer directly
 * (svc_job_run): the atomics below, and the bufferevent's output under its
 * lock (Unix connections are made BEV_OPT_THREADSAFE; a job holds a
 * reference on its bufferevent). What connections share (the list, the
 * rate buckets, the buffered-bytes budget) is under srv->lock. */
struct svc_conn {
	struct svc_server *srv;
	struct svc_shard *shard;        /* NULL: served by the main loop */
	struct bufferevent *bev;        /* NULL once closed */
	struct svc_principal who;
	_Atomic unsigned refs;          /* the socket + one per job */
	_Atomic unsigned inflight;
	_Atomic bool closed;            /* set under the bufferevent lock */
	_Atomic bool out_paused;
	_Atomic bool half_closed;       /* peer sent EOF; answer, then close */
	bool direct;                    /* workers write answers themselves */
	size_t frame_cap;
	size_t reserved;                /* srv->buffered held for the frame being read */
	bool read_wm;                   /* a read low watermark is set (a frame's rest awaited) */
	uint64_t serial;
	struct svc_conn *prev, *next;
	bool tls;
	bool authed;                    /* TLS: the handshake and verification are done */
	struct event *hs_timer;         /* TLS handshake timeout */
	/* TLS handshake, before the bufferevent exists: each step
	 * (SSL_do_handshake, whose CertificateVerify the token signs) runs on
	 * a worker, so a slow token (a TPM: milliseconds) never holds the
	 * loop; between steps the loop waits for the socket (hs_ev). */
	SSL *hs_ssl;
	evutil_socket_t hs_fd;
	struct event *hs_ev;
	struct svc_pool_item hs_item;
	bool hs_running;                /* a step is on a worker: the SSL is its */
	bool hs_queued;                 /* waiting for a worker slot (srv->hs_wait) */
	struct svc_conn *hs_next;
	bool hs_dead;                   /* closed while a step ran: the step's end frees it */
	int hs_rc, hs_err;              /* the step's SSL_do_handshake and SSL_get_error */
	unsigned long hs_errcode;       /* ERR_get_error after a failed step */
	struct svc_bucket *bucket;      /* NULL: no rate limit */
};

struct svc_job {
	struct svc_pool_item item;      /* first: the pool hands this back */
	struct svc_conn *conn;
	struct bufferevent *bev;        /* referenced while the job lives */
	struct proto_req req;
	uint64_t deadline_us;
	uint8_t *frame;
	size_t frame_len;
	struct audit_waiter durable;    /* sync = always: the answer waits for its record */
};

struct svc_server {
	struct svc *s;
	struct event_base *base;
	/* conns, n_conns, the shards' n_conns, buckets, n_buckets, buffered,
	 * freed: shared by the loops. Recursive: a loop closes connections
	 * while it walks the list. */
	pthread_mutex_t lock;
	struct svc_shard *shards;
	unsigned n_shards;
	struct evconnlistener *listener;
	struct event *ev_term, *ev_int, *ev_grace;
	struct svc_conn *conns;
	unsigned n_conns;
	_Atomic unsigned inflight;      /* workers finish jobs too */
	uint64_t next_serial;
	_Atomic bool draining;
	char *socket_path;
	struct evconnlistener *tls_listener;
	struct event *ev_tick;          /* housekeeping, once a second */
	bool tick_pending;              /* an audit_tick job is queued */
	struct svc_pool_item tick_item;
	struct svc_bucket *buckets[SVC_BUCKET_HASH];
	unsigned n_buckets;
	size_t buffered;                /* sum of the connections' reserved */
	size_t buffered_max;
	size_t freed;                   /* frame bytes freed since the last trim */
	int reserve_fd;                 /* given up to accept-and-close at EMFILE */
	struct event *ev_resume;        /* re-enables the listeners after EMFILE */
	uint64_t accept_err_logged_us;
	uint64_t accept_errs;           /* accept errors not yet logged */
	uint64_t accept_shed;           /* connections accepted and closed */
	/* Handshake steps on the workers at once, at most hs_cap (one worker
	 * fewer than there are: requests of connected clients always find
	 * one); the others wait in hs_wait, oldest first. */
	unsigned hs_steps, hs_cap;
	struct svc_conn *hs_wait, *hs_wait_tail;
	/* Per method: EWMA of the run time (microseconds, x16) and runs seen;
	 * written by workers and the loop, read by the loop (relaxed). */
	_Atomic uint32_t run_ewma[PROTO_M_COUNT];
	_Atomic uint32_t run_seen[PROTO_M_COUNT];
	uint32_t inline_us;             /* [service] inline_max_us (0: never in place) */
};

static void svc_conn_close(struct svc_conn *c);
static void svc_server_maybe_finish(struct svc_server *srv);
static void svc_conn_read_cb(struct bufferevent *bev, void *arg);
static void svc_tls_connected(struct svc_conn *c);
static void svc_refuse(evutil_socket_t fd, const char *msg);
static void svc_accept_error_cb(struct evconnlistener *l, void *arg);

/* ---- per-principal rate ---- */

static unsigned svc_bucket_hash(const char *s)
{
	unsigned h = 5381;

	while (*s != '\0')
		h = h * 33 + (unsigned char)*s++;
	return h % SVC_BUCKET_HASH;
}

static void svc_bucket_flush(struct svc_server *srv, struct svc_bucket *b, uint64_t now)
{
	struct svc_principal who;

	if (b->refused == 0)
		return;
	memset(&who, 0, sizeof(who));
	kh_strlcpy(who.name, b->name, sizeof(who.name));
	svc_audit_record(srv->s, &who, b->refused_method, NULL, KH_E_RESOURCE_EXHAUSTED, 0, b->refused);
	b->refused = 0;
	b->last_record_us = now;
}

static void svc_bucket_refill(struct svc_bucket *b, uint64_t now)
{
	b->tokens += (double)(now - b->last_us) * b->rate / 1e6;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
	b->last_us = now;
}

/* Drops buckets no connection uses and that are full again (they hold no
 * state worth keeping), once the table is large. */
static void svc_buckets_trim(struct svc_server *srv, uint64_t now)
{
	unsigned i;

	for (i = 0; i < SVC_BUCKET_HASH && srv->n_buckets > SVC_BUCKETS_MAX / 2; i++) {
		struct svc_bucket **pp = &srv->buckets[i];

		while (*pp != NULL) {
			struct svc_bucket *b = *pp;

			svc_bucket_refill(b, now);
			if (b->refs == 0 && b->refused == 0 && b->tokens >= b->burst) {
				*pp = b->next;
				free(b);
				srv->n_buckets--;
			} else {
				pp = &b->next;
			}
		}
	}
}

static struct svc_bucket *svc_bucket_get(struct svc_server *srv, const char *name, bool norole, unsigned rate,
					  unsigned burst)
{
	unsigned h = svc_bucket_hash(name);
	struct svc_bucket *b;
	uint64_t now = kh_now_mono_us();

	for (b = srv->buckets[h]; b != NULL; b = b->next)
		if (b->norole == norole && strcmp(b->name, name) == 0)
			break;
	if (b == NULL) {
		if (srv->n_buckets >= SVC_BUCKETS_MAX)
			svc_buckets_trim(srv, now);
		if (srv->n_buckets >= SVC_BUCKETS_MAX)
			return NULL; /* refuse the connection rather than forget limits */
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			return NULL;
		kh_strlcpy(b->name, name, sizeof(b->name));
		b->norole = norole;
		b->rate = rate;
		b->burst = burst;
		b->tokens = burst;
		b->last_us = now;
		b->next = srv->buckets[h];
		srv->buckets[h] = b;
		srv->n_buckets++;
	}
	b->refs++;
	return b;
}

/* Takes one token; false when the principal is over its rate. */
static bool svc_bucket_take(struct svc_server *srv, struct svc_bucket *b, const char *method)
{
	uint64_t now = kh_now_mono_us();
	bool ok = false;

	pthread_mutex_lock(&srv->lock);
	svc_bucket_refill(b, now);
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		ok = true;
	} else {
		b->refused++;
		kh_strlcpy(b->refused_method, method != NULL ? method : "-", sizeof(b->refused_method));
		if (now - b->last_record_us >= 1000000u)
			svc_bucket_flush(srv, b, now);
	}
	pthread_mutex_unlock(&srv->lock);
	return ok;
}

/* The bucket c's principal draws from: [service] rate for a peer with a
 * role (none when rate is 0); for a peer with none, SVC_NOROLE_RATE or the
 * configured rate if lower, in a bucket of its own (the same uid may hold
 * a role on another connection, with other groups).
 * RESOURCE_EXHAUSTED when the bucket table is full. */
static enum kh_err svc_conn_bucket(struct svc_server *srv, struct svc_conn *c)
{
	const struct svc_config *cfg = srv->s->cfg;
	unsigned rate = cfg->rate, burst = cfg->rate_burst;

	if (c->who.roles != 0) {
		if (rate == 0)
			return KH_OK;
		pthread_mutex_lock(&srv->lock);
		c->bucket = svc_bucket_get(srv, c->who.name, false, rate, burst);
	} else {
		if (rate == 0 || rate > SVC_NOROLE_RATE) {
			rate = SVC_NOROLE_RATE;
			burst = SVC_NOROLE_BURST;
		}
		pthread_mutex_lock(&srv->lock);
		c->bucket = svc_bucket_get(srv, c->who.name, true, rate, burst);
	}
	pthread_mutex_unlock(&srv->lock);
	return c->bucket != NULL ? KH_OK : KH_E_RESOURCE_EXHAUSTED;
}

/* A bucket taken by svc_conn_bucket for a connection that was not made. */
static void svc_conn_bucket_drop(struct svc_conn *c)
{
	if (c->bucket == NULL)
		return;
	pthread_mutex_lock(&c->srv->lock);
	c->bucket->refs--;
	pthread_mutex_unlock(&c->srv->lock);
	c->bucket = NULL;
}

/* ---- connection lifetime ---- */

/* c's loop: the frame c was reading is done or abandoned. */
static void svc_conn_release(struct svc_conn *c)
{
	if (c->reserved == 0)
		return;
	pthread_mutex_lock(&c->srv->lock);
	c->srv->buffered -= c->reserved;
	c->srv->freed += c->reserved;
	pthread_mutex_unlock(&c->srv->lock);
	c->reserved = 0;
}

/* c's loop: holds room for a frame of len bytes whose header has come
 * and whose body has not; false when all connections together would
 * buffer more than buffered_max. */
static bool svc_conn_reserve(struct svc_conn *c, size_t len)
{
	struct svc_server *srv = c->srv;
	bool ok = false;

	if (c->reserved == len)
		return true;
	svc_conn_release(c);
	pthread_mutex_lock(&srv->lock);
	if (len <= srv->buffered_max - srv->buffered) {
		srv->buffered += len;
		c->reserved = len;
		ok = true;
	}
	pthread_mutex_unlock(&srv->lock);
	return ok;
}

/* Any thread: the last reference frees c. */
static void svc_conn_unref(struct svc_conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) > 1)
		return;
	free(c);
}

static void svc_frame_free_cb(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)(uintptr_t)data);
}

/* The peer is not reading its answers: stop taking requests from it until
 * it does (the write callback resumes). Any thread, bev locked or owned. */
static void svc_conn_backpressure(struct svc_conn *c, struct bufferevent *bev)
{
	if (atomic_load(&c->out_paused) || evbuffer_get_length(bufferevent_get_output(bev)) <= SVC_OUT_HIGH)
		return;
	atomic_store(&c->out_paused, true);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setwatermark(bev, EV_WRITE, SVC_OUT_HIGH / 2, 0);
}

/* Takes frame. Loop thread. */
static void svc_conn_send(struct svc_conn *c, uint8_t *frame, size_t len)
{
	struct evbuffer *out;

	if (c->bev == NULL || frame == NULL) {
		free(frame);
		return;
	}
	out = bufferevent_get_output(c->bev);
	if (evbuffer_add_reference(out, frame, len, svc_frame_free_cb, NULL) != 0) {
		free(frame);
		svc_conn_close(c);
		return;
	}
	svc_conn_backpressure(c, c->bev);
}

static void svc_conn_send_error(struct svc_conn *c, uint64_t id, enum kh_err code, const char *msg)
{
	size_t len = 0;
	uint8_t *f = svc_error_frame(id, code, msg, &len);

	if (f == NULL) {
		svc_conn_close(c);
		return;
	}
	svc_conn_send(c, f, len);
}

static void svc_conn_close(struct svc_conn *c)
{
	struct svc_server *srv = c->srv;

	if (atomic_load(&c->closed) || (c->bev == NULL && c->hs_ssl == NULL))
		return;
	if (c->bev != NULL) {
		/* Under the lock: a worker answering directly sees either an
		 * open connection for its whole write, or a closed one. */
		bufferevent_lock(c->bev);
		atomic_store(&c->closed, true);
		bufferevent_unlock(c->bev);
		bufferevent_free(c->bev);
		c->bev = NULL;
	} else {
		/* Mid-handshake: a step on a worker still uses the SSL; its
		 * end (svc_tls_hs_done) frees it then. */
		atomic_store(&c->closed, true);
		if (c->hs_ev != NULL) {
			event_free(c->hs_ev);
			c->hs_ev = NULL;
		}
		if (c->hs_running) {
			c->hs_dead = true; /* the SSL stays for the worker */
		} else {
			SSL_free(c->hs_ssl);
			evutil_closesocket(c->hs_fd);
			c->hs_ssl = NULL;
		}
	}
	if (c->hs_timer != NULL) {
		event_free(c->hs_timer);
		c->hs_timer = NULL;
	}
	svc_conn_release(c);
	pthread_mutex_lock(&srv->lock);
	if (c->bucket != NULL) {
		c->bucket->refs--;
		c->bucket = NULL;
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->n_conns--;
	if (c->shard != NULL)
		c->shard->n_conns--;
	pthread_mutex_unlock(&srv->lock);
	atomic_fetch_sub(&srv->s->connections, 1);
	log_dbg("connection %llu (%s) closed", (unsigned long long)c->serial, c->who.name);
	svc_conn_unref(c);
}

/* After the peer half-closed or during shutdown: close once nothing is
 * owed to the peer. */
static void svc_conn_close_if_done(struct svc_conn *c)
{
	if (c->bev == NULL && c->hs_ssl != NULL && atomic_load(&c->srv->draining) && !c->hs_running) {
		svc_conn_close(c); /* a handshake not finished is not owed anything */
		return;
	}
	if (c->bev == NULL || !(atomic_load(&c->half_closed) || atomic_load(&c->srv->draining)) ||
	    atomic_load(&c->inflight) > 0)
		return;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		svc_conn_close(c);
}

/* ---- jobs ---- */

/* Counts a request of c in flight (up) or no longer: on c, on the server
 * and on c's loop. Any thread. */
static void svc_inflight_add(struct svc_conn *c, bool up)
{
	if (up) {
		atomic_fetch_add(&c->inflight, 1);
		atomic_fetch_add(&c->srv->inflight, 1);
		if (c->shard != NULL)
			atomic_fetch_add(&c->shard->inflight, 1);
	} else {
		atomic_fetch_sub(&c->inflight, 1);
		atomic_fetch_sub(&c->srv->inflight, 1);
		if (c->shard != NULL)
			atomic_fetch_sub(&c->shard->inflight, 1);
	}
}

/* Worker thread: hands the answer to the peer. With nothing queued before
 * it, one non-blocking send() straight from the worker saves the hop back
 * to the loop (DESIGN §10 latency); what the socket does not take, and
 * answers behind queued output, go to the output buffer for the loop to
 * write. Takes frame. */
static void svc_job_answer(struct svc_conn *c, struct bufferevent *bev, uint8_t *frame, size_t len)
{
	struct evbuffer *out;
	ssize_t n = 0;

	if (frame == NULL)
		return;
	bufferevent_lock(bev);
	if (atomic_load(&c->closed)) {
		bufferevent_unlock(bev);
		free(frame);
		return;
	}
	out = bufferevent_get_output(bev);
	if (evbuffer_get_length(out) == 0) {
		do
			n = send(bufferevent_getfd(bev), frame, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			n = 0; /* EAGAIN or an error the loop will see: queue it */
	}
	if ((size_t)n < len) {
		if (n == 0) {
			if (evbuffer_add_reference(out, frame, len, svc_frame_free_cb, NULL) != 0)
				free(frame);
			frame = NULL;
		} else if (evbuffer_add(out, frame + n, len - (size_t)n) != 0) {
			log_warn("%s: out of memory queueing an answer", c->who.name);
		}
		svc_conn_backpressure(c, bev);
	}
	bufferevent_unlock(bev);
	free(frame);
}

/* Worker thread (or the audit commit thread). Answers a job whose request
 * ran, and finishes it here unless the loop must look (shutdown, a
 * half-closed peer, a connection that answers through the loop): then
 * returns true for svc_job_done. */
static bool svc_job_finish(struct svc_job *j)
{
	struct svc_conn *c = j->conn;
	struct svc_server *srv = c->srv;

	if (!c->direct)
		return true;
	svc_job_answer(c, j->bev, j->frame, j->frame_len);
	j->frame = NULL;
	proto_req_clear(&j->req);
	/* Decrement, then look: the loop sets the flags, then looks at the
	 * counts, so one of the two sees the other (sequentially consistent). */
	svc_inflight_add(c, false);
	if (atomic_load(&c->half_closed) || atomic_load(&srv->draining))
		return true;
	bufferevent_decref(j->bev);
	free(j);
	svc_conn_unref(c);
	return false;
}

/* How long a run of method m took (any thread). */
static void svc_run_note(struct svc_server *srv, enum proto_method m, uint64_t us)
{
	uint32_t old = atomic_load_explicit(&srv->run_ewma[m], memory_order_relaxed);
	uint32_t x = us > (1u << 20) ? (1u << 24) : (uint32_t)us << 4;

	/* new = old + (x - old) / 8; the first run sets it. */
	if (atomic_load_explicit(&srv->run_seen[m], memory_order_relaxed) == 0)
		old = x;
	atomic_store_explicit(&srv->run_ewma[m], old + (uint32_t)(((int64_t)x - (int64_t)old) / 8),
			      memory_order_relaxed);
	if (atomic_load_explicit(&srv->run_seen[m], memory_order_relaxed) < SVC_INLINE_WARMUP)
		atomic_fetch_add_explicit(&srv->run_seen[m], 1, memory_order_relaxed);
}

/* The methods that may run in place: they touch only the token and
 * keyholdd's memory (never the network, the state database's writers or a
 * long computation), so a run that is quick now stays quick. */
static bool svc_inline_method(enum proto_method m)
{
	switch (m) {
	case PROTO_M_SIGN:
	case PROTO_M_GET_STATUS:
	case PROTO_M_GET_CAPABILITIES:
	case PROTO_M_LIST_KEYS:
	case PROTO_M_GET_PUBLIC_KEY:
		return true;
	default:
		return false;
	}
}

/* c's loop: whether method m is quick enough to run in place, and
 * nothing else of this loop is in flight (with its other requests on the
 * workers, handing this one off too uses every core; running it here
 * would serialize them). On a shard, also only while fewer requests are
 * in flight in all than there are workers (token sessions): the others
 * hold them, and this loop would wait for one. A GetStatus that needs no
 * token call (svc_status_cached) always runs in place: on a worker it
 * would queue behind token calls (a TPM's TLS handshake signatures) for
 * nothing. */
static bool svc_run_inline(const struct svc_conn *c, enum proto_method m)
{
	const struct svc_server *srv = c->srv;

	if (srv->inline_us != 0 && m == PROTO_M_GET_STATUS && svc_status_cached(srv->s))
		return true;
	if (srv->inline_us == 0 || !svc_inline_method(m) ||
	    atomic_load_explicit(&srv->run_seen[m], memory_order_relaxed) < SVC_INLINE_WARMUP ||
	    atomic_load_explicit(&srv->run_ewma[m], memory_order_relaxed) >= (srv->inline_us << 4))
		return false;
	if (c->shard == NULL)
		return atomic_load(&srv->inflight) == 0;
	return atomic_load(&c->shard->inflight) == 0 && atomic_load(&srv->inflight) < srv->s->workers;
}

/* Audit commit thread: the job's records are durable. */
static void svc_job_durable(struct audit_waiter *w)
{
	struct svc_job *j = (struct svc_job *)(void *)((char *)w - offsetof(struct svc_job, durable));
	struct svc_pool *pool = j->conn->srv->s->pool;

	if (svc_job_finish(j))
		svc_pool_complete(pool, &j->item);
}

/* Worker thread. Runs the request and answers it (svc_job_finish); with
 * [audit] sync = always the answer waits, off this worker, for the group
 * commit that makes its record durable. */
static bool svc_job_run(struct svc_pool_item *it)
{
	struct svc_job *j = (struct svc_job *)it;
	struct svc_conn *c = j->conn;
	struct svc_server *srv = c->srv;
	struct audit *a = srv->s->audit;

	/* Nobody waiting: do not spend the token on it. */
	if (!atomic_load(&c->closed)) {
		uint64_t t0 = kh_now_mono_us();

		if (a != NULL)
			audit_defer_begin();
		svc_dispatch(srv->s, &c->who, &j->req, j->deadline_us, &j->frame, &j->frame_len);
		svc_run_note(srv, j->req.method, kh_now_mono_us() - t0);
		if (a != NULL) {
			j->durable.fn = svc_job_durable;
			if (audit_when_durable(a, audit_defer_end(), &j->durable))
				return false; /* the commit thread finishes it */
		}
	}
	return svc_job_finish(j);
}

/* c's loop: the rest of a job that needs the loop. */
static void svc_job_done_here(struct svc_job *j)
{
	struct svc_conn *c = j->conn;
	struct svc_server *srv = c->srv;

	if (!c->direct) {
		svc_inflight_add(c, false);
		svc_conn_send(c, j->frame, j->frame_len);
		proto_req_clear(&j->req);
	}
	bufferevent_decref(j->bev);
	free(j);
	svc_conn_close_if_done(c);
	svc_conn_unref(c);
	svc_server_maybe_finish(srv);
}

static void svc_job_done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	svc_job_done_here(arg);
}

/* The thread that ran the job in place, or the main loop (the pool's
 * completions): the rest goes to the connection's own loop. Once that
 * loop has stopped (svc_server_free), the connection is nobody else's. */
static void svc_job_done(struct svc_pool_item *it)
{
	struct svc_job *j = (struct svc_job *)it;
	struct svc_shard *sh = j->conn->shard;

	if (sh != NULL && sh != svc_cur_shard && atomic_load(&sh->running) &&
	    event_base_once(sh->base, -1, EV_TIMEOUT, svc_job_done_cb, j, NULL) == 0)
		return;
	svc_job_done_here(j);
}

/* Refuses a request the loop answers itself (a limit, shutdown, a bad
 * frame); it goes on record like every other. */
static void svc_conn_refuse(struct svc_conn *c, const struct proto_req *req, const char *method, enum kh_err code,
			    const char *msg)
{
	svc_metrics_request(c->srv->s->metrics, strcmp(method, "-") != 0 ? proto_method_lookup(method) : -1, code, 0);
	svc_audit_record(c->srv->s, &c->who, method, NULL, code, 0, 1);
	svc_conn_send_error(c, req->have_id ? req->id : 0, code, msg);
}

/* A peer that holds no role may call nothing, so it is answered before
 * its request is decoded: no decoder runs for it, and no unknown-method or
 * malformed-body message tells it anything. Only the envelope's id and
 * method name are read from the wire, to answer and record it. */
static void svc_conn_deny(struct svc_conn *c, const uint8_t *buf, size_t len)
{
	struct proto_req_head h;
	const char *mname = "-";
	char name[65], msg[320];
	int m = -1;

	if (proto_request_head(buf, len, &h) && h.method != NULL && !h.method_nul && h.method_len < sizeof(name)) {
		memcpy(name, h.method, h.method_len);
		name[h.method_len] = '\0';
		if ((m = proto_method_lookup(name)) >= 0)
			mname = proto_method_name((enum proto_method)m);
	}
	if (c->bucket != NULL && !svc_bucket_take(c->srv, c->bucket, mname)) {
		svc_metrics_rate_refused(c->srv->s->metrics, m);
		svc_conn_send_error(c, h.id, KH_E_RESOURCE_EXHAUSTED, "request rate limit reached; slow down");
		return;
	}
	svc_metrics_request(c->srv->s->metrics, m, KH_E_PERMISSION_DENIED, 0);
	snprintf(msg, sizeof(msg), "%.*s may not call %s: it holds no role (grant one in [access])", KH_UTF8_PREC(c->who.name, 160),
		 strcmp(mname, "-") != 0 ? mname : "anything");
	svc_audit_record(c->srv->s, &c->who, mname, NULL, KH_E_PERMISSION_DENIED, 0, 1);
	svc_conn_send_error(c, h.id, KH_E_PERMISSION_DENIED, msg);
}

/* One complete frame payload from the peer. */
static void svc_conn_frame(struct svc_conn *c, const uint8_t *buf, size_t len)
{
	struct svc_server *srv = c->srv;
	struct kh_errbuf e = { 0 };
	struct svc_job *j = NULL;
	const char *mname;
	bool in_place;

	atomic_fetch_add(&srv->s->requests, 1);
	if (c->who.roles == 0) {
		svc_conn_deny(c, buf, len);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		svc_conn_send_error(c, 0, KH_E_RESOURCE_EXHAUSTED, "keyholdd is out of memory");
		return;
	}
	if (proto_request_decode(buf, len, &j->req, &e) != KH_OK) {
		log_dbg("%s: bad request: %s", c->who.name, e.msg);
		if (c->bucket != NULL && !svc_bucket_take(srv, c->bucket, "-")) {
			svc_metrics_rate_refused(srv->s->metrics, -1);
			svc_conn_send_error(c, j->req.have_id ? j->req.id : 0, KH_E_RESOURCE_EXHAUSTED,
					    "request rate limit reached; slow down");
		} else {
			svc_conn_refuse(c, &j->req, "-", e.code, e.msg);
		}
		goto out;
	}
	mname = proto_method_name(j->req.method);
	if (c->bucket != NULL && !svc_bucket_take(srv, c->bucket, mname)) {
		char msg[256];

		/* On record once a second with a count (svc_bucket_take). */
		svc_metrics_rate_refused(srv->s->metrics, (int)j->req.method);
		snprintf(msg, sizeof(msg), "%.*s is over its rate of %u requests per second (burst %u); slow down",
			 KH_UTF8_PREC(c->who.name, 160), srv->s->cfg->rate, srv->s->cfg->rate_burst);
		svc_conn_send_error(c, j->req.id, KH_E_RESOURCE_EXHAUSTED, msg);
		goto out;
	}
	if (atomic_load(&srv->draining)) {
		svc_conn_refuse(c, &j->req, mname, KH_E_UNAVAILABLE, "keyholdd is shutting down; retry after it restarts");
		goto out;
	}
	if (atomic_load(&c->inflight) >= srv->s->cfg->max_inflight) {
		char msg[128];

		snprintf(msg, sizeof(msg), "more than %u requests in flight on this connection; wait for answers",
			 srv->s->cfg->max_inflight);
		svc_conn_refuse(c, &j->req, mname, KH_E_RESOURCE_EXHAUSTED, msg);
		goto out;
	}
	if (j->req.deadline_ms > 0)
		j->deadline_us = kh_now_mono_us() + (uint64_t)j->req.deadline_ms * 1000u;
	j->conn = c;
	j->bev = c->bev;
	bufferevent_incref(j->bev);
	j->item.run = svc_job_run;
	j->item.done = svc_job_done;
	in_place = svc_run_inline(c, j->req.method);
	atomic_fetch_add(&c->refs, 1);
	svc_inflight_add(c, true);
	if (in_place) {
		/* In place: run it, answer it, and finish it here. */
		struct svc_pool_item *it = &j->item;

		if (svc_job_run(it))
			svc_job_done(it);
	} else {
		svc_pool_submit(srv->s->pool, &j->item);
	}
	j = NULL; /* the pool's (or finished) now */
out:
	if (j != NULL) {
		proto_req_clear(&j->req);
		free(j);
	}
}

/* ---- bufferevent callbacks ---- */

static void svc_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct svc_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->tls && !c->authed)
		return; /* nothing is read before the client is verified */
	atomic_fetch_add(&c->refs, 1); /* a close below must not free c under us */
	while (c->bev != NULL && !atomic_load(&c->out_paused)) {
		uint8_t hdr[PROTO_HDR_LEN];
		size_t have = evbuffer_get_length(in), n = 0, need = 0;
		uint8_t *payload;
		enum kh_err fr;

		evbuffer_copyout(in, hdr, have < PROTO_HDR_LEN ? have : PROTO_HDR_LEN);
		/* Only the header is looked at here; the body stays in the
		 * evbuffer until it is whole (proto_frame_next counts have). */
		fr = proto_frame_next(hdr, have, c->frame_cap, &n, &need);
		if (fr == KH_E_INVALID_ARGUMENT) {
			/* A zero or oversized length: the stream cannot be
			 * trusted any more. Close before buffering the body. */
			log_info("%s: frame length %u outside 1..%zu; closing", c->who.name,
				 (unsigned)hdr[0] << 24 | (unsigned)hdr[1] << 16 | (unsigned)hdr[2] << 8 | hdr[3],
				 c->frame_cap);
			svc_conn_close(c);
			break;
		}
		if (fr != KH_OK) {
			/* Nothing buffered: any byte calls this again, no
			 * watermark needed (setting one per request cost
			 * the loop an event re-add each time). */
			if (have == 0)
				break;
			if (need > PROTO_HDR_LEN && !svc_conn_reserve(c, need - PROTO_HDR_LEN)) {
				log_warn("%s: %zu bytes of unfinished frames are buffered; refusing a %zu-byte frame",
					 c->who.name, c->srv->buffered, need - PROTO_HDR_LEN);
				svc_conn_close(c);
				break;
			}
			/* Wait for the rest; read no further than this frame. */
			bufferevent_setwatermark(bev, EV_READ, need, 0);
			c->read_wm = true;
			break;
		}
		svc_conn_release(c);
		if (c->read_wm) {
			bufferevent_setwatermark(bev, EV_READ, 0, 0);
			c->read_wm = false;
		}
		evbuffer_drain(in, PROTO_HDR_LEN);
		payload = evbuffer_pullup(in, (ev_ssize_t)n);
		if (payload == NULL) {
			svc_conn_close(c);
			break;
		}
		svc_conn_frame(c, payload, n);
		if (c->bev == NULL)
			break;
		evbuffer_drain(in, n);
	}
	svc_conn_unref(c);
}

static void svc_conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct svc_conn *c = arg;
	struct svc_server *srv = c->srv; /* c may be gone after a close */

	if (atomic_load(&c->out_paused)) {
		atomic_store(&c->out_paused, false);
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		if (!atomic_load(&c->srv->draining)) {
			bufferevent_enable(bev, EV_READ);
			svc_conn_read_cb(bev, c);
		}
	}
	svc_conn_close_if_done(c);
	svc_server_maybe_finish(srv);
}

static void svc_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct svc_conn *c = arg;
	struct svc_server *srv = c->srv; /* c may be gone after a close */

	if (what & BEV_EVENT_CONNECTED) {
		svc_tls_connected(c);
		return;
	}
	if (c->tls && !c->authed && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) {
		unsigned long err = bufferevent_get_openssl_error(bev);
		char buf[160] = "connection closed";

		if (err != 0)
			ERR_error_string_n(err, buf, sizeof(buf));
		log_info("%s: TLS handshake failed: %s", c->who.name, buf);
		svc_audit_record(srv->s, &c->who, "TLSHandshake", NULL, KH_E_UNAUTHENTICATED, 0, 1);
		svc_conn_close(c);
		svc_server_maybe_finish(srv);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && atomic_load(&c->inflight) > 0) {
		/* Idle only counts when the peer is not waiting on us. */
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && !(what & BEV_EVENT_ERROR)) {
		/* Half-close: answer what was asked, then close. */
		atomic_store(&c->half_closed, true);
		bufferevent_disable(bev, EV_READ);
		svc_conn_close_if_done(c);
		svc_server_maybe_finish(srv);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		log_info("%s: idle for %u s; closing", c->who.name, srv->s->cfg->idle_timeout_s);
	svc_conn_close(c);
	svc_server_maybe_finish(srv);
}

/* ---- accepting ---- */

static void svc_refuse(evutil_socket_t fd, const char *msg)
{
	size_t len = 0;
	uint8_t *f = svc_error_frame(0, KH_E_RESOURCE_EXHAUSTED, msg, &len);

	if (f != NULL) {
		/* Best effort, non-blocking: the socket buffer takes it. */
		kh_ignore((int)send(fd, f, len, MSG_DONTWAIT | MSG_NOSIGNAL));
		free(f);
	}
	evutil_closesocket(fd);
}

/* Gives c->bev its callbacks and idle timeout, and starts reading. */
static void svc_conn_setup(struct svc_server *srv, struct svc_conn *c)
{
	struct timeval idle;

	idle.tv_sec = srv->s->cfg->idle_timeout_s;
	idle.tv_usec = 0;
	bufferevent_setcb(c->bev, svc_conn_read_cb, svc_conn_write_cb, svc_conn_event_cb, c);
	bufferevent_set_timeouts(c->bev, &idle, NULL);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Counts a new connection among the open ones. */
static void svc_conn_link(struct svc_server *srv, struct svc_conn *c)
{
	pthread_mutex_lock(&srv->lock);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	if (c->shard != NULL)
		c->shard->n_conns++;
	pthread_mutex_unlock(&srv->lock);
	atomic_fetch_add(&srv->s->connections, 1);
}

/* Registers a new connection whose who is set (takes c->bev). Linked
 * first: a shard's loop may read, and close, it as soon as it is set up. */
static void svc_conn_add(struct svc_server *srv, struct svc_conn *c)
{
	svc_conn_link(srv, c);
	svc_conn_setup(srv, c);
}

/* The shard with the fewest connections (NULL: none, the main loop). */
static struct svc_shard *svc_shard_pick(struct svc_server *srv)
{
	struct svc_shard *best = NULL;
	unsigned i;

	pthread_mutex_lock(&srv->lock);
	for (i = 0; i < srv->n_shards; i++)
		if (best == NULL || srv->shards[i].n_conns < best->n_conns)
			best = &srv->shards[i];
	pthread_mutex_unlock(&srv->lock);
	return best;
}

static bool svc_accept_ok(struct svc_server *srv, evutil_socket_t fd)
{
	unsigned n;

	if (atomic_load(&srv->draining)) {
		evutil_closesocket(fd);
		return false;
	}
	pthread_mutex_lock(&srv->lock);
	n = srv->n_conns;
	pthread_mutex_unlock(&srv->lock);
	if (n >= srv->s->cfg->max_connections) {
		log_warn("refusing a connection: %u connections open (max_connections)", n);
		svc_refuse(fd, "keyholdd has too many connections; retry later");
		return false;
	}
	return true;
}

/* The supplementary groups the peer held when it connected (SO_PEERGROUPS,
 * Linux >= 4.13): group roles follow the process, not the group database.
 * A peer with more groups than fit is judged by its primary group alone
 * (fewer roles, never more). */
static enum kh_err svc_peer_groups(evutil_socket_t fd, gid_t *groups, size_t *n)
{
	socklen_t len = (socklen_t)(SVC_PEER_GROUPS_MAX * sizeof(gid_t));

	*n = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		*n = len / sizeof(gid_t);
		return KH_OK;
	}
	if (errno == ERANGE) {
		log_warn("a peer holds more than %d supplementary groups; only its primary group is looked at",
			 SVC_PEER_GROUPS_MAX);
		return KH_OK;
	}
	log_warn("SO_PEERGROUPS: %s (Linux 4.13 or later is needed)", strerror(errno));
	return KH_E_INTERNAL;
}

/* Unix peers: identified by SO_PEERCRED before anything is read. */
static enum kh_err svc_accept_unix(struct svc_server *srv, evutil_socket_t fd)
{
	struct svc_conn *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	gid_t groups[SVC_PEER_GROUPS_MAX];
	size_t n_groups = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
		log_warn("SO_PEERCRED: %s", strerror(errno));
		evutil_closesocket(fd);
		return KH_E_INTERNAL;
	}
	if (svc_peer_groups(fd, groups, &n_groups) != KH_OK) {
		evutil_closesocket(fd);
		return KH_E_INTERNAL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return KH_E_RESOURCE_EXHAUSTED;
	}
	c->srv = srv;
	atomic_init(&c->refs, 1);
	c->direct = true;
	c->serial = ++srv->next_serial;
	svc_principal_unix(srv->s->cfg, cred.uid, cred.gid, cred.pid, groups, n_groups, &c->who);
	/* A peer with no role may call nothing (svc_conn_deny): small frames
	 * are all it needs, and all it may make keyholdd hold. */
	c->frame_cap = c->who.roles != 0 ? srv->s->cfg->frame_max : PROTO_FRAME_MAX_PREAUTH;
	if (svc_conn_bucket(srv, c) != KH_OK) {
		free(c);
		svc_refuse(fd, "keyholdd tracks too many principals; retry later");
		return KH_E_RESOURCE_EXHAUSTED;
	}
	evutil_make_socket_nonblocking(fd);
	c->shard = svc_shard_pick(srv);
	/* Thread-safe: workers write answers into it (svc_job_answer). */
	c->bev = bufferevent_socket_new(c->shard != NULL ? c->shard->base : srv->base, fd,
					BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		svc_conn_bucket_drop(c);
		free(c);
		return KH_E_RESOURCE_EXHAUSTED;
	}
	log_dbg("connection %llu from uid %u gid %u pid %d, roles 0x%x", (unsigned long long)c->serial,
		(unsigned)cred.uid, (unsigned)cred.gid, (int)cred.pid, c->who.roles);
	/* Last: from here c is its loop's, which may serve and free it. */
	svc_conn_add(srv, c);
	return KH_OK;
}

static void svc_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
			  void *arg)
{
	struct svc_server *srv = arg;

	(void)l;
	(void)sa;
	(void)salen;
	if (svc_accept_ok(srv, fd))
		kh_ignore(svc_accept_unix(srv, fd));
}

unsigned svc_server_inflight(const struct svc_server *srv)
{
	return atomic_load(&srv->inflight) + (srv->tick_pending ? 1u : 0u);
}

enum kh_err svc_server_adopt(struct svc_server *srv, int fd)
{
	if (!svc_accept_ok(srv, fd))
		return KH_E_RESOURCE_EXHAUSTED;
	return svc_accept_unix(srv, fd);
}

/* ---- TLS ---- */

static void svc_tls_hs_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_conn *c = arg;
	struct svc_server *srv = c->srv;

	(void)fd;
	(void)what;
	log_info("%s: no TLS handshake within %u s; closing", c->who.name, srv->s->cfg->tls_handshake_timeout_s);
	svc_audit_record(srv->s, &c->who, "TLSHandshake", NULL, KH_E_DEADLINE_EXCEEDED, 0, 1);
	svc_conn_close(c);
	svc_server_maybe_finish(srv);
}

/* The handshake is done and OpenSSL verified the client certificate
 * against client_ca: the connection now has its principal. */
static void svc_tls_connected(struct svc_conn *c)
{
	struct svc_server *srv = c->srv;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	char name[KH_PRINCIPAL_MAX + 1];
	struct kh_errbuf e = { 0 };
	char peer[64];

	kh_strlcpy(peer, c->who.name, sizeof(peer));
	if (c->hs_timer != NULL) {
		event_free(c->hs_timer);
		c->hs_timer = NULL;
	}
	if (ssl == NULL || SSL_version(ssl) != TLS1_3_VERSION || svc_tls_peer_name(ssl, name, sizeof(name), &e) != KH_OK) {
		log_info("%s: refused after the handshake: %s", peer, e.msg[0] ? e.msg : "not TLS 1.3");
		svc_audit_record(srv->s, &c->who, "TLSHandshake", NULL, KH_E_UNAUTHENTICATED, 0, 1);
		svc_conn_close(c);
		svc_server_maybe_finish(srv);
		return;
	}
	svc_principal_cert(srv->s->cfg, name, &c->who);
	c->authed = true;
	/* Until a principal holds a role it is held to the pre-auth cap. */
	c->frame_cap = c->who.roles != 0 ? srv->s->cfg->frame_max : PROTO_FRAME_MAX_PREAUTH;
	if (svc_conn_bucket(srv, c) != KH_OK) {
		svc_conn_close(c);
		svc_server_maybe_finish(srv);
		return;
	}
	log_dbg("connection %llu from %s (%s), roles 0x%x", (unsigned long long)c->serial, c->who.name, peer,
		c->who.roles);
	svc_conn_read_cb(c->bev, c);
}

/* ---- TLS handshake steps, on the workers ---- */

static void svc_tls_hs_ready_cb(evutil_socket_t fd, short what, void *arg);

/* Loop thread: waits for the socket to be readable (EV_READ) or writable
 * (EV_WRITE) before the next step; false when the event cannot be set. */
static bool svc_tls_hs_wait(struct svc_conn *c, short what)
{
	if (c->hs_ev != NULL)
		event_free(c->hs_ev);
	c->hs_ev = event_new(c->srv->base, c->hs_fd, what, svc_tls_hs_ready_cb, c);
	return c->hs_ev != NULL && event_add(c->hs_ev, NULL) == 0;
}

/* Worker: one step of the handshake on the non-blocking socket; what it
 * needs next, or why it failed, goes back to the loop (svc_tls_hs_done). */
static bool svc_tls_hs_run(struct svc_pool_item *it)
{
	struct svc_conn *c = (struct svc_conn *)(void *)((char *)it - offsetof(struct svc_conn, hs_item));

	ERR_clear_error();
	c->hs_rc = SSL_do_handshake(c->hs_ssl);
	c->hs_err = c->hs_rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c->hs_ssl, c->hs_rc);
	c->hs_errcode = ERR_get_error(); /* the queue is this thread's */
	ERR_clear_error();
	return true;
}

/* Loop thread: a step to a worker (c referenced for it). */
static void svc_tls_hs_submit(struct svc_conn *c)
{
	struct svc_server *srv = c->srv;

	c->hs_running = true;
	srv->hs_steps++;
	atomic_fetch_add(&srv->inflight, 1);
	svc_pool_submit(srv->s->pool, &c->hs_item);
}

/* Loop thread: a worker slot came free; the oldest waiting step that is
 * still wanted takes it. */
static void svc_tls_hs_next(struct svc_server *srv)
{
	while (srv->hs_wait != NULL && srv->hs_steps < srv->hs_cap) {
		struct svc_conn *c = srv->hs_wait;

		srv->hs_wait = c->hs_next;
		if (srv->hs_wait == NULL)
			srv->hs_wait_tail = NULL;
		c->hs_queued = false;
		if (c->hs_ssl == NULL || atomic_load(&srv->draining)) {
			if (c->hs_ssl != NULL)
				svc_conn_close(c);
			svc_conn_unref(c); /* closed while it waited */
			continue;
		}
		svc_tls_hs_submit(c);
	}
}

/* Loop thread: the socket is ready for the next step. */
static void svc_tls_hs_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_conn *c = arg;
	struct svc_server *srv = c->srv;

	(void)fd;
	(void)what;
	if (c->hs_ssl == NULL || c->hs_running || c->hs_queued)
		return;
	atomic_fetch_add(&c->refs, 1);
	if (srv->hs_steps >= srv->hs_cap) {
		c->hs_queued = true;
		c->hs_next = NULL;
		if (srv->hs_wait_tail != NULL)
			srv->hs_wait_tail->hs_next = c;
		else
			srv->hs_wait = c;
		srv->hs_wait_tail = c;
		return;
	}
	svc_tls_hs_submit(c);
}

/* Loop thread: the handshake is done; the connection gets its
 * bufferevent (the SSL is established) and its principal. */
static void svc_tls_hs_open(struct svc_conn *c)
{
	struct svc_server *srv = c->srv;

	if (c->hs_ev != NULL) {
		event_free(c->hs_ev);
		c->hs_ev = NULL;
	}
	c->bev = bufferevent_openssl_socket_new(srv->base, c->hs_fd, c->hs_ssl, BUFFEREVENT_SSL_OPEN,
						BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		svc_conn_close(c);
		return;
	}
	c->hs_ssl = NULL; /* the bufferevent's now, with the socket */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	svc_conn_setup(srv, c);
	svc_tls_connected(c);
}

/* Loop thread: a step came back from its worker. */
static void svc_tls_hs_done(struct svc_pool_item *it)
{
	struct svc_conn *c = (struct svc_conn *)(void *)((char *)it - offsetof(struct svc_conn, hs_item));
	struct svc_server *srv = c->srv;

	c->hs_running = false;
	srv->hs_steps--;
	atomic_fetch_sub(&srv->inflight, 1);
	if (c->hs_dead) {
		/* Closed meanwhile (timeout, shutdown): what it left is ours. */
		SSL_free(c->hs_ssl);
		evutil_closesocket(c->hs_fd);
		c->hs_ssl = NULL;
	} else if (c->hs_ssl == NULL || atomic_load(&c->closed)) {
		/* closed already */
	} else if (atomic_load(&srv->draining)) {
		svc_conn_close(c);
	} else if (c->hs_rc == 1) {
		svc_tls_hs_open(c);
	} else if ((c->hs_err == SSL_ERROR_WANT_READ || c->hs_err == SSL_ERROR_WANT_WRITE) &&
		   svc_tls_hs_wait(c, c->hs_err == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE)) {
		/* the next step when the socket is ready */
	} else {
		char buf[160] = "connection closed";

		if (c->hs_errcode != 0)
			ERR_error_string_n(c->hs_errcode, buf, sizeof(buf));
		log_info("%s: TLS handshake failed: %s", c->who.name, buf);
		svc_audit_record(srv->s, &c->who, "TLSHandshake", NULL, KH_E_UNAUTHENTICATED, 0, 1);
		svc_conn_close(c);
	}
	svc_conn_unref(c);
	svc_tls_hs_next(srv);
	svc_server_maybe_finish(srv);
}

static void svc_tls_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
			      void *arg)
{
	struct svc_server *srv = arg;
	struct svc_conn *c;
	SSL *ssl;
	struct timeval hs;
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	(void)l;
	if (!svc_accept_ok(srv, fd))
		return;
	if (sa->sa_family == AF_INET && (size_t)salen >= sizeof(struct sockaddr_in)) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, addr, sizeof(addr));
		port = ntohs(((struct sockaddr_in *)(void *)sa)->sin_port);
	} else if (sa->sa_family == AF_INET6 && (size_t)salen >= sizeof(struct sockaddr_in6)) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, addr, sizeof(addr));
		port = ntohs(((struct sockaddr_in6 *)(void *)sa)->sin6_port);
	}
	c = calloc(1, sizeof(*c));
	ssl = SSL_new(srv->s->tls_ctx);
	if (c == NULL || ssl == NULL) {
		free(c);
		SSL_free(ssl);
		evutil_closesocket(fd);
		return;
	}
	c->srv = srv;
	atomic_init(&c->refs, 1);
	c->tls = true;
	c->frame_cap = PROTO_FRAME_MAX_PREAUTH;
	c->serial = ++srv->next_serial;
	snprintf(c->who.name, sizeof(c->who.name), "tcp:%s:%u", addr, port);
	evutil_make_socket_nonblocking(fd);
	/* The handshake runs step by step on the workers (svc_tls_hs_step):
	 * its CertificateVerify is a token operation. */
	c->hs_ssl = ssl;
	c->hs_fd = fd;
	c->hs_item.run = svc_tls_hs_run;
	c->hs_item.done = svc_tls_hs_done;
	SSL_set_accept_state(ssl);
	c->hs_timer = evtimer_new(srv->base, svc_tls_hs_timeout_cb, c);
	hs.tv_sec = srv->s->cfg->tls_handshake_timeout_s;
	hs.tv_usec = 0;
	if (SSL_set_fd(ssl, (int)fd) != 1 || c->hs_timer == NULL || evtimer_add(c->hs_timer, &hs) != 0 ||
	    !svc_tls_hs_wait(c, EV_READ)) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		if (c->hs_timer != NULL)
			event_free(c->hs_timer);
		if (c->hs_ev != NULL)
			event_free(c->hs_ev);
		free(c);
		return;
	}
	svc_conn_link(srv, c);
}

static enum kh_err svc_tls_listen(struct svc_server *srv, struct kh_errbuf *e)
{
	const char *spec = srv->s->cfg->tls_listen;
	struct evutil_addrinfo hints, *res = NULL;
	char host[256], port[16];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int rc;

	if (kh_split_hostport(spec, host, sizeof(host), port, sizeof(port)) != 0)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "[tls] listen '%s' is not HOST:PORT", spec);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICHOST;
	rc = evutil_getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "[tls] listen '%s': %s (give a numeric address)", spec,
				  evutil_gai_strerror(rc));
	srv->tls_listener = evconnlistener_new_bind(srv->base, svc_tls_accept_cb, srv,
						    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
						    1024, res->ai_addr, (int)res->ai_addrlen);
	evutil_freeaddrinfo(res);
	if (srv->tls_listener == NULL)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot listen on %s: %s", spec, strerror(errno));
	evconnlistener_set_error_cb(srv->tls_listener, svc_accept_error_cb);
	/* Port 0 picks a free port: say which (tests read it from the log). */
	if (getsockname(evconnlistener_get_fd(srv->tls_listener), (struct sockaddr *)&ss, &sl) == 0) {
		unsigned p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						      : ntohs(((struct sockaddr_in *)&ss)->sin_port);

		log_info("TLS 1.3 listening on %s port %u (key '%s' in the token)", host, p, srv->s->cfg->tls_key);
	}
	return KH_OK;
}

/* ---- housekeeping ---- */

static struct svc_server *svc_tick_srv(struct svc_pool_item *it)
{
	return (struct svc_server *)(void *)((char *)it - offsetof(struct svc_server, tick_item));
}

static bool svc_tick_run(struct svc_pool_item *it)
{
	struct svc_server *srv = svc_tick_srv(it);

	if (srv->s->audit != NULL)
		audit_tick(srv->s->audit);
	return true;
}

static void svc_tick_done(struct svc_pool_item *it)
{
	struct svc_server *srv = svc_tick_srv(it);

	srv->tick_pending = false;
	svc_server_maybe_finish(srv);
}

static void svc_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_server *srv = arg;
	uint64_t now = kh_now_mono_us();
	unsigned i;
	bool trim;

	(void)fd;
	(void)what;
	/* Refused requests not yet on record go on it now. */
	pthread_mutex_lock(&srv->lock);
	for (i = 0; i < SVC_BUCKET_HASH; i++) {
		struct svc_bucket *b;

		for (b = srv->buckets[i]; b != NULL; b = b->next)
			if (b->refused > 0 && now - b->last_record_us >= 1000000u)
				svc_bucket_flush(srv, b, now);
	}
	trim = srv->freed >= SVC_TRIM_AFTER;
	if (trim)
		srv->freed = 0;
	pthread_mutex_unlock(&srv->lock);
	/* Frame buffers freed (closed peers, large requests): give the pages
	 * back rather than keep the high-water mark (glibc keeps freed heap
	 * memory, and raises its mmap threshold after a large free). */
	if (trim)
		malloc_trim(0);
	/* The audit housekeeping may sign (a token call): on a worker. */
	if (srv->s->audit != NULL && !srv->tick_pending && srv->s->pool != NULL && !atomic_load(&srv->draining)) {
		srv->tick_pending = true;
		srv->tick_item.run = svc_tick_run;
		srv->tick_item.done = svc_tick_done;
		svc_pool_submit(srv->s->pool, &srv->tick_item);
	}
}

/* Out of descriptors, every pending connection would make the listener
 * fail again at once (a busy loop). Instead the reserve descriptor is
 * given up to accept the waiting peers and close them with an answer,
 * and accepting pauses a moment: existing connections keep being
 * served, and a descriptor freed meanwhile is used again. */
static void svc_accept_shed(struct svc_server *srv, struct evconnlistener *l)
{
	evutil_socket_t lfd = evconnlistener_get_fd(l);
	int i, fd;

	if (srv->reserve_fd < 0)
		return;
	close(srv->reserve_fd);
	srv->reserve_fd = -1;
	for (i = 0; i < 64; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			break;
		srv->accept_shed++;
		if (l == srv->tls_listener)
			evutil_closesocket(fd); /* no frame before a TLS handshake */
		else
			svc_refuse(fd, "keyholdd is out of file descriptors; retry later");
	}
	srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void svc_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_server *srv = arg;

	(void)fd;
	(void)what;
	if (atomic_load(&srv->draining))
		return;
	/* Another thread may have taken the descriptor given back last time. */
	if (srv->reserve_fd < 0)
		srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (srv->listener != NULL)
		evconnlistener_enable(srv->listener);
	if (srv->tls_listener != NULL)
		evconnlistener_enable(srv->tls_listener);
}

static void svc_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct svc_server *srv = arg;
	int err = EVUTIL_SOCKET_ERROR();
	uint64_t now = kh_now_mono_us();
	bool no_fds = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;

	srv->accept_errs++;
	if (srv->accept_err_logged_us == 0 || now - srv->accept_err_logged_us >= SVC_EMFILE_LOG_S * 1000000u) {
		log_warn("accept: %s (%llu errors, %llu connections refused since the last report)%s",
			 evutil_socket_error_to_string(err), (unsigned long long)srv->accept_errs,
			 (unsigned long long)srv->accept_shed,
			 no_fds ? "; pausing, and refusing waiting peers (RLIMIT_NOFILE, max_connections)" : "");
		srv->accept_err_logged_us = now;
		srv->accept_errs = 0;
		srv->accept_shed = 0;
	}
	if (!no_fds || srv->ev_resume == NULL)
		return; /* a peer that went away (ECONNABORTED): libevent goes on */
	svc_accept_shed(srv, l);
	if (srv->listener != NULL)
		evconnlistener_disable(srv->listener);
	if (srv->tls_listener != NULL)
		evconnlistener_disable(srv->tls_listener);
	{
		struct timeval pause = { 0, SVC_EMFILE_PAUSE_MS * 1000 };

		evtimer_add(srv->ev_resume, &pause);
	}
}

/* Every connection takes a descriptor: raise the soft RLIMIT_NOFILE to fit
 * max_connections where the hard limit allows, and say so where it does
 * not (connections past the limit are then accepted and closed). */
static void svc_check_nofile(const struct svc_config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections + SVC_FD_OVERHEAD;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > rl.rlim_cur) {
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur < want)
		log_warn("max_connections = %u needs about %llu file descriptors but RLIMIT_NOFILE is %llu: "
			 "about %llu connections fit, more are refused (raise LimitNOFILE= or lower max_connections)",
			 cfg->max_connections, (unsigned long long)want, (unsigned long long)rl.rlim_cur,
			 rl.rlim_cur > SVC_FD_OVERHEAD ? (unsigned long long)(rl.rlim_cur - SVC_FD_OVERHEAD) : 0ull);
	else
		log_info("RLIMIT_NOFILE raised to %llu for max_connections = %u", (unsigned long long)rl.rlim_cur,
			 cfg->max_connections);
}

/* ---- the Unix socket ---- */

/* systemd socket activation (sd_listen_fds(3), keyholdd.socket): the
 * listening Unix socket at [service] socket comes from systemd, which
 * created it with the unit's SocketMode/SocketGroup and keeps it across
 * restarts (so keyholdd neither chmods nor unlinks it). *used false when
 * nothing was passed; an error when sockets were passed but none is a
 * listening stream socket at that path. */
static enum kh_err svc_unix_activated(struct svc_server *srv, bool *used, struct kh_errbuf *e)
{
#ifdef HAVE_LIBSYSTEMD
	const struct svc_config *cfg = srv->s->cfg;
	int n = sd_listen_fds(1), fd;

	*used = false;
	if (n <= 0)
		return KH_OK;
	for (fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++)
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, cfg->socket, 0) > 0)
			break;
	if (fd == SD_LISTEN_FDS_START + n)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "systemd passed %d socket(s), none a listening Unix stream socket at %s: "
				  "ListenStream= in keyholdd.socket must be [service] socket",
				  n, cfg->socket);
	if (evutil_make_socket_nonblocking(fd) != 0 || evutil_make_socket_closeonexec(fd) != 0)
		return kh_err_set(e, KH_E_INTERNAL, "cannot use the socket systemd passed: %s", strerror(errno));
	srv->listener = evconnlistener_new(srv->base, svc_accept_cb, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
					   -1, fd);
	if (srv->listener == NULL)
		return kh_err_set(e, KH_E_INTERNAL, "cannot listen on the socket systemd passed (%s)", cfg->socket);
	evconnlistener_set_error_cb(srv->listener, svc_accept_error_cb);
	*used = true;
	log_info("listening on %s (socket activation: the socket is systemd's)", cfg->socket);
	return KH_OK;
#else
	(void)srv;
	(void)e;
	*used = false;
	return KH_OK;
#endif
}

static enum kh_err svc_unix_listen(struct svc_server *srv, struct kh_errbuf *e)
{
	const struct svc_config *cfg = srv->s->cfg;
	struct sockaddr_un sun;
	struct stat st;
	evutil_socket_t probe;
	mode_t old;
	bool activated = false;
	int r;

	if ((r = svc_unix_activated(srv, &activated, e)) != KH_OK || activated)
		return r;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!kh_strlcpy(sun.sun_path, cfg->socket, sizeof(sun.sun_path)))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "socket path %s is longer than %zu bytes", cfg->socket,
				  sizeof(sun.sun_path) - 1);
	if (lstat(cfg->socket, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return kh_err_set(e, KH_E_FAILED_PRECONDITION, "%s exists and is not a socket", cfg->socket);
		/* A stale socket from a crash, or a live keyholdd? */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			return kh_err_set(e, KH_E_FAILED_PRECONDITION, "another keyholdd is listening on %s",
					  cfg->socket);
		}
		if (probe >= 0)
			close(probe);
		unlink(cfg->socket);
	}
	old = umask(0777 & ~cfg->socket_mode);
	srv->listener = evconnlistener_new_bind(srv->base, svc_accept_cb, srv,
						LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
						(struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (srv->listener == NULL)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot listen on %s: %s", cfg->socket,
				  strerror(errno));
	evconnlistener_set_error_cb(srv->listener, svc_accept_error_cb);
	if (chmod(cfg->socket, cfg->socket_mode) != 0)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "chmod %s: %s", cfg->socket, strerror(errno));
	if (cfg->socket_group != NULL) {
		struct group *gr = getgrnam(cfg->socket_group);

		if (gr == NULL || chown(cfg->socket, (uid_t)-1, gr->gr_gid) != 0)
			return kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot give %s to group %s", cfg->socket,
					  cfg->socket_group);
	}
	srv->socket_path = strdup(cfg->socket);
	if (srv->socket_path == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	log_info("listening on %s (mode %04o)", cfg->socket, (unsigned)cfg->socket_mode);
	return KH_OK;
}

/* ---- the shards' loops ---- */

static void *svc_shard_main(void *arg)
{
	struct svc_shard *sh = arg;

	svc_cur_shard = sh;
	/* [service] loop_sched = batch (default): a loop woken by a request
	 * does not preempt the thread running on its CPU (a worker signing,
	 * a client); it runs when that one sleeps or its time slice ends, and
	 * then reads what came meanwhile in one go. At 64 connections this
	 * took P-256 from 15-16k to 20k signatures a second and keyholdd's
	 * CPU beyond the token's from 30-33 to 17-20 us a request, and
	 * changed no cell with one or two connections, where a CPU is idle
	 * (docs/PERFORMANCE.md, "Loops that do not preempt"). */
	if (!sh->srv->s->cfg->loop_sched_normal) {
		struct sched_param sp = { 0 };
		int rc = pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);

		if (rc != 0)
			log_warn("event loop: SCHED_BATCH: %s; it runs as SCHED_OTHER", strerror(rc));
	}
	event_base_loop(sh->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* [service] loops: 0 is one per CPU; 1 (or one CPU) keeps every
 * connection on the main loop. */
static unsigned svc_shards_wanted(const struct svc_config *cfg)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cfg->loops;

	if (n == 0)
		n = cpus > 0 ? (cpus > SVC_LOOPS_AUTO_MAX ? SVC_LOOPS_AUTO_MAX : (unsigned)cpus) : 1;
	return n > 1 ? n : 0;
}

static enum kh_err svc_shards_start(struct svc_server *srv, struct kh_errbuf *e)
{
	unsigned i, n = svc_shards_wanted(srv->s->cfg);
	sigset_t all, old;
	int r = KH_OK;

	if (n == 0)
		return KH_OK;
	srv->shards = calloc(n, sizeof(*srv->shards));
	if (srv->shards == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	srv->n_shards = n;
	/* Signals go to the main loop (its evsignal events). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < n && r == KH_OK; i++) {
		struct svc_shard *sh = &srv->shards[i];
		char name[16];

		sh->srv = srv;
		sh->base = event_base_new();
		if (sh->base == NULL) {
			r = kh_err_set(e, KH_E_INTERNAL, "cannot make event loop %u of %u", i + 1, n);
			break;
		}
		atomic_store(&sh->running, true);
		if (pthread_create(&sh->thread, NULL, svc_shard_main, sh) != 0) {
			atomic_store(&sh->running, false);
			r = kh_err_set(e, KH_E_INTERNAL, "cannot start event loop %u of %u", i + 1, n);
			break;
		}
		sh->started = true;
		snprintf(name, sizeof(name), "kh-loop%u", (i + 1) % 100u);
		pthread_setname_np(sh->thread, name);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == KH_OK)
		log_info("%u event loops serve Unix connections", n);
	return r;
}

/* Stops the shards' loops, each after the callbacks it was handed. */
void svc_server_stop_loops(struct svc_server *srv)
{
	unsigned i;

	for (i = 0; i < srv->n_shards; i++) {
		struct svc_shard *sh = &srv->shards[i];

		if (!sh->started)
			continue;
		event_base_loopexit(sh->base, NULL);
		pthread_join(sh->thread, NULL);
		sh->started = false;
		atomic_store(&sh->running, false);
	}
}

/* ---- shutdown ---- */

static void svc_finish_cb(evutil_socket_t fd, short what, void *arg);

/* A shard's loop, while draining: stops reading from its connections and
 * closes those owed nothing; the main loop looks again if any closed. */
static void svc_shard_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_shard *sh = arg;
	struct svc_server *srv = sh->srv;
	struct svc_conn *c, *next;
	unsigned before;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&srv->lock);
	before = sh->n_conns;
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next; /* closing c leaves the others in place */
		if (c->shard != sh)
			continue;
		if (c->bev != NULL)
			bufferevent_disable(c->bev, EV_READ);
		svc_conn_close_if_done(c);
	}
	if (sh->n_conns < before)
		event_base_once(srv->base, -1, EV_TIMEOUT, svc_finish_cb, srv, NULL);
	pthread_mutex_unlock(&srv->lock);
}

/* Main loop: asks every shard to drain. */
static void svc_shards_drain(struct svc_server *srv)
{
	unsigned i;

	for (i = 0; i < srv->n_shards; i++)
		if (atomic_load(&srv->shards[i].running))
			event_base_once(srv->shards[i].base, -1, EV_TIMEOUT, svc_shard_drain_cb, &srv->shards[i], NULL);
}

/* Any loop: once draining, closes what is owed nothing and stops the main
 * loop when no connection is left. A shard hands the decision to the main
 * loop. */
static void svc_server_maybe_finish(struct svc_server *srv)
{
	struct svc_conn *c, *next;
	unsigned n;

	if (!atomic_load(&srv->draining))
		return;
	if (svc_cur_shard != NULL) {
		event_base_once(srv->base, -1, EV_TIMEOUT, svc_finish_cb, srv, NULL);
		return;
	}
	if (atomic_load(&srv->inflight) > 0 || srv->tick_pending)
		return;
	pthread_mutex_lock(&srv->lock);
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next; /* closing c leaves the others in place */
		if (c->shard == NULL)
			svc_conn_close_if_done(c);
	}
	n = srv->n_conns;
	pthread_mutex_unlock(&srv->lock);
	if (n == 0)
		event_base_loopexit(srv->base, NULL);
	else
		svc_shards_drain(srv);
}

static void svc_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	svc_server_maybe_finish(arg);
}

static void svc_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_server *srv = arg;

	(void)fd;
	(void)what;
	log_warn("shutdown grace period over with %u requests in flight; stopping", atomic_load(&srv->inflight));
	event_base_loopbreak(srv->base);
}

void svc_server_shutdown(struct svc_server *srv)
{
	struct svc_conn *c;
	struct timeval grace = { SVC_GRACE_S, 0 };

	if (atomic_load(&srv->draining))
		return;
	atomic_store(&srv->draining, true);
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	log_info("shutting down: %u connections, %u requests in flight", atomic_load(&srv->s->connections),
		 atomic_load(&srv->inflight));
	if (srv->listener != NULL) {
		evconnlistener_free(srv->listener);
		srv->listener = NULL;
		if (srv->socket_path != NULL)
			unlink(srv->socket_path);
	}
	if (srv->tls_listener != NULL) {
		evconnlistener_free(srv->tls_listener);
		srv->tls_listener = NULL;
	}
	if (srv->ev_tick != NULL)
		event_del(srv->ev_tick);
	pthread_mutex_lock(&srv->lock);
	for (c = srv->conns; c != NULL; c = c->next)
		if (c->shard == NULL && c->bev != NULL)
			bufferevent_disable(c->bev, EV_READ);
	pthread_mutex_unlock(&srv->lock);
	svc_shards_drain(srv);
	srv->ev_grace = evtimer_new(srv->base, svc_grace_cb, srv);
	if (srv->ev_grace != NULL)
		evtimer_add(srv->ev_grace, &grace);
	svc_server_maybe_finish(srv);
}

static void svc_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_info("signal %d", (int)sig);
	svc_server_shutdown(arg);
}

enum kh_err svc_server_new(struct svc *s, struct event_base *base, struct svc_server **out, struct kh_errbuf *e)
{
	struct svc_server *srv;
	int r;

	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	{
		pthread_mutexattr_t ma;

		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&srv->lock, &ma);
		pthread_mutexattr_destroy(&ma);
	}
	srv->s = s;
	srv->base = base;
	srv->buffered_max = s->cfg->frame_max > SVC_BUFFERED_MAX ? s->cfg->frame_max : SVC_BUFFERED_MAX;
	srv->hs_cap = s->workers > 1 ? s->workers - 1 : 1;
	srv->inline_us = s->cfg->inline_max_us;
	svc_check_nofile(s->cfg);
	srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	srv->ev_resume = evtimer_new(base, svc_accept_resume_cb, srv);
	srv->ev_term = evsignal_new(base, SIGTERM, svc_signal_cb, srv);
	srv->ev_int = evsignal_new(base, SIGINT, svc_signal_cb, srv);
	if (srv->ev_term == NULL || srv->ev_int == NULL || evsignal_add(srv->ev_term, NULL) != 0 ||
	    evsignal_add(srv->ev_int, NULL) != 0) {
		svc_server_free(srv);
		return kh_err_set(e, KH_E_INTERNAL, "cannot install signal handlers");
	}
	r = svc_unix_listen(srv, e);
	if (r == KH_OK && s->tls_ctx != NULL)
		r = svc_tls_listen(srv, e);
	if (r != KH_OK) {
		svc_server_free(srv);
		return r;
	}
	{
		struct timeval one = { 1, 0 };

		srv->ev_tick = event_new(base, -1, EV_PERSIST, svc_tick_cb, srv);
		if (srv->ev_tick == NULL || event_add(srv->ev_tick, &one) != 0) {
			svc_server_free(srv);
			return kh_err_set(e, KH_E_INTERNAL, "cannot start the housekeeping timer");
		}
	}
	r = svc_shards_start(srv, e);
	if (r != KH_OK) {
		svc_server_free(srv);
		return r;
	}
	*out = srv;
	return KH_OK;
}

void svc_server_free(struct svc_server *srv)
{
	unsigned i;

	if (srv == NULL)
		return;
	/* The shards' loops first (what they were handed still runs), then
	 * their connections are the main thread's to close. */
	svc_server_stop_loops(srv);
	while (srv->hs_wait != NULL) {
		struct svc_conn *c = srv->hs_wait;

		srv->hs_wait = c->hs_next;
		c->hs_queued = false;
		svc_conn_unref(c);
	}
	srv->hs_wait_tail = NULL;
	while (srv->conns != NULL)
		svc_conn_close(srv->conns);
	if (srv->listener != NULL) {
		evconnlistener_free(srv->listener);
		if (srv->socket_path != NULL)
			unlink(srv->socket_path);
	}
	if (srv->ev_term != NULL)
		event_free(srv->ev_term);
	if (srv->ev_int != NULL)
		event_free(srv->ev_int);
	if (srv->ev_grace != NULL)
		event_free(srv->ev_grace);
	if (srv->tls_listener != NULL)
		evconnlistener_free(srv->tls_listener);
	if (srv->ev_tick != NULL)
		event_free(srv->ev_tick);
	if (srv->ev_resume != NULL)
		event_free(srv->ev_resume);
	if (srv->reserve_fd >= 0)
		close(srv->reserve_fd);
	{
		for (i = 0; i < SVC_BUCKET_HASH; i++) {
			while (srv->buckets[i] != NULL) {
				struct svc_bucket *b = srv->buckets[i];

				svc_bucket_flush(srv, b, kh_now_mono_us());
				srv->buckets[i] = b->next;
				free(b);
			}
		}
	}
	/* After their bufferevents: freeing a base runs their finalizers. */
	for (i = 0; i < srv->n_shards; i++)
		if (srv->shards[i].base != NULL)
			event_base_free(srv->shards[i].base);
	free(srv->shards);
	pthread_mutex_destroy(&srv->lock);
	free(srv->socket_path);
	free(srv);
}
