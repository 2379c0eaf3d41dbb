/* codec_rev.h: the revocation, expiry and renewal rows of the method table
 * (codec_rev.c), for codec.c only: the client side. Signatures match
 * codec.c's proto_req_enc_fn and proto_resp_dec_fn. */
#ifndef CODEC_REV_H
#define CODEC_REV_H

#include <protobuf-c/protobuf-c.h>

#include "proto.h"

/* The server reads and answers generated messages (rpc/h_revocation.c,
 * rpc/h_expiry.c); the client's converters remain. */
#define PROTO_REV_DECL(x)                                                                                 \
	enum kh_err proto_rev_enc_req_##x(const union proto_req_body *b, uint8_t **out, size_t *len);     \
	enum kh_err proto_rev_dec_resp_##x(const ProtobufCMessage *m, union proto_resp_body *b,           \
					   struct kh_errbuf *e);

PROTO_REV_DECL(check_cert)
PROTO_REV_DECL(tp_policy)
PROTO_REV_DECL(ts_policy)
PROTO_REV_DECL(expiring)
PROTO_REV_DECL(monitor)

/* Frees what a decoded response of these RPCs owns; other methods are
 * left alone. */
void proto_rev_resp_clear(enum proto_method m, union proto_resp_body *b);

#endif
