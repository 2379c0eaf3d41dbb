/* keyhold-bench: sign throughput and latency through keyhold, against two
 * peers measured in the same run on the same token: direct in-process
 * PKCS#11 C_Sign, and p11-kit server (p11-kit-client.so); and keyhold's own
 * PKCS#11 module (libkeyhold-pkcs11.so) run by the same direct-PKCS#11
 * code. Every signature
 * made during a run is verified with OpenSSL at the end (not timed).
 *
 *   keyhold-bench run --socket S --module M --token LABEL --pin-file F
 *                 [--p11kit-module M2] [--keyhold-module M3]
 *                 [--types rsa2048,p256,ed25519]
 *                 [--conc 1,2,8,64] [--seconds N] [--json] [--keyhold-only]
 *                 [--pid KEYHOLDD_PID]   (adds keyholdd CPU per signature)
 *                 [--bare]   (adds the bare one-round-trip server, below)
 *   keyhold-bench bare-server --socket S --pin-file F --key NAME --type T
 *                 [--module M] [--token LABEL]   (started by run --bare)
 *   keyhold-bench scale --socket S --key NAME --conns N [--rounds R]
 *                 [--pid PID]
 *   keyhold-bench latency --socket S [--seconds N]  (GetStatus p50/p99/p99.9/max, one client)
 *   keyhold-bench startup -- keyholdd ARGS...   (time to first answer)
 *   keyhold-bench cluster --endpoints LIST --key NAME --type T
 *                 [--conc N] [--seconds S] [--json]
 *                 (N synchronous clients spread over the nodes of LIST by
 *                 libkeyhold, as KEYHOLD_ENDPOINTS does; scripts/bench.sh
 *                 --cluster)
 *
 * Raw PKCS#11 here is the peer being measured, so this file includes
 * pkcs11.h; the service's own token code stays in hsm/. */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "keyhold/keyhold.h"
#include "kh_err.h"
#include "kh_spin.h"
#include "kh_types.h"

extern char **environ;

#define BENCH_MSG_LEN 64

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) KH_PRINTF(1, 2);
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "keyhold-bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* ---- samples: every signature and its latency, per thread ---- */

struct sample {
	uint32_t thread, seq;     /* the message is derived from these */
	uint32_t lat_us;
	uint16_t sig_len;
	uint8_t sig[520];
};

struct samples {
	struct sample *v;
	size_t n, cap;
	uint64_t errors;
};

static struct sample *samples_add(struct samples *s)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		struct sample *nv = realloc(s->v, cap * sizeof(*nv));

		if (nv == NULL)
			die("out of memory");
		s->v = nv;
		s->cap = cap;
	}
	return &s->v[s->n++];
}

static void bench_msg(uint32_t thread, uint32_t seq, uint8_t out[BENCH_MSG_LEN])
{
	memset(out, 0, BENCH_MSG_LEN);
	snprintf((char *)out, BENCH_MSG_LEN, "keyhold-bench message %u/%u", thread, seq);
}

/* ---- verification ---- */

static bool verify_one(EVP_PKEY *pk, enum kh_key_type t, const struct sample *s, bool raw_ecdsa)
{
	uint8_t msg[BENCH_MSG_LEN];
	const uint8_t *sig = s->sig;
	size_t sig_len = s->sig_len;
	uint8_t der[160];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = false;

	bench_msg(s->thread, s->seq, msg);
	if (raw_ecdsa && t != KH_KEY_ED25519 && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
		/* PKCS#11 returns r||s; OpenSSL wants DER. */
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r = BN_bin2bn(sig, (int)(sig_len / 2), NULL);
		BIGNUM *ss = BN_bin2bn(sig + sig_len / 2, (int)(sig_len / 2), NULL);
		unsigned char *p = der;
		int n;

		ECDSA_SIG_set0(es, r, ss);
		n = i2d_ECDSA_SIG(es, NULL);
		if (n > 0 && (size_t)n <= sizeof(der))
			n = i2d_ECDSA_SIG(es, &p);
		ECDSA_SIG_free(es);
		if (n <= 0 || (size_t)n > sizeof(der))
			goto out;
		sig = der;
		sig_len = (size_t)n;
	}
	if (EVP_DigestVerifyInit(ctx, NULL, t == KH_KEY_ED25519 ? NULL : EVP_sha256(), NULL, pk) != 1)
		goto out;
	ok = EVP_DigestVerify(ctx, sig, sig_len, msg, sizeof(msg)) == 1;
out:
	EVP_MD_CTX_free(ctx);
	return ok;
}

static uint64_t verify_all(EVP_PKEY *pk, enum kh_key_type t, struct samples *s, unsigned n, bool raw_ecdsa)
{
	uint64_t bad = 0;
	unsigned i;
	size_t k;

	for (i = 0; i < n; i++)
		for (k = 0; k < s[i].n; k++)
			bad += !verify_one(pk, t, &s[i].v[k], raw_ecdsa);
	return bad;
}

/* ---- results ---- */

struct result {
	double ops;            /* signatures per second */
	double p50_us, p99_us, p999_us, max_us;
	uint64_t count, errors, bad;
	double cpu_us;         /* CPU per signature: keyholdd's (keyhold cells), this process's (direct); 0: not measured */
};

/* keyholdd's CPU (user + system, all threads) from /proc/PID/stat, in
 * microseconds; 0 when pid is 0 or unreadable. */
static long kh_pid;

static uint64_t proc_cpu_us(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v[2] = { 0, 0 };
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;
	int field;

	if (pid <= 0 || hz <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command's closing parenthesis: 3 state ... 14 utime 15 stime. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	for (field = 2; field < 15 && p != NULL; field++) {
		p = strchr(p + 1, ' ');
		if (p != NULL && field >= 13)
			v[field - 13] = strtoull(p + 1, NULL, 10);
	}
	if (p == NULL)
		return 0;
	return (v[0] + v[1]) * 1000000ull / (unsigned long long)hz;
}

/* This process's CPU in microseconds (the direct peer signs in it). */
static uint64_t self_cpu_us(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static struct result summarise(struct samples *s, unsigned n, uint64_t elapsed_ns)
{
	struct result r;
	uint32_t *lat;
	size_t total = 0, k, i = 0;
	unsigned t;

	memset(&r, 0, sizeof(r));
	for (t = 0; t < n; t++) {
		total += s[t].n;
		r.errors += s[t].errors;
	}
	r.count = total;
	r.ops = elapsed_ns ? (double)total * 1e9 / (double)elapsed_ns : 0;
	if (total == 0)
		return r;
	lat = malloc(total * sizeof(*lat));
	if (lat == NULL)
		die("out of memory");
	for (t = 0; t < n; t++)
		for (k = 0; k < s[t].n; k++)
			lat[i++] = s[t].v[k].lat_us;
	qsort(lat, total, sizeof(*lat), cmp_u32);
	r.p50_us = lat[total / 2];
	r.p99_us = lat[(total * 99) / 100 < total ? (total * 99) / 100 : total - 1];
	r.p999_us = lat[(total * 999) / 1000 < total ? (total * 999) / 1000 : total - 1];
	r.max_us = lat[total - 1];
	free(lat);
	return r;
}

/* Runs n threads of fn, thread i on the i-th element (size bytes) of th,
 * whose samples are at s_off in it, until they end; r is their summary
 * over the time since t0. Returns the samples (for samples_done, after the
 * caller has read the CPU the cell took). */
static struct samples *run_threads(void *th, size_t size, size_t s_off, unsigned n, void *(*fn)(void *),
				   uint64_t t0, struct result *r)
{
	pthread_t *tid = calloc(n, sizeof(*tid));
	struct samples *ss = calloc(n, sizeof(*ss));
	unsigned i;

	if (tid == NULL || ss == NULL)
		die("out of memory");
	for (i = 0; i < n; i++)
		pthread_create(&tid[i], NULL, fn, (char *)th + (size_t)i * size);
	for (i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		memcpy(&ss[i], (char *)th + (size_t)i * size + s_off, sizeof(ss[i]));
	}
	free(tid);
	*r = summarise(ss, n, now_ns() - t0);
	return ss;
}

/* Verifies every signature of run_threads' samples (not timed) into
 * r->bad, and frees them. */
static void samples_done(struct result *r, EVP_PKEY *pk, enum kh_key_type type, struct samples *ss, unsigned n,
			 bool raw_ecdsa)
{
	unsigned i;

	r->bad = verify_all(pk, type, ss, n, raw_ecdsa);
	for (i = 0; i < n; i++)
		free(ss[i].v);
	free(ss);
}

/* ---- direct PKCS#11 peer (and p11-kit-client.so, the same code) ---- */

struct p11 {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE login_session;
};

static void p11_open(struct p11 *p, const char *module, const char *label, const char *pin)
{
	CK_C_GetFunctionList gfl;
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_RV rv;

	memset(p, 0, sizeof(*p));
	p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (p->dl == NULL)
		die("dlopen %s: %s", module, dlerror());
	*(void **)&gfl = dlsym(p->dl, "C_GetFunctionList");
	if (gfl == NULL || gfl(&p->f) != CKR_OK)
		die("%s: no C_GetFunctionList", module);
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = p->f->C_Initialize(&args);
	if (rv != CKR_OK)
		die("%s: C_Initialize 0x%lx", module, rv);
	rv = p->f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK)
		die("%s: C_GetSlotList 0x%lx", module, rv);
	for (i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		char l[33];
		size_t k = 32;

		if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		memcpy(l, ti.label, 32);
		while (k > 0 && l[k - 1] == ' ')
			k--;
		l[k] = '\0';
		if (strcmp(l, label) == 0)
			break;
	}
	if (i == n)
		die("%s: no token labelled %s", module, label);
	p->slot = slots[i];
	rv = p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->login_session);
	if (rv != CKR_OK)
		die("%s: C_OpenSession 0x%lx", module, rv);
	rv = p->f->C_Login(p->login_session, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)pin, strlen(pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		die("%s: C_Login 0x%lx", module, rv);
}

static void p11_close(struct p11 *p)
{
	p->f->C_CloseAllSessions(p->slot);
	p->f->C_Finalize(NULL);
}

static CK_OBJECT_HANDLE p11_find_key(struct p11 *p, CK_SESSION_HANDLE s, const char *name)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_LABEL, (void *)(uintptr_t)name, strlen(name) } };
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (p->f->C_FindObjectsInit(s, t, 2) != CKR_OK)
		die("C_FindObjectsInit");
	p->f->C_FindObjects(s, &h, 1, &n);
	p->f->C_FindObjectsFinal(s);
	if (n != 1)
		die("no key %s on the token", name);
	return h;
}

/* A session of the thread's own and the key name's handle in it, one
 * thread at a time: tpm2-pkcs11 1.9 loses objects when sessions are
 * opened and searched concurrently while others sign (keyholdd opens its
 * sessions one at a time for the same reason). */
static CK_OBJECT_HANDLE p11_session_key(struct p11 *p, const char *name, CK_SESSION_HANDLE *s)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	CK_OBJECT_HANDLE key;

	pthread_mutex_lock(&lock);
	if (p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION, NULL, NULL, s) != CKR_OK)
		die("C_OpenSession");
	key = p11_find_key(p, *s, name);
	pthread_mutex_unlock(&lock);
	return key;
}

/* RFC 8017 §9.2 note 1: DigestInfo for SHA-256. */
static const uint8_t di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
				     0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };

struct p11_thread {
	struct p11 *p;
	const char *key;
	enum kh_key_type type;
	unsigned id;
	uint64_t stop_ns;
	struct samples s;
};

static CK_MECHANISM_TYPE p11_mech_of(enum kh_key_type t)
{
	if (t == KH_KEY_ED25519)
		return CKM_EDDSA;
	if (t == KH_KEY_RSA2048 || t == KH_KEY_RSA3072 || t == KH_KEY_RSA4096)
		return CKM_RSA_PKCS;
	return CKM_ECDSA;
}

/* Does what keyholdd does per request: hash in software, one C_SignInit
 * and C_Sign on the digest (Ed25519: on the message). */
static CK_RV p11_sign_msg(struct p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE m,
			  const uint8_t msg[BENCH_MSG_LEN], uint8_t *sig, CK_ULONG *slen)
{
	CK_MECHANISM mech = { m, NULL, 0 };
	uint8_t in[sizeof(di_sha256) + 32];
	const uint8_t *data = in;
	unsigned int md_len = 0;
	CK_ULONG dlen;
	CK_RV rv;

	if (m == CKM_EDDSA) {
		data = msg;
		dlen = BENCH_MSG_LEN;
	} else if (m == CKM_RSA_PKCS) {
		memcpy(in, di_sha256, sizeof(di_sha256));
		EVP_Digest(msg, BENCH_MSG_LEN, in + sizeof(di_sha256), &md_len, EVP_sha256(), NULL);
		dlen = sizeof(di_sha256) + 32;
	} else {
		EVP_Digest(msg, BENCH_MSG_LEN, in, &md_len, EVP_sha256(), NULL);
		dlen = 32;
	}
	rv = p->f->C_SignInit(s, &mech, key);
	if (rv == CKR_OK)
		rv = p->f->C_Sign(s, (CK_BYTE_PTR)(uintptr_t)data, dlen, sig, slen);
	return rv;
}

static void *p11_thread_main(void *arg)
{
	struct p11_thread *t = arg;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_MECHANISM_TYPE mech = p11_mech_of(t->type);
	uint32_t seq = 0;

	key = p11_session_key(t->p, t->key, &s);
	while (now_ns() < t->stop_ns) {
		uint8_t msg[BENCH_MSG_LEN];
		CK_ULONG slen;
		uint64_t t0 = now_ns();
		struct sample *sm;
		CK_RV rv;

		bench_msg(t->id, seq, msg);
		sm = samples_add(&t->s);
		slen = sizeof(sm->sig);
		rv = p11_sign_msg(t->p, s, key, mech, msg, sm->sig, &slen);
		if (rv != CKR_OK) {
			t->s.n--;
			t->s.errors++;
			continue;
		}
		sm->thread = t->id;
		sm->seq = seq++;
		sm->sig_len = (uint16_t)slen;
		sm->lat_us = (uint32_t)((now_ns() - t0) / 1000u);
	}
	t->p->f->C_CloseSession(s);
	return NULL;
}

static struct result run_p11(struct p11 *p, const char *key, enum kh_key_type type, unsigned conc, double secs,
			     EVP_PKEY *pk)
{
	struct p11_thread *th = calloc(conc, sizeof(*th));
	uint64_t t0 = now_ns(), stop = t0 + (uint64_t)(secs * 1e9), cpu0 = self_cpu_us();
	struct samples *ss;
	struct result r;
	unsigned i;

	if (th == NULL)
		die("out of memory");
	for (i = 0; i < conc; i++)
		th[i] = (struct p11_thread){ p, key, type, i, stop, { NULL, 0, 0, 0 } };
	ss = run_threads(th, sizeof(*th), offsetof(struct p11_thread, s), conc, p11_thread_main, t0, &r);
	if (r.count > 0)
		r.cpu_us = (double)(self_cpu_us() - cpu0) / (double)r.count;
	samples_done(&r, pk, type, ss, conc, true);
	free(th);
	return r;
}

/* ---- keyhold ---- */

struct kh_thread {
	const char *socket;
	const char *key;
	unsigned id;
	unsigned depth;        /* requests in flight on this connection */
	uint64_t stop_ns;
	struct samples s;
};

/* One connection with `depth` requests in flight; depth 1 is a plain
 * synchronous client. */
/* A client on socket, or (socket NULL) on libkeyhold's default:
 * $KEYHOLD_ENDPOINTS, each connection starting at the next node. */
static kh_client *bench_connect(const char *socket)
{
	kh_client_opts *o = NULL;
	kh_client *c = NULL;

	if (socket != NULL) {
		if (kh_client_connect_unix(socket, &c) != KH_OK)
			die("cannot connect to %s", socket);
		return c;
	}
	if (kh_client_opts_new(&o) != KH_OK || kh_client_new(o, &c) != KH_OK)
		die("out of memory");
	kh_client_opts_free(o);
	if (kh_client_connect(c) != KH_OK)
		die("cannot connect: %s", kh_client_error_message(c));
	return c;
}

static void *kh_thread_main(void *arg)
{
	struct kh_thread *t = arg;
	kh_client *c = NULL;
	/* In-flight requests by id, in a ring: ids are 1, 2, 3, ... per
	 * connection and at most `depth` are outstanding. */
	enum { RING = 1u << 16 };
	uint64_t *sent_at, *ring_id;
	uint32_t *seq_of;
	uint32_t seq = 0;
	uint64_t id;
	unsigned inflight = 0;

	c = bench_connect(t->socket);
	sent_at = calloc(RING, sizeof(*sent_at));
	ring_id = calloc(RING, sizeof(*ring_id));
	seq_of = calloc(RING, sizeof(*seq_of));
	if (sent_at == NULL || seq_of == NULL || ring_id == NULL)
		die("out of memory");
	for (;;) {
		while (inflight < t->depth && now_ns() < t->stop_ns) {
			uint8_t msg[BENCH_MSG_LEN];

			bench_msg(t->id, seq, msg);
			if (kh_sign_send(c, t->key, NULL, NULL, false, msg, sizeof(msg), &id) != KH_OK)
				die("send: %s", kh_client_error_message(c));
			if (ring_id[id % RING] != 0)
				die("more than %u requests outstanding", RING);
			ring_id[id % RING] = id;
			sent_at[id % RING] = now_ns();
			seq_of[id % RING] = seq++;
			inflight++;
		}
		if (inflight == 0)
			break;
		{
			enum kh_err st = KH_OK;
			uint8_t sig[1024];
			size_t sig_len = 0;
			struct sample *sm;

			if (kh_sign_recv(c, &id, &st, sig, sizeof(sig), &sig_len) != KH_OK)
				die("recv: %s", kh_client_error_message(c));
			if (ring_id[id % RING] != id)
				die("answer to an unknown request %" PRIu64, id);
			ring_id[id % RING] = 0;
			inflight--;
			if (st != KH_OK) {
				t->s.errors++;
				continue;
			}
			sm = samples_add(&t->s);
			sm->thread = t->id;
			sm->seq = seq_of[id % RING];
			sm->lat_us = (uint32_t)((now_ns() - sent_at[id % RING]) / 1000u);
			if (sig_len > sizeof(sm->sig))
				die("signature too long");
			memcpy(sm->sig, sig, sig_len);
			sm->sig_len = (uint16_t)sig_len;
		}
	}
	free(sent_at);
	free(seq_of);
	free(ring_id);
	kh_client_free(c);
	return NULL;
}

static struct result run_kh(const char *socket, const char *key, enum kh_key_type type, unsigned conns,
			    unsigned depth, double secs, EVP_PKEY *pk)
{
	struct kh_thread *th = calloc(conns, sizeof(*th));
	uint64_t t0 = now_ns(), stop = t0 + (uint64_t)(secs * 1e9), cpu0 = proc_cpu_us(kh_pid);
	struct samples *ss;
	struct result r;
	unsigned i;

	if (th == NULL)
		die("out of memory");
	for (i = 0; i < conns; i++)
		th[i] = (struct kh_thread){ socket, key, i, depth, stop, { NULL, 0, 0, 0 } };
	ss = run_threads(th, sizeof(*th), offsetof(struct kh_thread, s), conns, kh_thread_main, t0, &r);
	if (kh_pid > 0 && r.count > 0)
		r.cpu_us = (double)(proc_cpu_us(kh_pid) - cpu0) / (double)(r.count + r.errors);
	samples_done(&r, pk, type, ss, conns, false);
	free(th);
	return r;
}

/* ---- run ---- */

static unsigned parse_list(const char *s, unsigned *out, unsigned max)
{
	unsigned n = 0;
	char *end;

	while (*s != '\0' && n < max) {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || v == 0 || v > 4096)
			die("bad number list '%s'", s);
		out[n++] = (unsigned)v;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

static const char *arg_val(int argc, char **argv, const char *name, const char *def)
{
	int i;

	for (i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return def;
}

static bool arg_flag(int argc, char **argv, const char *name)
{
	int i;

	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

static char *read_pin(const char *path)
{
	static char pin[256];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		die("cannot read %s", path);
	n = fread(pin, 1, sizeof(pin) - 1, f);
	fclose(f);
	while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
		n--;
	pin[n] = '\0';
	return pin;
}

/* ---- bare: the least a one-round-trip signing server can do ----
 *
 * A peer for keyholdd's per-request cost (docs/PERFORMANCE.md): a server
 * process on the same token that does nothing but what every such service
 * must: per connection a thread with its own session, blocking I/O (no
 * event loop, no hand-off), and per request one recv() of the 64-byte
 * message, the hash and C_SignInit + C_Sign (as keyholdd and the direct
 * peer do), one send() of a 2-byte length and the signature; its client
 * waits for the answer as libkeyhold's does (the spin of kh_spin.h and
 * $KEYHOLD_SPIN_US, then poll()). No framing, protobuf, policy, audit
 * record or deadline. Its CPU per signature beyond the direct peer's is
 * the floor of any server's added cost on this machine (the system calls
 * and the wake-ups of a round trip), and its rate the ceiling of any
 * one-round-trip design against p11-kit server in the same run. */

struct bare_conn {
	struct p11 *p;
	CK_MECHANISM_TYPE mech;
	const char *key;
	int fd;
};

static bool io_all(int fd, void *buf, size_t len, bool in)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = in ? recv(fd, (uint8_t *)buf + off, len - off, 0)
			       : send(fd, (const uint8_t *)buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

static void *bare_conn_main(void *arg)
{
	struct bare_conn *bc = arg;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	uint8_t msg[BENCH_MSG_LEN], out[2 + 520];

	key = p11_session_key(bc->p, bc->key, &s);
	while (io_all(bc->fd, msg, sizeof(msg), true)) {
		CK_ULONG slen = sizeof(out) - 2;

		if (p11_sign_msg(bc->p, s, key, bc->mech, msg, out + 2, &slen) != CKR_OK)
			slen = 0; /* an empty signature: counted as an error */
		out[0] = (uint8_t)(slen >> 8);
		out[1] = (uint8_t)slen;
		if (!io_all(bc->fd, out, 2 + slen, false))
			break;
	}
	bc->p->f->C_CloseSession(s);
	close(bc->fd);
	free(bc);
	return NULL;
}

/* The bare server's address; a path too long for it is fatal. */
static void bare_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		die("socket path %s too long", path);
	memcpy(sun->sun_path, path, strlen(path));
}

/* A connection to the bare server, or -1. */
static int bare_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	bare_addr(path, &sun);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int cmd_bare_server(int argc, char **argv)
{
	const char *path = arg_val(argc, argv, "--socket", NULL);
	const char *module = arg_val(argc, argv, "--module", "/usr/lib/softhsm/libsofthsm2.so");
	const char *label = arg_val(argc, argv, "--token", "keyhold");
	const char *pinf = arg_val(argc, argv, "--pin-file", NULL);
	const char *key = arg_val(argc, argv, "--key", NULL);
	const char *tn = arg_val(argc, argv, "--type", "p256");
	struct sockaddr_un sun;
	struct p11 p;
	int ls;

	if (path == NULL || pinf == NULL || key == NULL)
		die("usage: keyhold-bench bare-server --socket S --pin-file F --key NAME --type T [--module M] [--token L]");
	p11_open(&p, module, label, read_pin(pinf));
	bare_addr(path, &sun);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(ls, 128) != 0)
		die("bare: cannot listen on %s: %s", path, strerror(errno));
	for (;;) {
		struct bare_conn *bc;
		pthread_t tid;
		int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("bare: accept: %s", strerror(errno));
		}
		bc = calloc(1, sizeof(*bc));
		if (bc == NULL)
			die("out of memory");
		*bc = (struct bare_conn){ &p, p11_mech_of(kh_key_type_from_name(tn)), key, fd };
		if (pthread_create(&tid, NULL, bare_conn_main, bc) != 0)
			die("bare: pthread_create");
		pthread_detach(tid);
	}
	return 0;
}

struct bare_thread {
	const char *socket;
	unsigned id;
	uint64_t stop_ns;
	struct samples s;
};

/* The client side as libkeyhold does it: send, then recv without waiting
 * and poll() only when nothing is there. */
static void *bare_thread_main(void *arg)
{
	struct bare_thread *t = arg;
	uint32_t seq = 0;
	int fd = bare_connect(t->socket);
	const char *sv = getenv("KEYHOLD_SPIN_US");
	uint32_t spin_us = sv != NULL && sv[0] != '\0' ? (uint32_t)strtoul(sv, NULL, 10) : KH_SPIN_US_DEFAULT;
	struct kh_spin spin = { 0, 0 };

	if (fd < 0)
		die("bare: cannot connect to %s", t->socket);
	while (now_ns() < t->stop_ns) {
		uint8_t msg[BENCH_MSG_LEN], in[2 + 520];
		size_t got = 0, want = 2;
		uint64_t t0 = now_ns();
		struct sample *sm;

		bench_msg(t->id, seq, msg);
		if (!io_all(fd, msg, sizeof(msg), false))
			die("bare: send");
		while (got < want) {
			ssize_t n = recv(fd, in + got, sizeof(in) - got, MSG_DONTWAIT);

			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				struct pollfd pfd = { fd, POLLIN, 0 };
				bool ready = false;

				/* libkeyhold's wait: spin first (kh_spin.h). */
				if (spin_us != 0 && kh_spin_next(&spin)) {
					ready = kh_spin_poll(fd, spin_us);
					kh_spin_result(&spin, ready);
				}
				if (!ready && poll(&pfd, 1, -1) < 0 && errno != EINTR)
					die("bare: poll");
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				die("bare: the server closed the connection");
			got += (size_t)n;
			if (got >= 2)
				want = 2 + (((size_t)in[0] << 8) | in[1]);
			if (want > sizeof(in))
				die("bare: bad answer");
		}
		if (want == 2) {
			t->s.errors++;
			seq++;
			continue;
		}
		sm = samples_add(&t->s);
		sm->thread = t->id;
		sm->seq = seq++;
		sm->sig_len = (uint16_t)(want - 2);
		memcpy(sm->sig, in + 2, want - 2);
		sm->lat_us = (uint32_t)((now_ns() - t0) / 1000u);
	}
	close(fd);
	return NULL;
}

static struct result run_bare(const char *socket, long pid, enum kh_key_type type, unsigned conns, double secs,
			      EVP_PKEY *pk)
{
	struct bare_thread *th = calloc(conns, sizeof(*th));
	uint64_t t0 = now_ns(), stop = t0 + (uint64_t)(secs * 1e9), cpu0 = proc_cpu_us(pid);
	struct samples *ss;
	struct result r;
	unsigned i;

	if (th == NULL)
		die("out of memory");
	for (i = 0; i < conns; i++)
		th[i] = (struct bare_thread){ socket, i, stop, { NULL, 0, 0, 0 } };
	ss = run_threads(th, sizeof(*th), offsetof(struct bare_thread, s), conns, bare_thread_main, t0, &r);
	if (r.count > 0)
		r.cpu_us = (double)(proc_cpu_us(pid) - cpu0) / (double)(r.count + r.errors);
	samples_done(&r, pk, type, ss, conns, true);
	free(th);
	return r;
}

/* Starts `keyhold-bench bare-server` (this program) for one key and waits
 * for its socket. */
static pid_t bare_start(const char *path, const char *module, const char *label, const char *pinf, const char *key,
			const char *tn)
{
	const char *argv_c[] = { "keyhold-bench", "bare-server", "--socket", path, "--module", module, "--token", label,
				 "--pin-file", pinf, "--key", key, "--type", tn };
	char *args[sizeof(argv_c) / sizeof(argv_c[0]) + 1];
	size_t k;
	pid_t pid;
	int i, status;

	for (k = 0; k < sizeof(argv_c) / sizeof(argv_c[0]); k++)
		if ((args[k] = strdup(argv_c[k])) == NULL)
			die("out of memory");
	args[k] = NULL;
	unlink(path);
	if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ) != 0)
		die("cannot start the bare server");
	for (k = 0; args[k] != NULL; k++)
		free(args[k]);
	for (i = 0; i < 400; i++) {
		int fd = bare_connect(path);

		if (fd >= 0) {
			close(fd);
			return pid;
		}
		if (waitpid(pid, &status, WNOHANG) == pid)
			die("the bare server exited at start");
		usleep(10000);
	}
	die("the bare server did not start");
	return -1;
}

static void bare_stop(pid_t pid, const char *path)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(path);
}

static void print_row(bool json, bool *first, const char *type, const char *shape, unsigned conc,
		      const struct result *k, const struct result *d, const struct result *p, const struct result *q,
		      const struct result *b)
{
	double rd = d->ops > 0 ? k->ops / d->ops : 0, rp = p && p->ops > 0 ? k->ops / p->ops : 0;
	double qp = q && p && p->ops > 0 ? q->ops / p->ops : 0;

	if (json) {
		printf("%s\n    {\"type\":\"%s\",\"shape\":\"%s\",\"concurrency\":%u,"
		       "\"keyhold\":{\"ops\":%.0f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"errors\":%" PRIu64 ",\"bad\":%" PRIu64
		       ",\"keyholdd_cpu_us\":%.1f},"
		       "\"direct\":{\"ops\":%.0f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"bad\":%" PRIu64 ",\"cpu_us\":%.1f},",
		       *first ? "" : ",", type, shape, conc, k->ops, k->p50_us, k->p99_us, k->errors, k->bad, k->cpu_us,
		       d->ops, d->p50_us, d->p99_us, d->bad, d->cpu_us);
		if (p != NULL)
			printf("\"p11kit\":{\"ops\":%.0f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"bad\":%" PRIu64
			       ",\"errors\":%" PRIu64 "},",
			       p->ops, p->p50_us, p->p99_us, p->bad, p->errors);
		if (q != NULL)
			printf("\"keyhold_pkcs11\":{\"ops\":%.0f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"bad\":%" PRIu64
			       ",\"errors\":%" PRIu64 "},\"keyhold_pkcs11_over_p11kit\":%.3f,",
			       q->ops, q->p50_us, q->p99_us, q->bad, q->errors, qp);
		if (b != NULL)
			printf("\"bare\":{\"ops\":%.0f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"bad\":%" PRIu64
			       ",\"errors\":%" PRIu64 ",\"cpu_us\":%.1f},\"bare_over_p11kit\":%.3f,",
			       b->ops, b->p50_us, b->p99_us, b->bad, b->errors, b->cpu_us,
			       p != NULL && p->ops > 0 ? b->ops / p->ops : 0);
		printf("\"keyhold_over_direct\":%.3f,\"keyhold_over_p11kit\":%.3f}", rd, rp);
		*first = false;
		return;
	}
	printf("%-8s %-9s %5u | %8.0f %7.0f %7.0f | %8.0f %7.0f | ", type, shape, conc, k->ops, k->p50_us, k->p99_us,
	       d->ops, d->p50_us);
	if (p != NULL && p->count == 0 && p->errors > 0)
		printf("%8s %7s | %6.2f %6s", "n/a", "", rd, "n/a"); /* the peer refused every request */
	else
		printf("%8.0f %7.0f | %6.2f %6.2f", p ? p->ops : 0, p ? p->p50_us : 0, rd, rp);
	if (q != NULL)
		printf(" | %8.0f %7.0f | %6.2f", q->ops, q->p50_us, qp);
	if (kh_pid > 0)
		printf(" | %6.1f %6.1f %6.1f", k->cpu_us, d->cpu_us, k->cpu_us - d->cpu_us);
	if (b != NULL)
		printf(" | %8.0f %7.0f | %6.2f | %6.1f %6.1f", b->ops, b->p50_us, p != NULL && p->ops > 0 ? b->ops / p->ops : 0,
		       b->cpu_us, b->cpu_us - d->cpu_us);
	printf("%s\n", (k->bad || d->bad || (p && p->bad) || (q && (q->bad || q->errors)) || k->errors ||
			(b && (b->bad || b->errors)))
				? "  VERIFY/ERROR!"
				: "");
}

static int cmd_run(int argc, char **argv)
{
	const char *socket = arg_val(argc, argv, "--socket", getenv("KEYHOLD_SOCKET"));
	const char *module = arg_val(argc, argv, "--module", "/usr/lib/softhsm/libsofthsm2.so");
	const char *p11kit = arg_val(argc, argv, "--p11kit-module", NULL);
	const char *khmod = arg_val(argc, argv, "--keyhold-module", NULL);
	const char *label = arg_val(argc, argv, "--token", "keyhold");
	const char *pinf = arg_val(argc, argv, "--pin-file", NULL);
	const char *types = arg_val(argc, argv, "--types", "rsa2048,p256,ed25519");
	double secs = atof(arg_val(argc, argv, "--seconds", "3")); /* NOLINT: bench-only */
	bool json = arg_flag(argc, argv, "--json");
	/* --keyhold-only: no peers (for profiling keyholdd under load). */
	bool keyhold_only = arg_flag(argc, argv, "--keyhold-only");
	/* --bare: also the bare one-round-trip server (above) on the token. */
	bool bare = arg_flag(argc, argv, "--bare") && !keyhold_only;
	char bare_sock[256];
	pid_t bare_pid = -1;
	unsigned conc[8], nconc = parse_list(arg_val(argc, argv, "--conc", "1,2,8,64"), conc, 8);
	struct p11 direct, pk11, khp11;
	/* --pid: keyholdd's, for its CPU per signature (/proc/PID/stat). */
	kh_pid = strtol(arg_val(argc, argv, "--pid", "0"), NULL, 10);
	kh_client *c = NULL;
	char tbuf[128];
	char *save = NULL, *tn;
	bool first = true;
	uint64_t bad_total = 0;

	if (socket == NULL || pinf == NULL)
		die("run needs --socket and --pin-file");
	if (kh_client_connect_unix(socket, &c) != KH_OK)
		die("cannot connect to %s", socket);
	snprintf(tbuf, sizeof(tbuf), "%s", types);
	/* Keys first: the peers' C_Initialize must see them. */
	for (tn = strtok_r(tbuf, ",", &save); tn != NULL; tn = strtok_r(NULL, ",", &save)) {
		char key[64];

		snprintf(key, sizeof(key), "bench-%s", tn);
		kh_ignore(kh_key_delete(c, key));
		if (kh_key_generate(c, key, tn, NULL, NULL) != KH_OK)
			die("generate %s: %s", key, kh_client_error_message(c));
	}
	if (keyhold_only)
		p11kit = khmod = NULL;
	else
		p11_open(&direct, module, label, read_pin(pinf));
	if (p11kit != NULL)
		p11_open(&pk11, p11kit, label, read_pin(pinf));
	/* libkeyhold-pkcs11.so reaches keyholdd on KEYHOLD_SOCKET. */
	if (khmod != NULL && setenv("KEYHOLD_SOCKET", socket, 1) == 0)
		p11_open(&khp11, khmod, label, read_pin(pinf));
	if (json)
		printf("{\n  \"seconds\": %.1f,\n  \"rows\": [", secs);
	else
		printf("%-8s %-9s %5s | %8s %7s %7s | %8s %7s | %8s %7s | %6s %6s%s%s%s\n", "type", "shape", "conc",
		       "keyhold/s", "p50us", "p99us", "direct/s", "p50us", "p11kit/s", "p50us", "k/dir", "k/p11",
		       khmod != NULL ? " |  kp11/s   p50us | kp11/p11" : "",
		       /* keyholdd's CPU per signature, direct's (the token's own
			* signing CPU), and what keyholdd adds beyond it */
		       kh_pid > 0 ? " |  kcpu   dcpu  added" : "",
		       /* the bare one-round-trip server: rate, p50, rate over
			* p11-kit's, its CPU per signature and beyond direct's */
		       bare ? " |   bare/s   p50us | b/p11 |  bcpu  badd" : "");
	snprintf(tbuf, sizeof(tbuf), "%s", types);
	for (tn = strtok_r(tbuf, ",", &save); tn != NULL; tn = strtok_r(NULL, ",", &save)) {
		enum kh_key_type t = kh_key_type_from_name(tn);
		char key[64];
		uint8_t *spki = NULL;
		size_t spki_len = 0;
		const unsigned char *p;
		EVP_PKEY *pk;
		unsigned i;

		snprintf(key, sizeof(key), "bench-%s", tn);
		if (kh_key_public(c, key, &spki, &spki_len) != KH_OK)
			die("%s: %s", key, kh_client_error_message(c));
		p = spki;
		pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
		kh_free(spki);
		if (pk == NULL)
			die("bad SPKI");
		if (bare) {
			snprintf(bare_sock, sizeof(bare_sock), "%s.bare", socket);
			bare_pid = bare_start(bare_sock, module, label, pinf, key, tn);
		}
		for (i = 0; i < nconc; i++) {
			struct result d, pp, kc, kp, kq, kb;
			bool have_p = p11kit != NULL, have_q = khmod != NULL;

			memset(&d, 0, sizeof(d));
			if (!keyhold_only)
				d = run_p11(&direct, key, t, conc[i], secs, pk);

			if (have_p)
				pp = run_p11(&pk11, key, t, conc[i], secs, pk);
			if (have_q)
				kq = run_p11(&khp11, key, t, conc[i], secs, pk);
			/* Shape "conns": N connections, one request each in flight. */
			kc = run_kh(socket, key, t, conc[i], 1, secs, pk);
			if (bare)
				kb = run_bare(bare_sock, bare_pid, t, conc[i], secs, pk);
			print_row(json, &first, tn, "conns", conc[i], &kc, &d, have_p ? &pp : NULL, have_q ? &kq : NULL,
				  bare ? &kb : NULL);
			bad_total += kc.bad + d.bad + (have_p ? pp.bad : 0) + kc.errors + (have_q ? kq.bad + kq.errors : 0) +
				     (bare ? kb.bad + kb.errors : 0);
			/* Shape "pipeline": one connection, N requests in flight. */
			if (conc[i] > 1) {
				kp = run_kh(socket, key, t, 1, conc[i], secs, pk);
				print_row(json, &first, tn, "pipeline", conc[i], &kp, &d, have_p ? &pp : NULL,
					  have_q ? &kq : NULL, bare ? &kb : NULL);
				bad_total += kp.bad + kp.errors;
			}
			fflush(stdout);
		}
		EVP_PKEY_free(pk);
		if (bare)
			bare_stop(bare_pid, bare_sock);
		kh_ignore(kh_key_delete(c, key));
	}
	if (json)
		printf("\n  ],\n  \"failed_verifications\": %" PRIu64 "\n}\n", bad_total);
	else
		printf("signatures that failed verification or errors: %" PRIu64 "\n", bad_total);
	if (!keyhold_only)
		p11_close(&direct);
	if (p11kit != NULL)
		p11_close(&pk11);
	if (khmod != NULL)
		p11_close(&khp11);
	kh_client_free(c);
	return bad_total == 0 ? 0 : 1;
}

/* ---- latency: one Unix client's GetStatus round trips ---- */

static int cmd_latency(int argc, char **argv)
{
	const char *socket = arg_val(argc, argv, "--socket", getenv("KEYHOLD_SOCKET"));
	double secs = atof(arg_val(argc, argv, "--seconds", "2")); /* NOLINT: bench-only */
	uint64_t stop, t0;
	struct samples s;
	struct result r;
	kh_client *c = NULL;
	kh_msg *req = NULL;

	memset(&s, 0, sizeof(s));
	if (socket == NULL)
		die("latency needs --socket");
	if (kh_client_connect_unix(socket, &c) != KH_OK || kh_request_new("GetStatus", &req) != KH_OK)
		die("cannot connect to %s", socket);
	t0 = now_ns();
	stop = t0 + (uint64_t)(secs * 1e9);
	while (now_ns() < stop) {
		uint64_t a = now_ns();
		kh_msg *resp = NULL;

		if (kh_call(c, req, &resp) != KH_OK)
			die("GetStatus: %s", kh_client_error_message(c));
		kh_msg_free(resp);
		samples_add(&s)->lat_us = (uint32_t)((now_ns() - a) / 1000u);
	}
	r = summarise(&s, 1, now_ns() - t0);
	printf("{\"requests\":%" PRIu64 ",\"p50_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,\"max_us\":%.0f}\n", r.count,
	       r.p50_us, r.p99_us, r.p999_us, r.max_us);
	free(s.v);
	kh_msg_free(req);
	kh_client_free(c);
	return 0;
}

/* ---- state: trustpoint create + delete, one after the other ---- */

/* keyhold-bench state --socket S --key KEY [--seconds N]: creates a
 * trustpoint on KEY and deletes it again (keeping the key), for N seconds
 * on one connection; each is one state-changing transaction. Prints the
 * pairs per second and a pair's latency percentiles. */
static int cmd_state(int argc, char **argv)
{
	const char *socket = arg_val(argc, argv, "--socket", getenv("KEYHOLD_SOCKET"));
	const char *key = arg_val(argc, argv, "--key", NULL);
	double secs = atof(arg_val(argc, argv, "--seconds", "2")); /* NOLINT: bench-only */
	uint64_t stop, t0, i = 0;
	struct samples s;
	struct result r;
	kh_client *c = NULL;

	memset(&s, 0, sizeof(s));
	if (socket == NULL || key == NULL)
		die("state needs --socket and --key");
	if (kh_client_connect_unix(socket, &c) != KH_OK)
		die("cannot connect to %s", socket);
	t0 = now_ns();
	stop = t0 + (uint64_t)(secs * 1e9);
	while (now_ns() < stop) {
		uint64_t a = now_ns();
		kh_msg *cq = NULL, *dq = NULL, *resp = NULL;
		char name[64], subject[96];

		snprintf(name, sizeof(name), "bench-%" PRIu64, i);
		snprintf(subject, sizeof(subject), "CN=%s.bench.example", name);
		if (kh_request_new("CreateTrustpoint", &cq) != KH_OK || kh_msg_set_str(cq, "name", name) != KH_OK ||
		    kh_msg_set_str(cq, "key", key) != KH_OK || kh_msg_set_str(cq, "subject", subject) != KH_OK)
			die("cannot build CreateTrustpoint");
		if (kh_call(c, cq, &resp) != KH_OK)
			die("CreateTrustpoint: %s", kh_client_error_message(c));
		kh_msg_free(resp);
		resp = NULL;
		if (kh_request_new("DeleteTrustpoint", &dq) != KH_OK || kh_msg_set_str(dq, "name", name) != KH_OK ||
		    kh_msg_set_bool(dq, "keep_key", true) != KH_OK)
			die("cannot build DeleteTrustpoint");
		if (kh_call(c, dq, &resp) != KH_OK)
			die("DeleteTrustpoint: %s", kh_client_error_message(c));
		kh_msg_free(resp);
		kh_msg_free(cq);
		kh_msg_free(dq);
		samples_add(&s)->lat_us = (uint32_t)((now_ns() - a) / 1000u);
		i++;
	}
	r = summarise(&s, 1, now_ns() - t0);
	printf("{\"pairs\":%" PRIu64 ",\"pairs_per_s\":%.1f,\"p50_us\":%.0f,\"p99_us\":%.0f}\n", r.count,
	       (double)r.count / ((double)(now_ns() - t0) / 1e9), r.p50_us, r.p99_us);
	free(s.v);
	kh_client_free(c);
	return 0;
}

/* ---- scale: many connections held at once ---- */

static long rss_kib(long pid)
{
	char path[64], line[256];
	FILE *f;
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	fclose(f);
	return v;
}

static int cmd_scale(int argc, char **argv)
{
	const char *socket = arg_val(argc, argv, "--socket", getenv("KEYHOLD_SOCKET"));
	const char *key = arg_val(argc, argv, "--key", NULL);
	unsigned conns = (unsigned)strtoul(arg_val(argc, argv, "--conns", "1000"), NULL, 10);
	unsigned rounds = (unsigned)strtoul(arg_val(argc, argv, "--rounds", "3"), NULL, 10);
	long pid = strtol(arg_val(argc, argv, "--pid", "0"), NULL, 10);
	struct rlimit rl;
	kh_client **cs;
	uint64_t ok = 0, failed = 0;
	long rss_max = 0;
	unsigned i, r;

	if (socket == NULL || key == NULL)
		die("scale needs --socket and --key");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < conns + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	cs = calloc(conns, sizeof(*cs));
	if (cs == NULL)
		die("out of memory");
	for (i = 0; i < conns; i++)
		if (kh_client_connect_unix(socket, &cs[i]) != KH_OK)
			die("connection %u to %s failed", i, socket);
	for (r = 0; r < rounds; r++) {
		/* Every connection asks once per round; all stay open. */
		for (i = 0; i < conns; i++) {
			uint8_t msg[BENCH_MSG_LEN];
			uint64_t id;

			bench_msg(i, r, msg);
			if (kh_sign_send(cs[i], key, NULL, NULL, false, msg, sizeof(msg), &id) != KH_OK)
				die("send on %u: %s", i, kh_client_error_message(cs[i]));
		}
		if (pid > 0 && rss_kib(pid) > rss_max)
			rss_max = rss_kib(pid);
		for (i = 0; i < conns; i++) {
			enum kh_err st = KH_OK;
			uint8_t sig[1024];
			size_t sig_len = 0;
			uint64_t id;

			if (kh_sign_recv(cs[i], &id, &st, sig, sizeof(sig), &sig_len) != KH_OK)
				die("recv on %u: %s", i, kh_client_error_message(cs[i]));
			if (st == KH_OK) {
				ok++;
			} else {
				failed++;
			}
		}
		if (pid > 0 && rss_kib(pid) > rss_max)
			rss_max = rss_kib(pid);
	}
	printf("{\"connections\":%u,\"requests\":%" PRIu64 ",\"answered_ok\":%" PRIu64 ",\"failed\":%" PRIu64
	       ",\"keyholdd_rss_kib\":%ld}\n",
	       conns, (uint64_t)conns * rounds, ok, failed, rss_max);
	for (i = 0; i < conns; i++)
		kh_client_free(cs[i]);
	free(cs);
	return failed == 0 && ok == (uint64_t)conns * rounds ? 0 : 1;
}

/* ---- startup: spawn keyholdd, time until it answers ---- */

static int cmd_startup(int argc, char **argv)
{
	const char *socket = getenv("KEYHOLD_SOCKET");
	int i, status;
	pid_t pid;
	uint64_t t0;

	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
		;
	if (i + 1 >= argc || socket == NULL)
		die("usage: KEYHOLD_SOCKET=S keyhold-bench startup -- keyholdd ARGS...");
	t0 = now_ns();
	if (posix_spawn(&pid, argv[i + 1], NULL, NULL, argv + i + 1, environ) != 0)
		die("cannot start %s", argv[i + 1]);
	for (;;) {
		kh_client *c = NULL;
		kh_msg *q = NULL, *st = NULL;

		if (waitpid(pid, &status, WNOHANG) == pid)
			die("keyholdd exited during start-up (status %d)", WEXITSTATUS(status));
		if (kh_request_new("GetStatus", &q) != KH_OK)
			die("out of memory");
		if (kh_client_connect_unix(socket, &c) == KH_OK && kh_call(c, q, &st) == KH_OK) {
			double ms = (double)(now_ns() - t0) / 1e6;

			printf("{\"startup_ms\":%.1f,\"state\":\"%s\",\"fips_mode\":\"%s\",\"self_tests\":%zu}\n", ms,
			       kh_msg_get_str(st, "state"), kh_msg_get_str(st, "fips_mode"), kh_msg_count(st, "self_tests"));
			kh_msg_free(st);
			kh_msg_free(q);
			kh_client_free(c);
			break;
		}
		kh_msg_free(q);
		kh_client_free(c);
		usleep(500);
	}
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	return 0;
}

/* ---- cluster ---- */

static int cmd_cluster(int argc, char **argv)
{
	const char *eps = arg_val(argc, argv, "--endpoints", NULL);
	const char *key = arg_val(argc, argv, "--key", NULL);
	const char *tn = arg_val(argc, argv, "--type", "p256");
	double secs = atof(arg_val(argc, argv, "--seconds", "3")); /* NOLINT: bench-only */
	unsigned conc = (unsigned)strtoul(arg_val(argc, argv, "--conc", "8"), NULL, 10);
	bool json = arg_flag(argc, argv, "--json");
	enum kh_key_type t = kh_key_type_from_name(tn);
	const unsigned char *p;
	uint8_t *spki = NULL;
	size_t len = 0;
	EVP_PKEY *pk;
	kh_client *c;
	struct result r;

	if (eps == NULL || key == NULL || conc == 0)
		die("cluster needs --endpoints LIST and --key NAME");
	if (setenv("KEYHOLD_ENDPOINTS", eps, 1) != 0)
		die("setenv");
	c = bench_connect(NULL);
	if (kh_key_public(c, key, &spki, &len) != KH_OK)
		die("key %s: %s", key, kh_client_error_message(c));
	kh_client_free(c);
	p = spki;
	pk = d2i_PUBKEY(NULL, &p, (long)len);
	kh_free(spki);
	if (pk == NULL)
		die("key %s: a bad public key", key);
	r = run_kh(NULL, key, t, conc, 1, secs, pk);
	EVP_PKEY_free(pk);
	if (json)
		printf("{\"ops\":%.0f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"errors\":%" PRIu64 ",\"bad\":%" PRIu64 "}\n",
		       r.ops, r.p50_us, r.p99_us, r.errors, r.bad);
	else
		printf("%8.0f sig/s  p50 %6.0f us  p99 %6.0f us  errors %" PRIu64 "  bad %" PRIu64 "\n", r.ops, r.p50_us,
		       r.p99_us, r.errors, r.bad);
	return r.bad == 0 && r.errors == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: keyhold-bench run|latency|scale|state|startup|cluster ...");
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "latency") == 0)
		return cmd_latency(argc - 2, argv + 2);
	if (strcmp(argv[1], "scale") == 0)
		return cmd_scale(argc - 2, argv + 2);
	if (strcmp(argv[1], "state") == 0)
		return cmd_state(argc - 2, argv + 2);
	if (strcmp(argv[1], "startup") == 0)
		return cmd_startup(argc - 2, argv + 2);
	if (strcmp(argv[1], "cluster") == 0)
		return cmd_cluster(argc - 2, argv + 2);
	if (strcmp(argv[1], "bare-server") == 0)
		return cmd_bare_server(argc - 2, argv + 2);
	die("unknown command %s", argv[1]);
	return 2;
}
