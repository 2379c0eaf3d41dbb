/* store_dir: trust in state_dir (issue 13, items 8 and 12). The directory
 * must belong to keyholdd's user (or root) and be writable by no one else;
 * every state file is opened relative to the directory's descriptor with
 * O_NOFOLLOW and checked the same way; an exclusive lock keeps a second
 * keyholdd off the same directory. */
#ifndef STORE_DIR_H
#define STORE_DIR_H

#include <stdbool.h>
#include <sys/types.h>

#include "kh_err.h"

#define STORE_DIR_LOCK_FILE "keyholdd.lock"

struct store_dir {
	int fd;         /* O_DIRECTORY descriptor of state_dir */
	int lock_fd;    /* the lock file, flock(LOCK_EX) while open; -1: not locked */
	uid_t owner;    /* keyholdd's user: state files may belong to it or root */
	char *path;     /* state_dir as configured, for messages */
};

/* Opens path (creating it 0700 when missing) and checks that it is a
 * directory owned by owner or root and not writable by group or others.
 * Refusals are FAILED_PRECONDITION naming the directory and the fix. */
enum kh_err store_dir_open(const char *path, uid_t owner, struct store_dir **out, struct kh_errbuf *e) KH_WUR;
/* Closes (and so unlocks) sd; NULL is fine. */
void store_dir_free(struct store_dir *sd);

/* Checks state file name without opening it: absent is fine; a symlink,
 * anything but a regular file, another owner than sd's user or root, or a
 * mode writable by group or others is refused. */
enum kh_err store_dir_check(const struct store_dir *sd, const char *name, struct kh_errbuf *e) KH_WUR;
/* openat(sd->fd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode) and the checks
 * of store_dir_check on what was opened; group and other permissions
 * are then taken away (fchmod 0600). ENOENT without O_CREAT gives
 * NOT_FOUND. *fd_out is written only on success. */
enum kh_err store_dir_openat(const struct store_dir *sd, const char *name, int flags, int *fd_out,
			     struct kh_errbuf *e) KH_WUR;
/* Takes an exclusive, non-blocking flock on STORE_DIR_LOCK_FILE (and
 * writes this pid into it). Another keyholdd holding it: FAILED_PRECONDITION
 * naming its pid. */
enum kh_err store_dir_lock(struct store_dir *sd, struct kh_errbuf *e) KH_WUR;

#endif
