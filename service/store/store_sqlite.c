/* store_sqlite.c: the SQLite driver (store_db.h): the database file under
 * state_dir, WAL, synchronous=FULL, foreign keys, the schema version in
 * PRAGMA user_version. The only file of keyholdd that calls sqlite3_*. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kh_log.h"
#include "kh_util.h"
#include "store_int.h"
#include "store/store_dir.h"

/* Statements kept prepared per connection after store_finalize, for the
 * next store_prepare of the same SQL: parsing and planning a query costs
 * more than running the small ones keyholdd makes (GetStatus's cluster
 * view: two listings, 30% of its CPU when prepared every time). */
#define SQ_CACHE_MAX 32

struct sqlite_stmt {
	struct store_stmt base;  /* first: store_stmt * <-> sqlite_stmt * */
	sqlite3_stmt *s;
	bool stepped;
};

/* st->db: the connection and its idle statements (most recently used
 * last). The connection is FULLMUTEX and may be used from several
 * threads; lock guards the cache. */
struct sq_conn {
	sqlite3 *db;
	pthread_mutex_t lock;
	struct sqlite_stmt *idle[SQ_CACHE_MAX];
	unsigned n_idle;
};

static sqlite3 *sq_db(struct store *st)
{
	return ((struct sq_conn *)st->db)->db;
}

static struct sqlite_stmt *sq_stmt(struct store_stmt *s)
{
	return (struct sqlite_stmt *)s;
}

/* Records a SQLite failure (logged, and in e with the SQLite message). */
static enum kh_err sq_err(struct store *st, struct kh_errbuf *e, int rc, const char *what)
{
	enum kh_err code = KH_E_INTERNAL;
	sqlite3 *db = st != NULL ? sq_db(st) : NULL;

	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		code = KH_E_UNAVAILABLE;
	else if (rc == SQLITE_FULL || rc == SQLITE_NOMEM)
		code = KH_E_RESOURCE_EXHAUSTED;
	else if (rc == SQLITE_READONLY || rc == SQLITE_CANTOPEN || rc == SQLITE_IOERR || rc == SQLITE_CORRUPT ||
		 rc == SQLITE_NOTADB)
		code = KH_E_DATA_LOSS;
	log_err("state database: %s: %s (%d)", what, db != NULL ? sqlite3_errmsg(db) : "", rc);
	return kh_err_set(e, code, "state database: %s failed: %s", what,
			  db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static enum kh_err sq_prepare(struct store *st, const char *sql, struct store_stmt **out, struct kh_errbuf *e)
{
	struct sq_conn *c = st->db;
	struct sqlite_stmt *s = NULL;
	int r = KH_OK, rc;
	unsigned i;

	pthread_mutex_lock(&c->lock);
	for (i = c->n_idle; i-- > 0;) {
		if (strcmp(sqlite3_sql(c->idle[i]->s), sql) == 0) {
			s = c->idle[i];
			memmove(&c->idle[i], &c->idle[i + 1], (c->n_idle - i - 1) * sizeof(c->idle[0]));
			c->n_idle--;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (s != NULL) {
		*out = &s->base; /* reset and unbound when it was put back */
		return KH_OK;
	}
	s = calloc(1, sizeof(*s));
	KH_ENSURE(s != NULL, KH_E_RESOURCE_EXHAUSTED);
	s->base.st = st;
	rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->s, NULL);
	KH_ENSURE(rc == SQLITE_OK, sq_err(st, e, rc, "preparing a statement"));
	*out = &s->base;
	s = NULL;
out:
	if (s != NULL) {
		sqlite3_finalize(s->s);
		free(s);
	}
	return r;
}

/* Back to the connection's idle statements, reset and unbound (the
 * least recently used one is finalized when they are SQ_CACHE_MAX). */
static void sq_finalize(struct store_stmt *b)
{
	struct sqlite_stmt *s = sq_stmt(b), *evict = NULL;
	struct sq_conn *c = b->st->db;

	sqlite3_reset(s->s);
	sqlite3_clear_bindings(s->s);
	s->stepped = false;
	b->bind_failed = false;
	pthread_mutex_lock(&c->lock);
	if (c->n_idle == SQ_CACHE_MAX) {
		evict = c->idle[0];
		memmove(&c->idle[0], &c->idle[1], (SQ_CACHE_MAX - 1) * sizeof(c->idle[0]));
		c->n_idle--;
	}
	c->idle[c->n_idle++] = s;
	pthread_mutex_unlock(&c->lock);
	if (evict != NULL) {
		sqlite3_finalize(evict->s);
		free(evict);
	}
}

static void sq_reset(struct store_stmt *s)
{
	sqlite3_reset(sq_stmt(s)->s);
	sq_stmt(s)->stepped = false;
}

static void sq_bind_check(struct store_stmt *s, int rc)
{
	if (rc != SQLITE_OK)
		s->bind_failed = true;
}

static void sq_bind_int64(struct store_stmt *s, int i, int64_t v)
{
	sq_bind_check(s, sqlite3_bind_int64(sq_stmt(s)->s, i, (sqlite3_int64)v));
}

static void sq_bind_text(struct store_stmt *s, int i, const char *v)
{
	sq_bind_check(s, sqlite3_bind_text(sq_stmt(s)->s, i, v, -1, SQLITE_TRANSIENT));
}

static void sq_bind_blob(struct store_stmt *s, int i, const void *p, size_t n)
{
	if (n > INT32_MAX)
		s->bind_failed = true;
	else
		sq_bind_check(s, sqlite3_bind_blob(sq_stmt(s)->s, i, p, (int)n, SQLITE_TRANSIENT));
}

static void sq_bind_null(struct store_stmt *s, int i)
{
	sq_bind_check(s, sqlite3_bind_null(sq_stmt(s)->s, i));
}

static enum kh_err sq_step(struct store_stmt *s, bool *row, const char *what, struct kh_errbuf *e)
{
	struct sqlite_stmt *q = sq_stmt(s);
	int rc;

	*row = false;
	if (s->bind_failed && !q->stepped)
		return sq_err(s->st, e, SQLITE_NOMEM, what);
	q->stepped = true;
	rc = sqlite3_step(q->s);
	if (rc == SQLITE_ROW) {
		*row = true;
		return KH_OK;
	}
	if (rc != SQLITE_DONE)
		return sq_err(s->st, e, rc, what);
	return KH_OK;
}

static int64_t sq_col_int64(struct store_stmt *s, int i)
{
	return (int64_t)sqlite3_column_int64(sq_stmt(s)->s, i);
}

static bool sq_col_is_null(struct store_stmt *s, int i)
{
	return sqlite3_column_type(sq_stmt(s)->s, i) == SQLITE_NULL;
}

static const void *sq_col_data(struct store_stmt *s, int i, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(s)->s;
	const void *p = NULL;
	int len;

	/* Text is asked as text so that a number stored in a text column
	 * reads back in its text form; then the length. */
	if (sqlite3_column_type(q, i) == SQLITE_BLOB)
		p = sqlite3_column_blob(q, i);
	else
		p = sqlite3_column_text(q, i);
	len = sqlite3_column_bytes(q, i);
	*n = p != NULL && len > 0 ? (size_t)len : 0;
	return p;
}

static int64_t sq_changes(struct store *st)
{
	return sqlite3_changes(sq_db(st));
}

static enum kh_err sq_exec(struct store *st, const char *sql, struct kh_errbuf *e)
{
	int rc = sqlite3_exec(sq_db(st), sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return sq_err(st, e, rc, sql);
	return KH_OK;
}

static enum kh_err sq_begin(struct store *st, struct kh_errbuf *e)
{
	/* IMMEDIATE takes the write lock now, so the commit cannot fail on a
	 * lock another connection (sqlite3 CLI, backup) holds. */
	return sq_exec(st, "BEGIN IMMEDIATE", e);
}

static void sq_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(sq_db(st)) && sqlite3_exec(sq_db(st), "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_err("state database: rollback: %s", sqlite3_errmsg(sq_db(st)));
}

static enum kh_err sq_commit(struct store *st, struct kh_errbuf *e)
{
	int rc = sqlite3_exec(sq_db(st), "COMMIT", NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		sq_rollback(st);
		return sq_err(st, e, rc, "commit");
	}
	return KH_OK;
}

/* One process opens the file (state_dir's lock): nothing to take. */
static enum kh_err sq_migrate_lock(struct store *st, bool lock, struct kh_errbuf *e)
{
	(void)st;
	(void)lock;
	(void)e;
	return KH_OK;
}

static enum kh_err sq_version_get(struct store *st, int *v, struct kh_errbuf *e)
{
	sqlite3_stmt *s = NULL;
	int r = KH_OK, rc;

	rc = sqlite3_prepare_v2(sq_db(st), "PRAGMA user_version", -1, &s, NULL);
	KH_ENSURE(rc == SQLITE_OK, sq_err(st, e, rc, "reading the schema version"));
	rc = sqlite3_step(s);
	KH_ENSURE(rc == SQLITE_ROW, sq_err(st, e, rc, "reading the schema version"));
	*v = sqlite3_column_int(s, 0);
out:
	sqlite3_finalize(s);
	return r;
}

static enum kh_err sq_version_set(struct store *st, int v, struct kh_errbuf *e)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
	return sq_exec(st, sql, e);
}

/* The migrations are written in SQLite's types. */
static enum kh_err sq_translate(int version, const char *sql, char **out, struct kh_errbuf *e)
{
	(void)version;
	(void)sql;
	(void)e;
	*out = NULL;
	return KH_OK;
}

static void sq_close(struct store *st)
{
	struct sq_conn *c = st->db;
	unsigned i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_idle; i++) {
		sqlite3_finalize(c->idle[i]->s);
		free(c->idle[i]);
	}
	if (c->db != NULL && sqlite3_close(c->db) != SQLITE_OK)
		log_warn("state database: close: %s", sqlite3_errmsg(c->db));
	pthread_mutex_destroy(&c->lock);
	free(c);
	st->db = NULL;
}

const struct store_driver store_sqlite_driver = {
	.name = "sqlite",
	.prepare = sq_prepare,
	.finalize = sq_finalize,
	.reset = sq_reset,
	.bind_int64 = sq_bind_int64,
	.bind_text = sq_bind_text,
	.bind_blob = sq_bind_blob,
	.bind_null = sq_bind_null,
	.step = sq_step,
	.col_int64 = sq_col_int64,
	.col_is_null = sq_col_is_null,
	.col_data = sq_col_data,
	.changes = sq_changes,
	.exec = sq_exec,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.migrate_lock = sq_migrate_lock,
	.version_get = sq_version_get,
	.version_set = sq_version_set,
	.translate = sq_translate,
	.close = sq_close,
};

enum kh_err store_sqlite_open(struct store *st, const struct store_dir *sd, struct kh_errbuf *e)
{
	static const char *const companions[] = { STORE_FILE "-wal", STORE_FILE "-shm", STORE_FILE "-journal" };
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	struct sq_conn *c = NULL;
	const unsigned char *mode;
	const char *dir = sd->path;
	int r = KH_OK, rc, fd = -1;
	struct stat sb;
	size_t n, i;

	/* Created (0600) or checked here, relative to state_dir and never
	 * through a link; SQLite then opens the same name, which only
	 * keyholdd's user or root can replace (state_dir's checks). An
	 * existing file is checked without opening it: closing a descriptor
	 * of the file would drop every POSIX lock this process holds on it,
	 * those of the connections already open (PKI state, audit anchor,
	 * grants, cluster) included, and a sqlite3 next to keyholdd could
	 * then checkpoint and delete the WAL under them. */
	if (fstatat(sd->fd, STORE_FILE, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		KH_TRY(store_dir_check(sd, STORE_FILE, e));
		if ((sb.st_mode & 077) != 0 && fchmodat(sd->fd, STORE_FILE, sb.st_mode & 0700, 0) != 0)
			log_warn("cannot restrict %s/%s to its owner: %s", dir, STORE_FILE, strerror(errno));
	} else {
		KH_TRY(store_dir_openat(sd, STORE_FILE, O_RDWR | O_CREAT, &fd, e));
		close(fd);
	}
	for (i = 0; i < sizeof(companions) / sizeof(companions[0]); i++)
		KH_TRY(store_dir_check(sd, companions[i], e));
	n = strlen(dir) + sizeof("/" STORE_FILE);
	st->path = malloc(n);
	KH_ENSURE(st->path != NULL, KH_E_RESOURCE_EXHAUSTED);
	snprintf(st->path, n, "%s/%s", dir, STORE_FILE);
	rc = sqlite3_open_v2(st->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
			     NULL);
	KH_ENSURE(rc == SQLITE_OK, kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot open the state database %s: %s",
					      st->path, db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
	c = calloc(1, sizeof(*c));
	KH_ENSURE(c != NULL, KH_E_RESOURCE_EXHAUSTED);
	pthread_mutex_init(&c->lock, NULL);
	c->db = db;
	db = NULL;
	st->drv = &store_sqlite_driver;
	st->db = c;
	sqlite3_busy_timeout(sq_db(st), 5000);
	sqlite3_extended_result_codes(sq_db(st), 0);
	/* WAL: readers never block the writer, and a commit is one append. */
	rc = sqlite3_prepare_v2(sq_db(st), "PRAGMA journal_mode = WAL", -1, &s, NULL);
	KH_ENSURE(rc == SQLITE_OK, sq_err(st, e, rc, "preparing a statement"));
	rc = sqlite3_step(s);
	mode = rc == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
	KH_ENSURE(mode != NULL && strcmp((const char *)mode, "wal") == 0,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION,
			     "the state database %s cannot use WAL (is %s on a network file system?)", st->path, dir));
	/* FULL: a commit survives power loss, not just a crash of keyholdd. */
	KH_TRY(sq_exec(st, "PRAGMA synchronous = FULL", e));
	KH_TRY(sq_exec(st, "PRAGMA foreign_keys = ON", e));
out:
	sqlite3_finalize(s);
	sqlite3_close(db);
	return r;
}
