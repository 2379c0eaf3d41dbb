/* codec_security.h: the security RPCs' client codec functions (codec_security.c)
 * for the method table in codec.c. Internal to proto/. */
#ifndef PROTO_CODEC_SECURITY_H
#define PROTO_CODEC_SECURITY_H

#include <protobuf-c/protobuf-c.h>

#include "proto.h"

#define PROTO_SEC_FNS(x)                                                                                   \
	enum kh_err proto_sec_enc_req_##x(const union proto_req_body *b, uint8_t **out, size_t *len);           \
	enum kh_err proto_sec_dec_resp_##x(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e);

PROTO_SEC_FNS(audit_show)
PROTO_SEC_FNS(audit_verify)
PROTO_SEC_FNS(grant_key)
PROTO_SEC_FNS(revoke_key_grant)
PROTO_SEC_FNS(list_key_grants)

#endif
