/* codec_fips: the client side of the FIPS RPCs (RunSelfTest) for the
 * method table in codec.c. Private to proto/. */
#ifndef PROTO_CODEC_FIPS_H
#define PROTO_CODEC_FIPS_H

#include <stddef.h>
#include <stdint.h>

#include "keyhold.pb-c.h"
#include "proto.h"

enum kh_err proto_fips_enc_run_req(const union proto_req_body *b, uint8_t **out, size_t *len);
enum kh_err proto_fips_dec_run_resp(const ProtobufCMessage *m, union proto_resp_body *b, struct kh_errbuf *e);

#endif
