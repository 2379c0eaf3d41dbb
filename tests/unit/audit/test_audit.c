/* test_audit.c: the audit hash chain (service/audit/audit.c, DESIGN §9)
 * driven for real: a throwaway SoftHSM2 token (private SOFTHSM2_CONF in a
 * temp dir, as scripts/softhsm-token.sh makes it) holds the checkpoint key;
 * records are appended, verify passes; then a changed byte, a deleted line,
 * two swapped lines, a replayed line, a cut tail and a torn last line must
 * each be reported at the right record. Checkpoints signed by the
 * checkpoint thread (off the request path) name the record they sign: a
 * log rewritten with its chain recomputed, or such a checkpoint moved to
 * another record, is reported too. Needs softhsm2-util and
 * /usr/lib/softhsm/libsofthsm2.so: fails (does not skip) without them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include <openssl/evp.h>

#include "audit/audit.h"
#include "hsm.h"
#include "kh_util.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define LABEL "kh-audit-test"
/* A fresh log: Start (1), events (2-4), checkpoint (5), events (6-9),
 * checkpoint (10), events (11-13): a checkpoint after every 4 records. */
#define EVENTS 10
#define CKPT_EVERY 4
#define LINES 13

static char dir[64];
static struct hsm *hsm;
static int log_no;

static int group_setup(void **state)
{
	char path[128], cmd[512];
	FILE *f;
	struct hsm_config cfg;
	struct kh_errbuf e = { 0 };

	(void)state;
	memcpy(dir, "/tmp/kh-audit.XXXXXX", 21);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tokens", dir);
	if (mkdir(path, 0700) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
		   "slots.removable = false\n", dir);
	fclose(f);
	if (setenv("SOFTHSM2_CONF", path, 1) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/pin", dir);
	f = fopen(path, "w");
	if (f == NULL || chmod(path, 0600) != 0)
		return -1;
	fputs("1234\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "softhsm2-util --init-token --free --label " LABEL " --so-pin 5678 --pin 1234 >/dev/null");
	if (system(cmd) != 0) {
		fprintf(stderr, "softhsm2-util --init-token failed: this test needs SoftHSM2\n");
		return -1;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.module = MODULE;
	cfg.uri = "pkcs11:token=" LABEL;
	cfg.pin_file = path;
	cfg.sessions = 2;
	if (hsm_open(&cfg, &hsm, &e) != KH_OK) {
		fprintf(stderr, "hsm_open: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	hsm_close(hsm);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The log at path (created when missing); in_place: checkpoints signed
 * by the appending thread, at fixed places; else by the checkpoint thread. */
static struct audit *log_open_ex(const char *path, bool in_place, unsigned anchor_interval_s)
{
	struct audit_config cfg;
	struct audit *a = NULL;
	struct kh_errbuf e = { 0 };

	memset(&cfg, 0, sizeof(cfg));
	cfg.path = path;
	cfg.key = "audit-test-key";
	cfg.checkpoint_records = CKPT_EVERY;
	cfg.checkpoint_interval_s = 3600;
	cfg.checkpoint_inline = in_place;
	cfg.anchor_interval_s = anchor_interval_s;
	assert_int_equal(audit_open(&cfg, hsm, &a, &e), KH_OK);
	return a;
}

static struct audit *log_open(const char *path, bool in_place)
{
	return log_open_ex(path, in_place, 0);
}

/* A fresh log with LINES records; *path gets its name. Without in_place,
 * each record waits for the checkpoint it makes due, so that the lines
 * fall where they do with in_place. */
static struct audit *fresh_log_ex(char *path, size_t pathsz, bool in_place)
{
	struct audit *a;
	struct kh_errbuf e = { 0 };
	char obj[32];
	int i;

	snprintf(path, pathsz, "%s/audit-%d.log", dir, ++log_no);
	/* The token's anchor ("<audit key>-anchor") is another log's: this one starts afresh. */
	assert_int_equal(hsm_data_delete(hsm, "audit-test-key-anchor", &e), KH_OK);
	a = log_open(path, in_place);
	for (i = 0; i < EVENTS; i++) {
		struct audit_event ev = { "uid:1000", "Sign", obj, i == 3 ? KH_E_NOT_FOUND : KH_OK, 10u + (unsigned)i, 1 };

		snprintf(obj, sizeof(obj), "key-%d", i);
		assert_int_equal(audit_append(a, &ev, &e), KH_OK);
		if (!in_place)
			audit_checkpoint_wait(a);
	}
	return a;
}

static struct audit *fresh_log(char *path, size_t pathsz)
{
	return fresh_log_ex(path, pathsz, true);
}

/* The file as lines (each without its newline). */
struct lines {
	char *buf;
	char *line[64];
	size_t len[64];
	size_t n;
};

static void lines_read(const char *path, struct lines *l)
{
	FILE *f = fopen(path, "r");
	long sz;
	size_t off = 0;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	sz = ftell(f);
	assert_true(sz > 0);
	rewind(f);
	l->buf = malloc((size_t)sz + 1);
	assert_non_null(l->buf);
	assert_int_equal(fread(l->buf, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	l->n = 0;
	while (off < (size_t)sz) {
		char *nl = memchr(l->buf + off, '\n', (size_t)sz - off);

		assert_non_null(nl);
		assert_true(l->n < 64);
		l->line[l->n] = l->buf + off;
		l->len[l->n] = (size_t)(nl - (l->buf + off));
		l->n++;
		off = (size_t)(nl - l->buf) + 1;
	}
}

/* Writes the lines back in the order idx[0..n) (1-based line numbers);
 * cut > 0 drops that many bytes from the end. */
static void lines_write(const char *path, const struct lines *l, const size_t *idx, size_t n, size_t cut)
{
	FILE *f = fopen(path, "w");
	char *out = malloc(64 * 4096);
	size_t i, o = 0;

	assert_non_null(f);
	assert_non_null(out);
	for (i = 0; i < n; i++) {
		memcpy(out + o, l->line[idx[i] - 1], l->len[idx[i] - 1]);
		o += l->len[idx[i] - 1];
		out[o++] = '\n';
	}
	assert_true(cut < o);
	assert_int_equal(fwrite(out, 1, o - cut, f), o - cut);
	fclose(f);
	free(out);
}

static bool is_checkpoint(const struct lines *l, size_t lineno)
{
	const char *p = l->line[lineno - 1];
	size_t n = l->len[lineno - 1];

	return n > 5 && memmem(p, n, " sig=", 5) != NULL;
}

/* What audit_show reads back, collected (strings copied). */
struct shown {
	struct {
		char principal[256], method[48], object[65];
		int code;
		uint64_t duration_us;
		bool checkpoint;
	} recs[LINES + 4];
	size_t n;
};

static enum kh_err shown_rec(void *arg, const struct audit_shown *x, struct kh_errbuf *e)
{
	struct shown *l = arg;

	(void)e;
	assert_true(l->n < LINES + 4);
	kh_strlcpy(l->recs[l->n].principal, x->ev.principal, sizeof(l->recs[l->n].principal));
	kh_strlcpy(l->recs[l->n].method, x->ev.method, sizeof(l->recs[l->n].method));
	kh_strlcpy(l->recs[l->n].object, x->ev.object != NULL ? x->ev.object : "", sizeof(l->recs[l->n].object));
	l->recs[l->n].code = x->ev.code;
	l->recs[l->n].duration_us = x->ev.duration_us;
	l->recs[l->n].checkpoint = x->checkpoint;
	l->n++;
	return KH_OK;
}

static void verify(struct audit *a, struct audit_verdict *v)
{
	struct kh_errbuf e = { 0 };

	memset(v, 0xaa, sizeof(*v));
	assert_int_equal(audit_verify(a, v, &e), KH_OK);
}

static void expect_bad(struct audit *a, uint64_t seq, uint64_t line, const char *reason)
{
	struct audit_verdict v;

	verify(a, &v);
	if (v.ok || v.bad_seq != seq || v.bad_line != line || strstr(v.reason, reason) == NULL)
		print_error("verify: ok=%d bad_seq=%llu bad_line=%llu reason '%s'; want record %llu line %llu '%s'\n",
			    v.ok, (unsigned long long)v.bad_seq, (unsigned long long)v.bad_line, v.reason,
			    (unsigned long long)seq, (unsigned long long)line, reason);
	assert_false(v.ok);
	assert_int_equal(v.bad_seq, seq);
	assert_int_equal(v.bad_line, line);
	assert_non_null(strstr(v.reason, reason));
}

static void test_chain_ok(void **state)
{
	char path[128];
	struct audit *a;
	struct audit_verdict v;
	struct lines l;
	struct shown recs;
	uint64_t next_seq = 1;
	bool more = true;
	struct kh_errbuf e = { 0 };
	size_t i, ck = 0;

	(void)state;
	a = fresh_log(path, sizeof(path));
	assert_true(audit_healthy(a));
	assert_string_equal(audit_key_name(a), "audit-test-key");
	verify(a, &v);
	assert_true(v.ok);
	assert_int_equal(v.records, LINES);
	assert_int_equal(v.checkpoints, 2);
	assert_int_equal(v.last_checkpoint_seq, 10);
	assert_int_equal(v.unsigned_tail, 3);
	assert_int_equal(strlen(v.key_fp), 64);

	/* The file: one record per line, numbered from 1, checkpoints at 5, 10. */
	lines_read(path, &l);
	assert_int_equal(l.n, LINES);
	for (i = 1; i <= l.n; i++) {
		char want[32];
		int n = snprintf(want, sizeof(want), "v1 seq=%zu ", i);

		assert_memory_equal(l.line[i - 1], want, (size_t)n);
		ck += is_checkpoint(&l, i);
	}
	assert_int_equal(ck, 2);
	assert_true(is_checkpoint(&l, 5));
	assert_true(is_checkpoint(&l, 10));
	/* Record 1 starts the chain with 64 zeros. */
	assert_non_null(memmem(l.line[0], l.len[0], " prev=0000000000000000000000000000000000000000000000000000000000000000", 70));
	free(l.buf);

	/* audit_show reads the same records back. */
	memset(&recs, 0, sizeof(recs));
	assert_int_equal(audit_show(a, 0, 0, 0, shown_rec, &recs, &next_seq, &more, &e), KH_OK);
	assert_false(more);
	assert_true(next_seq == 0);
	assert_int_equal(recs.n, LINES);
	assert_string_equal(recs.recs[0].method, "Start");
	assert_string_equal(recs.recs[1].principal, "uid:1000");
	assert_string_equal(recs.recs[1].method, "Sign");
	assert_string_equal(recs.recs[1].object, "key-0");
	assert_int_equal(recs.recs[1].duration_us, 10);
	assert_int_equal(recs.recs[4].checkpoint, true);
	assert_int_equal(recs.recs[5].code, KH_E_NOT_FOUND); /* event 3 */

	/* Close (Stop + checkpoint) and reopen (Start): the chain continues. */
	audit_close(a);
	a = log_open(path, true);
	verify(a, &v);
	assert_true(v.ok);
	assert_int_equal(v.records, LINES + 3);
	assert_int_equal(v.checkpoints, 3);
	audit_close(a);
}

static void test_changed_byte(void **state)
{
	char path[128];
	struct audit *a;
	struct lines l;
	size_t idx[LINES], i;
	char *obj;

	(void)state;
	a = fresh_log(path, sizeof(path));
	lines_read(path, &l);
	/* Record 3 is "obj=key-1": make it key-9. */
	obj = memmem(l.line[2], l.len[2], " obj=key-1 ", 11);
	assert_non_null(obj);
	obj[9] = '9';
	for (i = 0; i < LINES; i++)
		idx[i] = i + 1;
	lines_write(path, &l, idx, LINES, 0);
	expect_bad(a, 3, 3, "record 3 was altered");
	free(l.buf);
	audit_close(a);
}

static void test_changed_first_and_last(void **state)
{
	char path[128];
	struct audit *a;
	struct lines l;
	size_t idx[LINES], i;
	char *p;

	(void)state;
	for (i = 0; i < LINES; i++)
		idx[i] = i + 1;
	/* The first record. */
	a = fresh_log(path, sizeof(path));
	lines_read(path, &l);
	p = memmem(l.line[0], l.len[0], " method=Start ", 14);
	assert_non_null(p);
	p[8] = 's';
	lines_write(path, &l, idx, LINES, 0);
	expect_bad(a, 1, 1, "record 1 was altered");
	free(l.buf);
	audit_close(a);
	/* The last record: nothing after it holds its hash, but the head this
	 * process wrote does. */
	a = fresh_log(path, sizeof(path));
	lines_read(path, &l);
	p = memmem(l.line[LINES - 1], l.len[LINES - 1], " dur_us=19 ", 11);
	assert_non_null(p);
	p[9] = '8';
	lines_write(path, &l, idx, LINES, 0);
	expect_bad(a, LINES, LINES, "is not the one keyholdd wrote");
	free(l.buf);
	audit_close(a);
}

static void test_changed_checkpoint(void **state)
{
	char path[128];
	struct audit *a;
	struct lines l;
	size_t idx[LINES], i;
	char *p;

	(void)state;
	a = fresh_log(path, sizeof(path));
	lines_read(path, &l);
	assert_true(is_checkpoint(&l, 10));
	/* A signed field of checkpoint 10: the signature no longer verifies. */
	p = memmem(l.line[9], l.len[9], " dur_us=0 ", 10);
	assert_non_null(p);
	p[8] = '1';
	for (i = 0; i < LINES; i++)
		idx[i] = i + 1;
	lines_write(path, &l, idx, LINES, 0);
	expect_bad(a, 10, 10, "checkpoint record 10: the signature does not verify");
	free(l.buf);
	audit_close(a);
}

static void test_deleted_line(void **state)
{
	char path[128];
	struct audit *a;
	struct lines l;
	size_t idx[LINES - 1], i, o = 0;

	(void)state;
	a = fresh_log(path, sizeof(path));
	lines_read(path, &l);
	for (i = 1; i <= LINES; i++)
		if (i != 7)
			idx[o++] = i;
	lines_write(path, &l, idx, o, 0);
	expect_bad(a, 7, 7, "record 7 is missing");
	free(l.buf);
	audit_close(a);
}

static void test_swapped_lines(void **state)
{
	char path[128];
	struct audit *a;
	struct lines l;
	size_t idx[LINES], i;

	(void)state;
	a = fresh_log(path, sizeof(path));
	lines_read(path, &l);
	for (i = 0; i < LINES; i++)
		idx[i] = i + 1;
	idx[7] = 9; /* lines 8 and 9 swapped */
	idx[8] = 8;
	lines_write(path, &l, idx, LINES, 0);
	/* Line 8 holds record 9: record 8 is not where it belongs. */
	expect_bad(a, 8, 8, "record 8 is missing: line 8 holds record 9");
	free(l.buf);
	audit_close(a);
}

static void test_replayed_line(void **state)
{
	char path[128];
	struct audit *a;
	struct lines l;
	size_t idx[LINES], i;

	(void)state;
	a = fresh_log(path, sizeof(path));
	lines_read(path, &l);
	for (i = 0; i < LINES; i++)
		idx[i] = i + 1;
	idx[4] = 4; /* record 4 again where record 5 was */
	lines_write(path, &l, idx, LINES, 0);
	expect_bad(a, 5, 5, "records out of order: line 5 holds record 4");
	free(l.buf);
	audit_close(a);
}

static void test_truncated_tail(void **state)
{
	char path[128];
	struct audit *a;
	struct lines l;
	size_t idx[LINES], i;

	(void)state;
	for (i = 0; i < LINES; i++)
		idx[i] = i + 1;
	/* The last three records cut off. */
	a = fresh_log(path, sizeof(path));
	lines_read(path, &l);
	lines_write(path, &l, idx, LINES - 3, 0);
	expect_bad(a, LINES - 2, LINES - 2, "records 11 to 13 are missing from the end of the log");
	free(l.buf);
	audit_close(a);
	/* A torn last line (half a record). */
	a = fresh_log(path, sizeof(path));
	lines_read(path, &l);
	lines_write(path, &l, idx, LINES, l.len[LINES - 1] / 2);
	expect_bad(a, LINES, LINES, "line 13 is not an audit record");
	free(l.buf);
	audit_close(a);
}

/* Sets line i's prev= to the SHA-256 of line i-1 for every i >= from (as
 * someone rewriting the file without the token's key could). */
static void rechain(struct lines *l, size_t from)
{
	size_t i;

	for (i = from; i <= l->n; i++) {
		unsigned char dig[32];
		unsigned dl = 32;
		char *p = memmem(l->line[i - 1], l->len[i - 1], " prev=", 6);
		char hx[65];

		assert_non_null(p);
		assert_int_equal(EVP_Digest(l->line[i - 2], l->len[i - 2], dig, &dl, EVP_sha256(), NULL), 1);
		kh_hex(dig, 32, hx, sizeof(hx));
		memcpy(p + 6, hx, 64);
	}
}

static void *append_many(void *arg)
{
	struct audit *a = arg;
	struct kh_errbuf e = { 0 };
	int i;

	for (i = 0; i < 2000; i++) {
		struct audit_event ev = { "uid:1001", "Sign", "k", KH_OK, 5, 1 };

		if (audit_append(a, &ev, &e) != KH_OK)
			return (void *)(uintptr_t)1; /* failed */
	}
	return NULL;
}

/* The checkpoint thread: waited for after every record, the lines fall
 * where checkpoints in place put them, each naming the record before it;
 * under two appending threads the log stays intact. */
static void test_checkpoint_thread(void **state)
{
	char path[128], want[96];
	struct audit *a;
	struct audit_verdict v;
	struct lines l;
	pthread_t t[2];
	void *res;
	size_t i;

	(void)state;
	a = fresh_log_ex(path, sizeof(path), false);
	verify(a, &v);
	assert_true(v.ok);
	assert_int_equal(v.records, LINES);
	assert_int_equal(v.checkpoints, 2);
	assert_int_equal(v.last_checkpoint_seq, 10);
	lines_read(path, &l);
	assert_int_equal(l.n, LINES);
	assert_true(is_checkpoint(&l, 5));
	assert_true(is_checkpoint(&l, 10));
	snprintf(want, sizeof(want), " at=4 athash=");
	assert_non_null(memmem(l.line[4], l.len[4], want, strlen(want)));
	snprintf(want, sizeof(want), " at=9 athash=");
	assert_non_null(memmem(l.line[9], l.len[9], want, strlen(want)));
	free(l.buf);

	/* Two threads, no waiting: checkpoints land wherever the chain is. */
	assert_int_equal(pthread_create(&t[0], NULL, append_many, a), 0);
	assert_int_equal(pthread_create(&t[1], NULL, append_many, a), 0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], &res), 0);
		assert_null(res);
	}
	audit_checkpoint_wait(a);
	verify(a, &v);
	if (!v.ok)
		print_error("verify: %s\n", v.reason);
	assert_true(v.ok);
	assert_int_equal(v.records, LINES + 4000 + v.checkpoints - 2);
	/* At least one while they ran or after (the last one is waited for). */
	assert_true(v.checkpoints >= 3);
	audit_close(a);
	/* Reopened after the clean stop: intact, and one more checkpoint. */
	a = log_open(path, false);
	verify(a, &v);
	assert_true(v.ok);
	assert_true(v.checkpoints >= 3);
	audit_close(a);
}

/* A log rewritten without the key: record 3 changed and every later prev
 * recomputed keeps the chain whole, but checkpoint 5 signed record 4 as it
 * was. And checkpoint 5 made to name record 3 (with record 3's hash) no
 * longer verifies: the signature covers the record it names. */
static void test_checkpoint_thread_rewritten(void **state)
{
	char path[128], hx[65];
	struct audit *a;
	struct lines l;
	size_t idx[LINES], i;
	unsigned char dig[32];
	unsigned dl = 32;
	char *p;

	(void)state;
	for (i = 0; i < LINES; i++)
		idx[i] = i + 1;
	a = fresh_log_ex(path, sizeof(path), false);
	lines_read(path, &l);
	p = memmem(l.line[2], l.len[2], " obj=key-1 ", 11);
	assert_non_null(p);
	p[9] = '9';
	rechain(&l, 4);
	lines_write(path, &l, idx, LINES, 0);
	expect_bad(a, 5, 5, "checkpoint record 5 signed record 4 as another line");
	free(l.buf);
	audit_close(a);

	a = fresh_log_ex(path, sizeof(path), false);
	lines_read(path, &l);
	p = memmem(l.line[4], l.len[4], " at=4 athash=", 13);
	assert_non_null(p);
	p[4] = '3';
	assert_int_equal(EVP_Digest(l.line[2], l.len[2], dig, &dl, EVP_sha256(), NULL), 1);
	kh_hex(dig, 32, hx, sizeof(hx));
	memcpy(p + 13, hx, 64);
	rechain(&l, 6);
	lines_write(path, &l, idx, LINES, 0);
	expect_bad(a, 5, 5, "checkpoint record 5: the signature does not verify");
	free(l.buf);
	audit_close(a);
}

/* The sequence number the token's anchor names (0: none). */
static unsigned long long anchor_seq(void)
{
	char buf[256], *end = NULL;
	size_t len = 0;
	unsigned long long seq;
	struct kh_errbuf e = { 0 };

	if (hsm_data_read(hsm, "audit-test-key-anchor", (uint8_t *)buf, sizeof(buf) - 1, &len, &e) != KH_OK)
		return 0;
	buf[len] = '\0';
	assert_true(strncmp(buf, "v1 seq=", 7) == 0);
	seq = strtoull(buf + 7, &end, 10);
	assert_true(end != buf + 7 && *end == ' ');
	return seq;
}

/* [audit] anchor_interval: the thread's first checkpoint moves the anchor
 * at once, one signed sooner than the interval after it is kept and moved
 * to once the interval is over; a clean stop anchors its own. */
static void test_anchor_interval(void **state)
{
	char path[128], obj[16];
	struct audit *a;
	struct kh_errbuf e = { 0 };
	uint64_t t0 = 0, i;
	unsigned long long seq;
	const unsigned interval_s = 3;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit-%d.log", dir, ++log_no);
	assert_int_equal(hsm_data_delete(hsm, "audit-test-key-anchor", &e), KH_OK);
	a = log_open_ex(path, false, interval_s);
	/* Start (1) and records 2-4: checkpoint 5 signs record 4. */
	for (i = 0; i < 2 * CKPT_EVERY - 1; i++) {
		struct audit_event ev = { "uid:1000", "Sign", obj, KH_OK, 10, 1 };

		snprintf(obj, sizeof(obj), "key-%u", (unsigned)i);
		assert_int_equal(audit_append(a, &ev, &e), KH_OK);
		if (i == CKPT_EVERY - 2) {
			/* The anchor moves after this: the time since t0 is at
			 * least the time since it moved. */
			t0 = kh_now_mono_us();
			audit_checkpoint_wait(a);
			assert_int_equal(anchor_seq(), 5);
		}
	}
	/* Records 6-9 and checkpoint 10: on disk, not yet the anchor. */
	audit_checkpoint_wait(a);
	seq = anchor_seq();
	if (kh_now_mono_us() - t0 < (uint64_t)interval_s * 1000000u)
		assert_int_equal(seq, 5);
	for (i = 0; i < 100 * (interval_s + 3) && seq != 10; i++) {
		usleep(10000);
		seq = anchor_seq();
	}
	assert_int_equal(seq, 10);
	/* The clean stop: Stop (11) and its checkpoint (12), anchored. */
	audit_close(a);
	assert_int_equal(anchor_seq(), 12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_ok),
		cmocka_unit_test(test_changed_byte),
		cmocka_unit_test(test_changed_first_and_last),
		cmocka_unit_test(test_changed_checkpoint),
		cmocka_unit_test(test_deleted_line),
		cmocka_unit_test(test_swapped_lines),
		cmocka_unit_test(test_replayed_line),
		cmocka_unit_test(test_truncated_tail),
		cmocka_unit_test(test_checkpoint_thread),
		cmocka_unit_test(test_checkpoint_thread_rewritten),
		cmocka_unit_test(test_anchor_interval),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
