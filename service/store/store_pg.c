/* store_pg.c: the PostgreSQL driver (store_db.h, libpq): one connection per
 * store handle, the schema version in the keyhold_schema table, migrations
 * under a session advisory lock, every transaction under a transaction
 * advisory lock (state-changing transactions of all nodes run one at a
 * time under READ COMMITTED), a lost connection reported UNAVAILABLE and
 * made again on the next call, and NOTIFY/LISTEN on the channel "keyhold"
 * (store_notify, store_listen; a thread of its own with its own
 * connection). The only file of keyholdd that calls PQ*. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "kh_log.h"
#include "kh_util.h"
#include "store_int.h"

/* Advisory lock keys ("khmigrat", "khtransa" in ASCII): one for the
 * migration runner (session lock), one serialising transactions. */
#define PG_LOCK_MIGRATE INT64_C(0x6b686d6967726174)
#define PG_LOCK_TX INT64_C(0x6b687472616e7361)
#define PG_CHANNEL "keyhold"
#define PG_PASSWORD_MAX 1024
#define PG_BYTEA_OID 17
/* A statement that failed on a serialization failure or a deadlock
 * outside a transaction is run again, at most this often. */
#define PG_RETRIES 5

struct pg_listener;

struct pg_db {
	PGconn *conn;
	char *dsn;
	char *password;        /* NULL: none (peer, trust or certificate authentication) */
	bool in_tx;
	bool tx_broken;        /* the connection was lost inside the transaction */
	int64_t changes;
	struct pg_listener *listener;
};

struct pg_stmt {
	struct store_stmt base; /* first: store_stmt * <-> pg_stmt * */
	char *sql;             /* with $n placeholders */
	int nparams;
	char **vals;
	int *lens;
	int *fmts;
	unsigned *types;       /* Oid */
	PGresult *res;
	int row;               /* the current row; -1 before the first */
	bool executed;
	unsigned char **unesc; /* bytea columns of the current row, unescaped */
	size_t *unesc_len;
	int ncols;
};

static struct pg_db *pg_db(struct store *st)
{
	return (struct pg_db *)st->db;
}

static struct pg_stmt *pg_stmt(struct store_stmt *s)
{
	return (struct pg_stmt *)s;
}

/* ---- connection ---- */

/* The server's message without its trailing newline. */
static void pg_msg(const char *m, char *out, size_t outsz)
{
	size_t n;

	kh_strlcpy(out, m != NULL && m[0] != '\0' ? m : "no message", outsz);
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	for (n = 0; out[n] != '\0'; n++)
		if (out[n] == '\n' || out[n] == '\t')
			out[n] = ' ';
}

static PGconn *pg_connect(const struct pg_db *d, char *why, size_t whysz)
{
	/* connect_timeout first: a dsn that sets it wins (expand_dbname);
	 * the password last, so that nothing in the dsn replaces it. */
	const char *keys[] = { "connect_timeout", "fallback_application_name", "dbname", "password", NULL };
	const char *vals[] = { "5", "keyholdd", d->dsn, d->password, NULL };
	PGconn *c = NULL;
	PGresult *res = NULL;

	if (d->password == NULL)
		keys[3] = NULL;
	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL) {
		kh_strlcpy(why, "out of memory", whysz);
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		pg_msg(PQerrorMessage(c), why, whysz);
		PQfinish(c);
		return NULL;
	}
	/* NOTICEs (CREATE TABLE IF NOT EXISTS on a table that exists) are
	 * not for the log. */
	res = PQexec(c, "SET client_min_messages = warning");
	PQclear(res);
	return c;
}

/* Whether a failure means the server is gone (class 08, or the server
 * shutting down: 57P01-57P03), or the connection broke. */
static bool pg_conn_lost(PGconn *c, const char *sqlstate)
{
	if (c == NULL || PQstatus(c) != CONNECTION_OK)
		return true;
	if (sqlstate == NULL)
		return false;
	return strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 || strcmp(sqlstate, "57P02") == 0 ||
	       strcmp(sqlstate, "57P03") == 0;
}

static enum kh_err pg_unavailable(struct store *st, struct kh_errbuf *e, const char *what, const char *msg)
{
	log_err("state database %s: %s: %s", st->path, what, msg);
	return kh_err_set(e, KH_E_UNAVAILABLE,
			  "state database: %s failed: the PostgreSQL server is unreachable (%s); keyholdd connects "
			  "again on the next request",
			  what, msg);
}

/* A connection for the next statement: the one there is, or a new one
 * when it was lost (never inside a transaction: that one is gone). */
static enum kh_err pg_ensure(struct store *st, const char *what, struct kh_errbuf *e)
{
	struct pg_db *d = pg_db(st);
	char why[KH_ERR_MSG_MAX];

	if (d->conn != NULL && PQstatus(d->conn) == CONNECTION_OK && !d->tx_broken)
		return KH_OK;
	if (d->in_tx || d->tx_broken) {
		d->tx_broken = true;
		return kh_err_set(e, KH_E_UNAVAILABLE,
				  "state database: %s failed: the connection to the PostgreSQL server was lost inside "
				  "a transaction (rolled back by the server)",
				  what);
	}
	if (d->conn != NULL)
		PQfinish(d->conn);
	d->conn = pg_connect(d, why, sizeof(why));
	if (d->conn == NULL)
		return pg_unavailable(st, e, what, why);
	log_info("state database %s: connected again", st->path);
	return KH_OK;
}

/* Records a failed result (logged, and in e). */
static enum kh_err pg_err(struct store *st, PGresult *res, const char *what, struct kh_errbuf *e)
{
	struct pg_db *d = pg_db(st);
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char msg[KH_ERR_MSG_MAX];
	enum kh_err code = KH_E_INTERNAL;

	pg_msg(res != NULL && PQresultErrorMessage(res)[0] != '\0' ? PQresultErrorMessage(res)
								     : PQerrorMessage(d->conn),
	       msg, sizeof(msg));
	if (pg_conn_lost(d->conn, state)) {
		if (d->in_tx)
			d->tx_broken = true;
		return pg_unavailable(st, e, what, msg);
	}
	if (state != NULL) {
		if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0 ||
		    strcmp(state, "57014") == 0)
			code = KH_E_UNAVAILABLE;
		else if (strncmp(state, "53", 2) == 0)
			code = KH_E_RESOURCE_EXHAUSTED;
		else if (strcmp(state, "XX001") == 0 || strcmp(state, "XX002") == 0)
			code = KH_E_DATA_LOSS;
	}
	log_err("state database %s: %s: %s (SQLSTATE %s)", st->path, what, msg, state != NULL ? state : "none");
	return kh_err_set(e, code, "state database: %s failed: %s", what, msg);
}

static bool pg_retryable(PGresult *res)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return state != NULL && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0);
}

/* Runs a statement without parameters; res: PQclear it (may be NULL). A
 * lost connection outside a transaction is made again and the statement
 * run once more (it never reached a server that could commit it: the
 * connection was found dead before or as it was sent); so is a
 * serialization failure or deadlock. */
static enum kh_err pg_run(struct store *st, const char *sql, int n, const unsigned *types, const char *const *vals,
			  const int *lens, const int *fmts, const char *what, PGresult **res_out, struct kh_errbuf *e)
{
	struct pg_db *d = pg_db(st);
	PGresult *res = NULL;
	ExecStatusType rs;
	int r = KH_OK, attempt;

	for (attempt = 0;; attempt++) {
		struct kh_errbuf ign = { 0 };
		bool lost = false;

		KH_TRY(pg_ensure(st, what, e));
		PQclear(res);
		if (n < 0)
			res = PQexec(d->conn, sql);
		else
			res = PQexecParams(d->conn, sql, n, (const Oid *)types, vals, lens, fmts, 0);
		rs = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK || rs == PGRES_EMPTY_QUERY)
			break;
		lost = pg_conn_lost(d->conn, res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL);
		if (attempt < PG_RETRIES && !d->in_tx && (lost ? attempt == 0 : pg_retryable(res))) {
			/* The connection is made again by pg_ensure. */
			if (lost && d->conn != NULL) {
				PQfinish(d->conn);
				d->conn = NULL;
			}
			kh_ignore(pg_err(st, res, what, &ign));
			if (!lost)
				usleep((useconds_t)(10000u << attempt));
			continue;
		}
		r = pg_err(st, res, what, e);
		goto out;
	}
	if (rs == PGRES_COMMAND_OK) {
		const char *t = PQcmdTuples(res);

		d->changes = t != NULL && t[0] != '\0' ? strtoll(t, NULL, 10) : 0;
	}
	*res_out = res;
	res = NULL;
out:
	PQclear(res);
	return r;
}

/* ---- placeholders and types ---- */

/* sql with `?` and `?N` written as PostgreSQL's $n (outside quotes);
 * *nparams: the highest number used. */
static enum kh_err pg_placeholders(const char *sql, char **out, int *nparams, struct kh_errbuf *e)
{
	size_t n = strlen(sql), o = 0, i;
	char *b = malloc(n * 4 + 1);
	char quote = 0;
	int next = 1, max = 0;

	if (b == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	for (i = 0; i < n; i++) {
		char c = sql[i];

		if (quote != 0) {
			if (c == quote)
				quote = 0;
			b[o++] = c;
			continue;
		}
		if (c == '\'' || c == '"') {
			quote = c;
			b[o++] = c;
			continue;
		}
		if (c != '?') {
			b[o++] = c;
			continue;
		}
		{
			int num = 0;
			size_t j = i + 1;

			while (j < n && sql[j] >= '0' && sql[j] <= '9' && num < 1000)
				num = num * 10 + (sql[j++] - '0');
			if (j == i + 1)
				num = next++;
			i = j - 1;
			if (num > max)
				max = num;
			o += (size_t)snprintf(b + o, n * 4 + 1 - o, "$%d", num);
		}
	}
	b[o] = '\0';
	*out = b;
	*nparams = max;
	return KH_OK;
}

static bool pg_ident_char(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Whether the word w starts at s[i] (not inside a longer identifier). */
static bool pg_word_at(const char *s, size_t i, const char *w)
{
	size_t n = strlen(w);

	if (strncmp(s + i, w, n) != 0)
		return false;
	/* s[i + n] is within s: its n bytes from i matched w. */
	return !(i > 0 && pg_ident_char(s[i - 1])) && !pg_ident_char(s[i + n]);
}

/* A migration in PostgreSQL's types, its meaning unchanged: INTEGER is
 * BIGINT (times exceed int4, the test clock runs far ahead), BLOB is
 * BYTEA, TEXT compares bytewise (COLLATE "C", as SQLite's BINARY: names
 * list in the same order on both backends). Schema 1's truststore_certs
 * gets the insertion order SQLite's rowid gives (a BIGSERIAL named rowid,
 * which the store's ORDER BY uses). */
static enum kh_err pg_translate(int version, const char *sql, char **out, struct kh_errbuf *e)
{
	static const char *const from[] = { "INTEGER", "BLOB", "TEXT" };
	static const char *const to[] = { "BIGINT", "BYTEA", "TEXT COLLATE \"C\"" };
	static const char rowid_fix[] = "ALTER TABLE truststore_certs ADD COLUMN rowid BIGSERIAL;";
	size_t n = strlen(sql), o = 0, i, k, cap = n * 2 + sizeof(rowid_fix) + 1;
	char *b = malloc(cap);
	char quote = 0;

	if (b == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	for (i = 0; i < n;) {
		if (quote != 0 || sql[i] == '\'' || sql[i] == '"') {
			if (quote == 0)
				quote = sql[i];
			else if (sql[i] == quote)
				quote = 0;
			b[o++] = sql[i++];
			continue;
		}
		for (k = 0; k < sizeof(from) / sizeof(from[0]); k++)
			if (pg_word_at(sql, i, from[k]))
				break;
		if (k < sizeof(from) / sizeof(from[0])) {
			memcpy(b + o, to[k], strlen(to[k]));
			o += strlen(to[k]);
			i += strlen(from[k]);
		} else {
			b[o++] = sql[i++];
		}
	}
	if (version == 1) {
		memcpy(b + o, rowid_fix, sizeof(rowid_fix) - 1);
		o += sizeof(rowid_fix) - 1;
	}
	b[o] = '\0';
	*out = b;
	return KH_OK;
}

/* ---- statements ---- */

static void pg_free_unesc(struct pg_stmt *q)
{
	int i;

	if (q->unesc == NULL)
		return;
	for (i = 0; i < q->ncols; i++) {
		PQfreemem(q->unesc[i]);
		q->unesc[i] = NULL;
	}
}

static void pg_stmt_free(struct pg_stmt *q)
{
	int i;

	if (q == NULL)
		return;
	pg_free_unesc(q);
	free(q->unesc);
	free(q->unesc_len);
	PQclear(q->res);
	for (i = 0; i < q->nparams; i++)
		free(q->vals[i]);
	free(q->vals);
	free(q->lens);
	free(q->fmts);
	free(q->types);
	free(q->sql);
	free(q);
}

static enum kh_err pg_prepare(struct store *st, const char *sql, struct store_stmt **out, struct kh_errbuf *e)
{
	struct pg_stmt *q = NULL;
	int r = KH_OK;

	q = calloc(1, sizeof(*q));
	KH_ENSURE(q != NULL, KH_E_RESOURCE_EXHAUSTED);
	q->base.st = st;
	q->row = -1;
	KH_TRY(pg_placeholders(sql, &q->sql, &q->nparams, e));
	if (q->nparams > 0) {
		q->vals = calloc((size_t)q->nparams, sizeof(*q->vals));
		q->lens = calloc((size_t)q->nparams, sizeof(*q->lens));
		q->fmts = calloc((size_t)q->nparams, sizeof(*q->fmts));
		q->types = calloc((size_t)q->nparams, sizeof(*q->types));
		KH_ENSURE(q->vals != NULL && q->lens != NULL && q->fmts != NULL && q->types != NULL,
			  KH_E_RESOURCE_EXHAUSTED);
	}
	*out = &q->base;
	q = NULL;
out:
	pg_stmt_free(q);
	return r;
}

static void pg_finalize(struct store_stmt *s)
{
	pg_stmt_free(pg_stmt(s));
}

static void pg_reset(struct store_stmt *s)
{
	struct pg_stmt *q = pg_stmt(s);

	pg_free_unesc(q);
	PQclear(q->res);
	q->res = NULL;
	q->row = -1;
	q->executed = false;
}

/* Takes v (malloc'd, may be NULL for SQL NULL). */
static void pg_bind(struct store_stmt *s, int i, char *v, int len, int fmt, unsigned type)
{
	struct pg_stmt *q = pg_stmt(s);

	if (i < 1 || i > q->nparams) {
		free(v);
		s->bind_failed = true;
		return;
	}
	free(q->vals[i - 1]);
	q->vals[i - 1] = v;
	q->lens[i - 1] = len;
	q->fmts[i - 1] = fmt;
	q->types[i - 1] = type;
}

static void pg_bind_int64(struct store_stmt *s, int i, int64_t v)
{
	char *t = malloc(24);

	if (t == NULL) {
		s->bind_failed = true;
		return;
	}
	snprintf(t, 24, "%" PRId64, v);
	pg_bind(s, i, t, 0, 0, 0);
}

static void pg_bind_text(struct store_stmt *s, int i, const char *v)
{
	char *t = strdup(v);

	if (t == NULL) {
		s->bind_failed = true;
		return;
	}
	pg_bind(s, i, t, 0, 0, 0);
}

static void pg_bind_blob(struct store_stmt *s, int i, const void *p, size_t n)
{
	char *t = NULL;

	if (n > INT32_MAX || (t = malloc(n)) == NULL) {
		s->bind_failed = true;
		return;
	}
	memcpy(t, p, n);
	pg_bind(s, i, t, (int)n, 1, PG_BYTEA_OID);
}

static void pg_bind_null(struct store_stmt *s, int i)
{
	pg_bind(s, i, NULL, 0, 0, 0);
}

static enum kh_err pg_step(struct store_stmt *s, bool *row, const char *what, struct kh_errbuf *e)
{
	struct pg_stmt *q = pg_stmt(s);
	int r = KH_OK;

	*row = false;
	if (!q->executed) {
		KH_ENSURE(!s->bind_failed, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "state database: %s: binding failed", what));
		KH_TRY(pg_run(s->st, q->sql, q->nparams, q->types, (const char *const *)q->vals, q->lens, q->fmts, what,
			      &q->res, e));
		q->executed = true;
		q->ncols = PQnfields(q->res);
		free(q->unesc);
		free(q->unesc_len);
		q->unesc = calloc((size_t)q->ncols + 1, sizeof(*q->unesc));
		q->unesc_len = calloc((size_t)q->ncols + 1, sizeof(*q->unesc_len));
		KH_ENSURE(q->unesc != NULL && q->unesc_len != NULL, KH_E_RESOURCE_EXHAUSTED);
	}
	pg_free_unesc(q);
	if (PQresultStatus(q->res) == PGRES_TUPLES_OK && q->row + 1 < PQntuples(q->res)) {
		q->row++;
		*row = true;
	}
out:
	return r;
}

static bool pg_col_ok(struct pg_stmt *q, int i)
{
	return q->res != NULL && q->row >= 0 && q->row < PQntuples(q->res) && i >= 0 && i < PQnfields(q->res);
}

static bool pg_col_is_null(struct store_stmt *s, int i)
{
	struct pg_stmt *q = pg_stmt(s);

	return !pg_col_ok(q, i) || PQgetisnull(q->res, q->row, i);
}

static int64_t pg_col_int64(struct store_stmt *s, int i)
{
	struct pg_stmt *q = pg_stmt(s);
	const char *v;

	if (pg_col_is_null(s, i))
		return 0;
	v = PQgetvalue(q->res, q->row, i);
	if (strcmp(v, "t") == 0)
		return 1;
	return strtoll(v, NULL, 10);
}

static const void *pg_col_data(struct store_stmt *s, int i, size_t *n)
{
	struct pg_stmt *q = pg_stmt(s);

	*n = 0;
	if (pg_col_is_null(s, i))
		return NULL;
	if (PQftype(q->res, i) == PG_BYTEA_OID) {
		if (q->unesc[i] == NULL)
			q->unesc[i] = PQunescapeBytea((const unsigned char *)PQgetvalue(q->res, q->row, i),
						      &q->unesc_len[i]);
		*n = q->unesc[i] != NULL ? q->unesc_len[i] : 0;
		return q->unesc[i];
	}
	*n = (size_t)PQgetlength(q->res, q->row, i);
	return PQgetvalue(q->res, q->row, i);
}

static int64_t pg_changes(struct store *st)
{
	return pg_db(st)->changes;
}

static enum kh_err pg_exec(struct store *st, const char *sql, struct kh_errbuf *e)
{
	PGresult *res = NULL;
	int r = KH_OK;

	KH_TRY(pg_run(st, sql, -1, NULL, NULL, NULL, NULL, "running a statement", &res, e));
out:
	PQclear(res);
	return r;
}

/* ---- transactions ---- */

static enum kh_err pg_begin(struct store *st, struct kh_errbuf *e)
{
	struct pg_db *d = pg_db(st);
	char sql[128];
	int r = KH_OK;

	/* PostgreSQL only warns about a BEGIN inside a transaction. */
	KH_ENSURE(!d->in_tx, kh_err_set(e, KH_E_INTERNAL, "state database: a transaction is already open"));
	/* A node that holds the lock longer than 10 s (SQLite's busy
	 * timeout is 5 s) makes this one UNAVAILABLE, not stuck. */
	snprintf(sql, sizeof(sql), "BEGIN; SET LOCAL lock_timeout = '10s'; SELECT pg_advisory_xact_lock(%" PRId64 ")",
		 PG_LOCK_TX);
	d->tx_broken = false;
	/* Outside the transaction still: a lost connection is made again. */
	r = pg_exec(st, sql, e);
	if (r != KH_OK && d->conn != NULL && PQstatus(d->conn) == CONNECTION_OK)
		PQclear(PQexec(d->conn, "ROLLBACK")); /* BEGIN ran, the lock did not come */
	KH_TRY(r);
	d->in_tx = true;
out:
	return r;
}

static void pg_rollback(struct store *st)
{
	struct pg_db *d = pg_db(st);
	PGresult *res = NULL;

	if (!d->in_tx)
		return;
	d->in_tx = false;
	if (d->conn != NULL && PQstatus(d->conn) == CONNECTION_OK && !d->tx_broken) {
		res = PQexec(d->conn, "ROLLBACK");
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
			log_err("state database %s: rollback: %s", st->path, PQerrorMessage(d->conn));
		PQclear(res);
	}
	d->tx_broken = false;
}

static enum kh_err pg_commit(struct store *st, struct kh_errbuf *e)
{
	struct pg_db *d = pg_db(st);
	PGresult *res = NULL;
	char msg[KH_ERR_MSG_MAX];
	int r = KH_OK;

	KH_ENSURE(d->in_tx, kh_err_set(e, KH_E_INTERNAL, "state database: commit outside a transaction"));
	KH_ENSURE(!d->tx_broken && d->conn != NULL && PQstatus(d->conn) == CONNECTION_OK,
		  kh_err_set(e, KH_E_UNAVAILABLE,
			     "state database: commit failed: the connection to the PostgreSQL server was lost inside "
			     "the transaction (rolled back by the server)"));
	res = PQexec(d->conn, "COMMIT");
	if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK) {
		/* COMMIT of a failed transaction answers ROLLBACK. */
		KH_ENSURE(strcmp(PQcmdStatus(res), "COMMIT") == 0,
			  kh_err_set(e, KH_E_ABORTED, "state database: the transaction failed and was rolled back"));
		d->in_tx = false;
		goto out;
	}
	if (pg_conn_lost(d->conn, res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL)) {
		/* The server may have committed before the connection broke. */
		pg_msg(PQerrorMessage(d->conn), msg, sizeof(msg));
		d->tx_broken = true;
		r = pg_unavailable(st, e, "commit (its outcome is unknown)", msg);
		goto out;
	}
	r = pg_err(st, res, "commit", e);
out:
	PQclear(res);
	if (r != KH_OK)
		pg_rollback(st);
	return r;
}

/* ---- the migration runner's part ---- */

static enum kh_err pg_migrate_lock(struct store *st, bool lock, struct kh_errbuf *e)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SELECT %s(%" PRId64 ")", lock ? "pg_advisory_lock" : "pg_advisory_unlock",
		 PG_LOCK_MIGRATE);
	return pg_exec(st, sql, e);
}

static enum kh_err pg_version_get(struct store *st, int *v, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	bool row = false;
	int r = KH_OK;

	KH_TRY(pg_exec(st,
		       "CREATE TABLE IF NOT EXISTS keyhold_schema (id BIGINT PRIMARY KEY CHECK (id = 1), "
		       "version BIGINT NOT NULL)",
		       e));
	KH_TRY(pg_prepare(st, "SELECT version FROM keyhold_schema WHERE id = 1", &s, e));
	KH_TRY(pg_step(s, &row, "reading the schema version", e));
	*v = row ? (int)pg_col_int64(s, 0) : 0;
out:
	if (s != NULL)
		pg_finalize(s);
	return r;
}

static enum kh_err pg_version_set(struct store *st, int v, struct kh_errbuf *e)
{
	char sql[160];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO keyhold_schema (id, version) VALUES (1, %d) "
		 "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
		 v);
	return pg_exec(st, sql, e);
}

/* ---- NOTIFY / LISTEN ---- */

struct pg_listener {
	pthread_t thread;
	int stop[2];           /* a byte on stop[1] ends the thread */
	struct pg_db *d;       /* borrowed: dsn and password */
	char *path;
	store_listen_cb *cb;
	void *arg;
	PGconn *first;         /* listening already when the thread starts; NULL: not yet */
};

static void pg_listen_deliver(struct pg_listener *l, PGconn *c)
{
	PGnotify *n;

	while ((n = PQnotifies(c)) != NULL) {
		if (strcmp(n->relname, PG_CHANNEL) == 0 && n->extra != NULL && n->extra[0] != '\0')
			l->cb(n->extra, l->arg);
		PQfreemem(n);
	}
}

/* Waits up to ms for the stop byte; true when it came. */
static bool pg_listen_stopped(struct pg_listener *l, int ms)
{
	struct pollfd p = { .fd = l->stop[0], .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

/* A new connection that listens on the channel; NULL (why set) when it
 * cannot. */
static PGconn *pg_listen_connect(struct pg_listener *l, char *why, size_t n)
{
	PGconn *c = pg_connect(l->d, why, n);
	PGresult *res;

	if (c == NULL)
		return NULL;
	res = PQexec(c, "LISTEN " PG_CHANNEL);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_msg(PQerrorMessage(c), why, n);
		PQfinish(c);
		c = NULL;
	}
	PQclear(res);
	return c;
}

static void *pg_listen_main(void *arg)
{
	struct pg_listener *l = arg;
	PGconn *c = l->first;
	char why[KH_ERR_MSG_MAX];
	/* Not listening when store_listen returned: what was notified since
	 * is lost, and the first connection counts as listening again. */
	bool was_down = c == NULL;

	l->first = NULL;
	for (;;) {
		if (c == NULL) {
			c = pg_listen_connect(l, why, sizeof(why));
			if (c == NULL) {
				if (!was_down)
					log_warn("state database %s: notifications: %s; trying again every second",
						 l->path, why);
				was_down = true;
				if (pg_listen_stopped(l, 1000))
					break;
				continue;
			}
			if (was_down) {
				/* What was notified meanwhile is lost: everything may
				 * have changed. */
				log_info("state database %s: notifications: listening again", l->path);
				l->cb(STORE_TOPIC_ALL, l->arg);
			}
			was_down = false;
		}
		{
			struct pollfd p[2] = { { .fd = PQsocket(c), .events = POLLIN },
					       { .fd = l->stop[0], .events = POLLIN } };

			if (poll(p, 2, -1) < 0 && errno != EINTR)
				break;
			if (p[1].revents != 0)
				break;
			if (p[0].revents != 0 && PQconsumeInput(c) == 0) {
				pg_msg(PQerrorMessage(c), why, sizeof(why));
				log_warn("state database %s: notifications: connection lost: %s", l->path, why);
				PQfinish(c);
				c = NULL;
				was_down = true;
				continue;
			}
			pg_listen_deliver(l, c);
		}
	}
	if (c != NULL)
		PQfinish(c);
	return NULL;
}

static void pg_listen_stop(struct pg_listener *l)
{
	if (l == NULL)
		return;
	if (write(l->stop[1], "x", 1) != 1)
		log_warn("notifications: cannot stop the listener: %s", strerror(errno));
	pthread_join(l->thread, NULL);
	close(l->stop[0]);
	close(l->stop[1]);
	free(l);
}

static void pg_close(struct store *st)
{
	struct pg_db *d = pg_db(st);

	if (d == NULL)
		return;
	pg_listen_stop(d->listener);
	if (d->conn != NULL)
		PQfinish(d->conn);
	free(d->dsn);
	if (d->password != NULL) {
		explicit_bzero(d->password, strlen(d->password));
		free(d->password);
	}
	free(d);
	st->db = NULL;
}

const struct store_driver store_pg_driver = {
	.name = "postgresql",
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.reset = pg_reset,
	.bind_int64 = pg_bind_int64,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.bind_null = pg_bind_null,
	.step = pg_step,
	.col_int64 = pg_col_int64,
	.col_is_null = pg_col_is_null,
	.col_data = pg_col_data,
	.changes = pg_changes,
	.exec = pg_exec,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.migrate_lock = pg_migrate_lock,
	.version_get = pg_version_get,
	.version_set = pg_version_set,
	.translate = pg_translate,
	.close = pg_close,
};

enum kh_err store_pg_notify(struct store *st, const char *topic, struct kh_errbuf *e)
{
	struct store_stmt *s = NULL;
	int r = KH_OK;

	KH_TRY(pg_prepare(st, "SELECT pg_notify('" PG_CHANNEL "', ?)", &s, e));
	pg_bind_text(s, 1, topic);
	KH_TRY(pg_step(s, &(bool){ false }, "sending a notification", e));
out:
	if (s != NULL)
		pg_finalize(s);
	return r;
}

enum kh_err store_pg_listen(struct store *st, store_listen_cb *cb, void *arg, struct kh_errbuf *e)
{
	struct pg_db *d = pg_db(st);
	struct pg_listener *l = NULL;
	char why[KH_ERR_MSG_MAX] = "";
	int r = KH_OK;

	KH_ENSURE(d->listener == NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "the store already has a listener"));
	l = calloc(1, sizeof(*l));
	KH_ENSURE(l != NULL, KH_E_RESOURCE_EXHAUSTED);
	l->stop[0] = l->stop[1] = -1;
	KH_ENSURE(pipe2(l->stop, O_CLOEXEC) == 0,
		  kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "notifications: pipe: %s", strerror(errno)));
	l->d = d;
	l->path = st->path;
	l->cb = cb;
	l->arg = arg;
	/* Listening before store_listen returns, so that no change committed
	 * after it is missed; a server that cannot be reached now is tried
	 * again by the thread (and STORE_TOPIC_ALL delivered then). */
	l->first = pg_listen_connect(l, why, sizeof(why));
	if (l->first == NULL)
		log_warn("state database %s: notifications: %s; trying again every second", st->path, why);
	if (pthread_create(&l->thread, NULL, pg_listen_main, l) != 0) {
		if (l->first != NULL)
			PQfinish(l->first);
		r = kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "notifications: cannot start the listener thread");
		goto out;
	}
	d->listener = l;
	l = NULL;
out:
	if (l != NULL) {
		if (l->stop[0] >= 0)
			close(l->stop[0]);
		if (l->stop[1] >= 0)
			close(l->stop[1]);
		free(l);
	}
	return r;
}

/* ---- open ---- */

/* The password: from password_file, else the systemd credential
 * keyhold-db-password, else none. The file must be a regular file of
 * keyholdd's user (the credential: or root's), readable by it alone (0600
 * or stricter). */
static enum kh_err pg_password(const struct store_cfg *cfg, char **out, struct kh_errbuf *e)
{
	char cred[4096];
	const char *path = cfg->password_file;
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char *pw = NULL;
	struct stat sb;
	ssize_t n = 0;
	int r = KH_OK, fd = -1;

	*out = NULL;
	if (path == NULL && dir != NULL && dir[0] == '/') {
		snprintf(cred, sizeof(cred), "%s/keyhold-db-password", dir);
		if (access(cred, F_OK) == 0)
			path = cred;
	}
	if (path == NULL)
		return KH_OK;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	KH_ENSURE(fd >= 0, kh_err_set(e, KH_E_FAILED_PRECONDITION, "[state] password file %s: %s", path,
				      errno == ELOOP ? "is a symbolic link" : strerror(errno)));
	KH_ENSURE(fstat(fd, &sb) == 0, kh_err_set(e, KH_E_INTERNAL, "stat %s: %s", path, strerror(errno)));
	KH_ENSURE(S_ISREG(sb.st_mode),
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "[state] password file %s is not a regular file", path));
	KH_ENSURE((sb.st_mode & 0177) == 0,
		  kh_err_set(e, KH_E_PERMISSION_DENIED,
			     "[state] password file %s has mode %04o: it must be 0600 or stricter; run chmod 600 %s", path,
			     (unsigned)(sb.st_mode & 07777), path));
	/* systemd may hand credentials over as root's files (only root and
	 * systemd could have written them); password_file must be the user's. */
	KH_ENSURE(sb.st_uid == cfg->owner || (path == cred && sb.st_uid == 0),
		  kh_err_set(e, KH_E_PERMISSION_DENIED,
			     "[state] password file %s belongs to uid %u: it must belong to keyholdd's user (uid %u); "
			     "run chown %u %s",
			     path, (unsigned)sb.st_uid, (unsigned)cfg->owner, (unsigned)cfg->owner, path));
	pw = calloc(1, PG_PASSWORD_MAX + 2);
	KH_ENSURE(pw != NULL, KH_E_RESOURCE_EXHAUSTED);
	n = read(fd, pw, PG_PASSWORD_MAX + 1);
	KH_ENSURE(n >= 0, kh_err_set(e, KH_E_INTERNAL, "reading %s: %s", path, strerror(errno)));
	KH_ENSURE(n <= PG_PASSWORD_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "[state] password file %s is longer than %d bytes", path,
			     PG_PASSWORD_MAX));
	while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
		pw[--n] = '\0';
	KH_ENSURE(n > 0 && strlen(pw) == (size_t)n,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "[state] password file %s is empty or holds a NUL byte", path));
	*out = pw;
	pw = NULL;
out:
	if (pw != NULL) {
		explicit_bzero(pw, PG_PASSWORD_MAX + 2);
		free(pw);
	}
	if (fd >= 0)
		close(fd);
	return r;
}

enum kh_err store_pg_open(struct store *st, const struct store_cfg *cfg, struct kh_errbuf *e)
{
	struct pg_db *d = NULL;
	PQconninfoOption *opts = NULL, *o;
	char *err = NULL;
	char why[KH_ERR_MSG_MAX];
	const char *host = "", *db = "";
	size_t n;
	int r = KH_OK;

	KH_ENSURE(cfg->dsn != NULL && cfg->dsn[0] != '\0',
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "[state] backend = postgresql needs dsn = (a libpq connection string)"));
	opts = PQconninfoParse(cfg->dsn, &err);
	if (opts == NULL) {
		pg_msg(err, why, sizeof(why));
		PQfreemem(err);
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "[state] dsn: %s", why);
		goto out;
	}
	for (o = opts; o->keyword != NULL; o++) {
		KH_ENSURE(!(strcmp(o->keyword, "password") == 0 && o->val != NULL),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT,
				     "[state] dsn must not carry the password: put it in password_file (mode 0600) or "
				     "the systemd credential keyhold-db-password"));
		if (strcmp(o->keyword, "host") == 0 && o->val != NULL)
			host = o->val;
		if (strcmp(o->keyword, "dbname") == 0 && o->val != NULL)
			db = o->val;
	}
	d = calloc(1, sizeof(*d));
	KH_ENSURE(d != NULL, KH_E_RESOURCE_EXHAUSTED);
	d->dsn = strdup(cfg->dsn);
	KH_ENSURE(d->dsn != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(pg_password(cfg, &d->password, e));
	/* Messages name the server and database, never the whole dsn. */
	n = strlen(host) + strlen(db) + sizeof("postgresql:///");
	st->path = malloc(n);
	KH_ENSURE(st->path != NULL, KH_E_RESOURCE_EXHAUSTED);
	snprintf(st->path, n, "postgresql://%s/%s", host, db);
	d->conn = pg_connect(d, why, sizeof(why));
	KH_ENSURE(d->conn != NULL, kh_err_set(e, KH_E_UNAVAILABLE, "cannot connect to the state database %s: %s",
					      st->path, why));
	st->drv = &store_pg_driver;
	st->db = d;
	d = NULL;
out:
	if (d != NULL) {
		struct store tmp = { .db = d };

		pg_close(&tmp);
	}
	PQconninfoFree(opts);
	return r;
}
