/* store_int.h: what the store's files share: the handle and statement
 * helpers. Only service/store/ includes it (and sqlite3.h). */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <sqlite3.h>

#include "store/store.h"

struct store {
	sqlite3 *db;
	char *path;
	int version;
};

/* Records a SQLite failure (logged, and in e with the SQLite message). */
enum kh_err store_sql_err(struct store *st, struct kh_errbuf *e, int rc, const char *what);
enum kh_err store_prepare(struct store *st, const char *sql, sqlite3_stmt **out, struct kh_errbuf *e) KH_WUR;
enum kh_err store_exec(struct store *st, const char *sql, struct kh_errbuf *e) KH_WUR;
enum kh_err store_step_done(struct store *st, sqlite3_stmt *s, const char *what, struct kh_errbuf *e) KH_WUR;
int store_bind_text(sqlite3_stmt *s, int i, const char *v);
/* NULL for an empty blob. */
int store_bind_blob(sqlite3_stmt *s, int i, const struct kh_bytes *b);
void store_col_text(sqlite3_stmt *s, int i, char *out, size_t outsz);
enum kh_err store_col_blob(sqlite3_stmt *s, int i, struct kh_bytes *out) KH_WUR;
/* The first column of every row of sql, as names. */
enum kh_err store_names_query(struct store *st, const char *sql, char (**names)[KH_NAME_MAX + 1], size_t *n,
			      struct kh_errbuf *e) KH_WUR;

#endif
