/* store_dir.c: state_dir trust: owner and mode of the directory and of each
 * state file, O_NOFOLLOW opens relative to the directory's descriptor, and
 * the exclusive instance lock. A state_dir that another user can write lets
 * that user add grants or replace the database, so keyholdd refuses to
 * start rather than trust it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kh_log.h"
#include "kh_util.h"
#include "store/store_dir.h"

static bool store_dir_owner_ok(const struct store_dir *sd, uid_t uid)
{
	return uid == sd->owner || uid == 0;
}

/* The checks every state file and the directory share: the type is
 * checked by the caller. what: "state_dir" or "state file". */
static enum kh_err store_dir_trust(const struct store_dir *sd, const struct stat *st, const char *what,
				   const char *name, struct kh_errbuf *e)
{
	if (!store_dir_owner_ok(sd, st->st_uid))
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "%s %s%s%s belongs to uid %u; it must belong to keyholdd's user (uid %u) or root: "
				  "chown %u %s%s%s",
				  what, sd->path, name ? "/" : "", name ? name : "", (unsigned)st->st_uid,
				  (unsigned)sd->owner, (unsigned)sd->owner, sd->path, name ? "/" : "", name ? name : "");
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "%s %s%s%s has mode %04o: it must not be writable by group or others: chmod go-w %s%s%s",
				  what, sd->path, name ? "/" : "", name ? name : "", (unsigned)(st->st_mode & 07777),
				  sd->path, name ? "/" : "", name ? name : "");
	return KH_OK;
}

static enum kh_err store_dir_file_ok(const struct store_dir *sd, const struct stat *st, const char *name,
				     struct kh_errbuf *e)
{
	if (S_ISLNK(st->st_mode))
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "state file %s/%s is a symbolic link; keyholdd does not follow links in state_dir",
				  sd->path, name);
	if (!S_ISREG(st->st_mode))
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "state file %s/%s is not a regular file", sd->path,
				  name);
	return store_dir_trust(sd, st, "state file", name, e);
}

enum kh_err store_dir_open(const char *path, uid_t owner, struct store_dir **out, struct kh_errbuf *e)
{
	struct store_dir *sd = NULL;
	struct stat st;
	int r = KH_OK;

	KH_ENSURE(path != NULL && path[0] != '\0', kh_err_set(e, KH_E_INVALID_ARGUMENT, "state_dir is empty"));
	sd = calloc(1, sizeof(*sd));
	KH_ENSURE(sd != NULL, KH_E_RESOURCE_EXHAUSTED);
	sd->fd = -1;
	sd->lock_fd = -1;
	sd->owner = owner;
	sd->path = strdup(path);
	KH_ENSURE(sd->path != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot create state_dir %s: %s", path, strerror(errno));
		goto out;
	}
	/* The directory itself may be reached through a link an admin made
	 * (/var/lib/keyhold -> /data/keyhold): what is checked is what the
	 * descriptor refers to, and every later open goes through it. */
	sd->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	KH_ENSURE(sd->fd >= 0, kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot open state_dir %s: %s", path,
					  strerror(errno)));
	KH_ENSURE(fstat(sd->fd, &st) == 0,
		  kh_err_set(e, KH_E_INTERNAL, "stat state_dir %s: %s", path, strerror(errno)));
	KH_TRY(store_dir_trust(sd, &st, "state_dir", NULL, e));
	*out = sd;
	sd = NULL;
out:
	store_dir_free(sd);
	return r;
}

void store_dir_free(struct store_dir *sd)
{
	if (sd == NULL)
		return;
	if (sd->lock_fd >= 0)
		close(sd->lock_fd);
	if (sd->fd >= 0)
		close(sd->fd);
	free(sd->path);
	free(sd);
}

enum kh_err store_dir_check(const struct store_dir *sd, const char *name, struct kh_errbuf *e)
{
	struct stat st;

	if (fstatat(sd->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return KH_OK;
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot stat state file %s/%s: %s", sd->path, name,
				  strerror(errno));
	}
	return store_dir_file_ok(sd, &st, name, e);
}

enum kh_err store_dir_openat(const struct store_dir *sd, const char *name, int flags, int *fd_out,
			     struct kh_errbuf *e)
{
	struct stat st;
	int r = KH_OK, fd;

	/* O_NONBLOCK: a FIFO put in place of a state file is refused below
	 * instead of blocking start-up. */
	fd = openat(sd->fd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0) {
		if (errno == ELOOP)
			return kh_err_set(e, KH_E_FAILED_PRECONDITION,
					  "state file %s/%s is a symbolic link; keyholdd does not follow links in state_dir",
					  sd->path, name);
		return kh_err_set(e, errno == ENOENT ? KH_E_NOT_FOUND : KH_E_FAILED_PRECONDITION,
				  "cannot open state file %s/%s: %s", sd->path, name, strerror(errno));
	}
	KH_ENSURE(fstat(fd, &st) == 0,
		  kh_err_set(e, KH_E_INTERNAL, "stat %s/%s: %s", sd->path, name, strerror(errno)));
	KH_TRY(store_dir_file_ok(sd, &st, name, e));
	if ((st.st_mode & 077) != 0 && fchmod(fd, st.st_mode & 0700) != 0)
		log_warn("cannot restrict %s/%s to its owner: %s", sd->path, name, strerror(errno));
	KH_ENSURE(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0,
		  kh_err_set(e, KH_E_INTERNAL, "fcntl %s/%s: %s", sd->path, name, strerror(errno)));
	*fd_out = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

enum kh_err store_dir_lock(struct store_dir *sd, struct kh_errbuf *e)
{
	char buf[32];
	int r = KH_OK, fd = -1, n;
	ssize_t got;

	KH_TRY(store_dir_openat(sd, STORE_DIR_LOCK_FILE, O_RDWR | O_CREAT, &fd, e));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK) {
			r = kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot lock %s/%s: %s", sd->path,
				       STORE_DIR_LOCK_FILE, strerror(errno));
			goto out;
		}
		got = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[got > 0 ? got : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
			       "another keyholdd (pid %s) is already using state_dir %s; "
			       "stop it or give this instance its own state_dir",
			       buf[0] ? buf : "unknown", sd->path);
		goto out;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		log_warn("cannot write the pid into %s/%s: %s", sd->path, STORE_DIR_LOCK_FILE, strerror(errno));
	sd->lock_fd = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return r;
}
