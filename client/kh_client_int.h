/* kh_client_int: libkeyhold's internals shared by its files: the client
 * handle, the message handle and the TLS transport. Not installed. */
#ifndef KH_CLIENT_INT_H
#define KH_CLIENT_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "keyhold/keyhold.h"
#include "kh_err.h"
#include "proto_schema.h"

/* Answers can be larger than requests (key lists, status). */
#define KH_CLIENT_FRAME_MAX (64u << 20)
/* Option strings (paths, HOST:PORT, names). */
#define KH_OPT_STR_MAX 4096u

struct kh_client_opts {
	char *socket;
	char *connect;          /* HOST:PORT: TLS instead of the socket */
	char *tls_cert;
	char *tls_key;
	char *tls_ca;
	char *tls_server_name;  /* NULL: HOST */
	uint32_t timeout_ms;    /* deadline sent and client wait; 0: none */
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

/* client.c: kh_send/kh_recv on generated structs (the typed calls'
 * fast path: no kh_msg, the body borrowed). */
enum kh_err kh_send_pb(kh_client *c, const ProtobufCMethodDescriptor *method, const ProtobufCMessage *body,
		       uint64_t *id) KH_WUR;
/* Waits for the answer to id. KH_OK: *status is the server's verdict and,
 * when OK, *resp the unpacked body. Else a transport failure. */
enum kh_err kh_wait_pb(kh_client *c, uint64_t id, enum kh_err *status, ProtobufCMessage **resp) KH_WUR;
enum kh_err kh_recv_pb(kh_client *c, uint64_t *id, enum kh_err *status, ProtobufCMessage **resp) KH_WUR;


#endif
