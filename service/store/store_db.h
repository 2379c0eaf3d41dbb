/* store_db.h: the driver interface under service/store/: the only way the
 * store's files reach a database. A driver (store_sqlite.c, store_pg.c)
 * fills struct store_driver; the store_* calls below dispatch to it.
 * SQL is written once, in the dialect both backends accept: `?` or `?N`
 * placeholders (PostgreSQL's driver turns them into $n), INSERT ... ON
 * CONFLICT (cols) DO UPDATE/DO NOTHING, times bound as parameters, no
 * PRAGMA, no INSERT OR REPLACE. Binds are numbered from 1, columns from
 * 0 (SQLite's convention). Only service/store/ includes this header. */
#ifndef STORE_DB_H
#define STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kh_err.h"
#include "kh_types.h"

struct store;
struct store_driver;

/* A prepared statement; each driver's own statement begins with it. */
struct store_stmt {
	struct store *st;
	bool bind_failed;  /* a bind ran out of memory: the step fails */
};

/* ---- statements ---- */

/* Prepares sql (one statement). *out: store_finalize it. */
enum kh_err store_prepare(struct store *st, const char *sql, struct store_stmt **out, struct kh_errbuf *e) KH_WUR;
/* NULL is fine. */
void store_finalize(struct store_stmt *s);
/* Back to before the first step; the binds are kept until rebound. */
void store_reset(struct store_stmt *s);
/* Binds copy their value. A failed copy makes the next step fail. */
void store_bind_int64(struct store_stmt *s, int i, int64_t v);
/* v NULL binds NULL. */
void store_bind_text(struct store_stmt *s, int i, const char *v);
/* n 0 binds NULL (the store keeps an empty blob as NULL). */
void store_bind_blob(struct store_stmt *s, int i, const void *p, size_t n);
void store_bind_bytes(struct store_stmt *s, int i, const struct kh_bytes *b);
void store_bind_null(struct store_stmt *s, int i);
/* Runs the statement or moves to its next row: *row true when a row is
 * there to read. Failures are logged and set in e (what names the
 * operation): UNAVAILABLE when the database is busy or unreachable,
 * RESOURCE_EXHAUSTED when full, DATA_LOSS when damaged, INTERNAL else. */
enum kh_err store_step(struct store_stmt *s, bool *row, const char *what, struct kh_errbuf *e) KH_WUR;
/* A statement that returns no rows (a row is an INTERNAL error). */
enum kh_err store_step_done(struct store_stmt *s, const char *what, struct kh_errbuf *e) KH_WUR;
/* The current row's column i (0-based). NULL reads as 0, "" or empty. */
int64_t store_col_int64(struct store_stmt *s, int i);
int store_col_int(struct store_stmt *s, int i);
bool store_col_is_null(struct store_stmt *s, int i);
/* Text into out (truncated to outsz - 1, NUL-terminated). */
void store_col_text(struct store_stmt *s, int i, char *out, size_t outsz);
/* The column's bytes (text or blob), valid until the next step, reset or
 * finalize; NULL with *n 0 for NULL. */
const void *store_col_data(struct store_stmt *s, int i, size_t *n);
/* A copy of the column's bytes (malloc; len 0 and data NULL when NULL). */
enum kh_err store_col_blob(struct store_stmt *s, int i, struct kh_bytes *out) KH_WUR;

/* ---- connection ---- */

/* Rows changed by the last INSERT, UPDATE or DELETE on st. */
int64_t store_changes(struct store *st);
/* Runs sql (one or more statements, no parameters, no rows). */
enum kh_err store_exec(struct store *st, const char *sql, struct kh_errbuf *e) KH_WUR;
/* The first column of every row of sql, as names. */
enum kh_err store_names_query(struct store *st, const char *sql, char (**names)[KH_NAME_MAX + 1], size_t *n,
			      struct kh_errbuf *e) KH_WUR;

/* ---- what a driver provides ---- */

struct store_driver {
	const char *name;    /* "sqlite", "postgresql" */
	/* Statements (the calls above, through the dispatchers in store_db.c). */
	enum kh_err (*prepare)(struct store *st, const char *sql, struct store_stmt **out, struct kh_errbuf *e);
	void (*finalize)(struct store_stmt *s);
	void (*reset)(struct store_stmt *s);
	void (*bind_int64)(struct store_stmt *s, int i, int64_t v);
	void (*bind_text)(struct store_stmt *s, int i, const char *v);
	void (*bind_blob)(struct store_stmt *s, int i, const void *p, size_t n);
	void (*bind_null)(struct store_stmt *s, int i);
	enum kh_err (*step)(struct store_stmt *s, bool *row, const char *what, struct kh_errbuf *e);
	int64_t (*col_int64)(struct store_stmt *s, int i);
	bool (*col_is_null)(struct store_stmt *s, int i);
	const void *(*col_data)(struct store_stmt *s, int i, size_t *n);
	int64_t (*changes)(struct store *st);
	enum kh_err (*exec)(struct store *st, const char *sql, struct kh_errbuf *e);
	/* Transactions: begin takes what keeps writers apart (SQLite: BEGIN
	 * IMMEDIATE). A failed commit rolls back. */
	enum kh_err (*begin)(struct store *st, struct kh_errbuf *e);
	enum kh_err (*commit)(struct store *st, struct kh_errbuf *e);
	void (*rollback)(struct store *st);
	/* The migration runner (store.c): the lock held while it runs (one
	 * node migrates at a time), the schema version read and written
	 * (inside the migration's transaction), and a migration's SQL as this
	 * backend runs it (*out: free; NULL with KH_OK: as written). */
	enum kh_err (*migrate_lock)(struct store *st, bool lock, struct kh_errbuf *e);
	enum kh_err (*version_get)(struct store *st, int *v, struct kh_errbuf *e);
	enum kh_err (*version_set)(struct store *st, int v, struct kh_errbuf *e);
	enum kh_err (*translate)(int version, const char *sql, char **out, struct kh_errbuf *e);
	void (*close)(struct store *st);
};

extern const struct store_driver store_sqlite_driver;

#endif
