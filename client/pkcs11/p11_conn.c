/* p11_conn.c: the module's connections to keyholdd: options from the
 * environment, a pool of idle clients (one request in flight per client,
 * so threads sign in parallel), one reconnect after a transport failure,
 * fork handling, and keyhold's errors as CK_RV in one place. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p11.h"

void p11_dbg(const char *fmt, ...)
{
	va_list ap;

	if (getenv("KEYHOLD_PKCS11_DEBUG") == NULL)
		return;
	va_start(ap, fmt);
	fputs("keyhold-pkcs11: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

uint64_t p11_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* KEYHOLD_ENDPOINTS (several nodes: libkeyhold spreads the pool's
 * connections over them and moves a failed read or Sign to the next one),
 * else KEYHOLD_SOCKET (libkeyhold's default when unset), or TLS when
 * KEYHOLD_CONNECT=HOST:PORT with KEYHOLD_TLS_CA/_CERT/_KEY and optionally
 * KEYHOLD_TLS_SERVER_NAME; libkeyhold's KEYHOLD_SPIN_US (docs/PKCS11.md). */
CK_RV p11_conn_init(void)
{
	const char *connect = getenv("KEYHOLD_CONNECT"), *eps = getenv("KEYHOLD_ENDPOINTS");
	enum kh_err r;

	if (kh_client_opts_new(&p11.opts) != KH_OK)
		return CKR_HOST_MEMORY;
	if (kh_client_opts_error_message(p11.opts)[0] != '\0') {
		/* A bad KEYHOLD_SPIN_US: fail C_Initialize with its reason. */
		fprintf(stderr, "keyhold-pkcs11: %s\n", kh_client_opts_error_message(p11.opts));
		r = KH_E_INVALID_ARGUMENT;
	} else if (eps != NULL && eps[0] != '\0') {
		/* kh_client_opts_new took it already; set again here so that a
		 * bad list fails C_Initialize with its reason, not every call. */
		r = kh_client_opts_set_endpoints(p11.opts, eps);
		if (r == KH_E_INVALID_ARGUMENT)
			fprintf(stderr, "keyhold-pkcs11: %s\n", kh_client_opts_error_message(p11.opts));
	} else if (connect != NULL && connect[0] != '\0') {
		const char *sn = getenv("KEYHOLD_TLS_SERVER_NAME");

		r = kh_client_opts_set_tls(p11.opts, connect, getenv("KEYHOLD_TLS_CA"), getenv("KEYHOLD_TLS_CERT"),
					   getenv("KEYHOLD_TLS_KEY"));
		if (r == KH_OK && sn != NULL)
			r = kh_client_opts_set_tls_server_name(p11.opts, sn);
		p11.tls = true;
	} else {
		/* kh_client_opts_new already took KEYHOLD_SOCKET or the default. */
		r = KH_OK;
	}
	if (r != KH_OK) {
		p11_dbg("bad connection settings: %s", kh_err_name(r));
		kh_client_opts_free(p11.opts);
		p11.opts = NULL;
		return r == KH_E_RESOURCE_EXHAUSTED ? CKR_HOST_MEMORY : CKR_ARGUMENTS_BAD;
	}
	p11.n_idle = 0;
	return CKR_OK;
}

static void pool_drop_locked(void)
{
	size_t i;

	for (i = 0; i < p11.n_idle; i++)
		kh_client_free(p11.idle[i]);
	p11.n_idle = 0;
	p11.pool_gen++;
}

void p11_conn_fini(void)
{
	pthread_mutex_lock(&p11.pool_lock);
	pool_drop_locked();
	kh_client_opts_free(p11.opts);
	p11.opts = NULL;
	pthread_mutex_unlock(&p11.pool_lock);
}

void p11_conn_forked(void)
{
	pthread_mutex_lock(&p11.pool_lock);
	/* A Unix socket closed in the child stays open in the parent. A TLS
	 * client would send close_notify on the parent's connection when
	 * freed: the child forgets those instead (a one-time leak). */
	if (p11.tls) {
		p11.n_idle = 0;
	} else {
		size_t i;

		/* A list may mix both kinds. */
		for (i = 0; i < p11.n_idle; i++)
			if (strncmp(kh_client_endpoint(p11.idle[i]), "tls:", 4) != 0)
				kh_client_free(p11.idle[i]);
		p11.n_idle = 0;
		p11.pool_gen++;
	}
	pthread_mutex_unlock(&p11.pool_lock);
}

/* The client this thread used last. A thread takes it again when it is
 * idle, so that each thread keeps its connection, and with it the
 * keyholdd thread serving that connection: taken in turn from the top of
 * the pool, two threads swapped connections at nearly every call, and
 * each call then woke a keyholdd thread last run beside the other caller
 * (docs/PERFORMANCE.md). Only compared with the idle ones, never used
 * through: it may have been freed since. */
static __thread kh_client *p11_last;

/* An idle client or a new connected one; *gen: the pool generation it
 * belongs to. NULL when keyholdd cannot be reached. */
static kh_client *pool_get(uint64_t *gen)
{
	kh_client *c = NULL;
	size_t i;

	pthread_mutex_lock(&p11.pool_lock);
	*gen = p11.pool_gen;
	if (p11.n_idle > 0) {
		i = p11.n_idle - 1;
		while (i > 0 && p11.idle[i] != p11_last)
			i--;
		if (p11.idle[i] != p11_last)
			i = p11.n_idle - 1;
		c = p11.idle[i];
		p11.idle[i] = p11.idle[--p11.n_idle];
	}
	pthread_mutex_unlock(&p11.pool_lock);
	if (c == NULL) {
		if (p11.opts == NULL || kh_client_new(p11.opts, &c) != KH_OK)
			return NULL;
		if (kh_client_connect(c) != KH_OK) {
			p11_dbg("connecting to keyholdd: %s", kh_client_error_message(c));
			kh_client_free(c);
			return NULL;
		}
	}
	p11_last = c;
	return c;
}

static void pool_put(kh_client *c, uint64_t gen)
{
	pthread_mutex_lock(&p11.pool_lock);
	if (gen == p11.pool_gen && p11.n_idle < P11_POOL_MAX) {
		p11.idle[p11.n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&p11.pool_lock);
	kh_client_free(c);
}

/* A transport failure: this client and every idle one (keyholdd restarted:
 * they are all dead) are dropped. */
static void pool_broken(kh_client *c)
{
	kh_client_free(c);
	pthread_mutex_lock(&p11.pool_lock);
	pool_drop_locked();
	pthread_mutex_unlock(&p11.pool_lock);
}

enum kh_err p11_rpc(const kh_msg *req, kh_msg **resp)
{
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		uint64_t gen;
		kh_client *c = pool_get(&gen);
		enum kh_err r;

		if (c == NULL)
			return KH_E_UNAVAILABLE;
		r = kh_call(c, req, resp);
		if (r == KH_E_UNAVAILABLE) {
			p11_dbg("%s: %s", kh_msg_method(req), kh_client_error_message(c));
			pool_broken(c);
			continue;
		}
		if (r != KH_OK)
			p11_dbg("%s: %s %s", kh_msg_method(req), kh_err_name(r), kh_client_error_message(c));
		pool_put(c, gen);
		return r;
	}
	return KH_E_UNAVAILABLE;
}

enum kh_err p11_rpc_sign(const char *key, const char *digest, const char *padding, bool prehashed,
			 const uint8_t *data, size_t len, uint8_t *sig, size_t cap, size_t *sig_len)
{
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		uint64_t gen;
		kh_client *c = pool_get(&gen);
		uint8_t *s = NULL;
		size_t n = 0;
		enum kh_err r;

		if (c == NULL)
			return KH_E_UNAVAILABLE;
		/* kh_sign, not kh_sign_send/recv: a request alone in flight is
		 * what libkeyhold sends again on the next node when one fails. */
		r = kh_sign(c, key, digest, padding, prehashed, data, len, &s, &n);
		if (r == KH_E_UNAVAILABLE) {
			p11_dbg("Sign %s: %s", key, kh_client_error_message(c));
			pool_broken(c);
			continue;
		}
		if (r == KH_OK && n > cap)
			r = KH_E_OUT_OF_RANGE;
		if (r == KH_OK) {
			memcpy(sig, s, n);
			*sig_len = n;
		} else {
			p11_dbg("Sign %s: %s %s", key, kh_err_name(r), kh_client_error_message(c));
		}
		kh_free(s);
		pool_put(c, gen);
		return r;
	}
	return KH_E_UNAVAILABLE;
}

/* PKCS#11 v2.40 has no code for "denied by policy" at sign time;
 * CKR_KEY_FUNCTION_NOT_PERMITTED ("an attempt has been made to use a key
 * for a cryptographic purpose that the key's attributes are not set to
 * allow it to do") is the nearest, and what applications report as such. */
CK_RV p11_rv(enum kh_err e, bool sign)
{
	switch (e) {
	case KH_OK:
		return CKR_OK;
	case KH_E_UNAVAILABLE:
		return sign ? CKR_DEVICE_REMOVED : CKR_TOKEN_NOT_PRESENT;
	case KH_E_PERMISSION_DENIED:
	case KH_E_UNAUTHENTICATED:
		return sign ? CKR_KEY_FUNCTION_NOT_PERMITTED : CKR_DEVICE_ERROR;
	case KH_E_NOT_FOUND:
		return sign ? CKR_KEY_HANDLE_INVALID : CKR_DEVICE_ERROR;
	case KH_E_INVALID_ARGUMENT:
	case KH_E_OUT_OF_RANGE:
		/* Bad input, or the FIPS policy refusing a digest (SHA-1,
		 * MD5) for this key. */
		return CKR_DATA_INVALID;
	case KH_E_FAILED_PRECONDITION:
		/* keyholdd not OPERATIONAL (self-tests failed, token lost). */
		return CKR_DEVICE_ERROR;
	case KH_E_RESOURCE_EXHAUSTED:
		/* A rate limit or keyholdd's own memory. */
		return CKR_DEVICE_MEMORY;
	case KH_E_DEADLINE_EXCEEDED:
	case KH_E_CANCELLED:
	case KH_E_ABORTED:
		return CKR_FUNCTION_CANCELED;
	default:
		return CKR_DEVICE_ERROR;
	}
}
