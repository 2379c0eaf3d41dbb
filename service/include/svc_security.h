/* svc_security: who may do what (per-key policy), the TLS listener's
 * context and token-held key, and the principal helpers (DESIGN §9). */
#ifndef SVC_SECURITY_H
#define SVC_SECURITY_H

#include <stdbool.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "hsm.h"
#include "kh_err.h"
#include "kh_types.h"
#include "svc_config.h"

struct svc_principal;
struct svc;

/* ---- principals (dispatch.c) ---- */

/* Fills who for a Unix peer: name "uid:N", its groups (looked up once,
 * here) and its roles under cfg's [access]. */
void svc_principal_unix(const struct svc_config *cfg, uid_t uid, gid_t gid, pid_t pid, struct svc_principal *who);
/* Fills who for a verified certificate principal (SAN URI, else CN). */
void svc_principal_cert(const struct svc_config *cfg, const char *name, struct svc_principal *who);
/* Whether grant g names who. */
bool svc_grant_matches(const struct svc_grant *g, const struct svc_principal *who);

/* ---- per-key policy (keypolicy.c) ---- */

struct svc_keypolicy;

/* Grants from cfg's [key:NAME] sections plus the runtime grants kept in
 * STATE_DIR/key-grants (refused with the file and line when malformed). */
enum kh_err svc_keypolicy_new(const struct svc_config *cfg, struct svc_keypolicy **out, struct kh_errbuf *e) KH_WUR;
void svc_keypolicy_free(struct svc_keypolicy *p);
/* May who use key at all (sign, see)? Admins may; others need a grant
 * naming them. The refusal is PERMISSION_DENIED naming the missing grant,
 * the same whether or not the key exists: it is decided before the token
 * is asked. */
enum kh_err svc_keypolicy_check_key(struct svc_keypolicy *p, const struct svc_principal *who, const char *key,
				 struct kh_errbuf *e) KH_WUR;
/* With the key's type known: does a grant allow this digest and padding?
 * is_rsa: padding applies. Admins pass. */
enum kh_err svc_keypolicy_check_sign(struct svc_keypolicy *p, const struct svc_principal *who, const char *key,
				  bool is_rsa, enum kh_digest digest, enum kh_padding padding,
				  struct kh_errbuf *e) KH_WUR;
/* Runtime grants (admin RPCs), persisted before the answer. */
enum kh_err svc_keypolicy_grant(struct svc_keypolicy *p, const struct kh_key_grant *g, struct kh_errbuf *e) KH_WUR;
enum kh_err svc_keypolicy_revoke(struct svc_keypolicy *p, const struct kh_grant_ref *r, struct kh_errbuf *e) KH_WUR;
enum kh_err svc_keypolicy_list(struct svc_keypolicy *p, const char *key, struct kh_grant_list *out,
			    struct kh_errbuf *e) KH_WUR;
/* A deleted key's runtime grants go with it (a new key of the same name
 * starts with none); config grants stay. */
void svc_keypolicy_forget_key(struct svc_keypolicy *p, const char *key);

/* ---- TLS listener (tls.c, tls_key.c) ---- */

/* The server context: TLS 1.3 only, client certificate required and
 * verified against the trust store cfg->tls_client_truststore (or the CA
 * file cfg->tls_client_ca), certificate cfg->tls_cert, private key
 * cfg->tls_key used inside the token. Needs s->pki open for a store. */
enum kh_err svc_tls_ctx_new(struct svc *s, SSL_CTX **out, struct kh_errbuf *e) KH_WUR;
/* The principal name of a verified peer: its first SAN URI, else its
 * subject CN; blanks and control characters are refused. */
enum kh_err svc_tls_peer_name(SSL *ssl, char *out, size_t outsz, struct kh_errbuf *e) KH_WUR;
/* An EVP_PKEY whose private operations are C_Sign in the token (key name;
 * never read out). EC keys through an EC_KEY_METHOD, RSA (PKCS#1 v1.5 and
 * PSS, as TLS 1.3 needs) through an RSA pkey method; the public half is the
 * token's. Signing blocks the calling thread for one token operation. */
enum kh_err svc_tls_token_pkey(struct hsm *h, const char *name, EVP_PKEY **out, struct kh_errbuf *e) KH_WUR;

#endif
