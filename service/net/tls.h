/* net/tls.h: the TLS 1.3 listener's context and its token-held private key
 * (DESIGN §9). */
#ifndef NET_TLS_H
#define NET_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "hsm.h"
#include "kh_err.h"

struct svc;

/* ---- TLS listener (svc_tls.c, svc_tls_key.c) ---- */

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
