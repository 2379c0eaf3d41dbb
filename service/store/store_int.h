/* store_int.h: what the store's files share: the handle. Only
 * service/store/ includes it; the SQL goes through store_db.h. */
#ifndef STORE_INT_H
#define STORE_INT_H

#include "store/store.h"
#include "store_db.h"

struct store {
	const struct store_driver *drv;
	void *db;          /* the driver's connection state */
	char *path;        /* what messages name: the file, or the server */
	int version;
};

/* Opens SQLite in state_dir sd into st (st->drv and st->db set). */
enum kh_err store_sqlite_open(struct store *st, const struct store_dir *sd, struct kh_errbuf *e) KH_WUR;

#endif
