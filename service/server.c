/* server.c: the Unix socket listener and connections: peer credentials,
 * frame reading with the cap checked before anything is buffered for the
 * body, jobs to the worker pool, responses written in completion order
 * (pipelined, out of order), limits, idle timeout and graceful shutdown. */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "kh_log.h"
#include "kh_util.h"
#include "svc.h"

/* Stop reading from a peer whose unread responses pass this. */
#define SVC_OUT_HIGH (8u << 20)
#define SVC_GRACE_S 10

struct svc_conn {
	struct svc_server *srv;
	struct bufferevent *bev;        /* NULL once closed */
	struct svc_principal who;
	unsigned refs;                  /* the socket + one per job */
	unsigned inflight;
	_Atomic bool closed;            /* read by workers to skip dead work */
	bool out_paused;
	bool half_closed;               /* peer sent EOF; answer, then close */
	size_t frame_cap;
	uint64_t serial;
	struct svc_conn *prev, *next;
};

struct svc_job {
	struct svc_pool_item item;      /* first: the pool hands this back */
	struct svc_conn *conn;
	struct proto_req req;
	uint64_t deadline_us;
	uint8_t *frame;
	size_t frame_len;
};

struct svc_server {
	struct svc *s;
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *ev_term, *ev_int, *ev_grace;
	struct svc_conn *conns;
	unsigned n_conns;
	unsigned inflight;
	uint64_t next_serial;
	bool draining;
	char *socket_path;
};

static void svc_conn_close(struct svc_conn *c);
static void svc_server_maybe_finish(struct svc_server *srv);

/* ---- connection lifetime ---- */

static void svc_conn_unref(struct svc_conn *c)
{
	if (--c->refs > 0)
		return;
	free(c);
}

static void svc_frame_free_cb(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)(uintptr_t)data);
}

/* Takes frame. */
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
	if (!c->out_paused && evbuffer_get_length(out) > SVC_OUT_HIGH) {
		/* The peer is not reading its answers: stop taking requests
		 * from it until it does (the write callback resumes). */
		c->out_paused = true;
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_setwatermark(c->bev, EV_WRITE, SVC_OUT_HIGH / 2, 0);
	}
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

	if (c->bev == NULL)
		return;
	bufferevent_free(c->bev);
	c->bev = NULL;
	atomic_store(&c->closed, true);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->n_conns--;
	atomic_fetch_sub(&srv->s->connections, 1);
	log_dbg("connection %llu (%s) closed", (unsigned long long)c->serial, c->who.name);
	svc_conn_unref(c);
}

/* After the peer half-closed or during shutdown: close once nothing is
 * owed to the peer. */
static void svc_conn_close_if_done(struct svc_conn *c)
{
	if (c->bev == NULL || !(c->half_closed || c->srv->draining) || c->inflight > 0)
		return;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		svc_conn_close(c);
}

/* ---- jobs ---- */

static void svc_job_run(struct svc_pool_item *it)
{
	struct svc_job *j = (struct svc_job *)it;
	struct svc_conn *c = j->conn;

	if (atomic_load(&c->closed)) {
		/* Nobody is waiting: do not spend the token on it. */
		return;
	}
	svc_dispatch(c->srv->s, &c->who, &j->req, j->deadline_us, &j->frame, &j->frame_len);
}

static void svc_job_done(struct svc_pool_item *it)
{
	struct svc_job *j = (struct svc_job *)it;
	struct svc_conn *c = j->conn;
	struct svc_server *srv = c->srv;

	c->inflight--;
	srv->inflight--;
	svc_conn_send(c, j->frame, j->frame_len);
	proto_req_clear(&j->req);
	free(j);
	svc_conn_close_if_done(c);
	svc_conn_unref(c);
	svc_server_maybe_finish(srv);
}

/* One complete frame payload from the peer. */
static void svc_conn_frame(struct svc_conn *c, const uint8_t *buf, size_t len)
{
	struct svc_server *srv = c->srv;
	struct kh_errbuf e = { 0 };
	struct svc_job *j;

	atomic_fetch_add(&srv->s->requests, 1);
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		svc_conn_send_error(c, 0, KH_E_RESOURCE_EXHAUSTED, "keyholdd is out of memory");
		return;
	}
	if (proto_request_decode(buf, len, &j->req, &e) != KH_OK) {
		log_dbg("%s: bad request: %s", c->who.name, e.msg);
		svc_conn_send_error(c, j->req.have_id ? j->req.id : 0, e.code, e.msg);
		free(j);
		return;
	}
	if (srv->draining) {
		svc_conn_send_error(c, j->req.id, KH_E_UNAVAILABLE, "keyholdd is shutting down; retry after it restarts");
		goto drop;
	}
	if (c->inflight >= srv->s->cfg->max_inflight) {
		char msg[128];

		snprintf(msg, sizeof(msg), "more than %u requests in flight on this connection; wait for answers",
			 srv->s->cfg->max_inflight);
		svc_conn_send_error(c, j->req.id, KH_E_RESOURCE_EXHAUSTED, msg);
		goto drop;
	}
	if (j->req.deadline_ms > 0)
		j->deadline_us = kh_now_mono_us() + (uint64_t)j->req.deadline_ms * 1000u;
	j->conn = c;
	j->item.run = svc_job_run;
	j->item.done = svc_job_done;
	c->refs++;
	c->inflight++;
	srv->inflight++;
	svc_pool_submit(srv->s->pool, &j->item);
	return;
drop:
	proto_req_clear(&j->req);
	free(j);
}

/* ---- bufferevent callbacks ---- */

static void svc_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct svc_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->refs++; /* a close below must not free c under us */
	while (c->bev != NULL && !c->out_paused) {
		uint8_t hdr[PROTO_HDR_LEN];
		size_t have = evbuffer_get_length(in), n;
		uint8_t *payload;

		if (have < PROTO_HDR_LEN)
			break;
		evbuffer_copyout(in, hdr, PROTO_HDR_LEN);
		if (proto_frame_len(hdr, c->frame_cap, &n) != KH_OK) {
			/* A zero or oversized length: the stream cannot be
			 * trusted any more. Close before buffering the body. */
			log_info("%s: frame length %u outside 1..%zu; closing", c->who.name,
				 (unsigned)hdr[0] << 24 | (unsigned)hdr[1] << 16 | (unsigned)hdr[2] << 8 | hdr[3],
				 c->frame_cap);
			svc_conn_close(c);
			break;
		}
		if (n > have - PROTO_HDR_LEN) {
			/* Wait for the rest; read no further than this frame. */
			bufferevent_setwatermark(bev, EV_READ, PROTO_HDR_LEN + n, 0);
			break;
		}
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
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

	if (c->out_paused) {
		c->out_paused = false;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		if (!c->srv->draining) {
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

	if ((what & BEV_EVENT_TIMEOUT) && c->inflight > 0) {
		/* Idle only counts when the peer is not waiting on us. */
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && !(what & BEV_EVENT_ERROR)) {
		/* Half-close: answer what was asked, then close. */
		c->half_closed = true;
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

static void svc_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
			  void *arg)
{
	struct svc_server *srv = arg;
	struct svc_conn *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval idle;

	(void)l;
	(void)sa;
	(void)salen;
	if (srv->draining) {
		evutil_closesocket(fd);
		return;
	}
	if (srv->n_conns >= srv->s->cfg->max_connections) {
		log_warn("refusing a connection: %u connections open (max_connections)", srv->n_conns);
		svc_refuse(fd, "keyholdd has too many connections; retry later");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
		log_warn("SO_PEERCRED: %s", strerror(errno));
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->srv = srv;
	c->refs = 1;
	c->frame_cap = srv->s->cfg->frame_max;
	c->serial = ++srv->next_serial;
	c->who.is_unix = true;
	c->who.uid = cred.uid;
	c->who.gid = cred.gid;
	c->who.pid = cred.pid;
	snprintf(c->who.name, sizeof(c->who.name), "uid:%u", (unsigned)cred.uid);
	c->who.roles = svc_roles_for_unix(srv->s->cfg, cred.uid, cred.gid);
	evutil_make_socket_nonblocking(fd);
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, svc_conn_read_cb, svc_conn_write_cb, svc_conn_event_cb, c);
	idle.tv_sec = srv->s->cfg->idle_timeout_s;
	idle.tv_usec = 0;
	bufferevent_set_timeouts(c->bev, &idle, NULL);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	atomic_fetch_add(&srv->s->connections, 1);
	log_dbg("connection %llu from uid %u gid %u pid %d, roles 0x%x", (unsigned long long)c->serial,
		(unsigned)cred.uid, (unsigned)cred.gid, (int)cred.pid, c->who.roles);
}

static void svc_accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	(void)l;
	(void)arg;
	/* EMFILE and friends: log and keep going; libevent retries. */
	log_warn("accept: %s", evutil_socket_error_to_string(err));
}

/* ---- the Unix socket ---- */

static enum kh_err svc_unix_listen(struct svc_server *srv, struct kh_errbuf *e)
{
	const struct svc_config *cfg = srv->s->cfg;
	struct sockaddr_un sun;
	struct stat st;
	evutil_socket_t probe;
	mode_t old;

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

/* ---- shutdown ---- */

static void svc_server_maybe_finish(struct svc_server *srv)
{
	struct svc_conn *c, *next;

	if (!srv->draining || srv->inflight > 0)
		return;
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next; /* closing c leaves the others in place */
		svc_conn_close_if_done(c);
	}
	if (srv->n_conns == 0)
		event_base_loopexit(srv->base, NULL);
}

static void svc_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_server *srv = arg;

	(void)fd;
	(void)what;
	log_warn("shutdown grace period over with %u requests in flight; stopping", srv->inflight);
	event_base_loopbreak(srv->base);
}

void svc_server_shutdown(struct svc_server *srv)
{
	struct svc_conn *c;
	struct timeval grace = { SVC_GRACE_S, 0 };

	if (srv->draining)
		return;
	srv->draining = true;
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	log_info("shutting down: %u connections, %u requests in flight", srv->n_conns, srv->inflight);
	if (srv->listener != NULL) {
		evconnlistener_free(srv->listener);
		srv->listener = NULL;
		if (srv->socket_path != NULL)
			unlink(srv->socket_path);
	}
	for (c = srv->conns; c != NULL; c = c->next)
		bufferevent_disable(c->bev, EV_READ);
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
	srv->s = s;
	srv->base = base;
	srv->ev_term = evsignal_new(base, SIGTERM, svc_signal_cb, srv);
	srv->ev_int = evsignal_new(base, SIGINT, svc_signal_cb, srv);
	if (srv->ev_term == NULL || srv->ev_int == NULL || evsignal_add(srv->ev_term, NULL) != 0 ||
	    evsignal_add(srv->ev_int, NULL) != 0) {
		svc_server_free(srv);
		return kh_err_set(e, KH_E_INTERNAL, "cannot install signal handlers");
	}
	r = svc_unix_listen(srv, e);
	if (r != KH_OK) {
		svc_server_free(srv);
		return r;
	}
	*out = srv;
	return KH_OK;
}

void svc_server_free(struct svc_server *srv)
{
	if (srv == NULL)
		return;
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
	free(srv->socket_path);
	free(srv);
}
