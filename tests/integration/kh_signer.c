/* kh_signer: an integration-test client on libkeyhold. T threads, each on
 * its own connection, sign N distinct messages each with one key and write
 * every message and signature to a directory for the openssl CLI to verify;
 * prints the per-signature latency percentiles.
 *
 *   kh_signer SOCKET KEY[,KEY...] THREADS N OUTDIR [--pss] [--gap-ms MS]
 *
 * SOCKET "-": libkeyhold's default ($KEYHOLD_ENDPOINTS, $KEYHOLD_SOCKET):
 * a cluster's nodes, the threads' connections spread over them. Thread t
 * signs "kh_signer thread t message i" with KEY number t mod K, SHA-256,
 * into OUTDIR/t.i.msg and OUTDIR/t.i.sig; OUTDIR/t.i.key names the key;
 * --gap-ms pauses between a thread's signatures (a load that lasts). Exit 0
 * only when every request returned OK; "failovers" counts the moves to
 * another node (kh_client_failovers). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <keyhold/keyhold.h>

#define SIGNER_MAX_THREADS 64
#define SIGNER_MAX_KEYS 8

struct signer_job {
	const char *socket;
	const char *key;
	const char *outdir;
	unsigned thread;
	unsigned n;
	bool pss;
	unsigned gap_ms;
	uint64_t *lat_us;       /* n entries */
	unsigned failed;
	unsigned failovers;
	char err[600];
};

static uint64_t signer_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int signer_write(const char *dir, unsigned t, unsigned i, const char *ext, const void *p, size_t n)
{
	char path[4096];
	FILE *fp;
	int ok;

	if (snprintf(path, sizeof(path), "%s/%u.%u.%s", dir, t, i, ext) >= (int)sizeof(path))
		return -1;
	fp = fopen(path, "wb");
	if (fp == NULL)
		return -1;
	ok = fwrite(p, 1, n, fp) == n;
	return (fclose(fp) == 0 && ok) ? 0 : -1;
}

static void *signer_run(void *arg)
{
	struct signer_job *j = arg;
	kh_client_opts *o = NULL;
	kh_client *c = NULL;
	char msg[96];
	unsigned i;

	if (kh_client_opts_new(&o) != KH_OK ||
	    (strcmp(j->socket, "-") != 0 && kh_client_opts_set_socket(o, j->socket) != KH_OK) ||
	    kh_client_new(o, &c) != KH_OK) {
		snprintf(j->err, sizeof(j->err), "out of memory");
		j->failed = j->n;
		kh_client_opts_free(o);
		return NULL;
	}
	kh_client_opts_free(o);
	if (kh_client_connect(c) != KH_OK) {
		snprintf(j->err, sizeof(j->err), "connect: %s", kh_client_error_message(c));
		j->failed = j->n;
		kh_client_free(c);
		return NULL;
	}
	for (i = 0; i < j->n; i++) {
		uint8_t *sig = NULL;
		size_t sig_len = 0;
		uint64_t t0;
		int n, r;

		n = snprintf(msg, sizeof(msg), "kh_signer thread %u message %u", j->thread, i);
		t0 = signer_now_us();
		r = kh_sign(c, j->key, "SHA256", j->pss ? "PSS" : NULL, false, (const uint8_t *)msg, (size_t)n, &sig,
			    &sig_len);
		j->lat_us[i] = signer_now_us() - t0;
		if (r != KH_OK) {
			if (j->failed++ == 0)
				snprintf(j->err, sizeof(j->err), "sign %u: %s: %s", i, kh_err_name(r),
					 kh_client_error_message(c));
			continue;
		}
		if (signer_write(j->outdir, j->thread, i, "msg", msg, (size_t)n) != 0 ||
		    signer_write(j->outdir, j->thread, i, "sig", sig, sig_len) != 0 ||
		    signer_write(j->outdir, j->thread, i, "key", j->key, strlen(j->key)) != 0) {
			if (j->failed++ == 0)
				snprintf(j->err, sizeof(j->err), "writing to %s: %s", j->outdir, strerror(errno));
		}
		kh_free(sig);
		if (j->gap_ms > 0)
			usleep(j->gap_ms * 1000u);
	}
	j->failovers = kh_client_failovers(c);
	kh_client_free(c);
	return NULL;
}

static int signer_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static unsigned long signer_num(const char *s, unsigned long max)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max)
		return 0;
	return v;
}

int main(int argc, char **argv)
{
	struct signer_job jobs[SIGNER_MAX_THREADS];
	pthread_t tid[SIGNER_MAX_THREADS];
	char *keys[SIGNER_MAX_KEYS], *keylist = NULL, *p;
	unsigned long threads, n, gap = 0;
	unsigned nkeys = 0, t, failed = 0, failovers = 0;
	bool pss = false;
	int a;
	uint64_t *all = NULL;
	size_t total, k = 0, i;
	uint64_t t0, elapsed;
	int rc = 1;

	for (a = 6; a < argc; a++) {
		if (strcmp(argv[a], "--pss") == 0)
			pss = true;
		else if (strcmp(argv[a], "--gap-ms") == 0 && a + 1 < argc && (gap = signer_num(argv[a + 1], 10000)) > 0)
			a++;
		else
			break;
	}
	if (argc < 6 || a < argc) {
		fprintf(stderr, "usage: kh_signer SOCKET KEY[,KEY...] THREADS N OUTDIR [--pss] [--gap-ms MS]\n");
		return 2;
	}
	threads = signer_num(argv[3], SIGNER_MAX_THREADS);
	n = signer_num(argv[4], 1000000);
	if (threads == 0 || n == 0) {
		fprintf(stderr, "kh_signer: THREADS must be 1-%d and N 1-1000000\n", SIGNER_MAX_THREADS);
		return 2;
	}
	keylist = strdup(argv[2]);
	if (keylist == NULL)
		return 1;
	for (p = keylist; p != NULL && nkeys < SIGNER_MAX_KEYS;) {
		char *comma = strchr(p, ',');

		if (comma != NULL)
			*comma = '\0';
		keys[nkeys++] = p;
		p = comma != NULL ? comma + 1 : NULL;
	}
	total = (size_t)threads * n;
	all = calloc(total, sizeof(*all));
	if (all == NULL)
		goto out;
	memset(jobs, 0, sizeof(jobs));
	t0 = signer_now_us();
	for (t = 0; t < threads; t++) {
		jobs[t] = (struct signer_job){ .socket = argv[1], .key = keys[t % nkeys], .outdir = argv[5],
					      .thread = t, .n = (unsigned)n, .pss = pss, .gap_ms = (unsigned)gap,
					      .lat_us = all + (size_t)t * n };
		if (pthread_create(&tid[t], NULL, signer_run, &jobs[t]) != 0) {
			fprintf(stderr, "kh_signer: pthread_create failed\n");
			threads = t;
			failed++;
			break;
		}
	}
	for (t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		failovers += jobs[t].failovers;
		if (jobs[t].failed) {
			fprintf(stderr, "kh_signer: thread %u (%s): %u failed; first: %s\n", t, jobs[t].key,
				jobs[t].failed, jobs[t].err);
			failed += jobs[t].failed;
		}
	}
	elapsed = signer_now_us() - t0;
	k = (size_t)threads * n;
	qsort(all, k, sizeof(*all), signer_cmp);
	i = k ? k - 1 : 0;
	printf("signatures %zu failed %u threads %lu elapsed_ms %" PRIu64 " p50_us %" PRIu64 " p90_us %" PRIu64
	       " p99_us %" PRIu64 " max_us %" PRIu64 " failovers %u\n",
	       k, failed, threads, elapsed / 1000, k ? all[k / 2] : 0, k ? all[k * 9 / 10] : 0,
	       k ? all[k * 99 / 100] : 0, k ? all[i] : 0, failovers);
	rc = failed == 0 ? 0 : 1;
out:
	free(all);
	free(keylist);
	return rc;
}
