/* rpc/dispatch.h: how a request reaches its handler, for the server that
 * reads requests (net/) and answers them (dispatch.c). */
#ifndef RPC_DISPATCH_H
#define RPC_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kh_err.h"
#include "proto.h"

struct svc;
struct svc_principal;

/* Runs one decoded request to completion (deadline, role check, handler,
 * encoding) and returns the response frame. Never fails: errors become
 * error responses. Worker threads call this. */
void svc_dispatch(struct svc *s, const struct svc_principal *who, struct proto_req *req,
		  uint64_t deadline_us, uint8_t **frame, size_t *frame_len);
/* Appends a record to the audit log for a request answered outside
 * svc_dispatch (refused by a limit on the loop, undecodable). */
void svc_audit_record(struct svc *s, const struct svc_principal *who, const char *method, const char *object,
		      enum kh_err code, uint64_t duration_us, uint64_t count);
/* Whether GetStatus would answer now without a token call
 * (rpc/h_status.c): it may then run in place on any event loop. */
bool svc_status_cached(struct svc *s);
/* Encodes an error response frame; NULL on allocation failure. */
uint8_t *svc_error_frame(uint64_t id, enum kh_err code, const char *msg, size_t *len);

#endif
