/* libkeyhold.c: the client side of the protocol: connect, frame, send,
 * match answers to requests by id (pipelined, out of order), decode. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "keyhold.h"
#include "kh_util.h"
#include "kh_client_int.h"
#include "proto.h"

/* Answers can be larger than requests (key lists, status). */
#define KH_CLIENT_FRAME_MAX (64u << 20)

static enum kh_err kh_client_broken(kh_client *c, struct kh_errbuf *e, enum kh_err code, const char *what)
{
	c->broken = true;
	return kh_err_set(e, code, "%s", what);
}

/* ---- transport ---- */

static enum kh_err kh_wait(kh_client *c, short events, struct kh_errbuf *e)
{
	struct pollfd pfd = { c->fd, events, 0 };
	int n;

	if (c->timeout_ms == 0)
		return KH_OK;
	do
		n = poll(&pfd, 1, (int)c->timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return kh_client_broken(c, e, KH_E_DEADLINE_EXCEEDED, "no answer from keyholdd within the timeout");
	if (n < 0)
		return kh_client_broken(c, e, KH_E_UNAVAILABLE, "poll failed");
	return KH_OK;
}

static enum kh_err kh_write_all(kh_client *c, const uint8_t *buf, size_t len, struct kh_errbuf *e)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n;

		if (c->tls != NULL) {
			n = kh_tls_write(c->tls, buf + off, len - off, e);
			if (n < 0)
				return kh_client_broken(c, e, KH_E_UNAVAILABLE, "TLS write failed");
		} else {
			if (kh_wait(c, POLLOUT, e) != KH_OK)
				return e != NULL ? e->code : KH_E_DEADLINE_EXCEEDED;
			n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return kh_client_broken(c, e, KH_E_UNAVAILABLE,
							"keyholdd closed the connection (is it running, and does it accept you?)");
		}
		off += (size_t)n;
	}
	return KH_OK;
}

/* Fills len bytes of buf: first from what was read ahead, then with
 * recv()s of up to sizeof(rbuf) (pipelined answers come in together, and
 * a frame header and its body in one call). */
static enum kh_err kh_read_all(kh_client *c, uint8_t *buf, size_t len, struct kh_errbuf *e)
{
	size_t off = 0;

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
			n = kh_tls_read(c->tls, c->rbuf, sizeof(c->rbuf), e);
		} else {
			if (kh_wait(c, POLLIN, e) != KH_OK)
				return e != NULL ? e->code : KH_E_DEADLINE_EXCEEDED;
			n = recv(c->fd, c->rbuf, sizeof(c->rbuf), 0);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n == 0)
			return kh_client_broken(c, e, KH_E_UNAVAILABLE, "keyholdd closed the connection");
		if (n < 0)
			return kh_client_broken(c, e, KH_E_UNAVAILABLE, "reading from keyholdd failed");
		c->roff = 0;
		c->rlen = (size_t)n;
	}
	return KH_OK;
}

/* ---- connect ---- */

static enum kh_err kh_connect_unix(kh_client *c, const char *path, struct kh_errbuf *e)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!kh_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "socket path %s is too long", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return kh_err_set(e, KH_E_UNAVAILABLE, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int err = errno;

		return kh_err_set(e, err == EACCES ? KH_E_PERMISSION_DENIED : KH_E_UNAVAILABLE,
				  "cannot connect to keyholdd at %s: %s%s", path, strerror(err),
				  err == ENOENT || err == ECONNREFUSED ? " (is keyholdd running? set --socket or KEYHOLD_SOCKET)"
				  : err == EACCES ? " (ask for the socket's group)" : "");
	}
	return KH_OK;
}

enum kh_err kh_client_open(const struct kh_client_opts *opts, kh_client **out, struct kh_errbuf *e)
{
	kh_client *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	c->fd = -1;
	c->next_id = 1;
	c->deadline_ms = opts->deadline_ms;
	c->timeout_ms = opts->timeout_ms;
	if (opts->connect != NULL) {
		struct kh_tls_opts t = { opts->connect, opts->tls_cert, opts->tls_key, opts->tls_ca, opts->tls_server_name };

		r = kh_tls_connect(&t, &c->fd, &c->tls, e);
	} else if (opts->socket != NULL)
		r = kh_connect_unix(c, opts->socket, e);
	else
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "no socket path or address to connect to");
	if (r != KH_OK) {
		kh_client_free(c);
		return r;
	}
	*out = c;
	return KH_OK;
}

enum kh_err kh_client_connect(const char *socket_path, kh_client **out, struct kh_errbuf *e)
{
	struct kh_client_opts o;

	memset(&o, 0, sizeof(o));
	o.socket = socket_path;
	return kh_client_open(&o, out, e);
}

void kh_client_free(kh_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	kh_tls_free(&c->tls);
	if (c->fd >= 0)
		close(c->fd);
	for (i = 0; i < c->n_pend; i++)
		proto_resp_env_clear(&c->pend[i].resp);
	free(c->pend);
	free(c);
}

unsigned kh_client_pending(const kh_client *c)
{
	return (unsigned)c->n_pend;
}

/* ---- requests and answers ---- */

static enum kh_err kh_send(kh_client *c, enum proto_method m, const union proto_req_body *body, uint64_t *id,
			   struct kh_errbuf *e)
{
	uint8_t *frame = NULL;
	size_t len = 0;
	int r;

	if (c->broken)
		return kh_err_set(e, KH_E_UNAVAILABLE, "the connection to keyholdd is broken; reconnect");
	if (c->n_pend == c->cap_pend) {
		size_t cap = c->cap_pend ? 2 * c->cap_pend : 16;
		struct kh_pending *np = realloc(c->pend, cap * sizeof(*np));

		if (np == NULL)
			return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
		c->pend = np;
		c->cap_pend = cap;
	}
	r = proto_request_encode(c->next_id, c->deadline_ms, m, body, &frame, &len);
	if (r != KH_OK)
		return kh_err_set(e, r, "cannot encode the request");
	if (len - PROTO_HDR_LEN > PROTO_FRAME_MAX_LIMIT) {
		free(frame);
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "request too large");
	}
	r = kh_write_all(c, frame, len, e);
	free(frame);
	if (r != KH_OK)
		return r;
	memset(&c->pend[c->n_pend], 0, sizeof(c->pend[0]));
	c->pend[c->n_pend].id = c->next_id;
	c->pend[c->n_pend].method = m;
	c->pend[c->n_pend].seq = 0;
	c->n_pend++;
	*id = c->next_id++;
	return KH_OK;
}

/* Reads one answer and files it with its request. */
static enum kh_err kh_read_one(kh_client *c, struct kh_errbuf *e)
{
	uint8_t hdr[PROTO_HDR_LEN];
	uint8_t *buf = NULL;
	struct proto_resp resp;
	size_t len, i;
	int r;

	r = kh_read_all(c, hdr, sizeof(hdr), e);
	if (r != KH_OK)
		return r;
	if (proto_frame_len(hdr, KH_CLIENT_FRAME_MAX, &len) != KH_OK)
		return kh_client_broken(c, e, KH_E_DATA_LOSS, "keyholdd sent a bad frame length");
	buf = malloc(len);
	if (buf == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	r = kh_read_all(c, buf, len, e);
	if (r == KH_OK && proto_response_decode(buf, len, &resp) != KH_OK)
		r = kh_client_broken(c, e, KH_E_DATA_LOSS, "keyholdd sent a malformed answer");
	free(buf);
	if (r != KH_OK)
		return r;
	for (i = 0; i < c->n_pend; i++) {
		if (c->pend[i].id == resp.id && !c->pend[i].have) {
			c->pend[i].resp = resp;
			c->pend[i].have = true;
			c->pend[i].seq = ++c->seq;
			return KH_OK;
		}
	}
	/* Id 0 answers what could not be attributed: a refused connection or
	 * an unparsable request. It ends the wait with the server's reason. */
	r = resp.status.code != KH_OK ? resp.status.code : KH_E_INTERNAL;
	kh_err_set(e, r, "%s", resp.status.code != KH_OK ? resp.status.msg : "answer to an unknown request");
	proto_resp_env_clear(&resp);
	if (resp.id == 0)
		c->broken = true;
	return r;
}

static void kh_pending_remove(kh_client *c, size_t i)
{
	c->pend[i] = c->pend[--c->n_pend];
}

/* Takes the answer to id (waiting for it) and decodes it into out. */
static enum kh_err kh_take(kh_client *c, size_t i, union proto_resp_body *out, struct kh_errbuf *e)
{
	struct kh_pending p = c->pend[i];
	int r;

	kh_pending_remove(c, i);
	if (p.resp.status.code != KH_OK) {
		r = kh_err_set(e, p.resp.status.code, "%s", p.resp.status.msg);
	} else {
		r = proto_response_body_decode(p.method, p.resp.body, p.resp.body_len, out, e);
	}
	proto_resp_env_clear(&p.resp);
	return r;
}

static enum kh_err kh_wait_id(kh_client *c, uint64_t id, union proto_resp_body *out, struct kh_errbuf *e)
{
	for (;;) {
		size_t i;
		int r;

		for (i = 0; i < c->n_pend; i++)
			if (c->pend[i].id == id && c->pend[i].have)
				return kh_take(c, i, out, e);
		r = kh_read_one(c, e);
		if (r != KH_OK)
			return r;
	}
}

enum kh_err kh_call(kh_client *c, enum proto_method m, const union proto_req_body *req,
		    union proto_resp_body *out, struct kh_errbuf *e)
{
	uint64_t id;
	int r = kh_send(c, m, req, &id, e);

	if (r != KH_OK)
		return r;
	return kh_wait_id(c, id, out, e);
}

/* ---- the RPCs ---- */

enum kh_err kh_get_status(kh_client *c, struct kh_status *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kh_call(c, PROTO_M_GET_STATUS, &q, &a, e);
	if (r == KH_OK)
		*out = a.status;
	return r;
}

enum kh_err kh_get_capabilities(kh_client *c, struct kh_capabilities *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kh_call(c, PROTO_M_GET_CAPABILITIES, &q, &a, e);
	if (r == KH_OK)
		*out = a.caps;
	return r;
}

static enum kh_err kh_copy_name(char *dst, const char *name, struct kh_errbuf *e)
{
	if (name == NULL || !kh_strlcpy(dst, name, KH_NAME_MAX + 1))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "name must match [A-Za-z0-9._-]{1,64}");
	return KH_OK;
}

enum kh_err kh_generate_key(kh_client *c, const char *name, enum kh_key_type type, struct kh_key_info *out,
			    struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kh_copy_name(q.generate.name, name, e);
	if (r != KH_OK)
		return r;
	q.generate.type = type;
	r = kh_call(c, PROTO_M_GENERATE_KEY, &q, &a, e);
	if (r == KH_OK)
		*out = a.key;
	return r;
}

enum kh_err kh_list_keys(kh_client *c, struct kh_key_list *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kh_call(c, PROTO_M_LIST_KEYS, &q, &a, e);
	if (r == KH_OK)
		*out = a.keys;
	return r;
}

enum kh_err kh_get_public_key(kh_client *c, const char *name, struct kh_key_info *out, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kh_copy_name(q.name.name, name, e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_GET_PUBLIC_KEY, &q, &a, e);
	if (r == KH_OK)
		*out = a.key;
	return r;
}

enum kh_err kh_delete_key(kh_client *c, const char *name, struct kh_errbuf *e)
{
	union proto_req_body q;
	union proto_resp_body a;
	int r;

	memset(&q, 0, sizeof(q));
	r = kh_copy_name(q.name.name, name, e);
	if (r == KH_OK)
		r = kh_call(c, PROTO_M_DELETE_KEY, &q, &a, e);
	return r;
}

enum kh_err kh_sign_send(kh_client *c, const struct kh_sign_req *req, uint64_t *id, struct kh_errbuf *e)
{
	union proto_req_body q;

	memset(&q, 0, sizeof(q));
	q.sign = *req;
	return kh_send(c, PROTO_M_SIGN, &q, id, e);
}

enum kh_err kh_sign(kh_client *c, const struct kh_sign_req *req, struct kh_sign_resp *out, struct kh_errbuf *e)
{
	union proto_resp_body a;
	uint64_t id;
	int r;

	r = kh_sign_send(c, req, &id, e);
	if (r == KH_OK)
		r = kh_wait_id(c, id, &a, e);
	if (r == KH_OK)
		*out = a.sign;
	return r;
}

enum kh_err kh_sign_recv(kh_client *c, uint64_t *id, struct kh_errbuf *status, struct kh_sign_resp *out,
			 struct kh_errbuf *e)
{
	for (;;) {
		size_t i, best = SIZE_MAX, waiting = 0;
		int r;

		for (i = 0; i < c->n_pend; i++)
			waiting += c->pend[i].method == PROTO_M_SIGN;
		if (waiting == 0)
			return kh_err_set(e, KH_E_FAILED_PRECONDITION, "no Sign request is waiting for an answer");
		/* The earliest-arrived Sign answer already read. */
		for (i = 0; i < c->n_pend; i++)
			if (c->pend[i].have && c->pend[i].method == PROTO_M_SIGN &&
			    (best == SIZE_MAX || c->pend[i].seq < c->pend[best].seq))
				best = i;
		if (best != SIZE_MAX) {
			union proto_resp_body a;

			*id = c->pend[best].id;
			kh_err_clear(status);
			r = kh_take(c, best, &a, status);
			if (r == KH_OK)
				*out = a.sign;
			return KH_OK;
		}
		r = kh_read_one(c, e);
		if (r != KH_OK)
			return r;
	}
}
