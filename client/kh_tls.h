/* kh_tls: the TLS 1.3 transport of libkeyhold (client.c): TCP connect
 * with a client certificate, server verification against a CA bundle and
 * name. Not installed. */
#ifndef KH_TLS_H
#define KH_TLS_H

#include <sys/types.h>

#include "kh_err.h"

struct kh_tls;

/* Borrowed strings; all but server_name (NULL: HOST) are required. */
struct kh_tls_opts {
	const char *connect;     /* HOST:PORT */
	const char *tls_cert;
	const char *tls_key;
	const char *tls_ca;
	const char *tls_server_name;
};

/* Connects. *fd and *tls are set as soon as they exist, also on failure
 * (the caller closes and frees them). */
enum kh_err kh_tls_connect(const struct kh_tls_opts *o, int *fd, struct kh_tls **tls, struct kh_errbuf *e) KH_WUR;
/* Bytes read (0: closed) or -1 with e set. */
ssize_t kh_tls_read(struct kh_tls *t, void *buf, size_t len, struct kh_errbuf *e);
ssize_t kh_tls_write(struct kh_tls *t, const void *buf, size_t len, struct kh_errbuf *e);
/* Shuts down and frees *tls (NULL is fine) and sets it NULL. */
void kh_tls_free(struct kh_tls **tls);

#endif
