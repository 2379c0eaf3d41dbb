/* acme_http01.c: the ACME http-01 responder (RFC 8555 §8.3) on keyholdd's
 * event loop: GET or HEAD /.well-known/acme-challenge/TOKEN answers the key
 * authorization of a challenge an enrollment has pending; everything else
 * is 404 (405 for other methods). Workers publish and withdraw tokens under
 * a mutex; the loop only reads the table. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "config/config.h"
#include "kh_log.h"
#include "kh_util.h"
#include "pki/acme.h"

#define ACME_HTTP01_SLOTS 64
#define ACME_HTTP01_PREFIX "/.well-known/acme-challenge/"
/* token "." base64url(SHA-256) */
#define ACME_KEYAUTH_MAX (ACME_TOKEN_MAX + 1 + 43)

struct acme_http01 {
	pthread_mutex_t lock;
	struct evhttp *http;
	struct {
		char token[ACME_TOKEN_MAX + 1];     /* "": free */
		char key_auth[ACME_KEYAUTH_MAX + 1];
	} slot[ACME_HTTP01_SLOTS];
};

static void acme_http01_cb(struct evhttp_request *req, void *arg)
{
	struct acme_http01 *h = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *tok;
	struct evbuffer *b = evbuffer_new();
	bool found = false;
	size_t i;

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		evhttp_send_reply(req, HTTP_BADMETHOD, "Method Not Allowed", NULL);
		evbuffer_free(b);
		return;
	}
	if (path != NULL && strncmp(path, ACME_HTTP01_PREFIX, strlen(ACME_HTTP01_PREFIX)) == 0) {
		tok = path + strlen(ACME_HTTP01_PREFIX);
		if (acme_b64url_valid(tok, ACME_TOKEN_MAX)) {
			pthread_mutex_lock(&h->lock);
			for (i = 0; i < ACME_HTTP01_SLOTS && !found; i++)
				if (h->slot[i].token[0] != '\0' && strcmp(h->slot[i].token, tok) == 0) {
					evbuffer_add(b, h->slot[i].key_auth, strlen(h->slot[i].key_auth));
					found = true;
				}
			pthread_mutex_unlock(&h->lock);
		}
	}
	if (found) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/octet-stream");
		evhttp_send_reply(req, HTTP_OK, "OK", b);
		log_info("acme: http-01 challenge answered");
	} else {
		evhttp_send_reply(req, HTTP_NOTFOUND, "Not Found", NULL);
	}
	evbuffer_free(b);
}

enum kh_err acme_http01_start(struct svc *s, struct event_base *base, struct kh_errbuf *e)
{
	const struct svc_config *cfg = s->cfg;
	struct acme_http01 *h = NULL;
	struct evhttp_bound_socket *bs;
	int r = KH_OK;

	if (cfg->acme_http01_host == NULL)
		return KH_OK;
	h = calloc(1, sizeof(*h));
	KH_ENSURE(h != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	pthread_mutex_init(&h->lock, NULL);
	h->http = evhttp_new(base);
	KH_ENSURE(h->http != NULL, kh_err_set(e, KH_E_INTERNAL, "acme: cannot create the HTTP server"));
	evhttp_set_max_headers_size(h->http, 8192);
	evhttp_set_max_body_size(h->http, 0);
	evhttp_set_timeout(h->http, 10);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(h->http, acme_http01_cb, h);
	bs = evhttp_bind_socket_with_handle(h->http, cfg->acme_http01_host, (ev_uint16_t)cfg->acme_http01_port);
	KH_ENSURE(bs != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "[acme] cannot listen on %s port %u",
					 cfg->acme_http01_host, cfg->acme_http01_port));
	log_info("acme: http-01 responder listening on %s port %u", cfg->acme_http01_host, cfg->acme_http01_port);
	s->acme_http01 = h;
	h = NULL;
out:
	if (h != NULL) {
		if (h->http != NULL)
			evhttp_free(h->http);
		pthread_mutex_destroy(&h->lock);
		free(h);
	}
	return r;
}

void acme_http01_stop(struct svc *s)
{
	struct acme_http01 *h = s->acme_http01;

	if (h == NULL)
		return;
	evhttp_free(h->http);
	pthread_mutex_destroy(&h->lock);
	free(h);
	s->acme_http01 = NULL;
}

enum kh_err acme_http01_add(struct svc *s, const char *token, const char *key_auth, struct kh_errbuf *e)
{
	struct acme_http01 *h = s->acme_http01;
	size_t i;

	if (h == NULL)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "ACME http-01 needs keyholdd's responder: set [acme] http01_listen = ADDRESS:PORT in the "
				  "configuration (docs/PKI.md)");
	if (!acme_b64url_valid(token, ACME_TOKEN_MAX) || strlen(key_auth) > ACME_KEYAUTH_MAX)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME challenge token or key authorization too long");
	pthread_mutex_lock(&h->lock);
	for (i = 0; i < ACME_HTTP01_SLOTS; i++)
		if (h->slot[i].token[0] == '\0') {
			kh_strlcpy(h->slot[i].token, token, sizeof(h->slot[i].token));
			kh_strlcpy(h->slot[i].key_auth, key_auth, sizeof(h->slot[i].key_auth));
			break;
		}
	pthread_mutex_unlock(&h->lock);
	if (i == ACME_HTTP01_SLOTS)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "more than %d ACME challenges pending at once",
				  ACME_HTTP01_SLOTS);
	return KH_OK;
}

void acme_http01_remove(struct svc *s, const char *token)
{
	struct acme_http01 *h = s->acme_http01;
	size_t i;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	for (i = 0; i < ACME_HTTP01_SLOTS; i++)
		if (strcmp(h->slot[i].token, token) == 0)
			memset(&h->slot[i], 0, sizeof(h->slot[i]));
	pthread_mutex_unlock(&h->lock);
}
