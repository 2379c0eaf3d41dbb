/* rpc/rpc.h: what a handler sees. A handler reads its request as the
 * generated message proto/ decoded and validated (proto_validate), and
 * builds its response as a generated message from memory that lives until
 * the answer is encoded (rpc_alloc and friends), so a response may borrow
 * anything it registers with rpc_defer. Handlers live in rpc/h_<domain>.c;
 * the method table (roles, objects) in rpc/dispatch.c. */
#ifndef RPC_RPC_H
#define RPC_RPC_H

#include <stdbool.h>
#include <stddef.h>

#include "keyhold.pb-c.h"
#include "kh_err.h"
#include "kh_types.h"

struct svc;
struct svc_principal;
struct rpc_block;

struct rpc_call {
	struct svc *s;
	const struct svc_principal *who;
	const ProtobufCMessage *req;   /* validated; cast to the method's request type */
	ProtobufCMessage *resp;        /* set by the handler (rpc_msg); NULL: an empty body */
	struct rpc_block *mem;         /* freed after the answer is encoded */
	bool oom;                      /* an allocation failed: the answer is RESOURCE_EXHAUSTED */
};

/* A handler: KH_OK with c->resp set (or left NULL for an empty response),
 * else the code with e set. */
typedef enum kh_err (*rpc_handler_fn)(struct rpc_call *c, struct kh_errbuf *e);

/* Zeroed memory that lives until the answer is sent; NULL (and c->oom)
 * when out of memory. rpc_alloc(c, 0) returns a valid pointer. */
void *rpc_alloc(struct rpc_call *c, size_t n);
/* An array of n pointers (protobuf-c repeated fields). */
void *rpc_array(struct rpc_call *c, size_t n, size_t elem);
/* A copy of s ("" for NULL); protobuf_c_empty_string-safe. */
char *rpc_strdup(struct rpc_call *c, const char *s);
/* A new message of type d, initialised. */
void *rpc_msg(struct rpc_call *c, const ProtobufCMessageDescriptor *d);
/* fn(p) runs after the answer is encoded (data the response borrows). On
 * allocation failure fn(p) runs at once and c->oom is set. */
void rpc_defer(struct rpc_call *c, void (*fn)(void *), void *p);
/* Frees everything rpc_alloc and rpc_defer hold. */
void rpc_call_release(struct rpc_call *c);

/* ---- the handlers, by domain (rpc/h_<domain>.c) ---- */

/* h_keys.c */
enum kh_err svc_h_generate_key(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_list_keys(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_get_public_key(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_delete_key(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_sign(struct rpc_call *c, struct kh_errbuf *e);

/* h_trustpoint.c */
enum kh_err svc_h_create_csr(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_create_trustpoint(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_list_trustpoints(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_get_trustpoint(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_delete_trustpoint(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_authenticate_trustpoint(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_enroll_trustpoint(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_import_certificate(struct rpc_call *c, struct kh_errbuf *e);
/* ImportCertificate's body for trustpoint name (h_trustpoint.c). */
enum kh_err svc_tp_import(struct rpc_call *c, const char *name, const uint8_t *data, size_t len,
			  struct kh_errbuf *e) KH_WUR;
/* EnrollTrustpoint of an ACME trustpoint for keyholdd itself (the expiry
 * monitor's renewal, through svc->enroll_auto): the order and the import;
 * *serial the new certificate's. */
enum kh_err svc_tp_enroll_auto(struct svc *s, const char *tp, char *serial, size_t n, struct kh_errbuf *e) KH_WUR;
/* SCEP (h_scep.c): GetCACert of an enrollment url trustpoint (CA DER and,
 * when the server names one, RA DER; len 0: none), the RA stored with it,
 * and EnrollTrustpoint for it (PKCSReq; c->resp set on success). */
enum kh_err svc_scep_get_ca(struct svc *s, const char *name, struct kh_bytes *ca, struct kh_bytes *ra,
			    struct kh_errbuf *e) KH_WUR;
enum kh_err svc_scep_set_ra(struct svc *s, const char *name, const struct kh_bytes *ra, struct kh_errbuf *e) KH_WUR;
enum kh_err svc_scep_enroll(struct rpc_call *c, const char *name, struct kh_errbuf *e) KH_WUR;
/* The pending request of trustpoint name into m's scep_* fields (the PKI
 * lock held). */
enum kh_err rpc_scep_pending(struct rpc_call *c, const char *name, Keyhold__V1__Trustpoint *m,
			     struct kh_errbuf *e) KH_WUR;
/* scep_poll.c: CertPoll of pending requests and RenewalReq of url
 * trustpoints due for renewal, now (RunMonitor) and on keyholdd's timer
 * ([scep] poll_interval); lines as the expiry monitor's. Only on the
 * node that holds (or now takes) the scep-poll role's lease; elsewhere
 * one line says so. */
struct svc_exp_report;
void svc_scep_pass(struct svc *s, struct svc_exp_report *rep);
struct event_base;
enum kh_err svc_scep_poll_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
void svc_scep_poll_stop(struct svc *s);
/* One SCEP exchange for trustpoint name (h_scep.c): CertPoll when a
 * request is pending, RenewalReq when it has a certificate, else PKCSReq;
 * the issued certificate imported through c. *issued: whether it came. */
enum kh_err svc_scep_exchange(struct rpc_call *c, const char *name, bool *issued, struct kh_errbuf *e) KH_WUR;
enum kh_err svc_h_export_trustpoint(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_regenerate_trustpoint(struct rpc_call *c, struct kh_errbuf *e);
/* The Trustpoint message of trustpoint name, with its pending CSR (the PKI
 * lock held, e.g. by SetTrustpointPolicy after its change); *out lives as
 * long as the call. NOT_FOUND when there is none. */
enum kh_err rpc_trustpoint(struct rpc_call *c, const char *name, Keyhold__V1__Trustpoint **out,
			   struct kh_errbuf *e);

/* h_trustpoint_edit.c: SetTrustpointPolicy's enrollment settings
 * (subject, SANs, EKU, digest, enrollment, validity, FQDN, --ip-san)
 * checked together and applied to t; the PKI lock held. */
struct store_tp;
enum kh_err svc_h_discard_csr(struct rpc_call *c, struct kh_errbuf *e);
/* rpc_revstate.c: the revocation scheduler's findings in answers. The
 * first with the PKI lock held; the second takes it. */
struct store_tp;
struct store_revstate;
enum kh_err rpc_tp_revocation_state(struct rpc_call *c, const struct store_tp *t, Keyhold__V1__Trustpoint *m,
				    struct kh_errbuf *e) KH_WUR;
enum kh_err rpc_rev_states(struct rpc_call *c, struct store_revstate **out, size_t *n, struct kh_errbuf *e) KH_WUR;
/* h_acme.c: AcmeAccount (key rollover, deactivation). */
enum kh_err svc_h_acme_account(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err rpc_tp_edit(struct svc *s, const Keyhold__V1__SetTrustpointPolicyRequest *q, struct store_tp *t,
			struct kh_errbuf *e);

/* h_truststore.c */
enum kh_err svc_h_truststore_add(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_truststore_list(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_truststore_remove(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_truststore_verify(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_import_crl(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_list_crls(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_remove_crl(struct rpc_call *c, struct kh_errbuf *e);

/* h_truststore_pool.c */
enum kh_err svc_h_truststore_create(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_truststore_delete(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_truststore_export(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_truststore_show(struct rpc_call *c, struct kh_errbuf *e);

/* h_revocation.c */
enum kh_err svc_h_check_certificate(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_set_truststore_policy(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_set_trustpoint_policy(struct rpc_call *c, struct kh_errbuf *e);

/* h_expiry.c */
enum kh_err svc_h_list_expiring(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_run_monitor(struct rpc_call *c, struct kh_errbuf *e);

/* rpc_cert.c: CertInfo, CrlInfo from a certificate's or CRL's description
 * (strings copied); NULL (c->oom) when out of memory. */
struct kh_cert_info;
struct kh_crl_info;
struct kh_validation;
Keyhold__V1__CertInfo *rpc_cert_info(struct rpc_call *c, const struct kh_cert_info *k);
Keyhold__V1__CrlInfo *rpc_crl_info(struct rpc_call *c, const struct kh_crl_info *k);
Keyhold__V1__ValidationSettings *rpc_validation(struct rpc_call *c, const struct kh_validation *v);

/* h_status.c */
enum kh_err svc_h_get_status(struct rpc_call *c, struct kh_errbuf *e);
/* GetStatus reads the token's information and key listing when at most
 * RPC_STATUS_MAX_AGE_US old (changes keyholdd makes or hears of show at
 * once; others within that time), and has them read again on a worker
 * once they are half that old: a stream of status probes then never waits
 * for the token, which may be busy for milliseconds (a TPM signing). */
#define RPC_STATUS_MAX_AGE_US 2000000u
/* The background refresh, on s->pool (made before, freed after it). */
enum kh_err svc_status_refresh_new(struct svc *s, struct kh_errbuf *e) KH_WUR;
void svc_status_refresh_free(struct svc *s);
enum kh_err svc_h_get_capabilities(struct rpc_call *c, struct kh_errbuf *e);

/* h_fips.c */
enum kh_err svc_h_run_selftest(struct rpc_call *c, struct kh_errbuf *e);
/* The last self-test run's results (GetStatus, RunSelfTest); NULL with
 * *n = 0 before the first run or when out of memory (c->oom). */
Keyhold__V1__SelfTestResult **rpc_selftests(struct rpc_call *c, size_t *n);

/* h_audit.c */
enum kh_err svc_h_audit_show(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_audit_verify(struct rpc_call *c, struct kh_errbuf *e);

/* h_grants.c */
enum kh_err svc_h_grant_key(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_revoke_key_grant(struct rpc_call *c, struct kh_errbuf *e);
enum kh_err svc_h_list_key_grants(struct rpc_call *c, struct kh_errbuf *e);

/* protobuf-c's structs take char * for strings they only read. */
static inline char *rpc_str(const char *s)
{
	union {
		const char *c;
		char *m;
	} u;

	u.c = s != NULL ? s : "";
	return u.m;
}

#endif
