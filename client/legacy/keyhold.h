/* keyhold.h (legacy): the previous client API, built only into the CLI
 * until it moves to <keyhold/keyhold.h>. Not installed, not exported.
 *
 * One opaque handle per connection. Every call returns KH_OK or a negative
 * enum kh_err (the gRPC canonical code, negated) and, on error, fills the
 * kh_errbuf given as its last argument (may be NULL) with the server's or
 * the library's message. Results are written only on success; the caller
 * releases them with the matching kh_*_clear() of kh_types.h.
 *
 * Requests may be pipelined (kh_sign_send / kh_sign_recv); answers come
 * back in any order and are matched by id. A handle is not thread-safe: use
 * one per thread. */
#ifndef KEYHOLD_H
#define KEYHOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kh_err.h"
#include "kh_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kh_client kh_client;

/* Where and how to connect. Either socket (a Unix socket path) or connect
 * ("HOST:PORT", TLS 1.3 with a client certificate) must be set. */
struct kh_client_opts {
	const char *socket;
	const char *connect;
	const char *tls_cert;    /* PEM client certificate (TLS) */
	const char *tls_key;     /* PEM client private key (TLS) */
	const char *tls_ca;      /* PEM CA bundle that signed the server (TLS) */
	const char *tls_server_name; /* expected server name; default HOST */
	uint32_t deadline_ms;    /* sent with every request; 0: none */
	uint32_t timeout_ms;     /* client-side wait limit per answer; 0: none */
};

/* Connects. *out is set only on success; free it with kh_client_free. */
enum kh_err kh_client_open(const struct kh_client_opts *opts, kh_client **out, struct kh_errbuf *e) KH_WUR;
/* Shortcut for a Unix socket path. */
enum kh_err kh_client_connect(const char *socket_path, kh_client **out, struct kh_errbuf *e) KH_WUR;
/* Closes the connection; NULL is fine. Unanswered requests are dropped. */
void kh_client_free(kh_client *c);

/* One function per RPC (see proto/keyhold.proto). */
enum kh_err kh_get_status(kh_client *c, struct kh_status *out, struct kh_errbuf *e) KH_WUR;
enum kh_err kh_get_capabilities(kh_client *c, struct kh_capabilities *out, struct kh_errbuf *e) KH_WUR;
enum kh_err kh_generate_key(kh_client *c, const char *name, enum kh_key_type type, struct kh_key_info *out,
			    struct kh_errbuf *e) KH_WUR;
enum kh_err kh_list_keys(kh_client *c, struct kh_key_list *out, struct kh_errbuf *e) KH_WUR;
enum kh_err kh_get_public_key(kh_client *c, const char *name, struct kh_key_info *out,
			      struct kh_errbuf *e) KH_WUR;
enum kh_err kh_delete_key(kh_client *c, const char *name, struct kh_errbuf *e) KH_WUR;
/* req->data is borrowed. */
enum kh_err kh_sign(kh_client *c, const struct kh_sign_req *req, struct kh_sign_resp *out,
		    struct kh_errbuf *e) KH_WUR;

/* FIPS (libkeyhold_fips.c): reruns the power-up self-tests (admin). A
 * failed test is an INTERNAL error naming it; keyholdd then enters ERROR
 * and exits. On success out lists every test; kh_selftest_report_clear. */
enum kh_err kh_run_selftest(kh_client *c, struct kh_selftest_report *out, struct kh_errbuf *e) KH_WUR;

/* Pipelining: send without waiting; *id identifies the answer. */
enum kh_err kh_sign_send(kh_client *c, const struct kh_sign_req *req, uint64_t *id, struct kh_errbuf *e) KH_WUR;
/* Waits for the next Sign answer, whichever arrives first. Returns KH_OK
 * when an answer arrived: *id names it and *status holds its result (OK
 * with out filled, or the server's error). A non-OK return is a transport
 * failure (the connection is unusable). */
enum kh_err kh_sign_recv(kh_client *c, uint64_t *id, struct kh_errbuf *status, struct kh_sign_resp *out,
			 struct kh_errbuf *e) KH_WUR;
/* Requests sent and not yet answered. */
unsigned kh_client_pending(const kh_client *c);

/* ---- PKI: CSRs, trustpoints, trust stores, CRLs (libkeyhold_pki.c) ----
 * Byte inputs are borrowed; each request must fit the service's frame cap
 * (1 MiB by default), larger input is refused with INVALID_ARGUMENT.
 * Results are released with the kh_*_clear() of kh_pki.h; strings returned
 * as char * are released with free(). */

/* PKCS#10 PEM in *pem. */
enum kh_err kh_create_csr(kh_client *c, const struct kh_csr_req *req, char **pem, struct kh_errbuf *e) KH_WUR;
enum kh_err kh_trustpoint_create(kh_client *c, const struct kh_tp_create_req *req, struct kh_trustpoint *out,
				 struct kh_errbuf *e) KH_WUR;
enum kh_err kh_trustpoint_list(kh_client *c, struct kh_trustpoint_list *out, struct kh_errbuf *e) KH_WUR;
enum kh_err kh_trustpoint_get(kh_client *c, const char *name, struct kh_trustpoint *out, struct kh_errbuf *e) KH_WUR;
/* keep_key: keep the keys keyhold generated for it (they become ordinary keys). */
enum kh_err kh_trustpoint_delete(kh_client *c, const char *name, bool keep_key, struct kh_tp_delete_resp *out,
				 struct kh_errbuf *e) KH_WUR;
/* Accepts ca only with confirm or a matching fingerprint; otherwise
 * FAILED_PRECONDITION with the fingerprint in the message. */
enum kh_err kh_trustpoint_authenticate(kh_client *c, const char *name, const uint8_t *ca, size_t len, bool confirm,
				       const char *fingerprint, struct kh_cert_list *out, struct kh_errbuf *e) KH_WUR;
enum kh_err kh_trustpoint_enroll(kh_client *c, const char *name, struct kh_enroll_resp *out, struct kh_errbuf *e) KH_WUR;
enum kh_err kh_trustpoint_import(kh_client *c, const char *name, const uint8_t *data, size_t len,
				 struct kh_import_resp *out, struct kh_errbuf *e) KH_WUR;
/* out->data holds the PEM, DER or PKCS#7 (PEM) bytes (NUL-terminated). */
enum kh_err kh_trustpoint_export(kh_client *c, const char *name, bool chain, enum kh_cert_format format,
				 struct kh_bytes *out, struct kh_errbuf *e) KH_WUR;
/* type KH_KEY_UNSPECIFIED: the type of the current key. */
enum kh_err kh_trustpoint_regenerate(kh_client *c, const char *name, enum kh_key_type type,
				     struct kh_enroll_resp *out, struct kh_errbuf *e) KH_WUR;
enum kh_err kh_truststore_add(kh_client *c, const char *store, const struct kh_bytes *files, size_t n_files,
			      struct kh_ts_add_resp *out, struct kh_errbuf *e) KH_WUR;
/* store NULL or "": every store (without their certificates). */
enum kh_err kh_truststore_list(kh_client *c, const char *store, struct kh_truststore_list *out,
			       struct kh_errbuf *e) KH_WUR;
enum kh_err kh_truststore_remove(kh_client *c, const char *store, const char *fingerprint,
				 struct kh_ts_remove_resp *out, struct kh_errbuf *e) KH_WUR;
/* KH_OK when the check ran: out->valid says whether the chain is valid. */
enum kh_err kh_truststore_verify(kh_client *c, const struct kh_ts_verify_req *req, struct kh_ts_verify_resp *out,
				 struct kh_errbuf *e) KH_WUR;
enum kh_err kh_crl_import(kh_client *c, const char *store, const uint8_t *crl, size_t len, struct kh_crl_info *out,
			  struct kh_errbuf *e) KH_WUR;

/* ---- security (libkeyhold_security.c) ---- */

/* Audit records with time >= since_s and seq >= from_seq, one page (limit
 * 0: the server's page size); out->more and out->next_seq page on. */
enum kh_err kh_audit_show(kh_client *c, const struct kh_audit_show_req *q, struct kh_audit_records *out,
			  struct kh_errbuf *e) KH_WUR;
/* The server checks the whole chain and its checkpoint signatures. KH_OK
 * means the check ran: out->ok says whether the log is intact. */
enum kh_err kh_audit_verify(kh_client *c, struct kh_audit_verify *out, struct kh_errbuf *e) KH_WUR;
/* Per-key policy (admin): grant (or replace) / revoke a runtime grant. */
enum kh_err kh_grant_key(kh_client *c, const struct kh_key_grant *g, struct kh_errbuf *e) KH_WUR;
enum kh_err kh_revoke_key_grant(kh_client *c, const char *key, const char *principal, struct kh_errbuf *e) KH_WUR;
/* Grants of key (NULL or "": every key). */
enum kh_err kh_list_key_grants(kh_client *c, const char *key, struct kh_grant_list *out, struct kh_errbuf *e) KH_WUR;

/* ---- revocation, expiry, renewal (libkeyhold_rev.c; docs/REVOCATION.md) ----
 * Results are released with the kh_*_clear() of kh_rev.h. */

/* The revocation status of a certificate per the trust store's policy.
 * KH_OK when the check ran: out->status says good, revoked or unknown and
 * out->soft_fail whether the policy accepts unknown. */
enum kh_err kh_cert_check(kh_client *c, const struct kh_cert_check_req *req, struct kh_cert_check_resp *out,
			  struct kh_errbuf *e) KH_WUR;
/* Sets what req says (set_* flags) and answers the trustpoint. */
enum kh_err kh_trustpoint_set_policy(kh_client *c, const struct kh_tp_policy_req *req, struct kh_trustpoint *out,
				     struct kh_errbuf *e) KH_WUR;
enum kh_err kh_truststore_set_policy(kh_client *c, const struct kh_ts_policy_req *req, struct kh_ts_policy *out,
				     struct kh_errbuf *e) KH_WUR;
/* Certificates keyhold holds expiring within within_days (0: the
 * configured notify_days; all: every one), soonest first. */
enum kh_err kh_cert_expiring(kh_client *c, uint32_t within_days, bool all, struct kh_expiring_list *out,
			     struct kh_errbuf *e) KH_WUR;
/* Runs the expiry monitor (renewal, notifications) now (admin). */
enum kh_err kh_monitor_run(kh_client *c, struct kh_monitor_resp *out, struct kh_errbuf *e) KH_WUR;

#ifdef __cplusplus
}
#endif
#endif
