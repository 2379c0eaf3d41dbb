/* audit.c: the audit log: one text line per record in an append-only file,
 * each carrying the SHA-256 of the line before it; checkpoint lines signed
 * with a token key (ECDSA P-256, CKM_ECDSA through hsm_sign).
 *
 * Line (fields in this order, values %XX-escaped outside 0x21..0x7e):
 *   v1 seq=N ts=RFC3339 who=P method=M obj=O code=C dur_us=D count=K prev=H
 * and on checkpoints also " keyfp=F sig=S": S signs SHA-256 of the line up
 * to (excluding) " sig=". H is the SHA-256 of the previous line (without
 * its newline); the first record's H is 64 zeros.
 *
 * The periodic checkpoints are signed off the request path, by the
 * checkpoint thread, and name the record they sign: " keyfp=F at=M
 * athash=A sig=S" where A is the hash of record M's line (the chain up to
 * M) and S signs SHA-256 of "keyhold-audit-checkpoint at=M athash=A
 * keyfp=F". The thread takes M and A, signs without the log's lock (the
 * token may take milliseconds: requests keep being written), then writes
 * the line wherever the chain is by then (M is at most AUDIT_CKPT_LAG
 * records before it) and moves the anchor to it after a sync. Checkpoints
 * that end or start a file, follow a repair or stop keyholdd are signed in
 * place, over their own line, as before.
 *
 * Durability (fsync policy): every record is written with one write(2)
 * on an O_APPEND descriptor before the request is answered, so it survives
 * a crash of keyholdd at once. With sync = interval (default) the file is
 * fdatasync'ed at every checkpoint and at least once a second while
 * records arrive: a power loss can lose the last second. With sync =
 * always every record is fdatasync'ed before the answer: either here
 * (fdatasync under the lock), or, for a request whose caller deferred its
 * answer (audit_defer_begin, audit_when_durable), by the commit thread,
 * whose one fdatasync covers every record written meanwhile (group
 * commit) while the workers go on. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "kh_log.h"
#include "kh_util.h"
#include "store/store.h"

#define AUDIT_LINE_MAX 4096
#define AUDIT_PAGE_DEFAULT 1000
#define AUDIT_PAGE_MAX 4096
#define AUDIT_SYNC_INTERVAL_US 1000000u
/* Room kept allocated past the end of the log (fallocate KEEP_SIZE) before
 * a state change is made, so that its result record fits. */
#define AUDIT_RESERVE (2 * AUDIT_LINE_MAX)
/* A failed log is retried at most this often. */
#define AUDIT_RETRY_US 200000u
/* Refusals: one record per principal per window, with a count. */
#define AUDIT_REFUSAL_WINDOW_US 1000000u
#define AUDIT_REFUSAL_SLOTS 64
/* The token's anchor object is "<audit key>-anchor": "keyhold-audit-anchor"
 * for the default key; on a cluster (anchor_per_node: the PostgreSQL
 * backend) "<audit key>-anchor-<node>", so that the nodes, which share the
 * token and the audit key, keep one each (docs/CLUSTER.md). The state
 * database's copy is keyed the same way (by node, "" for one). A node
 * that ran alone before starts its cluster life without an anchor: its
 * state moves to a new database anyway. */
#define AUDIT_ANCHOR_SUFFIX "-anchor"
#define AUDIT_ANCHOR_MAX 256
/* A checkpoint signed off the request path is written at most this many
 * records after the one it signs (else it is dropped and the next record's
 * thread signs one in place); verify keeps more line hashes than that to
 * check it. */
#define AUDIT_CKPT_LAG 8000
#define AUDIT_HASH_RING 8192
/* The token spends at most a tenth of its time on checkpoints: the next
 * one starts no sooner than this many times the last one's signature
 * time after it (a TPM: 3-10 ms a signature). */
#define AUDIT_CKPT_SPACING 9
/* And no sooner than this after the last one (microseconds): at most ten
 * a second, however fast the token signs. At thousands of records a
 * second a checkpoint every checkpoint_records records woke the thread
 * and used the token tens of times a second, and each time moved the
 * service's threads about the CPUs (docs/PERFORMANCE.md). */
#define AUDIT_CKPT_MIN_GAP_US 100000u
/* MESSAGE_ID of the journal copies of audit records ([audit] journal). */
#define AUDIT_JOURNAL_MESSAGE_ID "4b3c1e0a9d7f4e2a8c5b6d1f0e9a7c31"

/* The last checkpoint, kept outside the log (a token data object and the
 * state database): where it ends, its sequence number and the hash of its
 * line; clean when keyholdd stopped right after it. */
struct audit_anchor {
	uint64_t seq;
	uint64_t off;
	uint8_t hash[32];
	bool clean;
};

/* Refusals of one principal being counted (not yet written). */
struct audit_refusal {
	char who[KH_PRINCIPAL_MAX + 1];
	char method[48];
	char obj[KH_NAME_MAX + 1];
	enum kh_err code;
	uint64_t window_start_us;     /* 0: slot unused */
	uint64_t pending;             /* refused since the last record */
};

/* Where the last verify left a fully verified prefix of the log. */
struct audit_vcache {
	bool valid;
	off_t off;                    /* end of the last checkpoint line verified */
	uint8_t prefix[32];           /* SHA-256 of bytes [0, off) */
	uint64_t expect, lineno, records, checkpoints, last_checkpoint_seq; /* records, checkpoints: in the log */
	uint8_t prev[32];
	uint64_t retained_upto, start_seq;
	/* The pass's state where the log began (after the rotated files):
	 * the cache holds only if it is the same again. */
	uint64_t link_expect;
	uint8_t link_prev[32];
	bool link_adopt;
};

struct audit {
	pthread_mutex_t lock;
	int fd;
	char *path;
	struct hsm *h;
	char key[KH_NAME_MAX + 1];
	char anchor_label[2 * KH_NAME_MAX + sizeof(AUDIT_ANCHOR_SUFFIX) + 1];
	char anchor_node[KH_NAME_MAX + 1]; /* the database copy's key: node, or "" */
	EVP_PKEY *pub;                /* the checkpoint key's public half */
	char keyfp[65];               /* hex SHA-256 of its SPKI */
	unsigned ckpt_records, ckpt_interval_s;
	uint64_t anchor_interval_us;  /* [audit] anchor_interval (struct audit_anchor_later) */
	bool sync_always;

	uint64_t next_seq;
	uint8_t head[32];             /* hash of the last line written */
	uint64_t last_ts_us;
	int64_t ts_sec;               /* the second ts_base spells (-1: none yet) */
	char ts_base[24];             /* "YYYY-MM-DDTHH:MM:SS" of ts_sec */
	uint64_t since_ckpt;          /* records after the last checkpoint */
	uint64_t last_ckpt_mono_us;
	uint64_t last_sync_mono_us;
	bool dirty;                   /* written, not yet synced */
	off_t size;                   /* bytes of whole lines this process knows */
	bool failed;
	uint64_t last_retry_mono_us;

	struct store *st;             /* the anchor's copy in the state database */
	char node[KH_NAME_MAX + 1];   /* "": checkpoints not recorded in the database */
	uint64_t db_prev_ckpt;        /* the last checkpoint's seq, for the next database row (lock) */
	bool tamper_refuse;
	struct audit_anchor anchor;
	bool have_anchor;
	/* The anchor's copies and the checkpoint rows are written under
	 * anchor_lock (taken after lock, or alone by the checkpoint thread):
	 * in checkpoint order, never an older over a newer one. */
	pthread_mutex_t anchor_lock;
	uint64_t anchor_stored_seq;   /* anchor_lock */
	uint64_t last_ckpt_seq;       /* the last checkpoint line written (lock) */
	/* The checkpoint thread (docs/SECURITY.md), all under lock:
	 * ckpt_pending is set when a checkpoint is due and none is being
	 * made (ckpt_busy); the thread clears it when it takes the chain
	 * head, and sets it again after one when another is due by then.
	 * ckpt_gen counts the ones it finished. ckpt_cond wakes it,
	 * ckpt_idle its waiters. ckpt_job: the checkpoint being made.
	 * ckpt_now: the next record's thread signs one in place (the chain
	 * outran the thread). */
	pthread_t ckpt_thread;
	bool ckpt_running, ckpt_stop, ckpt_pending, ckpt_busy, ckpt_inline, ckpt_now;
	uint64_t ckpt_gen;
	pthread_cond_t ckpt_cond, ckpt_idle;
	struct audit_ckpt_job *ckpt_job;

	struct audit_refusal refusals[AUDIT_REFUSAL_SLOTS];
	_Atomic uint64_t n_written, n_checkpoints; /* by this process (audit_counts) */

	pthread_mutex_t verify_lock;  /* one verify at a time */
	struct audit_vcache vcache;   /* under lock */

	char *dir;                    /* the log's directory */
	const char *base;             /* its file name (in path) */
	uint64_t rotate_size, rotate_age_s;
	unsigned rotate_keep;
	int64_t (*now_s)(void);
	/* Group commit (sync = always, audit_when_durable): written counts
	 * lines (under lock), durable those known synced. */
	uint64_t written;
	_Atomic uint64_t durable;
	pthread_t commit_thread;
	bool commit_running;
	pthread_mutex_t cq_lock;
	pthread_cond_t cq_cond, cq_idle;
	struct audit_waiter *cq_head, *cq_tail;
	bool cq_stop, cq_busy;
	uint64_t file_first_seq;      /* the first record of the current file */
	uint64_t file_start_us;       /* and its time */
	uint64_t rotate_retry_mono_us;
	char crash_at[32];            /* KEYHOLD_TEST_AUDIT_CRASH_AT */
	_Atomic bool crash_commit;    /* "group-commit": a Sign's record awaits the commit thread */
	bool journal;                 /* a copy of every line to the journal */
};

/* A parsed line. */
struct audit_rec {
	uint64_t seq;
	uint64_t time_us;
	char who[KH_PRINCIPAL_MAX + 1];
	char method[48];
	char obj[KH_NAME_MAX + 1];
	int code;
	uint64_t dur_us, count;
	uint8_t prev[32];
	bool checkpoint;
	char keyfp[65];
	bool at_set;                  /* a checkpoint signed off the request path: */
	uint64_t at;                  /* the record it signs */
	uint8_t athash[32];           /* and that record's line hash */
	uint8_t sig[160];
	size_t sig_len;
	size_t signed_len;            /* bytes of the line the signature covers */
};

/* ---- encoding ---- */

static size_t audit_esc(char *out, size_t outsz, const char *in)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	if (in == NULL || in[0] == '\0')
		in = "-";
	for (; *in != '\0' && n + 4 < outsz; in++) {
		unsigned char c = (unsigned char)*in;

		if (c <= 0x20 || c >= 0x7f || c == '%') {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return n;
}

static bool audit_unesc(const char *in, size_t len, char *out, size_t outsz)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		char c = in[i];

		if (n + 1 >= outsz)
			return false;
		if (c == '%') {
			uint8_t b;
			size_t bl;
			char hx[3];

			if (len - i < 3)
				return false;
			hx[0] = in[i + 1];
			hx[1] = in[i + 2];
			hx[2] = '\0';
			if (kh_unhex(hx, &b, 1, &bl) != 0 || bl != 1 || b == 0)
				return false;
			out[n++] = (char)b;
			i += 2;
		} else {
			out[n++] = c;
		}
	}
	out[n] = '\0';
	return true;
}

static bool audit_parse_ts(const char *s, size_t len, uint64_t *us)
{
	char buf[40];
	struct tm tm;
	const char *p;
	uint64_t frac;
	time_t t;

	if (len != 27 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(&tm, 0, sizeof(tm));
	p = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL || *p != '.' || buf[26] != 'Z')
		return false;
	buf[26] = '\0';
	if (kh_parse_u64(p + 1, 0, 999999, &frac) != 0)
		return false;
	t = timegm(&tm);
	if (t < 0)
		return false;
	*us = (uint64_t)t * 1000000u + frac;
	return true;
}

/* SHA-256 fetched once (EVP_sha256() fetches at every digest; the same
 * default library context and properties). */
static EVP_MD *audit_md;
static pthread_once_t audit_md_once = PTHREAD_ONCE_INIT;

static void audit_md_fetch(void)
{
	audit_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void audit_sha256(const void *d, size_t n, uint8_t out[32])
{
	unsigned len = 32;

	pthread_once(&audit_md_once, audit_md_fetch);
	if (EVP_Digest(d, n, out, &len, audit_md != NULL ? audit_md : EVP_sha256(), NULL) != 1)
		memset(out, 0, 32);
}

/* What a checkpoint signed off the request path signs: SHA-256 of
 * "keyhold-audit-checkpoint at=M athash=HEX keyfp=HEX". */
static void audit_at_digest(uint64_t at, const uint8_t athash[32], const char *keyfp, uint8_t out[32])
{
	char text[256], hx[65];
	int n;

	kh_hex(athash, 32, hx, sizeof(hx));
	n = snprintf(text, sizeof(text), "keyhold-audit-checkpoint at=%llu athash=%s keyfp=%.64s", (unsigned long long)at,
		     hx, keyfp);
	/* At most 28 + 20 + 8 + 64 + 7 + 64 bytes: it always fits. */
	audit_sha256(text, n > 0 && (size_t)n < sizeof(text) ? (size_t)n : 0, out);
}

/* Parses one line (without its newline). */
static bool audit_parse(const char *line, size_t len, struct audit_rec *r)
{
	static const char *const keys[] = { "seq", "ts", "who", "method", "obj", "code", "dur_us", "count", "prev" };
	/* A checkpoint's fields after prev, in this order; at and athash
	 * (both or neither) only on one signed off the request path. */
	static const char *const tail[] = { "keyfp", "at", "athash", "sig" };
	const size_t nkeys = sizeof(keys) / sizeof(keys[0]);
	size_t off = 0, k, t = 0;
	const char *sigpos;

	memset(r, 0, sizeof(*r));
	if (len < 3 || memcmp(line, "v1 ", 3) != 0)
		return false;
	off = 3;
	for (k = 0;; k++) {
		const char *f = line + off, *eq, *end;
		size_t klen, vlen;
		char v[KH_PRINCIPAL_MAX + 1];
		const char *name;

		if (off >= len) {
			if (k == nkeys || t == sizeof(tail) / sizeof(tail[0]))
				break; /* an ordinary record ends after prev, a checkpoint after sig */
			return false;
		}
		end = memchr(f, ' ', len - off);
		if (end == NULL)
			end = line + len;
		eq = memchr(f, '=', (size_t)(end - f));
		if (eq == NULL)
			return false;
		klen = (size_t)(eq - f);
		vlen = (size_t)(end - eq - 1);
		if (k < nkeys) {
			name = keys[k];
		} else {
			if (t == 1 && klen == 3 && memcmp(f, "sig", 3) == 0)
				t = 3; /* signed over its own line: no at, athash */
			if (t >= sizeof(tail) / sizeof(tail[0]))
				return false; /* trailing fields */
			name = tail[t++];
		}
		if (klen != strlen(name) || memcmp(f, name, klen) != 0 || vlen == 0)
			return false;
		if (strcmp(name, "ts") == 0) {
			if (!audit_parse_ts(eq + 1, vlen, &r->time_us))
				return false;
		} else if (strcmp(name, "prev") == 0 || strcmp(name, "sig") == 0 || strcmp(name, "athash") == 0) {
			char hx[2 * sizeof(r->sig) + 1];
			size_t bl = 0;

			if (vlen >= sizeof(hx))
				return false;
			memcpy(hx, eq + 1, vlen);
			hx[vlen] = '\0';
			if (name[0] == 'p' || name[0] == 'a') {
				uint8_t *to = name[0] == 'p' ? r->prev : r->athash;

				if (vlen != 64 || kh_unhex(hx, to, 32, &bl) != 0 || bl != 32)
					return false;
				r->at_set = name[0] == 'a';
			} else {
				if (kh_unhex(hx, r->sig, sizeof(r->sig), &r->sig_len) != 0 || r->sig_len == 0)
					return false;
			}
		} else {
			if (!audit_unesc(eq + 1, vlen, v, sizeof(v)))
				return false;
			if (strcmp(name, "seq") == 0 || strcmp(name, "dur_us") == 0 || strcmp(name, "count") == 0 ||
			    strcmp(name, "at") == 0) {
				uint64_t n;

				if (kh_parse_u64(v, 0, UINT64_MAX, &n) != 0)
					return false;
				if (name[0] == 's')
					r->seq = n;
				else if (name[0] == 'd')
					r->dur_us = n;
				else if (name[0] == 'a')
					r->at = n;
				else
					r->count = n;
			} else if (strcmp(name, "who") == 0) {
				kh_strlcpy(r->who, v, sizeof(r->who));
			} else if (strcmp(name, "method") == 0) {
				if (!kh_strlcpy(r->method, v, sizeof(r->method)))
					return false;
			} else if (strcmp(name, "obj") == 0) {
				if (!kh_strlcpy(r->obj, strcmp(v, "-") == 0 ? "" : v, sizeof(r->obj)))
					return false;
			} else if (strcmp(name, "code") == 0) {
				r->code = kh_err_from_name(v);
				if (r->code == KH_E_UNKNOWN && strcmp(v, "UNKNOWN") != 0)
					return false;
			} else if (strcmp(name, "keyfp") == 0) {
				if (vlen != 64)
					return false;
				kh_strlcpy(r->keyfp, v, sizeof(r->keyfp));
			}
		}
		off = (size_t)(end - line) + 1;
	}
	if (off < len)
		return false; /* trailing fields */
	sigpos = r->sig_len > 0 ? memmem(line, len, " sig=", 5) : NULL;
	if (r->keyfp[0] != '\0' && (r->sig_len == 0 || sigpos == NULL))
		return false;
	r->checkpoint = r->sig_len > 0;
	r->signed_len = sigpos != NULL ? (size_t)(sigpos - line) : 0;
	if (r->at_set && (r->at == 0 || r->at >= r->seq))
		return false; /* it signs an earlier record */
	return r->seq > 0;
}

bool audit_line_parse(const char *line, size_t len, uint64_t *seq, bool *checkpoint, uint64_t *at)
{
	struct audit_rec r;

	if (!audit_parse(line, len, &r))
		return false;
	*seq = r.seq;
	*checkpoint = r.checkpoint;
	*at = r.at_set ? r.at : 0;
	return true;
}

/* ---- writing ---- */

/* The calling thread's records of sync = always are synced by the commit
 * thread (audit_defer_begin); the last one's number. */
static _Thread_local bool audit_tl_defer;
static _Thread_local uint64_t audit_tl_seq;

static void audit_fail(struct audit *a, const char *what)
{
	if (!a->failed)
		log_err("audit log %s: %s failed: %s; refusing requests that need a record", a->path, what,
			strerror(errno));
	a->failed = true;
	a->last_retry_mono_us = kh_now_mono_us();
}

/* The RPCs that change keyholdd's state or the token's (keys, grants,
 * trustpoints, trust stores, CRLs, policies, renewal). Their record is
 * written before they run (a "begin:" record) and synced before the
 * answer. */
static bool audit_method_changes_state(const char *m)
{
	static const char *const names[] = {
		"GenerateKey", "DeleteKey", "GrantKey", "RevokeKeyGrant", "CreateTrustpoint", "DeleteTrustpoint",
		"AuthenticateTrustpoint", "EnrollTrustpoint", "ImportCertificate", "RegenerateTrustpoint",
		"TruststoreAdd", "TruststoreRemove", "ImportCrl", "SetTrustpointPolicy", "SetTruststorePolicy",
		"RunMonitor",
	};
	size_t i;

	for (i = 0; m != NULL && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(m, names[i]) == 0)
			return true;
	return false;
}

/* Writes one whole line (with its newline) whose hash is head; on success
 * the chain moves on (head, next_seq, size) even if the sync then fails. A
 * short write leaves a torn fragment past a->size for audit_recover. */
static enum kh_err audit_write_line(struct audit *a, const struct audit_event *ev, const char *line, size_t len,
				    const uint8_t head[32], bool sync, struct kh_errbuf *e)
{
	ssize_t n;

	do
		n = write(a->fd, line, len);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len) {
		if (n >= 0)
			errno = ENOSPC;
		audit_fail(a, "write");
		return kh_err_set(e, KH_E_UNAVAILABLE, "the audit log %s cannot be written: %s", a->path, strerror(errno));
	}
	a->size += (off_t)len;
	memcpy(a->head, head, 32);
	a->next_seq++;
	if (a->journal) {
		/* [audit] journal = yes: the same line to the journal, with the
		 * principal, method and object as fields (a copy: the file stays
		 * the record verify checks). */
		struct kh_log_fields f = { ev->method, ev->object, ev->principal, AUDIT_JOURNAL_MESSAGE_ID };

		kh_log_event(KH_LOG_INFO, "audit", &f, "%.*s", (int)(len - 1), line);
	}
	atomic_fetch_add(&a->n_written, 1);
	a->written++;
	a->dirty = true;
	if (sync || kh_now_mono_us() - a->last_sync_mono_us >= AUDIT_SYNC_INTERVAL_US) {
		if (fdatasync(a->fd) != 0) {
			audit_fail(a, "fdatasync");
			return kh_err_set(e, KH_E_UNAVAILABLE, "the audit log %s cannot be synced: %s", a->path,
					  strerror(errno));
		}
		a->dirty = false;
		a->last_sync_mono_us = kh_now_mono_us();
		atomic_store(&a->durable, a->written);
	}
	return KH_OK;
}

/* A record's line, built field by field: one is written for every
 * request, and formatting it with snprintf and strftime was a fifth of
 * keyholdd's own instructions per P-256 signature outside the token
 * (callgrind; docs/PERFORMANCE.md "The client's wait"). */
struct audit_out {
	char *p;
	size_t left;                  /* room for more, the NUL excluded */
	bool full;
};

static void audit_put(struct audit_out *o, const char *s, size_t n)
{
	if (n > o->left) {
		o->full = true;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
	o->left -= n;
}

static void audit_put_str(struct audit_out *o, const char *s)
{
	audit_put(o, s, strlen(s));
}

/* A string literal, its length counted by the compiler. */
#define AUDIT_PUT_LIT(o, lit) audit_put((o), "" lit, sizeof(lit) - 1)

static void audit_put_u64(struct audit_out *o, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);

	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	audit_put(o, d + i, sizeof(d) - i);
}

/* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" of us (UTC; audit_parse_ts reads it), the
 * date and time of day made once a second. */
static void audit_put_ts(struct audit *a, struct audit_out *o, uint64_t us)
{
	int64_t sec = (int64_t)(us / 1000000u);
	uint32_t frac = (uint32_t)(us % 1000000u);
	char f[8];
	int i;

	if (sec != a->ts_sec) {
		time_t t = (time_t)sec;
		struct tm tm;

		gmtime_r(&t, &tm);
		if (strftime(a->ts_base, sizeof(a->ts_base), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
			o->full = true;
			return;
		}
		a->ts_sec = sec;
	}
	audit_put_str(o, a->ts_base);
	f[0] = '.';
	for (i = 6; i >= 1; i--, frac /= 10)
		f[i] = (char)('0' + frac % 10);
	f[7] = 'Z';
	audit_put(o, f, sizeof(f));
}

/* Formats the fields up to prev= into buf (bufsz with the NUL); returns
 * the length, 0 when they do not fit. */
static size_t audit_format(struct audit *a, const struct audit_event *ev, char *buf, size_t bufsz)
{
	char who[3 * KH_PRINCIPAL_MAX + 4], method[3 * 48], obj[3 * KH_NAME_MAX + 4], prev[65];
	struct audit_out o = { buf, bufsz - 1, false };
	uint64_t now = (uint64_t)0;
	struct timespec t;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &t);
	now = (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
	if (now < a->last_ts_us)
		now = a->last_ts_us; /* the clock stepped back: keep order */
	a->last_ts_us = now;
	AUDIT_PUT_LIT(&o, "v1 seq=");
	audit_put_u64(&o, a->next_seq);
	AUDIT_PUT_LIT(&o, " ts=");
	audit_put_ts(a, &o, now);
	n = audit_esc(who, sizeof(who), ev->principal);
	AUDIT_PUT_LIT(&o, " who=");
	audit_put(&o, who, n);
	n = audit_esc(method, sizeof(method), ev->method);
	AUDIT_PUT_LIT(&o, " method=");
	audit_put(&o, method, n);
	n = audit_esc(obj, sizeof(obj), ev->object);
	AUDIT_PUT_LIT(&o, " obj=");
	audit_put(&o, obj, n);
	AUDIT_PUT_LIT(&o, " code=");
	audit_put_str(&o, kh_err_name(ev->code));
	AUDIT_PUT_LIT(&o, " dur_us=");
	audit_put_u64(&o, ev->duration_us);
	AUDIT_PUT_LIT(&o, " count=");
	audit_put_u64(&o, ev->count ? ev->count : 1);
	kh_hex(a->head, 32, prev, sizeof(prev));
	AUDIT_PUT_LIT(&o, " prev=");
	audit_put(&o, prev, sizeof(prev) - 1);
	if (o.full)
		return 0;
	*o.p = '\0';
	return (size_t)(o.p - buf);
}

static enum kh_err audit_recover_locked(struct audit *a);

static enum kh_err audit_write_event(struct audit *a, const struct audit_event *ev, bool sync, struct kh_errbuf *e)
{
	char line[AUDIT_LINE_MAX];
	uint8_t head[32];
	size_t len;
	int r;

	len = audit_format(a, ev, line, sizeof(line) - 1);
	if (len == 0)
		return kh_err_set(e, KH_E_INTERNAL, "audit record too long");
	audit_sha256(line, len, head);
	line[len++] = '\n';
	r = audit_write_line(a, ev, line, len, head, sync, e);
	if (r != KH_OK)
		return r;
	a->since_ckpt++;
	return KH_OK;
}

static enum kh_err audit_append_locked(struct audit *a, const struct audit_event *ev, struct kh_errbuf *e)
{
	if (a->failed && audit_recover_locked(a) != KH_OK)
		return kh_err_set(e, KH_E_UNAVAILABLE, "the audit log %s cannot be written; see keyholdd's log", a->path);
	bool changes = audit_method_changes_state(ev->method);
	int r;

	/* The result of a state change is durable before its answer; with
	 * sync = always every record is, through the commit thread when the
	 * caller holds its answer back (audit_when_durable). */
	if (a->sync_always && !changes && audit_tl_defer && a->commit_running) {
		r = audit_write_event(a, ev, false, e);
		if (r == KH_OK)
			audit_tl_seq = a->written;
#ifdef KEYHOLD_TESTING
		if (r == KH_OK && strcmp(a->crash_at, "group-commit") == 0 && strcmp(ev->method, "Sign") == 0)
			atomic_store(&a->crash_commit, true);
#endif
		return r;
	}
	return audit_write_event(a, ev, a->sync_always || changes, e);
}

static void audit_anchor_save(struct audit *a, bool clean);

/* Fault injection for KEYHOLD_TESTING builds only: KEYHOLD_TEST_AUDIT_CRASH_AT
 * names a point of the rotation where keyholdd kills itself. */
static void audit_crash_point(struct audit *a, const char *point)
{
#ifdef KEYHOLD_TESTING
	if (a->crash_at[0] != '\0' && strcmp(a->crash_at, point) == 0) {
		log_warn("KEYHOLD_TEST_AUDIT_CRASH_AT=%s: killing keyholdd with SIGKILL here", point);
		raise(SIGKILL);
		_exit(137);
	}
#else
	(void)a;
	(void)point;
#endif
}

/* The checkpoint seq (line, len bytes without the newline; the signature
 * starts at signed_len) also goes into the state database under this
 * node's name, naming the previous one (prev: the one before it in the
 * log, taken under a->lock when the line was written), so that verify
 * --cluster sees every node's and a missing one. The file stays the
 * record: a database failure is logged and shows as a gap.
 * a->anchor_lock held. */
static void audit_ckpt_record(struct audit *a, uint64_t seq, uint64_t prev, const char *line, size_t signed_len,
			      size_t len, const uint8_t head[32])
{
	struct store_ckpt *c;
	struct kh_errbuf e = { 0 };

	if (a->st == NULL || a->node[0] == '\0')
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL || signed_len >= sizeof(c->signed_text) || len - signed_len - 5 >= sizeof(c->sig)) {
		log_err("audit checkpoint %llu: not recorded in the state database (%s)", (unsigned long long)seq,
			c == NULL ? "out of memory" : "too long");
		free(c);
		return;
	}
	kh_strlcpy(c->node, a->node, sizeof(c->node));
	c->seq = seq;
	c->prev_seq = prev;
	kh_hex(head, 32, c->chain, sizeof(c->chain));
	memcpy(c->signed_text, line, signed_len);
	memcpy(c->sig, line + signed_len + 5, len - signed_len - 5);
	c->recorded = (int64_t)time(NULL);
	if (store_ckpt_put(a->st, c, &e) != KH_OK)
		log_warn("audit checkpoint %llu: not recorded in the state database: %s", (unsigned long long)seq, e.msg);
	free(c);
}

static void audit_ckpt_write_locked(struct audit *a);

/* Due: the checkpoint thread (audit_ckpt_main, started with the log
 * unless checkpoint_inline) is asked for one (a->lock held); false when
 * there is none, or the chain outran it, and the caller signs in place. */
static bool audit_ckpt_request(struct audit *a)
{
	if (!a->ckpt_running || a->ckpt_now)
		return false;
	if (!a->ckpt_pending && !a->ckpt_busy) {
		a->ckpt_pending = true;
		pthread_cond_signal(&a->ckpt_cond);
	}
	return true;
}

/* A signed checkpoint over the chain so far, then the anchor moved to it
 * (final: the last one before a clean stop). method: Checkpoint, or
 * RotateEnd / RotateStart around a rotation. a->lock held; the token
 * signs under it, so the request path uses audit_ckpt_request instead. */
static enum kh_err audit_checkpoint_m(struct audit *a, const char *method, bool final, struct kh_errbuf *e)
{
	char line[AUDIT_LINE_MAX];
	struct audit_event ev = { "keyholdd", method, a->key, KH_OK, 0, 1 };
	struct hsm_sign_op op;
	uint8_t dig[32], head[32];
	uint8_t *sig = NULL;
	size_t len, sig_len = 0;
	uint64_t t0 = kh_now_mono_us(), prev;
	size_t signed_len;
	int r = KH_OK;

	KH_ENSURE(!a->failed, kh_err_set(e, KH_E_UNAVAILABLE, "the audit log cannot be written"));
	len = audit_format(a, &ev, line, sizeof(line) - 1);
	KH_ENSURE(len > 0 && len + 72 < sizeof(line), KH_E_INTERNAL);
	len += (size_t)snprintf(line + len, sizeof(line) - len, " keyfp=%s", a->keyfp);
	audit_sha256(line, len, dig);
	memset(&op, 0, sizeof(op));
	op.key = a->key;
	op.digest = KH_DIGEST_SHA256;
	op.in = dig;
	op.in_len = sizeof(dig);
	KH_TRY(hsm_sign(a->h, &op, &sig, &sig_len, e));
	KH_ENSURE(len + 6 + 2 * sig_len + 2 < sizeof(line), KH_E_INTERNAL);
	memcpy(line + len, " sig=", 5);
	signed_len = len;
	len += 5;
	kh_hex(sig, sig_len, line + len, sizeof(line) - len);
	len += 2 * sig_len;
	audit_sha256(line, len, head);
	line[len++] = '\n';
	KH_TRY(audit_write_line(a, &ev, line, len, head, true, e));
	atomic_fetch_add(&a->n_checkpoints, 1);
	a->last_ckpt_seq = a->next_seq - 1;
	a->ckpt_now = false;
	{
		char hx[65];

		/* The journal keeps a copy of every checkpoint's hash: a witness
		 * outside the log file (docs/SECURITY.md). */
		kh_hex(a->head, 32, hx, sizeof(hx));
		log_info("audit checkpoint %llu signed in %llu us; chain hash %s", (unsigned long long)(a->next_seq - 1),
			 (unsigned long long)(kh_now_mono_us() - t0), hx);
	}
	a->since_ckpt = 0;
	a->last_ckpt_mono_us = kh_now_mono_us();
	if (strcmp(method, "Checkpoint") != 0) {
		char point[48];

		snprintf(point, sizeof(point), "%s-written", method);
		audit_crash_point(a, point);
	}
	prev = a->db_prev_ckpt;
	a->db_prev_ckpt = a->next_seq - 1;
	pthread_mutex_lock(&a->anchor_lock);
	audit_ckpt_record(a, a->next_seq - 1, prev, line, signed_len, len - 1, head);
	audit_anchor_save(a, final);
	pthread_mutex_unlock(&a->anchor_lock);
out:
	free(sig);
	return r;
}

static enum kh_err audit_checkpoint_locked(struct audit *a, bool final, struct kh_errbuf *e)
{
	return audit_checkpoint_m(a, "Checkpoint", final, e);
}

/* Brings a failed log back: drops a torn fragment past the last whole
 * record (its size and hash go on record), syncs, writes an AuditRepair
 * record and a checkpoint. Rate-limited; a->lock held. */
static enum kh_err audit_recover_locked(struct audit *a)
{
	struct audit_event ev = { "keyholdd", "AuditRepair", NULL, KH_OK, 0, 1 };
	struct kh_errbuf e = { 0 };
	struct stat st;
	uint64_t now = kh_now_mono_us(), dropped = 0;
	char obj[24] = "";

	if (!a->failed)
		return KH_OK;
	if (now - a->last_retry_mono_us < AUDIT_RETRY_US)
		return KH_E_UNAVAILABLE;
	a->last_retry_mono_us = now;
	if (fstat(a->fd, &st) != 0 || st.st_size < a->size)
		return KH_E_UNAVAILABLE; /* shorter than written: verify reports it */
	if (st.st_size > a->size) {
		uint8_t buf[AUDIT_LINE_MAX], dig[32];
		size_t want = (size_t)(st.st_size - a->size) < sizeof(buf) ? (size_t)(st.st_size - a->size) : sizeof(buf);
		ssize_t n = pread(a->fd, buf, want, a->size);

		dropped = (uint64_t)(st.st_size - a->size);
		audit_sha256(buf, n > 0 ? (size_t)n : 0, dig);
		kh_hex(dig, 8, obj, sizeof(obj));
		if (ftruncate(a->fd, a->size) != 0)
			return KH_E_UNAVAILABLE;
	}
	if (fdatasync(a->fd) != 0)
		return KH_E_UNAVAILABLE;
	a->failed = false;
	a->dirty = false;
	if (dropped > 0) {
		/* The torn record was never answered; its bytes' hash prefix
		 * and length stay on record. */
		ev.object = obj;
		ev.code = KH_E_DATA_LOSS;
		ev.count = dropped;
	}
	if (audit_write_event(a, &ev, true, &e) != KH_OK)
		return KH_E_UNAVAILABLE;
	log_warn("audit log %s is writable again%s; records resume at %llu", a->path,
		 dropped > 0 ? " (a torn record was dropped and noted)" : "", (unsigned long long)a->next_seq);
	if (audit_checkpoint_locked(a, false, &e) != KH_OK)
		log_warn("audit checkpoint after the repair failed: %s", e.msg);
	return KH_OK;
}

/* ---- rotation (docs/SECURITY.md, "Rotation") ---- */

bool audit_rot_name(const char *base, uint64_t first, uint64_t last, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s.%012llu-%012llu", base, (unsigned long long)first, (unsigned long long)last);

	return n > 0 && (size_t)n < outsz;
}

/* A run of 1..20 decimal digits at s, up to stop; its value. */
static bool audit_rot_num(const char *s, size_t len, uint64_t *out)
{
	char num[24];
	size_t i;

	if (len == 0 || len > 20)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	memcpy(num, s, len);
	num[len] = '\0';
	return kh_parse_u64(num, 1, UINT64_MAX, out) == 0;
}

bool audit_rot_parse(const char *base, const char *name, uint64_t *first, uint64_t *last)
{
	size_t bl = strlen(base);
	const char *p, *dash;
	uint64_t f, l;

	if (strncmp(name, base, bl) != 0 || name[bl] != '.')
		return false;
	p = name + bl + 1;
	dash = strchr(p, '-');
	if (dash == NULL || !audit_rot_num(p, (size_t)(dash - p), &f) || !audit_rot_num(dash + 1, strlen(dash + 1), &l) ||
	    l < f)
		return false;
	*first = f;
	*last = l;
	return true;
}

static int audit_rot_cmp(const void *x, const void *y)
{
	const struct audit_rotfile *a = x, *b = y;

	return a->first < b->first ? -1 : a->first > b->first ? 1 : 0;
}

#define AUDIT_ROT_MAX 100000

enum kh_err audit_rot_list(const char *path, struct audit_rotfile **out, size_t *n_out)
{
	char dir[4096];
	const char *slash = strrchr(path, '/'), *base = slash != NULL ? slash + 1 : path;
	struct audit_rotfile *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dh;
	int r = KH_OK;

	if (slash == NULL)
		kh_strlcpy(dir, ".", sizeof(dir));
	else if (slash == path)
		kh_strlcpy(dir, "/", sizeof(dir));
	else if ((size_t)(slash - path) < sizeof(dir)) {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	} else
		return KH_E_INVALID_ARGUMENT;
	dh = opendir(dir);
	if (dh == NULL)
		return KH_E_UNAVAILABLE;
	while ((d = readdir(dh)) != NULL) {
		uint64_t f, l;

		if (!audit_rot_parse(base, d->d_name, &f, &l) || strlen(d->d_name) >= sizeof(v->name))
			continue;
		if (n == cap) {
			struct audit_rotfile *nv;

			KH_ENSURE(cap < AUDIT_ROT_MAX, KH_E_RESOURCE_EXHAUSTED);
			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			KH_ENSURE(nv != NULL, KH_E_RESOURCE_EXHAUSTED);
			v = nv;
		}
		v[n].first = f;
		v[n].last = l;
		kh_strlcpy(v[n].name, d->d_name, sizeof(v[n].name));
		n++;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), audit_rot_cmp);
	*out = v;
	*n_out = n;
	v = NULL;
out:
	closedir(dh);
	free(v);
	return r;
}

static bool audit_rot_path(const struct audit *a, const char *name, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s/%s", a->dir, name);

	return n > 0 && (size_t)n < outsz;
}

static void audit_sync_dir(struct audit *a)
{
	int fd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0)
		log_warn("audit log directory %s: fsync: %s", a->dir, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static uint64_t audit_wall_us(struct audit *a)
{
	int64_t s = a->now_s != NULL ? a->now_s() : (int64_t)time(NULL);

	return s > 0 ? (uint64_t)s * 1000000u : 0;
}

static bool audit_rotate_due(struct audit *a)
{
	if (a->failed || a->next_seq <= a->file_first_seq + 1 || kh_now_mono_us() < a->rotate_retry_mono_us)
		return false; /* nothing but the opening checkpoint yet, or a failed rotation backing off */
	if (a->rotate_size > 0 && (uint64_t)a->size >= a->rotate_size)
		return true;
	return a->rotate_age_s > 0 && audit_wall_us(a) >= a->file_start_us + a->rotate_age_s * 1000000u;
}

/* Deletes the oldest rotated files beyond rotate_keep; each deletion is
 * recorded (AuditRetention, obj = FIRST-LAST, count = records) and
 * synced before the file goes, so verify can tell retention from removal. */
static void audit_retention_locked(struct audit *a)
{
	struct audit_rotfile *rf = NULL;
	size_t n = 0, i;
	bool any = false;

	if (a->rotate_keep == 0 || audit_rot_list(a->path, &rf, &n) != KH_OK)
		return;
	for (i = 0; i + a->rotate_keep < n; i++) {
		struct kh_errbuf e = { 0 };
		char obj[48], path[4096];
		struct audit_event ev = { "keyholdd", "AuditRetention", obj, KH_OK, 0, rf[i].last - rf[i].first + 1 };

		snprintf(obj, sizeof(obj), "%llu-%llu", (unsigned long long)rf[i].first, (unsigned long long)rf[i].last);
		if (!audit_rot_path(a, rf[i].name, path, sizeof(path)))
			continue;
		if (audit_write_event(a, &ev, true, &e) != KH_OK) {
			log_err("audit retention: %s", e.msg);
			break;
		}
		audit_crash_point(a, "retention-recorded");
		if (unlink(path) != 0) {
			log_err("audit retention: cannot delete %s: %s", path, strerror(errno));
			continue;
		}
		any = true;
		log_info("audit retention (rotate_keep = %u): deleted %s (records %llu to %llu)", a->rotate_keep, path,
			 (unsigned long long)rf[i].first, (unsigned long long)rf[i].last);
	}
	if (any)
		audit_sync_dir(a);
	free(rf);
}

/* Opens a fresh log after the old one was renamed to rotated (moved back
 * when the new one cannot be started). */
static enum kh_err audit_rotate_start(struct audit *a, const char *rotated, struct kh_errbuf *e)
{
	int fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	int old_fd = a->fd;
	off_t old_size = a->size;
	uint64_t old_first = a->file_first_seq, old_start = a->file_start_us, old_next = a->next_seq;
	uint64_t old_since = a->since_ckpt;
	uint8_t old_head[32];
	int r;

	memcpy(old_head, a->head, 32);

	if (fd < 0) {
		r = kh_err_set(e, KH_E_UNAVAILABLE, "cannot create %s: %s", a->path, strerror(errno));
		goto undo;
	}
	audit_sync_dir(a);
	audit_crash_point(a, "rotate-created");
	a->fd = fd;
	a->size = 0;
	a->file_first_seq = a->next_seq;
	a->file_start_us = audit_wall_us(a);
	r = audit_checkpoint_m(a, "RotateStart", false, e);
	if (r == KH_OK) {
		close(old_fd);
		return KH_OK;
	}
	/* Not one record went to the new file: take the old one back. */
	a->fd = old_fd;
	a->size = old_size;
	a->file_first_seq = old_first;
	a->file_start_us = old_start;
	a->next_seq = old_next;
	a->since_ckpt = old_since;
	memcpy(a->head, old_head, 32);
	a->failed = false;
	close(fd);
	if (unlink(a->path) != 0)
		log_err("cannot remove %s: %s", a->path, strerror(errno));
undo:
	if (rename(rotated, a->path) != 0) {
		log_err("cannot move %s back to %s: %s", rotated, a->path, strerror(errno));
		audit_fail(a, "rotate");
	}
	return r;
}

/* Ends the current file with a signed RotateEnd checkpoint, renames it
 * PATH.<first>-<last>, starts a new PATH with a signed RotateStart
 * checkpoint chained to it, then applies rotate_keep. Not while a verify
 * reads the files (it runs at the next append or tick). */
static enum kh_err audit_rotate_locked(struct audit *a, struct kh_errbuf *e)
{
	char name[256], to[4096];
	uint64_t first = a->file_first_seq;
	int r = KH_OK;

	if (pthread_mutex_trylock(&a->verify_lock) != 0)
		return KH_OK;
	KH_TRY(audit_checkpoint_m(a, "RotateEnd", false, e));
	KH_ENSURE(audit_rot_name(a->base, first, a->next_seq - 1, name, sizeof(name)) &&
		  audit_rot_path(a, name, to, sizeof(to)),
		  kh_err_set(e, KH_E_INTERNAL, "the rotated audit file's name is too long"));
	KH_ENSURE(rename(a->path, to) == 0,
		  kh_err_set(e, KH_E_UNAVAILABLE, "cannot rename %s to %s: %s", a->path, to, strerror(errno)));
	audit_sync_dir(a);
	audit_crash_point(a, "rotate-renamed");
	KH_TRY(audit_rotate_start(a, to, e));
	a->vcache.valid = false;
	log_info("audit log rotated: %s holds records %llu to %llu; %s goes on from record %llu", to,
		 (unsigned long long)first, (unsigned long long)(a->file_first_seq - 1), a->path,
		 (unsigned long long)a->file_first_seq);
	audit_retention_locked(a);
out:
	pthread_mutex_unlock(&a->verify_lock);
	return r;
}

/* Rotates when due; a failure is logged and retried a minute later. */
static void audit_maybe_rotate(struct audit *a)
{
	struct kh_errbuf e = { 0 };

	if (!audit_rotate_due(a))
		return;
	if (audit_rotate_locked(a, &e) != KH_OK) {
		log_err("audit log rotation failed (retried in a minute): %s", e.msg);
		a->rotate_retry_mono_us = kh_now_mono_us() + 60000000u;
	}
}

/* ---- refusals: counted, one record per principal and window ---- */

static bool audit_is_refusal(const struct audit_event *ev)
{
	return (ev->code == KH_E_PERMISSION_DENIED || ev->code == KH_E_UNAUTHENTICATED) && ev->count <= 1;
}

static void audit_refusal_flush(struct audit *a, struct audit_refusal *f)
{
	struct kh_errbuf e = { 0 };
	struct audit_event ev;

	if (f->pending > 0) {
		ev.principal = f->who;
		ev.method = f->method;
		ev.object = f->obj;
		ev.code = f->code;
		ev.duration_us = 0;
		ev.count = f->pending;
		if (audit_append_locked(a, &ev, &e) != KH_OK)
			log_err("audit: %llu refusals of %s not recorded: %s", (unsigned long long)f->pending, f->who,
				e.msg);
	}
	memset(f, 0, sizeof(*f));
}

/* The first refusal of a window is written at once; the others in it are
 * counted and written as one record when the window closes. */
static enum kh_err audit_refusal_locked(struct audit *a, const struct audit_event *ev, struct kh_errbuf *e)
{
	uint64_t now = kh_now_mono_us();
	struct audit_refusal *f = NULL, *oldest = NULL;
	const char *who = ev->principal != NULL ? ev->principal : "-";
	size_t i;

	for (i = 0; i < AUDIT_REFUSAL_SLOTS; i++) {
		struct audit_refusal *x = &a->refusals[i];

		if (x->window_start_us != 0 && now - x->window_start_us >= AUDIT_REFUSAL_WINDOW_US)
			audit_refusal_flush(a, x);
		if (x->window_start_us != 0 && strcmp(x->who, who) == 0)
			f = x;
		else if (f == NULL && (oldest == NULL || x->window_start_us < oldest->window_start_us))
			oldest = x;
	}
	if (f != NULL) {
		if (strcmp(f->method, ev->method != NULL ? ev->method : "-") != 0)
			kh_strlcpy(f->method, "*", sizeof(f->method));
		if (strcmp(f->obj, ev->object != NULL ? ev->object : "") != 0)
			kh_strlcpy(f->obj, "*", sizeof(f->obj));
		f->pending++;
		return a->failed ? kh_err_set(e, KH_E_UNAVAILABLE, "the audit log %s cannot be written", a->path) : KH_OK;
	}
	if (oldest->window_start_us != 0)
		audit_refusal_flush(a, oldest);
	f = oldest;
	kh_strlcpy(f->who, who, sizeof(f->who));
	kh_strlcpy(f->method, ev->method != NULL ? ev->method : "-", sizeof(f->method));
	kh_strlcpy(f->obj, ev->object != NULL ? ev->object : "", sizeof(f->obj));
	f->code = ev->code;
	f->window_start_us = now;
	f->pending = 0;
	return audit_append_locked(a, ev, e);
}

enum kh_err audit_append(struct audit *a, const struct audit_event *ev, struct kh_errbuf *e)
{
	int r;

	pthread_mutex_lock(&a->lock);
	if (audit_is_refusal(ev))
		r = audit_refusal_locked(a, ev, e);
	else
		r = audit_append_locked(a, ev, e);
	if (a->ckpt_job != NULL)
		audit_ckpt_write_locked(a); /* one the checkpoint thread signed */
	if (r == KH_OK && !a->failed && a->since_ckpt >= a->ckpt_records) {
		struct kh_errbuf ce = { 0 };

		/* Signed by the checkpoint thread; in place without it. One
		 * that cannot be signed now (token busy or gone) is retried;
		 * the record itself is written. */
		if (!audit_ckpt_request(a) && audit_checkpoint_locked(a, false, &ce) != KH_OK)
			log_warn("audit checkpoint failed: %s", ce.msg);
	}
	if (r == KH_OK)
		audit_maybe_rotate(a);
	pthread_mutex_unlock(&a->lock);
	return r;
}

enum kh_err audit_begin(struct audit *a, const struct audit_event *ev, struct kh_errbuf *e)
{
	char method[48];
	struct audit_event b = *ev;
	int r = KH_OK;

	if (!audit_method_changes_state(ev->method))
		return KH_OK;
	snprintf(method, sizeof(method), "begin:%s", ev->method);
	b.method = method;
	b.code = KH_OK;
	b.count = 1;
	pthread_mutex_lock(&a->lock);
	if (a->failed && audit_recover_locked(a) != KH_OK) {
		r = kh_err_set(e, KH_E_UNAVAILABLE,
			       "the audit log %s cannot be written; %s is refused before it changes anything", a->path,
			       ev->method);
		goto out;
	}
	/* Room for this record and its result, allocated now: the result
	 * cannot then fail for want of space. Filesystems without
	 * fallocate rely on the begin record alone. */
	if (fallocate(a->fd, FALLOC_FL_KEEP_SIZE, a->size, AUDIT_RESERVE) != 0 && errno != EOPNOTSUPP &&
	    errno != ENOSYS) {
		r = kh_err_set(e, KH_E_UNAVAILABLE,
			       "the audit log %s has no room for the record of %s (%s); refused before it changes anything",
			       a->path, ev->method, strerror(errno));
		goto out;
	}
	if (audit_write_event(a, &b, true, e) != KH_OK)
		r = kh_err_set(e, KH_E_UNAVAILABLE, "the audit log %s cannot be written; %s is refused before it changes anything",
			       a->path, ev->method);
out:
	pthread_mutex_unlock(&a->lock);
	return r;
}

bool audit_healthy(struct audit *a)
{
	bool ok;

	pthread_mutex_lock(&a->lock);
	if (a->failed)
		kh_ignore(audit_recover_locked(a));
	ok = !a->failed;
	pthread_mutex_unlock(&a->lock);
	return ok;
}

void audit_tick(struct audit *a)
{
	uint64_t now = kh_now_mono_us();
	size_t i;

	pthread_mutex_lock(&a->lock);
	if (a->failed)
		kh_ignore(audit_recover_locked(a));
	for (i = 0; !a->failed && i < AUDIT_REFUSAL_SLOTS; i++)
		if (a->refusals[i].window_start_us != 0 && now - a->refusals[i].window_start_us >= AUDIT_REFUSAL_WINDOW_US)
			audit_refusal_flush(a, &a->refusals[i]);
	if (a->ckpt_job != NULL)
		audit_ckpt_write_locked(a);
	if (!a->failed && a->since_ckpt > 0 &&
	    now - a->last_ckpt_mono_us >= (uint64_t)a->ckpt_interval_s * 1000000u) {
		struct kh_errbuf ce = { 0 };

		if (!audit_ckpt_request(a) && audit_checkpoint_locked(a, false, &ce) != KH_OK)
			log_warn("audit checkpoint failed: %s", ce.msg);
	}
	audit_maybe_rotate(a);
	if (!a->failed && a->dirty) {
		if (fdatasync(a->fd) != 0) {
			audit_fail(a, "fdatasync");
		} else {
			a->dirty = false;
			a->last_sync_mono_us = now;
			atomic_store(&a->durable, a->written);
		}
	}
	pthread_mutex_unlock(&a->lock);
}

void audit_counts(struct audit *a, uint64_t *records, uint64_t *checkpoints)
{
	uint64_t n = atomic_load(&a->n_written), c = atomic_load(&a->n_checkpoints);

	*records = n >= c ? n - c : 0;
	*checkpoints = c;
}

const char *audit_key_name(const struct audit *a)
{
	return a->key;
}

/* ---- opening ---- */

static enum kh_err audit_key_setup(struct audit *a, struct kh_errbuf *e)
{
	enum kh_key_type type = KH_KEY_UNSPECIFIED;
	struct kh_errbuf e2 = { 0 };
	unsigned char *der = NULL;
	uint8_t fp[32];
	int r = KH_OK, n;

	r = hsm_key_meta(a->h, a->key, &type, &a->pub, &e2);
	if (r == KH_E_NOT_FOUND) {
		struct kh_key_info info;

		memset(&info, 0, sizeof(info));
		log_info("creating the audit checkpoint key '%s' (P-256) in the token", a->key);
		KH_TRY(hsm_key_generate(a->h, a->key, KH_KEY_P256, &info, e));
		kh_key_info_clear(&info);
		KH_TRY(hsm_key_meta(a->h, a->key, &type, &a->pub, e));
	} else if (r != KH_OK) {
		r = kh_err_set(e, r, "audit key '%s': %s", a->key, e2.msg);
		goto out;
	}
	KH_ENSURE(type == KH_KEY_P256 || type == KH_KEY_P384 || type == KH_KEY_P521,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the audit key '%s' must be an ECDSA key (p256, p384, p521)",
			     a->key));
	KH_ENSURE(a->pub != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "the token holds no public key for '%s'", a->key));
	n = i2d_PUBKEY(a->pub, &der);
	KH_ENSURE(n > 0, kh_err_set(e, KH_E_INTERNAL, "cannot encode the audit key"));
	audit_sha256(der, (size_t)n, fp);
	kh_hex(fp, 32, a->keyfp, sizeof(a->keyfp));
out:
	OPENSSL_free(der);
	return r;
}

/* ---- the anchor: the last checkpoint, kept where the log cannot rewrite it ---- */

static void audit_anchor_format(const struct audit_anchor *an, char *out, size_t outsz)
{
	char hx[65];

	kh_hex(an->hash, 32, hx, sizeof(hx));
	snprintf(out, outsz, "v1 seq=%llu off=%llu hash=%s clean=%d", (unsigned long long)an->seq,
		 (unsigned long long)an->off, hx, an->clean ? 1 : 0);
}

static bool audit_anchor_parse(const char *s, struct audit_anchor *an)
{
	unsigned long long seq, off;
	char hx[65], *end = NULL;
	size_t bl = 0;
	const char *p;

	memset(an, 0, sizeof(*an));
	/* Fixed layout, written by audit_anchor_format only. */
	if (strncmp(s, "v1 seq=", 7) != 0)
		return false;
	seq = strtoull(s + 7, &end, 10);
	if (strncmp(end, " off=", 5) != 0)
		return false;
	off = strtoull(end + 5, &end, 10);
	p = end;
	if (strncmp(p, " hash=", 6) != 0 || strlen(p + 6) < 64 + 8)
		return false;
	memcpy(hx, p + 6, 64);
	hx[64] = '\0';
	p += 6 + 64;
	if (strncmp(p, " clean=", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != '\0')
		return false;
	if (kh_unhex(hx, an->hash, 32, &bl) != 0 || bl != 32 || seq == 0 || off == 0)
		return false;
	an->seq = seq;
	an->off = off;
	an->clean = p[7] == '1';
	return true;
}

/* Both copies; the later one wins (a failed write leaves one behind). A
 * copy that cannot be read is logged: the other one still holds. */
static void audit_anchor_load(struct audit *a)
{
	char buf[AUDIT_ANCHOR_MAX + 1];
	struct audit_anchor t, d;
	struct kh_errbuf e = { 0 };
	size_t len = 0;
	bool have_t = false, have_d = false;
	int r;

	r = hsm_data_read(a->h, a->anchor_label, (uint8_t *)buf, sizeof(buf) - 1, &len, &e);
	if (r == KH_OK) {
		buf[len] = '\0';
		have_t = audit_anchor_parse(buf, &t);
		if (!have_t)
			log_err("the token's audit anchor '%s' does not parse", a->anchor_label);
	} else if (r != KH_E_NOT_FOUND) {
		log_err("the token's audit anchor: %s", e.msg);
	}
	if (a->st != NULL) {
		memset(&e, 0, sizeof(e));
		r = store_audit_anchor_get(a->st, a->anchor_node, buf, sizeof(buf), &e);
		if (r == KH_OK) {
			have_d = audit_anchor_parse(buf, &d);
			if (!have_d)
				log_err("the state database's audit anchor does not parse");
		} else if (r != KH_E_NOT_FOUND) {
			log_err("the state database's audit anchor: %s", e.msg);
		}
	}
	log_dbg("audit anchor: token %s (checkpoint %llu, clean %d), state database %s (checkpoint %llu, clean %d)",
		have_t ? "yes" : "no", have_t ? (unsigned long long)t.seq : 0ULL, have_t ? t.clean : 0,
		have_d ? "yes" : "no", have_d ? (unsigned long long)d.seq : 0ULL, have_d ? d.clean : 0);
	if (have_t && have_d && (t.seq != d.seq || memcmp(t.hash, d.hash, 32) != 0))
		log_warn("the audit anchors differ (token: checkpoint %llu, state database: %llu); the later one is used",
			 (unsigned long long)t.seq, (unsigned long long)d.seq);
	if (have_t && (!have_d || t.seq >= d.seq))
		a->anchor = t;
	else if (have_d)
		a->anchor = d;
	a->have_anchor = have_t || have_d;
}

/* Writes an to both places (a->anchor_lock held, or no other thread yet),
 * unless a later checkpoint's anchor is there already. Failures are
 * logged; the previous anchor then stays, which only weakens the check. */
static void audit_anchor_put(struct audit *a, const struct audit_anchor *an)
{
	char buf[AUDIT_ANCHOR_MAX];
	struct kh_errbuf e = { 0 };

	if (an->seq < a->anchor_stored_seq)
		return;
	a->anchor_stored_seq = an->seq;
	audit_anchor_format(an, buf, sizeof(buf));
	if (hsm_data_write(a->h, a->anchor_label, (const uint8_t *)buf, strlen(buf), &e) != KH_OK)
		log_err("cannot keep the audit anchor in the token: %s", e.msg);
	memset(&e, 0, sizeof(e));
	if (a->st != NULL && store_audit_anchor_put(a->st, a->anchor_node, buf, &e) != KH_OK)
		log_err("cannot keep the audit anchor in the state database: %s", e.msg);
}

/* After a checkpoint (clean: the last one before a stop); a->lock and
 * a->anchor_lock held. */
static void audit_anchor_save(struct audit *a, bool clean)
{
	a->anchor.seq = a->next_seq - 1;
	a->anchor.off = (uint64_t)a->size;
	memcpy(a->anchor.hash, a->head, 32);
	a->anchor.clean = clean;
	a->have_anchor = true;
	audit_anchor_put(a, &a->anchor);
}

/* The anchor as it is, with clean = 0. */
static void audit_anchor_mark_running(struct audit *a)
{
	a->anchor.clean = false;
	pthread_mutex_lock(&a->anchor_lock);
	audit_anchor_put(a, &a->anchor);
	pthread_mutex_unlock(&a->anchor_lock);
}

/* Checks the log against the anchor before anything is appended; "" when
 * it holds, else a short tag (for the record) and a reason (for people). */
static void audit_anchor_check(struct audit *a, char *tag, size_t tagsz, char *why, size_t whysz)
{
	const struct audit_anchor *an = &a->anchor;
	char buf[AUDIT_LINE_MAX + 1];
	struct stat st;
	struct audit_rec rec;
	size_t want, start;
	uint8_t dig[32];
	ssize_t n;

	tag[0] = why[0] = '\0';
	if (!a->have_anchor)
		return;
	if (fstat(a->fd, &st) != 0 || (uint64_t)st.st_size < an->off) {
		snprintf(tag, tagsz, "%s", st.st_size == 0 ? "log-missing" : "log-cut");
		snprintf(why, whysz,
			 "the audit log ends (%lld bytes) before checkpoint %llu, which keyholdd wrote and anchored in the token: "
			 "records were removed or the file replaced",
			 (long long)st.st_size, (unsigned long long)an->seq);
		return;
	}
	want = an->off < sizeof(buf) - 1 ? (size_t)an->off : sizeof(buf) - 1;
	n = pread(a->fd, buf, want, (off_t)(an->off - want));
	start = want > 0 ? want - 1 : 0;
	while (n == (ssize_t)want && start > 0 && buf[start - 1] != '\n')
		start--;
	if (n != (ssize_t)want || want == 0 || buf[want - 1] != '\n' ||
	    (start == 0 && an->off != want) ||
	    (audit_sha256(buf + start, want - 1 - start, dig), memcmp(dig, an->hash, 32) != 0) ||
	    !audit_parse(buf + start, want - 1 - start, &rec) || rec.seq != an->seq || !rec.checkpoint) {
		snprintf(tag, tagsz, "anchor-mismatch");
		snprintf(why, whysz,
			 "checkpoint %llu, anchored in the token, is no longer where keyholdd wrote it: the log was rewritten",
			 (unsigned long long)an->seq);
		return;
	}
	if (an->clean && (uint64_t)st.st_size > an->off) {
		snprintf(tag, tagsz, "foreign-tail");
		snprintf(why, whysz,
			 "%lld bytes follow checkpoint %llu, the last record keyholdd wrote before it stopped: "
			 "they were added while it was stopped",
			 (long long)((uint64_t)st.st_size - an->off), (unsigned long long)an->seq);
	}
}

/* Finds the chain head: the last whole line of the file. A torn last
 * write is cut off; *torn gets its length (recorded by audit_open). */
static enum kh_err audit_find_head(struct audit *a, uint64_t *torn, struct kh_errbuf *e)
{
	struct stat st;
	char *buf = NULL;
	size_t want, got = 0, end, start;
	off_t from;
	struct audit_rec rec;
	int r = KH_OK;

	*torn = 0;
	KH_ENSURE(fstat(a->fd, &st) == 0, kh_err_set(e, KH_E_INTERNAL, "stat %s: %s", a->path, strerror(errno)));
	KH_ENSURE(S_ISREG(st.st_mode), kh_err_set(e, KH_E_FAILED_PRECONDITION, "%s is not a regular file", a->path));
	a->next_seq = 1;
	memset(a->head, 0, sizeof(a->head));
	a->size = st.st_size;
	if (st.st_size == 0)
		goto out;
	want = st.st_size > 2 * AUDIT_LINE_MAX ? 2 * AUDIT_LINE_MAX : (size_t)st.st_size;
	from = st.st_size - (off_t)want;
	buf = malloc(want + 1);
	KH_ENSURE(buf != NULL, KH_E_RESOURCE_EXHAUSTED);
	while (got < want) {
		ssize_t n = pread(a->fd, buf + got, want - got, from + (off_t)got);

		KH_ENSURE(n > 0, kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot read %s: %s", a->path,
					    n == 0 ? "short read" : strerror(errno)));
		got += (size_t)n;
	}
	end = want;
	if (buf[end - 1] != '\n') {
		size_t cut = end;

		while (cut > 0 && buf[cut - 1] != '\n')
			cut--;
		if (cut > 0 || from == 0) {
			/* A torn last write (never answered): cut it off; the
			 * repair goes on record after the Start record. */
			log_err("audit log %s ends in a partial record (%zu bytes); it is cut off and noted", a->path,
				end - cut);
			KH_ENSURE(ftruncate(a->fd, from + (off_t)cut) == 0,
				  kh_err_set(e, KH_E_UNAVAILABLE, "cannot repair %s: %s", a->path, strerror(errno)));
			*torn = end - cut;
			a->size = from + (off_t)cut;
			end = cut;
			if (end == 0)
				goto out;
		} else {
			log_err("audit log %s ends in an over-long fragment; audit verify will report it", a->path);
			KH_ENSURE(write(a->fd, "\n", 1) == 1, kh_err_set(e, KH_E_UNAVAILABLE, "cannot write %s", a->path));
			a->size++;
			buf[end] = '\n';
			end++;
		}
	}
	end--; /* the final newline */
	start = end;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	audit_sha256(buf + start, end - start, a->head);
	if (audit_parse(buf + start, end - start, &rec)) {
		a->next_seq = rec.seq + 1;
		a->last_ts_us = rec.time_us;
	} else {
		/* Keep going: refusing to start would let whoever can write the
		 * file stop the service. The break is on record for verify. */
		log_err("the last record of %s does not parse; audit verify will report it", a->path);
		a->next_seq = 0;
	}
out:
	free(buf);
	return r;
}

/* The last line of fd (size bytes, ending in a newline) into buf, without
 * its newline. */
static bool audit_tail_line(int fd, off_t size, char *buf, size_t bufsz, size_t *len)
{
	size_t want = (uint64_t)size < bufsz - 1 ? (size_t)size : bufsz - 1, start;

	if (want == 0 || pread(fd, buf, want, size - (off_t)want) != (ssize_t)want || buf[want - 1] != '\n')
		return false;
	start = want - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start == 0 && (off_t)want != size)
		return false; /* longer than a record */
	*len = want - 1 - start;
	memmove(buf, buf + start, *len);
	buf[*len] = '\0';
	return true;
}

/* The first whole line of fd into buf, without its newline. */
static bool audit_head_line(int fd, char *buf, size_t bufsz, size_t *len)
{
	ssize_t n = pread(fd, buf, bufsz - 1, 0);
	char *nl;

	if (n <= 0 || (nl = memchr(buf, '\n', (size_t)n)) == NULL)
		return false;
	*len = (size_t)(nl - buf);
	buf[*len] = '\0';
	return true;
}

/* At start, before the anchor check: when the anchored checkpoint is the
 * last line of the newest rotated file, a rotation was under way when
 * keyholdd stopped. With no whole line in the log the rotation is
 * finished (*finish: the new log gets its RotateStart); when the log
 * begins with the RotateStart chained to that checkpoint, the anchor holds
 * (*linked). Anything else goes to the ordinary anchor check, which
 * reports a removed or replaced log. */
static void audit_rotation_resume(struct audit *a, bool *finish, bool *linked, uint64_t *last_ts)
{
	struct audit_rotfile *rf = NULL;
	char path[4096], *buf = NULL;
	struct audit_rec rec;
	struct stat st;
	uint8_t dig[32];
	size_t n = 0, len = 0;
	int fd = -1;

	*finish = *linked = false;
	if (!a->have_anchor || a->anchor.clean || audit_rot_list(a->path, &rf, &n) != KH_OK || n == 0 ||
	    rf[n - 1].last != a->anchor.seq)
		goto out;
	buf = malloc(AUDIT_LINE_MAX + 1);
	if (buf == NULL || !audit_rot_path(a, rf[n - 1].name, path, sizeof(path)))
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size != a->anchor.off ||
	    !audit_tail_line(fd, st.st_size, buf, AUDIT_LINE_MAX + 1, &len))
		goto out;
	audit_sha256(buf, len, dig);
	if (memcmp(dig, a->anchor.hash, 32) != 0 || !audit_parse(buf, len, &rec) || !rec.checkpoint ||
	    rec.seq != a->anchor.seq)
		goto out;
	*last_ts = rec.time_us;
	if (!audit_head_line(a->fd, buf, AUDIT_LINE_MAX + 1, &len)) {
		/* Empty, or a torn first write: audit_find_head cuts it off. */
		if (fstat(a->fd, &st) == 0 && st.st_size < AUDIT_LINE_MAX)
			*finish = true;
		goto out;
	}
	if (audit_parse(buf, len, &rec) && rec.checkpoint && strcmp(rec.method, "RotateStart") == 0 &&
	    rec.seq == a->anchor.seq + 1 && memcmp(rec.prev, a->anchor.hash, 32) == 0)
		*linked = true;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(rf);
}

/* ---- group commit (sync = always) ---- */

void audit_defer_begin(void)
{
	audit_tl_defer = true;
	audit_tl_seq = 0;
}

uint64_t audit_defer_end(void)
{
	uint64_t seq = audit_tl_seq;

	audit_tl_defer = false;
	audit_tl_seq = 0;
	return seq;
}

/* Syncs every line written so far, without holding the lock during the
 * fdatasync (a duplicate of the descriptor: a rotation may replace a->fd
 * meanwhile, and the lines it holds are synced through the duplicate). */
static void audit_commit(struct audit *a)
{
	uint64_t target;
	int fd = -1, rc = 0, err = 0;

	pthread_mutex_lock(&a->lock);
	target = a->written;
	if (atomic_load(&a->durable) >= target) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	if (!a->failed)
		fd = fcntl(a->fd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_unlock(&a->lock);
#ifdef KEYHOLD_TESTING
	/* A Sign's answer waits here: dying before the sync must leave the
	 * client without one (tests/integration/test_audit_group_commit.sh). */
	if (atomic_load(&a->crash_commit))
		audit_crash_point(a, "group-commit");
#endif
	if (fd >= 0) {
		rc = fdatasync(fd);
		err = errno;
		close(fd);
	}
	pthread_mutex_lock(&a->lock);
	if (fd < 0 || rc != 0) {
		/* As for a failed fdatasync in audit_write_line: the log turns
		 * unhealthy (and is repaired), the answers go out. */
		if (!a->failed) {
			errno = fd < 0 ? errno : err;
			audit_fail(a, "fdatasync");
		}
	} else {
		if (atomic_load(&a->durable) < target)
			atomic_store(&a->durable, target);
		if (a->written == target) {
			a->dirty = false;
			a->last_sync_mono_us = kh_now_mono_us();
		}
	}
	pthread_mutex_unlock(&a->lock);
}

static void *audit_commit_main(void *arg)
{
	struct audit *a = arg;

	pthread_mutex_lock(&a->cq_lock);
	for (;;) {
		struct audit_waiter *w, *next;

		while (a->cq_head == NULL && !a->cq_stop)
			pthread_cond_wait(&a->cq_cond, &a->cq_lock);
		if (a->cq_head == NULL)
			break;
		w = a->cq_head;
		a->cq_head = a->cq_tail = NULL;
		a->cq_busy = true;
		pthread_mutex_unlock(&a->cq_lock);
		/* Every waiter taken wrote its record before it queued: one
		 * sync of what is written now covers them all. */
		audit_commit(a);
		for (; w != NULL; w = next) {
			next = w->next;
			w->fn(w);
		}
		pthread_mutex_lock(&a->cq_lock);
		a->cq_busy = false;
		if (a->cq_head == NULL)
			pthread_cond_broadcast(&a->cq_idle);
	}
	pthread_mutex_unlock(&a->cq_lock);
	return NULL;
}

bool audit_when_durable(struct audit *a, uint64_t seq, struct audit_waiter *w)
{
	if (a == NULL || seq == 0 || atomic_load(&a->durable) >= seq)
		return false;
	w->next = NULL;
	w->seq = seq;
	pthread_mutex_lock(&a->cq_lock);
	if (a->cq_tail != NULL)
		a->cq_tail->next = w;
	else
		a->cq_head = w;
	a->cq_tail = w;
	pthread_cond_signal(&a->cq_cond);
	pthread_mutex_unlock(&a->cq_lock);
	return true;
}

void audit_commit_drain(struct audit *a)
{
	if (a == NULL || !a->commit_running)
		return;
	pthread_mutex_lock(&a->cq_lock);
	while (a->cq_head != NULL || a->cq_busy)
		pthread_cond_wait(&a->cq_idle, &a->cq_lock);
	pthread_mutex_unlock(&a->cq_lock);
}

static void audit_commit_stop(struct audit *a)
{
	if (!a->commit_running)
		return;
	pthread_mutex_lock(&a->cq_lock);
	a->cq_stop = true;
	pthread_cond_signal(&a->cq_cond);
	pthread_mutex_unlock(&a->cq_lock);
	pthread_join(a->commit_thread, NULL);
	a->commit_running = false;
}

/* ---- the checkpoint thread (docs/SECURITY.md, "Checkpoints") ---- */

/* A checkpoint signed off the request path. The thread, at the lowest
 * CPU priority (a TPM signature costs milliseconds of CPU in the token's
 * library and the simulator: requests come first), takes the chain head
 * under the lock and signs it without. The line is then written by the
 * next thread to take the lock for a record (a few microseconds, so that
 * no request waits for the low-priority thread to hold the lock), or by
 * the thread itself when no record comes within AUDIT_CKPT_WRITE_US.
 * The thread then syncs it and moves the anchor, without the lock
 * (anchor_lock keeps the rows and anchors in checkpoint order). */
enum audit_ckpt_state {
	AUDIT_CJ_SIGNED,              /* signed: the line is to be written */
	AUDIT_CJ_WRITTEN,             /* written: to be synced and anchored */
	AUDIT_CJ_DROPPED,             /* another checkpoint came first, or the log failed */
	AUDIT_CJ_LATE,                /* the chain moved on by more than AUDIT_CKPT_LAG records */
	AUDIT_CJ_FAILED,              /* the line could not be written */
};

struct audit_ckpt_job {
	enum audit_ckpt_state state;
	uint64_t at, base;            /* the record signed; the last checkpoint then */
	uint64_t prev;                /* the state database row's previous checkpoint */
	uint8_t athash[32];
	char sighex[2 * 160 + 1];
	/* once written */
	char line[AUDIT_LINE_MAX];
	size_t signed_len, len;       /* without the newline */
	uint8_t head[32];
	uint64_t target;              /* a->written after it */
	struct audit_anchor an;
	int fd;                       /* a duplicate of the log's descriptor, to sync */
};

#define AUDIT_CKPT_WRITE_US 2000u

/* The checkpoint thread's anchor ([audit] anchor_interval): each of its
 * checkpoints is offered; it moves the anchor when the last move is an
 * interval old, else it is kept here and moved to once the interval is
 * over (or when the thread stops), unless a later one came meanwhile.
 * Writing the anchor (a token object and a database row, each synced)
 * costs more than the checkpoint, and at thousands of records a second
 * its I/O every few hundred records cost 30% or more of the signatures a
 * second (docs/PERFORMANCE.md). The thread's own: no lock. */
struct audit_anchor_later {
	struct audit_anchor an;
	bool have;
	uint64_t moved_us;            /* when the thread last moved the anchor */
};

/* Moves the anchor to the one kept (a->anchor_lock held). */
static void audit_anchor_later_put(struct audit *a, struct audit_anchor_later *l)
{
	if (!l->have)
		return;
	audit_anchor_put(a, &l->an);
	l->have = false;
	l->moved_us = kh_now_mono_us();
}

/* A checkpoint of the thread, on disk (a->anchor_lock held). */
static void audit_anchor_offer(struct audit *a, struct audit_anchor_later *l, const struct audit_anchor *an)
{
	l->an = *an;
	l->have = true;
	if (a->anchor_interval_us == 0 || kh_now_mono_us() - l->moved_us >= a->anchor_interval_us)
		audit_anchor_later_put(a, l);
}

/* The kept anchor moved to (a->lock held on entry and return; taken
 * again after anchor_lock, the order every thread takes them in). */
static void audit_anchor_later_flush(struct audit *a, struct audit_anchor_later *l)
{
	pthread_mutex_lock(&a->anchor_lock);
	pthread_mutex_unlock(&a->lock);
	audit_anchor_later_put(a, l);
	pthread_mutex_unlock(&a->anchor_lock);
	pthread_mutex_lock(&a->lock);
}

/* Writes the signed checkpoint waiting in a->ckpt_job, if any (a->lock
 * held): after the record being written now, wherever the chain is. */
static void audit_ckpt_write_locked(struct audit *a)
{
	struct audit_ckpt_job *j = a->ckpt_job;
	struct audit_event ev = { "keyholdd", "Checkpoint", NULL, KH_OK, 0, 1 };
	struct kh_errbuf e = { 0 };
	char ahx[65];
	size_t len;
	int n;

	if (j == NULL || j->state != AUDIT_CJ_SIGNED)
		return;
	ev.object = a->key;
	if (a->failed || a->last_ckpt_seq != j->base) {
		j->state = AUDIT_CJ_DROPPED;
	} else if (a->next_seq - 1 - j->at > AUDIT_CKPT_LAG) {
		j->state = AUDIT_CJ_LATE;
	} else {
		kh_hex(j->athash, 32, ahx, sizeof(ahx));
		len = audit_format(a, &ev, j->line, sizeof(j->line) - 1);
		n = len > 0 ? snprintf(j->line + len, sizeof(j->line) - len, " keyfp=%s at=%llu athash=%s sig=%s", a->keyfp,
				       (unsigned long long)j->at, ahx, j->sighex)
			    : -1;
		if (n < 0 || len + (size_t)n + 1 >= sizeof(j->line)) {
			log_err("audit checkpoint: the line is too long");
			j->state = AUDIT_CJ_FAILED;
		} else {
			j->signed_len = len + (size_t)n - 5 - strlen(j->sighex);
			j->len = len + (size_t)n;
			audit_sha256(j->line, j->len, j->head);
			j->line[j->len] = '\n';
			if (audit_write_line(a, &ev, j->line, j->len + 1, j->head, false, &e) != KH_OK) {
				log_warn("audit checkpoint: %s", e.msg);
				j->state = AUDIT_CJ_FAILED;
			} else {
				j->line[j->len] = '\0';
				atomic_fetch_add(&a->n_checkpoints, 1);
				a->last_ckpt_seq = a->next_seq - 1;
				a->since_ckpt = a->next_seq - 2 - j->at; /* the records written while it was signed */
				a->last_ckpt_mono_us = kh_now_mono_us();
				j->an.seq = a->next_seq - 1;
				j->an.off = (uint64_t)a->size;
				memcpy(j->an.hash, j->head, 32);
				j->an.clean = false;
				a->anchor = j->an;
				a->have_anchor = true;
				j->target = a->written;
				j->prev = a->db_prev_ckpt;
				a->db_prev_ckpt = j->an.seq;
				/* A duplicate: a rotation may replace a->fd meanwhile. */
				j->fd = fcntl(a->fd, F_DUPFD_CLOEXEC, 0);
				j->state = AUDIT_CJ_WRITTEN;
			}
		}
	}
	pthread_cond_signal(&a->ckpt_cond);
}

/* Waits on ckpt_cond until until_us (monotonic), or until signalled
 * when until_us is UINT64_MAX (a->lock held). */
static void audit_ckpt_sleep(struct audit *a, uint64_t until_us)
{
	struct timespec ts = { (time_t)(until_us / 1000000u), (long)(until_us % 1000000u) * 1000 };

	if (until_us == UINT64_MAX)
		pthread_cond_wait(&a->ckpt_cond, &a->lock);
	else
		kh_ignore(pthread_cond_timedwait(&a->ckpt_cond, &a->lock, &ts));
}

/* The thread's part of one checkpoint; a->lock held on entry and return.
 * The anchor is offered the checkpoint once it is on disk (later).
 * Returns the time the signature took (0: none made); *failed when the
 * token could not sign or the line not be written. */
static uint64_t audit_ckpt_make(struct audit *a, struct audit_ckpt_job *j, struct audit_anchor_later *later,
			       bool *failed)
{
	struct hsm_sign_op op;
	struct kh_errbuf e = { 0 };
	uint8_t dig[32];
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	uint64_t t0, sign_us, d, deadline;
	int rc = 0, err = 0;
	char hx[65];

	*failed = false;
	if (a->failed || a->since_ckpt == 0)
		return 0;
	j->at = a->next_seq - 1;
	memcpy(j->athash, a->head, 32);
	j->base = a->last_ckpt_seq;
	j->fd = -1;
	pthread_mutex_unlock(&a->lock);

	t0 = kh_now_mono_us();
	audit_at_digest(j->at, j->athash, a->keyfp, dig);
	memset(&op, 0, sizeof(op));
	op.key = a->key;
	op.digest = KH_DIGEST_SHA256;
	op.in = dig;
	op.in_len = sizeof(dig);
	if (hsm_sign(a->h, &op, &sig, &sig_len, &e) != KH_OK || 2 * sig_len >= sizeof(j->sighex)) {
		log_warn("audit checkpoint failed (retried in a second): %s", e.msg[0] ? e.msg : "signature too long");
		free(sig);
		*failed = true;
		pthread_mutex_lock(&a->lock);
		return 0;
	}
	sign_us = kh_now_mono_us() - t0;
	kh_hex(sig, sig_len, j->sighex, sizeof(j->sighex));
	free(sig);

	pthread_mutex_lock(&a->lock);
	j->state = AUDIT_CJ_SIGNED;
	a->ckpt_job = j;
	deadline = kh_now_mono_us() + AUDIT_CKPT_WRITE_US;
	while (j->state == AUDIT_CJ_SIGNED) {
		if (a->ckpt_stop || kh_now_mono_us() >= deadline)
			audit_ckpt_write_locked(a); /* no record came: the lock is free anyway */
		else
			audit_ckpt_sleep(a, deadline);
	}
	a->ckpt_job = NULL;
	if (j->state == AUDIT_CJ_LATE) {
		/* Signed too slowly for the rate of records: the next one
		 * signs it in place, so that one is made whatever the rate. */
		a->ckpt_now = true;
		return sign_us;
	}
	if (j->state != AUDIT_CJ_WRITTEN) {
		*failed = j->state == AUDIT_CJ_FAILED;
		return sign_us;
	}
	pthread_mutex_lock(&a->anchor_lock);
	pthread_mutex_unlock(&a->lock);

	kh_hex(j->head, 32, hx, sizeof(hx));
	log_info("audit checkpoint %llu (of record %llu) signed in %llu us; chain hash %s", (unsigned long long)j->an.seq,
		 (unsigned long long)j->at, (unsigned long long)sign_us, hx);
	/* The anchor names the line only once it is on disk. */
	if (j->fd >= 0) {
		rc = fdatasync(j->fd);
		err = errno;
		close(j->fd);
	}
	if (j->fd < 0 || rc != 0) {
		pthread_mutex_unlock(&a->anchor_lock);
		pthread_mutex_lock(&a->lock);
		if (!a->failed) {
			errno = err;
			audit_fail(a, "fdatasync");
		}
		*failed = true;
		return sign_us;
	}
	d = atomic_load(&a->durable);
	while (d < j->target && !atomic_compare_exchange_weak(&a->durable, &d, j->target))
		;
	audit_ckpt_record(a, j->an.seq, j->prev, j->line, j->signed_len, j->len, j->head);
	audit_anchor_offer(a, later, &j->an);
	pthread_mutex_unlock(&a->anchor_lock);
	pthread_mutex_lock(&a->lock);
	return sign_us;
}

static void *audit_ckpt_main(void *arg)
{
	struct audit *a = arg;
	struct audit_ckpt_job *j = malloc(sizeof(*j));
	struct audit_anchor_later later = { { 0, 0, { 0 }, false }, false, 0 }; /* the first moves it */
	uint64_t next_us = 0;         /* the next checkpoint starts no sooner */
	uint64_t last_start_us = 0;   /* when the last one started */

	/* The lowest priority: the request path comes first. Only this
	 * thread's (Linux: nice applies per thread). */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 19) != 0)
		log_dbg("audit checkpoint thread: setpriority: %s", strerror(errno));
	pthread_mutex_lock(&a->lock);
	for (;;) {
		uint64_t sign_us = 0, now = kh_now_mono_us(), wake = UINT64_MAX;
		bool failed = false;

		if (later.have && now - later.moved_us >= a->anchor_interval_us) {
			audit_anchor_later_flush(a, &later);
			continue;
		}
		if (a->ckpt_stop)
			break;
		/* Spacing (or a second after a failure). Records do not
		 * signal while one is pending: only a stop wakes this. */
		if (!a->ckpt_pending || now < next_us) {
			if (a->ckpt_pending)
				wake = next_us;
			if (later.have && later.moved_us + a->anchor_interval_us < wake)
				wake = later.moved_us + a->anchor_interval_us;
			audit_ckpt_sleep(a, wake);
			continue;
		}
		a->ckpt_pending = false;
		a->ckpt_busy = true;
		last_start_us = now;
		if (j == NULL) {
			log_err("audit checkpoint thread: out of memory; checkpoints are signed in place");
			a->ckpt_now = true;
		} else {
			sign_us = audit_ckpt_make(a, j, &later, &failed);
		}
		next_us = kh_now_mono_us() + (failed ? 1000000u : AUDIT_CKPT_SPACING * sign_us);
		if (next_us < last_start_us + AUDIT_CKPT_MIN_GAP_US)
			next_us = last_start_us + AUDIT_CKPT_MIN_GAP_US;
		a->ckpt_busy = false;
		a->ckpt_gen++;
		/* Records that came meanwhile did not ask (one was being made). */
		if (!failed && !a->ckpt_now && !a->failed && a->since_ckpt >= a->ckpt_records)
			a->ckpt_pending = true;
		pthread_cond_broadcast(&a->ckpt_idle);
	}
	/* The last one kept is on disk: the anchor moves to it before the
	 * stop's own checkpoint (which moves it further when it is made). */
	audit_anchor_later_flush(a, &later);
	a->ckpt_pending = false;
	pthread_cond_broadcast(&a->ckpt_idle);
	pthread_mutex_unlock(&a->lock);
	free(j);
	return NULL;
}

void audit_checkpoint_wait(struct audit *a)
{
	uint64_t gen;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	/* The one being made and the one due after it, at most: records
	 * that keep coming do not hold the caller. */
	gen = a->ckpt_gen + (a->ckpt_busy ? 2 : 1);
	while ((a->ckpt_pending || a->ckpt_busy) && a->ckpt_running && a->ckpt_gen < gen) {
		audit_ckpt_write_locked(a);
		pthread_cond_wait(&a->ckpt_idle, &a->lock);
	}
	pthread_mutex_unlock(&a->lock);
}

static void audit_ckpt_stop(struct audit *a)
{
	if (!a->ckpt_running)
		return;
	pthread_mutex_lock(&a->lock);
	a->ckpt_stop = true;
	pthread_cond_signal(&a->ckpt_cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->ckpt_thread, NULL);
	pthread_mutex_lock(&a->lock);
	a->ckpt_running = false;
	pthread_cond_broadcast(&a->ckpt_idle);
	pthread_mutex_unlock(&a->lock);
}

static void audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	audit_ckpt_stop(a);
	audit_commit_stop(a);
	pthread_cond_destroy(&a->ckpt_cond);
	pthread_cond_destroy(&a->ckpt_idle);
	pthread_mutex_destroy(&a->anchor_lock);
	pthread_mutex_destroy(&a->cq_lock);
	pthread_cond_destroy(&a->cq_cond);
	pthread_cond_destroy(&a->cq_idle);
	if (a->fd >= 0)
		close(a->fd);
	store_close(a->st);
	EVP_PKEY_free(a->pub);
	free(a->path);
	free(a->dir);
	pthread_mutex_destroy(&a->verify_lock);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

enum kh_err audit_open(const struct audit_config *cfg, struct hsm *h, struct audit **out, struct kh_errbuf *e)
{
	struct audit *a;
	struct audit_event ev = { "keyholdd", "Start", NULL, KH_OK, 0, 1 };
	struct kh_errbuf ce = { 0 };
	char tag[32], why[256], *line = NULL;
	uint64_t torn = 0, last_ts = 0;
	bool finish = false, linked = false;
	size_t len = 0;
	int r = KH_OK;

	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		store_close(cfg->store);
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	}
	a->st = cfg->store;
	a->ts_sec = -1;
	if (cfg->node != NULL && a->st != NULL) {
		struct kh_errbuf cke = { 0 };

		kh_strlcpy(a->node, cfg->node, sizeof(a->node));
		if (store_ckpt_last(a->st, a->node, &a->db_prev_ckpt, &cke) != KH_OK)
			log_warn("audit: the last recorded checkpoint of node '%s': %s", a->node, cke.msg);
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->verify_lock, NULL);
	pthread_mutex_init(&a->cq_lock, NULL);
	pthread_cond_init(&a->cq_cond, NULL);
	pthread_cond_init(&a->cq_idle, NULL);
	pthread_mutex_init(&a->anchor_lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&a->ckpt_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_cond_init(&a->ckpt_idle, NULL);
	a->ckpt_inline = cfg->checkpoint_inline;
	a->fd = -1;
	a->h = h;
	a->ckpt_records = cfg->checkpoint_records ? cfg->checkpoint_records : 256;
	a->ckpt_interval_s = cfg->checkpoint_interval_s ? cfg->checkpoint_interval_s : 60;
	a->anchor_interval_us = (uint64_t)cfg->anchor_interval_s * 1000000u;
	a->sync_always = cfg->sync_always;
	a->tamper_refuse = cfg->tamper_refuse;
	kh_strlcpy(a->key, cfg->key != NULL ? cfg->key : "keyhold-audit", sizeof(a->key));
	if (cfg->anchor_per_node && a->node[0] != '\0') {
		snprintf(a->anchor_label, sizeof(a->anchor_label), "%s" AUDIT_ANCHOR_SUFFIX "-%s", a->key, a->node);
		kh_strlcpy(a->anchor_node, a->node, sizeof(a->anchor_node));
	} else {
		snprintf(a->anchor_label, sizeof(a->anchor_label), "%s" AUDIT_ANCHOR_SUFFIX, a->key);
	}
	a->rotate_size = cfg->rotate_size;
	a->rotate_age_s = cfg->rotate_age_s;
	a->rotate_keep = cfg->rotate_keep;
	a->now_s = cfg->now_s;
	a->journal = cfg->journal;
#ifdef KEYHOLD_TESTING
	{
		const char *c = getenv("KEYHOLD_TEST_AUDIT_CRASH_AT");

		if (c != NULL && c[0] != '\0') {
			kh_strlcpy(a->crash_at, c, sizeof(a->crash_at));
			log_warn("test build: keyholdd will kill itself at audit point '%s'", a->crash_at);
		}
	}
#endif
	a->path = strdup(cfg->path);
	KH_ENSURE(a->path != NULL, KH_E_RESOURCE_EXHAUSTED);
	{
		char *slash = strrchr(a->path, '/');

		a->base = slash != NULL ? slash + 1 : a->path;
		a->dir = slash == NULL ? strdup(".") : slash == a->path ? strdup("/") : strndup(a->path, (size_t)(slash - a->path));
		KH_ENSURE(a->dir != NULL && a->base[0] != '\0', KH_E_RESOURCE_EXHAUSTED);
	}
	a->fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	KH_ENSURE(a->fd >= 0, kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot open the audit log %s: %s", a->path,
					 strerror(errno)));
	/* The anchor first: nothing in the file is adopted before it is
	 * checked against the checkpoint keyholdd last wrote. */
	audit_anchor_load(a);
	audit_rotation_resume(a, &finish, &linked, &last_ts);
	if (finish || linked) {
		tag[0] = why[0] = '\0';
		log_warn("audit log %s: keyholdd stopped during a rotation after checkpoint %llu; %s", a->path,
			 (unsigned long long)a->anchor.seq, finish ? "the rotation is finished now" : "it had finished");
	} else {
		audit_anchor_check(a, tag, sizeof(tag), why, sizeof(why));
	}
	if (why[0] != '\0') {
		log_err("audit log %s: %s", a->path, why);
		KH_ENSURE(!a->tamper_refuse,
			  kh_err_set(e, KH_E_DATA_LOSS, "%s: %s (see [audit] on_tamper in docs/SECURITY.md)", a->path, why));
	}
	KH_TRY(audit_find_head(a, &torn, e));
	if (a->next_seq == 0) {
		/* Count the lines to continue the numbering. */
		FILE *f = fopen(a->path, "re");
		int c;

		a->next_seq = 1;
		while (f != NULL && (c = getc(f)) != EOF)
			a->next_seq += c == '\n';
		if (f != NULL)
			fclose(f);
	}
	KH_TRY(audit_key_setup(a, e));
	a->last_ckpt_mono_us = a->last_sync_mono_us = kh_now_mono_us();
	line = malloc(AUDIT_LINE_MAX + 1);
	KH_ENSURE(line != NULL, KH_E_RESOURCE_EXHAUSTED);
	a->file_first_seq = a->next_seq;
	a->file_start_us = audit_wall_us(a);
	if (finish && a->size == 0) {
		/* The new log of the interrupted rotation gets its RotateStart. */
		a->next_seq = a->anchor.seq + 1;
		memcpy(a->head, a->anchor.hash, 32);
		a->last_ts_us = last_ts;
		a->file_first_seq = a->next_seq;
		pthread_mutex_lock(&a->lock);
		r = audit_checkpoint_m(a, "RotateStart", false, e);
		pthread_mutex_unlock(&a->lock);
		KH_TRY(r);
	} else if (audit_head_line(a->fd, line, AUDIT_LINE_MAX + 1, &len)) {
		struct audit_rec fr;

		if (audit_parse(line, len, &fr)) {
			a->file_first_seq = fr.seq;
			a->file_start_us = fr.time_us;
		}
	}
	if (tag[0] != '\0') {
		/* on_tamper = report: the finding is the first record of this
		 * run, so every later verify reports it (DATA_LOSS). */
		struct audit_event te = { "keyholdd", "AuditTamper", tag, KH_E_DATA_LOSS, 0, 1 };

		KH_TRY(audit_append(a, &te, e));
	}
	KH_TRY(audit_append(a, &ev, e));
	if (torn > 0) {
		struct audit_event re = { "keyholdd", "AuditRepair", "torn-at-start", KH_E_DATA_LOSS, 0, torn };

		KH_TRY(audit_append(a, &re, e));
	}
	pthread_mutex_lock(&a->lock);
	if (tag[0] != '\0') {
		/* The finding is on record: anchor the log as it now is. */
		if (audit_checkpoint_locked(a, false, &ce) != KH_OK)
			log_warn("the audit checkpoint after the finding failed: %s", ce.msg);
	} else if (a->have_anchor && a->anchor.clean) {
		/* From here on records follow the anchored checkpoint: after a
		 * crash they are this run's, not foreign ones. */
		audit_anchor_mark_running(a);
	}
	pthread_mutex_unlock(&a->lock);
	log_info("audit log %s: next record %llu, checkpoint key '%s' (SPKI SHA-256 %s)", a->path,
		 (unsigned long long)a->next_seq, a->key, a->keyfp);
	/* sync = always: the group-commit thread (without it every record is
	 * synced under the lock, as before). */
	if (a->sync_always && pthread_create(&a->commit_thread, NULL, audit_commit_main, a) == 0)
		a->commit_running = true;
	/* The checkpoint thread (without it checkpoints are signed in place). */
	if (!a->ckpt_inline && pthread_create(&a->ckpt_thread, NULL, audit_ckpt_main, a) == 0)
		a->ckpt_running = true;
	*out = a;
	a = NULL;
out:
	free(line);
	audit_free(a);
	return r;
}

void audit_close(struct audit *a)
{
	struct audit_event ev = { "keyholdd", "Stop", NULL, KH_OK, 0, 1 };
	struct kh_errbuf e = { 0 };
	size_t i;

	if (a == NULL)
		return;
	/* Deferred answers first (their records are synced), and no
	 * checkpoint in flight: the final one is signed here. */
	audit_commit_stop(a);
	audit_ckpt_stop(a);
	pthread_mutex_lock(&a->lock);
	for (i = 0; i < AUDIT_REFUSAL_SLOTS; i++)
		if (a->refusals[i].window_start_us != 0)
			audit_refusal_flush(a, &a->refusals[i]);
	if (audit_append_locked(a, &ev, &e) != KH_OK || audit_checkpoint_locked(a, true, &e) != KH_OK)
		log_err("audit log %s: the final checkpoint failed: %s", a->path, e.msg);
	if (fdatasync(a->fd) != 0)
		log_err("audit log %s: fdatasync: %s", a->path, strerror(errno));
	pthread_mutex_unlock(&a->lock);
	audit_free(a);
}

/* ---- reading ---- */

/* Reads the next line of f into buf (without the newline); returns its
 * length, -1 at the end, -2 for a line longer than the cap (skipped). */
static long audit_getline(FILE *f, char *buf, size_t bufsz, off_t *pos)
{
	size_t n = 0;
	int c;
	bool too_long = false;

	while ((c = getc_unlocked(f)) != EOF) {
		(*pos)++;
		if (c == '\n')
			return too_long ? -2 : (long)n;
		if (n + 1 < bufsz)
			buf[n++] = (char)c;
		else
			too_long = true;
	}
	if (n == 0 && !too_long)
		return -1;
	return too_long ? -2 : (long)n; /* a last line without newline */
}

/* Where a page of audit_show stands. */
struct audit_showpass {
	uint64_t since_us, from_seq, next;
	size_t limit, shown;
	bool cut;
	audit_show_fn fn;
	void *arg;
};

/* The records of one file (to size bytes; -1: to its end). */
static enum kh_err audit_show_file(struct audit_showpass *sp, FILE *f, off_t size, char *line, struct kh_errbuf *e)
{
	off_t pos = 0;
	int r = KH_OK;

	while (!sp->cut && (size < 0 || pos < size)) {
		struct audit_rec rec;
		struct audit_shown x;
		long n = audit_getline(f, line, AUDIT_LINE_MAX, &pos);

		if (n == -1)
			break;
		if (n < 0 || !audit_parse(line, (size_t)n, &rec))
			continue; /* audit verify reports it */
		if (rec.seq < sp->from_seq || rec.time_us < sp->since_us)
			continue;
		if (sp->shown == sp->limit) {
			sp->cut = true;
			sp->next = rec.seq;
			break;
		}
		x.seq = rec.seq;
		x.time_us = rec.time_us;
		x.ev.principal = rec.who;
		x.ev.method = rec.method;
		x.ev.object = rec.obj;
		x.ev.code = (enum kh_err)rec.code;
		x.ev.duration_us = rec.dur_us;
		x.ev.count = rec.count;
		x.checkpoint = rec.checkpoint;
		KH_TRY(sp->fn(sp->arg, &x, e));
		sp->shown++;
	}
out:
	return r;
}

enum kh_err audit_show(struct audit *a, uint64_t since_s, uint64_t from_seq, uint32_t limit_in, audit_show_fn fn,
		       void *arg, uint64_t *next_seq, bool *more, struct kh_errbuf *e)
{
	struct audit_showpass sp;
	struct audit_rotfile *rf = NULL;
	FILE *f = NULL;
	char *line = NULL;
	size_t n_rot = 0, i;
	off_t size;
	int fd, r = KH_OK;

	memset(&sp, 0, sizeof(sp));
	sp.limit = limit_in ? limit_in : AUDIT_PAGE_DEFAULT;
	if (sp.limit > AUDIT_PAGE_MAX)
		sp.limit = AUDIT_PAGE_MAX;
	/* A since past what microseconds can hold matches nothing. */
	sp.since_us = since_s > UINT64_MAX / 1000000u ? UINT64_MAX : since_s * 1000000u;
	sp.from_seq = from_seq;
	sp.fn = fn;
	sp.arg = arg;
	line = malloc(AUDIT_LINE_MAX);
	KH_ENSURE(line != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	/* The rotated files and the log as one consistent set: no rotation
	 * between listing them and opening the log. */
	pthread_mutex_lock(&a->lock);
	size = a->size;
	if (audit_rot_list(a->path, &rf, &n_rot) != KH_OK)
		n_rot = 0;
	fd = open(a->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	pthread_mutex_unlock(&a->lock);
	KH_ENSURE(fd >= 0, kh_err_set(e, KH_E_UNAVAILABLE, "cannot read %s: %s", a->path, strerror(errno)));
	f = fdopen(fd, "re");
	if (f == NULL)
		close(fd);
	KH_ENSURE(f != NULL, kh_err_set(e, KH_E_UNAVAILABLE, "cannot read %s: %s", a->path, strerror(errno)));
	for (i = 0; i < n_rot && !sp.cut; i++) {
		char path[4096];
		FILE *rfh;

		if (rf[i].last < from_seq || !audit_rot_path(a, rf[i].name, path, sizeof(path)))
			continue;
		rfh = fopen(path, "re");
		if (rfh == NULL)
			continue; /* deleted by retention meanwhile */
		r = audit_show_file(&sp, rfh, -1, line, e);
		fclose(rfh);
		KH_TRY(r);
	}
	if (!sp.cut)
		KH_TRY(audit_show_file(&sp, f, size, line, e));
	*next_seq = sp.next;
	*more = sp.cut;
out:
	if (f != NULL)
		fclose(f);
	free(rf);
	free(line);
	return r;
}

/* A checkpoint's signature: over its own line up to " sig=", or, for one
 * signed off the request path, over the record it names (audit_at_digest). */
static bool audit_sig_ok(struct audit *a, const char *line, const struct audit_rec *rec)
{
	uint8_t dig[32];
	EVP_PKEY_CTX *ctx;
	bool ok;

	if (rec->at_set)
		audit_at_digest(rec->at, rec->athash, rec->keyfp, dig);
	else
		audit_sha256(line, rec->signed_len, dig);
	ctx = EVP_PKEY_CTX_new(a->pub, NULL);
	ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_verify(ctx, rec->sig, rec->sig_len, dig, sizeof(dig)) == 1;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* One pass of verify over the rotated files and the log. */
struct audit_vpass {
	struct audit_verdict *v;
	uint64_t breaks;
	uint64_t expect, lineno;
	uint8_t prev[32];
	bool resync;                  /* after an unreadable line: adopt the next record */
	EVP_MD_CTX *run;              /* SHA-256 of every byte of the log read so far */
	bool run_ok;                  /* false after a line the buffer could not hold */
	off_t pos;
	struct audit_vcache cand;     /* the cache this pass can leave */
	/* across files */
	const char *fname;            /* the rotated file being read; NULL: the log */
	const char *prev_fname;       /* the file before it */
	bool in_log;
	bool file_start;              /* no record of this file read yet */
	bool adopt;                   /* the first file: take up the chain at its first record */
	bool need_start;              /* the file must begin with a signed RotateStart */
	bool last_ckpt;               /* the last record read was a signed checkpoint */
	char last_method[48];
	uint64_t retained_upto;       /* the last record of files AuditRetention records name */
	uint64_t start_seq;           /* where the chain was taken up (0: at record 1) */
	char start_file[256];
	uint64_t base_records, base_checkpoints; /* before the log */
	/* The line hashes of the last AUDIT_HASH_RING records read, by
	 * seq modulo the ring: a checkpoint signed off the request path
	 * names an earlier record's (AUDIT_CKPT_LAG at most). */
	uint64_t *ring_seq;
	uint8_t (*ring_hash)[32];
};

static void audit_ring_put(struct audit_vpass *p, uint64_t seq, const uint8_t hash[32])
{
	p->ring_seq[seq % AUDIT_HASH_RING] = seq;
	memcpy(p->ring_hash[seq % AUDIT_HASH_RING], hash, 32);
}

/* The record a checkpoint signed off the request path names was read in
 * this pass, and its line hash is the one signed. */
static bool audit_ring_ok(const struct audit_vpass *p, const struct audit_rec *rec)
{
	return p->ring_seq[rec->at % AUDIT_HASH_RING] == rec->at &&
	       memcmp(p->ring_hash[rec->at % AUDIT_HASH_RING], rec->athash, 32) == 0;
}

#define AUDIT_REASON_SUMMARY 48

static void audit_bad(struct audit_vpass *p, uint64_t seq, uint64_t line, const char *fmt, ...) KH_PRINTF(4, 5);
static void audit_bad(struct audit_vpass *p, uint64_t seq, uint64_t line, const char *fmt, ...)
{
	struct audit_verdict *v = p->v;
	char msg[320], full[600];
	size_t used, ml;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->fname != NULL)
		snprintf(full, sizeof(full), "%s: %s", p->fname, msg);
	else
		kh_strlcpy(full, msg, sizeof(full));
	p->breaks++;
	if (v->ok) {
		v->ok = false;
		v->bad_seq = seq;
		v->bad_line = line;
		kh_strlcpy(v->reason, full, sizeof(v->reason) - AUDIT_REASON_SUMMARY);
		return;
	}
	/* Every later break is named too, as long as the reason has room. */
	used = strlen(v->reason);
	ml = strlen(full);
	if (used + ml + 40 + AUDIT_REASON_SUMMARY < sizeof(v->reason))
		snprintf(v->reason + used, sizeof(v->reason) - used, "; record %llu (line %llu): %s",
			 (unsigned long long)seq, (unsigned long long)line, full);
}

/* The first record of a file: where the chain is taken up (the oldest
 * file), or the link to the file before (its prev is the hash of that
 * file's last line, checked as any prev). */
static void audit_verify_file_start(struct audit_vpass *p, const struct audit_rec *rec)
{
	p->file_start = false;
	if (p->adopt) {
		p->adopt = false;
		if (rec->seq > 1) {
			/* Older files are gone: start at this file's signed
			 * checkpoint (checked below) and say so. */
			p->expect = rec->seq;
			memcpy(p->prev, rec->prev, 32);
			p->need_start = true;
			p->start_seq = rec->seq;
			kh_strlcpy(p->start_file, p->fname != NULL ? p->fname : "the log", sizeof(p->start_file));
		}
	} else if (rec->seq > p->expect) {
		audit_bad(p, p->expect, p->lineno, "records %llu to %llu are missing: no file holds them (%s, then %s)",
			  (unsigned long long)p->expect, (unsigned long long)(rec->seq - 1),
			  p->prev_fname != NULL ? p->prev_fname : "-", p->fname != NULL ? p->fname : "the log");
		p->expect = rec->seq;
		memcpy(p->prev, rec->prev, 32);
	}
	if (p->need_start && !(rec->checkpoint && strcmp(rec->method, "RotateStart") == 0))
		audit_bad(p, rec->seq, p->lineno, "the file does not begin with a signed RotateStart checkpoint (record %llu)",
			  (unsigned long long)rec->seq);
}

/* Verifies lines from the current position to the end of f. stop_at_torn:
 * a last line without its newline may still be being written; leave it
 * for the locked pass. */
static void audit_verify_lines(struct audit *a, struct audit_vpass *p, FILE *f, char *line, bool stop_at_torn)
{
	struct audit_verdict *v = p->v;

	for (;;) {
		struct audit_rec rec;
		off_t start = p->pos;
		long n = audit_getline(f, line, AUDIT_LINE_MAX, &p->pos);
		bool has_nl;
		bool seq_ok = true;

		if (n == -1)
			break;
		has_nl = n >= 0 && p->pos - start == (off_t)n + 1;
		if (n >= 0 && !has_nl && stop_at_torn) {
			p->pos = start;
			if (fseeko(f, start, SEEK_SET) != 0)
				p->run_ok = false;
			break;
		}
		if (p->in_log && n >= 0 && p->run_ok) {
			EVP_DigestUpdate(p->run, line, (size_t)n);
			if (has_nl)
				EVP_DigestUpdate(p->run, "\n", 1);
		} else if (p->in_log) {
			p->run_ok = false;
		}
		p->lineno++;
		p->last_ckpt = false;
		if (n < 0 || !audit_parse(line, (size_t)n, &rec)) {
			audit_bad(p, p->expect, p->lineno, "line %llu is not an audit record (record %llu expected there)",
				  (unsigned long long)p->lineno, (unsigned long long)p->expect);
			p->resync = true;
			p->file_start = false;
			continue;
		}
		if (p->file_start)
			audit_verify_file_start(p, &rec);
		if (p->resync) {
			p->resync = false; /* already reported: take up the chain again here */
		} else if (rec.seq > p->expect) {
			audit_bad(p, p->expect, p->lineno, "record %llu is missing: line %llu holds record %llu",
				  (unsigned long long)p->expect, (unsigned long long)p->lineno, (unsigned long long)rec.seq);
			seq_ok = false;
		} else if (rec.seq < p->expect) {
			audit_bad(p, p->expect, p->lineno,
				  "records out of order: line %llu holds record %llu where record %llu belongs",
				  (unsigned long long)p->lineno, (unsigned long long)rec.seq, (unsigned long long)p->expect);
			seq_ok = false;
		}
		if (seq_ok && memcmp(rec.prev, p->prev, 32) != 0) {
			if (rec.seq == 1)
				audit_bad(p, 1, p->lineno, "record 1 does not start the chain (its prev is not zero)");
			else if (p->lineno == 1)
				audit_bad(p, rec.seq - 1, p->lineno,
					  "record %llu, the last of %s, was altered or the file replaced: its hash does not match "
					  "the one record %llu holds",
					  (unsigned long long)(rec.seq - 1), p->prev_fname != NULL ? p->prev_fname : "the file before",
					  (unsigned long long)rec.seq);
			else
				audit_bad(p, rec.seq - 1, p->lineno - 1,
					  "record %llu was altered: its hash does not match the one record %llu holds",
					  (unsigned long long)(rec.seq - 1), (unsigned long long)rec.seq);
		}
		if (strcmp(rec.method, "AuditTamper") == 0)
			audit_bad(p, rec.seq, p->lineno,
				  "keyholdd found the log tampered with when it started (%s): records before record %llu were "
				  "removed, rewritten or added while it was stopped",
				  rec.obj, (unsigned long long)rec.seq);
		if (strcmp(rec.method, "AuditRetention") == 0) {
			const char *dash = strchr(rec.obj, '-');
			uint64_t upto;

			if (dash != NULL && audit_rot_num(dash + 1, strlen(dash + 1), &upto) && upto > p->retained_upto)
				p->retained_upto = upto;
		}
		kh_strlcpy(p->last_method, rec.method, sizeof(p->last_method));
		if (rec.checkpoint) {
			if (strcmp(rec.keyfp, a->keyfp) != 0) {
				audit_bad(p, rec.seq, p->lineno,
					  "checkpoint record %llu was signed by another key (SPKI SHA-256 %.16s...), not '%s'",
					  (unsigned long long)rec.seq, rec.keyfp, a->key);
			} else if (!audit_sig_ok(a, line, &rec)) {
				audit_bad(p, rec.seq, p->lineno, "checkpoint record %llu: the signature does not verify",
					  (unsigned long long)rec.seq);
			} else if (rec.at_set && !audit_ring_ok(p, &rec)) {
				audit_bad(p, rec.seq, p->lineno,
					  "checkpoint record %llu signed record %llu as another line: record %llu was rewritten "
					  "(or is not in the log before it)",
					  (unsigned long long)rec.seq, (unsigned long long)rec.at, (unsigned long long)rec.at);
			} else {
				v->checkpoints++;
				v->last_checkpoint_seq = rec.seq;
				v->unsigned_tail = 0;
				p->last_ckpt = true;
			}
		} else {
			v->unsigned_tail++;
		}
		audit_sha256(line, (size_t)n, p->prev);
		audit_ring_put(p, rec.seq, p->prev);
		v->records++;
		p->expect = rec.seq + 1;
		if (p->in_log && rec.checkpoint && p->breaks == 0 && p->run_ok && has_nl) {
			/* Everything up to here holds: a later verify may start
			 * here once the bytes before still hash the same. */
			EVP_MD_CTX *c = EVP_MD_CTX_new();
			unsigned dl = 32;

			if (c != NULL && EVP_MD_CTX_copy_ex(c, p->run) == 1 && EVP_DigestFinal_ex(c, p->cand.prefix, &dl) == 1) {
				p->cand.valid = true;
				p->cand.off = p->pos;
				p->cand.expect = p->expect;
				p->cand.lineno = p->lineno;
				p->cand.records = v->records - p->base_records;
				p->cand.checkpoints = v->checkpoints - p->base_checkpoints;
				p->cand.last_checkpoint_seq = v->last_checkpoint_seq;
				p->cand.retained_upto = p->retained_upto;
				p->cand.start_seq = p->start_seq;
				memcpy(p->cand.prev, p->prev, 32);
			}
			EVP_MD_CTX_free(c);
		}
	}
	clearerr(f);
}

/* Starts p at the cached prefix of the log when its first bytes still
 * hash to it (a plain SHA-256 pass: far cheaper than parsing and checking
 * every signature again) and the rotated files before it ended as they
 * did; else at the start. */
static void audit_verify_resume(struct audit *a, struct audit_vpass *p, FILE *f)
{
	struct audit_vcache c;
	uint8_t *buf = NULL, dig[32];
	EVP_MD_CTX *tmp = NULL;
	off_t done = 0;
	unsigned dl = 32;

	pthread_mutex_lock(&a->lock);
	c = a->vcache;
	pthread_mutex_unlock(&a->lock);
	if (!c.valid || c.link_expect != p->expect || c.link_adopt != p->adopt || memcmp(c.link_prev, p->prev, 32) != 0)
		return;
	buf = malloc(1u << 20);
	tmp = EVP_MD_CTX_new();
	if (buf == NULL || tmp == NULL)
		goto restart;
	while (done < c.off) {
		size_t want = (size_t)(c.off - done) < (1u << 20) ? (size_t)(c.off - done) : (1u << 20);
		size_t got = fread(buf, 1, want, f);

		if (got == 0)
			goto restart;
		EVP_DigestUpdate(p->run, buf, got);
		done += (off_t)got;
	}
	if (EVP_MD_CTX_copy_ex(tmp, p->run) != 1 || EVP_DigestFinal_ex(tmp, dig, &dl) != 1 ||
	    CRYPTO_memcmp(dig, c.prefix, 32) != 0)
		goto restart;
	p->pos = c.off;
	p->expect = c.expect;
	p->lineno = c.lineno;
	memcpy(p->prev, c.prev, 32);
	audit_ring_put(p, c.expect - 1, c.prev); /* the checkpoint: later ones sign it or a record after it */
	p->v->records = p->base_records + c.records;
	p->v->checkpoints = p->base_checkpoints + c.checkpoints;
	p->v->last_checkpoint_seq = c.last_checkpoint_seq;
	if (c.retained_upto > p->retained_upto)
		p->retained_upto = c.retained_upto;
	if (c.start_seq > 0 && p->adopt) {
		p->start_seq = c.start_seq;
		kh_strlcpy(p->start_file, "the log", sizeof(p->start_file));
	}
	p->adopt = false;
	p->file_start = false;
	p->need_start = false;
	p->cand = c;
	log_dbg("audit verify: resumed after checkpoint %llu (%lld bytes before it hashed, not parsed)",
		(unsigned long long)c.last_checkpoint_seq, (long long)c.off);
	goto out;
restart:
	log_info("audit verify: the log changed before the last verified checkpoint; verifying it all");
	rewind(f);
	EVP_DigestInit_ex(p->run, EVP_sha256(), NULL);
out:
	EVP_MD_CTX_free(tmp);
	free(buf);
}

/* One rotated file, whole: it must hold the records its name says and end
 * with a signed RotateEnd checkpoint. */
static void audit_verify_rotated(struct audit *a, struct audit_vpass *p, const struct audit_rotfile *rf, char *line)
{
	char path[4096];
	FILE *f = NULL;

	p->fname = rf->name;
	p->lineno = 0;
	p->pos = 0;
	p->file_start = true;
	p->resync = false;
	p->last_ckpt = false;
	p->last_method[0] = '\0';
	if (!audit_rot_path(a, rf->name, path, sizeof(path)) || (f = fopen(path, "re")) == NULL) {
		audit_bad(p, rf->first, 0, "cannot read it: %s", strerror(errno));
		goto out;
	}
	setvbuf(f, NULL, _IOFBF, 1u << 16);
	audit_verify_lines(a, p, f, line, false);
	if (p->file_start)
		audit_bad(p, rf->first, 0, "the file holds no record");
	else if (!p->last_ckpt || strcmp(p->last_method, "RotateEnd") != 0)
		audit_bad(p, p->expect, p->lineno,
			  "the file does not end with a signed RotateEnd checkpoint: records were cut from its end");
	else if (p->expect - 1 != rf->last)
		audit_bad(p, p->expect - 1, p->lineno, "the file ends with record %llu; its name says %llu",
			  (unsigned long long)(p->expect - 1), (unsigned long long)rf->last);
	p->v->files++;
out:
	if (f != NULL)
		fclose(f);
	p->prev_fname = rf->name;
	p->fname = NULL;
	p->need_start = true; /* every later file begins with a RotateStart */
}

enum kh_err audit_verify(struct audit *a, struct audit_verdict *v, struct kh_errbuf *e)
{
	FILE *f = NULL;
	char *line = NULL;
	struct audit_vpass p;
	struct audit_rotfile *rf = NULL;
	size_t n_rot = 0, i;
	struct stat st;
	bool locked = false;
	int r = KH_OK;

	memset(v, 0, sizeof(*v));
	memset(&p, 0, sizeof(p));
	v->ok = true;
	p.v = v;
	p.expect = 1;
	p.run_ok = true;
	p.adopt = true;
	p.file_start = true;
	kh_strlcpy(v->key_fp, a->keyfp, sizeof(v->key_fp));
	/* A checkpoint already due is part of what is verified. */
	audit_checkpoint_wait(a);
	/* One verify at a time: a second one would hold another worker for
	 * as long; the first one's result is moments away. No rotation
	 * either while it runs (audit_rotate_locked waits for the next
	 * append). */
	if (pthread_mutex_trylock(&a->verify_lock) != 0)
		return kh_err_set(e, KH_E_UNAVAILABLE, "another audit verify is running; try again when it has finished");
	line = malloc(AUDIT_LINE_MAX);
	p.run = EVP_MD_CTX_new();
	p.ring_seq = calloc(AUDIT_HASH_RING, sizeof(*p.ring_seq));
	p.ring_hash = calloc(AUDIT_HASH_RING, sizeof(*p.ring_hash));
	KH_ENSURE(line != NULL && p.run != NULL && p.ring_seq != NULL && p.ring_hash != NULL &&
			  EVP_DigestInit_ex(p.run, EVP_sha256(), NULL) == 1,
		  kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	KH_ENSURE(audit_rot_list(a->path, &rf, &n_rot) == KH_OK,
		  kh_err_set(e, KH_E_UNAVAILABLE, "cannot list the rotated files of %s", a->path));
	for (i = 0; i < n_rot; i++)
		audit_verify_rotated(a, &p, &rf[i], line);
	f = fopen(a->path, "re");
	KH_ENSURE(f != NULL, kh_err_set(e, KH_E_UNAVAILABLE, "cannot read %s: %s", a->path, strerror(errno)));
	setvbuf(f, NULL, _IOFBF, 1u << 16);
	p.in_log = true;
	p.lineno = 0;
	p.pos = 0;
	p.resync = false;
	p.file_start = true;
	p.base_records = v->records;
	p.base_checkpoints = v->checkpoints;
	p.cand.link_expect = p.expect;
	p.cand.link_adopt = p.adopt;
	memcpy(p.cand.link_prev, p.prev, 32);
	audit_verify_resume(a, &p, f);
	/* The whole file, to its end (not only what keyholdd remembers);
	 * then, with appends held, the few records written meanwhile. */
	audit_verify_lines(a, &p, f, line, true);
	pthread_mutex_lock(&a->lock);
	locked = true;
	audit_verify_lines(a, &p, f, line, false);
	v->files++;
	if (fstat(fileno(f), &st) == 0 && st.st_size < a->size)
		audit_bad(&p, p.expect, p.lineno + 1,
			  "records %llu to %llu are missing from the end of the log (it is %lld bytes shorter than keyholdd wrote)",
			  (unsigned long long)p.expect, (unsigned long long)(a->next_seq - 1),
			  (long long)(a->size - st.st_size));
	else if (p.pos > a->size)
		audit_bad(&p, p.expect, p.lineno,
			  "%lld bytes after record %llu, the last one keyholdd wrote, were added by someone else",
			  (long long)(p.pos - a->size), (unsigned long long)(a->next_seq - 1));
	else if (p.pos == a->size && v->records > 0 && memcmp(p.prev, a->head, 32) != 0)
		audit_bad(&p, a->next_seq - 1, p.lineno, "the last record %llu is not the one keyholdd wrote",
			  (unsigned long long)(a->next_seq - 1));
	if (p.cand.valid && p.cand.off <= a->size)
		a->vcache = p.cand;
	v->first_seq = p.start_seq > 0 ? p.start_seq : 1;
	if (p.start_seq > 1) {
		/* Older files are gone: fine when retention deleted them (and
		 * said so in a record), a break otherwise. */
		if (p.retained_upto + 1 >= p.start_seq) {
			if (v->ok)
				snprintf(v->reason, sizeof(v->reason),
					 "verification starts at record %llu, the signed checkpoint that begins %s: records 1 to "
					 "%llu were in rotated files deleted by retention ([audit] rotate_keep)",
					 (unsigned long long)p.start_seq, p.start_file, (unsigned long long)(p.start_seq - 1));
		} else {
			audit_bad(&p, 1, 0,
				  "records 1 to %llu are missing: the files before %s were removed, and no AuditRetention "
				  "record says retention deleted them",
				  (unsigned long long)(p.start_seq - 1), p.start_file);
		}
	}
	if (p.breaks > 1) {
		size_t used = strlen(v->reason);

		snprintf(v->reason + used, sizeof(v->reason) - used, " [%llu breaks in all]", (unsigned long long)p.breaks);
	}
out:
	if (locked)
		pthread_mutex_unlock(&a->lock);
	if (f != NULL)
		fclose(f);
	EVP_MD_CTX_free(p.run);
	free(p.ring_seq);
	free(p.ring_hash);
	free(rf);
	free(line);
	pthread_mutex_unlock(&a->verify_lock);
	return r;
}

/* ---- every node's checkpoints in the state database (verify --cluster) ---- */

/* The sequence number a checkpoint line starts with ("v1 seq=N "). */
static bool audit_line_seq(const char *line, uint64_t *seq)
{
	uint64_t v = 0;
	const char *p;

	if (strncmp(line, "v1 seq=", 7) != 0)
		return false;
	for (p = line + 7; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == line + 7 || *p != ' ')
		return false;
	*seq = v;
	return true;
}

/* A recorded checkpoint's line names the key that signed it (obj= the
 * key, keyfp= the SHA-256 of its SubjectPublicKeyInfo): it must be this
 * node's audit key, the one key every node of the cluster signs with
 * (cluster/ refuses a node with another). */
static bool audit_ckpt_key_ok(struct audit *a, const struct store_ckpt *c, struct audit_rec *out, char *why,
			      size_t whysz)
{
	char line[AUDIT_LINE_MAX + 1];
	struct audit_rec rec;
	int len;

	len = snprintf(line, sizeof(line), "%s sig=%s", c->signed_text, c->sig);
	if (len < 0 || (size_t)len >= sizeof(line) || !audit_parse(line, (size_t)len, &rec) || !rec.checkpoint) {
		snprintf(why, whysz, "checkpoint %llu: the recorded line does not parse", (unsigned long long)c->seq);
		return false;
	}
	if (a->pub == NULL || strcmp(rec.keyfp, a->keyfp) != 0) {
		snprintf(why, whysz, "checkpoint %llu: signed by key '%s' (%.16s...), not the cluster's audit key '%s' (%.16s...)",
			 (unsigned long long)c->seq, rec.obj, rec.keyfp, a->key, a->keyfp);
		return false;
	}
	*out = rec;
	return true;
}

/* One row: line's sequence number, signature and chain hash. */
static bool audit_ckpt_ok(struct audit *a, const struct store_ckpt *c, char *why, size_t whysz)
{
	uint8_t sig[160], dig[32], head[32];
	char hx[65];
	size_t sig_len = 0, tl = strlen(c->signed_text);
	uint64_t seq = 0;
	struct audit_rec rec;
	EVP_PKEY_CTX *ctx;
	EVP_MD_CTX *md;
	bool ok;

	if (!audit_line_seq(c->signed_text, &seq) || seq != c->seq) {
		snprintf(why, whysz, "checkpoint %llu: the recorded line is of another record",
			 (unsigned long long)c->seq);
		return false;
	}
	if (kh_unhex(c->sig, sig, sizeof(sig), &sig_len) != 0 || sig_len == 0) {
		snprintf(why, whysz, "checkpoint %llu: the signature is not hex", (unsigned long long)c->seq);
		return false;
	}
	if (!audit_ckpt_key_ok(a, c, &rec, why, whysz))
		return false;
	/* Signed over its own line, or over the record it names (signed off
	 * the request path: that record's hash is checked by verify of the
	 * node's own file). */
	if (rec.at_set)
		audit_at_digest(rec.at, rec.athash, rec.keyfp, dig);
	else
		audit_sha256(c->signed_text, tl, dig);
	ctx = EVP_PKEY_CTX_new(a->pub, NULL);
	ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_verify(ctx, sig, sig_len, dig, sizeof(dig)) == 1;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	if (!ok) {
		snprintf(why, whysz, "checkpoint %llu: the signature does not verify with the audit key (%.16s...)",
			 (unsigned long long)c->seq, a->keyfp);
		return false;
	}
	/* The chain hash after the line: SHA-256 of it with " sig=HEX". */
	md = EVP_MD_CTX_new();
	ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(md, c->signed_text, tl) == 1 && EVP_DigestUpdate(md, " sig=", 5) == 1 &&
	     EVP_DigestUpdate(md, c->sig, strlen(c->sig)) == 1 && EVP_DigestFinal_ex(md, head, NULL) == 1;
	EVP_MD_CTX_free(md);
	kh_hex(head, 32, hx, sizeof(hx));
	if (!ok || strcmp(hx, c->chain) != 0) {
		snprintf(why, whysz, "checkpoint %llu: the recorded chain hash is not the line's", (unsigned long long)c->seq);
		return false;
	}
	return true;
}

static void audit_nv_problem(struct audit_node_verdict *v, const char *why)
{
	v->ok = false;
	if (v->reason[0] == '\0')
		kh_strlcpy(v->reason, why, sizeof(v->reason));
}

enum kh_err audit_verify_cluster(struct audit *a, struct audit_node_verdict **out, size_t *nout,
				 struct kh_errbuf *e)
{
	struct store_ckpt *rows = NULL;
	struct audit_node_verdict *v = NULL, *cur = NULL;
	size_t n = 0, nv = 0, i;
	uint64_t prev = 0;
	int r = KH_OK;

	KH_ENSURE(a->st != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "the audit log keeps no state database"));
	audit_checkpoint_wait(a);
	pthread_mutex_lock(&a->anchor_lock); /* a->st's user */
	r = store_ckpts_list(a->st, &rows, &n, e);
	pthread_mutex_unlock(&a->anchor_lock);
	KH_TRY(r);
	v = calloc(n ? n : 1, sizeof(*v));
	KH_ENSURE(v != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < n; i++) {
		const struct store_ckpt *c = &rows[i];
		char why[512];

		if (cur == NULL || strcmp(cur->node, c->node) != 0) {
			cur = &v[nv++];
			kh_strlcpy(cur->node, c->node, sizeof(cur->node));
			cur->ok = true;
			cur->first_seq = c->seq;
			prev = 0;
			/* The node's first row names a predecessor that is gone. */
			if (c->prev_seq != 0)
				prev = c->prev_seq;
		}
		if (prev != 0 && c->prev_seq != prev) {
			/* Rows are by seq: c->prev_seq > prev means the rows between went. */
			if (cur->n_gaps < AUDIT_GAPS_MAX)
				snprintf(cur->gaps[cur->n_gaps], sizeof(cur->gaps[0]),
					 "after checkpoint %llu, before checkpoint %llu", (unsigned long long)prev,
					 (unsigned long long)c->seq);
			cur->n_gaps++;
			snprintf(why, sizeof(why), "checkpoint %llu names checkpoint %llu before it, which is not recorded",
				 (unsigned long long)c->seq, (unsigned long long)c->prev_seq);
			audit_nv_problem(cur, why);
		} else if (cur->checkpoints == 0 && c->prev_seq != 0) {
			if (cur->n_gaps < AUDIT_GAPS_MAX)
				snprintf(cur->gaps[cur->n_gaps], sizeof(cur->gaps[0]), "before checkpoint %llu",
					 (unsigned long long)c->seq);
			cur->n_gaps++;
			snprintf(why, sizeof(why), "checkpoint %llu names checkpoint %llu before it, which is not recorded",
				 (unsigned long long)c->seq, (unsigned long long)c->prev_seq);
			audit_nv_problem(cur, why);
		}
		if (!audit_ckpt_ok(a, c, why, sizeof(why))) {
			cur->bad_signatures++;
			audit_nv_problem(cur, why);
		}
		cur->checkpoints++;
		cur->last_seq = c->seq;
		cur->last_recorded = c->recorded;
		prev = c->seq;
	}
	*out = v;
	*nout = nv;
	v = NULL;
out:
	free(v);
	free(rows);
	return r;
}
