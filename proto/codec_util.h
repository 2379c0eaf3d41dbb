/* codec_util.h: the helpers every codec_<area>.c shares (packing, field
 * checks, string and certificate copies), for proto/ only. */
#ifndef CODEC_UTIL_H
#define CODEC_UTIL_H

#include <stdbool.h>

#include "keyhold.pb-c.h"
#include "proto.h"

/* Packs m into a new malloc'd buffer (no frame header). */
enum kh_err proto_pack_msg(const ProtobufCMessage *m, uint8_t **out, size_t *out_len) KH_WUR;
/* protobuf-c's structs take char * for fields it only reads when packing;
 * a union hands it const strings without a qualifier-dropping cast. */
char *proto_mut(const char *s);
/* A string from the wire into dst, always terminated; NULL is "". */
void proto_cstr(char *dst, size_t dstsz, const char *src);

/* Server-side checks: each fills out only when in is acceptable, else
 * INVALID_ARGUMENT naming what. */
enum kh_err proto_check_name(const char *in, char out[KH_NAME_MAX + 1], const char *what,
			     struct kh_errbuf *e) KH_WUR;
/* Text that fits out and carries no control characters (it reaches logs
 * and terminals); UTF-8 above 0x7f passes. */
enum kh_err proto_check_text(const char *in, char *out, size_t outsz, const char *what,
			     struct kh_errbuf *e) KH_WUR;
/* Takes the bytes of in (malloc'd by the budget allocator): at most
 * KH_PKI_BLOB_MAX, and non-empty when required. */
enum kh_err proto_take_blob(ProtobufCBinaryData *in, struct kh_bytes *out, bool required, const char *what,
			    struct kh_errbuf *e) KH_WUR;

/* CertInfo <-> struct kh_cert_info; the message borrows c's strings. */
void proto_pb_cert(const struct kh_cert_info *c, Keyhold__V1__CertInfo *m);
void proto_cert_from(const Keyhold__V1__CertInfo *m, struct kh_cert_info *c);

/* SelfTestResult for GetStatus and RunSelfTest (client): one message into
 * out. */
void proto_selftest_from(const Keyhold__V1__SelfTestResult *m, struct kh_selftest_result *out);

#endif
