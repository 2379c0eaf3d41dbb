/* client.c: the client side of the protocol: options, connect (over the
 * endpoints of endpoints.c, moving on when a node is down), framing, send,
 * matching answers to requests by id (pipelined, out of order, with
 * read-ahead), and a request sent again on the next node when the retry
 * rule allows. Messages themselves are msg.c's. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kh_client_int.h"
#include "kh_util.h"

#define KH_HDR_LEN 4u
/* The largest frame any keyholdd accepts (its configurable cap's limit). */
#define KH_REQUEST_FRAME_MAX (64u << 20)

void kh_free(void *p)
{
	free(p);
}

/* ---- options ---- */

static enum kh_err kh_opt_str(char **dst, const char *v);

static const char *kh_env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* $KEYHOLD_ENDPOINTS and what goes with it into o. A bad value is kept in
 * o->bad for kh_client_connect to report (KH_OK here); only memory fails. */
static enum kh_err kh_opts_from_env(kh_client_opts *o)
{
	const char *list = kh_env("KEYHOLD_ENDPOINTS"), *order = kh_env("KEYHOLD_ENDPOINTS_ORDER");
	struct kh_errbuf e = { 0 };
	size_t i;
	bool tls = false;
	int r = KH_OK;

	if (list == NULL)
		return KH_OK;
	r = kh_endpoints_parse(list, &o->eps, &e);
	if (r == KH_OK && order != NULL && strcmp(order, "listed") != 0 && strcmp(order, "spread") != 0)
		r = kh_err_set(&e, KH_E_INVALID_ARGUMENT, "KEYHOLD_ENDPOINTS_ORDER is '%.40s': expected spread or listed",
			       order);
	if (r == KH_E_RESOURCE_EXHAUSTED)
		return r;
	if (r != KH_OK) {
		kh_endpoints_clear(&o->eps);
		o->bad = strdup(e.msg);
		return o->bad != NULL ? KH_OK : KH_E_RESOURCE_EXHAUSTED;
	}
	o->listed = order != NULL && strcmp(order, "listed") == 0;
	for (i = 0; i < o->eps.n; i++)
		tls = tls || o->eps.ep[i].kind == KH_EP_TLS;
	if (!tls)
		return KH_OK;
	/* The PKCS#11 module's and the provider's TLS variables, read here
	 * once for every client of the list. */
	KH_TRY(kh_opt_str(&o->tls_ca, kh_env("KEYHOLD_TLS_CA")));
	KH_TRY(kh_opt_str(&o->tls_cert, kh_env("KEYHOLD_TLS_CERT")));
	KH_TRY(kh_opt_str(&o->tls_key, kh_env("KEYHOLD_TLS_KEY")));
	KH_TRY(kh_opt_str(&o->tls_server_name, kh_env("KEYHOLD_TLS_SERVER_NAME")));
out:
	return r;
}

/* $KEYHOLD_SPIN_US into o; a bad value is kept in o->bad_spin for
 * kh_client_connect to report, and its reason in o->err (KH_OK here);
 * only memory fails. */
static enum kh_err kh_opts_spin_from_env(kh_client_opts *o)
{
	const char *v = kh_env("KEYHOLD_SPIN_US");
	char *end = NULL, msg[128];
	unsigned long us;

	o->spin_us = KH_SPIN_US_DEFAULT;
	if (v == NULL)
		return KH_OK;
	errno = 0;
	us = strtoul(v, &end, 10);
	if (errno == 0 && end != v && *end == '\0' && v[0] >= '0' && v[0] <= '9' && us <= KH_SPIN_US_MAX) {
		o->spin_us = (uint32_t)us;
		return KH_OK;
	}
	snprintf(msg, sizeof(msg), "KEYHOLD_SPIN_US is '%.40s': expected microseconds from 0 to %u", v,
		 KH_SPIN_US_MAX);
	kh_ignore(kh_strlcpy(o->err, msg, sizeof(o->err)));
	o->bad_spin = strdup(msg);
	return o->bad_spin != NULL ? KH_OK : KH_E_RESOURCE_EXHAUSTED;
}

enum kh_err kh_client_opts_new(kh_client_opts **out)
{
	kh_client_opts *o = calloc(1, sizeof(*o));
	const char *env = getenv("KEYHOLD_SOCKET");
	int r = KH_OK;

	KH_ENSURE(o != NULL, KH_E_RESOURCE_EXHAUSTED);
	o->socket = strdup(env != NULL && env[0] != '\0' ? env : KH_DEFAULT_SOCKET);
	KH_ENSURE(o->socket != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(kh_opts_from_env(o));
	KH_TRY(kh_opts_spin_from_env(o));
	*out = o;
	o = NULL;
out:
	kh_client_opts_free(o);
	return r;
}

static void kh_opts_clear(struct kh_client_opts *o)
{
	free(o->socket);
	free(o->connect);
	free(o->tls_cert);
	free(o->tls_key);
	free(o->tls_ca);
	free(o->tls_server_name);
	free(o->bad);
	free(o->bad_spin);
	kh_endpoints_clear(&o->eps);
	memset(o, 0, sizeof(*o));
}

void kh_client_opts_free(kh_client_opts *o)
{
	if (o == NULL)
		return;
	kh_opts_clear(o);
	free(o);
}

/* Replaces *dst with a copy of v (NULL: unset). */
static enum kh_err kh_opt_str(char **dst, const char *v)
{
	char *n = NULL;

	if (v != NULL) {
		if (strnlen(v, KH_OPT_STR_MAX + 1) > KH_OPT_STR_MAX)
			return KH_E_INVALID_ARGUMENT;
		n = strdup(v);
		if (n == NULL)
			return KH_E_RESOURCE_EXHAUSTED;
	}
	free(*dst);
	*dst = n;
	return KH_OK;
}

/* An explicit single address replaces the list (and a refused one). */
static void kh_opts_single(kh_client_opts *o)
{
	kh_endpoints_clear(&o->eps);
	free(o->bad);
	o->bad = NULL;
}

enum kh_err kh_client_opts_set_socket(kh_client_opts *o, const char *path)
{
	int r;

	if (o == NULL || path == NULL)
		return KH_E_INVALID_ARGUMENT;
	r = kh_opt_str(&o->socket, path);
	if (r == KH_OK)
		kh_opts_single(o);
	return r;
}

enum kh_err kh_client_opts_set_endpoints(kh_client_opts *o, const char *list)
{
	struct kh_errbuf e = { 0 };
	int r;

	if (o == NULL)
		return KH_E_INVALID_ARGUMENT;
	o->err[0] = '\0';
	r = kh_endpoints_parse(list, &o->eps, &e);
	if (r != KH_OK) {
		kh_ignore(kh_strlcpy(o->err, e.msg, sizeof(o->err)));
		return r;
	}
	free(o->bad);
	o->bad = NULL;
	return KH_OK;
}

enum kh_err kh_client_opts_set_tls_files(kh_client_opts *o, const char *ca_file, const char *cert_file,
					 const char *key_file)
{
	int r = KH_OK;

	if (o == NULL)
		return KH_E_INVALID_ARGUMENT;
	if (ca_file != NULL)
		KH_TRY(kh_opt_str(&o->tls_ca, ca_file));
	if (cert_file != NULL)
		KH_TRY(kh_opt_str(&o->tls_cert, cert_file));
	if (key_file != NULL)
		KH_TRY(kh_opt_str(&o->tls_key, key_file));
out:
	return r;
}

void kh_client_opts_set_endpoints_listed(kh_client_opts *o, bool listed)
{
	if (o != NULL)
		o->listed = listed;
}

const char *kh_client_opts_error_message(const kh_client_opts *o)
{
	return o != NULL ? o->err : "no options";
}

enum kh_err kh_client_opts_set_tls(kh_client_opts *o, const char *hostport, const char *ca_file,
				   const char *cert_file, const char *key_file)
{
	int r;

	if (o == NULL || hostport == NULL)
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_opt_str(&o->connect, hostport));
	kh_opts_single(o);
	KH_TRY(kh_opt_str(&o->tls_ca, ca_file));
	KH_TRY(kh_opt_str(&o->tls_cert, cert_file));
	KH_TRY(kh_opt_str(&o->tls_key, key_file));
out:
	return r;
}

enum kh_err kh_client_opts_set_tls_server_name(kh_client_opts *o, const char *name)
{
	if (o == NULL || name == NULL)
		return KH_E_INVALID_ARGUMENT;
	return kh_opt_str(&o->tls_server_name, name);
}

void kh_client_opts_set_timeout(kh_client_opts *o, uint32_t ms)
{
	if (o != NULL)
		o->timeout_ms = ms;
}

void kh_client_opts_set_spin(kh_client_opts *o, uint32_t us)
{
	if (o == NULL)
		return;
	o->spin_us = us < KH_SPIN_US_MAX ? us : KH_SPIN_US_MAX;
	free(o->bad_spin);
	o->bad_spin = NULL;
}

/* ---- errors ---- */

static enum kh_err kh_client_broken(kh_client *c, enum kh_err code, const char *what)
{
	c->broken = true;
	return kh_err_set(&c->err, code, "%s", what);
}

enum kh_err kh_client_error_code(const kh_client *c)
{
	return c != NULL ? c->err.code : KH_E_INVALID_ARGUMENT;
}

const char *kh_client_error_message(const kh_client *c)
{
	return c != NULL ? c->err.msg : "no client";
}

const char *kh_client_endpoint(const kh_client *c)
{
	return c != NULL ? c->ep_name : "";
}

unsigned kh_client_failovers(const kh_client *c)
{
	return c != NULL ? c->failovers : 0;
}

unsigned kh_client_pending(const kh_client *c)
{
	return c != NULL ? (unsigned)c->n_pend : 0;
}

/* ---- transport ---- */

/* Waits until the socket is ready for events (after a send or recv
 * found it was not), within the timeout if there is one. The socket is
 * always tried first, and the wait is a poll() rather than a blocking
 * recv(): a task asleep in recv() on a Unix socket is woken each time
 * keyholdd reads a request off it (the freed buffer space wakes every
 * sleeper on the socket, whatever it waits for), while poll() for POLLIN
 * is woken only by the answer. Before it sleeps for an answer on a Unix
 * socket it spins (kh_client_opts_set_spin): a quick answer is then taken
 * without a sleep and a wake-up, which on a virtual machine cost both
 * sides an inter-processor interrupt (docs/PERFORMANCE.md "The client's
 * wait"). */
static enum kh_err kh_wait(kh_client *c, short events)
{
	struct pollfd pfd = { c->fd, events, 0 };
	int n;

	if (events == POLLIN && c->tls == NULL && c->opts.spin_us != 0 && kh_spin_next(&c->spin)) {
		bool answered = kh_spin_poll(c->fd, c->opts.spin_us);

		kh_spin_result(&c->spin, answered);
		if (answered)
			return KH_OK;
	}
	do
		n = poll(&pfd, 1, c->opts.timeout_ms != 0 ? (int)c->opts.timeout_ms : -1);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return kh_client_broken(c, KH_E_DEADLINE_EXCEEDED, "no answer from keyholdd within the timeout");
	if (n < 0)
		return kh_client_broken(c, KH_E_UNAVAILABLE, "poll failed");
	return KH_OK;
}

static enum kh_err kh_write_all(kh_client *c, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	int r;

	while (off < len) {
		ssize_t n;

		if (c->tls != NULL) {
			n = kh_tls_write(c->tls, buf + off, len - off, &c->err);
			if (n < 0)
				return kh_client_broken(c, KH_E_UNAVAILABLE, "TLS write failed");
		} else {
			n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if ((r = kh_wait(c, POLLOUT)) != KH_OK)
					return r;
				continue;
			}
			if (n <= 0)
				return kh_client_broken(c, KH_E_UNAVAILABLE,
							"keyholdd closed the connection (is it running, and does it accept you?)");
		}
		off += (size_t)n;
	}
	return KH_OK;
}

/* Fills len bytes of buf: first from what was read ahead, then with
 * recv()s of up to sizeof(rbuf) (pipelined answers come in together, and
 * a frame header and its body in one call). */
static enum kh_err kh_read_all(kh_client *c, uint8_t *buf, size_t len)
{
	size_t off = 0;
	int r;

	while (off < len) {
		ssize_t n;

		if (c->rlen > c->roff) {
			size_t k = c->rlen - c->roff;

			if (k > len - off)
				k = len - off;
			memcpy(buf + off, c->rbuf + c->roff, k);
			c->roff += k;
			off += k;
			continue;
		}
		if (c->tls != NULL) {
			n = kh_tls_read(c->tls, c->rbuf, sizeof(c->rbuf), &c->err);
		} else {
			n = recv(c->fd, c->rbuf, sizeof(c->rbuf), MSG_DONTWAIT);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if ((r = kh_wait(c, POLLIN)) != KH_OK)
					return r;
				continue;
			}
		}
		if (n == 0)
			return kh_client_broken(c, KH_E_UNAVAILABLE, "keyholdd closed the connection");
		if (n < 0)
			return kh_client_broken(c, KH_E_UNAVAILABLE, "reading from keyholdd failed");
		c->roff = 0;
		c->rlen = (size_t)n;
	}
	return KH_OK;
}

/* ---- connect ---- */

static enum kh_err kh_connect_unix(kh_client *c, const char *path)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!kh_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)))
		return kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "socket path %s is too long", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return kh_err_set(&c->err, KH_E_UNAVAILABLE, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int err = errno;

		return kh_err_set(&c->err, err == EACCES ? KH_E_PERMISSION_DENIED : KH_E_UNAVAILABLE,
				  "cannot connect to keyholdd at %s: %s%s", path, strerror(err),
				  err == ENOENT || err == ECONNREFUSED ? " (is keyholdd running? set --socket or KEYHOLD_SOCKET)"
				  : err == EACCES ? " (ask for the socket's group)" : "");
	}
	return KH_OK;
}

static void kh_disconnect(kh_client *c)
{
	size_t i;

	kh_tls_free(&c->tls);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	for (i = 0; i < c->n_pend; i++)
		if (c->pend[i].resp != NULL)
			protobuf_c_message_free_unpacked(&c->pend[i].resp->base, NULL);
	c->n_pend = 0;
	c->roff = c->rlen = 0;
	c->broken = false;
}

/* The endpoints c connects to: the list, else the TLS address, else the
 * socket (the order kh_client_connect always had). */
static enum kh_err kh_client_eps(kh_client *c, const kh_client_opts *o)
{
	if (o->eps.n > 0)
		return kh_endpoints_copy(&o->eps, &c->eps);
	if (o->connect != NULL)
		return kh_endpoints_add(&c->eps, KH_EP_TLS, o->connect, strlen(o->connect));
	if (o->socket != NULL)
		return kh_endpoints_add(&c->eps, KH_EP_UNIX, o->socket, strlen(o->socket));
	return KH_OK;
}

enum kh_err kh_client_new(const kh_client_opts *opts, kh_client **out)
{
	kh_client *c = NULL;
	int r;

	KH_ENSURE(opts != NULL && out != NULL, KH_E_INVALID_ARGUMENT);
	c = calloc(1, sizeof(*c));
	KH_ENSURE(c != NULL, KH_E_RESOURCE_EXHAUSTED);
	c->fd = -1;
	c->next_id = 1;
	c->opts.timeout_ms = opts->timeout_ms;
	c->opts.spin_us = opts->spin_us;
	KH_TRY(kh_opt_str(&c->opts.socket, opts->socket));
	KH_TRY(kh_opt_str(&c->opts.connect, opts->connect));
	KH_TRY(kh_opt_str(&c->opts.tls_cert, opts->tls_cert));
	KH_TRY(kh_opt_str(&c->opts.tls_key, opts->tls_key));
	KH_TRY(kh_opt_str(&c->opts.tls_ca, opts->tls_ca));
	KH_TRY(kh_opt_str(&c->opts.tls_server_name, opts->tls_server_name));
	KH_TRY(kh_opt_str(&c->opts.bad, opts->bad));
	KH_TRY(kh_opt_str(&c->opts.bad_spin, opts->bad_spin));
	c->opts.listed = opts->listed;
	KH_TRY(kh_client_eps(c, opts));
	*out = c;
	c = NULL;
out:
	kh_client_free(c);
	return r;
}

/* Adds a note to the failure already in c->err, when it fits. */
static void kh_err_note(kh_client *c, const char *note)
{
	size_t n = strlen(c->err.msg);

	if (c->err.code != KH_OK && n + strlen(note) < sizeof(c->err.msg))
		memcpy(c->err.msg + n, note, strlen(note) + 1);
}

static enum kh_err kh_connect_ep(kh_client *c, size_t i)
{
	const struct kh_endpoint *ep = &c->eps.ep[i];
	int r;

	c->cur = i;
	snprintf(c->ep_name, sizeof(c->ep_name), "%s:%s", ep->kind == KH_EP_TLS ? "tls" : "unix", ep->addr);
	if (ep->kind == KH_EP_TLS) {
		struct kh_tls_opts t = { ep->addr, c->opts.tls_cert, c->opts.tls_key, c->opts.tls_ca,
					 c->opts.tls_server_name };

		r = kh_tls_connect(&t, &c->fd, &c->tls, &c->err);
	} else {
		r = kh_connect_unix(c, ep->addr);
	}
	if (r != KH_OK) {
		/* Not connected: a later call must not take fd for a connection. */
		kh_tls_free(&c->tls);
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
	}
	return r;
}

/* Connects to the first endpoint that takes the connection, trying at
 * most *left of them from index first on (each one tried uses one up).
 * Moving past a failed node counts as a failover. */
static enum kh_err kh_connect_from(kh_client *c, size_t first, size_t *left)
{
	size_t n = c->eps.n, tried = 0;
	int r = KH_E_UNAVAILABLE;

	while (*left > 0) {
		kh_err_clear(&c->err);
		kh_disconnect(c);
		if (tried > 0)
			c->failovers++;
		(*left)--;
		r = kh_connect_ep(c, (first + tried) % n);
		tried++;
		if (r == KH_OK) {
			c->connected_once = true;
			return KH_OK;
		}
	}
	if (n > 1) {
		char note[64];

		snprintf(note, sizeof(note), " (%zu of %zu endpoints tried)", tried, n);
		kh_err_note(c, note);
	}
	return r;
}

enum kh_err kh_client_connect(kh_client *c)
{
	size_t left;

	if (c == NULL)
		return KH_E_INVALID_ARGUMENT;
	kh_err_clear(&c->err);
	kh_disconnect(c);
	if (c->opts.bad != NULL)
		return kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "%s", c->opts.bad);
	if (c->opts.bad_spin != NULL)
		return kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "%s", c->opts.bad_spin);
	if (c->eps.n == 0)
		return kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "no socket path or address to connect to");
	left = c->eps.n;
	return kh_connect_from(c, kh_endpoints_start(c->eps.n, c->opts.listed), &left);
}

enum kh_err kh_client_connect_unix(const char *path, kh_client **out)
{
	kh_client_opts *o = NULL;
	kh_client *c = NULL;
	int r;

	KH_ENSURE(out != NULL, KH_E_INVALID_ARGUMENT);
	KH_TRY(kh_client_opts_new(&o));
	if (path != NULL)
		KH_TRY(kh_client_opts_set_socket(o, path));
	KH_TRY(kh_client_new(o, &c));
	KH_TRY(kh_client_connect(c));
	*out = c;
	c = NULL;
out:
	kh_client_free(c);
	kh_client_opts_free(o);
	return r;
}

void kh_client_free(kh_client *c)
{
	if (c == NULL)
		return;
	kh_disconnect(c);
	kh_opts_clear(&c->opts);
	kh_endpoints_clear(&c->eps);
	free(c->pend);
	free(c->frame);
	free(c);
}

/* ---- requests and answers ---- */

/* Grows the reused frame buffer to at least n bytes. */
static enum kh_err kh_frame_reserve(kh_client *c, size_t n)
{
	uint8_t *p;

	if (n <= c->frame_cap)
		return KH_OK;
	p = realloc(c->frame, n);
	if (p == NULL)
		return kh_err_set(&c->err, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	c->frame = p;
	c->frame_cap = n;
	return KH_OK;
}

enum kh_err kh_send_pb(kh_client *c, const ProtobufCMethodDescriptor *method, const ProtobufCMessage *body,
		       uint64_t *id)
{
	Keyhold__V1__Request env = KEYHOLD__V1__REQUEST__INIT;
	size_t blen, elen;
	int r;

	if (c->broken || c->fd < 0)
		return kh_err_set(&c->err, KH_E_UNAVAILABLE, "the connection to keyholdd is broken; reconnect");
	if (c->n_pend == c->cap_pend) {
		size_t cap = c->cap_pend ? 2 * c->cap_pend : 16;
		struct kh_pending *np = realloc(c->pend, cap * sizeof(*np));

		if (np == NULL)
			return kh_err_set(&c->err, KH_E_RESOURCE_EXHAUSTED, "out of memory");
		c->pend = np;
		c->cap_pend = cap;
	}
	/* The body is packed at the end of the buffer, the envelope (which
	 * copies it) at its start: one reused buffer, no allocation per call. */
	blen = protobuf_c_message_get_packed_size(body);
	if (blen > KH_REQUEST_FRAME_MAX)
		return kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "request too large");
	env.id = c->next_id;
	env.method = (char *)(uintptr_t)method->name;
	env.deadline_ms = c->opts.timeout_ms;
	env.body.len = blen;
	env.body.data = NULL;
	/* Envelope size: blen plus a bounded header (id, method, deadline,
	 * tags and lengths); computed with a dummy body pointer. */
	elen = protobuf_c_message_get_packed_size(&env.base);
	if (elen > KH_REQUEST_FRAME_MAX)
		return kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "request too large");
	KH_TRY(kh_frame_reserve(c, KH_HDR_LEN + elen + blen));
	env.body.data = c->frame + KH_HDR_LEN + elen;
	if (protobuf_c_message_pack(body, env.body.data) != blen ||
	    protobuf_c_message_pack(&env.base, c->frame + KH_HDR_LEN) != elen)
		return kh_err_set(&c->err, KH_E_INTERNAL, "cannot encode the request");
	c->frame[0] = (uint8_t)(elen >> 24);
	c->frame[1] = (uint8_t)(elen >> 16);
	c->frame[2] = (uint8_t)(elen >> 8);
	c->frame[3] = (uint8_t)elen;
	KH_TRY(kh_write_all(c, c->frame, KH_HDR_LEN + elen));
	memset(&c->pend[c->n_pend], 0, sizeof(c->pend[0]));
	c->pend[c->n_pend].id = c->next_id;
	c->pend[c->n_pend].method = method;
	c->n_pend++;
	*id = c->next_id++;
out:
	return r;
}

enum kh_err kh_send(kh_client *c, const kh_msg *req, uint64_t *id)
{
	if (c == NULL || req == NULL || id == NULL)
		return KH_E_INVALID_ARGUMENT;
	kh_err_clear(&c->err);
	if (req->method == NULL || req->root != NULL || req->msg->descriptor != req->method->input)
		return kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "not a request message (use kh_request_new)");
	return kh_send_pb(c, req->method, req->msg, id);
}

enum kh_err kh_response_decode(const uint8_t *buf, size_t len, Keyhold__V1__Response **out)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(&keyhold__v1__response__descriptor, NULL, len, buf);

	if (m == NULL)
		return KH_E_DATA_LOSS;
	*out = (Keyhold__V1__Response *)m;
	return KH_OK;
}

/* The status of an answer as enum kh_err (unknown codes: UNKNOWN). */
static enum kh_err kh_resp_code(const Keyhold__V1__Response *resp)
{
	int code = resp->status != NULL ? resp->status->code : 0;

	if (code < 0 || code > 16)
		code = 2;
	return (enum kh_err)-code;
}

static const char *kh_resp_message(const Keyhold__V1__Response *resp)
{
	return resp->status != NULL && resp->status->message != NULL ? resp->status->message : "";
}

/* Reads one answer and files it with its request. */
static enum kh_err kh_read_one(kh_client *c)
{
	uint8_t hdr[KH_HDR_LEN];
	uint8_t *buf = NULL;
	Keyhold__V1__Response *resp = NULL;
	size_t len, i;
	int r;

	KH_TRY(kh_read_all(c, hdr, sizeof(hdr)));
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	if (len == 0 || len > KH_CLIENT_FRAME_MAX) {
		r = kh_client_broken(c, KH_E_DATA_LOSS, "keyholdd sent a bad frame length");
		goto out;
	}
	buf = malloc(len);
	KH_ENSURE(buf != NULL, kh_err_set(&c->err, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	KH_TRY(kh_read_all(c, buf, len));
	if (kh_response_decode(buf, len, &resp) != KH_OK) {
		r = kh_client_broken(c, KH_E_DATA_LOSS, "keyholdd sent a malformed answer");
		goto out;
	}
	for (i = 0; i < c->n_pend; i++) {
		if (c->pend[i].id == resp->id && !c->pend[i].have) {
			c->pend[i].resp = resp;
			c->pend[i].have = true;
			c->pend[i].seq = ++c->seq;
			resp = NULL;
			r = KH_OK;
			goto out;
		}
	}
	/* Id 0 answers what could not be attributed: a refused connection or
	 * an unparsable request. It ends the wait with the server's reason. */
	r = kh_resp_code(resp);
	if (r != KH_OK)
		kh_err_set(&c->err, r, "%s", kh_resp_message(resp));
	else
		r = kh_err_set(&c->err, KH_E_INTERNAL, "answer to an unknown request");
	if (resp->id == 0)
		c->broken = true;
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	free(buf);
	return r;
}

/* Takes pending answer i: *status is the server's verdict (message in
 * c->err); on OK, *out the unpacked body (of method *m). A body that does
 * not decode is a DATA_LOSS status. */
static void kh_take_pb(kh_client *c, size_t i, enum kh_err *status, ProtobufCMessage **out,
		       const ProtobufCMethodDescriptor **m)
{
	struct kh_pending p = c->pend[i];

	c->pend[i] = c->pend[--c->n_pend];
	*out = NULL;
	*m = p.method;
	*status = kh_resp_code(p.resp);
	if (*status != KH_OK) {
		kh_err_set(&c->err, *status, "%s", kh_resp_message(p.resp));
	} else {
		*out = protobuf_c_message_unpack(p.method->output, NULL, p.resp->body.len, p.resp->body.data);
		if (*out == NULL)
			*status = kh_err_set(&c->err, KH_E_DATA_LOSS, "keyholdd sent a malformed %s",
					     p.method->output->short_name);
	}
	protobuf_c_message_free_unpacked(&p.resp->base, NULL);
}

static void kh_take(kh_client *c, size_t i, enum kh_err *status, kh_msg **out)
{
	const ProtobufCMethodDescriptor *m;
	ProtobufCMessage *pb;

	*out = NULL;
	kh_take_pb(c, i, status, &pb, &m);
	if (*status == KH_OK && kh_msg_wrap(pb, m, out) != KH_OK)
		*status = kh_err_set(&c->err, KH_E_RESOURCE_EXHAUSTED, "out of memory");
}

enum kh_err kh_wait_pb(kh_client *c, uint64_t id, enum kh_err *status, ProtobufCMessage **resp)
{
	const ProtobufCMethodDescriptor *m;
	int r;

	for (;;) {
		size_t i;

		for (i = 0; i < c->n_pend; i++) {
			if (c->pend[i].id == id && c->pend[i].have) {
				kh_take_pb(c, i, status, resp, &m);
				return KH_OK;
			}
		}
		KH_TRY(kh_read_one(c));
	}
out:
	return r;
}

enum kh_err kh_exchange_pb(kh_client *c, const ProtobufCMethodDescriptor *method, const ProtobufCMessage *body,
			   enum kh_err *status, ProtobufCMessage **resp)
{
	/* Pipelined requests of the caller would be lost with the connection:
	 * only a request alone in flight moves to another node. */
	bool alone = c->n_pend == 0;
	bool healthy = c->fd >= 0 && !c->broken;
	/* Each endpoint at most once for this request. */
	size_t left = c->eps.n > 0 ? c->eps.n - (healthy ? 1 : 0) : 0;
	int r;

	for (;;) {
		enum kh_fail_stage stage = KH_FAIL_UNSENT;
		enum kh_err code;
		uint64_t id;

		*status = KH_OK;
		*resp = NULL;
		kh_err_clear(&c->err);
		if ((c->fd < 0 || c->broken) && alone && c->connected_once) {
			/* The connection broke earlier (its node died or this loop
			 * left it): nothing of this request was sent yet. With one
			 * endpoint this is a reconnect, not a move. */
			if (c->eps.n > 1)
				c->failovers++;
			KH_TRY(kh_connect_from(c, (c->cur + 1) % c->eps.n, &left));
		}
		r = kh_send_pb(c, method, body, &id);
		if (r == KH_OK) {
			stage = KH_FAIL_SENT;
			r = kh_wait_pb(c, id, status, resp);
			if (r == KH_OK && *status != KH_E_UNAVAILABLE)
				return KH_OK;
			if (r == KH_OK)
				stage = KH_FAIL_ANSWERED;
		}
		code = r != KH_OK ? (enum kh_err)r : *status;
		if (!alone || !c->connected_once || left == 0 || !kh_retry_allowed(method->name, stage, code)) {
			if (code == KH_E_UNAVAILABLE && stage != KH_FAIL_UNSENT && !kh_method_retry_safe(method->name))
				kh_err_note(c, " (not sent again: the request changes state and may have been done; check before repeating it)");
			return r;
		}
		/* Leave this node: the loop connects to the next one. */
		kh_disconnect(c);
		c->fd = -1;
		c->broken = true;
	}
out:
	return r;
}

enum kh_err kh_call(kh_client *c, const kh_msg *req, kh_msg **resp)
{
	ProtobufCMessage *pb = NULL;
	enum kh_err st;
	int r;

	if (c == NULL || req == NULL || resp == NULL)
		return KH_E_INVALID_ARGUMENT;
	kh_err_clear(&c->err);
	if (req->method == NULL || req->root != NULL || req->msg->descriptor != req->method->input)
		return kh_err_set(&c->err, KH_E_INVALID_ARGUMENT, "not a request message (use kh_request_new)");
	KH_TRY(kh_exchange_pb(c, req->method, req->msg, &st, &pb));
	KH_TRY(st);
	KH_ENSURE(kh_msg_wrap(pb, req->method, resp) == KH_OK,
		  kh_err_set(&c->err, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	pb = NULL;
out:
	return r;
}

/* Waits for the earliest-arrived answer not yet taken. *i: its index. */
static enum kh_err kh_next_answer(kh_client *c, size_t *best_out)
{
	int r;

	kh_err_clear(&c->err);
	for (;;) {
		size_t i, best = SIZE_MAX;

		if (c->n_pend == 0)
			return kh_err_set(&c->err, KH_E_FAILED_PRECONDITION, "no request is waiting for an answer");
		for (i = 0; i < c->n_pend; i++)
			if (c->pend[i].have && (best == SIZE_MAX || c->pend[i].seq < c->pend[best].seq))
				best = i;
		if (best != SIZE_MAX) {
			*best_out = best;
			return KH_OK;
		}
		KH_TRY(kh_read_one(c));
	}
out:
	return r;
}

enum kh_err kh_recv(kh_client *c, uint64_t *id, enum kh_err *status, kh_msg **resp)
{
	size_t i;
	int r;

	if (c == NULL || id == NULL || status == NULL || resp == NULL)
		return KH_E_INVALID_ARGUMENT;
	KH_TRY(kh_next_answer(c, &i));
	*id = c->pend[i].id;
	kh_take(c, i, status, resp);
out:
	return r;
}

enum kh_err kh_recv_pb(kh_client *c, uint64_t *id, enum kh_err *status, ProtobufCMessage **resp)
{
	const ProtobufCMethodDescriptor *m;
	size_t i;
	int r;

	KH_TRY(kh_next_answer(c, &i));
	*id = c->pend[i].id;
	kh_take_pb(c, i, status, resp, &m);
out:
	return r;
}
