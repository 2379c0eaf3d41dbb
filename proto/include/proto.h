/* proto: the contract between client and server: framing, the method
 * table, and decode/encode between wire bytes and the validated structs of
 * kh_types.h. The only module that includes *.pb-c.h. */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "kh_err.h"
#include "kh_types.h"

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

/* ---- methods: the order of `service KeyHold` in keyhold.proto ---- */

enum proto_method {
	PROTO_M_GET_STATUS,
	PROTO_M_GET_CAPABILITIES,
	PROTO_M_GENERATE_KEY,
	PROTO_M_LIST_KEYS,
	PROTO_M_GET_PUBLIC_KEY,
	PROTO_M_DELETE_KEY,
	PROTO_M_SIGN,
	PROTO_M_RUN_SELF_TEST,
	/* PKI (codec_pki.c) */
	PROTO_M_CREATE_CSR,
	PROTO_M_CREATE_TRUSTPOINT,
	PROTO_M_LIST_TRUSTPOINTS,
	PROTO_M_GET_TRUSTPOINT,
	PROTO_M_DELETE_TRUSTPOINT,
	PROTO_M_AUTHENTICATE_TRUSTPOINT,
	PROTO_M_ENROLL_TRUSTPOINT,
	PROTO_M_IMPORT_CERTIFICATE,
	PROTO_M_EXPORT_TRUSTPOINT,
	PROTO_M_REGENERATE_TRUSTPOINT,
	PROTO_M_TRUSTSTORE_ADD,
	PROTO_M_TRUSTSTORE_LIST,
	PROTO_M_TRUSTSTORE_REMOVE,
	PROTO_M_TRUSTSTORE_VERIFY,
	PROTO_M_IMPORT_CRL,
	PROTO_M_AUDIT_SHOW,
	PROTO_M_AUDIT_VERIFY,
	PROTO_M_GRANT_KEY,
	PROTO_M_REVOKE_KEY_GRANT,
	PROTO_M_LIST_KEY_GRANTS,
	/* revocation, expiry, renewal (codec_rev.c) */
	PROTO_M_CHECK_CERTIFICATE,
	PROTO_M_SET_TRUSTPOINT_POLICY,
	PROTO_M_SET_TRUSTSTORE_POLICY,
	PROTO_M_LIST_EXPIRING,
	PROTO_M_RUN_MONITOR,
	PROTO_M_COUNT
};

/* Checks that the table above matches the generated service descriptor;
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

/* ---- validated request and response bodies ---- */

union proto_req_body {
	struct kh_generate_req generate;  /* GenerateKey */
	struct kh_name_req name;          /* GetPublicKey, DeleteKey */
	struct kh_sign_req sign;          /* Sign */
	/* PKI; name also serves GetTrustpoint and EnrollTrustpoint */
	struct kh_csr_req csr;            /* CreateCsr */
	struct kh_tp_create_req tp_create; /* CreateTrustpoint */
	struct kh_tp_delete_req tp_delete; /* DeleteTrustpoint */
	struct kh_tp_auth_req tp_auth;    /* AuthenticateTrustpoint */
	struct kh_tp_import_req tp_import; /* ImportCertificate */
	struct kh_tp_export_req tp_export; /* ExportTrustpoint */
	struct kh_tp_regen_req tp_regen;  /* RegenerateTrustpoint */
	struct kh_ts_add_req ts_add;      /* TruststoreAdd */
	struct kh_ts_name_req ts_name;    /* TruststoreList */
	struct kh_ts_remove_req ts_remove; /* TruststoreRemove */
	struct kh_ts_verify_req ts_verify; /* TruststoreVerify */
	struct kh_crl_import_req crl_import; /* ImportCrl */
	struct kh_audit_show_req audit_show; /* AuditShow */
	struct kh_key_grant grant;        /* GrantKey */
	struct kh_grant_ref grant_ref;    /* RevokeKeyGrant */
	struct kh_grant_filter grant_filter; /* ListKeyGrants */
	/* revocation, expiry, renewal */
	struct kh_cert_check_req cert_check; /* CheckCertificate */
	struct kh_tp_policy_req tp_policy; /* SetTrustpointPolicy */
	struct kh_ts_policy_req ts_policy; /* SetTruststorePolicy */
	struct kh_expiring_req expiring;  /* ListExpiring */
};

union proto_resp_body {
	struct kh_status status;          /* GetStatus */
	struct kh_capabilities caps;      /* GetCapabilities */
	struct kh_key_info key;           /* GenerateKey, GetPublicKey */
	struct kh_key_list keys;          /* ListKeys */
	struct kh_sign_resp sign;         /* Sign */
	struct kh_selftest_report selftest; /* RunSelfTest */
	/* PKI */
	struct kh_bytes pem;              /* CreateCsr (NUL-terminated), ExportTrustpoint */
	struct kh_trustpoint tp;          /* CreateTrustpoint, GetTrustpoint */
	struct kh_trustpoint_list tps;    /* ListTrustpoints */
	struct kh_tp_delete_resp tp_delete; /* DeleteTrustpoint */
	struct kh_cert_list certs;        /* AuthenticateTrustpoint */
	struct kh_enroll_resp enroll;     /* EnrollTrustpoint, RegenerateTrustpoint */
	struct kh_import_resp import;     /* ImportCertificate */
	struct kh_ts_add_resp ts_add;     /* TruststoreAdd */
	struct kh_truststore_list stores; /* TruststoreList */
	struct kh_ts_remove_resp ts_remove; /* TruststoreRemove */
	struct kh_ts_verify_resp verify;  /* TruststoreVerify */
	struct kh_crl_info crl;           /* ImportCrl */
	struct kh_audit_records audit;    /* AuditShow */
	struct kh_audit_verify audit_verify; /* AuditVerify */
	struct kh_grant_list grants;      /* ListKeyGrants */
	/* revocation, expiry, renewal; tp serves SetTrustpointPolicy */
	struct kh_cert_check_resp cert_check; /* CheckCertificate */
	struct kh_ts_policy ts_policy;    /* SetTruststorePolicy */
	struct kh_expiring_list expiring; /* ListExpiring */
	struct kh_monitor_resp monitor;   /* RunMonitor */
};

struct proto_req {
	uint64_t id;
	bool have_id;        /* the envelope parsed: answer with this id */
	uint32_t deadline_ms;
	enum proto_method method;
	/* The request body as protobuf-c unpacked it (within the budget) and
	 * proto_validate passed; freed by proto_req_clear. */
	ProtobufCMessage *msg;
	union proto_req_body body;
};

/* ---- server side ---- */

/* Decodes one frame payload: the envelope, then the method's body into
 * out->msg, validating names, enums and lengths (proto_validate). Allocation is capped at
 * a budget derived from len. On error out->have_id says whether the error
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

/* Encodes a whole frame (header included) answering id. With code != OK
 * the body is ignored and msg is sent; with OK, body is encoded per m. */
enum kh_err proto_response_encode(uint64_t id, enum kh_err code, const char *msg, enum proto_method m,
				  const union proto_resp_body *body, uint8_t **frame,
				  size_t *frame_len) KH_WUR;
void proto_resp_clear(enum proto_method m, union proto_resp_body *b);
/* The same with the body as a generated message (NULL: an empty body). */
enum kh_err proto_response_encode_msg(uint64_t id, enum kh_err code, const char *msg,
				      const ProtobufCMessage *body, uint8_t **frame, size_t *frame_len) KH_WUR;

/* ---- client side ---- */

/* Encodes a whole request frame (header included). */
enum kh_err proto_request_encode(uint64_t id, uint32_t deadline_ms, enum proto_method m,
				 const union proto_req_body *body, uint8_t **frame,
				 size_t *frame_len) KH_WUR;

struct proto_resp {
	uint64_t id;
	struct kh_errbuf status;  /* code and message from the server */
	uint8_t *body;            /* owned */
	size_t body_len;
};

/* Decodes a response envelope (payload without header). */
enum kh_err proto_response_decode(const uint8_t *buf, size_t len, struct proto_resp *out) KH_WUR;
void proto_resp_env_clear(struct proto_resp *r);
/* Decodes the body of an OK response to method m. */
enum kh_err proto_response_body_decode(enum proto_method m, const uint8_t *buf, size_t len,
				       union proto_resp_body *out, struct kh_errbuf *e) KH_WUR;

#endif
