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
 * Durability (fsync policy): every record is written with one write(2)
 * on an O_APPEND descriptor before the request is answered, so it survives
 * a crash of keyholdd at once. With sync = interval (default) the file is
 * fdatasync'ed at every checkpoint and at least once a second while
 * records arrive: a power loss can lose the last second. With sync =
 * always every record is fdatasync'ed before the answer. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "kh_log.h"
#include "kh_util.h"

#define AUDIT_LINE_MAX 4096
#define AUDIT_PAGE_DEFAULT 1000
#define AUDIT_PAGE_MAX 4096
#define AUDIT_SYNC_INTERVAL_US 1000000u

struct audit {
	pthread_mutex_t lock;
	int fd;
	char *path;
	struct hsm *h;
	char key[KH_NAME_MAX + 1];
	EVP_PKEY *pub;                /* the checkpoint key's public half */
	char keyfp[65];               /* hex SHA-256 of its SPKI */
	unsigned ckpt_records, ckpt_interval_s;
	bool sync_always;

	uint64_t next_seq;
	uint8_t head[32];             /* hash of the last line written */
	uint64_t last_ts_us;
	uint64_t since_ckpt;          /* records after the last checkpoint */
	uint64_t last_ckpt_mono_us;
	uint64_t last_sync_mono_us;
	bool dirty;                   /* written, not yet synced */
	off_t size;                   /* bytes of whole lines this process knows */
	bool failed;
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

static void audit_ts(uint64_t us, char *out, size_t outsz)
{
	time_t s = (time_t)(us / 1000000u);
	struct tm tm;
	char base[32];

	gmtime_r(&s, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outsz, "%s.%06uZ", base, (unsigned)(us % 1000000u));
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

static void audit_sha256(const void *d, size_t n, uint8_t out[32])
{
	unsigned len = 32;

	if (EVP_Digest(d, n, out, &len, EVP_sha256(), NULL) != 1)
		memset(out, 0, 32);
}

/* Parses one line (without its newline). */
static bool audit_parse(const char *line, size_t len, struct audit_rec *r)
{
	static const char *const keys[] = { "seq", "ts", "who", "method", "obj", "code", "dur_us", "count", "prev" };
	size_t off = 0, k;
	const char *sigpos;

	memset(r, 0, sizeof(*r));
	if (len < 3 || memcmp(line, "v1 ", 3) != 0)
		return false;
	off = 3;
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]) + 2; k++) {
		const char *f = line + off, *eq, *end;
		size_t klen, vlen;
		char v[KH_PRINCIPAL_MAX + 1];
		const char *name;

		if (off >= len) {
			if (k == sizeof(keys) / sizeof(keys[0]))
				break; /* an ordinary record ends after prev */
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
		name = k < sizeof(keys) / sizeof(keys[0]) ? keys[k] : (k == sizeof(keys) / sizeof(keys[0]) ? "keyfp" : "sig");
		if (klen != strlen(name) || memcmp(f, name, klen) != 0 || vlen == 0)
			return false;
		if (strcmp(name, "ts") == 0) {
			if (!audit_parse_ts(eq + 1, vlen, &r->time_us))
				return false;
		} else if (strcmp(name, "prev") == 0 || strcmp(name, "sig") == 0) {
			char hx[2 * sizeof(r->sig) + 1];
			size_t bl = 0;

			if (vlen >= sizeof(hx))
				return false;
			memcpy(hx, eq + 1, vlen);
			hx[vlen] = '\0';
			if (name[0] == 'p') {
				if (vlen != 64 || kh_unhex(hx, r->prev, 32, &bl) != 0 || bl != 32)
					return false;
			} else {
				if (kh_unhex(hx, r->sig, sizeof(r->sig), &r->sig_len) != 0 || r->sig_len == 0)
					return false;
			}
		} else {
			if (!audit_unesc(eq + 1, vlen, v, sizeof(v)))
				return false;
			if (strcmp(name, "seq") == 0 || strcmp(name, "dur_us") == 0 || strcmp(name, "count") == 0) {
				uint64_t n;

				if (kh_parse_u64(v, 0, UINT64_MAX, &n) != 0)
					return false;
				if (name[0] == 's')
					r->seq = n;
				else if (name[0] == 'd')
					r->dur_us = n;
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
	sigpos = r->sig_len > 0 ? strstr(line, " sig=") : NULL;
	if (r->keyfp[0] != '\0' && (r->sig_len == 0 || sigpos == NULL))
		return false;
	r->checkpoint = r->sig_len > 0;
	r->signed_len = sigpos != NULL ? (size_t)(sigpos - line) : 0;
	return r->seq > 0;
}

/* ---- writing ---- */

static void audit_fail(struct audit *a, const char *what)
{
	if (!a->failed)
		log_err("audit log %s: %s failed: %s; refusing requests that need a record", a->path, what,
			strerror(errno));
	a->failed = true;
}

static enum kh_err audit_write_line(struct audit *a, const char *line, size_t len, bool sync, struct kh_errbuf *e)
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
	a->dirty = true;
	if (sync || kh_now_mono_us() - a->last_sync_mono_us >= AUDIT_SYNC_INTERVAL_US) {
		if (fdatasync(a->fd) != 0) {
			audit_fail(a, "fdatasync");
			return kh_err_set(e, KH_E_UNAVAILABLE, "the audit log %s cannot be synced: %s", a->path,
					  strerror(errno));
		}
		a->dirty = false;
		a->last_sync_mono_us = kh_now_mono_us();
	}
	return KH_OK;
}

/* Formats the fields up to prev= into buf; returns the length. */
static size_t audit_format(struct audit *a, const struct audit_event *ev, char *buf, size_t bufsz)
{
	char who[3 * KH_PRINCIPAL_MAX + 4], method[3 * 48], obj[3 * KH_NAME_MAX + 4], ts[40], prev[65];
	uint64_t now = (uint64_t)0;
	struct timespec t;
	int n;

	clock_gettime(CLOCK_REALTIME, &t);
	now = (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
	if (now < a->last_ts_us)
		now = a->last_ts_us; /* the clock stepped back: keep order */
	a->last_ts_us = now;
	audit_ts(now, ts, sizeof(ts));
	audit_esc(who, sizeof(who), ev->principal);
	audit_esc(method, sizeof(method), ev->method);
	audit_esc(obj, sizeof(obj), ev->object);
	kh_hex(a->head, 32, prev, sizeof(prev));
	n = snprintf(buf, bufsz, "v1 seq=%llu ts=%s who=%s method=%s obj=%s code=%s dur_us=%llu count=%llu prev=%s",
		     (unsigned long long)a->next_seq, ts, who, method, obj, kh_err_name(ev->code),
		     (unsigned long long)ev->duration_us, (unsigned long long)(ev->count ? ev->count : 1), prev);
	return n > 0 && (size_t)n < bufsz ? (size_t)n : 0;
}

static enum kh_err audit_append_locked(struct audit *a, const struct audit_event *ev, struct kh_errbuf *e)
{
	char line[AUDIT_LINE_MAX];
	size_t len;
	int r;

	if (a->failed)
		return kh_err_set(e, KH_E_UNAVAILABLE, "the audit log %s cannot be written; see keyholdd's log", a->path);
	len = audit_format(a, ev, line, sizeof(line) - 1);
	if (len == 0)
		return kh_err_set(e, KH_E_INTERNAL, "audit record too long");
	audit_sha256(line, len, a->head);
	line[len++] = '\n';
	r = audit_write_line(a, line, len, a->sync_always, e);
	if (r != KH_OK)
		return r;
	a->next_seq++;
	a->since_ckpt++;
	return KH_OK;
}

/* A signed checkpoint over the chain so far. */
static enum kh_err audit_checkpoint_locked(struct audit *a, struct kh_errbuf *e)
{
	char line[AUDIT_LINE_MAX];
	struct audit_event ev = { "keyholdd", "Checkpoint", a->key, KH_OK, 0, 1 };
	struct hsm_sign_op op;
	uint8_t dig[32];
	uint8_t *sig = NULL;
	size_t len, sig_len = 0;
	uint64_t t0 = kh_now_mono_us();
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
	len += 5;
	kh_hex(sig, sig_len, line + len, sizeof(line) - len);
	len += 2 * sig_len;
	audit_sha256(line, len, a->head);
	line[len++] = '\n';
	KH_TRY(audit_write_line(a, line, len, true, e));
	{
		char hx[65];

		/* The journal keeps a copy of every checkpoint's hash: a witness
		 * outside the log file (docs/SECURITY.md). */
		kh_hex(a->head, 32, hx, sizeof(hx));
		log_info("audit checkpoint %llu signed in %llu us; chain hash %s", (unsigned long long)a->next_seq,
			 (unsigned long long)(kh_now_mono_us() - t0), hx);
	}
	a->next_seq++;
	a->since_ckpt = 0;
	a->last_ckpt_mono_us = kh_now_mono_us();
out:
	free(sig);
	return r;
}

enum kh_err audit_append(struct audit *a, const struct audit_event *ev, struct kh_errbuf *e)
{
	int r;

	pthread_mutex_lock(&a->lock);
	r = audit_append_locked(a, ev, e);
	if (r == KH_OK && a->since_ckpt >= a->ckpt_records) {
		struct kh_errbuf ce = { 0 };

		/* A checkpoint that cannot be signed now (token busy or gone)
		 * is retried by audit_tick; the record itself is written. */
		if (audit_checkpoint_locked(a, &ce) != KH_OK)
			log_warn("audit checkpoint failed: %s", ce.msg);
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

bool audit_healthy(struct audit *a)
{
	bool ok;

	pthread_mutex_lock(&a->lock);
	ok = !a->failed;
	pthread_mutex_unlock(&a->lock);
	return ok;
}

void audit_tick(struct audit *a)
{
	uint64_t now = kh_now_mono_us();

	pthread_mutex_lock(&a->lock);
	if (!a->failed && a->since_ckpt > 0 &&
	    now - a->last_ckpt_mono_us >= (uint64_t)a->ckpt_interval_s * 1000000u) {
		struct kh_errbuf ce = { 0 };

		if (audit_checkpoint_locked(a, &ce) != KH_OK)
			log_warn("audit checkpoint failed: %s", ce.msg);
	}
	if (!a->failed && a->dirty) {
		if (fdatasync(a->fd) != 0) {
			audit_fail(a, "fdatasync");
		} else {
			a->dirty = false;
			a->last_sync_mono_us = now;
		}
	}
	pthread_mutex_unlock(&a->lock);
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

/* Finds the chain head: the last whole line of the file. */
static enum kh_err audit_find_head(struct audit *a, struct kh_errbuf *e)
{
	struct stat st;
	char *buf = NULL;
	size_t want, got = 0, end, start;
	off_t from;
	struct audit_rec rec;
	int r = KH_OK;

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
		/* A torn last write: start the next record on a new line and
		 * leave the fragment for audit verify to report. */
		log_err("audit log %s ends in a partial record; audit verify will report it", a->path);
		KH_ENSURE(write(a->fd, "\n", 1) == 1, kh_err_set(e, KH_E_UNAVAILABLE, "cannot write %s", a->path));
		a->size++;
		buf[end] = '\n';
		end++;
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

enum kh_err audit_open(const struct audit_config *cfg, struct hsm *h, struct audit **out, struct kh_errbuf *e)
{
	struct audit *a;
	struct audit_event ev = { "keyholdd", "Start", NULL, KH_OK, 0, 1 };
	int r = KH_OK;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	pthread_mutex_init(&a->lock, NULL);
	a->fd = -1;
	a->h = h;
	a->ckpt_records = cfg->checkpoint_records ? cfg->checkpoint_records : 256;
	a->ckpt_interval_s = cfg->checkpoint_interval_s ? cfg->checkpoint_interval_s : 60;
	a->sync_always = cfg->sync_always;
	kh_strlcpy(a->key, cfg->key != NULL ? cfg->key : "keyhold-audit", sizeof(a->key));
	a->path = strdup(cfg->path);
	KH_ENSURE(a->path != NULL, KH_E_RESOURCE_EXHAUSTED);
	a->fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	KH_ENSURE(a->fd >= 0, kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot open the audit log %s: %s", a->path,
					 strerror(errno)));
	KH_TRY(audit_find_head(a, e));
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
	KH_TRY(audit_append(a, &ev, e));
	log_info("audit log %s: next record %llu, checkpoint key '%s' (SPKI SHA-256 %s)", a->path,
		 (unsigned long long)a->next_seq, a->key, a->keyfp);
	*out = a;
	a = NULL;
out:
	if (a != NULL) {
		if (a->fd >= 0)
			close(a->fd);
		EVP_PKEY_free(a->pub);
		free(a->path);
		pthread_mutex_destroy(&a->lock);
		free(a);
	}
	return r;
}

void audit_close(struct audit *a)
{
	struct audit_event ev = { "keyholdd", "Stop", NULL, KH_OK, 0, 1 };
	struct kh_errbuf e = { 0 };

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	if (audit_append_locked(a, &ev, &e) != KH_OK || audit_checkpoint_locked(a, &e) != KH_OK)
		log_err("audit log %s: the final checkpoint failed: %s", a->path, e.msg);
	if (fdatasync(a->fd) != 0)
		log_err("audit log %s: fdatasync: %s", a->path, strerror(errno));
	pthread_mutex_unlock(&a->lock);
	close(a->fd);
	EVP_PKEY_free(a->pub);
	free(a->path);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* ---- reading ---- */

/* Reads the next line of f into buf (without the newline); returns its
 * length, -1 at the end, -2 for a line longer than the cap (skipped). */
static long audit_getline(FILE *f, char *buf, size_t bufsz, off_t *pos)
{
	size_t n = 0;
	int c;
	bool too_long = false;

	while ((c = getc(f)) != EOF) {
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

enum kh_err audit_show(struct audit *a, const struct kh_audit_show_req *q, struct kh_audit_records *out,
		       struct kh_errbuf *e)
{
	FILE *f = NULL;
	char *line = NULL;
	size_t limit = q->limit ? q->limit : AUDIT_PAGE_DEFAULT;
	/* A since past what microseconds can hold matches nothing. */
	uint64_t since_us = q->since_s > UINT64_MAX / 1000000u ? UINT64_MAX : q->since_s * 1000000u;
	off_t pos = 0, size;
	int r = KH_OK;

	memset(out, 0, sizeof(*out));
	if (limit > AUDIT_PAGE_MAX)
		limit = AUDIT_PAGE_MAX;
	pthread_mutex_lock(&a->lock);
	size = a->size;
	pthread_mutex_unlock(&a->lock);
	line = malloc(AUDIT_LINE_MAX);
	out->recs = calloc(limit, sizeof(*out->recs));
	KH_ENSURE(line != NULL && out->recs != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	f = fopen(a->path, "re");
	KH_ENSURE(f != NULL, kh_err_set(e, KH_E_UNAVAILABLE, "cannot read %s: %s", a->path, strerror(errno)));
	while (pos < size) {
		struct audit_rec rec;
		long n = audit_getline(f, line, AUDIT_LINE_MAX, &pos);
		struct kh_audit_record *x;

		if (n == -1)
			break;
		if (n < 0 || !audit_parse(line, (size_t)n, &rec))
			continue; /* audit verify reports it */
		if (rec.seq < q->from_seq || rec.time_us < since_us)
			continue;
		if (out->n == limit) {
			out->more = true;
			out->next_seq = rec.seq;
			break;
		}
		x = &out->recs[out->n++];
		x->seq = rec.seq;
		x->time_us = rec.time_us;
		kh_strlcpy(x->principal, rec.who, sizeof(x->principal));
		kh_strlcpy(x->method, rec.method, sizeof(x->method));
		kh_strlcpy(x->object, rec.obj, sizeof(x->object));
		x->code = rec.code;
		x->duration_us = rec.dur_us;
		x->count = rec.count;
		x->checkpoint = rec.checkpoint;
	}
out:
	if (f != NULL)
		fclose(f);
	free(line);
	if (r != KH_OK)
		kh_audit_records_clear(out);
	return r;
}

static bool audit_sig_ok(struct audit *a, const char *line, const struct audit_rec *rec)
{
	uint8_t dig[32];
	EVP_PKEY_CTX *ctx;
	bool ok;

	audit_sha256(line, rec->signed_len, dig);
	ctx = EVP_PKEY_CTX_new(a->pub, NULL);
	ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_verify(ctx, rec->sig, rec->sig_len, dig, sizeof(dig)) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static void audit_bad(struct kh_audit_verify *v, uint64_t seq, uint64_t line, const char *fmt, ...) KH_PRINTF(4, 5);
static void audit_bad(struct kh_audit_verify *v, uint64_t seq, uint64_t line, const char *fmt, ...)
{
	va_list ap;

	if (!v->ok)
		return;
	v->ok = false;
	v->bad_seq = seq;
	v->bad_line = line;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

enum kh_err audit_verify(struct audit *a, struct kh_audit_verify *v, struct kh_errbuf *e)
{
	FILE *f = NULL;
	char *line = NULL;
	off_t pos = 0, size;
	uint64_t expect = 1, lineno = 0, head_seq;
	uint8_t prev[32], head[32], zero[32];
	int r = KH_OK;

	memset(v, 0, sizeof(*v));
	memset(prev, 0, sizeof(prev));
	memset(zero, 0, sizeof(zero));
	v->ok = true;
	kh_strlcpy(v->key_fp, a->keyfp, sizeof(v->key_fp));
	pthread_mutex_lock(&a->lock);
	size = a->size;
	head_seq = a->next_seq - 1;
	memcpy(head, a->head, sizeof(head));
	pthread_mutex_unlock(&a->lock);
	line = malloc(AUDIT_LINE_MAX);
	KH_ENSURE(line != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	f = fopen(a->path, "re");
	KH_ENSURE(f != NULL, kh_err_set(e, KH_E_UNAVAILABLE, "cannot read %s: %s", a->path, strerror(errno)));
	while (pos < size && v->ok) {
		struct audit_rec rec;
		long n = audit_getline(f, line, AUDIT_LINE_MAX, &pos);

		if (n == -1)
			break;
		lineno++;
		if (n < 0 || !audit_parse(line, (size_t)n, &rec)) {
			audit_bad(v, expect, lineno, "line %llu is not an audit record (record %llu expected there)",
				  (unsigned long long)lineno, (unsigned long long)expect);
			break;
		}
		if (rec.seq > expect) {
			audit_bad(v, expect, lineno, "record %llu is missing: line %llu holds record %llu",
				  (unsigned long long)expect, (unsigned long long)lineno, (unsigned long long)rec.seq);
			break;
		}
		if (rec.seq < expect) {
			audit_bad(v, expect, lineno,
				  "records out of order: line %llu holds record %llu where record %llu belongs",
				  (unsigned long long)lineno, (unsigned long long)rec.seq, (unsigned long long)expect);
			break;
		}
		if (memcmp(rec.prev, prev, 32) != 0) {
			if (rec.seq == 1)
				audit_bad(v, 1, lineno, "record 1 does not start the chain (its prev is not zero)");
			else
				audit_bad(v, rec.seq - 1, lineno - 1,
					  "record %llu was altered: its hash does not match the one record %llu holds",
					  (unsigned long long)(rec.seq - 1), (unsigned long long)rec.seq);
			break;
		}
		if (rec.checkpoint) {
			if (strcmp(rec.keyfp, a->keyfp) != 0) {
				audit_bad(v, rec.seq, lineno,
					  "checkpoint record %llu was signed by another key (SPKI SHA-256 %.16s...), not '%s'",
					  (unsigned long long)rec.seq, rec.keyfp, a->key);
				break;
			}
			if (!audit_sig_ok(a, line, &rec)) {
				audit_bad(v, rec.seq, lineno, "checkpoint record %llu: the signature does not verify",
					  (unsigned long long)rec.seq);
				break;
			}
			v->checkpoints++;
			v->last_checkpoint_seq = rec.seq;
			v->unsigned_tail = 0;
		} else {
			v->unsigned_tail++;
		}
		audit_sha256(line, (size_t)n, prev);
		v->records++;
		expect = rec.seq + 1;
	}
	if (v->ok && v->records < head_seq)
		audit_bad(v, expect, lineno + 1, "records %llu to %llu are missing from the end of the log",
			  (unsigned long long)expect, (unsigned long long)head_seq);
	else if (v->ok && v->records > 0 && memcmp(prev, head, 32) != 0 && v->records == head_seq)
		audit_bad(v, head_seq, lineno, "the last record %llu is not the one keyholdd wrote",
			  (unsigned long long)head_seq);
out:
	if (f != NULL)
		fclose(f);
	free(line);
	return r;
}
