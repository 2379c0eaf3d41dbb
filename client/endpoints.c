/* endpoints.c: libkeyhold's list of keyholdd nodes (KEYHOLD_ENDPOINTS,
 * kh_client_opts_set_endpoints), which node a new connection tries first
 * (spreading), and which failed requests may be sent again on the next node
 * (the retry rule over keyhold.proto's idempotency marks). docs/CLUSTER.md
 * "Client failover" is the user's side of this file. */
#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "kh_client_int.h"
#include "proto_methods.h"

/* ---- parsing ---- */

void kh_endpoints_clear(struct kh_endpoints *eps)
{
	size_t i;

	for (i = 0; i < eps->n; i++)
		free(eps->ep[i].addr);
	memset(eps, 0, sizeof(*eps));
}

enum kh_err kh_endpoints_add(struct kh_endpoints *eps, enum kh_ep_kind kind, const char *addr, size_t len)
{
	char *a;

	if (eps->n == KH_ENDPOINTS_MAX)
		return KH_E_OUT_OF_RANGE;
	a = strndup(addr, len);
	if (a == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	eps->ep[eps->n].kind = kind;
	eps->ep[eps->n].addr = a;
	eps->n++;
	return KH_OK;
}

enum kh_err kh_endpoints_copy(const struct kh_endpoints *src, struct kh_endpoints *dst)
{
	struct kh_endpoints n = { 0 };
	size_t i;
	int r = KH_OK;

	for (i = 0; i < src->n; i++)
		KH_TRY(kh_endpoints_add(&n, src->ep[i].kind, src->ep[i].addr, strlen(src->ep[i].addr)));
	kh_endpoints_clear(dst);
	*dst = n;
	memset(&n, 0, sizeof(n));
out:
	kh_endpoints_clear(&n);
	return r;
}

/* HOST:PORT with a non-empty host ([v6] allowed) and a port 1-65535. */
static bool kh_hostport_ok(const char *s, size_t len)
{
	size_t colon = len, i;
	unsigned long port = 0;

	for (i = len; i > 0; i--) {
		if (s[i - 1] == ':') {
			colon = i - 1;
			break;
		}
	}
	if (colon == len || colon == 0 || colon + 1 == len || len - colon - 1 > 5)
		return false;
	for (i = colon + 1; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	if (port == 0 || port > 65535)
		return false;
	if (s[0] == '[')
		return colon >= 3 && s[colon - 1] == ']';
	/* A bare IPv6 address needs brackets (its colons are ambiguous). */
	return memchr(s, ':', colon) == NULL && memchr(s, ']', colon) == NULL;
}

static bool kh_is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* One entry s[0..len) (trimmed), number idx (1-based) in the list. */
static enum kh_err kh_endpoint_parse(struct kh_endpoints *eps, const char *s, size_t len, size_t idx,
				     struct kh_errbuf *e)
{
	const size_t path_max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;
	int r;

	if (len == 0)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "KEYHOLD_ENDPOINTS: entry %zu is empty", idx);
	if (len > 5 && memcmp(s, "unix:", 5) == 0) {
		if (len - 5 > path_max)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT,
					  "KEYHOLD_ENDPOINTS: entry %zu: the socket path is longer than %zu bytes", idx,
					  path_max);
		r = kh_endpoints_add(eps, KH_EP_UNIX, s + 5, len - 5);
	} else if (len > 4 && memcmp(s, "tls:", 4) == 0) {
		if (!kh_hostport_ok(s + 4, len - 4))
			return kh_err_set(e, KH_E_INVALID_ARGUMENT,
					  "KEYHOLD_ENDPOINTS: entry %zu '%.*s': expected tls:HOST:PORT (port 1-65535, an "
					  "IPv6 address in brackets)",
					  idx, (int)(len > 80 ? 80 : len), s);
		r = kh_endpoints_add(eps, KH_EP_TLS, s + 4, len - 4);
	} else {
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "KEYHOLD_ENDPOINTS: entry %zu '%.*s': expected unix:PATH or tls:HOST:PORT", idx,
				  (int)(len > 80 ? 80 : len), s);
	}
	if (r == KH_E_OUT_OF_RANGE)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "KEYHOLD_ENDPOINTS: more than %d entries",
				  KH_ENDPOINTS_MAX);
	if (r != KH_OK)
		return kh_err_set(e, r, "out of memory");
	return KH_OK;
}

enum kh_err kh_endpoints_parse(const char *list, struct kh_endpoints *out, struct kh_errbuf *e)
{
	struct kh_endpoints eps = { 0 };
	const char *p = list;
	size_t idx = 1;
	int r = KH_OK;

	KH_ENSURE(list != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "KEYHOLD_ENDPOINTS: no list"));
	KH_ENSURE(strnlen(list, KH_OPT_STR_MAX + 1) <= KH_OPT_STR_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "KEYHOLD_ENDPOINTS: longer than %u bytes", KH_OPT_STR_MAX));
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);

		while (len > 0 && kh_is_blank(*p)) {
			p++;
			len--;
		}
		while (len > 0 && kh_is_blank(p[len - 1]))
			len--;
		KH_TRY(kh_endpoint_parse(&eps, p, len, idx, e));
		if (comma == NULL)
			break;
		p = comma + 1;
		idx++;
	}
	kh_endpoints_clear(out);
	*out = eps;
	memset(&eps, 0, sizeof(eps));
out:
	kh_endpoints_clear(&eps);
	return r;
}

/* ---- spreading ---- */

/* Connections made by this process so far: consecutive connections start
 * at consecutive nodes, and the process id shifts where a process starts,
 * so many short-lived clients (the CLI) spread too. */
static atomic_uint kh_connections;

size_t kh_endpoints_start(size_t n, bool listed)
{
	unsigned k;

	if (n <= 1 || listed)
		return 0;
	k = atomic_fetch_add(&kh_connections, 1u);
	return ((size_t)getpid() + k) % n;
}

/* ---- retrying ---- */

/* The methods keyhold.proto marks NO_SIDE_EFFECTS or IDEMPOTENT
 * (proto/methods.cmake generates the list from the marks). */
static const char *const kh_retry_methods[] = {
#define KH_RETRY_NAME(e, n) n,
	PROTO_METHODS_RETRY(KH_RETRY_NAME)
#undef KH_RETRY_NAME
};

bool kh_method_retry_safe(const char *method)
{
	size_t i;

	if (method == NULL)
		return false;
	for (i = 0; i < sizeof(kh_retry_methods) / sizeof(kh_retry_methods[0]); i++)
		if (strcmp(kh_retry_methods[i], method) == 0)
			return true;
	return false;
}

bool kh_retry_allowed(const char *method, enum kh_fail_stage stage, enum kh_err code)
{
	if (code != KH_E_UNAVAILABLE)
		return false;
	/* Nothing reached the node (no connection, or the frame was not
	 * written whole): no node can have acted on it. */
	if (stage == KH_FAIL_UNSENT)
		return true;
	/* The node had the whole request: it may have committed before it
	 * died or answered UNAVAILABLE. Only a read or Sign goes again. */
	return kh_method_retry_safe(method);
}
