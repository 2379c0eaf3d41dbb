/* codec_pki.h: the PKI rows of the method table (codec_pki.c), for codec.c
 * only. Signatures match codec.c's proto_req_dec_fn etc. */
#ifndef CODEC_PKI_H
#define CODEC_PKI_H

#include <protobuf-c/protobuf-c.h>

#include "proto.h"

/* Client side only: the server reads these requests as generated messages
 * (validate.c) and its handlers build the responses. */
#define PROTO_PKI_CLIENT_DECL(x)                                                                          \
	enum kh_err proto_pki_enc_req_##x(const union proto_req_body *b, uint8_t **out, size_t *len);     \
	enum kh_err proto_pki_dec_resp_##x(const ProtobufCMessage *m, union proto_resp_body *b,           \
					   struct kh_errbuf *e);

PROTO_PKI_CLIENT_DECL(create_csr)
PROTO_PKI_CLIENT_DECL(create_tp)
PROTO_PKI_CLIENT_DECL(list_tp)
PROTO_PKI_CLIENT_DECL(get_tp)
PROTO_PKI_CLIENT_DECL(delete_tp)
PROTO_PKI_CLIENT_DECL(auth_tp)
PROTO_PKI_CLIENT_DECL(enroll_tp)
PROTO_PKI_CLIENT_DECL(import_cert)
PROTO_PKI_CLIENT_DECL(export_tp)
PROTO_PKI_CLIENT_DECL(regen_tp)
PROTO_PKI_CLIENT_DECL(ts_add)
PROTO_PKI_CLIENT_DECL(ts_list)
PROTO_PKI_CLIENT_DECL(ts_remove)
PROTO_PKI_CLIENT_DECL(ts_verify)
PROTO_PKI_CLIENT_DECL(import_crl)

/* Frees what a decoded PKI request or response owns; other methods are
 * left alone. */
void proto_pki_req_clear(enum proto_method m, union proto_req_body *b);
void proto_pki_resp_clear(enum proto_method m, union proto_resp_body *b);

#endif
