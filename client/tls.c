/* tls.c: the TLS 1.3 transport of libkeyhold: TCP connect, client
 * certificate, server verification against a CA bundle and name. */
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "kh_tls.h"
#include "kh_util.h"

struct kh_tls {
	SSL_CTX *ctx;
	SSL *ssl;
};

static enum kh_err kh_tls_fail(struct kh_errbuf *e, enum kh_err code, const char *what)
{
	unsigned long err = ERR_get_error();
	char buf[256] = "";

	if (err != 0)
		ERR_error_string_n(err, buf, sizeof(buf));
	ERR_clear_error();
	return kh_err_set(e, code, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static enum kh_err kh_tcp_connect(const char *hostport, char *host, size_t hostsz, int *fd_out,
				  struct kh_errbuf *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int fd = -1, rc;

	if (hostport[0] == ':' || kh_split_hostport(hostport, host, hostsz, port, sizeof(port)) != 0)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "address '%s' is not HOST:PORT", hostport);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return kh_err_set(e, KH_E_UNAVAILABLE, "cannot resolve %s: %s", host, gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return kh_err_set(e, KH_E_UNAVAILABLE, "cannot connect to %s: %s", hostport, strerror(errno));
	*fd_out = fd;
	return KH_OK;
}

enum kh_err kh_tls_connect(const struct kh_tls_opts *o, int *fd, struct kh_tls **tls, struct kh_errbuf *e)
{
	struct kh_tls *t = NULL;
	char host[256];
	int r = KH_OK;

	KH_ENSURE(o->tls_cert != NULL && o->tls_key != NULL && o->tls_ca != NULL,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "TLS needs --tls-cert, --tls-key and --tls-ca"));
	KH_TRY(kh_tcp_connect(o->connect, host, sizeof(host), fd, e));
	t = calloc(1, sizeof(*t));
	KH_ENSURE(t != NULL, KH_E_RESOURCE_EXHAUSTED);
	*tls = t;
	t->ctx = SSL_CTX_new(TLS_client_method());
	KH_ENSURE(t->ctx != NULL, kh_tls_fail(e, KH_E_INTERNAL, "SSL_CTX_new"));
	/* DESIGN §9: TLS 1.3 only. */
	KH_ENSURE(SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) == 1, KH_E_INTERNAL);
	KH_ENSURE(SSL_CTX_use_certificate_chain_file(t->ctx, o->tls_cert) == 1,
		  kh_tls_fail(e, KH_E_INVALID_ARGUMENT, "cannot load the client certificate"));
	KH_ENSURE(SSL_CTX_use_PrivateKey_file(t->ctx, o->tls_key, SSL_FILETYPE_PEM) == 1,
		  kh_tls_fail(e, KH_E_INVALID_ARGUMENT, "cannot load the client key"));
	KH_ENSURE(SSL_CTX_check_private_key(t->ctx) == 1,
		  kh_tls_fail(e, KH_E_INVALID_ARGUMENT, "the client key does not match its certificate"));
	KH_ENSURE(SSL_CTX_load_verify_locations(t->ctx, o->tls_ca, NULL) == 1,
		  kh_tls_fail(e, KH_E_INVALID_ARGUMENT, "cannot load the CA bundle"));
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	t->ssl = SSL_new(t->ctx);
	KH_ENSURE(t->ssl != NULL, kh_tls_fail(e, KH_E_INTERNAL, "SSL_new"));
	KH_ENSURE(SSL_set_fd(t->ssl, *fd) == 1, KH_E_INTERNAL);
	{
		const char *name = o->tls_server_name != NULL ? o->tls_server_name : host;
		X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
		struct in6_addr a6;
		struct in_addr a4;

		if (inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1) {
			KH_ENSURE(X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1, KH_E_INTERNAL);
		} else {
			/* SSL_set_tlsext_host_name() is a macro that casts the
			 * const name to (void *): clang's -Wcast-qual. */
			KH_ENSURE(SSL_ctrl(t->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
					   (void *)(uintptr_t)name) == 1,
				  KH_E_INTERNAL);
			KH_ENSURE(X509_VERIFY_PARAM_set1_host(vp, name, 0) == 1, KH_E_INTERNAL);
		}
	}
	if (SSL_connect(t->ssl) != 1) {
		long v = SSL_get_verify_result(t->ssl);

		if (v != X509_V_OK)
			r = kh_err_set(e, KH_E_UNAUTHENTICATED, "the server certificate is not trusted: %s",
				       X509_verify_cert_error_string(v));
		else
			r = kh_tls_fail(e, KH_E_UNAUTHENTICATED, "TLS handshake failed");
		goto out;
	}
out:
	return r;
}

ssize_t kh_tls_read(struct kh_tls *t, void *buf, size_t len, struct kh_errbuf *e)
{
	size_t got = 0;
	int rc;

	rc = SSL_read_ex(t->ssl, buf, len, &got);
	if (rc == 1)
		return (ssize_t)got;
	rc = SSL_get_error(t->ssl, rc);
	if (rc == SSL_ERROR_ZERO_RETURN)
		return 0;
	kh_tls_fail(e, KH_E_UNAVAILABLE, "TLS read failed");
	return -1;
}

ssize_t kh_tls_write(struct kh_tls *t, const void *buf, size_t len, struct kh_errbuf *e)
{
	size_t done = 0;

	if (SSL_write_ex(t->ssl, buf, len, &done) == 1)
		return (ssize_t)done;
	kh_tls_fail(e, KH_E_UNAVAILABLE, "TLS write failed");
	return -1;
}

void kh_tls_free(struct kh_tls **tls)
{
	struct kh_tls *t = *tls;

	if (t == NULL)
		return;
	if (t->ssl != NULL) {
		SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
	}
	SSL_CTX_free(t->ctx);
	free(t);
	*tls = NULL;
}
