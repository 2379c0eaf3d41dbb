/* keyhold/keyhold.h: libkeyhold, the client library of the keyhold key
 * service, and its only public header. Stable ABI: opaque handles, status
 * codes and plain C types; no protobuf-c type appears here.
 *
 * Errors: every fallible call returns enum kh_err, KH_OK (0) or a negative
 * gRPC canonical code (the wire status, negated). A call on a kh_client
 * keeps the failure's code and message in the client
 * (kh_client_error_code / kh_client_error_message) until the next call on
 * that client. Outputs are written only on success.
 *
 * Messages: kh_msg is one request or response message of keyhold.proto
 * (package keyhold.v1, `service KeyHold`), reached by field name through
 * the generated descriptors, so the schema exists only in the .proto.
 *
 * Threads: a kh_client and every kh_msg are not thread-safe; use one
 * client per thread. Distinct clients and messages may be used from
 * different threads at the same time. */
#ifndef KEYHOLD_KEYHOLD_H
#define KEYHOLD_KEYHOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define KH_API __attribute__((visibility("default")))
#ifndef KH_WUR
#define KH_WUR __attribute__((warn_unused_result))
#endif
#else
#define KH_API
#ifndef KH_WUR
#define KH_WUR
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ----
 * The negated gRPC canonical codes; the values are part of the ABI and of
 * the wire protocol (Status.code is -err). */
enum kh_err {
	KH_OK = 0,
	KH_E_CANCELLED = -1,
	KH_E_UNKNOWN = -2,
	KH_E_INVALID_ARGUMENT = -3,
	KH_E_DEADLINE_EXCEEDED = -4,
	KH_E_NOT_FOUND = -5,
	KH_E_ALREADY_EXISTS = -6,
	KH_E_PERMISSION_DENIED = -7,
	KH_E_RESOURCE_EXHAUSTED = -8,
	KH_E_FAILED_PRECONDITION = -9,
	KH_E_ABORTED = -10,
	KH_E_OUT_OF_RANGE = -11,
	KH_E_UNIMPLEMENTED = -12,
	KH_E_INTERNAL = -13,
	KH_E_UNAVAILABLE = -14,
	KH_E_DATA_LOSS = -15,
	KH_E_UNAUTHENTICATED = -16,
};

/* "OK", "INVALID_ARGUMENT", ...: a static string, never NULL ("UNKNOWN"
 * for values outside the enum). Thread-safe. */
KH_API const char *kh_err_name(int err);

/* Releases memory the library handed to the caller (signatures, public
 * keys). NULL is fine. */
KH_API void kh_free(void *p);

/* ---- client options ---- */

typedef struct kh_client_opts kh_client_opts;

/* A new option set: the nodes of $KEYHOLD_ENDPOINTS when set (see
 * kh_client_opts_set_endpoints; its TLS entries take their files from
 * $KEYHOLD_TLS_CA, $KEYHOLD_TLS_CERT, $KEYHOLD_TLS_KEY and
 * $KEYHOLD_TLS_SERVER_NAME; $KEYHOLD_ENDPOINTS_ORDER=listed as
 * kh_client_opts_set_endpoints_listed), else the Unix socket
 * $KEYHOLD_SOCKET, else the build's default path; no timeout; the spin
 * of $KEYHOLD_SPIN_US (kh_client_opts_set_spin).
 * KH_E_RESOURCE_EXHAUSTED when out of memory. A bad $KEYHOLD_ENDPOINTS is
 * not an error here: kh_client_connect fails with KH_E_INVALID_ARGUMENT
 * and says why. */
KH_API enum kh_err kh_client_opts_new(kh_client_opts **out) KH_WUR;
/* NULL is fine. */
KH_API void kh_client_opts_free(kh_client_opts *o);
/* Setters copy their strings (borrowed for the call only). They fail only
 * with KH_E_INVALID_ARGUMENT (NULL or a string over 4096 bytes) or
 * KH_E_RESOURCE_EXHAUSTED. */
KH_API enum kh_err kh_client_opts_set_socket(kh_client_opts *o, const char *path) KH_WUR;
/* "HOST:PORT": connect over TCP with TLS 1.3 and a client certificate
 * instead of the Unix socket. Needs the three files below. */
KH_API enum kh_err kh_client_opts_set_tls(kh_client_opts *o, const char *hostport, const char *ca_file,
					  const char *cert_file, const char *key_file) KH_WUR;
/* The name the server's certificate must carry; default: HOST. */
KH_API enum kh_err kh_client_opts_set_tls_server_name(kh_client_opts *o, const char *name) KH_WUR;
/* Several keyholdd nodes serving one service (docs/CLUSTER.md "Client
 * failover"): list is "unix:PATH,tls:HOST:PORT,..." (at most 16 entries;
 * TLS entries use the files of kh_client_opts_set_tls_files). It replaces
 * the socket or TLS address set before; kh_client_opts_set_socket and
 * kh_client_opts_set_tls replace it in turn. A connection starts at a node
 * chosen per process and per connection (spreading clients over the
 * nodes) and moves on to the next node when one cannot be reached. A
 * request that fails with KH_E_UNAVAILABLE (refused, reset, closed before
 * the answer, or the node answering UNAVAILABLE while it shuts down) is
 * sent again on the next node when nothing of it reached the node, or when
 * its method is a read or Sign (keyhold.proto's idempotency marks); a
 * state change that may have committed is never sent again: its failure is
 * returned. Only when the request is the client's one in flight (kh_call
 * and the typed calls; never kh_send/kh_recv pipelining). Each node is
 * tried at most once per request. KH_E_INVALID_ARGUMENT for a bad list,
 * the reason in kh_client_opts_error_message(o). */
KH_API enum kh_err kh_client_opts_set_endpoints(kh_client_opts *o, const char *list) KH_WUR;
/* The files of TLS endpoints in a list (copied; NULL leaves one unset). */
KH_API enum kh_err kh_client_opts_set_tls_files(kh_client_opts *o, const char *ca_file, const char *cert_file,
						const char *key_file) KH_WUR;
/* true: every connection tries the nodes in the order listed (a primary
 * and standbys) instead of spreading. Default false. */
KH_API void kh_client_opts_set_endpoints_listed(kh_client_opts *o, bool listed);
/* Why the last setter on o failed, or why kh_client_opts_new refused
 * $KEYHOLD_SPIN_US ("" if none). Borrowed from o. */
KH_API const char *kh_client_opts_error_message(const kh_client_opts *o);
/* Per request: the deadline sent to the server, and how long the client
 * waits for an answer. 0 (default): no limit. */
KH_API void kh_client_opts_set_timeout(kh_client_opts *o, uint32_t ms);
/* How long a wait for an answer on a Unix socket first polls without
 * sleeping, in microseconds (at most 1000; 0: never). Default 100, or
 * $KEYHOLD_SPIN_US when set (a bad value makes kh_client_connect fail
 * with KH_E_INVALID_ARGUMENT). An answer that comes within the spin is
 * taken without the sleep and wake-up a waiting thread costs (on a
 * virtual machine an inter-processor interrupt and an exit to the host,
 * tens of microseconds on both sides); a quick request (P-256 on
 * SoftHSM2) is answered in about 75 microseconds. A spin that ends
 * without the answer makes the next 4 waits sleep at once, doubling to
 * 1024 with each such spin, so slow answers (RSA, a TPM, a busy node)
 * cost at most one spin in 1024 waits. A TLS connection never spins.
 * Overrides $KEYHOLD_SPIN_US. docs/PERFORMANCE.md "The client's wait". */
KH_API void kh_client_opts_set_spin(kh_client_opts *o, uint32_t us);

/* ---- client ---- */

typedef struct kh_client kh_client;

/* A client for opts (borrowed; may be freed afterwards), not yet
 * connected. Fails only when out of memory. */
KH_API enum kh_err kh_client_new(const kh_client_opts *opts, kh_client **out) KH_WUR;
/* Connects c as its options say. On failure the reason is in
 * kh_client_error_message(c) and c may be connected again or freed. */
KH_API enum kh_err kh_client_connect(kh_client *c) KH_WUR;
/* kh_client_new + kh_client_connect on a Unix socket path (NULL: the
 * default). *out is set only on success; the reason of a failure is lost,
 * use the two calls above when it must be shown. */
KH_API enum kh_err kh_client_connect_unix(const char *path, kh_client **out) KH_WUR;
/* Closes the connection and frees c; NULL is fine. Unanswered requests
 * are dropped; messages already returned by kh_call/kh_recv stay valid
 * (the caller frees them). */
KH_API void kh_client_free(kh_client *c);

/* The code and message of the last failed call on c (KH_OK and "" after a
 * success). The string is borrowed from c until its next call. */
KH_API enum kh_err kh_client_error_code(const kh_client *c);
KH_API const char *kh_client_error_message(const kh_client *c);
/* The node c is connected to (or last tried), as "unix:PATH" or
 * "tls:HOST:PORT"; "" before any connect. Borrowed from c. */
KH_API const char *kh_client_endpoint(const kh_client *c);
/* How often c moved to another node after a failure (connects and
 * requests sent again); for logs and tests. */
KH_API unsigned kh_client_failovers(const kh_client *c);
/* Requests sent with kh_send and not yet taken with kh_recv. */
KH_API unsigned kh_client_pending(const kh_client *c);

/* ---- messages ----
 * A root kh_msg (from kh_request_new, kh_call, kh_recv) owns its message
 * and is freed with kh_msg_free. kh_msg_sub and kh_msg_item give borrowed
 * handles to nested messages; they live as long as their root (freeing
 * them is a no-op). Strings and bytes returned by getters are borrowed from
 * the root and stay valid until it is freed or the field is set again.
 *
 * Field names are those of keyhold.proto. A wrong name, a type mismatch or
 * an unknown enum value name returns KH_E_INVALID_ARGUMENT; the message
 * (naming the message and the field) is in kh_msg_error_message(msg).
 * Values are only bounded in size (a string at most 1 MiB, bytes at most
 * 64 MiB); checking them is the server's job. Getters of a field that is
 * not set (or another member of its oneof is) return the proto3 default. */

typedef struct kh_msg kh_msg;

/* The request message of RPC method ("GenerateKey", "Sign", ...). */
KH_API enum kh_err kh_request_new(const char *method, kh_msg **out) KH_WUR;
/* NULL and borrowed handles are fine (no-op for the latter). */
KH_API void kh_msg_free(kh_msg *m);
/* "keyhold.v1.SignRequest" etc.; the RPC name for a request from
 * kh_request_new, the RPC name for a response (kh_msg_method). */
KH_API const char *kh_msg_type(const kh_msg *m);
KH_API const char *kh_msg_method(const kh_msg *m);
/* The last failure of a setter or getter on m (or on its tree); "" if
 * none. Borrowed from the root. */
KH_API const char *kh_msg_error_message(const kh_msg *m);

/* Setters of singular fields (a oneof member also selects it, freeing
 * the member it replaces: handles into that one become invalid). set_str
 * and set_bytes copy the value. set_int and set_uint take any integer
 * field, range-checked against its width (KH_E_OUT_OF_RANGE); set_enum
 * takes the value name, e.g. "P256". */
KH_API enum kh_err kh_msg_set_str(kh_msg *m, const char *field, const char *v) KH_WUR;
KH_API enum kh_err kh_msg_set_bytes(kh_msg *m, const char *field, const uint8_t *v, size_t len) KH_WUR;
KH_API enum kh_err kh_msg_set_uint(kh_msg *m, const char *field, uint64_t v) KH_WUR;
KH_API enum kh_err kh_msg_set_int(kh_msg *m, const char *field, int64_t v) KH_WUR;
KH_API enum kh_err kh_msg_set_bool(kh_msg *m, const char *field, bool v) KH_WUR;
KH_API enum kh_err kh_msg_set_enum(kh_msg *m, const char *field, const char *value_name) KH_WUR;
/* Appenders of repeated fields (copying the value). */
KH_API enum kh_err kh_msg_add_str(kh_msg *m, const char *field, const char *v) KH_WUR;
KH_API enum kh_err kh_msg_add_bytes(kh_msg *m, const char *field, const uint8_t *v, size_t len) KH_WUR;
KH_API enum kh_err kh_msg_add_enum(kh_msg *m, const char *field, const char *value_name) KH_WUR;
/* A nested message to fill: for a singular field, the field's message
 * (created if unset); for a repeated field, a new element appended. *child
 * is borrowed (see above). */
KH_API enum kh_err kh_msg_sub(kh_msg *m, const char *field, kh_msg **child) KH_WUR;

/* Getters. On a wrong name or type they return the default ("", 0,
 * false) and record why in kh_msg_error_message. kh_msg_has tells a set
 * field from a default one (proto3 cannot tell more). get_str and
 * get_enum return borrowed strings, never NULL. get_uint/get_int read
 * any integer field (a negative value through get_uint reads as 0 and is
 * recorded as KH_E_OUT_OF_RANGE). */
KH_API bool kh_msg_has(const kh_msg *m, const char *field);
KH_API const char *kh_msg_get_str(const kh_msg *m, const char *field);
/* *v borrowed; *len 0 and *v NULL when empty. */
KH_API enum kh_err kh_msg_get_bytes(const kh_msg *m, const char *field, const uint8_t **v, size_t *len) KH_WUR;
KH_API uint64_t kh_msg_get_uint(const kh_msg *m, const char *field);
KH_API int64_t kh_msg_get_int(const kh_msg *m, const char *field);
KH_API bool kh_msg_get_bool(const kh_msg *m, const char *field);
/* The enum value's name ("P256"); "" for a number the schema lacks. */
KH_API const char *kh_msg_get_enum(const kh_msg *m, const char *field);
/* The number of elements of a repeated field (0 for a wrong one). */
KH_API size_t kh_msg_count(const kh_msg *m, const char *field);
/* Element i of a repeated message field, or (i = 0) a singular message
 * field; KH_E_NOT_FOUND when the singular field is unset, KH_E_OUT_OF_RANGE
 * past the end. *child borrowed. */
KH_API enum kh_err kh_msg_item(const kh_msg *m, const char *field, size_t i, kh_msg **child) KH_WUR;
/* Element i of a repeated string field; "" past the end. Borrowed. */
KH_API const char *kh_msg_get_str_at(const kh_msg *m, const char *field, size_t i);
/* Element i of a repeated bytes field; KH_E_OUT_OF_RANGE past the end. */
KH_API enum kh_err kh_msg_get_bytes_at(const kh_msg *m, const char *field, size_t i, const uint8_t **v,
				       size_t *len) KH_WUR;
/* Element i of a repeated enum field, by name; "" past the end. */
KH_API const char *kh_msg_get_enum_at(const kh_msg *m, const char *field, size_t i);

/* ---- calls ---- */

/* Sends req (borrowed) and waits for its answer. KH_OK: *resp is the
 * response message (the caller frees it). Otherwise the server's or the
 * transport's error, message in the client. */
KH_API enum kh_err kh_call(kh_client *c, const kh_msg *req, kh_msg **resp) KH_WUR;

/* Pipelining: kh_send writes req (borrowed) without waiting; *id names
 * its answer. kh_recv waits for the next answer of any request sent,
 * whichever arrives first (answers may come out of order). It returns
 * KH_OK when an answer arrived: *id names its request and *status is the
 * server's verdict (message in the client); on KH_OK status *resp is the
 * response (caller frees), else *resp is NULL. A non-OK return is a
 * transport failure: the connection is unusable. */
KH_API enum kh_err kh_send(kh_client *c, const kh_msg *req, uint64_t *id) KH_WUR;
KH_API enum kh_err kh_recv(kh_client *c, uint64_t *id, enum kh_err *status, kh_msg **resp) KH_WUR;

/* ---- typed calls for the common paths (on kh_call) ----
 * Names are key names; type names as in keyhold.proto's KeyType ("P256",
 * "RSA2048", ...) or lower case ("p256"); digest names as in Digest
 * ("SHA256", or "sha256"; NULL: the default), padding names as in Padding
 * ("PSS"; NULL: the default). */

/* Generates key name of type. spki_der/len may be NULL; else *spki_der is
 * its SubjectPublicKeyInfo DER (caller frees with kh_free). */
KH_API enum kh_err kh_key_generate(kh_client *c, const char *name, const char *type, uint8_t **spki_der,
				   size_t *len) KH_WUR;
/* The SubjectPublicKeyInfo DER of key name (caller frees with kh_free). */
KH_API enum kh_err kh_key_public(kh_client *c, const char *name, uint8_t **spki_der, size_t *len) KH_WUR;
/* The ListKeysResponse (field "keys": KeyInfo); caller frees. */
KH_API enum kh_err kh_key_list(kh_client *c, kh_msg **keys) KH_WUR;
KH_API enum kh_err kh_key_delete(kh_client *c, const char *name) KH_WUR;
/* Signs data (borrowed): a digest of it, or data itself when prehashed
 * (then data is the digest) or the key is Ed25519. *sig: caller frees with
 * kh_free. ECDSA signatures are DER. */
KH_API enum kh_err kh_sign(kh_client *c, const char *key, const char *digest, const char *padding, bool prehashed,
			   const uint8_t *data, size_t len, uint8_t **sig, size_t *sig_len) KH_WUR;
/* Pipelined Sign: kh_sign_send is kh_sign without waiting (the request
 * is encoded from the borrowed arguments into the client's reused buffer);
 * kh_sign_recv is kh_recv for a client with only Sign requests in flight:
 * on KH_OK with *status KH_OK, the signature is copied into sig (capacity
 * cap; 1 KiB is always enough) and *sig_len set; a larger signature is
 * KH_E_OUT_OF_RANGE in *status, another method's answer
 * KH_E_FAILED_PRECONDITION. No kh_msg is built on this path. */
KH_API enum kh_err kh_sign_send(kh_client *c, const char *key, const char *digest, const char *padding,
				bool prehashed, const uint8_t *data, size_t len, uint64_t *id) KH_WUR;
KH_API enum kh_err kh_sign_recv(kh_client *c, uint64_t *id, enum kh_err *status, uint8_t *sig, size_t cap,
				size_t *sig_len) KH_WUR;

#ifdef __cplusplus
}
#endif
#endif
