/* acme_webroot.c: http-01 (RFC 8555 §8.3) through an existing web server:
 * the key authorization written to ROOT/.well-known/acme-challenge/TOKEN
 * while the challenge is pending, removed afterwards. The directories are
 * made (0755) when missing; the file (0644: the web server reads it) is
 * written under a temporary name and renamed into place, every step
 * relative to the webroot's descriptor and without following symbolic
 * links below it; the token is base64url, so it names no other path. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kh_log.h"
#include "pki/acme.h"

#define ACME_WEBROOT_SUB ".well-known/acme-challenge"

/* The challenge directory's descriptor, made when missing; -1 with e set. */
static int acme_webroot_dir(const char *root, bool create, struct kh_errbuf *e)
{
	const char *parts[2] = { ".well-known", "acme-challenge" };
	int fd, next;
	size_t i;

	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME webroot %s: %s", root, strerror(errno));
		return -1;
	}
	for (i = 0; i < 2; i++) {
		if (create && mkdirat(fd, parts[i], 0755) != 0 && errno != EEXIST) {
			kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME webroot %s: cannot make %s: %s", root, parts[i],
				   strerror(errno));
			close(fd);
			return -1;
		}
		next = openat(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME webroot %s: %s: %s", root, parts[i], strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
		fd = next;
	}
	return fd;
}

enum kh_err acme_webroot_put(const char *root, const char *token, const char *key_auth, struct kh_errbuf *e)
{
	char tmp[ACME_TOKEN_MAX + 16];
	size_t len = strlen(key_auth);
	int dfd = -1, fd = -1, r = KH_OK;

	KH_ENSURE(acme_b64url_valid(token, ACME_TOKEN_MAX),
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "ACME: the challenge token is not base64url"));
	dfd = acme_webroot_dir(root, true, e);
	KH_ENSURE(dfd >= 0, KH_E_FAILED_PRECONDITION);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", token);
	(void)unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	KH_ENSURE(fd >= 0, kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME webroot %s: cannot write %s/%s: %s", root,
				      ACME_WEBROOT_SUB, tmp, strerror(errno)));
	/* umask may have narrowed it; the web server must read it. */
	if (fchmod(fd, 0644) != 0 || write(fd, key_auth, len) != (ssize_t)len || fsync(fd) != 0) {
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME webroot %s: writing %s/%s: %s", root, ACME_WEBROOT_SUB,
			       tmp, strerror(errno));
		(void)unlinkat(dfd, tmp, 0);
		goto out;
	}
	if (renameat(dfd, tmp, dfd, token) != 0) {
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION, "ACME webroot %s: renaming to %s/%s: %s", root,
			       ACME_WEBROOT_SUB, token, strerror(errno));
		(void)unlinkat(dfd, tmp, 0);
		goto out;
	}
	log_info("acme: http-01 key authorization written to %s/%s/%s", root, ACME_WEBROOT_SUB, token);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return r;
}

void acme_webroot_remove(const char *root, const char *token)
{
	struct kh_errbuf e = { 0 };
	int dfd;

	if (!acme_b64url_valid(token, ACME_TOKEN_MAX) || (dfd = acme_webroot_dir(root, false, &e)) < 0)
		return;
	if (unlinkat(dfd, token, 0) != 0 && errno != ENOENT)
		log_warn("acme: cannot remove %s/%s/%s: %s", root, ACME_WEBROOT_SUB, token, strerror(errno));
	close(dfd);
}
