/* kh_client_int: libkeyhold's internals shared by its files: the client
 * handle, the message handle and the TLS transport. Not installed. */
#ifndef KH_CLIENT_INT_H
#define KH_CLIENT_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "keyhold/keyhold.h"
#include "kh_err.h"
#include "kh_spin.h"
#include "proto_schema.h"

/* Answers can be larger than requests (key lists, status). */
#define KH_CLIENT_FRAME_MAX (64u << 20)
/* Option strings (paths, HOST:PORT, names). */
#define KH_OPT_STR_MAX 4096u

/* ---- endpoints.c: the nodes a client may use, and the retry rule ---- */

#define KH_ENDPOINTS_MAX 16

enum kh_ep_kind { KH_EP_UNIX, KH_EP_TLS };

struct kh_endpoint {
	enum kh_ep_kind kind;
	char *addr;             /* a socket path, or HOST:PORT */
};

struct kh_endpoints {
	struct kh_endpoint ep[KH_ENDPOINTS_MAX];
	size_t n;
};

/* Where a request failed: before the node had all of it, after, or in the
 * node's own answer. */
enum kh_fail_stage { KH_FAIL_UNSENT, KH_FAIL_SENT, KH_FAIL_ANSWERED };

/* Parses "unix:PATH,tls:HOST:PORT,..." (blanks around entries ignored)
 * into *out (replaced only on success); KH_E_INVALID_ARGUMENT with the
 * entry's number and what was expected in e. */
enum kh_err kh_endpoints_parse(const char *list, struct kh_endpoints *out, struct kh_errbuf *e) KH_WUR;
/* Appends a copy of addr[0..len); KH_E_OUT_OF_RANGE when full. */
enum kh_err kh_endpoints_add(struct kh_endpoints *eps, enum kh_ep_kind kind, const char *addr, size_t len) KH_WUR;
/* Replaces *dst with a copy of src (dst untouched on failure). */
enum kh_err kh_endpoints_copy(const struct kh_endpoints *src, struct kh_endpoints *dst) KH_WUR;
void kh_endpoints_clear(struct kh_endpoints *eps);
/* The index a new connection over n endpoints tries first: 0 when listed
 * (in the order given), else spread by process id and a per-process
 * connection counter. Thread-safe. */
size_t kh_endpoints_start(size_t n, bool listed);
/* True for the methods keyhold.proto marks NO_SIDE_EFFECTS or IDEMPOTENT. */
bool kh_method_retry_safe(const char *method);
/* Whether a request of method that failed with code at stage may be sent
 * again on the next endpoint: only UNAVAILABLE; always when unsent, else
 * only a retry-safe method. */
bool kh_retry_allowed(const char *method, enum kh_fail_stage stage, enum kh_err code);

struct kh_client_opts {
	char *socket;
	char *connect;          /* HOST:PORT: TLS instead of the socket */
	struct kh_endpoints eps; /* several nodes: wins over socket/connect */
	bool listed;            /* try eps in their order, not spread */
	char *bad;              /* why KEYHOLD_ENDPOINTS was refused (connect reports it) */
	char err[KH_ERR_MSG_MAX]; /* the last setter failure's reason */
	char *tls_cert;
	char *tls_key;
	char *tls_ca;
	char *tls_server_name;  /* NULL: HOST */
	uint32_t timeout_ms;    /* deadline sent and client wait; 0: none */
	uint32_t spin_us;       /* kh_client_opts_set_spin */
	char *bad_spin;         /* why $KEYHOLD_SPIN_US was refused (connect reports it) */
};

struct kh_pending {
	uint64_t id;
	const ProtobufCMethodDescriptor *method;
	bool have;              /* answer arrived, not yet taken */
	uint64_t seq;           /* arrival order */
	Keyhold__V1__Response *resp;
};

#include "kh_tls.h"

struct kh_client {
	struct kh_client_opts opts;
	struct kh_endpoints eps; /* what connect uses: opts.eps, or the one socket/TLS address */
	size_t cur;             /* eps index of the connection (or last attempt) */
	bool connected_once;    /* a connection was made: a broken one is remade */
	unsigned failovers;     /* moves to another endpoint after a failure */
	char ep_name[KH_OPT_STR_MAX + 8]; /* "unix:PATH" / "tls:HOST:PORT" of cur */
	int fd;
	struct kh_tls *tls;     /* NULL on a Unix socket */
	uint64_t next_id;
	uint64_t seq;
	bool broken;
	struct kh_errbuf err;   /* the last failure */
	struct kh_pending *pend;
	size_t n_pend, cap_pend;
	uint8_t *frame;         /* reused request buffer */
	size_t frame_cap;
	/* Read-ahead: one recv() takes every answer already waiting. */
	uint8_t rbuf[16384];
	size_t roff, rlen;
	struct kh_spin spin;
};

/* A root owns msg and the handles given out for its nested messages
 * (kids, found again by pointer so repeated lookups do not grow it). */
struct kh_msg {
	ProtobufCMessage *msg;
	struct kh_msg *root;    /* NULL for a root */
	const ProtobufCMethodDescriptor *method;
	struct kh_msg **kids;
	size_t n_kids, cap_kids;
	char err[256];
};

/* msg.c: wraps pb (taken) into a root handle for method. */
enum kh_err kh_msg_wrap(ProtobufCMessage *pb, const ProtobufCMethodDescriptor *method, kh_msg **out) KH_WUR;
/* msg.c: the method descriptor of name, or NULL. */
const ProtobufCMethodDescriptor *kh_method_find(const char *name);
/* msg.c: decodes a response body of method into a root message (the
 * client's whole decoding of server data after the envelope). */
enum kh_err kh_response_body_decode(const ProtobufCMethodDescriptor *method, const uint8_t *body, size_t len,
				    kh_msg **out, struct kh_errbuf *e) KH_WUR;
/* client.c: decodes a Response envelope (taken by *out; free with
 * protobuf_c_message_free_unpacked). */
enum kh_err kh_response_decode(const uint8_t *buf, size_t len, Keyhold__V1__Response **out) KH_WUR;

/* client.c: sends body as method and waits for its answer (*status the
 * node's verdict, *resp the body when OK), moving to the next endpoint
 * when kh_retry_allowed says so and this is the only request in flight.
 * A non-OK return is a transport failure. */
enum kh_err kh_exchange_pb(kh_client *c, const ProtobufCMethodDescriptor *method, const ProtobufCMessage *body,
			   enum kh_err *status, ProtobufCMessage **resp) KH_WUR;
/* client.c: kh_send/kh_recv on generated structs (the typed calls'
 * fast path: no kh_msg, the body borrowed). */
enum kh_err kh_send_pb(kh_client *c, const ProtobufCMethodDescriptor *method, const ProtobufCMessage *body,
		       uint64_t *id) KH_WUR;
/* Waits for the answer to id. KH_OK: *status is the server's verdict and,
 * when OK, *resp the unpacked body. Else a transport failure. */
enum kh_err kh_wait_pb(kh_client *c, uint64_t id, enum kh_err *status, ProtobufCMessage **resp) KH_WUR;
enum kh_err kh_recv_pb(kh_client *c, uint64_t *id, enum kh_err *status, ProtobufCMessage **resp) KH_WUR;


#endif
