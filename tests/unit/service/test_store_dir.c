/* test_store_dir.c: state_dir trust (issue 13, items 8 and 12): the
 * directory must belong to keyholdd's user or root and be writable by no
 * one else; a state file that is a link, not a regular file, another
 * user's or group/other-writable is refused; the instance lock admits one
 * holder and names it to the next. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_dir.h"

static char dir[64];
static char path[160];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kh-sdir.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *at(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static void touch(const char *name, mode_t mode)
{
	int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static struct store_dir *open_ok(const char *p)
{
	struct kh_errbuf e = { 0 };
	struct store_dir *sd = NULL;

	if (store_dir_open(p, geteuid(), &sd, &e) != KH_OK)
		fail_msg("%s refused: %s", p, e.msg);
	return sd;
}

static void open_bad(const char *p, uid_t owner, const char *want)
{
	struct kh_errbuf e = { 0 };
	struct store_dir *sd = (struct store_dir *)(uintptr_t)0x1;

	assert_int_equal(store_dir_open(p, owner, &sd, &e), KH_E_FAILED_PRECONDITION);
	if (strstr(e.msg, want) == NULL)
		fail_msg("message '%s' does not mention '%s'", e.msg, want);
	assert_true(sd == (struct store_dir *)(uintptr_t)0x1);
}

static void check_bad(struct store_dir *sd, const char *name, const char *want)
{
	struct kh_errbuf e = { 0 };
	int fd = -7;

	assert_int_equal(store_dir_check(sd, name, &e), KH_E_FAILED_PRECONDITION);
	if (strstr(e.msg, want) == NULL)
		fail_msg("check: '%s' does not mention '%s'", e.msg, want);
	kh_err_clear(&e);
	assert_int_not_equal(store_dir_openat(sd, name, O_RDONLY, &fd, &e), KH_OK);
	if (strstr(e.msg, want) == NULL)
		fail_msg("openat: '%s' does not mention '%s'", e.msg, want);
	assert_int_equal(fd, -7);
}

static void test_dir_mode(void **state)
{
	static const mode_t bad[] = { 0777, 0770, 0720, 0702, 0775, 01777 };
	size_t i;
	char sub[128];

	(void)state;
	store_dir_free(open_ok(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	store_dir_free(open_ok(dir));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chmod(dir, bad[i]), 0);
		open_bad(dir, geteuid(), "must not be writable by group or others");
	}
	open_bad(dir, geteuid(), "chmod go-w");
	assert_int_equal(chmod(dir, 0700), 0);
	/* A missing state_dir is created 0700. */
	snprintf(sub, sizeof(sub), "%s/new", dir);
	store_dir_free(open_ok(sub));
	{
		struct stat st;

		assert_int_equal(stat(sub, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0700);
	}
	assert_int_equal(rmdir(sub), 0);
}

static void test_dir_owner(void **state)
{
	char sub[128];

	(void)state;
	if (geteuid() != 0)
		skip(); /* chown needs root (CI runs as root) */
	snprintf(sub, sizeof(sub), "%s/other", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(chown(sub, 4321, 4321), 0);
	/* keyholdd's user (4321) may own it; root (0) may; a third may not. */
	{
		struct kh_errbuf e = { 0 };
		struct store_dir *sd = NULL;

		assert_int_equal(store_dir_open(sub, 4321, &sd, &e), KH_OK);
		store_dir_free(sd);
	}
	open_bad(sub, 4322, "belongs to uid 4321");
	open_bad(sub, 0, "keyholdd's user (uid 0) or root");
	assert_int_equal(rmdir(sub), 0);
}

static void test_files(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store_dir *sd = open_ok(dir);
	struct stat st;
	int fd = -1;

	(void)state;
	/* Absent is fine for a check; openat without O_CREAT says NOT_FOUND. */
	assert_int_equal(store_dir_check(sd, "absent", &e), KH_OK);
	assert_int_equal(store_dir_openat(sd, "absent", O_RDONLY, &fd, &e), KH_E_NOT_FOUND);
	/* Created 0600. */
	assert_int_equal(store_dir_openat(sd, "made", O_RDWR | O_CREAT, &fd, &e), KH_OK);
	close(fd);
	assert_int_equal(stat(at("made"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* Readable by others: opened and tightened; writable: refused. */
	touch("readable", 0644);
	assert_int_equal(store_dir_openat(sd, "readable", O_RDONLY, &fd, &e), KH_OK);
	close(fd);
	assert_int_equal(stat(at("readable"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	touch("writable", 0662);
	check_bad(sd, "writable", "must not be writable by group or others");
	touch("gwritable", 0620);
	check_bad(sd, "gwritable", "mode 0620");
	/* A link, even to a good file, is never followed. */
	touch("target", 0600);
	assert_int_equal(symlink("target", at("link")), 0);
	check_bad(sd, "link", "symbolic link");
	assert_int_equal(symlink("/etc/passwd", at("link2")), 0);
	check_bad(sd, "link2", "symbolic link");
	/* Not a regular file. */
	assert_int_equal(mkdir(at("adir"), 0700), 0);
	check_bad(sd, "adir", "not a regular file");
	assert_int_equal(mkfifo(at("fifo"), 0600), 0);
	alarm(20);
	check_bad(sd, "fifo", "not a regular file");
	alarm(0);
	if (geteuid() == 0) {
		touch("foreign", 0600);
		assert_int_equal(chown(at("foreign"), 4321, 4321), 0);
		check_bad(sd, "foreign", "belongs to uid 4321");
	}
	store_dir_free(sd);
}

static void test_lock(void **state)
{
	struct kh_errbuf e = { 0 };
	struct store_dir *a = open_ok(dir), *b = open_ok(dir), *c;
	char want[64];

	(void)state;
	assert_int_equal(store_dir_lock(a, &e), KH_OK);
	assert_int_equal(store_dir_lock(b, &e), KH_E_FAILED_PRECONDITION);
	snprintf(want, sizeof(want), "another keyholdd (pid %ld)", (long)getpid());
	if (strstr(e.msg, want) == NULL || strstr(e.msg, dir) == NULL)
		fail_msg("lock refusal '%s' names neither the holder nor the directory", e.msg);
	store_dir_free(b);
	/* Released with its holder. */
	store_dir_free(a);
	c = open_ok(dir);
	kh_err_clear(&e);
	assert_int_equal(store_dir_lock(c, &e), KH_OK);
	store_dir_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dir_mode),
		cmocka_unit_test(test_dir_owner),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_lock),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
