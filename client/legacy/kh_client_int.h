/* kh_client_int: the client handle and its TLS transport, shared by
 * libkeyhold.c and tls.c. Not installed. */
#ifndef KH_CLIENT_INT_H
#define KH_CLIENT_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "keyhold.h"
#include "proto.h"

struct kh_pending {
	uint64_t id;
	enum proto_method method;
	bool have;               /* answer arrived, not yet taken */
	uint64_t seq;            /* arrival order */
	struct proto_resp resp;
};

struct kh_tls;

struct kh_client {
	int fd;
	struct kh_tls *tls;      /* NULL on a Unix socket */
	uint64_t next_id;
	uint64_t seq;
	uint32_t deadline_ms;
	uint32_t timeout_ms;
	bool broken;
	struct kh_pending *pend;
	size_t n_pend, cap_pend;
	/* Read-ahead: one recv() takes every answer already waiting. */
	uint8_t rbuf[16384];
	size_t roff, rlen;
};

/* libkeyhold.c: one request, waiting for its answer (decoded into out). */
enum kh_err kh_call(kh_client *c, enum proto_method m, const union proto_req_body *req,
		    union proto_resp_body *out, struct kh_errbuf *e) KH_WUR;

/* tls.c */
enum kh_err kh_tls_connect(kh_client *c, const struct kh_client_opts *o, struct kh_errbuf *e) KH_WUR;
ssize_t kh_tls_read(kh_client *c, void *buf, size_t len, struct kh_errbuf *e);
ssize_t kh_tls_write(kh_client *c, const void *buf, size_t len, struct kh_errbuf *e);
void kh_tls_free(kh_client *c);

#endif
