/* proto: the contract between client and server: framing, the methods of
 * keyhold.proto's `service KeyHold`, the envelopes, and the validation of
 * every request at the edge (validate.c). Handlers and clients read and
 * build the generated messages (keyhold.pb-c.h) themselves. */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "kh_err.h"

/* ---- framing (DESIGN §4) ---- */

#define PROTO_HDR_LEN 4
#define PROTO_FRAME_MAX_DEFAULT (1u << 20)  /* 1 MiB */
#define PROTO_FRAME_MAX_PREAUTH 4096u       /* TCP before authentication */
#define PROTO_FRAME_MAX_LIMIT (64u << 20)   /* what the config may raise it to */

/* Reads a frame header. KH_OK with *len in [1, cap]; INVALID_ARGUMENT for
 * 0 or above cap (the caller closes the connection before allocating). */
enum kh_err proto_frame_len(const uint8_t hdr[PROTO_HDR_LEN], size_t cap, size_t *len) KH_WUR;
void proto_frame_hdr(size_t len, uint8_t hdr[PROTO_HDR_LEN]);

/* The read loop's step over a stream buffer (server and fuzzers share it):
 * given the have bytes buffered so far, says whether a whole frame is there.
 *   KH_OK: a frame; its payload is buf[PROTO_HDR_LEN .. PROTO_HDR_LEN+*len).
 *   KH_E_UNAVAILABLE: not yet; *need is the total bytes the frame needs
 *     (PROTO_HDR_LEN while the header is incomplete).
 *   KH_E_INVALID_ARGUMENT: a zero or oversized length: close the stream. */
enum kh_err proto_frame_next(const uint8_t *buf, size_t have, size_t cap, size_t *len, size_t *need) KH_WUR;

/* ---- methods: the order of `service KeyHold` in keyhold.proto ----
 * proto_methods.h is generated from keyhold.proto at build time
 * (proto/CMakeLists.txt): PROTO_METHODS(X) calls X(UPPER_NAME, "Name") for
 * each rpc, so PROTO_M_SIGN etc. follow the .proto without an edit here. */

#include "proto_methods.h"

enum proto_method {
#define PROTO_M_ENUM(e, n) PROTO_M_##e,
	PROTO_METHODS(PROTO_M_ENUM)
#undef PROTO_M_ENUM
	PROTO_M_COUNT
};

/* Checks that the enum matches the generated service descriptor;
 * KH_OK or INTERNAL naming the first mismatch. Called once at start. */
enum kh_err proto_check_methods(struct kh_errbuf *e) KH_WUR;
/* "GetStatus", ...; NULL outside the enum. */
const char *proto_method_name(enum proto_method m);
/* Looks a name up in the generated service descriptor; -1 when unknown. */
int proto_method_lookup(const char *name);
/* The generated descriptors of method m's request and response messages;
 * NULL outside the enum. */
const ProtobufCMessageDescriptor *proto_method_request(enum proto_method m);
const ProtobufCMessageDescriptor *proto_method_response(enum proto_method m);

/* ---- validation at the edge (validate.c) ----
 * One entry per request message, and per nested message with rules:
 * names, text, sizes, enums, counts, and the cross-field checks. A
 * message without an entry has nothing to check. KH_OK, or
 * INVALID_ARGUMENT naming the field. */
enum kh_err proto_validate(const ProtobufCMessage *m, struct kh_errbuf *e) KH_WUR;
/* The string at path ("key", "grant.key") in m; NULL when a message on the
 * way is unset, the field is another oneof member's, or not a string. */
const char *proto_field_str(const ProtobufCMessage *m, const char *path);

/* ---- requests ---- */

struct proto_req {
	uint64_t id;
	bool have_id;        /* the envelope parsed: answer with this id */
	uint32_t deadline_ms;
	enum proto_method method;
	/* The request body as protobuf-c unpacked it (within the budget) and
	 * proto_validate passed; freed by proto_req_clear. */
	ProtobufCMessage *msg;
};

/* Decodes one frame payload: the envelope, then the method's body into
 * out->msg, validated (proto_validate). Allocation is capped at a budget
 * derived from len. On error out->have_id says whether the error
 * can be answered with out->id; out holds nothing to free. Codes:
 * INVALID_ARGUMENT (malformed, or a NUL byte in the method name),
 * UNIMPLEMENTED (unknown method). */
enum kh_err proto_request_decode(const uint8_t *buf, size_t len, struct proto_req *out,
				 struct kh_errbuf *e) KH_WUR;
void proto_req_clear(struct proto_req *r);

/* What a request envelope's wire bytes say before it is unpacked
 * (request_head.c). */
struct proto_req_head {
	uint64_t id;
	bool have_id;
	bool method_nul;     /* a method field holds a NUL byte */
	const uint8_t *method; /* the last method field, in the scanned buffer */
	size_t method_len;
};

/* Scans the envelope's top-level fields without allocating. False when the
 * bytes are not a well-formed protobuf message (out is then zeroed). */
bool proto_request_head(const uint8_t *buf, size_t len, struct proto_req_head *out);

/* Encodes a whole frame (header included) answering id: with code != OK,
 * msg and no body; with OK, body (NULL: an empty body). */
enum kh_err proto_response_encode_msg(uint64_t id, enum kh_err code, const char *msg,
				      const ProtobufCMessage *body, uint8_t **frame, size_t *frame_len) KH_WUR;

#endif
