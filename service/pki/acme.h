/* pki/acme.h: ACME (RFC 8555) enrollment of trustpoints: the JSON documents
 * of an ACME server parsed strictly (acme_json.c), the flow from account to
 * certificate chain (acme.c) and the http-01 responder keyholdd serves on
 * its event loop (acme_http01.c). docs/PKI.md "ACME enrollment". */
#ifndef PKI_ACME_H
#define PKI_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kh_err.h"
#include "kh_text.h"
#include "core/svc.h"

#define ACME_URL_MAX KH_PKI_URL_MAX
/* The most bytes of one answer (a certificate chain is the largest). */
#define ACME_BODY_MAX (256 * 1024)
/* The most authorizations (identifiers) one order may hold here. */
#define ACME_AUTHZ_MAX 16
/* A challenge token: base64url, RFC 8555 §8.3 (>= 128 bits of entropy). */
#define ACME_TOKEN_MAX 128
#define ACME_IDENT_MAX 253
#define ACME_DETAIL_MAX 300

enum acme_status {
	ACME_ST_UNKNOWN = 0,
	ACME_ST_PENDING,
	ACME_ST_READY,
	ACME_ST_PROCESSING,
	ACME_ST_VALID,
	ACME_ST_INVALID,
	ACME_ST_DEACTIVATED,
	ACME_ST_EXPIRED,
	ACME_ST_REVOKED,
};

const char *acme_status_name(enum acme_status st);

struct acme_directory {
	char new_nonce[ACME_URL_MAX + 1];
	char new_account[ACME_URL_MAX + 1];
	char new_order[ACME_URL_MAX + 1];
	char key_change[ACME_URL_MAX + 1];   /* "": the server offers no key rollover */
	bool tos;                            /* meta.termsOfService present */
};

struct acme_order {
	enum acme_status status;
	char finalize[ACME_URL_MAX + 1];
	char certificate[ACME_URL_MAX + 1];  /* "" until valid */
	char authz[ACME_AUTHZ_MAX][ACME_URL_MAX + 1];
	size_t n_authz;
	char error[ACME_DETAIL_MAX + 1];     /* the order's problem, if any */
};

struct acme_authz {
	enum acme_status status;
	char ident_type[8];                  /* "dns", "ip" */
	char ident[ACME_IDENT_MAX + 1];
	bool has_http01;
	enum acme_status chall_status;
	char chall_url[ACME_URL_MAX + 1];
	char token[ACME_TOKEN_MAX + 1];
	char error[ACME_DETAIL_MAX + 1];     /* the challenge's problem, if any */
};

struct acme_problem {
	char type[128];                      /* "urn:ietf:params:acme:error:badNonce" */
	char detail[ACME_DETAIL_MAX + 1];
};

/* ---- acme_json.c: strict parsing (jansson; untrusted input, fuzzed) ----
 * Each takes the whole body, refuses anything but one JSON object (no
 * duplicate keys, no NUL), URLs that are not https:// printable ASCII within
 * ACME_URL_MAX, unknown statuses, and fields of the wrong type;
 * INVALID_ARGUMENT naming what was wrong. Unknown fields are ignored
 * (RFC 8555 §7.1: extensible objects). */
enum kh_err acme_parse_directory(const uint8_t *b, size_t n, struct acme_directory *out,
				 struct kh_errbuf *e) KH_WUR;
enum kh_err acme_parse_order(const uint8_t *b, size_t n, struct acme_order *out, struct kh_errbuf *e) KH_WUR;
enum kh_err acme_parse_authz(const uint8_t *b, size_t n, struct acme_authz *out, struct kh_errbuf *e) KH_WUR;
enum kh_err acme_parse_account(const uint8_t *b, size_t n, enum acme_status *out, struct kh_errbuf *e) KH_WUR;
/* An RFC 7807 problem document; type and detail made printable. */
enum kh_err acme_parse_problem(const uint8_t *b, size_t n, struct acme_problem *out, struct kh_errbuf *e) KH_WUR;
/* base64url without padding (RFC 7515 §2); true when s is one, 1..max chars. */
bool acme_b64url_valid(const char *s, size_t max);

/* ---- acme.c: the flow, on a worker thread ---- */

/* Runs one ACME order for trustpoint tp (enrollment acme): account (created
 * once and remembered), order for its DNS and IP SANs, http-01 challenges
 * answered by the responder, finalize with a CSR signed in the token by the
 * key being enrolled, and the chain downloaded. Takes the PKI lock only to
 * read and write the state, never across the network. *pem (owned) is the
 * chain as the server sent it, leaf first. Bounded by [acme] timeout. */
enum kh_err svc_acme_order(struct svc *s, const char *tp, char **pem, size_t *pem_len, struct kh_errbuf *e) KH_WUR;
/* The account key's name for trustpoint tp; INVALID_ARGUMENT when tp is too
 * long to derive it. */
enum kh_err svc_acme_key_name(const char *tp, char out[KH_NAME_MAX + 1], struct kh_errbuf *e) KH_WUR;

/* The account of ACME trustpoint tp (it must exist: enroll made it):
 * KEY_ROLLOVER (RFC 8555 §7.3.5) makes a new P-256 token key
 * (TP.acme.N), has the server bind the account to it (keyChange, signed
 * by both keys) and deletes the old one; DEACTIVATE (§7.3.6) ends the
 * account on the server; keyholdd then forgets its URL (the key stays:
 * the server refuses it from now on; deleting it lets the next enroll
 * register a new account). *detail says what happened. */
enum svc_acme_action { SVC_ACME_KEY_ROLLOVER = 1, SVC_ACME_DEACTIVATE = 2 };
enum kh_err svc_acme_account(struct svc *s, const char *tp, enum svc_acme_action act, char *detail, size_t n,
			     struct kh_errbuf *e) KH_WUR;
/* Gives ACME trustpoint tp the external account binding (kid, MAC key as
 * the CA gave it, base64url) its next account registration sends (takes
 * the PKI lock; nothing is sent now). */
enum kh_err svc_acme_set_eab(struct svc *s, const char *tp, const char *kid, const uint8_t *key, size_t key_len,
			     struct kh_errbuf *e) KH_WUR;

/* The external account binding MAC key as the CA gave it (base64url,
 * RFC 8555 §7.3.4; blanks around it ignored) decoded into a->eab_key;
 * INVALID_ARGUMENT when it is not base64url or decodes to fewer than 16
 * or more than STORE_ACME_EAB_MAX bytes. */
struct store_tp_acme;
enum kh_err svc_acme_eab_key(const uint8_t *in, size_t n, struct store_tp_acme *a, struct kh_errbuf *e) KH_WUR;

/* Records how the automatic renewal of tp stands (takes the PKI lock):
 * failures in a row (0: none), the last error ("" when none) and the
 * earliest next attempt (svc_now seconds; 0: at once). NOT_FOUND when tp
 * is no ACME trustpoint. */
enum kh_err svc_acme_renewal_set(struct svc *s, const char *tp, uint32_t failures, const char *error, int64_t next,
				 struct kh_errbuf *e) KH_WUR;

/* ---- acme_http01.c: the http-01 responder ---- */

struct event_base;
/* Listens on [acme] http01_listen when set (before the privilege drop). */
enum kh_err acme_http01_start(struct svc *s, struct event_base *base, struct kh_errbuf *e) KH_WUR;
void acme_http01_stop(struct svc *s);
/* Publishes /.well-known/acme-challenge/token -> key_auth while a challenge
 * is pending (any thread); FAILED_PRECONDITION when no responder runs,
 * RESOURCE_EXHAUSTED when too many are pending. */
enum kh_err acme_http01_add(struct svc *s, const char *token, const char *key_auth, struct kh_errbuf *e) KH_WUR;
void acme_http01_remove(struct svc *s, const char *token);

/* ---- acme_webroot.c: http-01 through an existing web server ---- */

/* Writes key_auth to root/.well-known/acme-challenge/token (the
 * directories made when missing); FAILED_PRECONDITION naming the path when
 * it cannot. */
enum kh_err acme_webroot_put(const char *root, const char *token, const char *key_auth, struct kh_errbuf *e) KH_WUR;
void acme_webroot_remove(const char *root, const char *token);

#endif
