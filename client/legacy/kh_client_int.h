/* kh_client_int (legacy): the previous client handle, shared by
 * the legacy libkeyhold*.c. Not installed. */
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

#include "kh_tls.h"

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


#endif
