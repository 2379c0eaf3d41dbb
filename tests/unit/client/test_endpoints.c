/* test_endpoints.c: libkeyhold's endpoint lists (client/endpoints.c): the
 * KEYHOLD_ENDPOINTS parser, the retry rule over the proto's idempotency
 * marks, spreading, and the failover of client.c against scripted nodes on
 * Unix sockets (one that dies after reading a request, one that answers
 * UNAVAILABLE, one that answers); and the client's spin before it sleeps
 * for an answer (kh_client_opts_set_spin, KEYHOLD_SPIN_US) against a node
 * that answers late. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "kh_client_int.h"

/* ---- the parser ---- */

static void test_parse_good(void **state)
{
	struct kh_endpoints eps = { 0 };
	struct kh_errbuf e = { 0 };

	(void)state;
	assert_int_equal(kh_endpoints_parse("unix:/run/a.sock", &eps, &e), KH_OK);
	assert_int_equal(eps.n, 1);
	assert_int_equal(eps.ep[0].kind, KH_EP_UNIX);
	assert_string_equal(eps.ep[0].addr, "/run/a.sock");
	/* Blanks around entries are ignored; the list replaces *out. */
	assert_int_equal(kh_endpoints_parse(" unix:/run/a.sock , tls:kh1.example:7443,tls:[::1]:7443,\ttls:10.0.0.2:1 ",
					    &eps, &e),
			 KH_OK);
	assert_int_equal(eps.n, 4);
	assert_string_equal(eps.ep[0].addr, "/run/a.sock");
	assert_int_equal(eps.ep[1].kind, KH_EP_TLS);
	assert_string_equal(eps.ep[1].addr, "kh1.example:7443");
	assert_string_equal(eps.ep[2].addr, "[::1]:7443");
	assert_string_equal(eps.ep[3].addr, "10.0.0.2:1");
	kh_endpoints_clear(&eps);
	assert_int_equal(eps.n, 0);
}

static void test_parse_bad(void **state)
{
	static const struct {
		const char *list, *why;
	} bad[] = {
		{ "", "entry 1 is empty" },
		{ "unix:/a,", "entry 2 is empty" },
		{ "unix:/a,,unix:/b", "entry 2 is empty" },
		{ "/run/a.sock", "entry 1 '/run/a.sock': expected unix:PATH or tls:HOST:PORT" },
		{ "unix:", "expected unix:PATH or tls:HOST:PORT" },
		{ "unix:/a,tcp:h:1", "entry 2 'tcp:h:1': expected unix:PATH" },
		{ "tls:host", "expected tls:HOST:PORT" },
		{ "tls:host:", "expected tls:HOST:PORT" },
		{ "tls::7443", "expected tls:HOST:PORT" },
		{ "tls:host:0", "port 1-65535" },
		{ "tls:host:65536", "port 1-65535" },
		{ "tls:host:123456", "port 1-65535" },
		{ "tls:host:7a", "port 1-65535" },
		{ "tls:::1:7443", "an IPv6 address in brackets" },
		{ "tls:[::1:7443", "expected tls:HOST:PORT" },
		{ "UNIX:/a", "expected unix:PATH" },
	};
	struct kh_endpoints eps = { 0 };
	struct kh_errbuf e = { 0 };
	char list[4200];
	size_t i, off = 0;

	(void)state;
	assert_int_equal(kh_endpoints_parse("unix:/keep", &eps, &e), KH_OK);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kh_err_clear(&e);
		assert_int_equal(kh_endpoints_parse(bad[i].list, &eps, &e), KH_E_INVALID_ARGUMENT);
		if (strstr(e.msg, bad[i].why) == NULL || strncmp(e.msg, "KEYHOLD_ENDPOINTS: ", 19) != 0)
			fail_msg("'%s': message '%s' lacks '%s'", bad[i].list, e.msg, bad[i].why);
		/* A refused list leaves the one before. */
		assert_int_equal(eps.n, 1);
		assert_string_equal(eps.ep[0].addr, "/keep");
	}
	/* 16 entries fit, 17 do not. */
	for (i = 0; i < KH_ENDPOINTS_MAX + 1; i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%sunix:/s%zu", i ? "," : "", i);
	kh_err_clear(&e);
	assert_int_equal(kh_endpoints_parse(list, &eps, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "more than 16 entries"));
	*strrchr(list, ',') = '\0';
	assert_int_equal(kh_endpoints_parse(list, &eps, &e), KH_OK);
	assert_int_equal(eps.n, KH_ENDPOINTS_MAX);
	/* A socket path longer than sun_path. */
	memcpy(list, "unix:/", 6);
	memset(list + 6, 'p', 200);
	list[206] = '\0';
	kh_err_clear(&e);
	assert_int_equal(kh_endpoints_parse(list, &eps, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "socket path is longer than"));
	/* The whole value is capped. */
	memset(list, 'x', sizeof(list) - 1);
	list[sizeof(list) - 1] = '\0';
	kh_err_clear(&e);
	assert_int_equal(kh_endpoints_parse(list, &eps, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "longer than 4096 bytes"));
	kh_endpoints_clear(&eps);
}

/* Every prefix and every one-byte change of a good list parses or is
 * refused with a reason; never more entries than commas allow. */
static void test_parse_truncate_flip(void **state)
{
	static const char good[] = "unix:/run/a.sock,tls:[::1]:7443,tls:h.example:7443";
	char buf[sizeof(good)];
	size_t i;
	unsigned b;

	(void)state;
	for (i = 0; i <= strlen(good); i++) {
		struct kh_endpoints eps = { 0 };
		struct kh_errbuf e = { 0 };
		int r;

		memcpy(buf, good, i);
		buf[i] = '\0';
		r = kh_endpoints_parse(buf, &eps, &e);
		assert_true(r == KH_OK || (r == KH_E_INVALID_ARGUMENT && e.msg[0] != '\0'));
		assert_true(eps.n <= 3);
		kh_endpoints_clear(&eps);
	}
	for (i = 0; i < strlen(good); i++) {
		for (b = 0; b < 8; b++) {
			struct kh_endpoints eps = { 0 };
			struct kh_errbuf e = { 0 };
			int r;

			memcpy(buf, good, sizeof(good));
			buf[i] = (char)(buf[i] ^ (1u << b));
			if (buf[i] == '\0')
				continue;
			r = kh_endpoints_parse(buf, &eps, &e);
			assert_true(r == KH_OK || (r == KH_E_INVALID_ARGUMENT && e.msg[0] != '\0'));
			kh_endpoints_clear(&eps);
		}
	}
}

/* ---- the retry rule ---- */

static void test_retry_rule(void **state)
{
	static const char *const safe[] = { "Sign", "GetPublicKey", "ListKeys", "GetStatus", "GetTrustpoint",
					    "ExportTrustpoint", "TruststoreExport", "AuditVerify" };
	static const char *const unsafe[] = { "GenerateKey", "DeleteKey", "CreateTrustpoint", "EnrollTrustpoint",
					      "GrantKey", "RevokeKeyGrant", "TruststoreAdd", "RunMonitor",
					      "RunSelfTest", "CreateCsr", "AcmeAccount" };
	const ProtobufCServiceDescriptor *sd = &keyhold__v1__key_hold__descriptor;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(safe) / sizeof(safe[0]); i++) {
		assert_true(kh_method_retry_safe(safe[i]));
		assert_true(kh_retry_allowed(safe[i], KH_FAIL_SENT, KH_E_UNAVAILABLE));
		assert_true(kh_retry_allowed(safe[i], KH_FAIL_ANSWERED, KH_E_UNAVAILABLE));
	}
	for (i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
		assert_false(kh_method_retry_safe(unsafe[i]));
		assert_false(kh_retry_allowed(unsafe[i], KH_FAIL_SENT, KH_E_UNAVAILABLE));
		assert_false(kh_retry_allowed(unsafe[i], KH_FAIL_ANSWERED, KH_E_UNAVAILABLE));
		/* Nothing reached a node: any method goes to the next. */
		assert_true(kh_retry_allowed(unsafe[i], KH_FAIL_UNSENT, KH_E_UNAVAILABLE));
	}
	/* Every method of the schema: only UNAVAILABLE is ever retried. */
	for (i = 0; i < sd->n_methods; i++) {
		const char *m = sd->methods[i].name;
		int code;

		for (code = 1; code <= 16; code++) {
			if (-code == KH_E_UNAVAILABLE)
				continue;
			assert_false(kh_retry_allowed(m, KH_FAIL_UNSENT, (enum kh_err)-code));
			assert_false(kh_retry_allowed(m, KH_FAIL_SENT, (enum kh_err)-code));
			assert_false(kh_retry_allowed(m, KH_FAIL_ANSWERED, (enum kh_err)-code));
		}
	}
	assert_false(kh_method_retry_safe(NULL));
	assert_false(kh_method_retry_safe("NoSuchMethod"));
}

static void test_spread(void **state)
{
	size_t i, a, b;
	bool moved = false;

	(void)state;
	assert_int_equal(kh_endpoints_start(1, false), 0);
	assert_int_equal(kh_endpoints_start(3, true), 0);
	a = kh_endpoints_start(3, false);
	for (i = 0; i < 4; i++) {
		b = kh_endpoints_start(3, false);
		assert_true(b < 3);
		/* Consecutive connections of a process start at consecutive nodes. */
		assert_int_equal(b, (a + 1) % 3);
		moved = moved || b != a;
		a = b;
	}
	assert_true(moved);
}

/* ---- failover against scripted nodes ---- */

enum node_mode { NODE_DIE, NODE_UNAVAILABLE, NODE_ANSWER, NODE_LATE };

struct node {
	char path[108];
	int lfd;
	enum node_mode mode;
	unsigned requests;      /* whole requests read */
	char method[64];        /* the last one's */
	pthread_t tid;
};

static char node_dir[64];

static void node_open(struct node *n, const char *name, enum node_mode mode)
{
	struct sockaddr_un sun;

	memset(n, 0, sizeof(*n));
	n->mode = mode;
	snprintf(n->path, sizeof(n->path), "%s/%s", node_dir, name);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, n->path, strlen(n->path) + 1);
	n->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(n->lfd >= 0);
	assert_int_equal(bind(n->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(n->lfd, 4), 0);
}

static void node_answer(int fd, uint64_t id, int code, const char *msg)
{
	Keyhold__V1__Response r;
	Keyhold__V1__Status st;
	uint8_t buf[512];
	size_t n;

	keyhold__v1__response__init(&r);
	keyhold__v1__status__init(&st);
	r.id = id;
	st.code = code;
	st.message = (char *)(uintptr_t)msg;
	r.status = &st;
	n = keyhold__v1__response__get_packed_size(&r);
	keyhold__v1__response__pack(&r, buf + 4);
	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	if (write(fd, buf, n + 4) != (ssize_t)(n + 4))
		abort();
}

/* Serves connections until none comes for 300 ms: reads one request on
 * each and then dies (closes), answers UNAVAILABLE, or answers OK with an
 * empty body (every response message's proto3 default). NODE_LATE answers
 * every request of the connection OK, each 3 ms after reading it, until
 * the client closes. */
static void *node_run(void *arg)
{
	struct node *n = arg;

	for (;;) {
		struct pollfd p = { n->lfd, POLLIN, 0 };
		uint8_t hdr[4], body[4096];
		Keyhold__V1__Request *q;
		size_t len;
		int fd;

		if (poll(&p, 1, 300) != 1)
			break;
		fd = accept(n->lfd, NULL, NULL);
		if (fd < 0)
			break;
	again:
		if (read(fd, hdr, 4) != 4) {
			close(fd);
			continue;
		}
		len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
		if (len == 0 || len > sizeof(body) || read(fd, body, len) != (ssize_t)len) {
			close(fd);
			continue;
		}
		q = keyhold__v1__request__unpack(NULL, len, body);
		if (q == NULL)
			abort();
		n->requests++;
		snprintf(n->method, sizeof(n->method), "%s", q->method);
		if (n->mode == NODE_UNAVAILABLE)
			node_answer(fd, q->id, 14, "keyholdd is shutting down; retry after it restarts");
		else if (n->mode == NODE_ANSWER)
			node_answer(fd, q->id, 0, "");
		if (n->mode == NODE_LATE) {
			usleep(3000);
			node_answer(fd, q->id, 0, "");
			keyhold__v1__request__free_unpacked(q, NULL);
			goto again;
		}
		keyhold__v1__request__free_unpacked(q, NULL);
		close(fd);
	}
	return NULL;
}

static void nodes_start(struct node *n, size_t k)
{
	size_t i;

	for (i = 0; i < k; i++)
		assert_int_equal(pthread_create(&n[i].tid, NULL, node_run, &n[i]), 0);
}

static void nodes_stop(struct node *n, size_t k)
{
	size_t i;

	for (i = 0; i < k; i++) {
		pthread_join(n[i].tid, NULL);
		close(n[i].lfd);
		unlink(n[i].path);
	}
}

/* A client over "unix:A,unix:B", tried in that order. */
static kh_client *client_over(const struct node *a, const char *a_path, const struct node *b)
{
	kh_client_opts *o = NULL;
	kh_client *c = NULL;
	char list[300];

	snprintf(list, sizeof(list), "unix:%s,unix:%s", a != NULL ? a->path : a_path, b->path);
	assert_int_equal(kh_client_opts_new(&o), KH_OK);
	assert_int_equal(kh_client_opts_set_endpoints(o, list), KH_OK);
	kh_client_opts_set_endpoints_listed(o, true);
	assert_int_equal(kh_client_new(o, &c), KH_OK);
	kh_client_opts_free(o);
	return c;
}

static int failover_setup(void **state)
{
	(void)state;
	snprintf(node_dir, sizeof(node_dir), "/tmp/kh-ep.XXXXXX");
	return mkdtemp(node_dir) != NULL ? 0 : -1;
}

static int failover_teardown(void **state)
{
	(void)state;
	return rmdir(node_dir);
}

/* A node that is not there: every method, a state change too, goes on to
 * the next (nothing was sent). */
static void test_failover_connect(void **state)
{
	struct node b;
	char gone[120];
	kh_client *c;

	(void)state;
	snprintf(gone, sizeof(gone), "%s/gone.sock", node_dir);
	node_open(&b, "b.sock", NODE_ANSWER);
	nodes_start(&b, 1);
	c = client_over(NULL, gone, &b);
	assert_int_equal(kh_client_connect(c), KH_OK);
	assert_int_equal(kh_client_failovers(c), 1);
	assert_non_null(strstr(kh_client_endpoint(c), "b.sock"));
	assert_int_equal(kh_key_generate(c, "k", "P256", NULL, NULL), KH_OK);
	kh_client_free(c);
	nodes_stop(&b, 1);
	assert_int_equal(b.requests, 1);
	assert_string_equal(b.method, "GenerateKey");
}

/* A node dies after reading the request: a read and Sign go to the next
 * node; a state change is reported, never sent again. */
static void test_failover_after_send(void **state)
{
	struct node n[2];
	kh_msg *keys = NULL;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	kh_client *c;
	int r;

	(void)state;
	node_open(&n[0], "a.sock", NODE_DIE);
	node_open(&n[1], "b.sock", NODE_ANSWER);
	nodes_start(n, 2);
	c = client_over(&n[0], NULL, &n[1]);
	assert_int_equal(kh_client_connect(c), KH_OK);
	assert_non_null(strstr(kh_client_endpoint(c), "a.sock"));
	assert_int_equal(kh_key_list(c, &keys), KH_OK);
	kh_msg_free(keys);
	assert_int_equal(kh_client_failovers(c), 1);
	assert_non_null(strstr(kh_client_endpoint(c), "b.sock"));
	kh_client_free(c);

	c = client_over(&n[0], NULL, &n[1]);
	assert_int_equal(kh_client_connect(c), KH_OK);
	assert_int_equal(kh_sign(c, "k", NULL, NULL, false, (const uint8_t *)"m", 1, &sig, &sig_len), KH_OK);
	kh_free(sig);
	kh_client_free(c);

	c = client_over(&n[0], NULL, &n[1]);
	assert_int_equal(kh_client_connect(c), KH_OK);
	r = kh_key_generate(c, "k", "P256", NULL, NULL);
	assert_int_equal(r, KH_E_UNAVAILABLE);
	assert_non_null(strstr(kh_client_error_message(c), "not sent again"));
	assert_int_equal(kh_client_failovers(c), 0);
	kh_client_free(c);
	nodes_stop(n, 2);
	assert_int_equal(n[0].requests, 3);   /* ListKeys, Sign, GenerateKey */
	assert_int_equal(n[1].requests, 2);   /* ListKeys, Sign: GenerateKey never */
	assert_string_equal(n[1].method, "Sign");
}

/* A node answering UNAVAILABLE (shutting down): the same rule. */
static void test_failover_answered(void **state)
{
	struct node n[2];
	uint8_t *spki = NULL;
	size_t len = 0;
	kh_client *c;

	(void)state;
	node_open(&n[0], "a.sock", NODE_UNAVAILABLE);
	node_open(&n[1], "b.sock", NODE_ANSWER);
	nodes_start(n, 2);
	c = client_over(&n[0], NULL, &n[1]);
	assert_int_equal(kh_client_connect(c), KH_OK);
	/* The answer has no key: DATA_LOSS from node b, not UNAVAILABLE from a. */
	assert_int_equal(kh_key_public(c, "k", &spki, &len), KH_E_DATA_LOSS);
	assert_int_equal(kh_client_failovers(c), 1);
	kh_client_free(c);
	c = client_over(&n[0], NULL, &n[1]);
	assert_int_equal(kh_client_connect(c), KH_OK);
	assert_int_equal(kh_key_delete(c, "k"), KH_E_UNAVAILABLE);
	assert_non_null(strstr(kh_client_error_message(c), "shutting down"));
	assert_non_null(strstr(kh_client_error_message(c), "not sent again"));
	kh_client_free(c);
	nodes_stop(n, 2);
	assert_int_equal(n[0].requests, 2);
	assert_int_equal(n[1].requests, 1);   /* GetPublicKey; DeleteKey never */
}

/* Every node down: the last failure, with how many were tried. */
static void test_failover_all_down(void **state)
{
	kh_client_opts *o = NULL;
	kh_client *c = NULL;
	char list[300];

	(void)state;
	snprintf(list, sizeof(list), "unix:%s/x.sock,unix:%s/y.sock", node_dir, node_dir);
	assert_int_equal(kh_client_opts_new(&o), KH_OK);
	assert_int_equal(kh_client_opts_set_endpoints(o, list), KH_OK);
	assert_int_equal(kh_client_new(o, &c), KH_OK);
	kh_client_opts_free(o);
	assert_int_equal(kh_client_connect(c), KH_E_UNAVAILABLE);
	assert_non_null(strstr(kh_client_error_message(c), "(2 of 2 endpoints tried)"));
	kh_client_free(c);
}

/* KEYHOLD_ENDPOINTS: taken by kh_client_opts_new; a bad value fails the
 * connect with its reason; an explicit socket wins over it. */
static void test_env(void **state)
{
	kh_client_opts *o = NULL;
	kh_client *c = NULL;

	(void)state;
	assert_int_equal(setenv("KEYHOLD_ENDPOINTS", "unix:/x.sock,tcp:h:1", 1), 0);
	assert_int_equal(kh_client_opts_new(&o), KH_OK);
	assert_int_equal(kh_client_new(o, &c), KH_OK);
	assert_int_equal(kh_client_connect(c), KH_E_INVALID_ARGUMENT);
	assert_string_equal(kh_client_error_message(c),
			    "KEYHOLD_ENDPOINTS: entry 2 'tcp:h:1': expected unix:PATH or tls:HOST:PORT");
	kh_client_free(c);
	assert_int_equal(kh_client_opts_set_socket(o, "/nonexistent/kh.sock"), KH_OK);
	assert_int_equal(kh_client_new(o, &c), KH_OK);
	assert_int_equal(kh_client_connect(c), KH_E_UNAVAILABLE);
	assert_string_equal(kh_client_endpoint(c), "unix:/nonexistent/kh.sock");
	kh_client_free(c);
	kh_client_opts_free(o);
	assert_int_equal(setenv("KEYHOLD_ENDPOINTS_ORDER", "random", 1), 0);
	assert_int_equal(setenv("KEYHOLD_ENDPOINTS", "unix:/x.sock", 1), 0);
	assert_int_equal(kh_client_opts_new(&o), KH_OK);
	assert_int_equal(kh_client_new(o, &c), KH_OK);
	assert_int_equal(kh_client_connect(c), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(kh_client_error_message(c), "expected spread or listed"));
	kh_client_free(c);
	kh_client_opts_free(o);
	/* The setter reports its reason in the options. */
	assert_int_equal(kh_client_opts_new(&o), KH_OK);
	assert_int_equal(kh_client_opts_set_endpoints(o, "tls:h"), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(kh_client_opts_error_message(o), "expected tls:HOST:PORT"));
	kh_client_opts_free(o);
	unsetenv("KEYHOLD_ENDPOINTS");
	unsetenv("KEYHOLD_ENDPOINTS_ORDER");
}

/* ---- the spin before a wait ---- */

/* The back-off: a spin without the answer makes the next 4 waits sleep at
 * once, then 8, ... up to 1024; an answer within a spin halves it. */
static void test_spin_backoff(void **state)
{
	struct kh_spin s = { 0, 0 };
	unsigned i, want = KH_SPIN_SKIP_FIRST;

	(void)state;
	assert_true(kh_spin_next(&s));
	kh_spin_result(&s, true);
	assert_int_equal(s.backoff, 0);
	assert_true(kh_spin_next(&s));
	for (i = 0; i < 12; i++) {
		unsigned k;

		kh_spin_result(&s, false);
		assert_int_equal(s.skip, want);
		for (k = 0; k < want; k++)
			assert_false(kh_spin_next(&s));
		assert_true(kh_spin_next(&s));
		want = want * 2 > KH_SPIN_SKIP_MAX ? KH_SPIN_SKIP_MAX : want * 2;
	}
	assert_int_equal(s.backoff, KH_SPIN_SKIP_MAX);
	kh_spin_result(&s, true);
	assert_int_equal(s.backoff, KH_SPIN_SKIP_MAX / 2);
	assert_true(kh_spin_next(&s));
	kh_spin_result(&s, false);
	assert_int_equal(s.skip, KH_SPIN_SKIP_MAX);
}

static kh_client *client_spin(const struct node *n, uint32_t us)
{
	kh_client_opts *o = NULL;
	kh_client *c = NULL;

	assert_int_equal(kh_client_opts_new(&o), KH_OK);
	assert_int_equal(kh_client_opts_set_socket(o, n->path), KH_OK);
	kh_client_opts_set_spin(o, us);
	assert_int_equal(kh_client_new(o, &c), KH_OK);
	kh_client_opts_free(o);
	assert_int_equal(kh_client_connect(c), KH_OK);
	return c;
}

/* Against a node that answers 3 ms late, a 200 us spin never sees the
 * answer: the first wait spins and backs off, the next four sleep at
 * once, the sixth spins again and backs off twice as long; every answer
 * is still taken. With the spin off nothing is counted. */
static void test_spin_late_node(void **state)
{
	struct node n;
	kh_msg *keys = NULL;
	kh_client *c;
	unsigned i;

	(void)state;
	node_open(&n, "late.sock", NODE_LATE);
	nodes_start(&n, 1);
	c = client_spin(&n, 200);
	assert_int_equal(kh_key_list(c, &keys), KH_OK);
	kh_msg_free(keys);
	assert_int_equal(c->spin.backoff, KH_SPIN_SKIP_FIRST);
	assert_int_equal(c->spin.skip, KH_SPIN_SKIP_FIRST);
	for (i = 0; i < KH_SPIN_SKIP_FIRST; i++) {
		assert_int_equal(kh_key_list(c, &keys), KH_OK);
		kh_msg_free(keys);
		assert_int_equal(c->spin.skip, KH_SPIN_SKIP_FIRST - 1 - i);
	}
	assert_int_equal(kh_key_list(c, &keys), KH_OK);
	kh_msg_free(keys);
	assert_int_equal(c->spin.skip, 2 * KH_SPIN_SKIP_FIRST);
	kh_client_free(c);

	c = client_spin(&n, 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(kh_key_list(c, &keys), KH_OK);
		kh_msg_free(keys);
	}
	assert_int_equal(c->spin.backoff, 0);
	assert_int_equal(c->spin.skip, 0);
	kh_client_free(c);
	nodes_stop(&n, 1);
	assert_int_equal(n.requests, 2 + KH_SPIN_SKIP_FIRST + 3);
}

/* KEYHOLD_SPIN_US: the default without it, its value when good; a bad
 * one fails the connect with its reason unless the program sets the spin
 * itself. */
static void test_spin_env(void **state)
{
	static const char *const bad[] = { "x", "-1", "1001", "12us", " 5" };
	kh_client_opts *o = NULL;
	kh_client *c = NULL;
	size_t i;

	(void)state;
	unsetenv("KEYHOLD_SPIN_US");
	assert_int_equal(kh_client_opts_new(&o), KH_OK);
	assert_int_equal(o->spin_us, KH_SPIN_US_DEFAULT);
	kh_client_opts_set_spin(o, 5000);
	assert_int_equal(o->spin_us, KH_SPIN_US_MAX);
	kh_client_opts_free(o);
	assert_int_equal(setenv("KEYHOLD_SPIN_US", "0", 1), 0);
	assert_int_equal(kh_client_opts_new(&o), KH_OK);
	assert_int_equal(o->spin_us, 0);
	assert_string_equal(kh_client_opts_error_message(o), "");
	kh_client_opts_free(o);
	assert_int_equal(setenv("KEYHOLD_SPIN_US", "1000", 1), 0);
	assert_int_equal(kh_client_opts_new(&o), KH_OK);
	assert_int_equal(o->spin_us, 1000);
	kh_client_opts_free(o);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(setenv("KEYHOLD_SPIN_US", bad[i], 1), 0);
		assert_int_equal(kh_client_opts_new(&o), KH_OK);
		assert_int_equal(kh_client_opts_set_socket(o, "/nonexistent/kh.sock"), KH_OK);
		assert_int_equal(kh_client_new(o, &c), KH_OK);
		assert_int_equal(kh_client_connect(c), KH_E_INVALID_ARGUMENT);
		assert_non_null(strstr(kh_client_error_message(c), "KEYHOLD_SPIN_US is '"));
		assert_non_null(strstr(kh_client_error_message(c), "expected microseconds from 0 to 1000"));
		assert_non_null(strstr(kh_client_opts_error_message(o), "expected microseconds from 0 to 1000"));
		kh_client_free(c);
		kh_client_opts_set_spin(o, 50);
		assert_int_equal(kh_client_new(o, &c), KH_OK);
		assert_int_equal(kh_client_connect(c), KH_E_UNAVAILABLE);
		kh_client_free(c);
		kh_client_opts_free(o);
	}
	unsetenv("KEYHOLD_SPIN_US");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_truncate_flip),
		cmocka_unit_test(test_retry_rule),
		cmocka_unit_test(test_spread),
		cmocka_unit_test(test_failover_connect),
		cmocka_unit_test(test_failover_after_send),
		cmocka_unit_test(test_failover_answered),
		cmocka_unit_test(test_failover_all_down),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_spin_backoff),
		cmocka_unit_test(test_spin_late_node),
		cmocka_unit_test(test_spin_env),
	};

	return cmocka_run_group_tests(tests, failover_setup, failover_teardown);
}
