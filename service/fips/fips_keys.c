/* fips_keys.c: which keys were generated while FIPS mode was on, so that
 * `keyhold status` can flag the others. A tiny file, state_dir/fips-keys:
 * one key name per line, rewritten whole (temp file, fsync, rename) on
 * every change. A key the file does not name (made with fips_mode = off,
 * or outside keyhold) counts as non-FIPS: the safe direction. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips_int.h"

/* At most this many names are kept (a token holds far fewer keys). */
#define KEYS_MAX 100000

static ssize_t keys_find(const struct svc_fips *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n_keys; i++)
		if (strcmp(f->keys[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

static enum kh_err keys_add(struct svc_fips *f, const char *name)
{
	char *copy;

	if (keys_find(f, name) >= 0)
		return KH_OK;
	if (f->n_keys >= KEYS_MAX)
		return KH_E_RESOURCE_EXHAUSTED;
	if (f->n_keys == f->cap_keys) {
		size_t cap = f->cap_keys ? 2 * f->cap_keys : 32;
		char **nk = realloc(f->keys, cap * sizeof(*nk));

		if (nk == NULL)
			return KH_E_RESOURCE_EXHAUSTED;
		f->keys = nk;
		f->cap_keys = cap;
	}
	copy = strdup(name);
	if (copy == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	f->keys[f->n_keys++] = copy;
	return KH_OK;
}

enum kh_err selftest_keys_load(struct svc_fips *f, const char *state_dir, struct kh_errbuf *e)
{
	char line[KH_NAME_MAX + 8];
	size_t n;
	FILE *fp;
	int w, fd;

	n = strlen(state_dir) + sizeof("/fips-keys");
	f->keys_path = malloc(n);
	if (f->keys_path == NULL)
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	w = snprintf(f->keys_path, n, "%s/fips-keys", state_dir);
	if (w < 0 || (size_t)w >= n)
		return kh_err_set(e, KH_E_INTERNAL, "bad state_dir");
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		log_warn("cannot create state_dir %s: %s", state_dir, strerror(errno));
	/* O_NOFOLLOW: state files are never read through a link (the start-up
	 * checks of store_dir.h refuse one; this holds for --check too). */
	fd = open(f->keys_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	fp = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (fp == NULL) {
		if (fd >= 0)
			close(fd);
		if (errno != ENOENT)
			log_warn("cannot read %s: %s; every key counts as made outside FIPS mode", f->keys_path,
				 strerror(errno));
		return KH_OK;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t l = strlen(line);

		while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
			line[--l] = '\0';
		if (!kh_name_valid(line)) {
			log_warn("%s: ignoring a line that is not a key name", f->keys_path);
			continue;
		}
		if (keys_add(f, line) != KH_OK)
			break;
	}
	fclose(fp);
	return KH_OK;
}

void selftest_keys_free(struct svc_fips *f)
{
	size_t i;

	for (i = 0; i < f->n_keys; i++)
		free(f->keys[i]);
	free(f->keys);
	free(f->keys_path);
	f->keys = NULL;
	f->n_keys = f->cap_keys = 0;
	f->keys_path = NULL;
}

/* Rewrites the file from f->keys. Caller holds f->keys_lock. */
static void keys_save(struct svc_fips *f)
{
	char *tmp = NULL;
	size_t n, i;
	FILE *fp = NULL;
	int fd = -1, ok = 1;
	enum kh_err r = KH_OK;

	if (f->keys_path == NULL)
		return;
	n = strlen(f->keys_path) + 5;
	tmp = malloc(n);
	KH_ENSURE(tmp != NULL, KH_E_RESOURCE_EXHAUSTED);
	snprintf(tmp, n, "%s.tmp", f->keys_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	KH_ENSURE(fd >= 0 && (fp = fdopen(fd, "w")) != NULL, KH_E_INTERNAL);
	fd = -1;
	for (i = 0; i < f->n_keys && ok; i++)
		ok = fprintf(fp, "%s\n", f->keys[i]) > 0;
	ok = fflush(fp) == 0 && ok;
	ok = fsync(fileno(fp)) == 0 && ok;
	ok = fclose(fp) == 0 && ok;
	fp = NULL;
	KH_ENSURE(ok && rename(tmp, f->keys_path) == 0, KH_E_INTERNAL);
out:
	if (r != KH_OK) {
		log_err("cannot update %s: %s; `keyhold status` may list FIPS-mode keys as non-FIPS", f->keys_path,
			strerror(errno));
		if (fp != NULL)
			fclose(fp);
		if (fd >= 0)
			close(fd);
		if (tmp != NULL)
			unlink(tmp);
	}
	free(tmp);
}

void selftest_key_generated(struct svc *s, const char *name)
{
	struct svc_fips *f = s->fips;
	ssize_t i;

	pthread_mutex_lock(&f->keys_lock);
	if (selftest_fips_on(s)) {
		if (keys_find(f, name) < 0) {
			if (keys_add(f, name) != KH_OK)
				log_err("cannot record key '%s' as made in FIPS mode", name);
			keys_save(f);
		}
	} else if ((i = keys_find(f, name)) >= 0) {
		/* A stale entry for an older key of the same name. */
		free(f->keys[i]);
		f->keys[i] = f->keys[--f->n_keys];
		keys_save(f);
	}
	pthread_mutex_unlock(&f->keys_lock);
}

void selftest_key_deleted(struct svc *s, const char *name)
{
	struct svc_fips *f = s->fips;
	ssize_t i;

	pthread_mutex_lock(&f->keys_lock);
	i = keys_find(f, name);
	if (i >= 0) {
		free(f->keys[i]);
		f->keys[i] = f->keys[--f->n_keys];
		keys_save(f);
	}
	pthread_mutex_unlock(&f->keys_lock);
}

bool selftest_key_is_fips(struct svc *s, const char *name)
{
	struct svc_fips *f = s->fips;
	bool found;

	pthread_mutex_lock(&f->keys_lock);
	found = keys_find(f, name) >= 0;
	pthread_mutex_unlock(&f->keys_lock);
	return found;
}
